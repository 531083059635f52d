//! Golden-file tests for exporter authors: render a fixed export input and compare the
//! result byte for byte with a stored file, or store it when `UPDATE_GOLDEN=1`.
//!
//! A test helper, so it panics on any mismatch or I/O error; it is compiled only for native
//! targets (tests run natively, never inside a plugin). The repository keeps its fixed inputs
//! (`<kind>.input.json`) and the expected outputs (`<kind>.<format>`) in
//! `tests/golden/export/`:
//!
//! ```no_run
//! use sceneintruder_export_document::golden;
//! # fn render(_: &sceneintruder_export_document::ExportInput) -> String { String::new() }
//! let input = golden::input("scene");
//! golden::check("scene.markdown", &render(&input));
//! ```
//!
//! An exporter built outside this repository keeps its own files and uses
//! [`check_file`] and [`ExportInput::from_json`] with its own paths. After
//! `UPDATE_GOLDEN=1 cargo test`, review the change with `git diff`.

use std::path::{Path, PathBuf};

use crate::ExportInput;

/// The repository's golden files, `tests/golden/export/`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/export")
}

/// The repository's fixed export input of `kind` (`tests/golden/export/<kind>.input.json`).
#[track_caller]
pub fn input(kind: &str) -> ExportInput {
    let path = dir().join(format!("{kind}.input.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ExportInput::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compare `actual` with the repository's golden file `name` (in [`dir`]), or write it
/// there when `UPDATE_GOLDEN=1`.
#[track_caller]
pub fn check(name: &str, actual: &str) {
    check_file(&dir().join(name), actual);
}

/// Compare `actual` with the file at `path` byte for byte, or write it there when
/// `UPDATE_GOLDEN=1`.
#[track_caller]
pub fn check_file(path: &Path, actual: &str) {
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(path, actual)
            .unwrap_or_else(|e| panic!("{}: {e} (golden file not written)", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs from the golden file; run with UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}
