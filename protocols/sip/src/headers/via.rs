//! RFC 3261 §20.42 and §18.2.1: one `Via` value, `SIP/2.0/UDP host:port;branch=...`, with
//! the `received` and `rport` (RFC 3581) parameters a server adds.

use std::fmt;

use super::HeaderError;
use crate::syntax::{find_param, is_token, parse_params, set_param, trim_wsp, write_params};
use crate::uri::is_host;

/// One `via-parm` (§25.1): the sent-protocol (always SIP/2.0), the sent-by and parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Via {
    /// The transport as written (`UDP`, `TCP`, `TLS`, `SCTP`, or another token, RFC 4475
    /// §3.1.1.10).
    pub transport: String,
    /// The sent-by host: a domain, an IPv4 address or a bracketed IPv6 reference.
    pub host: String,
    /// The sent-by port, if written.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`...), as written.
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    /// Parses a value, LWS allowed around the `/`s, `:`, `;` and `=` (RFC 4475 §3.1.1.1).
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] naming what does not follow §25.1: a protocol other than
    /// `SIP/2.0`, a missing transport or sent-by, a malformed host, port or parameter.
    pub fn parse(value: &str) -> Result<Via, HeaderError> {
        let invalid = |reason| HeaderError::invalid("Via", value, reason);
        let mut parts = value.splitn(3, '/');
        let (Some(name), Some(version), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("no SIP/2.0/transport"));
        };
        if !trim_wsp(name).eq_ignore_ascii_case("SIP") || trim_wsp(version) != "2.0" {
            return Err(invalid("protocol is not SIP/2.0"));
        }
        let rest = trim_wsp(rest);
        let transport_end = rest
            .find([' ', '\t'])
            .ok_or_else(|| invalid("no sent-by"))?;
        let transport = &rest[..transport_end];
        if !is_token(transport) {
            return Err(invalid("malformed transport"));
        }
        let rest = trim_wsp(&rest[transport_end..]);
        let (sent_by, params) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
        // `host [ COLON port ]`, COLON = SWS ":" SWS.
        let sent_by = trim_wsp(sent_by);
        let host_end = if sent_by.starts_with('[') {
            sent_by.find(']').map(|end| end + 1)
        } else {
            Some(sent_by.find([':', ' ', '\t']).unwrap_or(sent_by.len()))
        };
        let (host, after) =
            sent_by.split_at(host_end.ok_or_else(|| invalid("malformed sent-by host"))?);
        if !is_host(host) {
            return Err(invalid("malformed sent-by host"));
        }
        let after = trim_wsp(after);
        let port = match after.strip_prefix(':').map(trim_wsp) {
            None if after.is_empty() => None,
            Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => Some(
                port.parse::<u16>()
                    .map_err(|_| invalid("port over 65535"))?,
            ),
            _ => return Err(invalid("malformed sent-by port")),
        };
        let params = parse_params(params).map_err(invalid)?;
        Ok(Via {
            transport: transport.to_string(),
            host: host.to_string(),
            port,
            params,
        })
    }

    /// `SIP/2.0/{transport} {host}:{port};branch={branch}`.
    pub fn new(transport: &str, host: &str, port: u16, branch: &str) -> Via {
        Via {
            transport: transport.to_string(),
            host: host.to_string(),
            port: Some(port),
            params: vec![("branch".to_string(), Some(branch.to_string()))],
        }
    }

    /// The `branch` parameter (§8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// Parameter `name` (case-insensitive): `Some(None)` for a flag such as `rport`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// Sets parameter `name` (replacing one of that name, else appended): what a server
    /// does with `received` (§18.2.1) and `rport` (RFC 3581 §4).
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        set_param(&mut self.params, name, value);
    }

    /// `host` or `host:port`, as a server compares it (§17.2.3) and answers to it
    /// (§18.2.2).
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// `SIP/2.0/{transport} {sent-by};params`.
impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_spacing() {
        let via = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;rport;branch=390skdjuw").unwrap();
        assert_eq!(
            (via.transport.as_str(), via.host.as_str(), via.port),
            ("UDP", "192.0.2.2", None)
        );
        assert_eq!(via.param("rport"), Some(None));
        assert_eq!(via.branch(), Some("390skdjuw"));
        let via =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(via.sent_by(), "spindle.example.com");
        assert_eq!(via.branch(), Some("z9hG4bK9ikj8"));
        let via =
            Via::parse("SIP/2.0/TLS [2001:db8::9:1] : 5061;received=2001:db8::9:255").unwrap();
        assert_eq!(via.sent_by(), "[2001:db8::9:1]:5061");
        assert_eq!(
            via.to_string(),
            "SIP/2.0/TLS [2001:db8::9:1]:5061;received=2001:db8::9:255"
        );
    }

    #[test]
    fn invalid_values() {
        for value in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0 UDP host",
            "SIP/3.0/UDP host",
            "HTTP/2.0/UDP host",
            "SIP/2.0/UDP ho st",
            "SIP/2.0/UDP host:port",
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0/U<P host",
        ] {
            assert!(Via::parse(value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn server_parameters() {
        let mut via = Via::parse("SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport").unwrap();
        via.set_param("received", Some("192.0.2.7"));
        via.set_param("rport", Some("40000"));
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKx;rport=40000;received=192.0.2.7"
        );
        let via = Via::new("TCP", "127.0.0.1", 5060, "z9hG4bKabc");
        assert_eq!(
            via.to_string(),
            "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKabc"
        );
        assert_eq!(Via::parse(&via.to_string()), Ok(via));
    }
}
