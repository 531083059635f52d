//! The `vision-openai` plugin (real component, real runtime) against a loopback fake of the
//! OpenAI Images API (generations): the request it sends (model ids, sizes snapped per model,
//! `response_format` only where the model takes it, the `model`/`size` settings), base64
//! results, URL results the host downloads under the plugin's allow-list (and refuses off
//! it), typed vendor errors without the key, and a missing key or endpoint.

use base64::Engine as _;
use sceneintruder_runtime::types::{HttpError, ProviderError};
use sceneintruder_runtime::vision::{ImageOptions, ReferenceImage};
use sceneintruder_runtime::{CallError, PluginRuntime, VisionProvider};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const ID: &str = "vision-openai";
const KEY: &str = "sk-images-test-4242";
const PATH: &str = "/v1/images/generations";
const PROMPT: &str = "noir style, a detective enters an abandoned train station at night";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-gpt-image-drew-this";
const WEBP: &[u8] = b"RIFF\x10\x00\x00\x00WEBPVP8 -dall-e-drew-this";

fn options(model: &str, width: u32, height: u32) -> ImageOptions {
    ImageOptions {
        model: model.into(),
        width,
        height,
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

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `gpt-image-*` answer: base64, with the format and size it drew.
fn gpt_image_answer(bytes: &[u8]) -> Value {
    json!({
        "created": 1_713_833_628,
        "background": "opaque",
        "data": [{"b64_json": b64(bytes)}],
        "output_format": "png",
        "quality": "medium",
        "size": "1024x1024",
        "usage": {"input_tokens": 50, "output_tokens": 1056, "total_tokens": 1106}
    })
}

/// A DALL·E-style answer with a URL and no base64.
fn url_answer(url: &str) -> Value {
    json!({
        "created": 1_713_833_628,
        "data": [{"b64_json": null, "url": url, "revised_prompt": "A detective in a trench coat..."}]
    })
}

fn error_body(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

fn image(bytes: &[u8], content_type: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".into(), content_type.into())],
        chunks: vec![bytes.to_vec()],
        chunk_delay: std::time::Duration::ZERO,
    }
}

/// `http://<the fake's own address>`, from the request's `Host` header.
fn origin(r: &Recorded) -> String {
    format!("http://{}", r.header("host").unwrap_or_default())
}

/// The host's `ProviderError` has no `PartialEq`; compare what it shows.
fn debug(e: ProviderError) -> String {
    format!("{e:?}")
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

async fn runtime(fixture: &RuntimeFixture, settings: &[(&str, String)]) -> PluginRuntime {
    fixture.load_configured(ID, settings).await
}

fn provider(rt: &PluginRuntime) -> VisionProvider {
    rt.vision(ID).expect("vision-openai loaded")
}

fn configured(vendor: &FakeVendor) -> Vec<(&'static str, String)> {
    vec![
        ("base_url", format!("{}/v1", vendor.base)),
        ("api_key", KEY.to_string()),
    ]
}

fn assert_generation(seen: &Recorded, path: &str) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, path);
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(
        seen.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn gpt_image_request_and_base64_result() {
    let vendor = FakeVendor::start(|_| Reply::json(200, gpt_image_answer(PNG))).await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let openai = provider(&rt);

    // Options the Images API does not take are not sent.
    let mut o = options("gpt-image-1.5", 512, 512);
    o.negative_prompt = Some("blurry".into());
    o.seed = Some(4242);
    o.cfg_scale = Some(6.5);
    o.reference_image = Some(ReferenceImage {
        data: b"ref".to_vec(),
        content_type: "image/png".into(),
    });
    let got = openai
        .generate_image(PROMPT, &o, None)
        .await
        .expect("an image");
    assert_eq!(got.bytes, PNG);
    assert_eq!(got.content_type, "image/png");
    assert_eq!((got.width, got.height), (1024, 1024));

    let seen = vendor.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_generation(&seen[0], PATH);
    // gpt-image models draw three sizes (512 x 512 snaps to the square) and take no
    // `response_format`.
    assert_eq!(
        seen[0].json(),
        json!({"model": "gpt-image-1.5", "prompt": PROMPT, "n": 1, "size": "1024x1024"})
    );

    // An empty key is the default key; a wide request snaps to the landscape size.
    openai
        .generate_image(PROMPT, &options("", 1920, 1080), None)
        .await
        .expect("an image");
    let sent = vendor.last().json();
    assert_eq!(sent["model"], "gpt-image-1.5");
    assert_eq!(sent["size"], "1536x1024");
    assert!(sent.get("response_format").is_none(), "{sent}");

    // A key the catalog does not know is sent as itself, at the requested size, with
    // `response_format` (an OpenAI-compatible gateway's model, say).
    openai
        .generate_image(PROMPT, &options("flux", 640, 480), None)
        .await
        .expect("an image");
    assert_eq!(
        vendor.last().json(),
        json!({"model": "flux", "prompt": PROMPT, "n": 1, "size": "640x480", "response_format": "b64_json"})
    );
}

#[tokio::test]
async fn dall_e_request_and_a_url_result_downloaded_by_the_host() {
    let vendor = FakeVendor::start(|r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/private/img-1.webp") => image(WEBP, "image/webp"),
        _ => Reply::json(
            200,
            url_answer(&format!(
                "{}/private/img-1.webp?st=2025&sig=x%2By",
                origin(r)
            )),
        ),
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let got = provider(&rt)
        .generate_image(PROMPT, &options("dalle3", 720, 1280), None)
        .await
        .expect("an image");
    assert_eq!(got.bytes, WEBP);
    assert_eq!(got.content_type, "image/webp");
    // No size in the answer: the size asked for.
    assert_eq!((got.width, got.height), (1024, 1792));

    let seen = vendor.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_generation(&seen[0], PATH);
    assert_eq!(
        seen[0].json(),
        json!({"model": "dall-e-3", "prompt": PROMPT, "n": 1, "size": "1024x1792", "response_format": "b64_json"})
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", "/private/img-1.webp")
    );
    assert_eq!(seen[1].query.as_deref(), Some("st=2025&sig=x%2By"));
    assert_eq!(seen[1].header("authorization"), None);
}

#[tokio::test]
async fn model_size_and_path_settings() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let mut body = gpt_image_answer(PNG);
        // Only gpt-image answers say their size.
        if !r.json()["model"]
            .as_str()
            .unwrap_or_default()
            .starts_with("gpt-image")
        {
            body.as_object_mut().map(|o| o.remove("size"));
        }
        Reply::json(200, body)
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let mut settings = configured(&vendor);
    settings.extend([
        ("generation_path", "images/generations/".to_string()),
        ("model_gpt-image-1.5", "gpt-image-1-mini".to_string()),
        ("model", "dall-e-2".to_string()),
        ("size_gpt-image-1.5", "auto".to_string()),
        ("size", "256x256".to_string()),
    ]);
    let rt = runtime(&fixture, &settings).await;
    let openai = provider(&rt);

    // The key-specific settings win for their key; the size is sent verbatim.
    let got = openai
        .generate_image(PROMPT, &options("gpt-image-1.5", 512, 512), None)
        .await
        .expect("an image");
    assert_eq!((got.width, got.height), (1024, 1024));
    let seen = vendor.last();
    assert_generation(&seen, PATH);
    assert_eq!(
        seen.json(),
        json!({"model": "gpt-image-1-mini", "prompt": PROMPT, "n": 1, "size": "auto"})
    );

    // The global settings for every other key (and `dalle3`, whose own id the global
    // `model` overrides).
    for key in ["flux", "dalle3"] {
        let got = openai
            .generate_image(PROMPT, &options(key, 512, 512), None)
            .await
            .expect("an image");
        assert_eq!((got.width, got.height), (256, 256));
        assert_eq!(
            vendor.last().json(),
            json!({"model": "dall-e-2", "prompt": PROMPT, "n": 1, "size": "256x256", "response_format": "b64_json"})
        );
    }

    // Without size settings, DALL·E 2 gets the nearest of its squares.
    let rt = runtime(
        &fixture,
        &[
            ("base_url", format!("{}/v1", vendor.base)),
            ("api_key", KEY.to_string()),
            ("model", "dall-e-2".to_string()),
        ],
    )
    .await;
    let got = provider(&rt)
        .generate_image(PROMPT, &options("gpt-image-1.5", 500, 520), None)
        .await
        .expect("an image");
    assert_eq!(vendor.last().json()["size"], "512x512");
    assert_eq!((got.width, got.height), (512, 512));
}

#[tokio::test]
async fn result_urls_off_the_allow_list_or_missing_fail() {
    let elsewhere = FakeVendor::start(|_| image(PNG, "image/png")).await;
    let other_origin = elsewhere.base.clone();
    let vendor = FakeVendor::start(move |r: &Recorded| {
        match (r.method.as_str(), r.json()["prompt"].as_str()) {
            ("GET", _) => Reply::json(404, error_body("not found", "invalid_request_error")),
            (_, Some("elsewhere")) => {
                Reply::json(200, url_answer(&format!("{other_origin}/img.png")))
            }
            (_, Some("gone")) => Reply::json(200, url_answer(&format!("{}/img.png", origin(r)))),
            (_, Some("no data")) => Reply::json(200, json!({"created": 1, "data": []})),
            (_, Some("no image")) => Reply::json(
                200,
                json!({"created": 1, "data": [{"revised_prompt": "x"}]}),
            ),
            (_, Some("empty image")) => Reply::json(
                200,
                json!({"created": 1, "data": [{"b64_json": "data:image/png;base64,"}]}),
            ),
            _ => Reply::json(
                200,
                json!({"created": 1, "data": [{"b64_json": "%%% not base64"}]}),
            ),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let openai = provider(&rt);
    let o = options("dalle3", 512, 512);
    let fail = async |prompt: &str| {
        provider_error(openai.generate_image(prompt, &o, None).await.unwrap_err())
    };

    match fail("elsewhere").await {
        ProviderError::Http(HttpError::NotAllowed(why)) => {
            assert!(why.starts_with(&elsewhere.base), "{why}")
        }
        other => panic!("expected not-allowed, got {other:?}"),
    }
    assert!(elsewhere.requests().is_empty());
    match fail("gone").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 404);
            assert!(
                e.message.contains("image download failed: status=404"),
                "{}",
                e.message
            );
        }
        other => panic!("expected the failed download, got {other:?}"),
    }
    assert_eq!(
        debug(fail("no data").await),
        debug(ProviderError::BadResponse("openai empty data".into()))
    );
    assert_eq!(
        debug(fail("no image").await),
        debug(ProviderError::BadResponse("openai empty image".into()))
    );
    assert_eq!(
        debug(fail("empty image").await),
        debug(ProviderError::BadResponse(
            "openai decoded empty image".into()
        ))
    );
    match fail("bad base64").await {
        ProviderError::BadResponse(m) => {
            assert!(m.starts_with("openai invalid base64 image"), "{m}")
        }
        other => panic!("expected a bad response, got {other:?}"),
    }
}

#[tokio::test]
async fn vendor_errors_are_typed_and_never_carry_the_key() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let echoed = r
            .header("authorization")
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_string();
        match r.json()["prompt"].as_str() {
            Some("401") => Reply::json(
                401,
                error_body(
                    &format!("Incorrect API key provided: {echoed}."),
                    "invalid_request_error",
                ),
            ),
            Some("429") => Reply::json(
                429,
                error_body("Rate limit reached for images per minute", "requests"),
            )
            .header("retry-after", "7"),
            Some("400") => Reply::json(
                400,
                error_body(
                    "Your request was rejected by the safety system.",
                    "image_generation_user_error",
                ),
            ),
            Some("500") => Reply::text(500, &format!("upstream\t\tfailure {}", "x".repeat(600))),
            _ => Reply::text(200, "<html>not json</html>"),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let openai = provider(&rt);
    let o = options("gpt-image-1.5", 512, 512);
    let fail = async |prompt: &str| {
        provider_error(openai.generate_image(prompt, &o, None).await.unwrap_err())
    };

    match fail("401").await {
        ProviderError::Unauthorized(e) => {
            assert_eq!(e.status, 401);
            assert!(
                e.message
                    .starts_with("openai request failed: status=401 body="),
                "{}",
                e.message
            );
            assert!(
                e.message.contains("Incorrect API key provided"),
                "{}",
                e.message
            );
            assert!(!e.message.contains(KEY), "{}", e.message);
            // The host replaced the echoed key before the plugin saw the body.
            assert!(e.message.contains("[redacted]"), "{}", e.message);
        }
        other => panic!("401: {other:?}"),
    }
    match fail("429").await {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(7000));
            assert!(
                r.message
                    .starts_with("openai request failed: status=429 body="),
                "{}",
                r.message
            );
        }
        other => panic!("429: {other:?}"),
    }
    match fail("400").await {
        ProviderError::BadRequest(e) => {
            assert_eq!(e.status, 400);
            assert!(e.message.contains("safety system"), "{}", e.message);
        }
        other => panic!("400: {other:?}"),
    }
    match fail("500").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 500);
            assert!(
                e.message
                    .starts_with("openai request failed: status=500 body=upstream failure xxx"),
                "{}",
                e.message
            );
            assert!(e.message.ends_with("..."), "{}", e.message);
            assert!(
                e.message.len() <= "openai request failed: status=500 body=".len() + 240 + 3,
                "{}",
                e.message
            );
        }
        other => panic!("500: {other:?}"),
    }
    assert!(matches!(
        fail("garbage").await,
        ProviderError::BadResponse(_)
    ));
    for seen in vendor.requests() {
        assert_generation(&seen, PATH);
    }
}

#[tokio::test]
async fn a_missing_key_or_endpoint_is_not_configured() {
    let vendor = FakeVendor::start(|_| Reply::json(200, gpt_image_answer(PNG))).await;
    let fixture = RuntimeFixture::new(&[ID]);
    let o = options("gpt-image-1.5", 512, 512);

    let rt = runtime(&fixture, &[("base_url", format!("{}/v1", vendor.base))]).await;
    match provider_error(
        provider(&rt)
            .generate_image(PROMPT, &o, None)
            .await
            .unwrap_err(),
    ) {
        ProviderError::NotConfigured(m) => assert!(m.contains("openai api_key missing"), "{m}"),
        other => panic!("expected not-configured, got {other:?}"),
    }

    for endpoint in ["", "api.openai.com/v1"] {
        let rt = runtime(
            &fixture,
            &[
                ("base_url", endpoint.to_string()),
                ("api_key", KEY.to_string()),
            ],
        )
        .await;
        assert_eq!(
            debug(provider_error(
                provider(&rt)
                    .generate_image(PROMPT, &o, None)
                    .await
                    .unwrap_err()
            )),
            debug(ProviderError::NotConfigured(
                "openai endpoint required".into()
            )),
            "{endpoint:?}"
        );
    }
    assert!(vendor.requests().is_empty());
}
