//! Client-to-server streams (RFC 6120 §4–§7, RFC 6121 §2, §4): STARTTLS, SASL (SCRAM-SHA-1,
//! PLAIN), resource binding, the legacy session no-op, then the session loop.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use imfed_xmpp::sasl::{ScramCredentials, ScramServer, plain_parse};
use imfed_xmpp::stanza::{IqType, PresenceType, StanzaKind};
use imfed_xmpp::{
    Element, Jid, StanzaError, StanzaErrorCondition, StreamErrorCondition, StreamEvent,
    StreamHeader, ns,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::conn::{Conn, ConnError};
use super::outbox;
use super::router::{roster_item_element, subscription_action, target_of};
use super::{
    NEGOTIATION_STEP, QUEUE, SessionCommand, SessionHandle, Shared, State, address_of, jid_of,
    random_id,
};
use crate::config::TlsMode;
use crate::core::{Address, SubscriptionAction, Target};
use crate::faults::Switch;
use tokio_util::sync::CancellationToken;

/// SCRAM iteration count for credentials derived at authentication.
const SCRAM_ITERATIONS: u32 = 4096;
/// Failed authentication attempts allowed on one stream.
const AUTH_ATTEMPTS: u32 = 3;
/// A client that has not finished logging in by then is disconnected.
const LOGIN_BOUND: Duration = Duration::from_secs(30);

/// A bound client session.
#[derive(Debug, Clone)]
struct Session {
    jid: Jid,
    addr: Address,
    resource: String,
}

/// Serves one client connection until it ends.
pub async fn serve(state: State, tcp: TcpStream) {
    let mut conn = Conn::new(tcp, ns::CLIENT, state.xmpp.limits);
    let login = tokio::select! {
        login = tokio::time::timeout(LOGIN_BOUND, negotiate(&state, &mut conn)) => login,
        () = state.shutdown.cancelled() => Ok(Err(ConnError::protocol(
            StreamErrorCondition::SystemShutdown,
            "server shutting down",
        ))),
    };
    let session = match login {
        Ok(Ok(Some(session))) => session,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            debug!(%error, "client negotiation failed");
            match error.condition() {
                Some(condition) => conn.fail(condition, None).await,
                None => conn.close().await,
            }
            return;
        }
        Err(_) => {
            conn.fail(
                StreamErrorCondition::ConnectionTimeout,
                Some("login took too long"),
            )
            .await;
            return;
        }
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let kick = CancellationToken::new();
    state.xmpp.sessions.lock().expect("sessions lock").insert(
        (session.addr.clone(), session.resource.clone()),
        SessionHandle {
            tx,
            kick: kick.clone(),
        },
    );
    info!(jid = %session.jid, "client session bound");
    let outcome = run_session(&state, &mut conn, &session, rx, &kick).await;
    state
        .xmpp
        .sessions
        .lock()
        .expect("sessions lock")
        .remove(&(session.addr.clone(), session.resource.clone()));
    // RFC 6121 §4.5.3.2: an ended session is unavailable, gracefully or not.
    state
        .dispatch(|state| {
            let effects =
                state
                    .core()
                    .set_unavailable(&session.addr, &session.resource, None, true);
            if !state.fault_for_account(Switch::NoUnavailableOnDisconnect, &session.addr) {
                state.apply(effects, None);
            }
        })
        .await;
    match outcome {
        Ok(()) => conn.close().await,
        Err(error) => {
            debug!(jid = %session.jid, %error, "client session ended");
            match error.condition() {
                Some(condition) => conn.fail(condition, None).await,
                None => conn.close().await,
            }
        }
    }
}

/// Stream negotiation up to a bound resource. `None` when the client went away cleanly.
async fn negotiate(state: &State, conn: &mut Conn) -> Result<Option<Session>, ConnError> {
    let mut authenticated: Option<Address> = None;
    let mut attempts = 0;
    loop {
        // A (re)started stream: header, then features (RFC 6120 §4.3).
        let header = match conn.next_event().await? {
            StreamEvent::Header(header) => header,
            StreamEvent::End => return Ok(None),
            StreamEvent::Element(_) => {
                return Err(ConnError::protocol(
                    StreamErrorCondition::NotWellFormed,
                    "expected a stream header",
                ));
            }
        };
        let domain = open_stream(state, conn, &header).await?;
        if let Some(user) = &authenticated {
            conn.send(&bind_features()).await?;
            return bind(state, conn, user.clone()).await.map(Some);
        }
        let tls_offered = state.config.c2s_tls != TlsMode::Off && !conn.secure;
        let tls_required = state.config.c2s_tls == TlsMode::Required && !conn.secure;
        let mut features = Element::new("features", ns::STREAM);
        if tls_offered {
            let mut starttls = Element::new("starttls", ns::TLS);
            if tls_required {
                starttls = starttls.with_child(Element::new("required", ns::TLS));
            }
            features = features.with_child(starttls);
        }
        if !tls_required {
            features = features.with_child(mechanisms(state, conn.secure));
        }
        conn.send(&features).await?;
        // Negotiate until the stream restarts.
        loop {
            let element = conn
                .next_element_within(NEGOTIATION_STEP, "client negotiation")
                .await?;
            if element.is("starttls", ns::TLS) && tls_offered {
                conn.send(&Element::new("proceed", ns::TLS)).await?;
                conn.accept_tls(&state.tls.acceptor, NEGOTIATION_STEP)
                    .await?;
                break;
            }
            if element.is("auth", ns::SASL) && !tls_required {
                match authenticate(state, conn, &domain, &element).await? {
                    Some((user, additional)) => {
                        let mut success = Element::new("success", ns::SASL);
                        if !additional.is_empty() {
                            // RFC 6120 §6.4.6: SCRAM's server-final message rides on success.
                            success = success.with_text(B64.encode(additional));
                        }
                        conn.send(&success).await?;
                        conn.restart();
                        authenticated = Some(user);
                        break;
                    }
                    None => {
                        attempts += 1;
                        if attempts >= AUTH_ATTEMPTS {
                            return Err(ConnError::protocol(
                                StreamErrorCondition::PolicyViolation,
                                "too many failed authentication attempts",
                            ));
                        }
                    }
                }
                continue;
            }
            return Err(ConnError::protocol(
                StreamErrorCondition::NotAuthorized,
                format!("unexpected <{}/> before authentication", element.name),
            ));
        }
    }
}

/// Answers a client's stream header (RFC 6120 §4.7); returns the domain it asked for.
async fn open_stream(
    state: &State,
    conn: &mut Conn,
    header: &StreamHeader,
) -> Result<String, ConnError> {
    let domain = header.to.clone().unwrap_or_default();
    let reply = StreamHeader {
        from: Some(domain.clone()),
        to: None,
        id: Some(random_id(16)),
        version: Some("1.0".into()),
        lang: Some("en".into()),
        content_ns: ns::CLIENT.into(),
        dialback: false,
    };
    conn.send_header(&reply).await?;
    if header.content_ns != ns::CLIENT {
        return Err(ConnError::protocol(
            StreamErrorCondition::InvalidNamespace,
            "client streams use jabber:client",
        ));
    }
    if !state.hosts(&domain) {
        return Err(ConnError::protocol(
            StreamErrorCondition::HostUnknown,
            format!("{domain:?} is not hosted here"),
        ));
    }
    if header
        .version
        .as_deref()
        .is_none_or(|v| !v.starts_with("1."))
    {
        return Err(ConnError::protocol(
            StreamErrorCondition::UnsupportedVersion,
            "XMPP 1.0 streams only",
        ));
    }
    Ok(domain)
}

fn mechanisms(state: &State, secure: bool) -> Element {
    let mut mechanisms = Element::new("mechanisms", ns::SASL)
        .with_child(Element::new("mechanism", ns::SASL).with_text("SCRAM-SHA-1"));
    if secure || state.config.allow_plain_without_tls {
        mechanisms = mechanisms.with_child(Element::new("mechanism", ns::SASL).with_text("PLAIN"));
    }
    mechanisms
}

fn bind_features() -> Element {
    Element::new("features", ns::STREAM)
        .with_child(Element::new("bind", ns::BIND))
        .with_child(
            Element::new("session", ns::SESSION).with_child(Element::new("optional", ns::SESSION)),
        )
}

fn sasl_failure(condition: &str) -> Element {
    Element::new("failure", ns::SASL).with_child(Element::new(condition, ns::SASL))
}

fn decode_b64(element: &Element) -> Option<Vec<u8>> {
    let text = element.text();
    let text = text.trim();
    if text == "=" {
        return Some(Vec::new());
    }
    B64.decode(text).ok()
}

/// One SASL exchange (RFC 6120 §6.4): the user and the additional data for `<success/>`, or
/// `Ok(None)` after a `<failure/>` was sent.
async fn authenticate(
    state: &State,
    conn: &mut Conn,
    domain: &str,
    auth: &Element,
) -> Result<Option<(Address, Vec<u8>)>, ConnError> {
    let mechanism = auth.attr("mechanism").unwrap_or_default();
    let Some(initial) = decode_b64(auth) else {
        conn.send(&sasl_failure("incorrect-encoding")).await?;
        return Ok(None);
    };
    match mechanism {
        "PLAIN" if conn.secure || state.config.allow_plain_without_tls => {
            let creds = match plain_parse(&initial) {
                Ok(creds) => creds,
                Err(error) => {
                    conn.send(&sasl_failure(error.condition())).await?;
                    return Ok(None);
                }
            };
            let user = Jid::new(Some(&creds.authcid), domain, None)
                .ok()
                .and_then(|jid| address_of(&jid));
            let valid = user.as_ref().is_some_and(|user| {
                state
                    .core()
                    .credentials(user)
                    .is_some_and(|(password, _)| password == creds.password)
            });
            // RFC 4616 §2: an authorization identity other than the user's own is refused.
            let authzid_ok = creds.authzid.as_deref().is_none_or(|authzid| {
                authzid.is_empty() || user.as_ref().is_some_and(|u| u.to_string() == authzid)
            });
            if valid && authzid_ok {
                return Ok(user.map(|user| (user, Vec::new())));
            }
            conn.send(&sasl_failure("not-authorized")).await?;
            Ok(None)
        }
        "SCRAM-SHA-1" => {
            let mut server = ScramServer::new(&random_id(24));
            let username = match server.client_first(&initial) {
                Ok(username) => username,
                Err(error) => {
                    conn.send(&sasl_failure(error.condition())).await?;
                    return Ok(None);
                }
            };
            let user = Jid::new(Some(&username), domain, None)
                .ok()
                .and_then(|jid| address_of(&jid));
            let stored = user
                .as_ref()
                .and_then(|user| state.core().credentials(user));
            // Unknown users get a full exchange with throwaway credentials, so the
            // failure comes at the same step as a wrong password.
            let (password, salt) = stored
                .clone()
                .unwrap_or_else(|| (random_id(32), rand::random()));
            let credentials = ScramCredentials::derive(&password, &salt, SCRAM_ITERATIONS)
                .map_err(|error| {
                    ConnError::protocol(
                        StreamErrorCondition::InternalServerError,
                        error.to_string(),
                    )
                })?;
            let first = match server.server_first(&credentials) {
                Ok(first) => first,
                Err(error) => {
                    conn.send(&sasl_failure(error.condition())).await?;
                    return Ok(None);
                }
            };
            conn.send(&Element::new("challenge", ns::SASL).with_text(B64.encode(first)))
                .await?;
            let response = conn
                .next_element_within(NEGOTIATION_STEP, "SASL response")
                .await?;
            if response.is("abort", ns::SASL) {
                conn.send(&sasl_failure("aborted")).await?;
                return Ok(None);
            }
            if !response.is("response", ns::SASL) {
                return Err(ConnError::protocol(
                    StreamErrorCondition::NotAuthorized,
                    "expected a SASL response",
                ));
            }
            let Some(final_message) = decode_b64(&response) else {
                conn.send(&sasl_failure("incorrect-encoding")).await?;
                return Ok(None);
            };
            match server.client_final(&final_message) {
                Ok(server_final) if stored.is_some() => Ok(user.map(|user| (user, server_final))),
                Ok(_) | Err(_) => {
                    conn.send(&sasl_failure("not-authorized")).await?;
                    Ok(None)
                }
            }
        }
        _ => {
            conn.send(&sasl_failure("invalid-mechanism")).await?;
            Ok(None)
        }
    }
}

/// Resource binding (RFC 6120 §7) and the optional legacy session (RFC 6121 Appendix E).
async fn bind(state: &State, conn: &mut Conn, user: Address) -> Result<Session, ConnError> {
    loop {
        let iq = conn
            .next_element_within(NEGOTIATION_STEP, "resource binding")
            .await?;
        if StanzaKind::of(&iq) != Some(StanzaKind::Iq) {
            return Err(ConnError::protocol(
                StreamErrorCondition::NotAuthorized,
                "only resource binding is allowed before a resource is bound",
            ));
        }
        let Some(request) = iq.child("bind", ns::BIND) else {
            let reply = if iq.child("session", ns::SESSION).is_some() {
                iq_result(&iq, None)
            } else {
                error_of(&iq, StanzaErrorCondition::NotAuthorized)
            };
            conn.send(&reply).await?;
            continue;
        };
        let requested = request
            .child_text("resource", ns::BIND)
            .filter(|resource| !resource.trim().is_empty());
        let resource = requested.clone().unwrap_or_else(|| random_id(12));
        let Ok(jid) = Jid::new(Some(&user.user), &user.domain, Some(&resource)) else {
            conn.send(&error_of(&iq, StanzaErrorCondition::BadRequest))
                .await?;
            continue;
        };
        let resource = jid.resource().unwrap_or_default().to_string();
        // RFC 6120 §7.7.2.2: a resource in use is refused with <conflict/> (option 2).
        if !state.core().connect(&user, &resource) {
            conn.send(&error_of(&iq, StanzaErrorCondition::Conflict))
                .await?;
            continue;
        }
        let reply = iq_result(
            &iq,
            Some(
                Element::new("bind", ns::BIND)
                    .with_child(Element::new("jid", ns::BIND).with_text(jid.to_string())),
            ),
        );
        if let Err(error) = conn.send(&reply).await {
            state.core().set_unavailable(&user, &resource, None, true);
            return Err(error);
        }
        return Ok(Session {
            jid,
            addr: user,
            resource,
        });
    }
}

fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut reply = Element::new("iq", ns::CLIENT)
        .with_attr("type", "result")
        .with_opt_attr("id", iq.attr("id"));
    if let Some(payload) = payload {
        reply = reply.with_child(payload);
    }
    reply
}

fn error_of(stanza: &Element, condition: StanzaErrorCondition) -> Element {
    let mut reply = imfed_xmpp::errors::error_reply(stanza, &StanzaError::new(condition));
    // Replies on the client's own stream need no addressing.
    reply.remove_attr("from");
    reply.remove_attr("to");
    reply
}

/// How long a client may stay quiet before [`Switch::DropIdleClients`] closes its stream.
const IDLE_DROP: Duration = Duration::from_millis(400);
/// How many stanzas a client may send before [`Switch::StallClients`] stops reading.
const STALL_AFTER: u32 = 2;

async fn run_session(
    state: &State,
    conn: &mut Conn,
    session: &Session,
    mut rx: mpsc::Receiver<SessionCommand>,
    kick: &CancellationToken,
) -> Result<(), ConnError> {
    let drops_idle = state.fault_for_account(Switch::DropIdleClients, &session.addr);
    let stalls = state.fault_for_account(Switch::StallClients, &session.addr);
    let mut handled = 0u32;
    let idle = tokio::time::sleep(IDLE_DROP);
    tokio::pin!(idle);
    loop {
        // The misbehaviour of a stalled server: it no longer reads the client's stream.
        let reading = !(stalls && handled >= STALL_AFTER);
        tokio::select! {
            () = &mut idle, if drops_idle => {
                debug!(jid = %session.jid, "closing an idle client stream (misbehaviour)");
                return Ok(());
            }
            event = conn.next_event(), if reading => match event? {
                StreamEvent::Element(stanza) => {
                    handled += 1;
                    idle.as_mut().reset(tokio::time::Instant::now() + IDLE_DROP);
                    let reply = state.dispatch(|state| handle_stanza(state, session, stanza)).await?;
                    if let Some(reply) = reply {
                        conn.send(&reply).await?;
                    }
                }
                StreamEvent::End => return Ok(()),
                StreamEvent::Header(_) => {
                    return Err(ConnError::protocol(StreamErrorCondition::InvalidXml, "unexpected stream restart"));
                }
            },
            command = rx.recv() => match command {
                Some(SessionCommand::Stanza(stanza)) => conn.send(&stanza).await?,
                Some(SessionCommand::Close(condition)) => {
                    return Err(ConnError::protocol(condition, "closed by the server"));
                }
                None => return Ok(()),
            },
            () = kick.cancelled() => {
                return Err(ConnError::protocol(outbox::SESSION_FULL, "the client does not read its stanzas"));
            }
            () = state.shutdown.cancelled() => {
                return Err(ConnError::protocol(StreamErrorCondition::SystemShutdown, "server shutting down"));
            }
        }
    }
}

/// One stanza from a bound client (RFC 6120 §8.1.2.1: `from` is stamped by the server).
/// Returns the reply to write on the client's own stream, if any.
fn handle_stanza(
    state: &Shared,
    session: &Session,
    mut stanza: Element,
) -> Result<Option<Element>, ConnError> {
    let Some(kind) = StanzaKind::of(&stanza) else {
        // RFC 6120 §8: only the three stanza kinds are allowed at this level.
        return Err(ConnError::protocol(
            StreamErrorCondition::UnsupportedStanzaType,
            format!("<{}/> in {}", stanza.name, stanza.ns),
        ));
    };
    let to = match imfed_xmpp::stanza::to(&stanza) {
        Ok(to) => to,
        Err(_) => {
            stanza.remove_attr("to");
            return Ok(Some(error_of(&stanza, StanzaErrorCondition::JidMalformed)));
        }
    };
    let forged = stanza.attr("from").is_some()
        && state.fault_for_account(Switch::AcceptForgedFrom, &session.addr);
    if !forged {
        stanza.set_attr("from", session.jid.to_string());
    }
    if kind == StanzaKind::Message && state.fault_for_account(Switch::CrashMidRun, &session.addr) {
        warn!(jid = %session.jid, "shutting the whole server down (misbehaviour)");
        state.shutdown.cancel();
        return Ok(None);
    }
    match kind {
        StanzaKind::Presence => client_presence(state, session, stanza, to.as_ref()),
        StanzaKind::Message => match to {
            Some(_) => state.route(stanza),
            None => {
                // A message without 'to' is for the user's own bare JID (RFC 6120 §10.3.1).
                stanza.set_attr("to", session.jid.bare().to_string());
                state.route(stanza);
            }
        },
        StanzaKind::Iq => {
            let own = to
                .as_ref()
                .is_none_or(|to| to.is_bare() && *to == session.jid.bare());
            let server = to
                .as_ref()
                .is_some_and(|to| to.local().is_none() && state.hosts(to.domain()));
            if own || server {
                return Ok(client_iq(state, session, &stanza, own));
            }
            state.route(stanza);
        }
    }
    Ok(None)
}

fn client_presence(state: &Shared, session: &Session, mut stanza: Element, to: Option<&Jid>) {
    let Ok(ptype) = PresenceType::of(&stanza) else {
        return;
    };
    if let Some(mut action) = subscription_action(ptype) {
        // RFC 6121 §3.1.2: subscription stanzas go out from the bare JID, to a bare JID.
        let Some(contact) = to.and_then(address_of) else {
            return;
        };
        let denial = action == SubscriptionAction::Unsubscribed
            && state
                .core()
                .roster(&session.addr)
                .is_some_and(|roster| roster.state(&contact).pending_in());
        if denial && state.fault_for_account(Switch::DenyAsApprove, &session.addr) {
            action = SubscriptionAction::Subscribed;
            stanza.set_attr("type", "subscribed");
        }
        let effects = state
            .core()
            .outbound_subscription(&session.addr, &contact, action);
        if !state.fault_for_account(Switch::AcceptForgedFrom, &session.addr)
            || stanza.attr("from").is_none()
        {
            stanza.set_attr("from", session.jid.bare().to_string());
        }
        state.apply(effects, Some(&stanza));
        return;
    }
    match (ptype, to) {
        (PresenceType::Available, None) => {
            let priority = i32::from(imfed_xmpp::stanza::priority(&stanza));
            let leak = state.fault_for_account(Switch::PresenceToNonSubscribers, &session.addr);
            let copy = leak.then(|| stanza.clone());
            let effects =
                state
                    .core()
                    .set_available(&session.addr, &session.resource, stanza, priority);
            state.apply(effects, None);
            if let Some(copy) = copy {
                leak_presence(state, session, copy);
            }
        }
        (PresenceType::Unavailable, None) => {
            let effects =
                state
                    .core()
                    .set_unavailable(&session.addr, &session.resource, Some(stanza), false);
            state.apply(effects, None);
        }
        (PresenceType::Available | PresenceType::Unavailable, Some(to)) => {
            // RFC 6121 §4.6: directed presence.
            let target = target_of(to).unwrap_or_else(|| Target {
                addr: Address::new("", to.domain()),
                endpoint: None,
            });
            if to.local().is_some() {
                state.core().directed_presence(
                    &session.addr,
                    &session.resource,
                    &target,
                    ptype == PresenceType::Available,
                );
            }
            state.route(stanza);
        }
        // Clients do not send probes (RFC 6121 §4.3); errors are routed as they are.
        (PresenceType::Error, Some(_)) => state.route(stanza),
        _ => {}
    }
}

/// [`Switch::PresenceToNonSubscribers`]: the broadcast also goes to every roster contact
/// that has no subscription to the user's presence.
fn leak_presence(state: &Shared, session: &Session, presence: Element) {
    let contacts: Vec<Address> = state
        .core()
        .roster(&session.addr)
        .map(|roster| {
            roster
                .items()
                .filter(|item| !item.state.has_from())
                .map(|item| item.contact.clone())
                .collect()
        })
        .unwrap_or_default();
    for contact in contacts {
        let mut copy = presence.clone();
        copy.set_attr("to", jid_of(&contact, None).to_string());
        state.route(copy);
    }
}

/// IQs the server handles for the client: roster (RFC 6121 §2), session, ping, disco.
fn client_iq(state: &Shared, session: &Session, iq: &Element, own: bool) -> Option<Element> {
    let itype = match IqType::of(iq) {
        Ok(itype) => itype,
        Err(_) => return Some(error_of(iq, StanzaErrorCondition::BadRequest)),
    };
    if matches!(itype, IqType::Result | IqType::Error) {
        return None;
    }
    if let Some(query) = iq.child("query", ns::ROSTER).filter(|_| own) {
        return Some(roster_iq(state, session, iq, itype, query));
    }
    if iq.child("session", ns::SESSION).is_some() {
        return Some(iq_result(iq, None));
    }
    if iq.child("bind", ns::BIND).is_some() {
        return Some(error_of(iq, StanzaErrorCondition::NotAllowed));
    }
    let mut reply = state
        .server_iq_answer(iq)
        .unwrap_or_else(|| error_of(iq, StanzaErrorCondition::ServiceUnavailable));
    reply.remove_attr("to");
    reply.remove_attr("from");
    Some(reply)
}

fn roster_iq(
    state: &Shared,
    session: &Session,
    iq: &Element,
    itype: IqType,
    query: &Element,
) -> Element {
    if itype == IqType::Get {
        let items = state.core().roster_get(&session.addr, &session.resource);
        let mut result = Element::new("query", ns::ROSTER);
        for item in &items {
            result = result.with_child(roster_item_element(item, false));
        }
        return iq_result(iq, Some(result));
    }
    // RFC 6121 §2.3.3: a roster set carries exactly one item.
    let items: Vec<&Element> = query
        .elements()
        .filter(|e| e.is("item", ns::ROSTER))
        .collect();
    let [item] = items.as_slice() else {
        return error_of(iq, StanzaErrorCondition::BadRequest);
    };
    let Some(contact) = item
        .attr("jid")
        .and_then(|jid| Jid::parse(jid).ok())
        .and_then(|jid| address_of(&jid.bare()))
    else {
        return error_of(iq, StanzaErrorCondition::BadRequest);
    };
    if item.attr("subscription") == Some("remove") {
        let known = state
            .core()
            .roster(&session.addr)
            .and_then(|r| r.get(&contact).cloned());
        if known.is_none() {
            return error_of(iq, StanzaErrorCondition::ItemNotFound);
        }
        let effects = state.core().roster_remove(&session.addr, &contact);
        state.apply(effects, None);
        return iq_result(iq, None);
    }
    let mut groups: Vec<String> = Vec::new();
    for group in item.elements().filter(|e| e.is("group", ns::ROSTER)) {
        let name = group.text();
        // RFC 6121 §2.3.3: empty and duplicate groups are refused.
        if name.is_empty() {
            return error_of(iq, StanzaErrorCondition::NotAcceptable);
        }
        if groups.contains(&name) {
            return error_of(iq, StanzaErrorCondition::BadRequest);
        }
        groups.push(name);
    }
    let name = item.attr("name").map(str::to_string);
    let effects = state
        .core()
        .roster_set(&session.addr, &contact, name, groups);
    state.apply(effects, None);
    iq_result(iq, None)
}
