//! The scene export as Markdown (spec story-export §8.7.3).

use sceneintruder_plugin_sdk::exporter::document::{
    Character, ExportInput, Item, render,
    time::{self, Pattern},
};

use crate::markdown::{self, Doc, Markdown, Markers};

/// The whole scene document.
pub fn render(input: &ExportInput) -> String {
    let mut doc = Doc::default();
    doc.heading(1, &format!("{} - 完整场景数据", input.scene.scene.title));
    doc.blank();
    overview(&mut doc, input);
    emotions(&mut doc, input);
    keywords(&mut doc, input);
    doc.block(&input.summary_markdown);
    characters(&mut doc, input);
    locations(&mut doc, input);
    items(&mut doc, input);
    settings(&mut doc, input);
    context(&mut doc, input);
    activity(&mut doc, input);
    conversations(&mut doc, input);
    export_info(&mut doc, input);
    doc.finish()
}

fn overview(doc: &mut Doc, input: &ExportInput) {
    let stats = &input.interaction_stats;
    let scene = &input.scene;
    doc.heading(2, "📊 场景统计概览");
    doc.blank();
    doc.item("角色数量", format!("{} 位", stats.character_count));
    let locations = scene.scene.locations.as_deref().unwrap_or_default().len();
    doc.item("地点数量", format!("{locations} 个"));
    doc.item("道具数量", format!("{} 个", scene.items.len()));
    doc.item("总消息数", format!("{} 条", stats.total_messages));
    doc.item("交互次数", format!("{} 次", stats.total_interactions));
    let range = &stats.date_range;
    if render::has_dates(range) {
        doc.item(
            "活动时间跨度",
            format!(
                "{} 至 {}",
                time::format(&range.start_date, Pattern::DateMinutes),
                time::format(&range.end_date, Pattern::DateMinutes)
            ),
        );
        let hours = time::seconds_between(&range.start_date, &range.end_date) / 3600.0;
        doc.item("总活动时长", format!("{hours:.1} 小时"));
    }
    if let Some(depth) = render::messages_per_interaction(stats) {
        doc.item("平均互动深度", format!("{depth:.1} 消息/交互"));
    }
    doc.blank();
}

/// Every emotion, most frequent first, with its share of all emotion counts.
fn emotions(doc: &mut Doc, input: &ExportInput) {
    let distribution = &input.interaction_stats.emotion_distribution;
    if distribution.is_empty() {
        return;
    }
    doc.heading(3, "情绪分布分析");
    doc.blank();
    doc.line("| 情绪类型 | 出现次数 | 占比 |");
    doc.line("|---------|----------|------|");
    let total: u64 = distribution.values().sum();
    for (emotion, n) in render::ranked_emotions(distribution) {
        let pct = render::percent(n as f64, total as f64);
        doc.row(&[emotion, &n.to_string(), &format!("{pct:.1}%")]);
    }
    doc.blank();
}

fn keywords(doc: &mut Doc, input: &ExportInput) {
    let keywords = render::keywords(&input.interaction_stats);
    if keywords.is_empty() {
        return;
    }
    doc.heading(3, "热门关键词");
    doc.blank();
    doc.line("对话中出现频率最高的关键词：");
    doc.blank();
    markdown::keyword_lines(doc, keywords, Markers::Scene);
    doc.blank();
}

fn characters(doc: &mut Doc, input: &ExportInput) {
    doc.heading(2, "👥 角色详细信息");
    doc.blank();
    for (i, c) in input.characters.iter().enumerate() {
        character(doc, input, i + 1, c);
    }
}

fn character(doc: &mut Doc, input: &ExportInput, number: usize, c: &Character) {
    doc.heading(3, &format!("{number}. {}", c.name));
    doc.blank();
    doc.item("角色ID", &c.id);
    doc.item("描述", &c.description);
    let optional = [
        ("角色定位", &c.role),
        ("性格特征", &c.personality),
        ("背景故事", &c.background),
        ("说话风格", &c.speech_style),
        ("出处作品", &c.novel),
    ];
    for (label, value) in optional {
        if !value.is_empty() {
            doc.item(label, value);
        }
    }
    let knowledge = c.knowledge.as_deref().unwrap_or_default();
    if !knowledge.is_empty() {
        doc.item("知识领域", knowledge.join(", "));
    }
    if let Some(relationships) = c.relationships.as_ref().filter(|r| !r.is_empty()) {
        doc.line("- **人际关系**:");
        // A relation to a character of this scene names (and bolds) it; any other id is
        // printed as it is.
        for (other, relation) in relationships {
            match input.character(other) {
                Some(other) => doc.sub_item(format!("与 **{}**: {relation}", other.name)),
                None => doc.sub_item(format!("与 {other}: {relation}")),
            }
        }
    }
    doc.item(
        "创建时间",
        time::format(&c.created_at, Pattern::DateMinutes),
    );
    if !time::is_zero(&c.last_updated) {
        doc.item(
            "最后更新",
            time::format(&c.last_updated, Pattern::DateMinutes),
        );
    }
    doc.blank();
}

fn locations(doc: &mut Doc, input: &ExportInput) {
    let locations = input.scene.scene.locations.as_deref().unwrap_or_default();
    if locations.is_empty() {
        return;
    }
    doc.heading(2, "🗺️ 地点信息");
    doc.blank();
    for (i, location) in locations.iter().enumerate() {
        doc.heading(3, &format!("{}. {}", i + 1, location.name));
        doc.blank();
        doc.line(format!("**描述**: {}", location.description));
        doc.blank();
    }
}

fn items(doc: &mut Doc, input: &ExportInput) {
    if input.scene.items.is_empty() {
        return;
    }
    doc.heading(2, "🎒 道具信息");
    doc.blank();
    for (i, item) in input.scene.items.iter().enumerate() {
        self::item(doc, i + 1, item);
    }
}

fn item(doc: &mut Doc, number: usize, item: &Item) {
    doc.heading(3, &format!("{number}. {}", item.name));
    doc.blank();
    doc.line(format!("**描述**: {}", item.description));
    doc.blank();
    if !item.kind.is_empty() {
        doc.line(format!("**类型**: {}", item.kind));
    }
    if !item.location.is_empty() {
        doc.line(format!("**位置**: {}", item.location));
    }
    doc.line(if item.is_owned {
        "**状态**: ✅ 已拥有"
    } else {
        "**状态**: ⭕ 未拥有"
    });
    // Only a URL that cannot run script (http(s) or relative), as on the HTML page.
    if render::safe_url(&item.image_url) {
        doc.line(format!("**图片**: ![{}]({})", item.name, item.image_url));
    }
    let usable_with = item.usable_with.as_deref().unwrap_or_default();
    if !usable_with.is_empty() {
        doc.line(format!("**可配合使用**: {}", usable_with.join(", ")));
    }
    if !time::is_zero(&item.found_at) {
        doc.line(format!(
            "**发现时间**: {}",
            time::format(&item.found_at, Pattern::DateMinutes)
        ));
    }
    // Properties are a free-form object; anything else (or an empty object) shows nothing.
    if let Some(properties) = item
        .properties
        .as_ref()
        .and_then(|p| p.as_object())
        .filter(|p| !p.is_empty())
    {
        doc.line("**额外属性**:");
        // Key order, whatever order the JSON map keeps.
        let mut entries: Vec<_> = properties.iter().collect();
        entries.sort_by_key(|(key, _)| key.as_str());
        for (key, value) in entries {
            doc.sub_item(format!("{key}: {}", render::plain(value)));
        }
    }
    doc.blank();
}

fn settings(doc: &mut Doc, input: &ExportInput) {
    let s = &input.settings;
    doc.heading(2, "⚙️ 场景设置");
    doc.blank();
    doc.heading(3, "基础设置");
    doc.blank();
    doc.item("允许自由聊天", s.allow_free_chat.to_string());
    doc.item("允许剧情转折", s.allow_plot_twists.to_string());
    doc.blank();
    doc.heading(3, "互动配置");
    doc.blank();
    doc.item("互动风格", &s.interaction_style);
    doc.item(
        "创意程度",
        format!(
            "{:.1}/1.0 ({})",
            s.creativity_level,
            creativity(s.creativity_level)
        ),
    );
    doc.blank();
    doc.heading(3, "回复配置");
    doc.blank();
    doc.item("回复长度", &s.response_length);
    doc.item("语言复杂度", &s.language_complexity);
    doc.blank();
    doc.heading(3, "系统信息");
    doc.blank();
    doc.item("场景ID", &s.scene_id);
    doc.item("最后更新", time::format(&s.last_updated, Pattern::DateTime));
    doc.blank();
    doc.heading(3, "内容策略");
    doc.blank();
    doc.item("内容策略", policy(s.allow_free_chat, s.allow_plot_twists));
    doc.blank();
}

/// The label of a creativity level (0-1).
fn creativity(level: f64) -> &'static str {
    match level {
        l if l >= 0.8 => "极高创意",
        l if l >= 0.6 => "高创意",
        l if l >= 0.4 => "中等创意",
        l if l >= 0.2 => "低创意",
        _ => "保守模式",
    }
}

/// The content policy the two freedom switches amount to.
fn policy(free_chat: bool, plot_twists: bool) -> &'static str {
    match (free_chat, plot_twists) {
        (true, true) => "开放自由 - 允许自由对话和剧情发展",
        (true, false) => "半开放 - 允许自由对话但剧情受限",
        (false, true) => "剧情导向 - 限制自由对话但允许剧情转折",
        (false, false) => "严格控制 - 限制自由对话和剧情转折",
    }
}

/// The conversation log's headline facts. The host sends the log only when conversations
/// were asked for, so this section appears only then.
fn context(doc: &mut Doc, input: &ExportInput) {
    let context = &input.context;
    let lines = &context.conversations;
    if lines.is_empty() {
        return;
    }
    doc.heading(2, "📋 场景上下文");
    doc.blank();
    doc.item("场景ID", &context.scene_id);
    doc.item("对话记录", format!("{} 条", lines.len()));
    doc.item(
        "最后更新",
        time::format(&context.last_updated, Pattern::DateTime),
    );
    // Speakers by the lines' own `speaker` (empty in real data, so usually 0 位), most
    // lines first, ties in order of first appearance.
    let mut speakers: Vec<(&str, usize)> = Vec::new();
    for line in lines.iter().filter(|l| !l.speaker.is_empty()) {
        match speakers.iter_mut().find(|(s, _)| *s == line.speaker) {
            Some((_, n)) => *n += 1,
            None => speakers.push((line.speaker.as_str(), 1)),
        }
    }
    doc.item("活跃参与者", format!("{} 位", speakers.len()));
    speakers.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    if !speakers.is_empty() {
        let top: Vec<String> = speakers
            .iter()
            .take(3)
            .map(|(s, n)| format!("{s} ({n})"))
            .collect();
        doc.item("主要发言者", top.join(", "));
    }
    if let [first, .., last] = lines.as_slice()
        && !time::is_zero(&first.timestamp)
        && !time::is_zero(&last.timestamp)
    {
        let hours = time::seconds_between(&first.timestamp, &last.timestamp) / 3600.0;
        doc.item(
            "活动时间跨度",
            format!(
                "{} 至 {} ({hours:.1} 小时)",
                time::format(&first.timestamp, Pattern::DateMinutes),
                time::format(&last.timestamp, Pattern::DateMinutes)
            ),
        );
    }
    doc.blank();
}

fn activity(doc: &mut Doc, input: &ExportInput) {
    let stats = &input.interaction_stats;
    if stats.total_messages == 0 {
        return;
    }
    doc.heading(2, "📈 场景活跃度分析");
    doc.blank();
    if let Some(depth) = render::messages_per_interaction(stats) {
        doc.item("活跃度评级", render::scene_activity(depth));
        doc.item("平均互动深度", format!("{depth:.1} 消息/交互"));
    }
    // k counts the distinct scene characters who spoke (the reference counted their
    // messages, so the share could pass 100%). k > 0 implies the scene has characters, so
    // there is no division by zero.
    let cast = input.characters.len();
    let k = render::character_lines(&input.conversations)
        .iter()
        .filter(|(id, _)| input.character(id).is_some())
        .count();
    if k > 0 {
        let pct = render::percent(k as f64, cast as f64);
        doc.item("角色利用率", format!("{pct:.1}% ({k}/{cast} 角色参与)"));
        doc.item(
            "整体利用度",
            format!("{} ({pct:.1}%)", render::completeness(pct)),
        );
    }
    doc.blank();
}

fn conversations(doc: &mut Doc, input: &ExportInput) {
    if !input.include_conversations || input.conversations.is_empty() {
        return;
    }
    doc.heading(2, "💬 对话记录");
    doc.blank();
    for (g, (_, lines)) in render::groups(&input.conversations).iter().enumerate() {
        doc.heading(3, &format!("📖 对话组 #{}", g + 1));
        doc.blank();
        if let Some(first) = lines.first().filter(|l| !time::is_zero(&l.timestamp)) {
            doc.line(format!(
                "**时间**: {}",
                time::format(&first.timestamp, Pattern::DateTime)
            ));
            doc.line(format!("**消息数**: {} 条", lines.len()));
        }
        doc.blank();
        for (j, line) in lines.iter().enumerate() {
            doc.line(format!(
                "**[{}]** **{}**: {}",
                j + 1,
                input.speaker_name(line),
                line.content
            ));
            doc.blank();
            let emotions = line.emotions.as_deref().unwrap_or_default();
            if !emotions.is_empty() {
                doc.line(format!("*情绪: {}*", emotions.join(", ")));
                doc.blank();
            }
        }
        doc.line("---");
        doc.blank();
    }
}

fn export_info(doc: &mut Doc, input: &ExportInput) {
    let stats = &input.interaction_stats;
    doc.heading(2, "📄 导出信息");
    doc.blank();
    doc.item(
        "导出时间",
        time::format(&input.generated_at, Pattern::DateTime),
    );
    doc.item("导出格式", "Markdown");
    doc.item("导出类型", "场景数据");
    doc.item("包含对话", input.include_conversations.to_string());
    doc.item("数据来源", "SceneIntruderMCP 场景服务");
    doc.item("版本", "v1.0");
    doc.item(
        "统计数据",
        format!(
            "{} 条消息，{} 次交互",
            stats.total_messages, stats.total_interactions
        ),
    );
    if !stats.emotion_distribution.is_empty() {
        doc.item(
            "情绪类型",
            format!("{} 种不同情绪", stats.emotion_distribution.len()),
        );
    }
    let keywords = render::keywords(stats);
    if !keywords.is_empty() {
        doc.item("关键词数量", format!("{} 个热门词汇", keywords.len()));
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
        golden::check("scene.markdown", &render(&fixture()));
    }

    #[test]
    fn the_summary_is_embedded_as_it_is() {
        let input = fixture();
        let text = render(&input);
        let summary = input.summary_markdown.trim_end();
        assert!(text.contains(&format!("\n\n{summary}\n\n## 👥 角色详细信息\n")));
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
        assert!(!text.contains("💬 对话记录"));
        assert!(!text.contains("平均互动深度"));
        assert!(has_line(&text, "- **包含对话**: false"));
    }

    #[test]
    fn conversations_need_the_flag() {
        let mut input = fixture();
        input.include_conversations = false;
        assert!(!render(&input).contains("💬 对话记录"));
    }

    #[test]
    fn no_emotions_or_keywords_hide_their_sections() {
        let mut input = fixture();
        input.interaction_stats.emotion_distribution.clear();
        input.interaction_stats.top_keywords = None;
        let text = render(&input);
        assert!(!text.contains("情绪分布分析"));
        assert!(!text.contains("热门关键词"));
        assert!(!text.contains("情绪类型"));
        assert!(!text.contains("关键词数量"));
    }

    #[test]
    fn relations_name_scene_characters_and_keep_other_ids() {
        let text = render(&fixture());
        assert!(has_line(
            &text,
            "  - 与 **Watchman \"Old\" Ma**: suspects him"
        ));
        assert!(has_line(&text, "  - 与 char_gone: owes her money"));
    }

    #[test]
    fn creativity_and_policy_labels_at_their_thresholds() {
        assert_eq!(creativity(0.8), "极高创意");
        assert_eq!(creativity(0.79), "高创意");
        assert_eq!(creativity(0.4), "中等创意");
        assert_eq!(creativity(0.2), "低创意");
        assert_eq!(creativity(0.0), "保守模式");
        assert_eq!(policy(false, true), "剧情导向 - 限制自由对话但允许剧情转折");
        let mut input = fixture();
        input.settings.creativity_level = 0.85;
        assert!(has_line(
            &render(&input),
            "- **创意程度**: 0.8/1.0 (极高创意)"
        ));
    }

    #[test]
    fn zero_dates_hide_the_time_span() {
        let mut input = fixture();
        input.interaction_stats.date_range = Default::default();
        let text = render(&input);
        assert!(!text.contains("活动时间跨度**: 2025-06-20 10:01"));
        assert!(!text.contains("总活动时长"));
    }

    #[test]
    fn a_group_without_time_shows_no_time_lines() {
        let mut input = fixture();
        for line in &mut input.conversations {
            line.timestamp = String::new();
        }
        let text = render(&input);
        assert!(!text.contains("**时间**"));
        assert!(!text.contains("**消息数**"));
    }

    #[test]
    fn context_speakers_rank_by_lines() {
        let mut input = fixture();
        let said = |speaker: &str| Conversation {
            speaker: speaker.into(),
            content: "…".into(),
            ..Default::default()
        };
        input.context.conversations = ["甲", "乙", "乙", "丙", "丁", "丁", "丁"]
            .into_iter()
            .map(said)
            .collect();
        let text = render(&input);
        assert!(has_line(&text, "- **活跃参与者**: 4 位"));
        assert!(has_line(&text, "- **主要发言者**: 丁 (3), 乙 (2), 甲 (1)"));
        // No times on these lines: no span.
        assert!(!text.contains("小时)"));
    }

    #[test]
    fn character_use_counts_distinct_scene_characters() {
        let mut input = fixture();
        // Three lines of one character, one of the user, one of an id not in the scene.
        for (line, id) in input.conversations.iter_mut().zip([
            "char_quill",
            "char_quill",
            "user",
            "char_gone",
            "char_quill",
        ]) {
            line.speaker_id = id.into();
        }
        input.conversations.truncate(5);
        let text = render(&input);
        assert!(has_line(&text, "- **角色利用率**: 33.3% (1/3 角色参与)"));
        assert!(has_line(
            &text,
            "- **整体利用度**: 待提升 - 许多场景要素未被利用 (33.3%)"
        ));
    }

    #[test]
    fn item_images_need_a_safe_url() {
        let mut input = fixture();
        input.scene.items[0].image_url = "img/ledger.png".into();
        input.scene.items[1].image_url = "javascript:alert(1)".into();
        let text = render(&input);
        assert!(has_line(&text, "**图片**: ![Ledger](img/ledger.png)"));
        assert!(!text.contains("javascript:"));
    }

    #[test]
    fn multi_line_values_stay_inside_their_items() {
        let mut input = fixture();
        input.characters[0].background = "Line one.\n\n# not a heading".into();
        let text = render(&input);
        assert!(text.contains("- **背景故事**: Line one.\n\n  # not a heading\n"));
    }
}
