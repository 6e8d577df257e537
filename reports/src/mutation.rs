//! The mutation table: the scenarios of a pack against deliberately broken servers
//! (mutants), and for each scenario the mutants that make it fail ("kill" it). A scenario no
//! mutant kills cannot be shown able to fail: it is a gap. The share of scenarios killed is
//! the mutation score.
//!
//! Pure: built from run reports (the pack against a correct server, then against each
//! mutant), rendered as text, Markdown and JSON, and compared with a committed baseline so
//! that a scenario that stops being able to fail is noticed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{RunReport, ScenarioResult};
use crate::text;

/// One scenario's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationRow {
    /// The scenario id.
    pub id: String,
    /// The mutants that kill it, each with the directions in which it failed.
    pub killed_by: BTreeMap<String, Vec<String>>,
    /// For each killing mutant, the first failure's headline (which step, what happened).
    /// Not part of the JSON: it names the run's random accounts.
    #[serde(skip)]
    pub how: BTreeMap<String, String>,
}

/// The whole table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutationTable {
    /// Format version of this file.
    pub schema_version: u32,
    /// The mutants, in column order.
    pub mutants: Vec<String>,
    /// One row per scenario, in pack order.
    pub rows: Vec<MutationRow>,
}

impl MutationTable {
    /// Builds the table from each mutant's run of the pack.
    pub fn build(runs: &[(String, RunReport)]) -> MutationTable {
        let mut rows: Vec<MutationRow> = Vec::new();
        for (mutant, report) in runs {
            for result in &report.results {
                let row = match rows.iter().position(|row| row.id == result.id) {
                    Some(index) => &mut rows[index],
                    None => {
                        rows.push(MutationRow {
                            id: result.id.clone(),
                            killed_by: BTreeMap::new(),
                            how: BTreeMap::new(),
                        });
                        rows.last_mut().expect("just pushed")
                    }
                };
                if killed(result) {
                    row.killed_by
                        .entry(mutant.clone())
                        .or_default()
                        .push(result.direction.clone());
                    if let Some(failure) = &result.failure {
                        row.how
                            .entry(mutant.clone())
                            .or_insert_with(|| text::failure_headline(failure));
                    }
                }
            }
        }
        MutationTable {
            schema_version: 1,
            mutants: runs.iter().map(|(name, _)| name.clone()).collect(),
            rows,
        }
    }

    /// Scenarios no mutant kills.
    pub fn gaps(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|row| row.killed_by.is_empty())
            .map(|row| row.id.as_str())
            .collect()
    }

    /// Mutants that kill no scenario.
    pub fn undetected(&self) -> Vec<&str> {
        self.mutants
            .iter()
            .filter(|mutant| {
                !self
                    .rows
                    .iter()
                    .any(|row| row.killed_by.contains_key(*mutant))
            })
            .map(String::as_str)
            .collect()
    }

    /// (scenarios killed, scenarios).
    pub fn score(&self) -> (usize, usize) {
        let killed = self.rows.iter().filter(|r| !r.killed_by.is_empty()).count();
        (killed, self.rows.len())
    }

    /// "mutation score: 53 of 53 scenarios killed by at least one mutant (100%)".
    pub fn score_line(&self) -> String {
        let (killed, all) = self.score();
        format!(
            "mutation score: {killed} of {all} scenarios killed by at least one of {} mutants ({:.0}%)",
            self.mutants.len(),
            if all == 0 {
                0.0
            } else {
                100.0 * killed as f64 / all as f64
            }
        )
    }

    /// What got worse than `baseline`: a scenario that a mutant killed there and no longer
    /// kills here, as "scenario: no longer killed by mutant". Scenarios absent here are not
    /// compared (a run may select a subset), nor are the mutants in `unheld` (whose kills
    /// depend on timing).
    pub fn lost_kills(&self, baseline: &MutationTable, unheld: &[&str]) -> Vec<String> {
        let mut lost = Vec::new();
        for before in &baseline.rows {
            let Some(now) = self.rows.iter().find(|row| row.id == before.id) else {
                continue;
            };
            for mutant in before.killed_by.keys() {
                if self.mutants.contains(mutant)
                    && !unheld.contains(&mutant.as_str())
                    && !now.killed_by.contains_key(mutant)
                {
                    lost.push(format!("{}: no longer killed by {mutant}", before.id));
                }
            }
        }
        lost
    }

    /// What got better than `baseline`: kills it did not have.
    pub fn new_kills(&self, baseline: &MutationTable) -> Vec<String> {
        let mut gained = Vec::new();
        for now in &self.rows {
            let before: BTreeSet<&String> = baseline
                .rows
                .iter()
                .find(|row| row.id == now.id)
                .map(|row| row.killed_by.keys().collect())
                .unwrap_or_default();
            for mutant in now.killed_by.keys() {
                if !before.contains(mutant) {
                    gained.push(format!("{}: now killed by {mutant}", now.id));
                }
            }
        }
        gained
    }
}

/// Whether a result counts as killed: it failed (an unexpected pass is no kill).
fn killed(result: &ScenarioResult) -> bool {
    result.outcome == crate::model::Outcome::Fail
}

/// The table as terminal text: the mutants numbered, a row per scenario with an `x` under
/// each mutant that kills it, then the gaps and the mutants no scenario detects (the caller
/// prints the score line last).
pub fn to_text(table: &MutationTable) -> String {
    let mut out = String::from("mutants:\n");
    for (index, mutant) in table.mutants.iter().enumerate() {
        let kills = table
            .rows
            .iter()
            .filter(|row| row.killed_by.contains_key(mutant))
            .count();
        let _ = writeln!(out, "  {:>2}  {mutant} (kills {kills})", index + 1);
    }
    out.push('\n');
    let width = table.rows.iter().map(|r| r.id.len()).max().unwrap_or(8);
    let _ = write!(out, "{:width$}", "scenario");
    for index in 0..table.mutants.len() {
        let _ = write!(out, " {:>2}", index + 1);
    }
    out.push_str("  killed by\n");
    for row in &table.rows {
        let _ = write!(out, "{:width$}", row.id);
        for mutant in &table.mutants {
            let mark = if row.killed_by.contains_key(mutant) {
                "x"
            } else {
                "."
            };
            let _ = write!(out, " {mark:>2}");
        }
        let _ = writeln!(out, "  {}", row.killed_by.len());
    }
    out.push('\n');
    let gaps = table.gaps();
    if gaps.is_empty() {
        out.push_str("gaps: none (every scenario is killed by at least one mutant)\n");
    } else {
        let _ = writeln!(out, "gaps (no mutant kills them): {}", gaps.join(", "));
    }
    let undetected = table.undetected();
    if !undetected.is_empty() {
        let _ = writeln!(
            out,
            "mutants no scenario detects: {}",
            undetected.join(", ")
        );
    }
    out
}

/// The table as Markdown, with how each kill happened.
pub fn to_markdown(table: &MutationTable) -> String {
    let mut out = String::from("# imfed mutation table\n\n");
    let _ = writeln!(out, "{}\n", table.score_line());
    out.push_str("| scenario |");
    for index in 0..table.mutants.len() {
        let _ = write!(out, " {} |", index + 1);
    }
    out.push_str(" killed by |\n| --- |");
    for _ in &table.mutants {
        out.push_str(" --- |");
    }
    out.push_str(" --- |\n");
    for row in &table.rows {
        let _ = write!(out, "| `{}` |", row.id);
        for mutant in &table.mutants {
            out.push_str(if row.killed_by.contains_key(mutant) {
                " x |"
            } else {
                "   |"
            });
        }
        let _ = writeln!(out, " {} |", row.killed_by.len());
    }
    out.push_str("\n| # | mutant |\n| --- | --- |\n");
    for (index, mutant) in table.mutants.iter().enumerate() {
        let _ = writeln!(out, "| {} | `{mutant}` |", index + 1);
    }
    out.push_str("\n## How each mutant kills each scenario\n\n");
    for row in &table.rows {
        for (mutant, how) in &row.how {
            let _ = writeln!(
                out,
                "- `{}` by `{mutant}`: {}",
                row.id,
                how.replace('|', "\\|")
            );
        }
    }
    out
}

/// The table as JSON (the baseline format).
pub fn to_json(table: &MutationTable) -> String {
    let mut text = serde_json::to_string_pretty(table).expect("the table serializes");
    text.push('\n');
    text
}

/// Reads a table written by [`to_json`].
///
/// # Errors
/// The JSON error.
pub fn from_json(text: &str) -> Result<MutationTable, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Failure, Outcome};

    fn result(id: &str, direction: &str, outcome: Outcome) -> ScenarioResult {
        ScenarioResult {
            id: id.into(),
            title: String::new(),
            pack: "core".into(),
            file: String::new(),
            direction: direction.into(),
            spec: vec![],
            tags: vec![],
            failure: (outcome == Outcome::Fail).then(|| Failure::new(3, "expect bob", "nothing")),
            outcome,
            judges: Default::default(),
            attempts: 1,
            duration_ms: 1,
            transcript: vec![],
            federation: vec![],
        }
    }

    fn report(results: Vec<ScenarioResult>) -> RunReport {
        RunReport {
            target: "reference".into(),
            protocol: "xmpp".into(),
            imfed_version: "0".into(),
            started_ms: 0,
            duration_ms: 0,
            interrupted: false,
            results,
        }
    }

    #[test]
    fn kills_gaps_score_and_baseline() {
        let table = MutationTable::build(&[
            (
                "drop".into(),
                report(vec![
                    result("a", "ref→sut", Outcome::Fail),
                    result("a", "sut→ref", Outcome::Pass),
                    result("b", "ref→sut", Outcome::Pass),
                ]),
            ),
            (
                "dup".into(),
                report(vec![
                    result("a", "ref→sut", Outcome::Pass),
                    result("a", "sut→ref", Outcome::Fail),
                    result("b", "ref→sut", Outcome::Pass),
                ]),
            ),
        ]);
        assert_eq!(table.gaps(), vec!["b"]);
        assert!(table.undetected().is_empty());
        assert_eq!(table.score(), (1, 2));
        assert_eq!(table.rows[0].killed_by["dup"], vec!["sut→ref".to_string()]);
        assert_eq!(table.rows[0].how["drop"], "step 3 (expect bob): nothing");
        let text = to_text(&table);
        assert!(text.contains("gaps (no mutant kills them): b"), "{text}");
        assert_eq!(
            table.score_line(),
            "mutation score: 1 of 2 scenarios killed by at least one of 2 mutants (50%)"
        );
        let back = from_json(&to_json(&table)).unwrap();
        assert_eq!(back.rows[0].killed_by, table.rows[0].killed_by);
        assert!(back.rows[0].how.is_empty(), "how is not part of the JSON");
        let mut weaker = table.clone();
        weaker.rows[0].killed_by.remove("drop");
        assert_eq!(
            weaker.lost_kills(&table, &[]),
            vec!["a: no longer killed by drop"]
        );
        assert!(weaker.lost_kills(&table, &["drop"]).is_empty());
        assert_eq!(table.new_kills(&weaker), vec!["a: now killed by drop"]);
        assert!(table.lost_kills(&table, &[]).is_empty());
        assert!(to_markdown(&table).contains("| `a` | x | x | 2 |"));
    }
}
