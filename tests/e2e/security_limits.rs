//! Issue 10 §5 through the real binary with the real `openai` plugin and the story model:
//! an analysis stores its scene and completes its job in one transaction (a late cancel, a
//! failing completion or a restart leave no orphan and no duplicate); WebSocket
//! `character_interaction` messages count against the `chat` rate class; the interaction
//! aggregate addresses each character once and at most ten; a short `AUTH_SECRET_KEY` is
//! refused at start; logins have their own rate class and hash off the async workers.
//! On SQLite and PostgreSQL where storage is involved.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use sceneintruder_tests::fake::FakeVendor;
use sceneintruder_tests::story_model::{HARBOUR, harbour_scene, model, server};
use sceneintruder_tests::{Backend, Server, ServerBuilder, backends, server_binary};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const STORY: &str = "Fog came in over the harbour. Lin Chen counted crates while Su Wan watched.\n\n\
                     Lin Chen found a brass key near the lighthouse and said nothing.";

/// Direct access to a server's database, to inject faults and count rows.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn open(server: &Server) -> Db {
        let url = server.database_url();
        if url.starts_with("sqlite:") {
            Db::Sqlite(sqlx::SqlitePool::connect(&url).await.expect("open SQLite"))
        } else {
            Db::Postgres(sqlx::PgPool::connect(&url).await.expect("open PostgreSQL"))
        }
    }

    /// Run the statements written for this backend.
    async fn run(&self, sqlite: &str, postgres: &str) {
        match self {
            Db::Sqlite(pool) => sqlx::raw_sql(sqlite).execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::raw_sql(postgres).execute(pool).await.map(drop),
        }
        .expect("test SQL runs");
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
        }
        .expect("count rows")
    }

    async fn scene_ids(&self) -> Vec<String> {
        const SQL: &str = "SELECT id FROM scenes ORDER BY id";
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar(SQL).fetch_all(pool).await,
        }
        .expect("scene ids")
    }

    /// No scene, character or item rows at all.
    async fn assert_no_scene(&self) {
        for table in ["scenes", "scene_characters", "scene_items"] {
            assert_eq!(self.count(table).await, 0, "rows left in {table}");
        }
    }

    async fn close(self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

async fn analyze(server: &Server, title: &str) -> String {
    let (status, body) = server
        .post("/api/analyze", &json!({"title": title, "text": STORY}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["task_id"]
        .as_str()
        .expect("task_id")
        .to_string()
}

/// The job once it has ended (queued and running are not), within `limit`.
async fn ended_job(server: &Server, task: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = server.get(&format!("/api/jobs/{task}")).await;
        assert_eq!(status, 200, "{body}");
        let state = body["data"]["state"].as_str().unwrap_or_default();
        if !matches!(state, "queued" | "running") {
            return body["data"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "job {task} still {state} after {limit:?}: {body}"
        );
        // Slow enough to stay well inside the default rate limit while waiting.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn listed_scenes(server: &Server) -> Vec<Value> {
    let (status, body) = server.get("/api/scenes").await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn analysis_stores_exactly_one_scene_named_after_its_job() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let db = Db::open(&server).await;
        let task = analyze(&server, "Harbour").await;
        let (_, last) = server.progress_until_done(&task).await;
        assert_eq!(last["status"], "completed", "{last}");
        let scene_id = last["scene_id"].as_str().expect("scene_id").to_string();
        assert_eq!(last["message"], format!("分析完成，场景已创建: {scene_id}"));
        assert_eq!(
            scene_id,
            format!("scene_{}", task.trim_start_matches("task_")),
            "the scene is named after its job"
        );
        // Completed and stored together: exactly one scene, the one the job names.
        let job = ended_job(&server, &task, Duration::from_secs(5)).await;
        assert_eq!(job["state"], "completed", "{job}");
        assert_eq!(job["progress"], 100, "{job}");
        assert_eq!(db.scene_ids().await, [scene_id.as_str()]);
        assert_eq!(db.count("scene_characters").await, 2);
        let scenes = listed_scenes(&server).await;
        assert_eq!(scenes.len(), 1, "{scenes:?}");
        assert_eq!(scenes[0]["id"], scene_id);
        db.close().await;
    }
}

#[tokio::test]
async fn a_cancel_landing_after_the_model_answered_leaves_no_scene() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let db = Db::open(&server).await;
        // The job is cancelled the moment it reports 95% ("完成分析，准备结果..."): the model
        // has answered and the scene is about to be stored. The cancel is made in the
        // database, as another server sharing it would, so this server only learns of it
        // when it writes the job again.
        db.run(
            "CREATE TRIGGER late_cancel AFTER UPDATE OF progress ON jobs \
             WHEN NEW.progress = 95 AND NEW.state = 'running' BEGIN \
             UPDATE jobs SET state = 'cancelled', error = 'cancelled', \
             message = '任务失败: 用户取消了任务', version = version + 1, \
             finished_at = NEW.updated_at, lease_owner = NULL, lease_until = NULL \
             WHERE id = NEW.id; END;",
            "CREATE FUNCTION late_cancel() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             UPDATE jobs SET state = 'cancelled', error = 'cancelled', \
             message = '任务失败: 用户取消了任务', version = version + 1, \
             finished_at = NEW.updated_at, lease_owner = NULL, lease_until = NULL \
             WHERE id = NEW.id; RETURN NULL; END $$; \
             CREATE TRIGGER late_cancel AFTER UPDATE OF progress ON jobs FOR EACH ROW \
             WHEN (NEW.progress = 95 AND NEW.state = 'running') EXECUTE FUNCTION late_cancel();",
        )
        .await;
        let task = analyze(&server, "Late cancel").await;
        let job = ended_job(&server, &task, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "cancelled", "{job}");
        assert!(!vendor.requests().is_empty(), "the model answered");
        // Give the analysis time to finish whatever it still does after 95%.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(listed_scenes(&server).await.is_empty());
        db.assert_no_scene().await;
        let job = ended_job(&server, &task, Duration::from_secs(1)).await;
        assert_eq!(job["state"], "cancelled", "{job}");
        assert_eq!(job["result"], Value::Null, "{job}");
        db.close().await;
    }
}

#[tokio::test]
async fn a_completion_that_cannot_be_written_leaves_no_scene() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "[jobs]\nlease_ms = 1000").await;
        let db = Db::open(&server).await;
        // Recording the completion fails (as a crash between the two writes would end it).
        db.run(
            "CREATE TRIGGER refuse_completion BEFORE UPDATE OF state ON jobs \
             WHEN NEW.state = 'completed' BEGIN \
             SELECT RAISE(ABORT, 'completion refused by the test'); END;",
            "CREATE FUNCTION refuse_completion() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'completion refused by the test'; END $$; \
             CREATE TRIGGER refuse_completion BEFORE UPDATE OF state ON jobs FOR EACH ROW \
             WHEN (NEW.state = 'completed') EXECUTE FUNCTION refuse_completion();",
        )
        .await;
        let task = analyze(&server, "Unrecorded").await;
        let job = ended_job(&server, &task, Duration::from_secs(30)).await;
        assert_eq!(job["state"], "failed", "{job}");
        let message = job["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("任务失败: 场景创建失败"), "{message}");
        assert!(listed_scenes(&server).await.is_empty());
        db.assert_no_scene().await;
        db.close().await;
    }
}

#[tokio::test]
async fn an_analysis_resumed_after_a_crash_stores_one_scene() {
    for backend in backends() {
        let slow = Arc::new(AtomicBool::new(true));
        let vendor = model(None, Some(slow.clone())).await;
        let mut server = server(backend, &vendor.base, "[jobs]\nlease_ms = 1000").await;
        let task = analyze(&server, "Crash").await;
        wait_for_requests(&vendor, 1).await;
        // The server dies while the model is still answering.
        server.kill();
        slow.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.start_again().await;
        let job = ended_job(&server, &task, Duration::from_secs(60)).await;
        assert_eq!(job["state"], "completed", "{job}");
        assert!(job["attempts"].as_u64().is_some_and(|a| a >= 2), "{job}");
        let db = Db::open(&server).await;
        assert_eq!(
            db.scene_ids().await,
            [format!("scene_{}", task.trim_start_matches("task_"))]
        );
        assert_eq!(listed_scenes(&server).await.len(), 1);
        db.close().await;
    }
}

async fn wait_for_requests(vendor: &FakeVendor, at_least: usize) {
    for _ in 0..200 {
        if vendor.requests().len() >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the model received no request");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, path: &str) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url(path))
        .await
        .expect("websocket connects");
    assert_eq!(next_message(&mut socket).await["type"], "connected");
    socket
}

/// The next JSON message that is not presence.
async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a message within 30 s")
            .expect("the connection is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if value["type"] != "user:presence" {
                return value;
            }
        }
    }
}

/// Send one `character_interaction` and return the answer (broadcast or error).
async fn interact(socket: &mut Socket, character_id: &str) -> Value {
    let message = json!({"type": "character_interaction", "character_id": character_id,
                         "message": "Were you at the lighthouse?"});
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .expect("send");
    next_message(socket).await
}

/// Calls the model received for character replies.
fn persona_calls(vendor: &FakeVendor) -> usize {
    vendor
        .requests()
        .iter()
        .filter(|r| {
            r.json()["messages"][0]["content"]
                .as_str()
                .is_some_and(|s| s.contains("Stay in character for the"))
        })
        .count()
}

fn assert_rate_limited(answer: &Value) {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "RATE_LIMIT_EXCEEDED", "{answer}");
    assert!(
        answer["retry_after"].as_u64().is_some_and(|s| s >= 1),
        "{answer}"
    );
}

#[tokio::test]
async fn websocket_character_interactions_count_against_the_chat_class() {
    let vendor = model(None, None).await;
    let server = server(
        Backend::Sqlite,
        &vendor.base,
        "[rate_limits]\nchat = { limit = 2, window_secs = 600 }",
    )
    .await;

    // A guest's socket: two turns, then refused without a model call.
    let (scene_id, lin, _) = harbour_scene(&server).await;
    let mut guest = connect(&server, &format!("/ws/scene/{scene_id}")).await;
    for _ in 0..2 {
        let answer = interact(&mut guest, &lin).await;
        assert_eq!(answer["type"], "conversation:new", "{answer}");
    }
    assert_eq!(persona_calls(&vendor), 2);
    assert_rate_limited(&interact(&mut guest, &lin).await);
    assert_eq!(persona_calls(&vendor), 2, "no model call when refused");

    // An account has its own bucket, shared by its sockets and its HTTP chat.
    let (ok, out) = server.cli(
        &["user", "add", "ivy", "--password-stdin"],
        "ivy's password\n",
    );
    assert!(ok, "{out}");
    let (status, body) = server
        .post(
            "/api/auth/login",
            &json!({"username": "ivy", "password": "ivy's password"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["token"].as_str().expect("token").to_string();
    let (status, body) = server
        .send_as(
            Some(&token),
            Method::POST,
            "/api/scenes",
            Some(&json!({"title": "Ivy's harbour", "text": HARBOUR})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ivy_scene = body["data"]["id"].as_str().expect("id").to_string();
    let (_, body) = server
        .send_as(
            Some(&token),
            Method::GET,
            &format!("/api/scenes/{ivy_scene}/characters"),
            None,
        )
        .await;
    let ivy_lin = body["data"][0]["id"]
        .as_str()
        .expect("character")
        .to_string();
    let mut socket = connect(&server, &format!("/ws/scene/{ivy_scene}?token={token}")).await;
    for _ in 0..2 {
        let answer = interact(&mut socket, &ivy_lin).await;
        assert_eq!(answer["type"], "conversation:new", "{answer}");
    }
    assert_rate_limited(&interact(&mut socket, &ivy_lin).await);
    // A second socket of the same account draws on the same bucket.
    let mut again = connect(&server, &format!("/ws/scene/{ivy_scene}?token={token}")).await;
    assert_rate_limited(&interact(&mut again, &ivy_lin).await);
    let (status, body) = server
        .send_as(
            Some(&token),
            Method::POST,
            "/api/chat",
            Some(&json!({"scene_id": ivy_scene, "character_id": ivy_lin, "message": "hi"})),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(persona_calls(&vendor), 4);
}

/// Calls the model received for emotional replies (one per addressed character).
fn emotion_calls(vendor: &FakeVendor) -> usize {
    vendor
        .requests()
        .iter()
        .filter(|r| {
            r.json()["messages"][0]["content"]
                .as_str()
                .is_some_and(|s| s.contains("describe how"))
        })
        .count()
}

#[tokio::test]
async fn the_aggregate_addresses_each_character_once_and_at_most_ten() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let (scene_id, lin, su) = harbour_scene(&server).await;
        let before = emotion_calls(&vendor);

        // Eleven distinct characters: refused before any model call.
        let eleven: Vec<String> = (0..11).map(|i| format!("char_{i}")).collect();
        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene_id, "character_ids": eleven, "message": "Hello all"}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "BAD_REQUEST");
        assert!(
            body["error"]["details"]
                .as_str()
                .is_some_and(|d| d.contains("at most 10")),
            "{body}"
        );
        // Ten is within the cap (these ids simply do not exist).
        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene_id, "character_ids": &eleven[..10], "message": "Hi"}),
            )
            .await;
        assert_eq!(
            body["error"]["code"], "CHARACTER_NOT_FOUND",
            "{status} {body}"
        );
        assert_eq!(emotion_calls(&vendor), before);

        // Repeated ids: each character answers once, in request order.
        let (_, lines) = server
            .get(&format!("/api/scenes/{scene_id}/conversations?limit=1000"))
            .await;
        let lines_before = lines["data"].as_array().map_or(0, Vec::len);
        let request = json!({
            "scene_id": scene_id, "character_ids": [su, lin, su, su, lin],
            "message": "Who took the key?",
            "options": {"save_to_history": true}
        });
        let (status, body) = server.post("/api/interactions/aggregate", &request).await;
        assert_eq!(status, 200, "{body}");
        let answered: Vec<&str> = body["data"]["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["character_id"].as_str())
            .collect();
        assert_eq!(answered, [su.as_str(), lin.as_str()]);
        assert_eq!(emotion_calls(&vendor), before + 2);
        let (_, lines) = server
            .get(&format!("/api/scenes/{scene_id}/conversations?limit=1000"))
            .await;
        let lines = lines["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            lines.len(),
            lines_before + 3,
            "one user line, one per character"
        );
        let last = lines.last().expect("a line");
        assert_eq!(
            last["metadata"]["character_ids"],
            json!([su, lin]),
            "{last}"
        );
    }
}

/// Start `sceneintruder serve` with `AUTH_SECRET_KEY = secret` and wait for it to exit;
/// returns its success and its output. Fails when it is still running after 60 s.
async fn start_with_secret(secret: &'static str) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(server_binary())
            .arg("serve")
            .arg("--addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .env("SCENEINTRUDER_PLUGIN_CACHE_DIR", "")
            .env("AUTH_SECRET_KEY", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sceneintruder");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server kept running with a {}-byte AUTH_SECRET_KEY",
                    secret.len()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().expect("output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (status.success(), text)
    })
    .await
    .expect("join")
}

#[tokio::test]
async fn a_short_auth_secret_is_refused_at_start() {
    for secret in ["short", "0123456789abcdef0123456789abcde"] {
        let (success, output) = start_with_secret(secret).await;
        assert!(!success, "exited non-zero: {output}");
        assert!(
            output.contains(&format!("AUTH_SECRET_KEY is {} bytes", secret.len()))
                && output.contains("at least 32 bytes"),
            "says why: {output}"
        );
    }
    // 32 bytes are enough.
    let server = ServerBuilder::new(Backend::Sqlite)
        .env("AUTH_SECRET_KEY", "0123456789abcdef0123456789abcdef")
        .start()
        .await;
    let (status, _) = server.get("/api/config/health").await;
    assert_eq!(status, 200);
}

async fn login(server: &Server, username: &str, password: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login request")
}

#[tokio::test]
async fn logins_have_their_own_tight_rate_class() {
    // The default: 10 per minute per address.
    let server = ServerBuilder::new(Backend::Sqlite).start().await;
    let (ok, out) = server.cli(
        &["user", "add", "judy", "--password-stdin"],
        "judy's password\n",
    );
    assert!(ok, "{out}");
    for _ in 0..10 {
        assert_eq!(login(&server, "judy", "a wrong guess").await.status(), 401);
    }
    let refused = login(&server, "judy", "judy's password").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("x-ratelimit-limit")
            .and_then(|v| v.to_str().ok()),
        Some("10")
    );
    assert!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| (1..=60).contains(&s))
    );
    let body: Value = refused.json().await.expect("envelope");
    assert_eq!(body["error"]["code"], "RATE_LIMIT_EXCEEDED");
    // Only logins are refused.
    let (status, _) = server.get("/api/scenes").await;
    assert_eq!(status, 200);

    // Configurable under [rate_limits].
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[rate_limits]\nlogin = { limit = 2, window_secs = 600 }")
        .start()
        .await;
    for _ in 0..2 {
        assert_eq!(login(&server, "nobody", "whatever").await.status(), 401);
    }
    let refused = login(&server, "nobody", "whatever").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("x-ratelimit-limit")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
}

#[tokio::test]
async fn password_hashing_does_not_stall_other_requests() {
    let server = ServerBuilder::new(Backend::Sqlite)
        .config("[rate_limits]\nlogin = { limit = 10000, window_secs = 60 }")
        .start()
        .await;
    let (ok, out) = server.cli(
        &["user", "add", "kim", "--password-stdin"],
        "kim's password\n",
    );
    assert!(ok, "{out}");
    // What one verification costs here.
    let started = Instant::now();
    assert_eq!(login(&server, "kim", "warm up").await.status(), 401);
    let one = started.elapsed();

    // Enough wrong guesses at once to keep every core busy for about two seconds.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let burst = (2 * cores as u128 * 1000 / one.as_millis().max(1)).clamp(8, 400) as usize;
    let started = Instant::now();
    let guesses: Vec<_> = (0..burst)
        .map(|i| {
            let server = &server;
            async move { login(server, "kim", &format!("guess {i}")).await.status() }
        })
        .collect();
    let health = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        let (status, _) = server.get("/api/config/health").await;
        assert_eq!(status, 200);
        asked.elapsed()
    };
    let (statuses, waited) = tokio::join!(futures::future::join_all(guesses), health);
    let took = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        waited < took / 3,
        "health waited {waited:?} while {burst} logins took {took:?} ({one:?} each)"
    );
}
