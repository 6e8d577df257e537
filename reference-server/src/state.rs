//! The server's shared state: what every front-end (XMPP, RVP, SIP) uses, and each front-end's own
//! part beside it.
//!
//! Accounts, routes, the federation log, the wire tap, TLS material, faults and the task
//! bookkeeping are protocol-neutral: an account provisioned once logs in over XMPP and over
//! RVP with the same password.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use imfed_xmpp::Element;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::core::Core;
use crate::fedlog::FedLog;
use crate::tls::TlsContext;

/// The state every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// Accounts, rosters and presence; stanza payloads are XMPP elements.
    pub core: Mutex<Core<Element>>,
    /// Static XMPP routes: remote domain to `host:port` (from the configuration, changeable
    /// through the control API).
    pub routes: RwLock<BTreeMap<String, String>>,
    /// Everything that crossed a federation link, as this server parsed it.
    pub fedlog: FedLog,
    /// The bytes of every server-to-server connection, as they crossed the socket.
    pub tap: Arc<crate::tap::Tap>,
    /// TLS material.
    pub tls: TlsContext,
    /// Faults that make the server deliberately wrong, for testing the suite's checks.
    pub faults: crate::faults::Faults,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Every connection task, waited for at shutdown.
    pub tasks: TaskTracker,
    /// This state's own handle, for tasks spawned from inside it.
    pub me: std::sync::Weak<Shared>,
    /// The XMPP front-end's sessions and links.
    pub xmpp: crate::xmpp::XmppState,
    /// The RVP front-end's endpoints, views, subscriptions and ACLs.
    pub rvp: crate::rvp::RvpState,
    /// The SIP front-end's registrations, publications, subscriptions and transactions.
    pub sip: crate::sip::SipState,
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
}

/// Shared state handle.
pub type State = Arc<Shared>;
