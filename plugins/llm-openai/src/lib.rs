//! The `openai` LLM provider: OpenAI Chat Completions through the SDK's codec.

use sceneintruder_plugin_sdk::llm::{
    self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError, ProviderInfo,
    StreamEvent,
};
use sceneintruder_plugin_sdk::openai_chat::{self, OpenAi, is_openai_reasoning_model};
use sceneintruder_plugin_sdk::{streams, types};

struct Plugin;

/// The built-in catalog. Values for o3-mini and gpt-5-mini are the vendor's documented
/// limits at the time of writing (o3-mini: 200k context, 100k output, no image input;
/// gpt-5-mini: 400k context, 128k output, image input).
fn catalog() -> Vec<ModelInfo> {
    // (id, display name, context window, max output, vision, reasoning)
    const MODELS: [(&str, &str, u32, u32, bool, bool); 6] = [
        ("gpt-4o", "GPT-4o", 128_000, 16_384, true, false),
        ("gpt-4o-mini", "GPT-4o mini", 128_000, 16_384, true, false),
        ("gpt-4.1", "GPT-4.1", 1_047_576, 32_768, true, false),
        (
            "gpt-4.1-mini",
            "GPT-4.1 mini",
            1_047_576,
            32_768,
            true,
            false,
        ),
        ("o3-mini", "o3-mini", 200_000, 100_000, false, true),
        ("gpt-5-mini", "GPT-5 mini", 400_000, 128_000, true, true),
    ];
    MODELS
        .iter()
        .map(|&(id, name, ctx, out, vision, reasoning)| ModelInfo {
            id: id.into(),
            display_name: name.into(),
            context_window: ctx,
            max_output_tokens: Some(out),
            json_mode: true,
            json_schema: true,
            reasoning,
            vision_input: vision,
            streaming: true,
        })
        .collect()
}

/// Chat models in `GET /models`: ids starting with `gpt`, `o1`, `o3` or `o4`.
fn is_chat_model(id: &str) -> bool {
    ["gpt", "o1", "o3", "o4"].iter().any(|p| id.starts_with(p))
}

/// A listed model: the catalog entry when known, else conservative defaults (unknown context
/// window, JSON mode and streaming on, JSON schema and image input off, reasoning by family).
fn model_info(id: &str, catalog: &[ModelInfo]) -> ModelInfo {
    if let Some(known) = catalog.iter().find(|m| m.id == id) {
        return known.clone();
    }
    ModelInfo {
        json_mode: true,
        streaming: true,
        reasoning: is_openai_reasoning_model(id),
        ..types::unknown_model(id)
    }
}

impl Guest for Plugin {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "openai".into(),
            display_name: "OpenAI".into(),
            default_model: "gpt-4o".into(),
            models: catalog(),
        }
    }

    fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
        openai_chat::complete(&OpenAi, &req)
    }

    fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
        let catalog = catalog();
        Ok(openai_chat::list_model_ids(&OpenAi)?
            .iter()
            .filter(|id| is_chat_model(id))
            .map(|id| model_info(id, &catalog))
            .collect())
    }

    fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
        openai_chat::start_stream(OpenAi, &req)
    }

    fn next_event(stream: u32) -> Result<StreamEvent, ProviderError> {
        streams::next_event(stream)
    }

    fn close_stream(stream: u32) {
        streams::close(stream)
    }
}

llm::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_catalog() {
        let info = Plugin::info();
        assert_eq!(info.id, "openai");
        assert_eq!(info.default_model, "gpt-4o");
        assert!(info.models.iter().any(|m| m.id == info.default_model));
        let o3 = info.models.iter().find(|m| m.id == "o3-mini").unwrap();
        assert!(o3.reasoning && !o3.vision_input);
    }

    #[test]
    fn listing_filter_and_defaults() {
        assert!(is_chat_model("gpt-4o") && is_chat_model("o1-pro") && is_chat_model("o4-mini"));
        assert!(
            !is_chat_model("dall-e-3")
                && !is_chat_model("text-embedding-3-small")
                && !is_chat_model("o2")
        );
        let cat = catalog();
        assert_eq!(model_info("gpt-4.1", &cat).context_window, 1_047_576);
        let unknown = model_info("o4-mini-2025-04-16", &cat);
        assert!(unknown.reasoning && unknown.streaming && unknown.json_mode);
        assert_eq!(unknown.context_window, 0);
    }
}
