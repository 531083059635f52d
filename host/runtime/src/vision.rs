//! Typed client for `vision-provider` plugins.

use tokio_util::sync::CancellationToken;

use crate::bindings::vision::VisionProviderPre;
pub use crate::bindings::vision::exports::sceneintruder::plugin::vision::{
    Image, ImageData, ImageOptions, ReferenceImage,
};
use crate::error::{CallError, RuntimeError};
use crate::registry::WorldPre;
use crate::sandbox::HostState;
use crate::types::{ProviderError, UpstreamError};
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

/// A drawn image, downloaded when the plugin answered with a URL.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedImage {
    pub bytes: Vec<u8>,
    /// What the vendor said; callers sniff the bytes and trust those.
    pub content_type: String,
    pub width: u32,
    pub height: u32,
}

impl VisionProvider {
    /// Draw one image. A result given as a URL is downloaded in the same call: under this
    /// plugin's allow-list, request budget, deadline and response cap, like any request it
    /// makes itself. An empty image is a `bad-response`.
    pub async fn generate_image(
        &self,
        prompt: &str,
        options: &ImageOptions,
        cancel: Option<&CancellationToken>,
    ) -> Result<GeneratedImage, CallError> {
        self.handle
            .provider_call(&self.pre, cancel, async |store, world| {
                let image = match world
                    .sceneintruder_plugin_vision()
                    .call_generate_image(&mut *store, prompt, options)
                    .await?
                {
                    Ok(image) => image,
                    Err(e) => return Ok(Err(e)),
                };
                let bytes = match image.data {
                    ImageData::Bytes(bytes) => bytes,
                    ImageData::Url(url) => match download(store.data_mut(), url).await? {
                        Ok(bytes) => bytes,
                        Err(e) => return Ok(Err(e)),
                    },
                };
                if bytes.is_empty() {
                    return Ok(Err(ProviderError::BadResponse("empty image".into())));
                }
                Ok(Ok(GeneratedImage {
                    bytes,
                    content_type: image.content_type,
                    width: image.width,
                    height: image.height,
                }))
            })
            .await
    }
}

/// GET an image URL the plugin answered with, as the plugin itself would.
async fn download(
    state: &mut HostState,
    url: String,
) -> wasmtime::Result<Result<Vec<u8>, ProviderError>> {
    use crate::bindings::http::{Host as _, Method, Request};
    let request = Request {
        method: Method::Get,
        url,
        headers: Vec::new(),
        body: None,
        timeout_ms: None,
    };
    Ok(match state.fetch(request).await? {
        Err(e) => Err(ProviderError::Http(e)),
        Ok(response) if (200..300).contains(&response.status) => Ok(response.body),
        Ok(response) => Err(ProviderError::Upstream(UpstreamError {
            status: response.status,
            message: format!("image download failed: status={}", response.status),
        })),
    })
}
