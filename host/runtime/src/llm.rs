//! Typed client for `llm-provider` plugins.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::Store;

pub use crate::bindings::llm::exports::sceneintruder::plugin::llm::{
    CompletionRequest, CompletionResponse, JsonSchema, Message, Reasoning, ResponseFormat, Role,
    StreamEvent, Usage,
};
use crate::bindings::llm::{LlmProvider as Bindings, LlmProviderPre};
use crate::engine::Limits;
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

/// Bytes of a completion a plugin hands back: its text, model name and finish reason.
fn reply_bytes(response: &CompletionResponse) -> usize {
    response
        .text
        .len()
        .saturating_add(response.model.len())
        .saturating_add(response.finish_reason.len())
}

/// A completion within `limits.max_reply_bytes`, or `ReplyTooLarge`.
fn check_reply(
    plugin: &str,
    limits: &Limits,
    response: &CompletionResponse,
) -> Result<(), CallError> {
    if reply_bytes(response) > limits.max_reply_bytes {
        return Err(CallError::ReplyTooLarge {
            plugin: plugin.to_string(),
            limit_bytes: limits.max_reply_bytes,
        });
    }
    Ok(())
}

/// A failure reported this close to a stream event's deadline is taken as caused by that
/// deadline, however the plugin reported it (interrupted, or its own HTTP request timing out
/// just before the deadline).
const AT_DEADLINE: Duration = Duration::from_millis(100);

impl LlmProvider {
    pub async fn complete(
        &self,
        req: &CompletionRequest,
        cancel: Option<&CancellationToken>,
    ) -> Result<CompletionResponse, CallError> {
        let response = self
            .handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_llm()
                    .call_complete(store, req)
                    .await
            })
            .await?;
        check_reply(self.id(), &self.handle.rt.limits, &response).inspect_err(|_| {
            self.handle.count_failure();
        })?;
        Ok(response)
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

    /// Start a streamed completion. The instance stays alive (holding a pool slot and one of
    /// the plugin's own) until the stream is finished or dropped. Starting is bounded by the
    /// call budget and the idle timeout; each event by the idle timeout and what is left of
    /// the stream's budget; the events, their bytes and the final reply by their caps.
    pub async fn stream(
        &self,
        req: &CompletionRequest,
        cancel: Option<CancellationToken>,
    ) -> Result<LlmStream, CallError> {
        let rt = &self.handle.rt;
        let slot = rt.slot(self.id()).await?;
        let started = Instant::now();
        let stream_deadline = started + rt.limits.stream_timeout();
        let budget = self
            .handle
            .budget()
            .min(rt.limits.stream_idle_timeout())
            .min(rt.limits.stream_timeout());
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
            events: 0,
            bytes: 0,
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
    /// Events and text bytes delivered so far.
    events: u32,
    bytes: usize,
    _slot: crate::slots::Slot,
}

impl LlmStream {
    /// The next event, or `None` after the final `done` event (or an error). An event past
    /// a cap (idle timeout, stream budget, events, bytes, reply size) is an error that ends
    /// the stream; its text is never handed over.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, CallError>> {
        if self.finished {
            return None;
        }
        let limits = self.store.data().call.limits.clone();
        let now = Instant::now();
        let idle_deadline = now + limits.stream_idle_timeout();
        let deadline = idle_deadline
            .min(now + limits.call_timeout())
            .min(self.stream_deadline);
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
            Ok(Ok(event)) => self.within_caps(&plugin, &limits, event),
            Ok(Err(e)) => Err(provider_error(&plugin, e)),
            Err(e) => Err(e),
        };
        let event =
            event.map_err(|e| self.deadline_error(&plugin, &limits, e, deadline, idle_deadline));
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

    /// Count `event` against the stream's caps.
    fn within_caps(
        &mut self,
        plugin: &str,
        limits: &Limits,
        event: StreamEvent,
    ) -> Result<StreamEvent, CallError> {
        self.events = self.events.saturating_add(1);
        if self.events > limits.max_stream_events {
            return Err(CallError::StreamTooLong {
                plugin: plugin.to_string(),
                limit: limits.max_stream_events,
            });
        }
        let size = match &event {
            StreamEvent::Delta(text) => text.len(),
            StreamEvent::Done(response) => {
                check_reply(plugin, limits, response)?;
                reply_bytes(response)
            }
        };
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > limits.max_stream_bytes {
            return Err(CallError::StreamTooLarge {
                plugin: plugin.to_string(),
                limit_bytes: limits.max_stream_bytes,
            });
        }
        Ok(event)
    }

    /// A failure when the event's deadline ran out is reported as that deadline: the idle
    /// timeout, or the stream's whole budget.
    fn deadline_error(
        &self,
        plugin: &str,
        limits: &Limits,
        error: CallError,
        deadline: Instant,
        idle_deadline: Instant,
    ) -> CallError {
        let timed_out = matches!(
            error,
            CallError::Timeout { .. } | CallError::Provider { .. }
        ) && Instant::now() + AT_DEADLINE >= deadline;
        if !timed_out {
            return error;
        }
        if deadline == idle_deadline {
            CallError::StreamIdle {
                plugin: plugin.to_string(),
                idle: limits.stream_idle_timeout(),
            }
        } else if deadline == self.stream_deadline {
            CallError::Timeout {
                plugin: plugin.to_string(),
                budget: limits.stream_timeout(),
            }
        } else {
            error
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(text: &str) -> CompletionResponse {
        CompletionResponse {
            text: text.into(),
            finish_reason: "stop".into(),
            usage: None,
            model: "m".into(),
        }
    }

    #[test]
    fn a_reply_counts_its_text_model_and_finish_reason() {
        let limits = Limits {
            max_reply_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(reply_bytes(&response("abcde")), 10);
        assert!(check_reply("p", &limits, &response("abcde")).is_ok());
        let e = check_reply("p", &limits, &response("abcdef")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugin p returned a reply larger than 10 bytes (limits.max_reply_bytes)"
        );
    }
}
