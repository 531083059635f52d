//! The Messages API codec: request body and response parsing.
//!
//! Request (`POST {base_url}/messages`):
//!
//! * `model`; `max_tokens`, always present: the request's cap, or [`DEFAULT_MAX_TOKENS`] when it
//!   has none, never above the model's documented output cap;
//! * `system`: the system prompt, plus the JSON-mode instruction when JSON is asked for (the API
//!   has no JSON switch and rejects unknown fields such as `response_format`); the system prompt
//!   is never sent as a message;
//! * `messages`: the conversation as alternating `user` / `assistant` turns (empty messages
//!   dropped, consecutive same-role messages merged);
//! * `temperature` (clamped to the vendor's 0-1 range) or else `top_p`: current models refuse
//!   both at once, so the temperature wins;
//! * `stop_sequences`: the non-blank stop strings;
//! * reasoning `on`, for models with extended thinking only:
//!   `thinking: {"type":"enabled","budget_tokens":N}` with `max_tokens` raised by the budget,
//!   and no `temperature` / `top_p` (the vendor refuses sampling changes while thinking);
//!   `off` and `default` send no `thinking` (thinking is off unless asked for);
//! * `stream: true` when streaming.
//!
//! Response: the `text` blocks of `content` joined (thinking and other blocks ignored),
//! `stop_reason` verbatim, `usage` (input = `input_tokens` + cache reads and writes, output =
//! `output_tokens`), and the echoed `model`.

use crate::catalog;
use sceneintruder_plugin_sdk::completion;
use sceneintruder_plugin_sdk::http;
use sceneintruder_plugin_sdk::llm::{CompletionRequest, CompletionResponse, Reasoning, Usage};
use sceneintruder_plugin_sdk::types::ProviderError;
use serde_json::{Map, Value, json};

/// `max_tokens` when the request sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The smallest thinking budget the vendor accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;

/// The largest thinking budget the plugin asks for on its own.
pub const MAX_THINKING_BUDGET: u32 = 16_384;

/// Output allowance of a request with extended thinking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thinking {
    /// `max_tokens` sent: thinking plus answer.
    pub max_tokens: u32,
    /// `thinking.budget_tokens` sent (at least [`MIN_THINKING_BUDGET`], below `max_tokens`).
    pub budget: u32,
}

/// Splits the output allowance when thinking: a budget as large as the answer allowance
/// (within [`MIN_THINKING_BUDGET`]..=[`MAX_THINKING_BUDGET`]) on top of it, within the model's
/// output cap (when the cap bites, at most half of it goes to thinking). `None` when no valid
/// budget fits.
pub fn thinking_allowance(answer: u32, cap: Option<u32>) -> Option<Thinking> {
    let mut budget = answer.clamp(MIN_THINKING_BUDGET, MAX_THINKING_BUDGET);
    let mut max_tokens = answer.saturating_add(budget);
    if let Some(cap) = cap
        && max_tokens > cap
    {
        max_tokens = cap;
        budget = budget.min(cap / 2).max(MIN_THINKING_BUDGET);
    }
    (budget < max_tokens).then_some(Thinking { max_tokens, budget })
}

/// Builds the request body.
pub fn build_body(req: &CompletionRequest, stream: bool) -> Result<Value, ProviderError> {
    let model = req.model.trim();
    if model.is_empty() {
        return Err(ProviderError::InvalidRequest("model is empty".into()));
    }
    let turns = completion::turns(&req.messages)?;
    let instruction = completion::json_instruction(&req.response_format)?;
    let system = completion::with_instruction(req, instruction.as_deref());

    let cap = catalog::max_output(model);
    let requested = req
        .max_tokens
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let answer = cap.map_or(requested, |cap| requested.min(cap));
    let thinking = match req.reasoning {
        Reasoning::On if catalog::supports_thinking(model) => thinking_allowance(answer, cap),
        _ => None,
    };

    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert(
        "max_tokens".into(),
        json!(thinking.map_or(answer, |t| t.max_tokens)),
    );
    if let Some(system) = system {
        body.insert("system".into(), json!(system));
    }
    let last = turns.len().saturating_sub(1);
    let messages: Vec<Value> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.user {
                json!({"role": "user", "content": t.text})
            } else if i == last {
                // A final assistant turn (a prefill) must not end in whitespace.
                json!({"role": "assistant", "content": t.text.trim_end()})
            } else {
                json!({"role": "assistant", "content": t.text})
            }
        })
        .collect();
    body.insert("messages".into(), Value::Array(messages));
    if thinking.is_none() {
        if let Some(t) = req.temperature {
            body.insert(
                "temperature".into(),
                completion::number_in("temperature", t, 0.0, 1.0)?,
            );
        } else if let Some(p) = req.top_p {
            body.insert("top_p".into(), completion::number_in("top_p", p, 0.0, 1.0)?);
        }
    }
    let stops: Vec<&str> = req
        .stop
        .iter()
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .collect();
    if !stops.is_empty() {
        body.insert("stop_sequences".into(), json!(stops));
    }
    if let Some(t) = thinking {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": t.budget}),
        );
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(body))
}

/// Input and output token counts of a `usage` object, each `None` when absent. Input counts
/// the uncached input plus cache reads and writes.
pub fn usage_counts(usage: &Value) -> (Option<u32>, Option<u32>) {
    let n = |k: &str| {
        usage
            .get(k)
            .and_then(Value::as_u64)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    };
    let inputs = [
        n("input_tokens"),
        n("cache_creation_input_tokens"),
        n("cache_read_input_tokens"),
    ];
    let input = inputs.iter().any(Option::is_some).then(|| {
        inputs
            .iter()
            .flatten()
            .fold(0u32, |a, b| a.saturating_add(*b))
    });
    (input, n("output_tokens"))
}

/// [`Usage`] from input and output counts; `None` when both are unknown.
pub fn usage(input: Option<u32>, output: Option<u32>) -> Option<Usage> {
    if input.is_none() && output.is_none() {
        return None;
    }
    let (p, o) = (input.unwrap_or(0), output.unwrap_or(0));
    Some(Usage {
        prompt_tokens: p,
        output_tokens: o,
        total_tokens: p.saturating_add(o),
    })
}

/// The echoed model when non-empty, else the requested one.
pub fn response_model(requested: &str, echoed: Option<&str>) -> String {
    match echoed.map(str::trim) {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => requested.trim().to_string(),
    }
}

/// Parses a 2xx Messages answer.
pub fn parse_response(
    requested_model: &str,
    body: &[u8],
) -> Result<CompletionResponse, ProviderError> {
    let v: Value = http::parse_json(body)?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(ProviderError::BadResponse(format!(
            "Anthropic returned an error: {}",
            http::error_message(body)
        )));
    }
    let content = v.get("content").and_then(Value::as_array).ok_or_else(|| {
        ProviderError::BadResponse(format!(
            "Anthropic response has no `content` array: {}",
            http::truncate(&String::from_utf8_lossy(body), 200)
        ))
    })?;
    let text = content
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    let (input, output) = v.get("usage").map(usage_counts).unwrap_or((None, None));
    Ok(CompletionResponse {
        text,
        finish_reason: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        usage: usage(input, output),
        model: response_model(requested_model, v.get("model").and_then(Value::as_str)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::llm::{JsonSchema, Message, ResponseFormat, Role};

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }

    fn req(model: &str) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system_prompt: None,
            messages: vec![msg(Role::User, "hi")],
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning: Reasoning::Default,
        }
    }

    #[test]
    fn minimal_body_always_has_max_tokens() {
        assert_eq!(
            build_body(&req("claude-haiku-4-5"), false).unwrap(),
            json!({
                "model": "claude-haiku-4-5",
                "max_tokens": 4096,
                "messages": [{"role": "user", "content": "hi"}],
            })
        );
        // 0 means "not set".
        let mut r = req("claude-haiku-4-5");
        r.max_tokens = Some(0);
        assert_eq!(build_body(&r, false).unwrap()["max_tokens"], 4096);
    }

    #[test]
    fn full_body() {
        let mut r = req(" claude-sonnet-4-5 ");
        r.system_prompt = Some("You are terse.".into());
        r.messages = vec![
            msg(Role::User, "Hello"),
            msg(Role::User, "Are you there?"),
            msg(Role::Assistant, "Hi."),
            msg(Role::User, ""),
            msg(Role::Assistant, "Yes."),
            msg(Role::User, "Again"),
        ];
        r.temperature = Some(0.7);
        r.top_p = Some(0.9);
        r.max_tokens = Some(900);
        r.stop = vec!["END".into(), " ".into()];
        r.reasoning = Reasoning::Off;
        assert_eq!(
            build_body(&r, true).unwrap(),
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 900,
                "system": "You are terse.",
                "messages": [
                    {"role": "user", "content": "Hello\n\nAre you there?"},
                    {"role": "assistant", "content": "Hi.\n\nYes."},
                    {"role": "user", "content": "Again"},
                ],
                "temperature": 0.7,
                "stop_sequences": ["END"],
                "stream": true,
            })
        );
    }

    #[test]
    fn sampling_rules() {
        let mut r = req("claude-haiku-4-5");
        r.top_p = Some(0.8);
        let b = build_body(&r, false).unwrap();
        assert_eq!(b["top_p"], json!(0.8));
        assert!(b.get("temperature").is_none());
        r.temperature = Some(1.6);
        let b = build_body(&r, false).unwrap();
        assert_eq!(b["temperature"], json!(1.0));
        assert!(b.get("top_p").is_none());
        r.temperature = Some(-0.5);
        assert_eq!(build_body(&r, false).unwrap()["temperature"], json!(0.0));
        for bad in [f32::NAN, f32::INFINITY] {
            r.temperature = Some(bad);
            assert!(matches!(
                build_body(&r, false),
                Err(ProviderError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn max_tokens_clamped_to_the_model() {
        let mut r = req("claude-opus-4-1-20250805");
        r.max_tokens = Some(100_000);
        assert_eq!(build_body(&r, false).unwrap()["max_tokens"], 32_000);
        // Unknown models are not clamped: the vendor decides.
        let mut r = req("claude-future-9");
        r.max_tokens = Some(100_000);
        assert_eq!(build_body(&r, false).unwrap()["max_tokens"], 100_000);
    }

    #[test]
    fn trailing_whitespace_of_a_prefill_is_dropped() {
        let mut r = req("claude-haiku-4-5");
        r.messages.push(msg(Role::Assistant, "{\n  "));
        let b = build_body(&r, false).unwrap();
        assert_eq!(
            b["messages"][1],
            json!({"role": "assistant", "content": "{"})
        );
    }

    #[test]
    fn json_mode_by_instruction() {
        let mut r = req("claude-haiku-4-5");
        r.system_prompt = Some("Be a narrator.".into());
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&r, false).unwrap();
        let system = b["system"].as_str().unwrap();
        assert!(system.starts_with("Be a narrator.\n\n"), "{system}");
        assert!(system.contains("JSON object"), "{system}");
        assert!(b.get("response_format").is_none() && b.get("output_format").is_none());

        r.system_prompt = None;
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema:
                r#"{"type":"object","properties":{"title":{"type":"string"}},"required":["title"]}"#
                    .into(),
            strict: true,
        });
        let b = build_body(&r, false).unwrap();
        let system = b["system"].as_str().unwrap();
        assert!(system.contains("JSON schema"), "{system}");
        assert!(system.contains(r#""required":["title"]"#), "{system}");
        assert!(b.get("response_format").is_none());

        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "x".into(),
            schema: "[]".into(),
            strict: false,
        });
        assert!(matches!(
            build_body(&r, false),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn thinking_only_when_on_and_supported() {
        let mut r = req("claude-sonnet-4-5");
        r.temperature = Some(0.3);
        r.top_p = Some(0.5);
        r.max_tokens = Some(2000);
        for reasoning in [Reasoning::Default, Reasoning::Off] {
            r.reasoning = reasoning;
            let b = build_body(&r, false).unwrap();
            assert!(b.get("thinking").is_none());
            assert_eq!(b["max_tokens"], 2000);
            assert_eq!(b["temperature"], json!(0.3));
        }
        r.reasoning = Reasoning::On;
        let b = build_body(&r, false).unwrap();
        assert_eq!(
            b["thinking"],
            json!({"type": "enabled", "budget_tokens": 2000})
        );
        assert_eq!(b["max_tokens"], 4000);
        assert!(b.get("temperature").is_none() && b.get("top_p").is_none());

        // A model without extended thinking keeps its sampling settings.
        r.model = "claude-3-5-haiku-latest".into();
        let b = build_body(&r, false).unwrap();
        assert!(b.get("thinking").is_none());
        assert_eq!(b["max_tokens"], 2000);
        assert_eq!(b["temperature"], json!(0.3));
    }

    #[test]
    fn thinking_budgets() {
        let t = |answer, cap| thinking_allowance(answer, cap);
        assert_eq!(
            t(5, None),
            Some(Thinking {
                max_tokens: 1029,
                budget: 1024
            })
        );
        assert_eq!(
            t(4096, Some(64_000)),
            Some(Thinking {
                max_tokens: 8192,
                budget: 4096
            })
        );
        assert_eq!(
            t(60_000, Some(64_000)),
            Some(Thinking {
                max_tokens: 64_000,
                budget: 16_384
            })
        );
        assert_eq!(
            t(32_000, Some(32_000)),
            Some(Thinking {
                max_tokens: 32_000,
                budget: 16_000
            })
        );
        assert_eq!(t(1000, Some(1024)), None);
        assert_eq!(t(u32::MAX, None).map(|t| t.max_tokens), Some(u32::MAX));
        for answer in [1, 500, 1024, 4096, 20_000, 64_000] {
            for cap in [None, Some(8192), Some(32_000), Some(64_000)] {
                if let Some(x) = t(answer, cap) {
                    assert!(x.budget >= MIN_THINKING_BUDGET && x.budget < x.max_tokens);
                    assert!(cap.is_none_or(|c| x.max_tokens <= c));
                }
            }
        }
    }

    #[test]
    fn invalid_requests() {
        assert!(matches!(
            build_body(&req(" "), false),
            Err(ProviderError::InvalidRequest(_))
        ));
        let mut r = req("claude-haiku-4-5");
        r.messages = vec![msg(Role::Assistant, "alone")];
        assert!(matches!(
            build_body(&r, false),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn parse_a_realistic_answer() {
        let body = br#"{
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [
                {"type": "thinking", "thinking": "Let me think.", "signature": "EqQB"},
                {"type": "text", "text": "- The hero "},
                {"type": "text", "text": "wakes at the foggy pier."}
            ],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 640, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 100, "output_tokens": 311}
        }"#;
        assert_eq!(
            parse_response("claude-haiku-4-5", body).unwrap(),
            CompletionResponse {
                text: "- The hero wakes at the foggy pier.".into(),
                finish_reason: "end_turn".into(),
                usage: Some(Usage {
                    prompt_tokens: 740,
                    output_tokens: 311,
                    total_tokens: 1051
                }),
                model: "claude-haiku-4-5-20251001".into(),
            }
        );
    }

    #[test]
    fn parse_edge_cases() {
        let r = parse_response(
            "claude-haiku-4-5",
            br#"{"content":[],"stop_reason":"max_tokens","model":""}"#,
        )
        .unwrap();
        assert_eq!(
            (r.text.as_str(), r.finish_reason.as_str(), r.model.as_str()),
            ("", "max_tokens", "claude-haiku-4-5")
        );
        assert_eq!(r.usage, None);
        let r = parse_response("m", br#"{"content":[{"type":"text","text":"x"}],"stop_reason":null,"usage":{"output_tokens":2}}"#).unwrap();
        assert_eq!(r.finish_reason, "");
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 0,
                output_tokens: 2,
                total_tokens: 2
            })
        );
        for bad in [
            &b"not json"[..],
            br#"{"type":"message"}"#,
            br#"{"content":"text"}"#,
            br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#,
        ] {
            assert!(
                matches!(parse_response("m", bad), Err(ProviderError::BadResponse(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
