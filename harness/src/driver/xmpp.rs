//! The XMPP driver: one actor's client connection (RFC 6120 c2s), recorded in the transcript.
//!
//! Login runs the sans-I/O [`imfed_xmpp::client::Login`]; afterwards a reader task puts every
//! received stanza in an inbox that expectations search, so nothing that arrives early is
//! lost, and records how and when the stream ended, so that silence on a dead stream is
//! never taken for "nothing arrived". Every wait is bounded; roster pushes and server pings
//! are answered as RFC 6121 §2.1.6 and XEP-0199 ask.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::RootCertStore;
use std::time::{Duration, Instant};

use imfed_reports::{Flow, TranscriptLine};
use imfed_xmpp::client::{Login, LoginAction, LoginConfig, TlsPolicy};
use imfed_xmpp::{Element, Jid, Limits, StreamEvent, StreamParser, ns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::expect::Matcher;

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The socket failed or closed.
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the stream or sent a stream error.
    #[error("stream ended: {0}")]
    Stream(String),
    /// Login failed.
    #[error("login failed: {0}")]
    Login(String),
    /// The server sent bytes that are not a valid XMPP stream.
    #[error("invalid stream from server: {0}")]
    Parse(#[from] imfed_xmpp::ParseError),
    /// A bound elapsed.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

/// The transcript shared by a scenario's actors.
#[derive(Clone, Debug)]
pub struct Transcript {
    started: Instant,
    lines: Arc<Mutex<Vec<TranscriptLine>>>,
    /// Counts the streams of the scenario that ended unasked, so that a wait on one actor
    /// ends as soon as another actor's stream is lost instead of running to its bound.
    lost: Arc<watch::Sender<u64>>,
}

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Self {
        Transcript {
            started: Instant::now(),
            lines: Arc::default(),
            lost: Arc::new(watch::channel(0).0),
        }
    }

    /// When the scenario started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records a line.
    pub fn record(&self, actor: &str, flow: Flow, text: String) {
        let t_ms = self.started.elapsed().as_millis() as u64;
        self.lines
            .lock()
            .expect("transcript lock")
            .push(TranscriptLine {
                t_ms,
                actor: actor.to_string(),
                flow,
                text,
            });
    }

    /// Everything recorded.
    pub fn lines(&self) -> Vec<TranscriptLine> {
        self.lines.lock().expect("transcript lock").clone()
    }
}

impl Default for Transcript {
    fn default() -> Self {
        Self::new()
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

impl Io {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(tcp) => tcp.read(buf).await,
            Io::Tls(tls) => tls.read(buf).await,
            Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain(tcp) => tcp.write_all(bytes).await,
            Io::Tls(tls) => {
                tls.write_all(bytes).await?;
                tls.flush().await
            }
            Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// The transport and parser shared by login sessions and registration streams.
struct Wire {
    io: Io,
    parser: StreamParser,
    buf: Vec<u8>,
}

impl Wire {
    async fn connect(addr: SocketAddr) -> Result<Wire, DriverError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| DriverError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        Ok(Wire {
            io: Io::Plain(tcp),
            parser: StreamParser::new(Limits::default()),
            buf: vec![0; 16 * 1024],
        })
    }

    async fn read_event(&mut self) -> Result<StreamEvent, DriverError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(event);
            }
            let read = self.io.read(&mut self.buf).await?;
            if read == 0 {
                return Err(DriverError::Stream("connection closed by server".into()));
            }
            self.parser.feed(&self.buf[..read]);
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), DriverError> {
        Ok(self.io.write(bytes).await?)
    }

    /// Upgrades to TLS (after `<proceed/>`) and resets the parser for the new stream.
    ///
    /// With `roots`, the server's certificate must chain to them and name `domain`
    /// (RFC 6120 §13.7.2); without, the handshake is checked but the certificate is not
    /// (the suite's own servers use throwaway certificates).
    async fn start_tls(
        &mut self,
        domain: &str,
        roots: Option<&Arc<RootCertStore>>,
    ) -> Result<(), DriverError> {
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(DriverError::Login("STARTTLS twice".into()));
        };
        let name = rustls::pki_types::ServerName::try_from(domain.to_string())
            .map_err(|error| DriverError::Login(format!("server name {domain}: {error}")))?;
        let connector = match roots {
            Some(roots) => {
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|error| DriverError::Login(format!("TLS configuration: {error}")))?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
                tokio_rustls::TlsConnector::from(Arc::new(config))
            }
            None => imfed_server::tls::insecure_connector(),
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|error| DriverError::Login(format!("TLS handshake: {error}")))?;
        self.io = Io::Tls(Box::new(tls));
        self.parser.reset();
        Ok(())
    }
}

/// How to log in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The full JID to bind (bare: the server picks a resource).
    pub jid: Jid,
    /// The password.
    pub password: String,
    /// STARTTLS policy.
    pub tls: TlsPolicy,
    /// CA certificates the server's certificate must chain to (none: not verified).
    pub roots: Option<Arc<RootCertStore>>,
}

/// How an actor's stream ended, as its reader saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The server closed the stream (`</stream:stream>`).
    ClosedByServer,
    /// The server sent a stream error (RFC 6120 §4.9).
    StreamError {
        /// The defined condition, e.g. `invalid-from`.
        condition: String,
        /// The error's text, if any.
        text: Option<String>,
    },
    /// The TCP connection closed without the stream being closed.
    TcpClosed,
    /// Reading or writing failed (reset, broken pipe, TLS failure).
    Failed(String),
    /// The server sent bytes that are not a valid XMPP stream.
    Invalid(String),
    /// The harness closed or dropped it (a `logout` or `disconnect` step, or teardown).
    ByHarness,
}

impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndCause::ClosedByServer => f.write_str("stream closed by the server"),
            EndCause::StreamError {
                condition,
                text: None,
            } => write!(f, "stream error <{condition}/> from the server"),
            EndCause::StreamError {
                condition,
                text: Some(text),
            } => write!(f, "stream error <{condition}/> from the server ({text})"),
            EndCause::TcpClosed => {
                f.write_str("TCP connection closed by the server without closing the stream")
            }
            EndCause::Failed(error) => write!(f, "connection failed: {error}"),
            EndCause::Invalid(error) => write!(f, "invalid XML from the server: {error}"),
            EndCause::ByHarness => f.write_str("closed by the harness"),
        }
    }
}

/// The end of an actor's stream: when and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Milliseconds since the scenario started.
    pub t_ms: u64,
    /// What happened.
    pub cause: EndCause,
    /// Whether a step asked for it (a logout, a disconnect, or a stream error a step
    /// allowed).
    pub expected: bool,
}

/// Why a wait on a session ended without what it waited for.
#[derive(Clone, Debug)]
pub struct WaitError {
    /// What arrived and was not matched, serialized, for the failure report.
    pub arrived: Vec<String>,
    /// Set when the stream ended (the wait stopped at once); `None` when the bound elapsed
    /// or the wait was cut short.
    pub ended: Option<Ended>,
    /// Another actor's stream of the scenario ended unasked, which ended this wait early
    /// (the run fails for that reason).
    pub cut_short: bool,
}

/// Why a liveness round trip failed.
#[derive(Clone, Debug)]
pub enum Liveness {
    /// The stream ended.
    Ended(Ended),
    /// The server did not answer within the bound: the session has stalled.
    NoAnswer(Duration),
    /// Another actor's stream was lost before the answer came (the run fails for that).
    CutShort,
}

/// What a session's reader and writer tasks share with it.
#[derive(Debug, Default)]
struct Status {
    ended: Mutex<Option<Ended>>,
    /// Stream error conditions a step allowed the server to close the stream with.
    allowed: Mutex<Vec<String>>,
}

impl Status {
    /// Records the end unless one is recorded already; returns whether this call did.
    fn end(&self, transcript: &Transcript, cause: EndCause) -> bool {
        let mut ended = self.ended.lock().expect("status lock");
        if ended.is_some() {
            return false;
        }
        let expected = match &cause {
            EndCause::ByHarness => true,
            EndCause::StreamError { condition, .. } => self
                .allowed
                .lock()
                .expect("status lock")
                .contains(condition),
            _ => false,
        };
        *ended = Some(Ended {
            t_ms: transcript.started.elapsed().as_millis() as u64,
            cause,
            expected,
        });
        if !expected {
            transcript.lost.send_modify(|lost| *lost += 1);
        }
        true
    }

    fn ended(&self) -> Option<Ended> {
        self.ended.lock().expect("status lock").clone()
    }
}

type Reader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type Writer = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// One actor's connection after login.
///
/// A reader task reads the stream for as long as it lasts: it records each stanza in the
/// transcript when it arrives, answers roster pushes (RFC 6121 §2.1.6) and server pings
/// (XEP-0199), and records how and when the stream ended, so an ended stream is known at
/// once and never reads as silence. A writer task owns the write half, so a server that stops
/// reading cannot block the reader or the runner.
pub struct Session {
    actor: String,
    /// The bound full JID.
    pub jid: Jid,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    arrivals: mpsc::UnboundedReceiver<Element>,
    inbox: VecDeque<Element>,
    status: Arc<Status>,
    transcript: Transcript,
    reader: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
    next_id: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("actor", &self.actor)
            .field("jid", &self.jid)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Is this a request the client answers by itself: a roster push or a server ping?
fn auto_reply(stanza: &Element) -> Option<Element> {
    if !stanza.is("iq", ns::CLIENT) {
        return None;
    }
    let is_push = stanza.attr("type") == Some("set") && stanza.child("query", ns::ROSTER).is_some();
    let is_ping = stanza.attr("type") == Some("get") && stanza.child("ping", ns::PING).is_some();
    (is_push || is_ping).then(|| {
        Element::new("iq", ns::CLIENT)
            .with_attr("type", "result")
            .with_opt_attr("id", stanza.attr("id"))
            .with_opt_attr("to", stanza.attr("from"))
    })
}

/// Reads the stream until it ends; see [`Session`].
async fn read_stream(
    mut reader: Reader,
    mut parser: StreamParser,
    actor: String,
    arrivals: mpsc::UnboundedSender<Element>,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    status: Arc<Status>,
    transcript: Transcript,
) {
    let mut buf = vec![0; 16 * 1024];
    let cause = 'read: loop {
        loop {
            let stanza = match parser.next_event() {
                Ok(Some(StreamEvent::Element(stanza))) => stanza,
                Ok(Some(StreamEvent::End)) => break 'read EndCause::ClosedByServer,
                Ok(Some(StreamEvent::Header(_))) => {
                    break 'read EndCause::Invalid("a second stream header".into());
                }
                Ok(None) => break,
                Err(error) => break 'read EndCause::Invalid(error.to_string()),
            };
            transcript.record(&actor, Flow::Received, stanza.to_xml(ns::CLIENT));
            if let Some((condition, text)) = imfed_xmpp::stream::parse_stream_error(&stanza) {
                break 'read EndCause::StreamError {
                    condition: condition.to_string(),
                    text,
                };
            }
            if let Some(reply) = auto_reply(&stanza) {
                let mut out = Vec::with_capacity(128);
                reply.write_to(&mut out, ns::CLIENT);
                transcript.record(&actor, Flow::Sent, String::from_utf8_lossy(&out).into());
                let _ = outgoing.send(out);
            }
            // The receiver may be gone (the session was dropped): reading goes on until the
            // task is aborted.
            let _ = arrivals.send(stanza);
        }
        match reader.read(&mut buf).await {
            Ok(0) => break EndCause::TcpClosed,
            Ok(read) => parser.feed(&buf[..read]),
            Err(error) => break EndCause::Failed(error.to_string()),
        }
    };
    if status.end(&transcript, cause.clone()) {
        transcript.record(&actor, Flow::Note, cause.to_string());
    }
}

/// Writes what the session and its reader queue, in order, until the queue closes.
async fn write_stream(
    mut writer: Writer,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    actor: String,
    status: Arc<Status>,
    transcript: Transcript,
) {
    while let Some(bytes) = outgoing.recv().await {
        let written = async {
            writer.write_all(&bytes).await?;
            writer.flush().await
        }
        .await;
        if let Err(error) = written {
            let cause = EndCause::Failed(format!("write: {error}"));
            if status.end(&transcript, cause.clone()) {
                transcript.record(&actor, Flow::Note, cause.to_string());
            }
            return;
        }
    }
    let _ = writer.shutdown().await;
}

impl Session {
    /// Connects to `addr` and logs in within `bound`.
    ///
    /// # Errors
    /// [`DriverError`] naming what failed.
    pub async fn login(
        actor: &str,
        addr: SocketAddr,
        credentials: &Credentials,
        transcript: Transcript,
        bound: Duration,
    ) -> Result<Session, DriverError> {
        let (wire, jid) = tokio::time::timeout(
            bound,
            Self::login_inner(actor, addr, credentials, &transcript),
        )
        .await
        .map_err(|_| DriverError::Timeout(bound, format!("{actor} to log in")))??;
        Ok(Self::start(actor, jid, wire, transcript))
    }

    async fn login_inner(
        actor: &str,
        addr: SocketAddr,
        credentials: &Credentials,
        transcript: &Transcript,
    ) -> Result<(Wire, Jid), DriverError> {
        let mut wire = Wire::connect(addr).await?;
        let mut config = LoginConfig::new(
            credentials.jid.clone(),
            credentials.password.clone(),
            random_token(24),
        );
        config.tls = credentials.tls;
        let mut login = Login::new(config);
        let mut actions: VecDeque<LoginAction> = login.start().into();
        loop {
            while let Some(action) = actions.pop_front() {
                match action {
                    LoginAction::Send(bytes) => wire.write(&bytes).await?,
                    LoginAction::ResetParser => wire.parser.reset(),
                    LoginAction::StartTls => {
                        wire.start_tls(login.domain(), credentials.roots.as_ref())
                            .await?;
                        actions.extend(login.tls_established());
                    }
                    LoginAction::Done(jid) => {
                        transcript.record(
                            actor,
                            Flow::Note,
                            format!(
                                "logged in as {jid}{}",
                                if login.is_secure() { " (TLS)" } else { "" }
                            ),
                        );
                        return Ok((wire, jid));
                    }
                }
            }
            let event = wire.read_event().await?;
            actions.extend(
                login
                    .handle(event)
                    .map_err(|error| DriverError::Login(error.to_string()))?,
            );
        }
    }

    /// Splits the logged-in stream into its reader and writer tasks.
    fn start(actor: &str, jid: Jid, wire: Wire, transcript: Transcript) -> Session {
        let (reader, writer): (Reader, Writer) = match wire.io {
            Io::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                (Box::new(read), Box::new(write))
            }
            Io::Tls(tls) => {
                let (read, write) = tokio::io::split(*tls);
                (Box::new(read), Box::new(write))
            }
            Io::Gone => unreachable!("a logged-in stream has a transport"),
        };
        let status = Arc::new(Status::default());
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
        // Unbounded on purpose: the reader must never wait (it answers the server's pings
        // while the runner is busy), and a scenario's traffic is bounded by its steps.
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_stream(
            reader,
            wire.parser,
            actor.to_string(),
            arrivals_tx,
            outgoing.clone(),
            status.clone(),
            transcript.clone(),
        ));
        let writer = tokio::spawn(write_stream(
            writer,
            outgoing_rx,
            actor.to_string(),
            status.clone(),
            transcript.clone(),
        ));
        Session {
            actor: actor.to_string(),
            jid,
            outgoing,
            arrivals,
            inbox: VecDeque::new(),
            status,
            transcript,
            reader,
            writer,
            next_id: 0,
        }
    }

    /// How the stream ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        self.status.ended()
    }

    /// Lets the server close this stream with one of `conditions` (RFC 6120 §4.9.3) without
    /// that counting as an unasked end.
    pub fn allow_stream_errors(&self, conditions: &[String]) {
        self.status
            .allowed
            .lock()
            .expect("status lock")
            .extend(conditions.iter().cloned());
    }

    /// "bob (sut.test): stream closed by the server at 520 ms".
    pub fn describe_end(&self, ended: &Ended) -> String {
        format!(
            "{} ({}): {} at {} ms",
            self.actor,
            self.jid.domain(),
            ended.cause,
            ended.t_ms
        )
    }

    fn queue(&self, bytes: Vec<u8>) -> Result<(), DriverError> {
        if let Some(ended) = self.ended() {
            return Err(DriverError::Stream(self.describe_end(&ended)));
        }
        self.outgoing
            .send(bytes)
            .map_err(|_| DriverError::Stream(format!("{}: the writer has stopped", self.actor)))
    }

    /// Sends one element (queued to the writer in order).
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the stream has ended.
    pub async fn send(&mut self, element: &Element) -> Result<(), DriverError> {
        let mut out = Vec::with_capacity(256);
        element.write_to(&mut out, ns::CLIENT);
        self.transcript.record(
            &self.actor,
            Flow::Sent,
            String::from_utf8_lossy(&out).into_owned(),
        );
        self.queue(out)
    }

    /// Sends raw text.
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the stream has ended.
    pub async fn send_raw(&mut self, text: &str) -> Result<(), DriverError> {
        self.transcript
            .record(&self.actor, Flow::Sent, text.to_string());
        self.queue(text.as_bytes().to_vec())
    }

    /// Moves what the reader has received into the inbox without waiting.
    fn drain_arrivals(&mut self) {
        while let Ok(stanza) = self.arrivals.try_recv() {
            self.inbox.push_back(stanza);
        }
    }

    /// Takes the first stanza in the inbox matching `matcher`, waiting up to `bound` for it.
    ///
    /// # Errors
    /// [`WaitError`] with what arrived unmatched; its `ended` is set when the stream ended,
    /// which ends the wait at once.
    pub async fn wait_for(
        &mut self,
        matcher: &Matcher,
        bound: Duration,
    ) -> Result<Element, WaitError> {
        self.wait_where(bound, |stanza| matcher.matches(stanza))
            .await
    }

    /// Like [`Session::wait_for`] with any predicate.
    ///
    /// # Errors
    /// As [`Session::wait_for`].
    pub async fn wait_where(
        &mut self,
        bound: Duration,
        predicate: impl Fn(&Element) -> bool,
    ) -> Result<Element, WaitError> {
        let deadline = tokio::time::Instant::now() + bound;
        let mut lost = self.transcript.lost.subscribe();
        self.drain_arrivals();
        let mut checked = 0;
        loop {
            if let Some(index) = self.inbox.iter().skip(checked).position(&predicate) {
                return Ok(self.inbox.remove(checked + index).expect("index in range"));
            }
            checked = self.inbox.len();
            let failed = |session: &Session, cut_short| WaitError {
                arrived: session.unmatched(),
                ended: session.ended(),
                cut_short,
            };
            tokio::select! {
                arrival = tokio::time::timeout_at(deadline, self.arrivals.recv()) => match arrival {
                    Ok(Some(stanza)) => {
                        self.inbox.push_back(stanza);
                        self.drain_arrivals();
                    }
                    // The reader has stopped: everything it read is in the inbox, and it
                    // recorded why before stopping.
                    Ok(None) => return Err(failed(self, false)),
                    Err(_) => {
                        return Err(WaitError {
                            ended: None,
                            ..failed(self, false)
                        });
                    }
                },
                // Another stream of the scenario was lost: the run fails for that.
                Ok(()) = lost.changed() => {
                    self.drain_arrivals();
                    if let Some(index) = self.inbox.iter().position(&predicate) {
                        return Ok(self.inbox.remove(index).expect("index in range"));
                    }
                    return Err(failed(self, self.ended().is_none()));
                }
            }
        }
    }

    /// Watches for `duration`: `Ok(Some(stanza))` for the first stanza matching `matcher`
    /// (earlier arrivals still in the inbox count), `Ok(None)` when none arrived.
    ///
    /// # Errors
    /// The end of the stream, if it ended during the window: silence on a dead stream
    /// proves nothing.
    pub async fn watch(
        &mut self,
        matcher: &Matcher,
        duration: Duration,
    ) -> Result<Option<Element>, Ended> {
        match self.wait_for(matcher, duration).await {
            Ok(stanza) => Ok(Some(stanza)),
            Err(WaitError {
                ended: Some(ended), ..
            }) => Err(ended),
            // The bound elapsed, or another actor's stream was lost (which fails the run).
            Err(WaitError { ended: None, .. }) => Ok(None),
        }
    }

    /// Takes the first stanza already received that matches `matcher`, without waiting.
    pub fn take_matching(&mut self, matcher: &Matcher) -> Option<Element> {
        self.drain_arrivals();
        let index = self
            .inbox
            .iter()
            .position(|stanza| matcher.matches(stanza))?;
        self.inbox.remove(index)
    }

    /// Stanzas received and not consumed by an expectation, serialized.
    pub fn unmatched(&self) -> Vec<String> {
        self.inbox
            .iter()
            .map(|stanza| stanza.to_xml(ns::CLIENT))
            .collect()
    }

    /// A fresh stanza id.
    pub fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("imfed-{}", self.next_id)
    }

    /// Sends an iq request and waits for its result or error.
    ///
    /// # Errors
    /// [`DriverError::Timeout`] naming the request, or [`DriverError::Stream`] when the
    /// stream ended.
    pub async fn iq(&mut self, iq: Element, bound: Duration) -> Result<Element, DriverError> {
        let id = self.send_iq(iq).await?;
        self.iq_reply(&id, bound).await
    }

    /// Sends an iq request with a fresh id; returns the id.
    async fn send_iq(&mut self, mut iq: Element) -> Result<String, DriverError> {
        let id = self.next_id();
        iq.set_attr("id", id.clone());
        self.send(&iq).await?;
        Ok(id)
    }

    async fn iq_reply(&mut self, id: &str, bound: Duration) -> Result<Element, DriverError> {
        self.wait_where(bound, |stanza| {
            stanza.is("iq", ns::CLIENT)
                && stanza.attr("id") == Some(id)
                && matches!(stanza.attr("type"), Some("result" | "error"))
        })
        .await
        .map_err(|error| match error.ended {
            Some(ended) => DriverError::Stream(self.describe_end(&ended)),
            None if error.cut_short => {
                DriverError::Stream("cut short: another actor's stream was lost".into())
            }
            None => DriverError::Timeout(bound, format!("the reply to iq {id}")),
        })
    }

    /// Starts a liveness round trip: a ping to the actor's own server (XEP-0199; an error
    /// reply serves as well). Finish it with [`Session::pong`].
    ///
    /// # Errors
    /// The end of the stream.
    pub async fn ping(&mut self) -> Result<String, Liveness> {
        let ping = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("to", self.jid.domain().to_string())
            .with_child(Element::new("ping", ns::PING));
        match self.send_iq(ping).await {
            Ok(id) => Ok(id),
            Err(_) => Err(Liveness::Ended(
                self.ended().expect("sending fails only on an ended stream"),
            )),
        }
    }

    /// Waits up to `bound` for the answer to the ping `id`: when it arrives, the server has
    /// processed everything the actor sent before it (RFC 6120 §10.1).
    ///
    /// # Errors
    /// [`Liveness`]: the stream ended or the server did not answer.
    pub async fn pong(&mut self, id: &str, bound: Duration) -> Result<(), Liveness> {
        let reply = self
            .wait_where(bound, |stanza| {
                stanza.is("iq", ns::CLIENT)
                    && stanza.attr("id") == Some(id)
                    && matches!(stanza.attr("type"), Some("result" | "error"))
            })
            .await;
        match reply {
            Ok(_) => Ok(()),
            Err(WaitError {
                ended: Some(ended), ..
            }) => Err(Liveness::Ended(ended)),
            Err(WaitError {
                cut_short: true, ..
            }) => Err(Liveness::CutShort),
            Err(_) => Err(Liveness::NoAnswer(bound)),
        }
    }

    /// A liveness round trip ([`Session::ping`] then [`Session::pong`]).
    ///
    /// # Errors
    /// As [`Session::pong`].
    pub async fn round_trip(&mut self, bound: Duration) -> Result<(), Liveness> {
        let id = self.ping().await?;
        self.pong(&id, bound).await
    }

    /// Describes a failed liveness round trip: "bob (sut.test): no answer to a liveness
    /// ping within 5s".
    pub fn describe_liveness(&self, failure: &Liveness) -> String {
        match failure {
            Liveness::Ended(ended) => self.describe_end(ended),
            Liveness::NoAnswer(bound) => format!(
                "{} ({}): no answer to a liveness ping within {}ms: the session has stalled",
                self.actor,
                self.jid.domain(),
                bound.as_millis()
            ),
            Liveness::CutShort => format!(
                "{} ({}): liveness round trip cut short by another actor's lost stream",
                self.actor,
                self.jid.domain()
            ),
        }
    }

    /// Closes the stream cleanly (bounded): sends `</stream:stream>` and waits briefly for
    /// the server's own close.
    pub async fn close(mut self) {
        self.transcript
            .record(&self.actor, Flow::Note, "closing the stream".into());
        let open = self.ended().is_none();
        self.status.end(&self.transcript, EndCause::ByHarness);
        if open {
            let _ = self
                .outgoing
                .send(imfed_xmpp::stream::STREAM_CLOSE.as_bytes().to_vec());
            // Give the server a moment to answer with its own close, then drop.
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut self.reader).await;
        }
    }

    /// Drops the connection without closing the stream.
    pub fn abort(self) {
        self.status.end(&self.transcript, EndCause::ByHarness);
        self.transcript.record(
            &self.actor,
            Flow::Note,
            "dropping the TCP connection".into(),
        );
    }
}

/// A random token of letters and digits.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// An unauthenticated client stream for in-band registration (XEP-0077 §3.1): stream
/// header, features and STARTTLS per policy, then requests.
pub struct RegistrationStream {
    wire: Wire,
}

impl std::fmt::Debug for RegistrationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistrationStream")
    }
}

impl RegistrationStream {
    /// Opens the stream to `domain` at `addr`.
    ///
    /// # Errors
    /// [`DriverError`] when the stream cannot be opened within 10 seconds.
    pub async fn open(
        addr: SocketAddr,
        domain: &str,
        tls: TlsPolicy,
        roots: Option<&Arc<RootCertStore>>,
    ) -> Result<Self, DriverError> {
        let bound = Duration::from_secs(10);
        tokio::time::timeout(bound, Self::open_inner(addr, domain, tls, roots))
            .await
            .map_err(|_| DriverError::Timeout(bound, "the registration stream".into()))?
    }

    async fn open_inner(
        addr: SocketAddr,
        domain: &str,
        tls: TlsPolicy,
        roots: Option<&Arc<RootCertStore>>,
    ) -> Result<Self, DriverError> {
        let mut wire = Wire::connect(addr).await?;
        let mut secured = false;
        loop {
            let mut header = imfed_xmpp::StreamHeader::new(ns::CLIENT);
            header.to = Some(domain.to_string());
            header.version = Some("1.0".into());
            let mut out = Vec::new();
            header.write_to(&mut out);
            wire.write(&out).await?;
            let features = loop {
                match wire.read_event().await? {
                    StreamEvent::Header(_) => continue,
                    StreamEvent::Element(features) if features.is("features", ns::STREAM) => {
                        break features;
                    }
                    other => {
                        return Err(DriverError::Stream(format!(
                            "expected features, got {other:?}"
                        )));
                    }
                }
            };
            let offered = features.child("starttls", ns::TLS).is_some();
            if secured || tls == TlsPolicy::Never || !offered {
                if tls == TlsPolicy::Required && !secured {
                    return Err(DriverError::Login("server does not offer STARTTLS".into()));
                }
                return Ok(RegistrationStream { wire });
            }
            let mut out = Vec::new();
            Element::new("starttls", ns::TLS).write_to(&mut out, ns::CLIENT);
            wire.write(&out).await?;
            match wire.read_event().await? {
                StreamEvent::Element(proceed) if proceed.is("proceed", ns::TLS) => {}
                other => return Err(DriverError::Login(format!("STARTTLS refused: {other:?}"))),
            }
            wire.start_tls(domain, roots).await?;
            secured = true;
        }
    }

    /// Sends an iq and returns the reply with the same id.
    ///
    /// # Errors
    /// [`DriverError`] on timeout or a broken stream.
    pub async fn request(&mut self, iq: &Element, bound: Duration) -> Result<Element, DriverError> {
        let mut out = Vec::new();
        iq.write_to(&mut out, ns::CLIENT);
        self.wire.write(&out).await?;
        let id = iq.attr("id").map(str::to_string);
        tokio::time::timeout(bound, async {
            loop {
                if let StreamEvent::Element(reply) = self.wire.read_event().await?
                    && reply.is("iq", ns::CLIENT)
                    && reply.attr("id").map(str::to_string) == id
                {
                    return Ok(reply);
                }
            }
        })
        .await
        .map_err(|_| DriverError::Timeout(bound, "the registration reply".into()))?
    }
}
