//! The interaction summary in Markdown (spec §8.8.1): embedded by every format of the
//! interactions export and returned as the `summary` of its JSON result.

use std::collections::BTreeMap;

use sceneintruder_export_document::lines::Lines;
use sceneintruder_export_document::render::{
    cut, interaction_id, is_user_speaker, messages_per_interaction,
};
use sceneintruder_export_document::time::{self, Pattern};
use sceneintruder_export_document::{Conversation, ExportInput, InteractionStats, StoryData};
use serde_json::Value;

use crate::analysis::{average_chars, chars, most_active_speaker, ratio, share};
use crate::sections;
use crate::words::frequencies;

/// Messages longer than this many characters are "deep" (互动质量评估).
const DEEP_MESSAGE: usize = 50;
/// The shortest message is looked for among non-empty messages shorter than this.
const SHORTEST_BELOW: usize = 10_000;

/// The interaction summary over `input.scene`, `input.characters`, `input.conversations`,
/// `input.interaction_stats` and `input.story` (its section only when there is a story).
pub fn interaction_summary(input: &ExportInput) -> String {
    let lines = input.conversations.as_slice();
    let stats = &input.interaction_stats;
    let mut out = Lines::default();
    basics(&mut out, input);
    if !lines.is_empty() {
        overview(&mut out, lines);
        content(&mut out, lines);
    }
    emotion_flow(&mut out, lines);
    if !lines.is_empty() {
        patterns(&mut out, lines);
    }
    characters(&mut out, input);
    sections::emotions(&mut out, "### 情绪分布统计", stats);
    sections::keywords(&mut out, "### 热门话题关键词", stats);
    if let Some(story) = &input.story {
        story_progress(&mut out, story);
    }
    activity(&mut out, stats);
    if !lines.is_empty() {
        quality(&mut out, lines);
    }
    out.finish()
}

fn basics(out: &mut Lines, input: &ExportInput) {
    let scene = &input.scene.scene;
    let stats = &input.interaction_stats;
    out.line(format!("## {} - 交互摘要报告", scene.title));
    out.blank();
    out.line("### 基础信息");
    out.blank();
    out.line(format!("- **场景**: {}", scene.title));
    out.line(format!("- **描述**: {}", scene.description));
    out.line(format!("- **角色数量**: {}", input.characters.len()));
    out.line(format!("- **总交互次数**: {}", stats.total_interactions));
    out.line(format!("- **总消息数**: {}", stats.total_messages));
    if !time::is_zero(&stats.date_range.start_date) {
        out.line(format!(
            "- **时间范围**: {} 至 {}",
            time::format(&stats.date_range.start_date, Pattern::DateMinutes),
            time::format(&stats.date_range.end_date, Pattern::DateMinutes)
        ));
    }
    out.blank();
}

/// 对话概览 (`lines` is not empty).
fn overview(out: &mut Lines, lines: &[Conversation]) {
    let (users, characters) = split(lines);
    out.line("### 对话概览");
    out.blank();
    out.line(format!("- **用户发言**: {users} 条"));
    out.line(format!("- **角色响应**: {characters} 条"));
    if let Some((speaker, count)) = most_active_speaker(lines) {
        out.line(format!("- **最活跃角色**: {speaker} ({count} 条发言)"));
    }
    // First and last in list order (the log's order), as the reference measures the span.
    if let [first, .., last] = lines {
        let seconds = time::seconds_between(&first.timestamp, &last.timestamp);
        if seconds > 0.0 {
            out.line(format!("- **对话时长**: {:.1} 分钟", seconds / 60.0));
            out.line(format!(
                "- **平均发言间隔**: {:.1} 秒",
                ratio(seconds, (lines.len() - 1) as f64)
            ));
        }
    }
    out.blank();
}

/// User lines and character lines, each line counted once (the reference counted lines
/// with a `speaker_type` a second time by `speaker`): by `metadata.speaker_type` when there
/// is one (`user`, `character`, `system` not counted, anything else by `speaker`), else by
/// `speaker` (`user`/`用户` is the user).
fn split(lines: &[Conversation]) -> (usize, usize) {
    let (mut users, mut characters) = (0, 0);
    for line in lines {
        let by_speaker = is_user_speaker(&line.speaker);
        let user = match line.metadata.get("speaker_type").map(Value::as_str) {
            Some(Some("user")) => Some(true),
            Some(Some("character")) => Some(false),
            Some(Some("system")) => None,
            _ => Some(by_speaker),
        };
        match user {
            Some(true) => users += 1,
            Some(false) => characters += 1,
            None => {}
        }
    }
    (users, characters)
}

/// 对话内容分析 (`lines` is not empty).
fn content(out: &mut Lines, lines: &[Conversation]) {
    let n = lines.len() as f64;
    // (length, content) of the first longest and the first shortest non-empty message.
    let mut longest: (usize, &str) = (0, "");
    let mut shortest: Option<(usize, &str)> = None;
    for line in lines {
        let length = chars(&line.content);
        if length > longest.0 {
            longest = (length, &line.content);
        }
        if length > 0 && length < shortest.map_or(SHORTEST_BELOW, |s| s.0) {
            shortest = Some((length, &line.content));
        }
    }
    let questions = lines.iter().filter(|l| is_question(&l.content)).count();
    let exclamations = lines
        .iter()
        .filter(|l| l.content.contains(['!', '！']))
        .count();

    out.line("### 对话内容分析");
    out.blank();
    out.line(format!(
        "- **平均消息长度**: {:.1} 字符",
        average_chars(lines)
    ));
    out.line(format!(
        "- **最长消息**: {} 字符 - \"{}\"",
        longest.0,
        cut(longest.1, 100)
    ));
    if let Some((length, text)) = shortest {
        out.line(format!(
            "- **最短消息**: {length} 字符 - \"{}\"",
            cut(text, 50)
        ));
    }
    out.line(format!(
        "- **问句数量**: {questions} 条 ({:.1}%)",
        share(questions as f64, n)
    ));
    out.line(format!(
        "- **感叹句数量**: {exclamations} 条 ({:.1}%)",
        share(exclamations as f64, n)
    ));
    let topics: Vec<String> = frequencies(lines, 2)
        .into_iter()
        .filter(|(_, count)| *count >= 2)
        .take(5)
        .map(|(word, count)| format!("{word}({count}次)"))
        .collect();
    if !topics.is_empty() {
        out.line(format!("- **热门话题词汇**: {}", topics.join(", ")));
    }
    out.blank();
}

fn is_question(content: &str) -> bool {
    // "为什么" contains "什么", so it needs no test of its own.
    content.contains(['?', '？']) || ["什么", "怎么", "如何"].iter().any(|w| content.contains(w))
}

/// 情绪变化轨迹, over the first emotion of every line that has emotions.
fn emotion_flow(out: &mut Lines, lines: &[Conversation]) {
    let flow: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.emotions.as_ref()?.first())
        .map(String::as_str)
        .collect();
    if flow.is_empty() {
        return;
    }
    let changes = flow.windows(2).filter(|w| w[0] != w[1]).count();
    let shown = if flow.len() <= 10 {
        flow.join(" → ")
    } else {
        format!(
            "{} → ... → {}",
            flow[..5].join(" → "),
            flow[flow.len() - 5..].join(" → ")
        )
    };
    // 1 − changes/len, computed as a quotient so that exactly 20% is not 19.999…% (the
    // reference's `1.0 - 0.8` fell below the 0.2 threshold).
    let stable = (flow.len() - changes) as f64 / flow.len() as f64;
    out.line("### 情绪变化轨迹");
    out.blank();
    out.line(format!("- **情绪变化次数**: {changes} 次"));
    out.line(format!("- **情绪流程**: {shown}"));
    out.line(format!(
        "- **情绪稳定性**: {} ({:.1}%)",
        stability(stable),
        stable * 100.0
    ));
    out.blank();
}

/// 交互模式分析 (`lines` is not empty).
fn patterns(out: &mut Lines, lines: &[Conversation]) {
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for id in lines.iter().filter_map(interaction_id) {
        *groups.entry(id).or_insert(0) += 1;
    }
    let multi = lines
        .iter()
        .filter(|l| {
            l.metadata
                .get("character_ids")
                .and_then(Value::as_array)
                .is_some_and(|ids| ids.len() > 1)
        })
        .count();

    out.line("### 交互模式分析");
    out.blank();
    if !groups.is_empty() {
        let grouped: usize = groups.values().sum();
        let largest = groups.values().copied().max().unwrap_or(0);
        out.line(format!("- **独立交互会话**: {} 个", groups.len()));
        out.line(format!(
            "- **平均每次交互消息数**: {:.1} 条",
            ratio(grouped as f64, groups.len() as f64)
        ));
        out.line(format!("- **最长交互会话**: {largest} 条消息"));
    }
    if multi > 0 {
        out.line(format!("- **多角色互动消息**: {multi} 条"));
        out.line(format!(
            "- **群体互动比例**: {:.1}%",
            share(multi as f64, lines.len() as f64)
        ));
    }
    out.blank();
}

fn characters(out: &mut Lines, input: &ExportInput) {
    out.line("### 参与角色");
    out.blank();
    for character in &input.characters {
        out.line(format!(
            "- **{}**: {}",
            character.name, character.description
        ));
    }
    out.blank();
}

/// 故事进度 of the scene's stored story.
fn story_progress(out: &mut Lines, story: &StoryData) {
    let completed = story.tasks.iter().filter(|t| t.completed).count();
    out.line("### 故事进度");
    out.blank();
    out.line(format!("- **当前进度**: {}%", story.progress));
    out.line(format!("- **当前状态**: {}", story.current_state));
    out.line(format!(
        "- **已完成任务**: {completed} / {}",
        story.tasks.len()
    ));
    out.blank();
}

fn activity(out: &mut Lines, stats: &InteractionStats) {
    out.line("### 交互活跃度分析");
    out.blank();
    if let Some(average) = messages_per_interaction(stats) {
        out.line(format!("- **平均每次交互消息数**: {average:.1}"));
        out.line(format!("- **活跃度评级**: {}", activity_level(average)));
    }
}

/// 互动质量评估 (`lines` is not empty).
fn quality(out: &mut Lines, lines: &[Conversation]) {
    let n = lines.len();
    let average = average_chars(lines);
    let deep = lines
        .iter()
        .filter(|l| chars(&l.content) > DEEP_MESSAGE)
        .count();
    let pct = share(deep as f64, n as f64);
    let score = average / 100.0 * 0.6 + pct / 100.0 * 0.4;
    out.blank();
    out.line("### 互动质量评估");
    out.blank();
    out.line(format!("- **平均内容深度**: {average:.1} 字符/消息"));
    out.line(format!("- **深度消息比例**: {pct:.1}% ({deep}/{n})"));
    out.line(format!("- **互动质量评级**: {}", quality_level(score)));
}

/// 情绪稳定性 from 1 − changes / flow length.
fn stability(ratio: f64) -> &'static str {
    match ratio {
        r if r >= 0.8 => "非常稳定",
        r if r >= 0.6 => "相对稳定",
        r if r >= 0.4 => "变化适中",
        r if r >= 0.2 => "变化较大",
        _ => "情绪波动剧烈",
    }
}

/// 活跃度评级 from messages per interaction.
fn activity_level(average: f64) -> &'static str {
    match average {
        a if a >= 5.0 => "非常活跃",
        a if a >= 3.0 => "活跃",
        a if a >= 2.0 => "一般",
        _ => "较少互动",
    }
}

/// 互动质量评级 from 0.6 × mean length / 100 + 0.4 × deep share.
fn quality_level(score: f64) -> &'static str {
    match score {
        s if s >= 0.8 => "优秀 - 内容丰富，互动深入",
        s if s >= 0.6 => "良好 - 内容充实，互动较好",
        s if s >= 0.4 => "一般 - 基础互动，有改进空间",
        s if s >= 0.2 => "待提升 - 互动较浅，建议增加内容深度",
        _ => "需要改进 - 互动内容过于简单",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{
        INTERACTIONS, at, fixture, has, line, no_nan, starts, with_emotions, with_meta,
    };
    use sceneintruder_export_document::Character;
    use serde_json::json;

    /// An input with these conversations, consistent statistics and `n` characters.
    fn with_lines(lines: Vec<Conversation>, n: usize) -> ExportInput {
        let mut input = ExportInput {
            characters: (0..n)
                .map(|i| Character {
                    id: format!("char_{i}"),
                    name: format!("C{i}"),
                    description: format!("D{i}"),
                    ..Default::default()
                })
                .collect(),
            conversations: lines,
            ..Default::default()
        };
        input.interaction_stats =
            crate::interaction_stats(crate::Kind::Interactions, &input.conversations, n);
        input
    }

    fn summary(lines: Vec<Conversation>) -> String {
        interaction_summary(&with_lines(lines, 1))
    }

    #[test]
    fn golden_interactions_input() {
        let expected = r#"## The Harbor Fog - 交互摘要报告

### 基础信息

- **场景**: The Harbor Fog
- **描述**: A coastal town is swallowed by fog; a crate vanishes from the pier.
- **角色数量**: 3
- **总交互次数**: 2
- **总消息数**: 6
- **时间范围**: 2025-06-20 10:01 至 2025-06-20 10:20

### 对话概览

- **用户发言**: 0 条
- **角色响应**: 6 条
- **对话时长**: 19.0 分钟
- **平均发言间隔**: 228.0 秒

### 对话内容分析

- **平均消息长度**: 45.8 字符
- **最长消息**: 80 字符 - "Then who carried the crates past the Pier? <script>alert(1)</script> & "friends""
- **最短消息**: 5 字符 - "我只卖茶。"
- **问句数量**: 2 条 (33.3%)
- **感叹句数量**: 0 条 (0.0%)
- **热门话题词汇**: the(8次), pier?(2次)

### 情绪变化轨迹

- **情绪变化次数**: 4 次
- **情绪流程**: suspicious → afraid → suspicious → calm → angry
- **情绪稳定性**: 变化较大 (20.0%)

### 交互模式分析

- **独立交互会话**: 2 个
- **平均每次交互消息数**: 3.0 条
- **最长交互会话**: 3 条消息
- **多角色互动消息**: 1 条
- **群体互动比例**: 16.7%

### 参与角色

- **Quill**: Tired, meticulous <keeper> of the ledger & tide tables.
- **Watchman "Old" Ma**: Knows every lantern on the quay.
- **苏婉**: 码头边茶馆的主人，消息灵通。

### 情绪分布统计

- **afraid**: 1次 (16.7%)
- **angry**: 1次 (16.7%)
- **calm**: 1次 (16.7%)
- **defensive**: 1次 (16.7%)
- **suspicious**: 2次 (33.3%)

### 热门话题关键词

1. where
2. midnight
3. lantern
4. ledger
5. crates

### 交互活跃度分析

- **平均每次交互消息数**: 3.0
- **活跃度评级**: 活跃

### 互动质量评估

- **平均内容深度**: 45.8 字符/消息
- **深度消息比例**: 66.7% (4/6)
- **互动质量评级**: 一般 - 基础互动，有改进空间
"#;
        assert_eq!(interaction_summary(&fixture(INTERACTIONS)), expected);
    }

    #[test]
    fn empty_input_keeps_only_the_fixed_sections() {
        let expected = "\
##  - 交互摘要报告

### 基础信息

- **场景**: 
- **描述**: 
- **角色数量**: 0
- **总交互次数**: 0
- **总消息数**: 0

### 参与角色


### 交互活跃度分析

";
        let mut input = ExportInput::default();
        assert_eq!(interaction_summary(&input), expected);
        input.interaction_stats = crate::interaction_stats(crate::Kind::Interactions, &[], 0);
        assert_eq!(interaction_summary(&input), expected);
    }

    #[test]
    fn time_range_only_with_a_start() {
        let mut input = fixture(INTERACTIONS);
        input.interaction_stats.date_range = Default::default();
        assert!(!starts(&interaction_summary(&input), "- **时间范围**"));
    }

    #[test]
    fn every_line_is_counted_once() {
        let mut by_speaker = line("u", "x", &at(0));
        by_speaker.speaker = "用户".into();
        let mut other_type = with_meta(line("u", "x", &at(0)), json!({"speaker_type": "npc"}));
        other_type.speaker = "user".into();
        let lines = vec![
            with_meta(line("u", "x", &at(0)), json!({"speaker_type": "user"})),
            with_meta(line("c", "x", &at(0)), json!({"speaker_type": "character"})),
            with_meta(line("s", "x", &at(0)), json!({"speaker_type": "system"})),
            with_meta(line("c", "x", &at(0)), json!({"speaker_type": 3})),
            with_meta(line("c", "x", &at(0)), json!({"interaction_id": "i"})),
            by_speaker,
            other_type,
        ];
        let text = summary(lines);
        assert!(has(&text, "- **用户发言**: 3 条"), "{text}");
        assert!(has(&text, "- **角色响应**: 3 条"), "{text}");
    }

    #[test]
    fn most_active_and_duration_lines() {
        let mut a = line("c", "x", &at(0));
        a.speaker = "Quill".into();
        let mut b = line("c", "x", &at(2));
        b.speaker = "Quill".into();
        let text = summary(vec![a.clone(), line("c", "x", &at(1)), b]);
        assert!(has(&text, "- **最活跃角色**: Quill (2 条发言)"));
        assert!(has(&text, "- **对话时长**: 2.0 分钟"));
        assert!(has(&text, "- **平均发言间隔**: 60.0 秒"));
        // One line, a zero span, a negative span or unreadable times: no duration.
        for lines in [
            vec![a.clone()],
            vec![a.clone(), line("c", "x", &at(0))],
            vec![line("c", "x", &at(5)), line("c", "x", &at(0))],
            vec![line("c", "x", "?"), line("c", "x", &at(0))],
        ] {
            let text = summary(lines);
            assert!(!starts(&text, "- **对话时长**"), "{text}");
            assert!(!starts(&text, "- **平均发言间隔**"), "{text}");
        }
        assert!(!starts(
            &summary(vec![line("c", "x", &at(0))]),
            "- **最活跃角色**"
        ));
    }

    #[test]
    fn longest_and_shortest_count_and_cut_characters() {
        let long = "雾".repeat(120);
        let text = summary(vec![
            line("c", &long, &at(0)),
            line("c", &"茶".repeat(60), &at(1)),
        ]);
        let cut100 = format!("{}...", "雾".repeat(100));
        assert!(
            has(&text, &format!("- **最长消息**: 120 字符 - \"{cut100}\"")),
            "{text}"
        );
        let cut50 = format!("{}...", "茶".repeat(50));
        assert!(
            has(&text, &format!("- **最短消息**: 60 字符 - \"{cut50}\"")),
            "{text}"
        );
        assert!(has(&text, "- **平均消息长度**: 90.0 字符"));
        // Ties: the first longest and the first shortest.
        let text = summary(vec![line("c", "ab", &at(0)), line("c", "cd", &at(1))]);
        assert!(has(&text, "- **最长消息**: 2 字符 - \"ab\""));
        assert!(has(&text, "- **最短消息**: 2 字符 - \"ab\""));
    }

    #[test]
    fn empty_and_huge_messages_are_never_the_shortest() {
        let text = summary(vec![line("c", "", &at(0))]);
        assert!(has(&text, "- **最长消息**: 0 字符 - \"\""));
        assert!(!starts(&text, "- **最短消息**"));
        let text = summary(vec![line("c", &"x".repeat(SHORTEST_BELOW), &at(0))]);
        assert!(!starts(&text, "- **最短消息**"));
        let text = summary(vec![line("c", &"x".repeat(SHORTEST_BELOW - 1), &at(0))]);
        assert!(starts(&text, "- **最短消息**: 9999 字符"));
    }

    #[test]
    fn questions_and_exclamations() {
        let lines = [
            "Why?",
            "为何？",
            "你在做什么",
            "怎么办",
            "如何是好",
            "Stop!",
            "好！",
            "plain",
        ]
        .iter()
        .enumerate()
        .map(|(i, c)| line("c", c, &at(i as u32)))
        .collect();
        let text = summary(lines);
        assert!(has(&text, "- **问句数量**: 5 条 (62.5%)"), "{text}");
        assert!(has(&text, "- **感叹句数量**: 2 条 (25.0%)"), "{text}");
    }

    #[test]
    fn topic_words_need_two_occurrences_and_stop_at_five() {
        let text = summary(vec![line("c", "aa bbb ccc 的 的 一个 一个", &at(0))]);
        assert!(!starts(&text, "- **热门话题词汇**"));
        let words = "fog fog sea sea aaa aaa bbb bbb ccc ccc ddd ddd ddd on on";
        let text = summary(vec![line("c", words, &at(0))]);
        assert!(
            has(
                &text,
                "- **热门话题词汇**: ddd(3次), fog(2次), sea(2次), aaa(2次), bbb(2次)"
            ),
            "{text}"
        );
    }

    #[test]
    fn emotion_flow() {
        assert!(!has(
            &summary(vec![line("c", "x", &at(0))]),
            "### 情绪变化轨迹"
        ));
        let empty = with_emotions(line("c", "x", &at(0)), &[]);
        assert!(!has(&summary(vec![empty]), "### 情绪变化轨迹"));

        let flow: Vec<Conversation> = (0..12)
            .map(|i| with_emotions(line("c", "x", &at(i)), &[&format!("e{}", i / 2), "other"]))
            .collect();
        let text = summary(flow);
        assert!(has(&text, "- **情绪变化次数**: 5 次"));
        assert!(has(
            &text,
            "- **情绪流程**: e0 → e0 → e1 → e1 → e2 → ... → e3 → e4 → e4 → e5 → e5"
        ));
        assert!(has(&text, "- **情绪稳定性**: 变化适中 (58.3%)"));
        let same = (0..3)
            .map(|i| with_emotions(line("c", "x", &at(i)), &["calm"]))
            .collect();
        assert!(has(&summary(same), "- **情绪稳定性**: 非常稳定 (100.0%)"));
    }

    #[test]
    fn stability_thresholds() {
        assert_eq!(stability(0.8), "非常稳定");
        assert_eq!(stability(0.79), "相对稳定");
        assert_eq!(stability(0.6), "相对稳定");
        assert_eq!(stability(0.4), "变化适中");
        assert_eq!(stability(0.2), "变化较大");
        assert_eq!(stability(0.19), "情绪波动剧烈");
    }

    #[test]
    fn interaction_patterns() {
        let text = summary(vec![line("c", "x", &at(0))]);
        assert!(
            text.contains("### 交互模式分析\n\n\n### 参与角色"),
            "{text}"
        );
        let lines = vec![
            with_meta(
                line("c", "x", &at(0)),
                json!({"interaction_id": "i1", "character_ids": ["a", "b"]}),
            ),
            with_meta(
                line("c", "x", &at(1)),
                json!({"interaction_id": "i1", "character_ids": ["a"]}),
            ),
            with_meta(
                line("c", "x", &at(2)),
                json!({"interaction_id": 2, "character_ids": "a,b"}),
            ),
            line("c", "x", &at(3)),
        ];
        let text = summary(lines);
        assert!(has(&text, "- **独立交互会话**: 2 个"));
        assert!(has(&text, "- **平均每次交互消息数**: 1.5 条"));
        assert!(has(&text, "- **最长交互会话**: 2 条消息"));
        assert!(has(&text, "- **多角色互动消息**: 1 条"));
        assert!(has(&text, "- **群体互动比例**: 25.0%"));
    }

    #[test]
    fn characters_are_listed_even_without_conversations() {
        let text = interaction_summary(&with_lines(vec![], 2));
        assert!(
            text.contains("### 参与角色\n\n- **C0**: D0\n- **C1**: D1\n\n"),
            "{text}"
        );
    }

    #[test]
    fn statistics_sections() {
        let mut input = ExportInput::default();
        input
            .interaction_stats
            .emotion_distribution
            .insert("calm".into(), 1);
        input.interaction_stats.top_keywords = Some((1..=11).map(|i| format!("k{i}")).collect());
        let text = interaction_summary(&input);
        // No messages: 0.0%, not NaN.
        assert!(has(&text, "- **calm**: 1次 (0.0%)"));
        assert!(has(&text, "10. k10") && !has(&text, "11. k11"));
        no_nan(&text);
        input.interaction_stats = Default::default();
        let text = interaction_summary(&input);
        assert!(!has(&text, "### 情绪分布统计") && !has(&text, "### 热门话题关键词"));
    }

    #[test]
    fn story_section_only_with_a_story() {
        let mut input = fixture(INTERACTIONS);
        assert!(!has(&interaction_summary(&input), "### 故事进度"));
        let task = |completed| sceneintruder_export_document::Task {
            id: "t".into(),
            completed,
            ..Default::default()
        };
        input.story = Some(StoryData {
            progress: 35,
            current_state: "冲突".into(),
            tasks: vec![task(true), task(false), task(false)],
            ..StoryData::default()
        });
        let text = interaction_summary(&input);
        assert!(
            text.contains(
                "### 故事进度\n\n- **当前进度**: 35%\n- **当前状态**: 冲突\n- **已完成任务**: 1 / 3\n\n### 交互活跃度分析"
            ),
            "{text}"
        );
        input.story = Some(StoryData::default());
        let text = interaction_summary(&input);
        assert!(text.contains("- **当前进度**: 0%\n- **当前状态**: \n- **已完成任务**: 0 / 0\n"));
    }

    #[test]
    fn activity_and_quality() {
        let lines = (0..5)
            .map(|i| {
                with_meta(
                    line("c", &"x".repeat(51), &at(i)),
                    json!({"interaction_id": "i"}),
                )
            })
            .collect();
        let text = summary(lines);
        assert!(has(&text, "- **平均每次交互消息数**: 5.0"));
        assert!(has(&text, "- **活跃度评级**: 非常活跃"));
        assert!(has(&text, "- **深度消息比例**: 100.0% (5/5)"));
        // 0.51 × 0.6 + 1.0 × 0.4 = 0.706
        assert!(
            text.ends_with("- **互动质量评级**: 良好 - 内容充实，互动较好\n"),
            "{text}"
        );
        // 50 characters is not deep; 51 CJK characters are (by characters, not bytes).
        let text = summary(vec![
            line("c", &"x".repeat(50), &at(0)),
            line("c", &"雾".repeat(51), &at(1)),
        ]);
        assert!(has(&text, "- **深度消息比例**: 50.0% (1/2)"));
        // No interaction ids: heading only.
        assert!(
            text.contains("### 交互活跃度分析\n\n\n### 互动质量评估"),
            "{text}"
        );
    }

    #[test]
    fn level_thresholds() {
        assert_eq!(activity_level(5.0), "非常活跃");
        assert_eq!(activity_level(4.9), "活跃");
        assert_eq!(activity_level(3.0), "活跃");
        assert_eq!(activity_level(2.0), "一般");
        assert_eq!(activity_level(1.9), "较少互动");
        assert_eq!(quality_level(0.8), "优秀 - 内容丰富，互动深入");
        assert_eq!(quality_level(0.6), "良好 - 内容充实，互动较好");
        assert_eq!(quality_level(0.4), "一般 - 基础互动，有改进空间");
        assert_eq!(quality_level(0.2), "待提升 - 互动较浅，建议增加内容深度");
        assert_eq!(quality_level(0.19), "需要改进 - 互动内容过于简单");
    }

    #[test]
    fn degenerate_inputs_never_print_nan() {
        no_nan(&summary(vec![line("", "", ""), line("", "", "")]));
        let mut input = fixture(INTERACTIONS);
        input.interaction_stats = Default::default();
        no_nan(&interaction_summary(&input));
    }
}
