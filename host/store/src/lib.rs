//! Persistence for SceneIntruder: one [`Database`] over SQLite (embedded default) or
//! PostgreSQL, with per-backend migrations and one repository per aggregate.
//!
//! Repositories use the same SQL text on both backends where the dialects agree (`$1`
//! placeholders work on both); where they differ, the repository matches on the backend.

/// Run the same query code against whichever pool the database holds. The body is
/// compiled once per backend, so it must type-check for both.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Database::Sqlite($pool) => $body,
            $crate::Database::Postgres($pool) => $body,
        }
    };
}

mod documents;
mod jobs;
mod meta;
mod scenes;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use documents::{Document, DocumentRepo};
pub use jobs::{Job, JobCompletion, JobRepo, JobState, NewJob};
pub use meta::MetaRepo;
pub use scenes::{NewScene, SceneRepo, SceneRow, SceneSummary};
pub use users::{User, UserRepo};

/// Errors of the store crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error("database migration failed: {0}")]
    Migrate(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Which backend a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on one backend.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Open the database named by `url` (`sqlite://path/to/file.db` or `postgres://...`).
    /// SQLite files are created when missing and run in WAL mode.
    pub async fn connect(url: &str) -> Result<Database, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Connect(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(parent) = Path::new(options.get_filename()).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Connect(format!("{}: {e}", parent.display())))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            Ok(Database::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            Ok(Database::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    /// Apply pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Database::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Database::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        result.map_err(|e| StoreError::Migrate(e.to_string()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Round trip to the database (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn meta(&self) -> MetaRepo<'_> {
        MetaRepo::new(self)
    }

    pub fn jobs(&self) -> JobRepo<'_> {
        JobRepo::new(self)
    }

    pub fn users(&self) -> UserRepo<'_> {
        UserRepo::new(self)
    }

    /// Per-user profile documents.
    pub fn profiles(&self) -> DocumentRepo<'_> {
        DocumentRepo::new(self, documents::DocumentTable::UserProfiles)
    }

    /// Scenes, their characters, items and conversations.
    pub fn scenes(&self) -> SceneRepo<'_> {
        SceneRepo::new(self)
    }

    /// Server settings documents.
    pub fn settings(&self) -> DocumentRepo<'_> {
        DocumentRepo::new(self, documents::DocumentTable::Settings)
    }

    /// Close every connection (on shutdown).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}
