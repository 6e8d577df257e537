//! The runner: selected scenarios × directions, in parallel (bounded), with retries,
//! expectations and capabilities applied, streaming each result as it completes.

pub mod cpu;
pub mod env;
pub mod exec;
pub mod files;
pub mod peer;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imfed_reports::{Failure, Outcome, RunReport, ScenarioResult};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::expectations::Expectations;
use crate::scenario::load::LoadedScenario;
use env::Environment;

/// What a scenario `requires` when it checks SIP over UDP datagrams: such a scenario is
/// unsupported, in both directions, in a run whose SIP transport is TCP.
pub const SIP_UDP: &str = "udp-datagrams";

/// What to run and how.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenarios run at once.
    pub jobs: usize,
    /// Reruns of a failing scenario; a later pass is reported as flaky.
    pub retries: u32,
}

/// One unit of work: a scenario in one direction.
#[derive(Clone, Debug)]
pub struct Job {
    /// The scenario.
    pub scenario: Arc<LoadedScenario>,
    /// Whether ref and sut are swapped.
    pub swapped: bool,
}

/// The jobs for `scenarios`: each as written, and swapped too when `both_directions`.
pub fn jobs(scenarios: &[LoadedScenario]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for scenario in scenarios {
        let scenario = Arc::new(scenario.clone());
        jobs.push(Job {
            scenario: scenario.clone(),
            swapped: false,
        });
        if scenario.scenario.both_directions {
            jobs.push(Job {
                scenario,
                swapped: true,
            });
        }
    }
    jobs
}

fn direction(swapped: bool) -> &'static str {
    if swapped { "sut→ref" } else { "ref→sut" }
}

/// The result of a job that did not run.
pub fn not_run(job: &Job, outcome: Outcome) -> ScenarioResult {
    let scenario = &job.scenario.scenario;
    ScenarioResult {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        pack: job.scenario.pack.clone(),
        file: job.scenario.relative.clone(),
        direction: direction(job.swapped).into(),
        spec: exec::spec_refs(scenario),
        tags: scenario.tags.clone(),
        outcome,
        failure: None,
        judges: exec::run_judges(scenario, job.swapped),
        attempts: 0,
        duration_ms: 0,
        transcript: Vec::new(),
        federation: Vec::new(),
    }
}

/// Runs a job with retries and applies the expectations file.
async fn run_job(
    env: &Environment,
    job: &Job,
    options: &RunOptions,
    expectations: &Expectations,
    run_id: &str,
    cancel: &CancellationToken,
) -> ScenarioResult {
    let scenario = &job.scenario.scenario;
    // `requires` is about the server hosting the `sut` actors as written: in the swapped run
    // the reference server hosts them, so the requirement does not apply to the target.
    let missing = scenario
        .requires
        .iter()
        .find_map(|c| env.lacks(c).map(|reason| (c, reason)))
        .filter(|_| !job.swapped);
    if let Some((capability, reason)) = missing {
        return not_run(
            job,
            Outcome::Unsupported {
                capability: capability.clone(),
                reason,
            },
        );
    }
    // A check about datagrams cannot be made over a stream, in either direction: over TCP a
    // Content-Length longer than what came is a message still arriving (RFC 3261 §18.3).
    let tcp = env
        .sut
        .sip
        .is_some_and(|sip| sip.transport == crate::driver::sip::Transport::Tcp);
    if tcp && scenario.requires.iter().any(|c| c == SIP_UDP) {
        return not_run(
            job,
            Outcome::Unsupported {
                capability: format!("sip:{SIP_UDP}"),
                reason: "the run's user agents and servers speak SIP over TCP, and the scenario checks what a server does with a datagram (RFC 3261 §18.3)"
                    .into(),
            },
        );
    }
    // What the run's protocol cannot express is declared before anything is sent.
    if let Some(gap) = crate::driver::capability::first_gap(scenario, env.profile) {
        return not_run(
            job,
            Outcome::Unsupported {
                capability: format!("{}:{}", env.profile.name(), gap.capability.name()),
                reason: format!("{} (line {})", gap.reason, gap.line),
            },
        );
    }
    if let Some(reason) = env.dead() {
        // Nothing runs against a target that died earlier in the run.
        let mut result = not_run(job, Outcome::Fail);
        result.failure = Some(target_failure(format!(
            "not run: the target died earlier in this run: {reason}"
        )));
        return result;
    }
    let mut attempts = 0;
    let (mut result, alive) = loop {
        attempts += 1;
        let result = exec::run_scenario(env, &job.scenario, job.swapped, run_id, cancel).await;
        // The target is checked after every run, passes included: a run never reports
        // green on a target that died during it, and a dead target is not retried.
        let alive = env.check_target().await;
        let retry = result.outcome == Outcome::Fail
            && alive.is_ok()
            && attempts <= options.retries
            && !cancel.is_cancelled();
        if !retry {
            break (result, alive);
        }
    };
    result.attempts = attempts;
    if result.outcome == Outcome::Pass && attempts > 1 {
        result.outcome = Outcome::Flaky { attempts };
    }
    expectations.apply(&mut result);
    if let Err(reason) = alive {
        // A dead target is never an expected failure, and it explains every failure.
        match result.failure.as_mut() {
            Some(failure) if matches!(result.outcome, Outcome::Fail | Outcome::XFail { .. }) => {
                failure
                    .message
                    .push_str(&format!("; then the target died: {reason}"));
            }
            _ => result.failure = Some(target_failure(reason)),
        }
        result.outcome = Outcome::Fail;
    }
    result
}

/// How the report names the check of the target after a run.
pub const TARGET_CHECK: &str = "target check after the run";

fn target_failure(message: String) -> Failure {
    Failure::new(0, TARGET_CHECK, message)
}

/// Runs every job against `env`, sending each result on `progress` as it completes, and
/// returns the report with results in job order. Cancelling `cancel` stops the run: running
/// scenarios end as interrupted, the rest are skipped.
pub async fn run(
    env: Arc<Environment>,
    jobs: Vec<Job>,
    options: RunOptions,
    expectations: Arc<Expectations>,
    progress: mpsc::UnboundedSender<ScenarioResult>,
    cancel: CancellationToken,
) -> RunReport {
    let started = Instant::now();
    let started_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let run_id = crate::driver::random_token(6);
    let semaphore = Arc::new(Semaphore::new(options.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    // Exclusive scenarios last, so they hold up nothing but each other.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|index| jobs[*index].scenario.scenario.exclusive);
    for index in order {
        let job = jobs[index].clone();
        let env = env.clone();
        let options = options.clone();
        let expectations = expectations.clone();
        let progress = progress.clone();
        let cancel = cancel.clone();
        let run_id = run_id.clone();
        // Runs start in the order they were selected (with `--jobs 1`, one after another in
        // that order): the permit is taken here, before the run's task exists.
        // An exclusive scenario takes every permit: it starts once the runs before it end,
        // and the runs after it wait for it.
        let permits = if job.scenario.scenario.exclusive {
            options.jobs.max(1) as u32
        } else {
            1
        };
        let permit = tokio::select! {
            permit = semaphore.clone().acquire_many_owned(permits) => permit.ok(),
            () = cancel.cancelled() => None,
        };
        tasks.spawn(async move {
            let result = match permit {
                Some(_permit) if !cancel.is_cancelled() => {
                    run_job(&env, &job, &options, &expectations, &run_id, &cancel).await
                }
                _ => not_run(
                    &job,
                    Outcome::Skipped {
                        reason: "interrupted".into(),
                    },
                ),
            };
            let _ = progress.send(result.clone());
            (index, result)
        });
    }
    let mut results: Vec<Option<ScenarioResult>> = vec![None; jobs.len()];
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, result)) => results[index] = Some(result),
            Err(error) => tracing::error!(%error, "a scenario task failed"),
        }
    }
    let results: Vec<ScenarioResult> = results
        .into_iter()
        .zip(&jobs)
        .map(|(result, job)| {
            result.unwrap_or_else(|| {
                not_run(
                    job,
                    Outcome::Skipped {
                        reason: "the scenario task failed".into(),
                    },
                )
            })
        })
        .collect();
    RunReport {
        target: env.target.clone(),
        protocol: env.profile.name().into(),
        imfed_version: env!("CARGO_PKG_VERSION").into(),
        started_ms,
        duration_ms: started.elapsed().as_millis() as u64,
        interrupted: cancel.is_cancelled(),
        results,
    }
}

/// Bound on the whole environment stop.
pub const STOP_BOUND: Duration = Duration::from_secs(20);
