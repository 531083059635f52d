//! Vendor-neutral steps of translating a [`CompletionRequest`] for vendors whose wire format is
//! not OpenAI's (Anthropic Messages, Gemini `generateContent`, ...).
//!
//! * [`number`] / [`number_in`]: an `f32` setting as the JSON number a human would write
//!   (`0.7`, not `0.699999988079071`), optionally clamped into the vendor's range, refusing NaN
//!   and infinities;
//! * [`turns`]: the conversation with empty messages dropped and consecutive messages of the
//!   same role merged, so user and assistant turns alternate (vendors such as Anthropic and
//!   Gemini reject or mishandle repeated roles);
//! * [`schema_value`]: a request's JSON schema parsed and checked to be a JSON object;
//! * [`json_instruction`] and [`with_instruction`]: JSON mode expressed as an instruction
//!   appended to the system prompt, for vendors without a structured-output switch.
//!
//! # A vendor with its own wire format
//!
//! The translation of a made-up vendor that takes `{"model", "system", "turns", "stream"}`,
//! answers `{"text", "stop_reason"}`, and streams Server-Sent Events `data: {"delta": ".."}`
//! ended by an `end` event. `complete` and `start_stream` are what the plugin's
//! [`Guest`](crate::llm::Guest) methods call (the rest of the plugin is as in the
//! [`llm`](crate::llm) module); the request body and the stream decoder are pure and tested
//! natively (the plugin's `Cargo.toml` also depends on `serde` and `serde_json`):
//!
//! ```rust
//! use sceneintruder_plugin_sdk::llm::{CompletionRequest, CompletionResponse, ProviderError};
//! use sceneintruder_plugin_sdk::sse::SseEvent;
//! use sceneintruder_plugin_sdk::streams::{self, SseDecoder, Step};
//! use sceneintruder_plugin_sdk::{completion, config, http};
//! use serde::Deserialize;
//! use serde_json::{Value, json};
//!
//! const DEFAULT_BASE_URL: &str = "https://api.acme.example";
//!
//! /// The vendor's request body (JSON mode as an instruction: the vendor has no switch).
//! fn body(req: &CompletionRequest, stream: bool) -> Result<Value, ProviderError> {
//!     let turns: Vec<Value> = completion::turns(&req.messages)?
//!         .into_iter()
//!         .map(|t| json!({"from": if t.user { "user" } else { "model" }, "text": t.text}))
//!         .collect();
//!     let instruction = completion::json_instruction(&req.response_format)?;
//!     let mut body = json!({"model": req.model, "turns": turns, "stream": stream});
//!     if let Some(system) = completion::with_instruction(req, instruction.as_deref()) {
//!         body["system"] = json!(system);
//!     }
//!     if let Some(t) = req.temperature {
//!         body["temperature"] = completion::number_in("temperature", t, 0.0, 1.0)?;
//!     }
//!     Ok(body)
//! }
//!
//! /// `{base_url}/v1/generate`, once the key is known to be configured.
//! fn endpoint() -> Result<String, ProviderError> {
//!     config::require_secret("api_key")?;
//!     Ok(format!("{}/v1/generate", config::base_url(DEFAULT_BASE_URL)?))
//! }
//!
//! #[derive(Deserialize)]
//! struct Answer {
//!     text: String,
//!     stop_reason: Option<String>,
//! }
//!
//! /// `complete()`: non-2xx answers come back as typed errors, a 2xx body that is not an
//! /// `Answer` as `bad-response`.
//! fn complete(req: &CompletionRequest) -> Result<CompletionResponse, ProviderError> {
//!     let request = http::post_json(&endpoint()?, vec![http::bearer("api_key")], &body(req, false)?);
//!     let answer: Answer = http::send_json(&request)?;
//!     Ok(CompletionResponse {
//!         text: answer.text,
//!         finish_reason: answer.stop_reason.unwrap_or_default(),
//!         usage: None,
//!         model: req.model.clone(),
//!     })
//! }
//!
//! /// `start_stream()`: the answer's events are pulled by `streams::next_event`.
//! fn start_stream(req: &CompletionRequest) -> Result<u32, ProviderError> {
//!     let headers = vec![http::bearer("api_key")];
//!     let decoder = Decoder { model: req.model.clone(), finish: None };
//!     streams::open_sse(&endpoint()?, headers, &body(req, true)?, http::status_error, decoder)
//! }
//!
//! /// The vendor's stream events.
//! struct Decoder {
//!     model: String,
//!     finish: Option<String>,
//! }
//!
//! impl SseDecoder for Decoder {
//!     fn on_event(&mut self, event: &SseEvent) -> Result<Step, ProviderError> {
//!         let data: Value = http::parse_json(event.data.as_bytes())?;
//!         if event.event.as_deref() == Some("end") {
//!             self.finish = Some(data["stop_reason"].as_str().unwrap_or("stop").to_string());
//!             return Ok(Step::End);
//!         }
//!         Ok(match data["delta"].as_str() {
//!             Some(delta) => Step::Delta(delta.to_string()),
//!             None => Step::Skip,
//!         })
//!     }
//!
//!     fn finish(&mut self, text: String, body_ended: bool) -> Result<CompletionResponse, ProviderError> {
//!         if body_ended {
//!             return Err(ProviderError::StreamInterrupted("no end event".into()));
//!         }
//!         Ok(CompletionResponse {
//!             text,
//!             finish_reason: self.finish.take().unwrap_or_default(),
//!             usage: None,
//!             model: self.model.clone(),
//!         })
//!     }
//! }
//! # fn main() {
//!
//! // Native unit tests: the body, and the decoder over a body held in memory.
//! use sceneintruder_plugin_sdk::llm::{Message, Reasoning, ResponseFormat, Role, StreamEvent};
//!
//! let req = CompletionRequest {
//!     model: "acme-1".into(),
//!     system_prompt: None,
//!     messages: vec![
//!         Message { role: Role::User, content: "Hi".into() },
//!         Message { role: Role::User, content: "Still there?".into() },
//!     ],
//!     temperature: Some(1.5),
//!     max_tokens: None,
//!     top_p: None,
//!     stop: Vec::new(),
//!     response_format: ResponseFormat::Text,
//!     reasoning: Reasoning::Default,
//! };
//! let b = body(&req, true).unwrap();
//! assert_eq!(b["turns"], json!([{"from": "user", "text": "Hi\n\nStill there?"}]));
//! assert_eq!(b["temperature"], 1.0);
//!
//! struct Chunks(Vec<&'static str>);
//! impl streams::ChunkRead for Chunks {
//!     fn read_chunk(&mut self, _max: u32) -> Result<Option<Vec<u8>>, http::Error> {
//!         Ok((!self.0.is_empty()).then(|| self.0.remove(0).as_bytes().to_vec()))
//!     }
//! }
//! let chunks = Chunks(vec![
//!     "data: {\"delta\": \"Hel\"}\n\n",
//!     "data: {\"delta\": \"lo\"}\n\nevent: end\ndata: {\"stop_reason\": \"stop\"}\n\n",
//! ]);
//! let decoder = Decoder { model: "acme-1".into(), finish: None };
//! let id = streams::open(streams::SseSource::new(chunks, decoder));
//! assert_eq!(streams::next_event(id), Ok(StreamEvent::Delta("Hel".into())));
//! assert_eq!(streams::next_event(id), Ok(StreamEvent::Delta("lo".into())));
//! let Ok(StreamEvent::Done(done)) = streams::next_event(id) else { panic!("no done") };
//! assert_eq!((done.text.as_str(), done.finish_reason.as_str()), ("Hello", "stop"));
//! streams::close(id);
//! # }
//! ```

use crate::llm::{CompletionRequest, JsonSchema, Message, ResponseFormat, Role};
use crate::types::ProviderError;
use serde_json::Value;

/// `v` as a JSON number (`name` names the setting in the error).
pub fn number(name: &str, v: f32) -> Result<Value, ProviderError> {
    v.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| ProviderError::InvalidRequest(format!("{name} is not a finite number")))
}

/// `v` clamped into the vendor's range `min..=max`, as a JSON number. A non-finite `v` is
/// `invalid-request` (not clamped).
pub fn number_in(name: &str, v: f32, min: f32, max: f32) -> Result<Value, ProviderError> {
    if !v.is_finite() {
        return Err(ProviderError::InvalidRequest(format!(
            "{name} is not a finite number"
        )));
    }
    number(name, v.clamp(min, max))
}

/// One turn of a conversation whose roles alternate.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    /// `true` for the user, `false` for the assistant.
    pub user: bool,
    /// The text of every message merged into this turn.
    pub text: String,
}

/// Separator placed between the texts of merged messages.
pub const TURN_SEPARATOR: &str = "\n\n";

/// The conversation as alternating turns: messages whose text is empty or only whitespace
/// are dropped, and consecutive messages of the same role are joined with
/// [`TURN_SEPARATOR`]. `invalid-request` when nothing is left or no turn is the user's.
pub fn turns(messages: &[Message]) -> Result<Vec<Turn>, ProviderError> {
    let mut out: Vec<Turn> = Vec::with_capacity(messages.len());
    for m in messages {
        if m.content.trim().is_empty() {
            continue;
        }
        let user = matches!(m.role, Role::User);
        match out.last_mut() {
            Some(last) if last.user == user => {
                last.text.push_str(TURN_SEPARATOR);
                last.text.push_str(&m.content);
            }
            _ => out.push(Turn {
                user,
                text: m.content.clone(),
            }),
        }
    }
    if !out.iter().any(|t| t.user) {
        return Err(ProviderError::InvalidRequest(
            "the conversation has no non-empty user message".into(),
        ));
    }
    Ok(out)
}

/// The schema of a `json-schema` response format, parsed; `invalid-request` unless it is a
/// JSON object.
pub fn schema_value(schema: &JsonSchema) -> Result<Value, ProviderError> {
    let v: Value = serde_json::from_str(&schema.schema).map_err(|e| {
        ProviderError::InvalidRequest(format!("json schema is not valid JSON: {e}"))
    })?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(ProviderError::InvalidRequest(
            "json schema must be a JSON object".into(),
        ))
    }
}

/// The instruction that asks for a bare JSON object.
pub const JSON_OBJECT_INSTRUCTION: &str = "Reply with one valid JSON object and nothing else: \
no text before or after it and no Markdown code fences.";

/// The JSON-mode instruction for `format`: `None` for free text; for `json-object`
/// [`JSON_OBJECT_INSTRUCTION`]; for `json-schema` that instruction plus the schema (compact,
/// named when it has a name). `invalid-request` for a schema that is not a JSON object.
pub fn json_instruction(format: &ResponseFormat) -> Result<Option<String>, ProviderError> {
    match format {
        ResponseFormat::Text => Ok(None),
        ResponseFormat::JsonObject => Ok(Some(JSON_OBJECT_INSTRUCTION.to_string())),
        ResponseFormat::JsonSchema(s) => Ok(Some(schema_instruction(s, &schema_value(s)?))),
    }
}

/// The JSON-mode instruction for an already parsed `schema`.
pub fn schema_instruction(s: &JsonSchema, schema: &Value) -> String {
    let name = s.name.trim();
    let named = if name.is_empty() {
        String::new()
    } else {
        format!(" (\"{name}\")")
    };
    format!(
        "{JSON_OBJECT_INSTRUCTION} The object must conform to this JSON schema{named}: {schema}"
    )
}

/// The request's system prompt (when non-empty) followed by `instruction` (when given),
/// separated by a blank line; `None` when both are absent.
pub fn with_instruction(req: &CompletionRequest, instruction: Option<&str>) -> Option<String> {
    let system = req
        .system_prompt
        .as_deref()
        .filter(|s| !s.trim().is_empty());
    match (system, instruction) {
        (Some(s), Some(i)) => Some(format!("{s}{TURN_SEPARATOR}{i}")),
        (Some(s), None) => Some(s.to_string()),
        (None, Some(i)) => Some(i.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Reasoning;
    use serde_json::json;

    fn msg(user: bool, text: &str) -> Message {
        Message {
            role: if user { Role::User } else { Role::Assistant },
            content: text.into(),
        }
    }

    fn turn(user: bool, text: &str) -> Turn {
        Turn {
            user,
            text: text.into(),
        }
    }

    #[test]
    fn numbers_are_written_as_humans_write_them() {
        assert_eq!(number("t", 0.7).unwrap(), json!(0.7));
        assert_eq!(number("t", 0.0).unwrap(), json!(0.0));
        assert_eq!(number("t", 1.0).unwrap().to_string(), "1.0");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(
                matches!(number("top_p", bad), Err(ProviderError::InvalidRequest(m)) if m.contains("top_p"))
            );
            assert!(matches!(
                number_in("t", bad, 0.0, 1.0),
                Err(ProviderError::InvalidRequest(_))
            ));
        }
        assert_eq!(number_in("t", 1.7, 0.0, 1.0).unwrap(), json!(1.0));
        assert_eq!(number_in("t", -0.2, 0.0, 2.0).unwrap(), json!(0.0));
        assert_eq!(number_in("t", 0.35, 0.0, 2.0).unwrap(), json!(0.35));
    }

    #[test]
    fn turns_merge_and_skip_empty_messages() {
        let t = turns(&[
            msg(true, "a"),
            msg(true, "b"),
            msg(false, "  "),
            msg(true, "c"),
            msg(false, "x"),
            msg(false, "y"),
        ])
        .unwrap();
        assert_eq!(t, vec![turn(true, "a\n\nb\n\nc"), turn(false, "x\n\ny")]);
        // A leading assistant turn is kept as it is.
        let t = turns(&[msg(false, "hello"), msg(true, "hi")]).unwrap();
        assert_eq!(t, vec![turn(false, "hello"), turn(true, "hi")]);
        for bad in [vec![], vec![msg(true, " \n")], vec![msg(false, "only me")]] {
            assert!(matches!(turns(&bad), Err(ProviderError::InvalidRequest(_))));
        }
    }

    #[test]
    fn json_instructions() {
        assert_eq!(json_instruction(&ResponseFormat::Text).unwrap(), None);
        let obj = json_instruction(&ResponseFormat::JsonObject)
            .unwrap()
            .unwrap();
        assert!(obj.contains("JSON object") && obj.contains("code fences"));
        let schema = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{ "type": "object", "properties": { "title": { "type": "string" } } }"#
                .into(),
            strict: true,
        });
        let s = json_instruction(&schema).unwrap().unwrap();
        assert!(s.starts_with(JSON_OBJECT_INSTRUCTION), "{s}");
        assert!(s.contains("(\"scene\")"), "{s}");
        assert!(
            s.ends_with(r#"{"properties":{"title":{"type":"string"}},"type":"object"}"#)
                || s.ends_with(r#"{"type":"object","properties":{"title":{"type":"string"}}}"#),
            "{s}"
        );
        for bad in ["{nope", "[1]", "\"x\""] {
            let f = ResponseFormat::JsonSchema(JsonSchema {
                name: String::new(),
                schema: bad.into(),
                strict: false,
            });
            assert!(matches!(
                json_instruction(&f),
                Err(ProviderError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn system_prompt_with_instruction() {
        let mut req = CompletionRequest {
            model: "m".into(),
            system_prompt: Some("Be brief.".into()),
            messages: vec![msg(true, "hi")],
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning: Reasoning::Default,
        };
        assert_eq!(
            with_instruction(&req, Some("JSON!")).as_deref(),
            Some("Be brief.\n\nJSON!")
        );
        assert_eq!(with_instruction(&req, None).as_deref(), Some("Be brief."));
        req.system_prompt = Some("  ".into());
        assert_eq!(
            with_instruction(&req, Some("JSON!")).as_deref(),
            Some("JSON!")
        );
        req.system_prompt = None;
        assert_eq!(with_instruction(&req, None), None);
    }
}
