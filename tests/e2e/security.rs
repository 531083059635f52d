//! Attacks on the server, each driven through the real binary with real plugins: keys sent
//! to a caller-chosen host, cross-site and DNS-rebinding requests, guests behind a proxy,
//! stale tokens, look-alike plugins, secrets in the wrong place or echoed back, and a stream
//! that tries to outrun its request budget. A loopback "attacker" must never see a key.

use std::time::Duration;

use reqwest::Method;
use sceneintruder_runtime::llm::{CompletionRequest, Message, Reasoning, ResponseFormat, Role};
use sceneintruder_runtime::{CallError, Limits, OperatorSettings};
use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use sceneintruder_tests::story_model::completion;
use sceneintruder_tests::{
    Backend, RuntimeFixture, Server, ServerBuilder, backends, chaos_server, decode, error_details,
    set_requested_hosts,
};
use serde_json::{Value, json};

const ENV_KEY: &str = "sk-env-4b1d";
const SAVED_KEY: &str = "sk-saved-77c0";
const GH_TOKEN: &str = "ghp_token_0a9e";
const OWN_KEY: &str = "sk-callers-own-5e";

/// Whatever any recorded request carried, as one string (headers, query, body).
fn everything(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|r| format!("{:?} {:?} {}", r.headers, r.query, r.text()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn probe(server: &Server, provider: &str, config: Value) -> (u16, Value) {
    server
        .post(
            "/api/settings/test-connection",
            &json!({"provider": provider, "llm_config": config}),
        )
        .await
}

#[tokio::test]
async fn stored_and_environment_keys_never_follow_a_caller_chosen_base_url() {
    let legit = FakeVendor::start(|_| completion("Hi")).await;
    let attacker = FakeVendor::start(|_| completion("Hi")).await;
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .plugin("githubmodels")
        .config(&format!(
            "[plugins.openai]\nsettings = {{ base_url = \"{}/v1\" }}",
            legit.base
        ))
        .env("OPENAI_API_KEY", ENV_KEY)
        .env("GITHUB_TOKEN", GH_TOKEN)
        .start()
        .await;
    let evil = format!("{}/v1", attacker.base);

    // The environment key, pointed elsewhere: refused before any request is made.
    let (status, body) = probe(&server, "openai", json!({"base_url": evil})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_CONFIG", "{body}");
    assert!(
        body["error"]["details"]
            .as_str()
            .unwrap_or_default()
            .contains("only sent to the endpoint it was configured for"),
        "{body}"
    );
    // GITHUB_TOKEN belongs to githubmodels, which is not even the active provider.
    let (status, body) = probe(&server, "githubmodels", json!({"base_url": evil})).await;
    assert_eq!(status, 400, "{body}");

    // A key saved through the API, then a probe at another endpoint without a key.
    let (status, body) = server
        .post(
            "/api/settings",
            &json!({"llm_provider": "openai", "llm_config": {
                "api_key": SAVED_KEY, "base_url": format!("{}/v1", legit.base)}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = probe(
        &server,
        "openai",
        json!({"base_url": evil, "default_model": "gpt-4o-mini"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        attacker.requests().is_empty(),
        "the attacker was contacted: {}",
        everything(&attacker.requests())
    );

    // At the endpoint the key was saved for, the saved key is used (the rule binds keys to
    // origins; it does not just drop them).
    let (status, body) = probe(
        &server,
        "openai",
        json!({"base_url": format!("{}/v1", legit.base)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        legit.last().header("authorization"),
        Some(format!("Bearer {SAVED_KEY}").as_str())
    );

    // A caller's own key goes to the caller's endpoint, and nothing else does.
    let (status, body) = probe(
        &server,
        "openai",
        json!({"base_url": evil, "api_key": OWN_KEY}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = everything(&attacker.requests());
    assert!(seen.contains(OWN_KEY), "{seen}");
    for key in [ENV_KEY, SAVED_KEY, GH_TOKEN] {
        assert!(!seen.contains(key), "{key} reached the attacker: {seen}");
    }
}

#[tokio::test]
async fn the_runtime_binds_each_key_to_its_origin_whatever_the_route() {
    // The operator's key belongs to `home`; a caller points the plugin at `away` (granted
    // only as a base URL) and the plugin tries to send the key there anyway.
    let home = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let away = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let config = format!(
        "[plugins.chaos]\nsettings = {{ base_url = \"{}\", api_key = \"{ENV_KEY}\" }}",
        home.base
    );
    let server = chaos_server(&[], &config).await;
    let (status, body) = probe(
        &server,
        "chaos",
        json!({"base_url": away.base, "default_model": format!("fetch:{}/x", away.base)}),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains(&format!("configured for {} is not sent to", home.base)),
        "{body}"
    );
    assert!(
        away.requests().is_empty(),
        "{}",
        everything(&away.requests())
    );

    // At home the key is substituted as before.
    let (status, body) = probe(
        &server,
        "chaos",
        json!({"default_model": format!("fetch:{}/x", home.base)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        home.last().header("authorization"),
        Some(format!("Bearer {ENV_KEY}").as_str())
    );
}

#[tokio::test]
async fn cross_site_text_plain_and_rebinding_requests_change_nothing() {
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    let url = server.url("/api/scenes/shell");
    let shell = json!({"title": "forged"}).to_string();

    // A page on another origin posting JSON (after a preflight it would not pass anyway).
    let response = server
        .http
        .post(&url)
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(shell.clone())
        .send()
        .await
        .expect("POST");
    let (status, body) = decode(response).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    // `Origin: null` (sandboxed frames, files) is foreign too.
    let response = server
        .http
        .post(&url)
        .header("origin", "null")
        .header("content-type", "application/json")
        .body(shell.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 403);

    // A "simple" text/plain post needs no preflight; it must not reach a handler.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = server
            .http
            .post(server.url("/api/settings"))
            .header("content-type", content_type)
            .body(json!({"llm_provider": "openai", "llm_config": {"api_key": "x"}}).to_string())
            .send()
            .await
            .expect("POST");
        let (status, body) = decode(response).await;
        assert_eq!(status, 415, "{content_type}: {body}");
        assert_eq!(body["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    let response = server
        .http
        .post(server.url("/api/settings/test-connection"))
        .header("content-type", "text/plain")
        .body(
            json!({"provider": "openai", "llm_config": {"base_url": "http://127.0.0.1:9/v1"}})
                .to_string(),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 415);

    // A DNS-rebinding page reaches the loopback server under its own name.
    for path in ["/api/scenes", "/api/config/health"] {
        let response = server
            .http
            .get(server.url(path))
            .header("host", "attacker.example:8080")
            .send()
            .await
            .expect("GET");
        let (status, body) = decode(response).await;
        assert_eq!(status, 421, "{path}: {body}");
        assert_eq!(body["error"]["code"], "MISDIRECTED_REQUEST");
    }

    // Nothing was created or changed.
    let (_, scenes) = server.get("/api/scenes").await;
    assert_eq!(scenes["data"], json!([]), "{scenes}");
    let (_, settings) = server.get("/api/settings").await;
    assert_eq!(settings["data"]["llm_provider"], "", "{settings}");

    // The server's own pages, allowed development origins and non-browser clients work.
    let own = server.base.clone();
    for origin in [Some(own.as_str()), Some("http://localhost:5173"), None] {
        let mut request = server
            .http
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"title": "mine"}).to_string());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let (status, body) = decode(request.send().await.expect("POST")).await;
        assert!(status == 200 || status == 201, "{origin:?}: {body}");
    }
    let response = server
        .http
        .get(server.url("/api/scenes"))
        .header("host", "localhost")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn configured_public_host_names_are_served() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[http]\nallowed_hosts = [\"story.example.com\"]")
        .start()
        .await;
    for (host, expected) in [
        ("story.example.com", 200),
        ("story.example.com:443", 200),
        ("other.example.com", 421),
    ] {
        let response = server
            .http
            .get(server.url("/api/config/health"))
            .header("host", host)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status().as_u16(), expected, "{host}");
    }
}

#[tokio::test]
async fn guests_administer_only_from_this_machine_and_stale_tokens_are_refused() {
    for backend in backends() {
        // Guest mode is on by default on a loopback listener.
        let server = ServerBuilder::new(backend).plugin("openai").start().await;
        let save = json!({"llm_provider": "openai", "llm_config": {"api_key": "sk-x"}});
        for header in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            let response = server
                .http
                .post(server.url("/api/settings"))
                .header(header, "203.0.113.7")
                .json(&save)
                .send()
                .await
                .expect("POST");
            let (status, body) = decode(response).await;
            assert_eq!(status, 403, "{header}: {body}");
        }
        let (_, settings) = server.get("/api/settings").await;
        assert_eq!(settings["data"]["llm_provider"], "", "{settings}");
        let (status, body) = server.post("/api/settings", &save).await;
        assert_eq!(status, 200, "a local guest may: {body}");

        // A token that does not verify is 401, not a guest.
        let (status, body) = server
            .send_as(
                Some("bm90IGEgdG9rZW4=.c2ln"),
                Method::GET,
                "/api/scenes",
                None,
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");

        // Nor does a revoked one.
        let token = server.new_user_token("alice").await;
        let (status, _) = server
            .send_as(Some(&token), Method::GET, "/api/scenes", None)
            .await;
        assert_eq!(status, 200);
        let (status, _) = server
            .send_as(Some(&token), Method::POST, "/api/auth/logout", None)
            .await;
        assert_eq!(status, 200);
        let (status, body) = server
            .send_as(Some(&token), Method::GET, "/api/scenes", None)
            .await;
        assert_eq!(status, 401, "{body}");
        // Public routes still answer (a stale token must not lock anyone out of logging in).
        let (status, _) = server
            .send_as(Some(&token), Method::GET, "/api/config/health", None)
            .await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn socket_status_and_jobs_follow_auth_and_ownership() {
    for backend in backends() {
        let server = ServerBuilder::new(backend)
            .config("[auth]\nguest_mode = false\n[jobs]\ndiagnostics = true")
            .start()
            .await;
        let (status, body) = server.get("/api/ws/status").await;
        assert_eq!(status, 401, "{body}");

        let alice = &server.new_user_token("alice").await;
        let bob = &server.new_user_token("bob").await;
        let (status, body) = server
            .send_as(
                Some(alice),
                Method::POST,
                "/api/jobs/diagnostics",
                Some(&json!({"steps": 1, "step_ms": 0})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let task = body["data"]["task_id"]
            .as_str()
            .expect("task id")
            .to_string();
        let path = format!("/api/jobs/{task}");
        let (status, body) = server.send_as(Some(alice), Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.send_as(Some(bob), Method::GET, &path, None).await;
        assert_eq!(status, 404, "someone else's job is not shown: {body}");
        assert_eq!(body["error"]["code"], "TASK_NOT_FOUND");

        // Sockets: each user sees only the connections they opened.
        let ws_url = format!("{}?token={alice}", server.ws_url("/ws/user/status"));
        let (_socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("alice connects");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, mine) = server
            .send_as(Some(alice), Method::GET, "/api/ws/status", None)
            .await;
        assert_eq!(mine["data"]["total_connections"], 1, "{mine}");
        let (_, theirs) = server
            .send_as(Some(bob), Method::GET, "/api/ws/status", None)
            .await;
        assert_eq!(theirs["data"]["total_connections"], 0, "{theirs}");
    }
}

#[tokio::test]
async fn credential_named_settings_are_secret_whatever_the_manifest_says() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let origin = vendor.base.clone();
    // The chaos manifest declares `access_token` as an ordinary setting.
    let config = format!(
        "[plugins.chaos]\nallow_hosts = [\"{origin}\"]\nsettings = {{ access_token = \"tok-{ENV_KEY}\" }}"
    );
    let server = chaos_server(std::slice::from_ref(&origin), &config).await;
    let (status, body) = probe(
        &server,
        "chaos",
        json!({"default_model": format!("snoop:{origin}/report")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report = vendor.last().text();
    assert!(report.contains("config.get(access_token)=None"), "{report}");
    assert!(!report.contains(ENV_KEY), "{report}");
}

#[tokio::test]
async fn secrets_go_only_into_credential_headers_and_declared_query_parameters() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let origin = vendor.base.clone();
    let config = format!(
        "[plugins.chaos]\nallow_hosts = [\"{origin}\"]\nsettings = {{ api_key = \"{ENV_KEY}\" }}"
    );
    let server = chaos_server(std::slice::from_ref(&origin), &config).await;
    for (header, refused_because) in [
        ("Host", "set by the host"),
        ("Connection", "set by the host"),
        ("Transfer-Encoding", "set by the host"),
        ("X-Custom", "only into credential headers"),
        ("Cookie", "only into credential headers"),
    ] {
        let (status, body) = probe(
            &server,
            "chaos",
            json!({"default_model": format!("header:{header}:{origin}/h")}),
        )
        .await;
        assert_eq!(status, 503, "{header}: {body}");
        assert!(
            error_details(&body).contains(refused_because),
            "{header}: {body}"
        );
    }
    assert!(
        vendor.requests().is_empty(),
        "{}",
        everything(&vendor.requests())
    );
    for header in ["x-api-key", "api-key", "x-goog-api-key"] {
        let (status, body) = probe(
            &server,
            "chaos",
            json!({"default_model": format!("header:{header}:{origin}/h")}),
        )
        .await;
        assert_eq!(status, 200, "{header}: {body}");
        assert_eq!(vendor.last().header(header), Some(ENV_KEY));
    }
    // `fetch:` uses `?key=`, which the chaos manifest declares in `network.secret_query`.
    let (status, body) = probe(
        &server,
        "chaos",
        json!({"default_model": format!("fetch:{origin}/q")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        vendor.last().query.as_deref(),
        Some(format!("key={ENV_KEY}").as_str())
    );
}

/// A plugin sets no routing, hop-by-hop or proxy header, whatever the value: the vendor
/// never sees one (on a CDN-fronted vendor they could pick who receives the key).
#[tokio::test]
async fn plugins_cannot_set_host_hop_by_hop_or_proxy_headers() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let origin = vendor.base.clone();
    let config = format!(
        "[plugins.chaos]\nallow_hosts = [\"{origin}\"]\nsettings = {{ api_key = \"{ENV_KEY}\" }}"
    );
    let server = chaos_server(std::slice::from_ref(&origin), &config).await;
    for header in [
        "Host",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Real-IP",
        "Via",
    ] {
        let (status, body) = probe(
            &server,
            "chaos",
            json!({"default_model": format!("plainheader:{header}:{origin}/h")}),
        )
        .await;
        assert_eq!(status, 503, "{header}: {body}");
        assert!(
            error_details(&body).contains("set by the host"),
            "{header}: {body}"
        );
    }
    assert!(
        vendor.requests().is_empty(),
        "{}",
        everything(&vendor.requests())
    );
    // An ordinary header goes through.
    let (status, body) = probe(
        &server,
        "chaos",
        json!({"default_model": format!("plainheader:X-Custom:{origin}/h")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vendor.last().header("x-custom"), Some("evil.example"));
}

#[tokio::test]
async fn a_vendor_echoing_the_key_puts_only_a_redaction_into_plugin_memory() {
    // Echo the credential back in a header and in the body, as some error pages do.
    let vendor = FakeVendor::start(|r| {
        let auth = r.header("authorization").unwrap_or_default().to_string();
        Reply::text(200, &format!("you sent: {auth} (query {:?})", r.query)).header("x-echo", &auth)
    })
    .await;
    let origin = vendor.base.clone();
    let config = format!(
        "[plugins.chaos]\nallow_hosts = [\"{origin}\"]\nsettings = {{ api_key = \"{ENV_KEY}\" }}"
    );
    let server = chaos_server(std::slice::from_ref(&origin), &config).await;
    let (status, body) = probe(
        &server,
        "chaos",
        json!({"default_model": format!("relay:{origin}/echo")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report = vendor
        .requests()
        .into_iter()
        .find(|r| r.path == "/echo/report")
        .expect("the plugin reported what it received")
        .text();
    assert!(
        !report.contains(ENV_KEY),
        "the key reached the plugin: {report}"
    );
    assert!(report.contains("Bearer [redacted]"), "{report}");
    assert!(
        report.contains("stream.body=you sent: Bearer [redacted]"),
        "{report}"
    );
}

/// Append a custom section to a component: still valid, but no longer the bundled bytes.
fn tamper(component: &std::path::Path) {
    let mut bytes = std::fs::read(component).expect("read component");
    let name = b"lookalike";
    let payload = b"not the bundled build";
    bytes.push(0); // custom section id
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    std::fs::write(component, bytes).expect("write component");
}

async fn plugin_report(server: &Server, id: &str) -> Value {
    let (status, body) = server.get(&format!("/api/plugins/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn a_look_alike_of_a_bundled_plugin_gets_no_keys_until_pinned() {
    let vendor = FakeVendor::start(|_| completion("Hi")).await;
    let settings = format!(
        "[llm]\nprovider = \"openai\"\n[plugins.openai]\nsettings = {{ base_url = \"{}/v1\" }}",
        vendor.base
    );

    // The genuine bundled component gets the environment key.
    let genuine = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .config(&settings)
        .env("OPENAI_API_KEY", ENV_KEY)
        .start()
        .await;
    let report = plugin_report(&genuine, "openai").await;
    assert_eq!(report["trust"], "bundled", "{report}");
    let (status, body) = genuine
        .post("/api/settings/test-connection", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        vendor.last().header("authorization"),
        Some(format!("Bearer {ENV_KEY}").as_str())
    );
    drop(genuine);
    let before = vendor.requests().len();

    // Same id, other bytes: no stored or environment key, and it says why.
    let builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .config(&settings)
        .env("OPENAI_API_KEY", ENV_KEY);
    let component = builder.plugins_dir().join("openai").join("llm_openai.wasm");
    tamper(&component);
    let lookalike = builder.start().await;
    let report = plugin_report(&lookalike, "openai").await;
    assert_eq!(report["state"], "loaded", "{report}");
    assert_eq!(report["trust"], "unverified", "{report}");
    let digest = report["sha256"].as_str().expect("digest").to_string();
    assert!(
        report["trust_note"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("sha256 = \"{digest}\"")),
        "{report}"
    );
    let (status, body) = lookalike
        .post("/api/settings/test-connection", &json!({}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "LLM_NOT_CONFIGURED", "{body}");
    let (_, settings_view) = lookalike.get("/api/settings").await;
    assert_eq!(settings_view["data"]["llm_config"]["has_api_key"], false);
    // A key saved through the API does not reach it either.
    let (status, body) = lookalike
        .post(
            "/api/settings",
            &json!({"llm_provider": "openai", "llm_config": {"api_key": SAVED_KEY}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = lookalike
        .post("/api/settings/test-connection", &json!({}))
        .await;
    assert_eq!(status, 503);
    drop(lookalike);
    let seen = everything(&vendor.requests()[before..]);
    assert!(
        !seen.contains(ENV_KEY) && !seen.contains(SAVED_KEY),
        "{seen}"
    );

    // Pinned by the operator: trusted.
    let builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .config(&format!("{settings}\nsha256 = \"{digest}\""))
        .env("OPENAI_API_KEY", ENV_KEY);
    tamper(&builder.plugins_dir().join("openai").join("llm_openai.wasm"));
    let pinned = builder.start().await;
    assert_eq!(plugin_report(&pinned, "openai").await["trust"], "pinned");
    let (status, body) = pinned
        .post("/api/settings/test-connection", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // A pin that does not match keeps the plugin out.
    let builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .config(&format!("{settings}\nsha256 = \"{}\"", "0".repeat(64)));
    let wrong_pin = builder.start().await;
    let (_, list) = wrong_pin.get("/api/plugins").await;
    let entry = &list["data"]
        .as_array()
        .expect("plugin list")
        .iter()
        .find(|p| p["id"] == "openai")
        .cloned()
        .expect("openai reported");
    assert_eq!(entry["state"], "failed", "{entry}");
    assert!(
        entry["reason"].as_str().unwrap_or_default().contains("pin"),
        "{entry}"
    );
}

#[tokio::test]
async fn two_plugins_claiming_one_id_load_neither() {
    let builder = ServerBuilder::new(Backend::Sqlite).plugin("openai");
    let copy = builder.plugins_dir().join("zz-openai-copy");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for entry in std::fs::read_dir(builder.plugins_dir().join("openai")).expect("read") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
    }
    let server = builder.start().await;
    let (_, list) = server.get("/api/plugins").await;
    let all = list["data"].as_array().cloned().expect("plugin list");
    let claims: Vec<&Value> = all.iter().filter(|p| p["id"] == "openai").collect();
    assert_eq!(claims.len(), 2, "{list}");
    for claim in claims {
        assert_eq!(claim["state"], "failed", "{claim}");
        assert!(
            claim["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("claimed by several folders"),
            "{claim}"
        );
    }
    let (status, _) = server.get("/api/plugins/openai").await;
    assert_ne!(status, 500);
    let (_, llm) = server.get("/api/llm/models?provider=openai").await;
    assert_eq!(llm["success"], false, "{llm}");
}

fn stream_request(model: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.to_string(),
        system_prompt: None,
        messages: vec![Message {
            role: Role::User,
            content: "go".into(),
        }],
        temperature: None,
        max_tokens: None,
        top_p: None,
        stop: Vec::new(),
        response_format: ResponseFormat::Text,
        reasoning: Reasoning::Off,
    }
}

#[tokio::test]
async fn a_stream_shares_one_request_budget_across_its_events() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let fixture = RuntimeFixture::new(&["chaos"]);
    set_requested_hosts(&fixture.folder("chaos"), std::slice::from_ref(&vendor.base));
    let runtime = fixture
        .load(
            Limits {
                max_requests_per_call: 3,
                ..Limits::default()
            },
            std::collections::BTreeMap::from([(
                "chaos".to_string(),
                OperatorSettings {
                    allow_hosts: vec![vendor.base.clone()],
                    ..Default::default()
                },
            )]),
        )
        .await;
    let chaos = runtime.llm("chaos").expect("chaos loaded");
    let model = format!("stream-fetch:{}/s:6", vendor.base);
    let mut stream = chaos
        .stream(&stream_request(&model), None)
        .await
        .expect("stream starts");
    let mut deltas = 0;
    let mut failure = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(sceneintruder_runtime::llm::StreamEvent::Delta(_)) => deltas += 1,
            Ok(_) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    assert_eq!(deltas, 3, "three requests fit the budget");
    let failure = failure.expect("the fourth request is refused");
    assert!(
        matches!(&failure, CallError::Provider { .. })
            && failure
                .to_string()
                .contains("more than 3 outbound requests"),
        "{failure}"
    );
    assert_eq!(vendor.requests().len(), 3);
}
