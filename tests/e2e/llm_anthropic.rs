//! The `anthropic` plugin (real component, real runtime) against a loopback fake of Anthropic's
//! Messages API speaking its documented wire format: request shape and headers, system prompt
//! placement, `max_tokens`, JSON mode by instruction, the thinking switch, streaming events,
//! typed vendor errors and the model list.

use sceneintruder_runtime::llm::{
    CompletionRequest, JsonSchema, Message, Reasoning, ResponseFormat, Role, StreamEvent,
};
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::{CallError, LlmProvider};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-test-4242";

fn success_body(model: &str) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "thinking", "thinking": "The user wants brevity.", "signature": "EqQBCgIYAhIM"},
            {"type": "text", "text": "Hi "},
            {"type": "text", "text": "there"}
        ],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 3
        }
    })
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
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
                role: Role::User,
                content: "Anyone there?".into(),
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
        max_tokens: None,
        top_p: Some(0.9),
        stop: vec!["THE END".into()],
        response_format: ResponseFormat::Text,
        reasoning: Reasoning::Default,
    }
}

async fn load(fixture: &RuntimeFixture, values: &[(&str, String)]) -> LlmProvider {
    fixture
        .load_configured("anthropic", values)
        .await
        .llm("anthropic")
        .expect("anthropic loaded")
}

async fn provider(fixture: &RuntimeFixture, vendor: &FakeVendor) -> LlmProvider {
    load(
        fixture,
        &[
            ("base_url", format!("{}/v1", vendor.base)),
            ("api_key", KEY.to_string()),
        ],
    )
    .await
}

fn assert_messages_request(seen: &Recorded, version: &str) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.query, None);
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some(version));
    assert_eq!(seen.header("authorization"), None);
    assert!(
        seen.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{seen:?}"
    );
}

fn provider_error(e: CallError) -> ProviderError {
    match e {
        CallError::Provider { plugin, error } => {
            assert_eq!(plugin, "anthropic");
            error
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[tokio::test]
async fn completion_request_and_response() {
    let vendor =
        FakeVendor::start(|_| Reply::json(200, success_body("claude-haiku-4-5-20251001"))).await;
    let fixture = RuntimeFixture::new(&["anthropic"]);
    let claude = provider(&fixture, &vendor).await;

    // The catalog uses the vendor's real, hyphenated ids.
    let info = claude.info();
    assert_eq!(info.id, "anthropic");
    assert_eq!(info.default_model, "claude-haiku-4-5");
    let ids: Vec<&str> = info.models.iter().map(|m| m.id.as_str()).collect();
    for id in ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    assert!(!ids.iter().any(|id| id.contains('.')), "{ids:?}");
    let opus = info
        .models
        .iter()
        .find(|m| m.id == "claude-opus-4-1")
        .expect("opus");
    assert_eq!(opus.max_output_tokens, Some(32_000));
    assert!(opus.reasoning && opus.vision_input && opus.json_mode && !opus.json_schema);

    let answer = claude
        .complete(&request("claude-haiku-4-5"), None)
        .await
        .expect("completion");
    assert_eq!(answer.text, "Hi there");
    assert_eq!(answer.finish_reason, "end_turn");
    assert_eq!(answer.model, "claude-haiku-4-5-20251001");
    let usage = answer.usage.expect("usage");
    assert_eq!(
        (usage.prompt_tokens, usage.output_tokens, usage.total_tokens),
        (12, 3, 15)
    );

    let seen = vendor.last();
    assert_messages_request(&seen, "2023-06-01");
    let body = seen.json();
    assert_eq!(
        body,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 4096,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": "Hello\n\nAnyone there?"},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "Again"},
            ],
            "temperature": 0.7,
            "stop_sequences": ["THE END"],
        })
    );
}

#[tokio::test]
async fn max_tokens_api_version_and_a_bare_base_url() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let model = r.json()["model"].as_str().unwrap_or_default().to_string();
        Reply::json(200, success_body(&model))
    })
    .await;
    let fixture = RuntimeFixture::new(&["anthropic"]);
    // A base URL without a path (as the reference configured it) gets /v1.
    let claude = load(
        &fixture,
        &[
            ("base_url", vendor.base.clone()),
            ("api_key", KEY.to_string()),
            ("api_version", "2024-01-01".to_string()),
        ],
    )
    .await;

    let mut req = request("claude-opus-4-1");
    req.max_tokens = Some(100_000);
    claude.complete(&req, None).await.expect("completion");
    let seen = vendor.last();
    assert_messages_request(&seen, "2024-01-01");
    assert_eq!(
        seen.json()["max_tokens"],
        32_000,
        "clamped to the model's cap"
    );

    req.max_tokens = Some(0);
    claude.complete(&req, None).await.expect("completion");
    assert_eq!(vendor.last().json()["max_tokens"], 4096);

    req.max_tokens = Some(5);
    req.model = "claude-3-5-haiku-latest".into();
    claude.complete(&req, None).await.expect("completion");
    assert_eq!(vendor.last().json()["max_tokens"], 5);
}

#[tokio::test]
async fn json_mode_by_instruction_and_the_thinking_switch() {
    let vendor = FakeVendor::start(|_| Reply::json(200, success_body("claude-sonnet-4-5"))).await;
    let fixture = RuntimeFixture::new(&["anthropic"]);
    let claude = provider(&fixture, &vendor).await;

    let mut req = request("claude-sonnet-4-5");
    req.response_format = ResponseFormat::JsonObject;
    claude.complete(&req, None).await.expect("json mode");
    let body = vendor.last().json();
    let system = body["system"].as_str().expect("system prompt");
    assert!(system.starts_with("You are terse.\n\n"), "{system}");
    assert!(system.contains("JSON object"), "{system}");
    for key in ["response_format", "output_format", "extra_params"] {
        assert!(body.get(key).is_none(), "{key} must not be sent: {body}");
    }
    assert!(
        body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .all(|m| m["role"] != "system"),
        "{body}"
    );

    req.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "scene".into(),
        schema:
            r#"{"type":"object","properties":{"title":{"type":"string"}},"required":["title"]}"#
                .into(),
        strict: true,
    });
    claude.complete(&req, None).await.expect("json schema");
    let body = vendor.last().json();
    let system = body["system"].as_str().expect("system prompt");
    assert!(
        system.contains("JSON schema") && system.contains(r#""required":["title"]"#),
        "{system}"
    );
    assert!(body.get("response_format").is_none(), "{body}");

    // A schema that is not a JSON object is refused before any HTTP.
    let before = vendor.requests().len();
    req.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "bad".into(),
        schema: "[1]".into(),
        strict: true,
    });
    let err = provider_error(claude.complete(&req, None).await.unwrap_err());
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
    assert_eq!(vendor.requests().len(), before);

    // Reasoning on, on a model with extended thinking: a budget, and no sampling settings.
    let mut req = request("claude-sonnet-4-5");
    req.max_tokens = Some(2000);
    req.reasoning = Reasoning::On;
    claude.complete(&req, None).await.expect("thinking");
    let body = vendor.last().json();
    assert_eq!(body["thinking"]["type"], "enabled", "{body}");
    let budget = body["thinking"]["budget_tokens"].as_u64().expect("budget");
    let max_tokens = body["max_tokens"].as_u64().expect("max_tokens");
    assert!(budget >= 1024 && budget < max_tokens, "{body}");
    assert!(max_tokens - budget >= 2000, "room for the answer: {body}");
    assert!(
        body.get("temperature").is_none() && body.get("top_p").is_none(),
        "{body}"
    );

    // Off and default: no thinking field at all.
    for reasoning in [Reasoning::Off, Reasoning::Default] {
        req.reasoning = reasoning;
        claude.complete(&req, None).await.expect("no thinking");
        let body = vendor.last().json();
        assert!(body.get("thinking").is_none(), "{body}");
        assert_eq!(body["max_tokens"], 2000);
        assert_eq!(body["temperature"], json!(0.7));
    }

    // On, on a model without extended thinking: nothing the vendor would reject.
    req.model = "claude-3-5-haiku-20241022".into();
    req.reasoning = Reasoning::On;
    claude.complete(&req, None).await.expect("old model");
    let body = vendor.last().json();
    assert!(body.get("thinking").is_none(), "{body}");
    assert_eq!(body["temperature"], json!(0.7));
}

#[tokio::test]
async fn vendor_errors_become_typed_errors() {
    let vendor = FakeVendor::start(|r: &Recorded| match r.json()["model"].as_str() {
        Some("m-400") => Reply::json(
            400,
            error_body("invalid_request_error", "max_tokens: Field required"),
        ),
        Some("m-401") => Reply::json(401, error_body("authentication_error", "invalid x-api-key")),
        Some("m-403") => Reply::json(
            403,
            error_body(
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
        ),
        Some("m-429") => Reply::json(
            429,
            error_body(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        )
        .header("retry-after", "9"),
        Some("m-500") => Reply::json(
            500,
            error_body(
                "api_error",
                "An unexpected error has occurred internal to Anthropic's systems.",
            ),
        ),
        Some("m-529") => Reply::json(529, error_body("overloaded_error", "Overloaded")),
        Some("m-wrong-shape") => Reply::json(200, json!({"id": "msg", "type": "message"})),
        _ => Reply::text(200, "<html>not json</html>"),
    })
    .await;
    let fixture = RuntimeFixture::new(&["anthropic"]);
    let claude = provider(&fixture, &vendor).await;
    let fail = async |model: &str| {
        provider_error(
            claude
                .complete(&request(model), None)
                .await
                .expect_err("must fail"),
        )
    };

    match fail("m-400").await {
        ProviderError::BadRequest(u) => {
            assert_eq!(u.status, 400);
            assert_eq!(u.message, "max_tokens: Field required");
        }
        other => panic!("400: {other:?}"),
    }
    match fail("m-401").await {
        ProviderError::Unauthorized(u) => {
            assert_eq!(u.status, 401);
            assert_eq!(u.message, "invalid x-api-key");
        }
        other => panic!("401: {other:?}"),
    }
    match fail("m-403").await {
        ProviderError::Unauthorized(u) => assert_eq!(u.status, 403),
        other => panic!("403: {other:?}"),
    }
    match fail("m-429").await {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(9000));
            assert!(r.message.contains("rate limit"), "{}", r.message);
        }
        other => panic!("429: {other:?}"),
    }
    match fail("m-500").await {
        ProviderError::Upstream(u) => {
            assert_eq!(u.status, 500);
            assert!(u.message.contains("unexpected error"), "{}", u.message);
        }
        other => panic!("500: {other:?}"),
    }
    match fail("m-529").await {
        ProviderError::Upstream(u) => {
            assert_eq!((u.status, u.message.as_str()), (529, "Overloaded"))
        }
        other => panic!("529: {other:?}"),
    }
    assert!(matches!(
        fail("m-wrong-shape").await,
        ProviderError::BadResponse(_)
    ));
    assert!(matches!(
        fail("m-garbage").await,
        ProviderError::BadResponse(_)
    ));
    for seen in vendor.requests() {
        assert_messages_request(&seen, "2023-06-01");
    }

    // Without a key nothing is sent.
    let before = vendor.requests().len();
    let keyless = load(&fixture, &[("base_url", format!("{}/v1", vendor.base))]).await;
    match provider_error(
        keyless
            .complete(&request("claude-haiku-4-5"), None)
            .await
            .unwrap_err(),
    ) {
        ProviderError::NotConfigured(m) => assert!(m.contains("api_key"), "{m}"),
        other => panic!("no key: {other:?}"),
    }
    assert_eq!(vendor.requests().len(), before);
}

/// Anthropic's documented event sequence for one streamed message.
fn sse_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[tokio::test]
async fn streamed_completion_a_cut_stream_and_an_error_event() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let start = sse_event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "model": "claude-haiku-4-5-20251001", "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        );
        let block = sse_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        let ping = sse_event("ping", json!({"type": "ping"}));
        let delta = |text: &str| {
            sse_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
            )
        };
        let stop_block = sse_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        );
        let message_delta = sse_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": 15}}),
        );
        let stop = sse_event("message_stop", json!({"type": "message_stop"}));
        let (a, b) = (delta("Once"), delta(" upon a time"));
        match r.json()["model"].as_str() {
            // The connection ends in the middle of the answer.
            Some("cut") => Reply::sse(&[&start, &block, &a, &b[..b.len() / 2]]),
            // Everything but message_stop arrives.
            Some("no-stop") => Reply::sse(&[&start, &block, &a, &b, &stop_block, &message_delta]),
            Some("overloaded") => Reply::sse(&[
                &start,
                &sse_event(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                ),
            ]),
            Some("refused") => Reply::json(
                401,
                error_body("authentication_error", "invalid x-api-key"),
            ),
            // Split an event across chunks to exercise the parser.
            _ => Reply::sse(&[
                &start,
                &block,
                &ping,
                &a[..17],
                &a[17..],
                &b,
                &stop_block,
                &message_delta,
                &stop,
            ]),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&["anthropic"]);
    let claude = provider(&fixture, &vendor).await;

    let mut req = request("claude-haiku-4-5");
    req.reasoning = Reasoning::Off;
    let mut stream = claude.stream(&req, None).await.expect("stream starts");
    let mut text = String::new();
    let mut done = None;
    while let Some(event) = stream.next().await {
        match event.expect("event") {
            StreamEvent::Delta(d) => text.push_str(&d),
            StreamEvent::Done(r) => done = Some(r),
        }
    }
    assert_eq!(text, "Once upon a time");
    let done = done.expect("final event");
    assert_eq!(done.text, "Once upon a time");
    assert_eq!(done.finish_reason, "end_turn");
    assert_eq!(done.model, "claude-haiku-4-5-20251001");
    let usage = done.usage.expect("usage");
    assert_eq!(
        (usage.prompt_tokens, usage.output_tokens, usage.total_tokens),
        (25, 15, 40)
    );
    let seen = vendor.last();
    assert_messages_request(&seen, "2023-06-01");
    assert_eq!(seen.header("accept"), Some("text/event-stream"));
    let body = seen.json();
    assert_eq!(body["stream"], true);
    assert_eq!(body["system"], "You are terse.");
    assert_eq!(body["max_tokens"], 4096);

    // Cut mid-answer, or ended without message_stop: stream-interrupted after the text so far.
    for (model, expected_text) in [("cut", "Once"), ("no-stop", "Once upon a time")] {
        let mut stream = claude
            .stream(&request(model), None)
            .await
            .expect("stream starts");
        let mut text = String::new();
        let mut last = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(StreamEvent::Delta(d)) => text.push_str(&d),
                other => last = Some(other),
            }
        }
        assert_eq!(text, expected_text, "{model}");
        match last.expect("a final event") {
            Err(CallError::Provider {
                error: ProviderError::StreamInterrupted(_),
                ..
            }) => {}
            other => panic!("{model}: a cut stream must end in stream-interrupted, got {other:?}"),
        }
    }

    // An error event before any text is the typed error of its type.
    let mut stream = claude
        .stream(&request("overloaded"), None)
        .await
        .expect("stream starts");
    let mut last = None;
    while let Some(event) = stream.next().await {
        last = Some(event);
    }
    match last.expect("an event") {
        Err(CallError::Provider {
            error: ProviderError::Upstream(u),
            ..
        }) => assert_eq!((u.status, u.message.as_str()), (529, "Overloaded")),
        other => panic!("overloaded: {other:?}"),
    }

    // A refused stream fails to start with the typed error.
    match claude.stream(&request("refused"), None).await {
        Err(CallError::Provider {
            error: ProviderError::Unauthorized(u),
            ..
        }) => assert_eq!(u.status, 401),
        Err(other) => panic!("refused: {other:?}"),
        Ok(_) => panic!("refused: the stream started"),
    }
}

#[tokio::test]
async fn model_list_pages() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let query = r.query.clone().unwrap_or_default();
        if query.contains("after_id=claude-sonnet-4-5-20250929") {
            Reply::json(
                200,
                json!({
                    "data": [{"type": "model", "id": "claude-3-5-haiku-20241022",
                              "display_name": "Claude Haiku 3.5", "created_at": "2024-10-22T00:00:00Z"}],
                    "has_more": false,
                    "first_id": "claude-3-5-haiku-20241022",
                    "last_id": "claude-3-5-haiku-20241022"
                }),
            )
        } else {
            Reply::json(
                200,
                json!({
                    "data": [
                        {"type": "model", "id": "claude-opus-4-1-20250805",
                         "display_name": "Claude Opus 4.1", "created_at": "2025-08-05T00:00:00Z"},
                        {"type": "model", "id": "claude-sonnet-4-5-20250929",
                         "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}
                    ],
                    "has_more": true,
                    "first_id": "claude-opus-4-1-20250805",
                    "last_id": "claude-sonnet-4-5-20250929"
                }),
            )
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&["anthropic"]);
    let claude = provider(&fixture, &vendor).await;

    let models = claude.list_models(None).await.expect("model list");
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "claude-opus-4-1-20250805",
            "claude-sonnet-4-5-20250929",
            "claude-3-5-haiku-20241022"
        ]
    );
    assert_eq!(models[0].display_name, "Claude Opus 4.1");
    assert_eq!(models[0].max_output_tokens, Some(32_000));
    assert!(models[1].reasoning);
    assert_eq!(models[2].display_name, "Claude Haiku 3.5");
    assert!(!models[2].reasoning);

    let requests = vendor.requests();
    assert_eq!(requests.len(), 2);
    for seen in &requests {
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.path, "/v1/models");
        assert_eq!(seen.header("x-api-key"), Some(KEY));
        assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    }
    assert_eq!(requests[0].query.as_deref(), Some("limit=1000"));
    assert_eq!(
        requests[1].query.as_deref(),
        Some("limit=1000&after_id=claude-sonnet-4-5-20250929")
    );
}
