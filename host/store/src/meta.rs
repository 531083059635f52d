//! `server_meta`: small facts about this installation.

use chrono::Utc;

use crate::{Database, StoreError};

pub struct MetaRepo<'a> {
    db: &'a Database,
}

impl<'a> MetaRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        MetaRepo { db }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT value FROM server_meta WHERE key = $1";
        let value = with_pool!(self.db, pool => {
            sqlx::query_scalar(SQL).bind(key).fetch_optional(pool).await?
        });
        Ok(value)
    }

    /// Store `value` under `key` unless the key exists; returns the value that is stored.
    /// Concurrent callers all get the same winner.
    pub async fn get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        const SQL: &str = "INSERT INTO server_meta (key, value, updated_at) VALUES ($1, $2, $3) \
                           ON CONFLICT (key) DO NOTHING";
        with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(key).bind(value).bind(Utc::now()).execute(pool).await?;
        });
        self.get(key)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
    }

    /// Insert or replace `key`.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO server_meta (key, value, updated_at) VALUES ($1, $2, $3) \
                           ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                           updated_at = excluded.updated_at";
        with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(key).bind(value).bind(Utc::now()).execute(pool).await?;
        });
        Ok(())
    }
}
