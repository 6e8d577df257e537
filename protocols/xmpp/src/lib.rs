//! imfed-xmpp: the XMPP protocol without I/O (RFC 6120, RFC 6121, RFC 7622, XEP-0220).
//!
//! Nothing here owns a socket, spawns a task or reads the clock: callers feed bytes into a
//! [`stream::StreamParser`] and get [`element::Element`]s out, and serialize elements back
//! into bytes. Servers and clients built on this crate drive the I/O themselves.

pub mod client;
pub mod dialback;
pub mod element;
pub mod errors;
pub mod external;
pub mod jid;
pub mod ns;
pub mod sasl;
pub mod stanza;
pub mod stream;

pub use element::{Element, Node};
pub use errors::{StanzaError, StanzaErrorCondition, StanzaErrorType, StreamErrorCondition};
pub use jid::{Jid, JidError};
pub use stream::{Limits, ParseError, StreamEvent, StreamHeader, StreamParser};
