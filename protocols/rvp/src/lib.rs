//! imfed-rvp: RVP, Microsoft's presence and instant messaging protocol of 2000 (Osborne et
//! al., "RVP: A Presence and Instant Messaging Protocol"), without I/O.
//!
//! RVP is "a strict extension of HTTP/1.1" (§3). Nothing here owns a socket, spawns a task
//! or reads the clock (lease times are numbers of seconds handed in by callers): a server
//! front-end or a client driver feeds received bytes into a [`codec::RequestDecoder`] or
//! [`codec::ResponseDecoder`], reads typed headers ([`headers`]) and XML bodies ([`xml`]),
//! and writes [`Request`]s and [`Response`]s back as bytes. HTTP Digest authentication (§6,
//! RFC 2617), both the client's answer and the server's check, is [`digest`] (the crate
//! `imfed-digest`, which SIP shares).

pub mod codec;
pub mod headers;
pub mod message;
pub mod method;
pub mod mime;
pub mod ns;
pub mod url;
pub mod xml;

/// HTTP Digest (RVP §6.2, RFC 2617), shared with SIP: the crate `imfed-digest`, re-exported
/// so that `imfed_rvp::digest::…` paths keep working.
pub use imfed_digest as digest;

pub use codec::{Limits, ParseError, RequestDecoder, ResponseDecoder};
pub use headers::{HeaderError, RvpHeaders, TypedHeader};
pub use message::{Request, Response};
pub use method::Method;
pub use mime::{MimeError, MimePayload, Payload};
pub use url::{NodeUrl, ServerName, UrlError};
pub use xml::{Document, XmlError};
