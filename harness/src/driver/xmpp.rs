//! The XMPP driver: one actor's client connection (RFC 6120 c2s), recorded in the transcript.
//!
//! Login runs the sans-I/O [`imfed_xmpp::client::Login`]; afterwards every received stanza
//! goes to an inbox that expectations search, so nothing that arrives early is lost. Every
//! wait is bounded; roster pushes and server pings are answered as RFC 6121 §2.1.6 and
//! XEP-0199 ask.

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
}

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Self {
        Transcript {
            started: Instant::now(),
            lines: Arc::default(),
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

/// One actor's connection.
pub struct Session {
    actor: String,
    /// The bound full JID.
    pub jid: Jid,
    wire: Wire,
    inbox: VecDeque<Element>,
    transcript: Transcript,
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
        tokio::time::timeout(
            bound,
            Self::login_inner(actor, addr, credentials, transcript),
        )
        .await
        .map_err(|_| DriverError::Timeout(bound, format!("{actor} to log in")))?
    }

    async fn login_inner(
        actor: &str,
        addr: SocketAddr,
        credentials: &Credentials,
        transcript: Transcript,
    ) -> Result<Session, DriverError> {
        let wire = Wire::connect(addr).await?;
        let mut config = LoginConfig::new(
            credentials.jid.clone(),
            credentials.password.clone(),
            random_token(24),
        );
        config.tls = credentials.tls;
        let mut login = Login::new(config);
        let mut session = Session {
            actor: actor.to_string(),
            jid: credentials.jid.clone(),
            wire,
            inbox: VecDeque::new(),
            transcript,
            next_id: 0,
        };
        let mut actions: VecDeque<LoginAction> = login.start().into();
        loop {
            while let Some(action) = actions.pop_front() {
                match action {
                    LoginAction::Send(bytes) => session.wire.write(&bytes).await?,
                    LoginAction::ResetParser => session.wire.parser.reset(),
                    LoginAction::StartTls => {
                        session
                            .wire
                            .start_tls(login.domain(), credentials.roots.as_ref())
                            .await?;
                        actions.extend(login.tls_established());
                    }
                    LoginAction::Done(jid) => {
                        session.jid = jid;
                        session.transcript.record(
                            actor,
                            Flow::Note,
                            format!(
                                "logged in as {}{}",
                                session.jid,
                                if login.is_secure() { " (TLS)" } else { "" }
                            ),
                        );
                        return Ok(session);
                    }
                }
            }
            let event = session.wire.read_event().await?;
            actions.extend(
                login
                    .handle(event)
                    .map_err(|error| DriverError::Login(error.to_string()))?,
            );
        }
    }

    /// Reads the next stanza into the inbox (answering pushes and pings on the way).
    async fn receive_one(&mut self) -> Result<(), DriverError> {
        let stanza = match self.wire.read_event().await? {
            StreamEvent::Element(stanza) => stanza,
            StreamEvent::End => {
                self.transcript
                    .record(&self.actor, Flow::Note, "server closed the stream".into());
                return Err(DriverError::Stream("server closed the stream".into()));
            }
            StreamEvent::Header(_) => {
                return Err(DriverError::Stream("unexpected stream restart".into()));
            }
        };
        let text = stanza.to_xml(ns::CLIENT);
        self.transcript
            .record(&self.actor, Flow::Received, text.clone());
        if stanza.is("error", ns::STREAM) {
            return Err(DriverError::Stream(format!("stream error {text}")));
        }
        if stanza.is("iq", ns::CLIENT) {
            let is_push =
                stanza.attr("type") == Some("set") && stanza.child("query", ns::ROSTER).is_some();
            let is_ping =
                stanza.attr("type") == Some("get") && stanza.child("ping", ns::PING).is_some();
            if is_push || is_ping {
                let reply = Element::new("iq", ns::CLIENT)
                    .with_attr("type", "result")
                    .with_opt_attr("id", stanza.attr("id"))
                    .with_opt_attr("to", stanza.attr("from"));
                self.send(&reply).await?;
            }
        }
        self.inbox.push_back(stanza);
        Ok(())
    }

    /// Sends one element.
    ///
    /// # Errors
    /// [`DriverError::Io`].
    pub async fn send(&mut self, element: &Element) -> Result<(), DriverError> {
        let mut out = Vec::with_capacity(256);
        element.write_to(&mut out, ns::CLIENT);
        self.transcript.record(
            &self.actor,
            Flow::Sent,
            String::from_utf8_lossy(&out).into_owned(),
        );
        self.wire.write(&out).await
    }

    /// Sends raw text.
    ///
    /// # Errors
    /// [`DriverError::Io`].
    pub async fn send_raw(&mut self, text: &str) -> Result<(), DriverError> {
        self.transcript
            .record(&self.actor, Flow::Sent, text.to_string());
        self.wire.write(text.as_bytes()).await
    }

    /// Takes the first stanza in the inbox matching `matcher`, waiting up to `bound` for it.
    /// On timeout returns the stanzas that arrived (unmatched) for the failure report.
    ///
    /// # Errors
    /// `Err(received)` on timeout; a broken connection also ends the wait with what arrived
    /// plus a note.
    pub async fn wait_for(
        &mut self,
        matcher: &Matcher,
        bound: Duration,
    ) -> Result<Element, Vec<String>> {
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
    ) -> Result<Element, Vec<String>> {
        let deadline = tokio::time::Instant::now() + bound;
        let mut checked = 0;
        loop {
            if let Some(index) = self.inbox.iter().skip(checked).position(&predicate) {
                return Ok(self.inbox.remove(checked + index).expect("index in range"));
            }
            checked = self.inbox.len();
            match tokio::time::timeout_at(deadline, self.receive_one()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    let mut seen = self.unmatched();
                    seen.push(format!("({error})"));
                    return Err(seen);
                }
                Err(_) => return Err(self.unmatched()),
            }
        }
    }

    /// Watches for `duration`; returns the first stanza matching `matcher`, if any arrived
    /// (earlier arrivals still in the inbox count).
    pub async fn watch(&mut self, matcher: &Matcher, duration: Duration) -> Option<Element> {
        self.wait_for(matcher, duration).await.ok()
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
    /// [`DriverError::Timeout`] naming the request, or a broken connection.
    pub async fn iq(&mut self, mut iq: Element, bound: Duration) -> Result<Element, DriverError> {
        let id = self.next_id();
        iq.set_attr("id", id.clone());
        self.send(&iq).await?;
        let reply = self
            .wait_where(bound, |stanza| {
                stanza.is("iq", ns::CLIENT)
                    && stanza.attr("id") == Some(id.as_str())
                    && matches!(stanza.attr("type"), Some("result" | "error"))
            })
            .await;
        reply.map_err(|_| DriverError::Timeout(bound, format!("the reply to iq {id}")))
    }

    /// Closes the stream cleanly (bounded).
    pub async fn close(mut self) {
        self.transcript
            .record(&self.actor, Flow::Note, "closing the stream".into());
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.wire.write(imfed_xmpp::stream::STREAM_CLOSE.as_bytes()),
        )
        .await;
        // Give the server a moment to answer with its own close, then drop.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while self.receive_one().await.is_ok() {}
        })
        .await;
    }

    /// Drops the connection without closing the stream.
    pub fn abort(self) {
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
