//! Comics: one per scene. The header row (`comics`) holds the storyboard analysis, the key
//! elements and the call metrics (JSON documents owned by the domain layer), a version and the
//! claim of the comic job running for the scene; beside it are one prompt per frame, the
//! uploaded reference images and the generated frame images. Image bytes live in the blob
//! store: rows here keep only their blob keys and metadata, and every write that drops a blob
//! from the comic returns its key so that the caller can delete it.
//!
//! Every write is one transaction that writes the header row once, before any other comic
//! row (an upsert that creates it, or bumps its `version`): writes of one comic queue behind
//! each other and never lose an update. On PostgreSQL the transaction first takes a shared
//! lock on the scene row (what the header's foreign key check takes anyway), so every comic
//! write locks scene row, header, comic rows in that order, the order of a scene delete
//! (which deletes the scene row, then the comic it cascades to): nothing deadlocks. A write
//! for a scene that does not exist stores nothing and says so (`None`).
//!
//! Lists are in byte-wise order of their ids (`frame_10` before `frame_2`), as the API
//! promises: SQLite compares text byte-wise, and the id columns are `COLLATE "C"` on
//! PostgreSQL.

use crate::scenes::now_ms;
use crate::{Database, StoreError};

pub struct ComicRepo<'a> {
    db: &'a Database,
}

/// What `GET /comic` shows: which artefacts exist. A scene without a comic has all flags
/// false, no references and no images (and version 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComicOverview {
    /// The comic's version (0: nothing was ever written).
    pub version: i64,
    pub has_analysis: bool,
    pub has_prompts: bool,
    pub has_key_elements: bool,
    pub reference_count: i64,
    /// Frame ids that have an image, byte-wise sorted.
    pub images: Vec<String>,
}

/// The prompt document of one frame.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ComicPrompt {
    pub frame_id: String,
    pub document: String,
    /// Unix ms of its last write.
    pub updated_at: i64,
}

/// An uploaded reference image of a key element.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ComicReference {
    pub element_id: String,
    /// Where the bytes are in the blob store.
    pub blob_key: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Unix ms.
    pub uploaded_at: i64,
}

/// The reference index of a comic: its references in element id order, and when the index
/// was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComicReferences {
    /// Unix ms of the last upload or delete.
    pub updated_at: i64,
    pub references: Vec<ComicReference>,
}

/// The generated image of one frame.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ComicImage {
    pub frame_id: String,
    /// Where the bytes are in the blob store.
    pub blob_key: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// The resume signature document (JSON) the image was generated with, if any.
    pub signature: Option<String>,
    /// Unix ms.
    pub generated_at: i64,
}

/// A stored blob row (reference or image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upserted {
    /// The comic's version after the write.
    pub version: i64,
    /// The blob the row pointed to before, when it was another one than the new row's: it is
    /// no longer referenced, and the caller deletes it.
    pub stale_blob_key: Option<String>,
}

/// The comic job running for a scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComicJob {
    pub job_id: String,
    /// Unix ms of its claim (or of its last renewal).
    pub claimed_at: i64,
}

/// The outcome of [`ComicRepo::try_claim_job`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The job holds the scene's comic now.
    Claimed,
    /// Another job holds it (see [`ComicRepo::running_job`]).
    Held,
    /// There is no such scene.
    NoScene,
}

/// The documents on the header row.
#[derive(Debug, Clone, Copy)]
enum Doc {
    Analysis,
    KeyElements,
    Metrics,
}

impl Doc {
    fn column(self) -> &'static str {
        match self {
            Doc::Analysis => "analysis",
            Doc::KeyElements => "key_elements",
            Doc::Metrics => "metrics",
        }
    }
}

/// The statement that creates the header of comic `$1` (when scene `$1` exists) or bumps its
/// version, at `$2`; with `document`, it also stores `$3` in that document's column, with
/// `references`, it marks the reference index written. Returns the new version; no row when
/// there is no such scene. Every write that adds to a comic runs it first (after
/// [`SCENE_LOCK`]): it takes the header's row lock. It is the transaction's only write of
/// the header: on PostgreSQL, updating a row version the transaction wrote itself runs the
/// foreign key check again.
fn header_sql(document: Option<Doc>, references: bool) -> String {
    let (mut columns, mut values, mut set) = (String::new(), String::new(), String::new());
    if let Some(doc) = document {
        let c = doc.column();
        columns.push_str(&format!(", {c}"));
        values.push_str(", $3");
        set.push_str(&format!(", {c} = excluded.{c}"));
    }
    if references {
        columns.push_str(", references_updated_at");
        values.push_str(", $2");
        set.push_str(", references_updated_at = excluded.references_updated_at");
    }
    format!(
        "INSERT INTO comics (scene_id, version, updated_at{columns}) \
         SELECT $1, 1, $2{values} WHERE EXISTS (SELECT 1 FROM scenes WHERE id = $1) \
         ON CONFLICT (scene_id) DO UPDATE SET version = comics.version + 1, \
         updated_at = excluded.updated_at{set} RETURNING version"
    )
}

/// PostgreSQL: the first statement of every comic write transaction. It holds the scene row
/// (shared, as the foreign key check of a header write would) before the header, the order
/// in which a scene delete takes them (scene row, then the comic it cascades to): a write
/// and a delete of one scene queue instead of deadlocking, and a write that waited for a
/// delete finds no scene. SQLite runs one write transaction at a time; its writes start
/// with a write to the header, which takes the write lock at once.
const SCENE_LOCK: &str = "SELECT 1 FROM scenes WHERE id = $1 FOR KEY SHARE";

/// Bumps the version of an existing header `$1` at `$2` (for writes that only remove: with
/// no header there is nothing to remove). Returns the new version.
const BUMP_HEADER: &str = "UPDATE comics SET version = version + 1, updated_at = $2 \
    WHERE scene_id = $1 RETURNING version";

/// [`BUMP_HEADER`] that also marks the reference index as written.
const BUMP_REFERENCES: &str = "UPDATE comics SET version = version + 1, updated_at = $2, \
    references_updated_at = $2 WHERE scene_id = $1 RETURNING version";

/// Whether `e` is a foreign key violation: the scene is gone (not expected after
/// [`SCENE_LOCK`], but a missing scene is what it means).
fn missing_scene(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// In transaction `$tx` (of either backend): lock the scene row with `$scene_lock` (see
/// [`ComicRepo::scene_lock`]); whether the scene exists (always true on SQLite).
macro_rules! lock_scene {
    ($tx:expr, $scene_lock:expr, $scene_id:expr) => {
        match $scene_lock {
            Some(sql) => sqlx::query(sql)
                .bind($scene_id)
                .fetch_optional(&mut *$tx)
                .await?
                .is_some(),
            None => true,
        }
    };
}

/// In transaction `$tx` (of either backend): lock the scene row (see `lock_scene!`), then
/// run the header statement `$header` (see [`header_sql`]) with the scene id, now and
/// the optional document. The new version, or `None` when the scene does not exist (the
/// caller rolls back). Other errors return from the enclosing function.
macro_rules! lock_header {
    ($tx:expr, $scene_lock:expr, $header:expr, $scene_id:expr, $now:expr $(, $document:expr)?) => {{
        if lock_scene!($tx, $scene_lock, $scene_id) {
            let locked: Result<Option<(i64,)>, sqlx::Error> = sqlx::query_as($header)
                .bind($scene_id)
                .bind($now)
                $(.bind($document))?
                .fetch_optional(&mut *$tx)
                .await;
            match locked {
                Ok(row) => row.map(|r| r.0),
                Err(e) if missing_scene(&e) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        }
    }};
}

const PROMPT_COLUMNS: &str = "frame_id, document, updated_at";
const REFERENCE_COLUMNS: &str =
    "element_id, blob_key, file_name, content_type, size_bytes, uploaded_at";
const IMAGE_COLUMNS: &str = "frame_id, blob_key, content_type, size_bytes, signature, generated_at";

impl<'a> ComicRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> ComicRepo<'a> {
        ComicRepo { db }
    }

    /// [`SCENE_LOCK`] on PostgreSQL.
    fn scene_lock(&self) -> Option<&'static str> {
        match self.db.backend() {
            crate::Backend::Postgres => Some(SCENE_LOCK),
            crate::Backend::Sqlite => None,
        }
    }

    /// Record a committed write of the comic (it belongs to the scene: read caches keyed on
    /// the scene's generation must see it).
    fn changed(&self, scene_id: &str) {
        self.db.changes().scene_changed(scene_id);
    }

    /// The flags and counts of the comic overview, on one connection.
    pub async fn overview(&self, scene_id: &str) -> Result<ComicOverview, StoreError> {
        const HEADER: &str = "SELECT c.version, c.analysis IS NOT NULL, \
            EXISTS (SELECT 1 FROM comic_prompts p WHERE p.scene_id = c.scene_id), \
            c.key_elements IS NOT NULL, \
            (SELECT COUNT(*) FROM comic_references r WHERE r.scene_id = c.scene_id) \
            FROM comics c WHERE c.scene_id = $1";
        const IMAGES: &str =
            "SELECT frame_id FROM comic_images WHERE scene_id = $1 ORDER BY frame_id";
        let found = with_reader!(self.db, conn => {
            let header: Option<(i64, bool, bool, bool, i64)> = sqlx::query_as(HEADER)
                .bind(scene_id).fetch_optional(&mut *conn).await?;
            match header {
                None => None,
                Some(header) => {
                    let images: Vec<(String,)> = sqlx::query_as(IMAGES).bind(scene_id)
                        .fetch_all(&mut *conn).await?;
                    Some((header, images))
                }
            }
        });
        Ok(match found {
            None => ComicOverview::default(),
            Some((h, images)) => ComicOverview {
                version: h.0,
                has_analysis: h.1,
                has_prompts: h.2,
                has_key_elements: h.3,
                reference_count: h.4,
                images: images.into_iter().map(|r| r.0).collect(),
            },
        })
    }

    /// The comic's version (bumped by every write of an artefact); `None` when the scene has
    /// no comic.
    pub async fn version(&self, scene_id: &str) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT version FROM comics WHERE scene_id = $1";
        let row: Option<(i64,)> = with_reader!(self.db, conn => {
            sqlx::query_as(SQL).bind(scene_id).fetch_optional(&mut *conn).await?
        });
        Ok(row.map(|r| r.0))
    }

    async fn get_document(&self, scene_id: &str, doc: Doc) -> Result<Option<String>, StoreError> {
        let sql = format!("SELECT {} FROM comics WHERE scene_id = $1", doc.column());
        let row: Option<(Option<String>,)> = with_reader!(self.db, conn => {
            sqlx::query_as(&sql).bind(scene_id).fetch_optional(&mut *conn).await?
        });
        Ok(row.and_then(|r| r.0))
    }

    async fn put_document(
        &self,
        scene_id: &str,
        doc: Doc,
        document: &str,
    ) -> Result<Option<i64>, StoreError> {
        let header = header_sql(Some(doc), false);
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let version = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            match lock_header!(tx, scene_lock, &header, scene_id, now, document) {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some(version) => {
                    tx.commit().await?;
                    Some(version)
                }
            }
        });
        if version.is_some() {
            self.changed(scene_id);
        }
        Ok(version)
    }

    /// The storyboard analysis document.
    pub async fn get_analysis(&self, scene_id: &str) -> Result<Option<String>, StoreError> {
        self.get_document(scene_id, Doc::Analysis).await
    }

    /// Store the analysis document: the comic's new version, `None` when there is no such
    /// scene.
    pub async fn put_analysis(
        &self,
        scene_id: &str,
        document: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.put_document(scene_id, Doc::Analysis, document).await
    }

    /// The key elements document.
    pub async fn get_key_elements(&self, scene_id: &str) -> Result<Option<String>, StoreError> {
        self.get_document(scene_id, Doc::KeyElements).await
    }

    /// Store the key elements document (see [`ComicRepo::put_analysis`]).
    pub async fn put_key_elements(
        &self,
        scene_id: &str,
        document: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.put_document(scene_id, Doc::KeyElements, document)
            .await
    }

    /// The call metrics document.
    pub async fn get_metrics(&self, scene_id: &str) -> Result<Option<String>, StoreError> {
        self.get_document(scene_id, Doc::Metrics).await
    }

    /// Store the call metrics document (see [`ComicRepo::put_analysis`]).
    pub async fn put_metrics(
        &self,
        scene_id: &str,
        document: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.put_document(scene_id, Doc::Metrics, document).await
    }

    /// Every frame prompt, byte-wise by frame id.
    pub async fn list_prompts(&self, scene_id: &str) -> Result<Vec<ComicPrompt>, StoreError> {
        let sql = format!(
            "SELECT {PROMPT_COLUMNS} FROM comic_prompts WHERE scene_id = $1 ORDER BY frame_id"
        );
        let rows = with_reader!(self.db, conn => {
            sqlx::query_as(&sql).bind(scene_id).fetch_all(&mut *conn).await?
        });
        Ok(rows)
    }

    pub async fn get_prompt(
        &self,
        scene_id: &str,
        frame_id: &str,
    ) -> Result<Option<ComicPrompt>, StoreError> {
        let sql = format!(
            "SELECT {PROMPT_COLUMNS} FROM comic_prompts WHERE scene_id = $1 AND frame_id = $2"
        );
        let row = with_reader!(self.db, conn => {
            sqlx::query_as(&sql).bind(scene_id).bind(frame_id).fetch_optional(&mut *conn).await?
        });
        Ok(row)
    }

    /// Insert or replace the prompt of one frame: the comic's new version, `None` when there
    /// is no such scene.
    pub async fn put_prompt(
        &self,
        scene_id: &str,
        frame_id: &str,
        document: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.write_prompts(scene_id, &[(frame_id, document)]).await
    }

    /// Insert or replace the prompts of several frames (`(frame id, document)`), all in one
    /// transaction (see [`ComicRepo::put_prompt`]).
    pub async fn put_prompts(
        &self,
        scene_id: &str,
        prompts: &[(String, String)],
    ) -> Result<Option<i64>, StoreError> {
        let prompts: Vec<(&str, &str)> = prompts
            .iter()
            .map(|(frame_id, document)| (frame_id.as_str(), document.as_str()))
            .collect();
        self.write_prompts(scene_id, &prompts).await
    }

    async fn write_prompts(
        &self,
        scene_id: &str,
        prompts: &[(&str, &str)],
    ) -> Result<Option<i64>, StoreError> {
        const UPSERT: &str = "INSERT INTO comic_prompts (scene_id, frame_id, document, \
            updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (scene_id, frame_id) \
            DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at";
        let header = header_sql(None, false);
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let version = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            match lock_header!(tx, scene_lock, &header, scene_id, now) {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some(version) => {
                    for (frame_id, document) in prompts {
                        sqlx::query(UPSERT).bind(scene_id).bind(frame_id).bind(document)
                            .bind(now).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Some(version)
                }
            }
        });
        if version.is_some() {
            self.changed(scene_id);
        }
        Ok(version)
    }

    /// Delete the prompts of every frame not in `keep`, in one transaction: the frame ids
    /// deleted, byte-wise sorted (none: nothing was written).
    pub async fn delete_prompts_not_in(
        &self,
        scene_id: &str,
        keep: &[String],
    ) -> Result<Vec<String>, StoreError> {
        const FRAMES: &str =
            "SELECT frame_id FROM comic_prompts WHERE scene_id = $1 ORDER BY frame_id";
        const DELETE: &str = "DELETE FROM comic_prompts WHERE scene_id = $1 AND frame_id = $2";
        let keep: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let deleted = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let locked: Option<(i64,)> = if lock_scene!(tx, scene_lock, scene_id) {
                sqlx::query_as(BUMP_HEADER).bind(scene_id).bind(now)
                    .fetch_optional(&mut *tx).await?
            } else {
                None
            };
            let frames: Vec<(String,)> = match locked {
                None => Vec::new(),
                Some(_) => sqlx::query_as(FRAMES).bind(scene_id).fetch_all(&mut *tx).await?,
            };
            let gone: Vec<String> = frames
                .into_iter()
                .map(|r| r.0)
                .filter(|frame_id| !keep.contains(frame_id.as_str()))
                .collect();
            if gone.is_empty() {
                tx.rollback().await?;
            } else {
                for frame_id in &gone {
                    sqlx::query(DELETE).bind(scene_id).bind(frame_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            gone
        });
        if !deleted.is_empty() {
            self.changed(scene_id);
        }
        Ok(deleted)
    }

    /// The reference index: `None` when the comic never had one (no upload since it was
    /// created or reset); otherwise its references, byte-wise by element id (possibly none,
    /// after the last one was deleted).
    pub async fn list_references(
        &self,
        scene_id: &str,
    ) -> Result<Option<ComicReferences>, StoreError> {
        const HEADER: &str = "SELECT references_updated_at FROM comics WHERE scene_id = $1";
        let sql = format!(
            "SELECT {REFERENCE_COLUMNS} FROM comic_references WHERE scene_id = $1 \
             ORDER BY element_id"
        );
        let found = with_reader!(self.db, conn => {
            let header: Option<(Option<i64>,)> = sqlx::query_as(HEADER).bind(scene_id)
                .fetch_optional(&mut *conn).await?;
            match header.and_then(|r| r.0) {
                None => None,
                Some(updated_at) => {
                    let references: Vec<ComicReference> = sqlx::query_as(&sql).bind(scene_id)
                        .fetch_all(&mut *conn).await?;
                    Some(ComicReferences { updated_at, references })
                }
            }
        });
        Ok(found)
    }

    pub async fn get_reference(
        &self,
        scene_id: &str,
        element_id: &str,
    ) -> Result<Option<ComicReference>, StoreError> {
        let sql = format!(
            "SELECT {REFERENCE_COLUMNS} FROM comic_references \
             WHERE scene_id = $1 AND element_id = $2"
        );
        let row = with_reader!(self.db, conn => {
            sqlx::query_as(&sql).bind(scene_id).bind(element_id)
                .fetch_optional(&mut *conn).await?
        });
        Ok(row)
    }

    /// Insert or replace the reference image of `reference.element_id` and mark the index
    /// written; `None` when there is no such scene.
    pub async fn put_reference(
        &self,
        scene_id: &str,
        reference: &ComicReference,
    ) -> Result<Option<Upserted>, StoreError> {
        const PREVIOUS: &str =
            "SELECT blob_key FROM comic_references WHERE scene_id = $1 AND element_id = $2";
        const UPSERT: &str = "INSERT INTO comic_references (scene_id, element_id, blob_key, \
            file_name, content_type, size_bytes, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (scene_id, element_id) DO UPDATE SET blob_key = excluded.blob_key, \
            file_name = excluded.file_name, content_type = excluded.content_type, \
            size_bytes = excluded.size_bytes, uploaded_at = excluded.uploaded_at";
        let r = reference;
        let header = header_sql(None, true);
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let written = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            match lock_header!(tx, scene_lock, &header, scene_id, now) {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some(version) => {
                    let previous: Option<(String,)> = sqlx::query_as(PREVIOUS).bind(scene_id)
                        .bind(&r.element_id).fetch_optional(&mut *tx).await?;
                    sqlx::query(UPSERT).bind(scene_id).bind(&r.element_id).bind(&r.blob_key)
                        .bind(&r.file_name).bind(&r.content_type).bind(r.size_bytes)
                        .bind(r.uploaded_at).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Some(Upserted {
                        version,
                        stale_blob_key: previous
                            .map(|p| p.0)
                            .filter(|key| *key != r.blob_key),
                    })
                }
            }
        });
        if written.is_some() {
            self.changed(scene_id);
        }
        Ok(written)
    }

    /// Delete the reference of one element (the index stays, possibly empty): its blob key,
    /// which the caller deletes; `None` when there was no such reference.
    pub async fn delete_reference(
        &self,
        scene_id: &str,
        element_id: &str,
    ) -> Result<Option<String>, StoreError> {
        const DELETE: &str = "DELETE FROM comic_references WHERE scene_id = $1 \
            AND element_id = $2 RETURNING blob_key";
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let deleted = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            // One write of the header (see `header_sql`).
            let locked: Option<(i64,)> = if lock_scene!(tx, scene_lock, scene_id) {
                sqlx::query_as(BUMP_REFERENCES).bind(scene_id).bind(now)
                    .fetch_optional(&mut *tx).await?
            } else {
                None
            };
            let deleted: Option<(String,)> = match locked {
                None => None,
                Some(_) => sqlx::query_as(DELETE).bind(scene_id).bind(element_id)
                    .fetch_optional(&mut *tx).await?,
            };
            match deleted {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some((blob_key,)) => {
                    tx.commit().await?;
                    Some(blob_key)
                }
            }
        });
        if deleted.is_some() {
            self.changed(scene_id);
        }
        Ok(deleted)
    }

    /// Every frame image, byte-wise by frame id.
    pub async fn list_images(&self, scene_id: &str) -> Result<Vec<ComicImage>, StoreError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM comic_images WHERE scene_id = $1 ORDER BY frame_id"
        );
        let rows = with_reader!(self.db, conn => {
            sqlx::query_as(&sql).bind(scene_id).fetch_all(&mut *conn).await?
        });
        Ok(rows)
    }

    pub async fn get_image(
        &self,
        scene_id: &str,
        frame_id: &str,
    ) -> Result<Option<ComicImage>, StoreError> {
        let sql = format!(
            "SELECT {IMAGE_COLUMNS} FROM comic_images WHERE scene_id = $1 AND frame_id = $2"
        );
        let row = with_reader!(self.db, conn => {
            sqlx::query_as(&sql).bind(scene_id).bind(frame_id).fetch_optional(&mut *conn).await?
        });
        Ok(row)
    }

    /// Insert or replace the image of `image.frame_id`; `None` when there is no such scene.
    pub async fn put_image(
        &self,
        scene_id: &str,
        image: &ComicImage,
    ) -> Result<Option<Upserted>, StoreError> {
        const PREVIOUS: &str =
            "SELECT blob_key FROM comic_images WHERE scene_id = $1 AND frame_id = $2";
        const UPSERT: &str = "INSERT INTO comic_images (scene_id, frame_id, blob_key, \
            content_type, size_bytes, signature, generated_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (scene_id, frame_id) DO UPDATE SET blob_key = excluded.blob_key, \
            content_type = excluded.content_type, size_bytes = excluded.size_bytes, \
            signature = excluded.signature, generated_at = excluded.generated_at";
        let i = image;
        let header = header_sql(None, false);
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let written = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            match lock_header!(tx, scene_lock, &header, scene_id, now) {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some(version) => {
                    let previous: Option<(String,)> = sqlx::query_as(PREVIOUS).bind(scene_id)
                        .bind(&i.frame_id).fetch_optional(&mut *tx).await?;
                    sqlx::query(UPSERT).bind(scene_id).bind(&i.frame_id).bind(&i.blob_key)
                        .bind(&i.content_type).bind(i.size_bytes).bind(&i.signature)
                        .bind(i.generated_at).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Some(Upserted {
                        version,
                        stale_blob_key: previous
                            .map(|p| p.0)
                            .filter(|key| *key != i.blob_key),
                    })
                }
            }
        });
        if written.is_some() {
            self.changed(scene_id);
        }
        Ok(written)
    }

    /// Delete every artefact of the comic (documents, prompts, references and their index,
    /// images) in one transaction: the blob keys they referenced, sorted and each once; the
    /// caller deletes those blobs. The header row stays, emptied, with a new version (so a
    /// version read before the reset is never current again) and the job claim (a reset does
    /// not stop a running job).
    pub async fn reset(&self, scene_id: &str) -> Result<Vec<String>, StoreError> {
        const CLEAR: &str = "UPDATE comics SET analysis = NULL, key_elements = NULL, \
            metrics = NULL, references_updated_at = NULL, version = version + 1, \
            updated_at = $2 WHERE scene_id = $1 RETURNING version";
        const REFERENCES: &str =
            "DELETE FROM comic_references WHERE scene_id = $1 RETURNING blob_key";
        const IMAGES: &str = "DELETE FROM comic_images WHERE scene_id = $1 RETURNING blob_key";
        const PROMPTS: &str = "DELETE FROM comic_prompts WHERE scene_id = $1";
        let scene_lock = self.scene_lock();
        let now = now_ms();
        let keys = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let cleared: Option<(i64,)> = if lock_scene!(tx, scene_lock, scene_id) {
                sqlx::query_as(CLEAR).bind(scene_id).bind(now).fetch_optional(&mut *tx).await?
            } else {
                None
            };
            match cleared {
                None => {
                    // No header, so no artefact either.
                    tx.rollback().await?;
                    None
                }
                Some(_) => {
                    let mut keys: Vec<(String,)> = sqlx::query_as(REFERENCES).bind(scene_id)
                        .fetch_all(&mut *tx).await?;
                    let images: Vec<(String,)> = sqlx::query_as(IMAGES).bind(scene_id)
                        .fetch_all(&mut *tx).await?;
                    keys.extend(images);
                    sqlx::query(PROMPTS).bind(scene_id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Some(keys)
                }
            }
        });
        let Some(keys) = keys else {
            return Ok(Vec::new());
        };
        self.changed(scene_id);
        let mut keys: Vec<String> = keys.into_iter().map(|k| k.0).collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Claim the scene's comic for job `job_id` at `now` (Unix ms), atomically: at most one
    /// comic job per scene holds it. The claim succeeds when no job holds it, when `job_id`
    /// already does (which renews the claim's time), or when the holder's claim was made
    /// before `stale_before` (its lease lapsed: the holder is presumed dead). `None` never
    /// takes a claim over.
    pub async fn try_claim_job(
        &self,
        scene_id: &str,
        job_id: &str,
        now: i64,
        stale_before: Option<i64>,
    ) -> Result<Claim, StoreError> {
        const CLAIM: &str = "INSERT INTO comics (scene_id, job_id, job_claimed_at, version, \
            updated_at) SELECT $1, $2, $3, 0, $3 WHERE EXISTS (SELECT 1 FROM scenes WHERE id = $1) \
            ON CONFLICT (scene_id) DO UPDATE SET job_id = excluded.job_id, \
            job_claimed_at = excluded.job_claimed_at \
            WHERE comics.job_id IS NULL OR comics.job_id = excluded.job_id \
            OR comics.job_claimed_at < $4 \
            RETURNING job_id";
        const HEADER: &str = "SELECT 1 FROM comics WHERE scene_id = $1";
        let scene_lock = self.scene_lock();
        let claim = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let scene_found = lock_scene!(tx, scene_lock, scene_id);
            let claimed: Result<Option<(String,)>, sqlx::Error> = if scene_found {
                sqlx::query_as(CLAIM).bind(scene_id).bind(job_id).bind(now).bind(stale_before)
                    .fetch_optional(&mut *tx).await
            } else {
                Ok(None)
            };
            let claim = match claimed {
                Ok(Some(_)) => Claim::Claimed,
                Ok(None) if !scene_found => Claim::NoScene,
                Ok(None) => {
                    // Either the scene is missing (nothing was inserted) or its header
                    // exists and another job holds it.
                    let header: Option<(i32,)> = sqlx::query_as(HEADER).bind(scene_id)
                        .fetch_optional(&mut *tx).await?;
                    if header.is_some() { Claim::Held } else { Claim::NoScene }
                }
                Err(e) if missing_scene(&e) => Claim::NoScene,
                Err(e) => return Err(e.into()),
            };
            if claim == Claim::Claimed {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            claim
        });
        Ok(claim)
    }

    /// Release the claim of job `job_id`; `false` when it did not hold the comic (another
    /// job took a lapsed claim over, or it was released already).
    pub async fn release_job(&self, scene_id: &str, job_id: &str) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE comics SET job_id = NULL, job_claimed_at = NULL \
            WHERE scene_id = $1 AND job_id = $2";
        let rows = with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(scene_id).bind(job_id).execute(pool).await?.rows_affected()
        });
        Ok(rows == 1)
    }

    /// The comic job holding the scene's comic, if any.
    pub async fn running_job(&self, scene_id: &str) -> Result<Option<ComicJob>, StoreError> {
        const SQL: &str = "SELECT job_id, job_claimed_at FROM comics \
            WHERE scene_id = $1 AND job_id IS NOT NULL";
        let row: Option<(String, Option<i64>)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(scene_id).fetch_optional(pool).await?
        });
        Ok(row.map(|(job_id, claimed_at)| ComicJob {
            job_id,
            claimed_at: claimed_at.unwrap_or(0),
        }))
    }
}
