//! The `vision-glm` plugin (real component, real runtime) against a loopback fake of Zhipu
//! BigModel's image generation API: the request it sends (no `n`, no `response_format`;
//! model ids and sizes with and without the `model`/`size` settings), URL results the host
//! downloads under the plugin's allow-list (and refuses off it), base64 results, typed vendor
//! errors without the key, and a missing key or endpoint.

use base64::Engine as _;
use sceneintruder_runtime::types::{HttpError, ProviderError};
use sceneintruder_runtime::vision::{ImageOptions, ReferenceImage};
use sceneintruder_runtime::{CallError, PluginRuntime, VisionProvider};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const ID: &str = "vision-glm";
const KEY: &str = "glm-test-key.4242";
const PATH: &str = "/api/paas/v4/images/generations";
const PROMPT: &str = "noir style, a detective enters an abandoned train station at night";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-glm-image-drew-this";

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

/// BigModel's answer with an image URL.
fn url_answer(url: &str) -> Value {
    json!({
        "created": 1_717_171_717,
        "data": [{"url": url}],
        "content_filter": [{"role": "assistant", "level": 3}]
    })
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
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
    rt.vision(ID).expect("vision-glm loaded")
}

fn configured(vendor: &FakeVendor) -> Vec<(&'static str, String)> {
    vec![
        ("base_url", format!("{}/api/paas/v4", vendor.base)),
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
        ("GET", "/results/202505/frame.png") => image(PNG, "image/png"),
        _ => Reply::json(
            200,
            url_answer(&format!(
                "{}/results/202505/frame.png?Expires=1&Signature=a%2Fb",
                origin(r)
            )),
        ),
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let glm = provider(&rt);

    // Options BigModel does not take are not sent.
    let mut o = options("glm-image", 512, 512);
    o.negative_prompt = Some("blurry".into());
    o.seed = Some(4242);
    o.tiling = Some(true);
    o.reference_image = Some(ReferenceImage {
        data: b"ref".to_vec(),
        content_type: "image/png".into(),
    });
    let got = glm
        .generate_image(PROMPT, &o, None)
        .await
        .expect("an image");
    assert_eq!(got.bytes, PNG);
    assert_eq!(got.content_type, "image/png");
    // BigModel does not say: the size asked for.
    assert_eq!((got.width, got.height), (1024, 1024));

    let seen = vendor.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_generation(&seen[0], PATH);
    // glm-image draws sides of 1024 to 2048: 512 x 512 is scaled up. No `n`, no
    // `response_format`.
    assert_eq!(
        seen[0].json(),
        json!({"model": "glm-image", "prompt": PROMPT, "size": "1024x1024"})
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("GET", "/results/202505/frame.png")
    );
    assert_eq!(seen[1].query.as_deref(), Some("Expires=1&Signature=a%2Fb"));
    assert_eq!(seen[1].header("authorization"), None);

    // An empty key is the default key; a size that fits is kept (rounded to steps of 32).
    let got = glm
        .generate_image(PROMPT, &options("", 1920, 1080), None)
        .await
        .expect("an image");
    let sent = vendor.requests()[2].json();
    assert_eq!(
        sent,
        json!({"model": "glm-image", "prompt": PROMPT, "size": "1920x1088"})
    );
    assert_eq!((got.width, got.height), (1920, 1088));

    // Any other key is sent as itself, at the requested size.
    glm.generate_image(PROMPT, &options("cogview-3-flash", 768, 1344), None)
        .await
        .expect("an image");
    let sent = vendor.requests()[4].json();
    assert_eq!(
        (sent["model"].as_str(), sent["size"].as_str()),
        (Some("cogview-3-flash"), Some("768x1344"))
    );
}

#[tokio::test]
async fn base64_results_and_settings() {
    let vendor = FakeVendor::start(|_| {
        Reply::json(
            200,
            json!({"created": 1, "data": [{"b64_json": base64::engine::general_purpose::STANDARD.encode(PNG)}]}),
        )
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let mut settings = configured(&vendor);
    settings.extend([
        ("generation_path", "/images/generations/".to_string()),
        ("model_glm-image", "cogview-4-250304".to_string()),
        ("model", "cogview-3-flash".to_string()),
        ("size_glm-image", "1568x1056".to_string()),
        ("size", "1024x1024".to_string()),
    ]);
    let rt = runtime(&fixture, &settings).await;
    let glm = provider(&rt);

    // The key-specific settings win for their key; the size is sent verbatim.
    let got = glm
        .generate_image(PROMPT, &options("glm-image", 512, 512), None)
        .await
        .expect("an image");
    assert_eq!(got.bytes, PNG);
    assert_eq!(got.content_type, "image/png");
    assert_eq!((got.width, got.height), (1568, 1056));
    let seen = vendor.last();
    assert_generation(&seen, PATH);
    assert_eq!(
        seen.json(),
        json!({"model": "cogview-4-250304", "prompt": PROMPT, "size": "1568x1056"})
    );

    // The global settings for every other key.
    glm.generate_image(PROMPT, &options("flux", 512, 512), None)
        .await
        .expect("an image");
    assert_eq!(
        vendor.last().json(),
        json!({"model": "cogview-3-flash", "prompt": PROMPT, "size": "1024x1024"})
    );

    // Without size settings CogView-4 takes sides of 512 to 2048 and at most 2^21 pixels.
    let rt = runtime(
        &fixture,
        &[
            ("base_url", format!("{}/api/paas/v4", vendor.base)),
            ("api_key", KEY.to_string()),
            ("model_glm-image", "cogview-4-250304".to_string()),
        ],
    )
    .await;
    let got = provider(&rt)
        .generate_image(PROMPT, &options("glm-image", 2048, 2048), None)
        .await
        .expect("an image");
    assert_eq!(vendor.last().json()["size"], "1440x1440");
    assert_eq!((got.width, got.height), (1440, 1440));
}

#[tokio::test]
async fn result_urls_off_the_allow_list_or_missing_fail() {
    let elsewhere = FakeVendor::start(|_| image(PNG, "image/png")).await;
    let other_origin = elsewhere.base.clone();
    let vendor = FakeVendor::start(move |r: &Recorded| {
        match (r.method.as_str(), r.json()["prompt"].as_str()) {
            ("GET", _) => Reply::text(404, "Not Found"),
            (_, Some("elsewhere")) => {
                Reply::json(200, url_answer(&format!("{other_origin}/a.png")))
            }
            (_, Some("gone")) => Reply::json(200, url_answer(&format!("{}/a.png", origin(r)))),
            (_, Some("no image")) => Reply::json(200, json!({"created": 1, "data": [{"url": ""}]})),
            _ => Reply::json(200, json!({"created": 1, "data": []})),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let glm = provider(&rt);
    let o = options("glm-image", 512, 512);
    let fail = async |prompt: &str| {
        provider_error(glm.generate_image(prompt, &o, None).await.unwrap_err())
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
        debug(fail("no image").await),
        debug(ProviderError::BadResponse("glm empty image".into()))
    );
    assert_eq!(
        debug(fail("no data").await),
        debug(ProviderError::BadResponse("glm empty data".into()))
    );
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
                error_body("1000", &format!("身份验证失败 (token {echoed})")),
            ),
            Some("429") => Reply::json(
                429,
                error_body("1302", "您当前使用该API的并发数过高，请降低并发"),
            )
            .header("retry-after", "7"),
            Some("400") => Reply::json(400, error_body("1214", "size 参数非法")),
            Some("500") => Reply::text(500, &format!("服务 内部\n错误 {}", "细节 ".repeat(200))),
            _ => Reply::text(200, "<html>not json</html>"),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = runtime(&fixture, &configured(&vendor)).await;
    let glm = provider(&rt);
    let o = options("glm-image", 512, 512);
    let fail = async |prompt: &str| {
        provider_error(glm.generate_image(prompt, &o, None).await.unwrap_err())
    };

    match fail("401").await {
        ProviderError::Unauthorized(e) => {
            assert_eq!(e.status, 401);
            assert!(
                e.message
                    .starts_with("glm request failed: status=401 body="),
                "{}",
                e.message
            );
            assert!(e.message.contains("身份验证失败"), "{}", e.message);
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
                    .starts_with("glm request failed: status=429 body="),
                "{}",
                r.message
            );
        }
        other => panic!("429: {other:?}"),
    }
    match fail("400").await {
        ProviderError::BadRequest(e) => {
            assert_eq!(e.status, 400);
            assert!(e.message.contains("1214"), "{}", e.message);
        }
        other => panic!("400: {other:?}"),
    }
    match fail("500").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 500);
            // Whitespace collapsed; cut to 240 bytes at a character boundary.
            assert!(
                e.message
                    .starts_with("glm request failed: status=500 body=服务 内部 错误 细节 细节"),
                "{}",
                e.message
            );
            assert!(e.message.ends_with("..."), "{}", e.message);
            assert!(
                e.message.len() <= "glm request failed: status=500 body=".len() + 240 + 3,
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
        FakeVendor::start(|_| Reply::json(200, url_answer("http://127.0.0.1:9/a.png"))).await;
    let fixture = RuntimeFixture::new(&[ID]);
    let o = options("glm-image", 512, 512);

    let rt = runtime(
        &fixture,
        &[("base_url", format!("{}/api/paas/v4", vendor.base))],
    )
    .await;
    match provider_error(
        provider(&rt)
            .generate_image(PROMPT, &o, None)
            .await
            .unwrap_err(),
    ) {
        ProviderError::NotConfigured(m) => assert!(m.contains("glm api_key missing"), "{m}"),
        other => panic!("expected not-configured, got {other:?}"),
    }

    for endpoint in ["", "open.bigmodel.cn/api/paas/v4"] {
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
            debug(ProviderError::NotConfigured("glm endpoint required".into())),
            "{endpoint:?}"
        );
    }
    assert!(vendor.requests().is_empty());
}
