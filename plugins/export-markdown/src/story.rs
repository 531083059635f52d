//! The story export as Markdown (spec story-export §8.9.3).
//!
//! The spec's recommended fixes are built: node types are listed in order of first
//! appearance (the reference used random map order), revealed nodes are numbered 1, 2, …
//! within their type (the reference counted hidden ones too, leaving gaps), and a type whose
//! nodes are all hidden gets no heading. Task statuses are listed completed, active, hidden.

use sceneintruder_plugin_sdk::exporter::document::{
    ExportInput, StoryData, StoryNode, StoryStats, Task, TaskStatus, render,
    time::{self, Pattern},
};

use crate::markdown::{Doc, Markdown, hanging};

/// The whole story document.
pub fn render(input: &ExportInput) -> String {
    let empty_story = StoryData::default();
    let empty_stats = StoryStats::default();
    let story = input.story.as_ref().unwrap_or(&empty_story);
    let stats = input.story_stats.as_ref().unwrap_or(&empty_stats);
    let mut doc = Doc::default();
    doc.heading(1, &format!("{} - 完整故事文档", input.scene.scene.title));
    doc.blank();
    overview(&mut doc, input, stats);
    doc.block(&input.summary_markdown);
    nodes(&mut doc, story);
    tasks(&mut doc, story);
    locations(&mut doc, story);
    export_info(&mut doc, input);
    doc.finish()
}

fn overview(doc: &mut Doc, input: &ExportInput, stats: &StoryStats) {
    doc.heading(2, "📊 故事统计概览");
    doc.blank();
    doc.item("故事进度", format!("{}%", stats.progress));
    doc.item("当前状态", &stats.current_state);
    doc.item("总节点数", format!("{} 个", stats.total_nodes));
    doc.item("已揭示节点", format!("{} 个", stats.revealed_nodes));
    doc.item("总任务数", format!("{} 个", stats.total_tasks));
    doc.item("已完成任务", format!("{} 个", stats.completed_tasks));
    doc.item("完成率", format!("{:.1}%", stats.completion_rate));
    doc.item("故事分支数", format!("{} 个", stats.branch_count));
    doc.item("最大深度", format!("{} 层", stats.max_depth));
    doc.item("总选择数", format!("{} 个", stats.total_choices));
    doc.item("已做选择", format!("{} 个", stats.selected_choices));
    doc.blank();
    let types = stats.types_in_order(input.story.as_ref());
    if !types.is_empty() {
        doc.heading(3, "节点类型分布");
        doc.blank();
        doc.line("| 节点类型 | 数量 | 占比 |");
        doc.line("|---------|------|------|");
        for (kind, n) in types {
            doc.row(&[
                kind,
                &n.to_string(),
                &format!("{:.1}%", stats.type_percent(n)),
            ]);
        }
        doc.blank();
    }
    let statuses = stats.statuses();
    if !statuses.is_empty() {
        doc.heading(3, "任务状态分布");
        doc.blank();
        doc.line("| 任务状态 | 数量 |");
        doc.line("|---------|------|");
        for (status, n) in statuses {
            doc.row(&[status.label(), &n.to_string()]);
        }
        doc.blank();
    }
    if !stats.character_involvement.is_empty() {
        doc.heading(3, "角色参与度");
        doc.blank();
        doc.line("| 角色 | 参与任务数 |");
        doc.line("|------|----------|");
        for (id, n) in &stats.character_involvement {
            doc.row(&[render::name_or_id(input, id), &n.to_string()]);
        }
        doc.blank();
    }
}

/// The revealed nodes grouped by type (types in order of first appearance).
fn nodes(doc: &mut Doc, story: &StoryData) {
    doc.heading(2, "📖 故事节点详情");
    doc.blank();
    for (kind, _) in story.node_types() {
        let revealed: Vec<&StoryNode> = story
            .nodes
            .iter()
            .filter(|n| n.node_type == kind && n.is_revealed)
            .collect();
        if revealed.is_empty() {
            continue;
        }
        doc.heading(3, &format!("{kind} 类型节点"));
        doc.blank();
        for (i, node) in revealed.into_iter().enumerate() {
            self::node(doc, i + 1, node);
        }
    }
}

fn node(doc: &mut Doc, number: usize, node: &StoryNode) {
    doc.heading(4, &format!("{number}. 节点: {}", node.id));
    doc.blank();
    doc.line(format!("**内容**: {}", node.content));
    doc.blank();
    doc.item(
        "创建时间",
        time::format(&node.created_at, Pattern::DateMinutes),
    );
    if !node.parent_id.is_empty() {
        doc.item("父节点", &node.parent_id);
    }
    let choices = node.choice_list();
    if !choices.is_empty() {
        doc.line("- **可用选择**:");
        for (j, choice) in choices.iter().enumerate() {
            let marker = format!("  {}. ", j + 1);
            let mark = if choice.selected { " ✅" } else { "" };
            doc.line(format!(
                "{marker}{}{mark}",
                hanging(&choice.text, marker.chars().count())
            ));
            if !choice.consequence.is_empty() {
                doc.line(format!(
                    "     - *后果*: {}",
                    hanging(&choice.consequence, 7)
                ));
            }
        }
    }
    doc.blank();
}

fn tasks(doc: &mut Doc, story: &StoryData) {
    doc.heading(2, "📋 任务详情");
    doc.blank();
    let of = |status: TaskStatus| -> Vec<&Task> {
        story
            .tasks
            .iter()
            .filter(|t| t.status() == status)
            .collect()
    };
    let completed = of(TaskStatus::Completed);
    if !completed.is_empty() {
        doc.heading(3, "✅ 已完成任务");
        doc.blank();
        for (i, task) in completed.into_iter().enumerate() {
            self::task(doc, i + 1, task);
            if !task.reward.is_empty() {
                doc.line(format!("**奖励**: {}", task.reward));
            }
            doc.blank();
        }
    }
    let active = of(TaskStatus::Active);
    if !active.is_empty() {
        doc.heading(3, "🔄 进行中任务");
        doc.blank();
        for (i, task) in active.into_iter().enumerate() {
            self::task(doc, i + 1, task);
            doc.blank();
        }
    }
    let hidden = of(TaskStatus::Hidden);
    if !hidden.is_empty() {
        doc.heading(3, &format!("🔒 隐藏任务 ({} 个)", hidden.len()));
        doc.blank();
        doc.line("*这些任务尚未揭示，将在满足特定条件后显示。*");
        doc.blank();
    }
}

/// A task's heading, description and objectives (each objective list ends in a blank line).
fn task(doc: &mut Doc, number: usize, task: &Task) {
    doc.heading(4, &format!("{number}. {}", task.title));
    doc.blank();
    doc.line(format!("**描述**: {}", task.description));
    doc.blank();
    if !task.objectives.is_empty() {
        doc.line("**目标**:");
        for (j, objective) in task.objectives.iter().enumerate() {
            let marker = format!("{}. ", j + 1);
            doc.line(format!(
                "{marker}{}",
                hanging(&objective.description, marker.chars().count())
            ));
        }
        doc.blank();
    }
}

fn locations(doc: &mut Doc, story: &StoryData) {
    if story.locations.is_empty() {
        return;
    }
    doc.heading(2, "🗺️ 故事地点");
    doc.blank();
    for (i, location) in story.locations.iter().enumerate() {
        doc.heading(3, &format!("{}. {}", i + 1, location.name));
        doc.blank();
        doc.line(format!("**描述**: {}", location.description));
        doc.blank();
    }
}

fn export_info(doc: &mut Doc, input: &ExportInput) {
    doc.heading(2, "📄 导出信息");
    doc.blank();
    doc.item(
        "导出时间",
        time::format(&input.generated_at, Pattern::DateTime),
    );
    doc.item("导出格式", "Markdown");
    doc.item("导出类型", "故事文档");
    doc.item("数据来源", "SceneIntruderMCP 故事服务");
    doc.item("版本", "v1.0");
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::{Objective, golden};

    fn fixture() -> ExportInput {
        golden::input("story")
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("story.markdown", &render(&fixture()));
    }

    /// The golden input is the spec's example story; the spec's example document differs
    /// only where the export time is printed.
    #[test]
    fn the_spec_example_starts_and_ends_as_shown() {
        let text = render(&fixture());
        assert!(text.starts_with(
            "# The Harbor Fog - 完整故事文档\n\n## 📊 故事统计概览\n\n- **故事进度**: 5%\n"
        ));
        assert!(text.contains(
            "| 节点类型 | 数量 | 占比 |\n|---------|------|------|\n| main | 2 | 66.7% |\n| event | 1 | 33.3% |\n"
        ));
        assert!(text.contains("| 进行中 | 1 |\n\n## The Harbor Fog - 故事文档报告\n"));
        assert!(text.contains(
            "选择已做出)\n\n## 📖 故事节点详情\n\n### main 类型节点\n\n#### 1. 节点: node_scene_harbor_1\n"
        ));
        assert!(text.contains(
            "  1. Question the night watchman ✅\n     - *后果*: He may know who entered the office.\n  2. Take bold action\n"
        ));
        // The hidden second main node is counted but not listed; the event node is 1.
        assert!(!text.contains("node_scene_harbor_2"));
        assert!(text.contains(
            "### event 类型节点\n\n#### 1. 节点: node_scene_harbor_1718870000999999999\n"
        ));
        assert!(has_line(&text, "- **父节点**: node_scene_harbor_1"));
        assert!(text.contains(
            "2. Reunite scattered companions or protect civilians.\n\n\n## 🗺️ 故事地点\n"
        ));
        assert!(text.ends_with(
            "- **导出时间**: 2025-06-20 11:00:00\n- **导出格式**: Markdown\n- **导出类型**: 故事文档\n- **数据来源**: SceneIntruderMCP 故事服务\n- **版本**: v1.0\n"
        ));
    }

    #[test]
    fn task_sections_by_status() {
        let mut input = fixture();
        let story = input.story.as_mut().expect("story");
        let mut done = story.tasks[0].clone();
        done.title = "Find the ledger".into();
        done.completed = true;
        done.objectives = vec![Objective {
            id: "o".into(),
            description: "Open the\nsafe".into(),
            completed: true,
        }];
        let mut hidden = story.tasks[0].clone();
        hidden.is_revealed = false;
        hidden.title = "Secret".into();
        story.tasks.extend([done, hidden.clone(), hidden]);
        let stats = input.story_stats.as_mut().expect("stats");
        for (status, n) in [("completed", 1), ("hidden", 2)] {
            stats.tasks_by_status.insert(status.into(), n);
        }
        stats.character_involvement.insert("char_quill".into(), 2);
        stats.character_involvement.insert("char_gone".into(), 1);
        let text = render(&input);
        assert!(text.contains(
            "### ✅ 已完成任务\n\n#### 1. Find the ledger\n\n**描述**: Find the harbor ledger.\n\n**目标**:\n1. Open the\n   safe\n\n**奖励**: Unlock new strategic opportunities.\n\n### 🔄 进行中任务\n"
        ));
        assert!(text.contains(
            "### 🔒 隐藏任务 (2 个)\n\n*这些任务尚未揭示，将在满足特定条件后显示。*\n\n## 🗺️ 故事地点\n"
        ));
        assert!(!text.contains("Secret"));
        assert!(text.contains("| 已完成 | 1 |\n| 进行中 | 1 |\n| 隐藏 | 2 |\n"));
        assert!(text.contains(
            "### 角色参与度\n\n| 角色 | 参与任务数 |\n|------|----------|\n| char_gone | 1 |\n| Quill | 2 |\n"
        ));
    }

    #[test]
    fn all_hidden_types_get_no_heading_and_numbers_have_no_gaps() {
        let mut input = fixture();
        let story = input.story.as_mut().expect("story");
        // Hide the first main node and reveal the second: it becomes main node 1.
        story.nodes[0].is_revealed = false;
        story.nodes[1].is_revealed = true;
        story.nodes[2].is_revealed = false;
        story.nodes[1].content = "line one\n\nline two".into();
        story.nodes[1].choices = None;
        let text = render(&input);
        assert!(text.contains(
            "#### 1. 节点: node_scene_harbor_2\n\n**内容**: line one\n\nline two\n\n- **创建时间**: 2025-06-20 10:30\n\n"
        ));
        assert!(!text.contains("### event 类型节点"));
        assert!(!text.contains("可用选择"));
    }

    #[test]
    fn no_story_renders_the_fixed_sections() {
        let mut input = fixture();
        input.story = None;
        input.story_stats = None;
        input.summary_markdown.clear();
        let text = render(&input);
        assert!(has_line(&text, "- **完成率**: 0.0%"));
        assert!(!text.contains("节点类型分布") && !text.contains("故事地点"));
        assert!(text.contains("## 📖 故事节点详情\n\n## 📋 任务详情\n\n## 📄 导出信息\n"));
    }
}
