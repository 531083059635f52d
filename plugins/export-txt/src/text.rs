//! Pieces both plain-text documents share: a line builder, the summary's conversion to
//! plain text, and the emotion and keyword lists.

use std::collections::BTreeMap;

use sceneintruder_plugin_sdk::exporter::document::{DateRange, render, time};

/// A plain-text document built line by line (every line ends in `\n`).
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    /// Append one line.
    pub fn line(&mut self, line: impl AsRef<str>) {
        self.0.push_str(line.as_ref());
        self.0.push('\n');
    }

    /// Append an empty line.
    pub fn blank(&mut self) {
        self.0.push('\n');
    }

    /// Append `n` copies of `c` as a line (the templates' separators).
    pub fn rule(&mut self, c: char, n: usize) {
        self.line(c.to_string().repeat(n));
    }

    /// Append a multi-line block (the summaries) followed by one blank line. The block's own
    /// trailing line breaks are dropped first, so the blank line after it is exactly one
    /// however the host ended the summary (the reference's output there depended on it).
    pub fn block(&mut self, block: &str) {
        self.line(block.trim_end_matches(['\n', '\r']));
        self.blank();
    }

    /// Characters written so far.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// The summary Markdown with its markers removed, as the plain-text templates embed it:
/// every `#`, `**` and `*` goes (removing `**` and then `*` is removing every `*`). This
/// leaves the leading space of headings (`## Title` becomes ` Title`), as the spec shows.
pub fn strip_markers(markdown: &str) -> String {
    markdown.replace(['#', '*'], "")
}

/// The emotions of a distribution, most frequent first (ties keep the map's key order).
pub fn ranked_emotions(distribution: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut ranked: Vec<(&str, u64)> = distribution
        .iter()
        .map(|(emotion, n)| (emotion.as_str(), *n))
        .collect();
    ranked.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    ranked
}

/// One emotion line, `  {e}: {n}次 ({pct:.1f}%) {bar}`, the share taken of all emotion
/// counts (`total`).
pub fn emotion_line(emotion: &str, n: u64, total: u64) -> String {
    let pct = render::percent(n as f64, total as f64);
    format!("  {emotion}: {n}次 ({pct:.1}%) {}", render::text_bar(pct))
}

/// The ranked keyword lines, `{marker} {kw}` for at most the first 15.
pub fn keyword_lines(out: &mut Text, keywords: &[String]) {
    for (i, keyword) in keywords.iter().take(15).enumerate() {
        out.line(format!("{} {keyword}", render::text_rank_marker(i + 1)));
    }
}

/// True when both ends of the range are real times.
pub fn has_dates(range: &DateRange) -> bool {
    !time::is_zero(&range.start_date) && !time::is_zero(&range.end_date)
}

/// `n / d` for the "per interaction" averages (callers check `d > 0`).
pub fn ratio(n: u64, d: u64) -> f64 {
    n as f64 / d as f64
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
    fn markers_go_and_heading_spaces_stay() {
        assert_eq!(
            strip_markers("## T - 报告\n\n- **场景ID**: s *x* #1\n"),
            " T - 报告\n\n- 场景ID: s x 1\n"
        );
    }

    #[test]
    fn a_block_ends_with_exactly_one_blank_line() {
        for summary in ["a\nb", "a\nb\n", "a\nb\n\n\n"] {
            let mut t = Text::default();
            t.block(summary);
            assert_eq!(t.finish(), "a\nb\n\n", "{summary:?}");
        }
    }

    #[test]
    fn emotions_rank_by_count_then_key() {
        let dist: BTreeMap<String, u64> = [("b", 1), ("c", 2), ("a", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(ranked_emotions(&dist), [("c", 2), ("a", 1), ("b", 1)]);
        assert_eq!(
            emotion_line("calm", 1, 4),
            format!("  calm: 1次 (25.0%) {}{}", "█".repeat(5), "░".repeat(15))
        );
        // No counts at all: NaN share, empty bar, no panic.
        assert_eq!(
            emotion_line("calm", 0, 0),
            format!("  calm: 0次 (NaN%) {}", "░".repeat(20))
        );
    }

    #[test]
    fn keyword_markers_by_rank() {
        let keywords: Vec<String> = (1..=20).map(|i| format!("k{i}")).collect();
        let mut t = Text::default();
        keyword_lines(&mut t, &keywords);
        let text = t.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 15);
        assert_eq!(lines[0], "[第1名] k1");
        assert_eq!(lines[3], "  4.  k4");
        assert_eq!(lines[14], " 15.  k15");
    }
}
