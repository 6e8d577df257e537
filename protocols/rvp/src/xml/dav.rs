//! RFC 2518 §12 as RVP uses it (§5.4, §5.5, §8): the DAV documents `propertyupdate`,
//! `propfind` and `multistatus`, with their `propstat` and status lines.

use std::fmt;

use http::StatusCode;

use super::props::{PropName, Property, prop_element, props_from};
use super::{Element, XmlError, empty, expect, required, text_element, url_text};
use crate::ns::Ns;

/// `d:propertyupdate` (RFC 2518 §12.13; RVP §5.5): properties to set and to remove.
///
/// Several `set` and `remove` instructions are gathered into the two lists; their order
/// relative to each other is not kept (RVP only ever sets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PropertyUpdate {
    /// Properties to set, in order.
    pub set: Vec<Property>,
    /// Properties to remove, in order.
    pub remove: Vec<PropName>,
}

impl PropertyUpdate {
    /// A propertyupdate that sets `props`.
    pub fn set(props: Vec<Property>) -> PropertyUpdate {
        PropertyUpdate {
            set: props,
            remove: Vec::new(),
        }
    }

    /// Parses a body whose root is `d:propertyupdate`.
    ///
    /// # Errors
    /// Any [`XmlError`]; [`XmlError::UnexpectedRoot`] for another root.
    pub fn parse(bytes: &[u8]) -> Result<PropertyUpdate, XmlError> {
        PropertyUpdate::from_element(&Element::parse(bytes)?)
    }

    /// Reads a `d:propertyupdate` element.
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for another element, [`XmlError::Missing`] for a
    /// `set` or `remove` without `prop`, or an invalid property value.
    pub fn from_element(element: &Element) -> Result<PropertyUpdate, XmlError> {
        expect(element, &[Ns::Dav], "propertyupdate", "DAV: propertyupdate")?;
        let mut update = PropertyUpdate::default();
        for instruction in element.elements() {
            if instruction.is(Ns::Dav, "set") {
                let prop = required(instruction, &[Ns::Dav], "prop", "set")?;
                update.set.extend(props_from(prop)?);
            } else if instruction.is(Ns::Dav, "remove") {
                let prop = required(instruction, &[Ns::Dav], "prop", "remove")?;
                update.remove.extend(prop.elements().map(PropName::of));
            }
        }
        Ok(update)
    }

    /// The `d:propertyupdate` element.
    pub fn to_element(&self) -> Element {
        let mut element = empty(Ns::Dav, "propertyupdate");
        if !self.set.is_empty() || self.remove.is_empty() {
            element = element.with_child(empty(Ns::Dav, "set").with_child(prop_element(&self.set)));
        }
        if !self.remove.is_empty() {
            let prop = self
                .remove
                .iter()
                .fold(empty(Ns::Dav, "prop"), |prop, name| {
                    prop.with_child(name.to_element())
                });
            element = element.with_child(empty(Ns::Dav, "remove").with_child(prop));
        }
        element
    }

    /// The document as bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        self.to_element().to_document()
    }
}

/// `d:propfind` (RFC 2518 §12.14; RVP §5.4): which properties to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropFind {
    /// `d:prop`: these properties ("A PRESENTITY must submit a body with at least one
    /// property"; an empty list is kept for the server to refuse).
    Prop(Vec<PropName>),
    /// `d:allprop`: every property.
    AllProp,
    /// `d:propname`: the names of the properties.
    PropName,
}

impl PropFind {
    /// Parses a body whose root is `d:propfind`.
    ///
    /// # Errors
    /// Any [`XmlError`]; [`XmlError::UnexpectedRoot`] for another root.
    pub fn parse(bytes: &[u8]) -> Result<PropFind, XmlError> {
        PropFind::from_element(&Element::parse(bytes)?)
    }

    /// Reads a `d:propfind` element.
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for another element, [`XmlError::Missing`] if it has
    /// none of `prop`, `allprop`, `propname`.
    pub fn from_element(element: &Element) -> Result<PropFind, XmlError> {
        expect(element, &[Ns::Dav], "propfind", "DAV: propfind")?;
        for child in element.elements().filter(|el| el.space() == Ns::Dav) {
            match child.name.as_str() {
                "prop" => return Ok(PropFind::Prop(child.elements().map(PropName::of).collect())),
                "allprop" => return Ok(PropFind::AllProp),
                "propname" => return Ok(PropFind::PropName),
                _ => {}
            }
        }
        Err(XmlError::Missing {
            parent: "propfind",
            child: "prop",
        })
    }

    /// The `d:propfind` element.
    pub fn to_element(&self) -> Element {
        let child = match self {
            PropFind::Prop(names) => names.iter().fold(empty(Ns::Dav, "prop"), |prop, name| {
                prop.with_child(name.to_element())
            }),
            PropFind::AllProp => empty(Ns::Dav, "allprop"),
            PropFind::PropName => empty(Ns::Dav, "propname"),
        };
        empty(Ns::Dav, "propfind").with_child(child)
    }

    /// The document as bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        self.to_element().to_document()
    }
}

/// An HTTP status line inside XML (`<d:status>HTTP/1.1 200 OK</d:status>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// The status code.
    pub code: StatusCode,
    /// The reason phrase as written.
    pub reason: String,
}

impl StatusLine {
    /// A status line with RVP's reason phrase for `code`.
    pub fn new(code: StatusCode) -> StatusLine {
        StatusLine {
            code,
            reason: crate::message::rvp_reason(code).to_string(),
        }
    }

    /// Parses `HTTP/x.y code reason`. The parts may also be separated by `.`, as in the
    /// `HTTP/1.1.200.Successful` of §5.1.7.2.
    ///
    /// # Errors
    /// [`XmlError::InvalidValue`] for anything else.
    pub fn parse(text: &str) -> Result<StatusLine, XmlError> {
        let text = text.trim();
        let invalid = || XmlError::InvalidValue {
            element: "status",
            text: text.to_string(),
        };
        let rest = text
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("HTTP/"))
            .map(|_| &text[5..])
            .ok_or_else(invalid)?;
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let major = digits(rest);
        let rest = rest[major..].strip_prefix('.').ok_or_else(invalid)?;
        let minor = digits(rest);
        if major == 0 || minor == 0 {
            return Err(invalid());
        }
        let rest = &rest[minor..];
        let separators = [' ', '\t', '.'];
        let code_text = rest.trim_start_matches(separators);
        if code_text.len() == rest.len() || digits(code_text) != 3 {
            return Err(invalid());
        }
        let code = code_text[..3]
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .ok_or_else(invalid)?;
        let after = &code_text[3..];
        let reason = after.trim_start_matches(separators);
        if !after.is_empty() && reason.len() == after.len() {
            return Err(invalid());
        }
        Ok(StatusLine {
            code,
            reason: reason.to_string(),
        })
    }
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/1.1 {}", self.code.as_str())?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        Ok(())
    }
}

/// A `d:propstat`: properties and the status that applies to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropStat {
    /// The properties.
    pub props: Vec<Property>,
    /// Their status (200, or 404 for a property that does not exist, §5.4).
    pub status: StatusLine,
}

impl PropStat {
    /// Reads the `prop` and the optional `status` of a `d:propstat`.
    pub(crate) fn parts(
        element: &Element,
    ) -> Result<(Vec<Property>, Option<StatusLine>), XmlError> {
        let props = match element.child(&[Ns::Dav], "prop") {
            Some(prop) => props_from(prop)?,
            None => Vec::new(),
        };
        let status = element
            .child(&[Ns::Dav], "status")
            .map(|status| StatusLine::parse(&status.text()))
            .transpose()?;
        Ok((props, status))
    }

    pub(crate) fn element(props: &[Property], status: Option<&StatusLine>) -> Element {
        let mut element = empty(Ns::Dav, "propstat").with_child(prop_element(props));
        if let Some(status) = status {
            element = element.with_child(text_element(Ns::Dav, "status", &status.to_string()));
        }
        element
    }
}

/// A `d:response` of a multistatus: the node (`href`) and either property results or
/// one status for the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusResponse {
    /// The node's URL (whitespace removed).
    pub href: String,
    /// Property results.
    pub propstats: Vec<PropStat>,
    /// A status for the node as a whole.
    pub status: Option<StatusLine>,
}

/// `d:multistatus` (RFC 2518 §12.9; RVP §8): the body of a 207.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MultiStatus {
    /// One entry per node.
    pub responses: Vec<StatusResponse>,
}

impl MultiStatus {
    /// Parses a body whose root is `d:multistatus`.
    ///
    /// # Errors
    /// Any [`XmlError`]; [`XmlError::UnexpectedRoot`] for another root.
    pub fn parse(bytes: &[u8]) -> Result<MultiStatus, XmlError> {
        MultiStatus::from_element(&Element::parse(bytes)?)
    }

    /// Reads a `d:multistatus` element.
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for another element, [`XmlError::Missing`] for a
    /// response without `href` or a propstat without `status`, [`XmlError::InvalidValue`]
    /// for a bad status line or property value.
    pub fn from_element(element: &Element) -> Result<MultiStatus, XmlError> {
        expect(element, &[Ns::Dav], "multistatus", "DAV: multistatus")?;
        let mut responses = Vec::new();
        for response in element.elements().filter(|el| el.is(Ns::Dav, "response")) {
            let href = url_text(required(response, &[Ns::Dav], "href", "response")?, "href")?;
            let mut propstats = Vec::new();
            for propstat in response.elements().filter(|el| el.is(Ns::Dav, "propstat")) {
                let (props, status) = PropStat::parts(propstat)?;
                let status = status.ok_or(XmlError::Missing {
                    parent: "propstat",
                    child: "status",
                })?;
                propstats.push(PropStat { props, status });
            }
            let status = response
                .child(&[Ns::Dav], "status")
                .map(|status| StatusLine::parse(&status.text()))
                .transpose()?;
            responses.push(StatusResponse {
                href,
                propstats,
                status,
            });
        }
        Ok(MultiStatus { responses })
    }

    /// The `d:multistatus` element.
    pub fn to_element(&self) -> Element {
        let mut element = empty(Ns::Dav, "multistatus");
        for response in &self.responses {
            let mut child = empty(Ns::Dav, "response").with_child(text_element(
                Ns::Dav,
                "href",
                &response.href,
            ));
            for propstat in &response.propstats {
                child =
                    child.with_child(PropStat::element(&propstat.props, Some(&propstat.status)));
            }
            if let Some(status) = &response.status {
                child = child.with_child(text_element(Ns::Dav, "status", &status.to_string()));
            }
            element = element.with_child(child);
        }
        element
    }

    /// The document as bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        self.to_element().to_document()
    }
}
