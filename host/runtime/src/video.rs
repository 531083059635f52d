//! Typed client for `video-provider` plugins.

use tokio_util::sync::CancellationToken;

use crate::bindings::video::VideoProviderPre;
pub use crate::bindings::video::exports::sceneintruder::plugin::video::{
    ClipAsset, ClipRequest, ClipStatus,
};
use crate::error::{CallError, RuntimeError};
use crate::registry::{Description, WorldPre};
use crate::sandbox::HostState;
use crate::types::ProviderInfo;
use crate::{PluginHandle, PluginKind, PluginRuntime};

/// An video-generation provider plugin.
#[derive(Clone)]
pub struct VideoProvider {
    handle: PluginHandle,
    pre: VideoProviderPre<HostState>,
    info: ProviderInfo,
}

impl PluginRuntime {
    /// The video provider with this id.
    pub fn video(&self, id: &str) -> Result<VideoProvider, RuntimeError> {
        let plugin = self.expect_kind(id, PluginKind::VideoProvider)?;
        let (WorldPre::Video(pre), Description::Provider(info)) =
            (plugin.pre.clone(), plugin.description.clone())
        else {
            return Err(RuntimeError::NotLoaded(id.to_string()));
        };
        Ok(VideoProvider {
            handle: PluginHandle::new(self, plugin),
            pre,
            info,
        })
    }
}

impl VideoProvider {
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
        VideoProvider {
            handle: self.handle.with_overrides(values),
            ..self.clone()
        }
    }

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
