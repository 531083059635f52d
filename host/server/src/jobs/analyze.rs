//! `scene.analyze`: `POST /api/analyze` as a job. Progress follows the reference's stages;
//! the scene is stored (in one transaction) before the job completes, and the terminal frame
//! names it. A cancelled or failed analysis stores nothing.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use sceneintruder_llm::{LlmError, LlmService};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{JobContext, JobFailure, JobHandler};
use crate::domain::analysis::{AnalysisConfig, AnalysisError, AnalysisRequest, analyze};
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

    /// Nothing is stored until the end, so a job interrupted by a restart can start over.
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
            let request = AnalysisRequest {
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
            let scene_id = draft.scene.id.clone();
            scenes::create(ctx.db(), &draft)
                .await
                .map_err(|e| JobFailure::Failed(format!("场景创建失败: {}", e.details())))?;
            // Cancelled while storing: take the scene back out so a cancelled job leaves
            // nothing behind.
            if ctx.check().is_err() {
                let _ = ctx.db().scenes().delete(&scene_id).await;
                return Err(JobFailure::Cancelled);
            }
            Ok(json!({
                "scene_id": scene_id,
                "message": format!("分析完成，场景已创建: {scene_id}"),
            }))
        }
        .boxed()
    }
}
