//! The interactions export as CSV: a header and one row per interaction conversation,
//! in the order the host sent them (log order).
//!
//! Columns: `time` (`YYYY-MM-DD HH:MM:SS` in the time's own offset, empty for the zero
//! time), `speaker` (display name), `target` (the other characters of the line),
//! `message` (the line's text) and `emotion`.

use sceneintruder_plugin_sdk::exporter::document::{
    Conversation, ExportInput, render,
    time::{self, Pattern},
};
use serde_json::Value;

use crate::record;

/// The header row.
const HEADER: [&str; 5] = ["time", "speaker", "target", "message", "emotion"];

/// Separator between several names or emotions inside one field.
const LIST_SEPARATOR: &str = "; ";

/// The interactions document as CSV (no byte-order mark; CRLF line ends).
pub fn render(input: &ExportInput) -> String {
    let mut out = String::new();
    record::push(&mut out, &HEADER);
    for line in &input.conversations {
        let time = time_of(line);
        let speaker = speaker(input, line);
        let target = target(input, line);
        let emotion = emotion(line);
        record::push(
            &mut out,
            &[&time, speaker, &target, &line.content, &emotion],
        );
    }
    out
}

/// The line's time, or nothing for a zero (or unreadable) one rather than year 1.
fn time_of(line: &Conversation) -> String {
    if time::is_zero(&line.timestamp) {
        String::new()
    } else {
        time::format(&line.timestamp, Pattern::DateTime)
    }
}

/// Who spoke: the character's name, else the line's `speaker`, else its `speaker_id`
/// (real interaction lines leave `speaker` empty, so an unknown character keeps its id).
fn speaker<'a>(input: &'a ExportInput, line: &'a Conversation) -> &'a str {
    match input.speaker_name(line) {
        "" => &line.speaker_id,
        name => name,
    }
}

/// The other characters of the line (`metadata.character_ids` without the speaker), by
/// name; ids that are not characters of the scene are kept as ids.
fn target(input: &ExportInput, line: &Conversation) -> String {
    let ids: Vec<String> = match line.metadata.get("character_ids") {
        Some(Value::Array(values)) => values.iter().filter_map(text).collect(),
        Some(other) => text(other).into_iter().collect(),
        None => Vec::new(),
    };
    ids.iter()
        .filter(|id| **id != line.speaker_id)
        .map(|id| render::name_or_id(input, id))
        .collect::<Vec<_>>()
        .join(LIST_SEPARATOR)
}

/// The line's emotions, else its `metadata.emotion`. An empty list counts as absent: the
/// reference omits empty lists (`omitempty`), so there the two cannot be told apart.
fn emotion(line: &Conversation) -> String {
    match &line.emotions {
        Some(list) if !list.is_empty() => list.join(LIST_SEPARATOR),
        _ => line
            .metadata
            .get("emotion")
            .and_then(text)
            .unwrap_or_default(),
    }
}

/// A metadata scalar as text (`None` for null, objects and arrays).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::golden;
    use serde_json::json;

    fn fixture() -> ExportInput {
        golden::input("interactions")
    }

    /// The rows of `input`, split on CRLF (only safe when no field holds a line break).
    fn rows(input: &ExportInput) -> Vec<String> {
        let text = render(input);
        assert!(text.ends_with("\r\n"));
        text.trim_end_matches("\r\n")
            .split("\r\n")
            .map(str::to_string)
            .collect()
    }

    fn line(speaker_id: &str, metadata: Value) -> Conversation {
        Conversation {
            id: "c".into(),
            speaker_id: speaker_id.into(),
            content: "hello".into(),
            timestamp: "2025-06-20T10:00:00+08:00".into(),
            metadata: match metadata {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            ..Conversation::default()
        }
    }

    #[test]
    fn matches_the_golden_file() {
        golden::check("interactions.csv", &render(&fixture()));
    }

    #[test]
    fn empty_input_is_the_header_alone() {
        let text = render(&ExportInput::default());
        assert_eq!(text, "time,speaker,target,message,emotion\r\n");
        assert!(!text.starts_with('\u{feff}'));
    }

    #[test]
    fn one_row_per_conversation_in_input_order() {
        let input = fixture();
        let rows = rows(&input);
        assert_eq!(rows.len(), 1 + input.conversations.len());
        assert_eq!(
            rows[1],
            "2025-06-20 10:01:00,Quill,,Where were you at midnight when the lantern went out on the pier?,suspicious"
        );
        assert_eq!(
            rows[2],
            "2025-06-20 10:01:30,\"Watchman \"\"Old\"\" Ma\",,\"By the stove, I swear it. The fog was thick as wool.\",afraid; defensive"
        );
    }

    #[test]
    fn targets_are_the_other_characters_by_name() {
        let mut input = fixture();
        input.conversations = vec![line(
            "char_su",
            json!({ "character_ids": ["char_su", "char_quill", "char_gone", "char_watch"] }),
        )];
        assert_eq!(
            rows(&input)[1],
            "2025-06-20 10:00:00,苏婉,\"Quill; char_gone; Watchman \"\"Old\"\" Ma\",hello,"
        );
    }

    #[test]
    fn odd_character_ids_do_not_break_the_row() {
        let mut input = fixture();
        input.conversations = vec![
            line("char_su", json!({ "character_ids": "char_quill" })),
            line("char_su", json!({ "character_ids": [null, 7, {"x": 1}] })),
            line("char_su", json!({ "character_ids": null })),
        ];
        let rows = rows(&input);
        assert_eq!(rows[1], "2025-06-20 10:00:00,苏婉,Quill,hello,");
        assert_eq!(rows[2], "2025-06-20 10:00:00,苏婉,7,hello,");
        assert_eq!(rows[3], "2025-06-20 10:00:00,苏婉,,hello,");
    }

    #[test]
    fn emotions_fall_back_to_the_metadata_emotion() {
        let mut input = fixture();
        let mut listed = line("char_quill", json!({ "emotion": "calm" }));
        listed.emotions = Some(vec!["angry".into(), "sad".into()]);
        let mut empty = line("char_quill", json!({ "emotion": "calm" }));
        empty.emotions = Some(Vec::new());
        input.conversations = vec![
            listed,
            empty,
            line("char_quill", json!({ "emotion": "calm" })),
            line("char_quill", json!({ "emotion": null })),
        ];
        let emotions: Vec<String> = rows(&input)[1..]
            .iter()
            .map(|r| r.rsplit(',').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(emotions, ["angry; sad", "calm", "calm", ""]);
    }

    #[test]
    fn speaker_falls_back_to_the_line_then_the_id() {
        let mut input = fixture();
        let mut named = line("user", json!({}));
        named.speaker = "Player".into();
        input.conversations = vec![named, line("char_unknown", json!({})), line("", json!({}))];
        let speakers: Vec<String> = rows(&input)[1..]
            .iter()
            .map(|r| r.split(',').nth(1).unwrap_or_default().to_string())
            .collect();
        assert_eq!(speakers, ["Player", "char_unknown", ""]);
    }

    #[test]
    fn zero_and_unreadable_times_are_empty() {
        let mut input = fixture();
        let mut zero = line("char_quill", json!({}));
        zero.timestamp = "0001-01-01T00:00:00Z".into();
        let mut garbage = line("char_quill", json!({}));
        garbage.timestamp = "yesterday".into();
        input.conversations = vec![zero, garbage];
        assert_eq!(rows(&input)[1..], [",Quill,,hello,", ",Quill,,hello,"]);
    }

    #[test]
    fn formulas_and_line_breaks_in_messages_are_neutralised() {
        let mut input = fixture();
        let mut formula = line("char_quill", json!({}));
        formula.content = "=HYPERLINK(\"http://evil\",\"click\")".into();
        let mut multiline = line("char_quill", json!({}));
        multiline.content = "first\nsecond".into();
        input.conversations = vec![formula, multiline];
        let text = render(&input);
        assert!(text.contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"click\"\")\",\r\n"));
        assert!(text.contains(",\"first\nsecond\",\r\n"));
    }

    #[test]
    fn huge_and_unicode_text_is_kept_whole() {
        let mut input = fixture();
        let mut big = line("char_su", json!({}));
        big.content = "雾🥇".repeat(100_000);
        input.conversations = vec![big.clone()];
        assert!(render(&input).contains(&big.content));
    }
}
