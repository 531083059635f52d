//! The scene report in Markdown (spec §8.7.1), shared by every format of the scene export.

use sceneintruder_export_document::lines::Lines;
use sceneintruder_export_document::render::{
    character_lines, completeness, is_user_speaker, messages_per_interaction, scene_activity,
};
use sceneintruder_export_document::time::{self, Pattern};
use sceneintruder_export_document::{Conversation, ExportInput, Scene};

use crate::analysis::{average_chars, most_active_speaker, ratio, share};
use crate::sections;

/// The scene report over `input.scene`, `input.characters`, `input.conversations` (the
/// interaction conversations, empty unless `include_conversations`) and
/// `input.interaction_stats`. `input.summary_markdown` is not read.
pub fn scene_summary(input: &ExportInput) -> String {
    let scene = &input.scene.scene;
    let stats = &input.interaction_stats;
    let lines = input.conversations.as_slice();
    let mut out = Lines::default();
    overview(&mut out, scene);
    setting(&mut out, scene);
    numbers(&mut out, input);
    if !lines.is_empty() {
        content(&mut out, lines);
    }
    if !lines.is_empty() && input.characters.len() > 1 {
        participation(&mut out, lines, input.characters.len());
    }
    if !lines.is_empty() {
        elements(&mut out, input);
    }
    sections::emotions(&mut out, "### 情绪分布", stats);
    sections::keywords(&mut out, "### 热门关键词", stats);
    if !lines.is_empty() {
        activity(&mut out, input);
    }
    out.finish()
}

fn overview(out: &mut Lines, scene: &Scene) {
    out.line(format!("## {} - 场景数据报告", scene.title));
    out.blank();
    out.line("### 场景概览");
    out.blank();
    out.line(format!("- **场景ID**: {}", scene.id));
    out.line(format!("- **场景名称**: {}", scene.title));
    out.line(format!("- **场景描述**: {}", scene.description));
    if !scene.source.is_empty() {
        out.line(format!("- **数据来源**: {}", scene.source));
    }
    out.line(format!(
        "- **创建时间**: {}",
        time::format(&scene.created_at, Pattern::DateTime)
    ));
    out.line(format!(
        "- **最后更新**: {}",
        time::format(&scene.last_updated, Pattern::DateTime)
    ));
    out.line(format!(
        "- **最后访问**: {}",
        time::format(&scene.last_accessed, Pattern::DateTime)
    ));
    out.blank();
}

fn setting(out: &mut Lines, scene: &Scene) {
    out.line("### 环境设定");
    out.blank();
    if let Some(themes) = scene.themes.as_ref().filter(|t| !t.is_empty()) {
        out.line(format!("- **主要主题**: {}", themes.join(", ")));
    }
    if !scene.era.is_empty() {
        out.line(format!("- **时代背景**: {}", scene.era));
    }
    if !scene.atmosphere.is_empty() {
        out.line(format!("- **氛围设定**: {}", scene.atmosphere));
    }
    out.blank();
}

fn numbers(out: &mut Lines, input: &ExportInput) {
    let stats = &input.interaction_stats;
    let locations = input.scene.scene.locations.as_ref().map_or(0, Vec::len);
    out.line("### 数据统计");
    out.blank();
    out.line(format!("- **角色数量**: {} 位", stats.character_count));
    out.line(format!("- **地点数量**: {locations} 个"));
    out.line(format!("- **道具数量**: {} 个", input.scene.items.len()));
    out.line(format!("- **消息数量**: {} 条", stats.total_messages));
    out.line(format!("- **交互次数**: {} 次", stats.total_interactions));
    if input.include_conversations && stats.total_messages > 0 {
        out.line(format!("- **对话记录**: {} 条", stats.total_messages));
    }
    out.blank();
}

/// 对话内容分析 (`lines` is not empty).
fn content(out: &mut Lines, lines: &[Conversation]) {
    let n = lines.len() as f64;
    let (users, characters) = split(lines);
    let average = average_chars(lines);
    out.line("### 对话内容分析");
    out.blank();
    out.line(format!(
        "- **用户发言**: {users} 条 ({:.1}%)",
        share(users as f64, n)
    ));
    out.line(format!(
        "- **角色响应**: {characters} 条 ({:.1}%)",
        share(characters as f64, n)
    ));
    if let Some((speaker, count)) = most_active_speaker(lines) {
        out.line(format!("- **最活跃角色**: {speaker} ({count} 条发言)"));
    }
    out.line(format!("- **平均消息长度**: {average:.1} 字符"));
    out.line(format!("- **内容质量**: {}", content_quality(average)));
    // First and last in list order (the log's order), as the reference measures the span.
    if let [first, .., last] = lines
        && !time::is_zero(&first.timestamp)
        && !time::is_zero(&last.timestamp)
    {
        let seconds = time::seconds_between(&first.timestamp, &last.timestamp);
        out.line(format!("- **对话时间跨度**: {:.1} 分钟", seconds / 60.0));
        if seconds > 0.0 {
            out.line(format!(
                "- **平均发言间隔**: {:.1} 秒",
                ratio(seconds, n - 1.0)
            ));
        }
    }
    out.blank();
}

/// User lines and character lines. A line with metadata is classified by its
/// `speaker_type` (`user`, `character`, anything else by `speaker`) and not counted when it
/// has none; a line without metadata is classified by `speaker`.
fn split(lines: &[Conversation]) -> (usize, usize) {
    let (mut users, mut characters) = (0, 0);
    for line in lines {
        let by_speaker = is_user_speaker(&line.speaker);
        let user = if line.metadata.is_empty() {
            Some(by_speaker)
        } else {
            line.metadata
                .get("speaker_type")
                .map(|kind| match kind.as_str() {
                    Some("user") => true,
                    Some("character") => false,
                    _ => by_speaker,
                })
        };
        match user {
            Some(true) => users += 1,
            Some(false) => characters += 1,
            None => {}
        }
    }
    (users, characters)
}

/// 角色互动模式 (`lines` is not empty, the scene has more than one character).
fn participation(out: &mut Lines, lines: &[Conversation], character_total: usize) {
    // Most lines first.
    let speaking = character_lines(lines);
    out.line("### 角色互动模式");
    out.blank();
    if !speaking.is_empty() {
        let k = speaking.len();
        out.line(format!("- **参与角色数**: {k} / {character_total}"));
        out.line(format!(
            "- **角色参与率**: {:.1}%",
            share(k as f64, character_total as f64)
        ));
        // Two speakers at least: the quietest one's lines as a share of the busiest one's.
        if let [(_, most), .., (_, least)] = speaking.as_slice() {
            let pct = share(*least as f64, *most as f64);
            out.line(format!("- **互动均衡性**: {} ({pct:.1}%)", balance(pct)));
        }
    }
    out.blank();
}

/// 场景要素利用情况 (`input.conversations` is not empty).
fn elements(out: &mut Lines, input: &ExportInput) {
    // Every lower-cased content followed by a space, as the reference joins them.
    let mut text = String::new();
    for line in &input.conversations {
        text.push_str(&line.content.to_lowercase());
        text.push(' ');
    }
    // An unnamed element is not "mentioned" (the reference counted it: "" is in any text).
    let mentioned = |name: &str| !name.is_empty() && text.contains(&name.to_lowercase());
    out.line("### 场景要素利用情况");
    out.blank();
    if let Some(locations) = input
        .scene
        .scene
        .locations
        .as_ref()
        .filter(|l| !l.is_empty())
    {
        let n = locations.len();
        let m = locations.iter().filter(|l| mentioned(&l.name)).count();
        out.line(format!(
            "- **地点利用率**: {:.1}% ({m}/{n} 地点被提及)",
            share(m as f64, n as f64)
        ));
    }
    let items = &input.scene.items;
    if !items.is_empty() {
        let n = items.len();
        let m = items.iter().filter(|i| mentioned(&i.name)).count();
        out.line(format!(
            "- **道具利用率**: {:.1}% ({m}/{n} 道具被提及)",
            share(m as f64, n as f64)
        ));
    }
    out.blank();
}

/// 场景活跃度评估 (`input.conversations` is not empty).
fn activity(out: &mut Lines, input: &ExportInput) {
    let stats = &input.interaction_stats;
    out.line("### 场景活跃度评估");
    out.blank();
    if let Some(depth) = messages_per_interaction(stats) {
        out.line(format!("- **平均交互深度**: {depth:.1} 消息/交互"));
        out.line(format!("- **活跃度评级**: {}", scene_activity(depth)));
    }
    if !input.characters.is_empty() {
        let speaking = character_lines(&input.conversations).len();
        let pct = share(speaking as f64, input.characters.len() as f64);
        out.line(format!(
            "- **场景完整性**: {} ({pct:.1}%)",
            completeness(pct)
        ));
    }
    out.blank();
}

/// 内容质量 from the mean message length in characters.
fn content_quality(average: f64) -> &'static str {
    match average {
        a if a >= 100.0 => "高 - 内容详细丰富",
        a if a >= 50.0 => "中等 - 内容适中",
        a if a >= 20.0 => "较低 - 内容相对简短",
        _ => "低 - 内容过于简单",
    }
}

/// 互动均衡性 from the quietest character's lines as a share of the busiest one's.
fn balance(pct: f64) -> &'static str {
    match pct {
        p if p >= 80.0 => "高 - 角色发言相对均衡",
        p if p >= 60.0 => "中等 - 角色参与度适中",
        p if p >= 40.0 => "较低 - 部分角色发言较少",
        _ => "低 - 角色参与度差异较大",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{SCENE, at, fixture, has, line, no_nan, starts, with_meta};
    use sceneintruder_export_document::{Character, Item, Location};
    use serde_json::json;

    fn characters(n: usize) -> Vec<Character> {
        (0..n)
            .map(|i| Character {
                id: format!("char_{i}"),
                name: format!("C{i}"),
                ..Default::default()
            })
            .collect()
    }

    /// An input with these conversations, consistent statistics and `n` characters.
    fn with_lines(lines: Vec<Conversation>, n: usize) -> ExportInput {
        let mut input = ExportInput {
            include_conversations: true,
            characters: characters(n),
            conversations: lines,
            ..Default::default()
        };
        input.interaction_stats =
            crate::interaction_stats(crate::Kind::Scene, &input.conversations, n);
        input
    }

    #[test]
    fn golden_scene_input() {
        let expected = "\
## The Harbor Fog - 场景数据报告

### 场景概览

- **场景ID**: scene_harbor
- **场景名称**: The Harbor Fog
- **场景描述**: A coastal town is swallowed by fog; a crate vanishes from the pier.
- **数据来源**: upload
- **创建时间**: 2025-06-20 09:00:00
- **最后更新**: 2025-06-20 10:45:00
- **最后访问**: 2025-06-20 10:59:00

### 环境设定

- **主要主题**: mystery, trust
- **时代背景**: 1920s
- **氛围设定**: damp, tense

### 数据统计

- **角色数量**: 3 位
- **地点数量**: 2 个
- **道具数量**: 2 个
- **消息数量**: 6 条
- **交互次数**: 2 次
- **对话记录**: 6 条

### 对话内容分析

- **用户发言**: 0 条 (0.0%)
- **角色响应**: 0 条 (0.0%)
- **平均消息长度**: 45.8 字符
- **内容质量**: 较低 - 内容相对简短
- **对话时间跨度**: 19.0 分钟
- **平均发言间隔**: 228.0 秒

### 角色互动模式

- **参与角色数**: 3 / 3
- **角色参与率**: 100.0%
- **互动均衡性**: 低 - 角色参与度差异较大 (33.3%)

### 场景要素利用情况

- **地点利用率**: 50.0% (1/2 地点被提及)
- **道具利用率**: 100.0% (2/2 道具被提及)

### 情绪分布

- **afraid**: 1次 (16.7%)
- **angry**: 1次 (16.7%)
- **calm**: 1次 (16.7%)
- **defensive**: 1次 (16.7%)
- **suspicious**: 2次 (33.3%)

### 热门关键词

1. where
2. midnight
3. lantern
4. ledger
5. crates

### 场景活跃度评估

- **平均交互深度**: 3.0 消息/交互
- **活跃度评级**: 中等 - 正常交流水平
- **场景完整性**: 优秀 - 场景要素充分利用 (100.0%)

";
        assert_eq!(scene_summary(&fixture(SCENE)), expected);
    }

    #[test]
    fn empty_input_keeps_only_the_fixed_sections() {
        let expected = "\
##  - 场景数据报告

### 场景概览

- **场景ID**: 
- **场景名称**: 
- **场景描述**: 
- **创建时间**: 0001-01-01 00:00:00
- **最后更新**: 0001-01-01 00:00:00
- **最后访问**: 0001-01-01 00:00:00

### 环境设定


### 数据统计

- **角色数量**: 0 位
- **地点数量**: 0 个
- **道具数量**: 0 个
- **消息数量**: 0 条
- **交互次数**: 0 次

";
        let mut input = ExportInput::default();
        assert_eq!(scene_summary(&input), expected);
        // Stats of a scene export without conversations: `top_keywords` is `[]`, hidden.
        input.interaction_stats = crate::interaction_stats(crate::Kind::Scene, &[], 0);
        assert_eq!(scene_summary(&input), expected);
    }

    #[test]
    fn optional_scene_lines() {
        let mut input = fixture(SCENE);
        let scene = &mut input.scene.scene;
        scene.source.clear();
        scene.themes = Some(vec![]);
        scene.era.clear();
        scene.atmosphere.clear();
        let text = scene_summary(&input);
        for prefix in [
            "- **数据来源**",
            "- **主要主题**",
            "- **时代背景**",
            "- **氛围设定**",
        ] {
            assert!(!starts(&text, prefix), "{prefix}");
        }
        input.scene.scene.themes = None;
        assert!(!starts(&scene_summary(&input), "- **主要主题**"));
    }

    #[test]
    fn conversation_record_needs_the_flag_and_messages() {
        let mut input = fixture(SCENE);
        assert!(has(&scene_summary(&input), "- **对话记录**: 6 条"));
        input.include_conversations = false;
        assert!(!starts(&scene_summary(&input), "- **对话记录**"));
        input.include_conversations = true;
        input.interaction_stats.total_messages = 0;
        assert!(!starts(&scene_summary(&input), "- **对话记录**"));
    }

    #[test]
    fn no_conversations_hide_the_conversation_sections() {
        let mut input = fixture(SCENE);
        input.conversations.clear();
        let text = scene_summary(&input);
        for heading in [
            "### 对话内容分析",
            "### 角色互动模式",
            "### 场景要素利用情况",
            "### 场景活跃度评估",
        ] {
            assert!(!has(&text, heading), "{heading}");
        }
        // The statistics sections follow the statistics, not the list.
        assert!(has(&text, "### 情绪分布"));
        assert!(has(&text, "### 热门关键词"));
    }

    #[test]
    fn user_and_character_lines_by_the_scene_rule() {
        let mut user_by_speaker = line("user", "hi", &at(1));
        user_by_speaker.speaker = "用户".into();
        let mut other_type = with_meta(line("x", "a", &at(2)), json!({"speaker_type": "robot"}));
        other_type.speaker = "user".into();
        let lines = vec![
            with_meta(line("user", "a", &at(0)), json!({"speaker_type": "user"})),
            with_meta(line("c", "a", &at(0)), json!({"speaker_type": "character"})),
            // Metadata without speaker_type: not counted at all.
            with_meta(line("c", "a", &at(0)), json!({"interaction_id": "i"})),
            user_by_speaker,
            line("c", "a", &at(3)),
            other_type,
        ];
        let text = scene_summary(&with_lines(lines, 2));
        assert!(has(&text, "- **用户发言**: 3 条 (50.0%)"), "{text}");
        assert!(has(&text, "- **角色响应**: 2 条 (33.3%)"), "{text}");
    }

    #[test]
    fn most_active_speaker_line() {
        let mut a = line("c", "x", &at(0));
        a.speaker = "Quill".into();
        let text = scene_summary(&with_lines(vec![a.clone(), a, line("c", "x", &at(1))], 2));
        assert!(has(&text, "- **最活跃角色**: Quill (2 条发言)"));
        let text = scene_summary(&with_lines(vec![line("c", "x", &at(1))], 2));
        assert!(!starts(&text, "- **最活跃角色**"));
    }

    #[test]
    fn message_length_counts_characters() {
        // 20 CJK characters are 60 bytes: by characters this is 较低, not 中等.
        let text = scene_summary(&with_lines(vec![line("c", &"雾".repeat(20), &at(0))], 1));
        assert!(has(&text, "- **平均消息长度**: 20.0 字符"));
        assert!(has(&text, "- **内容质量**: 较低 - 内容相对简短"));
    }

    #[test]
    fn content_quality_thresholds() {
        assert_eq!(content_quality(100.0), "高 - 内容详细丰富");
        assert_eq!(content_quality(99.9), "中等 - 内容适中");
        assert_eq!(content_quality(50.0), "中等 - 内容适中");
        assert_eq!(content_quality(20.0), "较低 - 内容相对简短");
        assert_eq!(content_quality(19.9), "低 - 内容过于简单");
        assert_eq!(content_quality(0.0), "低 - 内容过于简单");
    }

    #[test]
    fn time_span_conditions() {
        let span = |lines: Vec<Conversation>| scene_summary(&with_lines(lines, 1));
        let text = span(vec![
            line("c", "x", &at(0)),
            line("c", "x", &at(1)),
            line("c", "x", &at(4)),
        ]);
        assert!(has(&text, "- **对话时间跨度**: 4.0 分钟"));
        assert!(has(&text, "- **平均发言间隔**: 120.0 秒"));
        // One line: no span.
        assert!(!starts(
            &span(vec![line("c", "x", &at(0))]),
            "- **对话时间跨度**"
        ));
        // A zero (or unreadable) end: no span.
        let text = span(vec![
            line("c", "x", &at(0)),
            line("c", "x", "0001-01-01T00:00:00Z"),
        ]);
        assert!(!starts(&text, "- **对话时间跨度**"));
        let text = span(vec![line("c", "x", "garbage"), line("c", "x", &at(0))]);
        assert!(!starts(&text, "- **对话时间跨度**"));
        // List order, not time order: a negative span prints, the interval does not.
        let text = span(vec![line("c", "x", &at(3)), line("c", "x", &at(0))]);
        assert!(has(&text, "- **对话时间跨度**: -3.0 分钟"));
        assert!(!starts(&text, "- **平均发言间隔**"));
        // Equal times: span 0, no interval.
        let text = span(vec![line("c", "x", &at(3)), line("c", "x", &at(3))]);
        assert!(has(&text, "- **对话时间跨度**: 0.0 分钟"));
        assert!(!starts(&text, "- **平均发言间隔**"));
    }

    #[test]
    fn participation_block() {
        let lines = || vec![line("char_0", "x", &at(0)), line("char_1", "x", &at(1))];
        // One character: no block.
        assert!(!has(
            &scene_summary(&with_lines(lines(), 1)),
            "### 角色互动模式"
        ));
        // Only the user (or nobody) speaks: heading without lines.
        let text = scene_summary(&with_lines(
            vec![line("user", "x", &at(0)), line("", "x", &at(0))],
            2,
        ));
        assert!(
            text.contains("### 角色互动模式\n\n\n### 场景要素利用情况"),
            "{text}"
        );
        // One speaker: no balance line.
        let text = scene_summary(&with_lines(vec![line("char_0", "x", &at(0))], 4));
        assert!(has(&text, "- **参与角色数**: 1 / 4"));
        assert!(has(&text, "- **角色参与率**: 25.0%"));
        assert!(!starts(&text, "- **互动均衡性**"));
        let text = scene_summary(&with_lines(lines(), 2));
        assert!(has(
            &text,
            "- **互动均衡性**: 高 - 角色发言相对均衡 (100.0%)"
        ));
    }

    #[test]
    fn balance_thresholds() {
        assert_eq!(balance(80.0), "高 - 角色发言相对均衡");
        assert_eq!(balance(79.9), "中等 - 角色参与度适中");
        assert_eq!(balance(60.0), "中等 - 角色参与度适中");
        assert_eq!(balance(40.0), "较低 - 部分角色发言较少");
        assert_eq!(balance(39.9), "低 - 角色参与度差异较大");
    }

    #[test]
    fn element_use() {
        let mut input = with_lines(vec![line("c", "At the PIER, near the 茶馆", &at(0))], 1);
        let text = scene_summary(&input);
        assert!(has(&text, "### 场景要素利用情况"));
        assert!(!starts(&text, "- **地点利用率**"));
        assert!(!starts(&text, "- **道具利用率**"));
        input.scene.scene.locations = Some(vec![
            Location {
                name: "The Pier".into(),
                description: String::new(),
            },
            Location {
                name: "茶馆".into(),
                description: String::new(),
            },
            Location {
                name: "Lighthouse".into(),
                description: String::new(),
            },
            Location {
                name: String::new(),
                description: String::new(),
            },
        ]);
        input.scene.items = vec![Item {
            name: "Ledger".into(),
            ..Default::default()
        }];
        let text = scene_summary(&input);
        assert!(
            has(&text, "- **地点利用率**: 50.0% (2/4 地点被提及)"),
            "{text}"
        );
        assert!(
            has(&text, "- **道具利用率**: 0.0% (0/1 道具被提及)"),
            "{text}"
        );
    }

    #[test]
    fn emotions_without_messages_print_zero_not_nan() {
        let mut input = ExportInput::default();
        input
            .interaction_stats
            .emotion_distribution
            .insert("calm".into(), 2);
        let text = scene_summary(&input);
        assert!(has(&text, "- **calm**: 2次 (0.0%)"));
        no_nan(&text);
    }

    #[test]
    fn keywords_hidden_when_none_or_empty_and_capped_at_ten() {
        let mut input = ExportInput::default();
        input.interaction_stats.top_keywords = None;
        assert!(!has(&scene_summary(&input), "### 热门关键词"));
        input.interaction_stats.top_keywords = Some(vec![]);
        assert!(!has(&scene_summary(&input), "### 热门关键词"));
        input.interaction_stats.top_keywords = Some((1..=12).map(|i| format!("k{i}")).collect());
        let text = scene_summary(&input);
        assert!(has(&text, "10. k10"));
        assert!(!has(&text, "11. k11"));
    }

    #[test]
    fn activity_section() {
        // No interaction ids: no depth lines; characters: completeness.
        let text = scene_summary(&with_lines(vec![line("char_0", "x", &at(0))], 2));
        assert!(has(&text, "### 场景活跃度评估"));
        assert!(!starts(&text, "- **平均交互深度**"));
        assert!(has(
            &text,
            "- **场景完整性**: 一般 - 部分要素有待发掘 (50.0%)"
        ));
        // No characters: no completeness (and no division by zero).
        let text = scene_summary(&with_lines(vec![line("char_0", "x", &at(0))], 0));
        assert!(!starts(&text, "- **场景完整性**"));
        let lines = (0..8)
            .map(|i| with_meta(line("char_0", "x", &at(i)), json!({"interaction_id": "i1"})))
            .collect();
        let text = scene_summary(&with_lines(lines, 1));
        assert!(has(&text, "- **平均交互深度**: 8.0 消息/交互"));
        assert!(has(&text, "- **活跃度评级**: 极高 - 深度互动，内容丰富"));
        assert!(text.ends_with("(100.0%)\n\n"));
    }

    #[test]
    fn degenerate_inputs_never_print_nan() {
        let mut input = with_lines(vec![line("", "", ""), line("", "", "")], 3);
        input.scene.scene.locations = Some(vec![]);
        no_nan(&scene_summary(&input));
        let mut input = fixture(SCENE);
        input.interaction_stats = Default::default();
        input.characters.clear();
        no_nan(&scene_summary(&input));
    }
}
