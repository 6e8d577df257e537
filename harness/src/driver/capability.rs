//! Capability gaps: what a protocol-neutral scenario asks of a protocol, and what a profile
//! cannot express. A scenario that needs something its run's profile lacks is reported
//! `unsupported` with the profile's reason, before anything is sent: it is never run
//! half-way, never silently skipped and never passed.
//!
//! The reasons cite the profile's specification (RVP: draft-osborne-rvp-00 as shipped in
//! Exchange 2000, section numbers of `shared/specs/rvp-osborne-2000.txt`; SIP: the RFCs and
//! `protocols/sip/PROFILE.md`).

use imfed_model::{MessageKind, Show};

use super::Profile;
use crate::scenario::model::{
    ActorDef, Expect, ExpectNone, MessageMatch, PresenceMatch, Scenario, Step,
};
use crate::scenario::template;

/// Something a scenario may ask of its protocol that not every profile can express.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// The scenario is written for other profiles only.
    Profile,
    /// Asking a presentity to approve, denying, cancelling, and the signals of that
    /// handshake (RFC 2779 §5.1.5 realised as a request and an answer).
    SubscriptionHandshake,
    /// A watcher told that its subscription ended (`unsubscribed`: XMPP's refusal or
    /// revocation, SIP's `Subscription-State: terminated`).
    SubscriptionEnd,
    /// A contact list kept by the server (roster items and their subscription states).
    ContactList,
    /// Free-text status in presence.
    StatusText,
    /// One availability detail.
    Show(Show),
    /// Endpoint priorities.
    Priority,
    /// Presence sent to one entity rather than published.
    DirectedPresence,
    /// A message kind other than a conversation message.
    MessageKind(MessageKind),
    /// A message subject.
    Subject,
    /// A message thread id.
    Thread,
    /// Addressing one endpoint of a principal (`{bob.full_jid}`, `{bob.resource}`).
    EndpointAddressing,
    /// XMPP's escape hatches (`raw`, `expect_xml`).
    XmppWire,
    /// RVP's escape hatch (`raw_http`).
    RvpWire,
    /// SIP's escape hatch (`raw_sip`, `expect_sip`).
    SipWire,
    /// Checks of what crossed the federation link by stanza type.
    FederationStanzaType,
    /// Subscriptions and presence that lapse unless renewed (leases).
    Lease,
}

impl Capability {
    /// The name reports use.
    pub fn name(self) -> String {
        match self {
            Capability::Profile => "profile".into(),
            Capability::SubscriptionHandshake => "subscription-handshake".into(),
            Capability::SubscriptionEnd => "subscription-end".into(),
            Capability::ContactList => "contact-list".into(),
            Capability::StatusText => "status-text".into(),
            Capability::Show(show) => format!("show-{}", show.as_str()),
            Capability::Priority => "priority".into(),
            Capability::DirectedPresence => "directed-presence".into(),
            Capability::MessageKind(kind) => format!("message-kind-{}", kind.as_str()),
            Capability::Subject => "subject".into(),
            Capability::Thread => "thread".into(),
            Capability::EndpointAddressing => "endpoint-addressing".into(),
            Capability::XmppWire => "xmpp-wire".into(),
            Capability::RvpWire => "rvp-wire".into(),
            Capability::SipWire => "sip-wire".into(),
            Capability::FederationStanzaType => "federation-stanza-type".into(),
            Capability::Lease => "lease".into(),
        }
    }
}

/// A capability a scenario needs and its run's profile lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// What is missing.
    pub capability: Capability,
    /// Why the profile cannot express it.
    pub reason: String,
    /// The line of the first step that needs it.
    pub line: u64,
}

impl Profile {
    /// Why this profile cannot express `capability`, or `None` when it can.
    pub fn lacks(self, capability: Capability) -> Option<&'static str> {
        match self {
            Profile::Xmpp => match capability {
                Capability::RvpWire => Some("raw_http is the RVP profile's escape hatch"),
                Capability::SipWire => {
                    Some("raw_sip and expect_sip are the SIP profile's escape hatch")
                }
                Capability::Lease => Some(
                    "XMPP subscriptions and presence are not leased: they last until cancelled \
                     or until the stream ends (RFC 6121 §3, §4.5)",
                ),
                _ => None,
            },
            Profile::Rvp => rvp_lacks(capability),
            Profile::Sip => sip_lacks(capability),
        }
    }
}

fn rvp_lacks(capability: Capability) -> Option<&'static str> {
    Some(match capability {
        Capability::Profile | Capability::RvpWire | Capability::Lease => return None,
        Capability::SubscriptionHandshake | Capability::SubscriptionEnd => {
            "RVP has no subscription handshake: the presentity's ACL grants or refuses a \
             SUBSCRIBE at once and nothing asks the presentity (§5.1, §5.7)"
        }
        Capability::ContactList => {
            "RVP keeps no contact list on the server: a watcher holds its own leased \
             subscriptions (§5.1.2)"
        }
        Capability::StatusText => {
            "RVP presence has no free-text status: r:state is one of a fixed set of values \
             (§5.5, §9)"
        }
        Capability::Show(Show::Chat) => {
            "RVP's states have no 'free to chat' (§9: online, busy, away, back-soon, on-phone, \
             at-lunch, offline)"
        }
        Capability::Show(Show::Xa) => "RVP's states do not tell 'away for long' from 'away' (§9)",
        Capability::Show(Show::Away | Show::Dnd) => return None,
        Capability::Priority => {
            "RVP endpoints have no priority: the home server relays to every endpoint (§5.6 DeepOr)"
        }
        Capability::DirectedPresence => {
            "RVP presence is a property of the principal's node, read under its ACL; it cannot \
             be sent to one entity (§5.5, §5.7)"
        }
        Capability::MessageKind(MessageKind::Chat) => return None,
        Capability::MessageKind(_) => {
            "RVP has one kind of instant message, a message of a conversation (§5.6, §10)"
        }
        Capability::Subject => "RVP messages have no subject (§9: the message element)",
        Capability::Thread => {
            "RVP names a conversation by a Session-Id GUID its sender picks (§10), not by a \
             thread id the scenario chooses"
        }
        Capability::EndpointAddressing => {
            "RVP addresses a principal's node; its endpoints are callbacks only its home \
             server knows (§5.1.4)"
        }
        Capability::XmppWire => "raw and expect_xml carry XMPP stanzas",
        Capability::SipWire => "raw_sip and expect_sip carry SIP messages",
        Capability::FederationStanzaType => {
            "RVP requests have no stanza type attribute to count by (§5)"
        }
    })
}

fn sip_lacks(capability: Capability) -> Option<&'static str> {
    Some(match capability {
        Capability::Profile
        | Capability::SipWire
        | Capability::Lease
        | Capability::StatusText
        | Capability::Subject
        | Capability::SubscriptionEnd
        | Capability::Show(Show::Away | Show::Dnd)
        | Capability::MessageKind(MessageKind::Chat) => return None,
        Capability::SubscriptionHandshake => {
            "the SIP profile has no subscription handshake: the presence agent accepts every \
             SUBSCRIBE and asks no one, and no watcher is told of another's request (RFC 3856 \
             §6.6 leaves authorization to policy; XCAP rules, RFC 5025, are outside the \
             profile: PROFILE.md §4)"
        }
        Capability::ContactList => {
            "the SIP profile keeps no contact list on the server: a watcher holds its own \
             subscription dialogs (RFC 6665 §4.1; resource lists, RFC 4826, are outside \
             PROFILE.md §4)"
        }
        Capability::Show(Show::Chat) => {
            "RPID has no activity for 'free to chat' (RFC 4480 §3.2; RFC 7248 §7.4 maps chat \
             to none, PROFILE.md §3)"
        }
        Capability::Show(Show::Xa) => {
            "RPID does not tell 'away for long' from 'away' (RFC 4480 §3.2; RFC 7248 §7.4 maps \
             xa to away, PROFILE.md §3)"
        }
        Capability::Priority => {
            "PIDF has no presence priority that survives aggregation: a tuple's <contact \
             priority> is a contact preference (RFC 3863 §4.1.5, PROFILE.md §3)"
        }
        Capability::DirectedPresence => {
            "SIP presence is published to the presentity's presence agent, which notifies \
             every watcher; it cannot be sent to one entity (RFC 3903 §3, RFC 3856 §6)"
        }
        Capability::MessageKind(_) => {
            "SIP has one kind of instant message: MESSAGE carries no type (RFC 3428 §2, \
             PROFILE.md §6)"
        }
        Capability::Thread => {
            "SIP messages have no thread: a MESSAGE establishes no dialog and carries no \
             conversation id the sender chooses (RFC 3428 §2, PROFILE.md §6)"
        }
        Capability::EndpointAddressing => {
            "SIP requests go to an address-of-record and the proxy forks them to every contact; \
             one contact cannot be addressed without GRUUs (RFC 5627, RFC 3261 §16.6; \
             PROFILE.md §1)"
        }
        Capability::XmppWire => "raw and expect_xml carry XMPP stanzas",
        Capability::RvpWire => "raw_http carries RVP's HTTP requests",
        Capability::FederationStanzaType => {
            "SIP requests have no stanza type to count by: presence crosses as SUBSCRIBE and \
             NOTIFY with PIDF bodies (RFC 6665 §4, RFC 3856 §6)"
        }
    })
}

/// The profile whose terms a scenario's error `condition`s are written in: its one declared
/// profile, or XMPP for protocol-neutral scenarios (whose conditions refine a class the XMPP
/// way, RFC 6120 §8.3.3).
pub fn condition_profile(scenario: &Scenario) -> Profile {
    match scenario.profiles.as_slice() {
        [one] => Profile::from_name(one).unwrap_or(Profile::Xmpp),
        _ => Profile::Xmpp,
    }
}

/// The first capability `scenario` needs that `profile` lacks.
pub fn first_gap(scenario: &Scenario, profile: Profile) -> Option<Gap> {
    if !scenario.profiles.is_empty() && !scenario.profiles.iter().any(|p| p == profile.name()) {
        return Some(Gap {
            capability: Capability::Profile,
            reason: format!(
                "written for the {} profile, not {}",
                scenario.profiles.join(", "),
                profile.name()
            ),
            line: 1,
        });
    }
    let shared = shared_accounts(scenario);
    scenario.steps.iter().find_map(|step| {
        needs(&step.value, &shared)
            .into_iter()
            .find_map(|capability| {
                profile.lacks(capability).map(|reason| Gap {
                    capability,
                    reason: reason.to_string(),
                    line: step.line,
                })
            })
    })
}

/// The actors whose account has another endpoint in the scenario (`account:` shared).
fn shared_accounts(scenario: &Scenario) -> Vec<String> {
    let account = |name: &String, def: &ActorDef| match def {
        ActorDef::Full(full) => full.account.clone().unwrap_or_else(|| name.clone()),
        ActorDef::Role(_) => name.clone(),
    };
    let accounts: Vec<(String, String)> = scenario
        .actors
        .iter()
        .map(|(name, def)| (name.clone(), account(name, def)))
        .collect();
    accounts
        .iter()
        .filter(|(_, a)| accounts.iter().filter(|(_, b)| a == b).count() > 1)
        .map(|(name, _)| name.clone())
        .collect()
}

/// Whether a templated address names one endpoint. A recipient written as an endpoint
/// always does (XMPP routes a full JID otherwise than a bare one, RFC 6121 §8.5.3); a
/// sender only when its account has another endpoint in the scenario, for with one
/// endpoint the principal and the endpoint say the same.
fn endpoint_address(text: &str, recipient: bool, shared: &[String]) -> bool {
    let names_endpoint = |token: &&str| {
        let Some((actor, field)) = token.split_once('.') else {
            return false;
        };
        (field == "full_jid" || field == "resource")
            && (recipient || shared.iter().any(|s| s == actor))
    };
    template::tokens(text).iter().any(names_endpoint) || text.contains('/') && !text.contains("://")
}

/// A recipient's address.
fn address(text: &str, out: &mut Vec<Capability>) {
    if endpoint_address(text, true, &[]) {
        out.push(Capability::EndpointAddressing);
    }
}

/// A sender's address in a matcher.
fn sender(text: &str, shared: &[String], out: &mut Vec<Capability>) {
    if endpoint_address(text, false, shared) {
        out.push(Capability::EndpointAddressing);
    }
}

fn message(m: &MessageMatch, shared: &[String], out: &mut Vec<Capability>) {
    if let Some(kind) = m.message_type {
        out.push(Capability::MessageKind(kind));
    }
    if m.subject.is_some() {
        out.push(Capability::Subject);
    }
    if m.thread.is_some() {
        out.push(Capability::Thread);
    }
    if let Some(from) = &m.from {
        sender(from, shared, out);
    }
}

fn presence(
    show: Option<Show>,
    status: bool,
    priority: Option<i8>,
    from: Option<(&str, &[String])>,
    out: &mut Vec<Capability>,
) {
    out.extend(show.map(Capability::Show));
    if status {
        out.push(Capability::StatusText);
    }
    if priority.is_some_and(|p| p != 0) {
        out.push(Capability::Priority);
    }
    if let Some((from, shared)) = from {
        sender(from, shared, out);
    }
}

fn presence_match(p: &PresenceMatch, shared: &[String], out: &mut Vec<Capability>) {
    presence(
        p.show,
        p.status.is_some(),
        p.priority,
        p.from.as_deref().map(|from| (from, shared)),
        out,
    );
}

/// What one expectation needs, whatever kind it is.
macro_rules! expectation_needs {
    ($e:expr, $shared:expr, $out:expr) => {{
        let e = $e;
        if let Some(m) = &e.message {
            message(m, $shared, $out);
        }
        if let Some(p) = &e.presence {
            presence_match(p, $shared, $out);
        }
        if e.subscription_request.is_some() || e.subscribed.is_some() || e.unsubscribe.is_some() {
            $out.push(Capability::SubscriptionHandshake);
        }
        if e.unsubscribed.is_some() {
            $out.push(Capability::SubscriptionEnd);
        }
        if let Some(error) = &e.error
            && let Some(from) = &error.from
        {
            sender(from, $shared, $out);
        }
    }};
}

fn expect(e: &Expect, shared: &[String], out: &mut Vec<Capability>) {
    expectation_needs!(e, shared, out);
    if e.subscription_state.is_some() {
        out.push(Capability::ContactList);
    }
}

fn expect_none(e: &ExpectNone, shared: &[String], out: &mut Vec<Capability>) {
    expectation_needs!(e, shared, out);
}

/// What one step needs; `shared` names the actors whose account has another endpoint.
pub fn needs(step: &Step, shared: &[String]) -> Vec<Capability> {
    let mut out = Vec::new();
    match step {
        Step::Login(_) | Step::Logout(_) | Step::Disconnect(_) => {}
        Step::Send(send) => {
            if let Some(kind) = send.message_type {
                out.push(Capability::MessageKind(kind));
            }
            if send.subject.is_some() {
                out.push(Capability::Subject);
            }
            if send.thread.is_some() {
                out.push(Capability::Thread);
            }
            address(&send.to, &mut out);
        }
        Step::Subscribe(step) => {
            if step.lifetime.is_some() {
                out.push(Capability::Lease);
            }
            address(&step.to, &mut out);
        }
        Step::Renew(step) => {
            out.push(Capability::Lease);
            address(&step.to, &mut out);
        }
        Step::Unsubscribe(pair) => address(&pair.to, &mut out),
        Step::Approve(_) | Step::Deny(_) | Step::Cancel(_) => {
            out.push(Capability::SubscriptionHandshake);
        }
        Step::RosterAdd(_) | Step::RosterRemove(_) => out.push(Capability::ContactList),
        Step::Presence(p) => {
            presence(p.show, p.status.is_some(), p.priority, None, &mut out);
            if p.lease.is_some() {
                out.push(Capability::Lease);
            }
            if p.to.is_some() {
                out.push(Capability::DirectedPresence);
            }
        }
        Step::Expect(e) => expect(e, shared, &mut out),
        Step::ExpectNone(e) => expect_none(e, shared, &mut out),
        Step::Federation(f) => {
            // A message's type is its kind; other stanza types are XMPP's own.
            let kind = [
                MessageKind::Normal,
                MessageKind::Chat,
                MessageKind::Groupchat,
                MessageKind::Headline,
                MessageKind::Error,
            ]
            .into_iter()
            .find(|kind| f.stanza_type.as_deref() == Some(kind.as_str()));
            match (&f.stanza_type, f.stanza, kind) {
                (None, _, _) => {}
                (Some(_), imfed_model::StanzaKind::Message, Some(kind)) => {
                    out.push(Capability::MessageKind(kind));
                }
                (Some(_), _, _) => out.push(Capability::FederationStanzaType),
            }
            address(&f.to, &mut out);
        }
        Step::Raw(_)
        | Step::ExpectXml(_)
        | Step::PeerConnect(_)
        | Step::PeerSend(_)
        | Step::PeerCut(_)
        | Step::ReferenceLink(_)
        | Step::PeerExpect(_)
        | Step::SendFile(_)
        | Step::ExpectFile(_)
        | Step::UploadProbe(_) => out.push(Capability::XmppWire),
        Step::RawHttp(_) | Step::ExpectHttp(_) => out.push(Capability::RvpWire),
        Step::RawSip(_) | Step::ExpectSip(_) => out.push(Capability::SipWire),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(steps: &str) -> Scenario {
        let text = format!(
            "id: t\ntitle: t\nspec: [{{doc: RFC 2779, section: '4.1', level: MUST}}]\n\
             actors: {{alice: ref, bob: sut}}\nsteps:\n{steps}"
        );
        crate::scenario::load::parse_yaml(&text, std::path::Path::new("t.yaml"))
            .expect("scenario parses")
    }

    #[test]
    fn rvp_declares_the_handshake_and_status_text_with_reasons() {
        let handshake = scenario("  - login: bob\n  - approve: {from: bob, to: alice}\n");
        let gap = first_gap(&handshake, Profile::Rvp).expect("a gap");
        assert_eq!(gap.capability, Capability::SubscriptionHandshake);
        assert!(gap.reason.contains("§5.7"), "{}", gap.reason);
        assert_eq!(gap.line, 7);
        assert_eq!(first_gap(&handshake, Profile::Xmpp), None);

        let status = scenario("  - presence: {actor: bob, status: hi}\n");
        assert_eq!(
            first_gap(&status, Profile::Rvp).map(|g| g.capability),
            Some(Capability::StatusText)
        );
    }

    #[test]
    fn plain_messages_and_away_run_over_rvp() {
        let plain = scenario(
            "  - login: bob\n  - presence: {actor: bob, show: away}\n  - send: {from: alice, to: bob, body: x}\n  \
             - expect: {actor: bob, message: {from: alice, body: x}}\n",
        );
        assert_eq!(first_gap(&plain, Profile::Rvp), None);
        let full = scenario("  - send: {from: alice, to: '{bob.full_jid}', body: x}\n");
        assert_eq!(
            first_gap(&full, Profile::Rvp).map(|g| g.capability),
            Some(Capability::EndpointAddressing)
        );
    }

    #[test]
    fn an_endpoint_as_sender_needs_addressing_only_when_the_account_has_two() {
        let steps = "  - expect: {actor: bob, presence: {from: '{bob.full_jid}'}}\n";
        assert_eq!(first_gap(&scenario(steps), Profile::Rvp), None);
        let text = format!(
            "id: t\ntitle: t\nspec: [{{doc: RFC 2779, section: '4.1', level: MUST}}]\n\
             actors: {{alice: ref, bob: sut, bob2: {{on: sut, account: bob, resource: two}}}}\n\
             steps:\n{steps}"
        );
        let two: Scenario =
            crate::scenario::load::parse_yaml(&text, std::path::Path::new("t.yaml")).unwrap();
        assert_eq!(
            first_gap(&two, Profile::Rvp).map(|g| g.capability),
            Some(Capability::EndpointAddressing)
        );
    }

    #[test]
    fn sip_declares_its_gaps_with_reasons_and_runs_what_it_can_say() {
        let handshake = scenario("  - login: bob\n  - approve: {from: bob, to: alice}\n");
        let gap = first_gap(&handshake, Profile::Sip).expect("a gap");
        assert_eq!(gap.capability, Capability::SubscriptionHandshake);
        assert!(gap.reason.contains("RFC 3856 §6.6"), "{}", gap.reason);
        let request = scenario("  - expect: {actor: bob, subscription_request: {from: alice}}\n");
        assert_eq!(
            first_gap(&request, Profile::Sip).map(|g| g.capability),
            Some(Capability::SubscriptionHandshake)
        );
        for (steps, capability, cited) in [
            (
                "  - roster_remove: {actor: bob, contact: alice}\n",
                Capability::ContactList,
                "RFC 6665",
            ),
            (
                "  - presence: {actor: bob, show: xa}\n",
                Capability::Show(Show::Xa),
                "RFC 4480",
            ),
            (
                "  - presence: {actor: bob, show: chat}\n",
                Capability::Show(Show::Chat),
                "RFC 4480",
            ),
            (
                "  - presence: {actor: bob, priority: 5}\n",
                Capability::Priority,
                "RFC 3863",
            ),
            (
                "  - presence: {actor: bob, to: alice}\n",
                Capability::DirectedPresence,
                "RFC 3903",
            ),
            (
                "  - send: {from: alice, to: bob, type: headline, body: x}\n",
                Capability::MessageKind(MessageKind::Headline),
                "RFC 3428",
            ),
            (
                "  - send: {from: alice, to: bob, thread: t, body: x}\n",
                Capability::Thread,
                "RFC 3428",
            ),
            (
                "  - send: {from: alice, to: '{bob.full_jid}', body: x}\n",
                Capability::EndpointAddressing,
                "RFC 5627",
            ),
            (
                "  - raw: {actor: bob, xml: '<presence/>'}\n",
                Capability::XmppWire,
                "XMPP",
            ),
            (
                "  - raw_http: {actor: bob, request: 'GET / HTTP/1.1'}\n",
                Capability::RvpWire,
                "RVP",
            ),
        ] {
            let gap = first_gap(&scenario(steps), Profile::Sip).expect(steps);
            assert_eq!(gap.capability, capability, "{steps}");
            assert!(gap.reason.contains(cited), "{steps}: {}", gap.reason);
        }
        let expressible = scenario(
            "  - login: bob\n  - presence: {actor: bob, show: dnd, status: busy, lease: 5s}\n  \
             - subscribe: {from: alice, to: bob, lifetime: 3s}\n  \
             - renew: {from: alice, to: bob, lifetime: 3s}\n  \
             - send: {from: alice, to: bob, subject: s, body: x}\n  \
             - expect: {actor: bob, message: {from: alice, subject: s, body: x}}\n  \
             - expect: {actor: alice, unsubscribed: {from: bob}}\n  \
             - raw_sip: {actor: bob, request: 'OPTIONS sip:{bob.domain} SIP/2.0'}\n  \
             - expect_sip: {actor: bob, status: 200}\n",
        );
        assert_eq!(first_gap(&expressible, Profile::Sip), None);
        // The end of a subscription stays a gap where it was one.
        let ended = scenario("  - expect: {actor: alice, unsubscribed: {from: bob}}\n");
        assert_eq!(
            first_gap(&ended, Profile::Rvp).map(|g| g.capability),
            Some(Capability::SubscriptionEnd)
        );
        assert_eq!(first_gap(&ended, Profile::Xmpp), None);
        let raw = scenario("  - expect_sip: {actor: bob, status: 200}\n");
        for profile in [Profile::Xmpp, Profile::Rvp] {
            assert_eq!(
                first_gap(&raw, profile).map(|g| g.capability),
                Some(Capability::SipWire)
            );
        }
    }

    #[test]
    fn profile_specific_scenarios_are_unsupported_elsewhere() {
        let mut rvp_only = scenario("  - login: bob\n");
        rvp_only.profiles = vec!["rvp".into()];
        assert_eq!(first_gap(&rvp_only, Profile::Rvp), None);
        let gap = first_gap(&rvp_only, Profile::Xmpp).expect("a gap");
        assert_eq!(gap.capability, Capability::Profile);
        assert_eq!(condition_profile(&rvp_only), Profile::Rvp);
        let raw = scenario("  - raw_http: {actor: bob, request: 'GET / HTTP/1.1'}\n");
        assert_eq!(
            first_gap(&raw, Profile::Xmpp).map(|g| g.capability),
            Some(Capability::RvpWire)
        );
    }
}
