//! JUnit XML: one `<testsuite>` per pack, one `<testcase>` per scenario and direction, for CI
//! systems (GitLab, Jenkins, GitHub annotations) that read the format.
//!
//! JUnit knows only success, failure, error and skipped, so imfed's outcomes map as follows:
//!
//! | outcome     | JUnit                                                       |
//! | ----------- | ----------------------------------------------------------- |
//! | pass        | success                                                     |
//! | flaky       | success; system-out begins "FLAKY: passed on attempt N"     |
//! | fail        | `<failure type="fail">`                                     |
//! | xpass       | `<failure type="xpass">` (it fails the run)                 |
//! | xfail       | `<skipped type="xfail" message="expected failure: ...">`    |
//! | skipped     | `<skipped type="skipped">`                                  |
//! | unsupported | `<skipped type="unsupported">`                              |
//!
//! `error` is never used: an error means the harness could not run, which is an exit code, not a
//! test case. junit-report 0.9 writes neither `<properties>` nor `<flakyFailure>`, so spec
//! references, tags, direction and file are header lines of each test case's system-out (the file
//! is also the `file` attribute), and the run's metadata is the test suite's system-out.

use std::io::Write;

use junit_report::{Duration, OffsetDateTime, Report, TestCase, TestResult, TestSuite};

use crate::model::{Counts, Outcome, RunReport, ScenarioResult};
use crate::text;

/// Why JUnit XML could not be written.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    /// The XML writer or the sink it writes to failed.
    #[error("cannot write JUnit XML")]
    Write {
        /// What failed.
        source: junit_report::Error,
    },
}

/// The report as a JUnit XML document.
///
/// # Errors
///
/// [`JunitError::Write`] if the XML writer fails; writing to memory, it does not in practice.
pub fn render(report: &RunReport) -> Result<String, JunitError> {
    let mut out = Vec::new();
    write(report, &mut out)?;
    // Every byte written comes from a `&str`, so the document is UTF-8; lossy is never lossy.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Writes the report as a JUnit XML document to `out`.
///
/// # Errors
///
/// [`JunitError::Write`] if writing to `out` fails.
pub fn write(report: &RunReport, out: impl Write) -> Result<(), JunitError> {
    let mut junit = Report::new();
    junit.add_testsuites(packs(report).into_iter().map(|(pack, results)| {
        let mut suite = TestSuite::new(&attribute(pack));
        suite.set_timestamp(timestamp(report.started_ms));
        suite.set_system_out(&cdata(&suite_header(report, &results)));
        suite.add_testcases(results.into_iter().map(testcase));
        suite
    }));
    junit
        .write_xml(out)
        .map_err(|source| JunitError::Write { source })
}

/// Results grouped by pack, packs in order of first appearance.
fn packs(report: &RunReport) -> Vec<(&str, Vec<&ScenarioResult>)> {
    let mut packs: Vec<(&str, Vec<&ScenarioResult>)> = Vec::new();
    for result in &report.results {
        match packs.iter_mut().find(|(pack, _)| *pack == result.pack) {
            Some((_, results)) => results.push(result),
            None => packs.push((&result.pack, vec![result])),
        }
    }
    packs
}

fn timestamp(started_ms: u64) -> OffsetDateTime {
    // Out of range only for a start after the year 9999: keep the epoch rather than fail.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(started_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn testcase(result: &ScenarioResult) -> TestCase {
    let time = Duration::milliseconds(i64::try_from(result.duration_ms).unwrap_or(i64::MAX));
    let mut case = TestCase::success(&attribute(&result.name()), time);
    // Jenkins and GitLab group by classname, splitting it at the last dot into package and
    // class: the pack, then the scenario, whose two directions are then side by side.
    case.set_classname(&attribute(&format!("{}.{}", result.pack, result.id)));
    case.set_filepath(&attribute(&result.file));
    case.set_system_out(&cdata(&system_out(result)));
    case.result = match &result.outcome {
        Outcome::Pass if result.reference_only() => TestResult::SkippedWithCause {
            type_: "reference-only".into(),
            message: attribute(
                "passed, but every check judged only the reference server: no verdict on the \
                 implementation",
            ),
            cause: None,
        },
        Outcome::Pass | Outcome::Flaky { .. } => TestResult::Success,
        Outcome::Fail => TestResult::Failure {
            type_: "fail".into(),
            message: attribute(&match &result.failure {
                Some(failure) => text::failure_headline(failure),
                None => "failed (no failure recorded)".into(),
            }),
            cause: result
                .failure
                .as_ref()
                .map(|failure| cdata(&text::failure_detail(failure))),
        },
        Outcome::XPass { reason } => TestResult::Failure {
            type_: "xpass".into(),
            message: attribute(&format!(
                "unexpected pass: every step passed, but the expectations file says it fails: {reason}"
            )),
            cause: Some(cdata(&format!(
                "The target's expectations file lists this scenario as an expected failure:\n  \
                 {}\nbut it passed. If the target is fixed, remove the entry.\n",
                text::multi_line(reason)
            ))),
        },
        Outcome::XFail { reason } => TestResult::SkippedWithCause {
            type_: "xfail".into(),
            message: attribute(&format!("expected failure: {reason}")),
            cause: result
                .failure
                .as_ref()
                .map(|failure| cdata(&text::failure_detail(failure))),
        },
        Outcome::Skipped { reason } => TestResult::SkippedWithCause {
            type_: "skipped".into(),
            message: attribute(reason),
            cause: None,
        },
        Outcome::Unsupported { .. } => TestResult::SkippedWithCause {
            type_: "unsupported".into(),
            message: attribute(&result.outcome.unsupported_text().unwrap_or_default()),
            cause: None,
        },
    };
    case
}

/// Header lines standing in for properties, then the transcript and the federation link.
fn system_out(result: &ScenarioResult) -> String {
    let mut out = String::new();
    if let Outcome::Flaky { attempts } = result.outcome {
        out.push_str(&format!("FLAKY: passed on attempt {attempts}\n"));
        if let Some(failure) = &result.failure {
            out.push_str(&format!(
                "last failed attempt: {}\n",
                text::failure_headline(failure)
            ));
        }
    }
    out.push_str(&format!("scenario: {}\n", text::one_line(&result.name())));
    out.push_str(&format!("title: {}\n", text::one_line(&result.title)));
    out.push_str(&format!("file: {}\n", text::one_line(&result.file)));
    out.push_str(&format!(
        "direction: {}\n",
        text::one_line(&result.direction)
    ));
    out.push_str(&format!("judges: {}\n", result.judges.label()));
    for spec in &result.spec {
        out.push_str(&format!(
            "spec: {} {}",
            text::one_line(&spec.label()),
            spec.level.as_str()
        ));
        if let Some(quote) = &spec.text {
            out.push_str(&format!(" \"{}\"", text::one_line(quote)));
        }
        out.push('\n');
    }
    if !result.tags.is_empty() {
        out.push_str(&format!(
            "tags: {}\n",
            text::one_line(&result.tags.join(", "))
        ));
    }
    out.push_str(&format!(
        "outcome: {} (attempts: {})\n",
        result.outcome.label(),
        result.attempts
    ));

    out.push_str("\ntranscript:\n");
    if result.transcript.is_empty() {
        out.push_str("(empty)\n");
    }
    for line in &result.transcript {
        out.push_str(&text::transcript_line(line));
        out.push('\n');
    }
    out.push_str("\nfederation link:\n");
    if result.federation.is_empty() {
        out.push_str("(nothing crossed the link)\n");
    }
    for line in &result.federation {
        out.push_str(&text::link_line(line));
        out.push('\n');
    }
    out
}

/// The run's metadata and the pack's counts, as the suite's system-out.
fn suite_header(report: &RunReport, results: &[&ScenarioResult]) -> String {
    let counts = Counts::of(results.iter().copied());
    let mut out = format!(
        "target: {}\nprotocol: {}\nimfed: {}\n",
        text::one_line(&report.target),
        text::one_line(&report.protocol),
        text::one_line(&report.imfed_version),
    );
    if report.interrupted {
        out.push_str("interrupted: the run stopped before every selected scenario ran\n");
    }
    if let Some(detail) = counts.detail_line() {
        out.push_str(&detail);
        out.push('\n');
    }
    out.push_str(&counts.summary_line());
    out.push('\n');
    out
}

/// Text for an attribute: one line (parsers turn a newline in an attribute into a space), without
/// the characters XML 1.0 forbids. The writer escapes `<`, `&` and quotes.
fn attribute(value: &str) -> String {
    text::one_line(value).into_owned()
}

/// Text for a CDATA section, which junit-report writes as is: without the characters XML 1.0
/// forbids, and with each `]]>` split across two sections, the only way to have it in CDATA.
fn cdata(value: &str) -> String {
    text::multi_line(value).replace("]]>", "]]]]><![CDATA[>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Failure, Flow, TranscriptLine};

    fn result(id: &str, pack: &str, outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            judges: Default::default(),
            id: id.into(),
            title: "a title".into(),
            pack: pack.into(),
            file: format!("{pack}/{id}.yaml"),
            direction: "ref→sut".into(),
            spec: vec![],
            tags: vec![],
            outcome,
            failure: None,
            attempts: 1,
            duration_ms: 1_500,
            transcript: vec![],
            federation: vec![],
        }
    }

    fn report(results: Vec<ScenarioResult>) -> RunReport {
        RunReport {
            target: "sut".into(),
            protocol: "xmpp".into(),
            imfed_version: "0.1.0".into(),
            started_ms: 1_700_000_000_000,
            duration_ms: 3_000,
            interrupted: false,
            results,
        }
    }

    #[test]
    fn packs_keep_first_appearance_order() {
        let report = report(vec![
            result("a", "zeta", Outcome::Pass),
            result("b", "alpha", Outcome::Pass),
            result("c", "zeta", Outcome::Pass),
        ]);
        let packs = packs(&report);
        let names: Vec<_> = packs
            .iter()
            .map(|(pack, results)| (*pack, results.len()))
            .collect();
        assert_eq!(names, [("zeta", 2), ("alpha", 1)]);
    }

    #[test]
    fn cdata_end_is_split_and_forbidden_chars_escaped() {
        let value = "a]]>b\u{1}c\u{FFFE}";
        let escaped = cdata(value);
        assert_eq!(escaped, "a]]]]><![CDATA[>b\\u{1}c\\u{fffe}");
        // Reading the two sections back gives the text as displayed.
        assert_eq!(
            escaped.replace("]]]]><![CDATA[>", "]]>"),
            "a]]>b\\u{1}c\\u{fffe}"
        );
    }

    #[test]
    fn failure_message_is_one_line_and_escaped_by_the_writer() {
        let mut failed = result("f", "core", Outcome::Fail);
        failed.failure = Some(Failure {
            judges: None,
            step: 2,
            step_label: "expect \"bob\" <message>".into(),
            message: "wrong body:\nfoo & bar".into(),
            awaited: None,
            arrived: vec![],
        });
        failed.transcript.push(TranscriptLine {
            t_ms: 3,
            actor: "bob".into(),
            flow: Flow::Received,
            text: "<body>]]></body>".into(),
        });
        let xml = render(&report(vec![failed])).unwrap();
        assert!(
            xml.contains(
                r#"message="step 2 (expect &quot;bob&quot; &lt;message&gt;): wrong body:\nfoo &amp; bar""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains("+3ms bob ⇐ <body>]]]]><![CDATA[></body>"),
            "{xml}"
        );
    }

    #[test]
    fn timestamp_is_the_run_start() {
        let xml = render(&report(vec![result("a", "core", Outcome::Pass)])).unwrap();
        assert!(xml.contains(r#"timestamp="2023-11-14T22:13:20Z""#), "{xml}");
        assert!(xml.contains(r#"time="1.5""#), "{xml}");
    }

    #[test]
    fn empty_report_is_an_empty_testsuites() {
        let xml = render(&report(vec![])).unwrap();
        assert!(xml.ends_with("<testsuites/>"), "{xml}");
    }
}
