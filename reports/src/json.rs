//! The JSON results file: the [`RunReport`] as it is, plus a `schema_version` and the run's
//! [`Counts`] for readers that want the totals without recounting.
//!
//! ```json
//! { "schema_version": 1, "target": "...", ..., "results": [...], "counts": { "passed": 3, ... } }
//! ```
//!
//! The text is kept exact (no escaping for display), so the interop matrix can combine files.

use serde::{Deserialize, Serialize};

use crate::model::{Counts, RunReport};

/// The version of the file's layout, written as `schema_version` and checked on reading.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    #[serde(flatten)]
    report: &'a RunReport,
    counts: Counts,
}

#[derive(Deserialize)]
struct ReadDocument {
    schema_version: u32,
    // `counts` is derived data: it lands among the report's unknown fields and is dropped.
    #[serde(flatten)]
    report: RunReport,
}

/// The report as pretty-printed JSON, ending with a newline.
pub fn render(report: &RunReport) -> String {
    let document = Document {
        schema_version: SCHEMA_VERSION,
        report,
        counts: Counts::of(&report.results),
    };
    let mut text = serde_json::to_string_pretty(&document)
        .expect("a RunReport has only string keys and no floats, so it always serializes");
    text.push('\n');
    text
}

/// Reads back a report written by [`render`], ignoring its `counts`.
///
/// # Errors
///
/// A [`serde_json::Error`] if `text` is not JSON of that shape, or if its `schema_version` is
/// not [`SCHEMA_VERSION`].
pub fn parse(text: &str) -> Result<RunReport, serde_json::Error> {
    let document: ReadDocument = serde_json::from_str(text)?;
    if document.schema_version != SCHEMA_VERSION {
        return Err(serde::de::Error::custom(format_args!(
            "unsupported schema_version {} (this imfed reads {SCHEMA_VERSION})",
            document.schema_version
        )));
    }
    Ok(document.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, ScenarioResult};

    fn report() -> RunReport {
        RunReport {
            target: "sut".into(),
            protocol: "xmpp".into(),
            imfed_version: "0.1.0".into(),
            started_ms: 1,
            duration_ms: 2,
            interrupted: false,
            results: vec![ScenarioResult {
                judges: Default::default(),
                id: "a".into(),
                title: "A".into(),
                pack: "core".into(),
                file: "core/a.yaml".into(),
                direction: "ref→sut".into(),
                spec: vec![],
                tags: vec![],
                outcome: Outcome::Skipped {
                    reason: "filtered".into(),
                },
                failure: None,
                attempts: 0,
                duration_ms: 0,
                transcript: vec![],
                federation: vec![],
            }],
        }
    }

    #[test]
    fn writes_version_first_and_counts() {
        let text = render(&report());
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(text.starts_with("{\n  \"schema_version\": 1,"), "{text}");
        assert_eq!(value["counts"]["skipped"], 1);
        assert_eq!(value["results"][0]["outcome"]["kind"], "skipped");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn round_trips() {
        assert_eq!(parse(&render(&report())).unwrap(), report());
    }

    #[test]
    fn rejects_other_schema_versions() {
        let text = render(&report()).replace("\"schema_version\": 1", "\"schema_version\": 2");
        let error = parse(&text).unwrap_err();
        assert!(error.to_string().contains("schema_version 2"), "{error}");
        let text = render(&report()).replace("\"schema_version\": 1,", "");
        assert!(parse(&text).is_err());
    }
}
