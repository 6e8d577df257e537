//! RFC 6121 §2 rosters and §3 / Appendix A presence subscription states.
//!
//! The nine states of RFC 6121 Appendix A.1 and the transition tables of A.2 (events the
//! local user generates) and A.3 (events the contact generates), with nothing protocol-specific:
//! the same state machine serves XMPP and, later, the SIP/SIMPLE and RVP profiles.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Address;

/// A subscription state between a user and one contact (RFC 6121 Appendix A.1).
///
/// "To" means the user receives the contact's presence; "From" means the contact receives
/// the user's presence; "Pending Out" is the user's unanswered request, "Pending In" the
/// contact's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// No subscription in either direction.
    #[default]
    None,
    /// The user asked the contact; no answer yet.
    NonePendingOut,
    /// The contact asked the user; no answer yet.
    NonePendingIn,
    /// Both asked; neither answered.
    NonePendingOutIn,
    /// The user receives the contact's presence.
    To,
    /// The user receives the contact's presence; the contact asked for the user's.
    ToPendingIn,
    /// The contact receives the user's presence.
    From,
    /// The contact receives the user's presence; the user asked for the contact's.
    FromPendingOut,
    /// Mutual subscription.
    Both,
}

/// Who generated a subscription event, seen from the local user's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The local user sent it (RFC 6121 Appendix A.2).
    Outbound,
    /// The contact sent it to the local user (RFC 6121 Appendix A.3).
    Inbound,
}

/// The four subscription signals (RFC 6121 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionAction {
    /// Request a subscription to the receiver's presence.
    Subscribe,
    /// Approve the receiver's request.
    Subscribed,
    /// Cancel the sender's subscription to the receiver's presence.
    Unsubscribe,
    /// Deny or revoke the receiver's subscription.
    Unsubscribed,
}

impl SubscriptionState {
    /// Whether the user receives the contact's presence.
    pub fn has_to(self) -> bool {
        matches!(self, Self::To | Self::ToPendingIn | Self::Both)
    }

    /// Whether the contact receives the user's presence.
    pub fn has_from(self) -> bool {
        matches!(self, Self::From | Self::FromPendingOut | Self::Both)
    }

    /// Whether the user's request is unanswered (`ask='subscribe'` in XMPP).
    pub fn pending_out(self) -> bool {
        matches!(
            self,
            Self::NonePendingOut | Self::NonePendingOutIn | Self::FromPendingOut
        )
    }

    /// Whether the contact's request is unanswered.
    pub fn pending_in(self) -> bool {
        matches!(
            self,
            Self::NonePendingIn | Self::NonePendingOutIn | Self::ToPendingIn
        )
    }

    fn from_parts(to: bool, from: bool, pending_out: bool, pending_in: bool) -> Self {
        match (to, from, pending_out, pending_in) {
            (true, true, _, _) => Self::Both,
            (true, false, _, true) => Self::ToPendingIn,
            (true, false, _, false) => Self::To,
            (false, true, true, _) => Self::FromPendingOut,
            (false, true, false, _) => Self::From,
            (false, false, true, true) => Self::NonePendingOutIn,
            (false, false, true, false) => Self::NonePendingOut,
            (false, false, false, true) => Self::NonePendingIn,
            (false, false, false, false) => Self::None,
        }
    }

    /// The value of the XMPP roster `subscription` attribute (RFC 6121 §2.1.2.5).
    pub fn subscription_attr(self) -> &'static str {
        match (self.has_to(), self.has_from()) {
            (true, true) => "both",
            (true, false) => "to",
            (false, true) => "from",
            (false, false) => "none",
        }
    }

    /// The state after `action` in `direction`, or `None` where RFC 6121 Appendix A says
    /// "no state change".
    ///
    /// Each row of the Appendix A tables is the rule below applied to the four state bits:
    /// a request sets a pending bit unless the subscription already exists, an approval turns
    /// the matching pending bit into a subscription, and a cancellation or denial clears a
    /// subscription and its pending bit.
    pub fn apply(self, direction: Direction, action: SubscriptionAction) -> Option<Self> {
        let (mut to, mut from) = (self.has_to(), self.has_from());
        let (mut out, mut inn) = (self.pending_out(), self.pending_in());
        use Direction::{Inbound, Outbound};
        use SubscriptionAction::{Subscribe, Subscribed, Unsubscribe, Unsubscribed};
        match (direction, action) {
            // A.2.1: the user asks for the contact's presence.
            (Outbound, Subscribe) if !to => out = true,
            // A.2.2: the user cancels its subscription to the contact (or its request).
            (Outbound, Unsubscribe) => (to, out) = (false, false),
            // A.2.3: the user approves the contact's pending request.
            (Outbound, Subscribed) if inn => (from, inn) = (true, false),
            // A.2.4: the user denies the contact's request or revokes its subscription.
            (Outbound, Unsubscribed) => (from, inn) = (false, false),
            // A.3.1: the contact asks for the user's presence.
            (Inbound, Subscribe) if !from => inn = true,
            // A.3.2: the contact cancels its subscription to the user.
            (Inbound, Unsubscribe) => (from, inn) = (false, false),
            // A.3.3: the contact approves the user's pending request.
            (Inbound, Subscribed) if out => (to, out) = (true, false),
            // A.3.4: the contact denies the user's request or revokes the user's subscription.
            (Inbound, Unsubscribed) => (to, out) = (false, false),
            _ => return None,
        }
        let next = Self::from_parts(to, from, out, inn);
        (next != self).then_some(next)
    }
}

/// One contact in a user's roster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RosterItem {
    /// The contact's bare address.
    pub contact: Address,
    /// The user's name for the contact.
    pub name: Option<String>,
    /// Groups the user put the contact in.
    pub groups: Vec<String>,
    /// The subscription state.
    pub state: SubscriptionState,
    /// Whether the item is in the roster. A contact known only by an unanswered inbound
    /// request is tracked without an item (RFC 6121 §3.1.3: the request is not a roster item).
    pub visible: bool,
}

/// The result of applying a subscription event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before the event.
    pub before: SubscriptionState,
    /// The state after the event (equal to `before` when nothing changed).
    pub after: SubscriptionState,
    /// The item to push to the user's interested endpoints, when a visible item changed.
    pub push: Option<RosterItem>,
}

impl Transition {
    /// Whether the state changed.
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// A user's roster: items, and contacts known only by pending inbound requests.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    entries: BTreeMap<Address, RosterItem>,
}

impl Roster {
    /// The items the user sees (RFC 6121 §2.1.3 roster get).
    pub fn items(&self) -> impl Iterator<Item = &RosterItem> {
        self.entries.values().filter(|item| item.visible)
    }

    /// The entry for `contact`, visible or not.
    pub fn get(&self, contact: &Address) -> Option<&RosterItem> {
        self.entries.get(contact)
    }

    /// The subscription state with `contact` (`None` when unknown).
    pub fn state(&self, contact: &Address) -> SubscriptionState {
        self.entries
            .get(contact)
            .map_or(SubscriptionState::None, |item| item.state)
    }

    /// Contacts that receive the user's presence (states with "From").
    pub fn presence_subscribers(&self) -> impl Iterator<Item = &Address> {
        self.entries
            .values()
            .filter(|item| item.state.has_from())
            .map(|item| &item.contact)
    }

    /// Contacts whose presence the user receives (states with "To").
    pub fn presence_sources(&self) -> impl Iterator<Item = &Address> {
        self.entries
            .values()
            .filter(|item| item.state.has_to())
            .map(|item| &item.contact)
    }

    /// Contacts with an unanswered inbound request (to redeliver at login, RFC 6121 §3.1.3).
    pub fn pending_requests(&self) -> impl Iterator<Item = &Address> {
        self.entries
            .values()
            .filter(|item| item.state.pending_in())
            .map(|item| &item.contact)
    }

    /// Roster set (RFC 6121 §2.3): creates or updates the item, keeping its subscription state.
    pub fn set(
        &mut self,
        contact: &Address,
        name: Option<String>,
        groups: Vec<String>,
    ) -> RosterItem {
        let item = self.entry(contact);
        item.name = name;
        item.groups = groups;
        item.visible = true;
        item.clone()
    }

    /// Roster remove (RFC 6121 §2.5): forgets the contact, returning what was there so the
    /// caller can cancel and revoke subscriptions (§2.5.2).
    pub fn remove(&mut self, contact: &Address) -> Option<RosterItem> {
        self.entries.remove(contact)
    }

    /// Applies a subscription event (RFC 6121 Appendix A).
    ///
    /// Outbound requests and approvals create a visible item when there is none (§3.1.2,
    /// §3.1.5); an inbound request creates an invisible entry. An entry that ends in `None`
    /// with no item is dropped.
    pub fn apply(
        &mut self,
        contact: &Address,
        direction: Direction,
        action: SubscriptionAction,
    ) -> Transition {
        let before = self.state(contact);
        let Some(after) = before.apply(direction, action) else {
            return Transition {
                before,
                after: before,
                push: None,
            };
        };
        let item = self.entry(contact);
        item.state = after;
        if direction == Direction::Outbound
            && matches!(
                action,
                SubscriptionAction::Subscribe | SubscriptionAction::Subscribed
            )
        {
            item.visible = true;
        }
        let push = item.visible.then(|| item.clone());
        if !item.visible && after == SubscriptionState::None {
            self.entries.remove(contact);
        }
        Transition {
            before,
            after,
            push,
        }
    }

    fn entry(&mut self, contact: &Address) -> &mut RosterItem {
        self.entries
            .entry(contact.clone())
            .or_insert_with(|| RosterItem {
                contact: contact.clone(),
                name: None,
                groups: Vec::new(),
                state: SubscriptionState::None,
                visible: false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriptionAction::*;
    use super::SubscriptionState::*;
    use super::*;

    const STATES: [SubscriptionState; 9] = [
        None,
        NonePendingOut,
        NonePendingIn,
        NonePendingOutIn,
        To,
        ToPendingIn,
        From,
        FromPendingOut,
        Both,
    ];

    /// Each Appendix A table, row by row in the RFC's order of `STATES`; `X` = no state change.
    fn table(direction: Direction, action: SubscriptionAction) -> [Option<SubscriptionState>; 9] {
        const X: Option<SubscriptionState> = Option::None;
        match (direction, action) {
            // A.2.1 Outbound subscribe
            (Direction::Outbound, Subscribe) => [
                Some(NonePendingOut),
                X,
                Some(NonePendingOutIn),
                X,
                X,
                X,
                Some(FromPendingOut),
                X,
                X,
            ],
            // A.2.2 Outbound unsubscribe
            (Direction::Outbound, Unsubscribe) => [
                X,
                Some(None),
                X,
                Some(NonePendingIn),
                Some(None),
                Some(NonePendingIn),
                X,
                Some(From),
                Some(From),
            ],
            // A.2.3 Outbound subscribed
            (Direction::Outbound, Subscribed) => [
                X,
                X,
                Some(From),
                Some(FromPendingOut),
                X,
                Some(Both),
                X,
                X,
                X,
            ],
            // A.2.4 Outbound unsubscribed
            (Direction::Outbound, Unsubscribed) => [
                X,
                X,
                Some(None),
                Some(NonePendingOut),
                X,
                Some(To),
                Some(None),
                Some(NonePendingOut),
                Some(To),
            ],
            // A.3.1 Inbound subscribe
            (Direction::Inbound, Subscribe) => [
                Some(NonePendingIn),
                Some(NonePendingOutIn),
                X,
                X,
                Some(ToPendingIn),
                X,
                X,
                X,
                X,
            ],
            // A.3.2 Inbound unsubscribe
            (Direction::Inbound, Unsubscribe) => [
                X,
                X,
                Some(None),
                Some(NonePendingOut),
                X,
                Some(To),
                Some(None),
                Some(NonePendingOut),
                Some(To),
            ],
            // A.3.3 Inbound subscribed
            (Direction::Inbound, Subscribed) => {
                [X, Some(To), X, Some(ToPendingIn), X, X, X, Some(Both), X]
            }
            // A.3.4 Inbound unsubscribed
            (Direction::Inbound, Unsubscribed) => [
                X,
                Some(None),
                X,
                Some(NonePendingIn),
                Some(None),
                Some(NonePendingIn),
                X,
                Some(From),
                Some(From),
            ],
        }
    }

    #[test]
    fn every_row_of_appendix_a() {
        for direction in [Direction::Outbound, Direction::Inbound] {
            for action in [Subscribe, Subscribed, Unsubscribe, Unsubscribed] {
                let expected = table(direction, action);
                for (state, want) in STATES.iter().zip(expected) {
                    assert_eq!(
                        state.apply(direction, action),
                        want,
                        "{direction:?} {action:?} from {state:?}"
                    );
                }
            }
        }
    }

    fn addr(user: &str) -> Address {
        Address::new(user, "a.test")
    }

    #[test]
    fn inbound_request_is_not_a_roster_item_until_approved() {
        let mut roster = Roster::default();
        let bob = addr("bob");
        let t = roster.apply(&bob, Direction::Inbound, Subscribe);
        assert_eq!(t.after, NonePendingIn);
        assert_eq!(t.push, Option::None);
        assert_eq!(roster.items().count(), 0);
        assert_eq!(roster.pending_requests().count(), 1);
        let t = roster.apply(&bob, Direction::Outbound, Subscribed);
        assert_eq!(t.after, From);
        assert_eq!(t.push.map(|item| item.visible), Some(true));
        assert_eq!(roster.presence_subscribers().count(), 1);
    }

    #[test]
    fn denied_request_leaves_no_entry() {
        let mut roster = Roster::default();
        let bob = addr("bob");
        roster.apply(&bob, Direction::Inbound, Subscribe);
        let t = roster.apply(&bob, Direction::Outbound, Unsubscribed);
        assert_eq!(t.after, None);
        assert!(roster.get(&bob).is_none());
    }

    #[test]
    fn set_keeps_state_and_remove_returns_it() {
        let mut roster = Roster::default();
        let bob = addr("bob");
        roster.apply(&bob, Direction::Outbound, Subscribe);
        let item = roster.set(&bob, Some("Bob".into()), vec!["Friends".into()]);
        assert_eq!(item.state, NonePendingOut);
        assert_eq!(roster.items().count(), 1);
        assert_eq!(
            roster.remove(&bob).map(|item| item.state),
            Some(NonePendingOut)
        );
        assert_eq!(roster.state(&bob), None);
    }
}
