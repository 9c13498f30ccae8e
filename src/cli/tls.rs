//! `legate tls ca create` and `legate tls cert create`, as consul's: a CA for the agents' TLS
//! and server, client and CLI certificates signed by it, written to the current directory
//! under consul's file names.

use crate::connect::agent_tls::{
    generate_ca, generate_cert, CaOptions, CertOptions, CertRole, Issued,
};
use clap::Subcommand;
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Manages the agents' TLS CA.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Manages the agents' TLS certificates.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Creates a new CA.
    Create(CaCreateArgs),
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Creates a new certificate.
    Create(CertCreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CaCreateArgs {
    /// Days the CA is valid for from now on.
    #[arg(long, default_value_t = 1825)]
    days: u32,
    /// The cluster's domain (used with -name-constraint).
    #[arg(long, default_value = "consul")]
    domain: String,
    /// Restrict the CA to the domain, localhost and -additional-name-constraint.
    #[arg(long = "name-constraint", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    name_constraint: bool,
    /// Another DNS name the CA may sign for (with -name-constraint); repeatable.
    #[arg(long = "additional-name-constraint", action = clap::ArgAction::Append)]
    additional_name_constraint: Vec<String>,
    /// The CA's common name (default: "Consul Agent CA" and its serial).
    #[arg(long = "common-name", default_value = "")]
    common_name: String,
}

#[derive(Debug, clap::Args)]
pub struct CertCreateArgs {
    /// The CA certificate.
    #[arg(long, default_value = "#DOMAIN#-agent-ca.pem")]
    ca: String,
    /// The CA's private key.
    #[arg(long, default_value = "#DOMAIN#-agent-ca-key.pem")]
    key: String,
    /// A server certificate.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    server: bool,
    /// A client certificate.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    client: bool,
    /// A CLI certificate.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    cli: bool,
    /// With -server: also <node>.server.<dc>.<domain>.
    #[arg(long, default_value = "")]
    node: String,
    /// Days the certificate is valid for from now on.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// The datacenter.
    #[arg(long, default_value = "dc1")]
    dc: String,
    /// The domain.
    #[arg(long, default_value = "consul")]
    domain: String,
    /// Another DNS name for the SANs; repeatable.
    #[arg(long = "additional-dnsname", action = clap::ArgAction::Append)]
    additional_dnsname: Vec<String>,
    /// Another IP address for the SANs; repeatable.
    #[arg(long = "additional-ipaddress", action = clap::ArgAction::Append)]
    additional_ipaddress: Vec<String>,
}

pub fn run(command: TlsCommand) -> i32 {
    let result = match command {
        TlsCommand::Ca {
            command: CaCommand::Create(a),
        } => ca_create(a),
        TlsCommand::Cert {
            command: CertCommand::Create(a),
        } => cert_create(a),
    };
    super::client::exit_code(result)
}

fn ca_create(a: CaCreateArgs) -> Result<(), String> {
    let cert_file = format!("{}-agent-ca.pem", a.domain);
    let key_file = format!("{}-agent-ca-key.pem", a.domain);
    for file in [&cert_file, &key_file] {
        if Path::new(file).exists() {
            return Err(format!("{file} already exists."));
        }
    }
    let mut permitted_dns_domains = Vec::new();
    if a.name_constraint {
        permitted_dns_domains = a.additional_name_constraint.clone();
        permitted_dns_domains.extend([a.domain.clone(), "localhost".into()]);
    }
    let ca = generate_ca(
        &CaOptions {
            common_name: a.common_name,
            days: a.days,
            permitted_dns_domains,
        },
        std::time::SystemTime::now(),
    )
    .map_err(|e| e.to_string())?;
    save(&cert_file, &key_file, &ca)
}

fn cert_create(a: CertCreateArgs) -> Result<(), String> {
    if a.ca.is_empty() {
        return Err("Please provide the ca".into());
    }
    if a.key.is_empty() {
        return Err("Please provide the key".into());
    }
    let role = match (a.server, a.client, a.cli) {
        (true, false, false) => CertRole::Server,
        (false, true, false) => CertRole::Client,
        (false, false, true) => CertRole::Cli,
        _ => return Err("Please provide either -server, -client, or -cli".into()),
    };
    if !a.node.is_empty() && !a.server {
        return Err("-node requires -server".into());
    }
    let mut dns_names: Vec<String> = a
        .additional_dnsname
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| d.trim().to_string())
        .collect();
    let mut ip_addresses = a
        .additional_ipaddress
        .iter()
        .filter(|i| !i.is_empty())
        .map(|i| {
            i.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("invalid IP address: {i}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let localhost_ip: IpAddr = [127, 0, 0, 1].into();
    let (kind, name) = match role {
        CertRole::Server => ("server", format!("server.{}.{}", a.dc, a.domain)),
        CertRole::Client => ("client", format!("client.{}.{}", a.dc, a.domain)),
        CertRole::Cli => ("cli", format!("cli.{}.{}", a.dc, a.domain)),
    };
    match role {
        CertRole::Server => {
            if !a.node.is_empty() {
                dns_names.push(format!("{}.server.{}.{}", a.node, a.dc, a.domain));
            }
            dns_names.extend([name.clone(), "localhost".into()]);
            ip_addresses.push(localhost_ip);
        }
        CertRole::Client => {
            dns_names.extend([name.clone(), "localhost".into()]);
            ip_addresses.push(localhost_ip);
        }
        // consul names a CLI certificate only by its own names.
        CertRole::Cli => dns_names = vec![name.clone(), "localhost".into()],
    }
    let prefix = format!("{}-{kind}-{}", a.dc, a.domain);
    let (cert_file, key_file) = (0..=10000)
        .map(|i| (format!("{prefix}-{i}.pem"), format!("{prefix}-{i}-key.pem")))
        .find(|(c, k)| !Path::new(c).exists() && !Path::new(k).exists())
        .ok_or("Could not find a filename that doesn't already exist")?;

    let ca_file = a.ca.replacen("#DOMAIN#", &a.domain, 1);
    let ca_key_file = a.key.replacen("#DOMAIN#", &a.domain, 1);
    let ca_pem = std::fs::read_to_string(&ca_file)
        .map_err(|e| format!("Error reading CA: {}", go_open_error(&ca_file, &e)))?;
    let ca_key_pem = std::fs::read_to_string(&ca_key_file)
        .map_err(|e| format!("Error reading CA key: {}", go_open_error(&ca_key_file, &e)))?;
    if matches!(role, CertRole::Server) {
        println!(
            "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys."
        );
    }
    println!("==> Using {ca_file} and {ca_key_file}");
    let issued = generate_cert(
        &ca_pem,
        &ca_key_pem,
        &CertOptions {
            role,
            common_name: name,
            days: a.days,
            dns_names,
            ip_addresses,
        },
        std::time::SystemTime::now(),
    )
    .map_err(|e| e.to_string())?;
    save(&cert_file, &key_file, &issued)
}

/// Writes the certificate, then its key, saying so as consul does.
fn save(cert_file: &str, key_file: &str, issued: &Issued) -> Result<(), String> {
    for (file, pem) in [(cert_file, &issued.cert_pem), (key_file, &issued.key_pem)] {
        std::fs::write(file, pem).map_err(|e| format!("open {file}: {e}"))?;
        println!("==> Saved {file}");
    }
    Ok(())
}

/// An error opening `file`, worded as Go's `os.Open` words it.
fn go_open_error(file: &str, e: &std::io::Error) -> String {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("open {file}: {reason}")
}
