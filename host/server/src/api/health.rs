//! `GET /api/config/health`.

use std::sync::Arc;

use axum::extract::State;
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use crate::app::AppState;
use crate::domain::settings::Kind;

pub async fn health(State(state): State<Arc<AppState>>) -> ApiResult {
    let active = state.settings.active(&state.runtime, Kind::Llm);
    let llm_provider = match &active {
        Some(a) if state.runtime.llm(&a.provider).is_ok() => {
            json!({"status": "healthy", "provider": a.provider})
        }
        Some(a) => {
            json!({"status": "warning", "provider": a.provider, "error": "LLM提供商插件未加载"})
        }
        None => json!({"status": "warning", "error": "LLM提供商未配置"}),
    };
    let llm_api_key = if active.is_some_and(|a| a.has_api_key) {
        json!({"status": "healthy"})
    } else {
        json!({"status": "warning", "error": "LLM API密钥未配置"})
    };
    let tracker = state.settings.tracker();
    let database = match state.db.ping().await {
        Result::Ok(()) => json!({"status": "healthy", "backend": state.db.backend()}),
        Err(e) => {
            json!({"status": "unhealthy", "backend": state.db.backend(), "error": e.to_string()})
        }
    };
    let reports = state.runtime.reports();
    let failed = reports
        .iter()
        .filter(|r| r.state != sceneintruder_runtime::PluginState::Loaded)
        .count();
    let plugins = json!({
        "status": if failed == 0 { "healthy" } else { "warning" },
        "loaded": reports.len() - failed,
        "failed": failed,
    });
    let checks: Value = json!({
        "config_loaded": {"status": "healthy"},
        "llm_provider": llm_provider,
        "llm_api_key": llm_api_key,
        "cache_status": {
            "status": "healthy",
            "last_updated": tracker.last_updated,
            "version": tracker.config_version,
        },
        "database": database,
        "plugins": plugins,
    });
    // Warnings do not change the top-level status (as in the reference); only a database
    // that cannot answer makes the server unhealthy.
    let healthy = checks["database"]["status"] == "healthy";
    Result::Ok(
        Ok::data(json!({
            "status": if healthy { "healthy" } else { "unhealthy" },
            "checks": checks,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": state.started.elapsed().as_secs(),
        }))
        .message(if healthy {
            "配置健康状态正常"
        } else {
            "配置健康状态异常"
        }),
    )
}
