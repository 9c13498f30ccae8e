//! What a question's name asks for, as Consul's DNS parser reads it: the domain it falls in
//! (`domain`, `alt_domain`, the reverse-lookup `arpa.` tree, or none of them) and, inside a
//! domain, the lookup its labels spell.

use crate::config::DnsConfig;
use std::net::IpAddr;

/// Where a name belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Outside every domain this agent serves: forwarded to the recursors, if any.
    Outside,
    /// Inside `domain` (the one answers are named in) or under `arpa.`.
    Inside { domain: String, lookup: Lookup },
}

/// Which instances a service lookup returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// `<service>.service`: the instances registered under the name.
    Plain,
    /// `<service>.connect`: its Connect-capable instances (proxies, or native ones).
    Connect,
    /// `<service>.ingress`: the ingress gateways that front it.
    Ingress,
}

/// What the labels in front of the domain ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Service {
        name: String,
        tag: Option<String>,
        kind: ServiceKind,
        datacenter: Option<String>,
    },
    Node {
        name: String,
        datacenter: Option<String>,
    },
    /// `<name>.query`: a prepared query, by name or ID.
    PreparedQuery {
        name: String,
        datacenter: Option<String>,
    },
    /// `<hex>.addr`: the address spelled in hexadecimal.
    Addr(IpAddr),
    /// `<service>.virtual[.<peer>]`: the service's virtual IP (a peer's services have none
    /// here: there is no peering).
    Virtual {
        service: String,
        peer: Option<String>,
    },
    /// A reverse lookup under `in-addr.arpa.` or `ip6.arpa.`.
    Ptr(IpAddr),
    /// The domain itself, or anything its labels do not spell as a lookup.
    Unknown,
}

/// Routes a question name (any case, with or without the final dot).
pub fn route(qname: &str, config: &DnsConfig) -> Route {
    let name = canonical(qname);
    for domain in std::iter::once(&config.domain).chain(config.alt_domain.as_ref()) {
        if let Some(front) = strip_domain(&name, domain) {
            return Route::Inside {
                domain: domain.clone(),
                lookup: lookup(front),
            };
        }
    }
    if name == "arpa." || name.ends_with(".arpa.") {
        // Reverse lookups are answered in the primary domain, as Consul's.
        return Route::Inside {
            domain: config.domain.clone(),
            lookup: reverse(&name).map_or(Lookup::Unknown, Lookup::Ptr),
        };
    }
    Route::Outside
}

/// The name in lower case with its final dot.
pub fn canonical(qname: &str) -> String {
    let mut name = qname.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name
}

/// The labels in front of `domain` (`""` for the domain itself), when `name` is in it.
fn strip_domain<'a>(name: &'a str, domain: &str) -> Option<&'a str> {
    if name == domain {
        return Some("");
    }
    name.strip_suffix(domain)?.strip_suffix('.')
}

/// The label that names a lookup's kind, searched from the right as Consul's parser does, so
/// a tag or node name may itself contain dots.
const KIND_LABELS: &[&str] = &[
    "service", "connect", "ingress", "node", "query", "addr", "virtual",
];

fn lookup(front: &str) -> Lookup {
    if front.is_empty() {
        return Lookup::Unknown;
    }
    let labels: Vec<&str> = front.split('.').collect();
    let Some(at) = labels.iter().rposition(|l| KIND_LABELS.contains(l)) else {
        return Lookup::Unknown;
    };
    let (parts, kind, suffix) = (&labels[..at], labels[at], &labels[at + 1..]);
    // After the kind: nothing, `<dc>`, or `<dc>.dc`.
    let datacenter = match suffix {
        [] => None,
        [dc] | [dc, "dc"] => Some(dc.to_string()),
        _ => return Lookup::Unknown,
    };
    if parts.is_empty() {
        return Lookup::Unknown;
    }
    let joined = || parts.join(".");
    match kind {
        "service" => {
            let (name, tag) = match parts {
                // RFC 2782: `_<service>._<tag or protocol>`; `_tcp` filters nothing.
                [service, tag] if service.starts_with('_') && tag.starts_with('_') => {
                    let tag = &tag[1..];
                    (
                        service[1..].to_string(),
                        (tag != "tcp").then(|| tag.to_string()),
                    )
                }
                [name] => (name.to_string(), None),
                [tag @ .., name] => (name.to_string(), Some(tag.join("."))),
                [] => return Lookup::Unknown,
            };
            Lookup::Service {
                name,
                tag,
                kind: ServiceKind::Plain,
                datacenter,
            }
        }
        "connect" | "ingress" => match parts {
            [name] => Lookup::Service {
                name: name.to_string(),
                tag: None,
                kind: if kind == "connect" {
                    ServiceKind::Connect
                } else {
                    ServiceKind::Ingress
                },
                datacenter,
            },
            _ => Lookup::Unknown,
        },
        "node" => Lookup::Node {
            name: joined(),
            datacenter,
        },
        "query" => Lookup::PreparedQuery {
            name: joined(),
            datacenter,
        },
        // The label after `virtual` names a peer, not a datacenter.
        "virtual" => Lookup::Virtual {
            service: parts[parts.len() - 1].to_string(),
            peer: datacenter,
        },
        _ => match parts {
            [hex] => addr(hex).map_or(Lookup::Unknown, Lookup::Addr),
            _ => Lookup::Unknown,
        },
    }
}

/// An address spelled as 8 (IPv4) or 32 (IPv6) hexadecimal digits.
fn addr(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect::<Option<_>>()?;
    match hex.len() {
        8 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        32 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The address a reverse-lookup name spells.
fn reverse(name: &str) -> Option<IpAddr> {
    if let Some(front) = name.strip_suffix(".in-addr.arpa.") {
        let mut octets: Vec<u8> = front
            .split('.')
            .map(|l| l.parse().ok())
            .collect::<Option<_>>()?;
        octets.reverse();
        return <[u8; 4]>::try_from(octets).ok().map(IpAddr::from);
    }
    let front = name.strip_suffix(".ip6.arpa.")?;
    let nibbles: Vec<&str> = front.split('.').collect();
    if nibbles.len() != 32 || nibbles.iter().any(|n| n.len() != 1) {
        return None;
    }
    let hex: String = nibbles.iter().rev().copied().collect();
    addr(&hex)
}

/// The hexadecimal spelling of an address, as `<hex>.addr` names carry it.
pub fn hex(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DnsConfig {
        crate::config::Config::load(&crate::config::AgentFlags {
            dev: Some(true),
            hcl: vec!["alt_domain = \"Example.Net\"".into()],
            ..Default::default()
        })
        .unwrap()
        .dns
    }

    fn inside(qname: &str) -> Lookup {
        match route(qname, &config()) {
            Route::Inside { lookup, .. } => lookup,
            Route::Outside => panic!("{qname} routed outside"),
        }
    }

    fn service(name: &str, tag: Option<&str>, kind: ServiceKind, dc: Option<&str>) -> Lookup {
        Lookup::Service {
            name: name.into(),
            tag: tag.map(Into::into),
            kind,
            datacenter: dc.map(Into::into),
        }
    }

    #[test]
    fn service_names_in_every_form() {
        use ServiceKind::*;
        assert_eq!(
            inside("web.service.consul"),
            service("web", None, Plain, None)
        );
        assert_eq!(
            inside("Web.Service.DC1.consul."),
            service("web", None, Plain, Some("dc1"))
        );
        assert_eq!(
            inside("v1.web.service.dc1.dc.consul."),
            service("web", Some("v1"), Plain, Some("dc1"))
        );
        assert_eq!(
            inside("a.b.web.service.consul."),
            service("web", Some("a.b"), Plain, None)
        );
        assert_eq!(
            inside("_web._tcp.service.consul."),
            service("web", None, Plain, None)
        );
        assert_eq!(
            inside("_web._v1.service.consul."),
            service("web", Some("v1"), Plain, None)
        );
        assert_eq!(
            inside("web.connect.consul."),
            service("web", None, Connect, None)
        );
        assert_eq!(
            inside("web.ingress.example.net."),
            service("web", None, Ingress, None)
        );
        assert_eq!(inside("service.consul."), Lookup::Unknown);
        assert_eq!(inside("web.service.a.b.c.consul."), Lookup::Unknown);
    }

    #[test]
    fn nodes_queries_addresses_and_reverse_names() {
        assert_eq!(
            inside("db.1.node.dc1.consul."),
            Lookup::Node {
                name: "db.1".into(),
                datacenter: Some("dc1".into())
            }
        );
        assert_eq!(
            inside("geo.query.consul."),
            Lookup::PreparedQuery {
                name: "geo".into(),
                datacenter: None
            }
        );
        assert_eq!(
            inside("7f000001.addr.dc1.consul."),
            Lookup::Addr("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            inside("20010db8000000000000000000000001.addr.consul."),
            Lookup::Addr("2001:db8::1".parse().unwrap())
        );
        assert_eq!(inside("7f0001.addr.consul."), Lookup::Unknown);
        assert_eq!(
            inside("4.3.2.10.in-addr.arpa."),
            Lookup::Ptr("10.2.3.4".parse().unwrap())
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        assert_eq!(inside(v6), Lookup::Ptr("2001:db8::1".parse().unwrap()));
        assert_eq!(inside("consul."), Lookup::Unknown);
        assert_eq!(route("example.com.", &config()), Route::Outside);
        assert_eq!(route("notconsul.", &config()), Route::Outside);
        assert_eq!(hex("2001:db8::1".parse().unwrap()).len(), 32);
        assert_eq!(hex("10.0.0.1".parse().unwrap()), "0a000001");
    }
}
