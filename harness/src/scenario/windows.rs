//! Negative windows must be meaningful. "Nothing arrived for a second" proves nothing when
//! the stanza could still be on its way because the federation link it needs is being set
//! up. So a negative window over a cross-domain path (an `expect_none`, or a `federation`
//! count with `exactly`) must either follow a positive marker over the same path (an earlier
//! check that saw something cross from the sender's domain to the watcher's: then the link is
//! up, and stanzas on it arrive in order, RFC 6120 §10.1) or last at least the link-setup
//! bound ([`LINK_SETUP_BOUND`]). An error reply from the other domain marks both ways: the
//! stanza it answers got there.
//!
//! The path of a window is from the domain of its `from` to the watcher's domain; a window
//! without `from` watches the path from the other domain; a sender on no one's domain
//! (`{unknown.domain}`) or on the watcher's own domain needs no link.

use std::time::Duration;

use super::judges::{
    actor_role, last_recipient, role_of_address, sender_of_expect, sender_of_none,
};
use super::model::{PeerVerdict, Role, Scenario, Step};

/// How long a federation link may take to be set up: the reference server's s2s bound in
/// the built-in targets (a link not up by then bounces what it holds).
pub const LINK_SETUP_BOUND: Duration = Duration::from_secs(4);

/// Stanzas from the first role's domain to the second's.
type Path = (Role, Role);

/// The path of something the receiver got from `sender`, if it crossed a link.
fn crossing(scenario: &Scenario, receiver: &str, sender: Option<&str>) -> Option<Path> {
    let to = actor_role(scenario, receiver)?;
    let from = role_of_address(scenario, sender?)?;
    (from != to).then_some((from, to))
}

/// The paths step `index` proves something crossed, if it is a positive check.
fn markers(scenario: &Scenario, index: usize) -> Vec<Path> {
    match &scenario.steps[index].value {
        Step::Expect(expect) if expect.subscription_state.is_none() => {
            let sender = sender_of_expect(expect).or_else(|| {
                // An error without 'from' comes from the last recipient's domain.
                expect
                    .error
                    .as_ref()
                    .and_then(|_| last_recipient(scenario, index, &expect.actor))
            });
            let Some((from, to)) = crossing(scenario, &expect.actor, sender) else {
                return Vec::new();
            };
            if expect.error.is_some() {
                // An error from the other domain answers a stanza that got there.
                vec![(from, to), (to, from)]
            } else {
                vec![(from, to)]
            }
        }
        Step::Federation(fed) if !fed.exactly => {
            let (Some(from), Some(to)) = (
                actor_role(scenario, &fed.from),
                role_of_address(scenario, &fed.to),
            ) else {
                return Vec::new();
            };
            if from == to {
                Vec::new()
            } else {
                vec![(from, to)]
            }
        }
        // A peer connection authenticated for the reference server's domain is a link from
        // that domain, up and in order (only the implementation can vouch for it).
        Step::PeerExpect(expect) if expect.dialback == Some(PeerVerdict::Valid) => {
            let claims_ref =
                scenario.steps[..index]
                    .iter()
                    .rev()
                    .find_map(|step| match &step.value {
                        Step::PeerConnect(connect) if connect.peer == expect.peer => Some(
                            connect
                                .from
                                .as_deref()
                                .is_none_or(|from| from == "{ref.domain}"),
                        ),
                        _ => None,
                    });
            if claims_ref == Some(true) {
                vec![(Role::Ref, Role::Sut)]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// The path a negative window at `index` watches, and how long it lasts.
fn window(scenario: &Scenario, index: usize) -> Option<(Path, Duration, String)> {
    match &scenario.steps[index].value {
        Step::ExpectNone(none) => {
            let duration = none.duration.0;
            let path = match sender_of_none(none) {
                Some(sender) => crossing(scenario, &none.actor, Some(sender))?,
                None => {
                    let to = actor_role(scenario, &none.actor)?;
                    (to.other(), to)
                }
            };
            Some((path, duration, format!("expect_none for {}", none.duration)))
        }
        Step::Federation(fed) if fed.exactly => {
            let from = actor_role(scenario, &fed.from)?;
            let to = role_of_address(scenario, &fed.to)?;
            let within = fed
                .within
                .map_or(crate::runner::exec::DEFAULT_WITHIN, |d| d.0);
            (from != to).then(|| {
                (
                    (from, to),
                    within,
                    format!(
                        "federation count exactly within {}",
                        crate::scenario::model::Dur(within)
                    ),
                )
            })
        }
        _ => None,
    }
}

/// Every negative window that breaks the rule, as (step index, problem).
pub fn check(scenario: &Scenario) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for index in 0..scenario.steps.len() {
        let Some(((from, to), duration, what)) = window(scenario, index) else {
            continue;
        };
        let marked = (0..index).any(|earlier| markers(scenario, earlier).contains(&(from, to)));
        if !marked && duration < LINK_SETUP_BOUND {
            problems.push((
                index,
                format!(
                    "{what} watches stanzas crossing from the {} domain to the {} domain, but no \
                     earlier check saw anything cross that way: the window could pass only \
                     because the link is still being set up. Put a positive check over the same \
                     path before it (an expect on a {} actor of something from a {} actor, or a \
                     federation check), or watch for at least {}s (the link-setup bound)",
                    from.as_str(),
                    to.as_str(),
                    to.as_str(),
                    from.as_str(),
                    LINK_SETUP_BOUND.as_secs()
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(steps: &str) -> Vec<usize> {
        let text = format!(
            "id: x\ntitle: t\nspec: [{{doc: RFC 6121, section: '1', level: MUST}}]\n\
             actors: {{alice: ref, carol: ref, bob: sut}}\nsteps:\n{steps}"
        );
        let scenario: Scenario =
            crate::scenario::load::parse_yaml(&text, std::path::Path::new("x.yaml")).unwrap();
        check(&scenario)
            .into_iter()
            .map(|(index, _)| index)
            .collect()
    }

    #[test]
    fn a_short_window_needs_a_marker_over_its_path() {
        // No marker: the window on bob for alice's messages breaks the rule.
        assert_eq!(
            problems("  - expect_none: {actor: bob, message: {from: alice}, for: 1s}\n"),
            vec![0]
        );
        // Long enough, or a local path: fine.
        assert!(
            problems("  - expect_none: {actor: bob, message: {from: alice}, for: 4s}\n").is_empty()
        );
        assert!(
            problems("  - expect_none: {actor: carol, message: {from: alice}, for: 1s}\n")
                .is_empty()
        );
        // A marker over the same path (alice's domain to bob's) makes it meaningful ...
        assert!(
            problems(
                "  - expect: {actor: bob, message: {from: alice}}\n\
             \x20 - expect_none: {actor: bob, presence: {from: carol}, for: 1s}\n"
            )
            .is_empty()
        );
        // ... one over the other path does not.
        assert_eq!(
            problems(
                "  - expect: {actor: alice, message: {from: bob}}\n\
                 \x20 - expect_none: {actor: bob, presence: {from: carol}, for: 1s}\n"
            ),
            vec![1]
        );
        // Without 'from' the window watches the other domain; an exact federation count is a
        // window too, and an error marker counts for its recipient's domain.
        assert_eq!(
            problems(
                "  - expect_none: {actor: bob, any: true, for: 1s}\n\
                 \x20 - federation: {from: alice, to: bob, stanza: message, count: 1, exactly: true, within: 1s}\n\
                 \x20 - send: {from: bob, to: alice}\n\
                 \x20 - expect: {actor: bob, error: {stanza: message}}\n\
                 \x20 - expect_none: {actor: bob, presence: {from: alice}, for: 1s}\n\
                 \x20 - expect_none: {actor: alice, presence: {from: bob}, for: 1s}\n"
            ),
            vec![0, 1]
        );
    }
}
