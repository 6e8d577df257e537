//! SASL EXTERNAL between servers (RFC 6120 §6.3.4, §6.4; XEP-0178 §3): a server whose TLS
//! certificate names its domain authenticates the stream for that domain with it, without
//! dialback. The elements both ends exchange, and what they mean; the certificate itself is
//! judged by the caller, which holds the TLS session.

use crate::element::Element;
use crate::ns;
use crate::sasl::{SaslError, decode_payload, encode_payload};

/// The mechanism's name.
pub const MECHANISM: &str = "EXTERNAL";

/// `<mechanisms/>` offering EXTERNAL, for the receiving server's features.
pub fn offer() -> Element {
    Element::new("mechanisms", ns::SASL)
        .with_child(Element::new("mechanism", ns::SASL).with_text(MECHANISM))
}

/// Whether `features` offer EXTERNAL.
pub fn offered(features: &Element) -> bool {
    features
        .child("mechanisms", ns::SASL)
        .is_some_and(|mechanisms| {
            mechanisms
                .elements()
                .any(|m| m.is("mechanism", ns::SASL) && m.text().trim() == MECHANISM)
        })
}

/// The initiating server's `<auth/>`, naming `domain` as the authorization identity (as
/// XEP-0178 §3 step 7 shows; an empty one, `=`, means the certificate's own identity).
pub fn auth(domain: Option<&str>) -> Element {
    Element::new("auth", ns::SASL)
        .with_attr("mechanism", MECHANISM)
        .with_text(encode_payload(domain.unwrap_or_default().as_bytes()))
}

/// What an `<auth/>` element asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthRequest {
    /// EXTERNAL for this authorization identity (`None`: the identity the stream's `from`
    /// and the certificate give).
    External(Option<String>),
    /// Another mechanism.
    Other(String),
}

/// Reads an `<auth/>` element.
///
/// # Errors
/// [`SaslError::IncorrectEncoding`] for a payload that is not base64, and
/// [`SaslError::MalformedRequest`] for one that is not UTF-8.
pub fn parse_auth(auth: &Element) -> Result<AuthRequest, SaslError> {
    let mechanism = auth.attr("mechanism").unwrap_or_default();
    if mechanism != MECHANISM {
        return Ok(AuthRequest::Other(mechanism.to_string()));
    }
    let payload = decode_payload(&auth.text())?;
    let authzid = String::from_utf8(payload).map_err(|_| SaslError::MalformedRequest {
        detail: "the authorization identity is not UTF-8",
    })?;
    Ok(AuthRequest::External(
        Some(authzid).filter(|id| !id.is_empty()),
    ))
}

/// `<success/>`.
pub fn success() -> Element {
    Element::new("success", ns::SASL)
}

/// `<failure/>` with `condition` (RFC 6120 §6.5).
pub fn failure(condition: &str) -> Element {
    Element::new("failure", ns::SASL).with_child(Element::new(condition, ns::SASL))
}

/// How the receiving server answered an `<auth/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `<success/>`: the stream is authenticated; both ends restart it (RFC 6120 §6.4.6).
    Success,
    /// `<failure/>` with its condition (empty when it named none).
    Failure(String),
}

/// Reads the answer to an `<auth/>`, or `None` for an element that is not one.
pub fn parse_answer(element: &Element) -> Option<Answer> {
    if element.is("success", ns::SASL) {
        return Some(Answer::Success);
    }
    if element.is("failure", ns::SASL) {
        let condition = element
            .elements()
            .find(|child| child.ns == ns::SASL && child.name != "text")
            .map(|child| child.name.clone())
            .unwrap_or_default();
        return Some(Answer::Failure(condition));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_names_the_domain_and_reads_back() {
        let element = auth(Some("ref.test"));
        assert_eq!(element.text(), "cmVmLnRlc3Q=");
        assert_eq!(
            parse_auth(&element),
            Ok(AuthRequest::External(Some("ref.test".into())))
        );
        assert_eq!(
            parse_auth(&auth(None)),
            Ok(AuthRequest::External(None)),
            "= is an empty authorization identity"
        );
        let plain = Element::new("auth", ns::SASL).with_attr("mechanism", "PLAIN");
        assert_eq!(parse_auth(&plain), Ok(AuthRequest::Other("PLAIN".into())));
        let garbage = Element::new("auth", ns::SASL)
            .with_attr("mechanism", MECHANISM)
            .with_text("!!");
        assert_eq!(parse_auth(&garbage), Err(SaslError::IncorrectEncoding));
    }

    #[test]
    fn offers_and_answers_read_back() {
        let features = Element::new("features", ns::STREAM).with_child(offer());
        assert!(offered(&features));
        let plain_only = Element::new("features", ns::STREAM).with_child(
            Element::new("mechanisms", ns::SASL)
                .with_child(Element::new("mechanism", ns::SASL).with_text("PLAIN")),
        );
        assert!(!offered(&plain_only));
        assert!(!offered(&Element::new("features", ns::STREAM)));
        assert_eq!(parse_answer(&success()), Some(Answer::Success));
        assert_eq!(
            parse_answer(&failure("not-authorized")),
            Some(Answer::Failure("not-authorized".into()))
        );
        assert_eq!(parse_answer(&Element::new("proceed", ns::TLS)), None);
    }
}
