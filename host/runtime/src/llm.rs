//! Typed client for `llm-provider` plugins.

use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use wasmtime::Store;

pub use crate::bindings::llm::exports::sceneintruder::plugin::llm::{
    CompletionRequest, CompletionResponse, JsonSchema, Message, Reasoning, ResponseFormat, Role,
    StreamEvent, Usage,
};
use crate::bindings::llm::{LlmProvider as Bindings, LlmProviderPre};
use crate::error::{CallError, RuntimeError};
use crate::registry::WorldPre;
use crate::sandbox::{self, HostState};
use crate::types::{ModelInfo, ProviderError};
use crate::{PluginKind, PluginRuntime};

/// A text-generation provider plugin.
pub type LlmProvider = crate::provider::ProviderClient<LlmProviderPre<HostState>>;

impl PluginRuntime {
    /// The LLM provider with this id.
    pub fn llm(&self, id: &str) -> Result<LlmProvider, RuntimeError> {
        self.provider(id, PluginKind::LlmProvider, |w| match w {
            WorldPre::Llm(pre) => Some(pre),
            _ => None,
        })
    }
}

fn provider_error(plugin: &str, error: ProviderError) -> CallError {
    CallError::Provider {
        plugin: plugin.to_string(),
        error,
    }
}

impl LlmProvider {
    pub async fn complete(
        &self,
        req: &CompletionRequest,
        cancel: Option<&CancellationToken>,
    ) -> Result<CompletionResponse, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_llm()
                    .call_complete(store, req)
                    .await
            })
            .await
    }

    /// Models the vendor offers now (calls the vendor).
    pub async fn list_models(
        &self,
        cancel: Option<&CancellationToken>,
    ) -> Result<Vec<ModelInfo>, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_llm()
                    .call_list_models(store)
                    .await
            })
            .await
    }

    /// Start a streamed completion. The instance stays alive (holding a pool slot) until the
    /// stream is finished or dropped.
    pub async fn stream(
        &self,
        req: &CompletionRequest,
        cancel: Option<CancellationToken>,
    ) -> Result<LlmStream, CallError> {
        let rt = &self.handle.rt;
        let slot = rt.slot(self.id()).await?;
        let started = Instant::now();
        let stream_deadline = started + rt.limits.stream_timeout();
        let budget = self.handle.budget();
        let mut store = rt.store(self.handle.effective(), budget);
        let pre = &self.pre;
        let (instance, id) = sandbox::guarded(&mut store, budget, cancel.as_ref(), async |store| {
            let instance = pre.instantiate_async(&mut *store).await?;
            let id = instance
                .sceneintruder_plugin_llm()
                .call_start_stream(&mut *store, req)
                .await?;
            Ok((instance, id))
        })
        .await?;
        let id = id.map_err(|e| provider_error(self.id(), e))?;
        Ok(LlmStream {
            store,
            instance,
            id,
            finished: false,
            stream_deadline,
            cancel,
            _slot: slot,
        })
    }
}

/// A running streamed completion; pull events with [`LlmStream::next`].
pub struct LlmStream {
    store: Store<HostState>,
    instance: Bindings,
    id: u32,
    finished: bool,
    stream_deadline: Instant,
    cancel: Option<CancellationToken>,
    _slot: OwnedSemaphorePermit,
}

impl LlmStream {
    /// The next event, or `None` after the final `done` event (or an error).
    pub async fn next(&mut self) -> Option<Result<StreamEvent, CallError>> {
        if self.finished {
            return None;
        }
        let call_budget = self.store.data().call.limits.call_timeout();
        let now = Instant::now();
        let deadline = (now + call_budget).min(self.stream_deadline);
        sandbox::set_deadline(&mut self.store, deadline);
        let budget = deadline.saturating_duration_since(now);
        let (instance, id) = (&self.instance, self.id);
        let result = sandbox::guarded(
            &mut self.store,
            budget,
            self.cancel.as_ref(),
            async |store| {
                instance
                    .sceneintruder_plugin_llm()
                    .call_next_event(&mut *store, id)
                    .await
            },
        )
        .await;
        let plugin = self.store.data().call.settings.plugin.to_string();
        let event = match result {
            Ok(Ok(event)) => Ok(event),
            Ok(Err(e)) => Err(provider_error(&plugin, e)),
            Err(e) => Err(e),
        };
        if !matches!(event, Ok(StreamEvent::Delta(_))) {
            self.finished = true;
            if matches!(event, Ok(StreamEvent::Done(_))) {
                // Best effort: the instance is dropped with the stream anyway.
                let _ = self
                    .instance
                    .sceneintruder_plugin_llm()
                    .call_close_stream(&mut self.store, id)
                    .await;
            }
        }
        Some(event)
    }
}
