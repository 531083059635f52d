//! The story export as JSON (spec story-export §8.9.2).
//!
//! Keys are alphabetical at the top level and inside `export_info`, `scene_info` and
//! `story_data` (the reference builds those as Go maps, which marshal sorted);
//! `statistics` keeps the field order of its type, and nodes, tasks and locations serialise
//! exactly as the story types do. Every node is included, revealed or not.

use sceneintruder_plugin_sdk::exporter::document::{
    Character, ExportInput, StoryLocation, StoryNode, StoryStats, Task,
};
use serde::Serialize;

use crate::{DOCUMENT_VERSION, FORMAT, pretty};

/// The whole document; field order = key order.
#[derive(Serialize)]
struct StoryDocument<'a> {
    characters: &'a [Character],
    export_info: ExportInfo<'a>,
    scene_info: SceneInfo<'a>,
    statistics: &'a StoryStats,
    /// `null` when the input has no story (the host never sends the kind without one).
    story_data: Option<StoryDataDoc<'a>>,
    summary: &'a str,
}

#[derive(Serialize)]
struct ExportInfo<'a> {
    export_type: &'a str,
    format: &'a str,
    generated_at: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct SceneInfo<'a> {
    atmosphere: &'a str,
    created_at: &'a str,
    description: &'a str,
    era: &'a str,
    id: &'a str,
    themes: Option<&'a [String]>,
    title: &'a str,
}

/// The story as the reference's map holds it: no `scene_id`, no `last_updated`.
#[derive(Serialize)]
struct StoryDataDoc<'a> {
    current_state: &'a str,
    intro: &'a str,
    locations: &'a [StoryLocation],
    main_objective: &'a str,
    nodes: &'a [StoryNode],
    progress: i64,
    tasks: &'a [Task],
}

/// The story document as pretty-printed JSON.
pub fn render(input: &ExportInput) -> serde_json::Result<String> {
    let empty = StoryStats::default();
    pretty(&document(
        input,
        input.story_stats.as_ref().unwrap_or(&empty),
    ))
}

fn document<'a>(input: &'a ExportInput, statistics: &'a StoryStats) -> StoryDocument<'a> {
    let scene = &input.scene.scene;
    StoryDocument {
        characters: &input.characters,
        export_info: ExportInfo {
            export_type: "story",
            format: FORMAT,
            generated_at: &input.generated_at,
            version: DOCUMENT_VERSION,
        },
        scene_info: SceneInfo {
            atmosphere: &scene.atmosphere,
            created_at: &scene.created_at,
            description: &scene.description,
            era: &scene.era,
            id: &scene.id,
            themes: scene.themes.as_deref(),
            title: &scene.title,
        },
        statistics,
        story_data: input.story.as_ref().map(|story| StoryDataDoc {
            current_state: &story.current_state,
            intro: &story.intro,
            locations: &story.locations,
            main_objective: &story.main_objective,
            nodes: &story.nodes,
            progress: story.progress,
            tasks: &story.tasks,
        }),
        summary: &input.summary_markdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;
    use serde_json::{Value, json};

    fn fixture() -> ExportInput {
        golden::input("story")
    }

    fn value(input: &ExportInput) -> Value {
        serde_json::from_str(&render(input).expect("encodes")).expect("valid JSON")
    }

    fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("story.json", &render(&fixture()).expect("encodes"));
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
                "export_info",
                "scene_info",
                "statistics",
                "story_data",
                "summary"
            ]
        );
        let doc = value(&fixture());
        assert_eq!(
            keys(&doc["story_data"]),
            [
                "current_state",
                "intro",
                "locations",
                "main_objective",
                "nodes",
                "progress",
                "tasks"
            ]
        );
        assert_eq!(
            doc["export_info"],
            json!({
                "export_type": "story", "format": "json",
                "generated_at": "2025-06-20T11:00:00.123+08:00", "version": "1.0"
            })
        );
        assert_eq!(
            keys(&doc["scene_info"]),
            [
                "atmosphere",
                "created_at",
                "description",
                "era",
                "id",
                "themes",
                "title"
            ]
        );
    }

    #[test]
    fn every_node_and_the_statistics_come_from_the_input() {
        let input = fixture();
        let doc = value(&input);
        let story = input.story.as_ref().expect("story");
        assert_eq!(
            doc["story_data"]["nodes"],
            serde_json::to_value(&story.nodes).expect("serialises")
        );
        assert!(
            doc["story_data"]["nodes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["is_revealed"] == false))
        );
        assert_eq!(
            doc["statistics"],
            serde_json::to_value(&input.story_stats).expect("serialises")
        );
        assert_eq!(
            doc["statistics"]["nodes_by_type"],
            json!({"event": 1, "main": 2})
        );
        assert_eq!(doc["summary"], input.summary_markdown.as_str());
    }

    #[test]
    fn a_missing_story_is_null_and_zero_statistics() {
        let mut input = fixture();
        input.story = None;
        input.story_stats = None;
        let doc = value(&input);
        assert_eq!(doc["story_data"], Value::Null);
        assert_eq!(doc["statistics"]["total_nodes"], 0);
        assert_eq!(doc["statistics"]["completion_rate"], 0.0);
    }
}
