//! The `openrouter` LLM provider: OpenRouter's OpenAI-compatible API through the SDK's codec.
//!
//! * `POST {base_url}/chat/completions` (default base `https://openrouter.ai/api/v1`), Bearer
//!   key, output cap `max_tokens`; the optional attribution headers `HTTP-Referer` (setting
//!   `http_referer`) and `X-Title` (setting `app_name`) only when configured (the reference's
//!   made-up defaults are not sent).
//! * Model ids are OpenRouter's `vendor/model` slugs.
//! * JSON: `response_format` `json_object` and `json_schema` (OpenRouter forwards structured
//!   outputs to the providers that support them).
//! * Reasoning: OpenRouter's unified `reasoning` object: `off` -> `{"enabled": false}`, `on` ->
//!   `{"enabled": true}`, `default` -> nothing.
//! * `list-models` reads OpenRouter's model list, which describes each model's context length,
//!   output cap, input modalities and supported parameters.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, ModelSpec};
use sceneintruder_plugin_sdk::{config, http, log, streams};
use serde_json::{Map, Value, json};

/// The OpenRouter dialect, with the optional attribution headers.
#[derive(Clone, Debug, Default)]
struct OpenRouter {
    referer: Option<String>,
    title: Option<String>,
}

/// `value` trimmed when it can be sent as a header value (printable ASCII), else `None`.
fn header_value(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty() && v.bytes().all(|b| (0x20..0x7f).contains(&b))).then(|| v.to_string())
}

impl OpenRouter {
    /// The dialect with the operator's attribution settings; a value that cannot be a header
    /// is left out (with a warning) rather than failing every call.
    fn from_config() -> Self {
        let read = |key: &str| {
            let raw = config::get_non_empty(key)?;
            let value = header_value(&raw);
            if value.is_none() {
                log::warn(&format!(
                    "setting `{key}` is not printable ASCII; the header is not sent"
                ));
            }
            value
        };
        OpenRouter {
            referer: read("http_referer"),
            title: read("app_name"),
        }
    }
}

impl ChatDialect for OpenRouter {
    fn vendor(&self) -> &str {
        "OpenRouter"
    }

    fn default_base_url(&self) -> &str {
        "https://openrouter.ai/api/v1"
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![http::bearer(self.api_key_secret())];
        if let Some(r) = &self.referer {
            h.push(("HTTP-Referer".into(), r.clone()));
        }
        if let Some(t) = &self.title {
            h.push(("X-Title".into(), t.clone()));
        }
        h
    }

    fn apply_reasoning(&self, _model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        let enabled = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => false,
            Reasoning::On => true,
        };
        body.insert("reasoning".into(), json!({"enabled": enabled}));
    }
}

/// The built-in catalog: real OpenRouter slugs.
const MODELS: [ModelSpec; 5] = [
    ModelSpec {
        id: "openai/gpt-4o-mini",
        name: "OpenAI: GPT-4o-mini",
        context: 128_000,
        max_output: Some(16_384),
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "openai/gpt-4.1",
        name: "OpenAI: GPT-4.1",
        context: 1_047_576,
        max_output: Some(32_768),
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "anthropic/claude-sonnet-4.5",
        name: "Anthropic: Claude Sonnet 4.5",
        context: 1_000_000,
        max_output: Some(64_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "x-ai/grok-4.1-fast",
        name: "xAI: Grok 4.1 Fast",
        context: 2_000_000,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "meta-llama/llama-3.3-70b-instruct",
        name: "Meta: Llama 3.3 70B Instruct",
        context: 131_072,
        max_output: None,
        json_mode: true,
        json_schema: false,
        reasoning: false,
        vision: false,
    },
];

/// Parses OpenRouter's `GET /models`: `data[]` of `{id, name, context_length,
/// top_provider{max_completion_tokens}, architecture{input_modalities}, supported_parameters}`.
fn parse_models(body: &[u8]) -> Result<Vec<ModelInfo>, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::BadResponse("model list has no `data` array".into()))?;
    let u32_at = |m: &Value, p: &str| {
        m.pointer(p)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let lists = |m: &Value, p: &str, item: &str| {
        m.pointer(p)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(item)))
    };
    Ok(data
        .iter()
        .filter_map(|m| {
            let id = m.get("id").and_then(Value::as_str)?.trim();
            if id.is_empty() {
                return None;
            }
            Some(ModelInfo {
                id: id.to_string(),
                display_name: m
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(id)
                    .to_string(),
                context_window: u32_at(m, "/context_length").unwrap_or(0),
                max_output_tokens: u32_at(m, "/top_provider/max_completion_tokens"),
                json_mode: lists(m, "/supported_parameters", "response_format"),
                json_schema: lists(m, "/supported_parameters", "structured_outputs"),
                reasoning: lists(m, "/supported_parameters", "reasoning"),
                vision_input: lists(m, "/architecture/input_modalities", "image"),
                streaming: true,
            })
        })
        .collect())
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("openrouter", "OpenRouter", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&OpenRouter::from_config(), &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let dialect = OpenRouter::from_config();
        let url = openai_chat::endpoint(&dialect, dialect.models_path())?;
        let resp = http::send(&http::get(&url, dialect.headers()))?;
        parse_models(&resp.body)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(OpenRouter::from_config(), &req)
    }

    fn next_event(stream: u32) -> Result<StreamEvent, ProviderError> {
        streams::next_event(stream)
    }

    fn close_stream(stream: u32) {
        streams::close(stream)
    }
}

llm::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::llm::{Message, ResponseFormat, Role};
    use sceneintruder_plugin_sdk::openai_chat::build_body;

    fn req(reasoning: Reasoning) -> CompletionRequest {
        CompletionRequest {
            model: "openai/gpt-4o-mini".into(),
            system_prompt: None,
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: Some(0.0),
            max_tokens: Some(5),
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "openrouter");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        // Real slugs only: `vendor/model`, no spaces or display names.
        assert!(
            info.models
                .iter()
                .all(|m| m.id.contains('/') && !m.id.contains(' ') && m.id == m.id.to_lowercase())
        );
    }

    #[test]
    fn attribution_headers_only_when_configured() {
        let plain = OpenRouter::default().headers();
        assert_eq!(plain, vec![http::bearer("api_key")]);
        let d = OpenRouter {
            referer: Some("https://stories.example".into()),
            title: Some("SceneIntruder".into()),
        };
        let h = d.headers();
        assert_eq!(
            http::header(&h, "http-referer"),
            Some("https://stories.example")
        );
        assert_eq!(http::header(&h, "x-title"), Some("SceneIntruder"));
        assert_eq!(header_value("  My App "), Some("My App".into()));
        assert_eq!(header_value("小说"), None);
        assert_eq!(header_value("a\nb"), None);
        assert_eq!(header_value(" "), None);
    }

    #[test]
    fn reasoning_object() {
        let d = OpenRouter::default();
        let b = build_body(&d, &req(Reasoning::Off), false).unwrap();
        assert_eq!(b["reasoning"], json!({"enabled": false}));
        assert_eq!(b["max_tokens"], 5);
        let b = build_body(&d, &req(Reasoning::On), false).unwrap();
        assert_eq!(b["reasoning"], json!({"enabled": true}));
        let b = build_body(&d, &req(Reasoning::Default), false).unwrap();
        assert!(b.get("reasoning").is_none());
    }

    #[test]
    fn model_list() {
        let body = json!({"data": [
            {"id": "openai/gpt-4o-mini", "name": "OpenAI: GPT-4o-mini", "context_length": 128000,
             "architecture": {"input_modalities": ["text", "image"]},
             "top_provider": {"max_completion_tokens": 16384},
             "supported_parameters": ["max_tokens", "response_format", "structured_outputs"]},
            {"id": "deepseek/deepseek-r1", "context_length": 163840,
             "top_provider": {"max_completion_tokens": null},
             "supported_parameters": ["reasoning", "include_reasoning"]},
            {"name": "no id"}
        ]});
        let models = parse_models(body.to_string().as_bytes()).unwrap();
        assert_eq!(models.len(), 2);
        let a = &models[0];
        assert_eq!(
            (a.context_window, a.max_output_tokens),
            (128_000, Some(16_384))
        );
        assert!(a.vision_input && a.json_mode && a.json_schema && !a.reasoning);
        let b = &models[1];
        assert_eq!(b.display_name, "deepseek/deepseek-r1");
        assert!(b.reasoning && !b.json_mode && b.max_output_tokens.is_none());
        assert!(matches!(
            parse_models(b"[]"),
            Err(ProviderError::BadResponse(_))
        ));
    }
}
