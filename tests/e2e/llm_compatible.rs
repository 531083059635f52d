//! The OpenAI-compatible provider plugins (real components, one real runtime per test) against
//! one loopback fake speaking the OpenAI Chat Completions wire format.
//!
//! Table-driven over every plugin: request path and headers (auth absent for a keyless
//! Ollama), body fields (system prompt first, max-tokens field, JSON mode as each vendor takes
//! it, the reasoning switch), a parsed answer, a streamed answer with usage in the last chunk,
//! a stream cut mid-answer, typed vendor errors (400/401/429 with Retry-After/500), model
//! lists, and the manifests' grants and secrets.

use std::collections::BTreeMap;

use sceneintruder_runtime::llm::{
    CompletionRequest, JsonSchema, Message, Reasoning, ResponseFormat, Role, StreamEvent,
};
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::{CallError, Limits, LlmProvider, OperatorSettings, PluginRuntime};
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use sceneintruder_tests::{RuntimeFixture, plugin_dist};
use serde_json::{Value, json};

const KEY: &str = "sk-compat-7788";
const GLM_SECRET: &str = "glm-signing-secret-5511";
const SYSTEM: &str = "You are terse.";
const ECHO_MODEL: &str = "vendor-echo-model";

/// How a vendor receives a JSON request.
#[derive(Clone, Copy, Debug)]
enum Json {
    /// `response_format` as asked (`json_object` / `json_schema`), system prompt untouched.
    Native,
    /// `response_format: json_object` plus an instruction appended to the system prompt.
    ObjectAndInstruction,
    /// No `response_format`; an instruction appended to the system prompt.
    Instruction,
}

/// Checks the reasoning switch of one recorded body; `on` is the switch's value.
type ReasoningCheck = fn(&Value, bool);

struct Case {
    id: &'static str,
    /// Path of the configured base URL on the fake (the vendor's default path).
    prefix: &'static str,
    /// The API key setting (and so the expected Bearer header).
    key: Option<&'static str>,
    settings: &'static [(&'static str, &'static str)],
    /// Headers every request must carry besides auth.
    headers: &'static [(&'static str, &'static str)],
    model: &'static str,
    max_tokens_field: &'static str,
    json_object: Json,
    json_schema: Json,
    /// Model whose reasoning switch is checked, and the check.
    reasoning_model: &'static str,
    reasoning: ReasoningCheck,
    /// `stream_options.include_usage` is sent when streaming.
    stream_options: bool,
    /// Path of the model list, and a model id the fake lists for it.
    models_path: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "deepseek",
            prefix: "",
            key: Some(KEY),
            settings: &[],
            headers: &[],
            model: "deepseek-flash",
            max_tokens_field: "max_tokens",
            json_object: Json::ObjectAndInstruction,
            json_schema: Json::ObjectAndInstruction,
            reasoning_model: "deepseek-flash",
            reasoning: |b, on| {
                let kind = if on { "enabled" } else { "disabled" };
                assert_eq!(b["thinking"], json!({"type": kind}), "{b}");
            },
            stream_options: true,
            models_path: Some("/models"),
        },
        Case {
            id: "qwen",
            prefix: "/compatible-mode/v1",
            key: Some(KEY),
            settings: &[],
            headers: &[],
            model: "qwen-plus",
            max_tokens_field: "max_tokens",
            json_object: Json::ObjectAndInstruction,
            json_schema: Json::ObjectAndInstruction,
            reasoning_model: "qwen-plus",
            reasoning: |b, on| {
                assert_eq!(b["enable_thinking"], on, "{b}");
                // DashScope thinks only when streamed: a thinking completion is a stream.
                assert_eq!(b["stream"] == true, on, "{b}");
            },
            stream_options: true,
            models_path: Some("/compatible-mode/v1/models"),
        },
        Case {
            id: "mistral",
            prefix: "/v1",
            key: Some(KEY),
            settings: &[],
            headers: &[],
            model: "mistral-large-latest",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::Native,
            reasoning_model: "mistral-small-latest",
            reasoning: |b, on| {
                assert_eq!(
                    b["reasoning_effort"],
                    if on { "high" } else { "none" },
                    "{b}"
                );
            },
            stream_options: false,
            models_path: Some("/v1/models"),
        },
        Case {
            id: "grok",
            prefix: "/v1",
            key: Some(KEY),
            settings: &[],
            headers: &[],
            model: "grok-4-1-fast-non-reasoning",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::Native,
            reasoning_model: "grok-4-1-fast-reasoning",
            reasoning: |b, on| {
                let model = if on {
                    "grok-4-1-fast-reasoning"
                } else {
                    "grok-4-1-fast-non-reasoning"
                };
                assert_eq!(b["model"], model, "{b}");
            },
            stream_options: true,
            models_path: Some("/v1/models"),
        },
        Case {
            id: "glm",
            prefix: "/api/paas/v4",
            key: Some(KEY),
            settings: &[("api_secret", GLM_SECRET)],
            headers: &[],
            model: "glm-4.7",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::ObjectAndInstruction,
            reasoning_model: "glm-4.7",
            reasoning: |b, on| {
                let kind = if on { "enabled" } else { "disabled" };
                assert_eq!(b["thinking"], json!({"type": kind}), "{b}");
            },
            stream_options: true,
            models_path: None,
        },
        Case {
            id: "githubmodels",
            prefix: "/inference",
            key: Some(KEY),
            settings: &[],
            headers: &[("x-github-api-version", "2022-11-28")],
            model: "openai/gpt-4.1",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::Native,
            reasoning_model: "openai/o4-mini",
            reasoning: |b, on| {
                assert_eq!(
                    b["reasoning_effort"],
                    if on { "high" } else { "low" },
                    "{b}"
                );
                assert_eq!(b["max_completion_tokens"], 64, "{b}");
                assert!(b.get("max_tokens").is_none() && b.get("temperature").is_none());
            },
            stream_options: true,
            models_path: Some("/catalog/models"),
        },
        Case {
            id: "openrouter",
            prefix: "/api/v1",
            key: Some(KEY),
            settings: &[
                ("app_name", "SceneIntruder Tests"),
                ("http_referer", "https://stories.example"),
            ],
            headers: &[
                ("x-title", "SceneIntruder Tests"),
                ("http-referer", "https://stories.example"),
            ],
            model: "openai/gpt-4o-mini",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::Native,
            reasoning_model: "openai/gpt-4o-mini",
            reasoning: |b, on| assert_eq!(b["reasoning"], json!({"enabled": on}), "{b}"),
            stream_options: true,
            models_path: Some("/api/v1/models"),
        },
        Case {
            id: "nvidia",
            prefix: "/v1",
            key: Some(KEY),
            settings: &[],
            headers: &[],
            model: "moonshotai/kimi-k2.5",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::ObjectAndInstruction,
            reasoning_model: "moonshotai/kimi-k2.5",
            reasoning: |b, on| {
                assert_eq!(b["chat_template_kwargs"]["thinking"], on, "{b}");
                assert_eq!(b["chat_template_kwargs"]["enable_thinking"], on, "{b}");
            },
            stream_options: true,
            models_path: Some("/v1/models"),
        },
        Case {
            id: "ollama",
            prefix: "/v1",
            key: None,
            settings: &[],
            headers: &[],
            model: "llama3.2",
            max_tokens_field: "max_tokens",
            json_object: Json::Native,
            json_schema: Json::Native,
            reasoning_model: "qwen3:8b",
            reasoning: |b, on| {
                assert_eq!(
                    b["reasoning_effort"],
                    if on { "high" } else { "none" },
                    "{b}"
                );
            },
            stream_options: true,
            models_path: Some("/v1/models"),
        },
        Case {
            id: "openai-compatible",
            prefix: "/v1",
            key: Some(KEY),
            settings: &[
                ("json_mode", "instruction"),
                ("default_model", "served-model"),
            ],
            headers: &[],
            model: "served-model",
            max_tokens_field: "max_tokens",
            json_object: Json::Instruction,
            json_schema: Json::Instruction,
            reasoning_model: "served-model",
            reasoning: |b, _| {
                for key in [
                    "reasoning_effort",
                    "reasoning",
                    "thinking",
                    "enable_thinking",
                ] {
                    assert!(b.get(key).is_none(), "{b}");
                }
            },
            stream_options: true,
            models_path: Some("/v1/models"),
        },
    ]
}

fn success_body(json_asked: bool) -> Value {
    let text = if json_asked {
        r#"{"title":"Fog"}"#
    } else {
        "Hi there"
    };
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_750_000_000,
        "model": ECHO_MODEL,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "reasoning_content": "thoughts"},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    })
}

fn chunk(content: &str, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "model": ECHO_MODEL,
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})
    )
}

/// The fake vendor: errors by model name, SSE when asked to stream, model lists on GET.
async fn vendor() -> FakeVendor {
    FakeVendor::start(|r: &Recorded| {
        if r.method == "GET" {
            let ids = [json!({"id": "listed-model", "object": "model"}), json!({"id": ""})];
            return if r.path == "/catalog/models" {
                Reply::json(200, Value::Array(ids.to_vec()))
            } else {
                Reply::json(200, json!({"object": "list", "data": ids}))
            };
        }
        let body = r.json();
        let model = body["model"].as_str().unwrap_or_default();
        let error = |status: u16, message: &str| {
            Reply::json(
                status,
                json!({"error": {"message": message, "type": "invalid_request_error"}}),
            )
        };
        match model {
            "m-400" => return error(400, "Invalid value for 'temperature'."),
            "m-401" => return error(401, "Authentication Fails, Your api key is invalid"),
            "m-429" => {
                return error(429, "Rate limit reached for requests").header("retry-after", "7");
            }
            "m-500" => return error(500, "The server had an error while processing your request."),
            _ => {}
        }
        if body["stream"] != true {
            let json_asked = body.get("response_format").is_some()
                || body["messages"][0]["content"]
                    .as_str()
                    .is_some_and(|s| s.contains("JSON"));
            return Reply::json(200, success_body(json_asked));
        }
        let (a, b) = (chunk("Once", None), chunk(" upon", None));
        if model == "cut" {
            // The connection ends mid-answer: no finish reason, no [DONE].
            return Reply::sse(&[&a, &b[..b.len() / 2]]);
        }
        let finish = chunk("", Some("stop"));
        let usage = format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": ECHO_MODEL,
                   "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
        );
        Reply::sse(&[&a[..10], &a[10..], &b, &finish, &usage, "data: [DONE]\n\n"])
    })
    .await
}

/// One runtime with every plugin, each pointed at the fake.
async fn runtime(fixture: &RuntimeFixture, vendor: &FakeVendor) -> PluginRuntime {
    let settings = cases()
        .iter()
        .map(|c| {
            let mut values = BTreeMap::from([(
                "base_url".to_string(),
                format!("{}{}", vendor.base, c.prefix),
            )]);
            if let Some(key) = c.key {
                values.insert("api_key".into(), key.into());
            }
            for (k, v) in c.settings {
                values.insert((*k).into(), (*v).into());
            }
            (
                c.id.to_string(),
                OperatorSettings {
                    values,
                    allow_hosts: vec![],
                    ..Default::default()
                },
            )
        })
        .collect();
    fixture.load(Limits::default(), settings).await
}

fn fixture() -> RuntimeFixture {
    let ids: Vec<&str> = cases().iter().map(|c| c.id).collect();
    RuntimeFixture::new(&ids)
}

fn provider(rt: &PluginRuntime, case: &Case) -> LlmProvider {
    rt.llm(case.id)
        .unwrap_or_else(|e| panic!("{} not loaded: {e}", case.id))
}

fn request(model: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.into(),
        system_prompt: Some(SYSTEM.into()),
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

fn schema_format() -> ResponseFormat {
    ResponseFormat::JsonSchema(JsonSchema {
        name: "scene".into(),
        schema:
            r#"{"type":"object","properties":{"title":{"type":"string"}},"required":["title"]}"#
                .into(),
        strict: true,
    })
}

/// Path, method, auth and the vendor's headers of a chat request.
fn assert_chat_request(case: &Case, seen: &Recorded) {
    let id = case.id;
    assert_eq!(seen.method, "POST", "{id}");
    assert_eq!(
        seen.path,
        format!("{}/chat/completions", case.prefix),
        "{id}"
    );
    match case.key {
        Some(key) => assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {key}").as_str()),
            "{id}"
        ),
        None => assert_eq!(seen.header("authorization"), None, "{id}: {seen:?}"),
    }
    for (name, value) in case.headers {
        assert_eq!(seen.header(name), Some(*value), "{id}: {name}");
    }
    assert!(
        seen.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{id}: {seen:?}"
    );
    // No secret other than the API key ever leaves (GLM's api_secret stays home).
    let everything = format!("{:?}{}", seen.headers, seen.text());
    assert!(!everything.contains(GLM_SECRET), "{id}: {everything}");
    if case.key.is_none() {
        assert!(!everything.contains("{{secret"), "{id}: {everything}");
    }
}

/// The system message and `response_format` of a JSON request, as the case expects.
fn assert_json(case: &Case, body: &Value, expect: Json, asked: &str) {
    let id = case.id;
    let system = &body["messages"][0];
    assert_eq!(system["role"], "system", "{id}: {body}");
    let text = system["content"].as_str().unwrap_or_default();
    let format = body.get("response_format");
    match expect {
        Json::Native => {
            assert_eq!(text, SYSTEM, "{id}");
            assert_eq!(format.and_then(|f| f["type"].as_str()), Some(asked), "{id}");
        }
        Json::ObjectAndInstruction => {
            assert_eq!(format, Some(&json!({"type": "json_object"})), "{id}");
            assert!(text.starts_with(&format!("{SYSTEM}\n\n")), "{id}: {text}");
            assert!(text.contains("JSON"), "{id}: {text}");
        }
        Json::Instruction => {
            assert!(format.is_none(), "{id}: {body}");
            assert!(text.starts_with(&format!("{SYSTEM}\n\n")), "{id}: {text}");
            assert!(text.contains("JSON"), "{id}: {text}");
        }
    }
    if asked == "json_schema" && !matches!(expect, Json::Native) {
        // The schema travels in the instruction.
        assert!(text.contains(r#""title""#), "{id}: {text}");
    }
    if asked == "json_schema" && matches!(expect, Json::Native) {
        let schema = &body["response_format"]["json_schema"];
        assert_eq!(schema["name"], "scene", "{id}");
        assert_eq!(schema["schema"]["required"], json!(["title"]), "{id}");
    }
}

#[tokio::test]
async fn requests_bodies_and_answers() {
    let vendor = vendor().await;
    let fixture = fixture();
    let rt = runtime(&fixture, &vendor).await;

    for case in cases() {
        let id = case.id;
        let llm = provider(&rt, &case);

        // A plain completion: request shape and the parsed answer.
        let mut req = request(case.model);
        if id == "openai-compatible" {
            // A request without a model takes the `default_model` setting.
            req.model = String::new();
        }
        let answer = llm
            .complete(&req, None)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(answer.text, "Hi there", "{id}");
        assert_eq!(answer.finish_reason, "stop", "{id}");
        assert_eq!(answer.model, ECHO_MODEL, "{id}");
        let usage = answer.usage.expect("usage");
        assert_eq!(
            (usage.prompt_tokens, usage.output_tokens, usage.total_tokens),
            (12, 3, 15),
            "{id}"
        );
        let seen = vendor.last();
        assert_chat_request(&case, &seen);
        let body = seen.json();
        assert_eq!(body["model"], case.model, "{id}");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "Again"},
            ]),
            "{id}"
        );
        assert_eq!(body["temperature"], json!(0.7), "{id}");
        assert_eq!(body[case.max_tokens_field], 64, "{id}: {body}");
        if case.max_tokens_field != "max_tokens" {
            assert!(body.get("max_tokens").is_none(), "{id}");
        }
        assert!(body.get("response_format").is_none(), "{id}: {body}");
        assert!(body.get("stream").is_none(), "{id}: {body}");
        // Default reasoning: no switch at all.
        for key in [
            "reasoning_effort",
            "reasoning",
            "thinking",
            "enable_thinking",
            "chat_template_kwargs",
        ] {
            assert!(body.get(key).is_none(), "{id}: {key} in {body}");
        }

        // JSON mode and JSON schema, as this vendor takes them.
        let mut req = request(case.model);
        req.response_format = ResponseFormat::JsonObject;
        let answer = llm.complete(&req, None).await.expect("json mode");
        assert_eq!(answer.text, r#"{"title":"Fog"}"#, "{id}");
        assert_json(
            &case,
            &vendor.last().json(),
            case.json_object,
            "json_object",
        );
        req.response_format = schema_format();
        llm.complete(&req, None).await.expect("json schema");
        assert_json(
            &case,
            &vendor.last().json(),
            case.json_schema,
            "json_schema",
        );

        // The reasoning switch, both ways.
        for on in [false, true] {
            let mut req = request(case.reasoning_model);
            req.reasoning = if on { Reasoning::On } else { Reasoning::Off };
            let answer = llm
                .complete(&req, None)
                .await
                .unwrap_or_else(|e| panic!("{id} reasoning {on}: {e:?}"));
            assert!(!answer.text.is_empty(), "{id}");
            let seen = vendor.last();
            assert_chat_request(&case, &seen);
            (case.reasoning)(&seen.json(), on);
        }
    }
}

/// Drains a stream: the concatenated deltas and the last event.
async fn drain(
    llm: &LlmProvider,
    req: &CompletionRequest,
) -> (String, Option<Result<StreamEvent, CallError>>) {
    let mut stream = llm.stream(req, None).await.expect("stream starts");
    let mut text = String::new();
    let mut last = None;
    while let Some(event) = stream.next().await {
        if let Ok(StreamEvent::Delta(d)) = &event {
            text.push_str(d);
        }
        last = Some(event);
    }
    (text, last)
}

#[tokio::test]
async fn streams_and_cut_streams() {
    let vendor = vendor().await;
    let fixture = fixture();
    let rt = runtime(&fixture, &vendor).await;

    for case in cases() {
        let id = case.id;
        let llm = provider(&rt, &case);

        let (text, last) = drain(&llm, &request(case.model)).await;
        assert_eq!(text, "Once upon", "{id}");
        match last {
            Some(Ok(StreamEvent::Done(done))) => {
                assert_eq!(done.text, "Once upon", "{id}");
                assert_eq!(done.finish_reason, "stop", "{id}");
                assert_eq!(done.model, ECHO_MODEL, "{id}");
                let usage = done.usage.expect("usage in the final chunk");
                assert_eq!((usage.prompt_tokens, usage.total_tokens), (9, 11), "{id}");
            }
            other => panic!("{id}: expected done, got {other:?}"),
        }
        let seen = vendor.last();
        assert_chat_request(&case, &seen);
        assert_eq!(seen.header("accept"), Some("text/event-stream"), "{id}");
        let body = seen.json();
        assert_eq!(body["stream"], true, "{id}");
        if case.stream_options {
            assert_eq!(
                body["stream_options"],
                json!({"include_usage": true}),
                "{id}"
            );
        } else {
            assert!(body.get("stream_options").is_none(), "{id}: {body}");
        }

        let (text, last) = drain(&llm, &request("cut")).await;
        assert_eq!(text, "Once", "{id}");
        match last {
            Some(Err(CallError::Provider {
                plugin,
                error: ProviderError::StreamInterrupted(_),
            })) => assert_eq!(plugin, id),
            other => panic!("{id}: a cut stream must end in stream-interrupted, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn vendor_errors_become_typed_errors() {
    let vendor = vendor().await;
    let fixture = fixture();
    let rt = runtime(&fixture, &vendor).await;

    for case in cases() {
        let id = case.id;
        let llm = provider(&rt, &case);
        let error = |e: CallError| match e {
            CallError::Provider { plugin, error } => {
                assert_eq!(plugin, id);
                error
            }
            other => panic!("{id}: expected a provider error, got {other:?}"),
        };
        match error(llm.complete(&request("m-400"), None).await.unwrap_err()) {
            ProviderError::BadRequest(u) => {
                assert_eq!(u.status, 400, "{id}");
                assert!(u.message.contains("temperature"), "{id}: {}", u.message);
            }
            other => panic!("{id} 400: {other:?}"),
        }
        match error(llm.complete(&request("m-401"), None).await.unwrap_err()) {
            ProviderError::Unauthorized(u) => {
                assert_eq!(u.status, 401, "{id}");
                assert!(
                    u.message.contains("api key is invalid"),
                    "{id}: {}",
                    u.message
                );
            }
            other => panic!("{id} 401: {other:?}"),
        }
        match error(llm.complete(&request("m-429"), None).await.unwrap_err()) {
            ProviderError::RateLimited(r) => {
                assert_eq!(r.retry_after_ms, Some(7000), "{id}");
                assert!(r.message.contains("Rate limit"), "{id}: {}", r.message);
            }
            other => panic!("{id} 429: {other:?}"),
        }
        match error(llm.complete(&request("m-500"), None).await.unwrap_err()) {
            ProviderError::Upstream(u) => assert_eq!(u.status, 500, "{id}"),
            other => panic!("{id} 500: {other:?}"),
        }
        // A streamed request that the vendor refuses fails before any event.
        match llm.stream(&request("m-429"), None).await {
            Err(CallError::Provider {
                error: ProviderError::RateLimited(r),
                ..
            }) => assert_eq!(r.retry_after_ms, Some(7000), "{id}"),
            Err(other) => panic!("{id} streamed 429: {other:?}"),
            Ok(_) => panic!("{id} streamed 429: the stream started"),
        }
    }
}

#[tokio::test]
async fn model_lists_come_from_the_vendor() {
    let vendor = vendor().await;
    let fixture = fixture();
    let rt = runtime(&fixture, &vendor).await;

    for case in cases() {
        let id = case.id;
        let llm = provider(&rt, &case);
        let before = vendor.requests().len();
        let models = llm
            .list_models(None)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        match case.models_path {
            Some(path) => {
                let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
                assert_eq!(ids, vec!["listed-model"], "{id}");
                let seen = vendor.last();
                assert_eq!(
                    (seen.method.as_str(), seen.path.as_str()),
                    ("GET", path),
                    "{id}"
                );
                match case.key {
                    Some(key) => assert_eq!(
                        seen.header("authorization"),
                        Some(format!("Bearer {key}").as_str()),
                        "{id}"
                    ),
                    None => assert_eq!(seen.header("authorization"), None, "{id}"),
                }
            }
            None => {
                // No list endpoint: the built-in catalog, without calling the vendor.
                assert_eq!(vendor.requests().len(), before, "{id}");
                assert_eq!(
                    models.len(),
                    llm.info().models.len(),
                    "{id}: the catalog is returned"
                );
            }
        }
    }
}

#[tokio::test]
async fn catalogs_and_missing_settings() {
    let fixture = fixture();
    // No settings at all: the manifests' defaults.
    let rt = fixture.load(Limits::default(), BTreeMap::new()).await;
    for case in cases() {
        let id = case.id;
        let llm = provider(&rt, &case);
        let info = llm.info();
        assert_eq!(info.id, id);
        if id == "openai-compatible" {
            assert!(info.models.is_empty(), "an open catalog");
        } else {
            assert!(
                info.models.iter().any(|m| m.id == info.default_model),
                "{id}: the default model is in the catalog"
            );
            for m in &info.models {
                assert!(
                    !m.id.is_empty() && !m.id.contains(' ') && m.streaming,
                    "{id}: {m:?}"
                );
            }
        }
        // Vendors that need a key say so without calling anyone.
        let missing = llm.missing_required();
        match id {
            "ollama" => assert!(missing.is_empty(), "{missing:?}"),
            "openai-compatible" => assert_eq!(missing, vec!["base_url"]),
            _ => {
                assert_eq!(missing, vec!["api_key"], "{id}");
                match llm.complete(&request(case.model), None).await {
                    Err(CallError::Provider {
                        error: ProviderError::NotConfigured(m),
                        ..
                    }) => assert!(m.contains("api_key"), "{id}: {m}"),
                    other => panic!("{id}: expected not-configured, got {other:?}"),
                }
            }
        }
    }
    let compatible = rt.llm("openai-compatible").expect("loaded");
    match compatible.complete(&request("m"), None).await {
        Err(CallError::Provider {
            error: ProviderError::NotConfigured(m),
            ..
        }) => assert!(m.contains("base_url"), "{m}"),
        other => panic!("expected not-configured, got {other:?}"),
    }
}

#[test]
fn manifests_request_their_vendor_and_declare_their_secrets() {
    for case in cases() {
        let id = case.id;
        let path = plugin_dist().join(id).join("plugin.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{id}: {e}"));
        let doc: toml::Table = toml::from_str(&text).expect("manifest is TOML");
        assert_eq!(doc["id"].as_str(), Some(id));
        assert_eq!(doc["kind"].as_str(), Some("llm-provider"));
        assert_eq!(doc["wit"].as_str(), Some("0.1.3"));
        let hosts: Vec<&str> = doc["network"]["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .filter_map(|h| h.as_str())
            .collect();
        let config = doc["config"].as_table().expect("config");
        let api_key = config["api_key"].as_table().expect("api_key");
        assert_eq!(api_key["secret"].as_bool(), Some(true), "{id}");
        let key_required = api_key
            .get("required")
            .and_then(|r| r.as_bool())
            .unwrap_or(false);
        assert_eq!(
            key_required,
            case.key.is_some() && id != "openai-compatible",
            "{id}"
        );
        let default = config["base_url"].get("default").and_then(|d| d.as_str());
        match default {
            Some(url) => {
                // The default base URL's origin is exactly what the plugin asks to reach.
                let origin = url::Url::parse(url)
                    .expect("url")
                    .origin()
                    .ascii_serialization();
                assert_eq!(hosts, vec![origin.as_str()], "{id}");
                assert!(url.ends_with(case.prefix), "{id}: {url}");
            }
            None => {
                assert_eq!(id, "openai-compatible");
                assert!(hosts.is_empty());
                assert_eq!(config["base_url"]["required"].as_bool(), Some(true));
            }
        }
        if id == "glm" {
            assert_eq!(config["api_secret"]["secret"].as_bool(), Some(true));
            assert!(config["api_secret"].get("required").is_none());
        }
    }
}
