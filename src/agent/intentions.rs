//! Intentions on the agent: the writes of the intention APIs, each an edit of the
//! destination's `service-intentions` entry (read, edit, write back with check-and-set, again
//! if another write got in between), and the authorize cache that answers
//! `/v1/agent/connect/authorize` from memory.
//!
//! IDs and times of legacy intentions are decided here, before the command is built; the
//! entry then travels whole inside `Command::ConfigEntrySet`.

use crate::acl::Authorizer;
use crate::clock::now_ms;
use crate::store::{intention as stored, Command, Store, StoreError, Watch, WatchSet};
use crate::types::config_entry::{ConfigEntry, WILDCARD};
use crate::types::intention::{self, go_time, Intention, IntentionInput, Legacy, DEFAULT_NS};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

type Result<T> = std::result::Result<T, StoreError>;

/// How many times an edit is retried when a concurrent write changed the entry under it.
const CAS_ATTEMPTS: usize = 16;

fn rejected(message: impl Into<String>) -> StoreError {
    StoreError::Rejected(message.into())
}

/// Writes `planned(current entry)` with check-and-set on the entry's `ModifyIndex`, retrying
/// on a conflicting write. `planned` returns the entry to write, `None` to delete it.
async fn edit(
    store: &Store,
    destination: &str,
    planned: impl Fn(Option<ConfigEntry>) -> Result<Option<ConfigEntry>>,
) -> Result<()> {
    for _ in 0..CAS_ATTEMPTS {
        let current = stored::entry_of(&store.read()?, destination)?;
        let cas = current.as_ref().map_or(0, |e| e.modify_index);
        let command = match planned(current)? {
            Some(entry) => Command::ConfigEntrySet {
                entry: Box::new(entry),
                cas: Some(cas),
            },
            None if cas == 0 => return Ok(()),
            None => Command::ConfigEntryDelete {
                kind: intention::SERVICE_INTENTIONS_KIND.into(),
                name: destination.into(),
                cas: Some(cas),
            },
        };
        if store.apply(command).await?.applied() {
            return Ok(());
        }
    }
    Err(rejected(format!(
        "the intentions of {destination:?} kept changing during the write; try again"
    )))
}

/// Checks a whole edited entry: as a plain config-entry write, or a legacy one.
fn checked(mut entry: ConfigEntry, legacy: bool) -> Result<Option<ConfigEntry>> {
    let outcome = if legacy {
        intention::normalize(&mut entry, true).and_then(|_| intention::validate(&entry, true))
    } else {
        entry.check()
    };
    outcome.map_err(rejected)?;
    Ok(Some(entry))
}

/// The names an intention input must carry, with Consul's wildcard rules.
fn names(input: &IntentionInput) -> Result<()> {
    input.check_namespaces().map_err(StoreError::Invalid)?;
    if input.source_name.is_empty() || input.destination_name.is_empty() {
        return Err(rejected("SourceName and DestinationName must be set"));
    }
    Ok(())
}

/// `PUT /v1/connect/intentions/exact`: creates or replaces the intention `source → destination`
/// as a plain source of the destination's entry. A non-empty `Meta` becomes the entry's.
pub async fn upsert_exact(store: &Store, input: IntentionInput) -> Result<()> {
    names(&input)?;
    if !input.id.is_empty() {
        return Err(rejected("ID must not be specified"));
    }
    let destination = input.destination_name.clone();
    edit(store, &destination, |current| {
        if current.as_ref().is_some_and(intention::is_legacy) {
            return Err(rejected(legacy_managed(&destination)));
        }
        let meta = (!input.meta.is_empty()).then(|| input.meta.clone());
        let entry = intention::with_source(current, &destination, input.to_source(None), meta);
        checked(entry, false)
    })
    .await
}

fn legacy_managed(destination: &str) -> String {
    format!("the intentions of {destination:?} were created by ID (POST /v1/connect/intentions); edit them by ID")
}

fn config_managed(destination: &str) -> String {
    // Consul's `checkLegacyIntentionApplyAllowed` text.
    format!("cannot use legacy intention API to edit intentions with a destination of {destination:?} after editing them via a service-intentions config entry")
}

/// `DELETE /v1/connect/intentions/exact`: removes the source (and the entry with its last one).
pub async fn delete_exact(store: &Store, source: &str, destination: &str) -> Result<()> {
    edit(store, destination, |current| {
        let Some(entry) = current else {
            return Ok(None);
        };
        let legacy = intention::is_legacy(&entry);
        match intention::without_source(entry, |s| s.name == source) {
            Some(rest) => checked(rest, legacy),
            None => Ok(None),
        }
    })
    .await
}

/// `POST /v1/connect/intentions`: a legacy intention with a new ID; returns the ID.
pub async fn create_legacy(store: &Store, input: IntentionInput) -> Result<String> {
    if !input.id.is_empty() {
        return Err(rejected("ID must be empty when creating a new intention"));
    }
    names(&input)?;
    let now = go_time(now_ms());
    let legacy = Legacy {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: now.clone(),
        updated_at: now,
    };
    let id = legacy.id.clone();
    let destination = input.destination_name.clone();
    edit(store, &destination, |current| {
        if let Some(existing) = current.as_ref() {
            refuse_duplicate(existing, &input.source_name, "")?;
            if !intention::is_legacy(existing) {
                return Err(rejected(config_managed(&destination)));
            }
        }
        let source = input.to_source(Some(legacy.clone()));
        checked(
            intention::with_source(current, &destination, source, None),
            true,
        )
    })
    .await?;
    Ok(id)
}

/// Refuses a second intention from `source` to the entry's destination (one whose legacy ID is
/// not `own_id`), as Consul does.
fn refuse_duplicate(entry: &ConfigEntry, source: &str, own_id: &str) -> Result<()> {
    let taken = intention::sources(entry)
        .into_iter()
        .any(|s| s.name == source && (own_id.is_empty() || s.legacy_id != own_id));
    if !taken {
        return Ok(());
    }
    let dup = intention::intentions(entry)
        .into_iter()
        .find(|i| i.source_name == source);
    Err(rejected(format!(
        "duplicate intention found: {}",
        dup.map(|d| d.describe()).unwrap_or_default()
    )))
}

/// `PUT /v1/connect/intentions/<id>`: replaces a legacy intention, keeping its ID and creation
/// time. Moving it to another destination moves it between entries.
pub async fn update_legacy(store: &Store, id: &str, input: IntentionInput) -> Result<()> {
    names(&input)?;
    let Some(old) = stored::entry_with_id(&store.read()?, id)? else {
        return Err(rejected(format!(
            "Cannot modify non-existent intention: '{id}'"
        )));
    };
    let created_at = intention::sources(&old)
        .into_iter()
        .find(|s| s.legacy_id == id)
        .and_then(|s| s.legacy_create_time)
        .unwrap_or_else(|| go_time(now_ms()));
    let legacy = Legacy {
        id: id.to_string(),
        created_at,
        updated_at: go_time(now_ms()),
    };
    if old.name != input.destination_name {
        // Checked before the move's delete, so a refused move loses nothing.
        let target = crate::store::config_entry::lookup(
            &store.read()?,
            intention::SERVICE_INTENTIONS_KIND,
            &input.destination_name,
        )?;
        if let Some(target) = target {
            refuse_duplicate(&target, &input.source_name, id)?;
        }
        delete_legacy(store, id).await?;
    }
    let destination = input.destination_name.clone();
    edit(store, &destination, |current| {
        if current.as_ref().is_some_and(|e| !intention::is_legacy(e)) {
            return Err(rejected(config_managed(&destination)));
        }
        if let Some(existing) = current.as_ref() {
            refuse_duplicate(existing, &input.source_name, id)?;
        }
        let source = input.to_source(Some(legacy.clone()));
        // The slot of this ID, whatever its source name was.
        let current = current.and_then(|e| intention::without_source(e, |s| s.legacy_id == id));
        checked(
            intention::with_source(current, &destination, source, None),
            true,
        )
    })
    .await
}

/// `DELETE /v1/connect/intentions/<id>`.
pub async fn delete_legacy(store: &Store, id: &str) -> Result<()> {
    let Some(entry) = stored::entry_with_id(&store.read()?, id)? else {
        return Err(rejected(format!(
            "Cannot delete non-existent intention: '{id}'"
        )));
    };
    edit(store, &entry.name, |current| {
        let Some(current) = current else {
            return Ok(None);
        };
        match intention::without_source(current, |s| s.legacy_id == id) {
            Some(rest) => checked(rest, true),
            None => Ok(None),
        }
    })
    .await
}

// ----- the authorize cache -----

/// What a connection that no intention matches gets: `default_intention_policy` when
/// configured, else what the caller's token says (`IntentionDefaultAllow`: the ACL default
/// policy, allow for a management token or while ACLs are off), as Consul's authorize and
/// intention check decide.
#[derive(Debug, Clone)]
pub struct Fallback {
    configured: Option<bool>,
}

impl Fallback {
    pub fn from_config(config: &crate::config::Config) -> Fallback {
        Fallback {
            configured: config
                .default_intention_policy
                .as_deref()
                .map(|policy| policy == "allow"),
        }
    }

    /// Whether the connection is allowed, and why.
    pub fn decide(&self, caller: &Authorizer) -> (bool, &'static str) {
        match self.configured {
            Some(allow) => (allow, "Default intention policy"),
            None => (
                caller.intention_default_allow().is_allow(),
                "Default behavior configured by ACLs",
            ),
        }
    }
}

/// One compiled rule: the source it matches and the answer, reason included.
#[derive(Debug)]
struct Rule {
    source: String,
    allow: bool,
    reason: Arc<str>,
}

/// Per destination, its rules and those of `*` destinations, in precedence order.
#[derive(Debug, Default)]
struct Compiled {
    by_destination: HashMap<String, Vec<Arc<Rule>>>,
    /// For destinations without their own entry.
    wildcard: Vec<Arc<Rule>>,
}

impl Compiled {
    /// `intentions` is in precedence order, and every exact destination outranks every `*`
    /// one, so a destination's rules are its own followed by the wildcard ones.
    fn build(intentions: &[Intention]) -> Compiled {
        let mut compiled = Compiled::default();
        for i in intentions {
            let layer = if i.permissions.is_empty() { "L4" } else { "L7" };
            let rule = Arc::new(Rule {
                source: i.source_name.clone(),
                allow: i.allows(),
                reason: format!("Matched {layer} intention: {}", i.describe()).into(),
            });
            if i.destination_name == WILDCARD {
                compiled.wildcard.push(rule);
            } else {
                compiled
                    .by_destination
                    .entry(i.destination_name.clone())
                    .or_default()
                    .push(rule);
            }
        }
        for rules in compiled.by_destination.values_mut() {
            rules.extend(compiled.wildcard.iter().cloned());
        }
        compiled
    }

    fn rules(&self, destination: &str) -> &[Arc<Rule>] {
        self.by_destination
            .get(destination)
            .map_or(&self.wildcard, Vec::as_slice)
    }
}

/// An authorize decision (`/v1/agent/connect/authorize`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Decision {
    pub authorized: bool,
    pub reason: String,
}

/// The compiled intentions, rebuilt on the first use after the service-intentions entries
/// changed. Freshness is checked on the watch the last build registered (a non-blocking
/// poll), so an authorize right after a write sees it, and an unchanged cache costs no
/// store transaction.
pub struct IntentionCache {
    store: Store,
    fallback: Fallback,
    current: RwLock<Arc<Compiled>>,
    /// The watch of the last build; `None` before the first.
    watch: Mutex<Option<Watch>>,
}

impl IntentionCache {
    pub fn new(store: Store, fallback: Fallback) -> IntentionCache {
        IntentionCache {
            store,
            fallback,
            current: RwLock::new(Arc::new(Compiled::default())),
            watch: Mutex::new(None),
        }
    }

    /// The compiled intentions, rebuilt first if the entries changed since the last build.
    fn compiled(&self) -> Result<Arc<Compiled>> {
        let mut watch = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = watch
            .as_ref()
            .is_some_and(|w| w.changed().now_or_never().is_none());
        if !fresh {
            // Forgotten first: a failed rebuild leaves the cache marked stale, never fresh.
            *watch = None;
            let read = self.store.read()?;
            let mut ws = WatchSet::new();
            let (_, all) = stored::list(&read, &mut ws)?;
            let read_index = read.global_index()?;
            // Registered before publishing, so a write after this read cannot be missed.
            *watch = Some(self.store.watches().register(ws, read_index));
            let compiled = Arc::new(Compiled::build(&all));
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = compiled;
        }
        Ok(self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    /// Whether `source` (in `namespace`) may connect to `destination`: the first intention in
    /// precedence order whose source matches decides (an L7 one denies), else the fallback.
    /// Namespaces are Enterprise, so a source outside `default` matches no intention.
    pub fn authorize(
        &self,
        namespace: &str,
        source: &str,
        destination: &str,
        caller: &Authorizer,
    ) -> Result<Decision> {
        let compiled = self.compiled()?;
        let matched = compiled
            .rules(destination)
            .iter()
            .filter(|_| namespace == DEFAULT_NS)
            .find(|r| r.source == source || r.source == WILDCARD);
        Ok(match matched {
            Some(rule) => Decision {
                authorized: rule.allow,
                reason: rule.reason.to_string(),
            },
            None => {
                let (authorized, reason) = self.fallback.decide(caller);
                Decision {
                    authorized,
                    reason: reason.into(),
                }
            }
        })
    }
}
