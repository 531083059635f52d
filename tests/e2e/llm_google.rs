//! The `google` plugin (real component, real runtime) against a loopback fake of the Gemini
//! API speaking its documented wire format: paths, the key only in `x-goog-api-key`,
//! `systemInstruction`, `generationConfig` (JSON mode, response schema, thinking), streaming
//! with `alt=sse`, typed vendor errors and the model list.

use sceneintruder_runtime::llm::{
    CompletionRequest, JsonSchema, Message, Reasoning, ResponseFormat, Role, StreamEvent,
};
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::{CallError, LlmProvider};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use serde_json::{Value, json};

const KEY: &str = "AIzaSyTest-4242";

fn success_body() -> Value {
    json!({
        "candidates": [{
            "content": {
                "parts": [
                    {"text": "Considering the greeting.", "thought": true},
                    {"text": "Hi "},
                    {"text": "there"}
                ],
                "role": "model"
            },
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
            ]
        }],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 3,
            "totalTokenCount": 15,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mJ3AaPv9BMaQ1dkP"
    })
}

fn error_body(code: u16, status: &str, message: &str, details: Value) -> Value {
    json!({"error": {"code": code, "message": message, "status": status, "details": details}})
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
                role: Role::Assistant,
                content: "Anything else?".into(),
            },
            Message {
                role: Role::User,
                content: "Again".into(),
            },
        ],
        temperature: Some(0.7),
        max_tokens: Some(64),
        top_p: Some(0.9),
        stop: vec!["THE END".into()],
        response_format: ResponseFormat::Text,
        reasoning: Reasoning::Default,
    }
}

async fn load(fixture: &RuntimeFixture, values: &[(&str, String)]) -> LlmProvider {
    fixture
        .load_configured("google", values)
        .await
        .llm("google")
        .expect("google loaded")
}

async fn provider(fixture: &RuntimeFixture, vendor: &FakeVendor) -> LlmProvider {
    load(
        fixture,
        &[
            ("base_url", format!("{}/v1beta", vendor.base)),
            ("api_key", KEY.to_string()),
        ],
    )
    .await
}

/// The key travels only in its header: never in the path, the query or the body.
fn assert_key_only_in_header(seen: &Recorded) {
    assert_eq!(seen.header("x-goog-api-key"), Some(KEY), "{seen:?}");
    assert!(!seen.path.contains(KEY), "{seen:?}");
    assert!(
        seen.query
            .as_deref()
            .is_none_or(|q| !q.contains(KEY) && !q.contains("key=")),
        "{seen:?}"
    );
    assert!(!seen.text().contains(KEY), "{seen:?}");
    assert_eq!(seen.header("authorization"), None);
}

fn assert_generate_request(seen: &Recorded, model: &str) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, format!("/v1beta/models/{model}:generateContent"));
    assert_eq!(seen.query, None);
    assert_key_only_in_header(seen);
    assert!(
        seen.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{seen:?}"
    );
}

fn provider_error(e: CallError) -> ProviderError {
    match e {
        CallError::Provider { plugin, error } => {
            assert_eq!(plugin, "google");
            error
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[tokio::test]
async fn completion_request_and_response() {
    let vendor = FakeVendor::start(|_| Reply::json(200, success_body())).await;
    let fixture = RuntimeFixture::new(&["google"]);
    let gemini = provider(&fixture, &vendor).await;

    let info = gemini.info();
    assert_eq!(info.id, "google");
    assert_eq!(info.default_model, "gemini-2.5-flash");
    let ids: Vec<&str> = info.models.iter().map(|m| m.id.as_str()).collect();
    for id in [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.5-flash-lite",
    ] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    assert!(
        info.models
            .iter()
            .all(|m| m.json_mode && m.json_schema && m.reasoning && m.context_window > 0)
    );

    let answer = gemini
        .complete(&request("gemini-2.5-flash"), None)
        .await
        .expect("completion");
    assert_eq!(answer.text, "Hi there");
    assert_eq!(answer.finish_reason, "STOP");
    assert_eq!(answer.model, "gemini-2.5-flash");
    let usage = answer.usage.expect("usage");
    assert_eq!(
        (usage.prompt_tokens, usage.output_tokens, usage.total_tokens),
        (12, 3, 15)
    );

    let seen = vendor.last();
    assert_generate_request(&seen, "gemini-2.5-flash");
    assert_eq!(
        seen.json(),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hello"}]},
                {"role": "model", "parts": [{"text": "Hi.\n\nAnything else?"}]},
                {"role": "user", "parts": [{"text": "Again"}]},
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "generationConfig": {
                "temperature": 0.7,
                "topP": 0.9,
                "maxOutputTokens": 64,
                "stopSequences": ["THE END"],
            },
        })
    );

    // A `models/` prefix in the model id is not doubled; a bare base URL gets /v1beta.
    let bare = load(
        &fixture,
        &[
            ("base_url", vendor.base.clone()),
            ("api_key", KEY.to_string()),
        ],
    )
    .await;
    bare.complete(&request("models/gemini-2.5-pro"), None)
        .await
        .expect("completion");
    assert_generate_request(&vendor.last(), "gemini-2.5-pro");

    // An id that would change the URL is refused before any HTTP.
    let before = vendor.requests().len();
    let err = provider_error(
        gemini
            .complete(
                &request("gemini-2.5-flash:streamGenerateContent?key=x"),
                None,
            )
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
    assert_eq!(vendor.requests().len(), before);
}

#[tokio::test]
async fn json_mode_schema_and_the_thinking_switch() {
    let vendor = FakeVendor::start(|_| Reply::json(200, success_body())).await;
    let fixture = RuntimeFixture::new(&["google"]);
    let gemini = provider(&fixture, &vendor).await;

    let mut req = request("gemini-2.5-flash");
    req.response_format = ResponseFormat::JsonObject;
    gemini.complete(&req, None).await.expect("json mode");
    let body = vendor.last().json();
    assert_eq!(
        body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert!(
        body["generationConfig"].get("responseSchema").is_none(),
        "{body}"
    );
    for key in ["response_format", "responseFormat"] {
        assert!(body.get(key).is_none(), "{key}: {body}");
    }

    req.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "scene".into(),
        schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "title": {"type": "string"},
                "mood": {"enum": ["calm", "tense"]},
                "year": {"type": ["integer", "null"]},
                "cast": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["title"]
        })
        .to_string(),
        strict: true,
    });
    gemini.complete(&req, None).await.expect("json schema");
    let body = vendor.last().json();
    assert_eq!(
        body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert_eq!(
        body["generationConfig"]["responseSchema"],
        json!({
            "type": "OBJECT",
            "properties": {
                "title": {"type": "STRING"},
                "mood": {"type": "STRING", "enum": ["calm", "tense"]},
                "year": {"type": "INTEGER", "nullable": true},
                "cast": {"type": "ARRAY", "items": {"type": "STRING"}}
            },
            "required": ["title"]
        })
    );
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );

    // A schema outside Gemini's subset still asks for JSON, with the schema as an instruction.
    req.response_format = ResponseFormat::JsonSchema(JsonSchema {
        name: "tags".into(),
        schema: r#"{"type":"object","additionalProperties":{"type":"string"}}"#.into(),
        strict: false,
    });
    gemini.complete(&req, None).await.expect("schema fallback");
    let body = vendor.last().json();
    assert_eq!(
        body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert!(
        body["generationConfig"].get("responseSchema").is_none(),
        "{body}"
    );
    let system = body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .expect("system instruction");
    assert!(
        system.starts_with("You are terse.\n\n") && system.contains("additionalProperties"),
        "{system}"
    );

    // The reasoning switch, per model family.
    let thinking = async |model: &str, reasoning| {
        let mut req = request(model);
        req.reasoning = reasoning;
        gemini.complete(&req, None).await.expect("completion");
        vendor
            .last()
            .json()
            .pointer("/generationConfig/thinkingConfig")
            .cloned()
    };
    assert_eq!(
        thinking("gemini-2.5-flash", Reasoning::Off).await,
        Some(json!({"thinkingBudget": 0}))
    );
    assert_eq!(
        thinking("gemini-2.5-flash-lite", Reasoning::Off).await,
        Some(json!({"thinkingBudget": 0}))
    );
    assert_eq!(
        thinking("gemini-2.5-flash", Reasoning::On).await,
        Some(json!({"thinkingBudget": -1}))
    );
    // 2.5 Pro cannot stop thinking: off is its smallest budget, never the rejected 0.
    assert_eq!(
        thinking("gemini-2.5-pro", Reasoning::Off).await,
        Some(json!({"thinkingBudget": 128}))
    );
    assert_eq!(thinking("gemini-2.5-flash", Reasoning::Default).await, None);
    // Models without a thinking configuration get none.
    assert_eq!(thinking("gemini-2.0-flash", Reasoning::Off).await, None);

    // The output cap is clamped to the model's documented maximum.
    let mut req = request("gemini-2.5-pro");
    req.max_tokens = Some(1_000_000);
    gemini.complete(&req, None).await.expect("completion");
    assert_eq!(
        vendor.last().json()["generationConfig"]["maxOutputTokens"],
        65_536
    );
}

#[tokio::test]
async fn vendor_errors_become_typed_errors() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let model = r
            .path
            .trim_start_matches("/v1beta/models/")
            .trim_end_matches(":generateContent");
        match model {
            "m-400" => Reply::json(
                400,
                error_body(
                    400,
                    "INVALID_ARGUMENT",
                    "Invalid JSON payload received. Unknown name \"response_format\": Cannot find field.",
                    json!([{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": []}]),
                ),
            ),
            "m-bad-key" => Reply::json(
                400,
                error_body(
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                    json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"}}]),
                ),
            ),
            "m-401" => Reply::json(
                401,
                error_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", json!([])),
            ),
            "m-403" => Reply::json(
                403,
                error_body(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", json!([])),
            ),
            "m-429" => Reply::json(
                429,
                error_body(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "You exceeded your current quota, please check your plan and billing details.",
                    json!([
                        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                             "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
                    ]),
                ),
            ),
            "m-429-header" => Reply::json(
                429,
                error_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", json!([])),
            )
            .header("retry-after", "4"),
            "m-500" => Reply::json(
                500,
                error_body(500, "INTERNAL", "An internal error has occurred. Please retry.", json!([])),
            ),
            "m-503" => Reply::json(
                503,
                error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", json!([])),
            ),
            "m-blocked" => Reply::json(
                200,
                json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                       "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}),
            ),
            _ => Reply::text(200, "<html>not json</html>"),
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&["google"]);
    let gemini = provider(&fixture, &vendor).await;
    let fail = async |model: &str| {
        provider_error(
            gemini
                .complete(&request(model), None)
                .await
                .expect_err("must fail"),
        )
    };

    match fail("m-400").await {
        ProviderError::BadRequest(u) => {
            assert_eq!(u.status, 400);
            assert!(
                u.message.starts_with("Invalid JSON payload"),
                "{}",
                u.message
            );
        }
        other => panic!("400: {other:?}"),
    }
    match fail("m-bad-key").await {
        ProviderError::Unauthorized(u) => {
            assert_eq!(u.status, 400);
            assert!(u.message.contains("API key not valid"), "{}", u.message);
        }
        other => panic!("invalid key: {other:?}"),
    }
    match fail("m-401").await {
        ProviderError::Unauthorized(u) => assert_eq!(u.status, 401),
        other => panic!("401: {other:?}"),
    }
    match fail("m-403").await {
        ProviderError::Unauthorized(u) => assert_eq!(u.status, 403),
        other => panic!("403: {other:?}"),
    }
    match fail("m-429").await {
        ProviderError::RateLimited(r) => {
            assert_eq!(r.retry_after_ms, Some(17_000));
            assert!(
                r.message.contains("exceeded your current quota"),
                "{}",
                r.message
            );
        }
        other => panic!("429: {other:?}"),
    }
    match fail("m-429-header").await {
        ProviderError::RateLimited(r) => assert_eq!(r.retry_after_ms, Some(4000)),
        other => panic!("429 with Retry-After: {other:?}"),
    }
    match fail("m-500").await {
        ProviderError::Upstream(u) => {
            assert_eq!(u.status, 500);
            assert!(u.message.contains("internal error"), "{}", u.message);
        }
        other => panic!("500: {other:?}"),
    }
    match fail("m-503").await {
        ProviderError::Upstream(u) => assert_eq!(u.status, 503),
        other => panic!("503: {other:?}"),
    }
    match fail("m-blocked").await {
        ProviderError::BadResponse(m) => assert!(m.contains("PROHIBITED_CONTENT"), "{m}"),
        other => panic!("blocked prompt: {other:?}"),
    }
    assert!(matches!(
        fail("m-garbage").await,
        ProviderError::BadResponse(_)
    ));
    for seen in vendor.requests() {
        assert_key_only_in_header(&seen);
    }

    // Without a key nothing is sent.
    let before = vendor.requests().len();
    let keyless = load(&fixture, &[("base_url", format!("{}/v1beta", vendor.base))]).await;
    match provider_error(
        keyless
            .complete(&request("gemini-2.5-flash"), None)
            .await
            .unwrap_err(),
    ) {
        ProviderError::NotConfigured(m) => assert!(m.contains("api_key"), "{m}"),
        other => panic!("no key: {other:?}"),
    }
    assert_eq!(vendor.requests().len(), before);
}

#[tokio::test]
async fn streamed_completion_and_a_cut_stream() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        let chunk = |text: &str, last: bool| {
            let mut candidate = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
            let usage = if last {
                candidate["finishReason"] = json!("STOP");
                json!({"promptTokenCount": 9, "candidatesTokenCount": 4, "totalTokenCount": 13})
            } else {
                json!({"promptTokenCount": 9, "totalTokenCount": 9})
            };
            format!(
                "data: {}\r\n\r\n",
                json!({"candidates": [candidate], "usageMetadata": usage,
                       "modelVersion": "gemini-2.5-flash", "responseId": "r1"})
            )
        };
        let (a, b, c) = (chunk("Once", false), chunk(" upon", false), chunk(" a time", true));
        if r.path.contains("/models/cut:") {
            Reply::sse(&[&a, &b[..b.len() / 2]])
        } else if r.path.contains("/models/no-finish:") {
            Reply::sse(&[&a, &b])
        } else if r.path.contains("/models/overloaded:") {
            Reply::sse(&[
                &a,
                "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\r\n\r\n",
            ])
        } else {
            // Split an event across chunks to exercise the parser.
            Reply::sse(&[&a[..20], &a[20..], &b, &c])
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&["google"]);
    let gemini = provider(&fixture, &vendor).await;

    let mut req = request("gemini-2.5-flash");
    req.reasoning = Reasoning::Off;
    let mut stream = gemini.stream(&req, None).await.expect("stream starts");
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
    assert_eq!(done.finish_reason, "STOP");
    let usage = done.usage.expect("usage from the final event");
    assert_eq!(
        (usage.prompt_tokens, usage.output_tokens, usage.total_tokens),
        (9, 4, 13)
    );
    let seen = vendor.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(seen.query.as_deref(), Some("alt=sse"));
    assert_key_only_in_header(&seen);
    assert_eq!(seen.header("accept"), Some("text/event-stream"));
    let body = seen.json();
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "You are terse."
    );
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 0})
    );

    for (model, expected_text) in [
        ("cut", "Once"),
        ("no-finish", "Once upon"),
        ("overloaded", "Once"),
    ] {
        let mut stream = gemini
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
                error: ProviderError::StreamInterrupted(m),
                ..
            }) => {
                if model == "overloaded" {
                    assert!(m.contains("overloaded"), "{m}");
                }
            }
            other => panic!("{model}: expected stream-interrupted, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn model_list_pages() {
    let vendor = FakeVendor::start(|r: &Recorded| {
        if r.query.as_deref().is_some_and(|q| q.contains("pageToken=")) {
            Reply::json(
                200,
                json!({"models": [
                    {"name": "models/gemini-2.5-pro", "version": "2.5", "displayName": "Gemini 2.5 Pro",
                     "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                     "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
                     "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true}
                ]}),
            )
        } else {
            Reply::json(
                200,
                json!({"models": [
                    {"name": "models/embedding-001", "version": "001", "displayName": "Embedding 001",
                     "inputTokenLimit": 2048, "outputTokenLimit": 1,
                     "supportedGenerationMethods": ["embedContent"]},
                    {"name": "models/gemini-2.5-flash", "version": "001", "displayName": "Gemini 2.5 Flash",
                     "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                     "supportedGenerationMethods": ["generateContent", "countTokens"], "thinking": true},
                    {"name": "models/gemini-2.0-flash", "version": "2.0", "displayName": "Gemini 2.0 Flash",
                     "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
                     "supportedGenerationMethods": ["generateContent", "countTokens"]}
                ], "nextPageToken": "Chdn+ZW1/pbmk="}),
            )
        }
    })
    .await;
    let fixture = RuntimeFixture::new(&["google"]);
    let gemini = provider(&fixture, &vendor).await;

    let models = gemini.list_models(None).await.expect("model list");
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        ["gemini-2.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"]
    );
    assert_eq!(models[0].display_name, "Gemini 2.5 Flash");
    assert_eq!(models[0].context_window, 1_048_576);
    assert_eq!(models[1].max_output_tokens, Some(8192));
    assert!(models[0].reasoning && !models[1].reasoning && models[2].reasoning);

    let requests = vendor.requests();
    assert_eq!(requests.len(), 2);
    for seen in &requests {
        assert_eq!(seen.method, "GET");
        assert_eq!(seen.path, "/v1beta/models");
        assert_key_only_in_header(seen);
    }
    assert_eq!(requests[0].query.as_deref(), Some("pageSize=1000"));
    assert_eq!(
        requests[1].query.as_deref(),
        Some("pageSize=1000&pageToken=Chdn%2BZW1%2Fpbmk%3D")
    );
}
