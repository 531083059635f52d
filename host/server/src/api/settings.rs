//! Settings routes (so far: `POST /api/settings/test-connection`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::envelope::{ApiResult, Ok};
use super::extract::LenientJson;
use crate::app::AppState;
use crate::domain::llm::{ProbeTarget, probe};

#[derive(Deserialize)]
pub struct TestConnection {
    provider: Option<String>,
    llm_config: Option<BTreeMap<String, String>>,
}

pub async fn test_connection(
    State(state): State<Arc<AppState>>,
    LenientJson(body): LenientJson<TestConnection>,
) -> ApiResult {
    let target = match body {
        Some(TestConnection {
            provider: Some(provider),
            llm_config: Some(settings),
        }) if !provider.is_empty() && !settings.is_empty() => {
            ProbeTarget::Temporary { provider, settings }
        }
        _ => ProbeTarget::Saved,
    };
    let outcome = probe(&state.runtime, &state.config, target).await?;
    Result::Ok(Ok::data(outcome).message("连接测试成功"))
}
