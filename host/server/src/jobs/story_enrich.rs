//! `story.enrich`: the model narrates a new story's nodes in the background (spec
//! story-export §3.3, fixed). Each node is patched on its own under the story's lock, so the
//! job never overwrites what players did meanwhile; a job interrupted by a restart is
//! resumed and carries on with the nodes still pending (each node is patched in place, so
//! nothing is added twice).

use std::sync::{Arc, Weak};

use futures::FutureExt;
use futures::future::BoxFuture;
use sceneintruder_llm::LlmError;
use serde_json::{Value, json};

use super::{JobContext, JobEngine, JobFailure, JobHandler};
use crate::domain::story::engine::{ENRICH_KIND, EnrichJobs, Stories};

/// Most nodes one job enriches (a story has at most a dozen pending nodes).
const MAX_NODES: usize = 64;

pub struct Enrich {
    pub stories: Arc<Stories>,
}

impl JobHandler for Enrich {
    fn kind(&self) -> &'static str {
        ENRICH_KIND
    }

    fn resumable(&self) -> bool {
        true
    }

    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobFailure>> {
        let stories = self.stories.clone();
        async move {
            let scene_id = ctx
                .input
                .get("scene_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let mut last = String::new();
            for _ in 0..MAX_NODES {
                ctx.check()?;
                let next = stories
                    .next_pending(&scene_id)
                    .await
                    .map_err(|e| JobFailure::Failed(e.details()))?;
                let Some((node_id, done, total)) = next else {
                    break;
                };
                // A node that stays pending after its turn would loop forever.
                if node_id == last {
                    return Err(JobFailure::Failed(format!(
                        "node {node_id} could not be saved"
                    )));
                }
                let share = (done * 100 / total.max(1)).min(99) as u8;
                ctx.progress(share, &format!("丰富故事节点 {}/{total}", done + 1))
                    .await?;
                match stories
                    .enrich(&scene_id, &node_id, ctx.token().clone())
                    .await
                {
                    Ok(()) => {}
                    Err(LlmError::Cancelled) => return Err(JobFailure::Cancelled),
                    Err(e) => return Err(JobFailure::Failed(format!("任务失败: {e}"))),
                }
                last = node_id;
            }
            Ok(json!({"scene_id": scene_id, "message": "故事节点已全部丰富"}))
        }
        .boxed()
    }
}

/// The story service's way to start enrichment jobs.
pub struct EnrichSubmitter(pub Weak<JobEngine>);

impl EnrichJobs for EnrichSubmitter {
    fn submit(&self, owner: String, scene_id: String) -> BoxFuture<'static, Option<String>> {
        let engine = self.0.clone();
        async move {
            let engine = engine.upgrade()?;
            match engine
                .submit(
                    ENRICH_KIND,
                    &owner,
                    &json!({"scene_id": scene_id}),
                    "等待丰富故事节点",
                )
                .await
            {
                Ok(job) => Some(job.id),
                Err(e) => {
                    tracing::warn!(error = %e, "could not queue story enrichment");
                    None
                }
            }
        }
        .boxed()
    }

    fn is_live(&self, task: String) -> BoxFuture<'static, bool> {
        let engine = self.0.clone();
        async move {
            let Some(engine) = engine.upgrade() else {
                return false;
            };
            matches!(engine.get(&task).await, Ok(Some(job)) if !job.state.is_terminal())
        }
        .boxed()
    }
}
