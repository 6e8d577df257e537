//! The SIP/SIMPLE profile's mapping of the neutral vocabulary (`protocols/sip/PROFILE.md`):
//! addresses are addresses-of-record `sip:<user>@<domain>` (RFC 3261 §10.2.1), presence is a
//! PIDF document (RFC 3863) with an RPID activity (RFC 4480), messages are MESSAGE requests
//! with a `text/plain` body and a `Subject` header (RFC 3428, RFC 3261 §20.36), and a final
//! response other than 2xx is an error event of PROFILE.md §7's class.

use imfed_model::{
    Address, Availability, ErrorClass, MessageKind, Show, StanzaKind, SubscriptionAction,
};
use imfed_sip::pidf::{self, Activity, Basic, Person, Tuple};
use imfed_sip::{Request, Response, Uri};

use crate::driver::DriverError;
use crate::driver::event::{Event, OutMessage, OutPresence, SipMessage, SipStart};

/// Parses an address: an address-of-record (`sip:bob@sut.test`; `sip:sut.test` names a
/// server) or `user@domain` (optionally `/endpoint`, the neutral written form).
///
/// # Errors
/// Why `text` is neither.
pub fn parse_address(text: &str) -> Result<Address, String> {
    if text.len() >= 4 && text[..4].eq_ignore_ascii_case("sip:") {
        let uri = Uri::parse(text).map_err(|error| format!("{text:?}: {error}"))?;
        if uri.port.is_some() || !uri.params.is_empty() || !uri.headers.is_empty() {
            return Err(format!(
                "{text:?}: an address-of-record carries no port, parameters or headers \
                 (PROFILE.md §1)"
            ));
        }
        return Ok(address_of(&uri));
    }
    if text.len() >= 5 && text[..5].eq_ignore_ascii_case("sips:") {
        return Err(format!(
            "{text:?}: sips: is not used by this profile (PROFILE.md §1)"
        ));
    }
    let (user, rest) = text
        .split_once('@')
        .ok_or_else(|| format!("{text:?} is neither a sip: address nor user@domain"))?;
    let (domain, endpoint) = match rest.split_once('/') {
        Some((domain, endpoint)) if !endpoint.is_empty() => (domain, Some(endpoint)),
        Some(_) => return Err(format!("{text:?}: empty endpoint")),
        None => (rest, None),
    };
    // The URI parser is the judge of what a user part and a host may be.
    let uri = Uri::parse(&format!("sip:{user}@{domain}"))
        .map_err(|error| format!("{text:?}: {error}"))?;
    if uri.port.is_some() || !uri.params.is_empty() || uri.user.as_deref() != Some(user) {
        return Err(format!("{text:?} is not user@domain"));
    }
    Ok(Address {
        endpoint: endpoint.map(str::to_string),
        ..address_of(&uri)
    })
}

/// An address as this profile writes it: the address-of-record (`sip:<domain>` for a
/// server). The endpoint (a registered contact) is not part of it: requests go to the AOR
/// and a proxy forks them (PROFILE.md §1).
pub fn render(address: &Address) -> String {
    aor_of(address).to_string()
}

/// The address-of-record of a principal, or the URI of a server.
pub fn aor_of(address: &Address) -> Uri {
    Uri::new(address.user.as_deref(), &address.domain)
}

/// The principal (or server) a URI names, without parameters; the host is case-insensitive
/// (RFC 3261 §19.1.4), the user part is kept as written.
pub fn address_of(uri: &Uri) -> Address {
    Address {
        user: uri.user.clone(),
        domain: uri.host.to_ascii_lowercase(),
        endpoint: None,
    }
}

/// The PIDF document for published presence (PROFILE.md §3): one tuple, `open` or
/// `closed`, the status text as its note, and an RPID person for `away` and `dnd`.
///
/// # Errors
/// [`DriverError::Unsupported`] for what the profile cannot say: directed presence,
/// `chat` and `xa`, a priority other than 0.
pub fn pidf_of(
    out: &OutPresence,
    entity: &Uri,
    tuple: &str,
) -> Result<pidf::Presence, DriverError> {
    if out.to.is_some() {
        return Err(DriverError::Unsupported(
            "SIP has no directed presence: a PUBLISH goes to the presentity's presence agent, \
             which notifies every watcher (RFC 3903 §3, RFC 3856 §6)"
                .into(),
        ));
    }
    if out.priority.is_some_and(|priority| priority != 0) {
        return Err(DriverError::Unsupported(
            "SIP presence has no priority that survives aggregation: the tuple's <contact \
             priority> is a contact preference (RFC 3863 §4.1.5, PROFILE.md §3)"
                .into(),
        ));
    }
    let activity = match out.show {
        None => None,
        Some(Show::Away) => Some(Activity::Away),
        Some(Show::Dnd) => Some(Activity::Busy),
        Some(show) => {
            return Err(DriverError::Unsupported(format!(
                "RPID has no activity for show '{}' (RFC 4480 §3.2; RFC 7248 §7.4 maps xa to \
                 away and chat to none, PROFILE.md §3)",
                show.as_str()
            )));
        }
    };
    let open = out.availability == Availability::Available;
    Ok(pidf::Presence {
        entity: entity.to_string(),
        tuples: vec![Tuple {
            id: tuple.to_string(),
            basic: Some(if open { Basic::Open } else { Basic::Closed }),
            contact: None,
            note: out.status.clone(),
            timestamp: None,
        }],
        persons: activity
            .map(|activity| Person {
                id: format!("p-{tuple}"),
                activities: vec![activity],
                note: None,
            })
            .into_iter()
            .collect(),
        notes: Vec::new(),
    })
}

/// The presence event a NOTIFY carries (PROFILE.md §4): any `open` tuple is available, with
/// its note and the RPID activity (`away` → away, `busy` → dnd); otherwise unavailable, with
/// the note of the first tuple that has one. `None`: no body, which is unavailable too.
pub fn presence_event(from: Option<Address>, presence: Option<&pidf::Presence>) -> Event {
    let Some(presence) = presence else {
        return Event::Presence {
            from,
            available: false,
            show: None,
            status: None,
            priority: 0,
        };
    };
    let open = presence
        .tuples
        .iter()
        .find(|tuple| tuple.basic == Some(Basic::Open));
    let status = open
        .and_then(|tuple| tuple.note.clone())
        .or_else(|| {
            open.is_none()
                .then(|| presence.tuples.iter().find_map(|tuple| tuple.note.clone()))
                .flatten()
        })
        .or_else(|| {
            presence
                .persons
                .iter()
                .find_map(|person| person.note.clone())
        })
        .or_else(|| presence.notes.first().cloned());
    let show = open.and_then(|_| {
        presence
            .persons
            .iter()
            .flat_map(|person| &person.activities)
            .find_map(|activity| match activity {
                Activity::Away => Some(Show::Away),
                Activity::Busy => Some(Show::Dnd),
                Activity::Other(_) => None,
            })
    });
    Event::Presence {
        from,
        available: open.is_some(),
        show,
        status,
        priority: 0,
    }
}

/// The neutral class of a final response that is not a success (PROFILE.md §7).
pub fn error_class(status: u16) -> ErrorClass {
    match status {
        404 => ErrorClass::NotFound,
        480 => ErrorClass::Undelivered,
        604 => ErrorClass::NoSuchDomain,
        408 | 503 => ErrorClass::Unreachable,
        401 | 403 | 407 => ErrorClass::Refused,
        400 | 413 | 415 | 416 | 420 | 423 => ErrorClass::BadRequest,
        405 | 489 | 501 => ErrorClass::NotSupported,
        _ => ErrorClass::Other,
    }
}

/// Whether a final status reports an error (3xx to 6xx).
pub fn is_error(status: u16) -> bool {
    status >= 300
}

/// The error event for a final response `status` from `from` (PROFILE.md §7: the condition
/// is the status code as text).
pub fn error_event(from: Option<Address>, about: Option<StanzaKind>, status: u16) -> Event {
    Event::Error {
        from,
        about,
        class: error_class(status),
        condition: Some(status.to_string()),
    }
}

/// Checks that a MESSAGE can carry `out` (PROFILE.md §6).
///
/// # Errors
/// [`DriverError::Unsupported`] for another kind than chat, a thread, or an
/// endpoint-addressed recipient.
pub fn check_message(out: &OutMessage) -> Result<(), DriverError> {
    if out.kind != MessageKind::Chat {
        return Err(DriverError::Unsupported(format!(
            "SIP has one kind of instant message: MESSAGE has no type, so no '{}' \
             (RFC 3428 §2, PROFILE.md §6)",
            out.kind.as_str()
        )));
    }
    if out.thread.is_some() {
        return Err(DriverError::Unsupported(
            "SIP messages have no thread: MESSAGE requests establish no dialog and carry no \
             conversation id the sender chooses (RFC 3428 §2, PROFILE.md §6)"
                .into(),
        ));
    }
    if out.to.endpoint.is_some() {
        return Err(DriverError::Unsupported(
            "a MESSAGE goes to the recipient's address-of-record and the proxy forks it; one \
             contact cannot be addressed without GRUUs (RFC 5627, PROFILE.md §1)"
                .into(),
        ));
    }
    Ok(())
}

/// The subscription actions SIP cannot express (PROFILE.md §4).
///
/// # Errors
/// [`DriverError::Unsupported`] for approve, deny and cancel.
pub fn check_action(action: SubscriptionAction) -> Result<(), DriverError> {
    match action {
        SubscriptionAction::Subscribe | SubscriptionAction::Unsubscribe => Ok(()),
        _ => Err(DriverError::Unsupported(
            "the SIP profile has no subscription handshake: the presence agent accepts every \
             SUBSCRIBE and asks no one (RFC 3856 §6.6 leaves authorization to policy; \
             PROFILE.md §4)"
                .into(),
        )),
    }
}

/// The event a MESSAGE carries (RFC 3428): a chat message from the `From` AOR, with its
/// `Subject`.
///
/// # Errors
/// Why the body cannot be read as text (a `415` answers a type other than `text/plain`, a
/// `400` a body that is not UTF-8).
pub fn message_event(request: &Request) -> Result<Event, (u16, String)> {
    let plain = request.content_type().is_none_or(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/plain"))
    });
    if !plain {
        return Err((415, "Unsupported Media Type".into()));
    }
    let body = String::from_utf8(request.body.clone())
        .map_err(|_| (400, "Body Is Not UTF-8".to_string()))?;
    Ok(Event::Message {
        from: request.from().ok().map(|from| address_of(&from.uri)),
        kind: MessageKind::Chat,
        body: Some(body),
        subject: request.headers.get("Subject").map(str::to_string),
        thread: None,
    })
}

fn header_pairs(headers: &imfed_sip::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
        .collect()
}

/// The wire form of a request.
pub fn request_form(request: &Request) -> SipMessage {
    SipMessage {
        start: SipStart::Request {
            method: request.method.to_string(),
            uri: request.uri.to_string(),
        },
        headers: header_pairs(&request.headers),
        body: String::from_utf8_lossy(&request.body).into_owned(),
    }
}

/// The wire form of a response.
pub fn response_form(response: &Response) -> SipMessage {
    SipMessage {
        start: SipStart::Response {
            status: response.status,
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
        assert_eq!(parse_address("sip:bob@SUT.test"), Ok(bob()));
        assert_eq!(parse_address("bob@sut.test"), Ok(bob()));
        assert_eq!(
            parse_address("bob@sut.test/phone")
                .unwrap()
                .endpoint
                .as_deref(),
            Some("phone")
        );
        assert!(parse_address("sip:bob@sut.test:5060").is_err());
        assert!(parse_address("sip:bob@sut.test;transport=udp").is_err());
        assert!(parse_address("sips:bob@sut.test").is_err());
        assert!(parse_address("sut.test").is_err());
        assert!(parse_address("bob@sut.test/").is_err());
        assert_eq!(render(&bob()), "sip:bob@sut.test");
        let endpoint = Address {
            endpoint: Some("127.0.0.1:5070".into()),
            ..bob()
        };
        assert_eq!(render(&endpoint), "sip:bob@sut.test");
        let server = Address {
            user: None,
            domain: "sut.test".into(),
            endpoint: None,
        };
        assert_eq!(render(&server), "sip:sut.test");
        assert_eq!(parse_address("sip:sut.test"), Ok(server));
    }

    #[test]
    fn published_presence_round_trips_through_pidf() {
        let entity = aor_of(&bob());
        let cases = [
            (Availability::Available, None, None),
            (Availability::Available, Some(Show::Away), Some("fishing")),
            (Availability::Available, Some(Show::Dnd), None),
            (Availability::Unavailable, None, Some("gone home")),
        ];
        for (availability, show, status) in cases {
            let mut out = presence(availability, show);
            out.status = status.map(str::to_string);
            let document = pidf_of(&out, &entity, "t1").unwrap();
            let parsed = pidf::Presence::parse(document.to_xml().as_bytes()).unwrap();
            assert_eq!(parsed.entity, "sip:bob@sut.test");
            assert_eq!(
                presence_event(Some(bob()), Some(&parsed)),
                Event::Presence {
                    from: Some(bob()),
                    available: availability == Availability::Available,
                    show,
                    status: status.map(str::to_string),
                    priority: 0,
                },
                "{availability:?} {show:?} {status:?}"
            );
        }
        for show in [Show::Chat, Show::Xa] {
            assert!(matches!(
                pidf_of(&presence(Availability::Available, Some(show)), &entity, "t"),
                Err(DriverError::Unsupported(_))
            ));
        }
        let mut priority = presence(Availability::Available, None);
        priority.priority = Some(0);
        assert!(pidf_of(&priority, &entity, "t").is_ok());
        priority.priority = Some(3);
        assert!(pidf_of(&priority, &entity, "t").is_err());
        let mut directed = presence(Availability::Available, None);
        directed.to = Some(bob());
        assert!(pidf_of(&directed, &entity, "t").is_err());
    }

    #[test]
    fn received_presence_without_tuples_or_body_is_unavailable() {
        let empty = pidf::Presence {
            entity: "sip:bob@sut.test".into(),
            tuples: vec![],
            persons: vec![],
            notes: vec![],
        };
        for event in [
            presence_event(Some(bob()), Some(&empty)),
            presence_event(Some(bob()), None),
        ] {
            assert!(
                matches!(
                    event,
                    Event::Presence {
                        available: false,
                        ..
                    }
                ),
                "{event:?}"
            );
        }
        // An open tuple among closed ones is available, with the open tuple's note.
        let mixed = pidf::Presence {
            tuples: vec![
                Tuple {
                    id: "a".into(),
                    basic: Some(Basic::Closed),
                    contact: None,
                    note: Some("old".into()),
                    timestamp: None,
                },
                Tuple {
                    id: "b".into(),
                    basic: Some(Basic::Open),
                    contact: None,
                    note: Some("here".into()),
                    timestamp: None,
                },
            ],
            ..empty
        };
        assert_eq!(
            presence_event(None, Some(&mixed)),
            Event::Presence {
                from: None,
                available: true,
                show: None,
                status: Some("here".into()),
                priority: 0,
            }
        );
    }

    #[test]
    fn error_classes_follow_the_profile_table() {
        for (status, class) in [
            (404, ErrorClass::NotFound),
            (480, ErrorClass::Undelivered),
            (604, ErrorClass::NoSuchDomain),
            (408, ErrorClass::Unreachable),
            (503, ErrorClass::Unreachable),
            (401, ErrorClass::Refused),
            (403, ErrorClass::Refused),
            (407, ErrorClass::Refused),
            (400, ErrorClass::BadRequest),
            (413, ErrorClass::BadRequest),
            (415, ErrorClass::BadRequest),
            (416, ErrorClass::BadRequest),
            (420, ErrorClass::BadRequest),
            (423, ErrorClass::BadRequest),
            (405, ErrorClass::NotSupported),
            (489, ErrorClass::NotSupported),
            (501, ErrorClass::NotSupported),
            (482, ErrorClass::Other),
            (483, ErrorClass::Other),
            (513, ErrorClass::Other),
            (500, ErrorClass::Other),
        ] {
            assert_eq!(error_class(status), class, "{status}");
        }
        assert_eq!(
            error_event(Some(bob()), Some(StanzaKind::Message), 480),
            Event::Error {
                from: Some(bob()),
                about: Some(StanzaKind::Message),
                class: ErrorClass::Undelivered,
                condition: Some("480".into()),
            }
        );
        assert!(is_error(302) && is_error(480) && !is_error(202));
    }

    #[test]
    fn messages() {
        let mut out = OutMessage {
            to: bob(),
            kind: MessageKind::Chat,
            id: None,
            subject: Some("s".into()),
            body: Some("hé".into()),
            thread: None,
        };
        assert!(check_message(&out).is_ok());
        out.kind = MessageKind::Headline;
        assert!(check_message(&out).is_err());
        out.kind = MessageKind::Chat;
        out.thread = Some("t".into());
        assert!(check_message(&out).is_err());
        out.thread = None;
        out.to.endpoint = Some("x".into());
        assert!(check_message(&out).is_err());
        assert!(check_action(SubscriptionAction::Approve).is_err());
        assert!(check_action(SubscriptionAction::Unsubscribe).is_ok());

        let mut request = Request::new(imfed_sip::Method::Message, aor_of(&bob()));
        request.headers.push("From", "<sip:alice@ref.test>;tag=a1");
        request.headers.push("Subject", "Grüße");
        request
            .headers
            .push("Content-Type", "text/plain;charset=UTF-8");
        request.body = "Ça va?".as_bytes().to_vec();
        assert_eq!(
            message_event(&request),
            Ok(Event::Message {
                from: Some(parse_address("alice@ref.test").unwrap()),
                kind: MessageKind::Chat,
                body: Some("Ça va?".into()),
                subject: Some("Grüße".into()),
                thread: None,
            })
        );
        request
            .headers
            .set("Content-Type", "application/im-iscomposing+xml");
        assert_eq!(message_event(&request).unwrap_err().0, 415);
        request.headers.set("Content-Type", "text/plain");
        request.body = vec![0xff, 0xfe];
        assert_eq!(message_event(&request).unwrap_err().0, 400);
    }
}
