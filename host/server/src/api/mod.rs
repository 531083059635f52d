//! HTTP layer: one router module per area. Handlers extract and validate, call the domain,
//! and wrap the result in the envelope.

mod auth;
// No route serves a blob yet: the comic image routes (issue 14) are the first users.
#[allow(dead_code)]
pub mod blob_response;
mod body_limit;
pub mod chat;
pub mod cors;
pub mod envelope;
mod exports;
mod extract;
pub mod guard;
mod health;
mod interactions;
mod jobs;
pub mod metrics;
mod middleware;
mod plugins;
mod progress;
pub mod rate_limit;
pub mod response_cache;
mod scenes;
mod settings;
pub mod story;
mod users;
mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::AppState;
use crate::domain::users::{Item, Skill};
use crate::error::ServerError;

pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.body_limit_bytes;
    let cors_state = state.clone();
    Router::new()
        .route("/metrics", get(metrics::render))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/config/health", get(health::health))
        .route("/api/plugins", get(plugins::list))
        .route("/api/plugins/reload", post(plugins::reload))
        .route("/api/plugins/{id}", get(plugins::show))
        .route("/api/settings", get(settings::show).post(settings::save))
        .route(
            "/api/settings/test-connection",
            post(settings::test_connection),
        )
        .route("/api/llm/status", get(settings::llm_status))
        .route("/api/llm/models", get(settings::llm_models))
        .route("/api/llm/config", axum::routing::put(settings::update_llm))
        .route("/api/config/metrics", get(settings::config_metrics))
        .route("/api/chat", post(chat::chat))
        .route("/api/chat/emotion", post(chat::emotion))
        .route("/api/interactions/trigger", post(interactions::trigger))
        .route("/api/interactions/simulate", post(interactions::simulate))
        .route("/api/interactions/aggregate", post(interactions::aggregate))
        .route("/api/interactions/{scene_id}", get(interactions::history))
        .route(
            "/api/interactions/{scene_id}/{character1_id}/{character2_id}",
            get(interactions::pair),
        )
        .route(
            "/api/upload",
            post(scenes::upload).layer(axum::Extension(scenes::UploadSlots::new(
                state.config.http_limits.max_concurrent_uploads,
            ))),
        )
        .route("/api/analyze", post(scenes::analyze_async))
        .route("/api/scenes", get(scenes::list).post(scenes::create))
        .route("/api/scenes/shell", post(scenes::shell))
        .route("/api/scenes/{id}", get(scenes::show).delete(scenes::delete))
        .route("/api/scenes/{id}/characters", get(scenes::characters))
        .route(
            "/api/scenes/{id}/characters/{character_id}",
            get(scenes::character),
        )
        .route("/api/scenes/{id}/conversations", get(scenes::conversations))
        .route(
            "/api/scenes/{id}/nodes/{node_id}/content",
            get(story::node_content),
        )
        .route("/api/scenes/{id}/aggregate", get(scenes::aggregate))
        .route("/api/scenes/{id}/story", get(story::get_story))
        .route("/api/scenes/{id}/story/choice", post(story::choice))
        .route("/api/scenes/{id}/story/advance", post(story::advance))
        .route("/api/scenes/{id}/story/command", post(story::command))
        .route(
            "/api/scenes/{id}/story/nodes/{node_id}/insert",
            post(story::insert),
        )
        .route("/api/scenes/{id}/story/rewind", post(story::rewind))
        .route("/api/scenes/{id}/story/branches", get(story::branches))
        .route("/api/scenes/{id}/story/choices", get(story::choices))
        .route("/api/scenes/{id}/story/batch", post(story::batch))
        .route(
            "/api/scenes/{id}/story/tasks/{task_id}/objectives/{objective_id}/complete",
            post(story::complete_objective),
        )
        .route(
            "/api/scenes/{id}/story/locations/{location_id}/unlock",
            post(story::unlock),
        )
        .route(
            "/api/scenes/{id}/story/locations/{location_id}/explore",
            post(story::explore),
        )
        .route("/api/scenes/{id}/export/scene", get(exports::scene))
        .route(
            "/api/scenes/{id}/export/interactions",
            get(exports::interactions),
        )
        .route("/api/scenes/{id}/export/story", get(exports::story))
        .route("/api/exports/formats", get(exports::formats))
        .route(
            "/api/scenes/{id}/items",
            get(scenes::list_items).post(scenes::add_item),
        )
        .route(
            "/api/scenes/{id}/items/{item_id}",
            get(scenes::show_item)
                .put(scenes::update_item)
                .delete(scenes::delete_item),
        )
        .route("/api/progress/{task_id}", get(progress::progress))
        .route("/api/cancel/{task_id}", post(progress::cancel))
        .route("/api/jobs/diagnostics", post(jobs::diagnostics))
        .route("/api/jobs/{task_id}", get(jobs::show))
        .route("/api/users/{user_id}", get(users::show).put(users::update))
        .route(
            "/api/users/{user_id}/preferences",
            get(users::preferences).put(users::set_preferences),
        )
        .route(
            "/api/users/{user_id}/items",
            get(users::list::<Item>).post(users::add::<Item>),
        )
        .route(
            "/api/users/{user_id}/items/{item_id}",
            get(users::show_one::<Item>)
                .put(users::replace::<Item>)
                .delete(users::delete::<Item>),
        )
        .route(
            "/api/users/{user_id}/skills",
            get(users::list::<Skill>).post(users::add::<Skill>),
        )
        .route(
            "/api/users/{user_id}/skills/{skill_id}",
            get(users::show_one::<Skill>)
                .put(users::replace::<Skill>)
                .delete(users::delete::<Skill>),
        )
        .route("/api/ws/status", get(ws::status))
        .route("/api/ws/cleanup", post(ws::cleanup))
        .route("/ws/scene/{id}", get(ws::scene))
        .route("/ws/user/status", get(ws::user_status))
        .fallback(not_found)
        // The reference has no 405: a wrong method is an unknown endpoint.
        .method_not_allowed_fallback(not_found)
        // Inner to `resolve`: buckets are keyed by the resolved identity.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::resolve,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .with_state(state)
        // Extractor rejections (plain text) become envelopes; inside the request id scope.
        .layer(axum::middleware::from_fn(middleware::envelope_rejections))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            body_limit::check_declared_length,
        ))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        // Inside CORS, so a refusal still tells an allowed page why.
        .layer(axum::middleware::from_fn_with_state(
            cors_state.clone(),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(cors_state, cors::cors))
        .layer(axum::middleware::from_fn(middleware::request_context))
}

async fn not_found(uri: Uri) -> ServerError {
    ServerError::RouteNotFound {
        path: uri.path().to_string(),
    }
}
