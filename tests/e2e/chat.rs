//! Chat with characters through the real binary and the real `openai` plugin against the
//! loopback story model: replies persisted and broadcast over WebSocket, history attributed
//! to the real speakers, emotional replies, streamed replies, errors. SQLite and PostgreSQL.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sceneintruder_tests::failing_model::{self, VENDOR_FAILURE};
use sceneintruder_tests::sse::SseReader;
use sceneintruder_tests::story_model::{harbour_scene, model, server};
use sceneintruder_tests::{Backend, ServerBuilder, backends, error_details};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn next_json(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

#[tokio::test]
async fn chat_is_persisted_broadcast_and_remembers_who_said_what() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let (scene_id, lin, su) = harbour_scene(&server).await;
        let (mut socket, _) =
            tokio_tungstenite::connect_async(server.ws_url(&format!("/ws/scene/{scene_id}")))
                .await
                .expect("websocket");
        assert_eq!(next_json(&mut socket).await["type"], "connected");

        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene_id, "character_id": lin, "message": "Were you at the lighthouse?"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "回应生成成功");
        assert_eq!(body["data"]["character"], "Lin Chen");
        let reply = body["data"]["response"]
            .as_str()
            .expect("reply")
            .to_string();
        assert_eq!(reply, "Lin Chen says: I saw nothing at the lighthouse.");
        let sent = vendor.last().json();
        assert_eq!(sent["temperature"], json!(0.7));
        assert_eq!(
            sent["messages"][1]["content"],
            "Were you at the lighthouse?"
        );

        // (Our own arrival is announced first.)
        let mut announced = next_json(&mut socket).await;
        while announced["type"] == "user:presence" {
            announced = next_json(&mut socket).await;
        }
        assert_eq!(announced["type"], "conversation:new");
        assert_eq!(announced["character_id"], lin);
        assert_eq!(announced["conversation"]["response"], reply);

        // The same turn over the scene's socket.
        socket
            .send(Message::Text(
                json!({"type": "character_interaction", "character_id": lin, "message": "Over the socket?"})
                    .to_string()
                    .into(),
            ))
            .await
            .expect("send");
        let mut announced = next_json(&mut socket).await;
        while announced["type"] == "user:presence" {
            announced = next_json(&mut socket).await;
        }
        assert_eq!(announced["type"], "conversation:new", "{announced}");
        assert_eq!(announced["conversation"]["character"], "Lin Chen");
        assert_eq!(
            vendor.last().json()["messages"][1]["content"],
            "Over the socket?"
        );
        socket
            .send(Message::Text(
                json!({"type": "character_interaction", "character_id": "char_nope", "message": "hi"})
                    .to_string()
                    .into(),
            ))
            .await
            .expect("send");
        let error = next_json(&mut socket).await;
        assert_eq!(error["type"], "error");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains("角色不存在")),
            "{error}"
        );

        // Su Wan hears the conversation with each line under its real speaker.
        let (status, _) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene_id, "character_id": su, "message": "And you?"}),
            )
            .await;
        assert_eq!(status, 200);
        let system = vendor.last().json()["messages"][0]["content"]
            .as_str()
            .expect("system prompt")
            .to_string();
        assert!(system.starts_with("You are Su Wan"), "{system}");
        assert!(
            system.contains("User: Were you at the lighthouse?"),
            "{system}"
        );
        assert!(system.contains(&format!("Lin Chen: {reply}")), "{system}");

        // Emotional reply: coerced intensity, at most two secondary emotions, stored with
        // its metadata.
        let (status, body) = server
            .post(
                "/api/chat/emotion",
                &json!({"scene_id": scene_id, "character_id": lin, "message": "Tell me the truth."}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "情绪化回应生成成功");
        let data = &body["data"];
        assert_eq!(data["character_id"], lin);
        assert_eq!(data["character_name"], "Lin Chen");
        assert_eq!(data["response"], "Lin Chen whispers: I saw nothing.");
        assert_eq!(data["emotion"], "fear");
        assert_eq!(data["intensity"], 7);
        assert_eq!(data["secondary_emotions"], json!(["guilt", "worry"]));
        assert_eq!(
            vendor.last().json()["response_format"],
            json!({"type": "json_object"})
        );

        let (_, body) = server
            .get(&format!("/api/scenes/{scene_id}/conversations"))
            .await;
        let lines = body["data"].as_array().expect("lines");
        assert_eq!(lines.len(), 8);
        let speakers: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["speaker_id"].as_str())
            .collect();
        assert_eq!(
            speakers,
            [
                "user",
                lin.as_str(),
                "user",
                lin.as_str(),
                "user",
                su.as_str(),
                "user",
                lin.as_str()
            ]
        );
        assert_eq!(lines[7]["metadata"]["emotion"], "fear");
        assert_eq!(lines[7]["metadata"]["intensity"], 7);
        assert!(lines[0].get("metadata").is_none());
        assert_eq!(lines[0]["speaker"], "");

        // Paginated reads: the newest page first, real totals.
        let (_, body) = server
            .get(&format!(
                "/api/scenes/{scene_id}/conversations?paginated=true&limit=4&page=2"
            ))
            .await;
        assert_eq!(
            body["meta"],
            json!({"page": 2, "per_page": 4, "total": 8, "total_pages": 2})
        );
        assert_eq!(body["data"].as_array().map(Vec::len), Some(4));
        assert_eq!(body["data"][0]["content"], "Were you at the lighthouse?");
    }
}

#[tokio::test]
async fn streamed_chat_sends_deltas_then_the_reply() {
    let vendor = model(None, None).await;
    let server = server(Backend::Sqlite, &vendor.base, "").await;
    let (scene_id, lin, _) = harbour_scene(&server).await;
    let response = server
        .http
        .post(server.url("/api/chat"))
        .header("accept", "text/event-stream")
        .json(&json!({"scene_id": scene_id, "character_id": lin, "message": "Speak."}))
        .send()
        .await
        .expect("chat");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let frames = SseReader::new(response).collect().await;
    let deltas: String = frames
        .iter()
        .filter(|f| f.event == "delta")
        .filter_map(|f| f.data["text"].as_str())
        .collect();
    assert!(
        frames.iter().filter(|f| f.event == "delta").count() >= 3,
        "{frames:?}"
    );
    let done = frames
        .iter()
        .find(|f| f.event == "done")
        .expect("done frame");
    assert_eq!(done.data["character"], "Lin Chen");
    assert_eq!(done.data["response"], deltas);
    assert_eq!(deltas, "Lin Chen says: I saw nothing at the lighthouse.");
    assert_eq!(vendor.last().json()["stream"], true);
    let (_, body) = server
        .get(&format!("/api/scenes/{scene_id}/conversations"))
        .await;
    assert_eq!(body["data"][1]["content"], deltas);
}

#[tokio::test]
async fn chat_errors() {
    let vendor = model(Some("BREAK"), None).await;
    let server = server(Backend::Sqlite, &vendor.base, "").await;
    let (scene_id, lin, _) = harbour_scene(&server).await;
    for (body, status, code) in [
        (
            json!({"scene_id": scene_id, "character_id": lin}),
            400,
            "BAD_REQUEST",
        ),
        (
            json!({"scene_id": scene_id, "character_id": "char_nope", "message": "hi"}),
            404,
            "CHARACTER_NOT_FOUND",
        ),
        (
            json!({"scene_id": "scene_nope", "character_id": lin, "message": "hi"}),
            404,
            "SCENE_NOT_FOUND",
        ),
        (
            json!({"scene_id": "../etc", "character_id": lin, "message": "hi"}),
            404,
            "SCENE_NOT_FOUND",
        ),
        (
            json!({"scene_id": scene_id, "character_id": lin, "message": "BREAK now"}),
            500,
            "INTERNAL_ERROR",
        ),
    ] {
        for path in ["/api/chat", "/api/chat/emotion"] {
            let (got, out) = server.post(path, &body).await;
            assert_eq!(got, status, "{path} {body}: {out}");
            assert_eq!(out["error"]["code"], code, "{path} {body}");
            if got == 500 {
                assert_eq!(out["error"]["message"], "生成回应失败", "{path}: {out}");
                assert!(
                    error_details(&out).contains("The server had an error"),
                    "{path}: {out}"
                );
            }
        }
    }
    // Nothing was stored by the failed turns.
    let (_, body) = server
        .get(&format!("/api/scenes/{scene_id}/conversations"))
        .await;
    assert_eq!(body["data"], json!([]));

    let unconfigured = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .start()
        .await;
    let (status, body) = unconfigured
        .post(
            "/api/chat",
            &json!({"scene_id": scene_id, "character_id": lin, "message": "hi"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "LLM_NOT_READY");
}

/// A model call that fails answers `500 INTERNAL_ERROR` `生成回应失败` with the cause in
/// details, whatever the cause: the vendor failing, an answer that is not the JSON asked for,
/// no answer in time. A streamed turn and a turn over the scene's socket say the same.
/// Nothing is stored.
#[tokio::test]
async fn failed_model_calls_say_the_reply_failed_and_why() {
    let vendor = failing_model::model().await;
    for backend in backends() {
        let server = failing_model::server(backend.clone(), &vendor.base).await;
        let (scene_id, lin, _) = harbour_scene(&server).await;
        for (path, message, cause) in [
            ("/api/chat", "BREAK now", VENDOR_FAILURE),
            ("/api/chat", "SLOW now", "did not answer within 2 s"),
            ("/api/chat/emotion", "BREAK now", VENDOR_FAILURE),
            ("/api/chat/emotion", "SLOW now", "did not answer within 2 s"),
            ("/api/chat/emotion", "GARBLE now", "情感分析失败"),
        ] {
            let request = json!({"scene_id": scene_id, "character_id": lin, "message": message});
            let (status, body) = server.post(path, &request).await;
            let what = format!("{} {path} {message}: {body}", backend.name());
            assert_eq!(status, 500, "{what}");
            assert_eq!(body["error"]["code"], "INTERNAL_ERROR", "{what}");
            assert_eq!(body["error"]["message"], "生成回应失败", "{what}");
            assert!(error_details(&body).contains(cause), "{what}");
        }
        let (_, body) = server
            .post(
                "/api/chat/emotion",
                &json!({"scene_id": scene_id, "character_id": lin, "message": "GARBLE again"}),
            )
            .await;
        assert!(error_details(&body).contains("not valid JSON"), "{body}");

        let response = server
            .http
            .post(server.url("/api/chat"))
            .header("accept", "text/event-stream")
            .json(&json!({"scene_id": scene_id, "character_id": lin, "message": "BREAK now"}))
            .send()
            .await
            .expect("chat");
        let (status, body) = sceneintruder_tests::decode(response).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["message"], "生成回应失败", "{body}");
        assert!(error_details(&body).contains(VENDOR_FAILURE), "{body}");

        let (mut socket, _) =
            tokio_tungstenite::connect_async(server.ws_url(&format!("/ws/scene/{scene_id}")))
                .await
                .expect("websocket");
        socket
            .send(Message::Text(
                json!({"type": "character_interaction", "character_id": lin, "message": "BREAK now"})
                    .to_string()
                    .into(),
            ))
            .await
            .expect("send");
        let mut error = next_json(&mut socket).await;
        while error["type"] != "error" {
            error = next_json(&mut socket).await;
        }
        let text = error["error"].as_str().unwrap_or_default();
        assert!(text.starts_with("生成回应失败: "), "{error}");
        assert!(text.contains(VENDOR_FAILURE), "{error}");
        assert!(!text.contains("生成回应失败: 生成回应失败"), "{error}");

        let (_, body) = server
            .get(&format!("/api/scenes/{scene_id}/conversations"))
            .await;
        assert_eq!(body["data"], json!([]), "{body}");
    }
}
