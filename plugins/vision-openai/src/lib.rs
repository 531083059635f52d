//! `vision-openai`: the OpenAI Images API, generations (spec/providers-vision-video.md §1.8).
//! The image comes back as base64 (always for `gpt-image-*`) or, for other models, as a URL
//! the host downloads.
//!
//! The translation (model id, size, body, answer) is pure and tested natively; only
//! `generate_image` touches the host.

use sceneintruder_plugin_sdk::imaging;
use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderError, ProviderInfo,
};
use sceneintruder_plugin_sdk::{config, types};
use serde_json::{Value, json};

/// The provider name in messages.
const PROVIDER: &str = "openai";
/// The catalog key used when a request names none.
const DEFAULT_KEY: &str = "gpt-image-1.5";
/// Appended to the endpoint unless `generation_path` says otherwise.
const DEFAULT_PATH: &str = "/images/generations";

/// The catalog: (key, display name, vendor model id used when no `model` / `model_<key>`
/// setting names another).
const MODELS: [(&str, &str, &str); 2] = [
    ("gpt-image-1.5", "GPT Image 1.5", "gpt-image-1.5"),
    ("dalle3", "DALL·E 3", "dall-e-3"),
];

/// The sizes each model family draws; other models get the requested size.
const GPT_IMAGE_SIZES: [(u32, u32); 3] = [(1024, 1024), (1536, 1024), (1024, 1536)];
const DALL_E_3_SIZES: [(u32, u32); 3] = [(1024, 1024), (1792, 1024), (1024, 1792)];
const DALL_E_2_SIZES: [(u32, u32); 3] = [(256, 256), (512, 512), (1024, 1024)];

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-openai".into(),
            display_name: "OpenAI Images".into(),
            default_model: DEFAULT_KEY.into(),
            models: MODELS
                .iter()
                .map(|&(key, name, _)| ModelInfo {
                    display_name: name.into(),
                    ..types::unknown_model(key)
                })
                .collect(),
        }
    }

    fn generate_image(prompt: String, options: ImageOptions) -> Result<Image, ProviderError> {
        let endpoint = imaging::endpoint(PROVIDER)?;
        if !config::has_secret("api_key") {
            return Err(ProviderError::NotConfigured(format!(
                "{PROVIDER} api_key missing (set the plugin's `api_key` secret)"
            )));
        }
        if prompt.trim().is_empty() {
            return Err(ProviderError::InvalidRequest(format!(
                "{PROVIDER} prompt required"
            )));
        }
        let key = imaging::model_key(&options.model, DEFAULT_KEY);
        let model = model_id(&key, imaging::model_override(&key));
        let size = size_for(
            &model,
            imaging::size_override(&key),
            options.width,
            options.height,
        );
        let answer: Value = imaging::post_generation(
            PROVIDER,
            &endpoint,
            DEFAULT_PATH,
            &body(&prompt, &model, &size),
            None,
        )?;
        let fallback = imaging::parse_size(&size).unwrap_or(imaging::size_or(
            options.width,
            options.height,
            1024,
        ));
        image(&answer, fallback)
    }
}

vision::export!(Plugin);

/// The vendor model id: the operator's setting, else the catalog's id for the key, else the
/// key itself.
fn model_id(key: &str, configured: Option<String>) -> String {
    imaging::catalog_model_id(&MODELS, key, configured)
}

/// `gpt-image-*` models: fixed sizes, always base64, and no `response_format`.
fn is_gpt_image(model: &str) -> bool {
    model.to_ascii_lowercase().contains("gpt-image")
}

/// The `size` sent: the operator's setting as given, else the requested size (zero sides
/// 1024), snapped to the nearest size the model draws when it is a known family.
fn size_for(model: &str, configured: Option<String>, width: u32, height: u32) -> String {
    configured.unwrap_or_else(|| {
        let lower = model.to_ascii_lowercase();
        let supported: &[(u32, u32)] = if is_gpt_image(model) {
            &GPT_IMAGE_SIZES
        } else if lower.starts_with("dall-e-3") {
            &DALL_E_3_SIZES
        } else if lower.starts_with("dall-e-2") {
            &DALL_E_2_SIZES
        } else {
            &[]
        };
        let (w, h) = imaging::nearest_size(width, height, supported);
        format!("{w}x{h}")
    })
}

fn body(prompt: &str, model: &str, size: &str) -> Value {
    let mut body = json!({
        "model": model,
        "prompt": prompt,
        "n": 1,
        "size": size,
    });
    if !is_gpt_image(model) {
        body["response_format"] = json!("b64_json");
    }
    body
}

/// The first image of the answer: its base64 decoded, else its URL for the host to
/// download. The size is the one the answer reports, else `fallback` (the size asked for).
fn image(answer: &Value, fallback: (u32, u32)) -> Result<Image, ProviderError> {
    let first = answer
        .get("data")
        .and_then(Value::as_array)
        .and_then(|data| data.first())
        .ok_or_else(|| ProviderError::BadResponse(format!("{PROVIDER} empty data")))?;
    let text = |name: &str| {
        first
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (width, height) = answer
        .get("size")
        .and_then(Value::as_str)
        .and_then(imaging::parse_size)
        .unwrap_or(fallback);
    if let Some(b64) = text("b64_json") {
        let bytes = imaging::decode_base64_image(b64).map_err(|e| match e {
            ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
            other => other,
        })?;
        // `gpt-image-*` answers say which format they drew; DALL·E draws PNG.
        let format = answer
            .get("output_format")
            .and_then(Value::as_str)
            .unwrap_or("png");
        return Ok(Image {
            data: ImageData::Bytes(bytes),
            content_type: imaging::content_type_of(imaging::format_of(format)).into(),
            width,
            height,
        });
    }
    if let Some(url) = text("url") {
        return Ok(Image {
            content_type: imaging::content_type_of_url(url).into(),
            data: ImageData::Url(url.to_string()),
            width,
            height,
        });
    }
    Err(ProviderError::BadResponse(format!(
        "{PROVIDER} empty image"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_and_default() {
        let info = Plugin::info();
        assert_eq!(info.id, "vision-openai");
        assert_eq!(info.default_model, DEFAULT_KEY);
        assert!(info.models.iter().any(|m| m.id == DEFAULT_KEY));
        assert!(info.models.iter().all(|m| !m.vision_input && !m.streaming));
    }

    #[test]
    fn model_ids_sizes_and_bodies() {
        assert_eq!(model_id(DEFAULT_KEY, None), "gpt-image-1.5");
        assert_eq!(model_id("dalle3", None), "dall-e-3");
        assert_eq!(model_id("flux", None), "flux");
        assert_eq!(
            model_id("dalle3", Some("gpt-image-1".into())),
            "gpt-image-1"
        );

        assert_eq!(size_for("gpt-image-1.5", None, 512, 512), "1024x1024");
        assert_eq!(size_for("gpt-image-1-mini", None, 1920, 1080), "1536x1024");
        assert_eq!(size_for("dall-e-3", None, 720, 1280), "1024x1792");
        assert_eq!(size_for("dall-e-2", None, 512, 512), "512x512");
        assert_eq!(size_for("my-gateway-model", None, 640, 480), "640x480");
        assert_eq!(
            size_for("gpt-image-1.5", Some("auto".into()), 512, 512),
            "auto"
        );

        assert_eq!(
            body("a cat", "gpt-image-1.5", "1024x1024"),
            json!({"model": "gpt-image-1.5", "prompt": "a cat", "n": 1, "size": "1024x1024"})
        );
        assert_eq!(
            body("a cat", "dall-e-3", "1x1")["response_format"],
            "b64_json"
        );
    }

    #[test]
    fn answers() {
        let b64 = json!({"data": [{"b64_json": "aGk=", "url": "https://x/y.png"}], "size": "1536x1024", "output_format": "jpeg"});
        let img = image(&b64, (1024, 1024)).unwrap();
        assert_eq!(img.data, ImageData::Bytes(b"hi".to_vec()));
        assert_eq!(
            (img.content_type.as_str(), img.width, img.height),
            ("image/jpeg", 1536, 1024)
        );
        let url = json!({"data": [{"b64_json": " ", "url": "https://x/y.webp"}]});
        let img = image(&url, (1024, 1792)).unwrap();
        assert_eq!(img.data, ImageData::Url("https://x/y.webp".into()));
        assert_eq!(
            (img.content_type.as_str(), img.width, img.height),
            ("image/webp", 1024, 1792)
        );
        let bad = |v: Value| image(&v, (1, 1)).unwrap_err();
        assert_eq!(
            bad(json!({"data": []})),
            ProviderError::BadResponse("openai empty data".into())
        );
        assert_eq!(
            bad(json!({})),
            ProviderError::BadResponse("openai empty data".into())
        );
        assert_eq!(
            bad(json!({"data": [{}]})),
            ProviderError::BadResponse("openai empty image".into())
        );
        assert_eq!(
            bad(json!({"data": [{"b64_json": "data:image/png;base64,"}]})),
            ProviderError::BadResponse("openai decoded empty image".into())
        );
    }
}
