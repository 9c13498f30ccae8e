//! Prepared-query templates (Consul's `prepared_query/template.go` and `walk.go`): every
//! string of a template's `Service` is interpolated with HIL's `${...}` syntax when the
//! template runs, from the name it was reached by (`name.full`, `name.prefix`,
//! `name.suffix`), the agent's network segment (`agent.segment`) and the template's regular
//! expression matched against the name (`match(N)`, empty when out of range).

use crate::types::prepared_query::{PreparedQuery, ServiceQuery, TEMPLATE_NAME_PREFIX_MATCH};
use regex::Regex;

/// A template checked once and ready to render for any name.
pub struct CompiledTemplate {
    query: PreparedQuery,
    re: Option<Regex>,
}

/// Checks a template as Consul's `Compile` does: a known type, interpolations that parse, a
/// regular expression that compiles, and a render for its own name that succeeds.
pub fn compile(query: &PreparedQuery) -> Result<CompiledTemplate, String> {
    if query.template.kind != TEMPLATE_NAME_PREFIX_MATCH {
        return Err(format!("Bad Template.Type '{}'", query.template.kind));
    }
    let mut service = query.service.clone();
    visit_strings(&mut service, &mut |path, value| {
        parse(value)
            .map(|_| ())
            .map_err(|e| format!("Bad format '{value}' in Service{path}: {e}"))
    })?;
    let re = match query.template.regexp.as_str() {
        "" => None,
        pattern => Some(Regex::new(pattern).map_err(|e| format!("Bad Regexp: {e}"))?),
    };
    let compiled = CompiledTemplate {
        query: query.clone(),
        re,
    };
    compiled.render(&query.name, "")?;
    Ok(compiled)
}

impl CompiledTemplate {
    /// The query as it runs for `name` (the whole name looked up) on an agent in `segment`.
    pub fn render(&self, name: &str, segment: &str) -> Result<PreparedQuery, String> {
        let mut query = self.query.clone();
        let matches: Vec<String> = self
            .re
            .as_ref()
            .and_then(|re| re.captures(name))
            .map(|caps| {
                caps.iter()
                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let prefix = query.name.clone();
        let suffix = name
            .strip_prefix(prefix.as_str())
            .unwrap_or(name)
            .to_string();
        let lookup = |expr: &Expr| -> Result<String, String> {
            match expr {
                Expr::Var(v) => match v.as_str() {
                    "name.full" => Ok(name.to_string()),
                    "name.prefix" => Ok(prefix.clone()),
                    "name.suffix" => Ok(suffix.clone()),
                    "agent.segment" => Ok(segment.to_string()),
                    other => Err(format!("unknown variable accessed: {other}")),
                },
                Expr::Match(i) => Ok(usize::try_from(*i)
                    .ok()
                    .and_then(|i| matches.get(i))
                    .cloned()
                    .unwrap_or_default()),
            }
        };
        visit_strings(&mut query.service, &mut |path, value| {
            let parts =
                parse(value).map_err(|e| format!("Bad format '{value}' in Service{path}: {e}"))?;
            let mut out = String::new();
            for part in &parts {
                match part {
                    Part::Text(t) => out.push_str(t),
                    Part::Expr(e) => out.push_str(&lookup(e).map_err(|e| {
                        format!("Bad evaluation for '{value}' in Service{path}: {e}")
                    })?),
                }
            }
            *value = out;
            Ok(())
        })?;
        if query.template.remove_empty_tags {
            if let Some(tags) = &mut query.service.tags {
                tags.retain(|t| !t.is_empty());
            }
        }
        Ok(query)
    }
}

/// Calls `f` on every string of a service query with its path, in the struct's field order,
/// as Consul's `walk` does (map values are visited, keys are not).
fn visit_strings(
    svc: &mut ServiceQuery,
    f: &mut dyn FnMut(&str, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    fn list(
        path: &str,
        items: &mut Option<Vec<String>>,
        f: &mut dyn FnMut(&str, &mut String) -> Result<(), String>,
    ) -> Result<(), String> {
        for (i, item) in items.iter_mut().flatten().enumerate() {
            f(&format!("{path}[{i}]"), item)?;
        }
        Ok(())
    }
    fn map(
        path: &str,
        items: &mut Option<std::collections::BTreeMap<String, String>>,
        f: &mut dyn FnMut(&str, &mut String) -> Result<(), String>,
    ) -> Result<(), String> {
        for (key, value) in items.iter_mut().flatten() {
            f(&format!("{path}[{key}]"), value)?;
        }
        Ok(())
    }
    f(".Service", &mut svc.service)?;
    f(".SamenessGroup", &mut svc.sameness_group)?;
    list(".Failover.Datacenters", &mut svc.failover.datacenters, f)?;
    for (i, target) in svc.failover.targets.iter_mut().flatten().enumerate() {
        let at = format!(".Failover.Targets[{i}]");
        f(&format!("{at}.Peer"), &mut target.peer)?;
        f(&format!("{at}.Datacenter"), &mut target.datacenter)?;
        f(&format!("{at}.Partition"), &mut target.partition)?;
        f(&format!("{at}.Namespace"), &mut target.namespace)?;
    }
    list(".IgnoreCheckIDs", &mut svc.ignore_check_ids, f)?;
    f(".Near", &mut svc.near)?;
    list(".Tags", &mut svc.tags, f)?;
    map(".NodeMeta", &mut svc.node_meta, f)?;
    map(".ServiceMeta", &mut svc.service_meta, f)?;
    f(".Peer", &mut svc.peer)
}

/// One interpolation: a variable, or `match(N)`.
#[derive(Debug, PartialEq)]
enum Expr {
    Var(String),
    Match(i64),
}

#[derive(Debug, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// Splits a HIL string into text and interpolations; `$${` is a literal `${`.
fn parse(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            text.push_str(&rest[..at - 1]);
            text.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        text.push_str(&rest[..at]);
        let body_start = at + 2;
        let Some(len) = rest[body_start..].find('}') else {
            return Err(format!(
                "parse error at 1:{}: unterminated interpolation sequence",
                s.len() - rest.len() + at + 1
            ));
        };
        let body = rest[body_start..body_start + len].trim();
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        parts.push(Part::Expr(expression(body)?));
        rest = &rest[body_start + len + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() || parts.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

fn expression(body: &str) -> Result<Expr, String> {
    let is_ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    if let Some(args) = body.strip_suffix(')') {
        let Some((func, arg)) = args.split_once('(') else {
            return Err(format!("parse error: unexpected ')' in '{body}'"));
        };
        let func = func.trim();
        if func != "match" {
            return Err(format!("unknown function called: {func}"));
        }
        let arg = arg.trim();
        return arg
            .parse::<i64>()
            .map(Expr::Match)
            .map_err(|_| format!("match: argument 1 should be type int, got {arg:?}"));
    }
    if is_ident(body) {
        return Ok(Expr::Var(body.to_string()));
    }
    Err(format!("parse error: invalid interpolation '{body}'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::prepared_query::QueryTemplate;

    fn template(name: &str, regexp: &str, service: &str, tags: &[&str]) -> PreparedQuery {
        PreparedQuery {
            name: name.into(),
            template: QueryTemplate {
                kind: TEMPLATE_NAME_PREFIX_MATCH.into(),
                regexp: regexp.into(),
                remove_empty_tags: true,
            },
            service: ServiceQuery {
                service: service.into(),
                tags: Some(tags.iter().map(|t| t.to_string()).collect()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn renders_names_and_regexp_matches() {
        let t = template(
            "geo-db-",
            "^geo-db-(.*?)-([^\\-]+?)$",
            "mysql-${match(1)}",
            &[
                "${match(2)}",
                "${name.suffix}",
                "${match(7)}",
                "$${literal}",
            ],
        );
        let q = compile(&t)
            .unwrap()
            .render("geo-db-customer-primary", "")
            .unwrap();
        assert_eq!(q.service.service, "mysql-customer");
        assert_eq!(
            q.service.tags.unwrap(),
            ["primary", "customer-primary", "${literal}"]
        );
        let t = template("", "", "${name.full}", &[]);
        let q = compile(&t).unwrap().render("anything", "").unwrap();
        assert_eq!(q.service.service, "anything");
    }

    #[test]
    fn refuses_what_consul_refuses() {
        let mut bad_type = template("x", "", "s", &[]);
        bad_type.template.kind = "nope".into();
        assert_eq!(
            compile(&bad_type).err().unwrap(),
            "Bad Template.Type 'nope'"
        );
        let err = compile(&template("x", "", "${nope}", &[])).err().unwrap();
        assert_eq!(
            err,
            "Bad evaluation for '${nope}' in Service.Service: unknown variable accessed: nope"
        );
        let err = compile(&template("x", "", "${name.full", &[]))
            .err()
            .unwrap();
        assert!(
            err.starts_with("Bad format '${name.full' in Service.Service: "),
            "{err}"
        );
        let err = compile(&template("x", "(", "s", &[])).err().unwrap();
        assert!(err.starts_with("Bad Regexp: "), "{err}");
    }
}
