//! Request bodies decoded as Consul's Go handlers decode them (`lib.DecodeJSON`: Go's
//! `encoding/json` with `DisallowUnknownFields`):
//!
//! * keys match field names case-insensitively (an exact match first), so `node` binds to
//!   `Node`; snake_case aliases exist only where a schema lists them;
//! * an unknown key is refused (`json: unknown field "X"`), except in structs Consul decodes
//!   leniently (their own `UnmarshalJSON`), where it is dropped;
//! * a mistyped value is refused with Go's text
//!   (`json: cannot unmarshal number into Go struct field RegisterRequest.Node of type string`);
//!   the first error in document order wins, as in Go;
//! * `null` leaves a field at its zero value;
//! * only the first JSON value of the body is read, and an empty body is `EOF`.
//!
//! `decode` checks a body against a `Schema` (a Go struct's fields) and returns it with every
//! key renamed to its field's canonical name and every `null` dropped, ready for a serde struct
//! whose fields all default. Callers prefix errors with `Request decode failed: `.

use crate::filter::go_quote;
use serde_json::{Map, Value};

/// What a field holds.
#[derive(Clone, Copy)]
pub enum Kind {
    /// A string; the Go type's name, for messages (`string`, `types.NodeID`).
    Str(&'static str),
    Bool,
    /// An integer in `min..=max`; the Go type's name, for messages.
    Int(&'static str, i128, i128),
    /// A duration: a Go duration string or a number of nanoseconds, normalized to a number of
    /// nanoseconds (a negative one counts as zero); any other type is ignored (Consul's check
    /// definitions decode it so).
    Duration,
    /// `[]string`.
    StrList,
    /// `map[string]string`.
    StrMap,
    /// A struct, or a pointer to one.
    Struct(&'static Schema),
    /// A slice of structs; the slice's Go type, for messages.
    List(&'static Schema, &'static str),
    /// A map of structs; the map's Go type, for messages.
    Map(&'static Schema, &'static str),
    /// Anything (free-form `interface{}` members), kept as it is.
    Any,
}

pub struct Field {
    pub name: &'static str,
    /// Other keys that bind to this field when the canonical name is absent (snake_case).
    pub aliases: &'static [&'static str],
    pub kind: Kind,
}

pub struct Schema {
    /// The Go struct's name (`NodeService`), as Go names it in type errors.
    pub name: &'static str,
    /// The Go type (`structs.NodeService`), for a value of the wrong JSON type.
    pub go_type: &'static str,
    pub fields: &'static [Field],
    /// A schema whose fields this one also has (Go's embedded struct).
    pub base: Option<&'static Schema>,
    /// Whether unknown keys are refused (otherwise they are dropped).
    pub strict: bool,
}

/// Shorthand for schema tables.
pub const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        aliases: &[],
        kind,
    }
}

pub const fn aliased(name: &'static str, aliases: &'static [&'static str], kind: Kind) -> Field {
    Field {
        name,
        aliases,
        kind,
    }
}

pub const STRING: Kind = Kind::Str("string");
pub const INT: Kind = Kind::Int("int", i64::MIN as i128, i64::MAX as i128);
/// An `int` that must fit a port (the store keeps ports as `u16`).
pub const PORT: Kind = Kind::Int("int", 0, u16::MAX as i128);
pub const UINT64: Kind = Kind::Int("uint64", 0, u64::MAX as i128);

/// Checks an already parsed document against `root` (config files, which arrive as HCL or JSON).
pub fn decode_value(value: Value, root: &Schema) -> Result<Map<String, Value>, String> {
    match value {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => walk_struct(map, root, &mut Vec::new()),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type {}",
            json_kind(&other),
            root.go_type
        )),
    }
}

/// Decodes `body` against `root`; the error is Go's text (without Consul's prefix).
pub fn decode(body: &[u8], root: &Schema) -> Result<Map<String, Value>, String> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let value = match values.next() {
        None => return Err("EOF".into()),
        Some(Err(e)) if e.is_eof() => return Err("unexpected EOF".into()),
        Some(Err(e)) => return Err(e.to_string()),
        Some(Ok(v)) => v,
    };
    decode_value(value, root)
}

/// Go's name for the kind of a JSON value, as its decoder's errors say it.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The field `key` binds to: an exact name, then a case-insensitive one, then an alias, then
/// (config files spell keys in snake_case) the name with underscores ignored. The second value
/// says whether it bound through an alias.
fn find<'a>(schema: &'a Schema, key: &str) -> Option<(&'a Field, bool)> {
    let fields = || {
        schema
            .fields
            .iter()
            .chain(schema.base.into_iter().flat_map(|b| b.fields.iter()))
    };
    fields()
        .find(|f| f.name == key)
        .or_else(|| fields().find(|f| f.name.eq_ignore_ascii_case(key)))
        .map(|f| (f, false))
        .or_else(|| {
            fields()
                .find(|f| f.aliases.iter().any(|a| a.eq_ignore_ascii_case(key)))
                .or_else(|| {
                    fields().find(|f| key.contains('_') && same_ignoring_underscores(f.name, key))
                })
                .map(|f| (f, true))
        })
}

fn same_ignoring_underscores(name: &str, key: &str) -> bool {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect::<String>()
    };
    squash(name) == squash(key)
}

fn walk_struct(
    map: Map<String, Value>,
    schema: &Schema,
    path: &mut Vec<&'static str>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut from_alias: Vec<&str> = Vec::new();
    for (key, value) in map {
        let Some((field, alias)) = find(schema, &key) else {
            if schema.strict {
                return Err(format!("json: unknown field {}", go_quote(&key)));
            }
            continue;
        };
        path.push(field.name);
        let checked = check(value, field.kind, schema.name, path)?;
        path.pop();
        // The canonical key wins over an alias, whichever comes first.
        if alias && out.contains_key(field.name) && !from_alias.contains(&field.name) {
            continue;
        }
        match checked {
            Some(v) => {
                out.insert(field.name.to_string(), v);
            }
            None => {
                out.remove(field.name);
            }
        }
        if alias {
            from_alias.push(field.name);
        } else {
            from_alias.retain(|n| *n != field.name);
        }
    }
    Ok(out)
}

fn check(
    value: Value,
    kind: Kind,
    struct_name: &str,
    path: &mut Vec<&'static str>,
) -> Result<Option<Value>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let mismatch = |what: &str, go_type: &str, path: &[&str]| {
        format!(
            "json: cannot unmarshal {what} into Go struct field {struct_name}.{} of type {go_type}",
            path.join(".")
        )
    };
    match kind {
        Kind::Any => Ok(Some(value)),
        Kind::Str(go_type) => match value {
            Value::String(_) => Ok(Some(value)),
            other => Err(mismatch(json_kind(&other), go_type, path)),
        },
        Kind::Bool => match value {
            Value::Bool(_) => Ok(Some(value)),
            other => Err(mismatch(json_kind(&other), "bool", path)),
        },
        Kind::Int(go_type, min, max) => match &value {
            Value::Number(n) => {
                let as_int = n
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from));
                match as_int {
                    Some(i) if (min..=max).contains(&i) => Ok(Some(value)),
                    _ => Err(mismatch(&format!("number {n}"), go_type, path)),
                }
            }
            other => Err(mismatch(json_kind(other), go_type, path)),
        },
        Kind::Duration => match &value {
            Value::String(s) => {
                let d = crate::duration::parse(s)?;
                Ok(Some(Value::from(d.as_nanos() as u64)))
            }
            Value::Number(n) => Ok(Some(Value::from(n.as_f64().unwrap_or(0.0).max(0.0) as u64))),
            _ => Ok(None),
        },
        Kind::StrList => match value {
            Value::Array(items) => {
                for item in &items {
                    if !(item.is_string() || item.is_null()) {
                        return Err(mismatch(json_kind(item), "string", path));
                    }
                }
                let items = items
                    .into_iter()
                    .map(|v| if v.is_null() { Value::from("") } else { v })
                    .collect();
                Ok(Some(Value::Array(items)))
            }
            other => Err(mismatch(json_kind(&other), "[]string", path)),
        },
        Kind::StrMap => match value {
            Value::Object(entries) => {
                let mut out = Map::new();
                for (k, v) in entries {
                    match v {
                        Value::String(_) => {
                            out.insert(k, v);
                        }
                        Value::Null => {
                            out.insert(k, Value::from(""));
                        }
                        other => return Err(mismatch(json_kind(&other), "string", path)),
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Err(mismatch(json_kind(&other), "map[string]string", path)),
        },
        Kind::Struct(schema) => match value {
            Value::Object(map) => Ok(Some(Value::Object(walk_struct(map, schema, path)?))),
            other => Err(mismatch(json_kind(&other), schema.go_type, path)),
        },
        Kind::List(schema, go_type) => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Object(map) => {
                            out.push(Value::Object(walk_struct(map, schema, path)?))
                        }
                        Value::Null => {}
                        other => return Err(mismatch(json_kind(&other), schema.go_type, path)),
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Err(mismatch(json_kind(&other), go_type, path)),
        },
        Kind::Map(schema, go_type) => match value {
            Value::Object(entries) => {
                let mut out = Map::new();
                for (k, v) in entries {
                    match v {
                        Value::Object(map) => {
                            out.insert(k, Value::Object(walk_struct(map, schema, path)?));
                        }
                        Value::Null => {
                            out.insert(k, Value::Object(Map::new()));
                        }
                        other => return Err(mismatch(json_kind(&other), schema.go_type, path)),
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Err(mismatch(json_kind(&other), go_type, path)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static INNER: Schema = Schema {
        name: "Inner",
        go_type: "pkg.Inner",
        fields: &[
            field("Port", PORT),
            aliased("LongName", &["long_name"], STRING),
        ],
        base: None,
        strict: true,
    };
    static OUTER: Schema = Schema {
        name: "Outer",
        go_type: "pkg.Outer",
        fields: &[
            field("ID", Kind::Str("types.NodeID")),
            field("Node", STRING),
            field("Meta", Kind::StrMap),
            field("Inner", Kind::Struct(&INNER)),
            field("List", Kind::List(&INNER, "pkg.Inners")),
            field("Flag", Kind::Bool),
        ],
        base: None,
        strict: true,
    };

    fn run(body: &str) -> Result<Value, String> {
        decode(body.as_bytes(), &OUTER).map(Value::Object)
    }

    #[test]
    fn keys_bind_case_insensitively_and_nulls_drop() {
        let got = run(r#"{"id":"x","NODE":"n","inner":{"port":80,"long_name":"l"},"Meta":null}"#);
        assert_eq!(
            got.unwrap(),
            json!({"ID": "x", "Node": "n", "Inner": {"Port": 80, "LongName": "l"}})
        );
        // The canonical key wins over its alias.
        let got = run(r#"{"Inner":{"LongName":"a","long_name":"b"}}"#).unwrap();
        assert_eq!(got["Inner"]["LongName"], "a");
    }

    #[test]
    fn errors_carry_gos_texts() {
        assert_eq!(run("").unwrap_err(), "EOF");
        assert_eq!(run("  ").unwrap_err(), "EOF");
        assert_eq!(run(r#"{"Node":"#).unwrap_err(), "unexpected EOF");
        assert_eq!(run("null").unwrap(), json!({}));
        assert_eq!(
            run("[]").unwrap_err(),
            "json: cannot unmarshal array into Go value of type pkg.Outer"
        );
        assert_eq!(
            run(r#"{"Bogus":1}"#).unwrap_err(),
            r#"json: unknown field "Bogus""#
        );
        assert_eq!(
            run(r#"{"Node":1}"#).unwrap_err(),
            "json: cannot unmarshal number into Go struct field Outer.Node of type string"
        );
        assert_eq!(
            run(r#"{"ID":true}"#).unwrap_err(),
            "json: cannot unmarshal bool into Go struct field Outer.ID of type types.NodeID"
        );
        assert_eq!(
            run(r#"{"Inner":{"Port":"80"}}"#).unwrap_err(),
            "json: cannot unmarshal string into Go struct field Inner.Inner.Port of type int"
        );
        assert_eq!(
            run(r#"{"List":[{"Port":1.5}]}"#).unwrap_err(),
            "json: cannot unmarshal number 1.5 into Go struct field Inner.List.Port of type int"
        );
        assert_eq!(
            run(r#"{"Meta":{"a":1}}"#).unwrap_err(),
            "json: cannot unmarshal number into Go struct field Outer.Meta of type string"
        );
        assert_eq!(
            run(r#"{"List":{}}"#).unwrap_err(),
            "json: cannot unmarshal object into Go struct field Outer.List of type pkg.Inners"
        );
        // The first error in document order wins.
        assert_eq!(
            run(r#"{"Flag":"x","Bogus":1}"#).unwrap_err(),
            "json: cannot unmarshal string into Go struct field Outer.Flag of type bool"
        );
    }

    #[test]
    fn only_the_first_value_is_read() {
        assert_eq!(
            run(r#"{"Node":"a"} trailing"#).unwrap(),
            json!({"Node": "a"})
        );
    }
}
