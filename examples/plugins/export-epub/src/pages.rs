//! The book's pages, in reading order: a title page, the chapters (one per location, or one
//! conversation log when the scene has no locations), and the characters.
//!
//! Each page is the XHTML of its `<body>`; [`crate::package::xhtml`] wraps it. Every value
//! from the export input goes through [`xml::text`] or [`xml::lines`].

use sceneintruder_plugin_sdk::exporter::document::time::{self, Pattern};
use sceneintruder_plugin_sdk::exporter::document::{Conversation, ExportInput, Location, render};

use crate::book::{Labels, Meta};
use crate::xml;

/// One XHTML page of the book.
pub struct Page {
    /// Manifest id (an XML name).
    pub id: String,
    /// File name inside `OEBPS/`.
    pub file: String,
    /// Title in the table of contents and in `<title>` (raw text).
    pub title: String,
    /// The `<body>` content, escaped.
    pub body: String,
}

/// Every page of the book, in reading order.
pub fn pages(input: &ExportInput, meta: &Meta) -> Vec<Page> {
    let labels = meta.language.labels();
    let mut pages = vec![title_page(input, meta)];
    match input.scene.scene.locations.as_deref() {
        Some(locations) if !locations.is_empty() => {
            for (i, location) in locations.iter().enumerate() {
                pages.push(location_chapter(input, labels, i + 1, location));
            }
        }
        _ => pages.push(log_chapter(input, labels)),
    }
    pages.push(characters(input, labels));
    pages
}

fn title_page(input: &ExportInput, meta: &Meta) -> Page {
    let scene = &input.scene.scene;
    let labels = meta.language.labels();
    let mut body = format!(
        "<section epub:type=\"titlepage\">\n<h1>{}</h1>\n",
        xml::text(&meta.title)
    );
    if !meta.description.is_empty() {
        body += &format!(
            "<p class=\"description\">{}</p>\n",
            xml::lines(&meta.description)
        );
    }
    let themes = scene.themes.as_deref().unwrap_or_default().join(", ");
    for (label, value) in [
        (labels.era, scene.era.as_str()),
        (labels.atmosphere, scene.atmosphere.as_str()),
        (labels.themes, themes.as_str()),
    ] {
        body += &field(label, value);
    }
    body += "</section>\n";
    Page {
        id: "title".into(),
        file: "title.xhtml".into(),
        title: meta.title.clone(),
        body,
    }
}

/// A location's name, its description, and the lines of the conversation log that mention
/// it (case-insensitive, as a reader would look for the place).
fn location_chapter(input: &ExportInput, labels: &Labels, n: usize, location: &Location) -> Page {
    let name = xml::clean(&location.name).trim().to_string();
    let title = if name.is_empty() {
        format!("{} {n}", labels.location)
    } else {
        name.clone()
    };
    let mut body = format!(
        "<section epub:type=\"chapter\">\n<h1>{}</h1>\n",
        xml::text(&title)
    );
    if !location.description.trim().is_empty() {
        body += &format!(
            "<p class=\"description\">{}</p>\n",
            xml::lines(location.description.trim())
        );
    }
    // An unnamed location would "mention" every line; it gets none.
    let needle = name.to_lowercase();
    let lines: Vec<&Conversation> = input
        .context
        .conversations
        .iter()
        .filter(|line| !needle.is_empty() && line.content.to_lowercase().contains(&needle))
        .collect();
    // Without `include_conversations` the log is empty: say nothing rather than "no mentions".
    if !input.context.conversations.is_empty() {
        body += &format!("<h2>{}</h2>\n", xml::text(labels.conversations));
        body += &conversation(input, labels, &lines, labels.no_mentions);
    }
    body += "</section>\n";
    Page {
        id: format!("chapter-{n}"),
        file: format!("chapter-{n}.xhtml"),
        title,
        body,
    }
}

/// The whole conversation log, for a scene without locations.
fn log_chapter(input: &ExportInput, labels: &Labels) -> Page {
    let lines: Vec<&Conversation> = input.context.conversations.iter().collect();
    let body = format!(
        "<section epub:type=\"chapter\">\n<h1>{}</h1>\n{}</section>\n",
        xml::text(labels.conversations),
        conversation(input, labels, &lines, labels.no_conversations)
    );
    Page {
        id: "chapter-1".into(),
        file: "chapter-1.xhtml".into(),
        title: labels.conversations.into(),
        body,
    }
}

/// Conversation lines as paragraphs: time, speaker, what was said.
fn conversation(
    input: &ExportInput,
    labels: &Labels,
    lines: &[&Conversation],
    none: &str,
) -> String {
    if lines.is_empty() {
        return format!("<p>{}</p>\n", xml::text(none));
    }
    let mut out = String::new();
    for line in lines {
        out += "<p>";
        if !time::is_zero(&line.timestamp) {
            out += &format!(
                "<span class=\"time\">{}</span> ",
                time::format(&line.timestamp, Pattern::DateTime)
            );
        }
        out += &format!(
            "<b>{}</b>: {}</p>\n",
            xml::text(speaker(input, labels, line)),
            xml::lines(&line.content)
        );
    }
    out
}

/// Who spoke: the character's name, else the line's own speaker, else "User" for the
/// player's lines, else the raw speaker id.
fn speaker<'a>(input: &'a ExportInput, labels: &'a Labels, line: &'a Conversation) -> &'a str {
    let name = input.speaker_name(line);
    if !name.trim().is_empty() {
        name
    } else if line.speaker_id == "user" || line.speaker_id.is_empty() {
        labels.user
    } else {
        &line.speaker_id
    }
}

/// One section per character with the fields that are set.
fn characters(input: &ExportInput, labels: &Labels) -> Page {
    let mut body = format!(
        "<section epub:type=\"chapter\">\n<h1>{}</h1>\n",
        xml::text(labels.characters)
    );
    if input.characters.is_empty() {
        body += &format!("<p>{}</p>\n", xml::text(labels.no_characters));
    }
    for character in &input.characters {
        let name = if character.name.trim().is_empty() {
            &character.id
        } else {
            &character.name
        };
        body += &format!("<section>\n<h2>{}</h2>\n", xml::text(name));
        body += &field(labels.role, &character.role);
        if !character.description.trim().is_empty() {
            body += &format!("<p>{}</p>\n", xml::lines(character.description.trim()));
        }
        let knowledge = character
            .knowledge
            .as_deref()
            .unwrap_or_default()
            .join(", ");
        for (label, value) in [
            (labels.personality, character.personality.as_str()),
            (labels.background, character.background.as_str()),
            (labels.speech_style, character.speech_style.as_str()),
            (labels.knowledge, knowledge.as_str()),
        ] {
            body += &field(label, value);
        }
        let relationships = character.relationships.as_ref().filter(|r| !r.is_empty());
        if let Some(relationships) = relationships {
            body += &format!("<p><b>{}</b></p>\n<ul>\n", xml::text(labels.relationships));
            // BTreeMap: key order, so the output is the same on every run.
            for (other, relation) in relationships {
                let other = render::name_or_id(input, other);
                body += &format!(
                    "<li><b>{}</b>: {}</li>\n",
                    xml::text(other),
                    xml::text(relation)
                );
            }
            body += "</ul>\n";
        }
        body += "</section>\n";
    }
    body += "</section>\n";
    Page {
        id: "characters".into(),
        file: "characters.xhtml".into(),
        title: labels.characters.into(),
        body,
    }
}

/// `<p><b>Label:</b> value</p>`, or nothing when the value is blank.
fn field(label: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return String::new();
    }
    format!(
        "<p><b>{}:</b> {}</p>\n",
        xml::text(label),
        xml::lines(value)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sceneintruder_plugin_sdk::exporter::document::Character;

    const SCENE: &str = include_str!("../../../../tests/golden/export/scene.input.json");

    fn input() -> ExportInput {
        ExportInput::from_json(SCENE).expect("the golden input parses")
    }

    fn page<'a>(pages: &'a [Page], id: &str) -> &'a Page {
        pages.iter().find(|p| p.id == id).expect("page exists")
    }

    #[test]
    fn one_chapter_per_location_with_the_lines_that_mention_it() {
        let input = input();
        let pages = pages(&input, &Meta::of(&input));
        let ids: Vec<&str> = pages.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["title", "chapter-1", "chapter-2", "characters"]);
        let pier = page(&pages, "chapter-1");
        assert_eq!(pier.title, "The Pier");
        assert!(pier.body.contains("Wet planks and one dead lantern."));
        // "on the pier" and "past the Pier": case does not matter.
        assert_eq!(
            pier.body.matches("<b>Quill</b>").count(),
            2,
            "{}",
            pier.body
        );
        assert!(
            pier.body
                .contains("<span class=\"time\">2025-06-20 10:01:00</span>")
        );
        assert!(
            pier.body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;")
        );
        let teahouse = page(&pages, "chapter-2");
        assert_eq!(teahouse.title, "茶馆");
        assert!(teahouse.body.contains("码头边的小茶馆。"));
        assert!(
            teahouse
                .body
                .contains("No conversation mentions this place.")
        );
    }

    #[test]
    fn without_locations_one_chapter_holds_the_log() {
        let mut input = input();
        input.scene.scene.locations = None;
        let pages = pages(&input, &Meta::of(&input));
        let log = page(&pages, "chapter-1");
        assert_eq!(log.title, "Conversations");
        assert_eq!(log.body.matches("<p><span class=\"time\">").count(), 8);
        // The player's line has no character behind it.
        assert!(
            log.body
                .contains("<b>User</b>: What happened at the harbor?")
        );
        input.context.conversations.clear();
        let pages = super::pages(&input, &Meta::of(&input));
        assert!(
            page(&pages, "chapter-1")
                .body
                .contains("No conversations were exported.")
        );
    }

    #[test]
    fn title_page_and_characters_are_escaped() {
        let input = input();
        let pages = pages(&input, &Meta::of(&input));
        let title = &page(&pages, "title").body;
        assert!(title.contains("<h1>The Harbor Fog</h1>"));
        assert!(title.contains("<p><b>Era:</b> 1920s</p>"));
        assert!(title.contains("<p><b>Themes:</b> mystery, trust</p>"));
        let characters = &page(&pages, "characters").body;
        assert!(characters.contains("<h2>Watchman &quot;Old&quot; Ma</h2>"));
        assert!(characters.contains("&lt;keeper&gt; of the ledger &amp; tide tables."));
        // Relationships name the other character, or keep an id that is not one.
        assert!(characters.contains("<li><b>Watchman &quot;Old&quot; Ma</b>: suspects him</li>"));
        assert!(characters.contains("<li><b>char_gone</b>: owes her money</li>"));
        assert!(characters.contains("<p><b>Personality:</b> 机敏</p>"));
    }

    #[test]
    fn empty_input_still_has_every_page() {
        let input = ExportInput {
            characters: vec![Character::default()],
            ..Default::default()
        };
        let pages = pages(&input, &Meta::of(&input));
        assert_eq!(pages.len(), 3);
        assert!(pages.iter().all(|p| !p.title.is_empty()));
    }

    #[test]
    fn an_unnamed_location_mentions_nothing() {
        let mut input = input();
        input.scene.scene.locations = Some(vec![Location::default()]);
        let pages = pages(&input, &Meta::of(&input));
        let chapter = page(&pages, "chapter-1");
        assert_eq!(chapter.title, "Location 1");
        assert!(
            chapter
                .body
                .contains("No conversation mentions this place.")
        );
    }

    #[test]
    fn without_the_log_a_location_has_no_conversation_section() {
        let mut input = input();
        input.context.conversations.clear();
        let pages = pages(&input, &Meta::of(&input));
        let pier = page(&pages, "chapter-1");
        assert!(pier.body.contains("Wet planks"));
        assert!(!pier.body.contains("Conversations"), "{}", pier.body);
    }
}
