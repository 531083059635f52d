//! Hostile input through the real binary (issue 22 §5), on SQLite and PostgreSQL.

use sceneintruder_tests::backends;
use sceneintruder_tests::story_model::{HARBOUR, model, server};
use serde_json::json;

/// Text from users is put into prompts as it is: a scene titled with placeholders does not
/// make the prompt repeat the history (or anything else) once per placeholder.
#[tokio::test]
async fn placeholders_in_user_text_are_not_expanded() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let title = "{{history}}".repeat(16);
        let (status, body) = server
            .post("/api/scenes", &json!({"title": title, "text": HARBOUR}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let (_, body) = server.get(&format!("/api/scenes/{scene}/characters")).await;
        let lin = body["data"][0]["id"]
            .as_str()
            .expect("character")
            .to_string();
        // Some history first, so an expanded placeholder would show.
        for message in ["first question", "second question"] {
            let (status, body) = server
                .post(
                    "/api/chat",
                    &json!({"scene_id": scene, "character_id": lin, "message": message}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let requests = vendor.requests();
        let last = requests.last().expect("a chat call").json();
        let system = last["messages"][0]["content"]
            .as_str()
            .expect("system prompt");
        assert!(system.contains(&title), "the title as written");
        assert_eq!(
            system.matches("first question").count(),
            1,
            "the history once, not once per placeholder in the title"
        );
        assert!(system.len() < 8 * 1024, "{} bytes", system.len());
    }
}

/// Every stored text has a limit: past it the request is refused naming the field, and
/// nothing is stored, so no single message, item or profile can make a scene unusable.
#[tokio::test]
async fn oversized_texts_are_refused_and_nothing_is_stored() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let (status, body) = server
            .post("/api/scenes", &json!({"title": "Harbour", "text": HARBOUR}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let (_, body) = server.get(&format!("/api/scenes/{scene}/characters")).await;
        let lin = body["data"][0]["id"]
            .as_str()
            .expect("character")
            .to_string();
        let huge = "x".repeat(200 * 1024);

        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene, "character_id": lin, "message": huge}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"], "message: at most 4000 characters");
        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene, "character_ids": [lin], "message": huge}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"].clone()),
            (400, json!("message: at most 4000 characters"))
        );
        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/story/command"),
                &json!({"input": huge}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"].clone()),
            (400, json!("input: at most 4000 characters"))
        );
        let (_, log) = server
            .get(&format!("/api/scenes/{scene}/conversations"))
            .await;
        assert_eq!(log["data"], json!([]), "nothing stored");

        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/items"),
                &json!({"name": "key", "properties": {"notes": huge}}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["details"],
            "properties.notes: at most 8000 characters"
        );

        let token = server.new_user_token("writer").await;
        let (status, body) = server
            .send_as(
                Some(&token),
                reqwest::Method::PUT,
                "/api/users/writer",
                Some(&json!({"bio": huge})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"], "bio: at most 8000 characters");

        // A normal turn still works afterwards.
        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene, "character_id": lin, "message": "hello"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}
