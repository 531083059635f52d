//! On-disk cache of compiled components, so a restart does not recompile.
//!
//! Entries are keyed by the SHA-256 of the component bytes and the engine's compatibility
//! hash (wasmtime version + every setting that affects code generation). A stale or
//! unreadable entry is recompiled and replaced, never trusted.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a component came from the cache or was compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_tag: String,
}

/// Hashes the engine compatibility hash into a stable hex tag.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0 // unused: we read the full digest
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> CompileCache {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_tag = hex::encode(&hasher.0.finalize()[..8]);
        CompileCache { dir, engine_tag }
    }

    fn entry_path(&self, dir: &Path, bytes: &[u8]) -> PathBuf {
        let digest = Sha256::digest(bytes);
        dir.join(format!(
            "{}-{}.cwasm",
            hex::encode(&digest[..16]),
            self.engine_tag
        ))
    }

    /// Load a component from the cache or compile it (and store it).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, CacheOutcome), String> {
        let Some(dir) = &self.dir else {
            let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
            return Ok((component, CacheOutcome::Disabled));
        };
        let path = self.entry_path(dir, bytes);
        if path.is_file() {
            // SAFETY: files in the cache directory are written only by `store` below from
            // `Component::serialize` of this engine configuration (the file name carries the
            // engine's compatibility hash); wasmtime also validates the header and rejects a
            // mismatched file with an error. The cache directory must not be writable by
            // anyone the server does not trust, as documented in the README.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable compile-cache entry: {e:#}")
                }
            }
        }
        let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
        if let Err(e) = store(&component, dir, &path) {
            tracing::warn!(dir = %dir.display(), "cannot write compile cache: {e}");
        }
        Ok((component, CacheOutcome::Miss))
    }
}

fn store(component: &Component, dir: &Path, path: &Path) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}
