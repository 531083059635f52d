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
mod comics;
mod documents;
mod jobs;
mod meta;
mod readers;
mod scenes;
mod stories;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use changes::Changes;
pub use comics::{
    Claim, ComicImage, ComicJob, ComicOverview, ComicPrompt, ComicReference, ComicReferences,
    ComicRepo, Upserted,
};
pub use documents::{Document, DocumentRepo};
pub use jobs::{Job, JobCompletion, JobRepo, JobState, NewJob};
pub use meta::MetaRepo;
pub use scenes::{Line, NewScene, SceneRepo, SceneRow, SceneSummary, SceneView};
pub use stories::{LogChange, Part, StoredStory, StoryRepo, StoryRows};
pub use users::{User, UserRepo};

/// SQLite reader connections beside the pool (see `readers`).
const READERS: usize = 8;

/// Bound of a health ping on SQLite (its busy timeout): a local file has no outage to report
/// quickly, only writers to wait for.
const SQLITE_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable overriding [`PoolSettings::acquire_timeout`] (milliseconds).
pub const ACQUIRE_TIMEOUT_ENV: &str = "SCENEINTRUDER_DB_ACQUIRE_TIMEOUT_MS";

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
    /// The database server cannot be reached right now: no connection within the acquire
    /// timeout, a connection refused or reset, an I/O error talking to it, or a server
    /// shutting down. Retrying later may succeed; nothing about the request is wrong.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(sqlx::Error),
    /// The disk holding the database is full (or failing): nothing was written.
    #[error("storage full: {0}")]
    Full(String),
}

impl StoreError {
    /// Whether this is [`StoreError::Unavailable`]: the database is unreachable, not the
    /// request or the data at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether this is [`StoreError::Full`].
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Full(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if unreachable(&e) {
            StoreError::Unavailable(e.to_string())
        } else if storage_full(&e) {
            STORAGE_FULL.store(true, std::sync::atomic::Ordering::Relaxed);
            StoreError::Full(e.to_string())
        } else {
            StoreError::Query(e)
        }
    }
}

/// Set when a write failed for lack of space, cleared by the next write that succeeds (see
/// [`Database::storage_full`]).
static STORAGE_FULL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A write succeeded: whatever filled the disk is over.
pub(crate) fn space_returned() {
    STORAGE_FULL.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// SQLite's "disk full" (13) and I/O errors (10 and its extended codes), PostgreSQL's class
/// 53100 (disk full).
fn storage_full(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    match code.parse::<i64>() {
        Ok(n) => n & 0xff == 13 || n & 0xff == 10,
        Err(_) => code == "53100",
    }
}

/// Whether `e` says the database server could not be reached (as opposed to a statement
/// that failed on a working server).
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        // No connection within the acquire timeout (a refused connection is retried until
        // then), a pool closing on shutdown, a socket that failed or was reset.
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.try_downcast_ref::<PgDatabaseError>().is_some_and(|pg| {
            let code = pg.code();
            // Class 08: connection exception; 57P01-03: the server is shutting down,
            // crashed or starting up; 53300: too many connections.
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Connection pool settings (PostgreSQL; SQLite keeps its own).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Longest a query waits for a pooled connection, opening a new one included (every
    /// connection attempt is bounded by it too). Past it the query fails with
    /// [`StoreError::Unavailable`], so requests fail fast while the database is away.
    pub acquire_timeout: Duration,
    /// How long [`Database::connect`] keeps trying to reach a server that refuses
    /// connections (one still starting up) before giving up.
    pub startup_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            acquire_timeout: Duration::from_secs(1),
            startup_timeout: Duration::from_secs(10),
        }
    }
}

impl PoolSettings {
    /// The defaults, with `acquire_timeout` from `SCENEINTRUDER_DB_ACQUIRE_TIMEOUT_MS` when
    /// set (a whole number of milliseconds, at least 1).
    pub fn from_env() -> Result<PoolSettings, StoreError> {
        PoolSettings::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<PoolSettings, StoreError> {
        let mut settings = PoolSettings::default();
        if let Some(text) = var(ACQUIRE_TIMEOUT_ENV) {
            let ms = text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or_else(|| {
                    StoreError::Connect(format!(
                        "{ACQUIRE_TIMEOUT_ENV} must be a positive number of milliseconds, not {text:?}"
                    ))
                })?;
            settings.acquire_timeout = Duration::from_millis(ms);
        }
        Ok(settings)
    }
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
    /// Bound of [`Database::ping`].
    ping_timeout: Duration,
}

impl Database {
    /// Open the database named by `url` (`sqlite://path/to/file.db` or `postgres://...`).
    /// SQLite files are created when missing and run in WAL mode. Pool settings are the
    /// defaults, adjusted by the environment (see [`PoolSettings::from_env`]).
    pub async fn connect(url: &str) -> Result<Database, StoreError> {
        Database::connect_with(url, &PoolSettings::from_env()?).await
    }

    /// [`Database::connect`] with explicit pool settings.
    pub async fn connect_with(url: &str, settings: &PoolSettings) -> Result<Database, StoreError> {
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
                // SQLite rolls a transaction back by itself when the disk is full (or on an
                // I/O error); sqlx's own ROLLBACK then fails and the connection could go back
                // to the pool inside a write transaction that later "commits" into nothing.
                // A connection that is not back in autocommit mode is never reused.
                .after_release(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Connection;
                        if conn.is_in_transaction() {
                            return Ok(false);
                        }
                        let mut handle = conn.lock_handle().await?;
                        // SAFETY: the handle is a live connection locked for this call;
                        // `sqlite3_get_autocommit` only reads its state.
                        let autocommit = unsafe {
                            libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr())
                        };
                        Ok(autocommit != 0)
                    })
                })
                .connect_with(options.clone())
                .await
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            // As many readers as the pool has connections: each read waits on a hand-off
            // to its connection's thread, and fewer readers left the cores idle meanwhile
            // (measured: 2 readers were slower than the pool, 8 faster).
            let readers = readers::Readers::open(&options, READERS).await?;
            let mut db = Database::new(Pool::Sqlite(pool), SQLITE_PING_TIMEOUT);
            db.readers = Some(std::sync::Arc::new(readers));
            Ok(db)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Connect(e.to_string()))?;
            // A short acquire timeout: while the server is away, a request waits at most this
            // long (opening a connection included) and then fails as `Unavailable`. Broken
            // connections are noticed when they fail (and dropped when released), so the pool
            // recovers by itself once the server is back.
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(settings.acquire_timeout)
                .test_before_acquire(false)
                .connect_lazy_with(options);
            // At startup, give a server that is still coming up `startup_timeout` to accept
            // the first connection; any other failure (credentials, unknown database) is
            // reported at once.
            let deadline = Instant::now() + settings.startup_timeout;
            loop {
                match pool.acquire().await {
                    Ok(_) => break,
                    Err(e) if unreachable(&e) && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(StoreError::Connect(e.to_string())),
                }
            }
            Ok(Database::new(
                Pool::Postgres(pool),
                settings.acquire_timeout,
            ))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }

    fn new(pool: Pool, ping_timeout: Duration) -> Database {
        Database {
            pool,
            readers: None,
            changes: Default::default(),
            ping_timeout,
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

    /// Whether the last failed write found the disk full and no scene write has succeeded
    /// since.
    pub fn storage_full(&self) -> bool {
        STORAGE_FULL.load(std::sync::atomic::Ordering::Relaxed)
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

    /// Round trip to the database (for health checks), bounded: on PostgreSQL by the pool's
    /// acquire timeout, so an unreachable server is reported as `Unavailable` in about that
    /// long, even when a pooled connection hangs instead of failing.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let round_trip = async {
            with_pool!(self, pool => {
                sqlx::query("SELECT 1").execute(pool).await?;
            });
            Ok(())
        };
        match tokio::time::timeout(self.ping_timeout, round_trip).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer to a ping within {} ms",
                self.ping_timeout.as_millis()
            ))),
        }
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

    /// Comics of scenes: documents, frame prompts, reference and frame image rows, the
    /// comic job claim.
    pub fn comics(&self) -> ComicRepo<'_> {
        ComicRepo::new(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_databases_are_told_apart_from_failed_statements() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
            sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into()),
        ] {
            let text = e.to_string();
            assert!(StoreError::from(e).is_unavailable(), "{text}");
        }
        for e in [
            sqlx::Error::RowNotFound,
            sqlx::Error::Protocol("bad".into()),
        ] {
            let text = e.to_string();
            assert!(!StoreError::from(e).is_unavailable(), "{text}");
        }
    }

    #[test]
    fn the_acquire_timeout_comes_from_the_environment() {
        let with = |value: &'static str| {
            PoolSettings::from_vars(move |name| {
                (name == ACQUIRE_TIMEOUT_ENV).then(|| value.to_string())
            })
        };
        assert_eq!(
            with("250").expect("valid").acquire_timeout,
            Duration::from_millis(250)
        );
        assert!(with("soon").is_err());
        assert!(with("0").is_err());
        assert_eq!(
            PoolSettings::from_vars(|_| None)
                .expect("default")
                .acquire_timeout,
            Duration::from_secs(1)
        );
    }
}
