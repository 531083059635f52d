//! Logging into the host's structured log (`sceneintruder:plugin/log`), tagged with the
//! plugin id by the host.

pub use crate::bindings::sceneintruder::plugin::log::{Level, write};

/// Logs at `debug`.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Logs at `info`.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Logs at `warn`.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Logs at `error`.
pub fn error(message: &str) {
    write(Level::Error, message);
}
