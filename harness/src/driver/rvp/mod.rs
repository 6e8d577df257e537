//! The RVP driver: one actor's client of its home server (Osborne et al. 2000; the
//! conventions of `protocols/rvp/PROFILE.md`), recorded in the transcript.
//!
//! Logging in is the login subscription (§5.1.7.1): `SUBSCRIBE <own URL>` with
//! `Notification-Type: pragma/notify` and `Call-Back` naming the actor's callback listener
//! (`callback.rs`); its `Subscription-Id` is the endpoint. Presence is a leased `r:state`
//! set by PROPPATCH with that id as `view-id` (§5.5.1), presence subscriptions are
//! `update/propchange` SUBSCRIBEs (§5.1), messages are NOTIFYs (§5.6), and liveness is a
//! PROPFIND of the actor's own node (§5.4): HTTP answers a request only once it was
//! processed. Requests go over HTTP/1.1 with Digest authentication (`transport.rs`,
//! [`imfed_rvp::digest`]).
//!
//! As in the XMPP driver, what arrives is recorded when it arrives and kept in an inbox that
//! expectations search; an error status answering something the actor sent is an
//! [`Event::Error`] in that inbox (PROFILE.md §5), not a driver error. The session ends
//! unasked when the home server becomes unreachable or says the endpoint is gone (412 or
//! 404 to the login renewal or a liveness PROPFIND); the end is recorded with its time and
//! cause and cuts short every wait of the scenario.

mod callback;
mod mapping;
mod transport;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::HOST;
use http::{HeaderValue, StatusCode, Uri};
use imfed_model::{Address, StanzaKind, SubscriptionAction};
use imfed_reports::Flow;
use imfed_rvp::headers::{
    AckType, CallBack, Depth, FromPrincipal, HopCount, NotificationType, SubscriptionId,
    SubscriptionLifetime,
};
use imfed_rvp::xml::{
    Contact, LeasedValue, Message, MultiStatus, Notification, Presence, PropFind, PropName,
    Property, PropertyUpdate, State, StateValue,
};
use imfed_rvp::{Method, NodeUrl, Request, Response};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use mapping::{
    address_of, error_class, parse_address, presence_event, render, state_of, url_of,
};
pub use transport::TransportError;

use self::callback::Callback;
use self::transport::HttpClient;
use super::DriverError;
use super::event::{Event, Matcher, OutMessage, OutPresence, Received, SubscriptionRecord, Wire};
use super::lifecycle::{EndCause, Ended, Inbox, Liveness, Status, Transcript, WaitError};

/// Lease and timing settings of a session.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `Subscription-Lifetime` asked for the login subscription (seconds; §5.1.2).
    pub login_lifetime: u64,
    /// `Subscription-Lifetime` asked for presence subscriptions (seconds).
    pub subscription_lifetime: u64,
    /// The `timeout` of published presence leases (seconds; §5.5: Exchange uses 20 min).
    pub presence_timeout: u64,
    /// Renew the login subscription before its granted lifetime runs out.
    pub auto_renew_login: bool,
    /// Bound on each request.
    pub request_bound: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            login_lifetime: 14400,
            subscription_lifetime: 14400,
            presence_timeout: 1200,
            auto_renew_login: true,
            request_bound: Duration::from_secs(10),
        }
    }
}

/// How to log in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user part (lower-cased in the logical URL).
    pub user: String,
    /// The user's domain (the Digest realm).
    pub domain: String,
    /// The password.
    pub password: String,
    /// Leases and bounds.
    pub settings: Settings,
}

/// What the renewal task and the session share about the session's identity.
#[derive(Clone, Debug)]
struct Identity {
    actor: String,
    own: NodeUrl,
    status: Arc<Status>,
    transcript: Transcript,
}

impl Identity {
    /// Records an unasked end (once).
    fn lose(&self, cause: EndCause) {
        if self.status.end(&self.transcript, cause.clone()) {
            self.transcript
                .record(&self.actor, Flow::Note, cause.to_string());
        }
    }

    fn note(&self, text: String) {
        self.transcript.record(&self.actor, Flow::Note, text);
    }

    /// A request from this principal to `target` (absolute-form, `Host` = its domain,
    /// PROFILE.md §1).
    fn request(&self, method: Method, target: &NodeUrl) -> Request {
        let uri = Uri::try_from(target.to_string()).unwrap_or_else(|_| Uri::from_static("/"));
        let mut request = Request::new(method, uri).with(FromPrincipal::Node(self.own.clone()));
        if let Ok(host) = HeaderValue::try_from(target.authority()) {
            request.headers.insert(HOST, host);
        }
        request
    }

    /// Sends `request` on `client`, recording both ways; `None` (after recording why)
    /// when no answer came, and the session's end when the server is unreachable.
    async fn exchange(
        &self,
        client: &mut HttpClient,
        request: &Request,
        bound: Duration,
    ) -> Result<Response, TransportError> {
        self.transcript
            .record(&self.actor, Flow::Sent, mapping::request_text(request));
        let answer = client.send(request, bound).await;
        match &answer {
            Ok(response) => self.transcript.record(
                &self.actor,
                Flow::Received,
                mapping::response_text(response),
            ),
            Err(error) if error.unreachable() => self.lose(EndCause::Http {
                status: None,
                reason: format!("home server unreachable: {error}"),
            }),
            Err(error) => self.note(error.to_string()),
        }
        answer
    }
}

/// One actor's RVP session after login.
pub struct Session {
    id: Identity,
    address: Address,
    login: SubscriptionId,
    client: HttpClient,
    settings: Settings,
    /// Presence subscriptions by contact (bare address).
    subscriptions: HashMap<Address, SubscriptionId>,
    /// Conversation GUIDs (`Session-Id`) by recipient.
    conversations: HashMap<Address, String>,
    inbox: Inbox,
    callback: Option<Callback>,
    renewer: Option<JoinHandle<()>>,
    pings: HashMap<String, JoinHandle<Result<Response, TransportError>>>,
    next_ping: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("actor", &self.id.actor)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(renewer) = &self.renewer {
            renewer.abort();
        }
        for ping in self.pings.values() {
            ping.abort();
        }
    }
}

/// The delay before renewing a lease of `lifetime` seconds: a minute early for long
/// leases, halfway for short ones (§5.1.2: "before t has expired").
fn renew_after(lifetime: u64) -> Duration {
    if lifetime > 120 {
        Duration::from_secs(lifetime - 60)
    } else {
        Duration::from_millis(lifetime.max(1) * 500)
    }
}

/// A response as a received thing.
fn answer_received(response: &Response, event: Event) -> Received {
    Received {
        event,
        wire: Wire::Rvp(mapping::response_form(response)),
        text: mapping::response_text(response),
    }
}

/// Seconds of a scenario's duration, rounded up, at least 1.
fn seconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Whether a status says the endpoint (or the principal) is gone.
fn endpoint_gone(status: StatusCode) -> bool {
    matches!(status.as_u16(), 404 | 412)
}

/// Renews the login subscription until it is refused or the task is aborted.
async fn renew_login(
    id: Identity,
    mut client: HttpClient,
    login: SubscriptionId,
    mut lifetime: u64,
    settings: Settings,
) {
    loop {
        // A lease timer: nothing to await but the time the lease asks for.
        tokio::time::sleep(renew_after(lifetime)).await;
        if id.status.ended().is_some() {
            return;
        }
        let request = id
            .request(Method::Subscribe, &id.own.clone())
            .with(login.clone())
            .with(SubscriptionLifetime(settings.login_lifetime));
        match id
            .exchange(&mut client, &request, settings.request_bound)
            .await
        {
            Ok(response) if response.status.is_success() => {
                lifetime = response
                    .header::<SubscriptionLifetime>()
                    .ok()
                    .flatten()
                    .map_or(lifetime, |granted| granted.0);
            }
            Ok(response) if endpoint_gone(response.status) => {
                id.lose(EndCause::Http {
                    status: Some(response.status.as_u16()),
                    reason: "the home server refused to renew the login subscription: the \
                             endpoint is gone"
                        .into(),
                });
                return;
            }
            Ok(response) => id.note(format!(
                "login renewal answered {}; retrying",
                response.status
            )),
            Err(error) if error.unreachable() => return,
            Err(_) => {}
        }
    }
}

impl Session {
    /// Logs in within `bound`: starts the callback listener and makes the login
    /// subscription (§5.1.7.1, PROFILE.md §2).
    ///
    /// # Errors
    /// [`DriverError::Connect`] when the home server cannot be reached,
    /// [`DriverError::Login`] when it refuses the subscription (the status is named),
    /// [`DriverError::Timeout`] when the bound elapsed.
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
        let own = NodeUrl::principal(&credentials.domain, None, &credentials.user)
            .map_err(|error| DriverError::Login(error.to_string()))?;
        let id = Identity {
            actor: actor.to_string(),
            own: own.clone(),
            status: Arc::new(Status::default()),
            transcript: transcript.clone(),
        };
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
        let callback = Callback::start(actor, transcript.clone(), arrivals_tx).await?;
        let call_back = NodeUrl::node("127.0.0.1", Some(callback.addr().port()), "")
            .map_err(|error| DriverError::Login(error.to_string()))?;
        let settings = credentials.settings.clone();
        // The Digest username is the user part as the logical URL writes it (lower-cased,
        // PROFILE.md §1, §2).
        let user = own.alias().unwrap_or(&credentials.user).to_string();
        let mut client = HttpClient::new(home, &user, &credentials.password);
        let request = id
            .request(Method::Subscribe, &own)
            .with(NotificationType::PragmaNotify)
            .with(CallBack(call_back))
            .with(SubscriptionLifetime(settings.login_lifetime));
        transcript.record(actor, Flow::Sent, mapping::request_text(&request));
        let response = client
            .send(&request, settings.request_bound)
            .await
            .map_err(|error| match error {
                TransportError::Connect { addr, source } => DriverError::Connect { addr, source },
                other => DriverError::Login(other.to_string()),
            })?;
        transcript.record(actor, Flow::Received, mapping::response_text(&response));
        if !response.status.is_success() {
            return Err(DriverError::Login(format!(
                "the login SUBSCRIBE of {own} was answered {} {}",
                response.status.as_str(),
                response.reason
            )));
        }
        let login = response
            .header::<SubscriptionId>()
            .ok()
            .flatten()
            .ok_or_else(|| {
                DriverError::Login(
                    "the login SUBSCRIBE was answered without Subscription-Id".into(),
                )
            })?;
        let lifetime = response.header::<SubscriptionLifetime>().ok().flatten();
        id.note(format!(
            "logged in as {own} (endpoint {login}, lease {})",
            lifetime.map_or("permanent".to_string(), |l| format!("{} s", l.0))
        ));
        let renewer = match lifetime {
            Some(lifetime) if settings.auto_renew_login => Some(tokio::spawn(renew_login(
                id.clone(),
                client.fork(),
                login.clone(),
                lifetime.0,
                settings.clone(),
            ))),
            _ => None,
        };
        let address = Address {
            endpoint: Some(login.to_string()),
            ..mapping::address_of(&own).expect("a principal URL")
        };
        Ok(Session {
            id,
            address,
            login,
            client,
            settings,
            subscriptions: HashMap::new(),
            conversations: HashMap::new(),
            inbox: Inbox::new(arrivals, [answer_received(&response, Event::Other)]),
            callback: Some(callback),
            renewer,
            pings: HashMap::new(),
            next_ping: 0,
        })
    }

    /// The address the session is bound to: the principal, with the login
    /// Subscription-Id as endpoint.
    pub fn address(&self) -> Address {
        self.address.clone()
    }

    /// The login subscription's id (the endpoint, the view-id of published presence).
    pub fn endpoint(&self) -> &str {
        self.login.as_str()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sets the `timeout` of presence published from now on (the lease-expiry
    /// scenarios of the RVP pack).
    pub fn set_presence_timeout(&mut self, seconds: u64) {
        self.settings.presence_timeout = seconds;
    }

    /// Sets the lifetime asked for presence subscriptions made from now on.
    pub fn set_subscription_lifetime(&mut self, seconds: u64) {
        self.settings.subscription_lifetime = seconds;
    }

    /// How the session ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        self.id.status.ended()
    }

    /// Lets the server end the endpoint with one of these statuses (`"412"`) without that
    /// counting as an unasked end.
    pub fn allow_stream_errors(&self, conditions: &[String]) {
        self.id
            .status
            .allowed
            .lock()
            .expect("status lock")
            .extend(conditions.iter().cloned());
    }

    /// "bob (sut.test): home server unreachable: ... at 520 ms".
    pub fn describe_end(&self, ended: &Ended) -> String {
        format!(
            "{} ({}): {} at {} ms",
            self.id.actor, self.address.domain, ended.cause, ended.t_ms
        )
    }

    /// Describes a failed liveness round trip.
    pub fn describe_liveness(&self, failure: &Liveness) -> String {
        match failure {
            Liveness::Ended(ended) => self.describe_end(ended),
            Liveness::NoAnswer(bound) => format!(
                "{} ({}): no answer to a liveness PROPFIND within {}ms: the session has stalled",
                self.id.actor,
                self.address.domain,
                bound.as_millis()
            ),
            Liveness::CutShort => format!(
                "{} ({}): liveness round trip cut short by another actor's lost session",
                self.id.actor, self.address.domain
            ),
        }
    }

    fn ended_error(&self) -> Option<DriverError> {
        self.ended()
            .map(|ended| DriverError::Stream(self.describe_end(&ended)))
    }

    /// Sends a request on the session's connection: the answer, or a driver error when
    /// none came (an unreachable server ends the session).
    async fn send(&mut self, request: &Request) -> Result<Response, DriverError> {
        if let Some(error) = self.ended_error() {
            return Err(error);
        }
        let bound = self.settings.request_bound;
        match self.id.exchange(&mut self.client, request, bound).await {
            Ok(response) => Ok(response),
            Err(error) => Err(match error {
                TransportError::Timeout(bound) => {
                    DriverError::Timeout(bound, "an answer from the home server".into())
                }
                TransportError::Invalid(text) => DriverError::Invalid(text),
                _ => self
                    .ended_error()
                    .unwrap_or_else(|| DriverError::Stream(error.to_string())),
            }),
        }
    }

    /// Puts a received thing in the inbox after what arrived before it.
    fn deliver(&mut self, received: Received) {
        self.inbox.push(received);
    }

    /// Puts the answer to a request in the inbox, for `expect_http`: an error status as
    /// an [`Event::Error`] (PROFILE.md §5), anything else as [`Event::Other`]. Returns
    /// whether it was an error.
    fn error_answer(
        &mut self,
        response: &Response,
        from: Option<Address>,
        about: Option<StanzaKind>,
    ) -> bool {
        let error = mapping::is_error(response.status);
        self.deliver(answer_received(
            response,
            if error {
                mapping::error_event(from, about, response.status.as_u16())
            } else {
                Event::Other
            },
        ));
        error
    }

    /// Sends a message: a NOTIFY with `RVP-Ack-Type: DeepOr` and a `text/plain` payload
    /// (§5.6, §10.1). An error answer (412: no endpoint) becomes an [`Event::Error`].
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for what RVP cannot carry (`mapping::check_message`),
    /// [`DriverError::Stream`] when the session has ended or the server is unreachable.
    pub async fn send_message(&mut self, out: &OutMessage) -> Result<(), DriverError> {
        mapping::check_message(out)?;
        let to = out.to.bare();
        let target = url_of(&to)?;
        let session_id = self
            .conversations
            .entry(to.clone())
            .or_insert_with(mapping::guid)
            .clone();
        let body = Notification::Message(Message::new(
            Contact::new(&self.id.own, ""),
            vec![Contact::new(&target, "")],
            &mapping::message_payload(out, &session_id),
        ))
        .to_xml();
        let request = self
            .id
            .request(Method::Notify, &target)
            .with(AckType::DeepOr)
            .with(HopCount::new(1).expect("1 is a hop count"))
            .with_xml(body);
        let response = self.send(&request).await?;
        self.error_answer(&response, Some(to), Some(StanzaKind::Message));
        Ok(())
    }

    /// Publishes presence: a PROPPATCH of the leased `r:state` with the endpoint's
    /// view-id (§5.5.1, PROFILE.md §2). The 207 answer carries the state the home server
    /// now holds for the endpoint; it is received as the actor's own presence, RVP's form
    /// of the presence a server reflects to its user (PROFILE.md §2).
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for what RVP presence cannot say ([`state_of`]),
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn publish(&mut self, out: &OutPresence) -> Result<(), DriverError> {
        let value = state_of(out)?;
        let timeout = out.lease.map_or(self.settings.presence_timeout, seconds);
        let request = self.state_request(value, timeout);
        let response = self.send(&request).await?;
        let own = self.address.bare();
        if !self.error_answer(&response, Some(own.clone()), Some(StanzaKind::Presence)) {
            self.snapshot(&response, &own);
        }
        Ok(())
    }

    fn state_request(&self, value: Presence, timeout: u64) -> Request {
        let state = State {
            value: StateValue::Leased(LeasedValue {
                value,
                default_value: Presence::Offline,
                timeout,
            }),
            view_id: Some(self.login.to_string()),
        };
        self.id
            .request(Method::Proppatch, &self.id.own)
            .with_xml(PropertyUpdate::set(vec![Property::State(state)]).to_xml())
    }

    /// Acts on a presence subscription to `to` (§5.1, §5.2): subscribe (the 207 snapshot
    /// becomes a presence event from `to`) or unsubscribe.
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for approve, deny and cancel (RVP has no handshake),
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn subscription(
        &mut self,
        action: SubscriptionAction,
        to: &Address,
    ) -> Result<(), DriverError> {
        mapping::check_action(action)?;
        let contact = to.bare();
        let target = url_of(&contact)?;
        if action == SubscriptionAction::Unsubscribe {
            let Some(sub) = self.subscriptions.remove(&contact) else {
                self.id.note(format!(
                    "no subscription to {} to cancel: nothing sent",
                    render(&contact)
                ));
                return Ok(());
            };
            let request = self.id.request(Method::Unsubscribe, &target).with(sub);
            let response = self.send(&request).await?;
            self.error_answer(&response, Some(contact), Some(StanzaKind::Presence));
            return Ok(());
        }
        self.subscribe(&contact, None).await
    }

    /// Subscribes to `to`'s presence (§5.1, PROFILE.md §3) for `lifetime` (default:
    /// [`Settings::subscription_lifetime`]); the 207 snapshot becomes a presence event
    /// from `to`. With a subscription already kept, renews it instead (a fresh SUBSCRIBE
    /// if the server no longer knows it).
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn subscribe(
        &mut self,
        to: &Address,
        lifetime: Option<Duration>,
    ) -> Result<(), DriverError> {
        let contact = to.bare();
        let target = url_of(&contact)?;
        if self.subscriptions.contains_key(&contact) && self.renew(&contact, lifetime).await? {
            return Ok(());
        }
        let lifetime = lifetime.map_or(self.settings.subscription_lifetime, seconds);
        let request = self
            .id
            .request(Method::Subscribe, &target)
            .with(NotificationType::PropChange)
            .with(CallBack(self.id.own.clone()))
            .with(SubscriptionLifetime(lifetime));
        let response = self.send(&request).await?;
        if self.error_answer(&response, Some(contact.clone()), Some(StanzaKind::Presence)) {
            return Ok(());
        }
        match response.header::<SubscriptionId>() {
            Ok(Some(sub)) => {
                self.subscriptions.insert(contact.clone(), sub);
            }
            _ => self.id.note(format!(
                "the SUBSCRIBE to {target} was answered without a valid Subscription-Id"
            )),
        }
        self.snapshot(&response, &contact);
        Ok(())
    }

    /// The presence events of a 207 answering a SUBSCRIBE (§5.1.6).
    fn snapshot(&mut self, response: &Response, contact: &Address) {
        if response.body.is_empty() {
            return;
        }
        let multistatus = match MultiStatus::parse(&response.body) {
            Ok(multistatus) => multistatus,
            Err(error) => {
                self.id
                    .note(format!("unreadable SUBSCRIBE snapshot: {error}"));
                return;
            }
        };
        for node in &multistatus.responses {
            let from = mapping::address_of_text(&node.href).unwrap_or_else(|| contact.clone());
            let presence = node
                .propstats
                .iter()
                .filter(|propstat| propstat.status.code.is_success())
                .find_map(|propstat| mapping::state_in(&propstat.props));
            if let Some(presence) = presence {
                self.deliver(answer_received(
                    response,
                    presence_event(Some(from), presence),
                ));
            }
        }
    }

    /// The `renew` step: renews the lease on `to` (the actor's own address: the login
    /// subscription; anyone else: the presence subscription to them).
    ///
    /// # Errors
    /// As [`Session::renew`] and [`Session::renew_login`].
    pub async fn renew_lease(
        &mut self,
        to: &Address,
        lifetime: Option<Duration>,
    ) -> Result<(), DriverError> {
        if to.bare() == self.address.bare() {
            return self.renew_login(lifetime).await;
        }
        self.renew(to, lifetime).await.map(|_| ())
    }

    /// Renews the presence subscription to `contact` (§5.1.2) for `lifetime` (default:
    /// [`Settings::subscription_lifetime`]): `true` when the server renewed it; an error
    /// answer is an [`Event::Error`] (and a 412 forgets the id).
    ///
    /// # Errors
    /// [`DriverError::Refused`] without a subscription to `contact`,
    /// [`DriverError::Stream`] when the session has ended.
    pub async fn renew(
        &mut self,
        contact: &Address,
        lifetime: Option<Duration>,
    ) -> Result<bool, DriverError> {
        let contact = contact.bare();
        let lifetime = lifetime.map_or(self.settings.subscription_lifetime, seconds);
        let sub = self.subscriptions.get(&contact).cloned().ok_or_else(|| {
            DriverError::Refused(format!("no subscription to {} to renew", render(&contact)))
        })?;
        let request = self
            .id
            .request(Method::Subscribe, &url_of(&contact)?)
            .with(sub)
            .with(SubscriptionLifetime(lifetime));
        let response = self.send(&request).await?;
        if response.status == StatusCode::PRECONDITION_FAILED {
            self.subscriptions.remove(&contact);
        }
        Ok(!self.error_answer(&response, Some(contact), Some(StanzaKind::Presence)))
    }

    /// Renews the login subscription now (§5.1.2) for `lifetime` (default:
    /// [`Settings::login_lifetime`]); a 412 or 404 ends the session.
    ///
    /// # Errors
    /// [`DriverError::Stream`] when the session has ended (or ends by this answer).
    pub async fn renew_login(&mut self, lifetime: Option<Duration>) -> Result<(), DriverError> {
        let lifetime = lifetime.map_or(self.settings.login_lifetime, seconds);
        let request = self
            .id
            .request(Method::Subscribe, &self.id.own)
            .with(self.login.clone())
            .with(SubscriptionLifetime(lifetime));
        let response = self.send(&request).await?;
        if endpoint_gone(response.status) {
            self.id.lose(EndCause::Http {
                status: Some(response.status.as_u16()),
                reason: "the home server refused to renew the login subscription: the \
                         endpoint is gone"
                    .into(),
            });
            return Err(self
                .ended_error()
                .unwrap_or_else(|| DriverError::Stream("endpoint gone".into())));
        }
        self.error_answer(&response, Some(self.address.bare()), None);
        Ok(())
    }

    fn no_roster(&self) -> DriverError {
        DriverError::Unsupported(
            "RVP has no roster: the contact list is the client's own; the server keeps \
             subscriptions and ACLs only (§5.1, §5.3, §5.7)"
                .into(),
        )
    }

    /// RVP has no roster.
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

    /// RVP has no roster.
    ///
    /// # Errors
    /// Always [`DriverError::Unsupported`].
    pub async fn roster_remove(&mut self, _contact: &Address) -> Result<(), DriverError> {
        Err(self.no_roster())
    }

    /// RVP has no roster, hence no subscription record.
    ///
    /// # Errors
    /// Always [`DriverError::Unsupported`].
    pub async fn subscription_record(
        &mut self,
        _contact: &Address,
    ) -> Result<Option<SubscriptionRecord>, DriverError> {
        Err(self.no_roster())
    }

    /// RVP has no roster: fails at once (the runner declares the gap before running).
    ///
    /// # Errors
    /// Always a [`WaitError`], noted in the transcript.
    pub async fn next_record_change(
        &mut self,
        _contact: &Address,
        _bound: Duration,
    ) -> Result<Option<SubscriptionRecord>, WaitError> {
        self.id.note(self.no_roster().to_string());
        Err(WaitError {
            arrived: self.unmatched(),
            ended: self.ended(),
            cut_short: false,
        })
    }

    /// Sends an HTTP request written as text (request line, headers, blank line, body) on
    /// a new connection, adding `Authorization` and `Content-Length` when missing; the
    /// answer becomes an event (an error status: [`Event::Error`] without `about`; else
    /// [`Event::Other`]) whose text is the response.
    ///
    /// # Errors
    /// [`DriverError::Invalid`] for text without a request line, [`DriverError::Stream`]
    /// when the session has ended or the server is unreachable, [`DriverError::Timeout`].
    pub async fn send_raw(&mut self, text: &str) -> Result<(), DriverError> {
        if let Some(error) = self.ended_error() {
            return Err(error);
        }
        let (bytes, target) = self.complete_raw(text)?;
        self.id.transcript.record(
            &self.id.actor,
            Flow::Sent,
            String::from_utf8_lossy(&bytes).into_owned(),
        );
        let bound = self.settings.request_bound;
        match self.client.send_raw(&bytes, bound).await {
            Ok(response) => {
                let text = mapping::response_text(&response);
                self.id
                    .transcript
                    .record(&self.id.actor, Flow::Received, text.clone());
                let event = if mapping::is_error(response.status) {
                    mapping::error_event(
                        mapping::address_of_text(&target),
                        None,
                        response.status.as_u16(),
                    )
                } else {
                    Event::Other
                };
                self.deliver(Received {
                    event,
                    wire: Wire::Rvp(mapping::response_form(&response)),
                    text,
                });
                Ok(())
            }
            Err(TransportError::Timeout(bound)) => Err(DriverError::Timeout(
                bound,
                "an answer to the raw request".into(),
            )),
            Err(TransportError::Invalid(error)) => Err(DriverError::Invalid(error)),
            Err(error) => {
                self.id.lose(EndCause::Http {
                    status: None,
                    reason: format!("home server unreachable: {error}"),
                });
                Err(self
                    .ended_error()
                    .unwrap_or_else(|| DriverError::Stream(error.to_string())))
            }
        }
    }

    /// The raw request's bytes with CRLF line ends, `Authorization` and `Content-Length`
    /// added when missing; and its request target.
    fn complete_raw(&self, text: &str) -> Result<(Vec<u8>, String), DriverError> {
        let (head, body) = match (text.find("\r\n\r\n"), text.find("\n\n")) {
            (Some(crlf), Some(lf)) if lf < crlf => (&text[..lf], &text[lf + 2..]),
            (Some(crlf), _) => (&text[..crlf], &text[crlf + 4..]),
            (None, Some(lf)) => (&text[..lf], &text[lf + 2..]),
            (None, None) => (text.trim_end_matches(['\r', '\n']), ""),
        };
        let mut lines: Vec<String> = head
            .split('\n')
            .map(|line| line.trim_end_matches('\r').to_string())
            .collect();
        let mut words = lines[0].split_whitespace();
        let (Some(method), Some(target)) = (words.next(), words.next()) else {
            return Err(DriverError::Invalid(format!(
                "raw RVP text has no request line: {:?}",
                lines[0]
            )));
        };
        let (method, target) = (method.to_string(), target.to_string());
        let has = |name: &str| {
            lines[1..].iter().any(|line| {
                line.split_once(':')
                    .is_some_and(|(field, _)| field.trim().eq_ignore_ascii_case(name))
            })
        };
        let (has_auth, has_length) = (
            has("authorization"),
            has("content-length") || has("transfer-encoding"),
        );
        if !has_auth && let Some(value) = self.client.authorization(&method, &target) {
            lines.push(format!("Authorization: {value}"));
        }
        if !has_length {
            lines.push(format!("Content-Length: {}", body.len()));
        }
        let mut bytes = lines.join("\r\n").into_bytes();
        bytes.extend_from_slice(b"\r\n\r\n");
        bytes.extend_from_slice(body.as_bytes());
        Ok((bytes, target))
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
            .wait_where(bound, &self.id.status, &self.id.transcript, predicate)
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
        self.inbox
            .watch(matcher, duration, &self.id.status, &self.id.transcript)
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

    /// Starts a liveness round trip: a PROPFIND of the actor's own node, `Depth: 0`,
    /// naming `r:state` (PROFILE.md §2), on a connection of its own. Finish it with
    /// [`Session::pong`].
    ///
    /// # Errors
    /// [`Liveness::Ended`] when the session has ended.
    pub async fn ping(&mut self) -> Result<String, Liveness> {
        if let Some(ended) = self.ended() {
            return Err(Liveness::Ended(ended));
        }
        let request = self
            .id
            .request(Method::Propfind, &self.id.own)
            .with(Depth::Zero)
            .with_xml(PropFind::Prop(vec![PropName::State]).to_xml());
        self.next_ping += 1;
        let ping = format!("propfind-{}", self.next_ping);
        let id = self.id.clone();
        let mut client = self.client.fork();
        // The pong's bound cuts the wait short; this one only ends a forgotten request.
        let bound = self.settings.request_bound.max(Duration::from_secs(60));
        let task = tokio::spawn(async move { id.exchange(&mut client, &request, bound).await });
        self.pings.insert(ping.clone(), task);
        Ok(ping)
    }

    /// Waits up to `bound` for the answer to the liveness request `ping`: when it comes,
    /// the server has processed everything sent before it. A 412 or 404 says the endpoint
    /// is gone, which ends the session.
    ///
    /// # Errors
    /// [`Liveness`].
    pub async fn pong(&mut self, ping: &str, bound: Duration) -> Result<(), Liveness> {
        let Some(mut task) = self.pings.remove(ping) else {
            return Err(Liveness::NoAnswer(Duration::ZERO));
        };
        let mut lost = self.id.transcript.lost_streams();
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
            Ok(Ok(Ok(response))) if endpoint_gone(response.status) => {
                self.id.lose(EndCause::Http {
                    status: Some(response.status.as_u16()),
                    reason: "the home server answered the liveness PROPFIND: the endpoint is \
                             gone"
                        .into(),
                });
                Err(self
                    .ended()
                    .map_or(Liveness::NoAnswer(bound), Liveness::Ended))
            }
            Ok(Ok(Ok(_))) => Ok(()),
            Ok(Ok(Err(error))) if error.unreachable() => Err(self
                .ended()
                .map_or(Liveness::NoAnswer(bound), Liveness::Ended)),
            Ok(Ok(Err(_)) | Err(_)) => Err(Liveness::NoAnswer(bound)),
            Err(_) => {
                task.abort();
                Err(Liveness::NoAnswer(bound))
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

    /// Signs off: presence `r:offline` (PROPPATCH), then the UNSUBSCRIBE of the login
    /// subscription, then stops (PROFILE.md §2).
    pub async fn logout(self) {
        self.finish(true).await;
    }

    /// Ends the endpoint (UNSUBSCRIBE of the login subscription) and stops.
    pub async fn close(self) {
        self.finish(false).await;
    }

    async fn finish(mut self, sign_off: bool) {
        let open = self.ended().is_none();
        self.id.status.end(&self.id.transcript, EndCause::ByHarness);
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        if open {
            self.id.note(if sign_off {
                "signing off".into()
            } else {
                "ending the endpoint".into()
            });
            let bound = self.settings.request_bound;
            if sign_off {
                let request = self.state_request(Presence::Offline, self.settings.presence_timeout);
                let _ = self.id.exchange(&mut self.client, &request, bound).await;
            }
            let request = self
                .id
                .request(Method::Unsubscribe, &self.id.own)
                .with(self.login.clone());
            let _ = self.id.exchange(&mut self.client, &request, bound).await;
        }
        self.client.disconnect();
        if let Some(callback) = self.callback.take() {
            callback.stop().await;
        }
    }

    /// Stops the callback listener and drops the connections without signing off (a
    /// crash): the server learns of it only when the leases run out.
    pub fn abort(mut self) {
        self.id.status.end(&self.id.transcript, EndCause::ByHarness);
        self.id
            .note("dropping the connections without signing off".into());
        self.client.disconnect();
        drop(self.callback.take());
    }
}

#[cfg(test)]
mod tests;
