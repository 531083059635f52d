//! The built-in model catalog and what the plugin can tell from a model id.

use sceneintruder_plugin_sdk::llm::{ModelInfo, Reasoning};
use sceneintruder_plugin_sdk::types::ProviderError;
use serde_json::{Value, json};

/// Model used when a request names none.
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";

/// `(id, display name, input token limit, output token limit)`: stable vendor ids and their
/// documented limits. All take images, stream, honour JSON mode and response schemas, and think.
const MODELS: [(&str, &str, u32, u32); 3] = [
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1_048_576, 65_536),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576, 65_536),
    (
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        1_048_576,
        65_536,
    ),
];

/// The built-in catalog.
pub fn catalog() -> Vec<ModelInfo> {
    MODELS
        .iter()
        .map(|&(id, name, ctx, out)| ModelInfo {
            id: id.into(),
            display_name: name.into(),
            context_window: ctx,
            max_output_tokens: Some(out),
            json_mode: true,
            json_schema: true,
            reasoning: true,
            vision_input: true,
            streaming: true,
        })
        .collect()
}

/// The model id without a leading `models/`.
pub fn bare_id(model: &str) -> &str {
    let model = model.trim();
    model.strip_prefix("models/").unwrap_or(model)
}

/// The resource path of `model` for the URL: `models/{id}` (a leading `models/` in the id is
/// accepted), or a tuned model's `tunedModels/{id}`. `invalid-request` for an empty id or one
/// with characters that do not belong in a model id (`/`, `?`, `#`, spaces, ...), so nothing
/// can be smuggled into the URL.
pub fn resource(model: &str) -> Result<String, ProviderError> {
    let model = model.trim();
    let (collection, id) = match model.strip_prefix("tunedModels/") {
        Some(id) => ("tunedModels", id),
        None => ("models", bare_id(model)),
    };
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if valid {
        Ok(format!("{collection}/{id}"))
    } else {
        Err(ProviderError::InvalidRequest(format!(
            "{model:?} is not a Gemini model id"
        )))
    }
}

/// The documented output cap of `model`, when the catalog knows it.
pub fn max_output(model: &str) -> Option<u32> {
    let id = bare_id(model);
    MODELS.iter().find(|m| m.0 == id).map(|&(_, _, _, out)| out)
}

/// How a model's thinking is controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThinkingControl {
    /// Gemini 2.5: `thinkingBudget`, where `off` is the smallest budget the model accepts
    /// (0 for Flash and Flash-Lite; Pro cannot stop thinking, 128 is its minimum).
    Budget { off: u32 },
    /// Gemini 3: `thinkingLevel` (`low` / `high`); thinking cannot be switched off.
    Level,
    /// No thinking configuration (older models, image / audio / embedding models, unknown ids).
    None,
}

/// How `model`'s thinking is controlled, from its id.
pub fn thinking_control(model: &str) -> ThinkingControl {
    let id = bare_id(model).to_ascii_lowercase();
    if ["image", "tts", "audio", "live", "embedding"]
        .iter()
        .any(|x| id.contains(x))
    {
        return ThinkingControl::None;
    }
    if id.starts_with("gemini-3") {
        ThinkingControl::Level
    } else if id.starts_with("gemini-2.5-pro") {
        ThinkingControl::Budget { off: 128 }
    } else if id.starts_with("gemini-2.5-flash") {
        ThinkingControl::Budget { off: 0 }
    } else {
        ThinkingControl::None
    }
}

/// `generationConfig.thinkingConfig` for the reasoning switch: `default` sends none (the
/// model's own behaviour); `off` the smallest budget (`0` disables thinking where the model
/// allows it) or level `low`; `on` a dynamic budget (`-1`) or level `high`. Models without a
/// thinking configuration get none whatever the switch.
pub fn thinking_config(model: &str, reasoning: Reasoning) -> Option<Value> {
    match (thinking_control(model), reasoning) {
        (_, Reasoning::Default) | (ThinkingControl::None, _) => None,
        (ThinkingControl::Budget { off }, Reasoning::Off) => Some(json!({"thinkingBudget": off})),
        (ThinkingControl::Budget { .. }, Reasoning::On) => Some(json!({"thinkingBudget": -1})),
        (ThinkingControl::Level, Reasoning::Off) => Some(json!({"thinkingLevel": "low"})),
        (ThinkingControl::Level, Reasoning::On) => Some(json!({"thinkingLevel": "high"})),
    }
}

/// A model of `GET /models` that can generate content, as a catalog entry: the vendor's
/// display name and token limits, thinking from the vendor's `thinking` flag (or the id),
/// JSON mode, schemas and streaming on, image input for `gemini-*` models. `None` for models
/// without `generateContent` (embeddings, ...) or without a name.
pub fn listed(model: &Value) -> Option<ModelInfo> {
    let name = model.get("name").and_then(Value::as_str)?;
    let id = bare_id(name);
    if id.is_empty() {
        return None;
    }
    let generates = model
        .get("supportedGenerationMethods")
        .and_then(Value::as_array)
        .is_some_and(|ms| ms.iter().any(|m| m.as_str() == Some("generateContent")));
    if !generates {
        return None;
    }
    let limit = |k: &str| {
        model
            .get(k)
            .and_then(Value::as_u64)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
            .filter(|v| *v > 0)
    };
    let display_name = model
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(id);
    let reasoning = model
        .get("thinking")
        .and_then(Value::as_bool)
        .unwrap_or(thinking_control(id) != ThinkingControl::None);
    Some(ModelInfo {
        id: id.to_string(),
        display_name: display_name.to_string(),
        context_window: limit("inputTokenLimit").unwrap_or(0),
        max_output_tokens: limit("outputTokenLimit").or_else(|| max_output(id)),
        json_mode: true,
        json_schema: true,
        reasoning,
        vision_input: id.starts_with("gemini-"),
        streaming: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_valid_ids_and_the_default() {
        let cat = catalog();
        assert!(cat.iter().any(|m| m.id == DEFAULT_MODEL));
        for m in &cat {
            assert!(resource(&m.id).is_ok());
            assert_ne!(thinking_control(&m.id), ThinkingControl::None, "{}", m.id);
            assert!(m.json_mode && m.json_schema && m.reasoning && m.vision_input && m.streaming);
        }
        assert!(!cat.iter().any(|m| m.id.starts_with("gemini-3.1")));
    }

    #[test]
    fn resources() {
        assert_eq!(
            resource("gemini-2.5-flash").unwrap(),
            "models/gemini-2.5-flash"
        );
        assert_eq!(
            resource(" models/gemini-2.5-pro ").unwrap(),
            "models/gemini-2.5-pro"
        );
        assert_eq!(
            resource("tunedModels/my-model_1").unwrap(),
            "tunedModels/my-model_1"
        );
        for bad in [
            "",
            "models/",
            "gemini-2.5-flash:generateContent",
            "../x",
            "a/b",
            "gemini 2.5",
            "x?key=1",
            "x#y",
        ] {
            assert!(
                matches!(resource(bad), Err(ProviderError::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn thinking_by_model() {
        let cfg = |m, r| thinking_config(m, r);
        assert_eq!(
            cfg("gemini-2.5-flash", Reasoning::Off),
            Some(json!({"thinkingBudget": 0}))
        );
        assert_eq!(
            cfg("gemini-2.5-flash-lite", Reasoning::Off),
            Some(json!({"thinkingBudget": 0}))
        );
        assert_eq!(
            cfg("models/gemini-2.5-pro", Reasoning::Off),
            Some(json!({"thinkingBudget": 128}))
        );
        assert_eq!(
            cfg("gemini-2.5-pro", Reasoning::On),
            Some(json!({"thinkingBudget": -1}))
        );
        assert_eq!(
            cfg("gemini-3-pro-preview", Reasoning::Off),
            Some(json!({"thinkingLevel": "low"}))
        );
        assert_eq!(
            cfg("gemini-3-pro-preview", Reasoning::On),
            Some(json!({"thinkingLevel": "high"}))
        );
        for m in ["gemini-2.5-flash", "gemini-3-pro-preview"] {
            assert_eq!(cfg(m, Reasoning::Default), None);
        }
        for m in [
            "gemini-2.0-flash",
            "gemini-1.5-pro",
            "gemini-2.5-flash-image",
            "gemini-2.5-flash-preview-tts",
            "gemma-3-27b-it",
        ] {
            assert_eq!(cfg(m, Reasoning::Off), None, "{m}");
            assert_eq!(cfg(m, Reasoning::On), None, "{m}");
        }
    }

    #[test]
    fn output_caps() {
        assert_eq!(max_output("gemini-2.5-pro"), Some(65_536));
        assert_eq!(max_output("models/gemini-2.5-flash-lite"), Some(65_536));
        assert_eq!(max_output("gemini-2.5-flash-preview-09-2025"), None);
    }

    #[test]
    fn listed_models() {
        let m = listed(&json!({
            "name": "models/gemini-2.5-flash", "version": "001", "displayName": "Gemini 2.5 Flash",
            "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
            "temperature": 1, "maxTemperature": 2, "topP": 0.95, "topK": 64, "thinking": true
        }))
        .unwrap();
        assert_eq!(m.id, "gemini-2.5-flash");
        assert_eq!(m.display_name, "Gemini 2.5 Flash");
        assert_eq!(
            (m.context_window, m.max_output_tokens),
            (1_048_576, Some(65_536))
        );
        assert!(m.reasoning && m.vision_input && m.json_schema);
        let m = listed(&json!({
            "name": "models/gemini-2.0-flash", "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
            "supportedGenerationMethods": ["generateContent"]
        }))
        .unwrap();
        assert_eq!(m.display_name, "gemini-2.0-flash");
        assert!(!m.reasoning);
        assert_eq!(m.max_output_tokens, Some(8192));
        assert!(
            listed(&json!({"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]}))
                .is_none()
        );
        assert!(listed(&json!({"name": "models/x"})).is_none());
        assert!(listed(&json!({"supportedGenerationMethods": ["generateContent"]})).is_none());
    }
}
