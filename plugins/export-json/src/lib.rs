//! The `json` exporter: the scene export (spec story-export §8.7.2) and the interactions
//! export (§8.8.2) as pretty-printed JSON documents.
//!
//! The host sends one export input per export (statistics and the kind's summary already
//! computed); this plugin only reshapes it. Each kind has its own module with typed
//! structs whose field order is the key order of the document (alphabetical, as the
//! reference's Go maps marshal), and nested values (characters, conversations, settings,
//! statistics) serialise exactly as the document types do.

use sceneintruder_plugin_sdk::exporter::document::{ExportInput, SCHEMA_VERSION};
use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};
use serde::Serialize;

mod interactions;
mod scene;

/// The format id this plugin serves.
const FORMAT: &str = "json";

/// `export_info.version` of every document (the reference's constant).
const DOCUMENT_VERSION: &str = "1.0";

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        ["scene", "interactions"]
            .into_iter()
            .map(|kind| FormatInfo {
                kind: kind.into(),
                format: FORMAT.into(),
                display_name: "JSON".into(),
                media_type: "application/json; charset=utf-8".into(),
                file_extension: "json".into(),
                schema_version: SCHEMA_VERSION,
            })
            .collect()
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        let input = exporter::input(&req, &Self::supported())?;
        let text = match render(&req.kind, &input) {
            Some(Ok(text)) => text,
            Some(Err(e)) => return Err(ExportError::Failed(format!("JSON encoding failed: {e}"))),
            None => {
                return Err(ExportError::Unsupported(format!(
                    "{}.{} is not rendered here",
                    req.kind, req.format
                )));
            }
        };
        exporter::write_all(text.as_bytes())
    }
}

/// The document of `kind` (`None` for a kind this plugin does not render).
fn render(kind: &str, input: &ExportInput) -> Option<serde_json::Result<String>> {
    match kind {
        "scene" => Some(scene::render(input)),
        "interactions" => Some(interactions::render(input)),
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
    fn serves_json_for_both_kinds() {
        let formats = Plugin::supported();
        let pairs: Vec<(&str, &str)> = formats
            .iter()
            .map(|f| (f.kind.as_str(), f.format.as_str()))
            .collect();
        assert_eq!(pairs, [("scene", "json"), ("interactions", "json")]);
        for f in &formats {
            assert_eq!(f.media_type, "application/json; charset=utf-8");
            assert_eq!(f.file_extension, "json");
            assert_eq!(f.schema_version, 1);
        }
    }

    #[test]
    fn an_unknown_kind_renders_nothing() {
        assert!(render("story", &ExportInput::default()).is_none());
    }

    #[test]
    fn an_empty_input_renders_valid_json_for_both_kinds() {
        let input = ExportInput::default();
        for kind in ["scene", "interactions"] {
            let text = render(kind, &input).expect("kind served").expect("encodes");
            let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert!(value.is_object(), "{kind}");
        }
    }
}
