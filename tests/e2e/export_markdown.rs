//! The `markdown` exporter (real component, real runtime): JSON document in, Markdown out.

use std::collections::BTreeMap;

use sceneintruder_runtime::export::ExportError;
use sceneintruder_runtime::{CallError, Limits, RuntimeError};
use sceneintruder_tests::RuntimeFixture;
use serde_json::json;

#[tokio::test]
async fn exports_a_document_as_markdown() {
    let fixture = RuntimeFixture::new(&["markdown", "openai"]);
    let runtime = fixture.load(Limits::default(), BTreeMap::new()).await;
    let exporter = runtime.exporter("markdown").expect("loaded");
    assert_eq!(exporter.info().format, "markdown");
    assert_eq!(exporter.info().file_extension, "md");
    assert!(exporter.accepts("story") && exporter.accepts("anything"));
    assert_eq!(
        runtime
            .exporter_for_format("markdown")
            .map(|e| e.id().to_string()),
        Some("markdown".to_string())
    );

    let document = json!({
        "title": "雨夜 The Rainy Night",
        "summary": "Two strangers meet.\nThey talk until dawn.",
        "characters": [
            {"name": "Lin", "role": "detective"},
            {"name": "Mara", "role": "witness"}
        ],
        "themes": ["trust", "memory"]
    });
    let file = exporter
        .export("story", &document.to_string(), "{}", None)
        .await
        .expect("export");
    let text = String::from_utf8(file.bytes).expect("utf-8");
    assert!(text.starts_with("# 雨夜 The Rainy Night"), "{text}");
    assert!(text.contains("They talk until dawn."), "{text}");
    assert!(text.contains("Lin") && text.contains("witness"), "{text}");
    assert!(text.contains("- trust"), "{text}");
    assert!(file.content_type.starts_with("text/markdown"));
    assert!(file.file_name.ends_with(".md"), "{}", file.file_name);
    assert!(file.file_name.contains("雨夜"), "{}", file.file_name);
    assert!(!file.file_name.contains('/'), "{}", file.file_name);

    // Bad input is a typed error, not a crash.
    match exporter.export("story", "{not json", "{}", None).await {
        Err(CallError::Export {
            error: ExportError::InvalidDocument(_),
            ..
        }) => {}
        other => panic!("expected invalid-document, got {other:?}"),
    }
    match exporter
        .export("story", "{}", r#"{"title": 7}"#, None)
        .await
    {
        Err(CallError::Export {
            error: ExportError::InvalidOptions(_),
            ..
        }) => {}
        other => panic!("expected invalid-options, got {other:?}"),
    }

    // Typed clients refuse the wrong kind of plugin.
    assert!(matches!(
        runtime.llm("markdown"),
        Err(RuntimeError::WrongKind { .. })
    ));
    assert!(matches!(
        runtime.exporter("openai"),
        Err(RuntimeError::WrongKind { .. })
    ));
    assert!(matches!(
        runtime.exporter("missing"),
        Err(RuntimeError::NotLoaded(_))
    ));
}

/// A plugin built against WIT 0.1.0 (tests/plugins/compat, frozen WIT copy) loads and works
/// on this 0.1.x host; one claiming a newer patch than the host is refused.
#[tokio::test]
async fn plugins_built_for_an_older_patch_load_on_this_host() {
    const _: () = assert!(
        sceneintruder_runtime::HOST_WIT_VERSION.patch > 0,
        "the test needs a host newer than the plugin's 0.1.0"
    );
    let fixture = RuntimeFixture::new(&["compat"]);
    let newer = fixture.dir.path().join("compat-newer");
    std::fs::create_dir_all(&newer).expect("dir");
    std::fs::copy(
        fixture.folder("compat").join("compat.wasm"),
        newer.join("compat.wasm"),
    )
    .expect("copy");
    let manifest = std::fs::read_to_string(fixture.folder("compat").join("plugin.toml"))
        .expect("manifest")
        .replace("id = \"compat\"", "id = \"compat-newer\"")
        .replace("wit = \"0.1.0\"", "wit = \"0.1.9\"");
    std::fs::write(newer.join("plugin.toml"), manifest).expect("write");

    let runtime = fixture.load(Limits::default(), BTreeMap::new()).await;
    let exporter = runtime.exporter("compat").expect("the 0.1.0 plugin loads");
    let file = exporter
        .export("scene", "{}", "{}", None)
        .await
        .expect("export");
    assert_eq!(file.bytes, b"scene: {}");
    let report = runtime
        .reports()
        .iter()
        .find(|r| r.id == "compat-newer")
        .expect("reported");
    assert!(
        matches!(&report.state, sceneintruder_runtime::PluginState::Failed { reason } if reason.contains("0.1.9")),
        "{report:?}"
    );
}
