//! `GET /api/progress/{task_id}` (SSE) and `POST /api/cancel/{task_id}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::envelope::{ApiResult, Ok};
use crate::app::AppState;
use crate::auth::Identity;
use crate::error::ServerError;
use crate::jobs::CancelOutcome;
use crate::realtime::progress::{job_stream, not_found_stream};

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

pub async fn progress(
    State(state): State<Arc<AppState>>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ServerError> {
    let job = state.jobs.get(&task_id).await.map_err(ServerError::store)?;
    let Some(job) = job else {
        if wants_event_stream(&headers) {
            return Result::Ok(not_found_stream().into_response());
        }
        return Err(ServerError::TaskNotFound);
    };
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let heartbeat = Duration::from_millis(state.hub.config().sse_heartbeat_ms.max(100));
    let sse = job_stream(
        state.jobs.clone(),
        state.bus.clone(),
        job,
        last_event_id,
        heartbeat,
        state.shutdown.clone(),
    );
    let mut response = sse.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("keep-alive"),
    );
    // Proxies such as nginx must not buffer the stream.
    headers.insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    Result::Ok(response)
}

/// Only the job's owner (or an admin) may cancel it.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(task_id): Path<String>,
) -> ApiResult {
    let job = state.jobs.get(&task_id).await.map_err(ServerError::store)?;
    match &job {
        None => return Err(ServerError::TaskNotFound),
        Some(job) if !identity.may_manage(&job.owner) => return Err(ServerError::Forbidden),
        Some(_) => {}
    }
    match state
        .jobs
        .cancel(&task_id)
        .await
        .map_err(ServerError::store)?
    {
        CancelOutcome::NotFound => Err(ServerError::TaskNotFound),
        CancelOutcome::Cancelled => Result::Ok(Ok::empty().message("任务已取消")),
        CancelOutcome::AlreadyFinished => Result::Ok(Ok::empty().message("任务已标记为取消")),
    }
}
