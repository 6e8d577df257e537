//! A small namespace-resolved element tree, what a PIDF document is read into before it is
//! interpreted.
//!
//! quick-xml's namespace-aware reader; any well-formed UTF-8 document with one root is
//! accepted, except a DOCTYPE or an entity reference other than the predefined and
//! numeric ones (no entity expansion), and nesting deeper than [`MAX_DEPTH`]. Comments and
//! processing instructions are dropped; CDATA is text.

use quick_xml::NsReader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::PidfError;

/// The deepest element nesting accepted (the root is at depth 1).
pub const MAX_DEPTH: usize = 32;

/// An element: expanded name, attributes (expanded too) and children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Element {
    /// The namespace URI (`""` for none).
    pub(crate) ns: String,
    /// The local name.
    pub(crate) name: String,
    /// `(namespace, local name, value)`, namespace declarations left out.
    pub(crate) attrs: Vec<(String, String, String)>,
    /// Child nodes in order.
    pub(crate) children: Vec<Node>,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// An element.
    Element(Element),
    /// Character data, references resolved (CDATA included).
    Text(String),
}

impl Element {
    /// Whether this is `name` in namespace `ns`.
    pub(crate) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The child elements.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The character data directly inside, with surrounding whitespace removed.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            if let Node::Text(text) = node {
                out.push_str(text);
            }
        }
        out.trim().to_string()
    }

    /// The unqualified attribute `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, key, _)| ns.is_empty() && key == name)
            .map(|(_, _, value)| value.as_str())
    }

    /// Attribute `name` in namespace `ns`.
    pub(crate) fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(space, key, _)| space == ns && key == name)
            .map(|(_, _, value)| value.as_str())
    }
}

fn xml_error(error: quick_xml::Error, offset: u64) -> PidfError {
    PidfError::Xml {
        offset,
        detail: error.to_string(),
    }
}

fn namespace(resolved: ResolveResult<'_>, offset: u64) -> Result<String, PidfError> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(PidfError::Xml {
            offset,
            detail: format!(
                "undeclared namespace prefix {:?}",
                String::from_utf8_lossy(&prefix)
            ),
        }),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    ns: String,
    start: &BytesStart<'_>,
    offset: u64,
) -> Result<Element, PidfError> {
    let mut element = Element {
        ns,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attrs: Vec::new(),
        children: Vec::new(),
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| xml_error(error.into(), offset))?;
        let key = attribute.key;
        if key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns") {
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(key);
        let ns = namespace(resolved, offset)?;
        let value = attribute
            .decode_and_unescape_value(reader.decoder())
            .map_err(|error| xml_error(error, offset))?;
        element.attrs.push((
            ns,
            String::from_utf8_lossy(local.as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(element)
}

fn push_text(stack: &mut [Element], text: &str, offset: u64) -> Result<(), PidfError> {
    match stack.last_mut() {
        Some(parent) => {
            match parent.children.last_mut() {
                Some(Node::Text(previous)) => previous.push_str(text),
                _ => parent.children.push(Node::Text(text.to_string())),
            }
            Ok(())
        }
        None if text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) => Ok(()),
        None => Err(PidfError::Xml {
            offset,
            detail: "text outside the root element".into(),
        }),
    }
}

/// Parses a document into its root element.
pub(crate) fn parse(bytes: &[u8]) -> Result<Element, PidfError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(PidfError::NotUtf8 {
            offset: error.valid_up_to(),
        });
    }
    let mut reader = NsReader::from_reader(bytes);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let offset = reader.buffer_position();
        let (resolved, event) = match reader.read_resolved_event() {
            Ok((resolved, event)) => (namespace(resolved, offset), event),
            Err(error) => return Err(xml_error(error, reader.error_position())),
        };
        let finished = match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(PidfError::Xml {
                    offset,
                    detail: "more than one root element".into(),
                });
            }
            Event::Start(start) => {
                let element = element(&reader, resolved?, &start, offset)?;
                stack.push(element);
                if stack.len() > MAX_DEPTH {
                    return Err(PidfError::TooDeep { max: MAX_DEPTH });
                }
                None
            }
            Event::Empty(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(PidfError::TooDeep { max: MAX_DEPTH });
                }
                Some(element(&reader, resolved?, &start, offset)?)
            }
            Event::End(_) => Some(stack.pop().ok_or_else(|| PidfError::Xml {
                offset,
                detail: "end tag without a start tag".into(),
            })?),
            Event::Text(text) => {
                let content = text
                    .xml10_content()
                    .map_err(|error| xml_error(error.into(), offset))?;
                push_text(&mut stack, &content, offset)?;
                None
            }
            Event::CData(cdata) => {
                let content = cdata
                    .xml10_content()
                    .map_err(|error| xml_error(error.into(), offset))?;
                if stack.is_empty() {
                    return Err(PidfError::Xml {
                        offset,
                        detail: "CDATA outside the root element".into(),
                    });
                }
                push_text(&mut stack, &content, offset)?;
                None
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|error| xml_error(error, offset))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|error| xml_error(error.into(), offset))?;
                        resolve_xml_entity(&name)
                            .ok_or_else(|| PidfError::Restricted {
                                what: format!("entity reference &{name};"),
                            })?
                            .to_string()
                    }
                };
                push_text(&mut stack, &resolved, offset)?;
                None
            }
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let encoding = String::from_utf8_lossy(&encoding).into_owned();
                    if !["utf-8", "utf8", "us-ascii"]
                        .iter()
                        .any(|known| known.eq_ignore_ascii_case(&encoding))
                    {
                        return Err(PidfError::Restricted {
                            what: format!("encoding {encoding}"),
                        });
                    }
                }
                None
            }
            Event::DocType(_) => {
                return Err(PidfError::Restricted {
                    what: "document type declaration".into(),
                });
            }
            Event::Comment(_) | Event::PI(_) => None,
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(PidfError::Xml {
                        offset,
                        detail: "document ended inside an element".into(),
                    });
                }
                return root.ok_or(PidfError::NoRoot);
            }
        };
        if let Some(element) = finished {
            match stack.last_mut() {
                Some(parent) => parent.children.push(Node::Element(element)),
                None => root = Some(element),
            }
        }
    }
}
