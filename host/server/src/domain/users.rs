//! User profiles, preferences, items and skills (spec/platform.md §1.7, §8).
//!
//! One JSON document per user, changed by read-modify-write with optimistic locking, so
//! concurrent edits on one or several servers are never lost.

use sceneintruder_store::Database;
use serde::{Deserialize, Serialize};

use super::locks::KeyedLocks;
use crate::error::{Resource, ServerError};
use crate::time::rfc3339_nano_local;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preferences {
    #[serde(default)]
    pub creativity_level: String,
    #[serde(default)]
    pub allow_plot_twists: bool,
    #[serde(default)]
    pub response_length: String,
    #[serde(default)]
    pub language_style: String,
    #[serde(default)]
    pub notification_level: String,
    #[serde(default)]
    pub dark_mode: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preferred_model: String,
    #[serde(default)]
    pub auto_save: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            creativity_level: "BALANCED".into(),
            allow_plot_twists: true,
            response_length: "medium".into(),
            language_style: "casual".into(),
            notification_level: "important".into(),
            dark_mode: false,
            preferred_model: "qwen3-max".into(),
            auto_save: true,
        }
    }
}

/// An item or skill effect. `value` is an integer, as in the reference (1.5 is a 400).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Effect {
    #[serde(default)]
    pub target: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub value: i64,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duration: i64,
    #[serde(default)]
    pub probability: f64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Item {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(default)]
    pub effects: Vec<Effect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub updated: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Skill {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub category: String,
    #[serde(default)]
    pub effects: Vec<Effect>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cooldown: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub updated: String,
    /// Legacy single-effect form, read on input only.
    #[serde(default, skip_serializing)]
    pub effect: String,
}

/// The user document. Lists are always present (`[]`, never `null`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserProfile {
    pub id: String,
    pub username: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub avatar: String,
    pub created_at: String,
    pub last_login: String,
    pub last_updated: String,
    pub preferences: Preferences,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bio: String,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub skills: Vec<Skill>,
}

impl UserProfile {
    fn new(id: &str) -> UserProfile {
        let now = rfc3339_nano_local();
        UserProfile {
            id: id.to_string(),
            username: id.to_string(),
            email: format!("{id}@local"),
            avatar: String::new(),
            created_at: now.clone(),
            last_login: now.clone(),
            last_updated: now,
            preferences: Preferences::default(),
            display_name: String::new(),
            bio: String::new(),
            items: Vec::new(),
            skills: Vec::new(),
        }
    }
}

/// Profile fields `PUT /api/users/{id}` may change; empty strings are ignored.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ProfileUpdate {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub bio: String,
    #[serde(default)]
    pub avatar: String,
    #[serde(default)]
    pub preferences: Option<Preferences>,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn internal(message: &str, e: impl std::fmt::Display) -> ServerError {
    ServerError::Internal {
        details: format!("{message}: {e}"),
    }
}

/// The user's profile, created with defaults on first use.
pub async fn load(db: &Database, user_id: &str) -> Result<UserProfile, ServerError> {
    let repo = db.profiles();
    if let Some(stored) = repo.get(user_id).await.map_err(ServerError::store)? {
        return serde_json::from_str(&stored.document)
            .map_err(|e| internal("stored profile is not valid", e));
    }
    let fresh = UserProfile::new(user_id);
    let text = serde_json::to_string(&fresh).map_err(ServerError::internal)?;
    repo.create(user_id, &text, now_secs())
        .await
        .map_err(|e| ServerError::store_in("初始化用户数据失败", e))?;
    // Someone may have created it at the same time: read what is stored.
    let stored = repo
        .get(user_id)
        .await
        .map_err(ServerError::store)?
        .ok_or_else(|| internal("初始化用户数据失败", "profile vanished"))?;
    serde_json::from_str(&stored.document).map_err(|e| internal("stored profile is not valid", e))
}

/// Read-modify-write `user_id`'s profile; `change` may refuse with an error. Retries when
/// another writer got there first, so no update is lost.
/// Largest stored profile (entries, preferences and fields together).
pub const PROFILE_BYTES: usize = 1024 * 1024;

pub async fn modify<T>(
    db: &Database,
    locks: &KeyedLocks,
    user_id: &str,
    mut change: impl FnMut(&mut UserProfile) -> Result<T, ServerError>,
) -> Result<(UserProfile, T), ServerError> {
    let _writer = locks.lock(&format!("user:{user_id}")).await;
    load(db, user_id).await?;
    let repo = db.profiles();
    for _ in 0..8 {
        let stored = repo
            .get(user_id)
            .await
            .map_err(ServerError::store)?
            .ok_or_else(|| internal("profile vanished", user_id))?;
        let mut profile: UserProfile = serde_json::from_str(&stored.document)
            .map_err(|e| internal("stored profile is not valid", e))?;
        let out = change(&mut profile)?;
        profile.last_updated = rfc3339_nano_local();
        let text = serde_json::to_string(&profile).map_err(ServerError::internal)?;
        if text.len() > PROFILE_BYTES {
            return Err(ServerError::bad_request(
                "请求参数错误",
                format!("profile: at most {PROFILE_BYTES} bytes with this change"),
            ));
        }
        if repo
            .replace(user_id, &text, stored.version, now_secs())
            .await
            .map_err(ServerError::store)?
        {
            return Ok((profile, out));
        }
        // Another server wrote first: back off a little and read again.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Err(ServerError::Conflict {
        details: "the profile is being changed by someone else; try again".into(),
    })
}

pub fn apply_update(profile: &mut UserProfile, update: ProfileUpdate) {
    for (field, value) in [
        (&mut profile.username, update.username),
        (&mut profile.display_name, update.display_name),
        (&mut profile.bio, update.bio),
        (&mut profile.avatar, update.avatar),
    ] {
        if !value.is_empty() {
            *field = value;
        }
    }
    if let Some(preferences) = update.preferences {
        profile.preferences = preferences;
    }
}

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// Valid ids for items and skills (they appear in URLs).
pub fn valid_entry_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && id != "."
        && id != ".."
}

/// What items and skills have in common: an id, creation and update times, a home list in
/// the profile, and the wording of their messages.
pub trait Entry: Clone + Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// Id prefix of generated ids (`item`, `skill`).
    const PREFIX: &'static str;
    const RESOURCE: Resource;
    /// Messages: list read, added, read one, updated, deleted.
    const MESSAGES: [&'static str; 5];
    fn list(profile: &mut UserProfile) -> &mut Vec<Self>;
    fn id(&self) -> &str;
    fn stamp(&mut self, id: String, created: String, updated: String);
    fn created(&self) -> &str;
    /// Normalise and validate a client's entry before it is stored.
    fn prepare(self) -> Result<Self, ServerError> {
        Ok(self)
    }
}

/// The `Entry` accessors of a struct with `id`, `created` and `updated` fields.
macro_rules! entry_fields {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn stamp(&mut self, id: String, created: String, updated: String) {
            (self.id, self.created, self.updated) = (id, created, updated);
        }
        fn created(&self) -> &str {
            &self.created
        }
    };
}

impl Entry for Item {
    const PREFIX: &'static str = "item";
    const RESOURCE: Resource = Resource::Item;
    const MESSAGES: [&'static str; 5] = [
        "用户物品列表获取成功",
        "物品添加成功",
        "物品信息获取成功",
        "物品更新成功",
        "物品删除成功",
    ];
    fn list(profile: &mut UserProfile) -> &mut Vec<Self> {
        &mut profile.items
    }
    entry_fields!();
}

impl Entry for Skill {
    const PREFIX: &'static str = "skill";
    const RESOURCE: Resource = Resource::Skill;
    const MESSAGES: [&'static str; 5] = [
        "用户技能列表获取成功",
        "技能添加成功",
        "技能信息获取成功",
        "技能更新成功",
        "技能删除成功",
    ];
    fn list(profile: &mut UserProfile) -> &mut Vec<Self> {
        &mut profile.skills
    }
    entry_fields!();
    fn prepare(self) -> Result<Self, ServerError> {
        sanitize_skill(self)
    }
}

/// Append a new entry; a missing id is generated, a taken one is a conflict.
pub fn add_entry<E: Entry>(profile: &mut UserProfile, entry: E) -> Result<E, ServerError> {
    let mut entry = entry.prepare()?;
    let id = if entry.id().is_empty() {
        new_id(E::PREFIX)
    } else {
        entry.id().to_string()
    };
    if !valid_entry_id(&id) {
        return Err(ServerError::bad_request(
            "无效的请求数据",
            format!("invalid {} id", E::PREFIX),
        ));
    }
    let list = E::list(profile);
    if list.iter().any(|e| e.id() == id) {
        return Err(ServerError::Conflict {
            details: format!("{} id already exists: {id}", E::PREFIX),
        });
    }
    let now = rfc3339_nano_local();
    entry.stamp(id, now.clone(), now);
    list.push(entry.clone());
    Ok(entry)
}

/// Replace an entry wholesale, keeping its id and creation time.
pub fn replace_entry<E: Entry>(
    profile: &mut UserProfile,
    id: &str,
    entry: E,
) -> Result<E, ServerError> {
    let mut entry = entry.prepare()?;
    let existing =
        E::list(profile)
            .iter_mut()
            .find(|e| e.id() == id)
            .ok_or(ServerError::NotFound {
                resource: E::RESOURCE,
            })?;
    entry.stamp(
        id.to_string(),
        existing.created().to_string(),
        rfc3339_nano_local(),
    );
    *existing = entry.clone();
    Ok(entry)
}

pub fn remove_entry<E: Entry>(profile: &mut UserProfile, id: &str) -> Result<(), ServerError> {
    let list = E::list(profile);
    let at = list
        .iter()
        .position(|e| e.id() == id)
        .ok_or(ServerError::NotFound {
            resource: E::RESOURCE,
        })?;
    list.remove(at);
    Ok(())
}

/// Trim, default and clamp a skill as the reference does, then validate it.
pub fn sanitize_skill(mut skill: Skill) -> Result<Skill, ServerError> {
    let trim = |s: &mut String| *s = s.trim().to_string();
    trim(&mut skill.name);
    trim(&mut skill.description);
    trim(&mut skill.category);
    trim(&mut skill.icon_url);
    for list in [&mut skill.tags, &mut skill.requirements] {
        *list = list
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
    }
    if skill.effects.is_empty() && !skill.effect.trim().is_empty() {
        skill.effects.push(Effect {
            target: "other".into(),
            kind: "special".into(),
            value: 0,
            description: skill.effect.trim().to_string(),
            duration: 0,
            probability: 1.0,
        });
    }
    skill.effect.clear();
    for effect in &mut skill.effects {
        trim(&mut effect.target);
        trim(&mut effect.kind);
        trim(&mut effect.description);
        if effect.target.is_empty() {
            effect.target = "self".into();
        }
        if effect.kind.is_empty() {
            effect.kind = "custom".into();
        }
        effect.probability = effect.probability.clamp(0.0, 1.0);
        effect.value = effect.value.max(0);
        effect.duration = effect.duration.max(0);
    }
    skill.cooldown = skill.cooldown.max(0);
    if skill.name.is_empty() {
        return Err(ServerError::bad_request("技能名称不能为空", ""));
    }
    if skill.effects.is_empty() {
        return Err(ServerError::bad_request("至少需要一个技能效果", ""));
    }
    Ok(skill)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills_are_sanitised_like_the_reference() {
        let skill: Skill = serde_json::from_value(serde_json::json!({
            "name": "  Cold Reading ", "description": "Infer intent", "category": "mental",
            "effect": "reveal mood", "cooldown": -3, "tags": [" a ", ""]
        }))
        .unwrap();
        let s = sanitize_skill(skill).unwrap();
        assert_eq!(s.name, "Cold Reading");
        assert_eq!(s.cooldown, 0);
        assert_eq!(s.tags, vec!["a"]);
        assert_eq!(s.effects.len(), 1);
        assert_eq!(
            (
                s.effects[0].target.as_str(),
                s.effects[0].kind.as_str(),
                s.effects[0].probability
            ),
            ("other", "special", 1.0)
        );
        let json = serde_json::to_value(&s).unwrap();
        assert!(
            json.get("cooldown").is_none() && json.get("effect").is_none(),
            "{json}"
        );

        let blank = Skill {
            name: " ".into(),
            ..Default::default()
        };
        assert!(sanitize_skill(blank).is_err());
        let no_effects = Skill {
            name: "x".into(),
            ..Default::default()
        };
        assert!(sanitize_skill(no_effects).is_err());
    }
}
