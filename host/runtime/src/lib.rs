//! SceneIntruder plugin runtime.
//!
//! Loads WebAssembly component plugins from a folder, sandboxes every call (CPU deadline,
//! memory limit, response cap, instance pool), performs their outbound HTTP behind a
//! two-sided allow-list with secret substitution, and exposes typed clients:
//! [`LlmProvider`], [`VisionProvider`], [`VideoProvider`], [`Exporter`].
//!
//! This crate knows nothing of HTTP routes or SQL.

mod bindings;
mod cache;
mod engine;
mod error;
pub mod export;
mod http;
pub mod llm;
mod manifest;
mod registry;
mod sandbox;
mod settings;
pub mod video;
pub mod vision;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::Store;

pub use cache::CacheOutcome;
pub use engine::Limits;
pub use error::{
    CallError, ManifestError, RuntimeError, describe_export_error, describe_http_error,
    describe_provider_error,
};
pub use export::Exporter;
pub use llm::LlmProvider;
pub use manifest::{
    BASE_URL_KEY, HOST_WIT_VERSION, MANIFEST_FILE, Manifest, Origin, PluginKind, Version,
    validate_id,
};
pub use registry::{
    Description, OperatorSettings, PluginReport, PluginRuntime, PluginState, RuntimeConfig,
};
pub use settings::{PluginSettings, Secret};
pub use video::VideoProvider;
pub use vision::VisionProvider;

/// Types shared by the provider worlds (provider info, model info, provider errors).
pub mod types {
    pub use crate::bindings::http::Error as HttpError;
    pub use crate::bindings::types::{
        ImageSource, ModelInfo, ProviderError, ProviderInfo, RateLimit, UpstreamError,
    };
}

/// What every typed client shares: the runtime, the plugin, and per-call setting overrides.
#[derive(Clone)]
pub(crate) struct PluginHandle {
    rt: Arc<registry::Inner>,
    plugin: Arc<registry::LoadedPlugin>,
    overrides: Option<Arc<PluginSettings>>,
}

impl PluginHandle {
    fn new(rt: &PluginRuntime, plugin: Arc<registry::LoadedPlugin>) -> PluginHandle {
        PluginHandle {
            rt: rt.inner.clone(),
            plugin,
            overrides: None,
        }
    }

    fn id(&self) -> &str {
        &self.plugin.manifest.id
    }

    /// Settings for one call: manifest defaults, then the operator's, then the overrides.
    fn effective(&self) -> Arc<settings::Effective> {
        let operator = match self.plugin.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let merged = match &self.overrides {
            Some(o) => operator.overlay(o),
            None => operator,
        };
        Arc::new(settings::Effective::resolve(&self.plugin.manifest, &merged))
    }

    fn with_overrides(&self, values: impl IntoIterator<Item = (String, String)>) -> PluginHandle {
        let mut handle = self.clone();
        handle.overrides = Some(Arc::new(PluginSettings::from_map(
            &self.plugin.manifest,
            values,
        )));
        handle
    }

    async fn run<T>(
        &self,
        cancel: Option<&CancellationToken>,
        call: impl AsyncFnOnce(&mut Store<sandbox::HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        let budget = self.rt.limits.call_timeout();
        registry::run(&self.rt, self.effective(), budget, cancel, call).await
    }

    /// Settings the manifest marks `required` that have no value (secrets included).
    fn missing_required(&self) -> Vec<String> {
        let effective = self.effective();
        self.plugin
            .manifest
            .config
            .iter()
            .filter(|(_, spec)| spec.required)
            .filter(|(key, spec)| {
                if spec.secret {
                    !effective.secrets.contains_key(*key)
                } else {
                    effective
                        .values
                        .get(*key)
                        .is_none_or(|v| v.trim().is_empty())
                }
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn budget(&self) -> Duration {
        self.rt.limits.call_timeout()
    }
}
