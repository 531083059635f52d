//! The `csv` exporter: the interaction conversations of the interactions export as CSV,
//! one row per line (an extra format; the reference has none, spec story-export §8.1).
//!
//! The host sends the export input with the interaction conversations already selected;
//! this plugin only lays them out. [`interactions`] chooses the columns, [`record`] encodes
//! fields (RFC 4180 quoting plus a guard against spreadsheet formula injection).

use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};

mod interactions;
mod record;

/// The format id this plugin serves.
const FORMAT: &str = "csv";

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        exporter::pairs(
            &["interactions"],
            FORMAT,
            "CSV",
            "text/csv; charset=utf-8",
            "csv",
        )
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        // Every pair but (interactions, csv) is refused before rendering, so the kind needs
        // no dispatch.
        exporter::render_text(&req, &Self::supported(), |_kind, input| {
            Some(interactions::render(input))
        })
    }
}

exporter::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_csv_for_interactions_only() {
        let formats = Plugin::supported();
        assert_eq!(formats.len(), 1);
        let f = &formats[0];
        assert_eq!(
            (f.kind.as_str(), f.format.as_str()),
            ("interactions", "csv")
        );
        assert_eq!(f.media_type, "text/csv; charset=utf-8");
        assert_eq!(f.file_extension, "csv");
        assert_eq!(f.schema_version, 1);
    }
}
