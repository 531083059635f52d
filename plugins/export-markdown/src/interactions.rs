//! The interactions export as Markdown (spec story-export §8.8.3).

use sceneintruder_plugin_sdk::exporter::document::{
    Character, Conversation, ExportInput, render,
    time::{self, Pattern},
};

use crate::markdown::{self, Doc, Markdown, Markers};

/// The whole interactions document: a short report, then the full record. The interaction
/// summary appears twice (once in each part), as the spec lays it out.
pub fn render(input: &ExportInput) -> String {
    let mut doc = Doc::default();
    report_head(&mut doc, input);
    doc.heading(1, &format!("{} - 完整交互记录", input.scene.scene.title));
    doc.blank();
    scene_info(&mut doc, input);
    characters(&mut doc, input);
    statistics(&mut doc, input);
    emotions(&mut doc, input);
    keywords(&mut doc, input);
    doc.heading(2, "📝 详细分析报告");
    doc.blank();
    doc.block(&input.summary_markdown);
    conversations(&mut doc, input);
    insights(&mut doc, input);
    export_info(&mut doc, input);
    doc.finish()
}

/// The short report that opens the document, ending with the summary.
fn report_head(doc: &mut Doc, input: &ExportInput) {
    let scene = &input.scene.scene;
    let stats = &input.interaction_stats;
    doc.heading(1, &format!("{} - 交互摘要报告", scene.title));
    doc.blank();
    doc.line(format!("**场景ID**: {}", scene.id));
    doc.blank();
    doc.heading(2, "基础信息");
    doc.blank();
    doc.item("场景ID", &scene.id);
    doc.item("场景名称", &scene.title);
    doc.item("场景描述", &scene.description);
    doc.item(
        "生成时间",
        time::format(&input.generated_at, Pattern::DateTime),
    );
    doc.blank();
    doc.heading(2, "统计数据");
    doc.blank();
    doc.item("总消息数", stats.total_messages.to_string());
    doc.item("参与角色数", stats.character_count.to_string());
    doc.item("交互次数", stats.total_interactions.to_string());
    doc.blank();
    doc.heading(2, "详细分析");
    doc.blank();
    doc.block(&input.summary_markdown);
}

fn scene_info(doc: &mut Doc, input: &ExportInput) {
    let scene = &input.scene.scene;
    doc.heading(2, "📋 场景信息");
    doc.blank();
    doc.item("场景ID", &scene.id);
    doc.item("场景名称", &scene.title);
    doc.item("场景描述", &scene.description);
    if !scene.source.is_empty() {
        doc.item("数据来源", &scene.source);
    }
    for (label, at) in [
        ("创建时间", &scene.created_at),
        ("最后访问", &scene.last_accessed),
        ("最后更新", &scene.last_updated),
    ] {
        doc.item(label, time::format(at, Pattern::DateTime));
    }
    let locations = scene.locations.as_deref().unwrap_or_default();
    if !locations.is_empty() {
        doc.item("可用地点", format!("{} 个", locations.len()));
        for location in locations {
            doc.sub_item(format!("{}: {}", location.name, location.description));
        }
    }
    let themes = scene.themes.as_deref().unwrap_or_default();
    if !themes.is_empty() {
        doc.item("主要主题", themes.join(", "));
    }
    if !scene.era.is_empty() {
        doc.item("时代背景", &scene.era);
    }
    if !scene.atmosphere.is_empty() {
        doc.item("氛围设定", &scene.atmosphere);
    }
    let items = &input.scene.items;
    if !items.is_empty() {
        doc.item("可用道具", format!("{} 个", items.len()));
        for item in items {
            let mut entry = format!("**{}**: {}", item.name, item.description);
            if !item.kind.is_empty() {
                entry.push_str(&format!(" (类型: {})", item.kind));
            }
            doc.sub_item(entry);
        }
    }
    doc.blank();
}

fn characters(doc: &mut Doc, input: &ExportInput) {
    doc.heading(2, &format!("👥 参与角色 ({} 位)", input.characters.len()));
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
    let knowledge = c.knowledge.as_deref().unwrap_or_default().join(", ");
    // The order is the spec's, including the role a second time after the knowledge line
    // (a reference quirk the spec keeps without a recommended fix).
    let optional = [
        ("角色", &c.role),
        ("性格", &c.personality),
        ("背景", &c.background),
        ("知识领域", &knowledge),
        ("角色", &c.role),
        ("说话风格", &c.speech_style),
        ("出处", &c.novel),
    ];
    for (label, value) in optional {
        if !value.is_empty() {
            doc.item(label, value);
        }
    }
    if let Some(relationships) = c.relationships.as_ref().filter(|r| !r.is_empty()) {
        doc.line("- **人际关系**:");
        for (other, relation) in relationships {
            doc.sub_item(format!(
                "与{}: {relation}",
                render::name_or_id(input, other)
            ));
        }
    }
    doc.item(
        "创建时间",
        time::format(&c.created_at, Pattern::DateMinutes),
    );
    // Compared as instants, so the same time written in another offset is no update.
    let changed = time::parse(&c.last_updated) != time::parse(&c.created_at);
    if !time::is_zero(&c.last_updated) && changed {
        doc.item(
            "最后更新",
            time::format(&c.last_updated, Pattern::DateMinutes),
        );
    }
    doc.blank();
}

fn statistics(doc: &mut Doc, input: &ExportInput) {
    let stats = &input.interaction_stats;
    let (i, m) = (stats.total_interactions, stats.total_messages);
    doc.heading(2, "📊 交互统计摘要");
    doc.blank();
    doc.heading(3, "基础数据");
    doc.blank();
    doc.item("总交互次数", i.to_string());
    doc.item("总消息数量", m.to_string());
    doc.item("参与角色数", stats.character_count.to_string());
    let range = &stats.date_range;
    if render::has_dates(range) {
        doc.item(
            "交互时间范围",
            format!(
                "{} 至 {}",
                time::format(&range.start_date, Pattern::DateTime),
                time::format(&range.end_date, Pattern::DateTime)
            ),
        );
        let seconds = time::seconds_between(&range.start_date, &range.end_date);
        let minutes = seconds / 60.0;
        doc.item("总交互时长", format!("{minutes:.1} 分钟"));
        if i > 0 {
            doc.item("平均交互时长", format!("{:.1} 分钟", minutes / i as f64));
        }
        if m > 1 {
            doc.item(
                "平均消息间隔",
                format!("{:.1} 秒", seconds / (m - 1) as f64),
            );
        }
    }
    if let Some(depth) = render::messages_per_interaction(stats) {
        doc.item("平均每次交互消息数", format!("{depth:.1}"));
    }
    doc.blank();
}

/// Every emotion, most frequent first, its share of all emotion counts, and the dominant one.
fn emotions(doc: &mut Doc, input: &ExportInput) {
    let distribution = &input.interaction_stats.emotion_distribution;
    let ranked = render::ranked_emotions(distribution);
    let Some(&(dominant, count)) = ranked.first() else {
        return;
    };
    let total: u64 = distribution.values().sum();
    doc.heading(3, "情绪分布分析");
    doc.blank();
    doc.line("| 情绪类型 | 出现次数 | 占比 | 可视化 |");
    doc.line("|---------|----------|------|--------|");
    for &(emotion, n) in &ranked {
        let pct = render::percent(n as f64, total as f64);
        doc.row(&[
            emotion,
            &n.to_string(),
            &format!("{pct:.1}%"),
            &render::text_bar(pct),
        ]);
    }
    doc.blank();
    doc.heading(4, "情绪分析洞察");
    doc.blank();
    let pct = render::percent(count as f64, total as f64);
    doc.item(
        "主导情绪",
        format!("{} ({pct:.1}%，{count}次)", markdown::one_line(dominant)),
    );
    doc.item("情绪多样性", format!("{} 种不同情绪", ranked.len()));
    doc.item("多样性评级", render::diversity(ranked.len()));
    doc.blank();
}

fn keywords(doc: &mut Doc, input: &ExportInput) {
    let keywords = render::keywords(&input.interaction_stats);
    if keywords.is_empty() {
        return;
    }
    doc.heading(3, "热门话题关键词");
    doc.blank();
    doc.line("以下是对话中出现频率最高的关键词：");
    doc.blank();
    markdown::keyword_lines(doc, keywords, Markers::Interactions);
    doc.blank();
    doc.heading(4, "话题分析洞察");
    doc.blank();
    doc.item("关键词总数", format!("{} 个", keywords.len()));
    // Every keyword (not only the 15 listed).
    for (category, members) in render::keywords_by_category(keywords) {
        doc.item(category, members.join(", "));
    }
    doc.blank();
}

fn conversations(doc: &mut Doc, input: &ExportInput) {
    doc.heading(2, "💬 完整对话记录");
    doc.blank();
    for (g, (_, lines)) in render::groups(&input.conversations).iter().enumerate() {
        doc.heading(3, &format!("📖 交互会话 #{}", g + 1));
        doc.blank();
        if let Some(first) = lines.first().filter(|l| !time::is_zero(&l.timestamp)) {
            doc.line(format!(
                "**⏰ 开始时间**: {}",
                time::format(&first.timestamp, Pattern::DateTime)
            ));
            if let Some(minutes) = render::span_minutes(lines) {
                doc.line(format!("**⏱️ 持续时间**: {minutes:.1} 分钟"));
            }
            doc.line(format!("**💭 消息数量**: {} 条", lines.len()));
            doc.blank();
        }
        for (j, line) in lines.iter().enumerate() {
            message(doc, input, j + 1, line);
        }
        doc.line("---");
        doc.blank();
    }
}

/// One message: a numbered header with time and speaker, the content quoted line by line,
/// its emotions and message type.
fn message(doc: &mut Doc, input: &ExportInput, number: usize, line: &Conversation) {
    let speaker = input.speaker_name(line);
    if time::is_zero(&line.timestamp) {
        doc.line(format!("**[{number}]** **{speaker}**:"));
    } else {
        let at = time::format(&line.timestamp, Pattern::Time);
        doc.line(format!("**[{number}]** `{at}` **{speaker}**:"));
    }
    doc.quote(&line.content);
    let emotions = line.emotions.as_deref().unwrap_or_default();
    if !emotions.is_empty() {
        doc.line(format!("*🎭 情绪: {}*", emotions.join(", ")));
    }
    if let Some(kind) = line.metadata.get("message_type").filter(|v| !v.is_null()) {
        doc.line(format!("*📝 类型: {}*", render::plain(kind)));
    }
    doc.blank();
}

fn insights(doc: &mut Doc, input: &ExportInput) {
    let stats = &input.interaction_stats;
    doc.heading(2, "🎯 总结与洞察");
    doc.blank();
    doc.heading(3, "交互效率");
    doc.blank();
    if let Some(efficiency) =
        render::messages_per_interaction(stats).filter(|_| stats.total_messages > 0)
    {
        doc.item("交互效率", format!("{efficiency:.1} 消息/交互"));
        doc.item("效率评级", render::interaction_efficiency(efficiency));
    }
    doc.blank();
    doc.heading(3, "角色参与度");
    doc.blank();
    participation(doc, input);
    doc.blank();
    doc.heading(3, "场景要素利用度");
    doc.blank();
    let locations = input.scene.scene.locations.as_deref().unwrap_or_default();
    let names: Vec<&str> = locations.iter().map(|l| l.name.as_str()).collect();
    usage(doc, input, "地点", &names);
    let names: Vec<&str> = input.scene.items.iter().map(|i| i.name.as_str()).collect();
    usage(doc, input, "道具", &names);
}

/// How often each character spoke, most first (ties in order of first appearance), as a
/// share of all character lines; nothing when no character spoke.
fn participation(doc: &mut Doc, input: &ExportInput) {
    let counts = render::character_lines(&input.conversations);
    if counts.is_empty() {
        return;
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    doc.line("| 角色 | 发言次数 | 参与度 |");
    doc.line("|------|----------|--------|");
    for (id, n) in counts {
        let pct = render::percent(n as f64, total as f64);
        doc.row(&[
            render::name_or_id(input, id),
            &n.to_string(),
            &format!("{pct:.1}%"),
        ]);
    }
}

/// Which of the scene's locations or items (`noun`) the conversations mention, in scene
/// order; nothing when the scene has none or none is mentioned.
fn usage(doc: &mut Doc, input: &ExportInput, noun: &str, names: &[&str]) {
    let mentioned = render::mentioned(names, &input.conversations);
    if mentioned.is_empty() {
        return;
    }
    doc.heading(4, &format!("{noun}利用情况"));
    doc.blank();
    for (name, n) in &mentioned {
        doc.item(name, format!("提及 {n} 次"));
    }
    let pct = render::percent(mentioned.len() as f64, names.len() as f64);
    doc.item(
        &format!("{noun}利用率"),
        format!("{pct:.1}% ({}/{})", mentioned.len(), names.len()),
    );
    doc.blank();
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
    doc.item("数据来源", "SceneIntruderMCP 交互聚合服务");
    doc.item("版本", "v1.0");
    doc.item(
        "场景数据版本",
        time::format(&input.scene.scene.last_updated, Pattern::Date),
    );
    doc.item(
        "统计数据包含",
        format!(
            "{} 条对话，{} 次交互",
            stats.total_messages, stats.total_interactions
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;
    use serde_json::json;

    fn fixture() -> ExportInput {
        golden::input("interactions")
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("interactions.markdown", &render(&fixture()));
    }

    #[test]
    fn the_summary_appears_twice_as_it_is() {
        let input = fixture();
        let text = render(&input);
        let summary = input.summary_markdown.trim_end();
        assert_eq!(text.matches(summary).count(), 2);
        assert!(text.contains(&format!(
            "## 详细分析\n\n{summary}\n\n# The Harbor Fog - 完整交互记录\n"
        )));
        assert!(text.contains(&format!(
            "## 📝 详细分析报告\n\n{summary}\n\n## 💬 完整对话记录\n"
        )));
    }

    #[test]
    fn the_role_is_printed_twice() {
        let text = render(&fixture());
        let quill = text
            .split("### 1. Quill")
            .nth(1)
            .and_then(|rest| rest.split("### 2.").next())
            .expect("Quill's block");
        assert_eq!(quill.matches("- **角色**: Harbor master\n").count(), 2);
    }

    #[test]
    fn last_update_only_when_it_differs() {
        let text = render(&fixture());
        // Quill changed at 09:30; the watchman never changed; 苏婉 has a zero time.
        assert_eq!(
            text.matches("- **最后更新**: 2025-06-20 09:30\n").count(),
            1
        );
        assert_eq!(
            text.matches("- **最后更新**: 2025-06-20 09:00\n").count(),
            0
        );
    }

    #[test]
    fn an_empty_record_keeps_the_fixed_sections() {
        let mut input = fixture();
        input.conversations.clear();
        input.interaction_stats = Default::default();
        let text = render(&input);
        assert!(!text.contains("### 📖 交互会话"));
        assert!(!text.contains("交互时间范围"));
        assert!(!text.contains("平均每次交互消息数"));
        assert!(!text.contains("效率评级"));
        assert!(!text.contains("| 角色 |"));
        assert!(!text.contains("利用情况"));
        assert!(text.contains("### 角色参与度\n\n\n### 场景要素利用度\n\n## 📄 导出信息\n"));
        assert!(has_line(&text, "- **统计数据包含**: 0 条对话，0 次交互"));
    }

    #[test]
    fn a_message_quotes_every_line_and_shows_its_type() {
        let mut input = fixture();
        input.conversations.truncate(1);
        let line = &mut input.conversations[0];
        line.content = "one\ntwo".into();
        line.metadata
            .insert("message_type".into(), json!("question"));
        let text = render(&input);
        assert!(text.contains(
            "**[1]** `10:01:00` **Quill**:\n> one\n> two\n*🎭 情绪: suspicious*\n*📝 类型: question*\n\n---\n"
        ));
    }

    #[test]
    fn a_message_without_time_has_no_time_part() {
        let mut input = fixture();
        for line in &mut input.conversations {
            line.timestamp = String::new();
        }
        let text = render(&input);
        assert!(text.contains("### 📖 交互会话 #1\n\n**[1]** **Quill**:\n"));
        assert!(!text.contains("开始时间"));
    }

    #[test]
    fn keyword_insights_group_by_category() {
        let mut input = fixture();
        input.interaction_stats.top_keywords = Some(
            ["Happy", "walking", "books", "foggy"]
                .map(String::from)
                .to_vec(),
        );
        let text = render(&input);
        assert!(has_line(&text, "- **关键词总数**: 4 个"));
        assert!(has_line(&text, "- **情感相关**: Happy"));
        assert!(has_line(&text, "- **行动相关**: walking"));
        assert!(has_line(&text, "- **对象相关**: books"));
        assert!(has_line(&text, "- **描述相关**: foggy"));
        assert!(has_line(&text, "⭐ **foggy**"));
    }

    #[test]
    fn diversity_and_efficiency_labels() {
        let mut input = fixture();
        input.interaction_stats.emotion_distribution =
            [("calm".to_string(), 3)].into_iter().collect();
        input.interaction_stats.total_messages = 16;
        input.interaction_stats.total_interactions = 2;
        let text = render(&input);
        assert!(has_line(&text, "- **主导情绪**: calm (100.0%，3次)"));
        assert!(has_line(&text, "- **多样性评级**: 低 - 情绪表达单调"));
        assert!(has_line(&text, "- **效率评级**: 极高 - 深度对话，内容丰富"));
    }
}
