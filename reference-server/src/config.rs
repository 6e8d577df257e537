//! Server configuration: the YAML file and the command-line flags that override it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether and how a listener or an outbound link uses STARTTLS (RFC 6120 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Never offered, never used.
    Off,
    /// Offered and used when the peer offers it; plaintext otherwise.
    #[default]
    Optional,
    /// Required: a peer that will not negotiate TLS is refused.
    Required,
}

/// An account created at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The localpart.
    pub user: String,
    /// A hosted domain.
    pub domain: String,
    /// The password.
    pub password: String,
}

/// The server's configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Domains this server hosts (at least one).
    pub domains: Vec<String>,
    /// Client-to-server listener.
    pub c2s_listen: SocketAddr,
    /// Server-to-server listener.
    pub s2s_listen: SocketAddr,
    /// Control API listener (keep it on loopback).
    pub control_listen: SocketAddr,
    /// Static routes: remote domain to `host:port` of its s2s listener.
    pub remotes: BTreeMap<String, String>,
    /// Look up remote domains that have no static route in DNS: for XMPP SRV
    /// `_xmpp-server._tcp`, then the domain's addresses on port 5269; for RVP SRV `_rvp._tcp`,
    /// then port 443. Each lookup is bounded by `s2s_timeout_ms`. Off by default: tests never
    /// use public DNS.
    pub dns_fallback: bool,
    /// The nameserver the DNS fallback asks (default: the system's resolv.conf).
    pub dns_server: Option<SocketAddr>,
    /// STARTTLS on client streams.
    pub c2s_tls: TlsMode,
    /// STARTTLS on server streams, both directions.
    pub s2s_tls: TlsMode,
    /// Allow SASL PLAIN on streams without TLS (for tests only).
    pub allow_plain_without_tls: bool,
    /// PEM certificate chain; generated at start for the hosted domains when absent.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates trusted for server-to-server certificate authentication. With
    /// it, an inbound s2s peer whose certificate chains to one of them and names the domain
    /// its stream claims is offered SASL EXTERNAL (RFC 6120 §6.3.4, XEP-0178 §3); other
    /// peers authenticate with dialback, unless the local domain is a secure one.
    pub tls_trust: Option<PathBuf>,
    /// Every hosted domain authenticates its server-to-server links by certificate only:
    /// TLS is required, inbound peers must use SASL EXTERNAL with a certificate that
    /// `tls_trust` verifies (dialback is refused), and outbound links verify the peer's
    /// certificate and authenticate with SASL EXTERNAL (XEP-0178). Needs `tls_trust`.
    pub s2s_secure_auth: bool,
    /// Hosted domains that authenticate as [`Config::s2s_secure_auth`] says while the others
    /// keep dialback (one server can then show both policies).
    pub s2s_secure_domains: Vec<String>,
    /// Dialback secret (XEP-0185); random at start when absent.
    pub dialback_secret: Option<String>,
    /// Bound on setting up an outbound link (connect, TLS and dialback), in milliseconds.
    pub s2s_timeout_ms: u64,
    /// Bound on an inbound server-to-server connection authenticating a domain (header,
    /// STARTTLS and dialback), in milliseconds: a peer that has not by then is closed with
    /// `connection-timeout` (RFC 6120 §4.9.3.4, §13.12: a slow or silent peer cannot hold a
    /// connection). Streams a peer opens only to verify a key end sooner.
    pub s2s_auth_timeout_ms: u64,
    /// Most inbound server-to-server connections open at once from one IP address; more
    /// are answered with `policy-violation` and closed (RFC 6120 §13.12).
    pub s2s_max_connections_per_ip: usize,
    /// Largest stanza accepted, in bytes.
    pub max_stanza_bytes: usize,
    /// XEP-0363 upload service: its HTTP listener (keep it on loopback).
    pub upload_listen: SocketAddr,
    /// The largest file the upload service accepts, in bytes (announced in disco#info).
    pub upload_max_bytes: u64,
    /// Accounts created at start.
    pub accounts: Vec<AccountSpec>,
    /// Misbehaviour switches enabled at start (see `imfed_server::faults`), with an empty scope: they apply to everything.
    pub misbehave: Vec<String>,
    /// RVP client listener (plain HTTP/1.1; keep it on loopback).
    pub rvp_listen: SocketAddr,
    /// RVP server-to-server listener (HTTP/1.1 over TLS, client certificates required and
    /// verified against `tls_trust`).
    pub rvp_s2s_listen: SocketAddr,
    /// Static RVP routes: remote domain to `host:port` of its RVP server-to-server listener.
    pub rvp_remotes: BTreeMap<String, String>,
    /// Longest subscription lifetime and presence lease granted, in seconds.
    pub rvp_max_lease_secs: u64,
    /// Largest `RVP-Hop-Count` a request may reach before it is refused with 508.
    pub rvp_max_hops: u32,
    /// SIP listener, bound on UDP and TCP at the same port, for user agents and other
    /// domains' servers alike (`protocols/sip/PROFILE.md` §1; keep it on loopback).
    pub sip_listen: SocketAddr,
    /// Static SIP routes: remote domain to `host:port[;transport=udp|tcp]` of its server.
    pub sip_remotes: BTreeMap<String, String>,
    /// Shortest registration, publication or subscription interval accepted, in seconds
    /// (shorter ones get `423 Interval Too Brief`, RFC 3261 §10.3 step 7).
    pub sip_min_expires: u32,
    /// Longest interval granted, in seconds (longer ones are shortened).
    pub sip_max_expires: u32,
    /// Largest MESSAGE body accepted, in bytes (larger: `413`, RFC 3428 §7).
    pub sip_max_message_body: usize,
}

impl Default for Config {
    fn default() -> Self {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Config {
            domains: Vec::new(),
            c2s_listen: loopback(0),
            s2s_listen: loopback(0),
            control_listen: loopback(0),
            remotes: BTreeMap::new(),
            dns_fallback: false,
            dns_server: None,
            c2s_tls: TlsMode::Optional,
            s2s_tls: TlsMode::Optional,
            allow_plain_without_tls: false,
            tls_cert: None,
            tls_key: None,
            tls_trust: None,
            s2s_secure_auth: false,
            s2s_secure_domains: Vec::new(),
            dialback_secret: None,
            s2s_timeout_ms: 10_000,
            s2s_auth_timeout_ms: 30_000,
            s2s_max_connections_per_ip: 64,
            max_stanza_bytes: 256 * 1024,
            upload_listen: loopback(0),
            upload_max_bytes: 8 * 1024 * 1024,
            accounts: Vec::new(),
            misbehave: Vec::new(),
            rvp_listen: loopback(0),
            rvp_s2s_listen: loopback(0),
            rvp_remotes: BTreeMap::new(),
            rvp_max_lease_secs: 14_400,
            rvp_max_hops: 4,
            sip_listen: loopback(0),
            sip_remotes: BTreeMap::new(),
            sip_min_expires: 1,
            sip_max_expires: 3600,
            sip_max_message_body: 32_768,
        }
    }
}

/// Errors reading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed or does not match the schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is invalid.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a YAML configuration file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`] (with the line and column).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_saphyr::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
    }

    /// Checks the values that serde cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one domain is required".into(),
            ));
        }
        for domain in &self.domains {
            imfed_xmpp::Jid::new(None, domain, None)
                .map_err(|error| ConfigError::Invalid(format!("domain {domain:?}: {error}")))?;
        }
        if self.rvp_max_lease_secs == 0 || self.rvp_max_hops == 0 {
            return Err(ConfigError::Invalid(
                "rvp_max_lease_secs and rvp_max_hops must be positive".into(),
            ));
        }
        if self.sip_min_expires == 0 || self.sip_min_expires > self.sip_max_expires {
            return Err(ConfigError::Invalid(
                "sip_min_expires must be positive and at most sip_max_expires".into(),
            ));
        }
        for (domain, addr) in self
            .remotes
            .iter()
            .chain(&self.rvp_remotes)
            .chain(&self.sip_remotes)
        {
            if !addr.contains(':') {
                return Err(ConfigError::Invalid(format!(
                    "remote {domain}: {addr:?} is not HOST:PORT"
                )));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key must be given together".into(),
            ));
        }
        for domain in &self.s2s_secure_domains {
            if !self.domains.contains(domain) {
                return Err(ConfigError::Invalid(format!(
                    "s2s_secure_domains: {domain:?} is not hosted"
                )));
            }
        }
        if (self.s2s_secure_auth || !self.s2s_secure_domains.is_empty()) && self.tls_trust.is_none()
        {
            return Err(ConfigError::Invalid(
                "certificate authentication (s2s_secure_auth, s2s_secure_domains) needs tls_trust"
                    .into(),
            ));
        }
        for account in &self.accounts {
            if !self.domains.contains(&account.domain) {
                return Err(ConfigError::Invalid(format!(
                    "account {}@{}: domain is not hosted",
                    account.user, account.domain
                )));
            }
        }
        Ok(())
    }

    /// The outbound link setup bound.
    pub fn s2s_timeout(&self) -> Duration {
        Duration::from_millis(self.s2s_timeout_ms)
    }

    /// Whether `local`'s server-to-server links authenticate by certificate only.
    pub fn secure_domain(&self, local: &str) -> bool {
        self.s2s_secure_auth || self.s2s_secure_domains.iter().any(|d| d == local)
    }

    /// [`Config::s2s_auth_timeout_ms`] as a duration.
    pub fn s2s_auth_timeout(&self) -> Duration {
        Duration::from_millis(self.s2s_auth_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("imfed-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "domains: [a.test]\nc2s_tls: sometimes\n").unwrap();
        let error = Config::load(&path).unwrap_err().to_string();
        assert!(error.contains("bad.yaml"), "{error}");
        assert!(error.contains('2'), "line missing: {error}");
        std::fs::write(&path, "domains: [a.test]\nunknown_key: 1\n").unwrap();
        assert!(Config::load(&path).is_err());
        std::fs::write(
            &path,
            "domains: [a.test]\nremotes: {b.test: '127.0.0.1:5269'}\ns2s_tls: required\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        config.validate().unwrap();
        assert_eq!(config.s2s_tls, TlsMode::Required);
        std::fs::remove_dir_all(&dir).ok();
    }
}
