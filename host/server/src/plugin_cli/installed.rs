//! The server's plugins folder: `plugins install`, `plugins list`, `plugins remove`.
//!
//! The folder is the one `serve` uses (`--plugins-dir`, else `plugins_dir` in the config
//! file, else `<data-dir>/plugins`). Changes never leave a half-written plugin folder in
//! it: a plugin is staged in a hidden folder (the server skips hidden folders) and renamed
//! into place; a removed one is renamed away before it is deleted.

use std::path::{Path, PathBuf};

use anyhow::bail;
use sceneintruder_runtime::{
    MANIFEST_FILE, OperatorSettings, PluginRuntime, PluginState, RuntimeConfig, validate_id,
};

use super::PluginsLocation;
use super::inspect;
use crate::config::{Config, Overrides};

/// The configuration `serve` would run with.
fn resolve(location: &PluginsLocation) -> anyhow::Result<Config> {
    Ok(Config::resolve(
        Overrides {
            config: location.config.clone(),
            data_dir: location.data_dir.clone(),
            plugins_dir: location.plugins_dir.clone(),
            ..Default::default()
        },
        &crate::app::environment(),
    )?)
}

/// The plugin folders under `root` (hidden ones are not plugins), in name order.
fn plugin_folders(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("cannot read the plugins folder {}: {e}", root.display()),
    };
    let mut folders: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    folders.sort();
    Ok(folders)
}

/// The `id` a folder's plugin.toml claims, read leniently (a manifest that no longer
/// validates still names its plugin).
fn claimed_id(folder: &Path) -> Option<String> {
    let text = std::fs::read_to_string(folder.join(MANIFEST_FILE)).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table.get("id")?.as_str().map(String::from)
}

fn folder_label(folder: &Path) -> String {
    folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| folder.display().to_string())
}

/// `plugins install`.
pub async fn install(path: &Path, location: &PluginsLocation) -> anyhow::Result<()> {
    let what = format!("{} cannot be installed", path.display());
    let located = inspect::locate(path).map_err(|p| inspect::fail(&what, p))?;
    let isolated = inspect::load_isolated(&located, OperatorSettings::default()).await?;
    let (problems, warnings) = inspect::findings(&isolated, false);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !problems.is_empty() {
        return Err(inspect::fail(&what, problems));
    }
    let config = resolve(location)?;
    let root = &config.plugins_dir;
    let id = located.manifest.id.clone();
    std::fs::create_dir_all(root)
        .map_err(|e| anyhow::anyhow!("cannot create the plugins folder {}: {e}", root.display()))?;
    let dest = root.join(&id);
    for folder in plugin_folders(root)? {
        if folder != dest && claimed_id(&folder).as_deref() == Some(id.as_str()) {
            bail!(
                "{} already holds plugin {id:?} (two folders with one id load neither); \
                 remove it first with `sceneintruder plugins remove {id}`",
                folder.display()
            );
        }
    }
    if dest.exists() {
        let empty = std::fs::read_dir(&dest).is_ok_and(|mut e| e.next().is_none());
        match claimed_id(&dest) {
            Some(found) if found == id => {}
            _ if empty => {}
            Some(other) => bail!(
                "{} holds another plugin ({other:?}); remove it or install elsewhere",
                dest.display()
            ),
            None => bail!(
                "{} exists but has no readable {MANIFEST_FILE}; move it away first",
                dest.display()
            ),
        }
    }
    replace_folder(root, &id, &dest, |staging| {
        inspect::copy_plugin(&located, staging)
    })?;

    let digest = isolated.report.sha256.clone().unwrap_or_default();
    let shown = std::fs::canonicalize(&dest).unwrap_or_else(|_| dest.clone());
    println!(
        "installed plugin {id} ({} {}) into {}",
        located.manifest.kind,
        located.manifest.version,
        shown.display()
    );
    println!("sha256 {digest}");
    println!("to accept only this component under id {id:?}, pin it in the server's config file:");
    println!("  [plugins.{id}]");
    println!("  sha256 = \"{digest}\"");
    if let Some(pin) = config
        .plugins
        .get(&id)
        .and_then(|s| s.sha256.as_deref())
        .filter(|p| !p.trim().is_empty() && !p.trim().eq_ignore_ascii_case(&digest))
    {
        eprintln!(
            "warning: the config file pins another component for {id:?} (sha256 {pin}); the \
             server will not load this one until the pin is updated"
        );
    }
    println!("restart the server to load it");
    Ok(())
}

/// Fill a hidden staging folder with `fill`, then put it in the place of `dest` (the old
/// folder, if any, is renamed away first and deleted after; it comes back if the swap
/// fails).
fn replace_folder(
    root: &Path,
    id: &str,
    dest: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let pid = std::process::id();
    let staging = root.join(format!(".{id}.installing-{pid}"));
    let old = root.join(format!(".{id}.replaced-{pid}"));
    let _ = std::fs::remove_dir_all(&staging);
    let staged = std::fs::create_dir(&staging)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", staging.display()))
        .and_then(|()| fill(&staging));
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let had_old = dest.exists();
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
        if let Err(e) = std::fs::rename(dest, &old) {
            let _ = std::fs::remove_dir_all(&staging);
            bail!("cannot move the installed {} aside: {e}", dest.display());
        }
    }
    if let Err(e) = std::fs::rename(&staging, dest) {
        if had_old {
            let _ = std::fs::rename(&old, dest);
        }
        let _ = std::fs::remove_dir_all(&staging);
        bail!("cannot move the new plugin into {}: {e}", dest.display());
    }
    if had_old && let Err(e) = std::fs::remove_dir_all(&old) {
        eprintln!(
            "warning: cannot delete the replaced copy {}: {e}",
            old.display()
        );
    }
    Ok(())
}

/// `plugins list`: every plugin folder, loaded as `serve` would load it (with the config
/// file's settings, grants, pins and limits).
pub async fn list(location: &PluginsLocation) -> anyhow::Result<()> {
    let config = resolve(location)?;
    let root = config.plugins_dir.clone();
    if plugin_folders(&root)?.is_empty() {
        println!("no plugins in {}", root.display());
        return Ok(());
    }
    let runtime = PluginRuntime::load(RuntimeConfig {
        plugins_dir: root.clone(),
        cache_dir: config.plugin_cache_dir.clone(),
        limits: config.limits.clone(),
        plugins: config.plugins.clone(),
        bundled: super::bundled_plugins(),
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e}"))?;
    let rows: Vec<[String; 6]> = runtime
        .reports()
        .iter()
        .map(|r| {
            let state = match &r.state {
                PluginState::Loaded => match r.trust {
                    Some(trust) => format!("loaded ({trust})"),
                    None => "loaded".to_string(),
                },
                PluginState::Failed { reason } => format!("failed: {reason}"),
            };
            [
                r.id.clone(),
                r.kind.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
                r.version.clone().unwrap_or_else(|| "-".into()),
                r.folder.clone(),
                r.sha256.clone().unwrap_or_else(|| "-".into()),
                state,
            ]
        })
        .collect();
    println!("plugins in {}", root.display());
    print_table(
        &["ID", "KIND", "VERSION", "FOLDER", "SHA256", "STATE"],
        &rows,
    );
    Ok(())
}

fn print_table(header: &[&str; 6], rows: &[[String; 6]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", text.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `plugins remove`: removes every folder whose plugin.toml claims `id`.
pub fn remove(id: &str, location: &PluginsLocation) -> anyhow::Result<()> {
    validate_id(id).map_err(|e| anyhow::anyhow!("invalid plugin id {id:?}: {e}"))?;
    let config = resolve(location)?;
    let root = &config.plugins_dir;
    let matches: Vec<PathBuf> = plugin_folders(root)?
        .into_iter()
        .filter(|f| claimed_id(f).as_deref() == Some(id))
        .collect();
    if matches.is_empty() {
        bail!("no plugin with id {id:?} in {}", root.display());
    }
    let pid = std::process::id();
    for folder in &matches {
        let label = folder_label(folder);
        let trash = root.join(format!(".{label}.removing-{pid}"));
        std::fs::rename(folder, &trash)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", folder.display()))?;
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            eprintln!(
                "warning: {} is out of the plugins list but could not be deleted: {e}",
                trash.display()
            );
        }
        println!("removed plugin {id} ({})", folder.display());
    }
    println!("restart the server to unload it");
    Ok(())
}
