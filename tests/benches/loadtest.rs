//! Read-path load test against the release binary: `cargo xtask loadtest`.
//!
//! Builds a fixture through the API (3 scenes, each with 5 characters, 5 items and 50
//! conversation lines) against a loopback fake LLM, then drives `wrk` (Debian's package) at
//! 32 connections for each read route, as a guest and with a Bearer token, and prints req/s,
//! p50 and p99. Rate limits are lifted so the server, not the limiter, is measured.
//!
//! Environment: `LOADTEST_SECONDS` (per route, default 10), `LOADTEST_CONNECTIONS` (32),
//! `LOADTEST_THREADS` (2), `LOADTEST_CONFIG` (appended to the server's config file, e.g.
//! `[cache]\nmax_bytes = 0` to measure the uncached path), `LOADTEST_ROUTES` (only routes whose
//! name contains one of these comma-separated strings, e.g. `GET /api/scenes ,aggregate`),
//! `LOADTEST_WHO` (`guest` or `token` only), `SCENEINTRUDER_BIN` (the release binary, set by
//! xtask).

use std::process::Command;

use reqwest::Method;
use sceneintruder_tests::fake::{FakeVendor, Recorded};
use sceneintruder_tests::story_model::completion;
use sceneintruder_tests::{Backend, Server, ServerBuilder};
use serde_json::{Value, json};

const CHARACTERS: [&str; 5] = ["Lin Chen", "Su Wan", "Old Ma", "Captain Ye", "Little Bo"];
const SCENES: usize = 3;
const ITEMS: usize = 5;
/// Chat turns per scene; each stores two lines.
const TURNS: usize = 25;

/// A fake model: scene analysis finds the five characters; chat replies are plain prose.
async fn model() -> FakeVendor {
    FakeVendor::start(|req: &Recorded| {
        let body = req.json();
        let system = body["messages"][0]["content"].as_str().unwrap_or_default();
        if system.contains("interactive story") {
            let characters: Vec<Value> = CHARACTERS
                .iter()
                .map(|name| {
                    json!({"name": name, "aliases": [], "role": "townsfolk",
                           "description": format!("{name}, who knows the harbour well"),
                           "personality": "wary", "background": "grew up by the sea",
                           "speech_style": "short sentences", "relationships": {}, "knowledge": []})
                })
                .collect();
            let analysis = json!({
                "summary": "Five people wait for a ship that does not come.",
                "scenes": [{"name": "Foggy harbour", "description": "A harbour town under fog",
                            "atmosphere": "tense", "era": "1920s", "themes": ["mystery"],
                            "items": [], "importance": "high"}],
                "characters": characters, "items": [], "locations": []
            });
            completion(&analysis.to_string())
        } else if system.contains("summaries of consecutive parts") {
            completion(r#"{"summary": "Five people wait for a ship."}"#)
        } else {
            completion(
                "The fog has not lifted since Tuesday. I keep the lamp lit and count the \
                 crates twice, because the numbers never agree with the harbour master's book.",
            )
        }
    })
    .await
}

/// The fixture, owned by the holder of `token` (the guest without one).
async fn fixture(server: &Server, token: Option<&str>) -> (Vec<String>, Vec<String>) {
    let post = |path: String, body: Value| async move {
        server
            .send_as(token, Method::POST, &path, Some(&body))
            .await
    };
    let mut scenes = Vec::new();
    let mut characters = Vec::new();
    for n in 0..SCENES {
        let text = format!(
            "Part {n}. Fog over the harbour. {} wait on the pier for the ship.",
            CHARACTERS.join(", ")
        );
        let (status, body) = post(
            "/api/scenes".into(),
            json!({"title": format!("Harbour {n}"), "text": text}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["id"].as_str().expect("scene id").to_string();
        for i in 0..ITEMS {
            let (status, body) = post(
                format!("/api/scenes/{id}/items"),
                json!({"name": format!("crate {i}"), "description": "salt-stained wood",
                       "type": "container"}),
            )
            .await;
            assert!(status == 200 || status == 201, "{body}");
        }
        let (_, body) = server
            .send_as(
                token,
                Method::GET,
                &format!("/api/scenes/{id}/characters"),
                None,
            )
            .await;
        let ids: Vec<String> = body["data"]
            .as_array()
            .expect("characters")
            .iter()
            .filter_map(|c| c["id"].as_str().map(String::from))
            .collect();
        assert_eq!(ids.len(), CHARACTERS.len(), "{body}");
        for turn in 0..TURNS {
            let character = &ids[turn % ids.len()];
            let (status, body) = post(
                "/api/chat".into(),
                json!({"scene_id": id, "character_id": character,
                       "message": format!("Question {turn}: what did you see last night?")}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        characters.push(ids[0].clone());
        scenes.push(id);
    }
    (scenes, characters)
}

/// Every bundled plugin (as `cargo xtask run` installs them).
/// Every plugin `plugins/bundled.toml` lists, as `cargo xtask run` installs them.
fn bundled_plugins(mut builder: ServerBuilder) -> ServerBuilder {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let list = std::fs::read_to_string(root.join("plugins/bundled.toml")).expect("bundled.toml");
    let list: toml::Value = toml::from_str(&list).expect("bundled.toml is TOML");
    let crates = list["crates"].as_array().expect("crates");
    for dir in crates.iter().filter_map(|c| c.as_str()) {
        let manifest =
            std::fs::read_to_string(root.join(dir).join("plugin.toml")).expect("manifest");
        let manifest: toml::Value = toml::from_str(&manifest).expect("manifest is TOML");
        let id = manifest["id"].as_str().expect("id");
        builder = builder.plugin(id);
    }
    builder
}

/// Resident memory of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Outcome {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// `wrk --latency` figures, in milliseconds.
fn parse_wrk(text: &str) -> Option<Outcome> {
    let ms = |value: &str| -> Option<f64> {
        let value = value.trim();
        let (number, factor) = if let Some(v) = value.strip_suffix("us") {
            (v, 0.001)
        } else if let Some(v) = value.strip_suffix("ms") {
            (v, 1.0)
        } else if let Some(v) = value.strip_suffix('s') {
            (v, 1000.0)
        } else {
            (value, 1.0)
        };
        number.parse::<f64>().ok().map(|n| n * factor)
    };
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Some(Outcome {
        rps: field("Requests/sec:")?.parse().ok()?,
        p50_ms: ms(field("50%")?)?,
        p99_ms: ms(field("99%")?)?,
        errors,
    })
}

fn wrk(url: &str, token: Option<&str>) -> Outcome {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let mut cmd = Command::new("wrk");
    cmd.args([
        "--latency",
        "-t",
        &env("LOADTEST_THREADS", "2"),
        "-c",
        &env("LOADTEST_CONNECTIONS", "32"),
        "-d",
        &format!("{}s", env("LOADTEST_SECONDS", "10")),
    ]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk runs (cargo xtask loadtest installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).unwrap_or_else(|| panic!("cannot read wrk's output:\n{text}"))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let vendor = rt.block_on(model());
    let limits = "[rate_limits]\ndefault = { limit = 1000000000, window_secs = 60 }\n\
                  chat = { limit = 1000000000, window_secs = 60 }\n\
                  analysis = { limit = 1000000000, window_secs = 60 }";
    let server = rt.block_on(
        bundled_plugins(ServerBuilder::new(Backend::Sqlite))
            .config(&format!(
                "[llm]\nprovider = \"openai\"\nmax_attempts = 1\n[plugins.openai.settings]\nbase_url = \"{}/v1\"\n{limits}",
                vendor.base
            ))
            .config(&std::env::var("LOADTEST_CONFIG").unwrap_or_default())
            .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-loadtest")
            .env("SCENEINTRUDER_LOG", "info,sqlx=warn,wasmtime=warn,cranelift=warn")
            .start(),
    );
    // Idle memory, every bundled plugin loaded, before any request.
    std::thread::sleep(std::time::Duration::from_secs(1));
    if let Some(rss) = server.pid().and_then(rss_kib) {
        println!("idle resident memory: {:.1} MiB", rss as f64 / 1024.0);
    }
    let token = rt.block_on(server.new_user_token("loadtest"));
    // The token holder reads its own copy of the fixture; the guest reads the guest's.
    let (guest_scenes, guest_characters) = rt.block_on(fixture(&server, None));
    let (user_scenes, user_characters) = rt.block_on(fixture(&server, Some(&token)));

    println!(
        "\n{:<40} {:>8} {:>12} {:>9} {:>9} {:>7}",
        "route", "who", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for (who, token, scenes, characters) in [
        ("guest", None, &guest_scenes, &guest_characters),
        (
            "token",
            Some(token.as_str()),
            &user_scenes,
            &user_characters,
        ),
    ] {
        let scene = &scenes[1];
        let routes = [
            (
                "GET /api/scenes/{id}".to_string(),
                format!("/api/scenes/{scene}"),
            ),
            ("GET /api/scenes".to_string(), "/api/scenes".to_string()),
            (
                "GET /api/scenes/{id}/characters".to_string(),
                format!("/api/scenes/{scene}/characters"),
            ),
            (
                "GET /api/scenes/{id}/conversations".to_string(),
                format!("/api/scenes/{scene}/conversations"),
            ),
            (
                "GET /api/scenes/{id}/aggregate".to_string(),
                format!("/api/scenes/{scene}/aggregate"),
            ),
            (
                "GET /api/scenes/{id}/characters/{cid}".to_string(),
                format!("/api/scenes/{scene}/characters/{}", characters[1]),
            ),
        ];
        let wanted = |name: &str| match std::env::var("LOADTEST_ROUTES") {
            Ok(list) if !list.is_empty() => list.split(',').any(|w| name.contains(w)),
            _ => true,
        };
        if std::env::var("LOADTEST_WHO").is_ok_and(|w| !w.is_empty() && w != who) {
            continue;
        }
        for (name, path) in routes {
            if !wanted(&(name.clone() + " ")) {
                continue;
            }
            let outcome = wrk(&server.url(&path), token);
            println!(
                "{:<40} {:>8} {:>12.0} {:>9.2} {:>9.2} {:>7}",
                name, who, outcome.rps, outcome.p50_ms, outcome.p99_ms, outcome.errors
            );
        }
    }
    if let Some(rss) = server.pid().and_then(rss_kib) {
        println!(
            "resident memory after the load: {:.1} MiB",
            rss as f64 / 1024.0
        );
    }
    drop(server);
    drop(vendor);
}
