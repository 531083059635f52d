//! `sceneintruder plugins ...`: the plugin author's and operator's commands.
//!
//! * `new`: writes a standalone plugin crate from a template (`templates/plugins/`);
//! * `check`: validates a plugin (manifest, component, its `info` export) the way the server
//!   loads it, and prints what it declares;
//! * `call`: one call of the plugin's world, sandboxed and granted as the server would;
//! * `install`, `list`, `remove`: the plugins folder of a server.
//!
//! Everything that loads a plugin goes through the runtime's public API
//! (`PluginRuntime::load` on a temporary plugins folder holding a copy of the plugin), so a
//! plugin that passes here loads on the server.

mod call;
mod inspect;
mod installed;
mod scaffold;

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `sceneintruder plugins <command>`.
#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Write a new plugin crate from a template (`llm` provider, `vision` provider or
    /// `exporter`).
    New(scaffold::NewArgs),
    /// Validate a plugin (a crate folder, an installed plugin folder or a `.wasm` with its
    /// plugin.toml beside it) and print what it declares.
    Check {
        /// Crate folder, plugin folder, or component `.wasm`.
        plugin: PathBuf,
    },
    /// Call a plugin once, in the server's sandbox with the server's grants.
    Call(call::CallArgs),
    /// Check a plugin, then copy it into the server's plugins folder.
    Install {
        /// Crate folder, plugin folder, or component `.wasm`.
        plugin: PathBuf,
        #[command(flatten)]
        location: PluginsLocation,
    },
    /// List the plugins of the server's plugins folder and whether each one loads.
    List {
        #[command(flatten)]
        location: PluginsLocation,
    },
    /// Remove an installed plugin (the folder whose plugin.toml has this id).
    Remove {
        /// Plugin id.
        id: String,
        #[command(flatten)]
        location: PluginsLocation,
    },
}

/// Where the server's plugins folder is: resolved the way `serve` resolves it.
#[derive(Args, Clone, Default)]
pub struct PluginsLocation {
    /// Plugins folder [default: <data-dir>/plugins].
    #[arg(long, env = "SCENEINTRUDER_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, env = "SCENEINTRUDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file [default: <data-dir>/config.toml if it exists].
    #[arg(long, env = "SCENEINTRUDER_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Run one `plugins` command.
pub async fn run(command: PluginsCommand) -> anyhow::Result<()> {
    init_logging();
    match command {
        PluginsCommand::New(args) => scaffold::new(args),
        PluginsCommand::Check { plugin } => inspect::check(&plugin).await,
        PluginsCommand::Call(args) => call::call(args).await,
        PluginsCommand::Install { plugin, location } => {
            installed::install(&plugin, &location).await
        }
        PluginsCommand::List { location } => installed::list(&location).await,
        PluginsCommand::Remove { id, location } => installed::remove(&id, &location),
    }
}

/// Plugin log lines (`log.write`) and refused outbound requests go to stderr; the runtime's
/// other messages only when asked for with `SCENEINTRUDER_LOG` (these commands print their
/// own findings).
fn init_logging() {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SCENEINTRUDER_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "off,sceneintruder_runtime::sandbox=info,sceneintruder_runtime::http=warn",
            )
        });
    // Fails only when a subscriber is already installed, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// Which plugin ids are bundled and their components' digests, as embedded at build time
/// (the same list `serve` uses).
mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// The bundled plugins, for trust decisions identical to the server's.
pub(crate) fn bundled_plugins() -> sceneintruder_runtime::BundledPlugins {
    sceneintruder_runtime::BundledPlugins {
        ids: bundled::BUNDLED_IDS.iter().map(|s| s.to_string()).collect(),
        digests: bundled::BUNDLED_DIGESTS
            .iter()
            .map(|(id, digest)| (id.to_string(), digest.to_string()))
            .collect(),
    }
}

/// Whether `id` is reserved for a bundled plugin.
pub(crate) fn is_bundled_id(id: &str) -> bool {
    bundled::BUNDLED_IDS.contains(&id)
}
