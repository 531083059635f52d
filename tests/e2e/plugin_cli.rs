//! `sceneintruder plugins ...` through the real binary: a plugin crate written from each
//! template, built outside the workspace for wasm32-wasip2, checked, called (the LLM one
//! against a loopback fake of the OpenAI API, the vision one against a fake of the OpenAI
//! Images API), installed, listed and removed; broken manifests refused with their reason; a
//! bundled plugin checked as built.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sceneintruder_tests::fake::{FakeVendor, Recorded, Reply};
use sceneintruder_tests::{plugin_dist, server_binary, target_dir};
use serde_json::json;

const KEY: &str = "sk-template-7321";

/// One `sceneintruder` run, isolated from the caller's plugins folder and config, in `cwd`.
fn run(cwd: &Path, args: &[&OsStr], envs: &[(&str, &OsStr)]) -> Output {
    let mut cmd = Command::new(server_binary());
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("SCENEINTRUDER_PLUGINS_DIR")
        .env_remove("SCENEINTRUDER_DATA_DIR")
        .env_remove("SCENEINTRUDER_CONFIG")
        .env_remove("SCENEINTRUDER_LOG")
        .env_remove("CARGO_TARGET_DIR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run sceneintruder")
}

/// Run and return (success, stdout, stderr).
fn sceneintruder(cwd: &Path, args: &[&str], envs: &[(&str, &OsStr)]) -> (bool, String, String) {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let out = run(cwd, &args, envs);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run on a blocking thread, so a fake vendor on this test's runtime can answer.
async fn sceneintruder_async(
    cwd: &Path,
    args: &[&str],
    envs: &[(&str, &OsStr)],
) -> (bool, String, String) {
    let cwd = cwd.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let envs: Vec<(String, std::ffi::OsString)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_os_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &OsStr)> = envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        sceneintruder(&cwd, &args, &envs)
    })
    .await
    .expect("cli thread")
}

/// One cargo target folder for every template build (reruns are incremental).
fn template_target() -> PathBuf {
    target_dir().join("plugin-template-build")
}

/// A temp folder outside the workspace.
fn outside_temp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir")
}

/// `cargo build --release --target wasm32-wasip2` in `crate_dir`, as the generated README
/// says.
fn build_template(crate_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", template_target())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the template in {} failed:\n{}",
        crate_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn target_env() -> Vec<(&'static str, std::ffi::OsString)> {
    vec![("CARGO_TARGET_DIR", template_target().into_os_string())]
}

fn envs<'a>(list: &'a [(&'static str, std::ffi::OsString)]) -> Vec<(&'static str, &'a OsStr)> {
    list.iter().map(|(k, v)| (*k, v.as_os_str())).collect()
}

fn sse_chunk(content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "model": "acme-large",
               "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    )
}

/// A fake OpenAI API: models, completions, streamed completions.
async fn fake_openai() -> FakeVendor {
    FakeVendor::start(|r: &Recorded| {
        if r.path.ends_with("/models") {
            return Reply::json(
                200,
                json!({"object": "list", "data": [{"id": "acme-large", "object": "model"}]}),
            );
        }
        if r.json()["stream"] == true {
            let finish = format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "acme-large",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            );
            let (a, b) = (sse_chunk("Once upon"), sse_chunk(" a tide"));
            return Reply::sse(&[&a, &b, &finish, "data: [DONE]\n\n"]);
        }
        Reply::json(
            200,
            json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "acme-large",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from the fake vendor"},
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
            }),
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_template_builds_checks_and_calls_a_vendor() {
    let tmp = outside_temp("si-plugin-llm-");
    let crate_dir = tmp.path().join("acme-llm");
    let dir = crate_dir.to_str().expect("utf-8 path");

    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "new", "llm", "acme-llm", "--dir", dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("cargo build --release --target wasm32-wasip2"),
        "{stdout}"
    );
    for file in ["Cargo.toml", "plugin.toml", "src/lib.rs", "README.md"] {
        assert!(crate_dir.join(file).is_file(), "{file} written");
    }
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).expect("README");
    assert!(
        readme.contains("sceneintruder plugins install ."),
        "{readme}"
    );

    // A folder with something in it is refused; so is a bad id.
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "new", "llm", "acme-llm", "--dir", dir],
        &[],
    );
    assert!(!ok && stderr.contains("not empty"), "{stderr}");
    let (ok, _, stderr) = sceneintruder(tmp.path(), &["plugins", "new", "llm", "Bad Id"], &[]);
    assert!(!ok && stderr.contains("invalid plugin id"), "{stderr}");

    // Not built yet (an empty target folder): check says how to build it.
    let empty = tmp.path().join("empty-target");
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "check", dir],
        &[("CARGO_TARGET_DIR", empty.as_os_str())],
    );
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("cargo build --release --target wasm32-wasip2"),
        "{stderr}"
    );

    let target = target_env();

    build_template(&crate_dir);
    let (ok, stdout, stderr) =
        sceneintruder(tmp.path(), &["plugins", "check", dir], &envs(&target));
    assert!(ok, "check failed:\n{stdout}{stderr}");
    assert!(stdout.contains("acme-llm"), "{stdout}");
    assert!(stdout.contains("llm-provider"), "{stdout}");
    assert!(stdout.contains("https://api.openai.com"), "{stdout}");
    assert!(stdout.contains("sha256"), "{stdout}");

    let vendor = fake_openai().await;
    let base_url = format!("base_url={}/v1", vendor.base);
    let api_key = format!("api_key={KEY}");
    let call = |op: &'static [&'static str]| {
        let mut args = vec![
            "plugins", "call", dir, "--set", &base_url, "--set", &api_key,
        ];
        args.extend_from_slice(op);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };

    let args = call(&["complete", "hi", "--model", "acme-large"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = sceneintruder_async(tmp.path(), &args, &envs(&target)).await;
    assert!(ok, "complete failed:\n{stdout}{stderr}");
    assert!(stdout.contains("Hello from the fake vendor"), "{stdout}");
    let seen = vendor.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = seen.json();
    assert_eq!(body["model"], "acme-large");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key is never printed"
    );

    // Without a model, the template's default model is asked for.
    let args = call(&["complete", "hi"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = sceneintruder_async(tmp.path(), &args, &envs(&target)).await;
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(vendor.last().json()["model"], "gpt-4o-mini");

    let args = call(&["stream", "tell me"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = sceneintruder_async(tmp.path(), &args, &envs(&target)).await;
    assert!(ok, "stream failed:\n{stdout}{stderr}");
    assert!(stdout.contains("Once upon a tide"), "{stdout}");
    assert_eq!(vendor.last().json()["stream"], true);

    let args = call(&["models"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = sceneintruder_async(tmp.path(), &args, &envs(&target)).await;
    assert!(ok, "models failed:\n{stdout}{stderr}");
    assert!(stdout.contains("acme-large"), "{stdout}");
    assert_eq!(vendor.last().path, "/v1/models");

    // The key is required: without it nothing is sent.
    let before = vendor.requests().len();
    let (ok, _, stderr) = sceneintruder_async(
        tmp.path(),
        &["plugins", "call", dir, "--set", &base_url, "complete", "hi"],
        &envs(&target),
    )
    .await;
    assert!(!ok && stderr.contains("api_key"), "{stderr}");
    assert_eq!(vendor.requests().len(), before);

    // A vendor failure is the runtime's message and a failure exit.
    let down = FakeVendor::start(|_| {
        Reply::json(
            401,
            json!({"error": {"message": "bad key", "type": "invalid_request_error"}}),
        )
    })
    .await;
    let down_url = format!("base_url={}/v1", down.base);
    let (ok, _, stderr) = sceneintruder_async(
        tmp.path(),
        &[
            "plugins", "call", dir, "--set", &down_url, "--set", &api_key, "complete", "hi",
        ],
        &envs(&target),
    )
    .await;
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");

    // An exporter operation on an LLM plugin is refused by name.
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "call", dir, "export", "scene", "txt"],
        &envs(&target),
    );
    assert!(
        !ok && stderr.contains("not an operation of llm-provider"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_template_builds_renders_and_installs() {
    let tmp = outside_temp("si-plugin-exporter-");
    let crate_dir = tmp.path().join("plain-notes");
    let dir = crate_dir.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "new", "exporter", "plain-notes", "--dir", dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    build_template(&crate_dir);
    let target = target_env();

    let (ok, stdout, stderr) =
        sceneintruder(tmp.path(), &["plugins", "check", dir], &envs(&target));
    assert!(ok, "check failed:\n{stdout}{stderr}");
    assert!(stdout.contains("plain-notes"), "{stdout}");
    assert!(stdout.contains("scene.plain-notes"), "{stdout}");

    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "call", dir, "export", "scene", "plain-notes"],
        &envs(&target),
    );
    assert!(ok, "export failed:\n{stdout}{stderr}");
    assert!(
        stdout.starts_with("The Lighthouse Keeper\n"),
        "the sample scene rendered:\n{stdout}"
    );
    assert!(stdout.contains("- Mara: keeper"), "{stdout}");
    assert!(stdout.contains("Mara: Someone cut the wick."), "{stdout}");

    // An input of one's own, written to a file.
    let mut input: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/export/scene.input.json"),
        )
        .expect("golden input"),
    )
    .expect("json");
    input["format"] = "plain-notes".into();
    let input_path = tmp.path().join("input.json");
    std::fs::write(&input_path, input.to_string()).expect("write input");
    let out_path = tmp.path().join("out.txt");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &[
            "plugins",
            "call",
            dir,
            "export",
            "scene",
            "plain-notes",
            "--input",
            input_path.to_str().expect("utf-8"),
            "--out",
            out_path.to_str().expect("utf-8"),
        ],
        &envs(&target),
    );
    assert!(ok, "{stdout}{stderr}");
    let written = std::fs::read_to_string(&out_path).expect("output written");
    assert!(written.starts_with("The Harbor Fog\n"), "{written}");

    // A pair it does not render: the runtime's refusal, with what it does render.
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "call", dir, "export", "story", "plain-notes"],
        &envs(&target),
    );
    assert!(!ok && stderr.contains("scene.plain-notes"), "{stderr}");

    // Installed straight from the crate folder into a plugins folder.
    let plugins = tmp.path().join("plugins");
    let plugins_dir = plugins.to_str().expect("utf-8");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "install", dir, "--plugins-dir", plugins_dir],
        &envs(&target),
    );
    assert!(ok, "install failed:\n{stdout}{stderr}");
    assert!(plugins.join("plain-notes/plugin.toml").is_file());
    assert!(
        plugins
            .join("plain-notes/export_plain_notes.wasm")
            .is_file()
    );
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "list", "--plugins-dir", plugins_dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("plain-notes "))
        .unwrap_or_else(|| panic!("listed:\n{stdout}"));
    assert!(row.contains("exporter") && row.contains("loaded"), "{row}");
}

/// A small real PNG (3 x 2, RGB), as a vendor would encode it.
fn small_png() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 3, 2);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    let pixels: Vec<u8> = (0..18u8).map(|i| i.wrapping_mul(37)).collect();
    writer.write_image_data(&pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

/// Where the fake of the Images API serves an image it answered with as a URL.
const IMAGE_PATH: &str = "/files/lighthouse.png";

/// A fake of the OpenAI Images API: `POST /v1/images/generations` answers with `png` as
/// `data[0].b64_json`, or with `as_url` as `data[0].url` on the fake's own origin, where
/// `GET /files/lighthouse.png` serves it.
async fn fake_images(png: Vec<u8>, as_url: bool) -> FakeVendor {
    use base64::Engine as _;
    FakeVendor::start(move |r: &Recorded| {
        if r.method == "GET" && r.path == IMAGE_PATH {
            return Reply {
                status: 200,
                headers: vec![("content-type".into(), "image/png".into())],
                chunks: vec![png.clone()],
                chunk_delay: std::time::Duration::ZERO,
            };
        }
        if r.method != "POST" || r.path != "/v1/images/generations" {
            return Reply::json(404, json!({"error": {"message": "no such route"}}));
        }
        if as_url {
            let origin = format!("http://{}", r.header("host").unwrap_or_default());
            Reply::json(
                200,
                json!({"created": 1_713_833_628, "data": [{"url": format!("{origin}{IMAGE_PATH}")}]}),
            )
        } else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
            Reply::json(
                200,
                json!({"created": 1_713_833_628, "data": [{"b64_json": b64}],
                       "output_format": "png", "size": "1024x1024"}),
            )
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vision_template_builds_checks_and_draws_through_a_vendor() {
    let tmp = outside_temp("si-plugin-vision-");
    let crate_dir = tmp.path().join("acme-draw");
    let dir = crate_dir.to_str().expect("utf-8 path");

    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "new", "vision", "acme-draw", "--dir", dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("vision-provider") && stdout.contains("crate vision-acme-draw"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cargo build --release --target wasm32-wasip2"),
        "{stdout}"
    );
    // The vision settings select plugins `vision-<name>`: said up front.
    assert!(stdout.contains("vision-acme-draw"), "{stdout}");
    for file in [
        "Cargo.toml",
        "plugin.toml",
        "src/lib.rs",
        "README.md",
        ".gitignore",
    ] {
        assert!(crate_dir.join(file).is_file(), "{file} written");
    }

    // --base-url is for the provider templates only.
    let other = tmp.path().join("notes");
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &[
            "plugins",
            "new",
            "exporter",
            "notes",
            "--dir",
            other.to_str().expect("utf-8"),
            "--base-url",
            "http://127.0.0.1:9/v1",
        ],
        &[],
    );
    assert!(!ok && stderr.contains("llm and vision"), "{stderr}");

    build_template(&crate_dir);
    let target = target_env();
    let (ok, stdout, stderr) =
        sceneintruder(tmp.path(), &["plugins", "check", dir], &envs(&target));
    assert!(ok, "check failed:\n{stdout}{stderr}");
    assert!(stdout.contains("acme-draw"), "{stdout}");
    assert!(stdout.contains("vision-provider"), "{stdout}");
    assert!(stdout.contains("gpt-image-1"), "{stdout}");
    assert!(stdout.contains("https://api.openai.com"), "{stdout}");
    assert!(stdout.contains("api_key (secret, required)"), "{stdout}");

    let png = small_png();
    let api_key = format!("api_key={KEY}");

    // Base64 answer: the file holds exactly the bytes the vendor encoded.
    let vendor = fake_images(png.clone(), false).await;
    let base_url = format!("base_url={}/v1", vendor.base);
    let out = tmp.path().join("b64.png");
    let (ok, stdout, stderr) = sceneintruder_async(
        tmp.path(),
        &[
            "plugins",
            "call",
            dir,
            "--set",
            &base_url,
            "--set",
            &api_key,
            "image",
            "a lighthouse",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        &envs(&target),
    )
    .await;
    assert!(ok, "image failed:\n{stdout}{stderr}");
    assert_eq!(std::fs::read(&out).expect("image written"), png);
    assert!(stdout.contains("image/png"), "{stdout}");
    let sent = vendor.requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let seen = &sent[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/images/generations");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    // 512 x 512 asked for, snapped to the nearest size the template's model draws.
    assert_eq!(
        seen.json(),
        json!({"model": "gpt-image-1", "prompt": "a lighthouse", "n": 1, "size": "1024x1024"})
    );
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key is never printed"
    );

    // URL answer on the vendor's own origin: the host downloads it, without the key. The
    // `model` setting names the vendor model; the size follows the request.
    let vendor = fake_images(png.clone(), true).await;
    let base_url = format!("base_url={}/v1", vendor.base);
    let out = tmp.path().join("url.png");
    let (ok, stdout, stderr) = sceneintruder_async(
        tmp.path(),
        &[
            "plugins",
            "call",
            dir,
            "--set",
            &base_url,
            "--set",
            &api_key,
            "--set",
            "model=acme-image-2",
            "image",
            "a lighthouse",
            "--width",
            "1536",
            "--height",
            "1024",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        &envs(&target),
    )
    .await;
    assert!(ok, "image failed:\n{stdout}{stderr}");
    assert_eq!(std::fs::read(&out).expect("image written"), png);
    let sent = vendor.requests();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (generate, download) = (&sent[0], &sent[1]);
    assert_eq!(
        (generate.method.as_str(), generate.path.as_str()),
        ("POST", "/v1/images/generations")
    );
    assert_eq!(
        generate.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = generate.json();
    assert_eq!(body["model"], "acme-image-2");
    assert_eq!(body["prompt"], "a lighthouse");
    assert_eq!(body["n"], 1);
    assert_eq!(body["size"], "1536x1024");
    assert_eq!(
        (download.method.as_str(), download.path.as_str()),
        ("GET", IMAGE_PATH)
    );
    assert_eq!(download.header("authorization"), None);

    // Without the key: not-configured, and nothing is sent.
    let (ok, _, stderr) = sceneintruder_async(
        tmp.path(),
        &[
            "plugins",
            "call",
            dir,
            "--set",
            &base_url,
            "image",
            "a lighthouse",
            "--out",
            out.to_str().expect("utf-8"),
        ],
        &envs(&target),
    )
    .await;
    assert!(!ok && stderr.contains("api_key"), "{stderr}");
    assert_eq!(vendor.requests().len(), 2);
}

/// The sha256 line of `install`'s output.
fn printed_sha256(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no sha256 line in:\n{stdout}"))
}

#[test]
fn install_list_and_remove_in_a_data_dir() {
    let tmp = outside_temp("si-plugin-install-");
    let data = tmp.path().join("data");
    let data_dir = data.to_str().expect("utf-8");
    let epub = plugin_dist().join("epub");
    let epub = epub.to_str().expect("utf-8");

    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "install", epub, "--data-dir", data_dir],
        &[],
    );
    assert!(ok, "install failed:\n{stdout}{stderr}");
    let digest = printed_sha256(&stdout);
    assert_eq!(digest.len(), 64, "{stdout}");
    assert!(stdout.contains("[plugins.epub]"), "{stdout}");
    assert!(
        stdout.contains(&format!("sha256 = \"{digest}\"")),
        "{stdout}"
    );
    // Where `serve` looks by default: <data-dir>/plugins.
    assert!(data.join("plugins/epub/plugin.toml").is_file());

    // Installing again replaces the folder in place; nothing is left beside it.
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "install", epub, "--data-dir", data_dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    let names: Vec<String> = std::fs::read_dir(data.join("plugins"))
        .expect("plugins dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["epub".to_string()]);

    // A broken plugin beside it is listed with its reason.
    std::fs::create_dir_all(data.join("plugins/broken")).expect("mkdir");
    std::fs::write(
        data.join("plugins/broken/plugin.toml"),
        "id = \"broken\"\nkind = \"exporter\"\nversion = \"0.1.0\"\nwit = \"0.1.2\"\ncomponent = \"missing.wasm\"\n",
    )
    .expect("write");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "list", "--data-dir", data_dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    let epub_row = stdout
        .lines()
        .find(|l| l.starts_with("epub "))
        .unwrap_or_else(|| panic!("listed:\n{stdout}"));
    assert!(epub_row.contains("exporter"), "{epub_row}");
    assert!(epub_row.contains(&digest), "{epub_row}");
    assert!(epub_row.contains("loaded"), "{epub_row}");
    let broken_row = stdout
        .lines()
        .find(|l| l.starts_with("broken "))
        .unwrap_or_else(|| panic!("listed:\n{stdout}"));
    assert!(broken_row.contains("failed: cannot read"), "{broken_row}");

    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "remove", "epub", "--data-dir", data_dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(!data.join("plugins/epub").exists());
    let (ok, stdout, _) = sceneintruder(
        tmp.path(),
        &["plugins", "list", "--data-dir", data_dir],
        &[],
    );
    assert!(
        ok && !stdout.lines().any(|l| l.starts_with("epub ")),
        "{stdout}"
    );
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "remove", "epub", "--data-dir", data_dir],
        &[],
    );
    assert!(
        !ok && stderr.contains("no plugin with id \"epub\""),
        "{stderr}"
    );
}

#[test]
fn a_bundled_plugin_checks_as_built() {
    let tmp = outside_temp("si-plugin-check-");
    let openai = plugin_dist().join("openai");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "check", openai.to_str().expect("utf-8")],
        &[],
    );
    assert!(ok, "check failed:\n{stdout}{stderr}");
    assert!(stdout.contains("openai"), "{stdout}");
    assert!(stdout.contains("llm-provider"), "{stdout}");
    assert!(stdout.contains("gpt-4o"), "{stdout}");

    // The component itself, with its plugin.toml beside it.
    let wasm = openai.join("llm_openai.wasm");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "check", wasm.to_str().expect("utf-8")],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("openai"), "{stdout}");
}

/// A copy of the bundled openai plugin with its manifest edited by `edit`.
fn broken_copy(root: &Path, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let from = plugin_dist().join("openai");
    let to = root.join(name);
    std::fs::create_dir_all(&to).expect("mkdir");
    for entry in std::fs::read_dir(&from).expect("dist") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    let manifest = to.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, edit(&text)).expect("write");
    to
}

/// A change to a manifest's text.
type Edit = fn(&str) -> String;

#[test]
fn broken_manifests_are_refused_with_their_reason() {
    let tmp = outside_temp("si-plugin-broken-");
    let cases: [(&str, Edit, &str); 4] = [
        (
            "unknown-key",
            |t: &str| format!("surprise = 1\n{t}"),
            "unknown field `surprise`",
        ),
        (
            "bad-wit",
            |t: &str| t.replace("wit = \"0.1.3\"", "wit = \"0.9.0\""),
            "WIT 0.9.0",
        ),
        (
            "bad-host",
            |t: &str| t.replace("\"https://api.openai.com\"", "\"ftp://api.openai.com\""),
            "network.hosts",
        ),
        (
            "bad-kind",
            |t: &str| t.replace("kind = \"llm-provider\"", "kind = \"toaster\""),
            "toaster",
        ),
    ];
    for (name, edit, expected) in cases {
        let folder = broken_copy(tmp.path(), name, edit);
        let (ok, stdout, stderr) = sceneintruder(
            tmp.path(),
            &["plugins", "check", folder.to_str().expect("utf-8")],
            &[],
        );
        assert!(!ok, "{name} passed:\n{stdout}");
        assert!(
            stderr.contains(expected),
            "{name}: {expected:?} not in:\n{stderr}"
        );
        assert!(stderr.contains("error: "), "{name}: {stderr}");
    }

    // A manifest and a missing component: one message each.
    let folder = broken_copy(tmp.path(), "two-problems", |t: &str| {
        format!("surprise = 1\n{t}")
    });
    std::fs::remove_file(folder.join("llm_openai.wasm")).expect("rm");
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "check", folder.to_str().expect("utf-8")],
        &[],
    );
    assert!(!ok);
    assert_eq!(stderr.matches("error: ").count(), 2, "{stderr}");
    assert!(stderr.contains("llm_openai.wasm not found"), "{stderr}");

    // Nothing is installed from a plugin that does not pass.
    let plugins = tmp.path().join("plugins");
    let folder = tmp.path().join("bad-wit");
    let (ok, _, stderr) = sceneintruder(
        tmp.path(),
        &[
            "plugins",
            "install",
            folder.to_str().expect("utf-8"),
            "--plugins-dir",
            plugins.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(!ok && stderr.contains("WIT"), "{stderr}");
    assert!(!plugins.join("openai").exists());
}

/// Poll `GET /api/plugins/{id}` until `done` holds for its answer (the watcher reloads the
/// folder about a second after a change).
async fn wait_for_plugin(
    server: &sceneintruder_tests::Server,
    id: &str,
    done: impl Fn(u16, &serde_json::Value) -> bool,
) -> (u16, serde_json::Value) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = server.get(&format!("/api/plugins/{id}")).await;
        if done(status, &body) {
            return (status, body);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not follow the plugins folder: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What a new author does, end to end: `plugins new` outside the workspace, build, check,
/// install into a running server, which picks it up without a restart; a chat goes through
/// the new plugin to a loopback fake vendor; then the plugin is changed and removed, and the
/// server follows each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_goes_from_template_to_a_running_server() {
    use sceneintruder_tests::story_model;

    let vendor = story_model::model(None, None).await;
    let server = story_model::server(sceneintruder_tests::Backend::Sqlite, &vendor.base, "").await;
    let (scene, lin, _) = story_model::harbour_scene(&server).await;

    let tmp = outside_temp("si-plugin-live-");
    let crate_dir = tmp.path().join("tide-llm");
    let dir = crate_dir.to_str().expect("utf-8 path");
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "new", "llm", "tide-llm", "--dir", dir],
        &[],
    );
    assert!(ok, "{stdout}{stderr}");
    build_template(&crate_dir);
    let target = target_env();
    let (ok, stdout, stderr) =
        sceneintruder(tmp.path(), &["plugins", "check", dir], &envs(&target));
    assert!(ok, "check failed:\n{stdout}{stderr}");

    let data_dir = server.data_dir.path().to_str().expect("utf-8").to_string();
    let install = |tmp: &Path| {
        let (ok, stdout, stderr) = sceneintruder(
            tmp,
            &["plugins", "install", dir, "--data-dir", &data_dir],
            &envs(&target),
        );
        assert!(ok, "install failed:\n{stdout}{stderr}");
    };
    install(tmp.path());
    let (_, shown) = wait_for_plugin(&server, "tide-llm", |status, body| {
        status == 200 && body["data"]["state"] == "loaded"
    })
    .await;
    assert_eq!(shown["data"]["kind"], "llm-provider", "{shown}");

    // Make it the active provider, pointed at the fake vendor, and chat through it.
    let (status, body) = server
        .post(
            "/api/settings",
            &json!({
                "llm_provider": "tide-llm",
                "llm_config": {"api_key": KEY, "base_url": format!("{}/v1", vendor.base),
                               "default_model": "gpt-4o"},
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let before = vendor.requests().len();
    let (status, body) = server
        .post(
            "/api/chat",
            &json!({"scene_id": scene, "character_id": lin, "message": "Who keeps the lighthouse?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["response"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    let sent: Vec<_> = vendor.requests().into_iter().skip(before).collect();
    assert!(
        sent.iter().any(|r| r.path == "/v1/chat/completions"
            && r.header("authorization") == Some(format!("Bearer {KEY}").as_str())),
        "the chat went through the new plugin with its key: {sent:?}"
    );

    // Changed: a new version is installed over it; the server swaps it in.
    let manifest = crate_dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(
        &manifest,
        text.replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1),
    )
    .expect("edit manifest");
    install(tmp.path());
    wait_for_plugin(&server, "tide-llm", |_, body| {
        body["data"]["version"] == "0.2.0"
    })
    .await;
    let (status, body) = server
        .post(
            "/api/chat",
            &json!({"scene_id": scene, "character_id": lin, "message": "And now?"}),
        )
        .await;
    assert_eq!(status, 200, "the saved settings carried over: {body}");

    // Removed: the server drops it, and says so.
    let (ok, stdout, stderr) = sceneintruder(
        tmp.path(),
        &["plugins", "remove", "tide-llm", "--data-dir", &data_dir],
        &[],
    );
    assert!(ok, "remove failed:\n{stdout}{stderr}");
    wait_for_plugin(&server, "tide-llm", |status, _| status == 404).await;
    let (_, status) = server.get("/api/llm/status").await;
    assert_eq!(status["data"]["ready"], false, "{status}");
}
