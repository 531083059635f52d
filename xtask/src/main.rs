//! Project tasks. `cargo xtask <run|test|plugins|bench>`; see README.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde::Deserialize;

const WASM_TARGET: &str = "wasm32-wasip2";
const WASM_PROFILE: &str = "wasm-release";

/// The list of plugins shipped with the server (also read by the server's build script).
const BUNDLED_LIST: &str = "plugins/bundled.toml";
/// Plugins that exist only for tests.
/// Plugins built for the tests only: misbehaving ones, an old-WIT one, and the example
/// third-party exporter (installed like an operator would install it).
const TEST_ONLY: &[&str] = &[
    "tests/plugins/chaos",
    "tests/plugins/compat",
    "tests/plugins/probe-exporter",
    "examples/plugins/export-epub",
];

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the plugins and the server (release), install the bundled plugins, run the server.
    Run {
        /// Data directory [default: ./data].
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Extra arguments for `sceneintruder serve`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build every plugin and run the whole test suite (SQLite; PostgreSQL too when
    /// TEST_DATABASE_URL is set).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build the bundled plugins and install them into the plugins folder.
    Plugins {
        /// Plugins folder [default: $SCENEINTRUDER_PLUGINS_DIR or ./data/plugins].
        #[arg(long)]
        dest: Option<PathBuf>,
    },
    /// Build the plugins and run the benchmarks.
    Bench {
        /// Extra arguments for `cargo bench`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Load-test the read path of the release server with `wrk` (installed from Debian's
    /// packages when missing); prints req/s, p50 and p99 per route.
    Loadtest,
}

#[derive(Deserialize)]
struct BundledList {
    crates: Vec<String>,
}

/// Crate folders of the bundled plugins.
fn bundled(root: &Path) -> Result<Vec<String>> {
    let path = root.join(BUNDLED_LIST);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(toml::from_str::<BundledList>(&text)
        .with_context(|| format!("parsing {}", path.display()))?
        .crates)
}

#[derive(Deserialize)]
struct ManifestHead {
    id: String,
    component: String,
}

fn main() -> std::process::ExitCode {
    match task(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn task(cli: Cli) -> Result<()> {
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    let bundled = bundled(&root)?;
    let bundled: Vec<&str> = bundled.iter().map(String::as_str).collect();
    match cli.command {
        Task::Run { data_dir, args } => {
            build_bundled(&root, &bundled)?;
            install(&root, &bundled, &data_dir.join("plugins"))?;
            let mut cmd = cargo();
            cmd.args([
                "run",
                "--release",
                "-p",
                "sceneintruder-server",
                "--bin",
                "sceneintruder",
                "--",
                "serve",
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(args);
            run(&mut cmd)
        }
        Task::Test { args } => {
            let dist = build_dist(&root, &bundled)?;
            // The end-to-end tests start the real binary.
            build_server(&[])?;
            if std::env::var_os("TEST_DATABASE_URL").is_none() {
                eprintln!("xtask: TEST_DATABASE_URL is not set; database tests run on SQLite only");
            }
            run(cargo()
                .args(["test", "--workspace"])
                .args(args)
                .env("SCENEINTRUDER_PLUGIN_DIST", &dist))
        }
        Task::Plugins { dest } => {
            let dest = dest
                .or_else(|| std::env::var_os("SCENEINTRUDER_PLUGINS_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("data/plugins"));
            build_bundled(&root, &bundled)?;
            install(&root, &bundled, &dest)
        }
        Task::Bench { args } => {
            let dist = build_dist(&root, &bundled)?;
            // The realtime benchmarks drive the release binary.
            build_server(&["--release"])?;
            let bin = target_dir(&root).join("release").join("sceneintruder");
            run(cargo()
                .args([
                    "bench",
                    "-p",
                    "sceneintruder-runtime",
                    "-p",
                    "sceneintruder-tests",
                    "--bench",
                    "plugin_calls",
                    "--bench",
                    "realtime",
                ])
                .args(args)
                .env("SCENEINTRUDER_PLUGIN_DIST", &dist)
                .env("SCENEINTRUDER_BIN", bin))
        }
        Task::Loadtest => {
            ensure_wrk()?;
            let dist = build_dist(&root, &bundled)?;
            build_server(&["--release"])?;
            let bin = target_dir(&root).join("release").join("sceneintruder");
            run(cargo()
                .args(["bench", "-p", "sceneintruder-tests", "--bench", "loadtest"])
                .env("SCENEINTRUDER_PLUGIN_DIST", &dist)
                .env("SCENEINTRUDER_BIN", bin))
        }
    }
}

/// Build every plugin (bundled and test-only) and lay them out for tests and benchmarks.
fn build_dist(root: &Path, bundled: &[&str]) -> Result<PathBuf> {
    build_bundled(root, bundled)?;
    build_plugins(root, TEST_ONLY)?;
    let all: Vec<&str> = bundled.iter().chain(TEST_ONLY).copied().collect();
    let dist = dist_dir(root);
    install(root, &all, &dist)?;
    Ok(dist)
}

fn build_server(profile: &[&str]) -> Result<()> {
    run(cargo()
        .args([
            "build",
            "-p",
            "sceneintruder-server",
            "--bin",
            "sceneintruder",
        ])
        .args(profile))
}

/// Build the bundled plugins and record their components' digests, which the server
/// embeds when it is built next (see `digests_file`).
fn build_bundled(root: &Path, crates: &[&str]) -> Result<()> {
    use sha2::Digest;
    build_plugins(root, crates)?;
    let out = target_dir(root).join(WASM_TARGET).join(WASM_PROFILE);
    let mut lines = String::new();
    for dir in crates {
        let head = manifest_head(root, dir)?;
        let built = out.join(format!(
            "{}.wasm",
            package_name(root, dir)?.replace('-', "_")
        ));
        let bytes =
            std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
        lines.push_str(&format!(
            "{} {}\n",
            head.id,
            hex::encode(sha2::Sha256::digest(&bytes))
        ));
    }
    let file = digests_file(root);
    // Rewrite only on change: the server's build script reruns when this file changes.
    if std::fs::read_to_string(&file).ok().as_deref() != Some(lines.as_str()) {
        std::fs::create_dir_all(target_dir(root))?;
        std::fs::write(&file, lines)?;
    }
    Ok(())
}

/// `<id> <sha256>` of each bundled component, read by host/server/build.rs.
fn digests_file(root: &Path) -> PathBuf {
    target_dir(root).join("bundled-digests.txt")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn manifest_head(root: &Path, dir: &str) -> Result<ManifestHead> {
    let manifest_path = root.join(dir).join("plugin.toml");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", manifest_path.display()))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest_dir
        .parent()
        .context("xtask lives one level below the workspace root")?
        .to_path_buf())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Where built plugins are laid out as plugin folders for tests and benchmarks.
fn dist_dir(root: &Path) -> PathBuf {
    target_dir(root).join("plugin-dist")
}

/// `wrk`, from Debian's packages.
fn ensure_wrk() -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: installing wrk with apt-get");
    run(Command::new("apt-get").args(["install", "-y", "--no-install-recommends", "wrk"]))
        .context("wrk is needed for the load test; install Debian's wrk package")
}

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WASM_TARGET) =>
        {
            Ok(())
        }
        Ok(_) => run(Command::new("rustup").args(["target", "add", WASM_TARGET])),
        Err(e) => {
            eprintln!(
                "xtask: rustup not found ({e}); assuming the {WASM_TARGET} target is installed"
            );
            Ok(())
        }
    }
}

fn package_name(root: &Path, crate_dir: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct Pkg {
        package: PkgName,
    }
    #[derive(Deserialize)]
    struct PkgName {
        name: String,
    }
    let text = std::fs::read_to_string(root.join(crate_dir).join("Cargo.toml"))?;
    Ok(toml::from_str::<Pkg>(&text)?.package.name)
}

/// Build each plugin in its own cargo invocation, so SDK features (one per world) never
/// unify across plugins.
fn build_plugins(root: &Path, crates: &[&str]) -> Result<()> {
    ensure_wasm_target()?;
    for dir in crates {
        let name = package_name(root, dir)?;
        run(cargo().args([
            "build",
            "--quiet",
            "--profile",
            WASM_PROFILE,
            "--target",
            WASM_TARGET,
            "-p",
            &name,
        ]))?;
    }
    Ok(())
}

/// Lay each plugin out as `<dest>/<id>/{plugin.toml, component}`.
fn install(root: &Path, crates: &[&str], dest: &Path) -> Result<()> {
    let out = target_dir(root).join(WASM_TARGET).join(WASM_PROFILE);
    for dir in crates {
        let manifest_path = root.join(dir).join("plugin.toml");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?;
        let head: ManifestHead = toml::from_str(&text)
            .with_context(|| format!("parsing {}", manifest_path.display()))?;
        let built = out.join(format!(
            "{}.wasm",
            package_name(root, dir)?.replace('-', "_")
        ));
        let folder = dest.join(&head.id);
        std::fs::create_dir_all(&folder)?;
        std::fs::copy(&built, folder.join(&head.component))
            .with_context(|| format!("copying {}", built.display()))?;
        std::fs::write(folder.join("plugin.toml"), text)?;
        println!(
            "xtask: installed plugin {} into {}",
            head.id,
            folder.display()
        );
    }
    Ok(())
}
