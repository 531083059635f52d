//! `GET /api/config/health`: `200` with the checks, or `503 DATABASE_UNAVAILABLE` within
//! about a second when the database cannot answer.

use std::sync::Arc;

use axum::extract::State;
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use crate::app::AppState;
use crate::domain::settings::Kind;
use crate::error::{DATABASE_UNAVAILABLE_DETAILS, ServerError};

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
    // The ping is bounded (on PostgreSQL by the pool's acquire timeout, about a second), so
    // an unreachable database is reported promptly instead of hanging the check. A database
    // that cannot answer makes the server unhealthy: `503 DATABASE_UNAVAILABLE` instead of
    // the payload (as spec/platform.md §7.12 answers an unhealthy server), so load balancers
    // and probes see it in the status code; the cause goes to the log.
    if let Err(e) = state.db.ping().await {
        tracing::warn!(backend = ?state.db.backend(), error = %e, "health: database down");
        return Err(ServerError::DatabaseUnavailable {
            details: format!(
                "checks.database: unhealthy ({}): {DATABASE_UNAVAILABLE_DETAILS}",
                backend_name(state.db.backend())
            ),
        });
    }
    // A full disk leaves reads working: the server stays up, health says why writes fail
    // (until the next write that succeeds).
    let database = if state.db.storage_full() {
        json!({"status": "warning", "backend": state.db.backend(),
               "error": "storage full: writes fail with 507 STORAGE_FULL until space is freed"})
    } else {
        json!({"status": "healthy", "backend": state.db.backend()})
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
    // that cannot answer makes the server unhealthy (answered above).
    Result::Ok(
        Ok::data(json!({
            "status": "healthy",
            "checks": checks,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": state.started.elapsed().as_secs(),
        }))
        .message("配置健康状态正常"),
    )
}

fn backend_name(backend: sceneintruder_store::Backend) -> &'static str {
    match backend {
        sceneintruder_store::Backend::Sqlite => "sqlite",
        sceneintruder_store::Backend::Postgres => "postgres",
    }
}
