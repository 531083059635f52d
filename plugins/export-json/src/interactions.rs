//! The interactions export as JSON (spec story-export §8.8.2).
//!
//! Unlike the other kinds, the two dates here are `YYYY-MM-DD HH:MM:SS` strings in the
//! offset each time carries (the reference formats them itself instead of marshalling a
//! time), and there is no `export_type`.

use sceneintruder_plugin_sdk::exporter::document::{
    Character, Conversation, ExportInput, InteractionStats,
    time::{self, Pattern},
};
use serde::Serialize;

use crate::{DOCUMENT_VERSION, FORMAT, pretty};

/// The whole document; field order = key order (alphabetical, as the reference's maps).
#[derive(Serialize)]
struct InteractionsDocument<'a> {
    characters: &'a [Character],
    /// `null` when there are none (a Go nil slice).
    conversations: Option<&'a [Conversation]>,
    export_info: ExportInfo<'a>,
    scene_info: SceneInfo<'a>,
    statistics: &'a InteractionStats,
    summary: &'a str,
}

#[derive(Serialize)]
struct ExportInfo<'a> {
    format: &'a str,
    generated_at: String,
    version: &'a str,
}

#[derive(Serialize)]
struct SceneInfo<'a> {
    created_at: String,
    description: &'a str,
    id: &'a str,
    title: &'a str,
}

/// The interactions document as pretty-printed JSON.
pub fn render(input: &ExportInput) -> serde_json::Result<String> {
    pretty(&document(input))
}

fn document(input: &ExportInput) -> InteractionsDocument<'_> {
    let scene = &input.scene.scene;
    InteractionsDocument {
        characters: &input.characters,
        conversations: Some(input.conversations.as_slice()).filter(|lines| !lines.is_empty()),
        export_info: ExportInfo {
            format: FORMAT,
            generated_at: time::format(&input.generated_at, Pattern::DateTime),
            version: DOCUMENT_VERSION,
        },
        scene_info: SceneInfo {
            created_at: time::format(&scene.created_at, Pattern::DateTime),
            description: &scene.description,
            id: &scene.id,
            title: &scene.title,
        },
        statistics: &input.interaction_stats,
        summary: &input.summary_markdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;
    use serde_json::{Value, json};

    fn fixture() -> ExportInput {
        golden::input("interactions")
    }

    fn value(input: &ExportInput) -> Value {
        serde_json::from_str(&render(input).expect("encodes")).expect("valid JSON")
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("interactions.json", &render(&fixture()).expect("encodes"));
    }

    #[test]
    fn keys_are_in_the_spec_order() {
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
                "conversations",
                "export_info",
                "scene_info",
                "statistics",
                "summary"
            ]
        );
    }

    #[test]
    fn dates_are_local_date_time_strings() {
        let doc = value(&fixture());
        assert_eq!(
            doc["export_info"],
            json!({ "format": "json", "generated_at": "2025-06-20 11:00:00", "version": "1.0" })
        );
        assert_eq!(
            doc["scene_info"],
            json!({
                "created_at": "2025-06-20 09:00:00",
                "description": "A coastal town is swallowed by fog; a crate vanishes from the pier.",
                "id": "scene_harbor",
                "title": "The Harbor Fog"
            })
        );
    }

    #[test]
    fn zero_times_render_as_the_zero_time() {
        let mut input = fixture();
        input.scene.scene.created_at = "0001-01-01T00:00:00Z".into();
        input.generated_at = String::new();
        let doc = value(&input);
        assert_eq!(doc["scene_info"]["created_at"], "0001-01-01 00:00:00");
        assert_eq!(doc["export_info"]["generated_at"], "0001-01-01 00:00:00");
    }

    #[test]
    fn conversations_are_null_when_there_are_none() {
        let mut input = fixture();
        assert_eq!(
            value(&input)["conversations"],
            serde_json::to_value(&input.conversations).expect("serialises")
        );
        input.conversations.clear();
        assert_eq!(value(&input)["conversations"], Value::Null);
    }

    #[test]
    fn statistics_and_summary_come_from_the_input() {
        let input = fixture();
        let doc = value(&input);
        assert_eq!(
            doc["statistics"],
            serde_json::to_value(&input.interaction_stats).expect("serialises")
        );
        assert_eq!(doc["summary"], input.summary_markdown.as_str());
        assert_eq!(doc["statistics"]["top_keywords"][0], "where");
    }
}
