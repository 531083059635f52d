//! Word frequencies over conversation contents: the statistics' `top_keywords` (spec §8.6.2)
//! and the interaction summary's 热门话题词汇 (§8.8.1).
//!
//! A "word" is a whitespace-separated token of the lower-cased content (Chinese text has no
//! spaces, so there a word is a whole sentence — a known limit of the reference algorithm).
//! Word lengths stay in bytes, as the spec states for these filters: they only decide which
//! tokens count (a 2-character Chinese token passes "longer than 3 bytes", as it should),
//! nothing is displayed or cut by them.

use std::collections::HashMap;

use sceneintruder_export_document::Conversation;

/// Words never counted (compared with the whole token).
const COMMON: [&str; 21] = [
    "的",
    "了",
    "在",
    "和",
    "与",
    "为",
    "是",
    "有",
    "到",
    "将",
    "被",
    "从",
    "对",
    "把",
    "给",
    "一个",
    "这个",
    "那个",
    "什么",
    "怎么",
    "为什么",
];

/// At most this many distinct words are counted per export; once reached, words not seen
/// yet are ignored (known words still count). Bounds memory on huge texts.
pub const MAX_DISTINCT_WORDS: usize = 100_000;

/// How often each word longer than `longer_than` bytes occurs in the contents, most frequent
/// first; ties keep first-seen order. Linear in the text size (plus sorting the distinct
/// words).
pub(crate) fn frequencies(
    conversations: &[Conversation],
    longer_than: usize,
) -> Vec<(String, u64)> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    // Only looked up, never iterated: the output order comes from `counts`.
    let mut index: HashMap<String, usize> = HashMap::new();
    for line in conversations {
        let lower = line.content.to_lowercase();
        for word in lower.split_whitespace() {
            if word.len() <= longer_than || COMMON.contains(&word) {
                continue;
            }
            if let Some(&i) = index.get(word) {
                counts[i].1 += 1;
            } else if counts.len() < MAX_DISTINCT_WORDS {
                index.insert(word.to_string(), counts.len());
                counts.push((word.to_string(), 1));
            }
        }
    }
    // Stable: equal counts stay in first-seen order.
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, line};

    fn words(contents: &[&str], longer_than: usize) -> Vec<(String, u64)> {
        let lines: Vec<Conversation> = contents.iter().map(|c| line("a", c, &at(0))).collect();
        frequencies(&lines, longer_than)
    }

    fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|(w, n)| (w.to_string(), *n)).collect()
    }

    #[test]
    fn counts_lower_cased_tokens_longer_than_the_limit() {
        assert_eq!(
            words(&["The Fog, the FOG", "fog  the\tcrate fog"], 2),
            pairs(&[("the", 3), ("fog", 3), ("fog,", 1), ("crate", 1)])
        );
        assert_eq!(
            words(&["The Fog, the FOG", "fog  the\tcrate fog"], 3),
            pairs(&[("fog,", 1), ("crate", 1)])
        );
    }

    #[test]
    fn lengths_are_bytes_and_common_words_are_skipped() {
        // "茶" is 3 bytes (not longer than 3), "茶馆" 6; "什么" and "为什么" are common.
        assert_eq!(
            words(&["茶 茶馆 什么 为什么 什么事"], 3),
            pairs(&[("茶馆", 1), ("什么事", 1)])
        );
    }

    #[test]
    fn ties_keep_first_seen_order() {
        let got = words(&["zeta alpha mike", "alpha zeta", "yank"], 3);
        assert_eq!(
            got,
            pairs(&[("zeta", 2), ("alpha", 2), ("mike", 1), ("yank", 1)])
        );
    }

    #[test]
    fn distinct_words_are_capped() {
        let text: String = (0..MAX_DISTINCT_WORDS + 10)
            .map(|i| format!("w{i:06} "))
            .collect();
        let got = words(&[&text, "w000001 w999999"], 3);
        assert_eq!(got.len(), MAX_DISTINCT_WORDS);
        assert_eq!(got[0], ("w000001".to_string(), 2));
        assert!(!got.iter().any(|(w, _)| w == "w999999"));
    }

    #[test]
    fn nothing_to_count() {
        assert!(words(&[], 3).is_empty());
        assert!(words(&["", "   ", "a an the"], 3).is_empty());
    }
}
