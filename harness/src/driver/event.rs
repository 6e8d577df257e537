//! What actors send and receive, in the protocol-neutral vocabulary of `imfed_model`: the
//! runner builds [`OutMessage`] and [`OutPresence`], and compiles expectations to
//! [`Matcher`]s over the [`Event`]s a driver decodes from its wire. Only [`Pattern`] (the
//! `expect_xml` escape hatch) looks at a protocol's own form.

use imfed_model::{
    Address, Availability, ErrorClass, MessageKind, Show, StanzaKind, SubscriptionSignal,
};
use imfed_xmpp::Element;

/// Something an actor received, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An instant message.
    Message {
        /// The sender.
        from: Option<Address>,
        /// Its kind (a missing type counts as normal).
        kind: MessageKind,
        /// Its body.
        body: Option<String>,
        /// Its subject.
        subject: Option<String>,
        /// Its conversation thread.
        thread: Option<String>,
    },
    /// Available or unavailable presence.
    Presence {
        /// The presentity.
        from: Option<Address>,
        /// Whether available.
        available: bool,
        /// The availability detail.
        show: Option<Show>,
        /// The status text.
        status: Option<String>,
        /// The priority (0 when absent).
        priority: i8,
    },
    /// A subscription signal.
    Signal {
        /// Who sent it.
        from: Option<Address>,
        /// Which.
        signal: SubscriptionSignal,
    },
    /// An error report about something the actor sent.
    Error {
        /// Who reports it.
        from: Option<Address>,
        /// What it is about.
        about: Option<StanzaKind>,
        /// Its class.
        class: ErrorClass,
        /// The profile's name of the error condition (RFC 6120 §8.3.3 for XMPP).
        condition: Option<String>,
    },
    /// Anything else (answers to requests, roster changes, ...).
    Other,
}

/// A protocol's own form of what was received, for the escape-hatch patterns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wire {
    /// An XMPP stanza.
    Xmpp(Element),
    /// An RVP (HTTP/1.1) message: a NOTIFY the home server sent to the callback, or the
    /// answer to a request the actor sent.
    Rvp(RvpMessage),
    /// A SIP message: a request the home server sent to the user agent (NOTIFY, MESSAGE), or
    /// the final response to a request the actor sent.
    Sip(SipMessage),
}

impl Wire {
    /// Whether this is a successful answer to a request the actor sent (not something that
    /// arrived by itself).
    pub fn is_success_answer(&self) -> bool {
        match self {
            Wire::Xmpp(_) => false,
            Wire::Rvp(message) => message.is_success_answer(),
            Wire::Sip(message) => message.is_success_answer(),
        }
    }
}

/// The start line of a SIP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipStart {
    /// A request (`NOTIFY sip:bob@127.0.0.1:5070;transport=udp`).
    Request {
        /// The method.
        method: String,
        /// The Request-URI as written.
        uri: String,
    },
    /// A response (`480 Temporarily Unavailable`).
    Response {
        /// The status code.
        status: u16,
        /// The reason phrase as sent.
        reason: String,
    },
}

/// A SIP message as it was carried: start line, headers in order, body as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipMessage {
    /// The request or status line.
    pub start: SipStart,
    /// Header fields in order (names lower-case as written, values as written).
    pub headers: Vec<(String, String)>,
    /// The body (non-UTF-8 bytes replaced).
    pub body: String,
}

/// What a [`Pattern::Sip`] asks of a SIP message's start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipWanted {
    /// A response with this status, its reason phrase containing the text if one is given.
    Response {
        /// The status code.
        status: u16,
        /// A text the reason phrase must contain.
        reason: Option<String>,
    },
    /// A request of this method (compared without case).
    Request {
        /// The method.
        method: String,
    },
}

impl SipMessage {
    /// Whether this message matches a [`Pattern::Sip`].
    fn matches(&self, wanted: &SipWanted, headers: &[(String, String)]) -> bool {
        let start = match (wanted, &self.start) {
            (
                SipWanted::Response { status, reason },
                SipStart::Response {
                    status: actual,
                    reason: phrase,
                },
            ) => actual == status && reason.as_deref().is_none_or(|text| phrase.contains(text)),
            (SipWanted::Request { method }, SipStart::Request { method: actual, .. }) => {
                actual.eq_ignore_ascii_case(method)
            }
            _ => false,
        };
        start
            && headers.iter().all(|(name, text)| {
                self.headers.iter().any(|(actual, value)| {
                    imfed_sip::headers::same_name(actual, name) && value.contains(text.as_str())
                })
            })
    }

    /// Whether this is a 2xx response to a request the actor sent.
    pub fn is_success_answer(&self) -> bool {
        matches!(self.start, SipStart::Response { status, .. } if (200..300).contains(&status))
    }
}

/// The start line of an RVP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RvpStart {
    /// A request (`NOTIFY http://sut.test/instmsg/aliases/bob`).
    Request {
        /// The method.
        method: String,
        /// The request target as written.
        target: String,
    },
    /// A response (`412 Precondition Failed`).
    Response {
        /// The status code.
        status: u16,
        /// The reason phrase as sent.
        reason: String,
    },
}

/// An RVP message as it was carried: start line, headers in order, body as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RvpMessage {
    /// The request or status line.
    pub start: RvpStart,
    /// Header fields in order (names lower-case, values lossily decoded).
    pub headers: Vec<(String, String)>,
    /// The body (non-UTF-8 bytes replaced).
    pub body: String,
}

/// One received thing: decoded, and as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    /// The decoded event.
    pub event: Event,
    /// As the protocol carried it.
    pub wire: Wire,
    /// Its text, for reports.
    pub text: String,
}

/// A profile's pattern over its own form (`expect_xml`).
#[derive(Clone, Debug)]
pub enum Pattern {
    /// An XML pattern over an XMPP stanza (see `xmpp::pattern_matches`).
    Xml(Element),
    /// An HTTP answer (RVP's `expect_http`): its status, headers whose values contain
    /// texts, and texts its body contains.
    Http {
        /// The status code.
        status: u16,
        /// Header names (lower-case) and a text each value must contain (`""`: present).
        headers: Vec<(String, String)>,
        /// Texts the body must contain.
        body_contains: Vec<String>,
    },
    /// A SIP message (the SIP profile's `expect_sip`): a response of a status (a text its
    /// reason phrase contains) or a request of a method, and headers whose values contain
    /// texts.
    Sip {
        /// The start line wanted.
        wanted: SipWanted,
        /// Header names (compact forms count as their full names) and a text each value
        /// must contain (`""`: present).
        headers: Vec<(String, String)>,
    },
}

impl RvpMessage {
    /// Whether this is an answer matching an [`Pattern::Http`].
    fn answers(&self, status: u16, headers: &[(String, String)], body_contains: &[String]) -> bool {
        matches!(self.start, RvpStart::Response { status: actual, .. } if actual == status)
            && headers.iter().all(|(name, text)| {
                self.headers.iter().any(|(actual, value)| {
                    actual.eq_ignore_ascii_case(name) && value.contains(text.as_str())
                })
            })
            && body_contains
                .iter()
                .all(|text| self.body.contains(text.as_str()))
    }

    /// Whether this is a successful answer to a request the actor sent (not something that
    /// arrived by itself).
    pub fn is_success_answer(&self) -> bool {
        matches!(self.start, RvpStart::Response { status, .. } if (200..300).contains(&status))
    }
}

/// A compiled expectation over received events.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// A message (never an error report).
    Message {
        /// Sender.
        from: Option<Address>,
        /// Kind.
        kind: Option<MessageKind>,
        /// Exact body.
        body: Option<String>,
        /// Thread.
        thread: Option<String>,
        /// Subject.
        subject: Option<String>,
    },
    /// Available or unavailable presence.
    Presence {
        /// Sender.
        from: Option<Address>,
        /// `Some(Available)` or `Some(Unavailable)`; `None` for either.
        availability: Option<Availability>,
        /// Availability detail.
        show: Option<Show>,
        /// Status text.
        status: Option<String>,
        /// Priority.
        priority: Option<i8>,
    },
    /// A subscription signal.
    Signal {
        /// Which.
        signal: SubscriptionSignal,
        /// Sender.
        from: Option<Address>,
    },
    /// An error report.
    Error {
        /// Who reports it.
        from: Option<Address>,
        /// What it is about.
        about: Option<StanzaKind>,
        /// Acceptable classes (empty: any).
        classes: Vec<ErrorClass>,
        /// Acceptable conditions in the profile's own terms (empty: any).
        conditions: Vec<String>,
    },
    /// A profile pattern.
    Pattern(Pattern),
    /// Anything at all.
    Any,
}

fn sender(wanted: &Option<Address>, actual: &Option<Address>) -> bool {
    wanted
        .as_ref()
        .is_none_or(|wanted| actual.as_ref().is_some_and(|actual| wanted.matches(actual)))
}

fn same<T: PartialEq>(wanted: &Option<T>, actual: &Option<T>) -> bool {
    wanted.is_none() || wanted == actual
}

fn fmt_opt(label: &str, value: &Option<impl std::fmt::Display>) -> String {
    value
        .as_ref()
        .map(|v| format!(" {label} '{v}'"))
        .unwrap_or_default()
}

impl Matcher {
    /// Whether `received` matches.
    pub fn matches(&self, received: &Received) -> bool {
        match (self, &received.event) {
            // A successful answer to the actor's own request did not arrive by itself.
            (Matcher::Any, _) => !received.wire.is_success_answer(),
            (Matcher::Pattern(Pattern::Sip { wanted, headers }), _) => match &received.wire {
                Wire::Sip(message) => message.matches(wanted, headers),
                Wire::Xmpp(_) | Wire::Rvp(_) => false,
            },
            (
                Matcher::Pattern(Pattern::Http {
                    status,
                    headers,
                    body_contains,
                }),
                _,
            ) => match &received.wire {
                Wire::Rvp(message) => message.answers(*status, headers, body_contains),
                Wire::Xmpp(_) | Wire::Sip(_) => false,
            },
            (Matcher::Pattern(Pattern::Xml(pattern)), _) => match &received.wire {
                Wire::Xmpp(stanza) => super::xmpp::pattern_matches(pattern, stanza),
                // XML patterns are XMPP's; an RVP or SIP message never matches one.
                Wire::Rvp(_) | Wire::Sip(_) => false,
            },
            (
                Matcher::Message {
                    from,
                    kind,
                    body,
                    thread,
                    subject,
                },
                Event::Message {
                    from: actual_from,
                    kind: actual_kind,
                    body: actual_body,
                    subject: actual_subject,
                    thread: actual_thread,
                },
            ) => {
                *actual_kind != MessageKind::Error
                    && sender(from, actual_from)
                    && kind.is_none_or(|k| k == *actual_kind)
                    && same(body, actual_body)
                    && same(thread, actual_thread)
                    && same(subject, actual_subject)
            }
            (
                Matcher::Presence {
                    from,
                    availability,
                    show,
                    status,
                    priority,
                },
                Event::Presence {
                    from: actual_from,
                    available,
                    show: actual_show,
                    status: actual_status,
                    priority: actual_priority,
                },
            ) => {
                sender(from, actual_from)
                    && availability.is_none_or(|a| (a == Availability::Available) == *available)
                    && same(show, actual_show)
                    && same(status, actual_status)
                    && priority.is_none_or(|p| p == *actual_priority)
            }
            (
                Matcher::Signal { signal, from },
                Event::Signal {
                    from: actual_from,
                    signal: actual,
                },
            ) => signal == actual && sender(from, actual_from),
            (
                Matcher::Error {
                    from,
                    about,
                    classes,
                    conditions,
                },
                Event::Error {
                    from: actual_from,
                    about: actual_about,
                    class,
                    condition,
                },
            ) => {
                about.is_none_or(|k| Some(k) == *actual_about)
                    && sender(from, actual_from)
                    && (classes.is_empty() || classes.contains(class))
                    && (conditions.is_empty()
                        || condition.as_ref().is_some_and(|c| conditions.contains(c)))
            }
            _ => false,
        }
    }

    /// What the matcher waits for, for failure messages.
    pub fn describe(&self) -> String {
        let from = |f: &Option<Address>| fmt_opt("from", f);
        match self {
            Matcher::Any => "any stanza".into(),
            Matcher::Pattern(Pattern::Http {
                status,
                headers,
                body_contains,
            }) => {
                let mut text = format!("HTTP answer {status}");
                for (name, value) in headers {
                    if value.is_empty() {
                        text.push_str(&format!(" with header {name}"));
                    } else {
                        text.push_str(&format!(" with {name} containing '{value}'"));
                    }
                }
                for body in body_contains {
                    text.push_str(&format!(" with a body containing '{}'", truncate(body, 60)));
                }
                text
            }
            Matcher::Pattern(Pattern::Sip { wanted, headers }) => {
                let mut text = match wanted {
                    SipWanted::Response { status, reason } => {
                        let mut text = format!("SIP response {status}");
                        if let Some(reason) = reason {
                            text.push_str(&format!(" with a reason containing '{reason}'"));
                        }
                        text
                    }
                    SipWanted::Request { method } => format!("SIP {method} request"),
                };
                for (name, value) in headers {
                    if value.is_empty() {
                        text.push_str(&format!(" with header {name}"));
                    } else {
                        text.push_str(&format!(" with {name} containing '{value}'"));
                    }
                }
                text
            }
            Matcher::Pattern(Pattern::Xml(pattern)) => format!(
                "a stanza matching {}",
                pattern.to_xml(imfed_xmpp::ns::CLIENT)
            ),
            Matcher::Message {
                from: f,
                kind,
                body,
                thread,
                subject,
            } => format!(
                "message{}{}{}{}{}",
                from(f),
                fmt_opt("type", &kind.map(MessageKind::as_str)),
                fmt_opt("body", &body.as_ref().map(|b| truncate(b, 60))),
                fmt_opt("thread", thread),
                fmt_opt("subject", subject)
            ),
            Matcher::Presence {
                from: f,
                availability,
                show,
                status,
                priority,
            } => format!(
                "{} presence{}{}{}{}",
                match availability {
                    Some(Availability::Available) => "available",
                    Some(Availability::Unavailable) => "unavailable",
                    None => "available or unavailable",
                },
                from(f),
                fmt_opt("show", &show.map(Show::as_str)),
                fmt_opt("status", status),
                fmt_opt("priority", priority)
            ),
            Matcher::Signal { signal, from: f } => {
                format!("subscription signal {}{}", signal.as_str(), from(f))
            }
            Matcher::Error {
                from: f,
                about,
                classes,
                conditions,
            } => {
                let classes: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
                format!(
                    "{} error{}{}{}",
                    about.map_or("stanza", StanzaKind::as_str),
                    from(f),
                    if classes.is_empty() {
                        String::new()
                    } else {
                        format!(" of class {}", classes.join(" or "))
                    },
                    if conditions.is_empty() {
                        String::new()
                    } else {
                        format!(" with condition {}", conditions.join(" or "))
                    }
                )
            }
        }
    }
}

/// A message to send.
#[derive(Clone, Debug)]
pub struct OutMessage {
    /// The recipient.
    pub to: Address,
    /// Its kind.
    pub kind: MessageKind,
    /// The id (a fresh one when `None`).
    pub id: Option<String>,
    /// Its subject.
    pub subject: Option<String>,
    /// Its body.
    pub body: Option<String>,
    /// Its thread.
    pub thread: Option<String>,
}

/// Presence to publish.
#[derive(Clone, Debug)]
pub struct OutPresence {
    /// Directed presence to this address; `None` broadcasts.
    pub to: Option<Address>,
    /// Available or unavailable.
    pub availability: Availability,
    /// The availability detail.
    pub show: Option<Show>,
    /// The status text.
    pub status: Option<String>,
    /// The priority.
    pub priority: Option<i8>,
    /// How long the server keeps it unless published again (RVP's leased value, §5.5);
    /// `None`: the profile's usual one.
    pub lease: Option<std::time::Duration>,
}

/// What a user's server records about a contact: the subscription state and whether the
/// user's own request is pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// The subscription state.
    pub state: imfed_model::SubscriptionState,
    /// Whether the user asked to subscribe and the contact has not answered.
    pub pending_out: bool,
    /// The record as the protocol shows it, for reports.
    pub text: String,
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        super::super::xmpp::parse_address(text).unwrap()
    }

    fn received(xml: &str) -> Received {
        let element = super::super::xmpp::parse_fragment(xml).unwrap().remove(0);
        super::super::xmpp::decode(element)
    }

    #[test]
    fn sip_patterns_match_a_response_by_status_or_a_request_by_method() {
        let sip = |start: SipStart, headers: &[(&str, &str)]| Received {
            event: Event::Other,
            wire: Wire::Sip(SipMessage {
                start,
                headers: headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
                body: String::new(),
            }),
            text: String::new(),
        };
        let notify = sip(
            SipStart::Request {
                method: "NOTIFY".into(),
                uri: "sip:alice@127.0.0.1:5070".into(),
            },
            &[("subscription-state", "terminated;reason=timeout")],
        );
        let refused = sip(
            SipStart::Response {
                status: 412,
                reason: "Conditional Request Failed".into(),
            },
            &[("cseq", "2 PUBLISH")],
        );
        let pattern = |wanted: SipWanted, headers: &[(&str, &str)]| {
            Matcher::Pattern(Pattern::Sip {
                wanted,
                headers: headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect(),
            })
        };
        let terminated = pattern(
            SipWanted::Request {
                method: "notify".into(),
            },
            &[("Subscription-State", "terminated")],
        );
        assert!(terminated.matches(&notify), "the method without case");
        assert!(!terminated.matches(&refused), "a response is no request");
        let active = pattern(
            SipWanted::Request {
                method: "NOTIFY".into(),
            },
            &[("Subscription-State", "active")],
        );
        assert!(!active.matches(&notify), "the header's text must be there");
        let status = |status, reason: Option<&str>| {
            pattern(
                SipWanted::Response {
                    status,
                    reason: reason.map(str::to_string),
                },
                &[("CSeq", "PUBLISH")],
            )
        };
        assert!(status(412, Some("Conditional")).matches(&refused));
        assert!(!status(412, Some("Precondition")).matches(&refused));
        assert!(!status(400, None).matches(&refused));
        assert!(
            !status(412, None).matches(&notify),
            "a request is no response"
        );
        assert_eq!(
            terminated.describe(),
            "SIP notify request with Subscription-State containing 'terminated'"
        );
    }

    #[test]
    fn matchers() {
        let chat = received("<message from='alice@x.test/r' type='chat'><body>hé</body></message>");
        let message = Matcher::Message {
            from: Some(address("alice@x.test")),
            kind: Some(MessageKind::Chat),
            body: Some("hé".into()),
            thread: None,
            subject: None,
        };
        assert!(message.matches(&chat));
        let full = Matcher::Message {
            from: Some(address("alice@x.test/other")),
            kind: None,
            body: None,
            thread: None,
            subject: None,
        };
        assert!(!full.matches(&chat));
        let unavailable = received("<presence from='alice@x.test/r' type='unavailable'/>");
        let presence = Matcher::Presence {
            from: Some(address("alice@x.test")),
            availability: Some(Availability::Unavailable),
            show: None,
            status: None,
            priority: None,
        };
        assert!(presence.matches(&unavailable));
        assert!(!presence.matches(&received("<presence from='alice@x.test/r'/>")));
        let bounce = received(
            "<message from='nobody@x.test' type='error'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        );
        let error = Matcher::Error {
            from: None,
            about: Some(StanzaKind::Message),
            classes: vec![ErrorClass::Undelivered],
            conditions: vec!["item-not-found".into(), "service-unavailable".into()],
        };
        assert!(error.matches(&bounce));
        assert!(!message.matches(&bounce));
        assert_eq!(
            error.describe(),
            "message error of class undelivered with condition item-not-found or \
             service-unavailable"
        );
        let refused = Matcher::Error {
            from: None,
            about: None,
            classes: vec![ErrorClass::Refused],
            conditions: vec![],
        };
        assert!(!refused.matches(&bounce), "another class");
        let request = received("<presence from='bob@y.test' type='subscribe'/>");
        let signal = Matcher::Signal {
            signal: SubscriptionSignal::Request,
            from: Some(address("bob@y.test")),
        };
        assert!(signal.matches(&request) && !signal.matches(&unavailable));
        assert!(Matcher::Any.matches(&request));
    }
}
