//! The RVP profile's mapping of the neutral vocabulary (PROFILE.md; RVP §4.1.2, §5.5, §5.6,
//! §9, §10): addresses are logical URLs `http://<domain>/instmsg/aliases/<user>`, presence
//! is the `r:state` property, messages are NOTIFYs carrying a MIME `text/plain` payload,
//! and an error status answering a request is an error event of PROFILE.md §5's class.

use http::StatusCode;
use imfed_model::{
    Address, Availability, ErrorClass, MessageKind, Show, StanzaKind, SubscriptionAction,
};
use imfed_rvp::mime::InstantMessage;
use imfed_rvp::xml::{Notification, Presence, Property, StateValue};
use imfed_rvp::{NodeUrl, Payload, Request, Response};

use crate::driver::DriverError;
use crate::driver::event::{Event, OutMessage, OutPresence, RvpMessage, RvpStart};

/// Parses an address: a logical URL (`http://sut.test/instmsg/aliases/bob`) or
/// `user@domain` (optionally `/endpoint`, the neutral written form).
///
/// # Errors
/// Why `text` is neither.
pub fn parse_address(text: &str) -> Result<Address, String> {
    if text.len() >= 7 && text[..7].eq_ignore_ascii_case("http://") {
        let url = NodeUrl::parse(text).map_err(|error| format!("{text:?}: {error}"))?;
        if url.port().is_some() {
            return Err(format!(
                "{text:?}: a logical URL carries no port (PROFILE.md §1)"
            ));
        }
        return address_of(&url)
            .ok_or_else(|| format!("{text:?} is not a principal URL (/instmsg/aliases/<user>)"));
    }
    let (user, rest) = text
        .split_once('@')
        .ok_or_else(|| format!("{text:?} is neither a logical URL nor user@domain"))?;
    let (domain, endpoint) = match rest.split_once('/') {
        Some((domain, endpoint)) if !endpoint.is_empty() => (domain, Some(endpoint)),
        Some(_) => return Err(format!("{text:?}: empty endpoint")),
        None => (rest, None),
    };
    let url =
        NodeUrl::principal(domain, None, user).map_err(|error| format!("{text:?}: {error}"))?;
    Ok(Address {
        user: url.alias().map(str::to_string),
        domain: url.host().to_string(),
        endpoint: endpoint.map(str::to_string),
    })
}

/// An address as this profile writes it: the logical URL (a server: its bare domain name,
/// as in `RVP-From-Principal`, §5.6.1). The endpoint is not part of it.
pub fn render(address: &Address) -> String {
    match url_of(address) {
        Ok(url) => url.to_string(),
        Err(_) => address.domain.clone(),
    }
}

/// The logical URL of a principal.
///
/// # Errors
/// [`DriverError::Unsupported`] for a server address or one that makes no URL.
pub fn url_of(address: &Address) -> Result<NodeUrl, DriverError> {
    let user = address.user.as_deref().ok_or_else(|| {
        DriverError::Unsupported(format!(
            "{address} names a server: RVP addresses principals by logical URL (§4.1.2)"
        ))
    })?;
    NodeUrl::principal(&address.domain, None, user)
        .map_err(|error| DriverError::Unsupported(format!("{address}: {error}")))
}

/// The principal a node URL names, if it is a principal URL.
pub fn address_of(url: &NodeUrl) -> Option<Address> {
    Some(Address {
        user: Some(url.alias()?.to_string()),
        domain: url.host().to_string(),
        endpoint: None,
    })
}

/// The principal of a URL written in a body or header.
pub fn address_of_text(text: &str) -> Option<Address> {
    address_of(&NodeUrl::parse(text).ok()?)
}

/// The `r:state` value for published presence (PROFILE.md §2).
///
/// # Errors
/// [`DriverError::Unsupported`] for what RVP cannot say: directed presence, `chat` and
/// `xa`, status text, a priority other than 0.
pub fn state_of(out: &OutPresence) -> Result<Presence, DriverError> {
    if out.to.is_some() {
        return Err(DriverError::Unsupported(
            "RVP has no directed presence: r:state is a property of the principal's node, \
             readable by whoever the ACL allows (§5.5, §5.7)"
                .into(),
        ));
    }
    if out.status.is_some() {
        return Err(DriverError::Unsupported(
            "RVP presence has no status text: r:state is one of a fixed set of empty \
             elements (§9.1.5-§9.1.11)"
                .into(),
        ));
    }
    if out.priority.is_some_and(|priority| priority != 0) {
        return Err(DriverError::Unsupported(
            "RVP has no presence priority: each endpoint's view is leased apart (§5.5)".into(),
        ));
    }
    Ok(match (out.availability, out.show) {
        (Availability::Unavailable, _) => Presence::Offline,
        (Availability::Available, None) => Presence::Online,
        (Availability::Available, Some(Show::Away)) => Presence::Away,
        (Availability::Available, Some(Show::Dnd)) => Presence::Busy,
        (Availability::Available, Some(show)) => {
            return Err(DriverError::Unsupported(format!(
                "RVP has no state for show '{}': its values are online, busy, away, \
                 back-soon, on-phone, at-lunch, offline (§9.1.5-§9.1.11)",
                show.as_str()
            )));
        }
    })
}

/// The presence event for a received `r:state` (PROFILE.md §2): online → available;
/// away, idle, back-soon, at-lunch, on-phone → away; busy → dnd; offline and invisible →
/// unavailable; a state this profile does not know → available without detail (state
/// values are extensible, notes §1.7).
pub fn presence_event(from: Option<Address>, presence: &Presence) -> Event {
    let (available, show) = match presence {
        Presence::Online => (true, None),
        Presence::Away
        | Presence::Idle
        | Presence::BackSoon
        | Presence::AtLunch
        | Presence::OnPhone => (true, Some(Show::Away)),
        Presence::Busy => (true, Some(Show::Dnd)),
        Presence::Offline | Presence::Invisible => (false, None),
        Presence::Other(_) => (true, None),
    };
    Event::Presence {
        from,
        available,
        show,
        status: None,
        priority: 0,
    }
}

/// The presence in a list of properties, if one is there.
pub fn state_in(props: &[Property]) -> Option<&Presence> {
    props.iter().find_map(|prop| match prop {
        Property::State(state) => Some(match &state.value {
            StateValue::Plain(presence) => presence,
            StateValue::Leased(leased) => &leased.value,
        }),
        _ => None,
    })
}

/// The neutral class of an error status (PROFILE.md §5).
pub fn error_class(status: u16) -> ErrorClass {
    match status {
        404 => ErrorClass::NotFound,
        412 => ErrorClass::Undelivered,
        401 | 403 => ErrorClass::Refused,
        400 => ErrorClass::BadRequest,
        405 | 501 => ErrorClass::NotSupported,
        502 => ErrorClass::NoSuchDomain,
        504 => ErrorClass::Unreachable,
        _ => ErrorClass::Other,
    }
}

/// Whether a status reports an error (anything but 1xx, 2xx).
pub fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error() || status.is_redirection()
}

/// The error event for an error answer from `target` (PROFILE.md §5: the condition is the
/// status code as text).
pub fn error_event(from: Option<Address>, about: Option<StanzaKind>, status: u16) -> Event {
    Event::Error {
        from,
        about,
        class: error_class(status),
        condition: Some(status.to_string()),
    }
}

/// Checks that RVP can carry `out` (PROFILE.md §4).
///
/// # Errors
/// [`DriverError::Unsupported`] for another kind than chat (or unspecified), a subject, a
/// thread, or an endpoint-addressed recipient.
pub fn check_message(out: &OutMessage) -> Result<(), DriverError> {
    if !matches!(out.kind, MessageKind::Chat | MessageKind::Normal) {
        return Err(DriverError::Unsupported(format!(
            "RVP has one message kind, a conversation message (chat); it has no '{}' (§5.6)",
            out.kind.as_str()
        )));
    }
    if out.subject.is_some() {
        return Err(DriverError::Unsupported(
            "RVP messages have no subject: the payload is text/plain (§10.1)".into(),
        ));
    }
    if out.thread.is_some() {
        return Err(DriverError::Unsupported(
            "RVP messages have no thread other than the MIME Session-Id GUID, which the \
             sender picks (§10.1)"
                .into(),
        ));
    }
    if out.to.endpoint.is_some() {
        return Err(DriverError::Unsupported(
            "RVP messages go to a principal's logical URL; the home server picks the \
             endpoint (§5.6 DeepOr)"
                .into(),
        ));
    }
    Ok(())
}

/// The MIME payload of a message (§10.1).
pub fn message_payload(out: &OutMessage, session_id: &str) -> Payload {
    Payload::Text(InstantMessage {
        charset: Some("UTF-8".into()),
        session_id: Some(session_id.to_string()),
        format: None,
        text: out.body.clone().unwrap_or_default(),
    })
}

/// A conversation GUID for `Session-Id` (`{8-4-4-4-12}`, upper-case hex, as Exchange
/// writes them).
pub fn guid() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The event a NOTIFY body carries: a message (§5.6), a property notification (§5.6.1),
/// or anything else as [`Event::Other`].
///
/// # Errors
/// Why the body is not an RVP notification.
pub fn decode_notification(body: &[u8]) -> Result<Event, String> {
    let notification = Notification::parse(body).map_err(|error| error.to_string())?;
    Ok(match notification {
        Notification::Message(message) => {
            let from = address_of_text(&message.from.href);
            match message.payload().map_err(|error| error.to_string())? {
                Payload::Text(text) => Event::Message {
                    from,
                    kind: MessageKind::Chat,
                    body: Some(text.text),
                    subject: None,
                    thread: None,
                },
                // Typing notices, invitations, leave notices.
                Payload::Control(_) | Payload::Other(_) => Event::Other,
            }
        }
        Notification::Property(change) => {
            let from = address_of_text(&change.from.href);
            match state_in(change.properties()) {
                Some(presence) => presence_event(from, presence),
                None => Event::Other,
            }
        }
        Notification::Other(_) => Event::Other,
    })
}

/// The subscription actions RVP cannot express, with the reason (PROFILE.md §3).
///
/// # Errors
/// [`DriverError::Unsupported`] for approve, deny and cancel.
pub fn check_action(action: SubscriptionAction) -> Result<(), DriverError> {
    match action {
        SubscriptionAction::Subscribe | SubscriptionAction::Unsubscribe => Ok(()),
        _ => Err(DriverError::Unsupported(
            "RVP has no subscription handshake: the presentity's ACL grants or refuses a \
             SUBSCRIBE at once (§5.1, §5.7)"
                .into(),
        )),
    }
}

fn header_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The wire form of a request.
pub fn request_form(request: &Request) -> RvpMessage {
    RvpMessage {
        start: RvpStart::Request {
            method: request.method.as_str().to_string(),
            target: request.target.to_string(),
        },
        headers: header_pairs(&request.headers),
        body: String::from_utf8_lossy(&request.body).into_owned(),
    }
}

/// The wire form of a response.
pub fn response_form(response: &Response) -> RvpMessage {
    RvpMessage {
        start: RvpStart::Response {
            status: response.status.as_u16(),
            reason: response.reason.clone(),
        },
        headers: header_pairs(&response.headers),
        body: String::from_utf8_lossy(&response.body).into_owned(),
    }
}

/// A request as text, for the transcript.
pub fn request_text(request: &Request) -> String {
    String::from_utf8_lossy(&request.to_bytes()).into_owned()
}

/// A response as text, for the transcript.
pub fn response_text(response: &Response) -> String {
    String::from_utf8_lossy(&response.to_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use imfed_rvp::xml::{Contact, Message, PropChange, PropNotification, PropertyUpdate, State};

    fn bob() -> Address {
        Address {
            user: Some("bob".into()),
            domain: "sut.test".into(),
            endpoint: None,
        }
    }

    fn presence(availability: Availability, show: Option<Show>) -> OutPresence {
        OutPresence {
            to: None,
            availability,
            show,
            status: None,
            priority: None,
            lease: None,
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("http://SUT.test/instmsg/aliases/Bob"),
            Ok(bob())
        );
        assert_eq!(parse_address("Bob@sut.test"), Ok(bob()));
        assert_eq!(
            parse_address("bob@sut.test/42")
                .unwrap()
                .endpoint
                .as_deref(),
            Some("42")
        );
        assert!(parse_address("http://sut.test:80/instmsg/aliases/bob").is_err());
        assert!(parse_address("http://sut.test/lists/x").is_err());
        assert!(parse_address("sut.test").is_err());
        assert!(parse_address("a b@sut.test").is_err());
        assert_eq!(render(&bob()), "http://sut.test/instmsg/aliases/bob");
        let endpoint = Address {
            endpoint: Some("7".into()),
            ..bob()
        };
        assert_eq!(render(&endpoint), "http://sut.test/instmsg/aliases/bob");
        let server = Address {
            user: None,
            domain: "sut.test".into(),
            endpoint: None,
        };
        assert_eq!(render(&server), "sut.test");
        assert!(matches!(url_of(&server), Err(DriverError::Unsupported(_))));
    }

    #[test]
    fn published_presence() {
        assert_eq!(
            state_of(&presence(Availability::Available, None)).unwrap(),
            Presence::Online
        );
        assert_eq!(
            state_of(&presence(Availability::Available, Some(Show::Away))).unwrap(),
            Presence::Away
        );
        assert_eq!(
            state_of(&presence(Availability::Available, Some(Show::Dnd))).unwrap(),
            Presence::Busy
        );
        assert_eq!(
            state_of(&presence(Availability::Unavailable, None)).unwrap(),
            Presence::Offline
        );
        for show in [Show::Chat, Show::Xa] {
            assert!(matches!(
                state_of(&presence(Availability::Available, Some(show))),
                Err(DriverError::Unsupported(_))
            ));
        }
        let mut with_status = presence(Availability::Available, None);
        with_status.status = Some("hi".into());
        assert!(state_of(&with_status).is_err());
        let mut priority = presence(Availability::Available, None);
        priority.priority = Some(0);
        assert!(state_of(&priority).is_ok());
        priority.priority = Some(5);
        assert!(state_of(&priority).is_err());
        let mut directed = presence(Availability::Available, None);
        directed.to = Some(bob());
        assert!(state_of(&directed).is_err());
    }

    #[test]
    fn received_presence() {
        let event = |p: Presence| match presence_event(Some(bob()), &p) {
            Event::Presence {
                available, show, ..
            } => (available, show),
            other => panic!("{other:?}"),
        };
        assert_eq!(event(Presence::Online), (true, None));
        for away in [
            Presence::Away,
            Presence::Idle,
            Presence::BackSoon,
            Presence::AtLunch,
            Presence::OnPhone,
        ] {
            assert_eq!(event(away), (true, Some(Show::Away)));
        }
        assert_eq!(event(Presence::Busy), (true, Some(Show::Dnd)));
        assert_eq!(event(Presence::Offline), (false, None));
        assert_eq!(event(Presence::Other("gaming".into())), (true, None));
    }

    #[test]
    fn error_classes() {
        for (status, class) in [
            (404, ErrorClass::NotFound),
            (412, ErrorClass::Undelivered),
            (401, ErrorClass::Refused),
            (403, ErrorClass::Refused),
            (400, ErrorClass::BadRequest),
            (405, ErrorClass::NotSupported),
            (501, ErrorClass::NotSupported),
            (502, ErrorClass::NoSuchDomain),
            (504, ErrorClass::Unreachable),
            (508, ErrorClass::Other),
            (500, ErrorClass::Other),
        ] {
            assert_eq!(error_class(status), class, "{status}");
        }
        assert_eq!(
            error_event(Some(bob()), Some(StanzaKind::Message), 412),
            Event::Error {
                from: Some(bob()),
                about: Some(StanzaKind::Message),
                class: ErrorClass::Undelivered,
                condition: Some("412".into()),
            }
        );
    }

    #[test]
    fn messages() {
        let mut out = OutMessage {
            to: bob(),
            kind: MessageKind::Chat,
            id: None,
            subject: None,
            body: Some("hé".into()),
            thread: None,
        };
        assert!(check_message(&out).is_ok());
        let payload = message_payload(&out, "{X}");
        assert!(
            payload
                .to_text()
                .contains("Content-Type: text/plain; charset=UTF-8")
        );
        let alice = NodeUrl::principal("ref.test", None, "alice").unwrap();
        let body = Notification::Message(Message::new(
            Contact::new(&alice, ""),
            vec![Contact::new(&url_of(&bob()).unwrap(), "")],
            &payload,
        ))
        .to_xml();
        assert_eq!(
            decode_notification(&body),
            Ok(Event::Message {
                from: Some(address_of(&alice).unwrap()),
                kind: MessageKind::Chat,
                body: Some("hé".into()),
                subject: None,
                thread: None,
            })
        );
        out.kind = MessageKind::Headline;
        assert!(check_message(&out).is_err());
        out.kind = MessageKind::Normal;
        out.subject = Some("s".into());
        assert!(check_message(&out).is_err());
        out.subject = None;
        out.thread = Some("t".into());
        assert!(check_message(&out).is_err());
        out.thread = None;
        out.to.endpoint = Some("1".into());
        assert!(check_message(&out).is_err());
        let guid = guid();
        assert_eq!(guid.len(), 38);
        assert!(guid.starts_with('{') && guid.ends_with('}'));
    }

    #[test]
    fn property_notifications() {
        let alice = NodeUrl::principal("ref.test", None, "alice").unwrap();
        let body = Notification::Property(PropNotification {
            from: Contact::new(&alice, ""),
            to: Contact::new(&url_of(&bob()).unwrap(), ""),
            change: PropChange::Update(PropertyUpdate::set(vec![Property::State(State::plain(
                Presence::Busy,
            ))])),
        })
        .to_xml();
        assert_eq!(
            decode_notification(&body),
            Ok(Event::Presence {
                from: Some(address_of(&alice).unwrap()),
                available: true,
                show: Some(Show::Dnd),
                status: None,
                priority: 0,
            })
        );
        assert!(decode_notification(b"<x/>").is_err());
        assert!(decode_notification(b"not xml").is_err());
        assert!(check_action(SubscriptionAction::Approve).is_err());
        assert!(check_action(SubscriptionAction::Unsubscribe).is_ok());
    }
}
