//! A plugin's effective settings: values, secrets and the network grant.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::manifest::{BASE_URL_KEY, Manifest, Origin};

/// A secret value. Its `Debug` never shows the value, so it cannot leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value, for the one place that needs it: substitution into an outbound request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// What the operator configured for one plugin (before manifest defaults are applied).
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Setting values by key. Keys the manifest declares secret are routed to `secrets`.
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
    /// Origins the operator grants to this plugin (the base URL is granted implicitly).
    pub grants: Vec<Origin>,
}

impl PluginSettings {
    /// Build settings from a flat string map, sending keys the manifest marks secret to
    /// `secrets` so a plugin can never read them back through `config.get`.
    pub fn from_map(manifest: &Manifest, map: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut settings = PluginSettings::default();
        for (key, value) in map {
            settings.set(manifest, key, value);
        }
        settings
    }

    pub fn set(&mut self, manifest: &Manifest, key: String, value: String) {
        let secret = manifest.config.get(&key).is_some_and(|spec| spec.secret);
        if secret {
            self.values.remove(&key);
            self.secrets.insert(key, Secret::new(value));
        } else {
            self.values.insert(key, value);
        }
    }

    /// `other` wins key by key; grants are combined.
    pub fn overlay(&self, other: &PluginSettings) -> PluginSettings {
        let mut merged = self.clone();
        merged.values.extend(other.values.clone());
        merged.secrets.extend(other.secrets.clone());
        merged.grants.extend(other.grants.iter().cloned());
        merged
    }
}

/// Settings resolved against the manifest: what one call sees.
#[derive(Debug)]
pub struct Effective {
    pub plugin: Arc<str>,
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
    /// Secret names the manifest declares (only these placeholders are substituted).
    pub secret_names: BTreeSet<String>,
    pub allowed: BTreeSet<Origin>,
}

impl Effective {
    pub fn resolve(manifest: &Manifest, settings: &PluginSettings) -> Effective {
        let mut values: BTreeMap<String, String> = manifest
            .config
            .iter()
            .filter(|(_, spec)| !spec.secret)
            .filter_map(|(k, spec)| Some((k.clone(), spec.default.clone()?)))
            .collect();
        values.extend(
            settings
                .values
                .iter()
                .filter(|(k, _)| !manifest.config.get(*k).is_some_and(|s| s.secret))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let secret_names: BTreeSet<String> = manifest.secret_keys().map(str::to_string).collect();
        let secrets = settings
            .secrets
            .iter()
            .filter(|(k, v)| secret_names.contains(*k) && !v.expose().is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Effective {
            plugin: Arc::from(manifest.id.as_str()),
            allowed: allowed_origins(manifest, settings),
            values,
            secrets,
            secret_names,
        }
    }
}

/// The two-sided allow-list.
///
/// An origin is allowed when the manifest requests it AND the operator grants it. The
/// provider's base URL counts as granted: the manifest's default base URL (if the manifest
/// also requests that origin) and any base URL the operator configured (which needs no
/// request, since the operator named it).
pub fn allowed_origins(manifest: &Manifest, settings: &PluginSettings) -> BTreeSet<Origin> {
    let requested: BTreeSet<&Origin> = manifest.hosts.iter().collect();
    let mut granted: BTreeSet<Origin> = settings.grants.iter().cloned().collect();
    let default_base = manifest
        .config
        .get(BASE_URL_KEY)
        .and_then(|spec| spec.default.as_deref())
        .and_then(|url| Origin::from_url(url).ok());
    granted.extend(default_base);
    let mut allowed: BTreeSet<Origin> = granted
        .into_iter()
        .filter(|origin| requested.contains(origin))
        .collect();
    if let Some(base) = settings
        .values
        .get(BASE_URL_KEY)
        .filter(|url| !url.trim().is_empty())
        .and_then(|url| Origin::from_url(url).ok())
    {
        allowed.insert(base);
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
            id = "p"
            kind = "llm-provider"
            version = "0.1.0"
            wit = "0.1.0"
            component = "p.wasm"
            [network]
            hosts = ["https://api.vendor.com", "https://extra.vendor.com"]
            [config.api_key]
            secret = true
            [config.base_url]
            default = "https://api.vendor.com/v1"
            [config.region]
            default = "eu"
            "#,
            Path::new("/p"),
        )
        .expect("manifest")
    }

    fn origin(s: &str) -> Origin {
        Origin::parse(s).expect("origin")
    }

    #[test]
    fn default_base_url_is_allowed_but_other_requests_need_a_grant() {
        let m = manifest();
        let allowed = allowed_origins(&m, &PluginSettings::default());
        assert_eq!(allowed, BTreeSet::from([origin("https://api.vendor.com")]));

        let granted = PluginSettings {
            grants: vec![
                origin("https://extra.vendor.com"),
                origin("https://evil.com"),
            ],
            ..Default::default()
        };
        let allowed = allowed_origins(&m, &granted);
        assert!(allowed.contains(&origin("https://extra.vendor.com")));
        assert!(
            !allowed.contains(&origin("https://evil.com")),
            "a grant alone is not enough: the manifest must request it"
        );
    }

    #[test]
    fn operator_base_url_is_granted() {
        let m = manifest();
        let s = PluginSettings::from_map(
            &m,
            [(
                "base_url".to_string(),
                "http://127.0.0.1:9999/v1".to_string(),
            )],
        );
        let allowed = allowed_origins(&m, &s);
        assert!(allowed.contains(&origin("http://127.0.0.1:9999")));
    }

    #[test]
    fn secrets_never_become_values() {
        let m = manifest();
        let s = PluginSettings::from_map(
            &m,
            [
                ("api_key".to_string(), "sk-1".to_string()),
                ("region".to_string(), "us".to_string()),
            ],
        );
        let eff = Effective::resolve(&m, &s);
        assert!(!eff.values.contains_key("api_key"));
        assert_eq!(eff.values["region"], "us");
        assert_eq!(eff.values["base_url"], "https://api.vendor.com/v1");
        assert_eq!(eff.secrets["api_key"].expose(), "sk-1");
        assert_eq!(format!("{:?}", eff.secrets["api_key"]), "Secret(****)");
    }
}
