//! `vision-sdwebui`: a self-hosted AUTOMATIC1111 Stable Diffusion WebUI
//! (spec/providers-vision-video.md §1.4).
//!
//! * `POST {base_url}/sdapi/v1/txt2img`, or `/sdapi/v1/img2img` with the reference image as
//!   `init_images[0]` (plain base64) when the host sends one. No authentication.
//! * Always sent: `prompt`, `negative_prompt` (possibly empty), `width`, `height` (512 for a
//!   zero side). Sent when set: `steps`, `cfg_scale`, `eta`, `denoising_strength` (img2img)
//!   when positive, `sampler_name` when not blank, `seed` when not 0, `tiling` only when true,
//!   `override_settings` with `sd_model_checkpoint` (a model key other than `sd`/`sdwebui`)
//!   and `CLIP_stop_at_last_layers` (a positive clip skip).
//! * The answer is `{"images": ["<base64>", ...]}`; the first image is returned as bytes, its
//!   content type read from its first bytes (the WebUI encodes in its configured format).
//!
//! The translation is pure (`request_body`, `first_image`) and tested natively; only
//! `generate_image` touches the host.

use sceneintruder_plugin_sdk::vision::{
    self, Guest, Image, ImageData, ImageOptions, ModelInfo, ProviderError, ProviderInfo,
};
use sceneintruder_plugin_sdk::{http, imaging, types};
use serde_json::{Map, Value, json};

/// Provider name in messages.
const PROVIDER: &str = "sdwebui";
/// The catalog key, and the model used when the host names none.
const DEFAULT_MODEL: &str = "sd";
/// Side used for a zero width or height.
const DEFAULT_SIDE: u32 = 512;
/// Each request's own timeout (the host's call budget still applies).
const REQUEST_TIMEOUT_MS: u32 = 60_000;

struct Plugin;

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "vision-sdwebui".into(),
            display_name: "Stable Diffusion WebUI".into(),
            default_model: DEFAULT_MODEL.into(),
            models: vec![ModelInfo {
                display_name: "Stable Diffusion (the WebUI's loaded checkpoint)".into(),
                // img2img: the reference image is used.
                vision_input: true,
                ..types::unknown_model(DEFAULT_MODEL)
            }],
        }
    }

    fn generate_image(prompt: String, options: ImageOptions) -> Result<Image, ProviderError> {
        let endpoint = imaging::endpoint(PROVIDER)?;
        let (width, height) = imaging::size_or(options.width, options.height, DEFAULT_SIDE);
        let (path, body) = request_body(&prompt, &options, width, height);
        let mut request = http::post_json(&imaging::join_path(&endpoint, path), Vec::new(), &body);
        request.timeout_ms = Some(REQUEST_TIMEOUT_MS);
        let response = http::send_mapped(&request, |status, headers, body| {
            imaging::failure(PROVIDER, "request", status, headers, body)
        })?;
        let bytes = first_image(&response.body)?;
        Ok(Image {
            content_type: sniffed_content_type(&bytes).into(),
            data: ImageData::Bytes(bytes),
            width,
            height,
        })
    }
}

vision::export!(Plugin);

/// The API path and JSON body for `prompt` at `width` x `height` (already defaulted).
fn request_body(
    prompt: &str,
    options: &ImageOptions,
    width: u32,
    height: u32,
) -> (&'static str, Value) {
    let mut body = Map::new();
    body.insert("prompt".into(), json!(prompt));
    body.insert(
        "negative_prompt".into(),
        json!(options.negative_prompt.as_deref().unwrap_or("").trim()),
    );
    body.insert("width".into(), json!(width));
    body.insert("height".into(), json!(height));
    if let Some(steps) = options.steps.filter(|s| *s > 0) {
        body.insert("steps".into(), json!(steps));
    }
    if let Some(cfg) = positive(options.cfg_scale) {
        body.insert("cfg_scale".into(), json!(cfg));
    }
    if let Some(sampler) = options
        .sampler
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        body.insert("sampler_name".into(), json!(sampler));
    }
    if let Some(seed) = options.seed.filter(|s| *s != 0) {
        body.insert("seed".into(), json!(seed));
    }
    if let Some(eta) = positive(options.eta) {
        body.insert("eta".into(), json!(eta));
    }
    if options.tiling == Some(true) {
        body.insert("tiling".into(), json!(true));
    }
    let mut overrides = Map::new();
    let key = options.model.trim();
    if !key.is_empty() && key != DEFAULT_MODEL && key != PROVIDER {
        overrides.insert("sd_model_checkpoint".into(), json!(key));
    }
    if let Some(clip_skip) = options.clip_skip.filter(|c| *c > 0) {
        overrides.insert("CLIP_stop_at_last_layers".into(), json!(clip_skip));
    }
    if !overrides.is_empty() {
        body.insert("override_settings".into(), Value::Object(overrides));
    }
    let reference = options
        .reference_image
        .as_ref()
        .filter(|r| !r.data.is_empty());
    let path = match reference {
        Some(reference) => {
            body.insert(
                "init_images".into(),
                json!([imaging::encode_base64(&reference.data)]),
            );
            if let Some(strength) = positive(options.denoising_strength) {
                body.insert("denoising_strength".into(), json!(strength.min(1.0)));
            }
            "/sdapi/v1/img2img"
        }
        None => "/sdapi/v1/txt2img",
    };
    (path, Value::Object(body))
}

/// A finite positive option as the decimal it was written as (`0.35`, not the `f32`'s
/// nearest `f64`, `0.3499999940395355`).
fn positive(value: Option<f32>) -> Option<f64> {
    let v = value.filter(|v| v.is_finite() && *v > 0.0)?;
    Some(v.to_string().parse().unwrap_or(f64::from(v)))
}

/// The first image of a 2xx answer, decoded.
fn first_image(body: &[u8]) -> Result<Vec<u8>, ProviderError> {
    let answer: Value = http::parse_json(body).map_err(|e| match e {
        ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
        other => other,
    })?;
    let first = answer
        .get("images")
        .and_then(Value::as_array)
        .and_then(|images| images.first())
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ProviderError::BadResponse(format!("{PROVIDER} empty images")))?;
    imaging::decode_base64_image(first).map_err(|e| match e {
        ProviderError::BadResponse(m) => ProviderError::BadResponse(format!("{PROVIDER} {m}")),
        other => other,
    })
}

/// The content type of encoded image bytes: JPEG and WebP by their signatures, else PNG.
fn sniffed_content_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "image/png"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::vision::ReferenceImage;

    fn options() -> ImageOptions {
        ImageOptions {
            model: "sd".into(),
            width: 512,
            height: 512,
            negative_prompt: None,
            steps: None,
            cfg_scale: None,
            sampler: None,
            seed: None,
            clip_skip: None,
            eta: None,
            tiling: None,
            prompt_extend: None,
            reference_image: None,
            denoising_strength: None,
        }
    }

    #[test]
    fn txt2img_sends_only_what_is_set() {
        let (path, body) = request_body("a cat", &options(), 512, 512);
        assert_eq!(path, "/sdapi/v1/txt2img");
        assert_eq!(
            body,
            json!({"prompt": "a cat", "negative_prompt": "", "width": 512, "height": 512})
        );

        let mut o = options();
        o.steps = Some(0);
        o.cfg_scale = Some(f32::NAN);
        o.sampler = Some("  ".into());
        o.seed = Some(0);
        o.eta = Some(-1.0);
        o.tiling = Some(false);
        o.clip_skip = Some(0);
        o.model = "sdwebui".into();
        o.denoising_strength = Some(0.5); // no reference image: not img2img
        let (path, body) = request_body("a cat", &o, 640, 384);
        assert_eq!(path, "/sdapi/v1/txt2img");
        assert_eq!(
            body,
            json!({"prompt": "a cat", "negative_prompt": "", "width": 640, "height": 384})
        );
    }

    #[test]
    fn every_tunable_and_img2img() {
        let mut o = options();
        o.model = "dreamshaper_8".into();
        o.negative_prompt = Some(" blurry, text ".into());
        o.steps = Some(28);
        o.cfg_scale = Some(6.5);
        o.sampler = Some("DPM++ 2M Karras".into());
        o.seed = Some(4242);
        o.eta = Some(0.2);
        o.tiling = Some(true);
        o.clip_skip = Some(2);
        o.reference_image = Some(ReferenceImage {
            data: b"hi".to_vec(),
            content_type: "image/png".into(),
        });
        o.denoising_strength = Some(0.35);
        let (path, body) = request_body("noir", &o, 512, 512);
        assert_eq!(path, "/sdapi/v1/img2img");
        assert_eq!(
            body,
            json!({
                "prompt": "noir", "negative_prompt": "blurry, text", "width": 512, "height": 512,
                "steps": 28, "cfg_scale": 6.5, "sampler_name": "DPM++ 2M Karras", "seed": 4242,
                "eta": 0.2, "tiling": true,
                "override_settings": {"sd_model_checkpoint": "dreamshaper_8", "CLIP_stop_at_last_layers": 2},
                "init_images": ["aGk="], "denoising_strength": 0.35
            })
        );

        // An empty reference is no reference; a strength above 1 is capped.
        o.reference_image = Some(ReferenceImage {
            data: Vec::new(),
            content_type: "image/png".into(),
        });
        assert_eq!(request_body("x", &o, 1, 1).0, "/sdapi/v1/txt2img");
        o.reference_image = Some(ReferenceImage {
            data: vec![1],
            content_type: "image/png".into(),
        });
        o.denoising_strength = Some(3.0);
        assert_eq!(request_body("x", &o, 1, 1).1["denoising_strength"], 1.0);
    }

    #[test]
    fn answers() {
        assert_eq!(
            first_image(br#"{"images": ["aGk=", "eA=="], "parameters": {}}"#).unwrap(),
            b"hi"
        );
        for empty in [
            r#"{"images": []}"#,
            r#"{"images": ["  "]}"#,
            r#"{"images": null}"#,
            r#"{}"#,
        ] {
            assert_eq!(
                first_image(empty.as_bytes()),
                Err(ProviderError::BadResponse("sdwebui empty images".into())),
                "{empty}"
            );
        }
        assert!(
            matches!(first_image(b"<html>"), Err(ProviderError::BadResponse(m)) if m.starts_with("sdwebui "))
        );
        assert!(
            matches!(first_image(br#"{"images": ["!!"]}"#), Err(ProviderError::BadResponse(m)) if m.starts_with("sdwebui invalid base64"))
        );
    }

    #[test]
    fn content_types_from_signatures() {
        assert_eq!(
            sniffed_content_type(&[0xFF, 0xD8, 0xFF, 0xE0]),
            "image/jpeg"
        );
        assert_eq!(sniffed_content_type(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniffed_content_type(b"\x89PNG\r\n\x1a\n"), "image/png");
        assert_eq!(sniffed_content_type(b""), "image/png");
    }
}
