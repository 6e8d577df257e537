//! The RVP front-end (Osborne et al. 2000, with imfed's `protocols/rvp/PROFILE.md`): HTTP/1.1
//! for clients (§4.1, Digest §6) and for other domains' home servers (mutual TLS, PROFILE.md
//! §6), around the sans-I/O `imfed-rvp` crate and the neutral account store.
//!
//! - [`http`]: the listeners and the per-request checks (§5.8 methods, §7.2 headers, Digest,
//!   hop count) and routing to the home server of the target's domain;
//! - [`methods`]: the home server's methods: SUBSCRIBE (§5.1), UNSUBSCRIBE (§5.2),
//!   SUBSCRIPTIONS (§5.3), PROPFIND (§5.4), PROPPATCH (§5.5), NOTIFY (§5.6), ACL (§5.7);
//! - [`client`]: outbound requests to callbacks and to other home servers (with the tap).
//!
//! Digest (RFC 2617) is [`imfed_rvp::digest`]: its challenge and its server-side check.
//!
//! This module holds the state: endpoints (login subscriptions, §5.1.7.1), views (leased
//! `r:state` values, §5.5), presence subscriptions (§5.1) and ACLs (§5.7), with their leases.

// A refusal is the answer itself (`Err(Reply)`), built at most once per request: boxing it
// would add noise for no gain.
#![allow(clippy::result_large_err)]

pub mod client;
pub mod http;
pub mod methods;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use imfed_rvp::NodeUrl;
use imfed_rvp::xml::{Ace, AcePrincipal, Acl, Credentials, Presence, Right, RvpAcl};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::Config;
use crate::core::Address;
use crate::core::lease::Leases;
use crate::faults::{Involved, Switch};
use crate::state::{Shared, State};

/// Capacity of the queue of presence notifications waiting to be sent.
const OUTBOX: usize = 4096;

/// A login subscription: one endpoint of a principal (PROFILE.md §2).
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Whose.
    pub owner: Address,
    /// The client's callback node (loopback).
    pub callback: NodeUrl,
}

/// A view: one `r:state` value of a principal, leased or not (§5.5).
#[derive(Clone, Debug)]
pub struct View {
    /// Whose.
    pub owner: Address,
    /// The current value.
    pub value: Presence,
    /// The value after the lease.
    pub default_value: Presence,
    /// Order of the last change, for choosing among equally available views.
    pub changed: u64,
}

/// A presence subscription (`update/propchange`, §5.1).
#[derive(Clone, Debug)]
pub struct Subscription {
    /// The presentity.
    pub presentity: Address,
    /// Where its NOTIFYs go (the watcher's logical URL, §5.1.4).
    pub callback: NodeUrl,
    /// Who subscribed (`RVP-From-Principal`).
    pub subscriber: String,
    /// Lifetime granted, in seconds.
    pub lifetime: u64,
    /// Its lease ran out but `rvp_ignore_subscription_lease` keeps it.
    pub lapsed: bool,
}

/// What a lease belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseKey {
    /// A login subscription.
    Endpoint(String),
    /// A leased presence value.
    View(String),
    /// A presence subscription.
    Subscription(String),
}

/// A presence notification waiting to be sent.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The presentity.
    pub presentity: Address,
    /// Its new aggregate state.
    pub state: Presence,
    /// The subscription's callback.
    pub callback: NodeUrl,
}

/// The RVP front-end's mutable state.
#[derive(Debug, Default)]
pub struct Inner {
    /// Login subscriptions by Subscription-Id.
    pub endpoints: HashMap<String, Endpoint>,
    /// Views by view-id.
    pub views: HashMap<String, View>,
    /// Presence subscriptions by Subscription-Id.
    pub subscriptions: HashMap<String, Subscription>,
    /// ACLs that were replaced (others are the default).
    pub acls: HashMap<Address, RvpAcl>,
    /// Every running lease.
    pub leases: Leases<LeaseKey, Instant>,
    /// The aggregate state last notified, per principal.
    pub notified: HashMap<Address, Presence>,
    next_id: u64,
    changes: u64,
}

impl Inner {
    /// A fresh identifier (Subscription-Ids and view-ids share one space).
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        (1000 + self.next_id).to_string()
    }

    /// A change counter value.
    pub fn tick(&mut self) -> u64 {
        self.changes += 1;
        self.changes
    }

    /// The aggregate state of `owner`: its most available view (PROFILE.md §2).
    pub fn aggregate(&self, owner: &Address) -> Presence {
        self.views
            .values()
            .filter(|view| &view.owner == owner)
            .max_by_key(|view| (rank(&view.value), view.changed))
            .map_or(Presence::Offline, |view| view.value.clone())
    }

    /// The endpoints of `owner`.
    pub fn endpoints_of(&self, owner: &Address) -> Vec<(String, NodeUrl)> {
        let mut endpoints: Vec<(String, NodeUrl)> = self
            .endpoints
            .iter()
            .filter(|(_, endpoint)| &endpoint.owner == owner)
            .map(|(id, endpoint)| (id.clone(), endpoint.callback.clone()))
            .collect();
        endpoints.sort();
        endpoints
    }

    /// Ends an endpoint and the view it set.
    pub fn end_endpoint(&mut self, id: &str) -> Option<Endpoint> {
        let endpoint = self.endpoints.remove(id)?;
        self.leases.remove(&LeaseKey::Endpoint(id.to_string()));
        self.views.remove(id);
        self.leases.remove(&LeaseKey::View(id.to_string()));
        Some(endpoint)
    }

    /// If `owner`'s aggregate state changed since it was last notified, the notifications
    /// that tell its watchers.
    pub fn changes_of(&mut self, owner: &Address) -> Vec<Outgoing> {
        let state = self.aggregate(owner);
        let before = self
            .notified
            .insert(owner.clone(), state.clone())
            .unwrap_or(Presence::Offline);
        if before == state {
            return Vec::new();
        }
        let mut out: Vec<Outgoing> = self
            .subscriptions
            .values()
            .filter(|sub| &sub.presentity == owner)
            .map(|sub| Outgoing {
                presentity: owner.clone(),
                state: state.clone(),
                callback: sub.callback.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.callback.cmp(&b.callback));
        out
    }
}

/// How available a state is: online > busy, back-soon, on-phone, at-lunch, away > idle >
/// offline (PROFILE.md §2); invisible shows as offline.
pub fn rank(presence: &Presence) -> u8 {
    match presence {
        Presence::Online => 4,
        Presence::Busy | Presence::BackSoon | Presence::OnPhone | Presence::AtLunch => 3,
        Presence::Away | Presence::Other(_) => 3,
        Presence::Idle => 2,
        Presence::Offline | Presence::Invisible => 0,
    }
}

/// The RVP front-end's state.
#[derive(Debug)]
pub struct RvpState {
    /// Endpoints, views, subscriptions, ACLs and leases. Never held across an await.
    pub inner: Mutex<Inner>,
    /// Woken when a lease may have moved earlier.
    pub wake: Notify,
    /// The Digest nonce, valid for the server's lifetime (PROFILE.md §2).
    pub nonce: String,
    /// Static routes: remote domain to `host:port` of its RVP s2s listener.
    pub routes: RwLock<BTreeMap<String, String>>,
    outbox: mpsc::Sender<Outgoing>,
    outbox_rx: Mutex<Option<mpsc::Receiver<Outgoing>>>,
}

impl RvpState {
    /// The state for `config`.
    pub fn new(config: &Config) -> Self {
        let (outbox, rx) = mpsc::channel(OUTBOX);
        RvpState {
            inner: Mutex::default(),
            wake: Notify::new(),
            nonce: crate::xmpp::random_id(32),
            routes: RwLock::new(config.rvp_remotes.clone()),
            outbox,
            outbox_rx: Mutex::new(Some(rx)),
        }
    }

    /// The state, locked.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("rvp lock poisoned")
    }

    /// Sets the route to `domain`'s RVP s2s listener.
    pub fn set_route(&self, domain: &str, addr: &str) {
        self.routes
            .write()
            .expect("routes lock")
            .insert(domain.to_string(), addr.to_string());
    }

    /// The route to `domain`, if any.
    pub fn route(&self, domain: &str) -> Option<String> {
        self.routes
            .read()
            .expect("routes lock")
            .get(domain)
            .cloned()
    }
}

impl Shared {
    /// Whether the RVP `switch` is on for what involves `accounts` and `peer`.
    pub fn rvp_fault(&self, switch: Switch, accounts: &[Address], peer: Option<&str>) -> bool {
        !self.faults.is_empty() && self.faults.on(switch, Involved { accounts, peer })
    }

    /// The logical URL of a local or remote principal (PROFILE.md §1: no port).
    pub fn principal_url(address: &Address) -> Option<NodeUrl> {
        NodeUrl::principal(&address.domain, None, &address.user).ok()
    }

    /// Queues notifications; a full queue drops them (with a warning) rather than block.
    pub fn rvp_notify(&self, outgoing: Vec<Outgoing>) {
        for item in outgoing {
            let accounts = [item.presentity.clone()];
            if self.rvp_fault(Switch::RvpDropPropnotify, &accounts, None) {
                debug!(presentity = %item.presentity, "propnotification dropped (fault)");
                continue;
            }
            if self.rvp.outbox.try_send(item).is_err() {
                warn!("rvp notification queue full: notification dropped");
            }
        }
    }

    /// Grants a lease of `secs` (bounded by `rvp_max_lease_secs`) to `key`; returns the
    /// seconds granted.
    pub fn rvp_lease(&self, inner: &mut Inner, key: LeaseKey, secs: u64) -> u64 {
        let granted = secs.clamp(1, self.config.rvp_max_lease_secs);
        inner
            .leases
            .set(key, Instant::now() + Duration::from_secs(granted));
        self.rvp.wake.notify_one();
        granted
    }
}

/// The default ACL of a principal (PROFILE.md §7: §5.7.3 without its deny).
pub fn default_acl(owner: &NodeUrl) -> RvpAcl {
    RvpAcl {
        acl: Acl {
            inheritance: Some("none".into()),
            aces: vec![
                Ace {
                    principal: AcePrincipal::All,
                    credentials: Credentials {
                        assertion: true,
                        digest: true,
                        ..Credentials::default()
                    },
                    grant: vec![Right::List, Right::Read, Right::SendTo, Right::Presence],
                    deny: Vec::new(),
                },
                Ace {
                    principal: AcePrincipal::Rvp(owner.to_string()),
                    credentials: Credentials {
                        digest: true,
                        ..Credentials::default()
                    },
                    grant: vec![Right::All],
                    deny: Vec::new(),
                },
            ],
        },
    }
}

/// How a caller proved who it is (§5.7.2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// A local user, by Digest.
    Digest,
    /// A principal vouched for by a peer server's certificate.
    Assertion,
}

/// Whether `caller` (a principal URL or a server name) proved by `proof` has `right` on
/// the node of `owner` under `acl`: entries naming the caller first, then `allprincipals`;
/// within each, a deny wins (§5.7.2).
pub fn acl_allows(
    acl: &RvpAcl,
    owner: &NodeUrl,
    caller: &str,
    proof: Proof,
    right: &Right,
) -> bool {
    let same = |a: &str, b: &str| match (NodeUrl::parse(a), NodeUrl::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    };
    if same(caller, &owner.to_string()) {
        return true;
    }
    let proved = |ace: &Ace| {
        let c = ace.credentials;
        c.any
            || match proof {
                Proof::Digest => c.digest,
                Proof::Assertion => c.assertion,
            }
    };
    let has = |list: &[Right]| list.contains(right) || list.contains(&Right::All);
    let named: Vec<&Ace> = acl
        .acl
        .aces
        .iter()
        .filter(|ace| matches!(&ace.principal, AcePrincipal::Rvp(url) if same(url, caller)))
        .filter(|ace| proved(ace))
        .collect();
    let everyone: Vec<&Ace> = acl
        .acl
        .aces
        .iter()
        .filter(|ace| ace.principal == AcePrincipal::All && proved(ace))
        .collect();
    for group in [named, everyone] {
        if group.iter().any(|ace| has(&ace.deny)) {
            return false;
        }
        if group.iter().any(|ace| has(&ace.grant)) {
            return true;
        }
    }
    false
}

/// Runs the lease clock and the notification queue until shutdown.
pub async fn run(state: State) {
    let rx = state.rvp.outbox_rx.lock().expect("outbox lock").take();
    if let Some(rx) = rx {
        state.tasks.spawn(client::dispatch(state.clone(), rx));
    }
    loop {
        let next = state.rvp.lock().leases.next_deadline();
        let sleep = async {
            match next {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = state.rvp.wake.notified() => continue,
            () = state.shutdown.cancelled() => break,
        }
        expire(&state, Instant::now());
    }
}

/// Ends what expired by `now`: endpoints end, leased values revert, subscriptions stop.
pub fn expire(state: &Shared, now: Instant) {
    let mut outgoing = Vec::new();
    let mut inner = state.rvp.lock();
    let expired = inner.leases.expire(now);
    let mut touched = Vec::new();
    for key in expired {
        match key {
            LeaseKey::Endpoint(id) => {
                if let Some(endpoint) = inner.end_endpoint(&id) {
                    debug!(%id, owner = %endpoint.owner, "login subscription lapsed");
                    touched.push(endpoint.owner);
                }
            }
            LeaseKey::View(id) => {
                let Some(view) = inner.views.get(&id).cloned() else {
                    continue;
                };
                if state.rvp_fault(
                    Switch::RvpIgnorePresenceLease,
                    std::slice::from_ref(&view.owner),
                    None,
                ) {
                    continue;
                }
                let changed = inner.tick();
                if let Some(view) = inner.views.get_mut(&id) {
                    view.value = view.default_value.clone();
                    view.changed = changed;
                }
                touched.push(view.owner);
            }
            LeaseKey::Subscription(id) => {
                let Some(sub) = inner.subscriptions.get(&id).cloned() else {
                    continue;
                };
                if state.rvp_fault(
                    Switch::RvpIgnoreSubscriptionLease,
                    std::slice::from_ref(&sub.presentity),
                    None,
                ) {
                    if let Some(sub) = inner.subscriptions.get_mut(&id) {
                        sub.lapsed = true;
                    }
                    continue;
                }
                debug!(%id, presentity = %sub.presentity, "subscription lapsed");
                inner.subscriptions.remove(&id);
            }
        }
    }
    for owner in touched {
        outgoing.extend(inner.changes_of(&owner));
    }
    drop(inner);
    state.rvp_notify(outgoing);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_acl_grants_everyone_presence_and_the_owner_everything() {
        let owner = NodeUrl::principal("a.test", None, "alice").unwrap();
        let acl = default_acl(&owner);
        let bob = "http://b.test/instmsg/aliases/bob";
        assert!(acl_allows(
            &acl,
            &owner,
            bob,
            Proof::Assertion,
            &Right::Presence
        ));
        assert!(acl_allows(&acl, &owner, bob, Proof::Digest, &Right::SendTo));
        assert!(!acl_allows(
            &acl,
            &owner,
            bob,
            Proof::Digest,
            &Right::WriteAcl
        ));
        assert!(acl_allows(
            &acl,
            &owner,
            &owner.to_string(),
            Proof::Digest,
            &Right::WriteAcl
        ));
        let mut denying = acl.clone();
        denying.acl.aces.insert(
            0,
            Ace {
                principal: AcePrincipal::Rvp(bob.into()),
                credentials: Credentials {
                    any: true,
                    ..Credentials::default()
                },
                grant: Vec::new(),
                deny: vec![Right::Presence],
            },
        );
        assert!(!acl_allows(
            &denying,
            &owner,
            bob,
            Proof::Assertion,
            &Right::Presence
        ));
        assert!(acl_allows(
            &denying,
            &owner,
            bob,
            Proof::Assertion,
            &Right::SendTo
        ));
    }

    #[test]
    fn aggregate_is_the_most_available_view() {
        let mut inner = Inner::default();
        let alice = Address::new("alice", "a.test");
        assert_eq!(inner.aggregate(&alice), Presence::Offline);
        for (id, value) in [
            ("1", Presence::Idle),
            ("2", Presence::Online),
            ("3", Presence::Away),
        ] {
            let changed = inner.tick();
            inner.views.insert(
                id.into(),
                View {
                    owner: alice.clone(),
                    value,
                    default_value: Presence::Offline,
                    changed,
                },
            );
        }
        assert_eq!(inner.aggregate(&alice), Presence::Online);
        inner.views.remove("2");
        assert_eq!(inner.aggregate(&alice), Presence::Away);
    }
}
