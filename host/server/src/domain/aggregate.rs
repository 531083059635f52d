//! `POST /api/interactions/aggregate`: one message to several characters. The replies come
//! from the emotion model; the game-state side effects (character states, follow-up choices,
//! events, story progress) are computed from them with the rules of spec/scenes.md §7.13/§8.
//! Nothing is locked while the model answers; the story progress is then updated under the
//! scene's lock with a fresh read, so the endpoint cannot deadlock and progress really moves.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::chat::EmotionalResponse;
use super::scenes::new_id;
use crate::error::ServerError;
use crate::time::rfc3339_nano_local;

/// Most characters one aggregate request may address: each one is a model call, so the
/// request's fan-out stays bounded (spec/scenes.md states no limit).
pub const MAX_CHARACTERS: usize = 10;

/// The characters an aggregate request addresses: each id once, in request order, at most
/// [`MAX_CHARACTERS`]. More is refused rather than cut, so no character is silently left out.
pub fn addressed(character_ids: &[String]) -> Result<Vec<String>, ServerError> {
    let mut distinct: Vec<String> = Vec::new();
    for id in character_ids {
        if !distinct.contains(id) {
            distinct.push(id.clone());
        }
    }
    if distinct.len() > MAX_CHARACTERS {
        return Err(ServerError::bad_request(
            "选择的角色过多",
            format!(
                "character_ids names {} distinct characters; at most {MAX_CHARACTERS} per request",
                distinct.len()
            ),
        ));
    }
    Ok(distinct)
}

/// The user's own emotion, as clients send it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EmotionData {
    pub text: String,
    pub emotion: String,
    pub action: String,
    pub intensity: i64,
    pub body_language: String,
    pub facial_expression: String,
    pub voice_tone: String,
    pub secondary_emotions: Option<Vec<String>>,
}

impl EmotionData {
    pub fn of(reply: &EmotionalResponse) -> EmotionData {
        EmotionData {
            text: String::new(),
            emotion: reply.emotion.clone(),
            action: String::new(),
            intensity: reply.intensity,
            body_language: reply.body_language.clone(),
            facial_expression: reply.facial_expression.clone(),
            voice_tone: reply.voice_tone.clone(),
            secondary_emotions: Some(reply.secondary_emotions.clone()),
        }
    }
}

/// Which side effects to produce. Absent `options`: all of them; present: only those set.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Options {
    pub generate_follow_ups: bool,
    pub update_story_progress: bool,
    pub save_to_history: bool,
    pub trigger_events: bool,
}

impl Options {
    pub fn all() -> Options {
        Options {
            generate_follow_ups: true,
            update_story_progress: true,
            save_to_history: true,
            trigger_events: true,
        }
    }
}

fn family(emotion: &str) -> &'static str {
    match emotion.to_lowercase().as_str() {
        "喜悦" | "高兴" | "快乐" | "happy" | "joy" => "joy",
        "愤怒" | "生气" | "angry" | "anger" => "anger",
        "悲伤" | "难过" | "sad" | "sadness" => "sadness",
        "恐惧" | "害怕" | "fear" => "fear",
        "惊讶" | "surprise" => "surprise",
        _ => "neutral",
    }
}

/// The character's mood word from emotion and intensity.
pub fn mood(emotion: &str, intensity: i64) -> &'static str {
    let band = match intensity {
        i if i <= 3 => 0,
        i if i <= 7 => 1,
        _ => 2,
    };
    let moods = match family(emotion) {
        "joy" => ["content", "happy", "euphoric"],
        "anger" => ["annoyed", "angry", "furious"],
        "sadness" => ["melancholy", "sad", "depressed"],
        "fear" => ["nervous", "afraid", "terrified"],
        "surprise" => ["curious", "surprised", "shocked"],
        _ => ["calm", "neutral", "composed"],
    };
    moods[band]
}

pub fn energy(emotion: &str, intensity: i64) -> f64 {
    let base = match emotion.to_lowercase().as_str() {
        "joy" | "喜悦" | "高兴" | "excited" | "enthusiastic" => 0.8,
        "anger" | "愤怒" | "生气" | "frustrated" => 0.7,
        "surprise" | "惊讶" => 0.6,
        "fear" | "恐惧" | "害怕" => 0.3,
        "sadness" | "悲伤" | "难过" | "tired" | "depressed" => 0.2,
        _ => 0.5,
    };
    let value: f64 = base + (intensity as f64 / 10.0 - 0.5) * 0.3;
    (value.clamp(0.1, 1.0) * 100.0).round() / 100.0
}

pub fn activity(body_language: &str) -> &'static str {
    const TABLE: [(&str, &str); 22] = [
        ("点头", "nodding"),
        ("摇头", "shaking_head"),
        ("挥手", "waving"),
        ("拥抱", "hugging"),
        ("握手", "handshaking"),
        ("思考", "thinking"),
        ("走", "walking"),
        ("跑", "running"),
        ("坐", "sitting"),
        ("站", "standing"),
        ("躺", "lying"),
        ("笑", "laughing"),
        ("哭", "crying"),
        ("walk", "walking"),
        ("sit", "sitting"),
        ("stand", "standing"),
        ("think", "thinking"),
        ("laugh", "laughing"),
        ("cry", "crying"),
        ("nod", "nodding"),
        ("wave", "waving"),
        ("hug", "hugging"),
    ];
    let lower = body_language.to_lowercase();
    TABLE
        .iter()
        .find(|(k, _)| lower.contains(k))
        .map_or("talking", |(_, v)| v)
}

pub fn status_effects(secondary: &[String]) -> Vec<&'static str> {
    secondary
        .iter()
        .filter_map(|s| match s.to_lowercase().as_str() {
            "confusion" | "困惑" => Some("confused"),
            "excitement" | "兴奋" => Some("energized"),
            "exhaustion" | "疲惫" => Some("tired"),
            "curiosity" | "好奇" => Some("curious"),
            "confidence" | "自信" => Some("confident"),
            "nervousness" | "紧张" => Some("nervous"),
            _ => None,
        })
        .collect()
}

/// Change of the character's attitude toward the others after this exchange.
pub fn relationship_delta(reply: &EmotionalResponse, user_message: &str) -> f64 {
    let base = match reply.emotion.to_lowercase().as_str() {
        "joy" | "喜悦" | "高兴" | "grateful" | "friendly" => 0.10,
        "excitement" | "兴奋" | "enthusiastic" => 0.15,
        "anger" | "愤怒" | "生气" | "frustrated" | "annoyed" => -0.10,
        "sadness" | "悲伤" | "难过" | "disappointed" => -0.05,
        "fear" | "恐惧" | "害怕" => -0.02,
        _ => 0.0,
    };
    let message = user_message.to_lowercase();
    let body = reply.body_language.to_lowercase();
    let mut delta = base * reply.intensity as f64 / 10.0;
    for (word, bonus) in [
        ("谢谢", 0.05),
        ("thank", 0.05),
        ("抱歉", 0.03),
        ("sorry", 0.03),
        ("喜欢", 0.08),
        ("like", 0.08),
    ] {
        if message.contains(word) {
            delta += bonus;
        }
    }
    for (word, bonus) in [
        ("微笑", 0.03),
        ("smile", 0.03),
        ("拥抱", 0.05),
        ("hug", 0.05),
    ] {
        if body.contains(word) {
            delta += bonus;
        }
    }
    (delta * 1000.0).round() / 1000.0
}

/// The state of one replying character.
pub fn character_state(reply: &EmotionalResponse, others: &[String], user_message: &str) -> Value {
    let delta = relationship_delta(reply, user_message);
    let relationship: Map<String, Value> = others
        .iter()
        .filter(|id| **id != reply.character_id)
        .map(|id| (id.clone(), json!(delta)))
        .collect();
    json!({
        "character_id": reply.character_id,
        "mood": mood(&reply.emotion, reply.intensity),
        "energy": energy(&reply.emotion, reply.intensity),
        "relationship": relationship,
        "current_activity": activity(&reply.body_language),
        "status_effects": status_effects(&reply.secondary_emotions),
        "last_updated": rfc3339_nano_local(),
        "metadata": {
            "emotion_intensity": reply.intensity,
            "primary_emotion": reply.emotion,
            "facial_expression": reply.facial_expression,
            "voice_tone": reply.voice_tone,
            "body_language": reply.body_language,
            "secondary_emotions": reply.secondary_emotions,
            "interaction_context": user_message,
        },
    })
}

const IMPORTANT: [&str; 20] = [
    "重要",
    "关键",
    "秘密",
    "发现",
    "真相",
    "危险",
    "死亡",
    "爱情",
    "背叛",
    "important",
    "key",
    "secret",
    "discover",
    "truth",
    "danger",
    "death",
    "love",
    "betray",
    "线索",
    "clue",
];

/// How much an exchange matters (1-10).
pub fn significance(replies: &[EmotionalResponse], user_message: &str) -> i64 {
    let all = all_text(replies, user_message);
    let participants = match replies.len() {
        0 | 1 => 1,
        2 => 2,
        3 => 3,
        _ => 4,
    };
    let intensity = replies.iter().map(|r| r.intensity).max().unwrap_or(0) / 2;
    let length = user_message.len() + replies.iter().map(|r| r.response.len()).sum::<usize>();
    let length_bonus = if length > 500 {
        2
    } else if length > 200 {
        1
    } else {
        0
    };
    let keywords = IMPORTANT.iter().filter(|k| all.contains(*k)).count() as i64;
    (1 + participants + intensity + length_bonus + keywords).clamp(1, 10)
}

fn all_text(replies: &[EmotionalResponse], user_message: &str) -> String {
    let mut text = user_message.to_lowercase();
    for r in replies {
        text.push(' ');
        text.push_str(&r.response.to_lowercase());
    }
    text
}

/// Story progress change as a fraction (0.02 base, scaled by the story's stage and the
/// exchange's significance), and the percentage points it adds.
pub fn progress_change(current: u32, significance: i64) -> (f64, u32) {
    let stage = if current < 25 {
        1.5
    } else if current > 75 {
        0.7
    } else {
        1.0
    };
    let weight = match significance {
        s if s >= 8 => 3.0,
        s if s >= 6 => 2.0,
        s if s >= 4 => 1.5,
        _ => 1.0,
    };
    let change: f64 = 0.02 * stage * weight;
    let change = (change * 10_000.0).round() / 10_000.0;
    (change, ((change * 100.0).round() as u32).max(1))
}

/// What a story at `progress` percent has unlocked by now.
pub fn unlocked(progress: u32, all: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (words, unlock) in [
        (["钥匙", "key"], "新区域: 神秘房间"),
        (["密码", "password"], "新功能: 电脑终端访问"),
        (["地图", "map"], "新地图: 秘密通道"),
        (["线索", "clue"], "新线索: 重要信息"),
        (["信息", "info"], "新知识: 背景故事"),
    ] {
        if words.iter().any(|w| all.contains(w)) {
            out.push(unlock);
        }
    }
    match progress {
        25..=49 => out.push("故事分支: 第二章节"),
        50..=74 => out.push("新角色: 神秘访客"),
        p if p >= 75 => out.push("最终章节: 真相大白"),
        _ => {}
    }
    out
}

fn choice(prefix: &str, text: &str, consequence: &str, kind: Option<&str>) -> Value {
    let mut value = json!({
        "id": new_id(prefix),
        "text": text,
        "consequence": consequence,
        "next_node_hint": "",
        "next_node_id": "",
        "selected": false,
        "created_at": super::scenes::ZERO_TIME,
        "description": "",
        "type": "",
        "impact": 0,
        "order": 0,
        "is_selected": false,
    });
    if let (Some(kind), Value::Object(map)) = (kind, &mut value) {
        map.insert("metadata".into(), json!({"choice_type": kind}));
    }
    value
}

/// Follow-up choices for the user, most specific first, at most four plus "continue".
pub fn follow_ups(
    replies: &[EmotionalResponse],
    user_message: &str,
    user_emotion: Option<&EmotionData>,
    context: &Map<String, Value>,
    progress: u32,
) -> Vec<Value> {
    let message = user_message.to_lowercase();
    let mut out = Vec::new();
    if message.contains("为什么") || message.contains("why") {
        out.push(choice(
            "why",
            "深入探讨这个问题的原因",
            "了解更深层的动机",
            Some("question"),
        ));
    }
    if ["如何", "怎么", "how"].iter().any(|w| message.contains(w)) {
        out.push(choice(
            "how",
            "询问具体的方法或步骤",
            "获得可行的方案",
            Some("question"),
        ));
    }
    if replies.len() > 1 {
        for r in replies {
            out.push(choice(
                "focus",
                &format!("专门与{}进一步交流", r.character_name),
                "加深与该角色的关系",
                Some("character_focus"),
            ));
        }
        out.push(choice(
            "group",
            "让所有角色一起讨论这个话题",
            "激发不同观点的碰撞",
            Some("group"),
        ));
    } else if let Some(r) = replies.first() {
        let text = match family(&r.emotion) {
            "joy" => Some("分享这份快乐的心情"),
            "sadness" => Some("安慰并支持对方"),
            "anger" if r.intensity > 7 => Some("尝试缓解紧张情绪"),
            "anger" => Some("了解愤怒的原因"),
            "fear" => Some("给予安全感和保证"),
            _ => None,
        };
        if let Some(text) = text {
            out.push(choice(
                "emotion",
                text,
                "建立信任，可能获得重要信息",
                Some("emotional"),
            ));
        }
    }
    let stage = if progress < 25 {
        "了解更多背景信息"
    } else if progress >= 75 {
        "寻求问题的最终解决方案"
    } else {
        "推进当前的情节发展"
    };
    out.push(choice("story", stage, "推动故事发展", Some("story")));
    if let Some(user) = user_emotion {
        match user.emotion.to_lowercase().as_str() {
            "curiosity" | "好奇" => out.push(choice(
                "curious",
                "满足好奇心，深入了解",
                "发现新的信息",
                Some("emotional"),
            )),
            "concern" | "担心" => out.push(choice(
                "concern",
                "表达担忧并寻求安慰",
                "获得情感支持",
                Some("emotional"),
            )),
            _ => {}
        }
    }
    if let Some(location) = context.get("current_location").and_then(Value::as_str) {
        out.push(choice(
            "explore",
            &format!("探索当前位置：{location}"),
            "可能发现新事物",
            Some("context"),
        ));
    }
    if let Some(time) = context.get("time_of_day").and_then(Value::as_str) {
        out.push(choice(
            "time",
            &format!("考虑当前时间（{time}）的影响"),
            "调整行动计划",
            Some("context"),
        ));
    }
    out.truncate(4);
    out.push(choice(
        "continue_conversation",
        "继续当前对话",
        "保持对话流畅性",
        Some("continuation"),
    ));
    out
}

fn event(kind: &str, data: Value) -> Value {
    json!({"event_type": kind, "event_data": data, "triggers": [], "effects": [], "timestamp": rfc3339_nano_local()})
}

/// Game events an exchange triggers.
pub fn events(
    replies: &[EmotionalResponse],
    user_message: &str,
    user_emotion: Option<&EmotionData>,
    context: &Map<String, Value>,
) -> Vec<Value> {
    let all = all_text(replies, user_message);
    let mut out = Vec::new();
    if replies.len() >= 2 {
        out.push(event(
            "multi_character_interaction",
            json!({"count": replies.len()}),
        ));
    }
    if replies.len() >= 3 {
        out.push(event(
            "achievement",
            json!({"id": "social_butterfly", "name": "社交蝴蝶"}),
        ));
    }
    for (words, kind) in [
        (
            &[
                "探索",
                "寻找",
                "调查",
                "搜索",
                "explore",
                "find",
                "investigate",
                "search",
            ][..],
            "exploration_initiated",
        ),
        (
            &[
                "谜题", "线索", "秘密", "密码", "puzzle", "clue", "secret", "password", "mystery",
            ][..],
            "puzzle_engagement",
        ),
        (
            &[
                "战斗", "冲突", "争吵", "对抗", "fight", "conflict", "argue", "confront",
            ][..],
            "conflict_escalation",
        ),
    ] {
        if let Some(word) = words.iter().find(|w| all.contains(*w)) {
            out.push(event(kind, json!({"keyword": word})));
        }
    }
    if let Some(user) = user_emotion {
        if user.intensity >= 8 {
            out.push(event(
                "intense_emotion_display",
                json!({"intensity": user.intensity}),
            ));
        }
        match family(&user.emotion) {
            "anger" => out.push(event("anger_expression", json!({}))),
            "joy" => out.push(event("joy_sharing", json!({}))),
            "fear" => out.push(event("fear_expression", json!({}))),
            _ => {}
        }
    }
    if context
        .get("time_of_day")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("night") || t.contains("深夜"))
    {
        out.push(event("late_night_interaction", json!({})));
    }
    if context
        .get("weather")
        .and_then(Value::as_str)
        .is_some_and(|w| w.contains("rain") || w.contains('雨'))
    {
        out.push(event("rainy_day_bonding", json!({})));
    }
    if replies.len() >= 2 {
        out.push(event(
            "achievement",
            json!({"id": "multi_character_chat", "name": "社交达人"}),
        ));
    }
    let reply_len: usize = replies.iter().map(|r| r.response.len()).sum();
    if user_message.len() > 200 || reply_len > 500 {
        out.push(event("deep_conversation", json!({})));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressed_characters_are_distinct_in_order_and_capped() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            addressed(&ids(&["b", "a", "b", "a", "c"])).unwrap(),
            ids(&["b", "a", "c"])
        );
        let ten: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let mut repeated = ten.clone();
        repeated.extend(ten.clone());
        assert_eq!(addressed(&repeated).unwrap(), ten);
        let mut eleven = ten.clone();
        eleven.push("c10".into());
        match addressed(&eleven) {
            Err(ServerError::BadRequest { details, .. }) => {
                assert!(details.contains("11"), "{details}")
            }
            other => panic!("{other:?}"),
        }
    }

    fn reply(emotion: &str, intensity: i64, body: &str) -> EmotionalResponse {
        EmotionalResponse {
            character_id: "c1".into(),
            character_name: "Lin".into(),
            response: "I found a clue.".into(),
            emotion: emotion.into(),
            intensity,
            body_language: body.into(),
            facial_expression: String::new(),
            voice_tone: String::new(),
            secondary_emotions: vec!["curiosity".into(), "boredom".into()],
            timestamp: String::new(),
            tokens_used: None,
        }
    }

    #[test]
    fn the_emotion_model() {
        assert_eq!(mood("joy", 9), "euphoric");
        assert_eq!(mood("恐惧", 5), "afraid");
        assert_eq!(mood("curious", 2), "calm");
        assert_eq!(energy("fear", 7), 0.36);
        assert_eq!(energy("joy", 10), 0.95);
        assert_eq!(energy("sadness", 0), 0.1);
        assert_eq!(activity("nods slowly"), "nodding");
        assert_eq!(activity("微笑着点头"), "nodding");
        assert_eq!(activity(""), "talking");
        assert_eq!(
            status_effects(&["curiosity".into(), "x".into()]),
            ["curious"]
        );
        let r = reply("joy", 10, "smiles");
        assert_eq!(relationship_delta(&r, "thank you"), 0.18);
    }

    #[test]
    fn significance_and_progress() {
        let r = reply("fear", 8, "");
        let s = significance(std::slice::from_ref(&r), "what is the secret?");
        // 1 + one character + intensity 8/2 + keywords "secret" and "clue".
        assert_eq!(s, 1 + 1 + 4 + 2);
        assert_eq!(progress_change(10, s), (0.09, 9));
        assert_eq!(progress_change(80, 2), (0.014, 1));
        assert!(unlocked(30, "a clue").contains(&"新线索: 重要信息"));
        assert!(unlocked(30, "").contains(&"故事分支: 第二章节"));
    }

    #[test]
    fn follow_ups_end_with_continue() {
        let r = reply("fear", 5, "");
        let out = follow_ups(std::slice::from_ref(&r), "why?", None, &Map::new(), 10);
        let texts: Vec<&str> = out.iter().filter_map(|c| c["text"].as_str()).collect();
        assert_eq!(
            texts,
            [
                "深入探讨这个问题的原因",
                "给予安全感和保证",
                "了解更多背景信息",
                "继续当前对话"
            ]
        );
        assert_eq!(
            out.last().unwrap()["metadata"]["choice_type"],
            "continuation"
        );
    }
}
