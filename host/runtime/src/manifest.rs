//! Plugin manifests (`plugin.toml`), parsed and validated before any wasm is touched.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component as PathComponent, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ManifestError;

/// Version of the WIT package this host implements.
pub const HOST_WIT_VERSION: Version = Version {
    major: 0,
    minor: 1,
    patch: 3,
};

/// File name of a plugin's manifest inside its folder.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// The config key whose value is a provider's base URL; its origin counts as granted.
pub const BASE_URL_KEY: &str = "base_url";

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    LlmProvider,
    VisionProvider,
    VideoProvider,
    Exporter,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::LlmProvider => "llm-provider",
            PluginKind::VisionProvider => "vision-provider",
            PluginKind::VideoProvider => "video-provider",
            PluginKind::Exporter => "exporter",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `major.minor.patch` version (pre-release and build tags are not used by plugins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.');
        let mut next = || parts.next()?.parse::<u64>().ok();
        let version = Version {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        parts.next().is_none().then_some(version)
    }

    /// Semver compatibility of a plugin built against `self` with a host at `host`:
    /// same major (and same minor while major is 0), and not newer than the host.
    pub fn is_compatible_with_host(self, host: Version) -> bool {
        let same_line = if self.major == 0 {
            host.major == 0 && self.minor == host.minor
        } else {
            self.major == host.major
        };
        same_line && self <= host
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One setting a plugin understands.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigKey {
    #[serde(default)]
    pub description: String,
    /// Secrets are never readable by the plugin; they are substituted into requests by the host.
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub required: bool,
    /// Default value (never allowed for secrets).
    pub default: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Origins the plugin asks to reach, `scheme://host[:port]`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Query parameters that may carry a `{{secret:NAME}}` placeholder (e.g. `key` for a
    /// vendor that takes its key in the URL). Headers that carry credentials need no
    /// declaration; no other place is ever filled.
    #[serde(default)]
    pub secret_query: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    id: String,
    kind: PluginKind,
    version: String,
    wit: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    component: String,
    #[serde(default)]
    network: Network,
    #[serde(default)]
    config: BTreeMap<String, ConfigKey>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub id: String,
    pub kind: PluginKind,
    pub version: Version,
    pub wit: Version,
    pub name: String,
    pub description: String,
    /// Absolute path of the component file (inside the plugin folder).
    pub component: PathBuf,
    /// Requested origins, normalised.
    pub hosts: Vec<Origin>,
    /// Query parameters that may carry a secret.
    pub secret_query: Vec<String>,
    pub config: BTreeMap<String, ConfigKey>,
}

impl Manifest {
    /// Read and validate `<dir>/plugin.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| ManifestError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, dir)
    }

    /// Validate manifest text; `dir` is the plugin folder the component path is resolved in.
    pub fn parse(text: &str, dir: &Path) -> Result<Manifest, ManifestError> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| ManifestError::Syntax(e.message().to_string()))?;
        validate_id(&raw.id)?;
        let version = Version::parse(&raw.version)
            .ok_or_else(|| ManifestError::invalid("version", "must be MAJOR.MINOR.PATCH"))?;
        let wit = Version::parse(&raw.wit)
            .ok_or_else(|| ManifestError::invalid("wit", "must be MAJOR.MINOR.PATCH"))?;
        if !wit.is_compatible_with_host(HOST_WIT_VERSION) {
            return Err(ManifestError::IncompatibleWit {
                plugin: wit,
                host: HOST_WIT_VERSION,
            });
        }
        let component = validate_component_path(&raw.component, dir)?;
        let hosts = raw
            .network
            .hosts
            .iter()
            .map(|h| {
                Origin::parse(h)
                    .map_err(|why| ManifestError::invalid("network.hosts", &format!("{h}: {why}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = raw.network.secret_query.iter().find(|q| {
            q.is_empty()
                || q.len() > 64
                || !q
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        }) {
            return Err(ManifestError::invalid(
                "network.secret_query",
                &format!("{bad:?} must be 1-64 ASCII letters, digits, _ - or ."),
            ));
        }
        for (key, spec) in &raw.config {
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ManifestError::invalid(
                    "config",
                    &format!("key {key:?} must be ASCII letters, digits, _ or -"),
                ));
            }
            if spec.secret && spec.default.is_some() {
                return Err(ManifestError::invalid(
                    "config",
                    &format!("secret {key:?} cannot have a default"),
                ));
            }
        }
        if let Some(base) = raw.config.get(BASE_URL_KEY)
            && let Some(default) = base.default.as_deref().filter(|d| !d.is_empty())
        {
            Origin::from_url(default).map_err(|why| {
                ManifestError::invalid("config.base_url.default", &format!("{default}: {why}"))
            })?;
        }
        Ok(Manifest {
            name: raw.name.unwrap_or_else(|| raw.id.clone()),
            id: raw.id,
            kind: raw.kind,
            version,
            wit,
            description: raw.description,
            component,
            hosts,
            secret_query: raw.network.secret_query,
            config: raw.config,
        })
    }

    /// Names of the settings declared secret.
    pub fn secret_keys(&self) -> impl Iterator<Item = &str> {
        self.config
            .iter()
            .filter(|(_, spec)| spec.secret)
            .map(|(k, _)| k.as_str())
    }
}

/// Plugin ids double as registry names and URL segments, so keep them boring.
pub fn validate_id(id: &str) -> Result<(), ManifestError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ManifestError::invalid(
            "id",
            "must be 1-64 characters of a-z, 0-9, - and _, starting with a letter or digit",
        ))
    }
}

fn validate_component_path(component: &str, dir: &Path) -> Result<PathBuf, ManifestError> {
    let rel = Path::new(component);
    let plain = rel
        .components()
        .all(|c| matches!(c, PathComponent::Normal(_)));
    if component.is_empty() || !plain {
        return Err(ManifestError::invalid(
            "component",
            "must be a relative path inside the plugin folder",
        ));
    }
    Ok(dir.join(rel))
}

/// A network origin: scheme, host and port, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parse `scheme://host[:port]` (a trailing `/` is tolerated, nothing else).
    pub fn parse(text: &str) -> Result<Origin, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| e.to_string())?;
        if !(url.path() == "/" || url.path().is_empty())
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err("an origin is scheme://host[:port] with nothing after it".into());
        }
        Self::from_parsed(&url)
    }

    /// The origin of any URL.
    pub fn from_url(text: &str) -> Result<Origin, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| e.to_string())?;
        Self::from_parsed(&url)
    }

    pub fn from_parsed(url: &url::Url) -> Result<Origin, String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme {scheme:?} is not http or https"));
        }
        let host = url.host_str().ok_or("no host")?.to_ascii_lowercase();
        let port = url.port_or_known_default().ok_or("no port")?;
        Ok(Origin {
            scheme: scheme.to_string(),
            host,
            port,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default_port = matches!(
            (self.scheme.as_str(), self.port),
            ("http", 80) | ("https", 443)
        );
        if default_port {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        id = "openai"
        kind = "llm-provider"
        version = "1.2.3"
        wit = "0.1.0"
        component = "llm_openai.wasm"
        [network]
        hosts = ["https://api.openai.com", "http://127.0.0.1:9000/"]
        [config.api_key]
        secret = true
        [config.base_url]
        default = "https://api.openai.com/v1"
    "#;

    #[test]
    fn parses_a_good_manifest() {
        let m = Manifest::parse(GOOD, Path::new("/p/openai")).expect("valid");
        assert_eq!(m.id, "openai");
        assert_eq!(m.kind, PluginKind::LlmProvider);
        assert_eq!(m.component, Path::new("/p/openai/llm_openai.wasm"));
        assert_eq!(m.hosts[0].to_string(), "https://api.openai.com");
        assert_eq!(m.hosts[1].port, 9000);
        assert_eq!(m.secret_keys().collect::<Vec<_>>(), vec!["api_key"]);
    }

    #[test]
    fn rejects_bad_manifests() {
        let cases = [
            (GOOD.replace("\"openai\"", "\"../x\""), "id"),
            (
                GOOD.replace("llm-provider", "toaster"),
                "unknown variant `toaster`",
            ),
            (
                GOOD.replace("\"llm_openai.wasm\"", "\"../x.wasm\""),
                "component",
            ),
            (
                GOOD.replace("\"llm_openai.wasm\"", "\"/etc/x.wasm\""),
                "component",
            ),
            (GOOD.replace("wit = \"0.1.0\"", "wit = \"0.2.0\""), "WIT"),
            (GOOD.replace("wit = \"0.1.0\"", "wit = \"0.1.9\""), "WIT"),
            (
                GOOD.replace("https://api.openai.com\"", "ftp://x\""),
                "network.hosts",
            ),
            (
                GOOD.replace("https://api.openai.com\"", "https://a.com/path\""),
                "network.hosts",
            ),
            (
                GOOD.replace("secret = true", "secret = true\ndefault = \"k\""),
                "default",
            ),
            (
                GOOD.replace("version = \"1.2.3\"", "version = \"1.2\""),
                "version",
            ),
            (format!("{GOOD}\nsurprise = 1"), "surprise"),
        ];
        for (text, expect) in cases {
            let err = Manifest::parse(&text, Path::new("/p")).expect_err(expect);
            assert!(err.to_string().contains(expect), "{expect:?} not in {err}");
        }
    }

    #[test]
    fn wit_semver_rule() {
        let host = Version::parse("0.1.4").unwrap();
        assert!(
            Version::parse("0.1.0")
                .unwrap()
                .is_compatible_with_host(host)
        );
        assert!(
            Version::parse("0.1.4")
                .unwrap()
                .is_compatible_with_host(host)
        );
        assert!(
            !Version::parse("0.1.5")
                .unwrap()
                .is_compatible_with_host(host)
        );
        assert!(
            !Version::parse("0.2.0")
                .unwrap()
                .is_compatible_with_host(host)
        );
        let host1 = Version::parse("1.3.0").unwrap();
        assert!(
            Version::parse("1.0.7")
                .unwrap()
                .is_compatible_with_host(host1)
        );
        assert!(
            !Version::parse("2.0.0")
                .unwrap()
                .is_compatible_with_host(host1)
        );
    }

    #[test]
    fn origins_compare_exactly() {
        let a = Origin::from_url("https://api.openai.com/v1/chat").unwrap();
        assert_eq!(a, Origin::parse("https://API.openai.com:443").unwrap());
        assert_ne!(a, Origin::parse("http://api.openai.com").unwrap());
        assert_ne!(
            Origin::parse("http://localhost:80").unwrap(),
            Origin::parse("http://127.0.0.1").unwrap()
        );
        assert!(Origin::from_url("file:///etc/passwd").is_err());
    }
}
