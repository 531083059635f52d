//! Exporter plugins through the real runtime (real components): every bundled format
//! against its golden file, the example third-party `epub`, exporters of the previous WIT,
//! and the host's limits against a hostile exporter (tests/plugins/probe-exporter).

use std::collections::BTreeMap;
use std::path::PathBuf;

use sceneintruder_runtime::export::{Attachment, ExportError, RenderOptions};
use sceneintruder_runtime::{CallError, Limits, PluginRuntime, RuntimeError};
use sceneintruder_tests::RuntimeFixture;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/export")
}

/// The golden input of `kind` with `format` filled in.
fn input(kind: &str, format: &str) -> String {
    let text = std::fs::read_to_string(golden_dir().join(format!("{kind}.input.json")))
        .expect("golden input");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value["format"] = format.into();
    value.to_string()
}

async fn runtime(plugins: &[&str], limits: Limits) -> (RuntimeFixture, PluginRuntime) {
    let fixture = RuntimeFixture::new(plugins);
    let runtime = fixture.load(limits, BTreeMap::new()).await;
    for report in runtime.reports() {
        if let sceneintruder_runtime::PluginState::Failed { reason } = &report.state {
            panic!("{} did not load: {reason}", report.id);
        }
    }
    (fixture, runtime)
}

/// Each bundled exporter, run as wasm in the real runtime, renders the golden inputs exactly
/// as its golden files say (the plugins' unit tests check the same files natively).
#[tokio::test]
async fn every_bundled_format_matches_its_golden_file() {
    let (_fixture, runtime) = runtime(
        &["json", "markdown", "txt", "html", "csv"],
        Limits::default(),
    )
    .await;
    let cases = [
        ("json", "scene", "json", "application/json"),
        ("json", "interactions", "json", "application/json"),
        ("markdown", "scene", "markdown", "text/markdown"),
        ("markdown", "interactions", "markdown", "text/markdown"),
        ("txt", "scene", "txt", "text/plain"),
        ("txt", "interactions", "txt", "text/plain"),
        ("html", "scene", "html", "text/html"),
        ("html", "interactions", "html", "text/html"),
        ("csv", "interactions", "csv", "text/csv"),
        ("json", "story", "json", "application/json"),
        ("markdown", "story", "markdown", "text/markdown"),
        ("txt", "story", "txt", "text/plain"),
        ("html", "story", "html", "text/html"),
        ("csv", "story", "csv", "text/csv"),
    ];
    for (plugin, kind, format, media) in cases {
        let exporter = runtime.exporter(plugin).expect("loaded");
        let rendered = exporter
            .render(
                kind,
                format,
                &input(kind, format),
                RenderOptions::default(),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{plugin} {kind}.{format}: {e}"));
        assert!(
            rendered.media_type.starts_with(media),
            "{}",
            rendered.media_type
        );
        assert_eq!(rendered.file_extension, format);
        let golden = std::fs::read(golden_dir().join(format!("{kind}.{format}")))
            .unwrap_or_else(|e| panic!("golden {kind}.{format}: {e}"));
        assert!(
            rendered.bytes == golden,
            "{plugin} {kind}.{format} differs from tests/golden/export/{kind}.{format}:\n{}",
            String::from_utf8_lossy(&rendered.bytes)
        );
    }
    // A pair the plugin does not serve, and an input of a newer schema, are typed errors.
    let csv = runtime.exporter("csv").expect("loaded");
    assert!(csv.format("scene", "csv").is_none());
    match csv
        .render(
            "scene",
            "csv",
            &input("scene", "csv"),
            RenderOptions::default(),
            None,
        )
        .await
    {
        Err(CallError::Export {
            error: ExportError::Unsupported(_),
            ..
        }) => {}
        other => panic!("expected unsupported, got {other:?}"),
    }
    let mut newer: serde_json::Value =
        serde_json::from_str(&input("interactions", "csv")).expect("json");
    newer["schema_version"] = 99.into();
    match csv
        .render(
            "interactions",
            "csv",
            &newer.to_string(),
            RenderOptions::default(),
            None,
        )
        .await
    {
        Err(CallError::Export {
            error: ExportError::InvalidInput(m),
            ..
        }) => assert!(m.contains("99"), "{m}"),
        other => panic!("expected invalid input, got {other:?}"),
    }
    // Typed clients refuse the wrong kind of plugin.
    assert!(matches!(
        runtime.llm("markdown"),
        Err(RuntimeError::WrongKind { .. })
    ));
    assert!(matches!(
        runtime.exporter("missing"),
        Err(RuntimeError::NotLoaded(_))
    ));
}

/// The example third-party exporter (built against the SDK only) produces an EPUB whose
/// container structure is right; its own unit tests check the XML in depth.
#[tokio::test]
async fn the_example_epub_exporter_writes_an_epub() {
    let (_fixture, runtime) = runtime(&["epub"], Limits::default()).await;
    let exporter = runtime.exporter("epub").expect("loaded");
    let rendered = exporter
        .render(
            "scene",
            "epub",
            &input("scene", "epub"),
            RenderOptions::default(),
            None,
        )
        .await
        .expect("render");
    assert_eq!(rendered.media_type, "application/epub+zip");
    let bytes = &rendered.bytes;
    // A zip whose first entry is `mimetype`, stored, holding exactly the media type.
    assert_eq!(&bytes[0..4], b"PK\x03\x04");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 0, "stored");
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
    assert_eq!(&bytes[30..30 + name_len], b"mimetype");
    let data = 30 + name_len + extra_len;
    assert_eq!(&bytes[data..data + 20], b"application/epub+zip");
    let text = String::from_utf8_lossy(bytes);
    for part in ["META-INF/container.xml", ".opf", "nav.xhtml"] {
        assert!(text.contains(part), "missing {part}");
    }
}

/// A plugin built against WIT 0.1.0 (tests/plugins/compat, frozen WIT copy, the old
/// `document-export` interface) loads and renders on this host; one claiming a newer patch
/// than the host is refused.
#[tokio::test]
async fn exporters_built_for_an_older_wit_load_on_this_host() {
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
    let report = |id: &str| {
        runtime
            .reports()
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .expect("reported")
    };
    let exporter = runtime
        .exporter("compat")
        .unwrap_or_else(|e| panic!("the 0.1.0 plugin loads: {e} {:?}", report("compat")));
    // Its `*` kind claims every kind for its one format.
    assert!(exporter.format("scene", "compat").is_some());
    let rendered = exporter
        .render("scene", "compat", "{}", RenderOptions::default(), None)
        .await
        .expect("render");
    assert_eq!(rendered.bytes, b"scene: {}");
    let report = report("compat-newer");
    assert!(
        matches!(&report.state, sceneintruder_runtime::PluginState::Failed { reason } if reason.contains("0.1.9")),
        "{report:?}"
    );
}

/// Whatever an exporter does, the host's limits hold: a loop times out, a memory hog traps,
/// a flood past `export_max_bytes` fails the render even though the plugin ignores every
/// refusal, and only the export's own attachments can be read.
#[tokio::test]
async fn a_hostile_exporter_is_contained() {
    let limits = Limits {
        call_timeout_ms: 1500,
        memory_bytes: 32 << 20,
        export_max_bytes: 4 << 20,
        ..Limits::default()
    };
    let (_fixture, runtime) = runtime(&["probe"], limits).await;
    let probe = runtime.exporter("probe").expect("loaded");
    let render = |format: &'static str, options: RenderOptions| {
        let probe = probe.clone();
        async move {
            probe
                .render("scene", format, &input("scene", format), options, None)
                .await
        }
    };
    assert!(matches!(
        render("loop", RenderOptions::default()).await,
        Err(CallError::Timeout { .. })
    ));
    assert!(matches!(
        render("oom", RenderOptions::default()).await,
        Err(CallError::MemoryLimit { .. })
    ));
    match render("flood", RenderOptions::default()).await {
        Err(CallError::Export {
            error: ExportError::OutputRefused(m),
            ..
        }) => assert!(m.contains(&(4u64 << 20).to_string()), "{m}"),
        other => panic!("expected the output to be refused, got {other:?}"),
    }

    // Attachments: this export's are readable, nothing else is.
    let own = RenderOptions {
        attachments: BTreeMap::from([(
            "image_1".to_string(),
            Attachment {
                media_type: "image/png".into(),
                bytes: b"\x89PNG-own-image".to_vec().into(),
            },
        )]),
    };
    let listed = render("attachments", own.clone()).await.expect("render");
    assert_eq!(
        String::from_utf8_lossy(&listed.bytes),
        "image_1 image/png 14 \u{fffd}PNG-own\n"
    );
    // `peek` asks for the attachment named by the scene title (`The Harbor Fog`), which is
    // not one of this export's.
    match render("peek", own).await {
        Err(CallError::Export {
            error: ExportError::Failed(m),
            ..
        }) => assert!(m.contains("not an attachment"), "{m}"),
        other => panic!("expected the read to be refused, got {other:?}"),
    }

    // After all that the plugin still serves.
    let echo = render("echo", RenderOptions::default())
        .await
        .expect("echo");
    assert_eq!(echo.bytes, input("scene", "echo").into_bytes());
}
