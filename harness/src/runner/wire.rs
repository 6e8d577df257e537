//! The federation link as observed on the wire (RFC 6120 §4, §8): the reference server's tap
//! gives the bytes of every server-to-server connection, both directions, exactly as they
//! crossed the socket; the harness parses them itself with an observer parser, which keeps
//! each stanza's namespace as written (a `jabber:client` stanza on a server stream shows,
//! RFC 6120 §4.8.3) and each element's bytes as sent. Federation checks and the report's link
//! lines come from here, never from what the reference server says it sent or understood.
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

/// One first-level element seen on a server-to-server connection.
#[derive(Clone, Debug)]
pub struct WireElement {
    /// When its last byte crossed, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The tapped connection.
    pub conn: u64,
    /// Which way.
    pub dir: Dir,
    /// The header of the stream it was sent on (by the same side).
    pub header: Option<StreamHeader>,
    /// The element, namespaces as written.
    pub element: Element,
    /// Its bytes as sent.
    pub raw: String,
}

impl WireElement {
    /// The content namespace of server-to-server streams (RFC 6120 §4.8.3).
    pub const CONTENT_NAMESPACE: &str = imfed_xmpp::ns::SERVER;

    fn address(&self, attribute: &str) -> Option<Address> {
        self.element
            .attr(attribute)
            .and_then(|text| crate::driver::xmpp::parse_address(text).ok())
            .map(|address| address.bare())
    }

    /// The bare address of its sender.
    pub fn sender(&self) -> Option<Address> {
        self.address("from")
    }

    /// The bare address of its recipient.
    pub fn recipient(&self) -> Option<Address> {
        self.address("to")
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
        self.element.name == kind.as_str()
    }

    /// Whether its `type` is `wanted` ("available" matches no type; a message without a
    /// type is "normal").
    pub fn has_type(&self, wanted: &str) -> bool {
        let default = if self.element.name == "presence" {
            "available"
        } else {
            "normal"
        };
        self.element.attr("type").unwrap_or(default) == wanted
    }

    /// Its `<body/>`, in its own namespace.
    pub fn body(&self) -> Option<String> {
        self.element.child_text("body", &self.element.ns)
    }

    /// Whether it is in the content namespace of server streams, as written.
    pub fn in_content_namespace(&self) -> bool {
        self.element.ns == Self::CONTENT_NAMESPACE
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
    parser: StreamParser,
    header: Option<StreamHeader>,
    failed: bool,
}

impl Half {
    fn new() -> Half {
        // Generous limits: the observer judges what crossed, it does not protect itself
        // from a peer the way a server must.
        Half {
            parser: StreamParser::observer(Limits {
                max_stanza_bytes: 16 * 1024 * 1024,
                max_depth: 256,
            }),
            header: None,
            failed: false,
        }
    }
}

#[derive(Debug, Default)]
struct View {
    cursor: u64,
    halves: HashMap<(u64, Dir), Half>,
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
        let half = self.halves.entry((conn, dir)).or_insert_with(Half::new);
        if half.failed {
            return;
        }
        half.parser.feed(bytes);
        loop {
            match half.parser.next_event() {
                Ok(None) => break,
                Ok(Some(StreamEvent::Header(header))) => half.header = Some(header),
                Ok(Some(StreamEvent::End)) => {}
                Ok(Some(StreamEvent::Element(element))) => {
                    let raw = String::from_utf8_lossy(half.parser.last_element_bytes()).into();
                    self.elements.push_back(WireElement {
                        ts_ms,
                        conn,
                        dir,
                        header: half.header.clone(),
                        element,
                        raw,
                    });
                    if self.elements.len() > KEPT {
                        self.elements.pop_front();
                    }
                }
                Err(error) => {
                    half.failed = true;
                    self.problems.push(WireProblem {
                        ts_ms,
                        conn,
                        dir,
                        detail: error.to_string(),
                    });
                    break;
                }
            }
        }
    }
}

/// The wire view of one run, fed from one reference server's tap.
#[derive(Debug)]
pub struct WireTap {
    control: Control,
    view: Mutex<View>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl WireTap {
    /// A view of the tap behind `control`.
    pub fn new(control: Control) -> WireTap {
        WireTap {
            control,
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
            .tap(since, wait)
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
        }
    }

    fn page(first: u64, chunks: Vec<TapChunk>) -> TapPage {
        TapPage {
            first,
            latest: chunks.last().map_or(0, |c| c.seq),
            connections: vec![TapConn {
                id: 1,
                opened_by: "in".into(),
                peer: None,
                opened_ms: 0,
            }],
            chunks,
        }
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
        assert_eq!(elements[0].element.ns, imfed_xmpp::ns::SERVER);
        assert_eq!(elements[0].ts_ms, 1003, "when its last byte arrived");
        assert_eq!(
            elements[0].header.as_ref().and_then(|h| h.from.as_deref()),
            Some("b.test")
        );
        assert_eq!(elements[1].element.ns, imfed_xmpp::ns::CLIENT);
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
