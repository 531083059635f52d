//! Settings routes (so far: `POST /api/settings/test-connection`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::envelope::{ApiResult, Ok};
use super::extract::LenientJson;
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::llm::{ProbeTarget, probe};
use crate::error::ServerError;

#[derive(Deserialize)]
pub struct TestConnection {
    provider: Option<String>,
    llm_config: Option<BTreeMap<String, String>>,
}

pub async fn test_connection(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    LenientJson(body): LenientJson<TestConnection>,
) -> ApiResult {
    let target = match body {
        Some(TestConnection {
            provider: Some(provider),
            llm_config: Some(settings),
        }) if !provider.is_empty() && !settings.is_empty() => {
            // A temporary configuration sends requests (and any key given) to a base URL of the
            // caller's choosing: an administrator's action.
            if !identity.may_administer(state.guest_mode, state.config.addr.ip().is_loopback()) {
                return Err(ServerError::ForbiddenWith {
                    message: "只有管理员可以测试临时配置".into(),
                });
            }
            ProbeTarget::Temporary { provider, settings }
        }
        _ => ProbeTarget::Saved,
    };
    let outcome = probe(&state.runtime, &state.config, target).await?;
    Result::Ok(Ok::data(outcome).message("连接测试成功"))
}
