//! `/api/users/{user_id}`: profile, preferences, items, skills — owner only.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::envelope::{ApiResult, Ok};
use super::extract::ApiJson;
use crate::app::AppState;
use crate::auth::{GUEST, Identity, valid_username};
use crate::domain::users::{self, Item, Preferences, ProfileUpdate, Skill, valid_entry_id};
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
    let (profile, ()) = users::modify(&state.db, &state.locks, &user_id, |p| {
        p.preferences = preferences.clone();
        Result::Ok(())
    })
    .await?;
    Result::Ok(Ok::data(profile.preferences).message("用户偏好更新成功"))
}

pub async fn items(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let profile = users::load(&state.db, &user_id).await?;
    Result::Ok(Ok::data(profile.items).message("用户物品列表获取成功"))
}

pub async fn add_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
    ApiJson(item): ApiJson<Item>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let (_, item) = users::modify(&state.db, &state.locks, &user_id, |p| {
        users::add_item(p, item.clone())
    })
    .await?;
    Result::Ok(
        Ok::data(item)
            .status(StatusCode::CREATED)
            .message("物品添加成功"),
    )
}

pub async fn item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, item_id)): Path<(String, String)>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&item_id, Resource::Item)?;
    let profile = users::load(&state.db, &user_id).await?;
    let item =
        profile
            .items
            .into_iter()
            .find(|i| i.id == item_id)
            .ok_or(ServerError::NotFound {
                resource: Resource::Item,
            })?;
    Result::Ok(Ok::data(item).message("物品信息获取成功"))
}

pub async fn replace_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, item_id)): Path<(String, String)>,
    ApiJson(item): ApiJson<Item>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&item_id, Resource::Item)?;
    let (_, item) = users::modify(&state.db, &state.locks, &user_id, |p| {
        users::replace_item(p, &item_id, item.clone())
    })
    .await?;
    Result::Ok(Ok::data(item).message("物品更新成功"))
}

pub async fn delete_item(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, item_id)): Path<(String, String)>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&item_id, Resource::Item)?;
    users::modify(&state.db, &state.locks, &user_id, |p| {
        users::remove_item(p, &item_id)
    })
    .await?;
    Result::Ok(Ok::empty().message("物品删除成功"))
}

pub async fn skills(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let profile = users::load(&state.db, &user_id).await?;
    Result::Ok(Ok::data(profile.skills).message("用户技能列表获取成功"))
}

pub async fn add_skill(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path(user_id): Path<String>,
    ApiJson(skill): ApiJson<Skill>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    let (_, skill) = users::modify(&state.db, &state.locks, &user_id, |p| {
        users::add_skill(p, skill.clone())
    })
    .await?;
    Result::Ok(
        Ok::data(skill)
            .status(StatusCode::CREATED)
            .message("技能添加成功"),
    )
}

pub async fn skill(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, skill_id)): Path<(String, String)>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&skill_id, Resource::Skill)?;
    let profile = users::load(&state.db, &user_id).await?;
    let skill = profile
        .skills
        .into_iter()
        .find(|s| s.id == skill_id)
        .ok_or(ServerError::NotFound {
            resource: Resource::Skill,
        })?;
    Result::Ok(Ok::data(skill).message("技能信息获取成功"))
}

pub async fn replace_skill(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, skill_id)): Path<(String, String)>,
    ApiJson(skill): ApiJson<Skill>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&skill_id, Resource::Skill)?;
    let (_, skill) = users::modify(&state.db, &state.locks, &user_id, |p| {
        users::replace_skill(p, &skill_id, skill.clone())
    })
    .await?;
    Result::Ok(Ok::data(skill).message("技能更新成功"))
}

pub async fn delete_skill(
    State(state): State<Arc<AppState>>,
    identity: Identity,
    Path((user_id, skill_id)): Path<(String, String)>,
) -> ApiResult {
    owner(&identity, &user_id)?;
    entry_id(&skill_id, Resource::Skill)?;
    users::modify(&state.db, &state.locks, &user_id, |p| {
        users::remove_skill(p, &skill_id)
    })
    .await?;
    Result::Ok(Ok::empty().message("技能删除成功"))
}
