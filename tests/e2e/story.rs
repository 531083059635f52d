//! The story engine through the real binary (spec story-export §1-3, §5.1-5.2): a story made
//! on first use without waiting for a model, stored once however many first requests race,
//! node content read without ever creating a story, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sceneintruder_tests::story_model::{model, server};
use sceneintruder_tests::{Server, backends};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Three paragraphs of about 400 characters: two segments, so two nodes.
fn text() -> String {
    let paragraph = |who: &str| {
        format!("{who} walked the harbour wall at dusk while the fog rolled in. ").repeat(6)
    };
    format!(
        "{}\n\n{}\n\n{}",
        paragraph("Lin Chen"),
        paragraph("Su Wan"),
        paragraph("Old Ma")
    )
}

#[tokio::test]
async fn a_story_is_made_on_first_use_and_kept() {
    for backend in backends() {
        // The model answers the scene analysis, then stops answering: a story must not
        // wait for it (its enrichment runs in the background).
        let slow = Arc::new(AtomicBool::new(false));
        let vendor = model(None, Some(slow.clone())).await;
        let server = server(backend, &vendor.base, "").await;
        let (status, body) = server
            .post("/api/scenes", &json!({"title": "Harbour", "text": text()}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        slow.store(true, Ordering::SeqCst);

        // Ten first requests at once: one story, the same for all of them.
        let path = format!("/api/scenes/{scene}/story");
        let answers = futures::future::join_all((0..10).map(|_| server.get(&path))).await;
        let mut stories: Vec<Value> = Vec::new();
        for (status, body) in answers {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["message"], "故事数据获取成功");
            stories.push(body["data"].clone());
        }
        assert!(
            stories.windows(2).all(|w| w[0] == w[1]),
            "one story for all"
        );
        let story = &stories[0];
        assert_eq!(story["scene_id"], scene.as_str());
        assert_eq!(story["current_state"], "Initial");
        assert_eq!(story["progress"], 0);
        let nodes = story["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2, "{story}");
        let first = nodes[0]["id"].as_str().expect("node id").to_string();
        assert_eq!(first, format!("node_{scene}_1"));
        assert_eq!(nodes[0]["is_revealed"], true);
        assert_eq!(nodes[1]["is_revealed"], false);
        assert_eq!(nodes[0]["type"], "main");
        assert!(
            nodes[0]["content"]
                .as_str()
                .is_some_and(|c| c.starts_with("Narrative focus:\n")),
            "{story}"
        );
        let choices: Vec<&str> = nodes[0]["choices"]
            .as_array()
            .expect("choices")
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(
            choices,
            [
                format!("choice_{first}_reflect"),
                format!("choice_{first}_act")
            ]
        );
        assert_eq!(story["tasks"][0]["id"], format!("task_{scene}_primary"));
        assert_eq!(story["tasks"][0]["title"], "Stabilize the Situation");
        assert!(
            nodes[0]["original_content"]
                .as_str()
                .is_some_and(|c| c.chars().count() <= 603 && c.ends_with("...")),
            "§5.1 cuts long passages for this route: {story}"
        );

        // Read again: stored, not made again.
        let (_, again) = server.get(&path).await;
        assert_eq!(&again["data"], story);

        // Node content: the whole passage, never a new story.
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/{first}/content"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "故事节点内容获取成功");
        let data = &body["data"];
        assert_eq!(data["node"]["id"], first.as_str());
        assert_eq!(data["content"], nodes[0]["content"]);
        assert!(
            data["original_content"]
                .as_str()
                .is_some_and(|c| c.chars().count() > 600),
            "not cut here"
        );
        assert_eq!(data["character_links"], Value::Null);
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/node_missing/content"))
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "RESOURCE_NOT_FOUND");
        assert_eq!(body["error"]["message"], "故事节点不存在");

        // Someone else's scene has no story for them, and none is made.
        let token = server.new_user_token("mallory").await;
        let (status, body) = server
            .send_as(Some(&token), reqwest::Method::GET, &path, None)
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["message"], "故事数据不存在");

        // A second scene's node content does not make its story.
        slow.store(false, Ordering::SeqCst);
        let (_, body) = server
            .post("/api/scenes", &json!({"title": "Other", "text": text()}))
            .await;
        let other = body["data"]["id"].as_str().expect("id").to_string();
        let (status, _) = server
            .get(&format!("/api/scenes/{other}/nodes/node_{other}_1/content"))
            .await;
        assert_eq!(status, 404);

        // Deleting the scene deletes its story.
        let (status, body) = server
            .send_as(
                None,
                reqwest::Method::DELETE,
                &format!("/api/scenes/{scene}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/{first}/content"))
            .await;
        assert_eq!(status, 404, "{body}");
    }
}

/// A story with its background enrichment finished (every node narrated by the model).
async fn enriched_story(server: &Server, scene: &str) -> Value {
    for _ in 0..200 {
        let (status, body) = server.get(&format!("/api/scenes/{scene}/story")).await;
        assert_eq!(status, 200, "{body}");
        let nodes = body["data"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !nodes.is_empty() && nodes.iter().all(|n| n["metadata"]["analyzed"] == true) {
            return body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("enrichment did not finish");
}

async fn new_scene(server: &Server) -> String {
    let (status, body) = server
        .post("/api/scenes", &json!({"title": "Harbour", "text": text()}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().expect("id").to_string()
}

fn node<'a>(story: &'a Value, id: &str) -> &'a Value {
    story["nodes"]
        .as_array()
        .and_then(|all| all.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("node {id} in {story}"))
}

#[tokio::test]
async fn a_story_is_walked_from_a_fresh_scene() {
    for backend in backends() {
        let vendor = model(None, None).await;
        // The story model's server plus the bundled exporters.
        let server = sceneintruder_tests::ServerBuilder::new(backend)
            .plugin("openai")
            .plugin("json")
            .plugin("markdown")
            .plugin("txt")
            .plugin("html")
            .plugin("csv")
            .config(&format!(
                "[llm]\nprovider = \"openai\"\nmax_attempts = 1\n[plugins.openai.settings]\nbase_url = \"{}/v1\"",
                vendor.base
            ))
            .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-story-model")
            .start()
            .await;
        let scene = new_scene(&server).await;
        let base = format!("/api/scenes/{scene}/story");

        // Init: the background job narrates every node with the model (§4.1).
        let story = enriched_story(&server, &scene).await;
        let first = format!("node_{scene}_1");
        let second = format!("node_{scene}_2");
        assert!(
            node(&story, &first)["content"]
                .as_str()
                .unwrap_or("")
                .starts_with("Enriched: ")
        );
        assert_eq!(node(&story, &second)["metadata"]["segment_enhanced"], true);
        let ids: Vec<&str> = node(&story, &second)["choices"]
            .as_array()
            .expect("choices")
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(
            ids,
            [format!("choice_{second}_1"), format!("choice_{second}_3")],
            "ids count skipped choices"
        );

        // Advance: the second node is revealed and narrated.
        let (status, body) = server.post(&format!("{base}/advance"), &json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "故事已推进");
        assert_eq!(body["data"]["story_update"]["title"], second.as_str());
        assert!(
            body["data"]["story_update"]["content"]
                .as_str()
                .unwrap_or("")
                .starts_with("The story moves on")
        );
        assert_eq!(
            node(&body["data"]["story_data"], &second)["is_revealed"],
            true
        );
        // The scene's aggregate view carries the story and where the player is.
        let (status, body) = server.get(&format!("/api/scenes/{scene}/aggregate")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["story"]["scene_id"], scene.as_str());
        assert_eq!(body["data"]["current_node"]["id"], second.as_str());
        assert_eq!(
            body["data"]["available_choices"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            body["data"]["progress"]["story_completion"], 1.0,
            "both nodes revealed"
        );
        assert_eq!(
            body["data"]["ui_state"]["notifications"][0]["id"],
            "welcome"
        );

        // Three choices down one branch from the second node.
        let choose = |node_id: String, choice_id: String| {
            let server = &server;
            let path = format!("{base}/choice");
            async move {
                server
                    .post(&path, &json!({"node_id": node_id, "choice_id": choice_id}))
                    .await
            }
        };
        let (status, body) = choose(second.clone(), format!("choice_{second}_1")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "选择执行成功");
        let a = body["data"]["next_node"].clone();
        let a_id = a["id"].as_str().expect("id").to_string();
        assert_eq!(a["parent_id"], second.as_str());
        assert_eq!(a["content"], "After \"Follow the fog\" the fog thickens.");
        assert_eq!(
            a["metadata"]["source_choice_id"],
            format!("choice_{second}_1")
        );
        assert_eq!(
            a["metadata"]["interaction_triggers"][0]["condition"],
            "when the lantern is lit"
        );
        assert_eq!(body["data"]["story_data"]["progress"], 5);
        let taken = &node(&body["data"]["story_data"], &second)["choices"][0];
        assert_eq!(
            (taken["selected"].clone(), taken["next_node_id"].clone()),
            (json!(true), json!(a_id))
        );
        let tasks = body["data"]["story_data"]["tasks"]
            .as_array()
            .expect("tasks")
            .len();
        assert_eq!(tasks, 1, "a task with a blank title is not added");
        // The same choice again, an unknown one, a missing field.
        let (status, body) = choose(second.clone(), format!("choice_{second}_1")).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (409, json!("CONFLICT")),
            "{body}"
        );
        assert_eq!(body["error"]["details"], "选择已被选中");
        let (status, body) = choose(second.clone(), "choice_nope".into()).await;
        assert_eq!(
            (status, body["error"]["message"].clone()),
            (400, json!("无效的节点或选择"))
        );
        let (status, body) = server
            .post(&format!("{base}/choice"), &json!({"node_id": second}))
            .await;
        assert_eq!(
            (status, body["error"]["message"].clone()),
            (400, json!("参数格式错误"))
        );
        // The item the model introduced is in the scene.
        let (_, items) = server.get(&format!("/api/scenes/{scene}/items")).await;
        assert!(items.to_string().contains("Lantern"), "{items}");

        let (status, body) = choose(a_id.clone(), format!("choice_{a_id}_1")).await;
        assert_eq!(status, 200, "{body}");
        let b_id = body["data"]["next_node"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let (status, body) = choose(b_id.clone(), format!("choice_{b_id}_1")).await;
        assert_eq!(status, 200, "{body}");
        let c_id = body["data"]["next_node"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        assert_eq!(body["data"]["next_node"]["parent_id"], b_id.as_str());
        assert_eq!(body["data"]["story_data"]["progress"], 15);

        // Rewind to the second node: the branch below it is hidden, its choice open again.
        let (status, body) = server
            .post(&format!("{base}/rewind"), &json!({"node_id": second}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "故事已成功回溯");
        assert_eq!(body["data"]["target_node_id"], second.as_str());
        let (_, body) = server.get(&base).await;
        let story = &body["data"];
        for hidden in [&a_id, &b_id, &c_id] {
            assert_eq!(node(story, hidden)["is_revealed"], false, "{hidden}");
        }
        assert_eq!(node(story, &second)["is_revealed"], true);
        assert_eq!(node(story, &second)["choices"][0]["selected"], false);
        let (_, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/{a_id}/content"))
            .await;
        assert_eq!(
            body["data"]["node"]["is_revealed"], false,
            "node content sees the rewind at once"
        );

        // A different choice: a second branch beside the first.
        let (status, body) = choose(second.clone(), format!("choice_{second}_3")).await;
        assert_eq!(status, 200, "{body}");
        let d_id = body["data"]["next_node"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let (status, body) = server.get(&format!("{base}/branches")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "故事分支获取成功");
        let roots = body["data"]["root_nodes"].as_array().expect("roots");
        let root_ids: Vec<&str> = roots.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(root_ids, [first.as_str(), second.as_str()]);
        let children: Vec<(&str, bool)> = roots[1]["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|c| (c["id"].as_str().unwrap_or(""), c["is_active"] == true))
            .collect();
        assert_eq!(
            children,
            [(a_id.as_str(), false), (d_id.as_str(), true)],
            "both branches"
        );
        assert_eq!(roots[1]["children"][0]["children"][0]["id"], b_id.as_str());
        assert_eq!(body["data"]["current_path"][&d_id], true);

        // The choices on offer are the new node's.
        let (status, body) = server.get(&format!("{base}/choices")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"][0]["id"], format!("choice_{d_id}_1"));

        // A command replaces the node's open choices with the model's suggestions.
        let (status, body) = server
            .post(
                &format!("{base}/command"),
                &json!({"input": "I search the drawer"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "互动指令执行成功");
        assert_eq!(
            body["data"]["reply"],
            "You act: I search the drawer. The lantern flickers."
        );
        assert_eq!(body["data"]["fallback_used"], false);
        assert_eq!(body["data"]["choice_node_id"], d_id.as_str());
        assert_eq!(body["data"]["choice_suggestions"][1]["impact_text"], "low");
        let (_, body) = server
            .get(&format!("/api/scenes/{scene}/nodes/{d_id}/content"))
            .await;
        assert_eq!(
            body["data"]["node"]["choices"][0]["text"],
            "Open the drawer"
        );
        let (status, body) = server
            .post(&format!("{base}/command"), &json!({"input": "  "}))
            .await;
        assert_eq!(
            (status, body["error"]["message"].clone()),
            (400, json!("指令内容不能为空"))
        );

        // Sidebar insert of the first node.
        let (status, body) = server
            .post(&format!("{base}/nodes/{first}/insert"), &json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "节点内容已插入互动屏幕");

        // Location unlock and exploration.
        let (_, body) = server.get(&base).await;
        let places = body["data"]["locations"]
            .as_array()
            .cloned()
            .expect("locations");
        let lighthouse = places
            .iter()
            .find(|l| l["name"] == "Lighthouse")
            .and_then(|l| l["id"].as_str())
            .expect("the model's new location")
            .to_string();
        let (status, body) = server
            .post(&format!("{base}/locations/{lighthouse}/unlock"), &json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "地点解锁成功");
        let (status, body) = server
            .post(
                &format!("{base}/locations/{lighthouse}/explore"),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "地点探索成功");
        assert_eq!(body["data"]["found_item"]["name"], "Torn receipt");
        assert_eq!(body["data"]["story_node"]["source"], "EXPLORATION");
        let (status, body) = server
            .post(&format!("{base}/locations/loc_nowhere/explore"), &json!({}))
            .await;
        assert_eq!(
            (status, body["error"]["details"].clone()),
            (404, json!("地点不存在"))
        );

        // Objectives: the task completes once, progress +10 once.
        let (_, body) = server.get(&base).await;
        let before = body["data"]["progress"].as_i64().expect("progress");
        for objective in [1, 2, 2] {
            let (status, body) = server
                .post(&format!("{base}/tasks/task_{scene}_primary/objectives/obj_{scene}_{objective}/complete"), &json!({}))
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["message"], "目标完成成功");
        }
        let (_, body) = server.get(&base).await;
        assert_eq!(body["data"]["progress"].as_i64(), Some(before + 10));
        assert_eq!(body["data"]["tasks"][0]["completed"], true);
        assert_eq!(body["data"]["tasks"][0]["status"], "completed");

        // Batch: all or nothing.
        let (status, body) = server
            .post(&format!("{base}/batch"), &json!({"operations": [{"type": "add_item", "data": {"name": "Rope"}}, {"type": "bogus"}]}))
            .await;
        assert_eq!(
            (status, body["error"]["message"].clone()),
            (500, json!("批量操作失败")),
            "{body}"
        );
        assert_eq!(body["error"]["details"], "未知操作类型: bogus");
        let (_, items) = server.get(&format!("/api/scenes/{scene}/items")).await;
        assert!(
            !items.to_string().contains("Rope"),
            "nothing of a failed batch is kept"
        );
        let (status, body) = server
            .post(&format!("{base}/batch"), &json!({"operations": []}))
            .await;
        assert_eq!(
            (status, body["data"]["operations"].clone()),
            (200, json!(0))
        );

        // The story exports in every bundled format, and the story is still there after.
        for format in ["json", "markdown", "txt", "html", "csv"] {
            let response = reqwest::get(
                server.url(&format!("/api/scenes/{scene}/export/story?format={format}")),
            )
            .await
            .expect("export");
            let status = response.status();
            let text = response.text().await.expect("body");
            assert_eq!(status, 200, "{format}: {text}");
            assert!(
                text.contains(&d_id),
                "{format}: the taken branch is exported"
            );
        }

        // Restart from the beginning: only the first node, one story line in the log.
        let (status, body) = server
            .post(&format!("{base}/rewind"), &json!({"node_id": "new_start"}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "回溯至起点并清空上下文");
        assert_eq!(body["data"]["removed_node_ids"], json!([]));
        let (_, log) = server
            .get(&format!("/api/scenes/{scene}/conversations"))
            .await;
        let originals = log["data"]
            .as_array()
            .expect("log")
            .iter()
            .filter(|l| l["metadata"]["conversation_type"] == "story_original")
            .count();
        assert_eq!(originals, 1, "{log}");
        let (_, body) = server.get(&base).await;
        let revealed: Vec<&str> = body["data"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["is_revealed"] == true)
            .filter_map(|n| n["id"].as_str())
            .collect();
        assert_eq!(revealed, [first.as_str()]);
    }
}

#[tokio::test]
async fn a_bad_model_answer_writes_nothing() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        // The fake answers a next node with broken JSON when the current node carries the
        // marker, which enrichment copies from the passage's start.
        let (status, body) = server
            .post("/api/scenes", &json!({"title": "Harbour", "text": format!("{} {}", sceneintruder_tests::story_model::BROKEN_NEXT, text())}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let story = enriched_story(&server, &scene).await;
        let first = format!("node_{scene}_1");
        let before = story["nodes"].as_array().map(Vec::len);
        assert!(
            node(&story, &first)["content"]
                .as_str()
                .unwrap_or("")
                .contains("[broken]"),
            "{story}"
        );
        let choice = node(&story, &first)["choices"][0]["id"]
            .as_str()
            .expect("choice")
            .to_string();
        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/story/choice"),
                &json!({"node_id": first, "choice_id": choice}),
            )
            .await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["error"]["message"], "执行故事选择失败");
        assert!(
            body["error"]["details"]
                .as_str()
                .unwrap_or("")
                .starts_with("解析节点数据失败"),
            "{body}"
        );
        let (_, after) = server.get(&format!("/api/scenes/{scene}/story")).await;
        assert_eq!(
            after["data"]["nodes"].as_array().map(Vec::len),
            before,
            "no half-written node"
        );
        assert_eq!(
            node(&after["data"], &first)["choices"][0]["selected"],
            false
        );
        // The choice can be taken again (it was never marked taken).
        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/story/choice"),
                &json!({"node_id": first, "choice_id": choice}),
            )
            .await;
        assert_eq!(status, 500, "the same broken answer again, not 409: {body}");
    }
}

/// Twenty attempts at once on four choices of one story, over REST and the WebSocket:
/// each choice is taken exactly once, every taken choice has exactly one child, nothing is
/// lost and nothing answers 5xx.
#[tokio::test]
async fn concurrent_choices_leave_a_consistent_tree() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let scene = new_scene(&server).await;
        let story = enriched_story(&server, &scene).await;
        let mut targets = Vec::new();
        for n in [1, 2] {
            let id = format!("node_{scene}_{n}");
            for c in node(&story, &id)["choices"].as_array().expect("choices") {
                targets.push((id.clone(), c["id"].as_str().expect("id").to_string()));
            }
        }
        assert_eq!(targets.len(), 4);
        // Someone else in the room sees every change announced.
        let (mut observer, _) = tokio_tungstenite::connect_async(
            server.ws_url(&format!("/ws/scene/{scene}?user_id=observer")),
        )
        .await
        .expect("observer");
        let attempts = (0..20).map(|i| {
            let (node_id, choice_id) = targets[i % 4].clone();
            let server = &server;
            let scene = scene.clone();
            async move {
                if i % 2 == 0 {
                    let (status, body) = server
                        .post(
                            &format!("/api/scenes/{scene}/story/choice"),
                            &json!({"node_id": node_id, "choice_id": choice_id}),
                        )
                        .await;
                    assert!(status == 200 || status == 409, "{status} {body}");
                    status == 200
                } else {
                    let url = server.ws_url(&format!("/ws/scene/{scene}?user_id=player{i}"));
                    let (mut socket, _) =
                        tokio_tungstenite::connect_async(url).await.expect("socket");
                    let message =
                        json!({"type": "story_choice", "node_id": node_id, "choice_id": choice_id});
                    socket
                        .send(Message::Text(message.to_string().into()))
                        .await
                        .expect("send");
                    loop {
                        let frame = tokio::time::timeout(Duration::from_secs(60), socket.next())
                            .await
                            .expect("an answer")
                            .expect("open")
                            .expect("frame");
                        let Message::Text(text) = frame else { continue };
                        let reply: Value = serde_json::from_str(text.as_str()).expect("json");
                        match reply["type"].as_str() {
                            Some("story:choice_confirmed") => {
                                assert_eq!(reply["data"]["user_id"], format!("player{i}"));
                                return true;
                            }
                            Some("error") => {
                                assert_eq!(
                                    reply["error"], "执行故事选择失败: 选择已被选中",
                                    "{reply}"
                                );
                                return false;
                            }
                            _ => continue,
                        }
                    }
                }
            }
        });
        let won = futures::future::join_all(attempts).await;
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            4,
            "each choice taken once"
        );
        let mut announced = 0;
        while announced < 4 {
            let frame = tokio::time::timeout(Duration::from_secs(10), observer.next())
                .await
                .expect("announcements")
                .expect("open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(text.as_str()).expect("json");
            if message["type"] == "story:updated" {
                assert_eq!(message["reason"], "choice");
                announced += 1;
            }
        }
        let (_, body) = server.get(&format!("/api/scenes/{scene}/story")).await;
        let story = &body["data"];
        let nodes = story["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2 + 4);
        assert_eq!(story["progress"], 20, "no update lost");
        for (node_id, choice_id) in &targets {
            let choice = node(story, node_id)["choices"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["id"] == choice_id.as_str()))
                .expect("choice");
            assert_eq!(choice["selected"], true);
            let children: Vec<&Value> = nodes
                .iter()
                .filter(|n| {
                    n["metadata"]["source_choice_id"] == choice_id.as_str()
                        && n["parent_id"] == node_id.as_str()
                })
                .collect();
            assert_eq!(children.len(), 1, "{choice_id}");
            assert_eq!(choice["next_node_id"], children[0]["id"]);
        }
    }
}

/// A server killed while the model enriches a story resumes the job after its restart and
/// finishes it without adding or duplicating nodes.
#[tokio::test]
async fn enrichment_resumes_after_a_crash() {
    for backend in backends() {
        let slow = Arc::new(AtomicBool::new(false));
        let vendor = model(None, Some(slow.clone())).await;
        let mut server = server(backend, &vendor.base, "[jobs]\nlease_ms = 1000\n").await;
        let scene = new_scene(&server).await;
        slow.store(true, Ordering::SeqCst);
        let (status, body) = server.get(&format!("/api/scenes/{scene}/story")).await;
        assert_eq!(status, 200, "{body}");
        let ids: Vec<Value> = body["data"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].clone())
            .collect();
        // Wait until the job is asking the (now hanging) model, then kill the server.
        for _ in 0..100 {
            let asked = vendor.requests().iter().any(|r| {
                r.json()["messages"][0]["content"]
                    .as_str()
                    .is_some_and(|s| s.contains("turn one passage"))
            });
            if asked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.kill();
        slow.store(false, Ordering::SeqCst);
        // Past the lease, so the restarted server takes the job back.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.start_again().await;
        let story = enriched_story(&server, &scene).await;
        let after: Vec<Value> = story["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].clone())
            .collect();
        assert_eq!(after, ids, "the same nodes, none added or duplicated");
        for n in story["nodes"].as_array().expect("nodes") {
            assert!(
                n["content"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("Enriched: "),
                "{n}"
            );
        }
    }
}

/// `POST …/story/advance` and `…/story/command` stream their narration for clients that
/// ask for Server-Sent Events; the story mode command streams the narration, not the JSON.
#[tokio::test]
async fn advance_and_command_stream_their_narration() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let scene = new_scene(&server).await;
        enriched_story(&server, &scene).await;
        let client = reqwest::Client::new();
        let post = |path: String, body: Value| {
            client
                .post(server.url(&path))
                .header("accept", "text/event-stream")
                .json(&body)
                .send()
        };
        let response = post(format!("/api/scenes/{scene}/story/advance"), json!({}))
            .await
            .expect("advance");
        assert_eq!(response.status(), 200);
        let frames = sceneintruder_tests::sse::SseReader::new(response)
            .collect()
            .await;
        let deltas: String = frames
            .iter()
            .filter(|f| f.event == "delta")
            .filter_map(|f| f.data["text"].as_str())
            .collect();
        assert!(
            frames.iter().filter(|f| f.event == "delta").count() >= 3,
            "{frames:?}"
        );
        let done = frames
            .iter()
            .find(|f| f.event == "done")
            .expect("done frame");
        assert_eq!(done.data["story_update"]["content"], deltas.as_str());
        assert_eq!(
            done.data["story_update"]["title"],
            format!("node_{scene}_2")
        );

        let response = post(
            format!("/api/scenes/{scene}/story/command"),
            json!({"input": "I light the lantern"}),
        )
        .await
        .expect("command");
        assert_eq!(response.status(), 200);
        let frames = sceneintruder_tests::sse::SseReader::new(response)
            .collect()
            .await;
        let deltas: String = frames
            .iter()
            .filter(|f| f.event == "delta")
            .filter_map(|f| f.data["text"].as_str())
            .collect();
        assert_eq!(
            deltas, "You act: I light the lantern. The lantern flickers.",
            "{frames:?}"
        );
        let done = frames
            .iter()
            .find(|f| f.event == "done")
            .expect("done frame");
        assert_eq!(done.data["reply"], deltas.as_str());
        assert_eq!(
            done.data["choice_suggestions"][0]["text"],
            "Open the drawer"
        );

        // Another mode streams the model's plain text.
        let response = post(
            format!("/api/scenes/{scene}/story/command"),
            json!({"input": "What now?", "mode": "skill", "skill_hints": ["Keen Eye"]}),
        )
        .await
        .expect("command");
        let frames = sceneintruder_tests::sse::SseReader::new(response)
            .collect()
            .await;
        let done = frames
            .iter()
            .find(|f| f.event == "done")
            .expect("done frame");
        assert_eq!(done.data["mode"], "skill");
        assert!(
            done.data["context"]
                .as_str()
                .unwrap_or("")
                .contains("技能：Keen Eye"),
            "{done:?}"
        );
        assert_eq!(
            done.data["reply"],
            "The host answers: The player's command: What now?"
        );
    }
}

/// The client's story page, in the order it calls the server: story, node insert, command,
/// choice, chat with a character, advance, rewind — all from the one page, all working.
#[tokio::test]
async fn the_story_page_flow_works() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let (scene, lin, _) = sceneintruder_tests::story_model::harbour_scene(&server).await;
        let base = format!("/api/scenes/{scene}/story");
        let story = enriched_story(&server, &scene).await;
        let first = story["nodes"][0]["id"].as_str().expect("node").to_string();
        let (status, body) = server
            .post(
                &format!("{base}/nodes/{first}/insert"),
                &json!({"content": "The fog rolls in."}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["content"], "The fog rolls in.");
        let (status, body) = server
            .post(
                &format!("{base}/command"),
                &json!({"input": "I look around"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let choice = body["data"]["choice_suggestions"][0]["id"]
            .as_str()
            .expect("suggestion")
            .to_string();
        let (status, body) = server
            .post(
                &format!("{base}/choice"),
                &json!({"node_id": first, "choice_id": choice}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["next_node"]["content"],
            "After \"Open the drawer\" the fog thickens."
        );
        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene, "character_id": lin, "message": "What did you see?"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["data"]["response"]
                .as_str()
                .unwrap_or("")
                .contains("Lin Chen"),
            "{body}"
        );
        let (status, body) = server.post(&format!("{base}/advance"), &json!({})).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .post(&format!("{base}/rewind"), &json!({"node_id": first}))
            .await;
        assert_eq!(status, 200, "{body}");
        // The chat survives the rewind: only story lines are removed.
        let (_, log) = server
            .get(&format!("/api/scenes/{scene}/conversations?limit=100"))
            .await;
        let lines = log["data"].as_array().expect("log");
        assert!(
            lines.iter().any(|l| l["speaker_id"] == lin.as_str()),
            "{log}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l["metadata"]["source"] == "advance_story"),
            "{log}"
        );
    }
}
