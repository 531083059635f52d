//! Versioned JSON documents changed with optimistic locking: one table per kind of document
//! (`user_profiles` keyed by user id, `settings` keyed by section name), the same rules for all.

use crate::{Database, StoreError};

/// Which table a [`DocumentRepo`] reads and writes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DocumentTable {
    /// Per-user profile, preferences, items and skills.
    UserProfiles,
    /// Server settings (providers, their configuration and encrypted keys).
    Settings,
}

impl DocumentTable {
    fn name(self) -> &'static str {
        match self {
            DocumentTable::UserProfiles => "user_profiles",
            DocumentTable::Settings => "settings",
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            DocumentTable::UserProfiles => "user_id",
            DocumentTable::Settings => "name",
        }
    }
}

/// A stored document and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub key: String,
    pub document: String,
    pub version: i64,
    /// Unix seconds of the last write.
    pub updated_at: i64,
}

pub struct DocumentRepo<'a> {
    db: &'a Database,
    table: DocumentTable,
}

impl<'a> DocumentRepo<'a> {
    pub(crate) fn new(db: &'a Database, table: DocumentTable) -> Self {
        DocumentRepo { db, table }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Document>, StoreError> {
        let sql = format!(
            "SELECT {k}, document, version, updated_at FROM {t} WHERE {k} = $1",
            t = self.table.name(),
            k = self.table.key_column()
        );
        let row: Option<(String, String, i64, i64)> = with_pool!(self.db, pool => {
            sqlx::query_as(&sql).bind(key).fetch_optional(pool).await?
        });
        Ok(row.map(|(key, document, version, updated_at)| Document {
            key,
            document,
            version,
            updated_at,
        }))
    }

    /// The stored version of `key` (0 when there is none): a cheap "has it changed?".
    pub async fn version(&self, key: &str) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT version FROM {t} WHERE {k} = $1",
            t = self.table.name(),
            k = self.table.key_column()
        );
        let row: Option<(i64,)> = with_pool!(self.db, pool => {
            sqlx::query_as(&sql).bind(key).fetch_optional(pool).await?
        });
        Ok(row.map_or(0, |r| r.0))
    }

    /// Insert a first document unless one exists (then the existing one wins); true when
    /// this call inserted it.
    pub async fn create(&self, key: &str, document: &str, now: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO {t} ({k}, document, version, updated_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT ({k}) DO NOTHING",
            t = self.table.name(),
            k = self.table.key_column()
        );
        let rows = with_pool!(self.db, pool => {
            sqlx::query(&sql).bind(key).bind(document).bind(now).execute(pool).await?
                .rows_affected()
        });
        Ok(rows == 1)
    }

    /// Replace the document if it is still at `version`; false when someone else changed it
    /// first (read again and retry).
    pub async fn replace(
        &self,
        key: &str,
        document: &str,
        version: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {t} SET document = $2, version = version + 1, updated_at = $4 \
             WHERE {k} = $1 AND version = $3",
            t = self.table.name(),
            k = self.table.key_column()
        );
        let rows = with_pool!(self.db, pool => {
            sqlx::query(&sql).bind(key).bind(document).bind(version).bind(now)
                .execute(pool).await?.rows_affected()
        });
        Ok(rows == 1)
    }
}
