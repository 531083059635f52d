//! Pieces every exporter needs: grouping, truncation at character boundaries, HTML
//! escaping and safe URLs, the rankings and counts several templates print, and the rating
//! labels the templates of several formats share.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Conversation, DateRange, ExportInput, InteractionStats, time};

/// Conversations grouped by `metadata.interaction_id` (stringified; `default` when absent),
/// each group sorted by time, groups sorted by their first time (spec §8.6.4; ties keep
/// first-seen order so the output is deterministic).
pub fn groups(conversations: &[Conversation]) -> Vec<(String, Vec<&Conversation>)> {
    let mut out: Vec<(String, Vec<&Conversation>)> = Vec::new();
    for line in conversations {
        let key = interaction_id(line).unwrap_or_else(|| "default".to_string());
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, lines)) => lines.push(line),
            None => out.push((key, vec![line])),
        }
    }
    for (_, lines) in &mut out {
        lines.sort_by_key(|l| moment(&l.timestamp));
    }
    out.sort_by_key(|(_, lines)| lines.first().map(|l| moment(&l.timestamp)));
    out
}

/// Minutes from the first to the last line of a group (`None` for fewer than two lines).
pub fn span_minutes(lines: &[&Conversation]) -> Option<f64> {
    match lines {
        [first, .., last] => Some(time::seconds_between(&first.timestamp, &last.timestamp) / 60.0),
        _ => None,
    }
}

/// A conversation's `metadata.interaction_id`, stringified.
pub fn interaction_id(line: &Conversation) -> Option<String> {
    match line.metadata.get("interaction_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn moment(text: &str) -> i64 {
    time::parse(text)
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MIN)
}

/// Whether a line's `speaker` names the user (`user` or `用户`).
pub fn is_user_speaker(speaker: &str) -> bool {
    speaker == "user" || speaker == "用户"
}

/// Lines per speaking character (a `speaker_id` that is neither empty nor `user`), most
/// lines first, ties in order of first appearance.
pub fn character_lines(conversations: &[Conversation]) -> Vec<(&str, usize)> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for line in conversations {
        let id = line.speaker_id.as_str();
        if id.is_empty() || id == "user" {
            continue;
        }
        match counts.iter_mut().find(|(seen, _)| *seen == id) {
            Some((_, n)) => *n += 1,
            None => counts.push((id, 1)),
        }
    }
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    counts
}

/// The name of the scene character `id`, or `id` itself when there is none (or it has no
/// name).
pub fn name_or_id<'a>(input: &'a ExportInput, id: &'a str) -> &'a str {
    match input.character(id) {
        Some(c) if !c.name.is_empty() => &c.name,
        _ => id,
    }
}

/// True when both ends of the range are real times (neither the zero time nor unreadable).
pub fn has_dates(range: &DateRange) -> bool {
    !time::is_zero(&range.start_date) && !time::is_zero(&range.end_date)
}

/// Messages per interaction, the "depth" the ratings read (`None` without interactions).
pub fn messages_per_interaction(stats: &InteractionStats) -> Option<f64> {
    (stats.total_interactions > 0)
        .then(|| stats.total_messages as f64 / stats.total_interactions as f64)
}

/// The emotions of a distribution, most frequent first (ties keep the map's key order).
pub fn ranked_emotions(distribution: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
    let mut ranked: Vec<(&str, u64)> = distribution
        .iter()
        .map(|(emotion, n)| (emotion.as_str(), *n))
        .collect();
    ranked.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    ranked
}

/// The statistics' keywords, most frequent first (empty when there are none).
pub fn keywords(stats: &InteractionStats) -> &[String] {
    stats.top_keywords.as_deref().unwrap_or_default()
}

/// A JSON value as the reference printed loose values: strings bare, anything else as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Shorten `text` to at most `max` characters (spec's truncation, counted in characters so
/// no character is ever split): keep it when short enough, else take `max - 3` characters,
/// cut at the last space past the middle when there is one, and append `...`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(3);
    let prefix: String = text.chars().take(keep).collect();
    let cut = prefix
        .char_indices()
        .filter(|(i, c)| *c == ' ' && prefix[..*i].chars().count() > max / 2)
        .map(|(i, _)| i)
        .next_back();
    match cut {
        Some(i) => format!("{}...", &prefix[..i]),
        None => format!("{prefix}..."),
    }
}

/// The first `max` characters of `text`, plus `...` when it was longer.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// `text` safe to place in HTML element content and in quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `url` may become an `src`/`href` (or a Markdown image): `http://` or
/// `https://`, or a relative reference (no scheme, i.e. no `:` before the first `/`, `?` or
/// `#`). Everything else (`javascript:`, `data:`, `vbscript:`, ...) is refused; control
/// characters and whitespace are refused too, because browsers strip them before reading
/// the scheme.
pub fn safe_url(url: &str) -> bool {
    if url.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return true;
    }
    let head = url.split(['/', '?', '#']).next().unwrap_or_default();
    !head.contains(':')
}

/// `n / d * 100` as the templates compute percentages (NaN for 0/0, as the reference).
pub fn percent(n: f64, d: f64) -> f64 {
    n / d * 100.0
}

/// Scene activity rating from messages per interaction (scene summary 活跃度评级).
pub fn scene_activity(depth: f64) -> &'static str {
    match depth {
        d if d >= 8.0 => "极高 - 深度互动，内容丰富",
        d if d >= 5.0 => "高 - 活跃互动，参与度好",
        d if d >= 3.0 => "中等 - 正常交流水平",
        d if d >= 1.5 => "较低 - 互动相对简短",
        _ => "低 - 需要提升互动质量",
    }
}

/// Interaction efficiency rating from messages per interaction (interactions 效率评级).
pub fn interaction_efficiency(depth: f64) -> &'static str {
    match depth {
        d if d >= 8.0 => "极高 - 深度对话，内容丰富",
        d if d >= 5.0 => "高 - 有效互动，内容充实",
        d if d >= 3.0 => "中等 - 正常交流水平",
        d if d >= 1.5 => "较低 - 互动较为简短",
        _ => "低 - 需要提升互动深度",
    }
}

/// The one-word form of the efficiency ratings (plain-text exports).
pub fn efficiency_word(depth: f64) -> &'static str {
    match depth {
        d if d >= 8.0 => "极高",
        d if d >= 5.0 => "高",
        d if d >= 3.0 => "中等",
        d if d >= 1.5 => "较低",
        _ => "低",
    }
}

/// Scene completeness rating from the share of characters who spoke (场景完整性).
pub fn completeness(pct: f64) -> &'static str {
    match pct {
        p if p >= 80.0 => "优秀 - 场景要素充分利用",
        p if p >= 60.0 => "良好 - 大部分要素得到使用",
        p if p >= 40.0 => "一般 - 部分要素有待发掘",
        _ => "待提升 - 许多场景要素未被利用",
    }
}

/// Emotion diversity rating from the number of distinct emotions.
pub fn diversity(kinds: usize) -> &'static str {
    match kinds {
        k if k >= 8 => "极高 - 情绪表达非常丰富",
        k if k >= 6 => "高 - 情绪变化多样",
        k if k >= 4 => "中等 - 有一定情绪变化",
        k if k >= 2 => "较低 - 情绪相对单一",
        _ => "低 - 情绪表达单调",
    }
}

/// The one-word form of [`diversity`].
pub fn diversity_word(kinds: usize) -> &'static str {
    diversity(kinds).split(" - ").next().unwrap_or_default()
}

/// A 20-cell text bar: `█` for every 5% (at most 20), then `░`.
pub fn text_bar(pct: f64) -> String {
    let full = if pct.is_finite() && pct > 0.0 {
        ((pct / 5.0).floor() as usize).min(20)
    } else {
        0
    };
    format!("{}{}", "█".repeat(full), "░".repeat(20 - full))
}

/// Keyword rank marker of the plain-text exports (ranks from 1).
pub fn text_rank_marker(rank: usize) -> String {
    match rank {
        1..=3 => format!("[第{rank}名]"),
        4..=10 => format!("  {rank}. "),
        _ => format!(" {rank}. "),
    }
}

/// The keyword categories of [`keyword_category`], in the spec's order.
pub const KEYWORD_CATEGORIES: [&str; 4] = ["情感相关", "行动相关", "对象相关", "描述相关"];

/// `keywords` by [`keyword_category`] (each matched lower-cased, as the reference does), in
/// the order of [`KEYWORD_CATEGORIES`] (the spec's "unspecified order" made deterministic);
/// categories without a keyword are left out.
pub fn keywords_by_category(keywords: &[String]) -> Vec<(&'static str, Vec<&str>)> {
    KEYWORD_CATEGORIES
        .into_iter()
        .map(|category| {
            let members: Vec<&str> = keywords
                .iter()
                .filter(|k| keyword_category(&k.to_lowercase()) == category)
                .map(String::as_str)
                .collect();
            (category, members)
        })
        .filter(|(_, members)| !members.is_empty())
        .collect()
}

/// Topic category of a keyword (interactions exports), one of [`KEYWORD_CATEGORIES`].
pub fn keyword_category(keyword: &str) -> &'static str {
    const FEELING: [&str; 12] = [
        "喜欢", "讨厌", "开心", "难过", "愤怒", "恐惧", "love", "hate", "happy", "sad", "angry",
        "fear",
    ];
    const ACTION: [&str; 16] = [
        "做", "去", "来", "看", "听", "说", "走", "跑", "do", "go", "come", "see", "hear", "say",
        "walk", "run",
    ];
    const OBJECT: [&str; 12] = [
        "东西", "物品", "书", "食物", "水", "房子", "thing", "item", "book", "food", "water",
        "house",
    ];
    if FEELING.iter().any(|w| keyword.contains(w)) {
        "情感相关"
    } else if ACTION.iter().any(|w| keyword.contains(w)) {
        "行动相关"
    } else if OBJECT.iter().any(|w| keyword.contains(w)) {
        "对象相关"
    } else {
        "描述相关"
    }
}

/// The `names` (locations, items) the conversations mention, in the given order, each with
/// its count of [`mentions`]; names never mentioned are left out.
pub fn mentioned<'a>(names: &[&'a str], conversations: &[Conversation]) -> Vec<(&'a str, usize)> {
    names
        .iter()
        .map(|name| (*name, mentions(name, conversations)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// How often `name` (lower-cased) occurs, without overlaps, in all contents (lower-cased,
/// joined by single spaces).
pub fn mentions(name: &str, conversations: &[Conversation]) -> usize {
    let needle = name.to_lowercase();
    if needle.is_empty() {
        return 0;
    }
    let haystack = conversations
        .iter()
        .map(|c| c.content.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    haystack.matches(needle.as_str()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(id: &str, at: &str, interaction: Option<serde_json::Value>) -> Conversation {
        let mut metadata = serde_json::Map::new();
        if let Some(i) = interaction {
            metadata.insert("interaction_id".into(), i);
        }
        Conversation {
            id: id.into(),
            timestamp: at.into(),
            metadata,
            ..Default::default()
        }
    }

    #[test]
    fn groups_by_interaction_and_time() {
        let lines = [
            line("a", "2025-06-20T10:05:00Z", Some(json!("i2"))),
            line("b", "2025-06-20T10:02:00Z", Some(json!(7))),
            line("c", "2025-06-20T10:01:00Z", Some(json!("i2"))),
            line("d", "2025-06-20T10:03:00Z", None),
        ];
        let groups = groups(&lines);
        let ids: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|(k, l)| (k.as_str(), l.iter().map(|c| c.id.as_str()).collect()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("i2", vec!["c", "a"]),
                ("7", vec!["b"]),
                ("default", vec!["d"])
            ]
        );
        assert_eq!(span_minutes(&groups[0].1), Some(4.0));
        assert_eq!(span_minutes(&groups[1].1), None);
    }

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate("short", 40), "short");
        let long = "雾".repeat(50);
        let cut = truncate(&long, 40);
        assert_eq!(cut, format!("{}...", "雾".repeat(37)));
        assert_eq!(truncate("aaaa bbbb cccc dddd eeee", 16), "aaaa bbbb...");
        assert_eq!(super::cut("🥇🥈🥉", 2), "🥇🥈...");
        assert_eq!(super::cut("ab", 2), "ab");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html(r#"<script>"&'</textarea>"#),
            "&lt;script&gt;&quot;&amp;&#39;&lt;/textarea&gt;"
        );
    }

    #[test]
    fn bars_labels_and_mentions() {
        assert_eq!(
            text_bar(52.0),
            format!("{}{}", "█".repeat(10), "░".repeat(10))
        );
        assert_eq!(text_bar(f64::NAN), "░".repeat(20));
        assert_eq!(text_bar(400.0), "█".repeat(20));
        assert_eq!(scene_activity(1.5), "较低 - 互动相对简短");
        assert_eq!(diversity_word(5), "中等");
        assert_eq!(keyword_category("happy days"), "情感相关");
        assert_eq!(text_rank_marker(2), "[第2名]");
        let lines = [Conversation {
            content: "The Pier, the PIER".into(),
            ..Default::default()
        }];
        assert_eq!(mentions("pier", &lines), 2);
        assert_eq!(mentioned(&["Ledger", "Pier", ""], &lines), [("Pier", 2)]);
    }

    #[test]
    fn urls_without_a_safe_scheme_are_refused() {
        for ok in [
            "https://example.com/a.png",
            "HTTP://example.com/a.png",
            "images/lantern.png",
            "/static/a.png",
            "a.png?x=1:2",
            "#top",
        ] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:image/png;base64,AAAA",
            "vbscript:msgbox",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "\u{1}javascript:alert(1)",
            "https://example.com/a b.png",
            "ftp://example.com/a.png",
        ] {
            assert!(!safe_url(bad), "{bad:?}");
        }
    }

    #[test]
    fn emotions_rank_by_count_then_key() {
        let dist: BTreeMap<String, u64> = [("b", 1), ("c", 2), ("a", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(ranked_emotions(&dist), [("c", 2), ("a", 1), ("b", 1)]);
    }

    #[test]
    fn character_lines_skip_the_user_and_keep_first_seen_on_ties() {
        let said = |id: &str| Conversation {
            speaker_id: id.into(),
            ..Default::default()
        };
        let lines = ["b", "user", "", "a", "a", "c", "b"].map(said);
        assert_eq!(character_lines(&lines), [("b", 2), ("a", 2), ("c", 1)]);
        assert!(character_lines(&[said("user"), said("")]).is_empty());
        assert!(is_user_speaker("用户") && is_user_speaker("user"));
        assert!(!is_user_speaker("User") && !is_user_speaker(""));
    }

    #[test]
    fn names_fall_back_to_the_id() {
        let input = ExportInput {
            characters: vec![
                crate::Character {
                    id: "c1".into(),
                    name: "Quill".into(),
                    ..Default::default()
                },
                crate::Character {
                    id: "c2".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(name_or_id(&input, "c1"), "Quill");
        assert_eq!(name_or_id(&input, "c2"), "c2");
        assert_eq!(name_or_id(&input, "gone"), "gone");
    }

    #[test]
    fn statistics_readings() {
        let mut stats = InteractionStats::default();
        assert!(!has_dates(&stats.date_range));
        assert_eq!(messages_per_interaction(&stats), None);
        assert!(keywords(&stats).is_empty());
        stats.date_range.start_date = "2025-06-20T10:00:00Z".into();
        assert!(!has_dates(&stats.date_range));
        stats.date_range.end_date = "2025-06-20T10:05:00Z".into();
        assert!(has_dates(&stats.date_range));
        stats.total_interactions = 2;
        stats.total_messages = 3;
        assert_eq!(messages_per_interaction(&stats), Some(1.5));
        stats.top_keywords = Some(vec!["fog".into()]);
        assert_eq!(keywords(&stats), ["fog"]);
    }

    #[test]
    fn keywords_group_by_category_in_the_spec_order() {
        let keywords = ["foggy", "Happy", "walking", "books", "sad"].map(String::from);
        assert_eq!(
            keywords_by_category(&keywords),
            [
                ("情感相关", vec!["Happy", "sad"]),
                ("行动相关", vec!["walking"]),
                ("对象相关", vec!["books"]),
                ("描述相关", vec!["foggy"]),
            ]
        );
        assert!(keywords_by_category(&[]).is_empty());
    }

    #[test]
    fn loose_values_print_strings_bare() {
        assert_eq!(plain(&json!("question")), "question");
        assert_eq!(plain(&json!(3)), "3");
        assert_eq!(plain(&json!(null)), "null");
        assert_eq!(plain(&json!({"a": [1]})), r#"{"a":[1]}"#);
    }
}
