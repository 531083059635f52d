//! The `deepseek` LLM provider: DeepSeek's OpenAI-compatible Chat Completions through the
//! SDK's codec.
//!
//! * `POST {base_url}/chat/completions`, `Authorization: Bearer {{secret:api_key}}`, output cap
//!   `max_tokens`.
//! * Reasoning: DeepSeek's models answer in thinking mode (the vendor's default) or in
//!   non-thinking mode, chosen by the typed `thinking` object: `off` -> `{"type":"disabled"}`,
//!   `on` -> `{"type":"enabled"}`, `default` -> nothing. The legacy aliases pick the mode by
//!   name, so they are kept consistent with the switch: `deepseek-reasoner` becomes
//!   `deepseek-chat` when reasoning is off and `deepseek-chat` becomes `deepseek-reasoner` when
//!   it is on.
//! * JSON: `response_format` `json_object` (DeepSeek has no JSON-schema mode, so a schema is
//!   given as an instruction); DeepSeek requires the word "json" in the prompt, which the codec
//!   adds when the conversation lacks it.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, JsonSupport, ModelSpec};
use sceneintruder_plugin_sdk::{streams, types};
use serde_json::{Map, Value, json};

/// The DeepSeek dialect.
#[derive(Clone, Copy, Debug, Default)]
struct DeepSeek;

impl ChatDialect for DeepSeek {
    fn vendor(&self) -> &str {
        "DeepSeek"
    }

    fn default_base_url(&self) -> &str {
        "https://api.deepseek.com"
    }

    fn resolve_model(&self, model: &str, reasoning: Reasoning) -> String {
        match (reasoning, model.to_ascii_lowercase().as_str()) {
            (Reasoning::Off, "deepseek-reasoner") => "deepseek-chat".into(),
            (Reasoning::On, "deepseek-chat") => "deepseek-reasoner".into(),
            _ => model.to_string(),
        }
    }

    fn json_support(&self, _model: &str, _reasoning: Reasoning) -> JsonSupport {
        JsonSupport::Object
    }

    fn json_object_needs_keyword(&self) -> bool {
        true
    }

    fn apply_reasoning(&self, _model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        let kind = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => "disabled",
            Reasoning::On => "enabled",
        };
        body.insert("thinking".into(), json!({"type": kind}));
    }
}

/// The built-in catalog: DeepSeek's current API models (1M context, up to 384K output, JSON
/// output, thinking and non-thinking modes; `deepseek-flash` also reads images).
const MODELS: [ModelSpec; 2] = [
    ModelSpec {
        id: "deepseek-flash",
        name: "DeepSeek Flash",
        context: 1_000_000,
        max_output: Some(384_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "deepseek-v4-pro",
        name: "DeepSeek V4 Pro",
        context: 1_000_000,
        max_output: Some(384_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
];

/// A listed model DeepSeek's catalog does not describe: every DeepSeek chat model has JSON
/// output, streaming and the thinking switch.
fn unlisted(id: &str) -> ModelInfo {
    ModelInfo {
        json_mode: true,
        reasoning: true,
        streaming: true,
        ..types::unknown_model(id)
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("deepseek", "DeepSeek", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&DeepSeek, &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        openai_chat::list_known_models(&DeepSeek, &MODELS, unlisted)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(DeepSeek, &req)
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
            system_prompt: Some("You are terse.".into()),
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
        assert_eq!(info.id, "deepseek");
        assert_eq!(info.default_model, "deepseek-flash");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        assert!(
            info.models
                .iter()
                .all(|m| m.json_mode && !m.json_schema && m.streaming)
        );
    }

    #[test]
    fn thinking_switch() {
        for (reasoning, expected) in [
            (Reasoning::Off, Some(json!({"type": "disabled"}))),
            (Reasoning::On, Some(json!({"type": "enabled"}))),
            (Reasoning::Default, None),
        ] {
            let b = build_body(&DeepSeek, &req("deepseek-flash", reasoning), false).unwrap();
            assert_eq!(b.get("thinking").cloned(), expected, "{reasoning:?}");
            assert_eq!(b["model"], "deepseek-flash");
            assert_eq!(b["max_tokens"], 64);
        }
    }

    #[test]
    fn legacy_aliases_follow_the_switch() {
        let b = build_body(&DeepSeek, &req("deepseek-reasoner", Reasoning::Off), false).unwrap();
        assert_eq!(b["model"], "deepseek-chat");
        let b = build_body(&DeepSeek, &req("deepseek-chat", Reasoning::On), false).unwrap();
        assert_eq!(b["model"], "deepseek-reasoner");
        let b = build_body(
            &DeepSeek,
            &req("deepseek-reasoner", Reasoning::Default),
            false,
        )
        .unwrap();
        assert_eq!(b["model"], "deepseek-reasoner");
    }

    #[test]
    fn json_mode_is_json_object_with_the_keyword() {
        let mut r = req("deepseek-flash", Reasoning::Off);
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&DeepSeek, &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        let system = b["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("You are terse.") && system.contains("JSON"));

        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{"type":"object","properties":{"title":{"type":"string"}}}"#.into(),
            strict: true,
        });
        let b = build_body(&DeepSeek, &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        assert!(
            b["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains(r#""title""#)
        );
    }

    #[test]
    fn unlisted_models_have_the_family_capabilities() {
        let m = openai_chat::listed_model("deepseek-next", &MODELS, unlisted);
        assert!(m.json_mode && m.reasoning && m.streaming && !m.json_schema);
        assert_eq!(m.context_window, 0);
        let known = openai_chat::listed_model("deepseek-flash", &MODELS, unlisted);
        assert_eq!(known.max_output_tokens, Some(384_000));
    }
}
