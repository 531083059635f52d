//! Logging in and out, and creating accounts.

use sceneintruder_store::Database;

use crate::auth::{Tokens, hash_password, token_hash, valid_username, verify_password};
use crate::error::ServerError;

/// A hash verified when the user does not exist, so a wrong username costs the same time
/// as a wrong password and the answer never reveals which one it was.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password("no such user, but the same amount of work").unwrap_or_default()
});

/// Argon2 is tens of milliseconds of CPU and 19 MiB of memory per hash: it runs on the
/// blocking pool so it never stalls the async workers, and at most this many at once so a
/// burst of logins cannot exhaust memory (the rest wait their turn).
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.max(2))
    })
}

/// Run one Argon2 computation on the blocking pool, within [`hashing_slots`].
async fn argon2<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| format!("password hashing is unavailable: {e}"))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("password hashing failed: {e}"))
}

pub struct LoggedIn {
    pub token: String,
    pub user_id: String,
}

/// Check credentials and issue a token. Every failure is the same `INVALID_CREDENTIALS`.
pub async fn login(
    db: &Database,
    tokens: &Tokens,
    username: &str,
    password: &str,
    now: i64,
) -> Result<LoggedIn, ServerError> {
    let user = if valid_username(username) {
        db.users().get(username).await.map_err(ServerError::store)?
    } else {
        None
    };
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password = password.to_string();
    let password_ok = argon2(move || {
        let hash = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
        verify_password(&password, hash)
    })
    .await
    .map_err(ServerError::internal)?;
    let Some(user) = user.filter(|_| password_ok) else {
        return Err(ServerError::InvalidCredentials);
    };
    db.users()
        .touch_login(&user.id, now)
        .await
        .map_err(ServerError::store)?;
    let (token, _) = tokens.issue(&user.id, now);
    Ok(LoggedIn {
        token,
        user_id: user.id,
    })
}

/// End a token before it expires (a no-op for anything that is not a valid token).
pub async fn logout(
    db: &Database,
    tokens: &Tokens,
    token: &str,
    now: i64,
) -> Result<(), ServerError> {
    if let Some(claims) = tokens.verify(token, now) {
        let users = db.users();
        users
            .revoke_token(&token_hash(token), claims.expires_at)
            .await
            .map_err(ServerError::store)?;
        // Keep the list short: expired tokens need no revocation.
        users.purge_revoked(now).await.map_err(ServerError::store)?;
    }
    Ok(())
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error("usernames are 1-64 characters of letters, digits, _ . - (no ..)")]
    BadName,
    #[error("the password must be at least 8 characters")]
    WeakPassword,
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    Failed(String),
}

pub async fn add_user(
    db: &Database,
    username: &str,
    password: &str,
    admin: bool,
    now: i64,
) -> Result<(), AddUserError> {
    if !valid_username(username) || username == crate::auth::GUEST {
        return Err(AddUserError::BadName);
    }
    if password.chars().count() < 8 {
        return Err(AddUserError::WeakPassword);
    }
    let password = password.to_string();
    let hash = argon2(move || hash_password(&password))
        .await
        .and_then(|hashed| hashed)
        .map_err(AddUserError::Failed)?;
    match db.users().create(username, &hash, admin, now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(AddUserError::Exists(username.to_string())),
        Err(e) => Err(AddUserError::Failed(e.to_string())),
    }
}
