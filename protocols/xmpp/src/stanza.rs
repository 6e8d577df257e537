//! RFC 6120 §8 (stanza semantics and addressing) with RFC 6121 §4 (presence) and §5
//! (messages): classifying, reading and building the three stanza kinds.
//!
//! Stanzas are plain [`Element`]s in [`ns::CLIENT`]; these helpers read and write their
//! attributes and well-known children without a separate typed model.

use crate::element::Element;
use crate::errors::{StanzaError, StanzaErrorCondition};
use crate::jid::{Jid, JidError};
use crate::ns;

/// The three kinds of XML stanza (RFC 6120 §8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    /// `<message/>`: push of information, no reply expected.
    Message,
    /// `<presence/>`: availability and subscriptions (publish-subscribe).
    Presence,
    /// `<iq/>`: request-response.
    Iq,
}

impl StanzaKind {
    /// The kind of `el`, or `None` if it is not a stanza (wrong name or namespace).
    pub fn of(el: &Element) -> Option<StanzaKind> {
        if el.ns != ns::CLIENT {
            return None;
        }
        match el.name.as_str() {
            "message" => Some(StanzaKind::Message),
            "presence" => Some(StanzaKind::Presence),
            "iq" => Some(StanzaKind::Iq),
            _ => None,
        }
    }

    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }
}

/// The `type` of a message (RFC 6121 §5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A standalone message (the default).
    Normal,
    /// One-to-one conversation.
    Chat,
    /// Multi-user chat.
    Groupchat,
    /// An alert or notification that expects no reply.
    Headline,
    /// An error reply.
    Error,
}

impl MessageType {
    /// The type of message `el`: an absent or unknown `type` is `normal` (RFC 6121 §5.2.2).
    pub fn of(el: &Element) -> MessageType {
        match el.attr("type") {
            Some("chat") => MessageType::Chat,
            Some("groupchat") => MessageType::Groupchat,
            Some("headline") => MessageType::Headline,
            Some("error") => MessageType::Error,
            _ => MessageType::Normal,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Normal => "normal",
            MessageType::Chat => "chat",
            MessageType::Groupchat => "groupchat",
            MessageType::Headline => "headline",
            MessageType::Error => "error",
        }
    }
}

/// The `type` of a presence stanza (RFC 6121 §4.7.1), with `Available` for no type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PresenceType {
    /// No `type` attribute: the sender is available.
    Available,
    /// The sender is no longer available.
    Unavailable,
    /// Request to subscribe to the recipient's presence.
    Subscribe,
    /// The subscription request was approved.
    Subscribed,
    /// Request to unsubscribe.
    Unsubscribe,
    /// The subscription was denied or cancelled.
    Unsubscribed,
    /// A server's request for current presence.
    Probe,
    /// An error reply.
    Error,
}

impl PresenceType {
    /// The type of presence `el`.
    ///
    /// # Errors
    ///
    /// A `bad-request` [`StanzaError`] for a `type` RFC 6121 does not define.
    pub fn of(el: &Element) -> Result<PresenceType, StanzaError> {
        Ok(match el.attr("type") {
            None => PresenceType::Available,
            Some("unavailable") => PresenceType::Unavailable,
            Some("subscribe") => PresenceType::Subscribe,
            Some("subscribed") => PresenceType::Subscribed,
            Some("unsubscribe") => PresenceType::Unsubscribe,
            Some("unsubscribed") => PresenceType::Unsubscribed,
            Some("probe") => PresenceType::Probe,
            Some("error") => PresenceType::Error,
            Some(other) => {
                return Err(StanzaError::new(StanzaErrorCondition::BadRequest)
                    .with_text(format!("unknown presence type '{other}'")));
            }
        })
    }

    /// The attribute value, `None` for [`PresenceType::Available`].
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            PresenceType::Available => None,
            PresenceType::Unavailable => Some("unavailable"),
            PresenceType::Subscribe => Some("subscribe"),
            PresenceType::Subscribed => Some("subscribed"),
            PresenceType::Unsubscribe => Some("unsubscribe"),
            PresenceType::Unsubscribed => Some("unsubscribed"),
            PresenceType::Probe => Some("probe"),
            PresenceType::Error => Some("error"),
        }
    }

    /// Whether this is one of the four subscription types (RFC 6121 §3).
    pub fn is_subscription(self) -> bool {
        matches!(
            self,
            PresenceType::Subscribe
                | PresenceType::Subscribed
                | PresenceType::Unsubscribe
                | PresenceType::Unsubscribed
        )
    }
}

/// The `type` of an IQ stanza (RFC 6120 §8.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IqType {
    /// A request for information.
    Get,
    /// A request to change something.
    Set,
    /// A successful response.
    Result,
    /// An error response.
    Error,
}

impl IqType {
    /// The type of IQ `el`.
    ///
    /// # Errors
    ///
    /// A `bad-request` [`StanzaError`] if `type` is missing or not one of the four
    /// (RFC 6120 §8.2.3 makes it required).
    pub fn of(el: &Element) -> Result<IqType, StanzaError> {
        match el.attr("type") {
            Some("get") => Ok(IqType::Get),
            Some("set") => Ok(IqType::Set),
            Some("result") => Ok(IqType::Result),
            Some("error") => Ok(IqType::Error),
            Some(other) => Err(StanzaError::new(StanzaErrorCondition::BadRequest)
                .with_text(format!("unknown iq type '{other}'"))),
            None => {
                Err(StanzaError::new(StanzaErrorCondition::BadRequest)
                    .with_text("iq without a type"))
            }
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }

    /// Whether this is a request (`get` or `set`), which must be answered.
    pub fn is_request(self) -> bool {
        matches!(self, IqType::Get | IqType::Set)
    }
}

fn jid_attr(el: &Element, name: &str) -> Result<Option<Jid>, JidError> {
    el.attr(name).map(Jid::parse).transpose()
}

/// The `to` address of `el`, if present.
///
/// # Errors
///
/// [`JidError`] if the attribute is present but not a valid JID.
pub fn to(el: &Element) -> Result<Option<Jid>, JidError> {
    jid_attr(el, "to")
}

/// The `from` address of `el`, if present.
///
/// # Errors
///
/// [`JidError`] if the attribute is present but not a valid JID.
pub fn from(el: &Element) -> Result<Option<Jid>, JidError> {
    jid_attr(el, "from")
}

/// The `id` attribute of `el`.
pub fn id(el: &Element) -> Option<&str> {
    el.attr("id")
}

/// The `<show/>` of a presence (RFC 6121 §4.7.2.1): `away`, `chat`, `dnd` or `xa`;
/// `None` if absent (plain availability).
pub fn show(el: &Element) -> Option<String> {
    el.child_text("show", ns::CLIENT)
}

/// The first `<status/>` of a presence (RFC 6121 §4.7.2.2).
pub fn status(el: &Element) -> Option<String> {
    el.child_text("status", ns::CLIENT)
}

/// The `<priority/>` of a presence (RFC 6121 §4.7.2.3): 0 if absent, and also 0 if it is
/// not an integer in -128..=127 (the RFC leaves invalid values to the receiver).
pub fn priority(el: &Element) -> i8 {
    el.child_text("priority", ns::CLIENT)
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// The `<body/>` of a message (RFC 6121 §5.2.3), the first one if there are several.
pub fn body(el: &Element) -> Option<String> {
    el.child_text("body", ns::CLIENT)
}

fn with_addresses(el: Element, from: Option<&Jid>, to: Option<&Jid>) -> Element {
    el.with_opt_attr("from", from.map(Jid::to_string))
        .with_opt_attr("to", to.map(Jid::to_string))
}

/// A `<message/>` to `to`. A [`MessageType::Normal`] message gets `type='normal'`
/// written out; `body`, if given, becomes a `<body/>` child.
pub fn message(from: Option<&Jid>, to: &Jid, mtype: MessageType, body: Option<&str>) -> Element {
    let mut el = with_addresses(Element::new("message", ns::CLIENT), from, Some(to))
        .with_attr("type", mtype.as_str());
    if let Some(body) = body {
        el = el.with_child(Element::new("body", ns::CLIENT).with_text(body));
    }
    el
}

/// A `<presence/>`; no `type` attribute for [`PresenceType::Available`].
pub fn presence(from: Option<&Jid>, to: Option<&Jid>, ptype: PresenceType) -> Element {
    with_addresses(Element::new("presence", ns::CLIENT), from, to)
        .with_opt_attr("type", ptype.as_str())
}

/// An `<iq/>` with `id` and an optional payload child.
pub fn iq(
    from: Option<&Jid>,
    to: Option<&Jid>,
    itype: IqType,
    id: &str,
    payload: Option<Element>,
) -> Element {
    let mut el = with_addresses(Element::new("iq", ns::CLIENT), from, to)
        .with_attr("type", itype.as_str())
        .with_attr("id", id);
    if let Some(payload) = payload {
        el = el.with_child(payload);
    }
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("valid JID")
    }

    #[test]
    fn kinds() {
        assert_eq!(
            StanzaKind::of(&Element::new("message", ns::CLIENT)),
            Some(StanzaKind::Message)
        );
        assert_eq!(
            StanzaKind::of(&Element::new("presence", ns::CLIENT)),
            Some(StanzaKind::Presence)
        );
        assert_eq!(
            StanzaKind::of(&Element::new("iq", ns::CLIENT)),
            Some(StanzaKind::Iq)
        );
        assert_eq!(StanzaKind::of(&Element::new("iq", "urn:x")), None);
        assert_eq!(StanzaKind::of(&Element::new("features", ns::STREAM)), None);
        assert_eq!(StanzaKind::Iq.as_str(), "iq");
    }

    #[test]
    fn message_types_default_to_normal() {
        let m = Element::new("message", ns::CLIENT);
        assert_eq!(MessageType::of(&m), MessageType::Normal);
        assert_eq!(
            MessageType::of(&m.clone().with_attr("type", "bogus")),
            MessageType::Normal
        );
        for t in [
            MessageType::Normal,
            MessageType::Chat,
            MessageType::Groupchat,
            MessageType::Headline,
            MessageType::Error,
        ] {
            assert_eq!(MessageType::of(&m.clone().with_attr("type", t.as_str())), t);
        }
    }

    #[test]
    fn presence_types() {
        let p = Element::new("presence", ns::CLIENT);
        assert_eq!(PresenceType::of(&p), Ok(PresenceType::Available));
        for t in [
            PresenceType::Unavailable,
            PresenceType::Subscribe,
            PresenceType::Subscribed,
            PresenceType::Unsubscribe,
            PresenceType::Unsubscribed,
            PresenceType::Probe,
            PresenceType::Error,
        ] {
            let typed = p.clone().with_opt_attr("type", t.as_str());
            assert_eq!(PresenceType::of(&typed), Ok(t));
        }
        let error = PresenceType::of(&p.with_attr("type", "available")).unwrap_err();
        assert_eq!(error.condition, StanzaErrorCondition::BadRequest);
        assert!(PresenceType::Subscribed.is_subscription());
        assert!(!PresenceType::Probe.is_subscription());
    }

    #[test]
    fn iq_types() {
        let q = Element::new("iq", ns::CLIENT);
        assert_eq!(
            IqType::of(&q).unwrap_err().condition,
            StanzaErrorCondition::BadRequest
        );
        assert!(IqType::of(&q.clone().with_attr("type", "GET")).is_err());
        for t in [IqType::Get, IqType::Set, IqType::Result, IqType::Error] {
            assert_eq!(IqType::of(&q.clone().with_attr("type", t.as_str())), Ok(t));
        }
        assert!(IqType::Set.is_request());
        assert!(!IqType::Result.is_request());
    }

    #[test]
    fn addressing() {
        let m = Element::new("message", ns::CLIENT)
            .with_attr("from", "Juliet@Example.com/balcony")
            .with_attr("id", "m1");
        assert_eq!(from(&m), Ok(Some(jid("juliet@example.com/balcony"))));
        assert_eq!(to(&m), Ok(None));
        assert_eq!(id(&m), Some("m1"));
        assert!(to(&m.with_attr("to", "@bad")).is_err());
    }

    #[test]
    fn presence_children() {
        let p = Element::new("presence", ns::CLIENT)
            .with_child(Element::new("show", ns::CLIENT).with_text("away"))
            .with_child(Element::new("status", ns::CLIENT).with_text("out"))
            .with_child(Element::new("priority", ns::CLIENT).with_text(" -5 "));
        assert_eq!(show(&p).as_deref(), Some("away"));
        assert_eq!(status(&p).as_deref(), Some("out"));
        assert_eq!(priority(&p), -5);
        let bare = Element::new("presence", ns::CLIENT);
        assert_eq!(show(&bare), None);
        assert_eq!(status(&bare), None);
        assert_eq!(priority(&bare), 0);
        for bad in ["128", "-129", "high", "1.5", ""] {
            let p = Element::new("presence", ns::CLIENT)
                .with_child(Element::new("priority", ns::CLIENT).with_text(bad));
            assert_eq!(priority(&p), 0, "{bad}");
        }
        let p = Element::new("presence", ns::CLIENT)
            .with_child(Element::new("priority", ns::CLIENT).with_text("127"));
        assert_eq!(priority(&p), 127);
    }

    #[test]
    fn builders() {
        let romeo = jid("romeo@example.net/orchard");
        let juliet = jid("juliet@example.com");
        let m = message(Some(&romeo), &juliet, MessageType::Chat, Some("hi & bye"));
        assert_eq!(
            m.to_xml(ns::CLIENT),
            "<message from='romeo@example.net/orchard' to='juliet@example.com' type='chat'>\
             <body>hi &amp; bye</body></message>"
        );
        assert_eq!(body(&m).as_deref(), Some("hi & bye"));
        assert_eq!(
            message(None, &juliet, MessageType::Normal, None).to_xml(ns::CLIENT),
            "<message to='juliet@example.com' type='normal'/>"
        );
        assert_eq!(
            presence(None, None, PresenceType::Available).to_xml(ns::CLIENT),
            "<presence/>"
        );
        assert_eq!(
            presence(Some(&romeo), Some(&juliet), PresenceType::Subscribe).to_xml(ns::SERVER),
            "<presence from='romeo@example.net/orchard' to='juliet@example.com' type='subscribe'/>"
        );
        assert_eq!(
            iq(
                None,
                Some(&juliet),
                IqType::Get,
                "p1",
                Some(Element::new("ping", ns::PING))
            )
            .to_xml(ns::CLIENT),
            "<iq to='juliet@example.com' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>"
        );
        assert_eq!(
            iq(None, None, IqType::Result, "p1", None).to_xml(ns::CLIENT),
            "<iq type='result' id='p1'/>"
        );
    }
}
