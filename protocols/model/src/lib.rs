//! imfed-model: the protocol-neutral vocabulary of imfed, in the terms of the IMPP model and
//! requirements (RFC 2778, RFC 2779): principals and their endpoints, presence availability,
//! instant messages, subscriptions. Scenarios are written in it, protocol drivers map it to
//! their wire forms (XMPP stanzas today; RVP and SIP/SIMPLE requests next), and what a
//! protocol cannot express is a declared capability gap of its profile, never a silent pass.
//!
//! No I/O and no protocol syntax here: values serialize with the names scenario files use.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A principal's address (RFC 2778 §2: the PRESENTITY and its INBOX share it), optionally
/// narrowed to one endpoint of the principal (an XMPP resource, an RVP view, a SIP contact).
/// A domain-only address (`user: None`) names a server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The user part, prepared by the profile's rules (e.g. PRECIS for XMPP).
    pub user: Option<String>,
    /// The domain.
    pub domain: String,
    /// The endpoint, when one is meant.
    pub endpoint: Option<String>,
}

impl Address {
    /// The address without its endpoint.
    pub fn bare(&self) -> Address {
        Address {
            endpoint: None,
            ..self.clone()
        }
    }

    /// Whether `actual` is this address: an address without endpoint matches any endpoint
    /// of the same principal, one with an endpoint only that endpoint.
    pub fn matches(&self, actual: &Address) -> bool {
        match &self.endpoint {
            Some(_) => actual == self,
            None => actual.bare() == *self,
        }
    }
}

impl fmt::Display for Address {
    /// `user@domain/endpoint`, the neutral written form (each profile has its own syntax).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(endpoint) = &self.endpoint {
            write!(f, "/{endpoint}")?;
        }
        Ok(())
    }
}

/// Whether a presentity is available (RFC 2778 §2.2: the OPEN and CLOSED statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Available presence.
    Available,
    /// Unavailable presence.
    Unavailable,
}

/// A detail of availability (RFC 2779 §2.2 leaves the values open): away, free to chat, do
/// not disturb, away for long. Profiles map them to their own values or declare a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Show {
    /// Away for a while.
    Away,
    /// Available and willing to talk.
    Chat,
    /// Busy: do not disturb.
    Dnd,
    /// Away for a long time.
    Xa,
}

impl Show {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            Show::Away => "away",
            Show::Chat => "chat",
            Show::Dnd => "dnd",
            Show::Xa => "xa",
        }
    }

    /// The value named `text`.
    pub fn parse(text: &str) -> Option<Show> {
        [Show::Away, Show::Chat, Show::Dnd, Show::Xa]
            .into_iter()
            .find(|show| show.as_str() == text)
    }
}

/// What kind of instant message (RFC 2779 §4.1 requires one kind; XMPP distinguishes more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A standalone message.
    Normal,
    /// A message in a one-to-one conversation.
    Chat,
    /// A message in a multi-party conversation.
    Groupchat,
    /// An alert or notice that expects no reply.
    Headline,
    /// An error report.
    Error,
}

impl MessageKind {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Normal => "normal",
            MessageKind::Chat => "chat",
            MessageKind::Groupchat => "groupchat",
            MessageKind::Headline => "headline",
            MessageKind::Error => "error",
        }
    }
}

/// What an exchange carried: a message, presence, or a request that expects an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StanzaKind {
    /// An instant message.
    Message,
    /// Presence, subscription signals included.
    Presence,
    /// A request and its answer (`iq` in XMPP).
    #[serde(alias = "request")]
    Iq,
}

impl StanzaKind {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }
}

/// Why something an actor sent was not delivered or not done, in the terms a sender needs
/// (RFC 2779 §5.4.1: "A MUST receive confirmation of non-delivery"). Each profile maps its
/// own error codes to these classes: XMPP's defined conditions (RFC 6120 §8.3.3), RVP's
/// HTTP status codes, SIP's response codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Not delivered: the recipient is offline, has no such endpoint, or (where a server
    /// will not tell a stranger which) does not exist.
    Undelivered,
    /// The recipient does not exist, and the server says so.
    NotFound,
    /// No server could be found for the recipient's domain.
    NoSuchDomain,
    /// The recipient's server could not be reached in time.
    Unreachable,
    /// Not permitted.
    Refused,
    /// The kind of request is not supported there.
    NotSupported,
    /// The request was malformed.
    BadRequest,
    /// Some other error.
    Other,
}

impl ErrorClass {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Undelivered => "undelivered",
            ErrorClass::NotFound => "not_found",
            ErrorClass::NoSuchDomain => "no_such_domain",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Refused => "refused",
            ErrorClass::NotSupported => "not_supported",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::Other => "other",
        }
    }
}

/// What a watcher or a presentity does about a subscription (RFC 2779 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionAction {
    /// Ask to watch the other's presence (§5.1.1).
    Subscribe,
    /// Grant the other's request (§5.1.5).
    Approve,
    /// Refuse the other's pending request (§5.1.5).
    Deny,
    /// Revoke the other's existing subscription (§5.1.11).
    Cancel,
    /// Stop watching the other's presence (§5.1.6).
    Unsubscribe,
}

/// A subscription signal as its receiver sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionSignal {
    /// Someone asks to watch the receiver's presence.
    Request,
    /// The receiver's request was granted.
    Approved,
    /// The receiver's request was refused, or its subscription revoked.
    Refused,
    /// Someone stopped watching the receiver's presence.
    Withdrawn,
}

impl SubscriptionSignal {
    /// How scenario files name the expectation of it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionSignal::Request => "subscription_request",
            SubscriptionSignal::Approved => "subscribed",
            SubscriptionSignal::Refused => "unsubscribed",
            SubscriptionSignal::Withdrawn => "unsubscribe",
        }
    }
}

/// The state of a subscription between a user and a contact, as the user's server keeps it
/// (RFC 2779 §5.1; the states of RFC 6121 §2.1.2.5), or no record at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// No record of the contact.
    Absent,
    /// A record, no subscription either way.
    None,
    /// The user watches the contact.
    To,
    /// The contact watches the user.
    From,
    /// Both watch each other.
    Both,
}

impl SubscriptionState {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::Absent => "absent",
            SubscriptionState::None => "none",
            SubscriptionState::To => "to",
            SubscriptionState::From => "from",
            SubscriptionState::Both => "both",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_matches_every_endpoint_a_full_one_only_itself() {
        let bare = Address {
            user: Some("bob".into()),
            domain: "b.test".into(),
            endpoint: None,
        };
        let phone = Address {
            endpoint: Some("phone".into()),
            ..bare.clone()
        };
        let laptop = Address {
            endpoint: Some("laptop".into()),
            ..bare.clone()
        };
        assert!(bare.matches(&phone) && bare.matches(&bare));
        assert!(phone.matches(&phone) && !phone.matches(&laptop) && !phone.matches(&bare));
        assert_eq!(phone.to_string(), "bob@b.test/phone");
        assert_eq!(Show::parse("dnd"), Some(Show::Dnd));
        assert_eq!(Show::parse("busy"), None);
    }
}
