//! The SIP/SIMPLE front-end (RFC 3261 with RFC 3428, 3856, 3863, 3903 and 6665; imfed's
//! `protocols/sip/PROFILE.md`): a registrar, a transaction-stateful proxy and a presence
//! agent for the hosted domains, around the sans-I/O `imfed-sip` crate and the neutral
//! account store.
//!
//! - [`transport`]: UDP and TCP on one port, connections, the wire tap;
//! - [`proxy`]: what happens to each request (§16: route processing, forwarding to another
//!   domain's server or to a user's contacts, Max-Forwards, loops, Record-Route), and the
//!   Digest checks (§22);
//! - [`registrar`]: REGISTER (§10.3);
//! - [`presence`]: PUBLISH (RFC 3903) and SUBSCRIBE/NOTIFY for `presence` (RFC 6665,
//!   RFC 3856), with the PIDF documents (RFC 3863) composed per presentity.
//!
//! This module holds the state (bindings, publications, watcher subscriptions and their
//! leases; the server and client transactions in flight) and the dispatch of what arrives.

pub mod presence;
pub mod proxy;
pub mod registrar;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use imfed_sip::dialog::Dialog;
use imfed_sip::pidf;
use imfed_sip::transaction::{ClientEvent, ClientTransaction, Timers, TransactionKey};
use imfed_sip::{Message, Method, Request, Response, Uri};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, warn};

use crate::config::Config;
use crate::core::Address;
use crate::core::lease::Leases;
use crate::faults::{Involved, Switch};
use crate::state::{Shared, State};
use transport::{Dest, Incoming, Net, Reply, Transport};

/// How long a server transaction's last response is kept for retransmitted requests
/// (Timer J, 64·T1, §17.2.2).
const SERVER_TXN_KEPT: Duration = Duration::from_secs(32);

/// A static route to another domain's SIP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Its address (an IP literal and port: routes never need DNS).
    pub addr: SocketAddr,
    /// The transport to reach it with.
    pub transport: Transport,
}

impl Route {
    /// Parses `HOST:PORT[;transport=udp|tcp]`.
    ///
    /// # Errors
    /// What is wrong with `text`.
    pub fn parse(text: &str) -> Result<Route, String> {
        let (addr, params) = text.split_once(';').unwrap_or((text, ""));
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not IP:PORT[;transport=udp|tcp]"))?;
        let mut transport = Transport::Udp;
        for param in params.split(';').filter(|p| !p.trim().is_empty()) {
            match param.split_once('=') {
                Some((name, value)) if name.trim().eq_ignore_ascii_case("transport") => {
                    transport = Transport::named(Some(value.trim()))?;
                }
                _ => return Err(format!("{text:?}: unknown route parameter {param:?}")),
            }
        }
        Ok(Route { addr, transport })
    }

    /// Where requests for the route's domain go.
    pub fn dest(self) -> Dest {
        Dest {
            addr: self.addr,
            transport: self.transport,
        }
    }
}

/// A registered contact of an address-of-record (§10).
#[derive(Clone, Debug)]
pub struct Binding {
    /// The Contact URI as registered.
    pub contact: Uri,
    /// Where requests for it go.
    pub dest: Dest,
    /// The REGISTER's Call-ID and CSeq (§10.3 step 7).
    pub call_id: String,
    /// The REGISTER's sequence number.
    pub cseq: u32,
    /// Seconds granted.
    pub expires: u32,
    /// Its number, for its lease.
    pub id: u64,
}

/// A publication of presence state (RFC 3903).
#[derive(Clone, Debug)]
pub struct Publication {
    /// Whose.
    pub aor: Address,
    /// The document.
    pub doc: pidf::Presence,
    /// Order of the last change, newest highest.
    pub order: u64,
}

/// A watcher's subscription to a local presentity (RFC 6665 §4.2, RFC 3856).
#[derive(Debug)]
pub struct Watch {
    /// The presentity.
    pub presentity: Address,
    /// The watcher's AOR, as its `From` gave it.
    pub watcher: Uri,
    /// The notifier's side of the dialog.
    pub dialog: Dialog,
    /// Where the dialog's requests go, and whether that is another domain's server.
    pub dest: Dest,
    /// Whether NOTIFYs cross to another domain's server.
    pub peer: bool,
    /// Seconds granted by the last (re)subscription.
    pub expires: u32,
    /// The queue of its NOTIFYs, sent one at a time in order.
    pub queue: mpsc::UnboundedSender<presence::NotifyJob>,
}

/// What a lease belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseKey {
    /// A binding: its AOR and number.
    Binding(Address, u64),
    /// A publication, by entity-tag.
    Publication(String),
    /// A watcher subscription, by the notifier's dialog tag.
    Watch(String),
}

/// The SIP front-end's mutable state.
#[derive(Debug, Default)]
pub struct Inner {
    /// Registered contacts by AOR.
    pub bindings: HashMap<Address, Vec<Binding>>,
    /// Publications by entity-tag.
    pub publications: HashMap<String, Publication>,
    /// Watcher subscriptions by the notifier's dialog tag.
    pub watches: HashMap<String, Watch>,
    /// Every running lease.
    pub leases: Leases<LeaseKey, tokio::time::Instant>,
    next: u64,
}

impl Inner {
    /// A fresh number.
    pub fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

/// A server transaction's record: its last response, for retransmitted requests.
#[derive(Debug)]
struct ServerEntry {
    last: Option<Vec<u8>>,
    reply: Reply,
    peer: bool,
    created: Instant,
}

/// A client transaction waiting for its responses.
#[derive(Debug)]
struct ClientEntry {
    responses: mpsc::Sender<Response>,
    peer: bool,
}

/// The SIP front-end's state.
#[derive(Debug)]
pub struct SipState {
    /// Bindings, publications and subscriptions. Never held across an await.
    pub inner: Mutex<Inner>,
    /// Woken when a lease may have moved earlier.
    pub wake: Notify,
    /// The Digest nonce, valid for the server's lifetime (PROFILE.md §2).
    pub nonce: String,
    /// The shared UDP and TCP address.
    pub local: SocketAddr,
    routes: RwLock<BTreeMap<String, Route>>,
    net: OnceLock<Arc<Net>>,
    servers: Mutex<HashMap<TransactionKey, ServerEntry>>,
    clients: Mutex<HashMap<TransactionKey, ClientEntry>>,
}

impl SipState {
    /// The state for `config`, listening on `local`. Routes that do not parse were refused
    /// by [`Config::validate`]'s check of `host:port`; one that still does not parse here is
    /// left out with a warning.
    pub fn new(config: &Config, local: SocketAddr) -> Self {
        let routes = config
            .sip_remotes
            .iter()
            .filter_map(|(domain, text)| match Route::parse(text) {
                Ok(route) => Some((domain.clone(), route)),
                Err(why) => {
                    warn!(%domain, %why, "sip route ignored");
                    None
                }
            })
            .collect();
        SipState {
            inner: Mutex::default(),
            wake: Notify::new(),
            nonce: crate::xmpp::random_id(32),
            local,
            routes: RwLock::new(routes),
            net: OnceLock::new(),
            servers: Mutex::default(),
            clients: Mutex::default(),
        }
    }

    /// The state, locked.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("sip lock poisoned")
    }

    /// The sending side, once serving.
    pub fn net(&self) -> Option<Arc<Net>> {
        self.net.get().cloned()
    }

    /// Sets the route to `domain`'s server.
    pub fn set_route(&self, domain: &str, route: Route) {
        self.routes
            .write()
            .expect("routes lock")
            .insert(domain.to_string(), route);
    }

    /// The static route to `domain`, if any.
    pub fn route(&self, domain: &str) -> Option<Route> {
        self.routes
            .read()
            .expect("routes lock")
            .get(domain)
            .copied()
    }

    /// Whether `addr` is where a route points (another domain's server).
    pub fn is_route_address(&self, addr: SocketAddr) -> bool {
        self.routes
            .read()
            .expect("routes lock")
            .values()
            .any(|route| route.addr == addr)
    }

    /// Forgets every binding, publication and subscription (the control API's reset).
    pub fn reset(&self) {
        *self.lock() = Inner::default();
        self.wake.notify_one();
    }

    /// Whether a response answers a request this server sent to another domain's server.
    fn answers_peer_request(&self, response: &Response) -> bool {
        TransactionKey::of_response(response)
            .ok()
            .and_then(|key| {
                self.clients
                    .lock()
                    .expect("clients lock")
                    .get(&key)
                    .map(|entry| entry.peer)
            })
            .unwrap_or(false)
    }
}

impl Shared {
    /// Whether `message`, arriving from `source`, comes from another domain's server: a
    /// request whose `From` is not in a hosted domain, a response to a request sent to one,
    /// or anything from a route's address (PROFILE.md §5).
    pub fn sip_from_peer(&self, message: &Message, source: SocketAddr) -> bool {
        if self.sip.is_route_address(source) {
            return true;
        }
        match message {
            Message::Request(request) => request
                .from()
                .is_ok_and(|from| !self.sip_hosts(&from.uri.host)),
            Message::Response(response) => self.sip.answers_peer_request(response),
        }
    }

    /// Whether the SIP `switch` is on for what involves `accounts` and `peer`.
    pub fn sip_fault(&self, switch: Switch, accounts: &[Address], peer: Option<&str>) -> bool {
        !self.faults.is_empty() && self.faults.on(switch, Involved { accounts, peer })
    }

    /// The accounts a request involves, for scoping faults: its `From` and `To`.
    pub fn sip_involved(request: &Request) -> Vec<Address> {
        [request.from().ok(), request.to().ok()]
            .into_iter()
            .flatten()
            .filter_map(|addr| {
                let user = addr.uri.user.clone()?;
                Some(Address::new(user, addr.uri.host.to_ascii_lowercase()))
            })
            .collect()
    }

    /// Grants a lease of `secs` to `key`.
    pub fn sip_lease(&self, inner: &mut Inner, key: LeaseKey, secs: u32) {
        inner.leases.set(
            key,
            tokio::time::Instant::now() + Duration::from_secs(u64::from(secs)),
        );
        self.sip.wake.notify_one();
    }

    /// This server's `Via` sent-by and Record-Route host.
    pub fn sip_local(&self) -> SocketAddr {
        self.sip.local
    }

    /// Whether `domain` (any case) is hosted here.
    pub fn sip_hosts(&self, domain: &str) -> bool {
        let domain = domain.to_ascii_lowercase();
        self.hosts(&domain)
    }
}

/// Starts serving on `sockets`, with the lease clock.
pub fn start(state: &State, sockets: transport::Sockets) {
    let net = transport::serve(state, sockets);
    if state.sip.net.set(net).is_err() {
        warn!("sip front-end started twice");
    }
    state.tasks.spawn(run(state.clone()));
}

/// Dispatches what arrived: responses to their client transactions, requests to a task of
/// their own (after absorbing retransmissions).
pub fn dispatch(state: &State, incoming: Incoming, peer: bool) {
    let Incoming {
        message,
        source,
        transport,
        reply,
    } = incoming;
    match message {
        Message::Response(response) => {
            let Ok(key) = TransactionKey::of_response(&response) else {
                debug!(
                    status = response.status,
                    "response without a usable Via dropped"
                );
                return;
            };
            let sender = state
                .sip
                .clients
                .lock()
                .expect("clients lock")
                .get(&key)
                .map(|entry| entry.responses.clone());
            match sender {
                Some(sender) => {
                    if sender.try_send(response).is_err() {
                        debug!("client transaction gone: response dropped");
                    }
                }
                None => debug!(status = response.status, "stray response dropped (§16.7)"),
            }
        }
        Message::Request(request) => {
            let key = TransactionKey::of_request(&request).ok();
            if let Some(key) = &key {
                let mut servers = state.sip.servers.lock().expect("servers lock");
                let now = Instant::now();
                servers.retain(|_, entry| now.duration_since(entry.created) < SERVER_TXN_KEPT);
                if let Some(entry) = servers.get(key) {
                    // A retransmission (§17.2.2): the last response again, if there is one.
                    if let Some(last) = entry.last.clone() {
                        let (reply, peer) = (entry.reply.clone(), entry.peer);
                        drop(servers);
                        let state = state.clone();
                        state.clone().tasks.spawn(async move {
                            if let Some(net) = state.sip.net() {
                                let _ = net.reply_bytes(&state, &reply, last, peer).await;
                            }
                        });
                    }
                    return;
                }
                if request.method != Method::Ack {
                    servers.insert(
                        key.clone(),
                        ServerEntry {
                            last: None,
                            reply: reply.clone(),
                            peer,
                            created: now,
                        },
                    );
                }
            }
            let context = Context {
                key,
                reply,
                source,
                transport,
                peer,
            };
            let task_state = state.clone();
            state
                .tasks
                .spawn(async move { proxy::handle(&task_state, request, context).await });
        }
    }
}

/// Where a request came from and how to answer it.
#[derive(Clone, Debug)]
pub struct Context {
    /// Its server transaction, when its Via had a usable branch.
    pub key: Option<TransactionKey>,
    /// How to answer.
    pub reply: Reply,
    /// The source address.
    pub source: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
    /// Whether it came from another domain's server.
    pub peer: bool,
}

/// Answers a request on its server transaction (kept for retransmissions).
pub async fn respond(state: &State, context: &Context, response: Response) {
    let bytes = response.to_bytes();
    if let Some(key) = &context.key
        && let Some(entry) = state.sip.servers.lock().expect("servers lock").get_mut(key)
    {
        entry.last = Some(bytes.clone());
    }
    if let Some(net) = state.sip.net()
        && let Err(error) = net
            .reply_bytes(state, &context.reply, bytes, context.peer)
            .await
    {
        debug!(%error, status = response.status, "response not sent");
    }
}

/// Answers bytes that are not a message (§16.3 step 1, §18.3; PROFILE.md §9): a 400 (or
/// 513 for the size limits) whose reason names the problem, with whatever headers could be
/// read, to the source. Responses that do not parse are dropped.
pub fn refuse_unparsed(
    state: &State,
    bytes: &[u8],
    error: &imfed_sip::ParseError,
    reply: Reply,
    peer: bool,
) {
    if bytes.starts_with(b"SIP/") {
        debug!(%error, "unparseable response dropped");
        return;
    }
    let (status, reason) = error.status();
    let mut response = Response::new(status, &reason);
    let salvaged = imfed_sip::codec::salvage(bytes);
    if let Some(headers) = &salvaged {
        let involved: Vec<Address> = [headers.from().ok(), headers.to().ok()]
            .into_iter()
            .flatten()
            .filter_map(|addr| {
                let user = addr.uri.user.clone()?;
                Some(Address::new(user, addr.uri.host.to_ascii_lowercase()))
            })
            .collect();
        if state.sip_fault(Switch::SipDropUnparseable, &involved, None) {
            debug!(%error, "unparseable request dropped (fault)");
            return;
        }
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for value in headers.get_all(name) {
                response.headers.push(name, value.to_string());
            }
        }
    }
    debug!(%error, status, "unparseable request refused");
    let state = state.clone();
    state.clone().tasks.spawn(async move {
        if let Some(net) = state.sip.net() {
            let _ = net.reply(&state, &reply, &response, peer).await;
        }
    });
}

/// How a client transaction ended.
#[derive(Debug)]
pub enum Outcome {
    /// Its final response.
    Final(Response),
    /// No final response within Timer F (§17.1.2.2).
    Timeout,
    /// It could not be sent (§8.1.3.1: treated as a 503).
    Transport(std::io::Error),
}

/// Runs a non-INVITE client transaction for `request` (whose top Via is this server's) to
/// `dest` until its final response, Timer F or a transport error. Towards another domain's
/// server (`peer`) the wait is also bounded by `s2s_timeout_ms`, as every other link setup
/// of this server is: a peer that accepts and never answers is a 408 in that time, not only
/// after Timer F's 32 s.
pub async fn request(state: &State, request: Request, dest: Dest, peer: bool) -> Outcome {
    if !peer {
        return transact(state, request, dest, peer).await;
    }
    let bound = Duration::from_millis(state.config.s2s_timeout_ms);
    tokio::time::timeout(bound, transact(state, request, dest, peer))
        .await
        .unwrap_or(Outcome::Timeout)
}

async fn transact(state: &State, request: Request, dest: Dest, peer: bool) -> Outcome {
    let Some(net) = state.sip.net() else {
        return Outcome::Transport(std::io::Error::other("sip transport not started"));
    };
    let reliable = dest.transport == Transport::Tcp;
    let mut txn = ClientTransaction::new(request, reliable, Timers::default(), Instant::now());
    let key = txn.key().clone();
    let (tx, mut rx) = mpsc::channel(16);
    state.sip.clients.lock().expect("clients lock").insert(
        key.clone(),
        ClientEntry {
            responses: tx,
            peer,
        },
    );
    // Removes the entry however this ends, a timeout above included.
    let _entry = ClientGuard {
        state: state.clone(),
        key: key.clone(),
    };
    loop {
        let mut failed = None;
        while let Some(bytes) = txn.poll_transmit(Instant::now()) {
            if let Err(error) = net.send(state, dest, bytes, peer).await {
                failed = Some(error);
                break;
            }
        }
        if let Some(error) = failed {
            break Outcome::Transport(error);
        }
        let deadline = txn.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = rx.recv() => match received {
                Some(response) => {
                    if let Some(ClientEvent::Final(response)) = txn.handle_response(response, Instant::now()) {
                        break Outcome::Final(response);
                    }
                }
                None => break Outcome::Timeout,
            },
            () = sleep => {
                if let Some(ClientEvent::Timeout) = txn.handle_timeout(Instant::now()) {
                    break Outcome::Timeout;
                }
            }
            () = state.shutdown.cancelled() => break Outcome::Timeout,
        }
    }
}

/// Forgets a client transaction's entry when its task ends or is cancelled.
struct ClientGuard {
    state: State,
    key: TransactionKey,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.state
            .sip
            .clients
            .lock()
            .expect("clients lock")
            .remove(&self.key);
    }
}

/// The lease clock: bindings, publications and subscriptions end when their time is up.
async fn run(state: State) {
    loop {
        let next = state.sip.lock().leases.next_deadline();
        let sleep = async {
            match next {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = state.sip.wake.notified() => continue,
            () = state.shutdown.cancelled() => break,
        }
        expire(&state, tokio::time::Instant::now());
    }
}

/// Ends what expired by `now` (RFC 3261 §10.2.1.1, RFC 3903 §6 step 8, RFC 6665 §4.2.2).
pub fn expire(state: &State, now: tokio::time::Instant) {
    let expired = state.sip.lock().leases.expire(now);
    for key in expired {
        match key {
            LeaseKey::Binding(aor, id) => registrar::lapse(state, &aor, id),
            LeaseKey::Publication(etag) => presence::lapse_publication(state, &etag),
            LeaseKey::Watch(tag) => presence::lapse_watch(state, &tag),
        }
    }
}
