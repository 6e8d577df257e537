//! XML namespace names used by XMPP (RFC 6120 §4.8, §5, §6, §7, §8; RFC 6121; XEP-0220).
//!
//! Elements are matched by namespace URI, never by prefix. Stanzas in the stream content
//! namespaces `jabber:client` and `jabber:server` are both stored as [`CLIENT`] by the parser,
//! so a stanza can be routed from a client stream to a server stream unchanged; the serializer
//! writes them in the namespace of the stream they are written to.

/// Content namespace of client-to-server streams (RFC 6120 §4.8.3).
pub const CLIENT: &str = "jabber:client";
/// Content namespace of server-to-server streams (RFC 6120 §4.8.3).
pub const SERVER: &str = "jabber:server";
/// The stream namespace (RFC 6120 §4.8.1).
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// Stream error conditions (RFC 6120 §4.9.3).
pub const STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza error conditions (RFC 6120 §8.3.3).
pub const STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// STARTTLS (RFC 6120 §5).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL (RFC 6120 §6).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120 §7).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Legacy session establishment (RFC 3921 §3, kept as a no-op by RFC 6121 Appendix E).
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// Server dialback elements (XEP-0220 §2).
pub const DIALBACK: &str = "jabber:server:dialback";
/// Server dialback stream feature (XEP-0220 §2.1).
pub const DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
/// Roster management (RFC 6121 §2).
pub const ROSTER: &str = "jabber:iq:roster";
/// XMPP Ping (XEP-0199).
pub const PING: &str = "urn:xmpp:ping";
/// Service discovery info (XEP-0030).
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// Service discovery items (XEP-0030).
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// In-band registration (XEP-0077).
pub const REGISTER: &str = "jabber:iq:register";
/// Delayed delivery (XEP-0203).
pub const DELAY: &str = "urn:xmpp:delay";
