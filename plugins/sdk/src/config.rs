//! The plugin's settings (`sceneintruder:plugin/config`), plus helpers.
//!
//! Secret settings are never readable: [`get`] returns `None` for them. Use
//! [`has_secret`] / [`require_secret`] to check that the operator configured one, and the
//! `{{secret:NAME}}` placeholder (see [`crate::http::secret`]) to use it.

pub use crate::bindings::sceneintruder::plugin::config::{get, has_secret};
use crate::types::ProviderError;

/// A non-secret setting, `None` when unset or blank (surrounding whitespace is trimmed).
pub fn get_non_empty(key: &str) -> Option<String> {
    get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Err(not-configured("<name> is not configured"))` unless the secret `name` is set.
pub fn require_secret(name: &str) -> Result<(), ProviderError> {
    if has_secret(name) {
        Ok(())
    } else {
        Err(ProviderError::NotConfigured(format!(
            "{name} is not configured (set the plugin's `{name}` secret)"
        )))
    }
}

/// The `base_url` setting without a trailing slash, falling back to `default` when unset.
/// `Err(not-configured)` when both are empty.
pub fn base_url(default: &str) -> Result<String, ProviderError> {
    let url = get_non_empty("base_url").unwrap_or_else(|| default.trim().to_string());
    let url = normalize_base_url(&url);
    if url.is_empty() {
        Err(ProviderError::NotConfigured(
            "base_url is not configured".to_string(),
        ))
    } else {
        Ok(url)
    }
}

/// `base` with `/{version}` appended when it is a bare origin (`https://api.x` ->
/// `https://api.x/v1`); a base that already has a path is used as given.
pub fn with_version(base: &str, version: &str) -> String {
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    if after_scheme.contains('/') {
        base.to_string()
    } else {
        format!("{base}/{version}")
    }
}

/// Trims whitespace and trailing slashes: `https://x/v1/` -> `https://x/v1`.
pub fn normalize_base_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_normalisation() {
        assert_eq!(
            normalize_base_url(" https://api.x/v1/ "),
            "https://api.x/v1"
        );
        assert_eq!(normalize_base_url("https://api.x/v1//"), "https://api.x/v1");
        assert_eq!(normalize_base_url("https://api.x"), "https://api.x");
        assert_eq!(normalize_base_url(""), "");
    }
}
