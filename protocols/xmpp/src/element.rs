//! XML elements as XMPP carries them (RFC 6120 §4.1, §11): namespace-qualified, no prefixes kept.
//!
//! An [`Element`] stores its namespace URI, never a prefix. Attributes are unqualified names
//! (XMPP stanza attributes are unqualified; `xml:lang` is kept under the name `xml:lang`).
//! Serialization declares a default namespace (`xmlns='...'`) wherever an element's namespace
//! differs from its parent's, so the output never depends on prefixes.

use crate::ns;

/// A child of an element: another element or character data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
}

/// An XML element with its namespace URI, attributes and children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// Local name, without prefix.
    pub name: String,
    /// Namespace URI. Stanzas of both content namespaces are stored as [`ns::CLIENT`].
    pub ns: String,
    /// Attributes in document order, names unqualified except `xml:lang`.
    pub attrs: Vec<(String, String)>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// An empty element named `name` in namespace `ns`.
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: sets attribute `name` (replacing an earlier value).
    #[must_use]
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: sets attribute `name` if `value` is `Some`.
    #[must_use]
    pub fn with_opt_attr(mut self, name: &str, value: Option<impl Into<String>>) -> Self {
        if let Some(value) = value {
            self.set_attr(name, value);
        }
        self
    }

    /// Builder: appends a child element.
    #[must_use]
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: appends character data.
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Sets attribute `name`, replacing an earlier value in place.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(key, _)| key == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// Removes attribute `name`, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let index = self.attrs.iter().position(|(key, _)| key == name)?;
        Some(self.attrs.remove(index).1)
    }

    /// Whether this element is `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The first child element named `name` in namespace `ns`.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|child| child.is(name, ns))
    }

    /// The first child element named `name` in namespace `ns`, mutably.
    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|node| match node {
            Node::Element(element) if element.is(name, ns) => Some(element),
            _ => None,
        })
    }

    /// Removes every child element named `name` in namespace `ns`.
    pub fn remove_children(&mut self, name: &str, ns: &str) {
        self.children
            .retain(|node| !matches!(node, Node::Element(element) if element.is(name, ns)));
    }

    /// The character data directly inside this element, concatenated.
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) => Some(text.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// The text of the first child `name` in namespace `ns`.
    pub fn child_text(&self, name: &str, ns: &str) -> Option<String> {
        self.child(name, ns).map(Element::text)
    }

    /// Serializes this element as the child of a stream whose content namespace is
    /// `stream_ns` ([`ns::CLIENT`] or [`ns::SERVER`]). Elements stored in [`ns::CLIENT`] are
    /// written in `stream_ns`, so a stanza moves between stream types unchanged.
    ///
    /// A top-level element in the stream namespace is written with the `stream:` prefix the
    /// stream header declares (`<stream:features>`, `<stream:error>`), and on server streams
    /// a top-level dialback element with the `db:` prefix (`<db:result>`, `<db:verify>`):
    /// equivalent XML either way, but some servers (ejabberd 23.01) only recognize the
    /// prefixed names, as was common practice before RFC 6120.
    pub fn write_to(&self, out: &mut Vec<u8>, stream_ns: &str) {
        let prefix = if self.ns == ns::STREAM {
            Some("stream")
        } else if self.ns == ns::DIALBACK && stream_ns == ns::SERVER {
            Some("db")
        } else {
            None
        };
        self.write_inner(out, stream_ns, stream_ns, prefix);
    }

    /// Serializes this element as a standalone document fragment in `stream_ns`.
    pub fn to_xml(&self, stream_ns: &str) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out, stream_ns);
        String::from_utf8(out).expect("serializer writes UTF-8")
    }

    /// Writes the element; `default_ns` is the default namespace in scope, `prefix` one the
    /// stream header declared for this element's namespace.
    fn write_inner(
        &self,
        out: &mut Vec<u8>,
        default_ns: &str,
        stream_ns: &str,
        prefix: Option<&str>,
    ) {
        let own_ns = if self.ns == ns::CLIENT {
            stream_ns
        } else {
            self.ns.as_str()
        };
        // A prefixed element leaves the default namespace as it was for its children.
        let children_ns = if prefix.is_some() { default_ns } else { own_ns };
        let mut name = String::new();
        if let Some(prefix) = prefix {
            name.push_str(prefix);
            name.push(':');
        }
        name.push_str(&self.name);
        out.push(b'<');
        out.extend_from_slice(name.as_bytes());
        if prefix.is_none() && own_ns != default_ns {
            out.extend_from_slice(b" xmlns='");
            escape_into(own_ns, true, out);
            out.push(b'\'');
        }
        for (key, value) in &self.attrs {
            out.push(b' ');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"='");
            escape_into(value, true, out);
            out.push(b'\'');
        }
        if self.children.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for child in &self.children {
            match child {
                Node::Element(element) => element.write_inner(out, children_ns, stream_ns, None),
                Node::Text(text) => escape_into(text, false, out),
            }
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(name.as_bytes());
        out.push(b'>');
    }
}

/// Escapes `text` for XML character data, or for a single-quoted attribute value.
pub fn escape_into(text: &str, attribute: bool, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        match byte {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\'' if attribute => out.extend_from_slice(b"&apos;"),
            b'"' if attribute => out.extend_from_slice(b"&quot;"),
            // Keep whitespace in attributes exact: a raw newline would be normalized away.
            b'\n' if attribute => out.extend_from_slice(b"&#xA;"),
            b'\r' => out.extend_from_slice(b"&#xD;"),
            b'\t' if attribute => out.extend_from_slice(b"&#x9;"),
            _ => out.push(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_namespace_follows_the_stream() {
        let message = Element::new("message", ns::CLIENT)
            .with_attr("to", "bob@b.test")
            .with_child(Element::new("body", ns::CLIENT).with_text("a<b & 'c'"));
        assert_eq!(
            message.to_xml(ns::SERVER),
            "<message to='bob@b.test'><body>a&lt;b &amp; 'c'</body></message>"
        );
        let ping = Element::new("iq", ns::CLIENT).with_child(Element::new("ping", ns::PING));
        assert_eq!(
            ping.to_xml(ns::CLIENT),
            "<iq><ping xmlns='urn:xmpp:ping'/></iq>"
        );
    }

    #[test]
    fn stream_and_dialback_elements_use_the_declared_prefixes() {
        let features = Element::new("features", ns::STREAM)
            .with_child(Element::new("starttls", ns::TLS))
            .with_child(Element::new("x", ns::CLIENT));
        assert_eq!(
            features.to_xml(ns::SERVER),
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><x/></stream:features>"
        );
        let result = Element::new("result", ns::DIALBACK)
            .with_attr("from", "a.test")
            .with_text("key");
        assert_eq!(
            result.to_xml(ns::SERVER),
            "<db:result from='a.test'>key</db:result>"
        );
        // Client streams declare no db prefix.
        assert_eq!(
            result.to_xml(ns::CLIENT),
            "<result xmlns='jabber:server:dialback' from='a.test'>key</result>"
        );
    }

    #[test]
    fn attributes_are_replaced_and_escaped() {
        let mut element = Element::new("x", "urn:x").with_attr("a", "1");
        element.set_attr("a", "it's \"2\"\n");
        assert_eq!(element.attr("a"), Some("it's \"2\"\n"));
        assert_eq!(
            element.to_xml(ns::CLIENT),
            "<x xmlns='urn:x' a='it&apos;s &quot;2&quot;&#xA;'/>"
        );
        assert_eq!(element.remove_attr("a").as_deref(), Some("it's \"2\"\n"));
        assert_eq!(element.attr("a"), None);
    }
}
