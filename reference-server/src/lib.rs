//! imfed-server: the reference federated IM and presence server of the imfed suite.
//!
//! An XMPP server (RFC 6120 streams, STARTTLS and SASL; RFC 6121 rosters, subscriptions,
//! presence and messaging; XEP-0220 server dialback), an RVP home server ([`rvp`]) and a SIP
//! registrar, proxy and presence agent ([`sip`]), built on a protocol-neutral [`core`], with
//! an HTTP [`control`] API that provisions accounts and shows what crossed each federation link.

pub mod config;
pub mod control;
pub mod core;
pub mod dns;
pub mod faults;
pub mod fedlog;
pub mod rvp;
pub mod server;
pub mod sip;
pub mod state;
pub mod tap;
pub mod tls;
pub mod xmpp;

pub use config::Config;
pub use server::{Running, Server, StartError};
