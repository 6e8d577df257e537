//! The XMPP front-end (RFC 6120, RFC 6121, XEP-0220): client and server streams around the
//! protocol-neutral [`crate::core`].

pub mod c2s;
pub mod conn;
pub mod outbox;
pub mod router;
pub mod s2s;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use imfed_xmpp::{Element, Jid, Limits, StreamErrorCondition};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::core::{Address, Core};
use crate::faults::{Involved, Switch};
use crate::fedlog::FedLog;
use crate::tls::TlsContext;

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

/// The state every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// Accounts, rosters and presence; stanza payloads are XMPP elements.
    pub core: Mutex<Core<Element>>,
    /// Bound client sessions by account and resource.
    pub sessions: Mutex<HashMap<(Address, String), SessionHandle>>,
    /// Static routes: remote domain to `host:port` (from the configuration, changeable
    /// through the control API).
    pub routes: std::sync::RwLock<std::collections::BTreeMap<String, String>>,
    /// Outbound federation links and inbound stream bookkeeping.
    pub links: s2s::Links,
    /// Everything that crossed a federation link, as this server parsed it.
    pub fedlog: FedLog,
    /// The bytes of every server-to-server connection, as they crossed the socket.
    pub tap: Arc<crate::tap::Tap>,
    /// TLS material.
    pub tls: TlsContext,
    /// The dialback secret (XEP-0185).
    pub dialback_secret: Vec<u8>,
    /// Faults that make the server deliberately wrong, for testing the suite's checks.
    pub faults: crate::faults::Faults,
    /// Stanza size and depth limits.
    pub limits: Limits,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every connection task, waited for at shutdown.
    pub tasks: TaskTracker,
    /// This state's own handle, for tasks spawned from inside it.
    pub me: std::sync::Weak<Shared>,
}

impl Shared {
    /// The core, locked. The lock is never held across an await.
    pub fn core(&self) -> std::sync::MutexGuard<'_, Core<Element>> {
        self.core.lock().expect("core lock poisoned")
    }

    /// Whether `domain` is hosted here.
    pub fn hosts(&self, domain: &str) -> bool {
        self.config.domains.iter().any(|d| d == domain)
    }

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
        let sessions = self.sessions.lock().expect("sessions lock");
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

/// Shared state handle.
pub type State = Arc<Shared>;
