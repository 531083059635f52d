//! Live plugins through the real binary (issue 21 part 1): the server follows plugin folders
//! that are added, changed, broken and removed, without a restart; a call in flight finishes
//! on the version it started with; plugins load in parallel under one deadline; listings
//! show what is granted now and never one folder's plugin under another's entry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sceneintruder_tests::fake::{FakeVendor, Reply};
use sceneintruder_tests::{Backend, Server, ServerBuilder, install_plugin, set_requested_hosts};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn plugins_dir(server: &Server) -> PathBuf {
    server.data_dir.path().join("plugins")
}

fn entry<'a>(list: &'a Value, folder: &str) -> &'a Value {
    list["data"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["folder"] == folder))
        .unwrap_or(&Value::Null)
}

/// The next `plugins:changed` message on the socket (other messages are skipped).
async fn next_change(socket: &mut Socket) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next())
            .await
            .expect("plugins:changed within 20 s")
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if message["type"] == "plugins:changed" {
                return message;
            }
        }
    }
}

/// Set (or replace) one key of a plugin manifest's top level, e.g. its version.
fn set_manifest_key(folder: &Path, key: &str, value: &str) {
    let path = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut doc: toml::Table = toml::from_str(&text).expect("TOML");
    doc.insert(key.into(), toml::Value::String(value.into()));
    std::fs::write(&path, toml::to_string(&doc).expect("render")).expect("write");
}

/// Set manifest defaults of an installed `chaos` copy (its `info()` reads them).
fn set_defaults(folder: &Path, values: &[(&str, &str)]) {
    let path = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut doc: toml::Table = toml::from_str(&text).expect("TOML");
    let config = doc
        .get_mut("config")
        .and_then(|c| c.as_table_mut())
        .expect("config table");
    for (key, value) in values {
        let entry = config
            .get_mut(*key)
            .and_then(|e| e.as_table_mut())
            .expect("declared key");
        entry.insert("default".into(), toml::Value::String(value.to_string()));
    }
    std::fs::write(&path, toml::to_string(&doc).expect("render")).expect("write");
}

fn formats_of(list: &Value, plugin: &str) -> usize {
    list["data"]
        .as_array()
        .map(|pairs| pairs.iter().filter(|p| p["plugin"] == plugin).count())
        .unwrap_or(0)
}

/// Added, changed, broken, then removed: each is picked up by the watcher, announced to every
/// socket as `plugins:changed`, and reflected in the plugin and export listings. A broken
/// update leaves the previous version serving, with the reason shown.
#[tokio::test]
async fn the_server_follows_the_plugins_folder_without_a_restart() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("chaos")
        .config("plugin_reload_debounce_ms = 200")
        .start()
        .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/user/status"))
        .await
        .expect("websocket connects");
    let (_, formats) = server.get("/api/exports/formats").await;
    assert_eq!(formats_of(&formats, "markdown"), 0, "{formats}");

    // Added.
    let folder = install_plugin(&plugins_dir(&server), "markdown");
    let change = next_change(&mut socket).await;
    assert_eq!(change["added"], json!(["markdown"]), "{change}");
    let (status, shown) = server.get("/api/plugins/markdown").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["data"]["state"], "loaded", "{shown}");
    assert!(shown["data"]["info"]["formats"].is_array(), "{shown}");
    let (_, formats) = server.get("/api/exports/formats").await;
    assert!(formats_of(&formats, "markdown") > 0, "{formats}");

    // Changed.
    set_manifest_key(&folder, "version", "0.1.1");
    let change = next_change(&mut socket).await;
    assert_eq!(change["changed"], json!(["markdown"]), "{change}");
    let (_, shown) = server.get("/api/plugins/markdown").await;
    assert_eq!(shown["data"]["version"], "0.1.1", "{shown}");

    // Broken: the previous version keeps serving, and says why the new one did not load.
    let component = std::fs::read_dir(&folder)
        .expect("folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "wasm"))
        .expect("a component");
    std::fs::write(&component, b"not a component").expect("break it");
    let change = next_change(&mut socket).await;
    assert_eq!(change["failed"][0]["id"], "markdown", "{change}");
    assert_eq!(change["failed"][0]["previous_serving"], true, "{change}");
    let (_, shown) = server.get("/api/plugins/markdown").await;
    assert_eq!(shown["data"]["state"], "loaded", "{shown}");
    assert_eq!(shown["data"]["version"], "0.1.1", "{shown}");
    let reason = shown["data"]["reload_error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("not a valid WebAssembly component"),
        "{shown}"
    );
    let (_, formats) = server.get("/api/exports/formats").await;
    assert!(formats_of(&formats, "markdown") > 0, "{formats}");

    // Removed.
    std::fs::remove_dir_all(&folder).expect("remove");
    let change = next_change(&mut socket).await;
    assert_eq!(change["removed"], json!(["markdown"]), "{change}");
    let (status, _) = server.get("/api/plugins/markdown").await;
    assert_eq!(status, 404);
    let (_, formats) = server.get("/api/exports/formats").await;
    assert_eq!(formats_of(&formats, "markdown"), 0, "{formats}");
    // The plugin that never changed is untouched.
    let (_, shown) = server.get("/api/plugins/chaos").await;
    assert_eq!(shown["data"]["state"], "loaded", "{shown}");
}

/// A reload while a call is running: the call finishes on the version it started with, the
/// next call runs on the new one. Reloading is an admin's action.
#[tokio::test]
async fn a_call_in_flight_finishes_on_the_version_it_started_with() {
    let vendor = FakeVendor::start(|_| Reply {
        chunks: vec![b"slow ".to_vec(), b"answer".to_vec()],
        chunk_delay: Duration::from_millis(1500),
        ..Reply::text(200, "")
    })
    .await;
    let builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("chaos")
        .config("watch_plugins = false");
    let folder = builder.plugins_dir().join("chaos");
    set_requested_hosts(&folder, std::slice::from_ref(&vendor.base));
    let server = builder
        .config(&format!(
            "[plugins.chaos]\nallow_hosts = [\"{}\"]",
            vendor.base
        ))
        .start()
        .await;
    let model = format!("fetch:{}/slow", vendor.base);
    let probe =
        json!({"provider": "chaos", "llm_config": {"default_model": model, "api_key": "k"}});
    let call = server.post("/api/settings/test-connection", &probe);
    let swap = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        set_manifest_key(&folder, "version", "0.2.0");
        server.post("/api/plugins/reload", &json!({})).await
    };
    let ((status, body), (reload_status, reload)) = tokio::join!(call, swap);
    assert_eq!(reload_status, 200, "{reload}");
    assert_eq!(reload["data"]["changed"], json!(["chaos"]), "{reload}");
    assert_eq!(status, 200, "the call in flight finished: {body}");
    assert_eq!(body["data"]["test"], "passed", "{body}");
    assert_eq!(vendor.requests().len(), 1);
    let (_, shown) = server.get("/api/plugins/chaos").await;
    assert_eq!(shown["data"]["version"], "0.2.0", "{shown}");
    let (status, body) = server
        .post(
            "/api/settings/test-connection",
            &json!({"provider": "chaos", "llm_config": {"default_model": "echo", "api_key": "k"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Nothing changed: an empty summary. A signed-in non-admin may not reload.
    let (_, again) = server.post("/api/plugins/reload", &json!({})).await;
    assert_eq!(
        again["data"],
        json!({"added": [], "changed": [], "removed": [], "failed": []})
    );
    let token = server.new_user_token("writer").await;
    let (status, body) = server
        .send_as(
            Some(&token),
            reqwest::Method::POST,
            "/api/plugins/reload",
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
}

/// Four plugins whose `info()` never returns: each is `failed` at the load deadline, and
/// because plugins load side by side, start-up waits for about one deadline, not four.
#[tokio::test]
async fn plugins_load_in_parallel_under_one_deadline() {
    const DEADLINE_MS: u64 = 1500;
    let builder = ServerBuilder::new(Backend::Sqlite)
        .config(&format!("[limits]\nload_timeout_ms = {DEADLINE_MS}"));
    let dir = builder.plugins_dir();
    for n in 1..=4 {
        let id = format!("spinner-{n}");
        let folder = install_plugin(&dir, "chaos");
        let renamed = dir.join(&id);
        std::fs::rename(&folder, &renamed).expect("rename");
        set_manifest_key(&renamed, "id", &id);
        set_defaults(&renamed, &[("info_id", &id), ("info_spin", "true")]);
    }
    install_plugin(&dir, "chaos");
    let started = Instant::now();
    let server = builder.start().await;
    let elapsed = started.elapsed();
    let (_, list) = server.get("/api/plugins").await;
    for n in 1..=4 {
        let spinner = entry(&list, &format!("spinner-{n}"));
        assert_eq!(spinner["state"], "failed", "{list}");
        let reason = spinner["reason"].as_str().unwrap_or_default();
        assert!(reason.starts_with("info() failed"), "{reason}");
    }
    assert_eq!(entry(&list, "chaos")["state"], "loaded", "{list}");
    // Loaded one after another they would take four deadlines (6 s) before the first answer.
    assert!(
        elapsed < Duration::from_millis(3 * DEADLINE_MS),
        "start-up took {elapsed:?} with four spinning plugins"
    );
}

/// `granted_hosts` is what the plugin may reach now: a base URL saved through the settings
/// API shows up without a restart.
#[tokio::test]
async fn granted_hosts_are_the_grants_in_force_now() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .start()
        .await;
    let (_, shown) = server.get("/api/plugins/openai").await;
    assert_eq!(
        shown["data"]["granted_hosts"],
        json!(["https://api.openai.com"]),
        "{shown}"
    );
    let (status, body) = server
        .post(
            "/api/settings",
            &json!({
                "llm_provider": "openai",
                "llm_config": {"api_key": "sk-test", "base_url": "http://127.0.0.1:9/v1"},
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, shown) = server.get("/api/plugins/openai").await;
    let granted = shown["data"]["granted_hosts"].to_string();
    assert!(granted.contains("http://127.0.0.1:9"), "{shown}");
}

/// A look-alike dropped in beside a serving plugin (same id, another folder) loads from
/// neither: the plugin already serving keeps serving, and its info is never shown under the
/// look-alike's entry.
#[tokio::test]
async fn a_look_alike_never_shows_the_serving_plugins_info() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("chaos")
        .config("watch_plugins = false")
        .start()
        .await;
    let copy = plugins_dir(&server).join("zz-chaos-copy");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for file in std::fs::read_dir(plugins_dir(&server).join("chaos")).expect("read") {
        let file = file.expect("entry");
        std::fs::copy(file.path(), copy.join(file.file_name())).expect("copy");
    }
    set_manifest_key(&copy, "name", "Impostor");
    let (status, reload) = server.post("/api/plugins/reload", &json!({})).await;
    assert_eq!(status, 200, "{reload}");
    let failed = reload["data"]["failed"].to_string();
    assert!(failed.contains("claimed by several folders"), "{reload}");

    let (_, list) = server.get("/api/plugins").await;
    let real = entry(&list, "chaos");
    assert_eq!(real["state"], "loaded", "{list}");
    assert_eq!(real["name"], "Chaos", "{list}");
    assert!(real["info"]["models"].is_array(), "{list}");
    let impostor = entry(&list, "zz-chaos-copy");
    assert_eq!(impostor["state"], "failed", "{list}");
    assert_eq!(impostor["info"], Value::Null, "{list}");
    let (_, shown) = server.get("/api/plugins/chaos").await;
    assert_eq!(shown["data"]["folder"], "chaos", "{shown}");
    assert_eq!(shown["data"]["name"], "Chaos", "{shown}");
    let (status, body) = server
        .post(
            "/api/settings/test-connection",
            &json!({"provider": "chaos", "llm_config": {"default_model": "echo", "api_key": "k"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
