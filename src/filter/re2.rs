//! Regular expressions as go-bexpr compiles them: Go's `regexp` (RE2 syntax), where the Perl
//! classes `\d`, `\w` and `\s` are ASCII-only. Rust's `regex` reads them as Unicode classes,
//! which both changes what matches and makes a pattern such as `\w{200}` compile into a
//! program thousands of times larger; so they are rewritten to their ASCII sets, and the
//! compiled program is capped, before a client's pattern is compiled. Go's `\Q...\E` (the text
//! between taken literally), which Rust's syntax lacks, is spelled out escaped.

use regex::{Regex, RegexBuilder};

/// The most memory a compiled pattern (and its lazy DFA) may take: Go's RE2 refuses programs
/// past a similar size ("expression too large").
const SIZE_LIMIT: usize = 1 << 20;

/// Compiles `pattern` with Go's meaning of the Perl classes.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&ascii_perl_classes(pattern))
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
}

/// `pattern` with `\d \D \w \W \s \S` spelled as the ASCII sets Go gives them, inside and
/// outside bracketed classes (Rust's classes nest, so a negated set fits inside one), and
/// `\Q...\E` outside classes as its text escaped (to the end of the pattern without `\E`).
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    // Depth of bracketed classes; a `]` right after `[` or `[^` is a literal.
    let mut depth = 0usize;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                if next == 'Q' && depth == 0 {
                    let mut literal = String::new();
                    while let Some(l) = chars.next() {
                        if l == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        literal.push(l);
                    }
                    out.push_str(&regex::escape(&literal));
                    continue;
                }
                let set = match next {
                    'd' => Some(("0-9", false)),
                    'D' => Some(("0-9", true)),
                    'w' => Some(("0-9A-Za-z_", false)),
                    'W' => Some(("0-9A-Za-z_", true)),
                    's' => Some(("\\t\\n\\f\\r ", false)),
                    'S' => Some(("\\t\\n\\f\\r ", true)),
                    _ => None,
                };
                match set {
                    Some((members, negated)) if depth > 0 && !negated => out.push_str(members),
                    Some((members, negated)) => {
                        out.push_str(if negated { "[^" } else { "[" });
                        out.push_str(members);
                        out.push(']');
                    }
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' => {
                out.push('[');
                if depth > 0 && chars.peek() == Some(&':') {
                    // A POSIX class such as `[:alpha:]`: copied through to its closing `]`.
                    for p in chars.by_ref() {
                        out.push(p);
                        if p == ']' {
                            break;
                        }
                    }
                    continue;
                }
                depth += 1;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                class_start = true;
            }
            ']' if depth > 0 && !at_class_start => {
                depth -= 1;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        let digit = compile(r"^\d+$").unwrap();
        assert!(digit.is_match("0123"));
        assert!(!digit.is_match("١٢٣")); // Arabic-Indic digits are \d in Rust, not in Go
        let word = compile(r"^\w+$").unwrap();
        assert!(word.is_match("web_01"));
        assert!(!word.is_match("wéb"));
        let space = compile(r"a\sb").unwrap();
        assert!(space.is_match("a b") && !space.is_match("a\u{a0}b"));
        assert!(compile(r"^\W$").unwrap().is_match("é"));
        assert!(compile(r"^[\w.-]+$").unwrap().is_match("web-1.dc1"));
        assert!(!compile(r"^[\w]+$").unwrap().is_match("wéb"));
        assert!(compile(r"^[^\d]+$").unwrap().is_match("abc"));
        assert!(compile(r"^[a\D]$").unwrap().is_match("x"));
        assert!(compile(r"^[]a]+$").unwrap().is_match("]a"));
        assert!(compile(r"^[[:alpha:]\d]+$").unwrap().is_match("a1"));
        assert!(compile(r"\\w").unwrap().is_match(r"\w"));
        assert!(compile(r"^\p{Greek}$").unwrap().is_match("α"));
    }

    /// Regression: `\w{200}x` compiled as Unicode made a program so large that matching it
    /// against 1,000 services held a worker thread for a second. As ASCII it is small.
    #[test]
    fn a_long_repeat_of_a_class_stays_small() {
        let small = |pattern: &str| RegexBuilder::new(pattern).size_limit(200_000).build();
        assert!(small(&ascii_perl_classes(r"\w{200}x")).is_ok());
        assert!(
            small(r"\w{200}x").is_err(),
            "the Unicode class is the large one"
        );
    }

    #[test]
    fn quoted_text_is_literal_as_in_go() {
        let quoted = compile(r"^a\Q.*+\Eb$").unwrap();
        assert!(quoted.is_match("a.*+b"));
        assert!(!quoted.is_match("axxb"));
        assert!(compile(r"^\Q(web)").unwrap().is_match("(web)"));
        assert!(compile(r"\Q\d\E").unwrap().is_match(r"\d"));
        assert!(
            compile(r"^[\Q]$").is_err(),
            "Go refuses \\Q inside a class too"
        );
    }

    #[test]
    fn programs_past_the_size_limit_are_refused() {
        let err = compile(r"(\w{1000}){1000}").unwrap_err();
        assert!(matches!(err, regex::Error::CompiledTooBig(_)), "{err}");
    }
}
