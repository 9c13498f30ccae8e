//! Consul's `?filter=` expression language (HashiCorp go-bexpr), evaluated against the JSON
//! rendering of API objects.
//!
//! ```text
//! Service == web and "v1" in Tags
//! Meta.version != "2" or not (Port == 80)
//! Checks.Status == passing            // any check passing
//! Node.Meta["rack-id"] matches `^r[0-9]+$`
//! ServiceTags is empty
//! ```
//!
//! * Match operators: `==`, `!=`, `<value> in <selector>`, `<value> not in <selector>`,
//!   `<selector> contains <value>`, `<selector> not contains <value>`, `is empty`,
//!   `is not empty`, `matches` and `not matches` (regular expressions, unanchored).
//! * Logic: `not` binds tighter than `and`, which binds tighter than `or`; parentheses group.
//! * Selectors: identifiers (`[a-zA-Z][a-zA-Z0-9_]*`) joined by `.`, or a quoted key in
//!   brackets for keys that are not identifiers: `Meta["my-key"]`, ``Meta[`a.b`]``.
//! * Values: bare words (a selector's text), numbers, `"double-quoted"` strings with Go escapes
//!   and `` `raw` `` strings. A value is text until it is compared: against a number or bool
//!   field it is coerced to that type, and one that can't be is an error.
//!
//! What each operator does on each JSON type, and how selectors walk through arrays, is
//! described in `eval.rs`. A selector naming a field the document doesn't have selects an
//! absent value: `==`, `in`/`contains`, `matches` and `is not empty` are false for it,
//! and their negations true (this is go-bexpr's rule for a missing map key; go-bexpr would
//! reject an unknown struct field outright, which needs type information we don't have).
//!
//! Parse errors carry go-bexpr's messages, positions included
//! (`1:10 (9): no match found, expected: "and", "or", [ \t\r\n] or EOF`), and every error is
//! displayed with the prefix Consul puts on them:
//! `Failed to create boolean expression evaluator: …` — ready to be a 400 response body.

mod eval;
mod parser;
mod re2;

use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

use parser::{Expr, MatchOp};

/// A parsed filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
    source: String,
}

/// Why a filter could not be parsed or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The expression is malformed (syntax, or a regular expression that doesn't compile).
    #[error("Failed to create boolean expression evaluator: {0}")]
    Parse(String),
    /// The expression doesn't fit the data: an operator the selected field's type doesn't
    /// support, or a value that can't be coerced to that type.
    #[error("Failed to create boolean expression evaluator: {0}")]
    Invalid(String),
    /// Evaluating the expression took more than its CPU budget (milliseconds).
    #[error(
        "Filter evaluation stopped after {0} ms of CPU time: simplify the expression or narrow \
         the query"
    )]
    Budget(u128),
    /// An item could not be rendered as JSON to be filtered.
    #[error("Failed to render item for filtering: {0}")]
    Render(String),
}

impl FilterError {
    /// The message without the `Failed to …:` prefix.
    pub fn detail(&self) -> std::borrow::Cow<'_, str> {
        match self {
            FilterError::Parse(s) | FilterError::Invalid(s) | FilterError::Render(s) => s.into(),
            FilterError::Budget(_) => self.to_string().into(),
        }
    }
}

impl Filter {
    /// Parses an expression. An empty expression is a syntax error, as in go-bexpr; callers
    /// treat an empty or absent `?filter=` as "no filter" before getting here.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        let mut tree = parser::parse(expr).map_err(FilterError::Parse)?;
        compile_regexes(&mut tree)?;
        Ok(Filter {
            expr: tree,
            source: expr.to_string(),
        })
    }

    /// The expression text this filter was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the document matches.
    pub fn matches(&self, doc: &Value) -> Result<bool, FilterError> {
        eval::eval(&self.expr, doc).map_err(FilterError::Invalid)
    }

    /// Whether the JSON rendering of `item` matches.
    pub fn matches_item<T: Serialize + ?Sized>(&self, item: &T) -> Result<bool, FilterError> {
        let doc = serde_json::to_value(item).map_err(|e| FilterError::Render(e.to_string()))?;
        self.matches(&doc)
    }

    /// Keeps the items whose JSON rendering matches, in order.
    ///
    /// A client chooses the expression, so one pass may take at most `CPU_BUDGET` of this
    /// thread's CPU time; past it the request is refused with `FilterError::Budget`. (The
    /// HTTP layer runs filtered requests on a runtime of their own, so the API's workers never
    /// wait behind a pass.)
    pub fn apply<T: Serialize>(&self, items: Vec<T>) -> Result<Vec<T>, FilterError> {
        self.apply_within_budget(items, CPU_BUDGET)
    }

    fn apply_within_budget<T: Serialize>(
        &self,
        items: Vec<T>,
        budget: Duration,
    ) -> Result<Vec<T>, FilterError> {
        let started = thread_cpu_time();
        let mut kept = Vec::with_capacity(items.len());
        for (seen, item) in items.into_iter().enumerate() {
            if self.matches_item(&item)? {
                kept.push(item);
            }
            let clock_due = (seen + 1).is_multiple_of(ITEMS_PER_CLOCK_READ);
            if clock_due && thread_cpu_time().saturating_sub(started) > budget {
                return Err(FilterError::Budget(budget.as_millis()));
            }
        }
        Ok(kept)
    }
}

/// The most CPU time one pass of a filter over a result may take.
pub const CPU_BUDGET: Duration = Duration::from_millis(50);

/// How many items a pass matches between two readings of the CPU clock: each reading is a
/// system call, which would cost about as much as matching a simple item.
const ITEMS_PER_CLOCK_READ: usize = 16;

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // Cannot fail for the calling thread's own clock.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Compiles the pattern of every `matches` / `not matches`, as go-bexpr does when it builds
/// the evaluator, so a bad pattern is reported up front.
fn compile_regexes(expr: &mut Expr) -> Result<(), FilterError> {
    match expr {
        Expr::Or(terms) | Expr::And(terms) => terms.iter_mut().try_for_each(compile_regexes),
        Expr::Not(e) => compile_regexes(e),
        Expr::Match(m) => {
            if !matches!(m.op, MatchOp::Matches | MatchOp::NotMatches) {
                return Ok(());
            }
            let Some(value) = m.value.as_mut() else {
                return Ok(());
            };
            match re2::compile(&value.raw) {
                Ok(re) => {
                    value.regex = Some(re);
                    Ok(())
                }
                Err(e) => Err(FilterError::Parse(format!(
                    "Failed to compile regular expression {}: {}",
                    go_quote(&value.raw),
                    regex_error_text(&e)
                ))),
            }
        }
    }
}

/// The one-line gist of a regex error (the crate's own text spans several lines).
fn regex_error_text(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let gist = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or(text.trim());
            format!("error parsing regexp: {gist}")
        }
        // Go's RE2 says so of a program past its size limit.
        regex::Error::CompiledTooBig(_) => "error parsing regexp: expression too large".into(),
        other => other.to_string(),
    }
}

/// Go's `strconv.Quote` (`%q`), which go-bexpr's messages use for selectors and values.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service() -> Value {
        json!({
            "ID": "web1",
            "Service": "web",
            "Tags": ["v1", "primary"],
            "Meta": {"version": "2", "env": "prod", "my-key": "x", "a.b": "dotted"},
            "Port": 80,
            "Weight": 1.5,
            "Address": "",
            "EnableTagOverride": false,
            "TaggedAddresses": null,
            "Weights": {"Passing": 1, "Warning": 1},
            "Ports": [80, 443],
            "Flags": [true],
            "Empty": {},
            "NoTags": []
        })
    }

    fn health() -> Value {
        json!({
            "Node": {"Node": "node1", "Address": "10.0.0.1", "Meta": {"rack": "r1"}},
            "Service": {"ID": "web1", "Service": "web", "Tags": ["v1"], "Meta": {"version": "2"}},
            "Checks": [
                {"CheckID": "serfHealth", "Status": "passing", "ServiceTags": [], "Definition": {}},
                {"CheckID": "service:web1", "Status": "critical", "ServiceTags": ["v1"],
                 "Definition": {"Interval": "10s"}}
            ]
        })
    }

    fn eval_on(doc: &Value, expr: &str) -> bool {
        let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        f.matches(doc).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    fn check(doc: &Value, cases: &[(&str, bool)]) {
        for (expr, want) in cases {
            assert_eq!(eval_on(doc, expr), *want, "{expr}");
        }
    }

    fn eval_err(doc: &Value, expr: &str) -> FilterError {
        let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        match f.matches(doc) {
            Ok(b) => panic!("{expr}: evaluated to {b}"),
            Err(e) => e,
        }
    }

    #[test]
    fn equality_on_strings_numbers_and_bools() {
        check(
            &service(),
            &[
                ("Service == web", true),
                ("Service == \"web\"", true),
                ("Service == `web`", true),
                ("Service == api", false),
                ("Service != api", true),
                ("Service != web", false),
                ("ID == web1", true),
                ("Port == 80", true),
                ("Port == \"80\"", true),
                ("Port == 81", false),
                ("Port != 81", true),
                ("Port == \"0x50\"", true),
                ("Weight == 1.5", true),
                ("Weight == 1.50", true),
                ("Weight != 2", true),
                ("EnableTagOverride == false", true),
                ("EnableTagOverride == False", true),
                ("EnableTagOverride == 0", true),
                ("EnableTagOverride != true", true),
                ("Weights.Passing == 1", true),
                ("Address == \"\"", true),
            ],
        );
    }

    #[test]
    fn in_and_contains_on_strings_lists_and_maps() {
        check(
            &service(),
            &[
                // lists: element membership
                ("\"v1\" in Tags", true),
                ("v1 in Tags", true),
                ("Tags contains \"primary\"", true),
                ("Tags contains v2", false),
                ("v2 not in Tags", true),
                ("v1 not in Tags", false),
                ("Tags not contains v1", false),
                ("80 in Ports", true),
                ("8080 in Ports", false),
                ("Ports contains 443", true),
                ("true in Flags", true),
                ("x in NoTags", false),
                // maps: key membership
                ("Meta contains version", true),
                ("\"version\" in Meta", true),
                ("\"2\" in Meta", false),
                ("Meta not contains nope", true),
                ("\"my-key\" in Meta", true),
                // strings: substring
                ("Service contains we", true),
                ("\"eb\" in Service", true),
                ("Service not contains api", true),
                ("\"\" in Service", true),
            ],
        );
    }

    #[test]
    fn emptiness() {
        check(
            &service(),
            &[
                ("Tags is not empty", true),
                ("Tags is empty", false),
                ("NoTags is empty", true),
                ("Meta is not empty", true),
                ("Empty is empty", true),
                ("Address is empty", true),
                ("Service is empty", false),
                ("Service is not empty", true),
                // null and missing values are empty
                ("TaggedAddresses is empty", true),
                ("TaggedAddresses is not empty", false),
                ("Missing is empty", true),
                ("Missing is not empty", false),
                ("Meta.missing is empty", true),
            ],
        );
    }

    #[test]
    fn regex_matching() {
        check(
            &service(),
            &[
                ("Service matches \"^w.b$\"", true),
                ("Service matches `^w`", true),
                ("Service matches \"^api\"", false),
                ("Service not matches \"^api\"", true),
                ("ID matches `\\d$`", true),
                ("ID matches eb", true), // unanchored
                ("Meta.version matches `^[0-9]+$`", true),
                ("Meta.nope matches `.*`", false),
                ("Meta.nope not matches `.*`", true),
            ],
        );
        let e = Filter::parse("Service matches \"(\"").unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Failed to create boolean expression evaluator: \
                 Failed to compile regular expression \"(\": error parsing regexp: "
            ),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'), "{e}");
        let e = Filter::parse(r#"Service matches "(\\w{1000}){1000}""#).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("error parsing regexp: expression too large"),
            "{e}"
        );
    }

    #[test]
    fn nested_selectors_and_quoted_keys() {
        check(
            &service(),
            &[
                ("Meta.version == 2", true),
                ("Meta.version == \"2\"", true),
                ("Meta[\"version\"] == 2", true),
                ("Meta[`my-key`] == x", true),
                ("Meta[\"a.b\"] == dotted", true),
                ("Meta.env != dev", true),
            ],
        );
        check(
            &health(),
            &[
                ("Service.Meta.version == \"2\"", true),
                ("Service.Service == web", true),
                ("Node.Meta.rack == r1", true),
                ("Node.Meta[\"rack\"] matches `^r`", true),
                ("v1 in Service.Tags", true),
            ],
        );
    }

    #[test]
    fn missing_fields_are_absent_values() {
        check(
            &service(),
            &[
                ("Meta.missing == x", false),
                ("Meta.missing != x", true),
                ("x in Meta.missing", false),
                ("x not in Meta.missing", true),
                ("Nope == x", false),
                ("Nope != x", true),
                ("Nope.Deeper == x", false),
                ("Nope.Deeper != x", true),
                // a path that runs into a scalar or null is absent too
                ("Service.Name == web", false),
                ("Service.Name is empty", true),
                ("TaggedAddresses.lan == x", false),
                ("not Nope == x", true),
            ],
        );
    }

    #[test]
    fn selectors_through_lists_match_any_element() {
        check(
            &health(),
            &[
                ("Checks.Status == passing", true),
                ("Checks.Status == critical", true),
                ("Checks.Status == warning", false),
                // any element that differs
                ("Checks.Status != passing", true),
                ("Checks.Status != warning", true),
                ("not Checks.Status == critical", false),
                (
                    "Checks.CheckID == serfHealth and Checks.Status == critical",
                    true,
                ),
                ("v1 in Checks.ServiceTags", true),
                ("Checks.ServiceTags is empty", true),
                ("Checks.ServiceTags is not empty", true),
                ("Checks.Definition.Interval == \"10s\"", true),
                ("Checks.Definition.Timeout is empty", true),
                ("Checks.Status matches `^crit`", true),
                ("Checks is not empty", true),
            ],
        );
        let none = json!({"Checks": []});
        check(
            &none,
            &[
                ("Checks.Status == passing", false),
                // nothing to compare: false whatever the operator
                ("Checks.Status != passing", false),
                ("Checks.Status is empty", false),
                ("not Checks.Status == passing", true),
                ("Checks is empty", true),
            ],
        );
        let nested = json!({"A": [{"B": [{"C": 1}, {"C": 2}]}, {"B": []}]});
        check(&nested, &[("A.B.C == 2", true), ("A.B.C == 3", false)]);
    }

    #[test]
    fn logic_and_precedence() {
        let s = service();
        check(
            &s,
            &[
                ("Service == web and Port == 80", true),
                ("Service == web and Port == 81", false),
                ("Service == api or Port == 80", true),
                ("Service == api or Port == 81", false),
                ("not Service == api", true),
                ("not Service == web", false),
                ("not not Service == web", true),
                // not > and > or
                ("Service == api and Port == 81 or Port == 80", true),
                ("Service == api and (Port == 81 or Port == 80)", false),
                ("Port == 80 or Port == 81 and Service == api", true),
                ("(Port == 80 or Port == 81) and Service == api", false),
                ("not Service == api and Port == 80", true),
                ("not (Service == web and Port == 81)", true),
                ("not (Service == web or Port == 81)", false),
                ("not Service == web or Port == 80", true),
                ("((Service == web))", true),
                ("(Service == web) and (v1 in Tags)", true),
            ],
        );
    }

    #[test]
    fn short_circuit_skips_errors_on_the_untaken_side() {
        let s = service();
        assert!(eval_on(&s, "Service == web or Port == abc"));
        assert!(!eval_on(&s, "Service == api and Port == abc"));
        assert!(Filter::parse("Port == abc or Service == web")
            .unwrap()
            .matches(&s)
            .is_err());
    }

    #[test]
    fn type_errors() {
        let s = service();
        let cases = [
            (
                "Port == abc",
                "Failed to coerce value \"abc\" for selector \"Port\": \
                 strconv.ParseInt: parsing \"abc\": invalid syntax",
            ),
            (
                "Port == 80.5",
                "Failed to coerce value \"80.5\" for selector \"Port\": \
                 strconv.ParseInt: parsing \"80.5\": invalid syntax",
            ),
            (
                "Weight == x",
                "Failed to coerce value \"x\" for selector \"Weight\": \
                 strconv.ParseFloat: parsing \"x\": invalid syntax",
            ),
            (
                "EnableTagOverride == yes",
                "Failed to coerce value \"yes\" for selector \"EnableTagOverride\": \
                 strconv.ParseBool: parsing \"yes\": invalid syntax",
            ),
            (
                "abc in Ports",
                "Failed to coerce value \"abc\" for selector \"Ports\": \
                 strconv.ParseInt: parsing \"abc\": invalid syntax",
            ),
            (
                "Tags == v1",
                "Invalid match operator \"Equal\" for selector \"Tags\"",
            ),
            (
                "Meta != x",
                "Invalid match operator \"Not Equal\" for selector \"Meta\"",
            ),
            (
                "Port contains 8",
                "Invalid match operator \"In\" for selector \"Port\"",
            ),
            (
                "Port is empty",
                "Invalid match operator \"Is Empty\" for selector \"Port\"",
            ),
            (
                "Tags matches v",
                "Invalid match operator \"Matches\" for selector \"Tags\"",
            ),
            (
                "EnableTagOverride not matches x",
                "Invalid match operator \"Not Matches\" for selector \"EnableTagOverride\"",
            ),
        ];
        for (expr, want) in cases {
            let e = eval_err(&s, expr);
            assert_eq!(e, FilterError::Invalid(want.to_string()), "{expr}");
            assert_eq!(
                e.to_string(),
                format!("Failed to create boolean expression evaluator: {want}")
            );
        }
        let h = health();
        assert_eq!(
            eval_err(&h, "x in Checks").detail(),
            "Invalid match operator \"In\" for selector \"Checks\""
        );
        assert_eq!(
            eval_err(&h, "Checks == x").detail(),
            "Invalid match operator \"Equal\" for selector \"Checks\""
        );
    }

    #[test]
    fn parse_errors_display_like_consul() {
        let e = Filter::parse("Service == ").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to create boolean expression evaluator: 1:12 (11): no match found, \
             expected: \"-\", \"0\", \"\\\"\", \"`\", [ \\t\\r\\n], [1-9] or [a-zA-Z]"
        );
        assert!(matches!(e, FilterError::Parse(_)));
        assert_eq!(
            Filter::parse("Service = web").unwrap_err().detail(),
            "1:9 (8): no match found, expected: \"!=\", \"==\", \"contains\", \"in\", \
             \"is\", \"matches\", \"not\" or [ \\t\\r\\n]"
        );
        assert_eq!(
            Filter::parse("Service == web and").unwrap_err().detail(),
            "1:19 (18): no match found, expected: [ \\t\\r\\n]"
        );
        assert_eq!(
            Filter::parse("(Service == web").unwrap_err().detail(),
            "1:16 (15): rule \"grouping\": Unmatched parentheses"
        );
        assert_eq!(
            Filter::parse("Service == web)").unwrap_err().detail(),
            "1:15 (14): no match found, expected: \".\", \"[\", [ \\t\\r\\n], \
             [a-zA-Z0-9_] or EOF"
        );
        assert_eq!(
            Filter::parse("Meta[version] == 2").unwrap_err().detail(),
            "1:6 (5): rule \"index\": Invalid index"
        );
        assert_eq!(
            Filter::parse("Service == \"web").unwrap_err().detail(),
            "1:16 (15): rule \"string\": Unterminated string literal"
        );
        assert_eq!(
            Filter::parse("Port == 80x").unwrap_err().detail(),
            "1:11 (10): rule \"number\": Invalid number literal"
        );
        assert_eq!(
            Filter::parse("v1 in \"Tags\"").unwrap_err().detail(),
            "1:7 (6): rule \"match\": Invalid selector"
        );
        assert_eq!(
            Filter::parse("Service == web-1").unwrap_err().detail(),
            "1:15 (14): no match found, expected: \".\", \"[\", [ \\t\\r\\n], \
             [a-zA-Z0-9_] or EOF"
        );
    }

    #[test]
    fn apply_filters_serializable_items() {
        #[derive(Serialize, Debug, PartialEq)]
        #[serde(rename_all = "PascalCase")]
        struct Svc {
            #[serde(rename = "ID")]
            id: String,
            tags: Vec<String>,
            port: u16,
        }
        let items = vec![
            Svc {
                id: "a".into(),
                tags: vec!["v1".into()],
                port: 80,
            },
            Svc {
                id: "b".into(),
                tags: vec![],
                port: 81,
            },
            Svc {
                id: "c".into(),
                tags: vec!["v1".into()],
                port: 82,
            },
        ];
        let f = Filter::parse("v1 in Tags and Port != 82").unwrap();
        let kept = f.apply(items).unwrap();
        assert_eq!(
            kept.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert!(f
            .matches_item(&Svc {
                id: "d".into(),
                tags: vec!["v1".into()],
                port: 1
            })
            .unwrap());
        assert_eq!(f.source(), "v1 in Tags and Port != 82");

        let bad = Filter::parse("Port == x").unwrap();
        assert!(bad
            .apply(vec![Svc {
                id: "a".into(),
                tags: vec![],
                port: 1
            }])
            .is_err());
        assert_eq!(bad.apply(Vec::<Svc>::new()).unwrap(), vec![]);
    }

    #[test]
    fn quoting_matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\t\n\u{1}é"), "\"\\t\\n\\x01é\"");
        assert_eq!(go_quote("`"), "\"`\"");
    }

    #[test]
    fn a_pass_over_its_cpu_budget_is_stopped() {
        let f = Filter::parse(r#"Service matches "\\w{200}x" or Service matches "y$""#).unwrap();
        let items: Vec<_> = (0..200)
            .map(|i| json!({"Service": format!("{}{i}", "s".repeat(300))}))
            .collect();
        let stopped = f
            .apply_within_budget(items.clone(), Duration::from_nanos(1))
            .unwrap_err();
        assert!(matches!(stopped, FilterError::Budget(_)), "{stopped}");
        assert!(stopped.to_string().contains("simplify the expression"));
        assert!(f
            .apply_within_budget(items, Duration::MAX)
            .unwrap()
            .is_empty());
    }
}
