//! WebSocket upgrades (`/ws/scene/{id}`, `/ws/user/status`), `GET /api/ws/status` and
//! `POST /api/ws/cleanup`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use super::envelope::{ApiResult, Ok};
use super::rate_limit::CallerKey;
use crate::app::AppState;
use crate::auth::Identity;
use crate::error::ServerError;
use crate::realtime::ws::{Endpoint, user_status_room};

fn valid_room(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && id != "."
        && id != ".."
}

/// The connection's user: the authenticated identity, else `?user_id=` (or `anonymous`).
fn user_id(identity: &Identity, query: &HashMap<String, String>) -> Result<String, ServerError> {
    if identity.authenticated {
        return Result::Ok(identity.user_id.clone());
    }
    let user = query
        .get("user_id")
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "anonymous".to_string());
    if user.len() > 128 || user.chars().any(char::is_control) {
        return Err(ServerError::bad_request(
            "无效的用户ID",
            "user_id must be at most 128 printable characters",
        ));
    }
    Result::Ok(user)
}

fn upgrade(
    state: Arc<AppState>,
    ws: WebSocketUpgrade,
    endpoint: Endpoint,
    room: String,
    user: String,
    owner: String,
    caller: CallerKey,
) -> Response {
    if state.hub.at_capacity() {
        return ServerError::TooManyConnections.into_response();
    }
    let hub = state.hub.clone();
    let limit = hub.config().ws_max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| hub.serve(socket, endpoint, room, user, owner, caller.0))
}

pub async fn scene(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    caller: CallerKey,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ServerError> {
    if !valid_room(&id) {
        return Err(ServerError::bad_request(
            "无效的场景ID",
            "scene ids are 1-128 characters of letters, digits, _ - .",
        ));
    }
    // A stored scene's room is for those who may see the scene (its replies are broadcast
    // there); other room names stay free-form, as in the reference.
    if crate::domain::scenes::valid_id(&id)
        && let Some(row) = state
            .db
            .scenes()
            .get(&id)
            .await
            .map_err(ServerError::store)?
        && !identity.may_manage(&row.owner)
    {
        return Err(ServerError::SceneNotFound { id });
    }
    let user = user_id(&identity, &query)?;
    Result::Ok(upgrade(
        state,
        ws,
        Endpoint::Scene,
        id,
        user,
        identity.user_id,
        caller,
    ))
}

pub async fn user_status(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    caller: CallerKey,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ServerError> {
    let user = user_id(&identity, &query)?;
    Result::Ok(upgrade(
        state,
        ws,
        Endpoint::UserStatus,
        user_status_room(&identity.user_id),
        user,
        identity.user_id,
        caller,
    ))
}

/// Admins see every connection; anyone else only the connections they opened.
pub async fn status(State(state): State<Arc<AppState>>, identity: Identity) -> ApiResult {
    let viewer = (!identity.admin).then_some(identity.user_id.as_str());
    Result::Ok(
        Ok::data(state.hub.status(viewer)).message("WebSocket status retrieved successfully"),
    )
}

pub async fn cleanup(State(state): State<Arc<AppState>>) -> ApiResult {
    let closed = state.hub.sweep();
    tracing::info!(closed, "websocket cleanup");
    Result::Ok(Ok::empty().message("Connection cleanup executed"))
}
