//! The `generateContent` codec: request body and response parsing.
//!
//! Request (`POST {base_url}/models/{model}:generateContent`):
//!
//! * `contents`: the conversation as alternating turns with roles `user` / `model` (empty
//!   messages dropped, consecutive same-role messages merged), each `{"parts":[{"text":..}]}`;
//! * `systemInstruction: {"parts":[{"text": S}]}` for the system prompt (never a `system`
//!   role, which the API rejects);
//! * `generationConfig`: `temperature` (clamped to 0-2), `topP` (0-1), `maxOutputTokens`
//!   (when set, never above the model's documented cap), `stopSequences` (non-blank, at most
//!   [`MAX_STOP_SEQUENCES`]); JSON mode -> `responseMimeType: "application/json"`, plus
//!   `responseSchema` (translated, see [`crate::schema`]) for a JSON schema, or, when the schema
//!   cannot be expressed in Gemini's subset, the schema as an instruction in the system
//!   instruction; the reasoning switch -> `thinkingConfig` (see
//!   [`crate::catalog::thinking_config`]). Left out when empty.
//!
//! Response: the text parts of `candidates[0].content.parts` joined (thought summaries
//! skipped), `finishReason` verbatim, `usageMetadata` (prompt = `promptTokenCount`, output =
//! `candidatesTokenCount` + `thoughtsTokenCount`, total = `totalTokenCount`), and the model
//! from `modelVersion`.

use crate::{catalog, error, schema};
use sceneintruder_plugin_sdk::completion;
use sceneintruder_plugin_sdk::http;
use sceneintruder_plugin_sdk::llm::{CompletionRequest, CompletionResponse, ResponseFormat, Usage};
use sceneintruder_plugin_sdk::types::ProviderError;
use serde_json::{Map, Value, json};

/// The most stop sequences Gemini accepts.
pub const MAX_STOP_SEQUENCES: usize = 5;

/// A built request body, and why a JSON schema went into the instruction instead of
/// `responseSchema` (for the log), if it did.
#[derive(Debug)]
pub struct Built {
    pub body: Value,
    pub schema_fallback: Option<String>,
}

/// Builds the request body.
pub fn build_body(req: &CompletionRequest) -> Result<Built, ProviderError> {
    let model = req.model.trim();
    catalog::resource(model)?;
    let turns = completion::turns(&req.messages)?;

    let mut config = Map::new();
    let mut instruction = None;
    let mut schema_fallback = None;
    match &req.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        ResponseFormat::JsonSchema(s) => {
            config.insert("responseMimeType".into(), json!("application/json"));
            let value = completion::schema_value(s)?;
            match schema::to_gemini(&value) {
                Ok(translated) => {
                    config.insert("responseSchema".into(), translated);
                }
                Err(why) => {
                    instruction = Some(completion::schema_instruction(s, &value));
                    schema_fallback = Some(why);
                }
            }
        }
    }
    if let Some(t) = req.temperature {
        config.insert(
            "temperature".into(),
            completion::number_in("temperature", t, 0.0, 2.0)?,
        );
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), completion::number_in("top_p", p, 0.0, 1.0)?);
    }
    if let Some(n) = req.max_tokens.filter(|n| *n > 0) {
        let n = catalog::max_output(model).map_or(n, |cap| n.min(cap));
        config.insert("maxOutputTokens".into(), json!(n));
    }
    let stops: Vec<&str> = req
        .stop
        .iter()
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .collect();
    if stops.len() > MAX_STOP_SEQUENCES {
        return Err(ProviderError::InvalidRequest(format!(
            "Gemini accepts at most {MAX_STOP_SEQUENCES} stop sequences, got {}",
            stops.len()
        )));
    }
    if !stops.is_empty() {
        config.insert("stopSequences".into(), json!(stops));
    }
    if let Some(thinking) = catalog::thinking_config(model, req.reasoning) {
        config.insert("thinkingConfig".into(), thinking);
    }

    let mut body = Map::new();
    let contents: Vec<Value> = turns
        .iter()
        .map(|t| {
            json!({
                "role": if t.user { "user" } else { "model" },
                "parts": [{"text": t.text}],
            })
        })
        .collect();
    body.insert("contents".into(), Value::Array(contents));
    if let Some(system) = completion::with_instruction(req, instruction.as_deref()) {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Built {
        body: Value::Object(body),
        schema_fallback,
    })
}

/// The answer text of a candidate: its text parts joined, thought summaries skipped.
pub fn candidate_text(candidate: &Value) -> String {
    candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

/// `usageMetadata` -> [`Usage`]; `None` unless it is an object.
pub fn parse_usage(u: &Value) -> Option<Usage> {
    let u = u.as_object()?;
    let n = |k: &str| {
        u.get(k)
            .and_then(Value::as_u64)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    };
    let prompt = n("promptTokenCount").unwrap_or(0);
    let output = n("candidatesTokenCount")
        .unwrap_or(0)
        .saturating_add(n("thoughtsTokenCount").unwrap_or(0));
    Some(Usage {
        prompt_tokens: prompt,
        output_tokens: output,
        total_tokens: n("totalTokenCount").unwrap_or(prompt.saturating_add(output)),
    })
}

/// The echoed model when non-empty, else the requested one.
pub fn response_model(requested: &str, echoed: Option<&str>) -> String {
    match echoed.map(str::trim) {
        Some(m) if !m.is_empty() => catalog::bare_id(m).to_string(),
        _ => catalog::bare_id(requested).to_string(),
    }
}

/// `bad-response` for an answer without candidates: the block reason when the prompt was
/// blocked.
pub fn no_candidates(v: &Value) -> ProviderError {
    match v
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        Some(reason) => ProviderError::BadResponse(format!("Gemini blocked the prompt ({reason})")),
        None => ProviderError::BadResponse("Gemini returned no candidates".into()),
    }
}

/// Parses a 2xx `generateContent` answer.
pub fn parse_response(
    requested_model: &str,
    body: &[u8],
) -> Result<CompletionResponse, ProviderError> {
    let v: Value = http::parse_json(body)?;
    if let Some(e) = error::from_body(&v, false) {
        return Err(e);
    }
    let Some(candidate) = v
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
    else {
        return Err(no_candidates(&v));
    };
    Ok(CompletionResponse {
        text: candidate_text(candidate),
        finish_reason: candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        usage: v.get("usageMetadata").and_then(parse_usage),
        model: response_model(
            requested_model,
            v.get("modelVersion").and_then(Value::as_str),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::llm::{JsonSchema, Message, Reasoning, Role};

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

    fn body(r: &CompletionRequest) -> Value {
        build_body(r).unwrap().body
    }

    #[test]
    fn minimal_body() {
        assert_eq!(
            body(&req("gemini-2.5-flash")),
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
        );
    }

    #[test]
    fn full_body() {
        let mut r = req("gemini-2.5-flash");
        r.system_prompt = Some("You are a literary analyst.".into());
        r.messages = vec![
            msg(Role::User, "Analyze this."),
            msg(Role::User, "Text: fog."),
            msg(Role::Assistant, "Done."),
            msg(Role::User, "More?"),
        ];
        r.temperature = Some(0.2);
        r.top_p = Some(0.9);
        r.max_tokens = Some(4000);
        r.stop = vec!["END".into(), "".into()];
        r.reasoning = Reasoning::Off;
        assert_eq!(
            body(&r),
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Analyze this.\n\nText: fog."}]},
                    {"role": "model", "parts": [{"text": "Done."}]},
                    {"role": "user", "parts": [{"text": "More?"}]},
                ],
                "systemInstruction": {"parts": [{"text": "You are a literary analyst."}]},
                "generationConfig": {
                    "temperature": 0.2,
                    "topP": 0.9,
                    "maxOutputTokens": 4000,
                    "stopSequences": ["END"],
                    "thinkingConfig": {"thinkingBudget": 0},
                },
            })
        );
    }

    #[test]
    fn limits() {
        let mut r = req("gemini-2.5-pro");
        r.max_tokens = Some(1_000_000);
        r.temperature = Some(3.5);
        let b = body(&r);
        assert_eq!(b["generationConfig"]["maxOutputTokens"], 65_536);
        assert_eq!(b["generationConfig"]["temperature"], json!(2.0));
        r.max_tokens = Some(0);
        assert!(
            body(&r)["generationConfig"]
                .get("maxOutputTokens")
                .is_none()
        );
        r.stop = (0..6).map(|i| format!("s{i}")).collect();
        assert!(matches!(
            build_body(&r),
            Err(ProviderError::InvalidRequest(_))
        ));
        let mut r = req("gemini-2.5-flash");
        r.top_p = Some(f32::INFINITY);
        assert!(matches!(
            build_body(&r),
            Err(ProviderError::InvalidRequest(_))
        ));
        for bad in ["", "a/b", "x?key=1"] {
            assert!(matches!(
                build_body(&req(bad)),
                Err(ProviderError::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn json_mode() {
        let mut r = req("gemini-2.5-flash");
        r.response_format = ResponseFormat::JsonObject;
        let b = body(&r);
        assert_eq!(
            b["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        assert!(b.get("response_format").is_none() && b.get("systemInstruction").is_none());

        r.system_prompt = Some("Be exact.".into());
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{"type":"object","additionalProperties":false,"properties":{"title":{"type":"string"}},"required":["title"]}"#.into(),
            strict: true,
        });
        let built = build_body(&r).unwrap();
        assert_eq!(built.schema_fallback, None);
        assert_eq!(
            built.body["generationConfig"],
            json!({
                "responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT", "properties": {"title": {"type": "STRING"}}, "required": ["title"]},
            })
        );
        assert_eq!(
            built.body["systemInstruction"],
            json!({"parts": [{"text": "Be exact."}]})
        );

        // A schema Gemini cannot express goes into the instruction instead.
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "free".into(),
            schema: r#"{"type":"object","additionalProperties":{"type":"string"}}"#.into(),
            strict: false,
        });
        let built = build_body(&r).unwrap();
        assert!(built.schema_fallback.is_some());
        assert_eq!(
            built.body["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        let system = built.body["systemInstruction"]["parts"][0]["text"]
            .as_str()
            .unwrap();
        assert!(
            system.starts_with("Be exact.\n\n") && system.contains("additionalProperties"),
            "{system}"
        );

        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "x".into(),
            schema: "not json".into(),
            strict: false,
        });
        assert!(matches!(
            build_body(&r),
            Err(ProviderError::InvalidRequest(_))
        ));
    }

    #[test]
    fn reasoning_switch() {
        let cfg = |model: &str, reasoning| {
            let mut r = req(model);
            r.reasoning = reasoning;
            body(&r)
                .pointer("/generationConfig/thinkingConfig")
                .cloned()
        };
        assert_eq!(cfg("gemini-2.5-flash", Reasoning::Default), None);
        assert_eq!(
            cfg("gemini-2.5-flash", Reasoning::On),
            Some(json!({"thinkingBudget": -1}))
        );
        assert_eq!(
            cfg("gemini-2.5-pro", Reasoning::Off),
            Some(json!({"thinkingBudget": 128}))
        );
        assert_eq!(cfg("gemini-2.0-flash", Reasoning::Off), None);
    }

    #[test]
    fn parse_a_realistic_answer() {
        let body = br#"{
          "candidates": [{
            "content": {"parts": [
              {"text": "Thinking about fog...", "thought": true},
              {"text": "{\"title\": \"Fog\","},
              {"text": " \"mood\": \"calm\"}"}
            ], "role": "model"},
            "finishReason": "STOP", "index": 0,
            "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
          }],
          "usageMetadata": {"promptTokenCount": 812, "candidatesTokenCount": 402,
                            "thoughtsTokenCount": 100, "totalTokenCount": 1314,
                            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 812}]},
          "modelVersion": "gemini-2.5-flash",
          "responseId": "abc123"
        }"#;
        assert_eq!(
            parse_response("gemini-2.5-flash", body).unwrap(),
            CompletionResponse {
                text: "{\"title\": \"Fog\", \"mood\": \"calm\"}".into(),
                finish_reason: "STOP".into(),
                usage: Some(Usage {
                    prompt_tokens: 812,
                    output_tokens: 502,
                    total_tokens: 1314
                }),
                model: "gemini-2.5-flash".into(),
            }
        );
    }

    #[test]
    fn parse_edge_cases() {
        // A safety stop without content: empty text, the reason verbatim.
        let r = parse_response(
            "models/gemini-2.5-flash",
            br#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#,
        )
        .unwrap();
        assert_eq!((r.text.as_str(), r.finish_reason.as_str()), ("", "SAFETY"));
        assert_eq!(r.model, "gemini-2.5-flash");
        assert_eq!(r.usage, None);
        let r = parse_response("m", br#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4}}"#).unwrap();
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt_tokens: 3,
                output_tokens: 4,
                total_tokens: 7
            })
        );
        assert!(matches!(
            parse_response("m", br#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}"#),
            Err(ProviderError::BadResponse(m)) if m.contains("PROHIBITED_CONTENT")
        ));
        assert!(matches!(
            parse_response("m", br#"{"candidates":[]}"#),
            Err(ProviderError::BadResponse(m)) if m.contains("no candidates")
        ));
        assert!(matches!(
            parse_response("m", br#"{"error":{"code":500,"status":"INTERNAL","message":"boom"}}"#),
            Err(ProviderError::Upstream(u)) if u.status == 500 && u.message == "boom"
        ));
        assert!(matches!(
            parse_response("m", b"<html>"),
            Err(ProviderError::BadResponse(_))
        ));
    }
}
