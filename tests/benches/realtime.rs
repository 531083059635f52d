//! Realtime benchmarks against the real (release) binary, `cargo xtask bench`:
//! - `jobs/submit_to_start`: from `POST /api/jobs/diagnostics` to the job running (its first
//!   `running` progress frame seen by a subscriber);
//! - `sse/fanout/N`: from a job's completion (its `finished_at`) to the last of N
//!   subscribers receiving the terminal frame.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sceneintruder_tests::sse::SseReader;
use sceneintruder_tests::{Backend, Server, ServerBuilder};
use serde_json::json;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn submit(server: &Server, steps: u32, step_ms: u64) -> String {
    let (status, body) = server
        .post(
            "/api/jobs/diagnostics",
            &json!({"steps": steps, "step_ms": step_ms}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["data"]["task_id"]
        .as_str()
        .expect("task id")
        .to_string()
}

async fn subscribe(server: &Server, task: &str) -> SseReader {
    let response = server
        .http
        .get(server.url(&format!("/api/progress/{task}")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("subscribe");
    SseReader::new(response)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let server = rt.block_on(
        ServerBuilder::new(Backend::Sqlite)
            .config("[jobs]\ndiagnostics = true\npoll_ms = 1000\n[rate_limits]\ndefault = { limit = 100000000, window_secs = 60 }")
            .start(),
    );

    c.bench_function("jobs/submit_to_start", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = &server;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = std::time::Instant::now();
                    let task = submit(server, 1, 0).await;
                    let mut stream = subscribe(server, &task).await;
                    while let Some(frame) = stream.next().await {
                        if frame.event == "progress" && frame.data["state"] != "queued" {
                            break;
                        }
                    }
                    total += started.elapsed();
                }
                total
            }
        })
    });

    let mut group = c.benchmark_group("sse/fanout");
    group.sample_size(10);
    for subscribers in [1usize, 50, 200] {
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &n| {
                b.to_async(&rt).iter_custom(|iters| {
                    let server = &server;
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let task = submit(server, 1, 300).await;
                            let mut readers = Vec::new();
                            for _ in 0..n {
                                let mut reader = subscribe(server, &task).await;
                                reader.next().await.expect("connected");
                                readers.push(reader);
                            }
                            let arrivals = futures::future::join_all(readers.into_iter().map(
                                |mut reader| async move {
                                    while let Some(frame) = reader.next().await {
                                        if frame.data["status"] == "completed" {
                                            return now_ms();
                                        }
                                    }
                                    f64::NAN
                                },
                            ))
                            .await;
                            let (_, job) = server.get(&format!("/api/jobs/{task}")).await;
                            let finished =
                                job["data"]["finished_at"].as_f64().expect("finished_at");
                            let last = arrivals.iter().copied().fold(f64::MIN, f64::max);
                            total += Duration::from_secs_f64(((last - finished) / 1000.0).max(0.0));
                        }
                        total
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(realtime, benches);
criterion_main!(realtime);
