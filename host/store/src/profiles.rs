//! `user_profiles`: one JSON document per user, changed with optimistic locking.

use crate::{Database, StoreError};

/// A stored profile document and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: String,
    pub document: String,
    pub version: i64,
}

pub struct ProfileRepo<'a> {
    db: &'a Database,
}

impl<'a> ProfileRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        ProfileRepo { db }
    }

    pub async fn get(&self, user_id: &str) -> Result<Option<Profile>, StoreError> {
        const SQL: &str = "SELECT user_id, document, version FROM user_profiles WHERE user_id = $1";
        let row: Option<(String, String, i64)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(user_id).fetch_optional(pool).await?
        });
        Ok(row.map(|(user_id, document, version)| Profile {
            user_id,
            document,
            version,
        }))
    }

    /// Insert a first document unless one exists (then the existing one wins).
    pub async fn create(&self, user_id: &str, document: &str, now: i64) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO user_profiles (user_id, document, version, updated_at) \
                           VALUES ($1, $2, 1, $3) ON CONFLICT (user_id) DO NOTHING";
        with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(user_id).bind(document).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Replace the document if it is still at `version`; false when someone else changed it
    /// first (read again and retry).
    pub async fn replace(
        &self,
        user_id: &str,
        document: &str,
        version: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE user_profiles SET document = $2, version = version + 1, \
                           updated_at = $4 WHERE user_id = $1 AND version = $3";
        let rows = with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(user_id).bind(document).bind(version).bind(now)
                .execute(pool).await?.rows_affected()
        });
        Ok(rows == 1)
    }
}
