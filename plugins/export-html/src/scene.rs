//! The scene export as an HTML page (spec story-export §8.7.5).

use sceneintruder_plugin_sdk::exporter::document::{
    Character, ExportInput, Item,
    render::{self, escape_html},
    time::{self, Pattern},
};

use crate::markdown;
use crate::page::{Page, yes_no};

/// The page's look (not part of the contract).
const STYLE: &str = r#"body { font-family: -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif; line-height: 1.6; color: #1f2937; background: #f3f4f6; margin: 0; padding: 20px; }
.container { max-width: 1100px; margin: 0 auto; background: #fff; border-radius: 12px; box-shadow: 0 4px 20px rgba(0, 0, 0, 0.08); overflow: hidden; }
.header { background: linear-gradient(135deg, #4f46e5, #7c3aed); color: #fff; padding: 32px; text-align: center; }
.header h1 { margin: 0 0 8px; }
.section { padding: 24px 32px; border-bottom: 1px solid #e5e7eb; }
.section h2 { margin-top: 0; color: #4338ca; }
.summary-section { background: #f9fafb; border-left: 4px solid #6366f1; border-radius: 8px; padding: 16px 24px; }
.character-card, .location-card, .item-card { background: #f9fafb; border: 1px solid #e5e7eb; border-radius: 8px; padding: 16px; margin-bottom: 16px; }
.character-card h3, .location-card h3, .item-card h3 { margin-top: 0; }
.item-card img { max-width: 240px; border-radius: 6px; }
.stats-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 16px; }
.stat-card { background: #eef2ff; border-radius: 8px; padding: 16px; text-align: center; }
.stat-number { font-size: 1.8em; font-weight: bold; color: #4338ca; }
.stat-label { color: #6b7280; }
.progress-bar { background: #e5e7eb; border-radius: 6px; height: 10px; overflow: hidden; margin: 4px 0 12px; }
.progress-fill { background: linear-gradient(90deg, #6366f1, #a855f7); height: 100%; }
.conversation-group { border: 1px solid #e5e7eb; border-radius: 8px; padding: 16px; margin-bottom: 16px; }
.message { border-radius: 8px; padding: 10px 14px; margin: 8px 0; }
.message.user { background: #ecfdf5; margin-left: 40px; }
.message.character { background: #eff6ff; margin-right: 40px; }
.speaker { font-weight: bold; }
.speaker.user { color: #047857; }
.speaker.character { color: #1d4ed8; }
.timestamp { color: #9ca3af; font-size: 0.85em; }
.message-content { white-space: pre-wrap; }
.emotion { color: #7c3aed; font-size: 0.9em; }
"#;

/// The whole scene page.
pub fn render(input: &ExportInput) -> String {
    let title = &input.scene.scene.title;
    let mut page = Page::new(&format!("{title} - 场景数据"), STYLE);
    page.open("div", "container");
    page.open("div", "header");
    page.element("h1", "", title);
    page.element("p", "", "完整场景数据");
    page.close();
    overview(&mut page, input);
    summary(&mut page, input);
    settings(&mut page, input);
    characters(&mut page, input);
    locations(&mut page, input);
    items(&mut page, input);
    context(&mut page, input);
    conversations(&mut page, input);
    export_info(&mut page, input);
    page.finish()
}

fn overview(page: &mut Page, input: &ExportInput) {
    let stats = &input.interaction_stats;
    let locations = input.scene.scene.locations.as_deref().unwrap_or_default();
    page.section("📊 数据概览");
    page.open("div", "stats-grid");
    page.stat(&stats.character_count.to_string(), "角色数量");
    page.stat(&locations.len().to_string(), "地点数量");
    page.stat(&input.scene.items.len().to_string(), "道具数量");
    if input.include_conversations {
        page.stat(&stats.total_messages.to_string(), "对话数量");
    }
    if let Some(depth) = render::messages_per_interaction(stats) {
        page.stat(&stats.total_interactions.to_string(), "交互次数");
        if stats.total_messages > 0 {
            page.stat(&format!("{depth:.1}"), "平均消息/交互");
        }
    }
    page.close();
    page.close();
}

fn summary(page: &mut Page, input: &ExportInput) {
    page.section("📝 场景分析报告");
    page.open("div", "summary-section");
    page.open("div", "summary-content");
    page.block(&markdown::to_html(&input.summary_markdown));
    page.close();
    page.close();
    page.close();
}

fn settings(page: &mut Page, input: &ExportInput) {
    let s = &input.settings;
    page.section("⚙️ 场景设置");
    page.open("div", "character-card");
    page.field_markup("允许自由聊天", yes_no(s.allow_free_chat));
    page.field_markup("允许剧情转折", yes_no(s.allow_plot_twists));
    page.field("创意程度", &format!("{:.1}/1.0", s.creativity_level));
    page.bar("progress-bar", "progress-fill", s.creativity_level * 100.0);
    let length = match s.response_length.as_str() {
        "short" => "简短",
        "medium" => "中等",
        "long" => "详细",
        other => other,
    };
    page.field("回复长度", length);
    let style = match s.interaction_style.as_str() {
        "casual" => "轻松休闲",
        "formal" => "正式严肃",
        "dramatic" => "戏剧化",
        other => other,
    };
    page.field("互动风格", style);
    let complexity = match s.language_complexity.as_str() {
        "simple" => "简单",
        "normal" => "正常",
        "complex" => "复杂",
        other => other,
    };
    page.field("语言复杂度", complexity);
    page.field(
        "最后更新",
        &time::format(&s.last_updated, Pattern::DateTime),
    );
    page.close();
    page.close();
}

fn characters(page: &mut Page, input: &ExportInput) {
    page.section("👥 角色信息");
    for (i, c) in input.characters.iter().enumerate() {
        character(page, input, i + 1, c);
    }
    page.close();
}

fn character(page: &mut Page, input: &ExportInput, number: usize, c: &Character) {
    page.open("div", "character-card");
    page.element("h3", "", &format!("{number}. {}", c.name));
    page.field("描述", &c.description);
    let optional = [
        ("角色", &c.role),
        ("性格", &c.personality),
        ("背景", &c.background),
    ];
    for (label, value) in optional {
        if !value.is_empty() {
            page.field(label, value);
        }
    }
    let knowledge = c.knowledge.as_deref().unwrap_or_default();
    if !knowledge.is_empty() {
        page.field("知识领域", &knowledge.join(", "));
    }
    if let Some(relationships) = c.relationships.as_ref().filter(|r| !r.is_empty()) {
        page.trusted("<p><strong>人际关系:</strong></p>");
        page.open("ul", "");
        for (other, relation) in relationships {
            // A character of this scene is named (bold); an unknown id is shown as it is.
            let line = match input.character(other) {
                Some(o) => format!(
                    "<li>与 <strong>{}</strong>: {}</li>",
                    escape_html(&o.name),
                    escape_html(relation)
                ),
                None => format!(
                    "<li>与 {}: {}</li>",
                    escape_html(other),
                    escape_html(relation)
                ),
            };
            page.trusted(&line);
        }
        page.close();
    }
    page.field(
        "创建时间",
        &time::format(&c.created_at, Pattern::DateMinutes),
    );
    page.close();
}

fn locations(page: &mut Page, input: &ExportInput) {
    let locations = input.scene.scene.locations.as_deref().unwrap_or_default();
    if locations.is_empty() {
        return;
    }
    page.section("🗺️ 地点信息");
    for (i, location) in locations.iter().enumerate() {
        page.open("div", "location-card");
        page.element("h3", "", &format!("{}. {}", i + 1, location.name));
        page.field("描述", &location.description);
        page.close();
    }
    page.close();
}

fn items(page: &mut Page, input: &ExportInput) {
    if input.scene.items.is_empty() {
        return;
    }
    page.section("🎒 道具信息");
    for (i, item) in input.scene.items.iter().enumerate() {
        self::item(page, i + 1, item);
    }
    page.close();
}

fn item(page: &mut Page, number: usize, item: &Item) {
    page.open("div", "item-card");
    page.element("h3", "", &format!("{number}. {}", item.name));
    page.field("描述", &item.description);
    if !item.kind.is_empty() {
        page.field("类型", &item.kind);
    }
    if !item.location.is_empty() {
        page.field("位置", &item.location);
    }
    page.field_markup(
        "状态",
        if item.is_owned {
            "<span style=\"color: #16a34a;\">✅ 已拥有</span>"
        } else {
            "<span style=\"color: #d97706;\">⭕ 未拥有</span>"
        },
    );
    // Not in the reference's HTML (its Markdown shows the picture): only a URL that cannot
    // run script (http(s) or relative) becomes an <img>.
    if render::safe_url(&item.image_url) {
        page.trusted(&format!(
            "<p><strong>图片:</strong> <img src=\"{}\" alt=\"{}\"></p>",
            escape_html(&item.image_url),
            escape_html(&item.name)
        ));
    }
    let properties = properties(item);
    if !properties.is_empty() {
        page.trusted("<p><strong>额外属性:</strong></p>");
        page.open("ul", "");
        for (key, value) in properties {
            page.element("li", "", &format!("{key}: {value}"));
        }
        page.close();
    }
    page.close();
}

/// An item's extra properties as (key, value) text pairs, in map order; a string shows
/// without quotes, anything else as JSON. A non-object value is one unnamed entry.
fn properties(item: &Item) -> Vec<(String, String)> {
    match &item.properties {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), render::plain(v)))
            .collect(),
        Some(other) => vec![(String::new(), render::plain(other))],
    }
}

/// The conversation log's facts and its last five lines. The host sends the log only when
/// conversations were asked for, so this section appears only then.
fn context(page: &mut Page, input: &ExportInput) {
    let context = &input.context;
    if context.conversations.is_empty() {
        return;
    }
    page.section("📋 场景上下文");
    page.open("div", "character-card");
    page.field("场景ID", &context.scene_id);
    page.field(
        "对话记录数量",
        &format!("{} 条", context.conversations.len()),
    );
    page.field(
        "最后更新",
        &time::format(&context.last_updated, Pattern::DateTime),
    );
    page.element("h4", "", "最近活动");
    let recent = &context.conversations[context.conversations.len().saturating_sub(5)..];
    for line in recent {
        let at = if time::is_zero(&line.timestamp) {
            String::new()
        } else {
            format!("[{}] ", time::format(&line.timestamp, Pattern::HourMinutes))
        };
        // The character's name: the line's own `speaker` (which the spec prints) is always
        // empty in stored lines. Truncated before escaping, so no entity is cut.
        page.trusted(&format!(
            "<p>{at}<strong>{}:</strong> {}</p>",
            escape_html(input.speaker_name(line)),
            escape_html(&render::truncate(&line.content, 80))
        ));
    }
    page.close();
    page.close();
}

fn conversations(page: &mut Page, input: &ExportInput) {
    if !input.include_conversations || input.conversations.is_empty() {
        return;
    }
    page.section("💬 对话记录");
    for (g, (_, lines)) in render::groups(&input.conversations).iter().enumerate() {
        page.open("div", "conversation-group");
        page.element("h3", "", &format!("对话组 #{}", g + 1));
        if let Some(first) = lines.first().filter(|l| !time::is_zero(&l.timestamp)) {
            page.field(
                "开始时间",
                &time::format(&first.timestamp, Pattern::DateTime),
            );
            page.field("消息数量", &format!("{} 条", lines.len()));
        }
        for line in lines {
            crate::message(page, input, line, "message user", "message character");
        }
        page.close();
    }
    page.close();
}

fn export_info(page: &mut Page, input: &ExportInput) {
    let stats = &input.interaction_stats;
    page.section("📄 导出信息");
    page.open("div", "character-card");
    page.field(
        "导出时间",
        &time::format(&input.generated_at, Pattern::DateTime),
    );
    page.field("导出格式", "HTML");
    page.field("导出类型", "场景数据");
    page.field("包含对话", &input.include_conversations.to_string());
    page.field("数据来源", "SceneIntruderMCP 场景服务");
    page.field("版本", "v1.0");
    page.field(
        "统计数据",
        &format!(
            "{} 条消息，{} 次交互",
            stats.total_messages, stats.total_interactions
        ),
    );
    page.close();
    page.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::assert_well_formed;
    use sceneintruder_plugin_sdk::exporter::document::{Conversation, golden};

    fn fixture() -> ExportInput {
        golden::input("scene")
    }

    #[test]
    fn matches_the_golden_file() {
        let html = render(&fixture());
        assert_well_formed(&html);
        golden::check("scene.html", &html);
    }

    #[test]
    fn sections_come_in_the_spec_order() {
        let html = render(&fixture());
        let headings = [
            "<h1>The Harbor Fog</h1>",
            "<h2>📊 数据概览</h2>",
            "<h2>📝 场景分析报告</h2>",
            "<h2>⚙️ 场景设置</h2>",
            "<h2>👥 角色信息</h2>",
            "<h2>🗺️ 地点信息</h2>",
            "<h2>🎒 道具信息</h2>",
            "<h2>📋 场景上下文</h2>",
            "<h2>💬 对话记录</h2>",
            "<h2>📄 导出信息</h2>",
        ];
        let positions: Vec<usize> = headings
            .iter()
            .map(|h| html.find(h).unwrap_or_else(|| panic!("{h} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert!(html.contains("<title>The Harbor Fog - 场景数据</title>"));
        assert!(!html.contains("<script"), "the scene page ships no script");
    }

    #[test]
    fn without_conversations_the_log_sections_and_card_go() {
        let mut input = fixture();
        input.include_conversations = false;
        input.conversations.clear();
        input.context.conversations.clear();
        let html = render(&input);
        assert!(!html.contains("📋 场景上下文"));
        assert!(!html.contains("💬 对话记录"));
        assert!(!html.contains("对话数量"));
        assert!(html.contains("<p><strong>包含对话:</strong> false</p>"));
        assert_well_formed(&html);
    }

    #[test]
    fn the_stat_cards_follow_their_conditions() {
        let mut input = fixture();
        let html = render(&input);
        assert!(html.contains(
            "<div class=\"stat-number\">3.0</div><div class=\"stat-label\">平均消息/交互</div>"
        ));
        input.interaction_stats.total_interactions = 0;
        let html = render(&input);
        assert!(!html.contains("交互次数</div>"));
        assert!(!html.contains("平均消息/交互"));
        input.interaction_stats.total_interactions = 2;
        input.interaction_stats.total_messages = 0;
        let html = render(&input);
        assert!(html.contains("交互次数</div>"));
        assert!(!html.contains("平均消息/交互"));
    }

    #[test]
    fn settings_show_words_and_the_creativity_bar() {
        let mut input = fixture();
        let html = render(&input);
        assert!(html.contains(
            "<p><strong>允许自由聊天:</strong> <span style=\"color: #16a34a;\">✅ 是</span></p>"
        ));
        assert!(html.contains(
            "<p><strong>允许剧情转折:</strong> <span style=\"color: #dc2626;\">❌ 否</span></p>"
        ));
        assert!(html.contains("<p><strong>创意程度:</strong> 0.7/1.0</p>"));
        assert!(html.contains("style=\"width: 70.0%\""));
        assert!(html.contains("<p><strong>回复长度:</strong> 中等</p>"));
        assert!(html.contains("<p><strong>互动风格:</strong> 戏剧化</p>"));
        assert!(html.contains("<p><strong>语言复杂度:</strong> 正常</p>"));
        input.settings.response_length = "<huge>".into();
        let html = render(&input);
        assert!(html.contains("<p><strong>回复长度:</strong> &lt;huge&gt;</p>"));
    }

    #[test]
    fn relationships_name_known_characters_and_show_unknown_ids() {
        let html = render(&fixture());
        assert!(
            html.contains("<li>与 <strong>Watchman &quot;Old&quot; Ma</strong>: suspects him</li>")
        );
        assert!(html.contains("<li>与 char_gone: owes her money</li>"));
    }

    #[test]
    fn item_images_need_a_safe_url() {
        let mut input = fixture();
        input.scene.items[0].image_url = "https://img.test/ledger.png?a=1&b=\"2\"".into();
        input.scene.items[1].image_url = "javascript:alert(1)".into();
        let html = render(&input);
        assert!(html.contains(
            "<img src=\"https://img.test/ledger.png?a=1&amp;b=&quot;2&quot;\" alt=\"Ledger\">"
        ));
        assert_eq!(html.matches("<img").count(), 1);
        assert!(!html.contains("javascript:"));
    }

    #[test]
    fn recent_activity_truncates_at_character_boundaries() {
        let mut input = fixture();
        input.context.conversations = vec![Conversation {
            speaker: "苏婉".into(),
            content: "雾".repeat(100),
            timestamp: "0001-01-01T00:00:00Z".into(),
            ..Default::default()
        }];
        let html = render(&input);
        let line = format!("<p><strong>苏婉:</strong> {}...</p>", "雾".repeat(77));
        assert!(html.contains(&line), "{html}");
    }

    #[test]
    fn an_empty_input_renders_a_well_formed_page() {
        let html = render(&ExportInput::default());
        assert_well_formed(&html);
        assert!(html.contains("<p><strong>统计数据:</strong> 0 条消息，0 次交互</p>"));
    }
}
