//! Characters talking to each other: a directed exchange on a topic (`trigger`) and a
//! simulated conversation from a situation (`simulate`). Every line is attributed to one of
//! the requested characters (the model's ids are never trusted) and stored with the ids of
//! everyone taking part, so the history of any pair can be found again.

use crate::domain::template::fill;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::scenes::{Character, Conversation, is_english, new_id};
use crate::time::rfc3339_nano_local;

const DIRECTOR: &str = include_str!("../../prompts/interaction_director_system.txt");
const SIMULATION: &str = include_str!("../../prompts/interaction_simulation_system.txt");

/// One line of an exchange, as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dialogue {
    pub character_id: String,
    pub character_name: String,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub emotion: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
    pub timestamp: String,
}

/// A line as the model writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ModelLine {
    pub character_id: String,
    pub character_name: String,
    pub message: String,
    pub emotion: String,
    pub action: String,
}

/// The model's answer: `{"dialogues": [...]}` or a bare array.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ModelAnswer {
    Wrapped { dialogues: Vec<ModelLine> },
    Bare(Vec<ModelLine>),
}

impl ModelAnswer {
    pub fn lines(self) -> Vec<ModelLine> {
        match self {
            ModelAnswer::Wrapped { dialogues } | ModelAnswer::Bare(dialogues) => dialogues,
        }
    }
}

fn roster(characters: &[Character]) -> String {
    characters
        .iter()
        .map(|c| {
            let mut line = format!(
                "- id {}: {} — {} Personality: {}.",
                c.id, c.name, c.description, c.personality
            );
            if !c.speech_style.is_empty() {
                line.push_str(&format!(" Speaks: {}.", c.speech_style));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn language(characters: &[Character]) -> &'static str {
    let first = characters
        .first()
        .map(|c| format!("{} {}", c.name, c.description))
        .unwrap_or_default();
    if is_english(&first) {
        "English"
    } else {
        "简体中文"
    }
}

/// The director's brief (system prompt) for a topic exchange.
pub fn director_prompt(characters: &[Character], context: &str) -> String {
    fill(
        DIRECTOR,
        &[
            ("language", language(characters)),
            ("context", if context.is_empty() { "-" } else { context }),
            ("characters", &roster(characters)),
        ],
    )
}

/// The simulation brief (system prompt).
pub fn simulation_prompt(characters: &[Character], turns: u32) -> String {
    fill(
        SIMULATION,
        &[
            ("language", language(characters)),
            ("turns", &turns.to_string()),
            ("characters", &roster(characters)),
        ],
    )
}

/// How to treat a speaker the model names but who is not among the participants.
pub enum Unknown {
    Refuse,
    /// Keep the line under a temporary `temp_<n>` id.
    TemporaryId,
}

/// Attribute each model line to a participant: its id when it is one of theirs, else by
/// exact name, else by case-insensitive name. The error says what was wrong with the
/// model's answer (the route words the failure).
pub fn attribute(
    lines: Vec<ModelLine>,
    participants: &[Character],
    unknown: Unknown,
) -> Result<Vec<Dialogue>, String> {
    let mut out = Vec::new();
    for line in lines {
        if line.message.trim().is_empty() {
            continue;
        }
        let by_id = participants.iter().find(|c| c.id == line.character_id);
        let name = line.character_name.trim();
        let found = by_id
            .or_else(|| participants.iter().find(|c| c.name == name))
            .or_else(|| {
                participants
                    .iter()
                    .find(|c| c.name.to_lowercase() == name.to_lowercase())
            });
        let (id, display) = match (found, &unknown) {
            (Some(c), _) => (c.id.clone(), c.name.clone()),
            (None, Unknown::TemporaryId) => (new_id("temp"), name.to_string()),
            (None, Unknown::Refuse) => {
                let names: Vec<&str> = participants.iter().map(|c| c.name.as_str()).collect();
                return Err(format!("无法找到匹配的角色: {name}，可用角色: {names:?}"));
            }
        };
        out.push(Dialogue {
            character_id: id,
            character_name: display,
            message: line.message.trim().to_string(),
            emotion: line.emotion.trim().to_string(),
            action: line.action.trim().to_string(),
            timestamp: rfc3339_nano_local(),
        });
    }
    if out.is_empty() {
        return Err("the model wrote no dialogue".into());
    }
    Ok(out)
}

/// Conversation lines for an exchange. `group` is `("interaction_id", id)` or
/// `("simulation_id", id)`.
pub fn conversation_lines(
    scene_id: &str,
    dialogues: &[Dialogue],
    group: (&str, &str),
    character_ids: &[String],
) -> Vec<Conversation> {
    let kind = if group.0 == "interaction_id" {
        "character_interaction"
    } else {
        "character_simulation"
    };
    dialogues
        .iter()
        .map(|d| {
            let mut metadata = Map::new();
            metadata.insert(group.0.into(), json!(group.1));
            metadata.insert("emotion".into(), json!(d.emotion));
            metadata.insert("action".into(), json!(d.action));
            metadata.insert("conversation_type".into(), json!(kind));
            metadata.insert("character_ids".into(), json!(character_ids));
            Conversation {
                id: new_id("conv"),
                scene_id: scene_id.to_string(),
                speaker_id: d.character_id.clone(),
                content: d.message.clone(),
                timestamp: d.timestamp.clone(),
                metadata,
                ..Conversation::default()
            }
        })
        .collect()
}

/// Whether a line belongs to an exchange (a trigger, a simulation or an aggregate turn).
pub fn is_interaction(line: &Conversation) -> bool {
    matches!(
        line.metadata
            .get("conversation_type")
            .and_then(Value::as_str),
        Some("character_interaction" | "character_simulation")
    )
}

/// Whether `line` was said by one of `a`/`b` in an exchange the other took part in.
pub fn between(line: &Conversation, a: &str, b: &str) -> bool {
    let other = if line.speaker_id == a {
        b
    } else if line.speaker_id == b {
        a
    } else {
        return false;
    };
    let with = |key: &str| line.metadata.get(key).and_then(Value::as_str) == Some(other);
    let listed = line
        .metadata
        .get("character_ids")
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(other)));
    is_interaction(line) && (listed || with("target_character_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast() -> Vec<Character> {
        ["Lin", "Su"]
            .iter()
            .enumerate()
            .map(|(i, n)| Character {
                id: format!("char_{i}"),
                name: n.to_string(),
                ..Character::default()
            })
            .collect()
    }

    fn line(id: &str, name: &str) -> ModelLine {
        ModelLine {
            character_id: id.into(),
            character_name: name.into(),
            message: "Hello there.".into(),
            ..ModelLine::default()
        }
    }

    #[test]
    fn lines_are_attributed_to_participants_only() {
        let out = attribute(
            vec![
                line("char_1", "whoever"),
                line("made_up", "lin"),
                line("", "Su"),
            ],
            &cast(),
            Unknown::Refuse,
        )
        .unwrap();
        let ids: Vec<&str> = out.iter().map(|d| d.character_id.as_str()).collect();
        assert_eq!(ids, ["char_1", "char_0", "char_1"]);
        assert_eq!(out[1].character_name, "Lin");
        let err = attribute(vec![line("", "Ghost")], &cast(), Unknown::Refuse).unwrap_err();
        assert!(err.contains("无法找到匹配的角色: Ghost"), "{err}");
        let temp = attribute(vec![line("", "Ghost")], &cast(), Unknown::TemporaryId).unwrap();
        assert!(temp[0].character_id.starts_with("temp_"));
    }

    #[test]
    fn pairs_are_found_through_the_participants() {
        let dialogues = attribute(vec![line("char_0", "Lin")], &cast(), Unknown::Refuse).unwrap();
        let ids = vec!["char_0".to_string(), "char_1".to_string()];
        let lines = conversation_lines("s", &dialogues, ("interaction_id", "i1"), &ids);
        assert!(between(&lines[0], "char_0", "char_1"));
        assert!(between(&lines[0], "char_1", "char_0"));
        assert!(!between(&lines[0], "char_0", "char_9"));
        assert!(is_interaction(&lines[0]));
    }
}
