//! The story service: every story action of spec story-export §5 on stored stories.
//!
//! Concurrency (§7.2): one lock per scene on this server serialises the writes of a story;
//! every write also names the version it read, so writers on other servers never lose an
//! update (the loser re-reads and applies its change again). No lock is held while a model
//! answers: an action reads what it needs, unlocks, asks the model, then applies the answer
//! under the lock after checking again that it still fits (a choice still untaken, a node
//! still there). A choice being answered is marked pending in memory, so a second attempt
//! gets 409 at once instead of a second model call.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sceneintruder_export_document::{
    Item, Objective, StoryChoice, StoryData, StoryLocation, StoryNode, Task, ZERO_TIME,
};
use sceneintruder_llm::{LlmError, LlmService};
use sceneintruder_store::{Database, LogChange};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::prompts::{self, MAX_LIST};
use super::{Story, initial_story, progress_after, stage_from_scratch, to_rows};
use crate::auth::Identity;
use crate::domain::locks::KeyedLocks;
use crate::domain::scenes::{self, Conversation, Scene, is_english, new_id};
use crate::error::ServerError;
use crate::time::rfc3339_nano_local;

/// Attempts of a write that keeps losing to writers on other servers.
const WRITE_ATTEMPTS: usize = 8;
/// Deadlines of the model calls (§4).
pub const CHOICE_TIMEOUT: Duration = Duration::from_secs(90);
pub const ADVANCE_TIMEOUT: Duration = Duration::from_secs(90);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(45);
pub const SEGMENT_TIMEOUT: Duration = Duration::from_secs(60);
/// An exploration answers within this or fails with 408 (§5.13, enforced here).
pub const EXPLORE_TIMEOUT: Duration = Duration::from_secs(30);
/// Player activity lines given to the continuation prompt (§4.5, bounded).
const ACTIVITY_LINES: usize = 20;
/// Log lines read to build prompts.
const LOG_WINDOW: i64 = 400;
/// Most operations of one batch.
pub const MAX_BATCH: usize = 100;
/// Most related items per node (§3.7).
const MAX_RELATED: usize = 5;
/// Job kind of background enrichment.
pub const ENRICH_KIND: &str = "story.enrich";

/// What a client may say about how stories are written (§1.6).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Preferences {
    pub creativity_level: String,
    pub allow_plot_twists: Option<bool>,
    pub preferred_model: String,
}

impl Preferences {
    fn twists(&self) -> bool {
        !self.creativity_level.eq_ignore_ascii_case("STRICT")
            && self.allow_plot_twists.unwrap_or(true)
    }
}

/// Starts background enrichment; the job engine is built after the story service.
pub trait EnrichJobs: Send + Sync {
    fn submit(
        &self,
        owner: String,
        scene_id: String,
    ) -> futures::future::BoxFuture<'static, Option<String>>;
    fn is_live(&self, task: String) -> futures::future::BoxFuture<'static, bool>;
}

pub struct Stories {
    db: Database,
    llm: Arc<LlmService>,
    locks: KeyedLocks,
    pending: Mutex<HashSet<String>>,
    jobs: OnceLock<Arc<dyn EnrichJobs>>,
}

/// Removes a pending choice however the attempt ends.
struct PendingGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

fn now() -> String {
    rfc3339_nano_local()
}

fn failed(message: &str, details: impl std::fmt::Display) -> ServerError {
    ServerError::failed(message, details)
}

fn store(e: sceneintruder_store::StoreError) -> ServerError {
    ServerError::store(e)
}

fn not_ready(details: &str) -> ServerError {
    ServerError::LlmNotReady {
        details: details.to_string(),
    }
}

/// A story conversation line (§1.11).
fn story_line(
    scene_id: &str,
    speaker: &str,
    node_id: &str,
    content: &str,
    metadata: Value,
) -> Conversation {
    let mut metadata = match metadata {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if !node_id.is_empty() {
        metadata.insert("node_id".into(), json!(node_id));
    }
    Conversation {
        id: new_id("conv"),
        scene_id: scene_id.to_string(),
        speaker_id: speaker.to_string(),
        node_id: node_id.to_string(),
        content: content.to_string(),
        timestamp: now(),
        metadata,
        ..Conversation::default()
    }
}

fn lines(conversations: &[Conversation]) -> Result<Vec<sceneintruder_store::Line>, ServerError> {
    conversations.iter().map(scenes::line_of).collect()
}

/// `story_console` typed, or spoken by a `console_*` speaker (§1.11).
fn is_console(line: &Conversation) -> bool {
    line.metadata
        .get("conversation_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("story_console"))
        || line.speaker_id.starts_with("console_")
}

fn is_user_console(line: &Conversation) -> bool {
    (is_console(line) && line.metadata.get("channel").and_then(Value::as_str) == Some("user"))
        || line.speaker_id == "web_user"
        || line.speaker_id == "user"
}

/// Scene items whose names (or aliases) occur in `text` (§3.7), at most five, in item order.
pub fn related_items(text: &str, items: &[Item]) -> Vec<String> {
    let haystack = text.to_lowercase();
    let mut found = Vec::new();
    for item in items {
        let mut keywords = vec![item.name.clone()];
        if let Some(Value::Object(props)) = &item.properties {
            for key in ["aliases", "alias", "alt_names"] {
                match props.get(key) {
                    Some(Value::Array(list)) => {
                        keywords.extend(list.iter().filter_map(Value::as_str).map(str::to_string))
                    }
                    Some(Value::String(list)) => {
                        keywords.extend(list.split(',').map(|s| s.trim().to_string()))
                    }
                    _ => {}
                }
            }
        }
        if keywords
            .iter()
            .any(|k| k.len() >= 2 && haystack.contains(&k.to_lowercase()))
        {
            found.push(item.id.clone());
            if found.len() == MAX_RELATED {
                break;
            }
        }
    }
    found
}

/// Load-time enrichment (§3.7), in memory: related items and where each node is.
pub fn enrich_for_reading(data: &mut StoryData, items: &[Item]) {
    for node in &mut data.nodes {
        if node.related_item_ids.is_none() && !items.is_empty() {
            node.related_item_ids = Some(related_items(
                &format!("{} {}", node.content, node.original_content),
                items,
            ));
        }
    }
    let first = data
        .locations
        .iter()
        .find(|l| l.accessible)
        .or(data.locations.first())
        .map(|l| (l.id.clone(), l.name.clone()));
    let Some(mut carried) = first else {
        return;
    };
    let places: Vec<(String, String)> = data
        .locations
        .iter()
        .map(|l| (l.id.clone(), l.name.clone()))
        .collect();
    for node in &mut data.nodes {
        let meta = node.metadata.get_or_insert_with(Map::new);
        let recorded = meta
            .get("current_location_id")
            .and_then(Value::as_str)
            .and_then(|id| places.iter().find(|(pid, _)| pid == id))
            .cloned();
        let text = format!("{} {}", node.content, node.original_content).to_lowercase();
        let here = recorded
            .or_else(|| {
                places
                    .iter()
                    .find(|(_, name)| !name.is_empty() && text.contains(&name.to_lowercase()))
                    .cloned()
            })
            .unwrap_or_else(|| carried.clone());
        meta.insert("current_location_id".into(), json!(here.0));
        meta.entry("current_location_name")
            .or_insert_with(|| json!(here.1));
        carried = here;
    }
}

/// The progress a rewind recomputes from scratch (§5.7 step 3).
fn progress_from_scratch(data: &StoryData) -> i64 {
    let total = data.nodes.len() as i64;
    let revealed = data.nodes.iter().filter(|n| n.is_revealed).count() as i64;
    let node_pct = if total > 0 { revealed * 100 / total } else { 0 };
    let tasks = data.tasks.len() as i64;
    let done = data
        .tasks
        .iter()
        .filter(|t| t.is_revealed && t.completed)
        .count() as i64;
    let task_pct = if tasks > 0 { done * 100 / tasks } else { 0 };
    (node_pct * 3 + task_pct) / 4
}

/// The chain from `id` up to its root, `id` first (a cycle or a missing parent ends it).
pub fn path_to_root(data: &StoryData, id: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut at = id.to_string();
    while let Some(node) = data.nodes.iter().find(|n| n.id == at) {
        if path.contains(&node.id) {
            break;
        }
        path.push(node.id.clone());
        if node.parent_id.is_empty() {
            break;
        }
        at = node.parent_id.clone();
    }
    path
}

fn story_choice(node_id: &str, k: usize, reply: &prompts::ChoiceReply, at: &str) -> StoryChoice {
    StoryChoice {
        id: format!("choice_{node_id}_{k}"),
        text: prompts::text(&reply.text),
        consequence: prompts::text(&reply.consequence),
        next_node_hint: prompts::text(&reply.next_node_hint),
        created_at: at.to_string(),
        ..StoryChoice::default()
    }
}

/// Choices of a model answer: non-empty texts, bounded; ids count skipped ones (§1.8).
fn model_choices(node_id: &str, replies: &[prompts::ChoiceReply], kind: &str) -> Vec<StoryChoice> {
    let at = now();
    replies
        .iter()
        .take(MAX_LIST)
        .enumerate()
        .filter(|(_, c)| !c.text.trim().is_empty())
        .map(|(i, c)| {
            let mut choice = story_choice(node_id, i + 1, c, &at);
            choice.choice_type = kind.to_string();
            choice
        })
        .collect()
}

fn meta(node: &mut StoryNode) -> &mut Map<String, Value> {
    node.metadata.get_or_insert_with(Map::new)
}

/// The context lines of the enrichment prompt (§4.1).
fn story_context(scene: &Scene, data: &StoryData, characters: &[String], english: bool) -> String {
    let label = |en: &'static str, zh: &'static str| if english { en } else { zh };
    let places: Vec<&str> = data.locations.iter().map(|l| l.name.as_str()).collect();
    let rows = [
        (label("Title", "标题"), scene.title.clone()),
        (label("Description", "描述"), scene.description.clone()),
        (label("Era", "时代"), scene.era.clone()),
        (label("Locations", "地点"), places.join(", ")),
        (label("Characters", "角色"), characters.join(", ")),
        (label("Introduction", "简介"), data.intro.clone()),
        (label("Objective", "目标"), data.main_objective.clone()),
    ];
    rows.iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything an advance applies once the model answered.
pub struct AdvancePlan {
    pub scene_id: String,
    pub next: Option<(String, String, String)>,
    pub call: sceneintruder_llm::LlmCall,
}

/// Everything a command applies once the model answered.
pub struct CommandPlan {
    pub scene_id: String,
    pub speaker: String,
    pub request: CommandRequest,
    pub mode: String,
    pub active: Option<String>,
    pub context: String,
    pub characters: Value,
    pub call: sceneintruder_llm::LlmCall,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CommandRequest {
    pub input: String,
    pub mode: String,
    pub character_ids: Option<Vec<String>>,
    pub item_hints: Option<Vec<String>>,
    pub skill_hints: Option<Vec<String>>,
    pub location_ids: Option<Vec<String>>,
}

/// `StoryUpdate` (§1.6).
#[derive(Debug, Clone, Serialize)]
pub struct StoryUpdate {
    pub id: String,
    pub scene_id: String,
    pub title: String,
    pub content: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub source: String,
}

/// One operation of `POST …/story/batch` (§5.10, performed for real).
#[derive(Debug, Clone, Deserialize)]
pub struct BatchOperation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

impl Stories {
    pub fn new(db: Database, llm: Arc<LlmService>) -> Stories {
        Stories {
            db,
            llm,
            locks: KeyedLocks::default(),
            pending: Mutex::new(HashSet::new()),
            jobs: OnceLock::new(),
        }
    }

    pub fn set_jobs(&self, jobs: Arc<dyn EnrichJobs>) {
        let _ = self.jobs.set(jobs);
    }

    /// The stored story of `scene_id` (no creation).
    pub async fn load(&self, scene_id: &str) -> Result<Option<Story>, ServerError> {
        super::stored(&self.db, scene_id).await
    }

    /// Read, change and write the story of `scene_id` under its lock. `change` returns its
    /// value and the log change to write with it, or `None` to write nothing. A write that
    /// lost to another server runs `change` again on the newer story.
    async fn mutate<T>(
        &self,
        scene_id: &str,
        mut change: impl FnMut(&mut Story) -> Result<(T, Option<LogChange>), ServerError>,
    ) -> Result<(T, Story), ServerError> {
        let _guard = self.locks.lock(scene_id).await;
        for _ in 0..WRITE_ATTEMPTS {
            let mut story = self
                .load(scene_id)
                .await?
                .ok_or(ServerError::StoryNotFound)?;
            let before = story.data.clone();
            let (value, log) = change(&mut story)?;
            let Some(log) = log else {
                return Ok((value, story));
            };
            // Bookkeeping of the engine alone is not a change players see.
            if story.data != before {
                story.data.last_updated = now();
            }
            let rows = to_rows(&story)?;
            if let Some(version) = self
                .db
                .stories()
                .replace(scene_id, story.version, &rows, &log)
                .await
                .map_err(store)?
            {
                story.version = version;
                for line in &log.append {
                    if let (true, Some(node)) = (line.story, &line.node_id) {
                        story.revealed_by_log.insert(node.clone());
                    }
                }
                return Ok((value, story));
            }
        }
        Err(ServerError::internal(
            "the story kept changing while this action was applied; try again",
        ))
    }

    /// The story of the scene `identity` may see, made now without waiting for a model when
    /// it has none (§3.2); background enrichment is started for pending nodes.
    pub async fn get_or_create(
        &self,
        identity: &Identity,
        scene_id: &str,
    ) -> Result<Story, ServerError> {
        let row = scenes::load(&self.db, identity, scene_id).await?;
        if let Some(story) = self.load(scene_id).await? {
            self.keep_enriching(&row.owner, &story).await;
            return Ok(story);
        }
        let scene = scenes::scene_of(&row)?;
        let segments = scenes::segments(&self.db, &row).await?;
        let mut data =
            initial_story(&scene, &segments, &now()).ok_or(ServerError::StoryNotFound)?;
        // The interaction routes' progress from before stories existed carries over.
        if let Some(progress) = self
            .db
            .stories()
            .carried_progress(scene_id)
            .await
            .map_err(store)?
        {
            data.progress = progress.clamp(0, 100);
            if let Some(stage) = super::stage(data.progress) {
                data.current_state = stage.into();
            }
        }
        let story = Story {
            data,
            ..Story::default()
        };
        let created = self
            .db
            .stories()
            .create(scene_id, &to_rows(&story)?)
            .await
            .map_err(store)?;
        let story = self
            .load(scene_id)
            .await?
            .ok_or(ServerError::StoryNotFound)?;
        if created {
            self.keep_enriching(&row.owner, &story).await;
        }
        Ok(story)
    }

    /// Start enrichment when nodes wait for it and no job is on them (a job that failed
    /// because no model was ready is started again once one is).
    async fn keep_enriching(&self, owner: &str, story: &Story) {
        let pending = story.data.nodes.iter().any(is_pending);
        let Some(jobs) = self.jobs.get() else {
            return;
        };
        if !pending || !self.llm.readiness().ready {
            return;
        }
        if !story.engine.enrich_task.is_empty()
            && jobs.is_live(story.engine.enrich_task.clone()).await
        {
            return;
        }
        let scene_id = story.data.scene_id.clone();
        let Some(task) = jobs.submit(owner.to_string(), scene_id.clone()).await else {
            return;
        };
        let recorded = self
            .mutate(&scene_id, |s| {
                if !s.engine.enrich_task.is_empty()
                    && s.engine.enrich_task != story.engine.enrich_task
                {
                    // Another request started one first; this job finds nothing to do.
                    return Ok(((), None));
                }
                s.engine.enrich_task = task.clone();
                Ok(((), Some(LogChange::default())))
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(scene = %scene_id, error = %e.details(), "could not record the enrichment job");
        }
    }

    /// Move the story's progress by what an interaction was worth: `gain(progress)` gives the
    /// change to report and the points to add. The story is made when the scene has none; a
    /// scene that cannot have one reports from 0 and stores nothing.
    pub async fn interaction_progress(
        &self,
        identity: &Identity,
        scene_id: &str,
        gain: impl Fn(u32) -> (f64, u32),
    ) -> Result<(f64, u32), ServerError> {
        match self.get_or_create(identity, scene_id).await {
            Ok(_) => {}
            Err(ServerError::StoryNotFound) => {
                let (change, points) = gain(0);
                return Ok((change, points.min(100)));
            }
            Err(e) => return Err(e),
        }
        let (out, _) = self
            .mutate(scene_id, |s| {
                let current = s.data.progress.clamp(0, 100) as u32;
                let (change, points) = gain(current);
                let (progress, stage) = progress_after(i64::from(current), i64::from(points));
                s.data.progress = progress;
                if let Some(stage) = stage {
                    s.data.current_state = stage.into();
                }
                Ok(((change, progress as u32), Some(LogChange::default())))
            })
            .await?;
        Ok(out)
    }

    /// The story's progress (0 when the scene has no story).
    pub async fn progress(&self, scene_id: &str) -> u32 {
        match self.load(scene_id).await {
            Ok(Some(story)) => story.data.progress.clamp(0, 100) as u32,
            _ => 0,
        }
    }

    /// The story as clients read it: reveals merged and load-time enrichment applied.
    pub async fn reading(&self, story: &Story) -> Result<StoryData, ServerError> {
        let mut data = story.merged();
        let items = scenes::items(&self.db, &data.scene_id).await?;
        enrich_for_reading(&mut data, &items);
        Ok(data)
    }

    /// The first node still waiting for enrichment.
    pub async fn next_pending(
        &self,
        scene_id: &str,
    ) -> Result<Option<(String, usize, usize)>, ServerError> {
        let Some(story) = self.load(scene_id).await? else {
            return Ok(None);
        };
        let total = story.data.nodes.len();
        let done = story.data.nodes.iter().filter(|n| !is_pending(n)).count();
        Ok(story
            .data
            .nodes
            .iter()
            .find(|n| is_pending(n))
            .map(|n| (n.id.clone(), done, total)))
    }

    /// Enrich one pending node (§4.1, §3.3 fixed): the model writes its narration and
    /// choices, which are patched in under the lock only if the node is still pending and
    /// none of its choices was taken meanwhile. A failed or unusable answer leaves the
    /// synthesised narration and fallback choices, marked as not enhanced.
    pub async fn enrich(
        &self,
        scene_id: &str,
        node_id: &str,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(), LlmError> {
        let readiness = self.llm.readiness();
        if !readiness.ready {
            return Err(LlmError::NotReady(readiness.status));
        }
        let Ok(Some(story)) = self.load(scene_id).await else {
            return Ok(());
        };
        let Some(node) = story.node(node_id).cloned() else {
            return Ok(());
        };
        let row = self.db.scenes().get(scene_id).await.ok().flatten();
        let scene = row
            .as_ref()
            .and_then(|r| scenes::scene_of(r).ok())
            .unwrap_or_default();
        let characters: Vec<String> = scenes::characters(&self.db, scene_id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.name)
            .collect();
        let english = is_english(&format!("{} {}", scene.name, scene.description));
        let context = story_context(&scene, &story.data, &characters, english);
        let answer = if node.original_content.trim().is_empty() {
            None
        } else {
            let mut call =
                prompts::segment_call(&context, &node.original_content, &node.node_type, english);
            call.cancel = Some(cancel.clone());
            call.user = row.map(|r| r.owner).unwrap_or_default();
            match tokio::time::timeout(
                SEGMENT_TIMEOUT,
                self.llm.complete_json::<prompts::SegmentReply>(&call),
            )
            .await
            {
                Ok(Ok((reply, _))) => Some(reply),
                Ok(Err(LlmError::Cancelled)) => return Err(LlmError::Cancelled),
                Ok(Err(LlmError::NotReady(s))) => return Err(LlmError::NotReady(s)),
                Ok(Err(e)) => {
                    tracing::info!(scene = %scene_id, node = %node_id, error = %e, "segment enrichment failed; keeping the fallback");
                    None
                }
                Err(_) => None,
            }
        };
        if cancel.is_cancelled() {
            return Err(LlmError::Cancelled);
        }
        let applied = self
            .mutate(scene_id, |s| {
                let Some(node) = s.node_mut(node_id) else {
                    return Ok(((), None));
                };
                let taken = node.choices.iter().flatten().any(|c| c.selected);
                let replaced = node
                    .metadata
                    .as_ref()
                    .is_some_and(|m| m.contains_key("choices_source"));
                if !is_pending(node) {
                    return Ok(((), None));
                }
                let enhanced = match &answer {
                    Some(reply) if !reply.content.trim().is_empty() => {
                        node.content = prompts::text(&reply.content);
                        if !reply.node_type.trim().is_empty() {
                            node.node_type = prompts::text(&reply.node_type);
                        }
                        let choices = model_choices(&node.id, &reply.choices, "branch");
                        if !choices.is_empty() && !taken && !replaced {
                            node.choices = Some(choices);
                        }
                        true
                    }
                    _ => false,
                };
                let m = meta(node);
                m.remove("pending_analysis");
                m.insert("analyzed".into(), json!(true));
                m.insert("segment_enhanced".into(), json!(enhanced));
                Ok(((), Some(LogChange::default())))
            })
            .await;
        if let Err(e) = applied {
            tracing::warn!(scene = %scene_id, node = %node_id, error = %e.details(), "could not save an enriched node");
        }
        Ok(())
    }

    /// Take a choice (§5.3, fixed per §7.2): the new node is written by the model outside
    /// the lock and added only if the choice is still untaken. A choice that already led
    /// somewhere (before a rewind) leads there again without asking the model.
    pub async fn choose(
        &self,
        identity: &Identity,
        scene_id: &str,
        node_id: &str,
        choice_id: &str,
        preferences: &Preferences,
    ) -> Result<(StoryNode, Story), ServerError> {
        let row = scenes::load(&self.db, identity, scene_id).await?;
        let story = self
            .load(scene_id)
            .await?
            .ok_or_else(|| failed("执行故事选择失败", "故事数据不存在"))?;
        let invalid = || ServerError::bad_request("无效的节点或选择", "");
        let taken = || ServerError::Conflict {
            details: "选择已被选中".into(),
        };
        let node = story.node(node_id).ok_or_else(invalid)?.clone();
        let choice = node
            .choices
            .iter()
            .flatten()
            .find(|c| c.id == choice_id)
            .ok_or_else(invalid)?
            .clone();
        if choice.selected {
            return Err(taken());
        }
        if !choice.next_node_id.is_empty() && story.node(&choice.next_node_id).is_some() {
            return self.follow(scene_id, node_id, choice_id).await;
        }
        let readiness = self.llm.readiness();
        if !readiness.ready {
            return Err(not_ready(&readiness.status));
        }
        let key = format!("{scene_id}\u{1f}{node_id}\u{1f}{choice_id}");
        let _pending = {
            let mut set = self
                .pending
                .lock()
                .map_err(|_| ServerError::internal("pending set poisoned"))?;
            if !set.insert(key.clone()) {
                return Err(taken());
            }
            PendingGuard {
                set: &self.pending,
                key,
            }
        };
        let scene = scenes::scene_of(&row)?;
        let world = if scene.name.is_empty() {
            &scene.title
        } else {
            &scene.name
        };
        let english = is_english(&format!("{} {} {}", scene.name, node.content, choice.text));
        let call = prompts::next_call(&prompts::NextInput {
            world,
            node: &node.content,
            choice: &choice.text,
            consequence: &choice.consequence,
            hint: &choice.next_node_hint,
            progress: story.data.progress,
            stage: &story.data.current_state,
            creativity: &preferences.creativity_level,
            twists: preferences.twists(),
            english,
            model: self.model_for(identity, preferences),
            owner: &identity.user_id,
        });
        let wording = Wording {
            message: "执行故事选择失败",
            generate: "生成下一个节点失败",
            parse: "解析节点数据失败",
        };
        let reply: prompts::NextReply = self
            .ask_json(&call, CHOICE_TIMEOUT)
            .await
            .map_err(|e| wording.error(e))?;
        if reply.content.trim().is_empty() {
            return Err(failed(
                "执行故事选择失败",
                "解析节点数据失败: the model's answer has no \"content\"",
            ));
        }
        let segments = scenes::segments(&self.db, &row).await.unwrap_or_default();
        let items = scenes::items(&self.db, scene_id).await?;
        let fallback_text = [
            &row.original_text.clone().unwrap_or_default(),
            &scene.summary,
            &scene.description,
        ]
        .into_iter()
        .find(|t| !t.trim().is_empty())
        .cloned()
        .unwrap_or_default();
        let mut new_item: Option<Item> = None;
        let (next, story) = self
            .mutate(scene_id, |s| {
                let node = s.node(node_id).ok_or_else(invalid)?;
                let choice = node
                    .choices
                    .iter()
                    .flatten()
                    .find(|c| c.id == choice_id)
                    .ok_or_else(invalid)?;
                if choice.selected {
                    return Err(taken());
                }
                let hint = choice.next_node_hint.to_lowercase();
                let at = now();
                let mut new_id_text = new_id(&format!("node_{scene_id}"));
                while s.node(&new_id_text).is_some() {
                    new_id_text = new_id(&format!("node_{scene_id}"));
                }
                let new = new_id_text;
                let mut metadata = Map::new();
                metadata.insert("source_choice_id".into(), json!(choice_id));
                let triggers: Vec<Value> = reply
                    .character_interactions
                    .iter()
                    .take(MAX_LIST)
                    .enumerate()
                    .map(|(k, t)| {
                        json!({"id": format!("trigger_{new}_{}", k + 1),
                               "condition": prompts::text(&t.trigger_condition),
                               "character_ids": t.character_ids.iter().take(MAX_LIST).map(|c| prompts::text(c)).collect::<Vec<_>>(),
                               "topic": prompts::text(&t.topic),
                               "context_description": prompts::text(&t.context_description),
                               "triggered": false, "created_at": at})
                    })
                    .collect();
                if !triggers.is_empty() {
                    metadata.insert("interaction_triggers".into(), Value::Array(triggers));
                }
                if let Some(task) = reply.new_task.as_ref().filter(|t| !t.title.trim().is_empty()) {
                    let id = new_id(&format!("task_{scene_id}"));
                    s.data.tasks.push(Task {
                        objectives: task
                            .objectives
                            .iter()
                            .filter(|o| !o.trim().is_empty())
                            .take(MAX_LIST)
                            .enumerate()
                            .map(|(k, o)| Objective {
                                id: format!("obj_{id}_{}", k + 1),
                                description: prompts::text(o),
                                completed: false,
                            })
                            .collect(),
                        id,
                        scene_id: scene_id.to_string(),
                        title: prompts::text(&task.title),
                        description: prompts::text(&task.description),
                        reward: prompts::text(&task.reward),
                        is_revealed: true,
                        source: "GENERATED".into(),
                        completed_at: ZERO_TIME.into(),
                        ..Task::default()
                    });
                }
                let mut here: Option<usize> = None;
                if let Some(place) = reply.new_location.as_ref().filter(|l| !l.name.trim().is_empty()) {
                    s.data.locations.push(StoryLocation {
                        id: new_id(&format!("loc_{scene_id}")),
                        scene_id: scene_id.to_string(),
                        name: prompts::text(&place.name),
                        description: prompts::text(&place.description),
                        accessible: place.accessible,
                        requires_item: String::new(),
                        source: "GENERATED".into(),
                        explored_at: ZERO_TIME.into(),
                    });
                    here = Some(s.data.locations.len() - 1);
                }
                if here.is_none() && !hint.is_empty() {
                    here = s.data.locations.iter().position(|l| {
                        let name = l.name.to_lowercase();
                        !name.is_empty() && (name.contains(&hint) || hint.contains(&name))
                    });
                }
                if here.is_none() {
                    let recent = s.data.nodes.iter().rev().find_map(|n| {
                        n.metadata.as_ref()?.get("current_location_id")?.as_str().map(str::to_string)
                    });
                    here = recent
                        .and_then(|id| s.data.locations.iter().position(|l| l.id == id))
                        .or_else(|| s.data.locations.iter().position(|l| l.accessible))
                        .or((!s.data.locations.is_empty()).then_some(0));
                }
                if let Some(i) = here {
                    let place = &mut s.data.locations[i];
                    place.accessible = true;
                    metadata.insert("current_location_id".into(), json!(place.id));
                    metadata.insert("current_location_name".into(), json!(place.name));
                }
                let used = s
                    .data
                    .nodes
                    .iter()
                    .filter_map(|n| n.metadata.as_ref()?.get("original_segment_index")?.as_u64())
                    .max();
                let original = if segments.is_empty() {
                    fallback_text.clone()
                } else {
                    let index = used.map_or(0, |u| u as usize + 1).min(segments.len() - 1);
                    metadata.insert("original_segment_index".into(), json!(index));
                    metadata.insert("original_segment_title".into(), json!(segments[index].title));
                    segments[index].original_text.clone()
                };
                let content = prompts::text(&reply.content);
                let related = related_items(&content, &items);
                let mut choices: Vec<StoryChoice> = model_choices(&new, &reply.choices, "");
                if choices.is_empty() {
                    choices = super::fallback_choices(&new, is_english(&content), &at);
                }
                let child = StoryNode {
                    id: new.clone(),
                    scene_id: scene_id.to_string(),
                    parent_id: node_id.to_string(),
                    content,
                    original_content: original,
                    node_type: prompts::text(&reply.node_type),
                    choices: Some(choices),
                    is_revealed: true,
                    created_at: at.clone(),
                    source: "GENERATED".into(),
                    metadata: Some(metadata),
                    related_item_ids: (!related.is_empty()).then_some(related),
                    ..StoryNode::default()
                };
                if let Some(choice) = s
                    .node_mut(node_id)
                    .and_then(|n| n.choices.as_mut())
                    .and_then(|cs| cs.iter_mut().find(|c| c.id == choice_id))
                {
                    choice.selected = true;
                    choice.next_node_id = new.clone();
                }
                s.data.nodes.push(child.clone());
                s.engine.current_node_id = new.clone();
                let (progress, stage) = progress_after(s.data.progress, 5);
                s.data.progress = progress;
                if let Some(stage) = stage {
                    s.data.current_state = stage.into();
                }
                new_item = reply.new_item.as_ref().filter(|i| !i.name.trim().is_empty()).map(|i| Item {
                    id: new_id(&format!("item_{scene_id}")),
                    scene_id: scene_id.to_string(),
                    name: prompts::text(&i.name),
                    description: prompts::text(&i.description),
                    kind: prompts::text(&i.kind),
                    is_owned: true,
                    source: "STORY".into(),
                    found_at: at.clone(),
                    created_at: at.clone(),
                    last_updated: at.clone(),
                    ..Item::default()
                });
                Ok((child, Some(LogChange::default())))
            })
            .await?;
        if let Some(item) = new_item {
            scenes::put_item(&self.db, &item).await?;
        }
        Ok((next, story))
    }

    /// Take a choice that already has its node (after a rewind): reveal that node again.
    async fn follow(
        &self,
        scene_id: &str,
        node_id: &str,
        choice_id: &str,
    ) -> Result<(StoryNode, Story), ServerError> {
        self.mutate(scene_id, |s| {
            let invalid = || ServerError::bad_request("无效的节点或选择", "");
            let choice = s
                .node_mut(node_id)
                .and_then(|n| n.choices.as_mut())
                .and_then(|cs| cs.iter_mut().find(|c| c.id == choice_id))
                .ok_or_else(invalid)?;
            if choice.selected {
                return Err(ServerError::Conflict {
                    details: "选择已被选中".into(),
                });
            }
            choice.selected = true;
            let child_id = choice.next_node_id.clone();
            let child = s.node_mut(&child_id).ok_or_else(invalid)?;
            child.is_revealed = true;
            let child = child.clone();
            s.engine.current_node_id = child_id;
            let (progress, stage) = progress_after(s.data.progress, 5);
            s.data.progress = progress;
            if let Some(stage) = stage {
                s.data.current_state = stage.into();
            }
            Ok((child, Some(LogChange::default())))
        })
        .await
    }

    /// A JSON answer of the model within `timeout` (a late answer is `LlmError::Timeout`).
    async fn ask_json<T: serde::de::DeserializeOwned>(
        &self,
        call: &sceneintruder_llm::LlmCall,
        timeout: Duration,
    ) -> Result<T, LlmError> {
        tokio::time::timeout(timeout, self.llm.complete_json::<T>(call))
            .await
            .map_err(|_| LlmError::Timeout(timeout))?
            .map(|(reply, _)| reply)
    }

    /// A client-chosen model is used only for signed-in callers and only when the active
    /// provider lists it (§1.6 quirk fixed).
    fn model_for(&self, identity: &Identity, preferences: &Preferences) -> Option<String> {
        let wanted = preferences.preferred_model.trim();
        if wanted.is_empty() || !identity.authenticated {
            return None;
        }
        self.llm
            .models()
            .iter()
            .any(|m| m == wanted)
            .then(|| wanted.to_string())
    }

    /// Prepare an advance (§5.4): the node it reveals and the continuation call.
    pub async fn advance_plan(
        &self,
        identity: &Identity,
        scene_id: &str,
        preferences: &Preferences,
    ) -> Result<AdvancePlan, ServerError> {
        let story = self
            .get_or_create(identity, scene_id)
            .await
            .map_err(|e| match e {
                ServerError::SceneNotFound { .. } => e,
                other => ServerError::failed_from("初始化故事失败", other),
            })?;
        let readiness = self.llm.readiness();
        if !readiness.ready {
            return Err(not_ready("LLM服务未就绪，无法续写剧情"));
        }
        let next = story
            .data
            .nodes
            .iter()
            .find(|n| n.parent_id.is_empty() && !story.is_revealed(n))
            .cloned();
        // The story as the player knows it: the revealed path to where they are, plus the
        // node being revealed (never the nodes still hidden).
        let mut known: Vec<&StoryNode> = Vec::new();
        if let Some(active) = story.active_node() {
            let path = path_to_root(&story.data, &active.id);
            let root = path.last().cloned().unwrap_or_default();
            let root_at = story
                .data
                .nodes
                .iter()
                .position(|n| n.id == root)
                .unwrap_or(0);
            for (i, node) in story.data.nodes.iter().enumerate() {
                let on_main_line =
                    node.parent_id.is_empty() && i <= root_at && story.is_revealed(node);
                if on_main_line || path.contains(&node.id) {
                    known.push(node);
                }
            }
        }
        if let Some(next) = &next {
            known.push(next);
        }
        let story_text = known
            .iter()
            .filter(|n| !n.content.trim().is_empty())
            .map(|n| format!("[NODE {}]\n{}", n.id, n.content))
            .collect::<Vec<_>>()
            .join("\n\n");
        let (log, _) = scenes::conversations(&self.db, scene_id, LOG_WINDOW, 0).await?;
        let activity: Vec<String> = log
            .iter()
            .filter(|l| l.speaker_id != "story" && (is_console(l) || is_user_console(l)))
            .map(|l| format!("[{} {}]\n{}", l.speaker_id, l.node_id, l.content))
            .collect();
        let activity = activity[activity.len().saturating_sub(ACTIVITY_LINES)..].join("\n\n");
        let english = is_english(&format!(
            "{} {}",
            story.data.intro, story.data.main_objective
        ));
        let call = prompts::advance_call(
            &story_text,
            if activity.is_empty() { "-" } else { &activity },
            english,
            self.model_for(identity, preferences),
            &identity.user_id,
        );
        Ok(AdvancePlan {
            scene_id: scene_id.to_string(),
            next: next.map(|n| {
                let text = [&n.content, &n.original_content]
                    .into_iter()
                    .find(|t| !t.trim().is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("[node {}]", n.id));
                (n.id, n.node_type, text)
            }),
            call,
        })
    }

    /// Apply an advance once the model wrote `reply`: reveal the node and record both lines.
    pub async fn advance_apply(
        &self,
        plan: &AdvancePlan,
        reply: &str,
    ) -> Result<(StoryUpdate, Story), ServerError> {
        let scene_id = &plan.scene_id;
        let reply = reply.trim();
        let node_id = plan.next.as_ref().map(|n| n.0.clone()).unwrap_or_default();
        let ((), story) = self
            .mutate(scene_id, |s| {
                let mut added = Vec::new();
                if let Some((id, _, text)) = &plan.next {
                    let still_hidden = s.node(id).is_some_and(|n| !s.is_revealed(n));
                    if still_hidden {
                        added.push(story_line(
                            scene_id,
                            "story",
                            id,
                            text,
                            json!({"conversation_type": "story_original", "source": "advance_story"}),
                        ));
                    }
                    if s.node(id).is_some() {
                        s.engine.current_node_id = id.clone();
                    }
                }
                if !reply.is_empty() {
                    added.push(story_line(
                        scene_id,
                        "console_story",
                        &node_id,
                        reply,
                        json!({"conversation_type": "story_console", "channel": "ai",
                               "mode": "console_story", "source": "advance_story"}),
                    ));
                }
                Ok((
                    (),
                    Some(LogChange {
                        append: lines(&added)?,
                        ..LogChange::default()
                    }),
                ))
            })
            .await?;
        let update = StoryUpdate {
            id: new_id(&format!("update_{scene_id}")),
            scene_id: scene_id.clone(),
            title: node_id,
            content: reply.to_string(),
            kind: plan
                .next
                .as_ref()
                .map(|n| n.1.clone())
                .unwrap_or_else(|| "continuation".into()),
            created_at: now(),
            source: "GENERATED".into(),
        };
        Ok((update, story))
    }

    /// Prepare a command (§5.5): the active node, the prompt and the context block.
    pub async fn command_plan(
        &self,
        identity: &Identity,
        scene_id: &str,
        mut request: CommandRequest,
    ) -> Result<CommandPlan, ServerError> {
        request.input = request.input.trim().to_string();
        if request.input.is_empty() {
            return Err(ServerError::bad_request(
                "指令内容不能为空",
                "input is required",
            ));
        }
        crate::domain::limits::text(
            "input",
            &request.input,
            crate::domain::limits::MESSAGE_CHARS,
        )?;
        let mode = match request.mode.trim().to_lowercase() {
            m if m.is_empty() => "story".to_string(),
            m => m,
        };
        let row = scenes::load(&self.db, identity, scene_id).await?;
        let scene = scenes::scene_of(&row)?;
        let story = self.get_or_create(identity, scene_id).await.ok();
        let readiness = self.llm.readiness();
        if !readiness.ready {
            return Err(not_ready(&readiness.status));
        }
        let active = story.as_ref().and_then(|s| s.active_node()).cloned();
        let (log, _) = scenes::conversations(&self.db, scene_id, LOG_WINDOW, 0).await?;
        let console: Vec<&Conversation> = log.iter().filter(|l| is_console(l)).collect();
        let everyone = scenes::characters(&self.db, scene_id).await?;
        let chosen: Vec<_> = request
            .character_ids
            .iter()
            .flatten()
            .take(MAX_LIST)
            .filter_map(|id| everyone.iter().find(|c| &c.id == id))
            .collect();
        let characters = match &request.character_ids {
            None => Value::Null,
            Some(_) => json!(chosen
                .iter()
                .map(|c| json!({"id": c.id, "name": c.name, "role": c.role, "mood": c.personality}))
                .collect::<Vec<_>>()),
        };
        // The reply keeps the language the player and the scene use (§4.0).
        let english = is_english(&format!(
            "{} {} {}",
            scene.title, scene.description, request.input
        ));
        let speaker = if identity.authenticated {
            identity.user_id.clone()
        } else {
            "web_user".to_string()
        };
        let (context, call) = if mode == "story" {
            let node = active.as_ref();
            let original = node
                .map(|n| {
                    if n.content.trim().is_empty() {
                        &n.original_content
                    } else {
                        &n.content
                    }
                })
                .filter(|t| !t.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| "（暂无原文内容）".into());
            let mine: Vec<&&Conversation> = console
                .iter()
                .filter(|l| node.is_some_and(|n| l.node_id == n.id))
                .collect();
            let recent = &mine[mine.len().saturating_sub(3)..];
            let processing = if recent.is_empty() {
                "（暂无旁白加工）".to_string()
            } else {
                recent
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("[{}] {}", i + 1, l.content))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let title = if scene.title.is_empty() {
                "互动故事"
            } else {
                &scene.title
            };
            let call = prompts::command_story_call(
                title,
                &original,
                &processing,
                &request.input,
                english,
                &identity.user_id,
            );
            (processing, call)
        } else {
            let mut block = Vec::new();
            let mut add = |label: &str, value: String| {
                if !value.trim().is_empty() {
                    block.push(format!("{label}：{value}"));
                }
            };
            add("场景", scene.title.clone());
            add("场景描述", scene.description.clone());
            if let Some(s) = &story {
                let latest = s.data.nodes.iter().rev().find(|n| s.is_revealed(n));
                add(
                    "最新剧情",
                    latest.map(|n| n.content.clone()).unwrap_or_default(),
                );
                let recent = &console[console.len().saturating_sub(6)..];
                add(
                    "近期旁白",
                    recent
                        .iter()
                        .map(|l| {
                            let at = chrono::DateTime::parse_from_rfc3339(&l.timestamp)
                                .map(|t| t.format("%H:%M").to_string())
                                .unwrap_or_default();
                            format!("[{at}] {}", l.content)
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                add(
                    "原文",
                    latest
                        .map(|n| {
                            if n.original_content.trim().is_empty() {
                                n.content.clone()
                            } else {
                                n.original_content.clone()
                            }
                        })
                        .unwrap_or_default(),
                );
                add(
                    "当前状态",
                    format!("{}（进度 {}%）", s.data.current_state, s.data.progress),
                );
                let open: Vec<String> = s
                    .data
                    .tasks
                    .iter()
                    .filter(|t| !t.completed)
                    .take(3)
                    .map(|t| {
                        let step = t
                            .objectives
                            .iter()
                            .find(|o| !o.completed)
                            .map(|o| o.description.clone())
                            .unwrap_or_else(|| t.description.clone());
                        format!("{}：{step}", t.title)
                    })
                    .collect();
                add("任务", open.join("；"));
                let places: Vec<String> = request
                    .location_ids
                    .iter()
                    .flatten()
                    .take(MAX_LIST)
                    .filter_map(|id| s.data.locations.iter().find(|l| &l.id == id))
                    .map(|l| {
                        format!(
                            "{}（{}）",
                            l.name,
                            if l.accessible {
                                "已解锁"
                            } else {
                                "未解锁"
                            }
                        )
                    })
                    .collect();
                add("地点", places.join("、"));
            }
            add(
                "角色",
                chosen
                    .iter()
                    .map(|c| format!("{}（{}）", c.name, c.role))
                    .collect::<Vec<_>>()
                    .join("、"),
            );
            add(
                "技能",
                request
                    .skill_hints
                    .iter()
                    .flatten()
                    .take(MAX_LIST)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("、"),
            );
            add(
                "物品",
                request
                    .item_hints
                    .iter()
                    .flatten()
                    .take(MAX_LIST)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("、"),
            );
            block.push("请据此沉浸式地推进剧情。".to_string());
            let context = block.join("\n");
            let who = match (mode.as_str(), chosen.first()) {
                ("character", Some(c)) => {
                    format!("{}（{}）：{}", c.name, c.personality, c.description)
                }
                ("character", None) => "the character the player addresses".to_string(),
                _ => chosen
                    .iter()
                    .map(|c| format!("{}（{}）", c.name, c.role))
                    .collect::<Vec<_>>()
                    .join("、"),
            };
            let call = prompts::command_mode_call(
                &mode,
                &who,
                &context,
                &request.input,
                english,
                &identity.user_id,
            );
            (context, call)
        };
        Ok(CommandPlan {
            scene_id: scene_id.to_string(),
            speaker,
            mode,
            active: active.map(|n| n.id),
            context,
            characters,
            request,
            call,
        })
    }

    /// Apply a command once the model answered (`Err` = the call failed, which is not an
    /// error of the route: the reply says so and the player's input is kept).
    pub async fn command_apply(
        &self,
        plan: &CommandPlan,
        answer: Result<String, String>,
    ) -> Result<Value, ServerError> {
        let input = &plan.request.input;
        let (mut reply, fallback) = match answer {
            Err(e) => (
                format!("[系统提示] LLM 暂不可用: {e}\n\n玩家指令：{input}"),
                true,
            ),
            Ok(text) if text.trim().is_empty() => (
                format!("[系统提示] LLM 返回空响应，已保留玩家指令：{input}"),
                true,
            ),
            Ok(text) => (text.trim().to_string(), false),
        };
        let mut suggestions: Vec<StoryChoice> = Vec::new();
        let parsed = (plan.mode == "story" && !fallback)
            .then(|| sceneintruder_llm::json::parse::<prompts::CommandReply>(&reply).ok())
            .flatten();
        if let Some(parsed) = parsed {
            if let Some(text) = [&parsed.narration, &parsed.content, &parsed.summary]
                .into_iter()
                .find(|t| !t.trim().is_empty())
            {
                reply = prompts::text(text);
            }
            let candidates = if parsed.choices.is_empty() {
                &parsed.recommendations
            } else {
                &parsed.choices
            };
            if let Some(node) = &plan.active {
                suggestions = command_choices(node, candidates, input);
            }
        }
        let mut metadata_user = json!({"conversation_type": "story_console", "mode": plan.mode, "channel": "user",
                                       "skill_hints": plan.request.skill_hints, "item_hints": plan.request.item_hints});
        let node_id = plan.active.clone().unwrap_or_default();
        if node_id.is_empty()
            && let Value::Object(m) = &mut metadata_user
        {
            m.remove("node_id");
        }
        let ai_speaker = match (plan.mode.as_str(), plan.request.character_ids.as_deref()) {
            ("character", Some([one])) => one.clone(),
            _ => format!("console_{}", plan.mode),
        };
        let added = vec![
            story_line(
                &plan.scene_id,
                &plan.speaker,
                &node_id,
                input,
                metadata_user,
            ),
            story_line(
                &plan.scene_id,
                &ai_speaker,
                &node_id,
                &reply,
                json!({"conversation_type": "story_console", "mode": plan.mode, "channel": "ai"}),
            ),
        ];
        let at = now();
        // With a story, the lines are written with its change; without one, on their own.
        let written = self
            .mutate(&plan.scene_id, |s| {
                let mut done = false;
                if !suggestions.is_empty()
                    && let Some(node) = s.node_mut(&node_id)
                {
                    // Taken choices stay: they record a branch already followed (§5.5 fix).
                    let mut kept: Vec<StoryChoice> = node
                        .choices
                        .iter()
                        .flatten()
                        .filter(|c| c.selected)
                        .cloned()
                        .collect();
                    kept.extend(suggestions.iter().cloned());
                    node.choices = Some(kept);
                    let m = meta(node);
                    m.insert("choices_updated_at".into(), json!(at));
                    m.insert("choices_source".into(), json!("story_command"));
                    done = true;
                }
                Ok((
                    done,
                    Some(LogChange {
                        append: lines(&added)?,
                        ..LogChange::default()
                    }),
                ))
            })
            .await;
        let replaced = match written {
            Ok((done, _)) => done,
            Err(ServerError::StoryNotFound) => {
                let _guard = self.locks.lock(&plan.scene_id).await;
                scenes::append(&self.db, &added).await?;
                false
            }
            Err(e) => return Err(e),
        };
        let mut data = json!({
            "reply": reply,
            "mode": plan.mode,
            "context": plan.context,
            "characters": plan.characters,
            "skill_hints": plan.request.skill_hints,
            "item_hints": plan.request.item_hints,
            "timestamp": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            "fallback_used": fallback,
        });
        if replaced {
            data["choice_suggestions"] = json!(suggestions
                .iter()
                .map(|c| {
                    let mut out = json!({"id": c.id, "text": c.text, "consequence": c.consequence,
                                         "next_hint": c.next_node_hint, "impact": c.impact,
                                         "type": c.choice_type, "order": c.order});
                    if let Some(text) = c.metadata.as_ref().and_then(|m| m.get("impact_text")) {
                        out["impact_text"] = text.clone();
                    }
                    out
                })
                .collect::<Vec<_>>());
            data["choice_node_id"] = json!(node_id);
        }
        Ok(data)
    }

    /// Publish a node's text to the interaction screen (§5.6): a story line that reveals it.
    pub async fn insert(
        &self,
        identity: &Identity,
        scene_id: &str,
        node_id: &str,
        content: Option<String>,
    ) -> Result<(StoryNode, String), ServerError> {
        scenes::load(&self.db, identity, scene_id).await?;
        let story = self
            .load(scene_id)
            .await?
            .ok_or_else(|| ServerError::StoryNodeNotFound {
                details: "加载故事数据失败: 故事数据不存在".into(),
            })?;
        let node = story
            .node(node_id)
            .cloned()
            .ok_or_else(|| ServerError::StoryNodeNotFound {
                details: format!("未找到指定的故事节点: {node_id}"),
            })?;
        if let Some(content) = &content {
            crate::domain::limits::text("content", content, crate::domain::limits::FIELD_CHARS)?;
        }
        let text = content
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| node.content.trim().to_string());
        if text.is_empty() {
            return Err(ServerError::bad_request(
                "节点内容为空",
                "目标节点缺少可用的 content 文本",
            ));
        }
        let line = story_line(
            scene_id,
            "story",
            node_id,
            &text,
            json!({"conversation_type": "story_console", "mode": "story", "source": "sidebar_insert"}),
        );
        self.mutate(scene_id, |s| {
            if s.node(node_id).is_none() {
                return Err(ServerError::StoryNodeNotFound {
                    details: format!("未找到指定的故事节点: {node_id}"),
                });
            }
            Ok((
                (),
                Some(LogChange {
                    append: lines(std::slice::from_ref(&line))?,
                    ..LogChange::default()
                }),
            ))
        })
        .await?;
        Ok((node, text))
    }

    /// Rewind to `target` by path (§5.7, fixed): the main line up to the target's root and
    /// the path down to the target stay revealed, everything else is hidden; the target's
    /// choices can be taken again (each still leads to the node it made). Story lines of
    /// hidden nodes are removed; character chats are never touched.
    pub async fn rewind(
        &self,
        identity: &Identity,
        scene_id: &str,
        target: &str,
        restart: bool,
    ) -> Result<(StoryNode, Vec<String>, Story), ServerError> {
        scenes::load(&self.db, identity, scene_id).await?;
        let ((before, removed), story) = self
            .mutate(scene_id, |s| {
                let target =
                    if restart {
                        s.data.nodes.first().map(|n| n.id.clone()).ok_or_else(|| {
                            failed("故事数据为空，无法回溯", "故事数据为空，无法回溯")
                        })?
                    } else {
                        target.to_string()
                    };
                let before = s
                    .node(&target)
                    .cloned()
                    .ok_or_else(|| failed("回溯故事失败", "节点不存在或不可回溯"))?;
                let path = path_to_root(&s.data, &target);
                let root = path.last().cloned().unwrap_or_default();
                let root_at = s.data.nodes.iter().position(|n| n.id == root).unwrap_or(0);
                let mut removed = Vec::new();
                for (i, node) in s.data.nodes.iter_mut().enumerate() {
                    let keep = if restart {
                        i == 0
                    } else {
                        path.contains(&node.id)
                            || (node.parent_id.is_empty()
                                && i <= root_at
                                && node.source != "EXPLORATION")
                    };
                    if keep {
                        node.is_revealed = true;
                    } else {
                        if node.is_revealed || s.revealed_by_log.contains(&node.id) {
                            removed.push(node.id.clone());
                        }
                        node.is_revealed = false;
                        for c in node.choices.iter_mut().flatten() {
                            c.selected = false;
                        }
                    }
                    if node.id == target {
                        for c in node.choices.iter_mut().flatten() {
                            c.selected = false;
                        }
                    }
                }
                let progress = progress_from_scratch(&s.data);
                s.data.progress = progress;
                s.data.current_state = stage_from_scratch(progress).into();
                s.engine.current_node_id = target.clone();
                let mut log = LogChange {
                    forget_nodes: removed.clone(),
                    forget_unlinked_after: Some(target.clone()),
                    ..LogChange::default()
                };
                if restart {
                    log = LogChange {
                        forget_all: true,
                        ..LogChange::default()
                    };
                    let text = [&before.content, &before.original_content]
                        .into_iter()
                        .find(|t| !t.trim().is_empty())
                        .cloned();
                    if let Some(text) = text {
                        log.append = lines(&[story_line(
                            scene_id,
                            "story",
                            &target,
                            &text,
                            json!({"conversation_type": "story_original", "source": "new_start"}),
                        )])?;
                    }
                }
                Ok(((before, removed), Some(log)))
            })
            .await
            .map_err(|e| match e {
                ServerError::StoryNotFound => failed("回溯故事失败", "故事数据不存在"),
                other => other,
            })?;
        Ok((before, removed, story))
    }

    /// Complete an objective (§5.11, fixed: progress only when the task becomes complete).
    pub async fn complete_objective(
        &self,
        identity: &Identity,
        scene_id: &str,
        task_id: &str,
        objective_id: &str,
    ) -> Result<Story, ServerError> {
        scenes::load(&self.db, identity, scene_id).await?;
        self.mutate(scene_id, |s| {
            apply_objective(&mut s.data, task_id, objective_id).map_err(|d| {
                // Naming nothing that exists is the caller's mistake: 404, reference wording.
                ServerError::Missing {
                    message: "完成目标失败".into(),
                    details: d,
                }
            })?;
            Ok(((), Some(LogChange::default())))
        })
        .await
        .map(|((), s)| s)
        .map_err(|e| not_found_as(e, "完成目标失败"))
    }

    /// Unlock a location (§5.12): an unknown one is accepted without a write.
    pub async fn unlock(
        &self,
        identity: &Identity,
        scene_id: &str,
        location_id: &str,
    ) -> Result<Story, ServerError> {
        scenes::load(&self.db, identity, scene_id).await?;
        self.mutate(scene_id, |s| {
            let changed = apply_unlock(&mut s.data, location_id);
            Ok(((), changed.then(LogChange::default)))
        })
        .await
        .map(|((), s)| s)
        .map_err(|e| not_found_as(e, "解锁地点失败"))
    }

    /// Run batch operations atomically (§5.10, performed for real): all or nothing.
    pub async fn batch(
        &self,
        identity: &Identity,
        scene_id: &str,
        operations: &[BatchOperation],
    ) -> Result<usize, ServerError> {
        scenes::load(&self.db, identity, scene_id).await?;
        if operations.len() > MAX_BATCH {
            return Err(ServerError::bad_request(
                "请求参数错误",
                format!("at most {MAX_BATCH} operations"),
            ));
        }
        let mut items = Vec::new();
        self.mutate(scene_id, |s| {
            items.clear();
            for op in operations {
                let field = |name: &str| {
                    op.data
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                match op.kind.as_str() {
                    "complete_objective" => {
                        apply_objective(&mut s.data, &field("task_id"), &field("objective_id"))
                            .map_err(|d| failed("批量操作失败", d))?
                    }
                    "unlock_location" => {
                        if !apply_unlock(&mut s.data, &field("location_id")) {
                            return Err(failed("批量操作失败", "地点不存在"));
                        }
                    }
                    "add_item" => {
                        let name = prompts::text(&field("name"));
                        if name.is_empty() {
                            return Err(failed("批量操作失败", "add_item needs a name"));
                        }
                        let at = now();
                        items.push(Item {
                            id: new_id(&format!("item_{scene_id}")),
                            scene_id: scene_id.to_string(),
                            name,
                            description: prompts::text(&field("description")),
                            kind: prompts::text(&field("type")),
                            is_owned: true,
                            source: "STORY".into(),
                            found_at: at.clone(),
                            created_at: at.clone(),
                            last_updated: at,
                            ..Item::default()
                        });
                    }
                    other => return Err(failed("批量操作失败", format!("未知操作类型: {other}"))),
                }
            }
            Ok(((), (!operations.is_empty()).then(LogChange::default)))
        })
        .await
        .map_err(|e| not_found_as(e, "批量操作失败"))?;
        for item in &items {
            scenes::put_item(&self.db, item).await?;
        }
        Ok(operations.len())
    }

    /// Explore an unlocked location (§5.13, fixed: deadline enforced, readiness checked,
    /// `explored_at` set, the event node added under the lock).
    pub async fn explore(
        &self,
        identity: &Identity,
        scene_id: &str,
        location_id: &str,
        preferences: &Preferences,
    ) -> Result<Value, ServerError> {
        let row = scenes::load(&self.db, identity, scene_id).await?;
        let story = self
            .load(scene_id)
            .await?
            .ok_or_else(|| failed("探索地点失败", "故事数据不存在"))?;
        let place = story
            .data
            .locations
            .iter()
            .find(|l| l.id == location_id)
            .cloned()
            .ok_or_else(|| ServerError::Missing {
                message: "探索地点失败".into(),
                details: "地点不存在".into(),
            })?;
        if !place.accessible {
            return Err(failed("探索地点失败", "此地点尚未解锁"));
        }
        let readiness = self.llm.readiness();
        if !readiness.ready {
            return Err(not_ready(&readiness.status));
        }
        let scene = scenes::scene_of(&row)?;
        let world = if scene.name.is_empty() {
            &scene.title
        } else {
            &scene.name
        };
        let call = prompts::explore_call(&prompts::ExploreInput {
            world,
            scene_description: &scene.description,
            location: &place.name,
            location_description: &place.description,
            creativity: if preferences.creativity_level.is_empty() {
                "BALANCED"
            } else {
                &preferences.creativity_level
            },
            twists: preferences.twists(),
            english: is_english(&format!(
                "{} {} {}",
                scene.name, place.name, place.description
            )),
            model: self.model_for(identity, preferences),
            owner: &identity.user_id,
        });
        let wording = Wording {
            message: "探索地点失败",
            generate: "生成探索结果失败",
            parse: "解析探索数据失败",
        };
        let reply: prompts::ExploreReply =
            self.ask_json(&call, EXPLORE_TIMEOUT)
                .await
                .map_err(|e| match e {
                    LlmError::Timeout(_) => ServerError::RequestTimeout {
                        message: "探索操作超时".into(),
                        details: "请稍后重试".into(),
                    },
                    other => wording.error(other),
                })?;
        if reply.description.trim().is_empty() {
            return Err(failed(
                "探索地点失败",
                "解析探索数据失败: the model's answer has no \"description\"",
            ));
        }
        let at = now();
        let item = reply
            .found_item
            .as_ref()
            .filter(|i| !i.name.trim().is_empty())
            .map(|i| Item {
                id: new_id(&format!("item_{scene_id}")),
                scene_id: scene_id.to_string(),
                name: prompts::text(&i.name),
                description: prompts::text(&i.description),
                kind: prompts::text(&i.kind),
                is_owned: true,
                source: "EXPLORATION".into(),
                found_at: at.clone(),
                ..Item::default()
            });
        let event = reply
            .story_event
            .as_ref()
            .filter(|e| !e.content.trim().is_empty());
        let (node, _) = self
            .mutate(scene_id, |s| {
                let node = event.map(|e| {
                    let mut id = new_id(&format!("node_{scene_id}"));
                    while s.node(&id).is_some() {
                        id = new_id(&format!("node_{scene_id}"));
                    }
                    let choices: Vec<StoryChoice> = e
                        .choices
                        .iter()
                        .take(MAX_LIST)
                        .enumerate()
                        .filter(|(_, c)| !c.text.trim().is_empty())
                        .map(|(k, c)| story_choice(&id, k + 1, c, &at))
                        .collect();
                    StoryNode {
                        scene_id: scene_id.to_string(),
                        content: prompts::text(&e.content),
                        node_type: prompts::text(&e.node_type),
                        choices: Some(choices),
                        is_revealed: true,
                        created_at: at.clone(),
                        source: "EXPLORATION".into(),
                        id,
                        ..StoryNode::default()
                    }
                });
                if let Some(place) = s.data.locations.iter_mut().find(|l| l.id == location_id) {
                    place.explored_at = at.clone();
                }
                if let Some(node) = &node {
                    s.data.nodes.push(node.clone());
                    s.engine.current_node_id = node.id.clone();
                }
                Ok((node, Some(LogChange::default())))
            })
            .await?;
        if let Some(item) = &item {
            scenes::put_item(&self.db, item).await?;
        }
        let mut out = json!({"location_id": location_id, "description": prompts::text(&reply.description),
                             "explored_time": now()});
        if let Some(item) = item {
            out["found_item"] = serde_json::to_value(item).map_err(ServerError::internal)?;
        }
        if let Some(node) = node {
            out["story_node"] = serde_json::to_value(node).map_err(ServerError::internal)?;
        }
        if !reply.new_clue.trim().is_empty() {
            out["new_clue"] = json!(prompts::text(&reply.new_clue));
        }
        Ok(out)
    }
}

/// How a route words a failed model call (§4.3, §4.4): its message, and the prefixes of a
/// call that failed and of an answer that could not be read.
struct Wording {
    message: &'static str,
    generate: &'static str,
    parse: &'static str,
}

impl Wording {
    fn error(&self, e: LlmError) -> ServerError {
        match e {
            LlmError::NotReady(status) => not_ready(&status),
            e @ LlmError::Parse { .. } => failed(self.message, format!("{}: {e}", self.parse)),
            e => failed(self.message, format!("{}: {e}", self.generate)),
        }
    }
}

/// A missing story reads as the route's failure with the reference's details.
fn not_found_as(e: ServerError, message: &str) -> ServerError {
    match e {
        ServerError::StoryNotFound => failed(message, "故事数据不存在"),
        other => other,
    }
}

fn is_pending(node: &StoryNode) -> bool {
    node.metadata
        .as_ref()
        .and_then(|m| m.get("pending_analysis"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn apply_objective(data: &mut StoryData, task_id: &str, objective_id: &str) -> Result<(), String> {
    let task = data
        .tasks
        .iter_mut()
        .find(|t| t.id == task_id)
        .ok_or("无效的任务或目标")?;
    let objective = task
        .objectives
        .iter_mut()
        .find(|o| o.id == objective_id)
        .ok_or("无效的任务或目标")?;
    objective.completed = true;
    if !task.completed && task.objectives.iter().all(|o| o.completed) {
        task.completed = true;
        task.status = "completed".into();
        task.completed_at = now();
        let (progress, stage) = progress_after(data.progress, 10);
        data.progress = progress;
        if let Some(stage) = stage {
            data.current_state = stage.into();
        }
    }
    Ok(())
}

fn apply_unlock(data: &mut StoryData, location_id: &str) -> bool {
    match data.locations.iter_mut().find(|l| l.id == location_id) {
        Some(place) => {
            place.accessible = true;
            true
        }
        None => false,
    }
}

/// Suggestions of a story-mode command as choices (§5.5 step 6), at most four.
fn command_choices(
    node_id: &str,
    candidates: &[prompts::CommandChoice],
    input: &str,
) -> Vec<StoryChoice> {
    let unix = chrono::Utc::now().timestamp();
    let at = now();
    let count = candidates.len();
    candidates
        .iter()
        .take(16)
        .enumerate()
        .filter(|(_, c)| !c.text.trim().is_empty())
        .take(4)
        .map(|(index, c)| {
            let fallback = (count - index) as f64;
            let mut metadata = Map::new();
            metadata.insert("source".into(), json!("story_command"));
            metadata.insert("llm_rank".into(), json!(index));
            metadata.insert("hint_raw".into(), json!(prompts::text(&c.next_hint)));
            metadata.insert("user_command".into(), json!(input));
            let impact = match &c.impact {
                Value::Number(n) => n
                    .as_f64()
                    .filter(|v| *v != 0.0 && v.is_finite())
                    .unwrap_or(fallback),
                Value::String(s) if !s.trim().is_empty() => {
                    match s.trim().trim_end_matches('%').trim().parse::<f64>() {
                        Ok(v) if v.is_finite() => v,
                        _ => {
                            metadata.insert("impact_text".into(), json!(prompts::text(s)));
                            fallback
                        }
                    }
                }
                _ => fallback,
            };
            let description = prompts::text(&c.description);
            if !description.is_empty() {
                metadata.insert("description".into(), json!(description));
            }
            let hint = [&c.next_hint, &c.hint, &c.consequence]
                .into_iter()
                .find(|t| !t.trim().is_empty())
                .map(|t| prompts::text(t))
                .unwrap_or_default();
            let id = if c.id.trim().is_empty() || !scenes::valid_id(c.id.trim()) {
                format!("choice_{node_id}_cmd_{unix}_{}", index + 1)
            } else {
                c.id.trim().to_string()
            };
            StoryChoice {
                id,
                text: prompts::text(&c.text),
                consequence: prompts::text(&c.consequence),
                next_node_hint: hint,
                created_at: at.clone(),
                description,
                choice_type: if c.kind.trim().is_empty() {
                    "branch".into()
                } else {
                    prompts::text(&c.kind)
                },
                impact,
                order: index as i64,
                metadata: Some(metadata),
                ..StoryChoice::default()
            }
        })
        .collect()
}

/// The branch view (§5.8): revealed main-line nodes as roots, every node a choice made
/// nested under its parent (branches abandoned by a rewind included, inactive), and the
/// path to where the player is.
pub fn branches(story: &Story) -> Value {
    let data = story.merged();
    let mut children: HashMap<&str, Vec<&StoryNode>> = HashMap::new();
    for node in &data.nodes {
        if !node.parent_id.is_empty() {
            children
                .entry(node.parent_id.as_str())
                .or_default()
                .push(node);
        }
    }
    let current = story
        .active_node()
        .map(|n| n.id.clone())
        .unwrap_or_default();
    let path: HashSet<String> = path_to_root(&data, &current).into_iter().collect();
    fn tree(
        node: &StoryNode,
        children: &HashMap<&str, Vec<&StoryNode>>,
        path: &HashSet<String>,
        depth: usize,
    ) -> Value {
        let choices: Vec<Value> = node
            .choices
            .iter()
            .flatten()
            .map(|c| {
                json!({"id": c.id, "text": c.text, "consequence": c.consequence,
                            "selected": c.selected, "next_node_id": c.next_node_id})
            })
            .collect();
        let mut out = json!({"id": node.id, "content": node.content, "type": node.node_type,
                             "choices": choices, "created_at": node.created_at,
                             "is_active": path.contains(&node.id)});
        // A tree can only be as deep as the story is long; this bounds a corrupt one.
        if depth < 512
            && let Some(kids) = children.get(node.id.as_str())
        {
            out["children"] = Value::Array(
                kids.iter()
                    .map(|k| tree(k, children, path, depth + 1))
                    .collect(),
            );
        }
        out
    }
    let roots: Vec<Value> = data
        .nodes
        .iter()
        .filter(|n| n.parent_id.is_empty() && n.is_revealed)
        .map(|n| tree(n, &children, &path, 0))
        .collect();
    let current_path: Map<String, Value> =
        path.iter().map(|id| (id.clone(), json!(true))).collect();
    json!({"scene_id": data.scene_id, "intro": data.intro, "main_objective": data.main_objective,
           "current_state": data.current_state, "progress": data.progress,
           "root_nodes": roots, "current_path": current_path})
}

/// The choices the player can take now (§5.9, with reveals merged): the untaken choices of
/// the active node, else of the newest revealed node that has some; `None` when none.
pub fn available_choices(story: &Story) -> Option<Vec<StoryChoice>> {
    let untaken = |n: &StoryNode| -> Vec<StoryChoice> {
        n.choices
            .iter()
            .flatten()
            .filter(|c| !c.selected)
            .cloned()
            .collect()
    };
    if let Some(active) = story.active_node().filter(|n| story.is_revealed(n)) {
        let open = untaken(active);
        if !open.is_empty() {
            return Some(open);
        }
    }
    let mut best: Option<&StoryNode> = None;
    for node in story.data.nodes.iter().filter(|n| story.is_revealed(n)) {
        if untaken(node).is_empty() {
            continue;
        }
        if best.is_none_or(|b| node.created_at > b.created_at) {
            best = Some(node);
        }
    }
    best.map(untaken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, parent: &str, revealed: bool) -> StoryNode {
        StoryNode {
            id: id.into(),
            parent_id: parent.into(),
            is_revealed: revealed,
            ..StoryNode::default()
        }
    }

    #[test]
    fn paths_stop_at_roots_and_cycles() {
        let data = StoryData {
            nodes: vec![
                node("a", "", true),
                node("b", "a", true),
                node("c", "b", true),
                node("x", "y", true),
                node("y", "x", true),
            ],
            ..StoryData::default()
        };
        assert_eq!(path_to_root(&data, "c"), ["c", "b", "a"]);
        assert_eq!(path_to_root(&data, "x"), ["x", "y"]);
        assert!(path_to_root(&data, "missing").is_empty());
    }

    #[test]
    fn rewind_progress_formula() {
        let mut data = StoryData {
            nodes: vec![
                node("a", "", true),
                node("b", "", false),
                node("c", "", false),
                node("d", "", false),
            ],
            ..StoryData::default()
        };
        assert_eq!(progress_from_scratch(&data), 18); // (25*3 + 0) / 4
        data.tasks.push(Task {
            is_revealed: true,
            completed: true,
            ..Task::default()
        });
        assert_eq!(progress_from_scratch(&data), 43); // (75 + 100) / 4
    }

    #[test]
    fn objectives_add_progress_once() {
        let mut data = StoryData::default();
        data.tasks.push(Task {
            id: "t".into(),
            objectives: vec![
                Objective {
                    id: "o1".into(),
                    ..Objective::default()
                },
                Objective {
                    id: "o2".into(),
                    ..Objective::default()
                },
            ],
            ..Task::default()
        });
        apply_objective(&mut data, "t", "o1").unwrap();
        assert_eq!(data.progress, 0);
        apply_objective(&mut data, "t", "o2").unwrap();
        assert_eq!(
            (data.progress, data.tasks[0].status.as_str()),
            (10, "completed")
        );
        apply_objective(&mut data, "t", "o2").unwrap();
        assert_eq!(data.progress, 10, "completing again adds nothing");
        assert_eq!(
            apply_objective(&mut data, "t", "nope"),
            Err("无效的任务或目标".into())
        );
    }

    #[test]
    fn command_suggestions_are_bounded_and_typed() {
        let candidates: Vec<prompts::CommandChoice> = serde_json::from_value(json!([
            {"text": "A", "impact": 0.8},
            {"text": "", "impact": 3},
            {"text": "B", "impact": "40%", "hint": "h"},
            {"text": "C", "impact": "high", "consequence": "c"},
            {"text": "D"}, {"text": "E"}, {"text": "F"}
        ]))
        .unwrap();
        let out = command_choices("n1", &candidates, "go");
        assert_eq!(out.len(), 4);
        assert_eq!(out[0].impact, 0.8);
        assert_eq!(
            (
                out[1].text.as_str(),
                out[1].impact,
                out[1].next_node_hint.as_str()
            ),
            ("B", 40.0, "h")
        );
        assert_eq!(out[2].next_node_hint, "c");
        assert_eq!(out[2].metadata.as_ref().unwrap()["impact_text"], "high");
        assert_eq!(out[2].impact, 4.0); // 7 candidates, index 3
        assert!(out[0].id.starts_with("choice_n1_cmd_") && out[0].id.ends_with("_1"));
        assert_eq!(out[3].order, 4);
    }

    #[test]
    fn items_and_places_found_in_text() {
        let items = vec![
            Item {
                id: "i1".into(),
                name: "Brass Key".into(),
                ..Item::default()
            },
            Item {
                id: "i2".into(),
                name: "x".into(),
                properties: Some(json!({"aliases": "ledger, book"})),
                ..Item::default()
            },
        ];
        assert_eq!(
            related_items("she found the brass key and the LEDGER", &items),
            ["i1", "i2"]
        );
        assert!(
            related_items("x marks", &items).is_empty(),
            "one-letter keywords are ignored"
        );
        let mut data = StoryData {
            nodes: vec![node("a", "", true), node("b", "", true)],
            locations: vec![
                StoryLocation {
                    id: "l1".into(),
                    name: "Pier".into(),
                    accessible: true,
                    ..StoryLocation::default()
                },
                StoryLocation {
                    id: "l2".into(),
                    name: "Lighthouse".into(),
                    ..StoryLocation::default()
                },
            ],
            ..StoryData::default()
        };
        data.nodes[1].content = "At the lighthouse".into();
        enrich_for_reading(&mut data, &items);
        let at = |i: usize| data.nodes[i].metadata.as_ref().unwrap()["current_location_id"].clone();
        assert_eq!((at(0), at(1)), (json!("l1"), json!("l2")));
    }
}
