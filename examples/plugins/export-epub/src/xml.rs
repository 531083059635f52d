//! Text made safe for the book's XML files (XHTML pages, the package document, the nav).

use sceneintruder_plugin_sdk::exporter::document::render;

/// `text` ready for XML element content or a quoted attribute value: characters XML 1.0
/// forbids are dropped (a stray control character in a stored conversation would make the
/// whole page unreadable to a reading system), then markup is escaped. `escape_html` emits
/// only `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&#39;`, which XML knows too.
pub fn text(text: &str) -> String {
    render::escape_html(&clean(text))
}

/// Like [`text`], with line breaks kept as `<br/>` (descriptions and conversation lines are
/// often several paragraphs).
pub fn lines(text: &str) -> String {
    let text = clean(text).replace("\r\n", "\n");
    text.split(['\n', '\r'])
        .map(render::escape_html)
        .collect::<Vec<_>>()
        .join("<br/>")
}

/// `text` without the characters XML 1.0 does not allow: controls other than tab, line feed
/// and carriage return, and U+FFFE / U+FFFF (Rust strings never hold surrogates).
pub fn clean(text: &str) -> String {
    text.chars().filter(|&c| allowed(c)).collect()
}

fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// True when `text` holds a CJK ideograph (the book's language is then Chinese).
pub fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c,
            '\u{3400}'..='\u{4DBF}'       // Extension A
            | '\u{4E00}'..='\u{9FFF}'     // Unified Ideographs
            | '\u{F900}'..='\u{FAFF}'     // Compatibility Ideographs
            | '\u{20000}'..='\u{3134F}') // Extensions B-G and the supplement
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_what_xml_forbids_and_escapes_markup() {
        assert_eq!(
            text("a\u{0}\u{1}\u{8}\u{B}\u{C}\u{1F}b\tc\u{FFFE}\u{FFFF}<&>\"'"),
            "ab\tc&lt;&amp;&gt;&quot;&#39;"
        );
        assert_eq!(text("雾 🌫"), "雾 🌫");
    }

    #[test]
    fn keeps_line_breaks() {
        assert_eq!(
            lines("one\r\ntwo\nthree\r<x>"),
            "one<br/>two<br/>three<br/>&lt;x&gt;"
        );
        assert_eq!(lines(""), "");
    }

    #[test]
    fn finds_cjk() {
        assert!(has_cjk("The 茶馆"));
        assert!(!has_cjk("The Harbor Fog — café"));
        assert!(!has_cjk("、。"));
    }
}
