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
mod log_budget;
mod manifest;
mod provider;
mod registry;
mod sandbox;
mod settings;
mod slots;
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
pub use http::refuse_server_addresses;
pub use llm::LlmProvider;
pub use manifest::{
    BASE_URL_KEY, HOST_WIT_VERSION, MANIFEST_FILE, Manifest, Origin, PluginKind, Version,
    validate_id,
};
pub use provider::ProviderClient;
pub use registry::{
    BundledPlugins, CallStats, Description, OperatorSettings, PluginReport, PluginRuntime,
    PluginState, ReloadFailure, ReloadSummary, RuntimeConfig,
};
pub use settings::{PluginSettings, Secret, is_secret_key};
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
    /// Settings resolved with per-client overrides, when this client has any.
    overrides: Option<Arc<settings::Effective>>,
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
        if let Some(overridden) = &self.overrides {
            return overridden.clone();
        }
        self.plugin.current()
    }

    /// A caller's temporary settings on top of the host's. The caller's own keys are bound
    /// to the endpoint its settings point at; the host's keys keep their own endpoint, so a
    /// caller-chosen `base_url` never receives them.
    fn with_overrides(&self, values: impl IntoIterator<Item = (String, String)>) -> PluginHandle {
        let caller = PluginSettings::from_map(&self.plugin.manifest, values);
        PluginHandle {
            overrides: Some(Arc::new(self.plugin.resolve(Some(&caller)))),
            ..self.clone()
        }
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
            .filter(|(key, _)| {
                if settings::is_secret_key(Some(&self.plugin.manifest), key) {
                    !effective.secret_usable(key)
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

    /// One provider call in a fresh instance of world `P`; a provider error returned by the
    /// plugin becomes `CallError::Provider`.
    async fn provider_call<P: Instantiate, T>(
        &self,
        pre: &P,
        cancel: Option<&CancellationToken>,
        call: impl AsyncFnOnce(
            &mut Store<sandbox::HostState>,
            P::World,
        ) -> wasmtime::Result<Result<T, types::ProviderError>>,
    ) -> Result<T, CallError> {
        self.run(cancel, async |store| {
            let world = pre.instantiate(&mut *store).await?;
            call(store, world).await
        })
        .await?
        .map_err(|error| {
            self.count_failure();
            CallError::Provider {
                plugin: self.id().to_string(),
                error,
            }
        })
    }

    /// A call that reached the plugin but failed in its own terms (vendor or export error).
    fn count_failure(&self) {
        self.rt
            .counters(self.id())
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn budget(&self) -> Duration {
        self.rt.limits.call_timeout()
    }
}

/// The pre-linked component of one world, instantiable into that world's bindings.
pub(crate) trait Instantiate {
    type World;
    fn instantiate(
        &self,
        store: &mut Store<sandbox::HostState>,
    ) -> impl std::future::Future<Output = wasmtime::Result<Self::World>> + Send;
}

macro_rules! instantiate_world {
    ($pre:ty => $world:ty) => {
        impl Instantiate for $pre {
            type World = $world;
            fn instantiate(
                &self,
                store: &mut Store<sandbox::HostState>,
            ) -> impl std::future::Future<Output = wasmtime::Result<Self::World>> + Send {
                self.instantiate_async(store)
            }
        }
    };
}

instantiate_world!(bindings::llm::LlmProviderPre<sandbox::HostState> => bindings::llm::LlmProvider);
instantiate_world!(bindings::vision::VisionProviderPre<sandbox::HostState> => bindings::vision::VisionProvider);
instantiate_world!(bindings::video::VideoProviderPre<sandbox::HostState> => bindings::video::VideoProvider);
