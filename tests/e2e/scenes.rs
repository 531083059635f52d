//! Scenes through the real binary with the real `openai` plugin against a loopback fake of
//! the OpenAI API that answers like a model would, per prompt kind: upload, analysis as a
//! job (SSE to the scene id), long texts in chunks, failures and cancellation that leave no
//! scene, synchronous create, scene/character/item/conversation routes, id validation and
//! ownership. On SQLite and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Duration;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use sceneintruder_tests::failing_model::{self, VENDOR_FAILURE};
use sceneintruder_tests::story_model::{model, server};
use sceneintruder_tests::{Backend, Server, ServerBuilder, backends, decode, error_details};
use serde_json::{Value, json};

const STORY: &str = "Fog came in over the harbour. Lin Chen counted crates while Su Wan watched.\n\n\
                     Lin Chen found a brass key near the lighthouse and said nothing.";

async fn analyze(server: &Server, title: &str, text: &str) -> String {
    let (status, body) = server
        .post("/api/analyze", &json!({"title": title, "text": text}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "文本分析请求已接受");
    body["data"]["task_id"]
        .as_str()
        .expect("task_id")
        .to_string()
}

async fn scene_ids(server: &Server) -> Vec<String> {
    let (status, body) = server.get("/api/scenes").await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["id"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn upload_reads_text_files_and_refuses_the_rest() {
    let vendor = model(None, None).await;
    let server = server(Backend::Sqlite, &vendor.base, "").await;
    let send = |name: &'static str, bytes: Vec<u8>| {
        let server = &server;
        async move {
            let form = Form::new().part("file", Part::bytes(bytes).file_name(name));
            let response = server
                .http
                .post(server.url("/api/upload"))
                .multipart(form)
                .send()
                .await
                .expect("upload");
            decode(response).await
        }
    };
    let (status, body) = send("雾港.TXT", STORY.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "文件上传成功");
    assert_eq!(body["data"]["filename"], "雾港.TXT");
    assert_eq!(body["data"]["content"], STORY);
    assert_eq!(body["data"]["size"], STORY.len());
    // Word and EPUB files give their text, in reading order.
    let docx = zip_of(&[(
        "word/document.xml",
        r#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Lin Chen found a brass key.</w:t></w:r></w:p><w:p><w:r><w:t>Su Wan watched.</w:t></w:r></w:p></w:body></w:document>"#,
    )]);
    let (status, body) = send("story.docx", docx).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["content"],
        "Lin Chen found a brass key.\n\nSu Wan watched."
    );
    let epub = zip_of(&[
        (
            "META-INF/container.xml",
            r#"<container><rootfiles><rootfile full-path="content.opf"/></rootfiles></container>"#,
        ),
        (
            "content.opf",
            r#"<package><manifest><item id="b" href="b.xhtml"/><item id="a" href="a.xhtml"/></manifest><spine><itemref idref="a"/><itemref idref="b"/></spine></package>"#,
        ),
        ("a.xhtml", "<html><body><p>Chapter one.</p></body></html>"),
        ("b.xhtml", "<html><body><p>Chapter two.</p></body></html>"),
    ]);
    let (status, body) = send("book.EPUB", epub).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["content"], "Chapter one.\n\nChapter two.");
    let (status, body) = send("broken.docx", b"PK not really".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "文件格式无效");

    for (name, bytes, message) in [
        ("a.pdf", b"%PDF".to_vec(), "不支持的文件类型"),
        ("a.txt", b"bin\0ary".to_vec(), "文件格式无效"),
        ("a.md", b"hi <script>x</script>".to_vec(), "文件内容不安全"),
        ("a.txt", vec![b'x'; 10_001], "文件内容格式异常"),
    ] {
        let (status, body) = send(name, bytes).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["error"]["message"], message);
    }
    let response = server
        .http
        .post(server.url("/api/upload"))
        .multipart(Form::new().text("other", "x"))
        .send()
        .await
        .expect("upload");
    let (status, body) = decode(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "获取上传文件失败");
}

#[tokio::test]
async fn analysis_job_stores_the_scene_before_completing() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "").await;
        let task = analyze(&server, "Harbour", STORY).await;
        let (frames, last) = server.progress_until_done(&task).await;
        assert_eq!(last["status"], "completed", "{frames:?}");
        let scene_id = last["scene_id"]
            .as_str()
            .expect("scene id in the terminal frame");
        assert_eq!(last["message"], format!("分析完成，场景已创建: {scene_id}"));
        let progress: Vec<i64> = frames
            .iter()
            .filter_map(|f| f["progress"].as_i64())
            .collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

        // The scene exists the moment the terminal frame arrives.
        let (status, body) = server.get(&format!("/api/scenes/{scene_id}")).await;
        assert_eq!(status, 200, "{body}");
        let data = &body["data"];
        assert_eq!(data["scene"]["title"], "Harbour");
        assert_eq!(data["scene"]["name"], "Foggy harbour");
        assert_eq!(data["scene"]["era"], "1920s");
        assert_eq!(data["scene"]["themes"], json!(["mystery", "family"]));
        assert_eq!(data["scene"]["user_id"], "anonymous");
        assert_eq!(data["scene"]["character_count"], 2);
        assert_eq!(data["scene"]["item_count"], 1);
        let names: Vec<&str> = data["characters"]
            .as_array()
            .expect("characters")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["Lin Chen", "Su Wan"]);
        assert_eq!(data["items"][0]["name"], "brass key");
        assert_eq!(data["scene"]["locations"][0]["name"], "lighthouse");
        assert!(
            data["scene"]["locations"][0]["description"]
                .as_str()
                .is_some_and(|d| d.contains("requires: brass key")),
            "{}",
            data["scene"]["locations"]
        );
        assert_eq!(data["original_text"], STORY);
        assert_eq!(data["original_segments"][0]["title"], "Original Segment 1");
        assert_eq!(data["context"]["conversations"], json!([]));
        assert_eq!(data["settings"]["scene_id"], scene_id);
        assert_eq!(scene_ids(&server).await, [scene_id]);

        // Characters, conversations, node content, aggregate.
        let (_, body) = server
            .get(&format!("/api/scenes/{scene_id}/characters"))
            .await;
        assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
        let character = body["data"][0]["id"].as_str().expect("id").to_string();
        let (status, body) = server
            .get(&format!("/api/scenes/{scene_id}/characters/{character}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["name"], "Lin Chen");
        let (status, body) = server
            .get(&format!("/api/scenes/{scene_id}/characters/char_nope"))
            .await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "CHARACTER_NOT_FOUND");
        let (status, body) = server
            .get(&format!(
                "/api/scenes/{scene_id}/conversations?paginated=true&limit=0"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"], json!([]));
        assert_eq!(body["meta"]["total"], 0);
        let (status, body) = server
            .get(&format!("/api/scenes/{scene_id}/nodes/node_1/content"))
            .await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "RESOURCE_NOT_FOUND");
        assert_eq!(body["error"]["message"], "故事节点不存在");
        let (status, body) = server
            .get(&format!("/api/scenes/{scene_id}/aggregate"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["version"], "1.0");
        assert_eq!(
            body["data"]["ui_state"]["selected_character_ids"],
            json!([character])
        );
        assert_eq!(
            body["data"]["progress"]["unlocked_content"],
            json!(["深入了解了1920s时代"])
        );
        let (status, _) = server
            .get(&format!(
                "/api/scenes/{scene_id}/aggregate?conversation_limit=1001"
            ))
            .await;
        assert_eq!(status, 400);

        // Delete removes everything that belongs to the scene.
        let (status, body) = server
            .send_as(
                None,
                Method::DELETE,
                &format!("/api/scenes/{scene_id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["scene_id"], scene_id);
        let (status, body) = server.get(&format!("/api/scenes/{scene_id}")).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND");
        let (status, body) = server.get(&format!("/api/scenes/{scene_id}/items")).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("SCENE_NOT_FOUND"))
        );
        assert!(scene_ids(&server).await.is_empty());
    }
}

#[tokio::test]
async fn long_texts_are_analysed_in_chunks_and_late_characters_are_found() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "[scenes]\nchunk_chars = 8000").await;
        let filler =
            "The tide rose and fell against the pilings, and nobody spoke of the night before. ";
        let mut text = "Lin Chen opened the warehouse.\n\n".to_string();
        while text.len() < 60_000 {
            text.push_str(&filler.repeat(10));
            text.push_str("\n\n");
        }
        text.push_str("At the very end, Zed the Late walked in from the rain.");
        let before = vendor.requests().len();
        let task = analyze(&server, "Long night", &text).await;
        let (frames, last) = server.progress_until_done(&task).await;
        assert_eq!(last["status"], "completed", "{frames:?}");
        let chunk_calls = vendor.requests()[before..]
            .iter()
            .filter(|r| r.text().contains("interactive story"))
            .count();
        assert!(
            chunk_calls >= 7,
            "{chunk_calls} chunk calls for 60k characters"
        );
        assert!(
            vendor.requests()[before..]
                .iter()
                .any(|r| r.text().contains("summaries of consecutive parts")),
            "parts' summaries are combined"
        );
        // Per-chunk progress was reported.
        assert!(
            frames.iter().any(|f| f["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("/{chunk_calls})")))),
            "{frames:?}"
        );
        let scene_id = last["scene_id"].as_str().expect("scene id");
        let (_, body) = server
            .get(&format!("/api/scenes/{scene_id}/characters"))
            .await;
        let names: Vec<&str> = body["data"]
            .as_array()
            .expect("characters")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["Lin Chen", "Zed the Late"]);
        let (_, body) = server.get(&format!("/api/scenes/{scene_id}")).await;
        assert_eq!(
            body["data"]["scene"]["summary"],
            "The whole story in brief."
        );
    }
}

#[tokio::test]
async fn failed_and_cancelled_analyses_leave_no_scene() {
    let vendor = model(Some("POISON"), None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "[scenes]\nchunk_chars = 1000").await;
        let text = format!(
            "{}\n\nPOISON in the middle.\n\n{}",
            "Lin Chen waits. ".repeat(80),
            "Su Wan leaves. ".repeat(80)
        );
        let task = analyze(&server, "Doomed", &text).await;
        let (_, last) = server.progress_until_done(&task).await;
        assert_eq!(last["status"], "failed", "{last}");
        let message = last["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("任务失败: 分析文本失败: 片段"),
            "{message}"
        );
        assert!(scene_ids(&server).await.is_empty());
    }

    for backend in backends() {
        let slow = Arc::new(AtomicBool::new(true));
        let vendor = model(None, Some(slow.clone())).await;
        let server = server(backend, &vendor.base, "").await;
        let task = analyze(&server, "Cancelled", STORY).await;
        // Wait until the model call is in flight, then cancel.
        for _ in 0..100 {
            if !vendor.requests().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !vendor.requests().is_empty(),
            "the analysis reached the model"
        );
        let (status, body) = server
            .post(&format!("/api/cancel/{task}"), &json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        slow.store(false, Ordering::SeqCst);
        let (_, job) = server.get(&format!("/api/jobs/{task}")).await;
        assert_eq!(job["data"]["state"], "cancelled", "{job}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(scene_ids(&server).await.is_empty());
    }
}

#[tokio::test]
async fn synchronous_create_and_readiness() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend.clone(), &vendor.base, "").await;
        let (status, body) = server
            .post("/api/scenes", &json!({"title": "Harbour", "text": STORY}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["message"], "场景创建成功");
        assert_eq!(body["data"]["title"], "Harbour");
        assert_eq!(body["data"]["user_id"], "anonymous");
        let id = body["data"]["id"].as_str().expect("id").to_string();
        assert_eq!(scene_ids(&server).await, std::slice::from_ref(&id));
        for (body, message) in [
            (json!({"title": "", "text": "x"}), "请求参数错误"),
            (json!({"title": "t"}), "请求参数错误"),
            (json!({"title": "t".repeat(201), "text": "x"}), "标题过长"),
            (
                json!({"title": "t", "text": "x".repeat(100_001)}),
                "文本内容过长",
            ),
        ] {
            let (status, out) = server.post("/api/scenes", &body).await;
            assert_eq!(status, 400, "{out}");
            assert_eq!(out["error"]["message"], message);
        }
        let (status, body) = server
            .post("/api/scenes/shell", &json!({"title": "  My Comic "}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["source"], "comic_standalone");
        assert_eq!(body["data"]["title"], "My Comic");
        assert_eq!(body["data"]["locations"], Value::Null);
    }

    // Without a provider: 503 LLM_NOT_READY, nothing created, no job started.
    let server = ServerBuilder::new(Backend::Sqlite)
        .plugin("openai")
        .start()
        .await;
    for path in ["/api/scenes", "/api/analyze"] {
        let (status, body) = server
            .post(path, &json!({"title": "Harbour", "text": STORY}))
            .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "LLM_NOT_READY");
        assert_eq!(body["error"]["message"], "LLM服务未配置或未就绪");
    }
    assert!(scene_ids(&server).await.is_empty());
}

#[tokio::test]
async fn items_crud_and_id_validation_and_ownership() {
    let vendor = model(None, None).await;
    for backend in backends() {
        let server = server(backend, &vendor.base, "[auth]\nguest_mode = false").await;
        for name in ["alice", "mallory"] {
            let (ok, out) = server.cli(
                &["user", "add", name, "--password-stdin"],
                "a long enough password\n",
            );
            assert!(ok, "{out}");
        }
        let token = |name: &'static str| {
            let server = &server;
            async move {
                let (_, body) = server
                    .post(
                        "/api/auth/login",
                        &json!({"username": name, "password": "a long enough password"}),
                    )
                    .await;
                body["data"]["token"].as_str().expect("token").to_string()
            }
        };
        let (alice, mallory) = (token("alice").await, token("mallory").await);
        let as_alice = |method: Method, path: String, body: Option<Value>| {
            let server = &server;
            let alice = alice.clone();
            async move {
                server
                    .send_as(Some(&alice), method, &path, body.as_ref())
                    .await
            }
        };
        let (status, body) = as_alice(
            Method::POST,
            "/api/scenes/shell".into(),
            Some(json!({"title": "Alice's"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["user_id"], "alice");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let items = format!("/api/scenes/{scene}/items");

        let (status, body) = as_alice(Method::GET, items.clone(), None).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["data"],
            json!({"scene_items": [], "owned_items": [], "total": 0})
        );
        let (status, body) = as_alice(
            Method::POST,
            items.clone(),
            Some(json!({"id": "ignored", "name": "brass key", "type": "key", "properties": {"opens": "gate"}})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["message"], "物品添加成功");
        let key = body["data"]["id"].as_str().expect("id").to_string();
        assert_ne!(key, "ignored");
        let created_at = body["data"]["created_at"].clone();
        let (status, _) = as_alice(
            Method::POST,
            items.clone(),
            Some(json!({"name": "lantern", "is_owned": true})),
        )
        .await;
        assert_eq!(status, 201);
        let (status, body) = as_alice(Method::POST, items.clone(), Some(json!({"name": 5}))).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["message"], "无效的请求数据");

        let (_, body) = as_alice(Method::GET, items.clone(), None).await;
        assert_eq!(body["data"]["total"], 2);
        assert_eq!(body["data"]["scene_items"][0]["name"], "brass key");
        assert_eq!(body["data"]["owned_items"][0]["name"], "lantern");

        // PUT replaces the item but keeps when it was created.
        let (status, body) = as_alice(
            Method::PUT,
            format!("{items}/{key}"),
            Some(json!({"name": "bronze key", "type": "key"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["name"], "bronze key");
        assert_eq!(body["data"]["created_at"], created_at);
        let (_, body) = as_alice(Method::GET, format!("{items}/{key}"), None).await;
        assert_eq!(body["data"]["name"], "bronze key");
        let (status, _) = as_alice(Method::DELETE, format!("{items}/{key}"), None).await;
        assert_eq!(status, 200);
        let (status, body) = as_alice(Method::DELETE, format!("{items}/{key}"), None).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "RESOURCE_NOT_FOUND");
        let (status, _) = as_alice(Method::GET, format!("{items}/{key}"), None).await;
        assert_eq!(status, 404);

        // Someone else's scene does not exist for them; ids are validated before storage.
        for (method, path) in [
            (Method::GET, format!("/api/scenes/{scene}")),
            (Method::GET, items.clone()),
            (Method::DELETE, format!("/api/scenes/{scene}")),
            (Method::POST, items.clone()),
        ] {
            let (status, body) = server
                .send_as(Some(&mallory), method, &path, Some(&json!({"name": "x"})))
                .await;
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND");
        }
        let (_, body) = server
            .send_as(Some(&mallory), Method::GET, "/api/scenes", None)
            .await;
        assert_eq!(body["data"], json!([]));
        // Nor can they listen to its WebSocket room; the owner can.
        let refused = tokio_tungstenite::connect_async(
            server.ws_url(&format!("/ws/scene/{scene}?token={mallory}")),
        )
        .await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 404)
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        let (_socket, _) = tokio_tungstenite::connect_async(
            server.ws_url(&format!("/ws/scene/{scene}?token={alice}")),
        )
        .await
        .expect("the owner joins");
        let long = "a".repeat(129);
        // HTTP clients resolve `..` and `%2E%2E` before sending; send them raw.
        for path in ["/api/scenes/..", "/api/scenes/.", "/api/scenes/%2E%2E"] {
            for method in ["GET", "DELETE"] {
                let (status, body) = raw(&server, method, path, &alice).await;
                assert_eq!(status, 404, "{method} {path}: {body}");
                assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND", "{method} {path}");
            }
        }
        for id in ["a%2Fb", "_x", long.as_str(), "scene_404"] {
            let (status, body) = as_alice(Method::GET, format!("/api/scenes/{id}"), None).await;
            assert_eq!(status, 404, "{id}: {body}");
            assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND", "{id}");
            let (status, _) = as_alice(Method::DELETE, format!("/api/scenes/{id}"), None).await;
            assert_eq!(status, 404, "{id}");
        }
        let (status, _) = as_alice(Method::GET, format!("{items}/..%2F.."), None).await;
        assert_eq!(status, 404);
        // Alice's scene survived all of that.
        let (status, _) = as_alice(Method::GET, format!("/api/scenes/{scene}"), None).await;
        assert_eq!(status, 200);
    }
}

/// A request sent byte for byte, so the path reaches the server exactly as written.
async fn raw(server: &Server, method: &str, path: &str, token: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, content) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        zip.write_all(content.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip");
    out.into_inner()
}

/// A synchronous analysis whose model call fails answers `500 INTERNAL_ERROR` `创建场景失败`
/// with the cause in details (the vendor failing, an answer that is not the JSON asked
/// for), and stores nothing.
#[tokio::test]
async fn failed_synchronous_analysis_says_the_scene_was_not_created_and_why() {
    let vendor = failing_model::model().await;
    for backend in backends() {
        let server = failing_model::server(backend.clone(), &vendor.base).await;
        for (text, cause) in [
            ("Lin Chen waits. BREAK", VENDOR_FAILURE),
            ("Lin Chen waits. GARBLE", "not valid JSON"),
        ] {
            let (status, body) = server
                .post("/api/scenes", &json!({"title": "Doomed", "text": text}))
                .await;
            let what = format!("{} {text}: {body}", backend.name());
            assert_eq!(status, 500, "{what}");
            assert_eq!(body["error"]["code"], "INTERNAL_ERROR", "{what}");
            assert_eq!(body["error"]["message"], "创建场景失败", "{what}");
            let details = error_details(&body);
            assert!(details.starts_with("分析文本失败: "), "{what}");
            assert!(details.contains(cause), "{what}");
        }
        assert!(scene_ids(&server).await.is_empty());
    }
}
