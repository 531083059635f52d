//! Scenes and what belongs to them: characters, items, conversation lines. Documents are
//! JSON text owned by the server's domain layer; this repository only stores and orders them.
//! Creating and deleting a scene each happen in one transaction (creating one for a job also
//! completes the job in it).

use crate::jobs::{COMPLETE_RUN, JobRow};
use crate::{Database, Job, JobCompletion, StoreError};

/// A stored scene row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SceneRow {
    pub id: String,
    pub owner: String,
    pub document: String,
    pub settings: String,
    pub original_text: Option<String>,
    pub segments: Option<String>,
    pub created_at: i64,
}

/// Everything the scene view shows, read on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneView {
    pub row: SceneRow,
    /// Bumped by every write of the scene or anything in it.
    pub version: i64,
    /// Unix ms of the last stored change.
    pub updated_at: i64,
    pub characters: Vec<String>,
    pub items: Vec<String>,
    /// Every conversation line, oldest first.
    pub conversations: Vec<String>,
}

/// A scene with its counts, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneSummary {
    pub row: SceneRow,
    pub characters: i64,
    pub items: i64,
}

/// Everything a new scene starts with.
pub struct NewScene<'a> {
    pub row: &'a SceneRow,
    /// `(id, document)` in order.
    pub characters: &'a [(String, String)],
    /// `(id, document, created_at)`.
    pub items: &'a [(String, String, i64)],
}

/// The statement that bumps scene `$1`'s version and sets its change time to `$2`.
pub(crate) fn touch_sql(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => {
            "UPDATE scenes SET version = version + 1, updated_at = $2 WHERE id = $1"
        }
        crate::Backend::Postgres => {
            "UPDATE scenes SET version = nextval('scene_versions'), updated_at = $2 WHERE id = $1"
        }
    }
}

pub struct SceneRepo<'a> {
    db: &'a Database,
}

const SCENE_COLUMNS: &str = "id, owner, document, settings, original_text, segments, created_at";

/// A scene row with two numbers after it (version and change time, or the two counts).
type RowWithTwo = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);

/// The scene row and the two numbers after it.
fn split(r: RowWithTwo) -> (SceneRow, i64, i64) {
    let row = SceneRow {
        id: r.0,
        owner: r.1,
        document: r.2,
        settings: r.3,
        original_text: r.4,
        segments: r.5,
        created_at: r.6,
    };
    (row, r.7, r.8)
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl<'a> SceneRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        SceneRepo { db }
    }

    /// The statement every write of a scene runs in its transaction: a new version (from
    /// one sequence on PostgreSQL, so versions grow across servers) and the change time.
    fn touch(&self) -> &'static str {
        touch_sql(self.db.backend())
    }

    /// Store a scene with its characters and items, all or nothing.
    pub async fn create(&self, scene: NewScene<'_>) -> Result<(), StoreError> {
        self.store(&scene, None).await.map(|_| ())
    }

    /// Store a scene and complete the job run that produced it, in one transaction. When
    /// that run is no longer running (cancelled meanwhile, or taken back after its lease
    /// lapsed), nothing is stored and `None` is returned; so a late cancel or a crash
    /// between the two writes can leave neither an orphan scene nor a completed job without
    /// its scene.
    pub async fn create_completing(
        &self,
        scene: NewScene<'_>,
        job: JobCompletion<'_>,
    ) -> Result<Option<Job>, StoreError> {
        self.store(&scene, Some(&job)).await
    }

    async fn store(
        &self,
        scene: &NewScene<'_>,
        job: Option<&JobCompletion<'_>>,
    ) -> Result<Option<Job>, StoreError> {
        const SCENE: &str = "INSERT INTO scenes (id, owner, document, settings, original_text, \
                             segments, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
        const CHARACTER: &str = "INSERT INTO scene_characters (scene_id, id, position, document) \
                                 VALUES ($1, $2, $3, $4)";
        const ITEM: &str = "INSERT INTO scene_items (scene_id, id, document, created_at) \
                            VALUES ($1, $2, $3, $4)";
        let row = scene.row;
        let completed: Option<JobRow> = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            // The job first: its conditional UPDATE decides whether anything is stored, and
            // the row lock it takes makes a concurrent cancel wait for this transaction.
            let completed = match job {
                Some(job) => {
                    let row: Option<JobRow> = sqlx::query_as(COMPLETE_RUN)
                        .bind(job.id).bind(job.result).bind(job.message).bind(job.now)
                        .bind(i32::try_from(job.attempt).unwrap_or(i32::MAX))
                        .fetch_optional(&mut *tx).await?;
                    if row.is_none() {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    row
                }
                None => None,
            };
            sqlx::query(SCENE)
                .bind(&row.id).bind(&row.owner).bind(&row.document).bind(&row.settings)
                .bind(&row.original_text).bind(&row.segments).bind(row.created_at)
                .execute(&mut *tx).await?;
            for (position, (id, document)) in scene.characters.iter().enumerate() {
                sqlx::query(CHARACTER)
                    .bind(&row.id).bind(id).bind(position as i32).bind(document)
                    .execute(&mut *tx).await?;
            }
            for (id, document, created_at) in scene.items {
                sqlx::query(ITEM)
                    .bind(&row.id).bind(id).bind(document).bind(created_at)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            completed
        });
        self.db.changes().scene_changed(&row.id);
        completed.map(Job::try_from).transpose()
    }

    pub async fn get(&self, id: &str) -> Result<Option<SceneRow>, StoreError> {
        let sql = format!("SELECT {SCENE_COLUMNS} FROM scenes WHERE id = $1");
        let row = with_pool!(self.db, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row)
    }

    /// Scene `id` with its characters, items and every conversation line, on one
    /// connection; `None` when there is no such scene.
    pub async fn view(&self, id: &str) -> Result<Option<SceneView>, StoreError> {
        const SCENE: &str = "SELECT id, owner, document, settings, original_text, segments, \
                             created_at, version, updated_at FROM scenes WHERE id = $1";
        const CHARACTERS: &str =
            "SELECT document FROM scene_characters WHERE scene_id = $1 ORDER BY position, id";
        const ITEMS: &str =
            "SELECT document FROM scene_items WHERE scene_id = $1 ORDER BY created_at, id";
        const CONVERSATIONS: &str =
            "SELECT document FROM scene_conversations WHERE scene_id = $1 ORDER BY seq";
        let found = with_reader!(self.db, conn => {
            let row: Option<RowWithTwo> = sqlx::query_as(SCENE).bind(id)
                .fetch_optional(&mut *conn).await?;
            match row {
                None => None,
                Some(row) => {
                    let characters: Vec<(String,)> = sqlx::query_as(CHARACTERS).bind(id)
                        .fetch_all(&mut *conn).await?;
                    let items: Vec<(String,)> = sqlx::query_as(ITEMS).bind(id)
                        .fetch_all(&mut *conn).await?;
                    let conversations: Vec<(String,)> = sqlx::query_as(CONVERSATIONS).bind(id)
                        .fetch_all(&mut *conn).await?;
                    Some((row, characters, items, conversations))
                }
            }
        });
        let first = |rows: Vec<(String,)>| rows.into_iter().map(|r| r.0).collect();
        Ok(found.map(|(r, characters, items, conversations)| {
            let (row, version, updated_at) = split(r);
            SceneView {
                row,
                version,
                updated_at,
                characters: first(characters),
                items: first(items),
                conversations: first(conversations),
            }
        }))
    }

    /// The stored version of scene `id` (`None`: no such scene).
    pub async fn version(&self, id: &str) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT version FROM scenes WHERE id = $1";
        let row: Option<(i64,)> = with_reader!(self.db, conn => {
            sqlx::query_as(SQL).bind(id).fetch_optional(&mut *conn).await?
        });
        Ok(row.map(|r| r.0))
    }

    /// How many scenes `owner` has (everyone's for `None`) and their highest version: on
    /// PostgreSQL, where versions come from one sequence, any write, insert or delete among
    /// them changes this pair.
    pub async fn list_version(&self, owner: Option<&str>) -> Result<(i64, i64), StoreError> {
        const SQL: &str = "SELECT COUNT(*), COALESCE(MAX(version), 0) FROM scenes \
                           WHERE ($1 IS NULL OR owner = $1)";
        let row: (i64, i64) = with_reader!(self.db, conn => {
            sqlx::query_as(SQL).bind(owner).fetch_one(&mut *conn).await?
        });
        Ok(row)
    }

    /// Scenes oldest first with their counts; `owner: None` lists everyone's. The large
    /// columns (original text, segments) are not read.
    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<SceneSummary>, StoreError> {
        let sql = "SELECT id, owner, document, settings, NULL AS original_text, \
             NULL AS segments, created_at, \
             (SELECT COUNT(*) FROM scene_characters c WHERE c.scene_id = s.id) AS characters, \
             (SELECT COUNT(*) FROM scene_items i WHERE i.scene_id = s.id) AS items \
             FROM scenes s WHERE ($1 IS NULL OR owner = $1) ORDER BY created_at, id";
        let rows: Vec<RowWithTwo> = with_reader!(self.db, conn => {
            sqlx::query_as(sql).bind(owner).fetch_all(&mut *conn).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| {
                let (row, characters, items) = split(r);
                SceneSummary {
                    row,
                    characters,
                    items,
                }
            })
            .collect())
    }

    /// Replace the scene document (and optionally its segments).
    pub async fn update(
        &self,
        id: &str,
        document: &str,
        segments: Option<&str>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE scenes SET document = $2, segments = COALESCE($3, segments) \
                           WHERE id = $1";
        let touch = self.touch();
        let rows = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(SQL).bind(id).bind(document).bind(segments)
                .execute(&mut *tx).await?.rows_affected();
            sqlx::query(touch).bind(id).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
            rows
        });
        self.db.changes().scene_changed(id);
        Ok(rows == 1)
    }

    /// Replace the scene's settings document.
    pub async fn update_settings(&self, id: &str, settings: &str) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE scenes SET settings = $2 WHERE id = $1";
        let touch = self.touch();
        let rows = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(SQL).bind(id).bind(settings).execute(&mut *tx).await?
                .rows_affected();
            sqlx::query(touch).bind(id).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
            rows
        });
        self.db.changes().scene_changed(id);
        Ok(rows == 1)
    }

    /// Delete a scene and everything that belongs to it; false when there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let rows = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            // The story header first: a story write locks it first too, so a delete and a
            // write racing on PostgreSQL queue instead of deadlocking.
            for sql in [
                "DELETE FROM stories WHERE scene_id = $1",
                "DELETE FROM story_nodes WHERE scene_id = $1",
                "DELETE FROM story_choices WHERE scene_id = $1",
                "DELETE FROM story_tasks WHERE scene_id = $1",
                "DELETE FROM story_objectives WHERE scene_id = $1",
                "DELETE FROM story_locations WHERE scene_id = $1",
                "DELETE FROM story_progress_carry WHERE scene_id = $1",
                "DELETE FROM scene_conversations WHERE scene_id = $1",
                "DELETE FROM scene_items WHERE scene_id = $1",
                "DELETE FROM scene_characters WHERE scene_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            let rows = sqlx::query("DELETE FROM scenes WHERE id = $1")
                .bind(id).execute(&mut *tx).await?.rows_affected();
            // The comic after the scene row (its foreign key cascades there already): a comic
            // write locks the scene row first, then the comic header, then the comic's rows.
            for sql in [
                "DELETE FROM comics WHERE scene_id = $1",
                "DELETE FROM comic_prompts WHERE scene_id = $1",
                "DELETE FROM comic_references WHERE scene_id = $1",
                "DELETE FROM comic_images WHERE scene_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            rows
        });
        self.db.changes().scene_changed(id);
        Ok(rows == 1)
    }

    /// Character documents in order.
    pub async fn characters(&self, scene_id: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str =
            "SELECT document FROM scene_characters WHERE scene_id = $1 ORDER BY position, id";
        let rows: Vec<(String,)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(scene_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Item documents, oldest first.
    pub async fn items(&self, scene_id: &str) -> Result<Vec<String>, StoreError> {
        const SQL: &str =
            "SELECT document FROM scene_items WHERE scene_id = $1 ORDER BY created_at, id";
        let rows: Vec<(String,)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(scene_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn item(&self, scene_id: &str, id: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT document FROM scene_items WHERE scene_id = $1 AND id = $2";
        let row: Option<(String,)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(scene_id).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(|r| r.0))
    }

    /// Insert or replace an item.
    pub async fn put_item(
        &self,
        scene_id: &str,
        id: &str,
        document: &str,
        created_at: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO scene_items (scene_id, id, document, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (scene_id, id) \
                           DO UPDATE SET document = excluded.document";
        let touch = self.touch();
        with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(SQL).bind(scene_id).bind(id).bind(document).bind(created_at)
                .execute(&mut *tx).await?;
            sqlx::query(touch).bind(scene_id).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.db.changes().scene_changed(scene_id);
        Ok(())
    }

    pub async fn delete_item(&self, scene_id: &str, id: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM scene_items WHERE scene_id = $1 AND id = $2";
        let touch = self.touch();
        let rows = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(SQL).bind(scene_id).bind(id).execute(&mut *tx).await?
                .rows_affected();
            sqlx::query(touch).bind(scene_id).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
            rows
        });
        self.db.changes().scene_changed(scene_id);
        Ok(rows == 1)
    }

    /// Append conversation lines in order.
    pub async fn append_conversations(
        &self,
        scene_id: &str,
        lines: &[Line],
    ) -> Result<(), StoreError> {
        let touch = self.touch();
        let serialise = lines_lock_sql(self.db.backend());
        with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            if let Some(sql) = serialise {
                sqlx::query(sql).bind(scene_id).execute(&mut *tx).await?;
            }
            for line in lines {
                insert_line!(&mut *tx, scene_id, line);
            }
            sqlx::query(touch).bind(scene_id).bind(now_ms()).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.db.changes().scene_changed(scene_id);
        Ok(())
    }

    /// The newest `limit` lines after skipping the newest `skip`, returned oldest first; and
    /// the total number of lines.
    pub async fn conversations(
        &self,
        scene_id: &str,
        limit: i64,
        skip: i64,
    ) -> Result<(Vec<String>, i64), StoreError> {
        const PAGE: &str = "SELECT document FROM scene_conversations WHERE scene_id = $1 \
                            ORDER BY seq DESC LIMIT $2 OFFSET $3";
        const COUNT: &str = "SELECT COUNT(*) FROM scene_conversations WHERE scene_id = $1";
        let (mut rows, total): (Vec<(String,)>, (i64,)) = with_pool!(self.db, pool => {
            let rows = sqlx::query_as(PAGE).bind(scene_id).bind(limit).bind(skip)
                .fetch_all(pool).await?;
            let total = sqlx::query_as(COUNT).bind(scene_id).fetch_one(pool).await?;
            (rows, total)
        });
        rows.reverse();
        Ok((rows.into_iter().map(|r| r.0).collect(), total.0))
    }
}

/// One conversation line to append: its id and document, the story node it is about, and
/// whether it is a story line (which reveals that node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub id: String,
    pub document: String,
    pub node_id: Option<String>,
    pub story: bool,
}

/// On PostgreSQL, a statement that makes appends to one scene's conversation wait for each
/// other until commit: sequence numbers are drawn at insert time, so without it two turns
/// written at once interleave their lines. SQLite writes one transaction at a time anyway.
pub(crate) fn lines_lock_sql(backend: crate::Backend) -> Option<&'static str> {
    match backend {
        crate::Backend::Postgres => {
            Some("SELECT pg_advisory_xact_lock(hashtext('scene_conversations'), hashtext($1))")
        }
        crate::Backend::Sqlite => None,
    }
}

/// Insert one conversation line on `$conn` (a `&mut` connection of either backend).
macro_rules! insert_line {
    ($conn:expr, $scene_id:expr, $line:expr) => {{
        let line: &$crate::scenes::Line = $line;
        sqlx::query(
            "INSERT INTO scene_conversations (scene_id, id, document, node_id, story) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($scene_id)
        .bind(&line.id)
        .bind(&line.document)
        .bind(&line.node_id)
        .bind(i32::from(line.story))
        .execute($conn)
        .await?;
    }};
}
pub(crate) use insert_line;
