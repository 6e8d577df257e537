//! SIP transports (RFC 3261 §18): one UDP socket and one TCP listener on the same loopback
//! port, TCP connections both ways, and the wire tap for what crosses to another domain's
//! server (`protocols/sip/PROFILE.md` §1, §5).
//!
//! Every datagram and every message read off a TCP connection goes to
//! [`super::dispatch`]; what the server sends goes through [`Net::send`]. Over TCP a response
//! goes back on the connection its request came on (§18.2.2); requests go on a connection to
//! the destination, opened on first use and kept.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imfed_sip::codec::{Limits, StreamDecoder, parse_datagram};
use imfed_sip::{Message, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info_span, warn};

use crate::state::State;
use crate::tap::{ChunkKind, TapDirection, TapProtocol};

/// Largest datagram read.
const DATAGRAM: usize = 65_535;
/// Bytes queued for one TCP connection before senders wait.
const CONN_QUEUE: usize = 256;
/// Bound on opening a TCP connection to another SIP node.
const CONNECT_BOUND: Duration = Duration::from_secs(5);

/// A SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// RFC 768 datagrams, one message each (§18.1.1).
    Udp,
    /// A byte stream framed by `Content-Length` (§18.3).
    Tcp,
}

impl Transport {
    /// The name in a `Via` (`SIP/2.0/UDP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// The `transport` URI parameter's value.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// The transport a URI's `transport` parameter or a Via's protocol names (UDP when
    /// absent, RFC 3263 §4.1 for a numeric host with a port).
    pub fn named(name: Option<&str>) -> Result<Transport, String> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            None | Some("udp") => Ok(Transport::Udp),
            Some("tcp") => Ok(Transport::Tcp),
            Some(other) => Err(format!("transport {other:?} is not supported (udp, tcp)")),
        }
    }
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    /// The socket address.
    pub addr: SocketAddr,
    /// How.
    pub transport: Transport,
}

/// How to answer what arrived.
#[derive(Clone, Debug)]
pub enum Reply {
    /// To the datagram's source (RFC 3581 symmetric response: on loopback the source is
    /// the Via's sent-by or a NAT-less equivalent of it).
    Udp(SocketAddr),
    /// On the connection it came on.
    Tcp(Conn),
}

/// A TCP connection's writer.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Its number in this server's connection table.
    pub id: u64,
    /// The peer's socket address.
    pub peer: SocketAddr,
    writer: mpsc::Sender<Vec<u8>>,
}

/// Something that arrived.
#[derive(Debug)]
pub struct Incoming {
    /// The message.
    pub message: Message,
    /// Its bytes as they came (a datagram, or the part of a stream it was framed from).
    pub source: SocketAddr,
    /// The transport.
    pub transport: Transport,
    /// How to answer it.
    pub reply: Reply,
}

/// The bound sockets, before serving.
#[derive(Debug)]
pub struct Sockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Sockets {
    /// The shared address.
    pub fn local_addr(&self) -> SocketAddr {
        self.udp.local_addr().expect("bound socket")
    }
}

/// Binds UDP and TCP on one port: `addr`'s, or for port 0 a free port both can take.
///
/// # Errors
/// The bind error (after a few attempts for port 0).
pub async fn bind(addr: SocketAddr) -> io::Result<Sockets> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok(Sockets { udp, tcp }),
            Err(error) if addr.port() == 0 => last = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

/// The sending side: the UDP socket and the TCP connections.
#[derive(Debug)]
pub struct Net {
    udp: Arc<UdpSocket>,
    /// Open TCP connections by peer address (ones we opened, and accepted ones).
    conns: Mutex<HashMap<SocketAddr, Conn>>,
    /// Tap connection ids of the UDP flows with other servers, by peer address.
    udp_taps: Mutex<HashMap<SocketAddr, u64>>,
    /// Tap connection ids of TCP connections that carry server-to-server traffic.
    tcp_taps: Mutex<HashMap<u64, u64>>,
    next_conn: std::sync::atomic::AtomicU64,
}

impl Net {
    fn new(udp: Arc<UdpSocket>) -> Net {
        Net {
            udp,
            conns: Mutex::default(),
            udp_taps: Mutex::default(),
            tcp_taps: Mutex::default(),
            next_conn: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Sends `bytes` to `dest`, opening a TCP connection when there is none; `peer` marks
    /// server-to-server traffic for the tap.
    ///
    /// # Errors
    /// The socket's error, or a connect that failed or took too long.
    pub async fn send(
        &self,
        state: &State,
        dest: Dest,
        bytes: Vec<u8>,
        peer: bool,
    ) -> io::Result<()> {
        match dest.transport {
            Transport::Udp => {
                if peer {
                    self.tap_udp(state, dest.addr, TapDirection::Out, &bytes);
                }
                self.udp.send_to(&bytes, dest.addr).await.map(|_| ())
            }
            Transport::Tcp => {
                let conn = self.connection(state, dest.addr).await?;
                self.write(state, &conn, bytes, peer).await
            }
        }
    }

    /// Sends a response on the way its request came.
    ///
    /// # Errors
    /// The socket's error, or a closed connection.
    pub async fn reply(
        &self,
        state: &State,
        reply: &Reply,
        response: &Response,
        peer: bool,
    ) -> io::Result<()> {
        let bytes = response.to_bytes();
        self.reply_bytes(state, reply, bytes, peer).await
    }

    /// Sends bytes on the way a request came.
    ///
    /// # Errors
    /// The socket's error, or a closed connection.
    pub async fn reply_bytes(
        &self,
        state: &State,
        reply: &Reply,
        bytes: Vec<u8>,
        peer: bool,
    ) -> io::Result<()> {
        match reply {
            Reply::Udp(addr) => {
                if peer {
                    self.tap_udp(state, *addr, TapDirection::Out, &bytes);
                }
                self.udp.send_to(&bytes, addr).await.map(|_| ())
            }
            Reply::Tcp(conn) => self.write(state, conn, bytes, peer).await,
        }
    }

    async fn write(
        &self,
        state: &State,
        conn: &Conn,
        bytes: Vec<u8>,
        peer: bool,
    ) -> io::Result<()> {
        if peer {
            let tap = self.tcp_tap(state, conn, TapDirection::Out);
            state
                .tap
                .record(tap, TapDirection::Out, ChunkKind::Data, &bytes);
        } else if let Some(tap) = self.tapped(conn) {
            state
                .tap
                .record(tap, TapDirection::Out, ChunkKind::Data, &bytes);
        }
        conn.writer
            .send(bytes)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "connection closed"))
    }

    async fn connection(&self, state: &State, addr: SocketAddr) -> io::Result<Conn> {
        if let Some(conn) = self.conns.lock().expect("conns lock").get(&addr)
            && !conn.writer.is_closed()
        {
            return Ok(conn.clone());
        }
        let stream = tokio::time::timeout(CONNECT_BOUND, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(self.serve_stream(state, stream, addr))
    }

    /// Registers a TCP connection and starts its reader and writer.
    fn serve_stream(&self, state: &State, stream: TcpStream, peer: SocketAddr) -> Conn {
        let id = self
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (writer, rx) = mpsc::channel(CONN_QUEUE);
        let conn = Conn { id, peer, writer };
        self.conns
            .lock()
            .expect("conns lock")
            .insert(peer, conn.clone());
        let task_state = state.clone();
        let task_conn = conn.clone();
        state.tasks.spawn(
            serve_conn(task_state, stream, task_conn, rx).instrument(info_span!("sip-tcp", %peer)),
        );
        conn
    }

    fn tapped(&self, conn: &Conn) -> Option<u64> {
        self.tcp_taps
            .lock()
            .expect("tap lock")
            .get(&conn.id)
            .copied()
    }

    /// The tap connection of a TCP connection found to carry server-to-server traffic.
    fn tcp_tap(&self, state: &State, conn: &Conn, first: TapDirection) -> u64 {
        *self
            .tcp_taps
            .lock()
            .expect("tap lock")
            .entry(conn.id)
            .or_insert_with(|| {
                state
                    .tap
                    .open_with(TapProtocol::Sip, first, Some(conn.peer.to_string()))
            })
    }

    fn tap_udp(&self, state: &State, addr: SocketAddr, dir: TapDirection, bytes: &[u8]) {
        let id = *self
            .udp_taps
            .lock()
            .expect("tap lock")
            .entry(addr)
            .or_insert_with(|| {
                state
                    .tap
                    .open_with(TapProtocol::Sip, dir, Some(addr.to_string()))
            });
        state.tap.record(id, dir, ChunkKind::Data, bytes);
    }

    fn forget(&self, state: &State, conn: &Conn) {
        let mut conns = self.conns.lock().expect("conns lock");
        if conns.get(&conn.peer).is_some_and(|c| c.id == conn.id) {
            conns.remove(&conn.peer);
        }
        drop(conns);
        if let Some(tap) = self.tcp_taps.lock().expect("tap lock").remove(&conn.id) {
            state
                .tap
                .record(tap, TapDirection::Out, ChunkKind::Closed, b"");
        }
    }
}

/// Starts serving: the UDP reader and the TCP acceptor. Returns the sending side.
pub fn serve(state: &State, sockets: Sockets) -> Arc<Net> {
    let udp = Arc::new(sockets.udp);
    let net = Arc::new(Net::new(udp.clone()));
    state
        .tasks
        .spawn(read_udp(state.clone(), udp).instrument(info_span!("sip-udp")));
    state
        .tasks
        .spawn(accept_tcp(state.clone(), net.clone(), sockets.tcp));
    net
}

async fn read_udp(state: State, udp: Arc<UdpSocket>) {
    let limits = Limits::default();
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        let (len, source) = tokio::select! {
            received = udp.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(error) => {
                    // ICMP port unreachable from an earlier send surfaces here on some
                    // systems: not fatal for the socket.
                    debug!(%error, "udp receive failed");
                    continue;
                }
            },
            () = state.shutdown.cancelled() => break,
        };
        let bytes = &buf[..len];
        let parsed = parse_datagram(bytes, &limits);
        let peer = match &parsed {
            Ok(Some(message)) => state.sip_from_peer(message, source),
            _ => state.sip.is_route_address(source),
        };
        if peer && let Some(net) = state.sip.net() {
            net.tap_udp(&state, source, TapDirection::In, bytes);
        }
        match parsed {
            Ok(Some(message)) => {
                let incoming = Incoming {
                    message,
                    source,
                    transport: Transport::Udp,
                    reply: Reply::Udp(source),
                };
                super::dispatch(&state, incoming, peer);
            }
            Ok(None) => {}
            Err(error) => {
                super::refuse_unparsed(&state, bytes, &error, Reply::Udp(source), peer);
            }
        }
    }
}

async fn accept_tcp(state: State, net: Arc<Net>, listener: TcpListener) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "sip accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = state.shutdown.cancelled() => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "set_nodelay failed");
        }
        net.serve_stream(&state, stream, peer);
    }
}

/// Reads messages off a connection and writes what is queued for it, until either side
/// closes or the server shuts down.
async fn serve_conn(state: State, stream: TcpStream, conn: Conn, mut rx: mpsc::Receiver<Vec<u8>>) {
    let (mut reader, mut writer) = stream.into_split();
    let writing = async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    };
    let reading = read_conn(&state, &mut reader, &conn);
    tokio::select! {
        () = reading => {}
        () = writing => {}
        () = state.shutdown.cancelled() => {}
    }
    if let Some(net) = state.sip.net() {
        net.forget(&state, &conn);
    }
}

async fn read_conn(state: &State, reader: &mut tokio::net::tcp::OwnedReadHalf, conn: &Conn) {
    let limits = Limits::default();
    let mut decoder = StreamDecoder::new(limits);
    let mut buf = vec![0u8; 16 * 1024];
    // The bytes of the message being framed, for answering one that does not parse.
    let mut recent: Vec<u8> = Vec::new();
    // Bytes read before the connection is known to carry server-to-server traffic, kept so
    // that the tap gets them exactly as they came once it is.
    let mut unclassified: Option<Vec<u8>> = Some(Vec::new());
    let Some(net) = state.sip.net() else { return };
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let bytes = &buf[..n];
        if let Some(tap) = net.tapped(conn) {
            state
                .tap
                .record(tap, TapDirection::In, ChunkKind::Data, bytes);
        } else if let Some(seen) = unclassified.as_mut() {
            seen.extend_from_slice(bytes);
        }
        recent.extend_from_slice(bytes);
        decoder.feed(bytes);
        loop {
            let next = decoder.next_message();
            let keep = decoder.buffered().min(recent.len());
            match next {
                Ok(Some(message)) => {
                    recent.drain(..recent.len() - keep);
                    let peer =
                        net.tapped(conn).is_some() || state.sip_from_peer(&message, conn.peer);
                    if let Some(seen) = unclassified.take()
                        && peer
                    {
                        let tap = net.tcp_tap(state, conn, TapDirection::In);
                        state
                            .tap
                            .record(tap, TapDirection::In, ChunkKind::Data, &seen);
                    }
                    let incoming = Incoming {
                        message,
                        source: conn.peer,
                        transport: Transport::Tcp,
                        reply: Reply::Tcp(conn.clone()),
                    };
                    super::dispatch(state, incoming, peer);
                }
                Ok(None) => break,
                Err(error) => {
                    let peer = net.tapped(conn).is_some();
                    super::refuse_unparsed(state, &recent, &error, Reply::Tcp(conn.clone()), peer);
                    recent.drain(..recent.len() - keep);
                    if error.framing_lost() {
                        // Let the answer go out before the connection closes.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return;
                    }
                }
            }
        }
        if unclassified
            .as_ref()
            .is_some_and(|seen| seen.len() > limits.max_message)
        {
            unclassified = None;
        }
    }
}
