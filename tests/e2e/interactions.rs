//! Character interactions through the real binary: a directed exchange and a simulation,
//! attributed to the real characters whatever ids the model invents, stored, broadcast over
//! WebSocket, listed in the history and in the view of the pair. SQLite and PostgreSQL.

use std::time::Duration;

use futures::StreamExt;
use sceneintruder_tests::failing_model::{self, VENDOR_FAILURE};
use sceneintruder_tests::story_model::{harbour_scene, model, server};
use sceneintruder_tests::{Backend, backends, error_details};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The next broadcast of `kind` on the socket (presence messages skipped).
async fn broadcast(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    kind: &str,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if value["type"] == kind {
                return value;
            }
        }
    }
}

#[tokio::test]
async fn trigger_simulate_history_and_pairs() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let (scene_id, lin, su) = harbour_scene(&server).await;
        let (mut socket, _) =
            tokio_tungstenite::connect_async(server.ws_url(&format!("/ws/scene/{scene_id}")))
                .await
                .expect("websocket");

        let (status, body) = server
            .post(
                "/api/interactions/trigger",
                &json!({"scene_id": scene_id, "character_ids": [lin, su],
                        "topic": "the lighthouse night", "context_description": "a rainy tea house"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "角色互动生成成功");
        let interaction = &body["data"];
        let interaction_id = interaction["id"].as_str().expect("id").to_string();
        assert!(interaction_id.starts_with("interaction_"));
        assert_eq!(interaction["character_ids"], json!([lin, su]));
        assert_eq!(
            interaction["metadata"]["context_description"],
            "a rainy tea house"
        );
        let speakers: Vec<&str> = interaction["dialogues"]
            .as_array()
            .expect("dialogues")
            .iter()
            .filter_map(|d| d["character_id"].as_str())
            .collect();
        // The model's invented ids were replaced by the real ones.
        assert_eq!(speakers, [lin.as_str(), su.as_str()]);
        assert_eq!(interaction["dialogues"][0]["emotion"], "anger");
        let sent = vendor.last().json();
        assert!(
            sent["messages"][0]["content"]
                .as_str()
                .is_some_and(|s| s.contains(&format!("id {lin}: Lin Chen"))),
            "the brief names the characters with their ids"
        );
        assert_eq!(sent["messages"][1]["content"], "the lighthouse night");
        let announced = broadcast(&mut socket, "character_interaction").await;
        assert_eq!(announced["data"]["id"], interaction_id);

        let (status, body) = server
            .post(
                "/api/interactions/simulate",
                &json!({"scene_id": scene_id, "character_ids": [lin, su],
                        "initial_situation": "the storm traps them", "number_of_turns": 40}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "角色对话模拟成功");
        let lines = body["data"].as_array().expect("array");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["character_id"], lin);
        assert_eq!(lines[0]["character_name"], "Lin Chen");
        assert!(
            lines[2]["character_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("temp_")),
            "{}",
            lines[2]
        );
        assert!(
            vendor.last().json()["messages"][0]["content"]
                .as_str()
                .is_some_and(|s| s.contains("about 10 turns")),
            "turns are clamped to 10"
        );
        let announced = broadcast(&mut socket, "conversation_simulation").await;
        assert_eq!(announced["data"].as_array().map(Vec::len), Some(3));

        // History: every exchange line; filtered by interaction.
        let (status, body) = server.get(&format!("/api/interactions/{scene_id}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(5));
        let (_, body) = server
            .get(&format!(
                "/api/interactions/{scene_id}?interaction_id={interaction_id}"
            ))
            .await;
        let only = body["data"].as_array().expect("lines");
        assert_eq!(only.len(), 2);
        assert_eq!(
            only[0]["metadata"]["conversation_type"],
            "character_interaction"
        );
        assert_eq!(only[0]["metadata"]["interaction_id"], interaction_id);
        let (_, body) = server
            .get(&format!(
                "/api/interactions/{scene_id}?paginated=true&limit=2"
            ))
            .await;
        assert_eq!(body["meta"]["total"], 5);
        assert_eq!(body["meta"]["total_pages"], 3);

        // The pair view shows what Lin and Su said to each other (4 lines; the ghost's
        // line is not theirs).
        let (status, body) = server
            .get(&format!("/api/interactions/{scene_id}/{lin}/{su}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["message"], "角色互动历史获取成功");
        let pair = body["data"].as_array().expect("pair lines");
        assert_eq!(pair.len(), 4);
        assert!(
            pair.iter()
                .all(|l| l["speaker_id"] == lin.as_str() || l["speaker_id"] == su.as_str())
        );
        let (_, body) = server
            .get(&format!("/api/interactions/{scene_id}/{lin}/char_nobody"))
            .await;
        assert_eq!(body["message"], "暂无互动记录");
        assert_eq!(body["data"], json!([]));
    }
}

#[tokio::test]
async fn interaction_requests_are_validated() {
    let vendor = model(None, None).await;
    let server = server(Backend::Sqlite, &vendor.base, "").await;
    let (scene_id, lin, su) = harbour_scene(&server).await;
    let before = vendor.requests().len();
    for (path, body, status, message) in [
        (
            "/api/interactions/trigger",
            json!({"character_ids": [lin, su], "topic": "t"}),
            400,
            "缺少场景ID",
        ),
        (
            "/api/interactions/trigger",
            json!({"scene_id": scene_id, "character_ids": [lin], "topic": "t"}),
            400,
            "至少需要两个角色才能进行互动",
        ),
        (
            "/api/interactions/trigger",
            json!({"scene_id": scene_id, "character_ids": [lin, su]}),
            400,
            "缺少互动主题",
        ),
        (
            "/api/interactions/trigger",
            json!({"scene_id": scene_id, "character_ids": "x"}),
            400,
            "无效的请求格式",
        ),
        (
            "/api/interactions/simulate",
            json!({"scene_id": scene_id, "character_ids": [lin, su]}),
            400,
            "缺少初始情境描述",
        ),
        (
            "/api/interactions/simulate",
            json!({"scene_id": scene_id, "character_ids": [lin, "char_nope"], "initial_situation": "s"}),
            404,
            "角色不存在",
        ),
        (
            "/api/interactions/simulate",
            json!({"scene_id": "scene_nope", "character_ids": [lin, su], "initial_situation": "s"}),
            404,
            "场景不存在",
        ),
    ] {
        let (got, out) = server.post(path, &body).await;
        assert_eq!(got, status, "{path} {body}: {out}");
        assert_eq!(out["error"]["message"], message, "{path} {body}");
    }
    assert_eq!(
        vendor.requests().len(),
        before,
        "no model call for a bad request"
    );
    let (status, body) = server.get("/api/interactions/scene_nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND");
}

#[tokio::test]
async fn aggregate_answers_moves_the_story_and_never_deadlocks() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let (scene_id, lin, su) = harbour_scene(&server).await;
        let request = json!({
            "scene_id": scene_id, "character_ids": [lin, su],
            "message": "Why did you hide the secret clue?",
            "context": {"time_of_day": "late night", "weather": "rain"},
            "emotion_data": {"emotion": "curiosity", "intensity": 9}
        });
        let (status, body) = server.post("/api/interactions/aggregate", &request).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "交互处理成功");
        let data = &body["data"];
        assert_eq!(data["messages"].as_array().map(Vec::len), Some(2));
        assert_eq!(data["messages"][0]["character_id"], lin);
        assert_eq!(data["messages"][0]["emotion_data"]["emotion"], "fear");
        assert_eq!(data["messages"][0]["emotion_data"]["intensity"], 7);
        let state = &data["character_states"][&lin];
        assert_eq!(state["mood"], "afraid");
        assert_eq!(state["energy"], 0.36);
        assert_eq!(state["relationship"][&su], -0.014);
        assert_eq!(state["current_activity"], "talking");
        let first = data["story_updates"]["story_progress"]
            .as_u64()
            .expect("progress");
        assert!(first > 0, "{}", data["story_updates"]);
        assert!(
            data["story_updates"]["progress_change"]
                .as_f64()
                .is_some_and(|c| c > 0.0)
        );
        let choices: Vec<&str> = data["new_choices"]
            .as_array()
            .expect("choices")
            .iter()
            .filter_map(|c| c["text"].as_str())
            .collect();
        assert_eq!(choices.first(), Some(&"深入探讨这个问题的原因"));
        assert_eq!(choices.last(), Some(&"继续当前对话"));
        let events: Vec<&str> = data["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["event_type"].as_str())
            .collect();
        for expected in [
            "multi_character_interaction",
            "puzzle_engagement",
            "intense_emotion_display",
            "late_night_interaction",
            "rainy_day_bonding",
        ] {
            assert!(events.contains(&expected), "{expected} in {events:?}");
        }
        assert_eq!(data["stats"]["messages_generated"], 2);
        assert_eq!(data["ui_updates"]["update_tabs"][0]["badge_count"], 2);

        // Saved once: one user line and one line per character, no duplicates.
        let (_, body) = server
            .get(&format!("/api/scenes/{scene_id}/conversations"))
            .await;
        let lines = body["data"].as_array().expect("lines");
        assert_eq!(lines.len(), 3, "{body}");
        assert_eq!(lines[0]["speaker_id"], "user");
        assert_eq!(lines[0]["metadata"]["message_type"], "user_input");
        assert_eq!(lines[1]["metadata"]["emotion_data"]["emotion"], "fear");
        let (_, body) = server
            .get(&format!("/api/interactions/{scene_id}/{lin}/{su}"))
            .await;
        assert_eq!(body["data"].as_array().map(Vec::len), Some(2));

        // Concurrent requests with every option on all finish, and each moves the story.
        let calls = (0..3).map(|_| server.post("/api/interactions/aggregate", &request));
        let results =
            tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(calls))
                .await
                .expect("no deadlock");
        assert!(results.iter().all(|(status, _)| *status == 200));
        // The progress is the story's (no stop-gap copy in the settings any more).
        let (_, body) = server.get(&format!("/api/scenes/{scene_id}")).await;
        assert!(
            body["data"]["settings"].get("story_progress").is_none(),
            "{body}"
        );
        let (_, body) = server.get(&format!("/api/scenes/{scene_id}/story")).await;
        let progress = body["data"]["progress"].as_u64().expect("progress");
        // Three more turns, each adding at least a few points (fewer once past a quarter).
        assert!(
            progress >= first + 3 * 4,
            "{progress} after 4 turns starting with {first}"
        );

        // Options present: only those set; here nothing is saved and the story stays put.
        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene_id, "character_ids": [lin], "message": "hello",
                        "options": {"trigger_events": true}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"].get("story_updates").is_none());
        assert!(body["data"].get("new_choices").is_none());
        let (_, story) = server.get(&format!("/api/scenes/{scene_id}/story")).await;
        assert_eq!(story["data"]["progress"], progress);
        let (_, after) = server.get(&format!("/api/scenes/{scene_id}")).await;
        assert_eq!(
            after["data"]["context"]["conversations"]
                .as_array()
                .map(Vec::len),
            Some(12)
        );

        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene_id, "character_ids": [], "message": "hello"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "至少需要选择一个角色");
    }
}

/// A model call that fails answers `500 INTERNAL_ERROR` with the route's message
/// (`生成角色互动失败`, `模拟角色对话失败`, `处理交互失败`) and the cause in details: the
/// vendor failing, an answer that is not the JSON asked for, a speaker who is not in the
/// scene. Nothing is stored or broadcast.
#[tokio::test]
async fn failed_model_calls_carry_the_routes_message() {
    let vendor = failing_model::model().await;
    for backend in backends() {
        let server = failing_model::server(backend.clone(), &vendor.base).await;
        let (scene_id, lin, su) = harbour_scene(&server).await;
        let trigger =
            |topic: &str| json!({"scene_id": scene_id, "character_ids": [lin, su], "topic": topic});
        let simulate = |situation: &str| json!({"scene_id": scene_id, "character_ids": [lin, su], "initial_situation": situation});
        let aggregate = |message: &str| json!({"scene_id": scene_id, "character_ids": [lin, su], "message": message});
        for (path, request, message, cause) in [
            (
                "/api/interactions/trigger",
                trigger("BREAK"),
                "生成角色互动失败",
                VENDOR_FAILURE,
            ),
            (
                "/api/interactions/trigger",
                trigger("GARBLE"),
                "生成角色互动失败",
                "not valid JSON",
            ),
            (
                "/api/interactions/trigger",
                trigger("GHOST"),
                "生成角色互动失败",
                "无法找到匹配的角色: Ghost",
            ),
            (
                "/api/interactions/simulate",
                simulate("BREAK"),
                "模拟角色对话失败",
                VENDOR_FAILURE,
            ),
            (
                "/api/interactions/simulate",
                simulate("GARBLE"),
                "模拟角色对话失败",
                "not valid JSON",
            ),
            (
                "/api/interactions/aggregate",
                aggregate("BREAK"),
                "处理交互失败",
                VENDOR_FAILURE,
            ),
            (
                "/api/interactions/aggregate",
                aggregate("GARBLE"),
                "处理交互失败",
                "not valid JSON",
            ),
        ] {
            let (status, body) = server.post(path, &request).await;
            let what = format!("{} {path} {request}: {body}", backend.name());
            assert_eq!(status, 500, "{what}");
            assert_eq!(body["error"]["code"], "INTERNAL_ERROR", "{what}");
            assert_eq!(body["error"]["message"], message, "{what}");
            assert!(error_details(&body).contains(cause), "{what}");
        }
        // Every character's failure is named when all of them fail.
        let (_, body) = server
            .post("/api/interactions/aggregate", &aggregate("BREAK"))
            .await;
        let details = error_details(&body);
        assert!(details.starts_with("所有角色响应生成都失败了"), "{body}");
        assert!(
            details.contains("角色 Lin Chen 响应生成失败")
                && details.contains("角色 Su Wan 响应生成失败"),
            "{body}"
        );
        let (_, body) = server.get(&format!("/api/interactions/{scene_id}")).await;
        assert_eq!(body["data"], json!([]), "{body}");
        let (_, body) = server.get(&format!("/api/scenes/{scene_id}/story")).await;
        assert_eq!(body["data"]["progress"], 0, "{body}");
    }
}
