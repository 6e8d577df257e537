//! Delivery with backpressure (RFC 6120 §10.1: stanzas from one sender arrive in order, and
//! none is dropped silently).
//!
//! Routing decisions are synchronous (they consult the core under its lock); what they
//! produce (stanzas for local sessions and for federation links) is collected in an outbox
//! and then delivered by the task that handled the incoming stanza, awaiting room in each
//! queue. A full queue therefore slows down the connection the stanzas came from instead of
//! losing them. A consumer that stays full for [`SLOW_CONSUMER`] is disconnected with
//! `resource-constraint` (a session) or gets its stanza bounced with the same condition (a
//! link), so two clients flooding each other cannot deadlock the server.

use std::cell::RefCell;
use std::time::Duration;

use imfed_xmpp::{Element, StanzaErrorCondition, StreamErrorCondition};
use tracing::warn;

use super::{SessionCommand, Shared};
use crate::core::Address;

/// How long a delivery waits for room in a full queue.
pub const SLOW_CONSUMER: Duration = Duration::from_secs(10);

/// Something routing produced, to be delivered after the routing step.
#[derive(Debug)]
pub enum Pending {
    /// A stanza for a local session.
    Session {
        /// The account.
        addr: Address,
        /// The resource.
        endpoint: String,
        /// The stanza.
        stanza: Element,
    },
    /// A stanza for the federation link from `local` to `remote`.
    Link {
        /// Our domain.
        local: String,
        /// The remote domain.
        remote: String,
        /// The stanza.
        stanza: Element,
    },
}

tokio::task_local! {
    static OUTBOX: RefCell<Vec<Pending>>;
}

/// Queues `pending` in the current dispatch; hands it back when called outside one.
pub fn push(pending: Pending) -> Result<(), Box<Pending>> {
    let slot = RefCell::new(Some(pending));
    let _ = OUTBOX.try_with(|outbox| outbox.borrow_mut().extend(slot.take()));
    match slot.into_inner() {
        None => Ok(()),
        Some(pending) => Err(Box::new(pending)),
    }
}

fn collect<R>(work: impl FnOnce() -> R) -> (R, Vec<Pending>) {
    OUTBOX.sync_scope(RefCell::new(Vec::new()), || {
        let result = work();
        let pending = OUTBOX.with(|outbox| outbox.take());
        (result, pending)
    })
}

impl Shared {
    /// Queues `pending` in the current dispatch; outside one (not on the server's own
    /// paths), delivers it from a task of its own.
    pub fn enqueue(&self, pending: Pending) {
        if let Err(pending) = push(pending) {
            let state = self.arc();
            tokio::spawn(async move {
                state
                    .dispatch(move |_| {
                        let _ = push(*pending);
                    })
                    .await;
            });
        }
    }

    /// Runs synchronous routing `work`, then delivers everything it produced, in order,
    /// waiting for room in each queue.
    pub async fn dispatch<R>(&self, work: impl FnOnce(&Shared) -> R) -> R {
        let (result, mut pending) = collect(|| work(self));
        while !pending.is_empty() {
            let mut bounces = Vec::new();
            for item in pending.drain(..) {
                match item {
                    Pending::Session {
                        addr,
                        endpoint,
                        stanza,
                    } => self.deliver_session(&addr, &endpoint, stanza).await,
                    Pending::Link {
                        local,
                        remote,
                        stanza,
                    } => {
                        if let Err(bounce) =
                            self.xmpp.links.deliver(self, &local, &remote, stanza).await
                        {
                            bounces.push(bounce);
                        }
                    }
                }
            }
            // Bounces are routed like anything else, and may produce more work.
            let ((), more) = collect(|| {
                for (stanza, condition) in bounces {
                    self.bounce(&stanza, condition);
                }
            });
            pending = more;
        }
        result
    }

    async fn deliver_session(&self, addr: &Address, endpoint: &str, stanza: Element) {
        let handle = self
            .xmpp
            .sessions
            .lock()
            .expect("sessions lock")
            .get(&(addr.clone(), endpoint.to_string()))
            .cloned();
        // A session that went away in between: the stanza is for nobody, as if it had
        // arrived a moment later (RFC 6121 §8.5.3.2 would apply then).
        let Some(handle) = handle else { return };
        match tokio::time::timeout(SLOW_CONSUMER, handle.tx.reserve()).await {
            Ok(Ok(permit)) => permit.send(SessionCommand::Stanza(stanza)),
            // Closed: the session is ending.
            Ok(Err(_)) => {}
            Err(_) => {
                warn!(%addr, endpoint, "session queue stayed full; disconnecting the slow client");
                handle.kick.cancel();
            }
        }
    }
}

/// The condition for a stanza bounced because a link's queue stayed full.
pub const LINK_FULL: StanzaErrorCondition = StanzaErrorCondition::ResourceConstraint;
/// The stream error for a session disconnected for not reading.
pub const SESSION_FULL: StreamErrorCondition = StreamErrorCondition::ResourceConstraint;
