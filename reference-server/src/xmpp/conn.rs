//! An XML stream over a byte transport (RFC 6120 §4): the socket half of the sans-I/O parser.
//!
//! [`Conn::next_event`] is cancel-safe (bytes read are kept in the parser), so a connection
//! task can `select!` on it together with its outgoing queue and its shutdown token.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use imfed_xmpp::stream::{STREAM_CLOSE, stream_error};
use imfed_xmpp::{
    Element, Limits, ParseError, StreamErrorCondition, StreamEvent, StreamHeader, StreamParser,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::tap::{ChunkKind, Tap, TapDirection};

/// The byte transport: TCP, or TLS over TCP after STARTTLS.
enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
    /// Between taking the TCP stream for a TLS handshake and getting the TLS stream back.
    Gone,
}

impl Io {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(tcp) => tcp.read(buf).await,
            Io::Tls(tls) => tls.read(buf).await,
            Io::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(tcp) => tcp.write_all(bytes).await,
            Io::Tls(tls) => {
                tls.write_all(bytes).await?;
                tls.flush().await
            }
            Io::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(tcp) => tcp.shutdown().await,
            Io::Tls(tls) => tls.shutdown().await,
            Io::Gone => Ok(()),
        }
    }
}

/// Why a stream ended or failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the TCP connection.
    #[error("connection closed by peer")]
    Eof,
    /// The peer sent bytes that break the stream rules.
    #[error("stream error {0}")]
    Parse(#[from] ParseError),
    /// The peer closed the stream with `</stream:stream>`.
    #[error("stream closed by peer")]
    Closed,
    /// The peer did not do what it had to within the bound.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The peer's stream broke a rule we check above the parser.
    #[error("stream error {condition}: {detail}")]
    Protocol {
        /// The stream error condition we send.
        condition: StreamErrorCondition,
        /// What happened.
        detail: String,
    },
    /// The peer sent a stream error.
    #[error("peer sent stream error {0}")]
    PeerError(String),
    /// TLS negotiation failed.
    #[error("TLS: {0}")]
    Tls(String),
}

impl ConnError {
    /// A protocol violation we report with `condition`.
    pub fn protocol(condition: StreamErrorCondition, detail: impl Into<String>) -> Self {
        ConnError::Protocol {
            condition,
            detail: detail.into(),
        }
    }

    /// The stream error condition to send before closing, if any is owed to the peer.
    pub fn condition(&self) -> Option<StreamErrorCondition> {
        match self {
            ConnError::Parse(error) => Some(error.condition),
            ConnError::Protocol { condition, .. } => Some(*condition),
            ConnError::Timeout(_) => Some(StreamErrorCondition::ConnectionTimeout),
            _ => None,
        }
    }
}

/// An XML stream on a transport.
pub struct Conn {
    io: Io,
    parser: StreamParser,
    limits: Limits,
    buf: Vec<u8>,
    /// The content namespace we write in (`jabber:client` or `jabber:server`).
    pub stream_ns: &'static str,
    /// Whether TLS is active.
    pub secure: bool,
    /// Misbehaviour ([`crate::faults::Switch::DecodePerRead`]): each read is decoded as
    /// UTF-8 on its own before parsing.
    pub decode_per_read: bool,
    /// Whether our stream header for the current stream is out (a stream error needs one
    /// before it, RFC 6120 §4.9.1.2).
    header_sent: bool,
    /// The wire tap recording this connection, if it is tapped.
    tap: Option<(Arc<Tap>, u64)>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.record(TapDirection::Out, ChunkKind::Closed, b"");
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("stream_ns", &self.stream_ns)
            .field("secure", &self.secure)
            .finish()
    }
}

impl Conn {
    /// A stream on a fresh TCP connection.
    pub fn new(tcp: TcpStream, stream_ns: &'static str, limits: Limits) -> Self {
        let _ = tcp.set_nodelay(true);
        Conn {
            io: Io::Plain(tcp),
            parser: StreamParser::new(limits),
            limits,
            buf: vec![0; 16 * 1024],
            stream_ns,
            secure: false,
            decode_per_read: false,
            header_sent: false,
            tap: None,
        }
    }

    /// Records everything this connection reads and writes from now on in `tap`.
    pub fn tap(&mut self, tap: Arc<Tap>, opened_by: TapDirection, peer: Option<String>) {
        let id = tap.open(opened_by, peer);
        self.tap = Some((tap, id));
    }

    fn record(&self, dir: TapDirection, kind: ChunkKind, bytes: &[u8]) {
        if let Some((tap, id)) = &self.tap {
            tap.record(*id, dir, kind, bytes);
        }
    }

    /// The next stream event. Cancel-safe.
    ///
    /// # Errors
    /// [`ConnError::Eof`] when the socket closes, [`ConnError::Parse`] on bad XML.
    pub async fn next_event(&mut self) -> Result<StreamEvent, ConnError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(event);
            }
            let read = self.io.read(&mut self.buf).await?;
            if read == 0 {
                return Err(ConnError::Eof);
            }
            self.record(TapDirection::In, ChunkKind::Data, &self.buf[..read]);
            if self.decode_per_read {
                let decoded = String::from_utf8_lossy(&self.buf[..read]).into_owned();
                self.parser.feed(decoded.as_bytes());
                continue;
            }
            self.parser.feed(&self.buf[..read]);
        }
    }

    /// The next event within `bound`, or [`ConnError::Timeout`] naming `what`.
    ///
    /// # Errors
    /// As [`Conn::next_event`], plus the timeout.
    pub async fn next_event_within(
        &mut self,
        bound: Duration,
        what: &'static str,
    ) -> Result<StreamEvent, ConnError> {
        tokio::time::timeout(bound, self.next_event())
            .await
            .map_err(|_| ConnError::Timeout(what))?
    }

    /// The next top-level element within `bound`; a stream end or a stream header there is
    /// an error.
    ///
    /// # Errors
    /// As [`Conn::next_event_within`]; [`ConnError::Closed`] on `</stream:stream>`.
    pub async fn next_element_within(
        &mut self,
        bound: Duration,
        what: &'static str,
    ) -> Result<Element, ConnError> {
        match self.next_event_within(bound, what).await? {
            StreamEvent::Element(element) => {
                if let Some((condition, text)) = imfed_xmpp::stream::parse_stream_error(&element) {
                    return Err(ConnError::PeerError(match text {
                        Some(text) => format!("{condition} ({text})"),
                        None => condition.to_string(),
                    }));
                }
                Ok(element)
            }
            StreamEvent::End => Err(ConnError::Closed),
            StreamEvent::Header(_) => Err(ConnError::protocol(
                StreamErrorCondition::InvalidXml,
                "unexpected stream header",
            )),
        }
    }

    /// Writes raw bytes.
    ///
    /// # Errors
    /// [`ConnError::Io`].
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.record(TapDirection::Out, ChunkKind::Data, bytes);
        self.io.write_all(bytes).await?;
        Ok(())
    }

    /// Serializes and writes one element.
    ///
    /// # Errors
    /// [`ConnError::Io`].
    pub async fn send(&mut self, element: &Element) -> Result<(), ConnError> {
        let mut out = Vec::with_capacity(256);
        element.write_to(&mut out, self.stream_ns);
        self.send_bytes(&out).await
    }

    /// Writes our stream header (at the start, and after each restart).
    ///
    /// # Errors
    /// [`ConnError::Io`].
    pub async fn send_header(&mut self, header: &StreamHeader) -> Result<(), ConnError> {
        let mut out = Vec::new();
        header.write_to(&mut out);
        self.send_bytes(&out).await?;
        self.header_sent = true;
        Ok(())
    }

    /// Sends a stream error and closes the stream (RFC 6120 §4.9.1.1), bounded in time. A
    /// stream whose header has not been answered yet gets a header first (§4.9.1.2).
    pub async fn fail(&mut self, condition: StreamErrorCondition, text: Option<&str>) {
        let mut out = Vec::new();
        if !self.header_sent {
            StreamHeader {
                version: Some("1.0".into()),
                ..StreamHeader::new(self.stream_ns)
            }
            .write_to(&mut out);
        }
        stream_error(condition, text).write_to(&mut out, self.stream_ns);
        out.extend_from_slice(STREAM_CLOSE.as_bytes());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.send_bytes(&out)).await;
        self.shutdown().await;
    }

    /// Closes our side of the stream and the transport, bounded in time.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.send_bytes(STREAM_CLOSE.as_bytes()),
        )
        .await;
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.shutdown()).await;
    }

    /// Ends the connection with no stream end, as a link that dies, and waits (up to
    /// `bound`) for the peer to close its side: once this returns, the peer has seen the
    /// link go. What it still sends is read and dropped.
    pub async fn hang_up(&mut self, bound: Duration) {
        let drained = async {
            let _ = self.io.shutdown().await;
            let mut buf = [0u8; 4096];
            while matches!(self.io.read(&mut buf).await, Ok(read) if read > 0) {}
        };
        let _ = tokio::time::timeout(bound, drained).await;
    }

    /// A fresh parser for the restarted stream (after STARTTLS or SASL, RFC 6120 §5.4.3.3,
    /// §6.4.6).
    pub fn restart(&mut self) {
        self.parser.reset();
        self.header_sent = false;
    }

    fn take_tcp(&mut self) -> Result<TcpStream, ConnError> {
        match std::mem::replace(&mut self.io, Io::Gone) {
            Io::Plain(tcp) => Ok(tcp),
            other => {
                self.io = other;
                Err(ConnError::Tls(
                    "STARTTLS on a stream that is already secured".into(),
                ))
            }
        }
    }

    /// The stanza the peer's stream is in the middle of, closed as if its end tags came now
    /// (see [`imfed_xmpp::StreamParser::cut_short`]).
    pub fn cut_short(&self) -> Option<Element> {
        self.parser.cut_short()
    }

    /// The certificate chain the peer presented in the TLS handshake, end entity first
    /// (empty without TLS or without a certificate).
    pub fn peer_certificates(&self) -> Vec<rustls::pki_types::CertificateDer<'static>> {
        match &self.io {
            Io::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Server side of STARTTLS after `<proceed/>` was sent.
    ///
    /// # Errors
    /// [`ConnError::Tls`] when the handshake fails or exceeds `bound`.
    pub async fn accept_tls(
        &mut self,
        acceptor: &TlsAcceptor,
        bound: Duration,
    ) -> Result<(), ConnError> {
        let tcp = self.take_tcp()?;
        let tls = tokio::time::timeout(bound, acceptor.accept(tcp))
            .await
            .map_err(|_| ConnError::Timeout("TLS handshake"))?
            .map_err(|error| ConnError::Tls(error.to_string()))?;
        self.io = Io::Tls(Box::new(tls.into()));
        self.secure = true;
        self.parser = StreamParser::new(self.limits);
        self.header_sent = false;
        self.record(TapDirection::Out, ChunkKind::Tls, b"");
        Ok(())
    }

    /// Client side of STARTTLS after `<proceed/>` was received.
    ///
    /// # Errors
    /// [`ConnError::Tls`] when the handshake fails or exceeds `bound`.
    pub async fn connect_tls(
        &mut self,
        connector: &TlsConnector,
        domain: &str,
        bound: Duration,
    ) -> Result<(), ConnError> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_string())
            .map_err(|error| ConnError::Tls(format!("server name {domain}: {error}")))?;
        let tcp = self.take_tcp()?;
        let tls = tokio::time::timeout(bound, connector.connect(name, tcp))
            .await
            .map_err(|_| ConnError::Timeout("TLS handshake"))?
            .map_err(|error| ConnError::Tls(error.to_string()))?;
        self.io = Io::Tls(Box::new(tls.into()));
        self.secure = true;
        self.parser = StreamParser::new(self.limits);
        self.header_sent = false;
        self.record(TapDirection::Out, ChunkKind::Tls, b"");
        Ok(())
    }
}
