//! The story export as CSV: a header and one row per node, in story order, every node
//! (revealed or not, as in the json document; the `revealed` column tells them apart).
//!
//! Columns: `id`, `type`, `parent_id`, `revealed` (`true`/`false`), `created_at`
//! (`YYYY-MM-DD HH:MM:SS` in the time's own offset, empty for the zero time), `content`
//! (the narrated text), `choices` (the choice texts) and `selected_choices` (the texts of
//! the choices taken).

use sceneintruder_plugin_sdk::exporter::document::{
    ExportInput, StoryNode,
    time::{self, Pattern},
};

use crate::record;

/// The header row.
const HEADER: [&str; 8] = [
    "id",
    "type",
    "parent_id",
    "revealed",
    "created_at",
    "content",
    "choices",
    "selected_choices",
];

/// Separator between several choices inside one field.
const LIST_SEPARATOR: &str = "; ";

/// The story's nodes as CSV (no byte-order mark; CRLF line ends). No story: the header
/// alone.
pub fn render(input: &ExportInput) -> String {
    let mut out = String::new();
    record::push(&mut out, &HEADER);
    let nodes = input.story.as_ref().map_or(&[][..], |s| s.nodes.as_slice());
    for node in nodes {
        let created = created_at(node);
        let choices = choices(node, false);
        let selected = choices_taken(node);
        record::push(
            &mut out,
            &[
                &node.id,
                &node.node_type,
                &node.parent_id,
                if node.is_revealed { "true" } else { "false" },
                &created,
                &node.content,
                &choices,
                &selected,
            ],
        );
    }
    out
}

fn created_at(node: &StoryNode) -> String {
    if time::is_zero(&node.created_at) {
        String::new()
    } else {
        time::format(&node.created_at, Pattern::DateTime)
    }
}

/// Every choice text (`only_taken`: the selected ones), joined by [`LIST_SEPARATOR`].
fn choices(node: &StoryNode, only_taken: bool) -> String {
    node.choice_list()
        .iter()
        .filter(|c| !only_taken || c.selected)
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join(LIST_SEPARATOR)
}

fn choices_taken(node: &StoryNode) -> String {
    choices(node, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;

    fn fixture() -> ExportInput {
        golden::input("story")
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("story.csv", &render(&fixture()));
    }

    #[test]
    fn one_row_per_node_with_its_choices() {
        let text = render(&fixture());
        let rows: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            rows[0],
            "id,type,parent_id,revealed,created_at,content,choices,selected_choices"
        );
        assert_eq!(
            rows[1],
            "node_scene_harbor_1,main,,true,2025-06-20 10:30:00,Fog rolls over the pier.,Question the night watchman; Take bold action,Question the night watchman"
        );
        assert!(rows[2].starts_with("node_scene_harbor_2,main,,false,"));
        assert!(
            rows[3].starts_with(
                "node_scene_harbor_1718870000999999999,event,node_scene_harbor_1,true,"
            )
        );
        // Three nodes, then the empty string after the last CRLF.
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[4], "");
    }

    #[test]
    fn formulas_are_defused_and_no_story_is_the_header_alone() {
        let mut input = fixture();
        if let Some(story) = input.story.as_mut() {
            story.nodes[0].content = "=HYPERLINK(\"http://x\")".into();
            story.nodes[0].created_at = "0001-01-01T00:00:00Z".into();
        }
        let text = render(&input);
        assert!(
            text.contains(",true,,\"'=HYPERLINK(\"\"http://x\"\")\","),
            "{text}"
        );
        input.story = None;
        assert_eq!(
            render(&input),
            "id,type,parent_id,revealed,created_at,content,choices,selected_choices\r\n"
        );
    }
}
