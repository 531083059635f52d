//! Hostile input through the real binary (issue 22 §5), on SQLite and PostgreSQL.

use sceneintruder_tests::backends;
use sceneintruder_tests::story_model::{HARBOUR, model, server};
use serde_json::json;

/// Text from users is put into prompts as it is: a scene titled with placeholders does not
/// make the prompt repeat the history (or anything else) once per placeholder.
#[tokio::test]
async fn placeholders_in_user_text_are_not_expanded() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let title = "{{history}}".repeat(16);
        let (status, body) = server
            .post("/api/scenes", &json!({"title": title, "text": HARBOUR}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let (_, body) = server.get(&format!("/api/scenes/{scene}/characters")).await;
        let lin = body["data"][0]["id"]
            .as_str()
            .expect("character")
            .to_string();
        // Some history first, so an expanded placeholder would show.
        for message in ["first question", "second question"] {
            let (status, body) = server
                .post(
                    "/api/chat",
                    &json!({"scene_id": scene, "character_id": lin, "message": message}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let requests = vendor.requests();
        let last = requests.last().expect("a chat call").json();
        let system = last["messages"][0]["content"]
            .as_str()
            .expect("system prompt");
        assert!(system.contains(&title), "the title as written");
        assert_eq!(
            system.matches("first question").count(),
            1,
            "the history once, not once per placeholder in the title"
        );
        assert!(system.len() < 8 * 1024, "{} bytes", system.len());
    }
}

/// Every stored text has a limit: past it the request is refused naming the field, and
/// nothing is stored, so no single message, item or profile can make a scene unusable.
#[tokio::test]
async fn oversized_texts_are_refused_and_nothing_is_stored() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = server(backend, &vendor.base, "").await;
        let (status, body) = server
            .post("/api/scenes", &json!({"title": "Harbour", "text": HARBOUR}))
            .await;
        assert_eq!(status, 201, "{body}");
        let scene = body["data"]["id"].as_str().expect("id").to_string();
        let (_, body) = server.get(&format!("/api/scenes/{scene}/characters")).await;
        let lin = body["data"][0]["id"]
            .as_str()
            .expect("character")
            .to_string();
        let huge = "x".repeat(200 * 1024);

        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene, "character_id": lin, "message": huge}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"], "message: at most 4000 characters");
        let (status, body) = server
            .post(
                "/api/interactions/aggregate",
                &json!({"scene_id": scene, "character_ids": [lin], "message": huge}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"].clone()),
            (400, json!("message: at most 4000 characters"))
        );
        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/story/command"),
                &json!({"input": huge}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"].clone()),
            (400, json!("input: at most 4000 characters"))
        );
        let (_, log) = server
            .get(&format!("/api/scenes/{scene}/conversations"))
            .await;
        assert_eq!(log["data"], json!([]), "nothing stored");

        let (status, body) = server
            .post(
                &format!("/api/scenes/{scene}/items"),
                &json!({"name": "key", "properties": {"notes": huge}}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["error"]["details"],
            "properties.notes: at most 8000 characters"
        );

        let token = server.new_user_token("writer").await;
        let (status, body) = server
            .send_as(
                Some(&token),
                reqwest::Method::PUT,
                "/api/users/writer",
                Some(&json!({"bio": huge})),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["details"], "bio: at most 8000 characters");

        // A normal turn still works afterwards.
        let (status, body) = server
            .post(
                "/api/chat",
                &json!({"scene_id": scene, "character_id": lin, "message": "hello"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// A socket cannot make the server hold large messages for listeners that never read: a
/// large presence update is refused, and a listener that falls behind is disconnected with
/// close code 1008 instead of having messages pile up for it.
#[tokio::test]
async fn websocket_listeners_that_do_not_read_are_disconnected() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let vendor = model(None, None).await;
    let server = server(sceneintruder_tests::Backend::Sqlite, &vendor.base, "").await;
    let (status, body) = server
        .post("/api/scenes", &json!({"title": "Harbour", "text": HARBOUR}))
        .await;
    assert_eq!(status, 201, "{body}");
    let scene = body["data"]["id"].as_str().expect("id").to_string();
    let url = server.ws_url(&format!("/ws/scene/{scene}?user_id=talker"));
    let (mut talker, _) = tokio_tungstenite::connect_async(url).await.expect("talker");
    let url = server.ws_url(&format!("/ws/scene/{scene}?user_id=sleeper"));
    let (mut sleeper, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("sleeper");

    // A presence update far larger than presence needs is refused.
    let big =
        json!({"type": "user_status_update", "status": "typing", "action": "x".repeat(50_000)});
    talker
        .send(Message::Text(big.to_string().into()))
        .await
        .expect("send");
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), talker.next())
            .await
            .expect("an answer")
            .expect("open")
            .expect("frame");
        let Message::Text(text) = frame else { continue };
        let reply: serde_json::Value = serde_json::from_str(text.as_str()).expect("json");
        if reply["type"] == "error" {
            assert!(
                reply["error"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("状态信息过大"),
                "{reply}"
            );
            break;
        }
    }

    // Many allowed updates while the sleeper reads nothing (the talker reads its echoes): the
    // sleeper is cut off, not buffered for.
    let (mut talk, mut echoes) = talker.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = echoes.next().await {} });
    let update =
        json!({"type": "user_status_update", "status": "typing", "action": "y".repeat(900)});
    let text = update.to_string();
    for i in 0..8000 {
        if talk.send(Message::Text(text.clone().into())).await.is_err() {
            break;
        }
        // Paced so the talker keeps up with its own echoes; only the sleeper falls behind.
        if i % 50 == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // The sleeper now reads: it finds the connection closed by the server (with 1008 when
    // the close frame still fitted), never all 8000 messages.
    let mut received = 0;
    let mut ended = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(std::time::Duration::from_secs(15), sleeper.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                if let Some(frame) = frame {
                    assert_eq!(u16::from(frame.code), 1008);
                }
                ended = true;
                break;
            }
            Ok(Some(Ok(Message::Text(_)))) => received += 1,
            Ok(Some(Ok(_))) => {}
            Ok(None) | Ok(Some(Err(_))) => {
                ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(
        ended,
        "the lagging listener is disconnected ({received} messages read)"
    );
    assert!(received < 8000, "{received}");
    drain.abort();
    // The server is fine and the talker still connected.
    let (status, _) = server.get("/api/config/health").await;
    assert_eq!(status, 200);
}

/// A tiny EPUB whose spine repeats one empty page a million times is refused quickly, not
/// read page by page (the reference spent seconds of CPU on 77 KB).
#[tokio::test]
async fn an_epub_with_a_huge_spine_is_refused() {
    use std::io::Write;
    let vendor = model(None, None).await;
    let server = server(sceneintruder_tests::Backend::Sqlite, &vendor.base, "").await;
    let spine = r#"<itemref idref="p"/>"#.repeat(1_000_000);
    let opf = format!(
        r#"<package><manifest><item id="p" href="p.xhtml"/></manifest><spine>{spine}</spine></package>"#
    );
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in [
        (
            "META-INF/container.xml",
            r#"<container><rootfiles><rootfile full-path="content.opf"/></rootfiles></container>"#
                .to_string(),
        ),
        ("content.opf", opf),
        ("p.xhtml", "<html><body></body></html>".to_string()),
    ] {
        zip.start_file(name, deflated).expect("entry");
        zip.write_all(content.as_bytes()).expect("write");
    }
    zip.finish().expect("zip");
    let bytes = out.into_inner();
    assert!(bytes.len() < 200 * 1024, "{} bytes", bytes.len());
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("book.epub"),
    );
    let response = server
        .http
        .post(server.url("/api/upload"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let (status, body) = sceneintruder_tests::decode(response).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["details"]
            .as_str()
            .unwrap_or("")
            .contains("spine"),
        "{body}"
    );
}
