//! Pieces every exporter needs: grouping, truncation at character boundaries, HTML
//! escaping, and the rating labels the templates of several formats share.

use crate::Conversation;

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

/// A conversation's `metadata.interaction_id`, stringified.
pub fn interaction_id(line: &Conversation) -> Option<String> {
    match line.metadata.get("interaction_id")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn moment(text: &str) -> i64 {
    crate::time::parse(text)
        .map(|t| t.timestamp_millis())
        .unwrap_or(i64::MIN)
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

/// Topic category of a keyword (interactions exports).
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
    }
}
