//! RVP §4.1.2: addressing by URL: node URLs, principal URLs and server names.
//!
//! Every RVP entity is a node named by an `http://` URL. Human principals live under
//! `/instmsg/aliases/<user>` (`http://im.acme.com/instmsg/aliases/bruceb`); other nodes
//! (`/lists/sales-event`, the physical URL `/instmsg/local/im.domain2.com/instmsg/aliases/kevinf`,
//! a callback node `http://198.176.154.132:1234` with no path at all) keep their path as
//! an opaque string. How a sign-in name `user@domain` maps to a host is a convention of
//! the caller (§4.1.2 gives `andyo@domain1.com` → `im.domain1.com` as one possibility), so
//! the constructors take the host as a parameter.

use std::fmt;
use std::str::FromStr;

/// The path prefix of human principals (§4.1.2).
pub const ALIASES_PREFIX: &str = "/instmsg/aliases/";

/// A URL, host name or address that is not usable as an RVP node name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL does not start with `http://` (RVP runs on HTTP, §3).
    #[error("{url:?} is not an http:// URL")]
    Scheme {
        /// The rejected text.
        url: String,
    },
    /// The host is missing or holds characters a host name cannot.
    #[error("invalid host in {input:?}")]
    Host {
        /// The rejected URL or host name.
        input: String,
    },
    /// The port is not a number from 0 to 65535.
    #[error("invalid port in {url:?}")]
    Port {
        /// The rejected text.
        url: String,
    },
    /// The URL holds user information, a fragment, whitespace, control or non-ASCII
    /// characters.
    #[error("{url:?} is not a node URL: {reason}")]
    Syntax {
        /// The rejected text.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A user name that is empty or holds `/`, `?`, `#`, `@`, whitespace or non-ASCII
    /// characters.
    #[error("invalid user name {user:?}")]
    User {
        /// The rejected user name.
        user: String,
    },
    /// An address that is not `user@domain`.
    #[error("{address:?} is not a user@domain address")]
    Address {
        /// The rejected address.
        address: String,
    },
}

/// The URL of an RVP node (§4.1.2): `http://host[:port]path`.
///
/// The host is lower-cased. A path `/instmsg/aliases/<user>` (prefix matched without
/// regard to case, one trailing `/` allowed, as in the ACL example of §5.7.3) is a
/// principal: it is stored as `/instmsg/aliases/` plus the user lower-cased, as real
/// clients write it (Net::RVP lower-cases; Exchange compares without case). Any other
/// path is kept exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeUrl {
    host: String,
    port: Option<u16>,
    path: String,
}

impl NodeUrl {
    /// Parses `http://host[:port][path]`.
    ///
    /// # Errors
    /// [`UrlError::Scheme`] for another scheme, [`UrlError::Host`] or [`UrlError::Port`]
    /// for a bad authority, [`UrlError::Syntax`] for user information, a fragment,
    /// whitespace, control or non-ASCII characters.
    pub fn parse(url: &str) -> Result<NodeUrl, UrlError> {
        let syntax = |reason| UrlError::Syntax {
            url: url.to_string(),
            reason,
        };
        let rest = match url.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
            _ => {
                return Err(UrlError::Scheme {
                    url: url.to_string(),
                });
            }
        };
        if let Some(byte) = rest.bytes().find(|b| !b.is_ascii_graphic()) {
            return Err(syntax(if byte.is_ascii_whitespace() {
                "whitespace"
            } else {
                "control or non-ASCII character"
            }));
        }
        if rest.contains('#') {
            return Err(syntax("fragment"));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(syntax("user information"));
        }
        let (host, port) = split_authority(authority).ok_or_else(|| UrlError::Host {
            input: url.to_string(),
        })?;
        let port = match port {
            None | Some("") => None,
            Some(digits) => Some(parse_port(digits).ok_or_else(|| UrlError::Port {
                url: url.to_string(),
            })?),
        };
        Ok(NodeUrl {
            host: host.to_ascii_lowercase(),
            port,
            path: normalize_path(path),
        })
    }

    /// The principal URL `http://host[:port]/instmsg/aliases/<user>`, with `user`
    /// lower-cased.
    ///
    /// # Errors
    /// [`UrlError::Host`] for an invalid host, [`UrlError::User`] for an invalid user.
    pub fn principal(host: &str, port: Option<u16>, user: &str) -> Result<NodeUrl, UrlError> {
        check_user(user)?;
        Ok(NodeUrl {
            host: checked_host(host)?,
            port,
            path: format!("{ALIASES_PREFIX}{}", user.to_ascii_lowercase()),
        })
    }

    /// The principal URL of the sign-in name `address` (`user@domain`) on `host`: the
    /// user part becomes the alias; the domain only has to be present, since the host
    /// it maps to is the caller's choice.
    ///
    /// # Errors
    /// [`UrlError::Address`] if `address` is not `user@domain`, else as
    /// [`principal`](Self::principal).
    pub fn from_address(address: &str, host: &str, port: Option<u16>) -> Result<NodeUrl, UrlError> {
        match address.rsplit_once('@') {
            Some((user, domain)) if !user.is_empty() && !domain.is_empty() => {
                NodeUrl::principal(host, port, user)
            }
            _ => Err(UrlError::Address {
                address: address.to_string(),
            }),
        }
    }

    /// A node on `host` with any other path (which should start with `/`, or be empty
    /// for a callback node).
    ///
    /// # Errors
    /// [`UrlError::Host`] for an invalid host, [`UrlError::Syntax`] for a path that does
    /// not parse as one.
    pub fn node(host: &str, port: Option<u16>, path: &str) -> Result<NodeUrl, UrlError> {
        let host = checked_host(host)?;
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        NodeUrl::parse(&format!("http://{authority}{path}"))
    }

    /// The host, lower-cased (an IPv6 literal keeps its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, if the URL names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]`, as for a `Host` header.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The path (possibly empty, for a callback node like `http://198.176.154.132:1234`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path as a request target: `/` when the path is empty.
    pub fn request_path(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            &self.path
        }
    }

    /// The user of a principal URL (`bruceb` in `…/instmsg/aliases/bruceb`), lower-case.
    pub fn alias(&self) -> Option<&str> {
        self.path
            .strip_prefix(ALIASES_PREFIX)
            .filter(|user| check_user(user).is_ok())
    }

    /// The request target for this node: [`request_path`](Self::request_path) as a URI.
    ///
    /// # Errors
    /// [`UrlError::Syntax`] if the path holds a character `http::Uri` refuses (such as
    /// `<`, `>` or a backquote).
    pub fn target_uri(&self) -> Result<http::Uri, UrlError> {
        http::Uri::try_from(self.request_path()).map_err(|_| UrlError::Syntax {
            url: self.to_string(),
            reason: "not a valid request target",
        })
    }
}

/// Lower-cases the alias of a principal path; leaves every other path alone.
fn normalize_path(path: &str) -> String {
    if let Some(prefix) = path.get(..ALIASES_PREFIX.len())
        && prefix.eq_ignore_ascii_case(ALIASES_PREFIX)
    {
        let user = &path[ALIASES_PREFIX.len()..];
        let user = user.strip_suffix('/').unwrap_or(user);
        if check_user(user).is_ok() {
            return format!("{ALIASES_PREFIX}{}", user.to_ascii_lowercase());
        }
    }
    path.to_string()
}

fn check_user(user: &str) -> Result<(), UrlError> {
    if user.is_empty()
        || !user
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@".contains(&b))
    {
        return Err(UrlError::User {
            user: user.to_string(),
        });
    }
    Ok(())
}

/// Splits `host[:port]` (or `[v6]:port`); `None` if the host is empty or invalid.
fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    is_valid_host(host).then_some((host, port))
}

fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A registered name (letters, digits, `-`, `.`, `_`, `~`) or a bracketed IPv6 literal.
pub(crate) fn is_valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn checked_host(host: &str) -> Result<String, UrlError> {
    if is_valid_host(host) {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(UrlError::Host {
            input: host.to_string(),
        })
    }
}

impl fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path)
    }
}

impl FromStr for NodeUrl {
    type Err = UrlError;

    /// As [`NodeUrl::parse`].
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        NodeUrl::parse(url)
    }
}

/// A presence service named by its host alone, as in `RVP-From-Principal: im.example.com`
/// on a server-originated NOTIFY (§5.6.1) and the "PRESENCE SERVICE identifier like
/// 'im.acme.com.'" of §5.7.2 (a trailing dot is kept as written). Lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerName(String);

impl ServerName {
    /// Checks and lower-cases a host name.
    ///
    /// # Errors
    /// [`UrlError::Host`] if `name` is not a host name or IP literal.
    pub fn new(name: &str) -> Result<ServerName, UrlError> {
        checked_host(name).map(ServerName)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ServerName {
    type Err = UrlError;

    /// As [`ServerName::new`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ServerName::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_urls_of_section_4_1_2() {
        let url = NodeUrl::parse("http://im.somedomain.com/instmsg/aliases/roberto").unwrap();
        assert_eq!(url.host(), "im.somedomain.com");
        assert_eq!(url.port(), None);
        assert_eq!(url.alias(), Some("roberto"));
        assert_eq!(
            url.to_string(),
            "http://im.somedomain.com/instmsg/aliases/roberto"
        );
    }

    #[test]
    fn user_and_host_are_lower_cased() {
        let url = NodeUrl::parse("HTTP://IM.Acme.COM:8080/InstMsg/Aliases/BruceB/").unwrap();
        assert_eq!(
            url.to_string(),
            "http://im.acme.com:8080/instmsg/aliases/bruceb"
        );
        assert_eq!(url.alias(), Some("bruceb"));
        assert_eq!(url.authority(), "im.acme.com:8080");
        assert_eq!(
            NodeUrl::principal("IM.acme.com", None, "BruceB").unwrap(),
            url_without_port(&url)
        );
    }

    fn url_without_port(url: &NodeUrl) -> NodeUrl {
        NodeUrl {
            port: None,
            ..url.clone()
        }
    }

    #[test]
    fn other_nodes_keep_their_path() {
        for text in [
            "http://im.somedomain.com/information/stock/companyA",
            "http://im.somedomain.com/devices/cellphones/555-1234",
            "http://imhome1.domain2.com/instmsg/local/im.domain2.com/instmsg/aliases/kevinf",
            "http://www.package.com/shipments/12345/delivery_status/",
            "http://im.example.com/instmsg/aliases/a/b",
        ] {
            let url = NodeUrl::parse(text).unwrap();
            assert_eq!(url.alias(), None, "{text}");
            assert_eq!(url.to_string(), text);
        }
    }

    #[test]
    fn callback_nodes_have_no_path() {
        let url = NodeUrl::parse("http://198.176.154.132:1234").unwrap();
        assert_eq!(url.host(), "198.176.154.132");
        assert_eq!(url.port(), Some(1234));
        assert_eq!(url.path(), "");
        assert_eq!(url.request_path(), "/");
        assert_eq!(url.to_string(), "http://198.176.154.132:1234");
        let v6 = NodeUrl::parse("http://[::1]:5150/").unwrap();
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.port(), Some(5150));
    }

    #[test]
    fn addresses_map_to_a_caller_chosen_host() {
        let url = NodeUrl::from_address("AndyO@domain1.com", "im.domain1.com", None).unwrap();
        assert_eq!(
            url.to_string(),
            "http://im.domain1.com/instmsg/aliases/andyo"
        );
        for bad in ["andyo", "@domain1.com", "andyo@"] {
            assert_eq!(
                NodeUrl::from_address(bad, "im.domain1.com", None),
                Err(UrlError::Address {
                    address: bad.into()
                })
            );
        }
        assert!(matches!(
            NodeUrl::from_address("a b@x", "h", None),
            Err(UrlError::User { .. })
        ));
    }

    #[test]
    fn node_constructor() {
        let url = NodeUrl::node("im.example.com", Some(80), "/lists/sales-event").unwrap();
        assert_eq!(
            url.to_string(),
            "http://im.example.com:80/lists/sales-event"
        );
        assert_eq!(url.target_uri().unwrap(), "/lists/sales-event");
        let odd = NodeUrl::parse("http://h/a<b>").unwrap();
        assert!(matches!(odd.target_uri(), Err(UrlError::Syntax { .. })));
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        assert!(matches!(
            NodeUrl::parse("https://x/y"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http:///a"),
            Err(UrlError::Host { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http://a b/"),
            Err(UrlError::Syntax {
                reason: "whitespace",
                ..
            })
        ));
        assert!(matches!(
            NodeUrl::parse("http://u@h/"),
            Err(UrlError::Syntax { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http://h/#f"),
            Err(UrlError::Syntax { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http://h:99999/"),
            Err(UrlError::Port { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http://h:x/"),
            Err(UrlError::Port { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http://[zz]/"),
            Err(UrlError::Host { .. })
        ));
        assert!(matches!(
            NodeUrl::parse("http://h\u{e9}/"),
            Err(UrlError::Syntax { .. })
        ));
    }

    #[test]
    fn server_names() {
        assert_eq!(
            ServerName::new("IM.Example.com").unwrap().as_str(),
            "im.example.com"
        );
        assert_eq!(
            ServerName::new("im.acme.com.").unwrap().to_string(),
            "im.acme.com."
        );
        assert!(ServerName::new("http://x").is_err());
        assert!(ServerName::new("").is_err());
    }
}
