//! The `markdown` exporter: the scene export (spec story-export §8.7.3), the interactions
//! export (§8.8.3) and the story export (§8.9.3) as Markdown reports.
//!
//! The host sends one export input per export (with the statistics and the kind's summary
//! already computed); this plugin only lays it out. Each kind has its own module, and
//! [`markdown`] holds the pieces both share.

use sceneintruder_plugin_sdk::exporter::document::ExportInput;
use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};

mod interactions;
mod markdown;
mod scene;
mod story;

/// The format id this plugin serves.
const FORMAT: &str = "markdown";

/// The kinds it serves that format for.
const KINDS: &[&str] = &["scene", "interactions", "story"];

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        exporter::pairs(
            KINDS,
            FORMAT,
            "Markdown",
            "text/markdown; charset=utf-8",
            "markdown",
        )
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        exporter::render_text(&req, &Self::supported(), render)
    }
}

/// The document of `kind` (`None` for a kind this plugin does not render).
fn render(kind: &str, input: &ExportInput) -> Option<String> {
    match kind {
        "scene" => Some(scene::render(input)),
        "interactions" => Some(interactions::render(input)),
        "story" => Some(story::render(input)),
        _ => None,
    }
}

exporter::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_markdown_for_every_kind() {
        let formats = Plugin::supported();
        let pairs: Vec<(&str, &str)> = formats
            .iter()
            .map(|f| (f.kind.as_str(), f.format.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("scene", "markdown"),
                ("interactions", "markdown"),
                ("story", "markdown")
            ]
        );
        for f in &formats {
            assert_eq!(f.media_type, "text/markdown; charset=utf-8");
            assert_eq!(f.file_extension, "markdown");
            assert_eq!(f.schema_version, 1);
        }
    }

    #[test]
    fn an_unknown_kind_renders_nothing() {
        assert_eq!(render("comic", &ExportInput::default()), None);
    }

    #[test]
    fn an_empty_input_renders_without_panicking() {
        let input = ExportInput::default();
        for kind in KINDS {
            let text = render(kind, &input).expect("rendered");
            assert!(text.ends_with('\n'), "{kind}");
            assert!(text.contains("## 📄 导出信息\n"), "{kind}");
        }
    }
}
