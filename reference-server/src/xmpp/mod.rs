//! The XMPP front-end (RFC 6120, RFC 6121, XEP-0220): client and server streams around the
//! protocol-neutral [`crate::core`].

pub mod c2s;
pub mod conn;
pub mod outbox;
pub mod router;
pub mod s2s;
pub mod upload;

use std::collections::HashMap;
use std::sync::Mutex;

use std::time::Duration;

use imfed_xmpp::{Element, Jid, Limits, StreamErrorCondition};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::core::Address;
use crate::faults::{Involved, Switch};
pub use crate::state::{Shared, State};

/// Bound on each step of stream negotiation with a connected peer.
pub const NEGOTIATION_STEP: Duration = Duration::from_secs(10);
/// Capacity of each session's and link's outgoing queue.
pub const QUEUE: usize = 4096;

/// What a client session's task is told to do.
#[derive(Debug)]
pub enum SessionCommand {
    /// Write this stanza to the client.
    Stanza(Element),
    /// Close the stream with this stream error.
    Close(StreamErrorCondition),
}

/// How routing reaches a bound client session.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// The session's outgoing queue.
    pub tx: mpsc::Sender<SessionCommand>,
    /// Cancelled to disconnect a client that does not read (see [`outbox::SLOW_CONSUMER`]).
    pub kick: CancellationToken,
}

/// The XMPP front-end's own state: bound sessions, federation links, dialback.
#[derive(Debug)]
pub struct XmppState {
    /// Bound client sessions by account and resource.
    pub sessions: Mutex<HashMap<(Address, String), SessionHandle>>,
    /// Outbound federation links and inbound stream bookkeeping.
    pub links: s2s::Links,
    /// The dialback secret (XEP-0185).
    pub dialback_secret: Vec<u8>,
    /// Stanza size and depth limits.
    pub limits: Limits,
    /// The XEP-0363 upload service.
    pub uploads: upload::Uploads,
}

impl XmppState {
    /// The XMPP state for `config`: no sessions or links yet.
    pub fn new(config: &Config) -> Self {
        let dialback_secret = config
            .dialback_secret
            .clone()
            .map(String::into_bytes)
            .unwrap_or_else(|| random_id(32).into_bytes());
        XmppState {
            sessions: Mutex::default(),
            links: s2s::Links::default(),
            dialback_secret,
            limits: Limits {
                max_stanza_bytes: config.max_stanza_bytes,
                ..Limits::default()
            },
            uploads: upload::Uploads::new(config.upload_max_bytes),
        }
    }
}

impl Shared {
    /// Whether `switch` is on for `stanza`: its sender's and recipient's accounts, and the
    /// domain of either that is not hosted here (the peer it crosses a link with).
    pub fn fault_for(&self, switch: Switch, stanza: &Element) -> bool {
        if self.faults.is_empty() {
            return false;
        }
        let jids: Vec<Jid> = ["from", "to"]
            .iter()
            .filter_map(|name| stanza.attr(name))
            .filter_map(|text| Jid::parse(text).ok())
            .collect();
        let accounts: Vec<Address> = jids.iter().filter_map(address_of).collect();
        let peer = jids
            .iter()
            .map(Jid::domain)
            .find(|domain| !self.hosts(domain));
        self.faults.on(
            switch,
            Involved {
                accounts: &accounts,
                peer,
            },
        )
    }

    /// Whether `switch` is on for a session of `account`.
    pub fn fault_for_account(&self, switch: Switch, account: &Address) -> bool {
        !self.faults.is_empty()
            && self.faults.on(
                switch,
                Involved {
                    accounts: std::slice::from_ref(account),
                    peer: None,
                },
            )
    }

    /// Closes every session of an account (after it was deleted).
    pub fn close_sessions(&self, address: &Address, endpoints: &[String]) {
        let sessions = self.xmpp.sessions.lock().expect("sessions lock");
        for endpoint in endpoints {
            if let Some(handle) = sessions.get(&(address.clone(), endpoint.clone())) {
                // The account is gone: the session ends even if its queue is full.
                handle.kick.cancel();
                let _ = handle
                    .tx
                    .try_send(SessionCommand::Close(StreamErrorCondition::NotAuthorized));
            }
        }
    }
}

/// The core address of a JID's bare part (`None` for a domain-only JID).
pub fn address_of(jid: &Jid) -> Option<Address> {
    jid.local().map(|local| Address::new(local, jid.domain()))
}

/// The JID of a core address, optionally with an endpoint as resource.
pub fn jid_of(addr: &Address, endpoint: Option<&str>) -> Jid {
    Jid::new(Some(&addr.user), &addr.domain, endpoint)
        .or_else(|_| Jid::new(Some(&addr.user), &addr.domain, None))
        .expect("core addresses come from valid JIDs")
}

/// A random identifier (stream ids, generated resources, nonces).
pub fn random_id(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
