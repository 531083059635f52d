//! The export input: the one JSON document the host sends an exporter plugin, and the
//! rendering helpers every exporter needs.
//!
//! The host builds an [`ExportInput`] for each export (everything that needs storage and
//! everything shared between the formats of a kind: the interaction conversations, the
//! statistics, the kind's summary in Markdown); a plugin parses it with
//! [`ExportInput::from_json`] and renders it. The published JSON Schemas of each kind are in
//! `wit/schemas/` (`export-input.<kind>.v<N>.json`), generated from these types.
//!
//! Versioning: [`SCHEMA_VERSION`] grows when a field changes meaning or goes away; new
//! optional fields do not bump it. A renderer rejects a newer version than it knows.
//!
//! Times are RFC 3339 strings in the server's local offset; [`time`] formats them in the
//! offset they carry. [`ZERO_TIME`] stands for "never".
//!
//! Exporters share [`render`] (rankings, counts, labels, escaping), [`lines`] (a line-by-line
//! text builder) and, in their native tests, `golden` (golden-file comparison).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(not(target_arch = "wasm32"))]
pub mod golden;
pub mod lines;
pub mod render;
pub mod story;
pub mod time;

pub use story::{
    Objective, StoryChoice, StoryData, StoryLocation, StoryNode, StoryStats, Task, TaskStatus,
};

/// Version of the export input schema this crate describes.
pub const SCHEMA_VERSION: u32 = 1;

/// How an unset time is written (Go's zero time, as clients of the reference know it).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Document kinds an [`ExportInput`] can carry today.
pub const KINDS: [&str; 3] = ["scene", "interactions", "story"];

/// What the host sends an exporter for one export.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExportInput {
    /// [`SCHEMA_VERSION`] of the host that built it.
    pub schema_version: u32,
    /// `scene`, `interactions` or `story`.
    pub kind: String,
    /// The requested format, lower case.
    pub format: String,
    /// When the export was made (RFC 3339, server local offset): "now" in every template.
    pub generated_at: String,
    /// Whether the caller asked for the conversation log (`include_conversations=true`).
    pub include_conversations: bool,
    /// The scene document, with the scene's items.
    pub scene: SceneDoc,
    /// The scene's characters.
    pub characters: Vec<Character>,
    /// The scene's settings.
    pub settings: SceneSettings,
    /// The scene's conversation log: every line when `include_conversations`, else empty.
    pub context: SceneContext,
    /// The interaction conversations (lines of `metadata.conversation_type` =
    /// `character_interaction`, log order, the last 1000). For the `scene` kind only when
    /// `include_conversations`, else empty.
    pub conversations: Vec<Conversation>,
    /// Statistics over `conversations` (all zero for the `story` kind, which has none).
    pub interaction_stats: InteractionStats,
    /// The kind's summary in Markdown (scene report, interaction summary or story report),
    /// shared by all formats of the kind.
    pub summary_markdown: String,
    /// The scene's story with the reveals recorded in the conversation log merged in, every
    /// node (revealed or not) and every passage whole. Always there for the `story` kind;
    /// for `interactions` when the scene has a story (exports never make one); `null` for
    /// `scene`.
    #[serde(default)]
    pub story: Option<StoryData>,
    /// Statistics over `story` (spec §8.6.3): for the `story` kind, else `null`.
    #[serde(default)]
    pub story_stats: Option<StoryStats>,
}

impl ExportInput {
    /// Parse an export input, refusing a schema newer than this crate knows.
    pub fn from_json(json: &str) -> Result<ExportInput, String> {
        let input: ExportInput =
            serde_json::from_str(json).map_err(|e| format!("export input is not valid: {e}"))?;
        if input.schema_version > SCHEMA_VERSION || input.schema_version == 0 {
            return Err(format!(
                "export input schema version {} is not supported (this renderer knows 1..={SCHEMA_VERSION})",
                input.schema_version
            ));
        }
        Ok(input)
    }

    /// The display name of whoever spoke `line`: the character's name when `speaker_id` is a
    /// character of this scene, else the line's `speaker`.
    pub fn speaker_name<'a>(&'a self, line: &'a Conversation) -> &'a str {
        if !line.speaker_id.is_empty()
            && line.speaker_id != "user"
            && let Some(c) = self.character(&line.speaker_id)
        {
            return &c.name;
        }
        &line.speaker
    }

    /// The character with this id.
    pub fn character(&self, id: &str) -> Option<&Character> {
        self.characters.iter().find(|c| c.id == id)
    }
}

/// The scene document plus its items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SceneDoc {
    #[serde(flatten)]
    pub scene: Scene,
    /// The scene's items (not the player's inventory).
    #[serde(default)]
    pub items: Vec<Item>,
}

/// The scene's conversation log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SceneContext {
    pub scene_id: String,
    pub conversations: Vec<Conversation>,
    /// The scene's last stored change.
    pub last_updated: String,
}

/// Statistics over the interaction conversations (spec story-export §8.6.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InteractionStats {
    /// Distinct `metadata.interaction_id` values.
    pub total_interactions: u64,
    /// Number of conversations.
    pub total_messages: u64,
    /// Characters of the scene (0 for an interactions export without conversations).
    pub character_count: u64,
    pub date_range: DateRange,
    /// Count of each emotion over every conversation's `emotions`.
    pub emotion_distribution: BTreeMap<String, u64>,
    /// The ten most frequent words, most frequent first (`null` when none qualified).
    pub top_keywords: Option<Vec<String>>,
}

/// First and last conversation times ([`ZERO_TIME`] when there are none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DateRange {
    pub start_date: String,
    pub end_date: String,
}

impl Default for DateRange {
    fn default() -> Self {
        DateRange {
            start_date: ZERO_TIME.into(),
            end_date: ZERO_TIME.into(),
        }
    }
}

// The stored documents, as the API returns them.

fn zero_time() -> String {
    ZERO_TIME.to_string()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Location {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Scene {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub source: String,
    #[serde(default = "zero_time")]
    pub created_at: String,
    #[serde(default = "zero_time")]
    pub last_accessed: String,
    #[serde(default = "zero_time")]
    pub last_updated: String,
    #[serde(default)]
    pub summary: String,
    pub locations: Option<Vec<Location>>,
    pub themes: Option<Vec<String>>,
    #[serde(default)]
    pub era: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub atmosphere: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub character_count: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub item_count: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SceneSettings {
    pub scene_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    #[serde(default)]
    pub allow_free_chat: bool,
    #[serde(default)]
    pub allow_plot_twists: bool,
    #[serde(default)]
    pub creativity_level: f64,
    #[serde(default)]
    pub response_length: String,
    #[serde(default)]
    pub interaction_style: String,
    #[serde(default)]
    pub language_complexity: String,
    #[serde(default = "zero_time")]
    pub last_updated: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Character {
    pub id: String,
    pub scene_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub novel: String,
    #[serde(default)]
    pub personality: String,
    #[serde(default)]
    pub background: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub speech_style: String,
    pub relationships: Option<std::collections::BTreeMap<String, String>>,
    pub knowledge: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(default = "zero_time")]
    pub created_at: String,
    #[serde(default = "zero_time")]
    pub last_updated: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Item {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub scene_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    #[serde(default)]
    pub image_url: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub properties: Option<Value>,
    #[serde(default)]
    pub usable_with: Option<Vec<String>>,
    #[serde(default)]
    pub is_owned: bool,
    #[serde(default)]
    pub source: String,
    #[serde(default = "zero_time")]
    pub found_at: String,
    #[serde(default = "zero_time")]
    pub created_at: String,
    #[serde(default = "zero_time")]
    pub last_updated: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Conversation {
    pub id: String,
    pub scene_id: String,
    pub speaker_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    pub content: String,
    pub timestamp: String,
    /// Always empty (clients of the reference expect the keys).
    #[serde(default)]
    pub speaker: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENE: &str = include_str!("../../../tests/golden/export/scene.input.json");

    #[test]
    fn the_golden_inputs_parse() {
        for kind in ["scene", "interactions"] {
            let input = golden::input(kind);
            assert_eq!(input.kind, kind);
            assert_eq!(input.scene.scene.id, "scene_harbor");
            assert_eq!(input.scene.items.len(), 2);
            assert_eq!(input.speaker_name(&input.conversations[0]), "Quill");
        }
    }

    #[test]
    fn the_story_golden_input_parses() {
        let input = golden::input("story");
        assert_eq!(input.kind, "story");
        let story = input.story.expect("a story");
        assert_eq!(story.scene_id, "scene_harbor");
        assert!(story.nodes.iter().any(|n| !n.is_revealed));
        let stats = input.story_stats.expect("story stats");
        assert_eq!(stats.total_nodes, story.nodes.len() as u64);
        assert!(input.conversations.is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut value: Value = serde_json::from_str(SCENE).expect("json");
        value["schema_version"] = (SCHEMA_VERSION + 1).into();
        let err = ExportInput::from_json(&value.to_string()).expect_err("refused");
        assert!(err.contains("not supported"), "{err}");
    }
}
