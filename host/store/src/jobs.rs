//! `jobs`: the persistent job table. Every state change is one conditional UPDATE, so
//! terminal states are final and progress never goes backwards, whatever races happen.

use std::fmt;

use crate::{Database, StoreError};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct JobRow {
    id: String,
    kind: String,
    owner: String,
    state: String,
    progress: i32,
    message: String,
    input: String,
    result: Option<String>,
    error: Option<String>,
    attempts: i32,
    version: i64,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

/// A job as stored. Times are Unix epoch milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub owner: String,
    pub state: JobState,
    pub progress: u8,
    pub message: String,
    /// The job's input, JSON.
    pub input: String,
    /// Where the result is (e.g. `{"scene_id": "..."}`), JSON; set when completed.
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    /// Bumped by every change; the SSE event id.
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Job, StoreError> {
        let state = JobState::parse(&row.state).ok_or_else(|| {
            StoreError::Corrupt(format!("job {} has state {:?}", row.id, row.state))
        })?;
        Ok(Job {
            state,
            progress: row.progress.clamp(0, 100) as u8,
            attempts: row.attempts.max(0) as u32,
            id: row.id,
            kind: row.kind,
            owner: row.owner,
            message: row.message,
            input: row.input,
            result: row.result,
            error: row.error,
            version: row.version,
            lease_owner: row.lease_owner,
            lease_until: row.lease_until,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

/// What a new job needs.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub owner: &'a str,
    pub input: &'a str,
    pub message: &'a str,
}

/// Completing one run of a job together with the write of its result (see
/// [`crate::SceneRepo::create_completing`]).
#[derive(Debug, Clone)]
pub struct JobCompletion<'a> {
    pub id: &'a str,
    /// The run being completed (`attempts` when it was claimed): a run that lost its lease
    /// and was claimed again cannot complete the newer run.
    pub attempt: u32,
    pub result: &'a str,
    pub message: &'a str,
    pub now: i64,
}

/// Completes the run named by a [`JobCompletion`] (`$1` id, `$2` result, `$3` message, `$4`
/// now, `$5` attempt); no row when the job is no longer that running run.
pub(crate) const COMPLETE_RUN: &str = "UPDATE jobs SET state = 'completed', progress = 100, \
    result = $2, message = $3, version = version + 1, updated_at = $4, finished_at = $4, \
    lease_owner = NULL, lease_until = NULL \
    WHERE id = $1 AND state = 'running' AND attempts = $5 RETURNING *";

pub struct JobRepo<'a> {
    db: &'a Database,
}

fn one(row: Option<JobRow>) -> Result<Option<Job>, StoreError> {
    row.map(Job::try_from).transpose()
}

/// `$first, $first+1, ...` placeholders for an IN list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'a> JobRepo<'a> {
    pub(crate) fn new(db: &'a Database) -> Self {
        JobRepo { db }
    }

    pub async fn insert(&self, job: NewJob<'_>, now: i64) -> Result<Job, StoreError> {
        const SQL: &str = "INSERT INTO jobs (id, kind, owner, state, progress, message, input, \
                           attempts, version, created_at, updated_at) \
                           VALUES ($1, $2, $3, 'queued', 0, $4, $5, 0, 1, $6, $6) RETURNING *";
        let row: JobRow = with_pool!(self.db, pool => {
            sqlx::query_as(SQL)
                .bind(job.id)
                .bind(job.kind)
                .bind(job.owner)
                .bind(job.message)
                .bind(job.input)
                .bind(now)
                .fetch_one(pool)
                .await?
        });
        Job::try_from(row)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        const SQL: &str = "SELECT * FROM jobs WHERE id = $1";
        let row: Option<JobRow> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?
        });
        one(row)
    }

    /// Take the oldest queued job of one of `kinds` for `worker`, with a lease until
    /// `lease_until`. Several servers may claim concurrently; each job goes to one of them.
    pub async fn claim(
        &self,
        kinds: &[&str],
        worker: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<Job>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let skip_locked = match &self.db.pool {
            crate::Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            crate::Pool::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, version = version + 1, \
             lease_owner = $1, lease_until = $2, started_at = COALESCE(started_at, $3), \
             updated_at = $3 \
             WHERE state = 'queued' AND id = (SELECT id FROM jobs WHERE state = 'queued' \
             AND kind IN ({}) ORDER BY created_at, id LIMIT 1{skip_locked}) RETURNING *",
            placeholders(4, kinds.len())
        );
        let row: Option<JobRow> = with_pool!(self.db, pool => {
            let mut query = sqlx::query_as(&sql).bind(worker).bind(lease_until).bind(now);
            for kind in kinds {
                query = query.bind(*kind);
            }
            query.fetch_optional(pool).await?
        });
        one(row)
    }

    /// Record progress of a running job. Progress only moves forward; an empty message keeps
    /// the previous one. `None` when the job is no longer running.
    pub async fn progress(
        &self,
        id: &str,
        progress: u8,
        message: &str,
        now: i64,
    ) -> Result<Option<Job>, StoreError> {
        const SQL: &str = "UPDATE jobs SET \
            progress = CASE WHEN $2 > progress THEN $2 ELSE progress END, \
            message = CASE WHEN $3 = '' THEN message ELSE $3 END, \
            version = version + 1, updated_at = $4 \
            WHERE id = $1 AND state = 'running' RETURNING *";
        let progress = i32::from(progress.min(100));
        let row: Option<JobRow> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(id).bind(progress).bind(message).bind(now)
                .fetch_optional(pool).await?
        });
        one(row)
    }

    /// Complete a running job with its result. `None` when it was no longer running (e.g.
    /// cancelled meanwhile): the result is then not recorded.
    pub async fn complete(
        &self,
        id: &str,
        result: &str,
        message: &str,
        now: i64,
    ) -> Result<Option<Job>, StoreError> {
        const SQL: &str = "UPDATE jobs SET state = 'completed', progress = 100, result = $2, \
            message = $3, version = version + 1, updated_at = $4, finished_at = $4, \
            lease_owner = NULL, lease_until = NULL \
            WHERE id = $1 AND state = 'running' RETURNING *";
        let row: Option<JobRow> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(id).bind(result).bind(message).bind(now)
                .fetch_optional(pool).await?
        });
        one(row)
    }

    /// Fail a queued or running job. `None` when it had already ended.
    pub async fn fail(
        &self,
        id: &str,
        error: &str,
        message: &str,
        now: i64,
    ) -> Result<Option<Job>, StoreError> {
        self.end(id, JobState::Failed, error, message, now).await
    }

    /// Cancel a queued or running job. `None` when it had already ended.
    pub async fn cancel(
        &self,
        id: &str,
        message: &str,
        now: i64,
    ) -> Result<Option<Job>, StoreError> {
        self.end(id, JobState::Cancelled, "cancelled", message, now)
            .await
    }

    async fn end(
        &self,
        id: &str,
        state: JobState,
        error: &str,
        message: &str,
        now: i64,
    ) -> Result<Option<Job>, StoreError> {
        const SQL: &str = "UPDATE jobs SET state = $2, error = $3, message = $4, \
            version = version + 1, updated_at = $5, finished_at = $5, \
            lease_owner = NULL, lease_until = NULL \
            WHERE id = $1 AND state IN ('queued', 'running') RETURNING *";
        let row: Option<JobRow> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).bind(id).bind(state.as_str()).bind(error).bind(message).bind(now)
                .fetch_optional(pool).await?
        });
        one(row)
    }

    /// Extend the lease of a job `worker` is running. False when the job is no longer
    /// running under this worker (cancelled, or reclaimed after the lease expired).
    pub async fn renew(
        &self,
        id: &str,
        worker: &str,
        lease_until: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE jobs SET lease_until = $3 \
            WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
        let changed = with_pool!(self.db, pool => {
            sqlx::query(SQL).bind(id).bind(worker).bind(lease_until)
                .execute(pool).await?.rows_affected()
        });
        Ok(changed == 1)
    }

    /// Number of jobs per (kind, state), for metrics.
    pub async fn count_by_kind_and_state(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        const SQL: &str =
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state";
        let rows: Vec<(String, String, i64)> = with_pool!(self.db, pool => {
            sqlx::query_as(SQL).fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// Running jobs whose lease ran out (their server died): resumable kinds go back to the
    /// queue, the others fail with `message`. Returns the jobs changed.
    pub async fn reclaim_expired(
        &self,
        now: i64,
        resumable: &[&str],
        message: &str,
    ) -> Result<Vec<Job>, StoreError> {
        let mut changed = Vec::new();
        if !resumable.is_empty() {
            let sql = format!(
                "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, \
                 version = version + 1, updated_at = $1 \
                 WHERE state = 'running' AND lease_until < $1 AND kind IN ({}) RETURNING *",
                placeholders(2, resumable.len())
            );
            let rows: Vec<JobRow> = with_pool!(self.db, pool => {
                let mut query = sqlx::query_as(&sql).bind(now);
                for kind in resumable {
                    query = query.bind(*kind);
                }
                query.fetch_all(pool).await?
            });
            for row in rows {
                changed.push(Job::try_from(row)?);
            }
        }
        const FAIL: &str = "UPDATE jobs SET state = 'failed', error = 'interrupted', \
            message = $2, version = version + 1, updated_at = $1, finished_at = $1, \
            lease_owner = NULL, lease_until = NULL \
            WHERE state = 'running' AND lease_until < $1 RETURNING *";
        let rows: Vec<JobRow> = with_pool!(self.db, pool => {
            sqlx::query_as(FAIL).bind(now).bind(message).fetch_all(pool).await?
        });
        for row in rows {
            changed.push(Job::try_from(row)?);
        }
        Ok(changed)
    }
}
