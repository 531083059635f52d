//! Discovery and the plugin registry: every folder under the plugins directory is one plugin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

use crate::bindings;
use crate::cache::{CacheOutcome, CompileCache};
use crate::engine::{self, Limits};
use crate::error::{CallError, RuntimeError};
use crate::manifest::{Manifest, Origin, PluginKind};
use crate::sandbox::{self, CallEnv, HostState};
use crate::settings::{Effective, PluginSettings, Source, allowed_origins};

/// Longest a plugin's `info()` may take when it is loaded.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);

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
}

impl LoadedPlugin {
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
    slots: Arc<Semaphore>,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    reports: Vec<PluginReport>,
}

/// The plugin runtime: one engine, every discovered plugin, typed clients.
#[derive(Clone)]
pub struct PluginRuntime {
    pub(crate) inner: Arc<Inner>,
}

impl PluginRuntime {
    /// Discover and load every plugin under `config.plugins_dir`. Broken plugins are skipped
    /// and reported; only an engine that cannot be built is an error.
    pub async fn load(config: RuntimeConfig) -> Result<PluginRuntime, RuntimeError> {
        let engine = engine::build_engine(&config.limits)?;
        engine::spawn_epoch_ticker(&engine)?;
        let linkers = Linkers::new(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let client = crate::http::build_client().map_err(RuntimeError::Engine)?;
        let cache = CompileCache::new(&engine, config.cache_dir.clone());
        let limits = Arc::new(config.limits.clone());
        let mut inner = Inner {
            slots: Arc::new(Semaphore::new(limits.max_instances.max(1) as usize)),
            engine,
            client,
            limits,
            plugins: BTreeMap::new(),
            reports: Vec::new(),
            calls: RwLock::new(BTreeMap::new()),
        };

        // Read every manifest first: an id claimed by two folders loads from neither, so a
        // dropped-in look-alike can never shadow (or be shadowed by) the real plugin.
        let found: Vec<(PathBuf, Result<Manifest, String>)> = plugin_folders(&config.plugins_dir)
            .into_iter()
            .map(|dir| {
                let manifest = Manifest::load(&dir).map_err(|e| e.to_string());
                (dir, manifest)
            })
            .collect();
        let mut claims: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (dir, manifest) in &found {
            if let Ok(m) = manifest {
                claims
                    .entry(m.id.clone())
                    .or_default()
                    .push(folder_name(&config.plugins_dir, dir));
            }
        }

        for (dir, manifest) in found {
            let started = Instant::now();
            let folder = folder_name(&config.plugins_dir, &dir);
            let mut report = PluginReport {
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
            };
            let manifest = match manifest {
                Ok(m) => m,
                Err(reason) => {
                    report.state = PluginState::Failed { reason };
                    inner.record(report);
                    continue;
                }
            };
            report.id = manifest.id.clone();
            report.kind = Some(manifest.kind);
            report.version = Some(manifest.version.to_string());
            report.wit_version = Some(manifest.wit.to_string());
            report.name = Some(manifest.name.clone());
            report.description = Some(manifest.description.clone());
            report.requested_hosts = manifest.hosts.iter().map(ToString::to_string).collect();
            if let Some(folders) = claims.get(&manifest.id).filter(|f| f.len() > 1) {
                report.state = PluginState::Failed {
                    reason: format!(
                        "plugin id {:?} is claimed by several folders ({}); none of them is loaded",
                        manifest.id,
                        folders.join(", ")
                    ),
                };
                inner.record(report);
                continue;
            }
            let operator = config
                .plugins
                .get(&manifest.id)
                .cloned()
                .unwrap_or_default();
            let settings = match operator_settings(&manifest, &operator) {
                Ok(s) => s,
                Err(reason) => {
                    report.state = PluginState::Failed { reason };
                    inner.record(report);
                    continue;
                }
            };
            report.granted_hosts = allowed_origins(&manifest, &settings)
                .iter()
                .map(ToString::to_string)
                .collect();
            let load = inner
                .load_one(
                    &linkers,
                    &cache,
                    manifest,
                    settings,
                    operator.sha256.as_deref(),
                    &config.bundled,
                )
                .await;
            match load {
                Ok((plugin, outcome, digest)) => {
                    report.compile_cache = Some(match outcome {
                        CacheOutcome::Hit => "hit",
                        CacheOutcome::Miss => "miss",
                        CacheOutcome::Disabled => "disabled",
                    });
                    report.load_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                    report.sha256 = Some(digest);
                    report.trust = Some(plugin.trust.label());
                    if let Trust::Unverified(note) = &plugin.trust {
                        tracing::warn!(plugin = %plugin.manifest.id, "{note}");
                        report.trust_note = Some(note.clone());
                    }
                    tracing::info!(plugin = %plugin.manifest.id, kind = %plugin.manifest.kind, cache = ?outcome, ms = report.load_ms, trust = plugin.trust.label(), "plugin loaded");
                    inner
                        .plugins
                        .insert(plugin.manifest.id.clone(), Arc::new(plugin));
                }
                Err((reason, digest)) => {
                    report.sha256 = digest;
                    report.state = PluginState::Failed { reason };
                }
            }
            inner.record(report);
        }
        Ok(PluginRuntime {
            inner: Arc::new(inner),
        })
    }

    /// Every plugin found, loaded or failed, in folder order.
    pub fn reports(&self) -> &[PluginReport] {
        &self.inner.reports
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
            .plugins
            .values()
            .filter(|p| p.manifest.kind == kind)
            .map(|p| p.manifest.id.clone())
            .collect()
    }

    /// Static description of a loaded plugin.
    pub fn description(&self, id: &str) -> Option<Description> {
        self.inner.plugins.get(id).map(|p| p.description.clone())
    }

    /// The manifest of a loaded plugin.
    pub fn manifest(&self, id: &str) -> Option<Manifest> {
        self.inner.plugins.get(id).map(|p| p.manifest.clone())
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
        self.plugin(id).is_ok_and(|p| {
            let effective = match p.effective.read() {
                Ok(e) => e.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            effective.secret_usable(key)
        })
    }

    pub(crate) fn plugin(&self, id: &str) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        self.inner
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

impl Inner {
    fn record(&mut self, report: PluginReport) {
        if let PluginState::Failed { reason } = &report.state {
            tracing::warn!(plugin = %report.id, folder = %report.folder, "plugin not loaded: {reason}");
        }
        self.reports.push(report);
    }

    async fn load_one(
        &self,
        linkers: &Linkers,
        cache: &CompileCache,
        manifest: Manifest,
        settings: PluginSettings,
        pin: Option<&str>,
        bundled: &BundledPlugins,
    ) -> Result<(LoadedPlugin, CacheOutcome, String), (String, Option<String>)> {
        let bytes = std::fs::read(&manifest.component).map_err(|e| {
            (
                format!("cannot read {}: {e}", manifest.component.display()),
                None,
            )
        })?;
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        let failed = |reason: String| (reason, Some(digest.clone()));
        let trust = trust_of(&manifest.id, &digest, pin, bundled).map_err(failed)?;
        let (component, outcome) = cache
            .load(&self.engine, &bytes)
            .map_err(|e| failed(format!("not a valid WebAssembly component: {e}")))?;
        let pre = link(linkers, &component, manifest.kind).map_err(|e| {
            failed(format!(
                "does not implement the {} world: {e:#}",
                manifest.kind
            ))
        })?;
        // `info()` is static: it runs with no secrets and no network.
        let mut bare = Effective::resolve(&manifest, &[], false);
        bare.allowed.clear();
        let description = describe(self, Arc::new(bare), &pre)
            .await
            .map_err(|e| failed(format!("info() failed: {e}")))?;
        check_description(&description).map_err(failed)?;
        if let Description::Provider(info) = &description
            && info.id != manifest.id
        {
            return Err(failed(format!(
                "info() reports id {:?} but the manifest says {:?}",
                info.id, manifest.id
            )));
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
        };
        Ok((plugin, outcome, digest))
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

    /// Wait for an instance slot (the pool has a fixed size).
    pub(crate) async fn slot(&self, plugin: &str) -> Result<OwnedSemaphorePermit, CallError> {
        let wait = self.limits.queue_timeout();
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(CallError::Busy {
                plugin: plugin.to_string(),
                limit: self.limits.max_instances as usize,
            }),
        }
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
    let budget = inner.limits.call_timeout().min(INFO_TIMEOUT);
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
