//! SPIFFE IDs in Connect certificates, as Consul's `connect.ParseCertURI` reads them.

use std::fmt;
use std::sync::LazyLock;

use percent_encoding::percent_decode_str;
use regex::Regex;

use super::Error;

/// A Connect certificate identity. `host` is the trust domain (`<cluster-id>.consul`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertUri {
    /// `spiffe://<td>[/ap/<partition>]/ns/<ns>/dc/<dc>/svc/<service>`
    Service {
        host: String,
        partition: String,
        namespace: String,
        datacenter: String,
        service: String,
    },
    /// `spiffe://<td>[/ap/<partition>]/agent/client/dc/<dc>/id/<node>`
    Agent {
        host: String,
        partition: String,
        datacenter: String,
        agent: String,
    },
    /// `spiffe://<td>[/ap/<partition>]/gateway/mesh/dc/<dc>`
    MeshGateway {
        host: String,
        partition: String,
        datacenter: String,
    },
    /// `spiffe://<td>/agent/server/dc/<dc>`
    Server { host: String, datacenter: String },
    /// `spiffe://<cluster-id>.<domain>`: a CA certificate's identity.
    Signing { cluster_id: String, domain: String },
}

const DEFAULT: &str = "default";

static SERVICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:/ap/([^/]+))?/ns/([^/]+)/dc/([^/]+)/svc/([^/]+)$").expect("valid regex")
});
static AGENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:/ap/([^/]+))?/agent/client/dc/([^/]+)/id/([^/]+)$").expect("valid regex")
});
static MESH_GATEWAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:/ap/([^/]+))?/gateway/mesh/dc/([^/]+)$").expect("valid regex")
});
static SERVER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/agent/server/dc/([^/]+)$").expect("valid regex"));

impl CertUri {
    /// A service's ID in the default partition and namespace, as Legate issues them.
    pub fn service(trust_domain: &str, datacenter: &str, service: &str) -> CertUri {
        CertUri::Service {
            host: trust_domain.to_string(),
            partition: DEFAULT.to_string(),
            namespace: DEFAULT.to_string(),
            datacenter: datacenter.to_string(),
            service: service.to_string(),
        }
    }

    /// Parses a certificate URI SAN. The path is matched still escaped, then each segment is
    /// unescaped, so an escaped `/` inside a name cannot forge another shape.
    pub fn parse(input: &str) -> Result<CertUri, Error> {
        let (scheme, rest) = input.split_once(':').unwrap_or(("", input));
        if !scheme.eq_ignore_ascii_case("spiffe") {
            return Err(Error::NotSpiffe);
        }
        let (host, path) = match rest.strip_prefix("//") {
            Some(authority_and_path) => {
                let without_query = authority_and_path
                    .split(['?', '#'])
                    .next()
                    .unwrap_or_default();
                match without_query.find('/') {
                    Some(i) => without_query.split_at(i),
                    None => (without_query, ""),
                }
            }
            None => ("", ""),
        };
        let host = host.to_string();
        let partition = |m: Option<regex::Match<'_>>| match m {
            Some(m) => unescape(m.as_str(), "admin partition"),
            None => Ok(DEFAULT.to_string()),
        };

        if let Some(c) = SERVICE.captures(path) {
            return Ok(CertUri::Service {
                host,
                partition: partition(c.get(1))?,
                namespace: unescape(&c[2], "namespace")?,
                datacenter: unescape(&c[3], "datacenter")?,
                service: unescape(&c[4], "service")?,
            });
        }
        if let Some(c) = AGENT.captures(path) {
            return Ok(CertUri::Agent {
                host,
                partition: partition(c.get(1))?,
                datacenter: unescape(&c[2], "datacenter")?,
                agent: unescape(&c[3], "node")?,
            });
        }
        if let Some(c) = MESH_GATEWAY.captures(path) {
            return Ok(CertUri::MeshGateway {
                host,
                partition: partition(c.get(1))?,
                datacenter: unescape(&c[2], "datacenter")?,
            });
        }
        if let Some(c) = SERVER.captures(path) {
            return Ok(CertUri::Server {
                host,
                datacenter: unescape(&c[1], "datacenter")?,
            });
        }
        if path.is_empty() {
            if let Some((cluster_id, domain)) = host.split_once('.').filter(|(c, _)| !c.is_empty())
            {
                return Ok(CertUri::Signing {
                    cluster_id: cluster_id.to_string(),
                    domain: domain.to_string(),
                });
            }
        }
        Err(Error::UnexpectedSpiffeFormat(input.to_string()))
    }
}

fn unescape(segment: &str, what: &'static str) -> Result<String, Error> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| Error::InvalidSpiffeSegment {
            what,
            reason: e.to_string(),
        })
}

/// Partitions are case-insensitive, and the default one is left out of the URI.
fn partition_prefix(partition: &str) -> String {
    let partition = partition.to_lowercase();
    if partition.is_empty() || partition == DEFAULT {
        String::new()
    } else {
        format!("/ap/{partition}")
    }
}

impl fmt::Display for CertUri {
    /// The URI as it goes in a certificate. Only service IDs name a non-default partition:
    /// Consul CE writes agent and mesh-gateway IDs without one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertUri::Service {
                host,
                partition,
                namespace,
                datacenter,
                service,
            } => {
                let namespace = if namespace.is_empty() {
                    DEFAULT
                } else {
                    namespace
                };
                write!(
                    f,
                    "spiffe://{host}{}/ns/{namespace}/dc/{datacenter}/svc/{service}",
                    partition_prefix(partition)
                )
            }
            CertUri::Agent {
                host,
                datacenter,
                agent,
                ..
            } => write!(f, "spiffe://{host}/agent/client/dc/{datacenter}/id/{agent}"),
            CertUri::MeshGateway {
                host, datacenter, ..
            } => write!(f, "spiffe://{host}/gateway/mesh/dc/{datacenter}"),
            CertUri::Server { host, datacenter } => {
                write!(f, "spiffe://{host}/agent/server/dc/{datacenter}")
            }
            CertUri::Signing { cluster_id, domain } => {
                write!(
                    f,
                    "spiffe://{}",
                    format!("{cluster_id}.{domain}").to_lowercase()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "11111111-2222-3333-4444-555555555555.consul";

    fn round_trip(uri: &str) -> CertUri {
        let parsed = CertUri::parse(uri).unwrap();
        assert_eq!(parsed.to_string(), uri);
        parsed
    }

    #[test]
    fn parses_each_known_form() {
        assert_eq!(
            round_trip(&format!("spiffe://{TD}/ns/default/dc/dc1/svc/web")),
            CertUri::service(TD, "dc1", "web")
        );
        assert_eq!(
            round_trip(&format!("spiffe://{TD}/ap/team/ns/ns1/dc/dc1/svc/web")),
            CertUri::Service {
                host: TD.into(),
                partition: "team".into(),
                namespace: "ns1".into(),
                datacenter: "dc1".into(),
                service: "web".into(),
            }
        );
        assert_eq!(
            round_trip(&format!("spiffe://{TD}/agent/client/dc/dc1/id/node-1")),
            CertUri::Agent {
                host: TD.into(),
                partition: "default".into(),
                datacenter: "dc1".into(),
                agent: "node-1".into(),
            }
        );
        assert_eq!(
            CertUri::parse(&format!("spiffe://{TD}/ap/team/gateway/mesh/dc/dc2")).unwrap(),
            CertUri::MeshGateway {
                host: TD.into(),
                partition: "team".into(),
                datacenter: "dc2".into(),
            }
        );
        assert_eq!(
            round_trip(&format!("spiffe://{TD}/agent/server/dc/dc1")),
            CertUri::Server {
                host: TD.into(),
                datacenter: "dc1".into(),
            }
        );
        assert_eq!(
            round_trip(&format!("spiffe://{TD}")),
            CertUri::Signing {
                cluster_id: "11111111-2222-3333-4444-555555555555".into(),
                domain: "consul".into(),
            }
        );
    }

    #[test]
    fn unescapes_segments_after_matching() {
        // An escaped slash stays inside the service name instead of adding a path segment.
        let parsed = CertUri::parse(&format!("spiffe://{TD}/ns/default/dc/dc1/svc/a%2Fb")).unwrap();
        assert!(matches!(parsed, CertUri::Service { ref service, .. } if service == "a/b"));
        assert_eq!(
            CertUri::parse(&format!("spiffe://{TD}/ns/default/dc/dc1/svc/%ff")).unwrap_err(),
            Error::InvalidSpiffeSegment {
                what: "service",
                reason: "invalid utf-8 sequence of 1 bytes from index 0".into(),
            }
        );
    }

    #[test]
    fn refuses_other_uris_with_consuls_messages() {
        for uri in ["https://example.com/ns/default/dc/dc1/svc/web", "web", ""] {
            let err = CertUri::parse(uri).unwrap_err();
            assert_eq!(err, Error::NotSpiffe, "{uri}");
            assert_eq!(err.to_string(), "SPIFFE ID must have 'spiffe' scheme");
        }
        for uri in [
            format!("spiffe://{TD}/ns/default/dc/dc1/svc"),
            format!("spiffe://{TD}/ns/default/dc/dc1/svc/web/extra"),
            format!("spiffe://{TD}/agent/server/dc/dc1/extra"),
            "spiffe://nodot".to_string(),
        ] {
            let err = CertUri::parse(&uri).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("SPIFFE ID is not in the expected format: {uri}")
            );
        }
    }
}
