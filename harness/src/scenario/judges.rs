//! Whose behaviour a check judges. A scenario run in both directions exercises the
//! implementation in one role and often only the reference server in the other, so every
//! check is labelled with the roles whose servers it verifies, and a run whose checks all
//! judge the reference server is not counted as a pass for the implementation.
//!
//! The rules, on roles as the scenario is written:
//! - what an actor must or must not receive judges the actor's server (it delivers) and the
//!   server of the sender named in `from` (it sent or routed it); a sender on no one's domain
//!   (`{unknown.domain}`, `{blackhole.domain}`) means the actor's own server answered;
//! - an error without `from` answers what the actor last sent: it judges the actor's server
//!   and the server of that stanza's recipient (only the actor's own when the recipient is on
//!   no one's domain);
//! - with no `from` otherwise the origin is open, so both;
//! - a roster state judges the actor's server and the contact's;
//! - a federation check judges the server that put the stanza on the link: the sender's;
//! - an HTTP answer (`expect_http`) or a SIP response (`expect_sip`) answers the actor's
//!   last request: like an error without `from`, it judges the actor's server and that of
//!   the request's target.
//!
//! Actions (log in, send, subscribe...) judge nothing by themselves.

use std::collections::BTreeSet;

use super::model::{Expect, ExpectNone, Role, Scenario, Step};
use super::template;

/// The role an address is on: an actor's name, an address built from an actor's template
/// (`{bob.jid}`, `nobody-{run.id}@{bob.domain}`), or one on `{ref.domain}` or
/// `{sut.domain}`. `None` for an address on no one's domain (`{unknown.domain}`,
/// `{blackhole.domain}`) or one the scenario does not tie to a role.
pub fn role_of_address(scenario: &Scenario, text: &str) -> Option<Role> {
    if let Some(def) = scenario.actors.get(text) {
        return Some(def.role());
    }
    template::tokens(text).into_iter().find_map(|token| {
        let (name, _) = token.split_once('.')?;
        match name {
            "ref" => Some(Role::Ref),
            "sut" => Some(Role::Sut),
            _ => scenario.actors.get(name).map(|def| def.role()),
        }
    })
}

pub(crate) fn actor_role(scenario: &Scenario, actor: &str) -> Option<Role> {
    scenario.actors.get(actor).map(|def| def.role())
}

/// The receiver's role and the roles that produced what it looks for.
fn receiving(scenario: &Scenario, actor: &str, sender: Option<&str>) -> BTreeSet<Role> {
    let Some(receiver) = actor_role(scenario, actor) else {
        return BTreeSet::new();
    };
    match sender {
        Some(sender) => match role_of_address(scenario, sender) {
            Some(role) => [receiver, role].into(),
            None => [receiver].into(),
        },
        None => [receiver, receiver.other()].into(),
    }
}

/// The sender an `expect` names; for a roster state, the contact.
pub(crate) fn sender_of_expect(expect: &Expect) -> Option<&str> {
    expect.named_sender().or(expect
        .subscription_state
        .as_ref()
        .map(|state| state.contact.as_str()))
}

/// The sender an `expect_none` names (none for `any`).
pub(crate) fn sender_of_none(none: &ExpectNone) -> Option<&str> {
    if none.any { None } else { none.named_sender() }
}

/// The recipient of the last stanza `actor` sent before step `index`.
pub(crate) fn last_recipient<'a>(
    scenario: &'a Scenario,
    index: usize,
    actor: &str,
) -> Option<&'a str> {
    scenario.steps[..index]
        .iter()
        .rev()
        .find_map(|step| match &step.value {
            Step::Send(send) if send.from == actor => Some(send.to.as_str()),
            Step::Subscribe(step) | Step::Renew(step) if step.from == actor => {
                Some(step.to.as_str())
            }
            Step::Approve(pair)
            | Step::Deny(pair)
            | Step::Cancel(pair)
            | Step::Unsubscribe(pair)
                if pair.from == actor =>
            {
                Some(pair.to.as_str())
            }
            Step::Presence(presence) if presence.actor == actor => presence.to.as_deref(),
            // The request target of an HTTP request as written (`NOTIFY {bob.jid} HTTP/1.1`).
            Step::RawHttp(raw) if raw.actor == actor => raw.request.split_whitespace().nth(1),
            // The Request-URI of a SIP request as written (`MESSAGE {bob.jid} SIP/2.0`).
            Step::RawSip(raw) if raw.actor == actor => raw.request.split_whitespace().nth(1),
            _ => None,
        })
}

/// The roles (as written) whose servers step `index` of `scenario` judges; empty for an
/// action.
pub fn judged(scenario: &Scenario, index: usize) -> BTreeSet<Role> {
    let bounce = |actor: &str| {
        let receiver = actor_role(scenario, actor);
        let recipient = last_recipient(scenario, index, actor)?;
        let mut roles: BTreeSet<Role> = receiver.into_iter().collect();
        roles.extend(role_of_address(scenario, recipient));
        Some(roles)
    };
    match &scenario.steps[index].value {
        Step::Expect(expect) => match sender_of_expect(expect) {
            None if expect.error.is_some() => {
                bounce(&expect.actor).unwrap_or_else(|| receiving(scenario, &expect.actor, None))
            }
            sender => receiving(scenario, &expect.actor, sender),
        },
        Step::ExpectNone(none) => match sender_of_none(none) {
            None if none.error.is_some() => {
                bounce(&none.actor).unwrap_or_else(|| receiving(scenario, &none.actor, None))
            }
            sender => receiving(scenario, &none.actor, sender),
        },
        Step::ExpectXml(xml) => receiving(scenario, &xml.actor, None),
        Step::ExpectHttp(answer) => {
            bounce(&answer.actor).unwrap_or_else(|| receiving(scenario, &answer.actor, None))
        }
        Step::ExpectSip(answer) => {
            bounce(&answer.actor).unwrap_or_else(|| receiving(scenario, &answer.actor, None))
        }
        Step::Federation(fed) => actor_role(scenario, &fed.from).into_iter().collect(),
        // A peer connection is always to the implementation's side as written.
        Step::PeerExpect(_) => BTreeSet::from([Role::Sut]),
        // The sender's server holds the file, the receiver's delivers the link.
        Step::ExpectFile(expect) => receiving(scenario, &expect.actor, Some(&expect.from)),
        Step::UploadProbe(probe) => actor_role(scenario, &probe.actor).into_iter().collect(),
        _ => BTreeSet::new(),
    }
}

/// The roles (as written) that any check of `scenario` judges.
pub fn judged_by_scenario(scenario: &Scenario) -> BTreeSet<Role> {
    (0..scenario.steps.len())
        .flat_map(|index| judged(scenario, index))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(steps: &str) -> Scenario {
        let text = format!(
            "id: x\ntitle: t\nspec: [{{doc: RFC 6121, section: '1', level: MUST}}]\n\
             actors: {{alice: ref, carol: ref, bob: sut}}\nsteps:\n{steps}"
        );
        crate::scenario::load::parse_yaml(&text, std::path::Path::new("x.yaml")).unwrap()
    }

    fn judged_roles(steps: &str) -> Vec<Vec<Role>> {
        let scenario = scenario(steps);
        (0..scenario.steps.len())
            .map(|index| judged(&scenario, index).into_iter().collect())
            .collect()
    }

    #[test]
    fn checks_judge_receivers_and_senders() {
        use Role::{Ref, Sut};
        let roles = judged_roles(
            "  - send: {from: alice, to: bob, body: hi}\n\
             \x20 - expect: {actor: bob, message: {from: alice}}\n\
             \x20 - expect: {actor: bob, presence: {from: '{bob.full_jid}'}}\n\
             \x20 - expect: {actor: alice, error: {from: 'nobody@{unknown.domain}'}}\n\
             \x20 - expect: {actor: alice, error: {from: 'nobody-{run.id}@{bob.domain}'}}\n\
             \x20 - expect: {actor: alice, error: {stanza: message}}\n\
             \x20 - send: {from: alice, to: 'x@{unknown.domain}', body: hi}\n\
             \x20 - expect: {actor: alice, error: {stanza: message}}\n\
             \x20 - expect: {actor: alice, subscription_state: {contact: bob, state: none}}\n\
             \x20 - expect_none: {actor: carol, presence: {from: alice}, for: 1s}\n\
             \x20 - expect_none: {actor: carol, any: true, for: 1s}\n\
             \x20 - federation: {from: bob, to: alice, stanza: message}\n\
             \x20 - federation: {from: alice, to: bob, stanza: message}\n",
        );
        assert_eq!(
            roles,
            vec![
                vec![],
                vec![Ref, Sut],
                vec![Sut],
                vec![Ref],
                vec![Ref, Sut],
                vec![Ref, Sut],
                vec![],
                vec![Ref],
                vec![Ref, Sut],
                vec![Ref],
                vec![Ref, Sut],
                vec![Sut],
                vec![Ref],
            ]
        );
    }
}
