//! The interactions export as plain text (spec story-export §8.8.4).

use sceneintruder_plugin_sdk::exporter::document::{
    Character, Conversation, ExportInput, Location, render,
    time::{self, Pattern},
};

use crate::text::{self, Text};

/// The whole interactions document.
pub fn render(input: &ExportInput) -> String {
    let mut out = Text::default();
    report_head(&mut out, input);
    out.rule('=', 60);
    out.line(format!("    {} - 完整交互记录", input.scene.scene.title));
    out.rule('=', 60);
    out.blank();
    scene_info(&mut out, input);
    characters(&mut out, input);
    statistics(&mut out, input);
    emotions(&mut out, input);
    keywords(&mut out, input);
    out.line("详细分析报告");
    out.rule('-', 30);
    out.block(&plain_summary(&input.summary_markdown));
    conversations(&mut out, input);
    insights(&mut out, input);
    export_info(&mut out, input);
    out.finish()
}

/// The summary as the second copy embeds it: markers removed and quote marks (`> `) turned
/// into a two-space indent.
fn plain_summary(markdown: &str) -> String {
    text::strip_markers(markdown).replace("> ", "  ")
}

/// The short report that opens the document, with the summary in raw Markdown.
fn report_head(out: &mut Text, input: &ExportInput) {
    let scene = &input.scene.scene;
    let stats = &input.interaction_stats;
    let title = format!("{} - 交互摘要报告", scene.title);
    // The reference underlines with one `=` per UTF-8 byte of the title, so CJK titles get
    // a line three times too long. We count characters instead (spec §8.6.5's recommended
    // fix): exact for ASCII titles, and as close to the display width as a count can be
    // without a width table.
    let underline = title.chars().count();
    out.line(&title);
    out.rule('=', underline);
    out.blank();
    out.line("基础信息:");
    out.line(format!("场景ID: {}", scene.id));
    out.line(format!("场景名称: {}", scene.title));
    out.line(format!("场景描述: {}", scene.description));
    out.line(format!(
        "生成时间: {}",
        time::format(&input.generated_at, Pattern::DateTime)
    ));
    out.blank();
    out.line("统计数据:");
    out.line(format!("总消息数: {}", stats.total_messages));
    out.line(format!("参与角色数: {}", stats.character_count));
    out.line(format!("交互次数: {}", stats.total_interactions));
    out.blank();
    out.line("详细分析:");
    out.rule('-', 20);
    out.block(&input.summary_markdown);
}

fn scene_info(out: &mut Text, input: &ExportInput) {
    let scene = &input.scene.scene;
    out.line("场景信息");
    out.rule('-', 30);
    out.line(format!("场景ID: {}", scene.id));
    out.line(format!("场景名称: {}", scene.title));
    out.line(format!("场景描述: {}", scene.description));
    if !scene.source.is_empty() {
        out.line(format!("数据来源: {}", scene.source));
    }
    for (label, at) in [
        ("创建时间", &scene.created_at),
        ("最后访问", &scene.last_accessed),
        ("最后更新", &scene.last_updated),
    ] {
        out.line(format!("{label}: {}", time::format(at, Pattern::DateTime)));
    }
    let locations = scene.locations.as_deref().unwrap_or_default();
    first_five(out, "地点", locations, |l: &Location| {
        format!("  - {}: {}", l.name, l.description)
    });
    let themes = scene.themes.as_deref().unwrap_or_default();
    if !themes.is_empty() {
        out.line(format!("主要主题: {}", themes.join(", ")));
    }
    if !scene.era.is_empty() {
        out.line(format!("时代背景: {}", scene.era));
    }
    if !scene.atmosphere.is_empty() {
        out.line(format!("氛围设定: {}", scene.atmosphere));
    }
    first_five(out, "道具", &input.scene.items, |item| {
        let mut line = format!("  - {}: {}", item.name, item.description);
        if !item.kind.is_empty() {
            line.push_str(&format!(" (类型: {})", item.kind));
        }
        line
    });
    out.blank();
}

/// `可用{noun}: {n} 个`, the first five entries, and how many more there are (nothing at
/// all for an empty list).
fn first_five<T>(out: &mut Text, noun: &str, list: &[T], entry: impl Fn(&T) -> String) {
    if list.is_empty() {
        return;
    }
    out.line(format!("可用{noun}: {} 个", list.len()));
    for element in list.iter().take(5) {
        out.line(entry(element));
    }
    if list.len() > 5 {
        out.line(format!("  ...以及其他 {} 个{noun}", list.len() - 5));
    }
}

fn characters(out: &mut Text, input: &ExportInput) {
    out.line(format!("参与角色 ({} 位)", input.characters.len()));
    out.rule('-', 30);
    for (i, c) in input.characters.iter().enumerate() {
        character(out, input, i + 1, c);
    }
}

fn character(out: &mut Text, input: &ExportInput, number: usize, c: &Character) {
    out.line(format!("{number}. {}", c.name));
    out.line(format!("   角色ID: {}", c.id));
    out.line(format!("   描述: {}", c.description));
    let optional = [
        ("角色", &c.role),
        ("性格", &c.personality),
        ("背景", &c.background),
        ("说话风格", &c.speech_style),
        ("出处", &c.novel),
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
        for (other, relation) in relationships {
            out.line(format!(
                "     - 与{}: {relation}",
                render::name_or_id(input, other)
            ));
        }
    }
    out.line(format!(
        "   创建时间: {}",
        time::format(&c.created_at, Pattern::DateMinutes)
    ));
    let changed = time::parse(&c.last_updated) != time::parse(&c.created_at);
    if !time::is_zero(&c.last_updated) && changed {
        out.line(format!(
            "   最后更新: {}",
            time::format(&c.last_updated, Pattern::DateMinutes)
        ));
    }
    out.blank();
}

fn statistics(out: &mut Text, input: &ExportInput) {
    let stats = &input.interaction_stats;
    let (i, m) = (stats.total_interactions, stats.total_messages);
    out.line("交互统计摘要");
    out.rule('-', 30);
    out.line("基础数据:");
    out.line(format!("  总交互次数: {i}"));
    out.line(format!("  总消息数量: {m}"));
    out.line(format!("  参与角色数: {}", stats.character_count));
    let range = &stats.date_range;
    if render::has_dates(range) {
        out.line(format!(
            "  交互时间范围: {} 至 {}",
            time::format(&range.start_date, Pattern::DateTime),
            time::format(&range.end_date, Pattern::DateTime)
        ));
        let seconds = time::seconds_between(&range.start_date, &range.end_date);
        let minutes = seconds / 60.0;
        out.line(format!("  总交互时长: {minutes:.1} 分钟"));
        if i > 0 {
            out.line(format!("  平均交互时长: {:.1} 分钟", minutes / i as f64));
        }
        if m > 1 {
            out.line(format!(
                "  平均消息间隔: {:.1} 秒",
                seconds / (m - 1) as f64
            ));
        }
    }
    if let Some(depth) = render::messages_per_interaction(stats) {
        out.line(format!("  平均每次交互消息数: {depth:.1}"));
        out.line(format!(
            "  交互效率评级: {}",
            render::efficiency_word(depth)
        ));
    }
    out.blank();
}

/// The ten most frequent emotions (share of all emotion counts) and the dominant one.
fn emotions(out: &mut Text, input: &ExportInput) {
    let distribution = &input.interaction_stats.emotion_distribution;
    let ranked = render::ranked_emotions(distribution);
    let Some(&(dominant, count)) = ranked.first() else {
        return;
    };
    let total = distribution.values().sum();
    out.line("情绪分布分析:");
    for &(emotion, n) in ranked.iter().take(10) {
        out.line(text::emotion_line(emotion, n, total));
    }
    out.blank();
    out.line("情绪分析洞察:");
    let pct = render::percent(count as f64, total as f64);
    out.line(format!("  主导情绪: {dominant} ({pct:.1}%, {count}次)"));
    out.line(format!(
        "  情绪多样性: {}种不同情绪 ({})",
        ranked.len(),
        render::diversity_word(ranked.len())
    ));
    out.blank();
}

fn keywords(out: &mut Text, input: &ExportInput) {
    let keywords = render::keywords(&input.interaction_stats);
    if keywords.is_empty() {
        return;
    }
    out.line("热门话题关键词:");
    out.line("以下是对话中出现频率最高的关键词:");
    text::keyword_lines(out, keywords);
    out.blank();
    out.line("关键词分析洞察:");
    out.line(format!("  关键词总数: {}个", keywords.len()));
    // Counted over every keyword (not only the 15 listed).
    for (category, members) in render::keywords_by_category(keywords) {
        out.line(format!("  {category}词汇: {}个", members.len()));
    }
    out.blank();
}

fn conversations(out: &mut Text, input: &ExportInput) {
    out.rule('=', 50);
    out.line("完整对话记录");
    out.rule('=', 50);
    out.blank();
    for (g, (_, lines)) in render::groups(&input.conversations).iter().enumerate() {
        out.line(format!("交互会话 #{}", g + 1));
        out.rule('-', 20);
        if let Some(first) = lines.first().filter(|l| !time::is_zero(&l.timestamp)) {
            out.line(format!(
                "开始时间: {}",
                time::format(&first.timestamp, Pattern::DateTime)
            ));
            if let Some(minutes) = render::span_minutes(lines) {
                out.line(format!("持续时间: {minutes:.1} 分钟"));
            }
            out.line(format!("消息数量: {} 条", lines.len()));
            out.blank();
        }
        for (j, line) in lines.iter().enumerate() {
            message(out, input, j + 1, line);
        }
        out.rule('-', 20);
        out.blank();
    }
}

/// One message: a numbered header, its content indented line by line, its emotions and
/// message type.
fn message(out: &mut Text, input: &ExportInput, number: usize, line: &Conversation) {
    let speaker = input.speaker_name(line);
    if time::is_zero(&line.timestamp) {
        out.line(format!("[{number}] {speaker}:"));
    } else {
        let at = time::format(&line.timestamp, Pattern::Time);
        out.line(format!("[{number}] {speaker} ({at}):"));
    }
    // `split('\n')` (not `lines()`) so an empty message still gets its one indented line.
    for content_line in line.content.split('\n') {
        out.line(format!("    {content_line}"));
    }
    let emotions = line.emotions.as_deref().unwrap_or_default();
    if !emotions.is_empty() {
        out.line(format!("    [情绪: {}]", emotions.join(", ")));
    }
    if let Some(kind) = line.metadata.get("message_type") {
        out.line(format!("    [类型: {}]", render::plain(kind)));
    }
    out.blank();
}

fn insights(out: &mut Text, input: &ExportInput) {
    let stats = &input.interaction_stats;
    out.line("总结与洞察");
    out.rule('-', 30);
    if let Some(efficiency) =
        render::messages_per_interaction(stats).filter(|_| stats.total_messages > 0)
    {
        out.line(format!("交互效率: {efficiency:.1} 消息/交互"));
        out.line(format!(
            "效率评级: {}",
            render::interaction_efficiency(efficiency)
        ));
    }
    participation(out, input);
    out.blank();
    out.line("场景要素利用度:");
    let locations = input.scene.scene.locations.as_deref().unwrap_or_default();
    let names: Vec<&str> = locations.iter().map(|l| l.name.as_str()).collect();
    usage(out, input, "地点", &names);
    let names: Vec<&str> = input.scene.items.iter().map(|i| i.name.as_str()).collect();
    usage(out, input, "道具", &names);
}

/// How often each character spoke, most first (ties in order of first appearance), as a
/// share of all character lines.
fn participation(out: &mut Text, input: &ExportInput) {
    let counts = render::character_lines(&input.conversations);
    if counts.is_empty() {
        return;
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    out.blank();
    out.line("角色参与度:");
    for (id, n) in counts {
        let pct = render::percent(n as f64, total as f64);
        out.line(format!(
            "  {}: {n}次发言 ({pct:.1}%)",
            render::name_or_id(input, id)
        ));
    }
}

/// Which of the scene's locations or items (`noun`) the conversations mention, in scene
/// order (nothing when the scene has none).
fn usage(out: &mut Text, input: &ExportInput, noun: &str, names: &[&str]) {
    if names.is_empty() {
        return;
    }
    let mentioned = render::mentioned(names, &input.conversations);
    if mentioned.is_empty() {
        out.line(format!("  {noun}利用情况: 无明确{noun}提及"));
        return;
    }
    out.line(format!("  {noun}利用情况:"));
    for (name, n) in &mentioned {
        out.line(format!("    {name}: 提及 {n} 次"));
    }
    let pct = render::percent(mentioned.len() as f64, names.len() as f64);
    out.line(format!(
        "  {noun}利用率: {pct:.1}% ({}/{})",
        mentioned.len(),
        names.len()
    ));
}

fn export_info(out: &mut Text, input: &ExportInput) {
    let stats = &input.interaction_stats;
    out.blank();
    out.rule('=', 50);
    out.line("导出信息");
    out.rule('=', 50);
    out.line(format!(
        "导出时间: {}",
        time::format(&input.generated_at, Pattern::DateTime)
    ));
    out.line("导出格式: 纯文本");
    out.line("数据来源: SceneIntruderMCP 交互聚合服务");
    out.line("版本: v1.0");
    out.line(format!(
        "场景数据版本: {}",
        time::format(&input.scene.scene.last_updated, Pattern::Date)
    ));
    out.line(format!(
        "统计数据包含: {} 条对话，{} 次交互",
        stats.total_messages, stats.total_interactions
    ));
    // The reference counts bytes here although the label says characters; we count
    // characters of everything above this line.
    let length = out.chars();
    out.line(format!("文档长度: {length} 字符"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;

    fn fixture() -> ExportInput {
        golden::input("interactions")
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("interactions.txt", &render(&fixture()));
    }

    #[test]
    fn the_underline_counts_characters() {
        let mut input = fixture();
        input.scene.scene.title = "雾港".into();
        let text = render(&input);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("雾港 - 交互摘要报告"));
        assert_eq!(lines.next(), Some("=".repeat(11).as_str()));
    }

    #[test]
    fn the_document_length_counts_characters_above_it() {
        let text = render(&fixture());
        let (above, last) = text
            .trim_end_matches('\n')
            .rsplit_once('\n')
            .expect("several lines");
        let n = above.chars().count() + 1; // the line break before the last line
        assert_eq!(last, format!("文档长度: {n} 字符"));
    }

    #[test]
    fn the_summary_appears_raw_then_plain() {
        let text = render(&fixture());
        assert!(text.contains("详细分析:\n--------------------\n## The Harbor Fog"));
        assert!(text.contains("详细分析报告\n------------------------------\n The Harbor Fog"));
        assert!(has_line(&text, "- 场景: The Harbor Fog"));
        assert_eq!(plain_summary("> **a** *b*"), "  a b");
    }

    #[test]
    fn long_lists_show_five_and_a_remainder() {
        let mut input = fixture();
        let pier = input.scene.scene.locations.clone().unwrap_or_default()[0].clone();
        input.scene.scene.locations = Some(vec![pier; 7]);
        let text = render(&input);
        assert!(has_line(&text, "可用地点: 7 个"));
        assert_eq!(text.matches("  - The Pier: ").count(), 5);
        assert!(has_line(&text, "  ...以及其他 2 个地点"));
    }

    #[test]
    fn unknown_relations_show_the_id_and_unchanged_times_hide() {
        let text = render(&fixture());
        assert!(has_line(&text, "     - 与char_gone: owes her money"));
        // 苏婉 was never updated (zero time); Watchman's update equals its creation.
        assert_eq!(text.matches("   最后更新: ").count(), 1);
    }

    #[test]
    fn multi_line_content_is_indented_and_types_shown() {
        let mut input = fixture();
        input.conversations.truncate(1);
        input.conversations[0].content = "one\ntwo".into();
        input.conversations[0]
            .metadata
            .insert("message_type".into(), "dialogue".into());
        let text = render(&input);
        assert!(
            text.contains("\n    one\n    two\n    [情绪: suspicious]\n    [类型: dialogue]\n")
        );
        assert!(!text.contains("持续时间"), "one message has no duration");
    }

    #[test]
    fn no_conversations_and_no_mentions() {
        let mut input = fixture();
        input.conversations.clear();
        input.interaction_stats = Default::default();
        let text = render(&input);
        assert!(has_line(&text, "  地点利用情况: 无明确地点提及"));
        assert!(has_line(&text, "  道具利用情况: 无明确道具提及"));
        assert!(!text.contains("角色参与度"));
        assert!(!text.contains("交互效率"));
        assert!(!text.contains("交互会话"));
        assert!(!text.contains("情绪分布分析"));
    }
}
