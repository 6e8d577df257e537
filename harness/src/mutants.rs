//! `imfed mutants`: the mutation table of a pack. The pack runs against the built-in
//! reference target once as it is (the control: every scenario must pass, or a kill means
//! nothing) and once per mutant, a deliberately broken server playing the implementation
//! (`imfed_server::faults`); a scenario that fails against a mutant is killed by it. Each
//! mutant gets its own environment, and they all run at once. The table, its gaps and the
//! mutation score are printed and written as JSON and Markdown; with `--baseline`, a
//! scenario that a committed table says a mutant kills and that it no longer kills fails the
//! command, as does any gap.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use imfed_reports::RunReport;
use imfed_reports::mutation::{self, MutationTable};
use imfed_server::faults::{FaultProtocol, Switch};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::{SelectArgs, read_baseline, select, write_report};
use crate::driver::Profile;
use crate::exit_code;
use crate::expectations::Expectations;
use crate::runner::env::{Environment, FaultPlan};
use crate::runner::{self, RunOptions};
use crate::target::{LoginTls, TargetSpec};

/// `imfed mutants`.
#[derive(Debug, Args)]
pub struct MutantsArgs {
    /// Which scenarios.
    #[command(flatten)]
    pub select: SelectArgs,

    /// A mutant to run (repeatable; default: with --baseline, the mutants of that table;
    /// else, and with --update-baseline, every fault of imfed-server that breaks its
    /// behaviour as a server).
    #[arg(long = "mutant", value_name = "SWITCH")]
    pub mutants: Vec<String>,

    /// The protocol of the reference target, and so of the mutants: each protocol's
    /// front-end has its own faults.
    #[arg(long, value_enum, default_value = "xmpp", value_name = "PROFILE")]
    pub protocol: crate::cli::ProtocolArg,

    /// Scenarios run at once against each mutant (the mutants run side by side).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,

    /// Output folder: mutants.json, mutants.md.
    #[arg(long, value_name = "DIR", default_value = "target/imfed/mutants")]
    pub out: PathBuf,

    /// A committed mutants.json to compare with: a kill it lists that is lost fails the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write the new table to the --baseline path instead of comparing.
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,
}

/// Mutants whose kills depend on timing, reported but not held against the baseline: a
/// client quiet for 0.4 s, and a server crash, which kills whichever runs are in flight when
/// the first message of any run arrives (in the XMPP pack, most runs send none).
pub const TIMING_DEPENDENT: &[&str] = &["drop_idle_clients", "crash_mid_run"];

/// Mutants that break every session or the whole server rather than one behaviour: they
/// show that the liveness and target checks work, but a scenario killed only by them is
/// not shown to check its own behaviour.
pub const CONNECTION_MUTANTS: &[&str] = &["drop_idle_clients", "stall_clients", "crash_mid_run"];

/// Every mutant of the server's front-end for `profile` (faults that break how it behaves,
/// not what it shows).
pub fn all_mutants(profile: Profile) -> Vec<String> {
    let protocol = match profile {
        Profile::Xmpp => FaultProtocol::Xmpp,
        Profile::Rvp => FaultProtocol::Rvp,
        Profile::Sip => FaultProtocol::Sip,
    };
    Switch::ALL
        .iter()
        .filter(|switch| !switch.is_observer() && switch.protocol() == protocol)
        .map(|switch| switch.name().to_string())
        .collect()
}

/// Runs the selected jobs against the reference target with `faults`.
async fn run_against(
    profile: Profile,
    faults: FaultPlan,
    jobs: Vec<runner::Job>,
    options: RunOptions,
    cancel: CancellationToken,
) -> Result<RunReport, String> {
    let target = TargetSpec::Reference {
        tls: LoginTls::Never,
        protocol: profile,
    };
    let env = Environment::start(&target, &faults)
        .await
        .map_err(|error| error.to_string())?;
    let env = Arc::new(env);
    // Progress per scenario would be noise across every mutant: only the totals print.
    let (progress, _) = mpsc::unbounded_channel();
    let report = runner::run(
        env.clone(),
        jobs,
        options,
        Arc::new(Expectations::default()),
        progress,
        cancel,
    )
    .await;
    if let Ok(env) = Arc::try_unwrap(env) {
        let _ = tokio::time::timeout(runner::STOP_BOUND, env.stop()).await;
    }
    Ok(report)
}

/// `imfed mutants`: exit 0 when the control passes, no scenario is a gap and no committed
/// kill is lost.
pub async fn mutants(args: MutantsArgs, cancel: CancellationToken) -> u8 {
    let scenarios = match select(&args.select) {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let baseline = match read_baseline(args.baseline.as_deref(), args.update_baseline, |text| {
        mutation::from_json(text).map_err(|e| e.to_string())
    }) {
        Ok(baseline) => baseline,
        Err(code) => return code,
    };
    // A comparison runs the mutants the committed table was made with (a mutant added to
    // the server since is tried when the table is updated); otherwise every mutant.
    let mutants = match (&baseline, args.mutants.is_empty()) {
        (_, false) => args.mutants.clone(),
        (Some(baseline), true) => baseline.mutants.clone(),
        (None, true) => all_mutants(args.protocol.profile()),
    };
    for name in &mutants {
        if let Err(error) = name.parse::<Switch>() {
            eprintln!("imfed: {error}");
            return exit_code::USAGE;
        }
    }
    let jobs = runner::jobs(&scenarios);
    eprintln!(
        "imfed: {} scenarios ({} runs) against the reference target and {} mutants",
        scenarios.len(),
        jobs.len(),
        mutants.len()
    );
    let options = RunOptions {
        jobs: args.jobs,
        retries: 0,
    };
    let started = Instant::now();
    let profile = args.protocol.profile();
    let mut runs = tokio::task::JoinSet::new();
    for (index, mutant) in std::iter::once(None)
        .chain(mutants.iter().map(Some))
        .enumerate()
    {
        let faults = FaultPlan {
            sut: mutant.iter().map(|m| m.to_string()).collect(),
            reference: Vec::new(),
        };
        let (jobs, options, cancel) = (jobs.clone(), options.clone(), cancel.clone());
        let name = mutant.cloned();
        runs.spawn(async move {
            let report = run_against(profile, faults, jobs, options, cancel).await;
            (index, name, report)
        });
    }
    let mut control = None;
    let mut reports: Vec<Option<(String, RunReport)>> = vec![None; mutants.len()];
    while let Some(joined) = runs.join_next().await {
        let (index, name, report) = match joined {
            Ok(done) => done,
            Err(error) => {
                eprintln!("imfed: a mutant run failed: {error}");
                return exit_code::TARGET_UNAVAILABLE;
            }
        };
        let report = match report {
            Ok(report) => report,
            Err(error) => {
                eprintln!("imfed: the reference target is unavailable: {error}");
                return exit_code::TARGET_UNAVAILABLE;
            }
        };
        match name {
            None => control = Some(report),
            Some(name) => {
                let killed: std::collections::BTreeSet<&str> = report
                    .results
                    .iter()
                    .filter(|r| r.outcome.fails_run())
                    .map(|r| r.id.as_str())
                    .collect();
                eprintln!(
                    "imfed: mutant {name}: kills {} of {} scenarios ({:.1}s)",
                    killed.len(),
                    scenarios.len(),
                    started.elapsed().as_secs_f64()
                );
                reports[index - 1] = Some((name, report));
            }
        }
    }
    if cancel.is_cancelled() {
        return exit_code::INTERRUPTED;
    }
    let control = control.expect("the control run was spawned");
    let broken: Vec<String> = control
        .results
        .iter()
        .filter(|r| r.outcome.fails_run())
        .map(|r| r.name())
        .collect();
    let runs: Vec<(String, RunReport)> = reports.into_iter().flatten().collect();
    let table = MutationTable::build(&runs);
    print!("{}", mutation::to_text(&table));
    let mut code = exit_code::SUCCESS;
    for (file, contents) in [
        ("mutants.json", mutation::to_json(&table)),
        ("mutants.md", mutation::to_markdown(&table)),
    ] {
        if let Err(error) = write_report(&args.out.join(file), &contents) {
            eprintln!("imfed: cannot write report: {error}");
            code = exit_code::REPORT_FAILED;
        }
    }
    if !broken.is_empty() {
        println!(
            "the pack fails against the correct reference target, so its kills mean nothing: {}",
            broken.join(", ")
        );
        return exit_code::FAILURES;
    }
    if !table.gaps().is_empty() {
        code = code.max(exit_code::FAILURES);
    }
    if args.update_baseline
        && let Some(path) = &args.baseline
    {
        if let Err(error) = write_report(path, &mutation::to_json(&table)) {
            eprintln!("imfed: cannot write the baseline: {error}");
            return exit_code::REPORT_FAILED;
        }
        eprintln!("imfed: baseline {} updated", path.display());
    }
    if let Some(baseline) = baseline {
        let lost = table.lost_kills(&baseline, TIMING_DEPENDENT);
        for line in &lost {
            println!("lost: {line}");
        }
        for line in table.new_kills(&baseline) {
            println!("new: {line} (update the baseline to keep it)");
        }
        if !lost.is_empty() {
            code = code.max(exit_code::FAILURES);
        }
        println!("baseline: {} kills lost", lost.len());
    }
    let behavioural = table
        .rows
        .iter()
        .filter(|row| {
            row.killed_by
                .keys()
                .any(|mutant| !CONNECTION_MUTANTS.contains(&mutant.as_str()))
        })
        .count();
    println!(
        "behaviour score: {behavioural} of {} scenarios killed by a mutant of one behaviour (not \
         counting {})",
        table.rows.len(),
        CONNECTION_MUTANTS.join(", ")
    );
    println!("{}", table.score_line());
    code
}
