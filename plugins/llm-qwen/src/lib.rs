//! The `qwen` LLM provider: Alibaba Cloud Model Studio (DashScope) in OpenAI-compatible mode,
//! through the SDK's codec.
//!
//! * `POST {base_url}/chat/completions` (default base
//!   `https://dashscope.aliyuncs.com/compatible-mode/v1`), Bearer key, output cap `max_tokens`.
//! * Reasoning: hybrid-thinking Qwen models take the top-level `enable_thinking` flag
//!   (`off` -> `false`, `on` -> `true`, `default` -> the model's default), sent to `qwen*`
//!   models. Thinking-only models (`qwq*`, `qvq*`, `*-thinking*`) cannot stop thinking, so with
//!   reasoning off they are replaced by `qwen3-max` (the reference's rule).
//! * DashScope answers in thinking mode only when streamed, so a completion that will think
//!   (reasoning on, or a thinking-only model) is run as a stream and collected.
//! * JSON: `response_format` `json_object` (a schema is given as an instruction, and the word
//!   "json" the vendor requires is added when missing). Thinking mode has no structured
//!   output, so a thinking completion asks for JSON by instruction only.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, JsonSupport, ModelSpec};
use sceneintruder_plugin_sdk::{streams, types};
use serde_json::{Map, Value, json};

/// Model used instead of a thinking-only model when reasoning is off.
const NON_THINKING_REPLACEMENT: &str = "qwen3-max";

/// True for models that always think (`enable_thinking` cannot turn it off).
fn thinking_only(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    m.starts_with("qwq") || m.starts_with("qvq") || m.contains("-thinking")
}

/// True when a request to `model` (already resolved) will think.
fn will_think(model: &str, reasoning: Reasoning) -> bool {
    reasoning == Reasoning::On || thinking_only(model)
}

/// The DashScope compatible-mode dialect.
#[derive(Clone, Copy, Debug, Default)]
struct Qwen;

impl ChatDialect for Qwen {
    fn vendor(&self) -> &str {
        "Qwen"
    }

    fn default_base_url(&self) -> &str {
        "https://dashscope.aliyuncs.com/compatible-mode/v1"
    }

    fn resolve_model(&self, model: &str, reasoning: Reasoning) -> String {
        if reasoning == Reasoning::Off && thinking_only(model) {
            NON_THINKING_REPLACEMENT.to_string()
        } else {
            model.to_string()
        }
    }

    fn json_support(&self, model: &str, reasoning: Reasoning) -> JsonSupport {
        if will_think(model, reasoning) {
            JsonSupport::Instruction
        } else {
            JsonSupport::Object
        }
    }

    fn json_object_needs_keyword(&self) -> bool {
        true
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        let enable = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => false,
            Reasoning::On => true,
        };
        if model.trim().to_ascii_lowercase().starts_with("qwen") && !thinking_only(model) {
            body.insert("enable_thinking".into(), json!(enable));
        }
    }
}

/// The built-in catalog: the stable `qwen-plus` / `qwen-flash` aliases (the vendor's
/// recommended general models, hybrid thinking), `qwen3-max`, and the Qwen3.8 models.
const MODELS: [ModelSpec; 5] = [
    ModelSpec {
        id: "qwen-plus",
        name: "Qwen Plus",
        context: 1_000_000,
        max_output: Some(32_768),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "qwen-flash",
        name: "Qwen Flash",
        context: 1_000_000,
        max_output: Some(32_768),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "qwen3-max",
        name: "Qwen3 Max",
        context: 262_144,
        max_output: Some(65_536),
        json_mode: true,
        json_schema: false,
        reasoning: false,
        vision: false,
    },
    ModelSpec {
        id: "qwen3.8-max",
        name: "Qwen3.8 Max",
        context: 1_000_000,
        max_output: Some(128_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "qwen3.8-flash",
        name: "Qwen3.8 Flash",
        context: 1_000_000,
        max_output: Some(128_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: true,
    },
];

/// A listed model the catalog does not describe: streaming and JSON mode (every Qwen chat
/// model has both); the switch is meaningful for hybrid `qwen3*` models.
fn unlisted(id: &str) -> ModelInfo {
    let lower = id.to_ascii_lowercase();
    ModelInfo {
        json_mode: true,
        streaming: true,
        reasoning: lower.starts_with("qwen3") && !thinking_only(id),
        ..types::unknown_model(id)
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("qwen", "Qwen", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        let model = Qwen.resolve_model(req.model.trim(), req.reasoning);
        if will_think(&model, req.reasoning) {
            openai_chat::complete_by_streaming(Qwen, &req)
        } else {
            openai_chat::complete(&Qwen, &req)
        }
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        openai_chat::list_known_models(&Qwen, &MODELS, unlisted)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Qwen, &req)
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
            temperature: Some(0.8),
            max_tokens: Some(2400),
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "qwen");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        assert!(info.models.iter().all(|m| m.id == m.id.to_lowercase()));
    }

    #[test]
    fn enable_thinking_switch() {
        let b = build_body(&Qwen, &req("qwen-plus", Reasoning::Off), false).unwrap();
        assert_eq!(
            b,
            json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "Hello"}],
                   "temperature": 0.8, "max_tokens": 2400, "enable_thinking": false})
        );
        let b = build_body(&Qwen, &req("qwen3.8-flash", Reasoning::On), true).unwrap();
        assert_eq!(b["enable_thinking"], true);
        let b = build_body(&Qwen, &req("qwen-plus", Reasoning::Default), false).unwrap();
        assert!(b.get("enable_thinking").is_none());
        // Not a Qwen model (DashScope also hosts others): no flag.
        let b = build_body(&Qwen, &req("deepseek-v3", Reasoning::Off), false).unwrap();
        assert!(b.get("enable_thinking").is_none());
    }

    #[test]
    fn thinking_only_models() {
        assert!(thinking_only("qwq-plus") && thinking_only("QVQ-max"));
        assert!(thinking_only("qwen3-235b-a22b-thinking-2507"));
        assert!(!thinking_only("qwen-plus") && !thinking_only("qwen3.8-max"));
        // Off: replaced by a model that can answer directly.
        let b = build_body(&Qwen, &req("qwq-plus", Reasoning::Off), false).unwrap();
        assert_eq!(b["model"], NON_THINKING_REPLACEMENT);
        assert_eq!(b["enable_thinking"], false);
        // Default / on: kept, no flag (they cannot be switched), and it will think.
        for r in [Reasoning::Default, Reasoning::On] {
            let b = build_body(&Qwen, &req("qwq-plus", r), true).unwrap();
            assert_eq!(b["model"], "qwq-plus");
            assert!(b.get("enable_thinking").is_none());
            assert!(will_think("qwq-plus", r));
        }
        assert!(!will_think("qwen-plus", Reasoning::Default));
        assert!(will_think("qwen-plus", Reasoning::On));
    }

    #[test]
    fn json_mode() {
        let mut r = req("qwen-plus", Reasoning::Off);
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&Qwen, &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        // The vendor requires the word "json": an instruction is added as the system prompt.
        assert_eq!(b["messages"][0]["role"], "system");
        assert!(
            b["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON")
        );

        // Thinking mode has no structured output: instruction only.
        r.reasoning = Reasoning::On;
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "x".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: false,
        });
        let b = build_body(&Qwen, &r, true).unwrap();
        assert!(b.get("response_format").is_none(), "{b}");
        assert!(
            b["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("JSON schema")
        );
    }

    #[test]
    fn unlisted_models() {
        assert!(unlisted("qwen3-32b").reasoning);
        assert!(!unlisted("qwq-32b").reasoning);
        assert!(unlisted("qwen-long").json_mode);
    }
}
