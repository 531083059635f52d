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
