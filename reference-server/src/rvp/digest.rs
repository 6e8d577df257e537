//! HTTP Digest authentication (RFC 2617 §3.2.2, MD5, `qop="auth"`), the client
//! authentication RVP §6 allows besides NTLM; PROFILE.md §2 makes it the one imfed uses.

use md5::{Digest as _, Md5};

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
    /// `response`: 32 hex digits.
    pub response: String,
    /// `qop`, if given.
    pub qop: Option<String>,
    /// `nc`, if given.
    pub nc: Option<String>,
    /// `cnonce`, if given.
    pub cnonce: Option<String>,
}

/// Why an `Authorization` header is not usable Digest credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Another scheme (NTLM, Basic...).
    #[error("not Digest credentials")]
    Scheme,
    /// The directive list does not parse.
    #[error("malformed Digest directive list")]
    Syntax,
    /// A required directive is missing.
    #[error("Digest credentials without {0}")]
    Missing(&'static str),
}

fn hex_md5(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Splits `a=b, c="d, e"` into pairs (names lower-cased).
fn directives(mut rest: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(out);
        }
        let eq = rest.find('=').ok_or(DigestError::Syntax)?;
        let name = rest[..eq].trim().to_ascii_lowercase();
        if name.is_empty() || name.contains([' ', ',', '"']) {
            return Err(DigestError::Syntax);
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((index, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            text.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(index);
                        break;
                    }
                    c => text.push(c),
                }
            }
            let end = end.ok_or(DigestError::Syntax)?;
            value = text;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((name, value));
    }
}

impl Credentials {
    /// Parses an `Authorization` header value.
    ///
    /// # Errors
    /// [`DigestError`] naming what is wrong.
    pub fn parse(header: &str) -> Result<Credentials, DigestError> {
        let header = header.trim();
        let (scheme, rest) = header.split_once([' ', '\t']).ok_or(DigestError::Scheme)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::Scheme);
        }
        let mut credentials = Credentials::default();
        for (name, value) in directives(rest)? {
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
                return Err(DigestError::Missing(name));
            }
        }
        Ok(credentials)
    }

    /// The `response` a client holding `password` computes for `method` (RFC 2617 §3.2.2.1;
    /// with `qop=auth` when the credentials carry a qop, else the RFC 2069 form).
    pub fn expected_response(&self, method: &str, password: &str) -> String {
        let ha1 = hex_md5(&format!("{}:{}:{password}", self.username, self.realm));
        let ha2 = hex_md5(&format!("{method}:{}", self.uri));
        match &self.qop {
            Some(qop) => hex_md5(&format!(
                "{ha1}:{}:{}:{}:{qop}:{ha2}",
                self.nonce,
                self.nc.as_deref().unwrap_or(""),
                self.cnonce.as_deref().unwrap_or("")
            )),
            None => hex_md5(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    /// Whether the credentials prove `password` for `method` with this server's `nonce`.
    pub fn verify(&self, method: &str, password: &str, nonce: &str) -> bool {
        self.nonce == nonce
            && self.qop.as_deref().is_none_or(|qop| qop == "auth")
            && self.expected_response(method, password) == self.response
    }
}

/// The `WWW-Authenticate` challenge for `realm`.
pub fn challenge(realm: &str, nonce: &str) -> String {
    format!("Digest realm=\"{realm}\", qop=\"auth\", nonce=\"{nonce}\", algorithm=MD5")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example.
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
        assert_eq!(Credentials::parse("NTLM abc"), Err(DigestError::Scheme));
        assert_eq!(Credentials::parse("Digest"), Err(DigestError::Scheme));
        assert_eq!(
            Credentials::parse("Digest username=\"x"),
            Err(DigestError::Syntax)
        );
        assert_eq!(
            Credentials::parse("Digest username=x, nonce=y, uri=/"),
            Err(DigestError::Missing("response"))
        );
        for junk in ["Digest ,,,", "Digest =", "Digest a=\"\\", "Digest é=\"ü\""] {
            let _ = Credentials::parse(junk);
        }
    }
}
