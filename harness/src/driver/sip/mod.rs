//! The SIP/SIMPLE driver: one actor's user agent (RFC 3261, RFC 3428, RFC 3856, RFC 3903,
//! RFC 6665; the conventions of `protocols/sip/PROFILE.md`), recorded in the transcript.
//!
//! Logging in is a `REGISTER` of the actor's Contact (§2), with Digest answered on `401`
//! (`WWW-Authenticate`) and `407` (`Proxy-Authenticate`) once per request and reused with a
//! counting `nc` afterwards. Presence is a PIDF `PUBLISH` whose entity-tag the driver keeps
//! for changes and the removal (§3), presence subscriptions are `SUBSCRIBE` dialogs (§4,
//! [`imfed_sip::dialog`]), messages are `MESSAGE`s (§6), and the liveness round trip is an
//! `OPTIONS` to the home server once every request sent before has its final response (§8):
//! a SIP server answers every transaction, so then it has processed them all. The sockets
//! and transactions are `transport.rs`'s, requests and Digest `client.rs`'s, and what the
//! server sends the agent `inbound.rs`'s.
//!
//! As in the other drivers, what arrives is recorded when it arrives and kept in an inbox
//! that expectations search. A NOTIFY becomes a presence event from the presentity's AOR,
//! and `Subscription-State: terminated` also the end of the subscription (the `Refused`
//! signal: the watcher's subscription ended); a MESSAGE becomes a message; every NOTIFY and
//! MESSAGE is answered `200` (a NOTIFY outside any known subscription `481`). A final
//! response other than 2xx is an [`Event::Error`] of PROFILE.md §7's class with the status
//! as condition, not a driver error. The session ends unasked when the home server closes
//! the TCP connection; the end is recorded with its time and cause and cuts short every wait
//! of the scenario. Over UDP a server that stops answering fails the liveness round trip.

mod client;
mod inbound;
mod mapping;
mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imfed_model::{Address, StanzaKind, SubscriptionAction};
use imfed_reports::Flow;
use imfed_sip::codec::{Limits, parse_datagram};
use imfed_sip::dialog::Dialog;
use imfed_sip::digest::DigestClient;
use imfed_sip::transaction::Timers;
use imfed_sip::{Message, Method, NameAddr, Request, Response, Uri, pidf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use mapping::{
    address_of, aor_of, error_class, parse_address, pidf_of, presence_event, render,
};
pub use transport::{Transport, TransportError};

use self::client::{Auth, Client, Outgoing};
use self::inbound::{Inbound, Subscription, Subscriptions, answer_received, raw_answer_event};
use self::transport::UserAgent;
use super::DriverError;
use super::event::{Event, Matcher, OutMessage, OutPresence, Received, SubscriptionRecord};
use super::lifecycle::{EndCause, Ended, Inbox, Liveness, Status, Transcript, WaitError};
use super::random_token;

/// Intervals, bounds and the transport of a session.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How the user agent reaches its server and is reached.
    pub transport: Transport,
    /// `Expires` asked for the registration (seconds; PROFILE.md §2).
    pub register_expires: u32,
    /// `Expires` asked for publications (seconds; PROFILE.md §3).
    pub publish_expires: u32,
    /// `Expires` asked for presence subscriptions (seconds; PROFILE.md §4).
    pub subscribe_expires: u32,
    /// Bound on the final response to a request the home server answers itself (REGISTER,
    /// PUBLISH, OPTIONS); one it forwards to another domain (MESSAGE, SUBSCRIBE) may take
    /// until the server's Timer F, and is bounded by this session's Timer F and 2 s.
    pub request_bound: Duration,
    /// The transaction timers (RFC 3261 §17).
    pub timers: Timers,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            transport: Transport::Udp,
            register_expires: 3600,
            publish_expires: 3600,
            subscribe_expires: 3600,
            request_bound: Duration::from_secs(10),
            timers: Timers::default(),
        }
    }
}

/// How to log in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user part of the AOR (the Digest username).
    pub user: String,
    /// The user's domain (the Digest realm).
    pub domain: String,
    /// The password.
    pub password: String,
    /// Intervals, bounds and transport.
    pub settings: Settings,
}

/// What the session, its ping tasks and its user agent's handler share about the actor.
#[derive(Clone, Debug)]
struct Identity {
    actor: String,
    status: Arc<Status>,
    transcript: Transcript,
}

impl Identity {
    /// Records an unasked end (once).
    fn lose(&self, cause: EndCause) {
        if self.status.end(&self.transcript, cause.clone()) {
            self.note(cause.to_string());
        }
    }

    fn note(&self, text: String) {
        self.transcript.record(&self.actor, Flow::Note, text);
    }

    fn record(&self, flow: Flow, text: String) {
        self.transcript.record(&self.actor, flow, text);
    }
}

/// What the actor published: the entity-tag that names it and the tuple id.
#[derive(Clone, Debug)]
struct Publication {
    etag: String,
}

/// Seconds of a scenario's duration, rounded up, at least 1.
fn seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis().div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Counts a MESSAGE queued or in flight while it lives.
#[derive(Debug)]
struct Queued(Arc<tokio::sync::watch::Sender<usize>>);

impl Queued {
    fn new(count: &Arc<tokio::sync::watch::Sender<usize>>) -> Queued {
        count.send_modify(|count| *count += 1);
        Queued(count.clone())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count -= 1);
    }
}

/// One actor's SIP session after login.
pub struct Session {
    client: Client,
    /// Into the inbox, for the final responses of MESSAGEs, which come by themselves.
    arrivals: mpsc::UnboundedSender<Received>,
    /// The last MESSAGE task per recipient: the next waits for it, so that messages to one
    /// recipient are sent, and processed, in order.
    messages: HashMap<Address, JoinHandle<()>>,
    /// MESSAGEs and authenticated raw requests queued or waiting for their final response.
    queued: Arc<tokio::sync::watch::Sender<usize>>,
    /// Raw requests sent with `authenticate`, until their final response.
    raw: Vec<JoinHandle<()>>,
    address: Address,
    settings: Settings,
    ua: Option<UserAgent>,
    contact: Uri,
    /// The registration's Call-ID and last CSeq (RFC 3261 §10.2: one Call-ID per UA).
    register: Outgoing,
    tuple: String,
    publication: Option<Publication>,
    subscriptions: Subscriptions,
    inbox: Inbox,
    pings: HashMap<String, JoinHandle<Result<Response, TransportError>>>,
    next_ping: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("actor", &self.client.id.actor)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for ping in self.pings.values() {
            ping.abort();
        }
        for task in self.messages.values().chain(&self.raw) {
            task.abort();
        }
    }
}

impl Session {
    /// Logs in within `bound`: starts the user agent and registers its Contact (PROFILE.md
    /// §2).
    ///
    /// # Errors
    /// [`DriverError::Connect`] when the home server cannot be reached over TCP,
    /// [`DriverError::Login`] when it refuses the registration (the status is named) or does
    /// not answer, [`DriverError::Timeout`] when the bound elapsed.
    pub async fn log_in(
        actor: &str,
        home: SocketAddr,
        credentials: &Credentials,
        transcript: Transcript,
        bound: Duration,
    ) -> Result<Session, DriverError> {
        tokio::time::timeout(
            bound,
            Self::log_in_inner(actor, home, credentials, transcript),
        )
        .await
        .map_err(|_| DriverError::Timeout(bound, format!("{actor} to log in")))?
    }

    async fn log_in_inner(
        actor: &str,
        home: SocketAddr,
        credentials: &Credentials,
        transcript: Transcript,
    ) -> Result<Session, DriverError> {
        let own = parse_address(&format!("{}@{}", credentials.user, credentials.domain))
            .map_err(DriverError::Login)?;
        let id = Identity {
            actor: actor.to_string(),
            status: Arc::new(Status::default()),
            transcript,
        };
        let settings = credentials.settings.clone();
        let subscriptions = Subscriptions::default();
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
        let inbound = Arc::new(Inbound {
            id: id.clone(),
            subscriptions: subscriptions.clone(),
            arrivals: arrivals_tx.clone(),
            tag: random_token(10),
        });
        let ua = UserAgent::start(home, settings.transport, settings.timers, inbound)
            .await
            .map_err(|error| match error {
                TransportError::Connect { addr, source } => DriverError::Connect { addr, source },
                other => DriverError::Login(other.to_string()),
            })?;
        let agent = ua.agent();
        let contact = agent.contact(&credentials.user);
        let client = Client {
            id: id.clone(),
            agent: agent.clone(),
            auth: Arc::new(Mutex::new(Auth {
                www: DigestClient::new(&credentials.user, &credentials.password),
                proxy: DigestClient::new(&credentials.user, &credentials.password),
                www_everywhere: false,
            })),
            bound: settings.request_bound,
        };
        let aor = aor_of(&own);
        let mut register = Outgoing::new(
            Method::Register,
            Uri::new(None, &own.domain),
            &aor,
            aor.clone(),
        );
        let mut out = register
            .clone()
            .with("Contact", NameAddr::new(contact.clone()).to_string())
            .with("Expires", settings.register_expires.to_string());
        let response = client
            .exchange(|| out.next())
            .await
            .map_err(|error| DriverError::Login(format!("the REGISTER of {aor}: {error}")))?;
        register.cseq = out.cseq;
        if !response.is_success() {
            return Err(DriverError::Login(format!(
                "the REGISTER of {aor} was answered {} {}",
                response.status, response.reason
            )));
        }
        let granted = response
            .contacts()
            .ok()
            .and_then(|contacts| {
                contacts
                    .into_iter()
                    .find(|held| held.uri.host_port() == contact.host_port())
                    .and_then(|held| held.expires())
            })
            .or(response.expires());
        id.note(format!(
            "registered {aor} at {contact}{}",
            granted.map_or(String::new(), |s| format!(" for {s} s"))
        ));
        let address = Address {
            endpoint: Some(contact.host_port()),
            ..own
        };
        Ok(Session {
            client,
            arrivals: arrivals_tx,
            messages: HashMap::new(),
            queued: Arc::new(tokio::sync::watch::channel(0).0),
            raw: Vec::new(),
            address,
            settings,
            ua: Some(ua),
            contact,
            register,
            tuple: format!("t{}", random_token(8)),
            publication: None,
            subscriptions,
            inbox: Inbox::new(arrivals, [answer_received(&response, Event::Other)]),
            pings: HashMap::new(),
            next_ping: 0,
        })
    }

    fn id(&self) -> &Identity {
        &self.client.id
    }

    fn aor(&self) -> Uri {
        aor_of(&self.address.bare())
    }

    /// The address the session is bound to: the AOR, with the Contact's `host:port` as
    /// endpoint.
    pub fn address(&self) -> Address {
        self.address.clone()
    }

    /// The Contact the user agent registered.
    pub fn contact(&self) -> &Uri {
        &self.contact
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How the session ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        self.id().status.ended()
    }

    /// Takes conditions a step allows the server to end the session with; no SIP response
    /// ends a session (PROFILE.md §8), so none applies, but they are kept as the other
    /// drivers keep theirs.
    pub fn allow_stream_errors(&self, conditions: &[String]) {
        self.id()
            .status
            .allowed
            .lock()
            .expect("status lock")
            .extend(conditions.iter().cloned());
    }

    /// "bob (sut.test): the home server closed the TCP connection (...) at 520 ms".
    pub fn describe_end(&self, ended: &Ended) -> String {
        format!(
            "{} ({}): {} at {} ms",
            self.id().actor,
            self.address.domain,
            ended.cause,
            ended.t_ms
        )
    }

    /// Describes a failed liveness round trip.
    pub fn describe_liveness(&self, failure: &Liveness) -> String {
        match failure {
            Liveness::Ended(ended) => self.describe_end(ended),
            Liveness::NoAnswer(bound) => format!(
                "{} ({}): no final response to a liveness OPTIONS within {}ms: the session has \
                 stalled",
                self.id().actor,
                self.address.domain,
                bound.as_millis()
            ),
            Liveness::CutShort => format!(
                "{} ({}): liveness round trip cut short by another actor's lost session",
                self.id().actor,
                self.address.domain
            ),
        }
    }

    fn ended_error(&self) -> Option<DriverError> {
        self.ended()
            .map(|ended| DriverError::Stream(self.describe_end(&ended)))
    }

    /// The driver error for a request that got no final response.
    fn driver_error(&self, error: TransportError) -> DriverError {
        match error {
            TransportError::Timeout(bound) => {
                DriverError::Timeout(bound, "a final response from the home server".into())
            }
            error => self
                .ended_error()
                .unwrap_or_else(|| DriverError::Stream(error.to_string())),
        }
    }

    /// Fails when the session has ended.
    fn live(&self) -> Result<(), DriverError> {
        match self.ended_error() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Sends what `make` builds (the public operations check first that the session is
    /// live; signing off sends after the harness has ended it).
    async fn send(&self, make: impl FnMut() -> Request) -> Result<Response, DriverError> {
        self.send_within(make, self.settings.request_bound).await
    }

    /// As [`Session::send`] with a bound per attempt.
    async fn send_within(
        &self,
        make: impl FnMut() -> Request,
        bound: Duration,
    ) -> Result<Response, DriverError> {
        self.client
            .exchange_within(make, bound)
            .await
            .map_err(|error| self.driver_error(error))
    }

    /// Puts the answer to a request in the inbox, for `expect_sip`: a final status other
    /// than 2xx as an [`Event::Error`] (PROFILE.md §7), a success as [`Event::Other`] (no
    /// event: [`Matcher::Any`] skips it). Returns whether it was an error.
    fn error_answer(
        &mut self,
        response: &Response,
        from: Option<Address>,
        about: Option<StanzaKind>,
    ) -> bool {
        let error = mapping::is_error(response.status);
        self.inbox.push(answer_received(
            response,
            if error {
                mapping::error_event(from, about, response.status)
            } else {
                Event::Other
            },
        ));
        error
    }

    /// The bound of a request the home server forwards: its Timer F, and 2 s.
    fn remote_bound(&self) -> Duration {
        self.settings.timers.timer_f() + Duration::from_secs(2)
    }

    /// Sends a message: a MESSAGE to the recipient's AOR, `text/plain;charset=UTF-8`, the
    /// subject as `Subject` (PROFILE.md §6). It goes out in the background, after the
    /// previous one to the same recipient has its final response (so they arrive in
    /// order), and its final response comes by itself, as a bounce does over XMPP: other
    /// than 2xx (480: no contact registered; 408: the other domain did not answer in Timer
    /// F) it is an [`Event::Error`] about a message. A liveness round trip waits for it.
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for what a MESSAGE cannot carry
    /// (`mapping::check_message`), [`DriverError::Stream`] when the session has ended.
    pub async fn send_message(&mut self, out: &OutMessage) -> Result<(), DriverError> {
        mapping::check_message(out)?;
        self.live()?;
        let to = out.to.bare();
        let target = aor_of(&to);
        let mut request = Outgoing::new(Method::Message, target.clone(), &self.aor(), target)
            .with_body(
                "text/plain;charset=UTF-8",
                out.body.clone().unwrap_or_default().into_bytes(),
            );
        if let Some(subject) = &out.subject {
            request = request.with("Subject", subject.clone());
        }
        let previous = self.messages.remove(&to);
        let (client, arrivals) = (self.client.clone(), self.arrivals.clone());
        let queued = Queued::new(&self.queued);
        let bound = self.remote_bound();
        let recipient = to.clone();
        let task = tokio::spawn(async move {
            let _queued = queued;
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            // No answer is noted (or ends the session) by the exchange.
            if let Ok(response) = client.exchange_within(|| request.next(), bound).await {
                let event = if mapping::is_error(response.status) {
                    mapping::error_event(
                        Some(recipient),
                        Some(StanzaKind::Message),
                        response.status,
                    )
                } else {
                    Event::Other
                };
                let _ = arrivals.send(answer_received(&response, event));
            }
        });
        self.messages.insert(to, task);
        Ok(())
    }

    /// A PUBLISH of the actor's presence for `expires` seconds (RFC 3903 §4): with the
    /// entity-tag held (a refresh or change), and with `document` as body when given.
    async fn publish_request(
        &mut self,
        document: Option<&pidf::Presence>,
        expires: u32,
    ) -> Result<Response, DriverError> {
        let aor = self.aor();
        let mut request = Outgoing::new(Method::Publish, aor.clone(), &aor, aor.clone())
            .with("Event", "presence")
            .with("Expires", expires.to_string());
        if let Some(publication) = &self.publication {
            request = request.with("SIP-If-Match", publication.etag.clone());
        }
        if let Some(document) = document {
            request = request.with_body(pidf::CONTENT_TYPE, document.to_xml().into_bytes());
        }
        self.send(|| request.next()).await
    }

    /// Publishes presence: a PUBLISH of a PIDF document (PROFILE.md §3), changing the
    /// publication held (`SIP-If-Match`; a 412 says the server forgot it, and a new one is
    /// made). The 2xx answer is what the home server now holds: it is received as the
    /// actor's own presence (PROFILE.md §3).
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for what PIDF presence cannot say ([`pidf_of`]),
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn publish(&mut self, out: &OutPresence) -> Result<(), DriverError> {
        let document = pidf_of(out, &self.aor(), &self.tuple)?;
        self.live()?;
        let expires = out.lease.map_or(self.settings.publish_expires, seconds);
        let mut response = self.publish_request(Some(&document), expires).await?;
        if response.status == 412 && self.publication.take().is_some() {
            self.id()
                .note("the publication was unknown to the server: publishing anew".into());
            response = self.publish_request(Some(&document), expires).await?;
        }
        let own = self.address.bare();
        if !response.is_success() {
            self.error_answer(&response, Some(own), Some(StanzaKind::Presence));
            return Ok(());
        }
        self.keep_etag(&response);
        self.inbox.push(answer_received(
            &response,
            presence_event(Some(own), Some(&document)),
        ));
        Ok(())
    }

    /// Keeps the entity-tag of a 2xx to a PUBLISH: the next one names it (RFC 3903 §4.1).
    fn keep_etag(&mut self, response: &Response) {
        if !response.is_success() {
            return;
        }
        match response.headers.get("SIP-ETag") {
            Some(etag) => {
                self.publication = Some(Publication {
                    etag: etag.to_string(),
                });
            }
            None => self
                .id()
                .note("the PUBLISH was answered without SIP-ETag".into()),
        }
    }

    /// Acts on a presence subscription to `to`: subscribe, or unsubscribe (an in-dialog
    /// SUBSCRIBE with `Expires: 0`, RFC 6665 §4.1.2.3).
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for approve, deny and cancel (the profile has no
    /// handshake), [`DriverError::Stream`] when the session has ended.
    pub async fn subscription(
        &mut self,
        action: SubscriptionAction,
        to: &Address,
    ) -> Result<(), DriverError> {
        mapping::check_action(action)?;
        self.live()?;
        let contact = to.bare();
        if action == SubscriptionAction::Subscribe {
            return self.subscribe(&contact, None).await;
        }
        if !self.has_dialog(&contact) {
            self.id().note(format!(
                "no subscription to {} to end: nothing sent",
                render(&contact)
            ));
            return Ok(());
        }
        self.in_dialog(&contact, 0).await
    }

    fn has_dialog(&self, contact: &Address) -> bool {
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .iter()
            .any(|sub| sub.contact == *contact && sub.dialog.is_some())
    }

    /// Subscribes to `to`'s presence for `lifetime` (default:
    /// [`Settings::subscribe_expires`]; PROFILE.md §4). The NOTIFYs that follow are
    /// presence events from `to`. With a subscription already held, refreshes it instead.
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn subscribe(
        &mut self,
        to: &Address,
        lifetime: Option<Duration>,
    ) -> Result<(), DriverError> {
        self.live()?;
        let contact = to.bare();
        let expires = lifetime.map_or(self.settings.subscribe_expires, seconds);
        if self.has_dialog(&contact) {
            return self.in_dialog(&contact, expires).await;
        }
        let target = aor_of(&contact);
        let mut request = Outgoing::new(Method::Subscribe, target.clone(), &self.aor(), target)
            .with("Contact", NameAddr::new(self.contact.clone()).to_string())
            .with("Event", "presence")
            .with("Accept", pidf::CONTENT_TYPE)
            .with("Expires", expires.to_string());
        let subscriptions = self.subscriptions.clone();
        let pending = contact.clone();
        // Held before it is sent: its first NOTIFY may come before its 2xx.
        let bound = self.remote_bound();
        let response = self
            .send_within(
                || {
                    let subscribe = request.next();
                    let mut subs = subscriptions.lock().expect("subscriptions lock");
                    subs.retain(|sub| sub.contact != pending);
                    subs.push(Subscription {
                        contact: pending.clone(),
                        subscribe: subscribe.clone(),
                        dialog: None,
                    });
                    subscribe
                },
                bound,
            )
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.forget(&contact);
                return Err(error);
            }
        };
        if !response.is_success() {
            self.forget(&contact);
            self.error_answer(&response, Some(contact), Some(StanzaKind::Presence));
            return Ok(());
        }
        {
            let mut subs = self.subscriptions.lock().expect("subscriptions lock");
            if let Some(sub) = subs.iter_mut().find(|sub| sub.contact == contact)
                && sub.dialog.is_none()
            {
                match Dialog::uac_from_response(&sub.subscribe, &response) {
                    Ok(dialog) => sub.dialog = Some(dialog),
                    Err(error) => self.client.id.note(format!(
                        "no dialog from the 2xx to the SUBSCRIBE of {contact}: {error}"
                    )),
                }
            }
        }
        self.inbox.push(answer_received(&response, Event::Other));
        Ok(())
    }

    fn forget(&self, contact: &Address) {
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .retain(|sub| sub.contact != *contact);
    }

    /// An in-dialog SUBSCRIBE to `contact` with `Expires: expires` (a refresh, or with 0 the
    /// end, RFC 6665 §4.1.2.2, §4.1.2.3). A 481 says the notifier no longer knows it.
    async fn in_dialog(&mut self, contact: &Address, expires: u32) -> Result<(), DriverError> {
        let dialog = self
            .subscriptions
            .lock()
            .expect("subscriptions lock")
            .iter()
            .find(|sub| sub.contact == *contact)
            .and_then(|sub| sub.dialog.clone());
        let Some(mut dialog) = dialog else {
            return Err(DriverError::Refused(format!(
                "no subscription to {} is held",
                render(contact)
            )));
        };
        let own_contact = NameAddr::new(self.contact.clone()).to_string();
        let bound = self.remote_bound();
        let response = self
            .send_within(
                || {
                    let mut request = dialog.request(Method::Subscribe);
                    request.headers.push("Contact", own_contact.as_str());
                    request.headers.push("Event", "presence");
                    request.headers.push("Accept", pidf::CONTENT_TYPE);
                    request.headers.push("Expires", expires.to_string());
                    request
                },
                bound,
            )
            .await?;
        {
            let mut subs = self.subscriptions.lock().expect("subscriptions lock");
            if response.status == 481 {
                subs.retain(|sub| sub.contact != *contact);
            } else if let Some(held) = subs
                .iter_mut()
                .find(|sub| sub.contact == *contact)
                .and_then(|sub| sub.dialog.as_mut())
            {
                held.local_seq = held.local_seq.max(dialog.local_seq);
            }
        }
        self.error_answer(&response, Some(contact.clone()), Some(StanzaKind::Presence));
        Ok(())
    }

    /// The `renew` step: refreshes the registration (the actor's own address) or the
    /// subscription to `to` for `lifetime` (`Expires`).
    ///
    /// # Errors
    /// [`DriverError::Refused`] without a subscription to `to`, [`DriverError::Stream`] when
    /// the session has ended.
    pub async fn renew(
        &mut self,
        to: &Address,
        lifetime: Option<Duration>,
    ) -> Result<(), DriverError> {
        self.live()?;
        let contact = to.bare();
        if contact == self.address.bare() {
            let expires = lifetime.map_or(self.settings.register_expires, seconds);
            let response = self.register(expires).await?;
            self.error_answer(&response, Some(contact), None);
            return Ok(());
        }
        let expires = lifetime.map_or(self.settings.subscribe_expires, seconds);
        self.in_dialog(&contact, expires).await
    }

    /// A REGISTER of the Contact for `expires` seconds (0: the logout).
    async fn register(&mut self, expires: u32) -> Result<Response, DriverError> {
        let mut out = self
            .register
            .clone()
            .with("Contact", NameAddr::new(self.contact.clone()).to_string())
            .with("Expires", expires.to_string());
        let response = self.send(|| out.next()).await;
        self.register.cseq = out.cseq;
        response
    }

    fn no_roster(&self) -> DriverError {
        DriverError::Unsupported(
            "the SIP profile keeps no contact list: a watcher holds its own subscription \
             dialogs, and XCAP resource lists (RFC 4826) are outside it (PROFILE.md §4)"
                .into(),
        )
    }

    /// The profile has no contact list.
    ///
    /// # Errors
    /// Always [`DriverError::Unsupported`].
    pub async fn roster_add(
        &mut self,
        _contact: &Address,
        _name: Option<&str>,
        _groups: &[String],
    ) -> Result<(), DriverError> {
        Err(self.no_roster())
    }

    /// The profile has no contact list.
    ///
    /// # Errors
    /// Always [`DriverError::Unsupported`].
    pub async fn roster_remove(&mut self, _contact: &Address) -> Result<(), DriverError> {
        Err(self.no_roster())
    }

    /// The profile has no contact list, hence no subscription record.
    ///
    /// # Errors
    /// Always [`DriverError::Unsupported`].
    pub async fn subscription_record(
        &mut self,
        _contact: &Address,
    ) -> Result<Option<SubscriptionRecord>, DriverError> {
        Err(self.no_roster())
    }

    /// The profile has no contact list: fails at once (the runner declares the gap before
    /// running).
    ///
    /// # Errors
    /// Always a [`WaitError`], noted in the transcript.
    pub async fn next_record_change(
        &mut self,
        _contact: &Address,
        _bound: Duration,
    ) -> Result<Option<SubscriptionRecord>, WaitError> {
        self.id().note(self.no_roster().to_string());
        Err(WaitError {
            arrived: self.unmatched(),
            ended: self.ended(),
            cut_short: false,
        })
    }

    /// Writes SIP text as it is to the home server: a datagram from the agent's socket
    /// (UDP) or a connection of its own (TCP). Answers arrive like anything else: a final
    /// status other than 2xx as an [`Event::Error`] from the `To` AOR, about what its CSeq
    /// method names (a message for MESSAGE, presence for SUBSCRIBE and PUBLISH).
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the session has ended or the text cannot be written.
    pub async fn send_raw(&mut self, text: &str) -> Result<(), DriverError> {
        if let Some(error) = self.ended_error() {
            return Err(error);
        }
        self.id().record(Flow::Sent, text.to_string());
        self.client
            .agent
            .send_raw(text.as_bytes().to_vec())
            .await
            .map_err(|error| self.driver_error(error))
    }

    /// `raw_sip` with `authenticate`: the request as written, parsed and sent in a client
    /// transaction of the user agent (its own top `Via` with a `z9hG4bK` branch names the
    /// transaction, nothing else is added), one Digest challenge answered with the actor's
    /// credentials ([`Client::exchange_raw`]). Like a MESSAGE it goes out in the background
    /// and its final response comes by itself, as a raw request's does (other than 2xx, an
    /// [`Event::Error`] from the `To` AOR); a liveness round trip waits for it.
    ///
    /// # Errors
    /// [`DriverError::Refused`] for a request that does not parse or has no RFC 3261 branch,
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn send_raw_authenticated(&mut self, text: &str) -> Result<(), DriverError> {
        self.live()?;
        let request = match parse_datagram(text.as_bytes(), &Limits::default()) {
            Ok(Some(Message::Request(request))) => request,
            Ok(_) => {
                return Err(DriverError::Refused(
                    "authenticate: the text is not a SIP request".into(),
                ));
            }
            Err(error) => {
                return Err(DriverError::Refused(format!(
                    "authenticate: the request must parse to be sent again: {error}"
                )));
            }
        };
        let branch = request
            .top_via()
            .ok()
            .and_then(|via| via.branch().map(str::to_string));
        if !branch.is_some_and(|branch| branch.starts_with("z9hG4bK")) {
            return Err(DriverError::Refused(
                "authenticate: the request's top Via needs a branch starting z9hG4bK (RFC 3261 \
                 §8.1.1.7): it names the transaction the challenge answers"
                    .into(),
            ));
        }
        let (client, arrivals) = (self.client.clone(), self.arrivals.clone());
        let queued = Queued::new(&self.queued);
        let bound = self.remote_bound();
        self.raw.retain(|task| !task.is_finished());
        self.raw.push(tokio::spawn(async move {
            let _queued = queued;
            // No answer is noted by the exchange.
            if let Ok(response) = client.exchange_raw(request, bound).await {
                let _ = arrivals.send(answer_received(&response, raw_answer_event(&response)));
            }
        }));
        Ok(())
    }

    /// Takes the first event in the inbox matching `matcher`, waiting up to `bound`.
    ///
    /// # Errors
    /// [`WaitError`] with what arrived unmatched; `ended` is set when the session ended,
    /// which ends the wait at once, `cut_short` when another actor's session was lost.
    pub async fn wait_for(
        &mut self,
        matcher: &Matcher,
        bound: Duration,
    ) -> Result<Received, WaitError> {
        let id = self.client.id.clone();
        self.inbox
            .wait_where(bound, &id.status, &id.transcript, |received| {
                matcher.matches(received)
            })
            .await
    }

    /// Watches for `duration`: the first matching event, or `Ok(None)`.
    ///
    /// # Errors
    /// The end of the session, if it ended during the window.
    pub async fn watch(
        &mut self,
        matcher: &Matcher,
        duration: Duration,
    ) -> Result<Option<Received>, Ended> {
        let id = self.client.id.clone();
        self.inbox
            .watch(matcher, duration, &id.status, &id.transcript)
            .await
    }

    /// Takes the first event already received that matches, without waiting.
    pub fn take_matching(&mut self, matcher: &Matcher) -> Option<Received> {
        self.inbox.take_matching(matcher)
    }

    /// What was received and not consumed, as text.
    pub fn unmatched(&self) -> Vec<String> {
        self.inbox.unmatched()
    }

    /// Starts a liveness round trip (PROFILE.md §8): once every request sent before has its
    /// final response, an `OPTIONS sip:<domain>` to the home server. Finish it with
    /// [`Session::pong`].
    ///
    /// # Errors
    /// [`Liveness::Ended`] when the session has ended.
    pub async fn ping(&mut self) -> Result<String, Liveness> {
        if let Some(ended) = self.ended() {
            return Err(Liveness::Ended(ended));
        }
        self.next_ping += 1;
        let ping = format!("options-{}", self.next_ping);
        let client = self.client.clone();
        let domain = Uri::new(None, &self.address.domain);
        let mut request = Outgoing::new(Method::Options, domain.clone(), &self.aor(), domain)
            .with("Accept", "application/sdp");
        // The pong's bound cuts the wait short; this one only ends a forgotten request.
        let bound = self.settings.request_bound.max(Duration::from_secs(60));
        let mut queued = self.queued.subscribe();
        let task = tokio::spawn(async move {
            // Every MESSAGE sent before is on the wire and answered, and so is every other
            // request.
            let sent = tokio::time::timeout(bound, queued.wait_for(|count| *count == 0))
                .await
                .is_ok_and(|sent| sent.is_ok());
            if !sent || !client.agent.settled(bound).await {
                return Err(TransportError::Timeout(bound));
            }
            client.exchange(|| request.next()).await
        });
        self.pings.insert(ping.clone(), task);
        Ok(ping)
    }

    /// Waits up to `bound` for the final response to the liveness request `ping`: when it
    /// comes, the server has processed everything sent before it. Any final status shows
    /// that (a status other than 200 is noted).
    ///
    /// # Errors
    /// [`Liveness`].
    pub async fn pong(&mut self, ping: &str, bound: Duration) -> Result<(), Liveness> {
        let Some(mut task) = self.pings.remove(ping) else {
            return Err(Liveness::NoAnswer(Duration::ZERO));
        };
        let mut lost = self.id().transcript.lost_streams();
        let answer = tokio::select! {
            answer = tokio::time::timeout(bound, &mut task) => answer,
            Ok(()) = lost.changed() => {
                task.abort();
                return Err(match self.ended() {
                    Some(ended) => Liveness::Ended(ended),
                    None => Liveness::CutShort,
                });
            }
        };
        match answer {
            Ok(Ok(Ok(response))) => {
                if response.status != 200 {
                    self.id().note(format!(
                        "the liveness OPTIONS was answered {} {}",
                        response.status, response.reason
                    ));
                }
                Ok(())
            }
            Ok(Ok(Err(_)) | Err(_)) => Err(self
                .ended()
                .map_or(Liveness::NoAnswer(bound), Liveness::Ended)),
            Err(_) => {
                task.abort();
                Err(self
                    .ended()
                    .map_or(Liveness::NoAnswer(bound), Liveness::Ended))
            }
        }
    }

    /// A liveness round trip ([`Session::ping`] then [`Session::pong`]).
    ///
    /// # Errors
    /// As [`Session::pong`].
    pub async fn round_trip(&mut self, bound: Duration) -> Result<(), Liveness> {
        let ping = self.ping().await?;
        self.pong(&ping, bound).await
    }

    /// Signs off (PROFILE.md §3): a PUBLISH of `closed`, the removal of the publication
    /// (`Expires: 0`), then the REGISTER with `Expires: 0`; then stops the user agent.
    pub async fn logout(self) {
        self.finish(true).await;
    }

    /// Removes the publication and the registration, and stops.
    pub async fn close(self) {
        self.finish(false).await;
    }

    async fn finish(mut self, sign_off: bool) {
        let open = self.ended().is_none();
        // Ended first: what goes wrong while signing off is no unasked end.
        self.id()
            .status
            .end(&self.client.id.transcript, EndCause::ByHarness);
        if open {
            self.id().note(if sign_off {
                "signing off".into()
            } else {
                "removing the publication and the registration".into()
            });
            if sign_off && self.publication.is_some() {
                let closed = OutPresence {
                    to: None,
                    availability: imfed_model::Availability::Unavailable,
                    show: None,
                    status: None,
                    priority: None,
                    lease: None,
                };
                if let Ok(document) = pidf_of(&closed, &self.aor(), &self.tuple) {
                    let expires = self.settings.publish_expires;
                    if let Ok(response) = self.publish_request(Some(&document), expires).await {
                        self.keep_etag(&response);
                    }
                }
            }
            if self.publication.is_some() {
                let _ = self.publish_request(None, 0).await;
                self.publication = None;
            }
            let _ = self.register(0).await;
        }
        if let Some(ua) = self.ua.take() {
            ua.stop().await;
        }
    }

    /// Stops the user agent without signing off (a crash): the server learns of it only
    /// when the registration and the publication lapse.
    pub fn abort(mut self) {
        self.id()
            .status
            .end(&self.client.id.transcript, EndCause::ByHarness);
        self.id()
            .note("dropping the user agent without signing off".into());
        drop(self.ua.take());
    }
}

#[cfg(test)]
mod tests;
