//! Provider settings: which LLM, vision and video provider is active, its options and its
//! keys. Saved through the API as one document (every section written or none), keys
//! encrypted with AES-256-GCM, and applied to the plugin runtime, which alone sees the keys.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use sceneintruder_runtime::{Description, OperatorSettings, PluginKind, PluginRuntime};
use sceneintruder_store::Database;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ServerError;
use crate::secrets::Cipher;

/// Row name of the providers document in the `settings` table.
const DOCUMENT: &str = "providers";
/// Changes remembered for `GET /api/config/metrics` (the reference's cap).
const HISTORY_CAP: usize = 1000;
const BASE_URL: &str = "base_url";
const ENDPOINT: &str = "endpoint";

/// The three provider kinds a settings save can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Llm,
    Vision,
    Video,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Llm, Kind::Vision, Kind::Video];

    fn plugin_kind(self) -> PluginKind {
        match self {
            Kind::Llm => PluginKind::LlmProvider,
            Kind::Vision => PluginKind::VisionProvider,
            Kind::Video => PluginKind::VideoProvider,
        }
    }

    /// The plugin serving provider `name` of this kind. Plugin ids are unique across kinds, so
    /// image and video plugins carry a prefix (`vision-openai`, `video-dashscope`) while the
    /// settings API names the provider as the reference does (`openai`, `dashscope`).
    pub fn plugin_id(self, name: &str) -> String {
        match self {
            Kind::Llm => name.to_string(),
            Kind::Vision => format!("vision-{name}"),
            Kind::Video => format!("video-{name}"),
        }
    }

    /// The provider name of plugin `id` (the inverse of [`Kind::plugin_id`]).
    pub fn provider_name(self, id: &str) -> String {
        let prefix = match self {
            Kind::Llm => return id.to_string(),
            Kind::Vision => "vision-",
            Kind::Video => "video-",
        };
        id.strip_prefix(prefix).unwrap_or(id).to_string()
    }

    /// The provider that needs no plugin and no endpoint (draws placeholders / fakes clips).
    pub fn builtin(self) -> Option<&'static str> {
        match self {
            Kind::Llm => None,
            Kind::Vision => Some("placeholder"),
            Kind::Video => Some("mock"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Llm => "LLM",
            Kind::Vision => "vision",
            Kind::Video => "video",
        }
    }

    /// Fields a save of this section changes (the reference records one history entry each).
    fn history_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Llm => &["llm_provider", "llm_config"],
            Kind::Vision => &[
                "vision_provider",
                "vision_default_model",
                "vision_config",
                "vision_model_providers",
                "vision_models",
            ],
            Kind::Video => &[
                "video_provider",
                "video_default_model",
                "video_config",
                "video_model_providers",
                "video_models",
            ],
        }
    }
}

/// A vision or video catalog entry as clients send and read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub key: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_reference_image: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_image_conditioned: Option<bool>,
}

/// One provider section as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Section {
    pub provider: String,
    /// Vision and video only; the LLM section keeps `default_model` inside `config`, as
    /// clients send it.
    pub default_model: String,
    /// Non-secret options, verbatim.
    pub config: BTreeMap<String, String>,
    /// Secret options, each `base64(nonce || ciphertext || tag)`.
    pub encrypted: BTreeMap<String, String>,
    pub model_providers: Option<BTreeMap<String, String>>,
    pub models: Option<Vec<CatalogEntry>>,
}

impl Section {
    /// The endpoint the keys of this section belong to (`None`: the provider's default).
    fn endpoint(&self) -> Option<String> {
        endpoint_of(&self.config)
    }
}

fn endpoint_of(config: &BTreeMap<String, String>) -> Option<String> {
    config
        .get(BASE_URL)
        .or_else(|| config.get(ENDPOINT))
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
}

/// The stored document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stored {
    pub llm: Section,
    pub vision: Section,
    pub video: Section,
}

impl Stored {
    pub fn section(&self, kind: Kind) -> &Section {
        match kind {
            Kind::Llm => &self.llm,
            Kind::Vision => &self.vision,
            Kind::Video => &self.video,
        }
    }

    fn section_mut(&mut self, kind: Kind) -> &mut Section {
        match kind {
            Kind::Llm => &mut self.llm,
            Kind::Vision => &mut self.vision,
            Kind::Video => &mut self.video,
        }
    }
}

/// What one section of a save asks for (values already coerced to strings).
#[derive(Debug, Clone, Default)]
pub struct SectionUpdate {
    pub provider: String,
    pub config: BTreeMap<String, String>,
    pub default_model: Option<String>,
    pub model_providers: Option<BTreeMap<String, String>>,
    pub models: Option<Vec<CatalogEntry>>,
}

/// A save of any subset of the sections.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub sections: Vec<(Kind, SectionUpdate)>,
    /// Fill the LLM `default_model` from the plugin when absent (`POST /api/settings` does,
    /// `PUT /api/llm/config` does not).
    pub fill_llm_default: bool,
}

/// A section that failed validation, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub kind: Kind,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{} settings are not valid: {}", .0.kind.name(), .0.reason)]
    Invalid(Invalid),
    #[error("cannot store the settings: {0}")]
    Store(String),
    /// The database could not be reached (`503 DATABASE_UNAVAILABLE`).
    #[error("the database is unavailable")]
    Unavailable,
}

impl SaveError {
    /// A failed read or write of the settings document.
    fn store(e: ServerError) -> SaveError {
        match e {
            ServerError::DatabaseUnavailable { .. } => SaveError::Unavailable,
            other => SaveError::Store(other.details()),
        }
    }
}

/// The settings in force: the stored document, its decrypted keys, and where they came from.
pub struct Current {
    pub stored: Stored,
    /// Decrypted secret options per kind (never serialised).
    secrets: BTreeMap<&'static str, BTreeMap<String, String>>,
    pub version: i64,
}

impl Current {
    fn secrets(&self, kind: Kind) -> BTreeMap<String, String> {
        self.secrets.get(kind.name()).cloned().unwrap_or_default()
    }
}

/// Change counters for `GET /api/config/metrics` and the health check.
#[derive(Debug, Clone)]
pub struct Tracker {
    /// +1 per section saved through `POST /api/settings` since start.
    pub config_version: u64,
    /// RFC3339 (seconds) of the last change, or the start time.
    pub last_updated: String,
    history: VecDeque<Change>,
}

#[derive(Debug, Clone)]
struct Change {
    #[allow(dead_code)] // kept for a future audit view; only the count is exposed today
    field: &'static str,
}

impl Tracker {
    pub fn history_len(&self) -> usize {
        self.history.len()
    }
}

/// The active provider of one kind, as features and status endpoints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub provider: String,
    /// The operator or the settings name a key for it.
    pub has_api_key: bool,
    /// `default_model` (else `model`) of the LLM section, or the vision/video default model.
    pub default_model: Option<String>,
    /// True when `default_model` was given explicitly (the reference reports `config.model`
    /// only then).
    pub model_key_present: bool,
}

/// The settings service: loads, validates, stores and applies provider settings.
pub struct Settings {
    cipher: Cipher,
    /// Settings from the config file and environment, per plugin (the baseline).
    operator: BTreeMap<String, OperatorSettings>,
    /// `[llm] provider` of the config file, used until a provider is saved.
    file_llm_provider: Option<String>,
    current: RwLock<Arc<Current>>,
    tracker: Mutex<Tracker>,
}

impl Settings {
    /// Read the stored settings and apply them to the runtime.
    pub async fn load(
        db: &Database,
        runtime: &PluginRuntime,
        cipher: Cipher,
        operator: BTreeMap<String, OperatorSettings>,
        file_llm_provider: Option<String>,
    ) -> Result<Settings, ServerError> {
        let settings = Settings {
            cipher,
            operator,
            file_llm_provider,
            current: RwLock::new(Arc::new(Current {
                stored: Stored::default(),
                secrets: BTreeMap::new(),
                version: 0,
            })),
            tracker: Mutex::new(Tracker {
                config_version: 0,
                last_updated: now_rfc3339(),
                history: VecDeque::new(),
            }),
        };
        settings.sync(db, runtime, true).await?;
        Ok(settings)
    }

    /// Re-read and apply the stored settings whatever their version (after the set of
    /// loaded plugins changed: new plugins get their saved layer).
    pub async fn reapply(&self, db: &Database, runtime: &PluginRuntime) -> Result<(), ServerError> {
        self.sync(db, runtime, true).await.map(|_| ())
    }

    /// Re-read the stored document if another server changed it; true when it did.
    pub async fn refresh(
        &self,
        db: &Database,
        runtime: &PluginRuntime,
    ) -> Result<bool, ServerError> {
        self.sync(db, runtime, false).await
    }

    /// Read and apply the stored settings; unless `force`, only when their version changed.
    async fn sync(
        &self,
        db: &Database,
        runtime: &PluginRuntime,
        force: bool,
    ) -> Result<bool, ServerError> {
        // Only the version is read while nothing changed (this runs every few seconds on
        // servers sharing PostgreSQL).
        let known = self.current().version;
        let stored_version = db
            .settings()
            .version(DOCUMENT)
            .await
            .map_err(ServerError::store)?;
        if !force && stored_version == known {
            return Ok(false);
        }
        let row = db
            .settings()
            .get(DOCUMENT)
            .await
            .map_err(ServerError::store)?;
        let version = row.as_ref().map_or(0, |r| r.version);
        let stored: Stored = match &row {
            Some(row) => serde_json::from_str(&row.document).map_err(|e| {
                ServerError::internal(format!("stored settings are not valid: {e}"))
            })?,
            None => Stored::default(),
        };
        let current = self.decrypt(stored, version);
        self.install(runtime, current);
        Ok(true)
    }

    pub fn current(&self) -> Arc<Current> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn tracker(&self) -> Tracker {
        match self.tracker.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn decrypt(&self, stored: Stored, version: i64) -> Current {
        let mut secrets = BTreeMap::new();
        for kind in Kind::ALL {
            let mut plain = BTreeMap::new();
            for (key, sealed) in &stored.section(kind).encrypted {
                match self.cipher.decrypt(sealed) {
                    Ok(value) => {
                        plain.insert(key.clone(), value);
                    }
                    // The key was replaced: behave as if this secret were not configured.
                    Err(e) => {
                        tracing::warn!(section = kind.name(), %key, "dropping a stored secret: {e}")
                    }
                }
            }
            secrets.insert(kind.name(), plain);
        }
        Current {
            stored,
            secrets,
            version,
        }
    }

    /// Make `current` the settings in force and hand every provider plugin its saved layer
    /// (the runtime keeps the operator's baseline itself and binds each layer's keys to the
    /// endpoint that layer points at).
    fn install(&self, runtime: &PluginRuntime, current: Current) {
        // A slower reader must not put back an older version than the one in force.
        if current.version != 0 && current.version < self.current().version {
            return;
        }
        for kind in Kind::ALL {
            let active = self.provider_of(&current, kind);
            for id in runtime.ids(kind.plugin_kind()) {
                let values = if Some(kind.provider_name(&id)) == active {
                    saved_layer(&current, kind)
                } else {
                    BTreeMap::new()
                };
                if let Err(e) = runtime.set_settings(&id, values) {
                    tracing::warn!(plugin = %id, "cannot apply settings: {e}");
                }
            }
        }
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::new(current),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(current),
        }
    }

    fn operator_values(&self, id: &str) -> BTreeMap<String, String> {
        self.operator
            .get(id)
            .map(|o| o.values.clone())
            .unwrap_or_default()
    }

    /// The active provider id of `kind` (saved, else the config file's for the LLM).
    fn provider_of(&self, current: &Current, kind: Kind) -> Option<String> {
        let saved = &current.stored.section(kind).provider;
        if !saved.is_empty() {
            return Some(saved.clone());
        }
        match kind {
            Kind::Llm => self.file_llm_provider.clone().filter(|p| !p.is_empty()),
            Kind::Vision | Kind::Video => kind.builtin().map(str::to_string),
        }
    }

    /// The non-secret values plugin `id` runs with when it is the active provider of `kind`:
    /// the operator's, overlaid by the saved section.
    fn compose(&self, current: &Current, kind: Kind, id: &str) -> BTreeMap<String, String> {
        let mut values = self.operator_values(id);
        values.retain(|key, _| !is_secret_key(None, key));
        values.extend(
            saved_layer(current, kind)
                .into_iter()
                .filter(|(key, _)| !is_secret_key(None, key)),
        );
        values
    }

    /// The endpoint the operator's keys for `id` belong to: the operator's base URL, else
    /// the manifest default.
    fn operator_endpoint(&self, runtime: &PluginRuntime, id: &str) -> Option<String> {
        let operator = self.operator.get(id).and_then(|o| endpoint_of(&o.values));
        operator.or_else(|| {
            runtime
                .manifest(id)
                .and_then(|m| m.config.get(BASE_URL).and_then(|s| s.default.clone()))
                .map(|u| u.trim().trim_end_matches('/').to_string())
        })
    }

    /// The active provider of `kind` and what is known about its configuration.
    pub fn active(&self, runtime: &PluginRuntime, kind: Kind) -> Option<Active> {
        let current = self.current();
        let provider = self.provider_of(&current, kind)?;
        let values = self.compose(&current, kind, &provider);
        let section = current.stored.section(kind);
        let (default_model, model_key_present) = match kind {
            Kind::Llm => {
                let explicit = values.get("default_model").filter(|m| !m.is_empty());
                (
                    explicit
                        .or_else(|| values.get("model"))
                        .filter(|m| !m.is_empty())
                        .cloned(),
                    section.config.contains_key("default_model"),
                )
            }
            Kind::Vision | Kind::Video => (
                Some(section.default_model.clone()).filter(|m| !m.is_empty()),
                !section.default_model.is_empty(),
            ),
        };
        Some(Active {
            // The runtime knows whether a key may be sent where the plugin is pointed.
            has_api_key: runtime.secret_usable(&kind.plugin_id(&provider), "api_key"),
            provider,
            default_model,
            model_key_present,
        })
    }

    /// Validate every section of `update`, then store them in one write and apply them.
    /// Nothing is stored when any section is invalid. Returns the kinds that changed.
    pub async fn save(
        &self,
        db: &Database,
        runtime: &PluginRuntime,
        update: Update,
    ) -> Result<Vec<Kind>, SaveError> {
        // Another writer (another server) may store between our read and write: retry on a
        // version conflict so no save is lost or half-applied.
        for _ in 0..8 {
            self.refresh(db, runtime).await.map_err(SaveError::store)?;
            let current = self.current();
            let mut next = current.stored.clone();
            let mut changed = Vec::new();
            for (kind, request) in &update.sections {
                let prepared = self
                    .prepare(runtime, &current, *kind, request, update.fill_llm_default)
                    .map_err(|reason| {
                        SaveError::Invalid(Invalid {
                            kind: *kind,
                            reason,
                        })
                    })?;
                if let Some(section) = prepared {
                    *next.section_mut(*kind) = section;
                    changed.push(*kind);
                }
            }
            if changed.is_empty() {
                return Ok(changed);
            }
            let text = serde_json::to_string(&next).map_err(|e| SaveError::Store(e.to_string()))?;
            let now = chrono::Utc::now().timestamp();
            let repo = db.settings();
            let written = if current.version == 0 {
                repo.create(DOCUMENT, &text, now).await
            } else {
                repo.replace(DOCUMENT, &text, current.version, now).await
            }
            .map_err(|e| SaveError::store(ServerError::store(e)))?;
            if written {
                self.refresh(db, runtime).await.map_err(SaveError::store)?;
                return Ok(changed);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Err(SaveError::Store(
            "the settings are being changed by someone else; try again".into(),
        ))
    }

    /// Record a successful `POST /api/settings` in the change counters.
    pub fn record(&self, kinds: &[Kind]) {
        let mut tracker = match self.tracker.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        for kind in kinds {
            tracker.config_version += 1;
            for field in kind.history_fields() {
                if tracker.history.len() == HISTORY_CAP {
                    tracker.history.pop_front();
                }
                tracker.history.push_back(Change { field });
            }
        }
        tracker.last_updated = now_rfc3339();
    }

    /// Note a change that the reference does not count as a new config version
    /// (`PUT /api/llm/config`).
    pub fn touch(&self) {
        let mut tracker = match self.tracker.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        tracker.last_updated = now_rfc3339();
    }

    /// The section `request` asks for, validated; `None` when it changes nothing.
    fn prepare(
        &self,
        runtime: &PluginRuntime,
        current: &Current,
        kind: Kind,
        request: &SectionUpdate,
        fill_llm_default: bool,
    ) -> Result<Option<Section>, String> {
        let stored = current.stored.section(kind);
        let provider = request.provider.trim().to_string();
        let builtin = kind.builtin() == Some(provider.as_str());
        let manifest = runtime.manifest(&kind.plugin_id(&provider));
        let loaded = manifest
            .as_ref()
            .is_some_and(|m| m.kind == kind.plugin_kind());
        if unchanged(stored, request) {
            return Ok(None);
        }
        if !loaded && !builtin {
            return Err(match kind {
                Kind::Llm => format!("不支持的提供商: {provider}"),
                Kind::Vision => format!("不支持的vision提供商: {provider}"),
                Kind::Video => format!("不支持的video提供商: {provider}"),
            });
        }

        let mut config = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (key, value) in &request.config {
            if is_secret_key(manifest.as_ref(), key) {
                secrets.insert(key.clone(), value.clone());
            } else {
                config.insert(key.clone(), value.clone());
            }
        }
        let endpoint = endpoint_of(&config);
        if let Some(url) = &endpoint {
            sceneintruder_runtime::Origin::from_url(url)
                .map_err(|e| format!("无效的 endpoint / base_url {url:?}: {e}"))?;
        }
        let has_default_endpoint = manifest
            .as_ref()
            .is_some_and(|m| m.config.get(BASE_URL).is_some_and(|s| s.default.is_some()));
        if kind != Kind::Llm && !builtin && endpoint.is_none() && !has_default_endpoint {
            return Err(match kind {
                Kind::Video => format!("{provider} video 需要 endpoint"),
                _ => format!("{provider} 需要 endpoint"),
            });
        }

        // Keys that were not sent again are kept only for the same provider at the same
        // endpoint: a stored key never follows a switch to another provider or base URL.
        let same_endpoint = provider == stored.provider && endpoint == stored.endpoint();
        let kept = current.secrets(kind);
        let mut plain_secrets = BTreeMap::new();
        for (key, value) in &secrets {
            if !value.trim().is_empty() {
                plain_secrets.insert(key.clone(), value.trim().to_string());
            }
        }
        if same_endpoint {
            for (key, value) in kept {
                plain_secrets.entry(key).or_insert(value);
            }
        }

        // Required options: sent, kept, defaulted by the manifest, or configured by the
        // operator for this same endpoint.
        if let Some(manifest) = &manifest {
            let operator = self.operator_values(&provider);
            let operator_endpoint_ok =
                endpoint.is_none() || endpoint == self.operator_endpoint(runtime, &provider);
            for (key, spec) in manifest.config.iter().filter(|(_, s)| s.required) {
                let present = if spec.secret || is_secret_key(Some(manifest), key) {
                    plain_secrets.contains_key(key)
                        || (operator_endpoint_ok
                            && operator.get(key).is_some_and(|v| !v.is_empty()))
                } else {
                    config.get(key).is_some_and(|v| !v.is_empty())
                        || spec.default.is_some()
                        || operator.get(key).is_some_and(|v| !v.is_empty())
                };
                if !present {
                    let sent_empty = request.config.contains_key(key);
                    return Err(
                        if provider == stored.provider
                            && endpoint != stored.endpoint()
                            && current.secrets(kind).contains_key(key)
                        {
                            format!(
                                "{key} 不能为空: the stored {key} is not sent to a new endpoint; \
                             enter it again"
                            )
                        } else if sent_empty {
                            format!("{key} 不能为空")
                        } else {
                            format!("缺少 {key} 配置")
                        },
                    );
                }
            }
        }

        let info_default = match runtime.description(&kind.plugin_id(&provider)) {
            Some(Description::Provider(info)) => Some(info.default_model),
            _ => kind.builtin().map(str::to_string),
        };
        let mut section = Section {
            provider: provider.clone(),
            ..Section::default()
        };
        match kind {
            Kind::Llm => {
                // An empty `default_model` (what a UI sends when nothing is picked) is absent.
                if config
                    .get("default_model")
                    .is_some_and(|m| m.trim().is_empty())
                {
                    config.remove("default_model");
                }
                if let Some(custom) = config.get("custom_models") {
                    serde_json::from_str::<Vec<String>>(custom).map_err(|_| {
                        "custom_models 必须是 JSON 字符串数组, e.g. [\"m1\",\"m2\"]".to_string()
                    })?;
                }
                if fill_llm_default
                    && !config.contains_key("default_model")
                    && let Some(model) = info_default.filter(|m| !m.is_empty())
                {
                    config.insert("default_model".into(), model);
                }
            }
            Kind::Vision | Kind::Video => {
                let default_model = request
                    .default_model
                    .clone()
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .or(info_default)
                    .unwrap_or_default();
                let mut model_providers = request
                    .model_providers
                    .clone()
                    .or_else(|| stored.model_providers.clone())
                    .unwrap_or_default();
                if !default_model.is_empty() {
                    model_providers
                        .entry(default_model.clone())
                        .or_insert_with(|| provider.clone());
                }
                section.default_model = default_model;
                section.model_providers = Some(model_providers);
                // A client that does not send the catalog keeps it.
                section.models = request.models.clone().or_else(|| stored.models.clone());
            }
        }
        section.config = config;
        section.encrypted = plain_secrets
            .iter()
            .map(|(k, v)| (k.clone(), self.cipher.encrypt(v)))
            .collect();
        Ok(Some(section))
    }
}

/// True when `request` would store exactly what is stored (no new key, same options).
fn unchanged(stored: &Section, request: &SectionUpdate) -> bool {
    if stored.provider.is_empty() || stored.provider != request.provider.trim() {
        return false;
    }
    let (mut secrets_sent, mut config) = (false, BTreeMap::new());
    for (key, value) in &request.config {
        if stored.encrypted.contains_key(key) || is_secret_key(None, key) {
            secrets_sent |= !value.trim().is_empty();
        } else {
            config.insert(key.clone(), value.clone());
        }
    }
    let default_same = request
        .default_model
        .as_ref()
        .is_none_or(|m| m.trim() == stored.default_model);
    let providers_same = request
        .model_providers
        .as_ref()
        .is_none_or(|m| Some(m) == stored.model_providers.as_ref());
    let models_same = request
        .models
        .as_ref()
        .is_none_or(|m| Some(m) == stored.models.as_ref());
    !secrets_sent && config == stored.config && default_same && providers_same && models_same
}

/// Options kept encrypted: those the plugin declares secret, and by name anything that looks
/// like a credential (the runtime's rule, so both sides agree on what is a key).
pub use sceneintruder_runtime::is_secret_key;

/// What the saved section hands the runtime for its provider: non-empty options, the
/// endpoint as `base_url` (vision and video sections call it `endpoint`), and the keys.
fn saved_layer(current: &Current, kind: Kind) -> BTreeMap<String, String> {
    let section = current.stored.section(kind);
    let mut values: BTreeMap<String, String> = section
        .config
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(endpoint) = section.endpoint() {
        values.insert(BASE_URL.to_string(), endpoint);
    }
    values.extend(current.secrets(kind));
    values
}

/// JSON scalars as the settings store them: strings as is, whole numbers without a decimal
/// point, booleans as `true`/`false`, null as empty; objects and arrays as compact JSON.
pub fn coerce(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn now_rfc3339() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The LLM service asks the settings which provider is active.
impl sceneintruder_llm::ProviderSource for Settings {
    fn active(&self, runtime: &PluginRuntime) -> Option<sceneintruder_llm::ActiveLlm> {
        let active = Settings::active(self, runtime, Kind::Llm)?;
        Some(sceneintruder_llm::ActiveLlm {
            provider: active.provider,
            default_model: active.default_model,
            generation: self.current().version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coercion_matches_the_wire_rules() {
        assert_eq!(coerce(&json!("x")), "x");
        assert_eq!(coerce(&json!(7)), "7");
        assert_eq!(coerce(&json!(7.0)), "7");
        assert_eq!(coerce(&json!(1.5)), "1.5");
        assert_eq!(coerce(&json!(true)), "true");
        assert_eq!(coerce(&Value::Null), "");
        assert_eq!(coerce(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(coerce(&json!([1, 2])), "[1,2]");
    }

    #[test]
    fn credential_names_are_secret() {
        for key in ["api_key", "api_secret", "access_token", "vision_api_key"] {
            assert!(is_secret_key(None, key), "{key}");
        }
        for key in ["base_url", "default_model", "token_limit", "endpoint"] {
            assert!(!is_secret_key(None, key), "{key}");
        }
    }

    #[test]
    fn endpoints_compare_without_trailing_slash() {
        let a = BTreeMap::from([("base_url".to_string(), "https://x.test/v1/".to_string())]);
        let b = BTreeMap::from([("endpoint".to_string(), " https://x.test/v1".to_string())]);
        assert_eq!(endpoint_of(&a), endpoint_of(&b));
        assert_eq!(endpoint_of(&BTreeMap::new()), None);
    }

    #[test]
    fn an_identical_request_is_unchanged_but_a_new_key_is_not() {
        let stored = Section {
            provider: "openai".into(),
            config: BTreeMap::from([("default_model".into(), "gpt-4o".into())]),
            encrypted: BTreeMap::from([("api_key".into(), "sealed".into())]),
            ..Section::default()
        };
        let mut request = SectionUpdate {
            provider: "openai".into(),
            config: BTreeMap::from([
                ("default_model".into(), "gpt-4o".into()),
                ("api_key".into(), "".into()),
            ]),
            ..SectionUpdate::default()
        };
        assert!(unchanged(&stored, &request));
        request.config.insert("api_key".into(), "sk-new".into());
        assert!(!unchanged(&stored, &request));
        request.config.insert("api_key".into(), "".into());
        request.provider = "anthropic".into();
        assert!(!unchanged(&stored, &request));
    }
}
