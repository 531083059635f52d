//! `POST /api/interactions/trigger`, `POST /api/interactions/simulate`,
//! `GET /api/interactions/{scene_id}` and `GET /api/interactions/{scene_id}/{a}/{b}`.

use crate::domain::limits;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use sceneintruder_llm::{LlmCall, LlmError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use super::extract::{ApiJson, with_message};
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::aggregate::{self, EmotionData, Options};
use crate::domain::chat::{self, EmotionReply, EmotionalResponse};
use crate::domain::interactions::{
    Dialogue, ModelAnswer, Unknown, attribute, between, conversation_lines, director_prompt,
    is_interaction, simulation_prompt,
};
use crate::domain::scenes::{self, Character, Conversation, new_id};
use crate::error::ServerError;
use crate::time::rfc3339_nano_local;

const TIMEOUT: Duration = Duration::from_secs(90);

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

/// Ask the model for an exchange. A failed call is `503 LLM_NOT_READY` or a `500` worded
/// `what` (the route's message), the cause in details.
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
        Err(e) => Err(ServerError::from_llm(what, e)),
    }
}

/// What a directed exchange and a simulation share: the checks, the model call, the
/// attribution and the stored lines. They differ in these texts and rules.
struct Exchange<'a> {
    scene_id: &'a str,
    character_ids: &'a [String],
    /// The topic or the initial situation (the user prompt).
    prompt: &'a str,
    too_few: &'static str,
    missing_prompt: &'static str,
    /// `error.message` when the model fails or its answer cannot be used.
    failure: &'static str,
    unknown: Unknown,
    /// `interaction` or `simulation`: the id prefix and the metadata key `<group>_id`.
    group: &'static str,
}

/// Validate, ask the model, attribute and store an exchange; returns its id and lines.
async fn exchange(
    state: &AppState,
    identity: &Identity,
    spec: Exchange<'_>,
    brief: impl FnOnce(&[Character]) -> String,
) -> Result<(String, Vec<Dialogue>), ServerError> {
    if spec.scene_id.is_empty() {
        return Err(ServerError::bad_request(
            "缺少场景ID",
            "scene_id is required",
        ));
    }
    if spec.character_ids.len() < 2 {
        return Err(ServerError::bad_request(
            spec.too_few,
            "character_ids needs at least two ids",
        ));
    }
    if spec.prompt.trim().is_empty() {
        return Err(ServerError::bad_request(
            spec.missing_prompt,
            "the prompt text is required",
        ));
    }
    state.require_llm()?;
    let cast = participants(state, identity, spec.scene_id, spec.character_ids).await?;
    let lines = dialogue(
        state,
        brief(&cast),
        spec.prompt,
        &identity.user_id,
        spec.failure,
    )
    .await?;
    let dialogues =
        attribute(lines, &cast, spec.unknown).map_err(|e| ServerError::failed(spec.failure, e))?;
    let id = new_id(spec.group);
    let key = format!("{}_id", spec.group);
    let stored = conversation_lines(spec.scene_id, &dialogues, (&key, &id), spec.character_ids);
    scenes::append(&state.db, &stored).await?;
    Result::Ok((id, dialogues))
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
    let request = with_message(parsed, "无效的请求格式")?;
    limits::text("topic", &request.topic, limits::MESSAGE_CHARS)?;
    limits::text(
        "context_description",
        &request.context_description,
        limits::MESSAGE_CHARS,
    )?;
    let spec = Exchange {
        scene_id: &request.scene_id,
        character_ids: &request.character_ids,
        prompt: &request.topic,
        too_few: "至少需要两个角色才能进行互动",
        missing_prompt: "缺少互动主题",
        failure: "生成角色互动失败",
        unknown: Unknown::Refuse,
        group: "interaction",
    };
    let (id, dialogues) = exchange(&state, &identity, spec, |cast| {
        director_prompt(cast, &request.context_description)
    })
    .await?;
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
    let request = with_message(parsed, "无效的请求格式")?;
    let turns = if request.number_of_turns <= 0 {
        3
    } else {
        request.number_of_turns.min(10)
    } as u32;
    limits::text(
        "initial_situation",
        &request.initial_situation,
        limits::MESSAGE_CHARS,
    )?;
    let spec = Exchange {
        scene_id: &request.scene_id,
        character_ids: &request.character_ids,
        prompt: &request.initial_situation,
        too_few: "至少需要两个角色才能进行对话",
        missing_prompt: "缺少初始情境描述",
        failure: "模拟角色对话失败",
        unknown: Unknown::TemporaryId,
        group: "simulation",
    };
    let (_, dialogues) = exchange(&state, &identity, spec, |cast| {
        simulation_prompt(cast, turns)
    })
    .await?;
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

#[derive(Deserialize)]
pub struct AggregateRequest {
    #[serde(default)]
    scene_id: String,
    #[serde(default)]
    character_ids: Vec<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    node_id: String,
    emotion_data: Option<EmotionData>,
    #[serde(default)]
    context: serde_json::Map<String, Value>,
    options: Option<Options>,
}

pub async fn aggregate(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    parsed: Result<ApiJson<AggregateRequest>, ServerError>,
) -> ApiResult {
    let request = with_message(parsed, "无效的请求参数")?;
    if request.scene_id.is_empty() {
        return Err(ServerError::bad_request(
            "缺少场景ID",
            "scene_id is required",
        ));
    }
    if request.character_ids.is_empty() {
        return Err(ServerError::bad_request(
            "至少需要选择一个角色",
            "character_ids is empty",
        ));
    }
    let character_ids = aggregate::addressed(&request.character_ids)?;
    limits::text("message", &request.message, limits::MESSAGE_CHARS)?;
    if request.message.trim().is_empty() {
        return Err(ServerError::bad_request(
            "消息内容不能为空",
            "message is required",
        ));
    }
    state.require_llm()?;
    let started = std::time::Instant::now();
    let options = request.options.unwrap_or_else(Options::all);
    let cast = participants(&state, &identity, &request.scene_id, &character_ids).await?;
    let node_id = [
        Some(request.node_id.as_str()),
        request.context.get("node_id").and_then(Value::as_str),
        request.context.get("story_node_id").and_then(Value::as_str),
        request
            .context
            .get("current_node_id")
            .and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .find(|n| !n.is_empty())
    .unwrap_or_default()
    .to_string();

    // Every character answers (no lock held while the model works).
    let mut replies = Vec::new();
    let mut notifications = Vec::new();
    let mut tokens = 0u32;
    // Why each character that failed did (the details when all of them fail).
    let mut failures = Vec::new();
    let mut not_ready = None;
    // The scene and the recent conversation are the same for every character: read once.
    let first = cast.first().map(|c| c.id.as_str()).unwrap_or_default();
    let mut ctx = chat::context(&state.db, &identity, &request.scene_id, first).await?;
    for character in &cast {
        ctx.character = character.clone();
        let call = ctx.emotion_call(&request.message, &identity.user_id);
        let outcome = tokio::time::timeout(TIMEOUT, state.llm.complete_json::<EmotionReply>(&call))
            .await
            .unwrap_or(Err(LlmError::Timeout(TIMEOUT)))
            .map_err(|e| {
                if let LlmError::NotReady(status) = &e {
                    not_ready = Some(status.clone());
                }
                e.to_string()
            })
            .and_then(|(reply, completion)| {
                tokens += completion.total_tokens;
                reply
                    .normalise(character, completion.total_tokens)
                    .map_err(|e| format!("情感分析失败: {e}"))
            });
        match outcome {
            Result::Ok(reply) => replies.push((character.clone(), reply)),
            Err(e) => {
                let message = format!("角色 {} 响应生成失败: {e}", character.name);
                notifications.push(json!({
                    "id": new_id("notice"), "type": "warning", "title": "角色响应失败",
                    "message": message, "duration": 5000,
                }));
                failures.push(message);
            }
        }
    }
    if replies.is_empty() {
        // The provider went away meanwhile: the same answer as before the first call.
        if let Some(status) = not_ready {
            return Err(ServerError::LlmNotReady { details: status });
        }
        return Err(ServerError::failed(
            "处理交互失败",
            format!("所有角色响应生成都失败了: {}", failures.join("; ")),
        ));
    }
    let only: Vec<EmotionalResponse> = replies.iter().map(|(_, r)| r.clone()).collect();
    let ids: Vec<String> = only.iter().map(|r| r.character_id.clone()).collect();
    let messages: Vec<Value> = replies
        .iter()
        .map(|(c, r)| {
            json!({
                "character_id": r.character_id,
                "character_name": r.character_name,
                "content": r.response,
                "emotion_data": EmotionData::of(r),
                "timestamp": r.timestamp,
                "message_type": "response",
                "metadata": {"tokens_used": r.tokens_used.unwrap_or(0), "character_role": c.role,
                             "character_personality": c.personality},
            })
        })
        .collect();
    let states: serde_json::Map<String, Value> = only
        .iter()
        .map(|r| {
            (
                r.character_id.clone(),
                aggregate::character_state(r, &ids, &request.message),
            )
        })
        .collect();

    // Story progress: computed from the exchange, applied to the story under its lock.
    let mut data = json!({});
    let progress_now;
    if options.update_story_progress {
        let significance = aggregate::significance(&only, &request.message);
        let (change, points) = state
            .stories
            .interaction_progress(&identity, &request.scene_id, |current| {
                aggregate::progress_change(current, significance)
            })
            .await?;
        progress_now = points;
        let all = format!(
            "{} {}",
            request.message.to_lowercase(),
            only.iter()
                .map(|r| r.response.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let unlocked = aggregate::unlocked(points, &all);
        for item in &unlocked {
            notifications.push(
                json!({"id": new_id("notice"), "type": "success", "title": "新内容解锁",
                                      "message": item, "duration": 5000}),
            );
        }
        let mut updates = json!({"progress_change": change, "story_progress": points});
        if !unlocked.is_empty()
            && let Value::Object(map) = &mut updates
        {
            map.insert("unlocked_content".into(), json!(unlocked));
        }
        data["story_updates"] = updates;
    } else {
        progress_now = state.stories.progress(&request.scene_id).await;
    }
    if options.generate_follow_ups {
        data["new_choices"] = json!(aggregate::follow_ups(
            &only,
            &request.message,
            request.emotion_data.as_ref(),
            &request.context,
            progress_now,
        ));
    }
    if options.save_to_history {
        let interaction_id = new_id("interaction");
        let mut lines = Vec::new();
        let base = |extra: Value| {
            let mut metadata = serde_json::Map::new();
            metadata.insert("conversation_type".into(), json!("character_interaction"));
            metadata.insert("interaction_id".into(), json!(interaction_id));
            metadata.insert("character_ids".into(), json!(character_ids));
            if !node_id.is_empty() {
                metadata.insert("node_id".into(), json!(node_id));
            }
            if let Value::Object(extra) = extra {
                metadata.extend(extra);
            }
            metadata
        };
        let line = |speaker: &str, content: &str, metadata| Conversation {
            id: new_id("conv"),
            scene_id: request.scene_id.clone(),
            speaker_id: speaker.to_string(),
            node_id: node_id.clone(),
            content: content.to_string(),
            timestamp: rfc3339_nano_local(),
            metadata,
            ..Conversation::default()
        };
        lines.push(line(
            "user",
            &request.message,
            base(json!({"message_type": "user_input", "speaker_type": "user"})),
        ));
        for (c, r) in &replies {
            lines.push(line(
                &r.character_id,
                &r.response,
                base(json!({
                    "character_name": r.character_name, "user_message": request.message,
                    "message_type": "response", "speaker_type": "character",
                    "emotion_data": EmotionData::of(r), "tokens_used": r.tokens_used.unwrap_or(0),
                    "character_role": c.role, "character_personality": c.personality,
                })),
            ));
        }
        if let Err(e) = scenes::append(&state.db, &lines).await {
            tracing::warn!("cannot save the interaction: {}", e.details());
            notifications.push(json!({"id": new_id("notice"), "type": "warning", "title": "保存失败",
                                      "message": "交互历史保存失败，但不影响当前对话", "duration": 3000}));
        }
    }
    let events = if options.trigger_events {
        aggregate::events(
            &only,
            &request.message,
            request.emotion_data.as_ref(),
            &request.context,
        )
    } else {
        Vec::new()
    };
    let mut tabs =
        vec![json!({"tab_id": "chat", "badge_count": messages.len(), "is_active": true})];
    if data.get("story_updates").is_some() {
        tabs.push(
            json!({"tab_id": "story", "badge_count": 1, "is_active": false, "title": "故事"}),
        );
    }
    let animations = if messages.len() >= 2 {
        vec![
            json!({"target": ".character-list", "type": "highlight", "duration": 1000,
                    "params": {"color": "#4CAF50"}}),
        ]
    } else {
        Vec::new()
    };
    data["messages"] = json!(messages);
    data["character_states"] = Value::Object(states);
    data["ui_updates"] = json!({
        "scroll_to_bottom": true,
        "highlight_characters": ids,
        "update_chat_badges": ids.iter().map(|id| (id.clone(), json!(1))).collect::<serde_json::Map<_, _>>(),
        "trigger_animations": animations,
        "update_tabs": tabs,
    });
    data["notifications"] = json!(notifications);
    if !events.is_empty() {
        data["events"] = json!(events);
    }
    data["stats"] = json!({
        "tokens_used": tokens,
        "processing_time_ms": started.elapsed().as_millis() as u64,
        "characters_involved": cast.len(),
        "messages_generated": messages.len(),
        "events_triggered": events.len(),
        "total_interactions": 0, "total_messages": 0, "total_tokens_used": 0,
        "total_processing_time": 0, "total_tasks_completed": 0, "total_progress_change": 0,
        "last_updated": scenes::ZERO_TIME,
    });
    Result::Ok(Ok::data(data).message("交互处理成功"))
}
