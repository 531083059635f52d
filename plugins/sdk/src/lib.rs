//! Guest-side SDK for SceneIntruder plugins.
//!
//! A SceneIntruder plugin is one WebAssembly component, built for the `wasm32-wasip2` target,
//! that implements exactly one world of the WIT package `sceneintruder:plugin` (version
//! [`WIT_VERSION`]). The WIT ships inside this crate (`wit/plugin.wit`), so the crate works as
//! a `path` or `git` dependency from anywhere. It gives plugin authors:
//!
//! * the bindings of each world, one module per world, behind a cargo feature:
//!   [`llm`] (feature `llm`, world `llm-provider`), [`vision`] (`vision`, `vision-provider`),
//!   [`video`] (`video`, `video-provider`) and [`exporter`] (`exporter`, `exporter`). Each
//!   module re-exports the world's `Guest` trait, its types and an `export!` macro; the docs of
//!   [`llm`] and [`exporter`] hold a complete plugin, compiled and run as a doctest;
//! * for the provider worlds: [`http`] (the host's HTTP, JSON helpers and the typed mapping of
//!   vendor errors), [`config`] (settings, secrets, `base_url`), [`log`] and [`types`] (the
//!   shared records, and [`types::unknown_model`]);
//! * [`sse`]: a server-sent-events parser (no feature needed);
//! * with `llm`: [`openai_chat`] (an OpenAI Chat Completions codec that any OpenAI-compatible
//!   vendor reuses through a small [`openai_chat::ChatDialect`], and a `const` catalog:
//!   [`openai_chat::ModelSpec`], [`openai_chat::catalog_info`],
//!   [`openai_chat::list_known_models`]), [`streams`] (the stream table behind
//!   `start-stream` / `next-event` / `close-stream`, and [`streams::SseSource`] for any SSE
//!   vendor) and [`completion`] (vendor-neutral request steps: alternating turns, JSON mode as
//!   an instruction, numbers) for vendors with their own wire format;
//! * with `exporter`: [`exporter::pairs`], [`exporter::render_text`], [`exporter::input`],
//!   [`exporter::Output`] and the export input types, [`exporter::document`].
//!
//! These docs are complete when built with every feature
//! (`cargo doc --features llm,vision,video,exporter`); a plugin enables exactly one.
//!
//! # Setting up a plugin crate
//!
//! You need Rust 1.95 or newer and the WASI 0.2 target:
//!
//! ```sh
//! rustup target add wasm32-wasip2
//! ```
//!
//! A plugin is a crate of its own. Its `Cargo.toml`, here for an LLM provider (an exporter
//! enables `exporter` instead of `llm`):
//!
//! ```toml
//! [package]
//! name = "llm-acme"
//! version = "0.1.0"
//! edition = "2024"
//! rust-version = "1.95"
//! publish = false
//!
//! # A component is a dynamic library for wasm32-wasip2.
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! # A checkout of the SceneIntruder repository (or a git dependency on it:
//! # `{ git = "<repository URL>", features = ["llm"] }`).
//! sceneintruder-plugin-sdk = { path = "../sceneintruder/plugins/sdk", features = ["llm"] }
//!
//! # Small components: the settings of the SceneIntruder repository's `wasm-release` profile.
//! [profile.release]
//! opt-level = "s"
//! lto = true
//! codegen-units = 1
//! strip = true
//! panic = "abort"
//!
//! # The crate is its own workspace, so it builds standalone wherever its folder is.
//! [workspace]
//! ```
//!
//! Enable exactly one world feature: a component implements one world. A cargo workspace
//! that holds plugins of several worlds builds each plugin with its own
//! `cargo build -p <crate>`, so that the SDK's features never unify across them.
//!
//! Build:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! The component is `target/wasm32-wasip2/release/llm_acme.wasm`: the crate name with every
//! `-` replaced by `_`. To install it, make a folder in the server's plugins folder
//! (`<data-dir>/plugins` by default) holding the `.wasm` and a `plugin.toml` whose `component`
//! is the file name and whose `wit` is the WIT version this SDK binds, [`WIT_VERSION`]:
//!
//! ```toml
//! id = "acme"                    # equals ProviderInfo::id; 1-64 of a-z 0-9 - _
//! kind = "llm-provider"          # llm-provider | vision-provider | video-provider | exporter
//! version = "0.1.0"              # the plugin's own version
//! wit = "0.1.3"                  # sceneintruder_plugin_sdk::WIT_VERSION
//! name = "Acme"
//! description = "Acme chat models."
//! component = "llm_acme.wasm"
//!
//! [network]
//! hosts = ["https://api.acme.example"]   # origins the plugin asks to reach
//!
//! [config.base_url]
//! description = "API base URL."
//! default = "https://api.acme.example/v1"
//!
//! [config.api_key]
//! description = "Acme API key."
//! secret = true
//! required = true
//! ```
//!
//! The server reads the plugins folder when it starts, so restart it after installing;
//! `GET /api/plugins/<id>` then shows whether the plugin loaded and, if not, why. In the
//! SceneIntruder repository, `docs/plugins/README.md` describes the manifest, the sandbox and
//! the caps, `docs/plugins/llm.md` and `docs/plugins/exporter.md` go through each world.
//!
//! # Secrets and settings
//!
//! A plugin never sees an API key. It writes the placeholder `{{secret:api_key}}` into a
//! credential header or a query-string value its manifest declares (see [`http::bearer`] and
//! [`http::secret`]); the host substitutes the key after its allow-list check, for the origin
//! the key belongs to only. [`config::require_secret`] fails early with `not-configured` when
//! the operator has not set the key; [`config::get`] / [`config::get_non_empty`] read the
//! other settings, and [`config::base_url`] the conventional `base_url` one.
//!
//! # Testing
//!
//! Plugins are tested natively with `cargo test`, like any crate. The host's imports (HTTP,
//! settings, logs, export output) exist only inside the server: natively, calling one panics.
//! So keep the translation in pure functions (build the vendor's body, parse its answer,
//! decode its stream events, render an export input) and test those; the examples in the
//! world modules do just that. To test against the real runtime, run the plugin in a server
//! with its `base_url` pointing at a loopback fake of the vendor (`docs/plugins/llm.md`).

// The world modules exist only with their feature; the docs are meant to be built with all.
#![cfg_attr(
    not(all(
        feature = "llm",
        feature = "vision",
        feature = "video",
        feature = "exporter"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

// Lets the generated bindings and the exported macros name this crate by the same absolute
// path from inside and outside the crate.
extern crate self as sceneintruder_plugin_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The version of the WIT package `sceneintruder:plugin` this SDK binds (its `wit/plugin.wit`).
/// Write it as `wit` in the plugin's `plugin.toml`: the host loads a plugin built against
/// `0.1.x` on any `0.1` host at least as new.
pub const WIT_VERSION: &str = "0.1.3";

pub mod sse;

/// Raw bindings of the imports shared by the provider worlds (`http`, `log`, `config`,
/// `types`). Every provider world module maps these interfaces here, so the SDK helpers and
/// all provider worlds share one set of types.
#[cfg(any(feature = "llm", feature = "vision", feature = "video"))]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        inline: "
            package sceneintruder:sdk;
            world provider-imports {
                import sceneintruder:plugin/http@0.1.3;
                import sceneintruder:plugin/log@0.1.3;
                import sceneintruder:plugin/config@0.1.3;
                import sceneintruder:plugin/types@0.1.3;
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

#[cfg(feature = "vision")]
pub mod imaging;

#[cfg(feature = "llm")]
pub mod completion;
#[cfg(feature = "llm")]
pub mod openai_chat;
#[cfg(feature = "llm")]
pub mod streams;

#[cfg(feature = "llm")]
pub mod llm {
    //! The `llm-provider` world: implement [`Guest`] for a type and export it with
    //! [`export!`].
    //!
    //! The exports, in short (the whole story is `docs/plugins/llm.md` in the SceneIntruder
    //! repository):
    //!
    //! * `info()`: the provider id (equal to the manifest's `id`), display name, default model
    //!   and built-in catalog. The host calls it once, at load, with no network and no
    //!   secrets: return constants.
    //! * `complete(req)`: one completion. Every failure is a typed [`ProviderError`]; a plugin
    //!   never retries (the host does, for rate limits, 5xx and timeouts).
    //! * `list_models()`: the models the vendor offers now (may call the vendor).
    //! * `start_stream(req)` / `next_event(id)` / `close_stream(id)`: a streamed completion,
    //!   pulled event by event from one instance; [`streams`](crate::streams) keeps the table.
    //!
    //! # An OpenAI-compatible provider
    //!
    //! [`openai_chat`](crate::openai_chat) speaks the wire format. A vendor describes how it
    //! deviates in a [`ChatDialect`](crate::openai_chat::ChatDialect) and its models in a
    //! `const` catalog of [`ModelSpec`](crate::openai_chat::ModelSpec)s, which
    //! [`catalog_info`](crate::openai_chat::catalog_info) turns into `info()`. The whole
    //! `src/lib.rs` of such a plugin:
    //!
    //! ```rust,standalone_crate
    //! use sceneintruder_plugin_sdk::llm::{
    //!     self, CompletionRequest, CompletionResponse, Guest, ModelInfo, ProviderError,
    //!     ProviderInfo, StreamEvent,
    //! };
    //! use sceneintruder_plugin_sdk::openai_chat::{self, ChatDialect, ModelSpec};
    //! use sceneintruder_plugin_sdk::{streams, types};
    //!
    //! /// How Acme differs from OpenAI: its name and default base URL, nothing else. Other
    //! /// hooks (auth headers, reasoning switch, output-cap key, JSON support) have defaults.
    //! #[derive(Clone, Copy)]
    //! struct Acme;
    //!
    //! impl ChatDialect for Acme {
    //!     fn vendor(&self) -> &str {
    //!         "Acme"
    //!     }
    //!
    //!     fn default_base_url(&self) -> &str {
    //!         "https://api.acme.example/v1"
    //!     }
    //! }
    //!
    //! /// The built-in catalog; the first model is the default.
    //! const MODELS: [ModelSpec; 2] = [
    //!     ModelSpec {
    //!         id: "acme-large",
    //!         name: "Acme Large",
    //!         context: 128_000,
    //!         max_output: Some(8_192),
    //!         json_mode: true,
    //!         json_schema: true,
    //!         reasoning: false,
    //!         vision: true,
    //!     },
    //!     ModelSpec {
    //!         id: "acme-small",
    //!         name: "Acme Small",
    //!         context: 32_000,
    //!         max_output: None,
    //!         json_mode: true,
    //!         json_schema: false,
    //!         reasoning: false,
    //!         vision: false,
    //!     },
    //! ];
    //!
    //! /// A model the vendor lists that the catalog does not describe.
    //! fn unlisted(id: &str) -> ModelInfo {
    //!     ModelInfo {
    //!         json_mode: true,
    //!         streaming: true,
    //!         ..types::unknown_model(id)
    //!     }
    //! }
    //!
    //! struct Plugin;
    //!
    //! impl Guest for Plugin {
    //!     fn info() -> ProviderInfo {
    //!         openai_chat::catalog_info("acme", "Acme", &MODELS)
    //!     }
    //!
    //!     fn complete(req: CompletionRequest) -> Result<CompletionResponse, ProviderError> {
    //!         openai_chat::complete(&Acme, &req)
    //!     }
    //!
    //!     fn list_models() -> Result<Vec<ModelInfo>, ProviderError> {
    //!         openai_chat::list_known_models(&Acme, &MODELS, unlisted)
    //!     }
    //!
    //!     fn start_stream(req: CompletionRequest) -> Result<u32, ProviderError> {
    //!         openai_chat::start_stream(Acme, &req)
    //!     }
    //!
    //!     fn next_event(stream: u32) -> Result<StreamEvent, ProviderError> {
    //!         streams::next_event(stream)
    //!     }
    //!
    //!     fn close_stream(stream: u32) {
    //!         streams::close(stream)
    //!     }
    //! }
    //!
    //! llm::export!(Plugin);
    //! # fn main() {
    //!
    //! // What a native unit test of this plugin can check: everything but the host calls.
    //! use sceneintruder_plugin_sdk::llm::{Message, Reasoning, ResponseFormat, Role};
    //!
    //! let info = Plugin::info();
    //! assert_eq!((info.id.as_str(), info.default_model.as_str()), ("acme", "acme-large"));
    //! assert!(info.models.iter().all(|m| m.streaming));
    //!
    //! let req = CompletionRequest {
    //!     model: "acme-large".into(),
    //!     system_prompt: Some("Be brief.".into()),
    //!     messages: vec![Message { role: Role::User, content: "Hello".into() }],
    //!     temperature: Some(0.7),
    //!     max_tokens: Some(100),
    //!     top_p: None,
    //!     stop: Vec::new(),
    //!     response_format: ResponseFormat::JsonObject,
    //!     reasoning: Reasoning::Off,
    //! };
    //! let body = openai_chat::build_body(&Acme, &req, false).unwrap();
    //! assert_eq!(body["messages"][0]["content"], "Be brief.");
    //! assert_eq!(body["temperature"], 0.7);
    //! assert_eq!(body["response_format"]["type"], "json_object");
    //! # }
    //! ```
    //!
    //! A vendor with a wire format of its own builds on [`http`](crate::http),
    //! [`completion`](crate::completion) and [`streams`](crate::streams); the
    //! [`completion`](crate::completion) module shows one.
    wit_bindgen::generate!({
        path: "wit",
        world: "llm-provider",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::llm",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sceneintruder:plugin/http@0.1.3": crate::bindings::sceneintruder::plugin::http,
            "sceneintruder:plugin/log@0.1.3": crate::bindings::sceneintruder::plugin::log,
            "sceneintruder:plugin/config@0.1.3": crate::bindings::sceneintruder::plugin::config,
            "sceneintruder:plugin/types@0.1.3": crate::bindings::sceneintruder::plugin::types,
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
        path: "wit",
        world: "vision-provider",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::vision",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sceneintruder:plugin/http@0.1.3": crate::bindings::sceneintruder::plugin::http,
            "sceneintruder:plugin/log@0.1.3": crate::bindings::sceneintruder::plugin::log,
            "sceneintruder:plugin/config@0.1.3": crate::bindings::sceneintruder::plugin::config,
            "sceneintruder:plugin/types@0.1.3": crate::bindings::sceneintruder::plugin::types,
        },
    });

    pub use self::exports::sceneintruder::plugin::vision::{
        Guest, Image, ImageData, ImageOptions, ReferenceImage,
    };
    pub use crate::types::{ModelInfo, ProviderError, ProviderInfo};
}

/// The `video-provider` world: implement [`video::Guest`] and call [`video::export!`].
#[cfg(feature = "video")]
pub mod video {
    wit_bindgen::generate!({
        path: "wit",
        world: "video-provider",
        pub_export_macro: true,
        default_bindings_module: "sceneintruder_plugin_sdk::video",
        runtime_path: "sceneintruder_plugin_sdk::__wit_bindgen::rt",
        additional_derives: [PartialEq],
        with: {
            "sceneintruder:plugin/http@0.1.3": crate::bindings::sceneintruder::plugin::http,
            "sceneintruder:plugin/log@0.1.3": crate::bindings::sceneintruder::plugin::log,
            "sceneintruder:plugin/config@0.1.3": crate::bindings::sceneintruder::plugin::config,
            "sceneintruder:plugin/types@0.1.3": crate::bindings::sceneintruder::plugin::types,
        },
    });

    pub use self::exports::sceneintruder::plugin::video::{
        ClipAsset, ClipRequest, ClipStatus, Guest,
    };
    pub use crate::types::{ImageSource, ModelInfo, ProviderError, ProviderInfo};
}

#[cfg(feature = "exporter")]
pub mod exporter {
    //! The `exporter` world: implement [`Guest`] for a type and export it with [`export!`].
    //!
    //! An exporter declares the (kind, format) pairs it renders in `supported()` (one format
    //! for several kinds: [`pairs`]), reads the host's export input with [`input`] in
    //! `render()`, and writes its output through an [`Output`] (buffered, sent to the host in
    //! chunks). A text format does all of `render()` with [`render_text`]. Attachments of the
    //! exported document (images, clips) are read with [`attachments`]; the host's log and
    //! settings are `sceneintruder::plugin::log` and `sceneintruder::plugin::config` in this
    //! module. Exporters have no network and no filesystem. The whole story is
    //! `docs/plugins/exporter.md` in the SceneIntruder repository.
    //!
    //! # A text exporter
    //!
    //! The whole `src/lib.rs` of a plugin that renders a scene as an outline in plain text:
    //!
    //! ```rust,standalone_crate
    //! use sceneintruder_plugin_sdk::exporter::document::ExportInput;
    //! use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo, Guest};
    //!
    //! struct Plugin;
    //!
    //! impl Guest for Plugin {
    //!     fn supported() -> Vec<FormatInfo> {
    //!         // One (kind, format) pair per kind, all with this name, media type and extension.
    //!         exporter::pairs(&["scene"], "outline", "Outline", "text/plain; charset=utf-8", "txt")
    //!     }
    //!
    //!     fn render(req: ExportRequest) -> Result<(), ExportError> {
    //!         // Checks the pair, parses the input, renders it and writes the text.
    //!         exporter::render_text(&req, &Self::supported(), |kind, input| match kind {
    //!             "scene" => Some(outline(input)),
    //!             _ => None,
    //!         })
    //!     }
    //! }
    //!
    //! exporter::export!(Plugin);
    //!
    //! /// Pure, so it can be tested natively.
    //! fn outline(input: &ExportInput) -> String {
    //!     let mut text = format!("{}\n", input.scene.scene.title);
    //!     for character in &input.characters {
    //!         text += &format!("- {}: {}\n", character.name, character.role);
    //!     }
    //!     text
    //! }
    //! # fn main() {
    //!
    //! // What a native unit test of this plugin can check: everything but the host calls.
    //! let mut input = ExportInput::default();
    //! input.scene.scene.title = "The harbour".into();
    //! assert_eq!(outline(&input), "The harbour\n");
    //!
    //! let formats = Plugin::supported();
    //! assert_eq!((formats[0].kind.as_str(), formats[0].format.as_str()), ("scene", "outline"));
    //! assert_eq!(formats[0].schema_version, exporter::document::SCHEMA_VERSION);
    //! # }
    //! ```
    //!
    //! # Binary output, written piece by piece
    //!
    //! `render()` calls [`input`] itself and writes through an [`Output`], which sends the
    //! bytes to the host in 64 KiB chunks (it also implements [`std::io::Write`], for
    //! encoders that write into one):
    //!
    //! ```rust
    //! use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo};
    //!
    //! fn supported() -> Vec<FormatInfo> {
    //!     exporter::pairs(&["scene"], "names", "Names", "application/octet-stream", "bin")
    //! }
    //!
    //! /// One NUL-terminated name per character.
    //! fn render(req: ExportRequest) -> Result<(), ExportError> {
    //!     let input = exporter::input(&req, &supported())?;
    //!     let mut out = exporter::Output::new();
    //!     for character in &input.characters {
    //!         out.push_str(&character.name)?;
    //!         out.push(&[0])?;
    //!     }
    //!     out.finish()
    //! }
    //! ```
    wit_bindgen::generate!({
        path: "wit",
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
        /// An empty output.
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
    /// ```rust
    /// use sceneintruder_plugin_sdk::exporter;
    ///
    /// let kinds = &["scene", "interactions"];
    /// let formats = exporter::pairs(kinds, "txt", "Plain text", "text/plain; charset=utf-8", "txt");
    /// assert_eq!(formats.len(), 2);
    /// assert_eq!(formats[1].kind, "interactions");
    /// assert_eq!(formats[1].file_extension, "txt");
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
    /// ```rust
    /// use sceneintruder_plugin_sdk::exporter::{self, ExportError, ExportRequest, FormatInfo};
    ///
    /// fn supported() -> Vec<FormatInfo> {
    ///     let kinds = &["scene", "interactions"];
    ///     exporter::pairs(kinds, "txt", "Plain text", "text/plain; charset=utf-8", "txt")
    /// }
    ///
    /// fn render(req: ExportRequest) -> Result<(), ExportError> {
    ///     exporter::render_text(&req, &supported(), |kind, input| match kind {
    ///         "scene" => Some(format!("{}\n", input.scene.scene.title)),
    ///         _ => None,
    ///     })
    /// }
    ///
    /// // A pair this plugin does not declare fails before anything is rendered or written.
    /// let req = ExportRequest {
    ///     kind: "story".into(),
    ///     format: "txt".into(),
    ///     input_json: "{}".into(),
    /// };
    /// assert!(matches!(render(req), Err(ExportError::Unsupported(_))));
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

#[cfg(test)]
mod tests {
    /// [`crate::WIT_VERSION`] is the version of the package the bindings are generated from.
    #[test]
    fn wit_version_is_the_bound_package_version() {
        let wit = include_str!("../wit/plugin.wit");
        let declared = format!("package sceneintruder:plugin@{};", crate::WIT_VERSION);
        assert!(
            wit.lines().any(|line| line.trim() == declared),
            "wit/plugin.wit does not declare `{declared}`"
        );
    }
}
