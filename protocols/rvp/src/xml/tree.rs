//! A small namespace-resolved element tree: what RVP bodies are parsed into before they
//! are read as typed values, and what typed values are written from.
//!
//! Parsing (quick-xml's namespace-aware reader) accepts any well-formed UTF-8 document with
//! one root element; it rejects DOCTYPEs and entity references other than the predefined
//! and numeric ones (no entity expansion), and nesting deeper than [`MAX_DEPTH`].
//! Comments are dropped. Processing instructions are ignored, which also lets the
//! `<?xml.version="1.0"?>` of §5.1.7.2 through.

use quick_xml::NsReader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::XmlError;
use crate::ns::Ns;

/// The deepest element nesting accepted (the root is at depth 1).
pub const MAX_DEPTH: usize = 64;

/// An element: expanded name, attributes and children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// The namespace URI as declared (`""` for none).
    pub ns: String,
    /// The local name.
    pub name: String,
    /// Attributes without a prefix, in order (namespace declarations and prefixed
    /// attributes are not kept).
    pub attrs: Vec<(String, String)>,
    /// Child nodes in order.
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (entity and character references resolved, line ends normalized).
    Text(String),
    /// A CDATA section (line ends normalized).
    CData(String),
}

impl Element {
    /// An element without attributes or children; `ns` is a URI ([`crate::ns`]).
    pub fn new(ns: &str, name: &str) -> Element {
        Element {
            ns: ns.to_string(),
            name: name.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Adds a child element.
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Adds character data.
    pub fn with_text(mut self, text: &str) -> Element {
        self.children.push(Node::Text(text.to_string()));
        self
    }

    /// The namespace, classified.
    pub fn space(&self) -> Ns {
        Ns::of(&self.ns)
    }

    /// Whether this is `name` in `ns` ([`Ns::Other`] stands for every namespace but the
    /// three of RVP; compare the `ns` field to match another one exactly).
    pub fn is(&self, ns: Ns, name: &str) -> bool {
        self.name == name && self.space() == ns
    }

    /// Whether this is `name` in one of `spaces`.
    pub(crate) fn is_any(&self, spaces: &[Ns], name: &str) -> bool {
        self.name == name && spaces.contains(&self.space())
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            _ => None,
        })
    }

    /// The first child element `name` in one of `spaces`.
    pub(crate) fn child(&self, spaces: &[Ns], name: &str) -> Option<&Element> {
        self.elements().find(|el| el.is_any(spaces, name))
    }

    /// The concatenated character data and CDATA directly inside this element.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            if let Node::Text(text) | Node::CData(text) = node {
                out.push_str(text);
            }
        }
        out
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(attr, _)| attr == name)
            .map(|(_, value)| value.as_str())
    }

    /// Parses a document into its root element.
    ///
    /// # Errors
    /// [`XmlError`] for anything that is not a single well-formed UTF-8 document.
    pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
        parse(bytes)
    }

    /// Writes this element as a document (with an XML declaration), declaring the
    /// prefixes `d`, `r` and `a` on it for the RVP namespaces used.
    pub fn to_document(&self) -> Vec<u8> {
        super::write::document(self)
    }
}

fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(XmlError::NotUtf8 {
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
            Ok((resolved, event)) => (owned_namespace(resolved, offset), event),
            Err(error) => return Err(xml_error(error, reader.error_position())),
        };
        let finished = match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::Syntax {
                    offset,
                    detail: "more than one root element".into(),
                });
            }
            Event::Start(start) => {
                let element = element_from_start(&reader, resolved, &start, offset)?;
                stack.push(element);
                if stack.len() > MAX_DEPTH {
                    return Err(XmlError::TooDeep { max: MAX_DEPTH });
                }
                None
            }
            Event::Empty(start) => {
                let element = element_from_start(&reader, resolved, &start, offset)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep { max: MAX_DEPTH });
                }
                Some(element)
            }
            Event::End(_) => Some(stack.pop().ok_or_else(|| XmlError::Syntax {
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
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::CData(content.into_owned())),
                    None => {
                        return Err(XmlError::Syntax {
                            offset,
                            detail: "CDATA outside the root element".into(),
                        });
                    }
                }
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
                            .ok_or_else(|| XmlError::Restricted {
                                what: format!("entity reference &{name};"),
                                offset,
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
                        return Err(XmlError::UnsupportedEncoding { encoding });
                    }
                }
                if !stack.is_empty() || root.is_some() {
                    return Err(XmlError::Syntax {
                        offset,
                        detail: "XML declaration after the start".into(),
                    });
                }
                None
            }
            Event::DocType(_) => {
                return Err(XmlError::Restricted {
                    what: "document type declaration".into(),
                    offset,
                });
            }
            Event::Comment(_) | Event::PI(_) => None,
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(XmlError::Syntax {
                        offset,
                        detail: "document ended inside an element".into(),
                    });
                }
                return root.ok_or(XmlError::NoRoot);
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

fn push_text(stack: &mut [Element], text: &str, offset: u64) -> Result<(), XmlError> {
    let Some(parent) = stack.last_mut() else {
        if text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
            return Ok(());
        }
        return Err(XmlError::Syntax {
            offset,
            detail: "text outside the root element".into(),
        });
    };
    match parent.children.last_mut() {
        Some(Node::Text(previous)) => previous.push_str(text),
        _ => parent.children.push(Node::Text(text.to_string())),
    }
    Ok(())
}

fn xml_error(error: quick_xml::Error, offset: u64) -> XmlError {
    use quick_xml::errors::IllFormedError;
    match error {
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            XmlError::MismatchedEndTag {
                expected,
                found,
                offset,
            }
        }
        quick_xml::Error::Namespace(quick_xml::name::NamespaceError::UnknownPrefix(prefix)) => {
            XmlError::UnboundPrefix {
                prefix: String::from_utf8_lossy(&prefix).into_owned(),
                offset,
            }
        }
        other => XmlError::Syntax {
            offset,
            detail: other.to_string(),
        },
    }
}

/// The namespace URI of a resolved name (`""` for none), with references decoded.
fn owned_namespace(resolved: ResolveResult<'_>, offset: u64) -> Result<String, XmlError> {
    match resolved {
        ResolveResult::Bound(ns) => {
            let raw = String::from_utf8_lossy(ns.as_ref()).into_owned();
            Ok(quick_xml::escape::unescape(&raw)
                .map(|uri| uri.into_owned())
                .unwrap_or(raw))
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(prefix) => Err(XmlError::UnboundPrefix {
            prefix: String::from_utf8_lossy(&prefix).into_owned(),
            offset,
        }),
    }
}

fn element_from_start(
    reader: &NsReader<&[u8]>,
    resolved: Result<String, XmlError>,
    start: &BytesStart<'_>,
    offset: u64,
) -> Result<Element, XmlError> {
    let ns = resolved?;
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut element = Element {
        ns,
        name,
        attrs: Vec::new(),
        children: Vec::new(),
    };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| xml_error(error.into(), offset))?;
        let key = attribute.key;
        if key.as_ref() == b"xmlns" || key.prefix().is_some() {
            continue;
        }
        let value = attribute
            .decode_and_unescape_value(reader.decoder())
            .map_err(|error| xml_error(error, offset))?;
        element.attrs.push((
            String::from_utf8_lossy(key.as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(element)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    fn parse_str(text: &str) -> Result<Element, XmlError> {
        Element::parse(text.as_bytes())
    }

    #[test]
    fn namespaces_resolve_by_uri() {
        let root = parse_str(
            "<Q:x xmlns:Q='DAV:' xmlns='http://schemas.microsoft.com/rvp/'><y a='1' Q:b='2'/>t&amp;u</Q:x>",
        )
        .unwrap();
        assert!(root.is(Ns::Dav, "x"));
        let child = root.elements().next().unwrap();
        assert!(child.is(Ns::Rvp, "y"));
        assert_eq!(child.attrs, vec![("a".to_string(), "1".to_string())]);
        assert_eq!(root.text(), "t&u");
    }

    #[test]
    fn cdata_is_kept_apart() {
        let root = parse_str("<x> <![CDATA[a]]>b</x>").unwrap();
        assert_eq!(
            root.children,
            vec![
                Node::Text(" ".into()),
                Node::CData("a".into()),
                Node::Text("b".into())
            ]
        );
    }

    #[test]
    fn malformed_declaration_is_ignored_as_a_processing_instruction() {
        let root = parse_str("<?xml.version=\"1.0\"?><x/>").unwrap();
        assert_eq!(root.name, "x");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_str("<a:x xmlns:a='DAV:'></a:y>"),
            Err(XmlError::MismatchedEndTag { ref expected, ref found, .. })
                if expected == "a:x" && found == "a:y"
        ));
        assert!(matches!(
            parse_str("<a:x/>"),
            Err(XmlError::UnboundPrefix { ref prefix, .. }) if prefix == "a"
        ));
        assert_eq!(parse_str(""), Err(XmlError::NoRoot));
        assert_eq!(parse_str("  <!-- c -->  "), Err(XmlError::NoRoot));
        assert!(matches!(
            parse_str("<x/><y/>"),
            Err(XmlError::Syntax { .. })
        ));
        assert!(matches!(parse_str("<x/>t"), Err(XmlError::Syntax { .. })));
        assert!(matches!(parse_str("<x>"), Err(XmlError::Syntax { .. })));
        assert!(matches!(
            parse_str("<!DOCTYPE x [<!ENTITY e 'boom'>]><x>&e;</x>"),
            Err(XmlError::Restricted { .. })
        ));
        assert!(matches!(
            parse_str("<x>&e;</x>"),
            Err(XmlError::Restricted { .. })
        ));
        assert!(matches!(
            parse_str("<?xml version='1.0' encoding='ISO-8859-1'?><x/>"),
            Err(XmlError::UnsupportedEncoding { .. })
        ));
        assert_eq!(
            Element::parse(b"<x>\xff</x>"),
            Err(XmlError::NotUtf8 { offset: 3 })
        );
        let deep = "<x>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse_str(&deep), Err(XmlError::TooDeep { max: MAX_DEPTH }));
        let deep_empty = format!("{}<y/>", "<x>".repeat(MAX_DEPTH));
        assert_eq!(
            parse_str(&deep_empty),
            Err(XmlError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn unquoted_namespace_declarations_are_errors() {
        assert!(parse_str("<Z:x xmlns:Z=http://schemas.microsoft.com/rvp/ />").is_err());
    }

    #[test]
    fn write_then_parse() {
        let element = Element::new(ns::RVP, "notification")
            .with_child(Element::new(ns::DAV, "href").with_text("a<b>&\"c\"\r\n"))
            .with_child(Element {
                ns: "urn:other".into(),
                name: "ext".into(),
                attrs: vec![("k".into(), "v\"\t\n\r&".into())],
                children: vec![
                    Node::Element(Element::new("urn:other", "inner")),
                    Node::Element(Element::new("", "bare")),
                    Node::CData("x]]>y\r\nz".into()),
                ],
            })
            .with_child(Element::new(ns::ACL, "ace"));
        let bytes = element.to_document();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with(
            "<?xml version=\"1.0\"?><r:notification xmlns:r=\"http://schemas.microsoft.com/rvp/\" \
             xmlns:d=\"DAV:\" xmlns:a=\"http://schemas.microsoft.com/rvp/acl/\">"
        ));
        let parsed = Element::parse(&bytes).unwrap();
        let Node::Element(ext) = &parsed.children[1] else {
            panic!("no ext");
        };
        assert_eq!(ext.text(), "x]]>y\r\nz");
        assert_eq!(ext.attrs, vec![("k".to_string(), "v\"\t\n\r&".to_string())]);
        let bare = ext.elements().nth(1).unwrap();
        assert_eq!(bare.ns, "");
        assert_eq!(parsed.elements().next().unwrap().text(), "a<b>&\"c\"\r\n");
    }

    #[test]
    fn invalid_characters_are_replaced_when_written() {
        let element = Element::new("", "x").with_text("a\u{0}b");
        let parsed = Element::parse(&element.to_document()).unwrap();
        assert_eq!(parsed.text(), "a\u{FFFD}b");
    }
}
