//! The `csv` exporter: the interaction conversations of the interactions export as CSV,
//! one row per line (an extra format; the reference has none, spec story-export §8.1).
//!
//! The host sends the export input with the interaction conversations already selected;
//! this plugin only lays them out. [`interactions`] chooses the columns, [`record`] encodes
//! fields (RFC 4180 quoting plus a guard against spreadsheet formula injection).

use sceneintruder_plugin_sdk::exporter::document::SCHEMA_VERSION;
use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};

mod interactions;
mod record;

/// The format id this plugin serves.
const FORMAT: &str = "csv";

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        vec![FormatInfo {
            kind: "interactions".into(),
            format: FORMAT.into(),
            display_name: "CSV".into(),
            media_type: "text/csv; charset=utf-8".into(),
            file_extension: "csv".into(),
            schema_version: SCHEMA_VERSION,
        }]
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        // `input` refuses every pair but (interactions, csv), so there is nothing to dispatch.
        let input = exporter::input(&req, &Self::supported())?;
        exporter::write_all(interactions::render(&input).as_bytes())
    }
}

exporter::export!(Plugin);

/// Golden-file comparison for the module tests.
#[cfg(test)]
mod golden {
    use std::path::PathBuf;

    /// Compare `actual` with `tests/golden/export/<name>` byte for byte, or write it there
    /// when `UPDATE_GOLDEN=1`.
    pub fn check(name: &str, actual: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/golden/export")
            .join(name);
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::write(&path, actual).expect("golden file written");
            return;
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        assert_eq!(
            actual, expected,
            "{name} differs from the golden file; run with UPDATE_GOLDEN=1 and review the diff"
        );
    }
}

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
