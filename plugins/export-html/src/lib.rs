//! The `html` exporter: the scene export (spec story-export §8.7.5), the interactions
//! export (§8.8.5) and the story export (§8.9.5) as self-contained HTML pages.
//!
//! The host sends one export input per export (statistics and the kind's summary already
//! computed); this plugin only lays it out. Unlike the reference, which pasted every value
//! raw into the page (stored XSS), every value from the input is HTML-escaped, image URLs
//! must be http(s) or relative, and the Markdown summary goes through a real converter
//! that shows raw HTML as text ([`markdown`]). [`page`] is the writer that keeps the markup
//! balanced and escaped; each kind has its own module.

use sceneintruder_plugin_sdk::exporter::document::{
    Conversation, ExportInput, render,
    time::{self, Pattern},
};
use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};

use page::Page;

mod interactions;
mod markdown;
mod page;
mod scene;
mod story;

/// The format id this plugin serves.
const FORMAT: &str = "html";

/// The kinds it serves that format for.
const KINDS: &[&str] = &["scene", "interactions", "story"];

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        exporter::pairs(KINDS, FORMAT, "HTML", "text/html; charset=utf-8", "html")
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        exporter::render_text(&req, &Self::supported(), render)
    }
}

/// The page of `kind` (`None` for a kind this plugin does not render).
fn render(kind: &str, input: &ExportInput) -> Option<String> {
    match kind {
        "scene" => Some(scene::render(input)),
        "interactions" => Some(interactions::render(input)),
        "story" => Some(story::render(input)),
        _ => None,
    }
}

exporter::export!(Plugin);

/// Whether a conversation line is the user's: `metadata.speaker_type` says so, or, when the
/// line has no `speaker_type`, its `speaker` is `user`/`用户`.
fn is_user(line: &Conversation) -> bool {
    match line.metadata.get("speaker_type") {
        Some(kind) => kind.as_str() == Some("user"),
        None => render::is_user_speaker(&line.speaker),
    }
}

/// One conversation line: `div.{class} user|character` with the speaker's name, the time
/// (when set), the text and the emotions (when any). Both pages show lines this way, with
/// their own outer class (`message …` on the scene page, `conversation …` on the other).
fn message(
    page: &mut Page,
    input: &ExportInput,
    line: &Conversation,
    user_class: &'static str,
    character_class: &'static str,
) {
    let user = is_user(line);
    page.open("div", if user { user_class } else { character_class });
    page.element(
        "div",
        if user {
            "speaker user"
        } else {
            "speaker character"
        },
        input.speaker_name(line),
    );
    if !time::is_zero(&line.timestamp) {
        page.element(
            "div",
            "timestamp",
            &time::format(&line.timestamp, Pattern::DateTime),
        );
    }
    page.element("div", "message-content", &line.content);
    let emotions = line.emotions.as_deref().unwrap_or_default();
    if !emotions.is_empty() {
        page.element("div", "emotion", &format!("🎭 {}", emotions.join(", ")));
    }
    page.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::{golden, render::escape_html};

    /// A small check that `html` is balanced: every `<` opens a tag, comment or doctype,
    /// every non-void element is closed in order, and `<style>`/`<script>` hold no tags.
    pub fn assert_well_formed(html: &str) {
        const VOID: [&str; 6] = ["meta", "img", "br", "hr", "input", "link"];
        let mut open: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find('<') {
            rest = &rest[at + 1..];
            let end = rest.find('>').unwrap_or_else(|| {
                panic!("unterminated tag near {:?}", &rest[..rest.len().min(40)])
            });
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let top = open.pop();
                assert_eq!(top.as_deref(), Some(name), "</{name}> closes {top:?}");
                continue;
            }
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(!name.is_empty(), "stray '<' before {tag:?}");
            if VOID.contains(&name.as_str()) {
                continue;
            }
            if name == "style" || name == "script" {
                let close = format!("</{name}>");
                let body_end = rest.find(&close).expect("raw text element closed");
                assert!(!rest[..body_end].contains('<'), "markup inside <{name}>");
                rest = &rest[body_end + close.len()..];
                continue;
            }
            open.push(name);
        }
        assert!(open.is_empty(), "left open: {open:?}");
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n"));
        assert!(html.ends_with("</body>\n</html>\n"));
    }

    #[test]
    fn serves_html_for_every_kind() {
        let formats = Plugin::supported();
        let pairs: Vec<(&str, &str)> = formats
            .iter()
            .map(|f| (f.kind.as_str(), f.format.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("scene", "html"),
                ("interactions", "html"),
                ("story", "html")
            ]
        );
        for f in &formats {
            assert_eq!(f.media_type, "text/html; charset=utf-8");
            assert_eq!(f.file_extension, "html");
            assert_eq!(f.schema_version, 1);
        }
    }

    #[test]
    fn an_unknown_kind_renders_nothing() {
        assert_eq!(render("comic", &ExportInput::default()), None);
    }

    #[test]
    fn users_are_told_by_speaker_type_then_by_speaker() {
        let mut line = Conversation {
            speaker: "用户".into(),
            ..Default::default()
        };
        assert!(is_user(&line));
        line.metadata
            .insert("speaker_type".into(), "character".into());
        assert!(!is_user(&line));
        line.metadata.insert("speaker_type".into(), "user".into());
        line.speaker = "Quill".into();
        assert!(is_user(&line));
    }

    /// A value that would break out of any context if it were pasted raw: a script, a
    /// quote for attributes, an ampersand for entities, an apostrophe and a `</textarea>`.
    fn payload(tag: &str) -> String {
        format!("{tag}<script>alert(\"x\")</script> & 'q' </textarea>")
    }

    fn hostile_input(kind: &str) -> ExportInput {
        let mut input = golden::input("scene");
        input.kind = kind.into();
        input.scene.scene.title = payload("TITLE");
        input.characters[0].name = payload("NAME");
        input.conversations[0].content = payload("CONTENT");
        if let Some(last) = input.context.conversations.last_mut() {
            last.content = payload("CONTEXT");
            // Not a character of the scene, so the line's own speaker is shown.
            last.speaker_id = "narrator".into();
            last.speaker = payload("SPEAKER");
        }
        input.conversations[0].emotions = Some(vec![payload("EMOTION")]);
        input
            .interaction_stats
            .emotion_distribution
            .insert(payload("EMOTION"), 9);
        input.interaction_stats.top_keywords = Some(vec![payload("KEYWORD")]);
        input.summary_markdown = format!(
            "## {}\n\n{}\n\n- **{}**: x\n\n{}\n",
            payload("MD1"),
            payload("MD2"),
            payload("MD3"),
            "[link](javascript:alert(1)) ![img](data:text/html;base64,AAAA)"
        );
        // Everything else a page shows, for good measure.
        input.scene.scene.id = payload("ID");
        input.scene.scene.description = payload("DESC");
        input.scene.scene.source = payload("SOURCE");
        input.scene.scene.era = payload("ERA");
        input.scene.scene.themes = Some(vec![payload("THEME")]);
        input.characters[0].description = payload("CDESC");
        input.characters[0].role = payload("ROLE");
        input.characters[0].knowledge = Some(vec![payload("KNOW")]);
        input.characters[0]
            .relationships
            .get_or_insert_default()
            .insert(payload("RELID"), payload("REL"));
        input.scene.items[0].name = payload("ITEM");
        input.scene.items[0].image_url = "javascript:alert(1)".into();
        input.scene.items[1].image_url = format!("img/{}", payload("URL"));
        input.scene.items[0].properties =
            Some(serde_json::json!({ payload("PKEY"): payload("PVALUE") }));
        input.settings.interaction_style = payload("STYLE");
        input
    }

    #[test]
    fn every_input_value_is_escaped() {
        for (kind, scripts) in [("scene", 0), ("interactions", 1)] {
            let input = hostile_input(kind);
            let html = render(kind, &input).expect("rendered");
            assert_well_formed(&html);
            // Only the fixed script of the interactions page, nothing from the input.
            assert_eq!(html.matches("<script").count(), scripts, "{kind}");
            for raw in ["<script>alert", "</textarea>", "alert(\"x\")", "'q'", "& '"] {
                assert!(!html.contains(raw), "{kind}: {raw:?} unescaped");
            }
            assert!(
                !html.to_ascii_lowercase().contains("=\"javascript:"),
                "{kind}"
            );
            assert!(!html.contains("=\"data:"), "{kind}");
            // The image whose path holds the payload is dropped (spaces are not allowed).
            assert_eq!(html.matches("<img").count(), 0, "{kind}");
            let mut shown = vec![
                "TITLE", "NAME", "CONTENT", "EMOTION", "MD1", "MD2", "MD3", "CDESC", "ROLE", "KNOW",
            ];
            if kind == "scene" {
                shown.extend([
                    "CONTEXT", "RELID", "REL", "ITEM", "PKEY", "PVALUE", "STYLE", "SPEAKER",
                ]);
            } else {
                shown.extend(["KEYWORD", "ID", "DESC", "SOURCE", "ERA", "THEME"]);
            }
            for tag in shown {
                let escaped = escape_html(&payload(tag));
                assert!(html.contains(&escaped), "{kind}: {tag} not shown escaped");
            }
        }
    }
}
