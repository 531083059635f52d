//! The comic workflow (issue 14, spec comics-video §1–§5): storyboard analysis, per-frame
//! image prompts, key elements, reference images and frame images of a scene.
//!
//! * [`model`]: the persisted documents (`analysis.json`, `prompts/<frame>.json`,
//!   `key_elements.json`, `references/index.json`, `images/<frame>.meta.json`,
//!   `metrics.json`) with the reference's wire JSON, "omit if empty" rules included.
//! * [`rules`]: the pure rules the jobs and routes apply: analysis mode and frame count,
//!   storyboard normalisation, path-safe ids, style application, negative prompts, vision
//!   parameters, seeds, reference selection, resume signatures, key element ids, failure
//!   texts, grounding text and reference image sniffing.
//!
//! Nothing here does I/O: the storage layer, the jobs and the routes build on it. Every
//! loop over model output or client input has a cap, and every text kept from them is cut
//! on a character boundary.

// Routes and jobs land next; until they use this module, its items are not reachable from
// `main`, so the dead-code lint would flag all of it.
#![allow(dead_code)]

pub mod model;
pub mod rules;
