//! Checks a parsed scenario beyond what its types say: actors that exist, one expectation
//! per `expect`, templates that name known values, XML that parses.

use std::path::Path;
use std::time::Duration;

use super::load::InputError;
use super::model::{ActorDef, At, Expect, ExpectNone, Scenario, Step};
use super::template;

/// The largest body `send`'s `pad_to` makes: 1 MB, more than any server's message limit.
const MAX_PAD_TO: u32 = 1_000_000;
/// The largest text `peer_send`'s `pad_to` makes: 16 MiB, past any server's stanza limit.
const MAX_PEER_PAD_TO: u32 = 16 * 1024 * 1024;

/// Every problem in `scenario`, each with the line and column of its step (or of the file's
/// start for scenario-level problems).
pub fn check(scenario: &Scenario, file: &Path) -> Vec<InputError> {
    let mut errors = Vec::new();
    let top = |message: String| InputError::at(file, 1, 1, message);
    if scenario.id.is_empty()
        || !scenario
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        errors.push(top(format!(
            "id {:?}: use lowercase letters, digits, '-' and '.'",
            scenario.id
        )));
    }
    if scenario.spec.is_empty() {
        errors.push(top("spec: at least one spec reference is required".into()));
    }
    if scenario.actors.is_empty() {
        errors.push(top("actors: at least one actor is required".into()));
    }
    if scenario.steps.is_empty() {
        errors.push(top("steps: at least one step is required".into()));
    }
    let cuts_the_link = scenario
        .steps
        .iter()
        .any(|step| matches!(step.value, Step::ReferenceLink(_)));
    if cuts_the_link && (!scenario.exclusive || scenario.both_directions) {
        errors.push(top(
            "reference_link changes the link every run shares: the scenario must be exclusive \
             and not both_directions (the reference server is what goes down)"
                .into(),
        ));
    }
    for profile in &scenario.profiles {
        if crate::driver::Profile::from_name(profile).is_none() {
            let known: Vec<&str> = crate::driver::Profile::ALL
                .iter()
                .map(|p| p.name())
                .collect();
            errors.push(top(format!(
                "profiles: unknown profile {profile:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    for (name, def) in &scenario.actors {
        if !is_actor_name(name) {
            errors.push(top(format!(
                "actor {name:?}: names use lowercase letters, digits and '_', starting with a letter"
            )));
        }
        if let ActorDef::Full(full) = def
            && let Some(account) = &full.account
        {
            match scenario.actors.get(account) {
                None => errors.push(top(format!(
                    "actor {name:?}: account {account:?} is not an actor"
                ))),
                Some(other) if other.role() != full.on => errors.push(top(format!(
                    "actor {name:?}: shares {account:?}'s account but is on another role"
                ))),
                Some(_) => {}
            }
        }
    }
    let names: Vec<&str> = scenario.actors.keys().map(String::as_str).collect();
    let mut problems: Vec<(usize, String)> = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        problems.extend(check_step(step, &names).into_iter().map(|m| (index, m)));
    }
    problems.extend(check_peers(scenario));
    problems.extend(check_files(scenario));
    // The window rule needs steps whose actors exist.
    if problems.is_empty() {
        problems.extend(super::windows::check(scenario));
    }
    problems.sort_by_key(|(index, _)| *index);
    for (index, message) in problems {
        let step = &scenario.steps[index];
        errors.push(InputError::at(
            file,
            step.line,
            step.column,
            format!("step {}: {message}", index + 1),
        ));
    }
    errors
}

/// Peer connections are named like actors, used only after a `peer_connect`, and go to
/// the implementation as written (a scenario using them runs in one direction).
fn check_peers(scenario: &Scenario) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut connected: Vec<&str> = Vec::new();
    let mut with_sasl: Vec<&str> = Vec::new();
    let requires = |capability: &str| scenario.requires.iter().any(|c| c == capability);
    for (index, step) in scenario.steps.iter().enumerate() {
        match &step.value {
            Step::PeerConnect(connect) => {
                if connect.certificate.is_some_and(|c| c.from_run_ca())
                    && !requires(crate::runner::env::S2S_CERTIFICATES)
                {
                    problems.push((
                        index,
                        format!(
                            "certificate: the run's CA issues it, so the scenario must require {}",
                            crate::runner::env::S2S_CERTIFICATES
                        ),
                    ));
                }
                let secure = [&connect.from, &connect.to].iter().any(|d| {
                    d.as_deref()
                        .is_some_and(|d| d.contains("{sut.secure_domain}"))
                });
                if secure && !requires(crate::runner::env::S2S_SECURE_AUTH) {
                    problems.push((
                        index,
                        format!(
                            "{{sut.secure_domain}} exists on targets with {}: the scenario must require it",
                            crate::runner::env::S2S_SECURE_AUTH
                        ),
                    ));
                }
                if connect.sasl.is_some() {
                    with_sasl.push(&connect.peer);
                }
            }
            Step::PeerExpect(expect)
                if expect.sasl.is_some() && !with_sasl.contains(&expect.peer.as_str()) =>
            {
                problems.push((
                    index,
                    format!(
                        "sasl: peer {:?} was not connected with sasl: external",
                        expect.peer
                    ),
                ));
            }
            _ => {}
        }
        let (name, connects) = match &step.value {
            Step::PeerConnect(connect) => (connect.peer.as_str(), true),
            Step::PeerSend(send) => (send.peer.as_str(), false),
            Step::PeerCut(cut) => (cut.peer.as_str(), false),
            Step::PeerExpect(expect) => (expect.peer.as_str(), false),
            _ => continue,
        };
        if scenario.both_directions {
            problems.push((
                index,
                "peer steps attack the implementation as written: the scenario cannot have \
                 both_directions"
                    .to_string(),
            ));
        }
        if connects {
            if !is_actor_name(name) {
                problems.push((
                    index,
                    format!(
                        "peer {name:?}: names use lowercase letters, digits and '_', starting with a letter"
                    ),
                ));
            }
            connected.push(name);
        } else if !connected.contains(&name) {
            problems.push((
                index,
                format!("peer: {name:?} is not connected by an earlier peer_connect"),
            ));
        }
    }
    problems
}

/// A file is named by an earlier `send_file` before `expect_file` or `upload_probe` use it.
fn check_files(scenario: &Scenario) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    let mut sent: Vec<&str> = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let used = match &step.value {
            Step::SendFile(send) => {
                if sent.contains(&send.name.as_str()) {
                    problems.push((index, format!("name: {:?} is sent twice", send.name)));
                }
                sent.push(&send.name);
                continue;
            }
            Step::ExpectFile(expect) => Some(expect.name.as_str()),
            Step::UploadProbe(probe) => probe.name.as_deref(),
            _ => continue,
        };
        if let Some(name) = used
            && !sent.contains(&name)
        {
            problems.push((
                index,
                format!("name: {name:?} is not sent by an earlier send_file"),
            ));
        }
    }
    problems
}

fn is_actor_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Problems in one step.
fn check_step(step: &At<Step>, actors: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut actor = |name: &str, field: &str| {
        if !actors.contains(&name) {
            problems.push(format!(
                "{field}: {name:?} is not an actor (actors: {})",
                actors.join(", ")
            ));
        }
    };
    let mut addresses: Vec<(&str, &str)> = Vec::new();
    let mut templates: Vec<(&str, String)> = Vec::new();
    let mut repeat = false;
    match &step.value {
        Step::Login(name) | Step::Logout(name) | Step::Disconnect(name) => actor(name, "actor"),
        Step::Send(send) => {
            actor(&send.from, "from");
            addresses.push(("to", &send.to));
            repeat = send.repeat.is_some();
            if send.repeat == Some(0) || send.repeat.is_some_and(|n| n > 10_000) {
                problems.push("repeat: must be 1..=10000".into());
            }
            if send
                .pad_to
                .is_some_and(|size| size == 0 || size > MAX_PAD_TO)
            {
                problems.push(format!("pad_to: must be 1..={MAX_PAD_TO} bytes"));
            }
            for (field, value) in [
                ("body", &send.body),
                ("thread", &send.thread),
                ("subject", &send.subject),
                ("id", &send.id),
            ] {
                if let Some(value) = value {
                    templates.push((field, value.clone()));
                }
            }
        }
        Step::Subscribe(step) | Step::Renew(step) => {
            actor(&step.from, "from");
            addresses.push(("to", &step.to));
        }
        Step::Approve(pair) | Step::Deny(pair) | Step::Cancel(pair) | Step::Unsubscribe(pair) => {
            actor(&pair.from, "from");
            addresses.push(("to", &pair.to));
        }
        Step::RosterAdd(add) => {
            actor(&add.actor, "actor");
            addresses.push(("contact", &add.contact));
            if let Some(name) = &add.name {
                templates.push(("name", name.clone()));
            }
        }
        Step::RosterRemove(remove) => {
            actor(&remove.actor, "actor");
            addresses.push(("contact", &remove.contact));
        }
        Step::Presence(presence) => {
            actor(&presence.actor, "actor");
            if let Some(to) = &presence.to {
                addresses.push(("to", to));
            }
            if let Some(status) = &presence.status {
                templates.push(("status", status.clone()));
            }
        }
        Step::Expect(expect) => {
            actor(&expect.actor, "actor");
            repeat = expect.repeat.is_some();
            let kinds = expect_kinds(expect);
            if kinds.len() != 1 {
                problems.push(format!(
                    "expect: give exactly one of message, presence, subscription_request, \
                     subscribed, unsubscribed, unsubscribe, error, subscription_state (found {})",
                    if kinds.is_empty() {
                        "none".to_string()
                    } else {
                        kinds.join(", ")
                    }
                ));
            }
            if expect.repeat.is_some() && expect.message.is_none() && expect.presence.is_none() {
                problems.push("repeat: only with message or presence".into());
            }
            if expect.repeat == Some(0) || expect.repeat.is_some_and(|n| n > 10_000) {
                problems.push("repeat: must be 1..=10000".into());
            }
            collect_match_fields(
                &mut addresses,
                &mut templates,
                expect.message.as_ref(),
                expect.presence.as_ref(),
                [
                    &expect.subscription_request,
                    &expect.subscribed,
                    &expect.unsubscribed,
                    &expect.unsubscribe,
                ],
                expect.error.as_ref(),
            );
            if let Some(state) = &expect.subscription_state {
                addresses.push(("contact", &state.contact));
            }
        }
        Step::ExpectNone(none) => {
            actor(&none.actor, "actor");
            let kinds = expect_none_kinds(none);
            if kinds.is_empty() && !none.any {
                problems
                    .push("expect_none: give a kind (message, presence, ...) or any: true".into());
            }
            if none.any && !kinds.is_empty() {
                problems.push("expect_none: any: true excludes the other kinds".into());
            }
            collect_match_fields(
                &mut addresses,
                &mut templates,
                none.message.as_ref(),
                none.presence.as_ref(),
                [
                    &none.subscription_request,
                    &none.subscribed,
                    &none.unsubscribed,
                    &none.unsubscribe,
                ],
                none.error.as_ref(),
            );
        }
        Step::Federation(fed) => {
            actor(&fed.from, "from");
            addresses.push(("to", &fed.to));
            if let Some(body) = &fed.body {
                templates.push(("body", body.clone()));
            }
            if fed.exactly && fed.count.is_none() {
                problems.push("exactly: needs count".into());
            }
        }
        Step::Raw(raw) => {
            actor(&raw.actor, "actor");
            templates.push(("xml", raw.xml.clone()));
            if let Err(error) =
                crate::driver::xmpp::parse_fragment(&template::placeholder(&raw.xml))
            {
                problems.push(format!("xml: {error}"));
            }
        }
        Step::RawHttp(raw) => {
            actor(&raw.actor, "actor");
            templates.push(("request", raw.request.clone()));
            // Malformed requests are what negative scenarios send, so only the request line
            // is checked here.
            let first = raw.request.lines().next().unwrap_or_default();
            if first.split_whitespace().count() != 3 {
                problems.push(format!(
                    "request: the first line must be `METHOD target HTTP/1.1`, found {first:?}"
                ));
            }
        }
        Step::ExpectHttp(expect) => {
            actor(&expect.actor, "actor");
            if !(100..=599).contains(&expect.status) {
                problems.push(format!(
                    "status: {} is not an HTTP status code",
                    expect.status
                ));
            }
            for (name, value) in &expect.headers {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    problems.push(format!("headers: {name:?} is not a header name"));
                }
                templates.push(("headers", value.clone()));
            }
            for text in &expect.body_contains {
                templates.push(("body_contains", text.clone()));
            }
        }
        Step::RawSip(raw) => {
            actor(&raw.actor, "actor");
            templates.push(("request", raw.request.clone()));
            // Malformed requests are what negative scenarios send, so only the request line
            // is checked here.
            // Its three words may be wrong on purpose (an unknown version, no method at all);
            // another count is taken for a mistake in the scenario.
            let first = raw.request.lines().next().unwrap_or_default();
            if first.split_whitespace().count() != 3 {
                problems.push(format!(
                    "request: the first line must be three words (`METHOD Request-URI SIP/2.0`, or a deliberately wrong one), found {first:?}"
                ));
            }
        }
        Step::ExpectSip(expect) => {
            actor(&expect.actor, "actor");
            match (&expect.status, &expect.method) {
                (Some(_), Some(_)) | (None, None) => problems.push(
                    "expect_sip: give status (a response) or method (a request the actor \
                     receives), not both or neither"
                        .into(),
                ),
                (Some(status), None) if !(100..=699).contains(status) => {
                    problems.push(format!("status: {status} is not a SIP status code"));
                }
                (None, Some(method))
                    if method.is_empty()
                        || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') =>
                {
                    problems.push(format!("method: {method:?} is not a SIP method"));
                }
                _ => {}
            }
            if let Some(reason) = &expect.reason {
                if expect.status.is_none() {
                    problems.push("reason: only a response (status) has a reason phrase".into());
                }
                templates.push(("reason", reason.clone()));
            }
            for (name, value) in &expect.headers {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                    problems.push(format!("headers: {name:?} is not a header name"));
                }
                templates.push(("headers", value.clone()));
            }
        }
        Step::SendFile(send) => {
            actor(&send.from, "from");
            addresses.push(("to", send.to.as_str()));
            templates.push(("name", send.name.clone()));
            if send.name.is_empty() || send.name.contains(['/', '\\']) {
                problems.push(format!(
                    "name: {:?} must be a file name, not a path",
                    send.name
                ));
            }
            if !send.media_type.contains('/') {
                problems.push(format!("type: {:?} is not a media type", send.media_type));
            }
        }
        Step::ExpectFile(expect) => {
            actor(&expect.actor, "actor");
            actor(&expect.from, "from");
            templates.push(("name", expect.name.clone()));
        }
        Step::UploadProbe(probe) => {
            actor(&probe.actor, "actor");
            let needs_name = probe.rule != super::model::UploadRule::OverLimit;
            match (&probe.name, needs_name) {
                (None, true) => problems.push(format!(
                    "name: {} needs the file it starts from",
                    probe.rule.name()
                )),
                (Some(_), false) => {
                    problems.push("name: over_limit uploads no file of the scenario".into())
                }
                (Some(name), true) => templates.push(("name", name.clone())),
                (None, false) => {}
            }
        }
        Step::PeerConnect(connect) => {
            templates.extend(connect.from.iter().map(|from| ("from", from.clone())));
            templates.extend(connect.to.iter().map(|to| ("to", to.clone())));
            if connect.dialback.is_some() && !connect.open {
                problems
                    .push("dialback: a connection that is not opened cannot authenticate".into());
            }
            if connect.certificate.is_some() && !(connect.open && connect.starttls) {
                problems.push(
                    "certificate: it is presented in the TLS handshake, so open and starttls \
                     must be true"
                        .into(),
                );
            }
            if connect.sasl.is_some() && connect.certificate.is_none() {
                problems.push("sasl: EXTERNAL authenticates with a certificate: give one".into());
            }
        }
        Step::PeerCut(_) | Step::ReferenceLink(_) => {}
        Step::PeerSend(send) => {
            let pad = crate::runner::exec::PAD;
            let parts: Vec<&str> = send.xml.split(pad).collect();
            templates.extend(parts.iter().map(|part| ("xml", part.to_string())));
            match (send.pad_to, parts.len()) {
                (Some(_), 2) | (None, 1) => {}
                (Some(_), _) => problems.push(format!(
                    "pad_to: the xml needs exactly one {pad} to replace with filler"
                )),
                (None, _) => problems.push(format!("xml: {pad} is only replaced with pad_to")),
            }
            if send
                .pad_to
                .is_some_and(|size| size == 0 || size > MAX_PEER_PAD_TO)
            {
                problems.push(format!("pad_to: must be 1..={MAX_PEER_PAD_TO} bytes"));
            }
            if let Some(trickle) = send.trickle {
                // The length after templates is not known here; the text as written bounds it
                // well enough for a check meant to keep runs short.
                let length = send.pad_to.map_or(send.xml.len(), |size| size as usize);
                let pieces = length.div_ceil(trickle.bytes.max(1) as usize);
                let total = trickle.every.0 * pieces.saturating_sub(1) as u32;
                if trickle.bytes == 0 || trickle.every.0 > Duration::from_secs(1) {
                    problems.push("trickle: bytes must be at least 1 and every at most 1s".into());
                } else if total > Duration::from_secs(20) {
                    problems.push(format!(
                        "trickle: {pieces} pieces every {:?} take {total:?}, over 20s",
                        trickle.every.0
                    ));
                }
            }
        }
        Step::PeerExpect(expect) => {
            let given = [
                expect.dialback.is_some(),
                expect.sasl.is_some(),
                expect.stream_error.is_some(),
                expect.closed,
                expect.pattern.is_some(),
            ];
            if given.iter().filter(|given| **given).count() != 1 {
                problems.push(
                    "peer_expect: give exactly one of dialback, sasl, stream_error, closed and match"
                        .into(),
                );
            }
            if let Some(conditions) = &expect.stream_error {
                for condition in conditions.values() {
                    if condition
                        .parse::<imfed_xmpp::StreamErrorCondition>()
                        .is_err()
                    {
                        problems.push(format!(
                            "stream_error: {condition:?} is not an RFC 6120 §4.9.3 condition"
                        ));
                    }
                }
            }
            if let Some(pattern) = &expect.pattern {
                templates.push(("match", pattern.clone()));
                match crate::driver::xmpp::parse_fragment_in(
                    &template::placeholder(pattern),
                    imfed_xmpp::ns::SERVER,
                ) {
                    Ok(elements) if elements.len() == 1 => {}
                    Ok(elements) => problems.push(format!(
                        "match: the pattern must be one element, found {}",
                        elements.len()
                    )),
                    Err(error) => problems.push(format!("match: {error}")),
                }
            }
        }
        Step::ExpectXml(expect) => {
            actor(&expect.actor, "actor");
            templates.push(("match", expect.pattern.clone()));
            match crate::driver::xmpp::parse_fragment(&template::placeholder(&expect.pattern)) {
                Ok(elements) if elements.len() == 1 => {}
                Ok(elements) => problems.push(format!(
                    "match: the pattern must be one element, found {}",
                    elements.len()
                )),
                Err(error) => problems.push(format!("match: {error}")),
            }
        }
    }
    for (field, value) in addresses {
        let is_plain_name = !value.contains(['@', '{', '.', '/']);
        if is_plain_name {
            if !actors.contains(&value) {
                problems.push(format!(
                    "{field}: {value:?} is not an actor (actors: {}); write an address or a template like {{bob.full_jid}}",
                    actors.join(", ")
                ));
            }
        } else {
            templates.push((field, value.to_string()));
        }
    }
    for (field, text) in templates {
        if let Err(error) = template::check(&text, actors, repeat) {
            problems.push(format!("{field}: {error}"));
        }
    }
    problems
}

fn collect_match_fields<'a>(
    addresses: &mut Vec<(&'static str, &'a str)>,
    templates: &mut Vec<(&'static str, String)>,
    message: Option<&'a super::model::MessageMatch>,
    presence: Option<&'a super::model::PresenceMatch>,
    signals: [&'a Option<super::model::FromMatch>; 4],
    error: Option<&'a super::model::ErrorMatch>,
) {
    if let Some(message) = message {
        if let Some(from) = &message.from {
            addresses.push(("from", from));
        }
        for value in [&message.body, &message.thread, &message.subject]
            .into_iter()
            .flatten()
        {
            templates.push(("body", value.clone()));
        }
    }
    if let Some(presence) = presence {
        if let Some(from) = &presence.from {
            addresses.push(("from", from));
        }
        if let Some(status) = &presence.status {
            templates.push(("status", status.clone()));
        }
    }
    for signal in signals.into_iter().flatten() {
        if let Some(from) = &signal.from {
            addresses.push(("from", from));
        }
    }
    if let Some(error) = error
        && let Some(from) = &error.from
    {
        addresses.push(("from", from));
    }
}

/// The kinds given in an `expect`.
pub fn expect_kinds(expect: &Expect) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for (present, name) in [
        (expect.message.is_some(), "message"),
        (expect.presence.is_some(), "presence"),
        (
            expect.subscription_request.is_some(),
            "subscription_request",
        ),
        (expect.subscribed.is_some(), "subscribed"),
        (expect.unsubscribed.is_some(), "unsubscribed"),
        (expect.unsubscribe.is_some(), "unsubscribe"),
        (expect.error.is_some(), "error"),
        (expect.subscription_state.is_some(), "subscription_state"),
    ] {
        if present {
            kinds.push(name);
        }
    }
    kinds
}

/// The kinds given in an `expect_none`.
pub fn expect_none_kinds(none: &ExpectNone) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for (present, name) in [
        (none.message.is_some(), "message"),
        (none.presence.is_some(), "presence"),
        (none.subscription_request.is_some(), "subscription_request"),
        (none.subscribed.is_some(), "subscribed"),
        (none.unsubscribed.is_some(), "unsubscribed"),
        (none.unsubscribe.is_some(), "unsubscribe"),
        (none.error.is_some(), "error"),
    ] {
        if present {
            kinds.push(name);
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(steps: &str) -> Vec<String> {
        let text = format!(
            "id: x\ntitle: t\nspec: [{{doc: RFC 3261, section: '16.3', level: MUST}}]\n\
             actors: {{alice: ref, bob: sut}}\nsteps:\n{steps}"
        );
        let path = Path::new("x.yaml");
        let scenario = crate::scenario::load::parse_yaml(&text, path).unwrap();
        check(&scenario, path)
            .into_iter()
            .map(|error| error.to_string())
            .collect()
    }

    #[test]
    fn file_steps_need_a_file_sent_before_and_well_formed_fields() {
        let found = problems(concat!(
            "  - expect_file: {actor: bob, from: alice, name: early.txt}\n",
            "  - send_file: {from: alice, to: bob, name: a/b.txt, type: text, size: 3}\n",
            "  - send_file: {from: alice, to: bob, name: a.txt, type: text/plain, size: 3}\n",
            "  - send_file: {from: alice, to: bob, name: a.txt, type: text/plain, size: 3}\n",
            "  - upload_probe: {actor: bob, rule: recipient_put}\n",
            "  - upload_probe: {actor: bob, rule: over_limit, name: a.txt}\n",
        ));
        let expected = [
            "step 1: name: \"early.txt\" is not sent by an earlier send_file",
            "step 2: name: \"a/b.txt\" must be a file name",
            "step 2: type: \"text\" is not a media type",
            "step 4: name: \"a.txt\" is sent twice",
            "step 5: name: recipient_put needs the file it starts from",
            "step 6: name: over_limit uploads no file",
        ];
        for wanted in expected {
            assert!(
                found.iter().any(|p| p.contains(wanted)),
                "{wanted}: {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{found:#?}");
    }

    #[test]
    fn peer_steps_need_a_connection_one_verdict_and_one_direction() {
        let found = problems(concat!(
            "  - peer_send: {peer: ghost, xml: '<a/>'}\n",
            "  - peer_connect: {peer: Evil}\n",
            "  - peer_connect: {peer: evil, open: false, dialback: wrong}\n",
            "  - peer_expect: {peer: evil, closed: true, stream_error: not-authorized}\n",
            "  - peer_expect: {peer: evil, stream_error: no-such-condition}\n",
            "  - peer_send: {peer: evil, xml: '<a/>', pad_to: 100}\n",
            "  - peer_connect: {peer: tls, starttls: false, certificate: untrusted}\n",
            "  - peer_connect: {peer: ext, certificate: valid, sasl: external}\n",
            "  - peer_connect: {peer: bare, sasl: external, to: '{sut.secure_domain}'}\n",
            "  - peer_expect: {peer: evil, sasl: success}\n",
            "  - peer_send: {peer: evil, xml: '<a/>', trickle: {bytes: 0, every: 10ms}}\n",
            "  - peer_send: {peer: evil, xml: '<message>', trickle: {bytes: 1, every: 3s}}\n",
            "  - peer_cut: {peer: nobody}\n",
        ));
        let expected = [
            "step 1: peer: \"ghost\" is not connected",
            "step 2: peer \"Evil\": names use lowercase",
            "step 3: dialback: a connection that is not opened cannot authenticate",
            "step 4: peer_expect: give exactly one of",
            "step 5: stream_error: \"no-such-condition\" is not an RFC 6120",
            "step 6: pad_to: the xml needs exactly one {pad}",
            "step 7: certificate: it is presented in the TLS handshake",
            "step 8: certificate: the run's CA issues it, so the scenario must require s2s-certificates",
            "step 9: sasl: EXTERNAL authenticates with a certificate",
            "step 9: {sut.secure_domain} exists on targets with s2s-secure-auth",
            "step 10: sasl: peer \"evil\" was not connected with sasl: external",
            "step 11: trickle: bytes must be at least 1",
            "step 12: trickle: bytes must be at least 1 and every at most 1s",
            "step 13: peer: \"nobody\" is not connected",
        ];
        for wanted in expected {
            assert!(
                found.iter().any(|p| p.contains(wanted)),
                "{wanted}: {found:#?}"
            );
        }
    }

    #[test]
    fn cutting_the_shared_link_needs_an_exclusive_one_way_scenario() {
        let down = "  - reference_link: down\n  - reference_link: up\n";
        let found = problems(down);
        assert!(
            found.iter().any(|p| p.contains("must be exclusive")),
            "{found:#?}"
        );
        let text = format!(
            "id: x\ntitle: t\nspec: [{{doc: RFC 6120, section: '10.4.3', level: MUST}}]\n\
             exclusive: true\nactors: {{alice: ref, bob: sut}}\nsteps:\n{down}"
        );
        let path = Path::new("x.yaml");
        let scenario = crate::scenario::load::parse_yaml(&text, path).unwrap();
        assert!(check(&scenario, path).is_empty());
        let both = text.replace("exclusive: true", "exclusive: true\nboth_directions: true");
        let scenario = crate::scenario::load::parse_yaml(&both, path).unwrap();
        assert_eq!(check(&scenario, path).len(), 1);
    }

    #[test]
    fn expect_sip_wants_a_status_or_a_method_and_pad_to_a_size() {
        for fine in [
            "  - expect_sip: {actor: alice, status: 412, reason: Conditional}\n",
            "  - expect_sip: {actor: alice, method: NOTIFY, headers: {Subscription-State: terminated}}\n",
            "  - send: {from: alice, to: bob, body: big, pad_to: 32769}\n",
        ] {
            assert!(problems(fine).is_empty(), "{fine}: {:?}", problems(fine));
        }
        for (bad, wanted) in [
            ("  - expect_sip: {actor: alice}\n", "not both or neither"),
            (
                "  - expect_sip: {actor: alice, status: 200, method: NOTIFY}\n",
                "not both or neither",
            ),
            (
                "  - expect_sip: {actor: alice, method: 'NO TIFY'}\n",
                "is not a SIP method",
            ),
            (
                "  - expect_sip: {actor: alice, method: NOTIFY, reason: OK}\n",
                "only a response",
            ),
            (
                "  - expect_sip: {actor: alice, status: 99}\n",
                "not a SIP status code",
            ),
            (
                "  - send: {from: alice, to: bob, pad_to: 0}\n",
                "pad_to: must be",
            ),
            (
                "  - send: {from: alice, to: bob, pad_to: 2000000}\n",
                "pad_to: must be",
            ),
        ] {
            let found = problems(bad);
            assert!(
                found.len() == 1 && found[0].contains(wanted),
                "{bad}: {found:?}"
            );
        }
    }
}
