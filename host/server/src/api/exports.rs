//! Export routes (spec story-export §8):
//! `GET /api/scenes/{id}/export/{scene,interactions,story}` and `GET /api/exports/formats`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::envelope::{ApiResult, Ok};
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::export::{self, ExportKind, Exported};
use crate::error::ServerError;
use sceneintruder_export_document::{Character, Conversation, InteractionStats, StoryData};

pub async fn scene(
    state: State<Arc<AppState>>,
    identity: Identity,
    id: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<Response, ServerError> {
    run(state, identity, id, query, ExportKind::Scene).await
}

pub async fn interactions(
    state: State<Arc<AppState>>,
    identity: Identity,
    id: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<Response, ServerError> {
    run(state, identity, id, query, ExportKind::Interactions).await
}

pub async fn story(
    state: State<Arc<AppState>>,
    identity: Identity,
    id: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<Response, ServerError> {
    run(state, identity, id, query, ExportKind::Story).await
}

async fn run(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    kind: ExportKind,
) -> Result<Response, ServerError> {
    let request = export::Request {
        kind,
        format: query
            .get("format")
            .cloned()
            .unwrap_or_else(|| "json".into()),
        // Exactly `true` enables it, as in the reference.
        include_conversations: query.get("include_conversations").map(String::as_str)
            == Some("true"),
    };
    let exported = export::export(
        &state.db,
        &state.exports(),
        &state.config.exports,
        &identity,
        &id,
        request,
    )
    .await?;
    if exported.format == "json" {
        let result = export_result(kind, &exported)?;
        return Result::Ok(Ok::data(result).message("导出成功").into_response());
    }
    Result::Ok(download(exported))
}

/// A raw document as a download. The body is the plugin's: it is never rendered as a page
/// of this origin (attachment, no sniffing, sandboxed if a browser opens it anyway).
fn download(exported: Exported) -> Response {
    let mut response = exported.bytes.into_response();
    let headers = response.headers_mut();
    // The catalog only admits printable ASCII media types and token extensions.
    if let Result::Ok(v) = HeaderValue::from_str(&exported.media_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Result::Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", exported.file_name))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

/// `data` of a `format=json` export (spec §8.3).
#[derive(Serialize)]
struct ExportResult<'a> {
    scene_id: &'a str,
    title: String,
    format: &'a str,
    content: &'a str,
    generated_at: &'a str,
    export_type: &'static str,
    characters: &'a [Character],
    conversations: Option<&'a [Conversation]>,
    summary: &'a str,
    file_path: &'a str,
    file_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<&'a InteractionStats>,
    /// The whole story (every node, passages not cut): story exports only.
    #[serde(skip_serializing_if = "Option::is_none")]
    story_data: Option<&'a StoryData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene_metadata: Option<Value>,
}

fn export_result(kind: ExportKind, exported: &Exported) -> Result<Value, ServerError> {
    let input = &exported.input;
    let scene = &input.scene.scene;
    let content = std::str::from_utf8(&exported.bytes)
        .map_err(|_| ServerError::internal("the json exporter wrote text that is not UTF-8"))?;
    let conversations = (!input.conversations.is_empty()).then_some(&input.conversations[..]);
    let result = match kind {
        ExportKind::Scene => ExportResult {
            title: format!("{} - 场景数据", scene.title),
            export_type: "scene",
            conversations: conversations.filter(|_| input.include_conversations),
            summary: "",
            stats: None,
            scene_metadata: Some(scene_metadata(exported)),
            ..base(exported, content)
        },
        ExportKind::Interactions => ExportResult {
            title: format!("{} - 交互摘要", scene.title),
            export_type: "",
            conversations,
            summary: &input.summary_markdown,
            stats: Some(&input.interaction_stats),
            scene_metadata: None,
            ..base(exported, content)
        },
        ExportKind::Story => ExportResult {
            title: format!("{} - 故事文档", scene.title),
            export_type: "story",
            conversations: None,
            summary: "",
            stats: None,
            story_data: input.story.as_ref(),
            scene_metadata: Some(scene_metadata(exported)),
            ..base(exported, content)
        },
    };
    serde_json::to_value(result).map_err(ServerError::internal)
}

fn base<'a>(exported: &'a Exported, content: &'a str) -> ExportResult<'a> {
    let input = &exported.input;
    ExportResult {
        scene_id: &input.scene.scene.id,
        title: String::new(),
        format: &exported.format,
        content,
        generated_at: &input.generated_at,
        export_type: "",
        characters: &input.characters,
        conversations: None,
        summary: "",
        // Exports are not stored: the path is the file name a download gets.
        file_path: &exported.file_name,
        file_size: exported.bytes.len(),
        stats: None,
        story_data: None,
        scene_metadata: None,
    }
}

/// SceneMetadata (spec §8.3) of the scene and story results.
fn scene_metadata(exported: &Exported) -> Value {
    let input = &exported.input;
    let scene = &input.scene.scene;
    json!({
        "id": scene.id,
        "user_id": (!scene.user_id.is_empty()).then_some(&scene.user_id),
        "name": scene.title,
        "source": scene.source,
        "created_at": scene.created_at,
        "last_accessed": scene.last_accessed,
        "character_count": input.characters.len(),
    })
}

/// `GET /api/exports/formats`: every (kind, format) pair and the plugin serving it.
pub async fn formats(State(state): State<Arc<AppState>>) -> ApiResult {
    let catalog = state.exports();
    let pairs: Vec<Value> = catalog
        .pairs()
        .map(|((kind, format), served)| {
            json!({
                "kind": kind,
                "format": format,
                "display_name": served.info.display_name,
                "media_type": served.info.media_type,
                "file_extension": served.info.file_extension,
                "schema_version": served.info.schema_version,
                "plugin": served.exporter.id(),
                "chosen_by": served.chosen_by,
                "also_claimed_by": served.passed_over,
            })
        })
        .collect();
    Result::Ok(Ok::data(pairs))
}
