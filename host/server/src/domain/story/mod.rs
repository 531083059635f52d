//! The branching story of a scene: building a new story without the LLM, the reference's
//! fallback texts and progress rule, and how a story maps onto the store's rows
//! (spec story-export §1, §3.2, §3.5, §3.6).

use sceneintruder_export_document::{
    Objective, StoryChoice, StoryData, StoryLocation, StoryNode, Task, ZERO_TIME,
};
use sceneintruder_store::{Part, StoryRows};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

pub mod engine;
pub mod prompts;

use crate::domain::scenes::{Scene, Segment, is_english};
use crate::error::ServerError;

/// Most segments a new story is built from.
const MAX_SEGMENTS: usize = 12;
/// Longest synthesised narration summary, in characters.
const NARRATION_LIMIT: usize = 360;

/// Type of the node at position `i` of `total` (§3.5): the ends are `main`, every third is a
/// `branch`, the rest `side`.
pub fn node_type(i: usize, total: usize) -> &'static str {
    if total <= 2 || i == 0 || i + 1 == total {
        "main"
    } else if i.is_multiple_of(3) {
        "branch"
    } else {
        "side"
    }
}

/// The narration synthesised from an original passage when no LLM text exists (§3.6): its
/// first sentences up to 360 characters, framed by the reference's fixed wording.
pub fn narration(passage: &str, english: bool) -> String {
    let mut sentences = Vec::new();
    let mut start = 0;
    for (at, c) in passage.char_indices() {
        if "。！？!?;；\n".contains(c) {
            let end = at + c.len_utf8();
            sentences.push(&passage[start..end]);
            start = end;
        }
    }
    sentences.push(&passage[start..]);
    let mut summary = String::new();
    let mut len = 0;
    for sentence in sentences
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if len >= NARRATION_LIMIT {
            break;
        }
        if len > 0 {
            summary.push(' ');
            len += 1;
        }
        summary.push_str(sentence);
        len += sentence.chars().count();
    }
    if summary.is_empty() {
        return if english {
            "(No narrative available)"
        } else {
            "（暂无剧情内容）"
        }
        .to_string();
    }
    if len > NARRATION_LIMIT {
        summary = summary.chars().take(NARRATION_LIMIT).collect();
        summary.push_str("...");
    }
    if english {
        format!(
            "Narrative focus:\n{summary}\n\nSuggested actions: steady the line; search for key allies; stage a bold diversion."
        )
    } else {
        format!("【剧情演绎】{summary}\n\n【行动提示】稳住阵线、寻回关键同伴、策动佯攻突围")
    }
}

/// The two choices every node gets when the LLM offers none (§3.6).
pub fn fallback_choices(node_id: &str, english: bool, now: &str) -> Vec<StoryChoice> {
    let pick = |en: &str, zh: &str| if english { en } else { zh }.to_string();
    vec![
        StoryChoice {
            id: format!("choice_{node_id}_reflect"),
            text: pick("Reflect and assess", "整理局势"),
            consequence: pick(
                "Gain insight into the current development.",
                "梳理现状，寻找新的线索。",
            ),
            next_node_hint: pick("Stabilize before the next move.", "稳住阵脚后再做决策。"),
            created_at: now.to_string(),
            choice_type: "main".into(),
            ..StoryChoice::default()
        },
        StoryChoice {
            id: format!("choice_{node_id}_act"),
            text: pick("Take bold action", "立即行动"),
            consequence: pick(
                "Push the narrative with a decisive move.",
                "以果断举动推动剧情发展。",
            ),
            next_node_hint: pick(
                "Expect consequences shaped by this risk.",
                "此举会引发新的变数。",
            ),
            created_at: now.to_string(),
            choice_type: "branch".into(),
            ..StoryChoice::default()
        },
    ]
}

/// The one task of a story built without the LLM (§3.6).
pub fn fallback_task(scene: &Scene, english: bool) -> Task {
    let pick = |en: &str, zh: &str| if english { en } else { zh }.to_string();
    let id = &scene.id;
    let description = if scene.summary.is_empty() {
        pick(
            "Stabilize the retreat and locate key allies.",
            "稳住撤退阵线并寻找关键同伴。",
        )
    } else {
        scene.summary.clone()
    };
    Task {
        id: format!("task_{id}_primary"),
        scene_id: id.clone(),
        title: pick("Stabilize the Situation", "稳住危局"),
        description,
        objectives: vec![
            Objective {
                id: format!("obj_{id}_1"),
                description: pick(
                    "Assess the battlefield and calm the ranks.",
                    "侦查战场、稳住军心。",
                ),
                completed: false,
            },
            Objective {
                id: format!("obj_{id}_2"),
                description: pick(
                    "Reunite scattered companions or protect civilians.",
                    "寻回失散同伴或保护百姓。",
                ),
                completed: false,
            },
        ],
        reward: pick("Unlock new strategic opportunities.", "解锁新的行动机会。"),
        is_revealed: true,
        source: "SYSTEM".into(),
        task_type: "main".into(),
        status: "active".into(),
        priority: "high".into(),
        completed_at: ZERO_TIME.into(),
        ..Task::default()
    }
}

/// The story's places when the LLM offers none (§3.6): the scene's locations, only the first
/// accessible, or a single place named after the scene when it has none.
pub fn fallback_locations(scene: &Scene, _english: bool) -> Vec<StoryLocation> {
    // The reference's "Location <n>" placeholder is English in both languages.
    let location = |n: usize, name: String, description: String| StoryLocation {
        id: format!("loc_{}_{n}", scene.id),
        scene_id: scene.id.clone(),
        name,
        description,
        accessible: n == 1,
        requires_item: String::new(),
        source: "SYSTEM".into(),
        explored_at: ZERO_TIME.into(),
    };
    let places = scene.locations.as_deref().unwrap_or_default();
    if places.is_empty() {
        if scene.title.is_empty() {
            return Vec::new();
        }
        return vec![location(1, scene.title.clone(), scene.description.clone())];
    }
    places
        .iter()
        .enumerate()
        .map(|(i, place)| {
            let name = if place.name.is_empty() {
                format!("Location {}", i + 1)
            } else {
                place.name.clone()
            };
            location(i + 1, name, place.description.clone())
        })
        .collect()
}

/// Stage label for a progress after a choice or a completed task (§1.9): `None` below 25,
/// where the label stays as it was (so an English story keeps `Initial`).
pub fn stage(progress: i64) -> Option<&'static str> {
    match progress {
        p if p >= 100 => Some("结局"),
        p if p >= 75 => Some("高潮"),
        p if p >= 50 => Some("发展"),
        p if p >= 25 => Some("冲突"),
        _ => None,
    }
}

/// Stage label after a rewind, which recomputes everything: below 25 is `初始`.
pub fn stage_from_scratch(progress: i64) -> &'static str {
    stage(progress).unwrap_or("初始")
}

/// Progress after a gain (capped at 100) and the new stage label, if it changes (§1.9).
pub fn progress_after(progress: i64, delta: i64) -> (i64, Option<&'static str>) {
    let progress = progress.saturating_add(delta).min(100);
    (progress, stage(progress))
}

/// A new story from the scene's segments without the LLM (§3.2 fast initialisation, every node
/// narrated by synthesis and left pending analysis). `None` when no segment has text.
pub fn initial_story(scene: &Scene, segments: &[Segment], now: &str) -> Option<StoryData> {
    let english = is_english(&format!("{} {}", scene.name, scene.description));
    let pick = |en: &str, zh: &str| if english { en } else { zh }.to_string();
    let used = &segments[..segments.len().min(MAX_SEGMENTS)];
    let mut nodes = Vec::new();
    for (i, segment) in used.iter().enumerate() {
        if segment.original_text.trim().is_empty() {
            continue;
        }
        // Ids and types follow the segment's position, as stored references expect.
        let id = format!("node_{}_{}", scene.id, i + 1);
        let metadata = json!({
            "segment_strategy": "quick_init",
            "analyzed": false,
            "pending_analysis": true,
        });
        nodes.push(StoryNode {
            scene_id: scene.id.clone(),
            content: narration(&segment.original_text, english),
            original_content: segment.original_text.clone(),
            node_type: node_type(i, used.len()).into(),
            choices: Some(fallback_choices(&id, english, now)),
            is_revealed: nodes.is_empty(),
            created_at: now.to_string(),
            source: "SYSTEM".into(),
            metadata: metadata.as_object().cloned(),
            id,
            ..StoryNode::default()
        });
    }
    if nodes.is_empty() {
        return None;
    }
    Some(StoryData {
        scene_id: scene.id.clone(),
        intro: if scene.description.is_empty() {
            pick("An urgent tale is unfolding.", "一段紧张剧情正在展开。")
        } else {
            scene.description.clone()
        },
        main_objective: if scene.summary.is_empty() {
            pick(
                "Guide your allies through the crisis.",
                "引导同伴走出当前危局。",
            )
        } else {
            scene.summary.clone()
        },
        current_state: pick("Initial", "初始"),
        progress: 0,
        nodes,
        tasks: vec![fallback_task(scene, english)],
        locations: fallback_locations(scene, english),
        last_updated: now.to_string(),
    })
}

fn to_object(value: &impl Serialize) -> Result<Map<String, Value>, ServerError> {
    match serde_json::to_value(value).map_err(ServerError::internal)? {
        Value::Object(map) => Ok(map),
        other => Err(ServerError::internal(format!(
            "story part is not an object: {other}"
        ))),
    }
}

fn encode(value: &impl Serialize) -> Result<String, ServerError> {
    serde_json::to_string(value).map_err(ServerError::internal)
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ServerError> {
    serde_json::from_str(text).map_err(ServerError::internal)
}

fn link(id: &str) -> Option<String> {
    (!id.is_empty()).then(|| id.to_string())
}

/// A stored story: what clients see (`data`, with reveals as persisted), the engine's own
/// bookkeeping, the version it was read at and the nodes the conversation log reveals.
#[derive(Debug, Clone, Default)]
pub struct Story {
    pub data: StoryData,
    pub engine: Engine,
    pub version: i64,
    pub revealed_by_log: std::collections::HashSet<String>,
}

/// Kept in the story header beside the client-visible fields, never shown to clients.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Engine {
    /// The node the player is at (set by choice, advance, rewind, exploration).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub current_node_id: String,
    /// The job enriching pending nodes, if one was started.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub enrich_task: String,
}

/// Header key of the engine's bookkeeping.
const ENGINE_KEY: &str = "_engine";

impl Story {
    /// The story as players see it: nodes revealed by the log shown as revealed (§1.10).
    pub fn merged(&self) -> StoryData {
        let mut data = self.data.clone();
        for node in &mut data.nodes {
            if self.revealed_by_log.contains(&node.id) {
                node.is_revealed = true;
            }
        }
        data
    }

    pub fn is_revealed(&self, node: &StoryNode) -> bool {
        node.is_revealed || self.revealed_by_log.contains(&node.id)
    }

    pub fn node(&self, id: &str) -> Option<&StoryNode> {
        self.data.nodes.iter().find(|n| n.id == id)
    }

    pub fn node_mut(&mut self, id: &str) -> Option<&mut StoryNode> {
        self.data.nodes.iter_mut().find(|n| n.id == id)
    }

    /// The node the player is at: the recorded one while it is revealed, else the last
    /// revealed node in story order, else the last node (§5.5 step 2).
    pub fn active_node(&self) -> Option<&StoryNode> {
        self.node(&self.engine.current_node_id)
            .filter(|n| self.is_revealed(n))
            .or_else(|| self.data.nodes.iter().rev().find(|n| self.is_revealed(n)))
            .or_else(|| self.data.nodes.last())
    }
}

/// Whether a conversation line belongs to the story and so reveals its node (§1.10): typed
/// `story_original` or `story_console`, or untyped from the `story` speaker.
pub fn is_story_line(line: &sceneintruder_export_document::Conversation) -> bool {
    match line
        .metadata
        .get("conversation_type")
        .and_then(Value::as_str)
    {
        Some(kind) => {
            let kind = kind.trim().to_ascii_lowercase();
            kind == "story_original" || kind == "story_console"
        }
        None => line.speaker_id == "story",
    }
}

/// The rows a story is stored as: the header without its parts, each node without its
/// choices, each task without its objectives; the parts are rows of their own, in order.
pub fn to_rows(story: &Story) -> Result<StoryRows, ServerError> {
    let engine = &story.engine;
    let story = &story.data;
    let mut header = to_object(story)?;
    for part in ["nodes", "tasks", "locations"] {
        header.remove(part);
    }
    if *engine != Engine::default() {
        header.insert(
            ENGINE_KEY.into(),
            serde_json::to_value(engine).map_err(ServerError::internal)?,
        );
    }
    let mut rows = StoryRows {
        document: encode(&header)?,
        ..StoryRows::default()
    };
    for node in &story.nodes {
        let mut document = to_object(node)?;
        // A node whose choices were never set keeps `"choices": null` so it reads back as
        // such; otherwise the choices live only in their rows.
        if node.choices.is_some() {
            document.remove("choices");
        }
        rows.nodes.push(Part {
            group: String::new(),
            id: node.id.clone(),
            link: link(&node.parent_id),
            document: encode(&document)?,
        });
        for choice in node.choices.iter().flatten() {
            rows.choices.push(Part {
                group: node.id.clone(),
                id: choice.id.clone(),
                link: link(&choice.next_node_id),
                document: encode(choice)?,
            });
        }
    }
    for task in &story.tasks {
        let mut document = to_object(task)?;
        document.remove("objectives");
        rows.tasks.push(Part {
            group: String::new(),
            id: task.id.clone(),
            link: None,
            document: encode(&document)?,
        });
        for objective in &task.objectives {
            rows.objectives.push(Part {
                group: task.id.clone(),
                id: objective.id.clone(),
                link: None,
                document: encode(objective)?,
            });
        }
    }
    for location in &story.locations {
        rows.locations.push(Part {
            group: String::new(),
            id: location.id.clone(),
            link: None,
            document: encode(location)?,
        });
    }
    Ok(rows)
}

/// The story stored as `rows` (the inverse of [`to_rows`]). Choices and objectives whose node
/// or task is gone are dropped: nothing could show them.
pub fn from_rows(rows: &StoryRows) -> Result<Story, ServerError> {
    let mut header: Map<String, Value> = decode(&rows.document)?;
    let engine = match header.remove(ENGINE_KEY) {
        Some(value) => serde_json::from_value(value).map_err(ServerError::internal)?,
        None => Engine::default(),
    };
    let mut story: StoryData =
        serde_json::from_value(Value::Object(header)).map_err(ServerError::internal)?;
    story.nodes = Vec::with_capacity(rows.nodes.len());
    for part in &rows.nodes {
        let document: Map<String, Value> = decode(&part.document)?;
        let never_set = document.contains_key("choices");
        let mut node: StoryNode =
            serde_json::from_value(Value::Object(document)).map_err(ServerError::internal)?;
        if !never_set {
            node.choices = Some(
                rows.choices
                    .iter()
                    .filter(|c| c.group == node.id)
                    .map(|c| decode(&c.document))
                    .collect::<Result<_, _>>()?,
            );
        }
        story.nodes.push(node);
    }
    story.tasks = Vec::with_capacity(rows.tasks.len());
    for part in &rows.tasks {
        let mut task: Task = decode(&part.document)?;
        task.objectives = rows
            .objectives
            .iter()
            .filter(|o| o.group == task.id)
            .map(|o| decode(&o.document))
            .collect::<Result<_, _>>()?;
        story.tasks.push(task);
    }
    story.locations = rows
        .locations
        .iter()
        .map(|l| decode(&l.document))
        .collect::<Result<_, _>>()?;
    Ok(Story {
        data: story,
        engine,
        ..Story::default()
    })
}

/// Longest `original_content` `GET …/story` shows, in characters (§5.1).
const SHOWN_ORIGINAL: usize = 600;

/// The stored story of scene `id`, if it has one (no initialisation).
pub async fn stored(
    db: &sceneintruder_store::Database,
    id: &str,
) -> Result<Option<Story>, ServerError> {
    match db.stories().get(id).await.map_err(ServerError::store)? {
        Some(found) => {
            let mut story = from_rows(&found.rows)?;
            story.version = found.version;
            story.revealed_by_log = found.revealed.into_iter().collect();
            Ok(Some(story))
        }
        None => Ok(None),
    }
}

/// The stored story of scene `id` as players see it: reveals recorded in the conversation log
/// merged in (§1.10). `None` when the scene has no story; never makes one.
pub async fn view(
    db: &sceneintruder_store::Database,
    id: &str,
) -> Result<Option<StoryData>, ServerError> {
    Ok(stored(db, id).await?.map(|s| s.merged()))
}

/// The story as `GET …/story` shows it: original passages trimmed and cut (§5.1).
pub fn shown(mut story: StoryData) -> StoryData {
    for node in &mut story.nodes {
        node.original_content = prompts::cut(node.original_content.trim(), SHOWN_ORIGINAL);
    }
    story
}

#[cfg(test)]
mod tests {
    use sceneintruder_export_document::Location;

    use super::*;

    const NOW: &str = "2025-06-20T10:30:00.5+08:00";

    fn scene(description: &str) -> Scene {
        Scene {
            id: "scene_1".into(),
            title: "Harbor".into(),
            description: description.into(),
            ..Scene::default()
        }
    }

    fn segments(n: usize) -> Vec<Segment> {
        (0..n)
            .map(|i| Segment {
                index: i,
                title: format!("Original Segment {}", i + 1),
                original_text: format!("Passage {i}. The fog came in."),
                ..Segment::default()
            })
            .collect()
    }

    #[test]
    fn node_types_follow_position() {
        assert_eq!(node_type(0, 1), "main");
        assert_eq!(node_type(1, 2), "main");
        let types: Vec<_> = (0..8).map(|i| node_type(i, 8)).collect();
        assert_eq!(
            types,
            [
                "main", "side", "side", "branch", "side", "side", "branch", "main"
            ]
        );
    }

    #[test]
    fn narration_frames_the_first_sentences() {
        assert_eq!(
            narration("  The fog came.\nQuill counted!  ", true),
            "Narrative focus:\nThe fog came. Quill counted!\n\nSuggested actions: steady the line; search for key allies; stage a bold diversion."
        );
        assert_eq!(
            narration("雾起了。码头空了！", false),
            "【剧情演绎】雾起了。 码头空了！\n\n【行动提示】稳住阵线、寻回关键同伴、策动佯攻突围"
        );
        assert_eq!(narration(" \n ", true), "(No narrative available)");
        assert_eq!(narration("", false), "（暂无剧情内容）");
    }

    #[test]
    fn narration_cuts_at_360_characters() {
        // Multi-byte characters: the cut must fall on character boundaries.
        let passage = format!("{}。{}。", "雾".repeat(200), "港".repeat(300));
        let text = narration(&passage, false);
        let summary = text
            .strip_prefix("【剧情演绎】")
            .and_then(|t| t.split("\n\n").next())
            .unwrap();
        assert_eq!(summary.chars().count(), 363);
        assert!(summary.ends_with("港..."));
        // Sentences stop being added once 360 characters are reached.
        let short = format!("{}。{}。", "雾".repeat(359), "港".repeat(10));
        let text = narration(&short, false);
        assert!(
            text.contains(&format!("{}。\n\n", "雾".repeat(359))),
            "{text}"
        );
        assert!(!text.contains('港'));
        let exact = "a".repeat(360);
        assert!(narration(&exact, true).contains(&format!("\n{exact}\n")));
    }

    #[test]
    fn fallback_texts_are_the_reference_strings() {
        let en = fallback_choices("node_1", true, NOW);
        assert_eq!(en[0].id, "choice_node_1_reflect");
        assert_eq!(en[0].text, "Reflect and assess");
        assert_eq!(en[0].choice_type, "main");
        assert_eq!(en[1].id, "choice_node_1_act");
        assert_eq!(
            en[1].next_node_hint,
            "Expect consequences shaped by this risk."
        );
        assert_eq!(en[1].created_at, NOW);
        let zh = fallback_choices("node_1", false, NOW);
        assert_eq!(zh[0].consequence, "梳理现状，寻找新的线索。");
        assert_eq!(zh[1].text, "立即行动");
        assert_eq!(zh[1].choice_type, "branch");

        let task = fallback_task(&scene("描述"), false);
        assert_eq!(task.id, "task_scene_1_primary");
        assert_eq!(task.title, "稳住危局");
        assert_eq!(task.description, "稳住撤退阵线并寻找关键同伴。");
        assert_eq!(task.objectives[1].id, "obj_scene_1_2");
        assert_eq!(task.objectives[1].description, "寻回失散同伴或保护百姓。");
        assert_eq!(
            (task.status.as_str(), task.priority.as_str()),
            ("active", "high")
        );
        let mut with_summary = scene("x");
        with_summary.summary = "Find the ledger.".into();
        let task = fallback_task(&with_summary, true);
        assert_eq!(task.description, "Find the ledger.");
        assert_eq!(task.reward, "Unlock new strategic opportunities.");

        let single = fallback_locations(&scene("Fog."), true);
        assert_eq!(single.len(), 1);
        assert_eq!(
            (single[0].id.as_str(), single[0].name.as_str()),
            ("loc_scene_1_1", "Harbor")
        );
        assert!(single[0].accessible);
        let mut places = scene("Fog.");
        places.locations = Some(vec![
            Location {
                name: "Pier".into(),
                description: "Wet".into(),
            },
            Location::default(),
        ]);
        let listed = fallback_locations(&places, false);
        assert_eq!(listed[1].name, "Location 2");
        assert!(listed[0].accessible && !listed[1].accessible);
        let mut untitled = scene("");
        untitled.title.clear();
        assert!(fallback_locations(&untitled, true).is_empty());
    }

    #[test]
    fn the_stage_rule() {
        assert_eq!(progress_after(0, 5), (5, None));
        assert_eq!(progress_after(20, 5), (25, Some("冲突")));
        assert_eq!(progress_after(45, 10), (55, Some("发展")));
        assert_eq!(progress_after(70, 5), (75, Some("高潮")));
        assert_eq!(progress_after(95, 10), (100, Some("结局")));
        assert_eq!(stage_from_scratch(10), "初始");
        assert_eq!(stage_from_scratch(30), "冲突");
    }

    #[test]
    fn a_new_story_without_the_llm() {
        assert!(initial_story(&scene("Fog."), &[], NOW).is_none());
        let story = initial_story(&scene("The fog rolls in."), &segments(14), NOW).unwrap();
        assert_eq!(story.nodes.len(), 12);
        assert_eq!(story.current_state, "Initial");
        assert_eq!(story.intro, "The fog rolls in.");
        assert_eq!(
            story.main_objective,
            "Guide your allies through the crisis."
        );
        let first = &story.nodes[0];
        assert_eq!(first.id, "node_scene_1_1");
        assert!(first.is_revealed && !story.nodes[1].is_revealed);
        assert_eq!(first.node_type, "main");
        assert_eq!(story.nodes[3].node_type, "branch");
        assert!(first.content.starts_with("Narrative focus:\nPassage 0."));
        assert_eq!(
            first.metadata.as_ref().map(|m| Value::Object(m.clone())),
            Some(
                json!({"segment_strategy": "quick_init", "analyzed": false, "pending_analysis": true})
            )
        );
        assert_eq!(
            first.choices.as_ref().unwrap()[0].id,
            "choice_node_scene_1_1_reflect"
        );
        assert_eq!(story.tasks[0].id, "task_scene_1_primary");
        assert_eq!(story.locations[0].name, "Harbor");

        let zh = initial_story(&scene(""), &segments(1), NOW).unwrap();
        assert_eq!(zh.current_state, "初始");
        assert_eq!(zh.intro, "一段紧张剧情正在展开。");
    }

    #[test]
    fn rows_round_trip() {
        let mut story = initial_story(&scene("The fog rolls in."), &segments(3), NOW).unwrap();
        story.nodes[1].parent_id = story.nodes[0].id.clone();
        story.nodes[1].choices.as_mut().unwrap()[0].next_node_id = "node_x".into();
        story.nodes[2].choices = None;
        story.nodes.push(StoryNode {
            id: "node_empty".into(),
            choices: Some(Vec::new()),
            ..StoryNode::default()
        });
        story.tasks[0].objectives[0].completed = true;

        let rows = to_rows(&Story {
            data: story.clone(),
            engine: Engine {
                current_node_id: "node_scene_1_1".into(),
                enrich_task: String::new(),
            },
            ..Story::default()
        })
        .unwrap();
        assert_eq!(rows.nodes.len(), 4);
        assert_eq!(rows.choices.len(), 4);
        assert_eq!(rows.nodes[1].link.as_deref(), Some("node_scene_1_1"));
        assert_eq!(rows.choices[2].group, "node_scene_1_2");
        assert_eq!(rows.choices[2].link.as_deref(), Some("node_x"));
        assert_eq!(rows.objectives[1].group, "task_scene_1_primary");
        let header: Value = serde_json::from_str(&rows.document).unwrap();
        assert!(header.get("nodes").is_none() && header.get("tasks").is_none());
        assert_eq!(header["_engine"]["current_node_id"], "node_scene_1_1");
        assert!(!rows.nodes[0].document.contains("choice_"));

        let back = from_rows(&rows).unwrap();
        assert_eq!(back.engine.current_node_id, "node_scene_1_1");
        let back = back.data;
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&story).unwrap()
        );
        assert_eq!(back.nodes[2].choices, None);
        assert_eq!(back.nodes[3].choices, Some(Vec::new()));
    }
}
