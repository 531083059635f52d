//! The book as a reading system sees it: render the golden scene input, unzip the bytes and
//! check the container's structure and that every XML file is well-formed. (No golden file:
//! zip bytes are not reviewable; the structure is.)

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use sceneintruder_plugin_sdk::exporter::Guest;
use sceneintruder_plugin_sdk::exporter::document::ExportInput;
use zip::{CompressionMethod, ZipArchive};

use crate::{Plugin, book};

const SCENE: &str = include_str!("../../../../tests/golden/export/scene.input.json");

fn input() -> ExportInput {
    ExportInput::from_json(SCENE).expect("the golden input parses")
}

/// Every entry of the book, in archive order: name, compression, text.
fn unzip(bytes: &[u8]) -> Vec<(String, CompressionMethod, String)> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a zip archive");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("entry");
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("UTF-8 entry");
            (entry.name().to_string(), entry.compression(), text)
        })
        .collect()
}

fn files(input: &ExportInput) -> BTreeMap<String, String> {
    let bytes = book::epub(input).expect("renders");
    unzip(&bytes).into_iter().map(|(n, _, t)| (n, t)).collect()
}

/// Parse `text` to its last event: one root element, every element closed, every
/// reference one XML knows, every attribute well-formed. Returns the start tags.
fn parse(name: &str, text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut reader = Reader::from_str(text);
    let (mut depth, mut roots, mut tags) = (0usize, 0usize, Vec::new());
    let mut tag = |e: &BytesStart, depth: usize, roots: &mut usize| {
        if depth == 0 {
            *roots += 1;
        }
        let attributes = e
            .attributes()
            .map(|a| {
                let a = a.unwrap_or_else(|err| panic!("{name}: bad attribute: {err}"));
                let value = a
                    .unescape_value()
                    .unwrap_or_else(|err| panic!("{name}: bad attribute value: {err}"));
                (
                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                    value.into_owned(),
                )
            })
            .collect();
        tags.push((
            String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            attributes,
        ));
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                tag(&e, depth, &mut roots);
                depth += 1;
            }
            Ok(Event::Empty(e)) => tag(&e, depth, &mut roots),
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::GeneralRef(r)) => {
                let known = if r.is_char_ref() {
                    matches!(r.resolve_char_ref(), Ok(Some(_)))
                } else {
                    let name = r.decode().expect("UTF-8");
                    ["amp", "lt", "gt", "quot", "apos"].contains(&name.as_ref())
                };
                assert!(known, "{name}: unknown reference {r:?}");
            }
            Ok(Event::Text(t)) if depth == 0 => {
                assert!(
                    t.decode().expect("UTF-8").trim().is_empty(),
                    "{name}: text outside the root"
                );
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "{name}: not well-formed at {}: {e}",
                reader.buffer_position()
            ),
        }
    }
    assert_eq!(
        (depth, roots),
        (0, 1),
        "{name}: unclosed elements or several roots"
    );
    tags
}

#[test]
#[should_panic(expected = "not well-formed")]
fn the_checker_sees_a_misnested_tag() {
    parse("bad", "<a><b></a></b>");
}

#[test]
#[should_panic(expected = "unknown reference")]
fn the_checker_sees_an_html_only_entity() {
    parse("bad", "<p>&nbsp;</p>");
}

#[test]
#[should_panic(expected = "unclosed elements")]
fn the_checker_sees_an_unclosed_element() {
    parse("bad", "<html><body>");
}

#[test]
fn serves_scene_epub() {
    let formats = Plugin::supported();
    assert_eq!(formats.len(), 1);
    let f = &formats[0];
    assert_eq!(
        (
            f.kind.as_str(),
            f.format.as_str(),
            f.media_type.as_str(),
            f.file_extension.as_str()
        ),
        ("scene", "epub", "application/epub+zip", "epub")
    );
    assert_eq!(f.schema_version, 1);
}

#[test]
fn the_golden_scene_is_a_valid_epub_container() {
    let bytes = book::epub(&input()).expect("renders");
    // EPUB_OUT=/tmp/scene.epub keeps the book, to open in a reader or run epubcheck on.
    if let Ok(path) = std::env::var("EPUB_OUT") {
        std::fs::write(&path, &bytes).expect("EPUB_OUT is writable");
    }
    let entries = unzip(&bytes);
    let (name, method, text) = &entries[0];
    assert_eq!(
        (name.as_str(), *method, text.as_str()),
        (
            "mimetype",
            CompressionMethod::Stored,
            "application/epub+zip"
        )
    );
    // No extra field in the mimetype's local header (offset 28).
    assert_eq!(&bytes[28..30], [0, 0]);
    let names: Vec<&str> = entries.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "mimetype",
            "META-INF/container.xml",
            "OEBPS/content.opf",
            "OEBPS/nav.xhtml",
            "OEBPS/style.css",
            "OEBPS/title.xhtml",
            "OEBPS/chapter-1.xhtml",
            "OEBPS/chapter-2.xhtml",
            "OEBPS/characters.xhtml",
        ]
    );
    assert!(
        entries[1..]
            .iter()
            .all(|(_, m, _)| *m == CompressionMethod::Deflated)
    );
    assert_eq!(
        book::epub(&input()),
        Ok(bytes),
        "the same input gives the same bytes"
    );
}

#[test]
fn every_xml_file_is_well_formed() {
    let files = files(&input());
    let xml: Vec<_> = files
        .iter()
        .filter(|(n, _)| n.ends_with(".xhtml") || n.ends_with(".opf") || n.ends_with(".xml"))
        .collect();
    assert_eq!(xml.len(), 7);
    for (name, text) in xml {
        parse(name, text);
    }
}

#[test]
fn container_package_and_nav_agree() {
    let files = files(&input());
    let container = parse("container.xml", &files["META-INF/container.xml"]);
    let rootfile = container
        .iter()
        .find(|(t, _)| t == "rootfile")
        .expect("rootfile");
    assert_eq!(rootfile.1["full-path"], "OEBPS/content.opf");
    assert_eq!(rootfile.1["media-type"], "application/oebps-package+xml");

    let opf = &files["OEBPS/content.opf"];
    let tags = parse("content.opf", opf);
    let package = &tags[0];
    assert_eq!(package.0, "package");
    assert_eq!(package.1["version"], "3.0");
    assert_eq!(package.1["unique-identifier"], "book-id");
    assert!(opf.contains(
        "<dc:identifier id=\"book-id\">urn:sceneintruder:scene:scene_harbor</dc:identifier>"
    ));
    assert!(opf.contains("<dc:title>The Harbor Fog</dc:title>"));
    assert!(opf.contains("<dc:language>en</dc:language>"));
    assert!(opf.contains("<meta property=\"dcterms:modified\">2025-06-20T03:00:00Z</meta>"));

    // Every manifest item is in the archive; exactly one is the nav; the spine names items.
    let items: Vec<&BTreeMap<String, String>> = tags
        .iter()
        .filter(|(t, _)| t == "item")
        .map(|(_, a)| a)
        .collect();
    for item in &items {
        assert!(
            files.contains_key(&format!("OEBPS/{}", item["href"])),
            "{item:?}"
        );
    }
    let navs: Vec<_> = items
        .iter()
        .filter(|i| i.get("properties").is_some_and(|p| p == "nav"))
        .collect();
    assert_eq!(navs.len(), 1);
    assert_eq!(navs[0]["href"], "nav.xhtml");
    let spine: Vec<&str> = tags
        .iter()
        .filter(|(t, _)| t == "itemref")
        .map(|(_, a)| a["idref"].as_str())
        .collect();
    assert_eq!(spine, ["title", "chapter-1", "chapter-2", "characters"]);
    assert!(spine.iter().all(|id| items.iter().any(|i| i["id"] == *id)));

    // The table of contents lists the spine's pages, in order.
    let nav = &files["OEBPS/nav.xhtml"];
    assert!(nav.contains("<nav epub:type=\"toc\" id=\"toc\">"));
    let links: Vec<String> = parse("nav.xhtml", nav)
        .into_iter()
        .filter(|(t, _)| t == "a")
        .map(|(_, a)| a["href"].clone())
        .collect();
    assert_eq!(
        links,
        [
            "title.xhtml",
            "chapter-1.xhtml",
            "chapter-2.xhtml",
            "characters.xhtml"
        ]
    );
    assert!(nav.contains(">The Pier</a>") && nav.contains(">茶馆</a>"));
}

#[test]
fn a_script_in_a_conversation_appears_only_escaped() {
    let files = files(&input());
    for (name, text) in &files {
        assert!(!text.contains("<script"), "{name} holds a raw <script>");
    }
    assert!(files["OEBPS/chapter-1.xhtml"].contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn forbidden_characters_never_reach_the_xml() {
    let mut input = input();
    input.scene.scene.title = "Fog\u{1}\u{1B}[31m <b>".into();
    input.scene.scene.id = "a&b\u{0}".into();
    input.context.conversations[2].content = "on the pier\u{7}\u{FFFF}".into();
    input.characters[0].name = "Quill\u{C}".into();
    let files = files(&input);
    for (name, text) in files
        .iter()
        .filter(|(n, _)| n.ends_with("xml") || n.ends_with("opf"))
    {
        parse(name, text);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')),
            "{name}"
        );
    }
    assert!(files["OEBPS/content.opf"].contains("<dc:title>Fog[31m &lt;b&gt;</dc:title>"));
    assert!(files["OEBPS/content.opf"].contains("urn:sceneintruder:scene:a&amp;b<"));
}

#[test]
fn a_chinese_scene_is_a_chinese_book() {
    let mut input = input();
    input.scene.scene.title = "雾港".into();
    input.scene.scene.locations = None;
    let files = files(&input);
    assert!(files["OEBPS/content.opf"].contains("<dc:language>zh</dc:language>"));
    assert!(files["OEBPS/nav.xhtml"].contains("lang=\"zh\" xml:lang=\"zh\""));
    assert!(files["OEBPS/nav.xhtml"].contains("<h1>目录</h1>"));
    assert!(files["OEBPS/chapter-1.xhtml"].contains("<h1>对话记录</h1>"));
    assert!(files["OEBPS/characters.xhtml"].contains("<h1>角色</h1>"));
}

#[test]
fn an_empty_scene_still_makes_a_book() {
    let files = files(&ExportInput::default());
    assert_eq!(files.len(), 8);
    for (name, text) in files
        .iter()
        .filter(|(n, _)| n.ends_with("xml") || n.ends_with("opf"))
    {
        parse(name, text);
    }
    assert!(files["OEBPS/content.opf"].contains("<dc:title>Untitled scene</dc:title>"));
    assert!(files["OEBPS/content.opf"].contains("1980-01-01T00:00:00Z"));
}
