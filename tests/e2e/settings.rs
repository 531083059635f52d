//! Settings and LLM configuration through the real binary: keys stored encrypted (checked in
//! the database with the key file), never returned, handed to the plugin; atomic saves; the
//! key never follows a switch to another endpoint; admin-only changes; status, models,
//! metrics; persistence across restarts and between servers sharing PostgreSQL.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use sceneintruder_store::Database;
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use sceneintruder_tests::story_model::completion;
use sceneintruder_tests::{Backend, Server, ServerBuilder, backends};
use serde_json::{Value, json};

const KEY: &str = "sk-settings-7f3a9c";

/// A fake OpenAI that accepts only `KEY`.
async fn vendor() -> FakeVendor {
    FakeVendor::start(|req: &Recorded| {
        if req.header("authorization") == Some(&format!("Bearer {KEY}")) {
            completion("Hi")
        } else {
            Reply::json(
                401,
                json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}}),
            )
        }
    })
    .await
}

async fn put(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    server.send_as(None, Method::PUT, path, Some(body)).await
}

/// The stored settings row: (document, version).
async fn stored(server: &Server) -> Option<(Value, i64)> {
    let db = Database::connect(&server.database_url())
        .await
        .expect("open database");
    let row = db.settings().get("providers").await.expect("read settings");
    db.close().await;
    row.map(|r| {
        (
            serde_json::from_str(&r.document).expect("settings JSON"),
            r.version,
        )
    })
}

/// Decrypt a stored value with the server's key file, as the reference's layout defines it:
/// base64(nonce || ciphertext || tag), AES-256-GCM.
fn decrypt(server: &Server, sealed: &str) -> String {
    let key = std::fs::read(server.data_dir.path().join(".encryption_key")).expect("key file");
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key[..32]));
    let raw = STANDARD.decode(sealed).expect("base64");
    let (nonce, sealed) = raw.split_at(12);
    let plain = cipher
        .decrypt(Nonce::from_slice(nonce), sealed)
        .expect("decrypts with the key file");
    String::from_utf8(plain).expect("utf-8")
}

async fn probe(server: &Server) -> (u16, Value) {
    server
        .post("/api/settings/test-connection", &json!({}))
        .await
}

#[tokio::test]
async fn settings_round_trip_encrypted_atomic_and_never_returned() {
    let vendor = vendor().await;
    let base_url = format!("{}/v1", vendor.base);
    for backend in backends() {
        let mut server = ServerBuilder::new(backend).plugin("openai").start().await;

        // Nothing configured yet: the provider list is exactly the loaded plugins.
        let (status, body) = server.get("/api/settings").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "设置获取成功");
        let data = &body["data"];
        assert_eq!(data["llm_provider"], "");
        assert_eq!(data["llm_config"]["has_api_key"], false);
        let providers: Vec<&str> = data["llm_providers"]
            .as_array()
            .expect("llm_providers")
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert_eq!(providers, ["openai"]);
        assert!(
            data["llm_providers"][0]["models"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["id"] == "gpt-4.1"))
        );
        assert_eq!(data["vision_provider"], "placeholder");
        assert_eq!(data["video_provider"], "mock");
        assert_eq!(data["vision_models"][0]["key"], "placeholder");
        let (_, status_body) = server.get("/api/llm/status").await;
        assert_eq!(
            status_body["data"],
            json!({"ready": false, "status": "LLM provider not configured", "provider": "",
                   "config": {"provider": "", "has_api_key": false}, "configured": false})
        );

        // Save: the UI sends an empty default_model when nothing is picked (treated as absent
        // and filled from the plugin), and numbers for some options (coerced to strings).
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({
                    "llm_provider": "openai",
                    "llm_config": {"api_key": KEY, "base_url": base_url, "default_model": "", "organization": 42},
                    "debug_mode": true,
                    "vision_provider": "placeholder",
                    "vision_config": {"api_key": ""},
                    "vision_models": [{"key": "placeholder", "label": "Placeholder", "provider": "placeholder", "supports_reference_image": false}]
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "设置保存成功");
        assert!(body.get("data").is_none(), "{body}");

        let (_, body) = server.get("/api/settings").await;
        assert!(!body.to_string().contains(KEY), "key returned: {body}");
        let data = &body["data"];
        assert_eq!(data["llm_provider"], "openai");
        assert_eq!(data["llm_config"]["has_api_key"], true);
        assert_eq!(data["llm_config"]["default_model"], "gpt-4o");
        assert_eq!(data["llm_config"]["model"], "gpt-4o");
        assert_eq!(data["llm_config"]["base_url"], base_url);
        assert_eq!(data["vision_models"][0]["label"], "Placeholder");
        assert_eq!(data["vision_model_providers"]["placeholder"], "placeholder");

        // At rest: the key is not in the row; it decrypts with the key file (AES-256-GCM).
        let (document, version) = stored(&server).await.expect("settings stored");
        assert!(!document.to_string().contains(KEY), "{document}");
        let sealed = document["llm"]["encrypted"]["api_key"]
            .as_str()
            .expect("encrypted api_key");
        assert_eq!(decrypt(&server, sealed), KEY);
        assert_eq!(document["llm"]["config"]["organization"], "42");
        assert!(document["llm"]["config"].get("api_key").is_none());

        // The plugin gets the key (through the runtime's substitution): a saved-config probe
        // reaches the vendor with it.
        let (status, body) = probe(&server).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["mode"], "saved_config");
        assert_eq!(
            vendor.last().header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        let (_, body) = server.get("/api/llm/status").await;
        assert_eq!(
            body["data"],
            json!({"ready": true, "status": "Ready", "provider": "openai",
                   "config": {"provider": "openai", "has_api_key": true, "model": "gpt-4o"}})
        );

        // A save where one section is invalid changes nothing, the valid sections included.
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({
                    "llm_provider": "openai",
                    "llm_config": {"api_key": "sk-replacement", "base_url": base_url, "default_model": "gpt-4.1"},
                    "video_provider": "dashscope",
                    "video_config": {"endpoint": "https://video.invalid/api/v1"}
                }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "BAD_REQUEST");
        assert_eq!(body["error"]["message"], "保存Video配置失败");
        assert_eq!(
            body["error"]["details"],
            "更新video配置失败: 不支持的video提供商: dashscope"
        );
        assert_eq!(stored(&server).await.expect("row").1, version);
        let (_, body) = server.get("/api/settings").await;
        assert_eq!(body["data"]["llm_config"]["default_model"], "gpt-4o");
        assert_eq!(probe(&server).await.0, 200, "old key still in force");

        // Other validation failures: unknown provider, missing key, malformed body.
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({"llm_provider": "nope", "llm_config": {"api_key": "k"}}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "保存LLM配置失败");
        assert_eq!(
            body["error"]["details"],
            "配置验证失败: 不支持的提供商: nope"
        );
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({"vision_provider": "placeholder", "vision_models": [{"key": "x", "supports_reference_image": "yes"}]}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "无效的请求数据");
        assert_eq!(stored(&server).await.expect("row").1, version);

        // Same provider, same endpoint, no key: the stored key is kept.
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({"llm_provider": "openai", "llm_config": {"api_key": "", "base_url": base_url, "default_model": "gpt-4.1"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(probe(&server).await.0, 200);
        assert_eq!(vendor.last().json()["model"], "gpt-4.1");

        // Same provider pointed at another endpoint without a key: the stored key is not
        // sent there; the save is refused and nothing changes.
        let (document_before, version) = stored(&server).await.expect("row");
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({"llm_provider": "openai", "llm_config": {"base_url": "http://127.0.0.1:9/v1"}}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        let details = body["error"]["details"].as_str().unwrap_or_default();
        assert!(details.contains("api_key 不能为空"), "{details}");
        let (document_after, version_after) = stored(&server).await.expect("row");
        assert_eq!((document_after, version_after), (document_before, version));

        // The catalog is kept when a client does not send it.
        let (status, _) = server
            .post(
                "/api/settings",
                &json!({"vision_provider": "placeholder", "vision_default_model": "placeholder", "vision_config": {"size": "512x512"}}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, body) = server.get("/api/settings").await;
        assert_eq!(body["data"]["vision_models"][0]["label"], "Placeholder");
        assert_eq!(body["data"]["vision_config"]["size"], "512x512");
        assert_eq!(body["data"]["vision_config"]["has_api_key"], false);

        // Metrics: one LLM and one vision section in the first save, one LLM save, one vision
        // save (2 history entries per LLM save, 5 per vision save).
        let (status, body) = server.get("/api/config/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(body["message"], "配置指标获取成功");
        let m = &body["data"];
        assert_eq!(m["config_version"], 4, "{m}");
        assert_eq!(m["change_history_size"], 2 + 5 + 2 + 5, "{m}");
        assert_eq!(m["subscribers_count"], 0);
        assert_eq!(m["audit_log_size"], 0);
        assert_eq!(m["audit_enabled"], false);
        assert_eq!(m["cache_status"], true);
        assert!(m["llm_usage"]["by_provider"].is_object(), "{m}");
        assert!(m["llm_usage"]["by_user"].is_object(), "{m}");
        let (_, health) = server.get("/api/config/health").await;
        assert_eq!(health["data"]["checks"]["cache_status"]["version"], 4);
        assert_eq!(health["data"]["checks"]["llm_api_key"]["status"], "healthy");

        // After a restart the key still decrypts and is used.
        server.restart().await;
        let (_, body) = server.get("/api/llm/status").await;
        assert_eq!(body["data"]["status"], "Ready", "{body}");
        assert_eq!(probe(&server).await.0, 200);

        // With another encryption key the stored key cannot be read: no key, not ready, and
        // nothing crashes.
        server.stop();
        server.set_env(
            "CONFIG_ENCRYPTION_KEY",
            "a-completely-different-key-of-32-chars!",
        );
        server.start_again().await;
        let (_, body) = server.get("/api/llm/status").await;
        assert_eq!(body["data"]["ready"], false, "{body}");
        assert_eq!(body["data"]["status"], "API key not configured");
        assert_eq!(body["data"]["config"]["has_api_key"], false);
    }
}

#[tokio::test]
async fn llm_models_and_config_routes() {
    let vendor = vendor().await;
    let base_url = format!("{}/v1", vendor.base);
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .start()
        .await;

    let (status, body) = server.get("/api/llm/models").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "缺少提供商参数");
    let (status, body) = server.get("/api/llm/models?provider=anthropic").await;
    assert_eq!(status, 400, "not loaded here: {body}");
    assert_eq!(body["error"]["message"], "不支持的LLM提供商");
    assert_eq!(body["error"]["details"], "anthropic");
    let (status, body) = server.get("/api/llm/models?provider=openai").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "模型列表获取成功");
    let (_, plugin) = server.get("/api/plugins/openai").await;
    let catalog: Vec<Value> = plugin["data"]["info"]["models"]
        .as_array()
        .expect("catalog")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(body["data"]["models"], Value::Array(catalog.clone()));
    assert_eq!(body["data"]["count"], catalog.len());
    assert_eq!(body["data"]["default_model"], "gpt-4o");

    // PUT /api/llm/config: strict body, validation errors are 400, success applies at once.
    let (status, body) = put(&server, "/api/llm/config", &json!({"provider": "openai"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "无效的请求格式");
    let (status, body) = put(
        &server,
        "/api/llm/config",
        &json!({"provider": "openai", "config": {"api_key": 5}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "无效的请求格式");
    let (status, body) = put(
        &server,
        "/api/llm/config",
        &json!({"provider": "openai", "config": {"base_url": base_url}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["message"], "配置验证失败");
    assert_eq!(body["error"]["details"], "缺少 api_key 配置");
    assert!(stored(&server).await.is_none(), "nothing stored");

    let (status, body) = put(
        &server,
        "/api/llm/config",
        &json!({"provider": "openai", "config": {"api_key": KEY, "base_url": base_url}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "LLM配置更新成功");
    // No default-model fill on this route; the status has no `config.model` then.
    let (_, body) = server.get("/api/llm/status").await;
    assert_eq!(body["data"]["ready"], true, "{body}");
    assert!(body["data"]["config"].get("model").is_none(), "{body}");
    assert_eq!(probe(&server).await.0, 200);
    // Keeping the key: provider and endpoint unchanged, key omitted.
    let (status, _) = put(
        &server,
        "/api/llm/config",
        &json!({"provider": "openai", "config": {"base_url": base_url, "default_model": "gpt-4o-mini"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(probe(&server).await.0, 200);
    assert_eq!(vendor.last().json()["model"], "gpt-4o-mini");
    // This route does not count as a config version (as in the reference).
    let (_, body) = server.get("/api/config/metrics").await;
    assert_eq!(body["data"]["config_version"], 0);
}

#[tokio::test]
async fn only_admins_change_settings_when_guest_mode_is_off() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .config("[auth]\nguest_mode = false")
        .start()
        .await;
    for (name, admin) in [("root", true), ("writer", false)] {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        let (ok, out) = server.cli(&args, "a long enough password\n");
        assert!(ok, "{out}");
    }
    let login = |name: &'static str| {
        let server = &server;
        async move {
            let (_, body) = server
                .post(
                    "/api/auth/login",
                    &json!({"username": name, "password": "a long enough password"}),
                )
                .await;
            body["data"]["token"].as_str().expect("token").to_string()
        }
    };
    let (root, writer) = (login("root").await, login("writer").await);
    let body = json!({"llm_provider": "openai", "llm_config": {"api_key": KEY}});

    let (status, _) = server.get("/api/settings").await;
    assert_eq!(status, 401);
    let (status, _) = server
        .send_as(None, Method::POST, "/api/settings", Some(&body))
        .await;
    assert_eq!(status, 401);
    let (status, out) = server
        .send_as(Some(&writer), Method::POST, "/api/settings", Some(&body))
        .await;
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["error"]["code"], "FORBIDDEN");
    let (status, _) = server
        .send_as(
            Some(&writer),
            Method::PUT,
            "/api/llm/config",
            Some(&json!({"provider": "openai", "config": {"api_key": KEY}})),
        )
        .await;
    assert_eq!(status, 403);
    assert!(stored(&server).await.is_none());
    // Reading is fine for any user; changing is for the admin.
    let (status, _) = server
        .send_as(Some(&writer), Method::GET, "/api/settings", None)
        .await;
    assert_eq!(status, 200);
    let (status, out) = server
        .send_as(Some(&root), Method::POST, "/api/settings", Some(&body))
        .await;
    assert_eq!(status, 200, "{out}");
    let (_, out) = server
        .send_as(Some(&writer), Method::GET, "/api/llm/status", None)
        .await;
    assert_eq!(out["data"]["config"]["has_api_key"], true, "{out}");
}

#[tokio::test]
async fn servers_sharing_postgres_apply_each_others_saves() {
    let Some(Backend::Postgres(admin)) = backends().into_iter().nth(1) else {
        eprintln!("TEST_DATABASE_URL not set: skipping the two-server test");
        return;
    };
    const SHARED_KEY: &str = "shared-encryption-key-0123456789abcdef";
    let vendor = vendor().await;
    let a = ServerBuilder::new(Backend::Postgres(admin.clone()))
        .plugin("openai")
        .env("CONFIG_ENCRYPTION_KEY", SHARED_KEY)
        .start()
        .await;
    let b = ServerBuilder::new(Backend::Postgres(admin))
        .plugin("openai")
        .env("CONFIG_ENCRYPTION_KEY", SHARED_KEY)
        .share_database(&a)
        .start()
        .await;
    let (status, body) = a
        .post(
            "/api/settings",
            &json!({"llm_provider": "openai", "llm_config": {"api_key": KEY, "base_url": format!("{}/v1", vendor.base)}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut ready = false;
    for _ in 0..50 {
        let (_, body) = b.get("/api/llm/status").await;
        if body["data"]["ready"] == true {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "server B never saw the save");
    assert_eq!(probe(&b).await.0, 200);
    assert_eq!(
        vendor.last().header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

/// Every bundled LLM provider.
const LLM_PLUGINS: [&str; 13] = [
    "anthropic",
    "deepseek",
    "githubmodels",
    "glm",
    "google",
    "grok",
    "mistral",
    "nvidia",
    "ollama",
    "openai",
    "openai-compatible",
    "openrouter",
    "qwen",
];

#[tokio::test]
async fn provider_lists_are_exactly_the_loaded_plugins_catalogs() {
    let mut builder = ServerBuilder::new(Backend::Sqlite).plugin("markdown");
    for id in LLM_PLUGINS {
        builder = builder.plugin(id);
    }
    let server = builder.start().await;
    let (_, settings) = server.get("/api/settings").await;
    let listed: Vec<&str> = settings["data"]["llm_providers"]
        .as_array()
        .expect("llm_providers")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(listed, LLM_PLUGINS, "exporters are not LLM providers");
    for id in LLM_PLUGINS {
        let (_, plugin) = server.get(&format!("/api/plugins/{id}")).await;
        let catalog = &plugin["data"]["info"]["models"];
        let ids: Vec<Value> = catalog
            .as_array()
            .expect("catalog")
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        let (status, models) = server.get(&format!("/api/llm/models?provider={id}")).await;
        assert_eq!(status, 200, "{models}");
        assert_eq!(models["data"]["models"], Value::Array(ids.clone()), "{id}");
        assert_eq!(models["data"]["count"], ids.len(), "{id}");
        assert_eq!(&models["data"]["catalog"], catalog, "{id}");
        let entry = settings["data"]["llm_providers"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["id"] == id))
            .expect("listed");
        assert_eq!(&entry["models"], catalog, "{id}");
    }
    let (status, _) = server.get("/api/llm/models?provider=markdown").await;
    assert_eq!(status, 400, "an exporter is not an LLM provider");
}

#[tokio::test]
async fn saving_another_provider_routes_calls_to_it() {
    // A fake Anthropic Messages API that accepts only the saved key.
    let vendor = FakeVendor::start(|req: &Recorded| {
        if req.header("x-api-key") == Some(KEY) {
            Reply::json(
                200,
                json!({
                    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                    "content": [{"type": "text", "text": "Hi"}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 9, "output_tokens": 1}
                }),
            )
        } else {
            Reply::json(
                401,
                json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
            )
        }
    })
    .await;
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .plugin("anthropic")
        .env("OPENAI_API_KEY", "sk-openai-env")
        .start()
        .await;
    // The OpenAI key from the environment is the openai plugin's only.
    let (_, body) = server.get("/api/settings").await;
    assert_eq!(body["data"]["llm_provider"], "");
    let (status, body) = server
        .post(
            "/api/settings",
            &json!({"llm_provider": "anthropic", "llm_config": {"base_url": format!("{}/v1", vendor.base)}}),
        )
        .await;
    assert_eq!(status, 400, "no key for anthropic: {body}");
    assert_eq!(body["error"]["details"], "配置验证失败: 缺少 api_key 配置");

    let (status, body) = server
        .post(
            "/api/settings",
            &json!({"llm_provider": "anthropic", "llm_config": {"api_key": KEY, "base_url": format!("{}/v1", vendor.base)}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = server.get("/api/llm/status").await;
    assert_eq!(body["data"]["provider"], "anthropic", "{body}");
    assert_eq!(body["data"]["config"]["model"], "claude-haiku-4-5");
    let (status, body) = probe(&server).await;
    assert_eq!(status, 200, "{body}");
    let seen = vendor.last();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.json()["model"], "claude-haiku-4-5");
    assert!(seen.header("authorization").is_none());
}
