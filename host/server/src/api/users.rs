//! `/api/users/{user_id}`: profile, preferences, items, skills — owner only.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::envelope::{ApiResult, Ok};
use super::extract::ApiJson;
use crate::app::AppState;
use crate::auth::{GUEST, Identity, valid_username};
use crate::domain::users::{self, Entry, Preferences, ProfileUpdate, valid_entry_id};
use crate::error::{Resource, ServerError};

/// The path's user must be the caller: guests may use only `console_user`.
fn owner(identity: &Identity, user_id: &str) -> Result<(), ServerError> {
    if !(valid_username(user_id) || user_id == GUEST) {
        return Err(ServerError::bad_request(
            "无效的用户ID",
            "user ids are 1-64 characters of letters, digits, _ . -",
        ));
    }
    if identity.user_id == user_id {
        return Result::Ok(());
    }
    Err(if identity.authenticated {
        ServerError::ForbiddenWith {
            message: "Access denied: Cannot access other users' data".into(),
        }
    } else {
        ServerError::ForbiddenWith {
            message: "Authentication required".into(),
        }
    })
}

fn entry_id(id: &str, resource: Resource) -> Result<(), ServerError> {
    if valid_entry_id(id) {
        Result::Ok(())
    } else {
        // A malformed id names nothing that can exist.
        Err(ServerError::NotFound { resource })
    }
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let profile = users::load(&state.db, &user_id).await?;
    Result::Ok(Ok::data(profile).message("用户档案获取成功"))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    crate::domain::limits::document(&update)?;
    let mut update = Some(update);
    let (profile, ()) = users::modify(&state.db, &state.locks, &user_id, |p| {
        if let Some(u) = update.take() {
            users::apply_update(p, u);
        }
        Result::Ok(())
    })
    .await?;
    Result::Ok(Ok::data(profile).message("用户档案更新成功"))
}

pub async fn preferences(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let profile = users::load(&state.db, &user_id).await?;
    Result::Ok(Ok::data(profile.preferences).message("用户偏好获取成功"))
}

pub async fn set_preferences(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
    ApiJson(preferences): ApiJson<Preferences>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    crate::domain::limits::document(&preferences)?;
    let (profile, ()) = users::modify(&state.db, &state.locks, &user_id, |p| {
        p.preferences = preferences.clone();
        Result::Ok(())
    })
    .await?;
    Result::Ok(Ok::data(profile.preferences).message("用户偏好更新成功"))
}

/// `GET .../items` or `.../skills`.
pub async fn list<E: Entry>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let mut profile = users::load(&state.db, &user_id).await?;
    Result::Ok(Ok::data(E::list(&mut profile).clone()).message(E::MESSAGES[0]))
}

/// `POST .../items` or `.../skills`.
pub async fn add<E: Entry>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
    ApiJson(entry): ApiJson<E>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    crate::domain::limits::document(&entry)?;
    let (_, entry) = users::modify(&state.db, &state.locks, &user_id, |p| {
        users::add_entry(p, entry.clone())
    })
    .await?;
    Result::Ok(
        Ok::data(entry)
            .status(StatusCode::CREATED)
            .message(E::MESSAGES[1]),
    )
}

/// `GET .../items/{id}` or `.../skills/{id}`.
pub async fn show_one<E: Entry>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&id, E::RESOURCE)?;
    let mut profile = users::load(&state.db, &user_id).await?;
    let entry = E::list(&mut profile)
        .iter()
        .find(|e| e.id() == id)
        .cloned()
        .ok_or(ServerError::NotFound {
            resource: E::RESOURCE,
        })?;
    Result::Ok(Ok::data(entry).message(E::MESSAGES[2]))
}

/// `PUT .../items/{id}` or `.../skills/{id}`.
pub async fn replace<E: Entry>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, id)): Path<(String, String)>,
    ApiJson(entry): ApiJson<E>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    crate::domain::limits::document(&entry)?;
    entry_id(&id, E::RESOURCE)?;
    let (_, entry) = users::modify(&state.db, &state.locks, &user_id, |p| {
        users::replace_entry(p, &id, entry.clone())
    })
    .await?;
    Result::Ok(Ok::data(entry).message(E::MESSAGES[3]))
}

/// `DELETE .../items/{id}` or `.../skills/{id}`.
pub async fn delete<E: Entry>(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, id)): Path<(String, String)>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&id, E::RESOURCE)?;
    users::modify(&state.db, &state.locks, &user_id, |p| {
        users::remove_entry::<E>(p, &id)
    })
    .await?;
    Result::Ok(Ok::empty().message(E::MESSAGES[4]))
}
