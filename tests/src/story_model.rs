//! A loopback fake of an LLM vendor (OpenAI wire format) that answers the way a model
//! would for each of the server's prompts: text analysis finds the people, key and
//! lighthouse a chunk mentions; characters answer in character, as text, as a stream or as
//! an emotional JSON reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake::{FakeVendor, Recorded, Reply};
use crate::{Backend, Server, ServerBuilder};

/// People, things and places the fake model "recognises" in a chunk.
pub const PEOPLE: [(&str, &str); 3] = [
    ("Lin Chen", "protagonist"),
    ("Su Wan", "friend"),
    ("Zed the Late", "latecomer"),
];

pub fn completion(content: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-s", "object": "chat.completion", "created": 1_750_000_000, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
        }),
    )
}

/// What the model would say about one chunk: the people, key and lighthouse it mentions.
pub fn chunk_answer(text: &str) -> Value {
    let characters: Vec<Value> = PEOPLE
        .iter()
        .filter(|(name, _)| text.contains(name))
        .map(|(name, role)| {
            json!({"name": name, "aliases": [], "role": role, "description": format!("{name} of the harbour"),
                   "personality": "", "background": "", "speech_style": "",
                   "relationships": {}, "knowledge": [format!("seen in {}", &text[..12.min(text.len())])]})
        })
        .collect();
    let mut items = Vec::new();
    if text.contains("brass key") {
        items.push(json!({"name": "brass key", "description": "worn teeth", "location": "the docks", "type": "key"}));
    }
    let mut locations = Vec::new();
    if text.contains("lighthouse") {
        locations.push(json!({"name": "lighthouse", "description": "long abandoned", "accessible": false, "requires_item": "brass key"}));
    }
    json!({
        "summary": format!("A part with {} people.", characters.len()),
        "scenes": [{"name": "Foggy harbour", "description": "A harbour town under fog", "atmosphere": "tense",
                    "era": "1920s", "themes": ["mystery", "family"], "items": [], "importance": "high"}],
        "characters": characters,
        "items": items,
        "locations": locations
    })
}

/// The fake model. The chunk answer is wrapped in a code fence with chatter, as models do.
pub async fn model(fail_on: Option<&'static str>, slow: Option<Arc<AtomicBool>>) -> FakeVendor {
    FakeVendor::start(move |req: &Recorded| {
        let body = req.json();
        let system = body["messages"][0]["content"].as_str().unwrap_or_default();
        let user = body["messages"][1]["content"].as_str().unwrap_or_default();
        if let Some(marker) = fail_on
            && user.contains(marker)
        {
            return Reply::json(
                500,
                json!({"error": {"message": "The server had an error", "type": "server_error"}}),
            );
        }
        if let Some(flag) = &slow
            && flag.load(Ordering::SeqCst)
        {
            return Reply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                chunks: vec![b"{".to_vec(), b"}".to_vec()],
                chunk_delay: Duration::from_secs(30),
            };
        }
        if let Some(reply) = story_answer(system, user, body["stream"] == true) {
            return reply;
        }
        if system.contains("Stay in character for the") {
            let reply = format!("{} says: I saw nothing at the lighthouse.", speaker(system));
            if body["stream"] == true {
                return stream_reply(&reply);
            }
            completion(&reply)
        } else if system.contains("describe how") {
            let reply = json!({
                "response": format!("{} whispers: I saw nothing.", speaker(system)),
                "emotion": "fear", "intensity": "7", "body_language": "steps back",
                "facial_expression": "pale", "voice_tone": "low",
                "secondary_emotions": ["guilt", "worry", "shame"]
            });
            completion(&reply.to_string())
        } else if system.contains("You direct a scene") {
            // Names from the roster; the model's ids are made up (the server must fix them).
            let lines: Vec<Value> = roster(system)
                .iter()
                .map(|name| json!({"character_id": "char_made_up", "character_name": name,
                                   "message": format!("{name} argues about: {user}. And means it."),
                                   "emotion": "anger", "action": "paces"}))
                .collect();
            completion(&json!({"dialogues": lines}).to_string())
        } else if system.contains("Simulate a natural conversation") {
            let mut lines: Vec<Value> = roster(system)
                .iter()
                .map(|name| json!({"character_id": "", "character_name": name.to_lowercase(),
                                   "message": format!("{name} remembers: {user}."),
                                   "emotion": "calm", "action": "sits"}))
                .collect();
            lines.push(json!({"character_name": "Ghost", "message": "Nobody sees me.", "emotion": "", "action": ""}));
            completion(&json!(lines).to_string())
        } else if system.contains("interactive story") {
            let text = format!(
                "Here is the analysis:\n```json\n{}\n```",
                chunk_answer(user)
            );
            completion(&text)
        } else if system.contains("summaries of consecutive parts") {
            completion(r#"{"summary": "The whole story in brief."}"#)
        } else {
            completion("I do not know this prompt.")
        }
    })
    .await
}

/// Marker the story fake puts in a next-node answer when the user prompt contains it: the
/// answer is then unusable JSON (to test that a bad answer writes nothing).
pub const BROKEN_NEXT: &str = "[broken]";

/// What the model says to the story engine's prompts (spec story-export §4), or `None` for
/// other prompts. Answers quote the input so tests can see what was sent.
pub fn story_answer(system: &str, user: &str, stream: bool) -> Option<Reply> {
    let text = |reply: &str| {
        if stream {
            stream_reply(reply)
        } else {
            completion(reply)
        }
    };
    if system.contains("turn one passage of a source text") {
        let passage = user
            .split("The passage to retell:")
            .nth(1)
            .unwrap_or("")
            .trim();
        let first: String = passage.chars().take(40).collect();
        return Some(completion(
            &json!({"content": format!("Enriched: {first}"), "type": "main",
                    "choices": [{"text": "Follow the fog", "consequence": "Risky", "next_node_hint": "the lighthouse"},
                                {"text": "", "consequence": "skipped"},
                                {"text": "Stay put", "consequence": "Safe", "next_node_hint": "the pier"}]})
            .to_string(),
        ));
    }
    if system.contains("write the next scene of an interactive branching story") {
        if user.contains(BROKEN_NEXT) {
            return Some(completion("{\"content\": \"half a node"));
        }
        let chose = user
            .lines()
            .find_map(|l| l.strip_prefix("The player chose: "))
            .unwrap_or("?");
        return Some(completion(
            &json!({"content": format!("After \"{chose}\" the fog thickens."), "type": "event",
                    "choices": [{"text": format!("Go on from {chose}"), "consequence": "More fog", "next_node_hint": "lighthouse"},
                                {"text": "Turn back", "consequence": "Safety", "next_node_hint": "pier"}],
                    "new_task": {"title": "", "description": "blank titles are skipped"},
                    "new_location": {"name": "Lighthouse", "description": "Tall and dark", "accessible": false},
                    "new_item": {"name": "Lantern", "description": "Still warm", "type": "tool"},
                    "character_interactions": [{"trigger_condition": "when the lantern is lit", "character_ids": ["c1"],
                                                "topic": "the light", "context_description": "they argue"}]})
            .to_string(),
        ));
    }
    if system.contains("describe what a player finds when exploring") {
        return Some(completion(
            &json!({"description": "Behind the crates a drawer has been forced.",
                    "found_item": {"name": "Torn receipt", "description": "Half a receipt", "type": "document"},
                    "story_event": {"content": "Footsteps approach the drawer.", "type": "encounter",
                                    "choices": [{"text": "Hide", "consequence": "You may overhear a name."}]},
                    "new_clue": "The initial matches the quartermaster."})
            .to_string(),
        ));
    }
    if system.contains("Write the next short paragraph") {
        let nodes = user.matches("[NODE ").count();
        return Some(text(&format!("The story moves on ({nodes} scenes known).")));
    }
    if system.contains("narrator and host of the interactive story") {
        let input = user.split("user_new_message:").nth(1).unwrap_or("").trim();
        return Some(text(
            &json!({"narration": format!("You act: {input}. The lantern flickers."),
                    "choices": [{"text": "Open the drawer", "consequence": "Noise", "next_hint": "watchers", "impact": 2},
                                {"text": "Wait in the dark", "consequence": "Patience", "impact": "low"}]})
            .to_string(),
        ));
    }
    if system.contains("in an interactive story") || system.contains("of an interactive story") {
        let input = user.lines().last().unwrap_or("");
        return Some(text(&format!("The host answers: {input}")));
    }
    None
}

/// The character a persona prompt is about (`You are <name>, ...` / `You play <name>, ...`).
fn speaker(system: &str) -> String {
    system
        .strip_prefix("You are ")
        .or_else(|| system.strip_prefix("You play "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("someone")
        .to_string()
}

/// An OpenAI streamed answer: the reply in three pieces, then usage.
fn stream_reply(reply: &str) -> Reply {
    let third = reply.len() / 3;
    let cut = |i: usize| {
        let mut i = i;
        while !reply.is_char_boundary(i) {
            i += 1;
        }
        i
    };
    let (a, b) = (cut(third), cut(2 * third));
    let pieces = [&reply[..a], &reply[a..b], &reply[b..]];
    let mut frames: Vec<String> = pieces
        .iter()
        .map(|p| {
            format!(
                "data: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o",
                       "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": null}]})
            )
        })
        .collect();
    frames.push(format!(
        "data: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ));
    frames.push(format!(
        "data: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [],
               "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}})
    ));
    frames.push("data: [DONE]\n\n".to_string());
    let refs: Vec<&str> = frames.iter().map(String::as_str).collect();
    Reply::sse(&refs)
}

/// Names in a roster (`- id <id>: <name> — ...` lines).
fn roster(system: &str) -> Vec<String> {
    system
        .lines()
        .filter_map(|l| l.strip_prefix("- id "))
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(_, rest)| rest.split(" — ").next())
        .map(str::to_string)
        .collect()
}

/// A server whose active provider is the `openai` plugin pointed at the story model at `base`
/// (one attempt per call), plus `extra` config text.
pub async fn server(backend: Backend, base: &str, extra: &str) -> Server {
    ServerBuilder::new(backend)
        .plugin("openai")
        .config(&format!(
            "[llm]\nprovider = \"openai\"\nmax_attempts = 1\n[plugins.openai.settings]\nbase_url = \"{base}/v1\""
        ))
        .config(extra)
        .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-story-model")
        .start()
        .await
}

/// A text in which the story model finds Lin Chen and Su Wan.
pub const HARBOUR: &str =
    "Fog came in over the harbour. Lin Chen counted crates while Su Wan watched.";

/// A scene made from [`HARBOUR`]; returns (scene id, Lin Chen's id, Su Wan's id).
pub async fn harbour_scene(server: &Server) -> (String, String, String) {
    let (status, body) = server
        .post("/api/scenes", &json!({"title": "Harbour", "text": HARBOUR}))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let (_, body) = server.get(&format!("/api/scenes/{id}/characters")).await;
    let find = |name: &str| {
        body["data"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .and_then(|c| c["id"].as_str())
            .map(String::from)
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    (id, find("Lin Chen"), find("Su Wan"))
}
