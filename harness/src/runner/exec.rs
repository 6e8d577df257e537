//! Running one scenario in one direction: accounts, actors, steps, and what crossed the
//! federation link, into a [`ScenarioResult`].

use std::collections::BTreeMap;
use std::time::Duration;

use imfed_reports::{Failure, LinkLine, Outcome, ScenarioResult};
use imfed_xmpp::{Element, Jid, ns};
use tokio_util::sync::CancellationToken;

use super::env::{Account, Environment, Side};
use crate::driver::xmpp::{Session, Transcript, random_token};
use crate::expect::{AddrMatch, Matcher, parse_fragment, truncate};
use crate::scenario::load::LoadedScenario;
use crate::scenario::model::{
    ActorDef, Availability, ErrorMatch, Expect, ExpectNone, FederationExpect, FromMatch,
    MessageMatch, PresenceMatch, Role, RosterState, Step,
};
use crate::scenario::template::Context;

/// Default bound of an `expect`.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// Default bound of a whole scenario.
pub const DEFAULT_SCENARIO_BOUND: Duration = Duration::from_secs(60);
/// Bound on logging in, roster queries and other requests.
const REQUEST_BOUND: Duration = Duration::from_secs(10);

/// One actor at run time.
struct Actor {
    role: Role,
    account_key: String,
    resource: String,
    jid: Jid,
    session: Option<Session>,
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
    /// The federation log's last sequence number when the scenario began.
    log_start: u64,
}

fn side(env: &Environment, role: Role) -> &Side {
    match role {
        Role::Ref => &env.reference,
        Role::Sut => &env.sut,
    }
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
        Step::ExpectXml(e) => format!("expect_xml {}", e.actor),
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
    let fed_start = latest_log_seq(env).await;
    let mut run = Run {
        env,
        swapped,
        actors: BTreeMap::new(),
        accounts: BTreeMap::new(),
        context: Context::default(),
        transcript: transcript.clone(),
        log_start: fed_start,
    };
    let bound = scenario.timeout.map_or(DEFAULT_SCENARIO_BOUND, |d| d.0);
    let setup = run.setup(scenario, run_id).await;
    let failure: Option<Failure> = if let Err(error) = setup {
        Some(Failure {
            step: 0,
            step_label: "set up accounts".into(),
            message: error.message,
            awaited: None,
            arrived: Vec::new(),
        })
    } else {
        let mut current = 0usize;
        let steps = async {
            for (index, step) in scenario.steps.iter().enumerate() {
                current = index;
                if let Err(error) = run.step(&step.value).await {
                    return Err((index, error));
                }
            }
            Ok(())
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(bound, steps) => Some(outcome),
            () = cancel.cancelled() => None,
        };
        match outcome {
            Some(Ok(Ok(()))) => None,
            Some(Ok(Err((index, error)))) => Some(Failure {
                step: index + 1,
                step_label: step_label(&scenario.steps[index].value),
                message: error.message,
                awaited: error.awaited,
                arrived: error.arrived,
            }),
            Some(Err(_)) => Some(Failure {
                step: current + 1,
                step_label: step_label(&scenario.steps[current].value),
                message: format!("the scenario exceeded its bound of {bound:?} (watchdog)"),
                awaited: None,
                arrived: Vec::new(),
            }),
            None => Some(Failure {
                step: current + 1,
                step_label: step_label(&scenario.steps[current].value),
                message: "interrupted".into(),
                awaited: None,
                arrived: Vec::new(),
            }),
        }
    };
    run.teardown().await;
    let own: Vec<Jid> = run.actors.values().map(|a| a.jid.bare()).collect();
    let federation = federation_lines(env, fed_start, transcript.started(), &own).await;
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
        attempts: 1,
        duration_ms: transcript.started().elapsed().as_millis() as u64,
        transcript: transcript.lines(),
        federation,
    }
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

/// One request to the reference server's federation log (control API `GET /log`); an
/// unreachable control API reads as an empty log.
async fn log_query(env: &Environment, query: &str) -> serde_json::Value {
    let url = format!("{}/log?{query}", env.control);
    match reqwest::Client::new().get(url).send().await {
        Ok(response) => response.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// The log's last sequence number (asking for entries after the largest one returns none,
/// and the position).
async fn latest_log_seq(env: &Environment) -> u64 {
    log_query(env, &format!("since={}", u64::MAX)).await["latest"]
        .as_u64()
        .unwrap_or(0)
}

/// Stanzas on the link with the implementation after `since`, waiting up to `wait_ms` for
/// the first.
async fn fetch_log(env: &Environment, since: u64, wait_ms: u64) -> Vec<serde_json::Value> {
    let query = format!(
        "since={since}&remote={}&kind=stanza&wait_ms={wait_ms}",
        env.sut.domain
    );
    log_query(env, &query).await["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// What crossed the link during the scenario and involves its actors (scenarios run in
/// parallel share the link).
async fn federation_lines(
    env: &Environment,
    since: u64,
    started: std::time::Instant,
    actors: &[Jid],
) -> Vec<LinkLine> {
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .saturating_sub(started.elapsed().as_millis() as u64);
    let entries = fetch_log(env, since, 0).await;
    let involves = |xml: &str| -> bool {
        let Ok(mut elements) = parse_fragment(xml) else {
            return false;
        };
        let Some(stanza) = elements.pop() else {
            return false;
        };
        ["from", "to"].iter().any(|attr| {
            stanza
                .attr(attr)
                .and_then(|j| Jid::parse(j).ok())
                .is_some_and(|j| actors.contains(&j.bare()))
        })
    };
    entries
        .iter()
        .filter(|entry| entry["xml"].as_str().is_some_and(involves))
        .map(|entry| LinkLine {
            t_ms: entry["ts_ms"]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(started_ms),
            direction: entry["direction"].as_str().unwrap_or("?").to_string(),
            local: entry["local"].as_str().unwrap_or("").to_string(),
            remote: entry["remote"].as_str().unwrap_or("").to_string(),
            xml: entry["xml"].as_str().unwrap_or("").to_string(),
        })
        .collect()
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
                "unknown.domain".to_string(),
                super::env::UNKNOWN_DOMAIN.to_string(),
            ),
            (
                "blackhole.domain".to_string(),
                super::env::BLACKHOLE_DOMAIN.to_string(),
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
            let jid = Jid::new(
                Some(&account.user),
                &side(self.env, role).domain,
                Some(&resource),
            )
            .map_err(|e| StepFailure::new(format!("actor {name}: {e}")))?;
            values.insert(format!("{name}.jid"), jid.bare().to_string());
            values.insert(format!("{name}.full_jid"), jid.to_string());
            values.insert(format!("{name}.domain"), jid.domain().to_string());
            values.insert(format!("{name}.user"), account.user.clone());
            values.insert(format!("{name}.resource"), resource.clone());
            self.actors.insert(
                name.clone(),
                Actor {
                    role,
                    account_key,
                    resource,
                    jid,
                    session: None,
                },
            );
        }
        self.context = Context { values };
        Ok(())
    }

    async fn teardown(&mut self) {
        for actor in self.actors.values_mut() {
            if let Some(session) = actor.session.take() {
                session.close().await;
            }
        }
        for (role, account) in self.accounts.values() {
            side(self.env, *role).delete_account(&account.user).await;
        }
    }

    fn render(&self, text: &str, index: Option<u32>) -> Result<String, StepFailure> {
        self.context.render(text, index).map_err(StepFailure::new)
    }

    /// An actor name or templated address, as a JID string.
    fn address(&self, text: &str) -> Result<String, StepFailure> {
        if let Some(actor) = self.actors.get(text) {
            return Ok(actor.jid.bare().to_string());
        }
        self.render(text, None)
    }

    fn addr_match(&self, text: &Option<String>) -> Result<Option<AddrMatch>, StepFailure> {
        text.as_ref()
            .map(|t| {
                self.address(t)
                    .and_then(|a| AddrMatch::parse(&a).map_err(StepFailure::new))
            })
            .transpose()
    }

    fn session(&mut self, actor: &str) -> Result<&mut Session, StepFailure> {
        self.actors
            .get_mut(actor)
            .and_then(|a| a.session.as_mut())
            .ok_or_else(|| StepFailure::new(format!("{actor} is not logged in")))
    }

    async fn send(&mut self, actor: &str, stanza: Element) -> StepResult {
        self.session(actor)?
            .send(&stanza)
            .await
            .map_err(|e| StepFailure::new(format!("{actor} could not send: {e}")))
    }

    async fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Login(name) => {
                let actor = &self.actors[name];
                if actor.session.is_some() {
                    return Err(StepFailure::new(format!("{name} is already logged in")));
                }
                let (_, account) = &self.accounts[&actor.account_key];
                let side = side(self.env, actor.role);
                let credentials = side
                    .credentials(account, &actor.resource)
                    .map_err(StepFailure::new)?;
                let mut session = side
                    .login(name, &credentials, self.transcript.clone(), REQUEST_BOUND)
                    .await
                    .map_err(|e| StepFailure::new(format!("{name} could not log in: {e}")))?;
                // Ask for the roster: an "interested resource" gets roster pushes (RFC 6121 §2.1.6).
                let reply = roster_query(&mut session, name).await?;
                if reply.attr("type") != Some("result") {
                    return Err(StepFailure::new(format!(
                        "{name}: roster query failed: {}",
                        reply.to_xml(ns::CLIENT)
                    )));
                }
                let actor = self.actors.get_mut(name).expect("actor exists");
                actor.jid = session.jid.clone();
                self.context
                    .values
                    .insert(format!("{name}.full_jid"), session.jid.to_string());
                actor.session = Some(session);
                Ok(())
            }
            Step::Logout(name) => {
                self.send(
                    name,
                    Element::new("presence", ns::CLIENT).with_attr("type", "unavailable"),
                )
                .await?;
                let session = self.actors.get_mut(name).and_then(|a| a.session.take());
                if let Some(session) = session {
                    session.close().await;
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
                    let mut message = Element::new("message", ns::CLIENT)
                        .with_attr("to", to.clone())
                        .with_attr("type", send.message_type.map_or("chat", |t| t.as_str()));
                    let id = match &send.id {
                        Some(id) => self.render(id, index)?,
                        None => self.session(&send.from)?.next_id(),
                    };
                    message.set_attr("id", id);
                    for (name, value) in [
                        ("subject", &send.subject),
                        ("body", &send.body),
                        ("thread", &send.thread),
                    ] {
                        if let Some(value) = value {
                            let text = self.render(value, index)?;
                            message =
                                message.with_child(Element::new(name, ns::CLIENT).with_text(text));
                        }
                    }
                    self.send(&send.from, message).await?;
                }
                Ok(())
            }
            Step::Subscribe(pair) => self.signal(&pair.from, &pair.to, "subscribe").await,
            Step::Approve(pair) => self.signal(&pair.from, &pair.to, "subscribed").await,
            Step::Deny(pair) | Step::Cancel(pair) => {
                self.signal(&pair.from, &pair.to, "unsubscribed").await
            }
            Step::Unsubscribe(pair) => self.signal(&pair.from, &pair.to, "unsubscribe").await,
            Step::RosterAdd(add) => {
                let contact = self.address(&add.contact)?;
                let mut item = Element::new("item", ns::ROSTER).with_attr("jid", contact);
                if let Some(name) = &add.name {
                    item.set_attr("name", self.render(name, None)?);
                }
                for group in &add.groups {
                    item =
                        item.with_child(Element::new("group", ns::ROSTER).with_text(group.clone()));
                }
                self.roster_set(&add.actor, item).await
            }
            Step::RosterRemove(remove) => {
                let contact = self.address(&remove.contact)?;
                let item = Element::new("item", ns::ROSTER)
                    .with_attr("jid", contact)
                    .with_attr("subscription", "remove");
                self.roster_set(&remove.actor, item).await
            }
            Step::Presence(presence) => {
                let mut stanza = Element::new("presence", ns::CLIENT);
                if let Some(to) = &presence.to {
                    stanza.set_attr("to", self.address(to)?);
                }
                if presence.availability == Some(Availability::Unavailable) {
                    stanza.set_attr("type", "unavailable");
                }
                if let Some(show) = presence.show {
                    stanza = stanza
                        .with_child(Element::new("show", ns::CLIENT).with_text(show.as_str()));
                }
                if let Some(status) = &presence.status {
                    let status = self.render(status, None)?;
                    stanza =
                        stanza.with_child(Element::new("status", ns::CLIENT).with_text(status));
                }
                if let Some(priority) = presence.priority {
                    stanza = stanza.with_child(
                        Element::new("priority", ns::CLIENT).with_text(priority.to_string()),
                    );
                }
                self.send(&presence.actor, stanza).await?;
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
                self.session(&raw.actor)?
                    .send_raw(&xml)
                    .await
                    .map_err(|e| StepFailure::new(format!("{} could not send: {e}", raw.actor)))
            }
            Step::ExpectXml(expect) => {
                let text = self.render(&expect.pattern, None)?;
                let pattern = parse_fragment(&text)
                    .map_err(StepFailure::new)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| StepFailure::new("empty pattern"))?;
                let within = expect.within.map_or(DEFAULT_WITHIN, |d| d.0);
                self.wait(&expect.actor, &Matcher::Xml(pattern), within)
                    .await
                    .map(|_| ())
            }
        }
    }

    /// A ping round trip to the actor's own server (XEP-0199; an error reply serves as well):
    /// when it returns, the server has processed what the actor sent before it.
    async fn sync(&mut self, actor: &str) -> StepResult {
        let domain = self.actors[actor].jid.domain().to_string();
        let ping = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("to", domain)
            .with_child(Element::new("ping", ns::PING));
        self.session(actor)?
            .iq(ping, REQUEST_BOUND)
            .await
            .map(|_| ())
            .map_err(|e| {
                StepFailure::new(format!("{actor}: no answer to a ping from its server: {e}"))
            })
    }

    async fn signal(&mut self, from: &str, to: &str, presence_type: &str) -> StepResult {
        let to = self.address(to)?;
        let to = Jid::parse(&to)
            .map(|jid| jid.bare().to_string())
            .unwrap_or(to);
        self.send(
            from,
            Element::new("presence", ns::CLIENT)
                .with_attr("to", to)
                .with_attr("type", presence_type),
        )
        .await
    }

    async fn roster_set(&mut self, actor: &str, item: Element) -> StepResult {
        let request = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_child(Element::new("query", ns::ROSTER).with_child(item));
        let reply = self
            .session(actor)?
            .iq(request, REQUEST_BOUND)
            .await
            .map_err(|e| StepFailure::new(format!("{actor}: roster set: {e}")))?;
        if reply.attr("type") == Some("result") {
            Ok(())
        } else {
            Err(StepFailure {
                message: format!("{actor}: the server refused the roster set"),
                awaited: Some("an iq result".into()),
                arrived: vec![reply.to_xml(ns::CLIENT)],
            })
        }
    }

    async fn wait(
        &mut self,
        actor: &str,
        matcher: &Matcher,
        within: Duration,
    ) -> Result<Element, StepFailure> {
        let session = self.session(actor)?;
        session
            .wait_for(matcher, within)
            .await
            .map_err(|arrived| StepFailure {
                message: format!(
                    "{actor} received no {} within {}",
                    matcher.describe(),
                    humantime(within)
                ),
                awaited: Some(matcher.describe()),
                arrived: tail_of(arrived),
            })
    }

    fn matcher(
        &self,
        message: Option<&MessageMatch>,
        presence: Option<&PresenceMatch>,
        signals: [(&Option<FromMatch>, &'static str); 4],
        error: Option<&ErrorMatch>,
        index: Option<u32>,
    ) -> Result<Option<Matcher>, StepFailure> {
        let text = |value: &Option<String>| -> Result<Option<String>, StepFailure> {
            value.as_ref().map(|v| self.render(v, index)).transpose()
        };
        if let Some(m) = message {
            return Ok(Some(Matcher::Message {
                from: self.addr_match(&m.from)?,
                message_type: m.message_type.map(|t| t.as_str().to_string()),
                body: text(&m.body)?,
                thread: text(&m.thread)?,
                subject: text(&m.subject)?,
            }));
        }
        if let Some(p) = presence {
            return Ok(Some(Matcher::Presence {
                from: self.addr_match(&p.from)?,
                available: p.availability.map(|a| a == Availability::Available),
                show: p.show.map(|s| s.as_str().to_string()),
                status: text(&p.status)?,
                priority: p.priority,
            }));
        }
        for (signal, presence_type) in signals {
            if let Some(signal) = signal {
                return Ok(Some(Matcher::Signal {
                    presence_type,
                    from: self.addr_match(&signal.from)?,
                }));
            }
        }
        if let Some(e) = error {
            return Ok(Some(Matcher::Error {
                from: self.addr_match(&e.from)?,
                stanza: e.stanza.map(|s| s.as_str()),
                conditions: e
                    .condition
                    .as_ref()
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
            (&expect.subscription_request, "subscribe"),
            (&expect.subscribed, "subscribed"),
            (&expect.unsubscribed, "unsubscribed"),
            (&expect.unsubscribe, "unsubscribe"),
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
                        arrived: vec![stanza.to_xml(ns::CLIENT)],
                    });
                }
                Err(arrived) => {
                    return Err(StepFailure {
                        message: format!(
                            "{} received only {i} of {count} within {}",
                            expect.actor,
                            humantime(within)
                        ),
                        awaited: Some(matcher.describe()),
                        arrived: tail_of(arrived),
                    });
                }
            }
        }
        Ok(())
    }

    async fn expect_none(&mut self, none: &ExpectNone) -> StepResult {
        let signals = [
            (&none.subscription_request, "subscribe"),
            (&none.subscribed, "subscribed"),
            (&none.unsubscribed, "unsubscribed"),
            (&none.unsubscribe, "unsubscribe"),
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
        match session.watch(&matcher, none.duration.0).await {
            None => Ok(()),
            Some(stanza) => Err(StepFailure {
                message: format!(
                    "{} received {} although none was allowed for {}",
                    none.actor,
                    matcher.describe(),
                    none.duration
                ),
                awaited: Some(format!("no {} for {}", matcher.describe(), none.duration)),
                arrived: vec![stanza.to_xml(ns::CLIENT)],
            }),
        }
    }

    async fn subscription_state(
        &mut self,
        actor: &str,
        contact: &str,
        wanted: &[RosterState],
        pending_out: Option<bool>,
        within: Duration,
    ) -> StepResult {
        let contact = self.address(contact)?;
        let contact = Jid::parse(&contact)
            .map_err(|e| StepFailure::new(e.to_string()))?
            .bare();
        let matches = |item: Option<&Element>| -> bool {
            wanted.iter().any(|want| match (want.as_attr(), item) {
                (None, None) => true,
                (Some(state), Some(item)) => {
                    item.attr("subscription").unwrap_or("none") == state
                        && pending_out.is_none_or(|p| (item.attr("ask") == Some("subscribe")) == p)
                }
                _ => false,
            })
        };
        let describe = |item: Option<&Element>| match item {
            None => "no roster item".to_string(),
            Some(item) => item.to_xml(ns::CLIENT),
        };
        let find = |query: &Element| -> Option<Element> {
            query
                .elements()
                .find(|item| {
                    item.attr("jid")
                        .and_then(|j| Jid::parse(j).ok())
                        .is_some_and(|j| j == contact)
                })
                .cloned()
        };
        let session = self.session(actor)?;
        let reply = roster_query(session, actor).await?;
        let mut last = reply.child("query", ns::ROSTER).and_then(find);
        if matches(last.as_ref()) {
            return Ok(());
        }
        // Not yet: roster pushes tell of changes (RFC 6121 §2.1.6).
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let push = session
                .wait_where(remaining, |stanza| {
                    stanza.is("iq", ns::CLIENT)
                        && stanza.attr("type") == Some("set")
                        && stanza.child("query", ns::ROSTER).and_then(&find).is_some()
                })
                .await;
            match push {
                Ok(push) => {
                    let item = push.child("query", ns::ROSTER).and_then(&find);
                    last = item.filter(|i| i.attr("subscription") != Some("remove"));
                    if matches(last.as_ref()) {
                        return Ok(());
                    }
                }
                Err(_) => {
                    let choices: Vec<String> = wanted
                        .iter()
                        .map(|want| match want.as_attr() {
                            None => "no roster item".to_string(),
                            Some(state) => format!(
                                "roster item {contact} with subscription '{state}'{}",
                                match pending_out {
                                    Some(true) => " and ask='subscribe'",
                                    Some(false) => " and no ask",
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
                        arrived: vec![describe(last.as_ref())],
                    });
                }
            }
        }
    }

    /// Checks the reference server's federation log (its control API).
    async fn federation(&mut self, fed: &FederationExpect) -> StepResult {
        let from = self
            .actors
            .get(&fed.from)
            .map(|a| (a.jid.bare(), a.role))
            .ok_or_else(|| StepFailure::new(format!("{} is not an actor", fed.from)))?;
        let to =
            Jid::parse(&self.address(&fed.to)?).map_err(|e| StepFailure::new(e.to_string()))?;
        let direction = if from.1 == Role::Ref { "out" } else { "in" };
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
            from.0,
            to.bare(),
            fed.stanza_type
                .as_ref()
                .map(|t| format!(" type '{t}'"))
                .unwrap_or_default(),
            body.as_ref()
                .map(|b| format!(" body '{}'", truncate(b, 40)))
                .unwrap_or_default(),
            if direction == "out" {
                "sent by the reference server over"
            } else {
                "received by the reference server over"
            },
        );
        let matches = |entry: &serde_json::Value| -> bool {
            if entry["direction"] != direction {
                return false;
            }
            let Some(xml) = entry["xml"].as_str() else {
                return false;
            };
            let Ok(mut elements) = parse_fragment(xml) else {
                return false;
            };
            let Some(stanza) = elements.pop() else {
                return false;
            };
            let attr_jid = |name: &str| {
                stanza
                    .attr(name)
                    .and_then(|j| Jid::parse(j).ok())
                    .map(|j| j.bare())
            };
            stanza.name == fed.stanza.as_str()
                && attr_jid("from") == Some(from.0.clone())
                && attr_jid("to") == Some(to.bare())
                && fed.stanza_type.as_deref().is_none_or(|t| {
                    stanza.attr("type").unwrap_or(if t == "available" {
                        "available"
                    } else {
                        "normal"
                    }) == t
                        || (t == "available" && stanza.attr("type").is_none())
                })
                && body
                    .as_ref()
                    .is_none_or(|b| stanza.child_text("body", ns::CLIENT).as_ref() == Some(b))
        };
        let deadline = tokio::time::Instant::now() + within;
        let mut since = self.log_start;
        let mut seen: Vec<serde_json::Value> = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait_ms = (remaining.as_millis() as u64).clamp(1, 30_000);
            let entries = fetch_log(self.env, since, wait_ms).await;
            for entry in &entries {
                since = since.max(entry["seq"].as_u64().unwrap_or(since));
            }
            seen.extend(entries);
            let found = seen.iter().filter(|e| matches(e)).count();
            let done = tokio::time::Instant::now() >= deadline;
            if found >= wanted && !fed.exactly {
                return Ok(());
            }
            if fed.exactly && found > wanted {
                break;
            }
            if done {
                if found == wanted && fed.exactly {
                    return Ok(());
                }
                break;
            }
        }
        let found = seen.iter().filter(|e| matches(e)).count();
        Err(StepFailure {
            message: format!("expected {describe}; found {found}"),
            awaited: Some(describe),
            arrived: tail_of(
                seen.iter()
                    .filter_map(|e| {
                        e["xml"]
                            .as_str()
                            .map(|x| format!("{} {x}", e["direction"].as_str().unwrap_or("?")))
                    })
                    .collect(),
            ),
        })
    }
}

/// A roster get (RFC 6121 §2.1.3), its reply whatever its type.
async fn roster_query(session: &mut Session, actor: &str) -> Result<Element, StepFailure> {
    let get = Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_child(Element::new("query", ns::ROSTER));
    session
        .iq(get, REQUEST_BOUND)
        .await
        .map_err(|e| StepFailure::new(format!("{actor}: roster query: {e}")))
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
