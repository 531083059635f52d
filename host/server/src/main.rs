//! `sceneintruder`: the SceneIntruder server.

mod api;
mod app;
mod auth;
mod config;
mod domain;
mod error;
mod jobs;
mod listener;
mod plugin_cli;
mod realtime;
mod secrets;
mod time;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides};

/// mimalloc instead of the system allocator: a request allocates many small short-lived
/// buffers across threads, where glibc's malloc spent about a tenth of the CPU (profiled
/// under `cargo xtask loadtest`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sceneintruder",
    version,
    about = "Self-hosted server for AI-assisted storytelling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Write, check, try, install and list plugins.
    #[command(subcommand)]
    Plugins(plugin_cli::PluginsCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password comes from stdin (`--password-stdin`) or the
    /// SCENEINTRUDER_PASSWORD environment variable, never from the command line.
    Add {
        /// Username: 1-64 of letters, digits, _ . -
        name: String,
        /// Give the account administrator rights (settings, other users' jobs).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        location: Location,
    },
}

/// Where the data lives (the same flags and variables as `serve`).
#[derive(clap::Args)]
struct Location {
    /// Data directory [default: ./data].
    #[arg(long, env = "SCENEINTRUDER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Config file [default: <data-dir>/config.toml if it exists].
    #[arg(long, env = "SCENEINTRUDER_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL [default: SQLite under the data dir].
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on, HOST:PORT [default: 127.0.0.1:8080].
    #[arg(long, env = "SCENEINTRUDER_ADDR")]
    addr: Option<String>,
    /// Data directory (database, plugins, caches) [default: ./data].
    #[arg(long, env = "SCENEINTRUDER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Plugins folder [default: <data-dir>/plugins].
    #[arg(long, env = "SCENEINTRUDER_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Config file [default: <data-dir>/config.toml if it exists].
    #[arg(long, env = "SCENEINTRUDER_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://... [default: SQLite under the data dir].
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
}

/// Logs go to stderr through a background writer, so a request never waits for the
/// terminal or a slow pipe; colours only when stderr is a terminal. Keep the returned guard
/// alive: dropping it flushes what is still queued.
fn init_logging(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("SCENEINTRUDER_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn"));
    // Not lossy: when the queue is full a line waits rather than disappears.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::User(UserCommand::Add {
            name,
            admin,
            password_stdin,
            location,
        }) => add_user(name, admin, password_stdin, location).await,
        Command::Plugins(command) => plugin_cli::run(command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sceneintruder: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(
        Overrides {
            config: args.config,
            addr: args.addr,
            data_dir: args.data_dir,
            plugins_dir: args.plugins_dir,
            database_url: args.database_url,
        },
        &app::environment(),
    )?;
    let _log_writer = init_logging(config.log_json);
    // Every connection is a file descriptor: a soft limit of 256 or 1024 runs out long
    // before max_connections (the hard limit is the most a process may raise it to).
    listener::raise_open_files_limit();
    let state = app::build(config).await?;
    app::serve(state).await
}

async fn add_user(
    name: String,
    admin: bool,
    password_stdin: bool,
    location: Location,
) -> anyhow::Result<()> {
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        std::env::var("SCENEINTRUDER_PASSWORD").map_err(|_| {
            anyhow::anyhow!(
                "give the password on stdin with --password-stdin, or in SCENEINTRUDER_PASSWORD"
            )
        })?
    };
    let config = Config::resolve(
        Overrides {
            config: location.config,
            data_dir: location.data_dir,
            database_url: location.database_url,
            ..Default::default()
        },
        &app::environment(),
    )?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = sceneintruder_store::Database::connect(&config.database_url).await?;
    db.migrate().await?;
    domain::auth::add_user(&db, &name, &password, admin, chrono::Utc::now().timestamp()).await?;
    db.close().await;
    println!("created user {name}{}", if admin { " (admin)" } else { "" });
    Ok(())
}
