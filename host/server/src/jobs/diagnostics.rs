//! `diagnostics.countdown`: a job that exercises the pipeline end to end without an LLM —
//! steps of fixed length with progress, then one side effect (a `server_meta` row). Operators
//! use it to check progress streaming and cancellation behind proxies; tests use it to prove
//! that a cancelled job never performs its side effect. Enabled by `[jobs] diagnostics`.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{JobContext, JobFailure, JobHandler};

pub const DIAGNOSTICS_KIND: &str = "diagnostics.countdown";
/// The same job, but resumed (from the start) after a restart instead of failed.
pub const DIAGNOSTICS_RESUMABLE_KIND: &str = "diagnostics.countdown.resumable";

/// Input of a countdown job.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CountdownInput {
    /// Number of steps, 1-1000.
    pub steps: u32,
    /// Length of each step, 0-60000 ms.
    pub step_ms: u64,
    /// Fail with this message at the last step instead of completing.
    #[serde(default)]
    pub fail_with: Option<String>,
}

impl CountdownInput {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.steps) {
            return Err("steps must be between 1 and 1000".into());
        }
        if self.step_ms > 60_000 {
            return Err("step_ms must be at most 60000".into());
        }
        Ok(())
    }
}

/// Key of the side effect a countdown job writes when it completes.
pub fn marker_key(job_id: &str) -> String {
    format!("diagnostics:{job_id}")
}

pub struct Countdown {
    pub resumable: bool,
}

impl JobHandler for Countdown {
    fn kind(&self) -> &'static str {
        if self.resumable {
            DIAGNOSTICS_RESUMABLE_KIND
        } else {
            DIAGNOSTICS_KIND
        }
    }

    fn resumable(&self) -> bool {
        self.resumable
    }

    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobFailure>> {
        async move {
            let input: CountdownInput = serde_json::from_value(ctx.input.clone())
                .map_err(|e| JobFailure::Failed(format!("invalid input: {e}")))?;
            input.validate().map_err(JobFailure::Failed)?;
            for step in 1..=input.steps {
                tokio::select! {
                    _ = ctx.token().cancelled() => return Err(JobFailure::Cancelled),
                    _ = tokio::time::sleep(Duration::from_millis(input.step_ms)) => {}
                }
                let percent = (step * 100 / input.steps).min(99) as u8;
                ctx.progress(percent, &format!("step {step}/{}", input.steps))
                    .await?;
            }
            if let Some(message) = input.fail_with {
                return Err(JobFailure::Failed(message));
            }
            ctx.check()?;
            let key = marker_key(&ctx.id);
            ctx.db()
                .meta()
                .set(&key, &format!("attempt {}", ctx.attempt))
                .await?;
            Ok(json!({ "marker": key }))
        }
        .boxed()
    }
}
