//! The `anthropic` LLM provider: Anthropic's Messages API.
//!
//! * `POST {base_url}/messages` with `x-api-key: {{secret:api_key}}` (the host substitutes the
//!   key), `anthropic-version: {api_version}` and a JSON body (see [`messages`]);
//! * streaming: the same request with `"stream": true`, read as server-sent events (see
//!   [`stream`]);
//! * `GET {base_url}/models` (paged with `after_id`) for the vendor's model list;
//! * error answers become typed provider errors (see [`error`]).
//!
//! Settings: `base_url` (default `https://api.anthropic.com/v1`; a bare origin, as the
//! reference configured it, gets `/v1` appended), `api_version` (default `2023-06-01`) and the
//! secret `api_key`.

mod catalog;
mod error;
mod messages;
mod stream;

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    StreamEvent,
};
use sceneintruder_plugin_sdk::streams;
use sceneintruder_plugin_sdk::{config, http};
use serde_json::Value;

/// Base URL used when the `base_url` setting is unset.
const DEFAULT_BASE_URL: &str = "https://api.anthropic.com/v1";
/// `anthropic-version` used when the `api_version` setting is unset.
const DEFAULT_API_VERSION: &str = "2023-06-01";
/// Name of the API key secret.
const API_KEY: &str = "api_key";
/// Page size of `GET /models` (the vendor's maximum).
const MODELS_PAGE_SIZE: u32 = 1000;
/// Pages of `GET /models` read at most.
const MAX_MODEL_PAGES: usize = 5;

/// A base URL without a path gets the API version segment: `https://api.anthropic.com` ->
/// `https://api.anthropic.com/v1`. Anything with a path is kept as it is.
fn versioned(base: &str) -> String {
    config::with_version(base, "v1")
}

/// `{base_url}{path}`, after checking that the API key is configured.
fn endpoint(path: &str) -> Result<String, ProviderError> {
    config::require_secret(API_KEY)?;
    let base = config::base_url(DEFAULT_BASE_URL)?;
    Ok(format!("{}{path}", versioned(&base)))
}

/// Headers of every request.
fn headers() -> Vec<(String, String)> {
    let version =
        config::get_non_empty("api_version").unwrap_or_else(|| DEFAULT_API_VERSION.to_string());
    vec![
        ("x-api-key".to_string(), http::secret(API_KEY)),
        ("anthropic-version".to_string(), version),
    ]
}

/// One page of `GET /models`: `(id, display name)` pairs and the cursor of the next page.
#[derive(Debug, PartialEq)]
struct ModelPage {
    models: Vec<(String, Option<String>)>,
    next_after: Option<String>,
}

/// Parses a page of `GET /models`: `data[].id` and `display_name`; the next page starts after
/// `last_id` when `has_more` is true.
fn parse_model_page(body: &[u8]) -> Result<ModelPage, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let data = v.get("data").and_then(Value::as_array).ok_or_else(|| {
        ProviderError::BadResponse("Anthropic model list has no `data` array".into())
    })?;
    let models = data
        .iter()
        .filter_map(|m| {
            let id = m.get("id").and_then(Value::as_str)?.trim();
            (!id.is_empty()).then(|| {
                (
                    id.to_string(),
                    m.get("display_name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                )
            })
        })
        .collect();
    let has_more = v.get("has_more").and_then(Value::as_bool).unwrap_or(false);
    let next_after = v
        .get("last_id")
        .and_then(Value::as_str)
        .filter(|id| has_more && !id.is_empty())
        .map(str::to_string);
    Ok(ModelPage { models, next_after })
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "anthropic".into(),
            display_name: "Anthropic Claude".into(),
            default_model: catalog::DEFAULT_MODEL.into(),
            models: catalog::catalog(),
        }
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        let url = endpoint("/messages")?;
        let body = messages::build_body(&req, false)?;
        let resp = http::send_mapped(&http::post_json(&url, headers(), &body), error::from_status)?;
        messages::parse_response(&req.model, &resp.body)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let url = endpoint("/models")?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let page_url = match &after {
                None => format!("{url}?limit={MODELS_PAGE_SIZE}"),
                Some(id) => format!(
                    "{url}?limit={MODELS_PAGE_SIZE}&after_id={}",
                    http::query_escape(id)
                ),
            };
            let resp = http::send_mapped(&http::get(&page_url, headers()), error::from_status)?;
            let page = parse_model_page(&resp.body)?;
            out.extend(
                page.models
                    .iter()
                    .map(|(id, name)| catalog::listed(id, name.as_deref())),
            );
            match page.next_after {
                Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        let url = endpoint("/messages")?;
        let body = messages::build_body(&req, true)?;
        streams::open_sse(
            &url,
            headers(),
            &body,
            error::from_status,
            stream::MessageStream::new(&req.model),
        )
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

    #[test]
    fn info() {
        let info = Plugin::info();
        assert_eq!(info.id, "anthropic");
        assert_eq!(info.display_name, "Anthropic Claude");
        assert_eq!(info.default_model, "claude-haiku-4-5");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            versioned("https://api.anthropic.com"),
            "https://api.anthropic.com/v1"
        );
        assert_eq!(
            versioned("https://api.anthropic.com/v1"),
            "https://api.anthropic.com/v1"
        );
        assert_eq!(
            versioned("http://127.0.0.1:9000/proxy/anthropic/v1"),
            "http://127.0.0.1:9000/proxy/anthropic/v1"
        );
        assert_eq!(
            versioned("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000/v1"
        );
    }

    #[test]
    fn model_pages() {
        let page = parse_model_page(
            br#"{"data":[
                {"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"},
                {"type":"model","id":"claude-3-5-haiku-20241022"},
                {"type":"model","display_name":"no id"}
            ],"has_more":true,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-3-5-haiku-20241022"}"#,
        )
        .unwrap();
        assert_eq!(
            page,
            ModelPage {
                models: vec![
                    (
                        "claude-sonnet-4-5-20250929".into(),
                        Some("Claude Sonnet 4.5".into())
                    ),
                    ("claude-3-5-haiku-20241022".into(), None),
                ],
                next_after: Some("claude-3-5-haiku-20241022".into()),
            }
        );
        let last = parse_model_page(br#"{"data":[],"has_more":false,"last_id":"x"}"#).unwrap();
        assert_eq!(last.next_after, None);
        // The reference's `models[].name` shape is not Anthropic's.
        assert!(matches!(
            parse_model_page(br#"{"models":[{"name":"claude"}]}"#),
            Err(ProviderError::BadResponse(_))
        ));
    }
}
