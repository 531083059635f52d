//! The story engine through the real binary (spec story-export §1-3, §5.1-5.2): a story made
//! on first use without waiting for a model, stored once however many first requests race,
//! node content read without ever creating a story, on SQLite and PostgreSQL.

use sceneintruder_tests::backends;
use sceneintruder_tests::story_model::{model, server};
use serde_json::{Value, json};

/// Three paragraphs of about 400 characters: two segments, so two nodes.
fn text() -> String {
    let paragraph = |who: &str| {
        format!("{who} walked the harbour wall at dusk while the fog rolled in. ").repeat(6)
    };
    format!(
        "{}\n\n{}\n\n{}",
        paragraph("Lin Chen"),
        paragraph("Su Wan"),
        paragraph("Old Ma")
    )
}

#[tokio::test]
async fn a_story_is_made_on_first_use_and_kept() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let (status, body) = server
            .post("/api/scenes", &json!({"title": "Harbour", "text": text()}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let calls_before = vendor.requests().len();

        // Ten first requests at once: one story, the same for all of them.
        let path = format!("/api/scenes/{scene}/story");
        let answers = futures::future::join_all((0..10).map(|_| server.get(&path))).await;
        let mut stories: Vec<Value> = Vec::new();
        for (status, body) in answers {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["message"], "故事数据获取成功");
            stories.push(body["data"].clone());
        }
        assert!(
            stories.windows(2).all(|w| w[0] == w[1]),
            "one story for all"
        );
        let story = &stories[0];
        assert_eq!(
            vendor.requests().len(),
            calls_before,
            "making a story does not wait for the model"
        );
        assert_eq!(story["scene_id"], scene.as_str());
        assert_eq!(story["current_state"], "Initial");
        assert_eq!(story["progress"], 0);
        let nodes = story["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2, "{story}");
        let first = nodes[0]["id"].as_str().expect("node id").to_string();
        assert_eq!(first, format!("node_{scene}_1"));
        assert_eq!(nodes[0]["is_revealed"], true);
        assert_eq!(nodes[1]["is_revealed"], false);
        assert_eq!(nodes[0]["type"], "main");
        assert!(
            nodes[0]["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("Narrative focus:\n")),
            "{story}"
        );
        let choices: Vec<&str> = nodes[0]["choices"]
            .as_array()
            .expect("choices")
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(
            choices,
            [
                format!("choice_{first}_reflect"),
                format!("choice_{first}_act")
            ]
        );
        assert_eq!(story["tasks"][0]["id"], format!("task_{scene}_primary"));
        assert_eq!(story["tasks"][0]["title"], "Stabilize the Situation");
        assert!(
            nodes[0]["original_content"]
                .as_str()
                .is_some_and(|c| c.chars().count() <= 603 && c.ends_with("...")),
            "§5.1 cuts long passages for this route: {story}"
        );

        // Read again: stored, not made again.
        let (_, again) = server.get(&path).await;
        assert_eq!(&again["data"], story);

        // Node content: the whole passage, never a new story.
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/{first}/content"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "故事节点内容获取成功");
        let data = &body["data"];
        assert_eq!(data["node"]["id"], first.as_str());
        assert_eq!(data["content"], nodes[0]["content"]);
        assert!(
            data["original_content"]
                .as_str()
                .is_some_and(|c| c.chars().count() > 600),
            "not cut here"
        );
        assert_eq!(data["character_links"], Value::Null);
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/node_missing/content"))
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "RESOURCE_NOT_FOUND");
        assert_eq!(body["error"]["message"], "故事节点不存在");

        // Someone else's scene has no story for them, and none is made.
        let token = server.new_user_token("mallory").await;
        let (status, body) = server
            .send_as(Some(&token), reqwest::Method::GET, &path, None)
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["message"], "故事数据不存在");

        // A second scene's node content does not make its story.
        let (_, body) = server
            .post("/api/scenes", &json!({"title": "Other", "text": text()}))
            .await;
        let other = body["data"]["id"].as_str().expect("id").to_string();
        let (status, _) = server
            .get(&format!("/api/scenes/{other}/nodes/node_{other}_1/content"))
            .await;
        assert_eq!(status, 404);

        // Deleting the scene deletes its story.
        let (status, body) = server
            .send_as(
                None,
                reqwest::Method::DELETE,
                &format!("/api/scenes/{scene}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/{first}/content"))
            .await;
        assert_eq!(status, 404, "{body}");
    }
}
