//! RFC 6120 §4.9.3 (stream error conditions) and §8.3 (stanza errors: types and conditions).
//!
//! Conditions are closed enums: an unknown condition name fails [`FromStr`] with
//! [`UnknownName`], and the caller decides whether that is `undefined-condition`.

use std::fmt;
use std::str::FromStr;

use crate::element::Element;
use crate::ns;

/// A name that is not one of the values an enum in this module defines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{name}'")]
pub struct UnknownName {
    /// What was being parsed ("stream error condition", "stanza error type", ...).
    pub kind: &'static str,
    /// The name that was not recognized.
    pub name: String,
}

/// Declares a fieldless enum whose variants map one-to-one onto XML names, with
/// `as_str`, `ALL`, `Display` and `FromStr`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the specification lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The XML name of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            /// Parses the XML name; fails with [`UnknownName`] for anything else.
            fn from_str(name: &str) -> Result<Self, Self::Err> {
                match name {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownName { kind: $kind, name: name.to_string() }),
                }
            }
        }
    };
}

named_enum! {
    /// A stream error condition (RFC 6120 §4.9.3), sent inside `<stream:error/>` before the
    /// stream is closed.
    pub enum StreamErrorCondition ("stream error condition") {
        /// §4.9.3.1: XML that cannot be processed.
        BadFormat => "bad-format",
        /// §4.9.3.2: an unsupported namespace prefix, or none where one is needed.
        BadNamespacePrefix => "bad-namespace-prefix",
        /// §4.9.3.3: a new stream conflicts with an existing one.
        Conflict => "conflict",
        /// §4.9.3.4: no traffic for too long.
        ConnectionTimeout => "connection-timeout",
        /// §4.9.3.5: the `to` domain is no longer serviced here.
        HostGone => "host-gone",
        /// §4.9.3.6: the `to` domain is not serviced here.
        HostUnknown => "host-unknown",
        /// §4.9.3.7: a stanza lacks a required `to` or `from`.
        ImproperAddressing => "improper-addressing",
        /// §4.9.3.8: the server failed internally.
        InternalServerError => "internal-server-error",
        /// §4.9.3.9: a `from` address that the peer is not authorized to use.
        InvalidFrom => "invalid-from",
        /// §4.9.3.10: wrong stream namespace or unsupported content namespace.
        InvalidNamespace => "invalid-namespace",
        /// §4.9.3.11: XML that fails validation.
        InvalidXml => "invalid-xml",
        /// §4.9.3.12: data sent before the stream was authenticated.
        NotAuthorized => "not-authorized",
        /// §4.9.3.13: XML that is not well-formed.
        NotWellFormed => "not-well-formed",
        /// §4.9.3.14: a local policy was violated (for example a size limit).
        PolicyViolation => "policy-violation",
        /// §4.9.3.15: a remote server needed for authentication could not be reached.
        RemoteConnectionFailed => "remote-connection-failed",
        /// §4.9.3.16: the stream must be renegotiated (for example after a credential change).
        Reset => "reset",
        /// §4.9.3.17: the server lacks the resources to serve the stream.
        ResourceConstraint => "resource-constraint",
        /// §4.9.3.18: XML features that XMPP forbids (§11.1): comments, PIs, DTDs, entities.
        RestrictedXml => "restricted-xml",
        /// §4.9.3.19: reconnect to another host (named in the element's text).
        SeeOtherHost => "see-other-host",
        /// §4.9.3.20: the server is shutting down.
        SystemShutdown => "system-shutdown",
        /// §4.9.3.21: none of the other conditions.
        UndefinedCondition => "undefined-condition",
        /// §4.9.3.22: an encoding other than UTF-8.
        UnsupportedEncoding => "unsupported-encoding",
        /// §4.9.3.23: a mandatory-to-negotiate feature the receiver does not support.
        UnsupportedFeature => "unsupported-feature",
        /// §4.9.3.24: a first-level child that is not a stanza or a negotiated element.
        UnsupportedStanzaType => "unsupported-stanza-type",
        /// §4.9.3.25: a stream version the receiver does not support.
        UnsupportedVersion => "unsupported-version",
    }
}

named_enum! {
    /// The `type` of a stanza error (RFC 6120 §8.3.2): what the sender should do next.
    pub enum StanzaErrorType ("stanza error type") {
        /// Retry after providing credentials.
        Auth => "auth",
        /// Do not retry: the error cannot be remedied.
        Cancel => "cancel",
        /// Proceed: the condition was only a warning.
        Continue => "continue",
        /// Retry after changing the data sent.
        Modify => "modify",
        /// Retry after waiting: the error is temporary.
        Wait => "wait",
    }
}

named_enum! {
    /// A stanza error condition (RFC 6120 §8.3.3).
    pub enum StanzaErrorCondition ("stanza error condition") {
        /// §8.3.3.1: malformed or unprocessable request.
        BadRequest => "bad-request",
        /// §8.3.3.2: a resource or item with that name already exists.
        Conflict => "conflict",
        /// §8.3.3.3: the feature is not implemented by the recipient.
        FeatureNotImplemented => "feature-not-implemented",
        /// §8.3.3.4: the requester lacks the necessary permissions.
        Forbidden => "forbidden",
        /// §8.3.3.5: the recipient can no longer be reached at this address.
        Gone => "gone",
        /// §8.3.3.6: the server failed internally.
        InternalServerError => "internal-server-error",
        /// §8.3.3.7: the addressed JID or item does not exist.
        ItemNotFound => "item-not-found",
        /// §8.3.3.8: an address violates RFC 7622.
        JidMalformed => "jid-malformed",
        /// §8.3.3.9: the request does not meet the recipient's criteria.
        NotAcceptable => "not-acceptable",
        /// §8.3.3.10: nobody may perform this action.
        NotAllowed => "not-allowed",
        /// §8.3.3.11: credentials are missing or wrong.
        NotAuthorized => "not-authorized",
        /// §8.3.3.12: a local policy was violated.
        PolicyViolation => "policy-violation",
        /// §8.3.3.13: the recipient is temporarily unavailable.
        RecipientUnavailable => "recipient-unavailable",
        /// §8.3.3.14: the recipient is at another address.
        Redirect => "redirect",
        /// §8.3.3.15: registration is required first.
        RegistrationRequired => "registration-required",
        /// §8.3.3.16: the remote domain does not exist or cannot be resolved.
        RemoteServerNotFound => "remote-server-not-found",
        /// §8.3.3.17: the remote domain could not be reached in time.
        RemoteServerTimeout => "remote-server-timeout",
        /// §8.3.3.18: the recipient is busy or lacks resources.
        ResourceConstraint => "resource-constraint",
        /// §8.3.3.19: the service is not provided.
        ServiceUnavailable => "service-unavailable",
        /// §8.3.3.20: a subscription is required first.
        SubscriptionRequired => "subscription-required",
        /// §8.3.3.21: none of the other conditions.
        UndefinedCondition => "undefined-condition",
        /// §8.3.3.22: the request was not expected at this time.
        UnexpectedRequest => "unexpected-request",
    }
}

impl StanzaErrorCondition {
    /// The error type RFC 6120 §8.3.3 recommends for this condition (the first one named
    /// where it names several; `cancel` for `undefined-condition`, which allows any).
    pub fn default_type(self) -> StanzaErrorType {
        use StanzaErrorCondition as C;
        use StanzaErrorType as T;
        match self {
            C::BadRequest
            | C::JidMalformed
            | C::NotAcceptable
            | C::PolicyViolation
            | C::Redirect => T::Modify,
            C::Forbidden | C::NotAuthorized | C::RegistrationRequired | C::SubscriptionRequired => {
                T::Auth
            }
            C::RecipientUnavailable
            | C::RemoteServerTimeout
            | C::ResourceConstraint
            | C::UnexpectedRequest => T::Wait,
            C::Conflict
            | C::FeatureNotImplemented
            | C::Gone
            | C::InternalServerError
            | C::ItemNotFound
            | C::NotAllowed
            | C::RemoteServerNotFound
            | C::ServiceUnavailable
            | C::UndefinedCondition => T::Cancel,
        }
    }
}

/// A stanza error (RFC 6120 §8.3.2): the `<error/>` child of a stanza of type `error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaError {
    /// What the sender should do about it.
    pub error_type: StanzaErrorType,
    /// The defined condition.
    pub condition: StanzaErrorCondition,
    /// Optional human-readable description (the `<text/>` child).
    pub text: Option<String>,
    /// The entity that generated the error (the `by` attribute), if stated.
    pub by: Option<String>,
}

impl StanzaError {
    /// An error with `condition` and its [default type](StanzaErrorCondition::default_type).
    pub fn new(condition: StanzaErrorCondition) -> Self {
        StanzaError {
            error_type: condition.default_type(),
            condition,
            text: None,
            by: None,
        }
    }

    /// Builder: sets the human-readable text.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Builder: sets the `by` attribute.
    #[must_use]
    pub fn with_by(mut self, by: impl Into<String>) -> Self {
        self.by = Some(by.into());
        self
    }

    /// The `<error/>` element (in [`ns::CLIENT`]) carrying this error.
    pub fn to_element(&self) -> Element {
        let mut error = Element::new("error", ns::CLIENT)
            .with_attr("type", self.error_type.as_str())
            .with_opt_attr("by", self.by.as_deref())
            .with_child(Element::new(self.condition.as_str(), ns::STANZA_ERRORS));
        if let Some(text) = &self.text {
            error = error.with_child(Element::new("text", ns::STANZA_ERRORS).with_text(text));
        }
        error
    }

    /// Reads the `<error/>` child of `stanza`. Returns `None` if there is none, or if it
    /// lacks a valid `type` or a defined condition element.
    pub fn from_element(stanza: &Element) -> Option<StanzaError> {
        let error = stanza.child("error", ns::CLIENT)?;
        let error_type = error.attr("type")?.parse().ok()?;
        let condition = error
            .elements()
            .filter(|child| child.ns == ns::STANZA_ERRORS && child.name != "text")
            .find_map(|child| child.name.parse().ok())?;
        Some(StanzaError {
            error_type,
            condition,
            text: error.child_text("text", ns::STANZA_ERRORS),
            by: error.attr("by").map(str::to_string),
        })
    }
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.condition, self.error_type)?;
        if let Some(text) = &self.text {
            write!(f, ": {text}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StanzaError {}

/// The error reply to `stanza` (RFC 6120 §8.3.1): same element name and `id`, `from` and
/// `to` swapped, `type='error'`, the original children kept (which the RFC allows) and
/// `error` appended. Other attributes (such as `xml:lang`) are kept.
pub fn error_reply(stanza: &Element, error: &StanzaError) -> Element {
    let mut reply = stanza.clone();
    let from = reply.remove_attr("from");
    let to = reply.remove_attr("to");
    if let Some(to) = to {
        reply.set_attr("from", to);
    }
    if let Some(from) = from {
        reply.set_attr("to", from);
    }
    reply.set_attr("type", "error");
    // A stanza being bounced may already carry an error; the reply carries only ours.
    reply.remove_children("error", ns::CLIENT);
    reply
        .children
        .push(crate::Node::Element(error.to_element()));
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_stream_conditions_round_trip() {
        assert_eq!(StreamErrorCondition::ALL.len(), 25);
        for condition in StreamErrorCondition::ALL {
            assert_eq!(condition.as_str().parse(), Ok(*condition));
            assert_eq!(condition.to_string(), condition.as_str());
        }
        assert_eq!(
            "no-such".parse::<StreamErrorCondition>(),
            Err(UnknownName {
                kind: "stream error condition",
                name: "no-such".into()
            })
        );
    }

    #[test]
    fn all_stanza_conditions_round_trip() {
        assert_eq!(StanzaErrorCondition::ALL.len(), 22);
        for condition in StanzaErrorCondition::ALL {
            assert_eq!(condition.as_str().parse(), Ok(*condition));
        }
        for error_type in StanzaErrorType::ALL {
            assert_eq!(error_type.as_str().parse(), Ok(*error_type));
        }
        assert!("Cancel".parse::<StanzaErrorType>().is_err());
    }

    #[test]
    fn default_types_follow_rfc_6120() {
        use StanzaErrorCondition as C;
        use StanzaErrorType as T;
        for (condition, expected) in [
            (C::RemoteServerNotFound, T::Cancel),
            (C::RemoteServerTimeout, T::Wait),
            (C::ServiceUnavailable, T::Cancel),
            (C::ItemNotFound, T::Cancel),
            (C::BadRequest, T::Modify),
            (C::NotAuthorized, T::Auth),
            (C::Forbidden, T::Auth),
            (C::ResourceConstraint, T::Wait),
            (C::RecipientUnavailable, T::Wait),
            (C::PolicyViolation, T::Modify),
            (C::JidMalformed, T::Modify),
            (C::Conflict, T::Cancel),
            (C::SubscriptionRequired, T::Auth),
        ] {
            assert_eq!(condition.default_type(), expected, "{condition}");
        }
    }

    #[test]
    fn stanza_error_element_round_trip() {
        let error = StanzaError::new(StanzaErrorCondition::ItemNotFound)
            .with_text("no such user")
            .with_by("example.com");
        let element = error.to_element();
        assert_eq!(
            element.to_xml(ns::CLIENT),
            "<error type='cancel' by='example.com'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such user</text></error>"
        );
        let stanza = Element::new("iq", ns::CLIENT).with_child(element);
        assert_eq!(StanzaError::from_element(&stanza), Some(error));
    }

    #[test]
    fn from_element_rejects_incomplete_errors() {
        let no_type = Element::new("message", ns::CLIENT).with_child(
            Element::new("error", ns::CLIENT).with_child(Element::new("gone", ns::STANZA_ERRORS)),
        );
        assert_eq!(StanzaError::from_element(&no_type), None);
        let no_condition = Element::new("message", ns::CLIENT).with_child(
            Element::new("error", ns::CLIENT)
                .with_attr("type", "cancel")
                .with_child(Element::new("text", ns::STANZA_ERRORS).with_text("x")),
        );
        assert_eq!(StanzaError::from_element(&no_condition), None);
        assert_eq!(
            StanzaError::from_element(&Element::new("message", ns::CLIENT)),
            None
        );
    }

    #[test]
    fn error_reply_swaps_addresses_and_keeps_payload() {
        let ping = Element::new("ping", ns::PING);
        let request = Element::new("iq", ns::CLIENT)
            .with_attr("from", "juliet@example.com/balcony")
            .with_attr("to", "romeo@example.net")
            .with_attr("type", "get")
            .with_attr("id", "p1")
            .with_child(ping.clone());
        let reply = error_reply(
            &request,
            &StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
        );
        assert_eq!(reply.name, "iq");
        assert_eq!(reply.attr("from"), Some("romeo@example.net"));
        assert_eq!(reply.attr("to"), Some("juliet@example.com/balcony"));
        assert_eq!(reply.attr("type"), Some("error"));
        assert_eq!(reply.attr("id"), Some("p1"));
        assert_eq!(reply.child("ping", ns::PING), Some(&ping));
        let error = StanzaError::from_element(&reply).expect("error child");
        assert_eq!(error.condition, StanzaErrorCondition::ServiceUnavailable);
        assert_eq!(error.error_type, StanzaErrorType::Cancel);
    }

    #[test]
    fn error_reply_without_addresses_sets_none() {
        let request = Element::new("message", ns::CLIENT).with_attr("id", "m1");
        let reply = error_reply(&request, &StanzaError::new(StanzaErrorCondition::Gone));
        assert_eq!(reply.attr("from"), None);
        assert_eq!(reply.attr("to"), None);
        assert_eq!(reply.attr("id"), Some("m1"));
    }
}
