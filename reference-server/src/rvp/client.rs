//! Outbound RVP: NOTIFYs to a client's callback node (plain HTTP, loopback only) and
//! requests to another domain's home server (HTTP over mutual TLS, PROFILE.md §6), with the
//! hop count of §5.6 and the error statuses of PROFILE.md §5 (502 no route, 504 unreachable,
//! 508 too many hops); a domain without a static route is looked up in DNS when
//! `dns_fallback` is on. Server-to-server bytes are recorded on the tap.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use imfed_rvp::headers::{FromPrincipal, HopCount, NotificationsVersion};
use imfed_rvp::xml::{
    Contact, Notification, PropChange, PropNotification, Property, PropertyUpdate, State as RState,
};
use imfed_rvp::{NodeUrl, RvpHeaders, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::Outgoing;
use super::http::{Caller, MAX_BODY, Reply, Req};
use crate::faults::Switch;
use crate::state::{Shared, State};
use crate::tap::{ChunkKind, Tap, TapDirection, TapProtocol};

/// Bound on a callback's connect and answer.
pub const CALLBACK_BOUND: Duration = Duration::from_secs(3);

/// A stream whose bytes are recorded on the tap both ways, and its end.
pub struct Tapped<S> {
    inner: S,
    tap: Arc<Tap>,
    id: u64,
}

impl<S> std::fmt::Debug for Tapped<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tapped").field("id", &self.id).finish()
    }
}

impl<S> Tapped<S> {
    /// Records `inner` as tap connection `id`.
    pub fn new(inner: S, tap: Arc<Tap>, id: u64) -> Self {
        Tapped { inner, tap, id }
    }
}

impl<S> Drop for Tapped<S> {
    fn drop(&mut self) {
        self.tap
            .record(self.id, TapDirection::Out, ChunkKind::Closed, b"");
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                this.tap
                    .record(this.id, TapDirection::In, ChunkKind::Data, read);
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &poll
            && *written > 0
        {
            this.tap.record(
                this.id,
                TapDirection::Out,
                ChunkKind::Data,
                &buf[..*written],
            );
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why an outbound request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Connecting, TLS or HTTP failed.
    #[error("{0}")]
    Failed(String),
    /// No answer within the bound.
    #[error("no answer in time")]
    Timeout,
}

/// Sends one request on `io` and reads the answer, within `bound`.
async fn exchange<S>(
    state: &Shared,
    io: S,
    request: http::Request<Full<Bytes>>,
    bound: Duration,
) -> Result<Reply, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let work = async {
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .handshake::<_, Full<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| SendError::Failed(e.to_string()))?;
        let shutdown = state.shutdown.clone();
        state.tasks.spawn(async move {
            tokio::select! {
                _ = conn => {}
                () = shutdown.cancelled() => {}
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::Failed(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| SendError::Failed(e.to_string()))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            reason: parts
                .extensions
                .get::<hyper::ext::ReasonPhrase>()
                .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned()),
            headers: parts.headers,
            body: body.to_vec(),
        })
    };
    tokio::time::timeout(bound, work)
        .await
        .unwrap_or(Err(SendError::Timeout))
}

fn request(
    method: &str,
    uri: &str,
    host: &str,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, SendError> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|e| SendError::Failed(e.to_string()))?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body))
        .map_err(|e| SendError::Failed(e.to_string()))?;
    headers.insert(
        header::HOST,
        HeaderValue::from_str(host).map_err(|e| SendError::Failed(e.to_string()))?,
    );
    headers.set_typed(&NotificationsVersion::SEND);
    *request.headers_mut() = headers;
    Ok(request)
}

/// The socket address of a loopback callback node, or `None` for any other host.
pub fn loopback_callback(url: &NodeUrl) -> Option<SocketAddr> {
    let host = url.host().trim_start_matches('[').trim_end_matches(']');
    let ip = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().ok()?
    };
    ip.is_loopback()
        .then(|| SocketAddr::new(ip, url.port().unwrap_or(80)))
}

/// NOTIFYs an endpoint's callback node; whether it answered 2xx.
pub async fn to_callback(
    state: &Shared,
    callback: &NodeUrl,
    headers: HeaderMap,
    body: Bytes,
) -> bool {
    let Some(addr) = loopback_callback(callback) else {
        warn!(%callback, "callback is not on loopback");
        return false;
    };
    let Ok(Ok(tcp)) = tokio::time::timeout(CALLBACK_BOUND, TcpStream::connect(addr)).await else {
        debug!(%callback, "callback unreachable");
        return false;
    };
    let _ = tcp.set_nodelay(true);
    let Ok(request) = request(
        "NOTIFY",
        callback.request_path(),
        &callback.authority(),
        headers,
        body,
    ) else {
        return false;
    };
    match exchange(state, tcp, request, CALLBACK_BOUND).await {
        Ok(reply) => reply.status.is_success(),
        Err(error) => {
            debug!(%callback, %error, "callback failed");
            false
        }
    }
}

/// Sends a request for `target` to the home server of `target`'s domain and returns its
/// answer, or 502 (no route: none static, none in DNS, or the lookup failed) or 504
/// (unreachable, no answer in time).
pub async fn to_peer(
    state: &Shared,
    method: &str,
    target: &NodeUrl,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let domain = target.host().to_string();
    let home = match home_server(state, &domain).await {
        Ok(home) => home,
        Err(reply) => return reply,
    };
    let bound = state.config.s2s_timeout();
    let unreachable = |why: String| {
        Reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("home server of {domain} unreachable: {why}"),
        )
    };
    let tcp = match tokio::time::timeout(bound, home.connect()).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => return unreachable(error.to_string()),
        Err(_) => return unreachable("connect timed out".into()),
    };
    let _ = tcp.set_nodelay(true);
    let peer = tcp.peer_addr().ok().map(|a| a.to_string());
    let Ok(name) = rustls::pki_types::ServerName::try_from(domain.clone()) else {
        return Reply::bad_request(format!("{domain} is not a DNS name"));
    };
    let tls = match tokio::time::timeout(bound, state.tls.rvp_connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => return unreachable(format!("TLS: {error}")),
        Err(_) => return unreachable("TLS handshake timed out".into()),
    };
    let id = state
        .tap
        .open_with(TapProtocol::Rvp, TapDirection::Out, peer);
    let io = Tapped::new(tls, state.tap.clone(), id);
    let request = match request(
        method,
        &target.to_string(),
        &target.authority(),
        headers,
        body,
    ) {
        Ok(request) => request,
        Err(error) => return Reply::bad_request(error.to_string()),
    };
    match exchange(state, io, request, bound).await {
        Ok(reply) => reply,
        Err(error) => unreachable(error.to_string()),
    }
}

/// Where a domain's RVP server-to-server listener is.
enum HomeServer {
    /// A static route, `host:port` (resolved when connecting, within the connect bound).
    Route(String),
    /// Found in DNS, best first.
    Found(Vec<SocketAddr>),
}

impl HomeServer {
    async fn connect(&self) -> io::Result<TcpStream> {
        match self {
            HomeServer::Route(route) => TcpStream::connect(route.as_str()).await,
            HomeServer::Found(addrs) => TcpStream::connect(&addrs[..]).await,
        }
    }
}

/// `domain`'s home server: its static route, else, when `dns_fallback` is on, SRV
/// `_rvp._tcp` then the domain's addresses on port 443 (PROFILE.md §6). Neither, or a failed
/// or timed-out lookup, is the 502 to answer, naming why.
async fn home_server(state: &Shared, domain: &str) -> Result<HomeServer, Reply> {
    let no_route = |why: String| Reply::error(StatusCode::BAD_GATEWAY, why);
    if let Some(route) = state.rvp.route(domain) {
        return Ok(HomeServer::Route(route));
    }
    if !state.config.dns_fallback {
        return Err(no_route(format!("no RVP home server known for {domain}")));
    }
    crate::dns::lookup(
        "_rvp._tcp",
        domain,
        443,
        state.config.dns_server,
        state.config.s2s_timeout(),
    )
    .await
    .map(HomeServer::Found)
    .map_err(|error| no_route(format!("no RVP home server known for {domain}: {error}")))
}

/// The hop count one hop further, or the 508 that refuses it (PROFILE.md §5).
pub fn next_hop(state: &Shared, hop: HopCount, caller: &Caller) -> Result<HopCount, Reply> {
    let accounts: Vec<_> = caller.address.iter().cloned().collect();
    if state.rvp_fault(Switch::RvpIgnoreHopCount, &accounts, caller.peer.as_deref()) {
        return Ok(hop);
    }
    let next = hop.next();
    if next.get() > state.config.rvp_max_hops {
        return Err(Reply::error(
            StatusCode::LOOP_DETECTED,
            format!("RVP-Hop-Count exhausted ({} hops)", hop.get()),
        ));
    }
    Ok(next)
}

/// Forwards a request for another domain's node (§4.1, PROFILE.md §6).
pub async fn forward(state: &State, caller: &Caller, req: &Req) -> Reply {
    let hop = match next_hop(state, req.hop, caller) {
        Ok(hop) => hop,
        Err(reply) => return reply,
    };
    let mut headers = req.headers.clone();
    for name in [
        header::AUTHORIZATION,
        header::HOST,
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    headers.set_typed(&hop);
    if headers.typed::<FromPrincipal>().ok().flatten().is_none()
        && let Ok(from) = NodeUrl::parse(&caller.url)
    {
        headers.set_typed(&FromPrincipal::Node(from));
    }
    let mut reply = to_peer(
        state,
        req.method.as_str(),
        &req.target,
        headers,
        req.body.clone(),
    )
    .await;
    for name in [
        header::CONNECTION,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
    ] {
        reply.headers.remove(name);
    }
    reply
}

/// The NOTIFY headers for a relayed or server-originated notification.
pub fn notify_headers(from: &FromPrincipal, hop: HopCount) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.set_typed(from);
    headers.set_typed(&hop);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    headers
}

/// Sends queued presence notifications, in order, until shutdown.
pub async fn dispatch(state: State, mut rx: mpsc::Receiver<Outgoing>) {
    loop {
        let item = tokio::select! {
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
            () = state.shutdown.cancelled() => break,
        };
        propnotify(&state, item).await;
    }
}

/// NOTIFYs one watcher of a presence change (§5.6.1 example g): to the callback node
/// directly, to a local watcher's endpoints, or over s2s to the watcher's home server.
async fn propnotify(state: &State, item: Outgoing) {
    let Some(presentity) = Shared::principal_url(&item.presentity) else {
        return;
    };
    let body = Notification::Property(PropNotification {
        from: Contact::new(&presentity, ""),
        to: Contact::new(&item.callback, ""),
        change: PropChange::Update(PropertyUpdate::set(vec![Property::State(RState::plain(
            item.state.clone(),
        ))])),
    })
    .to_xml();
    let Ok(server) = ServerName::new(&item.presentity.domain) else {
        return;
    };
    let from = FromPrincipal::Server(server);
    let first = HopCount::new(1).expect("1 is a hop count");
    let body = Bytes::from(body);
    if loopback_callback(&item.callback).is_some() {
        to_callback(
            state,
            &item.callback,
            notify_headers(&from, first.next()),
            body,
        )
        .await;
    } else if state.hosts(item.callback.host()) {
        let Some(user) = item.callback.alias() else {
            return;
        };
        let watcher = crate::core::Address::new(user, item.callback.host());
        let endpoints = state.rvp.lock().endpoints_of(&watcher);
        for (_, callback) in endpoints {
            to_callback(
                state,
                &callback,
                notify_headers(&from, first.next()),
                body.clone(),
            )
            .await;
        }
    } else {
        let reply = to_peer(
            state,
            "NOTIFY",
            &item.callback,
            notify_headers(&from, first.next()),
            body,
        )
        .await;
        debug!(callback = %item.callback, status = %reply.status, "propnotification sent");
    }
}
