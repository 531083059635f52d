//! `vision-ark`: Volcengine Ark image generation with the Doubao Seedream models
//! (spec/providers-vision-video.md §1.7). Ark answers with a URL, which the host downloads.
//!
//! The translation (model id, size, body, answer) is pure and tested natively; only
//! `generate_image` touches the host.

use sceneintruder_plugin_sdk::imaging::{self, SizeRange};
use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderError, ProviderInfo,
};
use sceneintruder_plugin_sdk::{config, http, types};
use serde_json::{Value, json};

/// The provider name in messages.
const PROVIDER: &str = "ark";
/// The catalog key used when a request names none.
const DEFAULT_KEY: &str = "doubao-seedream-4.5";
/// Appended to the endpoint unless `generation_path` says otherwise.
const DEFAULT_PATH: &str = "/images/generations";

/// The catalog: (key, display name, vendor model id used when no `model` / `model_<key>`
/// setting names another).
const MODELS: [(&str, &str, &str); 1] = [(
    "doubao-seedream-4.5",
    "Doubao Seedream 4.5",
    "doubao-seedream-4-5-251128",
)];

/// Seedream 4.x (and later): between 2560 x 1440 and 4096 x 4096 pixels in all.
const SEEDREAM_4: SizeRange = SizeRange {
    min_side: 64,
    max_side: 4096,
    multiple: 64,
    min_pixels: 2560 * 1440,
    max_pixels: 4096 * 4096,
};

/// Seedream 3.0: each side between 512 and 2048.
const SEEDREAM_3: SizeRange = SizeRange {
    min_side: 512,
    max_side: 2048,
    multiple: 8,
    min_pixels: 0,
    max_pixels: u64::MAX,
};

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-ark".into(),
            display_name: "Volcengine Ark (Seedream)".into(),
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
            &key,
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

/// The sizes the model accepts, known from its id or (for an opaque endpoint id such as
/// `ep-...`) from the catalog key.
fn size_range(model: &str, key: &str) -> Option<SizeRange> {
    [model, key].iter().find_map(|name| {
        let name = name.to_ascii_lowercase();
        if name.contains("seedream-3") {
            Some(SEEDREAM_3)
        } else if name.contains("seedream-4") || name.contains("seedream-5") {
            Some(SEEDREAM_4)
        } else {
            None
        }
    })
}

/// The `size` sent: the operator's setting as given, else the requested size (zero sides
/// 1024) fitted into what the model draws, as `<w>x<h>`.
fn size_for(model: &str, key: &str, configured: Option<String>, width: u32, height: u32) -> String {
    configured.unwrap_or_else(|| {
        let (w, h) = match size_range(model, key) {
            Some(range) => imaging::fit_size(width, height, &range),
            None => imaging::size_or(width, height, 1024),
        };
        format!("{w}x{h}")
    })
}

fn body(prompt: &str, model: &str, size: &str) -> Value {
    json!({
        "model": model,
        "prompt": prompt,
        "watermark": false,
        "size": size,
    })
}

/// The first image of Ark's answer, as a URL for the host to download; its size is the one
/// Ark reports, else `fallback` (the size asked for).
fn image(answer: &Value, fallback: (u32, u32)) -> Result<Image, ProviderError> {
    let first = answer
        .get("data")
        .and_then(Value::as_array)
        .and_then(|data| data.first());
    let url = first
        .and_then(|item| item.get("url"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|url| !url.is_empty());
    let Some(url) = url else {
        // A failed item carries `error: {code, message}`; say why when Ark does.
        let error = first
            .and_then(|item| item.get("error"))
            .or_else(|| answer.get("error"));
        let why = error
            .map(|e| {
                [e.get("code"), e.get("message")]
                    .iter()
                    .filter_map(|v| v.and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(": ")
            })
            .filter(|why| !why.is_empty());
        return Err(ProviderError::BadResponse(match why {
            Some(why) => format!(
                "{PROVIDER} empty image url ({})",
                http::truncate(&why, imaging::ERROR_BODY_BYTES)
            ),
            None => format!("{PROVIDER} empty image url"),
        }));
    };
    let (width, height) = first
        .and_then(|item| item.get("size"))
        .and_then(Value::as_str)
        .and_then(imaging::parse_size)
        .unwrap_or(fallback);
    Ok(Image {
        content_type: imaging::content_type_of_url(url).into(),
        data: ImageData::Url(url.to_string()),
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_and_default() {
        let info = Plugin::info();
        assert_eq!(info.id, "vision-ark");
        assert_eq!(info.default_model, DEFAULT_KEY);
        assert_eq!(info.models.len(), 1);
        assert!(info.models.iter().all(|m| !m.vision_input && !m.streaming));
    }

    #[test]
    fn model_ids_and_sizes() {
        assert_eq!(model_id(DEFAULT_KEY, None), "doubao-seedream-4-5-251128");
        assert_eq!(model_id("flux", None), "flux");
        assert_eq!(model_id(DEFAULT_KEY, Some("ep-1".into())), "ep-1");
        // Seedream 4.x draws at least 2560 x 1440 pixels: 512 x 512 is scaled up.
        assert_eq!(
            size_for("doubao-seedream-4-5-251128", DEFAULT_KEY, None, 512, 512),
            "1920x1920"
        );
        assert_eq!(
            size_for("ep-20250101", DEFAULT_KEY, None, 0, 0),
            "1920x1920"
        );
        assert_eq!(
            size_for("ep-20250101", DEFAULT_KEY, None, 2048, 2048),
            "2048x2048"
        );
        assert_eq!(
            size_for("doubao-seedream-3-0-t2i-250415", "x", None, 512, 512),
            "512x512"
        );
        assert_eq!(size_for("other", "other", None, 640, 480), "640x480");
        assert_eq!(
            size_for("other", DEFAULT_KEY, Some("2K".into()), 512, 512),
            "2K"
        );
        assert_eq!(
            body("a cat", "m", "1x1"),
            json!({"model": "m", "prompt": "a cat", "watermark": false, "size": "1x1"})
        );
    }

    #[test]
    fn answers() {
        let ok =
            json!({"data": [{"url": " https://cdn.example/x.jpeg?sig=1 ", "size": "2048x2048"}]});
        let img = image(&ok, (512, 512)).unwrap();
        assert_eq!(
            img.data,
            ImageData::Url("https://cdn.example/x.jpeg?sig=1".into())
        );
        assert_eq!(
            (img.content_type.as_str(), img.width, img.height),
            ("image/jpeg", 2048, 2048)
        );
        let no_size = json!({"data": [{"url": "https://cdn.example/x"}]});
        let img = image(&no_size, (512, 512)).unwrap();
        assert_eq!(
            (img.content_type.as_str(), img.width, img.height),
            ("image/png", 512, 512)
        );
        for empty in [
            json!({}),
            json!({"data": []}),
            json!({"data": [{"url": ""}]}),
        ] {
            assert_eq!(
                image(&empty, (1, 1)),
                Err(ProviderError::BadResponse("ark empty image url".into()))
            );
        }
        let failed = json!({"data": [{"error": {"code": "OutputImageSensitiveContentDetected", "message": "blocked"}}]});
        assert_eq!(
            image(&failed, (1, 1)),
            Err(ProviderError::BadResponse(
                "ark empty image url (OutputImageSensitiveContentDetected: blocked)".into()
            ))
        );
    }
}
