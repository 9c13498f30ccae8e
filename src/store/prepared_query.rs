//! The prepared-query domain (Consul's `state/prepared_query.go`): queries by ID, with indexes
//! by name, by template name and by session. What depends only on the query itself (its
//! service, DNS TTL, template syntax) is checked before the command is built; what depends on
//! the other rows (name clashes, the session) is checked here, inside the write.
//!
//! Index and watch rules: every read reports the table's index (Consul's `maxIndexTxn`); a
//! single read watches its ID, a list the whole table.

use super::acl::IdRef;
use super::catalog::Marker;
use super::error::{Result, StoreError};
use super::tables::{
    PREPARED_QUERIES, PREPARED_QUERY_NAMES, PREPARED_QUERY_SESSIONS, PREPARED_QUERY_TEMPLATES,
    SESSIONS,
};
use super::{ReadTx, Readable, WatchSet, WriteTx};
use crate::types::acl::is_uuid;
use crate::types::prepared_query::PreparedQuery;

fn rejected(message: String) -> StoreError {
    StoreError::Rejected(message)
}

/// The index rows a query owns besides its own row.
fn index_rows(query: &PreparedQuery) -> (Option<String>, Option<String>, Option<String>) {
    let name = (!query.name.is_empty()).then(|| query.name.to_lowercase());
    let template = query.is_template().then(|| query.name.to_lowercase());
    let session = (!query.session.is_empty()).then(|| format!("{}\0{}", query.session, query.id));
    (name, template, session)
}

/// Creates (`create`) or replaces a query (`preparedQuerySetTxn`). An update of a missing
/// query, a name another query has or that is another query's ID, a second template with the
/// empty name, and a session that doesn't exist are refused with Consul's texts.
pub fn set(tx: &mut WriteTx, query: PreparedQuery, create: bool) -> Result<()> {
    let existing = tx.get(PREPARED_QUERIES, &query.id)?;
    match (&existing, create) {
        (None, false) => {
            return Err(rejected(format!(
                "Cannot modify non-existent prepared query: '{}'",
                query.id
            )))
        }
        (Some(_), true) => {
            return Err(rejected(format!(
                "prepared query ID {} is already in use",
                query.id
            )))
        }
        _ => {}
    }
    let (name, template, session) = index_rows(&query);
    let other = |row: Option<IdRef>| row.filter(|r| r.id != query.id);
    if let Some(name) = &name {
        if other(tx.get(PREPARED_QUERY_NAMES, name)?).is_some() {
            return Err(rejected(format!(
                "name '{}' aliases an existing query name",
                query.name
            )));
        }
    } else if template.is_some() && other(tx.get(PREPARED_QUERY_TEMPLATES, "")?).is_some() {
        return Err(rejected(
            "a query template with an empty name already exists".into(),
        ));
    }
    if is_uuid(&query.name)
        && tx
            .get(PREPARED_QUERIES, &query.name.to_lowercase())?
            .is_some()
    {
        return Err(rejected(format!(
            "name '{}' aliases an existing query ID",
            query.name
        )));
    }
    if !query.session.is_empty() && tx.get(SESSIONS, &query.session)?.is_none() {
        return Err(rejected(format!("invalid session {:?}", query.session)));
    }
    let index = tx.index();
    let query = PreparedQuery {
        create_index: existing.as_ref().map_or(index, |e| e.create_index),
        modify_index: index,
        ..query
    };
    if let Some(old) = &existing {
        remove_index_rows(tx, old)?;
    }
    let id = IdRef {
        id: query.id.clone(),
    };
    if let Some(name) = &name {
        tx.put(PREPARED_QUERY_NAMES, name, &id)?;
    }
    if let Some(template) = &template {
        tx.put(PREPARED_QUERY_TEMPLATES, template, &id)?;
    }
    if let Some(session) = &session {
        tx.put(PREPARED_QUERY_SESSIONS, session, &Marker)?;
    }
    tx.put(PREPARED_QUERIES, &query.id.clone(), &query)
}

fn remove_index_rows(tx: &mut WriteTx, query: &PreparedQuery) -> Result<()> {
    let (name, template, session) = index_rows(query);
    if let Some(name) = name {
        tx.delete(PREPARED_QUERY_NAMES, &name)?;
    }
    if let Some(template) = template {
        tx.delete(PREPARED_QUERY_TEMPLATES, &template)?;
    }
    if let Some(session) = session {
        tx.delete(PREPARED_QUERY_SESSIONS, &session)?;
    }
    Ok(())
}

/// Deletes a query; deleting a missing one changes nothing.
pub fn delete(tx: &mut WriteTx, id: &str) -> Result<()> {
    if let Some(query) = tx.delete(PREPARED_QUERIES, id)? {
        remove_index_rows(tx, &query)?;
    }
    Ok(())
}

/// Deletes every query bound to `session` (the session was destroyed or invalidated).
pub fn delete_for_session(tx: &mut WriteTx, session: &str) -> Result<()> {
    let prefix = format!("{session}\0");
    for (key, _) in tx.scan_prefix(PREPARED_QUERY_SESSIONS, &prefix)? {
        delete(tx, &key[prefix.len()..])?;
    }
    Ok(())
}

/// One query by ID (`GET /v1/query/<id>`).
pub fn get(r: &ReadTx, ws: &mut WatchSet, id: &str) -> Result<(u64, Option<PreparedQuery>)> {
    ws.key(PREPARED_QUERIES.name, id);
    Ok((
        r.table_index(PREPARED_QUERIES.name)?,
        r.get(PREPARED_QUERIES, id)?,
    ))
}

/// Every query, by ID (`GET /v1/query`).
pub fn list(r: &ReadTx, ws: &mut WatchSet) -> Result<(u64, Vec<PreparedQuery>)> {
    ws.table(PREPARED_QUERIES.name);
    let all = r
        .scan_prefix(PREPARED_QUERIES, "")?
        .into_iter()
        .map(|(_, q)| q)
        .collect();
    Ok((r.table_index(PREPARED_QUERIES.name)?, all))
}

/// The query an execute or explain of `id_or_name` runs, before any template is rendered.
pub enum Resolved {
    /// A plain query, by ID or by exact name.
    Query(PreparedQuery),
    /// A template, by exact name or as the longest template name that prefixes the name.
    Template(PreparedQuery),
}

/// Finds the query for `id_or_name` (`PreparedQueryResolve`): by ID when it looks like one,
/// else by exact name, else the template with the longest name that prefixes it (names
/// compared case-insensitively). A template is never reached by its ID.
pub fn resolve(r: &impl Readable, id_or_name: &str) -> Result<(u64, Option<Resolved>)> {
    let index = r.table_index(PREPARED_QUERIES.name)?;
    if id_or_name.is_empty() {
        return Err(StoreError::Invalid("Missing query ID".into()));
    }
    let by_id = |id: &str| r.get(PREPARED_QUERIES, id);
    let wrap = |q: PreparedQuery| {
        if q.is_template() {
            Resolved::Template(q)
        } else {
            Resolved::Query(q)
        }
    };
    if is_uuid(id_or_name) {
        if let Some(query) = by_id(&id_or_name.to_lowercase())? {
            if query.is_template() {
                return Err(rejected(
                    "prepared query templates can only be resolved up by name, not by ID".into(),
                ));
            }
            return Ok((index, Some(Resolved::Query(query))));
        }
    }
    let lower = id_or_name.to_lowercase();
    if let Some(row) = r.get(PREPARED_QUERY_NAMES, &lower)? {
        return Ok((index, by_id(&row.id)?.map(wrap)));
    }
    let mut end = lower.len();
    loop {
        if lower.is_char_boundary(end) {
            if let Some(row) = r.get(PREPARED_QUERY_TEMPLATES, &lower[..end])? {
                return Ok((index, by_id(&row.id)?.map(wrap)));
            }
        }
        if end == 0 {
            return Ok((index, None));
        }
        end -= 1;
    }
}

/// One query by ID without watching (for checks before a write).
pub fn lookup(r: &impl Readable, id: &str) -> Result<Option<PreparedQuery>> {
    r.get(PREPARED_QUERIES, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shapes() {
        assert!(is_uuid("8f246b77-f3e1-ff88-5b48-8ec93abf3e05"));
        assert!(is_uuid("8F246B77-F3E1-FF88-5B48-8EC93ABF3E05"));
        assert!(!is_uuid("8f246b77-f3e1-ff88-5b48-8ec93abf3e0"));
        assert!(!is_uuid("8f246b77xf3e1-ff88-5b48-8ec93abf3e05"));
        assert!(!is_uuid("geo-db"));
    }
}
