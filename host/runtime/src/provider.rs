//! What the typed provider clients share: the plugin, its pre-linked world, its info.

use crate::error::RuntimeError;
use crate::registry::{Description, WorldPre};
use crate::types::ProviderInfo;
use crate::{PluginHandle, PluginKind, PluginRuntime};

/// A provider plugin of one world; `P` is that world's pre-linked component. The world's
/// calls are on the aliases [`crate::LlmProvider`], [`crate::VisionProvider`] and
/// [`crate::VideoProvider`].
#[derive(Clone)]
pub struct ProviderClient<P> {
    pub(crate) handle: PluginHandle,
    pub(crate) pre: P,
    info: ProviderInfo,
}

impl PluginRuntime {
    /// The provider `id` of `kind`, with its world's component picked out by `world`.
    pub(crate) fn provider<P>(
        &self,
        id: &str,
        kind: PluginKind,
        world: fn(&WorldPre) -> Option<&P>,
    ) -> Result<ProviderClient<P>, RuntimeError>
    where
        P: Clone,
    {
        let plugin = self.expect_kind(id, kind)?;
        let (Some(pre), Description::Provider(info)) =
            (world(&plugin.pre).cloned(), &plugin.description)
        else {
            return Err(RuntimeError::NotLoaded(id.to_string()));
        };
        let info = info.clone();
        Ok(ProviderClient {
            handle: PluginHandle::new(self, plugin),
            pre,
            info,
        })
    }
}

impl<P: Clone> ProviderClient<P> {
    pub fn id(&self) -> &str {
        self.handle.id()
    }

    /// What the plugin reported about itself at load time.
    pub fn info(&self) -> &ProviderInfo {
        &self.info
    }

    /// Required settings that are not configured (e.g. `api_key`).
    pub fn missing_required(&self) -> Vec<String> {
        self.handle.missing_required()
    }

    /// A client whose calls use these settings on top of the operator's (e.g. a temporary
    /// configuration under test). Keys the manifest declares secret stay secret.
    pub fn with_settings(&self, values: impl IntoIterator<Item = (String, String)>) -> Self {
        ProviderClient {
            handle: self.handle.with_overrides(values),
            ..self.clone()
        }
    }
}
