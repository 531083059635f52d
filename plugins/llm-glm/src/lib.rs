//! The `glm` LLM provider: Zhipu AI's GLM models (BigModel open platform) through the SDK's
//! OpenAI-compatible codec.
//!
//! * `POST {base_url}/chat/completions` (default base `https://open.bigmodel.cn/api/paas/v4`),
//!   `Authorization: Bearer {{secret:api_key}}`, output cap `max_tokens`.
//! * Authentication is the Bearer key alone, as Zhipu documents it. The reference's mandatory
//!   `api_secret` (used for extra timestamp/signature headers that are not part of Zhipu's
//!   API) is optional here and never sent: a plugin cannot read secrets, and the vendor does not
//!   need it.
//! * Reasoning: the hybrid GLM models (GLM-4.5 and later) take the typed `thinking` object:
//!   `off` -> `{"type":"disabled"}`, `on` -> `{"type":"enabled"}`. GLM-5.3 always thinks; for it
//!   `off` asks for the least effort (`reasoning_effort: "low"`). Older models get nothing.
//! * JSON: `response_format` `json_object`; a schema is given as an instruction.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, JsonSupport, ModelSpec};
use sceneintruder_plugin_sdk::streams;
use serde_json::{Map, Value, json};

/// How a GLM model's thinking is controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Thinking {
    /// No thinking mode.
    None,
    /// Hybrid: `thinking.type` enabled / disabled.
    Hybrid,
    /// Always thinks; only the effort can be lowered.
    Always,
}

fn thinking(model: &str) -> Thinking {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or_default();
    if m.starts_with("glm-5.3") {
        Thinking::Always
    } else if ["glm-4.5", "glm-4.6", "glm-4.7", "glm-5"]
        .iter()
        .any(|p| m.starts_with(p))
    {
        Thinking::Hybrid
    } else {
        Thinking::None
    }
}

/// The Zhipu dialect.
#[derive(Clone, Copy, Debug, Default)]
struct Glm;

impl ChatDialect for Glm {
    fn vendor(&self) -> &str {
        "智谱GLM"
    }

    fn default_base_url(&self) -> &str {
        "https://open.bigmodel.cn/api/paas/v4"
    }

    fn json_support(&self, _model: &str, _reasoning: Reasoning) -> JsonSupport {
        JsonSupport::Object
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        match (thinking(model), reasoning) {
            (Thinking::None, _) | (_, Reasoning::Default) => {}
            (Thinking::Hybrid, Reasoning::Off) => {
                body.insert("thinking".into(), json!({"type": "disabled"}));
            }
            (Thinking::Hybrid | Thinking::Always, Reasoning::On) => {
                body.insert("thinking".into(), json!({"type": "enabled"}));
            }
            (Thinking::Always, Reasoning::Off) => {
                body.insert("reasoning_effort".into(), json!("low"));
            }
        }
    }
}

/// The built-in catalog (text models; documented context windows and output caps).
const MODELS: [ModelSpec; 5] = [
    ModelSpec {
        id: "glm-4.7",
        name: "GLM-4.7",
        context: 200_000,
        max_output: Some(128_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "glm-5.3",
        name: "GLM-5.3",
        context: 1_048_576,
        max_output: Some(131_072),
        json_mode: true,
        json_schema: false,
        reasoning: false,
        vision: false,
    },
    ModelSpec {
        id: "glm-5",
        name: "GLM-5",
        context: 200_000,
        max_output: Some(128_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "glm-4.6",
        name: "GLM-4.6",
        context: 200_000,
        max_output: Some(128_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
    ModelSpec {
        id: "glm-4.5-air",
        name: "GLM-4.5-Air",
        context: 128_000,
        max_output: Some(96_000),
        json_mode: true,
        json_schema: false,
        reasoning: true,
        vision: false,
    },
];

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("glm", "智谱GLM", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&Glm, &req)
    }

    /// Zhipu publishes no model-list endpoint: the built-in catalog.
    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(MODELS.iter().map(ModelSpec::info).collect())
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Glm, &req)
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
    use sceneintruder_plugin_sdk::http;
    use sceneintruder_plugin_sdk::llm::{Message, ResponseFormat, Role};
    use sceneintruder_plugin_sdk::openai_chat::build_body;

    fn req(model: &str, reasoning: Reasoning) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
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
        assert_eq!(info.id, "glm");
        assert_eq!(info.display_name, "智谱GLM");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        assert!(info.models.iter().all(|m| m.id == m.id.to_lowercase()));
    }

    #[test]
    fn bearer_key_only() {
        assert_eq!(Glm.headers(), vec![http::bearer("api_key")]);
    }

    #[test]
    fn thinking_switch_by_family() {
        let b = build_body(&Glm, &req("glm-4.7", Reasoning::Off), false).unwrap();
        assert_eq!(b["thinking"], json!({"type": "disabled"}));
        assert_eq!(b["max_tokens"], 800);
        let b = build_body(&Glm, &req("glm-4.5-air", Reasoning::On), false).unwrap();
        assert_eq!(b["thinking"], json!({"type": "enabled"}));
        let b = build_body(&Glm, &req("glm-4.7", Reasoning::Default), false).unwrap();
        assert!(b.get("thinking").is_none());
        let b = build_body(&Glm, &req("glm-5.3", Reasoning::Off), false).unwrap();
        assert_eq!(b["reasoning_effort"], "low");
        assert!(b.get("thinking").is_none());
        let b = build_body(&Glm, &req("glm-4-plus", Reasoning::Off), false).unwrap();
        assert!(b.get("thinking").is_none() && b.get("reasoning_effort").is_none());
        assert_eq!(thinking("GLM-5.1"), Thinking::Hybrid);
    }

    #[test]
    fn json_mode() {
        let mut r = req("glm-4.7", Reasoning::Off);
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&Glm, &r, false).unwrap();
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        assert_eq!(b["messages"][0]["content"], "sys");
    }
}
