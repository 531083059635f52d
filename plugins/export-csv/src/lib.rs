//! The `csv` exporter (an extra format; the reference has none, spec story-export §8.1):
//! the interaction conversations of the interactions export, one row per line, and the
//! nodes of the story export, one row per node.
//!
//! The host sends the export input with the interaction conversations and the story already
//! selected; this plugin only lays them out. [`interactions`] and [`story`] choose the
//! columns, [`record`] encodes fields (RFC 4180 quoting plus a guard against spreadsheet
//! formula injection).

use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};

mod interactions;
mod record;
mod story;

/// The format id this plugin serves.
const FORMAT: &str = "csv";

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        exporter::pairs(
            &["interactions", "story"],
            FORMAT,
            "CSV",
            "text/csv; charset=utf-8",
            "csv",
        )
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        exporter::render_text(&req, &Self::supported(), |kind, input| match kind {
            "interactions" => Some(interactions::render(input)),
            "story" => Some(story::render(input)),
            _ => None,
        })
    }
}

exporter::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_csv_for_interactions_and_story() {
        let formats = Plugin::supported();
        let pairs: Vec<(&str, &str)> = formats
            .iter()
            .map(|f| (f.kind.as_str(), f.format.as_str()))
            .collect();
        assert_eq!(pairs, [("interactions", "csv"), ("story", "csv")]);
        for f in &formats {
            assert_eq!(f.media_type, "text/csv; charset=utf-8");
            assert_eq!(f.file_extension, "csv");
            assert_eq!(f.schema_version, 1);
        }
    }
}
