//! The job engine: every long operation runs here as a persistent job.
//!
//! A feature registers a [`JobHandler`] for its kind, submits jobs with [`JobEngine::submit`]
//! and reports progress through its [`JobContext`]. The engine claims queued jobs from the
//! database (several servers can share one PostgreSQL), keeps a lease on each running job,
//! publishes every change on the event bus, and makes cancellation real: the handler's
//! token is cancelled and its result is never recorded.

pub mod analyze;
pub mod diagnostics;
pub mod story_enrich;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sceneintruder_store::{Database, Job, JobCompletion, NewJob, StoreError};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use diagnostics::{Countdown, DIAGNOSTICS_KIND, DIAGNOSTICS_RESUMABLE_KIND};

use crate::realtime::bus::{Event, EventBus};

/// `[jobs]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs run at once by this server.
    pub concurrency: usize,
    /// How long a running job's lease lasts without renewal (milliseconds). A job whose
    /// server died is taken back this long after its last renewal.
    pub lease_ms: u64,
    /// How often idle workers look for queued jobs another server may have added (ms).
    pub poll_ms: u64,
    /// Enable the `diagnostics.*` job kinds and `POST /api/jobs/diagnostics`.
    pub diagnostics: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            concurrency: 4,
            lease_ms: 30_000,
            poll_ms: 1_000,
            diagnostics: false,
        }
    }
}

/// Message of a job interrupted by a server that stopped while running it.
pub const INTERRUPTED: &str =
    "任务失败: 服务器重启，任务中断 (the server stopped while this job was running)";
/// Message of a cancelled job (the reference's wording, as clients display it).
pub const CANCELLED: &str = "任务失败: 用户取消了任务";

/// Why a job did not produce a result.
#[derive(Debug)]
pub enum JobFailure {
    /// The job noticed its cancellation and stopped.
    Cancelled,
    /// The job failed; the text is shown to the client.
    Failed(String),
}

impl From<StoreError> for JobFailure {
    fn from(e: StoreError) -> Self {
        JobFailure::Failed(e.to_string())
    }
}

/// The work behind one job kind.
pub trait JobHandler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    /// Whether a job interrupted by a restart may run again from the start (otherwise it
    /// is failed).
    fn resumable(&self) -> bool {
        false
    }

    /// Do the work. Return the result's location as JSON (e.g. `{"scene_id": "..."}`).
    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobFailure>>;
}

/// What a running job sees.
pub struct JobContext {
    pub id: String,
    pub input: Value,
    pub attempt: u32,
    cancel: CancellationToken,
    engine: Arc<JobEngine>,
    /// Set when the handler recorded the completion itself (with its result, in one
    /// transaction), so the engine records nothing more.
    recorded: Arc<AtomicBool>,
}

/// The final message of a completed job: a handler may word it (e.g. naming what it
/// created) as `message` in its result.
pub fn completion_message(result: &Value) -> &str {
    result
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("任务已完成")
}

impl JobContext {
    /// Report progress (0-100, never backwards) and a stage message (empty keeps the last).
    /// Fails with `Cancelled` once the job was cancelled.
    pub async fn progress(&self, progress: u8, message: &str) -> Result<(), JobFailure> {
        self.check()?;
        let now = now_ms();
        match self
            .engine
            .db
            .jobs()
            .progress(&self.id, progress.min(99), message, now)
            .await?
        {
            Some(job) => {
                self.engine.publish(job);
                Ok(())
            }
            None => {
                self.cancel.cancel();
                Err(JobFailure::Cancelled)
            }
        }
    }

    /// `Err(Cancelled)` once the job was cancelled; call between steps and right before any
    /// side effect.
    pub fn check(&self) -> Result<(), JobFailure> {
        if self.cancel.is_cancelled() {
            Err(JobFailure::Cancelled)
        } else {
            Ok(())
        }
    }

    /// The cancellation token, for plugin calls and `select!`.
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub fn db(&self) -> &Database {
        &self.engine.db
    }

    /// What completing this run with `result` writes, for a handler that stores its result
    /// and completes the job in one transaction. `result` is the JSON text of the value
    /// the handler then returns.
    pub fn completion<'a>(&'a self, result: &'a str, message: &'a str) -> JobCompletion<'a> {
        JobCompletion {
            id: &self.id,
            attempt: self.attempt,
            result,
            message,
            now: now_ms(),
        }
    }

    /// The handler recorded the completion (see [`JobContext::completion`]): publish it.
    pub fn completed(&self, job: Job) {
        self.recorded.store(true, Ordering::SeqCst);
        self.engine.publish(job);
    }
}

/// How a cancel request ended.
#[derive(Debug)]
pub enum CancelOutcome {
    NotFound,
    /// The job was queued or running and is now cancelled.
    Cancelled,
    /// The job had already ended; it is left as it was.
    AlreadyFinished,
}

pub struct JobEngine {
    db: Database,
    bus: Arc<dyn EventBus>,
    handlers: BTreeMap<&'static str, Arc<dyn JobHandler>>,
    config: JobsConfig,
    /// Tokens of the jobs this server is running.
    running: Mutex<HashMap<String, CancellationToken>>,
    wake: Notify,
    worker_id: String,
    stop: CancellationToken,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Job ids are opaque to clients; keep them to a safe alphabet and length.
pub fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl JobEngine {
    pub fn new(
        db: Database,
        bus: Arc<dyn EventBus>,
        config: JobsConfig,
        handlers: Vec<Arc<dyn JobHandler>>,
    ) -> Arc<JobEngine> {
        Arc::new(JobEngine {
            db,
            bus,
            handlers: handlers.into_iter().map(|h| (h.kind(), h)).collect(),
            config,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            worker_id: format!("worker_{}", uuid::Uuid::now_v7().simple()),
            stop: CancellationToken::new(),
        })
    }

    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    fn publish(&self, job: Job) {
        self.bus.publish(Event::Job(Arc::new(job)));
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.config.lease_ms.max(100))
    }

    /// Queue a job. It starts as soon as a worker is free.
    pub async fn submit(
        &self,
        kind: &str,
        owner: &str,
        input: &Value,
        message: &str,
    ) -> Result<Job, StoreError> {
        let id = format!("task_{}", uuid::Uuid::now_v7().simple());
        let job = self
            .db
            .jobs()
            .insert(
                NewJob {
                    id: &id,
                    kind,
                    owner,
                    input: &input.to_string(),
                    message,
                },
                now_ms(),
            )
            .await?;
        self.publish(job.clone());
        self.wake.notify_one();
        Ok(job)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        if !valid_job_id(id) {
            return Ok(None);
        }
        self.db.jobs().get(id).await
    }

    /// Cancel a queued or running job. A finished job is left unchanged.
    pub async fn cancel(&self, id: &str) -> Result<CancelOutcome, StoreError> {
        if !valid_job_id(id) {
            return Ok(CancelOutcome::NotFound);
        }
        match self.db.jobs().cancel(id, CANCELLED, now_ms()).await? {
            Some(job) => {
                if let Some(token) = self.running_token(id) {
                    token.cancel();
                }
                self.publish(job);
                Ok(CancelOutcome::Cancelled)
            }
            None => Ok(match self.db.jobs().get(id).await? {
                Some(_) => CancelOutcome::AlreadyFinished,
                None => CancelOutcome::NotFound,
            }),
        }
    }

    fn running_token(&self, id: &str) -> Option<CancellationToken> {
        self.running
            .lock()
            .ok()
            .and_then(|running| running.get(id).cloned())
    }

    /// Start the workers and the sweeper. Call once.
    pub fn start(self: &Arc<Self>) {
        for _ in 0..self.config.concurrency.max(1) {
            let engine = self.clone();
            tokio::spawn(async move { engine.worker().await });
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.sweeper().await });
    }

    /// Stop claiming jobs and cancel the running ones (their leases lapse, so another
    /// start resumes or fails them).
    pub fn shutdown(&self) {
        self.stop.cancel();
        if let Ok(running) = self.running.lock() {
            for token in running.values() {
                token.cancel();
            }
        }
    }

    /// Take back jobs whose server died: resumable kinds are queued again, others fail.
    pub async fn reclaim_expired(&self) -> Result<usize, StoreError> {
        let resumable: Vec<&str> = self
            .handlers
            .values()
            .filter(|h| h.resumable())
            .map(|h| h.kind())
            .collect();
        let changed = self
            .db
            .jobs()
            .reclaim_expired(now_ms(), &resumable, INTERRUPTED)
            .await?;
        let count = changed.len();
        for job in changed {
            tracing::warn!(job = %job.id, kind = %job.kind, state = %job.state, "reclaimed a job whose server stopped");
            self.publish(job);
        }
        if count > 0 {
            self.wake.notify_waiters();
        }
        Ok(count)
    }

    async fn sweeper(self: Arc<Self>) {
        let every = self.lease() / 2;
        loop {
            if let Err(e) = self.reclaim_expired().await {
                tracing::error!("job sweep failed: {e}");
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn worker(self: Arc<Self>) {
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let poll = Duration::from_millis(self.config.poll_ms.max(10));
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let now = now_ms();
            let lease_until = now + self.lease().as_millis() as i64;
            match self
                .db
                .jobs()
                .claim(&kinds, &self.worker_id, now, lease_until)
                .await
            {
                Ok(Some(job)) => {
                    self.publish(job.clone());
                    self.clone().execute(job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::error!("cannot claim a job: {e}"),
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn execute(self: Arc<Self>, job: Job) {
        let Some(handler) = self.handlers.get(job.kind.as_str()).cloned() else {
            return;
        };
        let token = self.stop.child_token();
        if let Ok(mut running) = self.running.lock() {
            running.insert(job.id.clone(), token.clone());
        }
        let input = serde_json::from_str(&job.input).unwrap_or(Value::Null);
        let recorded = Arc::new(AtomicBool::new(false));
        let ctx = JobContext {
            id: job.id.clone(),
            input,
            attempt: job.attempts,
            cancel: token.clone(),
            engine: self.clone(),
            recorded: recorded.clone(),
        };
        let keep_lease = self.clone().keep_lease(job.id.clone(), token.clone());
        let outcome = tokio::select! {
            outcome = handler.run(ctx) => outcome,
            _ = keep_lease => Err(JobFailure::Cancelled),
        };
        if let Ok(mut running) = self.running.lock() {
            running.remove(&job.id);
        }
        let repo = self.db.jobs();
        let stored = match outcome {
            // The handler completed the job together with its result.
            Ok(_) if recorded.load(Ordering::SeqCst) => Ok(None),
            // Cancelled jobs were already recorded by whoever cancelled them; a result that
            // arrives after a cancellation is dropped by `complete` (it needs `running`).
            _ if token.is_cancelled() && !self.stop.is_cancelled() => Ok(None),
            Err(JobFailure::Cancelled) => Ok(None),
            Ok(result) => {
                repo.complete(
                    &job.id,
                    &result.to_string(),
                    completion_message(&result),
                    now_ms(),
                )
                .await
            }
            Err(JobFailure::Failed(error)) => {
                let message = format!("任务失败: {error}");
                repo.fail(&job.id, &error, &message, now_ms()).await
            }
        };
        match stored {
            Ok(Some(job)) => self.publish(job),
            Ok(None) => {}
            Err(e) => tracing::error!(job = %job.id, "cannot record the job's outcome: {e}"),
        }
    }

    /// Renew the lease until the job ends; resolves (cancelling the job) when the lease is
    /// lost, i.e. the job was cancelled or taken back elsewhere.
    async fn keep_lease(self: Arc<Self>, id: String, token: CancellationToken) {
        let every = self.lease() / 3;
        loop {
            tokio::select! {
                _ = token.cancelled() => {
                    // Give the handler a moment to return on its own.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    return;
                }
                _ = tokio::time::sleep(every) => {}
            }
            let until = now_ms() + self.lease().as_millis() as i64;
            match self.db.jobs().renew(&id, &self.worker_id, until).await {
                Ok(true) => {}
                Ok(false) => {
                    token.cancel();
                    return;
                }
                Err(e) => tracing::warn!(job = %id, "cannot renew the job lease: {e}"),
            }
        }
    }
}
