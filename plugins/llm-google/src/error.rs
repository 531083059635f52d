//! Gemini's error answers as typed provider errors.
//!
//! An error body is `{"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT",
//! "details":[...]}}` (sometimes wrapped in a one-element array). The canonical `status` decides
//! the type where it is known, the HTTP status otherwise:
//!
//! * `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `NOT_FOUND`, `OUT_OF_RANGE` -> `bad-request`,
//!   except an invalid API key (`ErrorInfo` reason `API_KEY_INVALID`, sent with 400) ->
//!   `unauthorized`;
//! * `UNAUTHENTICATED`, `PERMISSION_DENIED` -> `unauthorized`;
//! * `RESOURCE_EXHAUSTED` -> `rate-limited`, the delay from `Retry-After` or else from the
//!   `RetryInfo` detail's `retryDelay` (`"17s"`, `"0.5s"`);
//! * `INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `UNKNOWN` -> `upstream`.

use sceneintruder_plugin_sdk::http;
use sceneintruder_plugin_sdk::types::{ProviderError, RateLimit, UpstreamError};
use serde_json::Value;

/// What an error body says.
#[derive(Debug, Default, PartialEq)]
struct GoogleError {
    code: Option<u16>,
    status: String,
    message: String,
    api_key_invalid: bool,
    retry_delay_ms: Option<u64>,
}

/// The `error` object of a body (also inside a one-element array).
fn error_object(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) => items.first().and_then(error_object),
        Value::Object(map) => map.get("error").filter(|e| e.is_object()),
        _ => None,
    }
}

/// `"17s"` / `"0.250s"` -> milliseconds.
fn duration_ms(s: &str) -> Option<u64> {
    let secs = s.trim().strip_suffix('s')?;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let secs: f64 = secs.parse().ok()?;
    secs.is_finite().then(|| (secs * 1000.0).round() as u64)
}

fn parse(v: &Value) -> Option<GoogleError> {
    let e = error_object(v)?;
    let details = e.get("details").and_then(Value::as_array);
    let detail_of = |kind: &'static str| {
        details.into_iter().flatten().filter(move |d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(kind))
        })
    };
    Some(GoogleError {
        code: e
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok()),
        status: e
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        message: e
            .get("message")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| http::truncate(m, http::MAX_ERROR_MESSAGE_BYTES))
            .unwrap_or_default(),
        api_key_invalid: detail_of("google.rpc.ErrorInfo")
            .any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID")),
        retry_delay_ms: detail_of("google.rpc.RetryInfo").find_map(|d| {
            d.get("retryDelay")
                .and_then(Value::as_str)
                .and_then(duration_ms)
        }),
    })
}

/// The typed error for a parsed error body that came with HTTP `status`; `fallback` is the
/// status-based mapping used for canonical statuses this plugin does not know.
fn classify(
    status: u16,
    e: GoogleError,
    retry_after_ms: Option<u64>,
    fallback: impl FnOnce(String) -> ProviderError,
) -> ProviderError {
    let message = if e.message.is_empty() {
        e.status.clone()
    } else {
        e.message
    };
    let upstream = |message| UpstreamError { status, message };
    if e.api_key_invalid {
        return ProviderError::Unauthorized(upstream(message));
    }
    match e.status.as_str() {
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ProviderError::Unauthorized(upstream(message)),
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "NOT_FOUND" | "OUT_OF_RANGE" => {
            ProviderError::BadRequest(upstream(message))
        }
        "RESOURCE_EXHAUSTED" => ProviderError::RateLimited(RateLimit {
            retry_after_ms: retry_after_ms.or(e.retry_delay_ms),
            message,
        }),
        "INTERNAL" | "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "UNKNOWN" => {
            ProviderError::Upstream(upstream(message))
        }
        _ => fallback(message),
    }
}

/// A non-2xx answer.
pub fn from_status(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    let by_status = http::status_error(status, headers, body);
    let Some(e) = serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(parse)
    else {
        return by_status;
    };
    let retry_after = match &by_status {
        ProviderError::RateLimited(r) => r.retry_after_ms,
        _ => http::retry_after_ms(headers, None),
    };
    classify(status, e, retry_after, |message| {
        by_status.with_message(message)
    })
}

/// An `error` object inside a 200 stream or body: typed by its canonical status and `code`
/// before any text; `stream-interrupted` once text has been delivered. `None` when `v` has no
/// error object.
pub fn from_body(v: &Value, after_text: bool) -> Option<ProviderError> {
    let e = parse(v)?;
    let code = e.code.unwrap_or(500);
    if after_text {
        let what = if e.status.is_empty() {
            code.to_string()
        } else {
            e.status.clone()
        };
        return Some(ProviderError::StreamInterrupted(format!(
            "Gemini stream failed after partial output ({what}): {}",
            e.message
        )));
    }
    Some(classify(code, e, None, |message| {
        http::status_error(code, &[], &[]).with_message(message)
    }))
}

/// Replacing the message of a status-mapped error.
trait WithMessage {
    fn with_message(self, message: String) -> ProviderError;
}

impl WithMessage for ProviderError {
    fn with_message(self, message: String) -> ProviderError {
        match self {
            ProviderError::BadRequest(u) => {
                ProviderError::BadRequest(UpstreamError { message, ..u })
            }
            ProviderError::Unauthorized(u) => {
                ProviderError::Unauthorized(UpstreamError { message, ..u })
            }
            ProviderError::Upstream(u) => ProviderError::Upstream(UpstreamError { message, ..u }),
            ProviderError::RateLimited(r) => ProviderError::RateLimited(RateLimit { message, ..r }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(code: u16, status: &str, message: &str, details: Value) -> Vec<u8> {
        json!({"error": {"code": code, "message": message, "status": status, "details": details}})
            .to_string()
            .into_bytes()
    }

    fn up(status: u16, message: &str) -> UpstreamError {
        UpstreamError {
            status,
            message: message.into(),
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            from_status(
                400,
                &[],
                &body(
                    400,
                    "INVALID_ARGUMENT",
                    "Invalid JSON payload received.",
                    json!([])
                )
            ),
            ProviderError::BadRequest(up(400, "Invalid JSON payload received."))
        );
        assert_eq!(
            from_status(
                400,
                &[],
                &body(
                    400,
                    "FAILED_PRECONDITION",
                    "User location is not supported for the API use.",
                    json!([])
                )
            ),
            ProviderError::BadRequest(up(400, "User location is not supported for the API use."))
        );
        let key = body(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]),
        );
        assert_eq!(
            from_status(400, &[], &key),
            ProviderError::Unauthorized(up(400, "API key not valid. Please pass a valid API key."))
        );
        assert_eq!(
            from_status(
                401,
                &[],
                &body(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials.",
                    json!([])
                )
            ),
            ProviderError::Unauthorized(up(401, "Request had invalid authentication credentials."))
        );
        assert_eq!(
            from_status(
                403,
                &[],
                &body(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers.",
                    json!([])
                )
            ),
            ProviderError::Unauthorized(up(403, "Method doesn't allow unregistered callers."))
        );
        assert_eq!(
            from_status(
                404,
                &[],
                &body(404, "NOT_FOUND", "models/gemini-9 is not found", json!([]))
            ),
            ProviderError::BadRequest(up(404, "models/gemini-9 is not found"))
        );
        assert_eq!(
            from_status(
                500,
                &[],
                &body(
                    500,
                    "INTERNAL",
                    "An internal error has occurred.",
                    json!([])
                )
            ),
            ProviderError::Upstream(up(500, "An internal error has occurred."))
        );
        assert_eq!(
            from_status(
                503,
                &[],
                &body(503, "UNAVAILABLE", "The model is overloaded.", json!([]))
            ),
            ProviderError::Upstream(up(503, "The model is overloaded."))
        );
        // Unknown canonical status: the HTTP status decides, with the vendor's message.
        assert_eq!(
            from_status(409, &[], &body(409, "ABORTED", "try again", json!([]))),
            ProviderError::Upstream(up(409, "try again"))
        );
        // Not Google's shape: the SDK's mapping.
        assert_eq!(
            from_status(502, &[], b"<html>Bad Gateway</html>"),
            ProviderError::Upstream(up(502, "<html>Bad Gateway</html>"))
        );
    }

    #[test]
    fn rate_limits() {
        let quota = body(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota.",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
            ]),
        );
        assert_eq!(
            from_status(429, &[], &quota),
            ProviderError::RateLimited(RateLimit {
                retry_after_ms: Some(17_000),
                message: "You exceeded your current quota.".into()
            })
        );
        // A Retry-After header wins over the body's hint.
        let h = vec![("Retry-After".to_string(), "3".to_string())];
        assert!(matches!(
            from_status(429, &h, &quota),
            ProviderError::RateLimited(RateLimit {
                retry_after_ms: Some(3000),
                ..
            })
        ));
        let bare = body(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            json!([]),
        );
        assert!(matches!(
            from_status(429, &[], &bare),
            ProviderError::RateLimited(RateLimit {
                retry_after_ms: None,
                ..
            })
        ));
        assert_eq!(duration_ms("0.250s"), Some(250));
        assert_eq!(duration_ms("2s"), Some(2000));
        for bad in ["", "s", "5", "-1s", "1ms", "abcs"] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_inside_a_body() {
        let v = json!([{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}]);
        assert_eq!(
            from_body(&v, false),
            Some(ProviderError::Upstream(up(
                503,
                "The model is overloaded. Please try again later."
            )))
        );
        match from_body(&v, true) {
            Some(ProviderError::StreamInterrupted(m)) => {
                assert!(m.contains("UNAVAILABLE") && m.contains("overloaded"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let v = json!({"error": {"code": 429, "message": "slow down"}});
        assert!(matches!(
            from_body(&v, false),
            Some(ProviderError::RateLimited(RateLimit {
                retry_after_ms: None,
                ..
            }))
        ));
        assert_eq!(from_body(&json!({"candidates": []}), false), None);
        assert_eq!(from_body(&json!({"error": "text"}), false), None);
    }
}
