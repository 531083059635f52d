//! The blob store on every backend: one conformance suite on local files and on a real
//! S3-compatible server (moto, speaking the S3 wire protocol on loopback), then the server
//! binary starting on S3 and refusing to start on a store it cannot write.
//!
//! moto comes from PyPI into a virtual environment under the target dir, made once. Without
//! Python 3, its venv module or PyPI these tests fail and say what to install; they never
//! skip.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sceneintruder_blobs::conformance::{self, samples};
use sceneintruder_blobs::{Backend as BlobBackend, BlobConfig, BlobKey, BlobStore, S3Options};
use sceneintruder_tests::{Backend, ServerBuilder, server_binary, target_dir};

/// The moto release line the tests run against.
const MOTO: &str = "moto[server]>=5.1,<6";

/// Python used to make the virtual environment.
const PYTHON_ENV: &str = "SCENEINTRUDER_TEST_PYTHON";

const INSTALL_HINT: &str = "the S3 blob tests run moto (an S3-compatible server from PyPI) in \
    a Python virtual environment: install Python 3 with its venv module (on Debian: apt-get \
    install -y python3 python3-venv python3-pip), or set SCENEINTRUDER_TEST_PYTHON to a \
    Python 3 that has venv and pip";

/// One moto server for this test binary, shared by its tests (one bucket each).
struct Moto {
    endpoint: String,
    /// Kept so the pipe stays open: moto exits when it closes (when this process ends,
    /// however it ends), so no server outlives the tests.
    _child: Mutex<Child>,
}

fn moto() -> &'static Moto {
    static MOTO_SERVER: OnceLock<Moto> = OnceLock::new();
    MOTO_SERVER.get_or_init(start_moto)
}

/// `target/test-tools/moto/bin/python`, with moto installed; made on first use.
fn moto_python() -> PathBuf {
    let tools = target_dir().join("test-tools");
    let venv = tools.join("moto");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".installed");
    if std::fs::read_to_string(&ready).is_ok_and(|spec| spec == MOTO) {
        return python;
    }
    std::fs::create_dir_all(&tools).expect("create target/test-tools");
    // Built beside the final folder and renamed into place, so a run that was interrupted
    // (or one racing this one) never leaves a half-installed environment behind.
    let staging = tools.join(format!("moto.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".into());
    let made = Command::new(&base)
        .args(["-m", "venv"])
        .arg(&staging)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{base} -m venv` failed: {}\n{INSTALL_HINT}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("cannot run {base}: {e}\n{INSTALL_HINT}"),
    }
    let staged_python = staging.join("bin").join("python");
    eprintln!("blobs: installing {MOTO} from PyPI into {}", venv.display());
    let installed = Command::new(&staged_python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            MOTO,
        ])
        .output();
    match installed {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "pip could not install {MOTO} from PyPI:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run pip in {}: {e}\n{INSTALL_HINT}",
            staging.display()
        ),
    }
    std::fs::write(staging.join(".installed"), MOTO).expect("mark the environment");
    let _ = std::fs::remove_dir_all(&venv);
    if std::fs::rename(&staging, &venv).is_err() {
        // Another run finished first; use its environment.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        std::fs::read_to_string(&ready).is_ok_and(|spec| spec == MOTO),
        "{} is not a complete moto environment",
        venv.display()
    );
    python
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start_moto() -> Moto {
    let python = moto_python();
    let port = free_port();
    let log_path = target_dir()
        .join("test-tools")
        .join(format!("moto-{port}.log"));
    let log = std::fs::File::create(&log_path).expect("moto log file");
    // moto's own entry point, plus a thread that ends the process when stdin closes.
    let script = "import os, sys, threading\n\
                  def watch():\n    sys.stdin.read()\n    os._exit(0)\n\
                  threading.Thread(target=watch, daemon=True).start()\n\
                  from moto.server import main\n\
                  main(sys.argv[1:])\n";
    let mut child = Command::new(&python)
        .args(["-c", script, "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(
            log.try_clone()
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python.display()));
    if let Some(stdin) = child.stdin.as_mut() {
        // Nothing is ever written; an empty write checks the pipe is there.
        let _ = stdin.write_all(b"");
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "moto exited ({status}) before serving; its log ({}):\n{}",
                log_path.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "moto did not listen on {endpoint} within 90 s; its log ({}):\n{}",
            log_path.display(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        endpoint,
        _child: Mutex::new(child),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// A new bucket on the shared moto server.
async fn bucket(name: &str) -> String {
    let moto = moto();
    let response = http()
        .put(format!("{}/{name}", moto.endpoint))
        .send()
        .await
        .expect("create bucket");
    assert!(
        response.status().is_success(),
        "create bucket {name}: {}",
        response.status()
    );
    name.to_string()
}

/// Run `script` with `s3`, a boto3 client of the moto server, bound; its stdout.
fn s3_client(script: &str) -> String {
    let setup = format!(
        "import boto3\n\
         s3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n",
        moto().endpoint
    );
    let out = Command::new(moto_python())
        .args(["-c", &format!("{setup}{script}")])
        .output()
        .expect("run boto3");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s3_options() -> S3Options {
    S3Options {
        endpoint: Some(moto().endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        allow_http: Some(true),
    }
}

fn s3_store(url: &str) -> BlobStore {
    let dir = tempfile::tempdir().expect("dir");
    let store = BlobStore::open(
        &BlobConfig {
            url: Some(url.into()),
            s3: s3_options(),
            ..Default::default()
        },
        dir.path(),
    )
    .expect("open the S3 store");
    assert_eq!(store.backend(), BlobBackend::S3);
    store
}

#[tokio::test]
async fn local_files_pass_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("dir");
    let store = BlobStore::open(&BlobConfig::default(), dir.path()).expect("open");
    assert_eq!(store.backend(), BlobBackend::Local);
    conformance::run(&store, "e2e_local").await;
}

#[tokio::test]
async fn s3_passes_the_conformance_suite_under_a_prefix_and_at_the_root() {
    let name = bucket("suite").await;
    conformance::run(&s3_store(&format!("s3://{name}/tenant/a")), "prefixed").await;
    conformance::run(&s3_store(&format!("s3://{name}")), "root").await;
}

#[tokio::test]
async fn s3_objects_carry_the_sniffed_type_and_stay_under_the_prefix() {
    let name = bucket("wire").await;
    let store = s3_store(&format!("s3://{name}/tenant"));
    let key = BlobKey::comic_frame("scene_1", "frame_1").expect("key");
    let meta = store
        .put(&key, bytes::Bytes::from_static(samples::JPEG))
        .await
        .expect("put");
    // Ask the S3 server with another client (boto3, which moto depends on): the object sits
    // under the configured prefix, with the content type set on the object itself.
    let head = s3_client(&format!(
        "r = s3.head_object(Bucket='{name}', Key='tenant/comics/scene_1/images/frame_1')\n\
         print(r['ContentType'], r['ETag'], r['ContentLength'])"
    ));
    assert_eq!(
        head.trim(),
        format!("image/jpeg {} {}", meta.etag, samples::JPEG.len())
    );
    // Another store on the same bucket with another prefix sees none of it.
    let other = s3_store(&format!("s3://{name}/elsewhere"));
    assert!(!other.exists(&key).await.expect("exists"));
    store
        .delete_prefix(&BlobKey::comic("scene_1").expect("prefix"))
        .await
        .expect("delete");
    assert!(!store.exists(&key).await.expect("exists"));
}

#[tokio::test]
async fn the_server_starts_on_s3() {
    let name = bucket("server").await;
    let moto = moto();
    let server = ServerBuilder::new(Backend::Sqlite)
        .config(&format!(
            "[blobs]\nurl = \"s3://{name}/srv\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             allow_http = true\naccess_key_id = \"testing\"\n",
            moto.endpoint
        ))
        // The secret from the environment, as an operator would pass it.
        .env("SCENEINTRUDER_BLOBS_SECRET_ACCESS_KEY", "testing")
        .start()
        .await;
    let (status, _) = server.get("/api/config/health").await;
    assert_eq!(status, 200);
    let log = server.log_text();
    assert!(
        log.contains("blob store ready") && log.contains(&format!("s3://{name}/srv")),
        "{log}"
    );
    assert!(
        !log.contains("testing\""),
        "no credentials in the log: {log}"
    );
    // The start-up probe cleaned up after itself.
    let listing = s3_client(&format!(
        "print(s3.list_objects_v2(Bucket='{name}').get('KeyCount'))"
    ));
    assert_eq!(listing.trim(), "0");
}

/// `sceneintruder serve` with `env`, expected to fail: its stderr.
fn failing_start(data_dir: &Path, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new(server_binary());
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("SCENEINTRUDER_PLUGIN_CACHE_DIR", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start sceneintruder");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server kept running on a blob store it cannot use");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    assert!(!out.status.success(), "start-up must fail");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "it must not listen"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn the_server_refuses_to_start_on_a_store_it_cannot_use() {
    let moto = moto();
    let dir = tempfile::tempdir().expect("dir");
    let common = |url: &str| {
        vec![
            ("SCENEINTRUDER_BLOBS_URL", url.to_string()),
            ("SCENEINTRUDER_BLOBS_ENDPOINT", moto.endpoint.clone()),
            ("SCENEINTRUDER_BLOBS_ALLOW_HTTP", "true".to_string()),
            ("SCENEINTRUDER_BLOBS_REGION", "us-east-1".to_string()),
            ("SCENEINTRUDER_BLOBS_ACCESS_KEY_ID", "testing".to_string()),
            (
                "SCENEINTRUDER_BLOBS_SECRET_ACCESS_KEY",
                "testing".to_string(),
            ),
        ]
    };
    let stderr = failing_start(dir.path(), &common("s3://no-such-bucket"));
    assert!(
        stderr.contains("blob store") && stderr.contains("s3://no-such-bucket"),
        "{stderr}"
    );
    let stderr = failing_start(dir.path(), &common("ftp://example/x"));
    assert!(
        stderr.contains("[blobs]") && stderr.contains("unsupported blob store scheme"),
        "{stderr}"
    );
    let mut http_refused = common("s3://any");
    http_refused.retain(|(k, _)| *k != "SCENEINTRUDER_BLOBS_ALLOW_HTTP");
    http_refused.push(("SCENEINTRUDER_BLOBS_ALLOW_HTTP", "false".into()));
    let stderr = failing_start(dir.path(), &http_refused);
    assert!(stderr.contains("blob store"), "{stderr}");
}
