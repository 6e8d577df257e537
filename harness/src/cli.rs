//! The `imfed` command line: `run`, `list`, `validate`, `schema`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use imfed_reports::terminal::{TerminalStyle, progress_line, summary};
use imfed_reports::{Counts, RunReport};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::exit_code;
use crate::expectations::Expectations;
use crate::filter::Filter;
use crate::runner::env::Environment;
use crate::runner::{self, RunOptions};
use crate::scenario::load::{LoadedScenario, load_all};
use crate::target::{LoginTls, TargetSpec};

/// Conformance and interoperability tests for federated instant messaging and presence.
///
/// `imfed run` with no arguments runs the core pack against the built-in reference target
/// (two imfed-servers on loopback, one playing the implementation under test).
#[derive(Debug, Parser)]
#[command(name = "imfed", version, about, long_about, after_help = exit_code::TABLE)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios against a target and write reports.
    Run(RunArgs),
    /// List the scenarios that a run would select.
    List(SelectArgs),
    /// Check scenario files without running anything.
    Validate(SelectArgs),
    /// Print the JSON Schema of scenario files.
    Schema,
}

/// Which scenarios.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Scenario files or folders (default: the core pack, `scenarios/core`).
    pub paths: Vec<PathBuf>,

    /// Select scenarios: `id:GLOB` (or a bare glob), `tag:NAME`, `spec:RFC 6121 §3.1`,
    /// `level:MUST`; `|` separates alternatives; repeated filters must all match.
    #[arg(long, value_name = "EXPR")]
    pub filter: Vec<Filter>,
}

/// `imfed run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Which scenarios.
    #[command(flatten)]
    pub select: SelectArgs,

    /// The implementation under test: `reference` or a target file.
    #[arg(long, default_value = "reference", value_name = "reference|FILE")]
    pub target: String,

    /// JUnit XML report.
    #[arg(long, value_name = "PATH", default_value = "target/imfed/junit.xml")]
    pub junit: PathBuf,

    /// JSON results.
    #[arg(long, value_name = "PATH", default_value = "target/imfed/results.json")]
    pub json: PathBuf,

    /// Scenarios run at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,

    /// Rerun a failing scenario up to N times; a later pass is reported as flaky.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,

    /// The target's expectations file (known failures with reasons).
    #[arg(long, value_name = "FILE")]
    pub expectations: Option<PathBuf>,

    /// STARTTLS for the built-in reference target.
    #[arg(long, value_enum, default_value = "optional", value_name = "MODE")]
    pub reference_tls: ReferenceTls,

    /// Misbehaviour switch for the server playing the implementation under test in the
    /// built-in reference target (repeatable; for testing the suite itself).
    #[arg(long, value_name = "SWITCH")]
    pub misbehave: Vec<String>,
}

/// STARTTLS policy of the built-in reference target.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReferenceTls {
    /// Plaintext.
    Never,
    /// STARTTLS when offered (it always is).
    Optional,
    /// STARTTLS required on every stream.
    Required,
}

/// The scenarios root shipped with imfed, for when `scenarios/` is not in the working
/// directory.
fn default_paths() -> Vec<PathBuf> {
    let local = PathBuf::from("scenarios/core");
    if local.is_dir() {
        return vec![local];
    }
    vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/core")]
}

fn select(args: &SelectArgs) -> Result<Vec<LoadedScenario>, u8> {
    let paths = if args.paths.is_empty() {
        default_paths()
    } else {
        args.paths.clone()
    };
    let loaded = match load_all(&paths) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!(
                "imfed: {} error(s) in scenario files; nothing was run",
                errors.len()
            );
            return Err(exit_code::USAGE);
        }
    };
    Ok(loaded
        .into_iter()
        .filter(|s| args.filter.iter().all(|f| f.matches(&s.scenario)))
        .collect())
}

fn color_on(stream_is_tty: bool) -> bool {
    stream_is_tty && std::env::var_os("NO_COLOR").is_none()
}

/// Runs the command line; returns the exit code.
pub async fn main(cli: Cli, cancel: CancellationToken) -> u8 {
    match cli.command {
        Command::Schema => {
            print!("{}", crate::scenario::json_schema());
            exit_code::SUCCESS
        }
        Command::Validate(args) => match select(&args) {
            Ok(scenarios) => {
                let runs: usize = scenarios
                    .iter()
                    .map(|s| 1 + usize::from(s.scenario.both_directions))
                    .sum();
                println!("{} scenario files valid ({runs} runs)", scenarios.len());
                exit_code::SUCCESS
            }
            Err(code) => code,
        },
        Command::List(args) => match select(&args) {
            Ok(scenarios) => {
                for loaded in scenarios {
                    let s = &loaded.scenario;
                    let spec: Vec<String> = s
                        .spec
                        .iter()
                        .map(|r| format!("{} §{}", r.doc, r.section))
                        .collect();
                    println!(
                        "{:<44} {:<5} {}{}",
                        s.id,
                        loaded.pack,
                        spec.join(", "),
                        if s.both_directions {
                            "  (both directions)"
                        } else {
                            ""
                        }
                    );
                }
                exit_code::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run(args) => run(args, cancel).await,
    }
}

async fn run(args: RunArgs, cancel: CancellationToken) -> u8 {
    let scenarios = match select(&args.select) {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let mut target = match TargetSpec::parse(&args.target) {
        Ok(target) => target,
        Err(error) => {
            eprintln!("{error}");
            return exit_code::USAGE;
        }
    };
    if let TargetSpec::Reference { tls, misbehave } = &mut target {
        *tls = match args.reference_tls {
            ReferenceTls::Never => LoginTls::Never,
            ReferenceTls::Optional => LoginTls::Optional,
            ReferenceTls::Required => LoginTls::Required,
        };
        *misbehave = args.misbehave.clone();
    } else if !args.misbehave.is_empty() {
        eprintln!("imfed: --misbehave applies to the reference target only");
        return exit_code::USAGE;
    }
    let expectations = match &args.expectations {
        Some(path) => match Expectations::load(path) {
            Ok(expectations) => expectations,
            Err(error) => {
                eprintln!("{error}");
                return exit_code::USAGE;
            }
        },
        None => Expectations::default(),
    };
    let known: Vec<&str> = scenarios.iter().map(|s| s.scenario.id.as_str()).collect();
    for stale in expectations.unknown_ids(&known) {
        eprintln!(
            "imfed: note: expectations name {stale:?}, which is not among the selected scenarios"
        );
    }
    let jobs = runner::jobs(&scenarios);
    eprintln!(
        "imfed: {} scenarios ({} runs) against {}",
        scenarios.len(),
        jobs.len(),
        target.name()
    );
    let env = tokio::select! {
        env = Environment::start(&target) => env,
        () = cancel.cancelled() => return exit_code::INTERRUPTED,
    };
    let env = match env {
        Ok(env) => Arc::new(env),
        Err(error) => {
            eprintln!("imfed: target unavailable: {error}");
            return exit_code::TARGET_UNAVAILABLE;
        }
    };
    let stderr_style = TerminalStyle {
        color: color_on(std::io::stderr().is_terminal()),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(result) = rx.recv().await {
            eprintln!("{}", progress_line(&result, stderr_style));
        }
    });
    let options = RunOptions {
        jobs: args.jobs,
        retries: args.retries,
    };
    let report = runner::run(
        env.clone(),
        jobs,
        options,
        Arc::new(expectations),
        tx,
        cancel.clone(),
    )
    .await;
    let _ = printer.await;
    match Arc::try_unwrap(env) {
        Ok(env) => {
            let _ = tokio::time::timeout(runner::STOP_BOUND, env.stop()).await;
        }
        Err(_) => tracing::warn!("environment still in use; not stopped cleanly"),
    }
    finish(&report, &args)
}

fn write_report(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
}

fn finish(report: &RunReport, args: &RunArgs) -> u8 {
    let mut code = exit_code::SUCCESS;
    let junit = imfed_reports::junit::render(report).map_err(|e| e.to_string());
    for (path, contents) in [
        (&args.junit, junit),
        (&args.json, Ok(imfed_reports::json::render(report))),
    ] {
        if let Err(error) = contents.and_then(|c| write_report(path, &c)) {
            eprintln!("imfed: cannot write report: {error}");
            code = exit_code::REPORT_FAILED;
        }
    }
    let style = TerminalStyle {
        color: color_on(std::io::stdout().is_terminal()),
    };
    print!("{}", summary(report, style));
    if code != exit_code::SUCCESS {
        return code;
    }
    if report.interrupted {
        return exit_code::INTERRUPTED;
    }
    if Counts::of(&report.results).failed > 0 {
        exit_code::FAILURES
    } else {
        exit_code::SUCCESS
    }
}
