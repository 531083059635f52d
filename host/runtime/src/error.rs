//! The runtime's error types.

use std::path::PathBuf;
use std::time::Duration;

use crate::manifest::Version;

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("plugin.toml is not valid: {0}")]
    Syntax(String),
    #[error("plugin.toml field {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("plugin was built for WIT {plugin}, which this host (WIT {host}) cannot load")]
    IncompatibleWit { plugin: Version, host: Version },
}

impl ManifestError {
    pub(crate) fn invalid(field: &str, message: &str) -> ManifestError {
        ManifestError::Invalid {
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

/// Errors of the runtime crate.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("plugin {0:?} is not loaded")]
    NotLoaded(String),
    #[error("plugin {id:?} is a {actual} plugin, not a {expected} plugin")]
    WrongKind {
        id: String,
        expected: crate::PluginKind,
        actual: crate::PluginKind,
    },
    #[error("cannot load component: {0}")]
    Load(String),
    #[error("plugin engine setup failed: {0}")]
    Engine(String),
    #[error(transparent)]
    Call(#[from] CallError),
}

/// How one plugin call failed. Every variant fails only that call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin {plugin} ran out of its {}ms time budget", .budget.as_millis())]
    Timeout { plugin: String, budget: Duration },
    #[error("plugin {plugin} exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { plugin: String, limit_bytes: usize },
    #[error("plugin {plugin} crashed: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} could not be started: {message}")]
    Instantiate { plugin: String, message: String },
    #[error("plugin {plugin} is busy: {limit} calls already running")]
    Busy { plugin: String, limit: usize },
    #[error("plugin call cancelled")]
    Cancelled,
    #[error("plugin {plugin}: {error}")]
    Provider {
        plugin: String,
        error: crate::types::ProviderError,
    },
    #[error("plugin {plugin}: {error}")]
    Export {
        plugin: String,
        error: crate::export::ExportError,
    },
}
