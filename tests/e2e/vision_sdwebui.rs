//! The `vision-sdwebui` plugin (real component, real runtime) against a loopback fake of the
//! AUTOMATIC1111 WebUI API: txt2img and img2img bodies with every tunable, the image back as
//! bytes, typed vendor errors, and a missing endpoint.

use base64::Engine as _;
use sceneintruder_runtime::CallError;
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::vision::{ImageOptions, ReferenceImage};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::json;

const ID: &str = "vision-sdwebui";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-a-png-the-fake-drew";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0-a-jpeg-the-fake-drew";

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

/// The WebUI's answer: `{"images": [...], "parameters": {...}, "info": "..."}`.
fn images(list: &[&[u8]]) -> Reply {
    let encoded: Vec<String> = list.iter().map(|b| b64(b)).collect();
    Reply::json(
        200,
        json!({"images": encoded, "parameters": {}, "info": "{\"seed\": 4242}"}),
    )
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

async fn runtime(
    fixture: &RuntimeFixture,
    base_url: String,
) -> sceneintruder_runtime::PluginRuntime {
    fixture.load_configured(ID, &[("base_url", base_url)]).await
}

fn assert_json_post(seen: &Recorded, path: &str) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, path);
    assert!(
        seen.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{seen:?}"
    );
    assert_eq!(seen.header("authorization"), None, "no auth: {seen:?}");
}

#[tokio::test]
async fn txt2img_sends_every_tunable_and_returns_the_bytes() {
    let vendor = FakeVendor::start(|_| images(&[PNG, JPEG])).await;
    let fixture = RuntimeFixture::new(&[ID]);
    // A base URL with a path (a reverse proxy): the API path is joined to it.
    let rt = runtime(&fixture, format!("{}/webui/", vendor.base)).await;
    let sd = rt.vision(ID).expect("loaded");

    let mut o = options("dreamshaper_8");
    o.width = 640;
    o.height = 384;
    o.negative_prompt = Some("blurry, watermark".into());
    o.steps = Some(28);
    o.cfg_scale = Some(6.5);
    o.sampler = Some("DPM++ 2M Karras".into());
    o.seed = Some(4242);
    o.clip_skip = Some(2);
    o.eta = Some(0.2);
    o.tiling = Some(true);
    o.prompt_extend = Some(true); // not an sdwebui option: ignored
    o.denoising_strength = Some(0.5); // without a reference image: ignored
    let image = sd
        .generate_image("noir style, a detective", &o, None)
        .await
        .expect("image");
    assert_eq!(image.bytes, PNG, "the first image, decoded");
    assert_eq!(image.content_type, "image/png");
    assert_eq!((image.width, image.height), (640, 384));

    let seen = vendor.last();
    assert_json_post(&seen, "/webui/sdapi/v1/txt2img");
    assert_eq!(
        seen.json(),
        json!({
            "prompt": "noir style, a detective",
            "negative_prompt": "blurry, watermark",
            "width": 640, "height": 384,
            "steps": 28, "cfg_scale": 6.5, "sampler_name": "DPM++ 2M Karras", "seed": 4242,
            "eta": 0.2, "tiling": true,
            "override_settings": {"sd_model_checkpoint": "dreamshaper_8", "CLIP_stop_at_last_layers": 2}
        })
    );

    // The defaults: the catalog key `sd` selects no checkpoint, a zero size is 512, nothing
    // unset is sent, the negative prompt is always there.
    let mut o = options("sd");
    o.width = 0;
    o.height = 0;
    o.seed = Some(0);
    o.tiling = Some(false);
    sd.generate_image("a cat", &o, None).await.expect("image");
    assert_eq!(
        vendor.last().json(),
        json!({"prompt": "a cat", "negative_prompt": "", "width": 512, "height": 512})
    );
}

#[tokio::test]
async fn img2img_sends_the_reference_image() {
    let vendor = FakeVendor::start(|_| images(&[JPEG])).await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, vendor.base.clone()).await;
    let sd = rt.vision(ID).expect("loaded");

    let reference = b"\x89PNG\r\n\x1a\n-the-reference-frame".to_vec();
    let mut o = options("sd");
    o.reference_image = Some(ReferenceImage {
        data: reference.clone(),
        content_type: "image/png".into(),
    });
    o.denoising_strength = Some(0.35);
    o.seed = Some(-1);
    let image = sd
        .generate_image("the same detective, at dawn", &o, None)
        .await
        .expect("image");
    assert_eq!(image.bytes, JPEG);
    assert_eq!(
        image.content_type, "image/jpeg",
        "read from the bytes the WebUI encoded"
    );
    assert_eq!((image.width, image.height), (512, 512));

    let seen = vendor.last();
    assert_json_post(&seen, "/sdapi/v1/img2img");
    assert_eq!(
        seen.json(),
        json!({
            "prompt": "the same detective, at dawn", "negative_prompt": "",
            "width": 512, "height": 512, "seed": -1,
            "init_images": [b64(&reference)], "denoising_strength": 0.35
        })
    );
}

#[tokio::test]
async fn empty_answers_and_vendor_errors_are_typed() {
    let long = format!("Internal   Server\n\nError {}", "x".repeat(600));
    let vendor = FakeVendor::start(move |r: &Recorded| match r.json()["prompt"].as_str() {
        Some("none") => Reply::json(200, json!({"images": []})),
        Some("blank") => Reply::json(200, json!({"images": [""]})),
        Some("html") => Reply::text(200, "<html>not the API</html>"),
        Some("401") => Reply::json(401, json!({"detail": "Not authenticated"})),
        Some("422") => Reply::json(
            422,
            json!({"detail": [{"loc": ["body", "width"], "msg": "value is not a valid integer", "type": "type_error.integer"}]}),
        ),
        Some("429") => Reply::text(429, "busy").header("retry-after", "4"),
        _ => Reply::text(500, &long),
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, vendor.base.clone()).await;
    let sd = rt.vision(ID).expect("loaded");
    let call = async |prompt: &str| {
        provider_error(
            sd.generate_image(prompt, &options("sd"), None)
                .await
                .expect_err(prompt),
        )
    };

    for prompt in ["none", "blank"] {
        assert_error(
            call(prompt).await,
            ProviderError::BadResponse("sdwebui empty images".into()),
        );
    }
    assert!(
        matches!(call("html").await, ProviderError::BadResponse(m) if m.starts_with("sdwebui ")),
    );
    match call("401").await {
        ProviderError::Unauthorized(e) => {
            assert_eq!(e.status, 401);
            assert_eq!(
                e.message,
                r#"sdwebui request failed: status=401 body={"detail":"Not authenticated"}"#
            );
        }
        other => panic!("401: {other:?}"),
    }
    match call("422").await {
        ProviderError::BadRequest(e) => {
            assert_eq!(e.status, 422);
            assert!(
                e.message
                    .starts_with("sdwebui request failed: status=422 body={\"detail\""),
                "{}",
                e.message
            );
        }
        other => panic!("422: {other:?}"),
    }
    match call("429").await {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(4000));
            assert_eq!(r.message, "sdwebui request failed: status=429 body=busy");
        }
        other => panic!("429: {other:?}"),
    }
    match call("500").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 500);
            // Whitespace collapsed, cut to 240 bytes of body plus "...".
            let want = format!(
                "sdwebui request failed: status=500 body={}...",
                &format!("Internal Server Error {}", "x".repeat(600))[..240]
            );
            assert_eq!(e.message, want);
        }
        other => panic!("500: {other:?}"),
    }
    for seen in vendor.requests() {
        assert_json_post(&seen, "/sdapi/v1/txt2img");
    }
}

#[tokio::test]
async fn a_missing_endpoint_is_not_configured() {
    let fixture = RuntimeFixture::new(&[ID]);
    for base_url in ["", "127.0.0.1:7860"] {
        let rt = runtime(&fixture, base_url.to_string()).await;
        let err = rt
            .vision(ID)
            .expect("loaded")
            .generate_image("a cat", &options("sd"), None)
            .await
            .expect_err("no endpoint");
        assert_error(
            provider_error(err),
            ProviderError::NotConfigured("sdwebui endpoint required".into()),
        );
    }
}

#[tokio::test]
async fn catalog() {
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = fixture.load_configured(ID, &[]).await;
    let info = rt.vision(ID).expect("loaded").info().clone();
    assert_eq!(info.id, ID);
    assert_eq!(info.default_model, "sd");
    let sd = info.models.iter().find(|m| m.id == "sd").expect("sd");
    assert!(sd.vision_input && !sd.streaming && !sd.json_mode && !sd.json_schema);
}
