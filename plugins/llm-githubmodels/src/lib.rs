//! The `githubmodels` LLM provider: the GitHub Models inference API through the SDK's
//! OpenAI-compatible codec.
//!
//! * `POST {base_url}/chat/completions` (default base `https://models.github.ai/inference`; the
//!   reference's Azure endpoint `models.inference.ai.azure.com` is GitHub's retired legacy
//!   host), `Authorization: Bearer {{secret:api_key}}` (a GitHub token),
//!   `X-GitHub-Api-Version: 2022-11-28`.
//! * Model ids are `publisher/name` (`openai/gpt-4.1`). OpenAI's models behave as on OpenAI:
//!   reasoning models (o-series, GPT-5) take `max_completion_tokens`, no sampling parameters and
//!   `reasoning_effort`; JSON schemas are native. Other publishers' models get `max_tokens` and
//!   JSON by instruction (their structured-output support varies).
//! * `list-models` reads GitHub's catalog, `GET {origin}/catalog/models`, with each model's
//!   limits and input modalities.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, JsonSupport, ModelSpec, OpenAi};
use sceneintruder_plugin_sdk::{config, http, streams};
use serde_json::{Map, Value};

/// The GitHub REST API version header value.
const API_VERSION: &str = "2022-11-28";

fn is_openai(model: &str) -> bool {
    model.trim().to_ascii_lowercase().starts_with("openai/")
}

/// The GitHub Models dialect.
#[derive(Clone, Copy, Debug, Default)]
struct GitHubModels;

impl ChatDialect for GitHubModels {
    fn vendor(&self) -> &str {
        "GitHub Models"
    }

    fn default_base_url(&self) -> &str {
        "https://models.github.ai/inference"
    }

    fn headers(&self) -> Vec<(String, String)> {
        vec![
            http::bearer(self.api_key_secret()),
            ("X-GitHub-Api-Version".into(), API_VERSION.into()),
        ]
    }

    fn json_support(&self, model: &str, _reasoning: Reasoning) -> JsonSupport {
        if is_openai(model) {
            JsonSupport::Schema
        } else {
            JsonSupport::Instruction
        }
    }

    fn max_tokens_key(&self, model: &str) -> &'static str {
        OpenAi.max_tokens_key(model)
    }

    fn apply_reasoning(&self, model: &str, reasoning: Reasoning, body: &mut Map<String, Value>) {
        if is_openai(model) {
            OpenAi.apply_reasoning(model, reasoning, body);
        }
    }

    fn adjust_body(
        &self,
        req: &CompletionRequest,
        body: &mut Map<String, Value>,
    ) -> Result<(), ProviderError> {
        OpenAi.adjust_body(req, body)
    }
}

/// The built-in catalog (GitHub's documented limits for these models).
const MODELS: [ModelSpec; 4] = [
    ModelSpec {
        id: "openai/gpt-4.1-mini",
        name: "OpenAI GPT-4.1 mini",
        context: 1_048_576,
        max_output: Some(32_768),
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "openai/gpt-4.1",
        name: "OpenAI GPT-4.1",
        context: 1_048_576,
        max_output: Some(32_768),
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "openai/gpt-4o",
        name: "OpenAI GPT-4o",
        context: 131_072,
        max_output: Some(16_384),
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
    ModelSpec {
        id: "openai/gpt-4o-mini",
        name: "OpenAI GPT-4o mini",
        context: 131_072,
        max_output: Some(16_384),
        json_mode: true,
        json_schema: true,
        reasoning: false,
        vision: true,
    },
];

/// `scheme://host[:port]` of a URL (everything before the first `/` after `://`).
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Parses GitHub's catalog: an array of `{id, name, limits{max_input_tokens,
/// max_output_tokens}, supported_input_modalities, capabilities, tags}`. Entries without an
/// id are skipped.
fn parse_catalog(body: &[u8]) -> Result<Vec<ModelInfo>, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let entries = v
        .as_array()
        .or_else(|| v.get("data").and_then(Value::as_array))
        .ok_or_else(|| ProviderError::BadResponse("model catalog is not a JSON array".into()))?;
    let u32_at = |m: &Value, p: &str| {
        m.pointer(p)
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let has = |m: &Value, key: &str, item: &str| {
        m.get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(item)))
    };
    Ok(entries
        .iter()
        .filter_map(|m| {
            let id = m.get("id").and_then(Value::as_str)?.trim();
            if id.is_empty() {
                return None;
            }
            let openai = is_openai(id);
            Some(ModelInfo {
                id: id.to_string(),
                display_name: m
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(id)
                    .to_string(),
                context_window: u32_at(m, "/limits/max_input_tokens").unwrap_or(0),
                max_output_tokens: u32_at(m, "/limits/max_output_tokens"),
                json_mode: true,
                json_schema: openai,
                reasoning: openai && openai_chat::is_openai_reasoning_model(id),
                vision_input: has(m, "supported_input_modalities", "image"),
                streaming: m.get("capabilities").is_none() || has(m, "capabilities", "streaming"),
            })
        })
        .collect())
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        openai_chat::catalog_info("githubmodels", "GitHub Models", &MODELS)
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&GitHubModels, &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        config::require_secret(GitHubModels.api_key_secret())?;
        let base = config::base_url(GitHubModels.default_base_url())?;
        let url = format!("{}/catalog/models", origin(&base));
        let resp = http::send(&http::get(&url, GitHubModels.headers()))?;
        parse_catalog(&resp.body)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(GitHubModels, &req)
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
    use serde_json::json;

    fn req(model: &str, reasoning: Reasoning) -> CompletionRequest {
        CompletionRequest {
            model: model.into(),
            system_prompt: None,
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: Some(0.7),
            max_tokens: Some(50),
            top_p: None,
            stop: vec![],
            response_format: ResponseFormat::Text,
            reasoning,
        }
    }

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "githubmodels");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        assert!(info.models.iter().all(|m| m.id.contains('/')));
    }

    #[test]
    fn headers() {
        let h = GitHubModels.headers();
        assert_eq!(
            http::header(&h, "authorization"),
            Some("Bearer {{secret:api_key}}")
        );
        assert_eq!(http::header(&h, "x-github-api-version"), Some(API_VERSION));
    }

    #[test]
    fn openai_models_behave_as_on_openai() {
        let b = build_body(&GitHubModels, &req("openai/gpt-4.1", Reasoning::Off), false).unwrap();
        assert_eq!(b["max_tokens"], 50);
        assert!(b.get("reasoning_effort").is_none());
        let b = build_body(&GitHubModels, &req("openai/o4-mini", Reasoning::Off), false).unwrap();
        assert_eq!(b["max_completion_tokens"], 50);
        assert_eq!(b["reasoning_effort"], "low");
        assert!(b.get("temperature").is_none());
        let mut r = req("openai/gpt-4.1", Reasoning::Off);
        r.response_format = ResponseFormat::JsonSchema(JsonSchema {
            name: "s".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: true,
        });
        let b = build_body(&GitHubModels, &r, false).unwrap();
        assert_eq!(b["response_format"]["type"], "json_schema");
    }

    #[test]
    fn other_publishers_get_json_by_instruction() {
        let mut r = req("meta/llama-4-scout-17b-16e-instruct", Reasoning::On);
        r.response_format = ResponseFormat::JsonObject;
        let b = build_body(&GitHubModels, &r, false).unwrap();
        assert!(b.get("response_format").is_none());
        assert!(b.get("reasoning_effort").is_none());
        assert_eq!(b["max_tokens"], 50);
        assert_eq!(b["messages"][0]["role"], "system");
    }

    #[test]
    fn catalog_url_and_parsing() {
        assert_eq!(
            origin("https://models.github.ai/orgs/acme/inference"),
            "https://models.github.ai"
        );
        assert_eq!(origin("http://127.0.0.1:9/inference"), "http://127.0.0.1:9");
        assert_eq!(origin("http://127.0.0.1:9"), "http://127.0.0.1:9");
        let body = json!([
            {"id": "openai/gpt-4.1", "name": "OpenAI GPT-4.1", "capabilities": ["streaming", "tool-calling"],
             "limits": {"max_input_tokens": 1048576, "max_output_tokens": 32768},
             "supported_input_modalities": ["text", "image", "audio"]},
            {"id": "openai/o3", "name": "OpenAI o3", "capabilities": ["tool-calling"],
             "limits": {"max_input_tokens": 200000}, "supported_input_modalities": ["text"]},
            {"id": "meta/llama", "name": ""},
            {"name": "no id"}
        ]);
        let models = parse_catalog(body.to_string().as_bytes()).unwrap();
        assert_eq!(models.len(), 3);
        assert_eq!(models[0].context_window, 1_048_576);
        assert_eq!(models[0].max_output_tokens, Some(32_768));
        assert!(models[0].vision_input && models[0].json_schema && models[0].streaming);
        assert!(models[1].reasoning && !models[1].streaming && !models[1].vision_input);
        assert_eq!(models[2].display_name, "meta/llama");
        assert!(!models[2].json_schema && models[2].streaming);
        assert!(matches!(
            parse_catalog(b"{}"),
            Err(ProviderError::BadResponse(_))
        ));
    }
}
