//! The discovery chain (Consul's `discoverychain/compile.go`): what a service's upstream
//! resolves to, compiled from the stored `service-router`, `service-splitter`,
//! `service-resolver`, `service-defaults` and `proxy-defaults` entries into a graph of router,
//! splitter and resolver nodes ending at targets (a service, subset and datacenter), with the
//! names Consul gives them (`resolver:web.default.default.dc1`, `v1.web.default.default.dc1`).
//!
//! A router or splitter on a protocol that can't route is refused when entries are written
//! (`store::config_entry`); compiling refuses it too, for entries stored before that check.
//!
//! Differences from Consul, on purpose: `CustomizationHash` is a stable hash of the overrides
//! given, not Consul's hashstructure value; peers, partitions, namespaces, sameness groups and
//! locality are not modelled (CE on one datacenter).

use crate::store::config_entry::{self, DEFAULT_PROTOCOL};
use crate::store::{Readable, WatchSet};
use crate::types::config_entry::{
    ConfigEntry, PROXY_DEFAULTS_KIND, PROXY_DEFAULTS_NAME, SERVICE_DEFAULTS_KIND,
    SERVICE_RESOLVER_KIND, SERVICE_ROUTER_KIND, SERVICE_SPLITTER_KIND,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// A resolver's connect timeout when it sets none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const NAMESPACE: &str = "default";
const PARTITION: &str = "default";
/// Resolves to itself more than this many times: a redirect loop.
const MAX_REDIRECTS: usize = 32;

/// Why a chain was not compiled.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A chain Consul refuses to compile, with its message.
    #[error("{0}")]
    Refused(String),
}

/// What a request may override (`DiscoveryChainRequest`'s `Override*` fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub protocol: String,
    pub connect_timeout: Option<Duration>,
    /// `OverrideMeshGateway.Mode`.
    pub mesh_gateway_mode: String,
}

/// Where a chain is compiled and how its targets are named in SNI.
pub struct Compilation<'a> {
    pub service: &'a str,
    pub datacenter: &'a str,
    /// `<cluster id>.consul`; empty before the Connect CA exists.
    pub trust_domain: &'a str,
    pub overrides: &'a Overrides,
}

/// Compiles `service`'s chain from the entries in `r`, watching each entry it reads (present
/// or not). `Err` carries Consul's message for a chain it refuses.
pub fn compile(
    r: &impl Readable,
    ws: &mut WatchSet,
    at: &Compilation,
) -> Result<Value, ChainError> {
    let mut compiler = Compiler {
        r,
        ws,
        at,
        nodes: BTreeMap::new(),
        targets: BTreeMap::new(),
        advanced: false,
        customized: false,
    };
    let protocol = match at.overrides.protocol.as_str() {
        "" => compiler.protocol(at.service)?,
        given => {
            compiler.customized = true;
            given.to_lowercase()
        }
    };
    let routable = config_entry::routes_advanced(&protocol);
    // An override to a protocol that can't route drops routers and splitters; a stored one
    // that can't is refused below.
    let ignore_advanced = !at.overrides.protocol.is_empty() && !routable;
    let start = compiler.start_node(at.service, ignore_advanced)?;
    if compiler.advanced && !routable {
        return Err(ChainError::Refused(format!(
            "discovery chain \"{}\" uses a protocol \"{protocol}\" that does not permit advanced routing or splitting behavior",
            at.service
        )));
    }
    compiler.customized |=
        at.overrides.connect_timeout.is_some() || !at.overrides.mesh_gateway_mode.is_empty();
    let default_id = target_id(at.service, "", at.datacenter);
    let is_default = start == format!("resolver:{default_id}")
        && compiler.nodes[&start]["Resolver"]["Default"] == json!(true)
        && compiler.nodes[&start]["Resolver"].get("Failover").is_none();
    let meta = compiler.service_meta(at.service)?;
    let mut chain = Map::new();
    chain.insert("ServiceName".into(), json!(at.service));
    chain.insert("Namespace".into(), json!(NAMESPACE));
    chain.insert("Partition".into(), json!(PARTITION));
    chain.insert("Datacenter".into(), json!(at.datacenter));
    if compiler.customized {
        chain.insert(
            "CustomizationHash".into(),
            json!(customization_hash(at.overrides)),
        );
    }
    if is_default {
        chain.insert("Default".into(), json!(true));
    }
    chain.insert("Protocol".into(), json!(protocol));
    if let Some(meta) = meta {
        chain.insert("ServiceMeta".into(), meta);
    }
    chain.insert("StartNode".into(), json!(start));
    chain.insert(
        "Nodes".into(),
        Value::Object(compiler.nodes.into_iter().collect()),
    );
    chain.insert(
        "Targets".into(),
        Value::Object(compiler.targets.into_iter().collect()),
    );
    Ok(Value::Object(chain))
}

/// A target's ID (Consul's `ChainID`): `[subset.]service.namespace.partition.datacenter`.
fn target_id(service: &str, subset: &str, datacenter: &str) -> String {
    let base = format!("{service}.{NAMESPACE}.{PARTITION}.{datacenter}");
    if subset.is_empty() {
        base
    } else {
        format!("{subset}.{base}")
    }
}

/// A stable 8-hex-digit digest of the overrides (FNV-1a).
fn customization_hash(o: &Overrides) -> String {
    let text = format!(
        "{}|{:?}|{}",
        o.protocol, o.connect_timeout, o.mesh_gateway_mode
    );
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// A field of a loosely decoded entry body, matched as Go's decoder would: case-insensitively,
/// or by its snake_case alias.
fn field<'v>(obj: &'v Value, name: &str) -> Option<&'v Value> {
    let want = name.to_lowercase();
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.replace('_', "").to_lowercase() == want)
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn text(obj: &Value, name: &str) -> String {
    field(obj, name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A text field, or `default` when it is absent or empty.
fn text_or(obj: &Value, name: &str, default: &str) -> String {
    match text(obj, name) {
        s if s.is_empty() => default.to_string(),
        s => s,
    }
}

/// A duration field as Consul decodes one: Go duration text, or nanoseconds.
fn duration(obj: &Value, name: &str) -> Option<Duration> {
    match field(obj, name)? {
        Value::String(s) => crate::duration::parse(s).ok(),
        Value::Number(n) => n.as_u64().map(Duration::from_nanos),
        _ => None,
    }
    .filter(|d| !d.is_zero())
}

struct Compiler<'a, R> {
    r: &'a R,
    ws: &'a mut WatchSet,
    at: &'a Compilation<'a>,
    nodes: BTreeMap<String, Value>,
    targets: BTreeMap<String, Value>,
    /// A router or splitter is in the chain.
    advanced: bool,
    customized: bool,
}

impl<R: Readable> Compiler<'_, R> {
    fn entry(&mut self, kind: &str, name: &str) -> crate::store::Result<Option<ConfigEntry>> {
        config_entry::watched(self.r, self.ws, kind, name)
    }

    /// The service's protocol: its service-defaults, else proxy-defaults, else `tcp`.
    fn protocol(&mut self, service: &str) -> crate::store::Result<String> {
        if let Some(p) = self
            .entry(SERVICE_DEFAULTS_KIND, service)?
            .and_then(|e| e.protocol())
        {
            return Ok(p);
        }
        Ok(self
            .entry(PROXY_DEFAULTS_KIND, PROXY_DEFAULTS_NAME)?
            .and_then(|e| e.protocol())
            .unwrap_or_else(|| DEFAULT_PROTOCOL.into()))
    }

    fn service_meta(&mut self, service: &str) -> crate::store::Result<Option<Value>> {
        Ok(self
            .entry(SERVICE_DEFAULTS_KIND, service)?
            .and_then(|e| field(&e.to_json(), "Meta").cloned()))
    }

    /// The chain's first node: the service's router, else its splitter, else its resolver.
    fn start_node(&mut self, service: &str, ignore_advanced: bool) -> Result<String, ChainError> {
        let router = match ignore_advanced {
            true => None,
            false => self.entry(SERVICE_ROUTER_KIND, service)?,
        };
        match router {
            Some(router) => self.router_node(service, &router),
            None => self.splitter_or_resolver(service, "", ignore_advanced),
        }
    }

    fn router_node(&mut self, service: &str, router: &ConfigEntry) -> Result<String, ChainError> {
        self.advanced = true;
        let rendered = router.to_json();
        let mut routes = Vec::new();
        let stored = field(&rendered, "Routes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for route in stored {
            let dest = field(&route, "Destination").cloned().unwrap_or(json!({}));
            let dest_service = text_or(&dest, "Service", service);
            let subset = text(&dest, "ServiceSubset");
            let next = self.splitter_or_resolver(&dest_service, &subset, false)?;
            routes.push(json!({ "Definition": route, "NextNode": next }));
        }
        // Whatever no route matches goes to the service itself.
        let next = self.splitter_or_resolver(service, "", false)?;
        routes.push(json!({
            "Definition": {
                "Match": {"HTTP": {"PathPrefix": "/"}},
                "Destination": {"Service": service, "Namespace": NAMESPACE, "Partition": PARTITION},
            },
            "NextNode": next,
        }));
        let name = format!("{service}.{NAMESPACE}.{PARTITION}");
        let key = format!("router:{name}");
        self.nodes.insert(
            key.clone(),
            json!({"Type": "router", "Name": name, "Routes": routes}),
        );
        Ok(key)
    }

    /// The service's splitter node when it has one (and no subset is asked for), else the
    /// resolver node of its target.
    fn splitter_or_resolver(
        &mut self,
        service: &str,
        subset: &str,
        ignore_advanced: bool,
    ) -> Result<String, ChainError> {
        if subset.is_empty() && !ignore_advanced {
            if let Some(splitter) = self.entry(SERVICE_SPLITTER_KIND, service)? {
                return self.splitter_node(service, &splitter);
            }
        }
        self.resolver_node(service, subset, self.at.datacenter.to_string())
    }

    fn splitter_node(
        &mut self,
        service: &str,
        splitter: &ConfigEntry,
    ) -> Result<String, ChainError> {
        self.advanced = true;
        let name = format!("{service}.{NAMESPACE}.{PARTITION}");
        let key = format!("splitter:{name}");
        let splits = field(&splitter.to_json(), "Splits")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = Vec::new();
        for split in splits {
            let weight = field(&split, "Weight")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if weight == 0.0 {
                continue;
            }
            let split_service = text_or(&split, "Service", service);
            let subset = text(&split, "ServiceSubset");
            // A split to another service may go through that service's own splitter.
            let next = if split_service == service {
                self.resolver_node(&split_service, &subset, self.at.datacenter.to_string())?
            } else {
                self.splitter_or_resolver(&split_service, &subset, false)?
            };
            out.push(json!({"Weight": weight, "NextNode": next}));
        }
        self.nodes.insert(
            key.clone(),
            json!({"Type": "splitter", "Name": name, "Splits": out}),
        );
        Ok(key)
    }

    /// The resolver node for `service`'s `subset` in `datacenter`, following redirects, with
    /// its target and failover targets.
    fn resolver_node(
        &mut self,
        service: &str,
        subset: &str,
        datacenter: String,
    ) -> Result<String, ChainError> {
        let (mut service, mut subset, mut datacenter) =
            (service.to_string(), subset.to_string(), datacenter);
        let mut resolver;
        let mut hops = 0;
        loop {
            resolver = self.entry(SERVICE_RESOLVER_KIND, &service)?;
            let redirect = resolver
                .as_ref()
                .and_then(|r| field(&r.to_json(), "Redirect").cloned());
            let Some(redirect) = redirect else { break };
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(ChainError::Refused(format!(
                    "detected circular resolver redirect for service \"{service}\""
                )));
            }
            let next_service = text_or(&redirect, "Service", &service);
            subset = text(&redirect, "ServiceSubset");
            let redirect_dc = text(&redirect, "Datacenter");
            if !redirect_dc.is_empty() {
                datacenter = redirect_dc;
            }
            if next_service == service && subset.is_empty() {
                // A redirect to a datacenter only: this resolver still applies there.
                break;
            }
            service = next_service;
        }
        let body = resolver
            .as_ref()
            .map(ConfigEntry::to_json)
            .unwrap_or(json!({}));
        if subset.is_empty() {
            subset = text(&body, "DefaultSubset");
        }
        let subsets = field(&body, "Subsets").cloned().unwrap_or(json!({}));
        let subset_def = if subset.is_empty() {
            None
        } else {
            match field(&subsets, &subset) {
                Some(def) => Some(def.clone()),
                None => {
                    return Err(ChainError::Refused(format!(
                        "service \"{service}\" does not have a subset named \"{subset}\""
                    )))
                }
            }
        };
        let timeout = self
            .at
            .overrides
            .connect_timeout
            .or_else(|| duration(&body, "ConnectTimeout"))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let id = self.target(&service, &subset, &datacenter, subset_def.as_ref(), timeout);
        let mut node_resolver = Map::new();
        node_resolver.insert(
            "ConnectTimeout".into(),
            json!(crate::duration::format(timeout)),
        );
        if resolver.is_none() {
            node_resolver.insert("Default".into(), json!(true));
        }
        if let Some(t) = duration(&body, "RequestTimeout") {
            node_resolver.insert("RequestTimeout".into(), json!(crate::duration::format(t)));
        }
        node_resolver.insert("Target".into(), json!(id));
        let failover = field(&body, "Failover")
            .and_then(|f| {
                field(
                    f,
                    if subset.is_empty() {
                        "*"
                    } else {
                        subset.as_str()
                    },
                )
                .or_else(|| field(f, "*"))
            })
            .cloned();
        if let Some(failover) = failover {
            let mut ids = Vec::new();
            let fo_service = text_or(&failover, "Service", &service);
            // The same service keeps the subset unless the failover names another.
            let fo_subset = match text(&failover, "ServiceSubset") {
                s if s.is_empty() && fo_service == service => subset.clone(),
                s => s,
            };
            let datacenters: Vec<String> = field(&failover, "Datacenters")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mut places: Vec<(String, String, String)> = if datacenters.is_empty() {
                vec![(fo_service.clone(), fo_subset.clone(), datacenter.clone())]
            } else {
                datacenters
                    .into_iter()
                    .map(|dc| (fo_service.clone(), fo_subset.clone(), dc))
                    .collect()
            };
            for target in field(&failover, "Targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let svc = text_or(target, "Service", &service);
                let dc = text_or(target, "Datacenter", &datacenter);
                places.push((svc, text(target, "ServiceSubset"), dc));
            }
            for (svc, sub, dc) in places {
                let fo_id = target_id(&svc, &sub, &dc);
                if fo_id == id {
                    continue;
                }
                let sub_def = self.subset_of(&svc, &sub)?;
                self.target(&svc, &sub, &dc, sub_def.as_ref(), timeout);
                ids.push(fo_id);
            }
            if !ids.is_empty() {
                node_resolver.insert("Failover".into(), json!({ "Targets": ids }));
            }
        }
        let key = format!("resolver:{id}");
        self.nodes.insert(
            key.clone(),
            json!({"Type": "resolver", "Name": id, "Resolver": Value::Object(node_resolver)}),
        );
        Ok(key)
    }

    /// A subset definition of another service's resolver (for failover targets).
    fn subset_of(&mut self, service: &str, subset: &str) -> crate::store::Result<Option<Value>> {
        if subset.is_empty() {
            return Ok(None);
        }
        Ok(self.entry(SERVICE_RESOLVER_KIND, service)?.and_then(|r| {
            field(&r.to_json(), "Subsets")
                .and_then(|s| field(s, subset))
                .cloned()
        }))
    }

    /// Records a target (`DiscoveryTarget`) and returns its ID.
    fn target(
        &mut self,
        service: &str,
        subset: &str,
        datacenter: &str,
        subset_def: Option<&Value>,
        timeout: Duration,
    ) -> String {
        let id = target_id(service, subset, datacenter);
        let mut sni_parts = vec![];
        if !subset.is_empty() {
            sni_parts.push(subset);
        }
        sni_parts.extend([
            service,
            NAMESPACE,
            datacenter,
            "internal",
            self.at.trust_domain,
        ]);
        let sni = sni_parts.join(".");
        let mut subset_json = Map::new();
        if let Some(def) = subset_def {
            let filter = text(def, "Filter");
            if !filter.is_empty() {
                subset_json.insert("Filter".into(), json!(filter));
            }
            if field(def, "OnlyPassing").and_then(Value::as_bool) == Some(true) {
                subset_json.insert("OnlyPassing".into(), json!(true));
            }
        }
        let mut mesh_gateway = Map::new();
        if !self.at.overrides.mesh_gateway_mode.is_empty() {
            mesh_gateway.insert("Mode".into(), json!(self.at.overrides.mesh_gateway_mode));
        }
        let mut target = Map::new();
        target.insert("ID".into(), json!(id));
        target.insert("Service".into(), json!(service));
        if !subset.is_empty() {
            target.insert("ServiceSubset".into(), json!(subset));
        }
        target.insert("Namespace".into(), json!(NAMESPACE));
        target.insert("Partition".into(), json!(PARTITION));
        target.insert("Datacenter".into(), json!(datacenter));
        target.insert("MeshGateway".into(), Value::Object(mesh_gateway));
        target.insert("Subset".into(), Value::Object(subset_json));
        target.insert("TransparentProxy".into(), json!({}));
        target.insert("ConnectTimeout".into(), json!(timeout.as_nanos() as u64));
        target.insert("SNI".into(), json!(sni));
        target.insert("Name".into(), json!(sni));
        self.targets.insert(id.clone(), Value::Object(target));
        id
    }
}
