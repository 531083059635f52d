//! The server skeleton through the real binary: envelope, request ids, 404s, body limit,
//! plugin discovery and reporting, compile cache, graceful shutdown — on every backend.

use std::time::Duration;

use sceneintruder_tests::{Backend, ServerBuilder, backends, decode, install_plugin};
use serde_json::{Value, json};

fn plugin<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("plugin {id} not listed in {list}"))
}

fn assert_envelope_error(body: &Value, code: &str) {
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["timestamp"].is_string(), "{body}");
    assert!(body["request_id"].is_string(), "{body}");
}

#[tokio::test]
async fn health_envelope_and_request_ids() {
    for backend in backends() {
        let server = ServerBuilder::new(backend.clone())
            .plugin("openai")
            .plugin("markdown")
            .start()
            .await;
        let response = server
            .http
            .get(server.url("/api/config/health"))
            .send()
            .await
            .expect("health");
        let header_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .expect("X-Request-ID header");
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let (status, body) = decode(response).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(body["request_id"], header_id.as_str());
        assert!(header_id.starts_with("req_"), "{header_id}");
        assert_eq!(body["data"]["status"], "healthy");
        assert_eq!(body["data"]["checks"]["database"]["status"], "healthy");
        assert_eq!(
            body["data"]["checks"]["database"]["backend"],
            backend.name(),
            "{body}"
        );
        assert_eq!(body["data"]["checks"]["plugins"]["loaded"], 2);
        // No provider configured: a warning, not an unhealthy server (as in the reference).
        assert_eq!(body["data"]["checks"]["llm_provider"]["status"], "warning");

        // A client-supplied id is echoed; a hostile one is replaced.
        let response = server
            .http
            .get(server.url("/api/config/health"))
            .header("X-Request-ID", "trace-abc-123")
            .send()
            .await
            .expect("health");
        assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
        let (_, body) = decode(response).await;
        assert_eq!(body["request_id"], "trace-abc-123");
        let long = "x".repeat(200);
        let response = server
            .http
            .get(server.url("/api/config/health"))
            .header("X-Request-ID", &long)
            .send()
            .await
            .expect("health");
        assert_ne!(response.headers()["x-request-id"], long.as_str());
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_enveloped_404s() {
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    let (status, body) = server.get("/api/does/not/exist").await;
    assert_eq!(status, 404);
    assert_envelope_error(&body, "NOT_FOUND");
    assert_eq!(body["error"]["message"], "API endpoint not found");
    assert_eq!(body["error"]["details"], "/api/does/not/exist");

    // The reference has no 405: a wrong method is an unknown endpoint.
    let (status, body) = server.post("/api/config/health", &json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_envelope_error(&body, "NOT_FOUND");

    // The sanitiser hides paths that mention tokens.
    let (status, body) = server.get("/api/token/leak").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["details"], "An internal error occurred");
}

#[tokio::test]
async fn oversized_bodies_are_refused_in_the_envelope() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("body_limit_bytes = 1024")
        .start()
        .await;
    let big = json!({"provider": "openai", "llm_config": {"api_key": "x".repeat(4096)}});
    let (status, body) = server.post("/api/settings/test-connection", &big).await;
    assert_eq!(status, 413, "{body}");
    assert_envelope_error(&body, "PAYLOAD_TOO_LARGE");
    // The server keeps serving.
    let (status, _) = server.get("/api/config/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn broken_plugins_are_reported_and_the_rest_load() {
    for backend in backends() {
        let builder = ServerBuilder::new(backend)
            .plugin("openai")
            .plugin("markdown");
        let plugins = builder.plugins_dir();

        // Corrupt bytes.
        let corrupt = install_plugin(&plugins, "chaos");
        std::fs::write(
            corrupt.join("chaos.wasm"),
            b"\0asm\x0d\0\x01\0 definitely not a component",
        )
        .expect("corrupt");
        // A manifest that does not parse.
        let bad = plugins.join("bad-manifest");
        std::fs::create_dir_all(&bad).expect("dir");
        std::fs::write(bad.join("plugin.toml"), "id = \"bad\"\nkind = 7\n").expect("write");
        // A folder with no manifest at all.
        std::fs::create_dir_all(plugins.join("empty")).expect("dir");
        // The wrong world: the Markdown exporter declared as an LLM provider.
        let wrong = plugins.join("wrong-world");
        std::fs::create_dir_all(&wrong).expect("dir");
        std::fs::copy(
            plugins.join("markdown/export_markdown.wasm"),
            wrong.join("x.wasm"),
        )
        .expect("copy");
        std::fs::write(
            wrong.join("plugin.toml"),
            "id = \"wrong\"\nkind = \"llm-provider\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\ncomponent = \"x.wasm\"\n",
        )
        .expect("write");
        // One id in two folders: neither loads (a dropped-in copy must not shadow the other).
        let compat = install_plugin(&plugins, "compat");
        let dup = plugins.join("zz-duplicate");
        std::fs::create_dir_all(&dup).expect("dir");
        for entry in std::fs::read_dir(&compat).expect("read") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), dup.join(entry.file_name())).expect("copy");
        }
        // Built for a WIT this host cannot load.
        let future = plugins.join("future");
        std::fs::create_dir_all(&future).expect("dir");
        std::fs::write(
            future.join("plugin.toml"),
            "id = \"future\"\nkind = \"exporter\"\nversion = \"1.0.0\"\nwit = \"0.9.0\"\ncomponent = \"f.wasm\"\n",
        )
        .expect("write");

        let server = builder.start().await;
        let (status, list) = server.get("/api/plugins").await;
        assert_eq!(status, 200, "{list}");

        let openai = plugin(&list, "openai");
        assert_eq!(openai["state"], "loaded", "{openai}");
        assert_eq!(openai["kind"], "llm-provider");
        assert_eq!(openai["wit_version"], "0.1.3");
        assert_eq!(openai["granted_hosts"], json!(["https://api.openai.com"]));
        assert_eq!(openai["info"]["default_model"], "gpt-4o");
        assert_eq!(plugin(&list, "markdown")["state"], "loaded");

        let failed = |id: &str, needle: &str| {
            let p = plugin(&list, id);
            assert_eq!(p["state"], "failed", "{p}");
            let reason = p["reason"].as_str().expect("reason");
            assert!(reason.contains(needle), "{id}: {reason:?} lacks {needle:?}");
        };
        failed("chaos", "not a valid WebAssembly component");
        failed("bad-manifest", "plugin.toml is not valid");
        failed("empty", "cannot read");
        failed("wrong", "does not implement the llm-provider world");
        failed("future", "WIT 0.9.0");
        let dups: Vec<&Value> = list["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|p| p["id"] == "compat")
            .collect();
        assert_eq!(dups.len(), 2, "both compat folders are reported");
        for dup in dups {
            assert_eq!(dup["state"], "failed", "{dup}");
            assert!(
                dup["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("claimed by several folders")),
                "{dup}"
            );
        }

        // One plugin by id; ids are validated before anything is looked up.
        let (status, one) = server.get("/api/plugins/markdown").await;
        assert_eq!(status, 200);
        assert_eq!(one["data"]["info"]["formats"][0]["format"], "markdown");
        assert_eq!(
            one["data"]["info"]["serves"],
            json!(["interactions.markdown", "scene.markdown", "story.markdown"])
        );
        let (status, body) = server.get("/api/plugins/nope").await;
        assert_eq!(status, 404);
        assert_envelope_error(&body, "RESOURCE_NOT_FOUND");
        let (status, body) = server.get("/api/plugins/..%2Fetc").await;
        assert_eq!(status, 400, "{body}");
        assert_envelope_error(&body, "BAD_REQUEST");
        let (status, _) = server
            .get(&format!("/api/plugins/{}", "a".repeat(300)))
            .await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn restart_uses_the_compile_cache_and_shutdown_is_graceful() {
    let cache = tempfile::tempdir().expect("cache dir");
    let mut builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .plugin("markdown");
    builder.compile_cache = Some(cache.path().to_path_buf());
    let mut server = builder.start().await;
    let (_, first) = server.get("/api/plugins").await;
    for p in first["data"].as_array().expect("list") {
        assert_eq!(p["compile_cache"], "miss", "{p}");
    }
    server.restart().await;
    let (_, second) = server.get("/api/plugins").await;
    for p in second["data"].as_array().expect("list") {
        assert_eq!(p["state"], "loaded");
        assert_eq!(
            p["compile_cache"], "hit",
            "second start must not recompile: {p}"
        );
    }
    // SIGTERM: in-flight work finishes and the process exits 0.
    let slow = server.http.get(server.url("/api/config/health")).send();
    let (response, stopped) = tokio::join!(slow, async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        server.stop()
    });
    assert!(stopped, "server exits cleanly on SIGTERM");
    assert_eq!(response.expect("request before shutdown").status(), 200);
}

#[tokio::test]
async fn the_server_starts_with_no_plugins_folder() {
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    let (status, list) = server.get("/api/plugins").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn cors_allows_exact_origins_only() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config(
            "[http]\nallowed_origins = [\"https://story.example.com\"]\n[auth]\nguest_mode = false",
        )
        .start()
        .await;
    let ask = |origin: &'static str, method: reqwest::Method| {
        server
            .http
            .request(method, server.url("/api/config/health"))
            .header("origin", origin)
            .send()
    };
    let ok = ask("https://story.example.com", reqwest::Method::GET)
        .await
        .expect("get");
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://story.example.com"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    assert!(ok.headers().get_all("vary").iter().any(|v| v == "Origin"));
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    for look_alike in [
        "https://story.example.com.attacker.net",
        "http://story.example.com",
        "https://story.example.com:8443",
        "http://localhost:5173",
        "null",
    ] {
        let response = server
            .http
            .get(server.url("/api/config/health"))
            .header("origin", look_alike)
            .send()
            .await
            .expect("get");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{look_alike} must not be allowed"
        );
    }
    // A preflight on any path is answered before authentication.
    let preflight = ask("https://story.example.com", reqwest::Method::OPTIONS)
        .await
        .expect("options");
    assert_eq!(preflight.status(), 204);
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .is_ok_and(|m| m.contains("PUT"))
    );
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/api/plugins"))
        .header("origin", "https://story.example.com")
        .send()
        .await
        .expect("options");
    assert_eq!(preflight.status(), 204, "no 401 on a preflight");
}

#[tokio::test]
async fn rate_limits_count_per_client_and_ignore_spoofed_headers() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[rate_limits]\ndefault = { limit = 5, window_secs = 60 }")
        .start()
        .await;
    let get = |headers: &[(&str, &str)]| {
        let mut request = server.http.get(server.url("/api/plugins"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    for i in 0..5 {
        let response = get(&[]).await.expect("get");
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(response.headers()["x-ratelimit-limit"], "5");
        assert_eq!(
            response.headers()["x-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let denied = get(&[]).await.expect("get");
    assert_eq!(denied.status(), 429);
    let retry: u64 = denied.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(denied.headers()["x-ratelimit-remaining"], "0");
    let (_, body) = decode(denied).await;
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(body["error"]["message"], "Rate limit exceeded");
    assert_eq!(
        body["error"]["details"],
        format!("Retry after {retry} seconds")
    );

    // Headers a client controls do not pick another bucket.
    for spoof in [
        ("x-forwarded-for", "198.51.100.7"),
        ("x-real-ip", "198.51.100.8"),
        ("x-user-id", "someone-else"),
    ] {
        let response = get(&[spoof]).await.expect("get");
        assert_eq!(response.status(), 429, "{spoof:?} escaped the limit");
    }
    // Every /api route draws on the same default bucket.
    let (status, _) = server.get("/api/config/health").await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn prometheus_metrics_cover_requests_jobs_and_plugin_calls() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("chaos")
        .config("[jobs]\ndiagnostics = true")
        .start()
        .await;
    server.get("/api/plugins").await;
    server.get("/api/plugins/chaos").await;
    server.get("/api/nowhere").await;
    let probe = |model: &str| json!({"provider": "chaos", "llm_config": {"default_model": model}});
    let (status, _) = server
        .post("/api/settings/test-connection", &probe("echo"))
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post("/api/settings/test-connection", &probe("trap"))
        .await;
    assert_eq!(status, 503);
    let (status, body) = server
        .post("/api/jobs/diagnostics", &json!({"steps": 1, "step_ms": 1}))
        .await;
    assert_eq!(status, 202, "{body}");
    let task = body["data"]["task_id"].as_str().expect("task").to_string();
    for _ in 0..100 {
        let (_, job) = server.get(&format!("/api/jobs/{task}")).await;
        if job["data"]["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/openmetrics-text"))
    );
    let text = response.text().await.expect("text");
    for needle in [
        r#"sceneintruder_http_requests_total{route="/api/plugins",method="GET",status="200"} 1"#,
        // Route templates, not raw paths: ids never become labels.
        r#"sceneintruder_http_requests_total{route="/api/plugins/{id}",method="GET",status="200"} 1"#,
        r#"sceneintruder_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        r#"sceneintruder_http_request_duration_seconds_bucket{le="#,
        r#"sceneintruder_jobs{kind="diagnostics.countdown",state="completed"} 1"#,
        r#"sceneintruder_plugin_calls{plugin="chaos"} 3"#,
        r#"sceneintruder_plugin_call_failures{plugin="chaos"} 1"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

/// Every manifest in the repository (bundled, example and test plugins) matches the published
/// manifest schema, and the schema refuses what the server refuses.
#[test]
fn manifests_match_the_published_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("docs/plugins/plugin.schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let mut checked = 0;
    for folder in ["plugins", "examples/plugins", "tests/plugins"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path().join("plugin.toml");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let manifest: toml::Value = toml::from_str(&text).expect("TOML");
            let manifest = serde_json::to_value(manifest).expect("as JSON");
            let errors: Vec<String> = validator
                .iter_errors(&manifest)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 18, "only {checked} manifests found");
    for bad in [
        json!({"id": "Bad", "kind": "exporter", "version": "0.1.0", "wit": "0.1.2", "component": "x.wasm"}),
        json!({"id": "ok", "kind": "nope", "version": "0.1.0", "wit": "0.1.2", "component": "x.wasm"}),
        json!({"id": "ok", "kind": "exporter", "version": "0.1.0", "wit": "0.1.2", "component": "../x.wasm"}),
        json!({"id": "ok", "kind": "exporter", "version": "0.1.0", "wit": "0.1.2", "component": "x.wasm", "extra": 1}),
        json!({"id": "ok", "kind": "exporter", "version": "0.1.0", "wit": "0.1.2", "component": "x.wasm",
               "config": {"api_key": {"secret": true, "default": "sk-x"}}}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}
