//! Pieces both Markdown documents share: a line builder that keeps multi-line values inside
//! the construct they belong to, and the emotion, keyword and date helpers.
//!
//! Values are written as they are (the output is a report, not HTML, and the spec escapes
//! nothing). The only changes are to line breaks, and only where one would break the
//! structure around a value: continuation lines of a list item are indented to the item's
//! content column, quoted lines each get a `> `, and headings and table cells (which cannot
//! span lines) get spaces instead of line breaks.

use std::collections::BTreeMap;

use sceneintruder_plugin_sdk::exporter::document::{DateRange, time};
use serde_json::Value;

/// A Markdown document built line by line (every line ends in `\n`).
#[derive(Debug, Default)]
pub struct Doc(String);

impl Doc {
    /// Append one line as it is.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.0.push_str(line.as_ref());
        self.0.push('\n');
    }

    /// Append an empty line.
    pub fn blank(&mut self) {
        self.0.push('\n');
    }

    /// `#`×`level` and the text on one line.
    pub fn heading(&mut self, level: usize, text: &str) {
        self.line(format!("{} {}", "#".repeat(level), one_line(text)));
    }

    /// `- **{label}**: {value}`.
    pub fn item(&mut self, label: &str, value: impl AsRef<str>) {
        self.line(format!("- **{label}**: {}", hanging(value.as_ref(), 2)));
    }

    /// A second-level item, `  - {text}`.
    pub fn sub_item(&mut self, text: impl AsRef<str>) {
        self.line(format!("  - {}", hanging(text.as_ref(), 4)));
    }

    /// A table row, `| a | b | … |`.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let cells: Vec<String> = cells.iter().map(|c| one_line(c.as_ref())).collect();
        self.line(format!("| {} |", cells.join(" | ")));
    }

    /// `text` as a quote: every line of it prefixed with `> `.
    pub fn quote(&mut self, text: &str) {
        for line in text.split('\n') {
            self.line(format!("> {line}"));
        }
    }

    /// A Markdown block embedded as it is (the summaries), then one blank line. The block's
    /// own trailing line breaks are dropped first, so exactly one blank line follows it
    /// however the host ended the summary.
    pub fn block(&mut self, markdown: &str) {
        self.line(markdown.trim_end_matches(['\n', '\r']));
        self.blank();
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// `text` with its line breaks turned into spaces (for headings and table cells).
pub fn one_line(text: &str) -> String {
    text.replace("\r\n", " ").replace(['\n', '\r'], " ")
}

/// `text` with every line after the first indented by `indent` spaces, so a multi-line value
/// stays inside its list item (blank lines stay empty).
fn hanging(text: &str, indent: usize) -> String {
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

/// The emotions of a distribution, most frequent first (ties keep the map's key order).
pub fn ranked_emotions(distribution: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut ranked: Vec<(&str, u64)> = distribution
        .iter()
        .map(|(emotion, n)| (emotion.as_str(), *n))
        .collect();
    ranked.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    ranked
}

/// True when both ends of the range are real times.
pub fn has_dates(range: &DateRange) -> bool {
    !time::is_zero(&range.start_date) && !time::is_zero(&range.end_date)
}

/// `n / d` for the "per interaction" averages (callers check `d > 0`).
pub fn ratio(n: u64, d: u64) -> f64 {
    n as f64 / d as f64
}

/// A JSON value as the reference printed loose values: strings bare, anything else as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Golden-file comparison for the module tests.
#[cfg(test)]
pub mod golden {
    use std::path::PathBuf;

    /// Compare `actual` with `tests/golden/export/<name>` byte for byte, or write it there
    /// when `UPDATE_GOLDEN=1`.
    pub fn check(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/golden/export")
            .join(name);
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::write(&path, actual).expect("golden file written");
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(
            actual, expected,
            "{name} differs from the golden file; run with UPDATE_GOLDEN=1 and review the diff"
        );
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
    fn a_block_ends_with_exactly_one_blank_line() {
        for summary in ["## a\nb", "## a\nb\n", "## a\nb\n\n\n"] {
            let mut doc = Doc::default();
            doc.block(summary);
            assert_eq!(doc.finish(), "## a\nb\n\n", "{summary:?}");
        }
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

    #[test]
    fn emotions_rank_by_count_then_key() {
        let dist: BTreeMap<String, u64> = [("b", 1), ("c", 2), ("a", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(ranked_emotions(&dist), [("c", 2), ("a", 1), ("b", 1)]);
    }
}
