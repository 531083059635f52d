//! The text inside an uploaded story file: plain text and Markdown as they are, the body
//! text of Word (`.docx`) and EPUB books in reading order. Archives are read with limits so a
//! small upload cannot expand into gigabytes.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

/// Most bytes read out of one archive, all entries together.
const MAX_EXPANDED: u64 = 32 << 20;
/// Most spine entries of an EPUB (real books have hundreds): a spine that repeats one page a
/// million times would otherwise cost seconds of work for a tiny upload.
const MAX_SPINE: usize = 5000;

/// Kinds of files an upload may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Docx,
    Epub,
}

impl Format {
    /// By extension, case-insensitively.
    pub fn of(name: &str) -> Option<Format> {
        let lower = name.to_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "txt" => Some(Format::Text),
            "md" | "markdown" => Some(Format::Markdown),
            "docx" => Some(Format::Docx),
            "epub" => Some(Format::Epub),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("not a valid {0} file: {1}")]
    Invalid(&'static str, String),
    #[error("the file expands to more than {} MiB", MAX_EXPANDED >> 20)]
    TooLarge,
}

/// The story text of an uploaded file (UTF-8, invalid sequences replaced).
pub fn extract(format: Format, bytes: &[u8]) -> Result<String, ExtractError> {
    match format {
        Format::Text | Format::Markdown => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Format::Docx => docx(bytes),
        Format::Epub => epub(bytes),
    }
}

struct Archive {
    zip: zip::ZipArchive<Cursor<Vec<u8>>>,
    budget: u64,
    kind: &'static str,
}

impl Archive {
    fn open(bytes: &[u8], kind: &'static str) -> Result<Archive, ExtractError> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes.to_vec()))
            .map_err(|e| ExtractError::Invalid(kind, e.to_string()))?;
        Ok(Archive {
            zip,
            budget: MAX_EXPANDED,
            kind,
        })
    }

    fn read(&mut self, path: &str) -> Result<Vec<u8>, ExtractError> {
        let entry = self
            .zip
            .by_name(path)
            .map_err(|e| ExtractError::Invalid(self.kind, format!("{path}: {e}")))?;
        let mut out = Vec::new();
        entry
            .take(self.budget + 1)
            .read_to_end(&mut out)
            .map_err(|e| ExtractError::Invalid(self.kind, format!("{path}: {e}")))?;
        if out.len() as u64 > self.budget {
            return Err(ExtractError::TooLarge);
        }
        self.budget -= out.len() as u64;
        Ok(out)
    }
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

fn attribute(e: &quick_xml::events::BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| local(a.key.as_ref()) == key)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// Paragraph text of `word/document.xml`.
fn docx(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut archive = Archive::open(bytes, "docx")?;
    let xml = archive.read("word/document.xml")?;
    let mut reader = Reader::from_reader(xml.as_slice());
    let mut out = String::new();
    let mut in_text = false;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if local(e.name().as_ref()) == b"t" => in_text = true,
            Ok(Event::End(e)) => match local(e.name().as_ref()) {
                b"t" => in_text = false,
                b"p" => out.push_str("\n\n"),
                _ => {}
            },
            Ok(Event::Empty(e)) => match local(e.name().as_ref()) {
                b"tab" => out.push('\t'),
                b"br" | b"cr" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => {
                let text = t
                    .decode()
                    .map_err(|e| ExtractError::Invalid("docx", e.to_string()))?;
                out.push_str(&quick_xml::escape::unescape(&text).unwrap_or(text.clone()));
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else if let Ok(name) = r.decode() {
                    out.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(ExtractError::Invalid("docx", e.to_string())),
            _ => {}
        }
        buf.clear();
    }
    Ok(tidy(&out))
}

/// The text of every spine document of an EPUB, in reading order.
fn epub(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut archive = Archive::open(bytes, "epub")?;
    let container = archive.read("META-INF/container.xml")?;
    let opf_path = first_attribute(&container, b"rootfile", b"full-path")
        .ok_or_else(|| ExtractError::Invalid("epub", "no rootfile in container.xml".into()))?;
    let opf = archive.read(&opf_path)?;
    let base = opf_path
        .rsplit_once('/')
        .map(|(dir, _)| format!("{dir}/"))
        .unwrap_or_default();
    // Manifest ids to paths, then the spine's order.
    let mut manifest = std::collections::HashMap::new();
    let mut spine = Vec::new();
    let mut reader = Reader::from_reader(opf.as_slice());
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => match local(e.name().as_ref()) {
                b"item" => {
                    if let (Some(id), Some(href)) = (attribute(&e, b"id"), attribute(&e, b"href")) {
                        manifest.insert(id, href);
                    }
                }
                b"itemref" => {
                    if spine.len() == MAX_SPINE {
                        return Err(ExtractError::Invalid(
                            "epub",
                            format!("more than {MAX_SPINE} entries in the spine"),
                        ));
                    }
                    spine.extend(attribute(&e, b"idref"));
                }
                _ => {}
            },
            Ok(Event::Eof) => break,
            Err(e) => return Err(ExtractError::Invalid("epub", e.to_string())),
            _ => {}
        }
        buf.clear();
    }
    let mut out = String::new();
    // A page listed twice is read once.
    let mut seen = std::collections::HashSet::new();
    for idref in spine {
        let Some(href) = manifest.get(&idref) else {
            continue;
        };
        let path = format!("{base}{}", href.split('#').next().unwrap_or(href));
        if !seen.insert(path.clone()) {
            continue;
        }
        let page = archive.read(&path)?;
        out.push_str(&xhtml_text(&page));
        out.push_str("\n\n");
    }
    Ok(tidy(&out))
}

fn first_attribute(xml: &[u8], element: &[u8], key: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) if local(e.name().as_ref()) == element => {
                return attribute(&e, key);
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
        buf.clear();
    }
}

/// Visible text of an XHTML page: block elements become paragraphs; scripts, styles and the
/// head are skipped.
fn xhtml_text(xml: &[u8]) -> String {
    const BLOCKS: [&[u8]; 12] = [
        b"p",
        b"div",
        b"h1",
        b"h2",
        b"h3",
        b"h4",
        b"h5",
        b"h6",
        b"li",
        b"blockquote",
        b"tr",
        b"section",
    ];
    let mut reader = Reader::from_reader(xml);
    let config = reader.config_mut();
    config.check_end_names = false;
    let mut out = String::new();
    let mut hidden = 0usize;
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                if matches!(local(e.name().as_ref()), b"script" | b"style" | b"head") {
                    hidden += 1;
                }
            }
            Ok(Event::End(e)) => {
                let qname = e.name();
                let name = local(qname.as_ref());
                if matches!(name, b"script" | b"style" | b"head") {
                    hidden = hidden.saturating_sub(1);
                } else if BLOCKS.contains(&name) {
                    out.push_str("\n\n");
                }
            }
            Ok(Event::Empty(e)) if local(e.name().as_ref()) == b"br" => out.push('\n'),
            Ok(Event::Text(t)) if hidden == 0 => {
                if let Ok(text) = t.decode() {
                    out.push_str(&text);
                }
            }
            Ok(Event::GeneralRef(r)) if hidden == 0 => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else if let Ok(name) = r.decode() {
                    out.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        "nbsp" => " ",
                        _ => "",
                    });
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

/// Trim lines and collapse runs of blank lines into one paragraph break.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line.trim_start_matches([' ', '\u{3000}']));
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::Write;

    /// A zip with the given entries (used to build .docx and .epub files in tests).
    pub fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, content) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of("a.TXT"), Some(Format::Text));
        assert_eq!(Format::of("story.Docx"), Some(Format::Docx));
        assert_eq!(Format::of("book.epub"), Some(Format::Epub));
        assert_eq!(Format::of("x.pdf"), None);
        assert_eq!(Format::of("noext"), None);
    }

    #[test]
    fn docx_paragraphs_in_order() {
        let doc = r#"<?xml version="1.0"?><w:document xmlns:w="x"><w:body>
            <w:p><w:r><w:t>Fog came in.</w:t></w:r><w:r><w:t xml:space="preserve"> Lin &amp; Su</w:t></w:r></w:p>
            <w:p><w:r><w:t>They waited.</w:t><w:br/><w:t>Night.</w:t></w:r></w:p>
            </w:body></w:document>"#;
        let bytes = zip_of(&[("word/document.xml", doc)]);
        assert_eq!(
            extract(Format::Docx, &bytes).unwrap(),
            "Fog came in. Lin & Su\n\nThey waited.\nNight."
        );
        assert!(matches!(
            extract(Format::Docx, b"not a zip"),
            Err(ExtractError::Invalid("docx", _))
        ));
        let empty = zip_of(&[("other.xml", "<a/>")]);
        assert!(extract(Format::Docx, &empty).is_err());
    }

    #[test]
    fn epub_chapters_in_spine_order() {
        let container = r#"<container><rootfiles><rootfile full-path="OEBPS/content.opf"/></rootfiles></container>"#;
        let opf = r#"<package><manifest>
            <item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/>
            <item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>
            </manifest><spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"#;
        let one = r#"<html><head><title>T</title><style>p{}</style></head><body><h1>One</h1><p>Fog&#160;came.</p><script>x()</script></body></html>"#;
        let two = r#"<html><body><p>Two &amp; more.</p></body></html>"#;
        let bytes = zip_of(&[
            ("META-INF/container.xml", container),
            ("OEBPS/content.opf", opf),
            ("OEBPS/one.xhtml", one),
            ("OEBPS/two.xhtml", two),
        ]);
        assert_eq!(
            extract(Format::Epub, &bytes).unwrap(),
            "One\n\nFog\u{a0}came.\n\nTwo & more."
        );
    }
}
