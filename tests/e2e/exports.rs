//! Exports through the real binary and real exporter plugins (spec story-export §8): every
//! format of the scene, interactions and story kinds from a scene made through the API, on
//! SQLite and PostgreSQL; exports never making a story; the export input the host sends
//! validated against the published JSON Schemas; the operator's choice between two plugins
//! claiming one pair; and hostile exporters failing cleanly while the server keeps serving.

use sceneintruder_export_document::ExportInput;
use sceneintruder_tests::fake::FakeVendor;
use sceneintruder_tests::story_model::{HARBOUR, harbour_scene, model};
use sceneintruder_tests::{Backend, Server, ServerBuilder, backends};
use serde_json::{Value, json};

const EXPORTERS: [&str; 7] = ["json", "markdown", "txt", "html", "csv", "epub", "probe"];
/// Text the story model echoes into the interaction lines: markup an HTML export must escape.
const HOSTILE: &str = r#"<script>alert(1)</script> & "quotes" </textarea>"#;

async fn exporting_server(backend: Backend, vendor: &FakeVendor, extra: &str) -> Server {
    let mut builder = ServerBuilder::new(backend).plugin("openai");
    for id in EXPORTERS {
        builder = builder.plugin(id);
    }
    builder
        .config(&format!(
            "[llm]\nprovider = \"openai\"\nmax_attempts = 1\n[plugins.openai.settings]\nbase_url = \"{}/v1\"",
            vendor.base
        ))
        .config(
            "[limits]\ncall_timeout_ms = 4000\nmemory_bytes = 33554432\nexport_max_bytes = 4194304",
        )
        .config(extra)
        .env("SCENEINTRUDER_PLUGIN_OPENAI__API_KEY", "sk-story-model")
        .start()
        .await
}

/// A scene made through the API with an item and one triggered interaction whose lines
/// carry [`HOSTILE`]; returns the scene id.
async fn scene_with_interactions(server: &Server) -> String {
    let (scene, lin, su) = harbour_scene(server).await;
    let (status, body) = server
        .post(
            &format!("/api/scenes/{scene}/items"),
            &json!({"name": "Lantern <b>", "description": "Cold & cracked", "type": "tool"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    let (status, body) = server
        .post(
            "/api/interactions/trigger",
            &json!({"scene_id": scene, "character_ids": [lin, su], "topic": HOSTILE}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    scene
}

struct Download {
    status: u16,
    content_type: String,
    disposition: String,
    bytes: Vec<u8>,
}

async fn download(server: &Server, path: &str) -> Download {
    let response = reqwest::get(server.url(path)).await.expect("request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body").to_vec();
    Download {
        status,
        content_type,
        disposition,
        bytes,
    }
}

fn text(d: &Download) -> String {
    String::from_utf8(d.bytes.clone()).expect("utf-8")
}

/// `attachment; filename="<scene>_<middle>_YYYYMMDD_HHMMSS[_nanos].<ext>"`.
fn assert_file_name(disposition: &str, scene: &str, middle: &str, ext: &str) {
    let name = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("disposition {disposition:?}"));
    let rest = name
        .strip_prefix(&format!("{scene}_{middle}_"))
        .unwrap_or_else(|| panic!("file name {name:?}"));
    let stem = rest
        .strip_suffix(&format!(".{ext}"))
        .unwrap_or_else(|| panic!("file name {name:?}"));
    assert!(
        stem.len() >= 15 && stem.chars().all(|c| c.is_ascii_digit() || c == '_'),
        "{name}"
    );
}

#[tokio::test]
async fn every_format_of_both_kinds_renders_a_scene_made_through_the_api() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = exporting_server(backend, &vendor, "").await;
        let scene = scene_with_interactions(&server).await;

        // Raw downloads of the scene kind.
        for (format, media, ext) in [
            ("markdown", "text/markdown; charset=utf-8", "markdown"),
            ("txt", "text/plain; charset=utf-8", "txt"),
            ("html", "text/html; charset=utf-8", "html"),
            ("MarkDown", "text/markdown; charset=utf-8", "markdown"),
        ] {
            let d = download(
                &server,
                &format!(
                    "/api/scenes/{scene}/export/scene?format={format}&include_conversations=true"
                ),
            )
            .await;
            assert_eq!(
                d.status,
                200,
                "{format}: {}",
                String::from_utf8_lossy(&d.bytes)
            );
            assert_eq!(d.content_type, media);
            assert_file_name(&d.disposition, &scene, "scene_data", ext);
            let body = text(&d);
            for expected in ["Harbour", "Lin Chen", "Su Wan", "argues about"] {
                assert!(
                    body.contains(expected),
                    "{format} lacks {expected}:\n{body}"
                );
            }
        }
        // The HTML export escapes what users and the model wrote.
        let html = text(
            &download(
                &server,
                &format!("/api/scenes/{scene}/export/scene?format=html&include_conversations=true"),
            )
            .await,
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("</textarea>"), "{html}");
        assert!(!html.contains("Lantern <b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp;"),
            "{html}"
        );

        // The json form: the ExportResult envelope around the json plugin's document.
        let (status, body) = server
            .get(&format!(
                "/api/scenes/{scene}/export/scene?format=json&include_conversations=true"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "导出成功");
        let data = &body["data"];
        assert_eq!(data["scene_id"], scene.as_str());
        assert_eq!(data["title"], "Harbour - 场景数据");
        assert_eq!(data["export_type"], "scene");
        assert_eq!(data["format"], "json");
        assert_eq!(data["scene_metadata"]["character_count"], 2);
        assert!(data.get("stats").is_none(), "{data}");
        let content = data["content"].as_str().expect("content");
        assert_eq!(data["file_size"].as_u64(), Some(content.len() as u64));
        assert!(
            data["file_path"]
                .as_str()
                .is_some_and(|p| p.ends_with(".json"))
        );
        let document: Value = serde_json::from_str(content).expect("the document is JSON");
        assert_eq!(document["scene_info"]["title"], "Harbour");
        assert_eq!(document["export_info"]["export_type"], "scene");
        assert_eq!(document["export_info"]["include_conversations"], true);
        let lines = document["conversations"].as_array().expect("conversations");
        assert_eq!(lines.len(), 2, "{document}");
        assert!(
            !document["context"]["conversations"]
                .as_array()
                .expect("context")
                .is_empty()
        );
        assert_eq!(data["conversations"].as_array().map(Vec::len), Some(2));
        // Without include_conversations nothing of the log leaks (the reference's quirk).
        let (_, body) = server
            .get(&format!("/api/scenes/{scene}/export/scene"))
            .await;
        let document: Value =
            serde_json::from_str(body["data"]["content"].as_str().expect("content")).expect("json");
        assert_eq!(document["context"]["conversations"], json!([]));
        assert_eq!(body["data"]["conversations"], Value::Null);

        // The interactions kind, raw and json.
        for (format, media, ext) in [
            ("markdown", "text/markdown; charset=utf-8", "markdown"),
            ("txt", "text/plain; charset=utf-8", "txt"),
            ("html", "text/html; charset=utf-8", "html"),
            ("csv", "text/csv; charset=utf-8", "csv"),
        ] {
            let d = download(
                &server,
                &format!("/api/scenes/{scene}/export/interactions?format={format}"),
            )
            .await;
            assert_eq!(
                d.status,
                200,
                "{format}: {}",
                String::from_utf8_lossy(&d.bytes)
            );
            assert_eq!(d.content_type, media);
            assert_file_name(&d.disposition, &scene, "interaction_summary", ext);
            let body = text(&d);
            assert!(body.contains("Lin Chen"), "{format}:\n{body}");
            if format == "csv" {
                let mut rows = body.split("\r\n");
                assert_eq!(rows.next(), Some("time,speaker,target,message,emotion"));
                let first = rows.next().expect("a row");
                assert!(first.contains(",Lin Chen,Su Wan,"), "{first}");
                assert!(first.contains("anger"), "{first}");
            }
        }
        let (status, body) = server
            .get(&format!(
                "/api/scenes/{scene}/export/interactions?format=json"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let data = &body["data"];
        assert_eq!(data["title"], "Harbour - 交互摘要");
        assert_eq!(data["export_type"], "");
        assert_eq!(data["stats"]["total_messages"], 2);
        assert_eq!(data["stats"]["total_interactions"], 1);
        assert!(
            data["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("## Harbour - 交互摘要报告")),
            "{data}"
        );
        assert!(data.get("scene_metadata").is_none(), "{data}");

        // The example third-party exporter: a real EPUB.
        let d = download(
            &server,
            &format!("/api/scenes/{scene}/export/scene?format=epub"),
        )
        .await;
        assert_eq!(d.status, 200);
        assert_eq!(d.content_type, "application/epub+zip");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(d.bytes)).expect("a zip");
        assert_eq!(zip.by_index(0).expect("first").name(), "mimetype");
        assert!(zip.by_name("META-INF/container.xml").is_ok());

        // What the host sends validates against the published schema of each kind.
        for kind in ["scene", "interactions"] {
            let d = download(
                &server,
                &format!(
                    "/api/scenes/{scene}/export/{kind}?format=echo&include_conversations=true"
                ),
            )
            .await;
            assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.bytes));
            let sent: Value = serde_json::from_slice(&d.bytes).expect("json");
            let schema = published_schema(kind);
            let validator = jsonschema::validator_for(&schema).expect("a valid schema");
            let errors: Vec<String> = validator
                .iter_errors(&sent)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{kind}: {errors:?}\n{sent}");
            assert_eq!(sent["kind"], kind);
            let parsed = ExportInput::from_json(&sent.to_string()).expect("parses");
            assert_eq!(parsed.scene.items.len(), 1);
            assert_eq!(parsed.conversations.len(), 2);
        }
    }
}

/// A title and an item written by a user, full of markup, come out escaped in every HTML
/// export and in the download's headers nothing of them appears.
#[tokio::test]
async fn html_exports_escape_a_hostile_title() {
    let vendor = model(None, None).await;
    let server = exporting_server(Backend::Sqlite, &vendor, "").await;
    let (status, body) = server
        .post("/api/scenes/shell", &json!({"title": HOSTILE}))
        .await;
    assert_eq!(status, 200, "{body}");
    let scene = body["data"]["id"].as_str().expect("id").to_string();
    let (status, body) = server
        .post(
            &format!("/api/scenes/{scene}/items"),
            &json!({"name": HOSTILE, "description": HOSTILE}),
        )
        .await;
    assert!(status == 200 || status == 201, "{body}");
    for kind in ["scene", "interactions"] {
        let d = download(
            &server,
            &format!("/api/scenes/{scene}/export/{kind}?format=html"),
        )
        .await;
        assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.bytes));
        let html = text(&d);
        assert!(!html.contains("<script>alert"), "{kind}: {html}");
        assert!(!html.contains("</textarea>"), "{kind}: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{kind}: {html}"
        );
        assert!(!d.disposition.contains('<') && !d.disposition.contains("alert"));
    }
}

#[tokio::test]
async fn bad_requests_get_the_envelope_errors() {
    let vendor = model(None, None).await;
    let server = exporting_server(Backend::Sqlite, &vendor, "").await;
    let scene = scene_with_interactions(&server).await;
    let (status, body) = server
        .get(&format!("/api/scenes/{scene}/export/scene?format=pdf"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "EXPORT_FORMAT_INVALID");
    assert_eq!(body["error"]["message"], "不支持的导出格式");
    let details = body["error"]["details"].as_str().expect("details");
    assert!(details.starts_with("支持的格式: "), "{details}");
    for format in ["html", "json", "markdown", "txt", "epub"] {
        assert!(details.contains(format), "{details}");
    }
    // csv is an interactions format only.
    let (status, body) = server
        .get(&format!("/api/scenes/{scene}/export/scene?format=csv"))
        .await;
    assert_eq!(status, 400, "{body}");
    // Unknown, malformed and someone else's scenes are all "not found" (a bare `..` never
    // reaches the route: the client resolves it away).
    for id in ["scene_missing", "a%2F..%2Fb", "bad.id"] {
        let (status, body) = server
            .get(&format!("/api/scenes/{id}/export/interactions?format=json"))
            .await;
        assert_eq!(status, 404, "{id}: {body}");
        assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND", "{id}: {body}");
    }
    let token = server.new_user_token("mallory").await;
    let (status, body) = server
        .send_as(
            Some(&token),
            reqwest::Method::GET,
            &format!("/api/scenes/{scene}/export/scene?format=json"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");

    // Every pair is listed with the plugin serving it.
    let (status, body) = server.get("/api/exports/formats").await;
    assert_eq!(status, 200, "{body}");
    let pairs = body["data"].as_array().expect("pairs");
    let served = |kind: &str, format: &str| {
        pairs
            .iter()
            .find(|p| p["kind"] == kind && p["format"] == format)
            .map(|p| p["plugin"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(served("scene", "markdown").as_deref(), Some("markdown"));
    assert_eq!(served("interactions", "csv").as_deref(), Some("csv"));
    assert_eq!(served("scene", "epub").as_deref(), Some("epub"));
    assert_eq!(served("scene", "csv"), None);
}

/// `probe` claims `scene.markdown` too: the bundled plugin wins unless the operator says
/// otherwise, and `GET /api/plugins` says who serves what and who lost.
#[tokio::test]
async fn the_operator_chooses_between_two_plugins_claiming_one_pair() {
    let vendor = model(None, None).await;
    let server = exporting_server(Backend::Sqlite, &vendor, "").await;
    let scene = scene_with_interactions(&server).await;
    let path = format!("/api/scenes/{scene}/export/scene?format=markdown");
    assert!(text(&download(&server, &path).await).contains("Harbour"));
    let (_, body) = server.get("/api/plugins").await;
    let plugin = |id: &str| {
        body["data"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["id"] == id).cloned())
            .unwrap_or_else(|| panic!("{id} in {body}"))
    };
    assert!(
        plugin("markdown")["info"]["serves"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("scene.markdown")))
    );
    assert_eq!(
        plugin("probe")["info"]["lost"],
        json!([{"pair": "scene.markdown", "served_by": "markdown"}])
    );
    drop(server);

    let server = exporting_server(
        Backend::Sqlite,
        &vendor,
        "[exports]\n\"scene.markdown\" = \"probe\"",
    )
    .await;
    let scene = scene_with_interactions(&server).await;
    let d = download(
        &server,
        &format!("/api/scenes/{scene}/export/scene?format=markdown"),
    )
    .await;
    assert_eq!(text(&d), "probe markdown");
    let (_, body) = server.get("/api/exports/formats").await;
    let pair = body["data"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|p| p["kind"] == "scene" && p["format"] == "markdown")
                .cloned()
        })
        .expect("pair");
    assert_eq!(pair["plugin"], "probe");
    assert_eq!(pair["chosen_by"], "operator");
    assert_eq!(pair["also_claimed_by"], json!(["markdown"]));
}

/// A plugin that loops, exhausts memory, writes past the limit or asks for an attachment
/// that is not its export's fails that export with a clear error; the server keeps serving.
#[tokio::test]
async fn hostile_exporters_fail_the_export_and_nothing_else() {
    let vendor = model(None, None).await;
    let server = exporting_server(Backend::Sqlite, &vendor, "[exports]\ntimeout_secs = 2").await;
    let scene = scene_with_interactions(&server).await;
    let export = |format: &'static str| {
        let path = format!("/api/scenes/{scene}/export/scene?format={format}");
        let server = &server;
        async move { server.get(&path).await }
    };
    let (status, body) = export("loop").await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["error"]["code"], "EXPORT_TIMEOUT");
    let (status, body) = export("oom").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["message"], "Failed to export scene data");
    assert!(
        body["error"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("memory")),
        "{body}"
    );
    let (status, body) = export("flood").await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "EXPORT_TOO_LARGE");
    assert!(
        body["error"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("4194304")),
        "{body}"
    );
    // `peek` reads the attachment named by the scene title: not one of this export's.
    let (status, body) = export("peek").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("not an attachment")),
        "{body}"
    );
    // Still serving: health, and a good export.
    let (status, _) = server.get("/api/config/health").await;
    assert_eq!(status, 200);
    let d = download(
        &server,
        &format!("/api/scenes/{scene}/export/scene?format=txt"),
    )
    .await;
    assert_eq!(d.status, 200);
}

fn assert_story_missing(status: u16, body: &Value) {
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "EXPORT_DATA_EMPTY", "{body}");
    assert_eq!(body["error"]["message"], "没有可导出的故事数据", "{body}");
    assert_eq!(body["error"]["details"], "场景中没有故事记录", "{body}");
}

/// The story export (spec §8.9) never makes a story: a scene without one answers
/// `404 EXPORT_DATA_EMPTY` (and still has none afterwards); once `GET …/story` made it,
/// every format renders it, and the interactions summary gains its story section.
#[tokio::test]
async fn the_story_export_renders_the_stored_story_and_never_makes_one() {
    for backend in backends() {
        let vendor = model(None, None).await;
        let server = exporting_server(backend, &vendor, "").await;
        let scene = scene_with_interactions(&server).await;
        let node = format!("/api/scenes/{scene}/nodes/node_{scene}_1/content");

        for format in ["json", "markdown", "html", "txt", "csv"] {
            let (status, body) = server
                .get(&format!("/api/scenes/{scene}/export/story?format={format}"))
                .await;
            assert_story_missing(status, &body);
        }
        // The interactions export reads the story without making one either.
        let (status, body) = server
            .get(&format!(
                "/api/scenes/{scene}/export/interactions?format=json"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let summary = body["data"]["summary"].as_str().expect("summary");
        assert!(!summary.contains("### 故事进度"), "{summary}");
        // Still no story: the first node of the story it would have made does not exist,
        // and the export still finds nothing.
        let (status, body) = server.get(&node).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["message"], "故事节点不存在", "{body}");
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/export/story"))
            .await;
        assert_story_missing(status, &body);

        // Validation comes first: an unknown format is 400 even without a story.
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/export/story?format=pdf"))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "EXPORT_FORMAT_INVALID");
        assert_eq!(body["error"]["message"], "不支持的导出格式");
        let details = body["error"]["details"].as_str().expect("details");
        assert!(details.starts_with("支持的格式: "), "{details}");
        for format in ["csv", "html", "json", "markdown", "txt"] {
            assert!(details.contains(format), "{details}");
        }
        assert!(!details.contains("epub"), "{details}");
        // epub renders scenes only.
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/export/story?format=epub"))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "EXPORT_FORMAT_INVALID");

        // `GET …/story` makes the story; now every format exports it.
        let (status, body) = server.get(&format!("/api/scenes/{scene}/story")).await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = server.get(&node).await;
        assert_eq!(status, 200);

        for (format, media, ext) in [
            ("markdown", "text/markdown; charset=utf-8", "markdown"),
            ("txt", "text/plain; charset=utf-8", "txt"),
            ("html", "text/html; charset=utf-8", "html"),
            ("csv", "text/csv; charset=utf-8", "csv"),
            ("HTML", "text/html; charset=utf-8", "html"),
        ] {
            let d = download(
                &server,
                &format!("/api/scenes/{scene}/export/story?format={format}"),
            )
            .await;
            assert_eq!(
                d.status,
                200,
                "{format}: {}",
                String::from_utf8_lossy(&d.bytes)
            );
            assert_eq!(d.content_type, media);
            assert_file_name(&d.disposition, &scene, "story_document", ext);
            let body = text(&d);
            match ext {
                "markdown" => {
                    assert!(body.starts_with("# Harbour - 完整故事文档\n"), "{body}");
                    assert!(body.contains("## Harbour - 故事文档报告"), "{body}");
                    assert!(body.contains(&format!("节点: node_{scene}_1\n")), "{body}");
                }
                "txt" => {
                    assert!(body.contains("    Harbour - 完整故事文档\n"), "{body}");
                    assert!(body.contains("故事节点详情"), "{body}");
                }
                "html" => {
                    assert!(body.contains("<title>Harbour - 故事文档</title>"), "{body}");
                    assert!(body.contains("<h2>📚 故事节点</h2>"), "{body}");
                }
                _ => {
                    let mut rows = body.split("\r\n");
                    assert_eq!(
                        rows.next(),
                        Some(
                            "id,type,parent_id,revealed,created_at,content,choices,selected_choices"
                        )
                    );
                    let first = rows.next().expect("a node");
                    assert!(first.starts_with(&format!("node_{scene}_1,")), "{first}");
                }
            }
        }

        // The json form: the ExportResult with the whole story.
        let (status, body) = server
            .get(&format!("/api/scenes/{scene}/export/story?format=json"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["message"], "导出成功");
        let data = &body["data"];
        assert_eq!(data["scene_id"], scene.as_str());
        assert_eq!(data["title"], "Harbour - 故事文档");
        assert_eq!(data["format"], "json");
        assert_eq!(data["export_type"], "story");
        assert_eq!(data["conversations"], Value::Null);
        assert_eq!(data["summary"], "");
        assert!(data.get("stats").is_none(), "{data}");
        assert_eq!(data["scene_metadata"]["id"], scene.as_str());
        assert_eq!(data["scene_metadata"]["name"], "Harbour");
        assert_eq!(data["scene_metadata"]["character_count"], 2);
        assert_eq!(data["characters"].as_array().map(Vec::len), Some(2));
        let file = data["file_path"].as_str().expect("file_path");
        assert!(
            file.starts_with(&format!("{scene}_story_document_")) && file.ends_with(".json"),
            "{file}"
        );
        let story = &data["story_data"];
        assert_eq!(story["scene_id"], scene.as_str());
        let nodes = story["nodes"].as_array().expect("nodes");
        assert!(!nodes.is_empty(), "{story}");
        assert_eq!(nodes[0]["id"], format!("node_{scene}_1"));
        assert_eq!(nodes[0]["is_revealed"], true);
        let content = data["content"].as_str().expect("content");
        assert_eq!(data["file_size"].as_u64(), Some(content.len() as u64));
        let document: Value = serde_json::from_str(content).expect("the document is JSON");
        let keys: Vec<&str> = document
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "characters",
                "export_info",
                "scene_info",
                "statistics",
                "story_data",
                "summary"
            ]
        );
        assert_eq!(document["export_info"]["export_type"], "story");
        assert_eq!(document["export_info"]["format"], "json");
        assert_eq!(document["scene_info"]["title"], "Harbour");
        let statistics = &document["statistics"];
        let in_document = document["story_data"]["nodes"].as_array().expect("nodes");
        assert_eq!(statistics["total_nodes"], in_document.len());
        assert!(
            statistics["revealed_nodes"]
                .as_u64()
                .is_some_and(|n| n >= 1)
        );
        assert!(statistics["completion_rate"].is_number(), "{statistics}");
        assert!(
            document["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("## Harbour - 故事文档报告\n")),
            "{document}"
        );

        // The interactions summary now shows the story's progress.
        let (_, body) = server
            .get(&format!(
                "/api/scenes/{scene}/export/interactions?format=json"
            ))
            .await;
        let summary = body["data"]["summary"].as_str().expect("summary");
        assert!(
            summary.contains("### 故事进度\n\n- **当前进度**: "),
            "{summary}"
        );

        // What the host sends for a story validates against the published schema.
        let d = download(
            &server,
            &format!("/api/scenes/{scene}/export/story?format=echo"),
        )
        .await;
        assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.bytes));
        let sent: Value = serde_json::from_slice(&d.bytes).expect("json");
        let validator =
            jsonschema::validator_for(&published_schema("story")).expect("a valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&sent)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "story: {errors:?}\n{sent}");
        let parsed = ExportInput::from_json(&sent.to_string()).expect("parses");
        assert_eq!(parsed.kind, "story");
        assert!(parsed.conversations.is_empty() && parsed.context.conversations.is_empty());
        let story = parsed.story.expect("the story");
        let stats = parsed.story_stats.expect("its statistics");
        assert_eq!(stats.total_nodes, story.nodes.len() as u64);
        assert!(
            parsed
                .summary_markdown
                .starts_with("## Harbour - 故事文档报告")
        );

        // Someone else's scene is not found, story or not.
        let token = server.new_user_token("mallory").await;
        let (status, body) = server
            .send_as(
                Some(&token),
                reqwest::Method::GET,
                &format!("/api/scenes/{scene}/export/story?format=json"),
                None,
            )
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND", "{body}");
        for id in ["scene_missing", "bad.id"] {
            let (status, body) = server
                .get(&format!("/api/scenes/{id}/export/story?format=json"))
                .await;
            assert_eq!(status, 404, "{id}: {body}");
            assert_eq!(body["error"]["code"], "SCENE_NOT_FOUND", "{id}: {body}");
        }
    }
}

/// A scene title full of markup comes out escaped in the story's HTML page, and nothing of
/// it reaches the download's headers.
#[tokio::test]
async fn the_story_html_escapes_a_hostile_title() {
    let vendor = model(None, None).await;
    let server = exporting_server(Backend::Sqlite, &vendor, "").await;
    let (status, body) = server
        .post("/api/scenes", &json!({"title": HOSTILE, "text": HARBOUR}))
        .await;
    assert_eq!(status, 201, "{body}");
    let scene = body["data"]["id"].as_str().expect("id").to_string();
    let (status, body) = server.get(&format!("/api/scenes/{scene}/story")).await;
    assert_eq!(status, 200, "{body}");
    let d = download(
        &server,
        &format!("/api/scenes/{scene}/export/story?format=html"),
    )
    .await;
    assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.bytes));
    let html = text(&d);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("</textarea>"), "{html}");
    assert!(
        html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"),
        "{html}"
    );
    assert!(!d.disposition.contains('<') && !d.disposition.contains("alert"));
    assert_file_name(&d.disposition, &scene, "story_document", "html");
}

fn published_schema(kind: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("wit/schemas")
        .join(format!("export-input.{kind}.v1.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("schema is JSON")
}

/// The schemas in wit/schemas are what the document types generate (regenerate with
/// `UPDATE_SCHEMAS=1 cargo xtask test -- --test exports`).
#[test]
fn published_schemas_match_the_document_types() {
    for kind in sceneintruder_export_document::KINDS {
        let generated = schema_of(kind);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("wit/schemas")
            .join(format!("export-input.{kind}.v1.json"));
        let pretty = serde_json::to_string_pretty(&generated).expect("json") + "\n";
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, &pretty).expect("write");
        }
        let published = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            published == pretty,
            "{} is out of date: run with UPDATE_SCHEMAS=1",
            path.display()
        );
    }
}

fn schema_of(kind: &str) -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(ExportInput)).expect("schema");
    schema["title"] = format!("SceneIntruder export input: {kind} (schema version 1)").into();
    schema["$id"] =
        format!("https://sceneintruder.invalid/schemas/export-input.{kind}.v1.json").into();
    schema["properties"]["kind"] = json!({"const": kind, "description": "The document kind."});
    schema["properties"]["schema_version"] = json!({"const": 1});
    schema
}
