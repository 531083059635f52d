//! A loopback fake model for the failure paths of the routes that call the LLM. It analyses
//! texts like the story model (so scenes can be made) and answers every other prompt by a
//! marker in the user prompt: `BREAK` gets a vendor 500 saying [`VENDOR_FAILURE`], `GARBLE`
//! prose where JSON was asked, `GHOST` an exchange spoken by someone not in the scene, and
//! `SLOW` nothing within the server's attempt limit ([`server`] allows 2 s).

use std::time::Duration;

use serde_json::json;

use crate::fake::{FakeVendor, Recorded, Reply};
use crate::story_model::{chunk_answer, completion};
use crate::{Backend, Server, ServerBuilder};

/// What the vendor says when it fails (the cause the server's `error.details` names).
pub const VENDOR_FAILURE: &str = "the vendor fell over";

/// The prose the model writes instead of JSON under `GARBLE`.
pub const PROSE: &str = "Sorry, I would rather tell you a story about the lighthouse.";

pub async fn model() -> FakeVendor {
    FakeVendor::start(|req: &Recorded| {
        let body = req.json();
        let system = body["messages"][0]["content"].as_str().unwrap_or_default();
        let user = body["messages"][1]["content"].as_str().unwrap_or_default();
        if user.contains("BREAK") {
            Reply::json(
                500,
                json!({"error": {"message": VENDOR_FAILURE, "type": "server_error"}}),
            )
        } else if user.contains("SLOW") {
            Reply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                chunks: vec![b"{".to_vec(), b"}".to_vec()],
                chunk_delay: Duration::from_secs(20),
            }
        } else if user.contains("GARBLE") {
            completion(PROSE)
        } else if user.contains("GHOST") {
            let line = json!({"character_id": "", "character_name": "Ghost",
                              "message": "Nobody sees me.", "emotion": "", "action": ""});
            completion(&json!({"dialogues": [line]}).to_string())
        } else if system.contains("interactive story") {
            completion(&chunk_answer(user).to_string())
        } else {
            completion("I saw nothing.")
        }
    })
    .await
}

/// A server whose active provider is the `openai` plugin pointed at `base`: one attempt per
/// call, 2 s per attempt.
pub async fn server(backend: Backend, base: &str) -> Server {
    ServerBuilder::new(backend)
        .plugin("openai")
        .config(&format!(
            "[llm]\nprovider = \"openai\"\nmax_attempts = 1\ntimeout_secs = 2\n\
             [plugins.openai.settings]\nbase_url = \"{base}/v1\""
        ))
        .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-story-model")
        .start()
        .await
}
