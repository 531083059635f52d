//! Authentication: password hashes, signed revocable tokens, the request identity, and
//! guest mode.
//!
//! Tokens keep the reference's format (`base64url(payload).base64url(HMAC-SHA256)`, padded,
//! payload `user_id|expires_at|issued_at`), so a deployment sharing `AUTH_SECRET_KEY` with the
//! reference shares tokens; unlike the reference they are signed with a per-install secret and
//! logout really ends them.

use std::path::Path;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ServerError;

/// The identity of guests, as in the reference.
pub const GUEST: &str = "console_user";

/// `[auth]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Let requests without a valid token act as the guest `console_user`.
    /// Default: on when the server listens on loopback only, off otherwise.
    pub guest_mode: Option<bool>,
    /// Token lifetime in seconds [default: 86400].
    pub token_ttl_secs: Option<u64>,
    /// How long a verified token is remembered, in seconds [default: 30; 0 checks every
    /// request against the database].
    pub token_cache_secs: Option<u64>,
}

pub const DEFAULT_TOKEN_TTL: u64 = 86_400;
pub const DEFAULT_TOKEN_CACHE_SECS: u64 = 30;
/// Verified tokens remembered at most (each entry is a few hundred bytes).
pub const TOKEN_CACHE_ENTRIES: usize = 10_000;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// True when a valid token was presented.
    pub authenticated: bool,
    pub admin: bool,
}

impl Identity {
    /// Who opened a WebSocket whose owner is `owner` (the account, or the guest).
    pub fn of_socket_owner(owner: String) -> Identity {
        if owner == GUEST {
            Identity::guest()
        } else {
            Identity {
                user_id: owner,
                authenticated: true,
                admin: false,
            }
        }
    }

    pub fn guest() -> Identity {
        Identity {
            user_id: GUEST.to_string(),
            authenticated: false,
            admin: false,
        }
    }

    /// Settings-level actions (changing settings, probing a provider at a caller-chosen base
    /// URL) need an admin; a guest qualifies only in guest mode, and only when the request
    /// itself comes from this machine (not merely when the server listens on loopback: a
    /// reverse proxy on 127.0.0.1 would make every internet client a local guest).
    pub fn may_administer(&self, guest_mode: bool, peer: &Peer) -> bool {
        self.admin || (!self.authenticated && guest_mode && peer.local)
    }

    /// A job, scene or other object owned by `owner` may be changed by its owner or an admin.
    pub fn may_manage(&self, owner: &str) -> bool {
        self.admin || self.user_id == owner
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Set by `resolve`; absent only where the middleware does not run.
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or(ServerError::Unauthorized)
    }
}

/// Where a request comes from, as far as the server can tell without trusting the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    /// The TCP peer is a loopback address and the request carries no forwarding headers
    /// (a proxy on this machine forwards for someone else).
    pub local: bool,
}

/// Headers a reverse proxy adds on behalf of the real client.
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
];

impl Peer {
    pub fn of(req: &Request) -> Peer {
        let loopback_peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| c.0.ip().is_loopback());
        let forwarded = FORWARDING_HEADERS
            .iter()
            .any(|h| req.headers().contains_key(*h));
        Peer {
            local: loopback_peer && !forwarded,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Peer>().copied().unwrap_or_default())
    }
}

/// Signs and checks tokens.
pub struct Tokens {
    key: [u8; 32],
    ttl: u64,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: String,
    pub expires_at: i64,
    pub issued_at: i64,
}

type HmacSha256 = Hmac<Sha256>;

impl Tokens {
    /// `secret` is normalised to 32 bytes (zero-padded or truncated), as the reference does.
    pub fn new(secret: &[u8], ttl: u64) -> Tokens {
        let mut key = [0u8; 32];
        let n = secret.len().min(32);
        key[..n].copy_from_slice(&secret[..n]);
        Tokens { key, ttl }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes cannot fail.
        match <HmacSha256 as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        }
    }

    /// Issue a token. `issued_at` is in milliseconds and strictly increasing within this
    /// process, so two logins in the same second get different tokens and logging out of
    /// one never ends the other. (The reference only reads `expires_at`, in seconds.)
    pub fn issue(&self, user_id: &str, now: i64) -> (String, i64) {
        use std::sync::atomic::{AtomicI64, Ordering};
        static LAST: AtomicI64 = AtomicI64::new(0);
        let now_ms = now.saturating_mul(1000);
        let issued_at = LAST
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now_ms.max(last + 1))
            })
            .map_or(now_ms, |last| now_ms.max(last + 1));
        let expires_at = now + self.ttl as i64;
        let payload = format!("{user_id}|{expires_at}|{issued_at}");
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let signature = mac.finalize().into_bytes();
        (
            format!(
                "{}.{}",
                URL_SAFE.encode(&payload),
                URL_SAFE.encode(signature)
            ),
            expires_at,
        )
    }

    /// The claims of a well-formed, correctly signed, unexpired token.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let (payload_b64, signature_b64) = token.split_once('.')?;
        if signature_b64.contains('.') {
            return None;
        }
        let payload = URL_SAFE.decode(payload_b64).ok()?;
        let signature = URL_SAFE.decode(signature_b64).ok()?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&signature).ok()?; // constant time
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.split('|');
        let (user_id, expires_at, issued_at) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expires_at: i64 = expires_at.parse().ok()?;
        let issued_at: i64 = issued_at.parse().ok()?;
        if now > expires_at || !valid_username(user_id) {
            return None;
        }
        Some(Claims {
            user_id: user_id.to_string(),
            expires_at,
            issued_at,
        })
    }
}

/// Stored fingerprint of a token (revocation list); never the token itself.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Usernames: 1-64 of letters, digits, `_ . -`, never `..` (they appear in paths and tokens).
pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Shortest `AUTH_SECRET_KEY` accepted: the HMAC key is 32 bytes, and a shorter secret would
/// be zero-padded into a guessable one.
pub const MIN_SECRET_BYTES: usize = 32;

/// The token secret: `AUTH_SECRET_KEY`, else `<data-dir>/.auth_secret`, created on first
/// start with 32 random bytes and owner-only permissions. An `AUTH_SECRET_KEY` shorter than
/// [`MIN_SECRET_BYTES`] is refused, so the server does not start with a weak key.
pub fn load_secret(data_dir: &Path, env_secret: Option<&str>) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = env_secret.filter(|s| !s.is_empty()) {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "AUTH_SECRET_KEY is {} bytes; it must be at least {MIN_SECRET_BYTES} bytes \
                     (e.g. `openssl rand -hex 32`), or unset it to use a generated secret in \
                     <data-dir>/.auth_secret",
                    secret.len()
                ),
            ));
        }
        return Ok(secret.as_bytes().to_vec());
    }
    crate::secrets::key_file(&data_dir.join(".auth_secret"))
}

/// Routes that answer without identity even when guest mode is off. Progress streams are
/// public because browsers' `EventSource` cannot send a token; task ids are unguessable.
fn is_public(path: &str) -> bool {
    const PUBLIC: [&str; 4] = [
        "/metrics",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/config/health",
    ];
    PUBLIC.contains(&path) || path.starts_with("/api/progress/")
}

/// The bearer token; WebSocket upgrades may pass it as `?token=` instead, since browsers
/// cannot set headers on them.
fn bearer(req: &Request) -> Option<String> {
    // The scheme is case-insensitive (RFC 9110). Any other `Authorization` (another
    // scheme, no token, not text) is handed on as a token that proves nothing, so it is a
    // 401 rather than quietly the guest.
    // `Bearer` with nothing after it (what some clients send before logging in) is no token.
    let header = req.headers().get("authorization").and_then(|v| {
        let text = v.to_str().unwrap_or("\u{fffd}").trim();
        let token = match text.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ if text.eq_ignore_ascii_case("bearer") => "",
            _ => text,
        };
        (!token.is_empty()).then(|| token.to_string())
    });
    header.or_else(|| {
        if !req.uri().path().starts_with("/ws/") {
            return None;
        }
        url::form_urlencoded::parse(req.uri().query()?.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .filter(|t| !t.is_empty())
    })
}

/// Resolve the caller of every request: a valid, unrevoked token of an existing user, or
/// the guest (when guest mode allows it). Without guest mode, non-public routes answer
/// `401 UNAUTHORIZED`. A token that is present but invalid, expired or revoked is `401`
/// everywhere but the public routes: it never quietly becomes a guest.
pub async fn resolve(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let public = is_public(req.uri().path());
    let identity = match bearer(&req) {
        Some(token) => match authenticate(&state, &token).await {
            Ok(Some(identity)) => Some(identity),
            Ok(None) | Err(_) if public => None,
            Ok(None) => return ServerError::Unauthorized.into_response(),
            // The token could not be checked: not a logout, the database is away.
            Err(e) => return e.into_response(),
        },
        None => None,
    };
    let identity = match identity {
        Some(identity) => identity,
        None if state.guest_mode || public => Identity::guest(),
        None => return ServerError::Unauthorized.into_response(),
    };
    let peer = Peer::of(&req);
    req.extensions_mut().insert(identity);
    req.extensions_mut().insert(peer);
    next.run(req).await
}

/// The identity a token proves, `None` when it proves none, or the error that kept it from
/// being checked (an unreachable database answers 503, never a 401 that looks like a logout).
async fn authenticate(state: &AppState, token: &str) -> Result<Option<Identity>, ServerError> {
    let now = chrono::Utc::now().timestamp();
    let hash = token_hash(token);
    if let Some(identity) = state.sessions.get(&hash, now) {
        return Ok(Some(identity));
    }
    // Read before the checks: a logout landing meanwhile makes the insert below a no-op.
    let generation = state.sessions.generation();
    let Some(claims) = state.tokens.verify(token, now) else {
        return Ok(None);
    };
    let users = state.db.users();
    if users.is_revoked(&hash).await.map_err(ServerError::store)? {
        return Ok(None);
    }
    let Some(user) = users
        .get(&claims.user_id)
        .await
        .map_err(ServerError::store)?
    else {
        return Ok(None);
    };
    let identity = Identity {
        user_id: user.id,
        authenticated: true,
        admin: user.is_admin,
    };
    state
        .sessions
        .insert(hash, identity.clone(), claims.expires_at, now, generation);
    Ok(Some(identity))
}

/// Tokens verified recently, by hash, so a logged-in request does not pay for the HMAC, the
/// revocation lookup and the user lookup every time. An entry lives `ttl` seconds at most
/// (never past the token's expiry) and is dropped when the token is revoked through this
/// server. Servers sharing PostgreSQL learn of another server's logout within `ttl`.
pub struct Sessions {
    ttl: i64,
    capacity: usize,
    entries: std::sync::Mutex<std::collections::HashMap<String, Session>>,
    /// Bumped by every revocation; an entry verified before it is not inserted.
    revocations: std::sync::atomic::AtomicU64,
}

struct Session {
    identity: Identity,
    /// Unix seconds after which the entry is not used.
    until: i64,
}

impl Sessions {
    pub fn new(ttl_secs: u64, capacity: usize) -> Sessions {
        Sessions {
            ttl: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
            capacity,
            entries: Default::default(),
            revocations: Default::default(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.revocations.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Session>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn get(&self, hash: &str, now: i64) -> Option<Identity> {
        if self.ttl == 0 {
            return None;
        }
        let entries = self.lock();
        entries
            .get(hash)
            .filter(|s| now <= s.until)
            .map(|s| s.identity.clone())
    }

    /// Remember a token verified while [`Sessions::generation`] was `generation`.
    pub fn insert(
        &self,
        hash: String,
        identity: Identity,
        expires_at: i64,
        now: i64,
        generation: u64,
    ) {
        if self.ttl == 0 || self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        // Under the lock, so it orders with `forget`.
        if self.generation() != generation {
            return;
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, s| now <= s.until);
            if entries.len() >= self.capacity {
                // Still full of live entries: start over rather than grow.
                entries.clear();
            }
        }
        let until = now.saturating_add(self.ttl).min(expires_at);
        entries.insert(hash, Session { identity, until });
    }

    /// Forget a token (logout, revocation): the next request with it is checked in full.
    pub fn forget(&self, hash: &str) {
        let mut entries = self.lock();
        self.revocations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.remove(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let tokens = Tokens::new(b"a secret that is long enough....", 100);
        let (token, expires) = tokens.issue("alice", 1_000);
        assert_eq!(expires, 1_100);
        let claims = tokens.verify(&token, 1_050).expect("valid");
        assert_eq!(claims.user_id, "alice");
        assert!(claims.issued_at >= 1_000_000, "{claims:?}");
        let (again, _) = tokens.issue("alice", 1_000);
        assert_ne!(
            token, again,
            "two logins in one second get different tokens"
        );
        assert!(tokens.verify(&token, 1_101).is_none(), "expired");
        assert!(tokens.verify(&token, 1_100).is_some(), "expiry is strict");
        let other = Tokens::new(b"another secret", 100);
        assert!(other.verify(&token, 1_050).is_none(), "wrong key");
        let (payload, signature) = token.split_once('.').unwrap();
        let forged = format!("{}.{signature}", URL_SAFE.encode("admin|9999|1000"));
        assert!(tokens.verify(&forged, 1_050).is_none(), "forged payload");
        assert!(
            tokens
                .verify(&format!("{payload}.{signature}.x"), 1_050)
                .is_none()
        );
        assert!(tokens.verify("garbage", 1_050).is_none());
        let text = String::from_utf8(URL_SAFE.decode(payload).unwrap()).unwrap();
        assert!(
            text.starts_with("alice|1100|"),
            "the reference's payload format: {text}"
        );
    }

    #[test]
    fn sessions_expire_and_are_forgotten_on_revocation() {
        let alice = Identity {
            user_id: "alice".into(),
            authenticated: true,
            admin: false,
        };
        let sessions = Sessions::new(30, 2);
        let g = sessions.generation();
        sessions.insert("h1".into(), alice.clone(), 1_000_000, 100, g);
        assert_eq!(sessions.get("h1", 130), Some(alice.clone()));
        assert_eq!(sessions.get("h1", 131), None, "ttl");
        // Never past the token's own expiry.
        sessions.insert("h2".into(), alice.clone(), 110, 100, g);
        assert_eq!(sessions.get("h2", 111), None);
        // A revocation drops the entry, and an older verification cannot put it back.
        sessions.insert("h3".into(), alice.clone(), 1_000_000, 100, g);
        sessions.forget("h3");
        assert_eq!(sessions.get("h3", 101), None);
        sessions.insert("h3".into(), alice.clone(), 1_000_000, 100, g);
        assert_eq!(
            sessions.get("h3", 101),
            None,
            "verified before the revocation"
        );
        assert!(Sessions::new(0, 10).get("h1", 100).is_none());
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn usernames_are_checked() {
        assert!(valid_username("alice.b-c_1"));
        for bad in ["", "../x", "a/b", "a|b", "a..b", &"x".repeat(65)] {
            assert!(!valid_username(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_are_generated_once_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_secret(dir.path(), None).unwrap();
        let second = load_secret(dir.path(), None).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(".auth_secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let exactly_32 = "k".repeat(32);
        assert_eq!(
            load_secret(dir.path(), Some(&exactly_32)).unwrap(),
            exactly_32.as_bytes()
        );
        // Too short to be a key: refused, with the reason.
        let error = load_secret(dir.path(), Some("env-secret")).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(
            error.to_string().contains("AUTH_SECRET_KEY is 10 bytes"),
            "{error}"
        );
        // Empty counts as unset.
        assert_eq!(load_secret(dir.path(), Some("")).unwrap(), first);
    }
}
