//! The plugin SDK (`plugins/sdk`) is a self-contained, publishable crate: it binds its own
//! copy of the WIT, which must stay byte-identical to the contract the host implements, and
//! the WIT version it states (in code and in its docs) is that contract's. No server needed.

use std::path::{Path, PathBuf};

/// The repository root (this crate is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The version of `package sceneintruder:plugin@<version>;` in a WIT file.
fn package_version(wit: &str) -> String {
    wit.lines()
        .find_map(|line| line.trim().strip_prefix("package sceneintruder:plugin@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("a `package sceneintruder:plugin@<version>;` line")
        .to_string()
}

/// The SDK's Rust sources.
fn sdk_sources() -> Vec<(PathBuf, String)> {
    let dir = root().join("plugins/sdk/src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source");
            (p, text)
        })
        .collect()
}

#[test]
fn the_sdk_wit_is_a_byte_identical_copy_of_the_contract() {
    let contract = std::fs::read(root().join("wit/plugin.wit")).expect("wit/plugin.wit");
    let copy = std::fs::read(root().join("plugins/sdk/wit/plugin.wit"))
        .expect("plugins/sdk/wit/plugin.wit");
    assert!(
        contract == copy,
        "plugins/sdk/wit/plugin.wit differs from wit/plugin.wit; after changing the contract, \
         copy it: cp wit/plugin.wit plugins/sdk/wit/plugin.wit"
    );
}

#[test]
fn every_sdk_binding_reads_the_crate_own_wit() {
    let mut generate_paths = 0;
    for (path, text) in sdk_sources() {
        for line in text.lines() {
            let line = line.trim();
            if let Some(value) = line.strip_prefix("path: ") {
                generate_paths += 1;
                assert_eq!(
                    value,
                    "\"wit\",",
                    "{}: a wit_bindgen path outside the crate cannot be packaged: {line}",
                    path.display()
                );
            }
        }
    }
    assert!(
        generate_paths >= 5,
        "found {generate_paths} generate! paths"
    );
}

#[test]
fn the_sdk_states_the_wit_version_of_the_contract() {
    let version = package_version(&read("wit/plugin.wit"));
    assert_eq!(
        version,
        sceneintruder_runtime::HOST_WIT_VERSION.to_string(),
        "the WIT package and the host's HOST_WIT_VERSION disagree"
    );
    let lib = read("plugins/sdk/src/lib.rs");
    let declared = format!("pub const WIT_VERSION: &str = \"{version}\";");
    assert!(
        lib.contains(&declared),
        "plugins/sdk/src/lib.rs must declare `{declared}`"
    );
    // The `wit = "..."` lines shown to plugin authors.
    let mut shown = 0;
    for doc in [
        "plugins/sdk/src/lib.rs",
        "plugins/sdk/README.md",
        "docs/plugins/llm.md",
    ] {
        for line in read(doc).lines() {
            let line = line.trim_start_matches("//!").trim();
            if let Some(rest) = line.strip_prefix("wit = \"") {
                shown += 1;
                let value = rest.split('"').next().unwrap_or_default();
                assert_eq!(value, version, "{doc}: {line}");
            }
        }
    }
    assert!(
        shown >= 2,
        "found {shown} `wit = ...` lines in the SDK docs"
    );
}

#[test]
fn the_sdk_and_its_dependency_are_publishable() {
    for manifest in [
        "plugins/sdk/Cargo.toml",
        "plugins/export-document/Cargo.toml",
    ] {
        let doc: toml::Table = toml::from_str(&read(manifest)).expect("TOML");
        let package = doc["package"].as_table().expect("[package]");
        assert!(
            !package.contains_key("publish"),
            "{manifest}: the SDK and what it depends on must be publishable"
        );
        assert!(
            package.contains_key("description"),
            "{manifest}: description"
        );
        assert!(package.contains_key("license"), "{manifest}: license");
    }
    let workspace: toml::Table = toml::from_str(&read("Cargo.toml")).expect("TOML");
    let dependency = &workspace["workspace"]["dependencies"]["sceneintruder-export-document"];
    assert!(
        dependency.get("version").is_some(),
        "the workspace dependency on sceneintruder-export-document needs a `version` so the \
         SDK can be packaged"
    );
}
