//! Live plugins: reload the plugins folder when it changes (watched, debounced) or when an
//! admin asks, and bring what depends on the loaded set up to date.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sceneintruder_runtime::ReloadSummary;
use serde_json::json;

use crate::app::AppState;

/// Reload the plugins folder. After a change: the export catalog is rebuilt, saved settings
/// are handed to new plugins, and every WebSocket client gets `plugins:changed`.
pub async fn reload(state: &AppState) -> ReloadSummary {
    let summary = state.runtime.reload().await;
    if summary.is_empty() {
        return summary;
    }
    let catalog = crate::domain::export::Catalog::build(&state.runtime, &state.config.exports);
    for warning in &catalog.warnings {
        tracing::warn!("{warning}");
    }
    state.set_exports(catalog);
    if let Err(e) = state.settings.reapply(&state.db, &state.runtime).await {
        tracing::warn!(
            "plugins reloaded, but the saved settings could not be re-read: {}",
            e.details()
        );
    }
    state.hub.broadcast_to_everyone(json!({
        "type": "plugins:changed",
        "added": summary.added,
        "changed": summary.changed,
        "removed": summary.removed,
        "failed": summary.failed,
        "timestamp": chrono::Utc::now().to_rfc3339(),
    }));
    summary
}

/// Watch the plugins folder and reload after each burst of changes; runs until shutdown.
/// A folder that cannot be watched is logged: plugins then change only through
/// `POST /api/plugins/reload` or a restart.
pub fn watch(state: Arc<AppState>, debounce: Duration) {
    let dir = state.runtime.plugins_dir().to_path_buf();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let events = {
        let dir = dir.clone();
        move |result: notify_debouncer_mini::DebounceEventResult| match result {
            Ok(events) => {
                if events.iter().any(|e| concerns_plugins(&dir, &e.path)) {
                    // A reload already queued covers this burst too.
                    let _ = tx.try_send(());
                }
            }
            Err(e) => tracing::warn!("watching the plugins folder: {e}"),
        }
    };
    let mut debouncer = match notify_debouncer_mini::new_debouncer(debounce, events) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot watch the plugins folder: {e}");
            return;
        }
    };
    if let Err(e) = debouncer.watcher().watch(
        &dir,
        notify_debouncer_mini::notify::RecursiveMode::Recursive,
    ) {
        tracing::warn!(dir = %dir.display(), "cannot watch the plugins folder: {e}");
        return;
    }
    tracing::info!(dir = %dir.display(), debounce_ms = debounce.as_millis() as u64, "watching the plugins folder");
    tokio::spawn(async move {
        // The debouncer stops watching when dropped: it lives as long as this task.
        let _debouncer = debouncer;
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                next = rx.recv() => {
                    if next.is_none() {
                        return;
                    }
                    reload(&state).await;
                }
            }
        }
    });
}

/// Changes under hidden folders (editor swap files, caches) are not plugin changes.
fn concerns_plugins(root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    !relative.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|name| name.starts_with('.') || name.ends_with('~'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_files_and_folders_are_not_plugin_changes() {
        let root = Path::new("/data/plugins");
        assert!(concerns_plugins(
            root,
            Path::new("/data/plugins/openai/plugin.toml")
        ));
        assert!(concerns_plugins(root, Path::new("/data/plugins/new-one")));
        assert!(!concerns_plugins(root, Path::new("/data/plugins/.cache/x")));
        assert!(!concerns_plugins(
            root,
            Path::new("/data/plugins/openai/.plugin.toml.swp")
        ));
        assert!(!concerns_plugins(
            root,
            Path::new("/data/plugins/openai/plugin.toml~")
        ));
    }
}
