//! Typed client for `vision-provider` plugins.

use tokio_util::sync::CancellationToken;

use crate::bindings::vision::VisionProviderPre;
pub use crate::bindings::vision::exports::sceneintruder::plugin::vision::{
    GenerateResult, Image, ImageRequest, PollResult,
};
use crate::error::{CallError, RuntimeError};
use crate::registry::WorldPre;
use crate::sandbox::HostState;
use crate::{PluginKind, PluginRuntime};

/// An image-generation provider plugin.
pub type VisionProvider = crate::provider::ProviderClient<VisionProviderPre<HostState>>;

impl PluginRuntime {
    /// The vision provider with this id.
    pub fn vision(&self, id: &str) -> Result<VisionProvider, RuntimeError> {
        self.provider(id, PluginKind::VisionProvider, |w| match w {
            WorldPre::Vision(pre) => Some(pre),
            _ => None,
        })
    }
}

impl VisionProvider {
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
