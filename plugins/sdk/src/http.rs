//! Outbound HTTP through the host (`sceneintruder:plugin/http`), plus JSON helpers and the
//! mapping of vendor answers to the typed [`ProviderError`].
//!
//! The host checks every request against the plugin's allow-list, never follows redirects and
//! substitutes `{{secret:NAME}}` placeholders in credential headers (`Authorization`,
//! `x-api-key`, `x-goog-api-key`, `api-key`) and in the query parameters the manifest lists
//! in `[network] secret_query`, and only for the origin the secret was configured for.
//! Plugins never retry: a failure is returned as a typed error and the host decides.

pub use crate::bindings::sceneintruder::plugin::http::{
    BodyStream, Error, Method, Request, Response, ResponseHead, fetch, fetch_streaming,
};
use crate::types::{ProviderError, RateLimit, UpstreamError};
use serde::de::DeserializeOwned;

/// Longest vendor error message kept (bytes, cut at a character boundary).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1000;

/// How much of a failed streaming response's body is read to find the vendor's message.
pub const ERROR_BODY_READ_LIMIT: usize = 64 * 1024;

/// The placeholder the host replaces with the secret `name`: `{{secret:name}}`.
///
/// Only credential headers and declared query parameters are substituted (see the module
/// docs); a vendor echoing the value back gets `[redacted]` into plugin memory instead.
pub fn secret(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// `("Authorization", "Bearer {{secret:<name>}}")`.
pub fn bearer(secret_name: &str) -> (String, String) {
    (
        "Authorization".to_string(),
        format!("Bearer {}", secret(secret_name)),
    )
}

/// A `GET` request with `Accept: application/json` (unless `headers` sets `Accept`).
pub fn get(url: &str, headers: Vec<(String, String)>) -> Request {
    let mut headers = headers;
    if header(&headers, "accept").is_none() {
        headers.push(("Accept".to_string(), "application/json".to_string()));
    }
    Request {
        method: Method::Get,
        url: url.to_string(),
        headers,
        body: None,
        timeout_ms: None,
    }
}

/// A `POST` request with a JSON body, `Content-Type: application/json` and
/// `Accept: application/json` (unless `headers` sets them).
pub fn post_json(url: &str, headers: Vec<(String, String)>, body: &serde_json::Value) -> Request {
    let mut headers = headers;
    if header(&headers, "content-type").is_none() {
        headers.push(("Content-Type".to_string(), "application/json".to_string()));
    }
    if header(&headers, "accept").is_none() {
        headers.push(("Accept".to_string(), "application/json".to_string()));
    }
    Request {
        method: Method::Post,
        url: url.to_string(),
        headers,
        body: Some(body.to_string().into_bytes()),
        timeout_ms: None,
    }
}

/// Sends `req` and returns the response when its status is 2xx.
///
/// A host refusal or transport failure becomes `provider-error::http`; a non-2xx answer becomes
/// the typed error chosen by [`status_error`].
pub fn send(req: &Request) -> Result<Response, ProviderError> {
    send_mapped(req, status_error)
}

/// [`send`] with the vendor's own mapping of a non-2xx answer (`map_error(status, headers,
/// body)`), for vendors whose error bodies say more than the status (error types, retry
/// hints). [`status_error`] is the usual fallback inside `map_error`.
pub fn send_mapped(
    req: &Request,
    map_error: impl FnOnce(u16, &[(String, String)], &[u8]) -> ProviderError,
) -> Result<Response, ProviderError> {
    let resp = fetch(req).map_err(ProviderError::Http)?;
    if is_success(resp.status) {
        Ok(resp)
    } else {
        Err(map_error(resp.status, &resp.headers, &resp.body))
    }
}

/// [`send`], then parses the 2xx body as JSON (`bad-response` when it is not the expected JSON).
pub fn send_json<T: DeserializeOwned>(req: &Request) -> Result<T, ProviderError> {
    let resp = send(req)?;
    parse_json(&resp.body)
}

/// Parses a 2xx body; a body that does not decode is the vendor's fault: `bad-response`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| {
        ProviderError::BadResponse(format!(
            "response body is not the expected JSON ({e}): {}",
            truncate(&String::from_utf8_lossy(body), 200)
        ))
    })
}

/// Sends `req` and returns the head and the body stream when the status is 2xx.
///
/// On a non-2xx status the body is read (up to [`ERROR_BODY_READ_LIMIT`]) to build the typed
/// error, as in [`send`].
pub fn send_streaming(req: &Request) -> Result<(ResponseHead, BodyStream), ProviderError> {
    send_streaming_mapped(req, status_error)
}

/// [`send_streaming`] with the vendor's own mapping of a non-2xx answer (see [`send_mapped`]).
pub fn send_streaming_mapped(
    req: &Request,
    map_error: impl FnOnce(u16, &[(String, String)], &[u8]) -> ProviderError,
) -> Result<(ResponseHead, BodyStream), ProviderError> {
    let (head, body) = fetch_streaming(req).map_err(ProviderError::Http)?;
    if is_success(head.status) {
        return Ok((head, body));
    }
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_READ_LIMIT {
        match body.read(16 * 1024) {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            // The status is what matters; keep whatever body arrived.
            Ok(None) | Err(_) => break,
        }
    }
    Err(map_error(head.status, &head.headers, &bytes))
}

/// True for 2xx.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The first header called `name` (ASCII case-insensitive), with surrounding whitespace trimmed.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Percent-encodes `s` for a query-string value (everything but `A-Z a-z 0-9 - . _ ~`), e.g.
/// a vendor's page token.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Maps a non-2xx vendor answer to the typed error:
///
/// * 400, 404, 422 -> `bad-request`
/// * 401, 403 -> `unauthorized`
/// * 429 -> `rate-limited`, with `retry-after-ms` from `retry-after-ms` or `Retry-After`
///   (seconds or an IMF-fixdate HTTP-date) when present
/// * anything else -> `upstream`
///
/// The message is the vendor's own (see [`error_message`]).
pub fn status_error(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    status_error_at(status, headers, body, now_unix_seconds())
}

/// [`status_error`] with an explicit clock (Unix seconds) for `Retry-After` dates.
pub fn status_error_at(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    now_unix_secs: Option<u64>,
) -> ProviderError {
    let message = error_message(body);
    match status {
        400 | 404 | 422 => ProviderError::BadRequest(UpstreamError { status, message }),
        401 | 403 => ProviderError::Unauthorized(UpstreamError { status, message }),
        429 => ProviderError::RateLimited(RateLimit {
            retry_after_ms: retry_after_ms(headers, now_unix_secs),
            message,
        }),
        _ => ProviderError::Upstream(UpstreamError { status, message }),
    }
}

/// The vendor's error message from a JSON error body: `{"error":{"message":..}}`,
/// `{"error":".."}`, `{"message":..}` or `{"detail":".."}` (also inside a one-element array);
/// otherwise the raw body. Truncated to [`MAX_ERROR_MESSAGE_BYTES`].
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| json_error_message(&v))
        .unwrap_or_else(|| text.trim().to_string());
    if message.is_empty() {
        return "empty response body".to_string();
    }
    truncate(&message, MAX_ERROR_MESSAGE_BYTES)
}

fn json_error_message(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    match v {
        Value::Array(items) => items.first().and_then(json_error_message),
        Value::Object(map) => {
            match map.get("error") {
                Some(Value::Object(err)) => {
                    if let Some(m) = err
                        .get("message")
                        .and_then(Value::as_str)
                        .and_then(non_empty)
                    {
                        return Some(m);
                    }
                }
                Some(Value::String(s)) => {
                    if let Some(m) = non_empty(s) {
                        return Some(m);
                    }
                }
                _ => {}
            }
            for key in ["message", "detail"] {
                if let Some(m) = map.get(key).and_then(Value::as_str).and_then(non_empty) {
                    return Some(m);
                }
            }
            None
        }
        _ => None,
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Delay before retrying, in milliseconds, from `retry-after-ms` (OpenAI/Azure style) or
/// `Retry-After` (delta seconds, or an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`,
/// which needs `now_unix_secs`). `None` when absent or unparseable.
pub fn retry_after_ms(headers: &[(String, String)], now_unix_secs: Option<u64>) -> Option<u64> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(parse_non_negative) {
        return Some(ms.round() as u64);
    }
    let value = header(headers, "retry-after")?;
    if let Some(secs) = parse_non_negative(value) {
        return Some((secs * 1000.0).round() as u64);
    }
    let at = parse_http_date(value)?;
    let now = now_unix_secs?;
    Some(at.saturating_sub(now).saturating_mul(1000))
}

fn parse_non_negative(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into Unix seconds.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_weekday, day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    if !zone.eq_ignore_ascii_case("GMT") && !zone.eq_ignore_ascii_case("UTC") {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u64 + 1;
    let day: u64 = day.parse().ok()?;
    let year: u64 = year.parse().ok()?;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if year < 1970
        || day == 0
        || day > days_in_month(year, month)
        || *h > 23
        || *m > 59
        || *sec > 60
    {
        return None;
    }
    let mut days = 0;
    for y in 1970..year {
        days += if is_leap(y) { 366 } else { 365 };
    }
    for mo in 1..month {
        days += days_in_month(year, mo);
    }
    days += day - 1;
    Some(days * 86_400 + h * 3_600 + m * 60 + sec)
}

fn is_leap(y: u64) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn now_unix_seconds() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secret_placeholders() {
        assert_eq!(secret("api_key"), "{{secret:api_key}}");
        assert_eq!(
            bearer("api_key"),
            (
                "Authorization".to_string(),
                "Bearer {{secret:api_key}}".to_string()
            )
        );
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let hs = h(&[("Content-Type", "text/plain"), ("X-A", " 1 "), ("x-a", "2")]);
        assert_eq!(header(&hs, "content-type"), Some("text/plain"));
        assert_eq!(header(&hs, "X-a"), Some("1"));
        assert_eq!(header(&hs, "missing"), None);
    }

    #[test]
    fn request_builders_set_json_headers_once() {
        let r = post_json(
            "https://x/y",
            vec![("content-type".into(), "application/json; x=1".into())],
            &serde_json::json!({"a": 1}),
        );
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.body.as_deref(), Some(br#"{"a":1}"#.as_slice()));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .count(),
            1
        );
        assert_eq!(header(&r.headers, "accept"), Some("application/json"));
        let g = get("https://x/models", vec![bearer("api_key")]);
        assert_eq!(g.method, Method::Get);
        assert!(g.body.is_none());
        assert_eq!(
            header(&g.headers, "authorization"),
            Some("Bearer {{secret:api_key}}")
        );
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("claude-3-5.x_y~"), "claude-3-5.x_y~");
        assert_eq!(query_escape("a+b/c=d &é"), "a%2Bb%2Fc%3Dd%20%26%C3%A9");
        assert_eq!(query_escape(""), "");
    }

    #[test]
    fn error_message_extraction() {
        assert_eq!(
            error_message(br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#),
            "Incorrect API key provided"
        );
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(
            error_message(br#"{"message":"Too many requests"}"#),
            "Too many requests"
        );
        assert_eq!(error_message(br#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            error_message(br#"[{"error":{"code":400,"message":"bad key"}}]"#),
            "bad key"
        );
        // JSON without a known message field -> the raw body.
        assert_eq!(error_message(br#"{"code":7}"#), r#"{"code":7}"#);
        assert_eq!(error_message(b"  upstream exploded\n"), "upstream exploded");
        assert_eq!(error_message(b""), "empty response body");
        let long = "é".repeat(2000);
        let m = error_message(long.as_bytes());
        assert!(m.len() <= MAX_ERROR_MESSAGE_BYTES + "…".len());
        assert!(m.ends_with('…'));
    }

    #[test]
    fn status_mapping() {
        let body = br#"{"error":{"message":"nope"}}"#;
        for s in [400, 404, 422] {
            assert_eq!(
                status_error_at(s, &[], body, None),
                ProviderError::BadRequest(UpstreamError {
                    status: s,
                    message: "nope".into()
                })
            );
        }
        for s in [401, 403] {
            assert_eq!(
                status_error_at(s, &[], body, None),
                ProviderError::Unauthorized(UpstreamError {
                    status: s,
                    message: "nope".into()
                })
            );
        }
        for s in [302, 405, 409, 500, 502, 503] {
            assert_eq!(
                status_error_at(s, &[], body, None),
                ProviderError::Upstream(UpstreamError {
                    status: s,
                    message: "nope".into()
                })
            );
        }
        assert_eq!(
            status_error_at(429, &h(&[("Retry-After", "7")]), body, None),
            ProviderError::RateLimited(RateLimit {
                retry_after_ms: Some(7000),
                message: "nope".into()
            })
        );
        assert_eq!(
            status_error_at(429, &[], b"slow down", None),
            ProviderError::RateLimited(RateLimit {
                retry_after_ms: None,
                message: "slow down".into()
            })
        );
        assert!(!is_success(199) && is_success(200) && is_success(204) && !is_success(300));
    }

    #[test]
    fn retry_after_variants() {
        assert_eq!(retry_after_ms(&h(&[("retry-after", "0")]), None), Some(0));
        assert_eq!(
            retry_after_ms(&h(&[("retry-after", "1.5")]), None),
            Some(1500)
        );
        assert_eq!(
            retry_after_ms(&h(&[("retry-after-ms", "250"), ("retry-after", "9")]), None),
            Some(250)
        );
        assert_eq!(retry_after_ms(&h(&[("retry-after", "-3")]), None), None);
        assert_eq!(retry_after_ms(&h(&[("retry-after", "soon")]), None), None);
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(parse_http_date(date), Some(784_111_777));
        assert_eq!(
            retry_after_ms(&h(&[("Retry-After", date)]), Some(784_111_770)),
            Some(7000)
        );
        // A date in the past means "now".
        assert_eq!(
            retry_after_ms(&h(&[("Retry-After", date)]), Some(784_111_800)),
            Some(0)
        );
        // A date without a clock cannot be converted.
        assert_eq!(retry_after_ms(&h(&[("Retry-After", date)]), None), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_http_date("Fri, 30 Feb 2024 12:00:00 GMT"), None);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn parse_json_errors_are_bad_response() {
        let r: Result<serde_json::Value, _> = parse_json(b"<html>");
        assert!(matches!(r, Err(ProviderError::BadResponse(m)) if m.contains("<html>")));
    }
}
