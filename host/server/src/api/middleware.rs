//! Request id, request logging and panic handling.

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Response};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Instrument;

use super::envelope::REQUEST_ID;
use crate::error::ServerError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request slower than this is logged at info even when it succeeded.
const SLOW_REQUEST: std::time::Duration = std::time::Duration::from_millis(500);

/// A client-supplied id is kept when it is short and printable; otherwise we mint one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() < 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(String::from)
        .unwrap_or_else(new_request_id)
}

/// `req_` + a random per-process prefix + a counter: unique, and no system call per request
/// (a random UUID per request cost a `getrandom` each).
fn new_request_id() -> String {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: LazyLock<String> =
        LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "req_{}{:016x}",
        *PREFIX,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Give every request an id (envelope, `X-Request-ID` header, log lines) and log it.
///
/// Writes get an info-level span, so every line logged while they run carries the request
/// id. Reads get a debug-level one: formatting a span's fields costs about as much as
/// serving a cached read, so on hot GETs it exists only when debug logging is on; their
/// final line names the request itself.
pub async fn request_context(req: Request, next: Next) -> Response<Body> {
    let id = request_id(&req);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = if method == axum::http::Method::GET {
        tracing::debug_span!("request", request_id = %id, %method, %path)
    } else {
        tracing::info_span!("request", request_id = %id, %method, %path)
    };
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let ms = elapsed.as_secs_f64() * 1000.0;
    // A line per fast successful read would cost more than serving it; those are debug.
    // Failures, writes and slow requests stay visible at info.
    let routine = method == axum::http::Method::GET && status < 400 && elapsed < SLOW_REQUEST;
    span.in_scope(|| {
        if routine {
            tracing::debug!(status, ms, "request served");
        } else if span.is_disabled() {
            tracing::info!(request_id = %id, %method, %path, status, ms, "request served");
        } else {
            tracing::info!(status, ms, "request served");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// A handler panic becomes a 500 envelope (the reference sent an empty body).
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let text = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string());
    tracing::error!("handler panicked: {text}");
    ServerError::internal("the request handler crashed").into_response()
}

/// Most bytes of a plain-text rejection read to carry into the envelope's details.
const REJECTION_TEXT_MAX: usize = 16 << 10;

/// Rewrite an error answered outside the envelope into the envelope (issue 22 §5).
///
/// axum's own extractors (`Path`, `Query`, `WebSocketUpgrade`, `Multipart`, ...) reject with
/// a `text/plain` body; those, and error statuses with no body type at all, become
/// `{success:false, error:{code, message, details}}` with the same status, the rejection's
/// text in `details`. Anything else passes untouched: successes, `101 Switching Protocols`,
/// downloads and SSE streams (not an error status), and every envelope (`application/json`).
pub async fn envelope_rejections(req: Request, next: Next) -> Response<Body> {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = match response.headers().get(axum::http::header::CONTENT_TYPE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/plain")
        }),
    };
    if !plain {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_MAX)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let envelope = ServerError::rejection(status, text).into_response();
    let (envelope_parts, body) = envelope.into_parts();
    // Keep what the rejection said besides its body (`allow`, `connection: close`, ...).
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    for (name, value) in &envelope_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_unique_and_printable() {
        let a = super::new_request_id();
        let b = super::new_request_id();
        assert_ne!(a, b);
        assert!(a.starts_with("req_") && a.len() == 36, "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
