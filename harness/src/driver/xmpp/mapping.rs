//! The XMPP profile's mapping of the neutral vocabulary (RFC 6120 §8, RFC 6121 §3–§5):
//! addresses are JIDs (RFC 7622), outgoing messages, presence and subscription actions become
//! stanzas, and received stanzas are decoded to [`Event`]s. Also the `expect_xml` escape
//! hatch: structure-aware XML patterns.

use imfed_model::{
    Address, Availability, ErrorClass, MessageKind, Show, StanzaKind, SubscriptionAction,
    SubscriptionSignal, SubscriptionState,
};
use imfed_xmpp::stanza::MessageType;
use imfed_xmpp::stream::STREAM_CLOSE;
use imfed_xmpp::{Element, Jid, Limits, StanzaError, StreamEvent, StreamHeader, StreamParser, ns};

use crate::driver::event::{Event, OutMessage, OutPresence, Received, Wire};

/// The neutral address of a JID.
pub fn address_of(jid: &Jid) -> Address {
    Address {
        user: jid.local().map(str::to_string),
        domain: jid.domain().to_string(),
        endpoint: jid.resource().map(str::to_string),
    }
}

/// Parses a JID into a neutral address.
///
/// # Errors
/// Why `text` is not a JID.
pub fn parse_address(text: &str) -> Result<Address, String> {
    Jid::parse(text)
        .map(|jid| address_of(&jid))
        .map_err(|error| format!("{text:?} is not an address: {error}"))
}

/// The JID of a neutral address.
///
/// # Errors
/// Why it makes no JID.
pub fn jid_of(address: &Address) -> Result<Jid, String> {
    Jid::new(
        address.user.as_deref(),
        &address.domain,
        address.endpoint.as_deref(),
    )
    .map_err(|error| format!("{address} is not a JID: {error}"))
}

/// An address as this profile writes it: a JID.
pub fn render(address: &Address) -> String {
    jid_of(address).map_or_else(|_| address.to_string(), |jid| jid.to_string())
}

fn message_type(kind: MessageKind) -> &'static str {
    kind.as_str()
}

fn message_kind(stanza: &Element) -> MessageKind {
    match MessageType::of(stanza) {
        MessageType::Normal => MessageKind::Normal,
        MessageType::Chat => MessageKind::Chat,
        MessageType::Groupchat => MessageKind::Groupchat,
        MessageType::Headline => MessageKind::Headline,
        MessageType::Error => MessageKind::Error,
    }
}

/// The `<message/>` for `out`, with id `id`.
pub fn message(out: &OutMessage, id: String) -> Element {
    let mut message = Element::new("message", ns::CLIENT)
        .with_attr("to", render(&out.to))
        .with_attr("type", message_type(out.kind))
        .with_attr("id", id);
    for (name, value) in [
        ("subject", &out.subject),
        ("body", &out.body),
        ("thread", &out.thread),
    ] {
        if let Some(value) = value {
            message = message.with_child(Element::new(name, ns::CLIENT).with_text(value.clone()));
        }
    }
    message
}

/// The `<presence/>` for `out` (RFC 6121 §4).
pub fn presence(out: &OutPresence) -> Element {
    let mut stanza = Element::new("presence", ns::CLIENT);
    if let Some(to) = &out.to {
        stanza.set_attr("to", render(to));
    }
    if out.availability == Availability::Unavailable {
        stanza.set_attr("type", "unavailable");
    }
    if let Some(show) = out.show {
        stanza = stanza.with_child(Element::new("show", ns::CLIENT).with_text(show.as_str()));
    }
    if let Some(status) = &out.status {
        stanza = stanza.with_child(Element::new("status", ns::CLIENT).with_text(status.clone()));
    }
    if let Some(priority) = out.priority {
        stanza =
            stanza.with_child(Element::new("priority", ns::CLIENT).with_text(priority.to_string()));
    }
    stanza
}

/// The subscription presence for `action` towards `to`'s bare JID (RFC 6121 §3: a denial and
/// a cancellation are both `unsubscribed`).
pub fn subscription(action: SubscriptionAction, to: &Address) -> Element {
    let presence_type = match action {
        SubscriptionAction::Subscribe => "subscribe",
        SubscriptionAction::Approve => "subscribed",
        SubscriptionAction::Deny | SubscriptionAction::Cancel => "unsubscribed",
        SubscriptionAction::Unsubscribe => "unsubscribe",
    };
    Element::new("presence", ns::CLIENT)
        .with_attr("to", render(&to.bare()))
        .with_attr("type", presence_type)
}

/// A roster item (RFC 6121 §2.1.2) for a roster set.
pub fn roster_item(contact: &Address, name: Option<&str>, groups: &[String]) -> Element {
    let mut item = Element::new("item", ns::ROSTER).with_attr("jid", render(&contact.bare()));
    if let Some(name) = name {
        item.set_attr("name", name);
    }
    for group in groups {
        item = item.with_child(Element::new("group", ns::ROSTER).with_text(group.clone()));
    }
    item
}

/// The subscription state a roster item shows, and whether it has `ask='subscribe'`;
/// `None` for an item being removed.
pub fn item_state(item: &Element) -> Option<(SubscriptionState, bool)> {
    let state = match item.attr("subscription").unwrap_or("none") {
        "to" => SubscriptionState::To,
        "from" => SubscriptionState::From,
        "both" => SubscriptionState::Both,
        "remove" => return None,
        _ => SubscriptionState::None,
    };
    Some((state, item.attr("ask") == Some("subscribe")))
}

fn from_of(stanza: &Element) -> Option<Address> {
    stanza
        .attr("from")
        .and_then(|text| Jid::parse(text).ok())
        .map(|jid| address_of(&jid))
}

/// The class of a defined condition (RFC 6120 §8.3.3). `service-unavailable` is RFC 6121's
/// answer for an offline user, an unknown one and an unsupported message kind alike
/// (§8.5), so that a stranger cannot tell them apart: all are "not delivered".
pub fn class_of(condition: &str) -> ErrorClass {
    match condition {
        "service-unavailable" | "recipient-unavailable" | "gone" | "redirect" => {
            ErrorClass::Undelivered
        }
        "item-not-found" => ErrorClass::NotFound,
        "remote-server-not-found" => ErrorClass::NoSuchDomain,
        "remote-server-timeout" => ErrorClass::Unreachable,
        "forbidden"
        | "not-allowed"
        | "not-authorized"
        | "policy-violation"
        | "registration-required"
        | "subscription-required" => ErrorClass::Refused,
        "feature-not-implemented" => ErrorClass::NotSupported,
        "bad-request" | "jid-malformed" | "not-acceptable" => ErrorClass::BadRequest,
        _ => ErrorClass::Other,
    }
}

/// Decodes a received stanza.
pub fn decode(stanza: Element) -> Received {
    let from = from_of(&stanza);
    let about = match stanza.name.as_str() {
        "message" => Some(StanzaKind::Message),
        "presence" => Some(StanzaKind::Presence),
        "iq" => Some(StanzaKind::Iq),
        _ => None,
    };
    let event = if stanza.ns != ns::CLIENT {
        Event::Other
    } else if stanza.attr("type") == Some("error") {
        let condition =
            StanzaError::from_element(&stanza).map(|error| error.condition.as_str().to_string());
        Event::Error {
            from,
            about,
            class: condition.as_deref().map_or(ErrorClass::Other, class_of),
            condition,
        }
    } else if stanza.name == "message" {
        Event::Message {
            from,
            kind: message_kind(&stanza),
            body: stanza.child_text("body", ns::CLIENT),
            subject: stanza.child_text("subject", ns::CLIENT),
            thread: stanza.child_text("thread", ns::CLIENT),
        }
    } else if stanza.name == "presence" {
        let signal = match stanza.attr("type") {
            None | Some("unavailable") => None,
            Some("subscribe") => Some(Some(SubscriptionSignal::Request)),
            Some("subscribed") => Some(Some(SubscriptionSignal::Approved)),
            Some("unsubscribed") => Some(Some(SubscriptionSignal::Refused)),
            Some("unsubscribe") => Some(Some(SubscriptionSignal::Withdrawn)),
            Some(_) => Some(None),
        };
        match signal {
            None => Event::Presence {
                from,
                available: stanza.attr("type").is_none(),
                show: stanza
                    .child_text("show", ns::CLIENT)
                    .and_then(|show| Show::parse(&show)),
                status: stanza.child_text("status", ns::CLIENT),
                priority: imfed_xmpp::stanza::priority(&stanza),
            },
            Some(Some(signal)) => Event::Signal { from, signal },
            Some(None) => Event::Other,
        }
    } else {
        Event::Other
    };
    let text = stanza.to_xml(ns::CLIENT);
    Received {
        event,
        wire: Wire::Xmpp(stanza),
        text,
    }
}

/// Parses XML text as a sequence of elements in the `jabber:client` namespace.
///
/// # Errors
/// The parser's error, as text.
pub fn parse_fragment(xml: &str) -> Result<Vec<Element>, String> {
    parse_fragment_in(xml, ns::CLIENT)
}

/// [`parse_fragment`] with `content_ns` as the default namespace (`jabber:server` for what
/// crosses a server-to-server stream).
pub fn parse_fragment_in(xml: &str, content_ns: &str) -> Result<Vec<Element>, String> {
    let mut header = Vec::new();
    StreamHeader::new(content_ns).write_to(&mut header);
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(&header);
    parser.feed(xml.as_bytes());
    parser.feed(STREAM_CLOSE.as_bytes());
    let mut elements = Vec::new();
    loop {
        match parser.next_event() {
            Ok(Some(StreamEvent::Element(element))) => elements.push(element),
            Ok(Some(StreamEvent::Header(_))) => {}
            Ok(Some(StreamEvent::End)) => return Ok(elements),
            Ok(None) => return Err("incomplete XML".into()),
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// Whether `stanza` matches `pattern`: same name and namespace; every pattern attribute
/// present with the same value (`*` matches any value); the same text where the pattern has
/// text; and every pattern child matched by a distinct child of the stanza.
pub fn pattern_matches(pattern: &Element, stanza: &Element) -> bool {
    if pattern.name != stanza.name || pattern.ns != stanza.ns {
        return false;
    }
    for (key, value) in &pattern.attrs {
        match stanza.attr(key) {
            Some(actual) if value == "*" || actual == value => {}
            _ => return false,
        }
    }
    let text = pattern.text();
    if !text.trim().is_empty() && text.trim() != stanza.text().trim() {
        return false;
    }
    let wanted: Vec<&Element> = pattern.elements().collect();
    let available: Vec<&Element> = stanza.elements().collect();
    assign(&wanted, &available, &mut vec![false; available.len()])
}

/// Backtracking assignment of pattern children to distinct stanza children.
fn assign(wanted: &[&Element], available: &[&Element], used: &mut Vec<bool>) -> bool {
    let Some((first, rest)) = wanted.split_first() else {
        return true;
    };
    for (index, candidate) in available.iter().enumerate() {
        if !used[index] && pattern_matches(first, candidate) {
            used[index] = true;
            if assign(rest, available, used) {
                return true;
            }
            used[index] = false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(xml: &str) -> Element {
        parse_fragment(xml).unwrap().remove(0)
    }

    #[test]
    fn patterns_match_structurally() {
        let stanza = one(
            "<message from='a@x.test/r' to='b@y.test' type='chat' id='1'>\
             <body>hi</body><thread>t1</thread><x xmlns='urn:x'><y/></x></message>",
        );
        for pattern in [
            "<message type='chat'/>",
            "<message from='*'><body>hi</body></message>",
            "<message><x xmlns='urn:x'><y/></x><thread>t1</thread></message>",
            "<message>  </message>",
        ] {
            assert!(pattern_matches(&one(pattern), &stanza), "{pattern}");
        }
        for pattern in [
            "<message type='normal'/>",
            "<message><body>hello</body></message>",
            "<message><x xmlns='urn:other'/></message>",
            "<message><body>hi</body><body>hi</body></message>",
            "<presence/>",
            "<message lang='*'/>",
        ] {
            assert!(!pattern_matches(&one(pattern), &stanza), "{pattern}");
        }
    }

    #[test]
    fn stanzas_decode_to_events_and_back() {
        let alice = parse_address("alice@x.test/r").unwrap();
        let out = OutMessage {
            to: alice.clone(),
            kind: MessageKind::Headline,
            id: None,
            subject: Some("s".into()),
            body: Some("b".into()),
            thread: None,
        };
        assert_eq!(
            message(&out, "m1".into()).to_xml(ns::CLIENT),
            "<message to='alice@x.test/r' type='headline' id='m1'><subject>s</subject>\
             <body>b</body></message>"
        );
        assert_eq!(
            subscription(SubscriptionAction::Deny, &alice).to_xml(ns::CLIENT),
            "<presence to='alice@x.test' type='unsubscribed'/>"
        );
        let presence = decode(one(
            "<presence from='alice@x.test/r'><show>dnd</show><priority>-1</priority></presence>",
        ));
        assert_eq!(
            presence.event,
            Event::Presence {
                from: Some(alice),
                available: true,
                show: Some(Show::Dnd),
                status: None,
                priority: -1,
            }
        );
        assert_eq!(
            decode(one("<message from='a@x.test'/>")).event,
            Event::Message {
                from: parse_address("a@x.test").ok(),
                kind: MessageKind::Normal,
                body: None,
                subject: None,
                thread: None,
            }
        );
        assert_eq!(
            decode(one("<iq type='result' id='1'/>")).event,
            Event::Other,
            "answers are not events of the vocabulary"
        );
        let item = one(
            "<item xmlns='jabber:iq:roster' jid='b@y.test' subscription='to' ask='subscribe'/>",
        );
        assert_eq!(item_state(&item), Some((SubscriptionState::To, true)));
    }
}
