//! The EPUB 3 scaffolding around the pages: `META-INF/container.xml`, the package document
//! (`OEBPS/content.opf`), the navigation document (`OEBPS/nav.xhtml`) and the XHTML wrapper
//! of every page.

use crate::book::Meta;
use crate::pages::Page;
use crate::xml;

/// Points reading systems at the package document.
pub fn container() -> String {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">\n\
<rootfiles>\n\
<rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>\n\
</rootfiles>\n\
</container>\n"
        .to_string()
}

/// The package document: metadata, every file of the book (manifest) and the reading order
/// (spine: the pages, without the navigation document, which reading systems show apart).
pub fn opf(meta: &Meta, pages: &[Page]) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\" unique-identifier=\"book-id\" xml:lang=\"{lang}\">\n\
<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n\
<dc:identifier id=\"book-id\">{id}</dc:identifier>\n\
<dc:title>{title}</dc:title>\n\
<dc:language>{lang}</dc:language>\n",
        lang = meta.language.code(),
        id = xml::text(&meta.identifier),
        title = xml::text(&meta.title),
    );
    if !meta.description.is_empty() {
        out += &format!(
            "<dc:description>{}</dc:description>\n",
            xml::text(&meta.description)
        );
    }
    out += &format!(
        "<meta property=\"dcterms:modified\">{}</meta>\n</metadata>\n<manifest>\n\
<item id=\"nav\" href=\"nav.xhtml\" media-type=\"application/xhtml+xml\" properties=\"nav\"/>\n\
<item id=\"style\" href=\"style.css\" media-type=\"text/css\"/>\n",
        meta.modified
    );
    for page in pages {
        out += &format!(
            "<item id=\"{}\" href=\"{}\" media-type=\"application/xhtml+xml\"/>\n",
            page.id, page.file
        );
    }
    out += "</manifest>\n<spine>\n";
    for page in pages {
        out += &format!("<itemref idref=\"{}\"/>\n", page.id);
    }
    out += "</spine>\n</package>\n";
    out
}

/// The navigation document: the table of contents as an ordered list of the pages.
pub fn nav(meta: &Meta, pages: &[Page]) -> String {
    let contents = meta.language.labels().contents;
    let mut body = format!(
        "<nav epub:type=\"toc\" id=\"toc\">\n<h1>{}</h1>\n<ol>\n",
        xml::text(contents)
    );
    for page in pages {
        body += &format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            page.file,
            xml::text(&page.title)
        );
    }
    body += "</ol>\n</nav>\n";
    xhtml(meta, contents, &body)
}

/// A complete XHTML 5 document around `body` (already escaped); `title` is raw text.
pub fn xhtml(meta: &Meta, title: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE html>\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\" xmlns:epub=\"http://www.idpf.org/2007/ops\" lang=\"{lang}\" xml:lang=\"{lang}\">\n\
<head>\n\
<meta charset=\"utf-8\"/>\n\
<title>{title}</title>\n\
<link rel=\"stylesheet\" type=\"text/css\" href=\"style.css\"/>\n\
</head>\n\
<body>\n{body}</body>\n\
</html>\n",
        lang = meta.language.code(),
        title = xml::text(title),
    )
}
