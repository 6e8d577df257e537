//! The presence agent for hosted users (`protocols/sip/PROFILE.md` §3, §4): the event state
//! compositor for PUBLISH (RFC 3903 §6) and the notifier of the `presence` event package
//! (RFC 3856 §6, RFC 6665 §4.2), with PIDF documents (RFC 3863).
//!
//! A presentity's state is the composition of its unexpired publications, newest first. Each
//! subscription is a dialog of its own; its NOTIFYs leave one at a time, in order.

use imfed_sip::dialog::Dialog;
use imfed_sip::pidf::{self, Presence};
use imfed_sip::transaction::new_branch;
use imfed_sip::{Method, NameAddr, Request, Response, SubscriptionState, Uri, Via};
use tokio::sync::mpsc;
use tracing::debug;

use super::proxy::{answer, authenticate_sender, local_tag, uri_dest};
use super::transport::{Dest, Transport};
use super::{Context, LeaseKey, Outcome, Publication, Watch, respond};
use crate::core::Address;
use crate::faults::Switch;
use crate::state::State;

/// The interval when a request does not say (RFC 3903 §5, RFC 3856 §6.4).
const DEFAULT_EXPIRES: u32 = 3600;

/// A NOTIFY ready to leave.
#[derive(Debug)]
pub struct NotifyJob {
    request: Request,
    dest: Dest,
    peer: bool,
    tag: String,
    last: bool,
}

/// Handles PUBLISH for `aor` (RFC 3903 §6).
pub async fn publish(state: &State, request: Request, context: Context, aor: Address) {
    match authenticate_sender(state, &request, &context).await {
        Ok(Some(user)) if user == aor => {}
        Ok(_) => {
            answer(
                state,
                &context,
                &request,
                403,
                Some("Forbidden (only the presentity publishes its state)"),
            )
            .await;
            return;
        }
        Err(()) => return,
    }
    if !event_is_presence(state, &request, &context).await {
        return;
    }
    let Some(expires) = interval(state, &request, &context).await else {
        return;
    };
    let if_match = request.headers.get("SIP-If-Match").map(str::to_string);
    let known = if_match.as_ref().and_then(|etag| {
        let inner = state.sip.lock();
        inner
            .publications
            .get(etag)
            .filter(|publication| publication.aor == aor)
            .map(|publication| publication.doc.clone())
    });
    let ignore_if_match =
        state.sip_fault(Switch::SipIgnoreIfMatch, std::slice::from_ref(&aor), None);
    if if_match.is_some() && known.is_none() && !ignore_if_match {
        answer(state, &context, &request, 412, None).await;
        return;
    }
    let doc = if request.body.is_empty() {
        match known {
            Some(doc) => doc,
            None if expires == 0 => Presence {
                entity: aor_uri(&aor).to_string(),
                tuples: Vec::new(),
                persons: Vec::new(),
                notes: Vec::new(),
            },
            None => {
                answer(
                    state,
                    &context,
                    &request,
                    400,
                    Some("PUBLISH without SIP-If-Match needs a body"),
                )
                .await;
                return;
            }
        }
    } else {
        let content_type = request.content_type().unwrap_or("");
        if !content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(pidf::CONTENT_TYPE))
        {
            let mut response = Response::to(&request, 415, None, Some(&local_tag()));
            response.headers.push("Accept", pidf::CONTENT_TYPE);
            respond(state, &context, response).await;
            return;
        }
        match Presence::parse(&request.body) {
            Ok(doc) => doc,
            Err(error) => {
                let reason = format!("Bad PIDF document ({error})");
                answer(state, &context, &request, 400, Some(&reason)).await;
                return;
            }
        }
    };
    let never_lapse = state.sip_fault(
        Switch::SipPublicationNeverLapses,
        std::slice::from_ref(&aor),
        None,
    );
    let keep_expiry = state.sip_fault(
        Switch::SipIgnorePublicationRefresh,
        std::slice::from_ref(&aor),
        None,
    );
    let etag = {
        let mut inner = state.sip.lock();
        // The expiry the replaced event state had (the fault keeps it).
        let mut old_deadline = None;
        if let Some(old) = &if_match {
            inner.publications.remove(old);
            let key = LeaseKey::Publication(old.clone());
            old_deadline = inner.leases.deadline(&key);
            inner.leases.remove(&key);
        }
        if expires == 0 {
            None
        } else {
            let etag = crate::xmpp::random_id(10);
            let order = inner.fresh();
            inner.publications.insert(
                etag.clone(),
                Publication {
                    aor: aor.clone(),
                    doc,
                    order,
                },
            );
            match old_deadline {
                _ if never_lapse => {}
                Some(deadline) if keep_expiry => {
                    inner
                        .leases
                        .set(LeaseKey::Publication(etag.clone()), deadline);
                    state.sip.wake.notify_one();
                }
                _ => state.sip_lease(&mut inner, LeaseKey::Publication(etag.clone()), expires),
            }
            Some(etag)
        }
    };
    let mut response = Response::to(&request, 200, None, Some(&local_tag()));
    if let Some(etag) = &etag {
        response.headers.push("SIP-ETag", etag.clone());
    }
    response.headers.push("Expires", expires.to_string());
    respond(state, &context, response).await;
    // A refresh (no body) changes nothing a watcher sees (RFC 3903 §4.2).
    if !request.body.is_empty() || expires == 0 {
        notify_watchers(state, &aor);
    }
}

/// Handles an initial SUBSCRIBE to `aor`'s presence (RFC 6665 §4.2.1, RFC 3856 §6).
pub async fn subscribe(state: &State, request: Request, context: Context, aor: Address) {
    let Ok(watcher) = request.from().map(|from| from.uri.aor()) else {
        answer(state, &context, &request, 400, Some("Bad From")).await;
        return;
    };
    if authenticate_sender(state, &request, &context)
        .await
        .is_err()
    {
        return;
    }
    if !state.core().exists(&aor) {
        let status = super::proxy::not_found_status(state, &request);
        answer(state, &context, &request, status, None).await;
        return;
    }
    if !event_is_presence(state, &request, &context).await {
        return;
    }
    let Some(expires) = interval(state, &request, &context).await else {
        return;
    };
    let tag = local_tag();
    let dialog = match Dialog::uas(&request, &tag) {
        Ok(dialog) => dialog,
        Err(error) => {
            let reason = format!("Bad Request ({error})");
            answer(state, &context, &request, 400, Some(&reason)).await;
            return;
        }
    };
    let next_hop = dialog
        .route_set
        .first()
        .map(|route| route.uri.clone())
        .unwrap_or_else(|| dialog.remote_target.clone());
    let Some(dest) = uri_dest(&next_hop) else {
        answer(
            state,
            &context,
            &request,
            400,
            Some("Contact must be a sip URI with an IP address"),
        )
        .await;
        return;
    };
    let peer = !state.sip_hosts(&watcher.host);
    let mut response = Response::to(&request, 200, None, Some(&tag));
    for route in request.headers.get_all("Record-Route") {
        response.headers.push("Record-Route", route.to_string());
    }
    response.headers.push(
        "Contact",
        agent_contact(state, &aor, context.transport).to_string(),
    );
    response.headers.push("Expires", expires.to_string());
    respond(state, &context, response).await;
    let (queue, rx) = mpsc::unbounded_channel();
    let watch = Watch {
        presentity: aor.clone(),
        watcher,
        dialog,
        dest,
        peer,
        expires,
        queue,
    };
    let task_state = state.clone();
    state.tasks.spawn(notifier(task_state, rx));
    let mut inner = state.sip.lock();
    inner.watches.insert(tag.clone(), watch);
    if expires == 0 {
        // A fetch (RFC 6665 §4.4.3): one NOTIFY with the state, then the end.
        let body = compose(&inner.publications, &aor);
        finish(&mut inner, &tag, body);
        return;
    }
    if !state.sip_fault(
        Switch::SipSubscriptionNeverLapses,
        std::slice::from_ref(&aor),
        None,
    ) {
        state.sip_lease(&mut inner, LeaseKey::Watch(tag.clone()), expires);
    }
    let body = compose(&inner.publications, &aor);
    enqueue(&mut inner, &tag, active(expires), body);
    debug!(presentity = %aor, %tag, expires, "subscription accepted");
}

/// An in-dialog SUBSCRIBE: a refresh, or with `Expires: 0` the end (RFC 6665 §4.1.2.2, §4.1.2.3).
pub async fn resubscribe(state: &State, request: Request, context: Context, tag: &str) {
    let presentity = state
        .sip
        .lock()
        .watches
        .get(tag)
        .map(|w| w.presentity.clone());
    let Some(presentity) = presentity else {
        answer(state, &context, &request, 481, None).await;
        return;
    };
    if authenticate_sender(state, &request, &context)
        .await
        .is_err()
    {
        return;
    }
    let Some(expires) = interval(state, &request, &context).await else {
        return;
    };
    let in_order = {
        let mut inner = state.sip.lock();
        inner
            .watches
            .get_mut(tag)
            .map(|watch| watch.dialog.receive(&request).is_ok())
    };
    match in_order {
        None => {
            answer(state, &context, &request, 481, None).await;
            return;
        }
        Some(false) => {
            answer(
                state,
                &context,
                &request,
                500,
                Some("Server Internal Error (CSeq out of order)"),
            )
            .await;
            return;
        }
        Some(true) => {}
    }
    let mut response = Response::to(&request, 200, None, None);
    response.headers.push("Expires", expires.to_string());
    response.headers.push(
        "Contact",
        agent_contact(state, &presentity, context.transport).to_string(),
    );
    respond(state, &context, response).await;
    let mut inner = state.sip.lock();
    let body = compose(&inner.publications, &presentity);
    if expires == 0 {
        inner.leases.remove(&LeaseKey::Watch(tag.to_string()));
        if state.sip_fault(
            Switch::SipNoTerminatedNotify,
            std::slice::from_ref(&presentity),
            None,
        ) {
            inner.watches.remove(tag);
            return;
        }
        finish(&mut inner, tag, body);
        debug!(%presentity, %tag, "unsubscribed");
        return;
    }
    if let Some(watch) = inner.watches.get_mut(tag) {
        watch.expires = expires;
    }
    let faulty = |switch| state.sip_fault(switch, std::slice::from_ref(&presentity), None);
    if !faulty(Switch::SipSubscriptionNeverLapses) && !faulty(Switch::SipIgnoreSubscriptionRefresh)
    {
        state.sip_lease(&mut inner, LeaseKey::Watch(tag.to_string()), expires);
    }
    enqueue(&mut inner, tag, active(expires), body);
}

/// A publication's interval ran out: it is removed and watchers told (RFC 3903 §6 step 8).
pub fn lapse_publication(state: &State, etag: &str) {
    let removed = state.sip.lock().publications.remove(etag);
    if let Some(publication) = removed {
        debug!(aor = %publication.aor, etag, "publication lapsed");
        notify_watchers(state, &publication.aor);
    }
}

/// A subscription's interval ran out: the final NOTIFY (RFC 6665 §4.2.2).
pub fn lapse_watch(state: &State, tag: &str) {
    let mut inner = state.sip.lock();
    let Some(presentity) = inner.watches.get(tag).map(|w| w.presentity.clone()) else {
        return;
    };
    let body = compose(&inner.publications, &presentity);
    finish(&mut inner, tag, body);
    debug!(%presentity, tag, "subscription lapsed");
}

/// Tells every watcher of `aor` its current state.
pub fn notify_watchers(state: &State, aor: &Address) {
    if state.sip_fault(
        Switch::SipDropPresenceNotify,
        std::slice::from_ref(aor),
        None,
    ) {
        debug!(%aor, "presence notifications dropped (fault)");
        return;
    }
    let mut inner = state.sip.lock();
    let body = compose(&inner.publications, aor);
    let now = tokio::time::Instant::now();
    let tags: Vec<(String, u32)> = inner
        .watches
        .iter()
        .filter(|(_, watch)| &watch.presentity == aor)
        .map(|(tag, watch)| {
            let left = inner
                .leases
                .deadline(&LeaseKey::Watch(tag.clone()))
                .map_or(watch.expires, |at| {
                    u32::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
                });
            (tag.clone(), left)
        })
        .collect();
    for (tag, left) in tags {
        enqueue(&mut inner, &tag, active(left), body.clone());
    }
}

/// Removes a subscription and queues its final NOTIFY (`terminated;reason=timeout`).
fn finish(inner: &mut super::Inner, tag: &str, body: Presence) {
    let Some(mut watch) = inner.watches.remove(tag) else {
        return;
    };
    let job = build(&mut watch, tag, terminated(), &body, true);
    let _ = watch.queue.send(job);
}

/// Queues a NOTIFY on the subscription `tag`.
fn enqueue(inner: &mut super::Inner, tag: &str, sub_state: SubscriptionState, body: Presence) {
    if let Some(watch) = inner.watches.get_mut(tag) {
        let job = build(watch, tag, sub_state, &body, false);
        let _ = watch.queue.send(job);
    }
}

fn build(
    watch: &mut Watch,
    tag: &str,
    sub_state: SubscriptionState,
    body: &Presence,
    last: bool,
) -> NotifyJob {
    let mut request = watch.dialog.request(Method::Notify);
    request.headers.push("Event", "presence");
    request
        .headers
        .push("Subscription-State", sub_state.to_string());
    request.headers.push("Content-Type", pidf::CONTENT_TYPE);
    request.body = body.to_xml().into_bytes();
    NotifyJob {
        request,
        dest: watch.dest,
        peer: watch.peer,
        tag: tag.to_string(),
        last,
    }
}

/// Sends a subscription's NOTIFYs one at a time; a NOTIFY answered 481 or not at all ends
/// the subscription (RFC 6665 §4.2.2).
async fn notifier(state: State, mut rx: mpsc::UnboundedReceiver<NotifyJob>) {
    loop {
        // A subscription still held at shutdown keeps the queue open: the task ends with
        // the server all the same.
        let job = tokio::select! {
            job = rx.recv() => job,
            () = state.shutdown.cancelled() => None,
        };
        let Some(job) = job else { break };
        let NotifyJob {
            mut request,
            dest,
            peer,
            tag,
            last,
        } = job;
        let local = state.sip_local();
        let via = Via::new(
            dest.transport.via_name(),
            &local.ip().to_string(),
            local.port(),
            &new_branch(&crate::xmpp::random_id(16)),
        );
        request.headers.prepend("Via", via.to_string());
        let contact = Uri::new(None, &local.ip().to_string()).with_port(local.port());
        request
            .headers
            .push("Contact", NameAddr::new(contact).to_string());
        let outcome = super::request(&state, request, dest, peer).await;
        let failed = match &outcome {
            Outcome::Final(response) => response.status == 481 || response.status == 408,
            Outcome::Timeout | Outcome::Transport(_) => true,
        };
        if last {
            break;
        }
        if failed {
            debug!(%tag, ?outcome, "NOTIFY failed: subscription removed");
            let mut inner = state.sip.lock();
            inner.watches.remove(&tag);
            inner.leases.remove(&LeaseKey::Watch(tag.clone()));
            break;
        }
        if state.shutdown.is_cancelled() {
            break;
        }
    }
}

/// The composed state of `aor`: every unexpired publication's tuples and persons, newest
/// first; no tuple when nothing is published (PROFILE.md §3).
pub fn compose(
    publications: &std::collections::HashMap<String, Publication>,
    aor: &Address,
) -> Presence {
    let mut mine: Vec<&Publication> = publications.values().filter(|p| &p.aor == aor).collect();
    mine.sort_by_key(|p| std::cmp::Reverse(p.order));
    Presence {
        entity: aor_uri(aor).to_string(),
        tuples: mine.iter().flat_map(|p| p.doc.tuples.clone()).collect(),
        persons: mine.iter().flat_map(|p| p.doc.persons.clone()).collect(),
        notes: mine.iter().flat_map(|p| p.doc.notes.clone()).collect(),
    }
}

fn aor_uri(aor: &Address) -> Uri {
    Uri::new(Some(&aor.user), &aor.domain)
}

/// The presence agent's Contact for `aor`'s dialogs: this server's address.
fn agent_contact(state: &State, aor: &Address, transport: Transport) -> NameAddr {
    let local = state.sip_local();
    let mut uri = Uri::new(Some(&aor.user), &local.ip().to_string()).with_port(local.port());
    if transport == Transport::Tcp {
        uri = uri.with_param("transport", Some("tcp"));
    }
    NameAddr::new(uri)
}

fn active(expires: u32) -> SubscriptionState {
    SubscriptionState::Active {
        expires: Some(expires),
    }
}

fn terminated() -> SubscriptionState {
    SubscriptionState::Terminated {
        reason: Some("timeout".into()),
        retry_after: None,
    }
}

/// `Event: presence`, else `489 Bad Event` (RFC 6665 §7.2.2) with `Allow-Events`.
async fn event_is_presence(state: &State, request: &Request, context: &Context) -> bool {
    let presence = matches!(request.event(), Some(Ok(event)) if event.package.eq_ignore_ascii_case("presence"));
    if !presence {
        let mut response = Response::to(request, 489, None, Some(&local_tag()));
        response.headers.push("Allow-Events", "presence");
        respond(state, context, response).await;
    }
    presence
}

/// The interval a request asks for, clamped to `sip_max_expires`; `None` when it was below
/// `sip_min_expires` and `423` has been sent (RFC 3903 §6 step 5, RFC 6665 §4.2.1.1).
async fn interval(state: &State, request: &Request, context: &Context) -> Option<u32> {
    let asked = request.expires().unwrap_or(DEFAULT_EXPIRES);
    if asked != 0 && asked < state.config.sip_min_expires {
        let mut response = Response::to(request, 423, None, Some(&local_tag()));
        response
            .headers
            .push("Min-Expires", state.config.sip_min_expires.to_string());
        respond(state, context, response).await;
        return None;
    }
    Some(asked.min(state.config.sip_max_expires))
}
