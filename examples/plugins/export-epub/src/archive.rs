//! The OCF container: a zip whose first entry is `mimetype`, stored, so that a reader can
//! recognise an EPUB from its first bytes (`PK\3\4`, then `mimetypeapplication/epub+zip` at
//! offset 30). Every other file is deflated.

use std::io::{Cursor, Write};

use chrono::{Datelike, Timelike};
use sceneintruder_plugin_sdk::exporter::document::time;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

pub const MEDIA_TYPE: &str = "application/epub+zip";

/// The archive of `files` (path, content), after the `mimetype` entry, every entry stamped
/// with `stamp` so that one input always gives the same bytes.
pub fn pack(files: &[(String, String)], stamp: DateTime) -> Result<Vec<u8>, String> {
    let fail = |e: zip::result::ZipError| format!("could not write the EPUB archive: {e}");
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    // No extra field, no data descriptor: the writer seeks back to fill in sizes and CRC.
    let stored = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(stamp);
    zip.start_file("mimetype", stored).map_err(fail)?;
    zip.write_all(MEDIA_TYPE.as_bytes())
        .map_err(|e| fail(e.into()))?;
    let deflated = stored.compression_method(CompressionMethod::Deflated);
    for (path, content) in files {
        zip.start_file(path.as_str(), deflated).map_err(fail)?;
        zip.write_all(content.as_bytes())
            .map_err(|e| fail(e.into()))?;
    }
    Ok(zip.finish().map_err(fail)?.into_inner())
}

/// The zip timestamp of an export: `generated_at` as the clock showed it (its own offset,
/// as every export template shows times), or 1980-01-01 00:00 (the zip epoch) when it is
/// not a time or outside what a zip can hold (1980-2107).
pub fn stamp(generated_at: &str) -> DateTime {
    time::parse(generated_at)
        .map(|t| t.naive_local())
        .and_then(|t| {
            DateTime::from_date_and_time(
                u16::try_from(t.year()).ok()?,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_in_the_offset_of_generated_at() {
        let stamp = stamp("2025-06-20T11:00:01.123+08:00");
        assert_eq!(
            (
                stamp.year(),
                stamp.month(),
                stamp.day(),
                stamp.hour(),
                stamp.minute()
            ),
            (2025, 6, 20, 11, 0)
        );
        for outside in ["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "never"] {
            assert_eq!(super::stamp(outside), DateTime::default(), "{outside}");
        }
        assert_eq!(DateTime::default().year(), 1980);
    }

    #[test]
    fn mimetype_comes_first_stored_without_extra_field() {
        let files = [("OEBPS/a.xhtml".to_string(), "<p/>".repeat(100))];
        let bytes = pack(&files, DateTime::default()).expect("packs");
        assert_eq!(&bytes[0..4], b"PK\x03\x04");
        assert_eq!(
            u16::from_le_bytes([bytes[6], bytes[7]]),
            0,
            "flags: no data descriptor"
        );
        assert_eq!(
            u16::from_le_bytes([bytes[8], bytes[9]]),
            0,
            "method: stored"
        );
        assert_eq!(u16::from_le_bytes([bytes[26], bytes[27]]), 8, "name length");
        assert_eq!(
            u16::from_le_bytes([bytes[28], bytes[29]]),
            0,
            "extra field length"
        );
        assert_eq!(&bytes[30..58], b"mimetypeapplication/epub+zip");
        assert_eq!(
            pack(&files, DateTime::default()),
            Ok(bytes),
            "deterministic"
        );
    }
}
