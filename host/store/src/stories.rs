//! Stories: one per scene, a header document with a version, and its parts (nodes, choices,
//! tasks, objectives, locations) as rows in story order.
//!
//! Every write is one transaction that names the version it read: a write that lost the race
//! changes nothing and says so (`None`), and the caller re-reads and retries. Writes bump the
//! scene's version too, so cached scene views that embed the story are never stale.

use crate::scenes::now_ms;
use crate::{Database, StoreError};

pub struct StoryRepo<'a> {
    db: &'a Database,
}

/// One row of a story part. `group` is the node a choice belongs to or the task of an
/// objective (empty for the other parts); `link` is a node's parent or the node a choice
/// created (`None` when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    pub group: String,
    pub id: String,
    pub link: Option<String>,
    pub document: String,
}

/// A whole story as stored: the header document and its parts, each list in story order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoryRows {
    pub document: String,
    pub nodes: Vec<Part>,
    pub choices: Vec<Part>,
    pub tasks: Vec<Part>,
    pub objectives: Vec<Part>,
    pub locations: Vec<Part>,
}

/// A story and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStory {
    pub version: i64,
    pub rows: StoryRows,
    /// Nodes revealed by story lines of the conversation log, each once.
    pub revealed: Vec<String>,
}

/// Conversation-log changes written in the same transaction as a story.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogChange {
    /// Lines to append, in order.
    pub append: Vec<crate::Line>,
    /// Remove the story lines about these nodes.
    pub forget_nodes: Vec<String>,
    /// Remove the story lines about no node that came after the last line about this node
    /// (all of them when it has none).
    pub forget_unlinked_after: Option<String>,
    /// Remove every story line (character chats stay).
    pub forget_all: bool,
}

/// A part table: its name and which columns carry `group` and `link`.
struct Table {
    name: &'static str,
    group: Option<&'static str>,
    link: Option<&'static str>,
}

const TABLES: [Table; 5] = [
    Table {
        name: "story_nodes",
        group: None,
        link: Some("parent_id"),
    },
    Table {
        name: "story_choices",
        group: Some("node_id"),
        link: Some("next_node_id"),
    },
    Table {
        name: "story_tasks",
        group: None,
        link: None,
    },
    Table {
        name: "story_objectives",
        group: Some("task_id"),
        link: None,
    },
    Table {
        name: "story_locations",
        group: None,
        link: None,
    },
];

impl Table {
    fn select(&self) -> String {
        format!(
            "SELECT {}, id, {}, document FROM {} WHERE scene_id = $1 ORDER BY position",
            self.group.unwrap_or("''"),
            self.link.unwrap_or("CAST(NULL AS TEXT)"),
            self.name
        )
    }

    fn insert(&self) -> String {
        let mut columns = vec!["scene_id"];
        columns.extend(self.group);
        columns.push("id");
        columns.extend(self.link);
        columns.extend(["position", "document"]);
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name,
            columns.join(", "),
            placeholders.join(", ")
        )
    }

    fn delete(&self) -> String {
        format!("DELETE FROM {} WHERE scene_id = $1", self.name)
    }
}

impl StoryRows {
    fn parts(&self) -> [&Vec<Part>; 5] {
        [
            &self.nodes,
            &self.choices,
            &self.tasks,
            &self.objectives,
            &self.locations,
        ]
    }

    fn parts_mut(&mut self) -> [&mut Vec<Part>; 5] {
        [
            &mut self.nodes,
            &mut self.choices,
            &mut self.tasks,
            &mut self.objectives,
            &mut self.locations,
        ]
    }
}

impl<'a> StoryRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> StoryRepo<'a> {
        StoryRepo { db }
    }

    fn touch(&self) -> &'static str {
        crate::scenes::touch_sql(self.db.backend())
    }

    /// The story of `scene_id`, if it has one.
    pub async fn get(&self, scene_id: &str) -> Result<Option<StoredStory>, StoreError> {
        const HEADER: &str = "SELECT document, version FROM stories WHERE scene_id = $1";
        const REVEALED: &str = "SELECT DISTINCT node_id FROM scene_conversations \
                                WHERE scene_id = $1 AND story = 1 AND node_id IS NOT NULL";
        let selects: Vec<String> = TABLES.iter().map(Table::select).collect();
        let found = with_reader!(self.db, conn => {
            let header: Option<(String, i64)> = sqlx::query_as(HEADER).bind(scene_id)
                .fetch_optional(&mut *conn).await?;
            match header {
                None => None,
                Some((document, version)) => {
                    let mut rows = StoryRows { document, ..StoryRows::default() };
                    for (sql, part) in selects.iter().zip(rows.parts_mut()) {
                        let found: Vec<(String, String, Option<String>, String)> =
                            sqlx::query_as(sql).bind(scene_id).fetch_all(&mut *conn).await?;
                        *part = found
                            .into_iter()
                            .map(|(group, id, link, document)| Part { group, id, link, document })
                            .collect();
                    }
                    let revealed: Vec<(String,)> = sqlx::query_as(REVEALED).bind(scene_id)
                        .fetch_all(&mut *conn).await?;
                    let revealed = revealed.into_iter().map(|r| r.0).collect();
                    Some(StoredStory { version, rows, revealed })
                }
            }
        });
        Ok(found)
    }

    /// Story progress the scene had before stories existed (see migration 0010), if any.
    pub async fn carried_progress(&self, scene_id: &str) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT progress FROM story_progress_carry WHERE scene_id = $1";
        let row: Option<(i64,)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(scene_id).fetch_optional(pool).await?
        });
        Ok(row.map(|r| r.0))
    }

    /// Store a new story for `scene_id` at version 1; `false` (and nothing written) when the
    /// scene already has one.
    pub async fn create(&self, scene_id: &str, rows: &StoryRows) -> Result<bool, StoreError> {
        self.write(scene_id, None, rows, &LogChange::default())
            .await
    }

    /// Replace the story of `scene_id` read at `version` with `rows`: the new version, or
    /// `None` (nothing written) when the story changed since, or is gone.
    pub async fn replace(
        &self,
        scene_id: &str,
        version: i64,
        rows: &StoryRows,
        log: &LogChange,
    ) -> Result<Option<i64>, StoreError> {
        let written = self.write(scene_id, Some(version), rows, log).await?;
        Ok(written.then_some(version + 1))
    }

    /// Write the header (new, or over `version`) and, if that won, every part and the log
    /// change, in one transaction.
    async fn write(
        &self,
        scene_id: &str,
        version: Option<i64>,
        rows: &StoryRows,
        log: &LogChange,
    ) -> Result<bool, StoreError> {
        const FORGET_ALL: &str =
            "DELETE FROM scene_conversations WHERE scene_id = $1 AND story = 1";
        const FORGET_UNLINKED: &str = "DELETE FROM scene_conversations WHERE scene_id = $1 \
             AND story = 1 AND node_id IS NULL AND seq > (SELECT COALESCE(MAX(seq), 0) \
             FROM scene_conversations WHERE scene_id = $1 AND node_id = $2)";
        let forget_nodes = (!log.forget_nodes.is_empty()).then(|| {
            let marks: Vec<String> = (2..log.forget_nodes.len() + 2)
                .map(|i| format!("${i}"))
                .collect();
            format!(
                "DELETE FROM scene_conversations WHERE scene_id = $1 AND story = 1 \
                 AND node_id IN ({})",
                marks.join(", ")
            )
        });
        const CREATE: &str = "INSERT INTO stories (scene_id, document, version, updated_at) \
                              VALUES ($1, $2, 1, $3) ON CONFLICT (scene_id) DO NOTHING";
        const REPLACE: &str = "UPDATE stories SET document = $2, version = version + 1, \
                               updated_at = $3 WHERE scene_id = $1 AND version = $4";
        let now = now_ms();
        let won = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let header = match version {
                None => sqlx::query(CREATE).bind(scene_id).bind(&rows.document).bind(now),
                Some(v) => sqlx::query(REPLACE).bind(scene_id).bind(&rows.document).bind(now)
                    .bind(v),
            };
            let won = header.execute(&mut *tx).await?.rows_affected() == 1;
            if won {
                for (table, parts) in TABLES.iter().zip(rows.parts()) {
                    sqlx::query(&table.delete()).bind(scene_id).execute(&mut *tx).await?;
                    let sql = table.insert();
                    for (position, part) in parts.iter().enumerate() {
                        let mut query = sqlx::query(&sql).bind(scene_id);
                        if table.group.is_some() {
                            query = query.bind(&part.group);
                        }
                        query = query.bind(&part.id);
                        if table.link.is_some() {
                            query = query.bind(&part.link);
                        }
                        query.bind(position as i64).bind(&part.document)
                            .execute(&mut *tx).await?;
                    }
                }
                if log.forget_all {
                    sqlx::query(FORGET_ALL).bind(scene_id).execute(&mut *tx).await?;
                }
                if let Some(sql) = &forget_nodes {
                    let mut query = sqlx::query(sql).bind(scene_id);
                    for node in &log.forget_nodes {
                        query = query.bind(node);
                    }
                    query.execute(&mut *tx).await?;
                }
                if let Some(node) = &log.forget_unlinked_after {
                    sqlx::query(FORGET_UNLINKED).bind(scene_id).bind(node)
                        .execute(&mut *tx).await?;
                }
                if !log.append.is_empty()
                    && let Some(sql) = crate::scenes::lines_lock_sql(self.db.backend())
                {
                    sqlx::query(sql).bind(scene_id).execute(&mut *tx).await?;
                }
                for line in &log.append {
                    crate::scenes::insert_line!(&mut *tx, scene_id, line);
                }
                if version.is_none() {
                    // The carried progress is now the story's.
                    sqlx::query("DELETE FROM story_progress_carry WHERE scene_id = $1")
                        .bind(scene_id).execute(&mut *tx).await?;
                }
                sqlx::query(self.touch()).bind(scene_id).bind(now).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            won
        });
        if won {
            self.db.changes().scene_changed(scene_id);
        }
        Ok(won)
    }

    /// Delete the story of `scene_id` with all its parts; `false` when there was none.
    pub async fn delete(&self, scene_id: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let deleted = with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            // The header first, in the order every story write locks (no deadlock).
            let deleted = sqlx::query("DELETE FROM stories WHERE scene_id = $1").bind(scene_id)
                .execute(&mut *tx).await?.rows_affected() == 1;
            for table in &TABLES {
                sqlx::query(&table.delete()).bind(scene_id).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM story_progress_carry WHERE scene_id = $1")
                .bind(scene_id).execute(&mut *tx).await?;
            sqlx::query(self.touch()).bind(scene_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            deleted
        });
        self.db.changes().scene_changed(scene_id);
        Ok(deleted)
    }
}
