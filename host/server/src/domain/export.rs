//! Exports (spec story-export §8): which plugin renders each (kind, format) pair, the export
//! input the host builds for it, and the rendering itself under a deadline.
//!
//! Exports are read-only and not stored: the response carries the document, and `file_path`
//! is the file name a download gets (the reference's copies under `data/exports/` grew
//! without bound and were never read back). They never make a story either (the reference
//! initialised one, with model calls, on the story and interactions exports): the story
//! export of a scene without one is `404 EXPORT_DATA_EMPTY`, and the interactions summary
//! leaves out its story section.

use std::collections::BTreeMap;
use std::time::Duration;

use sceneintruder_export::{
    Kind, interaction_conversations, interaction_stats, story_stats, story_summary,
};
use sceneintruder_export_document::{
    ExportInput, InteractionStats, SCHEMA_VERSION, SceneContext, SceneDoc,
};
use sceneintruder_runtime::export::{FormatInfo, RenderOptions};
use sceneintruder_runtime::{CallError, Exporter, PluginRuntime};
use sceneintruder_store::Database;
use serde::Deserialize;

use crate::auth::Identity;
use crate::domain::scenes;
use crate::domain::story::view as story_view;
use crate::error::{ExportFailure, ServerError};

/// Newest conversation lines an export reads (the interaction list keeps the last 1000 of
/// them; the log itself may be far longer).
const LOG_LINES: i64 = 5000;

/// `[exports]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExportsConfig {
    /// Deadline of one render, in seconds (the reference's 30 s).
    pub timeout_secs: u64,
    /// The operator's choice of plugin per pair: `"scene.markdown" = "<plugin id>"`.
    #[serde(flatten)]
    pub choices: BTreeMap<String, String>,
}

impl Default for ExportsConfig {
    fn default() -> Self {
        ExportsConfig {
            timeout_secs: 30,
            choices: BTreeMap::new(),
        }
    }
}

/// The kinds the export routes serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Scene,
    Interactions,
    Story,
}

impl ExportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::Scene => "scene",
            ExportKind::Interactions => "interactions",
            ExportKind::Story => "story",
        }
    }
}

/// Who serves one pair.
#[derive(Clone)]
pub struct Served {
    pub exporter: Exporter,
    pub info: FormatInfo,
    /// Plugins that claim the pair too but were not chosen.
    pub passed_over: Vec<String>,
    /// Why this one: `operator`, `bundled` or `only` / `first by id`.
    pub chosen_by: &'static str,
}

/// Every (kind, format) pair the loaded exporters render, each with the plugin chosen for
/// it. Built once at start (the plugin set is fixed while the server runs).
#[derive(Clone, Default)]
pub struct Catalog {
    pairs: BTreeMap<(String, String), Served>,
    /// Problems with the configuration, logged at start.
    pub warnings: Vec<String>,
}

impl Catalog {
    pub fn build(runtime: &PluginRuntime, config: &ExportsConfig) -> Catalog {
        let bundled = |id: &str| {
            runtime
                .reports()
                .iter()
                .any(|r| r.id == id && r.trust == Some("bundled"))
        };
        let mut claims: BTreeMap<(String, String), Vec<(Exporter, FormatInfo)>> = BTreeMap::new();
        let mut warnings = Vec::new();
        for exporter in runtime.exporters() {
            for info in exporter.formats() {
                if let Err(why) = acceptable(info) {
                    warnings.push(format!(
                        "exporter {} claims {}.{} with {why}; ignored",
                        exporter.id(),
                        info.kind,
                        info.format
                    ));
                    continue;
                }
                claims
                    .entry((info.kind.clone(), info.format.to_ascii_lowercase()))
                    .or_default()
                    .push((exporter.clone(), info.clone()));
            }
        }
        let mut pairs = BTreeMap::new();
        for ((kind, format), mut candidates) in claims {
            candidates.sort_by(|a, b| a.0.id().cmp(b.0.id()));
            let key = format!("{kind}.{format}");
            let operator = config.choices.get(&key);
            let (index, chosen_by) = match operator
                .and_then(|id| candidates.iter().position(|(e, _)| e.id() == id))
            {
                Some(i) => (i, "operator"),
                None => {
                    if let Some(id) = operator {
                        warnings.push(format!(
                            "[exports] {key:?} names {id:?}, which does not render it; using the default"
                        ));
                    }
                    match candidates.iter().position(|(e, _)| bundled(e.id())) {
                        Some(i) => (i, "bundled"),
                        None if candidates.len() == 1 => (0, "only"),
                        None => (0, "first by id"),
                    }
                }
            };
            let (exporter, info) = candidates.remove(index);
            let passed_over = candidates.iter().map(|(e, _)| e.id().to_string()).collect();
            pairs.insert(
                (kind, format),
                Served {
                    exporter,
                    info,
                    passed_over,
                    chosen_by,
                },
            );
        }
        for key in config.choices.keys() {
            let known = key
                .split_once('.')
                .is_some_and(|(k, f)| pairs.contains_key(&(k.to_string(), f.to_string())));
            if !known {
                warnings.push(format!(
                    "[exports] {key:?}: no loaded exporter renders this pair"
                ));
            }
        }
        Catalog { pairs, warnings }
    }

    /// Who renders `format` of `kind` (a legacy exporter's `*` kind matches any kind).
    pub fn get(&self, kind: &str, format: &str) -> Option<&Served> {
        self.pairs
            .get(&(kind.to_string(), format.to_string()))
            .or_else(|| self.pairs.get(&("*".to_string(), format.to_string())))
    }

    /// The formats of `kind`, sorted.
    pub fn formats(&self, kind: &str) -> Vec<String> {
        let mut formats: Vec<String> = self
            .pairs
            .keys()
            .filter(|(k, _)| k == kind || k == "*")
            .map(|(_, f)| f.clone())
            .collect();
        formats.sort();
        formats.dedup();
        formats
    }

    /// Every pair with the plugin serving it.
    pub fn pairs(&self) -> impl Iterator<Item = (&(String, String), &Served)> {
        self.pairs.iter()
    }

    /// The pairs `plugin` serves and the ones it claims but lost (with the winner).
    pub fn of_plugin(&self, plugin: &str) -> (Vec<String>, Vec<(String, String)>) {
        let mut serves = Vec::new();
        let mut lost = Vec::new();
        for ((kind, format), served) in &self.pairs {
            let pair = format!("{kind}.{format}");
            if served.exporter.id() == plugin {
                serves.push(pair);
            } else if served.passed_over.iter().any(|p| p == plugin) {
                lost.push((pair, served.exporter.id().to_string()));
            }
        }
        (serves, lost)
    }
}

/// A pair's media type and extension become response headers and file names: a plugin
/// may not smuggle anything into them.
fn acceptable(info: &FormatInfo) -> Result<(), String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !token(&info.format) {
        return Err(format!("an unusable format id {:?}", info.format));
    }
    if !(token(&info.kind) || info.kind == "*") {
        return Err(format!("an unusable kind {:?}", info.kind));
    }
    if !token(&info.file_extension) {
        return Err(format!(
            "an unusable file extension {:?}",
            info.file_extension
        ));
    }
    let media = &info.media_type;
    if media.is_empty()
        || media.len() > 128
        || !media.contains('/')
        || !media.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(format!("an unusable media type {media:?}"));
    }
    Ok(())
}

/// What the export routes ask for.
pub struct Request {
    pub kind: ExportKind,
    /// As given (validated against the catalog here).
    pub format: String,
    pub include_conversations: bool,
}

/// A rendered export.
pub struct Exported {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub file_name: String,
    pub format: String,
    pub input: ExportInput,
}

/// Render an export of scene `id` for `identity`.
pub async fn export(
    db: &Database,
    catalog: &Catalog,
    config: &ExportsConfig,
    identity: &Identity,
    id: &str,
    request: Request,
) -> Result<Exported, ServerError> {
    let kind = request.kind;
    let format = request.format.trim().to_ascii_lowercase();
    let served = catalog
        .get(kind.as_str(), &format)
        .ok_or_else(|| {
            ServerError::Export(ExportFailure::FormatInvalid {
                available: catalog.formats(kind.as_str()),
            })
        })?
        .clone();
    let row = scenes::load(db, identity, id).await?;
    let generated = chrono::Local::now();
    let input = build_input(
        db,
        &row,
        kind,
        &format,
        request.include_conversations,
        generated,
    )
    .await?;
    let json = serde_json::to_string(&input).map_err(ServerError::internal)?;
    let deadline = Duration::from_secs(config.timeout_secs.max(1));
    let rendered = tokio::time::timeout(
        deadline,
        served.exporter.render(
            &served.info.kind,
            &format,
            &json,
            RenderOptions::default(),
            None,
        ),
    )
    .await
    .map_err(|_| ServerError::Export(ExportFailure::Timeout { kind }))?
    .map_err(|e| render_failure(kind, &served, e))?;
    Ok(Exported {
        file_name: file_name(kind, id, &rendered.file_extension, generated),
        bytes: rendered.bytes,
        media_type: rendered.media_type,
        format,
        input,
    })
}

fn render_failure(kind: ExportKind, served: &Served, e: CallError) -> ServerError {
    use sceneintruder_runtime::export::ExportError;
    tracing::warn!(plugin = served.exporter.id(), kind = kind.as_str(), error = %e, "export failed");
    ServerError::Export(match e {
        CallError::Timeout { .. } => ExportFailure::Timeout { kind },
        CallError::Export {
            error: ExportError::OutputRefused(details),
            ..
        } => ExportFailure::TooLarge { details },
        other => ExportFailure::Failed {
            kind,
            details: other.to_string(),
        },
    })
}

/// The export input of `kind` for the scene in `row` (spec §8.5-8.9).
async fn build_input(
    db: &Database,
    row: &sceneintruder_store::SceneRow,
    kind: ExportKind,
    format: &str,
    include_conversations: bool,
    generated: chrono::DateTime<chrono::Local>,
) -> Result<ExportInput, ServerError> {
    // The stored story with its reveals, never a new one (spec §3.1, §8.4).
    let story = match kind {
        ExportKind::Scene => None,
        ExportKind::Interactions => story_view(db, &row.id).await?,
        ExportKind::Story => Some(
            story_view(db, &row.id)
                .await?
                .ok_or(ServerError::Export(ExportFailure::DataEmpty { kind }))?,
        ),
    };
    let scene = scenes::scene_of(row)?;
    let characters = scenes::characters(db, &row.id).await?;
    let items: Vec<_> = scenes::items(db, &row.id)
        .await?
        .into_iter()
        .filter(|i| !scenes::inventory_only(i))
        .collect();
    let settings = serde_json::from_str(&row.settings)
        .unwrap_or_else(|_| scenes::default_settings(&row.id, &row.owner));
    // The story export reads no conversation line.
    let log = match kind {
        ExportKind::Scene | ExportKind::Interactions => {
            scenes::conversations(db, &row.id, LOG_LINES, 0).await?.0
        }
        ExportKind::Story => Vec::new(),
    };
    let interactions = interaction_conversations(&log);
    let (context_lines, conversations) = match kind {
        // The reference put the whole log in every scene export; only on request here.
        ExportKind::Scene if include_conversations => (log, interactions),
        ExportKind::Scene | ExportKind::Story => (Vec::new(), Vec::new()),
        ExportKind::Interactions => (Vec::new(), interactions),
    };
    let stats = match kind {
        ExportKind::Scene => interaction_stats(Kind::Scene, &conversations, characters.len()),
        ExportKind::Interactions => {
            interaction_stats(Kind::Interactions, &conversations, characters.len())
        }
        ExportKind::Story => InteractionStats::default(),
    };
    let mut input = ExportInput {
        schema_version: SCHEMA_VERSION,
        kind: kind.as_str().to_string(),
        format: format.to_string(),
        generated_at: crate::time::rfc3339_of(generated),
        include_conversations: include_conversations && kind == ExportKind::Scene,
        context: SceneContext {
            scene_id: row.id.clone(),
            conversations: context_lines,
            last_updated: scene.last_updated.clone(),
        },
        interaction_stats: stats,
        conversations,
        characters,
        settings,
        scene: SceneDoc { scene, items },
        summary_markdown: String::new(),
        story_stats: match kind {
            ExportKind::Story => story.as_ref().map(story_stats),
            ExportKind::Scene | ExportKind::Interactions => None,
        },
        story,
    };
    input.summary_markdown = match kind {
        ExportKind::Scene => sceneintruder_export::scene_summary(&input),
        ExportKind::Interactions => sceneintruder_export::interaction_summary(&input),
        ExportKind::Story => story_summary(&input),
    };
    Ok(input)
}

/// The download's file name (spec §8.2), from the validated scene id, the time and the
/// plugin's checked extension.
fn file_name(
    kind: ExportKind,
    scene_id: &str,
    extension: &str,
    at: chrono::DateTime<chrono::Local>,
) -> String {
    let stamp = at.format("%Y%m%d_%H%M%S");
    match kind {
        ExportKind::Scene => format!("{scene_id}_scene_data_{stamp}.{extension}"),
        ExportKind::Interactions => format!(
            "{scene_id}_interaction_summary_{stamp}_{}.{extension}",
            at.timestamp_subsec_nanos()
        ),
        ExportKind::Story => format!("{scene_id}_story_document_{stamp}.{extension}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(media_type: &str, ext: &str) -> FormatInfo {
        FormatInfo {
            kind: "scene".into(),
            format: "md".into(),
            display_name: "x".into(),
            media_type: media_type.into(),
            file_extension: ext.into(),
            schema_version: 1,
        }
    }

    #[test]
    fn plugin_supplied_headers_are_checked() {
        assert!(acceptable(&info("text/markdown; charset=utf-8", "markdown")).is_ok());
        assert!(acceptable(&info("text/html\r\nSet-Cookie: a=b", "html")).is_err());
        assert!(acceptable(&info("text/plain", "../../etc")).is_err());
        assert!(acceptable(&info("text/plain", "txt\"; x")).is_err());
        assert!(acceptable(&info("nonsense", "txt")).is_err());
    }

    #[test]
    fn file_names_follow_the_reference() {
        use chrono::TimeZone;
        let at = chrono::Local
            .with_ymd_and_hms(2025, 6, 20, 10, 30, 0)
            .single()
            .expect("a time");
        assert_eq!(
            file_name(ExportKind::Scene, "scene_1", "markdown", at),
            "scene_1_scene_data_20250620_103000.markdown"
        );
        assert_eq!(
            file_name(ExportKind::Interactions, "scene_1", "txt", at),
            "scene_1_interaction_summary_20250620_103000_0.txt"
        );
        assert_eq!(
            file_name(ExportKind::Story, "scene_1", "markdown", at),
            "scene_1_story_document_20250620_103000.markdown"
        );
    }

    #[test]
    fn story_failures_use_the_story_wording() {
        use axum::http::StatusCode;
        let empty = ServerError::Export(ExportFailure::DataEmpty {
            kind: ExportKind::Story,
        });
        assert_eq!(empty.status(), StatusCode::NOT_FOUND);
        assert_eq!(empty.code(), "EXPORT_DATA_EMPTY");
        assert_eq!(empty.message(), "没有可导出的故事数据");
        assert_eq!(empty.details(), "场景中没有故事记录");
        let late = ServerError::Export(ExportFailure::Timeout {
            kind: ExportKind::Story,
        });
        assert_eq!(late.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(late.code(), "EXPORT_TIMEOUT");
        assert_eq!(late.message(), "导出操作超时");
        assert_eq!(late.details(), "故事文档较大，请稍后重试");
        let scene_late = ServerError::Export(ExportFailure::Timeout {
            kind: ExportKind::Scene,
        });
        assert_eq!(scene_late.message(), "Export operation timed out");
        let failed = ServerError::Export(ExportFailure::Failed {
            kind: ExportKind::Story,
            details: "trap".into(),
        });
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.code(), "EXPORT_FAILED");
        assert_eq!(failed.message(), "导出故事文档失败");
        assert_eq!(failed.details(), "trap");
    }

    #[test]
    fn exports_config_reads_choices_beside_its_knobs() {
        let config: ExportsConfig =
            toml::from_str("timeout_secs = 5\n\"scene.markdown\" = \"fancy-md\"\n")
                .expect("parses");
        assert_eq!(config.timeout_secs, 5);
        assert_eq!(
            config.choices.get("scene.markdown").map(String::as_str),
            Some("fancy-md")
        );
    }
}
