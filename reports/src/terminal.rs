//! Human output: one progress line per scenario as it ends, and the summary that closes a run.
//!
//! The summary's last line is exactly [`Counts::summary_line`], uncolored, because CI scripts
//! read it. Colors are plain ANSI SGR codes; whether to use them (a TTY, `NO_COLOR`) is the
//! caller's decision, passed in [`TerminalStyle`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{Counts, Level, Outcome, RunReport, ScenarioResult};
use crate::text;

/// How many transcript lines a failure block shows, from the end.
const TRANSCRIPT_TAIL: usize = 10;
/// How many federation link lines a failure block shows, from the end.
const LINK_TAIL: usize = 5;
/// How many arrived elements a failure block lists.
const ARRIVED_SHOWN: usize = 5;
/// How many characters of one arrived element a failure block shows.
const ARRIVED_CHARS: usize = 300;

/// How to render terminal text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TerminalStyle {
    /// Whether to use ANSI colors.
    pub color: bool,
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED_BOLD: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";

impl TerminalStyle {
    fn paint(self, sgr: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("{sgr}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }
}

/// The status word of a result, padded to the widest, and its color.
fn status(result: &ScenarioResult) -> (&'static str, &'static str) {
    match &result.outcome {
        Outcome::Pass if result.reference_only() => ("REF  ", CYAN),
        Outcome::Pass => ("PASS ", GREEN),
        Outcome::Flaky { .. } => ("FLAKY", YELLOW),
        Outcome::Fail => ("FAIL ", RED_BOLD),
        Outcome::XFail { .. } => ("XFAIL", CYAN),
        Outcome::XPass { .. } => ("XPASS", RED_BOLD),
        Outcome::Skipped { .. } | Outcome::Unsupported { .. } => ("SKIP ", YELLOW),
    }
}

/// One line for live progress on stderr, without a newline:
/// `PASS    12ms  id [ref→sut]`, followed for other outcomes by why
/// (`FAIL    5.0s  id [ref→sut]  step 5 (...): no message from alice within 5s`).
pub fn progress_line(result: &ScenarioResult, style: TerminalStyle) -> String {
    let (word, sgr) = status(result);
    let mut line = format!(
        "{} {:>6}  {}",
        style.paint(sgr, word),
        text::duration(result.duration_ms),
        text::one_line(&result.name())
    );
    let why = match &result.outcome {
        Outcome::Pass if result.reference_only() => Some(
            "passed, but judged only the reference server (not counted for the implementation)"
                .to_owned(),
        ),
        Outcome::Pass => None,
        Outcome::Flaky { attempts } => Some(format!("passed on attempt {attempts}")),
        Outcome::Fail => Some(
            result
                .failure
                .as_ref()
                .map_or_else(|| "failed".to_owned(), text::failure_headline),
        ),
        Outcome::XFail { reason } => Some(format!("expected failure: {}", text::one_line(reason))),
        Outcome::XPass { reason } => Some(format!(
            "passed, expected to fail: {}",
            text::one_line(reason)
        )),
        Outcome::Skipped { reason } => Some(text::one_line(reason).into_owned()),
        Outcome::Unsupported { .. } => result
            .outcome
            .unsupported_text()
            .map(|text| text::one_line(&text).into_owned()),
    };
    if let Some(why) = why {
        line.push_str("  ");
        line.push_str(&style.paint(DIM, &why));
    }
    line
}

/// The end-of-run summary: a block per failed or unexpectedly passed scenario, a line per flaky
/// one, counts per spec document and level, and the counts. Its last line is exactly
/// [`Counts::summary_line`], followed by a newline and nothing else.
pub fn summary(report: &RunReport, style: TerminalStyle) -> String {
    let mut out = String::new();
    for result in report.results.iter().filter(|r| r.outcome.fails_run()) {
        failure_block(&mut out, result, style);
        out.push('\n');
    }
    for result in &report.results {
        if let Outcome::Flaky { attempts } = result.outcome {
            let _ = write!(
                out,
                "{} {}: passed on attempt {attempts}",
                style.paint(YELLOW, "FLAKY"),
                text::one_line(&result.name())
            );
            if let Some(failure) = &result.failure {
                let _ = write!(out, "; failed before: {}", text::failure_headline(failure));
            }
            out.push('\n');
        }
    }
    if report
        .results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Flaky { .. }))
    {
        out.push('\n');
    }
    spec_table(&mut out, report, style);

    let counts = Counts::of(&report.results);
    if report.interrupted {
        out.push_str(&style.paint(
            YELLOW,
            "interrupted: the run stopped before every selected scenario ran",
        ));
        out.push('\n');
    }
    if let Some(detail) = counts.detail_line() {
        out.push_str(&style.paint(YELLOW, &detail));
        out.push('\n');
    }
    // Never colored: CI scripts match this line.
    out.push_str(&counts.summary_line());
    out.push('\n');
    out
}

fn failure_block(out: &mut String, result: &ScenarioResult, style: TerminalStyle) {
    let (word, sgr) = status(result);
    let _ = writeln!(
        out,
        "{} {}: {}",
        style.paint(sgr, word.trim_end()),
        style.paint(BOLD, &text::one_line(&result.name())),
        text::one_line(&result.title)
    );
    let _ = writeln!(out, "  file: {}", text::one_line(&result.file));
    if !result.spec.is_empty() {
        let refs: Vec<String> = result
            .spec
            .iter()
            .map(|spec| format!("{} {}", text::one_line(&spec.label()), spec.level.as_str()))
            .collect();
        let _ = writeln!(out, "  spec: {}", refs.join(", "));
    }
    match (&result.outcome, &result.failure) {
        (Outcome::XPass { reason }, _) => {
            let _ = writeln!(
                out,
                "  passed, but expected to fail: {}",
                text::one_line(reason)
            );
            out.push_str("  (if the target is fixed, remove it from the expectations file)\n");
        }
        (_, None) => out.push_str("  failed (no failure recorded)\n"),
        (_, Some(failure)) => {
            let step = if failure.step > 0 {
                format!(
                    "step {} ({}): ",
                    failure.step,
                    text::one_line(&failure.step_label)
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {}",
                style.paint(
                    RED_BOLD,
                    &format!("{step}{}", text::one_line(&failure.message))
                )
            );
            if let Some(judges) = failure.judges {
                let _ = writeln!(out, "  check judges: {}", text::judges_phrase(judges));
            }
            if let Some(awaited) = &failure.awaited {
                let _ = writeln!(out, "  awaited: {}", text::one_line(awaited));
            }
            for (i, arrived) in failure.arrived.iter().take(ARRIVED_SHOWN).enumerate() {
                let head = if i == 0 { "arrived:" } else { "        " };
                let _ = writeln!(
                    out,
                    "  {head} {}",
                    text::truncate(&text::one_line(arrived), ARRIVED_CHARS)
                );
            }
            if failure.arrived.len() > ARRIVED_SHOWN {
                let _ = writeln!(
                    out,
                    "           (+{} more)",
                    failure.arrived.len() - ARRIVED_SHOWN
                );
            }
        }
    }
    tail(
        out,
        "transcript",
        result.transcript.iter().map(text::transcript_line),
        result.transcript.len(),
        TRANSCRIPT_TAIL,
        style,
    );
    tail(
        out,
        "federation link",
        result.federation.iter().map(text::link_line),
        result.federation.len(),
        LINK_TAIL,
        style,
    );
}

/// "  transcript (last 10 of 14):" and those lines; nothing when there are none.
fn tail(
    out: &mut String,
    title: &str,
    lines: impl Iterator<Item = String>,
    len: usize,
    keep: usize,
    style: TerminalStyle,
) {
    if len == 0 {
        return;
    }
    if len > keep {
        let _ = writeln!(out, "  {title} (last {keep} of {len}):");
    } else {
        let _ = writeln!(out, "  {title}:");
    }
    for line in lines.skip(len.saturating_sub(keep)) {
        let _ = writeln!(out, "    {}", style.paint(DIM, &line));
    }
}

/// "RFC 6121  MUST    pass 30 fail 1 xfail 0 skip 0 flaky 0 ref-only 2", one row per document
/// and level a
/// scenario cites (a scenario counts once per row however many sections it cites there).
fn spec_table(out: &mut String, report: &RunReport, style: TerminalStyle) {
    let mut rows: BTreeMap<(String, Level), Vec<&ScenarioResult>> = BTreeMap::new();
    let mut uncited = Vec::new();
    for result in &report.results {
        let keys: BTreeSet<(String, Level)> = result
            .spec
            .iter()
            .map(|spec| (text::one_line(&spec.doc).into_owned(), spec.level))
            .collect();
        if keys.is_empty() {
            uncited.push(result);
        }
        for key in keys {
            rows.entry(key).or_default().push(result);
        }
    }
    let mut rows: Vec<(String, &str, Counts)> = rows
        .into_iter()
        .map(|((doc, level), results)| (doc, level.as_str(), Counts::of(results)))
        .collect();
    if !uncited.is_empty() {
        rows.push(("(no spec)".to_owned(), "-", Counts::of(uncited)));
    }
    if rows.is_empty() {
        return;
    }
    let doc_width = rows
        .iter()
        .map(|(doc, ..)| doc.chars().count())
        .max()
        .unwrap_or(0);
    let num_width = rows
        .iter()
        .flat_map(|(.., c)| {
            [
                c.passed,
                c.failed,
                c.xfailed,
                c.skipped,
                c.flaky,
                c.reference_only,
            ]
        })
        .max()
        .unwrap_or(0)
        .to_string()
        .len();

    out.push_str(&style.paint(BOLD, "by spec:"));
    out.push('\n');
    for (doc, level, counts) in rows {
        let failed = format!("{:>num_width$}", counts.failed);
        let failed = if counts.failed > 0 {
            style.paint(RED_BOLD, &failed)
        } else {
            failed
        };
        let _ = writeln!(
            out,
            "  {doc:<doc_width$}  {level:<6}  pass {:>num_width$}  fail {failed}  xfail {:>num_width$}  skip {:>num_width$}  flaky {:>num_width$}  ref-only {:>num_width$}",
            counts.passed, counts.xfailed, counts.skipped, counts.flaky, counts.reference_only,
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Failure, SpecRef};

    fn result(outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            judges: Default::default(),
            id: "presence-probe".into(),
            title: "Probe".into(),
            pack: "core".into(),
            file: "core/probe.yaml".into(),
            direction: "ref→sut".into(),
            spec: vec![SpecRef {
                doc: "RFC 6121".into(),
                section: "4.3".into(),
                level: Level::Must,
                text: None,
            }],
            tags: vec![],
            outcome,
            failure: None,
            attempts: 1,
            duration_ms: 12,
            transcript: vec![],
            federation: vec![],
        }
    }

    fn report(results: Vec<ScenarioResult>) -> RunReport {
        RunReport {
            target: "sut".into(),
            protocol: "xmpp".into(),
            imfed_version: "0.1.0".into(),
            started_ms: 0,
            duration_ms: 0,
            interrupted: false,
            results,
        }
    }

    const PLAIN: TerminalStyle = TerminalStyle { color: false };
    const COLOR: TerminalStyle = TerminalStyle { color: true };

    #[test]
    fn progress_lines() {
        assert_eq!(
            progress_line(&result(Outcome::Pass), PLAIN),
            "PASS    12ms  presence-probe [ref→sut]"
        );
        let mut failed = result(Outcome::Fail);
        failed.duration_ms = 5_012;
        failed.failure = Some(Failure {
            judges: None,
            step: 5,
            step_label: "expect bob presence".into(),
            message: "no presence from bob@sut.test within 5s".into(),
            awaited: None,
            arrived: vec![],
        });
        assert_eq!(
            progress_line(&failed, PLAIN),
            "FAIL    5.0s  presence-probe [ref→sut]  step 5 (expect bob presence): no presence \
             from bob@sut.test within 5s"
        );
        let skipped = result(Outcome::Unsupported {
            capability: "muc".into(),
            reason: String::new(),
        });
        assert_eq!(
            progress_line(&skipped, PLAIN),
            "SKIP    12ms  presence-probe [ref→sut]  unsupported capability: muc"
        );
        assert_eq!(
            progress_line(&result(Outcome::Flaky { attempts: 2 }), PLAIN),
            "FLAKY   12ms  presence-probe [ref→sut]  passed on attempt 2"
        );
    }

    #[test]
    fn progress_line_colors_the_status_only_when_asked() {
        let xpass = result(Outcome::XPass {
            reason: "bug 12".into(),
        });
        let line = progress_line(&xpass, COLOR);
        assert!(
            line.starts_with("\x1b[1;31mXPASS\x1b[0m   12ms"),
            "{line:?}"
        );
        assert!(!progress_line(&xpass, PLAIN).contains('\x1b'));
    }

    #[test]
    fn table_counts_a_scenario_once_per_document_and_level() {
        let mut twice = result(Outcome::Pass);
        twice.spec.push(SpecRef {
            section: "4.5".into(),
            ..twice.spec[0].clone()
        });
        let mut uncited = result(Outcome::XFail { reason: "r".into() });
        uncited.spec.clear();
        let text = summary(&report(vec![twice, uncited]), PLAIN);
        assert!(
            text.contains(
                "  (no spec)  -       pass 0  fail 0  xfail 1  skip 0  flaky 0  ref-only 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  RFC 6121   MUST    pass 1  fail 0  xfail 0  skip 0  flaky 0  ref-only 0\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn interrupted_run_says_so_before_the_counts() {
        let mut report = report(vec![result(Outcome::Skipped {
            reason: "interrupted".into(),
        })]);
        report.interrupted = true;
        let text = summary(&report, PLAIN);
        assert!(
            text.ends_with(
                "interrupted: the run stopped before every selected scenario ran\n\
                 0 passed, 0 failed, 1 skipped\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn empty_run_is_just_the_summary_line() {
        assert_eq!(
            summary(&report(vec![]), COLOR),
            "0 passed, 0 failed, 0 skipped\n"
        );
    }

    #[test]
    fn transcript_tail_keeps_the_last_lines() {
        let mut failed = result(Outcome::Fail);
        failed.transcript = (0..14)
            .map(|i| crate::model::TranscriptLine {
                t_ms: i,
                actor: "alice".into(),
                flow: crate::model::Flow::Note,
                text: format!("line {i}"),
            })
            .collect();
        let text = summary(&report(vec![failed]), PLAIN);
        assert!(
            text.contains("  transcript (last 10 of 14):\n    +4ms alice · line 4\n"),
            "{text}"
        );
        assert!(!text.contains("line 3\n"), "{text}");
    }
}
