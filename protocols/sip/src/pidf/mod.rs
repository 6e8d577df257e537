//! RFC 3863 PIDF presence documents, with the RFC 4479 `person` element and the RFC 4480
//! RPID activities this profile uses (PROFILE.md §3: `away`, `busy`).
//!
//! Elements are matched by namespace URI, never by prefix: `<impp:presence
//! xmlns:impp="urn:ietf:params:xml:ns:pidf">` (RFC 3863 §3.4) is as good as a default
//! namespace. What this module does not interpret is skipped (RFC 3863 §4.1.5: unknown
//! extensions are ignored), unless it carries `mustUnderstand="true"` (or `"1"`), in which
//! case the document is refused ([`PidfError::MustUnderstand`]). A tuple without `status`
//! is read with no basic status rather than refused.
//!
//! [`Presence::to_xml`] writes the PIDF namespace as the default one and declares `dm:`
//! and `rpid:` only when persons and activities are written.

mod tree;

use std::fmt::Write as _;

use tree::Element;
pub use tree::MAX_DEPTH;

/// The media type of a PIDF document (RFC 3863 §7.1).
pub const CONTENT_TYPE: &str = "application/pidf+xml";
/// The PIDF namespace (RFC 3863 §4).
pub const NS_PIDF: &str = "urn:ietf:params:xml:ns:pidf";
/// The data-model namespace of `person` and `device` (RFC 4479 §4).
pub const NS_DM: &str = "urn:ietf:params:xml:ns:pidf:data-model";
/// The RPID namespace (RFC 4480 §4).
pub const NS_RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
/// The largest document accepted, in bytes.
pub const MAX_BYTES: usize = 65_535;

/// The activities of RFC 4480 §3.2 with an element of their own.
const RPID_ACTIVITIES: [&str; 25] = [
    "appointment",
    "away",
    "breakfast",
    "busy",
    "dinner",
    "holiday",
    "in-transit",
    "looking-for-work",
    "meal",
    "meeting",
    "on-the-phone",
    "performance",
    "permanent-absence",
    "playing",
    "presentation",
    "shopping",
    "sleeping",
    "spectator",
    "steering",
    "travel",
    "tv",
    "unknown",
    "vacation",
    "working",
    "worship",
];

/// Why a body is not a PIDF document this module accepts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PidfError {
    /// Longer than [`MAX_BYTES`].
    #[error("document longer than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 (RFC 3863 §4.1: PIDF documents are UTF-8 or UTF-16; this profile sends
    /// UTF-8).
    #[error("document is not UTF-8 (valid up to byte {offset})")]
    NotUtf8 {
        /// Bytes before the first invalid sequence.
        offset: usize,
    },
    /// Not well-formed XML.
    #[error("malformed XML at byte {offset}: {detail}")]
    Xml {
        /// Where the reader stopped.
        offset: u64,
        /// What quick-xml or the tree builder found.
        detail: String,
    },
    /// A construct refused for safety: a DOCTYPE, an entity reference, another encoding.
    #[error("refused XML construct: {what}")]
    Restricted {
        /// What it was.
        what: String,
    },
    /// The document is empty of elements.
    #[error("no root element")]
    NoRoot,
    /// The root is not `presence` in the PIDF namespace.
    #[error("root element {{{ns}}}{name} is not a PIDF presence")]
    NotPresence {
        /// The root's namespace URI.
        ns: String,
        /// The root's local name.
        name: String,
    },
    /// A required attribute is absent (`entity` on presence, `id` on tuple and person).
    #[error("<{element}> without its {attribute} attribute")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// `<basic>` is neither `open` nor `closed` (RFC 3863 §4.1.4).
    #[error("basic status {value:?} is neither open nor closed")]
    BadBasic {
        /// The text as found.
        value: String,
    },
    /// An extension this module does not understand is marked `mustUnderstand` (RFC 3863
    /// §4.1.5): the document must be refused.
    #[error("element {{{ns}}}{name} must be understood")]
    MustUnderstand {
        /// The element's namespace URI.
        ns: String,
        /// The element's local name.
        name: String,
    },
}

/// `<basic>` (RFC 3863 §4.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Basic {
    /// `open`: the contact can receive instant messages (available).
    Open,
    /// `closed`: it cannot (unavailable).
    Closed,
}

impl Basic {
    /// `"open"` or `"closed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basic::Open => "open",
            Basic::Closed => "closed",
        }
    }
}

/// `<tuple>` (RFC 3863 §4.1.2): one communication means of the presentity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuple {
    /// The `id` attribute.
    pub id: String,
    /// `<status><basic>`, if given.
    pub basic: Option<Basic>,
    /// `<contact>` (a URI), trimmed.
    pub contact: Option<String>,
    /// The first `<note>`, trimmed (PROFILE.md §3: the status text).
    pub note: Option<String>,
    /// `<timestamp>` as written.
    pub timestamp: Option<String>,
}

/// An RPID activity (RFC 4480 §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Activity {
    /// `<rpid:away/>` (XMPP's `away`, RFC 7248 §7.4).
    Away,
    /// `<rpid:busy/>` (XMPP's `dnd`).
    Busy,
    /// Another activity: the name of its element (`meeting`, `on-the-phone`...), or the
    /// text of `<rpid:other>`. Written back as the element when the name is one of RFC
    /// 4480's, else as `<rpid:other>`; `away` and `busy` belong in the variants above.
    Other(String),
}

/// `<dm:person>` (RFC 4479 §6.1): the presentity as a human, with RPID activities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    /// The `id` attribute.
    pub id: String,
    /// `<rpid:activities>`, in order.
    pub activities: Vec<Activity>,
    /// The first `<dm:note>`, trimmed.
    pub note: Option<String>,
}

/// A PIDF document (RFC 3863 §4.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presence {
    /// The `entity` attribute: the presentity's URI (`pres:` or `sip:`).
    pub entity: String,
    /// The tuples, in order.
    pub tuples: Vec<Tuple>,
    /// The persons (RFC 4479), in order.
    pub persons: Vec<Person>,
    /// The presence-level `<note>`s, trimmed.
    pub notes: Vec<String>,
}

/// Refuses an element this module does not interpret if it must be understood.
fn skip(element: &Element) -> Result<(), PidfError> {
    let flagged = |value: Option<&str>| value.is_some_and(|v| matches!(v.trim(), "true" | "1"));
    if flagged(element.attr_ns(NS_PIDF, "mustUnderstand"))
        || flagged(element.attr("mustUnderstand"))
    {
        return Err(PidfError::MustUnderstand {
            ns: element.ns.clone(),
            name: element.name.clone(),
        });
    }
    Ok(())
}

fn required_id(element: &Element, name: &'static str) -> Result<String, PidfError> {
    element
        .attr("id")
        .map(str::to_string)
        .ok_or(PidfError::MissingAttribute {
            element: name,
            attribute: "id",
        })
}

fn tuple(element: &Element) -> Result<Tuple, PidfError> {
    let mut tuple = Tuple {
        id: required_id(element, "tuple")?,
        ..Tuple::default()
    };
    for child in element.elements() {
        if child.is(NS_PIDF, "status") {
            for part in child.elements() {
                if part.is(NS_PIDF, "basic") {
                    tuple.basic = Some(match part.text().as_str() {
                        "open" => Basic::Open,
                        "closed" => Basic::Closed,
                        other => {
                            return Err(PidfError::BadBasic {
                                value: other.to_string(),
                            });
                        }
                    });
                } else {
                    skip(part)?;
                }
            }
        } else if child.is(NS_PIDF, "contact") {
            tuple.contact = Some(child.text());
        } else if child.is(NS_PIDF, "note") {
            tuple.note.get_or_insert_with(|| child.text());
        } else if child.is(NS_PIDF, "timestamp") {
            tuple.timestamp = Some(child.text());
        } else {
            skip(child)?;
        }
    }
    Ok(tuple)
}

fn person(element: &Element) -> Result<Person, PidfError> {
    let mut person = Person {
        id: required_id(element, "person")?,
        ..Person::default()
    };
    for child in element.elements() {
        if child.is(NS_RPID, "activities") {
            for activity in child.elements() {
                if activity.ns != NS_RPID {
                    skip(activity)?;
                    continue;
                }
                person.activities.push(match activity.name.as_str() {
                    "away" => Activity::Away,
                    "busy" => Activity::Busy,
                    "other" => Activity::Other(activity.text()),
                    // A note on the activities is not an activity.
                    "note" => continue,
                    name => Activity::Other(name.to_string()),
                });
            }
        } else if child.is(NS_DM, "note") {
            person.note.get_or_insert_with(|| child.text());
        } else if !child.is(NS_DM, "timestamp") {
            skip(child)?;
        }
    }
    Ok(person)
}

/// Escapes character data (and, with `attribute`, a double-quoted attribute value),
/// replacing characters XML 1.0 cannot hold with U+FFFD.
fn escape(text: &str, attribute: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\t' | '\n' | '\r' if attribute => {
                let _ = write!(out, "&#{};", c as u32);
            }
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

fn text_element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    escape(text, false, out);
    let _ = write!(out, "</{name}>");
}

impl Presence {
    /// A document for `entity` with nothing in it (what NOTIFY carries for a presentity
    /// with no publication, PROFILE.md §3).
    pub fn new(entity: &str) -> Presence {
        Presence {
            entity: entity.to_string(),
            ..Presence::default()
        }
    }

    /// Parses a document.
    ///
    /// # Errors
    /// [`PidfError`] for a body over [`MAX_BYTES`] or deeper than [`MAX_DEPTH`], that is
    /// not well-formed UTF-8 XML, whose root is not a PIDF `presence`, that lacks a
    /// required attribute, has a `<basic>` other than open/closed, or an extension that
    /// must be understood.
    pub fn parse(body: &[u8]) -> Result<Presence, PidfError> {
        if body.len() > MAX_BYTES {
            return Err(PidfError::TooLarge { max: MAX_BYTES });
        }
        let root = tree::parse(body)?;
        if !root.is(NS_PIDF, "presence") {
            return Err(PidfError::NotPresence {
                ns: root.ns,
                name: root.name,
            });
        }
        let mut presence =
            Presence::new(root.attr("entity").ok_or(PidfError::MissingAttribute {
                element: "presence",
                attribute: "entity",
            })?);
        for child in root.elements() {
            if child.is(NS_PIDF, "tuple") {
                presence.tuples.push(tuple(child)?);
            } else if child.is(NS_PIDF, "note") {
                presence.notes.push(child.text());
            } else if child.is(NS_DM, "person") {
                presence.persons.push(person(child)?);
            } else {
                skip(child)?;
            }
        }
        Ok(presence)
    }

    /// Whether any tuple is `open` (PROFILE.md §4: the presentity is available).
    pub fn is_open(&self) -> bool {
        self.tuples
            .iter()
            .any(|tuple| tuple.basic == Some(Basic::Open))
    }

    /// The activities of every person, in order.
    pub fn activities(&self) -> impl Iterator<Item = &Activity> {
        self.persons.iter().flat_map(|person| &person.activities)
    }

    /// The document as UTF-8 XML with a declaration: PIDF as the default namespace, `dm:`
    /// and `rpid:` declared when used; text and attributes escaped.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(out, "<presence xmlns=\"{NS_PIDF}\"");
        if !self.persons.is_empty() {
            let _ = write!(out, " xmlns:dm=\"{NS_DM}\"");
        }
        if self
            .persons
            .iter()
            .any(|person| !person.activities.is_empty())
        {
            let _ = write!(out, " xmlns:rpid=\"{NS_RPID}\"");
        }
        out.push_str(" entity=\"");
        escape(&self.entity, true, &mut out);
        out.push_str("\">\n");
        for tuple in &self.tuples {
            out.push_str("<tuple id=\"");
            escape(&tuple.id, true, &mut out);
            out.push_str("\"><status>");
            if let Some(basic) = tuple.basic {
                text_element(&mut out, "basic", basic.as_str());
            }
            out.push_str("</status>");
            if let Some(contact) = &tuple.contact {
                text_element(&mut out, "contact", contact);
            }
            if let Some(note) = &tuple.note {
                text_element(&mut out, "note", note);
            }
            if let Some(timestamp) = &tuple.timestamp {
                text_element(&mut out, "timestamp", timestamp);
            }
            out.push_str("</tuple>\n");
        }
        for note in &self.notes {
            text_element(&mut out, "note", note);
            out.push('\n');
        }
        for person in &self.persons {
            out.push_str("<dm:person id=\"");
            escape(&person.id, true, &mut out);
            out.push_str("\">");
            if !person.activities.is_empty() {
                out.push_str("<rpid:activities>");
                for activity in &person.activities {
                    match activity {
                        Activity::Away => out.push_str("<rpid:away/>"),
                        Activity::Busy => out.push_str("<rpid:busy/>"),
                        Activity::Other(name) if RPID_ACTIVITIES.contains(&name.as_str()) => {
                            let _ = write!(out, "<rpid:{name}/>");
                        }
                        Activity::Other(text) => text_element(&mut out, "rpid:other", text),
                    }
                }
                out.push_str("</rpid:activities>");
            }
            if let Some(note) = &person.note {
                text_element(&mut out, "dm:note", note);
            }
            out.push_str("</dm:person>\n");
        }
        out.push_str("</presence>\n");
        out
    }
}

#[cfg(test)]
mod tests;
