//! The scene export as plain text (spec story-export §8.7.4).

use sceneintruder_plugin_sdk::exporter::document::{
    Character, ExportInput, render,
    time::{self, Pattern},
};

use crate::text::{self, Text};

/// The whole scene document.
pub fn render(input: &ExportInput) -> String {
    let mut out = Text::default();
    out.rule('=', 60);
    out.line(format!("    {} - 完整场景数据", input.scene.scene.title));
    out.rule('=', 60);
    out.blank();
    overview(&mut out, input);
    emotions(&mut out, input);
    keywords(&mut out, input);
    out.line("场景分析报告");
    out.rule('-', 30);
    out.block(&text::strip_markers(&input.summary_markdown));
    characters(&mut out, input);
    locations(&mut out, input);
    items(&mut out, input);
    settings(&mut out, input);
    context(&mut out, input);
    activity(&mut out, input);
    conversations(&mut out, input);
    export_info(&mut out, input);
    out.finish()
}

/// A section heading between two 40-dash rules, then a blank line.
fn heading(out: &mut Text, title: &str) {
    out.rule('-', 40);
    out.line(title);
    out.rule('-', 40);
    out.blank();
}

fn overview(out: &mut Text, input: &ExportInput) {
    let stats = &input.interaction_stats;
    let scene = &input.scene;
    out.line("场景统计概览");
    out.rule('-', 30);
    out.line(format!("角色数量: {} 位", stats.character_count));
    let locations = scene.scene.locations.as_deref().unwrap_or_default().len();
    out.line(format!("地点数量: {locations} 个"));
    out.line(format!("道具数量: {} 个", scene.items.len()));
    out.line(format!("总消息数: {} 条", stats.total_messages));
    out.line(format!("交互次数: {} 次", stats.total_interactions));
    let range = &stats.date_range;
    if render::has_dates(range) {
        out.line(format!(
            "活动时间跨度: {} 至 {}",
            time::format(&range.start_date, Pattern::DateMinutes),
            time::format(&range.end_date, Pattern::DateMinutes)
        ));
        let hours = time::seconds_between(&range.start_date, &range.end_date) / 3600.0;
        out.line(format!("总活动时长: {hours:.1} 小时"));
    }
    if let Some(depth) = render::messages_per_interaction(stats) {
        out.line(format!("平均互动深度: {depth:.1} 消息/交互"));
        out.line(format!("效率评级: {}", render::efficiency_word(depth)));
    }
    out.blank();
}

/// Every emotion, most frequent first, its share of all emotion counts.
fn emotions(out: &mut Text, input: &ExportInput) {
    let distribution = &input.interaction_stats.emotion_distribution;
    if distribution.is_empty() {
        return;
    }
    out.line("情绪分布分析");
    out.rule('-', 20);
    let total = distribution.values().sum();
    for (emotion, n) in render::ranked_emotions(distribution) {
        out.line(text::emotion_line(emotion, n, total));
    }
    out.blank();
}

fn keywords(out: &mut Text, input: &ExportInput) {
    let keywords = render::keywords(&input.interaction_stats);
    if keywords.is_empty() {
        return;
    }
    out.line("热门关键词");
    out.rule('-', 20);
    out.line("对话中出现频率最高的关键词:");
    text::keyword_lines(out, keywords);
    out.blank();
}

fn characters(out: &mut Text, input: &ExportInput) {
    heading(out, "角色详细信息");
    for (i, c) in input.characters.iter().enumerate() {
        character(out, input, i + 1, c);
    }
}

fn character(out: &mut Text, input: &ExportInput, number: usize, c: &Character) {
    out.line(format!("{number}. {}", c.name));
    out.line(format!("   角色ID: {}", c.id));
    out.line(format!("   描述: {}", c.description));
    let optional = [
        ("角色定位", &c.role),
        ("性格特征", &c.personality),
        ("背景故事", &c.background),
        ("说话风格", &c.speech_style),
    ];
    for (label, value) in optional {
        if !value.is_empty() {
            out.line(format!("   {label}: {value}"));
        }
    }
    let knowledge = c.knowledge.as_deref().unwrap_or_default();
    if !knowledge.is_empty() {
        out.line(format!("   知识领域: {}", knowledge.join(", ")));
    }
    if let Some(relationships) = c.relationships.as_ref().filter(|r| !r.is_empty()) {
        out.line("   人际关系:");
        // Only relations with characters of this scene are listed (the heading still shows
        // when none is, as in the reference).
        for (other, relation) in relationships {
            if let Some(other) = input.character(other) {
                out.line(format!("     - 与{}: {relation}", other.name));
            }
        }
    }
    out.line(format!(
        "   创建时间: {}",
        time::format(&c.created_at, Pattern::DateMinutes)
    ));
    out.blank();
}

fn locations(out: &mut Text, input: &ExportInput) {
    let locations = input.scene.scene.locations.as_deref().unwrap_or_default();
    if locations.is_empty() {
        return;
    }
    heading(out, "地点信息");
    for (i, location) in locations.iter().enumerate() {
        out.line(format!("{}. {}", i + 1, location.name));
        out.line(format!("   描述: {}", location.description));
        out.blank();
    }
}

fn items(out: &mut Text, input: &ExportInput) {
    if input.scene.items.is_empty() {
        return;
    }
    heading(out, "道具信息");
    for (i, item) in input.scene.items.iter().enumerate() {
        out.line(format!("{}. {}", i + 1, item.name));
        out.line(format!("   描述: {}", item.description));
        if !item.kind.is_empty() {
            out.line(format!("   类型: {}", item.kind));
        }
        if !item.location.is_empty() {
            out.line(format!("   位置: {}", item.location));
        }
        out.line(if item.is_owned {
            "   状态: 已拥有"
        } else {
            "   状态: 未拥有"
        });
        out.blank();
    }
}

fn settings(out: &mut Text, input: &ExportInput) {
    let s = &input.settings;
    heading(out, "场景设置");
    out.line(format!("允许自由聊天: {}", s.allow_free_chat));
    out.line(format!("允许剧情转折: {}", s.allow_plot_twists));
    out.line(format!("创意程度: {:.1}/1.0", s.creativity_level));
    out.line(format!("回复长度: {}", s.response_length));
    out.line(format!("互动风格: {}", s.interaction_style));
    out.line(format!("语言复杂度: {}", s.language_complexity));
    out.line(format!(
        "最后更新: {}",
        time::format(&s.last_updated, Pattern::DateTime)
    ));
    out.blank();
}

/// The conversation log's headline facts and its last three lines. The host sends the log
/// only when conversations were asked for, so this section appears only then.
fn context(out: &mut Text, input: &ExportInput) {
    let context = &input.context;
    if context.conversations.is_empty() {
        return;
    }
    heading(out, "场景上下文");
    out.line(format!("场景ID: {}", context.scene_id));
    out.line(format!("对话记录数量: {} 条", context.conversations.len()));
    out.line(format!(
        "最后更新: {}",
        time::format(&context.last_updated, Pattern::DateTime)
    ));
    out.blank();
    out.line("最近活动:");
    let recent = &context.conversations[context.conversations.len().saturating_sub(3)..];
    for (k, line) in recent.iter().enumerate() {
        // The character's name: the line's own `speaker` (which the spec prints) is always
        // empty in stored lines.
        out.line(format!(
            "  {}. {}: {}",
            k + 1,
            input.speaker_name(line),
            render::truncate(&line.content, 40)
        ));
    }
    out.blank();
}

fn activity(out: &mut Text, input: &ExportInput) {
    let stats = &input.interaction_stats;
    if stats.total_messages == 0 {
        return;
    }
    heading(out, "场景活跃度分析");
    if let Some(depth) = render::messages_per_interaction(stats) {
        out.line(format!("活跃度评级: {}", render::scene_activity(depth)));
        out.line(format!("平均互动深度: {depth:.1} 消息/交互"));
    }
    // Characters who spoke at least once (an empty id or the user is no character). Like the
    // reference, the two lines only appear when someone spoke and the scene has characters
    // (no 0/0 share).
    let speakers = render::character_lines(&input.conversations).len();
    let cast = input.characters.len();
    if speakers > 0 && cast > 0 {
        let pct = render::percent(speakers as f64, cast as f64);
        out.line(format!(
            "角色利用率: {pct:.1}% ({speakers}/{cast} 角色参与)"
        ));
        out.line(format!("整体利用度: {}", render::completeness(pct)));
    }
    out.blank();
}

fn conversations(out: &mut Text, input: &ExportInput) {
    if !input.include_conversations || input.conversations.is_empty() {
        return;
    }
    heading(out, "对话记录");
    for (g, (_, lines)) in render::groups(&input.conversations).iter().enumerate() {
        out.line(format!("对话组 #{}:", g + 1));
        if let Some(first) = lines.first().filter(|l| !time::is_zero(&l.timestamp)) {
            out.line(format!(
                "  时间: {}",
                time::format(&first.timestamp, Pattern::DateTime)
            ));
            out.line(format!("  消息数: {} 条", lines.len()));
        }
        for (j, line) in lines.iter().enumerate() {
            out.line(format!(
                "  [{}] {}: {}",
                j + 1,
                input.speaker_name(line),
                line.content
            ));
            let emotions = line.emotions.as_deref().unwrap_or_default();
            if !emotions.is_empty() {
                out.line(format!("      [情绪: {}]", emotions.join(", ")));
            }
        }
        out.blank();
    }
}

fn export_info(out: &mut Text, input: &ExportInput) {
    let stats = &input.interaction_stats;
    out.rule('=', 60);
    out.line("导出信息");
    out.rule('=', 60);
    out.line(format!(
        "导出时间: {}",
        time::format(&input.generated_at, Pattern::DateTime)
    ));
    out.line("导出格式: 纯文本");
    out.line("导出类型: 场景数据");
    out.line(format!("包含对话: {}", input.include_conversations));
    out.line("数据来源: SceneIntruderMCP 场景服务");
    out.line("版本: v1.0");
    out.line(format!(
        "统计数据: {} 条消息，{} 次交互",
        stats.total_messages, stats.total_interactions
    ));
    if !stats.emotion_distribution.is_empty() {
        out.line(format!(
            "情绪类型: {} 种不同情绪",
            stats.emotion_distribution.len()
        ));
    }
    let keywords = render::keywords(stats);
    if !keywords.is_empty() {
        out.line(format!("关键词数量: {} 个热门词汇", keywords.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::{Conversation, ExportInput, golden};

    fn fixture() -> ExportInput {
        golden::input("scene")
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("scene.txt", &render(&fixture()));
    }

    #[test]
    fn without_conversations_the_log_sections_go() {
        let mut input = fixture();
        input.include_conversations = false;
        input.conversations.clear();
        input.context.conversations.clear();
        input.interaction_stats.total_messages = 0;
        input.interaction_stats.total_interactions = 0;
        let text = render(&input);
        assert!(!text.contains("场景上下文"));
        assert!(!text.contains("场景活跃度分析"));
        assert!(!text.contains("对话记录\n"));
        assert!(!text.contains("平均互动深度"));
        assert!(has_line(&text, "包含对话: false"));
    }

    #[test]
    fn relations_with_unknown_characters_are_left_out() {
        let text = render(&fixture());
        assert!(has_line(
            &text,
            "     - 与Watchman \"Old\" Ma: suspects him"
        ));
        assert!(!text.contains("owes her money"));
    }

    #[test]
    fn recent_activity_is_cut_at_characters() {
        let mut input = fixture();
        input.context.conversations = vec![Conversation {
            speaker: "旁白".into(),
            content: "雾".repeat(60),
            ..Default::default()
        }];
        let text = render(&input);
        assert!(has_line(
            &text,
            &format!("  1. 旁白: {}...", "雾".repeat(37))
        ));
    }

    #[test]
    fn efficiency_word_follows_the_thresholds() {
        let mut input = fixture();
        input.interaction_stats.total_messages = 3;
        input.interaction_stats.total_interactions = 2;
        assert!(has_line(&render(&input), "效率评级: 较低"));
        input.interaction_stats.total_messages = 16;
        assert!(has_line(&render(&input), "效率评级: 极高"));
    }

    #[test]
    fn zero_dates_hide_the_time_span() {
        let mut input = fixture();
        input.interaction_stats.date_range = Default::default();
        assert!(!render(&input).contains("活动时间跨度"));
    }

    #[test]
    fn a_group_without_time_shows_no_time_lines() {
        let mut input = fixture();
        for line in &mut input.conversations {
            line.timestamp = String::new();
        }
        let text = render(&input);
        assert!(text.contains("对话组 #1:\n  [1] "));
        assert!(!text.contains("  消息数:"));
    }
}
