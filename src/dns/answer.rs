//! Answers for names inside the served domains, built from one read transaction of the store
//! the HTTP API reads, with the records Consul 1.22 gives (agent/dns/message_serializer.go):
//! which section each record goes to, SRV targets, TTLs, TXT node meta, SOA and NS. What a
//! service question's read gives is cached (see `cache`) and only shuffled per answer.

use super::cache::{Cache, Key};
use super::name::{self, Lookup, ServiceKind};
use crate::acl::Authorizer;
use crate::agent::acl::Identity;
use crate::agent::context::DnsSettings;
use crate::agent::prepared_query::{self, ExecuteOptions, QueryError, Source};
use crate::agent::Ctx;
use crate::config::DnsConfig;
use crate::store::catalog::{self as catalog, Lookup as Instances};
use crate::store::{acl, gateway, virtual_ip, ReadTx, StoreError, WatchSet};
use crate::types::catalog::{CheckServiceNode, Node, CRITICAL, PASSING, WARNING};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The records of an answer, by section: built for it (`Record`) or picked from records kept
/// elsewhere (`&Record`).
#[derive(Debug)]
pub struct Sections<R = Record> {
    pub answers: Vec<R>,
    pub authority: Vec<R>,
    pub additionals: Vec<R>,
}

impl<R> Default for Sections<R> {
    fn default() -> Self {
        Sections {
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

impl Sections {
    pub fn borrowed(&self) -> Sections<&Record> {
        Sections {
            answers: self.answers.iter().collect(),
            authority: self.authority.iter().collect(),
            additionals: self.additionals.iter().collect(),
        }
    }
}

/// An answer's records, or the instances they are picked from.
pub enum Answer {
    Built(Sections),
    /// Instances answering in the order given (a prepared query's).
    Ordered(Vec<Contribution>),
    /// A service's instances, as cached: they answer in a new random order each time.
    Shuffled(Arc<[Contribution]>),
}

impl Answer {
    /// The records to reply with.
    pub fn sections(&self, config: &DnsConfig) -> Sections<&Record> {
        match self {
            Answer::Built(sections) => sections.borrowed(),
            Answer::Ordered(contributions) => {
                service_records(config, &contributions.iter().collect::<Vec<_>>())
            }
            Answer::Shuffled(contributions) => {
                let mut order: Vec<&Contribution> = contributions.iter().collect();
                order.shuffle(&mut rand::rng());
                service_records(config, &order)
            }
        }
    }

    /// Whether there is no record to reply with (instances always add one).
    fn is_empty(&self) -> bool {
        match self {
            Answer::Built(s) => s.answers.is_empty() && s.additionals.is_empty(),
            Answer::Ordered(contributions) => contributions.is_empty(),
            Answer::Shuffled(contributions) => contributions.is_empty(),
        }
    }
}

/// Why a name has no answer.
#[derive(Debug, thiserror::Error)]
pub enum Miss {
    /// NXDOMAIN: nothing by that name.
    #[error("name not found")]
    NameError,
    /// NOERROR without records: the name exists, not with records of the asked type.
    #[error("no data")]
    NoData,
    /// SERVFAIL: the store could not be read or the DNS token not resolved.
    #[error("{0}")]
    Failure(String),
}

impl From<StoreError> for Miss {
    fn from(e: StoreError) -> Miss {
        Miss::Failure(e.to_string())
    }
}

/// What one question is answered with: the lookup its name spells, asked as `qtype`.
pub struct Question<'a> {
    /// The question name in lower case with its final dot.
    pub qname: &'a str,
    /// The same, as answers are named.
    pub owner: &'a Name,
    pub qtype: RecordType,
    /// The domain answers are named in (`consul.` or `alt_domain`).
    pub domain: &'a str,
    pub lookup: &'a Lookup,
    /// The DNS settings in force when the question arrived.
    pub settings: &'a DnsSettings,
}

impl Question<'_> {
    fn config(&self) -> &DnsConfig {
        &self.settings.config
    }

    /// What the question's answer is cached under.
    fn key(&self, secret: &str) -> Key {
        Key::new(secret, self.qname, self.qtype, self.settings.generation)
    }
}

/// The cache of service answers (`Cache` keeps them consistent with the store).
pub type ServiceCache = Cache<ServiceAnswer>;

/// Builds the answer to one question inside a served domain.
pub fn answer(ctx: &Ctx, cache: &ServiceCache, q: &Question) -> Result<Answer, Miss> {
    let config = q.config();
    // Noted before the token is resolved and anything read: an answer cached from what
    // follows is dropped by any commit after this one that touches what it read.
    let since = ctx.store.watches().announced();
    let secret = dns_secret(ctx);
    let identity = dns_identity(ctx, &secret)?;
    let authorizer = &identity.authorizer;
    // SOA and NS questions are about the domain whatever name they carry, as Consul's.
    let found = if matches!(q.qtype, RecordType::SOA | RecordType::NS) {
        Answer::Built(domain_records(ctx, &ctx.store.read()?, q)?)
    } else {
        match q.lookup {
            Lookup::Service {
                name,
                tag,
                kind,
                datacenter,
            } => {
                local_datacenter(ctx, datacenter)?;
                let asked = ServiceQuestion {
                    name,
                    tag: tag.as_deref(),
                    kind: *kind,
                };
                let found = match cache.get(&q.key(&secret)) {
                    Some(found) => found,
                    None => read_service(ctx, cache, since, &secret, authorizer, q, &asked)?,
                };
                match found {
                    ServiceAnswer::Unknown => return Err(Miss::NameError),
                    ServiceAnswer::Instances(contributions) => Answer::Shuffled(contributions),
                }
            }
            Lookup::Node { name, datacenter } => {
                local_datacenter(ctx, datacenter)?;
                Answer::Built(node_records(&ctx.store.read()?, authorizer, q, name)?)
            }
            Lookup::PreparedQuery { name, datacenter } => {
                local_datacenter(ctx, datacenter)?;
                let (instances, ttl) = prepared_query(ctx, config, &identity, name)?;
                Answer::Ordered(contributions(ctx, q, &instances, ttl))
            }
            Lookup::Addr(ip) => Answer::Built(addr_records(config, q, *ip)),
            Lookup::Ptr(ip) => {
                Answer::Built(ptr_records(ctx, &ctx.store.read()?, authorizer, q, *ip)?)
            }
            Lookup::Virtual { service, peer } => {
                let vip = match peer {
                    Some(_) => None,
                    None if authorizer.service_read(service).is_allow() => {
                        virtual_ip::get(&ctx.store.read()?, &mut WatchSet::new(), service)?.1
                    }
                    None => None,
                };
                Answer::Built(match vip {
                    Some(vip) => addr_records(config, q, IpAddr::V4(vip.address())),
                    None => Sections::default(),
                })
            }
            Lookup::Unknown => return Err(Miss::NameError),
        }
    };
    if found.is_empty() {
        return Err(Miss::NoData);
    }
    Ok(found)
}

/// The secret DNS questions act with: `acl.tokens.dns` (or as set through the API), else the
/// default token, as Consul's DNS server.
fn dns_secret(ctx: &Ctx) -> String {
    let tokens = &ctx.ops.tokens;
    tokens
        .get("dns")
        .or_else(|| tokens.get("default"))
        .unwrap_or_default()
}

/// Who DNS questions act as (everyone, with ACLs off).
fn dns_identity(ctx: &Ctx, secret: &str) -> Result<Arc<Identity>, Miss> {
    ctx.acl
        .resolve(secret, None)
        .map_err(|e| Miss::Failure(format!("cannot resolve the DNS token: {e}")))
}

/// What a service lookup asks for.
struct ServiceQuestion<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    kind: ServiceKind,
}

/// A service question's answer as cached, before the per-answer shuffle.
#[derive(Clone)]
pub enum ServiceAnswer {
    /// No instance the DNS token may read passes: NXDOMAIN.
    Unknown,
    /// What each instance found adds to the reply, in the store's order.
    Instances(Arc<[Contribution]>),
}

/// Reads a service question's answer from the store and caches it, watched on what the read
/// touched and on the ACL tables (which decide what the token may read), since `since`.
fn read_service(
    ctx: &Ctx,
    cache: &ServiceCache,
    since: u64,
    secret: &str,
    authorizer: &Authorizer,
    q: &Question,
    asked: &ServiceQuestion,
) -> Result<ServiceAnswer, Miss> {
    let config = q.config();
    let r = ctx.store.read()?;
    let mut ws = WatchSet::new();
    let instances = healthy_instances(&r, &mut ws, config, authorizer, asked)?;
    let found = if instances.is_empty() {
        ServiceAnswer::Unknown
    } else {
        let ttl = service_ttl(config, asked.name);
        ServiceAnswer::Instances(contributions(ctx, q, &instances, ttl).into())
    };
    acl::watch_all(&mut ws);
    let watch = ctx.store.watches().register(ws, since);
    cache.insert(q.key(secret), found.clone(), watch);
    Ok(found)
}

/// A lookup in another datacenter has no path to it: NXDOMAIN, as Consul answers.
fn local_datacenter(ctx: &Ctx, datacenter: &Option<String>) -> Result<(), Miss> {
    match datacenter {
        Some(dc) if *dc != ctx.config.datacenter => Err(Miss::NameError),
        _ => Ok(()),
    }
}

fn seconds(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

fn service_ttl(config: &DnsConfig, service: &str) -> u32 {
    seconds(config.service_ttl(service).unwrap_or(config.node_ttl))
}

/// A DNS name from text built by this module (labels already valid).
fn dns_name(text: &str) -> Name {
    Name::from_ascii(text).unwrap_or_else(|_| Name::root())
}

fn node_fqdn(ctx: &Ctx, node: &str, domain: &str) -> String {
    format!("{node}.node.{}.{domain}", ctx.config.datacenter)
}

fn ip_record(name: Name, ip: IpAddr, ttl: u32) -> Record {
    let rdata = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name, ttl, rdata)
}

/// Whether an address record fits an explicit question type (else it goes to the extras).
fn asked_for(qtype: RecordType, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => matches!(qtype, RecordType::A | RecordType::ANY),
        IpAddr::V6(_) => matches!(qtype, RecordType::AAAA | RecordType::ANY),
    }
}

/// Whether an address record may appear at all for the question type.
fn may_return(qtype: RecordType, ip: IpAddr) -> bool {
    let common = matches!(
        qtype,
        RecordType::SRV | RecordType::ANY | RecordType::NS | RecordType::TXT
    );
    common
        || match ip {
            IpAddr::V4(_) => qtype == RecordType::A,
            IpAddr::V6(_) => qtype == RecordType::AAAA,
        }
}

/// The instances a service lookup answers with: those the token may read, with the tag when
/// one is asked for, and without a critical check (nor any non-passing one with
/// `only_passing`). Maintenance mode is a critical check, so it hides the instance. `ws`
/// records what was read.
fn healthy_instances(
    r: &ReadTx,
    ws: &mut WatchSet,
    config: &DnsConfig,
    authorizer: &Authorizer,
    asked: &ServiceQuestion,
) -> Result<Vec<CheckServiceNode>, Miss> {
    let ServiceQuestion { name, tag, kind } = *asked;
    if !authorizer.service_read(name).is_allow() {
        return Ok(Vec::new());
    }
    let (_, found) = match kind {
        ServiceKind::Plain => catalog::check_service_nodes(r, ws, name, Instances::Service)?,
        ServiceKind::Connect => catalog::check_service_nodes(r, ws, name, Instances::Connect)?,
        ServiceKind::Ingress => gateway::ingress_nodes(r, ws, name)?,
    };
    Ok(found
        .into_iter()
        .filter(|i| {
            tag.is_none_or(|t| i.service.tags.iter().any(|own| own.eq_ignore_ascii_case(t)))
        })
        .filter(|i| {
            i.checks.iter().all(|c| match c.status.as_str() {
                PASSING => true,
                WARNING => !config.only_passing,
                _ => false,
            })
        })
        .filter(|i| {
            authorizer.node_read(&i.node.node).is_allow()
                && authorizer.service_read(&i.service.service).is_allow()
        })
        .collect())
}

/// The instances and TTL of a prepared query's execution, as the DNS token sees them: the
/// query's `DNS.TTL`, else the TTL of the service it looked up.
fn prepared_query(
    ctx: &Ctx,
    config: &DnsConfig,
    identity: &Arc<Identity>,
    name: &str,
) -> Result<(Vec<CheckServiceNode>, u32), Miss> {
    let run = ExecuteOptions {
        source: Source::default(),
        limit: 0,
        connect: false,
        caller: identity.clone(),
    };
    let done = match prepared_query::execute(ctx, name, &run) {
        Ok(done) => done,
        Err(QueryError::NotFound) => return Err(Miss::NameError),
        Err(e) => return Err(Miss::Failure(format!("prepared query {name}: {e}"))),
    };
    let ttl = match done.ttl() {
        Some(ttl) => seconds(ttl),
        None => service_ttl(config, &done.service),
    };
    Ok((done.nodes, ttl))
}

/// The address an instance is reached at: its own, else its node's.
enum Target {
    Ip(IpAddr),
    Host(String),
}

fn target(address: &str) -> Option<Target> {
    if address.is_empty() {
        return None;
    }
    Some(match address.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Host(name::canonical(address)),
    })
}

/// What one instance adds to a service answer, worked out once per read: which additions
/// make the reply depends on their order (shuffled for each answer), on the duplicates
/// before them and on `a_record_limit` (see `service_records`).
#[derive(Debug)]
pub enum Contribution {
    /// An SRV answer and its extras; `target` numbers the distinct (node, address, port)
    /// triples, of which the first in the order answers.
    Srv {
        target: usize,
        answer: Record,
        extras: Vec<Record>,
    },
    /// An address record answering the question; `address` numbers the distinct addresses,
    /// of which the first in the order answers.
    Address { address: usize, answer: Record },
    /// An address record the question did not ask for, as an extra.
    Extra(Record),
    /// A CNAME to the instance's host name: the answer only when no instance has an address
    /// record, the first in the order then.
    Host(Record),
}

/// The contributions of service instances, Consul's way: SRV answers whose targets are the
/// node's name (`<node>.node.<dc>.<domain>`), the service's (when its address is the node's)
/// or the address's (`<hex>.addr.<dc>.<domain>`, when it differs), with their address
/// records as extras; other types get the address records named after the question.
fn contributions(
    ctx: &Ctx,
    q: &Question,
    instances: &[CheckServiceNode],
    ttl: u32,
) -> Vec<Contribution> {
    let config = q.config();
    // Duplicates are numbered alike, so picking needs no hashing.
    let mut targets = HashMap::new();
    let mut addresses = HashMap::new();
    let mut out = Vec::with_capacity(instances.len());
    for instance in instances {
        let (node, service) = (&instance.node, &instance.service);
        let node_name = node_fqdn(ctx, &node.node, q.domain);
        let service_address = target(&service.address);
        let (own_name, address) = match (&service_address, target(&node.address)) {
            (None, Some(node_address)) => (node_name.clone(), node_address),
            (Some(Target::Ip(ip)), _) => {
                let name = if node.address == ip.to_string() {
                    format!(
                        "{}.service.{}.{}",
                        service.service, ctx.config.datacenter, q.domain
                    )
                } else {
                    format!(
                        "{}.addr.{}.{}",
                        name::hex(*ip),
                        ctx.config.datacenter,
                        q.domain
                    )
                };
                (name, Target::Ip(*ip))
            }
            (Some(Target::Host(host)), _) => (host.clone(), Target::Host(host.clone())),
            (None, None) => continue,
        };
        if q.qtype == RecordType::SRV {
            let distinct = targets.len();
            let target = *targets
                .entry((node.node.as_str(), service.address.as_str(), service.port))
                .or_insert(distinct);
            let weight = if instance.checks.iter().any(|c| c.status == WARNING) {
                service.weights.warning
            } else {
                service.weights.passing
            };
            let srv = SRV::new(
                1,
                weight.clamp(0, u16::MAX as i32) as u16,
                service.port,
                dns_name(&own_name),
            );
            let mut extras = Vec::new();
            if let Target::Ip(ip) = address {
                extras.push(ip_record(dns_name(&own_name), ip, ttl));
            }
            if config.node_meta_txt {
                extras.extend(meta_txt(&node_name, node, ttl));
            }
            out.push(Contribution::Srv {
                target,
                answer: Record::from_rdata(q.owner.clone(), ttl, RData::SRV(srv)),
                extras,
            });
            continue;
        }
        out.push(match address {
            Target::Ip(ip) if !may_return(q.qtype, ip) => continue,
            Target::Ip(ip) if !asked_for(q.qtype, ip) => {
                Contribution::Extra(ip_record(q.owner.clone(), ip, ttl))
            }
            Target::Ip(ip) => {
                let distinct = addresses.len();
                Contribution::Address {
                    address: *addresses.entry(ip).or_insert(distinct),
                    answer: ip_record(q.owner.clone(), ip, ttl),
                }
            }
            Target::Host(host) => Contribution::Host(Record::from_rdata(
                q.owner.clone(),
                ttl,
                RData::CNAME(CNAME(dns_name(&host))),
            )),
        });
    }
    out
}

/// The records of a service answer from its instances' contributions, in order: an SRV
/// answer per distinct target, an address answer per distinct address up to
/// `a_record_limit`, a CNAME only when no address answers.
fn service_records<'a>(
    config: &DnsConfig,
    contributions: &[&'a Contribution],
) -> Sections<&'a Record> {
    let mut out = Sections::default();
    // Targets and addresses are numbered below the number of contributions.
    let mut seen_targets = vec![false; contributions.len()];
    let mut seen_addresses = vec![false; contributions.len()];
    let mut counted = 0;
    let mut first_cname = None;
    for contribution in contributions {
        match contribution {
            Contribution::Srv {
                target,
                answer,
                extras,
            } => {
                if !std::mem::replace(&mut seen_targets[*target], true) {
                    out.answers.push(answer);
                    out.additionals.extend(extras);
                }
            }
            Contribution::Extra(record) => out.additionals.push(record),
            Contribution::Host(cname) => {
                first_cname.get_or_insert(cname);
            }
            // Answers all carry the question's name: the address tells duplicates apart.
            Contribution::Address { address, answer } => {
                if std::mem::replace(&mut seen_addresses[*address], true) {
                    continue;
                }
                out.answers.push(answer);
                counted += 1;
                if counted == config.a_record_limit {
                    break;
                }
            }
        }
    }
    if out.answers.is_empty() {
        out.answers.extend(first_cname);
    }
    out
}

/// Node meta as TXT records, one `key=value` each (a key starting with `rfc1035-` gives the
/// bare value), as Consul encodes it.
fn meta_txt(name: &str, node: &Node, ttl: u32) -> Vec<Record> {
    node.meta
        .iter()
        .map(|(key, value)| {
            let text = match key.strip_prefix("rfc1035-") {
                Some(_) => value.clone(),
                None => format!("{key}={value}"),
            };
            Record::from_rdata(dns_name(name), ttl, RData::TXT(TXT::new(vec![text])))
        })
        .collect()
}

/// `<node>.node`: the node's address, with its meta as TXT records (in the answer for TXT
/// and ANY questions, as extras with `enable_additional_node_meta_txt`).
fn node_records(
    r: &ReadTx,
    authorizer: &Authorizer,
    q: &Question,
    name: &str,
) -> Result<Sections, Miss> {
    let config = q.config();
    let Some(node) =
        catalog::get_node(r, name)?.filter(|n| authorizer.node_read(&n.node).is_allow())
    else {
        return Err(Miss::NameError);
    };
    let ttl = seconds(config.node_ttl);
    let mut out = Sections::default();
    match target(&node.address) {
        Some(Target::Ip(ip)) if may_return(q.qtype, ip) => {
            let record = ip_record(q.owner.clone(), ip, ttl);
            if asked_for(q.qtype, ip) {
                out.answers.push(record);
            } else {
                out.additionals.push(record);
            }
        }
        Some(Target::Host(host)) => out.answers.push(Record::from_rdata(
            q.owner.clone(),
            ttl,
            RData::CNAME(CNAME(dns_name(&host))),
        )),
        _ => {}
    }
    let txt = meta_txt(q.qname, &node, ttl);
    match q.qtype {
        RecordType::TXT | RecordType::ANY => out.answers.extend(txt),
        _ if config.node_meta_txt => out.additionals.extend(txt),
        _ => {}
    }
    Ok(out)
}

/// `<hex>.addr`: the address itself.
fn addr_records(config: &DnsConfig, q: &Question, ip: IpAddr) -> Sections {
    let record = ip_record(q.owner.clone(), ip, seconds(config.node_ttl));
    let mut out = Sections::default();
    if asked_for(q.qtype, ip) {
        out.answers.push(record);
    } else {
        out.additionals.push(record);
    }
    out
}

/// A reverse lookup: the nodes at the address, else the services registered with it.
fn ptr_records(
    ctx: &Ctx,
    r: &ReadTx,
    authorizer: &Authorizer,
    q: &Question,
    ip: IpAddr,
) -> Result<Sections, Miss> {
    let matches = |address: &str| address.parse::<IpAddr>() == Ok(ip);
    let mut ws = WatchSet::new();
    let mut targets: Vec<String> = catalog::nodes(r, &mut ws)?
        .1
        .into_iter()
        .filter(|n| matches(&n.address) && authorizer.node_read(&n.node).is_allow())
        .map(|n| node_fqdn(ctx, &n.node, q.domain))
        .collect();
    if targets.is_empty() {
        for (name, _) in catalog::services(r, &mut ws)?.1 {
            if !authorizer.service_read(&name).is_allow() {
                continue;
            }
            let (_, instances) = catalog::service_instances(r, &mut ws, &name, Instances::Service)?;
            if instances.iter().any(|(_, s)| matches(&s.address)) {
                targets.push(format!(
                    "{name}.service.{}.{}",
                    ctx.config.datacenter, q.domain
                ));
            }
        }
    }
    if targets.is_empty() {
        return Err(Miss::NameError);
    }
    Ok(Sections {
        answers: targets
            .iter()
            .map(|t| Record::from_rdata(q.owner.clone(), 0, RData::PTR(PTR(dns_name(t)))))
            .collect(),
        ..Default::default()
    })
}

/// The domain's SOA record (also the authority of a negative answer).
pub fn soa(config: &DnsConfig, domain: &str) -> Record {
    let serial = u32::try_from(crate::clock::now_ms() / 1000).unwrap_or(u32::MAX);
    let soa = &config.soa;
    let as_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    Record::from_rdata(
        dns_name(domain),
        soa.min_ttl,
        RData::SOA(SOA::new(
            dns_name(&format!("ns.{domain}")),
            dns_name(&format!("hostmaster.{domain}")),
            serial,
            as_i32(soa.refresh),
            as_i32(soa.retry),
            as_i32(soa.expire),
            soa.min_ttl,
        )),
    )
}

/// SOA and NS questions: the domain's SOA and its name servers, the nodes running the
/// `consul` service (at most 3, shuffled), with their addresses as extras.
fn domain_records(ctx: &Ctx, r: &ReadTx, q: &Question) -> Result<Sections, Miss> {
    let config = q.config();
    let mut ws = WatchSet::new();
    let (_, mut servers) = catalog::check_service_nodes(r, &mut ws, "consul", Instances::Service)?;
    servers.retain(|s| s.checks.iter().all(|c| c.status != CRITICAL));
    servers.shuffle(&mut rand::rng());
    servers.truncate(3);
    let ttl = service_ttl(config, "consul");
    let mut out = Sections::default();
    if q.qtype == RecordType::SOA {
        out.answers.push(soa(config, q.domain));
    }
    for server in &servers {
        let Ok(ip) = server.node.address.parse::<IpAddr>() else {
            continue;
        };
        let fqdn = node_fqdn(ctx, &server.node.node, q.domain);
        let ns = Record::from_rdata(dns_name(q.domain), ttl, RData::NS(NS(dns_name(&fqdn))));
        if q.qtype == RecordType::NS {
            out.answers.push(ns);
        } else {
            out.authority.push(ns);
        }
        out.additionals.push(ip_record(dns_name(&fqdn), ip, ttl));
    }
    Ok(out)
}
