//! The parts of an export input that every format of a kind shares (spec story-export
//! §8.6-§8.9): the interaction conversations, their statistics, the story's statistics, and
//! the kind's summary in Markdown. The host computes them once per export and puts them in the
//! [`ExportInput`](sceneintruder_export_document::ExportInput); the plugins only render.
//!
//! Where the spec notes a "Reference quirk" with a recommended fix, the fix is built:
//! message lengths count characters and cuts fall on character boundaries, the user/character
//! split of the interaction summary counts each conversation once, ties keep first-seen order
//! (no hash-map order reaches the output), and no ratio prints `NaN`.

mod analysis;
mod conversations;
mod interaction_summary;
mod scene_summary;
mod sections;
mod stats;
mod story;
mod words;

pub use conversations::{MAX_CONVERSATIONS, interaction_conversations};
pub use interaction_summary::interaction_summary;
pub use scene_summary::scene_summary;
pub use stats::interaction_stats;
pub use story::{story_stats, story_summary};
pub use words::MAX_DISTINCT_WORDS;

/// Which export the shared parts are for: the two kinds compute their statistics slightly
/// differently when there is no conversation (spec §8.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/export/scene`.
    Scene,
    /// `/export/interactions`.
    Interactions,
}

/// Builders shared by the unit tests of every module.
#[cfg(test)]
pub(crate) mod testing {
    use sceneintruder_export_document::{Conversation, ExportInput};
    use serde_json::Value;

    pub const SCENE: &str = include_str!("../../../tests/golden/export/scene.input.json");
    pub const INTERACTIONS: &str =
        include_str!("../../../tests/golden/export/interactions.input.json");
    pub const STORY: &str = include_str!("../../../tests/golden/export/story.input.json");

    pub fn fixture(text: &str) -> ExportInput {
        ExportInput::from_json(text).expect("the golden input parses")
    }

    /// A conversation line with the given speaker id, content and time.
    pub fn line(speaker_id: &str, content: &str, at: &str) -> Conversation {
        Conversation {
            id: format!("conv_{speaker_id}_{at}"),
            scene_id: "scene_t".into(),
            speaker_id: speaker_id.into(),
            content: content.into(),
            timestamp: at.into(),
            ..Default::default()
        }
    }

    /// `line` with the given metadata (a JSON object).
    pub fn with_meta(mut line: Conversation, metadata: Value) -> Conversation {
        if let Value::Object(map) = metadata {
            line.metadata = map;
        }
        line
    }

    /// `line` with the given emotions.
    pub fn with_emotions(mut line: Conversation, emotions: &[&str]) -> Conversation {
        line.emotions = Some(emotions.iter().map(|e| e.to_string()).collect());
        line
    }

    /// Minute `m` (0-59) of 2025-06-20 10:00 in +08:00.
    pub fn at(m: u32) -> String {
        format!("2025-06-20T10:{m:02}:00+08:00")
    }

    /// Whether `text` has the line `wanted`.
    pub fn has(text: &str, wanted: &str) -> bool {
        text.lines().any(|l| l == wanted)
    }

    /// Whether `text` has a line starting with `prefix`.
    pub fn starts(text: &str, prefix: &str) -> bool {
        text.lines().any(|l| l.starts_with(prefix))
    }

    /// Fail when `text` prints a ratio that is not a number.
    pub fn no_nan(text: &str) {
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }
}
