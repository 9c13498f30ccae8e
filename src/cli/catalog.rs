//! `legate catalog datacenters|nodes|services`, as `consul catalog`: same flags, output and
//! exit codes.

use super::client::{connect, decode, parse_key_value, read_data, segment, HttpFlags};
use reqwest::Method;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Lists all known datacenters.
    Datacenters(DatacentersArgs),
    /// Lists all nodes in the given datacenter.
    Nodes(NodesArgs),
    /// Lists all registered services in a datacenter.
    Services(ServicesArgs),
}

#[derive(Debug, clap::Args)]
pub struct DatacentersArgs {
    #[command(flatten)]
    http: HttpFlags,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct NodesArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Output detailed information about the nodes including their addresses and metadata.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    detailed: Option<bool>,
    /// Node name to sort the node list by estimated round-trip time from that node.
    #[arg(long, default_value = "")]
    near: String,
    /// Metadata to filter nodes with the given `key=value` pairs (repeatable).
    #[arg(long = "node-meta", value_parser = parse_key_value)]
    node_meta: Vec<(String, String)>,
    /// Service id or name to filter nodes.
    #[arg(long, default_value = "")]
    service: String,
    /// Filter to use with the request (`@file`, `-` for stdin, else literal).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    filter: String,
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// Node id or name for which to list services.
    #[arg(long, default_value = "")]
    node: String,
    /// Metadata to filter nodes with the given `key=value` pairs (repeatable).
    #[arg(long = "node-meta", value_parser = parse_key_value)]
    node_meta: Vec<(String, String)>,
    /// Display each service's tags as a comma-separated list beside each service entry.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tags: Option<bool>,
    /// Filter to use with the request (`@file`, `-` for stdin, else literal).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    filter: String,
    args: Vec<String>,
}

pub async fn run(command: CatalogCommand) -> i32 {
    let result = match command {
        CatalogCommand::Datacenters(a) => datacenters(a).await,
        CatalogCommand::Nodes(a) => nodes(a).await,
        CatalogCommand::Services(a) => services(a).await,
    };
    super::client::exit_code(result)
}

pub(super) fn no_args(args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Too many arguments (expected 0, got {})",
            args.len()
        ))
    }
}

/// The query pairs of `-node-meta` (the API wants `key:value`) and `-near`.
fn narrowing(node_meta: &[(String, String)], near: &str) -> Vec<(&'static str, String)> {
    let mut query: Vec<(&str, String)> = node_meta
        .iter()
        .map(|(k, v)| ("node-meta", format!("{k}:{v}")))
        .collect();
    if !near.is_empty() {
        query.push(("near", near.to_string()));
    }
    query
}

/// Resolves `-filter` as the consul CLI does (`@file`, `-` for stdin, else the text).
fn load_filter(arg: &str) -> Result<String, String> {
    if arg.is_empty() {
        return Ok(String::new());
    }
    let data = read_data(arg).map_err(|e| format!("Could not process filter argument: {e}"))?;
    Ok(String::from_utf8_lossy(&data).into_owned())
}

async fn datacenters(a: DatacentersArgs) -> Result<(), String> {
    no_args(&a.args)?;
    let client = connect(&a.http)?;
    let fail = |e: String| format!("Error listing datacenters: {e}");
    let resp = client
        .ok(Method::GET, "/v1/catalog/datacenters", &[], None)
        .await
        .map_err(fail)?;
    let dcs: Vec<String> = decode(&resp.body).map_err(fail)?;
    for dc in dcs {
        println!("{dc}");
    }
    Ok(())
}

/// One row of `catalog nodes` (an `api.Node`, or a service instance's node).
struct NodeRow {
    node: String,
    id: String,
    address: String,
    datacenter: String,
    tagged_addresses: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn string_map(v: &Value, key: &str) -> BTreeMap<String, String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m: &Map<String, Value>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

impl NodeRow {
    /// From a `/v1/catalog/nodes` item (`meta_key` "Meta") or a `/v1/catalog/service/<name>`
    /// item (`meta_key` "NodeMeta").
    fn from_json(v: &Value, meta_key: &str) -> NodeRow {
        NodeRow {
            node: text(v, "Node"),
            id: text(v, "ID"),
            address: text(v, "Address"),
            datacenter: text(v, "Datacenter"),
            tagged_addresses: string_map(v, "TaggedAddresses"),
            meta: string_map(v, meta_key),
        }
    }

    fn cells(&self, detailed: bool) -> Vec<String> {
        let mut cells = vec![self.node.clone()];
        if detailed {
            cells.push(self.id.clone());
        } else {
            // The ID's first group only, as consul shortens it.
            let id = match self.id.find('-') {
                Some(i) if i > 0 => &self.id[..i],
                _ => &self.id,
            };
            cells.push(id.to_string());
        }
        cells.push(self.address.clone());
        cells.push(self.datacenter.clone());
        if detailed {
            cells.push(map_to_kv(&self.tagged_addresses));
            cells.push(map_to_kv(&self.meta));
        }
        cells
    }
}

/// `k=v` pairs sorted by key, joined with `, `.
fn map_to_kv(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lays rows out as `columnize` does: cells trimmed, every column but the last padded to its
/// widest cell, columns joined by two spaces.
pub(super) fn columnize(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.trim()).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

async fn nodes(a: NodesArgs) -> Result<(), String> {
    no_args(&a.args)?;
    let client = connect(&a.http)?;
    let filter = load_filter(&a.filter)?;
    let mut query = narrowing(&a.node_meta, &a.near);
    if !filter.is_empty() {
        query.push(("filter", filter));
    }
    let rows: Vec<NodeRow> = if a.service.is_empty() {
        let fail = |e: String| format!("Error listing nodes: {e}");
        let resp = client
            .ok(Method::GET, "/v1/catalog/nodes", &query, None)
            .await
            .map_err(fail)?;
        let items: Vec<Value> = decode(&resp.body).map_err(fail)?;
        items
            .iter()
            .map(|v| NodeRow::from_json(v, "Meta"))
            .collect()
    } else {
        let fail = |e: String| format!("Error listing nodes for service: {e}");
        let path = format!("/v1/catalog/service/{}", segment(&a.service));
        let resp = client
            .ok(Method::GET, &path, &query, None)
            .await
            .map_err(fail)?;
        let items: Vec<Value> = decode(&resp.body).map_err(fail)?;
        items
            .iter()
            .map(|v| NodeRow::from_json(v, "NodeMeta"))
            .collect()
    };
    if rows.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return Ok(());
    }
    let detailed = a.detailed.unwrap_or(false);
    let mut table = vec![if detailed {
        vec!["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
    } else {
        vec!["Node", "ID", "Address", "DC"]
    }
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>()];
    table.extend(rows.iter().map(|r| r.cells(detailed)));
    println!("{}", columnize(&table));
    Ok(())
}

async fn services(a: ServicesArgs) -> Result<(), String> {
    no_args(&a.args)?;
    let client = connect(&a.http)?;
    let filter = load_filter(&a.filter)?;
    let mut query = narrowing(&a.node_meta, "");
    if !filter.is_empty() {
        query.push(("filter", filter));
    }
    let mut services: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if a.node.is_empty() {
        let fail = |e: String| format!("Error listing services: {e}");
        let resp = client
            .ok(Method::GET, "/v1/catalog/services", &query, None)
            .await
            .map_err(fail)?;
        services = decode::<Option<BTreeMap<String, Option<Vec<String>>>>>(&resp.body)
            .map_err(fail)?
            .unwrap_or_default()
            .into_iter()
            .map(|(name, tags)| (name, tags.unwrap_or_default()))
            .collect();
    } else {
        let fail = |e: String| format!("Error listing services for node: {e}");
        let path = format!("/v1/catalog/node/{}", segment(&a.node));
        let resp = client
            .ok(Method::GET, &path, &query, None)
            .await
            .map_err(fail)?;
        let node: Value = decode(&resp.body).map_err(fail)?;
        if let Some(instances) = node.get("Services").and_then(Value::as_object) {
            for svc in instances.values() {
                let tags = services.entry(text(svc, "Service")).or_default();
                if let Some(list) = svc.get("Tags").and_then(Value::as_array) {
                    tags.extend(list.iter().filter_map(Value::as_str).map(String::from));
                }
            }
        }
    }
    if services.is_empty() {
        eprintln!("No services match the given query - try expanding your search.");
        return Ok(());
    }
    if a.tags.unwrap_or(false) {
        let rows: Vec<(String, String)> = services
            .into_iter()
            .map(|(name, mut tags)| {
                tags.sort();
                (name, tags.join(","))
            })
            .collect();
        println!("{}", tab_columns(&rows).trim());
    } else {
        for name in services.keys() {
            println!("{name}");
        }
    }
    Ok(())
}

/// Two columns as Go's `tabwriter` (padding 6, spaces) lays out `name\ttags\n` lines.
fn tab_columns(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0)
        + 6;
    rows.iter()
        .map(|(name, tags)| {
            let pad = width - name.chars().count();
            format!("{name}{}{tags}\n", " ".repeat(pad))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_pad_all_but_the_last() {
        let table = vec![
            row(&["Node", "ID", "Address", "DC"]),
            row(&["worker-01", "1b662d97", "10.4.5.31", "dc1"]),
        ];
        assert_eq!(
            columnize(&table),
            "Node       ID        Address    DC\nworker-01  1b662d97  10.4.5.31  dc1"
        );
    }

    #[test]
    fn short_id_is_the_first_group() {
        let n = NodeRow::from_json(
            &serde_json::json!({"Node": "n", "ID": "1b662d97-8b5c-3cc2-0ac0-96f55ad423b5",
                "Address": "a", "Datacenter": "dc1",
                "TaggedAddresses": {"wan": "w", "lan": "l"}, "Meta": {"k": "v"}}),
            "Meta",
        );
        assert_eq!(n.cells(false), row(&["n", "1b662d97", "a", "dc1"]));
        assert_eq!(n.cells(true)[4], "lan=l, wan=w");
        assert_eq!(n.cells(true)[5], "k=v");
    }

    #[test]
    fn tags_column_like_tabwriter() {
        let rows = vec![
            ("consul".to_string(), String::new()),
            ("web".to_string(), "a,b".to_string()),
        ];
        assert_eq!(tab_columns(&rows).trim(), "consul      \nweb         a,b");
    }
}
