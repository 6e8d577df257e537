//! `imfed-server`: the reference federated XMPP server of the imfed suite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use imfed_server::config::{AccountSpec, Config, TlsMode};
use imfed_server::{Server, StartError};

/// The reference federated IM and presence server of the imfed conformance suite.
///
/// Serves XMPP clients (RFC 6120/6121) and federates with other servers over
/// server-to-server streams with dialback (XEP-0220). When ready, prints one JSON line on
/// stdout with the bound addresses: {"domains":[...],"c2s":"...","s2s":"...","control":"...","rvp":"...","rvp_s2s":"...","sip":"...","upload":"..."}.
/// SIGTERM or Ctrl-C stops it gracefully; a second signal stops it at once.
///
/// Exit codes: 0 stopped cleanly; 1 could not start (bad configuration, TLS material or
/// listener); 2 bad command line.
#[derive(Debug, Parser)]
#[command(name = "imfed-server", version, about, long_about)]
struct Cli {
    /// YAML configuration file; the flags below override its values.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// A domain to host (repeatable; at least one here or in the file).
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,

    /// Client-to-server listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    c2s: Option<SocketAddr>,

    /// Server-to-server listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    s2s: Option<SocketAddr>,

    /// Control API listen address (port 0 picks a free port; keep it on loopback).
    #[arg(long, value_name = "ADDR")]
    control: Option<SocketAddr>,

    /// Static route to a remote domain's s2s listener (repeatable).
    #[arg(long = "remote", value_name = "DOMAIN=HOST:PORT", value_parser = parse_remote)]
    remotes: Vec<(String, String)>,

    /// Look up remote domains without a static route in DNS (SRV `_xmpp-server._tcp` or
    /// `_rvp._tcp`, then address records on port 5269 or 443).
    #[arg(long)]
    dns_fallback: bool,

    /// RVP client listener (plain HTTP; default 127.0.0.1:0).
    #[arg(long, value_name = "ADDR")]
    rvp: Option<SocketAddr>,

    /// RVP server-to-server listener (mutual TLS; default 127.0.0.1:0).
    #[arg(long, value_name = "ADDR")]
    rvp_s2s: Option<SocketAddr>,

    /// Static route to a remote domain's RVP server-to-server listener (repeatable).
    #[arg(long = "rvp-remote", value_name = "DOMAIN=HOST:PORT", value_parser = parse_remote)]
    rvp_remotes: Vec<(String, String)>,

    /// SIP listener, UDP and TCP on the same port (default 127.0.0.1:0).
    #[arg(long, value_name = "ADDR")]
    sip: Option<SocketAddr>,

    /// XEP-0363 upload service listener, plain HTTP (keep it on loopback).
    #[arg(long, value_name = "ADDR")]
    upload: Option<SocketAddr>,

    /// The largest file the upload service accepts, in bytes (default 8 MiB).
    #[arg(long, value_name = "BYTES")]
    upload_max_bytes: Option<u64>,

    /// Static route to a remote domain's SIP server (repeatable); `;transport=tcp` picks TCP
    /// (default UDP).
    #[arg(long = "sip-remote", value_name = "DOMAIN=HOST:PORT[;transport=udp|tcp]", value_parser = parse_remote)]
    sip_remotes: Vec<(String, String)>,

    /// The nameserver for --dns-fallback (default: the system's resolv.conf).
    #[arg(long, value_name = "ADDR", requires = "dns_fallback")]
    dns_server: Option<SocketAddr>,

    /// STARTTLS policy for both client and server streams.
    #[arg(long, value_enum, value_name = "MODE")]
    tls: Option<TlsMode>,

    /// STARTTLS policy for client streams (overrides --tls).
    #[arg(long, value_enum, value_name = "MODE")]
    c2s_tls: Option<TlsMode>,

    /// STARTTLS policy for server streams (overrides --tls).
    #[arg(long, value_enum, value_name = "MODE")]
    s2s_tls: Option<TlsMode>,

    /// PEM certificate chain (a self-signed one for the domains is generated if absent).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// PEM CA certificates for server-to-server certificate authentication: a peer whose
    /// certificate chains to one and names its domain is offered SASL EXTERNAL; without it
    /// every peer authenticates with dialback.
    #[arg(long, value_name = "FILE")]
    tls_trust: Option<PathBuf>,

    /// Authenticate every federation link by certificate only (SASL EXTERNAL, XEP-0178):
    /// dialback is refused; needs --tls-trust.
    #[arg(long)]
    s2s_secure_auth: bool,

    /// A hosted domain that authenticates its federation links by certificate only, the
    /// others keeping dialback (repeatable; needs --tls-trust).
    #[arg(long = "s2s-secure-domain", value_name = "DOMAIN")]
    s2s_secure_domains: Vec<String>,

    /// Allow SASL PLAIN without TLS (tests only).
    #[arg(long)]
    allow_plain: bool,

    /// An account to create at start (repeatable).
    #[arg(long = "account", value_name = "USER@DOMAIN:PASSWORD", value_parser = parse_account)]
    accounts: Vec<AccountSpec>,

    /// Dialback secret (random if absent).
    #[arg(long, value_name = "SECRET")]
    dialback_secret: Option<String>,

    /// Bound on setting up an outbound federation link, in milliseconds.
    #[arg(long, value_name = "MS")]
    s2s_timeout_ms: Option<u64>,

    /// Bound on an inbound federation connection authenticating, in milliseconds (default
    /// 30000): a peer that has not by then is closed with connection-timeout.
    #[arg(long, value_name = "MS")]
    s2s_auth_timeout_ms: Option<u64>,

    /// Most inbound federation connections open at once from one IP address (default 64);
    /// more are refused with policy-violation.
    #[arg(long, value_name = "N")]
    s2s_max_connections_per_ip: Option<usize>,

    /// Turn on a misbehaviour switch (repeatable; for testing the suite only).
    #[arg(long = "misbehave", value_name = "SWITCH")]
    misbehave: Vec<String>,

    /// Log filter for stderr (tracing EnvFilter syntax), e.g. info or imfed_server=debug.
    #[arg(long, value_name = "FILTER", default_value = "warn", env = "IMFED_LOG")]
    log: String,
}

fn parse_remote(value: &str) -> Result<(String, String), String> {
    let (domain, addr) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not DOMAIN=HOST:PORT"))?;
    if domain.is_empty() || !addr.contains(':') {
        return Err(format!("{value:?} is not DOMAIN=HOST:PORT"));
    }
    Ok((domain.to_string(), addr.to_string()))
}

fn parse_account(value: &str) -> Result<AccountSpec, String> {
    let (jid, password) = value
        .split_once(':')
        .ok_or_else(|| format!("{value:?} is not USER@DOMAIN:PASSWORD"))?;
    let (user, domain) = jid
        .split_once('@')
        .ok_or_else(|| format!("{value:?} is not USER@DOMAIN:PASSWORD"))?;
    Ok(AccountSpec {
        user: user.to_string(),
        domain: domain.to_string(),
        password: password.to_string(),
    })
}

impl Cli {
    fn into_config(self) -> Result<Config, StartError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        config.domains.extend(self.domains);
        config.domains.dedup();
        if let Some(addr) = self.c2s {
            config.c2s_listen = addr;
        }
        if let Some(addr) = self.rvp {
            config.rvp_listen = addr;
        }
        if let Some(addr) = self.rvp_s2s {
            config.rvp_s2s_listen = addr;
        }
        config.rvp_remotes.extend(self.rvp_remotes);
        if let Some(addr) = self.sip {
            config.sip_listen = addr;
        }
        config.sip_remotes.extend(self.sip_remotes);
        if let Some(addr) = self.upload {
            config.upload_listen = addr;
        }
        if let Some(bytes) = self.upload_max_bytes {
            config.upload_max_bytes = bytes;
        }
        if let Some(addr) = self.s2s {
            config.s2s_listen = addr;
        }
        if let Some(addr) = self.control {
            config.control_listen = addr;
        }
        config.remotes.extend(self.remotes);
        config.dns_fallback |= self.dns_fallback;
        if self.dns_server.is_some() {
            config.dns_server = self.dns_server;
        }
        if let Some(mode) = self.tls {
            config.c2s_tls = mode;
            config.s2s_tls = mode;
        }
        if let Some(mode) = self.c2s_tls {
            config.c2s_tls = mode;
        }
        if let Some(mode) = self.s2s_tls {
            config.s2s_tls = mode;
        }
        if self.tls_cert.is_some() {
            config.tls_cert = self.tls_cert;
            config.tls_key = self.tls_key;
        }
        config.s2s_secure_auth |= self.s2s_secure_auth;
        config.s2s_secure_domains.extend(self.s2s_secure_domains);
        if self.tls_trust.is_some() {
            config.tls_trust = self.tls_trust;
        }
        config.allow_plain_without_tls |= self.allow_plain;
        config.accounts.extend(self.accounts);
        if self.dialback_secret.is_some() {
            config.dialback_secret = self.dialback_secret;
        }
        if let Some(ms) = self.s2s_timeout_ms {
            config.s2s_timeout_ms = ms;
        }
        if let Some(ms) = self.s2s_auth_timeout_ms {
            config.s2s_auth_timeout_ms = ms;
        }
        if let Some(n) = self.s2s_max_connections_per_ip {
            config.s2s_max_connections_per_ip = n;
        }
        config.misbehave.extend(self.misbehave);
        Ok(config)
    }
}

fn report(error: &dyn std::error::Error) {
    eprintln!("imfed-server: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(error) => {
            report(&error);
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report(&error);
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let running = match Server::new(config).start().await {
            Ok(running) => running,
            Err(error) => {
                report(&error);
                return ExitCode::from(1);
            }
        };
        println!(
            "{}",
            serde_json::to_string(&running.addresses).expect("addresses serialize")
        );
        let token = running.shutdown_token();
        tokio::spawn(async move {
            wait_for_signal().await;
            token.cancel();
            wait_for_signal().await;
            eprintln!("imfed-server: second signal, exiting at once");
            std::process::exit(130);
        });
        running.wait().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
