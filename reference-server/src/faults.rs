//! Faults: deliberate misbehaviour, so the suite can prove that each of its checks fails
//! against a broken server (mutation testing of the suite itself). Never on unless a test or
//! an operator turns them on.
//!
//! A [`Fault`] is a [`Switch`] with a scope: the accounts it applies to (any stanza or
//! session involving one of them) and the peer domain it applies to. One server can then be
//! broken for one scenario run while the runs beside it, on other accounts, see a correct
//! server; a fault with an empty scope (the `misbehave` configuration) applies to everything.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::core::Address;

/// What a switch can be scoped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Stanzas and sessions of the accounts in its scope.
    Accounts,
    /// The federation link with the peer in its scope (nothing names an account).
    Peer,
    /// The whole server.
    Server,
}

macro_rules! switches {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $reach:ident;)*) => {
        /// One deliberate violation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Switch {
            $($(#[$doc])* $variant,)*
        }

        impl Switch {
            /// Every switch.
            pub const ALL: &[Switch] = &[$(Switch::$variant,)*];

            /// The switch's configuration name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Switch::$variant => $name,)*
                }
            }

            /// What it can be scoped to: a switch that does not reach accounts has to be
            /// turned on for the whole server.
            pub fn reach(self) -> Reach {
                match self {
                    $(Switch::$variant => Reach::$reach,)*
                }
            }
        }
    };
}

switches! {
    /// Available and unavailable presence is not sent over federation (RFC 6121 §4.2.2,
    /// §4.4.2, §4.5.2 broken).
    DropPresenceOut = "drop_presence_out", Accounts;
    /// An inbound `subscribed` is ignored, so the subscription never reaches "To"
    /// (RFC 6121 §3.1.6 broken).
    IgnoreSubscribedIn = "ignore_subscribed_in", Accounts;
    /// Every message sent over federation is sent twice (RFC 2779 §5.4.2 broken).
    DuplicateMessagesOut = "duplicate_messages_out", Accounts;
    /// Messages sent over federation are sent in swapped pairs (RFC 6120 §10.1 broken).
    ReorderMessagesOut = "reorder_messages_out", Accounts;
    /// Stanza errors this server generates carry `undefined-condition` instead of the
    /// condition the RFC prescribes (RFC 6120 §8.3.3, RFC 6121 §8.5 broken).
    WrongErrorCondition = "wrong_error_condition", Accounts;
    /// Nothing is broadcast when a client disconnects without unavailable presence
    /// (RFC 6121 §4.5.3.2 broken).
    NoUnavailableOnDisconnect = "no_unavailable_on_disconnect", Accounts;
    /// Message bodies crossing federation inbound are re-encoded as Latin-1 mojibake
    /// (RFC 6120 §11.6 broken).
    MangleUnicodeIn = "mangle_unicode_in", Accounts;
    /// A 'from' a client puts on its stanzas is kept instead of being replaced by its bound
    /// JID (RFC 6120 §8.1.2.1 broken).
    AcceptForgedFrom = "accept_forged_from", Accounts;
    /// A client's denial of a pending subscription request (presence type `unsubscribed`) is
    /// treated as an approval (RFC 6121 §3.2.2 broken).
    DenyAsApprove = "deny_as_approve", Accounts;
    /// Broadcast presence also goes to roster contacts without a subscription from the user
    /// (RFC 6121 §4.2.2, §4.4.2 broken).
    PresenceToNonSubscribers = "presence_to_non_subscribers", Accounts;
    /// An inbound `<db:result/>` is accepted without asking the sender's authoritative
    /// server (XEP-0220 §2.1.2 broken).
    SkipDialbackVerification = "skip_dialback_verification", Peer;
    /// A stanza on an inbound server-to-server stream is delivered whatever its 'from'
    /// domain, authenticated on the stream or not (RFC 6120 §4.9.3.9, §4.9.3.12, §8.1.2.2
    /// broken: a peer can speak for any domain).
    AcceptUnauthenticatedStanzas = "accept_unauthenticated_stanzas", Peer;
    /// A `<db:result type='valid'/>` or `<db:verify type='valid'/>` a peer sends on its own
    /// inbound stream authenticates the domain it names: the peer answers its own dialback
    /// (XEP-0220 §2.1.2, §2.2 broken).
    TrustDialbackAnswers = "trust_dialback_answers", Peer;
    /// A certificate an inbound server-to-server peer presents is taken as valid for the
    /// domain its stream claims, whoever issued it, whatever it names, expired or not: SASL
    /// EXTERNAL authenticates anyone with a certificate (RFC 6120 §13.7.2, XEP-0178 §3
    /// broken).
    TrustAnyCertificate = "trust_any_certificate", Peer;
    /// SASL EXTERNAL is neither offered nor accepted on server-to-server streams, however
    /// good the peer's certificate (RFC 6120 §6.3.4, XEP-0178 §3 broken: certificate
    /// authentication is impossible).
    NoSaslExternal = "no_sasl_external", Server;
    /// A domain that authenticates by certificate only accepts plaintext streams and
    /// dialback like any other (XEP-0178 and the domain's policy broken: a peer without a
    /// valid certificate, or without TLS, is let in).
    SecureDomainsAllowDialback = "secure_domains_allow_dialback", Peer;
    /// Each read from an inbound server-to-server connection is decoded as UTF-8 on its
    /// own, so a character split between two reads becomes U+FFFD (RFC 6120 §4.1, §11.6
    /// broken: the stream is a byte stream, not a sequence of packets).
    DecodePerRead = "decode_per_read", Server;
    /// A stanza an inbound link was in the middle of when it died is delivered with what
    /// arrived of it, its end tags made up (RFC 6120 §4.1 broken: only a complete
    /// first-level element is a stanza).
    DeliverCutStanzas = "deliver_cut_stanzas", Peer;
    /// A domain whose outbound link could not be set up is given up for good: what is sent
    /// to it later bounces at once with `remote-server-not-found`, even when its server is
    /// back (RFC 6120 §10.4.3 broken: a dead link is taken for a dead domain).
    NeverRetryFailedDomains = "never_retry_failed_domains", Peer;
    /// Every stream error sent on an inbound server-to-server stream carries
    /// `undefined-condition`, not the condition RFC 6120 §4.9.3 names.
    GenericStreamErrors = "generic_stream_errors", Server;
    /// Inbound server-to-server connections may take forever to send their header and to
    /// authenticate (RFC 6120 §13.12 broken: slow-loris peers hold connections).
    NoAuthTimeout = "no_auth_timeout", Server;
    /// The upload service grants slots larger than the max-file-size it announces
    /// (XEP-0363 §3, §6 broken).
    UploadIgnoresLimit = "upload_ignores_limit", Server;
    /// The upload service takes a PUT to an existing file without the slot's
    /// `Authorization` header and replaces the file (XEP-0363 §7 broken: anyone holding the
    /// link can overwrite it).
    UploadAcceptsAnyPut = "upload_accepts_any_put", Server;
    /// The upload service answers a download of a slot never issued with 200 and an empty
    /// body instead of 404.
    UploadServesUnknownSlots = "upload_serves_unknown_slots", Server;
    /// The upload service serves every file with its last byte changed (corruption in
    /// storage or transfer).
    UploadCorruptsFiles = "upload_corrupts_files", Server;
    /// A client connection that has sent nothing for 0.4 s is closed, as an over-eager idle
    /// timeout would (RFC 6120 §4.6 asks servers to keep idle streams; a client is not
    /// required to send keepalives this often).
    DropIdleClients = "drop_idle_clients", Accounts;
    /// After a client's first two stanzas the server stops reading its stream, keeping the
    /// connection open (a stalled server).
    StallClients = "stall_clients", Accounts;
    /// The whole server shuts down when a client first sends it a message: a crash
    /// mid-run.
    CrashMidRun = "crash_mid_run", Server;
    /// `<thread/>` is removed from messages sent over federation (RFC 6121 §5.2.5 broken).
    StripThreadOut = "strip_thread_out", Accounts;
    /// Message bodies sent over federation are XML-escaped twice, so `&` arrives as `&amp;`
    /// (RFC 6120 §11 broken: a classic double-encoding bug).
    EscapeBodiesTwiceOut = "escape_bodies_twice_out", Accounts;
    /// Message bodies sent over federation are cut to 4096 characters (RFC 6120 §13.12
    /// broken).
    TruncateBodiesOut = "truncate_bodies_out", Accounts;
    /// Stanza errors this server generates carry no `id` (RFC 6120 §8.3.1 broken).
    ErrorsWithoutId = "errors_without_id", Accounts;
    /// A subscription request to an account that does not exist is approved on its behalf
    /// (RFC 6121 §8.5.1 broken).
    ApproveUnknownContacts = "approve_unknown_contacts", Accounts;
    /// A message to a full JID is delivered as if sent to the bare JID (RFC 6121 §8.5.3
    /// broken).
    FullJidAsBare = "full_jid_as_bare", Accounts;
    /// A message to a resource that is not connected is bounced, chat included
    /// (RFC 6121 §8.5.3.2.1 broken).
    BounceAbsentResource = "bounce_absent_resource", Accounts;
    /// A groupchat message to a bare JID is delivered like a chat message instead of being
    /// refused (RFC 6121 §8.5.2.1.1 broken).
    DeliverGroupchatToBare = "deliver_groupchat_to_bare", Accounts;
    /// A message to a bare JID reaches only the first of the available resources it is for
    /// (RFC 6121 §8.5.2.1.1 broken for headline and normal messages).
    OneResourceOnly = "one_resource_only", Accounts;
    /// A message delivered for a bare JID gets the resource's full JID as its 'to'
    /// (RFC 6121 §8.5.2.1.1: "the server MUST NOT rewrite the 'to' attribute").
    RewriteBareTo = "rewrite_bare_to", Accounts;
    /// The control API's wire tap (`GET /tap`) never answers: an observer that cannot see.
    TapStalls = "tap_stalls", Server;
    /// The control API's wire tap answers with something that is not its JSON.
    TapMalformed = "tap_malformed", Server;
    /// RVP: a leased presence value never reverts to its default when its lease runs out
    /// (§5.5; RFC 2779 3.2.4 broken).
    RvpIgnorePresenceLease = "rvp_ignore_presence_lease", Accounts;
    /// RVP: a subscription whose lifetime ran out keeps getting notifications (§5.1.2
    /// broken).
    RvpIgnoreSubscriptionLease = "rvp_ignore_subscription_lease", Accounts;
    /// RVP: a renewal (SUBSCRIBE with a live Subscription-Id) is refused with 412 (§5.1.2
    /// broken).
    RvpRenewalRefused = "rvp_renewal_refused", Accounts;
    /// RVP: `RVP-Hop-Count` is neither checked nor incremented, so loops are never cut
    /// (§5.6, PROFILE.md §5 508 broken).
    RvpIgnoreHopCount = "rvp_ignore_hop_count", Accounts;
    /// RVP: the ACL is never consulted: denied rights are granted (§5.7 broken).
    RvpIgnoreAcl = "rvp_ignore_acl", Accounts;
    /// RVP: a DeepOr NOTIFY is answered 200 without being delivered to any endpoint (§5.6
    /// broken).
    RvpAckBeforeDelivery = "rvp_ack_before_delivery", Accounts;
    /// RVP: presence changes are not sent to watchers as propnotification (§5.1, §5.6.1
    /// broken).
    RvpDropPropnotify = "rvp_drop_propnotify", Accounts;
    /// RVP: a property SUBSCRIBE is answered 207 with no body, so the watcher does not
    /// learn the presentity's current state (§5.1.6 and the §5.1.7.2 example broken).
    RvpSnapshotWithoutState = "rvp_snapshot_without_state", Accounts;
    /// RVP: a SUBSCRIBE to a principal that does not exist is granted (207, offline) instead
    /// of refused with 404.
    RvpGrantUnknownPrincipal = "rvp_grant_unknown_principal", Accounts;
    /// RVP: PROPFIND is answered whatever its Depth header says (§5.4: 412 broken).
    RvpIgnoreDepth = "rvp_ignore_depth", Accounts;
    /// RVP: a Digest response that does not verify is accepted (§6, RFC 2617 broken).
    RvpAcceptWrongDigest = "rvp_accept_wrong_digest", Accounts;
    /// RVP: UNSUBSCRIBE of a presence subscription is answered 200 and the subscription
    /// kept (§5.2; RFC 2779 5.1.7 broken).
    RvpIgnoreUnsubscribe = "rvp_ignore_unsubscribe", Accounts;
    /// RVP: GET, COPY and other methods RVP refuses are answered 200 (§5.8 broken).
    RvpAcceptOtherMethods = "rvp_accept_other_methods", Accounts;
    /// RVP: an ACL whose entry names no credentials is accepted (§5.7.2.1: "400 credentials
    /// not specified" broken).
    RvpAclWithoutCredentials = "rvp_acl_without_credentials", Accounts;
    /// RVP: a PROPPATCH whose XML is not well-formed is answered 207, and a SUBSCRIBE
    /// without Notification-Type is taken for a property subscription (400 broken).
    RvpLenientRequests = "rvp_lenient_requests", Accounts;
    /// RVP: an inbound server-to-server request is accepted although the peer's certificate
    /// does not name the RVP-From-Principal's domain (PROFILE.md §6 broken).
    RvpAcceptUnauthenticatedPeer = "rvp_accept_unauthenticated_peer", Peer;
    /// SIP: a request missing a mandatory header (Via, To, From, Call-ID, CSeq, RFC 3261
    /// §8.1.1) or with a malformed one is processed instead of refused with 400 (§16.3).
    SipLenientRequests = "sip_lenient_requests", Accounts;
    /// SIP: a MESSAGE body over `sip_max_message_body` is delivered, not refused with 413
    /// (RFC 3428 §7).
    SipAcceptOversizedMessage = "sip_accept_oversized_message", Accounts;
    /// SIP: a MESSAGE to a user with no registered contact is answered 200 and dropped,
    /// instead of 480 (RFC 3261 §21.4.18, RFC 2779 §5.4.1).
    SipAcceptOfflineMessage = "sip_accept_offline_message", Accounts;
    /// SIP: `Max-Forwards` is neither checked nor decremented (RFC 3261 §16.3 step 3, §16.6
    /// step 3).
    SipIgnoreMaxForwards = "sip_ignore_max_forwards", Accounts;
    /// SIP: a request that comes back to this proxy unchanged is forwarded again instead of
    /// refused with 482 (RFC 3261 §16.3 step 4).
    SipNoLoopDetection = "sip_no_loop_detection", Accounts;
    /// SIP: a SUBSCRIBE to another domain is not Record-Routed, so its NOTIFYs bypass this
    /// server (RFC 3261 §16.6 step 4, PROFILE.md §4).
    SipNoRecordRoute = "sip_no_record_route", Accounts;
    /// SIP: wrong Digest credentials are accepted (RFC 3261 §22).
    SipAcceptWrongDigest = "sip_accept_wrong_digest", Accounts;
    /// SIP: registrations never lapse (RFC 3261 §10.2.1.1 broken).
    SipRegistrationNeverLapses = "sip_registration_never_lapses", Accounts;
    /// SIP: a PUBLISH with an unknown `SIP-If-Match` is taken as a new publication, not
    /// refused with 412 (RFC 3903 §6 step 3).
    SipIgnoreIfMatch = "sip_ignore_if_match", Accounts;
    /// SIP: publications never lapse (RFC 3903 §6 step 8 broken).
    SipPublicationNeverLapses = "sip_publication_never_lapses", Accounts;
    /// SIP: subscriptions never lapse, so no final NOTIFY comes (RFC 6665 §4.2.2 broken).
    SipSubscriptionNeverLapses = "sip_subscription_never_lapses", Accounts;
    /// SIP: an unsubscribe (`Expires: 0`) is answered 200 but no `terminated` NOTIFY follows
    /// (RFC 6665 §4.1.2.3 broken).
    SipNoTerminatedNotify = "sip_no_terminated_notify", Accounts;
    /// SIP: changes of a presentity's state are not NOTIFYed to its watchers (RFC 3856 §6.6).
    SipDropPresenceNotify = "sip_drop_presence_notify", Accounts;
    /// SIP: a refresh of a subscription (an in-dialog SUBSCRIBE with a new `Expires`) is
    /// answered 200 and NOTIFYed, but the subscription keeps the expiry it had
    /// (RFC 6665 §4.2.1.2 broken).
    SipIgnoreSubscriptionRefresh = "sip_ignore_subscription_refresh", Accounts;
    /// SIP: a PUBLISH that refreshes or modifies a publication (`SIP-If-Match`) is answered
    /// 200, but the event state keeps the expiry it had (RFC 3903 §6 step 5 broken).
    SipIgnorePublicationRefresh = "sip_ignore_publication_refresh", Accounts;
    /// SIP: a request for a user that does not exist on a hosted domain is answered 480
    /// Temporarily Unavailable, as if the user were known and offline, instead of 404
    /// Not Found (RFC 3261 §16.5, §21.4.5 broken).
    SipUnknownUserAsOffline = "sip_unknown_user_as_offline", Accounts;
    /// SIP: a request that does not parse (a malformed start line, a bad header line, a
    /// `Content-Length` longer than its datagram) is dropped in silence instead of answered
    /// 400 (RFC 3261 §16.3 step 1, §18.3; PROFILE.md §9 broken).
    SipDropUnparseable = "sip_drop_unparseable", Accounts;
}

/// The protocol a switch breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultProtocol {
    /// The XMPP front-end (and the control API's observers).
    Xmpp,
    /// The RVP front-end.
    Rvp,
    /// The SIP front-end.
    Sip,
}

impl Switch {
    /// Which front-end the switch breaks: a mutation run of one protocol's pack skips the
    /// others' switches (an RVP mutant cannot be killed by XMPP scenarios).
    pub fn protocol(self) -> FaultProtocol {
        if self.name().starts_with("rvp_") {
            FaultProtocol::Rvp
        } else if self.name().starts_with("sip_") {
            FaultProtocol::Sip
        } else {
            FaultProtocol::Xmpp
        }
    }

    /// Whether the switch breaks what this server shows an observer (its control API)
    /// rather than how it behaves as a server: not a mutant of the server.
    pub fn is_observer(self) -> bool {
        matches!(self, Switch::TapStalls | Switch::TapMalformed)
    }
}

impl FromStr for Switch {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Switch::ALL
            .iter()
            .copied()
            .find(|switch| switch.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Switch::ALL.iter().map(|s| s.name()).collect();
                format!("unknown misbehaviour {name:?}; known: {}", known.join(", "))
            })
    }
}

/// A switch and where it applies; with no accounts and no peer it applies everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What goes wrong.
    pub switch: Switch,
    /// Bare addresses (`user@domain`): the fault applies to stanzas from or to one of them
    /// and to their sessions. Empty: any account.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub accounts: BTreeSet<String>,
    /// The peer domain: the fault applies to what crosses the federation link with it.
    /// `None`: any peer, and what never crosses a link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

impl Fault {
    /// `switch` everywhere.
    pub fn everywhere(switch: Switch) -> Fault {
        Fault {
            switch,
            accounts: BTreeSet::new(),
            peer: None,
        }
    }

    fn is_global(&self) -> bool {
        self.accounts.is_empty() && self.peer.is_none()
    }

    fn covers(&self, involved: &Involved<'_>) -> bool {
        let accounts = self.accounts.is_empty()
            || involved
                .accounts
                .iter()
                .any(|account| self.accounts.contains(&account.to_string()));
        let peer = self
            .peer
            .as_deref()
            .is_none_or(|peer| involved.peer == Some(peer));
        accounts && peer
    }
}

/// What an action involves, for matching scopes: the accounts and the peer domain.
#[derive(Clone, Copy, Debug, Default)]
pub struct Involved<'a> {
    /// Accounts the stanza or session is from or to.
    pub accounts: &'a [Address],
    /// The peer domain of the link it crosses, if any.
    pub peer: Option<&'a str>,
}

impl Involved<'_> {
    /// Nothing in particular: matches only faults with an empty scope.
    pub const NONE: Involved<'static> = Involved {
        accounts: &[],
        peer: None,
    };
}

/// The faults that are on, each with an id for removing it.
#[derive(Debug, Default)]
pub struct Faults {
    active: RwLock<BTreeMap<u64, Fault>>,
    next_id: AtomicU64,
}

impl Faults {
    /// Turns `fault` on; returns its id.
    pub fn add(&self, fault: Fault) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.active.write().expect("faults lock").insert(id, fault);
        id
    }

    /// Turns the fault `id` off; `false` if there was none.
    pub fn remove(&self, id: u64) -> bool {
        self.active
            .write()
            .expect("faults lock")
            .remove(&id)
            .is_some()
    }

    /// Replaces the faults that apply everywhere with `switches` (scoped faults stay).
    pub fn set_global(&self, switches: impl IntoIterator<Item = Switch>) {
        let mut active = self.active.write().expect("faults lock");
        active.retain(|_, fault| !fault.is_global());
        drop(active);
        for switch in switches {
            self.add(Fault::everywhere(switch));
        }
    }

    /// Turns every fault off.
    pub fn clear(&self) {
        self.active.write().expect("faults lock").clear();
    }

    /// Every fault that is on, with its id.
    pub fn list(&self) -> Vec<(u64, Fault)> {
        self.active
            .read()
            .expect("faults lock")
            .iter()
            .map(|(id, fault)| (*id, fault.clone()))
            .collect()
    }

    /// The switches on everywhere.
    pub fn global(&self) -> Vec<Switch> {
        let switches: BTreeSet<Switch> = self
            .active
            .read()
            .expect("faults lock")
            .values()
            .filter(|fault| fault.is_global())
            .map(|fault| fault.switch)
            .collect();
        switches.into_iter().collect()
    }

    /// Whether no fault is on at all (the common case, checked before looking closer).
    pub fn is_empty(&self) -> bool {
        self.active.read().expect("faults lock").is_empty()
    }

    /// Whether `switch` is on for what `involved` names.
    pub fn on(&self, switch: Switch, involved: Involved<'_>) -> bool {
        let active = self.active.read().expect("faults lock");
        !active.is_empty()
            && active
                .values()
                .any(|fault| fault.switch == switch && fault.covers(&involved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_select_accounts_and_peers() {
        let faults = Faults::default();
        let alice = Address::new("alice", "a.test");
        let bob = Address::new("bob", "b.test");
        let id = faults.add(Fault {
            switch: Switch::DropPresenceOut,
            accounts: ["alice@a.test".to_string()].into(),
            peer: Some("b.test".into()),
        });
        let on = |accounts: &[Address], peer| {
            faults.on(Switch::DropPresenceOut, Involved { accounts, peer })
        };
        assert!(on(&[alice.clone(), bob.clone()], Some("b.test")));
        assert!(
            !on(std::slice::from_ref(&alice), Some("c.test")),
            "another peer"
        );
        assert!(
            !on(std::slice::from_ref(&bob), Some("b.test")),
            "another account"
        );
        assert!(!on(std::slice::from_ref(&alice), None), "not on a link");
        assert!(!faults.on(Switch::DuplicateMessagesOut, Involved::NONE));
        faults.set_global([Switch::DuplicateMessagesOut]);
        assert!(faults.on(Switch::DuplicateMessagesOut, Involved::NONE));
        assert_eq!(faults.global(), vec![Switch::DuplicateMessagesOut]);
        assert!(faults.remove(id));
        assert!(!on(&[alice], Some("b.test")));
        faults.set_global([]);
        assert!(faults.list().is_empty());
    }

    #[test]
    fn every_switch_has_a_distinct_name_that_parses() {
        let names: BTreeSet<&str> = Switch::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Switch::ALL.len());
        for switch in Switch::ALL {
            assert_eq!(switch.name().parse::<Switch>(), Ok(*switch));
            assert_eq!(
                serde_json::to_value(switch).unwrap(),
                serde_json::json!(switch.name())
            );
        }
        assert!("no_such".parse::<Switch>().is_err());
        assert_eq!(Switch::RvpIgnoreAcl.protocol(), FaultProtocol::Rvp);
        assert_eq!(Switch::DropPresenceOut.protocol(), FaultProtocol::Xmpp);
    }
}
