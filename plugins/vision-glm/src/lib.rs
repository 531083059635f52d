//! `vision-glm`: Zhipu BigModel image generation (spec/providers-vision-video.md §1.9). The
//! image comes back as a URL the host downloads, or as base64.
//!
//! The translation (model id, size, body, answer) is pure and tested natively; only
//! `generate_image` touches the host.

use sceneintruder_plugin_sdk::imaging::{self, SizeRange};
use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderError, ProviderInfo,
};
use sceneintruder_plugin_sdk::{config, types};
use serde_json::{Value, json};

/// The provider name in messages.
const PROVIDER: &str = "glm";
/// The catalog key used when a request names none.
const DEFAULT_KEY: &str = "glm-image";
/// Appended to the endpoint unless `generation_path` says otherwise.
const DEFAULT_PATH: &str = "/images/generations";

/// The catalog: (key, display name, vendor model id used when no `model` / `model_<key>`
/// setting names another).
const MODELS: [(&str, &str, &str); 1] = [("glm-image", "GLM-Image", "glm-image")];

/// GLM-Image: sides 1024-2048, multiples of 32, at most 2^22 pixels.
const GLM_IMAGE: SizeRange = SizeRange {
    min_side: 1024,
    max_side: 2048,
    multiple: 32,
    min_pixels: 0,
    max_pixels: 1 << 22,
};

/// CogView-4: sides 512-2048, multiples of 16, at most 2^21 pixels.
const COGVIEW_4: SizeRange = SizeRange {
    min_side: 512,
    max_side: 2048,
    multiple: 16,
    min_pixels: 0,
    max_pixels: 1 << 21,
};

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-glm".into(),
            display_name: "Zhipu GLM (BigModel)".into(),
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

/// The `size` sent: the operator's setting as given, else the requested size (zero sides
/// 1024), fitted into what the model draws when it is a known family.
fn size_for(model: &str, configured: Option<String>, width: u32, height: u32) -> String {
    configured.unwrap_or_else(|| {
        let lower = model.to_ascii_lowercase();
        let range = if lower.starts_with("glm-image") {
            Some(GLM_IMAGE)
        } else if lower.starts_with("cogview-4") {
            Some(COGVIEW_4)
        } else {
            None
        };
        let (w, h) = match range {
            Some(range) => imaging::fit_size(width, height, &range),
            None => imaging::size_or(width, height, 1024),
        };
        format!("{w}x{h}")
    })
}

/// No `n` and no `response_format`: BigModel draws one image and picks how to return it.
fn body(prompt: &str, model: &str, size: &str) -> Value {
    json!({
        "model": model,
        "prompt": prompt,
        "size": size,
    })
}

/// The first image of the answer: its base64 decoded, else its URL for the host to
/// download; its size is `fallback` (the size asked for: BigModel does not report one).
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
    let (width, height) = fallback;
    if let Some(b64) = text("b64_json") {
        let bytes = imaging::decode_base64_image(b64).map_err(|e| match e {
            ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
            other => other,
        })?;
        return Ok(Image {
            data: ImageData::Bytes(bytes),
            content_type: "image/png".into(),
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
        assert_eq!(info.id, "vision-glm");
        assert_eq!(info.default_model, DEFAULT_KEY);
        assert_eq!(info.models.len(), 1);
        assert!(info.models.iter().all(|m| !m.vision_input && !m.streaming));
    }

    #[test]
    fn model_ids_sizes_and_bodies() {
        assert_eq!(model_id(DEFAULT_KEY, None), "glm-image");
        assert_eq!(model_id("flux", None), "flux");
        assert_eq!(
            model_id(DEFAULT_KEY, Some("cogview-4-250304".into())),
            "cogview-4-250304"
        );
        assert_eq!(size_for("glm-image", None, 512, 512), "1024x1024");
        assert_eq!(size_for("glm-image", None, 1280, 1280), "1280x1280");
        assert_eq!(size_for("cogview-4-250304", None, 512, 512), "512x512");
        assert_eq!(size_for("cogview-4", None, 2048, 2048), "1440x1440");
        assert_eq!(size_for("cogview-3-flash", None, 0, 0), "1024x1024");
        assert_eq!(
            size_for("glm-image", Some("1568x1056".into()), 512, 512),
            "1568x1056"
        );
        assert_eq!(
            body("a cat", "glm-image", "1024x1024"),
            json!({"model": "glm-image", "prompt": "a cat", "size": "1024x1024"})
        );
    }

    #[test]
    fn answers() {
        let url = json!({"created": 1_717_171_717, "data": [{"url": "https://cdn.example/a.png"}]});
        let img = image(&url, (1024, 1024)).unwrap();
        assert_eq!(img.data, ImageData::Url("https://cdn.example/a.png".into()));
        assert_eq!(
            (img.content_type.as_str(), img.width, img.height),
            ("image/png", 1024, 1024)
        );
        let b64 = json!({"data": [{"b64_json": "aGk="}]});
        assert_eq!(
            image(&b64, (1, 1)).unwrap().data,
            ImageData::Bytes(b"hi".to_vec())
        );
        let bad = |v: Value| image(&v, (1, 1)).unwrap_err();
        assert_eq!(
            bad(json!({"data": []})),
            ProviderError::BadResponse("glm empty data".into())
        );
        assert_eq!(
            bad(json!({"data": [{"url": " "}]})),
            ProviderError::BadResponse("glm empty image".into())
        );
        assert_eq!(
            bad(json!({"data": [{"b64_json": "%%%"}]})),
            ProviderError::BadResponse(
                "glm invalid base64 image: Invalid symbol 37, offset 0.".into()
            )
        );
    }
}
