//! Streaming decoder for `streamGenerateContent?alt=sse`.
//!
//! Every event is a whole `GenerateContentResponse` carrying the next piece of text; the last
//! one carries `finishReason` and the final `usageMetadata`. There is no end marker: a body that
//! ends after a finish reason is complete, one that ends before it was cut
//! (`stream-interrupted`). An `error` object in the stream fails it (see
//! [`crate::error::from_body`]).

use crate::error;
use crate::generate::{candidate_text, no_candidates, parse_usage, response_model};
use sceneintruder_plugin_sdk::http;
use sceneintruder_plugin_sdk::llm::{CompletionResponse, Usage};
use sceneintruder_plugin_sdk::sse::SseEvent;
use sceneintruder_plugin_sdk::streams::{SseDecoder, Step};
use sceneintruder_plugin_sdk::types::ProviderError;
use serde_json::Value;

/// Decoder state of one streamed answer.
pub struct GenerateStream {
    requested_model: String,
    model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// Some text has been handed out.
    text_seen: bool,
}

impl GenerateStream {
    /// A decoder for a stream of `requested_model`.
    pub fn new(requested_model: &str) -> Self {
        Self {
            requested_model: requested_model.to_string(),
            model: None,
            finish_reason: None,
            usage: None,
            text_seen: false,
        }
    }
}

impl SseDecoder for GenerateStream {
    fn on_event(&mut self, event: &SseEvent) -> Result<Step, ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(Step::Skip);
        }
        let v: Value = serde_json::from_str(&event.data).map_err(|e| {
            ProviderError::BadResponse(format!(
                "Gemini stream event is not JSON ({e}): {}",
                http::truncate(&event.data, 200)
            ))
        })?;
        if let Some(e) = error::from_body(&v, self.text_seen) {
            return Err(e);
        }
        if let Some(m) = v
            .get("modelVersion")
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
        {
            self.model = Some(m.to_string());
        }
        if let Some(u) = v.get("usageMetadata").and_then(parse_usage) {
            self.usage = Some(u);
        }
        let Some(candidate) = v
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            // A blocked prompt is answered with feedback and no candidates.
            return if v.pointer("/promptFeedback/blockReason").is_some() {
                Err(no_candidates(&v))
            } else {
                Ok(Step::Skip)
            };
        };
        if let Some(r) = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            self.finish_reason = Some(r.to_string());
        }
        let text = candidate_text(candidate);
        Ok(if text.is_empty() {
            Step::Skip
        } else {
            self.text_seen = true;
            Step::Delta(text)
        })
    }

    fn finish(
        &mut self,
        text: String,
        _body_ended: bool,
    ) -> Result<CompletionResponse, ProviderError> {
        let Some(finish_reason) = self.finish_reason.take() else {
            return Err(ProviderError::StreamInterrupted(
                "Gemini stream ended before its final event (no finish reason)".into(),
            ));
        };
        Ok(CompletionResponse {
            text,
            finish_reason,
            usage: self.usage.take(),
            model: response_model(&self.requested_model, self.model.as_deref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::http::Error as HttpError;
    use sceneintruder_plugin_sdk::llm::StreamEvent;
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
        let mut source = SseSource::new(body, GenerateStream::new("gemini-2.5-flash"));
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
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Once\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" upon 世界\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 3,\"totalTokenCount\": 12},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
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
            assert_eq!(done.finish_reason, "STOP");
            assert_eq!(done.model, "gemini-2.5-flash");
            assert_eq!(
                done.usage,
                Some(Usage {
                    prompt_tokens: 9,
                    output_tokens: 3,
                    total_tokens: 12
                })
            );
        }
    }

    #[test]
    fn cut_streams() {
        let cut = &STREAM[..STREAM
            .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}]")
            .unwrap()];
        let (text, r) = run(&[cut.as_bytes()]);
        assert_eq!(text, "Once upon 世界");
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
        let cut = &STREAM[..STREAM.find("upon").unwrap()];
        let (text, r) = run(&[cut.as_bytes()]);
        assert_eq!(text, "Once");
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
        let (_, r) = run(&[]);
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(_))));
    }

    #[test]
    fn errors_in_the_stream() {
        let error = b"data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\n";
        let (text, r) = run(&[error]);
        assert_eq!(text, "");
        assert_eq!(
            r,
            Err(ProviderError::Upstream(UpstreamError {
                status: 503,
                message: "The model is overloaded.".into()
            }))
        );
        let first = &STREAM[..STREAM
            .find("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" upon")
            .unwrap()];
        let (text, r) = run(&[first.as_bytes(), error]);
        assert_eq!(text, "Once");
        assert!(matches!(r, Err(ProviderError::StreamInterrupted(m)) if m.contains("UNAVAILABLE")));
        let (_, r) = run(&[b"data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"}}\n\n"]);
        assert!(matches!(r, Err(ProviderError::BadResponse(m)) if m.contains("SAFETY")));
    }
}
