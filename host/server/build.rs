//! Embeds which plugin ids are bundled (from `plugins/bundled.toml`) and, when `cargo xtask`
//! built the bundled plugins first, their components' SHA-256 digests (`cargo xtask` writes
//! `<target-dir>/bundled-digests.txt`, one `<id> <sha256>` line each). A plugin that claims a
//! bundled id with another component gets no keys.
//!
//! The file lives in the target directory rather than in an environment variable so that every
//! cargo invocation, with or without xtask, builds the same server.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir.join("../..");
    let list = root.join("plugins/bundled.toml");
    println!("cargo:rerun-if-changed={}", list.display());

    let mut ids = Vec::new();
    let text = std::fs::read_to_string(&list).expect("plugins/bundled.toml is readable");
    let table: toml::Table = toml::from_str(&text).expect("plugins/bundled.toml is TOML");
    let crates = table
        .get("crates")
        .and_then(|c| c.as_array())
        .expect("plugins/bundled.toml has a crates list");
    for dir in crates.iter().filter_map(|c| c.as_str()) {
        let manifest = root.join(dir).join("plugin.toml");
        println!("cargo:rerun-if-changed={}", manifest.display());
        ids.push(plugin_id(&manifest));
    }

    let mut digests = Vec::new();
    let path = digests_file();
    if !path.exists() {
        // An empty list, so the fingerprint is stable until xtask writes the real one.
        let _ = std::fs::write(&path, "");
    }
    println!("cargo:rerun-if-changed={}", path.display());
    if let Ok(text) = std::fs::read_to_string(&path) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (id, digest) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad line in {}: {line:?}", path.display()));
            digests.push((id.trim().to_string(), digest.trim().to_string()));
        }
    }

    let mut out =
        String::from("/// Ids of the bundled plugins.\npub const BUNDLED_IDS: &[&str] = &[\n");
    for id in &ids {
        let _ = writeln!(out, "    {id:?},");
    }
    out.push_str("];\n/// SHA-256 of each bundled component as built with this server (empty when the\n/// server was built without `cargo xtask`).\npub const BUNDLED_DIGESTS: &[(&str, &str)] = &[\n");
    for (id, digest) in &digests {
        let _ = writeln!(out, "    ({id:?}, {digest:?}),");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("bundled.rs");
    std::fs::write(dest, out).expect("write bundled.rs");
}

/// `<target-dir>/bundled-digests.txt`; OUT_DIR is `<target-dir>/<profile>/build/<pkg>/out`.
fn digests_file() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
            out.ancestors().nth(4).map(Path::to_path_buf).unwrap_or(out)
        }
    };
    target.join("bundled-digests.txt")
}

fn plugin_id(manifest: &Path) -> String {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", manifest.display()));
    table
        .get("id")
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{} has no id", manifest.display()))
        .to_string()
}
