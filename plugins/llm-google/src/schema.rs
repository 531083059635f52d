//! JSON Schema -> Gemini's `responseSchema` (a subset of the OpenAPI 3.0 schema object).
//!
//! Gemini rejects fields it does not know (`$schema`, `additionalProperties`, ...), wants
//! upper-case type names, marks optional values with `nullable` instead of a `"null"` type,
//! accepts `enum` only for strings, and refuses an `OBJECT` without properties. The
//! translation:
//!
//! * `type`: upper-cased; `["T", "null"]` -> `T` + `nullable: true`; missing types are
//!   inferred from `properties` (OBJECT), `items` (ARRAY) or string `enum` / `const` (STRING);
//! * local `$ref`s (`#/$defs/..`, `#/definitions/..`) are inlined; `allOf` is merged;
//!   `oneOf` becomes `anyOf`; a `{"type":"null"}` branch of `anyOf` becomes `nullable`;
//! * kept: `description`, `title`, `nullable`, `enum` (strings), `properties`, `required`
//!   (only names that are properties), `items`, `anyOf`, `minItems`, `maxItems`, `minLength`,
//!   `maxLength`, `pattern`, `minimum`, `maximum`, `minProperties`, `maxProperties`, `default`,
//!   `example`, `propertyOrdering`, and the formats Gemini knows (`date-time`, `enum`, `float`,
//!   `double`, `int32`, `int64`);
//! * dropped (constraints Gemini cannot enforce): every other keyword.
//!
//! What cannot be expressed (recursive references, objects without properties, several
//! non-null types, non-string enums or constants, tuple `items`, boolean schemas) is an
//! `Err` naming the problem; the caller then asks for JSON with the schema as an instruction.

use serde_json::{Map, Value, json};

/// Deepest nesting translated.
const MAX_DEPTH: usize = 48;

/// Keywords copied unchanged (with a JSON type check).
const NUMBER_KEYWORDS: [&str; 8] = [
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minProperties",
    "maxProperties",
];

/// Formats Gemini accepts.
const FORMATS: [&str; 6] = ["date-time", "enum", "float", "double", "int32", "int64"];

/// Translates `schema` (a JSON object) into a Gemini `responseSchema`.
pub fn to_gemini(schema: &Value) -> Result<Value, String> {
    let mut refs = Vec::new();
    convert(schema, schema, 0, &mut refs)
}

fn convert(
    node: &Value,
    root: &Value,
    depth: usize,
    refs: &mut Vec<String>,
) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the schema is nested deeper than {MAX_DEPTH} levels"
        ));
    }
    let Some(obj) = node.as_object() else {
        return Err(format!("{node} is not a schema object"));
    };

    if let Some(reference) = obj.get("$ref") {
        let reference = reference
            .as_str()
            .ok_or_else(|| "$ref is not a string".to_string())?;
        if refs.iter().any(|r| r == reference) {
            return Err(format!("{reference} refers to itself"));
        }
        let target = resolve(root, reference)?;
        refs.push(reference.to_string());
        let converted = convert(target, root, depth + 1, refs);
        refs.pop();
        let mut converted = converted?;
        // Sibling annotations of a `$ref` describe this use of it.
        if let Some(out) = converted.as_object_mut() {
            for key in ["description", "title"] {
                if let Some(v) = obj.get(key).filter(|v| v.is_string()) {
                    out.insert(key.into(), v.clone());
                }
            }
            if obj.get("nullable") == Some(&Value::Bool(true)) {
                out.insert("nullable".into(), json!(true));
            }
        }
        return Ok(converted);
    }

    let mut out = Map::new();
    let mut nullable = obj.get("nullable") == Some(&Value::Bool(true));

    // type
    let mut ty: Option<String> = None;
    match obj.get("type") {
        None => {}
        Some(Value::String(t)) => ty = Some(t.clone()),
        Some(Value::Array(ts)) => {
            let mut non_null = Vec::new();
            for t in ts {
                match t.as_str() {
                    Some("null") => nullable = true,
                    Some(t) => non_null.push(t.to_string()),
                    None => return Err(format!("type {t} is not a string")),
                }
            }
            match non_null.as_slice() {
                [] => {}
                [one] => ty = Some(one.clone()),
                _ => return Err(format!("several types {non_null:?} in one schema")),
            }
        }
        Some(other) => return Err(format!("type {other} is not a string")),
    }
    if ty.as_deref() == Some("null") {
        return Err("a schema that only allows null".into());
    }

    // const / enum (strings only)
    if let Some(c) = obj.get("const") {
        let s = c
            .as_str()
            .ok_or_else(|| format!("const {c} is not a string"))?;
        out.insert("enum".into(), json!([s]));
    } else if let Some(e) = obj.get("enum") {
        let values = e
            .as_array()
            .ok_or_else(|| "enum is not an array".to_string())?;
        let mut strings = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::String(s) => strings.push(Value::String(s.clone())),
                Value::Null => nullable = true,
                other => return Err(format!("enum value {other} is not a string")),
            }
        }
        out.insert("enum".into(), Value::Array(strings));
    }
    if out.contains_key("enum") {
        match ty.as_deref() {
            None | Some("string") => ty = Some("string".into()),
            Some(t) => return Err(format!("an enum of type {t}")),
        }
    }

    // properties / required
    if let Some(props) = obj.get("properties") {
        let props = props
            .as_object()
            .ok_or_else(|| "properties is not an object".to_string())?;
        let mut converted = Map::new();
        for (name, schema) in props {
            converted.insert(name.clone(), convert(schema, root, depth + 1, refs)?);
        }
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            let required: Vec<Value> = required
                .iter()
                .filter(|r| r.as_str().is_some_and(|r| converted.contains_key(r)))
                .cloned()
                .collect();
            if !required.is_empty() {
                out.insert("required".into(), Value::Array(required));
            }
        }
        if !converted.is_empty() {
            out.insert("properties".into(), Value::Object(converted));
        }
        ty.get_or_insert_with(|| "object".into());
    }

    // items
    if let Some(items) = obj.get("items") {
        if items.is_array() {
            return Err("tuple items (an array of schemas)".into());
        }
        out.insert("items".into(), convert(items, root, depth + 1, refs)?);
        ty.get_or_insert_with(|| "array".into());
    }

    // anyOf / oneOf
    let alternatives = obj.get("anyOf").or_else(|| obj.get("oneOf"));
    if let Some(alts) = alternatives {
        let alts = alts
            .as_array()
            .ok_or_else(|| "anyOf is not an array".to_string())?;
        let mut converted = Vec::with_capacity(alts.len());
        for alt in alts {
            if alt.get("type").and_then(Value::as_str) == Some("null")
                && alt.as_object().is_some_and(|o| o.len() == 1)
            {
                nullable = true;
                continue;
            }
            converted.push(convert(alt, root, depth + 1, refs)?);
        }
        match converted.len() {
            0 => return Err("anyOf allows nothing but null".into()),
            // A single real alternative is that schema.
            1 if ty.is_none() && out.is_empty() => {
                if let Some(Value::Object(only)) = converted.pop() {
                    out = only;
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(converted));
            }
        }
    }

    // allOf: merged into this schema.
    if let Some(parts) = obj.get("allOf") {
        let parts = parts
            .as_array()
            .ok_or_else(|| "allOf is not an array".to_string())?;
        for part in parts {
            let converted = convert(part, root, depth + 1, refs)?;
            if let Value::Object(part) = converted {
                merge(&mut out, part, &mut ty);
            }
        }
    }

    // Annotations and simple constraints.
    for key in ["description", "title", "pattern"] {
        if let Some(v) = obj.get(key).filter(|v| v.is_string()) {
            out.insert(key.into(), v.clone());
        }
    }
    for key in NUMBER_KEYWORDS {
        if let Some(v) = obj.get(key).filter(|v| v.is_number()) {
            out.insert(key.into(), v.clone());
        }
    }
    for key in ["default", "example"] {
        if let Some(v) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(order) = obj
        .get("propertyOrdering")
        .filter(|o| o.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
    {
        out.insert("propertyOrdering".into(), order.clone());
    }
    if let Some(f) = obj
        .get("format")
        .and_then(Value::as_str)
        .filter(|f| FORMATS.contains(f))
    {
        out.insert("format".into(), json!(f));
    }

    if let Some(t) = ty {
        let upper = match t.as_str() {
            "string" | "number" | "integer" | "boolean" | "array" | "object" => {
                t.to_ascii_uppercase()
            }
            other => return Err(format!("unknown type {other:?}")),
        };
        out.insert("type".into(), json!(upper));
    } else if !out.contains_key("type") && !out.contains_key("anyOf") {
        // (A type can also come from a single `anyOf` alternative taken over above.)
        return Err(format!("a schema without a type: {node}"));
    }
    if out.get("type").and_then(Value::as_str) == Some("OBJECT")
        && out
            .get("properties")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty)
    {
        return Err("an object without properties (Gemini needs at least one)".into());
    }
    if nullable {
        out.insert("nullable".into(), json!(true));
    }
    Ok(Value::Object(out))
}

/// Merges an `allOf` part into `out`: properties and required names are combined; other
/// keywords already present win; the part's type is taken when none is set yet.
fn merge(out: &mut Map<String, Value>, part: Map<String, Value>, ty: &mut Option<String>) {
    for (key, value) in part {
        match key.as_str() {
            "type" => {
                if ty.is_none()
                    && let Some(t) = value.as_str()
                {
                    *ty = Some(t.to_ascii_lowercase());
                }
            }
            "properties" => {
                if let (Some(Value::Object(have)), Value::Object(add)) =
                    (out.get_mut("properties"), &value)
                {
                    for (k, v) in add {
                        have.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                } else {
                    out.entry(key).or_insert(value);
                }
            }
            "required" => {
                if let (Some(Value::Array(have)), Value::Array(add)) =
                    (out.get_mut("required"), &value)
                {
                    for r in add {
                        if !have.contains(r) {
                            have.push(r.clone());
                        }
                    }
                } else {
                    out.entry(key).or_insert(value);
                }
            }
            _ => {
                out.entry(key).or_insert(value);
            }
        }
    }
}

/// The target of a local reference: `#/$defs/Name`, `#/definitions/Name` or any other JSON
/// pointer into the root (`#` alone is the root).
fn resolve<'a>(root: &'a Value, reference: &str) -> Result<&'a Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("{reference} is not a local reference"))?;
    root.pointer(pointer)
        .ok_or_else(|| format!("{reference} points nowhere"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_schema() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Scene",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "title": {"type": "string", "description": "Short title", "maxLength": 80},
                "mood": {"type": "string", "enum": ["calm", "tense"]},
                "characters": {
                    "type": "array", "minItems": 1,
                    "items": {"$ref": "#/$defs/character"}
                },
                "year": {"type": ["integer", "null"], "minimum": 0, "format": "int32"},
                "when": {"type": "string", "format": "date-time"},
                "email": {"type": "string", "format": "email"},
                "kind": {"const": "scene"}
            },
            "required": ["title", "characters", "ghost"],
            "$defs": {
                "character": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
                    },
                    "required": ["name"]
                }
            }
        });
        assert_eq!(
            to_gemini(&schema).unwrap(),
            json!({
                "title": "Scene",
                "type": "OBJECT",
                "properties": {
                    "title": {"type": "STRING", "description": "Short title", "maxLength": 80},
                    "mood": {"type": "STRING", "enum": ["calm", "tense"]},
                    "characters": {
                        "type": "ARRAY", "minItems": 1,
                        "items": {
                            "type": "OBJECT",
                            "properties": {
                                "name": {"type": "STRING"},
                                "age": {"type": "INTEGER", "nullable": true}
                            },
                            "required": ["name"]
                        }
                    },
                    "year": {"type": "INTEGER", "nullable": true, "minimum": 0, "format": "int32"},
                    "when": {"type": "STRING", "format": "date-time"},
                    "email": {"type": "STRING"},
                    "kind": {"type": "STRING", "enum": ["scene"]}
                },
                "required": ["title", "characters"]
            })
        );
    }

    #[test]
    fn inference_alternatives_and_all_of() {
        assert_eq!(
            to_gemini(&json!({"properties": {"a": {"items": {"type": "number"}}}})).unwrap(),
            json!({"type": "OBJECT", "properties": {"a": {"type": "ARRAY", "items": {"type": "NUMBER"}}}})
        );
        assert_eq!(
            to_gemini(&json!({"type": "object", "properties": {
                "v": {"oneOf": [{"type": "string"}, {"type": "boolean"}], "description": "either"}
            }}))
            .unwrap(),
            json!({"type": "OBJECT", "properties": {
                "v": {"anyOf": [{"type": "STRING"}, {"type": "BOOLEAN"}], "description": "either"}
            }})
        );
        assert_eq!(
            to_gemini(&json!({"allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]}
            ]}))
            .unwrap(),
            json!({"type": "OBJECT",
                   "properties": {"a": {"type": "STRING"}, "b": {"type": "INTEGER"}},
                   "required": ["a", "b"]})
        );
        assert_eq!(
            to_gemini(&json!({"type": "object", "properties": {
                "n": {"$ref": "#/definitions/n", "description": "the n"}
            }, "definitions": {"n": {"type": "string", "enum": ["x", null]}}}))
            .unwrap(),
            json!({"type": "OBJECT", "properties": {
                "n": {"type": "STRING", "enum": ["x"], "nullable": true, "description": "the n"}
            }})
        );
    }

    #[test]
    fn what_cannot_be_expressed() {
        for bad in [
            json!({"type": "object"}),
            json!({"type": "object", "properties": {}}),
            json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}}),
            json!({"type": "object", "properties": {"next": {"$ref": "#"}}}),
            json!({"$defs": {"n": {"type": "object", "properties": {"c": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}),
            json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}),
            json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}),
            json!({"type": ["string", "integer"]}),
            json!({"type": "integer", "enum": [1, 2]}),
            json!({"const": 3}),
            json!({"type": "array", "items": [{"type": "string"}]}),
            json!({"type": "object", "properties": {"x": true}}),
            json!({"type": "null"}),
            json!({"description": "anything"}),
            json!({"type": "decimal"}),
        ] {
            assert!(to_gemini(&bad).is_err(), "{bad}");
        }
        let mut deep = json!({"type": "string"});
        for _ in 0..60 {
            deep = json!({"type": "array", "items": deep});
        }
        assert!(to_gemini(&deep).unwrap_err().contains("deeper"));
    }
}
