//! Streaming decoder for the Messages API's server-sent events.
//!
//! `message_start` carries the model and the input usage; `content_block_delta` events with a
//! `text_delta` carry the text (thinking and signature deltas are skipped); `message_delta`
//! carries the `stop_reason` and the cumulative output usage; `message_stop` ends the answer;
//! `ping` and unknown events are ignored; `error` fails the stream (see
//! [`crate::error::from_stream_event`]). A body that ends before `message_stop` was cut:
//! `stream-interrupted`.

use crate::error;
use crate::messages::{response_model, usage, usage_counts};
use sceneintruder_plugin_sdk::http;
use sceneintruder_plugin_sdk::llm::CompletionResponse;
use sceneintruder_plugin_sdk::sse::SseEvent;
use sceneintruder_plugin_sdk::streams::{SseDecoder, Step};
use sceneintruder_plugin_sdk::types::ProviderError;
use serde_json::Value;

/// Decoder state of one streamed message.
pub struct MessageStream {
    requested_model: String,
    model: Option<String>,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    stop_reason: Option<String>,
    /// Some text has been handed out.
    text_seen: bool,
}

impl MessageStream {
    /// A decoder for a stream of `requested_model`.
    pub fn new(requested_model: &str) -> Self {
        Self {
            requested_model: requested_model.to_string(),
            model: None,
            input_tokens: None,
            output_tokens: None,
            stop_reason: None,
            text_seen: false,
        }
    }

    fn take_usage(&mut self, u: &Value) {
        let (input, output) = usage_counts(u);
        if input.is_some() {
            self.input_tokens = input;
        }
        if output.is_some() {
            self.output_tokens = output;
        }
    }

    fn text(&mut self, text: Option<&str>) -> Step {
        match text.filter(|t| !t.is_empty()) {
            Some(t) => {
                self.text_seen = true;
                Step::Delta(t.to_string())
            }
            None => Step::Skip,
        }
    }
}

impl SseDecoder for MessageStream {
    fn on_event(&mut self, event: &SseEvent) -> Result<Step, ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(Step::Skip);
        }
        let v: Value = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::BadResponse(format!(
                "Anthropic stream event is not JSON ({e}): {}",
                http::truncate(&event.data, 200)
            ))
        })?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default();
        Ok(match kind {
            "message_start" => {
                let message = v.get("message");
                if let Some(m) = message
                    .and_then(|m| m.get("model"))
                    .and_then(Value::as_str)
                    .filter(|m| !m.trim().is_empty())
                {
                    self.model = Some(m.to_string());
                }
                if let Some(u) = message.and_then(|m| m.get("usage")) {
                    self.take_usage(u);
                }
                Step::Skip
            }
            "content_block_start" => {
                let block = v.get("content_block");
                if block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("text") {
                    self.text(block.and_then(|b| b.get("text")).and_then(Value::as_str))
                } else {
                    Step::Skip
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta");
                if delta.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("text_delta") {
                    self.text(delta.and_then(|d| d.get("text")).and_then(Value::as_str))
                } else {
                    Step::Skip
                }
            }
            "message_delta" => {
                if let Some(r) = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    self.stop_reason = Some(r.to_string());
                }
                if let Some(u) = v.get("usage") {
                    self.take_usage(u);
                }
                Step::Skip
            }
            "message_stop" => Step::End,
            "error" => return Err(error::from_stream_event(&v, &event.data, self.text_seen)),
            // ping, content_block_stop and event types added later.
            _ => Step::Skip,
        })
    }

    fn finish(
        &mut self,
        text: String,
        body_ended: bool,
    ) -> Result<CompletionResponse, ProviderError> {
        if body_ended {
            return Err(ProviderError::StreamInterrupted(
                "Anthropic stream ended before message_stop".into(),
            ));
        }
        Ok(CompletionResponse {
            text,
            finish_reason: self.stop_reason.take().unwrap_or_default(),
            usage: usage(self.input_tokens, self.output_tokens),
            model: response_model(&self.requested_model, self.model.as_deref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::http::Error as HttpError;
    use sceneintruder_plugin_sdk::llm::{StreamEvent, Usage};
    use sceneintruder_plugin_sdk::streams::{ChunkRead, EventSource, SseSource};
    use sceneintruder_plugin_sdk::types::UpstreamError;
    use std::collections::VecDeque;

    struct Body(VecDeque<Vec<u8>>);

    impl ChunkRead for Body {
        fn read_chunk(&mut self, _max: u32) -> Result<Option<Vec<u8>>, HttpError> {
            Ok(self.0.pop_front())
        }
    }

    fn run(chunks: &[&[u8]]) -> (String, Result<CompletionResponse, ProviderError>) {
        let body = Body(chunks.iter().map(|c| c.to_vec()).collect());
        let mut source = SseSource::new(body, MessageStream::new("claude-haiku-4-5"));
        let mut text = String::new();
        loop {
            match source.next_event() {
                Ok(StreamEvent::Delta(d)) => text.push_str(&d),
                Ok(StreamEvent::Done(r)) => return (text, Ok(r)),
                Err(e) => return (text, Err(e)),
            }
        }
    }

    const STREAM: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Once\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\" upon 世界\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn a_whole_stream_split_at_every_byte() {
        let body = STREAM.as_bytes();
        for split in 0..body.len() {
            let (a, b) = body.split_at(split);
            let (text, done) = run(&[a, b]);
            assert_eq!(text, "Once upon 世界", "split {split}");
            let done = done.unwrap();
            assert_eq!(done.text, "Once upon 世界");
            assert_eq!(done.finish_reason, "end_turn");
            assert_eq!(done.model, "claude-haiku-4-5-20251001");
            assert_eq!(
                done.usage,
                Some(Usage {
                    prompt_tokens: 30,
                    output_tokens: 15,
                    total_tokens: 45
                })
            );
        }
    }

    #[test]
    fn cut_before_message_stop() {
        // Even with the stop reason in, no message_stop means the answer may be incomplete.
        let cut = &STREAM[..STREAM.find("event: message_stop").unwrap()];
        let (text, r) = run(&[cut.as_bytes()]);
        assert_eq!(text, "Once upon 世界");
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
        // Cut inside an event.
        let cut = &STREAM[..STREAM.find("upon").unwrap()];
        let (text, r) = run(&[cut.as_bytes()]);
        assert_eq!(text, "Once");
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
        let (_, r) = run(&[]);
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
    }

    #[test]
    fn error_events() {
        let start = &STREAM[..STREAM.find("event: content_block_start").unwrap()];
        let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let (text, r) = run(&[start.as_bytes(), error.as_bytes()]);
        assert_eq!(text, "");
        assert_eq!(
            r,
            Err(ProviderError::Upstream(UpstreamError {
                status: 529,
                message: "Overloaded".into()
            }))
        );
        let partial = &STREAM[..STREAM
            .find("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}")
            .unwrap()];
        let (text, r) = run(&[partial.as_bytes(), error.as_bytes()]);
        assert_eq!(text, "Once upon 世界");
        assert!(
            matches!(r, Err(ProviderError::StreamInterrupted(m)) if m.contains("overloaded_error"))
        );
        let (_, r) = run(&[b"event: content_block_delta\ndata: {oops\n\n"]);
        assert!(matches!(r, Err(ProviderError::BadResponse(_))));
    }

    #[test]
    fn event_name_is_a_fallback_for_the_type_field() {
        let body = "event: content_block_delta\ndata: {\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\nevent: message_stop\ndata: {}\n\n";
        let (text, r) = run(&[body.as_bytes()]);
        assert_eq!(text, "a");
        let r = r.unwrap();
        assert_eq!(r.usage, None);
        assert_eq!(r.model, "claude-haiku-4-5");
    }
}
