//! Talking to a character: the persona prompt (the character, the scene, what they remember
//! and the recent conversation with every line attributed to its real speaker), the emotion
//! model, and the conversation lines a reply adds.

use std::collections::HashMap;

use sceneintruder_llm::LlmCall;
use sceneintruder_store::Database;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::scenes::{self, Character, Conversation, Scene, is_english, new_id};
use crate::auth::Identity;
use crate::error::ServerError;
use crate::time::rfc3339_nano_local;

const PERSONA: &str = include_str!("../../prompts/chat_persona_system.txt");
const EMOTION: &str = include_str!("../../prompts/chat_emotion_system.txt");
/// Longest part of one remembered line, and of all of them, in characters: the prompt stays
/// small whatever was stored (lines written before limits existed included).
const HISTORY_LINE_CHARS: usize = 1000;
const HISTORY_CHARS: usize = 8000;

use crate::domain::template::prefix as cut;

/// Lines of recent conversation a character remembers.
const HISTORY_LINES: i64 = 10;

/// Everything a reply is written from.
pub struct ChatContext {
    pub scene: Scene,
    pub character: Character,
    pub characters: Vec<Character>,
    pub history: Vec<Conversation>,
}

/// Load the scene (owner only), the character and the recent conversation.
pub async fn context(
    db: &Database,
    identity: &Identity,
    scene_id: &str,
    character_id: &str,
) -> Result<ChatContext, ServerError> {
    let row = scenes::load(db, identity, scene_id).await?;
    let scene = scenes::scene_of(&row)?;
    let characters = scenes::characters(db, scene_id).await?;
    let character = characters
        .iter()
        .find(|c| scenes::valid_id(character_id) && c.id == character_id)
        .cloned()
        .ok_or_else(|| ServerError::CharacterNotFound {
            id: character_id.to_string(),
        })?;
    let (history, _) = scenes::conversations(db, scene_id, HISTORY_LINES, 0).await?;
    Ok(ChatContext {
        scene,
        character,
        characters,
        history,
    })
}

impl ChatContext {
    fn english(&self, extra: &str) -> bool {
        is_english(&format!(
            "{} {} {} {extra}",
            self.character.name, self.character.description, self.scene.title
        ))
    }

    /// One line per remembered turn, `Speaker: text`, each under its real speaker's name.
    fn history_text(&self, english: bool) -> String {
        let names: HashMap<&str, &str> = self
            .characters
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        let lines: Vec<String> = self
            .history
            .iter()
            .map(|line| {
                let speaker = match line.speaker_id.as_str() {
                    "user" => {
                        if english {
                            "User"
                        } else {
                            "用户"
                        }
                    }
                    id => names.get(id).copied().unwrap_or(if english {
                        "Narrator"
                    } else {
                        "旁白"
                    }),
                };
                format!("{speaker}: {}", cut(&line.content, HISTORY_LINE_CHARS))
            })
            .collect();
        // Newest lines first into the budget; older ones are dropped once it is spent.
        let mut spent = 0;
        let kept = lines
            .iter()
            .rev()
            .take_while(|l| {
                spent += l.chars().count();
                spent <= HISTORY_CHARS
            })
            .count();
        let lines = &lines[lines.len() - kept..];
        if lines.is_empty() {
            if english {
                "(nothing yet)"
            } else {
                "（暂无）"
            }
            .to_string()
        } else {
            lines.join("\n")
        }
    }

    fn fill(&self, template: &str, message: &str) -> String {
        let english = self.english(message);
        let c = &self.character;
        let memory = if english {
            format!(
                "I am {}, in the scene {}. {}",
                c.name, self.scene.title, c.description
            )
        } else {
            format!(
                "我是{}，我在{}场景中。我是{}。",
                c.name, self.scene.title, c.description
            )
        };
        let emotions = if english {
            "joy, anger, sadness, fear, surprise, contempt, disgust, neutral"
        } else {
            "喜悦, 愤怒, 悲伤, 恐惧, 惊讶, 鄙视, 厌恶, 中性"
        };
        let values = [
            ("name", c.name.as_str()),
            ("scene_title", self.scene.title.as_str()),
            ("language", if english { "English" } else { "简体中文" }),
            ("description", c.description.as_str()),
            ("personality", c.personality.as_str()),
            ("speech_style", c.speech_style.as_str()),
            ("memory", memory.as_str()),
            ("scene_description", self.scene.description.as_str()),
            ("history", &self.history_text(english)),
            ("emotions", emotions),
        ];
        crate::domain::template::fill(template, &values)
    }

    /// The in-character chat call (never answered from the cache: a repeated question gets
    /// a fresh answer).
    pub fn chat_call(&self, message: &str, user: &str) -> LlmCall {
        let mut call = LlmCall::new(self.fill(PERSONA, message), message);
        call.temperature = Some(0.7);
        call.max_tokens = Some(800);
        call.user = user.to_string();
        call.fresh = true;
        call
    }

    pub fn emotion_call(&self, message: &str, user: &str) -> LlmCall {
        let mut call = LlmCall::new(self.fill(EMOTION, message), message);
        call.temperature = Some(0.7);
        call.max_tokens = Some(800);
        call.user = user.to_string();
        call.fresh = true;
        call
    }

    /// The user's line and the character's reply, ready to append.
    pub fn lines(
        &self,
        message: &str,
        reply: &str,
        metadata: Map<String, Value>,
    ) -> Vec<Conversation> {
        let line = |speaker: &str, content: &str, metadata: Map<String, Value>| Conversation {
            id: new_id("conv"),
            scene_id: self.scene.id.clone(),
            speaker_id: speaker.to_string(),
            content: content.to_string(),
            timestamp: rfc3339_nano_local(),
            metadata,
            ..Conversation::default()
        };
        vec![
            line("user", message, Map::new()),
            line(&self.character.id, reply, metadata),
        ]
    }

    /// The WebSocket message announcing a reply to the scene's room.
    pub fn announcement(&self, reply: &str) -> Value {
        json!({
            "type": "conversation:new",
            "scene_id": self.scene.id,
            "character_id": self.character.id,
            "speaker_id": self.character.id,
            "conversation": {"character": self.character.name, "response": reply},
            "timestamp": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }
}

/// What the model returns for an emotional reply (numbers may come as text).
#[derive(Debug, Deserialize)]
pub struct EmotionReply {
    #[serde(default)]
    pub response: String,
    #[serde(default)]
    pub emotion: String,
    #[serde(default)]
    pub intensity: Value,
    #[serde(default)]
    pub body_language: String,
    #[serde(default)]
    pub facial_expression: String,
    #[serde(default)]
    pub voice_tone: String,
    #[serde(default)]
    pub secondary_emotions: Vec<String>,
}

/// The emotional reply as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct EmotionalResponse {
    pub character_id: String,
    pub character_name: String,
    pub response: String,
    pub emotion: String,
    pub intensity: i64,
    pub body_language: String,
    pub facial_expression: String,
    pub voice_tone: String,
    pub secondary_emotions: Vec<String>,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_used: Option<u32>,
}

impl EmotionReply {
    /// Trimmed text, intensity 1-10 (5 when missing or not a number), at most two secondary
    /// emotions; an empty reply is an error (the model did not answer in character).
    pub fn normalise(
        self,
        character: &Character,
        tokens: u32,
    ) -> Result<EmotionalResponse, String> {
        let response = self.response.trim().to_string();
        if response.is_empty() {
            return Err("the model's answer has no \"response\"".into());
        }
        let intensity = match &self.intensity {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .map_or(5, |v| (v.round() as i64).clamp(1, 10));
        Ok(EmotionalResponse {
            character_id: character.id.clone(),
            character_name: character.name.clone(),
            response,
            emotion: self.emotion.trim().to_string(),
            intensity,
            body_language: self.body_language.trim().to_string(),
            facial_expression: self.facial_expression.trim().to_string(),
            voice_tone: self.voice_tone.trim().to_string(),
            secondary_emotions: self
                .secondary_emotions
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .take(2)
                .collect(),
            timestamp: rfc3339_nano_local(),
            tokens_used: (tokens > 0).then_some(tokens),
        })
    }
}

impl EmotionalResponse {
    /// Metadata of the character's conversation line.
    pub fn metadata(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("emotion".into(), json!(self.emotion));
        map.insert("intensity".into(), json!(self.intensity));
        map.insert("body_language".into(), json!(self.body_language));
        map.insert("facial_expression".into(), json!(self.facial_expression));
        map.insert("voice_tone".into(), json!(self.voice_tone));
        map.insert("secondary_emotions".into(), json!(self.secondary_emotions));
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn character() -> Character {
        Character {
            id: "char_1".into(),
            name: "Lin".into(),
            ..Character::default()
        }
    }

    #[test]
    fn a_huge_stored_line_cannot_blow_up_the_prompt() {
        let line = |content: String| Conversation {
            speaker_id: "user".into(),
            content,
            ..Conversation::default()
        };
        let ctx = ChatContext {
            scene: Scene::default(),
            character: character(),
            characters: vec![character()],
            history: std::iter::once(line("ancient-line".into()))
                .chain(std::iter::once(line("x".repeat(10 * 1024 * 1024))))
                .chain((0..9).map(|_| line("y".repeat(5000))))
                .chain(std::iter::once(line("newest".into())))
                .collect(),
        };
        let call = ctx.chat_call("hello", "u");
        let system = call.system.unwrap_or_default();
        assert!(system.len() < 12 * 1024, "{} bytes", system.len());
        assert!(system.contains("newest"));
        assert!(
            !system.contains("ancient-line"),
            "older lines drop out once the budget is spent"
        );
    }

    #[test]
    fn emotion_replies_are_normalised() {
        let reply: EmotionReply = serde_json::from_value(json!({
            "response": " I saw nothing. ", "emotion": " fear ", "intensity": "14",
            "secondary_emotions": ["guilt", "", "worry", "shame"]
        }))
        .unwrap();
        let out = reply.normalise(&character(), 0).unwrap();
        assert_eq!(out.response, "I saw nothing.");
        assert_eq!(out.emotion, "fear");
        assert_eq!(out.intensity, 10);
        assert_eq!(out.secondary_emotions, ["guilt", "worry"]);
        assert!(out.tokens_used.is_none());
        let missing: EmotionReply = serde_json::from_value(json!({"response": "x"})).unwrap();
        assert_eq!(missing.normalise(&character(), 7).unwrap().intensity, 5);
        let empty: EmotionReply = serde_json::from_value(json!({"emotion": "joy"})).unwrap();
        assert!(empty.normalise(&character(), 0).is_err());
    }
}
