//! Text analysis: a story text becomes a scene with characters, items and locations.
//!
//! Long texts are cut into chunks on paragraph boundaries; every chunk is analysed (several
//! at once, within a limit) so nothing late in the text is missed, and the results are
//! merged: one character per name or alias, one item and one location per name.

use crate::domain::template::fill;
use std::collections::BTreeMap;
use std::future::Future;

use futures::StreamExt;
use sceneintruder_llm::{LlmCall, LlmError, LlmService};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::scenes::{
    Character, Draft, Item, Location, Scene, default_settings, is_english, new_id, pick_locale,
    segment, valid_id,
};
use crate::time::rfc3339_nano_local;

const SYSTEM: &str = include_str!("../../prompts/scene_analysis_system.txt");
const USER: &str = include_str!("../../prompts/scene_analysis_user.txt");
const SUMMARY_SYSTEM: &str = include_str!("../../prompts/scene_summary_system.txt");

/// `[scenes]` analysis knobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Largest chunk sent to the model in one call, in characters.
    pub chunk_chars: usize,
    /// Chunks analysed at the same time.
    pub parallel_chunks: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            chunk_chars: 6000,
            parallel_chunks: 3,
        }
    }
}

/// What the model reports for one chunk.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ChunkAnalysis {
    pub summary: String,
    pub scenes: Vec<SceneFinding>,
    pub characters: Vec<CharacterFinding>,
    pub items: Vec<ItemFinding>,
    pub locations: Vec<LocationFinding>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SceneFinding {
    pub name: String,
    pub description: String,
    pub atmosphere: String,
    pub era: String,
    pub themes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CharacterFinding {
    pub name: String,
    pub aliases: Vec<String>,
    pub role: String,
    pub description: String,
    pub personality: String,
    pub background: String,
    pub speech_style: String,
    pub relationships: BTreeMap<String, String>,
    pub knowledge: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ItemFinding {
    pub name: String,
    pub description: String,
    pub location: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LocationFinding {
    pub name: String,
    pub description: String,
    pub accessible: bool,
    pub requires_item: String,
}

impl Default for LocationFinding {
    fn default() -> Self {
        LocationFinding {
            name: String::new(),
            description: String::new(),
            accessible: true,
            requires_item: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{0}")]
    Llm(#[from] LlmError),
    #[error("分析文本失败: 片段 {part}/{parts}: {error}")]
    Chunk {
        part: usize,
        parts: usize,
        error: LlmError,
    },
    #[error("cancelled")]
    Cancelled,
    /// A progress report failed (the job was cancelled or the store failed).
    #[error("{0}")]
    Progress(String),
}

/// Cut `text` into chunks of at most `limit` characters, on paragraph boundaries where
/// possible.
pub fn chunks(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(500);
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_len = 0usize;
    for paragraph in text.replace("\r\n", "\n").split("\n\n") {
        let paragraph = paragraph.trim();
        if paragraph.is_empty() {
            continue;
        }
        let chars: Vec<char> = paragraph.chars().collect();
        for piece in chars.chunks(limit) {
            let piece: String = piece.iter().collect();
            let len = piece.chars().count();
            if current_len > 0 && current_len + 2 + len > limit {
                out.push(std::mem::take(&mut current));
                current_len = 0;
            }
            if current_len > 0 {
                current.push_str("\n\n");
                current_len += 2;
            }
            current.push_str(&piece);
            current_len += len;
        }
    }
    if current_len > 0 {
        out.push(current);
    }
    out
}

fn language(text: &str) -> &'static str {
    if is_english(text) {
        "English"
    } else {
        "Simplified Chinese (简体中文)"
    }
}

/// One merged character and the names it goes by.
struct Merged {
    names: Vec<String>,
    finding: CharacterFinding,
}

fn norm(name: &str) -> String {
    name.trim().to_lowercase()
}

fn fill_empty(target: &mut String, value: &str) {
    if target.trim().is_empty() && !value.trim().is_empty() {
        *target = value.trim().to_string();
    }
}

/// One entry per character across chunks: a character whose name or alias matches one
/// already seen is merged into it (empty fields filled, knowledge and relations combined).
fn merge_characters(findings: impl IntoIterator<Item = CharacterFinding>) -> Vec<CharacterFinding> {
    let mut merged: Vec<Merged> = Vec::new();
    for finding in findings {
        if finding.name.trim().is_empty() {
            continue;
        }
        let names: Vec<String> = std::iter::once(&finding.name)
            .chain(finding.aliases.iter())
            .map(|n| norm(n))
            .filter(|n| !n.is_empty())
            .collect();
        match merged
            .iter_mut()
            .find(|m| m.names.iter().any(|n| names.contains(n)))
        {
            Some(existing) => {
                let e = &mut existing.finding;
                fill_empty(&mut e.role, &finding.role);
                fill_empty(&mut e.description, &finding.description);
                fill_empty(&mut e.personality, &finding.personality);
                fill_empty(&mut e.background, &finding.background);
                fill_empty(&mut e.speech_style, &finding.speech_style);
                for k in finding.knowledge {
                    if !k.trim().is_empty() && !e.knowledge.contains(&k) {
                        e.knowledge.push(k);
                    }
                }
                for (other, relation) in finding.relationships {
                    e.relationships.entry(other).or_insert(relation);
                }
                for alias in std::iter::once(finding.name).chain(finding.aliases) {
                    let n = norm(&alias);
                    if !n.is_empty() && !existing.names.contains(&n) {
                        existing.names.push(n);
                        if norm(&e.name) != norm(&alias) {
                            e.aliases.push(alias);
                        }
                    }
                }
            }
            None => merged.push(Merged {
                names,
                finding: CharacterFinding {
                    name: finding.name.trim().to_string(),
                    ..finding
                },
            }),
        }
    }
    merged.into_iter().map(|m| m.finding).collect()
}

/// Analyse `text` and build the scene it describes. `progress(done, total)` is awaited after
/// every analysed chunk.
pub async fn analyze<F, Fut>(
    llm: &LlmService,
    config: &AnalysisConfig,
    request: &AnalysisRequest<'_>,
    cancel: &CancellationToken,
    mut progress: F,
) -> Result<Draft, AnalysisError>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let text = request.text;
    let lang = language(text);
    let system = fill(SYSTEM, &[("language", lang)]);
    let parts = chunks(text, config.chunk_chars);
    let total = parts.len();
    let calls: Vec<(usize, LlmCall)> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let mut call = LlmCall::new(
                system.clone(),
                fill(
                    USER,
                    &[
                        ("title", request.title),
                        ("part", &(i + 1).to_string()),
                        ("parts", &total.to_string()),
                        ("text", part),
                    ],
                ),
            );
            call.temperature = Some(0.2);
            call.max_tokens = Some(4000);
            call.user = request.user.to_string();
            call.cancel = Some(cancel.clone());
            (i, call)
        })
        .collect();
    let mut running = futures::stream::iter(calls)
        .map(|(i, call)| async move { (i, llm.complete_json::<ChunkAnalysis>(&call).await) })
        .buffer_unordered(config.parallel_chunks.max(1));
    let mut results: Vec<Option<ChunkAnalysis>> = vec![None; total];
    let mut done = 0;
    while let Some((i, outcome)) = running.next().await {
        match outcome {
            Ok((analysis, _)) => results[i] = Some(analysis),
            Err(LlmError::Cancelled) => return Err(AnalysisError::Cancelled),
            Err(error) => {
                return Err(AnalysisError::Chunk {
                    part: i + 1,
                    parts: total,
                    error,
                });
            }
        }
        done += 1;
        progress(done, total)
            .await
            .map_err(AnalysisError::Progress)?;
    }
    drop(running);
    let results: Vec<ChunkAnalysis> = results.into_iter().flatten().collect();

    let summary = if results.len() > 1 {
        let joined = results
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{}. {}", i + 1, r.summary))
            .collect::<Vec<_>>()
            .join("\n");
        let mut call = LlmCall::new(fill(SUMMARY_SYSTEM, &[("language", lang)]), joined);
        call.temperature = Some(0.2);
        call.user = request.user.to_string();
        call.cancel = Some(cancel.clone());
        #[derive(Deserialize)]
        struct Summary {
            summary: String,
        }
        match llm.complete_json::<Summary>(&call).await {
            Ok((s, _)) => s.summary,
            Err(LlmError::Cancelled) => return Err(AnalysisError::Cancelled),
            // The summary only backs up the description: keep the parts' summaries.
            Err(e) => {
                tracing::warn!("story summary failed, keeping the parts' summaries: {e}");
                results
                    .iter()
                    .map(|r| r.summary.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
    } else {
        results
            .first()
            .map(|r| r.summary.clone())
            .unwrap_or_default()
    };
    Ok(build(request, &results, summary))
}

/// What to analyse and for whom.
pub struct AnalysisRequest<'a> {
    /// The new scene's id when the caller fixes it (see [`scene_id_for_job`]); else a new one.
    pub scene_id: Option<&'a str>,
    pub title: &'a str,
    pub text: &'a str,
    /// Owner of the scene (the caller's user id).
    pub owner: &'a str,
    /// `user_id` written into the scene document (`anonymous` for guests).
    pub user: &'a str,
}

/// The id of the scene an analysis job creates: derived from the job's id, so every run of
/// one job (a retry after a restart) names the same scene and the store refuses a second.
pub fn scene_id_for_job(job_id: &str) -> String {
    let id = format!("scene_{}", job_id.strip_prefix("task_").unwrap_or(job_id));
    if valid_id(&id) { id } else { new_id("scene") }
}

fn build(request: &AnalysisRequest<'_>, results: &[ChunkAnalysis], summary: String) -> Draft {
    let text = request.text;
    let now = rfc3339_nano_local();
    let scene_id = request
        .scene_id
        .map_or_else(|| new_id("scene"), str::to_string);
    let first = results.iter().flat_map(|r| r.scenes.iter()).next();
    let mut themes: Vec<String> = Vec::new();
    for theme in results
        .iter()
        .flat_map(|r| r.scenes.iter())
        .flat_map(|s| s.themes.iter())
        .flat_map(|t| t.split([',', '，']))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !themes.iter().any(|t| t == theme) {
            themes.push(theme.to_string());
        }
    }
    if themes.is_empty() {
        themes.push(pick_locale(text, "Unspecified", "未指定").to_string());
    }
    let mut locations: Vec<Location> = Vec::new();
    for found in results.iter().flat_map(|r| r.locations.iter()) {
        let name = found.name.trim();
        if name.is_empty() || locations.iter().any(|l| norm(&l.name) == norm(name)) {
            continue;
        }
        let mut description = found.description.trim().to_string();
        if !found.accessible {
            let note = if is_english(text) {
                format!("(access: false, requires: {})", found.requires_item.trim())
            } else {
                format!(
                    "（可进入：false，需要物品：{}）",
                    found.requires_item.trim()
                )
            };
            if !description.is_empty() {
                description.push(' ');
            }
            description.push_str(&note);
        }
        locations.push(Location {
            name: name.to_string(),
            description,
        });
    }
    let description = first
        .map(|s| s.description.trim().to_string())
        .filter(|d| !d.is_empty())
        .or_else(|| Some(summary.trim().to_string()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| {
            pick_locale(text, "A scene drawn from the text", "从文本中提取的场景").to_string()
        });
    let scene = Scene {
        id: scene_id.clone(),
        user_id: request.user.to_string(),
        title: request.title.to_string(),
        name: first.map(|s| s.name.trim().to_string()).unwrap_or_default(),
        description,
        source: String::new(),
        created_at: now.clone(),
        last_accessed: super::scenes::ZERO_TIME.to_string(),
        last_updated: now.clone(),
        summary,
        locations: (!locations.is_empty()).then_some(locations),
        themes: Some(themes),
        era: first
            .map(|s| s.era.trim().to_string())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| pick_locale(text, "Modern", "现代").to_string()),
        atmosphere: first
            .map(|s| s.atmosphere.trim().to_string())
            .unwrap_or_default(),
        character_count: 0,
        item_count: 0,
    };
    let stamp = new_id("char");
    let characters = merge_characters(results.iter().flat_map(|r| r.characters.clone()))
        .into_iter()
        .enumerate()
        .map(|(i, c)| Character {
            id: format!("{stamp}_{i}"),
            scene_id: scene_id.clone(),
            name: c.name,
            role: c.role,
            description: c.description,
            novel: String::new(),
            personality: c.personality,
            background: c.background,
            speech_style: c.speech_style,
            relationships: Some(c.relationships),
            knowledge: Some(c.knowledge),
            image_url: String::new(),
            created_at: now.clone(),
            last_updated: now.clone(),
        })
        .collect();
    let stamp = new_id("item");
    let mut item_names: Vec<String> = Vec::new();
    let mut items = Vec::new();
    for found in results.iter().flat_map(|r| r.items.iter()) {
        let name = found.name.trim();
        if name.is_empty() || item_names.contains(&norm(name)) {
            continue;
        }
        item_names.push(norm(name));
        items.push(Item {
            id: format!("{stamp}_{}", items.len()),
            scene_id: scene_id.clone(),
            name: name.to_string(),
            description: found.description.trim().to_string(),
            location: found.location.trim().to_string(),
            kind: found.kind.trim().to_string(),
            created_at: now.clone(),
            last_updated: now.clone(),
            ..Item::default()
        });
    }
    Draft {
        settings: default_settings(&scene_id, request.user),
        scene,
        owner: request.owner.to_string(),
        original_text: (!text.trim().is_empty()).then(|| text.to_string()),
        segments: segment(text, true),
        characters,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_text_within_the_limit() {
        let paragraph = "word ".repeat(300); // 1500 characters
        let text = (0..10)
            .map(|i| format!("{i} {paragraph}"))
            .collect::<Vec<_>>()
            .join("\n\n");
        let parts = chunks(&text, 4000);
        assert!(parts.len() >= 4, "{}", parts.len());
        assert!(parts.iter().all(|p| p.chars().count() <= 4000));
        assert!(
            parts
                .last()
                .is_some_and(|p| p.starts_with("9 ") || p.contains("\n\n9 "))
        );
        // A single paragraph longer than the limit is cut too.
        assert_eq!(chunks(&"x".repeat(1200), 500).len(), 3);
        assert!(chunks("  \n\n ", 500).is_empty());
    }

    fn character(name: &str, aliases: &[&str], role: &str, knowledge: &[&str]) -> CharacterFinding {
        CharacterFinding {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            role: role.into(),
            knowledge: knowledge.iter().map(|k| k.to_string()).collect(),
            ..CharacterFinding::default()
        }
    }

    #[test]
    fn characters_merge_by_name_and_alias() {
        let merged = merge_characters([
            character("Lin Chen", &["Chen"], "", &["the docks"]),
            character(
                "lin chen",
                &[],
                "protagonist",
                &["the docks", "the lighthouse"],
            ),
            character("Chen", &["Old Chen"], "", &["the ledger"]),
            character("Su Wan", &[], "friend", &[]),
            character("  ", &[], "nobody", &[]),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].name, "Lin Chen");
        assert_eq!(merged[0].role, "protagonist");
        assert_eq!(
            merged[0].knowledge,
            ["the docks", "the lighthouse", "the ledger"]
        );
        assert!(merged[0].aliases.iter().any(|a| a == "Old Chen"));
        assert_eq!(merged[1].name, "Su Wan");
    }

    #[test]
    fn job_scenes_are_named_after_the_job() {
        let id = scene_id_for_job("task_0198a1b2c3d4e5f60718293a4b5c6d7e");
        assert_eq!(id, "scene_0198a1b2c3d4e5f60718293a4b5c6d7e");
        assert_eq!(
            id,
            scene_id_for_job("task_0198a1b2c3d4e5f60718293a4b5c6d7e")
        );
        assert!(valid_id(&id));
        // An id that would not make a valid scene id still gets one.
        assert!(valid_id(&scene_id_for_job(&"x".repeat(128))));
    }

    #[test]
    fn templates_are_filled() {
        assert_eq!(
            fill("a {{x}} b {{y}}", &[("x", "1"), ("y", "2")]),
            "a 1 b 2"
        );
        assert!(!fill(SYSTEM, &[("language", "English")]).contains("{{"));
    }
}
