//! The read path's cache never hides a write: every write path, followed at once by a read
//! of the scene view and the scene list (both cached), shows what was written, on SQLite and
//! PostgreSQL; a second server sharing PostgreSQL sees the first one's writes through its
//! own cache; and the view reports the time of the last change, not of the request.

use reqwest::Method;
use sceneintruder_tests::story_model::{harbour_scene, model, server};
use sceneintruder_tests::{Server, ServerBuilder, backends};
use serde_json::{Value, json};

async fn view(server: &Server, scene: &str) -> Value {
    let (status, body) = server.get(&format!("/api/scenes/{scene}")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

async fn listed(server: &Server, scene: &str) -> Value {
    let (status, body) = server.get("/api/scenes").await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == scene).cloned())
        .unwrap_or(Value::Null)
}

fn item_names(view: &Value) -> Vec<String> {
    view["items"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|i| i["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_write_is_seen_by_the_next_read() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend.clone(), &vendor.base, "").await;
        let (scene, lin, su) = harbour_scene(&server).await;
        // Warm the cache, twice, so the reads below start from cached bodies.
        let first = view(&server, &scene).await;
        assert_eq!(view(&server, &scene).await, first);
        assert_eq!(listed(&server, &scene).await["item_count"], Value::Null);
        let created = first["context"]["last_updated"].clone();

        // Add an item.
        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/items"),
                &json!({"name": "brass key", "description": "worn teeth", "type": "key"}),
            )
            .await;
        assert!(status == 200 || status == 201, "{body}");
        let item = body["data"]["id"].as_str().expect("item id").to_string();
        let after = view(&server, &scene).await;
        assert_eq!(item_names(&after), vec!["brass key"], "{backend:?}");
        assert_eq!(after["scene"]["item_count"], 1);
        assert_eq!(listed(&server, &scene).await["item_count"], 1);
        assert_ne!(
            after["context"]["last_updated"], created,
            "last_updated is the last change"
        );
        // Reading again does not move it: it is not the request time.
        let again = view(&server, &scene).await;
        assert_eq!(
            again["context"]["last_updated"],
            after["context"]["last_updated"]
        );

        // Replace it.
        let (status, body) = server
            .send_as(
                None,
                Method::PUT,
                &format!("/api/scenes/{scene}/items/{item}"),
                Some(&json!({"name": "iron key", "description": "rusted", "type": "key"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(item_names(&view(&server, &scene).await), vec!["iron key"]);

        // Chat: two lines appear in the context.
        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene, "character_id": lin, "message": "Where were you?"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let lines = view(&server, &scene).await["context"]["conversations"]
            .as_array()
            .map(Vec::len);
        assert_eq!(lines, Some(2), "{backend:?}");

        // An aggregate turn moves the story.
        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene, "character_ids": [lin, su],
                        "message": "Who hid the clue?",
                        "context": {"time_of_day": "night"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, story) = server.get(&format!("/api/scenes/{scene}/story")).await;
        let progress = &story["data"]["progress"];
        assert!(progress.as_u64().is_some_and(|p| p > 0), "{progress}");

        // Delete the item, then the scene.
        let (status, _) = server
            .send_as(
                None,
                Method::DELETE,
                &format!("/api/scenes/{scene}/items/{item}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert!(item_names(&view(&server, &scene).await).is_empty());
        assert_eq!(listed(&server, &scene).await["item_count"], Value::Null);
        let (status, _) = server
            .send_as(None, Method::DELETE, &format!("/api/scenes/{scene}"), None)
            .await;
        assert_eq!(status, 200);
        let (status, body) = server.get(&format!("/api/scenes/{scene}")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(listed(&server, &scene).await, Value::Null);

        // A new scene shows up in the cached list at once.
        let (other, _, _) = harbour_scene(&server).await;
        assert_eq!(listed(&server, &other).await["id"], other);
    }
}

#[tokio::test]
async fn a_cached_view_is_only_for_those_who_may_see_it() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "[auth]\nguest_mode = false").await;
        let alice = server.new_user_token("alice").await;
        let bob = server.new_user_token("bob").await;
        let (status, body) = server
            .send_as(
                Some(&alice),
                Method::POST,
                "/api/scenes",
                Some(
                    &json!({"title": "Harbour", "text": sceneintruder_tests::story_model::HARBOUR}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let path = format!("/api/scenes/{scene}");
        for _ in 0..2 {
            let (status, _) = server.send_as(Some(&alice), Method::GET, &path, None).await;
            assert_eq!(status, 200);
        }
        // Cached now: bob still gets the same 404 as for an unknown scene.
        let (status, body) = server.send_as(Some(&bob), Method::GET, &path, None).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND");
        let (_, list) = server
            .send_as(Some(&bob), Method::GET, "/api/scenes", None)
            .await;
        assert_eq!(list["data"], json!([]), "{list}");
    }
}

#[tokio::test]
async fn servers_sharing_postgres_never_serve_each_other_stale_views() {
    let Some(backend) = backends().into_iter().find(|b| b.name() == "postgres") else {
        return;
    };
    let vendor = model(None, None).await;
    let a = server(backend.clone(), &vendor.base, "").await;
    let b = ServerBuilder::new(backend).share_database(&a).start().await;
    let (scene, _, _) = harbour_scene(&a).await;
    // Both cache the view and the list.
    for server in [&a, &b] {
        for _ in 0..2 {
            assert!(item_names(&view(server, &scene).await).is_empty());
            assert_eq!(listed(server, &scene).await["item_count"], Value::Null);
        }
    }
    // A writes; B's next reads show it.
    let (status, body) = a
        .post(
            &format!("/api/scenes/{scene}/items"),
            &json!({"name": "lantern", "description": "", "type": "tool"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    assert_eq!(item_names(&view(&b, &scene).await), vec!["lantern"]);
    assert_eq!(listed(&b, &scene).await["item_count"], 1);
    // B deletes; A's next reads show it.
    let (status, _) = b
        .send_as(None, Method::DELETE, &format!("/api/scenes/{scene}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = a.get(&format!("/api/scenes/{scene}")).await;
    assert_eq!(status, 404);
    assert_eq!(listed(&a, &scene).await, Value::Null);
}
