//! Scenes: the documents clients see (scene, settings, characters, items, conversation
//! lines, original text segments), who may see them, and how they are stored.

use std::sync::atomic::{AtomicU64, Ordering};

use sceneintruder_store::{Database, Job, JobCompletion, NewScene, SceneRow};
use serde::{Deserialize, Serialize};

use crate::auth::Identity;
use crate::error::{Resource, ServerError};
use crate::time::rfc3339_nano_local;

/// Items the player holds (or found through play) are listed apart from the scene's.
pub fn inventory_only(item: &Item) -> bool {
    item.is_owned || item.source == "STORY" || item.source == "EXPLORATION"
}

pub use sceneintruder_export_document::{
    Character, Conversation, Item, Location, Scene, SceneSettings, ZERO_TIME,
};
/// Owner recorded in a scene document created by a guest.
pub const ANONYMOUS: &str = "anonymous";
/// Longest original segment, in characters.
const SEGMENT_LIMIT: usize = 900;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub index: usize,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub start_paragraph: usize,
    #[serde(default)]
    pub end_paragraph: usize,
    pub original_text: String,
}

/// A new id `<prefix>_<nanos>`: unique within this process even when called in a tight loop.
pub fn new_id(prefix: &str) -> String {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = chrono::Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or_default()
        .max(0) as u64;
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return format!("{prefix}_{next}"),
            Err(seen) => last = seen,
        }
    }
}

/// Ids from a URL or body: letters, digits, `_` and `-`, at most 128, not starting with a
/// separator. Anything else never reaches storage.
pub fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// English when ASCII letters make up more than half of letters, CJK ideographs and digits.
pub fn is_english(text: &str) -> bool {
    let (mut letters, mut others) = (0usize, 0usize);
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            letters += 1;
        } else if c.is_ascii_digit() || ('\u{4e00}'..='\u{9fff}').contains(&c) {
            others += 1;
        }
    }
    letters + others > 0 && letters * 2 > letters + others
}

/// `en` or `zh` by the language of `text`.
pub fn pick_locale<'a>(text: &str, en: &'a str, zh: &'a str) -> &'a str {
    if is_english(text) { en } else { zh }
}

/// Split a text into segments of at most 900 characters, on paragraph and sentence ends.
pub fn segment(text: &str, with_summaries: bool) -> Vec<Segment> {
    let normalised = text.replace("\r\n", "\n");
    let trimmed = normalised.trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    let mut paragraphs: Vec<&str> = trimmed
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if paragraphs.is_empty() {
        paragraphs.push(trimmed);
    }
    let mut chunks: Vec<String> = Vec::new();
    for paragraph in paragraphs {
        let chars: Vec<char> = paragraph.chars().collect();
        let mut start = 0;
        while start < chars.len() {
            let mut end = (start + SEGMENT_LIMIT).min(chars.len());
            if end < chars.len() {
                let mut cut = end;
                while cut > start + 200 && !"。！？.!?；;”\"".contains(chars[cut - 1]) {
                    cut -= 1;
                }
                if cut > start + 200 {
                    end = cut;
                }
            }
            chunks.push(chars[start..end].iter().collect());
            start = end;
        }
    }
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for chunk in chunks {
        let len = chunk.chars().count();
        if current_len > 0 && current_len + 2 + len > SEGMENT_LIMIT {
            segments.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if current_len > 0 {
            current.push_str("\n\n");
            current_len += 2;
        }
        current.push_str(&chunk);
        current_len += len;
        if current_len >= SEGMENT_LIMIT {
            segments.push(std::mem::take(&mut current));
            current_len = 0;
        }
    }
    if current_len > 0 {
        segments.push(current);
    }
    segments
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            let summary = if with_summaries {
                let t = text.trim();
                let mut s: String = t.chars().take(160).collect();
                if t.chars().count() > 160 {
                    s.push_str(pick_locale(t, "...", "……"));
                }
                s
            } else {
                String::new()
            };
            Segment {
                index,
                title: format!(
                    "{} {}",
                    pick_locale(&text, "Original Segment", "原文片段"),
                    index + 1
                ),
                summary,
                tags: None,
                start_paragraph: 0,
                end_paragraph: 0,
                original_text: text,
            }
        })
        .collect()
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Internal {
        details: format!("{what}: {e}"),
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, ServerError> {
    serde_json::from_str(text).map_err(|e| internal(what, e))
}

fn encode(value: &impl Serialize) -> Result<String, ServerError> {
    serde_json::to_string(value).map_err(ServerError::internal)
}

/// A scene ready to be stored with everything it starts with.
pub struct Draft {
    pub scene: Scene,
    pub settings: SceneSettings,
    pub owner: String,
    pub original_text: Option<String>,
    pub segments: Vec<Segment>,
    pub characters: Vec<Character>,
    pub items: Vec<Item>,
}

/// The rows of a new scene: the scene, `(id, document)` per character and `(id, document,
/// created_at)` per item.
type Rows = (SceneRow, Vec<(String, String)>, Vec<(String, String, i64)>);

fn rows(draft: &Draft) -> Result<Rows, ServerError> {
    let now = chrono::Utc::now().timestamp_millis();
    let row = SceneRow {
        id: draft.scene.id.clone(),
        owner: draft.owner.clone(),
        document: encode(&draft.scene)?,
        settings: encode(&draft.settings)?,
        original_text: draft.original_text.clone(),
        segments: if draft.segments.is_empty() {
            None
        } else {
            Some(encode(&draft.segments)?)
        },
        created_at: now,
    };
    let characters = draft
        .characters
        .iter()
        .map(|c| Ok((c.id.clone(), encode(c)?)))
        .collect::<Result<Vec<_>, ServerError>>()?;
    let items = draft
        .items
        .iter()
        .map(|i| Ok((i.id.clone(), encode(i)?, now)))
        .collect::<Result<Vec<_>, ServerError>>()?;
    Ok((row, characters, items))
}

/// Store a new scene, all or nothing.
pub async fn create(db: &Database, draft: &Draft) -> Result<(), ServerError> {
    let (row, characters, items) = rows(draft)?;
    db.scenes()
        .create(NewScene {
            row: &row,
            characters: &characters,
            items: &items,
        })
        .await
        .map_err(|e| ServerError::store_in("保存场景失败", e))
}

/// Store a new scene and complete the job run that made it, in one transaction. `None`
/// (and nothing stored) when that run is no longer running, e.g. it was cancelled.
pub async fn create_completing(
    db: &Database,
    draft: &Draft,
    job: JobCompletion<'_>,
) -> Result<Option<Job>, ServerError> {
    let (row, characters, items) = rows(draft)?;
    db.scenes()
        .create_completing(
            NewScene {
                row: &row,
                characters: &characters,
                items: &items,
            },
            job,
        )
        .await
        .map_err(|e| ServerError::store_in("保存场景失败", e))
}

/// The scene row `id`, if `identity` may see it (owner or admin). Unknown, malformed and
/// someone else's scenes all answer `SCENE_NOT_FOUND`, so ids cannot be probed.
pub async fn load(db: &Database, identity: &Identity, id: &str) -> Result<SceneRow, ServerError> {
    let missing = || ServerError::SceneNotFound { id: id.to_string() };
    if !valid_id(id) {
        return Err(missing());
    }
    let row = db
        .scenes()
        .get(id)
        .await
        .map_err(ServerError::store)?
        .ok_or_else(missing)?;
    if identity.may_manage(&row.owner) {
        Ok(row)
    } else {
        Err(missing())
    }
}

/// A finished response body and what it was built from (for the read cache).
pub struct Built {
    pub body: bytes::Bytes,
    /// The scene's owner (scene views).
    pub owner: Option<String>,
    /// The stored version(s) it reflects (see `ResponseCache`).
    pub stored: (i64, i64),
}

fn raw(doc: &str) -> Result<&serde_json::value::RawValue, ServerError> {
    serde_json::from_str(doc).map_err(|e| internal("stored document is not valid", e))
}

fn all(docs: &[String]) -> Result<Vec<&serde_json::value::RawValue>, ServerError> {
    docs.iter().map(|d| raw(d)).collect()
}

/// The scene view's `data` (spec/scenes.md: scene, context with every line, settings,
/// characters, items, original text and segments), serialised once: stored documents are
/// passed through as they are. `None` for an unknown or malformed id; the caller checks
/// the owner.
pub async fn detail(db: &Database, id: &str) -> Result<Option<Built>, ServerError> {
    use serde_json::value::RawValue;
    #[derive(Serialize)]
    struct Context<'a> {
        scene_id: &'a str,
        conversations: Vec<&'a RawValue>,
        last_updated: String,
    }
    #[derive(Serialize)]
    struct Detail<'a> {
        scene: &'a Scene,
        context: Context<'a>,
        settings: &'a RawValue,
        characters: Vec<&'a RawValue>,
        items: Vec<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        original_text: Option<&'a str>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        original_segments: &'a [Segment],
    }
    if !valid_id(id) {
        return Ok(None);
    }
    let Some(view) = db.scenes().view(id).await.map_err(ServerError::store)? else {
        return Ok(None);
    };
    let mut scene = scene_of(&view.row)?;
    scene.character_count = view.characters.len();
    scene.item_count = view.items.len();
    let segments = segments(db, &view.row).await?;
    let original_text = [
        view.row.original_text.as_deref(),
        Some(scene.summary.as_str()),
        Some(scene.description.as_str()),
    ]
    .into_iter()
    .flatten()
    .find(|t| !t.is_empty());
    let body = serde_json::to_vec(&Detail {
        scene: &scene,
        context: Context {
            scene_id: id,
            conversations: all(&view.conversations)?,
            // The last stored change, not the time of this request.
            last_updated: crate::time::rfc3339_local_of_ms(view.updated_at),
        },
        settings: raw(&view.row.settings)?,
        characters: all(&view.characters)?,
        items: all(&view.items)?,
        original_text,
        original_segments: &segments,
    })
    .map_err(ServerError::internal)?;
    Ok(Some(Built {
        body: body.into(),
        owner: Some(view.row.owner),
        stored: (view.version, 0),
    }))
}

/// `GET /api/scenes` data for `identity`: the stored scene documents with their counts
/// spliced in, so nothing is parsed into structs and serialised again.
pub async fn listing(db: &Database, identity: &Identity) -> Result<Built, ServerError> {
    let owner = list_owner(identity);
    let rows = db
        .scenes()
        .list(owner.as_deref())
        .await
        .map_err(|e| ServerError::store_in("获取场景列表失败", e))?;
    let mut body = Vec::with_capacity(rows.iter().map(|r| r.row.document.len() + 48).sum());
    body.push(b'[');
    for (i, summary) in rows.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let (characters, items) = (summary.characters.max(0), summary.items.max(0));
        match with_counts(&summary.row.document, characters, items) {
            Some(spliced) => body.extend_from_slice(spliced.as_bytes()),
            // A document this server did not write itself: the slow, certain way.
            None => {
                let mut scene = scene_of(&summary.row)?;
                scene.character_count = characters as usize;
                scene.item_count = items as usize;
                serde_json::to_writer(&mut body, &scene).map_err(ServerError::internal)?;
            }
        }
    }
    body.push(b']');
    Ok(Built {
        body: body.into(),
        owner: None,
        stored: (0, 0),
    })
}

/// A stored scene document with `character_count` / `item_count` added as the `Scene`
/// struct would serialise them (left out when zero); `None` when the document is not a
/// JSON object or already has them.
fn with_counts(doc: &str, characters: i64, items: i64) -> Option<String> {
    let object = doc.trim();
    if !object.starts_with('{')
        || object.contains("\"character_count\"")
        || object.contains("\"item_count\"")
        || serde_json::from_str::<&serde_json::value::RawValue>(object).is_err()
    {
        return None;
    }
    let inner = object[..object.len() - 1].trim_end();
    let mut out = String::with_capacity(object.len() + 48);
    out.push_str(inner);
    let mut first = inner.ends_with('{');
    for (key, n) in [("character_count", characters), ("item_count", items)] {
        if n > 0 {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&format!("\"{key}\":{n}"));
        }
    }
    out.push('}');
    Some(out)
}

/// Whose list `identity` sees (`None`: everyone's, for admins).
pub fn list_owner(identity: &Identity) -> Option<String> {
    (!identity.admin).then(|| identity.user_id.clone())
}

pub fn scene_of(row: &SceneRow) -> Result<Scene, ServerError> {
    decode("stored scene is not valid", &row.document)
}

pub async fn characters(db: &Database, scene_id: &str) -> Result<Vec<Character>, ServerError> {
    let docs = db
        .scenes()
        .characters(scene_id)
        .await
        .map_err(ServerError::store)?;
    docs.iter()
        .map(|d| decode("stored character is not valid", d))
        .collect()
}

pub async fn items(db: &Database, scene_id: &str) -> Result<Vec<Item>, ServerError> {
    let docs = db
        .scenes()
        .items(scene_id)
        .await
        .map_err(|e| ServerError::store_in("获取物品列表失败", e))?;
    Ok(docs
        .iter()
        .filter_map(|d| serde_json::from_str::<Item>(d).ok())
        .filter(|i| !i.id.is_empty())
        .collect())
}

pub async fn item(db: &Database, scene_id: &str, item_id: &str) -> Result<Item, ServerError> {
    let missing = || ServerError::NotFound {
        resource: Resource::Item,
    };
    if !valid_id(item_id) {
        return Err(missing());
    }
    let doc = db
        .scenes()
        .item(scene_id, item_id)
        .await
        .map_err(ServerError::store)?
        .ok_or_else(missing)?;
    decode("stored item is not valid", &doc)
}

/// Store `item` (new or replacing one with the same id).
pub async fn put_item(db: &Database, item: &Item) -> Result<(), ServerError> {
    db.scenes()
        .put_item(
            &item.scene_id,
            &item.id,
            &encode(item)?,
            chrono::Utc::now().timestamp_millis(),
        )
        .await
        .map_err(|e| ServerError::store_in("保存物品失败", e))
}

/// The newest `limit` lines after skipping the newest `skip`, oldest first, and the total.
pub async fn conversations(
    db: &Database,
    scene_id: &str,
    limit: i64,
    skip: i64,
) -> Result<(Vec<Conversation>, i64), ServerError> {
    let (docs, total) = db
        .scenes()
        .conversations(scene_id, limit, skip)
        .await
        .map_err(|e| ServerError::store_in("获取对话失败", e))?;
    let lines = docs
        .iter()
        .map(|d| decode("stored conversation is not valid", d))
        .collect::<Result<_, _>>()?;
    Ok((lines, total))
}

/// Append conversation lines, in order.
pub async fn append(db: &Database, lines: &[Conversation]) -> Result<(), ServerError> {
    let Some(first) = lines.first() else {
        return Ok(());
    };
    let rows = lines
        .iter()
        .map(line_of)
        .collect::<Result<Vec<_>, ServerError>>()?;
    db.scenes()
        .append_conversations(&first.scene_id, &rows)
        .await
        .map_err(|e| ServerError::store_in("保存对话失败", e))
}

/// A conversation as the store keeps it: story lines (§1.10 of the story spec) are marked so
/// they reveal their node.
pub fn line_of(c: &Conversation) -> Result<sceneintruder_store::Line, ServerError> {
    let node = if c.node_id.is_empty() {
        c.metadata
            .get("node_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
    } else {
        &c.node_id
    };
    Ok(sceneintruder_store::Line {
        id: c.id.clone(),
        document: encode(c)?,
        node_id: (!node.is_empty()).then(|| node.to_string()),
        story: crate::domain::story::is_story_line(c),
    })
}

/// Segments of a scene: stored ones, else computed from its text (and stored).
pub async fn segments(db: &Database, row: &SceneRow) -> Result<Vec<Segment>, ServerError> {
    if let Some(text) = &row.segments
        && let Ok(mut stored) = serde_json::from_str::<Vec<Segment>>(text)
    {
        for (i, s) in stored.iter_mut().enumerate() {
            s.index = i;
        }
        return Ok(stored);
    }
    let scene = scene_of(row)?;
    let base = row
        .original_text
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| Some(scene.summary.clone()).filter(|t| !t.trim().is_empty()))
        .unwrap_or(scene.description.clone());
    let computed = segment(&base, false);
    if !computed.is_empty() {
        db.scenes()
            .update(&row.id, &row.document, Some(&encode(&computed)?))
            .await
            .map_err(ServerError::store)?;
    }
    Ok(computed)
}

/// Settings of a new scene.
pub fn default_settings(scene_id: &str, user_id: &str) -> SceneSettings {
    SceneSettings {
        scene_id: scene_id.to_string(),
        user_id: user_id.to_string(),
        last_updated: rfc3339_nano_local(),
        ..SceneSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_spliced_as_the_struct_would_write_them() {
        let scene = Scene {
            id: "scene_1".into(),
            title: "Harbour".into(),
            ..serde_json::from_str(r#"{"id":"x","locations":null,"themes":null}"#).unwrap()
        };
        let doc = serde_json::to_string(&scene).unwrap();
        for (c, i) in [(0, 0), (5, 0), (0, 3), (5, 3)] {
            let spliced = with_counts(&doc, c, i).expect("our own document");
            let mut expected = scene.clone();
            expected.character_count = c as usize;
            expected.item_count = i as usize;
            let a: serde_json::Value = serde_json::from_str(&spliced).unwrap();
            let b: serde_json::Value = serde_json::to_value(&expected).unwrap();
            assert_eq!(a, b, "{spliced}");
        }
        assert_eq!(
            with_counts("{}", 2, 0).as_deref(),
            Some(r#"{"character_count":2}"#)
        );
        assert!(with_counts(r#"{"character_count":1}"#, 2, 0).is_none());
        assert!(with_counts("[1]", 2, 0).is_none());
        assert!(with_counts("{broken", 2, 0).is_none());
    }

    #[test]
    fn ids_are_validated() {
        for ok in ["scene_1718869800123456789", "a", "A-b_c9"] {
            assert!(valid_id(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "..",
            ".",
            "../x",
            "a/b",
            "_a",
            "-a",
            "a b",
            "场景",
            long.as_str(),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn ids_are_unique_in_a_tight_loop() {
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| new_id("x")).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn language_detection() {
        assert!(is_english("The fog rolled in over the harbour."));
        assert!(!is_english("夜雾笼罩的港口小镇"));
        assert!(!is_english(""));
        assert!(!is_english("12345"));
    }

    #[test]
    fn segmentation_respects_the_limit_and_sentence_ends() {
        let sentence = "夜里十点，码头的汽笛响了。";
        let long_paragraph = sentence.repeat(150); // 1950 characters
        let text = format!("第一章\n\n{long_paragraph}\n\n尾声。");
        let segments = segment(&text, true);
        assert!(segments.len() >= 3, "{}", segments.len());
        for s in &segments {
            assert!(s.original_text.chars().count() <= SEGMENT_LIMIT);
        }
        // The heading alone does not fit with the next piece; cuts land after a full stop.
        assert_eq!(segments[0].original_text, "第一章");
        assert!(segments[1].original_text.ends_with('。'));
        assert_eq!(segments[1].title, "原文片段 2");
        assert!(segments[1].summary.ends_with("……"));
        let joined: String = segments
            .iter()
            .map(|s| s.original_text.replace("\n\n", ""))
            .collect();
        assert_eq!(joined, text.replace("\n\n", ""));
        assert_eq!(segment("  ", true), Vec::new());
        assert_eq!(segment("Short text.", true)[0].title, "Original Segment 1");
    }
}
