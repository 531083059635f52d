//! Pieces both Markdown documents share: the Markdown constructs on top of the line builder,
//! which keep multi-line values inside the construct they belong to, and the keyword list.
//!
//! Values are written as they are (the output is a report, not HTML, and the spec escapes
//! nothing). The only changes are to line breaks, and only where one would break the
//! structure around a value: continuation lines of a list item are indented to the item's
//! content column, quoted lines each get a `> `, and headings and table cells (which cannot
//! span lines) get spaces instead of line breaks.

pub use sceneintruder_plugin_sdk::exporter::document::lines::Lines as Doc;

/// The Markdown constructs of the templates, written on a [`Doc`] (every line ends in `\n`).
pub trait Markdown {
    /// `#`×`level` and the text on one line.
    fn heading(&mut self, level: usize, text: &str);
    /// `- **{label}**: {value}`.
    fn item(&mut self, label: &str, value: impl AsRef<str>);
    /// A second-level item, `  - {text}`.
    fn sub_item(&mut self, text: impl AsRef<str>);
    /// A table row, `| a | b | … |`.
    fn row<S: AsRef<str>>(&mut self, cells: &[S]);
    /// `text` as a quote: every line of it prefixed with `> `.
    fn quote(&mut self, text: &str);
}

impl Markdown for Doc {
    fn heading(&mut self, level: usize, text: &str) {
        self.line(format!("{} {}", "#".repeat(level), one_line(text)));
    }

    fn item(&mut self, label: &str, value: impl AsRef<str>) {
        self.line(format!("- **{label}**: {}", hanging(value.as_ref(), 2)));
    }

    fn sub_item(&mut self, text: impl AsRef<str>) {
        self.line(format!("  - {}", hanging(text.as_ref(), 4)));
    }

    fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let cells: Vec<String> = cells.iter().map(|c| one_line(c.as_ref())).collect();
        self.line(format!("| {} |", cells.join(" | ")));
    }

    fn quote(&mut self, text: &str) {
        for line in text.split('\n') {
            self.line(format!("> {line}"));
        }
    }
}

/// `text` with its line breaks turned into spaces (for headings and table cells).
pub fn one_line(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

/// `text` with every line after the first indented by `indent` spaces, so a multi-line value
/// stays inside its list item (blank lines stay empty).
pub fn hanging(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.trim_end_matches('\r').is_empty() {
                out.push_str(&pad);
            }
        }
        out.push_str(line);
    }
    out
}

/// Which document a keyword list is in: the two kinds mark ranks 11-15 differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markers {
    Scene,
    Interactions,
}

/// The marker before the keyword of `rank` (from 1): medals for the first three (the
/// reference sliced bytes out of "🥇🥈🥉" and emitted invalid UTF-8; whole medals are the
/// spec's fix), stars for 4-5, arrows after, and bullets for 11-15 in interactions.
pub fn keyword_marker(rank: usize, markers: Markers) -> &'static str {
    match rank {
        1 => "🥇",
        2 => "🥈",
        3 => "🥉",
        4 | 5 => "⭐",
        11.. if markers == Markers::Interactions => "•",
        _ => "▶️",
    }
}

/// The ranked keyword lines, `{marker} **{kw}**` for at most the first 15.
pub fn keyword_lines(doc: &mut Doc, keywords: &[String], markers: Markers) {
    for (i, keyword) in keywords.iter().take(15).enumerate() {
        doc.line(format!("{} **{keyword}**", keyword_marker(i + 1, markers)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_values_stay_in_their_item() {
        let mut doc = Doc::default();
        doc.item("描述", "first\n\n- second\r\nthird");
        doc.sub_item("a\nb");
        assert_eq!(
            doc.finish(),
            "- **描述**: first\n\n  - second\r\n  third\n  - a\n    b\n"
        );
    }

    #[test]
    fn headings_cells_and_quotes_keep_their_shape() {
        let mut doc = Doc::default();
        doc.heading(3, "1. Two\nlines\r\nhere");
        doc.row(&["a\nb", "1"]);
        doc.quote("one\n\ntwo");
        doc.quote("");
        assert_eq!(
            doc.finish(),
            "### 1. Two lines here\n| a b | 1 |\n> one\n> \n> two\n> \n"
        );
    }

    #[test]
    fn keyword_markers_by_rank_and_kind() {
        let scene: Vec<&str> = (1..=15)
            .map(|r| keyword_marker(r, Markers::Scene))
            .collect();
        assert_eq!(&scene[..6], ["🥇", "🥈", "🥉", "⭐", "⭐", "▶️"]);
        assert!(scene[5..].iter().all(|m| *m == "▶️"));
        assert_eq!(keyword_marker(10, Markers::Interactions), "▶️");
        assert_eq!(keyword_marker(11, Markers::Interactions), "•");
        assert_eq!(keyword_marker(15, Markers::Interactions), "•");
        let keywords: Vec<String> = (1..=20).map(|i| format!("k{i}")).collect();
        let mut doc = Doc::default();
        keyword_lines(&mut doc, &keywords, Markers::Interactions);
        let text = doc.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 15);
        assert_eq!(lines[0], "🥇 **k1**");
        assert_eq!(lines[14], "• **k15**");
        // Every marker is valid UTF-8 by construction; the medals are whole characters.
        assert!(text.contains("🥉 **k3**"));
    }
}
