//! The `google` LLM provider: the Gemini API's `generateContent`.
//!
//! * `POST {base_url}/models/{model}:generateContent` with the key ONLY in the
//!   `x-goog-api-key: {{secret:api_key}}` header (the host substitutes it; it never appears in
//!   a URL, so it cannot leak through logs or transport errors) and a JSON body (see
//!   [`generate`]);
//! * streaming: `POST {base_url}/models/{model}:streamGenerateContent?alt=sse` (see [`stream`]);
//! * `GET {base_url}/models` (paged with `pageToken`) for the models that can generate content;
//! * error answers become typed provider errors (see [`error`]).
//!
//! Settings: `base_url` (default `https://generativelanguage.googleapis.com/v1beta`; a bare
//! origin gets `/v1beta` appended) and the secret `api_key`.

mod catalog;
mod error;
mod generate;
mod schema;
mod stream;

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    StreamEvent,
};
use sceneintruder_plugin_sdk::streams;
use sceneintruder_plugin_sdk::{config, http, log};
use serde_json::Value;

/// Base URL used when the `base_url` setting is unset.
const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// Name of the API key secret.
const API_KEY: &str = "api_key";
/// Page size of `GET /models` (the vendor's maximum).
const MODELS_PAGE_SIZE: u32 = 1000;
/// Pages of `GET /models` read at most.
const MAX_MODEL_PAGES: usize = 5;

/// A base URL without a path gets the API version segment:
/// `https://generativelanguage.googleapis.com` -> `.../v1beta`. Anything with a path is kept.
fn versioned(base: &str) -> String {
    config::with_version(base, "v1beta")
}

/// `{base_url}{path}`, after checking that the API key is configured.
fn endpoint(path: &str) -> Result<String, ProviderError> {
    config::require_secret(API_KEY)?;
    let base = config::base_url(DEFAULT_BASE_URL)?;
    Ok(format!("{}{path}", versioned(&base)))
}

/// Headers of every request: the key, as a header placeholder.
fn headers() -> Vec<(String, String)> {
    vec![("x-goog-api-key".to_string(), http::secret(API_KEY))]
}

/// Builds the body, logging when a JSON schema had to become an instruction.
fn body(req: &CompletionRequest) -> Result<Value, ProviderError> {
    let built = generate::build_body(req)?;
    if let Some(why) = built.schema_fallback {
        log::warn(&format!(
            "the JSON schema cannot be expressed as a Gemini responseSchema ({why}); \
             it is sent as an instruction instead"
        ));
    }
    Ok(built.body)
}

/// One page of `GET /models`: the models that generate content and the next page's token.
#[derive(Debug, PartialEq)]
struct ModelPage {
    models: Vec<ModelInfo>,
    next_token: Option<String>,
}

fn parse_model_page(body: &[u8]) -> Result<ModelPage, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let models = match v.get("models") {
        Some(Value::Array(models)) => models.iter().filter_map(catalog::listed).collect(),
        // An empty page may leave the list out.
        None => Vec::new(),
        Some(_) => {
            return Err(ProviderError::BadResponse(
                "Gemini model list has a `models` field that is not an array".into(),
            ));
        }
    };
    let next_token = v
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(ModelPage { models, next_token })
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "google".into(),
            // The reference's provider display name, kept as clients see it (spec §4.3).
            display_name: "google gemini".into(),
            default_model: catalog::DEFAULT_MODEL.into(),
            models: catalog::catalog(),
        }
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        let resource = catalog::resource(&req.model)?;
        let url = endpoint(&format!("/{resource}:generateContent"))?;
        let body = body(&req)?;
        let resp = http::send_mapped(&http::post_json(&url, headers(), &body), error::from_status)?;
        generate::parse_response(&req.model, &resp.body)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let url = endpoint("/models")?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let page_url = match &token {
                None => format!("{url}?pageSize={MODELS_PAGE_SIZE}"),
                Some(t) => format!(
                    "{url}?pageSize={MODELS_PAGE_SIZE}&pageToken={}",
                    http::query_escape(t)
                ),
            };
            let resp = http::send_mapped(&http::get(&page_url, headers()), error::from_status)?;
            let page = parse_model_page(&resp.body)?;
            out.extend(page.models);
            match page.next_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        let resource = catalog::resource(&req.model)?;
        let url = endpoint(&format!("/{resource}:streamGenerateContent?alt=sse"))?;
        let body = body(&req)?;
        streams::open_sse(
            &url,
            headers(),
            &body,
            error::from_status,
            stream::GenerateStream::new(&req.model),
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
        assert_eq!(info.id, "google");
        assert_eq!(info.display_name, "google gemini");
        assert_eq!(info.default_model, "gemini-2.5-flash");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            versioned("https://generativelanguage.googleapis.com"),
            "https://generativelanguage.googleapis.com/v1beta"
        );
        assert_eq!(
            versioned("https://generativelanguage.googleapis.com/v1"),
            "https://generativelanguage.googleapis.com/v1"
        );
        assert_eq!(
            versioned("http://127.0.0.1:9/v1beta"),
            "http://127.0.0.1:9/v1beta"
        );
    }

    #[test]
    fn model_pages() {
        let page = parse_model_page(
            br#"{"models": [
                {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
                 "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                 "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": true},
                {"name": "models/text-embedding-004", "displayName": "Text Embedding 004",
                 "supportedGenerationMethods": ["embedContent"]}
            ], "nextPageToken": "Cg9nZW1pbmk+/="}"#,
        )
        .unwrap();
        assert_eq!(page.models.len(), 1);
        assert_eq!(page.models[0].id, "gemini-2.5-flash");
        assert_eq!(page.next_token.as_deref(), Some("Cg9nZW1pbmk+/="));
        let last = parse_model_page(b"{}").unwrap();
        assert_eq!(
            last,
            ModelPage {
                models: vec![],
                next_token: None
            }
        );
        assert!(matches!(
            parse_model_page(br#"{"models": {}}"#),
            Err(ProviderError::BadResponse(_))
        ));
    }
}
