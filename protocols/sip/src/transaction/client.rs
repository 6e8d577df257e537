//! RFC 3261 §17.1.2: the non-INVITE client transaction (Figure 6).

use std::time::{Duration, Instant};

use super::{Timers, TransactionKey};
use crate::codec::ParseError;
use crate::message::{Request, Response};

/// The states of Figure 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// The request is sent; no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; retransmissions of it are absorbed until Timer K.
    Completed,
    /// Over.
    Terminated,
}

/// What a client transaction hands to its transaction user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// A 1xx response.
    Provisional(Response),
    /// The final response (passed up once).
    Final(Response),
    /// Timer F fired: no final response in 64·T1 (the TU treats it as a 408, §8.1.3.1).
    Timeout,
}

/// A non-INVITE client transaction (§17.1.2).
#[derive(Clone, Debug)]
pub struct ClientTransaction {
    key: TransactionKey,
    request: Request,
    bytes: Vec<u8>,
    reliable: bool,
    timers: Timers,
    state: ClientState,
    /// A transmission is due (the first one, or a retransmission Timer E asked for).
    transmit: bool,
    /// Timer E: when it fires next and the interval it was set with.
    timer_e: Option<(Instant, Duration)>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientTransaction {
    /// Starts a transaction for `request`, which must carry a top Via with a branch
    /// ([`new_branch`](super::new_branch)); `reliable` is true over TCP (no
    /// retransmissions, Timer K zero). The request is serialized once, now.
    ///
    /// A request whose key cannot be read (no parseable top Via) gets an empty key that no
    /// response matches, so the transaction ends with [`ClientEvent::Timeout`]; use
    /// [`try_new`](Self::try_new) to get the error instead.
    pub fn new(
        request: Request,
        reliable: bool,
        timers: Timers,
        now: Instant,
    ) -> ClientTransaction {
        let key = TransactionKey::of_request(&request).unwrap_or_else(|_| TransactionKey {
            branch: String::new(),
            sent_by: String::new(),
            method: request.method.clone(),
        });
        ClientTransaction::with_key(key, request, reliable, timers, now)
    }

    /// As [`new`](Self::new), refusing a request whose key cannot be read.
    ///
    /// # Errors
    /// The [`ParseError`] of [`TransactionKey::of_request`].
    pub fn try_new(
        request: Request,
        reliable: bool,
        timers: Timers,
        now: Instant,
    ) -> Result<ClientTransaction, ParseError> {
        let key = TransactionKey::of_request(&request)?;
        Ok(ClientTransaction::with_key(
            key, request, reliable, timers, now,
        ))
    }

    fn with_key(
        key: TransactionKey,
        request: Request,
        reliable: bool,
        timers: Timers,
        now: Instant,
    ) -> ClientTransaction {
        ClientTransaction {
            key,
            bytes: request.to_bytes(),
            request,
            reliable,
            timers,
            state: ClientState::Trying,
            transmit: true,
            timer_e: (!reliable).then(|| (now + timers.t1, timers.t1)),
            timer_f: Some(now + timers.timer_f()),
            timer_k: None,
        }
    }

    /// The key responses are matched by.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether the transaction is over (and can be dropped).
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// The bytes to send now: the first transmission, then each retransmission Timer E
    /// calls for (T1, 2·T1, 4·T1... capped at T2 in Trying, T2 in Proceeding); `None` when
    /// nothing is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.run_timer_e(now);
        std::mem::take(&mut self.transmit).then(|| self.bytes.clone())
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                let e = self.timer_e.map(|(at, _)| at);
                match (e, self.timer_f) {
                    (Some(e), Some(f)) => Some(e.min(f)),
                    (e, f) => e.or(f),
                }
            }
            ClientState::Completed => self.timer_k,
            ClientState::Terminated => None,
        }
    }

    /// Runs the timers due at `now`: Timer E queues a retransmission (for
    /// [`poll_transmit`](Self::poll_transmit)), Timer F ends the transaction with
    /// [`ClientEvent::Timeout`], Timer K ends a completed one.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ClientEvent> {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if self.timer_f.is_some_and(|f| f <= now) {
                    self.terminate();
                    return Some(ClientEvent::Timeout);
                }
                self.run_timer_e(now);
                None
            }
            ClientState::Completed => {
                if self.timer_k.is_some_and(|k| k <= now) {
                    self.terminate();
                }
                None
            }
            ClientState::Terminated => None,
        }
    }

    /// Takes a response (§17.1.3): one whose key is not this transaction's is ignored
    /// (`None`). Each provisional response is passed up, and the first final one; a
    /// retransmitted final response is absorbed (`None`).
    pub fn handle_response(&mut self, response: Response, now: Instant) -> Option<ClientEvent> {
        if TransactionKey::of_response(&response).ok().as_ref() != Some(&self.key) {
            return None;
        }
        match self.state {
            ClientState::Trying | ClientState::Proceeding if response.is_provisional() => {
                self.state = ClientState::Proceeding;
                Some(ClientEvent::Provisional(response))
            }
            ClientState::Trying | ClientState::Proceeding => {
                self.timer_e = None;
                self.timer_f = None;
                self.transmit = false;
                if self.reliable {
                    self.terminate();
                } else {
                    self.state = ClientState::Completed;
                    self.timer_k = Some(now + self.timers.timer_k());
                }
                Some(ClientEvent::Final(response))
            }
            ClientState::Completed | ClientState::Terminated => None,
        }
    }

    /// Fires Timer E if it is due (and Timer F is not).
    fn run_timer_e(&mut self, now: Instant) {
        if !matches!(self.state, ClientState::Trying | ClientState::Proceeding)
            || self.timer_f.is_some_and(|f| f <= now)
        {
            return;
        }
        let Some((due, interval)) = self.timer_e else {
            return;
        };
        if due > now {
            return;
        }
        self.transmit = true;
        let next = match self.state {
            ClientState::Proceeding => self.timers.t2,
            _ => (interval * 2).min(self.timers.t2),
        };
        // From the instant it fired, so that a caller that comes back late gets the full
        // interval before the next retransmission.
        self.timer_e = Some((now + next, next));
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.transmit = false;
        self.timer_e = None;
        self.timer_f = None;
        self.timer_k = None;
    }
}
