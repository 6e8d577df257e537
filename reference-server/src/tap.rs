//! The wire tap: the bytes of every server-to-server connection, in both directions, exactly
//! as they crossed the socket (after TLS decryption, before any parsing), for the harness to
//! parse and judge itself. What a peer sent is then checked as it was sent, wrong namespaces
//! (RFC 6120 §4.8.3) and bytes this server would reject included, not as this server's
//! parser understood it.
//!
//! Chunks are numbered from 1 and kept up to a byte budget, oldest dropped first; a reader
//! that asks for chunks already dropped is told (`first` is past what it asked for), so a
//! gap is never mistaken for silence.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Which way bytes went, seen from this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TapDirection {
    /// Read from the peer.
    In,
    /// Written to the peer.
    Out,
}

/// Which protocol a tapped connection speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TapProtocol {
    /// XMPP server-to-server streams (the default, and the only protocol readers written
    /// before RVP know: it is not written out, so their pages stay as they were).
    #[default]
    Xmpp,
    /// RVP server-to-server HTTP over TLS (after TLS, before HTTP parsing).
    Rvp,
    /// SIP between servers: each UDP datagram as one chunk, TCP bytes as they came.
    Sip,
}

impl TapProtocol {
    fn is_xmpp(&self) -> bool {
        *self == TapProtocol::Xmpp
    }
}

/// Which chunks a read returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TapFilter {
    /// XMPP connections only, in the format readers written before RVP expect.
    #[default]
    Xmpp,
    /// RVP connections only.
    Rvp,
    /// SIP links only.
    Sip,
    /// Everything.
    All,
}

impl TapFilter {
    fn admits(self, protocol: TapProtocol) -> bool {
        match self {
            TapFilter::Xmpp => protocol == TapProtocol::Xmpp,
            TapFilter::Rvp => protocol == TapProtocol::Rvp,
            TapFilter::Sip => protocol == TapProtocol::Sip,
            TapFilter::All => true,
        }
    }
}

/// What a chunk records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkKind {
    /// Bytes of the stream.
    Data,
    /// TLS took over the connection here (after `<proceed/>`): a new stream starts in both
    /// directions.
    Tls,
    /// The connection ended.
    Closed,
}

/// One recorded event of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Position in the tap, from 1.
    pub seq: u64,
    /// The connection.
    pub conn: u64,
    /// Which way (for `tls` and `closed`, `out`).
    pub dir: TapDirection,
    /// What it records.
    pub kind: ChunkKind,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The bytes, base64 (standard alphabet, padded); empty unless `kind` is `data`.
    #[serde(with = "b64")]
    pub data: Vec<u8>,
    /// The connection's protocol; absent means XMPP.
    #[serde(default, skip_serializing_if = "TapProtocol::is_xmpp")]
    pub protocol: TapProtocol,
}

/// A tapped connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapConn {
    /// Its id in chunks.
    pub id: u64,
    /// `out` when this server opened it, `in` when the peer did.
    pub opened_by: TapDirection,
    /// The peer's socket address.
    pub peer: Option<String>,
    /// When it was opened, milliseconds since the Unix epoch.
    pub opened_ms: u64,
    /// Its protocol; absent means XMPP.
    #[serde(default, skip_serializing_if = "TapProtocol::is_xmpp")]
    pub protocol: TapProtocol,
}

/// What a read of the tap returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapPage {
    /// The oldest chunk still kept (0 when none was ever recorded).
    pub first: u64,
    /// The newest chunk recorded.
    pub latest: u64,
    /// The connections the chunks belong to.
    pub connections: Vec<TapConn>,
    /// The chunks after the position asked for, in order.
    pub chunks: Vec<Chunk>,
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Default)]
struct Inner {
    chunks: VecDeque<Chunk>,
    bytes: usize,
    connections: BTreeMap<u64, TapConn>,
}

/// The tap of one server.
#[derive(Debug)]
pub struct Tap {
    inner: Mutex<Inner>,
    budget: usize,
    latest: watch::Sender<u64>,
    next_conn: AtomicU64,
}

/// How many connections the tap remembers after their chunks are gone.
const CONNECTIONS_KEPT: usize = 4096;

impl Tap {
    /// An empty tap keeping about `budget` bytes of chunks.
    pub fn new(budget: usize) -> Self {
        Tap {
            inner: Mutex::default(),
            budget,
            latest: watch::channel(0).0,
            next_conn: AtomicU64::new(0),
        }
    }

    /// Registers an XMPP connection; returns its id for [`Tap::record`].
    pub fn open(&self, opened_by: TapDirection, peer: Option<String>) -> u64 {
        self.open_with(TapProtocol::Xmpp, opened_by, peer)
    }

    /// Registers a connection of `protocol`; returns its id for [`Tap::record`].
    pub fn open_with(
        &self,
        protocol: TapProtocol,
        opened_by: TapDirection,
        peer: Option<String>,
    ) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let mut inner = self.inner.lock().expect("tap lock");
        inner.connections.insert(
            id,
            TapConn {
                id,
                opened_by,
                peer,
                opened_ms: now_ms(),
                protocol,
            },
        );
        while inner.connections.len() > CONNECTIONS_KEPT {
            inner.connections.pop_first();
        }
        id
    }

    /// Records bytes or an event of connection `conn`.
    pub fn record(&self, conn: u64, dir: TapDirection, kind: ChunkKind, data: &[u8]) {
        let mut inner = self.inner.lock().expect("tap lock");
        let seq = *self.latest.borrow() + 1;
        inner.bytes += data.len();
        let protocol = inner
            .connections
            .get(&conn)
            .map_or(TapProtocol::Xmpp, |c| c.protocol);
        inner.chunks.push_back(Chunk {
            seq,
            conn,
            dir,
            kind,
            ts_ms: now_ms(),
            data: data.to_vec(),
            protocol,
        });
        while inner.bytes > self.budget && inner.chunks.len() > 1 {
            if let Some(dropped) = inner.chunks.pop_front() {
                inner.bytes -= dropped.data.len();
            }
        }
        self.latest.send_replace(seq);
    }

    /// The XMPP chunks after `since`.
    pub fn read(&self, since: u64) -> TapPage {
        self.read_filtered(since, TapFilter::Xmpp)
    }

    /// The chunks after `since` that `filter` admits.
    pub fn read_filtered(&self, since: u64, filter: TapFilter) -> TapPage {
        let inner = self.inner.lock().expect("tap lock");
        let first = inner.chunks.front().map_or(0, |chunk| chunk.seq);
        let chunks: Vec<Chunk> = inner
            .chunks
            .iter()
            .filter(|chunk| chunk.seq > since && filter.admits(chunk.protocol))
            .cloned()
            .collect();
        let mut ids: Vec<u64> = chunks.iter().map(|chunk| chunk.conn).collect();
        ids.sort_unstable();
        ids.dedup();
        let connections = ids
            .iter()
            .filter_map(|id| inner.connections.get(id).cloned())
            .collect();
        TapPage {
            first,
            latest: *self.latest.borrow(),
            connections,
            chunks,
        }
    }

    /// Like [`Tap::read`], but when there is nothing after `since` yet, waits up to `wait`
    /// for something to be recorded.
    pub async fn wait(&self, since: u64, wait: Duration) -> TapPage {
        self.wait_filtered(since, wait, TapFilter::Xmpp).await
    }

    /// Like [`Tap::read_filtered`], waiting up to `wait` for a chunk `filter` admits.
    pub async fn wait_filtered(&self, since: u64, wait: Duration, filter: TapFilter) -> TapPage {
        let mut updates = self.latest.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if *updates.borrow_and_update() > since {
                let page = self.read_filtered(since, filter);
                if !page.chunks.is_empty() {
                    return page;
                }
            }
            if tokio::time::timeout_at(deadline, updates.changed())
                .await
                .is_err()
            {
                return self.read_filtered(since, filter);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_in_order_waits_and_reports_what_was_dropped() {
        let tap = std::sync::Arc::new(Tap::new(10));
        let conn = tap.open(TapDirection::Out, Some("127.0.0.1:1".into()));
        tap.record(conn, TapDirection::Out, ChunkKind::Data, b"<a/>");
        tap.record(conn, TapDirection::In, ChunkKind::Data, b"<bb/>");
        let page = tap.read(0);
        assert_eq!((page.first, page.latest), (1, 2));
        assert_eq!(page.chunks[1].data, b"<bb/>");
        assert_eq!(page.connections.len(), 1);
        // Over budget: the oldest chunk goes, and a reader from 0 can tell.
        tap.record(conn, TapDirection::In, ChunkKind::Data, b"<ccc/>");
        let page = tap.read(0);
        assert_eq!(page.first, 3, "both older chunks are over the budget");
        // A waiting reader wakes up for the next chunk.
        let writer = tap.clone();
        tokio::spawn(async move {
            writer.record(conn, TapDirection::Out, ChunkKind::Closed, b"");
        });
        let page = tap.wait(3, Duration::from_secs(5)).await;
        assert_eq!(page.chunks.len(), 1);
        assert_eq!(page.chunks[0].kind, ChunkKind::Closed);
        let json = serde_json::to_string(&tap.read(2)).unwrap();
        assert!(json.contains("\"data\":\"PGNjYy8+\""), "{json}");
        let back: TapPage = serde_json::from_str(&json).unwrap();
        assert_eq!(back.chunks[0].data, b"<ccc/>");
        let idle = tap.wait(4, Duration::from_millis(10)).await;
        assert!(idle.chunks.is_empty());
        assert!(
            !json.contains("protocol"),
            "XMPP pages keep their old shape: {json}"
        );
    }

    #[test]
    fn rvp_chunks_are_tagged_and_kept_out_of_xmpp_pages() {
        let tap = Tap::new(1 << 20);
        let xmpp = tap.open(TapDirection::Out, None);
        let rvp = tap.open_with(TapProtocol::Rvp, TapDirection::In, None);
        tap.record(xmpp, TapDirection::Out, ChunkKind::Data, b"<a/>");
        tap.record(rvp, TapDirection::In, ChunkKind::Data, b"NOTIFY / HTTP/1.1");
        assert_eq!(tap.read(0).chunks.len(), 1);
        let page = tap.read_filtered(0, TapFilter::Rvp);
        assert_eq!(page.chunks.len(), 1);
        assert_eq!(page.chunks[0].protocol, TapProtocol::Rvp);
        let json = serde_json::to_string(&page).unwrap();
        assert!(json.contains("\"protocol\":\"rvp\""), "{json}");
        assert_eq!(tap.read_filtered(0, TapFilter::All).chunks.len(), 2);
    }
}
