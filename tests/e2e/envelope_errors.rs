//! Issue 22 §5 through the real binary: errors that used to answer outside the envelope
//! (axum's plain-text extractor rejections, hyper's empty-bodied refusals of malformed
//! heads) answer `{success:false, error:{code, ...}}` as `application/json`, and an upload
//! over the body limit is a `413`. Raw sockets stand in for clients that send what reqwest
//! will not. SQLite is enough: no storage is involved.

use std::time::Duration;

use sceneintruder_tests::{Backend, Server, ServerBuilder};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// `body_limit_bytes` of the test server: small, so an upload over it is quick to send.
const BODY_LIMIT: usize = 64 << 10;

async fn server() -> Server {
    ServerBuilder::new(Backend::Sqlite)
        .config(&format!("body_limit_bytes = {BODY_LIMIT}"))
        .start()
        .await
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
    raw: String,
}

/// Send `request` (written whole, errors ignored: the server may stop reading early) and
/// read the answer until the server closes the connection.
async fn raw(server: &Server, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr(server)).await.expect("connect");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut read, mut write) = stream.split();
    let writer = async {
        let _ = write.write_all(request).await;
    };
    let reader = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if complete(&buf) {
                return buf;
            }
            match timeout_at(deadline, read.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return buf,
            }
        }
    };
    let ((), buf) = tokio::join!(writer, reader);
    parse(&buf)
}

/// Whether `buf` holds a whole answer with a `Content-Length` body (a keep-alive
/// connection is not closed after it).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let length = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
    });
    length.is_some_and(|length| buf.len() >= end + 4 + length)
}

fn parse(buf: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(buf).to_string();
    let Some((head, rest)) = text.split_once("\r\n\r\n") else {
        panic!("no complete answer: {text:?}");
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(rest.len());
    let body = &rest.as_bytes()[..length.min(rest.len())];
    Answer {
        status,
        content_type: header("content-type"),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        raw: text,
    }
}

/// An answer with `status` in the envelope, with a non-empty code; returns the code.
#[track_caller]
fn assert_envelope(case: &str, answer: &Answer, status: u16) -> String {
    assert_eq!(answer.status, status, "{case}: {}", answer.raw);
    assert!(
        answer.content_type.starts_with("application/json"),
        "{case}: content-type {:?}: {}",
        answer.content_type,
        answer.raw
    );
    assert_eq!(answer.body["success"], false, "{case}: {}", answer.raw);
    let code = answer.body["error"]["code"].as_str().unwrap_or_default();
    assert!(!code.is_empty(), "{case}: no error.code: {}", answer.raw);
    code.to_string()
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n")
        .into_bytes()
}

#[tokio::test]
async fn extractor_rejections_answer_the_envelope() {
    let server = server().await;

    let answer = raw(&server, &get("/api/scenes/%FF%FE", "")).await;
    let code = assert_envelope("non-UTF-8 path id", &answer, 400);
    assert_eq!(code, "BAD_REQUEST");

    let answer = raw(
        &server,
        &get("/api/llm/models?provider=openai&provider=google", ""),
    )
    .await;
    let code = assert_envelope("duplicated query key", &answer, 400);
    assert_eq!(code, "BAD_REQUEST");

    let answer = raw(&server, &get("/ws/scene/x", "")).await;
    let status = answer.status;
    assert!(matches!(status, 400 | 426), "{}", answer.raw);
    assert_envelope("WebSocket without upgrade headers", &answer, status);

    let handshake = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Origin: http://evil.example\r\n";
    let request = format!("GET /ws/scene/x HTTP/1.1\r\nHost: 127.0.0.1\r\n{handshake}\r\n");
    let answer = raw(&server, request.as_bytes()).await;
    let code = assert_envelope("WebSocket from a foreign Origin", &answer, 403);
    assert_eq!(code, "FORBIDDEN");

    let body = "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhi\r\n--x--\r\n";
    let request = format!(
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(&server, request.as_bytes()).await;
    let code = assert_envelope("multipart without a boundary", &answer, 400);
    assert_eq!(code, "BAD_REQUEST");

    // Untouched: a success, and an envelope that was one already.
    let answer = raw(&server, &get("/api/config/health", "")).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let answer = raw(&server, &get("/api/no-such-route", "")).await;
    assert_eq!(assert_envelope("unknown route", &answer, 404), "NOT_FOUND");
}

#[tokio::test]
async fn http_layer_refusals_answer_the_envelope() {
    let server = server().await;

    let header = format!("X-Big: {}\r\n", "a".repeat(1 << 20));
    let answer = raw(&server, &get("/api/config/health", &header)).await;
    let code = assert_envelope("1 MiB header", &answer, 431);
    assert_eq!(code, "HEADERS_TOO_LARGE");

    let path = format!("/api/config/health?q={}", "a".repeat(100_000));
    let answer = raw(&server, &get(&path, "")).await;
    let code = assert_envelope("100 KB URL", &answer, 414);
    assert_eq!(code, "URI_TOO_LONG");

    let request =
        b"POST /api/scenes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                    Content-Length: -1\r\nConnection: close\r\n\r\n{}";
    let answer = raw(&server, request).await;
    let code = assert_envelope("Content-Length: -1", &answer, 400);
    assert_eq!(code, "BAD_REQUEST");

    // The server still serves after each refusal.
    let answer = raw(&server, &get("/api/config/health", "")).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_a_413() {
    let server = server().await;
    let part_head = "--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\n";
    let tail = "\r\n--x--\r\n";
    let content = "a".repeat(BODY_LIMIT * 2);
    let body = format!("{part_head}{content}{tail}");

    // Declared over the limit: refused before the body is read.
    let request = format!(
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw(&server, request.as_bytes()).await;
    let code = assert_envelope("declared upload over the limit", &answer, 413);
    assert_eq!(code, "PAYLOAD_TOO_LARGE");

    // Chunked, no length declared: cut while it is read.
    let request = format!(
        "POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let answer = raw(&server, request.as_bytes()).await;
    let code = assert_envelope("chunked upload over the limit", &answer, 413);
    assert_eq!(code, "PAYLOAD_TOO_LARGE");
}
