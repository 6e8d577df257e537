//! The XMPP driver: one actor's client connection (RFC 6120 c2s), recorded in the transcript.
//!
//! Login runs the sans-I/O [`imfed_xmpp::client::Login`]; afterwards a reader task puts every
//! received stanza in an inbox that expectations search, so nothing that arrives early is
//! lost, and records how and when the stream ended, so that silence on a dead stream is
//! never taken for "nothing arrived". Every wait is bounded; roster pushes and server pings
//! are answered as RFC 6121 §2.1.6 and XEP-0199 ask.

pub mod files;
mod mapping;
pub mod peer;
mod transport;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imfed_model::{Address, SubscriptionAction};
use imfed_reports::Flow;
use imfed_xmpp::client::{Login, LoginAction, LoginConfig, TlsPolicy};
use imfed_xmpp::{Element, Jid, StreamEvent, StreamParser, ns};
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub use mapping::{
    address_of, decode, jid_of, parse_address, parse_fragment, parse_fragment_in, pattern_matches,
    render,
};
use transport::{Reader, Wire, Writer};

use super::event::{Matcher, OutMessage, OutPresence, Received, SubscriptionRecord, Wire as Form};
use super::lifecycle::{EndCause, Ended, Inbox, Liveness, Status, Transcript, WaitError};
use super::{DriverError, random_token};

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
    inbox: Inbox,
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

/// Bound on logging in, roster queries and other requests.
const REQUEST_BOUND: Duration = Duration::from_secs(10);

/// The roster item for `contact` in a roster query or push.
fn roster_item_of<'a>(query: &'a Element, contact: &Address) -> Option<&'a Element> {
    let contact = contact.bare();
    query.elements().find(|item| {
        item.attr("jid")
            .and_then(|jid| Jid::parse(jid).ok())
            .is_some_and(|jid| address_of(&jid) == contact)
    })
}

/// The record a roster item shows; `None` without one (or one being removed).
fn roster_record(query: &Element, contact: &Address) -> Option<SubscriptionRecord> {
    let item = roster_item_of(query, contact)?;
    let (state, pending_out) = mapping::item_state(item)?;
    Some(SubscriptionRecord {
        state,
        pending_out,
        text: item.to_xml(ns::CLIENT),
    })
}

/// Whether `received` is the result or error answering the iq `id`.
fn is_reply(received: &Received, id: &str) -> bool {
    let Form::Xmpp(stanza) = &received.wire else {
        return false;
    };
    stanza.is("iq", ns::CLIENT)
        && stanza.attr("id") == Some(id)
        && matches!(stanza.attr("type"), Some("result" | "error"))
}

/// Reads the stream until it ends; see [`Session`].
async fn read_stream(
    mut reader: Reader,
    mut parser: StreamParser,
    actor: String,
    arrivals: mpsc::UnboundedSender<Received>,
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
            let received = decode(stanza);
            transcript.record(&actor, Flow::Received, received.text.clone());
            let Form::Xmpp(stanza) = &received.wire else {
                unreachable!("decode gives an XMPP form");
            };
            if let Some((condition, text)) = imfed_xmpp::stream::parse_stream_error(stanza) {
                break 'read EndCause::StreamError {
                    condition: condition.to_string(),
                    text,
                };
            }
            if let Some(reply) = auto_reply(stanza) {
                let mut out = Vec::with_capacity(128);
                reply.write_to(&mut out, ns::CLIENT);
                transcript.record(&actor, Flow::Sent, String::from_utf8_lossy(&out).into());
                let _ = outgoing.send(out);
            }
            // The receiver may be gone (the session was dropped): reading goes on until the
            // task is aborted.
            let _ = arrivals.send(received);
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
        let (reader, writer) = wire.io.split().expect("a logged-in stream has a transport");
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
            inbox: Inbox::new(arrivals, []),
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

    /// Takes the first stanza in the inbox matching `matcher`, waiting up to `bound`.
    ///
    /// # Errors
    /// [`WaitError`] with what arrived unmatched; `ended` is set when the stream ended,
    /// which ends the wait at once, `cut_short` when another actor's stream was lost.
    pub async fn wait_for(
        &mut self,
        matcher: &Matcher,
        bound: Duration,
    ) -> Result<Received, WaitError> {
        self.wait_where(bound, |received| matcher.matches(received))
            .await
    }

    /// Like [`Session::wait_for`] with any predicate.
    ///
    /// # Errors
    /// As [`Session::wait_for`].
    pub async fn wait_where(
        &mut self,
        bound: Duration,
        predicate: impl Fn(&Received) -> bool,
    ) -> Result<Received, WaitError> {
        self.inbox
            .wait_where(bound, &self.status, &self.transcript, predicate)
            .await
    }

    /// Watches for `duration`: the first matching stanza, or `Ok(None)`.
    ///
    /// # Errors
    /// The end of the stream, if it ended during the window.
    pub async fn watch(
        &mut self,
        matcher: &Matcher,
        duration: Duration,
    ) -> Result<Option<Received>, Ended> {
        self.inbox
            .watch(matcher, duration, &self.status, &self.transcript)
            .await
    }

    /// Takes the first stanza already received that matches, without waiting.
    pub fn take_matching(&mut self, matcher: &Matcher) -> Option<Received> {
        self.inbox.take_matching(matcher)
    }

    /// What was received and not consumed, as text.
    pub fn unmatched(&self) -> Vec<String> {
        self.inbox.unmatched()
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
        self.wait_where(bound, |received| is_reply(received, id))
            .await
            .and_then(|received| match received.wire {
                Form::Xmpp(stanza) => Ok(stanza),
                Form::Rvp(_) | Form::Sip(_) => Err(WaitError {
                    arrived: Vec::new(),
                    ended: None,
                    cut_short: false,
                }),
            })
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
            .wait_where(bound, |received| is_reply(received, id))
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

    /// Logs in ([`Session::login`]) and fetches the roster, which makes the resource
    /// "interested" in roster pushes (RFC 6121 §2.1.6): what the runner calls logging in.
    ///
    /// # Errors
    /// [`DriverError`] naming what failed, [`DriverError::Refused`] when the roster query is.
    pub async fn log_in(
        actor: &str,
        addr: SocketAddr,
        credentials: &Credentials,
        transcript: Transcript,
        bound: Duration,
    ) -> Result<Session, DriverError> {
        let mut session = Self::login(actor, addr, credentials, transcript, bound).await?;
        let reply = session.roster_query().await?;
        if reply.attr("type") != Some("result") {
            return Err(DriverError::Refused(format!(
                "roster query: {}",
                reply.to_xml(ns::CLIENT)
            )));
        }
        Ok(session)
    }

    /// The address the session is bound to (the actor's endpoint).
    pub fn address(&self) -> Address {
        address_of(&self.jid)
    }

    /// Sends a message (a fresh id unless `out` names one).
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the stream has ended.
    pub async fn send_message(&mut self, out: &OutMessage) -> Result<(), DriverError> {
        let id = out.id.clone().unwrap_or_else(|| self.next_id());
        self.send(&mapping::message(out, id)).await
    }

    /// Publishes presence: a broadcast, or directed presence (RFC 6121 §4).
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the stream has ended.
    pub async fn publish(&mut self, out: &OutPresence) -> Result<(), DriverError> {
        self.send(&mapping::presence(out)).await
    }

    /// Acts on a subscription with `to` (RFC 6121 §3).
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the stream has ended.
    pub async fn subscription(
        &mut self,
        action: SubscriptionAction,
        to: &Address,
    ) -> Result<(), DriverError> {
        self.send(&mapping::subscription(action, to)).await
    }

    async fn roster_set(&mut self, item: Element) -> Result<(), DriverError> {
        let request = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_child(Element::new("query", ns::ROSTER).with_child(item));
        let reply = self.iq(request, REQUEST_BOUND).await?;
        if reply.attr("type") == Some("result") {
            Ok(())
        } else {
            Err(DriverError::Refused(format!(
                "the server refused the roster set: {}",
                reply.to_xml(ns::CLIENT)
            )))
        }
    }

    /// Adds or updates a contact on the user's list (RFC 6121 §2.3).
    ///
    /// # Errors
    /// [`DriverError::Refused`] unless the server answers with a result.
    pub async fn roster_add(
        &mut self,
        contact: &Address,
        name: Option<&str>,
        groups: &[String],
    ) -> Result<(), DriverError> {
        self.roster_set(mapping::roster_item(contact, name, groups))
            .await
    }

    /// Removes a contact from the user's list (RFC 6121 §2.5).
    ///
    /// # Errors
    /// [`DriverError::Refused`] unless the server answers with a result.
    pub async fn roster_remove(&mut self, contact: &Address) -> Result<(), DriverError> {
        self.roster_set(
            mapping::roster_item(contact, None, &[]).with_attr("subscription", "remove"),
        )
        .await
    }

    /// A roster get (RFC 6121 §2.1.3): the reply, whatever its type.
    async fn roster_query(&mut self) -> Result<Element, DriverError> {
        let get = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_child(Element::new("query", ns::ROSTER));
        self.iq(get, REQUEST_BOUND).await
    }

    /// What the user's server records about `contact` (its roster item); `None` when it has
    /// no record.
    ///
    /// # Errors
    /// [`DriverError`] when the query fails.
    pub async fn subscription_record(
        &mut self,
        contact: &Address,
    ) -> Result<Option<SubscriptionRecord>, DriverError> {
        let reply = self.roster_query().await?;
        Ok(reply
            .child("query", ns::ROSTER)
            .and_then(|query| roster_record(query, contact)))
    }

    /// Waits up to `bound` for the server to change its record of `contact` (a roster push,
    /// RFC 6121 §2.1.6); `Ok(None)` when the change removed it.
    ///
    /// # Errors
    /// [`WaitError`] as for [`Session::wait_where`].
    pub async fn next_record_change(
        &mut self,
        contact: &Address,
        bound: Duration,
    ) -> Result<Option<SubscriptionRecord>, WaitError> {
        let push = self
            .wait_where(bound, |received| {
                let Form::Xmpp(stanza) = &received.wire else {
                    return false;
                };
                stanza.is("iq", ns::CLIENT)
                    && stanza.attr("type") == Some("set")
                    && stanza
                        .child("query", ns::ROSTER)
                        .is_some_and(|query| roster_item_of(query, contact).is_some())
            })
            .await?;
        let Form::Xmpp(stanza) = &push.wire else {
            return Ok(None);
        };
        Ok(stanza
            .child("query", ns::ROSTER)
            .and_then(|query| roster_record(query, contact)))
    }

    /// Publishes unavailable presence and closes the stream.
    pub async fn logout(mut self) {
        let unavailable = OutPresence {
            to: None,
            availability: imfed_model::Availability::Unavailable,
            show: None,
            status: None,
            priority: None,
            lease: None,
        };
        let _ = self.publish(&unavailable).await;
        self.close().await;
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
