//! Running one scenario in one direction: accounts, actors, steps, and what crossed the
//! federation link, into a [`ScenarioResult`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use imfed_model::{Address, Availability, MessageKind, SubscriptionAction, SubscriptionSignal};
use imfed_reports::{Failure, Flow, Judges, LinkLine, Outcome, ScenarioResult};
use tokio_util::sync::CancellationToken;

use super::env::{Account, Environment, Side};
use super::wire::{Dir, WireElement, now_ms};
use crate::driver::event::{
    Matcher, OutMessage, OutPresence, Pattern, SipWanted, SubscriptionRecord, truncate,
};
use crate::driver::lifecycle::{Liveness, Transcript, WaitError};
use crate::driver::{Session, random_token};
use crate::scenario::judges::{judged, judged_by_scenario};
use crate::scenario::load::LoadedScenario;
use crate::scenario::model::{
    ActorDef, ErrorMatch, Expect, ExpectNone, FederationExpect, FromMatch, MessageMatch, PeerKey,
    PeerVerdict, PresenceMatch, Role, Step, SubscriptionState,
};
use crate::scenario::template::Context;

/// Default bound of an `expect`.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// Default bound of a whole scenario.
pub const DEFAULT_SCENARIO_BOUND: Duration = Duration::from_secs(60);
/// Bound on logging in.
const REQUEST_BOUND: Duration = Duration::from_secs(10);
/// Bound on a liveness round trip (a ping to the actor's own server).
pub const LIVENESS_BOUND: Duration = Duration::from_secs(5);
/// Where `peer_send` puts filler to reach its `pad_to` size.
pub const PAD: &str = "{pad}";
/// How the failure report names the liveness check that follows the last step.
const AFTER_LAST_STEP: &str = "liveness check after the last step";

/// One actor at run time.
struct Actor {
    role: Role,
    account_key: String,
    resource: String,
    /// The actor's address: its endpoint, once logged in.
    address: Address,
    session: Option<Session>,
    /// How the actor's last stream ended when a step allowed it (a stream error).
    gone: Option<String>,
}

/// A step that failed.
struct StepFailure {
    message: String,
    awaited: Option<String>,
    arrived: Vec<String>,
}

impl StepFailure {
    fn new(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            awaited: None,
            arrived: Vec::new(),
        }
    }

    /// This failure (a lost session) as the cause of `failed`, keeping what `failed` waited
    /// for and saw.
    fn explaining(self, failed: StepFailure) -> StepFailure {
        // The step may have failed on the very end this failure reports.
        let end = self.message.split(", noticed during").next().unwrap_or("");
        let message = if failed.message.starts_with(end) {
            self.message
        } else {
            format!("{}; then: {}", self.message, failed.message)
        };
        StepFailure {
            message,
            awaited: failed.awaited,
            arrived: failed.arrived,
        }
    }
}

impl From<super::peer::PeerFailure> for StepFailure {
    fn from(failure: super::peer::PeerFailure) -> Self {
        StepFailure {
            message: failure.message,
            awaited: failure.awaited,
            arrived: failure.arrived,
        }
    }
}

type StepResult = Result<(), StepFailure>;

/// The scenario's run-time state.
struct Run<'a> {
    env: &'a Environment,
    swapped: bool,
    actors: BTreeMap<String, Actor>,
    accounts: BTreeMap<String, (Role, Account)>,
    context: Context,
    transcript: Transcript,
    /// When the scenario began, milliseconds since the Unix epoch (what crossed the link
    /// before does not belong to it).
    started_ms: u64,
    /// Faults turned on for this run, by role, to turn off at teardown.
    faults: Vec<(Role, Vec<u64>)>,
    /// Whether error `condition`s are in this run's profile's terms (see
    /// [`crate::driver::capability::condition_profile`]) and so are checked.
    conditions_apply: bool,
    /// The scenario's own server-to-server connections to the implementation.
    peers: super::peer::Peers,
    /// The files sent in the run (the files pack).
    files: super::files::Files,
    /// Whether `reference_link: down` left the reference server silent (undone at
    /// teardown).
    link_down: bool,
}

fn side(env: &Environment, role: Role) -> &Side {
    match role {
        Role::Ref => &env.reference,
        Role::Sut => &env.sut,
    }
}

/// `request` with the line ends of its head (up to the first empty line) made CRLF, so that
/// scenario files can write HTTP and SIP requests in YAML block scalars.
fn crlf_head(request: &str) -> String {
    let normalized = request.replace("\r\n", "\n");
    let (head, body) = normalized
        .split_once("\n\n")
        .unwrap_or((normalized.trim_end_matches('\n'), ""));
    format!("{}\r\n\r\n{body}", head.replace('\n', "\r\n"))
}

/// `body` padded with `.` to `size` bytes (`send`'s and `peer_send`'s `pad_to`).
fn padded(mut body: String, size: u32) -> Result<String, StepFailure> {
    let size = size as usize;
    if body.len() > size {
        return Err(StepFailure::new(format!(
            "pad_to: the text is already {} bytes, more than {size}",
            body.len()
        )));
    }
    body.extend(std::iter::repeat_n('.', size - body.len()));
    Ok(body)
}

/// A short label for a step, for reports.
pub fn step_label(step: &Step) -> String {
    match step {
        Step::Login(a) => format!("login {a}"),
        Step::Logout(a) => format!("logout {a}"),
        Step::Disconnect(a) => format!("disconnect {a}"),
        Step::Send(s) => format!(
            "send {} → {}{}",
            s.from,
            s.to,
            s.repeat.map(|n| format!(" ×{n}")).unwrap_or_default()
        ),
        Step::Subscribe(p) => format!("subscribe {} → {}", p.from, p.to),
        Step::Renew(p) => format!("renew {} → {}", p.from, p.to),
        Step::Approve(p) => format!("approve {} → {}", p.from, p.to),
        Step::Deny(p) => format!("deny {} → {}", p.from, p.to),
        Step::Cancel(p) => format!("cancel {} → {}", p.from, p.to),
        Step::Unsubscribe(p) => format!("unsubscribe {} → {}", p.from, p.to),
        Step::RosterAdd(r) => format!("roster_add {} + {}", r.actor, r.contact),
        Step::RosterRemove(r) => format!("roster_remove {} - {}", r.actor, r.contact),
        Step::Presence(p) => format!(
            "presence {}{}",
            p.actor,
            p.to.as_ref().map(|t| format!(" → {t}")).unwrap_or_default()
        ),
        Step::Expect(e) => format!(
            "expect {} {}",
            e.actor,
            crate::scenario::validate::expect_kinds(e).join(" ")
        ),
        Step::ExpectNone(e) => format!(
            "expect_none {} {}",
            e.actor,
            if e.any {
                "any".to_string()
            } else {
                crate::scenario::validate::expect_none_kinds(e).join(" ")
            }
        ),
        Step::Federation(f) => format!("federation {} {} → {}", f.stanza.as_str(), f.from, f.to),
        Step::Raw(r) => format!("raw {}", r.actor),
        Step::RawHttp(r) => format!(
            "raw_http {} {}",
            r.actor,
            r.request.split_whitespace().next().unwrap_or_default()
        ),
        Step::ExpectXml(e) => format!("expect_xml {}", e.actor),
        Step::ExpectHttp(e) => format!("expect_http {} {}", e.actor, e.status),
        Step::RawSip(r) => format!(
            "raw_sip {} {}",
            r.actor,
            r.request.split_whitespace().next().unwrap_or_default()
        ),
        Step::ExpectSip(e) => format!(
            "expect_sip {} {}",
            e.actor,
            e.status
                .map(|status| status.to_string())
                .or(e.method.clone())
                .unwrap_or_default()
        ),
        Step::PeerConnect(c) => format!(
            "peer_connect {}{}",
            c.peer,
            match c.dialback {
                Some(PeerKey::Reference) => " (dialback)",
                Some(PeerKey::Wrong) => " (wrong dialback key)",
                None => "",
            }
        ),
        Step::PeerSend(p) => format!("peer_send {}", p.peer),
        Step::PeerCut(p) => format!("peer_cut {}", p.peer),
        Step::ReferenceLink(action) => format!("reference_link {action:?}").to_lowercase(),
        Step::SendFile(f) => format!(
            "send_file {} → {} {} ({} bytes)",
            f.from, f.to, f.name, f.size
        ),
        Step::ExpectFile(f) => format!("expect_file {} ← {} {}", f.actor, f.from, f.name),
        Step::UploadProbe(p) => format!("upload_probe {} {}", p.actor, p.rule.name()),
        Step::PeerExpect(e) => format!(
            "peer_expect {} {}",
            e.peer,
            match (&e.dialback, &e.stream_error, e.closed) {
                _ if let Some(sasl) = e.sasl => format!("sasl {sasl:?}").to_lowercase(),
                (Some(PeerVerdict::Valid), _, _) => "dialback valid".to_string(),
                (Some(PeerVerdict::Refused), _, _) => "dialback refused".to_string(),
                (None, Some(conditions), _) => conditions.values().join("|"),
                (None, None, true) => "closed".to_string(),
                (None, None, false) => "stanza".to_string(),
            }
        ),
    }
}

/// Runs `loaded` once in one direction.
pub async fn run_scenario(
    env: &Environment,
    loaded: &LoadedScenario,
    swapped: bool,
    run_id: &str,
    cancel: &CancellationToken,
) -> ScenarioResult {
    let scenario = &loaded.scenario;
    let transcript = Transcript::new();
    let started_ms = now_ms();
    let mut run = Run {
        env,
        swapped,
        actors: BTreeMap::new(),
        accounts: BTreeMap::new(),
        context: Context::default(),
        transcript: transcript.clone(),
        started_ms,
        faults: Vec::new(),
        conditions_apply: crate::driver::capability::condition_profile(scenario) == env.profile,
        peers: super::peer::Peers::default(),
        files: super::files::Files::default(),
        link_down: false,
    };
    let bound = scenario.timeout.map_or(DEFAULT_SCENARIO_BOUND, |d| d.0);
    let setup = run.setup(scenario, run_id).await;
    let failure: Option<Failure> = if let Err(error) = setup {
        Some(Failure::new(0, "set up accounts", error.message))
    } else {
        let mut current = 0usize;
        let steps = async {
            for (index, step) in scenario.steps.iter().enumerate() {
                current = index;
                let result = run.step(&step.value).await;
                // A stream that ended unasked fails the step that noticed it, and explains
                // that step's own failure better than the step can.
                let noticed = || format!("step {} ({})", index + 1, step_label(&step.value));
                let result = match (run.check_sessions(&noticed()), result) {
                    (Err(lost), Err(failed)) => Err(lost.explaining(failed)),
                    (Err(lost), Ok(())) => Err(lost),
                    (Ok(()), result) => result,
                };
                if let Err(error) = result {
                    return Err((Some(index), error));
                }
            }
            // Silence proves nothing on a session that has stalled: every actor still
            // connected answers a round trip before the scenario can pass.
            run.liveness_of_all().await.map_err(|error| (None, error))
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(bound, steps) => Some(outcome),
            () = cancel.cancelled() => None,
        };
        match outcome {
            Some(Ok(Ok(()))) => None,
            Some(Ok(Err((index, error)))) => Some(Failure {
                step: index.map_or(0, |index| index + 1),
                step_label: match index {
                    Some(index) => step_label(&scenario.steps[index].value),
                    None => AFTER_LAST_STEP.into(),
                },
                message: error.message,
                awaited: error.awaited,
                arrived: error.arrived,
                judges: index.and_then(|index| judges_of(&judged(scenario, index), swapped)),
            }),
            Some(Err(_)) => Some(Failure::new(
                current + 1,
                step_label(&scenario.steps[current].value),
                format!("the scenario exceeded its bound of {bound:?} (watchdog)"),
            )),
            None => Some(Failure::new(
                current + 1,
                step_label(&scenario.steps[current].value),
                "interrupted",
            )),
        }
    };
    let torn_down = run.teardown().await;
    let own: Vec<Address> = run.actors.values().map(|a| a.address.bare()).collect();
    let federation = federation_lines(env, started_ms, &own).await;
    // A run that cannot be observed, or whose environment cannot be restored, does not pass.
    let failure = failure.or_else(|| {
        let problems: Vec<String> = torn_down
            .err()
            .into_iter()
            .chain(federation.as_ref().err().cloned())
            .collect();
        (!problems.is_empty()).then(|| Failure::new(0, "after the run", problems.join("; ")))
    });
    let federation = federation.unwrap_or_default();
    let interrupted =
        cancel.is_cancelled() && failure.as_ref().is_some_and(|f| f.message == "interrupted");
    ScenarioResult {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        pack: loaded.pack.clone(),
        file: loaded.relative.clone(),
        direction: if swapped { "sut→ref" } else { "ref→sut" }.into(),
        spec: spec_refs(scenario),
        tags: scenario.tags.clone(),
        outcome: if interrupted {
            Outcome::Skipped {
                reason: "interrupted".into(),
            }
        } else if failure.is_some() {
            Outcome::Fail
        } else {
            Outcome::Pass
        },
        failure: if interrupted { None } else { failure },
        judges: run_judges(scenario, swapped),
        attempts: 1,
        duration_ms: transcript.started().elapsed().as_millis() as u64,
        transcript: transcript.lines(),
        federation,
    }
}

/// Whose servers the roles `roles` (as written) are in a run, `None` for no role.
fn judges_of(roles: &BTreeSet<Role>, swapped: bool) -> Option<Judges> {
    let on = |role: Role| roles.contains(&if swapped { role.other() } else { role });
    Judges::of(on(Role::Sut), on(Role::Ref))
}

/// Whose behaviour a run of `scenario` judges (see [`crate::scenario::judges`]).
pub fn run_judges(scenario: &crate::scenario::model::Scenario, swapped: bool) -> Judges {
    judges_of(&judged_by_scenario(scenario), swapped).unwrap_or_default()
}

/// The scenario's spec references in report form.
pub fn spec_refs(scenario: &crate::scenario::model::Scenario) -> Vec<imfed_reports::SpecRef> {
    use crate::scenario::model::Level;
    scenario
        .spec
        .iter()
        .map(|s| imfed_reports::SpecRef {
            doc: s.doc.clone(),
            section: s.section.clone(),
            level: match s.level {
                Level::Must => imfed_reports::Level::Must,
                Level::Should => imfed_reports::Level::Should,
                Level::May => imfed_reports::Level::May,
            },
            text: s.text.clone(),
        })
        .collect()
}

/// What crossed the link during the scenario and involves its actors (scenarios run in
/// parallel share the link), as seen on the wire.
///
/// # Errors
/// The observer is blind: the tap could not be read.
async fn federation_lines(
    env: &Environment,
    started_ms: u64,
    actors: &[Address],
) -> Result<Vec<LinkLine>, String> {
    env.wire
        .sync(Duration::ZERO)
        .await
        .map_err(|error| format!("the federation link cannot be observed: {error}"))?;
    let involves = |element: &WireElement| element.involves(actors);
    Ok(env
        .wire
        .elements(started_ms, involves)
        .into_iter()
        .map(|element| {
            let (local, remote) = link_ends(&element);
            LinkLine {
                t_ms: element.ts_ms.saturating_sub(started_ms),
                direction: element.dir.as_str().to_string(),
                local,
                remote,
                xml: element.raw,
            }
        })
        .collect())
}

/// The reference-side and remote domains of the link an element crossed, as its sender
/// wrote them.
fn link_ends(element: &WireElement) -> (String, String) {
    let (from, to) = element.link_ends();
    match element.dir {
        Dir::Out => (from, to),
        Dir::In => (to, from),
    }
}

impl Run<'_> {
    fn role_of(&self, def: &ActorDef) -> Role {
        if self.swapped {
            def.role().other()
        } else {
            def.role()
        }
    }

    /// Accounts, JIDs and template values for every actor.
    async fn setup(
        &mut self,
        scenario: &crate::scenario::model::Scenario,
        run_id: &str,
    ) -> StepResult {
        let mut values = BTreeMap::from([
            ("run.id".to_string(), run_id.to_string()),
            ("ref.domain".to_string(), self.env.reference.domain.clone()),
            ("sut.domain".to_string(), self.env.sut.domain.clone()),
            (
                "sut.secure_domain".to_string(),
                self.env.sut.secure_domain.clone().unwrap_or_default(),
            ),
            (
                "unknown.domain".to_string(),
                super::env::UNKNOWN_DOMAIN.to_string(),
            ),
            (
                "blackhole.domain".to_string(),
                super::env::BLACKHOLE_DOMAIN.to_string(),
            ),
            (
                "sip.transport".to_string(),
                self.env
                    .sut
                    .sip
                    .map_or("udp", |sip| sip.transport.name())
                    .to_ascii_uppercase(),
            ),
        ]);
        for (name, def) in &scenario.actors {
            let role = self.role_of(def);
            let (account_key, resource) = match def {
                ActorDef::Role(_) => (name.clone(), "imfed".to_string()),
                ActorDef::Full(full) => (
                    full.account.clone().unwrap_or_else(|| name.clone()),
                    full.resource.clone().unwrap_or_else(|| "imfed".to_string()),
                ),
            };
            if !self.accounts.contains_key(&account_key) {
                let user = format!("{account_key}-{run_id}-{}", random_token(5)).replace('_', "-");
                let password = random_token(16);
                let account = side(self.env, role)
                    .create_account(&user, &password)
                    .await
                    .map_err(StepFailure::new)?;
                self.accounts.insert(account_key.clone(), (role, account));
            }
            let (_, account) = &self.accounts[&account_key];
            let address = Address {
                user: Some(account.user.clone()),
                domain: side(self.env, role).domain.clone(),
                endpoint: Some(resource.clone()),
            };
            let profile = self.env.profile;
            values.insert(format!("{name}.jid"), profile.render(&address.bare()));
            values.insert(format!("{name}.full_jid"), profile.render(&address));
            values.insert(format!("{name}.domain"), address.domain.clone());
            values.insert(format!("{name}.user"), account.user.clone());
            values.insert(format!("{name}.resource"), resource.clone());
            self.actors.insert(
                name.clone(),
                Actor {
                    role,
                    account_key,
                    resource,
                    address,
                    session: None,
                    gone: None,
                },
            );
        }
        self.context = Context { values };
        // Faults apply to this run's accounts only: parallel runs see correct servers.
        let accounts: Vec<String> = self
            .accounts
            .values()
            .map(|(role, account)| format!("{}@{}", account.user, side(self.env, *role).domain))
            .collect();
        for role in [Role::Ref, Role::Sut] {
            let ids = side(self.env, role)
                .add_faults(&accounts)
                .await
                .map_err(StepFailure::new)?;
            if !ids.is_empty() {
                self.faults.push((role, ids));
            }
        }
        Ok(())
    }

    /// Closes the sessions, turns the run's faults off and deletes its accounts.
    ///
    /// # Errors
    /// What could not be undone (a control API that fails), as text.
    async fn teardown(&mut self) -> Result<(), String> {
        self.peers.close_all().await;
        let mut problems = Vec::new();
        if std::mem::take(&mut self.link_down)
            && let Err(error) = self.env.reference_control.set_s2s_silence(false).await
        {
            problems.push(format!(
                "bringing the reference server's link back: {error}"
            ));
        }
        for actor in self.actors.values_mut() {
            if let Some(session) = actor.session.take() {
                session.close().await;
            }
        }
        for (role, ids) in std::mem::take(&mut self.faults) {
            if let Err(error) = side(self.env, role).remove_faults(&ids).await {
                problems.push(error);
            }
        }
        for (role, account) in self.accounts.values() {
            if let Err(error) = side(self.env, *role).delete_account(&account.user).await {
                problems.push(format!("deleting account {}: {error}", account.user));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn render(&self, text: &str, index: Option<u32>) -> Result<String, StepFailure> {
        self.context.render(text, index).map_err(StepFailure::new)
    }

    /// `xml` rendered; with `pad_to`, its one [`PAD`] replaced by as much filler as makes it
    /// `pad_to` bytes (validation asks for exactly one `{pad}` then, and none otherwise).
    fn padded_xml(&self, xml: &str, pad_to: Option<u32>) -> Result<String, StepFailure> {
        let (Some(size), Some((head, tail))) = (pad_to, xml.split_once(PAD)) else {
            return self.render(xml, None);
        };
        let tail = self.render(tail, None)?;
        let room = (size as usize).checked_sub(tail.len()).ok_or_else(|| {
            StepFailure::new(format!(
                "pad_to: {size} bytes is less than the XML after {PAD}"
            ))
        })?;
        Ok(padded(self.render(head, None)?, room as u32)? + &tail)
    }

    /// An actor name (its bare address) or a templated address in the profile's syntax.
    fn address(&self, text: &str) -> Result<Address, StepFailure> {
        if let Some(actor) = self.actors.get(text) {
            return Ok(actor.address.bare());
        }
        let rendered = self.render(text, None)?;
        self.env
            .profile
            .parse_address(&rendered)
            .map_err(StepFailure::new)
    }

    fn addr_match(&self, text: &Option<String>) -> Result<Option<Address>, StepFailure> {
        text.as_ref().map(|t| self.address(t)).transpose()
    }

    /// The actor's XMPP session and the run's files (the files steps are XMPP's).
    fn xmpp_session_and_files(
        &mut self,
        actor: &str,
    ) -> Result<(&mut crate::driver::xmpp::Session, &mut super::files::Files), StepFailure> {
        let entry = self
            .actors
            .get_mut(actor)
            .ok_or_else(|| StepFailure::new(format!("{actor} is not an actor")))?;
        match &mut entry.session {
            Some(Session::Xmpp(session)) => Ok((session, &mut self.files)),
            Some(_) => Err(StepFailure::new(format!(
                "{actor}: file transfer (XEP-0363) is an XMPP step"
            ))),
            None => Err(StepFailure::new(format!("{actor} is not logged in"))),
        }
    }

    fn session(&mut self, actor: &str) -> Result<&mut Session, StepFailure> {
        let entry = self
            .actors
            .get_mut(actor)
            .ok_or_else(|| StepFailure::new(format!("{actor} is not an actor")))?;
        match (&mut entry.session, &entry.gone) {
            (Some(session), _) => Ok(session),
            (None, Some(gone)) => Err(StepFailure::new(format!(
                "{actor} is not logged in: {gone}"
            ))),
            (None, None) => Err(StepFailure::new(format!("{actor} is not logged in"))),
        }
    }

    /// Fails if an actor's stream has ended without a step asking for it; `noticed` names
    /// the step that noticed. A stream that ended with a stream error a step allowed is
    /// detached from its actor.
    fn check_sessions(&mut self, noticed: &str) -> StepResult {
        let mut lost: Vec<(u64, String)> = Vec::new();
        for actor in self.actors.values_mut() {
            let Some(session) = &actor.session else {
                continue;
            };
            let Some(ended) = session.ended() else {
                continue;
            };
            let described = session.describe_end(&ended);
            if ended.expected {
                actor.gone = Some(format!("{described}, as a step allowed"));
                actor.session = None;
            } else {
                lost.push((ended.t_ms, described));
            }
        }
        lost.sort();
        match lost.into_iter().next() {
            None => Ok(()),
            Some((_, described)) => Err(StepFailure::new(format!(
                "{described}, noticed during {noticed}"
            ))),
        }
    }

    /// A liveness round trip on every connected actor: the pings go out together, then each
    /// answer is awaited within one shared bound.
    async fn liveness_of_all(&mut self) -> StepResult {
        let deadline = tokio::time::Instant::now() + LIVENESS_BOUND;
        let mut pending = Vec::new();
        let mut failures = Vec::new();
        let mut fail = |session: &Session, failure: Liveness| match failure {
            // The stream ended with a stream error a step allowed.
            Liveness::Ended(ended) if ended.expected => {}
            Liveness::NoAnswer(_) => {
                failures.push(session.describe_liveness(&Liveness::NoAnswer(LIVENESS_BOUND)));
            }
            failure => failures.push(session.describe_liveness(&failure)),
        };
        for actor in self.actors.values_mut() {
            let Some(session) = actor.session.as_mut() else {
                continue;
            };
            match session.ping().await {
                Ok(id) => pending.push((session, id)),
                Err(failure) => fail(session, failure),
            }
        }
        for (session, id) in pending {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Err(failure) = session.pong(&id, remaining).await {
                fail(session, failure);
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StepFailure::new(failures.join("; ")))
        }
    }

    /// Whether `actor`'s session still answers, as a note for a failure report (empty when
    /// it answers).
    async fn stall_note(&mut self, actor: &str) -> String {
        const BOUND: Duration = Duration::from_secs(2);
        let Ok(session) = self.session(actor) else {
            return String::new();
        };
        match session.round_trip(BOUND).await {
            Ok(()) => String::new(),
            Err(failure) => format!("; {}", session.describe_liveness(&failure)),
        }
    }

    /// Reports a driver error of `actor`'s as a step failure.
    fn failed(actor: &str) -> impl Fn(crate::driver::DriverError) -> StepFailure + '_ {
        move |error| StepFailure::new(format!("{actor} could not send: {error}"))
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Login(name) => {
                let actor = &self.actors[name];
                if actor.session.is_some() {
                    return Err(StepFailure::new(format!("{name} is already logged in")));
                }
                let (_, account) = &self.accounts[&actor.account_key];
                let session = side(self.env, actor.role)
                    .login(
                        self.env.profile,
                        name,
                        (account, &actor.resource),
                        self.transcript.clone(),
                        REQUEST_BOUND,
                    )
                    .await
                    .map_err(|e| StepFailure::new(format!("{name} could not log in: {e}")))?;
                let address = session.address();
                self.context.values.insert(
                    format!("{name}.full_jid"),
                    self.env.profile.render(&address),
                );
                let actor = self.actors.get_mut(name).expect("actor exists");
                actor.address = address;
                actor.session = Some(session);
                Ok(())
            }
            Step::Logout(name) => {
                self.session(name)?;
                let session = self.actors.get_mut(name).and_then(|a| a.session.take());
                if let Some(session) = session {
                    session.logout().await;
                }
                Ok(())
            }
            Step::Disconnect(name) => {
                match self.actors.get_mut(name).and_then(|a| a.session.take()) {
                    Some(session) => {
                        session.abort();
                        Ok(())
                    }
                    None => Err(StepFailure::new(format!("{name} is not logged in"))),
                }
            }
            Step::Send(send) => {
                let to = self.address(&send.to)?;
                for i in 0..send.repeat.unwrap_or(1) {
                    let index = send.repeat.map(|_| i);
                    let text = |value: &Option<String>| -> Result<Option<String>, StepFailure> {
                        value.as_ref().map(|v| self.render(v, index)).transpose()
                    };
                    let mut body = text(&send.body)?;
                    if let Some(size) = send.pad_to {
                        body = Some(padded(body.unwrap_or_default(), size)?);
                    }
                    let message = OutMessage {
                        to: to.clone(),
                        kind: send.message_type.unwrap_or(MessageKind::Chat),
                        id: text(&send.id)?,
                        subject: text(&send.subject)?,
                        body,
                        thread: text(&send.thread)?,
                    };
                    self.session(&send.from)?
                        .send_message(&message)
                        .await
                        .map_err(Self::failed(&send.from))?;
                }
                Ok(())
            }
            Step::Subscribe(wanted) | Step::Renew(wanted) => {
                let to = self.address(&wanted.to)?;
                let lifetime = wanted.lifetime.map(|d| d.0);
                let session = self.session(&wanted.from)?;
                let sent = if matches!(step, Step::Renew(_)) {
                    session.renew(&to, lifetime).await
                } else {
                    session.subscribe(&to, lifetime).await
                };
                sent.map_err(Self::failed(&wanted.from))
            }
            Step::Approve(pair) => self.signal(pair, SubscriptionAction::Approve).await,
            Step::Deny(pair) => self.signal(pair, SubscriptionAction::Deny).await,
            Step::Cancel(pair) => self.signal(pair, SubscriptionAction::Cancel).await,
            Step::Unsubscribe(pair) => self.signal(pair, SubscriptionAction::Unsubscribe).await,
            Step::RosterAdd(add) => {
                let contact = self.address(&add.contact)?;
                let name = add
                    .name
                    .as_ref()
                    .map(|n| self.render(n, None))
                    .transpose()?;
                self.session(&add.actor)?
                    .roster_add(&contact, name.as_deref(), &add.groups)
                    .await
                    .map_err(|e| StepFailure::new(format!("{}: roster set: {e}", add.actor)))
            }
            Step::RosterRemove(remove) => {
                let contact = self.address(&remove.contact)?;
                self.session(&remove.actor)?
                    .roster_remove(&contact)
                    .await
                    .map_err(|e| StepFailure::new(format!("{}: roster set: {e}", remove.actor)))
            }
            Step::Presence(presence) => {
                let out = OutPresence {
                    to: presence
                        .to
                        .as_ref()
                        .map(|to| self.address(to))
                        .transpose()?,
                    availability: presence.availability.unwrap_or(Availability::Available),
                    show: presence.show,
                    status: presence
                        .status
                        .as_ref()
                        .map(|status| self.render(status, None))
                        .transpose()?,
                    priority: presence.priority,
                    lease: presence.lease.map(|d| d.0),
                };
                self.session(&presence.actor)?
                    .publish(&out)
                    .await
                    .map_err(Self::failed(&presence.actor))?;
                if presence.to.is_none() {
                    self.sync(&presence.actor).await?;
                }
                Ok(())
            }
            Step::Expect(expect) => self.expect(expect).await,
            Step::ExpectNone(none) => self.expect_none(none).await,
            Step::Federation(fed) => self.federation(fed).await,
            Step::Raw(raw) => {
                let xml = self.render(&raw.xml, None)?;
                let session = self.session(&raw.actor)?;
                if let Some(allowed) = &raw.allow_stream_error {
                    let allowed: Vec<String> =
                        allowed.values().into_iter().map(str::to_string).collect();
                    session.allow_stream_errors(&allowed);
                }
                session
                    .send_raw(&xml)
                    .await
                    .map_err(|e| StepFailure::new(format!("{} could not send: {e}", raw.actor)))
            }
            Step::RawHttp(raw) => {
                let request = crlf_head(&self.render(&raw.request, None)?);
                self.session(&raw.actor)?
                    .send_raw(&request)
                    .await
                    .map_err(|e| StepFailure::new(format!("{} could not send: {e}", raw.actor)))
            }
            Step::RawSip(raw) => {
                let request = crlf_head(&self.render(&raw.request, None)?);
                self.session(&raw.actor)?
                    .send_raw_sip(&request, raw.authenticate)
                    .await
                    .map_err(|e| StepFailure::new(format!("{} could not send: {e}", raw.actor)))
            }
            Step::ExpectHttp(expect) => {
                let headers = expect
                    .headers
                    .iter()
                    .map(|(name, value)| Ok((name.to_ascii_lowercase(), self.render(value, None)?)))
                    .collect::<Result<Vec<_>, StepFailure>>()?;
                let body_contains = expect
                    .body_contains
                    .iter()
                    .map(|text| self.render(text, None))
                    .collect::<Result<Vec<_>, _>>()?;
                let pattern = Pattern::Http {
                    status: expect.status,
                    headers,
                    body_contains,
                };
                let within = expect.within.map_or(DEFAULT_WITHIN, |d| d.0);
                self.wait(&expect.actor, &Matcher::Pattern(pattern), within)
                    .await
                    .map(|_| ())
            }
            Step::ExpectSip(expect) => {
                let headers = expect
                    .headers
                    .iter()
                    .map(|(name, value)| Ok((name.clone(), self.render(value, None)?)))
                    .collect::<Result<Vec<_>, StepFailure>>()?;
                let reason = expect
                    .reason
                    .as_ref()
                    .map(|reason| self.render(reason, None))
                    .transpose()?;
                let wanted = match (&expect.status, &expect.method) {
                    (Some(status), _) => SipWanted::Response {
                        status: *status,
                        reason,
                    },
                    // Validation asks for exactly one of the two.
                    (None, method) => SipWanted::Request {
                        method: method.clone().unwrap_or_default(),
                    },
                };
                let pattern = Pattern::Sip { wanted, headers };
                let within = expect.within.map_or(DEFAULT_WITHIN, |d| d.0);
                self.wait(&expect.actor, &Matcher::Pattern(pattern), within)
                    .await
                    .map(|_| ())
            }
            Step::PeerConnect(connect) => {
                let from = match &connect.from {
                    Some(from) => self.render(from, None)?,
                    None => self.env.reference.domain.clone(),
                };
                let to = match &connect.to {
                    Some(to) => self.render(to, None)?,
                    None => self.env.sut.domain.clone(),
                };
                let (env, transcript) = (self.env, self.transcript.clone());
                self.peers
                    .connect(env, connect, from, to, &transcript)
                    .await
                    .map_err(StepFailure::from)
            }
            Step::PeerSend(send) => {
                let xml = self.padded_xml(&send.xml, send.pad_to)?;
                let transcript = self.transcript.clone();
                let trickle = send.trickle.map(|t| (t.bytes as usize, t.every.0));
                self.peers
                    .send(&send.peer, &xml, trickle, &transcript)
                    .await
                    .map_err(StepFailure::from)
            }
            Step::PeerCut(cut) => {
                let transcript = self.transcript.clone();
                self.peers
                    .cut(&cut.peer, &transcript)
                    .map_err(StepFailure::from)
            }
            Step::ReferenceLink(action) => {
                let down = *action == crate::scenario::model::LinkAction::Down;
                self.env
                    .reference_control
                    .set_s2s_silence(down)
                    .await
                    .map_err(|error| StepFailure::new(format!("reference_link: {error}")))?;
                self.link_down = down;
                let delay = self.env.sut.s2s_retry_delay;
                let note = if down {
                    "the reference server cut its links and answers no server".to_string()
                } else {
                    format!(
                        "the reference server answers again; waiting the target's s2s_retry_delay ({delay:?})"
                    )
                };
                self.transcript.record("reference", Flow::Note, note);
                if !down {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
            Step::PeerExpect(expect) => {
                use super::peer::PeerWanted;
                let wanted = match (&expect.dialback, &expect.stream_error, &expect.pattern) {
                    _ if let Some(verdict) = expect.sasl => PeerWanted::Sasl(verdict),
                    (Some(verdict), _, _) => PeerWanted::Dialback(*verdict),
                    (None, Some(conditions), _) => PeerWanted::StreamError(
                        conditions
                            .values()
                            .into_iter()
                            .map(str::to_string)
                            .collect(),
                    ),
                    (None, None, Some(pattern)) => {
                        let text = self.render(pattern, None)?;
                        let mut elements =
                            crate::driver::xmpp::parse_fragment_in(&text, imfed_xmpp::ns::SERVER)
                                .map_err(StepFailure::new)?;
                        if elements.len() != 1 {
                            return Err(StepFailure::new("match: the pattern must be one element"));
                        }
                        PeerWanted::Stanza(elements.remove(0))
                    }
                    // Validation asks for exactly one.
                    (None, None, None) => PeerWanted::Closed,
                };
                let within = match (expect.within, &wanted) {
                    (Some(within), _) => within.0,
                    // A refusal may be silence until the target gives up on a peer that
                    // has not authenticated, and the end of the connection then.
                    (None, PeerWanted::Closed | PeerWanted::Dialback(PeerVerdict::Refused)) => {
                        self.env.sut.s2s_auth_timeout + super::peer::CLOSE_SLACK
                    }
                    (None, _) => DEFAULT_WITHIN,
                };
                let transcript = self.transcript.clone();
                self.peers
                    .expect(&expect.peer, &wanted, within, &transcript)
                    .await
                    .map_err(StepFailure::from)
            }
            Step::SendFile(send) => {
                let to = self.address(&send.to)?;
                let name = self.render(&send.name, None)?;
                let (session, files) = self.xmpp_session_and_files(&send.from)?;
                files
                    .send(session, &to, &name, &send.media_type, send.size)
                    .await
                    .map_err(|e| {
                        StepFailure::new(format!("{} could not send {name}: {e}", send.from))
                    })
            }
            Step::ExpectFile(expect) => {
                let from = self.address(&expect.from)?;
                let name = self.render(&expect.name, None)?;
                let within = expect.within.map_or(DEFAULT_WITHIN, |d| d.0);
                let (session, files) = self.xmpp_session_and_files(&expect.actor)?;
                files
                    .receive(session, &from, &name, within)
                    .await
                    .map_err(|e| {
                        StepFailure::new(format!("{} did not get {name}: {e}", expect.actor))
                    })
            }
            Step::UploadProbe(probe) => {
                let name = probe
                    .name
                    .as_ref()
                    .map(|name| self.render(name, None))
                    .transpose()?;
                let (session, files) = self.xmpp_session_and_files(&probe.actor)?;
                files
                    .probe(session, probe.rule, name.as_deref())
                    .await
                    .map_err(StepFailure::new)
            }
            Step::ExpectXml(expect) => {
                let text = self.render(&expect.pattern, None)?;
                let pattern = self
                    .env
                    .profile
                    .parse_pattern(&text)
                    .map_err(StepFailure::new)?;
                let within = expect.within.map_or(DEFAULT_WITHIN, |d| d.0);
                self.wait(&expect.actor, &Matcher::Pattern(pattern), within)
                    .await
                    .map(|_| ())
            }
        }
    }

    /// A ping round trip to the actor's own server (XEP-0199; an error reply serves as well):
    /// when it returns, the server has processed what the actor sent before it.
    async fn sync(&mut self, actor: &str) -> StepResult {
        let session = self.session(actor)?;
        session
            .round_trip(LIVENESS_BOUND)
            .await
            .map_err(|failure| StepFailure::new(session.describe_liveness(&failure)))
    }

    async fn signal(
        &mut self,
        pair: &crate::scenario::model::Pair,
        action: SubscriptionAction,
    ) -> StepResult {
        let to = self.address(&pair.to)?;
        self.session(&pair.from)?
            .subscription(action, &to)
            .await
            .map_err(Self::failed(&pair.from))
    }

    async fn wait(
        &mut self,
        actor: &str,
        matcher: &Matcher,
        within: Duration,
    ) -> Result<crate::driver::event::Received, StepFailure> {
        let session = self.session(actor)?;
        match session.wait_for(matcher, within).await {
            Ok(stanza) => Ok(stanza),
            Err(error) => Err(self.wait_failure(actor, matcher, within, error).await),
        }
    }

    /// The failure of a wait for `matcher`: the stream's end if it ended, else what did not
    /// arrive, with a note when the session no longer answers.
    async fn wait_failure(
        &mut self,
        actor: &str,
        matcher: &Matcher,
        within: Duration,
        error: WaitError,
    ) -> StepFailure {
        let message = match &error.ended {
            Some(ended) => match self.session(actor) {
                Ok(session) => format!(
                    "{}, while waiting for {}",
                    session.describe_end(ended),
                    matcher.describe()
                ),
                Err(failure) => failure.message,
            },
            None if error.cut_short => format!(
                "{actor}'s wait for {} was cut short by another actor's lost stream",
                matcher.describe()
            ),
            None => format!(
                "{actor} received no {} within {}{}",
                matcher.describe(),
                humantime(within),
                self.stall_note(actor).await
            ),
        };
        StepFailure {
            message,
            awaited: Some(matcher.describe()),
            arrived: tail_of(error.arrived),
        }
    }

    fn matcher(
        &self,
        message: Option<&MessageMatch>,
        presence: Option<&PresenceMatch>,
        signals: [(&Option<FromMatch>, SubscriptionSignal); 4],
        error: Option<&ErrorMatch>,
        index: Option<u32>,
    ) -> Result<Option<Matcher>, StepFailure> {
        let text = |value: &Option<String>| -> Result<Option<String>, StepFailure> {
            value.as_ref().map(|v| self.render(v, index)).transpose()
        };
        if let Some(m) = message {
            return Ok(Some(Matcher::Message {
                from: self.addr_match(&m.from)?,
                kind: m.message_type,
                body: text(&m.body)?,
                thread: text(&m.thread)?,
                subject: text(&m.subject)?,
            }));
        }
        if let Some(p) = presence {
            return Ok(Some(Matcher::Presence {
                from: self.addr_match(&p.from)?,
                availability: p.availability,
                show: p.show,
                status: text(&p.status)?,
                priority: p.priority,
            }));
        }
        for (wanted, signal) in signals {
            if let Some(wanted) = wanted {
                return Ok(Some(Matcher::Signal {
                    signal,
                    from: self.addr_match(&wanted.from)?,
                }));
            }
        }
        if let Some(e) = error {
            return Ok(Some(Matcher::Error {
                from: self.addr_match(&e.from)?,
                about: e.stanza,
                classes: e.class.as_ref().map(|c| c.classes()).unwrap_or_default(),
                // A condition refines the class in one profile's terms.
                conditions: e
                    .condition
                    .as_ref()
                    .filter(|_| self.conditions_apply)
                    .map(|c| c.values().into_iter().map(str::to_string).collect())
                    .unwrap_or_default(),
            }));
        }
        Ok(None)
    }

    async fn expect(&mut self, expect: &Expect) -> StepResult {
        let within = expect.within.map_or(DEFAULT_WITHIN, |d| d.0);
        if let Some(state) = &expect.subscription_state {
            return self
                .subscription_state(
                    &expect.actor,
                    &state.contact,
                    &state.state.states(),
                    state.pending_out,
                    within,
                )
                .await;
        }
        let signals = [
            (&expect.subscription_request, SubscriptionSignal::Request),
            (&expect.subscribed, SubscriptionSignal::Approved),
            (&expect.unsubscribed, SubscriptionSignal::Refused),
            (&expect.unsubscribe, SubscriptionSignal::Withdrawn),
        ];
        let Some(count) = expect.repeat else {
            let matcher = self
                .matcher(
                    expect.message.as_ref(),
                    expect.presence.as_ref(),
                    signals,
                    expect.error.as_ref(),
                    None,
                )?
                .ok_or_else(|| StepFailure::new("nothing to expect"))?;
            return self.wait(&expect.actor, &matcher, within).await.map(|_| ());
        };
        // In order: each next stanza of the kind (same sender and type, any body) must be the
        // i-th one. The bound covers the whole sequence.
        let deadline = tokio::time::Instant::now() + within;
        let kind = self
            .matcher(
                expect
                    .message
                    .as_ref()
                    .map(|m| MessageMatch {
                        body: None,
                        thread: None,
                        subject: None,
                        ..m.clone()
                    })
                    .as_ref(),
                expect
                    .presence
                    .as_ref()
                    .map(|p| PresenceMatch {
                        status: None,
                        ..p.clone()
                    })
                    .as_ref(),
                signals,
                None,
                None,
            )?
            .ok_or_else(|| StepFailure::new("nothing to expect"))?;
        for i in 0..count {
            let matcher = self
                .matcher(
                    expect.message.as_ref(),
                    expect.presence.as_ref(),
                    signals,
                    None,
                    Some(i),
                )?
                .ok_or_else(|| StepFailure::new("nothing to expect"))?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let session = self.session(&expect.actor)?;
            let next = session.wait_for(&kind, remaining).await;
            let next = match next {
                Err(error) if error.ended.is_some() || error.cut_short => {
                    return Err(self
                        .wait_failure(&expect.actor, &matcher, within, error)
                        .await);
                }
                next => next,
            };
            match next {
                Ok(stanza) if matcher.matches(&stanza) => {}
                Ok(stanza) => {
                    return Err(StepFailure {
                        message: format!(
                            "{} received stanza {} of {count} out of order or altered",
                            expect.actor,
                            i + 1
                        ),
                        awaited: Some(matcher.describe()),
                        arrived: vec![stanza.text],
                    });
                }
                Err(error) => {
                    return Err(StepFailure {
                        message: format!(
                            "{} received only {i} of {count} within {}{}",
                            expect.actor,
                            humantime(within),
                            self.stall_note(&expect.actor).await
                        ),
                        awaited: Some(matcher.describe()),
                        arrived: tail_of(error.arrived),
                    });
                }
            }
        }
        Ok(())
    }

    async fn expect_none(&mut self, none: &ExpectNone) -> StepResult {
        let signals = [
            (&none.subscription_request, SubscriptionSignal::Request),
            (&none.subscribed, SubscriptionSignal::Approved),
            (&none.unsubscribed, SubscriptionSignal::Refused),
            (&none.unsubscribe, SubscriptionSignal::Withdrawn),
        ];
        let matcher = if none.any {
            Matcher::Any
        } else {
            self.matcher(
                none.message.as_ref(),
                none.presence.as_ref(),
                signals,
                none.error.as_ref(),
                None,
            )?
            .ok_or_else(|| StepFailure::new("nothing to watch for"))?
        };
        let session = self.session(&none.actor)?;
        let mut seen = match session.watch(&matcher, none.duration.0).await {
            Ok(seen) => seen,
            Err(ended) => {
                return Err(StepFailure::new(format!(
                    "{}, during a window in which no {} was allowed: silence on an ended \
                     stream proves nothing",
                    session.describe_end(&ended),
                    matcher.describe()
                )));
            }
        };
        if seen.is_none() {
            // The window ends with a round trip: a stalled session cannot pass by silence,
            // and what the server sent before its answer counts as within the window.
            if let Err(failure) = session.round_trip(LIVENESS_BOUND).await {
                return Err(StepFailure::new(format!(
                    "{}, at the end of a window in which no {} was allowed",
                    session.describe_liveness(&failure),
                    matcher.describe()
                )));
            }
            seen = session.take_matching(&matcher);
        }
        match seen {
            None => Ok(()),
            Some(stanza) => Err(StepFailure {
                message: format!(
                    "{} received {} although none was allowed for {}",
                    none.actor,
                    matcher.describe(),
                    none.duration
                ),
                awaited: Some(format!("no {} for {}", matcher.describe(), none.duration)),
                arrived: vec![stanza.text],
            }),
        }
    }

    /// Checks what `actor`'s server records about `contact` (RFC 6121 §2.1.2.5 states): a
    /// query, then the server's change notifications (roster pushes) until `within`.
    async fn subscription_state(
        &mut self,
        actor: &str,
        contact: &str,
        wanted: &[SubscriptionState],
        pending_out: Option<bool>,
        within: Duration,
    ) -> StepResult {
        let contact = self.address(contact)?.bare();
        let matches = |record: Option<&SubscriptionRecord>| -> bool {
            wanted.iter().any(|want| match (want, record) {
                (SubscriptionState::Absent, None) => true,
                (SubscriptionState::Absent, Some(_)) | (_, None) => false,
                (state, Some(record)) => {
                    record.state == *state && pending_out.is_none_or(|p| record.pending_out == p)
                }
            })
        };
        let session = self.session(actor)?;
        let mut last = session
            .subscription_record(&contact)
            .await
            .map_err(|e| StepFailure::new(format!("{actor}: roster query: {e}")))?;
        if matches(last.as_ref()) {
            return Ok(());
        }
        // Not yet: the server notifies the changes (RFC 6121 §2.1.6).
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match session.next_record_change(&contact, remaining).await {
                Err(WaitError {
                    ended: Some(ended), ..
                }) => {
                    return Err(StepFailure::new(format!(
                        "{}, while waiting for {actor}'s roster to change",
                        session.describe_end(&ended)
                    )));
                }
                Err(WaitError {
                    cut_short: true, ..
                }) => {
                    return Err(StepFailure::new(format!(
                        "{actor}'s wait for a roster change was cut short by another actor's \
                         lost stream"
                    )));
                }
                Ok(record) => {
                    last = record;
                    if matches(last.as_ref()) {
                        return Ok(());
                    }
                }
                Err(_) => {
                    let contact = self.env.profile.render(&contact);
                    let choices: Vec<String> = wanted
                        .iter()
                        .map(|want| match want {
                            SubscriptionState::Absent => "no roster item".to_string(),
                            state => format!(
                                "roster item {contact} with subscription '{}'{}",
                                state.as_str(),
                                match pending_out {
                                    Some(true) => " and a pending request (ask='subscribe')",
                                    Some(false) => " and no pending request",
                                    None => "",
                                }
                            ),
                        })
                        .collect();
                    let wanted = choices.join(" or ");
                    return Err(StepFailure {
                        message: format!(
                            "{actor}'s roster did not reach {wanted} within {}",
                            humantime(within)
                        ),
                        awaited: Some(wanted),
                        arrived: vec![last.map_or("no roster item".to_string(), |r| r.text)],
                    });
                }
            }
        }
    }

    /// Checks what crossed the federation link, on the wire (see [`super::wire`]): stanzas
    /// the reference server sent (`from` is on its side) or received (`from` is on the
    /// implementation's side), in the `jabber:server` namespace as written.
    async fn federation(&mut self, fed: &FederationExpect) -> StepResult {
        let from = self
            .actors
            .get(&fed.from)
            .map(|a| (a.address.bare(), a.role))
            .ok_or_else(|| StepFailure::new(format!("{} is not an actor", fed.from)))?;
        let to = self.address(&fed.to)?.bare();
        let profile = self.env.profile;
        let dir = if from.1 == Role::Ref {
            Dir::Out
        } else {
            Dir::In
        };
        let body = fed
            .body
            .as_ref()
            .map(|b| self.render(b, None))
            .transpose()?;
        let within = fed.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let wanted = fed.count.unwrap_or(1) as usize;
        let describe = format!(
            "{} {} from {} to {}{}{} {} the federation link",
            if fed.exactly {
                format!("exactly {wanted}")
            } else {
                format!("at least {wanted}")
            },
            fed.stanza.as_str(),
            profile.render(&from.0),
            profile.render(&to),
            fed.stanza_type
                .as_ref()
                .map(|t| format!(" type '{t}'"))
                .unwrap_or_default(),
            body.as_ref()
                .map(|b| format!(" body '{}'", truncate(b, 40)))
                .unwrap_or_default(),
            match dir {
                Dir::Out => "sent by the reference server over",
                Dir::In => "received by the reference server over",
            },
        );
        // Everything but the namespace, so that a stanza in the wrong one is reported.
        let like = |wire: &WireElement| -> bool {
            wire.dir == dir
                && wire.is(fed.stanza)
                && wire.sender() == Some(from.0.clone())
                && wire.recipient() == Some(to.clone())
                && fed.stanza_type.as_deref().is_none_or(|t| wire.has_type(t))
                && body
                    .as_ref()
                    .is_none_or(|b| wire.body().as_ref() == Some(b))
        };
        let exact = |wire: &WireElement| like(wire) && wire.in_content_namespace();
        let blind = |error: String| {
            StepFailure::new(format!(
                "expected {describe}, but the link cannot be observed: {error}"
            ))
        };
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                // A conclusion about what did not cross needs a view synced after the
                // deadline.
                self.env.wire.sync(Duration::ZERO).await.map_err(blind)?;
                break;
            }
            let wait = remaining.min(Duration::from_secs(1));
            self.env.wire.sync(wait).await.map_err(blind)?;
            let found = self.env.wire.elements(self.started_ms, exact).len();
            if found >= wanted && !fed.exactly {
                return Ok(());
            }
            if fed.exactly && found > wanted {
                break;
            }
        }
        let found = self.env.wire.elements(self.started_ms, exact).len();
        let passed = if fed.exactly {
            found == wanted
        } else {
            found >= wanted
        };
        if passed {
            // A count that must not grow is a negative window: its sender must still be
            // live, or the count proves nothing.
            if fed.exactly
                && let Some(session) = self
                    .actors
                    .get_mut(&fed.from)
                    .and_then(|a| a.session.as_mut())
                && let Err(failure) = session.round_trip(LIVENESS_BOUND).await
            {
                return Err(StepFailure::new(format!(
                    "{}, at the end of the window for {describe}",
                    session.describe_liveness(&failure)
                )));
            }
            return Ok(());
        }
        let misplaced = self
            .env
            .wire
            .elements(self.started_ms, |wire| like(wire) && !exact(wire));
        let note = match misplaced.first() {
            None => String::new(),
            Some(wire) => format!(
                " ({} more in namespace '{}' instead of '{}', RFC 6120 §4.8.3)",
                misplaced.len(),
                wire.namespace(),
                WireElement::CONTENT_NAMESPACE
            ),
        };
        let own: Vec<Address> = self.actors.values().map(|a| a.address.bare()).collect();
        let seen = self
            .env
            .wire
            .elements(self.started_ms, |wire| wire.involves(&own));
        Err(StepFailure {
            message: format!("expected {describe}; found {found}{note}"),
            awaited: Some(describe),
            arrived: tail_of(
                seen.iter()
                    .map(|wire| format!("{} {}", wire.dir.as_str(), wire.raw))
                    .collect(),
            ),
        })
    }
}

/// The last few arrivals, for failure reports.
fn tail_of(mut arrived: Vec<String>) -> Vec<String> {
    const KEEP: usize = 8;
    if arrived.len() > KEEP {
        let skipped = arrived.len() - KEEP;
        arrived.drain(..skipped);
        arrived.insert(0, format!("({skipped} earlier stanzas not shown)"));
    }
    arrived
}

fn humantime(duration: Duration) -> String {
    crate::scenario::model::Dur(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::{crlf_head, padded};

    #[test]
    fn pad_to_pads_with_dots_to_the_byte_and_refuses_a_longer_body() {
        let Ok(body) = padded("grüß ".into(), 12) else {
            panic!("the body is short enough")
        };
        assert_eq!(body, "grüß .....");
        assert_eq!(body.len(), 12);
        assert_eq!(padded("exact".into(), 5).ok().as_deref(), Some("exact"));
        assert!(padded("too long".into(), 3).is_err());
    }

    #[test]
    fn an_http_head_written_with_lf_is_sent_with_crlf_and_the_body_as_written() {
        assert_eq!(
            crlf_head("GET / HTTP/1.1\nHost: a.test\n\n<x>\n</x>"),
            "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n<x>\n</x>"
        );
        assert_eq!(
            crlf_head("GET / HTTP/1.1\r\nHost: a.test\n"),
            "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
        );
    }
}
