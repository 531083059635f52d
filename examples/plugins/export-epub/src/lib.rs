//! An example third-party exporter: a scene as an EPUB 3 book.
//!
//! It is written against the published plugin SDK only (`sceneintruder-plugin-sdk` with the
//! `exporter` feature) and serves one (kind, format) pair, `scene` / `epub`. The book has a
//! title page, one chapter per location of the scene (its description and the conversation
//! lines that mention it) or, for a scene without locations, one chapter with the whole
//! conversation log, and a chapter with the characters. The language (`zh` or `en`) is
//! guessed from the scene's title and description.
//!
//! Layout of the archive (EPUB 3 / OCF):
//!
//! ```text
//! mimetype                  "application/epub+zip", stored, first
//! META-INF/container.xml    -> OEBPS/content.opf
//! OEBPS/content.opf         package document: metadata, manifest, spine
//! OEBPS/nav.xhtml           table of contents
//! OEBPS/style.css
//! OEBPS/title.xhtml, OEBPS/chapter-<n>.xhtml, OEBPS/characters.xhtml
//! ```
//!
//! Rendering is a pure function of the export input ([`book::epub`]), so it is tested
//! natively; the only host call is writing the bytes out. The same input always gives the
//! same bytes (zip timestamps come from `generated_at`).

use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};

mod archive;
mod book;
mod package;
mod pages;
mod xml;

struct Plugin;

impl Guest for Plugin {
    fn supported() -> Vec<FormatInfo> {
        vec![FormatInfo {
            kind: "scene".into(),
            format: "epub".into(),
            display_name: "EPUB".into(),
            media_type: archive::MEDIA_TYPE.into(),
            file_extension: "epub".into(),
            schema_version: 1,
        }]
    }

    fn render(req: ExportRequest) -> Result<(), ExportError> {
        // Refuses a pair this plugin does not serve and a schema newer than it knows.
        let input = exporter::input(&req, &Self::supported())?;
        let bytes = book::epub(&input).map_err(ExportError::Failed)?;
        // `Output` hands the bytes to the host in 64 KiB chunks; a write past the
        // operator's size limit fails with `output-refused`.
        let mut out = exporter::Output::new();
        out.push(&bytes)?;
        out.finish()
    }
}

exporter::export!(Plugin);

#[cfg(test)]
mod tests;
