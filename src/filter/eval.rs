//! Evaluation of a parsed filter against a JSON document.
//!
//! go-bexpr evaluates against Go values whose static types it knows; here the JSON value's
//! own type stands in for the Go field type:
//!
//! | JSON at the end of the selector | operators                                  | value coerced as        |
//! |---------------------------------|--------------------------------------------|-------------------------|
//! | string                          | all                                        | the raw text            |
//! | integer number                  | `==`, `!=`                                 | Go `ParseInt(s, 0, 64)` |
//! | fractional number               | `==`, `!=`                                 | Go `ParseFloat`         |
//! | bool                            | `==`, `!=`                                 | Go `ParseBool`          |
//! | array                           | `in`/`contains`, `is empty` (and negations) | each element's type    |
//! | object (a map)                  | `in`/`contains` on keys, `is empty` (and negations) | a key          |
//! | `null` / missing                | all: positive operators false, negations true | —                    |
//!
//! An operator the type doesn't support, or a value that can't be coerced to the field's type,
//! is an error (go-bexpr rejects both when it builds the evaluator).
//!
//! A selector segment applied to an array applies the rest of the selector to every element
//! and matches if any element does (`Checks.Status == passing` is true when at least one check
//! is passing; over an empty array it is false whatever the operator). A segment naming a key
//! that is absent — or applied to a scalar or `null` — makes the value absent.

use serde_json::{Number, Value};

use super::go_quote;
use super::parser::{Expr, MatchExpr, MatchOp};

pub(crate) fn eval(expr: &Expr, doc: &Value) -> Result<bool, String> {
    match expr {
        Expr::Or(terms) => {
            for t in terms {
                if eval(t, doc)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::And(terms) => {
            for t in terms {
                if !eval(t, doc)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Not(e) => Ok(!eval(e, doc)?),
        Expr::Match(m) => eval_match(m, 0, doc),
    }
}

fn eval_match(m: &MatchExpr, depth: usize, v: &Value) -> Result<bool, String> {
    if depth == m.selector.len() {
        return apply(m, v);
    }
    match v {
        Value::Object(map) => match map.get(&m.selector[depth]) {
            Some(child) => eval_match(m, depth + 1, child),
            None => Ok(m.op.when_absent()),
        },
        Value::Array(items) => {
            // Same depth: the segment applies to each element.
            for item in items {
                if eval_match(m, depth, item)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Ok(m.op.when_absent()),
    }
}

fn raw(m: &MatchExpr) -> &str {
    m.value.as_ref().map(|v| v.raw.as_str()).unwrap_or("")
}

fn invalid_op(m: &MatchExpr) -> String {
    format!(
        "Invalid match operator {} for selector {}",
        go_quote(m.op.name()),
        go_quote(&m.selector_string())
    )
}

fn coerce_error(m: &MatchExpr, err: String) -> String {
    format!(
        "Failed to coerce value {} for selector {}: {err}",
        go_quote(raw(m)),
        go_quote(&m.selector_string())
    )
}

/// `positive` for the operator, or its negation for the negated operator.
fn polarity(op: MatchOp, positive: bool) -> bool {
    match op {
        MatchOp::Equal | MatchOp::In | MatchOp::IsEmpty | MatchOp::Matches => positive,
        MatchOp::NotEqual | MatchOp::NotIn | MatchOp::IsNotEmpty | MatchOp::NotMatches => !positive,
    }
}

fn apply(m: &MatchExpr, v: &Value) -> Result<bool, String> {
    use MatchOp::*;
    let op = m.op;
    let result = match v {
        Value::Null => return Ok(op.when_absent()),
        Value::String(s) => match op {
            Equal | NotEqual => s == raw(m),
            In | NotIn => s.contains(raw(m)),
            IsEmpty | IsNotEmpty => s.is_empty(),
            Matches | NotMatches => {
                let re = m.value.as_ref().and_then(|v| v.regex.as_ref());
                re.ok_or_else(|| invalid_op(m))?.is_match(s)
            }
        },
        Value::Number(n) => match op {
            Equal | NotEqual => number_equals(m, n)?,
            _ => return Err(invalid_op(m)),
        },
        Value::Bool(b) => match op {
            Equal | NotEqual => parse_go_bool(raw(m)).map_err(|e| coerce_error(m, e))? == *b,
            _ => return Err(invalid_op(m)),
        },
        Value::Array(items) => match op {
            IsEmpty | IsNotEmpty => items.is_empty(),
            In | NotIn => array_contains(m, items)?,
            _ => return Err(invalid_op(m)),
        },
        Value::Object(map) => match op {
            IsEmpty | IsNotEmpty => map.is_empty(),
            In | NotIn => map.contains_key(raw(m)),
            _ => return Err(invalid_op(m)),
        },
    };
    Ok(polarity(op, result))
}

fn number_equals(m: &MatchExpr, n: &Number) -> Result<bool, String> {
    if n.is_f64() {
        let want = parse_go_float(raw(m)).map_err(|e| coerce_error(m, e))?;
        return Ok(n.as_f64() == Some(want));
    }
    let want = parse_go_int(raw(m)).map_err(|e| coerce_error(m, e))?;
    let have = n
        .as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from));
    Ok(have == Some(want))
}

/// `value in array`: equality against each element, the value coerced to that element's type.
fn array_contains(m: &MatchExpr, items: &[Value]) -> Result<bool, String> {
    for item in items {
        let found = match item {
            Value::String(s) => s == raw(m),
            Value::Number(n) => number_equals(m, n)?,
            Value::Bool(b) => parse_go_bool(raw(m)).map_err(|e| coerce_error(m, e))? == *b,
            Value::Null => false,
            Value::Array(_) | Value::Object(_) => return Err(invalid_op(m)),
        };
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(s)
        )),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` (decimal forms; Rust's parser also takes `inf`/`nan`).
pub(crate) fn parse_go_float(s: &str) -> Result<f64, String> {
    s.parse::<f64>().map_err(|_| {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    })
}

/// Go's `strconv.ParseInt(s, 0, 64)` — sign, `0x`/`0o`/`0b`/leading-`0` bases, `_` digit
/// separators — except that the range is that of both `int64` and `uint64`, since the JSON
/// number doesn't say which of the two the field is.
pub(crate) fn parse_go_int(s: &str) -> Result<i128, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
    let range = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(s)
        )
    };

    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let bytes = body.as_bytes();
    let (base, digits, prefixed) = if bytes.len() >= 2 && bytes[0] == b'0' {
        match bytes[1].to_ascii_lowercase() {
            b'x' => (16, &body[2..], true),
            b'o' => (8, &body[2..], true),
            b'b' => (2, &body[2..], true),
            _ => (8, &body[1..], false),
        }
    } else {
        (10, body, false)
    };
    if body.is_empty() || !underscores_ok(digits, prefixed || base == 8) {
        return Err(syntax());
    }
    let mut value: u128 = 0;
    let mut any = false;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(base).ok_or_else(syntax)?;
        value = value * u128::from(base) + u128::from(d);
        any = true;
        if value > u128::from(u64::MAX) {
            return Err(range());
        }
    }
    if !any && base != 8 {
        return Err(syntax());
    }
    if negative {
        if value > 1u128 << 63 {
            return Err(range());
        }
        Ok(-(value as i128))
    } else {
        Ok(value as i128)
    }
}

/// Underscores only between digits (or right after a base prefix).
fn underscores_ok(digits: &str, after_prefix: bool) -> bool {
    let mut prev_digit = after_prefix;
    let mut prev_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return false;
            }
            prev_digit = false;
            prev_underscore = true;
        } else {
            prev_digit = true;
            prev_underscore = false;
        }
    }
    !prev_underscore
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_parsing() {
        assert_eq!(parse_go_int("80"), Ok(80));
        assert_eq!(parse_go_int("-80"), Ok(-80));
        assert_eq!(parse_go_int("+7"), Ok(7));
        assert_eq!(parse_go_int("0"), Ok(0));
        assert_eq!(parse_go_int("0x1F"), Ok(31));
        assert_eq!(parse_go_int("0o17"), Ok(15));
        assert_eq!(parse_go_int("017"), Ok(15));
        assert_eq!(parse_go_int("0b101"), Ok(5));
        assert_eq!(parse_go_int("1_000"), Ok(1000));
        assert_eq!(parse_go_int("0x_1F"), Ok(31));
        assert_eq!(parse_go_int("18446744073709551615"), Ok(u64::MAX as i128));
        assert_eq!(parse_go_int("-9223372036854775808"), Ok(i64::MIN as i128));
        for bad in [
            "", "-", "abc", "1.5", "8a", "0x", "1__0", "_1", "1_", "09", "0b2",
        ] {
            assert_eq!(
                parse_go_int(bad),
                Err(format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    go_quote(bad)
                )),
                "{bad:?}"
            );
        }
        assert!(parse_go_int("18446744073709551616")
            .unwrap_err()
            .ends_with("value out of range"));
        assert!(parse_go_int("-9223372036854775809")
            .unwrap_err()
            .ends_with("value out of range"));
    }

    #[test]
    fn go_bool_and_float_parsing() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Ok(false));
        }
        assert_eq!(
            parse_go_bool("yes"),
            Err("strconv.ParseBool: parsing \"yes\": invalid syntax".to_string())
        );
        assert_eq!(parse_go_float("1.5"), Ok(1.5));
        assert_eq!(parse_go_float("-2"), Ok(-2.0));
        assert_eq!(parse_go_float("1e3"), Ok(1000.0));
        assert!(parse_go_float("x").is_err());
    }
}
