//! Measurements both summaries take of the conversations.

use std::collections::BTreeMap;

use sceneintruder_export_document::Conversation;
use sceneintruder_export_document::render::{is_user_speaker, percent};

/// Length of a message in characters (the spec's fix for the reference's byte counts).
pub(crate) fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Mean message length in characters (0 for no message).
pub(crate) fn average_chars(conversations: &[Conversation]) -> f64 {
    let total: usize = conversations.iter().map(|c| chars(&c.content)).sum();
    ratio(total as f64, conversations.len() as f64)
}

/// `n / d`, or 0 when `d` is 0 (the reference printed `NaN` or `+Inf`).
pub(crate) fn ratio(n: f64, d: f64) -> f64 {
    if d == 0.0 { 0.0 } else { n / d }
}

/// `n / d * 100`, or 0 when `d` is 0 (the reference printed `NaN` or `+Inf`).
pub(crate) fn share(n: f64, d: f64) -> f64 {
    if d == 0.0 { 0.0 } else { percent(n, d) }
}

/// The non-empty `speaker` other than the user with the most lines, and its count; among
/// equal counts the one seen first.
pub(crate) fn most_active_speaker(conversations: &[Conversation]) -> Option<(&str, usize)> {
    // speaker -> (lines, first line index)
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, line) in conversations.iter().enumerate() {
        let speaker = line.speaker.as_str();
        if speaker.is_empty() || is_user_speaker(speaker) {
            continue;
        }
        counts.entry(speaker).or_insert((0, i)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|(_, (a, a_first)), (_, (b, b_first))| a.cmp(b).then(b_first.cmp(a_first)))
        .map(|(speaker, (n, _))| (speaker, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, line};

    fn spoken(speakers: &[&str]) -> Vec<Conversation> {
        speakers
            .iter()
            .map(|s| {
                let mut l = line("char_x", "hi", &at(0));
                l.speaker = s.to_string();
                l
            })
            .collect()
    }

    #[test]
    fn most_active_skips_user_and_empty_and_keeps_first_on_ties() {
        let lines = spoken(&[
            "", "", "", "user", "用户", "user", "Zed", "Amy", "Amy", "Zed",
        ]);
        assert_eq!(most_active_speaker(&lines), Some(("Zed", 2)));
        let lines = spoken(&["Bo", "Amy", "Amy"]);
        assert_eq!(most_active_speaker(&lines), Some(("Amy", 2)));
        assert_eq!(most_active_speaker(&spoken(&["", "user"])), None);
        assert_eq!(most_active_speaker(&[]), None);
    }

    #[test]
    fn lengths_are_characters_and_ratios_never_nan() {
        assert_eq!(chars("雾太大了"), 4);
        let lines = [line("a", "雾太大了", &at(0)), line("a", "ab", &at(1))];
        assert_eq!(average_chars(&lines), 3.0);
        assert_eq!(average_chars(&[]), 0.0);
        assert_eq!(share(1.0, 0.0), 0.0);
        assert_eq!(share(1.0, 4.0), 25.0);
        assert_eq!(ratio(0.0, 0.0), 0.0);
    }
}
