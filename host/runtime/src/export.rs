//! Typed client for `exporter` plugins, and the host side of their imports
//! (`export-output`, `export-attachments`).
//!
//! A render writes its output in chunks into a buffer the host caps at the caller's limit;
//! past it every write fails and the render fails, whatever the plugin returns. Attachments
//! are the ones the caller hands in for this one export: any other id is an error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use wasmtime::Store;

use crate::bindings::document_exporter::DocumentExporterPre;
pub use crate::bindings::document_exporter::exports::sceneintruder::plugin::document_export::{
    ExportError as LegacyExportError, ExportFile, ExporterInfo,
};
use crate::bindings::exporter::ExporterPre;
pub use crate::bindings::exporter::exports::sceneintruder::plugin::renderer::{
    ExportError, ExportRequest, FormatInfo,
};
use crate::bindings::exporter::sceneintruder::plugin::{export_attachments, export_output};
use crate::error::{CallError, RuntimeError};
use crate::registry::{Description, WorldPre};
use crate::sandbox::HostState;
use crate::{PluginHandle, PluginKind, PluginRuntime};

/// Largest slice of an attachment one `read` returns.
const READ_MAX: u32 = 1024 * 1024;

/// The kind a legacy exporter's `*` (any document) claims.
pub const ANY_KIND: &str = "*";

/// An exporter plugin: export input in, document out.
#[derive(Clone)]
pub struct Exporter {
    handle: PluginHandle,
    pre: Pre,
    formats: Arc<[FormatInfo]>,
}

#[derive(Clone)]
enum Pre {
    Current(ExporterPre<HostState>),
    /// Built against WIT 0.1.0 / 0.1.1: one format, output returned whole.
    Legacy(DocumentExporterPre<HostState>),
}

/// One binary attachment of the document being exported.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub media_type: String,
    pub bytes: Arc<[u8]>,
}

/// What one render may read.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Attachments of the exported document, by the ids the export input uses.
    pub attachments: BTreeMap<String, Attachment>,
}

/// A rendered document.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub file_extension: String,
}

/// The state of one render, shared between the store and the caller.
#[derive(Clone)]
pub struct ExportSession {
    output: Arc<Mutex<Output>>,
    attachments: Arc<BTreeMap<String, Attachment>>,
}

#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    max_bytes: usize,
    /// Set by the first refused write; the render fails with it.
    refused: Option<String>,
}

impl ExportSession {
    fn new(options: RenderOptions, max_bytes: usize) -> ExportSession {
        ExportSession {
            output: Arc::new(Mutex::new(Output {
                bytes: Vec::new(),
                max_bytes,
                refused: None,
            })),
            attachments: Arc::new(options.attachments),
        }
    }

    fn output(&self) -> std::sync::MutexGuard<'_, Output> {
        match self.output.lock() {
            Ok(o) => o,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write(&self, chunk: &[u8]) -> Result<(), String> {
        let mut out = self.output();
        if let Some(refused) = &out.refused {
            return Err(refused.clone());
        }
        if out.bytes.len().saturating_add(chunk.len()) > out.max_bytes {
            let message = format!(
                "the export is larger than the limit of {} bytes",
                out.max_bytes
            );
            out.refused = Some(message.clone());
            out.bytes = Vec::new();
            return Err(message);
        }
        out.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The output, or the reason it was refused.
    fn finish(&self) -> Result<Vec<u8>, String> {
        let mut out = self.output();
        match out.refused.take() {
            Some(refused) => Err(refused),
            None => Ok(std::mem::take(&mut out.bytes)),
        }
    }
}

impl PluginRuntime {
    /// The exporter with this plugin id.
    pub fn exporter(&self, id: &str) -> Result<Exporter, RuntimeError> {
        let plugin = self.expect_kind(id, PluginKind::Exporter)?;
        let pre = match &plugin.pre {
            WorldPre::Exporter(pre) => Pre::Current(pre.clone()),
            WorldPre::DocumentExporter(pre) => Pre::Legacy(pre.clone()),
            _ => return Err(RuntimeError::NotLoaded(id.to_string())),
        };
        let Description::Exporter(formats) = &plugin.description else {
            return Err(RuntimeError::NotLoaded(id.to_string()));
        };
        let formats = formats.clone().into();
        Ok(Exporter {
            handle: PluginHandle::new(self, plugin),
            pre,
            formats,
        })
    }

    /// Every loaded exporter.
    pub fn exporters(&self) -> Vec<Exporter> {
        self.ids(PluginKind::Exporter)
            .iter()
            .filter_map(|id| self.exporter(id).ok())
            .collect()
    }
}

impl Exporter {
    pub fn id(&self) -> &str {
        self.handle.id()
    }

    /// The (kind, format) pairs this plugin renders. A legacy exporter that accepts any
    /// document claims kind [`ANY_KIND`].
    pub fn formats(&self) -> &[FormatInfo] {
        &self.formats
    }

    /// The pair `(kind, format)`, when this plugin renders it.
    pub fn format(&self, kind: &str, format: &str) -> Option<&FormatInfo> {
        self.formats
            .iter()
            .find(|f| (f.kind == kind || f.kind == ANY_KIND) && f.format == format)
    }

    /// Render `input_json` (the export input) as `format` of `kind`, within the runtime's
    /// `export_max_bytes`.
    pub async fn render(
        &self,
        kind: &str,
        format: &str,
        input_json: &str,
        options: RenderOptions,
        cancel: Option<&CancellationToken>,
    ) -> Result<Rendered, CallError> {
        let Some(info) = self.format(kind, format).cloned() else {
            return Err(self.export_error(ExportError::Unsupported(format!(
                "{kind}.{format} is not rendered by this plugin"
            ))));
        };
        let session = ExportSession::new(options, self.handle.rt.limits.export_max_bytes);
        let request = ExportRequest {
            kind: kind.to_string(),
            format: format.to_string(),
            input_json: input_json.to_string(),
        };
        let outcome = match &self.pre {
            Pre::Current(pre) => {
                let session = session.clone();
                self.handle
                    .run(cancel, async move |store: &mut Store<HostState>| {
                        store.data_mut().call.export = Some(session);
                        let instance = pre.instantiate_async(&mut *store).await?;
                        instance
                            .sceneintruder_plugin_renderer()
                            .call_render(&mut *store, &request)
                            .await
                    })
                    .await
            }
            Pre::Legacy(pre) => self
                .handle
                .run(cancel, async |store: &mut Store<HostState>| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .sceneintruder_plugin_document_export()
                        .call_export(&mut *store, kind, input_json, "{}")
                        .await
                })
                .await
                .map(|file| match file {
                    Ok(file) => session
                        .write(&file.bytes)
                        .map_err(ExportError::OutputRefused),
                    Err(e) => Err(legacy_error(e)),
                }),
        };
        // A refused write fails the render whatever the plugin did next (ignored the
        // refusal, trapped on the next write, returned success).
        let bytes = session
            .finish()
            .map_err(|m| self.export_error(ExportError::OutputRefused(m)))?;
        outcome?.map_err(|e| self.export_error(e))?;
        Ok(Rendered {
            bytes,
            media_type: info.media_type,
            file_extension: info.file_extension,
        })
    }

    fn export_error(&self, error: ExportError) -> CallError {
        self.handle.count_failure();
        CallError::Export {
            plugin: self.id().to_string(),
            error,
        }
    }
}

fn legacy_error(e: LegacyExportError) -> ExportError {
    match e {
        LegacyExportError::UnsupportedKind(m) => ExportError::Unsupported(m),
        LegacyExportError::InvalidDocument(m) | LegacyExportError::InvalidOptions(m) => {
            ExportError::InvalidInput(m)
        }
        LegacyExportError::Failed(m) => ExportError::Failed(m),
    }
}

/// The pairs a legacy exporter's `info()` describes.
pub(crate) fn legacy_formats(info: ExporterInfo) -> Vec<FormatInfo> {
    info.document_kinds
        .iter()
        .map(|kind| FormatInfo {
            kind: kind.clone(),
            format: info.format.clone(),
            display_name: info.display_name.clone(),
            media_type: info.content_type.clone(),
            file_extension: info.file_extension.clone(),
            schema_version: info.schema_version,
        })
        .collect()
}

impl HostState {
    fn export_session(&self) -> Result<&ExportSession, String> {
        self.call
            .export
            .as_ref()
            .ok_or_else(|| "there is no export in progress in this call".to_string())
    }
}

impl export_output::Host for HostState {
    async fn write(&mut self, chunk: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let session = match self.export_session() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        // The first refusal is an answer; writing on after it ends the call.
        if session.output().refused.is_some() {
            return Err(wasmtime::Error::msg(
                "the exporter kept writing after its output was refused",
            ));
        }
        Ok(session.write(&chunk))
    }
}

impl export_attachments::Host for HostState {
    async fn list(&mut self) -> wasmtime::Result<Vec<export_attachments::Attachment>> {
        let Ok(session) = self.export_session() else {
            return Ok(Vec::new());
        };
        Ok(session
            .attachments
            .iter()
            .map(|(id, a)| export_attachments::Attachment {
                id: id.clone(),
                media_type: a.media_type.clone(),
                size: a.bytes.len() as u64,
            })
            .collect())
    }

    async fn read(
        &mut self,
        id: String,
        offset: u64,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let session = match self.export_session() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let Some(attachment) = session.attachments.get(&id) else {
            let shown: String = id.chars().take(80).collect();
            return Ok(Err(format!(
                "{shown:?} is not an attachment of the document being exported"
            )));
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(attachment.bytes.len());
        let len = max_bytes.min(READ_MAX) as usize;
        let end = start.saturating_add(len).min(attachment.bytes.len());
        Ok(Ok(attachment.bytes[start..end].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_limit_is_refused_for_good() {
        let session = ExportSession::new(RenderOptions::default(), 10);
        assert!(session.write(b"12345").is_ok());
        assert!(session.write(b"123456").is_err());
        // A later small write does not sneak past a refusal.
        assert!(session.write(b"1").is_err());
        let err = session.finish().expect_err("refused");
        assert!(err.contains("limit of 10 bytes"), "{err}");
    }

    #[test]
    fn output_within_the_limit_is_kept_in_order() {
        let session = ExportSession::new(RenderOptions::default(), 10);
        session.write(b"ab").expect("fits");
        session.write(b"cd").expect("fits");
        assert_eq!(session.finish().expect("ok"), b"abcd");
    }
}
