//! The built-in model catalog and what the plugin can tell from a model id.

use sceneintruder_plugin_sdk::llm::ModelInfo;

/// Model used when a request names none.
pub const DEFAULT_MODEL: &str = "claude-haiku-4-5";

/// `(id, display name, context window, max output tokens)`: the vendor's aliases and documented
/// limits. Every one of them takes images, streams and supports extended thinking.
const MODELS: [(&str, &str, u32, u32); 4] = [
    ("claude-haiku-4-5", "Claude Haiku 4.5", 200_000, 64_000),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", 200_000, 64_000),
    ("claude-opus-4-5", "Claude Opus 4.5", 200_000, 64_000),
    ("claude-opus-4-1", "Claude Opus 4.1", 200_000, 32_000),
];

/// The built-in catalog.
///
/// JSON mode is honoured by instruction (the Messages API has no JSON switch), so `json-mode`
/// is on but `json-schema` (enforcement) is off: a schema is passed along as an instruction.
pub fn catalog() -> Vec<ModelInfo> {
    MODELS
        .iter()
        .map(|&(id, name, ctx, out)| ModelInfo {
            id: id.into(),
            display_name: name.into(),
            context_window: ctx,
            max_output_tokens: Some(out),
            json_mode: true,
            json_schema: false,
            reasoning: true,
            vision_input: true,
            streaming: true,
        })
        .collect()
}

/// True when `id` is `alias` or a dated snapshot of it (`claude-sonnet-4-5-20250929`).
fn is_snapshot_of(id: &str, alias: &str) -> bool {
    id == alias
        || id
            .strip_prefix(alias)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
}

/// The catalog entry for `id` (an alias or a dated snapshot of one), keeping `id` as given.
pub fn known(id: &str) -> Option<ModelInfo> {
    let id = id.trim();
    catalog()
        .into_iter()
        .find(|m| is_snapshot_of(id, &m.id))
        .map(|m| ModelInfo {
            id: id.to_string(),
            ..m
        })
}

/// The documented output cap of `id`, when the catalog knows the model.
pub fn max_output(id: &str) -> Option<u32> {
    known(id).and_then(|m| m.max_output_tokens)
}

/// True for models with extended thinking: Claude 3.7 Sonnet and every model of the
/// `claude-<family>-<major>` naming from major version 4 on (Sonnet 4, Opus 4.1, Haiku 4.5,
/// ...). Claude 3.5 and older, and anything unrecognised, are false.
pub fn supports_thinking(id: &str) -> bool {
    let id = id.trim().to_ascii_lowercase();
    if id.starts_with("claude-3-7-sonnet") {
        return true;
    }
    ["opus", "sonnet", "haiku"].iter().any(|family| {
        id.strip_prefix("claude-")
            .and_then(|rest| rest.strip_prefix(family))
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
            .and_then(|major| major.parse::<u32>().ok())
            // A date right after the family is not a version.
            .is_some_and(|major| (4..1000).contains(&major))
    })
}

/// A model from `GET /models`: the catalog's capabilities when the id is a known alias or
/// snapshot (with the vendor's display name), otherwise what the id tells: thinking and image
/// input for current families (see [`supports_thinking`]), JSON by instruction, streaming,
/// unknown limits.
pub fn listed(id: &str, display_name: Option<&str>) -> ModelInfo {
    let display_name = display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    if let Some(mut m) = known(id) {
        if let Some(name) = display_name {
            m.display_name = name;
        }
        return m;
    }
    let current = supports_thinking(id);
    ModelInfo {
        id: id.to_string(),
        display_name: display_name.unwrap_or_else(|| id.to_string()),
        context_window: 0,
        max_output_tokens: None,
        json_mode: true,
        json_schema: false,
        reasoning: current,
        vision_input: current,
        streaming: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_ids_are_the_vendors_hyphenated_ids() {
        let cat = catalog();
        assert!(cat.iter().any(|m| m.id == DEFAULT_MODEL));
        for m in &cat {
            assert!(
                m.id.starts_with("claude-") && !m.id.contains('.'),
                "{}",
                m.id
            );
            assert!(m.json_mode && !m.json_schema && m.streaming && m.vision_input);
            assert!(supports_thinking(&m.id), "{}", m.id);
            assert_eq!(m.context_window, 200_000);
        }
        assert!(!cat.iter().any(|m| m.id == "claude-4.5-haiku"));
    }

    #[test]
    fn aliases_and_snapshots() {
        assert_eq!(max_output("claude-opus-4-1"), Some(32_000));
        assert_eq!(max_output("claude-opus-4-1-20250805"), Some(32_000));
        assert_eq!(max_output(" claude-sonnet-4-5-20250929 "), Some(64_000));
        assert_eq!(
            known("claude-haiku-4-5-20251001").map(|m| m.id),
            Some("claude-haiku-4-5-20251001".to_string())
        );
        // Not snapshots: another version, a malformed date, a different family.
        for id in [
            "claude-opus-4-10",
            "claude-opus-4-1-2025080",
            "claude-opus-4-1-x",
            "claude-opus-4",
            "claude-3-5-haiku-latest",
        ] {
            assert_eq!(max_output(id), None, "{id}");
        }
    }

    #[test]
    fn thinking_support_by_id() {
        for id in [
            "claude-3-7-sonnet-20250219",
            "claude-3-7-sonnet-latest",
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-0",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "Claude-Sonnet-4-5",
            "claude-sonnet-5",
        ] {
            assert!(supports_thinking(id), "{id}");
        }
        for id in [
            "claude-3-5-haiku-latest",
            "claude-3-5-sonnet-20241022",
            "claude-3-opus-20240229",
            "claude-3-haiku-20240307",
            "claude-sonnet-20250514",
            "claude-4.5-haiku",
            "gpt-4o",
            "",
        ] {
            assert!(!supports_thinking(id), "{id}");
        }
    }

    #[test]
    fn listed_models() {
        let m = listed(
            "claude-sonnet-4-5-20250929",
            Some("Claude Sonnet 4.5 (new)"),
        );
        assert_eq!(m.id, "claude-sonnet-4-5-20250929");
        assert_eq!(m.display_name, "Claude Sonnet 4.5 (new)");
        assert_eq!(m.max_output_tokens, Some(64_000));
        let m = listed("claude-opus-4-1", None);
        assert_eq!(m.display_name, "Claude Opus 4.1");
        let m = listed("claude-3-5-haiku-20241022", Some(" "));
        assert_eq!(m.display_name, "claude-3-5-haiku-20241022");
        assert!(!m.reasoning && !m.vision_input && m.json_mode && m.streaming);
        assert_eq!((m.context_window, m.max_output_tokens), (0, None));
        let m = listed("claude-sonnet-4-20250514", Some("Claude Sonnet 4"));
        assert!(m.reasoning && m.vision_input);
    }
}
