//! `users` (accounts that can log in) and `revoked_tokens` (tokens ended by logout).

use crate::{Database, StoreError};

/// A stored account. Times are Unix epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: i64,
    pub last_login: Option<i64>,
}

pub struct UserRepo<'a> {
    db: &'a Database,
}

impl<'a> UserRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        UserRepo { db }
    }

    pub async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT * FROM users WHERE id = $1";
        let user = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?
        });
        Ok(user)
    }

    /// Create an account; `Ok(false)` when the id is taken.
    pub async fn create(
        &self,
        id: &str,
        password_hash: &str,
        is_admin: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO users (id, password_hash, is_admin, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING";
        let rows = with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(id).bind(password_hash).bind(is_admin).bind(now)
                .execute(pool).await?.rows_affected()
        });
        Ok(rows == 1)
    }

    /// Replace a password; `Ok(false)` when there is no such account.
    pub async fn set_password(&self, id: &str, password_hash: &str) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";
        let rows = with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(id).bind(password_hash).execute(pool).await?.rows_affected()
        });
        Ok(rows == 1)
    }

    pub async fn touch_login(&self, id: &str, now: i64) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE users SET last_login = $2 WHERE id = $1";
        with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(id).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM users";
        let n: i64 = with_pool!(self.db, pool => {
            sqlx::query_scalar(SQL).fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Remember that a token was ended (by the SHA-256 of the token, never the token).
    pub async fn revoke_token(&self, token_hash: &str, expires_at: i64) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO revoked_tokens (token_hash, expires_at) VALUES ($1, $2) \
                           ON CONFLICT (token_hash) DO NOTHING";
        with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(token_hash).bind(expires_at).execute(pool).await?;
        });
        Ok(())
    }

    pub async fn is_revoked(&self, token_hash: &str) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM revoked_tokens WHERE token_hash = $1";
        let n: i64 = with_pool!(self.db, pool => {
            sqlx::query_scalar(SQL).bind(token_hash).fetch_one(pool).await?
        });
        Ok(n > 0)
    }

    /// Forget revocations of tokens that have expired anyway.
    pub async fn purge_revoked(&self, now: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM revoked_tokens WHERE expires_at < $1";
        let rows = with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(now).execute(pool).await?.rows_affected()
        });
        Ok(rows)
    }
}
