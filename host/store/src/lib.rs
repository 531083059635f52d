//! Persistence for SceneIntruder: one [`Database`] over SQLite (embedded default) or
//! PostgreSQL, with per-backend migrations and one repository per aggregate.
//!
//! Repositories use the same SQL text on both backends where the dialects agree (`$1`
//! placeholders work on both); where they differ, the repository matches on the backend.

/// Run the same query code against whichever pool the database holds. The body is
/// compiled once per backend, so it must type-check for both.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}

/// Run a read on one connection: a reader beside the pool on SQLite (see `readers`), a
/// pooled connection on PostgreSQL. `$conn` is a `&mut` connection in the body.
macro_rules! with_reader {
    ($db:expr, $conn:ident => $body:expr) => {
        match (&$db.pool, &$db.readers) {
            (_, Some(readers)) => {
                let mut reader = readers.get().await?;
                let $conn = reader.conn();
                let out = $body;
                reader.done();
                out
            }
            ($crate::Pool::Sqlite(pool), None) => {
                let mut pooled = pool.acquire().await?;
                let $conn = &mut *pooled;
                $body
            }
            ($crate::Pool::Postgres(pool), None) => {
                let mut pooled = pool.acquire().await?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

mod changes;
mod documents;
mod jobs;
mod meta;
mod readers;
mod scenes;
mod stories;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use changes::Changes;
pub use documents::{Document, DocumentRepo};
pub use jobs::{Job, JobCompletion, JobRepo, JobState, NewJob};
pub use meta::MetaRepo;
pub use scenes::{Line, NewScene, SceneRepo, SceneRow, SceneSummary, SceneView};
pub use stories::{LogChange, Part, StoredStory, StoryRepo, StoryRows};
pub use users::{User, UserRepo};

/// SQLite reader connections beside the pool (see `readers`).
const READERS: usize = 8;

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
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The database: a pool, and the feed of changes this process made (read caches use it to
/// know when what they hold is stale).
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) pool: Pool,
    /// SQLite only: connections for the hot reads (see `readers`).
    pub(crate) readers: Option<std::sync::Arc<readers::Readers>>,
    changes: std::sync::Arc<Changes>,
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
            // WAL with `synchronous = NORMAL` is durable against a crash of this process and
            // fsyncs only at checkpoints. Connections are not pinged before each use: a broken
            // one fails its statement and is replaced.
            let options = options.synchronous(SqliteSynchronous::Normal);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            // As many readers as the pool has connections: each read waits on a hand-off
            // to its connection's thread, and fewer readers left the cores idle meanwhile
            // (measured: 2 readers were slower than the pool, 8 faster).
            let readers = readers::Readers::open(&options, READERS).await?;
            let mut db = Database::new(Pool::Sqlite(pool));
            db.readers = Some(std::sync::Arc::new(readers));
            Ok(db)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .test_before_acquire(false)
                .connect(url)
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            Ok(Database::new(Pool::Postgres(pool)))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    fn new(pool: Pool) -> Database {
        Database {
            pool,
            readers: None,
            changes: Default::default(),
        }
    }

    /// Apply pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        result.map_err(|e| StoreError::Migrate(e.to_string()))
    }

    pub fn backend(&self) -> Backend {
        match &self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// What this process changed, for read caches.
    pub fn changes(&self) -> &Changes {
        &self.changes
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

    /// Stories of scenes: header, nodes, choices, tasks, objectives, locations.
    pub fn stories(&self) -> StoryRepo<'_> {
        StoryRepo::new(self)
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
