//! Pieces both plain-text documents share: the summary's conversion to plain text, and the
//! emotion and keyword lines. Documents are built with the shared line builder, [`Text`].

pub use sceneintruder_plugin_sdk::exporter::document::lines::Lines as Text;
use sceneintruder_plugin_sdk::exporter::document::render;

/// The summary Markdown with its markers removed, as the plain-text templates embed it:
/// every `#`, `**` and `*` goes (removing `**` and then `*` is removing every `*`). This
/// leaves the leading space of headings (`## Title` becomes ` Title`), as the spec shows.
pub fn strip_markers(markdown: &str) -> String {
    markdown.replace(['#', '*'], "")
}

/// `text` with every line after the first indented by `pad`, so a multi-line value stays
/// under the entry it belongs to (blank lines stay empty).
pub fn indented(text: &str, pad: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.trim_end_matches('\r').is_empty() {
                out.push_str(pad);
            }
        }
        out.push_str(line);
    }
    out
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
    fn continuation_lines_are_indented() {
        assert_eq!(indented("a\n\nb\nc", "  "), "a\n\n  b\n  c");
        assert_eq!(indented("one", "  "), "one");
    }

    #[test]
    fn emotion_lines_show_the_share_and_a_bar() {
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
