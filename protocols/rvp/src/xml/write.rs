//! Writing element trees as XML 1.0: prefixes `d`, `r` and `a` declared once on the
//! root for the RVP namespaces, default-namespace declarations for any other, and
//! escaping that reads back unchanged.

use super::tree::{Element, Node};
use crate::ns::Ns;

/// `element` as a document with an XML declaration.
pub(crate) fn document(element: &Element) -> Vec<u8> {
    let mut out = b"<?xml version=\"1.0\"?>".to_vec();
    let mut used = Vec::new();
    collect_spaces(element, &mut used);
    write_element(element, &used, "", &mut out);
    out
}

/// The known namespaces used anywhere in `element`, in first-use order.
fn collect_spaces(element: &Element, used: &mut Vec<Ns>) {
    let space = element.space();
    if space != Ns::Other && !used.contains(&space) {
        used.push(space);
    }
    for child in element.elements() {
        collect_spaces(child, used);
    }
}

/// Writes `element`; `declare` lists the prefixes to declare on it (the root), and
/// `default` is the default namespace in scope.
fn write_element(element: &Element, declare: &[Ns], default: &str, out: &mut Vec<u8>) {
    let space = element.space();
    let mut qname = String::new();
    let mut new_default = default.to_string();
    let mut default_decl = None;
    match space.prefix() {
        Some(prefix) => {
            qname.push_str(prefix);
            qname.push(':');
        }
        None if element.ns != default => {
            default_decl = Some(element.ns.clone());
            new_default = element.ns.clone();
        }
        None => {}
    }
    qname.push_str(&element.name);
    out.push(b'<');
    out.extend_from_slice(qname.as_bytes());
    for ns in declare {
        if let (Some(prefix), Some(uri)) = (ns.prefix(), ns.uri()) {
            out.extend_from_slice(format!(" xmlns:{prefix}=\"{uri}\"").as_bytes());
        }
    }
    if let Some(uri) = default_decl {
        out.extend_from_slice(b" xmlns=\"");
        escape_into(&uri, true, out);
        out.push(b'"');
    }
    for (name, value) in &element.attrs {
        out.push(b' ');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_into(value, true, out);
        out.push(b'"');
    }
    if element.children.is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for child in &element.children {
        match child {
            Node::Element(child) => write_element(child, &[], &new_default, out),
            Node::Text(text) => escape_into(text, false, out),
            Node::CData(text) => write_cdata(text, out),
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(qname.as_bytes());
    out.push(b'>');
}

/// Writes `text` as CDATA, splitting the section around any `]]>`; characters XML 1.0
/// does not allow become U+FFFD, and a carriage return (which a CDATA section cannot
/// keep) is written as a character reference between sections.
fn write_cdata(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<![CDATA[");
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("]]>") {
            out.extend_from_slice(b"]]]]><![CDATA[>");
            rest = &rest[3..];
            continue;
        }
        if c == '\r' {
            out.extend_from_slice(b"]]>&#13;<![CDATA[");
        } else {
            push_char(valid_char(c), out);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.extend_from_slice(b"]]>");
}

fn valid_char(c: char) -> char {
    if matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    {
        c
    } else {
        '\u{FFFD}'
    }
}

fn push_char(c: char, out: &mut Vec<u8>) {
    let mut buf = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Escapes character data or an attribute value so that it reads back unchanged
/// (carriage returns, and in attributes tabs and line feeds, as character references).
fn escape_into(text: &str, attribute: bool, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' if attribute => out.extend_from_slice(b"&quot;"),
            '\r' => out.extend_from_slice(b"&#13;"),
            '\n' if attribute => out.extend_from_slice(b"&#10;"),
            '\t' if attribute => out.extend_from_slice(b"&#9;"),
            c => push_char(valid_char(c), out),
        }
    }
}
