//! The `ollama` LLM provider: local models served by Ollama, through its OpenAI-compatible
//! API and the SDK's codec.
//!
//! * `POST {base_url}/chat/completions` (default base `http://127.0.0.1:11434/v1`). No API key
//!   is needed; when one is configured (Ollama behind an authenticating proxy, or Ollama's
//!   cloud API) it is sent as `Authorization: Bearer {{secret:api_key}}`. Output cap
//!   `max_tokens`.
//! * JSON: `response_format` `json_object` and `json_schema` (Ollama structured outputs).
//! * Reasoning: Ollama maps `reasoning_effort` onto its `think` switch, and refuses to switch
//!   models that cannot think, so it is sent only to thinking model families: `off` ->
//!   `"none"` (`"low"` for gpt-oss, which cannot stop thinking), `on` -> `"high"`.
//! * `list-models` lists the models pulled on the server (`GET {base_url}/models`).

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, ModelSpec};
use sceneintruder_plugin_sdk::{config, http, streams, types};
use serde_json::{Map, Value, json};

/// Model families that think and accept the switch (Ollama library names).
const THINKING_FAMILIES: [&str; 7] = [
    "qwen3",
    "qwq",
    "deepseek-r1",
    "deepseek-v3.1",
    "gpt-oss",
    "magistral",
    "glm-4.7",
];

/// The family of an Ollama model name: `library/qwen3:8b` -> `qwen3:8b` -> `qwen3`.
fn family(model: &str) -> String {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or_default();
    m.split(':').next().unwrap_or_default().to_string()
}

fn thinks(model: &str) -> bool {
    let f = family(model);
    THINKING_FAMILIES.iter().any(|t| f.starts_with(t))
}

/// The Ollama dialect. `with_key` is whether an API key is configured.
#[derive(Clone, Copy, Debug, Default)]
struct Ollama {
    with_key: bool,
}

impl Ollama {
    fn from_config() -> Self {
        Ollama {
            with_key: config::has_secret("api_key"),
        }
    }
}

impl ChatDialect for Ollama {
    fn vendor(&self) -> &str {
        "Ollama"
    }

    fn default_base_url(&self) -> &str {
        "http://127.0.0.1:11434/v1"
    }

    fn api_key_required(&self) -> bool {
        false
    }

    fn headers(&self) -> Vec<(String, String)> {
        if self.with_key {
            vec![http::bearer(self.api_key_secret())]
        } else {
            Vec::new()
        }
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        if !thinks(model) {
            return;
        }
        let effort = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off if family(model).starts_with("gpt-oss") => "low",
            Reasoning::Off => "none",
            Reasoning::On => "high",
        };
        body.insert("reasoning_effort".into(), json!(effort));
    }
}

/// Well-known library models (they work once pulled: `ollama pull <id>`). The context window is
/// left unknown: Ollama's effective window is its `num_ctx` setting, not the model's maximum.
const MODELS: [ModelSpec; 5] = [
    ModelSpec {
        id: "llama3.2",
        name: "Llama 3.2",
        context: 0,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: false,
    },
    ModelSpec {
        id: "qwen3",
        name: "Qwen3",
        context: 0,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "gemma3",
        name: "Gemma 3",
        context: 0,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "gpt-oss:20b",
        name: "gpt-oss 20B",
        context: 0,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "deepseek-r1",
        name: "DeepSeek-R1",
        context: 0,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: false,
    },
];

/// A pulled model: the catalog entry when it is one (`:latest` is the default tag), else JSON
/// mode, schemas and streaming (Ollama offers them for every model) and reasoning by family.
fn pulled(id: &str) -> ModelInfo {
    let short = id.strip_suffix(":latest").unwrap_or(id);
    if let Some(spec) = MODELS.iter().find(|m| m.id == short) {
        return ModelInfo {
            id: id.to_string(),
            ..spec.info()
        };
    }
    ModelInfo {
        json_mode: true,
        json_schema: true,
        streaming: true,
        reasoning: thinks(id),
        ..types::unknown_model(id)
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("ollama", "Ollama", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&Ollama::from_config(), &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(openai_chat::list_model_ids(&Ollama::from_config())?
            .iter()
            .filter(|id| !id.trim().is_empty())
            .map(|id| pulled(id))
            .collect())
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Ollama::from_config(), &req)
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
    use sceneintruder_plugin_sdk::llm::{JsonSchema, Message, ResponseFormat, Role};
    use sceneintruder_plugin_sdk::openai_chat::build_body;

    fn req(model: &str, reasoning: Reasoning) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system_prompt: None,
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: Some(0.7),
            max_tokens: Some(64),
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "ollama");
        assert_eq!(info.default_model, "llama3.2");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
    }

    #[test]
    fn no_key_no_auth_header() {
        assert!(!Ollama::default().api_key_required());
        assert!(Ollama { with_key: false }.headers().is_empty());
        assert_eq!(
            Ollama { with_key: true }.headers(),
            vec![http::bearer("api_key")]
        );
    }

    #[test]
    fn reasoning_only_for_thinking_families() {
        let d = Ollama::default();
        let b = build_body(&d, &req("qwen3:8b", Reasoning::Off), false).unwrap();
        assert_eq!(b["reasoning_effort"], "none");
        assert_eq!(b["max_tokens"], 64);
        let b = build_body(&d, &req("deepseek-r1", Reasoning::On), false).unwrap();
        assert_eq!(b["reasoning_effort"], "high");
        let b = build_body(&d, &req("gpt-oss:20b", Reasoning::Off), false).unwrap();
        assert_eq!(b["reasoning_effort"], "low");
        let b = build_body(&d, &req("qwen3", Reasoning::Default), false).unwrap();
        assert!(b.get("reasoning_effort").is_none());
        for r in [Reasoning::Off, Reasoning::On] {
            let b = build_body(&d, &req("llama3.2:latest", r), false).unwrap();
            assert!(b.get("reasoning_effort").is_none(), "{b}");
        }
        assert_eq!(family("registry.example/library/Qwen3:14b"), "qwen3");
    }

    #[test]
    fn json_schema_is_native() {
        let mut r = req("llama3.2", Reasoning::Off);
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "s".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: false,
        });
        let b = build_body(&Ollama::default(), &r, false).unwrap();
        assert_eq!(b["response_format"]["type"], "json_schema");
    }

    #[test]
    fn pulled_models() {
        let m = pulled("llama3.2:latest");
        assert_eq!(
            (m.id.as_str(), m.display_name.as_str()),
            ("llama3.2:latest", "Llama 3.2")
        );
        let m = pulled("qwen3:30b-a3b");
        assert!(m.reasoning && m.json_schema && m.streaming);
        let m = pulled("mistral-nemo");
        assert!(!m.reasoning && m.json_mode);
    }
}
