//! The interactions export as an HTML page (spec story-export §8.8.5).
//!
//! The reference leaves the header's second subtitle div open; here every element is
//! closed (the spec recommends well-formed HTML with the same order, headings and labels).

use sceneintruder_plugin_sdk::exporter::document::{
    ExportInput,
    render::{self, escape_html},
    time::{self, Pattern},
};

use crate::markdown;
use crate::page::Page;

/// The page's look (not part of the contract).
const STYLE: &str = r#"body { font-family: -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif; line-height: 1.6; color: #1f2937; background: #f3f4f6; margin: 0; padding: 20px; }
.container { max-width: 1100px; margin: 0 auto; background: #fff; border-radius: 12px; box-shadow: 0 4px 20px rgba(0, 0, 0, 0.08); overflow: hidden; }
.header { background: linear-gradient(135deg, #0f766e, #2563eb); color: #fff; padding: 32px; }
.header h1 { margin: 0 0 8px; text-align: center; }
.subtitle { opacity: 0.95; text-align: center; }
.header .section { background: rgba(255, 255, 255, 0.95); color: #1f2937; border-radius: 8px; margin-top: 16px; text-align: left; }
.content { padding: 8px 32px 32px; }
.section { padding: 16px 24px; border-bottom: 1px solid #e5e7eb; }
.section h2 { margin-top: 0; color: #1d4ed8; }
.stats, .stats-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 16px; }
.stat-card { background: #eff6ff; border-radius: 8px; padding: 16px; text-align: center; cursor: pointer; transition: transform 0.15s; }
.stat-number { font-size: 1.8em; font-weight: bold; color: #1d4ed8; }
.stat-label { color: #6b7280; }
.scene-info { background: #f9fafb; border-left: 4px solid #2563eb; border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
.character-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 16px; }
.character-card { background: #f9fafb; border: 1px solid #e5e7eb; border-radius: 8px; padding: 16px; cursor: pointer; transition: transform 0.15s; }
.character-name { font-size: 1.2em; font-weight: bold; color: #1d4ed8; margin-bottom: 8px; }
.emotion-chart { margin: 12px 0; }
.emotion-bar { display: flex; align-items: center; gap: 12px; margin: 6px 0; }
.emotion-label { width: 120px; font-weight: bold; }
.progress-bar { flex: 1; background: #e5e7eb; border-radius: 6px; height: 12px; overflow: hidden; }
.emotion-fill, .progress-fill { background: linear-gradient(90deg, #f59e0b, #ef4444); height: 100%; }
.keyword-cloud { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0; }
.keyword { background: #e0e7ff; color: #3730a3; border-radius: 14px; padding: 4px 12px; cursor: pointer; }
.keyword.top-5 { background: #c7d2fe; font-weight: bold; }
.keyword.top-3 { background: #4338ca; color: #fff; font-weight: bold; font-size: 1.1em; }
.conversation { border-radius: 8px; padding: 10px 14px; margin: 8px 0; }
.conversation.user { background: #ecfdf5; margin-left: 40px; }
.conversation.character { background: #eff6ff; margin-right: 40px; }
.speaker { font-weight: bold; }
.speaker.user { color: #047857; }
.speaker.character { color: #1d4ed8; }
.timestamp { color: #9ca3af; font-size: 0.85em; }
.message-content { white-space: pre-wrap; }
.emotion { color: #7c3aed; font-size: 0.9em; }
.collapsed > :not(h2) { display: none; }
.export-info { background: #f9fafb; border-radius: 8px; padding: 16px 24px; margin-top: 24px; color: #4b5563; }
@media print { body { background: #fff; padding: 0; } .container { box-shadow: none; } }
"#;

/// Card click feedback, keyword click logging, collapsing the conversation log by its
/// heading, printing on `?print=true`. Fixed code: no input value is ever put in here.
const SCRIPT: &str = r#"document.querySelectorAll('.stat-card, .character-card').forEach(function (card) {
  card.addEventListener('click', function () {
    card.style.transform = 'scale(0.97)';
    setTimeout(function () { card.style.transform = ''; }, 150);
  });
});
document.querySelectorAll('.keyword').forEach(function (keyword) {
  keyword.addEventListener('click', function () { console.log('关键词:', keyword.textContent); });
});
var log = document.getElementById('conversation-log');
if (log) {
  var heading = log.querySelector('h2');
  heading.style.cursor = 'pointer';
  heading.addEventListener('click', function () { log.classList.toggle('collapsed'); });
}
if (new URLSearchParams(window.location.search).get('print') === 'true') {
  window.print();
}
"#;

/// The whole interactions page.
pub fn render(input: &ExportInput) -> String {
    let title = &input.scene.scene.title;
    let summary = markdown::to_html(&input.summary_markdown);
    let mut page = Page::new(&format!("{title} - 交互摘要"), STYLE);
    page.open("div", "container");
    header(&mut page, input, &summary);
    page.open("div", "content");
    overview(&mut page, input);
    scene_info(&mut page, input);
    characters(&mut page, input);
    emotions(&mut page, input);
    keywords(&mut page, input);
    page.section("📝 详细分析报告");
    page.block(&summary);
    page.close();
    conversations(&mut page, input);
    export_info(&mut page, input);
    page.close();
    page.close();
    page.script(SCRIPT);
    page.finish()
}

/// The header: title, subtitle, and the short report (basic facts, three stats, the
/// summary) in a second subtitle div.
fn header(page: &mut Page, input: &ExportInput, summary: &str) {
    let scene = &input.scene.scene;
    let stats = &input.interaction_stats;
    page.open("div", "header");
    page.element("h1", "", &scene.title);
    page.element("div", "subtitle", "完整交互分析报告");
    page.open("div", "subtitle");

    page.section("📋 基础信息");
    page.field("场景ID", &scene.id);
    page.field("场景名称", &scene.title);
    page.field("场景描述", &scene.description);
    page.close();

    page.section("📊 统计数据");
    page.open("div", "stats");
    page.stat(&stats.total_messages.to_string(), "总消息数");
    page.stat(&stats.character_count.to_string(), "参与角色数");
    page.stat(&stats.total_interactions.to_string(), "交互次数");
    page.close();
    page.close();

    page.section("📝 详细分析报告");
    page.block(summary);
    let range = &stats.date_range;
    if !time::is_zero(&range.start_date) {
        page.element(
            "p",
            "",
            &format!(
                "时间范围: {} 至 {}",
                time::format(&range.start_date, Pattern::Date),
                time::format(&range.end_date, Pattern::Date)
            ),
        );
    }
    page.close();

    page.close();
    page.close();
}

fn overview(page: &mut Page, input: &ExportInput) {
    let stats = &input.interaction_stats;
    page.section("📊 数据概览");
    page.open("div", "stats-grid");
    page.stat(&stats.total_interactions.to_string(), "总交互次数");
    page.stat(&stats.total_messages.to_string(), "总消息数量");
    page.stat(&stats.character_count.to_string(), "参与角色数");
    if let Some(depth) = render::messages_per_interaction(stats) {
        page.stat(&format!("{depth:.1}"), "平均消息/交互");
    }
    let range = &stats.date_range;
    if render::has_dates(range) {
        let hours = time::seconds_between(&range.start_date, &range.end_date) / 3600.0;
        page.stat(&format!("{hours:.0}"), "总时长 (小时)");
    }
    page.close();
    page.close();
}

fn scene_info(page: &mut Page, input: &ExportInput) {
    let scene = &input.scene.scene;
    page.section("🎬 场景信息");
    page.open("div", "scene-info");
    page.field("场景ID", &scene.id);
    page.field("描述", &scene.description);
    if !scene.source.is_empty() {
        page.field("数据来源", &scene.source);
    }
    let themes = scene.themes.as_deref().unwrap_or_default();
    if !themes.is_empty() {
        page.field("主题", &themes.join(", "));
    }
    if !scene.era.is_empty() {
        page.field("时代背景", &scene.era);
    }
    page.close();
    page.close();
}

fn characters(page: &mut Page, input: &ExportInput) {
    if input.characters.is_empty() {
        return;
    }
    page.section("👥 参与角色");
    page.open("div", "character-grid");
    for c in &input.characters {
        page.open("div", "character-card");
        page.element("div", "character-name", &c.name);
        page.field("描述", &c.description);
        if !c.role.is_empty() {
            page.field("角色", &c.role);
        }
        if !c.personality.is_empty() {
            page.field("性格", &c.personality);
        }
        let knowledge = c.knowledge.as_deref().unwrap_or_default();
        if !knowledge.is_empty() {
            page.field("知识领域", &knowledge.join(", "));
        }
        page.close();
    }
    page.close();
    page.close();
}

/// One bar per emotion, most frequent first (ties in map order), each share taken of all
/// emotion counts; then the dominant emotion and the diversity.
fn emotions(page: &mut Page, input: &ExportInput) {
    let distribution = &input.interaction_stats.emotion_distribution;
    let ranked = render::ranked_emotions(distribution);
    let Some(&(dominant, top)) = ranked.first() else {
        return;
    };
    let total: u64 = ranked.iter().map(|(_, n)| n).sum();
    page.section("🎭 情绪分布分析");
    page.open("div", "emotion-chart");
    for &(emotion, n) in &ranked {
        let pct = render::percent(n as f64, total as f64);
        page.open("div", "emotion-bar");
        page.element("div", "emotion-label", emotion);
        page.bar("progress-bar", "emotion-fill", pct);
        page.element("div", "", &format!("{n}次 ({pct:.1}%)"));
        page.close();
    }
    page.close();
    page.open("div", "scene-info");
    page.element("h3", "", "情绪分析洞察");
    let pct = render::percent(top as f64, total as f64);
    page.field("主导情绪", &format!("{dominant} ({pct:.1}%，{top}次)"));
    page.field(
        "情绪多样性",
        &format!(
            "{}种不同情绪 ({})",
            ranked.len(),
            render::diversity_word(ranked.len())
        ),
    );
    page.close();
    page.close();
}

fn keywords(page: &mut Page, input: &ExportInput) {
    let keywords = render::keywords(&input.interaction_stats);
    if keywords.is_empty() {
        return;
    }
    page.section("🔤 热门话题关键词");
    page.open("div", "keyword-cloud");
    for (i, keyword) in keywords.iter().take(20).enumerate() {
        let rank = i + 1;
        let class = match rank {
            1..=3 => "keyword top-3",
            4..=5 => "keyword top-5",
            _ => "keyword",
        };
        page.trusted(&format!(
            "<span class=\"{class}\" title=\"排名第{rank}\">{}</span>",
            escape_html(keyword)
        ));
    }
    page.close();
    page.field("关键词总数", &format!("{}个", keywords.len()));
    page.field(
        "说明",
        "基于对话内容自动提取的高频词汇，反映了交互的主要话题方向。",
    );
    page.close();
}

fn conversations(page: &mut Page, input: &ExportInput) {
    if input.conversations.is_empty() {
        return;
    }
    // The fixed id lets the script collapse the log by its heading.
    page.open_with("div", "class=\"section\" id=\"conversation-log\"");
    page.element("h2", "", "💬 完整对话记录");
    for (g, (_, lines)) in render::groups(&input.conversations).iter().enumerate() {
        page.element("h3", "", &format!("📖 交互会话 #{}", g + 1));
        if let Some(first) = lines.first().filter(|l| !time::is_zero(&l.timestamp)) {
            page.open("div", "scene-info");
            page.field(
                "开始时间",
                &time::format(&first.timestamp, Pattern::DateTime),
            );
            if let Some(minutes) = render::span_minutes(lines) {
                page.field("持续时间", &format!("{minutes:.1} 分钟"));
            }
            page.field("消息数量", &format!("{} 条", lines.len()));
            page.close();
        }
        for line in lines {
            crate::message(
                page,
                input,
                line,
                "conversation user",
                "conversation character",
            );
        }
    }
    page.close();
}

fn export_info(page: &mut Page, input: &ExportInput) {
    let stats = &input.interaction_stats;
    page.open("div", "export-info");
    page.element("h3", "", "📄 导出信息");
    page.field(
        "导出时间",
        &time::format(&input.generated_at, Pattern::DateTime),
    );
    page.field("导出格式", "HTML");
    page.field("数据来源", "SceneIntruderMCP 交互聚合服务");
    page.field("版本", "v1.0");
    page.field(
        "场景数据版本",
        &time::format(&input.scene.scene.last_updated, Pattern::Date),
    );
    page.field(
        "统计数据包含",
        &format!(
            "{} 条对话，{} 次交互",
            stats.total_messages, stats.total_interactions
        ),
    );
    page.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::assert_well_formed;
    use sceneintruder_plugin_sdk::exporter::document::golden;
    use std::collections::BTreeMap;

    fn fixture() -> ExportInput {
        golden::input("interactions")
    }

    #[test]
    fn matches_the_golden_file() {
        let html = render(&fixture());
        assert_well_formed(&html);
        golden::check("interactions.html", &html);
    }

    #[test]
    fn sections_come_in_the_spec_order() {
        let html = render(&fixture());
        let marks = [
            "<h1>The Harbor Fog</h1>",
            "<div class=\"subtitle\">完整交互分析报告</div>",
            "<h2>📋 基础信息</h2>",
            "<h2>📊 统计数据</h2>",
            "<h2>📝 详细分析报告</h2>",
            "<div class=\"content\">",
            "<h2>📊 数据概览</h2>",
            "<h2>🎬 场景信息</h2>",
            "<h2>👥 参与角色</h2>",
            "<h2>🎭 情绪分布分析</h2>",
            "<h2>🔤 热门话题关键词</h2>",
            "<h2>📝 详细分析报告</h2>",
            "<h2>💬 完整对话记录</h2>",
            "<h3>📄 导出信息</h3>",
            "<script>",
        ];
        let mut from = 0;
        for mark in marks {
            let at = html[from..]
                .find(mark)
                .unwrap_or_else(|| panic!("{mark} missing after byte {from}"));
            from += at + mark.len();
        }
        assert!(html.contains("<title>The Harbor Fog - 交互摘要</title>"));
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn emotions_rank_by_count_with_their_share() {
        let html = render(&fixture());
        let suspicious = html.find(">suspicious<").expect("suspicious");
        let afraid = html.find(">afraid<").expect("afraid");
        assert!(suspicious < afraid);
        assert!(html.contains("<div>2次 (33.3%)</div>"));
        assert!(html.contains("style=\"width: 33.3%\""));
        assert!(html.contains("<p><strong>主导情绪:</strong> suspicious (33.3%，2次)</p>"));
        assert!(html.contains("<p><strong>情绪多样性:</strong> 5种不同情绪 (中等)</p>"));
    }

    #[test]
    fn keywords_carry_their_rank_class() {
        let mut input = fixture();
        input.interaction_stats.top_keywords = Some((1..=25).map(|i| format!("kw{i}")).collect());
        let html = render(&input);
        assert!(html.contains("<span class=\"keyword top-3\" title=\"排名第3\">kw3</span>"));
        assert!(html.contains("<span class=\"keyword top-5\" title=\"排名第4\">kw4</span>"));
        assert!(html.contains("<span class=\"keyword\" title=\"排名第20\">kw20</span>"));
        assert!(!html.contains(">kw21<"), "at most 20 keywords");
        assert!(html.contains("<p><strong>关键词总数:</strong> 25个</p>"));
    }

    #[test]
    fn empty_sections_go() {
        let mut input = fixture();
        input.conversations.clear();
        input.characters.clear();
        input.interaction_stats.emotion_distribution = BTreeMap::new();
        input.interaction_stats.top_keywords = None;
        input.interaction_stats.total_interactions = 0;
        input.interaction_stats.date_range = Default::default();
        let html = render(&input);
        for gone in [
            "💬 完整对话记录",
            "👥 参与角色",
            "🎭 情绪分布分析",
            "🔤 热门话题关键词",
            "平均消息/交互",
            "总时长 (小时)",
            "时间范围",
        ] {
            assert!(!html.contains(gone), "{gone}");
        }
        assert_well_formed(&html);
    }

    #[test]
    fn groups_show_duration_and_messages() {
        let html = render(&fixture());
        assert!(html.contains("<h3>📖 交互会话 #1</h3>"));
        assert!(html.contains("<p><strong>持续时间:</strong> 1.2 分钟</p>"));
        assert!(html.contains("<p><strong>消息数量:</strong> 3 条</p>"));
        assert!(html.contains("<div class=\"speaker character\">Quill</div>"));
        assert!(html.contains("<div class=\"emotion\">🎭 afraid, defensive</div>"));
    }

    #[test]
    fn an_empty_input_renders_a_well_formed_page() {
        let html = render(&ExportInput::default());
        assert_well_formed(&html);
        assert!(html.contains("<p><strong>统计数据包含:</strong> 0 条对话，0 次交互</p>"));
    }
}
