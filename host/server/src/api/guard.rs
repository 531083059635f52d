//! One guard for every request before it reaches a handler (spec/platform.md §2.9, issue
//! "cross-site requests and DNS rebinding"):
//!
//! - `Host` must be a name this server answers to. On a loopback listener that is
//!   `localhost`, `127.0.0.1` or `[::1]` (any port) plus `[http] allowed_hosts`; anything
//!   else is `421`. A web page that rebinds its own name to 127.0.0.1 is thereby refused.
//! - State-changing requests (POST, PUT, PATCH, DELETE) and WebSocket upgrades from a browser
//!   must come from the server's own origin or an allowed one; any other `Origin` is `403`.
//! - A request body must be JSON (`application/json`), or multipart on the upload routes:
//!   a `text/plain` form post needs no CORS preflight, so it must not reach a handler (`415`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::ServerError;

/// Routes whose body is `multipart/form-data` (spec: uploads).
const MULTIPART_ROUTES: [&str; 1] = ["/api/upload"];

/// Host names a loopback listener always answers to, any port.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Which `Host` values the server answers to.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// `None`: any host (a non-loopback listener without `[http] allowed_hosts`).
    allowed: Option<Vec<(String, Option<u16>)>>,
}

/// `host[:port]` lower-cased (trailing dot dropped), IPv6 in brackets; `None` when it is not
/// a plain authority (no user info, path, or characters a host name cannot have). Parsed by
/// hand: a URL parser with IDNA processing cost a visible share of every request.
fn split_host(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if inside.is_empty()
            || !inside
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        let plain = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !plain {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok()?),
    };
    Some((host, port))
}

impl Hosts {
    pub fn new(listen: std::net::SocketAddr, configured: &[String]) -> Hosts {
        let mut list: Vec<(String, Option<u16>)> = configured
            .iter()
            .filter_map(|h| {
                let parsed = split_host(h);
                if parsed.is_none() {
                    tracing::warn!(host = %h, "ignoring an allowed host that is not host[:port]");
                }
                parsed
            })
            .collect();
        if !listen.ip().is_loopback() && list.is_empty() {
            return Hosts { allowed: None };
        }
        list.extend(LOOPBACK_NAMES.iter().map(|n| (n.to_string(), None)));
        if !listen.ip().is_unspecified() {
            list.push((
                split_host(&listen.ip().to_string())
                    .or_else(|| split_host(&format!("[{}]", listen.ip())))
                    .map_or_else(|| listen.ip().to_string(), |(h, _)| h),
                None,
            ));
        }
        Hosts {
            allowed: Some(list),
        }
    }

    /// Whether the server answers to this `Host` header value.
    pub fn allows(&self, value: &str) -> bool {
        let Some(allowed) = &self.allowed else {
            return true;
        };
        let Some((host, port)) = split_host(value) else {
            return false;
        };
        allowed
            .iter()
            .any(|(h, p)| *h == host && (p.is_none() || *p == port))
    }

    /// True when every host is answered (the operator should set `allowed_hosts`).
    pub fn unchecked(&self) -> bool {
        self.allowed.is_none()
    }
}

fn changes_state(req: &Request) -> bool {
    matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) || req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Same origin: the page was served by this very server (scheme aside: a TLS-terminating
/// proxy turns https into http).
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The media type without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Why a request must not reach a handler, if it must not.
fn refusal(state: &AppState, req: &Request) -> Option<ServerError> {
    let headers = req.headers();
    if let Some(host) = headers.get(header::HOST) {
        let text = host.to_str().unwrap_or_default();
        if !state.hosts.allows(text) {
            return Some(ServerError::MisdirectedHost {
                host: text.chars().take(200).collect(),
            });
        }
    }
    if !changes_state(req) {
        return None;
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("null");
        if !(same_origin(text, headers) || state.origins.allows(text)) {
            return Some(ServerError::ForeignOrigin {
                origin: text.chars().take(200).collect(),
            });
        }
    }
    if has_body(headers) {
        let media = media_type(headers).unwrap_or_default();
        let multipart_route = MULTIPART_ROUTES.contains(&req.uri().path());
        let ok = if multipart_route {
            media == "multipart/form-data"
        } else {
            is_json(&media)
        };
        if !ok {
            let wanted = if multipart_route {
                "multipart/form-data"
            } else {
                "application/json"
            };
            return Some(ServerError::UnsupportedMediaType {
                details: format!(
                    "this route reads {wanted} bodies, not {:?}",
                    if media.is_empty() { "(none)" } else { &media }
                ),
            });
        }
    }
    None
}

pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match refusal(&state, &req) {
        Some(error) => {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), "refused: {}", error.details());
            error.into_response()
        }
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_listener_answers_loopback_names_and_configured_hosts_only() {
        let hosts = Hosts::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["story.example.com".into(), "proxy.lan:8443".into()],
        );
        for ok in [
            "localhost:8080",
            "LOCALHOST",
            "127.0.0.1:9",
            "[::1]:8080",
            "story.example.com",
            "story.example.com:443",
            "proxy.lan:8443",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8080",
            "127.0.0.1.nip.io:8080",
            "localhost.attacker.example",
            "proxy.lan:8444",
            "",
            "a@localhost",
            "localhost/x",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let open = Hosts::new("0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(open.unchecked() && open.allows("anything.example"));
        let listed = Hosts::new("0.0.0.0:8080".parse().unwrap(), &["a.example".into()]);
        assert!(listed.allows("a.example:8080") && !listed.allows("b.example"));
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
