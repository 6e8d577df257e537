//! The results of a run, as every renderer sees them. Serializable both ways, so a JSON
//! results file can be read back (the interop matrix combines several).

use serde::{Deserialize, Serialize};

/// Requirement level of a spec reference (RFC 2119 keywords as the spec uses them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// An absolute requirement.
    Must,
    /// A recommendation.
    Should,
    /// An option.
    May,
}

impl Level {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// Where a scenario's requirement comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRef {
    /// The document, e.g. "RFC 6121".
    pub doc: String,
    /// The section, e.g. "3.1.3".
    pub section: String,
    /// The requirement level.
    pub level: Level,
    /// The quoted requirement text, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl SpecRef {
    /// "RFC 6121 §3.1.3".
    pub fn label(&self) -> String {
        format!("{} §{}", self.doc, self.section)
    }
}

/// How a scenario ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Every step passed.
    Pass,
    /// Passed only on a retry: reported as flaky, never as a plain pass.
    Flaky {
        /// Attempts made, the passing one included.
        attempts: u32,
    },
    /// A step failed.
    Fail,
    /// Failed, as the target's expectations file says it does.
    XFail {
        /// Why it is expected to fail.
        reason: String,
    },
    /// Passed although expected to fail: fails the run.
    XPass {
        /// Why it was expected to fail.
        reason: String,
    },
    /// Not run, for the reason given (filtered out, interrupted, ...).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Not run: it needs a capability the target declares unsupported, or one the
    /// protocol cannot express (a profile's capability gap).
    Unsupported {
        /// The capability.
        capability: String,
        /// Why it is missing.
        #[serde(default)]
        reason: String,
    },
}

impl Outcome {
    /// "unsupported capability: c (why)" for an unsupported outcome.
    pub fn unsupported_text(&self) -> Option<String> {
        match self {
            Outcome::Unsupported { capability, reason } if reason.is_empty() => {
                Some(format!("unsupported capability: {capability}"))
            }
            Outcome::Unsupported { capability, reason } => {
                Some(format!("unsupported capability: {capability} ({reason})"))
            }
            _ => None,
        }
    }

    /// A short lowercase label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Flaky { .. } => "flaky",
            Outcome::Fail => "fail",
            Outcome::XFail { .. } => "xfail",
            Outcome::XPass { .. } => "xpass",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Unsupported { .. } => "unsupported",
        }
    }

    /// Whether this outcome fails the run.
    pub fn fails_run(&self) -> bool {
        matches!(self, Outcome::Fail | Outcome::XPass { .. })
    }
}

/// Whose behaviour a check or a run judges: the implementation under test, the reference
/// server, or both (a cross-domain exchange involves the servers at both ends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judges {
    /// Only the implementation under test.
    Sut,
    /// Only the reference server: not a verdict on the implementation.
    Ref,
    /// Both.
    #[default]
    Both,
}

impl Judges {
    /// From whether the implementation and the reference server are judged; `None` when
    /// neither is.
    pub fn of(sut: bool, reference: bool) -> Option<Judges> {
        match (sut, reference) {
            (true, true) => Some(Judges::Both),
            (true, false) => Some(Judges::Sut),
            (false, true) => Some(Judges::Ref),
            (false, false) => None,
        }
    }

    /// "sut", "ref" or "both".
    pub fn label(self) -> &'static str {
        match self {
            Judges::Sut => "sut",
            Judges::Ref => "ref",
            Judges::Both => "both",
        }
    }
}

/// Why a scenario failed: the step, what was awaited, what arrived instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// 1-based index of the failing step (0 when the failure is not tied to a step).
    pub step: usize,
    /// The step as written, e.g. "expect bob message from alice".
    pub step_label: String,
    /// One line: what went wrong.
    pub message: String,
    /// What was awaited, if the step waited for something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaited: Option<String>,
    /// What arrived instead (serialized stanzas or events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arrived: Vec<String>,
    /// Whose behaviour the failing check judges (absent when the failing step is an
    /// action or no step at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judges: Option<Judges>,
}

impl Failure {
    /// A failure of step `step` (0: none) with only a message.
    pub fn new(step: usize, step_label: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            step,
            step_label: step_label.into(),
            message: message.into(),
            awaited: None,
            arrived: Vec::new(),
            judges: None,
        }
    }
}

/// Which way a transcript line went, seen from the actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// The actor sent it.
    Sent,
    /// The actor received it.
    Received,
    /// A note from the harness (login, disconnect, ...).
    Note,
}

/// One line of an actor's transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptLine {
    /// Milliseconds since the scenario started.
    pub t_ms: u64,
    /// The actor.
    pub actor: String,
    /// Which way.
    pub flow: Flow,
    /// The stanza or note.
    pub text: String,
}

/// One element that crossed the federation link, as the reference server logged it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkLine {
    /// Milliseconds since the scenario started (may be negative-free: clamped at 0).
    pub t_ms: u64,
    /// "in" (received by the reference server) or "out" (sent by it).
    pub direction: String,
    /// The reference-side domain.
    pub local: String,
    /// The other domain.
    pub remote: String,
    /// The element.
    pub xml: String,
}

/// The result of one scenario in one direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The pack (top folder of the scenario file), one JUnit testsuite each.
    pub pack: String,
    /// The scenario file, relative to the scenarios root.
    pub file: String,
    /// "ref→sut" for the scenario as written, "sut→ref" for its swapped run.
    pub direction: String,
    /// Spec references.
    pub spec: Vec<SpecRef>,
    /// Tags.
    pub tags: Vec<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Whose behaviour its checks judge; a pass that judges only the reference server is
    /// not a pass of the implementation.
    #[serde(default)]
    pub judges: Judges,
    /// Why it failed (set for fail, xfail, and flaky's last failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Attempts made.
    pub attempts: u32,
    /// Wall time of the last attempt.
    pub duration_ms: u64,
    /// Every actor's sent and received stanzas, in order.
    #[serde(default)]
    pub transcript: Vec<TranscriptLine>,
    /// What crossed the federation link during the scenario.
    #[serde(default)]
    pub federation: Vec<LinkLine>,
}

impl ScenarioResult {
    /// "id [ref→sut]", the name used in reports.
    pub fn name(&self) -> String {
        format!("{} [{}]", self.id, self.direction)
    }

    /// Whether it passed but judged only the reference server: no verdict on the
    /// implementation.
    pub fn reference_only(&self) -> bool {
        self.outcome == Outcome::Pass && self.judges == Judges::Ref
    }

    /// The verdict on the implementation: the outcome's label, or "ref-only" for a pass
    /// that judged only the reference server.
    pub fn verdict(&self) -> &'static str {
        if self.reference_only() {
            "ref-only"
        } else {
            self.outcome.label()
        }
    }
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The target's name.
    pub target: String,
    /// The protocol profile.
    pub protocol: String,
    /// The imfed version.
    pub imfed_version: String,
    /// Start, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// Whether the run was interrupted (Ctrl-C, watchdog) before every scenario ran.
    pub interrupted: bool,
    /// One result per scenario and direction, in the order they were selected.
    pub results: Vec<ScenarioResult>,
}

/// Counts by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Plain passes.
    pub passed: usize,
    /// Failures, unexpected passes included.
    pub failed: usize,
    /// Skipped and unsupported.
    pub skipped: usize,
    /// Expected failures.
    pub xfailed: usize,
    /// Unexpected passes (also counted in `failed`).
    pub xpassed: usize,
    /// Passed on retry.
    pub flaky: usize,
    /// Passed, but every check judged only the reference server: not counted as passed.
    pub reference_only: usize,
}

impl Counts {
    /// Counts of `results`.
    pub fn of<'a>(results: impl IntoIterator<Item = &'a ScenarioResult>) -> Counts {
        let mut counts = Counts::default();
        for result in results {
            match result.outcome {
                Outcome::Pass if result.reference_only() => counts.reference_only += 1,
                Outcome::Pass => counts.passed += 1,
                Outcome::Flaky { .. } => counts.flaky += 1,
                Outcome::Fail => counts.failed += 1,
                Outcome::XPass { .. } => {
                    counts.failed += 1;
                    counts.xpassed += 1;
                }
                Outcome::XFail { .. } => counts.xfailed += 1,
                Outcome::Skipped { .. } | Outcome::Unsupported { .. } => counts.skipped += 1,
            }
        }
        counts
    }

    /// The run's last line, exactly "N passed, N failed, N skipped" (CI readers parse it).
    pub fn summary_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }

    /// The other counts, for the line before the summary; `None` when all are zero.
    pub fn detail_line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.xfailed > 0 {
            parts.push(format!("{} expected failures", self.xfailed));
        }
        if self.xpassed > 0 {
            parts.push(format!("{} unexpected passes", self.xpassed));
        }
        if self.flaky > 0 {
            parts.push(format!("{} flaky (passed on retry)", self.flaky));
        }
        if self.reference_only > 0 {
            parts.push(format!(
                "{} passed judging only the reference server (not counted as passes)",
                self.reference_only
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}
