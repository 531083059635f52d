//! The `openai-compatible` LLM provider: any server that speaks OpenAI Chat Completions
//! (llama.cpp's server, vLLM, LM Studio, LocalAI, gateways), through the SDK's codec.
//!
//! * `POST {base_url}/chat/completions`; `base_url` is required (there is no vendor default)
//!   and is the plugin's only network grant. The API key is optional: when configured it is
//!   sent as `Authorization: Bearer {{secret:api_key}}`. Output cap `max_tokens`.
//! * The model is the request's, else the `default_model` setting.
//! * JSON: the `json_mode` setting says what the server understands: `json_schema` (default;
//!   `response_format` with schemas), `json_object`, or `instruction` (no `response_format`).
//! * Reasoning: servers express it in incompatible ways, so no parameter is sent (the model's
//!   default applies).
//! * The catalog is open (empty); `list-models` asks the server (`GET {base_url}/models`).

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    Reasoning, StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, JsonSupport};
use sceneintruder_plugin_sdk::{config, http, streams, types};

/// The generic dialect: optional key, JSON support as configured.
#[derive(Clone, Copy, Debug)]
struct Compatible {
    with_key: bool,
    json: JsonSupport,
}

/// The `json_mode` setting; `None` for an unknown value.
fn json_mode(value: Option<&str>) -> Option<JsonSupport> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("json_schema") => Some(JsonSupport::Schema),
        Some("json_object") => Some(JsonSupport::Object),
        Some("instruction") => Some(JsonSupport::Instruction),
        Some(_) => None,
    }
}

/// The model to send: the request's, else `default_model`.
fn model_or_default(requested: &str, default: Option<String>) -> Result<String, ProviderError> {
    let requested = requested.trim();
    if !requested.is_empty() {
        return Ok(requested.to_string());
    }
    default.ok_or_else(|| {
        ProviderError::NotConfigured(
            "no model: the request names none and `default_model` is not set".into(),
        )
    })
}

impl Compatible {
    fn from_config() -> Result<Self, ProviderError> {
        let raw = config::get("json_mode");
        let json = json_mode(raw.as_deref()).ok_or_else(|| {
            ProviderError::NotConfigured(format!(
                "json_mode {:?} is not one of json_schema, json_object, instruction",
                raw.unwrap_or_default()
            ))
        })?;
        Ok(Compatible {
            with_key: config::has_secret("api_key"),
            json,
        })
    }

    /// `req` with its model filled in from `default_model` when blank.
    fn request(req: CompletionRequest) -> Result<CompletionRequest, ProviderError> {
        let model = model_or_default(&req.model, config::get_non_empty("default_model"))?;
        Ok(CompletionRequest { model, ..req })
    }
}

impl ChatDialect for Compatible {
    fn vendor(&self) -> &str {
        "OpenAI-compatible server"
    }

    /// None: `base_url` must be configured.
    fn default_base_url(&self) -> &str {
        ""
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

    fn json_support(&self, _model: &str, _reasoning: Reasoning) -> JsonSupport {
        self.json
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "openai-compatible".into(),
            display_name: "OpenAI-compatible server".into(),
            default_model: String::new(),
            models: Vec::new(),
        }
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&Compatible::from_config()?, &Compatible::request(req)?)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let dialect = Compatible::from_config()?;
        Ok(openai_chat::list_model_ids(&dialect)?
            .iter()
            .filter(|id| !id.trim().is_empty())
            .map(|id| ModelInfo {
                json_mode: dialect.json != JsonSupport::Instruction,
                json_schema: dialect.json == JsonSupport::Schema,
                streaming: true,
                ..types::unknown_model(id)
            })
            .collect())
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(Compatible::from_config()?, &Compatible::request(req)?)
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

    fn req(format: ResponseFormat) -> CompletionRequest {
        CompletionRequest {
            model: "local-model".into(),
            system_prompt: None,
            messages: vec![Message {
                role: Role::User,
                content: "Hello".into(),
            }],
            temperature: None,
            max_tokens: Some(32),
            top_p: None,
            stop: vec![],
            response_format: format,
            reasoning: Reasoning::Off,
        }
    }

    #[test]
    fn open_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "openai-compatible");
        assert!(info.models.is_empty() && info.default_model.is_empty());
    }

    #[test]
    fn settings() {
        assert_eq!(json_mode(None), Some(JsonSupport::Schema));
        assert_eq!(json_mode(Some(" JSON_OBJECT ")), Some(JsonSupport::Object));
        assert_eq!(
            json_mode(Some("instruction")),
            Some(JsonSupport::Instruction)
        );
        assert_eq!(json_mode(Some("yaml")), None);
        assert_eq!(model_or_default(" m ", None).unwrap(), "m");
        assert_eq!(model_or_default("", Some("d".into())).unwrap(), "d");
        assert!(matches!(
            model_or_default(" ", None),
            Err(ProviderError::NotConfigured(_))
        ));
        assert_eq!(
            Compatible {
                with_key: false,
                json: JsonSupport::Schema
            }
            .default_base_url(),
            ""
        );
    }

    #[test]
    fn optional_key() {
        let d = Compatible {
            with_key: false,
            json: JsonSupport::Schema,
        };
        assert!(d.headers().is_empty() && !d.api_key_required());
        let d = Compatible {
            with_key: true,
            ..d
        };
        assert_eq!(d.headers(), vec![http::bearer("api_key")]);
    }

    #[test]
    fn json_modes_and_no_reasoning_parameter() {
        let schema = ResponseFormat::JsonSchema(JsonSchema {
            name: "s".into(),
            schema: r#"{"type":"object"}"#.into(),
            strict: true,
        });
        let body = |json| {
            build_body(
                &Compatible {
                    with_key: false,
                    json,
                },
                &req(schema.clone()),
                false,
            )
            .unwrap()
        };
        assert_eq!(
            body(JsonSupport::Schema)["response_format"]["type"],
            "json_schema"
        );
        assert_eq!(
            body(JsonSupport::Object)["response_format"],
            json!({"type": "json_object"})
        );
        let b = body(JsonSupport::Instruction);
        assert!(b.get("response_format").is_none());
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["max_tokens"], 32);
        assert_eq!(
            b.as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
            vec!["max_tokens", "messages", "model"]
        );
    }
}
