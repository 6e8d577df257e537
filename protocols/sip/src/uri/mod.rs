//! RFC 3261 §19.1: SIP and SIPS URIs (grammar §25.1), parsed, written and compared.
//!
//! A [`Uri`] keeps what it was written with: the user part's `%XX` escapes, the case of the
//! host and of parameter values. [`Display`](fmt::Display) writes it back the same way, so
//! `Uri::parse(&uri.to_string())` gives `uri` again. Equality (`==`) is structural; the
//! comparison rules of §19.1.4 (escapes decoded, host case-insensitive, some parameters
//! significant only when both sides have them) are [`Uri::equivalent`].
//!
//! Only `sip:` and `sips:` are URIs here. A well-formed URI of another scheme (`tel:`,
//! `http:`, RFC 4475 §3.3.2's `nobodyknowsthisscheme:`) is [`UriError::UnsupportedScheme`],
//! which a server answers with `416 Unsupported URI Scheme` (§8.2.2.1); text that is no URI
//! at all (`<sip:...>` in a Request-Line, RFC 4475 §3.1.2.7) is another [`UriError`].

use std::fmt;
use std::str::FromStr;

use crate::syntax::{find_param, set_param};

/// `sip` or `sips` (§19.1, §19.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`.
    Sip,
    /// `sips:` (TLS on every hop, §26.2.2).
    Sips,
}

impl Scheme {
    /// `"sip"` or `"sips"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why text is not a SIP or SIPS URI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// There is no `:` after a scheme.
    #[error("no URI scheme")]
    MissingScheme,
    /// What precedes the `:` is not a scheme name (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`,
    /// RFC 3986 §3.1): for example `<sip` when a Request-URI is written in angle brackets.
    #[error("malformed URI scheme {scheme:?}")]
    BadScheme {
        /// The text before the first `:`.
        scheme: String,
    },
    /// A well-formed scheme other than `sip` and `sips` (a server answers 416, §21.4.16).
    #[error("unsupported URI scheme {scheme:?}")]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// `@` with nothing before it (`user` is `1*(...)`).
    #[error("empty user part before '@'")]
    EmptyUser,
    /// The host is empty, or not a hostname, IPv4 address or bracketed IPv6 reference.
    #[error("malformed host {host:?}")]
    BadHost {
        /// The host as written.
        host: String,
    },
    /// The port is empty, not decimal or over 65535.
    #[error("malformed port {port:?}")]
    BadPort {
        /// The port as written.
        port: String,
    },
    /// A character the grammar does not allow in that part (whitespace, `<`, `"`...).
    #[error("character {character:?} not allowed in the URI {part}")]
    BadCharacter {
        /// `user`, `password`, `parameter` or `header`.
        part: &'static str,
        /// The character.
        character: char,
    },
    /// A `%` not followed by two hexadecimal digits.
    #[error("malformed %-escape in the URI {part}")]
    BadEscape {
        /// `user`, `password`, `parameter` or `header`.
        part: &'static str,
    },
    /// A URI parameter with an empty name, or `name=` with an empty value.
    #[error("malformed URI parameter {param:?}")]
    BadParameter {
        /// The parameter as written.
        param: String,
    },
    /// A URI header (`?name=value`) without `=` or with an empty name.
    #[error("malformed URI header {header:?}")]
    BadHeader {
        /// The header as written.
        header: String,
    },
}

/// A SIP or SIPS URI (§19.1.1): `sip:user:password@host:port;uri-parameters?headers`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Uri {
    /// `sip` or `sips`.
    pub scheme: Scheme,
    /// The userinfo before `@`, escapes kept as written (`sips%3Auser%40example.com`, RFC
    /// 4475 §3.1.1.3). A password (`alice:secret`, §19.1.1, NOT RECOMMENDED) stays in this
    /// field after a `:`, so that the struct has one field per part a caller writes;
    /// [`Uri::user_part`] and [`Uri::password`] split it.
    pub user: Option<String>,
    /// A domain name, an IPv4 address or a bracketed IPv6 reference (`[2001:db8::10]`), as
    /// written.
    pub host: String,
    /// The port, if written.
    pub port: Option<u16>,
    /// `;name[=value]` parameters in order, as written.
    pub params: Vec<(String, Option<String>)>,
    /// `?name=value&...` headers in order, as written (escaped).
    pub headers: Vec<(String, String)>,
}

/// RFC 3986 §3.1 scheme syntax.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// `unreserved` (§25.1): alphanumerics and `mark`.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// Checks that `text` is made of `unreserved`, `escaped` and the `extra` characters.
fn check_chars(text: &str, extra: &str, part: &'static str) -> Result<(), UriError> {
    let bytes = text.as_bytes();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c == '%' {
            let hex = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(at + 1) && hex(at + 2)) {
                return Err(UriError::BadEscape { part });
            }
            chars.next();
            chars.next();
        } else if !(is_unreserved(c) || extra.contains(c)) {
            return Err(UriError::BadCharacter { part, character: c });
        }
    }
    Ok(())
}

/// `user-unreserved` (§25.1).
const USER_EXTRA: &str = "&=+$,;?/";
/// The characters besides unreserved ones a password may hold.
const PASSWORD_EXTRA: &str = "&=+$,";
/// `param-unreserved` (§25.1).
const PARAM_EXTRA: &str = "[]/:&+$";
/// `hnv-unreserved` (§25.1).
const HEADER_EXTRA: &str = "[]/?:+$";

/// Whether `host` is a hostname, an IPv4 address or a bracketed IPv6 reference (§25.1).
pub(crate) fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|inner| {
            inner.contains(':')
                && inner
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        });
    }
    !host.is_empty()
        && !host.starts_with(['.', '-'])
        && !host.contains("..")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Splits `host[:port]`, the host possibly a bracketed IPv6 reference.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => {
                let (host, rest) = text.split_at(end + 1);
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if rest.is_empty() => (host, None),
                    None => {
                        return Err(UriError::BadHost {
                            host: text.to_string(),
                        });
                    }
                }
            }
            None => {
                return Err(UriError::BadHost {
                    host: text.to_string(),
                });
            }
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if !is_host(host) {
        return Err(UriError::BadHost {
            host: host.to_string(),
        });
    }
    let port = match port {
        None => None,
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse::<u16>().map_err(|_| UriError::BadPort {
                port: port.to_string(),
            })?)
        }
        Some(port) => {
            return Err(UriError::BadPort {
                port: port.to_string(),
            });
        }
    };
    Ok((host, port))
}

/// The bytes `text` stands for, `%XX` escapes decoded (malformed ones kept as written).
fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(at + 1).copied().and_then(hex),
                bytes.get(at + 2).copied().and_then(hex),
            )
        {
            out.push((high * 16 + low) as u8);
            at += 3;
            continue;
        }
        out.push(bytes[at]);
        at += 1;
    }
    out
}

impl Uri {
    /// Parses a SIP or SIPS URI (§19.1.1, §25.1). The scheme is case-insensitive; every
    /// other part is kept as written. Whitespace is never part of a URI.
    ///
    /// # Errors
    /// [`UriError::UnsupportedScheme`] for a well-formed URI of another scheme, another
    /// [`UriError`] naming the part that does not follow the grammar.
    pub fn parse(text: &str) -> Result<Uri, UriError> {
        let (scheme_text, rest) = text.split_once(':').ok_or(UriError::MissingScheme)?;
        if !is_scheme(scheme_text) {
            return Err(UriError::BadScheme {
                scheme: scheme_text.to_string(),
            });
        }
        let scheme = if scheme_text.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_text.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else {
            return Err(UriError::UnsupportedScheme {
                scheme: scheme_text.to_string(),
            });
        };
        // The user part may hold `;`, `?` and `/` (user-unreserved), but never an
        // unescaped `@`; parameters and headers never hold one either.
        let (user, rest) = match rest.split_once('@') {
            Some((userinfo, rest)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(UriError::EmptyUser);
                }
                check_chars(user, USER_EXTRA, "user")?;
                if let Some(password) = password {
                    check_chars(password, PASSWORD_EXTRA, "password")?;
                }
                (Some(userinfo.to_string()), rest)
            }
            None => (None, rest),
        };
        let (rest, header_text) = match rest.split_once('?') {
            Some((rest, headers)) => (rest, Some(headers)),
            None => (rest, None),
        };
        let mut pieces = rest.split(';');
        let (host, port) = split_host_port(pieces.next().unwrap_or(""))?;
        let mut params = Vec::new();
        for param in pieces {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (param, None),
            };
            if name.is_empty() || value.is_some_and(str::is_empty) {
                return Err(UriError::BadParameter {
                    param: param.to_string(),
                });
            }
            check_chars(name, PARAM_EXTRA, "parameter")?;
            if let Some(value) = value {
                check_chars(value, PARAM_EXTRA, "parameter")?;
            }
            params.push((name.to_string(), value.map(str::to_string)));
        }
        let mut headers = Vec::new();
        if let Some(header_text) = header_text {
            for header in header_text.split('&') {
                let Some((name, value)) = header.split_once('=').filter(|(n, _)| !n.is_empty())
                else {
                    return Err(UriError::BadHeader {
                        header: header.to_string(),
                    });
                };
                check_chars(name, HEADER_EXTRA, "header")?;
                check_chars(value, HEADER_EXTRA, "header")?;
                headers.push((name.to_string(), value.to_string()));
            }
        }
        Ok(Uri {
            scheme,
            user,
            host: host.to_string(),
            port,
            params,
            headers,
        })
    }

    /// `sip:user@host` (or `sip:host` without a user). The pieces are taken as given: pass
    /// a user already escaped and a host that is a valid host, or the URI will not parse
    /// back.
    pub fn new(user: Option<&str>, host: &str) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_string),
            host: host.to_string(),
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// This URI with `port`.
    pub fn with_port(mut self, port: u16) -> Uri {
        self.port = Some(port);
        self
    }

    /// This URI with the parameter `name` set to `value` (replacing one of that name,
    /// compared case-insensitively, or appended).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Uri {
        set_param(&mut self.params, name, value);
        self
    }

    /// The value of parameter `name` (case-insensitive): `None` when absent, `Some(None)`
    /// for a flag such as `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `transport` parameter (§19.1.1), as written.
    pub fn transport(&self) -> Option<&str> {
        self.param("transport").flatten()
    }

    /// Whether the URI has the `lr` parameter (a loose router, §19.1.1, §16.12).
    pub fn is_loose_router(&self) -> bool {
        self.param("lr").is_some()
    }

    /// The user without a password.
    pub fn user_part(&self) -> Option<&str> {
        self.user
            .as_deref()
            .map(|user| user.split_once(':').map_or(user, |(user, _)| user))
    }

    /// The password written after the user (§19.1.1), if any.
    pub fn password(&self) -> Option<&str> {
        self.user
            .as_deref()
            .and_then(|user| user.split_once(':'))
            .map(|(_, password)| password)
    }

    /// The address-of-record form (§10.2.1): `scheme:user@host`, without password, port,
    /// parameters or headers, the host lower-cased.
    pub fn aor(&self) -> Uri {
        Uri {
            scheme: self.scheme,
            user: self.user_part().map(str::to_string),
            host: self.host.to_ascii_lowercase(),
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// `host` or `host:port`.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// Whether two URIs are equivalent by the rules of §19.1.4: same scheme; users equal
    /// once escapes are decoded (case-sensitive); hosts equal ignoring case; the same port
    /// or both none; the `user`, `ttl`, `method`, `maddr` and `transport` parameters equal
    /// (ignoring case) when either URI has them; other parameters equal when both have
    /// them; the same headers.
    pub fn equivalent(&self, other: &Uri) -> bool {
        const SIGNIFICANT: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        let same_value = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => decode(a).eq_ignore_ascii_case(&decode(b)),
            (a, b) => a.is_none() && b.is_none(),
        };
        if self.scheme != other.scheme
            || self.user.as_deref().map(decode) != other.user.as_deref().map(decode)
            || !self.host.eq_ignore_ascii_case(&other.host)
            || self.port != other.port
        {
            return false;
        }
        for name in SIGNIFICANT {
            match (self.param(name), other.param(name)) {
                (None, None) => {}
                (Some(a), Some(b)) if same_value(a, b) => {}
                _ => return false,
            }
        }
        for (name, _) in &self.params {
            if let (Some(ours), Some(theirs)) = (self.param(name), other.param(name))
                && !same_value(ours, theirs)
            {
                return false;
            }
        }
        let headers = |uri: &Uri| {
            let mut all: Vec<(Vec<u8>, Vec<u8>)> = uri
                .headers
                .iter()
                .map(|(name, value)| (decode(name).to_ascii_lowercase(), decode(value)))
                .collect();
            all.sort();
            all
        };
        headers(self) == headers(other)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (name, value) in &self.params {
            match value {
                Some(value) => write!(f, ";{name}={value}")?,
                None => write!(f, ";{name}")?,
            }
        }
        for (at, (name, value)) in self.headers.iter().enumerate() {
            let separator = if at == 0 { '?' } else { '&' };
            write!(f, "{separator}{name}={value}")?;
        }
        Ok(())
    }
}

impl FromStr for Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Uri, UriError> {
        Uri::parse(text)
    }
}

#[cfg(test)]
pub(crate) mod tests;
