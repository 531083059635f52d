//! CORS with an exact-origin allow-list, and security headers (spec/platform.md §2.9, §4.7.5).
//!
//! The reference echoed any origin that merely *started with* `http://localhost` (so
//! `http://localhost.attacker.example` passed) together with `Allow-Credentials: true`. Here
//! an origin is allowed only when its scheme and host equal an allowed entry (any port for
//! the loopback development defaults); a refused origin gets no `Access-Control-Allow-Origin`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use axum::middleware::Next;

use crate::app::AppState;

const ALLOW_HEADERS: &str = "Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization, accept, origin, Cache-Control, X-Requested-With, X-API-Key, Last-Event-ID, X-Request-ID";
const ALLOW_METHODS: &str = "POST, OPTIONS, GET, PUT, DELETE, PATCH";

/// Which browser origins may call the API.
#[derive(Debug, Clone)]
pub struct Origins {
    /// Exact `scheme://host[:port]` entries from the configuration.
    exact: Vec<(String, String, Option<u16>)>,
}

/// Loopback development origins, any port (the reference's defaults, matched exactly).
const DEV_HOSTS: [(&str, &str); 4] = [
    ("http", "localhost"),
    ("https", "localhost"),
    ("http", "127.0.0.1"),
    ("https", "127.0.0.1"),
];

fn parse(origin: &str) -> Option<(String, String, Option<u16>)> {
    let url = url::Url::parse(origin.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    if !matches!(url.scheme(), "http" | "https") || url.path().len() > 1 {
        return None;
    }
    Some((url.scheme().to_string(), host, url.port()))
}

impl Origins {
    /// `configured` entries are exact origins; invalid ones are skipped with a warning.
    pub fn new(configured: &[String]) -> Origins {
        let exact = configured
            .iter()
            .filter_map(|o| {
                let parsed = parse(o);
                if parsed.is_none() {
                    tracing::warn!(origin = %o, "ignoring an allowed origin that is not scheme://host[:port]");
                }
                parsed
            })
            .collect();
        Origins { exact }
    }

    pub fn allows(&self, origin: &str) -> bool {
        let Some((scheme, host, port)) = parse(origin) else {
            return false;
        };
        if self
            .exact
            .iter()
            .any(|(s, h, p)| *s == scheme && *h == host && *p == port)
        {
            return true;
        }
        // With no configured list, loopback development origins work out of the box.
        self.exact.is_empty() && DEV_HOSTS.iter().any(|(s, h)| *s == scheme && *h == host)
    }
}

fn decorate(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// CORS for every request; any `OPTIONS` is a preflight answered `204` right here.
pub async fn cors(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response<Body> {
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| o.to_str().is_ok_and(|o| state.origins.allows(o)))
        .cloned();
    let mut response = if req.method() == Method::OPTIONS {
        let mut preflight = Response::new(Body::empty());
        *preflight.status_mut() = StatusCode::NO_CONTENT;
        preflight
    } else {
        next.run(req).await
    };
    decorate(response.headers_mut(), allowed);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_allow_loopback_dev_origins_exactly() {
        let o = Origins::new(&[]);
        assert!(o.allows("http://localhost:5173"));
        assert!(o.allows("https://127.0.0.1"));
        assert!(!o.allows("http://localhost.attacker.example"));
        assert!(!o.allows("http://127.0.0.1.evil.net"));
        assert!(!o.allows("null"));
        assert!(!o.allows("http://0.0.0.0"));
    }

    #[test]
    fn a_configured_list_is_exact() {
        let o = Origins::new(&[
            "https://story.example.com".to_string(),
            "http://10.0.0.5:8080".into(),
        ]);
        assert!(o.allows("https://story.example.com"));
        assert!(o.allows("http://10.0.0.5:8080"));
        assert!(!o.allows("http://story.example.com"));
        assert!(!o.allows("https://story.example.com.evil.org"));
        assert!(!o.allows("http://10.0.0.5:8081"));
        assert!(
            !o.allows("http://localhost:5173"),
            "the dev defaults apply only without a list"
        );
    }
}
