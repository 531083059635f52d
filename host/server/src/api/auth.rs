//! `POST /api/auth/login` and `POST /api/auth/logout`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use super::envelope::{ApiResult, Ok};
use super::extract::ApiJson;
use crate::app::AppState;
use crate::domain::auth;
use crate::error::ServerError;

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(ServerError::bad_request(
            "登录凭据格式错误",
            "username and password are required",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let done = auth::login(
        &state.db,
        &state.tokens,
        &body.username,
        &body.password,
        now,
    )
    .await?;
    Result::Ok(Ok::data(json!({"token": done.token, "user_id": done.user_id})).message("登录成功"))
}

pub async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = token {
        auth::logout(
            &state.db,
            &state.tokens,
            token,
            chrono::Utc::now().timestamp(),
        )
        .await?;
        // After the revocation is stored; a check that began earlier cannot re-cache it.
        state.sessions.forget(&crate::auth::token_hash(token));
    }
    Result::Ok(Ok::empty().message("登出成功"))
}
