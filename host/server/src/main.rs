//! `sceneintruder`: the SceneIntruder server.

mod api;
mod app;
mod config;
mod domain;
mod error;
mod jobs;
mod realtime;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Overrides};

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

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("SCENEINTRUDER_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn,cranelift=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
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
    init_logging(config.log_json);
    let state = app::build(config).await?;
    app::serve(state).await
}
