//! A plugin's effective settings: values, secrets bound to origins, and the network grant.
//!
//! Settings come in layers: the operator's baseline (config file and environment), the
//! settings saved through the API, and a caller's temporary overrides (a connection probe).
//! Every secret is bound, when its layer supplies it, to the origins that layer's settings
//! allow; the host substitutes it only into requests for one of those origins. So a later
//! layer that points the plugin at another `base_url` can never carry an earlier layer's key
//! along: it has to bring its own.

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

/// Whether a setting is secret: the manifest says so, or its name looks like a credential
/// (`api_key`, `*_key`, `*_secret`, `*_token`, `password`, ...). The host decides, not the
/// manifest alone, so a plugin cannot read a key back by declaring it non-secret.
pub fn is_secret_key(manifest: Option<&Manifest>, key: &str) -> bool {
    let key_lower = key.to_ascii_lowercase();
    let k = key_lower.as_str();
    manifest.is_some_and(|m| m.config.get(key).is_some_and(|s| s.secret))
        || matches!(
            k,
            "api_key" | "apikey" | "key" | "secret" | "token" | "password" | "passwd"
        )
        || [
            "_key",
            "-key",
            "_secret",
            "-secret",
            "_token",
            "-token",
            "_password",
        ]
        .iter()
        .any(|suffix| k.ends_with(suffix))
}

/// One layer of settings for one plugin (before manifest defaults are applied).
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Setting values by key. Secret keys are routed to `secrets`.
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
    /// Origins the operator grants to this plugin (the base URL is granted implicitly).
    pub grants: Vec<Origin>,
}

impl PluginSettings {
    /// Build settings from a flat string map, sending secret keys to `secrets` so a plugin
    /// can never read them back through `config.get`.
    pub fn from_map(manifest: &Manifest, map: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut settings = PluginSettings::default();
        for (key, value) in map {
            settings.set(manifest, key, value);
        }
        settings
    }

    pub fn set(&mut self, manifest: &Manifest, key: String, value: String) {
        if is_secret_key(Some(manifest), &key) {
            self.values.remove(&key);
            self.secrets.insert(key, Secret::new(value));
        } else {
            self.values.insert(key, value);
        }
    }
}

/// A secret and the origins it may be sent to.
#[derive(Debug, Clone)]
pub struct BoundSecret {
    pub value: Secret,
    pub origins: Arc<BTreeSet<Origin>>,
}

/// Where a settings layer comes from; decides whose secrets an unverified plugin gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The operator (config file, environment) or the settings saved through the API.
    Host,
    /// The caller of one request (a temporary configuration), with its own key.
    Caller,
}

/// Settings resolved against the manifest: what one call sees.
#[derive(Debug)]
pub struct Effective {
    pub plugin: Arc<str>,
    pub values: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, BoundSecret>,
    /// Header-or-query placeholders the host may fill: every secret name it knows of.
    pub secret_names: BTreeSet<String>,
    /// Query parameters the manifest declares as carrying a secret.
    pub secret_query: BTreeSet<String>,
    pub allowed: BTreeSet<Origin>,
}

impl Effective {
    /// Resolve `layers` (lowest precedence first). A plugin that is not `trusted` (it claims
    /// a bundled id without being the bundled component) gets no secret from the host's
    /// layers, only what a caller hands it.
    pub fn resolve(
        manifest: &Manifest,
        layers: &[(Source, &PluginSettings)],
        trusted: bool,
    ) -> Effective {
        let mut merged = PluginSettings::default();
        let mut secrets: BTreeMap<String, BoundSecret> = BTreeMap::new();
        for (source, layer) in layers {
            merged.values.extend(
                layer
                    .values
                    .iter()
                    .filter(|(k, _)| !is_secret_key(Some(manifest), k))
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            merged.grants.extend(layer.grants.iter().cloned());
            // Bound to where this layer, with everything below it, points the plugin: the
            // endpoint the key was configured for.
            let origins = Arc::new(secret_origins(manifest, &merged));
            for (key, value) in &layer.secrets {
                if value.expose().is_empty() {
                    continue;
                }
                if *source == Source::Host && !trusted {
                    secrets.remove(key);
                    continue;
                }
                secrets.insert(
                    key.clone(),
                    BoundSecret {
                        value: value.clone(),
                        origins: origins.clone(),
                    },
                );
            }
        }
        let mut values: BTreeMap<String, String> = manifest
            .config
            .iter()
            .filter(|(k, _)| !is_secret_key(Some(manifest), k))
            .filter_map(|(k, spec)| Some((k.clone(), spec.default.clone()?)))
            .collect();
        values.extend(merged.values.clone());
        let secret_names: BTreeSet<String> = manifest
            .secret_keys()
            .map(str::to_string)
            .chain(secrets.keys().cloned())
            .collect();
        Effective {
            plugin: Arc::from(manifest.id.as_str()),
            allowed: allowed_origins(manifest, &merged),
            secret_query: manifest.secret_query.iter().cloned().collect(),
            values,
            secrets,
            secret_names,
        }
    }

    /// The origin of the effective base URL, if there is one.
    fn base_origin(&self) -> Option<Origin> {
        self.values
            .get(BASE_URL_KEY)
            .filter(|u| !u.trim().is_empty())
            .and_then(|u| Origin::from_url(u).ok())
    }

    /// True when secret `name` is configured and may be sent where the plugin is pointed:
    /// to its base URL, or (without one) to some origin it may reach.
    pub fn secret_usable(&self, name: &str) -> bool {
        let Some(secret) = self.secrets.get(name) else {
            return false;
        };
        match self.base_origin() {
            Some(base) => secret.origins.contains(&base),
            None => secret.origins.iter().any(|o| self.allowed.contains(o)),
        }
    }
}

/// The two-sided allow-list.
///
/// An origin is allowed when the manifest requests it AND the operator grants it. The
/// provider's base URL counts as granted: a base URL configured in `settings` (which needs no
/// request, since the operator named it) or, while none is configured, the manifest's default
/// base URL (if the manifest also requests that origin). Once a base URL is configured the
/// default's origin is no longer granted implicitly; an explicit grant still allows it.
pub fn allowed_origins(manifest: &Manifest, settings: &PluginSettings) -> BTreeSet<Origin> {
    let requested: BTreeSet<&Origin> = manifest.hosts.iter().collect();
    let mut granted: BTreeSet<Origin> = settings.grants.iter().cloned().collect();
    let configured = configured_base(settings);
    if configured.is_none() {
        granted.extend(default_base(manifest));
    }
    let mut allowed: BTreeSet<Origin> = granted
        .into_iter()
        .filter(|origin| requested.contains(origin))
        .collect();
    allowed.extend(configured.flatten());
    allowed
}

/// Where the secrets of a layer resolved to `settings` may be sent: only the configured base
/// URL's origin when there is one (the key belongs to that endpoint), else every allowed
/// origin (the manifest's default base URL and the operator's grants).
pub fn secret_origins(manifest: &Manifest, settings: &PluginSettings) -> BTreeSet<Origin> {
    match configured_base(settings) {
        Some(base) => base.into_iter().collect(),
        None => allowed_origins(manifest, settings),
    }
}

/// The manifest's default base URL's origin.
fn default_base(manifest: &Manifest) -> Option<Origin> {
    manifest
        .config
        .get(BASE_URL_KEY)
        .and_then(|spec| spec.default.as_deref())
        .filter(|url| !url.trim().is_empty())
        .and_then(|url| Origin::from_url(url).ok())
}

/// `None` when `settings` configures no base URL; `Some(origin)` when they do (`Some(None)`
/// for one that is not a valid URL: it still replaces the default, and grants nothing).
fn configured_base(settings: &PluginSettings) -> Option<Option<Origin>> {
    settings
        .values
        .get(BASE_URL_KEY)
        .filter(|url| !url.trim().is_empty())
        .map(|url| Origin::from_url(url).ok())
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
            [config.access_token]
            description = "declared non-secret by a careless (or hostile) manifest"
            "#,
            Path::new("/p"),
        )
        .expect("manifest")
    }

    fn origin(s: &str) -> Origin {
        Origin::parse(s).expect("origin")
    }

    fn map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
        let s = PluginSettings::from_map(&m, map(&[("base_url", "http://127.0.0.1:9999/v1")]));
        let allowed = allowed_origins(&m, &s);
        assert!(allowed.contains(&origin("http://127.0.0.1:9999")));
    }

    #[test]
    fn a_configured_base_url_replaces_the_default_origin() {
        let m = manifest();
        let elsewhere = PluginSettings::from_map(
            &m,
            map(&[
                ("base_url", "http://127.0.0.1:9999/v1"),
                ("api_key", "sk-1"),
            ]),
        );
        let allowed = allowed_origins(&m, &elsewhere);
        assert_eq!(allowed, BTreeSet::from([origin("http://127.0.0.1:9999")]));
        let eff = Effective::resolve(&m, &[(Source::Host, &elsewhere)], true);
        assert_eq!(
            *eff.secrets["api_key"].origins,
            BTreeSet::from([origin("http://127.0.0.1:9999")])
        );

        // An explicit grant keeps the default reachable, but the key stays with the base URL.
        let granted = PluginSettings {
            grants: vec![origin("https://api.vendor.com")],
            ..elsewhere.clone()
        };
        let eff = Effective::resolve(&m, &[(Source::Host, &granted)], true);
        assert!(eff.allowed.contains(&origin("https://api.vendor.com")));
        assert!(
            !eff.secrets["api_key"]
                .origins
                .contains(&origin("https://api.vendor.com"))
        );

        // Without a base URL the key goes wherever the plugin may go.
        let plain = PluginSettings {
            grants: vec![origin("https://extra.vendor.com")],
            ..PluginSettings::from_map(&m, map(&[("api_key", "sk-1")]))
        };
        let eff = Effective::resolve(&m, &[(Source::Host, &plain)], true);
        assert_eq!(
            *eff.secrets["api_key"].origins,
            BTreeSet::from([
                origin("https://api.vendor.com"),
                origin("https://extra.vendor.com")
            ])
        );

        // A base URL that is not a URL grants nothing, and does not bring the default back.
        let broken = PluginSettings::from_map(&m, map(&[("base_url", "not a url")]));
        assert!(allowed_origins(&m, &broken).is_empty());
    }

    #[test]
    fn secrets_never_become_values_whatever_the_manifest_says() {
        let m = manifest();
        let s = PluginSettings::from_map(
            &m,
            map(&[
                ("api_key", "sk-1"),
                ("region", "us"),
                ("access_token", "t-1"),
                ("password", "pw"),
            ]),
        );
        let eff = Effective::resolve(&m, &[(Source::Host, &s)], true);
        assert!(!eff.values.contains_key("api_key"));
        assert!(!eff.values.contains_key("access_token"));
        assert!(!eff.values.contains_key("password"));
        assert_eq!(eff.values["region"], "us");
        assert_eq!(eff.values["base_url"], "https://api.vendor.com/v1");
        assert_eq!(eff.secrets["api_key"].value.expose(), "sk-1");
        assert_eq!(eff.secrets["access_token"].value.expose(), "t-1");
        assert_eq!(
            format!("{:?}", eff.secrets["api_key"].value),
            "Secret(****)"
        );
    }

    #[test]
    fn credential_names_are_secret() {
        for key in [
            "api_key",
            "API_KEY",
            "vision_api_key",
            "access_key",
            "client_secret",
            "access_token",
            "password",
            "token",
        ] {
            assert!(is_secret_key(None, key), "{key}");
        }
        for key in [
            "base_url",
            "default_model",
            "token_limit",
            "endpoint",
            "max_tokens",
        ] {
            assert!(!is_secret_key(None, key), "{key}");
        }
    }

    #[test]
    fn a_key_is_bound_to_the_endpoint_of_the_layer_that_supplied_it() {
        let m = manifest();
        let operator = PluginSettings::from_map(&m, map(&[("api_key", "sk-operator")]));
        // A later layer points the plugin elsewhere without a key of its own.
        let elsewhere = PluginSettings::from_map(&m, map(&[("base_url", "http://attacker:1/v1")]));
        let eff = Effective::resolve(
            &m,
            &[(Source::Host, &operator), (Source::Caller, &elsewhere)],
            true,
        );
        let key = &eff.secrets["api_key"];
        assert!(key.origins.contains(&origin("https://api.vendor.com")));
        assert!(!key.origins.contains(&origin("http://attacker:1")));
        assert!(!eff.secret_usable("api_key"), "the key does not follow");

        // With its own key, the new endpoint gets that key (and only there).
        let own = PluginSettings::from_map(
            &m,
            map(&[("base_url", "http://other:1/v1"), ("api_key", "sk-own")]),
        );
        let eff = Effective::resolve(
            &m,
            &[(Source::Host, &operator), (Source::Caller, &own)],
            true,
        );
        assert!(eff.secret_usable("api_key"));
        assert_eq!(eff.secrets["api_key"].value.expose(), "sk-own");
        assert!(
            eff.secrets["api_key"]
                .origins
                .contains(&origin("http://other:1"))
        );

        // The same endpoint keeps the key usable.
        let same = PluginSettings::from_map(&m, map(&[("base_url", "https://api.vendor.com/v2")]));
        let eff = Effective::resolve(
            &m,
            &[(Source::Host, &operator), (Source::Caller, &same)],
            true,
        );
        assert!(eff.secret_usable("api_key"));
    }

    #[test]
    fn an_untrusted_plugin_gets_only_a_callers_key() {
        let m = manifest();
        let operator = PluginSettings::from_map(&m, map(&[("api_key", "sk-operator")]));
        let eff = Effective::resolve(&m, &[(Source::Host, &operator)], false);
        assert!(eff.secrets.is_empty());
        let caller = PluginSettings::from_map(&m, map(&[("api_key", "sk-caller")]));
        let eff = Effective::resolve(
            &m,
            &[(Source::Host, &operator), (Source::Caller, &caller)],
            false,
        );
        assert_eq!(eff.secrets["api_key"].value.expose(), "sk-caller");
    }
}
