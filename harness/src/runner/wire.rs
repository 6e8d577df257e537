//! The federation link as observed on the wire (RFC 6120 §4, §8): the reference server's tap
//! gives the bytes of every server-to-server connection, both directions, exactly as they
//! crossed the socket; the harness parses them itself with an observer parser, which keeps
//! each stanza's namespace as written (a `jabber:client` stanza on a server stream shows,
//! RFC 6120 §4.8.3) and each element's bytes as sent. Federation checks and the report's link
//! lines come from here, never from what the reference server says it sent or understood.
//!
//! Over RVP the same holds for HTTP: each RVP server-to-server connection is decoded with
//! imfed-rvp's request and response decoders (requests flow from the side that opened it),
//! and a NOTIFY carrying a message or a property notification, or a SUBSCRIBE or
//! UNSUBSCRIBE, is a unit a federation check can count.
//!
//! Over SIP the tap gives each UDP datagram as one chunk and TCP bytes as they came; the
//! harness frames them with imfed-sip's codec (a TCP stream per direction, a datagram per
//! chunk), and a MESSAGE (a message) or a SUBSCRIBE, NOTIFY or PUBLISH (presence) is a unit
//! a federation check can count. A retransmission (a request again with a branch already
//! seen that way, RFC 3261 §17.1.2.2) is the same transaction and is not counted twice.
//!
//! The view is synced on demand: a check that concludes "not there" first syncs after its
//! deadline, and a failed sync is an error of the check (a blind observer), not silence.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use imfed_model::{Address, StanzaKind};
use imfed_xmpp::{Element, Limits, StreamEvent, StreamHeader, StreamParser};

use crate::control::{Control, TapPage};

/// Which way an element crossed, seen from the reference server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Received by the reference server: sent by its peer.
    In,
    /// Sent by the reference server.
    Out,
}

impl Dir {
    /// "in" or "out".
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// One unit seen on a server-to-server connection: a first-level XMPP element, or an RVP or
/// SIP request or response.
#[derive(Clone, Debug)]
pub struct WireElement {
    /// When its last byte crossed, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The tapped connection.
    pub conn: u64,
    /// Which way.
    pub dir: Dir,
    /// What it is.
    pub unit: WireUnit,
    /// Its bytes as sent.
    pub raw: String,
}

/// What crossed, decoded in its protocol's terms.
#[derive(Clone, Debug)]
pub enum WireUnit {
    /// An XMPP element.
    Xmpp {
        /// The header of the stream it was sent on (by the same side).
        header: Option<StreamHeader>,
        /// The element, namespaces as written.
        element: Element,
    },
    /// An RVP request or response.
    Rvp(RvpUnit),
    /// A SIP request or response.
    Sip(SipUnit),
}

/// A SIP request or response as a federation check sees it.
#[derive(Clone, Debug, Default)]
pub struct SipUnit {
    /// The method of a request (`MESSAGE`); `None` for a response.
    pub method: Option<String>,
    /// The status of a response.
    pub status: Option<u16>,
    /// A message (MESSAGE) or presence (SUBSCRIBE, NOTIFY, PUBLISH); `None` for anything
    /// else, responses and retransmissions included.
    pub kind: Option<StanzaKind>,
    /// The sender: the `From` AOR of a request, the `To` AOR of a response (it answers).
    pub from: Option<Address>,
    /// The recipient: the `To` AOR of a request, the `From` AOR of a response.
    pub to: Option<Address>,
    /// The text of a MESSAGE's `text/plain` body.
    pub body: Option<String>,
    /// The domains of the sender and of the recipient.
    pub ends: (String, String),
}

/// An RVP request or response as a federation check sees it.
#[derive(Clone, Debug, Default)]
pub struct RvpUnit {
    /// The method of a request (`NOTIFY`); `None` for a response.
    pub method: Option<String>,
    /// The status of a response.
    pub status: Option<u16>,
    /// A message (NOTIFY of `r:message`) or presence (NOTIFY of `r:propnotification`,
    /// SUBSCRIBE, UNSUBSCRIBE); `None` for anything else.
    pub kind: Option<StanzaKind>,
    /// The sender: `notification-from`, else the principal in `RVP-From-Principal`.
    pub from: Option<Address>,
    /// The recipient: `notification-to`, else the node the request targets.
    pub to: Option<Address>,
    /// The text of a message's MIME payload.
    pub body: Option<String>,
    /// The server that sent it and the one it went to (`RVP-From-Principal`'s host, `Host`).
    pub ends: (String, String),
}

impl WireElement {
    /// The content namespace of server-to-server streams (RFC 6120 §4.8.3).
    pub const CONTENT_NAMESPACE: &str = imfed_xmpp::ns::SERVER;

    fn address(element: &Element, attribute: &str) -> Option<Address> {
        element
            .attr(attribute)
            .and_then(|text| crate::driver::xmpp::parse_address(text).ok())
            .map(|address| address.bare())
    }

    /// The bare address of its sender.
    pub fn sender(&self) -> Option<Address> {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => Self::address(element, "from"),
            WireUnit::Rvp(unit) => unit.from.clone(),
            WireUnit::Sip(unit) => unit.from.clone(),
        }
    }

    /// The bare address of its recipient.
    pub fn recipient(&self) -> Option<Address> {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => Self::address(element, "to"),
            WireUnit::Rvp(unit) => unit.to.clone(),
            WireUnit::Sip(unit) => unit.to.clone(),
        }
    }

    /// The domains of the link it crossed as its sender wrote them: (sender's, receiver's).
    pub fn link_ends(&self) -> (String, String) {
        match &self.unit {
            WireUnit::Xmpp { header, .. } => {
                let header = header.as_ref();
                (
                    header.and_then(|h| h.from.clone()).unwrap_or_default(),
                    header.and_then(|h| h.to.clone()).unwrap_or_default(),
                )
            }
            WireUnit::Rvp(unit) => unit.ends.clone(),
            WireUnit::Sip(unit) => unit.ends.clone(),
        }
    }

    /// Its namespace as written (XMPP), for reports.
    pub fn namespace(&self) -> &str {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => &element.ns,
            WireUnit::Rvp(_) | WireUnit::Sip(_) => "",
        }
    }

    /// Whether it is from or to one of `accounts` (bare addresses).
    pub fn involves(&self, accounts: &[Address]) -> bool {
        [self.sender(), self.recipient()]
            .into_iter()
            .flatten()
            .any(|address| accounts.contains(&address))
    }

    /// Whether it is a stanza of `kind`.
    pub fn is(&self, kind: StanzaKind) -> bool {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => element.name == kind.as_str(),
            WireUnit::Rvp(unit) => unit.kind == Some(kind),
            WireUnit::Sip(unit) => unit.kind == Some(kind),
        }
    }

    /// Whether its `type` is `wanted` ("available" matches no type; a message without a
    /// type is "normal"). An RVP message is a conversation message ("chat"); other RVP
    /// requests have no type (a declared gap of the profile); so with a SIP MESSAGE.
    pub fn has_type(&self, wanted: &str) -> bool {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => {
                let default = if element.name == "presence" {
                    "available"
                } else {
                    "normal"
                };
                element.attr("type").unwrap_or(default) == wanted
            }
            WireUnit::Rvp(unit) => unit.kind == Some(StanzaKind::Message) && wanted == "chat",
            WireUnit::Sip(unit) => unit.kind == Some(StanzaKind::Message) && wanted == "chat",
        }
    }

    /// Its `<body/>`, in its own namespace; an RVP message's MIME text.
    pub fn body(&self) -> Option<String> {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => element.child_text("body", &element.ns),
            WireUnit::Rvp(unit) => unit.body.clone(),
            WireUnit::Sip(unit) => unit.body.clone(),
        }
    }

    /// Whether it is in the content namespace of server streams, as written (XMPP; RVP
    /// and SIP have no such rule).
    pub fn in_content_namespace(&self) -> bool {
        match &self.unit {
            WireUnit::Xmpp { element, .. } => element.ns == Self::CONTENT_NAMESPACE,
            WireUnit::Rvp(_) | WireUnit::Sip(_) => true,
        }
    }
}

/// Bytes on a connection that are not a valid XMPP stream.
#[derive(Clone, Debug)]
pub struct WireProblem {
    /// When.
    pub ts_ms: u64,
    /// The connection.
    pub conn: u64,
    /// Which way.
    pub dir: Dir,
    /// The parse error.
    pub detail: String,
}

/// How many elements the view keeps (the oldest go first).
const KEPT: usize = 200_000;

/// The parser state of one direction of one connection.
#[derive(Debug)]
struct Half {
    decoder: Decoder,
    failed: bool,
}

/// How one direction of a connection is decoded.
#[derive(Debug)]
enum Decoder {
    /// An XMPP stream.
    Xmpp {
        parser: StreamParser,
        header: Option<StreamHeader>,
    },
    /// RVP requests (the direction from the side that opened the connection).
    RvpRequests(imfed_rvp::RequestDecoder),
    /// RVP responses.
    RvpResponses(imfed_rvp::ResponseDecoder),
    /// SIP messages: a TCP stream, or datagrams one per chunk.
    Sip(imfed_sip::StreamDecoder),
}

/// Generous limits (as for RVP).
fn sip_limits() -> imfed_sip::Limits {
    imfed_sip::Limits {
        max_message: 16 * 1024 * 1024,
        max_headers: 1024,
        max_line: 1024 * 1024,
    }
}

/// Generous limits: the observer judges what crossed, it does not protect itself from a
/// peer the way a server must.
fn rvp_limits() -> imfed_rvp::Limits {
    imfed_rvp::Limits {
        max_head_bytes: 1024 * 1024,
        max_headers: 1024,
        max_body_bytes: 16 * 1024 * 1024,
    }
}

impl Half {
    fn new(conn: Option<&ConnInfo>, dir: Dir) -> Half {
        let decoder = match conn {
            Some(info) if info.protocol == LinkProtocol::Sip => {
                Decoder::Sip(imfed_sip::StreamDecoder::new(sip_limits()))
            }
            Some(info) if info.protocol == LinkProtocol::Rvp => {
                // Requests flow from the side that opened the connection.
                if (dir == Dir::Out) == info.opened_by_us {
                    Decoder::RvpRequests(imfed_rvp::RequestDecoder::new(rvp_limits()))
                } else {
                    Decoder::RvpResponses(imfed_rvp::ResponseDecoder::new(rvp_limits()))
                }
            }
            _ => Decoder::Xmpp {
                parser: StreamParser::observer(Limits {
                    max_stanza_bytes: 16 * 1024 * 1024,
                    max_depth: 256,
                    max_attributes: 4096,
                }),
                header: None,
            },
        };
        Half {
            decoder,
            failed: false,
        }
    }
}

/// The sender and recipient of a request.
type Ends = (Option<Address>, Option<Address>);

/// What a tapped connection carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkProtocol {
    Xmpp,
    Rvp,
    Sip,
}

/// What the tap says of a connection.
#[derive(Clone, Copy, Debug)]
struct ConnInfo {
    /// The reference server opened it.
    opened_by_us: bool,
    /// What it carries.
    protocol: LinkProtocol,
}

#[derive(Debug, Default)]
struct View {
    cursor: u64,
    conns: HashMap<u64, ConnInfo>,
    halves: HashMap<(u64, Dir), Half>,
    /// Per RVP connection, the sender and recipient of each request not yet answered, so
    /// that a response can be told apart in reports (HTTP/1.1 answers in order).
    pending: HashMap<u64, VecDeque<Ends>>,
    /// SIP requests seen, by way and transaction (branch and method), to tell a
    /// retransmission from a new request.
    sip_seen: std::collections::HashSet<(Dir, String, String)>,
    elements: VecDeque<WireElement>,
    problems: Vec<WireProblem>,
}

impl View {
    fn apply(&mut self, page: TapPage, since: u64) -> Result<(), String> {
        // Chunks after `since` that the server no longer has: the view would have a hole.
        if page.latest > since && page.first > since + 1 {
            return Err(format!(
                "the reference server's tap dropped chunks {} to {} before they were read",
                since + 1,
                page.first - 1
            ));
        }
        for conn in &page.connections {
            self.conns.insert(
                conn.id,
                ConnInfo {
                    opened_by_us: conn.opened_by == "out",
                    protocol: match conn.protocol.as_deref() {
                        Some("rvp") => LinkProtocol::Rvp,
                        Some("sip") => LinkProtocol::Sip,
                        _ => LinkProtocol::Xmpp,
                    },
                },
            );
        }
        for chunk in page.chunks {
            if chunk.seq <= self.cursor {
                continue; // another sync applied it already
            }
            self.cursor = chunk.seq;
            let dir = match chunk.dir.as_str() {
                "in" => Dir::In,
                "out" => Dir::Out,
                other => return Err(format!("tap chunk {}: direction {other:?}", chunk.seq)),
            };
            match chunk.kind.as_str() {
                "data" => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&chunk.data)
                        .map_err(|e| format!("tap chunk {}: {e}", chunk.seq))?;
                    self.feed(chunk.conn, dir, chunk.ts_ms, &bytes);
                }
                // TLS took over (RFC 6120 §5.4.3.3): new streams both ways.
                "tls" | "closed" => {
                    self.halves.remove(&(chunk.conn, Dir::In));
                    self.halves.remove(&(chunk.conn, Dir::Out));
                }
                other => return Err(format!("tap chunk {}: kind {other:?}", chunk.seq)),
            }
        }
        Ok(())
    }

    fn feed(&mut self, conn: u64, dir: Dir, ts_ms: u64, bytes: &[u8]) {
        let info = self.conns.get(&conn).copied();
        let half = self
            .halves
            .entry((conn, dir))
            .or_insert_with(|| Half::new(info.as_ref(), dir));
        if half.failed {
            return;
        }
        let mut units = Vec::new();
        let outcome = match &mut half.decoder {
            Decoder::Xmpp { parser, header } => {
                parser.feed(bytes);
                loop {
                    match parser.next_event() {
                        Ok(None) => break Ok(()),
                        Ok(Some(StreamEvent::Header(h))) => *header = Some(h),
                        Ok(Some(StreamEvent::End)) => {}
                        Ok(Some(StreamEvent::Element(element))) => {
                            let raw = String::from_utf8_lossy(parser.last_element_bytes()).into();
                            units.push((
                                WireUnit::Xmpp {
                                    header: header.clone(),
                                    element,
                                },
                                raw,
                            ));
                        }
                        Err(error) => break Err(error.to_string()),
                    }
                }
            }
            Decoder::RvpRequests(decoder) => {
                decoder.feed(bytes);
                loop {
                    match decoder.next_request() {
                        Ok(None) => break Ok(()),
                        Ok(Some(request)) => {
                            let raw = String::from_utf8_lossy(&request.to_bytes()).into_owned();
                            let unit = rvp_request(&request);
                            self.pending
                                .entry(conn)
                                .or_default()
                                .push_back((unit.from.clone(), unit.to.clone()));
                            units.push((WireUnit::Rvp(unit), raw));
                        }
                        Err(error) => break Err(error.to_string()),
                    }
                }
            }
            Decoder::Sip(decoder) => {
                // A chunk that starts at a message boundary may be one datagram, whose
                // Content-Length is optional (RFC 3261 §18.3): read it as one if the stream
                // reading fails before a message.
                let at_boundary = decoder.buffered() == 0;
                decoder.feed(bytes);
                let mut read = 0;
                loop {
                    match decoder.next_message() {
                        Ok(None) => break Ok(()),
                        Ok(Some(message)) => {
                            read += 1;
                            units.push(sip_unit(&message, dir, &mut self.sip_seen));
                        }
                        Err(error) if at_boundary && read == 0 => {
                            *decoder = imfed_sip::StreamDecoder::new(sip_limits());
                            match imfed_sip::parse_datagram(bytes, &sip_limits()) {
                                Ok(Some(message)) => {
                                    units.push(sip_unit(&message, dir, &mut self.sip_seen));
                                    break Ok(());
                                }
                                Ok(None) => break Ok(()),
                                Err(datagram) => {
                                    break Err(format!("{error}; as a datagram: {datagram}"));
                                }
                            }
                        }
                        Err(error) => break Err(error.to_string()),
                    }
                }
            }
            Decoder::RvpResponses(decoder) => {
                decoder.feed(bytes);
                loop {
                    match decoder.next_response() {
                        Ok(None) => break Ok(()),
                        Ok(Some(response)) => {
                            let raw = String::from_utf8_lossy(&response.to_bytes()).into_owned();
                            // The answer comes from the request's recipient.
                            let (to, from) = self
                                .pending
                                .get_mut(&conn)
                                .and_then(VecDeque::pop_front)
                                .unwrap_or_default();
                            let unit = RvpUnit {
                                status: Some(response.status.as_u16()),
                                from,
                                to,
                                ..RvpUnit::default()
                            };
                            units.push((WireUnit::Rvp(unit), raw));
                        }
                        Err(error) => break Err(error.to_string()),
                    }
                }
            }
        };
        if let Err(detail) = outcome {
            half.failed = true;
            self.problems.push(WireProblem {
                ts_ms,
                conn,
                dir,
                detail,
            });
        }
        for (unit, raw) in units {
            self.elements.push_back(WireElement {
                ts_ms,
                conn,
                dir,
                unit,
                raw,
            });
            if self.elements.len() > KEPT {
                self.elements.pop_front();
            }
        }
    }
}

/// The principal a logical URL names.
fn principal(url: &str) -> Option<Address> {
    crate::driver::rvp::parse_address(url)
        .ok()
        .map(|address| address.bare())
}

/// A request in the terms of federation checks (RVP §5.1, §5.2, §5.6).
fn rvp_request(request: &imfed_rvp::Request) -> RvpUnit {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let from_principal = header("rvp-from-principal").unwrap_or_default();
    let sender_host = imfed_rvp::NodeUrl::parse(&from_principal)
        .map(|url| url.host().to_string())
        .unwrap_or_else(|_| from_principal.clone());
    let mut unit = RvpUnit {
        method: Some(request.method.as_str().to_string()),
        from: principal(&from_principal),
        to: principal(&request.target.to_string()),
        ends: (sender_host, header("host").unwrap_or_default()),
        ..RvpUnit::default()
    };
    match request.method.as_str() {
        "SUBSCRIBE" | "UNSUBSCRIBE" => unit.kind = Some(StanzaKind::Presence),
        "NOTIFY" => match imfed_rvp::xml::Notification::parse(&request.body) {
            Ok(imfed_rvp::xml::Notification::Message(message)) => {
                unit.kind = Some(StanzaKind::Message);
                unit.from = principal(&message.from.href).or(unit.from);
                unit.to = message
                    .to
                    .first()
                    .and_then(|to| principal(&to.href))
                    .or(unit.to);
                unit.body = imfed_rvp::mime::MimePayload::parse(&message.mime_data)
                    .ok()
                    .map(|payload| payload.body);
            }
            Ok(imfed_rvp::xml::Notification::Property(change)) => {
                unit.kind = Some(StanzaKind::Presence);
                unit.from = principal(&change.from.href).or(unit.from);
                unit.to = principal(&change.to.href).or(unit.to);
            }
            Ok(imfed_rvp::xml::Notification::Other(_)) | Err(_) => {}
        },
        _ => {}
    }
    unit
}

/// A SIP message in the terms of federation checks (PROFILE.md §4, §6): who sent it to whom
/// (AORs), what it carries; a request again on a branch already seen that way is a
/// retransmission and carries nothing countable.
fn sip_unit(
    message: &imfed_sip::Message,
    dir: Dir,
    seen: &mut std::collections::HashSet<(Dir, String, String)>,
) -> (WireUnit, String) {
    let raw = String::from_utf8_lossy(&message.to_bytes()).into_owned();
    let headers = message.headers();
    let aor = |name: &str| {
        headers
            .get(name)
            .and_then(|value| imfed_sip::NameAddr::parse(value).ok())
            .map(|name_addr| crate::driver::sip::address_of(&name_addr.uri.aor()))
    };
    let (from, to) = (aor("From"), aor("To"));
    let domain = |address: &Option<Address>| {
        address
            .as_ref()
            .map(|address| address.domain.clone())
            .unwrap_or_default()
    };
    let unit = match message {
        imfed_sip::Message::Request(request) => {
            let method = request.method.to_string();
            let branch = request
                .top_via()
                .ok()
                .and_then(|via| via.branch().map(str::to_string))
                .unwrap_or_default();
            let first = branch.is_empty() || seen.insert((dir, branch, method.clone()));
            let kind = match request.method {
                imfed_sip::Method::Message => Some(StanzaKind::Message),
                imfed_sip::Method::Subscribe
                | imfed_sip::Method::Notify
                | imfed_sip::Method::Publish => Some(StanzaKind::Presence),
                _ => None,
            }
            .filter(|_| first);
            let body = (request.method == imfed_sip::Method::Message)
                .then(|| String::from_utf8_lossy(&request.body).into_owned());
            SipUnit {
                method: Some(method),
                status: None,
                kind,
                ends: (domain(&from), domain(&to)),
                from,
                to,
                body,
            }
        }
        imfed_sip::Message::Response(response) => SipUnit {
            method: None,
            status: Some(response.status),
            kind: None,
            ends: (domain(&to), domain(&from)),
            from: to,
            to: from,
            body: None,
        },
    };
    (WireUnit::Sip(unit), raw)
}

/// The wire view of one run, fed from one reference server's tap.
#[derive(Debug)]
pub struct WireTap {
    control: Control,
    profile: crate::driver::Profile,
    view: Mutex<View>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl WireTap {
    /// A view of the tap behind `control`, of the connections of `profile`.
    pub fn new(control: Control, profile: crate::driver::Profile) -> WireTap {
        WireTap {
            control,
            profile,
            view: Mutex::default(),
        }
    }

    /// Reads what the tap recorded since the last sync, waiting up to `wait` when there is
    /// nothing new. When it returns `Ok`, the view holds everything that crossed before the
    /// call.
    ///
    /// # Errors
    /// Why the tap could not be read (unreachable, slow or malformed control API, or a hole
    /// in the record): the observer is blind.
    pub async fn sync(&self, wait: Duration) -> Result<(), String> {
        let since = self.view.lock().expect("wire view lock").cursor;
        let page = self
            .control
            .tap(self.profile.name(), since, wait)
            .await
            .map_err(|error| error.to_string())?;
        self.view.lock().expect("wire view lock").apply(page, since)
    }

    /// Elements whose last byte crossed at or after `since_ms` and that `keep` selects.
    pub fn elements(&self, since_ms: u64, keep: impl Fn(&WireElement) -> bool) -> Vec<WireElement> {
        self.view
            .lock()
            .expect("wire view lock")
            .elements
            .iter()
            .filter(|element| element.ts_ms >= since_ms && keep(element))
            .cloned()
            .collect()
    }

    /// Invalid streams seen at or after `since_ms`.
    pub fn problems(&self, since_ms: u64) -> Vec<WireProblem> {
        self.view
            .lock()
            .expect("wire view lock")
            .problems
            .iter()
            .filter(|problem| problem.ts_ms >= since_ms)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{TapChunk, TapConn};

    fn chunk(seq: u64, dir: &str, kind: &str, data: &str) -> TapChunk {
        TapChunk {
            seq,
            conn: 1,
            dir: dir.into(),
            kind: kind.into(),
            ts_ms: 1000 + seq,
            data: base64::engine::general_purpose::STANDARD.encode(data),
            protocol: None,
        }
    }

    fn page_of(first: u64, chunks: Vec<TapChunk>, protocol: Option<&str>) -> TapPage {
        TapPage {
            first,
            latest: chunks.last().map_or(0, |c| c.seq),
            connections: vec![TapConn {
                id: 1,
                opened_by: "in".into(),
                peer: None,
                opened_ms: 0,
                protocol: protocol.map(str::to_string),
            }],
            chunks,
        }
    }

    fn page(first: u64, chunks: Vec<TapChunk>) -> TapPage {
        page_of(first, chunks, None)
    }

    fn xmpp(element: &WireElement) -> (&Element, Option<&StreamHeader>) {
        match &element.unit {
            WireUnit::Xmpp { element, header } => (element, header.as_ref()),
            WireUnit::Rvp(_) | WireUnit::Sip(_) => panic!("an XMPP element"),
        }
    }

    #[test]
    fn rvp_requests_and_answers_are_decoded_from_the_opener_and_back() {
        let mut view = View::default();
        let notify = "NOTIFY http://a.test/instmsg/aliases/alice HTTP/1.1\r\nHost: a.test\r\n\
            RVP-From-Principal: http://b.test/instmsg/aliases/bob\r\nContent-Type: text/xml\r\n\
            Content-Length: LEN\r\n\r\nBODY";
        let body = "<r:notification xmlns:d=\"DAV:\" xmlns:r=\"http://schemas.microsoft.com/rvp/\">\
            <r:message><r:notification-from><r:contact><d:href>http://b.test/instmsg/aliases/bob\
            </d:href></r:contact></r:notification-from><r:notification-to><r:contact><d:href>\
            http://a.test/instmsg/aliases/alice</d:href></r:contact></r:notification-to>\
            <r:msgbody><r:mime-data><![CDATA[MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi]]>\
            </r:mime-data></r:msgbody></r:message></r:notification>";
        let request = notify
            .replace("LEN", &body.len().to_string())
            .replace("BODY", body);
        let (head, rest) = request.split_at(40);
        view.apply(
            page_of(
                1,
                vec![
                    chunk(1, "in", "data", head),
                    chunk(2, "in", "data", rest),
                    chunk(
                        3,
                        "out",
                        "data",
                        "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n",
                    ),
                ],
                Some("rvp"),
            ),
            0,
        )
        .unwrap();
        assert!(view.problems.is_empty(), "{:?}", view.problems);
        let elements: Vec<&WireElement> = view.elements.iter().collect();
        assert_eq!(elements.len(), 2);
        let bob = crate::driver::rvp::parse_address("bob@b.test").unwrap();
        let alice = crate::driver::rvp::parse_address("alice@a.test").unwrap();
        assert!(elements[0].is(StanzaKind::Message));
        assert_eq!(elements[0].sender(), Some(bob.clone()));
        assert_eq!(elements[0].recipient(), Some(alice.clone()));
        assert_eq!(elements[0].body().as_deref(), Some("hi"));
        assert_eq!(elements[0].link_ends(), ("b.test".into(), "a.test".into()));
        assert_eq!(elements[0].dir, Dir::In);
        // The answer is no stanza, but reports tell whose it is.
        assert!(!elements[1].is(StanzaKind::Message));
        assert_eq!(elements[1].sender(), Some(alice));
        assert!(matches!(&elements[1].unit, WireUnit::Rvp(unit) if unit.status == Some(412)));
    }

    #[test]
    fn sip_datagrams_and_tcp_streams_are_framed_and_retransmissions_counted_once() {
        let message = |branch: &str, body: &str| {
            format!(
                "MESSAGE sip:alice@a.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
                 From: <sip:bob@b.test>;tag=1\r\nTo: <sip:alice@a.test>\r\nCall-ID: c1\r\n\
                 CSeq: 1 MESSAGE\r\nMax-Forwards: 69\r\nContent-Type: text/plain\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
                  From: <sip:bob@b.test>;tag=1\r\nTo: <sip:alice@a.test>;tag=2\r\nCall-ID: c1\r\n\
                  CSeq: 1 MESSAGE\r\n\r\n";
        // A datagram without Content-Length (RFC 3261 §18.3 allows it over UDP).
        let bare = "MESSAGE sip:alice@a.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK3\r\n\
                    From: <sip:bob@b.test>;tag=1\r\nTo: <sip:alice@a.test>\r\nCall-ID: c3\r\n\
                    CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\r\nno length";
        let first = message("z9hG4bK1", "héllo");
        let mut view = View::default();
        view.apply(
            page_of(
                1,
                vec![
                    chunk(1, "in", "data", &first),
                    // Retransmitted: the same transaction.
                    chunk(2, "in", "data", &first),
                    chunk(3, "out", "data", ok),
                    chunk(4, "in", "data", bare),
                ],
                Some("sip"),
            ),
            0,
        )
        .unwrap();
        assert!(view.problems.is_empty(), "{:?}", view.problems);
        let elements: Vec<&WireElement> = view.elements.iter().collect();
        assert_eq!(elements.len(), 4);
        let bob = crate::driver::sip::parse_address("bob@b.test").unwrap();
        let alice = crate::driver::sip::parse_address("alice@a.test").unwrap();
        assert!(elements[0].is(StanzaKind::Message) && elements[0].has_type("chat"));
        assert_eq!(elements[0].sender(), Some(bob.clone()));
        assert_eq!(elements[0].recipient(), Some(alice.clone()));
        assert_eq!(elements[0].body().as_deref(), Some("héllo"));
        assert_eq!(elements[0].link_ends(), ("b.test".into(), "a.test".into()));
        assert!(!elements[1].is(StanzaKind::Message), "a retransmission");
        assert!(!elements[2].is(StanzaKind::Message));
        assert_eq!(elements[2].sender(), Some(alice));
        assert!(elements[3].is(StanzaKind::Message));
        assert_eq!(elements[3].body().as_deref(), Some("no length"));

        // TCP: two messages split across chunks at arbitrary points.
        let mut tcp = View::default();
        let stream = format!(
            "{}{}",
            message("z9hG4bKa", "one"),
            message("z9hG4bKb", "two")
        );
        let (a, rest) = stream.split_at(30);
        let (b, c) = rest.split_at(rest.len() - 200);
        tcp.apply(
            page_of(
                1,
                vec![
                    chunk(1, "in", "data", a),
                    chunk(2, "in", "data", b),
                    chunk(3, "in", "data", c),
                ],
                Some("sip"),
            ),
            0,
        )
        .unwrap();
        assert!(tcp.problems.is_empty(), "{:?}", tcp.problems);
        let bodies: Vec<Option<String>> = tcp.elements.iter().map(WireElement::body).collect();
        assert_eq!(bodies, vec![Some("one".into()), Some("two".into())]);
    }

    const HEADER: &str = "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='a.test' version='1.0'>";

    #[test]
    fn elements_keep_their_namespace_bytes_and_stream() {
        let mut view = View::default();
        let wrong = "<message xmlns='jabber:client' from='x@b.test' to='y@a.test'/>";
        view.apply(
            page(
                1,
                vec![
                    chunk(1, "in", "data", HEADER),
                    chunk(2, "in", "data", "<message from='x@b.test' to='y@a.te"),
                    chunk(3, "in", "data", "st'><body>hi</body></message>"),
                    chunk(4, "in", "data", wrong),
                ],
            ),
            0,
        )
        .unwrap();
        let elements: Vec<&WireElement> = view.elements.iter().collect();
        assert_eq!(elements.len(), 2);
        assert_eq!(xmpp(elements[0]).0.ns, imfed_xmpp::ns::SERVER);
        assert_eq!(elements[0].ts_ms, 1003, "when its last byte arrived");
        assert_eq!(
            xmpp(elements[0]).1.and_then(|h| h.from.as_deref()),
            Some("b.test")
        );
        assert_eq!(xmpp(elements[1]).0.ns, imfed_xmpp::ns::CLIENT);
        assert_eq!(elements[1].raw, wrong);
        // A chunk seen twice (two syncs racing) is applied once.
        view.apply(page(1, vec![chunk(4, "in", "data", wrong)]), 3)
            .unwrap();
        assert_eq!(view.elements.len(), 2);
        // After TLS the stream starts again; garbage is a problem, not an element.
        view.apply(
            page(
                1,
                vec![
                    chunk(5, "out", "tls", ""),
                    chunk(6, "in", "data", HEADER),
                    chunk(7, "in", "data", "<message><!-- no --></message>"),
                ],
            ),
            4,
        )
        .unwrap();
        assert_eq!(view.problems.len(), 1, "{:?}", view.problems);
        assert!(view.problems[0].detail.contains("comment"));
    }

    #[test]
    fn a_hole_in_the_record_is_an_error() {
        let mut view = View::default();
        let error = view
            .apply(page(5, vec![chunk(5, "in", "data", HEADER)]), 2)
            .unwrap_err();
        assert!(error.contains("dropped chunks 3 to 4"), "{error}");
        let error = view
            .apply(page(1, vec![chunk(9, "sideways", "data", "")]), 8)
            .unwrap_err();
        assert!(error.contains("direction"), "{error}");
    }
}
