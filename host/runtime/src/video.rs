//! Typed client for `video-provider` plugins.

use tokio_util::sync::CancellationToken;

use crate::bindings::video::VideoProviderPre;
pub use crate::bindings::video::exports::sceneintruder::plugin::video::{
    ClipAsset, ClipRequest, ClipStatus,
};
use crate::error::{CallError, RuntimeError};
use crate::registry::WorldPre;
use crate::sandbox::HostState;
use crate::{PluginKind, PluginRuntime};

/// A video-generation provider plugin.
pub type VideoProvider = crate::provider::ProviderClient<VideoProviderPre<HostState>>;

impl PluginRuntime {
    /// The video provider with this id.
    pub fn video(&self, id: &str) -> Result<VideoProvider, RuntimeError> {
        self.provider(id, PluginKind::VideoProvider, |w| match w {
            WorldPre::Video(pre) => Some(pre),
            _ => None,
        })
    }
}

impl VideoProvider {
    /// Submit a clip; returns the vendor's job handle (persist it to resume polling).
    pub async fn submit(
        &self,
        req: &ClipRequest,
        cancel: Option<&CancellationToken>,
    ) -> Result<String, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_video()
                    .call_submit(store, req)
                    .await
            })
            .await
    }

    /// Check a submitted clip.
    pub async fn poll(
        &self,
        handle: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<ClipStatus, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                world
                    .sceneintruder_plugin_video()
                    .call_poll(store, handle)
                    .await
            })
            .await
    }
}
