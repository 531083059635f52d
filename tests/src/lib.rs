//! Test harness: start the real `sceneintruder` binary on 127.0.0.1:0 with real plugins,
//! on SQLite or PostgreSQL, and loopback fakes of third-party vendors.
//!
//! Plugins come from `$SCENEINTRUDER_PLUGIN_DIST` (laid out by `cargo xtask test`), the
//! binary from the workspace target directory.

pub mod failing_model;
pub mod fake;
pub mod sse;
pub mod story_model;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Built plugins, one folder per plugin id.
pub fn plugin_dist() -> PathBuf {
    let dist = std::env::var_os("SCENEINTRUDER_PLUGIN_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("plugin-dist"));
    assert!(
        dist.join("openai").is_dir(),
        "built plugins not found in {}: run the suite with `cargo xtask test`",
        dist.display()
    );
    dist
}

/// Compiled-component cache shared by every server a test run starts.
pub fn shared_compile_cache() -> PathBuf {
    target_dir().join("test-compile-cache")
}

/// Copy plugin `id` from the dist folder into `plugins_dir`; returns its folder.
pub fn install_plugin(plugins_dir: &Path, id: &str) -> PathBuf {
    let from = plugin_dist().join(id);
    let to = plugins_dir.join(id);
    std::fs::create_dir_all(&to).expect("create plugin folder");
    for entry in std::fs::read_dir(&from).expect("read dist plugin") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy plugin file");
    }
    to
}

/// Replace the `[network] hosts` of an installed plugin's manifest.
pub fn set_requested_hosts(folder: &Path, hosts: &[String]) {
    let path = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&path).expect("read manifest");
    let mut doc: toml::Table = toml::from_str(&text).expect("manifest is TOML");
    let mut network = doc
        .get("network")
        .and_then(|n| n.as_table())
        .cloned()
        .unwrap_or_default();
    network.insert(
        "hosts".into(),
        toml::Value::Array(hosts.iter().cloned().map(toml::Value::String).collect()),
    );
    doc.insert("network".into(), toml::Value::Table(network));
    std::fs::write(&path, toml::to_string(&doc).expect("render")).expect("write manifest");
}

/// `error.details` of an envelope (empty when absent).
pub fn error_details(body: &Value) -> String {
    body["error"]["details"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A SQLite server with the test-only `chaos` plugin, whose manifest requests `requested`;
/// `extra` is appended to the config file (limits, grants, settings).
pub async fn chaos_server(requested: &[String], extra: &str) -> Server {
    let builder = ServerBuilder::new(Backend::Sqlite)
        .plugin("chaos")
        .config(extra);
    set_requested_hosts(&builder.plugins_dir().join("chaos"), requested);
    builder.start().await
}

/// Which database a server runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a PostgreSQL server (a fresh database is created per server).
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.is_empty()
    {
        all.push(Backend::Postgres(url));
    }
    all
}

/// A throw-away PostgreSQL database, dropped when this value is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> PgDatabase {
        use sqlx::Connection;
        let name = format!("si_test_{}_{}", std::process::id(), uuid_like_suffix());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        PgDatabase {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

fn uuid_like_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{n}_{nanos}")
}

/// How to start a server.
pub struct ServerBuilder {
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    /// Extra text appended to `<data-dir>/config.toml`.
    pub config: String,
    pub env: Vec<(String, String)>,
    pub compile_cache: Option<PathBuf>,
    /// Use this database instead of a fresh one (servers sharing one PostgreSQL).
    pub database_url: Option<String>,
}

impl ServerBuilder {
    pub fn new(backend: Backend) -> ServerBuilder {
        ServerBuilder {
            backend,
            data_dir: tempfile::tempdir().expect("temp data dir"),
            config: String::new(),
            env: Vec::new(),
            compile_cache: Some(shared_compile_cache()),
            database_url: None,
        }
    }

    /// Share `other`'s database (e.g. two servers on one PostgreSQL).
    pub fn share_database(mut self, other: &Server) -> ServerBuilder {
        self.database_url = Some(other.database_url());
        self
    }

    /// Use the database at `url` (e.g. one reached through a proxy) instead of a fresh one;
    /// the caller creates it and drops it.
    pub fn database(mut self, url: &str) -> ServerBuilder {
        self.database_url = Some(url.to_string());
        self
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.data_dir.path().join("plugins")
    }

    /// Install a built plugin into this server's plugins folder.
    pub fn plugin(self, id: &str) -> ServerBuilder {
        install_plugin(&self.plugins_dir(), id);
        self
    }

    pub fn config(mut self, text: &str) -> ServerBuilder {
        self.config.push_str(text);
        self.config.push('\n');
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> ServerBuilder {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub async fn start(self) -> Server {
        let db = match (&self.backend, &self.database_url) {
            (_, Some(_)) | (Backend::Sqlite, None) => None,
            (Backend::Postgres(admin), None) => Some(PgDatabase::create(admin).await),
        };
        let config_path = self.data_dir.path().join("config.toml");
        std::fs::write(&config_path, &self.config).expect("write config");
        let mut server = Server {
            base: String::new(),
            child: None,
            data_dir: self.data_dir,
            db,
            shared_database: self.database_url,
            env: self.env,
            compile_cache: self.compile_cache,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client"),
        };
        server.launch().await;
        server
    }
}

/// A running `sceneintruder serve`.
pub struct Server {
    pub base: String,
    child: Option<Child>,
    pub data_dir: tempfile::TempDir,
    db: Option<PgDatabase>,
    /// Another server's database this one uses.
    shared_database: Option<String>,
    env: Vec<(String, String)>,
    compile_cache: Option<PathBuf>,
    pub http: reqwest::Client,
}

/// The server binary built by `cargo xtask test`.
pub fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SCENEINTRUDER_BIN") {
        return PathBuf::from(bin);
    }
    let bin = target_dir().join("debug").join("sceneintruder");
    assert!(
        bin.is_file(),
        "{} not found: run the suite with `cargo xtask test`",
        bin.display()
    );
    bin
}

impl Server {
    async fn launch(&mut self) {
        let mut cmd = Command::new(server_binary());
        cmd.arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .env_remove("DATABASE_URL")
            .env("SCENEINTRUDER_LOG", "info,sceneintruder=debug")
            .stdout(Stdio::piped())
            .stderr(self.log_file());
        match &self.compile_cache {
            Some(dir) => cmd.env("SCENEINTRUDER_PLUGIN_CACHE_DIR", dir),
            None => cmd.env("SCENEINTRUDER_PLUGIN_CACHE_DIR", ""),
        };
        if let Some(url) = &self.shared_database {
            cmd.arg("--database-url").arg(url);
        } else if let Some(db) = &self.db {
            cmd.arg("--database-url").arg(&db.url);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start sceneintruder");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(url) = line.strip_prefix("sceneintruder listening on ") {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        });
        let base = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
            .await
            .expect("join");
        match base {
            Ok(base) => self.base = base,
            Err(_) => {
                let status = child.try_wait();
                let _ = child.kill();
                panic!("server did not start listening (exit status: {status:?})");
            }
        }
        self.child = Some(child);
    }

    /// The server's log goes to `<data-dir>/server.log` (appended across restarts) and is
    /// printed when a test fails.
    /// What the server has logged so far (its stderr).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    fn log_file(&self) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("server.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::inherit())
    }

    /// Stop with SIGTERM and wait; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Set (or replace) an environment variable for the next start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Stop and start again on the same data dir and database.
    pub async fn restart(&mut self) {
        assert!(self.stop(), "server did not shut down cleanly");
        self.launch().await;
    }

    /// The database this server uses (to inspect side effects directly).
    pub fn database_url(&self) -> String {
        if let Some(url) = &self.shared_database {
            return url.clone();
        }
        match &self.db {
            Some(pg) => pg.url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.path().join("sceneintruder.db").display()
            ),
        }
    }

    /// Run a `sceneintruder` subcommand (e.g. `user add`) on this server's data dir and
    /// database, feeding `stdin`; returns (success, stdout + stderr).
    pub fn cli(&self, args: &[&str], stdin: &str) -> (bool, String) {
        use std::io::Write;
        let mut cmd = Command::new(server_binary());
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .arg("--database-url")
            .arg(self.database_url())
            .env_remove("SCENEINTRUDER_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run sceneintruder");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("wait");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Follow job `task`'s SSE progress stream to its terminal frame (within 60 s); returns
    /// every progress frame seen and the terminal one.
    pub async fn progress_until_done(&self, task: &str) -> (Vec<Value>, Value) {
        let response = self
            .http
            .get(self.url(&format!("/api/progress/{task}")))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("progress");
        let mut reader = sse::SseReader::new(response);
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Some(frame) = tokio::time::timeout_at(deadline, reader.next())
            .await
            .expect("terminal frame in time")
        {
            if frame.event != "progress" {
                continue;
            }
            seen.push(frame.data.clone());
            let status = frame.data["status"].as_str().unwrap_or_default();
            if matches!(status, "completed" | "failed" | "cancelled") {
                return (seen, frame.data);
            }
        }
        panic!("the stream ended without a terminal frame: {seen:?}");
    }

    /// Create account `name` (with the CLI) and log it in; returns its token.
    pub async fn new_user_token(&self, name: &str) -> String {
        let password = "correct horse battery";
        let (ok, out) = self.cli(
            &["user", "add", name, "--password-stdin"],
            &format!("{password}\n"),
        );
        assert!(ok, "{out}");
        let (status, body) = self
            .post(
                "/api/auth/login",
                &serde_json::json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["token"].as_str().expect("token").to_string()
    }

    /// A request with a bearer token.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        decode(request.send().await.expect("request")).await
    }

    /// Kill the process without letting it shut down (a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again after `kill` or `stop`, on the same data dir and database.
    pub async fn start_again(&mut self) {
        self.launch().await;
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{}", self.base.replacen("http://", "ws://", 1), path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        decode(response).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST");
        decode(response).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.data_dir.path().join("server.log"))
        {
            eprintln!("---- server log ({}) ----\n{log}", self.base);
        }
    }
}

pub async fn decode(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
    (status, value)
}

/// A `PluginRuntime` over a temp plugins folder, for tests that need a plugin's typed result.
pub struct RuntimeFixture {
    pub dir: tempfile::TempDir,
}

impl RuntimeFixture {
    pub fn new(plugins: &[&str]) -> RuntimeFixture {
        let dir = tempfile::tempdir().expect("temp dir");
        for id in plugins {
            install_plugin(dir.path(), id);
        }
        RuntimeFixture { dir }
    }

    pub fn folder(&self, id: &str) -> PathBuf {
        self.dir.path().join(id)
    }

    /// The runtime with default limits and plugin `id` configured with `values`.
    pub async fn load_configured(
        &self,
        id: &str,
        values: &[(&str, String)],
    ) -> sceneintruder_runtime::PluginRuntime {
        let settings = sceneintruder_runtime::OperatorSettings {
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            allow_hosts: vec![],
            ..Default::default()
        };
        self.load(
            sceneintruder_runtime::Limits::default(),
            std::collections::BTreeMap::from([(id.to_string(), settings)]),
        )
        .await
    }

    pub async fn load(
        &self,
        limits: sceneintruder_runtime::Limits,
        plugins: std::collections::BTreeMap<String, sceneintruder_runtime::OperatorSettings>,
    ) -> sceneintruder_runtime::PluginRuntime {
        sceneintruder_runtime::PluginRuntime::load(sceneintruder_runtime::RuntimeConfig {
            plugins_dir: self.dir.path().to_path_buf(),
            cache_dir: Some(shared_compile_cache()),
            limits,
            plugins,
            bundled: Default::default(),
        })
        .await
        .expect("runtime loads")
    }
}
