//! Types shared by the provider worlds (`sceneintruder:plugin/types`), plus small constructors.

pub use crate::bindings::sceneintruder::plugin::types::{
    HttpError, ImageSource, ModelInfo, ProviderError, ProviderInfo, RateLimit, UpstreamError,
};

/// A catalog entry for a model the plugin knows nothing about: display name = id, context
/// window 0 (unknown), no documented output cap and every capability `false`.
pub fn unknown_model(id: &str) -> ModelInfo {
    ModelInfo {
        id: id.to_string(),
        display_name: id.to_string(),
        context_window: 0,
        max_output_tokens: None,
        json_mode: false,
        json_schema: false,
        reasoning: false,
        vision_input: false,
        streaming: false,
    }
}
