//! Slow and oversized requests through the real binary (issue 22 §2): clients that send
//! headers a byte at a time or stall in the middle of a body are cut off, a connection over
//! `[http] max_connections` gets a clear refusal, an oversized upload is refused before it
//! is read, uploads read at once are capped, and the open-files limit is raised at start.
//!
//! Raw sockets (tokio `TcpStream`) stand in for the misbehaving clients. Deadlines are
//! generous: every assertion is about an outcome, never about speed.

use std::time::Duration;

use sceneintruder_tests::{Backend, Server, ServerBuilder, decode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// `127.0.0.1:PORT` of a running server.
fn addr(server: &Server) -> String {
    server
        .base
        .strip_prefix("http://")
        .expect("http base")
        .to_string()
}

/// A response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Value,
}

/// The first complete response on `stream` (status line, headers, `Content-Length` body),
/// or `None` if none arrived by `deadline`.
async fn read_response(stream: &mut TcpStream, deadline: Instant) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(response) = parse_response(&buf) {
            return Some(response);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            // End of stream, a reset, or the deadline: whatever arrived is all there is.
            _ => return parse_response(&buf),
        }
    }
}

fn parse_response(buf: &[u8]) -> Option<RawResponse> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let body = buf.get(end + 4..end + 4 + length)?;
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    Some(RawResponse { status, head, body })
}

/// Whether the server closes `stream` by `deadline` (end of stream or a reset); anything it
/// answers first is read and dropped.
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> bool {
    let mut chunk = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// `/api/config/health` answers 200 within a few seconds.
async fn health_answers(server: &Server) -> bool {
    let request = server.http.get(server.url("/api/config/health")).send();
    match timeout(Duration::from_secs(5), request).await {
        Ok(Ok(response)) => response.status() == 200,
        _ => false,
    }
}

/// Connect and send a request line and headers one byte at a time, never finishing them;
/// returns whether the server closed the connection by `deadline`.
async fn trickle_headers(addr: String, deadline: Instant) -> bool {
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        // Refused outright counts as cut off.
        return true;
    };
    let start = b"GET /api/config/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    let mut chunk = [0u8; 1024];
    for i in 0.. {
        if Instant::now() >= deadline {
            return false;
        }
        let byte = start.get(i).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).await.is_err() {
            return true;
        }
        match timeout(Duration::from_millis(100), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    false
}

#[tokio::test]
async fn slow_headers_are_cut_off_while_health_keeps_answering() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[http]\nheader_read_timeout_secs = 1")
        .start()
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let slow: Vec<_> = (0..100)
        .map(|_| tokio::spawn(trickle_headers(addr(&server), deadline)))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        assert!(
            health_answers(&server).await,
            "health did not answer while slow clients were connected"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut open = 0;
    for task in slow {
        if !task.await.expect("join") {
            open += 1;
        }
    }
    assert_eq!(
        open, 0,
        "{open} of 100 connections sending headers a byte at a time were still open after 20 s \
         with header_read_timeout_secs = 1"
    );
    assert!(health_answers(&server).await);
}

/// Send `head` and the first bytes of a body whose `Content-Length` promises more, then stop.
async fn stall_body(addr: &str, head: &str, partial: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(partial).await.expect("send partial body");
    stream
}

/// Uploads count against `[rate_limits] analysis` (10 an hour by default); these tests send
/// more than that.
const GENEROUS_UPLOAD_RATE: &str = "[rate_limits]\nanalysis = { limit = 10000, window_secs = 60 }";

const BOUNDARY: &str = "slowrequestsboundary";

/// Head of a multipart upload of one `file` part named `name` whose content is `size` bytes.
fn upload_head(name: &str, size: usize) -> (String, String) {
    let part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let length = part.len() + size + tail.len();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    );
    (head, part)
}

#[tokio::test]
async fn stalled_bodies_are_cut_off() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[http]\nbody_read_timeout_secs = 1")
        .config(GENEROUS_UPLOAD_RATE)
        .start()
        .await;
    let addr = addr(&server);
    let mut stalled = vec![
        stall_body(
            &addr,
            "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
            b"{\"username\":",
        )
        .await,
    ];
    for _ in 0..5 {
        let (head, part) = upload_head("story.txt", 100_000);
        let mut partial = part.into_bytes();
        partial.extend_from_slice(&[b'x'; 1000]);
        stalled.push(stall_body(&addr, &head, &partial).await);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for (i, stream) in stalled.iter_mut().enumerate() {
        assert!(
            closed_by(stream, deadline).await,
            "stalled request {i} was still open 15 s later with body_read_timeout_secs = 1"
        );
    }
    // The upload slots the stalled uploads held are free again.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"A quiet harbour.".to_vec()).file_name("a.txt"),
    );
    let response = server
        .http
        .post(server.url("/api/upload"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let (status, body) = decode(response).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn connections_over_the_cap_get_a_clear_refusal() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[http]\nmax_connections = 20")
        .start()
        .await;
    let addr = addr(&server);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // Connections are accepted in order: once these 20 hold their slots the next is over.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut extra = TcpStream::connect(&addr).await.expect("connect");
    // The refusal may come before the request is written; either way it must be readable.
    let _ = extra
        .write_all(b"GET /api/config/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let response = read_response(&mut extra, Instant::now() + Duration::from_secs(10))
        .await
        .expect("the 21st connection got an answer");
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.body["success"], false, "{response:?}");
    assert_eq!(
        response.body["error"]["code"], "TOO_MANY_CONNECTIONS",
        "{response:?}"
    );
    let details = response.body["error"]["details"].as_str().unwrap_or("");
    assert!(details.contains("max_connections"), "{response:?}");
    assert!(
        closed_by(&mut extra, Instant::now() + Duration::from_secs(10)).await,
        "the refused connection was left open"
    );

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if health_answers(&server).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health did not answer after the held connections closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_oversized_upload_is_refused_before_it_is_read() {
    // Default limits: body_limit_bytes is 10 MiB.
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    let addr = addr(&server);

    // Declared over the body limit: 413 in the envelope after 64 KiB of 10 MiB were sent.
    let (head, part) = upload_head("story.txt", 10 << 20);
    let mut sent = part.into_bytes();
    sent.extend_from_slice(&vec![b'x'; 64 << 10]);
    let mut stream = stall_body(&addr, &head, &sent).await;
    let response = read_response(&mut stream, Instant::now() + Duration::from_secs(10))
        .await
        .expect("an answer before the body was sent");
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(response.body["success"], false, "{response:?}");
    assert_eq!(
        response.body["error"]["code"], "PAYLOAD_TOO_LARGE",
        "{response:?}"
    );
    assert!(
        closed_by(&mut stream, Instant::now() + Duration::from_secs(10)).await,
        "the connection of the refused body stays open"
    );

    // Declared within the limit, but a text file over its 1 MB: refused once the server has
    // read past 1 MB, while 3 of the 5 MiB promised are still to come.
    let (head, part) = upload_head("story.txt", 5 << 20);
    let mut sent = part.into_bytes();
    sent.extend_from_slice(&vec![b'x'; 1_200_000]);
    let mut stream = stall_body(&addr, &head, &sent).await;
    let response = read_response(&mut stream, Instant::now() + Duration::from_secs(10))
        .await
        .expect("an answer before the body was sent");
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(
        response.body["error"]["message"], "文件内容过大",
        "{response:?}"
    );
    assert!(
        response
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{response:?}"
    );
    assert!(health_answers(&server).await);
}

#[tokio::test]
async fn uploads_read_at_once_are_capped() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[http]\nmax_concurrent_uploads = 2")
        .config(GENEROUS_UPLOAD_RATE)
        .start()
        .await;
    let addr = addr(&server);
    let upload = || async {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(b"A quiet harbour.".to_vec()).file_name("a.txt"),
        );
        let response = server
            .http
            .post(server.url("/api/upload"))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        (
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            decode(response).await,
        )
    };
    let (_, (status, body)) = upload().await;
    assert_eq!(status, 200, "{body}");

    // Two uploads that stall half-way hold both slots (the body timeout is 30 s). One at a
    // time, each checked to be still waiting rather than answered.
    let mut stalled = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stalled.len() < 2 {
        assert!(Instant::now() < deadline, "cannot get two uploads stalled");
        let (head, part) = upload_head("story.txt", 100_000);
        let mut partial = part.into_bytes();
        partial.extend_from_slice(&[b'x'; 1000]);
        let mut stream = stall_body(&addr, &head, &partial).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut byte = [0u8; 1];
        if timeout(Duration::from_millis(50), stream.read(&mut byte))
            .await
            .is_err()
        {
            stalled.push(stream);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let (retry_after, body) = loop {
        let (retry_after, (status, body)) = upload().await;
        if status == 429 {
            break (retry_after, body);
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "a third upload was still accepted 10 s after two others stalled with \
             max_concurrent_uploads = 2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED", "{body}");
    assert!(
        sceneintruder_tests::error_details(&body).contains("max_concurrent_uploads"),
        "{body}"
    );
    assert!(retry_after.is_some(), "429 without Retry-After: {body}");

    // The slots come back when the stalled clients go away.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, (status, body)) = upload().await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(
            Instant::now() < deadline,
            "uploads were still refused after the stalled ones went away: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn idle_connections_close_but_requests_in_progress_do_not() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[http]\nidle_timeout_secs = 1\nheader_read_timeout_secs = 1")
        .config("[jobs]\ndiagnostics = true")
        .start()
        .await;
    let addr = addr(&server);
    let deadline = Instant::now() + Duration::from_secs(10);

    // Connected and silent.
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    // Kept alive after an answered request.
    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    kept.write_all(b"GET /api/config/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send");
    let response = read_response(&mut kept, deadline).await.expect("health");
    assert_eq!(response.status, 200, "{response:?}");

    // A progress stream open for about 3 s, far past both timeouts, runs to its end.
    let (status, body) = server
        .post(
            "/api/jobs/diagnostics",
            &serde_json::json!({"steps": 3, "step_ms": 1000}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let task = body["data"]["task_id"].as_str().expect("task_id");
    let (_, last) = server.progress_until_done(task).await;
    assert_eq!(last["status"], "completed", "{last}");

    assert!(
        closed_by(&mut silent, deadline).await,
        "a silent connection stayed open with idle_timeout_secs = 1"
    );
    assert!(
        closed_by(&mut kept, deadline).await,
        "an idle keep-alive connection stayed open with idle_timeout_secs = 1"
    );
}

/// `(soft, hard)` "Max open files" of a process, from `/proc/<pid>/limits`; `None` when
/// unreadable or unlimited.
#[cfg(target_os = "linux")]
fn open_files_limit(pid: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut values = line["Max open files".len()..].split_whitespace();
    Some((values.next()?.parse().ok()?, values.next()?.parse().ok()?))
}

#[cfg(target_os = "linux")]
fn set_open_files_limit(pid: u32, soft: u64, hard: u64) -> bool {
    std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:{hard}"))
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let Some((soft, hard)) = open_files_limit("self") else {
        eprintln!("skipped: no readable, finite open-files limit");
        return;
    };
    // Start the server with a soft limit below the hard one (it inherits this process's).
    let lowered = hard / 2;
    if lowered < 1024 || !set_open_files_limit(std::process::id(), lowered, hard) {
        eprintln!("skipped: cannot lower this process's open-files limit ({soft}/{hard})");
        return;
    }
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    set_open_files_limit(std::process::id(), soft, hard);
    let pid = server.pid().expect("running").to_string();
    let (server_soft, server_hard) = open_files_limit(&pid).expect("server limits");
    assert_eq!(
        (server_soft, server_hard),
        (hard, hard),
        "started with a soft limit of {lowered}"
    );
    let log =
        std::fs::read_to_string(server.data_dir.path().join("server.log")).unwrap_or_default();
    assert!(
        log.contains("open-files limit") && log.contains(&lowered.to_string()),
        "the raise is not logged with the old value: {log}"
    );
    assert!(health_answers(&server).await);
}
