//! Misbehaviour switches: deliberate protocol violations, so the suite can prove that each of
//! its checks fails against a broken server. Never on unless a test or operator turns them on.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// One deliberate violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    /// Available and unavailable presence is not sent over federation (RFC 6121 §4.2.2,
    /// §4.4.2, §4.5.2 broken).
    DropPresenceOut,
    /// An inbound `subscribed` is ignored, so the subscription never reaches "To"
    /// (RFC 6121 §3.1.6 broken).
    IgnoreSubscribedIn,
    /// Every message sent over federation is sent twice (RFC 2779 §5.4.2 broken).
    DuplicateMessagesOut,
    /// Messages sent over federation are sent in swapped pairs (RFC 6120 §10.1 broken).
    ReorderMessagesOut,
    /// Stanza errors this server generates carry `undefined-condition` instead of the
    /// condition the RFC prescribes (RFC 6120 §8.3.3, RFC 6121 §8.5 broken).
    WrongErrorCondition,
    /// Nothing is broadcast when a client disconnects without unavailable presence
    /// (RFC 6121 §4.5.3.2 broken).
    NoUnavailableOnDisconnect,
    /// Message bodies crossing federation inbound are re-encoded as Latin-1 mojibake
    /// (RFC 6120 §11.6 broken).
    MangleUnicodeIn,
}

impl Switch {
    /// Every switch.
    pub const ALL: [Switch; 7] = [
        Switch::DropPresenceOut,
        Switch::IgnoreSubscribedIn,
        Switch::DuplicateMessagesOut,
        Switch::ReorderMessagesOut,
        Switch::WrongErrorCondition,
        Switch::NoUnavailableOnDisconnect,
        Switch::MangleUnicodeIn,
    ];

    /// The switch's configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Switch::DropPresenceOut => "drop_presence_out",
            Switch::IgnoreSubscribedIn => "ignore_subscribed_in",
            Switch::DuplicateMessagesOut => "duplicate_messages_out",
            Switch::ReorderMessagesOut => "reorder_messages_out",
            Switch::WrongErrorCondition => "wrong_error_condition",
            Switch::NoUnavailableOnDisconnect => "no_unavailable_on_disconnect",
            Switch::MangleUnicodeIn => "mangle_unicode_in",
        }
    }
}

impl FromStr for Switch {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Switch::ALL
            .into_iter()
            .find(|switch| switch.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Switch::ALL.iter().map(|s| s.name()).collect();
                format!("unknown misbehaviour {name:?}; known: {}", known.join(", "))
            })
    }
}

/// The switches that are on.
#[derive(Debug, Default)]
pub struct Switches(RwLock<BTreeSet<Switch>>);

impl Switches {
    /// Whether `switch` is on.
    pub fn on(&self, switch: Switch) -> bool {
        self.0.read().expect("switches lock").contains(&switch)
    }

    /// Replaces the set of switches that are on.
    pub fn set(&self, switches: impl IntoIterator<Item = Switch>) {
        *self.0.write().expect("switches lock") = switches.into_iter().collect();
    }

    /// The switches that are on.
    pub fn list(&self) -> Vec<Switch> {
        self.0
            .read()
            .expect("switches lock")
            .iter()
            .copied()
            .collect()
    }
}
