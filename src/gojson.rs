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
//!
//! The same schemas serve two more Go behaviours: `decode_weak` is mapstructure's weakly typed
//! decoding (what Consul uses for config entries), and `render` is `json.Marshal` of a struct
//! (field order, `omitempty`, zero values of absent fields).

mod weak;

pub use weak::{
    decode as decode_weak, errors_text as weak_errors, go_kind, go_type, go_v,
    parse_bool as parse_go_bool, unconvertible, Decoded,
};

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
    /// How `render` treats the field when it is absent or empty.
    pub omit: Omit,
}

/// A field's JSON tag as `render` honours it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Omit {
    /// No `omitempty`: an absent field renders as its zero value.
    Never,
    /// `omitempty` on a value: left out when zero (Go ignores it on a struct, which renders).
    Empty,
    /// `omitempty` on a pointer: left out when absent, rendered as stored (even a zero) otherwise.
    Pointer,
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
    aliased(name, &[], kind)
}

pub const fn aliased(name: &'static str, aliases: &'static [&'static str], kind: Kind) -> Field {
    Field {
        name,
        aliases,
        kind,
        omit: Omit::Never,
    }
}

/// A field tagged `json:",omitempty"` (`Omit::Empty`).
pub const fn omitempty(name: &'static str, aliases: &'static [&'static str], kind: Kind) -> Field {
    Field {
        omit: Omit::Empty,
        ..aliased(name, aliases, kind)
    }
}

/// A pointer field tagged `json:",omitempty"` (`Omit::Pointer`).
pub const fn pointer(name: &'static str, aliases: &'static [&'static str], kind: Kind) -> Field {
    Field {
        omit: Omit::Pointer,
        ..aliased(name, aliases, kind)
    }
}

pub const STRING: Kind = Kind::Str("string");
pub const INT: Kind = Kind::Int("int", i64::MIN as i128, i64::MAX as i128);
/// An `int` that must fit a port (the store keeps ports as `u16`).
pub const PORT: Kind = Kind::Int("int", 0, u16::MAX as i128);
pub const UINT32: Kind = Kind::Int("uint32", 0, u32::MAX as i128);
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
    decode_value(parse(body)?, root)
}

/// The first JSON value of `body`, as Go's `json.Decoder.Decode` reads it (an empty body is
/// `EOF`, a cut-off one `unexpected EOF`).
pub fn parse(body: &[u8]) -> Result<Value, String> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        None => Err("EOF".into()),
        Some(Err(e)) if e.is_eof() => Err("unexpected EOF".into()),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(v)) => Ok(v),
    }
}

/// Whether `json:",omitempty"` leaves `v` out: false, 0, "", null and empty lists and maps.
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Several errors as `go-multierror` prints them.
pub fn multierror(errors: &[String]) -> String {
    let head = if errors.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let items: String = errors.iter().map(|e| format!("\n\t* {e}")).collect();
    format!("{head}{items}\n\n")
}

/// Every field of `schema`, its embedded base's included.
fn fields(schema: &Schema) -> impl Iterator<Item = &Field> {
    schema
        .fields
        .iter()
        .chain(schema.base.into_iter().flat_map(|b| b.fields.iter()))
}

/// `map` (canonical keys, as `decode_weak` leaves them) rendered as Go's `json.Marshal` renders
/// the struct: the schema's fields in order, absent ones as their zero value unless tagged
/// `omitempty`, nested structs likewise; keys the schema doesn't name are left out.
pub fn render(map: &Map<String, Value>, schema: &Schema) -> Map<String, Value> {
    let mut out = Map::new();
    for f in fields(schema) {
        let value = map.get(f.name).filter(|v| !v.is_null());
        let is_struct = matches!(f.kind, Kind::Struct(_));
        let skip = match (f.omit, value) {
            (Omit::Never, _) => false,
            (Omit::Pointer, v) => v.is_none(),
            (Omit::Empty, _) if is_struct => false,
            (Omit::Empty, v) => v.is_none_or(is_zero),
        };
        if !skip {
            out.insert(f.name.to_string(), render_value(value, f.kind));
        }
    }
    out
}

fn render_value(value: Option<&Value>, kind: Kind) -> Value {
    let empty = Map::new();
    match (kind, value) {
        (Kind::Struct(s), v) => {
            Value::Object(render(v.and_then(Value::as_object).unwrap_or(&empty), s))
        }
        (Kind::List(s, _), Some(Value::Array(items))) => Value::Array(
            items
                .iter()
                .map(|i| render_value(Some(i), Kind::Struct(s)))
                .collect(),
        ),
        (Kind::Map(s, _), Some(Value::Object(entries))) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), render_value(Some(v), Kind::Struct(s))))
                .collect(),
        ),
        (_, Some(v)) => v.clone(),
        (Kind::Str(_), None) => Value::from(""),
        (Kind::Bool, None) => Value::Bool(false),
        (Kind::Int(..) | Kind::Duration, None) => Value::from(0),
        (_, None) => Value::Null,
    }
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

/// How a key bound to its field, best first: when two keys name one field, the better
/// binding wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Binding {
    Exact,
    Folded,
    Alias,
}

/// The field `key` binds to: an exact name, then a case-insensitive one, then an alias.
fn bind<'a>(schema: &'a Schema, key: &str) -> Option<(&'a Field, Binding)> {
    let first = |how, matches: fn(&Field, &str) -> bool| {
        fields(schema).find(|f| matches(f, key)).map(|f| (f, how))
    };
    first(Binding::Exact, |f, k| f.name == k)
        .or_else(|| first(Binding::Folded, |f, k| f.name.eq_ignore_ascii_case(k)))
        .or_else(|| {
            first(Binding::Alias, |f, k| {
                f.aliases.iter().any(|a| a.eq_ignore_ascii_case(k))
            })
        })
}

/// The field `key` binds to as `bind` finds it, else (config files spell keys in snake_case)
/// the name with underscores ignored. The second value says whether it bound through an alias.
fn find<'a>(schema: &'a Schema, key: &str) -> Option<(&'a Field, bool)> {
    bind(schema, key)
        .map(|(f, how)| (f, how == Binding::Alias))
        .or_else(|| {
            fields(schema)
                .find(|f| key.contains('_') && same_ignoring_underscores(f.name, key))
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
    fn render_follows_go_json_tags() {
        static S: Schema = Schema {
            name: "S",
            go_type: "pkg.S",
            fields: &[
                field("Always", STRING),
                omitempty("Empty", &[], STRING),
                pointer("Ptr", &[], INT),
                omitempty("Nested", &[], Kind::Struct(&INNER)),
                field("List", Kind::StrList),
            ],
            base: None,
            strict: true,
        };
        let map = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            Value::Object(render(&map(json!({"Unknown": 1})), &S)),
            json!({"Always": "", "Nested": {"Port": 0, "LongName": ""}, "List": null})
        );
        let full = render(
            &map(json!({"Empty": "x", "Ptr": 0, "Nested": {"Port": 2}})),
            &S,
        );
        assert_eq!(
            full.keys().collect::<Vec<_>>(),
            ["Always", "Empty", "Ptr", "Nested", "List"]
        );
        assert_eq!(full["Ptr"], 0);
    }

    #[test]
    fn multierror_renders_as_go() {
        assert_eq!(multierror(&["a".into()]), "1 error occurred:\n\t* a\n\n");
        assert_eq!(
            multierror(&["a".into(), "b".into()]),
            "2 errors occurred:\n\t* a\n\t* b\n\n"
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
