//! The comic documents as stored under `<data_dir>/comics/scene_<id>/` and served by the
//! comic routes (spec comics-video §1.3–§1.8).
//!
//! The wire form is the reference's: fields marked "omit if empty" in the spec are left out
//! when empty (`skip_serializing_if`), nested optional objects are left out when absent, and
//! times are always present (the zero time `0001-01-01T00:00:00Z` when unset). Like the
//! reference, input may carry `null` for any field (it reads as empty) and unknown fields
//! are ignored. Arrays the reference writes as `null` when unset (`frames`) are written as
//! `[]`; `null` is still accepted on input.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The zero time as the reference writes it (Go's zero `time.Time`).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// `prompt_sources.template_version` of prompts written by step 2 (§1.4).
pub const FRAME_PROMPT_TEMPLATE_VERSION: &str = "comic_frame_prompt_v2";
/// `template_hint` of every frame image signature (§1.7).
pub const RESUME_SIGNATURE_HINT: &str = "resume_signature_v1";
/// Most call metrics kept in `metrics.json.prompts` (the reference appends forever, §1.8).
pub const MAX_PROMPT_METRICS: usize = 48;

/// `null` reads as the type's empty value, like Go's decoder.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A moment in RFC 3339, kept exactly as written (`10:20:01.5+08:00` stays so) so documents
/// written by the reference round-trip unchanged. Input must parse as RFC 3339; `null`
/// or a missing field is the zero time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    /// Now, in the server's local offset with Go's RFC3339Nano layout.
    pub fn now() -> Self {
        Timestamp(crate::time::rfc3339_nano_local())
    }

    /// The zero time, `0001-01-01T00:00:00Z`.
    pub fn zero() -> Self {
        Timestamp(ZERO_TIME.to_string())
    }

    /// `text` when it is an RFC 3339 moment.
    pub fn parse(text: &str) -> Option<Self> {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|_| Timestamp(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is Go's zero time (in any offset), which reads as "unset".
    pub fn is_zero(&self) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.0)
            .map(|t| t.timestamp() == -62_135_596_800 && t.timestamp_subsec_nanos() == 0)
            .unwrap_or(true)
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::zero()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Timestamp::zero()),
            Some(text) => Timestamp::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid RFC 3339 time: {}",
                    crate::domain::template::prefix(&text, 64)
                ))
            }),
        }
    }
}

/// `analysis.json`: the storyboard of step 1 (§1.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicBreakdown {
    #[serde(default, deserialize_with = "nullable")]
    pub scene_id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub language: String,
    #[serde(default, deserialize_with = "nullable")]
    pub target_frames: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub frames: Vec<ComicFramePlan>,
    /// Never set by the service.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub model: String,
    #[serde(default)]
    pub generated_at: Timestamp,
}

/// One planned frame of a [`ComicBreakdown`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicFramePlan {
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub order: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub story_node_ids: Vec<String>,
}

/// `prompts/<frameID>.json`: the image prompt of one frame, step 2 (§1.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicFramePrompt {
    #[serde(default, deserialize_with = "nullable")]
    pub frame_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub prompt: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub negative_prompt: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub style: String,
    /// Vision model key (routes to a vision provider).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub model: String,
    /// Free-form; the recognised keys are read by `rules::VisionParams`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Map::is_empty"
    )]
    pub model_params: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_sources: Option<ComicPromptSources>,
    // The five per-frame video fields the reference's video service reads (§1.4 quirk):
    // only present when a client wrote them.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub video_prompt: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub camera_motion: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub narration: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub music_cue: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub sfx: String,
}

/// Provenance of a generated prompt (§1.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicPromptSources {
    #[serde(default, deserialize_with = "nullable")]
    pub scene_id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub node_ids: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conversation_ids: Vec<String>,
    /// Lowercase hex SHA-256 of each used conversation text.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub content_hashes: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub truncated: bool,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub continuity_mode: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub frame_anchor: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub template_version: String,
    #[serde(default)]
    pub generated_at: Timestamp,
}

/// `key_elements.json`: recurring characters, objects, locations and style tags, step 3
/// (§1.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicKeyElements {
    #[serde(default, deserialize_with = "nullable")]
    pub scene_id: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub characters: Vec<ComicKeyElement>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub objects: Vec<ComicKeyElement>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub locations: Vec<ComicKeyElement>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub style_tags: Vec<String>,
    #[serde(default)]
    pub generated_at: Timestamp,
}

/// One character, object or location of [`ComicKeyElements`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicKeyElement {
    #[serde(default, deserialize_with = "nullable")]
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
}

/// `references/index.json`: the uploaded reference images, step 4 (§1.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicReferenceIndex {
    #[serde(default, deserialize_with = "nullable")]
    pub scene_id: String,
    /// Element id → its image; never omitted (`{}` when empty, `null` read as empty).
    #[serde(default, deserialize_with = "nullable")]
    pub references: BTreeMap<String, ComicReferenceMeta>,
    #[serde(default)]
    pub updated_at: Timestamp,
}

/// One uploaded reference image (§1.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicReferenceMeta {
    #[serde(default, deserialize_with = "nullable")]
    pub element_id: String,
    /// `<elementID><ext>` inside `references/`.
    #[serde(default, deserialize_with = "nullable")]
    pub file_name: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub content_type: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub size_bytes: i64,
    #[serde(default)]
    pub uploaded_at: Timestamp,
}

/// `images/<frameID>.meta.json`: what a frame image was drawn from (§1.7, §4.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicFrameImageSignature {
    #[serde(default, deserialize_with = "nullable")]
    pub frame_id: String,
    /// Lowercase hex SHA-256 (`rules::resume_signature`).
    #[serde(default, deserialize_with = "nullable")]
    pub signature: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub prompt: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub style: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub model: String,
    #[serde(default)]
    pub generated_at: Timestamp,
    /// Always [`RESUME_SIGNATURE_HINT`] when written by the service.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub template_hint: String,
}

/// `metrics.json`: the LLM calls of steps 1–3 (§1.8).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComicMetrics {
    #[serde(default, deserialize_with = "nullable")]
    pub scene_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<CallMetrics>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub prompts: Vec<CallMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_elements: Option<CallMetrics>,
    #[serde(default)]
    pub updated_at: Timestamp,
}

impl ComicMetrics {
    /// Appends the metrics of one prompt call, keeping the last [`MAX_PROMPT_METRICS`]
    /// (the reference's array grows without bound across re-runs).
    pub fn push_prompt(&mut self, call: CallMetrics) {
        self.prompts.push(call);
        if self.prompts.len() > MAX_PROMPT_METRICS {
            let extra = self.prompts.len() - MAX_PROMPT_METRICS;
            self.prompts.drain(..extra);
        }
    }
}

/// Token usage and latency of one LLM call (§1.8).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMetrics {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub provider: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub model: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub tokens_used: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub prompt_tokens: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub output_tokens: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_zero"
    )]
    pub duration_ms: i64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "is_false"
    )]
    pub cached: bool,
    #[serde(default)]
    pub generated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    /// Parsing `text` as `T` and writing it back gives the same JSON value.
    fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).expect("parses");
        let written = serde_json::to_value(&parsed).expect("serialises");
        let original: Value = serde_json::from_str(text).expect("valid JSON");
        assert_eq!(written, original);
        parsed
    }

    #[test]
    fn breakdown_example_round_trips() {
        let b: ComicBreakdown = round_trip(
            r#"{
  "scene_id": "scene_1717171717171717171",
  "language": "en",
  "target_frames": 6,
  "frames": [
    { "id": "frame_1", "order": 1, "description": "A detective pushes open the rusted gate of an abandoned train station at dusk.", "story_node_ids": ["source_text"] },
    { "id": "frame_2", "order": 2, "description": "Inside, dust swirls under a broken clock frozen at 3:17." }
  ],
  "generated_at": "2025-06-01T10:15:30.123456789+08:00"
}"#,
        );
        assert_eq!(b.frames.len(), 2);
        assert_eq!(b.frames[1].story_node_ids, Vec::<String>::new());
        assert_eq!(
            b.generated_at.as_str(),
            "2025-06-01T10:15:30.123456789+08:00"
        );
        // Field order is the table's.
        let compact = serde_json::to_string(&ComicBreakdown {
            scene_id: "s".into(),
            target_frames: 4,
            ..ComicBreakdown::default()
        })
        .expect("serialises");
        assert_eq!(
            compact,
            r#"{"scene_id":"s","target_frames":4,"frames":[],"generated_at":"0001-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn frame_prompt_example_round_trips() {
        let p: ComicFramePrompt = round_trip(
            r#"{
  "frame_id": "frame_1",
  "prompt": "noir style, a trench-coated detective pushing open a rusted iron gate of an abandoned train station at dusk, low angle, long shadows, muted teal and amber palette",
  "negative_prompt": "blurry, watermark, text, logo",
  "style": "noir",
  "model": "gpt-image-1.5",
  "model_params": { "seed": 4242, "use_prev_frame_reference": false },
  "prompt_sources": {
    "scene_id": "scene_1717171717171717171",
    "node_ids": ["node_3"],
    "conversation_ids": ["conv_1717171800000000000"],
    "content_hashes": ["9f2c0d7b5e..."],
    "continuity_mode": "strict",
    "frame_anchor": "characters=Detective Lin | style_tags=noir, rain",
    "template_version": "comic_frame_prompt_v2",
    "generated_at": "2025-06-01T10:20:01.5+08:00"
  }
}"#,
        );
        assert_eq!(p.model_params.get("seed"), Some(&json!(4242)));
        let sources = p.prompt_sources.expect("sources");
        assert!(!sources.truncated);
        assert_eq!(sources.generated_at.as_str(), "2025-06-01T10:20:01.5+08:00");
    }

    #[test]
    fn frame_prompt_video_fields_round_trip_and_empty_ones_are_omitted() {
        let p: ComicFramePrompt = round_trip(
            r#"{"frame_id":"frame_2","prompt":"p","video_prompt":"slow push in","camera_motion":"dolly","narration":"It was late.","music_cue":"low strings","sfx":"rain"}"#,
        );
        assert_eq!(p.camera_motion, "dolly");
        let empty = serde_json::to_value(ComicFramePrompt::default()).expect("serialises");
        assert_eq!(empty, json!({"frame_id": "", "prompt": ""}));
        // Go accepts null anywhere; it reads as empty.
        let nulls: ComicFramePrompt = serde_json::from_str(
            r#"{"frame_id":"f","prompt":null,"model_params":null,"prompt_sources":null,"sfx":null}"#,
        )
        .expect("parses");
        assert_eq!(
            serde_json::to_value(nulls).expect("serialises"),
            json!({"frame_id": "f", "prompt": ""})
        );
        let sources = serde_json::to_value(ComicPromptSources::default()).expect("serialises");
        assert_eq!(
            sources,
            json!({"scene_id": "", "generated_at": "0001-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn model_params_keep_their_values_in_key_order() {
        let p: ComicFramePrompt = serde_json::from_str(
            r#"{"frame_id":"f","prompt":"p","model_params":{"steps":"30","cfg_scale":7.5,"tiling":true,"nested":{"b":1,"a":[1,2]}}}"#,
        )
        .expect("parses");
        let keys: Vec<&str> = p.model_params.keys().map(String::as_str).collect();
        assert_eq!(keys, ["cfg_scale", "nested", "steps", "tiling"]);
        assert_eq!(p.model_params.get("steps"), Some(&json!("30")));
    }

    #[test]
    fn key_elements_example_round_trips() {
        let k: ComicKeyElements = round_trip(
            r#"{
  "scene_id": "scene_1717171717171717171",
  "characters": [ { "id": "char_detective_lin", "name": "Detective Lin", "description": "Tall, grey trench coat, scar over left eyebrow" } ],
  "objects": [ { "id": "obj_broken_clock", "name": "broken clock", "description": "Station clock stopped at 3:17" } ],
  "locations": [ { "id": "loc_abandoned_station", "name": "abandoned station" } ],
  "style_tags": ["noir", "rain", "high contrast"],
  "generated_at": "2025-06-01T10:25:44.1+08:00"
}"#,
        );
        assert_eq!(k.locations[0].description, "");
        let empty = serde_json::to_value(ComicKeyElements::default()).expect("serialises");
        assert_eq!(
            empty,
            json!({"scene_id": "", "generated_at": "0001-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn reference_index_example_round_trips_and_null_references_read_as_empty() {
        let idx: ComicReferenceIndex = round_trip(
            r#"{
  "scene_id": "scene_1717171717171717171",
  "references": {
    "char_detective_lin": {
      "element_id": "char_detective_lin",
      "file_name": "char_detective_lin.png",
      "content_type": "image/png",
      "size_bytes": 482113,
      "uploaded_at": "2025-06-01T10:30:00.2+08:00"
    }
  },
  "updated_at": "2025-06-01T10:30:00.2+08:00"
}"#,
        );
        assert_eq!(idx.references["char_detective_lin"].size_bytes, 482_113);
        for text in [
            r#"{"scene_id":"s","references":null,"updated_at":"2025-06-01T10:30:00+08:00"}"#,
            r#"{"scene_id":"s","updated_at":"2025-06-01T10:30:00+08:00"}"#,
        ] {
            let idx: ComicReferenceIndex = serde_json::from_str(text).expect("parses");
            assert_eq!(
                serde_json::to_value(idx).expect("serialises"),
                json!({"scene_id": "s", "references": {}, "updated_at": "2025-06-01T10:30:00+08:00"})
            );
        }
        let meta = serde_json::to_value(ComicReferenceMeta::default()).expect("serialises");
        assert_eq!(
            meta,
            json!({"element_id": "", "file_name": "", "uploaded_at": ZERO_TIME})
        );
    }

    #[test]
    fn image_signature_example_round_trips() {
        let s: ComicFrameImageSignature = round_trip(
            r#"{
  "frame_id": "frame_1",
  "signature": "5d1f0a9be27c4c3e9b0f7f0d6c1e2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b",
  "prompt": "noir style, a trench-coated detective pushing open a rusted iron gate ...",
  "style": "noir",
  "model": "gpt-image-1.5",
  "generated_at": "2025-06-01T10:41:07.2+08:00",
  "template_hint": "resume_signature_v1"
}"#,
        );
        assert_eq!(s.template_hint, RESUME_SIGNATURE_HINT);
        let empty = serde_json::to_value(ComicFrameImageSignature::default()).expect("serialises");
        assert_eq!(
            empty,
            json!({"frame_id": "", "signature": "", "generated_at": ZERO_TIME})
        );
    }

    #[test]
    fn metrics_example_round_trips() {
        let m: ComicMetrics = round_trip(
            r#"{
  "scene_id": "scene_1717171717171717171",
  "analysis": { "provider": "openai", "model": "gpt-4o", "tokens_used": 1830, "prompt_tokens": 1402, "output_tokens": 428, "duration_ms": 6120, "generated_at": "2025-06-01T10:15:30+08:00" },
  "prompts": [ { "provider": "openai", "model": "gpt-4o", "tokens_used": 960, "duration_ms": 3300, "generated_at": "2025-06-01T10:20:01+08:00" } ],
  "updated_at": "2025-06-01T10:25:44+08:00"
}"#,
        );
        assert!(m.key_elements.is_none());
        let cached: CallMetrics =
            round_trip(r#"{"cached":true,"generated_at":"2025-06-01T10:20:01+08:00"}"#);
        assert!(cached.cached);
        assert_eq!(
            serde_json::to_value(ComicMetrics::default()).expect("serialises"),
            json!({"scene_id": "", "updated_at": ZERO_TIME})
        );
    }

    #[test]
    fn prompt_metrics_are_capped() {
        let mut m = ComicMetrics::default();
        for i in 0..(MAX_PROMPT_METRICS as i64 + 5) {
            m.push_prompt(CallMetrics {
                tokens_used: i,
                ..CallMetrics::default()
            });
        }
        assert_eq!(m.prompts.len(), MAX_PROMPT_METRICS);
        assert_eq!(m.prompts[0].tokens_used, 5);
    }

    #[test]
    fn times_must_be_rfc3339_and_zero_reads_as_unset() {
        assert!(serde_json::from_str::<ComicBreakdown>(r#"{"generated_at":"yesterday"}"#).is_err());
        assert!(serde_json::from_str::<ComicBreakdown>(r#"{"generated_at":5}"#).is_err());
        let b: ComicBreakdown = serde_json::from_str(r#"{"generated_at":null}"#).expect("parses");
        assert!(b.generated_at.is_zero());
        assert!(Timestamp::zero().is_zero());
        assert!(
            Timestamp::parse("0001-01-01T08:00:00+08:00")
                .expect("rfc3339")
                .is_zero()
        );
        assert!(
            !Timestamp::parse("2025-06-01T10:15:30+08:00")
                .expect("rfc3339")
                .is_zero()
        );
        assert!(!Timestamp::now().is_zero());
        assert!(Timestamp::parse("2025-06-01 10:15").is_none());
    }

    #[test]
    fn wrong_types_are_rejected_like_the_reference() {
        assert!(serde_json::from_str::<ComicBreakdown>(r#"{"target_frames":"6"}"#).is_err());
        assert!(serde_json::from_str::<ComicBreakdown>(r#"{"target_frames":6.5}"#).is_err());
        assert!(serde_json::from_str::<ComicFramePrompt>(r#"{"model_params":[1]}"#).is_err());
    }
}
