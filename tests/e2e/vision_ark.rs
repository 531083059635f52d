//! The `vision-ark` plugin (real component, real runtime) against a loopback fake of Ark's
//! image generation API (Seedream): the request it sends (model ids and sizes, with and
//! without the `model`/`size` settings), the result URL the host downloads under the
//! plugin's allow-list (and refuses off it), typed vendor errors without the key, and a
//! missing key or endpoint.

use sceneintruder_runtime::types::{HttpError, ProviderError};
use sceneintruder_runtime::vision::{ImageOptions, ReferenceImage};
use sceneintruder_runtime::{CallError, PluginRuntime, VisionProvider};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const ID: &str = "vision-ark";
const KEY: &str = "ark-test-key-4242";
const PATH: &str = "/api/v3/images/generations";
const PROMPT: &str = "noir style, a detective enters an abandoned train station at night";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0-seedream-drew-this";

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

/// Ark's answer: one image at `url`, with the size Ark says it drew when given.
fn answer(url: &str, size: Option<&str>) -> Value {
    let mut item = json!({"url": url});
    if let Some(size) = size {
        item["size"] = json!(size);
    }
    json!({
        "model": "doubao-seedream-4-5-251128",
        "created": 1_757_321_139,
        "data": [item],
        "usage": {"generated_images": 1, "output_tokens": 16384, "total_tokens": 16384}
    })
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "param": "", "type": "BadRequest"}})
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
    rt.vision(ID).expect("vision-ark loaded")
}

fn configured(vendor: &FakeVendor) -> Vec<(&'static str, String)> {
    vec![
        ("base_url", format!("{}/api/v3", vendor.base)),
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
async fn generation_request_and_the_downloaded_result() {
    let vendor = FakeVendor::start(|r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/results/frame.jpeg") => image(JPEG, "image/jpeg"),
        _ => Reply::json(
            200,
            answer(
                &format!(
                    "{}/results/frame.jpeg?X-Tos-Expires=86400&X-Tos-Signature=a%2Bb",
                    origin(r)
                ),
                Some("1920x1920"),
            ),
        ),
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let ark = provider(&rt);

    // Options Ark does not take are not sent.
    let mut o = options("doubao-seedream-4.5", 512, 512);
    o.negative_prompt = Some("blurry".into());
    o.seed = Some(4242);
    o.steps = Some(28);
    o.reference_image = Some(ReferenceImage {
        data: b"ref".to_vec(),
        content_type: "image/png".into(),
    });
    let got = ark
        .generate_image(PROMPT, &o, None)
        .await
        .expect("an image");
    assert_eq!(got.bytes, JPEG);
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!((got.width, got.height), (1920, 1920));

    let seen = vendor.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_generation(&seen[0], PATH);
    // The catalog key becomes Seedream 4.5's model id; 512 x 512 is below Seedream 4.x's
    // smallest picture (2560 x 1440 pixels), so it is scaled up keeping its shape.
    assert_eq!(
        seen[0].json(),
        json!({
            "model": "doubao-seedream-4-5-251128",
            "prompt": PROMPT,
            "watermark": false,
            "size": "1920x1920"
        })
    );
    // The host downloaded the URL as given, without the key.
    assert_eq!(seen[1].method, "GET");
    assert_eq!(seen[1].path, "/results/frame.jpeg");
    assert_eq!(
        seen[1].query.as_deref(),
        Some("X-Tos-Expires=86400&X-Tos-Signature=a%2Bb")
    );
    assert_eq!(seen[1].header("authorization"), None);

    // An empty model key is the default key; a zero size counts as 1024 x 1024.
    ark.generate_image(PROMPT, &options(" ", 0, 0), None)
        .await
        .expect("an image");
    let sent = vendor.requests()[2].json();
    assert_eq!(sent["model"], "doubao-seedream-4-5-251128");
    assert_eq!(sent["size"], "1920x1920");

    // Any other key is sent as itself, at the requested size.
    let got = ark
        .generate_image(PROMPT, &options("flux", 640, 480), None)
        .await
        .expect("an image");
    let sent = vendor.requests()[4].json();
    assert_eq!(
        (sent["model"].as_str(), sent["size"].as_str()),
        (Some("flux"), Some("640x480"))
    );
    // Ark said 1920x1920 (the fake always does): its word wins over the size asked for.
    assert_eq!((got.width, got.height), (1920, 1920));
}

#[tokio::test]
async fn model_size_and_path_settings() {
    let vendor = FakeVendor::start(|r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/results/frame.png") => image(JPEG, "image/png"),
        // No size in the answer: the result carries the size asked for.
        _ => Reply::json(
            200,
            answer(&format!("{}/results/frame.png", origin(r)), None),
        ),
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let mut settings = configured(&vendor);
    settings.extend([
        ("generation_path", "/v9/../custom/generate/".to_string()),
        (
            "model_doubao-seedream-4.5",
            "doubao-seedream-4-0-250828".to_string(),
        ),
        ("model", "ep-20250101-abcde".to_string()),
        ("size_doubao-seedream-4.5", "2K".to_string()),
        ("size", "2048x1536".to_string()),
    ]);
    let rt = runtime(&fixture, &settings).await;
    let ark = provider(&rt);

    // The key-specific settings win for their key.
    let got = ark
        .generate_image(PROMPT, &options("doubao-seedream-4.5", 512, 512), None)
        .await
        .expect("an image");
    assert_eq!(got.content_type, "image/png");
    // `2K` is no pixel size: the result says what was asked for.
    assert_eq!((got.width, got.height), (512, 512));
    let seen = &vendor.requests()[0];
    assert_generation(seen, "/api/v3/custom/generate");
    assert_eq!(
        seen.json(),
        json!({"model": "doubao-seedream-4-0-250828", "prompt": PROMPT, "watermark": false, "size": "2K"})
    );

    // The global settings for every other key.
    let got = ark
        .generate_image(PROMPT, &options("flux", 512, 512), None)
        .await
        .expect("an image");
    assert_eq!((got.width, got.height), (2048, 1536));
    let sent = vendor.requests()[2].json();
    assert_eq!(sent["model"], "ep-20250101-abcde");
    assert_eq!(sent["size"], "2048x1536");

    // Without size settings an opaque endpoint id is sized by its catalog key (Seedream 4.5).
    let rt = runtime(
        &fixture,
        &[
            ("base_url", format!("{}/api/v3", vendor.base)),
            ("api_key", KEY.to_string()),
            ("model", "ep-20250101-abcde".to_string()),
        ],
    )
    .await;
    let got = provider(&rt)
        .generate_image(PROMPT, &options("doubao-seedream-4.5", 512, 768), None)
        .await
        .expect("an image");
    let sent = vendor.requests()[4].json();
    assert_eq!(sent["model"], "ep-20250101-abcde");
    assert_eq!(sent["size"], "1600x2368");
    assert_eq!((got.width, got.height), (1600, 2368));
}

#[tokio::test]
async fn result_urls_off_the_allow_list_or_missing_fail() {
    let elsewhere = FakeVendor::start(|_| image(JPEG, "image/jpeg")).await;
    let other_origin = elsewhere.base.clone();
    let vendor = FakeVendor::start(move |r: &Recorded| {
        match (r.method.as_str(), r.json()["prompt"].as_str()) {
            ("GET", _) => Reply::text(404, "NoSuchKey"),
            (_, Some("elsewhere")) => {
                Reply::json(200, answer(&format!("{other_origin}/frame.jpeg"), None))
            }
            (_, Some("gone")) => Reply::json(200, answer(&format!("{}/frame.jpeg", origin(r)), None)),
            (_, Some("failed item")) => Reply::json(
                200,
                json!({"created": 1, "data": [{"error": {"code": "OutputImageSensitiveContentDetected",
                    "message": "The generated image may contain sensitive information."}}]}),
            ),
            _ => Reply::json(200, json!({"created": 1, "data": []})),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let ark = provider(&rt);
    let o = options("doubao-seedream-4.5", 512, 512);

    // A URL on an origin the plugin was not granted: the host refuses to fetch it.
    match provider_error(ark.generate_image("elsewhere", &o, None).await.unwrap_err()) {
        ProviderError::Http(HttpError::NotAllowed(why)) => {
            assert!(why.starts_with(&elsewhere.base), "{why}")
        }
        other => panic!("expected not-allowed, got {other:?}"),
    }
    assert!(elsewhere.requests().is_empty());

    // A result that is gone by the time the host fetches it.
    match provider_error(ark.generate_image("gone", &o, None).await.unwrap_err()) {
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

    // No URL in the answer.
    assert_eq!(
        debug(provider_error(
            ark.generate_image("nothing", &o, None).await.unwrap_err()
        )),
        debug(ProviderError::BadResponse("ark empty image url".into()))
    );
    match provider_error(
        ark.generate_image("failed item", &o, None)
            .await
            .unwrap_err(),
    ) {
        ProviderError::BadResponse(m) => {
            assert!(
                m.starts_with("ark empty image url (OutputImageSensitiveContentDetected: "),
                "{m}"
            )
        }
        other => panic!("expected a bad response, got {other:?}"),
    }
}

#[tokio::test]
async fn vendor_errors_are_typed_and_never_carry_the_key() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        // Ark echoes the key it got, as some gateways do; the host redacts it.
        let echoed = r
            .header("authorization")
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_string();
        match r.json()["prompt"].as_str() {
            Some("401") => Reply::json(
                401,
                error_body(
                    "AuthenticationError",
                    &format!("The API key in the request is missing or invalid: {echoed}"),
                ),
            ),
            Some("429") => Reply::json(
                429,
                error_body("RateLimitExceeded.EndpointRPMExceeded", "Too many requests"),
            )
            .header("retry-after", "7"),
            Some("400") => Reply::json(
                400,
                error_body(
                    "InvalidParameter",
                    "The parameter `size` specified in the request is not valid",
                ),
            ),
            Some("500") => Reply::text(
                500,
                &format!("internal   error\n\n{}", "trace line ".repeat(100)),
            ),
            _ => Reply::text(200, "<html>not json</html>"),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let ark = provider(&rt);
    let o = options("doubao-seedream-4.5", 512, 512);
    let fail = async |prompt: &str| {
        provider_error(ark.generate_image(prompt, &o, None).await.unwrap_err())
    };

    match fail("401").await {
        ProviderError::Unauthorized(e) => {
            assert_eq!(e.status, 401);
            assert!(
                e.message
                    .starts_with("ark request failed: status=401 body="),
                "{}",
                e.message
            );
            assert!(e.message.contains("AuthenticationError"), "{}", e.message);
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
                    .starts_with("ark request failed: status=429 body="),
                "{}",
                r.message
            );
            assert!(r.message.contains("Too many requests"), "{}", r.message);
        }
        other => panic!("429: {other:?}"),
    }
    match fail("400").await {
        ProviderError::BadRequest(e) => {
            assert_eq!(e.status, 400);
            assert!(e.message.contains("`size`"), "{}", e.message);
        }
        other => panic!("400: {other:?}"),
    }
    match fail("500").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 500);
            // Whitespace collapsed, the body cut to 240 bytes.
            assert!(
                e.message
                    .starts_with("ark request failed: status=500 body=internal error trace line"),
                "{}",
                e.message
            );
            assert!(e.message.ends_with("..."), "{}", e.message);
            assert!(
                e.message.len() <= "ark request failed: status=500 body=".len() + 240 + 3,
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
    let vendor =
        FakeVendor::start(|_| Reply::json(200, answer("http://127.0.0.1:9/x.png", None))).await;
    let fixture = RuntimeFixture::new(&[ID]);
    let o = options("doubao-seedream-4.5", 512, 512);

    let rt = runtime(&fixture, &[("base_url", format!("{}/api/v3", vendor.base))]).await;
    match provider_error(
        provider(&rt)
            .generate_image(PROMPT, &o, None)
            .await
            .unwrap_err(),
    ) {
        ProviderError::NotConfigured(m) => assert!(m.contains("ark api_key missing"), "{m}"),
        other => panic!("expected not-configured, got {other:?}"),
    }

    for endpoint in ["", "ark.cn-beijing.volces.com/api/v3"] {
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
            debug(ProviderError::NotConfigured("ark endpoint required".into())),
            "{endpoint:?}"
        );
    }
    assert!(vendor.requests().is_empty());
}
