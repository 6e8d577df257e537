//! RVP §5 and §9: the XML bodies of RVP requests and responses, as typed values.
//!
//! | document | root | used by |
//! | --- | --- | --- |
//! | [`Notification`] | `r:notification` | NOTIFY (§5.6) |
//! | [`PropertyUpdate`] | `d:propertyupdate` | PROPPATCH (§5.5), inside `r:propnotification` |
//! | [`PropFind`] | `d:propfind` | PROPFIND (§5.4) |
//! | [`MultiStatus`] | `d:multistatus` | 207 answers to PROPFIND, PROPPATCH, SUBSCRIBE (§5.1.6, §8) |
//! | [`Subscriptions`] | `r:subscriptions` | the answer to SUBSCRIPTIONS (§5.3) |
//! | [`RvpAcl`] | `a:rvpacl` | the answer to ACL (§5.7) |
//!
//! Each type has `parse(&[u8])`, `from_element`, `to_element` and `to_xml()`. Elements are
//! matched by namespace URI ([`crate::ns`]), never by prefix. Unknown elements are skipped
//! (RFC 4918 §17), except where a typed value keeps them ([`Property::Other`],
//! [`Notification::Other`]).
//!
//! # Leniency for documented errata (see the notes, §1.12 and §1.13)
//!
//! * `timeout` is read in the DAV or the RVP namespace (the request of §5.5.1 writes
//!   `Z:timeout`, its response `D:timeout`); it is written as `d:timeout`.
//! * Inside `propnotification`, a `d:propstat` is read in place of `d:propertyupdate`
//!   (Miranda's reading of real traffic).
//! * Whitespace inside `href`, `rvp-principal` (the text wraps URLs across lines) is
//!   removed, and whitespace around numbers, ids and other text is trimmed.
//! * The SUBSCRIPTIONS elements are read in the RVP or DAV namespace (§5.3 calls them RVP
//!   elements, §9 lists them as DAV ones), `principal`/`rvp-principal` there in the ACL or
//!   RVP namespace (§5.3.1 uses `A:`, §9.1.13 lists them as RVP elements).
//! * A status line may separate its parts with `.` (`HTTP/1.1.200.Successful`, §5.1.7.2).
//! * A processing instruction such as `<?xml.version="1.0"?>` (§5.1.7.2) is ignored.
//!
//! What is not well-formed XML is an error, never guessed at: `<D:propupdate>` closed by
//! `</D:propertyupdate>` (§5.5.1) is [`XmlError::MismatchedEndTag`], an unquoted
//! `xmlns:Z=http://…` (§5.3.1) is [`XmlError::Syntax`].

mod acl;
mod dav;
mod notify;
mod props;
mod subscriptions;
mod tree;
mod write;

pub use acl::{Ace, AcePrincipal, Acl, Credentials, Right, RvpAcl};
pub use dav::{MultiStatus, PropFind, PropStat, PropertyUpdate, StatusLine, StatusResponse};
pub use notify::{Contact, Message, Notification, PropChange, PropNotification};
pub use props::{LeasedValue, Presence, PropName, Property, State, StateValue};
pub use subscriptions::{Subscription, Subscriptions};
pub use tree::{Element, MAX_DEPTH, Node};

use crate::ns::Ns;

/// An XML body that cannot be read as the RVP document expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The body is not UTF-8.
    #[error("body is not UTF-8 (valid up to byte {offset})")]
    NotUtf8 {
        /// Bytes before the first invalid sequence.
        offset: usize,
    },
    /// The XML declaration names an encoding other than UTF-8.
    #[error("unsupported encoding {encoding:?}")]
    UnsupportedEncoding {
        /// The encoding named.
        encoding: String,
    },
    /// An end tag that does not close the open element (§5.5.1 opens `D:propupdate` and
    /// closes `D:propertyupdate`).
    #[error("end tag </{found}> does not close <{expected}> (byte {offset})")]
    MismatchedEndTag {
        /// The qualified name of the open element.
        expected: String,
        /// The qualified name in the end tag.
        found: String,
        /// Where the document stopped being well-formed.
        offset: u64,
    },
    /// A namespace prefix that is not declared.
    #[error("undeclared namespace prefix {prefix:?} (byte {offset})")]
    UnboundPrefix {
        /// The prefix.
        prefix: String,
        /// Where it was used.
        offset: u64,
    },
    /// Any other well-formedness error.
    #[error("malformed XML at byte {offset}: {detail}")]
    Syntax {
        /// Where the document stopped being well-formed.
        offset: u64,
        /// What the parser found.
        detail: String,
    },
    /// A document type declaration or an entity reference other than the predefined ones
    /// (refused: no entity expansion).
    #[error("{what} not allowed (byte {offset})")]
    Restricted {
        /// What was found.
        what: String,
        /// Where.
        offset: u64,
    },
    /// No root element.
    #[error("no root element")]
    NoRoot,
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The root element is not the document expected.
    #[error("expected {expected}, found {found}")]
    UnexpectedRoot {
        /// The document expected (`"DAV: propertyupdate"`).
        expected: &'static str,
        /// The root found, as `{namespace}name`.
        found: String,
    },
    /// A required child element is missing.
    #[error("{parent} has no {child}")]
    Missing {
        /// The parent element's local name.
        parent: &'static str,
        /// The missing child's local name.
        child: &'static str,
    },
    /// Text that is not a valid value for its element.
    #[error("invalid {element} value {text:?}")]
    InvalidValue {
        /// The element's local name.
        element: &'static str,
        /// The text (trimmed).
        text: String,
    },
}

/// Any RVP document, by its root element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    /// `r:notification`.
    Notification(Notification),
    /// `d:propertyupdate`.
    PropertyUpdate(PropertyUpdate),
    /// `d:propfind`.
    PropFind(PropFind),
    /// `d:multistatus`.
    MultiStatus(MultiStatus),
    /// `r:subscriptions`.
    Subscriptions(Subscriptions),
    /// `a:rvpacl`.
    Acl(RvpAcl),
}

impl Document {
    /// Parses a body and reads it by its root element.
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for a root that is none of the documents, else the
    /// error of the document's own parser.
    pub fn parse(bytes: &[u8]) -> Result<Document, XmlError> {
        let root = Element::parse(bytes)?;
        let name = root.name.as_str();
        match (root.space(), name) {
            (Ns::Rvp, "notification") => Notification::from_element(&root).map(Self::Notification),
            (Ns::Dav, "propertyupdate") => {
                PropertyUpdate::from_element(&root).map(Self::PropertyUpdate)
            }
            (Ns::Dav, "propfind") => PropFind::from_element(&root).map(Self::PropFind),
            (Ns::Dav, "multistatus") => MultiStatus::from_element(&root).map(Self::MultiStatus),
            (Ns::Rvp | Ns::Dav, "subscriptions") => {
                Subscriptions::from_element(&root).map(Self::Subscriptions)
            }
            (Ns::Acl, "rvpacl") => RvpAcl::from_element(&root).map(Self::Acl),
            _ => Err(XmlError::UnexpectedRoot {
                expected: "an RVP document",
                found: clark(&root),
            }),
        }
    }

    /// The document as bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        match self {
            Document::Notification(doc) => doc.to_xml(),
            Document::PropertyUpdate(doc) => doc.to_xml(),
            Document::PropFind(doc) => doc.to_xml(),
            Document::MultiStatus(doc) => doc.to_xml(),
            Document::Subscriptions(doc) => doc.to_xml(),
            Document::Acl(doc) => doc.to_xml(),
        }
    }
}

/// `{namespace}name`, for error messages.
pub(crate) fn clark(element: &Element) -> String {
    format!("{{{}}}{}", element.ns, element.name)
}

/// Fails unless `element` is `name` in one of `spaces`.
pub(crate) fn expect(
    element: &Element,
    spaces: &[Ns],
    name: &str,
    expected: &'static str,
) -> Result<(), XmlError> {
    if element.is_any(spaces, name) {
        Ok(())
    } else {
        Err(XmlError::UnexpectedRoot {
            expected,
            found: clark(element),
        })
    }
}

/// The first child `name` in one of `spaces`, which must be there.
pub(crate) fn required<'a>(
    parent: &'a Element,
    spaces: &[Ns],
    name: &'static str,
    parent_name: &'static str,
) -> Result<&'a Element, XmlError> {
    parent.child(spaces, name).ok_or(XmlError::Missing {
        parent: parent_name,
        child: name,
    })
}

/// The text of a URL-valued element with all whitespace removed (the specification wraps
/// URLs across lines); must not be empty.
pub(crate) fn url_text(element: &Element, name: &'static str) -> Result<String, XmlError> {
    let text: String = element
        .text()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if text.is_empty() {
        return Err(XmlError::InvalidValue {
            element: name,
            text,
        });
    }
    Ok(text)
}

/// The element's text with surrounding whitespace removed.
pub(crate) fn trimmed(element: &Element) -> String {
    element.text().trim().to_string()
}

/// The element's text as a decimal number of seconds (surrounding whitespace ignored).
pub(crate) fn number(element: &Element, name: &'static str) -> Result<u64, XmlError> {
    let text = trimmed(element);
    if !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(value) = text.parse()
    {
        return Ok(value);
    }
    Err(XmlError::InvalidValue {
        element: name,
        text,
    })
}

/// An element in a known namespace holding `text`.
pub(crate) fn text_element(ns: Ns, name: &str, text: &str) -> Element {
    let element = Element::new(ns.uri().unwrap_or_default(), name);
    if text.is_empty() {
        element
    } else {
        element.with_text(text)
    }
}

/// An empty element in a known namespace.
pub(crate) fn empty(ns: Ns, name: &str) -> Element {
    Element::new(ns.uri().unwrap_or_default(), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_dispatch_on_their_root() {
        let update = PropertyUpdate {
            set: vec![Property::DisplayName("Steve".into())],
            remove: vec![],
        };
        let bytes = update.to_xml();
        assert_eq!(
            Document::parse(&bytes).unwrap(),
            Document::PropertyUpdate(update.clone())
        );
        assert_eq!(
            Document::parse(&Document::PropertyUpdate(update).to_xml())
                .unwrap()
                .to_xml(),
            bytes
        );
        assert_eq!(
            Document::parse(b"<x xmlns='urn:a'/>"),
            Err(XmlError::UnexpectedRoot {
                expected: "an RVP document",
                found: "{urn:a}x".into()
            })
        );
    }

    #[test]
    fn helpers() {
        let href = Element::new(crate::ns::DAV, "href")
            .with_text("\n  http://im.example.com/instmsg/aliase\n      s/bruceb \n");
        assert_eq!(
            url_text(&href, "href").unwrap(),
            "http://im.example.com/instmsg/aliases/bruceb"
        );
        let blank = Element::new(crate::ns::DAV, "href").with_text("  ");
        assert!(url_text(&blank, "href").is_err());
        let timeout = Element::new(crate::ns::DAV, "timeout").with_text(" 3600\n ");
        assert_eq!(number(&timeout, "timeout"), Ok(3600));
        let bad = Element::new(crate::ns::DAV, "timeout").with_text("-1");
        assert_eq!(
            number(&bad, "timeout"),
            Err(XmlError::InvalidValue {
                element: "timeout",
                text: "-1".into()
            })
        );
    }
}
