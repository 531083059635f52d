//! Request bodies larger than `body_limit_bytes`: a declared `Content-Length` over the limit
//! is refused with `413 PAYLOAD_TOO_LARGE` before a byte of the body is read (the
//! connection is then closed); bodies without one are cut at the limit while they are read
//! (`DefaultBodyLimit`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ServerError;

/// The declared body length, when there is a readable one (hyper has already refused
/// requests whose `Content-Length` is malformed).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub async fn check_declared_length(
    State(limit): State<usize>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(length) = declared_length(req.headers())
        && length > u64::try_from(limit).unwrap_or(u64::MAX)
    {
        tracing::warn!(
            method = %req.method(),
            path = %req.uri().path(),
            length,
            limit,
            "refused a body over body_limit_bytes without reading it"
        );
        return ServerError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}
