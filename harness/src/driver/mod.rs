//! Protocol drivers: how actors talk to their servers. The runner speaks only the neutral
//! vocabulary of `imfed_model` through [`Session`] (log in, publish presence, act on
//! subscriptions, send messages, receive [`event::Event`]s, the liveness round trip); each
//! profile maps it to its wire: XMPP ([`xmpp`]), RVP ([`rvp`]) and SIP/SIMPLE ([`sip`]); a
//! new profile adds a
//! variant here and a module beside them, and what it cannot express is a declared
//! capability gap.

pub mod capability;
pub mod event;
pub mod lifecycle;
pub mod rvp;
pub mod sip;
pub mod xmpp;

use std::net::SocketAddr;
use std::time::Duration;

use imfed_model::{Address, SubscriptionAction};

use event::{Matcher, OutMessage, OutPresence, Pattern, Received, SubscriptionRecord};
use lifecycle::{Ended, Liveness, WaitError};

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The socket failed or closed.
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// The session ended (the server closed it, or sent a protocol-level error).
    #[error("stream ended: {0}")]
    Stream(String),
    /// Login failed.
    #[error("login failed: {0}")]
    Login(String),
    /// The server sent bytes its protocol does not allow.
    #[error("invalid stream from server: {0}")]
    Invalid(String),
    /// The server answered a request with a refusal.
    #[error("{0}")]
    Refused(String),
    /// A bound elapsed.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The profile cannot express the operation (a capability gap, with its reason).
    #[error("unsupported by the profile: {0}")]
    Unsupported(String),
}

/// A protocol profile: how addresses are written and patterns parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// XMPP (RFC 6120, RFC 6121).
    Xmpp,
    /// RVP (Osborne et al. 2000, with `protocols/rvp/PROFILE.md`).
    Rvp,
    /// SIP/SIMPLE (RFC 3261, 3428, 3856, 3903, 6665, with `protocols/sip/PROFILE.md`).
    Sip,
}

impl Profile {
    /// Every profile.
    pub const ALL: &[Profile] = &[Profile::Xmpp, Profile::Rvp, Profile::Sip];

    /// The profile a target names, if there is one.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL
            .iter()
            .copied()
            .find(|profile| profile.name() == name)
    }

    /// The profile's name, as targets write it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Xmpp => "xmpp",
            Profile::Rvp => "rvp",
            Profile::Sip => "sip",
        }
    }

    /// Parses an address written in the profile's syntax.
    ///
    /// # Errors
    /// Why `text` is not an address.
    pub fn parse_address(self, text: &str) -> Result<Address, String> {
        match self {
            Profile::Xmpp => xmpp::parse_address(text),
            Profile::Rvp => rvp::parse_address(text),
            Profile::Sip => sip::parse_address(text),
        }
    }

    /// Writes an address in the profile's syntax (what templates render to).
    pub fn render(self, address: &Address) -> String {
        match self {
            Profile::Xmpp => xmpp::render(address),
            Profile::Rvp => rvp::render(address),
            Profile::Sip => sip::render(address),
        }
    }

    /// Parses a pattern of the profile's escape hatch (`expect_xml`).
    ///
    /// # Errors
    /// Why `text` is not one pattern.
    pub fn parse_pattern(self, text: &str) -> Result<Pattern, String> {
        match self {
            Profile::Xmpp => {
                let mut elements = xmpp::parse_fragment(text)?;
                match elements.len() {
                    1 => Ok(Pattern::Xml(elements.remove(0))),
                    n => Err(format!("the pattern must be one element, found {n}")),
                }
            }
            Profile::Rvp => Err(
                "the rvp profile has no expect_xml patterns: XML patterns match XMPP stanzas; \
                 use expect_http or neutral expectations"
                    .into(),
            ),
            Profile::Sip => Err(
                "the sip profile has no expect_xml patterns: XML patterns match XMPP stanzas; \
                 use expect_sip or neutral expectations"
                    .into(),
            ),
        }
    }
}

/// One actor's session, whatever its protocol.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one session per actor, moved rarely; boxing would only add indirection"
)]
pub enum Session {
    /// An XMPP client stream.
    Xmpp(xmpp::Session),
    /// An RVP client of its home server.
    Rvp(rvp::Session),
    /// A SIP user agent of its home server.
    Sip(sip::Session),
}

macro_rules! each {
    ($session:expr, $inner:ident => $body:expr) => {
        match $session {
            Session::Xmpp($inner) => $body,
            Session::Rvp($inner) => $body,
            Session::Sip($inner) => $body,
        }
    };
}

impl Session {
    /// The address the session is bound to (the actor's endpoint).
    pub fn address(&self) -> Address {
        each!(self, s => s.address())
    }

    /// How the session ended, if it has.
    pub fn ended(&self) -> Option<Ended> {
        each!(self, s => s.ended())
    }

    /// "bob (sut.test): stream closed by the server at 520 ms".
    pub fn describe_end(&self, ended: &Ended) -> String {
        each!(self, s => s.describe_end(ended))
    }

    /// A failed round trip in words.
    pub fn describe_liveness(&self, failure: &Liveness) -> String {
        each!(self, s => s.describe_liveness(failure))
    }

    /// Lets the server end the session with one of these protocol errors without that
    /// counting as an unasked end.
    pub fn allow_stream_errors(&self, conditions: &[String]) {
        each!(self, s => s.allow_stream_errors(conditions))
    }

    /// Sends a message.
    ///
    /// # Errors
    /// [`DriverError`] when the session has ended.
    pub async fn send_message(&mut self, out: &OutMessage) -> Result<(), DriverError> {
        each!(self, s => s.send_message(out).await)
    }

    /// Publishes presence.
    ///
    /// # Errors
    /// [`DriverError`] when the session has ended.
    pub async fn publish(&mut self, out: &OutPresence) -> Result<(), DriverError> {
        each!(self, s => s.publish(out).await)
    }

    /// Acts on a subscription with `to`.
    ///
    /// # Errors
    /// [`DriverError`] when the session has ended.
    pub async fn subscription(
        &mut self,
        action: SubscriptionAction,
        to: &Address,
    ) -> Result<(), DriverError> {
        each!(self, s => s.subscription(action, to).await)
    }

    /// Subscribes to `to`'s presence, asking for `lifetime` where subscriptions are
    /// leased (RVP `Subscription-Lifetime`, §5.1.2; SIP `Expires`, RFC 6665 §4.1.2.1;
    /// ignored by XMPP).
    ///
    /// # Errors
    /// [`DriverError`] when the session has ended.
    pub async fn subscribe(
        &mut self,
        to: &Address,
        lifetime: Option<Duration>,
    ) -> Result<(), DriverError> {
        match self {
            Session::Xmpp(s) => s.subscription(SubscriptionAction::Subscribe, to).await,
            Session::Rvp(s) => s.subscribe(to, lifetime).await,
            Session::Sip(s) => s.subscribe(to, lifetime).await,
        }
    }

    /// Renews a leased subscription to `to` (RVP §5.1.2; over SIP an in-dialog SUBSCRIBE
    /// refresh with `Expires: lifetime`, RFC 6665 §4.1.2.2), or with the actor's own
    /// address its login (RVP's login subscription, SIP's registration).
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for XMPP, whose subscriptions are not leased;
    /// [`DriverError`] when the session has ended.
    pub async fn renew(
        &mut self,
        to: &Address,
        lifetime: Option<Duration>,
    ) -> Result<(), DriverError> {
        match self {
            Session::Xmpp(_) => Err(DriverError::Unsupported(
                "XMPP subscriptions are not leased: they last until cancelled (RFC 6121 §3)".into(),
            )),
            Session::Rvp(s) => s.renew_lease(to, lifetime).await,
            Session::Sip(s) => s.renew(to, lifetime).await,
        }
    }

    /// Adds or updates a contact on the user's list.
    ///
    /// # Errors
    /// [`DriverError::Refused`] when the server refuses.
    pub async fn roster_add(
        &mut self,
        contact: &Address,
        name: Option<&str>,
        groups: &[String],
    ) -> Result<(), DriverError> {
        each!(self, s => s.roster_add(contact, name, groups).await)
    }

    /// Removes a contact from the user's list.
    ///
    /// # Errors
    /// [`DriverError::Refused`] when the server refuses.
    pub async fn roster_remove(&mut self, contact: &Address) -> Result<(), DriverError> {
        each!(self, s => s.roster_remove(contact).await)
    }

    /// What the user's server records about `contact`.
    ///
    /// # Errors
    /// [`DriverError`] when the query fails.
    pub async fn subscription_record(
        &mut self,
        contact: &Address,
    ) -> Result<Option<SubscriptionRecord>, DriverError> {
        each!(self, s => s.subscription_record(contact).await)
    }

    /// Waits for the server's next change to its record of `contact`.
    ///
    /// # Errors
    /// [`WaitError`].
    pub async fn next_record_change(
        &mut self,
        contact: &Address,
        bound: Duration,
    ) -> Result<Option<SubscriptionRecord>, WaitError> {
        each!(self, s => s.next_record_change(contact, bound).await)
    }

    /// Writes protocol text as it is (the profile's escape hatch).
    ///
    /// # Errors
    /// [`DriverError`] when the session has ended.
    pub async fn send_raw(&mut self, text: &str) -> Result<(), DriverError> {
        each!(self, s => s.send_raw(text).await)
    }

    /// Sends a SIP request as written (`raw_sip`); with `authenticate`, one Digest challenge
    /// to it is answered with the actor's credentials (RFC 3261 §22.2, §22.3).
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] for `authenticate` on another profile (the runner
    /// declares SIP's escape hatch a gap there first); as [`Session::send_raw`] otherwise.
    pub async fn send_raw_sip(
        &mut self,
        text: &str,
        authenticate: bool,
    ) -> Result<(), DriverError> {
        match self {
            Session::Sip(s) if authenticate => s.send_raw_authenticated(text).await,
            _ if authenticate => Err(DriverError::Unsupported(
                "authenticate: Digest is answered by the SIP driver only".into(),
            )),
            _ => self.send_raw(text).await,
        }
    }

    /// Takes the first event matching `matcher`, waiting up to `bound`.
    ///
    /// # Errors
    /// [`WaitError`]: the bound elapsed, the session ended or another was lost.
    pub async fn wait_for(
        &mut self,
        matcher: &Matcher,
        bound: Duration,
    ) -> Result<Received, WaitError> {
        each!(self, s => s.wait_for(matcher, bound).await)
    }

    /// Watches for `duration`; `Ok(None)` when nothing matching arrived.
    ///
    /// # Errors
    /// The end of the session, if it ended during the window.
    pub async fn watch(
        &mut self,
        matcher: &Matcher,
        duration: Duration,
    ) -> Result<Option<Received>, Ended> {
        each!(self, s => s.watch(matcher, duration).await)
    }

    /// Takes the first event already received that matches, without waiting.
    pub fn take_matching(&mut self, matcher: &Matcher) -> Option<Received> {
        each!(self, s => s.take_matching(matcher))
    }

    /// What was received and not consumed, as text.
    pub fn unmatched(&self) -> Vec<String> {
        each!(self, s => s.unmatched())
    }

    /// Starts a liveness round trip; finish it with [`Session::pong`].
    ///
    /// # Errors
    /// [`Liveness::Ended`].
    pub async fn ping(&mut self) -> Result<String, Liveness> {
        each!(self, s => s.ping().await)
    }

    /// Waits for the answer to the ping `id`.
    ///
    /// # Errors
    /// [`Liveness`].
    pub async fn pong(&mut self, id: &str, bound: Duration) -> Result<(), Liveness> {
        each!(self, s => s.pong(id, bound).await)
    }

    /// A liveness round trip: when it returns, the server has processed everything sent
    /// before it.
    ///
    /// # Errors
    /// [`Liveness`].
    pub async fn round_trip(&mut self, bound: Duration) -> Result<(), Liveness> {
        each!(self, s => s.round_trip(bound).await)
    }

    /// Signs off (unavailable presence) and closes the session.
    pub async fn logout(self) {
        each!(self, s => s.logout().await)
    }

    /// Closes the session cleanly.
    pub async fn close(self) {
        each!(self, s => s.close().await)
    }

    /// Drops the connection without closing the session (a crash).
    pub fn abort(self) {
        each!(self, s => s.abort())
    }
}

/// A random token of letters and digits.
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
