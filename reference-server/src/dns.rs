//! Finding another domain's server in DNS, for the front-ends' `dns_fallback`: SRV
//! `<service>.<domain>` (RFC 2782), its targets' addresses in priority order, else the
//! domain's own A/AAAA on the protocol's default port (RFC 6120 §3.2.1 for XMPP's
//! `_xmpp-server._tcp` and 5269; PROFILE.md §6 for RVP's `_rvp._tcp` and 443).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// Why a domain's server was not found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// DNS answered, and holds no SRV or address record for the domain.
    #[error("no {service} SRV or address record for {domain}")]
    NoRecords {
        /// The SRV service label, e.g. `_rvp._tcp`.
        service: &'static str,
        /// The domain looked up.
        domain: String,
    },
    /// The resolver could not be set up or the nameserver gave no usable answer.
    #[error("DNS lookup for {domain} failed: {reason}")]
    Failed {
        /// The domain looked up.
        domain: String,
        /// The resolver's error.
        reason: String,
    },
    /// The lookup did not finish within its bound.
    #[error("DNS lookup for {domain} timed out after {bound:?}")]
    Timeout {
        /// The domain looked up.
        domain: String,
        /// The bound.
        bound: Duration,
    },
}

/// The addresses of `domain`'s `service` (e.g. `_rvp._tcp`), best first: SRV targets by
/// priority then weight, else the domain's addresses on `default_port`. Asks `server` when
/// given, else the system's nameservers; the whole lookup is bounded by `bound`.
///
/// # Errors
/// [`LookupError::NoRecords`] when neither SRV nor address records exist,
/// [`LookupError::Failed`] for any other resolver failure, [`LookupError::Timeout`].
pub async fn lookup(
    service: &'static str,
    domain: &str,
    default_port: u16,
    server: Option<SocketAddr>,
    bound: Duration,
) -> Result<Vec<SocketAddr>, LookupError> {
    tokio::time::timeout(
        bound,
        lookup_unbounded(service, domain, default_port, server),
    )
    .await
    .unwrap_or_else(|_| {
        Err(LookupError::Timeout {
            domain: domain.to_string(),
            bound,
        })
    })
}

async fn lookup_unbounded(
    service: &'static str,
    domain: &str,
    default_port: u16,
    server: Option<SocketAddr>,
) -> Result<Vec<SocketAddr>, LookupError> {
    let failed = |error: &dyn std::fmt::Display| LookupError::Failed {
        domain: domain.to_string(),
        reason: error.to_string(),
    };
    let resolver = resolver(server).map_err(|error| failed(&error))?;
    let mut addrs = Vec::new();
    // RFC 6120 §3.2.2: whatever went wrong with SRV, fall back to the domain's addresses;
    // a hard SRV failure is kept to explain a fallback that finds nothing either.
    let srv_failure = match resolver.srv_lookup(format!("{service}.{domain}.")).await {
        Ok(srv) => {
            let mut records: Vec<_> = srv
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some(srv.clone()),
                    _ => None,
                })
                .collect();
            records.sort_by_key(|srv| (srv.priority, std::cmp::Reverse(srv.weight)));
            for record in records {
                let target = record.target.to_utf8();
                if let Ok(ips) = resolver.lookup_ip(target.as_str()).await {
                    addrs.extend(ips.iter().map(|ip| SocketAddr::new(ip, record.port)));
                }
            }
            None
        }
        Err(error) if error.is_no_records_found() => None,
        Err(error) => Some(error),
    };
    if addrs.is_empty() {
        match resolver.lookup_ip(format!("{domain}.")).await {
            Ok(ips) => addrs.extend(ips.iter().map(|ip| SocketAddr::new(ip, default_port))),
            Err(error) if error.is_no_records_found() => {
                return Err(match srv_failure {
                    Some(error) => failed(&error),
                    None => LookupError::NoRecords {
                        service,
                        domain: domain.to_string(),
                    },
                });
            }
            Err(error) => return Err(failed(&error)),
        }
    }
    Ok(addrs)
}

/// A resolver asking `server` over UDP and TCP, else the system's resolv.conf.
fn resolver(server: Option<SocketAddr>) -> Result<Resolver<TokioRuntimeProvider>, NetError> {
    let builder = match server {
        Some(server) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = server.port();
            let nameserver = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![nameserver]),
                TokioRuntimeProvider::default(),
            )
        }
        None => Resolver::builder_tokio()?,
    };
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nameserver that never answers: the bound ends the lookup, with the reason.
    #[tokio::test]
    async fn a_silent_nameserver_times_out_within_the_bound() {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let bound = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let error = lookup(
            "_rvp._tcp",
            "b.test",
            443,
            Some(silent.local_addr().unwrap()),
            bound,
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{error}");
        assert!(
            matches!(
                error,
                LookupError::Timeout { .. } | LookupError::Failed { .. }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("b.test"), "{error}");
    }
}
