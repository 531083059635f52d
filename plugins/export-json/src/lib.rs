//! The `json` exporter: the scene export (spec story-export §8.7.2), the interactions
//! export (§8.8.2) and the story export (§8.9.2) as pretty-printed JSON documents.
//!
//! The host sends one export input per export (statistics and the kind's summary already
//! computed); this plugin only reshapes it. Each kind has its own module with typed
//! structs whose field order is the key order of the document (alphabetical, as the
//! reference's Go maps marshal), and nested values (characters, conversations, settings,
//! statistics) serialise exactly as the document types do.

use sceneintruder_plugin_sdk::exporter::document::ExportInput;
use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};
use serde::Serialize;

mod interactions;
mod scene;
mod story;

/// The format id this plugin serves.
const FORMAT: &str = "json";

/// The kinds it serves that format for.
const KINDS: &[&str] = &["scene", "interactions", "story"];

/// `export_info.version` of every document (the reference's constant).
const DOCUMENT_VERSION: &str = "1.0";

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        exporter::pairs(
            KINDS,
            FORMAT,
            "JSON",
            "application/json; charset=utf-8",
            "json",
        )
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        // `render_text` takes text or nothing, so an encoding error is kept aside and
        // reported as `failed` rather than as the `unsupported` that its `None` becomes.
        let mut encoding = Ok(());
        let written = exporter::render_text(&req, &Self::supported(), |kind, input| {
            render(kind, input)?.map_err(|e| encoding = Err(e)).ok()
        });
        encoding.map_err(|e| ExportError::Failed(format!("JSON encoding failed: {e}")))?;
        written
    }
}

/// The document of `kind` (`None` for a kind this plugin does not render).
fn render(kind: &str, input: &ExportInput) -> Option<serde_json::Result<String>> {
    match kind {
        "scene" => Some(scene::render(input)),
        "interactions" => Some(interactions::render(input)),
        "story" => Some(story::render(input)),
        _ => None,
    }
}

/// `value` pretty-printed with two-space indentation (serde_json's pretty printer, which
/// matches Go's `json.MarshalIndent(v, "", "  ")` layout), without a trailing newline.
fn pretty<T: Serialize>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(value)
}

exporter::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_json_for_every_kind() {
        let formats = Plugin::supported();
        let pairs: Vec<(&str, &str)> = formats
            .iter()
            .map(|f| (f.kind.as_str(), f.format.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("scene", "json"),
                ("interactions", "json"),
                ("story", "json")
            ]
        );
        for f in &formats {
            assert_eq!(f.media_type, "application/json; charset=utf-8");
            assert_eq!(f.file_extension, "json");
            assert_eq!(f.schema_version, 1);
        }
    }

    #[test]
    fn an_unknown_kind_renders_nothing() {
        assert!(render("comic", &ExportInput::default()).is_none());
    }

    #[test]
    fn an_empty_input_renders_valid_json_for_every_kind() {
        let input = ExportInput::default();
        for kind in KINDS {
            let text = render(kind, &input).expect("kind served").expect("encodes");
            let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert!(value.is_object(), "{kind}");
        }
    }
}
