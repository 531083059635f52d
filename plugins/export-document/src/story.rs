//! A scene's branching story as clients of the reference know it (spec story-export §1).
//!
//! Field names and omission rules follow the reference exactly: some empty fields are
//! omitted, others are always written (`related_item_ids` even as `null`), because clients
//! and stored documents depend on the exact shape.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::zero_time;

/// The whole story of a scene (§1.1). Branches are the tree formed by `StoryNode.parent_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoryData {
    pub scene_id: String,
    #[serde(default)]
    pub intro: String,
    #[serde(default)]
    pub main_objective: String,
    /// Stage label (§1.9): `初始`/`冲突`/`发展`/`高潮`/`结局`, or `Initial` for a new English story.
    #[serde(default)]
    pub current_state: String,
    /// 0–100.
    #[serde(default)]
    pub progress: i64,
    /// In append order, which rewind and "latest revealed" rely on.
    #[serde(default)]
    pub nodes: Vec<StoryNode>,
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub locations: Vec<StoryLocation>,
    #[serde(default = "zero_time")]
    pub last_updated: String,
}

/// One passage of the story (§1.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoryNode {
    pub id: String,
    #[serde(default)]
    pub scene_id: String,
    /// Set only for nodes created by a choice.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent_id: String,
    /// The narrated text shown to the player.
    #[serde(default)]
    pub content: String,
    /// The source-text segment this node corresponds to.
    #[serde(default)]
    pub original_content: String,
    #[serde(default, rename = "type")]
    pub node_type: String,
    /// `null` when never set (the reference writes it so).
    #[serde(default)]
    pub choices: Option<Vec<StoryChoice>>,
    #[serde(default)]
    pub is_revealed: bool,
    #[serde(default = "zero_time")]
    pub created_at: String,
    /// `EXPLICIT`, `GENERATED`, `EXPLORATION`, `SYSTEM`, `BRANCH` or `STORY`.
    #[serde(default)]
    pub source: String,
    /// Open map, keys in §1.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Never omitted: `null` until load-time enrichment matched the scene's items.
    #[serde(default)]
    pub related_item_ids: Option<Vec<String>>,
    /// Never populated by the reference; kept so stored documents round-trip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub character_interactions: Vec<Value>,
    /// Never populated (triggers live in `metadata.interaction_triggers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interaction_triggers: Vec<Value>,
}

/// A choice offered at a node (§1.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoryChoice {
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub consequence: String,
    /// The node this choice created, when recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub next_node_id: String,
    #[serde(default)]
    pub next_node_hint: String,
    /// The authoritative "taken" flag.
    #[serde(default)]
    pub selected: bool,
    #[serde(default = "zero_time")]
    pub created_at: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "type")]
    pub choice_type: String,
    #[serde(default)]
    pub impact: f64,
    #[serde(default)]
    pub order: i64,
    /// Legacy duplicate of `selected`, only ever written `false`.
    #[serde(default)]
    pub is_selected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A task of the story (§1.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Task {
    pub id: String,
    #[serde(default)]
    pub scene_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub objectives: Vec<Objective>,
    #[serde(default)]
    pub reward: String,
    #[serde(default)]
    pub is_revealed: bool,
    #[serde(default)]
    pub source: String,
    #[serde(default, rename = "type")]
    pub task_type: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub priority: String,
    /// Set when every objective is completed.
    #[serde(default)]
    pub completed: bool,
    /// Never set by the reference, so always the zero time.
    #[serde(default = "zero_time")]
    pub completed_at: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trigger_character_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_character_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// One objective of a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Objective {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub completed: bool,
}

/// A place of the story (§1.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoryLocation {
    pub id: String,
    #[serde(default)]
    pub scene_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub accessible: bool,
    /// Informational only: nothing enforces it.
    #[serde(default)]
    pub requires_item: String,
    #[serde(default)]
    pub source: String,
    /// Never set by the reference, so always the zero time.
    #[serde(default = "zero_time")]
    pub explored_at: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ZERO_TIME;

    fn choice() -> StoryChoice {
        StoryChoice {
            id: "choice_node_scene_1718000000_1_1".into(),
            text: "Question the night watchman".into(),
            consequence: "He may know who entered the office.".into(),
            next_node_hint: "The watchman's story has a gap.".into(),
            created_at: "2025-06-20T10:30:01.000000001+08:00".into(),
            choice_type: "branch".into(),
            ..StoryChoice::default()
        }
    }

    fn node() -> StoryNode {
        let metadata = json!({
            "segment_strategy": "quick_init",
            "analyzed": true,
            "segment_enhanced": true,
            "current_location_id": "loc_scene_1718000000_1",
            "current_location_name": "The Pier"
        });
        StoryNode {
            id: "node_scene_1718000000_1".into(),
            scene_id: "scene_1718000000".into(),
            content: "Fog rolls over the pier as the harbor master counts the empty crates..."
                .into(),
            original_content:
                "The fog came in at dusk. Harbor master Quill counted the crates twice...".into(),
            node_type: "main".into(),
            choices: Some(vec![choice()]),
            is_revealed: true,
            created_at: "2025-06-20T10:30:00.500000000+08:00".into(),
            source: "SYSTEM".into(),
            metadata: metadata.as_object().cloned(),
            related_item_ids: Some(vec!["item_scene_1718000000_ledger".into()]),
            ..StoryNode::default()
        }
    }

    fn task() -> Task {
        Task {
            id: "task_scene_1718000000_primary".into(),
            scene_id: "scene_1718000000".into(),
            title: "Stabilize the Situation".into(),
            description: "Find out who stole the harbor ledger before the ship sails.".into(),
            objectives: vec![
                Objective {
                    id: "obj_scene_1718000000_1".into(),
                    description: "Assess the battlefield and calm the ranks.".into(),
                    completed: true,
                },
                Objective {
                    id: "obj_scene_1718000000_2".into(),
                    description: "Reunite scattered companions or protect civilians.".into(),
                    completed: false,
                },
            ],
            reward: "Unlock new strategic opportunities.".into(),
            is_revealed: true,
            source: "SYSTEM".into(),
            task_type: "main".into(),
            status: "active".into(),
            priority: "high".into(),
            completed_at: ZERO_TIME.into(),
            ..Task::default()
        }
    }

    #[test]
    fn a_node_serialises_like_the_spec_example() {
        let expected = json!({
            "id": "node_scene_1718000000_1",
            "scene_id": "scene_1718000000",
            "content": "Fog rolls over the pier as the harbor master counts the empty crates...",
            "original_content": "The fog came in at dusk. Harbor master Quill counted the crates twice...",
            "type": "main",
            "choices": [{
                "id": "choice_node_scene_1718000000_1_1",
                "text": "Question the night watchman",
                "consequence": "He may know who entered the office.",
                "next_node_hint": "The watchman's story has a gap.",
                "selected": false,
                "created_at": "2025-06-20T10:30:01.000000001+08:00",
                "description": "",
                "type": "branch",
                "impact": 0.0,
                "order": 0,
                "is_selected": false
            }],
            "is_revealed": true,
            "created_at": "2025-06-20T10:30:00.500000000+08:00",
            "source": "SYSTEM",
            "metadata": {
                "segment_strategy": "quick_init",
                "analyzed": true,
                "segment_enhanced": true,
                "current_location_id": "loc_scene_1718000000_1",
                "current_location_name": "The Pier"
            },
            "related_item_ids": ["item_scene_1718000000_ledger"]
        });
        assert_eq!(serde_json::to_value(node()).unwrap(), expected);
    }

    #[test]
    fn unset_fields_follow_the_omission_rules() {
        let bare = StoryNode {
            id: "n".into(),
            ..StoryNode::default()
        };
        let value = serde_json::to_value(&bare).unwrap();
        // `choices` and `related_item_ids` are written as null; the others are omitted.
        assert_eq!(value["choices"], Value::Null);
        assert_eq!(value["related_item_ids"], Value::Null);
        assert!(value.as_object().unwrap().contains_key("related_item_ids"));
        assert!(value.as_object().unwrap().contains_key("choices"));
        for omitted in [
            "parent_id",
            "metadata",
            "character_interactions",
            "interaction_triggers",
        ] {
            assert!(value.get(omitted).is_none(), "{omitted}");
        }
        let choice = serde_json::to_value(StoryChoice::default()).unwrap();
        for omitted in ["next_node_id", "requirements", "metadata"] {
            assert!(choice.get(omitted).is_none(), "{omitted}");
        }
    }

    #[test]
    fn a_task_serialises_like_the_spec_example() {
        let expected = json!({
            "id": "task_scene_1718000000_primary",
            "scene_id": "scene_1718000000",
            "title": "Stabilize the Situation",
            "description": "Find out who stole the harbor ledger before the ship sails.",
            "objectives": [
                { "id": "obj_scene_1718000000_1", "description": "Assess the battlefield and calm the ranks.", "completed": true },
                { "id": "obj_scene_1718000000_2", "description": "Reunite scattered companions or protect civilians.", "completed": false }
            ],
            "reward": "Unlock new strategic opportunities.",
            "is_revealed": true,
            "source": "SYSTEM",
            "type": "main",
            "status": "active",
            "priority": "high",
            "completed": false,
            "completed_at": "0001-01-01T00:00:00Z"
        });
        assert_eq!(serde_json::to_value(task()).unwrap(), expected);
    }

    #[test]
    fn missing_times_default_to_the_zero_time() {
        let location: StoryLocation = serde_json::from_str(r#"{"id":"loc"}"#).unwrap();
        assert_eq!(location.explored_at, ZERO_TIME);
        let choice: StoryChoice = serde_json::from_str(r#"{"id":"c"}"#).unwrap();
        assert_eq!(choice.created_at, ZERO_TIME);
        let story: StoryData = serde_json::from_str(r#"{"scene_id":"s"}"#).unwrap();
        assert_eq!(story.last_updated, ZERO_TIME);
    }

    #[test]
    fn a_story_round_trips() {
        let story = StoryData {
            scene_id: "scene_1718000000".into(),
            intro: "A coastal town is swallowed by fog.".into(),
            main_objective: "Find the ledger.".into(),
            current_state: "Initial".into(),
            progress: 0,
            nodes: vec![
                node(),
                StoryNode {
                    id: "node_2".into(),
                    parent_id: "node_scene_1718000000_1".into(),
                    ..StoryNode::default()
                },
            ],
            tasks: vec![task()],
            locations: vec![StoryLocation {
                id: "loc_scene_1718000000_1".into(),
                scene_id: "scene_1718000000".into(),
                name: "The Pier".into(),
                description: "Wet planks.".into(),
                accessible: true,
                source: "SYSTEM".into(),
                explored_at: ZERO_TIME.into(),
                ..StoryLocation::default()
            }],
            last_updated: "2025-06-20T10:30:00.123456789+08:00".into(),
        };
        let json = serde_json::to_string(&story).unwrap();
        let back: StoryData = serde_json::from_str(&json).unwrap();
        assert_eq!(back, story);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}
