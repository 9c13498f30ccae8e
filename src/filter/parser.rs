//! Parser for the filter expression language.
//!
//! The grammar is the PEG that go-bexpr (the library behind Consul's `?filter=`) accepts, and
//! this parser follows PEG semantics closely — ordered choice with backtracking — so that the
//! same inputs are accepted and rejected. It also reproduces the way go-bexpr's generated
//! parser reports failures: either an error raised by one of the grammar's error branches
//! (`1:9 (8): rule "number": Invalid number literal`) or, failing that, the set of terminals
//! that would have let parsing get further at the farthest position reached
//! (`1:10 (9): no match found, expected: "and", "or", [ \t\r\n] or EOF`).
//!
//! Grammar, informally (`_` is one or more of space, tab, CR, LF; `_?` is optional):
//!
//! ```text
//! Input        <- _? "(" _? Or _? ")" _? EOF / _? Or _? EOF
//! Or           <- And (_ "or" _ And)*
//! And          <- Not (_ "and" _ Not)*
//! Not          <- "not" _ Not / Group
//! Group        <- "(" _? Or _? ")" / Match / "(" _? Or _? !")" {error}
//! Match        <- Selector (EqOp / NeOp / ContainsOp / NotContainsOp / MatchesOp / NotMatchesOp) Value
//!               / Selector (IsEmptyOp / IsNotEmptyOp)
//!               / Value (InOp / NotInOp) Selector / Value (InOp / NotInOp) !Selector {error}
//! EqOp         <- _? "==" _?          NeOp <- _? "!=" _?
//! InOp         <- _ "in" _            NotInOp <- _ "not" _ "in" _
//! ContainsOp   <- _ "contains" _      NotContainsOp <- _ "not" _ "contains" _
//! MatchesOp    <- _ "matches" _       NotMatchesOp <- _ "not" _ "matches" _
//! IsEmptyOp    <- _ "is" _ "empty"    IsNotEmptyOp <- _ "is" _ "not" _ "empty"
//! Selector     <- Identifier ("." Identifier / Index)*
//! Identifier   <- [a-zA-Z] [a-zA-Z0-9_]*
//! Index        <- "[" _? String _? "]" / "[" _? !String {error} / "[" _? String _? !"]" {error}
//! Value        <- Selector / Number / String
//! Number       <- "-"? ("0" / [1-9][0-9]*) ("." [0-9]+)? followed by _, EOF or ")" (else error)
//! String       <- "`" raw chars "`" / '"' chars '"'   (Go escapes in the latter)
//! ```
//!
//! `or`/`and` chains are parsed iteratively rather than by right recursion; the accepted
//! language, the furthest-failure bookkeeping and the evaluation result are the same.

use std::collections::HashMap;

use super::go_quote;

/// Deepest nesting of `not` / parentheses accepted; guards the recursive descent (and the
/// evaluator) against stack exhaustion from hostile input.
pub(crate) const MAX_NESTING: usize = 100;

/// A match operator. `contains` parses to `In` and `not contains` to `NotIn`, as in go-bexpr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchOp {
    Equal,
    NotEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

impl MatchOp {
    /// go-bexpr's name for the operator, used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            MatchOp::Equal => "Equal",
            MatchOp::NotEqual => "Not Equal",
            MatchOp::In => "In",
            MatchOp::NotIn => "Not In",
            MatchOp::IsEmpty => "Is Empty",
            MatchOp::IsNotEmpty => "Is Not Empty",
            MatchOp::Matches => "Matches",
            MatchOp::NotMatches => "Not Matches",
        }
    }

    /// Result of the operator when the selected value is absent (missing key, `null`, or a
    /// path that cannot be followed): nothing equals, contains, matches or fills a missing
    /// value, so the positive operators are false and their negations true.
    pub(crate) fn when_absent(self) -> bool {
        match self {
            MatchOp::Equal | MatchOp::In | MatchOp::IsNotEmpty | MatchOp::Matches => false,
            MatchOp::NotEqual | MatchOp::NotIn | MatchOp::IsEmpty | MatchOp::NotMatches => true,
        }
    }
}

/// The value side of a match expression: the raw text (a bare word, a number's digits or an
/// unquoted string) that is coerced to the selected field's type at evaluation time.
#[derive(Debug, Clone)]
pub(crate) struct MatchValue {
    pub raw: String,
    /// Compiled at parse time for `matches` / `not matches`.
    pub regex: Option<regex::Regex>,
}

#[derive(Debug, Clone)]
pub(crate) struct MatchExpr {
    pub selector: Vec<String>,
    pub op: MatchOp,
    /// `None` for `is empty` / `is not empty`.
    pub value: Option<MatchValue>,
}

impl MatchExpr {
    /// The selector as go-bexpr prints it: its segments joined with `.`.
    pub(crate) fn selector_string(&self) -> String {
        self.selector.join(".")
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Match(MatchExpr),
}

/// Parses `input` into an expression tree, or returns go-bexpr-style error text.
pub(crate) fn parse(input: &str) -> Result<Expr, String> {
    let mut p = Parser::new(input);
    let result = p.input();
    if !p.errors.is_empty() {
        return Err(p.errors.join("\n"));
    }
    match result {
        Some(expr) => Ok(expr),
        None => Err(p.no_match_error()),
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Inside an odd number of `!` predicates: terminals that *succeed* are what is recorded.
    invert: bool,
    max_fail_pos: usize,
    max_fail_expected: Vec<String>,
    /// Errors raised by the grammar's error branches, already formatted, deduplicated.
    errors: Vec<String>,
    nesting: usize,
    /// Memo of `Or` results by start offset: the grammar's error branches re-parse the same
    /// span, which without this is exponential in the nesting depth.
    or_memo: HashMap<usize, (Option<Expr>, usize)>,
}

type Pred = fn(char) -> bool;

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}
fn is_alpha(c: char) -> bool {
    c.is_ascii_alphabetic()
}
fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}
fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
}
fn is_nonzero_digit(c: char) -> bool {
    matches!(c, '1'..='9')
}

const WS: (&str, Pred) = ("[ \\t\\r\\n]", is_ws);
const ALPHA: (&str, Pred) = ("[a-zA-Z]", is_alpha);
const IDENT: (&str, Pred) = ("[a-zA-Z0-9_]", is_ident);
const DIGIT: (&str, Pred) = ("[0-9]", is_digit);
const NONZERO: (&str, Pred) = ("[1-9]", is_nonzero_digit);

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            invert: false,
            max_fail_pos: 0,
            max_fail_expected: Vec::new(),
            errors: Vec::new(),
            nesting: 0,
            or_memo: HashMap::new(),
        }
    }

    // ----- bookkeeping -------------------------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Records a terminal's outcome for the "expected" list: failures normally, successes
    /// (prefixed with `!`) inside a negative predicate.
    fn fail_at(&mut self, matched: bool, pos: usize, want: &str) {
        if matched != self.invert {
            return;
        }
        if pos < self.max_fail_pos {
            return;
        }
        if pos > self.max_fail_pos {
            self.max_fail_pos = pos;
            self.max_fail_expected.clear();
        }
        let want = if self.invert {
            format!("!{want}")
        } else {
            want.to_string()
        };
        self.max_fail_expected.push(want);
    }

    /// Records an error raised by a grammar error branch inside rule `rule`.
    fn error_at(&mut self, pos: usize, rule: &str, msg: &str) {
        let text = format!("{}: rule {rule}: {msg}", position(self.src, pos));
        if !self.errors.contains(&text) {
            self.errors.push(text);
        }
    }

    fn no_match_error(&self) -> String {
        let mut eof = false;
        let mut expected: Vec<String> = Vec::new();
        for want in &self.max_fail_expected {
            if want == "!." {
                eof = true;
            } else if !expected.contains(want) {
                expected.push(want.clone());
            }
        }
        expected.sort();
        if eof {
            expected.push("EOF".to_string());
        }
        let list = match expected.len() {
            0 => String::new(),
            1 => expected[0].clone(),
            n => format!("{} or {}", expected[..n - 1].join(", "), expected[n - 1]),
        };
        format!(
            "{}: no match found, expected: {list}",
            position(self.src, self.max_fail_pos)
        )
    }

    // ----- terminals ---------------------------------------------------------------------

    fn lit(&mut self, s: &str) -> bool {
        let start = self.pos;
        let matched = self.src[start..].starts_with(s);
        self.fail_at(matched, start, &go_quote(s));
        if matched {
            self.pos += s.len();
        }
        matched
    }

    fn class(&mut self, (want, pred): (&str, Pred)) -> Option<char> {
        let start = self.pos;
        match self.peek() {
            Some(c) if pred(c) => {
                self.fail_at(true, start, want);
                self.pos += c.len_utf8();
                Some(c)
            }
            _ => {
                self.fail_at(false, start, want);
                None
            }
        }
    }

    /// `.`: any one character.
    fn any(&mut self) -> Option<char> {
        let start = self.pos;
        match self.peek() {
            Some(c) => {
                self.fail_at(true, start, ".");
                self.pos += c.len_utf8();
                Some(c)
            }
            None => {
                self.fail_at(false, start, ".");
                None
            }
        }
    }

    /// `!e`: succeeds, consuming nothing, when `e` fails.
    fn not_ahead(&mut self, e: impl FnOnce(&mut Self) -> bool) -> bool {
        let start = self.pos;
        self.invert = !self.invert;
        let ok = e(self);
        self.invert = !self.invert;
        self.pos = start;
        !ok
    }

    /// `EOF <- !.`
    fn eof(&mut self) -> bool {
        self.not_ahead(|p| p.any().is_some())
    }

    /// `_ <- [ \t\r\n]+`
    fn ws(&mut self) -> bool {
        if self.class(WS).is_none() {
            return false;
        }
        while self.class(WS).is_some() {}
        true
    }

    /// `_?`
    fn ws_opt(&mut self) {
        self.ws();
    }

    /// Runs a sequence; on failure puts the position back where it started.
    fn seq<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let start = self.pos;
        let r = f(self);
        if r.is_none() {
            self.pos = start;
        }
        r
    }

    // ----- rules -------------------------------------------------------------------------

    fn input(&mut self) -> Option<Expr> {
        let first = self.seq(|p| {
            p.ws_opt();
            if !p.lit("(") {
                return None;
            }
            p.ws_opt();
            let e = p.or_expr()?;
            p.ws_opt();
            if !p.lit(")") {
                return None;
            }
            p.ws_opt();
            p.eof().then_some(e)
        });
        if first.is_some() {
            return first;
        }
        self.seq(|p| {
            p.ws_opt();
            let e = p.or_expr()?;
            p.ws_opt();
            p.eof().then_some(e)
        })
    }

    fn or_expr(&mut self) -> Option<Expr> {
        let start = self.pos;
        if !self.invert {
            if let Some((r, end)) = self.or_memo.get(&start) {
                let r = r.clone();
                self.pos = *end;
                return r;
            }
        }
        let r = self.binary_chain("or", Self::and_expr, Expr::Or);
        if !self.invert {
            self.or_memo.insert(start, (r.clone(), self.pos));
        }
        r
    }

    fn and_expr(&mut self) -> Option<Expr> {
        self.binary_chain("and", Self::not_expr, Expr::And)
    }

    /// `Operand (_ keyword _ Operand)*`, collected into one n-ary node.
    fn binary_chain(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Option<Expr>,
        node: fn(Vec<Expr>) -> Expr,
    ) -> Option<Expr> {
        let first = operand(self)?;
        let mut terms = vec![first];
        loop {
            let next = self.seq(|p| {
                if !(p.ws() && p.lit(keyword) && p.ws()) {
                    return None;
                }
                operand(p)
            });
            match next {
                Some(e) => terms.push(e),
                None => break,
            }
        }
        Some(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            node(terms)
        })
    }

    fn not_expr(&mut self) -> Option<Expr> {
        if self.nesting >= MAX_NESTING {
            let msg = format!("Expression nesting exceeds the limit ({MAX_NESTING})");
            self.error_at(self.pos, "\"grouping\"", &msg);
            return None;
        }
        self.nesting += 1;
        let r = self.not_expr_inner();
        self.nesting -= 1;
        r
    }

    fn not_expr_inner(&mut self) -> Option<Expr> {
        let negated = self.seq(|p| {
            if !(p.lit("not") && p.ws()) {
                return None;
            }
            p.not_expr()
        });
        if let Some(e) = negated {
            // `not not x` is just `x`.
            return Some(match e {
                Expr::Not(inner) => *inner,
                other => Expr::Not(Box::new(other)),
            });
        }
        self.group_expr()
    }

    fn group_expr(&mut self) -> Option<Expr> {
        let grouped = self.seq(|p| {
            if !p.lit("(") {
                return None;
            }
            p.ws_opt();
            let e = p.or_expr()?;
            p.ws_opt();
            p.lit(")").then_some(e)
        });
        if grouped.is_some() {
            return grouped;
        }
        if let Some(m) = self.match_expr() {
            return Some(Expr::Match(m));
        }
        // Error branch: an opening parenthesis whose group never closes.
        self.unclosed(
            "(",
            Self::or_expr,
            ")",
            "\"grouping\"",
            "Unmatched parentheses",
        );
        None
    }

    /// The error rule of a bracketed form that never closes: `open`, optional space, `inner`,
    /// optional space, then anything but `close` records `message` for `rule`. Never matches.
    fn unclosed<T>(
        &mut self,
        open: &str,
        inner: impl FnOnce(&mut Self) -> Option<T>,
        close: &str,
        rule: &str,
        message: &str,
    ) {
        self.seq(|p| {
            if !p.lit(open) {
                return None;
            }
            p.ws_opt();
            inner(p)?;
            p.ws_opt();
            if !p.not_ahead(|q| q.lit(close)) {
                return None;
            }
            p.error_at(p.pos, rule, message);
            None::<()>
        });
    }

    fn match_expr(&mut self) -> Option<MatchExpr> {
        // Selector op Value
        let r = self.seq(|p| {
            let selector = p.selector()?;
            let op = p.choice_op(&[
                Self::op_equal,
                Self::op_not_equal,
                Self::op_contains,
                Self::op_not_contains,
                Self::op_matches,
                Self::op_not_matches,
            ])?;
            let value = p.value()?;
            Some(MatchExpr {
                selector,
                op,
                value: Some(MatchValue {
                    raw: value,
                    regex: None,
                }),
            })
        });
        if r.is_some() {
            return r;
        }
        // Selector is [not] empty
        let r = self.seq(|p| {
            let selector = p.selector()?;
            let op = p.choice_op(&[Self::op_is_empty, Self::op_is_not_empty])?;
            Some(MatchExpr {
                selector,
                op,
                value: None,
            })
        });
        if r.is_some() {
            return r;
        }
        // Value [not] in Selector
        let r = self.seq(|p| {
            let value = p.value()?;
            let op = p.choice_op(&[Self::op_in, Self::op_not_in])?;
            let selector = p.selector()?;
            Some(MatchExpr {
                selector,
                op,
                value: Some(MatchValue {
                    raw: value,
                    regex: None,
                }),
            })
        });
        if r.is_some() {
            return r;
        }
        // Error branch: `value in <something that is not a selector>`.
        self.seq(|p| {
            p.value()?;
            p.choice_op(&[Self::op_in, Self::op_not_in])?;
            if !p.not_ahead(|q| q.selector().is_some()) {
                return None;
            }
            p.error_at(p.pos, "\"match\"", "Invalid selector");
            None::<()>
        });
        None
    }

    fn choice_op(&mut self, ops: &[fn(&mut Self) -> Option<MatchOp>]) -> Option<MatchOp> {
        ops.iter().find_map(|op| self.seq(op))
    }

    fn op_equal(&mut self) -> Option<MatchOp> {
        self.ws_opt();
        if !self.lit("==") {
            return None;
        }
        self.ws_opt();
        Some(MatchOp::Equal)
    }

    fn op_not_equal(&mut self) -> Option<MatchOp> {
        self.ws_opt();
        if !self.lit("!=") {
            return None;
        }
        self.ws_opt();
        Some(MatchOp::NotEqual)
    }

    /// `_ w1 _ w2 ... _`, or without the trailing `_` when `trailing` is false.
    fn keywords(&mut self, words: &[&str], trailing: bool, op: MatchOp) -> Option<MatchOp> {
        for w in words {
            if !(self.ws() && self.lit(w)) {
                return None;
            }
        }
        if trailing && !self.ws() {
            return None;
        }
        Some(op)
    }

    fn op_contains(&mut self) -> Option<MatchOp> {
        self.keywords(&["contains"], true, MatchOp::In)
    }
    fn op_not_contains(&mut self) -> Option<MatchOp> {
        self.keywords(&["not", "contains"], true, MatchOp::NotIn)
    }
    fn op_matches(&mut self) -> Option<MatchOp> {
        self.keywords(&["matches"], true, MatchOp::Matches)
    }
    fn op_not_matches(&mut self) -> Option<MatchOp> {
        self.keywords(&["not", "matches"], true, MatchOp::NotMatches)
    }
    fn op_in(&mut self) -> Option<MatchOp> {
        self.keywords(&["in"], true, MatchOp::In)
    }
    fn op_not_in(&mut self) -> Option<MatchOp> {
        self.keywords(&["not", "in"], true, MatchOp::NotIn)
    }
    fn op_is_empty(&mut self) -> Option<MatchOp> {
        self.keywords(&["is", "empty"], false, MatchOp::IsEmpty)
    }
    fn op_is_not_empty(&mut self) -> Option<MatchOp> {
        self.keywords(&["is", "not", "empty"], false, MatchOp::IsNotEmpty)
    }

    fn identifier(&mut self) -> Option<String> {
        let start = self.pos;
        self.class(ALPHA)?;
        while self.class(IDENT).is_some() {}
        Some(self.src[start..self.pos].to_string())
    }

    fn selector(&mut self) -> Option<Vec<String>> {
        let first = self.identifier()?;
        let mut path = vec![first];
        loop {
            let dotted = self.seq(|p| {
                if !p.lit(".") {
                    return None;
                }
                p.identifier()
            });
            if let Some(seg) = dotted {
                path.push(seg);
                continue;
            }
            match self.index_expr() {
                Some(seg) => path.push(seg),
                None => break,
            }
        }
        Some(path)
    }

    fn index_expr(&mut self) -> Option<String> {
        let r = self.seq(|p| {
            if !p.lit("[") {
                return None;
            }
            p.ws_opt();
            let key = p.string_literal()?;
            p.ws_opt();
            p.lit("]").then_some(key)
        });
        if r.is_some() {
            return r;
        }
        // Error branches.
        self.seq(|p| {
            if !p.lit("[") {
                return None;
            }
            p.ws_opt();
            if !p.not_ahead(|q| q.string_literal().is_some()) {
                return None;
            }
            p.error_at(p.pos, "\"index\"", "Invalid index");
            None::<()>
        });
        self.unclosed(
            "[",
            Self::string_literal,
            "]",
            "\"index\"",
            "Unclosed index expression",
        );
        None
    }

    /// A value's raw text.
    fn value(&mut self) -> Option<String> {
        if let Some(sel) = self.selector() {
            return Some(sel.join("."));
        }
        if let Some(n) = self.number_literal() {
            return Some(n);
        }
        self.string_literal()
    }

    fn number_literal(&mut self) -> Option<String> {
        let r = self.seq(|p| {
            let start = p.pos;
            p.seq(|q| q.lit("-").then_some(()));
            p.integer_or_float()?;
            p.after_numbers().then(|| p.src[start..p.pos].to_string())
        });
        if r.is_some() {
            return r;
        }
        self.seq(|p| {
            p.seq(|q| q.lit("-").then_some(()));
            p.integer_or_float()?;
            if !p.not_ahead(|q| q.after_numbers()) {
                return None;
            }
            p.error_at(p.pos, "\"number\"", "Invalid number literal");
            None::<()>
        });
        None
    }

    /// `&(_ / EOF / ")")`
    fn after_numbers(&mut self) -> bool {
        let start = self.pos;
        let ok = self.ws() || self.eof() || self.lit(")");
        self.pos = start;
        ok
    }

    fn integer_or_float(&mut self) -> Option<()> {
        self.seq(|p| {
            if !p.lit("0") {
                p.class(NONZERO)?;
                while p.class(DIGIT).is_some() {}
            }
            p.seq(|q| {
                if !q.lit(".") {
                    return None;
                }
                q.class(DIGIT)?;
                while q.class(DIGIT).is_some() {}
                Some(())
            });
            Some(())
        })
    }

    fn string_literal(&mut self) -> Option<String> {
        let start = self.pos;
        let quoted = self.seq(|p| {
            p.seq(|q| q.delimited('`').then_some(()))
                .or_else(|| p.seq(|q| q.delimited('"').then_some(())))
        });
        if quoted.is_some() {
            let text = &self.src[start..self.pos];
            return match unquote(text) {
                Ok(s) => Some(s),
                Err(()) => {
                    // go-bexpr's action fails but the literal still counts as matched.
                    self.error_at(start, "\"string\"", "invalid syntax");
                    Some(String::new())
                }
            };
        }
        // Error branch: the literal runs to the end of the input.
        self.seq(|p| {
            let opened = p
                .seq(|q| q.open_run('`').then_some(()))
                .or_else(|| p.seq(|q| q.open_run('"').then_some(())));
            opened?;
            if !p.eof() {
                return None;
            }
            p.error_at(p.pos, "\"string\"", "Unterminated string literal");
            None::<()>
        });
        None
    }

    /// `q (!q .)* q`
    fn delimited(&mut self, q: char) -> bool {
        self.open_run(q) && self.lit(q.encode_utf8(&mut [0; 4]))
    }

    /// `q (!q .)*`
    fn open_run(&mut self, q: char) -> bool {
        let mut buf = [0; 4];
        let qs: &str = q.encode_utf8(&mut buf);
        if !self.lit(qs) {
            return false;
        }
        loop {
            let more = self.seq(|p| {
                if !p.not_ahead(|r| r.lit(qs)) {
                    return None;
                }
                p.any()
            });
            if more.is_none() {
                break;
            }
        }
        true
    }
}

/// `line:col (offset)` for a byte offset, the way go-bexpr's parser reports positions:
/// columns count characters from 1, and a newline character itself sits at column 0 of the
/// following line.
fn position(src: &str, offset: usize) -> String {
    let mut line = 1;
    let mut col = 0;
    for (i, c) in src.char_indices() {
        if i > offset {
            break;
        }
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
        }
    }
    if offset >= src.len() {
        col += 1;
    }
    format!("{line}:{col} ({offset})")
}

/// Go's `strconv.Unquote` for the two literal forms the grammar produces: a backtick raw
/// string (carriage returns dropped) or a double-quoted string with Go escapes.
fn unquote(text: &str) -> Result<String, ()> {
    let inner = &text[1..text.len() - 1];
    if text.starts_with('`') {
        return Ok(inner.chars().filter(|&c| c != '\r').collect());
    }
    if inner.contains('\n') {
        return Err(());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let esc = chars.next().ok_or(())?;
        let simple = match esc {
            'a' => Some(0x07u8),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        match esc {
            'x' | 'u' | 'U' => {
                let n = match esc {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars.next().and_then(|c| c.to_digit(16)).ok_or(())?;
                    v = v << 4 | d;
                }
                if esc == 'x' {
                    out.push(v as u8);
                } else {
                    let ch = char::from_u32(v).ok_or(())?;
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            '0'..='7' => {
                let mut v = esc.to_digit(8).ok_or(())?;
                for _ in 0..2 {
                    let d = chars.next().and_then(|c| c.to_digit(8)).ok_or(())?;
                    v = v << 3 | d;
                }
                if v > 255 {
                    return Err(());
                }
                out.push(v as u8);
            }
            _ => return Err(()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(input: &str) -> MatchExpr {
        match parse(input).unwrap_or_else(|e| panic!("{input}: {e}")) {
            Expr::Match(m) => m,
            other => panic!("{input}: not a match expression: {other:?}"),
        }
    }

    fn err(input: &str) -> String {
        match parse(input) {
            Ok(e) => panic!("{input}: parsed as {e:?}"),
            Err(e) => e,
        }
    }

    /// A compact rendering of the tree, to check shape and precedence.
    fn show(e: &Expr) -> String {
        match e {
            Expr::Or(v) => format!("or({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
            Expr::And(v) => format!("and({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
            Expr::Not(e) => format!("not({})", show(e)),
            Expr::Match(m) => match &m.value {
                Some(v) => format!("{} {:?} {:?}", m.selector.join("."), m.op, v.raw),
                None => format!("{} {:?}", m.selector.join("."), m.op),
            },
        }
    }

    fn tree(input: &str) -> String {
        show(&parse(input).unwrap_or_else(|e| panic!("{input}: {e}")))
    }

    #[test]
    fn every_operator() {
        let cases = [
            ("foo == 3", vec!["foo"], MatchOp::Equal, Some("3")),
            ("foo != xyz", vec!["foo"], MatchOp::NotEqual, Some("xyz")),
            ("list is empty", vec!["list"], MatchOp::IsEmpty, None),
            ("list is not empty", vec!["list"], MatchOp::IsNotEmpty, None),
            ("foo in bar", vec!["bar"], MatchOp::In, Some("foo")),
            ("foo not in bar", vec!["bar"], MatchOp::NotIn, Some("foo")),
            ("bar contains foo", vec!["bar"], MatchOp::In, Some("foo")),
            (
                "bar not contains foo",
                vec!["bar"],
                MatchOp::NotIn,
                Some("foo"),
            ),
            (
                "foo matches bar",
                vec!["foo"],
                MatchOp::Matches,
                Some("bar"),
            ),
            (
                "foo not matches bar",
                vec!["foo"],
                MatchOp::NotMatches,
                Some("bar"),
            ),
            ("foo==bar", vec!["foo"], MatchOp::Equal, Some("bar")),
            ("foo!=\"bar\"", vec!["foo"], MatchOp::NotEqual, Some("bar")),
        ];
        for (input, sel, op, value) in cases {
            let got = m(input);
            assert_eq!(got.selector, sel, "{input}");
            assert_eq!(got.op, op, "{input}");
            assert_eq!(got.value.as_ref().map(|v| v.raw.as_str()), value, "{input}");
        }
    }

    #[test]
    fn values() {
        assert_eq!(m("foo == \"bar baz\"").value.unwrap().raw, "bar baz");
        assert_eq!(m("foo == `bar`").value.unwrap().raw, "bar");
        assert_eq!(m("foo == 0.2").value.unwrap().raw, "0.2");
        assert_eq!(m("foo == -11.11").value.unwrap().raw, "-11.11");
        assert_eq!(m("foo == 0").value.unwrap().raw, "0");
        assert_eq!(m("foo == true").value.unwrap().raw, "true");
        // A selector used as a value is its dotted text.
        assert_eq!(m("foo == a.b[\"c d\"]").value.unwrap().raw, "a.b.c d");
        assert_eq!(m("`x y` in foo").value.unwrap().raw, "x y");
        assert_eq!(m("8080 in ports").value.unwrap().raw, "8080");
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            m(r#"f == "a\tb\n\\\u00e9\x41\101""#).value.unwrap().raw,
            "a\tb\n\\éAA"
        );
        // Raw strings keep backslashes and drop carriage returns.
        assert_eq!(m("f == `a\\d+\r\n`").value.unwrap().raw, "a\\d+\n");
        assert_eq!(m("f == \"åß∂ƒ\"").value.unwrap().raw, "åß∂ƒ");
        assert_eq!(
            err(r#"f == "\d""#),
            r#"1:6 (5): rule "string": invalid syntax"#
        );
        assert_eq!(
            err("f == \"a\nb\""),
            r#"1:6 (5): rule "string": invalid syntax"#
        );
        assert_eq!(
            err(r#"f == "\400""#),
            r#"1:6 (5): rule "string": invalid syntax"#
        );
        assert_eq!(
            err(r#"f == "\'""#),
            r#"1:6 (5): rule "string": invalid syntax"#
        );
    }

    #[test]
    fn selectors() {
        assert_eq!(
            m("`environment` in foo.bar[\"meta\"].tags[\t`ENV` ]").selector,
            vec!["foo", "bar", "meta", "tags", "ENV"]
        );
        assert_eq!(
            m("environment in foo[\"bar\"][\"meta\"]").selector,
            vec!["foo", "bar", "meta"]
        );
        assert_eq!(
            m("environment in foo[\"abc-def ghi åß∂ƒ\"]").selector,
            vec!["foo", "abc-def ghi åß∂ƒ"]
        );
        assert_eq!(
            m("Service.Meta.version == 2").selector,
            vec!["Service", "Meta", "version"]
        );
        assert_eq!(m("a_b.C9 is empty").selector, vec!["a_b", "C9"]);
        // Keywords are ordinary identifiers where an identifier is expected.
        assert_eq!(m("notable == 1").selector, vec!["notable"]);
        assert_eq!(m("not == 1").selector, vec!["not"]);
        assert_eq!(m("in in in").selector, vec!["in"]);
    }

    #[test]
    fn whitespace() {
        assert_eq!(
            tree("\t\r\n  foo \t\r\n == \t\r\n x \t\r\n"),
            "foo Equal \"x\""
        );
        assert_eq!(
            tree("\t\r\n  foo \t\r\n is \t\r\n not \t\r\n empty \t\r\n"),
            "foo IsNotEmpty"
        );
        assert_eq!(
            tree("\t\r\n not \t\r\n  foo \t\r\n in \t\r\n x \t\r\n"),
            "not(x In \"foo\")"
        );
        assert_eq!(tree(" ( \t foo == x \n ) "), "foo Equal \"x\"");
    }

    #[test]
    fn precedence_and_grouping() {
        assert_eq!(
            tree("x in foo and not str == something or list is empty"),
            "or(and(foo In \"x\", not(str Equal \"something\")), list IsEmpty)"
        );
        assert_eq!(
            tree("x in foo and not (str == something or list is empty)"),
            "and(foo In \"x\", not(or(str Equal \"something\", list IsEmpty)))"
        );
        assert_eq!(
            tree("a == 1 or b == 2 and c == 3 or d == 4"),
            "or(a Equal \"1\", and(b Equal \"2\", c Equal \"3\"), d Equal \"4\")"
        );
        assert_eq!(
            tree("(a == 1 or b == 2) and c == 3"),
            "and(or(a Equal \"1\", b Equal \"2\"), c Equal \"3\")"
        );
        assert_eq!(
            tree("(a == 1) or (b == 2)"),
            "or(a Equal \"1\", b Equal \"2\")"
        );
        assert_eq!(tree("((a == 1))"), "a Equal \"1\"");
        assert_eq!(tree("not not a == 1"), "a Equal \"1\"");
        assert_eq!(tree("not not not a == 1"), "not(a Equal \"1\")");
        assert_eq!(tree("not (not a == 1)"), "a Equal \"1\"");
    }

    #[test]
    fn go_bexpr_error_messages() {
        let cases = [
            (
                "foo == \"12x",
                r#"1:12 (11): rule "string": Unterminated string literal"#,
            ),
            (
                "foo == `12x",
                r#"1:12 (11): rule "string": Unterminated string literal"#,
            ),
            (
                "foo == 3x",
                r#"1:9 (8): rule "number": Invalid number literal"#,
            ),
            (
                "foo == 01",
                r#"1:9 (8): rule "number": Invalid number literal"#,
            ),
            ("foo[3] == abc", r#"1:5 (4): rule "index": Invalid index"#),
            (
                "x in foo[\"abc\"",
                r#"1:15 (14): rule "index": Unclosed index expression"#,
            ),
            (
                "foo[\"abc\" == 3",
                r#"1:11 (10): rule "index": Unclosed index expression"#,
            ),
            ("x in 32", r#"1:6 (5): rule "match": Invalid selector"#),
            (
                "(foo == 1",
                r#"1:10 (9): rule "grouping": Unmatched parentheses"#,
            ),
            (
                "32 == 32",
                r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#,
            ),
            (
                "32 is empty",
                r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#,
            ),
            (
                "x in foo abc",
                r#"1:10 (9): no match found, expected: "and", "or", [ \t\r\n] or EOF"#,
            ),
            (
                "x in foo and ",
                r#"1:14 (13): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
            ),
            (
                "x in foo or ",
                r#"1:13 (12): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
            ),
            (
                "x in foo or not ",
                r#"1:17 (16): no match found, expected: "!=", "(", "-", "0", "==", "\"", "`", "contains", "in", "is", "matches", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
            ),
            (
                "Port = 80",
                r#"1:6 (5): no match found, expected: "!=", "==", "contains", "in", "is", "matches", "not" or [ \t\r\n]"#,
            ),
            (
                "",
                r#"1:1 (0): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(err(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn positions_count_lines_and_characters() {
        assert_eq!(position("ab", 0), "1:1 (0)");
        assert_eq!(position("ab", 2), "1:3 (2)");
        assert_eq!(position("a\nb", 1), "2:0 (1)");
        assert_eq!(position("a\nb", 2), "2:1 (2)");
        assert_eq!(position("é=", 2), "1:2 (2)");
        assert_eq!(
            err("a == 1\nand"),
            r#"2:4 (10): no match found, expected: [ \t\r\n]"#
        );
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowing() {
        let deep = format!("{}a == 1{}", "(".repeat(500), ")".repeat(500));
        assert!(err(&deep).contains("nesting exceeds the limit"));
        let nots = format!("{}a == 1", "not ".repeat(500));
        assert!(err(&nots).contains("nesting exceeds the limit"));
        // Unbalanced and deep input stays fast (memoised re-parses).
        let unclosed = format!("{}a == 1", "(".repeat(60));
        assert!(err(&unclosed).contains("Unmatched parentheses"));
        let ok = format!("{}a == 1{}", "(".repeat(50), ")".repeat(50));
        assert_eq!(tree(&ok), "a Equal \"1\"");
        // Long flat chains are iterative.
        let long = vec!["a == 1"; 5000].join(" or ");
        assert!(matches!(parse(&long), Ok(Expr::Or(v)) if v.len() == 5000));
    }
}
