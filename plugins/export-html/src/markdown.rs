//! The kind's summary (Markdown) as HTML, without letting anything in it become markup
//! the summary did not ask for (spec story-export §8.6.6, with the recommended fix).
//!
//! The reference converts the summary with a few string replacements, leaves headings and
//! `<strong>` unclosed and passes any HTML in the text straight through. Here a CommonMark
//! parser builds the structure, and:
//! * raw HTML (blocks and inline) is shown as text, never passed through;
//! * every text is escaped with the same `escape_html` as the rest of the page (so quotes
//!   and apostrophes are escaped too, not only `<`, `>` and `&`);
//! * links and images whose destination is not `http(s)://` or relative are dropped
//!   (their text stays), so no `javascript:` or `data:` URL reaches an attribute.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};
use sceneintruder_plugin_sdk::exporter::document::render::{escape_html, safe_url};

/// What a link or image start became, so its end can follow suit.
enum Opened {
    /// Unsafe destination: start and end are both left out.
    Dropped,
    /// A link kept as it is.
    Link,
    /// An image kept as it is: its text is the `alt` attribute, which the writer escapes.
    Image,
}

/// `markdown` converted to HTML.
pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut opened: Vec<Opened> = Vec::new();
    let mut events = Vec::new();
    for event in Parser::new_ext(markdown, options) {
        // Inside a kept image every text is the alt attribute: the writer escapes it there.
        let in_alt = opened.iter().any(|o| matches!(o, Opened::Image));
        let event = match event {
            Event::Start(Tag::Link { ref dest_url, .. }) => {
                let kept = safe_url(dest_url) || dest_url.is_empty();
                opened.push(if kept { Opened::Link } else { Opened::Dropped });
                kept.then_some(event)
            }
            Event::Start(Tag::Image { ref dest_url, .. }) => {
                let kept = safe_url(dest_url);
                opened.push(if kept { Opened::Image } else { Opened::Dropped });
                kept.then_some(event)
            }
            Event::End(TagEnd::Link | TagEnd::Image) => match opened.pop() {
                Some(Opened::Dropped) => None,
                _ => Some(event),
            },
            // An HTML block becomes a paragraph of its text.
            Event::Start(Tag::HtmlBlock) => Some(Event::Start(Tag::Paragraph)),
            Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::Paragraph)),
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => Some(if in_alt {
                Event::Text(text)
            } else {
                escaped(&text)
            }),
            Event::Code(code) if !in_alt => Some(Event::InlineHtml(CowStr::from(format!(
                "<code>{}</code>",
                escape_html(&code)
            )))),
            other => Some(other),
        };
        events.extend(event);
    }
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, events.into_iter());
    out
}

/// Text already escaped, handed to the writer as markup so it is not escaped twice.
fn escaped(text: &str) -> Event<'static> {
    Event::InlineHtml(CowStr::from(escape_html(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_and_strong_are_real_closed_markup() {
        let html = to_html("## T - 报告\n\n### 概览\n\n- **场景ID**: s1\n- **名称**: T\n");
        assert_eq!(
            html,
            "<h2>T - 报告</h2>\n<h3>概览</h3>\n<ul>\n<li><strong>场景ID</strong>: s1</li>\n<li><strong>名称</strong>: T</li>\n</ul>\n"
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = to_html("<script>alert('x')</script>\n\nhi <b onclick=\"x()\">b</b> & \"q\"\n");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("hi &lt;b onclick=&quot;x()&quot;&gt;b&lt;/b&gt; &amp; &quot;q&quot;"),
            "{html}"
        );
    }

    #[test]
    fn code_is_escaped_once() {
        assert_eq!(
            to_html("`<a & b>`"),
            "<p><code>&lt;a &amp; b&gt;</code></p>\n"
        );
        let block = to_html("```\n<x>\n```\n");
        assert_eq!(block, "<pre><code>&lt;x&gt;\n</code></pre>\n");
    }

    #[test]
    fn unsafe_links_and_images_keep_only_their_text() {
        let html = to_html(
            "[a](javascript:alert(1)) [b](https://x.test/\"q) ![c](data:text/html,x) ![d<](img/d.png) <javascript:alert(2)>",
        );
        // The dropped autolink's text stays as plain text; no attribute holds the URL.
        assert!(
            !html.to_ascii_lowercase().contains("=\"javascript:"),
            "{html}"
        );
        assert!(html.contains(" javascript:alert(2)</p>"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(
            html.contains("<a href=\"https://x.test/%22q\">b</a>"),
            "{html}"
        );
        assert!(
            html.contains("<img src=\"img/d.png\" alt=\"d&lt;\" />"),
            "{html}"
        );
        assert!(html.starts_with("<p>a "), "{html}");
        assert!(html.contains(" c "), "{html}");
    }

    #[test]
    fn empty_markdown_is_empty_html() {
        assert_eq!(to_html(""), "");
    }
}
