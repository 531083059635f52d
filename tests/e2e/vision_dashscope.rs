//! The `vision-dashscope` plugin (real component, real runtime) against a loopback fake of
//! DashScope's multimodal generation API: the request it sends, the result URL the host
//! downloads under the plugin's allow-list (and refuses off it), errors inside 2xx answers,
//! typed vendor errors without the key, and a missing key or endpoint.

use std::sync::{Arc, OnceLock};

use sceneintruder_runtime::CallError;
use sceneintruder_runtime::types::{HttpError, ProviderError};
use sceneintruder_runtime::vision::{ImageOptions, ReferenceImage};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const ID: &str = "vision-dashscope";
const KEY: &str = "sk-dashscope-test-4242";
const GENERATION: &str = "/api/v1/services/aigc/multimodal-generation/generation";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-a-png-on-the-result-store";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0-a-jpeg-on-the-result-store";

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

/// DashScope's answer pointing at `url`, with the drawn size in `usage` when given.
fn answer(url: &str, size: Option<u32>) -> Value {
    let mut body = json!({
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
            "content": [{"image": url}]}}]},
        "request_id": "7f2c-test"
    });
    if let Some(side) = size {
        body["usage"] = json!({"width": side, "height": side, "image_count": 1});
    }
    body
}

fn image(bytes: &[u8], content_type: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".into(), content_type.into())],
        chunks: vec![bytes.to_vec()],
        chunk_delay: std::time::Duration::ZERO,
    }
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

/// A fake that knows its own base URL (to answer with result URLs on its origin).
async fn fake(respond: impl Fn(&Recorded, &str) -> Reply + Send + Sync + 'static) -> FakeVendor {
    let base: Arc<OnceLock<String>> = Arc::default();
    let known = base.clone();
    let vendor = FakeVendor::start(move |r: &Recorded| {
        respond(r, known.get().map(String::as_str).unwrap_or_default())
    })
    .await;
    let _ = base.set(vendor.base.clone());
    vendor
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
    let vendor = fake(
        |r: &Recorded, base: &str| match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/results/frame.png") => image(PNG, "image/png"),
            ("GET", "/results/frame.jpg") => image(JPEG, "image/jpeg"),
            _ if r.json()["model"] == "qwen-image-2.0" => {
                Reply::json(200, answer(&format!("{base}/results/frame.jpg"), None))
            }
            _ => Reply::json(
                200,
                answer(
                    &format!("{base}/results/frame.png?Expires=1700000000&Signature=a%2Bb"),
                    Some(1328),
                ),
            ),
        },
    )
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = fixture
        .load_configured(
            ID,
            &[
                ("base_url", format!("{}/api/v1", vendor.base)),
                ("api_key", KEY.to_string()),
            ],
        )
        .await;
    let dashscope = rt.vision(ID).expect("loaded");

    let mut o = options("qwen-image-max");
    o.negative_prompt = Some(" blurry, watermark ".into());
    // Not DashScope options: ignored.
    o.seed = Some(4242);
    o.steps = Some(28);
    o.cfg_scale = Some(6.5);
    o.reference_image = Some(ReferenceImage {
        data: b"ref".to_vec(),
        content_type: "image/png".into(),
    });
    let got = dashscope
        .generate_image("noir style, a detective", &o, None)
        .await
        .expect("image");
    assert_eq!(got.bytes, PNG, "the host downloaded the result URL");
    assert_eq!(got.content_type, "image/png");
    assert_eq!(
        (got.width, got.height),
        (1328, 1328),
        "the size DashScope drew"
    );

    let seen = vendor.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_generation(&seen[0], GENERATION);
    assert_eq!(
        seen[0].json(),
        json!({
            "model": "qwen-image-max",
            "input": {"messages": [{"role": "user", "content": [{"text": "noir style, a detective"}]}]},
            "parameters": {"result_format": "message", "stream": false, "watermark": false,
                           "prompt_extend": false, "size": "512*512",
                           "negative_prompt": "blurry, watermark"}
        })
    );
    assert_eq!(seen[1].method, "GET");
    assert_eq!(seen[1].path, "/results/frame.png");
    assert_eq!(
        seen[1].query.as_deref(),
        Some("Expires=1700000000&Signature=a%2Bb")
    );
    assert_eq!(
        seen[1].header("authorization"),
        None,
        "downloads carry no key"
    );

    // No model key: the default; a zero size is 1024; prompt extension on request; no usage
    // in the answer: the requested size.
    let mut o = options("");
    o.width = 0;
    o.height = 0;
    o.prompt_extend = Some(true);
    o.negative_prompt = Some("  ".into());
    let got = dashscope
        .generate_image("a cat", &o, None)
        .await
        .expect("image");
    assert_eq!(got.bytes, JPEG);
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!((got.width, got.height), (1024, 1024));
    let seen = vendor.requests();
    assert_eq!(
        seen[2].json()["parameters"],
        json!({"result_format": "message", "stream": false, "watermark": false,
               "prompt_extend": true, "size": "1024*1024"})
    );
    assert_eq!(seen[2].json()["model"], "qwen-image-2.0");
    assert_eq!(seen[3].path, "/results/frame.jpg");
}

#[tokio::test]
async fn generation_path_setting() {
    let vendor = fake(|r: &Recorded, base: &str| match r.method.as_str() {
        "GET" => image(PNG, "image/png"),
        _ => Reply::json(200, answer(&format!("{base}/r.png"), None)),
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = fixture
        .load_configured(
            ID,
            &[
                ("base_url", format!("{}/compatible/api/v1/", vendor.base)),
                ("api_key", KEY.to_string()),
                ("generation_path", "services/images/generate".to_string()),
            ],
        )
        .await;
    rt.vision(ID)
        .expect("loaded")
        .generate_image("a cat", &options("qwen-image-max"), None)
        .await
        .expect("image");
    assert_generation(
        &vendor.requests()[0],
        "/compatible/api/v1/services/images/generate",
    );
}

#[tokio::test]
async fn result_urls_off_the_allow_list_are_refused() {
    let elsewhere = FakeVendor::start(|_| image(PNG, "image/png")).await;
    let elsewhere_url = format!("{}/stolen.png", elsewhere.base);
    let vendor = fake(move |r: &Recorded, base: &str| {
        match r.json()["input"]["messages"][0]["content"][0]["text"].as_str() {
            Some("elsewhere") => Reply::json(200, answer(&elsewhere_url, None)),
            Some("gone") => Reply::json(200, answer(&format!("{base}/gone.png"), None)),
            _ => Reply::text(404, "no such object"),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = fixture
        .load_configured(
            ID,
            &[
                ("base_url", format!("{}/api/v1", vendor.base)),
                ("api_key", KEY.to_string()),
            ],
        )
        .await;
    let dashscope = rt.vision(ID).expect("loaded");

    let err = dashscope
        .generate_image("elsewhere", &options("qwen-image-max"), None)
        .await
        .expect_err("a result on an origin the plugin was not granted");
    match provider_error(err) {
        ProviderError::Http(HttpError::NotAllowed(m)) => {
            assert!(m.contains("not granted"), "{m}")
        }
        other => panic!("expected not-allowed, got {other:?}"),
    }
    assert!(elsewhere.requests().is_empty(), "the host never reached it");

    // A result URL that answers 404: the download fails with its status.
    let err = dashscope
        .generate_image("gone", &options("qwen-image-max"), None)
        .await
        .expect_err("a vanished result");
    match provider_error(err) {
        ProviderError::Upstream(e) => assert_eq!(e.status, 404),
        other => panic!("expected upstream 404, got {other:?}"),
    }
}

#[tokio::test]
async fn vendor_errors_are_typed_and_keep_the_key_out() {
    let long = format!(
        "{{\"code\": \"InternalError\", \"message\": \"{}\"}}",
        "y".repeat(500)
    );
    let vendor = FakeVendor::start(move |r: &Recorded| {
        let echo = r.header("authorization").unwrap_or_default().to_string();
        match r.json()["input"]["messages"][0]["content"][0]["text"].as_str() {
            // DashScope's own shape, echoing the credential the way a careless proxy would.
            Some("401") => Reply::json(
                401,
                json!({"request_id": "r1", "code": "InvalidApiKey",
                       "message": format!("Invalid API-key provided: {echo}")}),
            ),
            Some("429") => Reply::json(
                429,
                json!({"request_id": "r2", "code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}),
            )
            .header("retry-after", "2"),
            Some("400-in-200") => Reply::json(
                200,
                json!({"status_code": 400, "request_id": "r3", "code": "InvalidParameter",
                       "message": "The size is not match the allowed size ranges."}),
            ),
            Some("no-image") => Reply::json(
                200,
                json!({"output": {"choices": [{"message": {"content": [{"text": "sorry"}]}}]}}),
            ),
            _ => Reply::text(500, &long),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&[ID]);
    let rt = fixture
        .load_configured(
            ID,
            &[
                ("base_url", format!("{}/api/v1", vendor.base)),
                ("api_key", KEY.to_string()),
            ],
        )
        .await;
    let dashscope = rt.vision(ID).expect("loaded");
    let call = async |prompt: &str| {
        provider_error(
            dashscope
                .generate_image(prompt, &options("qwen-image-max"), None)
                .await
                .expect_err(prompt),
        )
    };

    match call("401").await {
        ProviderError::Unauthorized(e) => {
            assert_eq!(e.status, 401);
            assert!(
                e.message
                    .starts_with("dashscope request failed: status=401 body={"),
                "{}",
                e.message
            );
            assert!(e.message.contains("InvalidApiKey"), "{}", e.message);
            assert!(!e.message.contains(KEY), "{}", e.message);
            assert!(e.message.contains("[redacted]"), "the echo: {}", e.message);
        }
        other => panic!("401: {other:?}"),
    }
    match call("429").await {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(2000));
            assert!(
                r.message
                    .starts_with("dashscope request failed: status=429"),
                "{}",
                r.message
            );
        }
        other => panic!("429: {other:?}"),
    }
    match call("500").await {
        ProviderError::Upstream(e) => {
            assert_eq!(e.status, 500);
            assert!(
                e.message
                    .starts_with("dashscope request failed: status=500 body={\"code\""),
                "{}",
                e.message
            );
            assert!(e.message.ends_with("..."), "{}", e.message);
            assert!(e.message.len() <= 300, "{}", e.message);
        }
        other => panic!("500: {other:?}"),
    }
    match call("400-in-200").await {
        ProviderError::BadRequest(e) => {
            assert_eq!(e.status, 400);
            assert_eq!(
                e.message,
                "dashscope error: InvalidParameter: The size is not match the allowed size ranges."
            );
        }
        other => panic!("status_code 400: {other:?}"),
    }
    assert_error(
        call("no-image").await,
        ProviderError::BadResponse("dashscope empty image url".into()),
    );
    for seen in vendor.requests() {
        assert_generation(&seen, GENERATION);
    }
}

#[tokio::test]
async fn a_missing_key_or_endpoint_is_not_configured() {
    let vendor = FakeVendor::start(|_| Reply::json(500, json!({}))).await;
    let fixture = RuntimeFixture::new(&[ID]);

    let rt = fixture
        .load_configured(ID, &[("base_url", format!("{}/api/v1", vendor.base))])
        .await;
    let dashscope = rt.vision(ID).expect("loaded");
    assert_eq!(dashscope.missing_required(), vec!["api_key".to_string()]);
    match provider_error(
        dashscope
            .generate_image("a cat", &options("qwen-image-max"), None)
            .await
            .expect_err("no key"),
    ) {
        ProviderError::NotConfigured(m) => {
            assert!(m.starts_with("dashscope api_key missing"), "{m}")
        }
        other => panic!("{other:?}"),
    }

    let rt = fixture
        .load_configured(
            ID,
            &[
                ("base_url", "ftp://example".to_string()),
                ("api_key", KEY.to_string()),
            ],
        )
        .await;
    assert_error(
        provider_error(
            rt.vision(ID)
                .expect("loaded")
                .generate_image("a cat", &options("qwen-image-max"), None)
                .await
                .expect_err("no endpoint"),
        ),
        ProviderError::NotConfigured("dashscope endpoint required".into()),
    );
    assert!(vendor.requests().is_empty());

    let info = rt.vision(ID).expect("loaded").info().clone();
    assert_eq!(info.id, ID);
    assert_eq!(info.default_model, "qwen-image-2.0");
    assert!(info.models.iter().any(|m| m.id == "qwen-image-max"));
    assert!(
        info.models
            .iter()
            .all(|m| !m.vision_input && !m.streaming && !m.json_mode)
    );
}
