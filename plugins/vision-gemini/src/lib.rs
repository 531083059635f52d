//! `vision-gemini`: Gemini API native image generation through `generateContent`
//! (spec/providers-vision-video.md §1.6, following its compatibility notes).
//!
//! * `POST {base_url}/models/{model}:generateContent`; the key by `auth_mode`: the
//!   `x-goog-api-key` header (default), `?key=` (`query`) or `Authorization: Bearer`
//!   (`bearer`).
//! * Model: the setting `model_<key>`, else `model`, else the built-in id of the key
//!   (`nano-banana-pro` -> `gemini-3-pro-image-preview`, `nano-banana` ->
//!   `gemini-2.5-flash-image`), else the key itself.
//! * Body: one user turn whose parts are the prompt (with the negative prompt folded in as
//!   `Avoid: ...`) and, when the host sends one, the reference image as an `inlineData` part;
//!   `generationConfig.responseModalities: ["IMAGE"]` and `imageConfig.aspectRatio`, the
//!   supported ratio nearest to width/height (1024 x 1024 for zero sides), plus
//!   `imageConfig.imageSize` `2K`/`4K` for Gemini 3 models asked for large images.
//! * Answer: the first part across candidates with non-blank `inlineData.data` (or
//!   `inline_data.data`), decoded and returned as bytes with its `mimeType`.
//!
//! The translation is pure (`model_for`, `request_body`, `parse_answer`, `vendor_error`) and
//! tested natively; only `generate_image` touches the host.

use sceneintruder_plugin_sdk::types::{ProviderError, RateLimit, UpstreamError};
use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderInfo,
};
use sceneintruder_plugin_sdk::{config, http, imaging, types};
use serde_json::{Value, json};

/// Provider name in messages.
const PROVIDER: &str = "gemini";
/// The model key used when the host names none.
const DEFAULT_MODEL: &str = "nano-banana-pro";
/// Side used for a zero width or height.
const DEFAULT_SIDE: u32 = 1024;
/// Each request's own timeout (the host's call budget still applies).
const REQUEST_TIMEOUT_MS: u32 = 60_000;
/// Longest model text quoted in an "empty image" error, in bytes.
const TEXT_BYTES: usize = 200;

/// The catalog: (model key, display name, Gemini model id used without a setting).
const MODELS: [(&str, &str, &str); 2] = [
    (
        "nano-banana-pro",
        "Nano Banana Pro (Gemini 3 Pro Image)",
        "gemini-3-pro-image-preview",
    ),
    (
        "nano-banana",
        "Nano Banana (Gemini 2.5 Flash Image)",
        "gemini-2.5-flash-image",
    ),
];

/// Aspect ratios the image models accept, as (label, width, height).
const ASPECT_RATIOS: [(&str, f64, f64); 10] = [
    ("1:1", 1.0, 1.0),
    ("2:3", 2.0, 3.0),
    ("3:2", 3.0, 2.0),
    ("3:4", 3.0, 4.0),
    ("4:3", 4.0, 3.0),
    ("4:5", 4.0, 5.0),
    ("5:4", 5.0, 4.0),
    ("9:16", 9.0, 16.0),
    ("16:9", 16.0, 9.0),
    ("21:9", 21.0, 9.0),
];

/// How the key travels.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AuthMode {
    Header,
    Query,
    Bearer,
}

impl AuthMode {
    fn parse(setting: Option<&str>) -> AuthMode {
        match setting.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("query") => AuthMode::Query,
            Some("bearer") => AuthMode::Bearer,
            _ => AuthMode::Header,
        }
    }
}

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-gemini".into(),
            display_name: "Google Gemini".into(),
            default_model: DEFAULT_MODEL.into(),
            models: MODELS
                .iter()
                .map(|&(key, name, _)| ModelInfo {
                    display_name: name.into(),
                    // A reference image is sent as an extra inline part.
                    vision_input: true,
                    ..types::unknown_model(key)
                })
                .collect(),
        }
    }

    fn generate_image(prompt: String, options: ImageOptions) -> Result<Image, ProviderError> {
        let endpoint = imaging::endpoint(PROVIDER)?;
        if !config::has_secret("api_key") {
            return Err(ProviderError::NotConfigured(format!(
                "{PROVIDER} api_key missing: set the plugin's `api_key` secret"
            )));
        }
        let key = match options.model.trim() {
            "" => DEFAULT_MODEL,
            key => key,
        };
        let model = model_for(
            key,
            config::get_non_empty(&format!("model_{key}")),
            config::get_non_empty("model"),
        );
        let (width, height) = imaging::size_or(options.width, options.height, DEFAULT_SIDE);
        let body = request_body(&prompt, &options, &model, width, height);
        let auth = AuthMode::parse(config::get("auth_mode").as_deref());
        let mut url = imaging::join_path(
            &endpoint,
            &format!("/models/{}:generateContent", http::query_escape(&model)),
        );
        let mut headers = Vec::new();
        match auth {
            AuthMode::Header => headers.push(("x-goog-api-key".into(), http::secret("api_key"))),
            AuthMode::Bearer => headers.push(http::bearer("api_key")),
            AuthMode::Query => {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str("key=");
                url.push_str(&http::secret("api_key"));
            }
        }
        let mut request = http::post_json(&url, headers, &body);
        request.timeout_ms = Some(REQUEST_TIMEOUT_MS);
        let response = http::send_mapped(&request, vendor_error)?;
        let (bytes, content_type) = parse_answer(&response.body)?;
        Ok(Image {
            data: ImageData::Bytes(bytes),
            content_type,
            width,
            height,
        })
    }
}

vision::export!(Plugin);

/// The Gemini model id for catalog key `key`: its own setting, else the global one, else the
/// built-in id of a known key, else the key itself (a `models/` prefix is dropped).
fn model_for(key: &str, specific: Option<String>, global: Option<String>) -> String {
    let builtin = MODELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, id)| id.to_string());
    let model = specific
        .or(global)
        .or(builtin)
        .unwrap_or_else(|| key.to_string());
    match model.strip_prefix("models/") {
        Some(rest) => rest.to_string(),
        None => model,
    }
}

/// The supported aspect ratio nearest to `width` x `height` (the first of equals).
fn aspect_ratio(width: u32, height: u32) -> &'static str {
    let wanted = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
    let distance = |&(_, w, h): &(&str, f64, f64)| ((w / h).ln() - wanted).abs();
    ASPECT_RATIOS
        .iter()
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .map_or("1:1", |r| r.0)
}

/// `imageConfig.imageSize` for a large image on a model that takes one (Gemini 3); `None`
/// keeps the model's default (about 1024 on the long side).
fn image_size(model: &str, width: u32, height: u32) -> Option<&'static str> {
    if !model.starts_with("gemini-3") {
        return None;
    }
    match width.max(height) {
        0..=1536 => None,
        1537..=3072 => Some("2K"),
        _ => Some("4K"),
    }
}

/// The JSON body for `prompt` on `model` at `width` x `height` (already defaulted).
fn request_body(
    prompt: &str,
    options: &ImageOptions,
    model: &str,
    width: u32,
    height: u32,
) -> Value {
    let mut text = prompt.to_string();
    if let Some(negative) = options
        .negative_prompt
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        text.push_str("\n\nAvoid: ");
        text.push_str(negative);
    }
    let mut parts = vec![json!({"text": text})];
    if let Some(reference) = options
        .reference_image
        .as_ref()
        .filter(|r| !r.data.is_empty())
    {
        let mime = match reference.content_type.trim() {
            "" => "image/png",
            mime => mime,
        };
        parts.push(json!({"inlineData": {
            "mimeType": mime,
            "data": imaging::encode_base64(&reference.data),
        }}));
    }
    let mut image_config = json!({"aspectRatio": aspect_ratio(width, height)});
    if let Some(size) = image_size(model, width, height) {
        image_config["imageSize"] = json!(size);
    }
    json!({
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": image_config,
        },
    })
}

/// The first inline image of a 2xx answer: its bytes and content type.
fn parse_answer(body: &[u8]) -> Result<(Vec<u8>, String), ProviderError> {
    let answer: Value = http::parse_json(body).map_err(|e| match e {
        ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
        other => other,
    })?;
    let candidates = answer
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let parts = || {
        candidates
            .iter()
            .filter_map(|c| c.pointer("/content/parts").and_then(Value::as_array))
            .flatten()
    };
    let inline = parts().find_map(|part| {
        let data = part.get("inlineData").or_else(|| part.get("inline_data"))?;
        let base64 = data
            .get("data")
            .and_then(Value::as_str)
            .filter(|d| !d.trim().is_empty())?;
        let mime = data
            .get("mimeType")
            .or_else(|| data.get("mime_type"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("image/png");
        Some((base64, mime))
    });
    if let Some((base64, mime)) = inline {
        let bytes = imaging::decode_base64_image(base64).map_err(|e| match e {
            ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
            other => other,
        })?;
        return Ok((bytes, mime.to_string()));
    }
    // No image: say why when the answer does (a blocked prompt, a safety stop, the model's
    // own words).
    let mut why = Vec::new();
    if let Some(reason) = answer
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        why.push(format!("prompt blocked: {reason}"));
    }
    for reason in candidates
        .iter()
        .filter_map(|c| c.get("finishReason").and_then(Value::as_str))
        .filter(|r| *r != "STOP")
    {
        why.push(format!("finish reason {reason}"));
    }
    if let Some(text) = parts()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .map(str::trim)
        .find(|t| !t.is_empty())
    {
        why.push(format!("model said: {}", http::truncate(text, TEXT_BYTES)));
    }
    let mut message = format!("{PROVIDER} empty image");
    if !why.is_empty() {
        message.push_str(&format!(" ({})", why.join("; ")));
    }
    Err(ProviderError::BadResponse(message))
}

/// A non-2xx answer as a typed error (`gemini request failed: status=... body=...`). Gemini
/// answers an invalid key with 400 and reason `API_KEY_INVALID`: `unauthorized`. A 429
/// without `Retry-After` takes its delay from the `RetryInfo` detail.
fn vendor_error(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    let error = imaging::failure(PROVIDER, "request", status, headers, body);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let details = parsed
        .as_ref()
        .and_then(|v| match v {
            Value::Array(items) => items.first(),
            other => Some(other),
        })
        .and_then(|v| v.pointer("/error/details"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match error {
        ProviderError::BadRequest(e)
            if details
                .iter()
                .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID")) =>
        {
            ProviderError::Unauthorized(UpstreamError {
                status: e.status,
                message: e.message,
            })
        }
        ProviderError::RateLimited(RateLimit {
            retry_after_ms: None,
            message,
        }) => ProviderError::RateLimited(RateLimit {
            retry_after_ms: details
                .iter()
                .filter_map(|d| d.get("retryDelay").and_then(Value::as_str))
                .find_map(duration_ms),
            message,
        }),
        other => other,
    }
}

/// `"17s"` / `"0.5s"` -> milliseconds.
fn duration_ms(text: &str) -> Option<u64> {
    let seconds = text.trim().strip_suffix('s')?;
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds: f64 = seconds.parse().ok()?;
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::vision::ReferenceImage;

    fn options() -> ImageOptions {
        ImageOptions {
            model: "nano-banana-pro".into(),
            width: 512,
            height: 512,
            negative_prompt: None,
            steps: Some(20),
            cfg_scale: None,
            sampler: None,
            seed: Some(7),
            clip_skip: None,
            eta: None,
            tiling: None,
            prompt_extend: None,
            reference_image: None,
            denoising_strength: None,
        }
    }

    #[test]
    fn models_resolve_through_settings_then_built_ins() {
        assert_eq!(
            model_for("nano-banana-pro", None, None),
            "gemini-3-pro-image-preview"
        );
        assert_eq!(
            model_for("nano-banana", None, None),
            "gemini-2.5-flash-image"
        );
        assert_eq!(
            model_for("nano-banana-pro", Some("a".into()), Some("b".into())),
            "a"
        );
        assert_eq!(model_for("nano-banana-pro", None, Some("b".into())), "b");
        assert_eq!(
            model_for("flux", None, None),
            "flux",
            "an unknown key is sent as it is"
        );
        assert_eq!(
            model_for("flux", None, Some("models/gemini-x".into())),
            "gemini-x"
        );
    }

    #[test]
    fn aspect_ratios_and_sizes() {
        assert_eq!(aspect_ratio(512, 512), "1:1");
        assert_eq!(aspect_ratio(1920, 1080), "16:9");
        assert_eq!(aspect_ratio(768, 1024), "3:4");
        assert_eq!(aspect_ratio(1000, 1250), "4:5");
        assert_eq!(aspect_ratio(4000, 1000), "21:9");
        assert_eq!(aspect_ratio(0, 0), "1:1");
        assert_eq!(image_size("gemini-3-pro-image-preview", 512, 512), None);
        assert_eq!(
            image_size("gemini-3-pro-image-preview", 2048, 1152),
            Some("2K")
        );
        assert_eq!(
            image_size("gemini-3-pro-image-preview", 4096, 4096),
            Some("4K")
        );
        assert_eq!(image_size("gemini-2.5-flash-image", 4096, 4096), None);
    }

    #[test]
    fn request_shape() {
        let body = request_body("a cat", &options(), "gemini-3-pro-image-preview", 512, 512);
        assert_eq!(
            body,
            json!({
                "contents": [{"role": "user", "parts": [{"text": "a cat"}]}],
                "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1"}}
            })
        );
        let mut o = options();
        o.negative_prompt = Some(" blurry, text ".into());
        o.reference_image = Some(ReferenceImage {
            data: b"hi".to_vec(),
            content_type: "image/jpeg".into(),
        });
        let body = request_body("a cat", &o, "gemini-3-pro-image-preview", 2048, 1152);
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"text": "a cat\n\nAvoid: blurry, text"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "aGk="}}
            ])
        );
        assert_eq!(
            body["generationConfig"]["imageConfig"],
            json!({"aspectRatio": "16:9", "imageSize": "2K"})
        );
        o.reference_image = Some(ReferenceImage {
            data: Vec::new(),
            content_type: String::new(),
        });
        o.negative_prompt = Some("   ".into());
        let body = request_body("a cat", &o, "m", 512, 512);
        assert_eq!(body["contents"][0]["parts"], json!([{"text": "a cat"}]));
    }

    #[test]
    fn answers() {
        let camel = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is the image."},
            {"inlineData": {"mimeType": "image/jpeg", "data": "aGk="}}
        ]}}]});
        assert_eq!(
            parse_answer(camel.to_string().as_bytes()).unwrap(),
            (b"hi".to_vec(), "image/jpeg".to_string())
        );
        let snake = json!({"candidates": [
            {"content": {"parts": [{"inline_data": {"mime_type": "", "data": " "}}]}},
            {"content": {"parts": [{"inline_data": {"data": "data:image/png;base64,aGk="}}]}}
        ]});
        assert_eq!(
            parse_answer(snake.to_string().as_bytes()).unwrap(),
            (b"hi".to_vec(), "image/png".to_string())
        );
        assert_eq!(
            parse_answer(br#"{"candidates": []}"#),
            Err(ProviderError::BadResponse("gemini empty image".into()))
        );
        let refused = json!({
            "candidates": [{"finishReason": "IMAGE_SAFETY", "content": {"parts": [{"text": "I can't draw that."}]}}],
            "promptFeedback": {"blockReason": "OTHER"}
        });
        assert_eq!(
            parse_answer(refused.to_string().as_bytes()),
            Err(ProviderError::BadResponse(
                "gemini empty image (prompt blocked: OTHER; finish reason IMAGE_SAFETY; model said: I can't draw that.)".into()
            ))
        );
        assert!(
            matches!(parse_answer(b"<html>"), Err(ProviderError::BadResponse(m)) if m.starts_with("gemini "))
        );
    }

    #[test]
    fn vendor_errors() {
        let bad_key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
        match vendor_error(400, &[], bad_key.to_string().as_bytes()) {
            ProviderError::Unauthorized(e) => {
                assert_eq!(e.status, 400);
                assert!(
                    e.message
                        .starts_with("gemini request failed: status=400 body={"),
                    "{}",
                    e.message
                );
            }
            other => panic!("{other:?}"),
        }
        let quota = json!([{"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]}}]);
        match vendor_error(429, &[], quota.to_string().as_bytes()) {
            ProviderError::RateLimited(r) => assert_eq!(r.retry_after_ms, Some(17_000)),
            other => panic!("{other:?}"),
        }
        let headers = vec![("Retry-After".to_string(), "3".to_string())];
        match vendor_error(429, &headers, quota.to_string().as_bytes()) {
            ProviderError::RateLimited(r) => assert_eq!(r.retry_after_ms, Some(3_000)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            vendor_error(400, &[], br#"{"error": {"code": 400, "message": "bad"}}"#),
            ProviderError::BadRequest(_)
        ));
        assert!(matches!(
            vendor_error(503, &[], b"overloaded"),
            ProviderError::Upstream(e) if e.message == "gemini request failed: status=503 body=overloaded"
        ));
        assert_eq!(duration_ms("0.5s"), Some(500));
        assert_eq!(duration_ms("soon"), None);
    }

    #[test]
    fn auth_modes() {
        assert_eq!(AuthMode::parse(None), AuthMode::Header);
        assert_eq!(AuthMode::parse(Some(" QUERY ")), AuthMode::Query);
        assert_eq!(AuthMode::parse(Some("Bearer")), AuthMode::Bearer);
        assert_eq!(AuthMode::parse(Some("x-goog-api-key")), AuthMode::Header);
        assert_eq!(AuthMode::parse(Some("other")), AuthMode::Header);
    }
}
