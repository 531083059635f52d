//! Settings and LLM configuration routes: `GET/POST /api/settings`,
//! `POST /api/settings/test-connection`, `GET /api/llm/status`, `GET /api/llm/models`,
//! `PUT /api/llm/config`, `GET /api/config/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use sceneintruder_runtime::{Description, PluginKind};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::envelope::{ApiResult, Ok};
use super::extract::{ApiJson, LenientJson, with_message};
use super::plugins::model_json;
use crate::app::AppState;
use crate::auth::{Identity, Peer};
use crate::domain::llm::{ProbeTarget, probe};
use crate::domain::settings::{
    CatalogEntry, Kind, SaveError, SectionUpdate, Update, coerce, is_secret_key,
};
use crate::error::ServerError;

/// Changing settings (or probing a caller-chosen endpoint) is an administrator's action.
pub(super) fn require_admin(
    state: &AppState,
    identity: &Identity,
    peer: &Peer,
    message: &str,
) -> Result<(), ServerError> {
    if identity.may_administer(state.guest_mode, peer) {
        Result::Ok(())
    } else {
        Err(ServerError::ForbiddenWith {
            message: message.into(),
        })
    }
}

#[derive(Deserialize)]
pub struct TestConnection {
    provider: Option<String>,
    llm_config: Option<BTreeMap<String, String>>,
}

pub async fn test_connection(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    peer: Peer,
    LenientJson(body): LenientJson<TestConnection>,
) -> ApiResult {
    let target = match body {
        Some(TestConnection {
            provider: Some(provider),
            llm_config: Some(settings),
        }) if !provider.is_empty() && !settings.is_empty() => {
            // A temporary configuration sends requests (and any key given) to a base URL of the
            // caller's choosing.
            require_admin(&state, &identity, &peer, "只有管理员可以测试临时配置")?;
            ProbeTarget::Temporary { provider, settings }
        }
        _ => ProbeTarget::Saved,
    };
    let outcome = probe(&state.runtime, &state.settings, target).await?;
    Result::Ok(Ok::data(outcome).message("连接测试成功"))
}

/// Non-secret entries of a section plus `has_api_key`.
fn masked_config(config: &BTreeMap<String, String>, has_api_key: bool) -> Value {
    let mut out: Map<String, Value> = config
        .iter()
        .filter(|(k, _)| !is_secret_key(None, k))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    out.insert("has_api_key".into(), Value::Bool(has_api_key));
    Value::Object(out)
}

/// The loaded LLM plugins and their catalogs.
fn llm_providers(state: &AppState) -> Vec<Value> {
    state
        .runtime
        .ids(PluginKind::LlmProvider)
        .into_iter()
        .filter_map(|id| match state.runtime.description(&id) {
            Some(Description::Provider(info)) => Some(json!({
                "id": id,
                "display_name": info.display_name,
                "default_model": info.default_model,
                "models": info.models.iter().map(model_json).collect::<Vec<_>>(),
            })),
            _ => None,
        })
        .collect()
}

/// Default catalog of a vision/video kind: the built-in provider and every loaded plugin's
/// models (used until a catalog is saved).
fn default_catalog(state: &AppState, kind: Kind) -> Vec<CatalogEntry> {
    let plugin_kind = match kind {
        Kind::Vision => PluginKind::VisionProvider,
        _ => PluginKind::VideoProvider,
    };
    let flag = |value: bool| (kind == Kind::Vision).then_some(value);
    let conditioned = |value: bool| (kind == Kind::Video).then_some(value);
    let ids = state.runtime.ids(plugin_kind);
    // The built-in provider's own entry, unless its plugin is loaded and lists it.
    let mut catalog: Vec<CatalogEntry> = kind
        .builtin()
        .filter(|name| !ids.contains(&kind.plugin_id(name)))
        .map(|name| CatalogEntry {
            key: name.into(),
            label: name.into(),
            provider: name.into(),
            supports_reference_image: flag(false),
            supports_image_conditioned: conditioned(false),
        })
        .into_iter()
        .collect();
    for id in ids {
        if let Some(Description::Provider(info)) = state.runtime.description(&id) {
            catalog.extend(info.models.iter().map(|m| CatalogEntry {
                key: m.id.clone(),
                label: m.display_name.clone(),
                provider: kind.provider_name(&id),
                supports_reference_image: flag(m.vision_input),
                supports_image_conditioned: conditioned(m.vision_input),
            }));
        }
    }
    catalog
}

pub async fn show(State(state): State<Arc<AppState>>) -> ApiResult {
    let current = state.settings.current();
    let llm = state.settings.active(&state.runtime, Kind::Llm);
    let llm_section = &current.stored.llm;
    let mut data = json!({
        "llm_provider": llm.as_ref().map(|a| a.provider.clone()).unwrap_or_default(),
        "debug_mode": false,
        "port": state.config.addr.port().to_string(),
        "llm_config": {
            // Clients save `default_model`; older ones read `model`: both show the choice.
            "model": llm.as_ref().and_then(|a| a.default_model.clone()).unwrap_or_default(),
            "default_model": llm_section.config.get("default_model").cloned().unwrap_or_default(),
            "base_url": llm_section.config.get("base_url").cloned().unwrap_or_default(),
            "has_api_key": llm.as_ref().is_some_and(|a| a.has_api_key),
        },
        "llm_providers": llm_providers(&state),
    });
    for kind in [Kind::Vision, Kind::Video] {
        let prefix = if kind == Kind::Vision {
            "vision"
        } else {
            "video"
        };
        let section = current.stored.section(kind);
        let active = state.settings.active(&state.runtime, kind);
        let models = section
            .models
            .clone()
            .unwrap_or_else(|| default_catalog(&state, kind));
        let model_providers = section.model_providers.clone().unwrap_or_else(|| {
            models
                .iter()
                .map(|m| (m.key.clone(), m.provider.clone()))
                .collect()
        });
        if let Value::Object(map) = &mut data {
            map.insert(
                format!("{prefix}_provider"),
                json!(
                    active
                        .as_ref()
                        .map(|a| a.provider.clone())
                        .unwrap_or_default()
                ),
            );
            map.insert(
                format!("{prefix}_default_model"),
                json!(
                    active
                        .as_ref()
                        .and_then(|a| a.default_model.clone())
                        .or_else(|| kind.builtin().map(str::to_string))
                        .unwrap_or_default()
                ),
            );
            map.insert(
                format!("{prefix}_config"),
                masked_config(&section.config, active.is_some_and(|a| a.has_api_key)),
            );
            map.insert(format!("{prefix}_model_providers"), json!(model_providers));
            map.insert(format!("{prefix}_models"), json!(models));
        }
    }
    Result::Ok(Ok::data(data).message("设置获取成功"))
}

/// `POST /api/settings` body. Option values may be any JSON scalar (coerced to strings).
#[derive(Deserialize)]
pub struct SaveRequest {
    llm_provider: Option<String>,
    llm_config: Option<BTreeMap<String, Value>>,
    /// Accepted for compatibility; the server has no debug mode to switch.
    #[serde(rename = "debug_mode")]
    _debug_mode: Option<bool>,
    vision_provider: Option<String>,
    vision_default_model: Option<String>,
    vision_config: Option<BTreeMap<String, Value>>,
    vision_model_providers: Option<BTreeMap<String, Value>>,
    vision_models: Option<Vec<CatalogEntry>>,
    video_provider: Option<String>,
    video_default_model: Option<String>,
    video_config: Option<BTreeMap<String, Value>>,
    video_model_providers: Option<BTreeMap<String, Value>>,
    video_models: Option<Vec<CatalogEntry>>,
}

fn strings(map: Option<BTreeMap<String, Value>>) -> BTreeMap<String, String> {
    map.unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.clone(), coerce(v)))
        .collect()
}

impl SaveRequest {
    fn into_update(self) -> Update {
        let mut sections = Vec::new();
        let llm_config = strings(self.llm_config);
        // The reference processes the LLM section only with a provider and at least one option.
        if let Some(provider) = self.llm_provider.filter(|p| !p.trim().is_empty())
            && !llm_config.is_empty()
        {
            sections.push((
                Kind::Llm,
                SectionUpdate {
                    provider,
                    config: llm_config,
                    ..SectionUpdate::default()
                },
            ));
        }
        let media = [
            (
                Kind::Vision,
                self.vision_provider,
                self.vision_default_model,
                self.vision_config,
                self.vision_model_providers,
                self.vision_models,
            ),
            (
                Kind::Video,
                self.video_provider,
                self.video_default_model,
                self.video_config,
                self.video_model_providers,
                self.video_models,
            ),
        ];
        for (kind, provider, default_model, config, model_providers, models) in media {
            if let Some(provider) = provider.filter(|p| !p.trim().is_empty()) {
                sections.push((
                    kind,
                    SectionUpdate {
                        provider,
                        config: strings(config),
                        default_model,
                        model_providers: model_providers.map(|m| strings(Some(m))),
                        models,
                    },
                ));
            }
        }
        Update {
            sections,
            fill_llm_default: true,
        }
    }
}

/// The reference's failure texts per section.
fn save_error(error: SaveError) -> ServerError {
    match error {
        SaveError::Invalid(invalid) => {
            let (message, details) = match invalid.kind {
                Kind::Llm => (
                    "保存LLM配置失败",
                    format!("配置验证失败: {}", invalid.reason),
                ),
                Kind::Vision => (
                    "保存Vision配置失败",
                    format!("更新vision配置失败: {}", invalid.reason),
                ),
                Kind::Video => (
                    "保存Video配置失败",
                    format!("更新video配置失败: {}", invalid.reason),
                ),
            };
            ServerError::InvalidSettings {
                message: message.into(),
                details,
            }
        }
        SaveError::Store(details) => ServerError::Internal {
            details: format!("更新配置失败: {details}"),
        },
        SaveError::Unavailable => ServerError::database_unavailable(),
    }
}

pub async fn save(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    peer: Peer,
    ApiJson(body): ApiJson<SaveRequest>,
) -> ApiResult {
    require_admin(&state, &identity, &peer, "只有管理员可以修改设置")?;
    let _writer = state.locks.lock("settings").await;
    let changed = state
        .settings
        .save(&state.db, &state.runtime, body.into_update())
        .await
        .map_err(save_error)?;
    state.settings.record(&changed);
    tracing::info!(by = %identity.user_id, sections = ?changed, "settings saved");
    Result::Ok(Ok::empty().message("设置保存成功"))
}

#[derive(Deserialize)]
pub struct LlmConfigRequest {
    provider: String,
    config: BTreeMap<String, String>,
}

pub async fn update_llm(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    peer: Peer,
    body: Result<ApiJson<LlmConfigRequest>, ServerError>,
) -> ApiResult {
    let body = with_message(body, "无效的请求格式")?;
    if body.provider.trim().is_empty() {
        return Err(ServerError::bad_request(
            "无效的请求格式",
            "provider must not be empty",
        ));
    }
    require_admin(&state, &identity, &peer, "只有管理员可以修改设置")?;
    let _writer = state.locks.lock("settings").await;
    let update = Update {
        sections: vec![(
            Kind::Llm,
            SectionUpdate {
                provider: body.provider,
                config: body.config,
                ..SectionUpdate::default()
            },
        )],
        fill_llm_default: false,
    };
    state
        .settings
        .save(&state.db, &state.runtime, update)
        .await
        .map_err(|e| match e {
            SaveError::Invalid(invalid) => ServerError::InvalidSettings {
                message: "配置验证失败".into(),
                details: invalid.reason,
            },
            SaveError::Store(details) => ServerError::Internal {
                details: format!("配置更新失败: {details}"),
            },
            SaveError::Unavailable => ServerError::database_unavailable(),
        })?;
    state.settings.touch();
    tracing::info!(by = %identity.user_id, "LLM configuration updated");
    Result::Ok(Ok::empty().message("LLM配置更新成功"))
}

pub async fn llm_status(State(state): State<Arc<AppState>>) -> ApiResult {
    let active = state.settings.active(&state.runtime, Kind::Llm);
    let readiness = state.llm.readiness();
    let mut config = json!({
        "provider": active.as_ref().map(|a| a.provider.clone()).unwrap_or_default(),
        "has_api_key": active.as_ref().is_some_and(|a| a.has_api_key),
    });
    if let Some(active) = active.as_ref().filter(|a| a.model_key_present)
        && let Value::Object(map) = &mut config
    {
        map.insert("model".into(), json!(active.default_model));
    }
    let mut data = json!({
        "ready": readiness.ready,
        "status": readiness.status,
        "provider": readiness.provider,
        "config": config,
    });
    if !readiness.ready
        && let Value::Object(map) = &mut data
    {
        let configured = active.is_some_and(|a| a.has_api_key);
        map.insert("configured".into(), json!(configured));
    }
    Result::Ok(Ok::data(data).message("LLM状态获取成功"))
}

#[derive(Deserialize)]
pub struct ModelsQuery {
    provider: Option<String>,
}

pub async fn llm_models(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ModelsQuery>,
) -> ApiResult {
    let provider = query
        .provider
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ServerError::bad_request("缺少提供商参数", "query parameter provider"))?;
    let info = state
        .runtime
        .ids(PluginKind::LlmProvider)
        .contains(&provider)
        .then(|| state.runtime.description(&provider))
        .flatten();
    let Some(Description::Provider(info)) = info else {
        return Err(ServerError::bad_request("不支持的LLM提供商", provider));
    };
    let ids: Vec<&str> = info.models.iter().map(|m| m.id.as_str()).collect();
    Result::Ok(
        Ok::data(json!({
            "provider": provider,
            "models": ids,
            "count": ids.len(),
            "default_model": info.default_model,
            "catalog": info.models.iter().map(model_json).collect::<Vec<_>>(),
        }))
        .message("模型列表获取成功"),
    )
}

pub async fn config_metrics(State(state): State<Arc<AppState>>) -> ApiResult {
    let tracker = state.settings.tracker();
    Result::Ok(
        Ok::data(json!({
            "config_version": tracker.config_version,
            "last_updated": tracker.last_updated,
            "subscribers_count": 0,
            "change_history_size": tracker.history_len(),
            "audit_log_size": 0,
            "audit_enabled": false,
            "cache_status": true,
            "llm_usage": state.llm.usage(),
        }))
        .message("配置指标获取成功"),
    )
}
