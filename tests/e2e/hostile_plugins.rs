//! Hostile plugins through the real binary (issue 21 part 2): what a plugin declares about
//! itself is bounded, so a plugin cannot bloat every settings and plugin listing.

use sceneintruder_tests::{Backend, ServerBuilder};
use serde_json::Value;

/// Set manifest defaults of the installed `chaos` plugin (its `info()` reads them).
fn set_defaults(folder: &std::path::Path, values: &[(&str, &str)]) {
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

fn chaos(list: &Value) -> Value {
    list["data"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "chaos"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A catalog of 100,000 models, a model id with terminal escapes, a 10,000-character id: each
/// makes the plugin `failed` with the reason; the server starts and its listings stay small.
#[tokio::test]
async fn oversized_or_unprintable_catalogs_fail_the_plugin() {
    for (size, style, reason) in [
        ("100000", "plain", "at most 1000"),
        ("1", "control", "control characters"),
        ("1", "long", "longer than 128"),
    ] {
        let builder = ServerBuilder::new(Backend::Sqlite).plugin("chaos");
        set_defaults(
            &builder.plugins_dir().join("chaos"),
            &[("catalog_size", size), ("catalog_style", style)],
        );
        let server = builder.start().await;
        let (status, list) = server.get("/api/plugins").await;
        assert_eq!(status, 200, "{list}");
        let plugin = chaos(&list);
        assert_eq!(plugin["state"], "failed", "{style}: {plugin}");
        assert!(
            plugin["reason"].as_str().unwrap_or("").contains(reason),
            "{style}: {plugin}"
        );
        let (status, body) = server.get("/api/settings").await;
        assert_eq!(status, 200);
        assert!(
            body.to_string().len() < 256 * 1024,
            "{style}: settings stay small"
        );
    }
    // A small catalog loads.
    let builder = ServerBuilder::new(Backend::Sqlite).plugin("chaos");
    set_defaults(
        &builder.plugins_dir().join("chaos"),
        &[("catalog_size", "3")],
    );
    let server = builder.start().await;
    let (_, list) = server.get("/api/plugins").await;
    assert_eq!(chaos(&list)["state"], "loaded", "{list}");
}

/// A plugin that floods its log: at most 100 lines per call reach the server's log, each
/// escaped (no forged records from embedded newlines, no terminal escapes), then one summary
/// line with the count of dropped lines; the call itself works.
#[tokio::test]
async fn a_log_flood_is_capped_and_escaped() {
    let server = sceneintruder_tests::chaos_server(&[], "").await;
    let (status, body) = server
        .post(
            "/api/settings/test-connection",
            &serde_json::json!({"provider": "chaos", "llm_config": {"default_model": "logs:100000"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The server writes its log from a background thread: wait for the call's last line.
    let summary = |log: &str| {
        log.lines()
            .any(|l| l.contains("plugin log lines dropped") && l.contains("99900"))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut log = server.log_text();
    while !summary(&log) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        log = server.log_text();
    }
    let written = log
        .lines()
        .filter(|l| l.contains("line ") && l.contains("forged record"))
        .count();
    assert_eq!(written, 100, "lines kept");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z ERROR forged")),
        "an embedded newline never starts a record of its own"
    );
    assert!(!log.contains('\u{1b}'), "no terminal escapes reach the log");
    assert!(!log.contains('\r'), "no carriage returns reach the log");
    assert!(summary(&log), "one summary line with the count");
    assert!(log.len() < 1024 * 1024, "{} bytes of log", log.len());
}
