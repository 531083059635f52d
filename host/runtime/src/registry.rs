//! Discovery and the plugin registry: every folder under the plugins directory is one plugin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::bindings;
use crate::cache::{CacheOutcome, CompileCache};
use crate::engine::{self, Limits};
use crate::error::{CallError, RuntimeError};
use crate::manifest::{Manifest, Origin, PluginKind};
use crate::sandbox::{self, CallEnv, HostState};
use crate::settings::{Effective, PluginSettings, Source, allowed_origins};

/// What the operator configured for one plugin, as plain strings.
#[derive(Debug, Clone, Default)]
pub struct OperatorSettings {
    /// Setting values (secret keys included; they are kept out of plugin reach).
    pub values: BTreeMap<String, String>,
    /// Origins granted to the plugin, `scheme://host[:port]`.
    pub allow_hosts: Vec<String>,
    /// SHA-256 (hex) of the component the operator trusts under this id. Needed for a
    /// plugin that claims a bundled id with a component other than the bundled one; a
    /// component that does not match is not loaded.
    pub sha256: Option<String>,
}

/// The plugins shipped with the server: their ids are reserved for their own components.
#[derive(Debug, Clone, Default)]
pub struct BundledPlugins {
    pub ids: std::collections::BTreeSet<String>,
    /// SHA-256 (hex) of each bundled component, by id, as built with this server.
    pub digests: BTreeMap<String, String>,
}

/// How to build the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub plugins_dir: PathBuf,
    /// Where compiled components are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    pub limits: Limits,
    /// Operator settings per plugin id.
    pub plugins: BTreeMap<String, OperatorSettings>,
    /// Which ids belong to bundled plugins, and their components' digests.
    pub bundled: BundledPlugins,
}

/// Load outcome of one plugin, as reported by `GET /api/plugins`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReport {
    pub id: String,
    pub kind: Option<PluginKind>,
    pub version: Option<String>,
    pub wit_version: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Folder the plugin was found in (relative to the plugins directory).
    pub folder: String,
    pub requested_hosts: Vec<String>,
    pub granted_hosts: Vec<String>,
    #[serde(flatten)]
    pub state: PluginState,
    /// `hit`, `miss` or `disabled`: whether the compiled code came from the cache.
    pub compile_cache: Option<&'static str>,
    pub load_ms: Option<f64>,
    /// SHA-256 (hex) of the component file.
    pub sha256: Option<String>,
    /// `bundled`, `pinned`, `third-party` or `unverified` (a look-alike of a bundled plugin:
    /// it gets no stored or environment keys).
    pub trust: Option<&'static str>,
    /// Why the plugin has the trust it has, when that needs saying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_note: Option<String>,
    /// Why the latest version of this folder did not load; the version described here is
    /// still the one serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_error: Option<String>,
}

/// Whether a loaded plugin may receive the host's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    Bundled,
    Pinned,
    ThirdParty,
    /// Claims a bundled id without being the bundled component (nor pinned).
    Unverified(String),
}

impl Trust {
    fn label(&self) -> &'static str {
        match self {
            Trust::Bundled => "bundled",
            Trust::Pinned => "pinned",
            Trust::ThirdParty => "third-party",
            Trust::Unverified(_) => "unverified",
        }
    }

    pub(crate) fn receives_keys(&self) -> bool {
        !matches!(self, Trust::Unverified(_))
    }
}

/// Decide a plugin's trust from its id and component digest; `Err` when the operator pinned
/// another component (the plugin is not loaded).
fn trust_of(
    id: &str,
    digest: &str,
    pin: Option<&str>,
    bundled: &BundledPlugins,
) -> Result<Trust, String> {
    if let Some(pin) = pin.map(str::trim).filter(|p| !p.is_empty()) {
        return if pin.eq_ignore_ascii_case(digest) {
            Ok(Trust::Pinned)
        } else {
            Err(format!(
                "component sha256 {digest} does not match the operator's pin [plugins.{id}] sha256 = {pin:?}"
            ))
        };
    }
    if !bundled.ids.contains(id) {
        return Ok(Trust::ThirdParty);
    }
    match bundled.digests.get(id) {
        Some(expected) if expected.eq_ignore_ascii_case(digest) => Ok(Trust::Bundled),
        found => Ok(Trust::Unverified(format!(
            "{id:?} is the id of a bundled plugin, but this component (sha256 {digest}) is not {}; \
             it gets no stored or environment keys until the operator pins it with \
             [plugins.{id}] sha256 = \"{digest}\"",
            if found.is_some() {
                "the bundled one"
            } else {
                "known to this build (built without bundled digests)"
            }
        ))),
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PluginState {
    Loaded,
    Failed { reason: String },
}

/// Static description returned by a plugin's `info()` at load time.
#[derive(Debug, Clone)]
pub enum Description {
    Provider(bindings::types::ProviderInfo),
    /// The (kind, format) pairs an exporter renders.
    Exporter(Vec<crate::export::FormatInfo>),
}

/// The pre-linked component of one world.
#[derive(Clone)]
pub(crate) enum WorldPre {
    Llm(bindings::llm::LlmProviderPre<HostState>),
    Vision(bindings::vision::VisionProviderPre<HostState>),
    Video(bindings::video::VideoProviderPre<HostState>),
    Exporter(bindings::exporter::ExporterPre<HostState>),
    DocumentExporter(bindings::document_exporter::DocumentExporterPre<HostState>),
}

pub(crate) struct LoadedPlugin {
    pub manifest: Manifest,
    pub pre: WorldPre,
    pub description: Description,
    pub trust: Trust,
    /// The operator's settings (config file, environment) and grants.
    pub baseline: PluginSettings,
    /// Settings saved through the API, on top of the baseline.
    pub saved: RwLock<PluginSettings>,
    /// Both layers resolved against the manifest, kept ready for every call.
    pub effective: RwLock<Arc<Effective>>,
    /// Folder it was loaded from, relative to the plugins directory.
    pub folder: String,
    /// Digest of its manifest and component: a reload skips a plugin whose files are the same.
    pub fingerprint: String,
}

impl LoadedPlugin {
    /// The settings every call uses now.
    pub(crate) fn current(&self) -> Arc<Effective> {
        match self.effective.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The origins this plugin may reach now.
    fn granted_now(&self) -> Vec<String> {
        self.current()
            .allowed
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// A new version of a plugin keeps the settings saved for the one it replaces.
    fn keep_saved_settings_of(&self, old: &LoadedPlugin) {
        let saved = match old.saved.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match self.saved.write() {
            Ok(mut s) => *s = saved,
            Err(poisoned) => *poisoned.into_inner() = saved,
        }
        let effective = Arc::new(self.resolve(None));
        match self.effective.write() {
            Ok(mut e) => *e = effective,
            Err(poisoned) => *poisoned.into_inner() = effective,
        }
    }

    /// Resolve the baseline, the saved layer and optional caller overrides.
    pub(crate) fn resolve(&self, caller: Option<&PluginSettings>) -> Effective {
        let saved = match self.saved.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        layered(&self.manifest, &self.baseline, &saved, caller, &self.trust)
    }
}

fn layered(
    manifest: &Manifest,
    baseline: &PluginSettings,
    saved: &PluginSettings,
    caller: Option<&PluginSettings>,
    trust: &Trust,
) -> Effective {
    let mut layers = vec![(Source::Host, baseline), (Source::Host, saved)];
    if let Some(caller) = caller {
        layers.push((Source::Caller, caller));
    }
    Effective::resolve(manifest, &layers, trust.receives_keys())
}

struct Linkers {
    llm: Linker<HostState>,
    vision: Linker<HostState>,
    video: Linker<HostState>,
    exporter: Linker<HostState>,
    document_exporter: Linker<HostState>,
}

impl Linkers {
    fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        use wasmtime::component::HasSelf;
        let base = || -> wasmtime::Result<Linker<HostState>> {
            let mut linker = Linker::new(engine);
            // Rust's wasip2 std imports wasi:cli and wasi:io even in "pure" plugins.
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            Ok(linker)
        };
        let mut llm = base()?;
        bindings::llm::LlmProvider::add_to_linker::<_, HasSelf<_>>(&mut llm, |s| s)?;
        let mut vision = base()?;
        bindings::vision::VisionProvider::add_to_linker::<_, HasSelf<_>>(&mut vision, |s| s)?;
        let mut video = base()?;
        bindings::video::VideoProvider::add_to_linker::<_, HasSelf<_>>(&mut video, |s| s)?;
        let mut exporter = base()?;
        bindings::exporter::Exporter::add_to_linker::<_, HasSelf<_>>(&mut exporter, |s| s)?;
        let mut document_exporter = base()?;
        bindings::document_exporter::DocumentExporter::add_to_linker::<_, HasSelf<_>>(
            &mut document_exporter,
            |s| s,
        )?;
        Ok(Linkers {
            llm,
            vision,
            video,
            exporter,
            document_exporter,
        })
    }
}

/// Calls and failures of one plugin since start.
#[derive(Debug, Default)]
pub(crate) struct CallCounters {
    pub calls: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
}

/// Calls of one plugin since start, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStats {
    pub plugin: String,
    pub calls: u64,
    pub failures: u64,
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub calls: RwLock<BTreeMap<String, Arc<CallCounters>>>,
    pub client: reqwest::Client,
    pub limits: Arc<Limits>,
    /// Instance places: the pool, and each plugin's share (see `slots.rs`).
    slots: crate::slots::Slots,
    /// What is loaded now. A reload swaps it whole; a call keeps the plugin it started with,
    /// so calls in flight finish on the old version while new calls get the new one.
    current: RwLock<Arc<Loaded>>,
    source: PluginSource,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// Where plugins come from and what a load needs.
struct PluginSource {
    plugins_dir: PathBuf,
    operator: BTreeMap<String, OperatorSettings>,
    bundled: BundledPlugins,
    linkers: Linkers,
    cache: CompileCache,
}

/// One generation of the plugins folder: the loaded plugins and a report per folder.
#[derive(Default)]
struct Loaded {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    reports: Vec<PluginReport>,
}

/// What a reload changed, by plugin id.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Folders that did not load, with the reason. A changed plugin that fails keeps its
    /// previous version serving.
    pub failed: Vec<ReloadFailure>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReloadFailure {
    /// The plugin id, or the folder when the manifest could not be read.
    pub id: String,
    pub folder: String,
    pub reason: String,
    /// Whether an earlier version of the plugin in this folder is still serving.
    pub previous_serving: bool,
}

impl ReloadSummary {
    /// Nothing was added, changed, removed or newly failed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.failed.is_empty()
    }
}

/// A plugin folder as found on disk, before loading.
enum Found {
    /// Cannot be loaded (manifest, duplicate id, unreadable component, operator settings).
    Broken(PluginReport),
    /// Same manifest and component as the version serving now.
    Unchanged(Arc<LoadedPlugin>, PluginReport),
    /// New or changed.
    Load(Box<Pending>),
}

struct Pending {
    report: PluginReport,
    manifest: Manifest,
    settings: PluginSettings,
    pin: Option<String>,
    bytes: Vec<u8>,
    digest: String,
    fingerprint: String,
}

/// The plugin runtime: one engine, every discovered plugin, typed clients.
#[derive(Clone)]
pub struct PluginRuntime {
    pub(crate) inner: Arc<Inner>,
}

impl PluginRuntime {
    /// Discover and load every plugin under `config.plugins_dir`, in parallel. Broken plugins
    /// are skipped and reported; only an engine that cannot be built is an error.
    pub async fn load(config: RuntimeConfig) -> Result<PluginRuntime, RuntimeError> {
        let engine = engine::build_engine(&config.limits)?;
        engine::spawn_epoch_ticker(&engine)?;
        let linkers = Linkers::new(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let client = crate::http::build_client().map_err(RuntimeError::Engine)?;
        let cache = CompileCache::new(&engine, config.cache_dir.clone());
        let limits = Arc::new(config.limits.clone());
        let runtime = PluginRuntime {
            inner: Arc::new(Inner {
                slots: crate::slots::Slots::new(&limits),
                engine,
                client,
                limits,
                current: RwLock::new(Arc::new(Loaded::default())),
                source: PluginSource {
                    plugins_dir: config.plugins_dir,
                    operator: config.plugins,
                    bundled: config.bundled,
                    linkers,
                    cache,
                },
                reloading: tokio::sync::Mutex::new(()),
                calls: RwLock::new(BTreeMap::new()),
            }),
        };
        runtime.reload().await;
        Ok(runtime)
    }

    /// Look at the plugins folder again: load added and changed plugins (in parallel), drop
    /// removed ones, keep unchanged ones as they are (saved settings included). A changed
    /// plugin that fails to load leaves its previous version serving, with the reason in its
    /// report.
    pub async fn reload(&self) -> ReloadSummary {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let before = self.inner.loaded();
        let found = survey(&self.inner.source, &before);

        // Every new or changed plugin loads in its own task: compiling, linking and `info()`
        // run side by side, so a plugin whose `info()` spins costs start-up one deadline at
        // most, however many there are.
        let mut tasks = tokio::task::JoinSet::new();
        let mut slots: Vec<Option<(PluginReport, Option<Arc<LoadedPlugin>>)>> = Vec::new();
        for (index, found) in found.into_iter().enumerate() {
            match found {
                Found::Broken(report) => slots.push(Some((report, None))),
                Found::Unchanged(plugin, report) => slots.push(Some((report, Some(plugin)))),
                Found::Load(pending) => {
                    slots.push(None);
                    let inner = self.inner.clone();
                    tasks.spawn(async move { (index, load_pending(&inner, *pending).await) });
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((index, outcome)) => {
                    if let Some(slot) = slots.get_mut(index) {
                        *slot = Some(outcome);
                    }
                }
                // A panic in a load task is a bug of ours; its folder is reported below.
                Err(e) => tracing::error!("a plugin load task failed: {e}"),
            }
        }

        let mut next = Loaded::default();
        let mut summary = ReloadSummary::default();
        for slot in slots.into_iter().flatten() {
            let (mut report, plugin) = slot;
            let previous = before.at_folder(&report.folder);
            match plugin {
                Some(plugin) => {
                    let id = plugin.manifest.id.clone();
                    match previous {
                        Some(old) if Arc::ptr_eq(&old, &plugin) => {}
                        Some(old) => {
                            plugin.keep_saved_settings_of(&old);
                            summary.changed.push(id.clone());
                        }
                        None => {
                            if let Some(old) = before.plugins.get(&id) {
                                plugin.keep_saved_settings_of(old);
                            }
                            summary.added.push(id.clone());
                        }
                    }
                    next.plugins.insert(id, plugin);
                }
                None => {
                    let PluginState::Failed { reason } = &report.state else {
                        continue;
                    };
                    // The version already serving from this folder keeps serving.
                    let kept = previous.filter(|old| !next.plugins.contains_key(&old.manifest.id));
                    let failure = ReloadFailure {
                        id: report.id.clone(),
                        folder: report.folder.clone(),
                        reason: reason.clone(),
                        previous_serving: kept.is_some(),
                    };
                    let already_reported = before
                        .reports
                        .iter()
                        .any(|r| r.folder == report.folder && r.failure() == Some(reason));
                    if !already_reported {
                        summary.failed.push(failure);
                    }
                    if let Some(old) = kept {
                        if let Some(old_report) = before.report_of(&old) {
                            report = PluginReport {
                                reload_error: Some(reason.clone()),
                                ..old_report.clone()
                            };
                        }
                        next.plugins.insert(old.manifest.id.clone(), old);
                    }
                }
            }
            next.reports.push(report);
        }
        for id in before.plugins.keys() {
            if !next.plugins.contains_key(id) {
                summary.removed.push(id.clone());
            }
        }
        for failure in &summary.failed {
            tracing::warn!(plugin = %failure.id, folder = %failure.folder, previous_serving = failure.previous_serving, "plugin not loaded: {}", failure.reason);
        }
        if !before.reports.is_empty() && !summary.is_empty() {
            tracing::info!(added = ?summary.added, changed = ?summary.changed, removed = ?summary.removed, failed = summary.failed.len(), "plugins reloaded");
        }
        match self.inner.current.write() {
            Ok(mut current) => *current = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        summary
    }

    /// The folder plugins are loaded from.
    pub fn plugins_dir(&self) -> &Path {
        &self.inner.source.plugins_dir
    }

    /// Every plugin found, loaded or failed, in folder order.
    pub fn reports(&self) -> Vec<PluginReport> {
        self.inner.loaded().reports.clone()
    }

    /// Every folder's report, in folder order, with the description of the plugin it serves
    /// (none for a folder that serves nothing, even when another folder's plugin has the same
    /// id) and the origins granted now, after any settings saved since it loaded.
    pub fn entries(&self) -> Vec<(PluginReport, Option<Description>)> {
        let loaded = self.inner.loaded();
        loaded
            .reports
            .iter()
            .map(|report| {
                let serving = loaded
                    .plugins
                    .get(&report.id)
                    .filter(|p| p.folder == report.folder && report.state == PluginState::Loaded);
                match serving {
                    Some(plugin) => (
                        PluginReport {
                            granted_hosts: plugin.granted_now(),
                            ..report.clone()
                        },
                        Some(plugin.description.clone()),
                    ),
                    None => (report.clone(), None),
                }
            })
            .collect()
    }

    /// Calls and failures per plugin since start (every typed-client call counts).
    pub fn call_stats(&self) -> Vec<CallStats> {
        use std::sync::atomic::Ordering;
        let calls = match self.inner.calls.read() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        calls
            .iter()
            .map(|(plugin, c)| CallStats {
                plugin: plugin.clone(),
                calls: c.calls.load(Ordering::Relaxed),
                failures: c.failures.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Ids of the loaded plugins of a kind.
    pub fn ids(&self, kind: PluginKind) -> Vec<String> {
        self.inner
            .loaded()
            .plugins
            .values()
            .filter(|p| p.manifest.kind == kind)
            .map(|p| p.manifest.id.clone())
            .collect()
    }

    /// Static description of a loaded plugin.
    pub fn description(&self, id: &str) -> Option<Description> {
        self.plugin(id).ok().map(|p| p.description.clone())
    }

    /// The manifest of a loaded plugin.
    pub fn manifest(&self, id: &str) -> Option<Manifest> {
        self.plugin(id).ok().map(|p| p.manifest.clone())
    }

    /// Replace the saved-settings layer of a loaded plugin (what the settings API stores),
    /// on top of the operator's baseline. Secrets given here are bound to the endpoint these
    /// values point at; the baseline's keys stay bound to the baseline's endpoint.
    pub fn set_settings(
        &self,
        id: &str,
        values: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let plugin = self.plugin(id)?;
        *plugin
            .saved
            .write()
            .map_err(|_| RuntimeError::Engine("settings lock poisoned".into()))? =
            PluginSettings::from_map(&plugin.manifest, values);
        let effective = Arc::new(plugin.resolve(None));
        *plugin
            .effective
            .write()
            .map_err(|_| RuntimeError::Engine("settings lock poisoned".into()))? = effective;
        Ok(())
    }

    /// Whether secret `key` of plugin `id` is configured and may be sent where the plugin is
    /// pointed now (false for an unknown plugin).
    pub fn secret_usable(&self, id: &str, key: &str) -> bool {
        self.plugin(id)
            .is_ok_and(|p| p.current().secret_usable(key))
    }

    pub(crate) fn plugin(&self, id: &str) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        self.inner
            .loaded()
            .plugins
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::NotLoaded(id.to_string()))
    }

    pub(crate) fn expect_kind(
        &self,
        id: &str,
        kind: PluginKind,
    ) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        let plugin = self.plugin(id)?;
        if plugin.manifest.kind != kind {
            return Err(RuntimeError::WrongKind {
                id: id.to_string(),
                expected: kind,
                actual: plugin.manifest.kind,
            });
        }
        Ok(plugin)
    }
}

impl Loaded {
    /// The plugin loaded from `folder`, if any.
    fn at_folder(&self, folder: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.values().find(|p| p.folder == folder).cloned()
    }

    fn report_of(&self, plugin: &LoadedPlugin) -> Option<&PluginReport> {
        self.reports
            .iter()
            .find(|r| r.folder == plugin.folder && r.id == plugin.manifest.id)
    }
}

impl PluginReport {
    fn empty(folder: String) -> PluginReport {
        PluginReport {
            id: folder.clone(),
            kind: None,
            version: None,
            wit_version: None,
            name: None,
            description: None,
            folder,
            requested_hosts: Vec::new(),
            granted_hosts: Vec::new(),
            state: PluginState::Loaded,
            compile_cache: None,
            load_ms: None,
            sha256: None,
            trust: None,
            trust_note: None,
            reload_error: None,
        }
    }

    fn failed(mut self, reason: String) -> PluginReport {
        self.state = PluginState::Failed { reason };
        self
    }

    fn failure(&self) -> Option<&String> {
        match &self.state {
            PluginState::Failed { reason } => Some(reason),
            PluginState::Loaded => self.reload_error.as_ref(),
        }
    }
}

/// Read every plugin folder: manifests, components and their digests. An id claimed by two
/// folders loads from neither (the version already serving from either keeps serving), so a
/// dropped-in look-alike can never shadow the real plugin.
fn survey(source: &PluginSource, before: &Loaded) -> Vec<Found> {
    let root = &source.plugins_dir;
    let read: Vec<(String, PathBuf, Result<Manifest, String>)> = plugin_folders(root)
        .into_iter()
        .map(|dir| {
            let manifest = Manifest::load(&dir).map_err(|e| e.to_string());
            (folder_name(root, &dir), dir, manifest)
        })
        .collect();
    let mut claims: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (folder, _, manifest) in &read {
        if let Ok(m) = manifest {
            claims.entry(m.id.clone()).or_default().push(folder.clone());
        }
    }
    read.into_iter()
        .map(|(folder, dir, manifest)| {
            let report = PluginReport::empty(folder.clone());
            let manifest = match manifest {
                Ok(m) => m,
                Err(reason) => return Found::Broken(report.failed(reason)),
            };
            let mut report = PluginReport {
                id: manifest.id.clone(),
                kind: Some(manifest.kind),
                version: Some(manifest.version.to_string()),
                wit_version: Some(manifest.wit.to_string()),
                name: Some(manifest.name.clone()),
                description: Some(manifest.description.clone()),
                requested_hosts: manifest.hosts.iter().map(ToString::to_string).collect(),
                ..report
            };
            if let Some(folders) = claims.get(&manifest.id).filter(|f| f.len() > 1) {
                let reason = format!(
                    "plugin id {:?} is claimed by several folders ({}); none of them is loaded",
                    manifest.id,
                    folders.join(", ")
                );
                return Found::Broken(report.failed(reason));
            }
            let operator = source
                .operator
                .get(&manifest.id)
                .cloned()
                .unwrap_or_default();
            let settings = match operator_settings(&manifest, &operator) {
                Ok(s) => s,
                Err(reason) => return Found::Broken(report.failed(reason)),
            };
            report.granted_hosts = allowed_origins(&manifest, &settings)
                .iter()
                .map(ToString::to_string)
                .collect();
            let bytes = match std::fs::read(&manifest.component) {
                Ok(b) => b,
                Err(e) => {
                    let reason = format!("cannot read {}: {e}", manifest.component.display());
                    return Found::Broken(report.failed(reason));
                }
            };
            let digest = hex::encode(sha2::Sha256::digest(&bytes));
            report.sha256 = Some(digest.clone());
            let manifest_text =
                std::fs::read(dir.join(crate::manifest::MANIFEST_FILE)).unwrap_or_default();
            let mut hasher = sha2::Sha256::new();
            hasher.update(&manifest_text);
            hasher.update(digest.as_bytes());
            let fingerprint = hex::encode(hasher.finalize());
            if let Some(old) = before.at_folder(&folder)
                && old.fingerprint == fingerprint
                && let Some(old_report) = before.report_of(&old)
            {
                let old_report = PluginReport {
                    reload_error: None,
                    ..old_report.clone()
                };
                return Found::Unchanged(old, old_report);
            }
            Found::Load(Box::new(Pending {
                report,
                manifest,
                settings,
                pin: operator.sha256.clone(),
                bytes,
                digest,
                fingerprint,
            }))
        })
        .collect()
}

/// Compile, link and describe one plugin; the report says how it went.
async fn load_pending(
    inner: &Arc<Inner>,
    pending: Pending,
) -> (PluginReport, Option<Arc<LoadedPlugin>>) {
    let started = Instant::now();
    let Pending {
        mut report,
        manifest,
        settings,
        pin,
        bytes,
        digest,
        fingerprint,
    } = pending;
    let folder = report.folder.clone();
    match inner
        .load_one(
            manifest,
            settings,
            pin.as_deref(),
            bytes,
            &digest,
            fingerprint,
            folder,
        )
        .await
    {
        Ok((plugin, outcome)) => {
            report.compile_cache = Some(match outcome {
                CacheOutcome::Hit => "hit",
                CacheOutcome::Miss => "miss",
                CacheOutcome::Disabled => "disabled",
            });
            report.load_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            report.trust = Some(plugin.trust.label());
            if let Trust::Unverified(note) = &plugin.trust {
                tracing::warn!(plugin = %plugin.manifest.id, "{note}");
                report.trust_note = Some(note.clone());
            }
            tracing::info!(plugin = %plugin.manifest.id, kind = %plugin.manifest.kind, cache = ?outcome, ms = report.load_ms, trust = plugin.trust.label(), "plugin loaded");
            (report, Some(Arc::new(plugin)))
        }
        Err(reason) => (report.failed(reason), None),
    }
}

impl Inner {
    fn loaded(&self) -> Arc<Loaded> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn load_one(
        &self,
        manifest: Manifest,
        settings: PluginSettings,
        pin: Option<&str>,
        bytes: Vec<u8>,
        digest: &str,
        fingerprint: String,
        folder: String,
    ) -> Result<(LoadedPlugin, CacheOutcome), String> {
        let trust = trust_of(&manifest.id, digest, pin, &self.source.bundled)?;
        // Compiling is CPU work: off the async workers, side by side with other plugins.
        let (cache, engine) = (self.source.cache.clone(), self.engine.clone());
        let (component, outcome) = tokio::task::spawn_blocking(move || cache.load(&engine, &bytes))
            .await
            .map_err(|e| format!("compilation did not finish: {e}"))?
            .map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
        let pre = link(&self.source.linkers, &component, manifest.kind)
            .map_err(|e| format!("does not implement the {} world: {e:#}", manifest.kind))?;
        // `info()` is static: it runs with no secrets and no network.
        let mut bare = Effective::resolve(&manifest, &[], false);
        bare.allowed.clear();
        let description = describe(self, Arc::new(bare), &pre)
            .await
            .map_err(|e| format!("info() failed: {e}"))?;
        check_description(&description)?;
        if let Description::Provider(info) = &description
            && info.id != manifest.id
        {
            return Err(format!(
                "info() reports id {:?} but the manifest says {:?}",
                info.id, manifest.id
            ));
        }
        let saved = PluginSettings::default();
        let effective = layered(&manifest, &settings, &saved, None, &trust);
        let plugin = LoadedPlugin {
            manifest,
            pre,
            description,
            trust,
            baseline: settings,
            saved: RwLock::new(saved),
            effective: RwLock::new(Arc::new(effective)),
            folder,
            fingerprint,
        };
        Ok((plugin, outcome))
    }

    pub(crate) fn counters(&self, plugin: &str) -> Arc<CallCounters> {
        if let Ok(calls) = self.calls.read()
            && let Some(c) = calls.get(plugin)
        {
            return c.clone();
        }
        let mut calls = match self.calls.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        calls.entry(plugin.to_string()).or_default().clone()
    }

    /// Wait for an instance slot: one of the plugin's share, then one of the pool.
    pub(crate) async fn slot(&self, plugin: &str) -> Result<crate::slots::Slot, CallError> {
        self.slots
            .acquire(plugin, self.limits.queue_timeout())
            .await
    }

    pub(crate) fn store(&self, settings: Arc<Effective>, budget: Duration) -> Store<HostState> {
        sandbox::new_store(
            &self.engine,
            CallEnv {
                settings,
                client: self.client.clone(),
                limits: self.limits.clone(),
                deadline: Instant::now() + budget,
                requests: 0,
                substituted: Vec::new(),
                export: None,
                log_lines: 0,
                log_bytes: 0,
                log_dropped: 0,
            },
        )
    }
}

/// Most models a provider's catalog may list, and formats an exporter may serve: what a
/// plugin declares is copied into settings and plugin listings, so it must stay small.
pub const MAX_MODELS: usize = 1000;
pub const MAX_FORMATS: usize = 64;
/// Longest id (model, provider, format) and display text a plugin declares, in characters.
pub const MAX_DECLARED_ID: usize = 128;
pub const MAX_DECLARED_TEXT: usize = 256;

/// What a plugin says about itself is bounded and printable, or the plugin is `failed`.
fn check_description(description: &Description) -> Result<(), String> {
    fn field(what: &str, value: &str, max: usize) -> Result<(), String> {
        if value.chars().count() > max {
            return Err(format!(
                "info() declares a {what} longer than {max} characters"
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!(
                "info() declares a {what} with control characters: {value:?}"
            ));
        }
        Ok(())
    }
    match description {
        Description::Provider(info) => {
            if info.models.len() > MAX_MODELS {
                return Err(format!(
                    "info() declares {} models; at most {MAX_MODELS}",
                    info.models.len()
                ));
            }
            field("provider id", &info.id, MAX_DECLARED_ID)?;
            field("display name", &info.display_name, MAX_DECLARED_TEXT)?;
            field("default model", &info.default_model, MAX_DECLARED_ID)?;
            for model in &info.models {
                field("model id", &model.id, MAX_DECLARED_ID)?;
                field("model name", &model.display_name, MAX_DECLARED_TEXT)?;
            }
        }
        Description::Exporter(formats) => {
            if formats.len() > MAX_FORMATS {
                return Err(format!(
                    "supported() declares {} formats; at most {MAX_FORMATS}",
                    formats.len()
                ));
            }
            for f in formats {
                field("kind", &f.kind, MAX_DECLARED_ID)?;
                field("format", &f.format, MAX_DECLARED_ID)?;
                field("display name", &f.display_name, MAX_DECLARED_TEXT)?;
                field("media type", &f.media_type, MAX_DECLARED_TEXT)?;
                field("file extension", &f.file_extension, MAX_DECLARED_ID)?;
            }
        }
    }
    Ok(())
}

/// Call `info()` once, to learn what the plugin says about itself.
async fn describe(
    inner: &Inner,
    effective: Arc<Effective>,
    pre: &WorldPre,
) -> Result<Description, CallError> {
    // `info()` is static data; a plugin that takes longer than this at load time is broken
    // and must not hold up start-up.
    let budget = inner.limits.call_timeout().min(inner.limits.load_timeout());
    run(inner, effective, budget, None, async |store| {
        Ok(match pre {
            WorldPre::Llm(pre) => {
                let i = pre.instantiate_async(&mut *store).await?;
                Description::Provider(i.sceneintruder_plugin_llm().call_info(&mut *store).await?)
            }
            WorldPre::Vision(pre) => {
                let i = pre.instantiate_async(&mut *store).await?;
                Description::Provider(
                    i.sceneintruder_plugin_vision()
                        .call_info(&mut *store)
                        .await?,
                )
            }
            WorldPre::Video(pre) => {
                let i = pre.instantiate_async(&mut *store).await?;
                Description::Provider(
                    i.sceneintruder_plugin_video()
                        .call_info(&mut *store)
                        .await?,
                )
            }
            WorldPre::Exporter(pre) => {
                let i = pre.instantiate_async(&mut *store).await?;
                let formats = i
                    .sceneintruder_plugin_renderer()
                    .call_supported(&mut *store)
                    .await?;
                Description::Exporter(formats)
            }
            WorldPre::DocumentExporter(pre) => {
                let i = pre.instantiate_async(&mut *store).await?;
                let info = i
                    .sceneintruder_plugin_document_export()
                    .call_info(&mut *store)
                    .await?;
                Description::Exporter(crate::export::legacy_formats(info))
            }
        })
    })
    .await
}

/// Run one call in a fresh instance: wait for a slot, build the store, enforce the budget.
pub(crate) async fn run<T>(
    inner: &Inner,
    effective: Arc<Effective>,
    budget: Duration,
    cancel: Option<&tokio_util::sync::CancellationToken>,
    call: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
) -> Result<T, CallError> {
    let counters = inner.counters(&effective.plugin);
    counters
        .calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result = async {
        let _slot = inner.slot(&effective.plugin).await?;
        let mut store = inner.store(effective, budget);
        let out = sandbox::guarded(&mut store, budget, cancel, call).await;
        let dropped = store.data().call.log_dropped;
        if dropped > 0 {
            tracing::warn!(
                plugin = %store.data().call.settings.plugin,
                dropped,
                "plugin log lines dropped: over {} lines or {} bytes in one call",
                sandbox::LOG_LINES_PER_CALL,
                sandbox::LOG_BYTES_PER_CALL
            );
        }
        out
    }
    .await;
    if result.is_err() {
        counters
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    result
}

fn link(linkers: &Linkers, component: &Component, kind: PluginKind) -> wasmtime::Result<WorldPre> {
    Ok(match kind {
        PluginKind::LlmProvider => WorldPre::Llm(bindings::llm::LlmProviderPre::new(
            linkers.llm.instantiate_pre(component)?,
        )?),
        PluginKind::VisionProvider => WorldPre::Vision(bindings::vision::VisionProviderPre::new(
            linkers.vision.instantiate_pre(component)?,
        )?),
        PluginKind::VideoProvider => WorldPre::Video(bindings::video::VideoProviderPre::new(
            linkers.video.instantiate_pre(component)?,
        )?),
        PluginKind::Exporter => {
            let current = linkers
                .exporter
                .instantiate_pre(component)
                .and_then(bindings::exporter::ExporterPre::new);
            match current {
                Ok(pre) => WorldPre::Exporter(pre),
                // Not today's exporter: perhaps one built against WIT 0.1.0 / 0.1.1.
                Err(current) => match linkers
                    .document_exporter
                    .instantiate_pre(component)
                    .and_then(bindings::document_exporter::DocumentExporterPre::new)
                {
                    Ok(pre) => WorldPre::DocumentExporter(pre),
                    Err(_) => return Err(current),
                },
            }
        }
    })
}

fn operator_settings(
    manifest: &Manifest,
    operator: &OperatorSettings,
) -> Result<PluginSettings, String> {
    let mut settings = PluginSettings::from_map(manifest, operator.values.clone());
    settings.grants = operator
        .allow_hosts
        .iter()
        .map(|h| Origin::parse(h).map_err(|e| format!("operator grant {h:?}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(settings)
}

fn folder_name(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root).unwrap_or(dir).display().to_string()
}

/// Plugin folders in name order. A folder without a `plugin.toml` is reported as broken
/// rather than silently ignored.
fn plugin_folders(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        tracing::warn!(dir = %root.display(), "plugins directory not readable; no plugins loaded");
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            // Hidden folders (e.g. `.cache`) are not plugins.
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_ids_are_reserved_for_their_own_components() {
        let bundled = BundledPlugins {
            ids: ["openai".to_string(), "markdown".to_string()].into(),
            digests: BTreeMap::from([("openai".to_string(), "aa11".to_string())]),
        };
        assert_eq!(
            trust_of("openai", "AA11", None, &bundled),
            Ok(Trust::Bundled)
        );
        assert!(matches!(
            trust_of("openai", "bb22", None, &bundled),
            Ok(Trust::Unverified(note)) if note.contains("sha256 = \"bb22\"")
        ));
        // A bundled id without a digest (a build without xtask) is not trusted blindly.
        assert!(matches!(
            trust_of("markdown", "cc33", None, &bundled),
            Ok(Trust::Unverified(_))
        ));
        assert_eq!(
            trust_of("openai", "bb22", Some("BB22"), &bundled),
            Ok(Trust::Pinned)
        );
        assert!(trust_of("openai", "aa11", Some("bb22"), &bundled).is_err());
        assert_eq!(
            trust_of("my-llm", "dd44", None, &bundled),
            Ok(Trust::ThirdParty)
        );
        assert!(!Trust::Unverified(String::new()).receives_keys());
        assert!(Trust::ThirdParty.receives_keys());
    }
}
