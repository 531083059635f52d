//! The server's error type and its one mapping to envelope codes and HTTP statuses.

use axum::http::StatusCode;

use crate::domain::export::ExportKind;

/// Every failure a handler can report. `code()` and `status()` are the only place where
/// errors become wire codes (spec/platform.md §3).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{message}")]
    BadRequest { message: String, details: String },
    #[error("API endpoint not found")]
    RouteNotFound { path: String },
    #[error("{resource:?} not found")]
    NotFound { resource: Resource },
    #[error("conflict")]
    Conflict { details: String },
    #[error("rate limit exceeded")]
    RateLimited { retry_after: u64 },
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("task not found")]
    TaskNotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("forbidden: {message}")]
    ForbiddenWith { message: String },
    #[error("too many connections")]
    TooManyConnections,
    #[error("request body too large")]
    PayloadTooLarge,
    /// An upload over its own limit, worded like the reference (`文件过大`), as a 413.
    #[error("{message}")]
    UploadTooLarge { message: String, details: String },
    #[error("configuration is not valid")]
    InvalidConfig { details: String },
    #[error("LLM service not configured")]
    LlmNotConfigured { details: String },
    #[error("LLM service not ready")]
    ConnectionFailed { details: String },
    #[error("connection test failed")]
    ConnectionTestFailed { details: String },
    #[error("internal error")]
    Internal { details: String },
    /// A model-backed action that ran past its deadline (408, worded for the route).
    #[error("{message}")]
    RequestTimeout { message: String, details: String },
    /// Something a story action names does not exist: 404 `RESOURCE_NOT_FOUND` with the
    /// route's own message (`完成目标失败`) and the reference's details (`无效的任务或目标`).
    #[error("{message}")]
    Missing { message: String, details: String },
    /// A 500 worded for the route (`生成回应失败`, `执行故事选择失败`, ...), the cause in details.
    #[error("{message}")]
    Failed { message: String, details: String },
    /// An unknown scene, or one the caller may not see (the answer does not tell which).
    #[error("scene not found")]
    SceneNotFound { id: String },
    #[error("character not found")]
    CharacterNotFound { id: String },
    #[error("story node not found")]
    StoryNodeNotFound { details: String },
    /// No story for the scene and none can be made (or the scene is not the caller's).
    #[error("story not found")]
    StoryNotFound,
    /// No LLM provider can be called (status text in details).
    #[error("LLM not ready")]
    LlmNotReady { details: String },
    /// A state-changing request from a web page on another origin (cross-site request).
    #[error("cross-site request refused")]
    ForeignOrigin { origin: String },
    /// A `Host` this server is not meant to answer (DNS rebinding, a misrouted request).
    #[error("unknown host")]
    MisdirectedHost { host: String },
    /// A request body that is not of a type the route reads.
    #[error("unsupported media type")]
    UnsupportedMediaType { details: String },
    /// An export that could not be made (spec story-export §8.4).
    #[error("export failed")]
    Export(ExportFailure),
    /// A settings change refused by validation; the text is ours (it names the missing
    /// option, never a value), so it is not sanitised.
    #[error("invalid settings")]
    InvalidSettings { message: String, details: String },
    /// The database cannot be reached right now (down, restarting, network gone): `503
    /// DATABASE_UNAVAILABLE` on every route, so clients retry instead of reporting a bug.
    /// Made from a store error by [`ServerError::store`]; the cause goes to the log only.
    #[error("database unavailable")]
    DatabaseUnavailable { details: String },
    /// The disk holding the database is full: nothing was written (507).
    #[error("storage full")]
    StorageFull,
    /// A rejection made outside our handlers (an axum extractor's plain-text answer, an
    /// HTTP-level refusal): the status it had, the code [`status_code`] names for it.
    #[error("request rejected ({status})")]
    Rejected { status: StatusCode, details: String },
}

/// The envelope code of a bare HTTP status (rejections made outside our handlers).
pub fn status_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        406 => "NOT_ACCEPTABLE",
        408 => "REQUEST_TIMEOUT",
        409 => "CONFLICT",
        411 => "LENGTH_REQUIRED",
        413 => "PAYLOAD_TOO_LARGE",
        414 => "URI_TOO_LONG",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        416 => "RANGE_NOT_SATISFIABLE",
        422 => "UNPROCESSABLE_ENTITY",
        426 => "UPGRADE_REQUIRED",
        429 => "RATE_LIMIT_EXCEEDED",
        431 => "HEADERS_TOO_LARGE",
        501 => "NOT_IMPLEMENTED",
        503 => "SERVICE_UNAVAILABLE",
        400..=499 => "BAD_REQUEST",
        _ => "INTERNAL_ERROR",
    }
}

/// `error.details` of `DATABASE_UNAVAILABLE`.
pub const DATABASE_UNAVAILABLE_DETAILS: &str = "the database is unreachable; retry shortly";

/// Why an export failed.
#[derive(Debug, Clone)]
pub enum ExportFailure {
    /// No loaded exporter renders the requested format of this kind.
    FormatInvalid { available: Vec<String> },
    /// The render ran past its deadline.
    Timeout { kind: ExportKind },
    /// Nothing to export: the scene has no story (exports never make one).
    DataEmpty { kind: ExportKind },
    /// The output went past `[limits] export_max_bytes`.
    TooLarge { details: String },
    /// The plugin failed (trap, memory, its own error).
    Failed {
        kind: crate::domain::export::ExportKind,
        details: String,
    },
}

/// What a not-found error is about; picks the code like the reference's helper does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Plugin,
    Item,
    Skill,
    /// A stored blob with no more specific name.
    #[allow(dead_code)] // for blob routes without a resource of their own
    Blob,
    /// A comic frame's image (spec comics-video §3.19).
    #[allow(dead_code)] // the comic image routes come next (issue 14)
    ComicImage,
    /// A comic key element's reference image (spec comics-video §3.14).
    #[allow(dead_code)] // the comic reference routes come next (issue 14)
    ComicReference,
}

impl ServerError {
    /// A failed LLM call of operation `what`: not ready is `503 LLM_NOT_READY`, anything else
    /// a `500` whose details start with `what`.
    pub fn from_llm(what: &str, e: sceneintruder_llm::LlmError) -> Self {
        match e {
            sceneintruder_llm::LlmError::NotReady(status) => {
                ServerError::LlmNotReady { details: status }
            }
            other => ServerError::failed(what, other),
        }
    }

    /// The envelope error for a plain-text rejection of `status` whose text is `details`.
    pub fn rejection(status: StatusCode, details: impl Into<String>) -> Self {
        let details = details.into();
        match status {
            StatusCode::BAD_REQUEST => ServerError::bad_request("无效的请求", details),
            StatusCode::PAYLOAD_TOO_LARGE => ServerError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ServerError::UnsupportedMediaType { details },
            status => ServerError::Rejected { status, details },
        }
    }

    pub fn bad_request(message: impl Into<String>, details: impl Into<String>) -> Self {
        ServerError::BadRequest {
            message: message.into(),
            details: details.into(),
        }
    }

    /// A 500 with the route's own message and the cause in details.
    pub fn failed(message: &str, details: impl std::fmt::Display) -> Self {
        ServerError::Failed {
            message: message.to_string(),
            details: details.to_string(),
        }
    }

    pub fn internal(details: impl std::fmt::Display) -> Self {
        ServerError::Internal {
            details: details.to_string(),
        }
    }

    /// A failed store call: `503 DATABASE_UNAVAILABLE` when the database could not be
    /// reached, else `500 INTERNAL_ERROR` with the error in details. Use it (not `internal`)
    /// for every `StoreError`.
    pub fn store(e: sceneintruder_store::StoreError) -> Self {
        if e.is_unavailable() {
            return ServerError::unavailable(&e);
        }
        if e.is_full() {
            return ServerError::full(&e);
        }
        ServerError::internal(e)
    }

    /// [`ServerError::store`] whose `500` details start with `what` (`保存场景失败: ...`).
    pub fn store_in(what: &str, e: sceneintruder_store::StoreError) -> Self {
        if e.is_unavailable() {
            return ServerError::unavailable(&e);
        }
        if e.is_full() {
            return ServerError::full(&e);
        }
        ServerError::Internal {
            details: format!("{what}: {e}"),
        }
    }

    /// A route's own `500` (`获取故事数据失败`) around an error from below, except that an
    /// unreachable database stays `503 DATABASE_UNAVAILABLE`.
    pub fn failed_from(message: &str, e: ServerError) -> Self {
        match e {
            ServerError::DatabaseUnavailable { .. } | ServerError::StorageFull => e,
            other => ServerError::failed(message, other.details()),
        }
    }

    /// A failed blob-store call: a missing blob is the 404 of `missing`, an oversized one a
    /// 413, a key refused by validation a 400; anything else a 500 (cause in details).
    pub fn blob(missing: Resource, e: sceneintruder_blobs::BlobError) -> Self {
        use sceneintruder_blobs::BlobError;
        match e {
            BlobError::NotFound { .. } => ServerError::NotFound { resource: missing },
            BlobError::TooLarge { max, .. } => ServerError::UploadTooLarge {
                message: "文件过大".into(),
                details: format!("at most {max} bytes (max_object_bytes)"),
            },
            BlobError::InvalidKey { reason } => ServerError::bad_request("非法ID", reason),
            other => {
                // Backend errors name local paths and endpoints: the log gets them, the
                // client does not.
                tracing::error!(error = %other, "blob store call failed");
                ServerError::internal("the blob store failed; the server log has the cause")
            }
        }
    }

    /// `503 DATABASE_UNAVAILABLE` with the standard details.
    pub fn database_unavailable() -> Self {
        ServerError::DatabaseUnavailable {
            details: DATABASE_UNAVAILABLE_DETAILS.into(),
        }
    }

    fn full(cause: &sceneintruder_store::StoreError) -> Self {
        tracing::error!(error = %cause, "the disk holding the database is full; nothing was written");
        ServerError::StorageFull
    }

    fn unavailable(cause: &sceneintruder_store::StoreError) -> Self {
        tracing::warn!(error = %cause, "database unavailable");
        ServerError::database_unavailable()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ServerError::BadRequest { .. }
            | ServerError::InvalidConfig { .. }
            | ServerError::InvalidSettings { .. } => StatusCode::BAD_REQUEST,
            ServerError::RouteNotFound { .. } | ServerError::NotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            ServerError::PayloadTooLarge | ServerError::UploadTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ServerError::TaskNotFound
            | ServerError::Missing { .. }
            | ServerError::SceneNotFound { .. }
            | ServerError::CharacterNotFound { .. }
            | ServerError::StoryNodeNotFound { .. }
            | ServerError::StoryNotFound => StatusCode::NOT_FOUND,
            ServerError::LlmNotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::Conflict { .. } => StatusCode::CONFLICT,
            ServerError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServerError::Unauthorized | ServerError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ServerError::Forbidden
            | ServerError::ForbiddenWith { .. }
            | ServerError::ForeignOrigin { .. } => StatusCode::FORBIDDEN,
            ServerError::MisdirectedHost { .. } => StatusCode::MISDIRECTED_REQUEST,
            ServerError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServerError::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::LlmNotConfigured { .. }
            | ServerError::ConnectionFailed { .. }
            | ServerError::ConnectionTestFailed { .. }
            | ServerError::DatabaseUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServerError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            ServerError::Internal { .. } | ServerError::Failed { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ServerError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ServerError::Rejected { status, .. } => *status,
            ServerError::Export(failure) => match failure {
                ExportFailure::FormatInvalid { .. } => StatusCode::BAD_REQUEST,
                ExportFailure::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
                ExportFailure::DataEmpty { .. } => StatusCode::NOT_FOUND,
                ExportFailure::TooLarge { .. } | ExportFailure::Failed { .. } => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ServerError::BadRequest { .. } | ServerError::InvalidSettings { .. } => "BAD_REQUEST",
            ServerError::RouteNotFound { .. } => "NOT_FOUND",
            ServerError::NotFound { resource } => match resource {
                Resource::Plugin | Resource::Item | Resource::Skill | Resource::Blob => {
                    "RESOURCE_NOT_FOUND"
                }
                Resource::ComicImage => "COMIC_IMAGE_NOT_FOUND",
                Resource::ComicReference => "COMIC_REFERENCE_NOT_FOUND",
            },
            ServerError::PayloadTooLarge | ServerError::UploadTooLarge { .. } => {
                "PAYLOAD_TOO_LARGE"
            }
            ServerError::TaskNotFound => "TASK_NOT_FOUND",
            ServerError::SceneNotFound { .. } => "SCENE_NOT_FOUND",
            ServerError::CharacterNotFound { .. } => "CHARACTER_NOT_FOUND",
            ServerError::StoryNodeNotFound { .. }
            | ServerError::StoryNotFound
            | ServerError::Missing { .. } => "RESOURCE_NOT_FOUND",
            ServerError::LlmNotReady { .. } => "LLM_NOT_READY",
            ServerError::Conflict { .. } => "CONFLICT",
            ServerError::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            ServerError::Unauthorized => "UNAUTHORIZED",
            ServerError::InvalidCredentials => "INVALID_CREDENTIALS",
            ServerError::Forbidden
            | ServerError::ForbiddenWith { .. }
            | ServerError::ForeignOrigin { .. } => "FORBIDDEN",
            ServerError::MisdirectedHost { .. } => "MISDIRECTED_REQUEST",
            ServerError::UnsupportedMediaType { .. } => "UNSUPPORTED_MEDIA_TYPE",
            ServerError::TooManyConnections => "TOO_MANY_CONNECTIONS",
            ServerError::InvalidConfig { .. } => "INVALID_CONFIG",
            ServerError::LlmNotConfigured { .. } => "LLM_NOT_CONFIGURED",
            ServerError::ConnectionFailed { .. } => "CONNECTION_FAILED",
            ServerError::ConnectionTestFailed { .. } => "CONNECTION_TEST_FAILED",
            ServerError::DatabaseUnavailable { .. } => "DATABASE_UNAVAILABLE",
            ServerError::StorageFull => "STORAGE_FULL",
            ServerError::Internal { .. } | ServerError::Failed { .. } => "INTERNAL_ERROR",
            ServerError::RequestTimeout { .. } => "REQUEST_TIMEOUT",
            ServerError::Rejected { status, .. } => status_code(*status),
            ServerError::Export(failure) => match failure {
                ExportFailure::FormatInvalid { .. } => "EXPORT_FORMAT_INVALID",
                ExportFailure::Timeout { .. } => "EXPORT_TIMEOUT",
                ExportFailure::DataEmpty { .. } => "EXPORT_DATA_EMPTY",
                ExportFailure::TooLarge { .. } => "EXPORT_TOO_LARGE",
                ExportFailure::Failed { kind, .. } => match kind {
                    ExportKind::Scene => "INTERNAL_ERROR",
                    ExportKind::Interactions | ExportKind::Story => "EXPORT_FAILED",
                },
            },
        }
    }

    /// Human message (the reference's wording where clients may show it).
    pub fn message(&self) -> String {
        match self {
            ServerError::BadRequest { message, .. }
            | ServerError::InvalidSettings { message, .. } => message.clone(),
            ServerError::RouteNotFound { .. } => "API endpoint not found".into(),
            ServerError::NotFound { resource } => match resource {
                Resource::Plugin => "插件不存在".into(),
                Resource::Item => "物品不存在".into(),
                Resource::Skill => "技能不存在".into(),
                Resource::Blob => "文件不存在".into(),
                Resource::ComicImage => "图片不存在".into(),
                Resource::ComicReference => "参考图不存在".into(),
            },
            ServerError::PayloadTooLarge => "请求体过大".into(),
            ServerError::UploadTooLarge { message, .. } => message.clone(),
            ServerError::TaskNotFound => crate::realtime::progress::TASK_NOT_FOUND_MESSAGE.into(),
            ServerError::SceneNotFound { .. } => "场景不存在".into(),
            ServerError::CharacterNotFound { .. } => "角色不存在".into(),
            ServerError::StoryNodeNotFound { .. } => "故事节点不存在".into(),
            ServerError::StoryNotFound => "故事数据不存在".into(),
            ServerError::LlmNotReady { .. } => "LLM服务未配置或未就绪".into(),
            ServerError::Forbidden => "无权执行此操作".into(),
            ServerError::ForbiddenWith { message } => message.clone(),
            ServerError::ForeignOrigin { .. } => "Forbidden: cross-site request".into(),
            ServerError::MisdirectedHost { .. } => "Misdirected request".into(),
            ServerError::UnsupportedMediaType { .. } => "Unsupported media type".into(),
            ServerError::Conflict { .. } => "资源冲突".into(),
            ServerError::RateLimited { .. } => "Rate limit exceeded".into(),
            ServerError::Unauthorized => "Authentication required".into(),
            ServerError::InvalidCredentials => "用户名或密码错误".into(),
            ServerError::TooManyConnections => "连接数已达上限".into(),
            ServerError::InvalidConfig { .. } => "配置验证失败".into(),
            ServerError::LlmNotConfigured { .. } => "LLM service not configured".into(),
            ServerError::ConnectionFailed { .. } => "LLM service not ready".into(),
            ServerError::ConnectionTestFailed { .. } => "连接测试失败".into(),
            ServerError::DatabaseUnavailable { .. } => "数据库暂不可用".into(),
            ServerError::StorageFull => "存储空间不足".into(),
            ServerError::Internal { .. } => "服务器内部错误".into(),
            ServerError::Failed { message, .. }
            | ServerError::RequestTimeout { message, .. }
            | ServerError::Missing { message, .. } => message.clone(),
            ServerError::Rejected { status, .. } => status
                .canonical_reason()
                .unwrap_or("Request rejected")
                .into(),
            ServerError::Export(failure) => match failure {
                ExportFailure::FormatInvalid { .. } => "不支持的导出格式".into(),
                ExportFailure::Timeout { kind } => match kind {
                    ExportKind::Story => "导出操作超时".into(),
                    ExportKind::Scene | ExportKind::Interactions => {
                        "Export operation timed out".into()
                    }
                },
                ExportFailure::DataEmpty { kind } => match kind {
                    ExportKind::Story => "没有可导出的故事数据".into(),
                    ExportKind::Scene | ExportKind::Interactions => "没有可导出的数据".into(),
                },
                ExportFailure::TooLarge { .. } => "导出结果过大".into(),
                ExportFailure::Failed { kind, .. } => match kind {
                    ExportKind::Scene => "Failed to export scene data".into(),
                    ExportKind::Interactions => "导出互动摘要失败".into(),
                    ExportKind::Story => "导出故事文档失败".into(),
                },
            },
        }
    }

    pub fn details(&self) -> String {
        match self {
            ServerError::BadRequest { details, .. }
            | ServerError::InvalidSettings { details, .. }
            | ServerError::InvalidConfig { details }
            | ServerError::LlmNotConfigured { details }
            | ServerError::ConnectionFailed { details }
            | ServerError::ConnectionTestFailed { details }
            | ServerError::DatabaseUnavailable { details }
            | ServerError::Internal { details }
            | ServerError::Failed { details, .. }
            | ServerError::UploadTooLarge { details, .. }
            | ServerError::Missing { details, .. }
            | ServerError::RequestTimeout { details, .. } => details.clone(),
            ServerError::RouteNotFound { path } => path.clone(),
            ServerError::SceneNotFound { id } => format!("场景ID: {id}"),
            ServerError::CharacterNotFound { id } => format!("角色ID: {id}"),
            ServerError::LlmNotReady { details } | ServerError::StoryNodeNotFound { details } => {
                details.clone()
            }
            ServerError::NotFound { .. } => String::new(),
            ServerError::StoryNotFound => "故事数据不存在".into(),
            ServerError::PayloadTooLarge => "the request body exceeds body_limit_bytes".into(),
            ServerError::StorageFull => {
                "the disk holding the database is full; nothing was written. Free space and \
                 retry (the server recovers by itself)"
                    .into()
            }
            ServerError::TaskNotFound
            | ServerError::Forbidden
            | ServerError::ForbiddenWith { .. } => String::new(),
            ServerError::Conflict { details } => details.clone(),
            ServerError::RateLimited { retry_after } => {
                format!("Retry after {retry_after} seconds")
            }
            ServerError::Unauthorized => "log in and send Authorization: Bearer <token>".into(),
            ServerError::InvalidCredentials => "请检查您的登录凭据".into(),
            ServerError::TooManyConnections => "ws_max_connections reached".into(),
            ServerError::ForeignOrigin { origin } => {
                format!("Origin {origin} may not change anything here (see [http] allowed_origins)")
            }
            ServerError::MisdirectedHost { host } => {
                format!("this server does not answer to Host {host} (see [http] allowed_hosts)")
            }
            ServerError::UnsupportedMediaType { details }
            | ServerError::Rejected { details, .. } => details.clone(),
            ServerError::Export(failure) => match failure {
                ExportFailure::FormatInvalid { available } => {
                    format!("支持的格式: {}", available.join("/"))
                }
                ExportFailure::Timeout { kind } => match kind {
                    ExportKind::Story => "故事文档较大，请稍后重试".into(),
                    ExportKind::Scene | ExportKind::Interactions => {
                        "Please try again later or contact the administrator.".into()
                    }
                },
                ExportFailure::DataEmpty { kind } => match kind {
                    ExportKind::Story => "场景中没有故事记录".into(),
                    ExportKind::Scene | ExportKind::Interactions => "场景中没有互动记录".into(),
                },
                ExportFailure::TooLarge { details } | ExportFailure::Failed { details, .. } => {
                    details.clone()
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_store::StoreError;

    #[test]
    fn an_unreachable_database_is_a_503_and_other_store_errors_stay_500s() {
        let down = || StoreError::Unavailable("pool timed out".into());
        for e in [
            ServerError::store(down()),
            ServerError::store_in("保存场景失败", down()),
            ServerError::failed_from("获取故事数据失败", ServerError::store(down())),
        ] {
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.code(), "DATABASE_UNAVAILABLE");
            assert_eq!(e.message(), "数据库暂不可用");
            assert_eq!(e.details(), DATABASE_UNAVAILABLE_DETAILS);
        }
        let broken = ServerError::store_in("保存场景失败", StoreError::Corrupt("x".into()));
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(broken.code(), "INTERNAL_ERROR");
        assert!(broken.details().starts_with("保存场景失败: "), "{broken:?}");
    }
}
