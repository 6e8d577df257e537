//! XEP-0220 §2: Server Dialback elements, with the key generation of XEP-0185 §3 that
//! XEP-0220 §2.4 recommends.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::element::Element;
use crate::ns;

/// The dialback key (XEP-0185 §3): `HMAC-SHA256(key = hex(SHA-256(secret)),
/// message = receiving ' ' originating ' ' stream_id)`, as lowercase hex.
///
/// The hex encoding of the secret's hash (lowercase ASCII, 64 bytes) is the HMAC key, so
/// any server that knows the secret can recompute the key from the stream alone.
pub fn key(secret: &[u8], receiving: &str, originating: &str, stream_id: &str) -> String {
    let hashed_secret = hex::encode(Sha256::digest(secret));
    let mut mac = Hmac::<Sha256>::new_from_slice(hashed_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(receiving.as_bytes());
    mac.update(b" ");
    mac.update(originating.as_bytes());
    mac.update(b" ");
    mac.update(stream_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `type` of a dialback result or verify response (XEP-0220 §2.1.3, §2.4, §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DialbackResult {
    /// The key was verified.
    Valid,
    /// The key was not verified.
    Invalid,
    /// Verification could not be carried out (XEP-0220 §2.4); the element carries a
    /// stanza error child.
    Error,
}

impl DialbackResult {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            DialbackResult::Valid => "valid",
            DialbackResult::Invalid => "invalid",
            DialbackResult::Error => "error",
        }
    }

    fn parse(value: &str) -> Option<DialbackResult> {
        match value {
            "valid" => Some(DialbackResult::Valid),
            "invalid" => Some(DialbackResult::Invalid),
            "error" => Some(DialbackResult::Error),
            _ => None,
        }
    }
}

/// A dialback element (XEP-0220 §2): `<db:result/>` or `<db:verify/>`.
///
/// A request carries a `key` and no `result`; a response carries a `result` (`type`) and,
/// for `result`, no key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dialback {
    /// `<db:result/>`: sent by the originating server to ask for authorization
    /// (with a key), and by the receiving server to answer (with a type).
    Result {
        /// The `from` attribute (the sender's domain in a request).
        from: String,
        /// The `to` attribute.
        to: String,
        /// The dialback key (requests only).
        key: Option<String>,
        /// The outcome (responses only).
        result: Option<DialbackResult>,
    },
    /// `<db:verify/>`: sent by the receiving server to the authoritative server to check
    /// a key, and answered with a type.
    Verify {
        /// The `from` attribute.
        from: String,
        /// The `to` attribute.
        to: String,
        /// The stream ID the key was generated for.
        id: String,
        /// The key to verify (requests; some servers echo it in responses).
        key: Option<String>,
        /// The outcome (responses only).
        result: Option<DialbackResult>,
    },
}

impl Dialback {
    /// Reads a `result` or `verify` element in [`ns::DIALBACK`]. Returns `None` for any
    /// other element, for missing `from`/`to` (or `id` on verify), and for an unknown
    /// `type`. An empty text content means no key.
    pub fn parse(el: &Element) -> Option<Dialback> {
        if el.ns != ns::DIALBACK {
            return None;
        }
        let from = el.attr("from")?.to_string();
        let to = el.attr("to")?.to_string();
        let result = match el.attr("type") {
            Some(value) => Some(DialbackResult::parse(value)?),
            None => None,
        };
        let text = el.text();
        let key = (!text.trim().is_empty()).then(|| text.trim().to_string());
        match el.name.as_str() {
            "result" => Some(Dialback::Result {
                from,
                to,
                key,
                result,
            }),
            "verify" => Some(Dialback::Verify {
                from,
                to,
                id: el.attr("id")?.to_string(),
                key,
                result,
            }),
            _ => None,
        }
    }

    /// The element for this dialback message, in [`ns::DIALBACK`] (serialized with a
    /// default namespace declaration, which is equivalent to the `db:` prefix).
    pub fn to_element(&self) -> Element {
        let (name, from, to, id, key, result) = match self {
            Dialback::Result {
                from,
                to,
                key,
                result,
            } => ("result", from, to, None, key, result),
            Dialback::Verify {
                from,
                to,
                id,
                key,
                result,
            } => ("verify", from, to, Some(id), key, result),
        };
        let mut el = Element::new(name, ns::DIALBACK)
            .with_attr("from", from.as_str())
            .with_attr("to", to.as_str())
            .with_opt_attr("id", id.map(String::as_str))
            .with_opt_attr("type", result.map(DialbackResult::as_str));
        if let Some(key) = key {
            el = el.with_text(key.as_str());
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep_0185_example_key() {
        // XEP-0185 §3's worked example: receiving server xmpp.example.com, originating
        // server example.org.
        assert_eq!(
            key(
                b"s3cr3tf0rd14lb4ck",
                "xmpp.example.com",
                "example.org",
                "D60000229F"
            ),
            "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"
        );
        // The same secret and stream with other domains, as checked by other
        // implementations (Twisted Words' dialback tests).
        assert_eq!(
            key(
                b"s3cr3tf0rd14lb4ck",
                "example.net",
                "example.com",
                "D60000229F"
            ),
            "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc"
        );
    }

    #[test]
    fn key_depends_on_every_input() {
        let base = key(b"s", "a.test", "b.test", "id1");
        assert_ne!(base, key(b"t", "a.test", "b.test", "id1"));
        assert_ne!(base, key(b"s", "b.test", "a.test", "id1"));
        assert_ne!(base, key(b"s", "a.test", "b.test", "id2"));
        assert_eq!(base.len(), 64);
    }

    #[test]
    fn result_request_and_response() {
        let request = Dialback::Result {
            from: "example.com".into(),
            to: "example.net".into(),
            key: Some("abc".into()),
            result: None,
        };
        let el = request.to_element();
        assert_eq!(
            el.to_xml(ns::SERVER),
            "<db:result from='example.com' to='example.net'>abc</db:result>"
        );
        assert_eq!(Dialback::parse(&el), Some(request));
        let response = Dialback::Result {
            from: "example.net".into(),
            to: "example.com".into(),
            key: None,
            result: Some(DialbackResult::Valid),
        };
        let el = response.to_element();
        assert_eq!(
            el.to_xml(ns::SERVER),
            "<db:result from='example.net' to='example.com' type='valid'/>"
        );
        assert_eq!(Dialback::parse(&el), Some(response));
    }

    #[test]
    fn verify_round_trip() {
        for result in [
            None,
            Some(DialbackResult::Valid),
            Some(DialbackResult::Invalid),
            Some(DialbackResult::Error),
        ] {
            let verify = Dialback::Verify {
                from: "example.net".into(),
                to: "example.com".into(),
                id: "D60000229F".into(),
                key: result.is_none().then(|| "k".to_string()),
                result,
            };
            assert_eq!(Dialback::parse(&verify.to_element()), Some(verify));
        }
    }

    #[test]
    fn parse_rejects_other_elements() {
        let ok = Element::new("result", ns::DIALBACK)
            .with_attr("from", "a")
            .with_attr("to", "b");
        assert!(Dialback::parse(&ok).is_some());
        assert_eq!(
            Dialback::parse(&ok.clone().with_attr("type", "maybe")),
            None
        );
        let mut wrong_ns = ok.clone();
        wrong_ns.ns = ns::SERVER.into();
        assert_eq!(Dialback::parse(&wrong_ns), None);
        let mut no_from = ok.clone();
        no_from.remove_attr("from");
        assert_eq!(Dialback::parse(&no_from), None);
        let mut verify_without_id = ok.clone();
        verify_without_id.name = "verify".into();
        assert_eq!(Dialback::parse(&verify_without_id), None);
        let mut other = ok;
        other.name = "other".into();
        assert_eq!(Dialback::parse(&other), None);
    }
}
