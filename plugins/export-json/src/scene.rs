//! The scene export as JSON (spec story-export §8.7.2).
//!
//! Keys are alphabetical at the top level and inside `export_info` and `scene_info` (the
//! reference builds those as Go maps, which marshal sorted); `context`, `settings` and
//! `statistics` keep the field order of their types.

use sceneintruder_plugin_sdk::exporter::document::{
    Character, Conversation, ExportInput, InteractionStats, Item, Location, SceneSettings,
};
use serde::Serialize;

use crate::{DOCUMENT_VERSION, FORMAT, pretty};

/// The whole document; field order = key order.
#[derive(Serialize)]
struct SceneDocument<'a> {
    characters: &'a [Character],
    context: Context<'a>,
    /// `null` unless the caller asked for the conversations (the reference leaves the
    /// field unset then), and `null` when there are none (a Go nil slice).
    conversations: Option<&'a [Conversation]>,
    export_info: ExportInfo<'a>,
    /// `null` when the scene has no items (a Go nil slice).
    items: Option<&'a [Item]>,
    locations: Option<&'a [Location]>,
    scene_info: SceneInfo<'a>,
    settings: &'a SceneSettings,
    statistics: &'a InteractionStats,
    summary: &'a str,
}

/// The scene's conversation log, in the field order of the reference's context type.
#[derive(Serialize)]
struct Context<'a> {
    scene_id: &'a str,
    /// Every conversation only when `include_conversations`, else `[]`: the reference
    /// leaks the whole log here regardless (spec §8.7.2 quirk, fixed as recommended).
    conversations: &'a [Conversation],
    last_updated: &'a str,
}

#[derive(Serialize)]
struct ExportInfo<'a> {
    export_type: &'a str,
    format: &'a str,
    generated_at: &'a str,
    include_conversations: bool,
    version: &'a str,
}

#[derive(Serialize)]
struct SceneInfo<'a> {
    atmosphere: &'a str,
    created_at: &'a str,
    description: &'a str,
    era: &'a str,
    id: &'a str,
    last_accessed: &'a str,
    last_updated: &'a str,
    source: &'a str,
    themes: Option<&'a [String]>,
    title: &'a str,
}

/// The scene document as pretty-printed JSON.
pub fn render(input: &ExportInput) -> serde_json::Result<String> {
    pretty(&document(input))
}

fn document(input: &ExportInput) -> SceneDocument<'_> {
    let scene = &input.scene.scene;
    let include = input.include_conversations;
    let context_lines: &[Conversation] = if include {
        &input.context.conversations
    } else {
        &[]
    };
    SceneDocument {
        characters: &input.characters,
        context: Context {
            scene_id: &input.context.scene_id,
            conversations: context_lines,
            last_updated: &input.context.last_updated,
        },
        conversations: Some(input.conversations.as_slice())
            .filter(|lines| include && !lines.is_empty()),
        export_info: ExportInfo {
            export_type: "scene",
            format: FORMAT,
            generated_at: &input.generated_at,
            include_conversations: include,
            version: DOCUMENT_VERSION,
        },
        items: Some(input.scene.items.as_slice()).filter(|items| !items.is_empty()),
        locations: scene.locations.as_deref(),
        scene_info: SceneInfo {
            atmosphere: &scene.atmosphere,
            created_at: &scene.created_at,
            description: &scene.description,
            era: &scene.era,
            id: &scene.id,
            last_accessed: &scene.last_accessed,
            last_updated: &scene.last_updated,
            source: &scene.source,
            themes: scene.themes.as_deref(),
            title: &scene.title,
        },
        settings: &input.settings,
        statistics: &input.interaction_stats,
        summary: &input.summary_markdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;
    use serde_json::Value;

    fn fixture() -> ExportInput {
        golden::input("scene")
    }

    fn value(input: &ExportInput) -> Value {
        serde_json::from_str(&render(input).expect("encodes")).expect("valid JSON")
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("scene.json", &render(&fixture()).expect("encodes"));
    }

    #[test]
    fn keys_are_alphabetical_and_indented_by_two_spaces() {
        let text = render(&fixture()).expect("encodes");
        let top: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
            .filter_map(|l| l.trim_start().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            top,
            [
                "characters",
                "context",
                "conversations",
                "export_info",
                "items",
                "locations",
                "scene_info",
                "settings",
                "statistics",
                "summary"
            ]
        );
        assert!(text.starts_with("{\n  \"characters\": [\n    {\n      \"id\""));
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn conversations_appear_only_when_requested() {
        let mut input = fixture();
        let shown = value(&input);
        assert_eq!(shown["conversations"].as_array().map(Vec::len), Some(6));
        assert_eq!(
            shown["context"]["conversations"].as_array().map(Vec::len),
            Some(8)
        );
        assert_eq!(shown["export_info"]["include_conversations"], true);

        // Even if a host sent the log anyway, it stays out of the document.
        input.include_conversations = false;
        let hidden = value(&input);
        assert_eq!(hidden["conversations"], Value::Null);
        assert_eq!(hidden["context"]["conversations"], serde_json::json!([]));
        assert_eq!(hidden["context"]["scene_id"], "scene_harbor");
        assert_eq!(hidden["export_info"]["include_conversations"], false);
    }

    #[test]
    fn export_info_carries_the_generation_time_as_given() {
        let doc = value(&fixture());
        assert_eq!(
            doc["export_info"],
            serde_json::json!({
                "export_type": "scene", "format": "json",
                "generated_at": "2025-06-20T11:00:00.123+08:00",
                "include_conversations": true, "version": "1.0"
            })
        );
    }

    #[test]
    fn empty_lists_follow_the_reference() {
        let mut input = fixture();
        input.scene.items.clear();
        input.conversations.clear();
        input.scene.scene.themes = None;
        input.scene.scene.locations = None;
        let doc = value(&input);
        assert_eq!(doc["items"], Value::Null);
        assert_eq!(doc["conversations"], Value::Null);
        assert_eq!(doc["scene_info"]["themes"], Value::Null);
        assert_eq!(doc["locations"], Value::Null);
    }

    fn typed<T: serde::Serialize>(value: &T) -> Value {
        serde_json::to_value(value).expect("serialises")
    }

    #[test]
    fn nested_types_serialise_as_the_document_types_do() {
        let input = fixture();
        let doc = value(&input);
        assert_eq!(doc["characters"], typed(&input.characters));
        assert_eq!(doc["settings"], typed(&input.settings));
        assert_eq!(doc["statistics"], typed(&input.interaction_stats));
        assert_eq!(doc["items"], typed(&input.scene.items));
        assert_eq!(doc["conversations"], typed(&input.conversations));
        assert_eq!(doc["summary"], input.summary_markdown.as_str());
    }

    #[test]
    fn odd_values_never_break_the_document() {
        let mut input = fixture();
        input.settings.creativity_level = f64::NAN;
        input.scene.scene.title = "\"quoted\" \u{0} <b>&</b> 雾".into();
        let doc = value(&input);
        assert_eq!(doc["settings"]["creativity_level"], Value::Null);
        assert_eq!(doc["scene_info"]["title"], "\"quoted\" \u{0} <b>&</b> 雾");
    }
}
