//! Protocol drivers: how actors talk to servers. XMPP today; RVP and SIP/SIMPLE later.

pub mod xmpp;
