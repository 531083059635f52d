//! Database outages fail fast (PostgreSQL only; skipped without `TEST_DATABASE_URL`).
//!
//! The server reaches its database through a loopback TCP forwarder written here, which
//! stands in for the database going away: "down" drops every open connection and stops
//! listening (new connections are refused), "up" listens on the same port again. While it
//! is down, requests and the health check answer `503 DATABASE_UNAVAILABLE` within about a
//! second (the pool's acquire timeout) instead of hanging; once it is back, the same server
//! process serves again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use sceneintruder_tests::{Backend, PgDatabase, ServerBuilder, backends};

/// Longest a request may take while the database is away (the default acquire timeout is 1 s;
/// the margin is for a debug build on a busy machine, far below the old 10 s hang).
const FAIL_FAST: Duration = Duration::from_millis(2500);

/// A TCP forwarder from `127.0.0.1:<port>` to `target` that can be cut and restored.
struct Forwarder {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Tasks>>,
}

#[derive(Default)]
struct Tasks {
    accept: Option<JoinHandle<()>>,
    connections: Vec<JoinHandle<()>>,
}

impl Forwarder {
    async fn start(target: String) -> Forwarder {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)));
        let port = listener.local_addr().expect("local addr").port();
        let forwarder = Forwarder {
            port,
            target,
            tasks: Default::default(),
        };
        forwarder.serve(listener);
        forwarder
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let target = self.target.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = target.clone();
                let connection = tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                let mut tasks = tasks.lock().expect("tasks");
                tasks.connections.retain(|c| !c.is_finished());
                tasks.connections.push(connection);
            }
        });
        self.tasks.lock().expect("tasks").accept = Some(accept);
    }

    /// The database goes away: stop listening (new connections are refused) and drop every
    /// open connection.
    async fn down(&self) {
        let (accept, connections) = {
            let mut tasks = self.tasks.lock().expect("tasks");
            (tasks.accept.take(), std::mem::take(&mut tasks.connections))
        };
        // Aborting a task drops what it holds: the listener, both ends of a connection.
        for task in accept.into_iter().chain(connections) {
            task.abort();
            let _ = task.await;
        }
    }

    /// The database is back, on the same address.
    fn up(&self) {
        self.serve(listen(SocketAddr::from(([127, 0, 0, 1], self.port))));
    }
}

fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    // The port is taken again after `down`, with the old connections in TIME_WAIT.
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind the forwarder");
    socket.listen(128).expect("listen")
}

/// A request, timed.
async fn timed(
    server: &sceneintruder_tests::Server,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let (status, body) = server.send_as(None, method, path, body).await;
    (status, body, started.elapsed())
}

fn assert_unavailable(what: &str, status: u16, body: &Value, took: Duration) {
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(body["success"], false, "{what}: {body}");
    assert_eq!(
        body["error"]["code"], "DATABASE_UNAVAILABLE",
        "{what}: {body}"
    );
    assert_eq!(body["error"]["message"], "数据库暂不可用", "{what}: {body}");
    assert!(
        took < FAIL_FAST,
        "{what} took {took:?} while the database was away (limit {FAIL_FAST:?})"
    );
}

fn titles(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a scene list: {body}"))
        .iter()
        .filter_map(|s| s["title"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_while_the_database_is_away_and_recover_without_a_restart() {
    let Some(admin) = backends().into_iter().find_map(|b| match b {
        Backend::Postgres(url) => Some(url),
        Backend::Sqlite => None,
    }) else {
        eprintln!("TEST_DATABASE_URL is not set: skipped (PostgreSQL only)");
        return;
    };
    let pg = PgDatabase::create(&admin).await;
    let real = url::Url::parse(&pg.url).expect("database URL");
    let target = format!(
        "{}:{}",
        real.host_str().expect("database host"),
        real.port().unwrap_or(5432)
    );
    let forwarder = Forwarder::start(target).await;
    let mut proxied = real.clone();
    proxied.set_host(Some("127.0.0.1")).expect("host");
    proxied.set_port(Some(forwarder.port)).expect("port");
    let server = ServerBuilder::new(Backend::Postgres(admin.clone()))
        .database(proxied.as_str())
        .start()
        .await;
    let pid = server.pid();

    // Up: everything works.
    let (status, body) = server.get("/api/config/health").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["checks"]["database"]["status"], "healthy");
    let (status, body) = server
        .post("/api/scenes/shell", &json!({"title": "before the outage"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/api/scenes").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(titles(&body), ["before the outage"]);

    // A signed-in user whose token is first checked during the outage (the CLI that adds it
    // goes through the forwarder, hence the multi-threaded test runtime).
    let token = server.new_user_token("reader").await;

    // Down: every request answers 503 DATABASE_UNAVAILABLE promptly. The first requests
    // find pooled connections that were cut (an I/O error at once), the later ones find no
    // connection to open (refused until the acquire timeout): go on until two rounds of the
    // latter kind were seen.
    forwarder.down().await;
    let mut refused_rounds = 0;
    for round in 0.. {
        assert!(round < 24, "the pool still hands out cut connections");
        let (status, body, took) = timed(&server, reqwest::Method::GET, "/api/scenes", None).await;
        assert_unavailable(&format!("scene list #{round}"), status, &body, took);
        if took >= Duration::from_millis(500) {
            refused_rounds += 1;
        }
        let (status, body, took) = timed(
            &server,
            reqwest::Method::POST,
            "/api/scenes/shell",
            Some(&json!({"title": format!("during the outage {round}")})),
        )
        .await;
        assert_unavailable(&format!("scene create #{round}"), status, &body, took);
        let (status, body, took) =
            timed(&server, reqwest::Method::GET, "/api/config/health", None).await;
        assert_unavailable(&format!("health #{round}"), status, &body, took);
        let details = body["error"]["details"].as_str().unwrap_or_default();
        assert!(
            details.contains("checks.database") && details.contains("postgres"),
            "health names the database check: {body}"
        );
        // A token that cannot be checked is not a logout: 503, never 401.
        let (status, body) = server
            .send_as(Some(&token), reqwest::Method::GET, "/api/scenes", None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (503, json!("DATABASE_UNAVAILABLE")),
            "{body}"
        );
        if refused_rounds == 2 {
            break;
        }
    }

    // Back: the same process serves again, with what was stored before.
    forwarder.up();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = server.get("/api/config/health").await;
        if status == 200 {
            assert_eq!(body["data"]["status"], "healthy", "{body}");
            assert_eq!(body["data"]["checks"]["database"]["status"], "healthy");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not healthy again 15 s after the database came back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = server.get("/api/scenes").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        titles(&body),
        ["before the outage"],
        "nothing stored meanwhile"
    );
    let (status, body) = server
        .post("/api/scenes/shell", &json!({"title": "after the outage"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/api/scenes").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(titles(&body), ["before the outage", "after the outage"]);
    assert_eq!(server.pid(), pid, "no restart");

    drop(server);
    forwarder.down().await;
    drop(pg);
}
