//! The WebSocket hub through the real binary: welcome, ping/pong, presence between two
//! clients, malformed and oversized messages, limits, origin check, status and cleanup.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sceneintruder_tests::{Backend, Server, ServerBuilder};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn server(extra: &str) -> Server {
    ServerBuilder::new(Backend::Sqlite)
        .config(extra)
        .start()
        .await
}

async fn connect(server: &Server, path: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(server.ws_url(path))
        .await
        .expect("websocket connects");
    socket
}

/// The next JSON message (skipping protocol frames); `None` when the connection ended.
async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")?;
        match frame {
            Ok(Message::Text(text)) => {
                return Some(serde_json::from_str(text.as_str()).expect("JSON message"));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The HTTP status of a refused upgrade.
async fn refused<R: IntoClientRequest + Unpin>(request: R) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

#[tokio::test]
async fn welcome_ping_pong_and_presence_between_two_clients() {
    let server = server("").await;
    let mut alice = connect(&server, "/ws/scene/scene_42?user_id=alice").await;
    let welcome = next_json(&mut alice).await.expect("welcome");
    assert_eq!(welcome["type"], "connected");
    assert_eq!(welcome["scene_id"], "scene_42");
    assert_eq!(welcome["user_id"], "alice");
    assert_eq!(welcome["message"], "WebSocket 连接已建立");
    let own = next_json(&mut alice).await.expect("own presence");
    assert_eq!(own["type"], "user:presence");
    assert_eq!(own["user_id"], "alice");
    assert_eq!(own["status"], "online");

    send(&mut alice, json!({"type": "ping"})).await;
    let pong = next_json(&mut alice).await.expect("pong");
    assert_eq!(pong["type"], "pong");
    assert!(pong["timestamp"].is_i64(), "{pong}");

    let mut bob = connect(&server, "/ws/scene/scene_42?user_id=bob").await;
    assert_eq!(
        next_json(&mut bob).await.expect("welcome")["type"],
        "connected"
    );
    let joined = next_json(&mut alice).await.expect("bob joined");
    assert_eq!(joined["type"], "user:presence");
    assert_eq!(joined["user_id"], "bob");
    assert_eq!(joined["status"], "online");
    assert_eq!(joined["scene_id"], "scene_42");

    // Status lists both, in their room.
    let (status, body) = server.get("/api/ws/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["message"], "WebSocket status retrieved successfully");
    assert_eq!(body["data"]["total_connections"], 2, "{body}");
    assert_eq!(body["data"]["scenes"]["scene_42"]["client_count"], 2);

    // An explicit status update reaches everyone in the room, sender included.
    send(
        &mut bob,
        json!({"type": "user_status_update", "status": "typing", "action": {"target": "char_a"}}),
    )
    .await;
    let typing = next_json(&mut alice).await.expect("typing");
    assert_eq!(typing["status"], "typing");
    assert_eq!(typing["action"]["target"], "char_a");

    bob.close(None).await.expect("close");
    drop(bob);
    let left = loop {
        let message = next_json(&mut alice).await.expect("bob left");
        if message["status"] == "offline" {
            break message;
        }
    };
    assert_eq!(left["user_id"], "bob");
    let (_, body) = server.get("/api/ws/status").await;
    assert_eq!(body["data"]["total_connections"], 1, "{body}");

    // Another room hears nothing of this one.
    let mut carol = connect(&server, "/ws/scene/other_scene?user_id=carol").await;
    assert_eq!(
        next_json(&mut carol).await.expect("welcome")["scene_id"],
        "other_scene"
    );
    send(
        &mut alice,
        json!({"type": "user_status_update", "status": "idle"}),
    )
    .await;
    assert_eq!(next_json(&mut alice).await.expect("idle")["status"], "idle");
    let carol_next = tokio::time::timeout(Duration::from_millis(300), next_json(&mut carol)).await;
    match carol_next {
        Err(_) => {}
        Ok(message) => assert_eq!(
            message.as_ref().map(|m| m["user_id"].clone()),
            Some(json!("carol")),
            "{message:?}"
        ),
    }
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_stays_usable() {
    let server = server("").await;
    let mut socket = connect(&server, "/ws/scene/s1").await;
    let welcome = next_json(&mut socket).await.expect("welcome");
    assert_eq!(welcome["user_id"], "anonymous");
    next_json(&mut socket).await.expect("presence");

    socket
        .send(Message::Text("{not json".into()))
        .await
        .expect("send");
    let error = next_json(&mut socket).await.expect("error");
    assert_eq!(error["type"], "error");
    assert!(error["timestamp"].is_string());

    send(&mut socket, json!({"no_type": true})).await;
    assert_eq!(
        next_json(&mut socket).await.expect("error")["type"],
        "error"
    );
    send(&mut socket, json!({"type": "teleport"})).await;
    assert_eq!(
        next_json(&mut socket).await.expect("error")["type"],
        "error"
    );
    // A chat turn without a configured LLM, or without its fields, is a typed error.
    send(
        &mut socket,
        json!({"type": "character_interaction", "character_id": "c", "message": "hi"}),
    )
    .await;
    let error = next_json(&mut socket).await.expect("error");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("生成回应失败: LLM服务未配置或未就绪")),
        "{error}"
    );
    send(
        &mut socket,
        json!({"type": "character_interaction", "message": "hi"}),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await.expect("error")["error"],
        "缺少角色ID"
    );
    // A story choice in a room whose scene does not exist says so; missing fields are named.
    send(
        &mut socket,
        json!({"type": "story_choice", "node_id": "n", "choice_id": "c"}),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await.expect("error")["error"],
        "执行故事选择失败: 场景不存在"
    );
    send(&mut socket, json!({"type": "story_choice", "node_id": "n"})).await;
    assert_eq!(
        next_json(&mut socket).await.expect("error")["error"],
        "缺少选择ID"
    );
    send(&mut socket, json!({"type": "user_status_update"})).await;
    assert_eq!(
        next_json(&mut socket).await.expect("error")["error"],
        "缺少状态信息"
    );

    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await.expect("pong")["type"], "pong");
}

#[tokio::test]
async fn oversized_messages_close_the_connection_only() {
    let server = server("[realtime]\nws_max_message_bytes = 1024").await;
    let mut socket = connect(&server, "/ws/scene/s1").await;
    next_json(&mut socket).await.expect("welcome");
    next_json(&mut socket).await.expect("presence");
    let big = json!({"type": "ping", "padding": "x".repeat(4096)});
    let _ = socket.send(Message::Text(big.to_string().into())).await;
    // Whatever arrives (an error message first, perhaps), the connection ends.
    let mut ended = false;
    for _ in 0..5 {
        if next_json(&mut socket).await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "an oversized message must end the connection");

    // The server is fine and accepts new connections.
    let mut again = connect(&server, "/ws/scene/s1").await;
    assert_eq!(
        next_json(&mut again).await.expect("welcome")["type"],
        "connected"
    );
}

#[tokio::test]
async fn user_status_socket_heartbeats() {
    let server = server("[realtime]\nws_heartbeat_ms = 150").await;
    let mut socket = connect(&server, "/ws/user/status?user_id=u1").await;
    let welcome = next_json(&mut socket).await.expect("welcome");
    assert_eq!(welcome["type"], "user_status_connected");
    assert_eq!(welcome["user_id"], "u1");
    assert_eq!(welcome["message"], "用户状态连接已建立");
    let beat = next_json(&mut socket).await.expect("heartbeat");
    assert_eq!(beat["type"], "heartbeat");
    assert!(beat["timestamp"].is_i64(), "{beat}");
}

#[tokio::test]
async fn limits_origin_ids_and_cleanup() {
    let server = server("[realtime]\nws_max_connections = 2").await;
    let mut a = connect(&server, "/ws/scene/s1").await;
    next_json(&mut a).await.expect("welcome");
    let mut b = connect(&server, "/ws/scene/s2").await;
    next_json(&mut b).await.expect("welcome");
    assert_eq!(
        refused(server.ws_url("/ws/scene/s3")).await,
        503,
        "a third connection"
    );
    drop(a);
    drop(b);

    let server = server_with_defaults().await;
    // A foreign browser origin is refused; the server's own origin is fine.
    let mut request = server
        .ws_url("/ws/scene/s1")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().expect("header"));
    assert_eq!(refused(request).await, 403, "a foreign origin");
    let own = server.base.clone();
    let mut request = server
        .ws_url("/ws/scene/s1")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("origin", own.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("own origin");
    assert_eq!(
        next_json(&mut socket).await.expect("welcome")["type"],
        "connected"
    );

    // Room ids are validated before anything else.
    let long = server.ws_url(&format!("/ws/scene/{}", "x".repeat(200)));
    assert_eq!(refused(long).await, 400, "an over-long room id");

    let (status, body) = server.post("/api/ws/cleanup", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "Connection cleanup executed");
    // A live connection survives the sweep.
    send(&mut socket, json!({"type": "ping"})).await;
    loop {
        let message = next_json(&mut socket).await.expect("still open");
        if message["type"] == "pong" {
            break;
        }
    }
}

async fn server_with_defaults() -> Server {
    server("").await
}

/// `/ws/user/status` scales with users: presence goes to the sender's own connections only,
/// not to every connected user; the status listing still shows one `user_status` room.
#[tokio::test]
async fn user_status_presence_stays_with_its_account() {
    let server = server("").await;
    let open = |token: String| {
        let mut request = server
            .ws_url("/ws/user/status")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        async move {
            let (socket, _) = tokio_tungstenite::connect_async(request)
                .await
                .expect("connects");
            socket
        }
    };
    let alice = server.new_user_token("alice").await;
    let bob = server.new_user_token("bob").await;
    let mut a1 = open(alice.clone()).await;
    let mut a2 = open(alice.clone()).await;
    let mut b = open(bob.clone()).await;
    for socket in [&mut a1, &mut a2, &mut b] {
        assert_eq!(
            next_json(socket).await.expect("welcome")["type"],
            "user_status_connected"
        );
    }
    send(
        &mut a1,
        json!({"type": "user_status_update", "status": "typing"}),
    )
    .await;
    let seen = next_json(&mut a2).await.expect("presence");
    assert_eq!(seen["type"], "user:presence");
    assert_eq!(seen["scene_id"], "user_status");
    let nothing = tokio::time::timeout(Duration::from_millis(500), b.next()).await;
    assert!(
        nothing.is_err(),
        "another account sees nothing: {nothing:?}"
    );
    let (_, status) = server
        .send_as(Some(&alice), reqwest::Method::GET, "/api/ws/status", None)
        .await;
    assert_eq!(
        status["data"]["scenes"]["user_status"]["client_count"], 2,
        "{status}"
    );
}
