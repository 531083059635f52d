//! Size limits of stored text: every text a client can have stored is bounded, so one line
//! can never make a scene or a profile unusable (issue 22 §5). Past a limit the request is
//! `400 BAD_REQUEST` naming the field, and nothing is stored.

use serde::Serialize;
use serde_json::Value;

use crate::error::ServerError;

/// A chat message, an interaction topic, a story command.
pub const MESSAGE_CHARS: usize = 4000;
/// Any other stored text field (item and profile fields, a node text given by a client).
pub const FIELD_CHARS: usize = 8000;
/// A whole stored document a client sends (an item, a profile change, preferences).
pub const DOCUMENT_BYTES: usize = 64 * 1024;

fn too_long(field: &str, max: usize, what: &str) -> ServerError {
    ServerError::bad_request("请求参数错误", format!("{field}: at most {max} {what}"))
}

/// `value` of `field` is at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ServerError> {
    // Bytes bound characters from above: most texts need no count.
    if value.len() > max && value.chars().count() > max {
        return Err(too_long(field, max, "characters"));
    }
    Ok(())
}

/// Every string in `document` is at most [`FIELD_CHARS`] characters and the whole at most
/// [`DOCUMENT_BYTES`] bytes; the first field past a limit is named (`properties.notes`).
pub fn document(document: &impl Serialize) -> Result<(), ServerError> {
    let value = serde_json::to_value(document).map_err(ServerError::internal)?;
    strings(&value, &mut String::new())?;
    let size = serde_json::to_vec(&value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > DOCUMENT_BYTES {
        return Err(too_long("body", DOCUMENT_BYTES, "bytes"));
    }
    Ok(())
}

fn strings(value: &Value, path: &mut String) -> Result<(), ServerError> {
    match value {
        Value::String(s) => text(if path.is_empty() { "body" } else { path }, s, FIELD_CHARS),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let out = strings(v, path);
            path.truncate(len);
            out
        }),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let out = strings(v, path);
            path.truncate(len);
            out
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_past_their_limit_are_named() {
        assert!(text("message", &"é".repeat(MESSAGE_CHARS), MESSAGE_CHARS).is_ok());
        let e = text("message", &"x".repeat(MESSAGE_CHARS + 1), MESSAGE_CHARS).unwrap_err();
        assert_eq!(e.details(), "message: at most 4000 characters");
        let doc =
            json!({"name": "key", "properties": {"notes": ["ok", "x".repeat(FIELD_CHARS + 1)]}});
        assert_eq!(
            document(&doc).unwrap_err().details(),
            "properties.notes[1]: at most 8000 characters"
        );
        let big =
            json!({"a": "x".repeat(7000), "b": "x".repeat(7000), "c": vec!["y".repeat(7000); 8]});
        assert_eq!(
            document(&big).unwrap_err().details(),
            "body: at most 65536 bytes"
        );
        assert!(document(&json!({"name": "key"})).is_ok());
    }
}
