//! A small HTML writer that keeps the page well-formed and its data escaped.
//!
//! Every element is opened and closed through [`Page`], which remembers what is open, so
//! the output is balanced by construction (the reference leaves divs open). Tag names,
//! classes and labels are `&'static str`: only fixed strings of this crate become markup.
//! Everything that comes from the export input goes through a `&str` parameter that is
//! HTML-escaped on the way out, or through [`Page::trusted`], whose callers build their
//! markup from escaped values only.

use sceneintruder_plugin_sdk::exporter::document::render::escape_html;

/// The HTML document being written.
pub struct Page {
    out: String,
    /// Tags opened and not yet closed, outermost first.
    open: Vec<&'static str>,
}

impl Page {
    /// Start a page: doctype, head with `title` (escaped) and the inline `style`, and open
    /// `<body>`.
    pub fn new(title: &str, style: &'static str) -> Page {
        let mut page = Page {
            out: String::with_capacity(16 * 1024),
            open: Vec::new(),
        };
        page.out
            .push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n");
        page.open.push("html");
        page.out.push_str("<head>\n<meta charset=\"UTF-8\">\n");
        page.out.push_str(
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n",
        );
        page.out
            .push_str(&format!("<title>{}</title>\n", escape_html(title)));
        page.out
            .push_str(&format!("<style>\n{style}</style>\n</head>\n"));
        page.out.push_str("<body>\n");
        page.open.push("body");
        page
    }

    fn indent(&mut self) {
        // <html> and <body> are not indented.
        let depth = self.open.len().saturating_sub(2);
        self.out.extend(std::iter::repeat_n("  ", depth));
    }

    /// Open `<tag class="class">` (no class attribute when `class` is empty).
    pub fn open(&mut self, tag: &'static str, class: &'static str) {
        self.indent();
        if class.is_empty() {
            self.out.push_str(&format!("<{tag}>\n"));
        } else {
            self.out.push_str(&format!("<{tag} class=\"{class}\">\n"));
        }
        self.open.push(tag);
    }

    /// Open `<tag attributes>` with fixed attributes (e.g. `class="section" id="log"`).
    pub fn open_with(&mut self, tag: &'static str, attributes: &'static str) {
        self.indent();
        self.out.push_str(&format!("<{tag} {attributes}>\n"));
        self.open.push(tag);
    }

    /// Close the innermost open element.
    pub fn close(&mut self) {
        if let Some(tag) = self.open.pop() {
            self.indent();
            self.out.push_str(&format!("</{tag}>\n"));
        }
    }

    /// `<div class="section">` with its `<h2>` heading; close it with [`Page::close`].
    pub fn section(&mut self, heading: &'static str) {
        self.open("div", "section");
        self.element("h2", "", heading);
    }

    /// One element on one line: `<tag class="class">{text escaped}</tag>`.
    pub fn element(&mut self, tag: &'static str, class: &'static str, text: &str) {
        self.indent();
        let text = escape_html(text);
        if class.is_empty() {
            self.out.push_str(&format!("<{tag}>{text}</{tag}>\n"));
        } else {
            self.out
                .push_str(&format!("<{tag} class=\"{class}\">{text}</{tag}>\n"));
        }
    }

    /// A labelled value: `<p><strong>{label}:</strong> {value escaped}</p>`.
    pub fn field(&mut self, label: &'static str, value: &str) {
        self.indent();
        self.out.push_str(&format!(
            "<p><strong>{label}:</strong> {}</p>\n",
            escape_html(value)
        ));
    }

    /// A labelled value with a full-width colon, as the story page writes them:
    /// `<p><strong>{label}：</strong>{value escaped}</p>`.
    pub fn labelled(&mut self, label: &'static str, value: &str) {
        self.indent();
        self.out.push_str(&format!(
            "<p><strong>{label}：</strong>{}</p>\n",
            escape_html(value)
        ));
    }

    /// A labelled piece of fixed markup (a coloured yes/no, say).
    pub fn field_markup(&mut self, label: &'static str, markup: &'static str) {
        self.indent();
        self.out
            .push_str(&format!("<p><strong>{label}:</strong> {markup}</p>\n"));
    }

    /// A stat card: the number over its label.
    pub fn stat(&mut self, number: &str, label: &'static str) {
        self.indent();
        self.out.push_str(&format!(
            "<div class=\"stat-card\"><div class=\"stat-number\">{}</div><div class=\"stat-label\">{label}</div></div>\n",
            escape_html(number)
        ));
    }

    /// A bar filled to `pct` percent: `<div class="{track}"><div class="{fill}" style="width: {pct:.1}%"></div></div>`.
    pub fn bar(&mut self, track: &'static str, fill: &'static str, pct: f64) {
        self.indent();
        // A number is all that reaches the style attribute (NaN or a negative width is
        // just an invalid CSS value the browser ignores).
        self.out.push_str(&format!(
            "<div class=\"{track}\"><div class=\"{fill}\" style=\"width: {pct:.1}%\"></div></div>\n"
        ));
    }

    /// Markup the caller built itself. Callers must have escaped every input value in it
    /// (with `escape_html`) and must not leave elements open.
    pub fn trusted(&mut self, html: &str) {
        self.indent();
        self.out.push_str(html);
        if !html.ends_with('\n') {
            self.out.push('\n');
        }
    }

    /// A block of converted Markdown, written as it is (not indented, so `<pre>` blocks
    /// keep their text).
    pub fn block(&mut self, html: &str) {
        self.out.push_str(html);
        if !html.is_empty() && !html.ends_with('\n') {
            self.out.push('\n');
        }
    }

    /// A fixed `<script>` (no data is ever interpolated into it).
    pub fn script(&mut self, code: &'static str) {
        self.out.push_str(&format!("<script>\n{code}</script>\n"));
    }

    /// Close everything still open and return the document.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close();
        }
        self.out
    }
}

/// `true`/`false` as a coloured 是/否.
pub fn yes_no(value: bool) -> &'static str {
    if value {
        "<span style=\"color: #16a34a;\">✅ 是</span>"
    } else {
        "<span style=\"color: #dc2626;\">❌ 否</span>"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_opened_is_closed_and_text_is_escaped() {
        let mut page = Page::new("<t>", "");
        page.open("div", "container");
        page.section("S");
        page.element("h3", "", "a & <b>");
        page.field("F", "\"q\" 'x'");
        page.labelled("L", "<i>");
        let html = page.finish();
        assert!(html.contains("<title>&lt;t&gt;</title>"));
        assert!(html.contains("<h3>a &amp; &lt;b&gt;</h3>"));
        assert!(html.contains("<p><strong>F:</strong> &quot;q&quot; &#39;x&#39;</p>"));
        assert!(html.contains("<p><strong>L：</strong>&lt;i&gt;</p>"));
        assert!(
            html.ends_with("  </div>\n</div>\n</body>\n</html>\n"),
            "{html}"
        );
    }
}
