//! Which log lines an export calls "interaction conversations" (spec §8.6.1).

use sceneintruder_export_document::Conversation;
use serde_json::Value;

/// An export carries at most this many interaction conversations: the newest ones.
pub const MAX_CONVERSATIONS: usize = 1000;

/// The `metadata.conversation_type` of lines written by the "trigger interaction" feature.
const INTERACTION_TYPE: &str = "character_interaction";

/// The lines of `log` whose `metadata.conversation_type` is exactly
/// `character_interaction` (simulations, chats and story lines are left out), in log order,
/// at most the last [`MAX_CONVERSATIONS`].
pub fn interaction_conversations(log: &[Conversation]) -> Vec<Conversation> {
    // Walk from the newest line so only the kept lines are ever cloned, however long the log.
    let mut kept: Vec<Conversation> = log
        .iter()
        .rev()
        .filter(|line| is_interaction(line))
        .take(MAX_CONVERSATIONS)
        .cloned()
        .collect();
    kept.reverse();
    kept
}

fn is_interaction(line: &Conversation) -> bool {
    line.metadata
        .get("conversation_type")
        .and_then(Value::as_str)
        == Some(INTERACTION_TYPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{INTERACTIONS, SCENE, at, fixture, line, with_meta};
    use serde_json::json;

    fn typed(content: &str, kind: Value) -> Conversation {
        with_meta(
            line("char_a", content, &at(1)),
            json!({ "conversation_type": kind }),
        )
    }

    #[test]
    fn keeps_only_exact_interaction_lines_in_log_order() {
        let log = [
            typed("a", json!("character_interaction")),
            typed("chat", json!("chat")),
            typed("case", json!("Character_Interaction")),
            typed("spaced", json!("character_interaction ")),
            typed("number", json!(7)),
            line("char_a", "no metadata", &at(2)),
            typed("b", json!("character_interaction")),
        ];
        let kept: Vec<String> = interaction_conversations(&log)
            .into_iter()
            .map(|c| c.content)
            .collect();
        assert_eq!(kept, ["a", "b"]);
    }

    #[test]
    fn keeps_the_last_thousand() {
        let log: Vec<Conversation> = (0..MAX_CONVERSATIONS + 5)
            .map(|i| typed(&i.to_string(), json!("character_interaction")))
            .collect();
        let kept = interaction_conversations(&log);
        assert_eq!(kept.len(), MAX_CONVERSATIONS);
        assert_eq!(kept[0].content, "5");
        assert_eq!(kept[MAX_CONVERSATIONS - 1].content, "1004");
    }

    #[test]
    fn empty_log_gives_nothing() {
        assert!(interaction_conversations(&[]).is_empty());
    }

    #[test]
    fn reproduces_the_golden_scene_input() {
        let input = fixture(SCENE);
        assert_eq!(
            interaction_conversations(&input.context.conversations),
            input.conversations
        );
        // The interactions input carries no log (`include_conversations` is false), so its
        // `conversations` cannot be derived from `context`; they are the same six lines.
        let interactions = fixture(INTERACTIONS);
        assert!(interactions.context.conversations.is_empty());
        assert_eq!(interactions.conversations, input.conversations);
    }
}
