//! The story export as an HTML page (spec story-export §8.9.5).
//!
//! Sections in the spec's order: header, statistics, the story report, overview, the
//! revealed nodes, the revealed and completed tasks, export information. Every value from
//! the input is escaped (the reference pasted LLM-written story text raw into the page), and
//! nodes and tasks are numbered 1, 2, … among those shown (the reference numbered by array
//! index, leaving gaps where hidden ones were).

use sceneintruder_plugin_sdk::exporter::document::{
    ExportInput, StoryData, StoryNode, StoryStats, Task, TaskStatus,
    time::{self, Pattern},
};

use crate::markdown;
use crate::page::Page;

/// The page's look (not part of the contract).
const STYLE: &str = r#"body { font-family: -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", sans-serif; line-height: 1.6; color: #1f2937; background: #f3f4f6; margin: 0; padding: 20px; }
.container { max-width: 1100px; margin: 0 auto; background: #fff; border-radius: 12px; box-shadow: 0 4px 20px rgba(0, 0, 0, 0.08); overflow: hidden; }
.header { background: linear-gradient(135deg, #b45309, #7c3aed); color: #fff; padding: 32px; text-align: center; }
.header h1 { margin: 0 0 8px; }
.section { padding: 24px 32px; border-bottom: 1px solid #e5e7eb; }
.section h2 { margin-top: 0; color: #6d28d9; }
.node-card, .task-card { background: #f9fafb; border: 1px solid #e5e7eb; border-radius: 8px; padding: 16px; margin-bottom: 16px; }
.node-card h3, .task-card h3 { margin-top: 0; }
.node-card p { white-space: pre-wrap; }
.task-card.completed { border-left: 4px solid #16a34a; }
.task-card.active { border-left: 4px solid #2563eb; }
.task-card.hidden { border-left: 4px solid #9ca3af; }
.choice { background: #eef2ff; border-radius: 6px; padding: 6px 12px; margin: 6px 0; }
.choice.selected { background: #dcfce7; font-weight: bold; }
.stats-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 16px; }
.stat-card { background: #f5f3ff; border-radius: 8px; padding: 16px; text-align: center; }
.stat-number { font-size: 1.8em; font-weight: bold; color: #6d28d9; }
.stat-label { color: #6b7280; }
.progress-bar { background: #e5e7eb; border-radius: 6px; height: 10px; overflow: hidden; margin: 12px 0 4px; }
.progress-fill { background: linear-gradient(90deg, #f59e0b, #8b5cf6); height: 100%; }
.summary-section { background: #f9fafb; border-left: 4px solid #8b5cf6; border-radius: 8px; padding: 16px 24px; }
"#;

/// The whole story page.
pub fn render(input: &ExportInput) -> String {
    let empty_story = StoryData::default();
    let empty_stats = StoryStats::default();
    let story = input.story.as_ref().unwrap_or(&empty_story);
    let stats = input.story_stats.as_ref().unwrap_or(&empty_stats);
    let title = &input.scene.scene.title;
    let mut page = Page::new(&format!("{title} - 故事文档"), STYLE);
    page.open("div", "container");
    page.open("div", "header");
    page.element("h1", "", title);
    page.element("p", "", "完整故事文档");
    page.element("p", "", &format!("故事进度: {}%", stats.progress));
    page.close();
    statistics(&mut page, stats);
    summary(&mut page, input);
    overview(&mut page, story, stats);
    nodes(&mut page, story);
    tasks(&mut page, story);
    export_info(&mut page, input);
    page.finish()
}

fn statistics(page: &mut Page, stats: &StoryStats) {
    page.section("📊 故事统计");
    page.open("div", "stats-grid");
    page.stat(&stats.total_nodes.to_string(), "故事节点");
    page.stat(&stats.total_tasks.to_string(), "总任务数");
    page.stat(&stats.completed_tasks.to_string(), "已完成任务");
    page.stat(&format!("{:.1}%", stats.completion_rate), "完成度");
    page.close();
    page.bar("progress-bar", "progress-fill", stats.completion_rate);
    page.close();
}

fn summary(page: &mut Page, input: &ExportInput) {
    page.section("📝 故事分析报告");
    page.open("div", "summary-section");
    page.open("div", "summary-content");
    page.block(&markdown::to_html(&input.summary_markdown));
    page.close();
    page.close();
    page.close();
}

fn overview(page: &mut Page, story: &StoryData, stats: &StoryStats) {
    page.section("📖 故事概览");
    page.labelled("故事简介", &story.intro);
    page.labelled("主要目标", &story.main_objective);
    page.labelled("当前状态", &stats.current_state);
    page.close();
}

fn nodes(page: &mut Page, story: &StoryData) {
    page.section("📚 故事节点");
    for (i, node) in story.nodes.iter().filter(|n| n.is_revealed).enumerate() {
        self::node(page, i + 1, node);
    }
    page.close();
}

fn node(page: &mut Page, number: usize, node: &StoryNode) {
    page.open("div", "node-card");
    page.element("h3", "", &format!("节点 {number}: {}", node.id));
    page.labelled("类型", &node.node_type);
    page.labelled("内容", &node.content);
    let choices = node.choice_list();
    if !choices.is_empty() {
        page.open("div", "choices");
        page.trusted("<p><strong>选择：</strong></p>");
        for choice in choices {
            let class = if choice.selected {
                "choice selected"
            } else {
                "choice"
            };
            page.element("div", class, &choice.text);
        }
        page.close();
    }
    page.close();
}

/// The revealed and the completed tasks (hidden ones stay hidden), in story order.
fn tasks(page: &mut Page, story: &StoryData) {
    page.section("📋 任务详情");
    let shown = story
        .tasks
        .iter()
        .filter(|t| t.status() != TaskStatus::Hidden);
    for (i, task) in shown.enumerate() {
        self::task(page, i + 1, task);
    }
    page.close();
}

fn task(page: &mut Page, number: usize, task: &Task) {
    let status = task.status();
    page.open(
        "div",
        if status == TaskStatus::Completed {
            "task-card completed"
        } else {
            "task-card active"
        },
    );
    page.element(
        "h3",
        "",
        &format!("{number}. {} [{}]", task.title, status.label()),
    );
    page.labelled("描述", &task.description);
    if !task.objectives.is_empty() {
        page.trusted("<p><strong>目标：</strong></p>");
        page.open("ul", "");
        for objective in &task.objectives {
            page.element("li", "", &objective.description);
        }
        page.close();
    }
    if !task.reward.is_empty() {
        page.labelled("奖励", &task.reward);
    }
    page.close();
}

fn export_info(page: &mut Page, input: &ExportInput) {
    page.section("📄 导出信息");
    page.labelled(
        "导出时间",
        &time::format(&input.generated_at, Pattern::DateTime),
    );
    page.labelled("导出格式", "HTML");
    page.labelled("导出类型", "故事文档");
    page.labelled("数据来源", "SceneIntruderMCP 故事服务");
    page.labelled("版本", "v1.0");
    page.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::assert_well_formed;
    use sceneintruder_plugin_sdk::exporter::document::{golden, render::escape_html};

    fn fixture() -> ExportInput {
        golden::input("story")
    }

    #[test]
    fn matches_the_golden_file() {
        let html = render(&fixture());
        assert_well_formed(&html);
        golden::check("story.html", &html);
    }

    #[test]
    fn sections_come_in_the_spec_order() {
        let html = render(&fixture());
        assert!(html.contains("<title>The Harbor Fog - 故事文档</title>"));
        let order = [
            "<h1>The Harbor Fog</h1>",
            "<p>完整故事文档</p>",
            "<p>故事进度: 5%</p>",
            "<h2>📊 故事统计</h2>",
            "<div class=\"stat-label\">故事节点</div>",
            "<div class=\"stat-label\">完成度</div>",
            "style=\"width: 0.0%\"",
            "<h2>📝 故事分析报告</h2>",
            "<h2>The Harbor Fog - 故事文档报告</h2>",
            "<h2>📖 故事概览</h2>",
            "<p><strong>故事简介：</strong>A coastal town is swallowed by fog.</p>",
            "<p><strong>主要目标：</strong>Find the harbor ledger.</p>",
            "<p><strong>当前状态：</strong>Initial</p>",
            "<h2>📚 故事节点</h2>",
            "<h3>节点 1: node_scene_harbor_1</h3>",
            "<div class=\"choice selected\">Question the night watchman</div>",
            "<div class=\"choice\">Take bold action</div>",
            "<h3>节点 2: node_scene_harbor_1718870000999999999</h3>",
            "<h2>📋 任务详情</h2>",
            "<div class=\"task-card active\">",
            "<h3>1. Stabilize the Situation [进行中]</h3>",
            "<li>Assess the battlefield and calm the ranks.</li>",
            "<h2>📄 导出信息</h2>",
            "<p><strong>导出时间：</strong>2025-06-20 11:00:00</p>",
            "<p><strong>版本：</strong>v1.0</p>",
        ];
        let mut from = 0;
        for part in order {
            let at = html[from..]
                .find(part)
                .unwrap_or_else(|| panic!("{part} missing or out of order"));
            from += at + part.len();
        }
        // The hidden node is not shown.
        assert!(!html.contains("node_scene_harbor_2"));
    }

    fn payload(tag: &str) -> String {
        format!("{tag}<script>alert(\"x\")</script> & 'q' </textarea>")
    }

    #[test]
    fn every_story_value_is_escaped() {
        let mut input = fixture();
        input.scene.scene.title = payload("TITLE");
        input.summary_markdown = format!("## {}\n\n- **{}**: x\n", payload("MD1"), payload("MD2"));
        let story = input.story.as_mut().expect("story");
        story.intro = payload("INTRO");
        story.main_objective = payload("GOAL");
        let stats = input.story_stats.as_mut().expect("stats");
        stats.current_state = payload("STATE");
        let node = &mut story.nodes[0];
        node.id = payload("NODE");
        node.node_type = payload("TYPE");
        node.content = payload("CONTENT");
        if let Some(choices) = node.choices.as_mut() {
            choices[0].text = payload("CHOICE");
        }
        let task = &mut story.tasks[0];
        task.title = payload("TASK");
        task.description = payload("DESC");
        task.objectives[0].description = payload("OBJ");
        task.reward = payload("REWARD");
        let html = render(&input);
        assert_well_formed(&html);
        assert_eq!(html.matches("<script").count(), 0);
        for raw in ["<script>alert", "</textarea>", "alert(\"x\")", "'q'"] {
            assert!(!html.contains(raw), "{raw:?} unescaped");
        }
        for tag in [
            "TITLE", "MD1", "MD2", "INTRO", "GOAL", "STATE", "NODE", "TYPE", "CONTENT", "CHOICE",
            "TASK", "DESC", "OBJ", "REWARD",
        ] {
            assert!(
                html.contains(&escape_html(&payload(tag))),
                "{tag} not shown escaped"
            );
        }
    }

    #[test]
    fn completed_tasks_show_their_reward_and_hidden_ones_nothing() {
        let mut input = fixture();
        let story = input.story.as_mut().expect("story");
        let mut hidden = story.tasks[0].clone();
        hidden.is_revealed = false;
        hidden.title = "Secret".into();
        let mut done = story.tasks[0].clone();
        done.completed = true;
        done.title = "Done".into();
        story.tasks.insert(0, hidden);
        story.tasks.push(done);
        let html = render(&input);
        assert_well_formed(&html);
        assert!(!html.contains("Secret"));
        assert!(html.contains("<h3>1. Stabilize the Situation [进行中]</h3>"));
        assert!(html.contains("<div class=\"task-card completed\">"));
        assert!(html.contains("<h3>2. Done [已完成]</h3>"));
        assert!(html.contains("<p><strong>奖励：</strong>Unlock new strategic opportunities.</p>"));
    }

    #[test]
    fn an_empty_story_renders_a_balanced_page() {
        let mut input = fixture();
        input.story = None;
        input.story_stats = None;
        input.summary_markdown.clear();
        let html = render(&input);
        assert_well_formed(&html);
        assert!(!html.contains("NaN"));
        assert!(html.contains("<div class=\"stat-number\">0.0%</div>"));
    }
}
