//! Plugin runtime benchmarks (`cargo xtask bench`):
//! - `call/instantiate+echo+drop`: fresh instance from `InstancePre`, one trivial export call, drop;
//! - `fetch/plugin` vs `fetch/direct`: one loopback GET made by a plugin vs. by reqwest;
//! - `cold_start/{warm_cache,no_cache}`: load every bundled plugin from disk.
//!
//! Needs the built plugins in `$SCENEINTRUDER_PLUGIN_DIST` (set by `cargo xtask bench`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sceneintruder_runtime::llm::{CompletionRequest, Message, Reasoning, ResponseFormat, Role};
use sceneintruder_runtime::{Limits, OperatorSettings, PluginRuntime, RuntimeConfig};

fn dist() -> PathBuf {
    std::env::var_os("SCENEINTRUDER_PLUGIN_DIST")
        .map(PathBuf::from)
        .expect("set SCENEINTRUDER_PLUGIN_DIST (run `cargo xtask bench`)")
}

fn copy_plugin(to: &Path, id: &str) {
    let from = dist().join(id);
    let folder = to.join(id);
    std::fs::create_dir_all(&folder).expect("folder");
    for entry in std::fs::read_dir(&from).expect("dist plugin") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), folder.join(entry.file_name())).expect("copy");
    }
}

/// Let the chaos plugin reach `origin` (manifest request + operator grant).
fn allow(folder: &Path, origin: &str) {
    let path = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut doc: toml::Table = toml::from_str(&text).expect("toml");
    let mut network = toml::Table::new();
    network.insert(
        "hosts".into(),
        toml::Value::Array(vec![toml::Value::String(origin.into())]),
    );
    doc.insert("network".into(), toml::Value::Table(network));
    std::fs::write(&path, toml::to_string(&doc).expect("render")).expect("write");
}

fn request(model: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.into(),
        system_prompt: None,
        messages: vec![Message {
            role: Role::User,
            content: "ping".into(),
        }],
        temperature: None,
        max_tokens: None,
        top_p: None,
        stop: vec![],
        response_format: ResponseFormat::Text,
        reasoning: Reasoning::Default,
    }
}

async fn loopback_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                break;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 8192];
                loop {
                    // One small request per read is enough for this benchmark's GETs.
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";
                            if socket.write_all(reply).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn benches(c: &mut Criterion) {
    // Current-thread: measures the plugin path itself, not cross-worker wake-ups.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let plugins = tempfile::tempdir().expect("dir");
    let cache = tempfile::tempdir().expect("cache");
    for id in ["openai", "markdown", "chaos"] {
        copy_plugin(plugins.path(), id);
    }
    let origin = rt.block_on(loopback_server());
    allow(&plugins.path().join("chaos"), &origin);

    let config = RuntimeConfig {
        plugins_dir: plugins.path().to_path_buf(),
        cache_dir: Some(cache.path().to_path_buf()),
        limits: Limits::default(),
        bundled: Default::default(),
        plugins: BTreeMap::from([(
            "chaos".to_string(),
            OperatorSettings {
                values: BTreeMap::from([("api_key".to_string(), "bench-key".to_string())]),
                allow_hosts: vec![origin.clone()],
                ..Default::default()
            },
        )]),
    };
    let runtime = rt
        .block_on(PluginRuntime::load(config.clone()))
        .expect("runtime");
    let chaos = runtime.llm("chaos").expect("chaos plugin");

    let echo = request("echo");
    c.bench_function("call/instantiate+echo+drop", |b| {
        b.to_async(&rt)
            .iter(|| async { chaos.complete(&echo, None).await.expect("echo") })
    });

    let fetch = request(&format!("fetch:{origin}/ping"));
    c.bench_function("fetch/plugin", |b| {
        b.to_async(&rt)
            .iter(|| async { chaos.complete(&fetch, None).await.expect("fetch") })
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let direct = format!("{origin}/ping?key=bench-key");
    c.bench_function("fetch/direct", |b| {
        b.to_async(&rt).iter(|| async {
            let r = client
                .get(&direct)
                .header("authorization", "Bearer bench-key")
                .timeout(Duration::from_secs(120))
                .send()
                .await
                .expect("get");
            r.bytes().await.expect("body")
        })
    });

    let mut group = c.benchmark_group("cold_start");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let bundled = tempfile::tempdir().expect("dir");
    for id in ["openai", "markdown"] {
        copy_plugin(bundled.path(), id);
    }
    let small = Limits {
        max_instances: 16,
        ..Limits::default()
    };
    let warm = RuntimeConfig {
        plugins_dir: bundled.path().to_path_buf(),
        cache_dir: Some(cache.path().to_path_buf()),
        limits: small.clone(),
        plugins: BTreeMap::new(),
        bundled: Default::default(),
    };
    rt.block_on(PluginRuntime::load(warm.clone()))
        .expect("warm the cache");
    group.bench_function("warm_cache", |b| {
        b.to_async(&rt)
            .iter(|| async { PluginRuntime::load(warm.clone()).await.expect("load") })
    });
    let cold = RuntimeConfig {
        cache_dir: None,
        ..warm.clone()
    };
    group.bench_function("no_cache", |b| {
        b.to_async(&rt)
            .iter(|| async { PluginRuntime::load(cold.clone()).await.expect("load") })
    });
    group.finish();
}

criterion_group!(plugin_calls, benches);
criterion_main!(plugin_calls);
