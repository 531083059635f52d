//! The whole book: its metadata, its files and their order in the archive.

use sceneintruder_plugin_sdk::exporter::document::{ExportInput, time};

use crate::{archive, package, pages, xml};

/// The book's language, guessed from the scene's title and description: Chinese when they
/// hold a CJK ideograph, else English. It sets `dc:language`, `xml:lang` and the fixed labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Zh,
}

impl Language {
    fn guess(input: &ExportInput) -> Language {
        let scene = &input.scene.scene;
        if xml::has_cjk(&scene.title) || xml::has_cjk(&scene.description) {
            Language::Zh
        } else {
            Language::En
        }
    }

    /// BCP 47 tag.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Zh => "zh",
        }
    }

    pub fn labels(self) -> &'static Labels {
        match self {
            Language::En => &EN,
            Language::Zh => &ZH,
        }
    }
}

/// The fixed words of the book, per language.
pub struct Labels {
    pub contents: &'static str,
    pub untitled: &'static str,
    pub era: &'static str,
    pub atmosphere: &'static str,
    pub themes: &'static str,
    pub location: &'static str,
    pub conversations: &'static str,
    pub no_mentions: &'static str,
    pub no_conversations: &'static str,
    pub user: &'static str,
    pub characters: &'static str,
    pub no_characters: &'static str,
    pub role: &'static str,
    pub personality: &'static str,
    pub background: &'static str,
    pub speech_style: &'static str,
    pub knowledge: &'static str,
    pub relationships: &'static str,
}

static EN: Labels = Labels {
    contents: "Contents",
    untitled: "Untitled scene",
    era: "Era",
    atmosphere: "Atmosphere",
    themes: "Themes",
    location: "Location",
    conversations: "Conversations",
    no_mentions: "No conversation mentions this place.",
    no_conversations: "No conversations were exported.",
    user: "User",
    characters: "Characters",
    no_characters: "This scene has no characters.",
    role: "Role",
    personality: "Personality",
    background: "Background",
    speech_style: "Speech style",
    knowledge: "Knowledge",
    relationships: "Relationships",
};

static ZH: Labels = Labels {
    contents: "目录",
    untitled: "未命名场景",
    era: "时代",
    atmosphere: "氛围",
    themes: "主题",
    location: "地点",
    conversations: "对话记录",
    no_mentions: "没有提到此地的对话。",
    no_conversations: "没有导出的对话。",
    user: "用户",
    characters: "角色",
    no_characters: "此场景没有角色。",
    role: "角色定位",
    personality: "性格特征",
    background: "背景故事",
    speech_style: "说话风格",
    knowledge: "知识领域",
    relationships: "人际关系",
};

/// What the package document says about the book (raw text; escaped where it is written).
pub struct Meta {
    /// `urn:sceneintruder:scene:<id>`: stable, so a reading system recognises a re-export
    /// of the same scene as a new version of the same book.
    pub identifier: String,
    pub title: String,
    pub description: String,
    pub language: Language,
    /// `dcterms:modified`: `generated_at` in UTC, `YYYY-MM-DDThh:mm:ssZ`.
    pub modified: String,
}

impl Meta {
    pub fn of(input: &ExportInput) -> Meta {
        let scene = &input.scene.scene;
        let language = Language::guess(input);
        // dc:title must not be empty: fall back to the scene's name, its id, a label.
        let title = [&scene.title, &scene.name, &scene.id]
            .into_iter()
            .map(|t| xml::clean(t).trim().to_string())
            .find(|t| !t.is_empty())
            .unwrap_or_else(|| language.labels().untitled.to_string());
        Meta {
            identifier: format!("urn:sceneintruder:scene:{}", scene.id),
            title,
            description: scene.description.trim().to_string(),
            language,
            modified: modified(&input.generated_at),
        }
    }
}

/// `generated_at` in UTC as EPUB wants it; 1980-01-01 (the zip epoch, also used for the
/// archive's timestamps) when it is not a time or its year has no four-digit form.
fn modified(generated_at: &str) -> String {
    time::parse(generated_at)
        .map(|t| t.naive_utc())
        .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "1980-01-01T00:00:00Z".to_string())
}

/// Shared by every page.
const STYLE: &str = "body { font-family: serif; line-height: 1.5; }\n\
h1, h2 { font-family: sans-serif; }\n\
.description { font-style: italic; }\n\
.time { color: #666; font-size: 0.85em; }\n";

/// The EPUB file of a scene export.
pub fn epub(input: &ExportInput) -> Result<Vec<u8>, String> {
    let meta = Meta::of(input);
    let pages = pages::pages(input, &meta);
    let mut files: Vec<(String, String)> = vec![
        ("META-INF/container.xml".into(), package::container()),
        ("OEBPS/content.opf".into(), package::opf(&meta, &pages)),
        ("OEBPS/nav.xhtml".into(), package::nav(&meta, &pages)),
        ("OEBPS/style.css".into(), STYLE.into()),
    ];
    for page in &pages {
        files.push((
            format!("OEBPS/{}", page.file),
            package::xhtml(&meta, &page.title, &page.body),
        ));
    }
    archive::pack(&files, archive::stamp(&input.generated_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_is_utc_whatever_the_offset() {
        assert_eq!(
            modified("2025-06-20T11:00:00.123+08:00"),
            "2025-06-20T03:00:00Z"
        );
        assert_eq!(
            modified("2025-01-01T01:00:00+08:00"),
            "2024-12-31T17:00:00Z"
        );
        assert_eq!(modified("not a time"), "1980-01-01T00:00:00Z");
        assert_eq!(modified(""), "1980-01-01T00:00:00Z");
    }

    #[test]
    fn language_and_title_fall_back() {
        let mut input = ExportInput::default();
        let meta = Meta::of(&input);
        assert_eq!(
            (meta.language, meta.title.as_str()),
            (Language::En, "Untitled scene")
        );
        input.scene.scene.id = "s1".into();
        assert_eq!(Meta::of(&input).title, "s1");
        input.scene.scene.title = " \u{1} ".into();
        input.scene.scene.description = "码头边的小茶馆。".into();
        let meta = Meta::of(&input);
        assert_eq!((meta.language, meta.title.as_str()), (Language::Zh, "s1"));
        assert_eq!(meta.identifier, "urn:sceneintruder:scene:s1");
    }
}
