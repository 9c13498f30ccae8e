//! The syntax of ACL rules: HCL version 1 (the dialect Consul decodes rules with) or JSON,
//! both read into one [`Node`] tree so that `rules` decodes a single shape.
//!
//! Rules are not parsed with `hcl-rs`: it implements HCL 2, which rejects HCL 1 forms that
//! Consul accepts and documents, such as two attributes in a one-line block
//! (`service "web" { policy = "write" intentions = "read" }`) or commas between items.
//! The subset here is what HCL 1 objects allow: `key = value`, `key "label"... { ... }`,
//! `key = { ... }`, lists, `#`, `//` and `/* */` comments.

use std::fmt;

/// A 1-based line and column, reported in syntax errors as HCL 1 does (`At 3:5: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Str(String),
    /// Items in document order; a key may repeat (`key "a" {..} key "b" {..}`).
    Obj(Vec<(String, Node)>),
    List(Vec<Node>),
    /// A number, boolean or null: never valid in rules, kept only to name it in errors.
    Scalar(&'static str),
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Obj(_) => "an object",
            Value::List(_) => "a list",
            Value::Scalar(kind) => kind,
        }
    }
}

/// A value and where it starts (JSON values carry no position: serde_json drops them).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    pub value: Value,
    pub pos: Option<Pos>,
}

/// Parses rules text. Like HCL 1, text whose first non-blank character is `{` is JSON.
pub(super) fn parse(text: &str) -> Result<Node, String> {
    if text.trim_start().starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return Ok(from_json(json));
    }
    let mut parser = Parser::new(text);
    let items = parser.items(true)?;
    Ok(Node {
        value: Value::Obj(items),
        pos: Some(Pos { line: 1, col: 1 }),
    })
}

fn from_json(json: serde_json::Value) -> Node {
    use serde_json::Value as J;
    let value = match json {
        J::String(s) => Value::Str(s),
        J::Object(map) => Value::Obj(map.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
        J::Array(items) => Value::List(items.into_iter().map(from_json).collect()),
        J::Number(_) => Value::Scalar("a number"),
        J::Bool(_) => Value::Scalar("a boolean"),
        J::Null => Value::Scalar("null"),
    };
    Node { value, pos: None }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Number,
    Bool,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Eq,
    Comma,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "identifier {s}"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Number => f.write_str("a number"),
            Tok::Bool => f.write_str("a boolean"),
            Tok::LBrace => f.write_str("'{'"),
            Tok::RBrace => f.write_str("'}'"),
            Tok::LBrack => f.write_str("'['"),
            Tok::RBrack => f.write_str("']'"),
            Tok::Eq => f.write_str("'='"),
            Tok::Comma => f.write_str("','"),
            Tok::Eof => f.write_str("end of input"),
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    at: usize,
    line: u32,
    col: u32,
    peeked: Option<(Tok, Pos)>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            at: 0,
            line: 1,
            col: 1,
            peeked: None,
        }
    }

    fn error<T>(pos: Pos, msg: impl fmt::Display) -> Result<T, String> {
        Err(format!("At {pos}: {msg}"))
    }

    /// `key ... = value` or `key ... { items }` pairs until `}` (or the end, at top level).
    fn items(&mut self, top: bool) -> Result<Vec<(String, Node)>, String> {
        let mut items = Vec::new();
        loop {
            let (tok, pos) = self.peek()?;
            match tok {
                // Inside braces, the caller reports the missing `}`.
                Tok::Eof => return Ok(items),
                Tok::RBrace if !top => return Ok(items),
                Tok::Ident(_) | Tok::Str(_) => items.push(self.item()?),
                other => {
                    return Self::error(pos, format!("expected a rule name, found {other}"));
                }
            }
            if self.peek()?.0 == Tok::Comma {
                self.bump()?;
            }
        }
    }

    /// `a "b" "c" { x }` is HCL 1 shorthand for `a = { "b" = { "c" = { x } } }`.
    fn item(&mut self) -> Result<(String, Node), String> {
        let mut keys = Vec::new();
        let value = loop {
            let (tok, pos) = self.bump()?;
            match tok {
                Tok::Ident(key) | Tok::Str(key) => keys.push((key, pos)),
                Tok::Eq => break self.value()?,
                Tok::LBrace => break self.object_body(pos)?,
                other => {
                    let key = &keys.last().expect("item starts with a key").0;
                    return Self::error(
                        pos,
                        format!("expected '=' or '{{' after {key:?}, found {other}"),
                    );
                }
            }
        };
        let (first, _) = keys.remove(0);
        let node = keys
            .into_iter()
            .rev()
            .fold(value, |inner, (key, pos)| Node {
                value: Value::Obj(vec![(key, inner)]),
                pos: Some(pos),
            });
        Ok((first, node))
    }

    fn value(&mut self) -> Result<Node, String> {
        let (tok, pos) = self.bump()?;
        let value = match tok {
            Tok::Str(s) => Value::Str(s),
            Tok::Number => Value::Scalar("a number"),
            Tok::Bool => Value::Scalar("a boolean"),
            Tok::LBrace => return self.object_body(pos),
            Tok::LBrack => {
                let mut items = Vec::new();
                while self.peek()?.0 != Tok::RBrack {
                    items.push(self.value()?);
                    if self.peek()?.0 == Tok::Comma {
                        self.bump()?;
                    }
                }
                self.bump()?;
                Value::List(items)
            }
            other => return Self::error(pos, format!("expected a value, found {other}")),
        };
        Ok(Node {
            value,
            pos: Some(pos),
        })
    }

    /// The rest of an object whose `{` (at `open`) was just read.
    fn object_body(&mut self, open: Pos) -> Result<Node, String> {
        let items = self.items(false)?;
        let (tok, pos) = self.bump()?;
        if tok != Tok::RBrace {
            return Self::error(
                pos,
                format!("expected '}}' closing the '{{' at {open}, found {tok}"),
            );
        }
        Ok(Node {
            value: Value::Obj(items),
            pos: Some(open),
        })
    }

    fn peek(&mut self) -> Result<(Tok, Pos), String> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        Ok(self.peeked.clone().expect("just filled"))
    }

    fn bump(&mut self) -> Result<(Tok, Pos), String> {
        match self.peeked.take() {
            Some(next) => Ok(next),
            None => self.lex(),
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.src[self.at..].chars().next()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn rest(&self) -> &str {
        &self.src[self.at..]
    }

    fn skip_blanks_and_comments(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            if rest.starts_with('#') || rest.starts_with("//") {
                while self.next_char().is_some_and(|c| c != '\n') {}
            } else if rest.starts_with("/*") {
                let start = self.pos();
                self.next_char();
                self.next_char();
                while !self.rest().starts_with("*/") {
                    if self.next_char().is_none() {
                        return Self::error(start, "comment not terminated");
                    }
                }
                self.next_char();
                self.next_char();
            } else if rest.starts_with(char::is_whitespace) {
                self.next_char();
            } else {
                return Ok(());
            }
        }
    }

    fn lex(&mut self) -> Result<(Tok, Pos), String> {
        self.skip_blanks_and_comments()?;
        let pos = self.pos();
        let Some(c) = self.next_char() else {
            return Ok((Tok::Eof, pos));
        };
        let tok = match c {
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '[' => Tok::LBrack,
            ']' => Tok::RBrack,
            '=' => Tok::Eq,
            ',' => Tok::Comma,
            '"' => Tok::Str(self.string(pos)?),
            c if c.is_ascii_digit() || c == '-' => {
                self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'));
                Tok::Number
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = self.at - c.len_utf8();
                self.take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
                match &self.src[start..self.at] {
                    "true" | "false" => Tok::Bool,
                    ident => Tok::Ident(ident.to_string()),
                }
            }
            other => return Self::error(pos, format!("unexpected character {other:?}")),
        };
        Ok((tok, pos))
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.rest().starts_with(&keep) {
            self.next_char();
        }
    }

    /// A double-quoted string whose opening quote (at `open`) was just read. HCL 1 strings
    /// end on the same line; `${...}` has no meaning in rules and is kept as written.
    fn string(&mut self, open: Pos) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.next_char() {
                None | Some('\n') => return Self::error(open, "literal not terminated"),
                Some('"') => return Ok(out),
                Some('\\') => match self.next_char() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(c @ ('"' | '\\' | '/')) => out.push(c),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.next_char()).collect();
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(c) => out.push(c),
                            None => return Self::error(pos, format!("invalid escape \\u{hex}")),
                        }
                    }
                    other => {
                        let shown = other.map(String::from).unwrap_or_default();
                        return Self::error(pos, format!("invalid escape \\{shown}"));
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj<K: Into<String>>(items: Vec<(K, Value)>) -> Value {
        Value::Obj(
            items
                .into_iter()
                .map(|(k, value)| (k.into(), Node { value, pos: None }))
                .collect(),
        )
    }

    /// Positions aside, so HCL and JSON trees compare equal.
    fn strip(node: Node) -> Value {
        match node.value {
            Value::Obj(items) => obj(items.into_iter().map(|(k, n)| (k, strip(n))).collect()),
            Value::List(items) => Value::List(
                items
                    .into_iter()
                    .map(|n| Node {
                        value: strip(n),
                        pos: None,
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    #[test]
    fn hcl1_forms_give_the_json_tree() {
        let hcl = r#"
            # comment
            service "web" { policy = "write" intentions = "read" }  // trailing
            key = { "a/" = { policy = "list" }, }
            /* block
               comment */
            acl = "read"
        "#;
        let json = r#"{"service": {"web": {"policy": "write", "intentions": "read"}},
                       "key": {"a/": {"policy": "list"}}, "acl": "read"}"#;
        assert_eq!(strip(parse(hcl).unwrap()), strip(parse(json).unwrap()));
        let expected = obj(vec![
            (
                "service",
                obj(vec![(
                    "web",
                    obj(vec![
                        ("policy", Value::Str("write".into())),
                        ("intentions", Value::Str("read".into())),
                    ]),
                )]),
            ),
            (
                "key",
                obj(vec![(
                    "a/",
                    obj(vec![("policy", Value::Str("list".into()))]),
                )]),
            ),
            ("acl", Value::Str("read".into())),
        ]);
        assert_eq!(strip(parse(hcl).unwrap()), expected);
    }

    #[test]
    fn strings_unescape() {
        let tree = parse(r#"key "a\"b\\c\u00e9" { policy = "read" }"#).unwrap();
        let Value::Obj(items) = tree.value else {
            panic!()
        };
        let Value::Obj(labels) = &items[0].1.value else {
            panic!()
        };
        assert_eq!(labels[0].0, "a\"b\\cé");
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(
            parse("key \"a\" {\n  policy = \n}").unwrap_err(),
            "At 3:1: expected a value, found '}'"
        );
        assert_eq!(
            parse("key \"a\" {\n  policy = \"read\"\n").unwrap_err(),
            "At 3:1: expected '}' closing the '{' at 1:9, found end of input"
        );
        assert_eq!(
            parse("key \"unterminated { }").unwrap_err(),
            "At 1:5: literal not terminated"
        );
        assert_eq!(
            parse("acl \"read\"").unwrap_err(),
            "At 1:11: expected '=' or '{' after \"read\", found end of input"
        );
        assert_eq!(
            parse("= 1").unwrap_err(),
            "At 1:1: expected a rule name, found '='"
        );
        assert!(parse("{ \"acl\": }")
            .unwrap_err()
            .contains("line 1 column 10"));
    }
}
