//! Server-to-server streams (RFC 6120 §4, §5, §10.4; XEP-0220 server dialback).
//!
//! One outbound link per (local domain, remote domain), reused, with stanzas queued while it
//! is set up. Dialback in its three roles: originating (our outbound link sends
//! `<db:result/>`), receiving (an inbound stream's `<db:result/>` is checked with a
//! `<db:verify/>` on a fresh connection to the sender's domain) and authoritative (we answer
//! `<db:verify/>` with keys of XEP-0185). A link that cannot be set up bounces what it holds
//! with `remote-server-not-found` or `remote-server-timeout` (RFC 6120 §10.4.3).

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imfed_xmpp::dialback::{self, Dialback, DialbackResult};
use imfed_xmpp::external;
use imfed_xmpp::stanza::{MessageType, StanzaKind};
use imfed_xmpp::{
    Element, StanzaErrorCondition, StreamErrorCondition, StreamEvent, StreamHeader, ns,
};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use super::conn::{Conn, ConnError};
use super::outbox::{self, Pending};
use super::{NEGOTIATION_STEP, QUEUE, Shared, State, random_id};
use crate::config::TlsMode;
use crate::faults::Switch;
use crate::fedlog::{FedDirection, FedKind};
use crate::tap::TapDirection;

/// How long a reordered message is held waiting for the next one (misbehaviour only).
const REORDER_HOLD: Duration = Duration::from_millis(300);

/// Where a link stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Resolving and connecting.
    Connecting,
    /// Stream negotiation (features, STARTTLS).
    Negotiating,
    /// Dialback under way.
    Authenticating,
    /// Stanzas flow.
    Established,
    /// Ended.
    Closed,
}

/// Which side opened the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// We opened it: we send stanzas on it.
    Outbound,
    /// The peer opened it: we receive stanzas on it.
    Inbound,
}

/// A federation link as the control API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct LinkInfo {
    /// Unique per server run.
    pub id: u64,
    /// Which side opened it.
    pub direction: LinkDirection,
    /// Our domain.
    pub local: String,
    /// The peer's domain.
    pub remote: String,
    /// Where it stands.
    pub state: LinkState,
    /// Whether TLS is in use.
    pub tls: bool,
    /// The peer's socket address, once connected.
    pub peer: Option<String>,
    /// When it was opened, in milliseconds since the Unix epoch.
    pub opened_ms: u64,
    /// When it became established.
    pub established_ms: Option<u64>,
    /// Stanzas sent on it.
    pub stanzas_out: u64,
    /// Stanzas received on it.
    pub stanzas_in: u64,
    /// Why it ended, if it failed.
    pub error: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type SharedInfo = Arc<Mutex<LinkInfo>>;

#[derive(Debug)]
struct Outbound {
    tx: mpsc::Sender<Element>,
    info: SharedInfo,
}

/// The registry of federation links.
#[derive(Debug, Default)]
pub struct Links {
    outbound: Mutex<HashMap<(String, String), Outbound>>,
    inbound: Mutex<HashMap<u64, SharedInfo>>,
    /// Links that ended, most recent last (bounded), so failures stay visible.
    closed: Mutex<Vec<LinkInfo>>,
    /// Inbound connections open now, by the peer's IP address.
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// (local, remote) pairs whose outbound link failed, kept only under
    /// [`Switch::NeverRetryFailedDomains`].
    given_up: Mutex<BTreeSet<(String, String)>>,
    /// Whether the server plays a dead host on federation (see [`Links::set_silent`]).
    silent: tokio::sync::watch::Sender<bool>,
    /// Cancelled to cut every link open now; replaced by a fresh one each time.
    cut: Mutex<tokio_util::sync::CancellationToken>,
    /// Server-to-server connections being served now (not those held silent).
    live: tokio::sync::watch::Sender<usize>,
    next_id: AtomicU64,
}

/// One served server-to-server connection, for [`Links::set_silent`] to wait on.
#[derive(Debug)]
struct LiveGuard(tokio::sync::watch::Sender<usize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.send_modify(|live| *live -= 1);
    }
}

/// How long a cut connection waits for its peer to close its side.
const HANG_UP_BOUND: Duration = Duration::from_secs(5);

/// How many ended links the registry remembers.
const CLOSED_KEPT: usize = 256;

impl Links {
    fn new_info(&self, direction: LinkDirection, local: &str, remote: &str) -> SharedInfo {
        Arc::new(Mutex::new(LinkInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            direction,
            local: local.to_string(),
            remote: remote.to_string(),
            state: LinkState::Connecting,
            tls: false,
            peer: None,
            opened_ms: now_ms(),
            established_ms: None,
            stanzas_out: 0,
            stanzas_in: 0,
            error: None,
        }))
    }

    /// Every link, open ones first.
    pub fn list(&self) -> Vec<LinkInfo> {
        let mut links: Vec<LinkInfo> = self
            .outbound
            .lock()
            .expect("links lock")
            .values()
            .map(|link| link.info.lock().expect("link info").clone())
            .collect();
        links.extend(
            self.inbound
                .lock()
                .expect("links lock")
                .values()
                .map(|info| info.lock().expect("link info").clone()),
        );
        links.sort_by_key(|link| link.id);
        links.extend(
            self.closed
                .lock()
                .expect("links lock")
                .iter()
                .rev()
                .cloned(),
        );
        links
    }

    fn retire(&self, info: &SharedInfo, error: Option<String>) {
        let mut info = info.lock().expect("link info");
        info.state = LinkState::Closed;
        if info.error.is_none() {
            info.error = error;
        }
        let mut closed = self.closed.lock().expect("links lock");
        closed.push(info.clone());
        if closed.len() > CLOSED_KEPT {
            closed.remove(0);
        }
    }

    /// Plays a dead host on federation (for checking how a peer copes: RFC 6120 §10.4.3,
    /// XEP-0220's link recovery) or stops: `true` cuts every server-to-server connection
    /// open now (closed with no stream end) and holds new inbound ones open without a
    /// word, as a host that went away behind a live address does; `false` ends that, and
    /// connections held meanwhile are dropped. Going silent returns once every cut
    /// connection's peer has closed its side (so the peer knows its links are gone), or
    /// after `bound`; the time it took.
    pub async fn set_silent(&self, silent: bool, bound: Duration) -> Duration {
        self.silent.send_replace(silent);
        let started = std::time::Instant::now();
        if silent {
            {
                let mut cut = self.cut.lock().expect("links lock");
                cut.cancel();
                *cut = tokio_util::sync::CancellationToken::new();
            }
            let mut live = self.live.subscribe();
            let _ = tokio::time::timeout(bound, live.wait_for(|live| *live == 0)).await;
        }
        started.elapsed()
    }

    /// Counts a connection as served until the guard drops.
    fn live_guard(&self) -> LiveGuard {
        self.live.send_modify(|live| *live += 1);
        LiveGuard(self.live.clone())
    }

    fn is_silent(&self) -> bool {
        *self.silent.borrow()
    }

    /// Resolves once the server stops playing a dead host.
    async fn spoken_again(&self) {
        let mut silent = self.silent.subscribe();
        let _ = silent.wait_for(|silent| !silent).await;
    }

    /// Whether [`Switch::NeverRetryFailedDomains`] gave `remote` up for good.
    fn given_up(&self, local: &str, remote: &str) -> bool {
        self.given_up
            .lock()
            .expect("links lock")
            .contains(&(local.to_string(), remote.to_string()))
    }

    /// Cancelled when the links open now are cut.
    fn cut_token(&self) -> tokio_util::sync::CancellationToken {
        self.cut.lock().expect("links lock").clone()
    }

    /// Forgets ended links.
    pub fn clear_closed(&self) {
        self.closed.lock().expect("links lock").clear();
    }

    /// Queues a stanza for the link from `local` to `remote` in the current dispatch (see
    /// [`super::outbox`]).
    pub fn send(&self, state: &Shared, local: &str, remote: &str, stanza: Element) {
        state.enqueue(Pending::Link {
            local: local.to_string(),
            remote: remote.to_string(),
            stanza,
        });
    }

    /// Puts a stanza on the link from `local` to `remote`, setting the link up if needed and
    /// waiting for room in its queue. Returns the stanza and the condition to bounce it with
    /// when it cannot be queued.
    pub async fn deliver(
        &self,
        state: &Shared,
        local: &str,
        remote: &str,
        stanza: Element,
    ) -> Result<(), (Element, StanzaErrorCondition)> {
        let key = (local.to_string(), remote.to_string());
        for _ in 0..2 {
            let tx = {
                let mut outbound = self.outbound.lock().expect("links lock");
                let link = outbound.entry(key.clone()).or_insert_with(|| {
                    let info = self.new_info(LinkDirection::Outbound, local, remote);
                    let (tx, rx) = mpsc::channel(QUEUE);
                    let state = state.arc();
                    let span = info_span!("s2s-out", %local, %remote);
                    state.tasks.spawn(
                        outbound_link_task(state.clone(), info.clone(), rx).instrument(span),
                    );
                    Outbound { tx, info }
                });
                link.tx.clone()
            };
            match tokio::time::timeout(outbox::SLOW_CONSUMER, tx.reserve()).await {
                Ok(Ok(permit)) => {
                    permit.send(stanza);
                    return Ok(());
                }
                Ok(Err(_)) => {
                    // The link ended between lookup and send: forget it and start another.
                    let mut outbound = self.outbound.lock().expect("links lock");
                    if outbound
                        .get(&key)
                        .is_some_and(|link| link.tx.same_channel(&tx))
                    {
                        outbound.remove(&key);
                    }
                }
                Err(_) => return Err((stanza, outbox::LINK_FULL)),
            }
        }
        Err((stanza, StanzaErrorCondition::RemoteServerNotFound))
    }

    fn remove_outbound(&self, local: &str, remote: &str, info: &SharedInfo) {
        let mut outbound = self.outbound.lock().expect("links lock");
        let key = (local.to_string(), remote.to_string());
        if outbound
            .get(&key)
            .is_some_and(|link| Arc::ptr_eq(&link.info, info))
        {
            outbound.remove(&key);
        }
    }
}

impl Shared {
    /// A strong handle to this state.
    pub fn arc(&self) -> Arc<Shared> {
        self.me.upgrade().expect("state outlives its tasks")
    }

    fn log(&self, local: &str, remote: &str, direction: FedDirection, element: &Element) {
        let kind = if StanzaKind::of(element).is_some() {
            FedKind::Stanza
        } else if element.ns == ns::DIALBACK {
            FedKind::Dialback
        } else {
            FedKind::Stream
        };
        self.fedlog
            .record(local, remote, direction, kind, element.to_xml(ns::SERVER));
    }
}

/// Why an outbound connection could not be set up, mapped to the bounce condition.
fn setup_condition(error: &ConnError) -> StanzaErrorCondition {
    match error {
        ConnError::Timeout(_) => StanzaErrorCondition::RemoteServerTimeout,
        _ => StanzaErrorCondition::RemoteServerNotFound,
    }
}

/// The addresses of a remote domain's s2s service: the static route, else DNS when enabled.
async fn resolve(state: &Shared, remote: &str) -> Result<Vec<SocketAddr>, ConnError> {
    let route = state
        .routes
        .read()
        .expect("routes lock")
        .get(remote)
        .cloned();
    if let Some(route) = route {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(route.as_str())
            .await
            .map_err(|error| {
                ConnError::Io(std::io::Error::new(
                    error.kind(),
                    format!("static route {remote} -> {route}: {error}"),
                ))
            })?
            .collect();
        return Ok(addrs);
    }
    if !state.config.dns_fallback {
        return Err(ConnError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no static route to {remote} and DNS fallback is off"),
        )));
    }
    // RFC 6120 §3.2.1: SRV `_xmpp-server._tcp`, then the domain itself on port 5269.
    crate::dns::lookup(
        "_xmpp-server._tcp",
        remote,
        5269,
        state.config.dns_server,
        state.config.s2s_timeout(),
    )
    .await
    .map_err(|error| match error {
        crate::dns::LookupError::Timeout { .. } => ConnError::Timeout("DNS lookup"),
        error => ConnError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            error.to_string(),
        )),
    })
}

/// The header of a stream from `local` to `remote` (RFC 6120 §4.7), declaring dialback
/// (XEP-0220 §2.1.1) unless the stream is authenticated already.
fn outbound_header(local: &str, remote: &str, dialback: bool) -> StreamHeader {
    StreamHeader {
        from: Some(local.to_string()),
        to: Some(remote.to_string()),
        id: None,
        version: Some("1.0".into()),
        lang: None,
        content_ns: ns::SERVER.into(),
        dialback,
    }
}

/// Connects to `remote` and negotiates a stream up to (not including) authentication:
/// header exchange, features and STARTTLS per our policy (required, with the peer's
/// certificate verified, for a secure local domain). Returns the stream, the id the peer
/// gave it and the features it offered last.
async fn open_outgoing(
    state: &Shared,
    local: &str,
    remote: &str,
    info: Option<&SharedInfo>,
) -> Result<(Conn, String, Option<Element>), ConnError> {
    let secure = secure_domain(state, local, remote);
    let addrs = resolve(state, remote).await?;
    let mut last_error = None;
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(NEGOTIATION_STEP, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                tcp = Some(stream);
                break;
            }
            Ok(Err(error)) => last_error = Some(ConnError::Io(error)),
            Err(_) => last_error = Some(ConnError::Timeout("TCP connect")),
        }
    }
    let tcp = tcp.ok_or_else(|| {
        last_error.unwrap_or_else(|| {
            ConnError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{remote} has no addresses"),
            ))
        })
    })?;
    if let Some(info) = info {
        let mut info = info.lock().expect("link info");
        info.peer = tcp.peer_addr().ok().map(|a| a.to_string());
        info.state = LinkState::Negotiating;
    }
    let peer = tcp.peer_addr().ok().map(|a| a.to_string());
    let mut conn = Conn::new(tcp, ns::SERVER, state.xmpp.limits);
    conn.tap(state.tap.clone(), TapDirection::Out, peer);
    let mut tls_done = false;
    loop {
        conn.send_header(&outbound_header(local, remote, true))
            .await?;
        let reply = match conn
            .next_event_within(NEGOTIATION_STEP, "stream header")
            .await?
        {
            StreamEvent::Header(reply) => reply,
            _ => {
                return Err(ConnError::protocol(
                    StreamErrorCondition::InvalidXml,
                    "expected a stream header",
                ));
            }
        };
        let stream_id = reply.id.clone().unwrap_or_default();
        let features = if reply.version.as_deref().is_some_and(|v| v.starts_with('1')) {
            let features = conn
                .next_element_within(NEGOTIATION_STEP, "stream features")
                .await?;
            state.log(local, remote, FedDirection::In, &features);
            Some(features)
        } else {
            None
        };
        let starttls = features
            .as_ref()
            .and_then(|features| features.child("starttls", ns::TLS));
        let use_tls =
            !tls_done && starttls.is_some() && (state.config.s2s_tls != TlsMode::Off || secure);
        if !use_tls {
            if (state.config.s2s_tls == TlsMode::Required || secure) && !conn.secure {
                return Err(ConnError::Tls(format!("{remote} does not offer STARTTLS")));
            }
            let dialback_feature = features
                .as_ref()
                .is_some_and(|f| f.child("dialback", ns::DIALBACK_FEATURE).is_some());
            if !secure && !reply.dialback && !dialback_feature {
                return Err(ConnError::protocol(
                    StreamErrorCondition::UnsupportedFeature,
                    format!("{remote} does not support dialback"),
                ));
            }
            return Ok((conn, stream_id, features));
        }
        let request = Element::new("starttls", ns::TLS);
        state.log(local, remote, FedDirection::Out, &request);
        conn.send(&request).await?;
        let answer = conn
            .next_element_within(NEGOTIATION_STEP, "STARTTLS answer")
            .await?;
        state.log(local, remote, FedDirection::In, &answer);
        if !answer.is("proceed", ns::TLS) {
            return Err(ConnError::Tls(format!("{remote} refused STARTTLS")));
        }
        let connector = match (&state.tls.strict_connector, secure) {
            (Some(strict), true) => strict,
            _ => &state.tls.connector,
        };
        conn.connect_tls(connector, remote, NEGOTIATION_STEP)
            .await?;
        tls_done = true;
        if let Some(info) = info {
            info.lock().expect("link info").tls = true;
        }
    }
}

/// [`outbound_link`] as a boxed `Send` future: the link task delivers through the outbox,
/// which may start link tasks, and the concrete type breaks that cycle for the compiler.
fn outbound_link_task(
    state: State,
    info: SharedInfo,
    rx: mpsc::Receiver<Element>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(outbound_link(state, info, rx))
}

/// Originating role: our outbound link authenticates with dialback, then carries stanzas.
async fn outbound_link(state: State, info: SharedInfo, mut rx: mpsc::Receiver<Element>) {
    let _live = state.xmpp.links.live_guard();
    let (local, remote) = {
        let info = info.lock().expect("link info");
        (info.local.clone(), info.remote.clone())
    };
    if state.xmpp.links.given_up(&local, &remote) {
        let condition = StanzaErrorCondition::RemoteServerNotFound;
        let error = "the domain was given up for good (misbehaviour)";
        fail_link(&state, &info, &local, &remote, rx, condition, error).await;
        return;
    }
    let setup = tokio::select! {
        setup = tokio::time::timeout(state.config.s2s_timeout(), establish(&state, &local, &remote, &info)) => setup,
        () = state.shutdown.cancelled() => return,
    };
    let setup = match setup {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err((setup_condition(&error), error.to_string())),
        Err(_) => Err((
            StanzaErrorCondition::RemoteServerTimeout,
            format!("link setup exceeded {:?}", state.config.s2s_timeout()),
        )),
    };
    let mut conn = match setup {
        Ok(conn) => conn,
        Err((condition, error)) => {
            fail_link(&state, &info, &local, &remote, rx, condition, &error).await;
            return;
        }
    };
    {
        let mut info = info.lock().expect("link info");
        info.state = LinkState::Established;
        info.established_ms = Some(now_ms());
    }
    info!("outbound link established");
    let outcome = carry(&state, &mut conn, &info, &local, &remote, &mut rx).await;
    state.xmpp.links.remove_outbound(&local, &remote, &info);
    rx.close();
    let error = match &outcome {
        Ok(()) => None,
        Err(error) => Some(error.to_string()),
    };
    state.xmpp.links.retire(&info, error);
    match outcome {
        // Cut (set_silent), or closed by the peer: no stream end.
        Err(ConnError::Eof) => conn.hang_up(HANG_UP_BOUND).await,
        Ok(()) => conn.close().await,
        Err(error) => {
            warn!(%error, "outbound link ended");
            match error.condition() {
                Some(condition) => conn.fail(condition, None).await,
                None => conn.close().await,
            }
        }
    }
    // Stanzas still queued go on a new link (which bounces them if it cannot be set up).
    let mut left = Vec::new();
    while let Ok(stanza) = rx.try_recv() {
        left.push(stanza);
    }
    state
        .dispatch(|state| {
            for stanza in left {
                state.xmpp.links.send(state, &local, &remote, stanza);
            }
        })
        .await;
}

/// Sets the link up: stream, STARTTLS, dialback.
async fn establish(
    state: &Shared,
    local: &str,
    remote: &str,
    info: &SharedInfo,
) -> Result<Conn, ConnError> {
    let (mut conn, stream_id, features) = open_outgoing(state, local, remote, Some(info)).await?;
    info.lock().expect("link info").state = LinkState::Authenticating;
    if secure_domain(state, local, remote) {
        authenticate_external(state, &mut conn, local, remote, features.as_ref()).await?;
        return Ok(conn);
    }
    let key = dialback::key(&state.xmpp.dialback_secret, remote, local, &stream_id);
    let request = Dialback::Result {
        from: local.to_string(),
        to: remote.to_string(),
        key: Some(key),
        result: None,
    }
    .to_element();
    state.log(local, remote, FedDirection::Out, &request);
    conn.send(&request).await?;
    loop {
        let element = conn
            .next_element_within(state.config.s2s_timeout(), "dialback result")
            .await?;
        state.log(local, remote, FedDirection::In, &element);
        match Dialback::parse(&element) {
            Some(Dialback::Result {
                from, to, result, ..
            }) if from == remote && to == local => {
                return match result {
                    Some(DialbackResult::Valid) => Ok(conn),
                    other => Err(ConnError::protocol(
                        StreamErrorCondition::NotAuthorized,
                        format!("{remote} answered dialback with {other:?}"),
                    )),
                };
            }
            _ => debug!(name = %element.name, "ignoring element while awaiting dialback"),
        }
    }
}

/// Originating role with a certificate (XEP-0178 §3): SASL EXTERNAL for `local` on a TLS
/// stream whose peer certificate was verified, then the stream restart (RFC 6120 §6.4.6).
async fn authenticate_external(
    state: &Shared,
    conn: &mut Conn,
    local: &str,
    remote: &str,
    features: Option<&Element>,
) -> Result<(), ConnError> {
    if !features.is_some_and(external::offered) {
        return Err(ConnError::protocol(
            StreamErrorCondition::NotAuthorized,
            format!("{remote} does not offer SASL EXTERNAL to {local}'s certificate"),
        ));
    }
    let auth = external::auth(Some(local));
    state.log(local, remote, FedDirection::Out, &auth);
    conn.send(&auth).await?;
    let answer = conn
        .next_element_within(NEGOTIATION_STEP, "the SASL EXTERNAL answer")
        .await?;
    state.log(local, remote, FedDirection::In, &answer);
    match external::parse_answer(&answer) {
        Some(external::Answer::Success) => {}
        Some(external::Answer::Failure(condition)) => {
            return Err(ConnError::protocol(
                StreamErrorCondition::NotAuthorized,
                format!("{remote} refused SASL EXTERNAL for {local}: <{condition}/>"),
            ));
        }
        None => {
            return Err(ConnError::protocol(
                StreamErrorCondition::NotAuthorized,
                format!("{remote} answered SASL EXTERNAL with <{}/>", answer.name),
            ));
        }
    }
    conn.restart();
    conn.send_header(&outbound_header(local, remote, false))
        .await?;
    match conn
        .next_event_within(NEGOTIATION_STEP, "the restarted stream's header")
        .await?
    {
        StreamEvent::Header(_) => {}
        _ => {
            return Err(ConnError::protocol(
                StreamErrorCondition::InvalidXml,
                "expected a stream header",
            ));
        }
    }
    let features = conn
        .next_element_within(NEGOTIATION_STEP, "the restarted stream's features")
        .await?;
    state.log(local, remote, FedDirection::In, &features);
    Ok(())
}

/// Writes queued stanzas to an established link until it ends or the server stops.
async fn carry(
    state: &Shared,
    conn: &mut Conn,
    info: &SharedInfo,
    local: &str,
    remote: &str,
    rx: &mut mpsc::Receiver<Element>,
) -> Result<(), ConnError> {
    let mut held: Option<Element> = None;
    let cut = state.xmpp.links.cut_token();
    loop {
        let hold_expired = async {
            match held {
                Some(_) => tokio::time::sleep(REORDER_HOLD).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            queued = rx.recv() => {
                let Some(stanza) = queued else { return Ok(()) };
                if is_availability(&stanza) && state.fault_for(Switch::DropPresenceOut, &stanza) {
                    continue;
                }
                let is_message = StanzaKind::of(&stanza) == Some(StanzaKind::Message)
                    && MessageType::of(&stanza) != MessageType::Error;
                let stanza = if is_message { mutate_message(state, stanza) } else { stanza };
                if is_message && state.fault_for(Switch::ReorderMessagesOut, &stanza) {
                    match held.take() {
                        None => { held = Some(stanza); continue; }
                        Some(first) => {
                            write_stanza(state, conn, info, local, remote, &stanza).await?;
                            write_stanza(state, conn, info, local, remote, &first).await?;
                            continue;
                        }
                    }
                }
                write_stanza(state, conn, info, local, remote, &stanza).await?;
                if is_message && state.fault_for(Switch::DuplicateMessagesOut, &stanza) {
                    write_stanza(state, conn, info, local, remote, &stanza).await?;
                }
            }
            () = hold_expired => {
                if let Some(first) = held.take() {
                    write_stanza(state, conn, info, local, remote, &first).await?;
                }
            }
            event = conn.next_event() => match event? {
                StreamEvent::Element(element) => {
                    state.log(local, remote, FedDirection::In, &element);
                    if let Some((condition, _)) = imfed_xmpp::stream::parse_stream_error(&element) {
                        return Err(ConnError::PeerError(condition.to_string()));
                    }
                }
                StreamEvent::End => return Err(ConnError::Closed),
                StreamEvent::Header(_) => {
                    return Err(ConnError::protocol(StreamErrorCondition::InvalidXml, "unexpected stream header"));
                }
            },
            () = state.shutdown.cancelled() => return Ok(()),
            () = cut.cancelled() => return Err(ConnError::Eof),
        }
    }
}

/// The faults that alter a message on its way out: [`Switch::StripThreadOut`],
/// [`Switch::EscapeBodiesTwiceOut`], [`Switch::TruncateBodiesOut`].
fn mutate_message(state: &Shared, mut stanza: Element) -> Element {
    if state.fault_for(Switch::StripThreadOut, &stanza) {
        stanza.remove_children("thread", ns::CLIENT);
    }
    let escape = state.fault_for(Switch::EscapeBodiesTwiceOut, &stanza);
    let truncate = state.fault_for(Switch::TruncateBodiesOut, &stanza);
    if (escape || truncate)
        && let Some(body) = stanza.child_mut("body", ns::CLIENT)
    {
        let mut text = body.text();
        if escape {
            let mut escaped = Vec::new();
            imfed_xmpp::element::escape_into(&text, false, &mut escaped);
            text = String::from_utf8_lossy(&escaped).into_owned();
        }
        if truncate {
            text = text.chars().take(4096).collect();
        }
        body.children = vec![imfed_xmpp::Node::Text(text)];
    }
    stanza
}

/// Available or unavailable presence (not subscription signals or probes).
fn is_availability(stanza: &Element) -> bool {
    StanzaKind::of(stanza) == Some(StanzaKind::Presence)
        && matches!(stanza.attr("type"), None | Some("unavailable"))
}

async fn write_stanza(
    state: &Shared,
    conn: &mut Conn,
    info: &SharedInfo,
    local: &str,
    remote: &str,
    stanza: &Element,
) -> Result<(), ConnError> {
    state.log(local, remote, FedDirection::Out, stanza);
    conn.send(stanza).await?;
    info.lock().expect("link info").stanzas_out += 1;
    Ok(())
}

/// A link that could not be set up: forget it and bounce what it holds.
async fn fail_link(
    state: &Shared,
    info: &SharedInfo,
    local: &str,
    remote: &str,
    mut rx: mpsc::Receiver<Element>,
    condition: StanzaErrorCondition,
    error: &str,
) {
    warn!(%error, %condition, "outbound link failed");
    let involved = crate::faults::Involved {
        accounts: &[],
        peer: Some(remote),
    };
    if state.faults.on(Switch::NeverRetryFailedDomains, involved) {
        warn!(%remote, "giving the domain up for good (misbehaviour)");
        let pair = (local.to_string(), remote.to_string());
        state
            .xmpp
            .links
            .given_up
            .lock()
            .expect("links lock")
            .insert(pair);
    }
    state.xmpp.links.remove_outbound(local, remote, info);
    state.xmpp.links.retire(info, Some(error.to_string()));
    rx.close();
    let mut held = Vec::new();
    while let Ok(stanza) = rx.try_recv() {
        held.push(stanza);
    }
    state
        .dispatch(|state| {
            for stanza in &held {
                state.bounce(stanza, condition);
            }
        })
        .await;
}

/// Receiving role: asks the authoritative server of `originating` whether `key` is right
/// for the stream `stream_id`, over a fresh connection (XEP-0220 §2.1.2, §2.2).
async fn verify_key(
    state: &Shared,
    receiving: &str,
    originating: &str,
    stream_id: &str,
    key: &str,
) -> Result<bool, ConnError> {
    let (mut conn, _, _) = open_outgoing(state, receiving, originating, None).await?;
    let request = Dialback::Verify {
        from: receiving.to_string(),
        to: originating.to_string(),
        id: stream_id.to_string(),
        key: Some(key.to_string()),
        result: None,
    }
    .to_element();
    state.log(receiving, originating, FedDirection::Out, &request);
    conn.send(&request).await?;
    let verdict = loop {
        let element = conn
            .next_element_within(NEGOTIATION_STEP, "dialback verification")
            .await?;
        state.log(receiving, originating, FedDirection::In, &element);
        if let Some(Dialback::Verify { id, result, .. }) = Dialback::parse(&element)
            && id == stream_id
        {
            break result == Some(DialbackResult::Valid);
        }
    };
    conn.close().await;
    Ok(verdict)
}

/// One inbound connection counted against its address's share (see
/// [`crate::config::Config::s2s_max_connections_per_ip`]); uncounted when dropped.
struct IpShare {
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl IpShare {
    /// Counts a connection from `ip`, unless `max` are open already.
    fn take(per_ip: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut counts = per_ip.lock().expect("per-ip lock");
        let count = counts.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpShare {
            per_ip: per_ip.clone(),
            ip,
        })
    }
}

impl Drop for IpShare {
    fn drop(&mut self) {
        let mut counts = self.per_ip.lock().expect("per-ip lock");
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves one inbound server-to-server connection.
pub async fn serve_inbound(state: State, tcp: TcpStream) {
    let _share = match tcp.peer_addr() {
        Ok(peer) => {
            let max = state.config.s2s_max_connections_per_ip;
            match IpShare::take(&state.xmpp.links.per_ip, peer.ip(), max) {
                Some(share) => Some(share),
                None => {
                    warn!(%peer, max, "refusing an s2s connection over the per-address limit");
                    let mut conn = Conn::new(tcp, ns::SERVER, state.xmpp.limits);
                    conn.fail(
                        StreamErrorCondition::PolicyViolation,
                        Some("too many connections from this address"),
                    )
                    .await;
                    return;
                }
            }
        }
        Err(_) => None,
    };
    if state.xmpp.links.is_silent() {
        // A dead host behind a live address: the connection is held, and nothing is said.
        tokio::select! {
            () = state.xmpp.links.spoken_again() => {}
            () = state.shutdown.cancelled() => {}
        }
        return;
    }
    let _live = state.xmpp.links.live_guard();
    let peer = tcp.peer_addr().ok().map(|a| a.to_string());
    let info = state.xmpp.links.new_info(LinkDirection::Inbound, "", "");
    info.lock().expect("link info").peer = peer;
    let id = info.lock().expect("link info").id;
    state
        .xmpp
        .links
        .inbound
        .lock()
        .expect("links lock")
        .insert(id, info.clone());
    let mut conn = Conn::new(tcp, ns::SERVER, state.xmpp.limits);
    conn.tap(
        state.tap.clone(),
        TapDirection::In,
        info.lock().expect("link info").peer.clone(),
    );
    conn.decode_per_read = state.faults.on(Switch::DecodePerRead, Default::default());
    // (local, remote) pairs dialback or SASL EXTERNAL has authorized on this stream.
    let mut authorized: BTreeSet<(String, String)> = BTreeSet::new();
    let cut = state.xmpp.links.cut_token();
    let outcome = tokio::select! {
        outcome = inbound_stream(&state, &mut conn, &info, &mut authorized) => outcome,
        () = cut.cancelled() => {
            state.xmpp.links.inbound.lock().expect("links lock").remove(&id);
            state.xmpp.links.retire(&info, Some("cut: the server plays a dead host".into()));
            conn.hang_up(HANG_UP_BOUND).await;
            return;
        }
        () = unauthenticated_for(&state, &info) => Err(ConnError::protocol(
            StreamErrorCondition::ConnectionTimeout,
            format!(
                "no domain authenticated within {:?}",
                state.config.s2s_auth_timeout()
            ),
        )),
        () = state.shutdown.cancelled() => Err(ConnError::protocol(
            StreamErrorCondition::SystemShutdown,
            "server shutting down",
        )),
    };
    state
        .xmpp
        .links
        .inbound
        .lock()
        .expect("links lock")
        .remove(&id);
    // A link that died in the middle of a stanza: the connection ended, or failed, with
    // half an element read.
    if matches!(outcome, Err(ConnError::Eof | ConnError::Io(_)))
        && let Some(cut) = conn.cut_short()
    {
        let remote = info.lock().expect("link info").remote.clone();
        let involved = crate::faults::Involved {
            accounts: &[],
            peer: Some(&remote),
        };
        if state.faults.on(Switch::DeliverCutStanzas, involved) {
            warn!(%remote, "delivering a stanza the dead link cut short (misbehaviour)");
            let _ = state
                .dispatch(|state| inbound_stanza(state, &info, cut, &authorized))
                .await;
        }
    }
    let error = outcome.as_ref().err().map(ToString::to_string);
    state.xmpp.links.retire(&info, error);
    match outcome {
        Ok(()) => conn.close().await,
        Err(error) => {
            debug!(%error, "inbound stream ended");
            let generic = state
                .faults
                .on(Switch::GenericStreamErrors, Default::default());
            match error.condition() {
                Some(_) if generic => {
                    conn.fail(StreamErrorCondition::UndefinedCondition, None)
                        .await;
                }
                Some(condition) => conn.fail(condition, None).await,
                None => conn.close().await,
            }
        }
    }
}

/// Resolves when an inbound connection has gone [`crate::config::Config::s2s_auth_timeout`]
/// without authenticating a domain (never, once one is); the header wait is part of it, so
/// a peer trickling its header in cannot hold the connection either (RFC 6120 §13.12).
async fn unauthenticated_for(state: &Shared, info: &SharedInfo) {
    if state.faults.on(Switch::NoAuthTimeout, Default::default()) {
        return std::future::pending().await;
    }
    tokio::time::sleep(state.config.s2s_auth_timeout()).await;
    if info.lock().expect("link info").established_ms.is_some() {
        std::future::pending::<()>().await;
    }
}

async fn inbound_stream(
    state: &Shared,
    conn: &mut Conn,
    info: &SharedInfo,
    authorized: &mut BTreeSet<(String, String)>,
) -> Result<(), ConnError> {
    let mut externally_authenticated = false;
    loop {
        // The whole negotiation is bounded by `unauthenticated_for`; this bound is for a
        // restart after STARTTLS on a stream that authenticated nothing yet.
        let header_bound = if state.faults.on(Switch::NoAuthTimeout, Default::default()) {
            Duration::from_secs(3600)
        } else {
            NEGOTIATION_STEP
        };
        let header = match conn
            .next_event_within(header_bound, "stream header")
            .await?
        {
            StreamEvent::Header(header) => header,
            StreamEvent::End => return Ok(()),
            StreamEvent::Element(_) => {
                return Err(ConnError::protocol(
                    StreamErrorCondition::NotWellFormed,
                    "expected a stream header",
                ));
            }
        };
        let stream_id = random_id(16);
        let local = header.to.clone().unwrap_or_default();
        let reply = StreamHeader {
            from: Some(local.clone()).filter(|l| !l.is_empty()),
            to: header.from.clone(),
            id: Some(stream_id.clone()),
            version: Some("1.0".into()),
            lang: None,
            content_ns: ns::SERVER.into(),
            dialback: true,
        };
        conn.send_header(&reply).await?;
        if header.content_ns != ns::SERVER {
            return Err(ConnError::protocol(
                StreamErrorCondition::InvalidNamespace,
                "server streams use jabber:server",
            ));
        }
        if !local.is_empty() && !state.hosts(&local) {
            return Err(ConnError::protocol(
                StreamErrorCondition::HostUnknown,
                format!("{local:?} is not hosted here"),
            ));
        }
        {
            let mut info = info.lock().expect("link info");
            info.local = local.clone();
            if let Some(from) = &header.from {
                info.remote = from.clone();
            }
            info.state = LinkState::Negotiating;
        }
        let remote_label = header.from.clone().unwrap_or_default();
        let peer_involved = crate::faults::Involved {
            accounts: &[],
            peer: Some(&remote_label),
        };
        // XEP-0178: a secure domain takes TLS and a certificate, nothing less.
        let secure_domain = secure_domain(state, &local, &remote_label);
        let tls_offered = (state.config.s2s_tls != TlsMode::Off || secure_domain) && !conn.secure;
        let tls_required =
            (state.config.s2s_tls == TlsMode::Required || secure_domain) && !conn.secure;
        // RFC 6120 §13.7.2.1: the certificate must chain to a trusted CA and name the
        // domain the stream claims; only then is SASL EXTERNAL offered.
        let no_external = state.faults.on(Switch::NoSaslExternal, peer_involved);
        let certificate = if conn.secure && !externally_authenticated {
            Some(peer_certificate(state, conn, &remote_label, peer_involved))
        } else {
            None
        };
        if secure_domain && let Some(Err(reason)) = &certificate {
            return Err(ConnError::protocol(
                StreamErrorCondition::PolicyViolation,
                format!("{local} authenticates servers by certificate only: {reason}"),
            ));
        }
        if header
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with('1'))
        {
            let mut features = Element::new("features", ns::STREAM);
            if tls_offered {
                let mut starttls = Element::new("starttls", ns::TLS);
                if tls_required {
                    starttls = starttls.with_child(Element::new("required", ns::TLS));
                }
                features = features.with_child(starttls);
            }
            if matches!(certificate, Some(Ok(()))) && !no_external {
                features = features.with_child(external::offer());
            }
            if !tls_required && !secure_domain {
                features = features.with_child(
                    Element::new("dialback", ns::DIALBACK_FEATURE)
                        .with_child(Element::new("errors", ns::DIALBACK_FEATURE)),
                );
            }
            state.log(&local, &remote_label, FedDirection::Out, &features);
            conn.send(&features).await?;
        }
        // Elements until the stream restarts (after STARTTLS or SASL) or ends.
        loop {
            let element = match conn.next_event().await? {
                StreamEvent::Element(element) => element,
                StreamEvent::End => return Ok(()),
                StreamEvent::Header(_) => {
                    return Err(ConnError::protocol(
                        StreamErrorCondition::InvalidXml,
                        "unexpected stream header",
                    ));
                }
            };
            let remote_now = info.lock().expect("link info").remote.clone();
            state.log(&local, &remote_now, FedDirection::In, &element);
            if element.is("starttls", ns::TLS) && tls_offered {
                let proceed = Element::new("proceed", ns::TLS);
                state.log(&local, &remote_now, FedDirection::Out, &proceed);
                conn.send(&proceed).await?;
                conn.accept_tls(&state.tls.s2s_acceptor, NEGOTIATION_STEP)
                    .await?;
                info.lock().expect("link info").tls = true;
                break;
            }
            if tls_required {
                return Err(ConnError::protocol(
                    StreamErrorCondition::PolicyViolation,
                    "STARTTLS is required first",
                ));
            }
            if element.is("auth", ns::SASL) {
                let verdict = if no_external {
                    Err("invalid-mechanism")
                } else {
                    external_verdict(&element, &remote_label, certificate.as_ref())
                };
                let answer = match &verdict {
                    Ok(()) => external::success(),
                    Err(condition) => external::failure(condition),
                };
                state.log(&local, &remote_now, FedDirection::Out, &answer);
                conn.send(&answer).await?;
                if verdict.is_ok() {
                    let mut info = info.lock().expect("link info");
                    info.state = LinkState::Established;
                    info.established_ms.get_or_insert_with(now_ms);
                    authorized.insert((local.clone(), remote_label.clone()));
                    externally_authenticated = true;
                    drop(info);
                    conn.restart();
                    break;
                }
                continue;
            }
            if secure_domain && Dialback::parse(&element).is_some() {
                return Err(ConnError::protocol(
                    StreamErrorCondition::PolicyViolation,
                    format!("{local} authenticates servers by certificate only, not dialback"),
                ));
            }
            if let Some(dialback) = Dialback::parse(&element) {
                inbound_dialback(state, conn, info, &stream_id, dialback, authorized).await?;
                continue;
            }
            if StanzaKind::of(&element).is_some() {
                state
                    .dispatch(|state| inbound_stanza(state, info, element, authorized))
                    .await?;
                continue;
            }
            debug!(name = %element.name, ns = %element.ns, "ignoring unknown element on inbound stream");
        }
    }
}

/// Whether `local`'s links with `remote` authenticate by certificate only (XEP-0178), unless
/// [`Switch::SecureDomainsAllowDialback`] breaks that.
fn secure_domain(state: &Shared, local: &str, remote: &str) -> bool {
    state.config.secure_domain(local)
        && !state.faults.on(
            Switch::SecureDomainsAllowDialback,
            crate::faults::Involved {
                accounts: &[],
                peer: Some(remote),
            },
        )
}

/// Whether the inbound peer's TLS certificate is valid for `claimed` (`Err` says why not).
fn peer_certificate(
    state: &Shared,
    conn: &Conn,
    claimed: &str,
    involved: crate::faults::Involved<'_>,
) -> Result<(), String> {
    let chain = conn.peer_certificates();
    if !chain.is_empty() && state.faults.on(Switch::TrustAnyCertificate, involved) {
        warn!(%claimed, "taking any certificate as valid (misbehaviour)");
        return Ok(());
    }
    if claimed.is_empty() {
        return Err("the stream header has no 'from' to check the certificate against".into());
    }
    state
        .tls
        .verify_peer(&chain, claimed)
        .map_err(|reason| format!("the certificate is not valid for {claimed}: {reason}"))
}

/// The answer to an inbound `<auth/>` (RFC 6120 §6.4.5, §6.5; XEP-0178 §3): `Ok` for
/// EXTERNAL with a certificate valid for the stream's `from` and no other identity asked
/// for, else the failure condition.
fn external_verdict(
    auth: &Element,
    claimed: &str,
    certificate: Option<&Result<(), String>>,
) -> Result<(), &'static str> {
    match external::parse_auth(auth) {
        Err(error) => Err(error.condition()),
        Ok(external::AuthRequest::Other(_)) => Err("invalid-mechanism"),
        Ok(external::AuthRequest::External(Some(authzid))) if authzid != claimed => {
            Err("invalid-authzid")
        }
        Ok(external::AuthRequest::External(_)) => match certificate {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) => Err("not-authorized"),
            None => Err("encryption-required"),
        },
    }
}

async fn inbound_dialback(
    state: &Shared,
    conn: &mut Conn,
    info: &SharedInfo,
    stream_id: &str,
    dialback: Dialback,
    authorized: &mut BTreeSet<(String, String)>,
) -> Result<(), ConnError> {
    match dialback {
        // Receiving role: verify the key with the originating domain's authoritative server.
        Dialback::Result {
            from,
            to,
            key: Some(key),
            result: None,
        } => {
            if !state.hosts(&to) {
                return Err(ConnError::protocol(
                    StreamErrorCondition::HostUnknown,
                    format!("{to:?} is not hosted here"),
                ));
            }
            info.lock().expect("link info").state = LinkState::Authenticating;
            let skip = state.faults.on(
                Switch::SkipDialbackVerification,
                crate::faults::Involved {
                    accounts: &[],
                    peer: Some(&from),
                },
            );
            let verdict = if skip {
                warn!(%from, "accepting a dialback key unverified (misbehaviour)");
                Ok(Ok(true))
            } else {
                tokio::time::timeout(
                    state.config.s2s_timeout(),
                    verify_key(state, &to, &from, stream_id, &key),
                )
                .await
            };
            let valid = match verdict {
                Ok(Ok(valid)) => valid,
                Ok(Err(error)) => {
                    warn!(%from, %error, "dialback verification failed");
                    false
                }
                Err(_) => {
                    warn!(%from, "dialback verification timed out");
                    false
                }
            };
            let answer = Dialback::Result {
                from: to.clone(),
                to: from.clone(),
                key: None,
                result: Some(if valid {
                    DialbackResult::Valid
                } else {
                    DialbackResult::Invalid
                }),
            }
            .to_element();
            state.log(&to, &from, FedDirection::Out, &answer);
            conn.send(&answer).await?;
            if valid {
                let mut info = info.lock().expect("link info");
                info.state = LinkState::Established;
                info.established_ms.get_or_insert_with(now_ms);
                info.remote = from.clone();
                info.local = to.clone();
                authorized.insert((to, from));
            }
            Ok(())
        }
        // Authoritative role: is this the key we would have sent on that stream?
        Dialback::Verify {
            from,
            to,
            id,
            key: Some(key),
            result: None,
        } => {
            let valid = state.hosts(&to)
                && dialback::key(&state.xmpp.dialback_secret, &from, &to, &id) == key;
            let answer = Dialback::Verify {
                from: to.clone(),
                to: from.clone(),
                id,
                key: None,
                result: Some(if valid {
                    DialbackResult::Valid
                } else {
                    DialbackResult::Invalid
                }),
            }
            .to_element();
            state.log(&to, &from, FedDirection::Out, &answer);
            conn.send(&answer).await
        }
        // An answer only the receiving or authoritative server sends: a peer sending one on
        // its own stream is answering its own dialback.
        Dialback::Result {
            from,
            to,
            result: Some(DialbackResult::Valid),
            ..
        }
        | Dialback::Verify {
            from,
            to,
            result: Some(DialbackResult::Valid),
            ..
        } if state.faults.on(
            Switch::TrustDialbackAnswers,
            crate::faults::Involved {
                accounts: &[],
                peer: Some(&from),
            },
        ) =>
        {
            warn!(%from, "taking a peer's own dialback answer as authentication (misbehaviour)");
            let mut info = info.lock().expect("link info");
            info.state = LinkState::Established;
            info.established_ms.get_or_insert_with(now_ms);
            authorized.insert((to, from));
            Ok(())
        }
        _ => Err(ConnError::protocol(
            StreamErrorCondition::BadFormat,
            "malformed dialback element",
        )),
    }
}

fn inbound_stanza(
    state: &Shared,
    info: &SharedInfo,
    stanza: Element,
    authorized: &BTreeSet<(String, String)>,
) -> Result<(), ConnError> {
    // RFC 6120 §8.1.1.1, §8.1.2.2: server streams carry full addressing.
    let (Ok(Some(from)), Ok(Some(to))) = (
        imfed_xmpp::stanza::from(&stanza),
        imfed_xmpp::stanza::to(&stanza),
    ) else {
        return Err(ConnError::protocol(
            StreamErrorCondition::ImproperAddressing,
            "stanza without valid 'from' and 'to'",
        ));
    };
    if !state.hosts(to.domain()) {
        return Err(ConnError::protocol(
            StreamErrorCondition::HostUnknown,
            format!("{} is not hosted here", to.domain()),
        ));
    }
    let unchecked = state.faults.on(
        Switch::AcceptUnauthenticatedStanzas,
        crate::faults::Involved {
            accounts: &[],
            peer: Some(from.domain()),
        },
    );
    if !unchecked && authorized.is_empty() {
        // RFC 6120 §4.9.3.12: stanzas before the stream is authenticated.
        return Err(ConnError::protocol(
            StreamErrorCondition::NotAuthorized,
            "stanza before any domain authenticated on this stream",
        ));
    }
    if !unchecked && !authorized.contains(&(to.domain().to_string(), from.domain().to_string())) {
        return Err(ConnError::protocol(
            StreamErrorCondition::InvalidFrom,
            format!(
                "{} is not authenticated on this stream for {}",
                from.domain(),
                to.domain()
            ),
        ));
    }
    info.lock().expect("link info").stanzas_in += 1;
    state.deliver_inbound(stanza, &to);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_succeeds_only_for_the_claimed_domain_on_a_valid_certificate() {
        let valid: Result<(), String> = Ok(());
        let invalid: Result<(), String> = Err("expired".into());
        let verdict = |auth: &Element, certificate| external_verdict(auth, "ref.test", certificate);
        let plain = external::auth(Some("ref.test"));
        let empty = external::auth(None);
        assert_eq!(verdict(&plain, Some(&valid)), Ok(()));
        assert_eq!(
            verdict(&empty, Some(&valid)),
            Ok(()),
            "= is the claimed domain"
        );
        assert_eq!(
            verdict(&external::auth(Some("other.test")), Some(&valid)),
            Err("invalid-authzid")
        );
        assert_eq!(verdict(&plain, Some(&invalid)), Err("not-authorized"));
        assert_eq!(verdict(&plain, None), Err("encryption-required"));
        let scram = Element::new("auth", ns::SASL).with_attr("mechanism", "SCRAM-SHA-1");
        assert_eq!(verdict(&scram, Some(&valid)), Err("invalid-mechanism"));
        let garbage = Element::new("auth", ns::SASL)
            .with_attr("mechanism", external::MECHANISM)
            .with_text("!!");
        assert_eq!(verdict(&garbage, Some(&valid)), Err("incorrect-encoding"));
    }
}
