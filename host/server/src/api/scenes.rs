//! Scene routes: upload, analysis, scenes, characters, conversations, items, aggregate.
//! Every scene id is validated and checked for ownership before storage is touched.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use axum::response::Response;

use super::envelope::{ApiResult, Ok, raw_data};
use super::extract::ApiJson;
use super::response_cache::{Entry, Key};
use crate::app::AppState;
use crate::auth::Identity;
use crate::domain::analysis::{AnalysisError, AnalysisRequest, analyze};
use crate::domain::scenes::{
    self, ANONYMOUS, Item, Scene, ZERO_TIME, default_settings, new_id, valid_id,
};
use crate::domain::upload::{self, Format};
use crate::error::{Resource, ServerError};
use crate::jobs::analyze::{ANALYZE_KIND, AnalyzeInput, failure_text};
use crate::time::rfc3339_nano_local;

const MAX_UPLOAD_BYTES: usize = 10 << 20;
const MAX_UPLOAD_CONTENT: usize = 1_000_000;
const MAX_TEXT_BYTES: usize = 100_000;
const MAX_ANALYZE_BYTES: usize = 1_000_000;
const MAX_TITLE_BYTES: usize = 200;

/// `user_id` written into a scene document: the account, or `anonymous` for guests.
fn document_user(identity: &Identity) -> &str {
    if identity.authenticated {
        &identity.user_id
    } else {
        ANONYMOUS
    }
}

fn bad(message: &str, details: impl Into<String>) -> ServerError {
    ServerError::bad_request(message, details)
}

/// Uploads being read at once (`[http] max_concurrent_uploads`): each may hold up to
/// `MAX_UPLOAD_BYTES` in memory.
#[derive(Clone)]
pub struct UploadSlots {
    slots: Arc<tokio::sync::Semaphore>,
    limit: usize,
}

impl UploadSlots {
    pub fn new(limit: usize) -> UploadSlots {
        UploadSlots {
            slots: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit,
        }
    }
}

/// An answer sent before the whole body may have been read: the connection cannot be
/// reused, so say so.
fn closing(error: ServerError) -> Response {
    let mut response = axum::response::IntoResponse::into_response(error);
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

pub async fn upload(
    axum::Extension(slots): axum::Extension<UploadSlots>,
    multipart: Multipart,
) -> Response {
    let Result::Ok(_slot) = slots.slots.clone().try_acquire_owned() else {
        tracing::warn!(
            max_concurrent_uploads = slots.limit,
            "refused an upload: [http] max_concurrent_uploads uploads are being read"
        );
        return uploads_busy(slots.limit).await;
    };
    let (name, format, bytes) = match read_upload(multipart).await {
        Result::Ok(file) => file,
        Err(e) => return closing(e),
    };
    axum::response::IntoResponse::into_response(upload_content(name, format, bytes).await)
}

/// `429 RATE_LIMIT_EXCEEDED` (retry after a second) whose details name the upload cap, so
/// it reads differently from the hourly `[rate_limits] analysis` refusal.
async fn uploads_busy(limit: usize) -> Response {
    let (mut parts, body) = closing(ServerError::RateLimited { retry_after: 1 }).into_parts();
    let envelope = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let body = match serde_json::from_slice::<Value>(&envelope) {
        Result::Ok(mut value) => {
            value["error"]["details"] = Value::String(format!(
                "[http] max_concurrent_uploads ({limit}) uploads are being read; retry in a moment"
            ));
            serde_json::to_vec(&value).unwrap_or_else(|_| envelope.to_vec())
        }
        Err(_) => envelope.to_vec(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ServerError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServerError::PayloadTooLarge
    } else {
        bad("获取上传文件失败", e.body_text())
    }
}

/// The `file` part, streamed: an unsupported type is refused before its bytes are read, and
/// reading stops as soon as the part is larger than its type allows (plain text turns into
/// at least as many bytes of content, so more than `MAX_UPLOAD_CONTENT` of it is too much).
async fn read_upload(
    mut multipart: Multipart,
) -> Result<(String, Format, bytes::Bytes), ServerError> {
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_string();
        let format = Format::of(&name)
            .ok_or_else(|| bad("不支持的文件类型", "只支持.txt、.md、.docx或.epub文件"))?;
        let plain = matches!(format, Format::Text | Format::Markdown);
        let cap = if plain {
            MAX_UPLOAD_CONTENT
        } else {
            MAX_UPLOAD_BYTES
        };
        let mut bytes = bytes::BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > cap {
                return Err(if plain {
                    too_large("文件内容过大", "文件内容不能超过1MB")
                } else {
                    too_large("文件过大", "文件大小不能超过10MB")
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        return Result::Ok((name, format, bytes.freeze()));
    }
    Err(bad("获取上传文件失败", "no file part named file"))
}

/// An upload over its limit: `413`, worded like the reference.
fn too_large(message: &str, details: &str) -> ServerError {
    ServerError::UploadTooLarge {
        message: message.into(),
        details: details.into(),
    }
}

async fn upload_content(name: String, format: Format, bytes: bytes::Bytes) -> ApiResult {
    let plain = matches!(format, Format::Text | Format::Markdown);
    if plain && bytes.contains(&0) {
        return Err(bad("文件格式无效", "文件包含二进制内容"));
    }
    // Archives are unpacked off the async workers.
    let content = tokio::task::spawn_blocking(move || upload::extract(format, &bytes))
        .await
        .map_err(|e| ServerError::internal(format!("读取文件失败: {e}")))?
        .map_err(|e| bad("文件格式无效", e.to_string()))?;
    if content.len() > MAX_UPLOAD_CONTENT {
        return Err(too_large("文件内容过大", "文件内容不能超过1MB"));
    }
    if format == Format::Markdown {
        let lowered = content.to_lowercase();
        if ["<script", "javascript:", "data:text/html"]
            .iter()
            .any(|p| lowered.contains(p))
        {
            return Err(bad("文件内容不安全", "文件包含潜在危险内容"));
        }
    }
    if content.split('\n').any(|line| line.len() > 10_000) {
        return Err(bad("文件内容格式异常", "文件包含过长的单行内容"));
    }
    Result::Ok(
        Ok::data(json!({"filename": name, "size": content.len(), "content": content}))
            .message("文件上传成功"),
    )
}

#[derive(Deserialize)]
pub struct TextRequest {
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

impl TextRequest {
    fn validate(&self, max_text: usize) -> Result<(), ServerError> {
        if self.title.is_empty() {
            return Err(bad("请求参数错误", "title is required"));
        }
        if self.text.trim().is_empty() {
            return Err(bad("请求参数错误", "text is required"));
        }
        if self.title.len() > MAX_TITLE_BYTES {
            return Err(bad("标题过长", "标题不能超过200个字符"));
        }
        if self.text.len() > max_text {
            return Err(bad(
                "文本内容过长",
                format!("文本内容不能超过{max_text}个字节"),
            ));
        }
        Result::Ok(())
    }
}

pub async fn analyze_async(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    ApiJson(body): ApiJson<TextRequest>,
) -> ApiResult {
    body.validate(MAX_ANALYZE_BYTES)?;
    state.require_llm()?;
    let input = AnalyzeInput {
        title: body.title,
        text: body.text,
        owner: identity.user_id.clone(),
        user: document_user(&identity).to_string(),
    };
    let input = serde_json::to_value(&input).map_err(ServerError::internal)?;
    let job = state
        .jobs
        .submit(ANALYZE_KIND, &identity.user_id, &input, "任务初始化中...")
        .await
        .map_err(ServerError::store)?;
    Result::Ok(
        Ok::data(json!({"task_id": job.id, "message": "文本分析已开始，请订阅进度更新"}))
            .message("文本分析请求已接受"),
    )
}

/// `error.message` of a synchronous analysis that failed (spec/scenes.md §7.5.2).
const CREATE_FAILED: &str = "创建场景失败";

pub async fn create(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    ApiJson(body): ApiJson<TextRequest>,
) -> ApiResult {
    body.validate(MAX_TEXT_BYTES)?;
    // The reference's advice instead of the status text on this route.
    state.require_llm().map_err(|_| ServerError::LlmNotReady {
        details: "请在设置中配置LLM API密钥后重试".into(),
    })?;
    let request = AnalysisRequest {
        scene_id: None,
        title: &body.title,
        text: &body.text,
        owner: &identity.user_id,
        user: document_user(&identity),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    // A client that goes away stops the analysis.
    let _stop_on_drop = cancel.clone().drop_guard();
    let draft = analyze(
        &state.llm,
        &state.config.analysis,
        &request,
        &cancel,
        |_, _| async { Result::Ok(()) },
    )
    .await
    .map_err(|e| match e {
        AnalysisError::Llm(e)
        | AnalysisError::Chunk {
            error: e @ sceneintruder_llm::LlmError::NotReady(_),
            ..
        } => ServerError::from_llm(CREATE_FAILED, e),
        other => ServerError::failed(CREATE_FAILED, failure_text(&other)),
    })?;
    scenes::create(&state.db, &draft).await?;
    Result::Ok(
        Ok::data(&draft.scene)
            .status(StatusCode::CREATED)
            .message("场景创建成功"),
    )
}

#[derive(Deserialize)]
pub struct ShellRequest {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
}

pub async fn shell(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    ApiJson(body): ApiJson<ShellRequest>,
) -> ApiResult {
    let title = body.title.trim();
    if title.is_empty() {
        return Err(bad("标题不能为空", "title is required"));
    }
    if title.len() > MAX_TITLE_BYTES {
        return Err(bad("标题过长", "标题不能超过200个字符"));
    }
    let description = match body.description.trim() {
        "" => "用于独立 Comics 工作流的空白场景",
        d => d,
    };
    let now = rfc3339_nano_local();
    let id = new_id("scene");
    let user = document_user(&identity);
    let scene = Scene {
        id: id.clone(),
        user_id: user.to_string(),
        title: title.to_string(),
        description: description.to_string(),
        source: "comic_standalone".into(),
        created_at: now.clone(),
        last_accessed: ZERO_TIME.into(),
        last_updated: now,
        ..Scene::default()
    };
    let draft = scenes::Draft {
        settings: default_settings(&id, user),
        scene,
        owner: identity.user_id.clone(),
        original_text: None,
        segments: Vec::new(),
        characters: Vec::new(),
        items: Vec::new(),
    };
    scenes::create(&state.db, &draft).await?;
    Result::Ok(Ok::data(&draft.scene).message("comics 场景创建成功"))
}

/// Served from the response cache while no scene changed since it was built (and, with
/// `check_database`, while the stored versions agree: another server may have written).
pub async fn list(
    State(state): State<Arc<AppState>>,
    identity: Identity,
) -> Result<Response, ServerError> {
    const MESSAGE: &str = "场景列表获取成功";
    let owner = scenes::list_owner(&identity);
    let key = Key::List(owner.clone());
    let generation = state.db.changes().all_scenes();
    let stored = if state.views.check_database {
        state
            .db
            .scenes()
            .list_version(owner.as_deref())
            .await
            .map_err(ServerError::store)?
    } else {
        (0, 0)
    };
    if let Some(hit) = state.views.get(&key, generation)
        && hit.stored == stored
    {
        return Result::Ok(raw_data(&hit.body, MESSAGE));
    }
    let mut built = scenes::listing(&state.db, &identity).await?;
    built.stored = stored;
    Result::Ok(answer_and_keep(&state, key, generation, built, MESSAGE))
}

/// Answer with a freshly built body and keep it for the next reads.
fn answer_and_keep(
    state: &AppState,
    key: Key,
    generation: u64,
    built: scenes::Built,
    message: &str,
) -> Response {
    let response = raw_data(&built.body, message);
    state.views.put(
        key,
        Entry {
            body: built.body,
            generation,
            stored: built.stored,
            owner: built.owner,
        },
    );
    response
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    const MESSAGE: &str = "场景数据获取成功";
    let missing = || ServerError::SceneNotFound { id: id.clone() };
    if !scenes::valid_id(&id) {
        return Err(missing());
    }
    let key = Key::Scene(id.clone());
    // Noted before the database is read: a write after this point makes the entry stale.
    let generation = state.db.changes().scene(&id);
    if let Some(hit) = state.views.get(&key, generation) {
        let current = !state.views.check_database
            || state
                .db
                .scenes()
                .version(&id)
                .await
                .map_err(ServerError::store)?
                == Some(hit.stored.0);
        if current {
            return match &hit.owner {
                Some(owner) if identity.may_manage(owner) => {
                    Result::Ok(raw_data(&hit.body, MESSAGE))
                }
                _ => Err(missing()),
            };
        }
    }
    let built = scenes::detail(&state.db, &id).await?.ok_or_else(missing)?;
    if !built
        .owner
        .as_deref()
        .is_some_and(|o| identity.may_manage(o))
    {
        return Err(missing());
    }
    Result::Ok(answer_and_keep(&state, key, generation, built, MESSAGE))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let _writer = state.locks.lock(&format!("scene:{id}")).await;
    let deleted = state
        .db
        .scenes()
        .delete(&id)
        .await
        .map_err(|e| ServerError::store_in("删除场景失败", e))?;
    if !deleted {
        return Err(ServerError::SceneNotFound { id });
    }
    Result::Ok(Ok::data(json!({"scene_id": id})).message("场景删除成功"))
}

pub async fn characters(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let all = scenes::characters(&state.db, &id).await?;
    Result::Ok(Ok::data(all).message("角色列表获取成功"))
}

pub async fn character(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, character_id)): Path<(String, String)>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let found = scenes::characters(&state.db, &id)
        .await?
        .into_iter()
        .find(|c| c.id == character_id)
        .ok_or(ServerError::CharacterNotFound { id: character_id })?;
    Result::Ok(Ok::data(found).message("角色信息获取成功"))
}

/// The reference's lenient integer: the leading digits of the text (`20abc` is 20).
fn leading_int(text: Option<&String>) -> Option<i64> {
    let text = text?.trim();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse::<i64>().ok().map(|n| sign * n)
}

pub async fn conversations(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    // 0, negative or unparsable: the default; at most 1000.
    let limit = match leading_int(query.get("limit")) {
        Some(n) if n > 0 => n.min(1000),
        _ => 20,
    };
    let page = leading_int(query.get("page"))
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let paginated = query.get("paginated").map(String::as_str) == Some("true");
    let skip = if paginated { (page - 1) * limit } else { 0 };
    let (lines, total) = scenes::conversations(&state.db, &id, limit, skip).await?;
    let mut response = Ok::data(lines).message("对话历史获取成功");
    if paginated {
        response = response.meta(json!({
            "page": page,
            "per_page": limit,
            "total": total,
            "total_pages": (total + limit - 1) / limit,
        }));
    }
    Result::Ok(response)
}

pub async fn list_items(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let all = scenes::items(&state.db, &id).await?;
    let total = all.len();
    let (owned, scene_items): (Vec<Item>, Vec<Item>) =
        all.into_iter().partition(scenes::inventory_only);
    Result::Ok(
        Ok::data(json!({"scene_items": scene_items, "owned_items": owned, "total": total}))
            .message("物品列表获取成功"),
    )
}

/// An item body: any subset of the fields, but the right types.
fn item_body(body: Value) -> Result<Item, ServerError> {
    crate::domain::limits::document(&body)?;
    serde_json::from_value(body).map_err(|e| bad("无效的请求数据", e.to_string()))
}

pub async fn add_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let mut item = item_body(body)?;
    let now = rfc3339_nano_local();
    item.id = new_id("item");
    item.scene_id = id;
    item.created_at = now.clone();
    item.last_updated = now;
    scenes::put_item(&state.db, &item).await?;
    Result::Ok(
        Ok::data(&item)
            .status(StatusCode::CREATED)
            .message("物品添加成功"),
    )
}

pub async fn show_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, item_id)): Path<(String, String)>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let item = scenes::item(&state.db, &id, &item_id).await?;
    Result::Ok(Ok::data(item).message("物品信息获取成功"))
}

pub async fn update_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, item_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    if !valid_id(&item_id) {
        return Err(ServerError::NotFound {
            resource: Resource::Item,
        });
    }
    let mut item = item_body(body)?;
    let _writer = state.locks.lock(&format!("scene:{id}")).await;
    // A replaced item keeps when it was created.
    let existing = match scenes::item(&state.db, &id, &item_id).await {
        Result::Ok(existing) => Some(existing),
        Err(ServerError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let now = rfc3339_nano_local();
    item.created_at = existing
        .map(|e| e.created_at)
        .unwrap_or_else(|| now.clone());
    item.id = item_id;
    item.scene_id = id;
    item.last_updated = now;
    scenes::put_item(&state.db, &item).await?;
    Result::Ok(Ok::data(&item).message("物品更新成功"))
}

pub async fn delete_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((id, item_id)): Path<(String, String)>,
) -> ApiResult {
    scenes::load(&state.db, &identity, &id).await?;
    let missing = ServerError::NotFound {
        resource: Resource::Item,
    };
    if !valid_id(&item_id) {
        return Err(missing);
    }
    let deleted = state
        .db
        .scenes()
        .delete_item(&id, &item_id)
        .await
        .map_err(|e| ServerError::store_in("删除物品失败", e))?;
    if !deleted {
        return Err(missing);
    }
    Result::Ok(Ok::empty().message("物品删除成功"))
}

/// Query flags of the aggregate view: true only for the exact string `true`.
fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_none_or(|v| v == "true")
}

pub async fn aggregate(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let row = scenes::load(&state.db, &identity, &id).await?;
    let limit = match leading_int(query.get("conversation_limit")) {
        Some(n) if n > 1000 => {
            return Err(bad(
                "获取场景数据失败",
                "选项验证失败: 对话限制不能超过1000",
            ));
        }
        Some(n) if n > 0 => n,
        _ => 20,
    };
    let mut scene = scenes::scene_of(&row)?;
    let characters = scenes::characters(&state.db, &id).await?;
    scene.character_count = characters.len();
    scene.item_count = scenes::items(&state.db, &id).await?.len();
    let (recent, _) = scenes::conversations(&state.db, &id, limit, 0).await?;
    let now = rfc3339_nano_local();
    // The story (made on first use, like `GET …/story`); a story that cannot be made is
    // `null`, as in the reference.
    let story = if query.get("include_story").is_none_or(|v| v == "true") {
        match state.stories.get_or_create(&identity, &id).await {
            Result::Ok(story) => Some(story),
            Err(ServerError::StoryNotFound) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let story_data = match &story {
        Some(story) => Some(state.stories.reading(story).await?),
        None => None,
    };
    let current_node = story.as_ref().and_then(|s| s.active_node()).cloned();
    let available_choices = match &current_node {
        None => json!([]),
        Some(node) => {
            let open: Vec<_> = node
                .choices
                .iter()
                .flatten()
                .filter(|c| !c.selected)
                .collect();
            if open.is_empty() {
                Value::Null
            } else {
                json!(open)
            }
        }
    };
    let (revealed, total) = story_data.as_ref().map_or((0, 0), |d| {
        (
            d.nodes.iter().filter(|n| n.is_revealed).count(),
            d.nodes.len(),
        )
    });
    // Progress heuristics over the recent lines and the story's revealed share.
    let progress = flag(&query, "include_progress").then(|| {
        let text: String = recent
            .iter()
            .map(|c| c.content.to_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        let themes = scene.themes.clone().unwrap_or_default();
        let seen = themes
            .iter()
            .filter(|t| !t.is_empty() && text.contains(&t.to_lowercase()))
            .count();
        let ratio = if themes.is_empty() {
            0.0
        } else {
            seen as f64 / themes.len() as f64
        };
        let era_mentions = if scene.era.is_empty() {
            0
        } else {
            recent
                .iter()
                .filter(|c| c.content.contains(&scene.era))
                .count()
        };
        let mut achievements = Vec::new();
        if ratio >= 0.5 {
            achievements.push("theme_explorer");
        }
        if ratio >= 1.0 {
            achievements.push("narrative_master");
        }
        if era_mentions >= 3 {
            achievements.push("history_enthusiast");
        }
        if chrono::Utc::now().timestamp_millis() - row.created_at > 7 * 24 * 3600 * 1000 {
            achievements.push("veteran_player");
        }
        let share = if total > 0 {
            revealed as f64 / total as f64
        } else {
            0.0
        };
        if share >= 0.5 {
            achievements.push("story_explorer");
        }
        if recent.len() >= 10 {
            achievements.push("social_butterfly");
        }
        let mut unlocked: Vec<String> = if scene.era.is_empty() {
            Vec::new()
        } else {
            vec![format!("深入了解了{}时代", scene.era)]
        };
        if let Some(data) = &story_data {
            unlocked.extend(
                data.nodes
                    .iter()
                    .filter(|n| n.is_revealed && n.node_type == "unlock")
                    .map(|n| n.content.clone()),
            );
        }
        json!({
            "story_completion": (share + (recent.len() as f64 / 50.0).min(0.2)).min(1.0),
            "character_interactions": recent.len(),
            "unlocked_content": unlocked,
            "achievements": achievements,
        })
    });
    let ui_state = flag(&query, "include_ui_state").then(|| {
        json!({
            "selected_character_ids": characters.first().map(|c| vec![c.id.clone()]).unwrap_or_default(),
            "current_tab": "chat",
            "story_tree_expanded": false,
            "chat_view_mode": "normal",
            "notifications": if total > 0 {
                json!([{"id": "welcome", "type": "info", "message": format!("欢迎来到{}", scene.title),
                        "actions": ["确定"], "timestamp": now}])
            } else {
                json!([])
            },
        })
    });
    Result::Ok(
        Ok::data(json!({
            "scene": scene,
            "characters": characters,
            "story": story_data,
            "current_node": current_node,
            "available_choices": available_choices,
            "recent_conversations": flag(&query, "include_conversations").then_some(recent),
            "ui_state": ui_state,
            "progress": progress,
            "last_updated": now,
            "version": "1.0",
        }))
        .message("场景聚合数据获取成功"),
    )
}
