//! The `nvidia` LLM provider: NVIDIA NIM's OpenAI-compatible API (the hosted
//! `integrate.api.nvidia.com` or a self-hosted NIM) through the SDK's codec.
//!
//! * `POST {base_url}/chat/completions` (default base `https://integrate.api.nvidia.com/v1`),
//!   Bearer key, output cap `max_tokens`.
//! * Reasoning: NIM passes `chat_template_kwargs` to the model's chat template, where the
//!   hybrid models read their switch: `thinking` (DeepSeek V3.x, Kimi) or `enable_thinking`
//!   (Qwen3, GLM, Nemotron 3). Both are set: `off` -> `false`, `on` -> `true`, `default` ->
//!   nothing. Templates ignore variables they do not use.
//! * JSON: `response_format` `json_object`; a schema is given as an instruction (guided JSON
//!   schemas depend on the serving backend).

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, JsonSupport, ModelSpec};
use sceneintruder_plugin_sdk::{streams, types};
use serde_json::{Map, Value, json};

/// The NVIDIA NIM dialect.
#[derive(Clone, Copy, Debug, Default)]
struct Nvidia;

impl ChatDialect for Nvidia {
    fn vendor(&self) -> &str {
        "NVIDIA"
    }

    fn default_base_url(&self) -> &str {
        "https://integrate.api.nvidia.com/v1"
    }

    fn json_support(&self, _model: &str, _reasoning: Reasoning) -> JsonSupport {
        JsonSupport::Object
    }

    fn apply_reasoning(&self, _model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        let on = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => false,
            Reasoning::On => true,
        };
        body.insert(
            "chat_template_kwargs".into(),
            json!({"thinking": on, "enable_thinking": on}),
        );
    }
}

/// The built-in catalog: hosted models with their documented context windows.
const MODELS: [ModelSpec; 5] = [
    ModelSpec {
        id: "moonshotai/kimi-k2.5",
        name: "Kimi K2.5",
        context: 262_144,
        max_output: None,
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "z-ai/glm5",
        name: "GLM-5",
        context: 202_752,
        max_output: None,
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "nvidia/nemotron-3-super-120b-a12b",
        name: "NVIDIA Nemotron 3 Super 120B",
        context: 262_144,
        max_output: None,
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "deepseek-ai/deepseek-v3.1",
        name: "DeepSeek V3.1",
        context: 128_000,
        max_output: None,
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "meta/llama-3.3-70b-instruct",
        name: "Llama 3.3 70B Instruct",
        context: 128_000,
        max_output: None,
        json_mode: true,
        json_schema: false,
        reasoning: false,
        vision: false,
    },
];

/// A listed model the catalog does not describe (the list also holds embedding and image
/// models, so nothing is assumed but streaming).
fn unlisted(id: &str) -> ModelInfo {
    ModelInfo {
        streaming: true,
        ..types::unknown_model(id)
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("nvidia", "NVIDIA", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&Nvidia, &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        openai_chat::list_known_models(&Nvidia, &MODELS, unlisted)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Nvidia, &req)
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

    fn req(reasoning: Reasoning) -> CompletionRequest {
        CompletionRequest {
            model: "moonshotai/kimi-k2.5".into(),
            system_prompt: Some("sys".into()),
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: Some(0.7),
            max_tokens: Some(800),
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "nvidia");
        assert_eq!(info.default_model, "moonshotai/kimi-k2.5");
        assert!(info.models.iter().all(|m| m.id.contains('/')));
    }

    #[test]
    fn chat_template_switch() {
        let b = build_body(&Nvidia, &req(Reasoning::Off), false).unwrap();
        assert_eq!(
            b,
            json!({"chat_template_kwargs": {"thinking": false, "enable_thinking": false},
                   "max_tokens": 800, "model": "moonshotai/kimi-k2.5", "temperature": 0.7,
                   "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hello"}]})
        );
        let b = build_body(&Nvidia, &req(Reasoning::On), false).unwrap();
        assert_eq!(b["chat_template_kwargs"]["thinking"], true);
        let b = build_body(&Nvidia, &req(Reasoning::Default), false).unwrap();
        assert!(b.get("chat_template_kwargs").is_none());
    }

    #[test]
    fn json_schema_as_instruction_over_json_object() {
        let mut r = req(Reasoning::Off);
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: true,
        });
        let b = build_body(&Nvidia, &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        let system = b["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("sys\n\n") && system.contains(r#"{"type":"object"}"#));
    }
}
