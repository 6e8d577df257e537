//! The protocol-neutral IM and presence core (RFC 2778 model; RFC 6121 §3, §4, §8.5 semantics).
//!
//! Domains, accounts, rosters, subscription states, the presence of each endpoint, and the
//! routing decisions that follow from them live here, with no XMPP types. A front-end (XMPP
//! today; SIP/SIMPLE and RVP later) turns its wire units into calls on [`Core`] and carries
//! out the [`Effect`]s that come back. Presence documents are opaque to the core (`P`): the
//! front-end stores its own representation and gets it back when presence must be sent.

pub mod lease;
pub mod roster;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Message kinds (the neutral vocabulary), with distinct delivery rules (RFC 6121 §5.2.2, §8.5).
pub use imfed_model::MessageKind;
use serde::Serialize;

pub use roster::{
    Direction, Roster, RosterItem, SubscriptionAction, SubscriptionState, Transition,
};

/// A bare address: a user at a domain, already normalized by the front-end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Address {
    /// The user part.
    pub user: String,
    /// The domain part.
    pub domain: String,
}

impl Address {
    /// The address `user@domain`.
    pub fn new(user: impl Into<String>, domain: impl Into<String>) -> Self {
        Address {
            user: user.into(),
            domain: domain.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.domain)
    }
}

/// An address, optionally narrowed to one endpoint (an XMPP resource, a SIP contact).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    /// The bare address.
    pub addr: Address,
    /// The endpoint, if one is meant.
    pub endpoint: Option<String>,
}

impl Target {
    /// The bare address itself.
    pub fn bare(addr: &Address) -> Self {
        Target {
            addr: addr.clone(),
            endpoint: None,
        }
    }

    /// One endpoint of `addr`.
    pub fn endpoint(addr: &Address, endpoint: &str) -> Self {
        Target {
            addr: addr.clone(),
            endpoint: Some(endpoint.to_string()),
        }
    }
}

/// A presence-class signal sent from one address to another.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal<P> {
    /// Available presence with the sender's presence document.
    Available(P),
    /// Unavailable presence, with the sender's last document when it gave one.
    Unavailable(Option<P>),
    /// A request for the receiver's current presence (RFC 6121 §4.3).
    Probe,
    /// A subscription signal (RFC 6121 §3).
    Subscription(SubscriptionAction),
}

/// What the front-end must do after a call on [`Core`].
#[derive(Clone, Debug, PartialEq)]
pub enum Effect<P> {
    /// Send a signal through normal routing: local addresses are processed as inbound,
    /// remote ones go over federation.
    Send {
        /// The sender (a local user, possibly one endpoint).
        from: Target,
        /// The receiver.
        to: Target,
        /// What to send.
        signal: Signal<P>,
    },
    /// Hand a signal straight to endpoints of a local user, with no further processing.
    Deliver {
        /// The sender as the user will see it.
        from: Target,
        /// The local user.
        to: Address,
        /// Which of the user's endpoints get it.
        endpoints: Vec<String>,
        /// What to deliver; `None` means the inbound unit that caused this call.
        signal: Option<Signal<P>>,
    },
    /// Push a changed roster item to the user's endpoints that asked for the roster.
    RosterPush {
        /// The local user whose roster changed.
        user: Address,
        /// The endpoints to push to.
        endpoints: Vec<String>,
        /// The item; `removed` tells a deletion.
        item: RosterItem,
        /// Whether the item was removed.
        removed: bool,
    },
}

/// Why something addressed to a local user could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// No such account (RFC 6121 §8.5.1).
    NoSuchUser,
    /// The account exists but cannot take this now (RFC 6121 §8.5.2.2: no available
    /// endpoint and no offline storage, or a type that must not go to a bare address).
    Unavailable,
}

/// What to do with a message addressed to a local user (RFC 6121 §8.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageDisposition {
    /// Deliver to these endpoints.
    Deliver(Vec<String>),
    /// Return an error to the sender.
    Refuse(Refusal),
    /// Discard silently.
    Drop,
}

/// A connected endpoint of a user and its presence.
#[derive(Clone, Debug)]
struct Endpoint<P> {
    /// Whether it has sent available presence (RFC 6121 §4.2: "available resource").
    presence: Option<P>,
    priority: i32,
    /// Whether it asked for the roster (an "interested resource", RFC 6121 §2.1.6).
    interested: bool,
    /// Entities it sent directed available presence to (RFC 6121 §4.6).
    directed: BTreeSet<Target>,
}

/// A local account.
#[derive(Clone, Debug)]
struct Account<P> {
    password: String,
    salt: [u8; 16],
    roster: Roster,
    endpoints: BTreeMap<String, Endpoint<P>>,
}

/// Errors of account management.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// The domain is not hosted here.
    #[error("domain {domain} is not hosted by this server")]
    UnknownDomain {
        /// The domain asked for.
        domain: String,
    },
    /// The account already exists.
    #[error("account {address} already exists")]
    Exists {
        /// The account.
        address: Address,
    },
    /// The account does not exist.
    #[error("account {address} does not exist")]
    NotFound {
        /// The account.
        address: Address,
    },
}

/// A summary of one account for the control API.
#[derive(Clone, Debug, Serialize)]
pub struct AccountInfo {
    /// The account's address.
    pub address: Address,
    /// Endpoints currently connected, with whether each is available.
    pub endpoints: BTreeMap<String, bool>,
    /// Roster entries.
    pub roster: Vec<RosterItem>,
}

/// The state of every hosted domain.
#[derive(Debug)]
pub struct Core<P> {
    domains: BTreeSet<String>,
    accounts: BTreeMap<Address, Account<P>>,
}

impl<P: Clone> Core<P> {
    /// A core hosting `domains`, with no accounts.
    pub fn new(domains: impl IntoIterator<Item = String>) -> Self {
        Core {
            domains: domains.into_iter().collect(),
            accounts: BTreeMap::new(),
        }
    }

    /// Whether `domain` is hosted here.
    pub fn hosts(&self, domain: &str) -> bool {
        self.domains.contains(domain)
    }

    /// The hosted domains.
    pub fn domains(&self) -> impl Iterator<Item = &String> {
        self.domains.iter()
    }

    /// Creates an account.
    ///
    /// # Errors
    /// [`AccountError::UnknownDomain`] or [`AccountError::Exists`].
    pub fn create_account(
        &mut self,
        address: Address,
        password: &str,
        salt: [u8; 16],
    ) -> Result<(), AccountError> {
        if !self.hosts(&address.domain) {
            return Err(AccountError::UnknownDomain {
                domain: address.domain,
            });
        }
        if self.accounts.contains_key(&address) {
            return Err(AccountError::Exists { address });
        }
        self.accounts.insert(
            address,
            Account {
                password: password.to_string(),
                salt,
                roster: Roster::default(),
                endpoints: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// Deletes an account, returning the endpoints that were connected (the front-end closes
    /// them).
    ///
    /// # Errors
    /// [`AccountError::NotFound`].
    pub fn delete_account(&mut self, address: &Address) -> Result<Vec<String>, AccountError> {
        let account = self
            .accounts
            .remove(address)
            .ok_or_else(|| AccountError::NotFound {
                address: address.clone(),
            })?;
        Ok(account.endpoints.into_keys().collect())
    }

    /// Removes every account.
    pub fn clear_accounts(&mut self) -> Vec<(Address, Vec<String>)> {
        std::mem::take(&mut self.accounts)
            .into_iter()
            .map(|(address, account)| (address, account.endpoints.into_keys().collect()))
            .collect()
    }

    /// Whether the account exists.
    pub fn exists(&self, address: &Address) -> bool {
        self.accounts.contains_key(address)
    }

    /// The password and salt of an account, for authentication.
    pub fn credentials(&self, address: &Address) -> Option<(String, [u8; 16])> {
        self.accounts
            .get(address)
            .map(|account| (account.password.clone(), account.salt))
    }

    /// Every account, for the control API.
    pub fn account_infos(&self) -> Vec<AccountInfo> {
        self.accounts
            .iter()
            .map(|(address, account)| AccountInfo {
                address: address.clone(),
                endpoints: account
                    .endpoints
                    .iter()
                    .map(|(name, endpoint)| (name.clone(), endpoint.presence.is_some()))
                    .collect(),
                roster: account.roster.entries_for_report(),
            })
            .collect()
    }

    /// The user's roster.
    pub fn roster(&self, user: &Address) -> Option<&Roster> {
        self.accounts.get(user).map(|account| &account.roster)
    }

    /// Registers a connected endpoint (XMPP: a bound resource). Returns `false` if the
    /// account does not exist or the endpoint is taken.
    pub fn connect(&mut self, user: &Address, endpoint: &str) -> bool {
        let Some(account) = self.accounts.get_mut(user) else {
            return false;
        };
        if account.endpoints.contains_key(endpoint) {
            return false;
        }
        account.endpoints.insert(
            endpoint.to_string(),
            Endpoint {
                presence: None,
                priority: 0,
                interested: false,
                directed: BTreeSet::new(),
            },
        );
        true
    }

    /// Whether `endpoint` of `user` is connected.
    pub fn is_connected(&self, user: &Address, endpoint: &str) -> bool {
        self.accounts
            .get(user)
            .is_some_and(|account| account.endpoints.contains_key(endpoint))
    }

    /// Connected endpoints of a user.
    pub fn endpoints(&self, user: &Address) -> Vec<String> {
        self.accounts
            .get(user)
            .map(|account| account.endpoints.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Endpoints of a user that are available (sent available presence).
    pub fn available_endpoints(&self, user: &Address) -> Vec<String> {
        self.accounts
            .get(user)
            .map(|account| {
                account
                    .endpoints
                    .iter()
                    .filter(|(_, endpoint)| endpoint.presence.is_some())
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Marks an endpoint as interested in roster pushes (it asked for the roster) and returns
    /// the roster items.
    pub fn roster_get(&mut self, user: &Address, endpoint: &str) -> Vec<RosterItem> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        if let Some(endpoint) = account.endpoints.get_mut(endpoint) {
            endpoint.interested = true;
        }
        account.roster.items().cloned().collect()
    }

    fn interested(&self, user: &Address) -> Vec<String> {
        self.accounts
            .get(user)
            .map(|account| {
                account
                    .endpoints
                    .iter()
                    .filter(|(_, endpoint)| endpoint.interested)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn push(&self, user: &Address, item: RosterItem, removed: bool) -> Effect<P> {
        Effect::RosterPush {
            user: user.clone(),
            endpoints: self.interested(user),
            item,
            removed,
        }
    }

    /// Roster set (RFC 6121 §2.3).
    pub fn roster_set(
        &mut self,
        user: &Address,
        contact: &Address,
        name: Option<String>,
        groups: Vec<String>,
    ) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let item = account.roster.set(contact, name, groups);
        vec![self.push(user, item, false)]
    }

    /// Roster remove (RFC 6121 §2.5): push the removal, cancel the user's subscription to the
    /// contact and revoke the contact's subscription to the user (§2.5.2).
    pub fn roster_remove(&mut self, user: &Address, contact: &Address) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let Some(item) = account.roster.remove(contact) else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        let from = Target::bare(user);
        let to = Target::bare(contact);
        if item.state.has_to() || item.state.pending_out() {
            effects.push(Effect::Send {
                from: from.clone(),
                to: to.clone(),
                signal: Signal::Subscription(SubscriptionAction::Unsubscribe),
            });
        }
        if item.state.has_from() || item.state.pending_in() {
            effects.push(Effect::Send {
                from,
                to,
                signal: Signal::Subscription(SubscriptionAction::Unsubscribed),
            });
        }
        if item.state.has_from() {
            // As when the user cancels (§3.2.2): the contact stops seeing the user.
            effects.extend(self.unavailable_to(user, contact));
        }
        if item.visible {
            effects.insert(0, self.push(user, item, true));
        }
        effects
    }

    /// A subscription signal sent by a local user (RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2).
    pub fn outbound_subscription(
        &mut self,
        user: &Address,
        contact: &Address,
        action: SubscriptionAction,
    ) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let transition = account.roster.apply(contact, Direction::Outbound, action);
        let mut effects = Vec::new();
        if let Some(item) = transition.push.clone() {
            effects.push(self.push(user, item, false));
        }
        // Requests and cancellations are always routed, so a contact's server whose state
        // drifted from ours converges; approvals and denials only when they answer something.
        let route = match action {
            SubscriptionAction::Subscribe | SubscriptionAction::Unsubscribe => true,
            SubscriptionAction::Subscribed | SubscriptionAction::Unsubscribed => {
                transition.changed()
            }
        };
        if route {
            effects.push(Effect::Send {
                from: Target::bare(user),
                to: Target::bare(contact),
                signal: Signal::Subscription(action),
            });
        }
        let gained_from = !transition.before.has_from() && transition.after.has_from();
        let lost_from = transition.before.has_from() && !transition.after.has_from();
        if gained_from {
            // §3.1.5: the contact now receives the user's current presence.
            effects.extend(self.presence_to(user, contact));
        } else if lost_from {
            // §3.2.2: the contact stops seeing the user: it gets unavailable presence.
            effects.extend(self.unavailable_to(user, contact));
        }
        effects
    }

    /// A subscription signal from a contact to a local user (RFC 6121 §3.1.3, §3.1.6, §3.2.3,
    /// §3.3.3). For an account that does not exist the signal is ignored (§8.5.1: "the server
    /// MUST silently ignore the stanza").
    pub fn inbound_subscription(
        &mut self,
        user: &Address,
        contact: &Address,
        action: SubscriptionAction,
    ) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let transition = account.roster.apply(contact, Direction::Inbound, action);
        let mut effects = Vec::new();
        if action == SubscriptionAction::Subscribe && transition.before.has_from() {
            // §3.1.3: already subscribed: the server answers for the user.
            effects.push(Effect::Send {
                from: Target::bare(user),
                to: Target::bare(contact),
                signal: Signal::Subscription(SubscriptionAction::Subscribed),
            });
            return effects;
        }
        if !transition.changed() {
            // Appendix A: "no state change" means the user is not bothered with it.
            return effects;
        }
        let endpoints = self.available_endpoints(user);
        if !endpoints.is_empty() {
            effects.push(Effect::Deliver {
                from: Target::bare(contact),
                to: user.clone(),
                endpoints,
                signal: None,
            });
        }
        if let Some(item) = transition.push {
            effects.push(self.push(user, item, false));
        }
        if transition.before.has_from() && !transition.after.has_from() {
            // §3.3.3: the contact unsubscribed: it gets unavailable from the user's endpoints.
            effects.extend(self.unavailable_to(user, contact));
        }
        effects
    }

    /// The user's current presence, one signal per available endpoint, to one contact.
    fn presence_to(&self, user: &Address, contact: &Address) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get(user) else {
            return Vec::new();
        };
        account
            .endpoints
            .iter()
            .filter_map(|(name, endpoint)| {
                endpoint.presence.as_ref().map(|presence| Effect::Send {
                    from: Target::endpoint(user, name),
                    to: Target::bare(contact),
                    signal: Signal::Available(presence.clone()),
                })
            })
            .collect()
    }

    fn unavailable_to(&self, user: &Address, contact: &Address) -> Vec<Effect<P>> {
        self.available_endpoints(user)
            .into_iter()
            .map(|name| Effect::Send {
                from: Target::endpoint(user, &name),
                to: Target::bare(contact),
                signal: Signal::Unavailable(None),
            })
            .collect()
    }

    /// Broadcast available presence from an endpoint (RFC 6121 §4.2 initial presence, §4.4
    /// updates). The first available presence also probes the contacts the user is subscribed
    /// to (§4.2.2) and redelivers pending subscription requests (§3.1.3).
    pub fn set_available(
        &mut self,
        user: &Address,
        endpoint: &str,
        presence: P,
        priority: i32,
    ) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let Some(state) = account.endpoints.get_mut(endpoint) else {
            return Vec::new();
        };
        let initial = state.presence.is_none();
        state.presence = Some(presence.clone());
        state.priority = priority;
        let from = Target::endpoint(user, endpoint);
        let mut effects: Vec<Effect<P>> = account
            .roster
            .presence_subscribers()
            .map(|contact| Effect::Send {
                from: from.clone(),
                to: Target::bare(contact),
                signal: Signal::Available(presence.clone()),
            })
            .collect();
        // The user's own available endpoints see each other (§4.2.2, §4.4.2).
        let own: Vec<String> = account
            .endpoints
            .iter()
            .filter(|(_, other)| other.presence.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        effects.push(Effect::Deliver {
            from: from.clone(),
            to: user.clone(),
            endpoints: own,
            signal: Some(Signal::Available(presence)),
        });
        if initial {
            effects.extend(
                account
                    .roster
                    .presence_sources()
                    .map(|contact| Effect::Send {
                        from: Target::bare(user),
                        to: Target::bare(contact),
                        signal: Signal::Probe,
                    }),
            );
            // The other endpoints' presence, so the new one learns of its siblings.
            for (name, other) in &account.endpoints {
                if let (Some(presence), true) = (&other.presence, name != endpoint) {
                    effects.push(Effect::Deliver {
                        from: Target::endpoint(user, name),
                        to: user.clone(),
                        endpoints: vec![endpoint.to_string()],
                        signal: Some(Signal::Available(presence.clone())),
                    });
                }
            }
            effects.extend(
                account
                    .roster
                    .pending_requests()
                    .map(|contact| Effect::Deliver {
                        from: Target::bare(contact),
                        to: user.clone(),
                        endpoints: vec![endpoint.to_string()],
                        signal: Some(Signal::Subscription(SubscriptionAction::Subscribe)),
                    }),
            );
        }
        effects
    }

    /// An endpoint becomes unavailable, by its own unavailable presence or because it
    /// disconnected (RFC 6121 §4.5): subscribers, directed-presence receivers and the user's
    /// other endpoints are told. With `disconnect` the endpoint is also removed.
    pub fn set_unavailable(
        &mut self,
        user: &Address,
        endpoint: &str,
        presence: Option<P>,
        disconnect: bool,
    ) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get_mut(user) else {
            return Vec::new();
        };
        let Some(state) = account.endpoints.get_mut(endpoint) else {
            return Vec::new();
        };
        let was_available = state.presence.take().is_some();
        let directed = std::mem::take(&mut state.directed);
        if disconnect {
            account.endpoints.remove(endpoint);
        }
        let from = Target::endpoint(user, endpoint);
        let signal = Signal::Unavailable(presence);
        let mut effects = Vec::new();
        if was_available {
            effects.extend(
                account
                    .roster
                    .presence_subscribers()
                    .map(|contact| Effect::Send {
                        from: from.clone(),
                        to: Target::bare(contact),
                        signal: signal.clone(),
                    }),
            );
            let own: Vec<String> = account
                .endpoints
                .iter()
                .filter(|(name, other)| other.presence.is_some() && *name != endpoint)
                .map(|(name, _)| name.clone())
                .collect();
            if !own.is_empty() {
                effects.push(Effect::Deliver {
                    from: from.clone(),
                    to: user.clone(),
                    endpoints: own,
                    signal: Some(signal.clone()),
                });
            }
        }
        // §4.6.3: those who got directed presence hear of the end too, unless they are
        // subscribers and already told.
        for target in directed {
            if !account.roster.state(&target.addr).has_from() {
                effects.push(Effect::Send {
                    from: from.clone(),
                    to: target,
                    signal: signal.clone(),
                });
            }
        }
        effects
    }

    /// Records directed presence (RFC 6121 §4.6): available presence sent straight to `to`
    /// by an available endpoint is remembered so `to` hears when the endpoint goes away;
    /// directed unavailable presence forgets it.
    pub fn directed_presence(
        &mut self,
        user: &Address,
        endpoint: &str,
        to: &Target,
        available: bool,
    ) {
        let Some(state) = self
            .accounts
            .get_mut(user)
            .and_then(|account| account.endpoints.get_mut(endpoint))
        else {
            return;
        };
        if available && state.presence.is_some() {
            state.directed.insert(to.clone());
        } else {
            state.directed.remove(to);
        }
    }

    /// A presence probe from `prober` about a local user (RFC 6121 §4.3.2).
    pub fn probe(&self, user: &Address, prober: &Target) -> Vec<Effect<P>> {
        let Some(account) = self.accounts.get(user) else {
            // §4.3.2: no such user: "unsubscribed" (the prober learns nothing more).
            return vec![Effect::Send {
                from: Target::bare(user),
                to: prober.clone(),
                signal: Signal::Subscription(SubscriptionAction::Unsubscribed),
            }];
        };
        if !account.roster.state(&prober.addr).has_from() {
            // §4.3.2: the prober is not subscribed: do not reveal presence.
            return vec![Effect::Send {
                from: Target::bare(user),
                to: prober.clone(),
                signal: Signal::Subscription(SubscriptionAction::Unsubscribed),
            }];
        }
        let available: Vec<Effect<P>> = account
            .endpoints
            .iter()
            .filter_map(|(name, endpoint)| {
                endpoint.presence.as_ref().map(|presence| Effect::Send {
                    from: Target::endpoint(user, name),
                    to: prober.clone(),
                    signal: Signal::Available(presence.clone()),
                })
            })
            .collect();
        if available.is_empty() {
            // §4.3.2: subscribed but offline: unavailable presence.
            vec![Effect::Send {
                from: Target::bare(user),
                to: prober.clone(),
                signal: Signal::Unavailable(None),
            }]
        } else {
            available
        }
    }

    /// Where inbound available or unavailable presence for a local user goes (RFC 6121 §4.2.3,
    /// §4.4.3, §4.5.3): to a bare address, every available endpoint; to an endpoint, that one
    /// if available.
    pub fn presence_targets(&self, to: &Target) -> Vec<String> {
        let available = self.available_endpoints(&to.addr);
        match &to.endpoint {
            None => available,
            Some(endpoint) => available
                .into_iter()
                .filter(|name| name == endpoint)
                .collect(),
        }
    }

    /// Where a message to a local user goes (RFC 6121 §8.5.2, §8.5.3).
    pub fn message_disposition(&self, to: &Target, kind: MessageKind) -> MessageDisposition {
        let Some(account) = self.accounts.get(&to.addr) else {
            // §8.5.1: no such user. Errors are never answered with errors.
            return match kind {
                MessageKind::Error => MessageDisposition::Drop,
                _ => MessageDisposition::Refuse(Refusal::NoSuchUser),
            };
        };
        if let Some(endpoint) = &to.endpoint {
            if account.endpoints.contains_key(endpoint) {
                // §8.5.3.1: the resource is connected: deliver, whatever the type.
                return MessageDisposition::Deliver(vec![endpoint.clone()]);
            }
            // §8.5.3.2.1: no such resource. Only "chat" falls back to the bare JID; for
            // "normal", "groupchat" and "headline" the server ignores the stanza or returns
            // an error (it answers normal and groupchat, and ignores headlines).
            match kind {
                MessageKind::Chat => {}
                MessageKind::Normal | MessageKind::Groupchat => {
                    return MessageDisposition::Refuse(Refusal::Unavailable);
                }
                MessageKind::Headline | MessageKind::Error => return MessageDisposition::Drop,
            }
        }
        // §8.5.2: to the bare address. Only non-negative priorities count as available
        // for delivery (§8.5.2.1).
        let candidates: Vec<(&String, i32)> = account
            .endpoints
            .iter()
            .filter(|(_, endpoint)| endpoint.presence.is_some() && endpoint.priority >= 0)
            .map(|(name, endpoint)| (name, endpoint.priority))
            .collect();
        match kind {
            MessageKind::Groupchat => MessageDisposition::Refuse(Refusal::Unavailable),
            MessageKind::Error => MessageDisposition::Drop,
            MessageKind::Headline if candidates.is_empty() => MessageDisposition::Drop,
            MessageKind::Headline => MessageDisposition::Deliver(
                candidates.into_iter().map(|(n, _)| n.clone()).collect(),
            ),
            MessageKind::Normal | MessageKind::Chat if candidates.is_empty() => {
                // §8.5.2.2.1: no offline storage here, so the sender gets an error.
                MessageDisposition::Refuse(Refusal::Unavailable)
            }
            MessageKind::Normal | MessageKind::Chat => {
                // §8.5.2.1.1: the most available endpoints (highest priority), all of them
                // when several share it.
                let top = candidates.iter().map(|(_, p)| *p).max().unwrap_or(0);
                MessageDisposition::Deliver(
                    candidates
                        .into_iter()
                        .filter(|(_, p)| *p == top)
                        .map(|(n, _)| n.clone())
                        .collect(),
                )
            }
        }
    }
}

impl Roster {
    fn entries_for_report(&self) -> Vec<RosterItem> {
        self.items().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> (Core<&'static str>, Address, Address) {
        let mut core = Core::new(["a.test".to_string()]);
        let alice = Address::new("alice", "a.test");
        let bob = Address::new("bob", "b.test");
        core.create_account(alice.clone(), "pw", [0; 16]).unwrap();
        (core, alice, bob)
    }

    #[test]
    fn accounts_only_on_hosted_domains() {
        let (mut core, alice, bob) = core();
        assert!(matches!(
            core.create_account(bob, "x", [0; 16]),
            Err(AccountError::UnknownDomain { .. })
        ));
        assert!(matches!(
            core.create_account(alice, "x", [0; 16]),
            Err(AccountError::Exists { .. })
        ));
    }

    #[test]
    fn approval_sends_current_presence() {
        let (mut core, alice, bob) = core();
        assert!(core.connect(&alice, "r1"));
        core.set_available(&alice, "r1", "here", 0);
        let effects = core.inbound_subscription(&alice, &bob, SubscriptionAction::Subscribe);
        assert!(matches!(&effects[0], Effect::Deliver { signal: None, .. }));
        let effects = core.outbound_subscription(&alice, &bob, SubscriptionAction::Subscribed);
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Send {
                signal: Signal::Subscription(SubscriptionAction::Subscribed),
                ..
            }
        )));
        assert!(effects.iter().any(|e| matches!(e,
            Effect::Send { signal: Signal::Available("here"), to, .. } if to.addr == bob)));
        // A second request from a subscriber is answered by the server.
        let effects = core.inbound_subscription(&alice, &bob, SubscriptionAction::Subscribe);
        assert!(matches!(
            &effects[..],
            [Effect::Send {
                signal: Signal::Subscription(SubscriptionAction::Subscribed),
                ..
            }]
        ));
    }

    #[test]
    fn probe_reveals_nothing_to_strangers() {
        let (mut core, alice, bob) = core();
        core.connect(&alice, "r1");
        core.set_available(&alice, "r1", "here", 0);
        let effects = core.probe(&alice, &Target::bare(&bob));
        assert!(matches!(
            &effects[..],
            [Effect::Send {
                signal: Signal::Subscription(SubscriptionAction::Unsubscribed),
                ..
            }]
        ));
    }

    #[test]
    fn message_rules_of_8_5() {
        let (mut core, alice, _) = core();
        let bare = Target::bare(&alice);
        assert_eq!(
            core.message_disposition(&bare, MessageKind::Chat),
            MessageDisposition::Refuse(Refusal::Unavailable)
        );
        assert_eq!(
            core.message_disposition(&bare, MessageKind::Headline),
            MessageDisposition::Drop
        );
        core.connect(&alice, "low");
        core.connect(&alice, "high");
        core.set_available(&alice, "low", "x", 1);
        core.set_available(&alice, "high", "x", 5);
        assert_eq!(
            core.message_disposition(&bare, MessageKind::Chat),
            MessageDisposition::Deliver(vec!["high".into()])
        );
        assert_eq!(
            core.message_disposition(&bare, MessageKind::Headline),
            MessageDisposition::Deliver(vec!["high".into(), "low".into()])
        );
        assert_eq!(
            core.message_disposition(&bare, MessageKind::Groupchat),
            MessageDisposition::Refuse(Refusal::Unavailable)
        );
        let gone = Target::endpoint(&alice, "gone");
        assert_eq!(
            core.message_disposition(&gone, MessageKind::Chat),
            MessageDisposition::Deliver(vec!["high".into()])
        );
        assert_eq!(
            core.message_disposition(&gone, MessageKind::Normal),
            MessageDisposition::Refuse(Refusal::Unavailable)
        );
        assert_eq!(
            core.message_disposition(&gone, MessageKind::Headline),
            MessageDisposition::Drop
        );
        let nobody = Target::bare(&Address::new("nobody", "a.test"));
        assert_eq!(
            core.message_disposition(&nobody, MessageKind::Normal),
            MessageDisposition::Refuse(Refusal::NoSuchUser)
        );
    }

    #[test]
    fn disconnect_tells_subscribers_and_directed_receivers() {
        let (mut core, alice, bob) = core();
        let carol = Target::bare(&Address::new("carol", "c.test"));
        core.connect(&alice, "r1");
        core.inbound_subscription(&alice, &bob, SubscriptionAction::Subscribe);
        core.outbound_subscription(&alice, &bob, SubscriptionAction::Subscribed);
        core.set_available(&alice, "r1", "here", 0);
        core.directed_presence(&alice, "r1", &carol, true);
        let effects = core.set_unavailable(&alice, "r1", None, true);
        let receivers: Vec<&Address> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    signal: Signal::Unavailable(_),
                    ..
                } => Some(&to.addr),
                _ => None,
            })
            .collect();
        assert_eq!(receivers, vec![&bob, &carol.addr]);
        assert!(core.endpoints(&alice).is_empty());
    }
}
