//! The `openai` plugin (real component, real runtime) against a loopback fake of the OpenAI
//! Chat Completions API: request shape, secrets, typed vendor errors, JSON mode, streaming;
//! and the connection probe through the real binary.

use sceneintruder_runtime::llm::{
    CompletionRequest, JsonSchema, Message, Reasoning, ResponseFormat, Role, StreamEvent,
};
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::{CallError, LlmProvider};
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use sceneintruder_tests::{RuntimeFixture, ServerBuilder, backends};
use serde_json::{Value, json};

const KEY: &str = "sk-test-4242";

fn success_body() -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_750_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hi there"},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
}

fn error_body(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

fn request(model: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.into(),
        system_prompt: Some("You are terse.".into()),
        messages: vec![
            Message {
                role: Role::User,
                content: "Hello".into(),
            },
            Message {
                role: Role::Assistant,
                content: "Hi.".into(),
            },
            Message {
                role: Role::User,
                content: "Again".into(),
            },
        ],
        temperature: Some(0.7),
        max_tokens: Some(64),
        top_p: None,
        stop: vec![],
        response_format: ResponseFormat::Text,
        reasoning: Reasoning::Default,
    }
}

async fn provider(fixture: &RuntimeFixture, vendor: &FakeVendor) -> LlmProvider {
    fixture
        .load_configured(
            "openai",
            &[
                ("base_url", format!("{}/v1", vendor.base)),
                ("api_key", KEY.to_string()),
            ],
        )
        .await
        .llm("openai")
        .expect("openai loaded")
}

fn assert_chat_request(seen: &Recorded) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
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
async fn completion_request_and_response() {
    let vendor = FakeVendor::start(|_| Reply::json(200, success_body())).await;
    let fixture = RuntimeFixture::new(&["openai"]);
    let openai = provider(&fixture, &vendor).await;

    let answer = openai
        .complete(&request("gpt-4o-mini"), None)
        .await
        .expect("completion");
    assert_eq!(answer.text, "Hi there");
    assert_eq!(answer.finish_reason, "stop");
    let usage = answer.usage.expect("usage");
    assert_eq!(
        (usage.prompt_tokens, usage.output_tokens, usage.total_tokens),
        (12, 3, 15)
    );

    let seen = vendor.last();
    assert_chat_request(&seen);
    let body = seen.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Again"},
        ])
    );
    assert_eq!(body["temperature"], json!(0.7));
    assert_eq!(body["max_tokens"], 64);
    assert!(body.get("response_format").is_none(), "{body}");
    assert!(body.get("stream").is_none_or(|s| s == false), "{body}");
}

#[tokio::test]
async fn json_mode_schema_and_reasoning_models() {
    let vendor = FakeVendor::start(|_| Reply::json(200, success_body())).await;
    let fixture = RuntimeFixture::new(&["openai"]);
    let openai = provider(&fixture, &vendor).await;

    let mut req = request("gpt-4.1");
    req.response_format = ResponseFormat::JsonObject;
    openai.complete(&req, None).await.expect("json mode");
    assert_eq!(
        vendor.last().json()["response_format"],
        json!({"type": "json_object"})
    );

    req.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "scene".into(),
        schema: r#"{"type":"object","properties":{"title":{"type":"string"}}}"#.into(),
        strict: true,
    });
    openai.complete(&req, None).await.expect("json schema");
    let format = &vendor.last().json()["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "scene");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(format["json_schema"]["schema"]["type"], "object");

    // Reasoning models take max_completion_tokens and a typed reasoning switch.
    let mut req = request("o3-mini");
    req.reasoning = Reasoning::Off;
    openai.complete(&req, None).await.expect("reasoning model");
    let body = vendor.last().json();
    assert_eq!(body["max_completion_tokens"], 64, "{body}");
    assert!(body.get("max_tokens").is_none(), "{body}");
    assert_eq!(body["reasoning_effort"], "low", "{body}");
}

#[tokio::test]
async fn vendor_errors_become_typed_errors() {
    let vendor = FakeVendor::start(|r: &Recorded| match r.json()["model"].as_str() {
        Some("m-401") => Reply::json(
            401,
            error_body(
                "Incorrect API key provided: sk-te****4242.",
                "invalid_request_error",
            ),
        ),
        Some("m-429") => Reply::json(
            429,
            error_body("Rate limit reached for requests", "requests"),
        )
        .header("retry-after", "7"),
        Some("m-500") => Reply::json(
            500,
            error_body(
                "The server had an error while processing your request.",
                "server_error",
            ),
        ),
        Some("m-400") => Reply::json(
            400,
            error_body("Invalid value for 'temperature'.", "invalid_request_error"),
        ),
        Some("m-empty") => Reply::json(200, json!({"choices": [], "model": "x"})),
        _ => Reply::text(200, "not json"),
    })
    .await;
    let fixture = RuntimeFixture::new(&["openai"]);
    let openai = provider(&fixture, &vendor).await;

    let err = |e: CallError| match e {
        CallError::Provider { plugin, error } => {
            assert_eq!(plugin, "openai");
            error
        }
        other => panic!("expected a provider error, got {other:?}"),
    };

    match err(openai.complete(&request("m-401"), None).await.unwrap_err()) {
        ProviderError::Unauthorized(u) => {
            assert_eq!(u.status, 401);
            assert!(u.message.contains("Incorrect API key"), "{}", u.message);
        }
        other => panic!("401: {other:?}"),
    }
    match err(openai.complete(&request("m-429"), None).await.unwrap_err()) {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(7000));
            assert!(r.message.contains("Rate limit"), "{}", r.message);
        }
        other => panic!("429: {other:?}"),
    }
    match err(openai.complete(&request("m-500"), None).await.unwrap_err()) {
        ProviderError::Upstream(u) => assert_eq!(u.status, 500),
        other => panic!("500: {other:?}"),
    }
    match err(openai.complete(&request("m-400"), None).await.unwrap_err()) {
        ProviderError::BadRequest(u) => {
            assert_eq!(u.status, 400);
            assert!(u.message.contains("temperature"));
        }
        other => panic!("400: {other:?}"),
    }
    assert!(matches!(
        err(openai
            .complete(&request("m-empty"), None)
            .await
            .unwrap_err()),
        ProviderError::BadResponse(_)
    ));
    assert!(matches!(
        err(openai
            .complete(&request("m-garbage"), None)
            .await
            .unwrap_err()),
        ProviderError::BadResponse(_)
    ));
    for seen in vendor.requests() {
        assert_chat_request(&seen);
    }
}

#[tokio::test]
async fn streamed_completion_and_a_cut_stream() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let chunk = |content: &str| {
            format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
                       "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
            )
        };
        let finish = format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        );
        let usage = format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [],
                   "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
        );
        let (a, b) = (chunk("Once"), chunk(" upon"));
        if r.json()["model"] == "cut" {
            // The connection ends mid-answer: no finish reason, no [DONE].
            Reply::sse(&[&a, &b[..b.len() / 2]])
        } else {
            // Split an event across chunks to exercise the parser.
            Reply::sse(&[&a[..10], &a[10..], &b, &finish, &usage, "data: [DONE]\n\n"])
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&["openai"]);
    let openai = provider(&fixture, &vendor).await;

    let mut stream = openai
        .stream(&request("gpt-4o"), None)
        .await
        .expect("stream starts");
    let mut text = String::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.expect("event") {
            StreamEvent::Delta(d) => text.push_str(&d),
            StreamEvent::Done(r) => done = Some(r),
        }
    }
    assert_eq!(text, "Once upon");
    let done = done.expect("final event");
    assert_eq!(done.finish_reason, "stop");
    assert_eq!(done.usage.expect("usage").total_tokens, 11);
    let seen = vendor.last();
    assert_chat_request(&seen);
    assert_eq!(seen.json()["stream"], true);
    assert_eq!(seen.header("accept"), Some("text/event-stream"));

    let mut stream = openai
        .stream(&request("cut"), None)
        .await
        .expect("stream starts");
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    match last.expect("some event") {
        Err(CallError::Provider {
            error: ProviderError::StreamInterrupted(_),
            ..
        }) => {}
        other => panic!("a cut stream must end in stream-interrupted, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_probe_through_the_server() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        if r.header("authorization") == Some(&format!("Bearer {KEY}")) {
            Reply::json(200, success_body())
        } else {
            Reply::json(
                401,
                error_body("Incorrect API key provided.", "invalid_request_error"),
            )
        }
    })
    .await;
    for backend in backends() {
        let server = ServerBuilder::new(backend).plugin("openai").start().await;

        // Temporary configuration: nothing saved, the plugin called once.
        let before = vendor.requests().len();
        let (status, body) = server
            .post(
                "/api/settings/test-connection",
                &json!({"provider": "openai", "llm_config": {
                    "api_key": KEY, "base_url": format!("{}/v1", vendor.base), "default_model": "gpt-4o-mini"
                }}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "连接测试成功");
        assert_eq!(body["data"]["provider"], "openai");
        assert_eq!(body["data"]["status"], "connected");
        assert_eq!(body["data"]["test"], "passed");
        assert_eq!(body["data"]["mode"], "temporary_config");
        assert_eq!(vendor.requests().len(), before + 1);
        let seen = vendor.last();
        assert_chat_request(&seen);
        let sent = seen.json();
        assert_eq!(sent["model"], "gpt-4o-mini");
        assert_eq!(sent["max_tokens"], 5);
        assert_eq!(sent["temperature"], json!(0.1));
        assert_eq!(sent["messages"][0]["role"], "system");
        assert_eq!(
            sent["messages"][1],
            json!({"role": "user", "content": "Hello"})
        );

        // A wrong key: the vendor's 401 surfaces as CONNECTION_TEST_FAILED.
        let (status, body) = server
            .post(
                "/api/settings/test-connection",
                &json!({"provider": "openai", "llm_config": {
                    "api_key": "sk-wrong", "base_url": format!("{}/v1", vendor.base)
                }}),
            )
            .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "CONNECTION_TEST_FAILED");
        assert!(!body.to_string().contains("sk-wrong"), "{body}");

        // Unknown provider and missing key: INVALID_CONFIG, and the vendor is not called.
        let before = vendor.requests().len();
        let (status, body) = server
            .post(
                "/api/settings/test-connection",
                &json!({"provider": "nope", "llm_config": {"api_key": "k"}}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_CONFIG");
        assert!(
            body["error"]["details"]
                .as_str()
                .is_some_and(|d| d.contains("nope"))
        );
        let (status, body) = server
            .post(
                "/api/settings/test-connection",
                &json!({"provider": "openai", "llm_config": {"base_url": format!("{}/v1", vendor.base)}}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_CONFIG");
        assert_eq!(vendor.requests().len(), before);

        // Saved mode without a configured provider.
        let (status, body) = server
            .post("/api/settings/test-connection", &json!({}))
            .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "LLM_NOT_CONFIGURED");
    }
}

#[tokio::test]
async fn connection_probe_with_saved_settings() {
    let vendor = FakeVendor::start(|_| Reply::json(200, success_body())).await;
    let server = ServerBuilder::new(sceneintruder_tests::Backend::Sqlite)
        .plugin("openai")
        .config(&format!(
            "[llm]\nprovider = \"openai\"\n[plugins.openai.settings]\nbase_url = \"{}/v1\"\ndefault_model = \"gpt-4.1\"",
            vendor.base
        ))
        .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", KEY)
        .start()
        .await;
    // No body at all is "saved config" mode (the reference is lenient here).
    let response = server
        .http
        .post(server.url("/api/settings/test-connection"))
        .send()
        .await
        .expect("post");
    let (status, body) = sceneintruder_tests::decode(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["mode"], "saved_config");
    assert_eq!(body["data"]["model"], "gpt-4.1");
    let seen = vendor.last();
    assert_chat_request(&seen);
    assert_eq!(seen.json()["model"], "gpt-4.1");

    let (_, health) = server.get("/api/config/health").await;
    assert_eq!(
        health["data"]["checks"]["llm_provider"]["status"],
        "healthy"
    );
    assert_eq!(health["data"]["checks"]["llm_api_key"]["status"], "healthy");
}
