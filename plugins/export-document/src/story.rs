//! A scene's branching story as clients of the reference know it (spec story-export §1).
//!
//! Field names and omission rules follow the reference exactly: some empty fields are
//! omitted, others are always written (`related_item_ids` even as `null`), because clients
//! and stored documents depend on the exact shape.

use std::collections::BTreeMap;

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

/// Where a task stands (spec §8.6.3): completed, else active when revealed, else hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskStatus {
    Completed,
    Active,
    Hidden,
}

impl TaskStatus {
    /// Every status, in the order the documents list them.
    pub const ALL: [TaskStatus; 3] = [
        TaskStatus::Completed,
        TaskStatus::Active,
        TaskStatus::Hidden,
    ];

    /// The key in `tasks_by_status`.
    pub fn key(self) -> &'static str {
        match self {
            TaskStatus::Completed => "completed",
            TaskStatus::Active => "active",
            TaskStatus::Hidden => "hidden",
        }
    }

    /// How the documents name it.
    pub fn label(self) -> &'static str {
        match self {
            TaskStatus::Completed => "已完成",
            TaskStatus::Active => "进行中",
            TaskStatus::Hidden => "隐藏",
        }
    }
}

impl Task {
    pub fn status(&self) -> TaskStatus {
        if self.completed {
            TaskStatus::Completed
        } else if self.is_revealed {
            TaskStatus::Active
        } else {
            TaskStatus::Hidden
        }
    }
}

impl StoryNode {
    /// The node's choices (none when never set).
    pub fn choice_list(&self) -> &[StoryChoice] {
        self.choices.as_deref().unwrap_or_default()
    }
}

impl StoryData {
    /// Every node type with its count, in order of first appearance (the reference listed
    /// types in random map order; spec §8.9.3's recommended fix).
    pub fn node_types(&self) -> Vec<(&str, u64)> {
        let mut types: Vec<(&str, u64)> = Vec::new();
        for node in &self.nodes {
            match types.iter_mut().find(|(t, _)| *t == node.node_type) {
                Some((_, n)) => *n += 1,
                None => types.push((&node.node_type, 1)),
            }
        }
        types
    }
}

/// StoryExportStats (spec §8.6.3): counted over every node, revealed or not. Maps are
/// sorted by key (the documents list node types in order of first appearance in the
/// story's nodes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoryStats {
    pub total_nodes: u64,
    pub revealed_nodes: u64,
    pub total_tasks: u64,
    pub completed_tasks: u64,
    /// Choices of every node.
    pub total_choices: u64,
    /// Choices taken (`selected`).
    pub selected_choices: u64,
    /// The story's progress, 0-100.
    pub progress: i64,
    pub current_state: String,
    /// Nodes without a parent.
    pub branch_count: u64,
    /// The longest `parent_id` chain (a root is 0; a missing parent ends a chain; a cycle is
    /// followed once round).
    pub max_depth: u64,
    /// completed_tasks / total_tasks × 100 (0 without tasks).
    pub completion_rate: f64,
    /// Nodes per `type`.
    pub nodes_by_type: BTreeMap<String, u64>,
    /// Tasks per status (`completed`, `active`, `hidden`); statuses without tasks are absent.
    pub tasks_by_status: BTreeMap<String, u64>,
    /// Tasks per `trigger_character_id` (tasks without one are not counted).
    pub character_involvement: BTreeMap<String, u64>,
}

impl StoryStats {
    /// `nodes_by_type` in order of first appearance among the story's nodes; types the
    /// story does not have (a host that counted differently) follow in key order.
    pub fn types_in_order<'a>(&'a self, story: Option<&'a StoryData>) -> Vec<(&'a str, u64)> {
        let mut ordered: Vec<(&str, u64)> = Vec::new();
        let firsts = story.map(StoryData::node_types).unwrap_or_default();
        for (kind, _) in firsts {
            if let Some(n) = self.nodes_by_type.get(kind) {
                ordered.push((kind, *n));
            }
        }
        for (kind, n) in &self.nodes_by_type {
            if !ordered.iter().any(|(k, _)| k == kind) {
                ordered.push((kind, *n));
            }
        }
        ordered
    }

    /// The statuses that have tasks, completed first, then active, then hidden.
    pub fn statuses(&self) -> Vec<(TaskStatus, u64)> {
        TaskStatus::ALL
            .into_iter()
            .filter_map(|s| Some((s, *self.tasks_by_status.get(s.key())?)))
            .collect()
    }

    /// Tasks of `status` (0 when absent).
    pub fn tasks_with(&self, status: TaskStatus) -> u64 {
        self.tasks_by_status.get(status.key()).copied().unwrap_or(0)
    }

    /// Share of nodes revealed, in percent. The reference printed `NaN` for a story without
    /// nodes; 0 here (nothing of nothing is revealed).
    pub fn revealed_percent(&self) -> f64 {
        share(self.revealed_nodes, self.total_nodes)
    }

    /// Share of all nodes that have type count `n`, in percent (0 without nodes).
    pub fn type_percent(&self, n: u64) -> f64 {
        share(n, self.total_nodes)
    }

    /// Choices per node (0 without nodes, where the reference printed `NaN`).
    pub fn choices_per_node(&self) -> f64 {
        if self.total_nodes == 0 {
            0.0
        } else {
            self.total_choices as f64 / self.total_nodes as f64
        }
    }

    /// Share of choices taken, in percent (0 without choices, where the reference printed
    /// `NaN`).
    pub fn selected_percent(&self) -> f64 {
        share(self.selected_choices, self.total_choices)
    }

    /// 发展阶段 from the progress.
    pub fn stage(&self) -> &'static str {
        match self.progress {
            p if p >= 90 => "接近尾声 - 故事即将完结",
            p if p >= 70 => "后期发展 - 主要冲突趋于解决",
            p if p >= 50 => "中期发展 - 故事冲突加剧",
            p if p >= 30 => "初期发展 - 故事情节逐步展开",
            p if p >= 10 => "开始阶段 - 世界观和角色介绍",
            _ => "序幕阶段 - 故事刚刚开始",
        }
    }

    /// 故事复杂度 from [`StoryStats::choices_per_node`]. A story without nodes is "low",
    /// as the reference's `NaN` fell through to the last label.
    pub fn complexity(&self) -> &'static str {
        match self.choices_per_node() {
            a if a >= 4.0 => "高 - 选择丰富，分支复杂",
            a if a >= 2.5 => "中等 - 适度的选择和分支",
            a if a >= 1.5 => "较低 - 相对线性的发展",
            _ => "低 - 线性故事发展",
        }
    }

    /// 互动性水平 from [`StoryStats::selected_percent`] (no choices: "low", as above).
    pub fn interactivity(&self) -> &'static str {
        match self.selected_percent() {
            p if p >= 70.0 => "高 - 玩家积极参与决策",
            p if p >= 50.0 => "中等 - 适度的玩家参与",
            p if p >= 30.0 => "较低 - 玩家参与有限",
            _ => "低 - 缺乏玩家互动",
        }
    }
}

/// `n / d × 100`, 0 when `d` is 0.
fn share(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64 * 100.0
    }
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

    #[test]
    fn task_status_and_labels() {
        let mut t = task();
        assert_eq!(t.status(), TaskStatus::Active);
        t.is_revealed = false;
        assert_eq!(t.status(), TaskStatus::Hidden);
        t.completed = true;
        assert_eq!(t.status(), TaskStatus::Completed);
        assert_eq!(TaskStatus::Hidden.key(), "hidden");
        assert_eq!(TaskStatus::Active.label(), "进行中");
    }

    #[test]
    fn types_follow_first_appearance() {
        let typed = |id: &str, t: &str| StoryNode {
            id: id.into(),
            node_type: t.into(),
            ..StoryNode::default()
        };
        let story = StoryData {
            nodes: vec![
                typed("a", "side"),
                typed("b", "main"),
                typed("c", "side"),
                typed("d", "event"),
            ],
            ..StoryData::default()
        };
        assert_eq!(story.node_types(), [("side", 2), ("main", 1), ("event", 1)]);
        let stats = StoryStats {
            total_nodes: 4,
            nodes_by_type: [("event", 1), ("main", 1), ("side", 2), ("zzz", 0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            tasks_by_status: [("hidden", 2), ("completed", 1)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ..StoryStats::default()
        };
        assert_eq!(
            stats.types_in_order(Some(&story)),
            [("side", 2), ("main", 1), ("event", 1), ("zzz", 0)]
        );
        assert_eq!(
            stats.types_in_order(None),
            [("event", 1), ("main", 1), ("side", 2), ("zzz", 0)]
        );
        assert_eq!(
            stats.statuses(),
            [(TaskStatus::Completed, 1), (TaskStatus::Hidden, 2)]
        );
        assert_eq!(stats.tasks_with(TaskStatus::Active), 0);
        assert_eq!(stats.type_percent(1), 25.0);
    }

    #[test]
    fn empty_stories_print_no_nan() {
        let stats = StoryStats::default();
        assert_eq!(stats.revealed_percent(), 0.0);
        assert_eq!(stats.type_percent(3), 0.0);
        assert_eq!(stats.choices_per_node(), 0.0);
        assert_eq!(stats.selected_percent(), 0.0);
        assert_eq!(stats.stage(), "序幕阶段 - 故事刚刚开始");
        assert_eq!(stats.complexity(), "低 - 线性故事发展");
        assert_eq!(stats.interactivity(), "低 - 缺乏玩家互动");
    }

    #[test]
    fn rating_thresholds() {
        let stats = |progress, nodes, choices, selected| StoryStats {
            progress,
            total_nodes: nodes,
            total_choices: choices,
            selected_choices: selected,
            ..StoryStats::default()
        };
        assert_eq!(stats(90, 0, 0, 0).stage(), "接近尾声 - 故事即将完结");
        assert_eq!(stats(30, 0, 0, 0).stage(), "初期发展 - 故事情节逐步展开");
        assert_eq!(stats(10, 0, 0, 0).stage(), "开始阶段 - 世界观和角色介绍");
        assert_eq!(stats(0, 2, 8, 0).complexity(), "高 - 选择丰富，分支复杂");
        assert_eq!(stats(0, 2, 5, 0).complexity(), "中等 - 适度的选择和分支");
        assert_eq!(stats(0, 3, 5, 0).complexity(), "较低 - 相对线性的发展");
        assert_eq!(stats(0, 0, 10, 7).interactivity(), "高 - 玩家积极参与决策");
        assert_eq!(stats(0, 0, 10, 5).interactivity(), "中等 - 适度的玩家参与");
        assert_eq!(stats(0, 0, 10, 3).interactivity(), "较低 - 玩家参与有限");
        assert_eq!(stats(0, 0, 5, 1).selected_percent(), 20.0);
    }
}
