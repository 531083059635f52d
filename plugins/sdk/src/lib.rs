//! Guest-side SDK for SceneIntruder plugins.
//!
//! A SceneIntruder plugin is one WebAssembly component that targets exactly one world of
//! `wit/plugin.wit` (`sceneintruder:plugin@0.1.2`). This crate gives plugin authors:
//!
//! * the generated bindings of each world, one module per world, behind a cargo feature:
//!   [`llm`] (`llm`), `vision` (`vision`), `video` (`video`), `exporter` (`exporter`).
//!   Each module re-exports the world's `Guest` trait(s), its types and an `export!` macro;
//! * for the provider worlds: [`http`] (the `http` import plus JSON helpers and the typed
//!   mapping of vendor errors), [`config`], [`log`] and [`types`];
//! * [`sse`]: a server-sent-events line parser;
//! * with `llm`: [`streams`] (the stream table behind `start-stream` / `next-event` /
//!   `close-stream`) and [`openai_chat`] (an OpenAI Chat Completions codec that any
//!   OpenAI-compatible provider can reuse through a small [`openai_chat::ChatDialect`] hook)
//!   and [`completion`] (vendor-neutral request steps: alternating turns, JSON mode as an
//!   instruction, numbers) for vendors with their own wire format.
//!
//! Enable exactly one world feature per plugin crate and build each plugin in its own cargo
//! invocation (`cargo build --profile wasm-release --target wasm32-wasip2 -p <plugin>`), so the
//! features of different worlds never unify.
//!
//! # Writing an LLM provider
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! sceneintruder-plugin-sdk = { workspace = true, features = ["llm"] }
//! ```
//!
//! `src/lib.rs` for an OpenAI-compatible vendor:
//!
//! ```ignore
//! use sceneintruder_plugin_sdk::llm::{
//!     self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError,
//!     ProviderInfo, StreamEvent,
//! };
//! use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect};
//! use sceneintruder_plugin_sdk::streams;
//!
//! struct Acme;
//!
//! impl ChatDialect for Acme {
//!     fn vendor(&self) -> &str { "Acme" }
//!     fn default_base_url(&self) -> &str { "https://api.acme.example/v1" }
//! }
//!
//! struct Plugin;
//!
//! impl Guest for Plugin {
//!     fn info() -> ProviderInfo { /* id, display name, default model, catalog */ todo!() }
//!     fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
//!         openai_chat::complete(&Acme, &req)
//!     }
//!     fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
//!         let ids = openai_chat::list_model_ids(&Acme)?;
//!         Ok(ids.iter().map(|id| sceneintruder_plugin_sdk::types::unknown_model(id)).collect())
//!     }
//!     fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
//!         openai_chat::start_stream(Acme, &req)
//!     }
//!     fn next_event(stream: u32) -> Result<StreamEvent, ProviderError> {
//!         streams::next_event(stream)
//!     }
//!     fn close_stream(stream: u32) {
//!         streams::close(stream)
//!     }
//! }
//!
//! llm::export!(Plugin);
//! ```
//!
//! A vendor with its own wire format uses [`http`] directly: build a request with
//! [`http::post_json`] / [`http::get`], send it with [`http::send_json`] (non-2xx answers come back
//! as the typed `provider-error`), and for streaming wrap [`http::send_streaming`]'s body in a
//! [`streams::SseSource`] with your own [`streams::SseDecoder`].
//!
//! # Secrets
//!
//! A plugin never sees an API key. Write the placeholder `{{secret:api_key}}` into a header value
//! or a query-string value (see [`http::bearer`] and [`http::secret`]); the host substitutes it
//! after its allow-list check. Use [`config::require_secret`] to fail early with
//! `not-configured` when the operator has not set the key.
//!
//! # Writing an exporter
//!
//! See `docs/plugins/exporter.md` for the whole story. In short, for a text format:
//!
//! ```ignore
//! use sceneintruder_plugin_sdk::exporter::document::ExportInput;
//! use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};
//!
//! struct Plugin;
//! impl Guest for Plugin {
//!     fn supported() -> Vec<FormatInfo> {
//!         // One (kind, format) pair per kind, all with this name, media type and extension.
//!         exporter::pairs(&["scene"], "yaml", "YAML", "application/yaml; charset=utf-8", "yaml")
//!     }
//!     fn render(req: ExportRequest) -> Result<(), ExportError> {
//!         // Checks the pair, parses the input, renders it and writes the text.
//!         exporter::render_text(&req, &Self::supported(), |kind, input| match kind {
//!             "scene" => Some(scene(input)),
//!             _ => None,
//!         })
//!     }
//! }
//! exporter::export!(Plugin);
//!
//! /// Pure, so it can be tested natively.
//! fn scene(input: &ExportInput) -> String {
//!     format!("title: {}\n", input.scene.scene.title)
//! }
//! ```
//!
//! For binary output, or output written piece by piece, `render()` calls
//! `exporter::input` and writes through an `exporter::Output` instead.

// Lets the generated bindings and the exported macros name this crate by the same absolute
// path from inside and outside the crate.
extern crate self as sceneintruder_plugin_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub mod sse;

/// Raw bindings of the imports shared by the provider worlds (`http`, `log`, `config`,
/// `types`). Every provider world module maps these interfaces here, so the SDK helpers and
/// all provider worlds share one set of types.
#[cfg(any(feature = "llm", feature = "vision", feature = "video"))]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "
            package sceneintruder:sdk;
            world provider-imports {
                import sceneintruder:plugin/http@0.1.2;
                import sceneintruder:plugin/log@0.1.2;
                import sceneintruder:plugin/config@0.1.2;
                import sceneintruder:plugin/types@0.1.2;
            }
        ",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        generate_unused_types: true,
        generate_all,
    });
}

#[cfg(any(feature = "llm", feature = "vision", feature = "video"))]
pub mod config;
#[cfg(any(feature = "llm", feature = "vision", feature = "video"))]
pub mod http;
#[cfg(any(feature = "llm", feature = "vision", feature = "video"))]
pub mod log;
#[cfg(any(feature = "llm", feature = "vision", feature = "video"))]
pub mod types;

#[cfg(feature = "llm")]
pub mod completion;
#[cfg(feature = "llm")]
pub mod openai_chat;
#[cfg(feature = "llm")]
pub mod streams;

/// The `llm-provider` world: implement [`llm::Guest`] and call [`llm::export!`].
#[cfg(feature = "llm")]
pub mod llm {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "llm-provider",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::llm",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sceneintruder:plugin/http@0.1.2": crate::bindings::sceneintruder::plugin::http,
            "sceneintruder:plugin/log@0.1.2": crate::bindings::sceneintruder::plugin::log,
            "sceneintruder:plugin/config@0.1.2": crate::bindings::sceneintruder::plugin::config,
            "sceneintruder:plugin/types@0.1.2": crate::bindings::sceneintruder::plugin::types,
        },
    });

    pub use self::exports::sceneintruder::plugin::llm::{
        CompletionRequest, CompletionResponse, Guest, JsonSchema, Message, Reasoning,
        ResponseFormat, Role, StreamEvent, Usage,
    };
    pub use crate::types::{ModelInfo, ProviderError, ProviderInfo};
}

/// The `vision-provider` world: implement [`vision::Guest`] and call [`vision::export!`].
#[cfg(feature = "vision")]
pub mod vision {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "vision-provider",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::vision",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sceneintruder:plugin/http@0.1.2": crate::bindings::sceneintruder::plugin::http,
            "sceneintruder:plugin/log@0.1.2": crate::bindings::sceneintruder::plugin::log,
            "sceneintruder:plugin/config@0.1.2": crate::bindings::sceneintruder::plugin::config,
            "sceneintruder:plugin/types@0.1.2": crate::bindings::sceneintruder::plugin::types,
        },
    });

    pub use self::exports::sceneintruder::plugin::vision::{
        GenerateResult, Guest, Image, ImageRequest, PollResult,
    };
    pub use crate::types::{ImageSource, ModelInfo, ProviderError, ProviderInfo};
}

/// The `video-provider` world: implement [`video::Guest`] and call [`video::export!`].
#[cfg(feature = "video")]
pub mod video {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "video-provider",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::video",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sceneintruder:plugin/http@0.1.2": crate::bindings::sceneintruder::plugin::http,
            "sceneintruder:plugin/log@0.1.2": crate::bindings::sceneintruder::plugin::log,
            "sceneintruder:plugin/config@0.1.2": crate::bindings::sceneintruder::plugin::config,
            "sceneintruder:plugin/types@0.1.2": crate::bindings::sceneintruder::plugin::types,
        },
    });

    pub use self::exports::sceneintruder::plugin::video::{
        ClipAsset, ClipRequest, ClipStatus, Guest,
    };
    pub use crate::types::{ImageSource, ModelInfo, ProviderError, ProviderInfo};
}

/// The `exporter` world: implement [`exporter::Guest`] and call [`exporter::export!`].
///
/// An exporter declares the (kind, format) pairs it renders in `supported()` (one format for
/// several kinds: [`exporter::pairs`]), reads the host's export input with [`exporter::input`]
/// in `render()`, and writes its output through an [`exporter::Output`] (buffered, sent to the
/// host in chunks). A text format does all of `render()` with [`exporter::render_text`].
/// Attachments of the exported document (images, clips) are read with
/// [`exporter::attachments`]. Exporters have no network and no filesystem.
#[cfg(feature = "exporter")]
pub mod exporter {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "exporter",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::exporter",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
    });

    pub use self::exports::sceneintruder::plugin::renderer::{
        ExportError, ExportRequest, FormatInfo, Guest,
    };
    pub use self::sceneintruder::plugin::export_attachments as attachments;
    pub use sceneintruder_export_document as document;

    /// Bytes sent to the host per `export-output.write` call.
    const CHUNK: usize = 64 * 1024;

    /// The render's output: buffers writes and hands them to the host in 64 KiB chunks.
    /// Call [`Output::finish`] at the end (dropping it without finishing loses the tail).
    #[derive(Default)]
    pub struct Output {
        buffer: Vec<u8>,
    }

    impl Output {
        pub fn new() -> Output {
            Output::default()
        }

        /// Append text.
        pub fn push_str(&mut self, text: &str) -> Result<(), ExportError> {
            self.push(text.as_bytes())
        }

        /// Append bytes.
        pub fn push(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
            self.buffer.extend_from_slice(bytes);
            while self.buffer.len() >= CHUNK {
                let rest = self.buffer.split_off(CHUNK);
                let chunk = std::mem::replace(&mut self.buffer, rest);
                send(&chunk)?;
            }
            Ok(())
        }

        /// Send what is still buffered.
        pub fn finish(mut self) -> Result<(), ExportError> {
            let tail = std::mem::take(&mut self.buffer);
            if tail.is_empty() {
                return Ok(());
            }
            send(&tail)
        }
    }

    impl std::io::Write for Output {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.push(buf)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn send(chunk: &[u8]) -> Result<(), ExportError> {
        self::sceneintruder::plugin::export_output::write(chunk).map_err(ExportError::OutputRefused)
    }

    /// Write a whole rendered document.
    pub fn write_all(bytes: &[u8]) -> Result<(), ExportError> {
        let mut out = Output::new();
        out.push(bytes)?;
        out.finish()
    }

    /// The `supported()` list of a plugin that renders one format for several kinds: one
    /// [`FormatInfo`] per kind, in the order given, all with the same format, display name,
    /// media type and file extension, and the export-input schema this SDK understands
    /// ([`document::SCHEMA_VERSION`]).
    ///
    /// ```ignore
    /// fn supported() -> Vec<FormatInfo> {
    ///     let kinds = &["scene", "interactions"];
    ///     exporter::pairs(kinds, "txt", "Plain text", "text/plain; charset=utf-8", "txt")
    /// }
    /// ```
    pub fn pairs(
        kinds: &[&str],
        format: &str,
        display_name: &str,
        media_type: &str,
        file_extension: &str,
    ) -> Vec<FormatInfo> {
        kinds
            .iter()
            .map(|kind| FormatInfo {
                kind: (*kind).into(),
                format: format.into(),
                display_name: display_name.into(),
                media_type: media_type.into(),
                file_extension: file_extension.into(),
                schema_version: document::SCHEMA_VERSION,
            })
            .collect()
    }

    /// The whole `render()` of a text exporter: [`input`] (which checks the pair against
    /// `supported` and parses the export input), then `render(kind, &input)`, then
    /// [`write_all`] of the text it returns. `render` returns `None` for a kind it does not
    /// render, which fails the export as `unsupported`. For binary output, or output
    /// written piece by piece, call [`input`] yourself and write through an [`Output`].
    ///
    /// ```ignore
    /// fn render(req: ExportRequest) -> Result<(), ExportError> {
    ///     exporter::render_text(&req, &Self::supported(), |kind, input| match kind {
    ///         "scene" => Some(scene::render(input)),
    ///         "interactions" => Some(interactions::render(input)),
    ///         _ => None,
    ///     })
    /// }
    /// ```
    pub fn render_text(
        req: &ExportRequest,
        supported: &[FormatInfo],
        render: impl FnOnce(&str, &document::ExportInput) -> Option<String>,
    ) -> Result<(), ExportError> {
        let input = input(req, supported)?;
        let text = render(&req.kind, &input).ok_or_else(|| {
            ExportError::Unsupported(format!("{}.{} is not rendered here", req.kind, req.format))
        })?;
        write_all(text.as_bytes())
    }

    /// Parse the request's export input, checking that the request is for a pair in
    /// `supported` and that the schema is one this crate understands.
    pub fn input(
        req: &ExportRequest,
        supported: &[FormatInfo],
    ) -> Result<document::ExportInput, ExportError> {
        if !supported
            .iter()
            .any(|f| f.kind == req.kind && f.format == req.format)
        {
            return Err(ExportError::Unsupported(format!(
                "{}.{} is not rendered by this exporter",
                req.kind, req.format
            )));
        }
        document::ExportInput::from_json(&req.input_json).map_err(ExportError::InvalidInput)
    }

    // Natively, only the paths that fail before writing can run: the host's `export-output`
    // exists only inside the server.
    #[cfg(test)]
    mod tests {
        use super::*;

        fn served() -> Vec<FormatInfo> {
            pairs(
                &["scene", "interactions"],
                "txt",
                "Plain text",
                "text/plain; charset=utf-8",
                "txt",
            )
        }

        fn request(kind: &str, format: &str) -> ExportRequest {
            let input = document::ExportInput {
                schema_version: document::SCHEMA_VERSION,
                kind: kind.into(),
                format: format.into(),
                ..Default::default()
            };
            ExportRequest {
                kind: kind.into(),
                format: format.into(),
                input_json: serde_json::to_string(&input).expect("encodes"),
            }
        }

        #[test]
        fn pairs_declares_one_pair_per_kind_in_order() {
            let formats = served();
            let kinds: Vec<&str> = formats.iter().map(|f| f.kind.as_str()).collect();
            assert_eq!(kinds, ["scene", "interactions"]);
            for f in &formats {
                assert_eq!(f.format, "txt");
                assert_eq!(f.display_name, "Plain text");
                assert_eq!(f.media_type, "text/plain; charset=utf-8");
                assert_eq!(f.file_extension, "txt");
                assert_eq!(f.schema_version, document::SCHEMA_VERSION);
            }
        }

        #[test]
        fn render_text_refuses_a_pair_not_supported_without_rendering() {
            let result = render_text(&request("story", "txt"), &served(), |_, _| {
                panic!("must not render")
            });
            assert_eq!(
                result,
                Err(ExportError::Unsupported(
                    "story.txt is not rendered by this exporter".into()
                ))
            );
        }

        #[test]
        fn render_text_reports_a_kind_the_render_skips() {
            let mut asked = None;
            let result = render_text(&request("interactions", "txt"), &served(), |kind, _| {
                asked = Some(kind.to_owned());
                None
            });
            assert_eq!(asked.as_deref(), Some("interactions"));
            assert_eq!(
                result,
                Err(ExportError::Unsupported(
                    "interactions.txt is not rendered here".into()
                ))
            );
        }

        #[test]
        fn render_text_passes_on_an_unreadable_input() {
            let mut req = request("scene", "txt");
            req.input_json = "{".into();
            let result = render_text(&req, &served(), |_, _| panic!("must not render"));
            assert!(
                matches!(result, Err(ExportError::InvalidInput(_))),
                "{result:?}"
            );
        }
    }
}
