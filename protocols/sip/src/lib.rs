//! imfed-sip: SIP (RFC 3261) with the SIMPLE extensions for instant messaging and presence
//! (RFC 3428 MESSAGE, RFC 6665 SUBSCRIBE/NOTIFY, RFC 3856 presence, RFC 3863 PIDF with RFC
//! 4480 RPID, RFC 3903 PUBLISH), without I/O.
//!
//! Nothing here owns a socket, spawns a task or reads the clock: a server front-end or a
//! client driver parses what it received ([`codec::parse_datagram`] for UDP,
//! [`codec::StreamDecoder`] for TCP), reads typed headers ([`headers`]) and bodies
//! ([`pidf`]), runs non-INVITE transactions ([`transaction`]) and dialogs ([`dialog`]) by
//! passing `now: Instant` in and polling for what to send and when to come back, and writes
//! [`Request`]s and [`Response`]s as bytes. The wire format is this crate's own, so that a
//! scenario can also write a message no conforming stack would.
//!
//! The conventions where the RFCs leave a choice are imfed's `protocols/sip/PROFILE.md`.
//! HTTP Digest (RFC 3261 §22, RFC 2617) is [`digest`], the crate shared with RVP.
//!
//! | module | spec |
//! | --- | --- |
//! | [`uri`] | RFC 3261 §19.1, §25.1 |
//! | [`headers`] | RFC 3261 §7.3, §20; RFC 6665 §8.2 |
//! | [`message`] | RFC 3261 §7, §8.2.6, §21 |
//! | [`codec`] | RFC 3261 §7.5, §8.1.1, §18.3; RFC 4475 |
//! | [`transaction`] | RFC 3261 §17.1.2, §17.2.2 |
//! | [`dialog`] | RFC 3261 §12; RFC 6665 §4.1.2.4, §4.2.1 |
//! | [`pidf`] | RFC 3863, RFC 4479, RFC 4480 |

pub mod codec;
pub mod dialog;
pub mod headers;
pub mod message;
pub mod pidf;
mod syntax;
pub mod transaction;
pub mod uri;

/// HTTP Digest (RFC 3261 §22, RFC 2617): the crate `imfed-digest`, shared with RVP.
pub use imfed_digest as digest;

pub use codec::{
    Limits, ParseError, StreamDecoder, parse_datagram, salvage, validate_request, validate_response,
};
pub use dialog::{Dialog, DialogError, DialogId};
pub use headers::{CSeq, EventHeader, HeaderError, Headers, NameAddr, SubscriptionState, Via};
pub use message::{Message, Method, Request, Response, reason_phrase};
pub use transaction::{ClientTransaction, ServerTransaction, Timers, TransactionKey};
pub use uri::{Scheme, Uri, UriError};
