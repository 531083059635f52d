//! Typed client for `vision-provider` plugins.

use tokio_util::sync::CancellationToken;

use crate::bindings::vision::VisionProviderPre;
pub use crate::bindings::vision::exports::sceneintruder::plugin::vision::{
    GenerateResult, Image, ImageRequest, PollResult,
};
use crate::error::{CallError, RuntimeError};
use crate::registry::{Description, WorldPre};
use crate::sandbox::HostState;
use crate::types::ProviderInfo;
use crate::{PluginHandle, PluginKind, PluginRuntime};

/// An image-generation provider plugin.
#[derive(Clone)]
pub struct VisionProvider {
    handle: PluginHandle,
    pre: VisionProviderPre<HostState>,
    info: ProviderInfo,
}

impl PluginRuntime {
    /// The vision provider with this id.
    pub fn vision(&self, id: &str) -> Result<VisionProvider, RuntimeError> {
        let plugin = self.expect_kind(id, PluginKind::VisionProvider)?;
        let (WorldPre::Vision(pre), Description::Provider(info)) =
            (plugin.pre.clone(), plugin.description.clone())
        else {
            return Err(RuntimeError::NotLoaded(id.to_string()));
        };
        Ok(VisionProvider {
            handle: PluginHandle::new(self, plugin),
            pre,
            info,
        })
    }
}

impl VisionProvider {
    pub fn id(&self) -> &str {
        self.handle.id()
    }

    pub fn info(&self) -> &ProviderInfo {
        &self.info
    }

    /// Required settings that are not configured (e.g. `api_key`).
    pub fn missing_required(&self) -> Vec<String> {
        self.handle.missing_required()
    }

    /// A client whose calls use these settings on top of the operator's.
    pub fn with_settings(&self, values: impl IntoIterator<Item = (String, String)>) -> Self {
        VisionProvider {
            handle: self.handle.with_overrides(values),
            ..self.clone()
        }
    }

    /// Generate images, or start a vendor job to poll.
    pub async fn generate(
        &self,
        req: &ImageRequest,
        cancel: Option<&CancellationToken>,
    ) -> Result<GenerateResult, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_vision()
                    .call_generate(store, req)
                    .await
            })
            .await
    }

    /// Check a vendor job.
    pub async fn poll(
        &self,
        job: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<PollResult, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_vision()
                    .call_poll(store, job)
                    .await
            })
            .await
    }
}
