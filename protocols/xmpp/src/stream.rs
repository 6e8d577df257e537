//! RFC 6120 §4 (XML streams) and §11 (XML usage): an incremental, strict stream parser.
//!
//! Bytes go in with [`StreamParser::feed`] in chunks of any size; [`StreamParser::next_event`]
//! returns the stream header, then each first-level element whole, then the end of the
//! stream. `Ok(None)` means "need more bytes", never an error.
//!
//! # How it stays incremental and linear
//!
//! A small scanner walks the buffered bytes once, remembering where it stopped (including
//! inside a half-received tag or quoted attribute value). It only finds token boundaries
//! and tracks element depth, so it knows when a first-level element is complete. That
//! complete element is then parsed once by quick-xml's namespace-aware [`NsReader`], with
//! the stream header's raw start tag in front so that prefixes declared on the header
//! resolve. Each byte is thus scanned once and parsed once.
//!
//! # Strictness
//!
//! | input | condition |
//! | --- | --- |
//! | root not `stream` in `http://etherx.jabber.org/streams`, content namespace not `jabber:client`/`jabber:server` | `invalid-namespace` |
//! | comments, processing instructions (other than the leading XML declaration), DOCTYPE, entity references other than the five predefined and numeric ones | `restricted-xml` (§11.1) |
//! | invalid UTF-8, or an XML declaration naming another encoding | `unsupported-encoding` (§11.6) |
//! | unbound namespace prefix | `bad-namespace-prefix` |
//! | non-whitespace character data between first-level elements | `bad-format` |
//! | any other malformed XML: mismatched end tags, bad attribute syntax, duplicate attributes, bad names, characters XML 1.0 forbids | `not-well-formed` |
//! | a first-level element longer than [`Limits::max_stanza_bytes`] (counted while it arrives), nested deeper than [`Limits::max_depth`], or an element with more than [`Limits::max_attributes`] attributes | `policy-violation` |
//!
//! Whitespace is allowed before the XML declaration and the header, and a UTF-8 byte
//! order mark is allowed as the very first bytes. After `</stream:stream>` further input
//! is ignored. After an error the parser returns the same error until [`StreamParser::reset`].

use std::collections::VecDeque;

use quick_xml::NsReader;
use quick_xml::escape::{EscapeError, resolve_xml_entity, unescape};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, QName, ResolveResult};

use crate::element::{Element, Node, escape_into};
use crate::errors::StreamErrorCondition;
use crate::ns;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Limits that protect a receiver from oversized input (RFC 6120 §13.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest first-level element (stanza), stream header or XML declaration, in bytes.
    pub max_stanza_bytes: usize,
    /// The deepest element nesting inside the stream; a stanza itself is at depth 1.
    pub max_depth: usize,
    /// The most attributes (namespace declarations included) one element or the stream
    /// header may carry: checking attributes for duplicates costs the square of their number.
    pub max_attributes: usize,
}

impl Default for Limits {
    /// 256 KiB per stanza, 48 levels of nesting and 64 attributes an element.
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 48,
            max_attributes: 64,
        }
    }
}

/// The attributes of an opening `<stream:stream>` tag (RFC 6120 §4.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `id` attribute (set by the receiving entity).
    pub id: Option<String>,
    /// The `version` attribute (`1.0` for RFC 6120 streams).
    pub version: Option<String>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The default namespace: [`ns::CLIENT`] or [`ns::SERVER`].
    pub content_ns: String,
    /// Whether the dialback namespace (XEP-0220) is declared on the header.
    pub dialback: bool,
}

impl StreamHeader {
    /// A header in `content_ns` with no attributes set.
    pub fn new(content_ns: &str) -> Self {
        StreamHeader {
            from: None,
            to: None,
            id: None,
            version: None,
            lang: None,
            content_ns: content_ns.to_string(),
            dialback: false,
        }
    }

    /// Writes the XML declaration and the opening stream tag, with `xmlns:db` if
    /// [`dialback`](Self::dialback) is set and every attribute that is present.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='");
        escape_into(&self.content_ns, true, out);
        out.extend_from_slice(b"' xmlns:stream='");
        out.extend_from_slice(ns::STREAM.as_bytes());
        out.push(b'\'');
        if self.dialback {
            out.extend_from_slice(b" xmlns:db='");
            out.extend_from_slice(ns::DIALBACK.as_bytes());
            out.push(b'\'');
        }
        for (name, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("id", &self.id),
            ("version", &self.version),
            ("xml:lang", &self.lang),
        ] {
            if let Some(value) = value {
                out.push(b' ');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"='");
                escape_into(value, true, out);
                out.push(b'\'');
            }
        }
        out.push(b'>');
    }
}

/// The closing tag of a stream, as written by [`StreamHeader::write_to`].
pub const STREAM_CLOSE: &str = "</stream:stream>";

/// What the parser found next in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The opening stream tag.
    Header(StreamHeader),
    /// A complete first-level element: a stanza or a negotiation element.
    Element(Element),
    /// The closing stream tag.
    End,
}

/// A stream-level parse failure: the condition to send in `<stream:error/>` before closing
/// the stream (RFC 6120 §4.9), and a description for logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{condition}: {detail}")]
pub struct ParseError {
    /// The stream error condition that describes the failure.
    pub condition: StreamErrorCondition,
    /// What exactly was wrong.
    pub detail: String,
}

impl ParseError {
    fn new(condition: StreamErrorCondition, detail: impl Into<String>) -> Self {
        ParseError {
            condition,
            detail: detail.into(),
        }
    }
}

fn not_well_formed(detail: impl Into<String>) -> ParseError {
    ParseError::new(StreamErrorCondition::NotWellFormed, detail)
}

fn restricted(detail: impl Into<String>) -> ParseError {
    ParseError::new(StreamErrorCondition::RestrictedXml, detail)
}

/// Where the parser is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the stream header: whitespace, an XML declaration, then the header.
    Prolog,
    /// Inside the stream.
    Open,
    /// After the closing tag: input is ignored.
    Closed,
}

/// The kind of markup the scanner is inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    StartTag,
    EndTag,
    XmlDecl,
    CData,
}

/// A markup token that has started but whose end has not been scanned yet.
#[derive(Clone, Copy, Debug)]
struct Token {
    kind: TokenKind,
    /// Index of its `<` in the buffer.
    start: usize,
    /// The quote character of the attribute value the scanner is inside, if any.
    quote: Option<u8>,
}

/// A first-level element that has started.
#[derive(Clone, Debug)]
struct OpenStanza {
    /// Index of its `<` in the buffer.
    start: usize,
    /// Number of elements open, the stanza itself included.
    depth: usize,
    /// Qualified names of the open elements, so a mismatched end tag is caught when it
    /// arrives rather than when the stanza would have closed.
    names: Vec<Vec<u8>>,
}

/// The qualified name of a start or end tag's bytes (`<name ...>` or `</name>`).
fn tag_qname(bytes: &[u8]) -> &[u8] {
    let from = if bytes.starts_with(b"</") { 2 } else { 1 };
    let rest = &bytes[from.min(bytes.len())..];
    let len = rest
        .iter()
        .position(|b| is_xml_space(*b) || *b == b'>' || *b == b'/')
        .unwrap_or(rest.len());
    &rest[..len]
}

/// The stream header as needed to parse the stream's children.
#[derive(Clone, Debug, Default)]
struct HeaderContext {
    /// The raw opening tag, put in front of each stanza so its prefixes resolve.
    raw: Vec<u8>,
    /// The qualified name the closing tag must repeat.
    qname: Vec<u8>,
}

/// An incremental XMPP stream parser (sans-I/O): feed bytes, drain events.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: Vec<u8>,
    /// Bytes before this index are consumed and may be dropped.
    pos: usize,
    /// Bytes before this index have been scanned.
    scan: usize,
    phase: Phase,
    bom_checked: bool,
    decl_seen: bool,
    token: Option<Token>,
    stanza: Option<OpenStanza>,
    header: HeaderContext,
    last_header: Option<StreamHeader>,
    pending: VecDeque<StreamEvent>,
    failed: Option<ParseError>,
    /// Observer mode: namespaces kept as written, raw bytes of each element kept.
    observe: bool,
    /// The bytes of the last first-level element (observer mode only).
    last_raw: Vec<u8>,
}

impl StreamParser {
    /// A parser expecting a stream header, enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            phase: Phase::Prolog,
            bom_checked: false,
            decl_seen: false,
            token: None,
            stanza: None,
            header: HeaderContext::default(),
            last_header: None,
            pending: VecDeque::new(),
            failed: None,
            observe: false,
            last_raw: Vec::new(),
        }
    }

    /// A parser for observing a stream rather than taking part in it (the wire tap of a
    /// test harness): stanzas keep the content namespace they were written in
    /// (`jabber:server` is not folded into [`ns::CLIENT`], so a stanza sent in the wrong
    /// namespace shows, RFC 6120 §4.8.3), and [`last_element_bytes`](Self::last_element_bytes)
    /// gives each element's bytes as they arrived.
    pub fn observer(limits: Limits) -> Self {
        StreamParser {
            observe: true,
            ..StreamParser::new(limits)
        }
    }

    /// The first-level element the stream is in the middle of, as it would be if its end
    /// tags came now: what a connection that dies here cut short, for diagnostics (and for
    /// a deliberately broken server that delivers it). `None` outside an element, or when
    /// the cut fell inside a tag.
    pub fn cut_short(&self) -> Option<Element> {
        let stanza = self.stanza.as_ref()?;
        if self.token.is_some() {
            return None;
        }
        let mut bytes = self.buf.get(stanza.start..)?.to_vec();
        for name in stanza.names.iter().rev() {
            bytes.extend_from_slice(b"</");
            bytes.extend_from_slice(name);
            bytes.push(b'>');
        }
        parse_stanza(
            &self.header.raw,
            &bytes,
            !self.observe,
            self.limits.max_attributes,
        )
        .ok()
    }

    /// In observer mode, the bytes of the element the last [`StreamEvent::Element`] came
    /// from, exactly as received; empty otherwise.
    pub fn last_element_bytes(&self) -> &[u8] {
        &self.last_raw
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The most recent stream header parsed since the last [`reset`](Self::reset).
    pub fn header(&self) -> Option<&StreamHeader> {
        self.last_header.as_ref()
    }

    /// Appends received bytes. Never fails: problems are reported by
    /// [`next_event`](Self::next_event). Bytes received after the stream closed or failed
    /// are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || self.phase == Phase::Closed {
            return;
        }
        // Drop consumed bytes once they are at least half the buffer, so the copying is
        // amortized over the bytes consumed.
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            let consumed = self.pos;
            self.buf.drain(..consumed);
            self.pos = 0;
            self.scan -= consumed;
            if let Some(token) = &mut self.token {
                token.start -= consumed;
            }
            if let Some(stanza) = &mut self.stanza {
                stanza.start -= consumed;
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next event, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] carrying the stream error condition to report (see the module
    /// documentation for which input gives which condition). Once an error is returned,
    /// every later call returns it again.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, ParseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if let Some(event) = self.pending.pop_front() {
            return Ok(Some(event));
        }
        match self.step() {
            Ok(event) => Ok(event),
            Err(error) => {
                self.failed = Some(error.clone());
                self.buf = Vec::new();
                Err(error)
            }
        }
    }

    /// Forgets all state, including unconsumed bytes: a new stream header is expected
    /// next (after STARTTLS, RFC 6120 §5.4.3.3, or SASL success, §6.4.6). Dropping the
    /// bytes matters after STARTTLS, where anything that arrived in plaintext behind
    /// `<proceed/>` must not be taken as part of the encrypted stream.
    pub fn reset(&mut self) {
        *self = StreamParser {
            observe: self.observe,
            ..StreamParser::new(self.limits)
        };
    }

    fn step(&mut self) -> Result<Option<StreamEvent>, ParseError> {
        loop {
            if self.phase == Phase::Closed {
                self.pos = self.buf.len();
                self.scan = self.pos;
                return Ok(None);
            }
            // Never look further than one byte past the size limit of the unit being
            // received: errors then come in byte order, however the input was chunked.
            let window = self.window_end();
            if let Some(token) = self.token {
                let Some(end) = self.scan_token(token, window)? else {
                    self.check_size()?;
                    return Ok(None);
                };
                self.token = None;
                self.check_size_until(end, token.start)?;
                if let Some(event) = self.finish_token(token, end)? {
                    return Ok(Some(event));
                }
                continue;
            }
            if self.stanza.is_some() {
                // Character data inside a stanza: skip to the next markup.
                match memchr(b'<', &self.buf[self.scan..window]) {
                    Some(offset) => self.scan += offset,
                    None => {
                        self.scan = window;
                        self.check_size()?;
                        return Ok(None);
                    }
                }
            } else {
                // Between first-level elements (or before the header): whitespace only.
                if !self.bom_checked {
                    // XML 1.0 §4.3.3 allows a UTF-8 byte order mark as the very first bytes.
                    let rest = &self.buf[self.scan..];
                    if rest.len() < BOM.len() && BOM.starts_with(rest) {
                        return Ok(None);
                    }
                    if rest.starts_with(BOM) {
                        self.scan += BOM.len();
                        self.pos = self.scan;
                    }
                    self.bom_checked = true;
                }
                let rest = &self.buf[self.scan..];
                let skip = rest.iter().take_while(|b| is_xml_space(**b)).count();
                self.scan += skip;
                self.pos = self.scan;
                if self.scan == self.buf.len() {
                    return Ok(None);
                }
                if self.buf[self.scan] != b'<' {
                    return match self.stray_text_error() {
                        Some(error) => Err(error),
                        None => Ok(None),
                    };
                }
            }
            match self.classify()? {
                Some(token) => {
                    self.token = Some(token);
                    self.check_size()?;
                }
                None => return Ok(None),
            }
        }
    }

    /// The error for non-whitespace outside any element, or `None` if it is the start of a
    /// multi-byte character that has not fully arrived.
    fn stray_text_error(&self) -> Option<ParseError> {
        let rest = &self.buf[self.scan..];
        if rest[0] >= 0x80 {
            let head = &rest[..rest.len().min(4)];
            if let Err(error) = std::str::from_utf8(head)
                && error.valid_up_to() == 0
            {
                // An incomplete sequence at the end may still become a valid character.
                return error.error_len().map(|_| {
                    ParseError::new(StreamErrorCondition::UnsupportedEncoding, "invalid UTF-8")
                });
            }
        }
        Some(match self.phase {
            Phase::Prolog => not_well_formed("character data before the stream header"),
            _ => ParseError::new(
                StreamErrorCondition::BadFormat,
                "character data between first-level elements",
            ),
        })
    }

    /// Decides what markup starts at `self.scan` (a `<`); `None` if too few bytes arrived.
    fn classify(&mut self) -> Result<Option<Token>, ParseError> {
        let rest = &self.buf[self.scan..];
        let Some(&second) = rest.get(1) else {
            return Ok(None);
        };
        let start = self.scan;
        let token = |kind| Token {
            kind,
            start,
            quote: None,
        };
        let (token, skip) = match second {
            b'/' => (token(TokenKind::EndTag), 2),
            b'?' => {
                let declaration_allowed =
                    self.phase == Phase::Prolog && !self.decl_seen && self.stanza.is_none();
                if declaration_allowed {
                    let Some(head) = rest.get(..6) else {
                        return if b"<?xml".starts_with(rest) {
                            Ok(None)
                        } else {
                            Err(restricted("processing instruction"))
                        };
                    };
                    if &head[..5] == b"<?xml" && is_xml_space(head[5]) {
                        (token(TokenKind::XmlDecl), 6)
                    } else {
                        return Err(restricted("processing instruction"));
                    }
                } else if rest.len() >= 6 && &rest[..5] == b"<?xml" && is_xml_space(rest[5]) {
                    return Err(restricted("XML declaration inside the stream"));
                } else {
                    return Err(restricted("processing instruction"));
                }
            }
            b'!' => {
                let Some(&third) = rest.get(2) else {
                    return Ok(None);
                };
                match third {
                    b'-' => return Err(restricted("comment")),
                    b'[' => {
                        let Some(head) = rest.get(..9) else {
                            return if b"<![CDATA[".starts_with(rest) {
                                Ok(None)
                            } else {
                                Err(not_well_formed("invalid markup '<!['"))
                            };
                        };
                        if head != b"<![CDATA[" {
                            return Err(not_well_formed("invalid markup '<!['"));
                        }
                        if self.stanza.is_none() {
                            return Err(match self.phase {
                                Phase::Prolog => not_well_formed("CDATA before the stream header"),
                                _ => ParseError::new(
                                    StreamErrorCondition::BadFormat,
                                    "CDATA between first-level elements",
                                ),
                            });
                        }
                        (token(TokenKind::CData), 9)
                    }
                    _ => return Err(restricted("document type or markup declaration")),
                }
            }
            _ => (token(TokenKind::StartTag), 1),
        };
        self.scan += skip;
        Ok(Some(token))
    }

    /// Scans for the end of `token` in `buf[self.scan..window]`.
    fn scan_token(&mut self, mut token: Token, window: usize) -> Result<Option<usize>, ParseError> {
        let mut found = None;
        let mut index = self.scan;
        let buf = &self.buf[..window];
        match token.kind {
            TokenKind::StartTag => {
                while index < buf.len() {
                    let byte = buf[index];
                    match token.quote {
                        Some(quote) if byte == quote => token.quote = None,
                        Some(_) => {}
                        None => match byte {
                            b'"' | b'\'' => token.quote = Some(byte),
                            b'>' => {
                                found = Some(index + 1);
                                break;
                            }
                            b'<' => return Err(not_well_formed("'<' inside a tag")),
                            _ => {}
                        },
                    }
                    index += 1;
                }
            }
            TokenKind::EndTag => match buf[index..].iter().position(|b| *b == b'>' || *b == b'<') {
                Some(offset) if buf[index + offset] == b'>' => found = Some(index + offset + 1),
                Some(_) => return Err(not_well_formed("'<' inside an end tag")),
                None => index = buf.len(),
            },
            TokenKind::XmlDecl | TokenKind::CData => {
                // The opening (`<?xml ` or `<![CDATA[`) was skipped by `classify`; every
                // `>` before `index` was already found not to end the token.
                let (terminator, min_len): (&[u8], usize) = if token.kind == TokenKind::XmlDecl {
                    (b"?>", 8)
                } else {
                    (b"]]>", 12)
                };
                let mut from = index;
                loop {
                    match memchr(b'>', &buf[from..]) {
                        Some(offset) => {
                            let end = from + offset + 1;
                            if end - token.start >= min_len && buf[..end].ends_with(terminator) {
                                found = Some(end);
                                break;
                            }
                            if token.kind == TokenKind::XmlDecl {
                                return Err(not_well_formed("'>' inside the XML declaration"));
                            }
                            from = end;
                        }
                        None => {
                            index = buf.len();
                            break;
                        }
                    }
                }
            }
        }
        match found {
            Some(end) => {
                self.scan = end;
                Ok(Some(end))
            }
            None => {
                self.scan = index;
                self.token = Some(token);
                Ok(None)
            }
        }
    }

    /// The start of the unit (stanza, header or declaration) being received.
    /// The end of the bytes the scanner may look at: one past the size limit of the
    /// unit being received, or everything between units.
    fn window_end(&self) -> usize {
        match self.unit_start() {
            Some(start) => self.buf.len().min(
                start
                    .saturating_add(self.limits.max_stanza_bytes)
                    .saturating_add(1),
            ),
            None => self.buf.len(),
        }
    }

    fn unit_start(&self) -> Option<usize> {
        self.stanza
            .as_ref()
            .map(|stanza| stanza.start)
            .or(self.token.map(|token| token.start))
    }

    fn check_size(&self) -> Result<(), ParseError> {
        match self.unit_start() {
            Some(start) => self.check_size_until(self.scan, start),
            None => Ok(()),
        }
    }

    fn check_size_until(&self, end: usize, token_start: usize) -> Result<(), ParseError> {
        let start = self
            .stanza
            .as_ref()
            .map_or(token_start, |stanza| stanza.start);
        let len = end - start;
        if len > self.limits.max_stanza_bytes {
            return Err(ParseError::new(
                StreamErrorCondition::PolicyViolation,
                format!("element exceeds {} bytes", self.limits.max_stanza_bytes),
            ));
        }
        Ok(())
    }

    /// Handles a complete token `buf[token.start..end]`.
    fn finish_token(
        &mut self,
        token: Token,
        end: usize,
    ) -> Result<Option<StreamEvent>, ParseError> {
        let bytes = &self.buf[token.start..end];
        match token.kind {
            TokenKind::XmlDecl => {
                check_declaration(bytes)?;
                self.decl_seen = true;
                self.pos = end;
                Ok(None)
            }
            TokenKind::CData => Ok(None),
            TokenKind::StartTag => {
                let empty = bytes.len() >= 3 && bytes[bytes.len() - 2] == b'/';
                if self.phase == Phase::Prolog {
                    let (header, qname) = parse_header(bytes, self.limits.max_attributes)?;
                    self.header = HeaderContext {
                        raw: bytes.to_vec(),
                        qname,
                    };
                    self.phase = Phase::Open;
                    self.pos = end;
                    self.last_header = Some(header.clone());
                    if empty {
                        self.phase = Phase::Closed;
                        self.pending.push_back(StreamEvent::End);
                    }
                    return Ok(Some(StreamEvent::Header(header)));
                }
                // RFC 6120 §4.3.3: a stream header comes only at a restart, and the caller
                // resets the parser then; inside the stream it is a first-level element no
                // stream carries (§4.9.3.21).
                if self.stanza.is_none() && tag_qname(bytes) == self.header.qname.as_slice() {
                    return Err(ParseError::new(
                        StreamErrorCondition::UnsupportedStanzaType,
                        "a second stream header where no restart is due",
                    ));
                }
                let stanza = self.stanza.get_or_insert(OpenStanza {
                    start: token.start,
                    depth: 0,
                    names: Vec::new(),
                });
                if stanza.depth + 1 > self.limits.max_depth {
                    return Err(ParseError::new(
                        StreamErrorCondition::PolicyViolation,
                        format!("elements nested deeper than {}", self.limits.max_depth),
                    ));
                }
                if !empty {
                    stanza.depth += 1;
                    stanza.names.push(tag_qname(bytes).to_vec());
                }
                if stanza.depth == 0 {
                    return self.finish_stanza(end).map(Some);
                }
                Ok(None)
            }
            TokenKind::EndTag => match (self.phase, &mut self.stanza) {
                (Phase::Prolog, _) => Err(not_well_formed("end tag before the stream header")),
                (_, Some(stanza)) => {
                    let closing = tag_qname(bytes);
                    let open = stanza.names.pop().unwrap_or_default();
                    if closing != open.as_slice() {
                        return Err(not_well_formed(format!(
                            "expected </{}>, but </{}> was found",
                            String::from_utf8_lossy(&open),
                            String::from_utf8_lossy(closing)
                        )));
                    }
                    stanza.depth -= 1;
                    if stanza.depth == 0 {
                        return self.finish_stanza(end).map(Some);
                    }
                    Ok(None)
                }
                (_, None) => {
                    let name = trim_xml_space_end(&bytes[2..bytes.len() - 1]);
                    if name != self.header.qname.as_slice() {
                        return Err(not_well_formed(format!(
                            "end tag '{}' does not close the stream",
                            String::from_utf8_lossy(name)
                        )));
                    }
                    self.phase = Phase::Closed;
                    self.pos = end;
                    Ok(Some(StreamEvent::End))
                }
            },
        }
    }

    fn finish_stanza(&mut self, end: usize) -> Result<StreamEvent, ParseError> {
        let stanza = self.stanza.take().expect("a stanza is open");
        let bytes = &self.buf[stanza.start..end];
        let element = parse_stanza(
            &self.header.raw,
            bytes,
            !self.observe,
            self.limits.max_attributes,
        )?;
        if self.observe {
            self.last_raw = bytes.to_vec();
        }
        self.pos = end;
        Ok(StreamEvent::Element(element))
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|byte| *byte == needle)
}

fn is_xml_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_xml_space_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., last] = bytes {
        if !is_xml_space(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// Whether `c` matches XML 1.0's `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

fn check_chars(text: &str) -> Result<(), ParseError> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(not_well_formed(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

fn is_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// Checks that `qname` is `NCName` or `NCName:NCName` (Namespaces in XML 1.0 §4).
fn check_qname(qname: &[u8]) -> Result<&str, ParseError> {
    let name = std::str::from_utf8(qname).map_err(|_| {
        ParseError::new(
            StreamErrorCondition::UnsupportedEncoding,
            "invalid UTF-8 in a name",
        )
    })?;
    let valid = match name.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(name),
    };
    if valid {
        Ok(name)
    } else {
        Err(not_well_formed(format!("invalid name '{name}'")))
    }
}

fn check_utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes)
        .map_err(|_| ParseError::new(StreamErrorCondition::UnsupportedEncoding, "invalid UTF-8"))
}

fn xml_error(error: quick_xml::Error) -> ParseError {
    let condition = match &error {
        quick_xml::Error::Encoding(_) => StreamErrorCondition::UnsupportedEncoding,
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(..)) => {
            StreamErrorCondition::RestrictedXml
        }
        quick_xml::Error::Namespace(NamespaceError::UnknownPrefix(_)) => {
            StreamErrorCondition::BadNamespacePrefix
        }
        _ => StreamErrorCondition::NotWellFormed,
    };
    ParseError::new(condition, error.to_string())
}

fn escape_error(error: EscapeError) -> ParseError {
    xml_error(quick_xml::Error::Escape(error))
}

fn reader(input: &[u8]) -> NsReader<&[u8]> {
    let mut reader = NsReader::from_reader(input);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.allow_unmatched_ends = false;
    config.allow_dangling_amp = false;
    reader
}

/// Checks an XML declaration: well-formed, and UTF-8 if it names an encoding (§11.6).
fn check_declaration(bytes: &[u8]) -> Result<(), ParseError> {
    check_chars(check_utf8(bytes)?)?;
    let mut reader = reader(bytes);
    match reader.read_event().map_err(xml_error)? {
        Event::Decl(decl) => {
            decl.version().map_err(xml_error)?;
            match decl.encoding() {
                None => Ok(()),
                Some(Ok(encoding)) if encoding.eq_ignore_ascii_case(b"utf-8") => Ok(()),
                Some(Ok(encoding)) => Err(ParseError::new(
                    StreamErrorCondition::UnsupportedEncoding,
                    format!("encoding '{}'", String::from_utf8_lossy(&encoding)),
                )),
                Some(Err(error)) => Err(not_well_formed(error.to_string())),
            }
        }
        _ => Err(not_well_formed("invalid XML declaration")),
    }
}

/// An attribute of a start tag, with its qualified name and decoded value.
struct RawAttr<'a> {
    qname: QName<'a>,
    value: String,
}

/// Reads and decodes the attributes of `start`: value normalization (XML 1.0 §3.3.3),
/// predefined and numeric references only, legal characters only.
fn read_attributes<'a>(
    start: &'a BytesStart<'a>,
    max_attributes: usize,
) -> Result<Vec<RawAttr<'a>>, ParseError> {
    check_attribute_separation(start.attributes_raw())?;
    let mut attributes = start.attributes();
    attributes.with_checks(true);
    let mut out = Vec::new();
    for attribute in attributes {
        if out.len() == max_attributes {
            // Before the duplicate check of the next one, whose cost grows with `out`.
            return Err(ParseError::new(
                StreamErrorCondition::PolicyViolation,
                format!("an element with more than {max_attributes} attributes"),
            ));
        }
        let attribute = attribute.map_err(|error| xml_error(error.into()))?;
        check_qname(attribute.key.as_ref())?;
        let raw = check_utf8(&attribute.value)?;
        if raw.contains('<') {
            return Err(not_well_formed("'<' in an attribute value"));
        }
        let normalized = normalize_attribute_whitespace(raw);
        let value = unescape(&normalized).map_err(escape_error)?.into_owned();
        check_chars(&value)?;
        if value.is_empty() && attribute.key.as_ref().starts_with(b"xmlns:") {
            // Namespaces in XML 1.0 §3 (NSC: No Prefix Undeclaring).
            return Err(not_well_formed("a namespace prefix cannot be undeclared"));
        }
        out.push(RawAttr {
            qname: attribute.key,
            value,
        });
    }
    Ok(out)
}

/// XML 1.0 §3.1 requires whitespace between attributes (`a='1'b='2'` is not allowed),
/// which quick-xml does not check.
fn check_attribute_separation(raw: &[u8]) -> Result<(), ParseError> {
    let mut quote = None;
    for (index, &byte) in raw.iter().enumerate() {
        match quote {
            Some(open) if byte == open => {
                quote = None;
                if let Some(&next) = raw.get(index + 1)
                    && !is_xml_space(next)
                    && next != b'/'
                {
                    return Err(not_well_formed("missing whitespace between attributes"));
                }
            }
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None => {}
        }
    }
    Ok(())
}

/// Attribute-value normalization for CDATA attributes: each literal whitespace character
/// (with `\r\n` counting as one) becomes a space; references are untouched.
fn normalize_attribute_whitespace(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push(' ');
            }
            '\n' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn is_namespace_declaration(qname: QName<'_>) -> bool {
    let name = qname.as_ref();
    name == b"xmlns" || name.starts_with(b"xmlns:")
}

/// Parses the opening stream tag; returns the header and the tag's qualified name.
fn parse_header(
    bytes: &[u8],
    max_attributes: usize,
) -> Result<(StreamHeader, Vec<u8>), ParseError> {
    check_utf8(bytes)?;
    let mut reader = reader(bytes);
    let (resolved, event) = reader.read_resolved_event().map_err(xml_error)?;
    let resolved = owned_namespace(resolved)?;
    let start = match event {
        Event::Start(start) | Event::Empty(start) => start,
        _ => return Err(not_well_formed("invalid stream header")),
    };
    check_qname(start.name().as_ref())?;
    if start.local_name().as_ref() != b"stream" || resolved.as_deref() != Some(ns::STREAM) {
        return Err(ParseError::new(
            StreamErrorCondition::InvalidNamespace,
            format!(
                "root element '{}' is not 'stream' in namespace '{}'",
                String::from_utf8_lossy(start.name().as_ref()),
                ns::STREAM
            ),
        ));
    }
    let mut header = StreamHeader::new("");
    let mut content_ns = None;
    for attribute in read_attributes(&start, max_attributes)? {
        match attribute.qname.as_ref() {
            b"xmlns" => content_ns = Some(attribute.value),
            name if name.starts_with(b"xmlns:") => {
                if attribute.value == ns::DIALBACK {
                    header.dialback = true;
                }
            }
            b"from" => header.from = Some(attribute.value),
            b"to" => header.to = Some(attribute.value),
            b"id" => header.id = Some(attribute.value),
            b"version" => header.version = Some(attribute.value),
            b"xml:lang" => header.lang = Some(attribute.value),
            _ => {
                // Unknown attributes are ignored (RFC 6120 §4.7.1 lists the defined ones),
                // but their prefixes must still be bound.
                if let (ResolveResult::Unknown(prefix), _) =
                    reader.resolve_attribute(attribute.qname)
                {
                    return Err(unknown_prefix(&prefix));
                }
            }
        }
    }
    match content_ns.as_deref() {
        Some(ns::CLIENT | ns::SERVER) => {}
        other => {
            return Err(ParseError::new(
                StreamErrorCondition::InvalidNamespace,
                format!("unsupported content namespace {other:?}"),
            ));
        }
    }
    header.content_ns = content_ns.unwrap_or_default();
    Ok((header, start.name().as_ref().to_vec()))
}

fn unknown_prefix(prefix: &[u8]) -> ParseError {
    ParseError::new(
        StreamErrorCondition::BadNamespacePrefix,
        format!(
            "unbound namespace prefix '{}'",
            String::from_utf8_lossy(prefix)
        ),
    )
}

/// The namespace URI of a resolved element name (`None` for no namespace).
///
/// quick-xml resolves to the raw attribute value of the declaration, so references in it
/// (`xmlns='urn:a&amp;b'`) are decoded here.
fn owned_namespace(resolved: ResolveResult<'_>) -> Result<Option<String>, ParseError> {
    match resolved {
        ResolveResult::Bound(namespace) => {
            let raw = check_utf8(namespace.as_ref())?;
            let normalized = normalize_attribute_whitespace(raw);
            Ok(Some(
                unescape(&normalized).map_err(escape_error)?.into_owned(),
            ))
        }
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(unknown_prefix(&prefix)),
    }
}

/// Builds an element (without children) from a start tag.
fn element_from_start(
    reader: &NsReader<&[u8]>,
    resolved: Option<String>,
    start: &BytesStart<'_>,
    fold: bool,
    max_attributes: usize,
) -> Result<Element, ParseError> {
    check_qname(start.name().as_ref())?;
    if start
        .name()
        .prefix()
        .is_some_and(|prefix| prefix.as_ref() == b"xmlns")
    {
        // Namespaces in XML 1.0 §3: element names must not have the prefix xmlns.
        return Err(not_well_formed("element name with the prefix 'xmlns'"));
    }
    let namespace = match resolved {
        Some(uri) if fold && (uri == ns::CLIENT || uri == ns::SERVER) => ns::CLIENT.to_string(),
        Some(uri) => uri,
        None => String::new(),
    };
    let local = check_utf8(start.local_name().as_ref())?.to_string();
    let mut element = Element::new(local, namespace);
    // Expanded names (namespace, local name) of the prefixed attributes seen so far.
    let mut qualified: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for attribute in read_attributes(start, max_attributes)? {
        if is_namespace_declaration(attribute.qname) {
            continue;
        }
        let name = match attribute.qname.prefix() {
            None => check_utf8(attribute.qname.as_ref())?.to_string(),
            Some(_) => {
                let (resolved, local) = reader.resolve_attribute(attribute.qname);
                let namespace = match resolved {
                    ResolveResult::Bound(namespace) => namespace.as_ref().to_vec(),
                    ResolveResult::Unknown(prefix) => return Err(unknown_prefix(&prefix)),
                    ResolveResult::Unbound => Vec::new(),
                };
                let expanded = (namespace, local.as_ref().to_vec());
                if qualified.contains(&expanded) {
                    // Namespaces in XML 1.0 §6.3 (NSC: Attributes Unique).
                    return Err(not_well_formed(
                        "two attributes with the same namespace and local name",
                    ));
                }
                qualified.push(expanded);
                if attribute.qname.as_ref().starts_with(b"xml:") {
                    check_utf8(attribute.qname.as_ref())?.to_string()
                } else {
                    check_utf8(local.as_ref())?.to_string()
                }
            }
        };
        // Attributes are stored by local name (`xml:*` by qualified name); a second
        // attribute with the same stored name (`a` and `p:a`) is dropped.
        if element.attr(&name).is_none() {
            element.attrs.push((name, attribute.value));
        }
    }
    Ok(element)
}

/// Parses one complete first-level element, with the stream header in front for prefixes.
/// Parses one first-level element; with `fold`, both content namespaces become
/// [`ns::CLIENT`].
fn parse_stanza(
    header: &[u8],
    stanza: &[u8],
    fold: bool,
    max_attributes: usize,
) -> Result<Element, ParseError> {
    check_utf8(stanza)?;
    let mut input = Vec::with_capacity(header.len() + stanza.len());
    input.extend_from_slice(header);
    input.extend_from_slice(stanza);
    let mut reader = reader(&input);
    match reader.read_event().map_err(xml_error)? {
        Event::Start(_) => {}
        _ => return Err(not_well_formed("stream header did not parse again")),
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut text = String::new();
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(xml_error)?;
        let resolved = match &event {
            Event::Start(_) | Event::Empty(_) => owned_namespace(resolved)?,
            _ => None,
        };
        let finished = match event {
            Event::Start(start) => {
                flush_text(&mut stack, &mut text)?;
                stack.push(element_from_start(
                    &reader,
                    resolved,
                    &start,
                    fold,
                    max_attributes,
                )?);
                None
            }
            Event::Empty(start) => {
                flush_text(&mut stack, &mut text)?;
                let element = element_from_start(&reader, resolved, &start, fold, max_attributes)?;
                match stack.last_mut() {
                    Some(parent) => {
                        parent.children.push(Node::Element(element));
                        None
                    }
                    None => Some(element),
                }
            }
            Event::End(_) => {
                flush_text(&mut stack, &mut text)?;
                let element = stack
                    .pop()
                    .ok_or_else(|| not_well_formed("unexpected end tag"))?;
                match stack.last_mut() {
                    Some(parent) => {
                        parent.children.push(Node::Element(element));
                        None
                    }
                    None => Some(element),
                }
            }
            Event::Text(raw) => {
                let content = raw.xml10_content().map_err(|e| xml_error(e.into()))?;
                if content.contains("]]>") {
                    return Err(not_well_formed("']]>' in character data"));
                }
                if stack.is_empty() {
                    return Err(not_well_formed("character data outside the element"));
                }
                text.push_str(&content);
                None
            }
            Event::CData(cdata) => {
                let content = cdata.xml10_content().map_err(|e| xml_error(e.into()))?;
                text.push_str(&content);
                None
            }
            Event::GeneralRef(reference) => {
                if let Some(c) = reference.resolve_char_ref().map_err(xml_error)? {
                    text.push(c);
                } else {
                    let name = reference.decode().map_err(|e| xml_error(e.into()))?;
                    match resolve_xml_entity(&name) {
                        Some(value) => text.push_str(value),
                        None => return Err(restricted(format!("entity reference '&{name};'"))),
                    }
                }
                None
            }
            Event::Comment(_) => return Err(restricted("comment")),
            Event::PI(_) | Event::Decl(_) => return Err(restricted("processing instruction")),
            Event::DocType(_) => return Err(restricted("document type declaration")),
            Event::Eof => return Err(not_well_formed("element ended early")),
        };
        if let Some(element) = finished {
            if reader.buffer_position() != input.len() as u64 {
                return Err(not_well_formed("unexpected data after the element"));
            }
            return Ok(element);
        }
    }
}

/// Appends the collected character data to the innermost open element.
fn flush_text(stack: &mut [Element], text: &mut String) -> Result<(), ParseError> {
    if text.is_empty() {
        return Ok(());
    }
    check_chars(text)?;
    if let Some(parent) = stack.last_mut() {
        parent.children.push(Node::Text(std::mem::take(text)));
    }
    Ok(())
}

/// A `<stream:error/>` element (RFC 6120 §4.9.2) with the defined condition and an
/// optional `<text/>`.
pub fn stream_error(condition: StreamErrorCondition, text: Option<&str>) -> Element {
    let mut error = Element::new("error", ns::STREAM)
        .with_child(Element::new(condition.as_str(), ns::STREAM_ERRORS));
    if let Some(text) = text {
        error = error.with_child(Element::new("text", ns::STREAM_ERRORS).with_text(text));
    }
    error
}

/// Reads a `<stream:error/>`: its condition and text. `None` if `el` is not a stream
/// error; a condition this crate does not know, or none at all, reads as
/// `undefined-condition`.
pub fn parse_stream_error(el: &Element) -> Option<(StreamErrorCondition, Option<String>)> {
    if !el.is("error", ns::STREAM) {
        return None;
    }
    let condition = el
        .elements()
        .filter(|child| child.ns == ns::STREAM_ERRORS && child.name != "text")
        .find_map(|child| child.name.parse().ok())
        .unwrap_or(StreamErrorCondition::UndefinedCondition);
    Some((condition, el.child_text("text", ns::STREAM_ERRORS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

    fn parse_all(input: &[u8]) -> (Vec<StreamEvent>, Option<ParseError>) {
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(input);
        let mut events = Vec::new();
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return (events, None),
                Err(error) => return (events, Some(error)),
            }
        }
    }

    fn error_of(input: &str) -> StreamErrorCondition {
        match parse_all(input.as_bytes()) {
            (_, Some(error)) => error.condition,
            (events, None) => panic!("no error for {input:?}: {events:?}"),
        }
    }

    fn elements_of(input: &str) -> Vec<Element> {
        let (events, error) = parse_all(input.as_bytes());
        assert_eq!(error, None, "{input}");
        events
            .into_iter()
            .filter_map(|event| match event {
                StreamEvent::Element(element) => Some(element),
                _ => None,
            })
            .collect()
    }

    fn one_element(body: &str) -> Element {
        let elements = elements_of(&format!("{HEADER}{body}"));
        assert_eq!(elements.len(), 1, "{body}");
        elements.into_iter().next().expect("one element")
    }

    #[test]
    fn header_elements_and_end() {
        let input = format!(
            "{HEADER}<message to='juliet@example.com'><body>hi</body></message> \n\
             <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>\
             </stream:stream>"
        );
        let (events, error) = parse_all(input.as_bytes());
        assert_eq!(error, None);
        assert_eq!(events.len(), 4);
        let StreamEvent::Header(header) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(header.to.as_deref(), Some("example.com"));
        assert_eq!(header.version.as_deref(), Some("1.0"));
        assert_eq!(header.content_ns, ns::CLIENT);
        assert!(!header.dialback);
        assert_eq!(
            events[1],
            StreamEvent::Element(
                Element::new("message", ns::CLIENT)
                    .with_attr("to", "juliet@example.com")
                    .with_child(Element::new("body", ns::CLIENT).with_text("hi"))
            )
        );
        assert_eq!(
            events[2],
            StreamEvent::Element(
                Element::new("features", ns::STREAM).with_child(Element::new("starttls", ns::TLS))
            )
        );
        assert_eq!(events[3], StreamEvent::End);
    }

    #[test]
    fn an_element_cut_short_is_closed_with_the_end_tags_it_lacks() {
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(HEADER.as_bytes());
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        assert_eq!(parser.cut_short(), None);
        parser.feed(b"<message to='a@b'><body>Half a mes");
        assert_eq!(parser.next_event(), Ok(None));
        let cut = parser.cut_short().expect("cut in text");
        assert_eq!(
            cut.child_text("body", ns::CLIENT).as_deref(),
            Some("Half a mes")
        );
        parser.feed(b"sage</body><th");
        assert_eq!(parser.next_event(), Ok(None));
        assert_eq!(parser.cut_short(), None, "cut inside a tag");
    }

    #[test]
    fn a_second_stream_header_is_refused_but_a_nested_stream_element_is_not() {
        let second = format!("{HEADER}<message/>{}", &HEADER[21..]);
        assert_eq!(
            error_of(&second),
            StreamErrorCondition::UnsupportedStanzaType
        );
        // Only a first-level element: deeper, `stream:stream` is an ordinary child.
        let nested = one_element(
            "<message><stream:stream xmlns:stream='http://etherx.jabber.org/streams'/></message>",
        );
        assert_eq!(nested.name, "message");
    }

    #[test]
    fn header_round_trip_and_server_streams() {
        let header = StreamHeader {
            from: Some("a.test".into()),
            to: Some("b'.test".into()),
            id: Some("s1".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            content_ns: ns::SERVER.into(),
            dialback: true,
        };
        let mut out = Vec::new();
        header.write_to(&mut out);
        let text = String::from_utf8(out.clone()).expect("utf-8");
        assert!(text.starts_with(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
             xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
             from='a.test' to='b&apos;.test'"
        ));
        out.extend_from_slice(
            b"<db:result from='a.test' to='b.test'>k</db:result><iq type='get' id='1'/>",
        );
        out.extend_from_slice(STREAM_CLOSE.as_bytes());
        let (events, error) = parse_all(&out);
        assert_eq!(error, None);
        assert_eq!(events[0], StreamEvent::Header(header));
        assert_eq!(
            events[1],
            StreamEvent::Element(
                Element::new("result", ns::DIALBACK)
                    .with_attr("from", "a.test")
                    .with_attr("to", "b.test")
                    .with_text("k")
            )
        );
        let StreamEvent::Element(iq) = &events[2] else {
            panic!()
        };
        assert_eq!(
            iq.ns,
            ns::CLIENT,
            "jabber:server stanzas are stored as jabber:client"
        );
        assert_eq!(events[3], StreamEvent::End);
    }

    #[test]
    fn chunked_input_gives_the_same_events() {
        let input = format!(
            "{HEADER}<message xml:lang='en'><body>caf\u{e9} &amp; &#x263A; <![CDATA[<raw>]]></body></message>\
             <iq type='get' id='x'><query xmlns='jabber:iq:roster'/></iq></stream:stream>"
        );
        let (whole, error) = parse_all(input.as_bytes());
        assert_eq!(error, None);
        let mut parser = StreamParser::new(Limits::default());
        let mut events = Vec::new();
        for byte in input.as_bytes() {
            parser.feed(std::slice::from_ref(byte));
            while let Some(event) = parser.next_event().expect("valid") {
                events.push(event);
            }
        }
        assert_eq!(events, whole);
        let StreamEvent::Element(message) = &whole[1] else {
            panic!()
        };
        assert_eq!(message.attr("xml:lang"), Some("en"));
        assert_eq!(
            message.child_text("body", ns::CLIENT).as_deref(),
            Some("caf\u{e9} & \u{263A} <raw>")
        );
    }

    #[test]
    fn an_observer_keeps_namespaces_and_bytes_as_written() {
        let header = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                      xmlns:db='jabber:server:dialback' from='a.test' to='b.test' version='1.0'>";
        let right = "<message from='x@a.test' to='y@b.test'><body>hi</body></message>";
        let wrong = "<message xmlns='jabber:client' from='x@a.test' to='y@b.test'/>";
        let mut observer = StreamParser::observer(Limits::default());
        let mut participant = StreamParser::new(Limits::default());
        for parser in [&mut observer, &mut participant] {
            parser.feed(header.as_bytes());
            parser.feed(right.as_bytes());
            parser.feed(wrong.as_bytes());
            assert!(matches!(
                parser.next_event(),
                Ok(Some(StreamEvent::Header(_)))
            ));
        }
        let Ok(Some(StreamEvent::Element(first))) = observer.next_event() else {
            panic!("an element")
        };
        assert_eq!(first.ns, ns::SERVER);
        assert_eq!(first.child_text("body", ns::SERVER).as_deref(), Some("hi"));
        assert_eq!(observer.last_element_bytes(), right.as_bytes());
        let Ok(Some(StreamEvent::Element(second))) = observer.next_event() else {
            panic!("an element")
        };
        assert_eq!(second.ns, ns::CLIENT, "the wrong namespace shows");
        assert_eq!(observer.last_element_bytes(), wrong.as_bytes());
        observer.reset();
        observer.feed(header.as_bytes());
        observer.feed(right.as_bytes());
        observer.next_event().unwrap();
        let Ok(Some(StreamEvent::Element(again))) = observer.next_event() else {
            panic!("an element")
        };
        assert_eq!(again.ns, ns::SERVER, "reset keeps observer mode");
        // A participant folds both content namespaces, as it has to.
        for _ in 0..2 {
            let Ok(Some(StreamEvent::Element(folded))) = participant.next_event() else {
                panic!("an element")
            };
            assert_eq!(folded.ns, ns::CLIENT);
        }
        assert!(participant.last_element_bytes().is_empty());
    }

    #[test]
    fn namespaces_resolve_by_uri() {
        let element = one_element(
            "<x:iq xmlns:x='jabber:client' xmlns:p='urn:p' type='get'>\
             <p:query p:attr='1' plain='2'><item xmlns='urn:q'/></p:query></x:iq>",
        );
        assert_eq!(element.name, "iq");
        assert_eq!(element.ns, ns::CLIENT);
        assert_eq!(element.attrs, vec![("type".to_string(), "get".to_string())]);
        let query = element.child("query", "urn:p").expect("query");
        assert_eq!(
            query.attrs,
            vec![
                ("attr".to_string(), "1".to_string()),
                ("plain".to_string(), "2".to_string())
            ]
        );
        assert!(query.child("item", "urn:q").is_some());
        let same_local = one_element("<a xmlns:p='urn:p' x='1' p:x='2' xml:lang='en'/>");
        assert_eq!(
            same_local.attrs,
            vec![
                ("x".to_string(), "1".to_string()),
                ("xml:lang".to_string(), "en".to_string())
            ]
        );
        let escaped = one_element("<a xmlns='jabber&#58;server'/>");
        assert_eq!(escaped.ns, ns::CLIENT);
        let unset = one_element("<x xmlns=''><y/></x>");
        assert_eq!(unset.ns, "");
        assert_eq!(unset.elements().next().map(|y| y.ns.as_str()), Some(""));
    }

    #[test]
    fn whitespace_keepalives_and_text_handling() {
        let elements = elements_of(&format!(
            "{HEADER} \n\t <presence/>\r\n <message><body>a\r\nb\rc</body></message>   "
        ));
        assert_eq!(elements.len(), 2);
        assert_eq!(
            elements[1].child_text("body", ns::CLIENT).as_deref(),
            Some("a\nb\nc")
        );
        let attr = one_element("<x xmlns='urn:x' a='1\n2\t3\r\n4&#xA;&#9;&#xD;'/>");
        assert_eq!(attr.attr("a"), Some("1 2 3 4\n\t\r"));
        let spaces = one_element("<m><body>  </body></m>");
        assert_eq!(spaces.child_text("body", ns::CLIENT).as_deref(), Some("  "));
    }

    #[test]
    fn stream_level_errors() {
        use StreamErrorCondition as C;
        assert_eq!(
            error_of("<stream xmlns='jabber:client'>"),
            C::InvalidNamespace
        );
        assert_eq!(
            error_of("<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>"),
            C::InvalidNamespace
        );
        assert_eq!(
            error_of(
                "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='urn:x'>"
            ),
            C::InvalidNamespace
        );
        assert_eq!(
            error_of("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"),
            C::InvalidNamespace
        );
        assert_eq!(
            error_of("<stream:stream xmlns='jabber:client'>"),
            C::BadNamespacePrefix
        );
        assert_eq!(error_of("hello"), C::NotWellFormed);
        assert_eq!(error_of(&format!("{HEADER}hello")), C::BadFormat);
        assert_eq!(error_of(&format!("{HEADER}<![CDATA[x]]>")), C::BadFormat);
        assert_eq!(error_of(&format!("{HEADER}</wrong>")), C::NotWellFormed);
        assert_eq!(error_of("</stream:stream>"), C::NotWellFormed);
    }

    #[test]
    fn restricted_xml() {
        use StreamErrorCondition as C;
        for body in [
            "<!-- hi -->",
            "<m><!-- hi --></m>",
            "<?pi x?>",
            "<m><?pi x?></m>",
            "<m>&custom;</m>",
            "<m a='&custom;'/>",
            "<?xml version='1.0'?>",
        ] {
            assert_eq!(
                error_of(&format!("{HEADER}{body}")),
                C::RestrictedXml,
                "{body}"
            );
        }
        assert_eq!(
            error_of("<!DOCTYPE stream><stream:stream/>"),
            C::RestrictedXml
        );
        assert_eq!(error_of("<?xml-stylesheet href='x'?>"), C::RestrictedXml);
        assert_eq!(
            error_of("<?xml version='1.0'?><?xml version='1.0'?>"),
            C::RestrictedXml
        );
    }

    #[test]
    fn encodings() {
        use StreamErrorCondition as C;
        assert_eq!(
            error_of("<?xml version='1.0' encoding='ISO-8859-1'?>"),
            C::UnsupportedEncoding
        );
        let (events, error) = parse_all(
            format!("<?xml version='1.0' encoding='utf-8'?>{}", &HEADER[21..]).as_bytes(),
        );
        assert_eq!(error, None);
        assert_eq!(events.len(), 1);
        let mut bad = HEADER.as_bytes().to_vec();
        bad.extend_from_slice(b"<m><body>\xff</body></m>");
        assert_eq!(
            parse_all(&bad).1.map(|e| e.condition),
            Some(C::UnsupportedEncoding)
        );
        let mut bad = HEADER.as_bytes().to_vec();
        bad.extend_from_slice(b"\xc3\x28");
        assert_eq!(
            parse_all(&bad).1.map(|e| e.condition),
            Some(C::UnsupportedEncoding)
        );
        // A byte order mark is allowed at the very start.
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(HEADER.as_bytes());
        assert_eq!(parse_all(&bom).1, None);
    }

    #[test]
    fn mismatched_end_tag_is_caught_when_it_arrives() {
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        // The stanza is not complete by depth count, yet the error is already certain.
        parser.feed(b"<message><body>oops</message>");
        let error = parser.next_event().unwrap_err();
        assert_eq!(error.condition, StreamErrorCondition::NotWellFormed);
    }

    #[test]
    fn malformed_xml() {
        use StreamErrorCondition as C;
        for body in [
            "<a></b>",
            "<a><b></a></b>",
            "<a b='1' b='2'/>",
            "<a b=1/>",
            "<a b/>",
            "<a b='x<y'/>",
            "<a>x & y</a>",
            "<a>&#0;</a>",
            "<a>&#x1;</a>",
            "<a>\u{1}</a>",
            "<a b='&#1;'/>",
            "<1a/>",
            "<a:b:c xmlns:a='urn:a'/>",
            "<a>]]></a>",
            "<a <b/>",
            "</>",
            "<a b='1'c='2'/>",
            "<a xmlns:p=''/>",
            "<xmlns:a/>",
            "<p:a xmlns:p='urn:p' xmlns:q='urn:p' p:x='1' q:x='2'/>",
            "<a>&#xD800;</a>",
            "<a b='&#x110000;'/>",
            "<a b='&#X41;'/>",
            "<a>\u{FFFE}</a>",
            "<a></ a>",
        ] {
            assert_eq!(
                error_of(&format!("{HEADER}{body}")),
                C::NotWellFormed,
                "{body}"
            );
        }
        assert_eq!(error_of(&format!("{HEADER}<p:a/>")), C::BadNamespacePrefix);
        assert_eq!(
            error_of(&format!("{HEADER}<a p:x='1'/>")),
            C::BadNamespacePrefix
        );
    }

    #[test]
    fn limits() {
        // The header counts too, so it must fit: it is about 160 bytes.
        assert!(HEADER.len() < 256);
        let limits = Limits {
            max_stanza_bytes: 256,
            max_depth: 3,
            max_attributes: 4,
        };
        let run = |body: &str| {
            let mut parser = StreamParser::new(limits);
            parser.feed(HEADER.as_bytes());
            parser.feed(body.as_bytes());
            let mut result = Ok(None);
            for _ in 0..10 {
                result = parser.next_event();
                if !matches!(result, Ok(Some(_))) {
                    break;
                }
            }
            result
        };
        assert_eq!(run("<a><b><c/></b></a>"), Ok(None));
        assert_eq!(
            run("<a><b><c><d/></c></b></a>").map_err(|e| e.condition),
            Err(StreamErrorCondition::PolicyViolation)
        );
        assert_eq!(run("<a x='1' y='2' z='3' w='4'/>"), Ok(None));
        assert_eq!(
            run("<a x='1' y='2' z='3' w='4' v='5'/>").map_err(|e| e.condition),
            Err(StreamErrorCondition::PolicyViolation)
        );
        assert_eq!(
            run("<a><b xmlns:p='u' p:x='1' y='2' z='3' w='4'/></a>").map_err(|e| e.condition),
            Err(StreamErrorCondition::PolicyViolation),
            "namespace declarations count, at any depth"
        );
        let exact = format!("<a>{}</a>", "x".repeat(256 - 7));
        assert_eq!(exact.len(), 256);
        assert_eq!(run(&exact), Ok(None));
        let over = format!("<a>{}</a>", "x".repeat(256 - 6));
        assert_eq!(
            run(&over).map_err(|e| e.condition),
            Err(StreamErrorCondition::PolicyViolation)
        );
        // A stanza that never ends is caught as it arrives.
        let mut parser = StreamParser::new(limits);
        parser.feed(HEADER.as_bytes());
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        parser.feed(b"<a>");
        let mut result = Ok(None);
        for _ in 0..100 {
            parser.feed(b"xxxx");
            result = parser.next_event();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(
            result.map_err(|e| e.condition),
            Err(StreamErrorCondition::PolicyViolation)
        );
        // So is a start tag that never ends.
        let mut parser = StreamParser::new(limits);
        parser.feed(HEADER.as_bytes());
        parser.feed(b"<a b='");
        parser.feed(&[b'y'; 300]);
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        assert_eq!(
            parser.next_event().map_err(|e| e.condition),
            Err(StreamErrorCondition::PolicyViolation)
        );
    }

    #[test]
    fn errors_are_sticky_and_reset_starts_over() {
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(format!("{HEADER}<!--x-->").as_bytes());
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        let first = parser.next_event().unwrap_err();
        parser.feed(b"<presence/>");
        assert_eq!(parser.next_event().unwrap_err(), first);
        parser.reset();
        assert_eq!(parser.header(), None);
        parser.feed(HEADER.as_bytes());
        parser.feed(b"<presence/>");
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        assert!(parser.header().is_some());
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Element(_)))
        ));
    }

    #[test]
    fn reset_drops_unconsumed_bytes() {
        let mut parser = StreamParser::new(Limits::default());
        parser.feed(
            format!("{HEADER}<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><injected/>")
                .as_bytes(),
        );
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Element(_)))
        ));
        parser.reset();
        assert_eq!(parser.next_event(), Ok(None));
        parser.feed(HEADER.as_bytes());
        assert!(matches!(
            parser.next_event(),
            Ok(Some(StreamEvent::Header(_)))
        ));
        assert_eq!(parser.next_event(), Ok(None));
    }

    #[test]
    fn self_closing_header_and_input_after_end() {
        let (events, error) = parse_all(
            b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'/>",
        );
        assert_eq!(error, None);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1], StreamEvent::End);
        let (events, error) = parse_all(format!("{HEADER}</stream:stream ><garbage").as_bytes());
        assert_eq!(error, None);
        assert_eq!(events.last(), Some(&StreamEvent::End));
    }

    #[test]
    fn stream_errors_build_and_parse() {
        let error = stream_error(StreamErrorCondition::HostUnknown, Some("no such host"));
        assert_eq!(
            error.to_xml(ns::CLIENT),
            "<stream:error>\
             <host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></stream:error>"
        );
        assert_eq!(
            parse_stream_error(&error),
            Some((
                StreamErrorCondition::HostUnknown,
                Some("no such host".into())
            ))
        );
        let parsed = one_element(
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        );
        assert_eq!(
            parse_stream_error(&parsed),
            Some((StreamErrorCondition::Conflict, None))
        );
        assert_eq!(parse_stream_error(&Element::new("error", ns::CLIENT)), None);
        assert_eq!(
            parse_stream_error(&Element::new("error", ns::STREAM)),
            Some((StreamErrorCondition::UndefinedCondition, None))
        );
    }

    #[test]
    fn parse_error_display() {
        let error = ParseError::new(StreamErrorCondition::RestrictedXml, "comment");
        assert_eq!(error.to_string(), "restricted-xml: comment");
    }
}
