//! The story's model calls (spec story-export §4): each prompt is a template file filled
//! with `{{name}}` values, and each JSON answer is parsed into a type here and checked before
//! anything is applied.

use sceneintruder_llm::LlmCall;
use serde::Deserialize;
use serde_json::Value;

const SEGMENT_SYSTEM: &str = include_str!("../../../prompts/story_segment_system.txt");
const SEGMENT_USER: &str = include_str!("../../../prompts/story_segment_user.txt");
const NEXT_SYSTEM: &str = include_str!("../../../prompts/story_next_system.txt");
const NEXT_USER: &str = include_str!("../../../prompts/story_next_user.txt");
const EXPLORE_SYSTEM: &str = include_str!("../../../prompts/story_explore_system.txt");
const EXPLORE_USER: &str = include_str!("../../../prompts/story_explore_user.txt");
const ADVANCE_SYSTEM: &str = include_str!("../../../prompts/story_advance_system.txt");
const ADVANCE_USER: &str = include_str!("../../../prompts/story_advance_user.txt");
const COMMAND_STORY_SYSTEM: &str = include_str!("../../../prompts/story_command_story_system.txt");
const COMMAND_STORY_USER: &str = include_str!("../../../prompts/story_command_user.txt");
const COMMAND_CHARACTER: &str = include_str!("../../../prompts/story_command_character_system.txt");
const COMMAND_GROUP: &str = include_str!("../../../prompts/story_command_group_system.txt");
const COMMAND_SKILL: &str = include_str!("../../../prompts/story_command_skill_system.txt");
const COMMAND_HOST: &str = include_str!("../../../prompts/story_command_host_system.txt");
const COMMAND_CONTEXT_USER: &str = include_str!("../../../prompts/story_command_user_context.txt");

/// Longest story context given with a passage, and longest passage, in characters (§4.1).
pub const CONTEXT_CHARS: usize = 1200;
pub const PASSAGE_CHARS: usize = 1500;

/// A template filled in one pass (see `domain::template`), trailing space trimmed.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    crate::domain::template::fill(template, values)
        .trim_end()
        .to_string()
}

/// `text` cut to `max` characters, with `...` when cut.
pub fn cut(text: &str, max: usize) -> String {
    let kept = crate::domain::template::prefix(text, max);
    if kept.len() < text.len() {
        format!("{kept}...")
    } else {
        kept.to_string()
    }
}

pub fn language(english: bool) -> &'static str {
    if english {
        "English"
    } else {
        "Simplified Chinese (简体中文)"
    }
}

/// The creativity label of the choice prompt (§4.3): anything unknown is Medium.
pub fn creativity(level: &str, english: bool) -> &'static str {
    match (level.trim().to_ascii_uppercase().as_str(), english) {
        ("STRICT", true) => "Low",
        ("STRICT", false) => "低",
        ("EXPANSIVE", true) => "High",
        ("EXPANSIVE", false) => "高",
        (_, true) => "Medium",
        (_, false) => "中",
    }
}

fn json_call(system: String, user: String, model: Option<String>, owner: &str) -> LlmCall {
    let mut call = LlmCall::new(system, user);
    call.model = model;
    call.user = owner.to_string();
    call
}

/// §4.1: narrate one passage with choices.
pub fn segment_call(context: &str, passage: &str, node_type: &str, english: bool) -> LlmCall {
    let system = fill(
        SEGMENT_SYSTEM,
        &[
            ("language", language(english)),
            (
                "node_type",
                if node_type.is_empty() {
                    "main"
                } else {
                    node_type
                },
            ),
        ],
    );
    let user = fill(
        SEGMENT_USER,
        &[
            ("context", &cut(context, CONTEXT_CHARS)),
            ("passage", &cut(passage, PASSAGE_CHARS)),
        ],
    );
    json_call(system, user, None, "")
}

/// What §4.3 gives the next-node prompt.
pub struct NextInput<'a> {
    pub world: &'a str,
    pub node: &'a str,
    pub choice: &'a str,
    pub consequence: &'a str,
    pub hint: &'a str,
    pub progress: i64,
    pub stage: &'a str,
    pub creativity: &'a str,
    pub twists: bool,
    pub english: bool,
    pub model: Option<String>,
    pub owner: &'a str,
}

pub fn next_call(input: &NextInput) -> LlmCall {
    let yes_no = if input.twists { "yes" } else { "no" };
    let system = fill(
        NEXT_SYSTEM,
        &[
            ("creativity", creativity(input.creativity, input.english)),
            ("twists", yes_no),
            ("language", language(input.english)),
        ],
    );
    let progress = input.progress.to_string();
    let user = fill(
        NEXT_USER,
        &[
            ("world", input.world),
            ("stage", input.stage),
            ("progress", &progress),
            ("node", &cut(input.node, PASSAGE_CHARS)),
            ("choice", input.choice),
            ("consequence", input.consequence),
            ("hint", input.hint),
        ],
    );
    json_call(system, user, input.model.clone(), input.owner)
}

pub struct ExploreInput<'a> {
    pub world: &'a str,
    pub scene_description: &'a str,
    pub location: &'a str,
    pub location_description: &'a str,
    pub creativity: &'a str,
    pub twists: bool,
    pub english: bool,
    pub model: Option<String>,
    pub owner: &'a str,
}

pub fn explore_call(input: &ExploreInput) -> LlmCall {
    let system = fill(
        EXPLORE_SYSTEM,
        &[
            ("creativity", creativity(input.creativity, input.english)),
            ("twists", if input.twists { "yes" } else { "no" }),
            ("language", language(input.english)),
        ],
    );
    let user = fill(
        EXPLORE_USER,
        &[
            ("world", input.world),
            (
                "scene_description",
                &cut(input.scene_description, CONTEXT_CHARS),
            ),
            ("location", input.location),
            ("location_description", input.location_description),
        ],
    );
    json_call(system, user, input.model.clone(), input.owner)
}

/// §4.5: plain-text continuation.
pub fn advance_call(
    story: &str,
    activity: &str,
    english: bool,
    model: Option<String>,
    owner: &str,
) -> LlmCall {
    let system = fill(
        ADVANCE_SYSTEM,
        &[
            (
                "length",
                if english {
                    "300 words"
                } else {
                    "400 Chinese characters"
                },
            ),
            ("language", language(english)),
        ],
    );
    let user = fill(ADVANCE_USER, &[("story", story), ("activity", activity)]);
    let mut call = json_call(system, user, model, owner);
    // A continuation should differ each time the player advances.
    call.fresh = true;
    call
}

/// §4.6 story mode: narration plus choices as JSON.
pub fn command_story_call(
    title: &str,
    original: &str,
    processing: &str,
    input: &str,
    english: bool,
    owner: &str,
) -> LlmCall {
    let system = fill(
        COMMAND_STORY_SYSTEM,
        &[
            ("title", title),
            (
                "length",
                if english {
                    "150 words"
                } else {
                    "220 Chinese characters"
                },
            ),
            ("language", language(english)),
        ],
    );
    let user = fill(
        COMMAND_STORY_USER,
        &[
            ("original", original),
            ("processing", processing),
            ("input", input),
        ],
    );
    command_call(system, user, owner)
}

/// §4.6 other modes: a plain-text answer in the mode's voice.
pub fn command_mode_call(
    mode: &str,
    characters: &str,
    context: &str,
    input: &str,
    english: bool,
    owner: &str,
) -> LlmCall {
    let template = match mode {
        "character" => COMMAND_CHARACTER,
        "group" => COMMAND_GROUP,
        "skill" => COMMAND_SKILL,
        _ => COMMAND_HOST,
    };
    let system = fill(
        template,
        &[
            ("character", characters),
            ("characters", characters),
            ("language", language(english)),
        ],
    );
    let user = fill(
        COMMAND_CONTEXT_USER,
        &[("context", context), ("input", input)],
    );
    command_call(system, user, owner)
}

fn command_call(system: String, user: String, owner: &str) -> LlmCall {
    let mut call = json_call(system, user, None, owner);
    call.temperature = Some(0.7);
    call.max_tokens = Some(700);
    call.fresh = true;
    call
}

/// A choice as a model writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ChoiceReply {
    pub text: String,
    pub consequence: String,
    pub next_node_hint: String,
}

/// §4.1's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SegmentReply {
    pub content: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub choices: Vec<ChoiceReply>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TaskReply {
    pub title: String,
    pub description: String,
    pub objectives: Vec<String>,
    pub reward: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LocationReply {
    pub name: String,
    pub description: String,
    pub accessible: bool,
}

impl Default for LocationReply {
    fn default() -> Self {
        LocationReply {
            name: String::new(),
            description: String::new(),
            accessible: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ItemReply {
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TriggerReply {
    pub trigger_condition: String,
    pub character_ids: Vec<String>,
    pub topic: String,
    pub context_description: String,
}

/// §4.3's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NextReply {
    pub content: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub choices: Vec<ChoiceReply>,
    pub new_task: Option<TaskReply>,
    pub new_location: Option<LocationReply>,
    pub new_item: Option<ItemReply>,
    pub character_interactions: Vec<TriggerReply>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventReply {
    pub content: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub choices: Vec<ChoiceReply>,
}

/// §4.4's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExploreReply {
    pub description: String,
    pub found_item: Option<ItemReply>,
    pub story_event: Option<EventReply>,
    pub new_clue: String,
}

/// One suggestion of §4.6 story mode (`impact` may be a number or text).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CommandChoice {
    pub id: String,
    pub text: String,
    pub consequence: String,
    pub next_hint: String,
    pub hint: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub impact: Value,
    pub description: String,
}

/// §4.6 story mode's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CommandReply {
    pub narration: String,
    pub content: String,
    pub summary: String,
    pub choices: Vec<CommandChoice>,
    pub recommendations: Vec<CommandChoice>,
}

/// Most items of a model-written list that are used (choices, objectives, triggers): a
/// model answer is never trusted to be small.
pub const MAX_LIST: usize = 6;
/// Longest text field taken from a model answer, in characters.
pub const MAX_TEXT: usize = 8000;

/// A model-written text, trimmed and bounded.
pub fn text(value: &str) -> String {
    crate::domain::template::prefix(value.trim(), MAX_TEXT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_once() {
        assert_eq!(
            fill("a {{x}} b {{y}} {{unknown}}", &[("x", "{{y}}"), ("y", "2")]),
            "a {{y}} b 2 {{unknown}}"
        );
        assert_eq!(fill("open {{x", &[("x", "1")]), "open {{x");
        // Every placeholder of every template has a value.
        let call = segment_call("ctx", "passage", "", true);
        let all = format!("{:?}{:?}", call.system, call.messages);
        assert!(!all.contains("{{"), "{all}");
        let call = next_call(&NextInput {
            world: "w",
            node: "n",
            choice: "c",
            consequence: "q",
            hint: "h",
            progress: 5,
            stage: "初始",
            creativity: "STRICT",
            twists: false,
            english: false,
            model: None,
            owner: "u",
        });
        let all = format!("{:?}{:?}", call.system, call.messages);
        assert!(!all.contains("{{") && all.contains("低"), "{all}");
        for mode in ["story", "character", "group", "skill", "other"] {
            let call = if mode == "story" {
                command_story_call("t", "o", "p", "i", true, "u")
            } else {
                command_mode_call(mode, "Lin", "ctx", "i", true, "u")
            };
            let all = format!("{:?}{:?}", call.system, call.messages);
            assert!(!all.contains("{{"), "{mode}: {all}");
            assert_eq!(call.max_tokens, Some(700));
        }
        let call = explore_call(&ExploreInput {
            world: "w",
            scene_description: "d",
            location: "l",
            location_description: "ld",
            creativity: "BALANCED",
            twists: true,
            english: true,
            model: None,
            owner: "u",
        });
        assert!(!format!("{:?}{:?}", call.system, call.messages).contains("{{"));
        let call = advance_call("s", "a", false, None, "u");
        assert!(!format!("{:?}{:?}", call.system, call.messages).contains("{{"));
    }

    #[test]
    fn labels_and_bounds() {
        assert_eq!(creativity("expansive", true), "High");
        assert_eq!(creativity("whatever", false), "中");
        assert_eq!(cut("abcdef", 3), "abc...");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(text(&"x".repeat(MAX_TEXT + 10)).len(), MAX_TEXT);
        let reply: NextReply =
            serde_json::from_str(r#"{"content": "c", "new_location": {"name": "n"}}"#).unwrap();
        assert!(reply.new_location.unwrap().accessible);
        assert!(reply.new_task.is_none());
    }
}

/// Pulls the `"narration"` string out of a JSON answer while it streams in, so a player sees
/// the narration as it is written rather than raw JSON. Feed chunks; each call returns the
/// narration text decoded from that chunk (escapes included).
#[derive(Debug, Default)]
pub struct NarrationTap {
    seen: String,
    /// Byte offset in `seen` where the narration's characters start, once found.
    start: Option<usize>,
    /// Bytes of `seen` already decoded.
    at: usize,
    done: bool,
}

/// Longest prefix scanned for the key; a model that never writes it gets no deltas.
const TAP_SCAN: usize = 64 * 1024;

impl NarrationTap {
    pub fn feed(&mut self, chunk: &str) -> String {
        if self.done || self.seen.len() > TAP_SCAN {
            return String::new();
        }
        self.seen.push_str(chunk);
        if self.start.is_none() {
            let Some(key) = self.seen.find("\"narration\"") else {
                return String::new();
            };
            let after = &self.seen[key + 11..];
            let Some(colon) = after.find(':') else {
                return String::new();
            };
            let rest = &after[colon + 1..];
            let Some(quote) = rest.find('"') else {
                return String::new();
            };
            if !rest[..quote].trim().is_empty() {
                self.done = true;
                return String::new();
            }
            let start = key + 11 + colon + 1 + quote + 1;
            self.start = Some(start);
            self.at = start;
        }
        let mut out = String::new();
        let bytes = self.seen.as_bytes();
        let mut i = self.at;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.done = true;
                    i += 1;
                    break;
                }
                b'\\' => {
                    if i + 1 >= bytes.len() {
                        break;
                    }
                    match bytes[i + 1] {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => {}
                        b'u' => {
                            if i + 6 > bytes.len() {
                                break;
                            }
                            let code = u32::from_str_radix(&self.seen[i + 2..i + 6], 16).ok();
                            out.push(code.and_then(char::from_u32).unwrap_or('\u{fffd}'));
                            i += 6;
                            continue;
                        }
                        other => out.push(other as char),
                    }
                    i += 2;
                }
                _ => {
                    // Copy up to the next quote or backslash (whole UTF-8 characters).
                    let end = self.seen[i..]
                        .find(['"', '\\'])
                        .map_or(bytes.len(), |e| i + e);
                    out.push_str(&self.seen[i..end]);
                    i = end;
                }
            }
        }
        self.at = i;
        out
    }
}

#[cfg(test)]
mod tap_tests {
    use super::NarrationTap;

    #[test]
    fn narration_is_decoded_across_chunks() {
        let answer = r#"{"narration": "Fog \"rolls\"\n in 雾\u00e9.", "choices": []}"#;
        for size in [1, 3, 7, 100] {
            let mut tap = NarrationTap::default();
            let mut out = String::new();
            let chars: Vec<char> = answer.chars().collect();
            for chunk in chars.chunks(size) {
                out.push_str(&tap.feed(&chunk.iter().collect::<String>()));
            }
            assert_eq!(out, "Fog \"rolls\"\n in 雾é.", "chunk size {size}");
        }
        let mut tap = NarrationTap::default();
        assert_eq!(tap.feed(r#"{"choices": [], "narration": 5}"#), "");
    }
}
