//! Getting JSON out of model text: code fences, chatter before and after, full-width
//! punctuation and curly quotes outside strings, trailing commas, unbalanced tails.

use serde::de::DeserializeOwned;

/// The JSON document inside `raw`, cleaned as far as it can be without guessing content.
pub fn extract(raw: &str) -> String {
    let text = raw
        .replace("```json", "")
        .replace("```JSON", "")
        .replace("```", "")
        .replace('\u{a0}', " ")
        .replace(['\u{2028}', '\u{2029}'], "\n");
    let text: String = text
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
            )
        })
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .collect();
    let start = text.find(['{', '[', '｛', '【', '［']);
    let Some(start) = start else {
        return text.trim().to_string();
    };
    let normalised = normalise(&text[start..]);
    let balanced = balanced_prefix(&normalised);
    remove_trailing_commas(balanced.trim())
}

/// Parse `raw` as `T` after [`extract`]; the error names what was wrong and shows the start
/// of the cleaned text.
pub fn parse<T: DeserializeOwned>(raw: &str) -> Result<T, ParseError> {
    let cleaned = extract(raw);
    serde_json::from_str(&cleaned).map_err(|e| ParseError {
        reason: e.to_string(),
        snippet: cleaned.chars().take(200).collect(),
    })
}

/// Model output that is not the JSON asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the model's answer is not valid JSON ({reason}); it began: {snippet}")]
pub struct ParseError {
    pub reason: String,
    pub snippet: String,
}

/// Map full-width punctuation and typographic quotes to JSON syntax outside strings; drop
/// other non-ASCII text outside strings (chatter between values).
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(close) = closing {
            if escaped {
                escaped = false;
                out.push(c);
            } else if c == '\\' {
                escaped = true;
                out.push(c);
            } else if c == close || c == '"' {
                closing = None;
                out.push('"');
            } else {
                out.push(c);
            }
            continue;
        }
        let quote_close = match c {
            '"' => Some('"'),
            '“' | '”' | '„' | '‟' => Some('”'),
            '「' | '」' => Some('」'),
            '『' => Some('』'),
            '﹁' | '﹂' => Some('﹂'),
            _ => None,
        };
        if let Some(close) = quote_close {
            closing = Some(close);
            out.push('"');
            continue;
        }
        match c {
            '：' | '﹕' => out.push(':'),
            '，' | '﹐' => out.push(','),
            '；' | '﹔' => out.push(';'),
            '【' | '［' => out.push('['),
            '】' | '］' => out.push(']'),
            '｛' => out.push('{'),
            '｝' => out.push('}'),
            '（' => out.push('('),
            '）' => out.push(')'),
            c if c.is_ascii() || c.is_whitespace() => out.push(c),
            _ => {}
        }
    }
    out
}

/// The first balanced `{...}` or `[...]`; else up to the last closer; else everything.
fn balanced_prefix(text: &str) -> &str {
    let (open, close) = if text.starts_with('[') {
        (b'[', b']')
    } else {
        (b'{', b'}')
    };
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            _ if b == open => depth += 1,
            _ if b == close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    match text.rfind(close as char) {
        Some(i) => &text[..=i],
        None => text,
    }
}

/// `[1, 2,]` and `{"a": 1,}` are common model slips; drop commas that precede a closer.
fn remove_trailing_commas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn fences_and_trailing_notes() {
        assert_eq!(
            extract("```json\n{\"a\": 1}\n``` trailing note"),
            "{\"a\": 1}"
        );
        assert_eq!(
            extract("Here you go: [{\"x\":1},{\"x\":2}] and more [3]"),
            "[{\"x\":1},{\"x\":2}]"
        );
    }

    #[test]
    fn full_width_punctuation_and_curly_quotes() {
        let v: Value = parse("结果如下：{“name”：“林默”，“role”：“侦探”}").unwrap();
        assert_eq!(v, json!({"name": "林默", "role": "侦探"}));
    }

    #[test]
    fn trailing_commas_outside_strings_only() {
        let v: Value = parse("```json\n{\"a\": [1, 2,], \"b\": \"x,}\",}\n```").unwrap();
        assert_eq!(v, json!({"a": [1, 2], "b": "x,}"}));
    }

    #[test]
    fn escaped_quotes_stay_inside_strings() {
        let v: Value = parse(r#"{"say": "he said \"hi\" {not a brace}"}"#).unwrap();
        assert_eq!(v["say"], "he said \"hi\" {not a brace}");
    }

    #[test]
    fn unbalanced_text_is_cut_at_the_last_closer() {
        assert_eq!(extract("{\"a\": {\"b\": 1}"), "{\"a\": {\"b\": 1}");
        assert_eq!(extract("no json here"), "no json here");
    }

    #[test]
    fn hopeless_text_is_a_clear_error() {
        let err = parse::<Value>("I cannot help with that.").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
        assert!(err.snippet.starts_with("I cannot"), "{err:?}");
    }
}
