//! The `vision-gemini` plugin (real component, real runtime) against a loopback fake of the
//! Gemini API's `generateContent`: the three ways of sending the key, model resolution, the
//! request body (aspect ratio, negative prompt folded into the text, reference image as an
//! inline part), inline images back in both spellings, typed vendor errors without the key,
//! and a missing key or endpoint.

use base64::Engine as _;
use sceneintruder_runtime::CallError;
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::vision::{ImageOptions, ReferenceImage, VisionProvider};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const ID: &str = "vision-gemini";
const KEY: &str = "AIza-gemini-test-4242";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0-a-jpeg-gemini-drew";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-a-png-gemini-drew";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn options(model: &str) -> ImageOptions {
    ImageOptions {
        model: model.into(),
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

/// Gemini's answer: a text part, then the image (camelCase, as the REST API writes it).
fn camel_answer(bytes: &[u8], mime: &str) -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Here is the image."},
            {"inlineData": {"mimeType": mime, "data": b64(bytes)}}
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302},
        "modelVersion": "gemini-3-pro-image-preview"
    })
}

/// The snake_case spelling some gateways use.
fn snake_answer(bytes: &[u8]) -> Value {
    json!({"candidates": [{"content": {"parts": [
        {"inline_data": {"mime_type": "image/png", "data": b64(bytes)}}
    ]}}]})
}

fn provider_error(e: CallError) -> ProviderError {
    match e {
        CallError::Provider { plugin, error } => {
            assert_eq!(plugin, ID);
            error
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
}

/// The host's `ProviderError` has no `PartialEq`: compare what it shows.
fn assert_error(got: ProviderError, want: ProviderError) {
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
}

async fn gemini(
    fixture: &RuntimeFixture,
    vendor: &FakeVendor,
    extra: &[(&str, &str)],
) -> VisionProvider {
    let mut values = vec![
        ("base_url", format!("{}/v1beta", vendor.base)),
        ("api_key", KEY.to_string()),
    ];
    values.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    fixture
        .load_configured(ID, &values)
        .await
        .vision(ID)
        .expect("loaded")
}

fn assert_post(seen: &Recorded, model: &str) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, format!("/v1beta/models/{model}:generateContent"));
    assert!(
        seen.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{seen:?}"
    );
}

fn assert_header_auth(seen: &Recorded) {
    assert_eq!(seen.header("x-goog-api-key"), Some(KEY));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.query, None, "the key stays out of the URL");
}

#[tokio::test]
async fn request_body_and_inline_images() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        if r.path.contains("gemini-2.5-flash-image") {
            Reply::json(200, snake_answer(PNG))
        } else {
            Reply::json(200, camel_answer(JPEG, "image/jpeg"))
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let gemini = gemini(&fixture, &vendor, &[]).await;

    let reference = b"\x89PNG\r\n\x1a\n-the-reference-frame".to_vec();
    let mut o = options("nano-banana-pro");
    o.negative_prompt = Some(" blurry, watermark ".into());
    o.reference_image = Some(ReferenceImage {
        data: reference.clone(),
        content_type: "image/png".into(),
    });
    // Not Gemini options: ignored.
    o.seed = Some(4242);
    o.steps = Some(28);
    o.prompt_extend = Some(true);
    let image = gemini
        .generate_image("noir style, a detective", &o, None)
        .await
        .expect("image");
    assert_eq!(image.bytes, JPEG);
    assert_eq!(image.content_type, "image/jpeg");
    assert_eq!((image.width, image.height), (512, 512));

    let seen = vendor.last();
    assert_post(&seen, "gemini-3-pro-image-preview");
    assert_header_auth(&seen);
    assert_eq!(
        seen.json(),
        json!({
            "contents": [{"role": "user", "parts": [
                {"text": "noir style, a detective\n\nAvoid: blurry, watermark"},
                {"inlineData": {"mimeType": "image/png", "data": b64(&reference)}}
            ]}],
            "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "1:1"}}
        })
    );

    // The other key, a wide frame, the snake_case answer.
    let mut o = options("nano-banana");
    o.width = 1920;
    o.height = 1080;
    let image = gemini
        .generate_image("a train station", &o, None)
        .await
        .expect("image");
    assert_eq!(image.bytes, PNG);
    assert_eq!(image.content_type, "image/png");
    assert_eq!((image.width, image.height), (1920, 1080));
    let seen = vendor.last();
    assert_post(&seen, "gemini-2.5-flash-image");
    assert_eq!(
        seen.json(),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "a train station"}]}],
            "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}}
        })
    );

    // No model key, zero size: the default key at 1024 x 1024; a large portrait frame on a
    // Gemini 3 model asks for 2K.
    let mut o = options("");
    o.width = 0;
    o.height = 0;
    let image = gemini.generate_image("x", &o, None).await.expect("image");
    assert_eq!((image.width, image.height), (1024, 1024));
    assert_post(&vendor.last(), "gemini-3-pro-image-preview");
    let mut o = options("nano-banana-pro");
    o.width = 1536;
    o.height = 2048;
    gemini.generate_image("x", &o, None).await.expect("image");
    assert_eq!(
        vendor.last().json()["generationConfig"]["imageConfig"],
        json!({"aspectRatio": "3:4", "imageSize": "2K"})
    );
}

#[tokio::test]
async fn auth_modes() {
    let vendor = FakeVendor::start(|_| Reply::json(200, camel_answer(PNG, "image/png"))).await;
    let fixture = RuntimeFixture::new(&[ID]);

    gemini(&fixture, &vendor, &[("auth_mode", "QUERY")])
        .await
        .generate_image("a cat", &options("nano-banana-pro"), None)
        .await
        .expect("query mode");
    let seen = vendor.last();
    assert_post(&seen, "gemini-3-pro-image-preview");
    assert_eq!(seen.query.as_deref(), Some(format!("key={KEY}").as_str()));
    assert_eq!(seen.header("x-goog-api-key"), None);
    assert_eq!(seen.header("authorization"), None);

    gemini(&fixture, &vendor, &[("auth_mode", "bearer")])
        .await
        .generate_image("a cat", &options("nano-banana-pro"), None)
        .await
        .expect("bearer mode");
    let seen = vendor.last();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen.header("x-goog-api-key"), None);
    assert_eq!(seen.query, None);

    gemini(&fixture, &vendor, &[("auth_mode", "x-goog-api-key")])
        .await
        .generate_image("a cat", &options("nano-banana-pro"), None)
        .await
        .expect("header mode");
    assert_header_auth(&vendor.last());
}

#[tokio::test]
async fn model_settings_override_the_built_in_ids() {
    let vendor = FakeVendor::start(|_| Reply::json(200, camel_answer(PNG, "image/png"))).await;
    let fixture = RuntimeFixture::new(&[ID]);
    let gemini = gemini(
        &fixture,
        &vendor,
        &[
            ("model_nano-banana-pro", "gemini-3-pro-image"),
            ("model", "gemini-custom-image"),
        ],
    )
    .await;
    for (key, model) in [
        ("nano-banana-pro", "gemini-3-pro-image"),
        ("nano-banana", "gemini-custom-image"),
        ("flux", "gemini-custom-image"),
    ] {
        gemini
            .generate_image("a cat", &options(key), None)
            .await
            .expect(key);
        assert_post(&vendor.last(), model);
    }
}

#[tokio::test]
async fn vendor_errors_are_typed_and_keep_the_key_out() {
    let long = format!("upstream   connect error\n{}", "z".repeat(700));
    let vendor = FakeVendor::start(move |r: &Recorded| {
        let echo = r.header("x-goog-api-key").unwrap_or_default().to_string();
        match r.json()["contents"][0]["parts"][0]["text"].as_str() {
            Some("401") => Reply::json(
                400,
                json!({"error": {"code": 400, "message": format!("API key not valid: {echo}"),
                    "status": "INVALID_ARGUMENT", "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}),
            ),
            Some("429") => Reply::json(
                429,
                json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                    "status": "RESOURCE_EXHAUSTED", "details": [{
                        "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]}}),
            ),
            Some("safety") => Reply::json(
                200,
                json!({"candidates": [{"finishReason": "IMAGE_SAFETY", "content": {"parts": []}}]}),
            ),
            Some("garbage") => Reply::text(200, "<html>a captive portal</html>"),
            _ => Reply::text(500, &long),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let gemini = gemini(&fixture, &vendor, &[]).await;
    let call = async |prompt: &str| {
        provider_error(
            gemini
                .generate_image(prompt, &options("nano-banana-pro"), None)
                .await
                .expect_err(prompt),
        )
    };

    match call("401").await {
        ProviderError::Unauthorized(e) => {
            assert_eq!(e.status, 400);
            assert!(
                e.message
                    .starts_with("gemini request failed: status=400 body={"),
                "{}",
                e.message
            );
            assert!(!e.message.contains(KEY), "{}", e.message);
            assert!(e.message.contains("[redacted]"), "the echo: {}", e.message);
        }
        other => panic!("invalid key: {other:?}"),
    }
    match call("429").await {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(17_000));
            assert!(
                r.message.starts_with("gemini request failed: status=429"),
                "{}",
                r.message
            );
        }
        other => panic!("429: {other:?}"),
    }
    match call("500").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 500);
            let body = format!("upstream connect error {}", "z".repeat(700));
            assert_eq!(
                e.message,
                format!("gemini request failed: status=500 body={}...", &body[..240])
            );
        }
        other => panic!("500: {other:?}"),
    }
    assert_error(
        call("safety").await,
        ProviderError::BadResponse("gemini empty image (finish reason IMAGE_SAFETY)".into()),
    );
    assert!(
        matches!(call("garbage").await, ProviderError::BadResponse(m) if m.starts_with("gemini ")),
    );
    for seen in vendor.requests() {
        assert_post(&seen, "gemini-3-pro-image-preview");
        assert_header_auth(&seen);
    }
}

#[tokio::test]
async fn a_missing_key_or_endpoint_is_not_configured() {
    let vendor = FakeVendor::start(|_| Reply::json(500, json!({}))).await;
    let fixture = RuntimeFixture::new(&[ID]);

    let rt = fixture
        .load_configured(ID, &[("base_url", format!("{}/v1beta", vendor.base))])
        .await;
    let gemini = rt.vision(ID).expect("loaded");
    assert_eq!(gemini.missing_required(), vec!["api_key".to_string()]);
    match provider_error(
        gemini
            .generate_image("a cat", &options("nano-banana-pro"), None)
            .await
            .expect_err("no key"),
    ) {
        ProviderError::NotConfigured(m) => assert!(m.starts_with("gemini api_key missing"), "{m}"),
        other => panic!("{other:?}"),
    }

    let rt = fixture
        .load_configured(
            ID,
            &[("base_url", String::new()), ("api_key", KEY.to_string())],
        )
        .await;
    assert_error(
        provider_error(
            rt.vision(ID)
                .expect("loaded")
                .generate_image("a cat", &options("nano-banana-pro"), None)
                .await
                .expect_err("no endpoint"),
        ),
        ProviderError::NotConfigured("gemini endpoint required".into()),
    );
    assert!(vendor.requests().is_empty());

    let info = rt.vision(ID).expect("loaded").info().clone();
    assert_eq!(info.id, ID);
    assert_eq!(info.default_model, "nano-banana-pro");
    let keys: Vec<&str> = info.models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(keys, ["nano-banana-pro", "nano-banana"]);
    assert!(
        info.models
            .iter()
            .all(|m| m.vision_input && !m.streaming && !m.json_mode && !m.json_schema)
    );
}
