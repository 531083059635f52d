//! Sandbox properties through the real binary, driven by the test-only `chaos` plugin via
//! `POST /api/settings/test-connection` (temporary-config mode picks the chaos behaviour
//! through the model name).

use std::time::{Duration, Instant};

use sceneintruder_tests::fake::{FakeVendor, Reply};
use sceneintruder_tests::{Server, chaos_server, error_details};
use serde_json::{Value, json};

const KEY: &str = "sk-live-SECRET-9f8e7d";

async fn probe(server: &Server, model: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut config = json!({"default_model": model, "api_key": KEY});
    for (k, v) in extra {
        config[*k] = json!(v);
    }
    server
        .post(
            "/api/settings/test-connection",
            &json!({"provider": "chaos", "llm_config": config}),
        )
        .await
}

#[tokio::test]
async fn endless_loop_is_stopped_at_its_deadline_and_the_server_keeps_answering() {
    let server = chaos_server(&[], "[limits]\ncall_timeout_ms = 800").await;
    let started = Instant::now();
    let looping = probe(&server, "loop", &[]);
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let (status, _) = server.get("/api/config/health").await;
        (status, t.elapsed())
    };
    let ((status, body), (health, health_latency)) = tokio::join!(looping, meanwhile);
    let elapsed = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "CONNECTION_TEST_FAILED");
    assert!(error_details(&body).contains("800ms time budget"), "{body}");
    assert!(
        elapsed < Duration::from_secs(5),
        "the loop must be stopped near its 800 ms deadline, took {elapsed:?}"
    );
    assert_eq!(health, 200, "the server answers while a plugin spins");
    assert!(
        health_latency < Duration::from_secs(2),
        "{health_latency:?}"
    );
    // And the plugin works again right after.
    let (status, body) = probe(&server, "echo", &[]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn memory_hog_and_trap_fail_only_their_call() {
    let server = chaos_server(&[], "[limits]\nmemory_bytes = 33554432").await;
    let (status, body) = probe(&server, "oom", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains("exceeded its memory limit of 33554432 bytes"),
        "{body}"
    );
    let (status, body) = probe(&server, "trap", &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains("plugin chaos crashed"),
        "{body}"
    );
    let (status, body) = probe(&server, "echo", &[]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn outbound_hosts_need_both_the_manifest_request_and_the_operator_grant() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "hello")).await;
    let origin = vendor.base.clone();
    let url = format!("{origin}/v1/ping");

    // Neither requested nor granted.
    let server = chaos_server(&[], "").await;
    let (status, body) = probe(&server, &format!("fetch:{url}"), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains("outbound request refused"),
        "{body}"
    );
    assert!(
        error_details(&body).contains("is not granted to plugin chaos"),
        "{body}"
    );
    drop(server);

    // Requested by the manifest, not granted by the operator.
    let server = chaos_server(std::slice::from_ref(&origin), "").await;
    let (status, body) = probe(&server, &format!("fetch:{url}"), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(error_details(&body).contains("is not granted"), "{body}");
    drop(server);

    // Granted by the operator, not requested by the manifest.
    let grant = format!("[plugins.chaos]\nallow_hosts = [\"{origin}\"]");
    let server = chaos_server(&[], &grant).await;
    let (status, body) = probe(&server, &format!("fetch:{url}"), &[]).await;
    assert_eq!(status, 503, "{body}");
    drop(server);
    assert!(vendor.requests().is_empty(), "nothing reached the vendor");

    // Both: allowed.
    let server = chaos_server(std::slice::from_ref(&origin), &grant).await;
    let (status, body) = probe(&server, &format!("fetch:{url}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vendor.requests().len(), 1);
    // A look-alike origin (other port, `localhost` for 127.0.0.1) is still refused.
    let other = format!("http://localhost:{}/v1/ping", vendor.port);
    let (status, body) = probe(&server, &format!("fetch:{other}"), &[]).await;
    assert_eq!(status, 503, "{body}");
    drop(server);

    // A configured base URL counts as granted, without a manifest request.
    let server = chaos_server(&[], "").await;
    let (status, body) = probe(
        &server,
        &format!("fetch:{url}"),
        &[("base_url", &format!("{origin}/v1"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(vendor.requests().len(), 2);
}

#[tokio::test]
async fn secrets_reach_the_vendor_but_never_the_plugin() {
    let vendor = FakeVendor::start(|_| Reply::text(200, "ok")).await;
    let origin = vendor.base.clone();
    let grant = format!("[plugins.chaos]\nallow_hosts = [\"{origin}\"]");
    let server = chaos_server(std::slice::from_ref(&origin), &grant).await;

    // The placeholder in a header and in a query value is replaced by the host.
    let (status, body) = probe(&server, &format!("fetch:{origin}/v1/models"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let seen = vendor.last();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen.query.as_deref(), Some(format!("key={KEY}").as_str()));

    // Everything the plugin can find out goes to the vendor: the key is not in it.
    let (status, body) = probe(&server, &format!("snoop:{origin}/report"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let report = vendor.last().text();
    assert!(report.contains("config.get(api_key)=None"), "{report}");
    assert!(
        report.contains("config.has_secret(api_key)=true"),
        "{report}"
    );
    assert!(report.contains("env.vars=[]"), "{report}");
    assert!(!report.contains(KEY), "the plugin found the key: {report}");
    assert!(
        !report.contains("root:"),
        "the plugin read the host filesystem: {report}"
    );

    // Placeholders outside header and query values are not substituted.
    let (status, body) = probe(&server, &format!("body-secret:{origin}/upload"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let seen = vendor.last();
    assert!(!seen.text().contains(KEY), "{}", seen.text());
    assert!(
        seen.text().contains("{{secret:api_key}}"),
        "{}",
        seen.text()
    );
    assert!(!seen.path.contains(KEY), "{}", seen.path);
}

#[tokio::test]
async fn redirects_are_not_followed_and_bodies_are_capped() {
    let elsewhere = FakeVendor::start(|_| Reply::text(200, "should never be reached")).await;
    let target = format!("{}/steal", elsewhere.base);
    let vendor = FakeVendor::start(move |r| {
        if r.path == "/big" {
            Reply::text(200, &"x".repeat(8192))
        } else {
            Reply::text(302, "").header("location", &target)
        }
    })
    .await;
    let origin = vendor.base.clone();
    let config = format!(
        "[limits]\nmax_response_bytes = 4096\nmax_requests_per_call = 3\n[plugins.chaos]\nallow_hosts = [\"{origin}\"]"
    );
    let server = chaos_server(std::slice::from_ref(&origin), &config).await;

    let (status, body) = probe(&server, &format!("fetch:{origin}/redirect"), &[]).await;
    assert_eq!(
        status, 200,
        "the 302 itself is handed to the plugin: {body}"
    );
    assert!(elsewhere.requests().is_empty(), "redirect was followed");

    let (status, body) = probe(&server, &format!("fetch:{origin}/big"), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains("larger than 4096 bytes"),
        "{body}"
    );

    let (status, body) = probe(&server, &format!("many-fetches:{origin}/a:5"), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_details(&body).contains("more than 3 outbound requests"),
        "{body}"
    );
}
