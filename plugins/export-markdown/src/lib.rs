//! The `markdown` exporter: any JSON document -> readable Markdown.
//!
//! Rendering rules:
//!
//! * The title is the `title` option, else the document's top-level `title` (or `name`)
//!   string, else the humanised document kind; it becomes `# Title`.
//! * Within an object, scalar fields come first as a bullet list (`- **Main text:** ...`,
//!   keys humanised: `main_text` / `mainText` -> "Main text"); arrays of scalars are nested
//!   bullet lists inside it. Then, in document order, multi-line strings, objects and arrays
//!   that contain objects become sections (`##`, `###`, ... by depth; deeper than `######`
//!   falls back to a bold line).
//! * Arrays of objects become numbered subsections (`### 1. <title or name>`).
//! * Multi-line strings keep their paragraphs (blank lines) and line breaks (hard breaks).
//! * Lines that would otherwise turn into Markdown structure (`#`, `>`, `-`, `+`, `*`, `=`,
//!   `1.`, fences, `<`, `[` at a line start) are backslash-escaped.
//! * `null`, empty strings, empty arrays and empty objects are left out, and so are metadata
//!   keys (`metadata`, `meta`, keys starting with `_`) unless `include_metadata` is true; then a
//!   front-matter block with the title and kind is added as well.
//!
//! Options (a JSON object, or empty / `null` for the defaults; unknown keys are ignored): `title` (string), `include_metadata`
//! (bool). The file name is the slugified title (ASCII letters and digits lower-cased, CJK
//! kept, everything else `-`) plus `.md`, or `export.md`.

use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportFile, ExporterInfo, Guest};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

const CONTENT_TYPE: &str = "text/markdown; charset=utf-8";

struct Plugin;

impl Guest for Plugin {
    fn info() -> ExporterInfo {
        ExporterInfo {
            format: "markdown".into(),
            display_name: "Markdown".into(),
            content_type: CONTENT_TYPE.into(),
            file_extension: "md".into(),
            document_kinds: vec!["*".into()],
            schema_version: 1,
        }
    }

    fn export(kind: String, document: String, options: String) -> Result<ExportFile, ExportError> {
        let options = parse_options(&options)?;
        let document: Node = serde_json::from_str(&document).map_err(|e| {
            ExportError::InvalidDocument(format!("document is not valid JSON: {e}"))
        })?;
        let (markdown, title) = render(&kind, &document, &options);
        Ok(ExportFile {
            bytes: markdown.into_bytes(),
            content_type: CONTENT_TYPE.into(),
            file_name: format!("{}.md", slugify(title.as_deref().unwrap_or(""))),
        })
    }
}

exporter::export!(Plugin);

/// Export options.
#[derive(Debug, Default, PartialEq)]
struct Options {
    title: Option<String>,
    include_metadata: bool,
}

fn parse_options(s: &str) -> Result<Options, ExportError> {
    let invalid = |m: &str| ExportError::InvalidOptions(m.to_string());
    if s.trim().is_empty() {
        return Ok(Options::default());
    }
    let v: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| ExportError::InvalidOptions(format!("options are not valid JSON: {e}")))?;
    if v.is_null() {
        return Ok(Options::default());
    }
    let map = v
        .as_object()
        .ok_or_else(|| invalid("options must be a JSON object"))?;
    let title = match map.get("title") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
        Some(_) => return Err(invalid("`title` must be a string")),
    };
    let include_metadata = match map.get("include_metadata") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("`include_metadata` must be a boolean")),
    };
    Ok(Options {
        title,
        include_metadata,
    })
}

/// A JSON value that keeps the order of object keys (serde_json's map sorts them unless the
/// workspace-wide `preserve_order` feature is on, which would also change the host).
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Number(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Number(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(Node::Number(
                    serde_json::Number::from_f64(n)
                        .map_or_else(|| n.to_string(), |n| n.to_string()),
                ))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Node>()? {
                    fields.push((k, v));
                }
                Ok(Node::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    /// Null, "", [] and {} carry nothing worth printing.
    fn is_empty(&self) -> bool {
        match self {
            Node::Null => true,
            Node::String(s) => s.trim().is_empty(),
            Node::Array(a) => a.iter().all(Node::is_empty),
            Node::Object(o) => o.is_empty(),
            Node::Bool(_) | Node::Number(_) => false,
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(
            self,
            Node::Null | Node::Bool(_) | Node::Number(_) | Node::String(_)
        )
    }

    /// Rendered in an object's field list rather than as a section.
    fn is_field(&self) -> bool {
        match self {
            Node::String(s) => !s.trim().contains('\n'),
            Node::Bool(_) | Node::Number(_) | Node::Null => true,
            Node::Array(items) => items.iter().all(Node::is_scalar),
            Node::Object(_) => false,
        }
    }

    fn scalar_text(&self) -> String {
        match self {
            Node::String(s) => s.trim().to_string(),
            Node::Number(n) => n.clone(),
            Node::Bool(true) => "yes".into(),
            Node::Bool(false) => "no".into(),
            _ => String::new(),
        }
    }

    /// The `title` or `name` string of an object, with its index.
    fn label(&self) -> Option<(usize, &str)> {
        let Node::Object(fields) = self else {
            return None;
        };
        ["title", "name"].iter().find_map(|want| {
            fields.iter().enumerate().find_map(|(i, (k, v))| match v {
                Node::String(s) if k == want && !s.trim().is_empty() && !s.contains('\n') => {
                    Some((i, s.trim()))
                }
                _ => None,
            })
        })
    }
}

/// Renders `doc`; returns the Markdown and the title used (if any).
fn render(kind: &str, doc: &Node, opts: &Options) -> (String, Option<String>) {
    let doc_label = doc.label();
    let kind = kind.trim();
    let title = opts
        .title
        .clone()
        .or_else(|| doc_label.map(|(_, t)| t.to_string()))
        .or_else(|| (!kind.is_empty() && kind != "*").then(|| humanize(kind)));
    // The document's own title key is consumed by the heading unless the option overrides it.
    let skip = match (&opts.title, doc_label) {
        (None, Some((i, _))) => Some(i),
        _ => None,
    };

    let mut md = Markdown {
        out: String::new(),
        include_metadata: opts.include_metadata,
    };
    if opts.include_metadata {
        let mut fm = String::from("---\n");
        if let Some(t) = &title {
            fm.push_str(&format!("title: {}\n", serde_json::Value::from(t.as_str())));
        }
        if !kind.is_empty() {
            fm.push_str(&format!("kind: {}\n", serde_json::Value::from(kind)));
        }
        fm.push_str("---");
        md.block(&fm);
    }
    if let Some(t) = &title {
        md.heading(1, t);
    }
    match doc {
        Node::Object(fields) => md.object(fields, 2, skip),
        Node::Array(items) => md.items(items, 2),
        scalar => {
            if !scalar.is_empty() {
                md.paragraphs(&scalar.scalar_text());
            }
        }
    }
    let mut out = md.out;
    if out.is_empty() {
        out.push('\n');
    }
    (out, title)
}

struct Markdown {
    out: String,
    include_metadata: bool,
}

impl Markdown {
    /// Appends a block, separated from the previous one by a blank line.
    fn block(&mut self, text: &str) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn heading(&mut self, level: usize, text: &str) {
        let text = heading_text(text);
        if level <= 6 {
            self.block(&format!("{} {}", "#".repeat(level), text));
        } else {
            self.block(&format!("**{text}**"));
        }
    }

    fn paragraphs(&mut self, text: &str) {
        let text = text_block(text, "");
        if !text.is_empty() {
            self.block(&text);
        }
    }

    fn visible(&self, key: &str, value: &Node) -> bool {
        !value.is_empty() && (self.include_metadata || !is_metadata_key(key))
    }

    fn object(&mut self, fields: &[(String, Node)], level: usize, skip: Option<usize>) {
        let visible: Vec<&(String, Node)> = fields
            .iter()
            .enumerate()
            .filter(|(i, (k, v))| Some(*i) != skip && self.visible(k, v))
            .map(|(_, f)| f)
            .collect();

        let mut list = String::new();
        for (key, value) in visible.iter().filter(|(_, v)| v.is_field()) {
            if !list.is_empty() {
                list.push('\n');
            }
            list.push_str(&format!("- **{}:**", label_text(&humanize(key))));
            match value {
                Node::Array(items) => {
                    for item in items.iter().filter(|i| !i.is_empty()) {
                        list.push_str(&format!(
                            "\n  - {}",
                            text_block(&item.scalar_text(), "    ")
                        ));
                    }
                }
                scalar => {
                    list.push(' ');
                    list.push_str(&scalar.scalar_text());
                }
            }
        }
        if !list.is_empty() {
            self.block(&list);
        }

        for (key, value) in visible.iter().filter(|(_, v)| !v.is_field()) {
            self.heading(level, &humanize(key));
            match value {
                Node::Object(inner) => self.object(inner, level + 1, None),
                Node::Array(items) => self.items(items, level + 1),
                other => self.paragraphs(&other.scalar_text()),
            }
        }
    }

    /// An array: a bullet list when every item is a scalar, else numbered subsections.
    fn items(&mut self, items: &[Node], level: usize) {
        if items.iter().all(Node::is_scalar) {
            let list: Vec<String> = items
                .iter()
                .filter(|i| !i.is_empty())
                .map(|i| format!("- {}", text_block(&i.scalar_text(), "  ")))
                .collect();
            if !list.is_empty() {
                self.block(&list.join("\n"));
            }
            return;
        }
        for (n, item) in items.iter().enumerate() {
            if item.is_empty() {
                continue;
            }
            let number = n + 1;
            let label = item.label();
            match label {
                Some((_, l)) => self.heading(level, &format!("{number}. {l}")),
                None => self.heading(level, &format!("{number}.")),
            }
            match item {
                Node::Object(fields) => self.object(fields, level + 1, label.map(|(i, _)| i)),
                Node::Array(inner) => self.items(inner, level + 1),
                scalar => self.paragraphs(&scalar.scalar_text()),
            }
        }
    }
}

fn is_metadata_key(key: &str) -> bool {
    key == "metadata" || key == "meta" || key.starts_with('_')
}

/// `main_text`, `mainText`, `main-text` -> `Main text`.
fn humanize(key: &str) -> String {
    let mut words = String::new();
    let mut prev: Option<char> = None;
    for c in key.chars() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !words.ends_with(' ') && !words.is_empty() {
                words.push(' ');
            }
        } else {
            if c.is_uppercase()
                && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                && !words.ends_with(' ')
            {
                words.push(' ');
            }
            words.extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    let words = words.trim();
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => key.to_string(),
    }
}

/// One line of heading text: line breaks folded, a closing `#` sequence escaped.
fn heading_text(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = one_line.trim_end_matches('#');
    if trimmed.len() != one_line.len() && (trimmed.is_empty() || trimmed.ends_with(' ')) {
        format!("{trimmed}\\{}", &one_line[trimmed.len()..])
    } else {
        one_line
    }
}

/// A key used as a bold label: emphasis and code markers escaped.
fn label_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '_' | '`' | '\\' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Multi-line text as Markdown: paragraphs separated by blank lines, line breaks inside a
/// paragraph kept as hard breaks, line starts escaped; continuation lines get `indent`.
fn text_block(text: &str, indent: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut paragraphs: Vec<Vec<String>> = vec![Vec::new()];
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !paragraphs.last().is_some_and(Vec::is_empty) {
                paragraphs.push(Vec::new());
            }
        } else if let Some(p) = paragraphs.last_mut() {
            p.push(escape_line_start(line));
        }
    }
    paragraphs
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.join(&format!("  \n{indent}")))
        .collect::<Vec<_>>()
        .join(&format!("\n\n{indent}"))
}

/// Escapes a (left-trimmed) line whose start Markdown would read as structure.
fn escape_line_start(line: &str) -> String {
    let bytes = line.as_bytes();
    let Some(&first) = bytes.first() else {
        return String::new();
    };
    let second = bytes.get(1).copied();
    let followed_by_space = |b: Option<u8>| b.is_none_or(|b| b == b' ' || b == b'\t');
    let needs_escape = match first {
        b'#' | b'>' | b'=' | b'<' | b'[' | b'|' => true,
        b'-' | b'+' | b'*' => followed_by_space(second) || is_thematic_break(line),
        b'_' => is_thematic_break(line),
        b'`' => line.starts_with("```"),
        b'~' => line.starts_with("~~~"),
        _ => false,
    };
    if needs_escape {
        return format!("\\{line}");
    }
    // Ordered list marker: up to 9 digits then `.` or `)` then a space or the end.
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if (1..=9).contains(&digits)
        && matches!(bytes.get(digits), Some(b'.') | Some(b')'))
        && followed_by_space(bytes.get(digits + 1).copied())
    {
        return format!("{}\\{}", &line[..digits], &line[digits..]);
    }
    line.to_string()
}

fn is_thematic_break(line: &str) -> bool {
    let chars: Vec<char> = line.chars().filter(|c| !c.is_whitespace()).collect();
    chars.len() >= 3 && matches!(chars[0], '-' | '*' | '_') && chars.iter().all(|c| *c == chars[0])
}

/// File-name stem: ASCII letters/digits (lower-cased) and CJK characters kept, runs of anything
/// else become one `-`; at most 80 characters; `export` when nothing is left.
fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut count = 0;
    for c in title.chars() {
        if count >= 80 {
            break;
        }
        if c.is_ascii_alphanumeric() || is_cjk(c) {
            slug.push(c.to_ascii_lowercase());
            count += 1;
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
            count += 1;
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        "export".to_string()
    } else {
        slug.to_string()
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x3134F) // CJK Extensions B-G
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(kind: &str, doc: &str, options: &str) -> Result<(String, String), ExportError> {
        Plugin::export(kind.into(), doc.into(), options.into())
            .map(|f| (String::from_utf8(f.bytes).unwrap(), f.file_name))
    }

    #[test]
    fn info() {
        let i = Plugin::info();
        assert_eq!(i.format, "markdown");
        assert_eq!(i.content_type, "text/markdown; charset=utf-8");
        assert_eq!(i.file_extension, "md");
        assert_eq!(i.document_kinds, vec!["*"]);
        assert_eq!(i.schema_version, 1);
    }

    #[test]
    fn story_like_document() {
        let doc = r#"{
            "title": "The Harbor Fog",
            "era": "1920s",
            "creativity_level": 0.7,
            "allow_free_chat": true,
            "themes": ["mystery", "noir"],
            "description": "A coastal town.\nFog everywhere.\n\nNobody sleeps.",
            "locations": [
                {"name": "The Pier", "description": "Wet planks", "items": [{"name": "Rope"}]},
                {"description": "Unnamed place"}
            ],
            "settings": {"interaction_style": "dramatic", "limits": {"maxTurns": 3}},
            "metadata": {"source": "upload"},
            "empty": [],
            "nothing": null
        }"#;
        let (md, file) = export("scene", doc, "{}").unwrap();
        let expected = "\
# The Harbor Fog

- **Era:** 1920s
- **Creativity level:** 0.7
- **Allow free chat:** yes
- **Themes:**
  - mystery
  - noir

## Description

A coastal town.  
Fog everywhere.

Nobody sleeps.

## Locations

### 1. The Pier

- **Description:** Wet planks

#### Items

##### 1. Rope

### 2.

- **Description:** Unnamed place

## Settings

- **Interaction style:** dramatic

### Limits

- **Max turns:** 3
";
        assert_eq!(md, expected);
        assert_eq!(file, "the-harbor-fog.md");
    }

    #[test]
    fn options_title_metadata_and_file_names() {
        let doc = r#"{"name": "Old", "_internal": 1, "metadata": {"k": "v"}}"#;
        let (md, file) = export(
            "story",
            doc,
            r#"{"title": "雾港 Story!", "include_metadata": true, "unknown": 5}"#,
        )
        .unwrap();
        assert_eq!(
            md,
            "---\ntitle: \"雾港 Story!\"\nkind: \"story\"\n---\n\n# 雾港 Story!\n\n- **Name:** Old\n- **Internal:** 1\n\n## Metadata\n\n- **K:** v\n"
        );
        assert_eq!(file, "雾港-story.md");
        // No title anywhere: kind heading, kind file name; `*` kind: no heading, `export.md`.
        let (md, file) = export("story", r#"{"a": 1}"#, "").unwrap();
        assert_eq!(
            (md.as_str(), file.as_str()),
            ("# Story\n\n- **A:** 1\n", "story.md")
        );
        let (md, file) = export("*", r#"{"a": 1}"#, "null").unwrap();
        assert_eq!((md.as_str(), file.as_str()), ("- **A:** 1\n", "export.md"));
        let (md, file) = export("*", r#"{"a": 1}"#, " ").unwrap();
        assert_eq!((md.as_str(), file.as_str()), ("- **A:** 1\n", "export.md"));
        let (_, file) = export("*", r#"{"title": "!!!"}"#, "{}").unwrap();
        assert_eq!(file, "export.md");
    }

    #[test]
    fn invalid_input() {
        assert!(matches!(
            export("*", "{", "{}"),
            Err(ExportError::InvalidDocument(_))
        ));
        assert!(matches!(
            export("*", "", "{}"),
            Err(ExportError::InvalidDocument(_))
        ));
        for bad in [
            "[1]",
            "{\"title\": 3}",
            "{\"include_metadata\": \"yes\"}",
            "{oops",
        ] {
            assert!(
                matches!(export("*", "{}", bad), Err(ExportError::InvalidOptions(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn arrays_and_scalars_at_the_root() {
        let (md, _) = export("*", r#"["a", "- b", 3, null]"#, r#"{"title":"List"}"#).unwrap();
        assert_eq!(md, "# List\n\n- a\n- \\- b\n- 3\n");
        let (md, _) = export(
            "*",
            r#"[{"title": "One", "x": "y"}, "two\nlines", [1, 2]]"#,
            "{}",
        )
        .unwrap();
        assert_eq!(
            md,
            "## 1. One\n\n- **X:** y\n\n## 2.\n\ntwo  \nlines\n\n## 3.\n\n- 1\n- 2\n"
        );
        let (md, _) = export("*", r##""# not a heading""##, "{}").unwrap();
        assert_eq!(md, "\\# not a heading\n");
        let (md, _) = export("*", "{}", "{}").unwrap();
        assert_eq!(md, "\n");
    }

    #[test]
    fn deep_nesting_falls_back_to_bold() {
        let (md, _) = export("*", r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}"#, "{}").unwrap();
        assert!(md.contains("###### E\n\n**F**\n\n- **G:** 1\n"), "{md}");
    }

    #[test]
    fn line_start_escaping() {
        for (line, escaped) in [
            ("# h", "\\# h"),
            ("> q", "\\> q"),
            ("- x", "\\- x"),
            ("-x", "-x"),
            ("+ x", "\\+ x"),
            ("* x", "\\* x"),
            ("*bold*", "*bold*"),
            ("---", "\\---"),
            ("***", "\\***"),
            ("___", "\\___"),
            ("_a_", "_a_"),
            ("===", "\\==="),
            ("1. x", "1\\. x"),
            ("2) x", "2\\) x"),
            ("1.5 kg", "1.5 kg"),
            ("2024", "2024"),
            ("```rust", "\\```rust"),
            ("~~~", "\\~~~"),
            ("<div>", "\\<div>"),
            ("[a]: b", "\\[a]: b"),
            ("| a | b |", "\\| a | b |"),
            ("plain", "plain"),
        ] {
            assert_eq!(escape_line_start(line), escaped, "{line}");
        }
        assert_eq!(
            text_block("  a\n    b\r\n\r\n\n- c\n", ""),
            "a  \nb\n\n\\- c"
        );
        assert_eq!(text_block("a\n\nb", "  "), "a\n\n  b");
    }

    #[test]
    fn helpers() {
        assert_eq!(humanize("main_text"), "Main text");
        assert_eq!(humanize("mainText"), "Main text");
        assert_eq!(humanize("scene-id"), "Scene id");
        assert_eq!(humanize("HTTPCode"), "Httpcode");
        assert_eq!(humanize("角色"), "角色");
        assert_eq!(humanize("__"), "__");
        assert_eq!(heading_text("C#"), "C#");
        assert_eq!(heading_text("Issue #"), "Issue \\#");
        assert_eq!(heading_text("a\nb"), "a b");
        assert_eq!(slugify("Hello, World!"), "hello-world");
        assert_eq!(slugify("第一章：雾港"), "第一章-雾港");
        assert_eq!(slugify("  ---  "), "export");
        assert_eq!(slugify(&"x".repeat(200)).len(), 80);
        assert_eq!(slugify("Café Noir"), "caf-noir");
    }
}
