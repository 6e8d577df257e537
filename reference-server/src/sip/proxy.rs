//! What the home server does with a request (RFC 3261 §16, `protocols/sip/PROFILE.md`): check
//! it (§16.3), process its Route (§16.4), then answer it itself (registrar, presence agent,
//! OPTIONS to the server), forward it to a hosted user's contacts, or forward it to another
//! domain's server found by static route or RFC 3263 (§16.5-§16.7). Digest checks (§22)
//! are here too.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use imfed_sip::codec::validate_request;
use imfed_sip::digest::{Challenge, Credentials};
use imfed_sip::transaction::new_branch;
use imfed_sip::{Method, NameAddr, Request, Response, Uri, Via};
use tracing::debug;

use super::transport::{Dest, Transport};
use super::{Context, Outcome, respond};
use crate::core::Address;
use crate::faults::Switch;
use crate::state::State;

/// `Max-Forwards` added to a request that has none (§16.6 step 3).
const DEFAULT_MAX_FORWARDS: u32 = 70;
/// Above this size a request to another server goes over TCP (RFC 3261 §18.1.1).
const UDP_LIMIT: usize = 1300;
/// The methods this server handles or forwards (for `Allow`).
pub const ALLOW: &str = "REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH, OPTIONS";

/// Handles one request.
pub async fn handle(state: &State, mut request: Request, context: Context) {
    let involved = crate::state::Shared::sip_involved(&request);
    if let Err(error) = validate_request(&request) {
        if !state.sip_fault(Switch::SipLenientRequests, &involved, None) {
            let (status, reason) = error.status();
            answer(state, &context, &request, status, Some(&reason)).await;
            return;
        }
        if request.call_id().is_none() || request.cseq().is_err() || request.top_via().is_err() {
            // Even a lenient server cannot route what has no transaction identity.
            return;
        }
    }
    match request.method {
        // No INVITE transactions here, so nothing to acknowledge or cancel (§9.2: CANCEL of
        // a non-INVITE has no effect).
        Method::Ack => return,
        Method::Cancel => {
            answer(state, &context, &request, 481, None).await;
            return;
        }
        Method::Invite => {
            answer(
                state,
                &context,
                &request,
                501,
                Some("INVITE is not supported by this IM and presence server"),
            )
            .await;
            return;
        }
        _ => {}
    }
    // §16.3 step 3 comes before the proxy's authorization (step 6): a request that may not
    // travel further is refused first. OPTIONS may be answered by its last hop instead.
    if request.max_forwards() == Some(0)
        && request.method != Method::Options
        && !state.sip_fault(Switch::SipIgnoreMaxForwards, &involved, None)
    {
        answer(state, &context, &request, 483, None).await;
        return;
    }
    pop_own_route(state, &mut request);
    // An in-dialog request for this server's presence agent (RFC 6665 §4.2.1.1 refresh or
    // unsubscribe). One for another domain's notifier still has a route to travel, or a
    // Request-URI elsewhere: the watcher's server proxies it like any other (§16.12).
    if request.method == Method::Subscribe
        && let Some(tag) = to_tag(&request)
        && for_presence_agent(state, &request, &tag)
    {
        super::presence::resubscribe(state, request, context, &tag).await;
        return;
    }
    if let Some(next) = request
        .routes()
        .ok()
        .and_then(|routes| routes.into_iter().next())
    {
        // Loose routing (§16.12): on to the next hop of the route set.
        match uri_dest(&next.uri) {
            Some(dest) => {
                if authenticate_sender(state, &request, &context)
                    .await
                    .is_err()
                {
                    return;
                }
                let peer = !state.sip_is_contact(dest);
                forward(state, request, context, vec![(None, dest)], peer, None).await;
            }
            None => {
                answer(
                    state,
                    &context,
                    &request,
                    416,
                    Some("Route is not a SIP URI with an IP address"),
                )
                .await
            }
        }
        return;
    }
    let target = request.uri.clone();
    let host = target.host.to_ascii_lowercase();
    let to_us = state.sip_hosts(&host) || is_own_address(state, &target);
    match (&target.user, to_us) {
        (None, true) => handle_for_server(state, request, context).await,
        (Some(user), true) if state.sip_hosts(&host) => {
            let aor = Address::new(user.clone(), host);
            handle_for_user(state, request, context, aor).await;
        }
        (Some(_), true) => {
            // A user part at this server's own address: a dialog target of the presence
            // agent's, for a dialog it no longer has.
            answer(state, &context, &request, 481, None).await;
        }
        (_, false) => {
            if let Some(dest) = uri_dest(&target) {
                // A contact URI (where in-dialog requests end up after the route set).
                if authenticate_sender(state, &request, &context)
                    .await
                    .is_err()
                {
                    return;
                }
                let peer = !state.sip_is_contact(dest);
                forward(state, request, context, vec![(None, dest)], peer, None).await;
            } else {
                to_other_domain(state, request, context, &host).await;
            }
        }
    }
}

/// A request for the server itself (no user part).
async fn handle_for_server(state: &State, request: Request, context: Context) {
    match request.method {
        Method::Register => super::registrar::register(state, request, context).await,
        Method::Options => {
            let mut response = Response::to(&request, 200, None, Some(&local_tag()));
            response.headers.push("Allow", ALLOW);
            response
                .headers
                .push("Accept", "text/plain, application/pidf+xml");
            respond(state, &context, response).await;
        }
        _ => {
            answer(
                state,
                &context,
                &request,
                404,
                Some("No user in the Request-URI"),
            )
            .await;
        }
    }
}

/// A request for a hosted address-of-record.
async fn handle_for_user(state: &State, request: Request, context: Context, aor: Address) {
    match request.method {
        Method::Register => super::registrar::register(state, request, context).await,
        Method::Publish => super::presence::publish(state, request, context, aor).await,
        Method::Subscribe => super::presence::subscribe(state, request, context, aor).await,
        _ => deliver_local(state, request, context, aor).await,
    }
}

/// MESSAGE (RFC 3428 §7), OPTIONS and other requests for a hosted user: to every contact.
async fn deliver_local(state: &State, request: Request, context: Context, aor: Address) {
    if authenticate_sender(state, &request, &context)
        .await
        .is_err()
    {
        return;
    }
    if request.method == Method::Message {
        let limit = state.config.sip_max_message_body;
        if request.body.len() > limit
            && !state.sip_fault(
                Switch::SipAcceptOversizedMessage,
                std::slice::from_ref(&aor),
                None,
            )
        {
            let reason = format!("Request Entity Too Large (MESSAGE body over {limit} bytes)");
            answer(state, &context, &request, 413, Some(&reason)).await;
            return;
        }
    }
    if !state.core().exists(&aor) {
        let status = not_found_status(state, &request);
        answer(state, &context, &request, status, None).await;
        return;
    }
    let contacts = state.sip_contacts(&aor);
    if contacts.is_empty() {
        if request.method == Method::Message
            && state.sip_fault(
                Switch::SipAcceptOfflineMessage,
                std::slice::from_ref(&aor),
                None,
            )
        {
            answer(state, &context, &request, 200, None).await;
            return;
        }
        answer(state, &context, &request, 480, None).await;
        return;
    }
    let targets = contacts
        .into_iter()
        .map(|binding| (Some(binding.contact), binding.dest))
        .collect();
    forward(state, request, context, targets, false, None).await;
}

/// The answer for a user that does not exist on a hosted domain: 404 (§16.5, §21.4.5), or 480 with
/// the `sip_unknown_user_as_offline` fault.
pub fn not_found_status(state: &State, request: &Request) -> u16 {
    let involved = crate::state::Shared::sip_involved(request);
    if state.sip_fault(Switch::SipUnknownUserAsOffline, &involved, None) {
        480
    } else {
        404
    }
}

/// A request for another domain: to its server (PROFILE.md §5).
async fn to_other_domain(state: &State, request: Request, context: Context, domain: &str) {
    if request.method == Method::Register {
        answer(
            state,
            &context,
            &request,
            403,
            Some("Not a domain of this registrar"),
        )
        .await;
        return;
    }
    if authenticate_sender(state, &request, &context)
        .await
        .is_err()
    {
        return;
    }
    let dest = match state.sip.route(domain) {
        Some(route) => route.dest(),
        None => match lookup(state, domain).await {
            Ok(dest) => dest,
            Err(reason) => {
                answer(state, &context, &request, 604, Some(&reason)).await;
                return;
            }
        },
    };
    let record_route = (request.method == Method::Subscribe).then_some(dest.transport);
    forward(
        state,
        request,
        context,
        vec![(None, dest)],
        true,
        record_route,
    )
    .await;
}

/// RFC 3263 §4 without NAPTR, when `dns_fallback` is on: SRV `_sip._udp`, then the domain's
/// addresses on 5060, over UDP (PROFILE.md §5).
async fn lookup(state: &State, domain: &str) -> Result<Dest, String> {
    if !state.config.dns_fallback {
        return Err(format!("Does Not Exist Anywhere (no route to {domain})"));
    }
    let bound = Duration::from_millis(state.config.s2s_timeout_ms);
    match crate::dns::lookup("_sip._udp", domain, 5060, state.config.dns_server, bound).await {
        Ok(addrs) => addrs
            .into_iter()
            .next()
            .map(|addr| Dest {
                addr,
                transport: Transport::Udp,
            })
            .ok_or_else(|| format!("Does Not Exist Anywhere (no address for {domain})")),
        Err(error) => Err(format!("Does Not Exist Anywhere ({error})")),
    }
}

/// Forwards `request` (§16.6) to each target (a new Request-URI, or `None` to keep it) and
/// relays the best final response (§16.7). `peer` says whether the targets are another
/// domain's server; `record_route` adds this server to the route set (§16.6 step 4) with
/// that transport.
pub async fn forward(
    state: &State,
    mut request: Request,
    context: Context,
    targets: Vec<(Option<Uri>, Dest)>,
    peer: bool,
    record_route: Option<Transport>,
) {
    let involved = crate::state::Shared::sip_involved(&request);
    let ignore_max_forwards = state.sip_fault(Switch::SipIgnoreMaxForwards, &involved, None);
    let max_forwards = request.max_forwards().unwrap_or(DEFAULT_MAX_FORWARDS);
    if max_forwards == 0 && !ignore_max_forwards {
        answer(state, &context, &request, 483, None).await;
        return;
    }
    let hash = loop_hash(&request);
    if is_loop(state, &request, &hash)
        && !state.sip_fault(Switch::SipNoLoopDetection, &involved, None)
    {
        answer(state, &context, &request, 482, None).await;
        return;
    }
    let next = if ignore_max_forwards {
        max_forwards
    } else {
        max_forwards - 1
    };
    request.headers.set("Max-Forwards", next.to_string());
    if let Some(transport) = record_route {
        let local = state.sip_local();
        let mut uri = Uri::new(None, &local.ip().to_string())
            .with_port(local.port())
            .with_param("lr", None);
        if transport == Transport::Tcp {
            uri = uri.with_param("transport", Some("tcp"));
        }
        if !state.sip_fault(Switch::SipNoRecordRoute, &involved, None) {
            request
                .headers
                .prepend("Record-Route", NameAddr::new(uri).to_string());
        }
    }
    let mut branches = Vec::new();
    for (index, (uri, mut dest)) in targets.into_iter().enumerate() {
        let mut copy = request.clone();
        if let Some(uri) = uri {
            copy.uri = uri;
        }
        let local = state.sip_local();
        let branch = new_branch(&format!("{hash}.{index}{}", crate::xmpp::random_id(6)));
        let via = |transport: Transport| {
            Via::new(
                transport.via_name(),
                &local.ip().to_string(),
                local.port(),
                &branch,
            )
        };
        // §18.1.1: a request over 1300 bytes (path MTU unknown) goes over a congestion
        // controlled transport. Another domain's server listens on TCP at the same port
        // (PROFILE.md §1); a user agent's Contact says how it can be reached, so it keeps
        // its transport (loopback carries the datagram whole).
        let size =
            copy.to_bytes().len() + "Via: \r\n".len() + via(dest.transport).to_string().len();
        if peer && dest.transport == Transport::Udp && size > UDP_LIMIT {
            dest.transport = Transport::Tcp;
        }
        let via = via(dest.transport);
        copy.headers.prepend("Via", via.to_string());
        let task_state = state.clone();
        branches.push(tokio::spawn(async move {
            super::request(&task_state, copy, dest, peer).await
        }));
    }
    let mut best: Option<Response> = None;
    for branch in branches {
        let outcome = branch.await.unwrap_or(Outcome::Timeout);
        let response = match outcome {
            Outcome::Final(response) => response,
            Outcome::Timeout => Response::to(&request, 408, None, None),
            Outcome::Transport(error) => {
                debug!(%error, "forwarding failed");
                let reason = format!("Service Unavailable (next hop unreachable: {error})");
                Response::to(&request, 503, Some(&reason), None)
            }
        };
        if response.is_success() {
            best = Some(response);
            break;
        }
        if best
            .as_ref()
            .is_none_or(|current| better(&response, current))
        {
            best = Some(response);
        }
    }
    let Some(mut response) = best else { return };
    // A relayed response's top Via is this server's: strip it (§16.7 step 3). One made here
    // (408, 503) already carries only the request's Vias.
    if response
        .top_via()
        .is_ok_and(|via| via.sent_by() == state.sip_local().to_string())
    {
        response.headers.remove_first("Via");
    }
    respond(state, &context, response).await;
}

/// §16.7 step 6: a 6xx beats everything but a 2xx; otherwise the lowest class, and within it
/// the lowest code.
fn better(candidate: &Response, current: &Response) -> bool {
    let rank = |status: u16| match status / 100 {
        6 => 0,
        class => class,
    };
    (rank(candidate.status), candidate.status) < (rank(current.status), current.status)
}

/// The loop-detection part of a branch (§16.6 step 8): what identifies the request
/// independently of this hop.
fn loop_hash(request: &Request) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.uri.to_string().hash(&mut hasher);
    request.call_id().hash(&mut hasher);
    request.cseq().map(|c| c.seq).ok().hash(&mut hasher);
    request
        .from()
        .ok()
        .and_then(|f| f.tag().map(str::to_string))
        .hash(&mut hasher);
    request
        .to()
        .ok()
        .and_then(|t| t.tag().map(str::to_string))
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// §16.3 step 4: one of this server's Vias already carries this request's loop hash.
fn is_loop(state: &State, request: &Request, hash: &str) -> bool {
    let own = state.sip_local().to_string();
    let prefix = format!("z9hG4bK{hash}.");
    request.vias().is_ok_and(|vias| {
        vias.iter()
            .any(|via| via.sent_by() == own && via.branch().is_some_and(|b| b.starts_with(&prefix)))
    })
}

/// Removes the top Route when it names this server (§16.4).
fn pop_own_route(state: &State, request: &mut Request) {
    let Ok(routes) = request.routes() else { return };
    if let Some(first) = routes.first()
        && (is_own_address(state, &first.uri)
            || (first.uri.user.is_none() && state.sip_hosts(&first.uri.host)))
    {
        request.headers.remove_first("Route");
    }
}

/// Whether `uri` is this server's address.
fn is_own_address(state: &State, uri: &Uri) -> bool {
    let local = state.sip_local();
    uri_ip(uri) == Some(local.ip()) && uri.port.unwrap_or(5060) == local.port()
}

fn uri_ip(uri: &Uri) -> Option<IpAddr> {
    uri.host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Where a URI with an IP address points, with its transport (§18, RFC 3263 §4.1-§4.2 for
/// numeric hosts).
pub fn uri_dest(uri: &Uri) -> Option<Dest> {
    let ip = uri_ip(uri)?;
    let transport = Transport::named(uri.transport()).ok()?;
    Some(Dest {
        addr: SocketAddr::new(ip, uri.port.unwrap_or(5060)),
        transport,
    })
}

/// Whether an in-dialog SUBSCRIBE (To tag `tag`) is for this server's presence agent: no
/// route left after this server's own, and a dialog of the agent's or a Request-URI at this
/// server (the agent's Contact, or a hosted AOR); else it is for another domain's notifier.
fn for_presence_agent(state: &State, request: &Request, tag: &str) -> bool {
    if request.routes().is_ok_and(|routes| !routes.is_empty()) {
        return false;
    }
    state.sip.lock().watches.contains_key(tag)
        || is_own_address(state, &request.uri)
        || state.sip_hosts(&request.uri.host)
}

/// The To tag of an in-dialog request.
fn to_tag(request: &Request) -> Option<String> {
    request
        .to()
        .ok()
        .and_then(|to| to.tag().map(str::to_string))
}

/// A fresh tag (§19.3: at least 32 bits of randomness).
pub fn local_tag() -> String {
    crate::xmpp::random_id(12)
}

/// Answers `request` with `status`.
pub async fn answer(
    state: &State,
    context: &Context,
    request: &Request,
    status: u16,
    reason: Option<&str>,
) {
    let tag = (status >= 200 && to_tag(request).is_none()).then(local_tag);
    let response = Response::to(request, status, reason, tag.as_deref());
    respond(state, context, response).await;
}

/// Which header a Digest challenge and its answer use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// A registrar's 401 (§22.2): `WWW-Authenticate` / `Authorization`.
    Registrar,
    /// A proxy's 407 (§22.3): `Proxy-Authenticate` / `Proxy-Authorization`.
    Proxy,
}

/// Checks the Digest credentials of a request from a hosted user (PROFILE.md §2): `Ok` with
/// the user when they are right, else the challenge (or 403) has been sent and `Err`.
pub async fn authenticate(
    state: &State,
    request: &Request,
    context: &Context,
    kind: AuthKind,
    claimed: &Address,
) -> Result<Address, ()> {
    let (header, status, challenge_header) = match kind {
        AuthKind::Registrar => ("Authorization", 401, "WWW-Authenticate"),
        AuthKind::Proxy => ("Proxy-Authorization", 407, "Proxy-Authenticate"),
    };
    let realm = claimed.domain.clone();
    let challenge = |why: &str| {
        let mut response = Response::to(request, status, None, Some(&local_tag()));
        response.headers.push(
            challenge_header,
            Challenge::new(&realm, &state.sip.nonce).to_string(),
        );
        debug!(why, "sip request challenged");
        response
    };
    let credentials = request
        .headers
        .get_all(header)
        .into_iter()
        .filter_map(|value| Credentials::parse(value).ok())
        .find(|credentials| credentials.realm.eq_ignore_ascii_case(&realm));
    let Some(credentials) = credentials else {
        respond(state, context, challenge("credentials required")).await;
        return Err(());
    };
    let user = Address::new(credentials.username.clone(), realm.clone());
    let password = state
        .core()
        .credentials(&user)
        .map(|(password, _)| password);
    let right = password.is_some_and(|password| {
        credentials.verify(request.method.as_str(), &password, &state.sip.nonce)
    });
    if !right
        && !state.sip_fault(
            Switch::SipAcceptWrongDigest,
            std::slice::from_ref(&user),
            None,
        )
    {
        respond(state, context, challenge("wrong credentials")).await;
        return Err(());
    }
    if user != *claimed {
        let reason = "Forbidden (From is not the authenticated user)";
        answer(state, context, request, 403, Some(reason)).await;
        return Err(());
    }
    Ok(user)
}

/// For a request whose `From` is a hosted user: its Digest check (407). Requests from
/// other domains are not challenged (PROFILE.md §2, §5).
pub async fn authenticate_sender(
    state: &State,
    request: &Request,
    context: &Context,
) -> Result<Option<Address>, ()> {
    let Ok(from) = request.from() else {
        answer(state, context, request, 400, Some("Bad From")).await;
        return Err(());
    };
    let host = from.uri.host.to_ascii_lowercase();
    if !state.sip_hosts(&host) {
        return Ok(None);
    }
    let Some(user) = from.uri.user.clone() else {
        answer(
            state,
            context,
            request,
            403,
            Some("Forbidden (From has no user)"),
        )
        .await;
        return Err(());
    };
    authenticate(
        state,
        request,
        context,
        AuthKind::Proxy,
        &Address::new(user, host),
    )
    .await
    .map(Some)
}
