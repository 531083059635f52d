//! Typed client for `exporter` plugins.

use tokio_util::sync::CancellationToken;

use crate::bindings::exporter::ExporterPre;
pub use crate::bindings::exporter::exports::sceneintruder::plugin::document_export::{
    ExportError, ExportFile, ExporterInfo,
};
use crate::error::{CallError, RuntimeError};
use crate::registry::{Description, WorldPre};
use crate::sandbox::HostState;
use crate::{PluginHandle, PluginKind, PluginRuntime};

/// An exporter plugin: document JSON in, file out.
#[derive(Clone)]
pub struct Exporter {
    handle: PluginHandle,
    pre: ExporterPre<HostState>,
    info: ExporterInfo,
}

impl PluginRuntime {
    /// The exporter with this plugin id.
    pub fn exporter(&self, id: &str) -> Result<Exporter, RuntimeError> {
        let plugin = self.expect_kind(id, PluginKind::Exporter)?;
        let (WorldPre::Exporter(pre), Description::Exporter(info)) =
            (plugin.pre.clone(), plugin.description.clone())
        else {
            return Err(RuntimeError::NotLoaded(id.to_string()));
        };
        Ok(Exporter {
            handle: PluginHandle::new(self, plugin),
            pre,
            info,
        })
    }

    /// The loaded exporter for a format id (e.g. `markdown`), if any.
    pub fn exporter_for_format(&self, format: &str) -> Option<Exporter> {
        self.ids(PluginKind::Exporter)
            .iter()
            .filter_map(|id| self.exporter(id).ok())
            .find(|e| e.info.format == format)
    }
}

impl Exporter {
    pub fn id(&self) -> &str {
        self.handle.id()
    }

    pub fn info(&self) -> &ExporterInfo {
        &self.info
    }

    /// Whether this exporter accepts documents of `kind`.
    pub fn accepts(&self, kind: &str) -> bool {
        self.info
            .document_kinds
            .iter()
            .any(|k| k == "*" || k == kind)
    }

    /// Export `document` (JSON text) of `kind` with `options` (a JSON object).
    pub async fn export(
        &self,
        kind: &str,
        document: &str,
        options: &str,
        cancel: Option<&CancellationToken>,
    ) -> Result<ExportFile, CallError> {
        let pre = &self.pre;
        self.handle
            .run(cancel, async |store| {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance
                    .sceneintruder_plugin_document_export()
                    .call_export(&mut *store, kind, document, options)
                    .await
            })
            .await?
            .map_err(|error| {
                self.handle.count_failure();
                CallError::Export {
                    plugin: self.id().to_string(),
                    error,
                }
            })
    }
}
