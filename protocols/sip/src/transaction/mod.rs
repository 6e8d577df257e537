//! RFC 3261 §17: transactions, for the non-INVITE requests this profile uses (REGISTER,
//! OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH): the client's state machine (§17.1.2,
//! Figure 6) and the server's (§17.2.2, Figure 8), and how messages are matched to them
//! (§17.1.3, §17.2.3).
//!
//! Sans-I/O in the quinn style: a transaction never reads the clock or touches a socket.
//! The caller passes `now` in, sends what `poll_transmit` / `respond` /
//! `handle_retransmission` hand back, and calls `handle_timeout` at the instant
//! `poll_timeout` names. Over a reliable transport (TCP) nothing is retransmitted and the
//! waiting timers K and J are zero (§17.1.2.2, §17.2.2).
//!
//! **INVITE is not supported.** The suite exchanges instant messages and presence only,
//! so the INVITE machines (§17.1.1, §17.2.1: Timers A–D, G–I, the ACK) are not here. A
//! server that refuses an INVITE with a final response can still use a
//! [`ServerTransaction`] to answer its retransmissions; the ACK that follows has the
//! INVITE's [`TransactionKey`] and must be dropped, not passed to
//! [`ServerTransaction::handle_retransmission`].

mod client;
mod server;

use std::time::Duration;

pub use client::{ClientEvent, ClientState, ClientTransaction};
pub use server::{ServerState, ServerTransaction};

use crate::codec::ParseError;
use crate::headers::HeaderError;
use crate::message::{Method, Request, Response};

/// The branch prefix of an RFC 3261 transaction identifier (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The timer base values of §17.1.1.1 and Table 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// T1, the round-trip estimate: the first retransmission interval (500 ms).
    pub t1: Duration,
    /// T2, the longest retransmission interval for non-INVITE requests (4 s).
    pub t2: Duration,
    /// T4, how long a message may stay in the network (5 s): Timer K.
    pub t4: Duration,
}

impl Default for Timers {
    /// The values of §17.1.1.1: 500 ms, 4 s, 5 s.
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// Timer F, the client's transaction timeout: 64·T1 (32 s by default).
    pub fn timer_f(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer J, how long a server keeps a completed transaction over an unreliable
    /// transport: 64·T1.
    pub fn timer_j(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer K, how long a client keeps a completed transaction over an unreliable
    /// transport: T4.
    pub fn timer_k(&self) -> Duration {
        self.t4
    }
}

/// What identifies a transaction (§17.1.3, §17.2.3): the top Via's branch and sent-by and
/// the method, ACK counting as INVITE. CANCEL has keys of its own (its method is CANCEL).
///
/// A request whose branch lacks the magic cookie (an RFC 2543 peer) gets a `branch` made
/// of what §17.2.3 matches such requests by instead: the branch as sent, Call-ID, From tag,
/// CSeq number and Request-URI (not the To tag, so that an ACK still matches its INVITE).
/// The sent-by is lower-cased (hosts are case-insensitive); the branch is kept as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// The top Via's `branch`.
    pub branch: String,
    /// The top Via's sent-by, `host[:port]`, lower-cased.
    pub sent_by: String,
    /// The method (the CSeq method of a response; INVITE for an ACK).
    pub method: Method,
}

impl TransactionKey {
    /// The key of a received or sent request (§17.2.3).
    ///
    /// # Errors
    /// [`ParseError`] if the top Via is missing or malformed, or (without a magic cookie)
    /// Call-ID, From or CSeq is.
    pub fn of_request(request: &Request) -> Result<TransactionKey, ParseError> {
        let via = request.top_via()?;
        let method = match &request.method {
            Method::Ack => Method::Invite,
            method => method.clone(),
        };
        let sent_by = via.sent_by().to_ascii_lowercase();
        let branch = match via.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => branch.to_string(),
            branch => {
                let call_id = request
                    .call_id()
                    .ok_or(ParseError::MissingHeader { name: "Call-ID" })?;
                let from = request.from()?;
                let cseq = request.cseq()?;
                format!(
                    "rfc2543;{};{call_id};{};{};{}",
                    branch.unwrap_or(""),
                    from.tag().unwrap_or(""),
                    cseq.seq,
                    request.uri
                )
            }
        };
        Ok(TransactionKey {
            branch,
            sent_by,
            method,
        })
    }

    /// The key of a response (§17.1.3): top Via branch and sent-by, CSeq method.
    ///
    /// # Errors
    /// [`ParseError`] if the top Via or CSeq is missing or malformed, or the Via has no
    /// branch.
    pub fn of_response(response: &Response) -> Result<TransactionKey, ParseError> {
        let via = response.top_via()?;
        let branch = via.branch().ok_or_else(|| {
            ParseError::Header(HeaderError::invalid(
                "Via",
                &via.to_string(),
                "no branch parameter",
            ))
        })?;
        Ok(TransactionKey {
            branch: branch.to_string(),
            sent_by: via.sent_by().to_ascii_lowercase(),
            method: response.cseq()?.method,
        })
    }
}

/// A branch for a new request: the magic cookie followed by `random`, which the caller
/// supplies (the crate has no random number generator) and must make unique in space and
/// time (§8.1.1.7).
pub fn new_branch(random: &str) -> String {
    format!("{MAGIC_COOKIE}{random}")
}

#[cfg(test)]
mod tests;
