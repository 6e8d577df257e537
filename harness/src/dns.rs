//! A loopback DNS responder for implementations that find remote domains only by DNS
//! (RFC 6120 §3.2.1: SRV `_xmpp-server._tcp.<domain>`, then the target's address; for RVP,
//! PROFILE.md §6: SRV `_rvp._tcp.<domain>`; for SIP, RFC 3263 §4.2 as its PROFILE.md §5
//! uses it: SRV `_sip._udp.<domain>`).
//!
//! It is authoritative for the root zone and knows only the domains it is given: for each
//! XMPP host (`--host`), `_xmpp-server._tcp.<domain>.` SRV (priority 0, weight 0, the port,
//! target `<domain>.`); for each RVP host (`--rvp-host`), `_rvp._tcp.<domain>.` SRV alike;
//! for each SIP host (`--sip-host`), `_sip._udp.<domain>.` SRV alike; and for each,
//! `<domain>.` A or AAAA (the IP, which must then be the same for all).
//! Every other name is NXDOMAIN (so `_xmpps-server._tcp`, RFC 7590's direct TLS, falls
//! through to STARTTLS), and a name that exists answers other types with no records: public
//! DNS is never consulted and no query leaves the responder.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// Time to live of every answer: short, so a restarted peer on a new port is found again.
pub const TTL: u32 = 5;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Buffered responses per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;

/// The SRV service label of each map of a [`Zone`].
const XMPP_SERVICE: &str = "_xmpp-server._tcp";
const RVP_SERVICE: &str = "_rvp._tcp";
const SIP_SERVICE: &str = "_sip._udp";

/// What the responder answers: each domain's server-to-server addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    /// Domain (without the trailing dot) -> its XMPP s2s listener (`_xmpp-server._tcp`).
    pub records: BTreeMap<String, SocketAddr>,
    /// Domain (without the trailing dot) -> its RVP server-to-server listener (`_rvp._tcp`).
    pub rvp: BTreeMap<String, SocketAddr>,
    /// Domain (without the trailing dot) -> its SIP server (`_sip._udp`, RFC 3263 §4.2;
    /// `protocols/sip/PROFILE.md` §5).
    pub sip: BTreeMap<String, SocketAddr>,
}

impl Zone {
    /// Parses `DOMAIN=IP:PORT` (an IPv6 address in brackets: `DOMAIN=[::1]:PORT`), the form
    /// of the command line's `--host`, `--rvp-host` and `--sip-host`.
    ///
    /// # Errors
    /// What is wrong, as text.
    pub fn parse_host(text: &str) -> Result<(String, SocketAddr), String> {
        let (domain, addr) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: want DOMAIN=IP:PORT"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("{text:?}: address {addr:?}: {e}"))?;
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        fqdn(&domain).map_err(|e| format!("{text:?}: {e}"))?;
        Ok((domain, addr))
    }

    /// The records served, one per line in zone-file form (for logs and errors).
    pub fn describe(&self) -> String {
        self.services()
            .map(|(service, domain, addr)| {
                format!(
                    "{service}.{domain}. SRV 0 0 {} {domain}. ; {domain}. {} {}",
                    addr.port(),
                    if addr.is_ipv4() { "A" } else { "AAAA" },
                    addr.ip()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every SRV record served: service label, domain, address.
    fn services(&self) -> impl Iterator<Item = (&'static str, &String, &SocketAddr)> {
        let xmpp = self.records.iter().map(|(d, a)| (XMPP_SERVICE, d, a));
        let rvp = self.rvp.iter().map(|(d, a)| (RVP_SERVICE, d, a));
        let sip = self.sip.iter().map(|(d, a)| (SIP_SERVICE, d, a));
        xmpp.chain(rvp).chain(sip)
    }
}

fn fqdn(domain: &str) -> Result<Name, String> {
    if domain.is_empty() {
        return Err("empty domain".into());
    }
    let mut name =
        Name::from_utf8(domain).map_err(|e| format!("domain {domain:?} is not a DNS name: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The root zone holding `zone`'s records.
fn catalog(zone: &Zone) -> io::Result<Catalog> {
    let root = Name::root();
    let mut handler: InMemoryZoneHandler =
        InMemoryZoneHandler::empty(root.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let serial = 1;
    let soa = SOA::new(
        Name::from_ascii("ns.imfed.invalid.").map_err(|e| invalid(e.to_string()))?,
        Name::from_ascii("hostmaster.imfed.invalid.").map_err(|e| invalid(e.to_string()))?,
        serial,
        60,
        60,
        60,
        TTL,
    );
    handler.upsert_mut(
        Record::from_rdata(root.clone(), TTL, RData::SOA(soa)),
        serial,
    );
    // One address per domain, whichever services it offers.
    let mut addresses: BTreeMap<Name, IpAddr> = BTreeMap::new();
    for (label, domain, addr) in zone.services() {
        let name = fqdn(domain.trim_end_matches('.')).map_err(invalid)?;
        let service = Name::from_ascii(label)
            .and_then(|prefix| prefix.append_domain(&name))
            .map_err(|e| invalid(format!("domain {domain:?}: {e}")))?;
        let srv = SRV::new(0, 0, addr.port(), name.clone());
        handler.upsert_mut(Record::from_rdata(service, TTL, RData::SRV(srv)), serial);
        match addresses.insert(name, addr.ip()) {
            Some(ip) if ip != addr.ip() => {
                return Err(invalid(format!(
                    "domain {domain:?}: its XMPP and RVP hosts must share one IP ({ip}, {})",
                    addr.ip()
                )));
            }
            _ => {}
        }
    }
    for (name, ip) in addresses {
        let address = match ip {
            IpAddr::V4(ip) => RData::A(A(ip)),
            IpAddr::V6(ip) => RData::AAAA(AAAA(ip)),
        };
        handler.upsert_mut(Record::from_rdata(name, TTL, address), serial);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&root), vec![Arc::new(handler)]);
    Ok(catalog)
}

/// Binds UDP and TCP on the same address; port 0 picks a port free for both.
///
/// # Errors
/// The bind error (after a few tries for port 0, whose UDP port may be taken on TCP).
pub async fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let tries = if addr.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

/// Answers queries for `zone` on `udp` and `tcp` until `shutdown` is cancelled, then stops
/// (open TCP connections are dropped).
///
/// # Errors
/// `InvalidInput` for a domain that is not a DNS name; an I/O error if a socket fails.
pub async fn serve(
    udp: UdpSocket,
    tcp: TcpListener,
    zone: Zone,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut server = Server::new(catalog(&zone)?);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
    let failed = tokio::select! {
        result = server.block_until_done() => Some(result),
        () = shutdown.cancelled() => None,
    };
    let result = match failed {
        Some(result) => result,
        None => server.shutdown_gracefully().await,
    };
    result.map_err(|e| io::Error::other(format!("DNS responder: {e}")))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_resolver::Resolver;
    use hickory_resolver::config::{
        ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
    };
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    use hickory_resolver::proto::op::{Message, Query, ResponseCode};
    use hickory_resolver::proto::rr::RecordType;

    use super::*;

    struct Running {
        addr: SocketAddr,
        shutdown: CancellationToken,
        task: tokio::task::JoinHandle<io::Result<()>>,
    }

    async fn start(records: &[(&str, &str)]) -> Running {
        start_zone(Zone {
            records: hosts(records),
            ..Zone::default()
        })
        .await
    }

    fn hosts(records: &[(&str, &str)]) -> BTreeMap<String, SocketAddr> {
        records
            .iter()
            .map(|(d, a)| ((*d).to_string(), a.parse().unwrap()))
            .collect()
    }

    async fn start_zone(zone: Zone) -> Running {
        // Same port on UDP and TCP, as a resolver expects.
        let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = udp.local_addr().unwrap();
        assert_eq!(tcp.local_addr().unwrap(), addr);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(udp, tcp, zone, shutdown.clone()));
        Running {
            addr,
            shutdown,
            task,
        }
    }

    /// A resolver that asks only `addr`, over UDP (or TCP), and caches nothing.
    fn resolver(addr: SocketAddr, tcp: bool) -> Resolver<TokioRuntimeProvider> {
        let mut connection = if tcp {
            ConnectionConfig::tcp()
        } else {
            ConnectionConfig::udp()
        };
        connection.port = addr.port();
        let server = NameServerConfig::new(addr.ip(), true, vec![connection]);
        let mut options = ResolverOpts::default();
        options.cache_size = 0;
        options.attempts = 1;
        options.timeout = Duration::from_secs(2);
        Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![server]),
            TokioRuntimeProvider::default(),
        )
        .with_options(options)
        .build()
        .unwrap()
    }

    fn response_code(error: &hickory_resolver::net::NetError) -> Option<ResponseCode> {
        use hickory_resolver::net::{DnsError, NetError};
        match error {
            NetError::Dns(DnsError::NoRecordsFound(no_records)) => Some(no_records.response_code),
            _ => None,
        }
    }

    #[tokio::test]
    async fn srv_points_at_the_domain_and_a_at_its_address() {
        let running = start(&[
            ("ref.test", "127.0.0.1:40269"),
            ("Other.Test", "127.0.0.2:5"),
        ])
        .await;
        for tcp in [false, true] {
            let resolver = resolver(running.addr, tcp);
            let srv = resolver
                .srv_lookup("_xmpp-server._tcp.ref.test.")
                .await
                .unwrap();
            let records: Vec<_> = srv.answers().iter().collect();
            assert_eq!(records.len(), 1, "{records:?}");
            assert_eq!(records[0].ttl, TTL);
            let RData::SRV(srv) = &records[0].data else {
                panic!("not SRV: {:?}", records[0]);
            };
            assert_eq!(
                (srv.priority, srv.weight, srv.port),
                (0, 0, 40269),
                "tcp={tcp}"
            );
            assert_eq!(srv.target, Name::from_ascii("ref.test.").unwrap());
            let ips: Vec<IpAddr> = resolver
                .lookup_ip("ref.test.")
                .await
                .unwrap()
                .iter()
                .collect();
            assert_eq!(ips, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
            // Domains are case-insensitive.
            let ips: Vec<IpAddr> = resolver
                .lookup_ip("OTHER.test.")
                .await
                .unwrap()
                .iter()
                .collect();
            assert_eq!(ips, vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))]);
        }
        running.shutdown.cancel();
        running.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn aaaa_is_empty_and_other_names_do_not_exist() {
        let running = start(&[("ref.test", "127.0.0.1:40269")]).await;
        let resolver = resolver(running.addr, false);
        // The name exists: no AAAA records (NOERROR, empty).
        let error = resolver
            .lookup("ref.test.", RecordType::AAAA)
            .await
            .unwrap_err();
        assert_eq!(
            response_code(&error),
            Some(ResponseCode::NoError),
            "{error}"
        );
        // Direct TLS, unknown domains, and names below a known domain: NXDOMAIN.
        for name in [
            "_xmpps-server._tcp.ref.test.",
            "_xmpp-client._tcp.ref.test.",
            "_rvp._tcp.ref.test.",
            "_xmpp-server._tcp.nowhere.invalid.",
            "nowhere.invalid.",
            "example.com.",
            "x.ref.test.",
        ] {
            let error = resolver.lookup(name, RecordType::SRV).await.unwrap_err();
            assert!(error.is_nx_domain(), "{name}: {error}");
            let error = resolver.lookup(name, RecordType::A).await.unwrap_err();
            assert!(error.is_nx_domain(), "{name}: {error}");
        }
        running.shutdown.cancel();
        running.task.await.unwrap().unwrap();
    }

    /// One plain query over UDP, as a stub resolver like Erlang's `inet_res` sends it (no
    /// EDNS, recursion desired).
    async fn raw_query(server: SocketAddr, name: &str, kind: RecordType) -> Message {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        socket
            .send_to(&query.to_vec().unwrap(), server)
            .await
            .unwrap();
        let mut buffer = vec![0; 4096];
        let (len, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
            .await
            .expect("an answer within 2s")
            .unwrap();
        let response = Message::from_vec(&buffer[..len]).unwrap();
        assert_eq!(response.metadata.id, query.metadata.id);
        response
    }

    #[tokio::test]
    async fn answers_are_authoritative() {
        let running = start(&[("ref.test", "127.0.0.1:40269")]).await;
        let srv = raw_query(running.addr, "_xmpp-server._tcp.ref.test.", RecordType::SRV).await;
        assert!(srv.metadata.authoritative);
        assert_eq!(srv.metadata.response_code, ResponseCode::NoError);
        assert_eq!(srv.answers.len(), 1, "{srv:?}");
        let missing = raw_query(
            running.addr,
            "_xmpps-server._tcp.ref.test.",
            RecordType::SRV,
        )
        .await;
        assert!(missing.metadata.authoritative);
        assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
        assert!(missing.answers.is_empty());
        let empty = raw_query(running.addr, "ref.test.", RecordType::AAAA).await;
        assert_eq!(empty.metadata.response_code, ResponseCode::NoError);
        assert!(empty.answers.is_empty());
        running.shutdown.cancel();
        running.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn rvp_and_sip_hosts_answer_their_srv_beside_xmpp() {
        let running = start_zone(Zone {
            records: hosts(&[("ref.test", "127.0.0.1:40269")]),
            rvp: hosts(&[
                ("ref.test", "127.0.0.1:40443"),
                ("rvp.test", "127.0.0.2:443"),
            ]),
            sip: hosts(&[("ref.test", "127.0.0.1:45060")]),
        })
        .await;
        let resolver = resolver(running.addr, false);
        for (name, port) in [
            ("_xmpp-server._tcp.ref.test.", 40269),
            ("_rvp._tcp.ref.test.", 40443),
            ("_sip._udp.ref.test.", 45060),
            ("_rvp._tcp.rvp.test.", 443),
        ] {
            let srv = resolver.srv_lookup(name).await.unwrap();
            let ports: Vec<u16> = srv
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some(srv.port),
                    _ => None,
                })
                .collect();
            assert_eq!(ports, vec![port], "{name}");
        }
        let error = resolver
            .lookup("_xmpp-server._tcp.rvp.test.", RecordType::SRV)
            .await
            .unwrap_err();
        assert!(error.is_nx_domain(), "{error}");
        for (name, ip) in [("ref.test.", [127, 0, 0, 1]), ("rvp.test.", [127, 0, 0, 2])] {
            let ips: Vec<IpAddr> = resolver.lookup_ip(name).await.unwrap().iter().collect();
            assert_eq!(ips, vec![IpAddr::from(ip)], "{name}: one address");
        }
        running.shutdown.cancel();
        running.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_domain_with_two_ips_is_invalid_input() {
        let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let zone = Zone {
            records: hosts(&[("ref.test", "127.0.0.1:1")]),
            rvp: hosts(&[("ref.test", "127.0.0.2:1")]),
            ..Zone::default()
        };
        let error = serve(udp, tcp, zone, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{error}");
    }

    #[tokio::test]
    async fn ipv6_addresses_answer_aaaa() {
        let running = start(&[("v6.test", "[::1]:5269")]).await;
        let resolver = resolver(running.addr, false);
        let ips: Vec<IpAddr> = resolver
            .lookup_ip("v6.test.")
            .await
            .unwrap()
            .iter()
            .collect();
        assert_eq!(ips, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        running.shutdown.cancel();
        running.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_stops_answering() {
        let running = start(&[("ref.test", "127.0.0.1:1")]).await;
        running.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), running.task)
            .await
            .expect("stopped within 5s")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(running.addr).await.is_err());
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Zone::parse_host("Ref.Test.=127.0.0.1:5269").unwrap(),
            ("ref.test".to_string(), "127.0.0.1:5269".parse().unwrap())
        );
        assert_eq!(
            Zone::parse_host("v6.test=[::1]:1").unwrap().1,
            "[::1]:1".parse::<SocketAddr>().unwrap()
        );
        for bad in [
            "ref.test",
            "=127.0.0.1:1",
            "ref.test=127.0.0.1",
            "ref.test=host:1",
            "a..b=127.0.0.1:1",
        ] {
            assert!(Zone::parse_host(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_bad_domain_is_invalid_input() {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let zone = Zone {
            records: BTreeMap::from([("a..b".to_string(), "127.0.0.1:1".parse().unwrap())]),
            ..Zone::default()
        };
        let error = serve(udp, tcp, zone, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
