//! `GET /api/plugins` and `GET /api/plugins/{id}`: what the runtime found and loaded.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use crate::app::AppState;
use crate::auth::{Identity, Peer};
use crate::error::{Resource, ServerError};
use sceneintruder_runtime::types::ModelInfo;
use sceneintruder_runtime::{Description, PluginReport, validate_id};

/// One catalog entry as every endpoint shows it.
pub fn model_json(m: &ModelInfo) -> Value {
    json!({
        "id": m.id,
        "display_name": m.display_name,
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "json_mode": m.json_mode,
        "json_schema": m.json_schema,
        "reasoning": m.reasoning,
        "vision_input": m.vision_input,
        "streaming": m.streaming,
    })
}

fn describe(state: &AppState, report: &PluginReport, description: Option<&Description>) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    let details = match description {
        Some(Description::Provider(info)) => json!({
            "display_name": info.display_name,
            "default_model": info.default_model,
            "models": info.models.iter().map(model_json).collect::<Vec<_>>(),
        }),
        Some(Description::Exporter(formats)) => {
            let (serves, lost) = state.exports().of_plugin(&report.id);
            json!({
                "formats": formats.iter().map(|f| json!({
                    "kind": f.kind,
                    "format": f.format,
                    "display_name": f.display_name,
                    "media_type": f.media_type,
                    "file_extension": f.file_extension,
                    "schema_version": f.schema_version,
                })).collect::<Vec<_>>(),
                "serves": serves,
                "lost": lost.iter().map(|(pair, winner)| json!({
                    "pair": pair,
                    "served_by": winner,
                })).collect::<Vec<_>>(),
            })
        }
        None => Value::Null,
    };
    if let Value::Object(map) = &mut value {
        map.insert("info".into(), details);
    }
    value
}

pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult {
    let plugins: Vec<Value> = state
        .runtime
        .entries()
        .iter()
        .map(|(report, description)| describe(&state, report, description.as_ref()))
        .collect();
    Result::Ok(Ok::data(plugins))
}

/// One plugin by id: the folder serving it, else the first folder that claims it.
pub async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    validate_id(&id).map_err(|e| ServerError::bad_request("无效的插件ID", e.to_string()))?;
    let entries = state.runtime.entries();
    let (report, description) = entries
        .iter()
        .filter(|(r, _)| r.id == id)
        .min_by_key(|(_, d)| d.is_none())
        .ok_or(ServerError::NotFound {
            resource: Resource::Plugin,
        })?;
    Result::Ok(Ok::data(describe(&state, report, description.as_ref())))
}

/// `POST /api/plugins/reload` (admins): look at the plugins folder now, without waiting for
/// the watcher; answers what changed.
pub async fn reload(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    peer: Peer,
) -> ApiResult {
    super::settings::require_admin(&state, &identity, &peer, "只有管理员可以重新加载插件")?;
    let summary = crate::domain::plugins::reload(&state).await;
    let message = if summary.is_empty() {
        "插件无变化"
    } else {
        "插件已重新加载"
    };
    Result::Ok(Ok::data(serde_json::to_value(&summary).unwrap_or(Value::Null)).message(message))
}
