//! `legate services register|deregister`, as `consul services`: a service from flags, or every
//! `service`/`services` definition of JSON or HCL config files, sent to the local agent.

use super::client::{connect, parse_key_value, segment, HttpFlags};
use crate::agent::definition::decode_service;
use reqwest::Method;
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, clap::Subcommand)]
pub enum ServicesCommand {
    /// Registers services with the local agent.
    Register(RegisterArgs),
    /// Deregisters services from the local agent.
    Deregister(DeregisterArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// ID of the service (defaults to the name).
    #[arg(long, default_value = "")]
    id: String,
    /// Name of the service.
    #[arg(long, default_value = "")]
    name: String,
    /// Address of the service.
    #[arg(long, default_value = "")]
    address: String,
    /// Port of the service.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Path to the service's Unix domain socket (conflicts with address and port).
    #[arg(long, default_value = "")]
    socket: String,
    /// Metadata as `key=value` (repeatable).
    #[arg(long, value_parser = parse_key_value)]
    meta: Vec<(String, String)>,
    /// Tag to add to the service (repeatable).
    #[arg(long)]
    tag: Vec<String>,
    /// Tagged address as `key=host:port` (repeatable).
    #[arg(long = "tagged-address", value_parser = parse_key_value)]
    tagged_address: Vec<(String, String)>,
    /// The service's kind.
    #[arg(long, default_value = "")]
    kind: String,
    /// Service definition files (JSON or HCL).
    files: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DeregisterArgs {
    #[command(flatten)]
    http: HttpFlags,
    /// ID to deregister (not with file arguments).
    #[arg(long, default_value = "")]
    id: String,
    /// Service definition files (JSON or HCL).
    files: Vec<String>,
}

pub async fn run(command: ServicesCommand) -> i32 {
    let result = match command {
        ServicesCommand::Register(a) => register(a).await,
        ServicesCommand::Deregister(a) => deregister(a).await,
    };
    super::client::exit_code(result)
}

/// A service to register: the body to send, with its name and ID.
#[derive(Debug)]
struct Service {
    name: String,
    id: String,
    body: Value,
}

/// Go's `net.SplitHostPort` plus a numeric port, as `api.ParseServiceAddr` does.
fn parse_service_addr(addr: &str) -> Result<(String, u16), String> {
    let missing = || format!("address {addr}: missing port in address");
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {addr}: missing ']' in address"))?;
        let port = after.strip_prefix(':').ok_or_else(missing)?;
        (host, port)
    } else {
        let (host, port) = addr.rsplit_once(':').ok_or_else(missing)?;
        if host.contains(':') {
            return Err(format!("address {addr}: too many colons in address"));
        }
        (host, port)
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("strconv.Atoi: parsing {port:?}: invalid syntax"))?;
    Ok((host.to_string(), port))
}

/// The registration the flags describe (empty fields left out, as the API client does).
fn from_flags(a: &RegisterArgs) -> Result<Service, String> {
    let mut body = Map::new();
    let mut put = |key: &str, value: Value| {
        body.insert(key.to_string(), value);
    };
    if !a.kind.is_empty() {
        put("Kind", a.kind.clone().into());
    }
    if !a.id.is_empty() {
        put("ID", a.id.clone().into());
    }
    if !a.name.is_empty() {
        put("Name", a.name.clone().into());
    }
    if !a.tag.is_empty() {
        put("Tags", a.tag.clone().into());
    }
    if a.port != 0 {
        put("Port", a.port.into());
    }
    if !a.address.is_empty() {
        put("Address", a.address.clone().into());
    }
    if !a.socket.is_empty() {
        put("SocketPath", a.socket.clone().into());
    }
    if !a.tagged_address.is_empty() {
        let mut addrs = Map::new();
        for (k, v) in &a.tagged_address {
            let (address, port) =
                parse_service_addr(v).map_err(|e| format!("Invalid Tagged Address: {e}"))?;
            addrs.insert(
                k.clone(),
                serde_json::json!({"Address": address, "Port": port}),
            );
        }
        put("TaggedAddresses", Value::Object(addrs));
    }
    if !a.meta.is_empty() {
        let meta: Map<String, Value> = a
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        put("Meta", Value::Object(meta));
    }
    Ok(Service {
        name: a.name.clone(),
        id: a.id.clone(),
        body: Value::Object(body),
    })
}

/// Every service definition in `files`, in order: each file's `services` (one object or a
/// list), then its `service`. Files named neither `.json` nor `.hcl` are skipped with a warning.
fn from_files(files: &[String]) -> Result<Vec<Service>, String> {
    let mut out = Vec::new();
    for file in files {
        let path = Path::new(file);
        let hcl = match path.extension().and_then(|e| e.to_str()) {
            Some("hcl") => true,
            Some("json") => false,
            _ => {
                eprintln!(
                    "skipping file {file}, extension must be .hcl or .json, or config format must be set"
                );
                continue;
            }
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("Error reading {file:?}: {e}"))?;
        let parsed: Value = if hcl {
            hcl::from_str(&text).map_err(|e| format!("failed to parse {file}: {e}"))?
        } else {
            serde_json::from_str(&text).map_err(|e| format!("failed to parse {file}: {e}"))?
        };
        let Value::Object(mut top) = parsed else {
            return Err(format!(
                "failed to parse {file}: top level must be an object"
            ));
        };
        let mut defs = Vec::new();
        for key in ["services", "service"] {
            match top.remove(key) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => defs.extend(items),
                Some(other) => defs.push(other),
            }
        }
        for body in defs {
            let def = decode_service(body.clone())
                .map_err(|e| format!("failed to parse {file}: service: {e}"))?;
            out.push(Service {
                name: def.name,
                id: def.id,
                body,
            });
        }
    }
    Ok(out)
}

async fn register(a: RegisterArgs) -> Result<(), String> {
    let from_flags = from_flags(&a)?;
    if a.files.is_empty() && a.name.is_empty() {
        return Err("Service registration requires at least one argument or flags.".into());
    }
    if !a.files.is_empty() && !a.name.is_empty() {
        return Err("Service registration requires arguments or -id, not both.".into());
    }
    let services = if a.files.is_empty() {
        vec![from_flags]
    } else {
        from_files(&a.files).map_err(|e| format!("Error: {e}"))?
    };
    let client = connect(&a.http)?;
    for svc in services {
        let body = serde_json::to_vec(&svc.body).map_err(|e| e.to_string())?;
        client
            .ok(Method::PUT, "/v1/agent/service/register", &[], Some(body))
            .await
            .map_err(|e| format!("Error registering service {:?}: {e}", svc.name))?;
        println!("Registered service: {}", svc.name);
    }
    Ok(())
}

async fn deregister(a: DeregisterArgs) -> Result<(), String> {
    if a.files.is_empty() && a.id.is_empty() {
        return Err("Service deregistration requires at least one argument or -id.".into());
    }
    if !a.files.is_empty() && !a.id.is_empty() {
        return Err("Service deregistration requires arguments or -id, not both.".into());
    }
    let services = if a.files.is_empty() {
        vec![Service {
            name: String::new(),
            id: a.id.clone(),
            body: Value::Null,
        }]
    } else {
        from_files(&a.files).map_err(|e| format!("Error: {e}"))?
    };
    let client = connect(&a.http)?;
    for svc in services {
        let id = if svc.id.is_empty() {
            svc.name.clone()
        } else {
            svc.id.clone()
        };
        if id.is_empty() {
            continue;
        }
        let path = format!("/v1/agent/service/deregister/{}", segment(&id));
        client
            .ok(Method::PUT, &path, &[], None)
            .await
            .map_err(|e| {
                let name = if svc.name.is_empty() { &id } else { &svc.name };
                format!("Error deregistering service {name:?}: {e}")
            })?;
        println!("Deregistered service: {id}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    #[test]
    fn files_hold_service_and_services_in_json_and_hcl() {
        let dir = tempfile::tempdir().unwrap();
        let json = write(
            dir.path(),
            "a.json",
            r#"{"service": {"name": "web", "port": 80}, "services": [{"id": "db1", "name": "db"}]}"#,
        );
        let hcl = write(
            dir.path(),
            "b.hcl",
            "services {\n  name = \"x\"\n}\nservices {\n  name = \"y\"\n  tags = [\"t\"]\n}\n",
        );
        let one = write(
            dir.path(),
            "c.hcl",
            "service {\n  name = \"z\"\n  port = 1\n}\n",
        );
        let got = from_files(&[json, hcl, one]).unwrap();
        let names: Vec<(&str, &str)> = got
            .iter()
            .map(|s| (s.name.as_str(), s.id.as_str()))
            .collect();
        assert_eq!(
            names,
            [("db", "db1"), ("web", ""), ("x", ""), ("y", ""), ("z", "")]
        );
        assert_eq!(got[4].body, serde_json::json!({"name": "z", "port": 1}));
    }

    #[test]
    fn bad_definitions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.json", r#"{"service": {"nme": "web"}}"#);
        assert!(from_files(&[bad]).unwrap_err().contains("nme"));
        let skipped = write(dir.path(), "x.txt", "service {}");
        assert!(from_files(&[skipped]).unwrap().is_empty());
    }

    #[test]
    fn tagged_addresses_parse_like_go() {
        assert_eq!(
            parse_service_addr("10.0.0.1:80").unwrap(),
            ("10.0.0.1".into(), 80)
        );
        assert_eq!(parse_service_addr("[::1]:8").unwrap(), ("::1".into(), 8));
        assert!(parse_service_addr("nope").is_err());
    }
}
