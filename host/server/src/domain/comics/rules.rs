//! Pure rules of the comic workflow (spec comics-video §3.4–§3.12, §4, §5.4).
//!
//! Where the reference trusts model output or client input, these rules don't: the scene id
//! of a storyboard is always the path id, frame and element ids are path-safe and unique,
//! and every loop over model output or client input is capped.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use super::model::{
    ComicBreakdown, ComicFramePlan, ComicFramePrompt, ComicKeyElement, ComicKeyElements,
    ComicReferenceIndex, ComicReferenceMeta,
};
use crate::domain::limits::FIELD_CHARS;
use crate::domain::template::prefix;

/// Fewest frames of a storyboard.
pub const MIN_FRAMES: usize = 4;
/// Most frames of a storyboard.
pub const MAX_FRAMES: usize = 12;
/// Frames of a story-mode analysis started without a body (or with `{}`).
pub const STORY_DEFAULT_FRAMES: usize = 4;
/// Frames of a node or source-text analysis started without `target_frames`.
pub const NODE_DEFAULT_FRAMES: usize = 8;
/// The node label of a source-text analysis (§3.4, §5.1).
pub const SOURCE_TEXT_NODE: &str = "source_text";
/// Continuity mode of step 2 when the request names none (§3.7).
pub const DEFAULT_CONTINUITY_MODE: &str = "strict";
/// Longest frame or element id, in characters.
pub const ID_MAX: usize = 64;
/// Most key elements kept per category, and most style tags.
pub const MAX_ELEMENTS: usize = 64;
/// Most story node ids kept on one frame.
pub const MAX_NODE_IDS: usize = 32;
/// Longest frame description, prompt or element description kept from a model.
pub const TEXT_CHARS: usize = FIELD_CHARS;
/// Longest element name or style tag kept from a model.
pub const NAME_CHARS: usize = 200;
/// Longest style, model key, language, sampler or node id kept.
pub const SHORT_CHARS: usize = 128;
/// Cap of a grounding text, in Unicode scalar values (§5.4).
pub const GROUNDING_CHARS: usize = 20_000;
/// Cap of the error part of a frame failure text, in bytes (§4.7).
pub const FAILURE_BYTES: usize = 280;
/// Largest reference image upload, in bytes (§3.12).
pub const REFERENCE_MAX_BYTES: usize = 5 * 1024 * 1024;
/// Width and height of every comic frame request (§4.3).
pub const FRAME_SIZE: u32 = 512;
/// Denoising strength of a previous-frame reference when the prompt sets none (§3.16).
pub const PREV_FRAME_DENOISING: f64 = 0.35;
/// The negative prompt every frame starts from (§4.3).
pub const BASELINE_NEGATIVE: &str = "blurry, watermark, text, logo";
/// Added to the negative prompt of a non-comic style (§4.2).
pub const STYLE_GUARD: [&str; 6] = [
    "western comic",
    "comic book",
    "comic panel",
    "speech bubble",
    "word balloon",
    "halftone dots",
];
/// The known styles whose words are stripped when another style is requested (§4.1).
pub const STYLE_VOCABULARY: [&str; 38] = [
    "comic",
    "ink-wash",
    "cel-shaded",
    "line-art",
    "noir",
    "cinematic",
    "realistic",
    "oil-painting",
    "watercolor",
    "gouache",
    "pixel-art",
    "low-poly",
    "isometric",
    "3d-render",
    "clay",
    "papercut",
    "ukiyo-e",
    "sumi-e",
    "steampunk",
    "cyberpunk",
    "dieselpunk",
    "fantasy",
    "dark-fantasy",
    "sci-fi",
    "retro",
    "retro-futurism",
    "vaporwave",
    "minimal",
    "storybook",
    "chibi",
    "anime",
    "manga",
    "sketch",
    "charcoal",
    "pastel",
    "poster",
    "surreal",
    "expressionism",
];

/// Leading comic biases removed (once) from a prompt of a non-comic style (§4.1 step 1).
const LEADING_BIASES: [&str; 27] = [
    "comic style,",
    "comic style:",
    "comic style.",
    "comic style;",
    "in comic style,",
    "in comic style:",
    "in comic style.",
    "in comic style;",
    "comic panel of ",
    "a comic panel of ",
    "an comic panel of ",
    "comic illustration of ",
    "a comic illustration of ",
    "an comic illustration of ",
    "graphic novel style,",
    "graphic novel style:",
    "in graphic novel style,",
    "in graphic novel style:",
    "graphic novel panel of ",
    "a graphic novel panel of ",
    "western comic style,",
    "western comic style:",
    "in western comic style,",
    "in western comic style:",
    "manga panel of ",
    "a manga panel of ",
    "an manga panel of ",
];

/// Most rounds of style cleanup (§4.1 steps 1–3) until the prompt stops changing. One round
/// is the reference; more only happen when a removal exposes another conflicting mention,
/// and settle every real prompt (a fixpoint is what makes [`apply_style`] idempotent).
const STYLE_ROUNDS: usize = 8;

/// `text` cut to `max` characters (on a character boundary), owned.
fn cut(text: &str, max: usize) -> String {
    prefix(text, max).to_string()
}

/// The longest prefix of `text` of at most `max` bytes ending on a character boundary.
fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

// ---------------------------------------------------------------------------------------
// §3.4 analysis mode, frame count and normalisation

/// Where the storyboard of an analysis comes from (§3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisMode {
    /// The scene's story: header, intro, objective and the first story nodes.
    Story,
    /// The text of one story node, assembled from the conversation log.
    Node(String),
    /// Raw text given by the client (standalone comics); it becomes the scene's original text.
    SourceText(String),
}

impl AnalysisMode {
    /// The node label the storyboard prompt names (`source_text` in source-text mode), and
    /// the node every frame's `story_node_ids` is forced to in node mode.
    pub fn node_label(&self) -> Option<&str> {
        match self {
            AnalysisMode::Story => None,
            AnalysisMode::Node(id) => Some(id),
            AnalysisMode::SourceText(_) => Some(SOURCE_TEXT_NODE),
        }
    }
}

/// The mode and frame count of `POST …/comic/analysis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisPlan {
    pub mode: AnalysisMode,
    /// Already clamped to [`MIN_FRAMES`]..=[`MAX_FRAMES`].
    pub target_frames: usize,
}

/// Mode and frame count of an analysis request, exactly as the reference decides (§3.4):
///
/// | body | mode | frames |
/// |---|---|---|
/// | `source_text` non-blank | source text | `target_frames`, else 8 |
/// | `target_frames` present | node if `node_id` non-blank, else story | `target_frames` |
/// | `node_id` non-blank | node | 8 |
/// | nothing (`{}`, no body) | story | 4 |
///
/// The default differs by body shape (4 for `{}`, 8 as soon as `node_id` or `source_text`
/// is sent): a reference quirk (§10 item 6) kept for compatibility. A present
/// `target_frames` is always clamped ([`clamp_frames`]: 0 or less → 4). `node_id` and
/// `source_text` are trimmed; the node id is cut to [`SHORT_CHARS`] characters.
pub fn analysis_plan(target_frames: Option<i64>, node_id: &str, source_text: &str) -> AnalysisPlan {
    let source = source_text.trim();
    if !source.is_empty() {
        return AnalysisPlan {
            mode: AnalysisMode::SourceText(source.to_string()),
            target_frames: target_frames.map_or(NODE_DEFAULT_FRAMES, clamp_frames),
        };
    }
    let node = prefix(node_id.trim(), SHORT_CHARS).trim_end();
    let mode = if node.is_empty() {
        AnalysisMode::Story
    } else {
        AnalysisMode::Node(node.to_string())
    };
    let target_frames = match (target_frames, &mode) {
        (Some(n), _) => clamp_frames(n),
        (None, AnalysisMode::Node(_)) => NODE_DEFAULT_FRAMES,
        (None, _) => STORY_DEFAULT_FRAMES,
    };
    AnalysisPlan {
        mode,
        target_frames,
    }
}

/// A requested frame count clamped to 4..=12 (0 or less → 4).
pub fn clamp_frames(requested: i64) -> usize {
    usize::try_from(requested)
        .unwrap_or(MIN_FRAMES)
        .clamp(MIN_FRAMES, MAX_FRAMES)
}

/// `raw` as a path-safe id: trimmed, cut to [`ID_MAX`] characters, every character outside
/// `[A-Za-z0-9_-]` replaced by `_` (empty when `raw` is blank).
pub fn sanitise_frame_id(raw: &str) -> String {
    raw.trim()
        .chars()
        .take(ID_MAX)
        .map(|c| if frame_id_char(c) { c } else { '_' })
        .collect()
}

fn frame_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn element_id_char(c: char) -> bool {
    frame_id_char(c) || (!c.is_ascii() && c.is_alphanumeric())
}

/// Whether `id` may name a frame file (`prompts/<id>.json`, `images/<id>.png`): 1 to 64
/// characters of `[A-Za-z0-9_-]`. Rejects `..`, `/`, `\`, control characters, spaces.
pub fn valid_frame_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= ID_MAX && id.chars().all(frame_id_char)
}

/// Whether `id` may name a reference file (`references/<id>.png`): 1 to 64 characters of
/// `[A-Za-z0-9_-]` or Unicode letters and digits. The letters are allowed because §4.6 keeps
/// them in ids made from names (`char_侦探林`); they are never separators, dots or control
/// characters, so `..`, `/`, `\` and control characters are still rejected.
pub fn valid_element_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= ID_MAX && id.chars().all(element_id_char)
}

/// Whether `name` is a plain file name inside a folder: not blank, at most 128 characters,
/// no `/`, `\`, `..` or control characters (used for `file_name` read from a reference index,
/// which a hand-edited file could point anywhere).
pub fn safe_file_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= SHORT_CHARS
        && !name.contains("..")
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

/// `base` if unused, else `base_<k>` for the first free k ≥ `from`, cut so that the whole
/// stays within [`ID_MAX`] characters; the result is marked used.
fn unique_id(base: String, from: usize, used: &mut HashSet<String>) -> String {
    if !used.contains(&base) {
        used.insert(base.clone());
        return base;
    }
    // At most `used.len()` candidates are taken, so one of these is free.
    for k in from..=from + used.len() {
        let suffix = format!("_{k}");
        let stem = prefix(&base, ID_MAX.saturating_sub(suffix.len()));
        let candidate = format!("{stem}{suffix}");
        if !used.contains(&candidate) {
            used.insert(candidate.clone());
            return candidate;
        }
    }
    base
}

/// Post-processing of a storyboard from the model, also applied in memory when a later step
/// reads `analysis.json` (§3.4, §3.7):
///
/// * `scene_id` is always `scene_id` (the reference kept a model echo such as `"..."`);
/// * `target_frames` is the clamped `target` (the model's value is ignored);
/// * frames past it are dropped, missing ones appended as `{frame_<k>, k, ""}`;
/// * frame ids are made path-safe ([`sanitise_frame_id`]), blank ones become `frame_<k>`,
///   repeats get `_2`, `_3`… (the reference kept any id, so `../x` or two `frame_1` broke
///   later steps); an order ≤ 0 becomes k (1-based position);
/// * in node mode (`node_id` non-blank) every frame's `story_node_ids` is `[node_id]`;
///   otherwise they are trimmed, blanks dropped, at most [`MAX_NODE_IDS`] kept;
/// * texts are cut: descriptions to [`TEXT_CHARS`], language, model and node ids to
///   [`SHORT_CHARS`] characters.
///
/// `generated_at` is left to the caller (the analysis job sets it to now).
pub fn normalise_breakdown(
    breakdown: &mut ComicBreakdown,
    scene_id: &str,
    target: i64,
    node_id: Option<&str>,
) {
    let target = clamp_frames(target);
    breakdown.scene_id = scene_id.to_string();
    breakdown.target_frames = i64::try_from(target).unwrap_or(MIN_FRAMES as i64);
    breakdown.language = cut(&breakdown.language, SHORT_CHARS);
    breakdown.model = cut(&breakdown.model, SHORT_CHARS);
    breakdown.frames.truncate(target);
    breakdown
        .frames
        .resize_with(target, ComicFramePlan::default);
    let node = node_id
        .map(|n| prefix(n.trim(), SHORT_CHARS).trim_end())
        .filter(|n| !n.is_empty());
    let mut used = HashSet::with_capacity(target);
    for (i, frame) in breakdown.frames.iter_mut().enumerate() {
        let position = i + 1;
        let mut base = sanitise_frame_id(&frame.id);
        if base.is_empty() {
            base = format!("frame_{position}");
        }
        frame.id = unique_id(base, 2, &mut used);
        if frame.order <= 0 {
            frame.order = i64::try_from(position).unwrap_or(1);
        }
        if frame.description.len() > TEXT_CHARS {
            frame.description = cut(&frame.description, TEXT_CHARS);
        }
        frame.story_node_ids = match node {
            Some(node) => vec![node.to_string()],
            None => frame
                .story_node_ids
                .iter()
                .map(|id| prefix(id.trim(), SHORT_CHARS).trim_end())
                .filter(|id| !id.is_empty())
                .take(MAX_NODE_IDS)
                .map(str::to_string)
                .collect(),
        };
    }
}

// ---------------------------------------------------------------------------------------
// §3.7 per-frame prompt post-processing

/// Steps 4–6 of §3.7 on one prompt returned by the model for the analysis frame
/// `frame_id`: `frame_id` forced to the analysis frame id (the reference kept the model's,
/// which could differ from the file name); style applied ([`apply_style`]) with the
/// requested style, which also becomes `style`, else with the model's own style; `model`
/// defaulted to `default_model`. Texts are cut (prompt and negative prompt to
/// [`TEXT_CHARS`], style and model to [`SHORT_CHARS`] characters) and the five video fields
/// cleared (model output never fills them). `prompt_sources` is left to the caller.
pub fn finish_frame_prompt(
    prompt: &mut ComicFramePrompt,
    frame_id: &str,
    requested_style: &str,
    default_model: &str,
) {
    prompt.frame_id = frame_id.to_string();
    prompt.prompt = cut(prompt.prompt.trim(), TEXT_CHARS);
    prompt.negative_prompt = cut(prompt.negative_prompt.trim(), TEXT_CHARS);
    let requested = prefix(requested_style.trim(), SHORT_CHARS).trim_end();
    if !requested.is_empty() {
        prompt.style = requested.to_string();
    } else {
        prompt.style = cut(prompt.style.trim(), SHORT_CHARS);
    }
    if !prompt.style.is_empty() {
        prompt.prompt = apply_style(&prompt.prompt, &prompt.style);
    }
    prompt.model = cut(prompt.model.trim(), SHORT_CHARS);
    if prompt.model.is_empty() {
        prompt.model = cut(default_model.trim(), SHORT_CHARS);
    }
    prompt.video_prompt.clear();
    prompt.camera_motion.clear();
    prompt.narration.clear();
    prompt.music_cue.clear();
    prompt.sfx.clear();
}

/// The continuity anchor of step 2 (§3.7 step 1): `characters=<up to 3 names>` and
/// `style_tags=<up to 4 tags>` (each joined with `, `, the two parts with ` | `), or, when
/// the key elements give neither, `opening_frame=<first frame description>`; empty when
/// there is nothing.
pub fn frame_anchor(
    key_elements: Option<&ComicKeyElements>,
    first_frame_description: &str,
) -> String {
    let mut parts = Vec::with_capacity(2);
    if let Some(k) = key_elements {
        let names: Vec<&str> = k
            .characters
            .iter()
            .take(MAX_ELEMENTS)
            .map(|c| prefix(c.name.trim(), NAME_CHARS).trim_end())
            .filter(|n| !n.is_empty())
            .take(3)
            .collect();
        if !names.is_empty() {
            parts.push(format!("characters={}", names.join(", ")));
        }
        let tags: Vec<&str> = k
            .style_tags
            .iter()
            .take(MAX_ELEMENTS)
            .map(|t| prefix(t.trim(), NAME_CHARS).trim_end())
            .filter(|t| !t.is_empty())
            .take(4)
            .collect();
        if !tags.is_empty() {
            parts.push(format!("style_tags={}", tags.join(", ")));
        }
    }
    if !parts.is_empty() {
        return parts.join(" | ");
    }
    let first = prefix(first_frame_description.trim(), TEXT_CHARS).trim_end();
    if first.is_empty() {
        String::new()
    } else {
        format!("opening_frame={first}")
    }
}

// ---------------------------------------------------------------------------------------
// §4.1 style application

/// Whether `text[at..]` starts with the ASCII `literal`, ignoring ASCII case.
fn starts_with_ci(text: &[u8], at: usize, literal: &str) -> bool {
    let lit = literal.as_bytes();
    text.len() >= at + lit.len() && text[at..at + lit.len()].eq_ignore_ascii_case(lit)
}

/// `\w` of the reference's regular expressions (ASCII).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `\s` of the reference's regular expressions: `[\t\n\f\r ]`.
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn skip_spaces(text: &[u8], mut at: usize) -> usize {
    while at < text.len() && is_space(text[at]) {
        at += 1;
    }
    at
}

/// `[\s,:;.\-—]*` from `at`: the end of the run.
fn skip_trailing(text: &[u8], mut at: usize) -> usize {
    const DASH: &[u8] = "—".as_bytes();
    loop {
        if at < text.len() && (is_space(text[at]) || b",:;.-".contains(&text[at])) {
            at += 1;
        } else if text[at.min(text.len())..].starts_with(DASH) {
            at += DASH.len();
        } else {
            return at;
        }
    }
}

/// `\b` before a word character at `at`.
fn word_starts(text: &[u8], at: usize) -> bool {
    at == 0 || !is_word(text[at - 1])
}

/// `\b` after a word character ending before `at`.
fn word_ends(text: &[u8], at: usize) -> bool {
    at >= text.len() || !is_word(text[at])
}

/// `(?i)\b(?:in\s+)?<style>\s*(?:-|\s)?\s*style\b[\s,:;.\-—]*` at `at`: its end.
fn match_style_words(text: &[u8], at: usize, style: &str) -> Option<usize> {
    if !word_starts(text, at) {
        return None;
    }
    let after_style = |from: usize| -> Option<usize> {
        if !starts_with_ci(text, from, style) {
            return None;
        }
        let mut k = skip_spaces(text, from + style.len());
        if k < text.len() && text[k] == b'-' {
            k = skip_spaces(text, k + 1);
        }
        if !starts_with_ci(text, k, "style") || !word_ends(text, k + 5) {
            return None;
        }
        Some(skip_trailing(text, k + 5))
    };
    if starts_with_ci(text, at, "in") {
        let k = skip_spaces(text, at + 2);
        if k > at + 2
            && let Some(end) = after_style(k)
        {
            return Some(end);
        }
    }
    after_style(at)
}

/// `(?i)\bstyle\s*:\s*<style>\b[\s,:;.\-—]*` at `at`: its end.
fn match_style_label(text: &[u8], at: usize, style: &str) -> Option<usize> {
    if !word_starts(text, at) || !starts_with_ci(text, at, "style") {
        return None;
    }
    let k = skip_spaces(text, at + 5);
    if k >= text.len() || text[k] != b':' {
        return None;
    }
    let k = skip_spaces(text, k + 1);
    if !starts_with_ci(text, k, style) || !word_ends(text, k + style.len()) {
        return None;
    }
    Some(skip_trailing(text, k + style.len()))
}

/// Every match of `matcher`, scanning left to right without overlaps, replaced by a space.
fn replace_matches(text: &str, matcher: impl Fn(&[u8], usize) -> Option<usize>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut at, mut copied) = (0, 0);
    while at < bytes.len() {
        // Matches start on an ASCII byte and end after ASCII or `—`: always char boundaries.
        if let Some(end) = matcher(bytes, at) {
            out.push_str(&text[copied..at]);
            out.push(' ');
            at = end;
            copied = end;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Strips the first of `prefixes` `text` starts with (ASCII case ignored), then trims.
fn strip_first_prefix<'a>(text: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes
        .iter()
        .find(|p| starts_with_ci(text.as_bytes(), 0, p))
        .map(|p| text[p.len()..].trim())
}

/// Steps 1–3 of §4.1, once.
fn style_cleanup_round(prompt: &str, style: &str) -> String {
    let mut text = prompt.to_string();
    if !style.eq_ignore_ascii_case("comic")
        && let Some(rest) = strip_first_prefix(&text, &LEADING_BIASES)
    {
        text = rest.to_string();
    }
    for known in STYLE_VOCABULARY {
        if known.eq_ignore_ascii_case(style) {
            continue;
        }
        text = replace_matches(&text, |b, at| match_style_words(b, at, known));
        text = replace_matches(&text, |b, at| match_style_label(b, at, known));
        let prefixes = [
            format!("{known} style,"),
            format!("{known} style:"),
            format!("{known} style."),
            format!("{known} style;"),
            format!("{known} style -"),
            format!("{known} style —"),
            format!("in {known} style,"),
            format!("in {known} style:"),
            format!("in {known} style."),
            format!("in {known} style;"),
            format!("style: {known},"),
            format!("style: {known}."),
            format!("style:{known},"),
            format!("style:{known}."),
        ];
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        if let Some(rest) = strip_first_prefix(&text, &prefixes) {
            text = rest.to_string();
        }
    }
    // Runs of `\s` become one space; then trimmed.
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if c.is_ascii() && is_space(c as u8) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out.trim().to_string()
}

/// Steps 1–3 of §4.1 repeated until the prompt stops changing (at most [`STYLE_ROUNDS`]).
fn style_cleanup(prompt: &str, style: &str) -> String {
    let mut text = prompt.trim().to_string();
    for _ in 0..STYLE_ROUNDS {
        let next = style_cleanup_round(&text, style);
        if next == text {
            break;
        }
        text = next;
    }
    text
}

/// This rule's own `<style> style` prefix at the start of `text` (ASCII case ignored), as
/// written there, and the trimmed rest after its comma (empty when nothing follows).
fn split_own_prefix<'a>(text: &'a str, own: &str) -> Option<(&'a str, &'a str)> {
    // Bytes compare exactly outside ASCII, so a match ends where `own` ends (after `e`).
    if !starts_with_ci(text.as_bytes(), 0, own) {
        return None;
    }
    let (head, rest) = text.split_at(own.len());
    if rest.is_empty() {
        Some((head, ""))
    } else {
        rest.strip_prefix(',').map(|rest| (head, rest.trim()))
    }
}

fn with_own_prefix(own: &str, rest: &str) -> String {
    if rest.is_empty() {
        own.to_string()
    } else {
        format!("{own}, {rest}")
    }
}

/// The prompt rewritten for `style` (§4.1), both trimmed; unchanged when either is empty:
///
/// 1. for a style other than `comic`, one leading comic bias (`comic style,`, `a comic
///    panel of `, `in graphic novel style:`…) is removed;
/// 2. mentions of every other known style ([`STYLE_VOCABULARY`]) are removed anywhere
///    (`noir style`, `in watercolor-style`, `style: anime`, with the punctuation after
///    them), then one leading `<S> style,` / `style: <S>,` form;
/// 3. whitespace is collapsed;
/// 4. the result is returned when it mentions the style, else `<style> style, <result>`
///    (`<style> style` when nothing is left).
///
/// Beyond the reference, so that applying it twice equals applying it once: steps 1–3 are
/// repeated until nothing changes (at most 8 rounds; one for every ordinary prompt), and a
/// prompt that already starts with this rule's own `<style> style,` keeps it while the rest
/// is cleaned (the reference could strip words out of a style such as `dark-noir` on the
/// second pass). Callers bound the prompt's length (`finish_frame_prompt` cuts model output).
pub fn apply_style(prompt: &str, style: &str) -> String {
    let prompt = prompt.trim();
    let style = style.trim();
    if prompt.is_empty() || style.is_empty() {
        return prompt.to_string();
    }
    let own = format!("{style} style");
    if let Some((head, rest)) = split_own_prefix(prompt, &own) {
        return with_own_prefix(head, &style_cleanup(rest, style));
    }
    let cleaned = style_cleanup(prompt, style);
    if let Some((head, rest)) = split_own_prefix(&cleaned, &own) {
        return with_own_prefix(head, &style_cleanup(rest, style));
    }
    if cleaned.to_lowercase().contains(&style.to_lowercase()) {
        return cleaned;
    }
    with_own_prefix(&own, &cleaned)
}

// ---------------------------------------------------------------------------------------
// §4.2, §4.3 negative prompt and vision parameters

/// The negative prompt guarded against comic looks for a style other than `comic` (§4.2):
/// each of [`STYLE_GUARD`] not already in it (case ignored) is appended with `, `. Trimmed;
/// unchanged for an empty or `comic` style.
pub fn guard_negative(negative: &str, style: &str) -> String {
    let negative = negative.trim();
    let style = style.trim();
    if style.is_empty() || style.eq_ignore_ascii_case("comic") {
        return negative.to_string();
    }
    let lower = negative.to_lowercase();
    let missing: Vec<&str> = STYLE_GUARD
        .iter()
        .copied()
        .filter(|token| !lower.contains(token))
        .collect();
    if missing.is_empty() {
        negative.to_string()
    } else if negative.is_empty() {
        missing.join(", ")
    } else {
        format!("{negative}, {}", missing.join(", "))
    }
}

/// The negative prompt with the baseline (§4.3): the baseline when empty, `<baseline>,
/// <negative>` when it does not contain the whole baseline (case ignored), else unchanged
/// (trimmed).
pub fn baseline_negative(negative: &str) -> String {
    let negative = negative.trim();
    if negative.is_empty() {
        BASELINE_NEGATIVE.to_string()
    } else if negative.to_lowercase().contains(BASELINE_NEGATIVE) {
        negative.to_string()
    } else {
        format!("{BASELINE_NEGATIVE}, {negative}")
    }
}

/// The vision tunables a frame's `model_params` sets (§4.3), zero/false/empty when absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisionParams {
    pub steps: i64,
    pub cfg_scale: f64,
    pub sampler: String,
    pub seed: i64,
    pub clip_skip: i64,
    pub eta: f64,
    pub tiling: bool,
    pub denoising_strength: f64,
    pub stylize: i64,
    pub chaos: i64,
    pub prompt_extend: bool,
    /// Use the previous frame's image as the reference (§3.16 step 6).
    pub use_prev_frame_reference: bool,
    /// Denoising strength with the previous frame's image when `denoising_strength` is 0.
    pub prev_frame_denoising_strength: f64,
}

impl VisionParams {
    /// The recognised keys of `params` (§4.3). Numbers, numeric strings and booleans are
    /// read like the reference: an integer from a number truncates, from a string parses as
    /// an integer, else as a float (truncated); a bool is `true`, a non-zero number or one
    /// of `1/true/yes/on` (trimmed, case ignored); anything unparsable is 0 / false / "".
    /// Beyond the reference, a float that is not finite reads as 0 and the sampler is cut
    /// to [`SHORT_CHARS`] characters.
    pub fn from_model_params(params: &Map<String, Value>) -> Self {
        let int = |key: &str| params.get(key).map_or(0, param_int);
        let float = |key: &str| params.get(key).map_or(0.0, param_float);
        let flag = |key: &str| params.get(key).is_some_and(param_bool);
        VisionParams {
            steps: int("steps"),
            cfg_scale: float("cfg_scale"),
            sampler: match params.get("sampler") {
                Some(Value::String(s)) => cut(s.trim(), SHORT_CHARS),
                _ => String::new(),
            },
            seed: int("seed"),
            clip_skip: int("clip_skip"),
            eta: float("eta"),
            tiling: flag("tiling"),
            denoising_strength: float("denoising_strength"),
            stylize: int("stylize"),
            chaos: int("chaos"),
            prompt_extend: flag("prompt_extend"),
            use_prev_frame_reference: flag("use_prev_frame_reference"),
            prev_frame_denoising_strength: float("prev_frame_denoising_strength"),
        }
    }
}

fn finite(f: f64) -> f64 {
    if f.is_finite() { f } else { 0.0 }
}

/// A float truncated to an integer (saturating; NaN is 0).
fn truncate(f: f64) -> i64 {
    f as i64
}

fn param_int(value: &Value) -> i64 {
    match value {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| truncate(finite(n.as_f64().unwrap_or(0.0)))),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| truncate(finite(f))))
                .unwrap_or(0)
        }
        _ => 0,
    }
}

fn param_float(value: &Value) -> f64 {
    match value {
        Value::Number(n) => finite(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => finite(s.trim().parse::<f64>().unwrap_or(0.0)),
        _ => 0.0,
    }
}

fn param_bool(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            ["1", "true", "yes", "on"]
                .iter()
                .any(|t| s.eq_ignore_ascii_case(t))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// §4.4 seeds and reference images

/// The base seed of a full generation (§4.4): `unix_nanos mod 10000`, 1 when that is 0.
pub fn base_seed(unix_nanos: i64) -> i64 {
    match unix_nanos.rem_euclid(10_000) {
        0 => 1,
        n => n,
    }
}

/// The seed of frame `index` (0-based) in a full generation (§4.4): the prompt's non-zero
/// `model_params.seed`, else `base + 100 × index`. (A single-frame regeneration keeps the
/// prompt's seed, 0 meaning provider-random, and does not call this.)
pub fn frame_seed(base: i64, index: usize, params_seed: i64) -> i64 {
    if params_seed != 0 {
        return params_seed;
    }
    let step = i64::try_from(index).unwrap_or(i64::MAX).saturating_mul(100);
    base.saturating_add(step)
}

/// The uploaded reference of a frame (§4.4): the search text is the lowercased prompt plus,
/// when given and non-blank, a newline and the frame description; key elements are walked
/// characters → objects → locations and the first with an uploaded reference whose
/// lowercased name or id occurs in the search text wins; with no match, the smallest
/// element id of the index. `None` when the index is empty, or when the chosen entry's
/// `file_name` is blank or not a plain file name ([`safe_file_name`]: a hand-edited index
/// could point outside `references/`). Returns the element id and its entry.
pub fn pick_reference<'a>(
    key_elements: Option<&ComicKeyElements>,
    index: &'a ComicReferenceIndex,
    prompt: &str,
    description: Option<&str>,
) -> Option<(&'a str, &'a ComicReferenceMeta)> {
    if index.references.is_empty() {
        return None;
    }
    let mut search = prefix(prompt.trim(), TEXT_CHARS).to_string();
    if let Some(description) = description.map(str::trim).filter(|d| !d.is_empty()) {
        search.push('\n');
        search.push_str(prefix(description, TEXT_CHARS));
    }
    let search = search.trim().to_lowercase();
    let matches = |element: &ComicKeyElement| {
        let id = element.id.trim();
        if id.is_empty() || !index.references.contains_key(id) {
            return false;
        }
        let name = prefix(element.name.trim(), NAME_CHARS).to_lowercase();
        (!name.is_empty() && search.contains(&name)) || search.contains(&id.to_lowercase())
    };
    let matched = key_elements.and_then(|k| {
        [&k.characters, &k.objects, &k.locations]
            .into_iter()
            .flat_map(|list| list.iter().take(MAX_ELEMENTS))
            .find(|e| matches(e))
            .map(|e| e.id.trim())
    });
    let (id, meta) = match matched.and_then(|id| index.references.get_key_value(id)) {
        Some(found) => found,
        None => index.references.iter().next()?,
    };
    let file = meta.file_name.trim();
    if file.is_empty() || !safe_file_name(file) {
        return None;
    }
    Some((id.as_str(), meta))
}

// ---------------------------------------------------------------------------------------
// §4.5 resume signature

/// The resume signature of a frame (§4.5): lowercase hex SHA-256 of the compact JSON
/// `{"prompt":…,"negative_prompt":…,"style":…,"model":…,"model_params":{…}}` as the
/// reference's Go encoder writes it: values trimmed, the last four keys left out when
/// empty, `model_params` keys sorted (nested objects too), numbers written as Go writes a
/// float64, and `<`, `>`, `&`, U+2028, U+2029 escaped as `\u003c`… `prompt` is the
/// style-applied prompt, `negative` the stored one (before baseline and guard).
pub fn resume_signature(
    prompt: &str,
    negative: &str,
    style: &str,
    model: &str,
    model_params: &Map<String, Value>,
) -> String {
    sha256_hex(&signature_json(
        prompt,
        negative,
        style,
        model,
        model_params,
    ))
}

fn signature_json(
    prompt: &str,
    negative: &str,
    style: &str,
    model: &str,
    model_params: &Map<String, Value>,
) -> String {
    let mut out = String::from("{\"prompt\":");
    go_string(&mut out, prompt.trim());
    for (key, value) in [
        ("negative_prompt", negative.trim()),
        ("style", style.trim()),
        ("model", model.trim()),
    ] {
        if !value.is_empty() {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            go_string(&mut out, value);
        }
    }
    if !model_params.is_empty() {
        out.push_str(",\"model_params\":");
        go_object(&mut out, model_params);
    }
    out.push('}');
    out
}

/// A JSON string as Go's encoder writes it (HTML-safe).
fn go_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn go_object(out: &mut String, map: &Map<String, Value>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_string(out, key);
        out.push(':');
        if let Some(value) = map.get(key) {
            go_value(out, value);
        }
    }
    out.push('}');
}

fn go_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_number(n)),
        Value::String(s) => go_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => go_object(out, map),
    }
}

/// A JSON number as Go writes the float64 its decoder made of it: shortest digits, plain
/// notation for 1e-6 ≤ |x| < 1e21, else `1e+21` / `1e-7` exponents.
fn go_number(n: &Number) -> String {
    let f = n.as_f64().unwrap_or(0.0);
    if !f.is_finite() {
        return "0".to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e3`.
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let sign = if exponent < 0 { '-' } else { '+' };
        let digits = exponent.unsigned_abs();
        return if exponent < 0 {
            format!("{mantissa}e{sign}{digits}")
        } else {
            format!("{mantissa}e{sign}{digits:02}")
        };
    }
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // Digits before the decimal point.
    let point = exponent + 1;
    let len = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let mut out = String::with_capacity(digits.len() + 24);
    if negative {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..point.unsigned_abs() {
            out.push('0');
        }
        out.push_str(&digits);
    } else if point >= len {
        out.push_str(&digits);
        for _ in 0..(point - len) {
            out.push('0');
        }
    } else {
        let split = usize::try_from(point).unwrap_or(digits.len());
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    }
    out
}

// ---------------------------------------------------------------------------------------
// §4.6 key element ids

/// A slug of `name` (§4.6): lowercased, Unicode letters and digits kept, every run of other
/// characters one `_`, leading and trailing `_` trimmed.
fn slug(name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in prefix(name.trim(), NAME_CHARS).chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            // Keep only the letters and digits of the lowercase form ('İ' → 'i').
            out.extend(c.to_lowercase().filter(|l| l.is_alphanumeric()));
        } else {
            gap = true;
        }
    }
    out
}

/// Ids of the key elements the model returned (§4.6), per category with the prefix
/// `char_` / `obj_` / `loc_`: the trimmed model id, else a slug of the name, else `item`;
/// the prefix prepended when missing; the k-th repeat of a base id `<base>_<k>`.
///
/// Beyond the reference: a model id is made path-safe first (characters outside
/// `[A-Za-z0-9_-]` and Unicode letters/digits become `_`), ids are cut to [`ID_MAX`]
/// characters, a `<base>_<k>` already taken moves on to the next k (the reference could
/// repeat an id), and at most [`MAX_ELEMENTS`] elements per category and style tags are
/// kept, names cut to [`NAME_CHARS`] and descriptions to [`TEXT_CHARS`] characters. Every
/// id passes [`valid_element_id`].
pub fn fill_element_ids(elements: &mut ComicKeyElements) {
    for (list, category) in [
        (&mut elements.characters, "char_"),
        (&mut elements.objects, "obj_"),
        (&mut elements.locations, "loc_"),
    ] {
        list.truncate(MAX_ELEMENTS);
        let mut used = HashSet::with_capacity(list.len());
        let mut repeats: BTreeMap<String, usize> = BTreeMap::new();
        for element in list.iter_mut() {
            element.name = cut(element.name.trim(), NAME_CHARS);
            element.description = cut(&element.description, TEXT_CHARS);
            let mut id: String = element
                .id
                .trim()
                .chars()
                .take(ID_MAX)
                .map(|c| if element_id_char(c) { c } else { '_' })
                .collect();
            if id.is_empty() {
                id = slug(&element.name);
            }
            if id.is_empty() {
                id = "item".to_string();
            }
            if !id.starts_with(category) {
                id = format!("{category}{id}");
            }
            let base = cut(&id, ID_MAX);
            let seen = repeats.entry(base.clone()).or_insert(0);
            *seen += 1;
            let from = (*seen).max(2);
            element.id = unique_id(base, from, &mut used);
        }
    }
    elements.style_tags.truncate(MAX_ELEMENTS);
    for tag in &mut elements.style_tags {
        if tag.len() > NAME_CHARS {
            *tag = cut(tag, NAME_CHARS);
        }
    }
}

// ---------------------------------------------------------------------------------------
// §4.7 failure text

/// CR/LF as spaces, whitespace runs collapsed, trimmed; stops reading once past `max`
/// bytes of output.
fn compact(text: &str, max: usize) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        // A character is at most 4 bytes: past `max` whenever the word is.
        out.push_str(cut_bytes(word, max + 4));
        if out.len() > max {
            break;
        }
    }
    out
}

/// The failure text of a frame (§4.7): `生成图片失败（frame=<id>, provider=<p>, model=<m>）:
/// <error>`, parts with empty values left out (`生成图片失败: <error>` with none). The error
/// has CR/LF replaced by spaces, whitespace collapsed and is cut to 280 bytes on a character
/// boundary plus `...` (`unknown error` when blank). The parts are compacted the same way
/// and cut to [`SHORT_CHARS`] characters.
pub fn frame_failure_text(frame: &str, provider: &str, model: &str, error: &str) -> String {
    let mut error = compact(error, FAILURE_BYTES);
    if error.is_empty() {
        error = "unknown error".to_string();
    } else if error.len() > FAILURE_BYTES {
        error = format!("{}...", cut_bytes(&error, FAILURE_BYTES));
    }
    let parts: Vec<String> = [("frame", frame), ("provider", provider), ("model", model)]
        .into_iter()
        .filter_map(|(label, value)| {
            let value = compact(prefix(value, SHORT_CHARS * 4), SHORT_CHARS * 4);
            let value = prefix(&value, SHORT_CHARS);
            (!value.is_empty()).then(|| format!("{label}={value}"))
        })
        .collect();
    if parts.is_empty() {
        format!("生成图片失败: {error}")
    } else {
        format!("生成图片失败（{}）: {error}", parts.join(", "))
    }
}

// ---------------------------------------------------------------------------------------
// §5.4 grounding text

/// One entry of the scene conversation log, as grounding reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroundingConversation<'a> {
    pub id: &'a str,
    /// The conversation's node id, else its `metadata.node_id`.
    pub node_id: &'a str,
    pub speaker_id: &'a str,
    /// `metadata.conversation_type`.
    pub conversation_type: &'a str,
    pub content: &'a str,
}

impl<'a> GroundingConversation<'a> {
    /// The grounding view of a stored conversation: node id from the conversation, else
    /// from `metadata.node_id`; type from `metadata.conversation_type`.
    pub fn from_conversation(c: &'a sceneintruder_export_document::Conversation) -> Self {
        let meta = |key: &str| match c.metadata.get(key) {
            Some(Value::String(s)) => s.trim(),
            _ => "",
        };
        let node_id = match c.node_id.trim() {
            "" => meta("node_id"),
            id => id,
        };
        GroundingConversation {
            id: &c.id,
            node_id,
            speaker_id: &c.speaker_id,
            conversation_type: meta("conversation_type"),
            content: &c.content,
        }
    }

    fn is_story(&self) -> bool {
        let kind = self.conversation_type.trim();
        kind.eq_ignore_ascii_case("story_original")
            || kind.eq_ignore_ascii_case("story_console")
            || self.speaker_id.trim().eq_ignore_ascii_case("story")
    }
}

/// The grounding of a frame or node (§5.4) and where it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grounding {
    pub text: String,
    /// Requested node ids that gave text (all requested ones when none did); empty when
    /// the original text was used.
    pub node_ids: Vec<String>,
    /// Ids of the conversations whose text was used, in log order.
    pub conversation_ids: Vec<String>,
    /// Lowercase hex SHA-256 of each used conversation's full (trimmed) text, or of the
    /// used original text.
    pub content_hashes: Vec<String>,
    pub truncated: bool,
}

/// The story text behind `node_ids` (§5.4): the trimmed contents of story conversations
/// (type `story_original` / `story_console`, or speaker `story`, case ignored) of those
/// nodes, in log order, joined with a blank line, up to [`GROUNDING_CHARS`] Unicode scalar
/// values (the last text cut to fit, `truncated` set). With no requested node ids, the node
/// of the most recent conversation that has one is used. When no conversation gives text,
/// the trimmed `original_text` is used instead (cut to the cap, one hash of the used text,
/// no node or conversation ids).
///
/// Beyond the reference: the blank lines between texts count toward the cap (the reference
/// could exceed it by two characters per text), a conversation whose text did not fit at
/// all is not recorded as used, and at most [`MAX_NODE_IDS`] requested node ids are read.
pub fn grounding_text(
    conversations: &[GroundingConversation<'_>],
    node_ids: &[&str],
    original_text: &str,
) -> Grounding {
    let mut requested: Vec<&str> = Vec::new();
    for id in node_ids.iter().map(|id| id.trim()) {
        if requested.len() >= MAX_NODE_IDS {
            break;
        }
        if !id.is_empty() && !requested.contains(&id) {
            requested.push(id);
        }
    }
    if requested.is_empty()
        && let Some(latest) = conversations
            .iter()
            .rev()
            .map(|c| c.node_id.trim())
            .find(|id| !id.is_empty())
    {
        requested.push(latest);
    }
    let mut out = Grounding::default();
    let mut used_nodes: HashSet<&str> = HashSet::new();
    let mut chars = 0;
    if !requested.is_empty() {
        for c in conversations {
            let node = c.node_id.trim();
            if !c.is_story() || node.is_empty() || !requested.contains(&node) {
                continue;
            }
            let text = c.content.trim();
            if text.is_empty() {
                continue;
            }
            let separator = if out.text.is_empty() { 0 } else { 2 };
            let room = GROUNDING_CHARS.saturating_sub(chars + separator);
            let kept = prefix(text, room).trim_end();
            if kept.is_empty() {
                out.truncated = true;
                break;
            }
            if separator > 0 {
                out.text.push_str("\n\n");
            }
            out.text.push_str(kept);
            chars += separator + kept.chars().count();
            used_nodes.insert(node);
            out.conversation_ids.push(c.id.trim().to_string());
            out.content_hashes.push(sha256_hex(text));
            if kept.len() < text.len() {
                out.truncated = true;
                break;
            }
        }
    }
    if !out.text.is_empty() {
        out.node_ids = requested
            .iter()
            .filter(|id| used_nodes.contains(*id))
            .map(|id| id.to_string())
            .collect();
        return out;
    }
    let original = original_text.trim();
    let kept = prefix(original, GROUNDING_CHARS).trim_end();
    if kept.is_empty() {
        return Grounding::default();
    }
    Grounding {
        text: kept.to_string(),
        node_ids: Vec::new(),
        conversation_ids: Vec::new(),
        content_hashes: vec![sha256_hex(kept)],
        truncated: kept.len() < original.len(),
    }
}

// ---------------------------------------------------------------------------------------
// §3.12 reference uploads

/// The type of an uploaded reference image from its first bytes (§3.12 step 4): PNG
/// (`89 50 4E 47 0D 0A 1A 0A`), JPEG (`FF D8 FF`) or WebP (`RIFF` + 4 bytes + `WEBPVP`),
/// as (content type, file extension with its dot); `None` for anything else. The declared
/// content type of the upload is never trusted.
pub fn sniff_reference_image(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", ".png"))
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some(("image/jpeg", ".jpg"))
    } else if bytes.len() >= 14 && bytes.starts_with(b"RIFF") && &bytes[8..14] == b"WEBPVP" {
        Some(("image/webp", ".webp"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
