//! The expectations file a vendor owns: scenarios its implementation is known to fail, each
//! with the reason; an expected failure that passes is an unexpected pass and fails the run.
//!
//! ```yaml
//! expected_failures:
//!   - id: rfc6121-probe-unsubscribed     # scenario id
//!     direction: ref→sut                # optional: ref→sut, sut→ref (or ref->sut, sut->ref)
//!     reason: "answers probes from strangers with nothing; RFC 6121 §4.3.2 says SHOULD unsubscribed"
//!     link: https://issues.example/123   # optional
//!     expires: 2027-06-30                # optional: after this date the entry is ignored
//! ```

use std::path::Path;

use imfed_reports::{Outcome, ScenarioResult};
use serde::Deserialize;

use crate::scenario::load::{InputError, read_yaml};

/// One known failure.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailure {
    /// The scenario id.
    pub id: String,
    /// Only this direction (default both).
    #[serde(default)]
    pub direction: Option<String>,
    /// Why it fails, with the spec section.
    pub reason: String,
    /// A bug report.
    #[serde(default)]
    pub link: Option<String>,
    /// YYYY-MM-DD after which the entry no longer applies.
    #[serde(default)]
    pub expires: Option<String>,
}

/// The file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// Known failures.
    #[serde(default)]
    pub expected_failures: Vec<ExpectedFailure>,
}

fn normalize_direction(direction: &str) -> String {
    direction.replace("->", "→")
}

/// Today as YYYY-MM-DD (UTC), from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

impl Expectations {
    /// Reads and checks an expectations file.
    ///
    /// # Errors
    /// [`InputError`] naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<Expectations, InputError> {
        let expectations: Expectations = read_yaml(path)?;
        for entry in &expectations.expected_failures {
            if entry.reason.trim().is_empty() {
                return Err(InputError::at(
                    path,
                    0,
                    0,
                    format!("expected failure {}: a reason is required", entry.id),
                ));
            }
            if let Some(direction) = &entry.direction {
                let direction = normalize_direction(direction);
                if direction != "ref→sut" && direction != "sut→ref" {
                    return Err(InputError::at(
                        path,
                        0,
                        0,
                        format!(
                            "expected failure {}: direction must be ref→sut or sut→ref",
                            entry.id
                        ),
                    ));
                }
            }
            if let Some(expires) = &entry.expires {
                let valid = expires.len() == 10
                    && expires.chars().enumerate().all(|(i, c)| {
                        if i == 4 || i == 7 {
                            c == '-'
                        } else {
                            c.is_ascii_digit()
                        }
                    });
                if !valid {
                    return Err(InputError::at(
                        path,
                        0,
                        0,
                        format!("expected failure {}: expires must be YYYY-MM-DD", entry.id),
                    ));
                }
            }
        }
        Ok(expectations)
    }

    /// Ids the file names that are not among `known` (stale entries).
    pub fn unknown_ids<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.expected_failures
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| !known.contains(id))
            .collect()
    }

    /// The entry for a result, if one applies.
    pub fn entry_for(&self, id: &str, direction: &str) -> Option<&ExpectedFailure> {
        let today = today();
        self.expected_failures.iter().find(|entry| {
            entry.id == id
                && entry
                    .direction
                    .as_deref()
                    .is_none_or(|d| normalize_direction(d) == direction)
                && entry.expires.as_deref().is_none_or(|e| e >= today.as_str())
        })
    }

    /// Turns a failure into an expected failure and a pass into an unexpected pass where the
    /// file says so.
    pub fn apply(&self, result: &mut ScenarioResult) {
        let Some(entry) = self.entry_for(&result.id, &result.direction) else {
            return;
        };
        let reason = match &entry.link {
            Some(link) => format!("{} ({link})", entry.reason),
            None => entry.reason.clone(),
        };
        result.outcome = match result.outcome {
            Outcome::Fail => Outcome::XFail { reason },
            Outcome::Pass | Outcome::Flaky { .. } => Outcome::XPass { reason },
            ref other => other.clone(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_a_date() {
        let today = today();
        assert_eq!(today.len(), 10);
        assert!(today.as_str() > "2020-01-01");
    }

    #[test]
    fn entries_apply_by_id_direction_and_expiry() {
        let expectations = Expectations {
            expected_failures: vec![
                ExpectedFailure {
                    id: "a".into(),
                    direction: Some("sut->ref".into()),
                    reason: "r".into(),
                    link: None,
                    expires: None,
                },
                ExpectedFailure {
                    id: "b".into(),
                    direction: None,
                    reason: "old".into(),
                    link: None,
                    expires: Some("2000-01-01".into()),
                },
            ],
        };
        assert!(expectations.entry_for("a", "sut→ref").is_some());
        assert!(expectations.entry_for("a", "ref→sut").is_none());
        assert!(expectations.entry_for("b", "ref→sut").is_none());
    }
}
