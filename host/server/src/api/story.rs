//! The story routes (spec story-export §5): thin handlers over `domain::story::engine`. Every
//! change is announced to the scene's sockets as `story:updated`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use futures::future::BoxFuture;
use sceneintruder_llm::{LlmCall, LlmError, StreamItem};
use serde::Deserialize;
use serde_json::{Value, json};

use super::envelope::Ok;
use super::extract::{ApiJson, LenientJson, with_message};
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::story::engine::{
    self, BatchOperation, CommandPlan, CommandRequest, Preferences,
};
use crate::domain::story::{self, shown};
use crate::error::ServerError;

type ApiResult = Result<Response, ServerError>;

/// Tell the scene's sockets what changed (additive message of §6).
fn announce(state: &AppState, scene_id: &str, reason: &str, node_id: &str) {
    state.hub.broadcast(
        scene_id,
        json!({"type": "story:updated", "scene_id": scene_id, "reason": reason,
               "node_id": node_id, "timestamp": crate::time::rfc3339_nano_local()}),
    );
}

/// `GET /api/scenes/{id}/story`: the story, made on first use (§5.1).
pub async fn get_story(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    let story = state
        .stories
        .get_or_create(&identity, &id)
        .await
        .map_err(|e| match e {
            ServerError::SceneNotFound { .. } => ServerError::StoryNotFound,
            other => other,
        })?;
    let data = state.stories.reading(&story).await?;
    Result::Ok(
        Ok::data(shown(data))
            .message("故事数据获取成功")
            .into_response(),
    )
}

/// `GET /api/scenes/{id}/nodes/{node_id}/content` (§5.2): never makes a story.
pub async fn node_content(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, node_id)): Path<(String, String)>,
) -> ApiResult {
    crate::domain::scenes::load(&state.db, &identity, &id).await?;
    let story = state
        .stories
        .load(&id)
        .await?
        .ok_or_else(|| ServerError::StoryNodeNotFound {
            details: "加载故事数据失败: 故事数据不存在".into(),
        })?;
    let node = story
        .node(&node_id)
        .cloned()
        .ok_or_else(|| ServerError::StoryNodeNotFound {
            details: format!(
                "未找到指定的故事节点: {}",
                node_id.chars().take(128).collect::<String>()
            ),
        })?;
    // Real triggers live in the metadata; the field of the same name is filled from it.
    let triggers = node
        .metadata
        .as_ref()
        .and_then(|m| m.get("interaction_triggers").cloned())
        .filter(|_| node.interaction_triggers.is_empty());
    Result::Ok(
        Ok::data(json!({
            "content": node.content,
            "original_content": node.original_content,
            "related_item_ids": node.related_item_ids,
            "metadata": node.metadata,
            "character_links": Value::Null,
            "interaction_triggers": triggers,
            "node": node,
        }))
        .message("故事节点内容获取成功")
        .into_response(),
    )
}

#[derive(Deserialize)]
pub struct ChoiceBody {
    #[serde(default)]
    node_id: String,
    #[serde(default)]
    choice_id: String,
    #[serde(default)]
    user_preferences: Option<Preferences>,
}

/// `POST /api/scenes/{id}/story/choice` (§5.3).
pub async fn choice(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    body: Result<ApiJson<ChoiceBody>, ServerError>,
) -> ApiResult {
    let body = with_message(body, "参数格式错误")?;
    for (field, value) in [("node_id", &body.node_id), ("choice_id", &body.choice_id)] {
        if value.trim().is_empty() {
            return Err(ServerError::bad_request(
                "参数格式错误",
                format!("{field} is required"),
            ));
        }
    }
    let preferences = body.user_preferences.unwrap_or_default();
    let (next, story) = state
        .stories
        .choose(&identity, &id, &body.node_id, &body.choice_id, &preferences)
        .await?;
    announce(&state, &id, "choice", &next.id);
    let data = state
        .stories
        .reading(&story)
        .await
        .map_err(|e| ServerError::failed_from("获取故事数据失败", e))?;
    Result::Ok(
        Ok::data(json!({"next_node": next, "story_data": data}))
            .message("选择执行成功")
            .into_response(),
    )
}

#[derive(Deserialize, Default)]
pub struct PreferencesBody {
    #[serde(default)]
    user_preferences: Option<Preferences>,
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// The model's answer, whole; the route's failure message on error.
async fn complete(state: &AppState, call: &LlmCall, timeout: Duration) -> Result<String, LlmError> {
    tokio::time::timeout(timeout, state.llm.complete(call))
        .await
        .map_err(|_| LlmError::Timeout(timeout))?
        .map(|c| c.text)
}

/// The answer as SSE: `delta` frames (`{"text": ...}`) as the model writes (through `tap`,
/// which picks what a player should see), then `done` with what `finish` makes of the whole
/// answer, or `error`.
fn stream<F>(
    state: Arc<AppState>,
    mut call: LlmCall,
    timeout: Duration,
    mut tap: Box<dyn FnMut(&str) -> String + Send>,
    finish: F,
) -> Response
where
    F: FnOnce(
            Arc<AppState>,
            Result<String, LlmError>,
        ) -> BoxFuture<'static, Result<Value, ServerError>>
        + Send
        + 'static,
{
    let cancel = tokio_util::sync::CancellationToken::new();
    call.cancel = Some(cancel.clone());
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Event, Infallible>>(32);
    tokio::spawn(async move {
        // The client went away (the channel closed): stop the model too.
        let _stop = cancel.drop_guard();
        let deadline = tokio::time::Instant::now() + timeout;
        let answer = async {
            let mut completion = state.llm.stream(&call).await?;
            let mut text = String::new();
            loop {
                let item = match tokio::time::timeout_at(deadline, completion.next()).await {
                    Result::Ok(Some(item)) => item?,
                    Result::Ok(None) => break,
                    Err(_) => return Err(LlmError::Timeout(timeout)),
                };
                match item {
                    StreamItem::Delta(delta) => {
                        text.push_str(&delta);
                        let shown = tap(&delta);
                        if !shown.is_empty() {
                            let event = Event::default()
                                .event("delta")
                                .json_data(json!({"text": shown}));
                            if tx
                                .send(Result::Ok(event.unwrap_or_default()))
                                .await
                                .is_err()
                            {
                                return Err(LlmError::Cancelled);
                            }
                        }
                    }
                    StreamItem::Done(_) => break,
                }
            }
            Result::Ok(text)
        }
        .await;
        if matches!(answer, Err(LlmError::Cancelled)) {
            return;
        }
        let event = match finish(state, answer).await {
            Result::Ok(data) => Event::default().event("done").json_data(data),
            Err(e) => Event::default().event("error").json_data(
                json!({"code": e.code(), "message": e.message(), "details": e.details()}),
            ),
        };
        let _ = tx.send(Result::Ok(event.unwrap_or_default())).await;
    });
    Sse::new(rx)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn advance_failed(e: LlmError) -> ServerError {
    match e {
        LlmError::NotReady(_) => ServerError::LlmNotReady {
            details: "LLM服务未就绪，无法续写剧情".into(),
        },
        other => ServerError::failed("推进故事失败", format!("LLM 续写失败: {other}")),
    }
}

/// `POST /api/scenes/{id}/story/advance` (§5.4); SSE for `Accept: text/event-stream`.
pub async fn advance(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    headers: HeaderMap,
    Path(id): Path<String>,
    LenientJson(body): LenientJson<PreferencesBody>,
) -> ApiResult {
    let preferences = body.and_then(|b| b.user_preferences).unwrap_or_default();
    let plan = state
        .stories
        .advance_plan(&identity, &id, &preferences)
        .await?;
    let call = plan.call.clone();
    let finish = move |state: Arc<AppState>,
                       answer: Result<String, LlmError>|
          -> BoxFuture<'static, Result<Value, ServerError>> {
        Box::pin(async move {
            let reply = answer.map_err(advance_failed)?;
            if reply.trim().is_empty() {
                return Err(ServerError::failed(
                    "推进故事失败",
                    "LLM 续写失败: the model answered nothing",
                ));
            }
            let (update, story) = state.stories.advance_apply(&plan, &reply).await?;
            announce(&state, &plan.scene_id, "advance", &update.title);
            let mut data = json!({"story_update": update});
            if let Result::Ok(full) = state.stories.reading(&story).await {
                data["story_data"] = json!(full);
            }
            Result::Ok(data)
        })
    };
    if wants_stream(&headers) {
        return Result::Ok(stream(
            state,
            call,
            engine::ADVANCE_TIMEOUT,
            Box::new(str::to_string),
            finish,
        ));
    }
    let answer = complete(&state, &call, engine::ADVANCE_TIMEOUT).await;
    let data = finish(state.clone(), answer).await?;
    Result::Ok(Ok::data(data).message("故事已推进").into_response())
}

/// `POST /api/scenes/{id}/story/command` (§5.5); SSE for `Accept: text/event-stream`.
pub async fn command(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<ApiJson<CommandRequest>, ServerError>,
) -> ApiResult {
    let request = with_message(body, "参数格式错误")?;
    let plan = state.stories.command_plan(&identity, &id, request).await?;
    let call = plan.call.clone();
    let story_mode = plan.mode == "story";
    let finish = move |state: Arc<AppState>,
                       answer: Result<String, LlmError>|
          -> BoxFuture<'static, Result<Value, ServerError>> {
        Box::pin(async move { finish_command(&state, &plan, answer).await })
    };
    if wants_stream(&headers) {
        let tap: Box<dyn FnMut(&str) -> String + Send> = if story_mode {
            let mut narration = story::prompts::NarrationTap::default();
            Box::new(move |chunk| narration.feed(chunk))
        } else {
            Box::new(str::to_string)
        };
        return Result::Ok(stream(state, call, engine::COMMAND_TIMEOUT, tap, finish));
    }
    let answer = complete(&state, &call, engine::COMMAND_TIMEOUT).await;
    let data = finish(state.clone(), answer).await?;
    Result::Ok(Ok::data(data).message("互动指令执行成功").into_response())
}

async fn finish_command(
    state: &AppState,
    plan: &CommandPlan,
    answer: Result<String, LlmError>,
) -> Result<Value, ServerError> {
    let answer = match answer {
        Err(LlmError::NotReady(s)) => return Err(ServerError::LlmNotReady { details: s }),
        other => other.map_err(|e| e.to_string()),
    };
    let data = state.stories.command_apply(plan, answer).await?;
    announce(
        state,
        &plan.scene_id,
        "command",
        plan.active.as_deref().unwrap_or(""),
    );
    Result::Ok(data)
}

#[derive(Deserialize, Default)]
pub struct InsertBody {
    #[serde(default)]
    content: Option<String>,
}

/// `POST /api/scenes/{id}/story/nodes/{node_id}/insert` (§5.6).
pub async fn insert(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, node_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let content = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<InsertBody>(&body)
            .map_err(|e| ServerError::bad_request("请求体格式错误", e.to_string()))?
            .content
    };
    let (node, text) = state
        .stories
        .insert(&identity, &id, &node_id, content)
        .await?;
    announce(&state, &id, "insert", &node.id);
    Result::Ok(
        Ok::data(json!({"node": node, "content": text}))
            .message("节点内容已插入互动屏幕")
            .into_response(),
    )
}

#[derive(Deserialize)]
pub struct RewindBody {
    #[serde(default)]
    node_id: String,
}

/// `POST /api/scenes/{id}/story/rewind` (§5.7), by path; `new_start` restarts.
pub async fn rewind(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    body: Result<ApiJson<RewindBody>, ServerError>,
) -> ApiResult {
    let body = with_message(body, "无效的请求参数")?;
    if body.node_id.trim().is_empty() {
        return Err(ServerError::bad_request(
            "无效的请求参数",
            "node_id is required",
        ));
    }
    let restart = body.node_id == "new_start";
    let (before, _removed, story) = state
        .stories
        .rewind(&identity, &id, &body.node_id, restart)
        .await?;
    announce(&state, &id, "rewind", &before.id);
    let view = engine::branches(&story);
    if restart {
        let full = state.stories.reading(&story).await?;
        return Result::Ok(
            // The reference always answers an empty list here (§11 item 6).
            Ok::data(
                json!({"story": full, "branch_view": view, "target_node": before,
                            "removed_node_ids": []}),
            )
            .message("回溯至起点并清空上下文")
            .into_response(),
        );
    }
    Result::Ok(
        Ok::data(json!({
            "story_data": view,
            "progress": story.data.progress,
            "current_state": story.data.current_state,
            "target_node_id": before.id,
            "target_node": {"id": before.id, "content": before.content, "type": before.node_type,
                            "created_at": before.created_at},
        }))
        .message("故事已成功回溯")
        .into_response(),
    )
}

#[derive(Deserialize)]
pub struct PreferencesQuery {
    #[serde(default)]
    preferences: Option<String>,
}

fn preferences_of(query: &PreferencesQuery) -> Preferences {
    query
        .preferences
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default()
}

/// `GET /api/scenes/{id}/story/branches` (§5.8).
pub async fn branches(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    let story = state
        .stories
        .get_or_create(&identity, &id)
        .await
        .map_err(|e| match e {
            ServerError::SceneNotFound { .. } => e,
            other => ServerError::failed_from("获取故事数据失败", other),
        })?;
    Result::Ok(
        Ok::data(engine::branches(&story))
            .message("故事分支获取成功")
            .into_response(),
    )
}

/// `GET /api/scenes/{id}/story/choices` (§5.9): `null` when there is nothing to choose.
pub async fn choices(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    crate::domain::scenes::load(&state.db, &identity, &id).await?;
    let story = state
        .stories
        .load(&id)
        .await?
        .ok_or_else(|| ServerError::failed("获取故事选择失败", "故事数据不存在"))?;
    let open = engine::available_choices(&story);
    Result::Ok(
        Ok::data(json!(open))
            .message("故事选择获取成功")
            .into_response(),
    )
}

#[derive(Deserialize, Default)]
pub struct BatchBody {
    #[serde(default)]
    operations: Vec<BatchOperation>,
}

/// `POST /api/scenes/{id}/story/batch` (§5.10), performed atomically.
pub async fn batch(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    body: Result<ApiJson<BatchBody>, ServerError>,
) -> ApiResult {
    let body = with_message(body, "请求参数错误")?;
    let count = state
        .stories
        .batch(&identity, &id, &body.operations)
        .await?;
    if count > 0 {
        announce(&state, &id, "batch", "");
    }
    Result::Ok(
        Ok::data(json!({"operations": count}))
            .message("批量操作执行成功")
            .into_response(),
    )
}

/// The story after a change, as the answer (`获取故事数据失败` when it cannot be read).
async fn with_story(state: &AppState, story: &story::Story, message: &str) -> ApiResult {
    let data = state
        .stories
        .reading(story)
        .await
        .map_err(|e| ServerError::failed_from("获取故事数据失败", e))?;
    Result::Ok(Ok::data(data).message(message).into_response())
}

/// `POST /api/scenes/{id}/story/tasks/{task_id}/objectives/{objective_id}/complete` (§5.11).
pub async fn complete_objective(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, task_id, objective_id)): Path<(String, String, String)>,
) -> ApiResult {
    let story = state
        .stories
        .complete_objective(&identity, &id, &task_id, &objective_id)
        .await?;
    announce(&state, &id, "objective", "");
    with_story(&state, &story, "目标完成成功").await
}

/// `POST /api/scenes/{id}/story/locations/{location_id}/unlock` (§5.12).
pub async fn unlock(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, location_id)): Path<(String, String)>,
) -> ApiResult {
    let story = state.stories.unlock(&identity, &id, &location_id).await?;
    announce(&state, &id, "unlock", "");
    with_story(&state, &story, "地点解锁成功").await
}

/// `POST /api/scenes/{id}/story/locations/{location_id}/explore` (§5.13).
pub async fn explore(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, location_id)): Path<(String, String)>,
    Query(query): Query<PreferencesQuery>,
) -> ApiResult {
    let preferences = preferences_of(&query);
    let result = state
        .stories
        .explore(&identity, &id, &location_id, &preferences)
        .await?;
    let node = result["story_node"]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    announce(&state, &id, "explore", &node);
    Result::Ok(Ok::data(result).message("地点探索成功").into_response())
}

/// `story_choice` over the scene's WebSocket: the same operation as the REST choice.
pub struct WsStory(pub std::sync::Weak<AppState>);

impl crate::realtime::ws::SceneStory for WsStory {
    fn choose(
        &self,
        scene_id: String,
        owner: String,
        node_id: String,
        choice_id: String,
        preferences: Value,
    ) -> BoxFuture<'static, Result<Value, String>> {
        let state = self.0.clone();
        Box::pin(async move {
            let state = state.upgrade().ok_or("故事服务不可用")?;
            let identity = Identity::of_socket_owner(owner);
            let preferences: Preferences = serde_json::from_value(preferences).unwrap_or_default();
            let (next, _) = state
                .stories
                .choose(&identity, &scene_id, &node_id, &choice_id, &preferences)
                .await
                .map_err(|e| {
                    let details = e.details();
                    let cause = match e {
                        ServerError::SceneNotFound { .. } => e.message(),
                        _ if details.is_empty() => e.message(),
                        _ => details,
                    };
                    format!("执行故事选择失败: {cause}")
                })?;
            announce(&state, &scene_id, "choice", &next.id);
            serde_json::to_value(next).map_err(|e| e.to_string())
        })
    }
}
