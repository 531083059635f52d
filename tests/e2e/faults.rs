//! Faults under load through the real binary (issue 22): conversation order under many
//! concurrent chat turns, on SQLite and PostgreSQL.

use sceneintruder_tests::backends;
use sceneintruder_tests::story_model::{harbour_scene, model, server};
use serde_json::json;

/// A turn's two lines (the user's, then the reply) stay adjacent and in order whatever else
/// is written to the scene at the same time.
#[tokio::test]
async fn concurrent_chat_turns_keep_their_lines_together() {
    const TURNS: usize = 120;
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(
            backend,
            &vendor.base,
            "[rate_limits]\ndefault = { limit = 100000, window_secs = 60 }\n\
             chat = { limit = 100000, window_secs = 60 }\n",
        )
        .await;
        let (scene, lin, _) = harbour_scene(&server).await;
        let turns = (0..TURNS).map(|i| {
            let server = &server;
            let body =
                json!({"scene_id": scene, "character_id": lin, "message": format!("turn {i}")});
            async move { server.post("/api/chat", &body).await }
        });
        for (status, body) in futures::future::join_all(turns).await {
            assert_eq!(status, 200, "{body}");
        }
        let (status, log) = server
            .get(&format!("/api/scenes/{scene}/conversations?limit=1000"))
            .await;
        assert_eq!(status, 200, "{log}");
        let lines = log["data"].as_array().expect("lines");
        assert_eq!(lines.len(), 2 * TURNS);
        for pair in lines.chunks(2) {
            assert_eq!(pair[0]["speaker_id"], "user", "{pair:?}");
            assert_eq!(
                pair[1]["speaker_id"],
                lin.as_str(),
                "a reply right after its question: {pair:?}"
            );
        }
    }
}
