//! The home server's RVP methods for the nodes of its own domains: SUBSCRIBE (§5.1),
//! UNSUBSCRIBE (§5.2), SUBSCRIPTIONS (§5.3), PROPFIND (§5.4), PROPPATCH (§5.5), NOTIFY
//! (§5.6) and ACL (§5.7), with PROFILE.md §2 to §5 where the text is silent.

use http::StatusCode;
use imfed_rvp::headers::{
    CallBack, Depth, FromPrincipal, NotificationType, SubscriptionId, SubscriptionLifetime,
};
use imfed_rvp::xml::{
    MultiStatus, Notification, PropFind, PropName, PropStat, Property, PropertyUpdate, Right,
    RvpAcl, State as RState, StateValue, StatusLine, StatusResponse, Subscription as XSub,
    Subscriptions,
};
use imfed_rvp::{Method, NodeUrl, RvpHeaders};
use tokio::time::Instant;

use super::client::{loopback_callback, next_hop, notify_headers, to_callback};
use super::http::{Caller, Reply, Req};
use super::{Endpoint, LeaseKey, Subscription, View, acl_allows, default_acl};
use crate::core::Address;
use crate::faults::Switch;
use crate::state::{Shared, State};

/// Serves a request for a node of a hosted domain.
pub async fn handle(state: &State, caller: &Caller, req: &Req) -> Reply {
    let Some(user) = req.target.alias() else {
        return Reply::error(StatusCode::NOT_FOUND, "no such node");
    };
    let owner = Address::new(user, req.target.host());
    if !state.core().exists(&owner) {
        if req.method == Method::Subscribe
            && state.rvp_fault(
                Switch::RvpGrantUnknownPrincipal,
                &caller.address.iter().cloned().collect::<Vec<_>>(),
                caller.peer.as_deref(),
            )
        {
            return Reply::xml(
                StatusCode::MULTI_STATUS,
                state_multistatus(
                    &req.target,
                    RState::plain(imfed_rvp::xml::Presence::Offline),
                ),
            )
            .with("Subscription-Id", "0")
            .with("Subscription-Lifetime", "60");
        }
        return Reply::error(StatusCode::NOT_FOUND, format!("no principal {owner}"));
    }
    let owner_url = req.target.clone();
    let node = Node {
        owner,
        url: owner_url,
    };
    match req.method {
        Method::Subscribe => subscribe(state, caller, req, &node),
        Method::Unsubscribe => unsubscribe(state, caller, req, &node),
        Method::Subscriptions => subscriptions(state, caller, &node),
        Method::Propfind => propfind(state, caller, req, &node),
        Method::Proppatch => proppatch(state, caller, req, &node),
        Method::Notify => notify(state, caller, req, &node).await,
        Method::Acl => acl(state, caller, req, &node),
        _ => Reply::error(StatusCode::NOT_IMPLEMENTED, "not an RVP method"),
    }
}

struct Node {
    owner: Address,
    url: NodeUrl,
}

fn is_owner(caller: &Caller, node: &Node) -> bool {
    caller.address.as_ref() == Some(&node.owner)
}

fn involved(caller: &Caller, node: &Node) -> Vec<Address> {
    let mut accounts = vec![node.owner.clone()];
    accounts.extend(caller.address.iter().cloned());
    accounts
}

/// Whether the node's ACL grants `right` to the caller (PROFILE.md §7).
fn allowed(state: &Shared, caller: &Caller, node: &Node, right: Right) -> bool {
    if is_owner(caller, node)
        || state.rvp_fault(
            Switch::RvpIgnoreAcl,
            &involved(caller, node),
            caller.peer.as_deref(),
        )
    {
        return true;
    }
    let acl = state
        .rvp
        .lock()
        .acls
        .get(&node.owner)
        .cloned()
        .unwrap_or_else(|| default_acl(&node.url));
    acl_allows(&acl, &node.url, &caller.url, caller.proof, &right)
}

fn forbidden(why: &str) -> Reply {
    Reply::error(StatusCode::FORBIDDEN, why.to_string())
}

fn header<H: imfed_rvp::TypedHeader>(req: &Req) -> Result<Option<H>, Reply> {
    req.headers
        .typed::<H>()
        .map_err(|error| Reply::bad_request(error.to_string()))
}

fn state_multistatus(href: &NodeUrl, state: RState) -> Vec<u8> {
    MultiStatus {
        responses: vec![StatusResponse {
            href: href.to_string(),
            propstats: vec![PropStat {
                props: vec![Property::State(state)],
                status: StatusLine::new(StatusCode::OK),
            }],
            status: None,
        }],
    }
    .to_xml()
}

/// §5.1: login subscriptions (`pragma/notify`), presence subscriptions
/// (`update/propchange`) and renewals.
fn subscribe(state: &State, caller: &Caller, req: &Req, node: &Node) -> Reply {
    let (id, lifetime) = match (
        header::<SubscriptionId>(req),
        header::<SubscriptionLifetime>(req),
    ) {
        (Ok(id), Ok(lifetime)) => (id, lifetime),
        (Err(reply), _) | (_, Err(reply)) => return reply,
    };
    let requested = lifetime.map_or(state.config.rvp_max_lease_secs, |l| l.0);
    if let Some(id) = id {
        // §5.1.2: a renewal changes the lifetime only.
        if state.rvp_fault(
            Switch::RvpRenewalRefused,
            &involved(caller, node),
            caller.peer.as_deref(),
        ) {
            return Reply::error(StatusCode::PRECONDITION_FAILED, "renewal refused");
        }
        let mut inner = state.rvp.lock();
        let key = if let Some(endpoint) = inner.endpoints.get(id.as_str()) {
            if caller.address.as_ref() != Some(&endpoint.owner) {
                return forbidden("not your subscription");
            }
            LeaseKey::Endpoint(id.as_str().to_string())
        } else if let Some(sub) = inner.subscriptions.get(id.as_str()) {
            if sub.lapsed || sub.presentity != node.owner {
                return Reply::error(StatusCode::PRECONDITION_FAILED, "unknown Subscription-Id");
            }
            LeaseKey::Subscription(id.as_str().to_string())
        } else {
            return Reply::error(StatusCode::PRECONDITION_FAILED, "unknown Subscription-Id");
        };
        let granted = state.rvp_lease(&mut inner, key.clone(), requested);
        if let (LeaseKey::Subscription(_), Some(sub)) =
            (&key, inner.subscriptions.get_mut(id.as_str()))
        {
            sub.lifetime = granted;
        }
        return Reply::new(StatusCode::OK)
            .with("Subscription-Id", id.as_str())
            .with("Subscription-Lifetime", &granted.to_string());
    }
    let lenient = state.rvp_fault(
        Switch::RvpLenientRequests,
        &involved(caller, node),
        caller.peer.as_deref(),
    );
    let kind = match header::<NotificationType>(req) {
        Ok(Some(kind)) => kind,
        Ok(None) if lenient => NotificationType::PropChange,
        Ok(None) => return Reply::bad_request("missing Notification-Type header"),
        Err(reply) => return reply,
    };
    let callback = match header::<CallBack>(req) {
        Ok(Some(CallBack(url))) => url,
        Ok(None) => return Reply::bad_request("missing Call-Back header"),
        Err(reply) => return reply,
    };
    match kind {
        NotificationType::PragmaNotify => {
            if !is_owner(caller, node) {
                return forbidden("a login subscription is to one's own node");
            }
            if loopback_callback(&callback).is_none() {
                return Reply::bad_request("Call-Back host is not on loopback");
            }
            let mut inner = state.rvp.lock();
            let id = inner.new_id();
            inner.endpoints.insert(
                id.clone(),
                Endpoint {
                    owner: node.owner.clone(),
                    callback,
                },
            );
            let granted = state.rvp_lease(&mut inner, LeaseKey::Endpoint(id.clone()), requested);
            Reply::new(StatusCode::OK)
                .with("Subscription-Id", &id)
                .with("Subscription-Lifetime", &granted.to_string())
        }
        NotificationType::PropChange => {
            if !allowed(state, caller, node, Right::Presence) {
                return forbidden("the ACL denies presence");
            }
            let callback_ok = loopback_callback(&callback).is_some()
                || (callback.alias().is_some()
                    && imfed_rvp::url::ServerName::new(callback.host()).is_ok());
            if !callback_ok {
                return Reply::bad_request(
                    "Call-Back is neither a principal URL nor a loopback node",
                );
            }
            let mut inner = state.rvp.lock();
            let id = inner.new_id();
            let granted =
                state.rvp_lease(&mut inner, LeaseKey::Subscription(id.clone()), requested);
            inner.subscriptions.insert(
                id.clone(),
                Subscription {
                    presentity: node.owner.clone(),
                    callback,
                    subscriber: caller.url.clone(),
                    lifetime: granted,
                    lapsed: false,
                },
            );
            let current = inner.aggregate(&node.owner);
            drop(inner);
            let answer = if state.rvp_fault(
                Switch::RvpSnapshotWithoutState,
                &involved(caller, node),
                caller.peer.as_deref(),
            ) {
                Reply::new(StatusCode::MULTI_STATUS)
            } else {
                Reply::xml(
                    StatusCode::MULTI_STATUS,
                    state_multistatus(&node.url, RState::plain(current)),
                )
            };
            answer
                .with("Subscription-Id", &id)
                .with("Subscription-Lifetime", &granted.to_string())
        }
        NotificationType::Other(word) => {
            Reply::bad_request(format!("Notification-Type {word} is not supported"))
        }
    }
}

/// §5.2: ends a login or presence subscription.
fn unsubscribe(state: &State, caller: &Caller, req: &Req, node: &Node) -> Reply {
    let id = match header::<SubscriptionId>(req) {
        Ok(Some(id)) => id,
        Ok(None) => return Reply::bad_request("missing Subscription-Id header"),
        Err(reply) => return reply,
    };
    let mut inner = state.rvp.lock();
    if let Some(endpoint) = inner.endpoints.get(id.as_str()) {
        if caller.address.as_ref() != Some(&endpoint.owner) {
            return forbidden("not your subscription");
        }
        let owner = endpoint.owner.clone();
        inner.end_endpoint(id.as_str());
        let outgoing = inner.changes_of(&owner);
        drop(inner);
        state.rvp_notify(outgoing);
        return Reply::new(StatusCode::OK);
    }
    match inner.subscriptions.get(id.as_str()) {
        Some(sub) if sub.presentity == node.owner => {
            let mine = sub.subscriber.eq_ignore_ascii_case(&caller.url) || is_owner(caller, node);
            if !mine {
                return forbidden("not your subscription");
            }
            if state.rvp_fault(
                Switch::RvpIgnoreUnsubscribe,
                &involved(caller, node),
                caller.peer.as_deref(),
            ) {
                return Reply::new(StatusCode::OK);
            }
            inner.subscriptions.remove(id.as_str());
            inner
                .leases
                .remove(&LeaseKey::Subscription(id.as_str().to_string()));
            Reply::new(StatusCode::OK)
        }
        _ => Reply::error(StatusCode::PRECONDITION_FAILED, "unknown Subscription-Id"),
    }
}

/// §5.3: who watches this node.
fn subscriptions(state: &State, caller: &Caller, node: &Node) -> Reply {
    if !allowed(state, caller, node, Right::Subscriptions) {
        return forbidden("the ACL denies subscriptions");
    }
    let inner = state.rvp.lock();
    let now = Instant::now();
    let mut list: Vec<XSub> = inner
        .subscriptions
        .iter()
        .filter(|(_, sub)| sub.presentity == node.owner && !sub.lapsed)
        .filter_map(|(id, sub)| {
            Some(XSub {
                id: SubscriptionId::new(id.clone()).ok()?,
                href: Some(node.url.to_string()),
                principal: Some(sub.subscriber.clone()),
                timeout: inner
                    .leases
                    .deadline(&LeaseKey::Subscription(id.clone()))
                    .map(|deadline| deadline.saturating_duration_since(now).as_secs()),
            })
        })
        .collect();
    list.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    Reply::xml(
        StatusCode::OK,
        Subscriptions {
            subscriptions: list,
        }
        .to_xml(),
    )
}

/// §5.4: reads properties; `Depth` must be 0 (else 412).
fn propfind(state: &State, caller: &Caller, req: &Req, node: &Node) -> Reply {
    match header::<Depth>(req) {
        Ok(Some(Depth::Zero)) => {}
        Ok(_)
            if state.rvp_fault(
                Switch::RvpIgnoreDepth,
                &involved(caller, node),
                caller.peer.as_deref(),
            ) => {}
        Ok(_) => return Reply::error(StatusCode::PRECONDITION_FAILED, "Depth must be 0"),
        Err(reply) => return reply,
    }
    let names = if req.body.iter().all(u8::is_ascii_whitespace) {
        vec![PropName::State, PropName::DisplayName]
    } else {
        match PropFind::parse(&req.body) {
            Ok(PropFind::Prop(names)) => names,
            Ok(_) => vec![PropName::State, PropName::DisplayName],
            Err(error) => return Reply::bad_request(format!("PROPFIND body: {error}")),
        }
    };
    if names.contains(&PropName::State) && !allowed(state, caller, node, Right::Presence) {
        return forbidden("the ACL denies presence");
    }
    let current = state.rvp.lock().aggregate(&node.owner);
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match name {
            PropName::State => found.push(Property::State(RState::plain(current.clone()))),
            PropName::DisplayName => found.push(Property::DisplayName(node.owner.user.clone())),
            other => missing.push(Property::Empty(other)),
        }
    }
    let mut propstats = vec![PropStat {
        props: found,
        status: StatusLine::new(StatusCode::OK),
    }];
    if !missing.is_empty() {
        propstats.push(PropStat {
            props: missing,
            status: StatusLine::new(StatusCode::NOT_FOUND),
        });
    }
    Reply::xml(
        StatusCode::MULTI_STATUS,
        MultiStatus {
            responses: vec![StatusResponse {
                href: node.url.to_string(),
                propstats,
                status: None,
            }],
        }
        .to_xml(),
    )
}

/// §5.5: sets `r:state`, leased or plain, for a view.
fn proppatch(state: &State, caller: &Caller, req: &Req, node: &Node) -> Reply {
    if !is_owner(caller, node) && !allowed(state, caller, node, Right::Write) {
        return forbidden("only the owner sets its properties");
    }
    let update = match PropertyUpdate::parse(&req.body) {
        Ok(update) => update,
        Err(_)
            if state.rvp_fault(
                Switch::RvpLenientRequests,
                &involved(caller, node),
                caller.peer.as_deref(),
            ) =>
        {
            return Reply::new(StatusCode::MULTI_STATUS);
        }
        Err(error) => return Reply::bad_request(format!("PROPPATCH body: {error}")),
    };
    let Some(new_state) = update.set.iter().find_map(|prop| match prop {
        Property::State(s) => Some(s.clone()),
        _ => None,
    }) else {
        return Reply::bad_request("PROPPATCH sets no r:state");
    };
    let mut inner = state.rvp.lock();
    let view_id = match &new_state.view_id {
        Some(id)
            if inner
                .endpoints
                .get(id)
                .is_some_and(|e| e.owner == node.owner)
                || inner.views.get(id).is_some_and(|v| v.owner == node.owner) =>
        {
            id.clone()
        }
        _ => inner.new_id(),
    };
    let changed = inner.tick();
    let (value, default_value, timeout) = match &new_state.value {
        StateValue::Plain(value) => (value.clone(), value.clone(), None),
        StateValue::Leased(leased) => (
            leased.value.clone(),
            leased.default_value.clone(),
            Some(leased.timeout),
        ),
    };
    inner.views.insert(
        view_id.clone(),
        View {
            owner: node.owner.clone(),
            value: value.clone(),
            default_value: default_value.clone(),
            changed,
        },
    );
    let answer = match timeout {
        Some(secs) => {
            let granted = state.rvp_lease(&mut inner, LeaseKey::View(view_id.clone()), secs);
            RState::leased(value, default_value, granted)
        }
        None => {
            inner.leases.remove(&LeaseKey::View(view_id.clone()));
            RState::plain(value)
        }
    };
    let outgoing = inner.changes_of(&node.owner);
    drop(inner);
    state.rvp_notify(outgoing);
    let answer = RState {
        view_id: Some(view_id),
        ..answer
    };
    Reply::xml(
        StatusCode::MULTI_STATUS,
        state_multistatus(&node.url, answer),
    )
}

/// §5.6: relays a notification to every endpoint of the principal; a DeepOr message is
/// answered 200 only once one endpoint took it, 412 when there is none.
async fn notify(state: &State, caller: &Caller, req: &Req, node: &Node) -> Reply {
    let notification = match Notification::parse(&req.body) {
        Ok(notification) => notification,
        Err(error) => return Reply::bad_request(format!("NOTIFY body: {error}")),
    };
    if matches!(notification, Notification::Message(_))
        && !allowed(state, caller, node, Right::SendTo)
    {
        return forbidden("the ACL denies send-to");
    }
    let hop = match next_hop(state, req.hop, caller) {
        Ok(hop) => hop,
        Err(reply) => return reply,
    };
    let endpoints = state.rvp.lock().endpoints_of(&node.owner);
    if endpoints.is_empty() {
        return Reply::error(
            StatusCode::PRECONDITION_FAILED,
            format!("{} has no endpoint", node.owner),
        );
    }
    if state.rvp_fault(
        Switch::RvpAckBeforeDelivery,
        &involved(caller, node),
        caller.peer.as_deref(),
    ) {
        return Reply::new(StatusCode::OK);
    }
    let from = req
        .headers
        .typed::<FromPrincipal>()
        .ok()
        .flatten()
        .or_else(|| NodeUrl::parse(&caller.url).ok().map(FromPrincipal::Node));
    let Some(from) = from else {
        return Reply::bad_request("missing RVP-From-Principal header");
    };
    let mut headers = notify_headers(&from, hop);
    if let Some(ack) = req.headers.get("RVP-Ack-Type") {
        headers.insert("RVP-Ack-Type", ack.clone());
    }
    let mut delivered = 0;
    for (_, callback) in endpoints {
        if to_callback(state, &callback, headers.clone(), req.body.clone()).await {
            delivered += 1;
        }
    }
    if delivered == 0 {
        return Reply::error(
            StatusCode::PRECONDITION_FAILED,
            format!("no endpoint of {} took it", node.owner),
        );
    }
    Reply::new(StatusCode::OK)
}

/// §5.7: reads or replaces the node's ACL.
fn acl(state: &State, caller: &Caller, req: &Req, node: &Node) -> Reply {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        if !allowed(state, caller, node, Right::ReadAcl) {
            return forbidden("the ACL denies readacl");
        }
        let acl = state
            .rvp
            .lock()
            .acls
            .get(&node.owner)
            .cloned()
            .unwrap_or_else(|| default_acl(&node.url));
        return Reply::xml(StatusCode::OK, acl.to_xml());
    }
    let acl = match RvpAcl::parse(&req.body) {
        Ok(acl) => acl,
        Err(error) => return Reply::bad_request(format!("ACL body: {error}")),
    };
    if acl.acl.aces.iter().any(|ace| ace.credentials.is_empty())
        && !state.rvp_fault(
            Switch::RvpAclWithoutCredentials,
            &involved(caller, node),
            caller.peer.as_deref(),
        )
    {
        return Reply::bad_request("credentials not specified");
    }
    if !allowed(state, caller, node, Right::WriteAcl) {
        return forbidden("the ACL denies writeacl");
    }
    state.rvp.lock().acls.insert(node.owner.clone(), acl);
    Reply::new(StatusCode::OK)
}
