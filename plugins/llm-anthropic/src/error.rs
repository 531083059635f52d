//! Anthropic's error answers as typed provider errors.
//!
//! An error body is `{"type":"error","error":{"type":"<error type>","message":"..."}}`, sent
//! with an HTTP status, or inside a stream as an `error` event after a 200.

use sceneintruder_plugin_sdk::http;
use sceneintruder_plugin_sdk::types::{ProviderError, RateLimit, UpstreamError};
use serde_json::Value;

/// A non-2xx answer: the SDK's status mapping (400/404/422 bad request, 401/403 unauthorized,
/// 429 rate limited with `retry-after`, other statuses such as 500 and 529 "overloaded"
/// upstream), except 413 (`request_too_large`), which is the request's fault.
pub fn from_status(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    match http::status_error(status, headers, body) {
        ProviderError::Upstream(u) if status == 413 => ProviderError::BadRequest(u),
        other => other,
    }
}

/// The typed error for an Anthropic error type, with the status that type is documented with.
pub fn from_type(kind: &str, message: String) -> ProviderError {
    let upstream = |status| UpstreamError { status, message };
    match kind {
        "invalid_request_error" => ProviderError::BadRequest(upstream(400)),
        "not_found_error" => ProviderError::BadRequest(upstream(404)),
        "request_too_large" => ProviderError::BadRequest(upstream(413)),
        "authentication_error" => ProviderError::Unauthorized(upstream(401)),
        "permission_error" => ProviderError::Unauthorized(upstream(403)),
        "rate_limit_error" => ProviderError::RateLimited(RateLimit {
            retry_after_ms: None,
            message: upstream(429).message,
        }),
        "overloaded_error" => ProviderError::Upstream(upstream(529)),
        // `api_error` and anything new.
        _ => ProviderError::Upstream(upstream(500)),
    }
}

/// An `error` event inside a stream. Before any text it is the typed error of its type (as if
/// the vendor had answered with that status); once text has been delivered the answer is cut:
/// `stream-interrupted`, naming the type.
pub fn from_stream_event(event: &Value, raw: &str, after_text: bool) -> ProviderError {
    let error = event.get("error");
    let kind = error
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = http::error_message(raw.as_bytes());
    if after_text {
        ProviderError::StreamInterrupted(format!(
            "Anthropic stream failed after partial output ({kind}): {message}"
        ))
    } else {
        from_type(kind, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(kind: &str, message: &str) -> Vec<u8> {
        json!({"type": "error", "error": {"type": kind, "message": message}})
            .to_string()
            .into_bytes()
    }

    fn h(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    #[test]
    fn statuses() {
        let e = |status, kind, headers: &[(String, String)]| {
            from_status(status, headers, &body(kind, "the message"))
        };
        let up = |status| UpstreamError {
            status,
            message: "the message".into(),
        };
        assert_eq!(
            e(400, "invalid_request_error", &[]),
            ProviderError::BadRequest(up(400))
        );
        assert_eq!(
            e(413, "request_too_large", &[]),
            ProviderError::BadRequest(up(413))
        );
        assert_eq!(
            e(401, "authentication_error", &[]),
            ProviderError::Unauthorized(up(401))
        );
        assert_eq!(
            e(403, "permission_error", &[]),
            ProviderError::Unauthorized(up(403))
        );
        assert_eq!(
            e(429, "rate_limit_error", &h("retry-after", "12")),
            ProviderError::RateLimited(RateLimit {
                retry_after_ms: Some(12_000),
                message: "the message".into()
            })
        );
        assert_eq!(e(500, "api_error", &[]), ProviderError::Upstream(up(500)));
        assert_eq!(
            e(529, "overloaded_error", &[]),
            ProviderError::Upstream(up(529))
        );
        // A proxy's plain-text answer keeps its text.
        assert_eq!(
            from_status(502, &[], b"Bad Gateway"),
            ProviderError::Upstream(UpstreamError {
                status: 502,
                message: "Bad Gateway".into()
            })
        );
    }

    #[test]
    fn types() {
        let m = || "m".to_string();
        assert!(
            matches!(from_type("invalid_request_error", m()), ProviderError::BadRequest(u) if u.status == 400)
        );
        assert!(
            matches!(from_type("not_found_error", m()), ProviderError::BadRequest(u) if u.status == 404)
        );
        assert!(
            matches!(from_type("authentication_error", m()), ProviderError::Unauthorized(u) if u.status == 401)
        );
        assert!(
            matches!(from_type("permission_error", m()), ProviderError::Unauthorized(u) if u.status == 403)
        );
        assert!(
            matches!(from_type("rate_limit_error", m()), ProviderError::RateLimited(r) if r.retry_after_ms.is_none() && r.message == "m")
        );
        assert!(
            matches!(from_type("overloaded_error", m()), ProviderError::Upstream(u) if u.status == 529)
        );
        assert!(
            matches!(from_type("api_error", m()), ProviderError::Upstream(u) if u.status == 500)
        );
        assert!(
            matches!(from_type("brand_new_error", m()), ProviderError::Upstream(u) if u.status == 500)
        );
    }

    #[test]
    fn stream_events() {
        let raw = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let v: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(
            from_stream_event(&v, raw, false),
            ProviderError::Upstream(UpstreamError {
                status: 529,
                message: "Overloaded".into()
            })
        );
        match from_stream_event(&v, raw, true) {
            ProviderError::StreamInterrupted(m) => {
                assert!(
                    m.contains("overloaded_error") && m.contains("Overloaded"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        let raw = r#"{"type":"error"}"#;
        let v: Value = serde_json::from_str(raw).unwrap();
        assert!(
            matches!(from_stream_event(&v, raw, false), ProviderError::Upstream(u) if u.status == 500)
        );
    }
}
