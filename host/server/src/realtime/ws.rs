//! The WebSocket hub of spec/platform.md §9: rooms (`/ws/scene/{id}` joins the scene's room,
//! `/ws/user/status` the `user_status` room), the reference's message types, presence,
//! limits, and one task per connection that ends with the socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bus::{Event, EventBus};

pub const USER_STATUS_ROOM: &str = "user_status";

/// Not a room: messages published to it go to every connection (`plugins:changed`).
const EVERYONE: &str = "\u{1f}everyone";

/// The room a `/ws/user/status` connection of `owner` joins: one per account, so presence
/// goes only to the account's own connections (not to every connected user), while clients
/// still see the room named `user_status`.
pub fn user_status_room(owner: &str) -> String {
    format!("{USER_STATUS_ROOM}\u{1f}{owner}")
}

/// The room name clients see.
fn shown_room(room: &str) -> &str {
    room.split('\u{1f}').next().unwrap_or(room)
}

/// `[realtime]` knobs of the hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsConfig {
    /// Open WebSocket connections allowed at once.
    pub ws_max_connections: usize,
    /// Largest inbound message (bytes); a larger one closes the connection with 1009.
    pub ws_max_message_bytes: usize,
    /// Protocol ping interval (ms).
    pub ws_ping_ms: u64,
    /// A connection with no inbound frame for this long is closed (ms).
    pub ws_read_timeout_ms: u64,
    /// JSON `heartbeat` interval on `/ws/user/status` (ms).
    pub ws_heartbeat_ms: u64,
    /// SSE `heartbeat` interval of `GET /api/progress/{id}` (ms).
    pub sse_heartbeat_ms: u64,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            ws_max_connections: 1024,
            ws_max_message_bytes: 64 << 10,
            ws_ping_ms: 54_000,
            ws_read_timeout_ms: 60_000,
            ws_heartbeat_ms: 30_000,
            sse_heartbeat_ms: super::progress::DEFAULT_HEARTBEAT_MS,
        }
    }
}

/// Outgoing queue per connection: at most this many messages (the reference's 256) and
/// this many bytes; a client that falls further behind is disconnected (close code 1008).
const QUEUE: usize = 256;
const QUEUE_BYTES: usize = 4 << 20;
/// Largest `status` and `action` of a presence update (bytes, `action` as JSON).
const PRESENCE_STATUS_BYTES: usize = 64;
const PRESENCE_ACTION_BYTES: usize = 1024;

/// Where a connection's outgoing messages wait: serialised once and shared by every client
/// of a room, counted in bytes.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Arc<str>>,
    queued: Arc<AtomicUsize>,
    close: CancellationToken,
    lagging: Arc<AtomicBool>,
}

impl Outbox {
    /// Queue `text`; a client whose queue is full (count or bytes) is marked lagging and
    /// closed, and `false` is returned.
    fn send(&self, text: Arc<str>) -> bool {
        let size = text.len();
        let before = self.queued.fetch_add(size, Ordering::SeqCst);
        if before + size > QUEUE_BYTES || self.tx.try_send(text).is_err() {
            self.queued.fetch_sub(size, Ordering::SeqCst);
            self.lagging.store(true, Ordering::SeqCst);
            self.close.cancel();
            return false;
        }
        true
    }

    fn send_value(&self, message: &Value) -> bool {
        self.send(Arc::from(message.to_string()))
    }
}
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

struct Client {
    user_id: String,
    /// The identity that opened the connection (who may see it in `GET /api/ws/status`).
    owner: String,
    connected_at: String,
    /// Unix seconds of the last sign of life.
    last_ping: Arc<AtomicI64>,
    out: Outbox,
}

/// Which endpoint a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Scene,
    UserStatus,
}

/// Answers a `character_interaction` message: the character's reply in the room's scene,
/// returned as the `conversation:new` message to broadcast (or the error text).
pub trait SceneChat: Send + Sync {
    /// Count one message against the chat rate budget of `caller` (the rate-limit key of
    /// whoever opened the connection: the account, else the client address), as each one is
    /// a model call; `Err(retry_after_secs)` refuses it before anything else happens.
    fn admit(&self, caller: &str) -> Result<(), u64>;

    fn reply(
        &self,
        scene_id: String,
        owner: String,
        character_id: String,
        message: String,
    ) -> futures::future::BoxFuture<'static, Result<Value, String>>;
}

/// Takes a `story_choice` on the connection's scene: the new node (as JSON) or the error text.
pub trait SceneStory: Send + Sync {
    fn choose(
        &self,
        scene_id: String,
        owner: String,
        node_id: String,
        choice_id: String,
        preferences: Value,
    ) -> futures::future::BoxFuture<'static, Result<Value, String>>;
}

pub struct Hub {
    story: std::sync::OnceLock<Arc<dyn SceneStory>>,
    rooms: Mutex<HashMap<String, HashMap<u64, Client>>>,
    /// Set once the scene features exist (after the hub, which they need, is built).
    chat: std::sync::OnceLock<Arc<dyn SceneChat>>,
    /// Room broadcasts go through the bus, so every server's clients get them.
    bus: Arc<dyn EventBus>,
    next_id: AtomicU64,
    config: WsConfig,
}

fn ts() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn unix() -> i64 {
    chrono::Utc::now().timestamp()
}

fn error_message(text: &str) -> Value {
    json!({"type": "error", "error": text, "timestamp": ts()})
}

/// The `error` for a refused `character_interaction`, with the HTTP 429's code and wait.
fn rate_limited(retry_after: u64) -> Value {
    let mut message = error_message(&format!("Rate limit exceeded: 请在 {retry_after} 秒后重试"));
    message["code"] = json!("RATE_LIMIT_EXCEEDED");
    message["retry_after"] = json!(retry_after);
    message
}

impl Hub {
    pub fn new(config: WsConfig, bus: Arc<dyn EventBus>) -> Arc<Hub> {
        Arc::new(Hub {
            rooms: Mutex::new(HashMap::new()),
            chat: std::sync::OnceLock::new(),
            story: std::sync::OnceLock::new(),
            bus,
            next_id: AtomicU64::new(1),
            config,
        })
    }

    /// Install the handler of `character_interaction` messages.
    pub fn set_story(&self, story: Arc<dyn SceneStory>) {
        let _ = self.story.set(story);
    }

    pub fn set_chat(&self, chat: Arc<dyn SceneChat>) {
        let _ = self.chat.set(chat);
    }

    pub fn config(&self) -> &WsConfig {
        &self.config
    }

    /// Send `message` to every client in `room` (on every server sharing the bus).
    pub fn broadcast(&self, room: &str, message: Value) {
        self.bus.publish(Event::Room {
            room: room.to_string(),
            message: Arc::new(message),
        });
    }

    /// Send `message` to every client in every room (on every server sharing the bus).
    pub fn broadcast_to_everyone(&self, message: Value) {
        self.broadcast(EVERYONE, message);
    }

    /// Deliver room messages published on the bus (by this or, later, another server).
    pub fn listen(self: &Arc<Self>) {
        let hub = self.clone();
        let mut events = self.bus.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Room { room, message }) => hub.deliver(&room, &message),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "websocket hub lagged behind the event bus");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Client>>> {
        match self.rooms.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Open connections across all rooms.
    pub fn connections(&self) -> usize {
        self.lock()
            .values()
            .flat_map(|room| room.values())
            .filter(|c| !c.out.close.is_cancelled())
            .count()
    }

    pub fn at_capacity(&self) -> bool {
        self.connections() >= self.config.ws_max_connections
    }

    /// Send to this server's clients of a room; a client whose queue is full is closed.
    fn deliver(&self, room: &str, message: &Value) {
        let rooms = self.lock();
        // Serialised once for the whole room.
        let text: Arc<str> = Arc::from(message.to_string());
        if room == EVERYONE {
            for client in rooms.values().flat_map(|clients| clients.values()) {
                client.out.send(text.clone());
            }
            return;
        }
        let Some(clients) = rooms.get(room) else {
            return;
        };
        for client in clients.values() {
            client.out.send(text.clone());
        }
    }

    fn join(&self, room: &str, user_id: &str, owner: &str, out: Outbox) -> (u64, Arc<AtomicI64>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let last_ping = Arc::new(AtomicI64::new(unix()));
        self.lock().entry(room.to_string()).or_default().insert(
            id,
            Client {
                user_id: user_id.to_string(),
                owner: owner.to_string(),
                connected_at: ts(),
                last_ping: last_ping.clone(),
                out,
            },
        );
        (id, last_ping)
    }

    fn leave(&self, room: &str, id: u64) {
        let mut rooms = self.lock();
        if let Some(clients) = rooms.get_mut(room) {
            clients.remove(&id);
            if clients.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Close every connection (with 1001 going away), e.g. at shutdown.
    pub fn close_all(&self) {
        for clients in self.lock().values() {
            for client in clients.values() {
                client.out.close.cancel();
            }
        }
    }

    /// `GET /api/ws/status` data: every connection for an admin (`viewer` `None`), else only
    /// the connections `viewer` opened.
    pub fn status(&self, viewer: Option<&str>) -> Value {
        let rooms = self.lock();
        let mut scenes = serde_json::Map::new();
        let mut total = 0;
        for (room, clients) in rooms.iter() {
            let users: Vec<Value> = clients
                .values()
                .filter(|c| !c.out.close.is_cancelled())
                .filter(|c| viewer.is_none_or(|v| c.owner == v))
                .map(|c| {
                    let last = chrono::DateTime::from_timestamp(c.last_ping.load(Ordering::Relaxed), 0)
                        .map(|t| t.with_timezone(&chrono::Local).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default();
                    json!({"user_id": c.user_id, "scene_id": shown_room(room), "connected_at": c.connected_at, "last_ping": last})
                })
                .collect();
            if users.is_empty() {
                continue;
            }
            total += users.len();
            // Per-account user status rooms are listed together, as one `user_status`.
            let entry = scenes
                .entry(shown_room(room).to_string())
                .or_insert_with(|| json!({"client_count": 0, "users": []}));
            let count = entry["client_count"].as_u64().unwrap_or(0) + users.len() as u64;
            entry["client_count"] = json!(count);
            if let Some(list) = entry["users"].as_array_mut() {
                list.extend(users);
            }
        }
        json!({
            "total_scenes": scenes.len(),
            "total_connections": total,
            "scenes": scenes,
            "ping_timeout_seconds": self.config.ws_read_timeout_ms / 1000,
            "timestamp": ts(),
        })
    }

    /// Close connections that are gone or silent for longer than the read timeout.
    pub fn sweep(&self) -> usize {
        let limit = (self.config.ws_read_timeout_ms / 1000) as i64;
        let now = unix();
        let mut closed = 0;
        let mut rooms = self.lock();
        for clients in rooms.values_mut() {
            clients.retain(|_, c| {
                let stale = now - c.last_ping.load(Ordering::Relaxed) > limit;
                if stale {
                    c.out.close.cancel();
                }
                let keep = !c.out.close.is_cancelled();
                if !keep {
                    closed += 1;
                }
                keep
            });
        }
        rooms.retain(|_, clients| !clients.is_empty());
        closed
    }

    /// Serve one upgraded connection until it ends.
    pub async fn serve(
        self: Arc<Self>,
        socket: WebSocket,
        endpoint: Endpoint,
        room: String,
        user_id: String,
        // The identity whose rights the connection acts with (guests: the guest user).
        owner: String,
        // Its rate-limit key (`user:<id>` or `ip:<addr>`).
        caller: String,
    ) {
        let (mut sink, mut stream) = socket.split();
        let (tx, mut rx) = mpsc::channel::<Arc<str>>(QUEUE);
        let close = CancellationToken::new();
        let out = Outbox {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            close: close.clone(),
            lagging: Arc::new(AtomicBool::new(false)),
        };
        // Register before the welcome, so no broadcast can miss this client.
        let (id, last_ping) = self.join(&room, &user_id, &owner, out.clone());
        let welcome = match endpoint {
            Endpoint::Scene => json!({"type": "connected", "scene_id": room, "user_id": user_id,
                                      "timestamp": ts(), "message": "WebSocket 连接已建立"}),
            Endpoint::UserStatus => json!({"type": "user_status_connected", "user_id": user_id,
                                           "timestamp": ts(), "message": "用户状态连接已建立"}),
        };
        out.send_value(&welcome);
        if endpoint == Endpoint::Scene {
            self.broadcast(&room, presence(&user_id, &room, "online", Value::Null));
        }

        let config = self.config.clone();
        let writer_close = close.clone();
        let writer_out = out.clone();
        let writer = tokio::spawn(async move {
            let mut ping = tokio::time::interval(Duration::from_millis(config.ws_ping_ms.max(100)));
            let mut heartbeat =
                tokio::time::interval(Duration::from_millis(config.ws_heartbeat_ms.max(100)));
            ping.tick().await;
            heartbeat.tick().await;
            loop {
                let message = tokio::select! {
                    _ = writer_close.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(text) => {
                            writer_out.queued.fetch_sub(text.len(), Ordering::SeqCst);
                            Message::Text(Utf8Bytes::from(text.to_string()))
                        }
                        None => break,
                    },
                    _ = ping.tick() => Message::Ping(Default::default()),
                    _ = heartbeat.tick(), if endpoint == Endpoint::UserStatus => Message::Text(Utf8Bytes::from(
                        json!({"type": "heartbeat", "timestamp": unix()}).to_string(),
                    )),
                };
                let is_close = matches!(message, Message::Close(_));
                match tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await {
                    Ok(Ok(())) if !is_close => {}
                    Err(_) => {
                        // The client stopped reading: it is too slow to keep.
                        writer_out.lagging.store(true, Ordering::SeqCst);
                        break;
                    }
                    _ => break,
                }
            }
            // However the writer ends, the connection ends with it (the reader stops too).
            writer_out.close.cancel();
            let frame = if writer_out.lagging.load(Ordering::SeqCst) {
                CloseFrame {
                    code: 1008,
                    reason: Utf8Bytes::from_static("client too slow: messages were not read"),
                }
            } else {
                CloseFrame {
                    code: 1001,
                    reason: Utf8Bytes::from_static("going away"),
                }
            };
            // Best effort: a client that reads nothing may never see the close frame.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                sink.send(Message::Close(Some(frame))),
            )
            .await;
        });

        let read_timeout = Duration::from_millis(self.config.ws_read_timeout_ms.max(100));
        loop {
            let frame = tokio::select! {
                _ = close.cancelled() => break,
                frame = tokio::time::timeout(read_timeout, stream.next()) => frame,
            };
            let message = match frame {
                Err(_) | Ok(None) => break,
                Ok(Some(Err(e))) => {
                    // Oversized or malformed frames end the connection with a reason.
                    tracing::debug!(%room, "websocket read error: {e}");
                    out.send_value(&error_message(&format!("connection closed: {e}")));
                    break;
                }
                Ok(Some(Ok(message))) => message,
            };
            last_ping.store(unix(), Ordering::Relaxed);
            match message {
                Message::Text(text) => {
                    // Messages are handled in order; a chat turn holds this socket's reads
                    // until the character has answered.
                    let reply = match self.handle(&room, &user_id, text.as_str()) {
                        Handled::Reply(reply) => Some(reply),
                        Handled::Nothing => None,
                        Handled::Chat {
                            character_id,
                            message,
                        } => match self.chat.get() {
                            None => Some(error_message("角色服务不可用")),
                            Some(chat) => match chat.admit(&caller) {
                                Err(retry_after) => Some(rate_limited(retry_after)),
                                Ok(()) => match chat
                                    .reply(room.clone(), owner.clone(), character_id, message)
                                    .await
                                {
                                    Ok(announcement) => {
                                        self.broadcast(&room, announcement);
                                        None
                                    }
                                    Err(e) => Some(error_message(&format!("生成回应失败: {e}"))),
                                },
                            },
                        },
                        Handled::Story {
                            node_id,
                            choice_id,
                            preferences,
                        } => match (self.story.get(), self.chat.get()) {
                            (Some(story), Some(chat)) => match chat.admit(&caller) {
                                Err(retry_after) => Some(rate_limited(retry_after)),
                                Ok(()) => match story
                                    .choose(
                                        room.clone(),
                                        owner.clone(),
                                        node_id.clone(),
                                        choice_id.clone(),
                                        preferences,
                                    )
                                    .await
                                {
                                    Ok(next) => Some(json!({"type": "story:choice_confirmed",
                                        "data": {"node_id": node_id, "choice_id": choice_id,
                                                 "next_node": next, "user_id": user_id}})),
                                    Err(e) => Some(error_message(&e)),
                                },
                            },
                            _ => Some(error_message("故事服务不可用")),
                        },
                    };
                    if let Some(reply) = reply
                        && !out.send_value(&reply)
                    {
                        break;
                    }
                }
                Message::Binary(_) => {
                    out.send_value(&error_message(
                        "binary frames are not supported; send JSON text",
                    ));
                }
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        close.cancel();
        self.leave(&room, id);
        if endpoint == Endpoint::Scene {
            self.broadcast(&room, presence(&user_id, &room, "offline", Value::Null));
        }
        let _ = writer.await;
    }

    /// Handle one client message: a reply for the sender, nothing, or a chat turn to run.
    fn handle(&self, room: &str, user_id: &str, text: &str) -> Handled {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return Handled::Reply(error_message("消息格式无效: expected a JSON object"));
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            return Handled::Reply(error_message("消息缺少 type 字段"));
        };
        let field = |name: &str| {
            message
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        match kind {
            "ping" => Handled::Reply(json!({"type": "pong", "timestamp": unix()})),
            "user_status_update" => {
                let Some(status) = message
                    .get("status")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                else {
                    return Handled::Reply(error_message("缺少状态信息"));
                };
                let action = message.get("action").cloned().unwrap_or(Value::Null);
                // Presence is small; a large one would be copied to every listener.
                if status.len() > PRESENCE_STATUS_BYTES
                    || action.to_string().len() > PRESENCE_ACTION_BYTES
                {
                    return Handled::Reply(error_message(&format!(
                        "状态信息过大: status at most {PRESENCE_STATUS_BYTES} bytes, action at most {PRESENCE_ACTION_BYTES} bytes"
                    )));
                }
                self.broadcast(room, presence(user_id, room, status, action));
                Handled::Nothing
            }
            "character_interaction" => match (field("character_id"), field("message")) {
                (None, _) => Handled::Reply(error_message("缺少角色ID")),
                (_, None) => Handled::Reply(error_message("缺少消息内容")),
                (_, Some(message))
                    if crate::domain::limits::text(
                        "message",
                        &message,
                        crate::domain::limits::MESSAGE_CHARS,
                    )
                    .is_err() =>
                {
                    Handled::Reply(error_message(&format!(
                        "消息过长: at most {} characters",
                        crate::domain::limits::MESSAGE_CHARS
                    )))
                }
                (Some(character_id), Some(message)) => Handled::Chat {
                    character_id,
                    message,
                },
            },
            "story_choice" => match (field("node_id"), field("choice_id")) {
                (None, _) => Handled::Reply(error_message("缺少节点ID")),
                (_, None) => Handled::Reply(error_message("缺少选择ID")),
                (Some(node_id), Some(choice_id)) => {
                    // Only these two preferences are read from a socket message (§6).
                    let given = message.get("user_preferences");
                    let mut preferences = serde_json::Map::new();
                    for key in ["creativity_level", "allow_plot_twists"] {
                        if let Some(v) = given.and_then(|p| p.get(key)) {
                            preferences.insert(key.into(), v.clone());
                        }
                    }
                    Handled::Story {
                        node_id,
                        choice_id,
                        preferences: Value::Object(preferences),
                    }
                }
            },
            other => Handled::Reply(error_message(&format!("未知的消息类型: {other}"))),
        }
    }
}

/// What a client message asks of the connection.
enum Handled {
    Reply(Value),
    Nothing,
    Chat {
        character_id: String,
        message: String,
    },
    Story {
        node_id: String,
        choice_id: String,
        preferences: Value,
    },
}

fn presence(user_id: &str, room: &str, status: &str, action: Value) -> Value {
    json!({"type": "user:presence", "user_id": user_id, "scene_id": shown_room(room),
           "status": status, "action": action, "timestamp": ts()})
}
