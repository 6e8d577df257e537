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
use crate::runner::env::{Environment, FaultPlan};
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
    /// Run the scenarios against several targets and write the interop matrix
    /// (HTML, Markdown, JSON) and each target's reports.
    Matrix(MatrixArgs),
    /// Run the scenarios against every mutant of the reference server (deliberately broken
    /// servers) and print the mutation table: for each scenario the mutants that make it
    /// fail, the scenarios none does (gaps), and the mutation score.
    Mutants(crate::mutants::MutantsArgs),
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Serve DNS on loopback for implementations that find peers only by DNS: SRV
    /// `_xmpp-server._tcp.DOMAIN` for each `--host`, SRV `_rvp._tcp.DOMAIN` for each
    /// `--rvp-host`, SRV `_sip._udp.DOMAIN` for each `--sip-host`, and the domain's A,
    /// NXDOMAIN for anything else. Prints
    /// `READY dns=IP:PORT`, then serves until SIGTERM or Ctrl-C.
    Dns(DnsArgs),
}

/// `imfed dns`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// UDP and TCP address to answer on (port 0: one free for both).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "IP:PORT")]
    pub listen: std::net::SocketAddr,

    /// A domain and its XMPP s2s listener (repeatable).
    #[arg(long = "host", value_name = "DOMAIN=IP:PORT", value_parser = crate::dns::Zone::parse_host)]
    pub hosts: Vec<(String, std::net::SocketAddr)>,

    /// A domain and its RVP server-to-server listener (repeatable), served as SRV
    /// `_rvp._tcp.DOMAIN` (PROFILE.md §6). A domain given with both `--host` and
    /// `--rvp-host` must use the same IP: it has one A record.
    #[arg(long = "rvp-host", value_name = "DOMAIN=IP:PORT", value_parser = crate::dns::Zone::parse_host)]
    pub rvp_hosts: Vec<(String, std::net::SocketAddr)>,

    /// A domain and its SIP server (repeatable), served as SRV `_sip._udp.DOMAIN` (RFC 3263
    /// §4.2, protocols/sip/PROFILE.md §5), with the same one-IP rule.
    #[arg(long = "sip-host", value_name = "DOMAIN=IP:PORT", value_parser = crate::dns::Zone::parse_host)]
    pub sip_hosts: Vec<(String, std::net::SocketAddr)>,
}

/// `imfed matrix`.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Which scenarios.
    #[command(flatten)]
    pub select: SelectArgs,

    /// A target: `reference` or a target file (repeatable; one matrix column each). Each
    /// target file's own expectations file applies.
    #[arg(long = "target", value_name = "reference|FILE", required = true)]
    pub targets: Vec<String>,

    /// Protocols (repeatable): with more than one, each target gets a column per protocol
    /// it speaks, named `target/protocol` (the built-in reference target speaks all; a
    /// target file its own).
    #[arg(long = "protocol", value_enum, value_name = "PROFILE", default_values_t = [ProtocolArg::Xmpp])]
    pub protocols: Vec<ProtocolArg>,

    /// Output folder: matrix.html, matrix.md, matrix.json, and `<target>/junit.xml`,
    /// `<target>/results.json` per target.
    #[arg(long, value_name = "DIR", default_value = "target/imfed/matrix")]
    pub out: PathBuf,

    /// A matrix.json to compare with: any changed cell fails the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write the new matrix.json to the --baseline path instead of comparing.
    #[arg(long, requires = "baseline")]
    pub update_baseline: bool,

    /// Scenarios run at once (per target; targets run one after another).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,

    /// Rerun a failing scenario up to N times; a later pass is reported as flaky, which
    /// still fails the run (exit 1) unless --accept-flaky.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,

    /// Count a pass on retry (flaky) as a pass in the exit code. For development loops only:
    /// a certification run (the default) never lets a retry launder a failure.
    #[arg(long)]
    pub accept_flaky: bool,
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

    /// Rerun a failing scenario up to N times; a later pass is reported as flaky, which
    /// still fails the run (exit 1) unless --accept-flaky.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,

    /// Count a pass on retry (flaky) as a pass in the exit code. For development loops only:
    /// a certification run (the default) never lets a retry launder a failure.
    #[arg(long)]
    pub accept_flaky: bool,

    /// The target's expectations file (known failures with reasons).
    #[arg(long, value_name = "FILE")]
    pub expectations: Option<PathBuf>,

    /// STARTTLS for the built-in reference target.
    #[arg(long, value_enum, default_value = "optional", value_name = "MODE")]
    pub reference_tls: ReferenceTls,

    /// The protocol the built-in reference target speaks, actors and federation alike (a
    /// target file names its own).
    #[arg(long, value_enum, default_value = "xmpp", value_name = "PROFILE")]
    pub protocol: ProtocolArg,

    /// A fault of the server playing the implementation under test in the built-in
    /// reference target (repeatable; for testing the suite itself: every check must be able
    /// to fail). Each run turns it on for its own accounts only, so parallel runs do not
    /// see each other's faults.
    #[arg(long, value_name = "SWITCH")]
    pub misbehave: Vec<String>,

    /// A fault of the reference server towards the implementation (repeatable; scoped to
    /// each run's accounts like --misbehave), for checking how an implementation copes with
    /// a misbehaving peer.
    #[arg(long, value_name = "SWITCH")]
    pub reference_misbehave: Vec<String>,
}

/// A protocol profile on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    /// XMPP (RFC 6120, RFC 6121, XEP-0220).
    Xmpp,
    /// RVP (draft-osborne-rvp-00, as in Exchange 2000), with imfed's server-to-server
    /// conventions (`protocols/rvp/PROFILE.md`).
    Rvp,
    /// SIP/SIMPLE (RFC 3261, 3428, 3856, 3903, 6665) with imfed's conventions
    /// (`protocols/sip/PROFILE.md`); the reference target's user agents and link use UDP.
    Sip,
}

impl ProtocolArg {
    /// The profile.
    pub fn profile(self) -> crate::driver::Profile {
        match self {
            ProtocolArg::Xmpp => crate::driver::Profile::Xmpp,
            ProtocolArg::Rvp => crate::driver::Profile::Rvp,
            ProtocolArg::Sip => crate::driver::Profile::Sip,
        }
    }
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

/// The scenarios `args` select; `Err` is the exit code after the problem was printed.
pub(crate) fn select(args: &SelectArgs) -> Result<Vec<LoadedScenario>, u8> {
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
    let selected: Vec<LoadedScenario> = loaded
        .into_iter()
        .filter(|s| args.filter.iter().all(|f| f.matches(&s.scenario)))
        .collect();
    if selected.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let filters: Vec<String> = args.filter.iter().map(ToString::to_string).collect();
        eprintln!(
            "imfed: the selection matches no scenario (in {}{}); nothing was run",
            shown.join(", "),
            if filters.is_empty() {
                String::new()
            } else {
                format!(", with --filter {}", filters.join(" --filter "))
            }
        );
        return Err(exit_code::USAGE);
    }
    Ok(selected)
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
                use std::io::Write as _;
                let mut out = std::io::stdout().lock();
                for loaded in scenarios {
                    let s = &loaded.scenario;
                    let spec: Vec<String> = s
                        .spec
                        .iter()
                        .map(|r| format!("{} §{}", r.doc, r.section))
                        .collect();
                    // A closed pipe (`imfed list | head`) just ends the listing.
                    let written = writeln!(
                        out,
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
                    if written.is_err() {
                        break;
                    }
                }
                exit_code::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run(args) => run(args, cancel).await,
        Command::Matrix(args) => matrix(args, cancel).await,
        Command::Mutants(args) => crate::mutants::mutants(args, cancel).await,
        Command::Dns(args) => dns(args, cancel).await,
    }
}

/// `imfed dns`: exit 0 when stopped by a signal, 2 when the address cannot be bound.
async fn dns(args: DnsArgs, cancel: CancellationToken) -> u8 {
    let (udp, tcp) = match crate::dns::bind(args.listen).await {
        Ok(sockets) => sockets,
        Err(error) => {
            eprintln!("imfed dns: cannot listen on {}: {error}", args.listen);
            return exit_code::USAGE;
        }
    };
    let zone = crate::dns::Zone {
        records: args.hosts.into_iter().collect(),
        rvp: args.rvp_hosts.into_iter().collect(),
        sip: args.sip_hosts.into_iter().collect(),
    };
    match udp.local_addr() {
        Ok(addr) => println!("READY dns={addr}"),
        Err(error) => {
            eprintln!("imfed dns: {error}");
            return exit_code::USAGE;
        }
    }
    match crate::dns::serve(udp, tcp, zone, cancel).await {
        Ok(()) => exit_code::SUCCESS,
        Err(error) => {
            eprintln!("imfed dns: {error}");
            exit_code::USAGE
        }
    }
}

/// Loads the expectations: `--expectations`, else the file the target names, else none.
fn load_expectations(explicit: Option<&Path>, target: &TargetSpec) -> Result<Expectations, u8> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| target.expectations_path());
    match path {
        Some(path) => Expectations::load(&path).map_err(|error| {
            eprintln!("{error}");
            exit_code::USAGE
        }),
        None => Ok(Expectations::default()),
    }
}

/// What a run against one target needs besides the target.
struct Plan<'a> {
    scenarios: &'a [LoadedScenario],
    options: RunOptions,
    faults: FaultPlan,
    cancel: CancellationToken,
}

/// The faults of `--misbehave` and `--reference-misbehave`, their names checked.
fn fault_plan(sut: &[String], reference: &[String]) -> Result<FaultPlan, u8> {
    for name in sut.iter().chain(reference) {
        if let Err(error) = name.parse::<imfed_server::faults::Switch>() {
            eprintln!("imfed: {error}");
            return Err(exit_code::USAGE);
        }
    }
    Ok(FaultPlan {
        sut: sut.to_vec(),
        reference: reference.to_vec(),
    })
}

/// Runs the plan against one target: starts it, runs, stops it. Also returns the CPU the
/// run used in this process (sampled before the in-process servers stop). `Err` is the
/// exit code when the target could not be started.
async fn run_target(
    plan: &Plan<'_>,
    target: &TargetSpec,
    expectations: Expectations,
) -> Result<(RunReport, Option<crate::runner::cpu::CpuSplit>), (u8, String)> {
    let known: Vec<&str> = plan
        .scenarios
        .iter()
        .map(|s| s.scenario.id.as_str())
        .collect();
    for stale in expectations.unknown_ids(&known) {
        eprintln!(
            "imfed: note: expectations name {stale:?}, which is not among the selected scenarios"
        );
    }
    let jobs = runner::jobs(plan.scenarios);
    eprintln!(
        "imfed: {} scenarios ({} runs) against {}",
        plan.scenarios.len(),
        jobs.len(),
        target.name()
    );
    let cpu_before = crate::runner::cpu::sample();
    let env = tokio::select! {
        env = Environment::start(target, &plan.faults) => env,
        () = plan.cancel.cancelled() => return Err((exit_code::INTERRUPTED, "interrupted".into())),
    };
    let env = match env {
        Ok(env) => Arc::new(env),
        Err(error) => {
            eprintln!("imfed: target {} unavailable: {error}", target.name());
            return Err((
                exit_code::TARGET_UNAVAILABLE,
                format!("target unavailable: {error}"),
            ));
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
    let report = runner::run(
        env.clone(),
        jobs,
        plan.options.clone(),
        Arc::new(expectations),
        tx,
        plan.cancel.clone(),
    )
    .await;
    let _ = printer.await;
    let cpu = cpu_before
        .zip(crate::runner::cpu::sample())
        .map(|(before, after)| after.since(before));
    match Arc::try_unwrap(env) {
        Ok(env) => {
            let _ = tokio::time::timeout(runner::STOP_BOUND, env.stop()).await;
        }
        Err(_) => tracing::warn!("environment still in use; not stopped cleanly"),
    }
    Ok((report, cpu))
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
    if let TargetSpec::Reference { tls, protocol } = &mut target {
        *tls = match args.reference_tls {
            ReferenceTls::Never => LoginTls::Never,
            ReferenceTls::Optional => LoginTls::Optional,
            ReferenceTls::Required => LoginTls::Required,
        };
        *protocol = args.protocol.profile();
    } else if !args.misbehave.is_empty() {
        eprintln!("imfed: --misbehave applies to the reference target only");
        return exit_code::USAGE;
    } else if args.protocol.profile() != target.profile() {
        eprintln!(
            "imfed: --protocol {} does not apply to {}: a target file names its protocol ({})",
            args.protocol.profile().name(),
            args.target,
            target.profile().name()
        );
        return exit_code::USAGE;
    }
    let faults = match fault_plan(&args.misbehave, &args.reference_misbehave) {
        Ok(faults) => faults,
        Err(code) => return code,
    };
    let expectations = match load_expectations(args.expectations.as_deref(), &target) {
        Ok(expectations) => expectations,
        Err(code) => return code,
    };
    let plan = Plan {
        scenarios: &scenarios,
        options: RunOptions {
            jobs: args.jobs,
            retries: args.retries,
        },
        faults,
        cancel,
    };
    let (report, cpu) = match run_target(&plan, &target, expectations).await {
        Ok(done) => done,
        Err((code, _)) => return code,
    };
    if let Some(used) = cpu {
        let total = used.harness + used.servers;
        eprintln!(
            "imfed: wall {:.1}s; CPU: harness {:.2}s, in-process reference servers {:.2}s (harness {:.0}% of this process's CPU)",
            report.duration_ms as f64 / 1000.0,
            used.harness.as_secs_f64(),
            used.servers.as_secs_f64(),
            100.0 * used.harness.as_secs_f64() / total.as_secs_f64().max(1e-9)
        );
    }
    let mut code = write_reports(&report, &args.junit, &args.json);
    let style = TerminalStyle {
        color: color_on(std::io::stdout().is_terminal()),
    };
    print!("{}", summary(&report, style));
    if code == exit_code::SUCCESS {
        code = run_code(&report, args.accept_flaky);
    }
    code
}

/// The exit code a finished run earns, and why when it is not success.
fn run_code(report: &RunReport, accept_flaky: bool) -> u8 {
    let counts = Counts::of(&report.results);
    if report.interrupted {
        exit_code::INTERRUPTED
    } else if counts.failed > 0 {
        exit_code::FAILURES
    } else if counts.flaky > 0 && !accept_flaky {
        eprintln!(
            "imfed: {} run(s) passed only on a retry (flaky): a certification run does not \
             count them as passes (--accept-flaky does, for development loops)",
            counts.flaky
        );
        exit_code::FAILURES
    } else if counts.passed + counts.xfailed + counts.flaky == 0 {
        eprintln!(
            "imfed: no scenario ran to a verdict ({} skipped or unsupported): nothing was checked",
            counts.skipped
        );
        exit_code::FAILURES
    } else {
        exit_code::SUCCESS
    }
}

/// Writes JUnit and JSON; the exit code is [`exit_code::REPORT_FAILED`] if one failed.
fn write_reports(report: &RunReport, junit: &Path, json: &Path) -> u8 {
    let mut code = exit_code::SUCCESS;
    let junit_text = imfed_reports::junit::render(report).map_err(|e| e.to_string());
    for (path, contents) in [
        (junit, junit_text),
        (json, Ok(imfed_reports::json::render(report))),
    ] {
        if let Err(error) = contents.and_then(|c| write_report(path, &c)) {
            eprintln!("imfed: cannot write report: {error}");
            code = exit_code::REPORT_FAILED;
        }
    }
    code
}

/// The baseline to compare with: `None` without `--baseline` or with `--update-baseline`;
/// `Err` is the exit code after the problem was printed.
pub(crate) fn read_baseline<T>(
    path: Option<&Path>,
    update: bool,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, u8> {
    let Some(path) = path.filter(|_| !update) else {
        return Ok(None);
    };
    match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| parse(&text))
    {
        Ok(baseline) => Ok(Some(baseline)),
        Err(error) => {
            eprintln!("imfed: baseline {}: {error}", path.display());
            Err(exit_code::USAGE)
        }
    }
}

/// Writes a report file, making its folder.
pub(crate) fn write_report(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("{}: {e}", path.display()))
}

/// A report in which every job is skipped for `reason` (a target that could not start).
fn unavailable_report(
    target: &TargetSpec,
    scenarios: &[LoadedScenario],
    reason: &str,
) -> RunReport {
    let results = runner::jobs(scenarios)
        .iter()
        .map(|job| {
            runner::not_run(
                job,
                imfed_reports::Outcome::Skipped {
                    reason: reason.to_string(),
                },
            )
        })
        .collect();
    RunReport {
        target: target.name(),
        protocol: target.profile().name().into(),
        imfed_version: env!("CARGO_PKG_VERSION").into(),
        started_ms: 0,
        duration_ms: 0,
        interrupted: false,
        results,
    }
}

async fn matrix(args: MatrixArgs, cancel: CancellationToken) -> u8 {
    use imfed_reports::matrix::{self as m, Matrix};
    let scenarios = match select(&args.select) {
        Ok(scenarios) => scenarios,
        Err(code) => return code,
    };
    let mut targets: Vec<(String, TargetSpec)> = Vec::new();
    let several = args.protocols.len() > 1;
    for text in &args.targets {
        let parsed = match TargetSpec::parse(text) {
            Ok(target) => target,
            Err(error) => {
                eprintln!("{error}");
                return exit_code::USAGE;
            }
        };
        for protocol in args.protocols.iter().map(|p| p.profile()) {
            let mut target = parsed.clone();
            let speaks = target.profile();
            match &mut target {
                TargetSpec::Reference { protocol: p, .. } => *p = protocol,
                TargetSpec::File { .. } if speaks != protocol => continue,
                TargetSpec::File { .. } => {}
            }
            let column = if several {
                format!("{}/{}", target.name(), protocol.name())
            } else {
                target.name()
            };
            targets.push((column, target));
        }
    }
    let mut names: Vec<String> = targets.iter().map(|(name, _)| name.clone()).collect();
    names.sort();
    names.dedup();
    if names.len() != targets.len() {
        eprintln!("imfed: two targets share a name; matrix columns need distinct names");
        return exit_code::USAGE;
    }
    let baseline = match read_baseline(args.baseline.as_deref(), args.update_baseline, |text| {
        m::from_json(text).map_err(|e| e.to_string())
    }) {
        Ok(baseline) => baseline,
        Err(code) => return code,
    };
    let plan = Plan {
        scenarios: &scenarios,
        options: RunOptions {
            jobs: args.jobs,
            retries: args.retries,
        },
        faults: FaultPlan::default(),
        cancel: cancel.clone(),
    };
    let mut code = exit_code::SUCCESS;
    let mut runs: Vec<(String, RunReport)> = Vec::new();
    // Targets that could not be run: their cells say so, and are no baseline.
    let mut unavailable: Vec<String> = Vec::new();
    for (column, target) in &targets {
        let expectations = match load_expectations(None, target) {
            Ok(expectations) => expectations,
            Err(code) => return code,
        };
        let report = match run_target(&plan, target, expectations).await {
            Ok((report, _)) => report,
            Err((exit_code::INTERRUPTED, _)) => return exit_code::INTERRUPTED,
            Err((failed, reason)) => {
                code = code.max(failed);
                unavailable.push(column.clone());
                unavailable_report(target, &scenarios, &reason)
            }
        };
        let dir = args.out.join(column.replace('/', "-"));
        let written = write_reports(&report, &dir.join("junit.xml"), &dir.join("results.json"));
        if written != exit_code::SUCCESS {
            code = code.max(written);
        }
        let counts = Counts::of(&report.results);
        eprintln!("imfed: {column}: {}", counts.summary_line());
        let earned = run_code(&report, args.accept_flaky);
        if earned != exit_code::SUCCESS {
            code = code.max(earned);
        }
        runs.push((column.clone(), report));
        if cancel.is_cancelled() {
            break;
        }
    }
    let matrix = Matrix::build(&runs);
    for (name, contents) in [
        ("matrix.json", m::to_json(&matrix)),
        ("matrix.md", m::to_markdown(&matrix)),
        ("matrix.html", m::to_html(&matrix, &runs)),
    ] {
        if let Err(error) = write_report(&args.out.join(name), &contents) {
            eprintln!("imfed: cannot write report: {error}");
            code = code.max(exit_code::REPORT_FAILED);
        }
    }
    if args.update_baseline && (cancel.is_cancelled() || !unavailable.is_empty()) {
        // A partial matrix would become the reference every later run is held to.
        eprintln!(
            "imfed: baseline not updated: {}",
            if cancel.is_cancelled() {
                "the run was interrupted".to_string()
            } else {
                format!("unavailable: {}", unavailable.join(", "))
            }
        );
        return if cancel.is_cancelled() {
            exit_code::INTERRUPTED
        } else {
            code.max(exit_code::TARGET_UNAVAILABLE)
        };
    }
    if args.update_baseline
        && let Some(path) = &args.baseline
    {
        if let Err(error) = write_report(path, &m::to_json(&matrix)) {
            eprintln!("imfed: cannot write the baseline: {error}");
            return exit_code::REPORT_FAILED;
        }
        eprintln!("imfed: baseline {} updated", path.display());
    }
    if let Some(baseline) = baseline {
        let changes = matrix.changes_from(&baseline);
        for (row, target, before, after) in &changes {
            println!("changed: {row} on {target}: {before} -> {after}");
        }
        if !changes.is_empty() {
            code = code.max(exit_code::FAILURES);
        }
        println!("matrix: {} cells changed from the baseline", changes.len());
    }
    println!(
        "matrix written to {}",
        args.out.join("matrix.html").display()
    );
    let all: Vec<&imfed_reports::ScenarioResult> =
        runs.iter().flat_map(|(_, r)| &r.results).collect();
    println!("{}", Counts::of(all).summary_line());
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use imfed_reports::{Outcome, ScenarioResult};

    fn report(outcomes: Vec<Outcome>) -> RunReport {
        let results = outcomes
            .into_iter()
            .map(|outcome| ScenarioResult {
                id: "x".into(),
                title: String::new(),
                pack: "core".into(),
                file: String::new(),
                direction: "ref→sut".into(),
                spec: vec![],
                tags: vec![],
                outcome,
                failure: None,
                judges: Default::default(),
                attempts: 1,
                duration_ms: 0,
                transcript: vec![],
                federation: vec![],
            })
            .collect();
        RunReport {
            target: "t".into(),
            protocol: "xmpp".into(),
            imfed_version: "0".into(),
            started_ms: 0,
            duration_ms: 0,
            interrupted: false,
            results,
        }
    }

    #[test]
    fn a_retry_does_not_launder_a_failure_and_nothing_checked_is_no_pass() {
        let flaky = report(vec![Outcome::Pass, Outcome::Flaky { attempts: 2 }]);
        assert_eq!(run_code(&flaky, false), exit_code::FAILURES);
        assert_eq!(run_code(&flaky, true), exit_code::SUCCESS);
        let skipped = report(vec![Outcome::Unsupported {
            capability: "c".into(),
            reason: String::new(),
        }]);
        assert_eq!(run_code(&skipped, false), exit_code::FAILURES);
        let expected = report(vec![Outcome::XFail { reason: "r".into() }]);
        assert_eq!(run_code(&expected, false), exit_code::SUCCESS);
        assert_eq!(
            run_code(&report(vec![Outcome::Fail]), true),
            exit_code::FAILURES
        );
    }
}
