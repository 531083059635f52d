//! Host-side bindings for the WIT worlds in `wit/plugin.wit`.
//!
//! The `llm-provider` world generates the shared imports (`http`, `log`, `config`, `types`);
//! the other worlds reuse them through `with`, so each host trait is implemented once.

pub mod llm {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "llm-provider",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sceneintruder:plugin/http.body-stream": crate::http::BodyStream,
        },
    });
}

pub mod vision {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "vision-provider",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sceneintruder:plugin/http": super::llm::sceneintruder::plugin::http,
            "sceneintruder:plugin/log": super::llm::sceneintruder::plugin::log,
            "sceneintruder:plugin/config": super::llm::sceneintruder::plugin::config,
            "sceneintruder:plugin/types": super::llm::sceneintruder::plugin::types,
        },
    });
}

pub mod video {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "video-provider",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sceneintruder:plugin/http": super::llm::sceneintruder::plugin::http,
            "sceneintruder:plugin/log": super::llm::sceneintruder::plugin::log,
            "sceneintruder:plugin/config": super::llm::sceneintruder::plugin::config,
            "sceneintruder:plugin/types": super::llm::sceneintruder::plugin::types,
        },
    });
}

pub mod exporter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "exporter",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sceneintruder:plugin/log": super::llm::sceneintruder::plugin::log,
            "sceneintruder:plugin/config": super::llm::sceneintruder::plugin::config,
        },
    });
}

/// Exporters built against WIT 0.1.0 / 0.1.1 (`document-export`).
pub mod document_exporter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "document-exporter",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "sceneintruder:plugin/log": super::llm::sceneintruder::plugin::log,
            "sceneintruder:plugin/config": super::llm::sceneintruder::plugin::config,
        },
    });
}

pub use llm::sceneintruder::plugin::{config, http, log, types};
