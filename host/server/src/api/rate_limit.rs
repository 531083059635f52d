//! Rate limiting per class (spec/platform.md §6), fixed windows, one bucket per
//! `(class, identity)`: the user id when a valid token was presented, otherwise the client's
//! IP. Client-supplied headers (`X-User-ID`, `X-Forwarded-For`) never pick the bucket, unless
//! the request comes from a configured trusted proxy (then its `X-Forwarded-For` is used).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, Response};
use axum::middleware::Next;
use axum::response::IntoResponse;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::Identity;
use crate::error::ServerError;

/// One class's limit: `limit` requests per `window_secs`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub limit: u32,
    pub window_secs: u64,
}

/// `[rate_limits]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Every `/api` route.
    pub default: Limit,
    /// Chat and character interactions.
    pub chat: Limit,
    /// Uploads and text analysis.
    pub analysis: Limit,
    /// `POST /api/auth/login`, always per client IP: each attempt costs an Argon2 hash, and
    /// password guessing should be slow.
    pub login: Limit,
    /// Proxies whose `X-Forwarded-For` names the client (exact IP addresses).
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            default: Limit {
                limit: 300,
                window_secs: 60,
            },
            chat: Limit {
                limit: 30,
                window_secs: 60,
            },
            analysis: Limit {
                limit: 10,
                window_secs: 3600,
            },
            login: Limit {
                limit: 10,
                window_secs: 60,
            },
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Default,
    Chat,
    Analysis,
    Login,
}

const CLASSES: usize = 4;

/// The classes a request counts against (always `default`, plus its own class).
pub fn classes(method: &Method, path: &str) -> Vec<Class> {
    let mut classes = vec![Class::Default];
    let chat = path == "/api/chat"
        || path.starts_with("/api/chat/")
        || (path.starts_with("/api/interactions/") && path != "/api/interactions/aggregate");
    let analysis = method == Method::POST && (path == "/api/upload" || path == "/api/analyze");
    let login = method == Method::POST && path == "/api/auth/login";
    if chat {
        classes.push(Class::Chat);
    }
    if analysis {
        classes.push(Class::Analysis);
    }
    if login {
        classes.push(Class::Login);
    }
    classes
}

/// The `chat` bucket of a WebSocket connection acting as `owner` (its `character_interaction`
/// messages are chat turns): the account's own bucket, shared with its HTTP chat. The hub
/// is not told a connection's address, so guests' connections share one bucket.
/// The bucket key of a request's caller: `user:<id>` with a valid token, else `ip:<addr>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerKey(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CallerKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CallerKey>()
            .cloned()
            .unwrap_or_else(|| CallerKey("ip:unknown".into())))
    }
}

struct Bucket {
    remaining: u32,
    resets: Instant,
    /// Wall-clock reset time (for `X-RateLimit-Reset`).
    reset_unix: i64,
}

/// Outcome of counting one request in one bucket.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_unix: i64,
    pub retry_after: u64,
}

pub struct Limiter {
    config: RateLimits,
    /// Per caller key, one bucket per class (looked up by `&str`: no allocation per request).
    buckets: Mutex<HashMap<String, [Option<Bucket>; CLASSES]>>,
    last_sweep: Mutex<Instant>,
}

impl Limiter {
    pub fn new(config: RateLimits) -> Limiter {
        Limiter {
            config,
            buckets: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    fn limit_of(&self, class: Class) -> Limit {
        match class {
            Class::Default => self.config.default,
            Class::Chat => self.config.chat,
            Class::Analysis => self.config.analysis,
            Class::Login => self.config.login,
        }
    }

    /// Count one request of `key` in `class`.
    pub fn check(&self, class: Class, key: &str, now: Instant) -> Decision {
        let limit = self.limit_of(class);
        let window = Duration::from_secs(limit.window_secs.max(1));
        self.sweep(now);
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !buckets.contains_key(key) {
            buckets.insert(key.to_string(), Default::default());
        }
        let fresh = || Bucket {
            remaining: limit.limit,
            resets: now + window,
            reset_unix: chrono::Utc::now().timestamp() + window.as_secs() as i64,
        };
        let mut spare = None;
        let bucket = match buckets.get_mut(key) {
            Some(slots) => slots[class as usize].get_or_insert_with(fresh),
            // Inserted just above; a bucket that is not kept only counts this request.
            None => spare.insert(fresh()),
        };
        if now >= bucket.resets {
            bucket.remaining = limit.limit;
            bucket.resets = now + window;
            bucket.reset_unix = chrono::Utc::now().timestamp() + window.as_secs() as i64;
        }
        let allowed = bucket.remaining > 0;
        if allowed {
            bucket.remaining -= 1;
        }
        Decision {
            allowed,
            limit: limit.limit,
            remaining: bucket.remaining,
            reset_unix: bucket.reset_unix,
            retry_after: bucket
                .resets
                .saturating_duration_since(now)
                .as_secs()
                .max(1),
        }
    }

    /// Drop expired buckets now and then, so the map does not grow without bound.
    fn sweep(&self, now: Instant) {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return;
        };
        if now.duration_since(*last) < Duration::from_secs(60) {
            return;
        }
        *last = now;
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.retain(|_, slots| {
                for slot in slots.iter_mut() {
                    if slot.as_ref().is_some_and(|b| b.resets <= now) {
                        *slot = None;
                    }
                }
                slots.iter().any(Option::is_some)
            });
        }
    }

    /// The client address: the peer, or `X-Forwarded-For`'s first entry from a trusted proxy.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> String {
        let trusted = peer.is_some_and(|p| self.config.trusted_proxies.contains(&p));
        if trusted
            && let Some(ip) = forwarded_for
                .and_then(|f| f.split(',').next())
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        {
            return ip.to_string();
        }
        peer.map_or_else(|| "unknown".to_string(), |p| p.to_string())
    }
}

fn set_headers(response: &mut Response<Body>, d: &Decision) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", d.reset_unix.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// Count the request against its classes; refuse with 429 when any bucket is empty.
pub async fn limit(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = format!("ip:{}", state.limiter.client_ip(peer, forwarded));
    let caller = match req.extensions().get::<Identity>() {
        Some(identity) if identity.authenticated => format!("user:{}", identity.user_id),
        _ => ip.clone(),
    };
    // WebSocket connections count their chat messages with the same key.
    req.extensions_mut().insert(CallerKey(caller.clone()));
    if !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let now = Instant::now();
    let decisions: Vec<Decision> = classes(req.method(), &path)
        .into_iter()
        .map(|class| {
            // Logins count per address whatever token comes along, so a stolen token
            // cannot buy more guesses.
            let key = if class == Class::Login { &ip } else { &caller };
            state.limiter.check(class, key, now)
        })
        .collect();
    // Report the most restrictive bucket consulted.
    let Some(tightest) = decisions
        .iter()
        .min_by_key(|d| (d.allowed, d.remaining))
        .copied()
    else {
        return next.run(req).await;
    };
    if !tightest.allowed {
        let mut response = ServerError::RateLimited {
            retry_after: tightest.retry_after,
        }
        .into_response();
        set_headers(&mut response, &tightest);
        if let Ok(value) = HeaderValue::from_str(&tightest.retry_after.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        return response;
    }
    let mut response = next.run(req).await;
    set_headers(&mut response, &tightest);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_route_table() {
        assert_eq!(classes(&Method::GET, "/api/scenes"), vec![Class::Default]);
        assert_eq!(
            classes(&Method::POST, "/api/chat"),
            vec![Class::Default, Class::Chat]
        );
        assert_eq!(
            classes(&Method::POST, "/api/chat/emotion"),
            vec![Class::Default, Class::Chat]
        );
        assert_eq!(
            classes(&Method::POST, "/api/interactions/trigger"),
            vec![Class::Default, Class::Chat]
        );
        assert_eq!(
            classes(&Method::POST, "/api/interactions/aggregate"),
            vec![Class::Default]
        );
        assert_eq!(
            classes(&Method::POST, "/api/analyze"),
            vec![Class::Default, Class::Analysis]
        );
        assert_eq!(classes(&Method::GET, "/api/upload"), vec![Class::Default]);
        assert_eq!(
            classes(&Method::POST, "/api/chatroom"),
            vec![Class::Default]
        );
        assert_eq!(
            classes(&Method::POST, "/api/auth/login"),
            vec![Class::Default, Class::Login]
        );
        assert_eq!(
            classes(&Method::GET, "/api/auth/login"),
            vec![Class::Default]
        );
        assert_eq!(
            classes(&Method::POST, "/api/auth/logout"),
            vec![Class::Default]
        );
    }

    #[test]
    fn login_has_a_tight_default_and_is_configurable() {
        let defaults = RateLimits::default();
        assert_eq!(
            defaults.login,
            Limit {
                limit: 10,
                window_secs: 60
            }
        );
        let configured: RateLimits =
            toml::from_str("login = { limit = 3, window_secs = 600 }").expect("config");
        assert_eq!(configured.login.limit, 3);
        assert_eq!(configured.login.window_secs, 600);
        assert_eq!(configured.chat, defaults.chat);
        let limiter = Limiter::new(configured);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(Class::Login, "ip:1", t0).allowed);
        }
        let denied = limiter.check(Class::Login, "ip:1", t0);
        assert!(!denied.allowed);
        assert!(denied.retry_after >= 599);
        assert!(limiter.check(Class::Default, "ip:1", t0).allowed);
    }

    #[test]
    fn buckets_are_separate_per_class_and_key_and_reset() {
        let limiter = Limiter::new(RateLimits {
            default: Limit {
                limit: 3,
                window_secs: 60,
            },
            chat: Limit {
                limit: 1,
                window_secs: 60,
            },
            ..RateLimits::default()
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(Class::Default, "ip:1", t0).allowed);
        }
        let denied = limiter.check(Class::Default, "ip:1", t0);
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 0);
        assert!(denied.retry_after >= 59);
        assert!(
            limiter.check(Class::Default, "ip:2", t0).allowed,
            "another client"
        );
        assert!(
            limiter.check(Class::Chat, "ip:1", t0).allowed,
            "another class"
        );
        assert!(!limiter.check(Class::Chat, "ip:1", t0).allowed);
        assert!(
            limiter
                .check(Class::Default, "ip:1", t0 + Duration::from_secs(61))
                .allowed,
            "a new window"
        );
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let limiter = Limiter::new(RateLimits {
            trusted_proxies: vec![proxy],
            ..RateLimits::default()
        });
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            limiter.client_ip(Some(stranger), Some("1.2.3.4")),
            "203.0.113.9"
        );
        assert_eq!(
            limiter.client_ip(Some(proxy), Some("1.2.3.4, 10.0.0.1")),
            "1.2.3.4"
        );
        assert_eq!(limiter.client_ip(Some(proxy), Some("garbage")), "10.0.0.1");
    }
}
