//! The runtime's error types.

use std::path::PathBuf;
use std::time::Duration;

use crate::export::ExportError;
use crate::manifest::Version;
use crate::types::{HttpError, ProviderError};

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
    #[error("plugin {plugin}: {}", describe_provider_error(.error))]
    Provider {
        plugin: String,
        error: ProviderError,
    },
    #[error("plugin {plugin}: {}", describe_export_error(.error))]
    Export { plugin: String, error: ExportError },
    /// A completion's text (or its stream's final `done`) over `limits.max_reply_bytes`.
    #[error(
        "plugin {plugin} returned a reply larger than {limit_bytes} bytes (limits.max_reply_bytes)"
    )]
    ReplyTooLarge { plugin: String, limit_bytes: usize },
    /// A stream that delivered more than `limits.max_stream_bytes` of text.
    #[error("plugin {plugin} streamed more than {limit_bytes} bytes (limits.max_stream_bytes)")]
    StreamTooLarge { plugin: String, limit_bytes: usize },
    /// A stream that delivered more than `limits.max_stream_events` events.
    #[error("plugin {plugin} streamed more than {limit} events (limits.max_stream_events)")]
    StreamTooLong { plugin: String, limit: u32 },
    /// A stream that went longer than `limits.stream_idle_timeout_ms` without an event.
    #[error(
        "plugin {plugin} sent no stream event for {} ms (limits.stream_idle_timeout_ms)",
        .idle.as_millis()
    )]
    StreamIdle { plugin: String, idle: Duration },
}

/// Longest text a plugin chose (an error message) that the host shows, in characters.
pub const PLUGIN_TEXT_CHARS: usize = 500;

/// Text a plugin chose, as the host shows it (API error details, the log): cut to
/// [`PLUGIN_TEXT_CHARS`], secrets substituted lately redacted, newlines and control
/// characters escaped, as in plugin log lines.
fn shown(text: &str) -> String {
    crate::sandbox::escape_plugin_text(
        &crate::http::redact_substituted(text, PLUGIN_TEXT_CHARS),
        PLUGIN_TEXT_CHARS,
    )
}

/// Readable text of a provider error (the generated `Display` is only `Debug`). Every message
/// in it is the plugin's: shown cut, redacted and escaped.
pub fn describe_provider_error(e: &ProviderError) -> String {
    match e {
        ProviderError::Http(h) => describe_http_error(h),
        ProviderError::NotConfigured(m) => format!("not configured: {}", shown(m)),
        ProviderError::InvalidRequest(m) => format!("invalid request: {}", shown(m)),
        ProviderError::BadRequest(u) => {
            format!(
                "vendor rejected the request (HTTP {}): {}",
                u.status,
                shown(&u.message)
            )
        }
        ProviderError::Unauthorized(u) => {
            format!(
                "vendor refused the credentials (HTTP {}): {}",
                u.status,
                shown(&u.message)
            )
        }
        ProviderError::RateLimited(r) => match r.retry_after_ms {
            Some(ms) => format!(
                "vendor rate limit (HTTP 429, retry after {ms} ms): {}",
                shown(&r.message)
            ),
            None => format!("vendor rate limit (HTTP 429): {}", shown(&r.message)),
        },
        ProviderError::Upstream(u) => {
            format!("vendor error (HTTP {}): {}", u.status, shown(&u.message))
        }
        ProviderError::BadResponse(m) => format!("unreadable vendor response: {}", shown(m)),
        ProviderError::StreamInterrupted(m) => format!("stream interrupted: {}", shown(m)),
    }
}

/// Readable text of a host HTTP error as seen by a plugin (a plugin may hand one back as its
/// own error, so its messages are shown like any plugin text).
pub fn describe_http_error(e: &HttpError) -> String {
    match e {
        HttpError::NotAllowed(m) => format!("outbound request refused: {}", shown(m)),
        HttpError::InvalidRequest(m) => format!("invalid outbound request: {}", shown(m)),
        HttpError::Timeout => "outbound request timed out".into(),
        HttpError::Transport(m) => format!("connection failed: {}", shown(m)),
        HttpError::TooLarge(cap) => format!("vendor response larger than {cap} bytes"),
        HttpError::TooManyRequests(n) => format!("more than {n} outbound requests in one call"),
    }
}

/// Readable text of an exporter error.
pub fn describe_export_error(e: &ExportError) -> String {
    match e {
        ExportError::Unsupported(m) => format!("unsupported: {}", shown(m)),
        ExportError::InvalidInput(m) => format!("invalid export input: {}", shown(m)),
        ExportError::OutputRefused(m) => format!("output refused: {}", shown(m)),
        ExportError::Failed(m) => format!("export failed: {}", shown(m)),
    }
}
