//! Matching what arrives against what a step expects: protocol-neutral expectations compiled
//! to XMPP stanza matchers (RFC 6120 §8, RFC 6121 §3–§5), and structure-aware XML patterns.

use imfed_xmpp::stream::STREAM_CLOSE;
use imfed_xmpp::{Element, Jid, Limits, StanzaError, StreamEvent, StreamHeader, StreamParser, ns};

/// Parses XML text as a sequence of elements in the `jabber:client` namespace.
///
/// # Errors
/// The parser's error, as text.
pub fn parse_fragment(xml: &str) -> Result<Vec<Element>, String> {
    let mut header = Vec::new();
    StreamHeader::new(ns::CLIENT).write_to(&mut header);
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

/// An address to compare senders with: a bare JID matches the bare part of any sender; a
/// full JID matches exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrMatch(pub Jid);

impl AddrMatch {
    /// Parses an address.
    ///
    /// # Errors
    /// The JID error, as text.
    pub fn parse(text: &str) -> Result<AddrMatch, String> {
        Jid::parse(text)
            .map(AddrMatch)
            .map_err(|error| format!("{text:?} is not an address: {error}"))
    }

    /// Whether the attribute value `actual` is this address.
    pub fn matches(&self, actual: Option<&str>) -> bool {
        let Some(actual) = actual.and_then(|a| Jid::parse(a).ok()) else {
            return false;
        };
        if self.0.resource().is_some() {
            actual == self.0
        } else {
            actual.bare() == self.0
        }
    }
}

/// A compiled expectation over received stanzas.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// A message.
    Message {
        /// Sender.
        from: Option<AddrMatch>,
        /// Type ("normal" matches a missing type).
        message_type: Option<String>,
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
        from: Option<AddrMatch>,
        /// `Some(true)` available, `Some(false)` unavailable.
        available: Option<bool>,
        /// Show.
        show: Option<String>,
        /// Status.
        status: Option<String>,
        /// Priority.
        priority: Option<i8>,
    },
    /// A presence subscription signal of this type.
    Signal {
        /// subscribe, subscribed, unsubscribe or unsubscribed.
        presence_type: &'static str,
        /// Sender.
        from: Option<AddrMatch>,
    },
    /// An error reply.
    Error {
        /// Sender of the error.
        from: Option<AddrMatch>,
        /// The kind of stanza.
        stanza: Option<&'static str>,
        /// Acceptable conditions (empty: any).
        conditions: Vec<String>,
    },
    /// An XML pattern.
    Xml(Element),
    /// Anything at all.
    Any,
}

fn fmt_opt(label: &str, value: &Option<impl std::fmt::Display>) -> String {
    value
        .as_ref()
        .map(|v| format!(" {label} '{v}'"))
        .unwrap_or_default()
}

impl Matcher {
    /// Whether `stanza` matches.
    pub fn matches(&self, stanza: &Element) -> bool {
        match self {
            Matcher::Any => true,
            Matcher::Xml(pattern) => pattern_matches(pattern, stanza),
            Matcher::Message {
                from,
                message_type,
                body,
                thread,
                subject,
            } => {
                stanza.is("message", ns::CLIENT)
                    && stanza.attr("type") != Some("error")
                    && from.as_ref().is_none_or(|f| f.matches(stanza.attr("from")))
                    && message_type
                        .as_deref()
                        .is_none_or(|t| stanza.attr("type").unwrap_or("normal") == t)
                    && body
                        .as_ref()
                        .is_none_or(|b| stanza.child_text("body", ns::CLIENT).as_ref() == Some(b))
                    && thread
                        .as_ref()
                        .is_none_or(|t| stanza.child_text("thread", ns::CLIENT).as_ref() == Some(t))
                    && subject.as_ref().is_none_or(|s| {
                        stanza.child_text("subject", ns::CLIENT).as_ref() == Some(s)
                    })
            }
            Matcher::Presence {
                from,
                available,
                show,
                status,
                priority,
            } => {
                let ptype = stanza.attr("type");
                let is_availability = ptype.is_none() || ptype == Some("unavailable");
                stanza.is("presence", ns::CLIENT)
                    && is_availability
                    && from.as_ref().is_none_or(|f| f.matches(stanza.attr("from")))
                    && available.is_none_or(|a| a == ptype.is_none())
                    && show
                        .as_ref()
                        .is_none_or(|s| stanza.child_text("show", ns::CLIENT).as_ref() == Some(s))
                    && status
                        .as_ref()
                        .is_none_or(|s| stanza.child_text("status", ns::CLIENT).as_ref() == Some(s))
                    && priority.is_none_or(|p| imfed_xmpp::stanza::priority(stanza) == p)
            }
            Matcher::Signal {
                presence_type,
                from,
            } => {
                stanza.is("presence", ns::CLIENT)
                    && stanza.attr("type") == Some(presence_type)
                    && from.as_ref().is_none_or(|f| f.matches(stanza.attr("from")))
            }
            Matcher::Error {
                from,
                stanza: kind,
                conditions,
            } => {
                stanza.attr("type") == Some("error")
                    && kind.is_none_or(|k| stanza.name == k)
                    && from.as_ref().is_none_or(|f| f.matches(stanza.attr("from")))
                    && (conditions.is_empty()
                        || StanzaError::from_element(stanza).is_some_and(|error| {
                            conditions.iter().any(|c| c == error.condition.as_str())
                        }))
            }
        }
    }

    /// What the matcher waits for, for failure messages.
    pub fn describe(&self) -> String {
        let from = |f: &Option<AddrMatch>| fmt_opt("from", &f.as_ref().map(|a| a.0.to_string()));
        match self {
            Matcher::Any => "any stanza".into(),
            Matcher::Xml(pattern) => format!("a stanza matching {}", pattern.to_xml(ns::CLIENT)),
            Matcher::Message {
                from: f,
                message_type,
                body,
                thread,
                subject,
            } => format!(
                "message{}{}{}{}{}",
                from(f),
                fmt_opt("type", message_type),
                fmt_opt("body", &body.as_ref().map(|b| truncate(b, 60))),
                fmt_opt("thread", thread),
                fmt_opt("subject", subject)
            ),
            Matcher::Presence {
                from: f,
                available,
                show,
                status,
                priority,
            } => format!(
                "{} presence{}{}{}{}",
                match available {
                    Some(true) => "available",
                    Some(false) => "unavailable",
                    None => "available or unavailable",
                },
                from(f),
                fmt_opt("show", show),
                fmt_opt("status", status),
                fmt_opt("priority", priority)
            ),
            Matcher::Signal {
                presence_type,
                from: f,
            } => format!("presence type '{presence_type}'{}", from(f)),
            Matcher::Error {
                from: f,
                stanza,
                conditions,
            } => format!(
                "{} error{}{}",
                stanza.unwrap_or("stanza"),
                from(f),
                if conditions.is_empty() {
                    String::new()
                } else {
                    format!(" with condition {}", conditions.join(" or "))
                }
            ),
        }
    }
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
    fn matchers() {
        let from_alice = Some(AddrMatch::parse("alice@x.test").unwrap());
        let chat = one("<message from='alice@x.test/r' type='chat'><body>hé</body></message>");
        let message = Matcher::Message {
            from: from_alice.clone(),
            message_type: Some("chat".into()),
            body: Some("hé".into()),
            thread: None,
            subject: None,
        };
        assert!(message.matches(&chat));
        let full = Matcher::Message {
            from: Some(AddrMatch::parse("alice@x.test/other").unwrap()),
            message_type: None,
            body: None,
            thread: None,
            subject: None,
        };
        assert!(!full.matches(&chat));
        let unavailable = one("<presence from='alice@x.test/r' type='unavailable'/>");
        let presence = Matcher::Presence {
            from: from_alice.clone(),
            available: Some(false),
            show: None,
            status: None,
            priority: None,
        };
        assert!(presence.matches(&unavailable));
        assert!(!presence.matches(&one("<presence from='alice@x.test/r'/>")));
        let bounce = one(
            "<message from='nobody@x.test' type='error'><error type='cancel'>\
             <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
        );
        let error = Matcher::Error {
            from: None,
            stanza: Some("message"),
            conditions: vec!["item-not-found".into(), "service-unavailable".into()],
        };
        assert!(error.matches(&bounce));
        assert!(!message.matches(&bounce));
        assert_eq!(
            error.describe(),
            "message error with condition item-not-found or service-unavailable"
        );
    }
}
