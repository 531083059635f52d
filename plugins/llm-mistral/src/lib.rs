//! The `mistral` LLM provider: Mistral AI's Chat Completions through the SDK's codec.
//!
//! * `POST {base_url}/chat/completions` (default base `https://api.mistral.ai/v1`), Bearer key,
//!   output cap `max_tokens`.
//! * JSON: `response_format` `json_object`, and `json_schema` (Mistral's custom structured
//!   outputs: `{"type":"json_schema","json_schema":{"name","schema","strict"}}`).
//! * Reasoning: the models with adjustable reasoning (Mistral Small 4 and Medium 3.5) take
//!   `reasoning_effort`: `off` -> `"none"`, `on` -> `"high"`, `default` -> nothing. Other
//!   models get no reasoning parameter (Magistral models always reason).
//! * Mistral validates request fields strictly and streams usage in its last chunk without
//!   being asked, so the OpenAI `stream_options` object is not sent.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, ModelSpec};
use sceneintruder_plugin_sdk::{streams, types};
use serde_json::{Map, Value, json};

/// Models whose reasoning is adjustable with `reasoning_effort` (per Mistral's documentation).
const ADJUSTABLE_REASONING: [&str; 3] = [
    "mistral-small-latest",
    "mistral-small-2603",
    "mistral-medium-3-5",
];

fn adjustable_reasoning(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    ADJUSTABLE_REASONING.iter().any(|a| m == *a)
}

/// The Mistral dialect.
#[derive(Clone, Copy, Debug, Default)]
struct Mistral;

impl ChatDialect for Mistral {
    fn vendor(&self) -> &str {
        "Mistral"
    }

    fn default_base_url(&self) -> &str {
        "https://api.mistral.ai/v1"
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        if !adjustable_reasoning(model) {
            return;
        }
        let effort = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => "none",
            Reasoning::On => "high",
        };
        body.insert("reasoning_effort".into(), json!(effort));
    }

    fn adjust_body(
        &self,
        _req: &CompletionRequest,
        body: &mut Map<String, Value>,
    ) -> Result<(), ProviderError> {
        body.remove("stream_options");
        Ok(())
    }
}

/// The built-in catalog (context windows are the documented lower bounds of the aliases).
const MODELS: [ModelSpec; 4] = [
    ModelSpec {
        id: "mistral-large-latest",
        name: "Mistral Large",
        context: 131_072,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: false,
    },
    ModelSpec {
        id: "mistral-medium-3-5",
        name: "Mistral Medium 3.5",
        context: 262_144,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "mistral-medium-latest",
        name: "Mistral Medium",
        context: 131_072,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "mistral-small-latest",
        name: "Mistral Small",
        context: 131_072,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
];

/// A listed model the catalog does not describe: JSON mode and streaming (every Mistral chat
/// model has them).
fn unlisted(id: &str) -> ModelInfo {
    ModelInfo {
        json_mode: true,
        streaming: true,
        reasoning: adjustable_reasoning(id),
        ..types::unknown_model(id)
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("mistral", "Mistral", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&Mistral, &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        openai_chat::list_known_models(&Mistral, &MODELS, unlisted)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Mistral, &req)
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
            system_prompt: Some("sys".into()),
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: Some(0.3),
            max_tokens: Some(100),
            top_p: None,
            stop: vec!["END".into()],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "mistral");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        assert!(info.models.iter().all(|m| m.json_schema && m.streaming));
    }

    #[test]
    fn reasoning_effort_only_where_adjustable() {
        let b = build_body(
            &Mistral,
            &req("mistral-small-latest", Reasoning::Off),
            false,
        )
        .unwrap();
        assert_eq!(b["reasoning_effort"], "none");
        let b = build_body(&Mistral, &req("mistral-medium-3-5", Reasoning::On), false).unwrap();
        assert_eq!(b["reasoning_effort"], "high");
        let b = build_body(
            &Mistral,
            &req("mistral-small-latest", Reasoning::Default),
            false,
        )
        .unwrap();
        assert!(b.get("reasoning_effort").is_none());
        for r in [Reasoning::Off, Reasoning::On] {
            let b = build_body(&Mistral, &req("mistral-large-latest", r), false).unwrap();
            assert!(b.get("reasoning_effort").is_none(), "{b}");
        }
    }

    #[test]
    fn body_fields_and_streaming() {
        let b = build_body(&Mistral, &req("mistral-large-latest", Reasoning::Off), true).unwrap();
        assert_eq!(b["max_tokens"], 100);
        assert_eq!(b["stop"], json!(["END"]));
        assert_eq!(b["stream"], true);
        assert!(b.get("stream_options").is_none(), "{b}");
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
    }

    #[test]
    fn json_schema_is_native() {
        let mut r = req("mistral-large-latest", Reasoning::Off);
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "scene".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: true,
        });
        let b = build_body(&Mistral, &r, false).unwrap();
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(b["response_format"]["json_schema"]["name"], "scene");
        assert_eq!(b["messages"][0]["content"], "sys");
    }
}
