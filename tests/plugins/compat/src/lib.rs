//! A minimal exporter built against the frozen WIT 0.1.0 in `./wit` (not the SDK, which
//! follows the current WIT), so the host's semver linking is tested with a real older plugin.

wit_bindgen::generate!({ path: "wit", world: "exporter" });

use exports::sceneintruder::plugin::document_export::{
    ExportError, ExportFile, ExporterInfo, Guest,
};

struct Compat;

impl Guest for Compat {
    fn info() -> ExporterInfo {
        ExporterInfo {
            format: "compat".into(),
            display_name: "Compat (WIT 0.1.0)".into(),
            content_type: "text/plain; charset=utf-8".into(),
            file_extension: "txt".into(),
            document_kinds: vec!["*".into()],
            schema_version: 1,
        }
    }

    fn export(kind: String, document: String, _options: String) -> Result<ExportFile, ExportError> {
        // Importing `log@0.1.0` and `config@0.1.0` exercises the host's semver linking of
        // imports, as `document-export@0.1.0` does for exports.
        sceneintruder::plugin::log::write(sceneintruder::plugin::log::Level::Info, "compat export");
        let _ = sceneintruder::plugin::config::get("unused");
        Ok(ExportFile {
            bytes: format!("{kind}: {document}").into_bytes(),
            content_type: "text/plain; charset=utf-8".into(),
            file_name: "compat.txt".into(),
        })
    }
}

export!(Compat);
