//! imfed-digest: HTTP Digest access authentication (RFC 2617 §3, MD5, `qop="auth"`), both
//! sides, without I/O; shared by imfed's RVP and SIP crates.
//!
//! - **RVP §6** authenticates with plain HTTP/1.1 challenge-response: the presence service
//!   answers `401` with at least one `WWW-Authenticate` header, and the client retries with
//!   `Authorization`. Two schemes are allowed, NTLM (§6.1) and Digest (§6.2, which defers to
//!   RFC 2617; §6.3 shows a `WWW-Authenticate: Digest qop="auth", realm=…, nonce=…`
//!   challenge).
//! - **SIP (RFC 3261 §22)** reuses RFC 2617 unchanged (§22.4): a registrar or user agent
//!   challenges with `401` and `WWW-Authenticate`, a proxy with `407` and
//!   `Proxy-Authenticate` (§22.3); the client answers with `Authorization` or
//!   `Proxy-Authorization`. Both pairs carry the same challenge and credentials syntax, so
//!   the types here serve either header; the digest-uri is the Request-URI as written, the
//!   method the request's (for ACK and CANCEL, that of the request they refer to, §22.1).
//!
//! Each profile pins Digest with MD5 and `qop="auth"`, realm = the user's domain (RVP's and
//! SIP's `PROFILE.md` §2).
//!
//! - [`Challenge`]: the `WWW-Authenticate` / `Proxy-Authenticate` value (RFC 2617 §3.2.1),
//!   rendered by the server ([`Challenge::new`], [`fmt::Display`]) and parsed by the client
//!   ([`Challenge::parse`]);
//! - [`DigestClient`]: the client's state (credentials, the challenge it answers, the nonce
//!   count `nc`) and its `Authorization` / `Proxy-Authorization` values (RFC 2617 §3.2.2);
//! - [`Credentials`]: the server's side, an `Authorization: Digest` (or
//!   `Proxy-Authorization`) header parsed and verified against a password and the server's
//!   nonce;
//! - [`response`]: the request-digest of RFC 2617 §3.2.2.1, which both sides compute.
//!
//! Without I/O: the client's `cnonce` is handed in by the caller, as is the server's nonce.
//! Directive lists follow RFC 2617 §1.2 (`#auth-param`, tokens or quoted strings with
//! backslash escapes); the server rejects a malformed list, the client reads what it can
//! of a challenge.

use std::fmt;

use md5::{Digest as _, Md5};

/// Why an `Authorization` (or `Proxy-Authorization`) header is not usable Digest credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// Another scheme (NTLM, Basic...), or `Digest` with no directives.
    #[error("not Digest credentials")]
    Scheme,
    /// The directive list does not parse (a bare token, an unterminated quoted string...).
    #[error("malformed Digest directive list")]
    Syntax,
    /// A required directive (`username`, `nonce`, `uri`, `response`) is missing.
    #[error("Digest credentials without {0}")]
    Missing(&'static str),
}

/// Why a `WWW-Authenticate` (or `Proxy-Authenticate`) value is not a Digest challenge a client can read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Another scheme (NTLM, Negotiate, Basic...).
    #[error("not a Digest challenge")]
    Scheme,
    /// A directive the challenge needs (`realm`, `nonce`) is missing.
    #[error("Digest challenge without {0}")]
    Missing(&'static str),
}

// ---------------------------------------------------------------------------------------
// MD5 (RFC 2617 §3.2.2.1-§3.2.2.3)

/// `H(text)` as 32 lower-case hex digits.
fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `KD(H(A1), nonce ":" [nc ":" cnonce ":" qop ":"] H(A2))` with `A1 = user:realm:password`
/// (algorithm MD5) and `A2 = method:uri` (qop `auth` or none); `qop` is `(qop, nc, cnonce)`.
fn request_digest(
    (user, realm, password): (&str, &str, &str),
    (method, uri): (&str, &str),
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The `response` value of RFC 2617 §3.2.2.1 for `qop=auth` with `qop = Some((nc, cnonce))`,
/// or the RFC 2069 form without qop when `qop` is `None`.
pub fn response(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    request_digest(
        (user, realm, password),
        (method, uri),
        nonce,
        qop.map(|(nc, cnonce)| ("auth", nc, cnonce)),
    )
}

// ---------------------------------------------------------------------------------------
// Directive lists (RFC 2617 §1.2)

/// The directives after the scheme of `value` if the scheme is `Digest` (case-insensitive).
fn digest_directives(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    scheme.eq_ignore_ascii_case("digest").then_some(rest)
}

/// A directive list read as far as it goes.
#[derive(Debug, Default)]
struct Directives {
    /// `name=value` pairs in order: names lower-cased, quoted strings unquoted with their
    /// backslash escapes resolved.
    pairs: Vec<(String, String)>,
    /// Whether something was not an `auth-param`: a bare token, an empty name or one with a
    /// space or quote, an unterminated quoted string (its value runs to the end).
    malformed: bool,
}

impl Directives {
    /// Splits `a=b, c="d, e"`.
    fn read(text: &str) -> Directives {
        let mut out = Directives::default();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
            if chars.peek().is_none() {
                return out;
            }
            let name = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
                .collect::<String>()
                .trim()
                .to_ascii_lowercase();
            if chars.next_if_eq(&'=').is_none() {
                // A bare token.
                out.malformed = true;
                continue;
            }
            if name.is_empty() || name.contains([' ', '"']) {
                out.malformed = true;
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let mut value = String::new();
            if chars.next_if_eq(&'"').is_some() {
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
                out.malformed |= !closed;
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                    .collect::<String>()
                    .trim()
                    .to_string();
            }
            out.pairs.push((name, value));
        }
    }

    /// The first value of `name` (lower-case).
    fn first(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Quotes `value` as an RFC 2616 §2.2 quoted-string.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------
// The challenge (RFC 2617 §3.2.1)

/// A `Digest` challenge, the value of a `WWW-Authenticate` or `Proxy-Authenticate` header
/// (RFC 2617 §3.2.1, RFC 3261 §22.2, §22.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// `realm` (in both profiles, the user's domain).
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, returned unchanged.
    pub opaque: Option<String>,
    /// The `qop` options offered, lower-case (empty: RFC 2069 compatibility, no `qop`).
    pub qop: Vec<String>,
    /// `algorithm` (only MD5, the default, is answered).
    pub algorithm: Option<String>,
    /// `stale=true`: the nonce expired, the credentials were right.
    pub stale: bool,
}

impl Challenge {
    /// The challenge a server following either profile's PROFILE.md §2 sends: `realm`, `qop="auth"`, `nonce`,
    /// `algorithm=MD5`.
    pub fn new(realm: &str, nonce: &str) -> Challenge {
        Challenge {
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            opaque: None,
            qop: vec!["auth".to_string()],
            algorithm: Some("MD5".to_string()),
            stale: false,
        }
    }

    /// Reads one `WWW-Authenticate` or `Proxy-Authenticate` value. Lenient: what is not an `auth-param` is skipped,
    /// and of a repeated directive the first counts.
    ///
    /// # Errors
    /// [`ChallengeError`] unless it is a Digest challenge with a realm and a nonce.
    pub fn parse(value: &str) -> Result<Challenge, ChallengeError> {
        let directives =
            Directives::read(digest_directives(value.trim_start()).ok_or(ChallengeError::Scheme)?);
        let get = |name: &str| directives.first(name).map(str::to_string);
        Ok(Challenge {
            realm: get("realm").ok_or(ChallengeError::Missing("realm"))?,
            nonce: get("nonce").ok_or(ChallengeError::Missing("nonce"))?,
            opaque: get("opaque"),
            qop: get("qop")
                .map(|qop| {
                    qop.split(',')
                        .map(|option| option.trim().to_ascii_lowercase())
                        .filter(|option| !option.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            algorithm: get("algorithm"),
            stale: get("stale").is_some_and(|stale| stale.eq_ignore_ascii_case("true")),
        })
    }

    /// Whether a client can answer it (MD5, and `auth` if a qop is offered).
    pub fn answerable(&self) -> bool {
        self.algorithm
            .as_deref()
            .is_none_or(|algorithm| algorithm.eq_ignore_ascii_case("md5"))
            && (self.qop.is_empty() || self.qop.iter().any(|qop| qop == "auth"))
    }

    /// The `Authorization` value answering this challenge as `user` with `password` for
    /// `method` on `uri` (the request target as written): `qop=auth` with
    /// `qop = Some((nc, cnonce))`, the RFC 2069 form with `None`.
    pub fn authorization(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        qop: Option<(&str, &str)>,
    ) -> String {
        let digest = response(user, &self.realm, password, method, uri, &self.nonce, qop);
        let mut value = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{digest}\", algorithm=MD5",
            quoted(user),
            quoted(&self.realm),
            quoted(&self.nonce),
            quoted(uri),
        );
        if let Some((nc, cnonce)) = qop {
            value.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quoted(cnonce)));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque={}", quoted(opaque)));
        }
        value
    }
}

/// The `WWW-Authenticate` / `Proxy-Authenticate` value: `Digest realm="…"[, qop="…"], nonce="…"[, opaque="…"]
/// [, algorithm=…][, stale=true]`.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}", quoted(&self.realm))?;
        if !self.qop.is_empty() {
            write!(f, ", qop={}", quoted(&self.qop.join(",")))?;
        }
        write!(f, ", nonce={}", quoted(&self.nonce))?;
        if let Some(opaque) = &self.opaque {
            write!(f, ", opaque={}", quoted(opaque))?;
        }
        if let Some(algorithm) = &self.algorithm {
            write!(f, ", algorithm={algorithm}")?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The client (RFC 2617 §3.2.2)

/// A client's Digest state: its credentials, the challenge it answers and the nonce count.
/// The nonce is kept (the reference server's nonces live as long as it does) and `nc` counts
/// up on every request authorized with it.
#[derive(Clone, Debug)]
pub struct DigestClient {
    user: String,
    password: String,
    challenge: Option<Challenge>,
    nc: u32,
}

impl DigestClient {
    /// A client that has seen no challenge yet.
    pub fn new(user: &str, password: &str) -> DigestClient {
        DigestClient {
            user: user.to_string(),
            password: password.to_string(),
            challenge: None,
            nc: 0,
        }
    }

    /// Takes a new challenge (from a `401`, or a SIP `407`); returns whether it can be answered. An
    /// answerable challenge replaces the one held and restarts `nc`.
    pub fn challenged(&mut self, challenge: Challenge) -> bool {
        if !challenge.answerable() {
            return false;
        }
        self.challenge = Some(challenge);
        self.nc = 0;
        true
    }

    /// Whether a challenge is held.
    pub fn has_challenge(&self) -> bool {
        self.challenge.is_some()
    }

    /// The `Authorization` value for `method` on `uri` (the request target as written),
    /// with the next `nc` and the caller's fresh `cnonce` (used when the challenge offered a
    /// qop); `None` before any challenge.
    pub fn authorization(&mut self, method: &str, uri: &str, cnonce: &str) -> Option<String> {
        let challenge = self.challenge.as_ref()?;
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let auth = !challenge.qop.is_empty();
        Some(challenge.authorization(
            &self.user,
            &self.password,
            method,
            uri,
            auth.then_some((nc.as_str(), cnonce)),
        ))
    }
}

// ---------------------------------------------------------------------------------------
// The server's check (RFC 2617 §3.2.2)

/// The directives of an `Authorization: Digest ...` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (the digest-uri, as the client wrote it).
    pub uri: String,
    /// `response`: 32 hex digits, lower-cased.
    pub response: String,
    /// `qop`, if given.
    pub qop: Option<String>,
    /// `nc`, if given.
    pub nc: Option<String>,
    /// `cnonce`, if given.
    pub cnonce: Option<String>,
}

impl Credentials {
    /// Parses an `Authorization` (or `Proxy-Authorization`) header value. Strict: a malformed directive list is an
    /// error, and of a repeated directive the last counts.
    ///
    /// # Errors
    /// [`CredentialsError`] naming what is wrong.
    pub fn parse(header: &str) -> Result<Credentials, CredentialsError> {
        let rest = digest_directives(header)
            .filter(|rest| !rest.is_empty())
            .ok_or(CredentialsError::Scheme)?;
        let directives = Directives::read(rest);
        if directives.malformed {
            return Err(CredentialsError::Syntax);
        }
        let mut credentials = Credentials::default();
        for (name, value) in directives.pairs {
            match name.as_str() {
                "username" => credentials.username = value,
                "realm" => credentials.realm = value,
                "nonce" => credentials.nonce = value,
                "uri" => credentials.uri = value,
                "response" => credentials.response = value.to_ascii_lowercase(),
                "qop" => credentials.qop = Some(value),
                "nc" => credentials.nc = Some(value),
                "cnonce" => credentials.cnonce = Some(value),
                _ => {}
            }
        }
        for (field, name) in [
            (&credentials.username, "username"),
            (&credentials.nonce, "nonce"),
            (&credentials.uri, "uri"),
            (&credentials.response, "response"),
        ] {
            if field.is_empty() {
                return Err(CredentialsError::Missing(name));
            }
        }
        Ok(credentials)
    }

    /// The `response` a client holding `password` computes for `method` (RFC 2617 §3.2.2.1;
    /// with the credentials' qop, `nc` and `cnonce` when they carry a qop, else the RFC 2069
    /// form).
    pub fn expected_response(&self, method: &str, password: &str) -> String {
        request_digest(
            (&self.username, &self.realm, password),
            (method, &self.uri),
            &self.nonce,
            self.qop.as_deref().map(|qop| {
                (
                    qop,
                    self.nc.as_deref().unwrap_or(""),
                    self.cnonce.as_deref().unwrap_or(""),
                )
            }),
        )
    }

    /// Whether the credentials prove `password` for `method` with this server's `nonce`
    /// (and `qop`, if any, is `auth`).
    pub fn verify(&self, method: &str, password: &str, nonce: &str) -> bool {
        self.nonce == nonce
            && self.qop.as_deref().is_none_or(|qop| qop == "auth")
            && self.expected_response(method, password) == self.response
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// RFC 2617 §3.5's challenge.
    const CHALLENGE: &str = "Digest\n                 realm=\"testrealm@host.com\",\n                 \
        qop=\"auth,auth-int\",\n                 nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\n                 \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";

    /// RFC 2617 §3.5's example, on the server's side.
    #[test]
    fn rfc2617_example_verifies() {
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let credentials = Credentials::parse(header).unwrap();
        assert_eq!(credentials.username, "Mufasa");
        assert_eq!(credentials.nc.as_deref(), Some("00000001"));
        assert!(credentials.verify(
            "GET",
            "Circle Of Life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        ));
        assert!(!credentials.verify(
            "GET",
            "circle of life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        ));
        assert!(!credentials.verify("GET", "Circle Of Life", "another nonce"));
        assert!(!credentials.verify(
            "POST",
            "Circle Of Life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        ));
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        assert_eq!(
            Credentials::parse("NTLM abc"),
            Err(CredentialsError::Scheme)
        );
        assert_eq!(Credentials::parse("Digest"), Err(CredentialsError::Scheme));
        assert_eq!(
            Credentials::parse("Digest username=\"x"),
            Err(CredentialsError::Syntax)
        );
        assert_eq!(
            Credentials::parse("Digest username=x, nonce=y, uri=/"),
            Err(CredentialsError::Missing("response"))
        );
        for junk in ["Digest ,,,", "Digest =", "Digest a=\"\\", "Digest é=\"ü\""] {
            let _ = Credentials::parse(junk);
        }
    }

    /// RFC 2617 §3.5's example, on the client's side.
    #[test]
    fn rfc_2617_example() {
        let challenge = Challenge::parse(CHALLENGE).unwrap();
        assert_eq!(challenge.realm, "testrealm@host.com");
        assert_eq!(challenge.qop, ["auth", "auth-int"]);
        assert_eq!(challenge.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
        assert_eq!(
            challenge.opaque.as_deref(),
            Some("5ccc069c403ebaf9f0171e9517f40e41")
        );
        assert!(challenge.answerable() && !challenge.stale);
        assert_eq!(
            response(
                "Mufasa",
                "testrealm@host.com",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                Some(("00000001", "0a4f113b")),
            ),
            "6629fae49393a05397450978507c4ef1"
        );
        let value = challenge.authorization(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(
            value,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, qop=auth, \
             nc=00000001, cnonce=\"0a4f113b\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
    }

    #[test]
    fn nonce_count_goes_up_and_other_schemes_are_ignored() {
        assert_eq!(Challenge::parse("NTLM"), Err(ChallengeError::Scheme));
        assert_eq!(
            Challenge::parse("Basic realm=\"x\""),
            Err(ChallengeError::Scheme)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"x\""),
            Err(ChallengeError::Missing("nonce")),
            "no nonce"
        );
        let mut client = DigestClient::new("bob", "pw");
        assert_eq!(client.authorization("NOTIFY", "/", "c"), None);
        assert!(!client.has_challenge());
        let challenge =
            Challenge::parse(r#"Digest realm="sut.test", qop="auth", nonce="n\"1", stale=TRUE"#)
                .unwrap();
        assert_eq!(challenge.nonce, "n\"1");
        assert!(challenge.stale);
        assert!(client.challenged(challenge));
        assert!(client.has_challenge());
        let first = client.authorization("NOTIFY", "/", "c1").unwrap();
        let second = client.authorization("NOTIFY", "/", "c2").unwrap();
        assert!(first.contains("nc=00000001") && first.contains(r#"nonce="n\"1""#));
        assert!(second.contains("nc=00000002"));
        let sha = Challenge::parse("Digest realm=x, nonce=y, algorithm=SHA-256").unwrap();
        assert!(!client.challenged(sha));
        let no_qop = Challenge::parse("Digest realm=x, nonce=y").unwrap();
        assert!(client.challenged(no_qop));
        assert!(
            !client
                .authorization("GET", "/", "c")
                .unwrap()
                .contains("nc=")
        );
    }

    /// The client answers the server's challenge, and the server's check accepts the answer
    /// for the right password, method and nonce only.
    #[test]
    fn client_answer_passes_the_server_check() {
        let nonce = "3f1c0a\"9\\e";
        let rendered = Challenge::new("ref.test", nonce).to_string();
        assert_eq!(
            Challenge::new("ref.test", "abc").to_string(),
            r#"Digest realm="ref.test", qop="auth", nonce="abc", algorithm=MD5"#
        );
        let challenge = Challenge::parse(&rendered).unwrap();
        assert_eq!(challenge, Challenge::new("ref.test", nonce));

        let mut client = DigestClient::new("alice", "s3cret");
        assert!(client.challenged(challenge));
        let uri = "http://ref.test/instmsg/aliases/alice";
        for (nc, cnonce) in [("00000001", "k7"), ("00000002", "q\"2")] {
            let header = client.authorization("SUBSCRIBE", uri, cnonce).unwrap();
            let credentials = Credentials::parse(&header).unwrap();
            assert_eq!(credentials.username, "alice");
            assert_eq!(credentials.realm, "ref.test");
            assert_eq!(credentials.uri, uri);
            assert_eq!(credentials.qop.as_deref(), Some("auth"));
            assert_eq!(credentials.nc.as_deref(), Some(nc));
            assert_eq!(credentials.cnonce.as_deref(), Some(cnonce));
            assert!(credentials.verify("SUBSCRIBE", "s3cret", nonce));
            assert!(
                !credentials.verify("SUBSCRIBE", "S3cret", nonce),
                "wrong password"
            );
            assert!(
                !credentials.verify("NOTIFY", "s3cret", nonce),
                "other method"
            );
            assert!(
                !credentials.verify("SUBSCRIBE", "s3cret", "old"),
                "other nonce"
            );
        }

        // Without qop (RFC 2069), too.
        let mut old = Challenge::new("ref.test", nonce);
        old.qop.clear();
        old.algorithm = None;
        assert!(client.challenged(old));
        let header = client.authorization("PROPFIND", uri, "unused").unwrap();
        let credentials = Credentials::parse(&header).unwrap();
        assert_eq!((&credentials.qop, &credentials.nc), (&None, &None));
        assert!(credentials.verify("PROPFIND", "s3cret", nonce));
        assert!(!credentials.verify("PROPFIND", "wrong", nonce));
    }

    /// RVP §6.3's challenge (the nonce joined across the line break).
    #[test]
    fn rvp_example_challenge_parses() {
        let challenge = Challenge::parse(
            "Digest qop=\"auth\", realm=\"im.acme.com\", \
             nonce=\"78a8ffeeb123458a400358100000b4d0ed33ae239123441b44896487feda\"",
        )
        .unwrap();
        assert_eq!(challenge.realm, "im.acme.com");
        assert_eq!(challenge.qop, ["auth"]);
        assert!(challenge.answerable());
    }

    proptest! {
        /// Any challenge renders to a value that parses back to it.
        #[test]
        fn challenge_round_trips(
            realm in "\\PC*",
            nonce in "\\PC*",
            opaque in proptest::option::of("\\PC*"),
            qop in proptest::collection::vec("[a-z][a-z0-9-]{0,8}", 0..3),
            algorithm in proptest::option::of("[A-Za-z0-9-]{1,10}"),
            stale in any::<bool>(),
        ) {
            let challenge = Challenge { realm, nonce, opaque, qop, algorithm, stale };
            prop_assert_eq!(Challenge::parse(&challenge.to_string()), Ok(challenge));
        }

        /// Neither parser panics.
        #[test]
        fn parsers_do_not_panic(value in "\\PC*") {
            let _ = Challenge::parse(&value);
            let _ = Credentials::parse(&value);
            let _ = Challenge::parse(&format!("Digest {value}"));
            let _ = Credentials::parse(&format!("Digest {value}"));
        }
    }
}
