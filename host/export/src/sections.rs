//! Sections both summaries write the same way, each under its own heading.

use sceneintruder_export_document::InteractionStats;
use sceneintruder_export_document::lines::Lines;
use sceneintruder_export_document::render;

use crate::analysis::share;

/// Every emotion in map order, its count and its share of all messages; nothing without
/// emotions.
pub(crate) fn emotions(out: &mut Lines, heading: &str, stats: &InteractionStats) {
    if stats.emotion_distribution.is_empty() {
        return;
    }
    out.line(heading);
    out.blank();
    for (emotion, n) in &stats.emotion_distribution {
        out.line(format!(
            "- **{emotion}**: {n}次 ({:.1}%)",
            share(*n as f64, stats.total_messages as f64)
        ));
    }
    out.blank();
}

/// The first ten keywords, numbered; nothing without keywords.
pub(crate) fn keywords(out: &mut Lines, heading: &str, stats: &InteractionStats) {
    let keywords = render::keywords(stats);
    if keywords.is_empty() {
        return;
    }
    out.line(heading);
    out.blank();
    for (i, keyword) in keywords.iter().take(10).enumerate() {
        out.line(format!("{}. {keyword}", i + 1));
    }
    out.blank();
}
