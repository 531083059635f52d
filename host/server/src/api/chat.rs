//! `POST /api/chat` (also as SSE token deltas for `Accept: text/event-stream`) and
//! `POST /api/chat/emotion`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use sceneintruder_llm::{LlmError, StreamItem};
use serde::Deserialize;
use serde_json::{Map, json};

use super::envelope::Ok;
use super::extract::ApiJson;
use super::rate_limit::Class;
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::chat::{ChatContext, EmotionReply, context};
use crate::domain::scenes;
use crate::error::ServerError;

/// A chat reply may take this long (the reference had no limit).
const CHAT_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    scene_id: String,
    #[serde(default)]
    character_id: String,
    #[serde(default)]
    message: String,
}

impl ChatRequest {
    fn validate(&self) -> Result<(), ServerError> {
        for (field, value) in [
            ("scene_id", &self.scene_id),
            ("character_id", &self.character_id),
            ("message", &self.message),
        ] {
            if value.trim().is_empty() {
                return Err(ServerError::bad_request(
                    "请求参数错误",
                    format!("{field} is required"),
                ));
            }
        }
        crate::domain::limits::text(
            "message",
            &self.message,
            crate::domain::limits::MESSAGE_CHARS,
        )
    }
}

/// `error.message` of a chat turn that failed (spec/scenes.md §7.10, §7.11).
const FAILED: &str = "生成回应失败";

/// A failed model call of a chat turn: `503 LLM_NOT_READY`, or `500` [`FAILED`] with the
/// cause in details.
fn llm_error(e: LlmError) -> ServerError {
    ServerError::from_llm(FAILED, e)
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// Store the two lines of a turn and tell the scene's sockets.
async fn record(
    state: &AppState,
    ctx: &ChatContext,
    message: &str,
    reply: &str,
    metadata: Map<String, serde_json::Value>,
) -> Result<(), ServerError> {
    scenes::append(&state.db, &ctx.lines(message, reply, metadata)).await?;
    state.hub.broadcast(&ctx.scene.id, ctx.announcement(reply));
    Result::Ok(())
}

pub async fn chat(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ChatRequest>,
) -> Result<Response, ServerError> {
    body.validate()?;
    state.require_llm()?;
    if wants_stream(&headers) {
        let ctx = context(&state.db, &identity, &body.scene_id, &body.character_id).await?;
        let call = ctx.chat_call(&body.message, &identity.user_id);
        return stream(state, ctx, body.message, call).await;
    }
    let (ctx, reply) = turn(
        &state,
        &identity,
        &body.scene_id,
        &body.character_id,
        &body.message,
    )
    .await?;
    state.hub.broadcast(&ctx.scene.id, ctx.announcement(&reply));
    Result::Ok(
        Ok::data(json!({"character": ctx.character.name, "response": reply}))
            .message("回应生成成功")
            .into_response(),
    )
}

/// One chat turn: the character's reply, stored with the user's line (not yet announced).
async fn turn(
    state: &AppState,
    identity: &Identity,
    scene_id: &str,
    character_id: &str,
    message: &str,
) -> Result<(ChatContext, String), ServerError> {
    let ctx = context(&state.db, identity, scene_id, character_id).await?;
    let call = ctx.chat_call(message, &identity.user_id);
    let completion = tokio::time::timeout(CHAT_TIMEOUT, state.llm.complete(&call))
        .await
        .map_err(|_| llm_error(LlmError::Timeout(CHAT_TIMEOUT)))?
        .map_err(llm_error)?;
    scenes::append(&state.db, &ctx.lines(message, &completion.text, Map::new())).await?;
    Result::Ok((ctx, completion.text))
}

/// `character_interaction` over the scene's WebSocket: the same turn as `POST /api/chat`,
/// as the connection's user.
pub struct WsChat(pub std::sync::Weak<AppState>);

impl crate::realtime::ws::SceneChat for WsChat {
    /// The `chat` rate class, as for `POST /api/chat`.
    fn admit(&self, caller: &str) -> Result<(), u64> {
        // Without the state the turn itself answers that the service is unavailable.
        let Some(state) = self.0.upgrade() else {
            return Result::Ok(());
        };
        let decision = state
            .limiter
            .check(Class::Chat, caller, std::time::Instant::now());
        if decision.allowed {
            Result::Ok(())
        } else {
            Err(decision.retry_after)
        }
    }

    fn reply(
        &self,
        scene_id: String,
        owner: String,
        character_id: String,
        message: String,
    ) -> futures::future::BoxFuture<'static, Result<serde_json::Value, String>> {
        let state = self.0.clone();
        Box::pin(async move {
            let state = state.upgrade().ok_or("角色服务不可用")?;
            let identity = Identity::of_socket_owner(owner);
            state
                .require_llm()
                .map_err(|e| format!("{}: {}", e.message(), e.details()))?;
            let (ctx, reply) = turn(&state, &identity, &scene_id, &character_id, &message)
                .await
                .map_err(|e| match e {
                    ServerError::SceneNotFound { .. } | ServerError::CharacterNotFound { .. } => {
                        format!("{}: {}", e.message(), e.details())
                    }
                    other => other.details(),
                })?;
            Result::Ok(ctx.announcement(&reply))
        })
    }
}

/// The same turn as Server-Sent Events: `delta` frames (`{"text": ...}`) as the model
/// writes, then `done` with the reference's response object, or `error`. The turn is stored
/// once the reply is complete.
async fn stream(
    state: Arc<AppState>,
    ctx: ChatContext,
    message: String,
    mut call: sceneintruder_llm::LlmCall,
) -> Result<Response, ServerError> {
    let cancel = tokio_util::sync::CancellationToken::new();
    call.cancel = Some(cancel.clone());
    let mut completion = state.llm.stream(&call).await.map_err(llm_error)?;
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Event, Infallible>>(32);
    tokio::spawn(async move {
        // The client went away (the channel closed): stop the model too.
        let _stop = cancel.drop_guard();
        let mut reply = String::new();
        let deadline = tokio::time::Instant::now() + CHAT_TIMEOUT;
        loop {
            let item = match tokio::time::timeout_at(deadline, completion.next()).await {
                Result::Ok(Some(item)) => item,
                Result::Ok(None) => break,
                Err(_) => Err(LlmError::Timeout(CHAT_TIMEOUT)),
            };
            let event = match item {
                Result::Ok(StreamItem::Delta(text)) => {
                    reply.push_str(&text);
                    Event::default()
                        .event("delta")
                        .json_data(json!({"text": text}))
                }
                Result::Ok(StreamItem::Done(_)) => {
                    let stored = record(&state, &ctx, &message, &reply, Map::new()).await;
                    let event = match stored {
                        Result::Ok(()) => Event::default()
                            .event("done")
                            .json_data(json!({"character": ctx.character.name, "response": reply})),
                        Err(e) => Event::default()
                            .event("error")
                            .json_data(json!({"message": e.details()})),
                    };
                    let _ = tx.send(Result::Ok(event.unwrap_or_default())).await;
                    break;
                }
                Err(e) => {
                    let event = Event::default()
                        .event("error")
                        .json_data(json!({"message": format!("{FAILED}: {e}")}));
                    let _ = tx.send(Result::Ok(event.unwrap_or_default())).await;
                    break;
                }
            };
            if tx
                .send(Result::Ok(event.unwrap_or_default()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Result::Ok(
        Sse::new(rx)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
    )
}

pub async fn emotion(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    ApiJson(body): ApiJson<ChatRequest>,
) -> Result<Response, ServerError> {
    body.validate()?;
    state.require_llm()?;
    let ctx = context(&state.db, &identity, &body.scene_id, &body.character_id).await?;
    let call = ctx.emotion_call(&body.message, &identity.user_id);
    let (reply, completion) =
        tokio::time::timeout(CHAT_TIMEOUT, state.llm.complete_json::<EmotionReply>(&call))
            .await
            .map_err(|_| llm_error(LlmError::Timeout(CHAT_TIMEOUT)))?
            .map_err(|e| match e {
                LlmError::Parse { error, .. } => {
                    ServerError::failed(FAILED, format!("情感分析失败: {error}"))
                }
                other => llm_error(other),
            })?;
    let response = reply
        .normalise(&ctx.character, completion.total_tokens)
        .map_err(|e| ServerError::failed(FAILED, format!("情感分析失败: {e}")))?;
    record(
        &state,
        &ctx,
        &body.message,
        &response.response,
        response.metadata(),
    )
    .await?;
    Result::Ok(
        Ok::data(&response)
            .message("情绪化回应生成成功")
            .into_response(),
    )
}
