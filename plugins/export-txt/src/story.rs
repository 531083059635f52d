//! The story export as plain text (spec story-export §8.9.4).
//!
//! Node types are listed in order of first appearance and task statuses completed, active,
//! hidden (the reference used random map order). Ratios over nothing print 0.0%, not `NaN`
//! (a story without nodes is "0.0% 节点已揭示"). Continuation lines of multi-line node texts
//! are indented under their entry.

use sceneintruder_plugin_sdk::exporter::document::{
    ExportInput, StoryData, StoryStats, TaskStatus, render,
    time::{self, Pattern},
};

use crate::text::{self, Text, indented};

/// The whole story document.
pub fn render(input: &ExportInput) -> String {
    let empty_story = StoryData::default();
    let empty_stats = StoryStats::default();
    let story = input.story.as_ref().unwrap_or(&empty_story);
    let stats = input.story_stats.as_ref().unwrap_or(&empty_stats);
    let mut out = Text::default();
    out.rule('=', 60);
    out.line(format!("    {} - 完整故事文档", input.scene.scene.title));
    out.rule('=', 60);
    out.blank();
    overview(&mut out, input, stats);
    out.block(&text::strip_markers(&input.summary_markdown));
    nodes(&mut out, story);
    tasks(&mut out, story);
    insights(&mut out, stats);
    export_info(&mut out, input, stats);
    out.finish()
}

/// A section heading between two 40-dash rules, then a blank line.
fn heading(out: &mut Text, title: &str) {
    out.rule('-', 40);
    out.line(title);
    out.rule('-', 40);
    out.blank();
}

fn overview(out: &mut Text, input: &ExportInput, stats: &StoryStats) {
    out.line("故事统计概览");
    out.rule('-', 30);
    out.line(format!("故事进度: {}%", stats.progress));
    out.line(format!("当前状态: {}", stats.current_state));
    out.line(format!("总节点数: {} 个", stats.total_nodes));
    out.line(format!("已揭示节点: {} 个", stats.revealed_nodes));
    out.line(format!("总任务数: {} 个", stats.total_tasks));
    out.line(format!("已完成任务: {} 个", stats.completed_tasks));
    out.line(format!("完成率: {:.1}%", stats.completion_rate));
    out.line(format!("故事分支数: {} 个", stats.branch_count));
    out.line(format!("最大深度: {} 层", stats.max_depth));
    out.line(format!("总选择数: {} 个", stats.total_choices));
    out.line(format!("已做选择: {} 个", stats.selected_choices));
    out.blank();
    let types = stats.types_in_order(input.story.as_ref());
    if !types.is_empty() {
        out.line("节点类型分布:");
        for (kind, n) in types {
            out.line(format!("  {kind}: {n} 个 ({:.1}%)", stats.type_percent(n)));
        }
        out.blank();
    }
    let statuses = stats.statuses();
    if !statuses.is_empty() {
        out.line("任务状态分布:");
        for (status, n) in statuses {
            out.line(format!("  {}: {n} 个", status.label()));
        }
        out.blank();
    }
    if !stats.character_involvement.is_empty() {
        out.line("角色参与度:");
        for (id, n) in &stats.character_involvement {
            out.line(format!(
                "  {}: 参与 {n} 个任务",
                render::name_or_id(input, id)
            ));
        }
        out.blank();
    }
}

/// The revealed nodes in story order, numbered 1, 2, … without gaps.
fn nodes(out: &mut Text, story: &StoryData) {
    heading(out, "故事节点详情");
    for (k, node) in story.nodes.iter().filter(|n| n.is_revealed).enumerate() {
        out.line(format!("{}. 节点: {} ({})", k + 1, node.id, node.node_type));
        out.line(format!("   内容: {}", indented(&node.content, "         ")));
        out.line(format!(
            "   创建时间: {}",
            time::format(&node.created_at, Pattern::DateMinutes)
        ));
        let choices = node.choice_list();
        if !choices.is_empty() {
            out.line("   可用选择:");
            for (j, choice) in choices.iter().enumerate() {
                let mark = if choice.selected { " [已选择]" } else { "" };
                out.line(format!(
                    "     {}. {}{mark}",
                    j + 1,
                    indented(&choice.text, "        ")
                ));
            }
        }
        out.blank();
    }
}

/// The revealed and the completed tasks, in story order, numbered without gaps.
fn tasks(out: &mut Text, story: &StoryData) {
    heading(out, "任务详情");
    let shown = story
        .tasks
        .iter()
        .filter(|t| t.status() != TaskStatus::Hidden);
    for (k, task) in shown.enumerate() {
        out.line(format!(
            "{}. {} [{}]",
            k + 1,
            task.title,
            task.status().label()
        ));
        out.line(format!(
            "   描述: {}",
            indented(&task.description, "         ")
        ));
        if !task.objectives.is_empty() {
            out.line("   目标:");
            for (j, objective) in task.objectives.iter().enumerate() {
                out.line(format!(
                    "     {}. {}",
                    j + 1,
                    indented(&objective.description, "        ")
                ));
            }
        }
        if !task.reward.is_empty() {
            out.line(format!("   奖励: {}", task.reward));
        }
        out.blank();
    }
}

fn insights(out: &mut Text, stats: &StoryStats) {
    heading(out, "故事分析洞察");
    out.line(format!("发展阶段: {}", stats.stage()));
    if stats.total_nodes > 0 {
        out.line(format!(
            "故事复杂度: {} (平均 {:.1} 选择/节点)",
            stats.complexity(),
            stats.choices_per_node()
        ));
    }
    if stats.total_choices > 0 {
        out.line(format!(
            "互动性水平: {} ({:.1}% 选择已做出)",
            stats.interactivity(),
            stats.selected_percent()
        ));
    }
    out.blank();
}

fn export_info(out: &mut Text, input: &ExportInput, stats: &StoryStats) {
    out.rule('=', 60);
    out.line("导出信息");
    out.rule('=', 60);
    out.line(format!(
        "导出时间: {}",
        time::format(&input.generated_at, Pattern::DateTime)
    ));
    out.line("导出格式: 纯文本");
    out.line("导出类型: 故事文档");
    out.line("数据来源: SceneIntruderMCP 故事服务");
    out.line("版本: v1.0");
    out.line(format!(
        "统计数据: {} 节点, {} 任务, {} 选择",
        stats.total_nodes, stats.total_tasks, stats.total_choices
    ));
    out.line(format!(
        "导出完整性: {:.1}% 节点已揭示",
        stats.revealed_percent()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;

    fn fixture() -> ExportInput {
        golden::input("story")
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("story.txt", &render(&fixture()));
    }

    #[test]
    fn follows_the_spec_example() {
        let text = render(&fixture());
        assert!(text.starts_with(&format!(
            "{rule}\n    The Harbor Fog - 完整故事文档\n{rule}\n\n故事统计概览\n{dash}\n故事进度: 5%\n当前状态: Initial\n",
            rule = "=".repeat(60),
            dash = "-".repeat(30)
        )));
        assert!(text.contains(
            "1. 节点: node_scene_harbor_1 (main)\n   内容: Fog rolls over the pier.\n   创建时间: 2025-06-20 10:30\n   可用选择:\n     1. Question the night watchman [已选择]\n     2. Take bold action\n\n2. 节点: node_scene_harbor_1718870000999999999 (event)\n"
        ));
        assert!(text.contains("  main: 2 个 (66.7%)\n  event: 1 个 (33.3%)\n"));
        assert!(text.contains("任务状态分布:\n  进行中: 1 个\n\n"));
        // The summary without its markers.
        assert!(has_line(&text, " The Harbor Fog - 故事文档报告"));
        assert!(has_line(&text, "- 已揭示节点: 2 个 (66.7%)"));
        assert!(text.contains(
            "1. Stabilize the Situation [进行中]\n   描述: Find the harbor ledger.\n   目标:\n     1. Assess the battlefield and calm the ranks.\n"
        ));
        assert!(has_line(
            &text,
            "故事复杂度: 较低 - 相对线性的发展 (平均 1.7 选择/节点)"
        ));
        assert!(has_line(
            &text,
            "互动性水平: 低 - 缺乏玩家互动 (20.0% 选择已做出)"
        ));
        assert!(text.ends_with("统计数据: 3 节点, 1 任务, 5 选择\n导出完整性: 66.7% 节点已揭示\n"));
        assert!(!text.contains("node_scene_harbor_2"));
    }

    #[test]
    fn hidden_tasks_are_left_out_and_completed_ones_show_their_reward() {
        let mut input = fixture();
        let story = input.story.as_mut().expect("story");
        let mut done = story.tasks[0].clone();
        done.title = "Done".into();
        done.completed = true;
        done.is_revealed = false;
        let mut hidden = story.tasks[0].clone();
        hidden.title = "Secret".into();
        hidden.is_revealed = false;
        story.tasks.insert(0, hidden);
        story.tasks.push(done);
        story.nodes[0].content = "one\n\ntwo".into();
        let text = render(&input);
        assert!(!text.contains("Secret"));
        assert!(text.contains("1. Stabilize the Situation [进行中]\n"));
        assert!(text.contains("\n2. Done [已完成]\n"));
        assert!(has_line(
            &text,
            "   奖励: Unlock new strategic opportunities."
        ));
        assert!(text.contains("   内容: one\n\n         two\n"));
    }

    #[test]
    fn an_empty_story_prints_no_nan_and_skips_the_ratio_lines() {
        let mut input = fixture();
        input.story = None;
        input.story_stats = None;
        input.summary_markdown.clear();
        let text = render(&input);
        assert!(!text.contains("NaN"), "{text}");
        assert!(has_line(&text, "发展阶段: 序幕阶段 - 故事刚刚开始"));
        assert!(!text.contains("故事复杂度") && !text.contains("互动性水平"));
        assert!(has_line(&text, "导出完整性: 0.0% 节点已揭示"));
        assert!(!text.contains("节点类型分布") && !text.contains("任务状态分布"));
    }
}
