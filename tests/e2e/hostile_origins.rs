//! Hostile plugins and where they may go (issue 21 part 2), through the real binary: never to
//! the server they run in, never to a manifest's default origin once the operator chose a base
//! URL, not past a log budget per minute, not into API error details with a megabyte of
//! terminal escapes, and nowhere at all from `info()` at load.

use std::time::{Duration, Instant};

use sceneintruder_runtime::llm::{CompletionRequest, Message, Reasoning, ResponseFormat, Role};
use sceneintruder_runtime::{CallError, OperatorSettings};
use sceneintruder_tests::fake::{FakeVendor, Reply};
use sceneintruder_tests::{
    Backend, RuntimeFixture, Server, ServerBuilder, chaos_server, error_details,
    set_requested_hosts,
};
use serde_json::{Value, json};

const KEY: &str = "sk-origin-test-41c7";

/// Set manifest defaults of an installed `chaos` plugin (keys it declares).
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

async fn probe(server: &Server, config: Value) -> (u16, Value) {
    server
        .post(
            "/api/settings/test-connection",
            &json!({"provider": "chaos", "llm_config": config}),
        )
        .await
}

fn chaos_report(list: &Value) -> Value {
    list["data"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "chaos"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Guest mode makes the server's API an administrator's to loopback callers, so a plugin that
/// is pointed at the server (here by a saved base URL, and by a caller's) must not reach it:
/// not by its address, not by a name that resolves to it.
#[tokio::test]
async fn a_plugin_never_reaches_the_server_it_runs_in() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let server = chaos_server(&[], "").await;
    let own = server.base.clone();
    let port = own.rsplit(':').next().expect("port").to_string();
    let by_name = format!("http://localhost:{port}");

    for base in [own.clone(), by_name.clone()] {
        let (status, body) = server
            .post(
                "/api/settings",
                &json!({"llm_provider": "chaos", "llm_config": {"base_url": base}}),
            )
            .await;
        assert_eq!(status, 200, "the operator may save any base URL: {body}");

        // Reading: the guest API would answer 200.
        let (status, body) = probe(
            &server,
            json!({"default_model": format!("get:{base}/api/scenes")}),
        )
        .await;
        assert_eq!(status, 503, "{base}: {body}");
        assert!(
            error_details(&body).contains("this server's own address"),
            "{base}: {body}"
        );

        // Writing: the guest API would take the change.
        let (status, body) = probe(
            &server,
            json!({"default_model": format!("reconfigure:{base}")}),
        )
        .await;
        assert_eq!(status, 503, "{base}: {body}");
        assert!(
            error_details(&body).contains("this server's own address"),
            "{base}: {body}"
        );
        let (_, settings) = server.get("/api/settings").await;
        assert_ne!(
            settings["data"]["llm_config"]["default_model"], "reconfigured-by-plugin",
            "{settings}"
        );

        // A caller's temporary base URL at the server is refused the same way.
        let (status, body) = probe(
            &server,
            json!({"base_url": base, "default_model": format!("get:{base}/api/config/health")}),
        )
        .await;
        assert_eq!(status, 503, "{base}: {body}");
        assert!(
            error_details(&body).contains("this server's own address"),
            "{base}: {body}"
        );
    }

    // Another service on this machine stays reachable.
    let (status, body) = probe(
        &server,
        json!({"base_url": vendor.base, "default_model": format!("get:{}/v1/ping", vendor.base)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vendor.requests().len(), 1);
    assert!(
        settled_log(&server)
            .await
            .contains("refused a plugin connection to this server's own address"),
        "the refusal is logged"
    );
}

fn request(model: &str) -> CompletionRequest {
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

/// The same rule in the runtime, where the port is known before the plugin is loaded: a
/// manifest whose default base URL (and request) names the server's address, granted by the
/// operator too, still cannot reach it once the runtime is told where the server listens.
/// (A fake plays the server; the setting is process-wide, and only its port is refused.)
#[tokio::test]
async fn neither_manifest_nor_operator_can_grant_the_servers_address() {
    let pretend_server = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let origin = pretend_server.base.clone();
    let by_name = format!("http://localhost:{}", pretend_server.port);
    let both = [origin.clone(), by_name.clone()];
    let fixture = RuntimeFixture::new(&["chaos"]);
    set_requested_hosts(&fixture.folder("chaos"), &both);
    set_defaults(&fixture.folder("chaos"), &[("base_url", &origin)]);
    let load = || {
        fixture.load(
            Default::default(),
            std::collections::BTreeMap::from([(
                "chaos".to_string(),
                OperatorSettings {
                    allow_hosts: both.to_vec(),
                    ..Default::default()
                },
            )]),
        )
    };
    let before = load().await;
    let reply = before
        .llm("chaos")
        .expect("chaos loaded")
        .complete(&request(&format!("get:{origin}/before")), None)
        .await
        .expect("reachable while it is not the server");
    assert!(reply.text.starts_with("status=200"), "{}", reply.text);
    drop(before);

    // The server sets its addresses once bound, before any plugin call: connections are
    // checked when they are opened.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", pretend_server.port)
        .parse()
        .expect("addr");
    sceneintruder_runtime::refuse_server_addresses(&[addr]);
    let runtime = load().await;
    let chaos = runtime.llm("chaos").expect("chaos loaded");
    for url in [format!("{origin}/after"), format!("{by_name}/after")] {
        let failure = chaos
            .complete(&request(&format!("get:{url}")), None)
            .await
            .expect_err("the server's address is refused");
        assert!(
            matches!(&failure, CallError::Provider { .. })
                && failure.to_string().contains("this server's own address"),
            "{url}: {failure}"
        );
    }
    sceneintruder_runtime::refuse_server_addresses(&[]);
    let paths: Vec<String> = pretend_server
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, vec!["/before".to_string()]);
}

/// Once the operator chose a base URL (config file or settings API), keys go only there and the
/// manifest's default origin is no longer granted at all; an explicit `allow_hosts` grant
/// still lets the plugin reach it, without the key.
#[tokio::test]
async fn a_chosen_base_url_replaces_the_manifests_default_origin() {
    let default_vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let chosen = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let start = |config: String| {
        let builder = ServerBuilder::new(Backend::Sqlite)
            .plugin("chaos")
            .config(&config);
        let folder = builder.plugins_dir().join("chaos");
        set_requested_hosts(&folder, std::slice::from_ref(&default_vendor.base));
        set_defaults(
            &folder,
            &[("base_url", &format!("{}/v1", default_vendor.base))],
        );
        builder.start()
    };
    let to_default = json!({"default_model": format!("fetch:{}/x", default_vendor.base)});

    // Through the config file.
    let server = start(format!(
        "[plugins.chaos]\nsettings = {{ base_url = \"{}/v1\", api_key = \"{KEY}\" }}",
        chosen.base
    ))
    .await;
    let (_, list) = server.get("/api/plugins").await;
    assert_eq!(
        chaos_report(&list)["granted_hosts"],
        json!([chosen.base]),
        "{list}"
    );
    let (status, body) = probe(&server, to_default.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(error_details(&body).contains("is not granted"), "{body}");
    let (status, body) = probe(
        &server,
        json!({"default_model": format!("fetch:{}/x", chosen.base)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        chosen.last().header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    drop(server);

    // Through the settings API.
    let server = start(String::new()).await;
    let (status, body) = server
        .post(
            "/api/settings",
            &json!({"llm_provider": "chaos", "llm_config": {
                "api_key": KEY, "base_url": format!("{}/v1", chosen.base)}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = probe(&server, to_default.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(error_details(&body).contains("is not granted"), "{body}");
    drop(server);
    assert!(
        default_vendor.requests().is_empty(),
        "the default origin was contacted: {:?}",
        default_vendor.requests()
    );

    // An explicit grant: reachable, but the key stays with the chosen base URL.
    let server = start(format!(
        "[plugins.chaos]\nallow_hosts = [\"{}\"]\nsettings = {{ base_url = \"{}/v1\", api_key = \"{KEY}\" }}",
        default_vendor.base, chosen.base
    ))
    .await;
    let (status, body) = probe(&server, to_default).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains(&format!(
            "configured for {} is not sent to {}",
            chosen.base, default_vendor.base
        )),
        "{body}"
    );
    let (status, body) = probe(
        &server,
        json!({"default_model": format!("get:{}/plain", default_vendor.base)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = default_vendor.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(!format!("{seen:?}").contains(KEY), "{seen:?}");
}

/// The server's log once its background writer has caught up (no growth for a while).
async fn settled_log(server: &Server) -> String {
    let mut last = server.log_text();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = server.log_text();
        if now.len() == last.len() {
            return now;
        }
        last = now;
    }
    last
}

/// Lines of `log` that are kept plugin log lines of the `logs:` chaos model.
fn kept_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("line ") && l.contains("forged record"))
        .collect()
}

/// Past 1000 lines in a minute, a plugin's lines are dropped whatever the calls; one summary
/// line gives the count when the minute is over. Each kept line carries the plugin id as a
/// field of its own before the plugin's quoted text, and stderr (not a terminal) has no colour.
#[tokio::test]
async fn a_plugins_log_budget_holds_across_calls() {
    let server = chaos_server(&[], "").await;
    let started = Instant::now();
    for _ in 0..12 {
        let (status, body) = probe(&server, json!({"default_model": "logs:150"})).await;
        assert_eq!(status, 200, "{body}");
    }
    let log = settled_log(&server).await;
    let kept = kept_lines(&log);
    assert_eq!(kept.len(), 1000, "lines kept in the first minute");
    for line in &kept {
        let plugin = line.find("plugin=\"chaos\"").expect("plugin field");
        let text = line.find("text=\"line ").expect("quoted text field");
        assert!(plugin < text, "{line}");
        assert!(line.contains("\\u{1b}[31mred"), "{line}");
    }
    assert!(!log.contains('\u{1b}'), "no escape byte on stderr");
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "the calls must fit in one minute for this test"
    );

    // The summary comes when the minute ends: the last 50 lines of the 10th call and the 2
    // calls of 150 lines after it found the budget spent.
    let deadline = Instant::now() + Duration::from_secs(90);
    let summary = loop {
        let log = server.log_text();
        let summaries: Vec<String> = log
            .lines()
            .filter(|l| l.contains("plugin log lines dropped") && l.contains("in one minute"))
            .map(str::to_string)
            .collect();
        if !summaries.is_empty() {
            assert_eq!(summaries.len(), 1, "{summaries:?}");
            break summaries[0].clone();
        }
        assert!(Instant::now() < deadline, "no per-minute summary line");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        summary.contains("dropped=350") && summary.contains("plugin=\"chaos\""),
        "{summary}"
    );
    // The per-call summaries are for the 9 calls that ended with budget left; past the
    // minute's budget every drop goes into its one summary.
    let per_call = settled_log(&server)
        .await
        .lines()
        .filter(|l| l.contains("plugin log lines dropped") && l.contains("in one call"))
        .count();
    assert_eq!(per_call, 9);

    // The next minute has a budget again.
    let (status, body) = probe(&server, json!({"default_model": "logs:5"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kept_lines(&settled_log(&server).await).len(), 1005);
}

/// A plugin's error message of 1 MiB full of terminal escapes, newlines and forged records
/// reaches the API's error details (and the log) short and printable.
#[tokio::test]
async fn a_plugins_error_text_is_short_and_printable() {
    let server = chaos_server(&[], "").await;
    let (status, body) = probe(&server, json!({"default_model": "error-flood"})).await;
    assert_eq!(status, 503, "{body}");
    let details = error_details(&body);
    assert!(
        details.starts_with("plugin chaos: vendor error (HTTP 500): boom\\n2026-01-01"),
        "{details}"
    );
    assert!(
        details.chars().count() < 700,
        "{} characters",
        details.len()
    );
    assert!(!details.chars().any(char::is_control), "{details:?}");
    assert!(details.contains("\\u{1b}[31mred"), "{details}");
    assert!(body.to_string().len() < 4096);
    let log = settled_log(&server).await;
    assert!(!log.contains('\u{1b}'), "no escape byte on stderr");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z ERROR forged")),
        "no forged record"
    );
    assert!(log.len() < 256 * 1024, "{} bytes of log", log.len());
}

/// `info()` runs at load with no keys and no network, even where a call of the same plugin
/// may use both: it finds no key and its request is refused before anything is sent.
#[tokio::test]
async fn info_at_load_has_no_keys_and_no_network() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("chaos")
        .config(&format!(
            "[plugins.chaos]\nallow_hosts = [\"{}\"]\nsettings = {{ api_key = \"{KEY}\" }}",
            vendor.base
        ));
    let folder = builder.plugins_dir().join("chaos");
    set_requested_hosts(&folder, std::slice::from_ref(&vendor.base));
    set_defaults(
        &folder,
        &[("info_fetch", &format!("{}/from-info", vendor.base))],
    );
    let server = builder.start().await;

    let (_, list) = server.get("/api/plugins").await;
    assert_eq!(chaos_report(&list)["state"], "loaded", "{list}");
    let log = settled_log(&server).await;
    let seen = log
        .lines()
        .find(|l| l.contains("info() probe:"))
        .expect("info() reported what it found");
    assert!(seen.contains("has_secret(api_key)=false"), "{seen}");
    assert!(seen.contains("get(api_key)=None"), "{seen}");
    assert!(seen.contains("NotAllowed("), "{seen}");
    assert!(
        vendor.requests().is_empty(),
        "info() reached the network: {:?}",
        vendor.requests()
    );

    // A call of the same plugin has both.
    let (status, body) = probe(
        &server,
        json!({"default_model": format!("fetch:{}/from-call", vendor.base)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        vendor.last().header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}
