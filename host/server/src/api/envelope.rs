//! The response envelope of spec/platform.md §1: `{success, data, error, message,
//! timestamp, request_id}`, built in one place.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::error::ServerError;

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The envelope's timestamp (Go's RFC3339Nano in local time).
pub fn timestamp() -> String {
    crate::time::rfc3339_nano_local()
}

/// The reference's sanitiser: any text mentioning keys, secrets or tokens is replaced.
pub fn sanitize(text: &str) -> String {
    let lower = text.to_lowercase();
    if ["api_key", "secret", "token"]
        .iter()
        .any(|word| lower.contains(word))
    {
        "An internal error occurred".to_string()
    } else {
        text.to_string()
    }
}

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    details: String,
}

#[derive(Serialize)]
struct Body {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<Value>,
}

/// A successful response.
pub struct Ok {
    status: StatusCode,
    data: Option<Value>,
    message: Option<String>,
    meta: Option<Value>,
}

impl Ok {
    pub fn data(data: impl Serialize) -> Ok {
        Ok {
            status: StatusCode::OK,
            data: Some(serde_json::to_value(data).unwrap_or(Value::Null)),
            message: None,
            meta: None,
        }
    }

    /// Success without `data` (the key is omitted, as in the reference).
    pub fn empty() -> Ok {
        Ok {
            status: StatusCode::OK,
            data: None,
            message: None,
            meta: None,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Ok {
        self.status = status;
        self
    }

    /// Pagination details, sent beside `data` (the reference's paginated envelope).
    pub fn meta(mut self, meta: Value) -> Ok {
        self.meta = Some(meta);
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Ok {
        self.message = Some(message.into());
        self
    }
}

impl IntoResponse for Ok {
    fn into_response(self) -> Response {
        let body = Body {
            success: true,
            data: self.data,
            error: None,
            message: self.message,
            timestamp: timestamp(),
            request_id: current_request_id(),
            meta: self.meta,
        };
        json_response(self.status, &body)
    }
}

/// A success whose `data` is JSON already serialised (a cached body): the envelope is
/// written around it, so the body is copied once and never parsed.
pub fn raw_data(data: &[u8], message: &str) -> Response {
    let mut out = Vec::with_capacity(data.len() + 200);
    out.extend_from_slice(br#"{"success":true,"data":"#);
    out.extend_from_slice(data);
    // Strings serialise infallibly into a Vec.
    let _ = write_field(&mut out, "message", message);
    let _ = write_field(&mut out, "timestamp", &timestamp());
    if let Some(id) = current_request_id() {
        let _ = write_field(&mut out, "request_id", &id);
    }
    out.push(b'}');
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn write_field(out: &mut Vec<u8>, name: &str, value: &str) -> serde_json::Result<()> {
    out.push(b',');
    serde_json::to_writer(&mut *out, name)?;
    out.push(b':');
    serde_json::to_writer(&mut *out, value)
}

/// Serialise with the reference's content type.
fn json_response(status: StatusCode, body: &Body) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = self.status();
        let own_text = matches!(self, ServerError::InvalidSettings { .. });
        if status.is_server_error() {
            // The unsanitised text stays in the log, tagged with the request id.
            // The request id is named here: a read's span may not be recorded.
            tracing::error!(
                code = self.code(),
                details = %self.details(),
                request_id = current_request_id().as_deref().unwrap_or(""),
                "request failed"
            );
        }
        let body = Body {
            success: false,
            data: None,
            error: Some(ErrorBody {
                code: self.code(),
                message: if own_text {
                    self.message()
                } else {
                    sanitize(&self.message())
                },
                details: if own_text {
                    self.details()
                } else {
                    sanitize(&self.details())
                },
            }),
            message: None,
            timestamp: timestamp(),
            request_id: current_request_id(),
            meta: None,
        };
        let mut response = json_response(status, &body);
        if let ServerError::PayloadTooLarge = self {
            response
                .headers_mut()
                .insert("connection", HeaderValue::from_static("close"));
        }
        response
    }
}

/// Handler result: an envelope either way.
pub type ApiResult = Result<Ok, ServerError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_trim_like_go() {
        let t = timestamp();
        assert!(t.len() >= 20, "{t}");
        if let Some(dot) = t.find('.') {
            let end = t[dot..].find(['+', '-', 'Z']).map(|i| dot + i).unwrap();
            assert!(!t[dot + 1..end].ends_with('0'), "{t}");
        }
    }

    #[test]
    fn raw_data_is_a_whole_envelope() {
        let response = raw_data(br#"{"a":[1,2]}"#, "场景数据获取成功");
        let body =
            futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
                .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["success"], true);
        assert_eq!(value["data"]["a"][1], 2);
        assert_eq!(value["message"], "场景数据获取成功");
        assert!(value["timestamp"].is_string());
    }

    #[test]
    fn sanitizer_matches_reference_rule() {
        assert_eq!(sanitize("bad api_key"), "An internal error occurred");
        assert_eq!(sanitize("Max TOKENS"), "An internal error occurred");
        assert_eq!(sanitize("plain failure"), "plain failure");
    }
}
