//! The story export's shared parts: StoryExportStats (spec §8.6.3) and the story report in
//! Markdown (§8.9.1), embedded by every format of the story kind.
//!
//! Fixes of the reference, as the spec recommends: the depth walk stops at a cycle instead
//! of recursing forever, node types are listed in order of first appearance, and no ratio
//! prints `NaN`: a story without nodes reports 0.0% revealed and 0.0 choices per node, one
//! without choices 0.0% taken. Those zero cases get the same labels the reference's `NaN`
//! fell through to ("低 - …").

use std::collections::{BTreeMap, HashMap};

use sceneintruder_export_document::lines::Lines;
use sceneintruder_export_document::render::name_or_id;
use sceneintruder_export_document::{ExportInput, StoryData, StoryStats, TaskStatus};

/// The statistics of `story`, counted over every node (revealed or not) and every task.
pub fn story_stats(story: &StoryData) -> StoryStats {
    let mut stats = StoryStats {
        total_nodes: story.nodes.len() as u64,
        total_tasks: story.tasks.len() as u64,
        progress: story.progress,
        current_state: story.current_state.clone(),
        max_depth: max_depth(story),
        ..StoryStats::default()
    };
    for node in &story.nodes {
        stats.revealed_nodes += u64::from(node.is_revealed);
        stats.branch_count += u64::from(node.parent_id.is_empty());
        let choices = node.choice_list();
        stats.total_choices += choices.len() as u64;
        stats.selected_choices += choices.iter().filter(|c| c.selected).count() as u64;
        *stats
            .nodes_by_type
            .entry(node.node_type.clone())
            .or_insert(0) += 1;
    }
    for task in &story.tasks {
        let status = task.status();
        stats.completed_tasks += u64::from(status == TaskStatus::Completed);
        *stats
            .tasks_by_status
            .entry(status.key().to_string())
            .or_insert(0) += 1;
        if !task.trigger_character_id.is_empty() {
            *stats
                .character_involvement
                .entry(task.trigger_character_id.clone())
                .or_insert(0) += 1;
        }
    }
    stats.completion_rate = if stats.total_tasks == 0 {
        0.0
    } else {
        stats.completed_tasks as f64 / stats.total_tasks as f64 * 100.0
    };
    stats
}

/// The longest `parent_id` chain: a root (or a node whose parent is not in the story) is 0,
/// a child one more than its parent. The reference recursed without a guard, so a cycle
/// never ended; here a walk stops when it comes back to a node it has passed, so a node on
/// a cycle of length k is k − 1 deep. Each node is walked once (depths are remembered), so
/// a long chain costs linear time. With duplicate ids the first node wins.
fn max_depth(story: &StoryData) -> u64 {
    let mut parent: HashMap<&str, &str> = HashMap::with_capacity(story.nodes.len());
    for node in &story.nodes {
        parent
            .entry(node.id.as_str())
            .or_insert(node.parent_id.as_str());
    }
    let mut depth: HashMap<&str, u64> = HashMap::with_capacity(parent.len());
    let mut deepest = 0;
    for node in &story.nodes {
        // Walk up from the node until a known depth, a chain's end or a node of this walk.
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: HashMap<&str, usize> = HashMap::new();
        let mut current = node.id.as_str();
        let base = loop {
            if let Some(&d) = depth.get(current) {
                break Some(d);
            }
            if let Some(&at) = on_path.get(current) {
                // A cycle: every node on it reaches all the others, k − 1 steps.
                let cycle = &path[at..];
                let d = cycle.len() as u64 - 1;
                for id in cycle {
                    depth.insert(id, d);
                }
                path.truncate(at);
                break Some(d);
            }
            on_path.insert(current, path.len());
            path.push(current);
            match parent.get(current) {
                Some(p) if !p.is_empty() && parent.contains_key(p) => current = p,
                _ => break None,
            }
        };
        // Unwind: the last node of the path is a root (no base) or a child of `current`.
        let mut below = base;
        for id in path.iter().rev() {
            let d = below.map_or(0, |b| b + 1);
            depth.insert(id, d);
            below = Some(d);
        }
        deepest = deepest.max(depth.get(node.id.as_str()).copied().unwrap_or(0));
    }
    deepest
}

/// The story report over `input.scene` (its title), `input.characters` (names for the
/// involvement section), `input.story` and `input.story_stats` (empty ones when absent).
pub fn story_summary(input: &ExportInput) -> String {
    let empty_story = StoryData::default();
    let empty_stats = StoryStats::default();
    let story = input.story.as_ref().unwrap_or(&empty_story);
    let stats = input.story_stats.as_ref().unwrap_or(&empty_stats);
    let mut out = Lines::default();
    out.line(format!("## {} - 故事文档报告", input.scene.scene.title));
    out.blank();
    out.line("### 故事概览");
    out.blank();
    out.line(format!("- **故事简介**: {}", story.intro));
    out.line(format!("- **主要目标**: {}", story.main_objective));
    out.line(format!("- **当前状态**: {}", stats.current_state));
    out.line(format!("- **故事进度**: {}%", stats.progress));
    out.line(format!(
        "- **完成度**: {:.1}% ({}/{} 任务完成)",
        stats.completion_rate, stats.completed_tasks, stats.total_tasks
    ));
    out.blank();
    out.line("### 故事结构分析");
    out.blank();
    out.line(format!("- **故事节点总数**: {} 个", stats.total_nodes));
    out.line(format!(
        "- **已揭示节点**: {} 个 ({:.1}%)",
        stats.revealed_nodes,
        stats.revealed_percent()
    ));
    out.line(format!("- **故事分支数**: {} 个", stats.branch_count));
    out.line(format!("- **最大深度**: {} 层", stats.max_depth));
    out.line(format!("- **选择总数**: {} 个", stats.total_choices));
    out.line(format!("- **已做选择**: {} 个", stats.selected_choices));
    out.blank();
    let types = stats.types_in_order(input.story.as_ref());
    if !types.is_empty() {
        out.line("### 节点类型分布");
        out.blank();
        for (kind, n) in types {
            out.line(format!(
                "- **{kind}**: {n} 个 ({:.1}%)",
                stats.type_percent(n)
            ));
        }
        out.blank();
    }
    out.line("### 任务完成情况");
    out.blank();
    out.line(format!("- **总任务数**: {} 个", stats.total_tasks));
    out.line(format!("- **已完成任务**: {} 个", stats.completed_tasks));
    out.line(format!(
        "- **进行中任务**: {} 个",
        stats.tasks_with(TaskStatus::Active)
    ));
    out.line(format!(
        "- **隐藏任务**: {} 个",
        stats.tasks_with(TaskStatus::Hidden)
    ));
    out.blank();
    involvement(&mut out, input, &stats.character_involvement);
    out.line("### 故事发展评估");
    out.blank();
    out.line(format!("- **发展阶段**: {}", stats.stage()));
    out.line(format!(
        "- **故事复杂度**: {} (平均 {:.1} 选择/节点)",
        stats.complexity(),
        stats.choices_per_node()
    ));
    out.line(format!(
        "- **互动性水平**: {} ({:.1}% 选择已做出)",
        stats.interactivity(),
        stats.selected_percent()
    ));
    out.finish()
}

/// 角色参与度: tasks per character (named when the character is in the scene), in id order.
fn involvement(out: &mut Lines, input: &ExportInput, counts: &BTreeMap<String, u64>) {
    if counts.is_empty() {
        return;
    }
    out.line("### 角色参与度");
    out.blank();
    for (id, n) in counts {
        out.line(format!("- **{}**: 参与 {n} 个任务", name_or_id(input, id)));
    }
    out.blank();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{STORY, fixture, has, no_nan};
    use sceneintruder_export_document::{StoryChoice, StoryNode, Task};

    fn node(id: &str, parent: &str) -> StoryNode {
        StoryNode {
            id: id.into(),
            parent_id: parent.into(),
            node_type: "main".into(),
            ..StoryNode::default()
        }
    }

    fn story(nodes: Vec<StoryNode>) -> StoryData {
        StoryData {
            nodes,
            ..StoryData::default()
        }
    }

    #[test]
    fn depth_follows_parents_and_stops_at_missing_ones() {
        let s = story(vec![
            node("a", ""),
            node("b", "a"),
            node("c", "b"),
            node("d", "gone"),
            node("e", "d"),
        ]);
        assert_eq!(max_depth(&s), 2);
        // Children listed before their parents.
        let s = story(vec![node("c", "b"), node("b", "a"), node("a", "")]);
        assert_eq!(max_depth(&s), 2);
        assert_eq!(max_depth(&story(vec![])), 0);
        assert_eq!(max_depth(&story(vec![node("a", "")])), 0);
    }

    #[test]
    fn cycles_end_the_walk() {
        // A self-parent, a two-cycle, and a three-cycle with a tail hanging off it.
        assert_eq!(max_depth(&story(vec![node("a", "a")])), 0);
        assert_eq!(max_depth(&story(vec![node("a", "b"), node("b", "a")])), 1);
        let s = story(vec![
            node("t2", "t1"),
            node("t1", "x"),
            node("x", "z"),
            node("y", "x"),
            node("z", "y"),
        ]);
        // x, y, z are 2 deep (each reaches the other two); t1 is 3, t2 is 4.
        assert_eq!(max_depth(&s), 4);
        let stats = story_stats(&s);
        assert_eq!(stats.branch_count, 0);
        assert_eq!(stats.max_depth, 4);
    }

    #[test]
    fn a_long_chain_is_walked_once() {
        let n = 20_000;
        let nodes = (0..n)
            .map(|i| {
                let parent = if i == 0 {
                    String::new()
                } else {
                    format!("n{}", i - 1)
                };
                node(&format!("n{i}"), &parent)
            })
            .rev()
            .collect();
        assert_eq!(max_depth(&story(nodes)), n as u64 - 1);
    }

    #[test]
    fn counts_nodes_choices_and_tasks() {
        let choice = |selected| StoryChoice {
            id: "c".into(),
            selected,
            ..StoryChoice::default()
        };
        let mut a = node("a", "");
        a.is_revealed = true;
        a.choices = Some(vec![choice(true), choice(false)]);
        let mut b = node("b", "a");
        b.node_type = "event".into();
        b.choices = None;
        let task = |completed, revealed, trigger: &str| Task {
            id: "t".into(),
            completed,
            is_revealed: revealed,
            trigger_character_id: trigger.into(),
            ..Task::default()
        };
        let s = StoryData {
            progress: 35,
            current_state: "发展".into(),
            nodes: vec![a, b],
            tasks: vec![
                task(true, false, "char_quill"),
                task(false, true, "char_quill"),
                task(false, false, ""),
                task(false, false, "char_su"),
            ],
            ..StoryData::default()
        };
        let stats = story_stats(&s);
        assert_eq!(stats.total_nodes, 2);
        assert_eq!(stats.revealed_nodes, 1);
        assert_eq!(stats.total_choices, 2);
        assert_eq!(stats.selected_choices, 1);
        assert_eq!(stats.branch_count, 1);
        assert_eq!(stats.max_depth, 1);
        assert_eq!(stats.total_tasks, 4);
        assert_eq!(stats.completed_tasks, 1);
        assert_eq!(stats.completion_rate, 25.0);
        assert_eq!(stats.progress, 35);
        assert_eq!(stats.current_state, "发展");
        let map = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        assert_eq!(stats.nodes_by_type, map(&[("event", 1), ("main", 1)]));
        assert_eq!(
            stats.tasks_by_status,
            map(&[("active", 1), ("completed", 1), ("hidden", 2)])
        );
        assert_eq!(
            stats.character_involvement,
            map(&[("char_quill", 2), ("char_su", 1)])
        );
    }

    #[test]
    fn an_empty_story_has_zero_rates_and_no_nan() {
        let stats = story_stats(&StoryData::default());
        assert_eq!(stats, StoryStats::default());
        let input = ExportInput {
            story: Some(StoryData::default()),
            story_stats: Some(stats),
            ..ExportInput::default()
        };
        let text = story_summary(&input);
        no_nan(&text);
        assert!(has(&text, "- **已揭示节点**: 0 个 (0.0%)"));
        assert!(has(&text, "- **完成度**: 0.0% (0/0 任务完成)"));
        assert!(has(
            &text,
            "- **故事复杂度**: 低 - 线性故事发展 (平均 0.0 选择/节点)"
        ));
        assert!(has(
            &text,
            "- **互动性水平**: 低 - 缺乏玩家互动 (0.0% 选择已做出)"
        ));
        assert!(!text.contains("### 节点类型分布"));
        assert!(!text.contains("### 角色参与度"));
        // Without any story at all the report still renders.
        no_nan(&story_summary(&ExportInput::default()));
    }

    /// The golden input's statistics and report are what the host computes from its story
    /// (`UPDATE_GOLDEN=1` writes them into `tests/golden/export/story.input.json`).
    #[test]
    fn the_golden_input_is_what_the_host_computes() {
        let mut input = fixture(STORY);
        let story = input.story.as_ref().expect("story");
        let stats = story_stats(story);
        if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
            input.story_stats = Some(stats);
            input.summary_markdown = story_summary(&input);
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/golden/export/story.input.json"
            );
            let text = serde_json::to_string_pretty(&input).expect("json") + "\n";
            std::fs::write(path, text).expect("golden input written");
            return;
        }
        assert_eq!(input.story_stats.as_ref(), Some(&stats));
        assert_eq!(input.summary_markdown, story_summary(&input));
    }

    #[test]
    fn the_report_follows_the_spec_example() {
        let input = fixture(STORY);
        let text = story_summary(&input);
        assert!(text.starts_with(
            "## The Harbor Fog - 故事文档报告\n\n### 故事概览\n\n- **故事简介**: A coastal town is swallowed by fog.\n"
        ));
        for line in [
            "- **已揭示节点**: 2 个 (66.7%)",
            "- **故事分支数**: 2 个",
            "- **最大深度**: 1 层",
            "- **选择总数**: 5 个",
            "- **已做选择**: 1 个",
            "- **main**: 2 个 (66.7%)",
            "- **event**: 1 个 (33.3%)",
            "- **发展阶段**: 序幕阶段 - 故事刚刚开始",
            "- **故事复杂度**: 较低 - 相对线性的发展 (平均 1.7 选择/节点)",
            "- **互动性水平**: 低 - 缺乏玩家互动 (20.0% 选择已做出)",
        ] {
            assert!(has(&text, line), "{line}\n{text}");
        }
        // Types in order of first appearance: main before event.
        let main = text.find("- **main**").expect("main");
        assert!(text.find("- **event**").is_some_and(|e| e > main));
        // The last line ends the report: no trailing blank line.
        assert!(text.ends_with("选择已做出)\n"));
        no_nan(&text);
    }
}
