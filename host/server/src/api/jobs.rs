//! `GET /api/jobs/{id}` (a job's state as JSON) and `POST /api/jobs/diagnostics`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sceneintruder_store::Job;
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use super::extract::ApiJson;
use crate::app::AppState;
use crate::auth::Identity;
use crate::error::ServerError;
use crate::jobs::diagnostics::CountdownInput;
use crate::jobs::{DIAGNOSTICS_KIND, DIAGNOSTICS_RESUMABLE_KIND};

pub fn describe(job: &Job) -> Value {
    json!({
        "task_id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": job.progress,
        "message": job.message,
        "result": job.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "error": job.error,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    })
}

/// Only the job's owner (or an admin) sees it; anyone else gets the same `404` as for an
/// unknown job.
pub async fn show(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    let job = state.jobs.get(&id).await.map_err(ServerError::store)?;
    let job = job
        .filter(|job| identity.may_manage(&job.owner))
        .ok_or(ServerError::TaskNotFound)?;
    Result::Ok(Ok::data(describe(&job)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsRequest {
    #[serde(flatten)]
    input: CountdownInput,
    #[serde(default)]
    resumable: bool,
}

pub async fn diagnostics(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    ApiJson(request): ApiJson<DiagnosticsRequest>,
) -> ApiResult {
    if !state.jobs.config().diagnostics {
        return Err(ServerError::RouteNotFound {
            path: "/api/jobs/diagnostics".into(),
        });
    }
    request
        .input
        .validate()
        .map_err(|e| ServerError::bad_request("无效的请求数据", e))?;
    let kind = if request.resumable {
        DIAGNOSTICS_RESUMABLE_KIND
    } else {
        DIAGNOSTICS_KIND
    };
    let input = serde_json::to_value(&request.input).map_err(ServerError::internal)?;
    let job = state
        .jobs
        .submit(kind, &identity.user_id, &input, "任务初始化中...")
        .await
        .map_err(ServerError::store)?;
    Result::Ok(
        Ok::data(json!({"task_id": job.id, "status": "queued"}))
            .status(StatusCode::ACCEPTED)
            .message("accepted"),
    )
}
