//! `/api/users/{user_id}`: profile, preferences, items and skills, owner-only, on every backend.

use reqwest::Method;
use sceneintruder_tests::{ServerBuilder, backends};
use serde_json::{Value, json};

#[tokio::test]
async fn profile_preferences_items_and_skills() {
    for backend in backends() {
        let server = ServerBuilder::new(backend).start().await;
        let base = "/api/users/console_user";

        // Guests are console_user; the profile is created on first use with defaults.
        let (status, body) = server.get(base).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "用户档案获取成功");
        let user = &body["data"];
        assert_eq!(user["id"], "console_user");
        assert_eq!(user["email"], "console_user@local");
        assert_eq!(user["preferences"]["creativity_level"], "BALANCED");
        assert_eq!(user["items"], json!([]), "empty lists are [] not null");
        assert_eq!(user["skills"], json!([]));

        let (status, body) = server
            .send_as(
                None,
                Method::PUT,
                base,
                Some(&json!({"display_name": "Night Reader", "bio": "", "email": "x@y"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["display_name"], "Night Reader");
        assert_eq!(
            body["data"]["email"], "console_user@local",
            "email cannot be changed"
        );

        let prefs = json!({"creativity_level": "EXPANSIVE", "allow_plot_twists": false, "response_length": "long",
                           "language_style": "literary", "notification_level": "all", "dark_mode": true, "auto_save": true});
        let (status, body) = server
            .send_as(
                None,
                Method::PUT,
                &format!("{base}/preferences"),
                Some(&prefs),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, body) = server.get(&format!("{base}/preferences")).await;
        assert_eq!(body["data"]["creativity_level"], "EXPANSIVE");
        assert_eq!(body["data"]["dark_mode"], true);

        // Items: create (201), read, replace, delete; missing ids are 404s.
        let lantern = json!({"name": "Brass Lantern", "description": "Lights dark corridors",
            "effects": [{"target": "self", "type": "special", "value": 1, "description": "reveals doors", "probability": 0.5}],
            "tags": ["light"]});
        let (status, body) = server.post(&format!("{base}/items"), &lantern).await;
        assert_eq!(status, 201, "{body}");
        let item_id = body["data"]["id"].as_str().expect("id").to_string();
        assert!(item_id.starts_with("item_"));
        assert!(body["data"]["created"].is_string());
        let (status, body) = server.get(&format!("{base}/items/{item_id}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["name"], "Brass Lantern");
        let (status, body) = server
            .send_as(
                None,
                Method::PUT,
                &format!("{base}/items/{item_id}"),
                Some(&json!({"name": "Iron Lantern"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["id"], item_id.as_str());
        let (status, body) = server
            .post(
                &format!("{base}/items"),
                &json!({"id": item_id, "name": "dup"}),
            )
            .await;
        assert_eq!(status, 409, "duplicate ids are refused: {body}");
        let (status, body) = server
            .post(
                &format!("{base}/items"),
                &json!({"name": "x", "effects": [{"value": 1.5}]}),
            )
            .await;
        assert_eq!(status, 400, "effect values are integers: {body}");
        for missing in ["item_nope", "a%2Fb", "x%00y"] {
            let (status, body) = server.get(&format!("{base}/items/{missing}")).await;
            assert_eq!(status, 404, "{missing}: {body}");
            assert_eq!(body["error"]["code"], "RESOURCE_NOT_FOUND");
        }
        let (status, _) = server
            .send_as(
                None,
                Method::DELETE,
                &format!("{base}/items/item_nope"),
                None,
            )
            .await;
        assert_eq!(status, 404);
        let (status, body) = server
            .send_as(
                None,
                Method::DELETE,
                &format!("{base}/items/{item_id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, body) = server.get(&format!("{base}/items")).await;
        assert_eq!(body["data"], json!([]));

        // Skills: the legacy single-effect form is sanitised; validation messages as specified.
        let (status, body) = server
            .post(
                &format!("{base}/skills"),
                &json!({"name": "  Cold Reading ", "effect": "reveal mood", "cooldown": -3}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["data"]["name"], "Cold Reading");
        assert!(body["data"].get("cooldown").is_none());
        assert_eq!(body["data"]["effects"][0]["target"], "other");
        let (status, body) = server
            .post(&format!("{base}/skills"), &json!({"name": " "}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "技能名称不能为空");
        let (status, body) = server
            .post(&format!("{base}/skills"), &json!({"name": "x"}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "至少需要一个技能效果");

        // Bad JSON changes nothing.
        let response = server
            .http
            .put(server.url(&format!("{base}/preferences")))
            .header("content-type", "application/json")
            .body("{broken")
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 400);
        let (_, body) = server.get(&format!("{base}/preferences")).await;
        assert_eq!(body["data"]["creativity_level"], "EXPANSIVE");
    }
}

#[tokio::test]
async fn only_the_owner_reaches_a_profile() {
    let server = ServerBuilder::new(sceneintruder_tests::Backend::Sqlite)
        .start()
        .await;
    server.cli(
        &["user", "add", "gina", "--password-stdin"],
        "gina's password\n",
    );
    let (_, body) = server
        .post(
            "/api/auth/login",
            &json!({"username": "gina", "password": "gina's password"}),
        )
        .await;
    let gina = body["data"]["token"].as_str().expect("token").to_string();

    let (status, body) = server.get("/api/users/gina").await;
    assert_eq!(status, 403, "a guest is not gina: {body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    assert_eq!(body["error"]["message"], "Authentication required");
    let (status, body) = server
        .send_as(Some(&gina), Method::GET, "/api/users/console_user", None)
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["message"],
        "Access denied: Cannot access other users' data"
    );
    let (status, body) = server
        .send_as(Some(&gina), Method::GET, "/api/users/gina/skills", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([]));
    let (status, _) = server
        .send_as(Some(&gina), Method::GET, "/api/users/..%2Fgina", None)
        .await;
    assert_eq!(status, 400);

    // Concurrent edits of one profile are all kept.
    let adds = (0..10).map(|i| {
        let server = &server;
        let gina = gina.clone();
        async move {
            server
                .send_as(
                    Some(&gina),
                    Method::POST,
                    "/api/users/gina/items",
                    Some(&json!({"name": format!("item {i}")})),
                )
                .await
        }
    });
    for (status, body) in futures::future::join_all(adds).await {
        assert_eq!(status, 201, "{body}");
    }
    let (_, body) = server
        .send_as(Some(&gina), Method::GET, "/api/users/gina/items", None)
        .await;
    let items: &Vec<Value> = body["data"].as_array().expect("items");
    assert_eq!(items.len(), 10, "no concurrent update was lost");
}
