//! The interop matrix: scenarios × implementations, from several runs' reports, as HTML,
//! Markdown and JSON, plus the comparison of its cells with a committed baseline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{Outcome, RunReport, ScenarioResult};
use crate::text;

/// One cell: how one scenario in one direction ended on one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// pass, flaky, fail, xfail, xpass, skipped or unsupported.
    pub outcome: String,
    /// The failure headline, the expected-failure reason, or the skip reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One row: a scenario in one direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Scenario id.
    pub id: String,
    /// ref→sut or sut→ref.
    pub direction: String,
    /// Title.
    pub title: String,
    /// Spec references, "RFC 6121 §3.1.3 MUST".
    pub spec: Vec<String>,
    /// Cells by target name.
    pub cells: BTreeMap<String, Cell>,
}

impl Row {
    /// "id [direction]".
    pub fn key(&self) -> String {
        format!("{} [{}]", self.id, self.direction)
    }
}

/// The matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matrix {
    /// Format version.
    pub schema_version: u32,
    /// Target names, in column order.
    pub targets: Vec<String>,
    /// Per target: pass, fail, ... counts and wall time.
    pub summary: BTreeMap<String, TargetSummary>,
    /// Rows in scenario order.
    pub rows: Vec<Row>,
}

/// Counts for one column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSummary {
    /// Counts by outcome label.
    pub outcomes: BTreeMap<String, usize>,
    /// Wall time of the target's run, milliseconds.
    pub duration_ms: u64,
}

impl TargetSummary {
    /// "pass 102, unsupported 2, xfail 2".
    pub fn counts(&self) -> String {
        let counts: Vec<String> = self
            .outcomes
            .iter()
            .map(|(outcome, n)| format!("{outcome} {n}"))
            .collect();
        counts.join(", ")
    }
}

fn cell_of(result: &ScenarioResult) -> Cell {
    let message = match &result.outcome {
        Outcome::XFail { reason } | Outcome::XPass { reason } => Some(reason.clone()),
        Outcome::Skipped { reason } => Some(reason.clone()),
        Outcome::Unsupported { .. } => result.outcome.unsupported_text(),
        Outcome::Fail | Outcome::Flaky { .. } => {
            result.failure.as_ref().map(text::failure_headline)
        }
        Outcome::Pass if result.reference_only() => Some(
            "passed, but every check judged only the reference server: no verdict on the \
             implementation"
                .into(),
        ),
        Outcome::Pass => None,
    };
    Cell {
        outcome: result.verdict().to_string(),
        message,
    }
}

impl Matrix {
    /// Builds the matrix from `(target name, report)` pairs, columns in the given order.
    pub fn build(runs: &[(String, RunReport)]) -> Matrix {
        let mut rows: Vec<Row> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut summary = BTreeMap::new();
        for (target, report) in runs {
            let mut column = TargetSummary {
                duration_ms: report.duration_ms,
                ..TargetSummary::default()
            };
            for result in &report.results {
                *column
                    .outcomes
                    .entry(result.verdict().to_string())
                    .or_default() += 1;
                let key = result.name();
                let row = *index.entry(key).or_insert_with(|| {
                    rows.push(Row {
                        id: result.id.clone(),
                        direction: result.direction.clone(),
                        title: result.title.clone(),
                        spec: result
                            .spec
                            .iter()
                            .map(|s| format!("{} {}", s.label(), s.level.as_str()))
                            .collect(),
                        cells: BTreeMap::new(),
                    });
                    rows.len() - 1
                });
                rows[row].cells.insert(target.clone(), cell_of(result));
            }
            summary.insert(target.clone(), column);
        }
        Matrix {
            schema_version: 1,
            targets: runs.iter().map(|(name, _)| name.clone()).collect(),
            summary,
            rows,
        }
    }

    /// The cells that differ from `baseline`: `(row key, target, before, after)`. A cell
    /// present on one side only counts as a change ("absent"). A pass on retry ("flaky")
    /// compares as a pass: it is reported, but it is not a change of behaviour.
    pub fn changes_from(&self, baseline: &Matrix) -> Vec<(String, String, String, String)> {
        let label = |matrix: &Matrix, key: &str, target: &str| -> String {
            matrix
                .rows
                .iter()
                .find(|row| row.key() == key)
                .and_then(|row| row.cells.get(target))
                .map_or("absent".to_string(), |cell| match cell.outcome.as_str() {
                    "flaky" => "pass".to_string(),
                    other => other.to_string(),
                })
        };
        let mut keys: Vec<String> = self.rows.iter().map(Row::key).collect();
        for row in &baseline.rows {
            if !keys.contains(&row.key()) {
                keys.push(row.key());
            }
        }
        let mut changes = Vec::new();
        for key in keys {
            for target in &self.targets {
                let (before, after) = (label(baseline, &key, target), label(self, &key, target));
                if before != after {
                    changes.push((key.clone(), target.clone(), before, after));
                }
            }
        }
        changes
    }
}

/// The matrix as JSON.
pub fn to_json(matrix: &Matrix) -> String {
    let mut text = serde_json::to_string_pretty(matrix).expect("matrix serializes");
    text.push('\n');
    text
}

/// Reads a matrix written by [`to_json`].
///
/// # Errors
/// The JSON error.
pub fn from_json(text: &str) -> Result<Matrix, serde_json::Error> {
    serde_json::from_str(text)
}

fn md_escape(text: &str) -> String {
    text::one_line(text).replace('|', "\\|")
}

/// The matrix as a Markdown table, failures listed under it.
pub fn to_markdown(matrix: &Matrix) -> String {
    let mut out = String::from("# imfed interop matrix\n\n");
    out.push_str("| target | outcomes | wall time |\n");
    let _ = writeln!(out, "| --- | --- | --- |");
    for target in &matrix.targets {
        let column = &matrix.summary[target];
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            md_escape(target),
            column.counts(),
            text::duration(column.duration_ms)
        );
    }
    out.push('\n');
    let _ = write!(out, "| scenario | direction |");
    for target in &matrix.targets {
        let _ = write!(out, " {} |", md_escape(target));
    }
    out.push('\n');
    out.push_str("| --- | --- |");
    for _ in &matrix.targets {
        out.push_str(" --- |");
    }
    out.push('\n');
    let mut notes = Vec::new();
    for row in &matrix.rows {
        let _ = write!(out, "| `{}` | {} |", row.id, row.direction);
        for target in &matrix.targets {
            match row.cells.get(target) {
                Some(cell) => {
                    let mark = match cell.outcome.as_str() {
                        "fail" | "xpass" => cell.outcome.to_uppercase(),
                        other => other.to_string(),
                    };
                    if let Some(message) = &cell.message {
                        notes.push(format!(
                            "{}. `{}` on {}: {} — {}",
                            notes.len() + 1,
                            row.key(),
                            md_escape(target),
                            cell.outcome,
                            md_escape(message)
                        ));
                        let _ = write!(out, " {mark} [{}] |", notes.len());
                    } else {
                        let _ = write!(out, " {mark} |");
                    }
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    if !notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text::multi_line(text).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The anchor of a cell's details section.
fn details_id(row: usize, column: usize) -> String {
    format!("d{row}-{column}")
}

/// The matrix as a self-contained HTML page. Every cell that is not a pass links to a
/// section with its failure, transcript and federation log, taken from `runs`; each
/// target's own JUnit and JSON reports are linked as `<target>/junit.xml` and
/// `<target>/results.json` next to the page.
pub fn to_html(matrix: &Matrix, runs: &[(String, RunReport)]) -> String {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>imfed interop matrix</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\n\
         table{border-collapse:collapse;font-size:14px}\n\
         th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\n\
         th{background:#f3f3f3;position:sticky;top:0}\n\
         td.pass{background:#d9f2d9}td.flaky{background:#f2ecc9}\n\
         td.fail,td.xpass{background:#f7c6c6;font-weight:bold}\n\
         td.xfail{background:#f9e3c4}td.skipped,td.unsupported{background:#e6e6e6;color:#555}\n\
         td.absent{color:#aaa}\n\
         td a{color:inherit}\n\
         .spec{color:#666;font-size:12px}\n\
         pre{white-space:pre-wrap;font-size:12px;background:#fafafa;border:1px solid #ddd;padding:6px}\n\
         .hidden{display:none}\n\
         </style>\n</head>\n<body>\n<h1>imfed interop matrix</h1>\n",
    );
    out.push_str("<table id=\"summary\">\n<tr><th>target</th><th>outcomes</th><th>wall time</th><th>reports</th></tr>\n");
    for target in &matrix.targets {
        let column = &matrix.summary[target];
        let t = html_escape(target);
        let _ = writeln!(
            out,
            "<tr><td>{t}</td><td>{}</td><td>{}</td><td><a href=\"{t}/junit.xml\">JUnit</a> · <a href=\"{t}/results.json\">JSON</a></td></tr>",
            column.counts(),
            text::duration(column.duration_ms)
        );
    }
    out.push_str("</table>\n<p><label><input type=\"checkbox\" id=\"only-problems\"> show only rows with a failure, expected failure or skip</label></p>\n");
    out.push_str("<table id=\"matrix\">\n<tr><th>scenario</th><th>direction</th>");
    for target in &matrix.targets {
        let _ = write!(out, "<th>{}</th>", html_escape(target));
    }
    out.push_str("</tr>\n");
    let mut details = String::new();
    for (r, row) in matrix.rows.iter().enumerate() {
        let problem = row.cells.values().any(|c| c.outcome != "pass");
        let _ = write!(
            out,
            "<tr class=\"row{}\"><td><code>{}</code><div class=\"spec\">{} — {}</div></td><td>{}</td>",
            if problem { " problem" } else { "" },
            html_escape(&row.id),
            html_escape(&row.title),
            html_escape(&row.spec.join(", ")),
            html_escape(&row.direction)
        );
        for (c, target) in matrix.targets.iter().enumerate() {
            let Some(cell) = row.cells.get(target) else {
                out.push_str("<td class=\"absent\">–</td>");
                continue;
            };
            let attrs = format!(
                "class=\"{o}\" data-scenario=\"{}\" data-direction=\"{}\" data-target=\"{}\" data-outcome=\"{o}\"",
                html_escape(&row.id),
                html_escape(&row.direction),
                html_escape(target),
                o = html_escape(&cell.outcome)
            );
            if cell.outcome == "pass" {
                let _ = write!(out, "<td {attrs}>pass</td>");
                continue;
            }
            let id = details_id(r, c);
            let title = cell.message.as_deref().map(html_escape).unwrap_or_default();
            let _ = write!(
                out,
                "<td {attrs} title=\"{title}\"><a href=\"#{id}\">{}</a></td>",
                html_escape(&cell.outcome)
            );
            let result = runs
                .iter()
                .find(|(name, _)| name == target)
                .and_then(|(_, report)| {
                    report
                        .results
                        .iter()
                        .find(|res| res.id == row.id && res.direction == row.direction)
                });
            let _ = write!(
                details,
                "<section id=\"{id}\"><h3>{} on {}: {}</h3>\n<p>{}</p>\n",
                html_escape(&row.key()),
                html_escape(target),
                html_escape(&cell.outcome),
                title
            );
            if let Some(result) = result {
                if let Some(failure) = &result.failure {
                    let _ = writeln!(
                        details,
                        "<pre>{}</pre>",
                        html_escape(&text::failure_detail(failure))
                    );
                }
                if !result.transcript.is_empty() {
                    let lines: Vec<String> = result
                        .transcript
                        .iter()
                        .map(text::transcript_line)
                        .collect();
                    let _ = writeln!(
                        details,
                        "<details open><summary>transcript</summary><pre>{}</pre></details>",
                        html_escape(&lines.join("\n"))
                    );
                }
                if !result.federation.is_empty() {
                    let lines: Vec<String> =
                        result.federation.iter().map(text::link_line).collect();
                    let _ = writeln!(
                        details,
                        "<details><summary>federation link</summary><pre>{}</pre></details>",
                        html_escape(&lines.join("\n"))
                    );
                }
            }
            details.push_str("</section>\n");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n<h2>Details</h2>\n");
    out.push_str(&details);
    out.push_str(
        "<script>\n\
         document.getElementById('only-problems').addEventListener('change', function (e) {\n\
           document.querySelectorAll('#matrix tr.row').forEach(function (tr) {\n\
             tr.classList.toggle('hidden', e.target.checked && !tr.classList.contains('problem'));\n\
           });\n\
         });\n\
         document.body.dataset.rendered = document.querySelectorAll('#matrix td[data-outcome]').length;\n\
         </script>\n</body>\n</html>\n",
    );
    out
}
