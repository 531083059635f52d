//! Job progress as the reference's SSE stream (spec/scenes.md §7.3), with the improvements
//! that keep clients working: the first `progress` frame is the current snapshot, the
//! terminal frame carries the result, nothing is lost to a slow subscriber (state is
//! re-read from the database on lag), and `Last-Event-ID` resumes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, Sse};
use futures::Stream;
use sceneintruder_store::{Job, JobState};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::bus::{Event, EventBus};
use crate::jobs::JobEngine;

/// Seconds between `heartbeat` frames (the reference's 15 s unless configured).
pub const DEFAULT_HEARTBEAT_MS: u64 = 15_000;

pub const TASK_NOT_FOUND_MESSAGE: &str = "任务不存在（可能已完成并被清理或服务已重启）";

/// The ProgressUpdate payload (§2.10) of a job.
pub fn payload(job: &Job, first: bool) -> Value {
    let (status, event_type) = match job.state {
        JobState::Queued | JobState::Running => ("running", "progress"),
        JobState::Completed => ("completed", "completed"),
        JobState::Failed | JobState::Cancelled => ("failed", "failed"),
    };
    let mut map = Map::new();
    map.insert("progress".into(), json!(job.progress));
    map.insert("message".into(), json!(job.message));
    map.insert("status".into(), json!(status));
    // The reference's first frame is always a `progress` event type.
    map.insert(
        "event_type".into(),
        json!(if first { "progress" } else { event_type }),
    );
    map.insert("task_id".into(), json!(job.id));
    map.insert("state".into(), json!(job.state));
    if let Some(result) = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
    {
        // Result ids (e.g. `scene_id`) also at the top level, where clients look first.
        if let Value::Object(fields) = &result {
            for (k, v) in fields {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        map.insert("result".into(), result);
    }
    if let Some(error) = &job.error {
        map.insert("error".into(), json!(error));
    }
    Value::Object(map)
}

fn frame(job: &Job, first: bool) -> SseEvent {
    SseEvent::default()
        .event("progress")
        .id(job.version.to_string())
        .data(payload(job, first).to_string())
}

/// The one frame answered for an unknown task to a client that asked for SSE.
pub fn not_found_stream() -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let data = json!({
        "event_type": "task_not_found",
        "message": format!("{TASK_NOT_FOUND_MESSAGE}，请重新发起任务"),
        "progress": 0,
        "status": "failed",
    });
    let event = SseEvent::default().event("progress").data(data.to_string());
    Sse::new(futures::stream::iter([Ok(event)]))
}

/// Stream a known job until its terminal frame or the client goes away.
pub fn job_stream(
    engine: Arc<JobEngine>,
    bus: Arc<dyn EventBus>,
    job: Job,
    last_event_id: Option<i64>,
    heartbeat: Duration,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let (tx, rx) = mpsc::channel::<SseEvent>(16);
    // Subscribe before anything is sent, so no change between snapshot and stream is missed.
    let events = bus.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            _ = pump(engine, events, job, last_event_id, heartbeat, tx) => {}
            // Open streams must not hold up a graceful shutdown.
            _ = shutdown.cancelled() => {}
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Sse::new(stream)
}

/// Feeds one subscriber. Ends when the job is terminal (after sending it) or the client
/// disconnects (the send fails).
async fn pump(
    engine: Arc<JobEngine>,
    mut events: broadcast::Receiver<Event>,
    snapshot: Job,
    last_event_id: Option<i64>,
    heartbeat: Duration,
    tx: mpsc::Sender<SseEvent>,
) {
    let id = snapshot.id.clone();
    if last_event_id.is_none() {
        let connected = SseEvent::default()
            .event("connected")
            .data(json!({"message": "连接已建立"}).to_string());
        if tx.send(connected).await.is_err() {
            return;
        }
    }
    let mut sent_version = last_event_id.unwrap_or(i64::MIN);
    let mut sent_progress = 0u8;
    let mut first = true;
    let mut current = snapshot;
    // The snapshot was read before we subscribed: catch up with anything in between.
    if let Ok(Some(job)) = engine.get(&id).await
        && job.version > current.version
    {
        current = job;
    }
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.tick().await;
    loop {
        if current.version > sent_version {
            // Progress never goes backwards on the wire, whatever order events arrive in.
            sent_progress = sent_progress.max(current.progress);
            let mut shown = current.clone();
            shown.progress = if shown.state == JobState::Completed {
                100
            } else {
                sent_progress
            };
            if tx.send(frame(&shown, first)).await.is_err() {
                return;
            }
            sent_version = current.version;
            first = false;
        }
        if current.state.is_terminal() {
            return;
        }
        let next = tokio::select! {
            event = events.recv() => match event {
                Ok(Event::Job(job)) if job.id == id => Some((*job).clone()),
                Ok(_) => None,
                // Lagged: re-read the truth; closed: the server is stopping.
                Err(broadcast::error::RecvError::Lagged(_)) => match engine.get(&id).await {
                    Ok(Some(job)) => Some(job),
                    _ => None,
                },
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick() => {
                let beat = SseEvent::default()
                    .event("heartbeat")
                    .data(json!({"time": chrono::Utc::now().timestamp()}).to_string());
                if tx.send(beat).await.is_err() {
                    return;
                }
                // Belt and braces: a missed event cannot stall the stream for long.
                engine.get(&id).await.ok().flatten()
            }
            _ = tx.closed() => return,
        };
        if let Some(job) = next
            && job.version > current.version
        {
            current = job;
        }
    }
}
