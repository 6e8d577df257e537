//! RFC 3261 §17.2.2: the non-INVITE server transaction (Figure 8).

use std::time::Instant;

use super::{Timers, TransactionKey};
use crate::codec::ParseError;
use crate::message::{Method, Request, Response};

/// The states of Figure 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerState {
    /// The request arrived; the TU has not answered.
    Trying,
    /// The TU sent a provisional response.
    Proceeding,
    /// The TU sent a final response; request retransmissions get it again until Timer J.
    Completed,
    /// Over.
    Terminated,
}

/// A non-INVITE server transaction (§17.2.2).
#[derive(Clone, Debug)]
pub struct ServerTransaction {
    key: TransactionKey,
    method: Method,
    reliable: bool,
    timers: Timers,
    state: ServerState,
    last_response: Option<Vec<u8>>,
    timer_j: Option<Instant>,
}

impl ServerTransaction {
    /// A transaction for a request just received (which the caller hands to its TU);
    /// `reliable` is true over TCP (Timer J zero).
    ///
    /// # Errors
    /// The [`ParseError`] of [`TransactionKey::of_request`].
    pub fn new(
        request: &Request,
        reliable: bool,
        timers: Timers,
        _now: Instant,
    ) -> Result<ServerTransaction, ParseError> {
        Ok(ServerTransaction {
            key: TransactionKey::of_request(request)?,
            method: request.method.clone(),
            reliable,
            timers,
            state: ServerState::Trying,
            last_response: None,
            timer_j: None,
        })
    }

    /// The key retransmissions are matched by.
    pub fn key(&self) -> &TransactionKey {
        &self.key
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Whether the transaction is over (and can be dropped).
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// A retransmission of the request arrived: the bytes of the last response to send
    /// again (Proceeding, Completed), or `None` (Trying: absorbed; Terminated).
    pub fn handle_retransmission(&mut self, _now: Instant) -> Option<Vec<u8>> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => self.last_response.clone(),
            ServerState::Trying | ServerState::Terminated => None,
        }
    }

    /// The TU's response: its bytes, to send. A final one moves to Completed, where Timer J
    /// runs (64·T1 unreliable; over a reliable transport it is zero and the transaction
    /// ends at once). Once a final response is sent, later ones are discarded (§17.2.2)
    /// and an empty vector is returned.
    pub fn respond(&mut self, response: &Response, now: Instant) -> Vec<u8> {
        if !matches!(self.state, ServerState::Trying | ServerState::Proceeding) {
            return Vec::new();
        }
        let bytes = response.to_bytes();
        self.last_response = Some(bytes.clone());
        if response.is_provisional() {
            self.state = ServerState::Proceeding;
        } else if self.reliable {
            self.state = ServerState::Terminated;
        } else {
            self.state = ServerState::Completed;
            self.timer_j = Some(now + self.timers.timer_j());
        }
        bytes
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ServerState::Completed => self.timer_j,
            _ => None,
        }
    }

    /// Runs Timer J if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ServerState::Completed && self.timer_j.is_some_and(|j| j <= now) {
            self.state = ServerState::Terminated;
            self.timer_j = None;
            self.last_response = None;
        }
    }
}
