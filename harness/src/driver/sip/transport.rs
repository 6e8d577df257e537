//! The user agent's transport (RFC 3261 §17, §18; PROFILE.md §1): one task per actor owns
//! the sockets and the transactions of [`imfed_sip::transaction`].
//!
//! Over UDP the agent has one socket on `127.0.0.1:0` for everything: its requests go to the
//! home server, requests to it arrive there, and client transactions retransmit until a
//! final response or Timer F (§17.1.2). A request longer than 1300 bytes goes over a TCP
//! connection to the home server instead (§18.1.1). Over TCP the agent keeps one connection
//! to its home server for its requests and listens on its Contact port, where the server
//! connects to send it requests (§18.2.1); a response goes back on the connection its
//! request came on (§18.2.2), and the connection to the server closing ends the session
//! (PROFILE.md §8). Retransmitted requests are absorbed by server transactions and answered
//! again, never handed up twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use imfed_sip::codec::{Limits, StreamDecoder, parse_datagram};
use imfed_sip::transaction::{
    ClientEvent, ClientTransaction, ServerTransaction, Timers, TransactionKey, new_branch,
};
use imfed_sip::{Message, Method, Request, Response, Uri, Via};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::driver::random_token;

/// The largest request sent over UDP (RFC 3261 §18.1.1: 200 bytes below a 1500-byte MTU).
pub const UDP_MAX: usize = 1300;
/// Bound on opening a TCP connection and on writing to one.
const NET_BOUND: Duration = Duration::from_secs(5);

/// The transport a user agent uses (PROFILE.md §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// One UDP socket for everything.
    #[default]
    Udp,
    /// A TCP connection to the server and a listener for requests to the agent.
    Tcp,
}

impl Transport {
    /// `udp` or `tcp`, as a URI's `transport` parameter writes it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// The transport named `text` (any case).
    pub fn parse(text: &str) -> Option<Transport> {
        match text.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            _ => None,
        }
    }

    fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Why a request got no final response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The home server's TCP listener refused the connection.
    #[error("cannot connect to the home server at {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing a socket failed.
    #[error("SIP transport failed: {0}")]
    Io(String),
    /// The connection the request went on closed before the final response, or the agent
    /// has stopped.
    #[error("the connection to the home server closed before a final response")]
    Closed,
    /// The client transaction timed out (Timer F, RFC 3261 §17.1.2.2): the server stopped
    /// answering.
    #[error("no final response from the home server before the transaction timed out (Timer F)")]
    TransactionTimeout,
    /// The driver's bound elapsed first.
    #[error("no final response from the home server within {0:?}")]
    Timeout(Duration),
}

impl TransportError {
    /// Whether the error says the home server is gone (as opposed to slow).
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. } | TransportError::Io(_) | TransportError::Closed
        )
    }
}

/// What the agent's owner does with what arrives by itself.
pub trait Handler: Send + Sync + 'static {
    /// Answers a request sent to the agent (a retransmission never comes here).
    fn request(&self, request: &Request) -> Response;
    /// A response that answers no transaction of the agent (to a raw request, or a late
    /// retransmission).
    fn stray(&self, response: Response);
    /// The connection to the home server ended (TCP): the session is over.
    fn lost(&self, reason: String);
    /// Something worth a line in the transcript.
    fn note(&self, text: String);
}

enum Command {
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Response, TransportError>>,
    },
    Raw {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), TransportError>>,
    },
}

/// A handle on a running user agent: clones share its socket, transactions and Contact.
#[derive(Clone, Debug)]
pub struct Agent {
    commands: mpsc::Sender<Command>,
    local: SocketAddr,
    transport: Transport,
    outstanding: watch::Receiver<usize>,
}

impl Agent {
    /// The agent's transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The Contact URI for `user` (PROFILE.md §2: `sip:<user>@127.0.0.1:<port>;transport=…`).
    pub fn contact(&self, user: &str) -> Uri {
        Uri::new(Some(user), &self.local.ip().to_string())
            .with_port(self.local.port())
            .with_param("transport", Some(self.transport.name()))
    }

    /// Adds the request's top `Via` with a fresh branch and `rport` (RFC 3581, so that a
    /// UDP answer comes back to this socket): over UDP, `TCP` when the request is longer
    /// than [`UDP_MAX`] (RFC 3261 §18.1.1), which sends it over a TCP connection.
    pub fn stamp(&self, request: &mut Request) {
        let make = |transport: Transport| {
            let mut via = Via::new(
                transport.via(),
                &self.local.ip().to_string(),
                self.local.port(),
                &new_branch(&random_token(16)),
            );
            via.set_param("rport", None);
            via
        };
        let mut via = make(self.transport);
        if self.transport == Transport::Udp {
            let length = request.to_bytes().len() + via.to_string().len() + "Via: \r\n".len();
            if length > UDP_MAX {
                via = make(Transport::Tcp);
            }
        }
        request.headers.prepend("Via", via.to_string());
    }

    /// Sends a stamped request in a client transaction and waits up to `bound` for its
    /// final response (provisional ones are skipped).
    ///
    /// # Errors
    /// [`TransportError`] when no final response came.
    pub async fn send(
        &self,
        request: Request,
        bound: Duration,
    ) -> Result<Response, TransportError> {
        let (reply, answer) = oneshot::channel();
        tokio::time::timeout(bound, async {
            self.commands
                .send(Command::Request { request, reply })
                .await
                .map_err(|_| TransportError::Closed)?;
            answer.await.map_err(|_| TransportError::Closed)?
        })
        .await
        .map_err(|_| TransportError::Timeout(bound))?
    }

    /// Writes `bytes` as they are to the home server: a datagram from the agent's socket
    /// (UDP), or a new TCP connection (so that a server closing it on bad input does not end
    /// the session). Over TCP a text without a `Content-Length` header gets one, counted
    /// from the empty line, since a stream cannot be framed without it (RFC 3261 §18.3): what
    /// a scenario writes about lengths is otherwise left as it is. Answers come to
    /// [`Handler::stray`].
    ///
    /// # Errors
    /// [`TransportError`] when they could not be written.
    pub async fn send_raw(&self, bytes: Vec<u8>) -> Result<(), TransportError> {
        let bytes = match self.transport {
            Transport::Udp => bytes,
            Transport::Tcp => with_content_length(bytes),
        };
        let (reply, answer) = oneshot::channel();
        tokio::time::timeout(NET_BOUND * 2, async {
            self.commands
                .send(Command::Raw { bytes, reply })
                .await
                .map_err(|_| TransportError::Closed)?;
            answer.await.map_err(|_| TransportError::Closed)?
        })
        .await
        .map_err(|_| TransportError::Timeout(NET_BOUND * 2))?
    }

    /// Waits up to `bound` until every request the agent sent has its final response (or
    /// timed out); whether that happened.
    pub async fn settled(&self, bound: Duration) -> bool {
        let mut outstanding = self.outstanding.clone();
        tokio::time::timeout(bound, outstanding.wait_for(|count| *count == 0))
            .await
            .is_ok_and(|settled| settled.is_ok())
    }
}

/// `bytes` with a `Content-Length` header for the body after the first empty line, unless
/// the head already has one (in any case, full or compact form).
fn with_content_length(bytes: Vec<u8>) -> Vec<u8> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        // A head with no empty line after it (as a datagram may be): the length is 0.
        let mut head = bytes;
        while head.ends_with(b"\r\n") {
            head.truncate(head.len() - 2);
        }
        return with_content_length([head, b"\r\n\r\n".to_vec()].concat());
    };
    let head = String::from_utf8_lossy(&bytes[..end]);
    let has = head.split("\r\n").skip(1).any(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| imfed_sip::headers::same_name(name.trim(), "Content-Length"))
    });
    if has {
        return bytes;
    }
    let body = bytes.len() - end - 4;
    let mut out = bytes[..end].to_vec();
    out.extend_from_slice(format!("\r\nContent-Length: {body}").as_bytes());
    out.extend_from_slice(&bytes[end..]);
    out
}

/// A running user agent: its task and its handle.
#[derive(Debug)]
pub struct UserAgent {
    agent: Agent,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Drop for UserAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl UserAgent {
    /// Binds the agent's socket (UDP) or connects to `home` and starts the Contact listener
    /// (TCP), all on loopback, and starts the agent's task.
    ///
    /// # Errors
    /// [`TransportError::Connect`] when the home server refuses the TCP connection,
    /// [`TransportError::Io`] when a socket cannot be bound.
    pub async fn start<H: Handler>(
        home: SocketAddr,
        transport: Transport,
        timers: Timers,
        handler: Arc<H>,
    ) -> Result<UserAgent, TransportError> {
        let io = |error: std::io::Error| TransportError::Io(error.to_string());
        let (net, net_rx) = mpsc::channel(256);
        let ids = Arc::new(AtomicU64::new(1));
        let mut readers = JoinSet::new();
        let mut writers = HashMap::new();
        let (udp, server_conn, local) = match transport {
            Transport::Udp => {
                let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.map_err(io)?);
                let local = socket.local_addr().map_err(io)?;
                readers.spawn(read_udp(socket.clone(), net.clone()));
                (Some(socket), None, local)
            }
            Transport::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
                let local = listener.local_addr().map_err(io)?;
                let (id, writer) = connect(home, &ids, &net, &mut readers).await?;
                writers.insert(id, writer);
                readers.spawn(accept(listener, ids.clone(), net.clone()));
                (None, Some(id), local)
            }
        };
        let (commands, commands_rx) = mpsc::channel(64);
        let (outstanding_tx, outstanding) = watch::channel(0);
        let shutdown = CancellationToken::new();
        let core = Core {
            home,
            transport,
            timers,
            handler,
            udp,
            writers,
            server_conn,
            ids,
            net,
            readers,
            clients: HashMap::new(),
            servers: HashMap::new(),
            outstanding: outstanding_tx,
        };
        let task = tokio::spawn(core.run(commands_rx, net_rx, shutdown.clone()));
        Ok(UserAgent {
            agent: Agent {
                commands,
                local,
                transport,
                outstanding,
            },
            shutdown,
            task,
        })
    }

    /// A handle on the agent.
    pub fn agent(&self) -> Agent {
        self.agent.clone()
    }

    /// Stops the agent: closes its sockets once its task has ended (bounded).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Where a message came from, where its answer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    Udp(SocketAddr),
    Tcp(u64),
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Udp(addr) => write!(f, "udp {addr}"),
            Peer::Tcp(id) => write!(f, "tcp connection {id}"),
        }
    }
}

enum NetEvent {
    Message(Peer, Message),
    Unreadable(Peer, String),
    Accepted(u64, OwnedWriteHalf),
    Closed(u64, String),
}

struct Pending {
    transaction: ClientTransaction,
    reply: Option<oneshot::Sender<Result<Response, TransportError>>>,
    peer: Peer,
}

struct Core<H> {
    home: SocketAddr,
    transport: Transport,
    timers: Timers,
    handler: Arc<H>,
    udp: Option<Arc<UdpSocket>>,
    writers: HashMap<u64, OwnedWriteHalf>,
    /// The connection to the home server the agent's requests use (TCP).
    server_conn: Option<u64>,
    ids: Arc<AtomicU64>,
    net: mpsc::Sender<NetEvent>,
    /// Socket readers and the Contact listener; dropped (aborted) with the task.
    readers: JoinSet<()>,
    clients: HashMap<TransactionKey, Pending>,
    servers: HashMap<TransactionKey, (ServerTransaction, Peer)>,
    outstanding: watch::Sender<usize>,
}

/// Reads datagrams until the task is aborted.
async fn read_udp(socket: Arc<UdpSocket>, net: mpsc::Sender<NetEvent>) {
    let limits = Limits::default();
    let mut buf = vec![0; 65_536];
    loop {
        let Ok((read, from)) = socket.recv_from(&mut buf).await else {
            // ICMP errors surface on some systems as a failed receive: not an end.
            continue;
        };
        let event = match parse_datagram(&buf[..read], &limits) {
            Ok(Some(message)) => NetEvent::Message(Peer::Udp(from), message),
            Ok(None) => continue,
            Err(error) => NetEvent::Unreadable(Peer::Udp(from), error.to_string()),
        };
        if net.send(event).await.is_err() {
            return;
        }
    }
}

/// Reads one TCP connection until it closes or its framing is lost.
async fn read_tcp(id: u64, mut read: tokio::net::tcp::OwnedReadHalf, net: mpsc::Sender<NetEvent>) {
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut buf = vec![0; 16 * 1024];
    let why = loop {
        match read.read(&mut buf).await {
            Ok(0) => break "closed by the peer".to_string(),
            Ok(n) => decoder.feed(&buf[..n]),
            Err(error) => break error.to_string(),
        }
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if net
                        .send(NetEvent::Message(Peer::Tcp(id), message))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    let lost = error.framing_lost();
                    let text = error.to_string();
                    if net
                        .send(NetEvent::Unreadable(Peer::Tcp(id), text.clone()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if lost {
                        let _ = net
                            .send(NetEvent::Closed(id, format!("framing lost: {text}")))
                            .await;
                        return;
                    }
                }
            }
        }
    };
    let _ = net.send(NetEvent::Closed(id, why)).await;
}

/// Opens a connection to `home` and starts reading it.
async fn connect(
    home: SocketAddr,
    ids: &AtomicU64,
    net: &mpsc::Sender<NetEvent>,
    readers: &mut JoinSet<()>,
) -> Result<(u64, OwnedWriteHalf), TransportError> {
    let tcp = tokio::time::timeout(NET_BOUND, TcpStream::connect(home))
        .await
        .map_err(|_| TransportError::Connect {
            addr: home,
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        })?
        .map_err(|source| TransportError::Connect { addr: home, source })?;
    let _ = tcp.set_nodelay(true);
    let id = ids.fetch_add(1, Ordering::Relaxed);
    let (read, write) = tcp.into_split();
    readers.spawn(read_tcp(id, read, net.clone()));
    Ok((id, write))
}

/// Accepts connections on the Contact listener; each is read by a task of its own, dropped
/// with this one.
async fn accept(listener: TcpListener, ids: Arc<AtomicU64>, net: mpsc::Sender<NetEvent>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let (read, write) = tcp.into_split();
                // The writer is registered before anything read on it arrives.
                if net.send(NetEvent::Accepted(id, write)).await.is_err() {
                    return;
                }
                connections.spawn(read_tcp(id, read, net.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn instant(deadline: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(deadline)
}

impl<H: Handler> Core<H> {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut net_rx: mpsc::Receiver<NetEvent>,
        shutdown: CancellationToken,
    ) {
        loop {
            let deadline = self.next_timeout();
            tokio::select! {
                () = shutdown.cancelled() => break,
                command = commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => break,
                },
                Some(event) = net_rx.recv() => self.net(event).await,
                () = tokio::time::sleep_until(deadline.map_or_else(
                    || tokio::time::Instant::now() + Duration::from_secs(3600),
                    instant,
                )), if deadline.is_some() => self.timeouts().await,
            }
            let waiting = self
                .clients
                .values()
                .filter(|pending| pending.reply.is_some())
                .count();
            self.outstanding.send_if_modified(|count| {
                let changed = *count != waiting;
                *count = waiting;
                changed
            });
        }
        self.readers.abort_all();
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(|pending| pending.transaction.poll_timeout())
            .chain(
                self.servers
                    .values()
                    .filter_map(|(transaction, _)| transaction.poll_timeout()),
            )
            .min()
    }

    /// Writes `bytes` to `peer`; a TCP connection that cannot be written is dropped.
    async fn write(&mut self, peer: Peer, bytes: &[u8]) -> Result<(), TransportError> {
        match peer {
            Peer::Udp(addr) => {
                let socket = self
                    .udp
                    .as_ref()
                    .ok_or_else(|| TransportError::Io("no UDP socket".into()))?;
                socket
                    .send_to(bytes, addr)
                    .await
                    .map(|_| ())
                    .map_err(|error| TransportError::Io(error.to_string()))
            }
            Peer::Tcp(id) => {
                let writer = self.writers.get_mut(&id).ok_or(TransportError::Closed)?;
                let written = tokio::time::timeout(NET_BOUND, writer.write_all(bytes)).await;
                match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => {
                        self.closed(id, error.to_string());
                        Err(TransportError::Io(error.to_string()))
                    }
                    Err(_) => {
                        self.closed(id, "a write timed out".into());
                        Err(TransportError::Io(
                            "a write to the home server timed out".into(),
                        ))
                    }
                }
            }
        }
    }

    /// The connection to the home server, opened when there is none.
    async fn server_connection(&mut self) -> Result<u64, TransportError> {
        if let Some(id) = self.server_conn
            && self.writers.contains_key(&id)
        {
            return Ok(id);
        }
        let (id, writer) = connect(self.home, &self.ids, &self.net, &mut self.readers).await?;
        self.writers.insert(id, writer);
        self.server_conn = Some(id);
        Ok(id)
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Request { request, reply } => {
                let tcp = request
                    .top_via()
                    .is_ok_and(|via| via.transport.eq_ignore_ascii_case("TCP"));
                let peer = if tcp {
                    match self.server_connection().await {
                        Ok(id) => Peer::Tcp(id),
                        Err(error) => {
                            let _ = reply.send(Err(error));
                            return;
                        }
                    }
                } else {
                    Peer::Udp(self.home)
                };
                let now = Instant::now();
                let mut transaction = ClientTransaction::new(request, tcp, self.timers, now);
                let key = transaction.key().clone();
                while let Some(bytes) = transaction.poll_transmit(now) {
                    if let Err(error) = self.write(peer, &bytes).await {
                        let _ = reply.send(Err(error));
                        return;
                    }
                }
                self.clients.insert(
                    key,
                    Pending {
                        transaction,
                        reply: Some(reply),
                        peer,
                    },
                );
            }
            Command::Raw { bytes, reply } => {
                let written = match self.transport {
                    Transport::Udp => self.write(Peer::Udp(self.home), &bytes).await,
                    Transport::Tcp => {
                        match connect(self.home, &self.ids, &self.net, &mut self.readers).await {
                            Ok((id, writer)) => {
                                self.writers.insert(id, writer);
                                self.write(Peer::Tcp(id), &bytes).await
                            }
                            Err(error) => Err(error),
                        }
                    }
                };
                let _ = reply.send(written);
            }
        }
    }

    async fn net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Message(peer, Message::Request(request)) => {
                self.incoming(peer, request).await;
            }
            NetEvent::Message(_, Message::Response(response)) => self.response(response),
            NetEvent::Unreadable(peer, error) => self
                .handler
                .note(format!("unreadable SIP from {peer}, ignored: {error}")),
            NetEvent::Accepted(id, writer) => {
                self.writers.insert(id, writer);
            }
            NetEvent::Closed(id, why) => self.closed(id, why),
        }
    }

    fn closed(&mut self, id: u64, why: String) {
        if self.writers.remove(&id).is_none() && self.server_conn != Some(id) {
            return;
        }
        if self.server_conn == Some(id) {
            self.server_conn = None;
            if self.transport == Transport::Tcp {
                self.handler
                    .lost(format!("the home server closed the TCP connection ({why})"));
            }
        }
        // What was sent on it will get no answer there.
        for pending in self.clients.values_mut() {
            if pending.peer == Peer::Tcp(id)
                && let Some(reply) = pending.reply.take()
            {
                let _ = reply.send(Err(TransportError::Closed));
            }
        }
        self.clients
            .retain(|_, pending| pending.peer != Peer::Tcp(id));
        self.servers.retain(|_, (_, peer)| *peer != Peer::Tcp(id));
    }

    fn response(&mut self, response: Response) {
        let key = TransactionKey::of_response(&response).ok();
        let Some(pending) = key.as_ref().and_then(|key| self.clients.get_mut(key)) else {
            self.handler.stray(response);
            return;
        };
        match pending
            .transaction
            .handle_response(response, Instant::now())
        {
            Some(ClientEvent::Final(response)) => {
                if let Some(reply) = pending.reply.take() {
                    let _ = reply.send(Ok(response));
                }
            }
            Some(ClientEvent::Timeout) => {
                if let Some(reply) = pending.reply.take() {
                    let _ = reply.send(Err(TransportError::TransactionTimeout));
                }
            }
            // A provisional response, or a retransmitted final one the transaction absorbs.
            Some(ClientEvent::Provisional(_)) | None => {}
        }
        self.clients
            .retain(|_, pending| !pending.transaction.is_terminated());
    }

    async fn incoming(&mut self, peer: Peer, request: Request) {
        let now = Instant::now();
        let key = TransactionKey::of_request(&request).ok();
        if let Some(key) = &key
            && let Some((transaction, _)) = self.servers.get_mut(key)
        {
            // A retransmission: the same answer again, nothing handed up (§17.2.2).
            if let Some(bytes) = transaction.handle_retransmission(now) {
                debug!(%peer, "request retransmission answered again");
                let _ = self.write(peer, &bytes).await;
            }
            return;
        }
        if request.method == Method::Ack {
            return;
        }
        let reliable = matches!(peer, Peer::Tcp(_));
        let mut transaction = match ServerTransaction::new(&request, reliable, self.timers, now) {
            Ok(transaction) => transaction,
            Err(error) => {
                let (status, reason) = error.status();
                self.handler.note(format!(
                    "a request from {peer} answered {status} {reason}: {error}"
                ));
                let response = Response::to(&request, status, Some(&reason), None);
                let _ = self.write(peer, &response.to_bytes()).await;
                return;
            }
        };
        let response = self.handler.request(&request);
        let bytes = transaction.respond(&response, now);
        let _ = self.write(peer, &bytes).await;
        self.servers
            .insert(transaction.key().clone(), (transaction, peer));
    }

    async fn timeouts(&mut self) {
        let now = Instant::now();
        let mut retransmit = Vec::new();
        for pending in self.clients.values_mut() {
            if pending.transaction.poll_timeout().is_none_or(|at| at > now) {
                continue;
            }
            if let Some(ClientEvent::Timeout) = pending.transaction.handle_timeout(now)
                && let Some(reply) = pending.reply.take()
            {
                let _ = reply.send(Err(TransportError::TransactionTimeout));
            }
            while let Some(bytes) = pending.transaction.poll_transmit(now) {
                retransmit.push((pending.peer, bytes));
            }
        }
        for (peer, bytes) in retransmit {
            let _ = self.write(peer, &bytes).await;
        }
        self.clients
            .retain(|_, pending| !pending.transaction.is_terminated());
        for (transaction, _) in self.servers.values_mut() {
            if transaction.poll_timeout().is_some_and(|at| at <= now) {
                transaction.handle_timeout(now);
            }
        }
        self.servers
            .retain(|_, (transaction, _)| !transaction.is_terminated());
    }
}

#[cfg(test)]
mod tests {
    use super::with_content_length;

    #[test]
    fn a_raw_request_over_tcp_gets_a_content_length_only_when_it_has_none() {
        let text = |s: &str| String::from_utf8(with_content_length(s.as_bytes().to_vec())).unwrap();
        assert_eq!(
            text("MESSAGE sip:b@x SIP/2.0\r\nCall-ID: 1\r\n\r\nhello"),
            "MESSAGE sip:b@x SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 5\r\n\r\nhello"
        );
        // A head with no empty line is a request with no body.
        assert_eq!(
            text("OPTIONS sip:x SIP/2.0\r\nCall-ID: 2\r\n"),
            "OPTIONS sip:x SIP/2.0\r\nCall-ID: 2\r\nContent-Length: 0\r\n\r\n"
        );
        // What the scenario wrote about the length stays, wrong or not, in any form.
        for written in [
            "MESSAGE sip:b@x SIP/2.0\r\nContent-Length: 500\r\n\r\nshort",
            "MESSAGE sip:b@x SIP/2.0\r\nl: 1\r\n\r\nshort",
        ] {
            assert_eq!(text(written), written);
        }
    }
}
