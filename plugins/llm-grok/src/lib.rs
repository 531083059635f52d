//! The `grok` LLM provider: xAI's OpenAI-compatible Chat Completions through the SDK's codec.
//!
//! * `POST {base_url}/chat/completions` (default base `https://api.x.ai/v1`), Bearer key, output
//!   cap `max_tokens`.
//! * JSON: `response_format` `json_object` and `json_schema` (xAI structured outputs).
//! * Reasoning is mostly a choice of model: the fast models come as `…-reasoning` /
//!   `…-non-reasoning` pairs, so `off` selects the non-reasoning and `on` the reasoning variant
//!   of whichever was requested; `grok-3-mini` takes `reasoning_effort` (`off` -> `"low"`, `on`
//!   -> `"high"`); `grok-4` always reasons. `default` changes nothing.
//! * Reasoning models reject `stop`, so it is not sent to them.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, ModelSpec};
use sceneintruder_plugin_sdk::{streams, types};
use serde_json::{Map, Value, json};

const REASONING_SUFFIX: &str = "-reasoning";
const NON_REASONING_SUFFIX: &str = "-non-reasoning";

/// True for models that reason on every request.
fn is_reasoning_model(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    if m.ends_with(NON_REASONING_SUFFIX) {
        return false;
    }
    m.ends_with(REASONING_SUFFIX)
        || m.starts_with("grok-3-mini")
        || m == "grok-4"
        || m.starts_with("grok-4-0")
}

/// The xAI dialect.
#[derive(Clone, Copy, Debug, Default)]
struct Grok;

impl ChatDialect for Grok {
    fn vendor(&self) -> &str {
        "Grok"
    }

    fn default_base_url(&self) -> &str {
        "https://api.x.ai/v1"
    }

    fn resolve_model(&self, model: &str, reasoning: Reasoning) -> String {
        let lower = model.to_ascii_lowercase();
        match reasoning {
            Reasoning::Off
                if lower.ends_with(REASONING_SUFFIX) && !lower.ends_with(NON_REASONING_SUFFIX) =>
            {
                let stem = &model[..model.len() - REASONING_SUFFIX.len()];
                format!("{stem}{NON_REASONING_SUFFIX}")
            }
            Reasoning::On if lower.ends_with(NON_REASONING_SUFFIX) => {
                let stem = &model[..model.len() - NON_REASONING_SUFFIX.len()];
                format!("{stem}{REASONING_SUFFIX}")
            }
            _ => model.to_string(),
        }
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        if !model.trim().to_ascii_lowercase().starts_with("grok-3-mini") {
            return;
        }
        let effort = match reasoning {
            Reasoning::Default => return,
            Reasoning::Off => "low",
            Reasoning::On => "high",
        };
        body.insert("reasoning_effort".into(), json!(effort));
    }

    fn adjust_body(
        &self,
        _req: &CompletionRequest,
        body: &mut Map<String, Value>,
    ) -> Result<(), ProviderError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if is_reasoning_model(model) {
            body.remove("stop");
        }
        Ok(())
    }
}

/// The built-in catalog (xAI documents no separate output cap).
const MODELS: [ModelSpec; 5] = [
    ModelSpec {
        id: "grok-4-1-fast-non-reasoning",
        name: "Grok 4.1 Fast (non-reasoning)",
        context: 2_000_000,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "grok-4-1-fast-reasoning",
        name: "Grok 4.1 Fast (reasoning)",
        context: 2_000_000,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "grok-4-fast-non-reasoning",
        name: "Grok 4 Fast (non-reasoning)",
        context: 2_000_000,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "grok-4-fast-reasoning",
        name: "Grok 4 Fast (reasoning)",
        context: 2_000_000,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: true,
        vision: true,
    },
    ModelSpec {
        id: "grok-4",
        name: "Grok 4",
        context: 256_000,
        max_output: None,
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
];

/// A listed model the catalog does not describe: JSON mode, schemas and streaming (xAI has
/// them for every chat model); the switch is meaningful for paired and `grok-3-mini` models.
fn unlisted(id: &str) -> ModelInfo {
    let lower = id.to_ascii_lowercase();
    ModelInfo {
        json_mode: true,
        json_schema: true,
        streaming: true,
        reasoning: lower.ends_with(REASONING_SUFFIX) || lower.starts_with("grok-3-mini"),
        ..types::unknown_model(id)
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("grok", "Grok", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&Grok, &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        openai_chat::list_known_models(&Grok, &MODELS, unlisted)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Grok, &req)
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

    fn req(model: &str, reasoning: Reasoning) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system_prompt: None,
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: Some(0.5),
            max_tokens: Some(10),
            top_p: None,
            stop: vec!["END".into()],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    fn model_for(model: &str, r: Reasoning) -> Value {
        build_body(&Grok, &req(model, r), false).unwrap()["model"].clone()
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "grok");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        assert!(info.models.iter().all(|m| !m.id.contains('.')));
    }

    #[test]
    fn reasoning_pairs_follow_the_switch() {
        assert_eq!(
            model_for("grok-4-1-fast-reasoning", Reasoning::Off),
            "grok-4-1-fast-non-reasoning"
        );
        assert_eq!(
            model_for("grok-4-1-fast-non-reasoning", Reasoning::On),
            "grok-4-1-fast-reasoning"
        );
        assert_eq!(
            model_for("grok-4-fast-non-reasoning", Reasoning::Off),
            "grok-4-fast-non-reasoning"
        );
        assert_eq!(
            model_for("grok-4-fast-reasoning", Reasoning::Default),
            "grok-4-fast-reasoning"
        );
        assert_eq!(model_for("grok-4", Reasoning::Off), "grok-4");
    }

    #[test]
    fn mini_effort_and_stop_on_reasoning_models() {
        let b = build_body(&Grok, &req("grok-3-mini", Reasoning::Off), false).unwrap();
        assert_eq!(b["reasoning_effort"], "low");
        assert!(b.get("stop").is_none());
        let b = build_body(&Grok, &req("grok-3-mini", Reasoning::On), false).unwrap();
        assert_eq!(b["reasoning_effort"], "high");
        let b = build_body(&Grok, &req("grok-4-1-fast-reasoning", Reasoning::On), false).unwrap();
        assert!(b.get("reasoning_effort").is_none());
        assert!(b.get("stop").is_none());
        let b = build_body(
            &Grok,
            &req("grok-4-1-fast-reasoning", Reasoning::Off),
            false,
        )
        .unwrap();
        assert_eq!(b["stop"], json!(["END"]));
        assert_eq!(b["max_tokens"], 10);
        assert!(!is_reasoning_model("grok-4-fast-non-reasoning"));
        assert!(is_reasoning_model("grok-4-0709") && is_reasoning_model("grok-4"));
    }

    #[test]
    fn unlisted_models() {
        assert!(unlisted("grok-5-reasoning").reasoning);
        assert!(unlisted("grok-code-fast-1").json_schema);
    }
}
