//! Weakly typed decoding as Go's `mapstructure` does it with `WeaklyTypedInput` and Consul's
//! decode hooks (`HookTranslateKeys`, `HookWeakDecodeFromSlice`, string → duration): what
//! Consul's `DecodeConfigEntry` applies to config entry bodies.
//!
//! * A key binds to a field by its exact name, else case-insensitively, else by a declared alias
//!   (snake_case). When the canonical key is there too, the alias is dropped; a second key that
//!   binds to an already bound field is left unused.
//! * Scalars convert: a number or bool into a string, a numeric string or bool into an integer,
//!   `"true"`/`1` into a bool, a duration string into nanoseconds. A lone value where a list is
//!   expected becomes a one-item list; a one-item list where a struct is expected (HCL blocks)
//!   becomes that struct.
//! * Every conversion error is collected, in mapstructure's texts; keys bound to no field are
//!   returned as paths (`Listeners[0].Services[1].Namespace`) for the caller to judge, since
//!   Consul decides per key which unused keys are errors.

use super::{bind, json_kind, Binding, Kind, Schema, STRING};
use serde_json::{Map, Number, Value};

/// A decoded struct: canonical keys, converted values, and the keys nothing bound to.
#[derive(Debug)]
pub struct Decoded {
    pub map: Map<String, Value>,
    pub unused: Vec<String>,
}

/// Decodes `map` against `schema`. The error lists every conversion error, sorted as
/// mapstructure's `Error` prints them.
pub fn decode(map: Map<String, Value>, schema: &Schema) -> Result<Decoded, Vec<String>> {
    let mut walk = Walker::default();
    let out = walk.structure(map, schema, "");
    if !walk.errors.is_empty() {
        walk.errors.sort();
        return Err(walk.errors);
    }
    Ok(Decoded {
        map: out,
        unused: walk.unused,
    })
}

/// mapstructure's `Error` text for `errors`.
pub fn errors_text(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    format!(
        "{} error(s) decoding:\n\n{}",
        errors.len(),
        points.join("\n")
    )
}

#[derive(Default)]
struct Walker {
    errors: Vec<String>,
    unused: Vec<String>,
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Go's `%v` of a JSON-decoded value, for error texts.
pub fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => go_float(n),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(go_v).collect::<Vec<_>>().join(" "))
        }
        Value::Object(m) => {
            let mut pairs: Vec<String> =
                m.iter().map(|(k, v)| format!("{k}:{}", go_v(v))).collect();
            pairs.sort();
            format!("map[{}]", pairs.join(" "))
        }
    }
}

/// A JSON number as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes the `float64` that
/// `encoding/json` decoded it to.
fn go_float(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// mapstructure's refusal of a value of the wrong type for the field at `path`.
pub fn unconvertible(path: &str, target: &str, v: &Value) -> String {
    format!(
        "'{path}' expected type '{target}', got unconvertible type '{}', value: '{}'",
        go_type(v),
        go_v(v)
    )
}

/// Go's type name of a JSON-decoded value.
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::String(_) => "string",
        Value::Number(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `reflect.Kind` name of a JSON-decoded value.
pub fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
        Value::Number(_) => "float64",
        other => json_kind(other),
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then decimal, `0x` hex, `0o`/`0`
/// octal or `0b` binary digits, which `_` may separate as in Go literals (`underscoreOK`).
fn parse_int(s: &str) -> Option<i128> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    // After a base prefix (or an octal `0`), a `_` may come first.
    let (radix, digits, prefixed) = match lower.as_bytes() {
        [b'0', b'x', ..] => (16, &lower[2..], true),
        [b'0', b'b', ..] => (2, &lower[2..], true),
        [b'0', b'o', ..] => (8, &lower[2..], true),
        [b'0', _, ..] => (8, &lower[1..], true),
        _ => (10, &lower[..], false),
    };
    if !separators_ok(digits, prefixed) {
        return None;
    }
    let digits = digits.replace('_', "");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let value = i128::from_str_radix(&digits, radix).ok()?;
    Some(if negative { -value } else { value })
}

/// Whether every `_` in `digits` stands between two digits (the first may follow a prefix).
fn separators_ok(digits: &str, prefixed: bool) -> bool {
    let mut after_digit = prefixed;
    let mut after_underscore = false;
    for b in digits.bytes() {
        if b == b'_' {
            if !after_digit {
                return false;
            }
            (after_digit, after_underscore) = (false, true);
        } else {
            (after_digit, after_underscore) = (true, false);
        }
    }
    !after_underscore
}

impl Walker {
    fn structure(
        &mut self,
        map: Map<String, Value>,
        schema: &Schema,
        path: &str,
    ) -> Map<String, Value> {
        // The best binding per field, in input order among equals.
        let mut chosen: Vec<(&'static str, Binding, String, Value, Kind)> = Vec::new();
        for (key, value) in map {
            let Some((field, how)) = bind(schema, &key) else {
                self.unused.push(join(path, &key));
                continue;
            };
            match chosen.iter_mut().find(|c| c.0 == field.name) {
                None => chosen.push((field.name, how, key, value, field.kind)),
                Some(slot) if how < slot.1 => {
                    let (old_how, old_key) = (slot.1, std::mem::replace(&mut slot.2, key));
                    slot.1 = how;
                    slot.3 = value;
                    if old_how != Binding::Alias {
                        self.unused.push(join(path, &old_key));
                    }
                }
                Some(_) if how == Binding::Alias => {}
                Some(_) => self.unused.push(join(path, &key)),
            }
        }
        let mut out = Map::new();
        for (name, _, _, value, kind) in chosen {
            if let Some(v) = self.convert(value, kind, &join(path, name)) {
                out.insert(name.to_string(), v);
            }
        }
        out
    }

    fn unconvertible(&mut self, path: &str, target: &str, v: &Value) -> Option<Value> {
        self.errors.push(unconvertible(path, target, v));
        None
    }

    fn not_a_map(&mut self, path: &str, v: &Value) -> Option<Value> {
        self.errors
            .push(format!("'{path}' expected a map, got '{}'", go_kind(v)));
        None
    }

    fn convert(&mut self, value: Value, kind: Kind, path: &str) -> Option<Value> {
        if value.is_null() {
            return None;
        }
        match kind {
            Kind::Any => Some(value),
            Kind::Str(target) => match value {
                Value::String(_) => Some(value),
                Value::Bool(b) => Some(Value::from(if b { "1" } else { "0" })),
                Value::Number(n) => Some(Value::from(go_float(&n))),
                other => self.unconvertible(path, target, &other),
            },
            Kind::Bool => match value {
                Value::Bool(_) => Some(value),
                Value::Number(n) => Some(Value::Bool(n.as_f64() != Some(0.0))),
                Value::String(s) if s.is_empty() => Some(Value::Bool(false)),
                Value::String(s) => match parse_bool(&s) {
                    Some(b) => Some(Value::Bool(b)),
                    None => {
                        self.errors.push(format!(
                            "cannot parse '{path}' as bool: strconv.ParseBool: parsing {s:?}: invalid syntax"
                        ));
                        None
                    }
                },
                other => self.unconvertible(path, "bool", &other),
            },
            Kind::Int(target, min, _) => {
                let unsigned = min >= 0;
                let parsed = match &value {
                    Value::Number(n) => n
                        .as_i64()
                        .map(i128::from)
                        .or_else(|| n.as_u64().map(i128::from))
                        .or_else(|| n.as_f64().map(|f| f.trunc() as i128)),
                    Value::Bool(b) => Some(i128::from(*b)),
                    Value::String(s) if s.is_empty() => Some(0),
                    Value::String(s) => match parse_int(s) {
                        Some(i) if !(unsigned && i < 0) => Some(i),
                        _ => {
                            let (what, func) = if unsigned {
                                ("uint", "ParseUint")
                            } else {
                                ("int", "ParseInt")
                            };
                            self.errors.push(format!(
                                "cannot parse '{path}' as {what}: strconv.{func}: parsing {s:?}: invalid syntax"
                            ));
                            return None;
                        }
                    },
                    other => return self.unconvertible(path, target, other),
                };
                match parsed {
                    Some(i) if unsigned && i < 0 => {
                        self.errors
                            .push(format!("cannot parse '{path}', {i} overflows uint"));
                        None
                    }
                    Some(i) => i64::try_from(i)
                        .map(Value::from)
                        .or_else(|_| u64::try_from(i).map(Value::from))
                        .ok(),
                    None => None,
                }
            }
            Kind::Duration => match value {
                Value::String(s) => match crate::duration::parse(&s) {
                    Ok(d) => Some(Value::from(d.as_nanos() as u64)),
                    Err(e) => {
                        self.errors.push(format!("error decoding '{path}': {e}"));
                        None
                    }
                },
                Value::Number(n) => Some(Value::from(n.as_f64().unwrap_or(0.0).max(0.0) as u64)),
                other => self.unconvertible(path, "time.Duration", &other),
            },
            Kind::StrList => Some(self.list(value, STRING, "".into(), path)),
            Kind::StrMap => {
                let maps = match value {
                    Value::Object(m) => vec![m],
                    Value::Array(items) if items.iter().all(Value::is_object) => items
                        .into_iter()
                        .filter_map(|i| match i {
                            Value::Object(m) => Some(m),
                            _ => None,
                        })
                        .collect(),
                    other => return self.not_a_map(path, &other),
                };
                let entries = maps.into_iter().flatten();
                Some(self.map(entries, STRING, "".into(), path))
            }
            Kind::Struct(schema) => match value {
                Value::Object(m) => Some(Value::Object(self.structure(m, schema, path))),
                Value::Array(mut items) if items.len() == 1 && items[0].is_object() => {
                    self.convert(items.remove(0), kind, path)
                }
                Value::Array(items) if items.is_empty() => None,
                other => self.not_a_map(path, &other),
            },
            Kind::List(schema, _) => {
                Some(self.list(value, Kind::Struct(schema), Map::new().into(), path))
            }
            Kind::Map(schema, _) => match value {
                Value::Object(entries) => {
                    Some(self.map(entries, Kind::Struct(schema), Map::new().into(), path))
                }
                other => self.not_a_map(path, &other),
            },
        }
    }

    /// A list of `item`s: a lone value is a one-item list and an empty map (HCL's empty block)
    /// none; a `null` item is the item type's `zero`.
    fn list(&mut self, value: Value, item: Kind, zero: Value, path: &str) -> Value {
        let items = match value {
            Value::Array(items) => items,
            Value::Object(m) if m.is_empty() => Vec::new(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.into_iter().enumerate() {
            out.extend(self.element(v, item, &zero, &format!("{path}[{i}]")));
        }
        Value::Array(out)
    }

    /// A map of `item`s; a `null` value is the item type's `zero`.
    fn map(
        &mut self,
        entries: impl IntoIterator<Item = (String, Value)>,
        item: Kind,
        zero: Value,
        path: &str,
    ) -> Value {
        let mut out = Map::new();
        for (k, v) in entries {
            if let Some(v) = self.element(v, item, &zero, &format!("{path}[{k}]")) {
                out.insert(k, v);
            }
        }
        Value::Object(out)
    }

    fn element(&mut self, v: Value, item: Kind, zero: &Value, at: &str) -> Option<Value> {
        if v.is_null() {
            Some(zero.clone())
        } else {
            self.convert(v, item, at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::{aliased, field, INT, UINT32};
    use serde_json::json;

    static INNER: Schema = Schema {
        name: "Inner",
        go_type: "pkg.Inner",
        fields: &[
            field("Port", INT),
            aliased("CertFile", &["cert_file"], STRING),
            field("Enabled", Kind::Bool),
        ],
        base: None,
        strict: true,
    };
    static OUTER: Schema = Schema {
        name: "Outer",
        go_type: "pkg.Outer",
        fields: &[
            field("Name", STRING),
            field("Hosts", Kind::StrList),
            field("TLS", Kind::Struct(&INNER)),
            field("Listeners", Kind::List(&INNER, "[]pkg.Inner")),
            field("Timeout", Kind::Duration),
            field("Max", UINT32),
        ],
        base: None,
        strict: true,
    };

    fn run(v: Value) -> Result<Decoded, Vec<String>> {
        decode(v.as_object().unwrap().clone(), &OUTER)
    }

    #[test]
    fn keys_bind_by_name_case_and_alias_and_values_convert_weakly() {
        let got = run(json!({
            "name": 7, "hosts": "a.example", "tls": [{"port": "0x10", "cert_file": "c", "enabled": "true"}],
            "Listeners": {"Port": 8080.0}, "timeout": "1m", "Max": true,
        }))
        .unwrap();
        assert!(got.unused.is_empty(), "{:?}", got.unused);
        assert_eq!(
            Value::Object(got.map),
            json!({
                "Name": "7", "Hosts": ["a.example"], "TLS": {"Port": 16, "CertFile": "c", "Enabled": true},
                "Listeners": [{"Port": 8080}], "Timeout": 60_000_000_000u64, "Max": 1,
            })
        );
    }

    #[test]
    fn unused_keys_carry_their_paths_and_the_canonical_key_wins() {
        let got = run(json!({
            "Name": "a", "name": "b", "Bogus": 1,
            "Listeners": [{"Port": 1}, {"Port": 2, "Namespace": "x", "CertFile": "k", "cert_file": "drop"}],
        }))
        .unwrap();
        assert_eq!(got.unused, ["name", "Bogus", "Listeners[1].Namespace"]);
        assert_eq!(got.map["Name"], "a");
        assert_eq!(got.map["Listeners"][1]["CertFile"], "k");
    }

    #[test]
    fn integers_parse_as_gos_parse_int_with_base_zero() {
        let cases = [
            ("42", Some(42)),
            ("-0x10", Some(-16)),
            ("+0b101", Some(5)),
            ("0o17", Some(15)),
            ("017", Some(15)),
            ("0_17", Some(15)),
            ("1_000", Some(1000)),
            ("0x_ff", Some(255)),
            ("0", Some(0)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("--5", None),
            ("+-5", None),
            ("08", None),
            ("0x", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_int(text), want, "{text}");
        }
    }

    #[test]
    fn errors_are_mapstructures_sorted() {
        let err = run(json!({"TLS": {"Port": "abc"}, "Max": -1, "Name": [1], "Hosts": {"a": 1}, "Timeout": "x"}))
            .unwrap_err();
        assert_eq!(
            err,
            [
                "'Hosts[0]' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[a:1]'",
                "'Name' expected type 'string', got unconvertible type '[]interface {}', value: '[1]'",
                "cannot parse 'Max', -1 overflows uint",
                "cannot parse 'TLS.Port' as int: strconv.ParseInt: parsing \"abc\": invalid syntax",
                "error decoding 'Timeout': time: invalid duration \"x\"",
            ]
        );
        assert_eq!(
            errors_text(&err[..1]),
            "1 error(s) decoding:\n\n* 'Hosts[0]' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[a:1]'"
        );
        let err = run(json!({"TLS": "yes"})).unwrap_err();
        assert_eq!(err, ["'TLS' expected a map, got 'string'"]);
    }
}
