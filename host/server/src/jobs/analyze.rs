//! `scene.analyze`: `POST /api/analyze` as a job. Progress follows the reference's stages;
//! the scene is stored in the same transaction that completes the job, and the terminal
//! frame names it. A cancelled or failed analysis stores nothing.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use sceneintruder_llm::{LlmError, LlmService};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{JobContext, JobFailure, JobHandler, completion_message};
use crate::domain::analysis::{
    AnalysisConfig, AnalysisError, AnalysisRequest, analyze, scene_id_for_job,
};
use crate::domain::scenes;

pub const ANALYZE_KIND: &str = "scene.analyze";

/// What the job was asked to do (captured from the request, owner included).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalyzeInput {
    pub title: String,
    pub text: String,
    /// Who owns the scene.
    pub owner: String,
    /// `user_id` of the scene document.
    pub user: String,
}

pub struct Analyze {
    pub llm: Arc<LlmService>,
    pub config: AnalysisConfig,
}

/// The reference's failure text for an analysis error.
pub fn failure_text(error: &AnalysisError) -> String {
    match error {
        AnalysisError::Llm(LlmError::NotReady(status)) => {
            format!(
                "llm service not ready: LLM服务未配置或未就绪，请先在设置页面配置API密钥 ({status})"
            )
        }
        other => other.to_string(),
    }
}

impl JobHandler for Analyze {
    fn kind(&self) -> &'static str {
        ANALYZE_KIND
    }

    /// Nothing is stored until the transaction that also completes the job, so a job
    /// interrupted by a restart can start over.
    fn resumable(&self) -> bool {
        true
    }

    fn run(&self, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobFailure>> {
        let llm = self.llm.clone();
        let config = self.config.clone();
        async move {
            let input: AnalyzeInput = serde_json::from_value(ctx.input.clone())
                .map_err(|e| JobFailure::Failed(format!("invalid input: {e}")))?;
            ctx.progress(10, "初步分析文本内容...").await?;
            let readiness = llm.readiness();
            if !readiness.ready {
                return Err(JobFailure::Failed(failure_text(&AnalysisError::Llm(
                    LlmError::NotReady(readiness.status),
                ))));
            }
            ctx.progress(30, "提取场景信息...").await?;
            // Named after the job, so a run that somehow got past the job's completion
            // check could never store a second scene for it.
            let scene_id = scene_id_for_job(&ctx.id);
            let request = AnalysisRequest {
                scene_id: Some(&scene_id),
                title: &input.title,
                text: &input.text,
                owner: &input.owner,
                user: &input.user,
            };
            let ctx_ref = &ctx;
            let draft = analyze(
                &llm,
                &config,
                &request,
                ctx.token(),
                |done, total| async move {
                    // Chunks move the bar from 30 to 80.
                    let percent = 30 + (50 * done / total.max(1)) as u8;
                    let message = if done == total {
                        "构建角色关系网络...".to_string()
                    } else {
                        format!("识别和分析角色... ({done}/{total})")
                    };
                    ctx_ref
                        .progress(percent, &message)
                        .await
                        .map_err(|e| match e {
                            JobFailure::Cancelled => "cancelled".to_string(),
                            JobFailure::Failed(m) => m,
                        })
                },
            )
            .await
            .map_err(|e| match e {
                AnalysisError::Cancelled => JobFailure::Cancelled,
                AnalysisError::Progress(_) if ctx.token().is_cancelled() => JobFailure::Cancelled,
                other => JobFailure::Failed(failure_text(&other)),
            })?;
            ctx.progress(95, "完成分析，准备结果...").await?;
            ctx.check()?;
            let scene_id = &draft.scene.id;
            let result = json!({
                "scene_id": scene_id,
                "message": format!("分析完成，场景已创建: {scene_id}"),
            });
            let text = result.to_string();
            let completion = ctx.completion(&text, completion_message(&result));
            // The scene and the job's completion are one transaction: a cancel that lands
            // meanwhile rolls the scene back, and a crash leaves neither behind.
            match scenes::create_completing(ctx.db(), &draft, completion).await {
                Ok(Some(job)) => {
                    ctx.completed(job);
                    Ok(result)
                }
                // No longer this running run: cancelled, or taken back after a lapsed lease.
                Ok(None) => Err(JobFailure::Cancelled),
                Err(e) => Err(JobFailure::Failed(format!("场景创建失败: {}", e.details()))),
            }
        }
        .boxed()
    }
}
