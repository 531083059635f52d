//! Prompt templates: `{{name}}` placeholders filled in one pass, so text that comes from users
//! or models (a scene titled `{{history}}`, say) is inserted as it is and never read as a
//! placeholder again.

/// Fill the `{{name}}` placeholders of `template`; unknown names are left as they are.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = &after[..end];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[start..start + end + 4]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first `max` characters of `text` (all of it when shorter), cut on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn values_are_never_expanded_again() {
        assert_eq!(
            fill("a {{x}} b {{y}} {{unknown}}", &[("x", "{{y}}"), ("y", "2")]),
            "a {{y}} b 2 {{unknown}}"
        );
        assert_eq!(fill("open {{x", &[("x", "1")]), "open {{x");
        // A value full of placeholders costs its own length once, however many there are.
        let title = "{{history}}".repeat(18);
        let out = fill(
            "{{title}}: {{history}}",
            &[("title", &title), ("history", "h")],
        );
        assert_eq!(out, format!("{title}: h"));
    }
}
