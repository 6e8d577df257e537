//! A peer server of the scenario's own (RFC 6120 §4, §5; XEP-0220): a server-to-server
//! connection to the implementation that can claim any domain, authenticate with a right or
//! a wrong dialback key or not at all, and write any bytes. What the implementation answers
//! is read from the connection itself: the verdict is observed on the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imfed_xmpp::dialback::{Dialback, DialbackResult};
use imfed_xmpp::external;
use imfed_xmpp::stream::parse_stream_error;
use imfed_xmpp::{Element, StreamEvent, StreamHeader, ns};
use rustls::RootCertStore;

use imfed_xmpp::StreamParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub use super::transport::Identity;
use super::transport::{Reader, Wire, Writer};
use crate::driver::DriverError;

/// How a peer connection is opened.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// The implementation's s2s listener.
    pub addr: SocketAddr,
    /// The domain the stream claims to be from.
    pub from: String,
    /// The domain it is for.
    pub to: String,
    /// Send the header and negotiate (features, STARTTLS); else a bare TCP connection.
    pub open: bool,
    /// Take STARTTLS when offered.
    pub starttls: bool,
    /// CA certificates the implementation's certificate must chain to (none: not checked;
    /// a hostile peer does not care whom it talks to).
    pub roots: Option<Arc<RootCertStore>>,
    /// The certificate to present in the TLS handshake.
    pub identity: Option<Identity>,
    /// Authenticate with SASL EXTERNAL after TLS when offered (XEP-0178 §3).
    pub sasl_external: bool,
}

/// How a peer connection's SASL EXTERNAL went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslOutcome {
    /// `<success/>`, and the stream restarted.
    Success,
    /// The implementation's features after TLS did not offer EXTERNAL.
    NotOffered,
    /// `<failure/>` with this condition.
    Failure(String),
    /// The TLS session or the stream was refused or ended first (with what was seen).
    Ended(String),
}

impl SaslOutcome {
    /// One line for transcripts and failure reports.
    pub fn describe(&self) -> String {
        match self {
            SaslOutcome::Success => "SASL EXTERNAL succeeded: <success/>".into(),
            SaslOutcome::NotOffered => "SASL EXTERNAL was not offered after TLS".into(),
            SaslOutcome::Failure(condition) => {
                format!("SASL EXTERNAL failed: <failure><{condition}/></failure>")
            }
            SaslOutcome::Ended(how) => format!("refused before SASL EXTERNAL: {how}"),
        }
    }
}

/// What arrived on a peer connection.
#[derive(Clone, Debug, PartialEq)]
pub enum PeerEvent {
    /// A first-level element other than a stream error.
    Element(Element),
    /// `<stream:error/>` with its condition and text.
    StreamError {
        /// The condition element's name.
        condition: String,
        /// The text, if any.
        text: Option<String>,
    },
    /// The stream or the connection ended (with what the reader saw).
    Ended(String),
}

impl PeerEvent {
    /// One line for transcripts and failure reports.
    pub fn describe(&self) -> String {
        match self {
            PeerEvent::Element(element) => {
                crate::driver::event::truncate(&element.to_xml(ns::SERVER), 300)
            }
            PeerEvent::StreamError { condition, text } => match text {
                Some(text) => format!("stream error <{condition}/> ({text})"),
                None => format!("stream error <{condition}/>"),
            },
            PeerEvent::Ended(how) => format!("connection ended: {how}"),
        }
    }

    /// The dialback answer this is for a stream from `from` to `to`, if it is one.
    pub fn dialback_answer(&self, from: &str, to: &str) -> Option<DialbackResult> {
        let PeerEvent::Element(element) = self else {
            return None;
        };
        match Dialback::parse(element)? {
            Dialback::Result {
                from: answerer,
                to: asker,
                result: Some(result),
                ..
            } if answerer == to && asker == from => Some(result),
            _ => None,
        }
    }
}

/// An open peer connection. Once negotiated, a reader task parses what the implementation
/// sends as it comes, so a stream error written just before the implementation resets the
/// connection (as it may after an oversized write) is not lost.
pub struct PeerLink {
    /// During negotiation: the transport and parser.
    wire: Option<Wire>,
    /// Afterwards: the write half and what the reader task saw.
    running: Option<Running>,
    /// The domain it claims.
    pub from: String,
    /// The domain it is for.
    pub to: String,
    /// The id the implementation gave the stream (after the last restart), once open.
    pub stream_id: Option<String>,
    /// Whether TLS is in use.
    pub tls: bool,
    /// How it ended, once it has.
    pub ended: Option<String>,
    /// How SASL EXTERNAL went, when it was tried.
    pub sasl: Option<SaslOutcome>,
}

struct Running {
    writer: Writer,
    events: mpsc::Receiver<PeerEvent>,
    reader: tokio::task::JoinHandle<()>,
}

impl PeerLink {
    /// Connects and, when `options.open`, opens the stream up to authentication, each read
    /// bounded by `bound`.
    ///
    /// # Errors
    /// [`DriverError`]: the connection or the negotiation failed (the implementation refused
    /// the stream, answered out of order, or took longer than `bound`).
    pub async fn connect(options: PeerOptions, bound: Duration) -> Result<PeerLink, DriverError> {
        let wire = Wire::connect(options.addr).await?;
        let mut link = PeerLink {
            wire: Some(wire),
            running: None,
            from: options.from.clone(),
            to: options.to.clone(),
            stream_id: None,
            tls: false,
            ended: None,
            sasl: None,
        };
        if options.open {
            let negotiated = link.negotiate(&options, bound).await;
            match negotiated {
                Ok(()) => {}
                // With a certificate of its own the peer asks to be judged: a refusal of
                // the TLS session or of the stream after it is the implementation's verdict.
                Err(error) if link.tls && options.identity.is_some() => {
                    let how = error.to_string();
                    link.ended = Some(how.clone());
                    if options.sasl_external && link.sasl.is_none() {
                        link.sasl = Some(SaslOutcome::Ended(how));
                    }
                }
                Err(error) => return Err(error),
            }
        }
        link.start_reader();
        Ok(link)
    }

    async fn negotiate(
        &mut self,
        options: &PeerOptions,
        bound: Duration,
    ) -> Result<(), DriverError> {
        let link = self;
        loop {
            link.send_header().await?;
            let reply = match link.read(bound, "the stream header").await? {
                StreamEvent::Header(reply) => reply,
                other => return Err(unexpected("a stream header", &other)),
            };
            link.stream_id = reply.id;
            if !reply.version.as_deref().is_some_and(|v| v.starts_with('1')) {
                return Ok(());
            }
            let features = match link.read(bound, "stream features").await? {
                StreamEvent::Element(features) if features.is("features", ns::STREAM) => features,
                other => return Err(unexpected("stream features", &other)),
            };
            let offered = features.child("starttls", ns::TLS).is_some();
            if link.tls && options.sasl_external && link.sasl.is_none() {
                return link.authenticate_external(&features, bound).await;
            }
            if link.tls || !offered || !options.starttls {
                return Ok(());
            }
            let mut request = Vec::new();
            Element::new("starttls", ns::TLS).write_to(&mut request, ns::SERVER);
            link.wire().write(&request).await?;
            match link.read(bound, "the STARTTLS answer").await? {
                StreamEvent::Element(proceed) if proceed.is("proceed", ns::TLS) => {}
                other => return Err(unexpected("<proceed/>", &other)),
            }
            let name = link.to.clone();
            let identity = options.identity.clone();
            // Set before the handshake: a refused certificate fails it or what follows.
            link.tls = true;
            tokio::time::timeout(
                bound,
                link.wire()
                    .start_tls_presenting(&name, options.roots.as_ref(), identity),
            )
            .await
            .map_err(|_| DriverError::Stream(format!("TLS handshake took over {bound:?}")))??;
        }
    }

    /// SASL EXTERNAL for the claimed domain (XEP-0178 §3), then the stream restart (RFC
    /// 6120 §6.4.6): the outcome goes to [`PeerLink::sasl`]; only a broken exchange is an
    /// error.
    async fn authenticate_external(
        &mut self,
        features: &Element,
        bound: Duration,
    ) -> Result<(), DriverError> {
        if !external::offered(features) {
            self.sasl = Some(SaslOutcome::NotOffered);
            return Ok(());
        }
        let mut request = Vec::new();
        external::auth(Some(&self.from)).write_to(&mut request, ns::SERVER);
        self.wire().write(&request).await?;
        let answer = match self.read(bound, "the SASL EXTERNAL answer").await {
            Ok(StreamEvent::Element(answer)) => answer,
            Ok(other) => {
                self.sasl = Some(SaslOutcome::Ended(format!(
                    "{} instead of a SASL answer",
                    describe_event(&other)
                )));
                return Ok(());
            }
            Err(error) => {
                self.sasl = Some(SaslOutcome::Ended(error.to_string()));
                return Err(error);
            }
        };
        match external::parse_answer(&answer) {
            Some(external::Answer::Success) => {}
            Some(external::Answer::Failure(condition)) => {
                self.sasl = Some(SaslOutcome::Failure(condition));
                return Ok(());
            }
            None => {
                return Err(unexpected(
                    "<success/> or <failure/>",
                    &StreamEvent::Element(answer),
                ));
            }
        }
        self.sasl = Some(SaslOutcome::Success);
        self.wire().parser.reset();
        self.send_header().await?;
        match self.read(bound, "the restarted stream's header").await? {
            StreamEvent::Header(reply) => self.stream_id = reply.id,
            other => return Err(unexpected("a stream header", &other)),
        }
        match self.read(bound, "the restarted stream's features").await? {
            StreamEvent::Element(features) if features.is("features", ns::STREAM) => Ok(()),
            other => Err(unexpected("stream features", &other)),
        }
    }

    /// Writes the header of a stream from the claimed domain to the implementation's.
    async fn send_header(&mut self) -> Result<(), DriverError> {
        let header = StreamHeader {
            from: Some(self.from.clone()),
            to: Some(self.to.clone()),
            id: None,
            version: Some("1.0".into()),
            lang: None,
            content_ns: ns::SERVER.into(),
            dialback: true,
        };
        let mut out = Vec::new();
        header.write_to(&mut out);
        self.wire().write(&out).await
    }

    fn wire(&mut self) -> &mut Wire {
        self.wire
            .as_mut()
            .expect("negotiation runs before the reader starts")
    }

    /// Hands the transport and the parser (with what it holds) to a reader task.
    fn start_reader(&mut self) {
        let Some(Wire { io, parser, .. }) = self.wire.take() else {
            return;
        };
        let Some((reader, writer)) = io.split() else {
            return;
        };
        let (tx, events) = mpsc::channel(64);
        let reader = tokio::spawn(read_events(reader, parser, tx));
        self.running = Some(Running {
            writer,
            events,
            reader,
        });
    }

    async fn read(&mut self, bound: Duration, what: &str) -> Result<StreamEvent, DriverError> {
        match tokio::time::timeout(bound, self.wire().read_event()).await {
            Ok(Ok(StreamEvent::Element(element)))
                if let Some((condition, text)) = parse_stream_error(&element) =>
            {
                Err(DriverError::Stream(format!(
                    "the implementation answered with stream error <{condition}/>{} while the peer awaited {what}",
                    text.map(|t| format!(" ({t})")).unwrap_or_default()
                )))
            }
            Ok(event) => event,
            Err(_) => Err(DriverError::Stream(format!("no {what} within {bound:?}"))),
        }
    }

    /// Writes `bytes` as they are.
    ///
    /// # Errors
    /// [`DriverError`]: the connection has ended or the write failed.
    ///
    /// Returns whether the bytes went out: on a connection that has ended, or whose write
    /// fails because the implementation cut it, nothing is sent and that is no error (what
    /// a hostile peer writes after being cut off cannot be delivered; the next
    /// `peer_expect` sees the end).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<bool, DriverError> {
        if self.ended.is_some() {
            return Ok(false);
        }
        let Some(running) = &mut self.running else {
            return Err(DriverError::Stream(
                "the peer connection is not open".into(),
            ));
        };
        let written = async {
            running.writer.write_all(bytes).await?;
            running.writer.flush().await
        };
        Ok(written.await.is_ok())
    }

    /// [`PeerLink::send`] in pieces of `piece` bytes with `pause` after each but the last.
    /// Stops at the first piece that cannot be written (the connection was cut).
    ///
    /// # Errors
    /// As [`PeerLink::send`].
    pub async fn send_trickled(
        &mut self,
        bytes: &[u8],
        piece: usize,
        pause: Duration,
    ) -> Result<bool, DriverError> {
        let mut pieces = bytes.chunks(piece.max(1)).peekable();
        while let Some(chunk) = pieces.next() {
            if !self.send(chunk).await? {
                return Ok(false);
            }
            if pieces.peek().is_some() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(true)
    }

    /// Cuts the connection: both halves closed with no stream end, as when a link dies.
    /// Later sends write nothing and `next` reports the end.
    pub fn cut(&mut self) {
        if let Some(running) = self.running.take() {
            running.reader.abort();
            drop(running.writer);
        }
        self.wire = None;
        self.ended
            .get_or_insert_with(|| "the peer cut the connection".into());
    }

    /// Sends `<db:result/>` for the stream's domains with `key` (XEP-0220 §2.1.1).
    ///
    /// # Errors
    /// As [`PeerLink::send`].
    pub async fn send_dialback(&mut self, key: &str) -> Result<(), DriverError> {
        let request = Dialback::Result {
            from: self.from.clone(),
            to: self.to.clone(),
            key: Some(key.to_string()),
            result: None,
        }
        .to_element();
        let mut out = Vec::new();
        request.write_to(&mut out, ns::SERVER);
        self.send(&out).await.map(|_| ())
    }

    /// The next thing the implementation sends, within `bound` (`None` when nothing
    /// came). Once the connection has ended, every call returns [`PeerEvent::Ended`].
    pub async fn next(&mut self, bound: Duration) -> Option<PeerEvent> {
        if let Some(ended) = &self.ended {
            return Some(PeerEvent::Ended(ended.clone()));
        }
        let Some(running) = &mut self.running else {
            return Some(PeerEvent::Ended("the peer connection is not open".into()));
        };
        let event = match tokio::time::timeout(bound, running.events.recv()).await {
            Err(_) => return None,
            Ok(Some(event)) => event,
            Ok(None) => PeerEvent::Ended("the connection was closed".into()),
        };
        match &event {
            PeerEvent::Ended(how) => self.ended = Some(how.clone()),
            PeerEvent::StreamError { .. } => {
                self.ended = Some(event.describe());
            }
            PeerEvent::Element(_) => {}
        }
        Some(event)
    }

    /// Closes the stream and the connection (best effort, bounded).
    pub async fn close(mut self) {
        if let Some(mut running) = self.running.take() {
            if self.ended.is_none() {
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    running
                        .writer
                        .write_all(imfed_xmpp::stream::STREAM_CLOSE.as_bytes())
                        .await?;
                    running.writer.shutdown().await
                })
                .await;
            }
            running.reader.abort();
        }
    }
}

/// The reader task: parses what arrives into events until the stream or connection ends.
async fn read_events(mut reader: Reader, mut parser: StreamParser, tx: mpsc::Sender<PeerEvent>) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let event = match parser.next_event() {
            Ok(Some(StreamEvent::Element(element))) => match parse_stream_error(&element) {
                Some((condition, text)) => PeerEvent::StreamError {
                    condition: condition.to_string(),
                    text,
                },
                None => PeerEvent::Element(element),
            },
            Ok(Some(StreamEvent::End)) => PeerEvent::Ended("the stream was closed".into()),
            // A stream header where none is due: passed over as an element named `stream`.
            Ok(Some(StreamEvent::Header(_))) => {
                PeerEvent::Element(Element::new("stream", ns::STREAM))
            }
            Err(error) => PeerEvent::Ended(format!("unreadable: {error}")),
            Ok(None) => match reader.read(&mut buf).await {
                Ok(0) => PeerEvent::Ended("the connection was closed".into()),
                Ok(read) => {
                    parser.feed(&buf[..read]);
                    continue;
                }
                Err(error) => PeerEvent::Ended(format!("the connection failed: {error}")),
            },
        };
        let last = matches!(event, PeerEvent::Ended(_));
        if tx.send(event).await.is_err() || last {
            return;
        }
    }
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("stream_id", &self.stream_id)
            .field("tls", &self.tls)
            .field("ended", &self.ended)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

fn describe_event(event: &StreamEvent) -> String {
    match event {
        StreamEvent::Header(_) => "a stream header".to_string(),
        StreamEvent::Element(element) => format!("<{}/>", element.name),
        StreamEvent::End => "the end of the stream".to_string(),
    }
}

fn unexpected(wanted: &str, got: &StreamEvent) -> DriverError {
    DriverError::Stream(format!("expected {wanted}, got {}", describe_event(got)))
}
