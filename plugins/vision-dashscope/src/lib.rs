//! `vision-dashscope`: Alibaba Model Studio's Qwen-Image models through DashScope's synchronous
//! multimodal generation API (spec/providers-vision-video.md §1.5).
//!
//! * `POST {base_url}{generation_path}` (default path
//!   `/services/aigc/multimodal-generation/generation`), `Authorization: Bearer <api_key>`.
//! * Body: `model` (the model key verbatim, `qwen-image-2.0` when empty), the prompt as
//!   `input.messages[0].content[0].text`, and `parameters`: `result_format: "message"`,
//!   `stream: false`, `watermark: false`, `prompt_extend` (false unless asked), `size`
//!   `"<w>*<h>"` (1024 for a zero side) and `negative_prompt` when not blank.
//! * Answer: the first non-blank `output.choices[].message.content[].image` URL, returned as
//!   a URL for the host to download (DashScope storage answered as `http` is fetched over
//!   `https`); width and height from `usage` when it has them. A 2xx
//!   answer carrying a non-200 `status_code` (or an error `code` and no image) is an error.
//!
//! The translation is pure (`request_body`, `parse_answer`) and tested natively; only
//! `generate_image` touches the host.

use sceneintruder_plugin_sdk::types::{RateLimit, UpstreamError};
use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderError, ProviderInfo,
};
use sceneintruder_plugin_sdk::{config, http, imaging, types};
use serde_json::{Value, json};

/// Provider name in messages.
const PROVIDER: &str = "dashscope";
/// The model used when the host names none.
const DEFAULT_MODEL: &str = "qwen-image-2.0";
/// Path of the generation endpoint when `generation_path` is not set.
const DEFAULT_PATH: &str = "/services/aigc/multimodal-generation/generation";
/// Side used for a zero width or height.
const DEFAULT_SIDE: u32 = 1024;
/// Each request's own timeout (the host's call budget still applies).
const REQUEST_TIMEOUT_MS: u32 = 60_000;
/// Longest vendor message quoted in an error, in bytes.
const MESSAGE_BYTES: usize = 240;

/// The catalog: (model key = DashScope model id, display name).
const MODELS: [(&str, &str); 2] = [
    ("qwen-image-2.0", "Qwen-Image 2.0"),
    ("qwen-image-max", "Qwen-Image Max"),
];

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-dashscope".into(),
            display_name: "Alibaba Model Studio (Qwen-Image)".into(),
            default_model: DEFAULT_MODEL.into(),
            models: MODELS
                .iter()
                .map(|&(id, name)| ModelInfo {
                    display_name: name.into(),
                    ..types::unknown_model(id)
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
        let path = config::get_non_empty("generation_path").unwrap_or_else(|| DEFAULT_PATH.into());
        let (width, height) = imaging::size_or(options.width, options.height, DEFAULT_SIDE);
        let body = request_body(&prompt, &options, width, height);
        let mut request = http::post_json(
            &imaging::join_path(&endpoint, &path),
            vec![http::bearer("api_key")],
            &body,
        );
        request.timeout_ms = Some(REQUEST_TIMEOUT_MS);
        let response = http::send_mapped(&request, |status, headers, body| {
            imaging::failure(PROVIDER, "request", status, headers, body)
        })?;
        let answer = parse_answer(&response.body)?;
        Ok(Image {
            content_type: content_type_of_url(&answer.url).into(),
            data: ImageData::Url(answer.url),
            width: answer.width.unwrap_or(width),
            height: answer.height.unwrap_or(height),
        })
    }
}

vision::export!(Plugin);

/// The JSON body for `prompt` at `width` x `height` (already defaulted).
fn request_body(prompt: &str, options: &ImageOptions, width: u32, height: u32) -> Value {
    let model = match options.model.trim() {
        "" => DEFAULT_MODEL,
        key => key,
    };
    let mut parameters = json!({
        "result_format": "message",
        "stream": false,
        "watermark": false,
        "prompt_extend": options.prompt_extend.unwrap_or(false),
        "size": format!("{width}*{height}"),
    });
    if let Some(negative) = options
        .negative_prompt
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        parameters["negative_prompt"] = json!(negative);
    }
    json!({
        "model": model,
        "input": {"messages": [{"role": "user", "content": [{"text": prompt}]}]},
        "parameters": parameters,
    })
}

/// What a successful answer gives.
#[derive(Debug, PartialEq)]
struct Answer {
    url: String,
    width: Option<u32>,
    height: Option<u32>,
}

/// Reads a 2xx answer: the image URL, or the error it carries.
fn parse_answer(body: &[u8]) -> Result<Answer, ProviderError> {
    let answer: Value = http::parse_json(body).map_err(|e| match e {
        ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
        other => other,
    })?;
    let text = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let status = answer.get("status_code").and_then(Value::as_u64);
    if let Some(status) = status.filter(|s| *s != 0 && *s != 200) {
        return Err(embedded_error(status, text("code"), text("message")));
    }
    let url = answer
        .pointer("/output/choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|choice| choice.pointer("/message/content").and_then(Value::as_array))
        .flatten()
        .filter_map(|part| part.get("image").and_then(Value::as_str))
        .map(str::trim)
        .find(|url| !url.is_empty());
    let Some(url) = url else {
        return Err(match text("code") {
            Some(code) => embedded_error(0, Some(code), text("message")),
            None => ProviderError::BadResponse(format!("{PROVIDER} empty image url")),
        });
    };
    let side = |key: &str| {
        answer
            .pointer(&format!("/usage/{key}"))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    Ok(Answer {
        url: secure(url),
        width: side("width"),
        height: side("height"),
    })
}

/// The result URL, on `https` when it is DashScope's object storage answered as `http` (it
/// sometimes is; the storage serves both, and only the `https` origins are requested).
fn secure(url: &str) -> String {
    match url.strip_prefix("http://") {
        Some(rest)
            if rest
                .split(['/', '?', '#'])
                .next()
                .is_some_and(|host| host.to_ascii_lowercase().ends_with(".aliyuncs.com")) =>
        {
            format!("https://{rest}")
        }
        _ => url.to_string(),
    }
}

/// An error inside a 2xx answer: `dashscope error: <code>[: <message>]`, typed by its status
/// (0 when the answer has none).
fn embedded_error(status: u64, code: Option<&str>, message: Option<&str>) -> ProviderError {
    let mut text = match code {
        Some(code) => format!("{PROVIDER} error: {code}"),
        None => format!("{PROVIDER} error"),
    };
    if let Some(message) = message {
        text.push_str(": ");
        text.push_str(&http::truncate(message, MESSAGE_BYTES));
    }
    let status = u16::try_from(status).unwrap_or(0);
    let throttled = code.is_some_and(|c| c.to_ascii_lowercase().contains("throttl"));
    match status {
        429 => ProviderError::RateLimited(RateLimit {
            retry_after_ms: None,
            message: text,
        }),
        _ if throttled => ProviderError::RateLimited(RateLimit {
            retry_after_ms: None,
            message: text,
        }),
        400 | 404 | 422 => ProviderError::BadRequest(UpstreamError {
            status,
            message: text,
        }),
        401 | 403 => ProviderError::Unauthorized(UpstreamError {
            status,
            message: text,
        }),
        0 => ProviderError::BadResponse(text),
        _ => ProviderError::Upstream(UpstreamError {
            status,
            message: text,
        }),
    }
}

/// The content type a result URL's file name suggests (the host sniffs the bytes anyway).
fn content_type_of_url(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    imaging::content_type_of(&extension.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ImageOptions {
        ImageOptions {
            model: "qwen-image-max".into(),
            width: 512,
            height: 512,
            negative_prompt: None,
            steps: Some(30),
            cfg_scale: Some(7.0),
            sampler: None,
            seed: Some(9),
            clip_skip: None,
            eta: None,
            tiling: None,
            prompt_extend: None,
            reference_image: None,
            denoising_strength: None,
        }
    }

    #[test]
    fn request_shape() {
        let body = request_body("a cat", &options(), 512, 512);
        assert_eq!(
            body,
            json!({
                "model": "qwen-image-max",
                "input": {"messages": [{"role": "user", "content": [{"text": "a cat"}]}]},
                "parameters": {"result_format": "message", "stream": false, "watermark": false,
                               "prompt_extend": false, "size": "512*512"}
            })
        );
        let mut o = options();
        o.model = " ".into();
        o.prompt_extend = Some(true);
        o.negative_prompt = Some(" blurry ".into());
        let body = request_body("a cat", &o, 1024, 768);
        assert_eq!(body["model"], DEFAULT_MODEL);
        assert_eq!(body["parameters"]["prompt_extend"], true);
        assert_eq!(body["parameters"]["size"], "1024*768");
        assert_eq!(body["parameters"]["negative_prompt"], "blurry");
        o.negative_prompt = Some("  ".into());
        assert!(
            request_body("a", &o, 1, 1)["parameters"]
                .get("negative_prompt")
                .is_none()
        );
    }

    #[test]
    fn answers() {
        let ok = json!({
            "output": {"choices": [
                {"finish_reason": "stop", "message": {"role": "assistant", "content": [{"text": "x"}, {"image": " "}]}},
                {"message": {"content": [{"image": "https://r.example/a.png?Expires=1"}]}}
            ]},
            "usage": {"width": 1328, "height": 1328, "image_count": 1},
            "request_id": "r1"
        });
        assert_eq!(
            parse_answer(ok.to_string().as_bytes()).unwrap(),
            Answer {
                url: "https://r.example/a.png?Expires=1".into(),
                width: Some(1328),
                height: Some(1328)
            }
        );
        let no_usage = json!({"status_code": 200, "output": {"choices": [{"message": {"content": [{"image": "u"}]}}]}});
        assert_eq!(
            parse_answer(no_usage.to_string().as_bytes()).unwrap(),
            Answer {
                url: "u".into(),
                width: None,
                height: None
            }
        );
        assert_eq!(
            parse_answer(br#"{"output": {"choices": []}}"#),
            Err(ProviderError::BadResponse(
                "dashscope empty image url".into()
            ))
        );
        assert!(
            matches!(parse_answer(b"nope"), Err(ProviderError::BadResponse(m)) if m.starts_with("dashscope "))
        );
    }

    #[test]
    fn errors_inside_a_2xx_answer() {
        let e = parse_answer(
            br#"{"status_code": 400, "code": "InvalidParameter", "message": "size not supported"}"#,
        );
        assert_eq!(
            e,
            Err(ProviderError::BadRequest(UpstreamError {
                status: 400,
                message: "dashscope error: InvalidParameter: size not supported".into()
            }))
        );
        assert!(matches!(
            parse_answer(br#"{"status_code": 429, "code": "Throttling.RateQuota"}"#),
            Err(ProviderError::RateLimited(r)) if r.message == "dashscope error: Throttling.RateQuota"
        ));
        assert!(matches!(
            parse_answer(br#"{"status_code": 401}"#),
            Err(ProviderError::Unauthorized(u)) if u.message == "dashscope error"
        ));
        assert!(matches!(
            parse_answer(br#"{"status_code": 500, "code": "InternalError"}"#),
            Err(ProviderError::Upstream(u)) if u.status == 500
        ));
        assert_eq!(
            parse_answer(br#"{"code": "DataInspectionFailed", "message": "unsafe"}"#),
            Err(ProviderError::BadResponse(
                "dashscope error: DataInspectionFailed: unsafe".into()
            ))
        );
    }

    #[test]
    fn storage_urls_are_fetched_over_https() {
        assert_eq!(
            secure("http://dashscope-result-hz.oss-cn-hangzhou.aliyuncs.com/a.png?Expires=1"),
            "https://dashscope-result-hz.oss-cn-hangzhou.aliyuncs.com/a.png?Expires=1"
        );
        assert_eq!(
            secure("http://127.0.0.1:9/a.png"),
            "http://127.0.0.1:9/a.png"
        );
        assert_eq!(
            secure("http://evil.example/x.aliyuncs.com/a.png"),
            "http://evil.example/x.aliyuncs.com/a.png"
        );
        assert_eq!(
            secure("https://x.aliyuncs.com/a"),
            "https://x.aliyuncs.com/a"
        );
    }

    #[test]
    fn content_types_from_result_urls() {
        assert_eq!(
            content_type_of_url("https://x/a.JPG?Expires=1"),
            "image/jpeg"
        );
        assert_eq!(content_type_of_url("https://x/a.webp#f"), "image/webp");
        assert_eq!(content_type_of_url("https://x/a.png"), "image/png");
        assert_eq!(content_type_of_url("https://x/a"), "image/png");
    }
}
