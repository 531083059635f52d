//! Authentication through the real binary: accounts from the CLI, login/logout, revoked
//! tokens, guest mode, ownership of jobs.

use reqwest::Method;
use sceneintruder_tests::{Backend, Server, ServerBuilder, backends};
use serde_json::{Value, json};

async fn login(server: &Server, username: &str, password: &str) -> (u16, Value) {
    server
        .post(
            "/api/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
}

fn token(body: &Value) -> String {
    body["data"]["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn login_logout_round_trip_and_revoked_tokens() {
    for backend in backends() {
        let server = ServerBuilder::new(backend)
            .config("[auth]\nguest_mode = false")
            .start()
            .await;
        let (ok, out) = server.cli(
            &["user", "add", "alice", "--password-stdin"],
            "correct horse battery\n",
        );
        assert!(ok, "{out}");
        let (ok, out) = server.cli(
            &["user", "add", "alice", "--password-stdin"],
            "another password\n",
        );
        assert!(!ok && out.contains("already exists"), "{out}");
        let (ok, out) = server.cli(
            &["user", "add", "../evil", "--password-stdin"],
            "long enough pw\n",
        );
        assert!(!ok && out.contains("usernames are"), "{out}");
        let (ok, out) = server.cli(&["user", "add", "bob", "--password-stdin"], "short\n");
        assert!(!ok && out.contains("at least 8"), "{out}");

        // Guest mode off: protected routes need a token; public ones do not.
        let (status, body) = server.get("/api/plugins").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        let (status, _) = server.get("/api/config/health").await;
        assert_eq!(status, 200);

        let (status, body) = login(&server, "alice", "correct horse battery").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "登录成功");
        assert_eq!(body["data"]["user_id"], "alice");
        let alice = token(&body);
        assert_eq!(alice.split('.').count(), 2, "{alice}");

        let (status, body) = server
            .send_as(Some(&alice), Method::GET, "/api/plugins", None)
            .await;
        assert_eq!(status, 200, "{body}");
        // A tampered token is no token.
        let tampered = format!("{}x", alice);
        let (status, _) = server
            .send_as(Some(&tampered), Method::GET, "/api/plugins", None)
            .await;
        assert_eq!(status, 401);

        // The scheme is case-insensitive; another scheme is no token, never a guest.
        let raw = |value: String| {
            let server = &server;
            async move {
                let response = server
                    .http
                    .get(server.url("/api/plugins"))
                    .header("authorization", value)
                    .send()
                    .await
                    .expect("request");
                response.status().as_u16()
            }
        };
        assert_eq!(raw(format!("bearer {alice}")).await, 200);
        assert_eq!(raw(format!("BEARER  {alice}")).await, 200);
        assert_eq!(raw("Basic YWxpY2U6cHc=".into()).await, 401);
        assert_eq!(raw("Token abc".into()).await, 401);

        // Logout really ends the token.
        let (status, body) = server
            .send_as(Some(&alice), Method::POST, "/api/auth/logout", None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "登出成功");
        let (status, body) = server
            .send_as(Some(&alice), Method::GET, "/api/plugins", None)
            .await;
        assert_eq!(status, 401, "a revoked token must be refused: {body}");
        // A new login works again.
        let (_, body) = login(&server, "alice", "correct horse battery").await;
        let (status, _) = server
            .send_as(Some(&token(&body)), Method::GET, "/api/plugins", None)
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    let (ok, out) = server.cli(
        &["user", "add", "carol", "--password-stdin"],
        "s3cret-enough\n",
    );
    assert!(ok, "{out}");
    let (s1, wrong_password) = login(&server, "carol", "nope-nope").await;
    let (s2, unknown_user) = login(&server, "nobody", "nope-nope").await;
    let (s3, bad_name) = login(&server, "../../etc/passwd", "nope-nope").await;
    for (status, body) in [(s1, &wrong_password), (s2, &unknown_user), (s3, &bad_name)] {
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_CREDENTIALS");
        assert_eq!(body["error"]["message"], "用户名或密码错误");
    }
    assert_eq!(wrong_password["error"], unknown_user["error"]);
    assert_eq!(wrong_password["error"], bad_name["error"]);

    let (status, body) = server
        .post("/api/auth/login", &json!({"username": "carol"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BAD_REQUEST");
    let (status, _) = server
        .post("/api/auth/login", &json!("not an object"))
        .await;
    assert_eq!(status, 400);
    // Logout without a token is fine, as in the reference.
    let (status, _) = server.post("/api/auth/logout", &json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn only_the_owner_or_an_admin_cancels_a_job() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[jobs]\ndiagnostics = true")
        .env("SCENEINTRUDER_ADMIN_USER", "root-admin")
        .env("SCENEINTRUDER_ADMIN_PASSWORD", "admin password 1")
        .start()
        .await;
    server.cli(
        &["user", "add", "dave", "--password-stdin"],
        "dave's password\n",
    );
    server.cli(
        &["user", "add", "erin", "--password-stdin"],
        "erin's password\n",
    );
    let dave = token(&login(&server, "dave", "dave's password").await.1);
    let erin = token(&login(&server, "erin", "erin's password").await.1);
    let (status, body) = login(&server, "root-admin", "admin password 1").await;
    assert_eq!(
        status, 200,
        "the first admin comes from the environment: {body}"
    );
    let admin = token(&body);

    let input = json!({"steps": 100, "step_ms": 100});
    let (status, body) = server
        .send_as(
            Some(&dave),
            Method::POST,
            "/api/jobs/diagnostics",
            Some(&input),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let task = body["data"]["task_id"].as_str().expect("task").to_string();
    let cancel = format!("/api/cancel/{task}");

    let (status, body) = server
        .send_as(Some(&erin), Method::POST, &cancel, None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    let (status, _) = server.send_as(None, Method::POST, &cancel, None).await;
    assert_eq!(status, 403, "a guest is not the owner");
    let (status, body) = server
        .send_as(Some(&dave), Method::POST, &cancel, None)
        .await;
    assert_eq!(status, 200, "{body}");

    let (_, body) = server
        .send_as(
            Some(&dave),
            Method::POST,
            "/api/jobs/diagnostics",
            Some(&input),
        )
        .await;
    let task = body["data"]["task_id"].as_str().expect("task").to_string();
    let (status, body) = server
        .send_as(
            Some(&admin),
            Method::POST,
            &format!("/api/cancel/{task}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "an admin may cancel anyone's job: {body}");
}

#[tokio::test]
async fn websockets_need_a_token_without_guest_mode() {
    use futures::StreamExt;
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[auth]\nguest_mode = false")
        .start()
        .await;
    server.cli(
        &["user", "add", "frank", "--password-stdin"],
        "frank's password\n",
    );
    let frank = token(&login(&server, "frank", "frank's password").await.1);

    match tokio_tungstenite::connect_async(server.ws_url("/ws/scene/s1")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("an anonymous upgrade must be refused, got {other:?}"),
    }
    // Browsers cannot set headers on an upgrade: the token may come as ?token=.
    // The authenticated identity wins over a claimed ?user_id.
    let url = server.ws_url(&format!("/ws/scene/s1?user_id=mallory&token={frank}"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade with a token");
    let welcome = loop {
        match socket.next().await.expect("message").expect("frame") {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                break serde_json::from_str::<Value>(text.as_str()).expect("json");
            }
            _ => continue,
        }
    };
    assert_eq!(welcome["type"], "connected");
    assert_eq!(welcome["user_id"], "frank");
    // The query token counts only for WebSocket upgrades.
    let (status, _) = server
        .send_as(
            None,
            Method::GET,
            &format!("/api/plugins?token={frank}"),
            None,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn only_admins_probe_a_temporary_provider_configuration() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[auth]\nguest_mode = false")
        .env("SCENEINTRUDER_ADMIN_USER", "boss")
        .env("SCENEINTRUDER_ADMIN_PASSWORD", "boss password 1")
        .start()
        .await;
    server.cli(
        &["user", "add", "hank", "--password-stdin"],
        "hank's password\n",
    );
    let hank = token(&login(&server, "hank", "hank's password").await.1);
    let boss = token(&login(&server, "boss", "boss password 1").await.1);
    let probe = json!({"provider": "nope", "llm_config": {"base_url": "http://127.0.0.1:9/v1", "api_key": "k"}});

    let (status, body) = server
        .send_as(
            Some(&hank),
            Method::POST,
            "/api/settings/test-connection",
            Some(&probe),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    // An admin passes the gate (and then learns the provider does not exist).
    let (status, body) = server
        .send_as(
            Some(&boss),
            Method::POST,
            "/api/settings/test-connection",
            Some(&probe),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CONFIG");
    // The saved-configuration probe stays available to any signed-in user.
    let (status, body) = server
        .send_as(
            Some(&hank),
            Method::POST,
            "/api/settings/test-connection",
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "LLM_NOT_CONFIGURED");
}
