//! Server configuration: defaults, then the config file, then environment, then flags.
//!
//! Every knob is documented in README.md ("Configuration").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use sceneintruder_runtime::{Limits, OperatorSettings};

/// An on/off environment value: `1`/`true`/`on` or `0`/`false`/`off`.
fn flag(value: &str) -> Option<bool> {
    match value {
        "1" | "true" | "on" => Some(true),
        "0" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The config file (`<data-dir>/config.toml` unless `--config` names another).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub plugins_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    /// Compiled-plugin cache; `""` disables it.
    pub plugin_cache_dir: Option<PathBuf>,
    /// Pick up added, changed and removed plugin folders without a restart (default true).
    pub watch_plugins: Option<bool>,
    /// Quiet time after the last change in the plugins folder before it is reloaded (ms).
    pub plugin_reload_debounce_ms: Option<u64>,
    /// Largest request body in bytes.
    pub body_limit_bytes: Option<usize>,
    /// `text` (default) or `json`.
    pub log_format: Option<String>,
    pub llm: LlmSection,
    pub limits: Option<Limits>,
    pub jobs: crate::jobs::JobsConfig,
    pub realtime: crate::realtime::ws::WsConfig,
    pub auth: crate::auth::AuthConfig,
    pub http: HttpSection,
    pub rate_limits: crate::api::rate_limit::RateLimits,
    pub plugins: BTreeMap<String, PluginSection>,
    /// `[scenes]`: text analysis.
    pub scenes: crate::domain::analysis::AnalysisConfig,
    /// `[cache]`: finished responses of hot read routes.
    pub cache: crate::api::response_cache::CacheConfig,
    /// `[exports]`: render deadline and the operator's choice of plugin per pair.
    pub exports: crate::domain::export::ExportsConfig,
    /// `[blobs]`: where binary artefacts (uploads, images, clips) are stored.
    pub blobs: BlobsSection,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSection {
    /// Id of the active LLM provider plugin (e.g. `openai`), until one is saved through the
    /// settings API.
    pub provider: Option<String>,
    /// Attempts per LLM call, the first included (retries only on 429, 5xx and timeouts).
    pub max_attempts: Option<u32>,
    /// First retry backoff in ms; doubles per retry unless the vendor sends Retry-After.
    pub retry_base_ms: Option<u64>,
    /// A vendor asking to wait longer than this (ms) fails the call instead.
    pub max_retry_wait_ms: Option<u64>,
    /// Wall-clock limit of one attempt, in seconds.
    pub timeout_secs: Option<u64>,
    /// How long identical calls are answered from the cache (s); 0 disables it.
    pub cache_ttl_secs: Option<u64>,
    /// Most answers kept in the cache.
    pub cache_entries: Option<usize>,
}

impl LlmSection {
    pub fn service_config(&self) -> sceneintruder_llm::ServiceConfig {
        use std::time::Duration;
        let d = sceneintruder_llm::ServiceConfig::default();
        sceneintruder_llm::ServiceConfig {
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts).max(1),
            retry_base: self
                .retry_base_ms
                .map_or(d.retry_base, Duration::from_millis),
            max_retry_wait: self
                .max_retry_wait_ms
                .map_or(d.max_retry_wait, Duration::from_millis),
            attempt_timeout: self
                .timeout_secs
                .map_or(d.attempt_timeout, Duration::from_secs),
            cache_ttl: self.cache_ttl_secs.map_or(d.cache_ttl, Duration::from_secs),
            cache_entries: self.cache_entries.unwrap_or(d.cache_entries),
        }
    }
}

/// `[http]`: browser-facing settings.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Exact origins (`scheme://host[:port]`) allowed to call the API from a browser.
    /// Empty: loopback development origins (http/https on localhost and 127.0.0.1, any port).
    pub allowed_origins: Vec<String>,
    /// Host names (optionally `host:port`) the server answers to besides loopback ones, e.g.
    /// the public name a reverse proxy forwards. A request whose `Host` is not one of them
    /// (nor `localhost`, `127.0.0.1`, `[::1]`) is refused when the server listens on
    /// loopback, which stops DNS rebinding; when set, it is enforced on any listen address.
    pub allowed_hosts: Vec<String>,
    /// Seconds a client has to send a request's headers, counted from its first byte.
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a request body may go without sending any data while a handler waits for it.
    pub body_read_timeout_secs: Option<u64>,
    /// Seconds a connection may stay open with no request in progress (keep-alive).
    pub idle_timeout_secs: Option<u64>,
    /// Open connections at once; one more is answered `503 TOO_MANY_CONNECTIONS` and closed.
    pub max_connections: Option<usize>,
    /// Uploads (`POST /api/upload`) read at once; one more is answered `429`.
    pub max_concurrent_uploads: Option<usize>,
}

/// The connection limits of `[http]`, resolved (see README "Slow and oversized requests").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_uploads: usize,
}

pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 8;

impl HttpSection {
    /// The limits from this section, each overridden by its environment variable
    /// (`SCENEINTRUDER_<KEY>` upper-cased); every value must be a whole number above 0.
    fn limits(&self, env: &BTreeMap<String, String>) -> Result<HttpLimits, ConfigError> {
        let secs = |key: &str, file: Option<u64>, default: u64| {
            positive(key, file, env, default).map(Duration::from_secs)
        };
        Ok(HttpLimits {
            header_read_timeout: secs(
                "header_read_timeout_secs",
                self.header_read_timeout_secs,
                DEFAULT_HEADER_READ_TIMEOUT_SECS,
            )?,
            body_read_timeout: secs(
                "body_read_timeout_secs",
                self.body_read_timeout_secs,
                DEFAULT_BODY_READ_TIMEOUT_SECS,
            )?,
            idle_timeout: secs(
                "idle_timeout_secs",
                self.idle_timeout_secs,
                DEFAULT_IDLE_TIMEOUT_SECS,
            )?,
            max_connections: positive(
                "max_connections",
                self.max_connections,
                env,
                DEFAULT_MAX_CONNECTIONS,
            )?,
            max_concurrent_uploads: positive(
                "max_concurrent_uploads",
                self.max_concurrent_uploads,
                env,
                DEFAULT_MAX_CONCURRENT_UPLOADS,
            )?,
        })
    }
}

/// `[http] <key>`: `SCENEINTRUDER_<KEY>`, else the file's value, else `default`; 0 is refused.
fn positive<T>(
    key: &str,
    file: Option<T>,
    env: &BTreeMap<String, String>,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialEq + From<u8> + Copy,
{
    let var = format!("SCENEINTRUDER_{}", key.to_ascii_uppercase());
    let (name, value) = match env.get(&var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(text) => (
            var.clone(),
            text.parse::<T>().map_err(|_| ConfigError::Invalid {
                name: var.clone(),
                message: format!("{text:?} is not a whole number"),
            })?,
        ),
        None => (format!("[http] {key}"), file.unwrap_or(default)),
    };
    if value == T::from(0) {
        return Err(ConfigError::Invalid {
            name,
            message: "must be at least 1".into(),
        });
    }
    Ok(value)
}

/// `[blobs]`: the blob store (README "Blobs"). Each key is overridden by
/// `SCENEINTRUDER_BLOBS_<KEY>`; S3 keys left unset fall back to the usual `AWS_*` variables.
#[derive(Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct BlobsSection {
    /// `file://` (default, `<data-dir>/blobs`), `file:///dir`, `s3://bucket[/prefix]`.
    pub url: Option<String>,
    /// Largest blob stored at once, in bytes.
    pub max_object_bytes: Option<u64>,
    /// S3: endpoint of an S3-compatible store (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// S3: allow a plain-HTTP endpoint.
    pub allow_http: Option<bool>,
}

// Hand-written so the secret never reaches a log line through `{:?}`.
impl std::fmt::Debug for BlobsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobsSection")
            .field("url", &self.url)
            .field("max_object_bytes", &self.max_object_bytes)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl BlobsSection {
    /// The blob store's configuration: this section, each key overridden by its
    /// `SCENEINTRUDER_BLOBS_<KEY>` variable.
    fn resolve(
        &self,
        env: &BTreeMap<String, String>,
    ) -> Result<sceneintruder_blobs::BlobConfig, ConfigError> {
        let text = |key: &str, file: &Option<String>| {
            env.get(&format!("SCENEINTRUDER_BLOBS_{}", key.to_ascii_uppercase()))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .or_else(|| file.clone().filter(|v| !v.trim().is_empty()))
        };
        let max_object_bytes = match env
            .get("SCENEINTRUDER_BLOBS_MAX_OBJECT_BYTES")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            Some(v) => Some(v.parse::<u64>().map_err(|_| ConfigError::Invalid {
                name: "SCENEINTRUDER_BLOBS_MAX_OBJECT_BYTES".into(),
                message: format!("{v:?} is not a whole number"),
            })?),
            None => self.max_object_bytes,
        };
        if max_object_bytes == Some(0) {
            return Err(ConfigError::Invalid {
                name: "[blobs] max_object_bytes".into(),
                message: "must be at least 1".into(),
            });
        }
        let allow_http = match env
            .get("SCENEINTRUDER_BLOBS_ALLOW_HTTP")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            Some(v) => Some(flag(v).ok_or_else(|| ConfigError::Invalid {
                name: "SCENEINTRUDER_BLOBS_ALLOW_HTTP".into(),
                message: format!("{v:?} is not true or false"),
            })?),
            None => self.allow_http,
        };
        Ok(sceneintruder_blobs::BlobConfig {
            url: text("url", &self.url),
            max_object_bytes,
            s3: sceneintruder_blobs::S3Options {
                endpoint: text("endpoint", &self.endpoint),
                region: text("region", &self.region),
                access_key_id: text("access_key_id", &self.access_key_id),
                secret_access_key: text("secret_access_key", &self.secret_access_key),
                allow_http,
            },
        })
    }
}

/// `[plugins.<id>]`: what the operator grants and configures for one plugin.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSection {
    /// Origins (`scheme://host[:port]`) this plugin may reach, if its manifest requests them.
    pub allow_hosts: Vec<String>,
    /// Setting values; keys the manifest declares secret are never shown to the plugin.
    pub settings: BTreeMap<String, String>,
    /// SHA-256 (hex) of the component trusted under this id (see README "Security model").
    pub sha256: Option<String>,
}

/// Values given on the command line or in the environment (they win over the file).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub plugins_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub plugins_dir: PathBuf,
    pub database_url: String,
    pub plugin_cache_dir: Option<PathBuf>,
    pub watch_plugins: bool,
    pub plugin_reload_debounce: Duration,
    pub body_limit_bytes: usize,
    pub log_json: bool,
    pub llm: LlmSection,
    pub limits: Limits,
    pub jobs: crate::jobs::JobsConfig,
    pub realtime: crate::realtime::ws::WsConfig,
    /// Guests act as `console_user` (see `[auth] guest_mode`).
    pub guest_mode: bool,
    pub token_ttl_secs: u64,
    /// How long a verified token is remembered (`[auth] token_cache_secs`).
    pub token_cache_secs: u64,
    /// `AUTH_SECRET_KEY`, when set.
    pub auth_secret: Option<String>,
    /// `CONFIG_ENCRYPTION_KEY` (at least 32 characters), when set; else the key file
    /// `<data-dir>/.encryption_key` encrypts provider keys at rest.
    pub encryption_key: Option<String>,
    /// First-run admin from `SCENEINTRUDER_ADMIN_USER` / `SCENEINTRUDER_ADMIN_PASSWORD`.
    pub first_admin: Option<(String, String)>,
    /// CORS allow-list (`[http] allowed_origins` plus `ALLOWED_ORIGIN`, comma-separated).
    pub allowed_origins: Vec<String>,
    /// `[http] allowed_hosts` plus `SCENEINTRUDER_ALLOWED_HOSTS` (comma-separated).
    pub allowed_hosts: Vec<String>,
    /// `[http]` timeouts and connection caps.
    pub http_limits: HttpLimits,
    pub rate_limits: crate::api::rate_limit::RateLimits,
    pub plugins: BTreeMap<String, OperatorSettings>,
    pub analysis: crate::domain::analysis::AnalysisConfig,
    pub cache: crate::api::response_cache::CacheConfig,
    pub exports: crate::domain::export::ExportsConfig,
    /// `[blobs]` with its environment overrides.
    pub blobs: sceneintruder_blobs::BlobConfig,
}

pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_BODY_LIMIT: usize = 10 << 20;

/// Conventional vendor key variables and the provider plugin each one belongs to (first
/// listed wins when several are set for one provider).
const VENDOR_KEY_ENV: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "openai"),
    ("ANTHROPIC_API_KEY", "anthropic"),
    ("GEMINI_API_KEY", "google"),
    ("GOOGLE_API_KEY", "google"),
    ("DEEPSEEK_API_KEY", "deepseek"),
    ("DASHSCOPE_API_KEY", "qwen"),
    ("MISTRAL_API_KEY", "mistral"),
    ("XAI_API_KEY", "grok"),
    ("GROK_API_KEY", "grok"),
    ("ZHIPUAI_API_KEY", "glm"),
    ("GLM_API_KEY", "glm"),
    ("GITHUB_TOKEN", "githubmodels"),
    ("OPENROUTER_API_KEY", "openrouter"),
    ("NVIDIA_API_KEY", "nvidia"),
];

/// Env prefix for plugin settings: `SCENEINTRUDER_PLUGIN_<ID>__<KEY>`, e.g.
/// `SCENEINTRUDER_PLUGIN_OPENAI__API_KEY`. Id and key are lower-cased.
const PLUGIN_ENV_PREFIX: &str = "SCENEINTRUDER_PLUGIN_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid address {0:?}: expected HOST:PORT, e.g. 127.0.0.1:8080")]
    Addr(String),
    #[error("invalid value for {name}: {message}")]
    Invalid { name: String, message: String },
}

impl Config {
    /// Resolve the configuration from `overrides` (flags/env), the config file and `env`.
    pub fn resolve(
        overrides: Overrides,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let data_dir_hint = overrides
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let (file_path, required) = match &overrides.config {
            Some(path) => (path.clone(), true),
            None => (data_dir_hint.join("config.toml"), false),
        };
        let file = read_file(&file_path, required)?;

        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        // The reference honours PORT; keep it as a fallback for the port alone.
        let addr_text = overrides
            .addr
            .or(file.addr)
            .or_else(|| env.get("PORT").map(|p| format!("127.0.0.1:{p}")))
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let addr: SocketAddr = addr_text
            .parse()
            .map_err(|_| ConfigError::Addr(addr_text.clone()))?;
        let plugins_dir = overrides
            .plugins_dir
            .or(file.plugins_dir)
            .unwrap_or_else(|| data_dir.join("plugins"));
        let database_url = overrides
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir.join("sceneintruder.db")));
        let plugin_cache_dir = match file.plugin_cache_dir {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p),
            None => Some(data_dir.join("cache").join("components")),
        };
        let plugin_cache_dir = match env.get("SCENEINTRUDER_PLUGIN_CACHE_DIR") {
            Some(p) if p.is_empty() => None,
            Some(p) => Some(PathBuf::from(p)),
            None => plugin_cache_dir,
        };
        let log_json = match file.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "log_format".into(),
                    message: format!("{other:?} is not text or json"),
                });
            }
        };
        let http_limits = file.http.limits(env)?;
        let blobs = file.blobs.resolve(env)?;
        let mut llm = file.llm;
        if let Some(provider) = env.get("SCENEINTRUDER_LLM_PROVIDER") {
            llm.provider = Some(provider.clone()).filter(|p| !p.is_empty());
        }

        let mut plugins: BTreeMap<String, OperatorSettings> = file
            .plugins
            .into_iter()
            .map(|(id, section)| {
                (
                    id,
                    OperatorSettings {
                        values: section.settings,
                        allow_hosts: section.allow_hosts,
                        sha256: section.sha256,
                    },
                )
            })
            .collect();
        // Vendors' conventional key variables: the lowest-precedence source of each provider's
        // own key (never another provider's), used at runtime and never saved.
        for (var, id) in VENDOR_KEY_ENV {
            if let Some(value) = env.get(*var).filter(|v| !v.is_empty()) {
                plugins
                    .entry(id.to_string())
                    .or_default()
                    .values
                    .entry("api_key".to_string())
                    .or_insert_with(|| value.clone());
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(PLUGIN_ENV_PREFIX) else {
                continue;
            };
            let Some((id, key)) = rest.split_once("__") else {
                continue;
            };
            let id = id.to_ascii_lowercase().replace('_', "-");
            let entry = plugins.entry(id).or_default();
            if key == "ALLOW_HOSTS" {
                entry.allow_hosts = value
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .collect();
            } else {
                entry.values.insert(key.to_ascii_lowercase(), value.clone());
            }
        }

        Ok(Config {
            addr,
            data_dir,
            plugins_dir,
            database_url,
            plugin_cache_dir,
            watch_plugins: env
                .get("SCENEINTRUDER_WATCH_PLUGINS")
                .and_then(|v| flag(v))
                .or(file.watch_plugins)
                .unwrap_or(true),
            plugin_reload_debounce: Duration::from_millis(
                file.plugin_reload_debounce_ms.unwrap_or(500).max(50),
            ),
            body_limit_bytes: file.body_limit_bytes.unwrap_or(DEFAULT_BODY_LIMIT),
            log_json,
            llm,
            limits: file.limits.unwrap_or_default(),
            jobs: file.jobs,
            realtime: file.realtime,
            guest_mode: env
                .get("SCENEINTRUDER_GUEST_MODE")
                .and_then(|v| flag(v))
                .or(file.auth.guest_mode)
                .unwrap_or(addr.ip().is_loopback()),
            token_ttl_secs: file
                .auth
                .token_ttl_secs
                .unwrap_or(crate::auth::DEFAULT_TOKEN_TTL),
            token_cache_secs: file
                .auth
                .token_cache_secs
                .unwrap_or(crate::auth::DEFAULT_TOKEN_CACHE_SECS),
            auth_secret: env.get("AUTH_SECRET_KEY").cloned(),
            encryption_key: env.get("CONFIG_ENCRYPTION_KEY").cloned(),
            rate_limits: file.rate_limits,
            analysis: file.scenes,
            cache: file.cache,
            exports: file.exports,
            blobs,
            allowed_origins: listed(&file.http.allowed_origins, env.get("ALLOWED_ORIGIN")),
            allowed_hosts: listed(
                &file.http.allowed_hosts,
                env.get("SCENEINTRUDER_ALLOWED_HOSTS"),
            ),
            http_limits,
            first_admin: match (
                env.get("SCENEINTRUDER_ADMIN_USER"),
                env.get("SCENEINTRUDER_ADMIN_PASSWORD"),
            ) {
                (Some(user), Some(password)) => Some((user.clone(), password.clone())),
                _ => None,
            },
            plugins,
        })
    }
}

/// A list from the config file, plus the comma-separated entries of an environment variable.
fn listed(file: &[String], env: Option<&String>) -> Vec<String> {
    file.iter()
        .cloned()
        .chain(
            env.into_iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from),
        )
        .collect()
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default());
        }
        Err(e) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_live_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::resolve(
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            },
            &env(&[]),
        )
        .unwrap();
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(c.plugins_dir, dir.path().join("plugins"));
        assert!(c.database_url.starts_with("sqlite://"));
        assert_eq!(
            c.plugin_cache_dir,
            Some(dir.path().join("cache").join("components"))
        );
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            r#"
            addr = "127.0.0.1:9000"
            [llm]
            provider = "openai"
            [plugins.openai]
            allow_hosts = ["https://api.openai.com"]
            settings = { base_url = "http://127.0.0.1:1/v1" }
            "#,
        )
        .unwrap();
        let c = Config::resolve(
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                addr: Some("127.0.0.1:9100".into()),
                ..Default::default()
            },
            &env(&[("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-env")]),
        )
        .unwrap();
        assert_eq!(c.addr.port(), 9100);
        assert_eq!(c.llm.provider.as_deref(), Some("openai"));
        let openai = &c.plugins["openai"];
        assert_eq!(openai.values["api_key"], "sk-env");
        assert_eq!(openai.values["base_url"], "http://127.0.0.1:1/v1");
        assert_eq!(openai.allow_hosts, vec!["https://api.openai.com"]);
    }

    #[test]
    fn vendor_key_variables_are_the_lowest_precedence_and_per_provider() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[plugins.deepseek]\nsettings = { api_key = \"sk-file\" }\n",
        )
        .unwrap();
        let c = Config::resolve(
            Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            },
            &env(&[
                ("ANTHROPIC_API_KEY", "sk-ant"),
                ("DEEPSEEK_API_KEY", "sk-vendor"),
                ("OPENAI_API_KEY", "sk-openai"),
                ("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-explicit"),
            ]),
        )
        .unwrap();
        assert_eq!(c.plugins["anthropic"].values["api_key"], "sk-ant");
        assert_eq!(c.plugins["deepseek"].values["api_key"], "sk-file");
        assert_eq!(c.plugins["openai"].values["api_key"], "sk-explicit");
        assert!(!c.plugins.contains_key("google"));
    }

    #[test]
    fn http_limits_come_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |file: &str, vars: &[(&str, &str)]| {
            std::fs::write(dir.path().join("config.toml"), file).unwrap();
            Config::resolve(
                Overrides {
                    data_dir: Some(dir.path().to_path_buf()),
                    ..Default::default()
                },
                &env(vars),
            )
        };
        let c = resolve("", &[]).unwrap();
        assert_eq!(
            c.http_limits,
            HttpLimits {
                header_read_timeout: Duration::from_secs(10),
                body_read_timeout: Duration::from_secs(30),
                idle_timeout: Duration::from_secs(60),
                max_connections: 1024,
                max_concurrent_uploads: 8,
            }
        );
        let c = resolve(
            "[http]\nheader_read_timeout_secs = 2\nmax_connections = 20\n",
            &[("SCENEINTRUDER_MAX_CONNECTIONS", "30")],
        )
        .unwrap();
        assert_eq!(c.http_limits.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.http_limits.max_connections, 30);
        let err = resolve("[http]\nmax_concurrent_uploads = 0\n", &[]).unwrap_err();
        assert!(err.to_string().contains("max_concurrent_uploads"), "{err}");
        let err = resolve("", &[("SCENEINTRUDER_IDLE_TIMEOUT_SECS", "soon")]).unwrap_err();
        assert!(
            err.to_string().contains("SCENEINTRUDER_IDLE_TIMEOUT_SECS"),
            "{err}"
        );
    }

    #[test]
    fn blobs_come_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |file: &str, vars: &[(&str, &str)]| {
            std::fs::write(dir.path().join("config.toml"), file).unwrap();
            Config::resolve(
                Overrides {
                    data_dir: Some(dir.path().to_path_buf()),
                    ..Default::default()
                },
                &env(vars),
            )
        };
        let c = resolve("", &[]).unwrap();
        assert_eq!(c.blobs.url, None);
        assert_eq!(c.blobs.max_object_bytes, None);
        let c = resolve(
            "[blobs]\nurl = \"s3://bucket/p\"\nmax_object_bytes = 100\nregion = \"eu-west-1\"\n\
             endpoint = \"http://127.0.0.1:9000\"\nallow_http = true\n\
             secret_access_key = \"file-secret\"\n",
            &[
                ("SCENEINTRUDER_BLOBS_REGION", "us-east-1"),
                ("SCENEINTRUDER_BLOBS_ACCESS_KEY_ID", "env-id"),
                ("SCENEINTRUDER_BLOBS_MAX_OBJECT_BYTES", "200"),
            ],
        )
        .unwrap();
        assert_eq!(c.blobs.url.as_deref(), Some("s3://bucket/p"));
        assert_eq!(c.blobs.max_object_bytes, Some(200));
        assert_eq!(c.blobs.s3.region.as_deref(), Some("us-east-1"));
        assert_eq!(
            c.blobs.s3.endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(c.blobs.s3.access_key_id.as_deref(), Some("env-id"));
        assert_eq!(c.blobs.s3.secret_access_key.as_deref(), Some("file-secret"));
        assert_eq!(c.blobs.s3.allow_http, Some(true));
        assert!(!format!("{c:?}").contains("file-secret"));
        for (file, vars, needle) in [
            (
                "[blobs]\nmax_object_bytes = 0\n",
                &[][..],
                "max_object_bytes",
            ),
            (
                "",
                &[("SCENEINTRUDER_BLOBS_MAX_OBJECT_BYTES", "lots")][..],
                "SCENEINTRUDER_BLOBS_MAX_OBJECT_BYTES",
            ),
            (
                "",
                &[("SCENEINTRUDER_BLOBS_ALLOW_HTTP", "maybe")][..],
                "SCENEINTRUDER_BLOBS_ALLOW_HTTP",
            ),
            ("[blobs]\nbucket = \"x\"\n", &[][..], "bucket"),
        ] {
            let err = resolve(file, vars).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn bad_values_are_reported() {
        let err = Config::resolve(
            Overrides {
                addr: Some("nope".into()),
                data_dir: Some(PathBuf::from("/nonexistent")),
                ..Default::default()
            },
            &env(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("HOST:PORT"));
        let missing = Config::resolve(
            Overrides {
                config: Some(PathBuf::from("/nonexistent/config.toml")),
                ..Default::default()
            },
            &env(&[]),
        )
        .unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
    }
}
