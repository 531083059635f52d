//! `POST /api/interactions/trigger`, `POST /api/interactions/simulate`,
//! `GET /api/interactions/{scene_id}` and `GET /api/interactions/{scene_id}/{a}/{b}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use sceneintruder_llm::{LlmCall, LlmError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use super::extract::ApiJson;
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::interactions::{
    ModelAnswer, Unknown, attribute, between, conversation_lines, director_prompt, is_interaction,
    simulation_prompt,
};
use crate::domain::scenes::{self, Character, Conversation, new_id};
use crate::error::ServerError;
use crate::time::rfc3339_nano_local;

const TIMEOUT: Duration = Duration::from_secs(90);

/// Parse the body with this route's "malformed" message.
fn body<T>(parsed: Result<ApiJson<T>, ServerError>) -> Result<T, ServerError> {
    parsed.map(|ApiJson(b)| b).map_err(|e| match e {
        ServerError::BadRequest { details, .. } => {
            ServerError::bad_request("无效的请求格式", details)
        }
        other => other,
    })
}

/// The requested characters of an owned scene, in request order.
async fn participants(
    state: &AppState,
    identity: &Identity,
    scene_id: &str,
    ids: &[String],
) -> Result<Vec<Character>, ServerError> {
    scenes::load(&state.db, identity, scene_id).await?;
    let all = scenes::characters(&state.db, scene_id).await?;
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|c| &c.id == id)
                .cloned()
                .ok_or_else(|| ServerError::CharacterNotFound { id: id.clone() })
        })
        .collect()
}

fn require_ready(state: &AppState) -> Result<(), ServerError> {
    let readiness = state.llm.readiness();
    if readiness.ready {
        Result::Ok(())
    } else {
        Err(ServerError::LlmNotReady {
            details: readiness.status,
        })
    }
}

/// Ask the model for an exchange; `what` names the operation in error texts.
async fn dialogue(
    state: &AppState,
    system: String,
    prompt: &str,
    user: &str,
    what: &str,
) -> Result<Vec<crate::domain::interactions::ModelLine>, ServerError> {
    let mut call = LlmCall::new(system, prompt);
    call.temperature = Some(0.8);
    call.max_tokens = Some(3000);
    call.user = user.to_string();
    call.fresh = true;
    let outcome = tokio::time::timeout(TIMEOUT, state.llm.complete_json::<ModelAnswer>(&call))
        .await
        .map_err(|_| LlmError::Timeout(TIMEOUT));
    match outcome.and_then(|r| r) {
        Result::Ok((answer, _)) => Result::Ok(answer.lines()),
        Err(LlmError::NotReady(status)) => Err(ServerError::LlmNotReady { details: status }),
        Err(e) => Err(ServerError::Internal {
            details: format!("{what}: {e}"),
        }),
    }
}

#[derive(Deserialize)]
pub struct TriggerRequest {
    #[serde(default)]
    scene_id: String,
    #[serde(default)]
    character_ids: Vec<String>,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    context_description: String,
}

pub async fn trigger(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    parsed: Result<ApiJson<TriggerRequest>, ServerError>,
) -> ApiResult {
    let request = body(parsed)?;
    if request.scene_id.is_empty() {
        return Err(ServerError::bad_request(
            "缺少场景ID",
            "scene_id is required",
        ));
    }
    if request.character_ids.len() < 2 {
        return Err(ServerError::bad_request(
            "至少需要两个角色才能进行互动",
            "character_ids needs at least two ids",
        ));
    }
    if request.topic.trim().is_empty() {
        return Err(ServerError::bad_request(
            "缺少互动主题",
            "topic is required",
        ));
    }
    require_ready(&state)?;
    let cast = participants(&state, &identity, &request.scene_id, &request.character_ids).await?;
    let lines = dialogue(
        &state,
        director_prompt(&cast, &request.context_description),
        &request.topic,
        &identity.user_id,
        "生成角色互动失败",
    )
    .await?;
    let dialogues = attribute(lines, &cast, Unknown::Refuse)?;
    let id = new_id("interaction");
    let stored = conversation_lines(
        &request.scene_id,
        &dialogues,
        ("interaction_id", &id),
        &request.character_ids,
    );
    scenes::append(&state.db, &stored).await?;
    let mut interaction = json!({
        "id": id,
        "scene_id": request.scene_id,
        "character_ids": request.character_ids,
        "topic": request.topic,
        "dialogues": dialogues,
        "timestamp": rfc3339_nano_local(),
    });
    if !request.context_description.is_empty()
        && let Value::Object(map) = &mut interaction
    {
        map.insert(
            "metadata".into(),
            json!({"context_description": request.context_description}),
        );
    }
    state.hub.broadcast(
        &request.scene_id,
        json!({"type": "character_interaction", "data": interaction}),
    );
    Result::Ok(Ok::data(interaction).message("角色互动生成成功"))
}

#[derive(Deserialize)]
pub struct SimulateRequest {
    #[serde(default)]
    scene_id: String,
    #[serde(default)]
    character_ids: Vec<String>,
    #[serde(default)]
    initial_situation: String,
    #[serde(default)]
    number_of_turns: i64,
}

pub async fn simulate(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    parsed: Result<ApiJson<SimulateRequest>, ServerError>,
) -> ApiResult {
    let request = body(parsed)?;
    if request.scene_id.is_empty() {
        return Err(ServerError::bad_request(
            "缺少场景ID",
            "scene_id is required",
        ));
    }
    if request.character_ids.len() < 2 {
        return Err(ServerError::bad_request(
            "至少需要两个角色才能进行对话",
            "character_ids needs at least two ids",
        ));
    }
    if request.initial_situation.trim().is_empty() {
        return Err(ServerError::bad_request(
            "缺少初始情境描述",
            "initial_situation is required",
        ));
    }
    let turns = if request.number_of_turns <= 0 {
        3
    } else {
        request.number_of_turns.min(10)
    } as u32;
    require_ready(&state)?;
    let cast = participants(&state, &identity, &request.scene_id, &request.character_ids).await?;
    let lines = dialogue(
        &state,
        simulation_prompt(&cast, turns),
        &request.initial_situation,
        &identity.user_id,
        "模拟角色对话失败",
    )
    .await?;
    let dialogues = attribute(lines, &cast, Unknown::TemporaryId)?;
    let id = new_id("simulation");
    let stored = conversation_lines(
        &request.scene_id,
        &dialogues,
        ("simulation_id", &id),
        &request.character_ids,
    );
    scenes::append(&state.db, &stored).await?;
    state.hub.broadcast(
        &request.scene_id,
        json!({"type": "conversation_simulation", "data": dialogues}),
    );
    Result::Ok(Ok::data(dialogues).message("角色对话模拟成功"))
}

fn positive(query: &HashMap<String, String>, key: &str, default: i64) -> i64 {
    query
        .get(key)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The last `limit` of `lines` (chronological), with the paginated envelope when asked.
fn page(lines: Vec<Conversation>, query: &HashMap<String, String>, message: &str) -> Ok {
    let limit = positive(query, "limit", 20).min(1000) as usize;
    let page = positive(query, "page", 1) as usize;
    let paginated = query.get("paginated").map(String::as_str) == Some("true");
    let total = lines.len();
    let skip = if paginated { (page - 1) * limit } else { 0 };
    let end = total.saturating_sub(skip);
    let start = end.saturating_sub(limit);
    let selected: Vec<Conversation> = lines[start..end].to_vec();
    let mut response = Ok::data(selected).message(message);
    if paginated {
        response = response.meta(json!({
            "page": page,
            "per_page": limit,
            "total": total,
            "total_pages": total.div_ceil(limit),
        }));
    }
    response
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(scene_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &scene_id).await?;
    let (all, _) = scenes::conversations(&state.db, &scene_id, i64::MAX, 0).await?;
    let wanted = |line: &Conversation, key: &str| {
        query
            .get(key)
            .is_none_or(|id| line.metadata.get(key).and_then(Value::as_str) == Some(id.as_str()))
    };
    let lines: Vec<Conversation> = all
        .into_iter()
        .filter(is_interaction)
        .filter(|l| wanted(l, "interaction_id") && wanted(l, "simulation_id"))
        .collect();
    Result::Ok(page(lines, &query, "角色互动历史获取成功"))
}

pub async fn pair(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((scene_id, a, b)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &scene_id).await?;
    let (all, _) = scenes::conversations(&state.db, &scene_id, i64::MAX, 0).await?;
    let lines: Vec<Conversation> = all.into_iter().filter(|l| between(l, &a, &b)).collect();
    let message = if lines.is_empty() {
        "暂无互动记录"
    } else {
        "角色互动历史获取成功"
    };
    Result::Ok(page(lines, &query, message))
}
