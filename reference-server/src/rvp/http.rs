//! RVP over HTTP/1.1 (§3: "a strict extension of HTTP/1.1"): the client listener (Digest,
//! PROFILE.md §2) and the server-to-server listener (mutual TLS, PROFILE.md §6), the checks
//! every request passes (§5.8 methods, §7.2 headers, hop count §5.6) and the choice between
//! serving a node here and forwarding it to its domain's home server (§4.1).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use imfed_rvp::digest;
use imfed_rvp::headers::{FromPrincipal, HopCount, NotificationsVersion};
use imfed_rvp::message::rvp_reason;
use imfed_rvp::{Method, NodeUrl, RvpHeaders};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tracing::{Instrument, debug, info_span, warn};

use super::Proof;
use crate::core::Address;
use crate::faults::Switch;
use crate::state::State;
use crate::tap::{TapDirection, TapProtocol};

/// Largest request or response body accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// Bound on reading a request's head and body.
pub const READ_BOUND: Duration = Duration::from_secs(10);
/// Bound on the TLS handshake of an inbound server connection.
const HANDSHAKE_BOUND: Duration = Duration::from_secs(10);

/// An answer, before it becomes an HTTP response.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// A reason phrase other than the RVP one (§8), naming what is wrong.
    pub reason: Option<String>,
    /// Headers (RVP-Notifications-Version is always added).
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// An empty answer.
    pub fn new(status: StatusCode) -> Reply {
        let mut headers = HeaderMap::new();
        headers.set_typed(&NotificationsVersion::SEND);
        Reply {
            status,
            reason: None,
            headers,
            body: Vec::new(),
        }
    }

    /// An error whose reason phrase and plain-text body say what is wrong.
    pub fn error(status: StatusCode, why: impl Into<String>) -> Reply {
        let why: String = why
            .into()
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let mut reply = Reply::new(status);
        reply.body = format!("{why}\r\n").into_bytes();
        reply.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        reply.reason = Some(why);
        reply
    }

    /// A `400` naming the problem.
    pub fn bad_request(why: impl Into<String>) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, why)
    }

    /// An XML answer.
    pub fn xml(status: StatusCode, body: Vec<u8>) -> Reply {
        let mut reply = Reply::new(status);
        reply
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        reply.body = body;
        reply
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: &str) -> Reply {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    fn into_response(self) -> http::Response<Full<Bytes>> {
        let mut response = http::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        let reason = self
            .reason
            .unwrap_or_else(|| rvp_reason(self.status).to_string());
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
            response.extensions_mut().insert(phrase);
        }
        response
    }
}

/// A request as the methods see it.
#[derive(Clone, Debug)]
pub struct Req {
    /// The method.
    pub method: Method,
    /// The node it is for.
    pub target: NodeUrl,
    /// The request target as sent (for Digest's `uri`).
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The hop count it arrived with (1 when absent).
    pub hop: HopCount,
}

/// Who sent a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Its principal URL or server name.
    pub url: String,
    /// The account, for a principal.
    pub address: Option<Address>,
    /// How it proved it.
    pub proof: Proof,
    /// For a request from a peer server, the peer's domain.
    pub peer: Option<String>,
}

/// Where a connection came from.
#[derive(Clone, Debug)]
enum Origin {
    Client,
    Peer(Arc<Vec<CertificateDer<'static>>>),
}

/// Accepts RVP client connections until shutdown.
pub async fn serve_clients(state: State, listener: TcpListener) {
    accept(state, listener, false).await;
}

/// Accepts RVP server connections (mutual TLS) until shutdown.
pub async fn serve_peers(state: State, listener: TcpListener) {
    accept(state, listener, true).await;
}

async fn accept(state: State, listener: TcpListener, peers: bool) {
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    warn!(%error, "rvp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = state.shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let task_state = state.clone();
        if peers {
            state.tasks.spawn(
                async move {
                    let handshake = task_state.tls.rvp_acceptor.accept(stream);
                    let tls = match tokio::time::timeout(HANDSHAKE_BOUND, handshake).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            debug!(%error, "rvp s2s TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let certs = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let id = task_state.tap.open_with(
                        TapProtocol::Rvp,
                        TapDirection::In,
                        Some(addr.to_string()),
                    );
                    let io = super::client::Tapped::new(tls, task_state.tap.clone(), id);
                    connection(task_state, io, Origin::Peer(Arc::new(certs))).await;
                }
                .instrument(info_span!("rvp-s2s-in", peer = %addr)),
            );
        } else {
            state.tasks.spawn(
                connection(task_state, stream, Origin::Client)
                    .instrument(info_span!("rvp-c2s", peer = %addr)),
            );
        }
    }
}

async fn connection<S>(state: State, io: S, origin: Origin)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |request| {
        let state = service_state.clone();
        let origin = origin.clone();
        async move { Ok::<_, Infallible>(handle(state, origin, request).await.into_response()) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .title_case_headers(true)
        .timer(TokioTimer::new())
        .header_read_timeout(READ_BOUND)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                debug!(%error, "rvp connection ended");
            }
        }
        () = state.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

/// The node a request is for: an absolute-form target, or the path on the `Host`'s domain
/// (a loopback or IP `Host` means this server's first domain).
fn target_of(state: &State, request: &http::Request<Incoming>) -> Result<NodeUrl, String> {
    let uri = request.uri();
    if uri.scheme().is_some() {
        return NodeUrl::parse(&uri.to_string()).map_err(|e| format!("request target: {e}"));
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("missing Host header")?;
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let name = if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[') {
        state.config.domains.first().map_or(name, String::as_str)
    } else {
        name
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    NodeUrl::parse(&format!("http://{name}{path}")).map_err(|e| format!("request target: {e}"))
}

async fn handle(state: State, origin: Origin, request: http::Request<Incoming>) -> Reply {
    let method: Method = match request.method().as_str().parse() {
        Ok(method) => method,
        Err(error) => return Reply::bad_request(format!("{error}")),
    };
    let target = target_of(&state, &request);
    if let Some(status) = method.rejection() {
        let owner = target
            .as_ref()
            .ok()
            .and_then(|t| Some(Address::new(t.alias()?, t.host())));
        if state.rvp_fault(Switch::RvpAcceptOtherMethods, &Vec::from_iter(owner), None) {
            return Reply::new(StatusCode::OK);
        }
        return Reply::error(status, format!("{method} is not an RVP method (RVP 5.8)"));
    }
    let target = match target {
        Ok(target) => target,
        Err(why) => return Reply::bad_request(why),
    };
    let uri = request.uri().to_string();
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(READ_BOUND, Limited::new(body, MAX_BODY).collect()).await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) => return Reply::bad_request(format!("body: {error}")),
        Err(_) => return Reply::error(StatusCode::REQUEST_TIMEOUT, "body not received in time"),
    };
    let headers = parts.headers;
    match headers.typed::<NotificationsVersion>() {
        Ok(Some(_)) => {}
        Ok(None) => return Reply::bad_request("missing RVP-Notifications-Version header"),
        Err(error) => return Reply::bad_request(error.to_string()),
    }
    let hop = match headers.typed::<HopCount>() {
        Ok(hop) => hop
            .or(HopCount::new(1))
            .unwrap_or_else(|| HopCount::new(1).expect("1")),
        Err(error) => return Reply::bad_request(error.to_string()),
    };
    let from = match headers.typed::<FromPrincipal>() {
        Ok(from) => from,
        Err(error) => return Reply::bad_request(error.to_string()),
    };
    let req = Req {
        method,
        target,
        uri,
        headers,
        body,
        hop,
    };
    let caller = match &origin {
        Origin::Client => match authenticate(&state, &parts.method, &req, from.as_ref()) {
            Ok(caller) => caller,
            Err(reply) => return reply,
        },
        Origin::Peer(certs) => match vouch(&state, certs, from.as_ref()) {
            Ok(caller) => caller,
            Err(reply) => return reply,
        },
    };
    debug!(method = %req.method, target = %req.target, caller = %caller.url, "rvp request");
    if !state.hosts(req.target.host()) {
        return super::client::forward(&state, &caller, &req).await;
    }
    super::methods::handle(&state, &caller, &req).await
}

/// Checks the Digest credentials of a client request (PROFILE.md §2).
fn authenticate(
    state: &State,
    method: &http::Method,
    req: &Req,
    from: Option<&FromPrincipal>,
) -> Result<Caller, Reply> {
    let hinted = |domain: &str| state.hosts(domain).then(|| domain.to_string());
    let realm = match from {
        Some(FromPrincipal::Node(url)) => hinted(url.host()),
        _ => None,
    }
    .or_else(|| hinted(req.target.host()))
    .or_else(|| state.config.domains.first().cloned())
    .unwrap_or_default();
    let challenge = |why: &str| {
        Reply::error(StatusCode::UNAUTHORIZED, format!("Access denied: {why}")).with(
            "WWW-Authenticate",
            &digest::Challenge::new(&realm, &state.rvp.nonce).to_string(),
        )
    };
    let Some(header) = req.headers.get(header::AUTHORIZATION) else {
        return Err(challenge("credentials required"));
    };
    let text = header
        .to_str()
        .map_err(|_| challenge("Authorization is not ASCII"))?;
    let credentials =
        digest::Credentials::parse(text).map_err(|error| challenge(&error.to_string()))?;
    let user = Address::new(
        credentials.username.to_ascii_lowercase(),
        credentials.realm.to_ascii_lowercase(),
    );
    let password = state
        .core()
        .credentials(&user)
        .map(|(password, _)| password)
        .ok_or_else(|| challenge("unknown user"))?;
    if !credentials.verify(method.as_str(), &password, &state.rvp.nonce)
        && !state.rvp_fault(
            Switch::RvpAcceptWrongDigest,
            std::slice::from_ref(&user),
            None,
        )
    {
        return Err(challenge("wrong credentials"));
    }
    let url = crate::state::Shared::principal_url(&user)
        .ok_or_else(|| Reply::bad_request("user name is not a valid RVP alias"))?;
    match from {
        Some(FromPrincipal::Node(from)) if *from != url => Err(Reply::error(
            StatusCode::FORBIDDEN,
            "RVP-From-Principal is not the authenticated user",
        )),
        Some(FromPrincipal::Server(_)) => Err(Reply::error(
            StatusCode::FORBIDDEN,
            "RVP-From-Principal is not the authenticated user",
        )),
        _ => Ok(Caller {
            url: url.to_string(),
            address: Some(user),
            proof: Proof::Digest,
            peer: None,
        }),
    }
}

/// Checks that a peer server's certificate covers the request's RVP-From-Principal
/// (PROFILE.md §6).
fn vouch(
    state: &State,
    certs: &[CertificateDer<'static>],
    from: Option<&FromPrincipal>,
) -> Result<Caller, Reply> {
    let Some(from) = from else {
        return Err(Reply::bad_request("missing RVP-From-Principal header"));
    };
    let (domain, address) = match from {
        FromPrincipal::Node(url) => (
            url.host().to_string(),
            url.alias().map(|user| Address::new(user, url.host())),
        ),
        FromPrincipal::Server(name) => (name.as_str().to_ascii_lowercase(), None),
    };
    let covered = certs
        .first()
        .is_some_and(|cert| crate::tls::certificate_names(cert, &domain));
    if !covered && !state.rvp_fault(Switch::RvpAcceptUnauthenticatedPeer, &[], Some(&domain)) {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            format!("peer certificate does not name {domain}"),
        ));
    }
    Ok(Caller {
        url: match from {
            FromPrincipal::Node(url) => url.to_string(),
            FromPrincipal::Server(name) => name.to_string(),
        },
        address,
        proof: Proof::Assertion,
        peer: Some(domain),
    })
}
