//! The host LLM service over the real runtime and the real `openai` plugin, against a
//! loopback fake of the OpenAI API: the retry loop (429 with Retry-After, 5xx, never 400),
//! the cache (hit only for identical parameters, bypassed by `fresh`), JSON repair,
//! cancellation of an in-flight call, readiness, token accounting, streaming.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sceneintruder_llm::{
    ActiveLlm, FixedProvider, LlmCall, LlmError, LlmService, ServiceConfig, StreamItem,
};
use sceneintruder_runtime::types::ProviderError;
use sceneintruder_runtime::{CallError, PluginRuntime};
use sceneintruder_tests::RuntimeFixture;
use sceneintruder_tests::fake::{FakeVendor, Reply};
use serde_json::{Value, json};

const KEY: &str = "sk-service-1";

fn answer(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-2", "object": "chat.completion", "created": 1_750_000_000,
            "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        }),
    )
}

fn error(status: u16, kind: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": format!("{kind} happened"), "type": kind}}),
    )
}

/// A fake answering with the scripted replies in order, then with `answer("ok")`.
async fn scripted(replies: Vec<Reply>) -> FakeVendor {
    let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    FakeVendor::start(move |_| {
        queue
            .lock()
            .expect("queue")
            .pop_front()
            .unwrap_or_else(|| answer("ok"))
    })
    .await
}

async fn runtime(
    fixture: &RuntimeFixture,
    vendor: &FakeVendor,
    key: Option<&str>,
) -> PluginRuntime {
    let mut values = vec![("base_url", format!("{}/v1", vendor.base))];
    if let Some(key) = key {
        values.push(("api_key", key.to_string()));
    }
    fixture.load_configured("openai", &values).await
}

fn service(runtime: PluginRuntime, config: ServiceConfig) -> LlmService {
    LlmService::new(
        runtime,
        Arc::new(FixedProvider(ActiveLlm {
            provider: "openai".into(),
            default_model: Some("gpt-4o".into()),
            generation: 1,
        })),
        config,
    )
}

fn quick() -> ServiceConfig {
    ServiceConfig {
        retry_base: Duration::from_millis(20),
        ..ServiceConfig::default()
    }
}

fn call(text: &str) -> LlmCall {
    let mut call = LlmCall::new("You are terse.", text);
    call.user = "alice".into();
    call.temperature = Some(0.7);
    call
}

#[tokio::test]
async fn retries_429_after_the_vendors_delay_and_5xx_but_never_400() {
    let fixture = RuntimeFixture::new(&["openai"]);

    // 429 with Retry-After: 1 s, then 503, then success: three attempts, the first wait is
    // what the vendor asked for.
    let vendor = scripted(vec![
        error(429, "rate_limit_exceeded").header("retry-after", "1"),
        error(503, "server_error"),
        answer("third time"),
    ])
    .await;
    let llm = service(runtime(&fixture, &vendor, Some(KEY)).await, quick());
    let started = Instant::now();
    let done = llm.complete(&call("hello")).await.expect("completes");
    assert_eq!(done.text, "third time");
    assert_eq!(done.attempts, 3);
    assert_eq!(vendor.requests().len(), 3);
    // 1 s from Retry-After, then the second backoff step (2 x 20 ms).
    assert_eq!(done.waited, Duration::from_millis(1000 + 40));
    assert!(started.elapsed() >= Duration::from_millis(1040));

    // 400: one attempt, the vendor's message in a typed error.
    let vendor = scripted(vec![error(400, "invalid_request_error")]).await;
    let llm = service(runtime(&fixture, &vendor, Some(KEY)).await, quick());
    let err = llm.complete(&call("hello")).await.expect_err("400 fails");
    assert!(
        matches!(
            err,
            LlmError::Call(CallError::Provider {
                error: ProviderError::BadRequest(_),
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(vendor.requests().len(), 1, "no retry on 400");

    // Retries are bounded: three 500s and the call fails after max_attempts.
    let vendor = scripted(vec![
        error(500, "server_error"),
        error(500, "server_error"),
        error(500, "server_error"),
        answer("too late"),
    ])
    .await;
    let llm = service(runtime(&fixture, &vendor, Some(KEY)).await, quick());
    let err = llm.complete(&call("hello")).await.expect_err("gives up");
    assert!(matches!(err, LlmError::Call(_)), "{err:?}");
    assert_eq!(vendor.requests().len(), 3);
    assert_eq!(llm.usage().by_provider["openai"].failed_calls, 1);

    // A vendor asking for a longer wait than allowed fails at once.
    let vendor = scripted(vec![
        error(429, "rate_limit_exceeded").header("retry-after", "3600"),
    ])
    .await;
    let llm = service(runtime(&fixture, &vendor, Some(KEY)).await, quick());
    let err = llm
        .complete(&call("hello"))
        .await
        .expect_err("too long a wait");
    assert!(err.to_string().contains("rate"), "{err}");
    assert_eq!(vendor.requests().len(), 1);
}

#[tokio::test]
async fn cache_hits_only_identical_calls_and_fresh_bypasses_it() {
    let fixture = RuntimeFixture::new(&["openai"]);
    let vendor = scripted(vec![
        answer("one"),
        answer("two"),
        answer("three"),
        answer("four"),
    ])
    .await;
    let llm = service(
        runtime(&fixture, &vendor, Some(KEY)).await,
        ServiceConfig::default(),
    );
    let first = llm.complete(&call("hello")).await.expect("first");
    assert_eq!((first.text.as_str(), first.cached), ("one", false));
    let again = llm.complete(&call("hello")).await.expect("cached");
    assert_eq!((again.text.as_str(), again.cached), ("one", true));
    assert_eq!(vendor.requests().len(), 1);

    // Another temperature is another question.
    let mut warmer = call("hello");
    warmer.temperature = Some(0.9);
    let warm = llm.complete(&warmer).await.expect("warmer");
    assert_eq!((warm.text.as_str(), warm.cached), ("two", false));
    // So is another max_tokens.
    let mut shorter = call("hello");
    shorter.max_tokens = Some(10);
    assert_eq!(llm.complete(&shorter).await.expect("shorter").text, "three");
    // Regenerate asks again and refreshes the cache.
    let mut regenerate = call("hello");
    regenerate.fresh = true;
    let fresh = llm.complete(&regenerate).await.expect("fresh");
    assert_eq!((fresh.text.as_str(), fresh.cached), ("four", false));
    assert_eq!(
        llm.complete(&call("hello")).await.expect("hit").text,
        "four"
    );
    assert_eq!(vendor.requests().len(), 4);

    // Tokens: four vendor calls of 25 tokens, two cache hits, for alice and for openai.
    let usage = llm.usage();
    for tokens in [&usage.by_provider["openai"], &usage.by_user["alice"]] {
        assert_eq!(tokens.calls, 4);
        assert_eq!(tokens.cached_calls, 2);
        assert_eq!(tokens.prompt_tokens, 80);
        assert_eq!(tokens.output_tokens, 20);
        assert_eq!(tokens.total_tokens, 100);
    }
}

#[tokio::test]
async fn json_answers_are_repaired_or_refused_clearly() {
    let fixture = RuntimeFixture::new(&["openai"]);
    let vendor = scripted(vec![
        answer("Sure! Here it is:\n```json\n{\"name\": \"Lin\", \"tags\": [\"a\", \"b\",],}\n```\nAnything else?"),
        answer("I would rather not."),
    ])
    .await;
    let llm = service(
        runtime(&fixture, &vendor, Some(KEY)).await,
        ServiceConfig::default(),
    );
    let (value, completion): (Value, _) = llm
        .complete_json(&call("describe Lin"))
        .await
        .expect("repaired");
    assert_eq!(value, json!({"name": "Lin", "tags": ["a", "b"]}));
    assert!(!completion.cached);
    // JSON mode reached the vendor as a typed field.
    assert_eq!(
        vendor.last().json()["response_format"],
        json!({"type": "json_object"})
    );

    let err = llm
        .complete_json::<Value>(&call("describe someone else"))
        .await
        .expect_err("not JSON");
    let LlmError::Parse { error, completion } = err else {
        panic!("expected a parse error");
    };
    assert!(error.to_string().contains("not valid JSON"), "{error}");
    assert_eq!(completion.text, "I would rather not.");
    // The unparsable answer is not served from the cache next time.
    let _ = llm
        .complete_json::<Value>(&call("describe someone else"))
        .await;
    assert_eq!(vendor.requests().len(), 3);
}

#[tokio::test]
async fn cancellation_aborts_an_in_flight_call() {
    let fixture = RuntimeFixture::new(&["openai"]);
    // The body arrives in two pieces 30 s apart: the call is in flight until cancelled.
    let slow = Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        chunks: vec![b"{\"id\": \"x\",".to_vec(), b"\"choices\": []}".to_vec()],
        chunk_delay: Duration::from_secs(30),
    };
    let vendor = scripted(vec![slow]).await;
    let llm = service(
        runtime(&fixture, &vendor, Some(KEY)).await,
        ServiceConfig::default(),
    );
    let mut request = call("hello");
    let cancel = tokio_util::sync::CancellationToken::new();
    request.cancel = Some(cancel.clone());
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let outcome = tokio::time::timeout(Duration::from_secs(20), llm.complete(&request))
        .await
        .expect("the call ends long before the vendor answers");
    assert!(matches!(outcome, Err(LlmError::Cancelled)), "{outcome:?}");
    canceller.await.expect("canceller");
    assert_eq!(
        vendor.requests().len(),
        1,
        "cancelled calls are not retried"
    );
}

#[tokio::test]
async fn readiness_and_streaming() {
    let fixture = RuntimeFixture::new(&["openai"]);
    let vendor = FakeVendor::start(|_| {
        Reply::sse(&[
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n",
            "data: [DONE]\n\n",
        ])
    })
    .await;

    // Without a key the service is not ready and makes no call.
    let keyless = service(runtime(&fixture, &vendor, None).await, quick());
    let readiness = keyless.readiness();
    assert!(!readiness.ready);
    assert_eq!(readiness.status, "API key not configured");
    let err = keyless.complete(&call("hi")).await.expect_err("not ready");
    assert!(matches!(err, LlmError::NotReady(_)), "{err:?}");
    assert!(vendor.requests().is_empty());

    let llm = service(runtime(&fixture, &vendor, Some(KEY)).await, quick());
    assert!(llm.readiness().ready);
    let mut stream = llm.stream(&call("hi")).await.expect("stream starts");
    let mut text = String::new();
    let mut done = None;
    while let Some(item) = stream.next().await {
        match item.expect("stream item") {
            StreamItem::Delta(piece) => text.push_str(&piece),
            StreamItem::Done(completion) => done = Some(completion),
        }
    }
    assert_eq!(text, "Hello");
    let done = done.expect("final event");
    assert_eq!(done.total_tokens, 9);
    assert_eq!(vendor.last().json()["stream"], true);
    assert_eq!(llm.usage().by_user["alice"].total_tokens, 9);
}
