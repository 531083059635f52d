//! The job engine through the real binary: SSE progress, cancel, restart recovery and
//! fan-out, using the built-in `diagnostics.countdown` job (steps, then one side effect).

use std::time::{Duration, Instant};

use sceneintruder_store::Database;
use sceneintruder_tests::sse::{Frame, SseReader};
use sceneintruder_tests::{Backend, Server, ServerBuilder, backends, decode};
use serde_json::{Value, json};

async fn server(backend: Backend, extra: &str) -> Server {
    ServerBuilder::new(backend)
        .config(&format!("[jobs]\ndiagnostics = true\n{extra}"))
        .start()
        .await
}

async fn submit(server: &Server, input: Value) -> String {
    let (status, body) = server.post("/api/jobs/diagnostics", &input).await;
    assert_eq!(status, 202, "{body}");
    body["data"]["task_id"]
        .as_str()
        .expect("task_id")
        .to_string()
}

async fn subscribe(server: &Server, task: &str, last_event_id: Option<&str>) -> SseReader {
    let mut request = server
        .http
        .get(server.url(&format!("/api/progress/{task}")))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("progress");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/event-stream"))
    );
    SseReader::new(response)
}

async fn marker(server: &Server, task: &str) -> Option<String> {
    let db = Database::connect(&server.database_url()).await.expect("db");
    let value = db
        .meta()
        .get(&format!("diagnostics:{task}"))
        .await
        .expect("meta");
    db.close().await;
    value
}

async fn job(server: &Server, task: &str) -> Value {
    let (status, body) = server.get(&format!("/api/jobs/{task}")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

/// Wait until the job's state satisfies `done`, polling `GET /api/jobs/{id}`.
async fn wait_for(
    server: &Server,
    task: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let current = job(server, task).await;
        if done(&current) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "job never reached the expected state: {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn progress_frames(frames: &[Frame]) -> Vec<&Frame> {
    frames.iter().filter(|f| f.event == "progress").collect()
}

#[tokio::test]
async fn progress_stream_is_monotonic_and_ends_with_the_result() {
    for backend in backends() {
        let server = server(backend, "").await;
        let task = submit(&server, json!({"steps": 5, "step_ms": 80})).await;
        let frames = subscribe(&server, &task, None).await.collect().await;

        assert_eq!(frames[0].event, "connected", "{frames:?}");
        assert_eq!(frames[0].data["message"], "连接已建立");
        let progress = progress_frames(&frames);
        assert!(progress.len() >= 2, "{frames:?}");
        assert_eq!(progress[0].data["event_type"], "progress");
        let mut last = 0;
        for f in &progress {
            let p = f.data["progress"].as_u64().expect("progress");
            assert!(p >= last, "progress went backwards: {frames:?}");
            last = p;
            assert!(f.id.is_some(), "frames carry ids for Last-Event-ID");
        }
        let terminal = progress.last().expect("terminal");
        assert_eq!(terminal.data["status"], "completed", "{frames:?}");
        assert_eq!(terminal.data["event_type"], "completed");
        assert_eq!(terminal.data["progress"], 100);
        let key = format!("diagnostics:{task}");
        assert_eq!(terminal.data["result"]["marker"], key.as_str());
        assert_eq!(
            terminal.data["marker"],
            key.as_str(),
            "result ids at the top level"
        );
        assert_eq!(frames.last().map(|f| f.event.as_str()), Some("progress"));
        assert_eq!(marker(&server, &task).await.as_deref(), Some("attempt 1"));

        // A finished job: the snapshot is the terminal frame, then the stream closes.
        let again = subscribe(&server, &task, None).await.collect().await;
        let progress = progress_frames(&again);
        assert_eq!(progress.len(), 1, "{again:?}");
        assert_eq!(progress[0].data["status"], "completed");
        assert_eq!(
            progress[0].data["event_type"], "progress",
            "first frame is a snapshot"
        );

        // Last-Event-ID: resuming from the last frame sends nothing new.
        let last_id = terminal.id.clone().expect("id");
        let resumed = subscribe(&server, &task, Some(&last_id))
            .await
            .collect()
            .await;
        assert!(resumed.is_empty(), "{resumed:?}");
        let earlier = progress_frames(&frames)[0].id.clone().expect("id");
        let resumed = subscribe(&server, &task, Some(&earlier))
            .await
            .collect()
            .await;
        assert_eq!(
            resumed.len(),
            1,
            "only the current state, no connected frame: {resumed:?}"
        );
        assert_eq!(resumed[0].data["status"], "completed");
    }
}

#[tokio::test]
async fn failures_and_unknown_tasks() {
    let server = server(Backend::Sqlite, "").await;
    let task = submit(
        &server,
        json!({"steps": 1, "step_ms": 10, "fail_with": "boom"}),
    )
    .await;
    let frames = subscribe(&server, &task, None).await.collect().await;
    let terminal = progress_frames(&frames)
        .last()
        .cloned()
        .cloned()
        .expect("terminal");
    assert_eq!(terminal.data["status"], "failed");
    assert_eq!(terminal.data["event_type"], "failed");
    assert_eq!(terminal.data["message"], "任务失败: boom");
    assert_eq!(marker(&server, &task).await, None);

    // Unknown task: JSON 404, or a single failed frame for an SSE client.
    for id in ["task_nope", "..%2Fetc", &"x".repeat(300)] {
        let (status, body) = server.get(&format!("/api/progress/{id}")).await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["error"]["code"], "TASK_NOT_FOUND");
    }
    let frames = subscribe(&server, "task_nope", None).await.collect().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].event, "progress");
    assert_eq!(frames[0].data["event_type"], "task_not_found");
    assert_eq!(frames[0].data["status"], "failed");

    let (status, body) = server.post("/api/cancel/task_nope", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "TASK_NOT_FOUND");
    let (status, body) = server.get("/api/jobs/task_nope").await;
    assert_eq!(status, 404, "{body}");

    // Bad input is refused before anything is queued.
    let (status, body) = server
        .post("/api/jobs/diagnostics", &json!({"steps": 0, "step_ms": 1}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .post("/api/jobs/diagnostics", &json!({"steps": "x"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn cancel_stops_the_work_and_its_side_effect_never_happens() {
    for backend in backends() {
        let server = server(backend, "").await;
        let task = submit(&server, json!({"steps": 20, "step_ms": 100})).await;
        let mut stream = subscribe(&server, &task, None).await;
        // Wait until it is really running.
        loop {
            let frame = stream.next().await.expect("frame");
            if frame.event == "progress" && frame.data["progress"].as_u64() > Some(0) {
                break;
            }
        }
        let (status, body) = server
            .post(&format!("/api/cancel/{task}"), &json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "任务已取消");
        assert!(body.get("data").is_none());

        let rest = stream.collect().await;
        let terminal = progress_frames(&rest)
            .last()
            .cloned()
            .cloned()
            .expect("terminal frame");
        assert_eq!(terminal.data["status"], "failed", "{rest:?}");
        assert_eq!(terminal.data["state"], "cancelled");
        assert_eq!(terminal.data["message"], "任务失败: 用户取消了任务");

        // Longer than the job would have needed: it never completes, never writes.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let state = job(&server, &task).await;
        assert_eq!(state["state"], "cancelled", "{state}");
        assert_eq!(state["result"], Value::Null);
        assert_eq!(
            marker(&server, &task).await,
            None,
            "the side effect happened"
        );

        // Cancelling a finished job leaves it as it is.
        let (status, body) = server
            .post(&format!("/api/cancel/{task}"), &json!({}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["message"], "任务已标记为取消");
        let done = submit(&server, json!({"steps": 1, "step_ms": 1})).await;
        wait_for(&server, &done, Duration::from_secs(10), |j| {
            j["state"] == "completed"
        })
        .await;
        server
            .post(&format!("/api/cancel/{done}"), &json!({}))
            .await;
        assert_eq!(job(&server, &done).await["state"], "completed");
    }
}

#[tokio::test]
async fn a_job_interrupted_by_a_crash_is_failed_or_resumed() {
    for backend in backends() {
        let mut server = server(backend, "lease_ms = 1000").await;
        let plain = submit(&server, json!({"steps": 100, "step_ms": 100})).await;
        let resumable = submit(
            &server,
            json!({"steps": 10, "step_ms": 100, "resumable": true}),
        )
        .await;
        wait_for(&server, &plain, Duration::from_secs(10), |j| {
            j["progress"].as_u64() > Some(0)
        })
        .await;
        wait_for(&server, &resumable, Duration::from_secs(10), |j| {
            j["progress"].as_u64() > Some(0)
        })
        .await;
        assert_eq!(job(&server, &plain).await["state"], "running");

        server.kill();
        server.start_again().await;

        let failed = wait_for(&server, &plain, Duration::from_secs(15), |j| {
            j["state"] != "running"
        })
        .await;
        assert_eq!(failed["state"], "failed", "{failed}");
        assert!(
            failed["message"]
                .as_str()
                .is_some_and(|m| m.contains("服务器重启")),
            "{failed}"
        );
        let resumed = wait_for(&server, &resumable, Duration::from_secs(20), |j| {
            j["state"] == "completed" || j["state"] == "failed"
        })
        .await;
        assert_eq!(resumed["state"], "completed", "{resumed}");
        assert_eq!(resumed["attempts"], 2, "{resumed}");
        assert_eq!(
            marker(&server, &resumable).await.as_deref(),
            Some("attempt 2")
        );
        assert_eq!(marker(&server, &plain).await, None);
    }
}

#[tokio::test]
async fn two_hundred_subscribers_all_get_the_terminal_frame() {
    let server = server(Backend::Sqlite, "").await;
    let task = submit(&server, json!({"steps": 10, "step_ms": 150})).await;
    let subscribers = (0..200).map(|_| async {
        let frames = subscribe(&server, &task, None).await.collect().await;
        progress_frames(&frames)
            .last()
            .map(|f| f.data["status"].as_str().unwrap_or_default().to_string())
    });
    let ends = futures::future::join_all(subscribers).await;
    let completed = ends
        .iter()
        .filter(|e| e.as_deref() == Some("completed"))
        .count();
    assert_eq!(completed, 200, "{ends:?}");
}

#[tokio::test]
async fn heartbeats_keep_quiet_streams_alive() {
    let server = server(Backend::Sqlite, "[realtime]\nsse_heartbeat_ms = 150").await;
    let task = submit(&server, json!({"steps": 2, "step_ms": 500})).await;
    let frames = subscribe(&server, &task, None).await.collect().await;
    let beats: Vec<&Frame> = frames.iter().filter(|f| f.event == "heartbeat").collect();
    assert!(beats.len() >= 2, "{frames:?}");
    assert!(beats[0].data["time"].is_i64(), "{:?}", beats[0]);
    let response = server
        .http
        .get(server.url(&format!("/api/jobs/{task}")))
        .send()
        .await
        .expect("job");
    let (_, body) = decode(response).await;
    assert_eq!(body["data"]["state"], "completed");
}
