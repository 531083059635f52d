//! Hostile LLM replies through the real binary (issue 21 part 2): whatever a plugin returns
//! or streams, the server's memory, the client's download and what is stored stay within the
//! `[limits]` caps, a stream that stalls fails at the idle timeout, and one plugin holding its
//! share of instances cannot starve another plugin.
//!
//! Scenes are made with the real `openai` plugin against the loopback story model; the chat
//! then goes to the test-only `chaos` plugin, whose `model` picks the misbehaviour.

use std::time::Duration;

use sceneintruder_tests::fake::{FakeVendor, Reply};
use sceneintruder_tests::sse::{Frame, SseReader};
use sceneintruder_tests::story_model::{harbour_scene, model};
use sceneintruder_tests::{Backend, Server, ServerBuilder, error_details, set_requested_hosts};
use serde_json::{Value, json};

/// A server with `openai` (the story model at `story_base`) and `chaos` (granted `grant`, if
/// any), `extra` appended to its config.
async fn server(story_base: &str, grant: Option<&str>, extra: &str) -> Server {
    let mut builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .plugin("chaos")
        .config(&format!(
            "[llm]\nprovider = \"openai\"\nmax_attempts = 1\n[plugins.openai.settings]\nbase_url = \"{story_base}/v1\""
        ))
        .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-story-model");
    if let Some(origin) = grant {
        set_requested_hosts(&builder.plugins_dir().join("chaos"), &[origin.to_string()]);
        builder = builder.config(&format!("[plugins.chaos]\nallow_hosts = [\"{origin}\"]"));
    }
    builder.config(extra).start().await
}

/// Make `provider` (with `model`) the one chat replies come from.
async fn use_provider(server: &Server, provider: &str, model: &str) {
    let (status, body) = server
        .post(
            "/api/settings",
            &json!({"llm_provider": provider, "llm_config": {"default_model": model}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn chat_body(scene: &str, character: &str, message: &str) -> Value {
    json!({"scene_id": scene, "character_id": character, "message": message})
}

/// Start a streamed chat turn.
async fn stream_chat(server: &Server, scene: &str, character: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/api/chat"))
        .header("accept", "text/event-stream")
        .json(&chat_body(scene, character, "Tell me everything."))
        .send()
        .await
        .expect("chat")
}

/// Every frame of a streamed turn (within 60 s).
async fn read_frames(response: reqwest::Response) -> Vec<Frame> {
    tokio::time::timeout(Duration::from_secs(60), SseReader::new(response).collect())
        .await
        .expect("the stream ends within 60 s")
}

/// The `error` frame's message, or a panic showing the frames.
fn error_message(frames: &[Frame]) -> String {
    let last = frames.last().expect("at least one frame");
    assert_eq!(last.event, "error", "the turn ends with an error: {last:?}");
    assert!(
        !frames.iter().any(|f| f.event == "done"),
        "no done frame after an error"
    );
    last.data["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Conversation lines stored for the scene.
async fn stored_lines(server: &Server, scene: &str) -> Vec<Value> {
    let (status, body) = server
        .get(&format!("/api/scenes/{scene}/conversations"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// A streamed turn on the `echo` model works and is stored: the scene is still usable.
async fn scene_still_chats(server: &Server, scene: &str, character: &str, lines_before: usize) {
    use_provider(server, "chaos", "echo").await;
    let frames = read_frames(stream_chat(server, scene, character).await).await;
    let done = frames
        .iter()
        .find(|f| f.event == "done")
        .unwrap_or_else(|| panic!("a later turn completes: {frames:?}"));
    assert_eq!(done.data["response"], "Tell me everything.");
    assert_eq!(stored_lines(server, scene).await.len(), lines_before + 2);
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM")
}

/// What a streamed turn sent: its total body bytes, the bytes of its delta texts and its
/// last frame (deltas are counted and dropped). Stops reading past `give_up` bytes.
async fn drain(mut response: reqwest::Response, give_up: usize) -> (usize, usize, Option<Frame>) {
    let mut total = 0usize;
    let mut delta_bytes = 0usize;
    let mut last = None;
    let mut buffer = String::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            total += chunk.len();
            if total > give_up {
                break;
            }
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let Some(event) = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map(|e| e.trim().to_string())
                else {
                    continue; // a keep-alive
                };
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                if event == "delta" {
                    delta_bytes += data["text"].as_str().map_or(0, str::len);
                }
                last = Some(Frame {
                    data: if event == "delta" { Value::Null } else { data },
                    event,
                    id: None,
                });
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the stream ends within 120 s");
    (total, delta_bytes, last)
}

const MIB: usize = 1 << 20;
/// The default `max_stream_bytes`.
const STREAM_CAP: usize = 8 * MIB;

/// A plugin streaming a 256 MiB reply (deltas of 64 KiB): the turn ends with an error at the
/// default 8 MiB stream cap, the client gets at most about that much, nothing is stored, the
/// scene still chats and the server never holds the flood in memory.
#[tokio::test]
async fn a_flooding_stream_is_cut_at_the_cap_and_nothing_is_stored() {
    let story = model(None, None).await;
    let server = server(&story.base, None, "").await;
    let (scene, lin, _) = harbour_scene(&server).await;
    use_provider(&server, "chaos", "flood:256").await;

    let response = stream_chat(&server, &scene, &lin).await;
    assert_eq!(response.status(), 200);
    let (total, delta_bytes, last) = drain(response, 64 * MIB).await;
    assert!(
        delta_bytes <= STREAM_CAP,
        "{delta_bytes} bytes of deltas passed the cap"
    );
    assert!(
        total <= STREAM_CAP + MIB,
        "the client received {total} bytes"
    );
    let last = last.expect("frames");
    assert_eq!(last.event, "error", "{:?}", last.event);
    let message = last.data["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("plugin chaos streamed more than 8388608 bytes")
            && message.contains("max_stream_bytes"),
        "{message}"
    );

    assert!(
        stored_lines(&server, &scene).await.is_empty(),
        "nothing is stored"
    );
    scene_still_chats(&server, &scene, &lin, 0).await;

    let pid = server.pid().expect("server running");
    let peak = peak_rss(pid);
    eprintln!("server peak RSS: {} MiB", peak / MIB as u64);
    assert!(
        peak < 400 * MIB as u64,
        "server peak RSS {} MiB",
        peak / MIB as u64
    );
}

/// A `complete()` answer of 20 MiB, and a stream whose final `done` carries 20 MiB: both fail
/// at the 4 MiB reply cap with a clear error, and nothing is stored.
#[tokio::test]
async fn an_oversized_reply_fails_and_nothing_is_stored() {
    let story = model(None, None).await;
    let server = server(&story.base, None, "").await;
    let (scene, lin, _) = harbour_scene(&server).await;
    use_provider(&server, "chaos", "flood-complete:20").await;

    let (status, body) = server
        .post("/api/chat", &chat_body(&scene, &lin, "Tell me everything."))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["message"], "生成回应失败");
    let details = error_details(&body);
    assert!(
        details.contains("plugin chaos returned a reply larger than 4194304 bytes")
            && details.contains("max_reply_bytes"),
        "{details}"
    );
    assert!(body.to_string().len() < 64 * 1024, "the error is small");

    let message = error_message(&read_frames(stream_chat(&server, &scene, &lin).await).await);
    assert!(
        message.contains("returned a reply larger than 4194304 bytes"),
        "{message}"
    );
    assert!(stored_lines(&server, &scene).await.is_empty());
    scene_still_chats(&server, &scene, &lin, 0).await;
}

/// 5000 one-byte deltas against `max_stream_events = 1000`: the turn fails after 1000 and
/// nothing is stored.
#[tokio::test]
async fn a_stream_of_too_many_events_is_cut() {
    let story = model(None, None).await;
    let server = server(&story.base, None, "[limits]\nmax_stream_events = 1000").await;
    let (scene, lin, _) = harbour_scene(&server).await;
    use_provider(&server, "chaos", "events:5000").await;

    let frames = read_frames(stream_chat(&server, &scene, &lin).await).await;
    let deltas = frames.iter().filter(|f| f.event == "delta").count();
    assert_eq!(deltas, 1000, "deltas up to the cap reach the client");
    let message = error_message(&frames);
    assert!(
        message.contains("plugin chaos streamed more than 1000 events (limits.max_stream_events)"),
        "{message}"
    );
    assert!(stored_lines(&server, &scene).await.is_empty());

    // Within the cap the same plugin streams normally.
    use_provider(&server, "chaos", "events:500").await;
    let frames = read_frames(stream_chat(&server, &scene, &lin).await).await;
    assert!(frames.iter().any(|f| f.event == "done"), "{frames:?}");
    assert_eq!(stored_lines(&server, &scene).await.len(), 2);
}

/// A fake whose `/slow` answer takes `slow` in all (two chunks), and whose other paths answer
/// at once.
async fn slow_vendor(slow: Duration) -> FakeVendor {
    FakeVendor::start(move |req| {
        if req.path == "/slow" {
            Reply {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                chunks: vec![b"s".to_vec(), b"low".to_vec()],
                chunk_delay: slow / 2,
            }
        } else {
            Reply::text(200, "fast")
        }
    })
    .await
}

/// A stream whose next event takes 6 s, with `stream_idle_timeout_ms = 1000`: the turn fails
/// with the idle timeout named, and nothing is stored. Events that come in time pass.
#[tokio::test]
async fn a_stalled_stream_fails_at_the_idle_timeout() {
    let story = model(None, None).await;
    let vendor = slow_vendor(Duration::from_secs(6)).await;
    let server = server(
        &story.base,
        Some(&vendor.base),
        "[limits]\nstream_idle_timeout_ms = 1000",
    )
    .await;
    let (scene, lin, _) = harbour_scene(&server).await;

    use_provider(
        &server,
        "chaos",
        &format!("stream-fetch:{}/fast:3", vendor.base),
    )
    .await;
    let frames_ok = read_frames(stream_chat(&server, &scene, &lin).await).await;
    assert!(frames_ok.iter().any(|f| f.event == "done"), "{frames_ok:?}");
    assert_eq!(stored_lines(&server, &scene).await.len(), 2);

    use_provider(
        &server,
        "chaos",
        &format!("stream-fetch:{}/slow:3", vendor.base),
    )
    .await;
    let message = error_message(&read_frames(stream_chat(&server, &scene, &lin).await).await);
    assert!(
        message.contains("plugin chaos sent no stream event for 1000 ms")
            && message.contains("stream_idle_timeout_ms"),
        "{message}"
    );
    assert_eq!(
        stored_lines(&server, &scene).await.len(),
        2,
        "the failed turn stored nothing"
    );
}

/// With a pool of 4 and `max_instances_per_plugin = 2`, four chat streams stalled in `chaos`
/// hold only its two places (the other two fail as busy) and a chat on `openai` still runs.
#[tokio::test]
async fn a_plugin_holding_its_share_does_not_starve_another() {
    let story = model(None, None).await;
    let vendor = slow_vendor(Duration::from_secs(40)).await;
    let server = server(
        &story.base,
        Some(&vendor.base),
        "[limits]\nmax_instances = 4\nmax_instances_per_plugin = 2\nqueue_timeout_ms = 2000",
    )
    .await;
    let (scene, lin, _) = harbour_scene(&server).await;
    use_provider(
        &server,
        "chaos",
        &format!("stream-fetch:{}/slow:1", vendor.base),
    )
    .await;

    let server = std::sync::Arc::new(server);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let server = server.clone();
        let (scene, lin) = (scene.clone(), lin.clone());
        stalled.push(tokio::spawn(async move {
            let response = stream_chat(&server, &scene, &lin).await;
            if response.status() == 200 {
                // A stalled stream: kept open until the test ends.
                Ok(response)
            } else {
                let status = response.status().as_u16();
                Err((status, response.text().await.unwrap_or_default()))
            }
        }));
    }
    // Two streams reach the slow vendor: they hold chaos's two places.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while vendor
        .requests()
        .iter()
        .filter(|r| r.path == "/slow")
        .count()
        < 2
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two stalled streams within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Two more chaos turns find chaos's share full and fail as busy (after the queue wait).
    let mut open = Vec::new();
    let mut busy = 0;
    for handle in stalled {
        let outcome = tokio::time::timeout(Duration::from_secs(20), handle)
            .await
            .expect("each turn answers its head within 20 s")
            .expect("join");
        match outcome {
            Ok(response) => open.push(response),
            Err((status, text)) => {
                assert_eq!(status, 500, "{text}");
                assert!(text.contains("plugin chaos is busy: 2 calls"), "{text}");
                busy += 1;
            }
        }
    }
    assert_eq!((open.len(), busy), (2, 2));

    // The two chaos streams still stall; openai answers all the same.
    assert_eq!(
        vendor
            .requests()
            .iter()
            .filter(|r| r.path == "/slow")
            .count(),
        2
    );
    use_provider(&server, "openai", "gpt-4o").await;
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(20),
        server.post(
            "/api/chat",
            &chat_body(&scene, &lin, "Were you at the lighthouse?"),
        ),
    )
    .await
    .expect("openai answers while chaos is stalled");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["response"],
        "Lin Chen says: I saw nothing at the lighthouse."
    );
    drop(open);
}

/// `max_response_bytes` holds per HTTP request for a streamed body as for a whole one: a body
/// announced larger is refused before it is read, a chunked one fails once the cap is passed,
/// a smaller one reads to its end.
#[tokio::test]
async fn streamed_response_bodies_are_capped_per_request() {
    let vendor = FakeVendor::start(|req| match req.path.as_str() {
        "/announced" => Reply::text(200, &"x".repeat(8192)),
        "/chunked" => Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            chunks: vec![vec![b'x'; 2048]; 4],
            chunk_delay: Duration::from_millis(1),
        },
        _ => Reply::text(200, &"x".repeat(1000)),
    })
    .await;
    let origin = vendor.base.clone();
    let server = sceneintruder_tests::chaos_server(
        std::slice::from_ref(&origin),
        &format!(
            "[limits]\nmax_response_bytes = 4096\n[plugins.chaos]\nallow_hosts = [\"{origin}\"]"
        ),
    )
    .await;
    let probe = |path: &str| {
        let model = format!("stream-body:{origin}{path}");
        let server = &server;
        async move {
            server
                .post(
                    "/api/settings/test-connection",
                    &json!({"provider": "chaos", "llm_config": {"default_model": model}}),
                )
                .await
        }
    };
    for path in ["/announced", "/chunked"] {
        let (status, body) = probe(path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            error_details(&body).contains("vendor response larger than 4096 bytes"),
            "{path}: {body}"
        );
    }
    let (status, body) = probe("/small").await;
    assert_eq!(
        status, 200,
        "a body within the cap reads to its end: {body}"
    );
}
