//! The environment of a run: the reference server (in-process imfed-server), the
//! implementation under test (a second imfed-server, or whatever a target file launches),
//! account provisioning on both, and the listener behind `{blackhole.domain}`. Over SIP
//! (`protocols/sip/PROFILE.md`) both servers also get static SIP routes to each other, and
//! `{blackhole.domain}` a TCP route to that listener.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use imfed_server::config::{Config, TlsMode};
use imfed_xmpp::client::TlsPolicy;
use imfed_xmpp::{Element, Jid, ns};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tracing::{info, warn};

use super::wire::WireTap;
use crate::control::Control;
use crate::driver::lifecycle::Transcript;
use crate::driver::sip::Transport;
use crate::driver::xmpp::Credentials;
use crate::driver::{Profile, Session};
use crate::target::{FixedAccount, LoginTls, TargetFile, TargetSpec, base_dir};

/// The domain of the reference server.
pub const REF_DOMAIN: &str = "ref.test";
/// The domain of the second imfed-server in the built-in reference target.
pub const SUT_DOMAIN: &str = "sut.test";
/// The second domain of the built-in reference target's implementation: it authenticates
/// servers by certificate only (XEP-0178), while `sut.test` keeps dialback.
pub const SECURE_SUT_DOMAIN: &str = "secure.sut.test";
/// Capability of a target that trusts the run's CA for server-to-server certificates.
pub const S2S_CERTIFICATES: &str = "s2s-certificates";
/// Capability of a target hosting a domain that takes certificates only.
pub const S2S_SECURE_AUTH: &str = "s2s-secure-auth";
/// A domain nobody hosts or routes (RFC 6761 reserves `.invalid`).
pub const UNKNOWN_DOMAIN: &str = "nowhere.invalid";
/// A domain routed to a listener that accepts connections and never answers.
pub const BLACKHOLE_DOMAIN: &str = "blackhole.test";
/// Bound on outbound link setup on the reference servers, so timeouts show within
/// scenarios' bounds.
const S2S_SETUP_BOUND_MS: u64 = 4000;
/// The built-in servers' bound on an inbound s2s connection authenticating (slow-loris
/// checks against the reference target wait this long, and a little more).
const S2S_AUTH_BOUND_MS: u64 = 5000;

/// Why the environment could not be set up: the target is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The reference server did not start.
    #[error("reference server: {0}")]
    Reference(#[from] imfed_server::StartError),
    /// The target's launch command failed.
    #[error("launching the target: {0}")]
    Launch(String),
    /// The target did not become ready.
    #[error("target not ready: {0}")]
    NotReady(String),
    /// An address in the target file is invalid.
    #[error("target address {0:?}: {1}")]
    Address(String, String),
    /// Local I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How accounts are made on one side.
#[derive(Debug)]
pub enum Provisioner {
    /// imfed-server's control API.
    Control(Control),
    /// A command per account.
    Command {
        /// The command, templated with user, domain, password (other templates resolved).
        argv: Vec<String>,
        /// Where relative paths resolve.
        dir: PathBuf,
    },
    /// XEP-0077 in-band registration.
    InBand,
    /// Pre-created accounts handed out in order.
    Fixed(Mutex<VecDeque<FixedAccount>>),
}

/// One side of the federation: the reference server's domain or the implementation's.
#[derive(Debug)]
pub struct Side {
    /// The domain.
    pub domain: String,
    /// Its client listener.
    pub c2s: SocketAddr,
    /// Its s2s listener.
    pub s2s: SocketAddr,
    /// Its RVP listeners for clients and for servers, when it speaks RVP.
    pub rvp: Option<(SocketAddr, SocketAddr)>,
    /// Its SIP addresses and transport, when it speaks SIP.
    pub sip: Option<SipSide>,
    /// How actors log in.
    pub tls: TlsPolicy,
    /// How accounts are made.
    pub provisioner: Provisioner,
    /// CA certificates its TLS certificate must chain to (none: not verified).
    pub tls_roots: Option<std::sync::Arc<rustls::RootCertStore>>,
    /// Faults turned on for each run on this side (an imfed-server's control API and the
    /// switch names), scoped to the run's accounts.
    pub faults: Option<(Control, Vec<String>)>,
    /// How long it lets a server-to-server connection go without authenticating.
    pub s2s_auth_timeout: Duration,
    /// A second domain it hosts whose s2s links authenticate by certificate only.
    pub secure_domain: Option<String>,
    /// How long it may wait before retrying a domain whose link failed.
    pub s2s_retry_delay: Duration,
}

/// Where a side speaks SIP (PROFILE.md §1).
#[derive(Clone, Copy, Debug)]
pub struct SipSide {
    /// Where its user agents send.
    pub ua: SocketAddr,
    /// Where other domains' servers send.
    pub peer: SocketAddr,
    /// The transport of user agents and of routes to it.
    pub transport: Transport,
}

/// An account made for a scenario.
#[derive(Clone, Debug)]
pub struct Account {
    /// The localpart.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Side {
    /// Creates an account named `user` (a fixed provisioner hands out its next account
    /// instead).
    ///
    /// # Errors
    /// What failed, as text.
    pub async fn create_account(&self, user: &str, password: &str) -> Result<Account, String> {
        match &self.provisioner {
            Provisioner::Control(control) => control
                .create_account(user, &self.domain, password)
                .await
                .map_err(|e| format!("account {user}: {e}"))?,
            Provisioner::Command { argv, dir } => {
                let vars = BTreeMap::from([
                    ("user".to_string(), user.to_string()),
                    ("domain".to_string(), self.domain.clone()),
                    ("password".to_string(), password.to_string()),
                ]);
                let argv: Vec<String> = argv.iter().map(|arg| substitute(arg, &vars)).collect();
                let output = tokio::time::timeout(
                    Duration::from_secs(30),
                    Command::new(resolve_program(&argv[0], dir))
                        .args(&argv[1..])
                        .current_dir(dir)
                        .stdin(Stdio::null())
                        .kill_on_drop(true)
                        .output(),
                )
                .await
                .map_err(|_| format!("provisioning command for {user} took over 30s"))?
                .map_err(|e| format!("provisioning command {:?}: {e}", argv[0]))?;
                if !output.status.success() {
                    return Err(format!(
                        "provisioning command for {user} failed ({}): {}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr).trim()
                    ));
                }
            }
            Provisioner::InBand => self.register_in_band(user, password).await?,
            Provisioner::Fixed(accounts) => {
                let account = accounts
                    .lock()
                    .expect("accounts lock")
                    .pop_front()
                    .ok_or("the target's fixed account list is used up")?;
                return Ok(Account {
                    user: account.user,
                    password: account.password,
                });
            }
        }
        Ok(Account {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// Deletes an account where the provisioner can.
    ///
    /// # Errors
    /// The control API's error, as text.
    pub async fn delete_account(&self, user: &str) -> Result<(), String> {
        match &self.provisioner {
            Provisioner::Control(control) => control
                .delete_account(&self.domain, user)
                .await
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// Turns this side's faults on for `accounts`; returns what to turn off afterwards.
    ///
    /// # Errors
    /// The control API's error, as text (a run must not pass with its fault missing).
    pub async fn add_faults(&self, accounts: &[String]) -> Result<Vec<u64>, String> {
        let mut ids = Vec::new();
        if let Some((control, switches)) = &self.faults {
            for switch in switches {
                ids.push(
                    control
                        .add_fault(switch, accounts)
                        .await
                        .map_err(|e| format!("fault {switch}: {e}"))?,
                );
            }
        }
        Ok(ids)
    }

    /// Turns off the faults `ids` that [`Side::add_faults`] turned on.
    ///
    /// # Errors
    /// The control API's error, as text.
    pub async fn remove_faults(&self, ids: &[u64]) -> Result<(), String> {
        if let Some((control, _)) = &self.faults {
            for id in ids {
                control
                    .remove_fault(*id)
                    .await
                    .map_err(|e| format!("removing fault {id}: {e}"))?;
            }
        }
        Ok(())
    }

    /// XEP-0077 §3.1: register on an unauthenticated stream.
    async fn register_in_band(&self, user: &str, password: &str) -> Result<(), String> {
        let mut session = crate::driver::xmpp::RegistrationStream::open(
            self.c2s,
            &self.domain,
            self.tls,
            self.tls_roots.as_ref(),
        )
        .await
        .map_err(|e| format!("in-band registration: {e}"))?;
        let request = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "reg1")
            .with_child(
                Element::new("query", ns::REGISTER)
                    .with_child(Element::new("username", ns::REGISTER).with_text(user))
                    .with_child(Element::new("password", ns::REGISTER).with_text(password)),
            );
        let reply = session
            .request(&request, Duration::from_secs(10))
            .await
            .map_err(|e| format!("in-band registration: {e}"))?;
        if reply.attr("type") != Some("result") {
            return Err(format!(
                "in-band registration of {user} refused: {}",
                reply.to_xml(ns::CLIENT)
            ));
        }
        Ok(())
    }

    /// Credentials for an actor.
    pub fn credentials(&self, account: &Account, resource: &str) -> Result<Credentials, String> {
        let jid = Jid::new(Some(&account.user), &self.domain, Some(resource)).map_err(|e| {
            format!(
                "actor address {}@{}/{resource}: {e}",
                account.user, self.domain
            )
        })?;
        Ok(Credentials {
            jid,
            password: account.password.clone(),
            tls: self.tls,
            roots: self.tls_roots.clone(),
        })
    }

    /// Logs an actor in over `profile`: as `account`'s endpoint `resource` (an XMPP
    /// resource; RVP endpoints are named by the home server).
    ///
    /// # Errors
    /// The driver's error as text.
    pub async fn login(
        &self,
        profile: Profile,
        actor: &str,
        (account, resource): (&Account, &str),
        transcript: Transcript,
        bound: Duration,
    ) -> Result<Session, String> {
        match profile {
            Profile::Xmpp => {
                let credentials = self.credentials(account, resource)?;
                crate::driver::xmpp::Session::log_in(
                    actor,
                    self.c2s,
                    &credentials,
                    transcript,
                    bound,
                )
                .await
                .map(Session::Xmpp)
                .map_err(|e| e.to_string())
            }
            Profile::Rvp => {
                let (home, _) = self
                    .rvp
                    .ok_or_else(|| format!("{} has no RVP listener", self.domain))?;
                let credentials = crate::driver::rvp::Credentials {
                    user: account.user.clone(),
                    domain: self.domain.clone(),
                    password: account.password.clone(),
                    settings: crate::driver::rvp::Settings::default(),
                };
                crate::driver::rvp::Session::log_in(actor, home, &credentials, transcript, bound)
                    .await
                    .map(Session::Rvp)
                    .map_err(|e| e.to_string())
            }
            Profile::Sip => {
                let sip = self
                    .sip
                    .ok_or_else(|| format!("{} has no SIP listener", self.domain))?;
                let credentials = crate::driver::sip::Credentials {
                    user: account.user.clone(),
                    domain: self.domain.clone(),
                    password: account.password.clone(),
                    settings: crate::driver::sip::Settings {
                        transport: sip.transport,
                        ..crate::driver::sip::Settings::default()
                    },
                };
                crate::driver::sip::Session::log_in(actor, sip.ua, &credentials, transcript, bound)
                    .await
                    .map(Session::Sip)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Replaces `{key}` for every key in `vars`; other braces stay.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (key, value) in vars {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

fn resolve_program(program: &str, dir: &Path) -> PathBuf {
    if program.contains('/') && !Path::new(program).is_absolute() {
        dir.join(program)
    } else {
        PathBuf::from(program)
    }
}

fn login_tls(tls: LoginTls) -> TlsPolicy {
    match tls {
        LoginTls::Never => TlsPolicy::Never,
        LoginTls::Optional => TlsPolicy::IfOffered,
        LoginTls::Required => TlsPolicy::Required,
    }
}

fn server_tls(tls: LoginTls) -> TlsMode {
    match tls {
        LoginTls::Never => TlsMode::Off,
        LoginTls::Optional => TlsMode::Optional,
        LoginTls::Required => TlsMode::Required,
    }
}

/// A launched target process, stopped by PID.
#[derive(Debug)]
struct Launched {
    child: Child,
    stop_timeout: Duration,
}

/// Faults to turn on for every run, by side (switch names of `imfed_server::faults`).
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    /// On the server playing the implementation (the built-in reference target only).
    pub sut: Vec<String>,
    /// On the reference server, towards the implementation.
    pub reference: Vec<String>,
}

impl FaultPlan {
    /// `switches` split into those turned on for each run's accounts and those that reach
    /// no account (a link or the whole server) and are on for the whole run.
    fn split(switches: &[String]) -> (Vec<String>, Vec<String>) {
        switches.iter().cloned().partition(|name| {
            name.parse::<imfed_server::faults::Switch>()
                .is_ok_and(|switch| switch.reach() == imfed_server::faults::Reach::Accounts)
        })
    }
}

/// The running environment.
#[derive(Debug)]
pub struct Environment {
    /// The reference server's side.
    pub reference: Side,
    /// The implementation's side.
    pub sut: Side,
    /// The protocol of the run.
    pub profile: Profile,
    /// The federation link as seen on the wire (the reference server's tap).
    pub wire: WireTap,
    /// The reference server's control API (its dialback keys for peer connections).
    pub reference_control: Control,
    /// The target's name.
    pub target: String,
    /// Capabilities the target lacks.
    pub unsupported: Vec<String>,
    /// The run's CA, which the implementation trusts for server-to-server certificates
    /// (peer connections present certificates it issues).
    pub pki: Option<imfed_server::tls::RunPki>,
    /// A fresh directory for this run.
    pub run_dir: PathBuf,
    servers: Vec<imfed_server::Running>,
    server_runtime: Option<ServerRuntime>,
    launched: Option<Mutex<Launched>>,
    /// Why the target is known to be dead; once set, it stays set for the run.
    dead: Mutex<Option<String>>,
    /// Cancelled when the in-process server playing the implementation (the built-in
    /// reference target) shuts down.
    sut_shutdown: Option<tokio_util::sync::CancellationToken>,
    blackhole: tokio::task::JoinHandle<()>,
}

/// Name of the threads the in-process reference servers run on, so the harness's own CPU
/// use can be told apart from theirs (see [`super::cpu`]).
pub const SERVER_THREAD: &str = "imfed-server";

/// The in-process reference servers' own runtime: their work does not compete with the
/// harness's scheduler, and their threads are accounted separately. Dropped without
/// blocking (a runtime may not be dropped inside another one's worker).
#[derive(Debug)]
struct ServerRuntime(Option<tokio::runtime::Runtime>);

impl ServerRuntime {
    fn new() -> Result<ServerRuntime, EnvError> {
        Ok(ServerRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(SERVER_THREAD)
                .enable_all()
                .build()?,
        )))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The certificates of a run: one CA, a server certificate per domain. RVP's
/// server-to-server links authenticate by mutual TLS (`protocols/rvp/PROFILE.md` §6), XMPP
/// peers with SASL EXTERNAL (XEP-0178).
struct RunCerts {
    pki: imfed_server::tls::RunPki,
    dir: PathBuf,
}

impl RunCerts {
    /// A CA and a certificate for each entry of `servers`, written below `run_dir` as the
    /// servers are configured; the CA's certificate and key also as `ca.crt` and `ca.key`
    /// there, for a launch script to sign with.
    fn new(run_dir: &Path, servers: &[&[&str]]) -> Result<RunCerts, EnvError> {
        let pki = imfed_server::tls::RunPki::new(servers).map_err(|error| {
            EnvError::NotReady(format!("making the run's certificates: {error}"))
        })?;
        let dir = run_dir.join("pki");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("ca.crt"), &pki.ca_pem)?;
        std::fs::write(dir.join("ca.key"), &pki.ca_key_pem)?;
        Ok(RunCerts { pki, dir })
    }

    fn configure(&self, index: usize, config: &mut Config) -> Result<(), EnvError> {
        Ok(self.pki.configure(index, &self.dir, config)?)
    }
}

/// How a reference server is given the run's certificates.
struct ServerCerts<'a> {
    certs: &'a RunCerts,
    /// Which of the run's certificates it presents.
    index: usize,
    /// A second hosted domain that takes certificates only (XMPP).
    secure_domain: Option<&'a str>,
}

async fn reference_server(
    runtime: &ServerRuntime,
    domain: &str,
    tls: TlsMode,
    routes: BTreeMap<String, String>,
    misbehave: Vec<String>,
    certs: Option<ServerCerts<'_>>,
    sip_routes: Option<BTreeMap<String, String>>,
) -> Result<imfed_server::Running, EnvError> {
    let mut config = Config {
        domains: vec![domain.to_string()],
        remotes: routes.clone(),
        c2s_tls: tls,
        s2s_tls: tls,
        allow_plain_without_tls: true,
        s2s_timeout_ms: S2S_SETUP_BOUND_MS,
        s2s_auth_timeout_ms: S2S_AUTH_BOUND_MS,
        misbehave,
        ..Config::default()
    };
    if let Some(certs) = certs {
        certs.certs.configure(certs.index, &mut config)?;
        config.rvp_remotes = routes;
        if let Some(secure) = certs.secure_domain {
            config.domains.push(secure.to_string());
            config.s2s_secure_domains.push(secure.to_string());
            // Certificates travel in TLS: the implementation offers STARTTLS to peers even
            // in a plaintext run (its links to the reference stay plaintext, as the
            // reference offers none).
            if config.s2s_tls == TlsMode::Off {
                config.s2s_tls = TlsMode::Optional;
            }
        }
    }
    if let Some(sip_routes) = sip_routes {
        config.sip_remotes = sip_routes;
    }
    let started = runtime
        .handle()
        .spawn(async move { imfed_server::Server::new(config).start().await })
        .await
        .map_err(|error| EnvError::NotReady(format!("reference server task: {error}")))?;
    Ok(started?)
}

async fn put_rvp_route(control: &Control, domain: &str, addr: SocketAddr) -> Result<(), EnvError> {
    control
        .put_rvp_route(domain, &addr.to_string())
        .await
        .map_err(|e| {
            EnvError::NotReady(format!("setting an RVP route on the reference server: {e}"))
        })
}

/// A SIP route as the control API and `sip_remotes` write it (PROFILE.md §5).
fn sip_route(addr: SocketAddr, transport: Transport) -> String {
    format!("{addr};transport={}", transport.name())
}

/// The SIP routes every reference server starts with: `{blackhole.domain}` over TCP, to
/// the listener that accepts and never answers.
fn sip_routes(blackhole: SocketAddr) -> BTreeMap<String, String> {
    BTreeMap::from([(
        BLACKHOLE_DOMAIN.to_string(),
        sip_route(blackhole, Transport::Tcp),
    )])
}

async fn put_sip_route(
    control: &Control,
    domain: &str,
    addr: SocketAddr,
    transport: Transport,
) -> Result<(), EnvError> {
    control
        .put_sip_route(domain, &sip_route(addr, transport))
        .await
        .map_err(|e| {
            EnvError::NotReady(format!("setting a SIP route on the reference server: {e}"))
        })
}

async fn put_route(control: &Control, domain: &str, addr: SocketAddr) -> Result<(), EnvError> {
    control
        .put_route(domain, &addr.to_string())
        .await
        .map_err(|e| EnvError::NotReady(format!("setting a route on the reference server: {e}")))
}

fn control_of(running: &imfed_server::Running) -> Control {
    Control::new(format!("http://{}", running.addresses.control))
}

/// A listener that accepts connections and never says anything (holding them open).
async fn blackhole() -> Result<(SocketAddr, tokio::task::JoinHandle<()>), EnvError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            // Bounded: a long run does not pile up sockets.
            if held.len() > 256 {
                held.remove(0);
            }
        }
    });
    Ok((addr, task))
}

fn free_port() -> Result<u16, EnvError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Environment {
    /// Starts the reference server and the target.
    ///
    /// # Errors
    /// [`EnvError`]: the target is unavailable.
    pub async fn start(target: &TargetSpec, faults: &FaultPlan) -> Result<Environment, EnvError> {
        let run_dir = std::env::temp_dir().join(format!(
            "imfed-run-{}-{}",
            std::process::id(),
            crate::driver::random_token(6)
        ));
        std::fs::create_dir_all(&run_dir)?;
        let (blackhole_addr, blackhole) = blackhole().await?;
        match target {
            TargetSpec::Reference { tls, .. } => {
                let mode = server_tls(*tls);
                let routes =
                    BTreeMap::from([(BLACKHOLE_DOMAIN.to_string(), blackhole_addr.to_string())]);
                let runtime = ServerRuntime::new()?;
                let (reference_faults, reference_global) = FaultPlan::split(&faults.reference);
                let (sut_faults, sut_global) = FaultPlan::split(&faults.sut);
                let rvp = target.profile() == Profile::Rvp;
                let xmpp = target.profile() == Profile::Xmpp;
                let certs = (rvp || xmpp)
                    .then(|| {
                        RunCerts::new(&run_dir, &[&[REF_DOMAIN], &[SUT_DOMAIN, SECURE_SUT_DOMAIN]])
                    })
                    .transpose()?;
                let sip = target.profile() == Profile::Sip;
                // The reference target's user agents and its link speak UDP, SIP's default
                // (RFC 3261 §18; a target file can choose TCP).
                let transport = Transport::Udp;
                let reference = reference_server(
                    &runtime,
                    REF_DOMAIN,
                    mode,
                    routes.clone(),
                    reference_global,
                    certs.as_ref().map(|certs| ServerCerts {
                        certs,
                        index: 0,
                        secure_domain: None,
                    }),
                    sip.then(|| sip_routes(blackhole_addr)),
                )
                .await?;
                let sut = reference_server(
                    &runtime,
                    SUT_DOMAIN,
                    mode,
                    routes,
                    sut_global,
                    certs.as_ref().map(|certs| ServerCerts {
                        certs,
                        index: 1,
                        secure_domain: xmpp.then_some(SECURE_SUT_DOMAIN),
                    }),
                    sip.then(|| sip_routes(blackhole_addr)),
                )
                .await?;
                let (control, sut_control) = (control_of(&reference), control_of(&sut));
                put_route(&control, SUT_DOMAIN, sut.addresses.s2s).await?;
                put_route(&sut_control, REF_DOMAIN, reference.addresses.s2s).await?;
                if rvp {
                    put_rvp_route(&control, SUT_DOMAIN, sut.addresses.rvp_s2s).await?;
                    put_rvp_route(&sut_control, REF_DOMAIN, reference.addresses.rvp_s2s).await?;
                }
                if sip {
                    put_sip_route(&control, SUT_DOMAIN, sut.addresses.sip, transport).await?;
                    put_sip_route(&sut_control, REF_DOMAIN, reference.addresses.sip, transport)
                        .await?;
                }
                let side = |running: &imfed_server::Running, domain: &str, faults: &[String]| {
                    let control = control_of(running);
                    Side {
                        domain: domain.to_string(),
                        c2s: running.addresses.c2s,
                        s2s: running.addresses.s2s,
                        rvp: Some((running.addresses.rvp, running.addresses.rvp_s2s)),
                        sip: Some(SipSide {
                            ua: running.addresses.sip,
                            peer: running.addresses.sip,
                            transport,
                        }),
                        tls: login_tls(*tls),
                        provisioner: Provisioner::Control(control.clone()),
                        tls_roots: None,
                        faults: (!faults.is_empty()).then(|| (control, faults.to_vec())),
                        s2s_auth_timeout: Duration::from_millis(S2S_AUTH_BOUND_MS),
                        secure_domain: None,
                        s2s_retry_delay: Duration::ZERO,
                    }
                };
                let mut sut_side = side(&sut, SUT_DOMAIN, &sut_faults);
                sut_side.secure_domain = xmpp.then(|| SECURE_SUT_DOMAIN.to_string());
                Ok(Environment {
                    reference: side(&reference, REF_DOMAIN, &reference_faults),
                    sut: sut_side,
                    profile: target.profile(),
                    wire: WireTap::new(control.clone(), target.profile()),
                    reference_control: control,
                    target: target.name(),
                    unsupported: Vec::new(),
                    pki: certs.filter(|_| xmpp).map(|certs| certs.pki),
                    run_dir,
                    sut_shutdown: Some(sut.shutdown_token()),
                    servers: vec![reference, sut],
                    server_runtime: Some(runtime),
                    launched: None,
                    dead: Mutex::default(),
                    blackhole,
                })
            }
            TargetSpec::File { path, file } => {
                if !faults.sut.is_empty() {
                    return Err(EnvError::Launch(
                        "faults of the implementation (--misbehave) exist only for the built-in \
                         reference target"
                            .into(),
                    ));
                }
                let started = Self::start_file(
                    path,
                    file,
                    run_dir.clone(),
                    (blackhole_addr, blackhole),
                    &faults.reference,
                )
                .await;
                if started.is_err() {
                    let _ = std::fs::remove_dir_all(&run_dir);
                }
                started
            }
        }
    }

    async fn start_file(
        path: &Path,
        file: &TargetFile,
        run_dir: PathBuf,
        (blackhole_addr, blackhole): (SocketAddr, tokio::task::JoinHandle<()>),
        reference_faults: &[String],
    ) -> Result<Environment, EnvError> {
        let dir = base_dir(path);
        let s2s_tls = server_tls(file.s2s_tls.unwrap_or(file.tls));
        let routes = BTreeMap::from([(BLACKHOLE_DOMAIN.to_string(), blackhole_addr.to_string())]);
        let runtime = ServerRuntime::new()?;
        let (reference_faults, reference_global) = FaultPlan::split(reference_faults);
        let profile = Profile::from_name(&file.protocol).expect("checked when the file was read");
        let sip = profile == Profile::Sip;
        let transport = file.transport.unwrap_or_default().driver();
        let reference = reference_server(
            &runtime,
            REF_DOMAIN,
            s2s_tls,
            routes,
            reference_global,
            None,
            sip.then(|| sip_routes(blackhole_addr)),
        )
        .await?;
        let control = control_of(&reference);
        // The run's CA, for the target to sign its certificate with and to trust.
        let certs = file
            .run_ca
            .then(|| RunCerts::new(&run_dir, &[]))
            .transpose()?;
        // Template values for the target's launch and provisioning.
        let mut vars = BTreeMap::from([
            ("domain".to_string(), file.domain.clone()),
            ("run.dir".to_string(), run_dir.display().to_string()),
            ("ref.domain".to_string(), REF_DOMAIN.to_string()),
            ("ref.s2s".to_string(), reference.addresses.s2s.to_string()),
            ("ref.c2s".to_string(), reference.addresses.c2s.to_string()),
            ("ref.sip".to_string(), reference.addresses.sip.to_string()),
            ("blackhole.domain".to_string(), BLACKHOLE_DOMAIN.to_string()),
            ("blackhole.s2s".to_string(), blackhole_addr.to_string()),
            ("unknown.domain".to_string(), UNKNOWN_DOMAIN.to_string()),
        ]);
        let all_text = format!(
            "{} {} {:?} {:?}",
            file.c2s, file.s2s, file.launch, file.provision.command
        );
        for name in port_names(&all_text) {
            vars.insert(format!("ports.{name}"), free_port()?.to_string());
        }
        if let Some(certs) = &certs {
            vars.insert("pki.dir".into(), certs.dir.display().to_string());
        }
        if let Some(secure) = &file.secure_domain {
            vars.insert("secure_domain".into(), secure.clone());
        }
        let parse_addr = |text: &str| -> Result<SocketAddr, EnvError> {
            let rendered = substitute(text, &vars);
            rendered.parse().map_err(|e: std::net::AddrParseError| {
                EnvError::Address(rendered.clone(), e.to_string())
            })
        };
        let c2s = parse_addr(&file.c2s)?;
        let s2s = parse_addr(&file.s2s)?;
        let mut launched = None;
        if let Some(launch) = &file.launch {
            let argv: Vec<String> = launch
                .command
                .iter()
                .map(|a| substitute(a, &vars))
                .collect();
            let mut command = Command::new(resolve_program(&argv[0], &dir));
            command
                .args(&argv[1..])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(std::fs::File::create(
                    run_dir.join("target.stdout"),
                )?))
                .stderr(Stdio::from(std::fs::File::create(
                    run_dir.join("target.stderr"),
                )?))
                .env("IMFED_RUN_DIR", &run_dir)
                .env(
                    "IMFED_BIN",
                    std::env::current_exe().unwrap_or_else(|_| "imfed".into()),
                )
                .env("IMFED_DOMAIN", &file.domain)
                .env("IMFED_C2S", c2s.to_string())
                .env("IMFED_S2S", s2s.to_string())
                .env("IMFED_REF_DOMAIN", REF_DOMAIN)
                .env("IMFED_REF_S2S", reference.addresses.s2s.to_string())
                .env("IMFED_REF_SIP", reference.addresses.sip.to_string())
                .env("IMFED_BLACKHOLE_DOMAIN", BLACKHOLE_DOMAIN)
                .env("IMFED_BLACKHOLE_S2S", blackhole_addr.to_string())
                .kill_on_drop(true);
            if let Some(certs) = &certs {
                command.env("IMFED_CA_DIR", &certs.dir);
            }
            for (key, value) in &launch.env {
                command.env(key, substitute(value, &vars));
            }
            let child = command
                .spawn()
                .map_err(|e| EnvError::Launch(format!("{:?}: {e}", argv[0])))?;
            info!(pid = child.id(), target = %file.name, "target launched");
            let mut launched_process = Launched {
                child,
                stop_timeout: launch.stop_timeout.map_or(Duration::from_secs(10), |d| d.0),
            };
            let bound = launch
                .ready_timeout
                .map_or(Duration::from_secs(30), |d| d.0);
            let ready = if sip {
                wait_ready_sip(
                    &mut launched_process.child,
                    &[c2s, s2s],
                    (&file.domain, transport),
                    bound,
                )
                .await
            } else {
                wait_ready(&mut launched_process.child, &[c2s, s2s], bound).await
            };
            if let Err(error) = ready {
                let log =
                    std::fs::read_to_string(run_dir.join("target.stderr")).unwrap_or_default();
                stop_process(&mut launched_process).await;
                return Err(EnvError::NotReady(format!(
                    "{error}; stderr tail: {}",
                    tail(&log, 10)
                )));
            }
            launched = Some(Mutex::new(launched_process));
        }
        if sip {
            put_sip_route(&control, &file.domain, s2s, transport).await?;
        } else {
            put_route(&control, &file.domain, s2s).await?;
        }
        // Read once the target runs: a launch script may make its CA at start.
        let tls_roots = match &file.tls_ca {
            Some(path) => Some(std::sync::Arc::new(load_roots(
                &dir.join(substitute(path, &vars)),
            )?)),
            None => None,
        };
        let provisioner = if let Some(argv) = &file.provision.command {
            // Resolve everything but the per-account values now.
            Provisioner::Command {
                argv: argv.iter().map(|a| substitute(a, &vars)).collect(),
                dir: dir.clone(),
            }
        } else if file.provision.in_band {
            Provisioner::InBand
        } else {
            Provisioner::Fixed(Mutex::new(
                file.provision.accounts.clone().unwrap_or_default().into(),
            ))
        };
        let reference_side = Side {
            domain: REF_DOMAIN.to_string(),
            c2s: reference.addresses.c2s,
            s2s: reference.addresses.s2s,
            rvp: None,
            sip: sip.then_some(SipSide {
                ua: reference.addresses.sip,
                peer: reference.addresses.sip,
                transport,
            }),
            tls: login_tls(file.tls),
            provisioner: Provisioner::Control(control.clone()),
            tls_roots: None,
            faults: (!reference_faults.is_empty())
                .then(|| (control.clone(), reference_faults.to_vec())),
            s2s_auth_timeout: Duration::from_millis(S2S_AUTH_BOUND_MS),
            secure_domain: None,
            s2s_retry_delay: Duration::ZERO,
        };
        Ok(Environment {
            reference: reference_side,
            sut: Side {
                domain: file.domain.clone(),
                c2s,
                s2s,
                rvp: None,
                sip: sip.then_some(SipSide {
                    ua: c2s,
                    peer: s2s,
                    transport,
                }),
                tls: login_tls(file.tls),
                provisioner,
                tls_roots,
                faults: None,
                s2s_auth_timeout: file
                    .s2s_auth_timeout
                    .map_or(crate::target::DEFAULT_S2S_AUTH_TIMEOUT, |bound| bound.0),
                secure_domain: file.secure_domain.clone(),
                s2s_retry_delay: file.s2s_retry_delay.map_or(Duration::ZERO, |delay| delay.0),
            },
            profile,
            wire: WireTap::new(control.clone(), profile),
            reference_control: control,
            target: file.name.clone(),
            unsupported: file.unsupported.clone(),
            pki: certs.map(|certs| certs.pki),
            run_dir,
            servers: vec![reference],
            server_runtime: Some(runtime),
            launched,
            dead: Mutex::default(),
            sut_shutdown: None,
            blackhole,
        })
    }

    /// Why the target lacks `capability`, if it does: its file declares it unsupported, or
    /// the run has nothing the capability needs (the run's CA for `s2s-certificates`, a
    /// certificate-only domain for `s2s-secure-auth`).
    pub fn lacks(&self, capability: &str) -> Option<String> {
        let target = &self.target;
        match capability {
            S2S_CERTIFICATES if self.pki.is_none() => Some(format!(
                "the target {target} does not trust a per-run CA for server-to-server certificates (target field run_ca)"
            )),
            S2S_SECURE_AUTH if self.sut.secure_domain.is_none() => Some(format!(
                "the target {target} names no domain that takes certificates only (target field secure_domain)"
            )),
            _ if self.unsupported.iter().any(|c| c == capability) => {
                Some(format!("the target {target} declares it unsupported"))
            }
            _ => None,
        }
    }

    /// How the launched target process ended, if it has (a crash during the run). A process
    /// that has just closed its sockets may not be reaped yet: this looks a few times over
    /// 100 ms before saying it still runs.
    pub async fn target_exit(&self) -> Option<String> {
        let launched = self.launched.as_ref()?;
        for _ in 0..5 {
            if let Ok(Some(status)) = launched.lock().expect("launched lock").child.try_wait() {
                return Some(status.to_string());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Why the target is known to be dead, if it is.
    pub fn dead(&self) -> Option<String> {
        self.dead.lock().expect("dead lock").clone()
    }

    /// Checks that the target still lives: its process runs (when launched), the server
    /// playing it has not shut down (the built-in reference target), and both its listeners
    /// answer a stream header. A target found dead stays dead for the rest of the run.
    ///
    /// # Errors
    /// Why the target is dead.
    pub async fn check_target(&self) -> Result<(), String> {
        if let Some(reason) = self.dead() {
            return Err(reason);
        }
        let alive = self.probe().await;
        if let Err(reason) = &alive {
            warn!(%reason, "the target is dead");
            *self.dead.lock().expect("dead lock") = Some(reason.clone());
        }
        alive
    }

    async fn probe(&self) -> Result<(), String> {
        if let Some(launched) = &self.launched
            && let Ok(Some(status)) = launched.lock().expect("launched lock").child.try_wait()
        {
            return Err(format!("the target process has exited ({status})"));
        }
        if self
            .sut_shutdown
            .as_ref()
            .is_some_and(|token| token.is_cancelled())
        {
            return Err("the server playing the implementation has shut down".into());
        }
        let probes: Vec<(&str, SocketAddr, Probe)> =
            match (self.profile, self.sut.rvp, self.sut.sip) {
                (Profile::Rvp, Some((client, server)), _) => vec![
                    ("RVP client", client, Probe::Http),
                    ("RVP server-to-server", server, Probe::Connect),
                ],
                (Profile::Sip, _, Some(sip)) if sip.ua == sip.peer => {
                    vec![("SIP", sip.ua, Probe::Sip(sip.transport))]
                }
                (Profile::Sip, _, Some(sip)) => vec![
                    ("SIP user agent", sip.ua, Probe::Sip(sip.transport)),
                    ("SIP server-to-server", sip.peer, Probe::Sip(sip.transport)),
                ],
                _ => vec![
                    ("client", self.sut.c2s, Probe::Stream(ns::CLIENT)),
                    ("server-to-server", self.sut.s2s, Probe::Stream(ns::SERVER)),
                ],
            };
        for (what, addr, probe) in probes {
            let answered = match probe {
                Probe::Stream(content_ns) => {
                    answers_stream_header(addr, &self.sut.domain, content_ns).await
                }
                Probe::Http => answers_http(addr, &self.sut.domain).await,
                Probe::Sip(transport) => answers_sip(addr, &self.sut.domain, transport).await,
                Probe::Connect => accepts(addr).await.map(|_| ()),
            };
            if let Err(error) = answered {
                let exited = self
                    .target_exit()
                    .await
                    .map(|status| format!("; the target process has exited ({status})"))
                    .unwrap_or_default();
                return Err(format!(
                    "the target's {what} listener {addr} {error}{exited}"
                ));
            }
        }
        Ok(())
    }

    /// Stops everything, bounded.
    pub async fn stop(mut self) {
        if let Some(launched) = self.launched.take() {
            let mut launched = launched.into_inner().expect("launched lock");
            stop_process(&mut launched).await;
        }
        if let Some(runtime) = self.server_runtime.take() {
            for server in self.servers.drain(..) {
                let _ = runtime.handle().spawn(server.stop()).await;
            }
        }
        self.blackhole.abort();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// CA certificates from a PEM file.
fn load_roots(path: &Path) -> Result<rustls::RootCertStore, EnvError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let invalid =
        |detail: String| EnvError::NotReady(format!("tls_ca {}: {detail}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| invalid(e.to_string()))? {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificates".into()));
    }
    Ok(roots)
}

/// `{ports.NAME}` names used in `text`.
fn port_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .match_indices("{ports.")
        .filter_map(|(index, _)| {
            let rest = &text[index + 7..];
            rest.find('}').map(|end| rest[..end].to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Bound on each part of a liveness probe of a listener.
const PROBE_BOUND: Duration = Duration::from_secs(5);

/// Whether the listener at `addr` answers an opening stream header with one of its own
/// (RFC 6120 §4.2); the stream is closed at once.
/// How a listener of the target is checked.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// It answers an XMPP stream header in this content namespace.
    Stream(&'static str),
    /// It answers an HTTP request with a status line (RVP's client side).
    Http,
    /// It accepts a connection (RVP's server side, where TLS needs a certificate first).
    Connect,
    /// It answers an OPTIONS over this transport with a SIP status line.
    Sip(Transport),
}

async fn accepts(addr: SocketAddr) -> Result<tokio::net::TcpStream, String> {
    tokio::time::timeout(PROBE_BOUND, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("accepted no connection within {}s", PROBE_BOUND.as_secs()))?
        .map_err(|error| format!("refused a connection ({error})"))
}

/// Whether `addr` answers `OPTIONS *` (RVP §5.8: 501) with an HTTP status line.
async fn answers_http(addr: SocketAddr, domain: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = accepts(addr).await?;
    let request = format!(
        "OPTIONS * HTTP/1.1\r\nHost: {domain}\r\nRVP-Notifications-Version: 0.2\r\n\
         Connection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|error| format!("failed when written to ({error})"))?;
    let mut head = Vec::new();
    let mut buf = [0; 512];
    tokio::time::timeout(PROBE_BOUND, async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) => return Err("closed the connection without an answer".to_string()),
                Ok(n) => head.extend_from_slice(&buf[..n]),
                Err(error) => return Err(format!("failed when read ({error})")),
            }
        }
        Ok(())
    })
    .await
    .map_err(|_| format!("did not answer within {}s", PROBE_BOUND.as_secs()))??;
    if head.starts_with(b"HTTP/1.") {
        Ok(())
    } else {
        Err(format!(
            "answered with something other than HTTP: {:?}",
            String::from_utf8_lossy(&head[..head.len().min(40)])
        ))
    }
}

/// Whether `addr` answers `OPTIONS sip:<domain>` with a SIP status line (any status: a
/// challenge proves the server as well), over UDP (retransmitted every 500 ms, RFC 3261
/// §17.1.2.1) or TCP.
async fn answers_sip(addr: SocketAddr, domain: &str, transport: Transport) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = |port: u16, via: &str| {
        format!(
            "OPTIONS sip:{domain} SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:{port};rport;\
             branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:imfed-probe@{domain}>;\
             tag={tag}\r\nTo: <sip:{domain}>\r\nCall-ID: probe-{tag}@127.0.0.1\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            branch = crate::driver::random_token(12),
            tag = crate::driver::random_token(8),
        )
    };
    let head: Vec<u8> = match transport {
        Transport::Udp => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|error| format!("cannot be probed ({error})"))?;
            let port = socket.local_addr().map_err(|e| e.to_string())?.port();
            let bytes = request(port, "UDP");
            let mut buf = vec![0; 65_536];
            tokio::time::timeout(PROBE_BOUND, async {
                loop {
                    socket
                        .send_to(bytes.as_bytes(), addr)
                        .await
                        .map_err(|error| format!("failed when written to ({error})"))?;
                    if let Ok(Ok((read, _))) =
                        tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf))
                            .await
                    {
                        return Ok::<_, String>(buf[..read].to_vec());
                    }
                }
            })
            .await
            .map_err(|_| format!("did not answer within {}s", PROBE_BOUND.as_secs()))??
        }
        Transport::Tcp => {
            let mut tcp = accepts(addr).await?;
            let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
            tcp.write_all(request(port, "TCP").as_bytes())
                .await
                .map_err(|error| format!("failed when written to ({error})"))?;
            let mut head = Vec::new();
            let mut buf = [0; 512];
            tokio::time::timeout(PROBE_BOUND, async {
                while !head.windows(2).any(|w| w == b"\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) => return Err("closed the connection without an answer".to_string()),
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                        Err(error) => return Err(format!("failed when read ({error})")),
                    }
                }
                Ok(())
            })
            .await
            .map_err(|_| format!("did not answer within {}s", PROBE_BOUND.as_secs()))??;
            head
        }
    };
    if head.starts_with(b"SIP/2.0 ") {
        Ok(())
    } else {
        Err(format!(
            "answered with something other than a SIP response: {:?}",
            String::from_utf8_lossy(&head[..head.len().min(40)])
        ))
    }
}

/// Waits until every address answers a SIP OPTIONS, the process is gone, or `bound`.
async fn wait_ready_sip(
    child: &mut Child,
    addrs: &[SocketAddr],
    (domain, transport): (&str, Transport),
    bound: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the target exited during start-up ({status})"));
        }
        let mut last = None;
        for addr in addrs {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, answers_sip(*addr, domain, transport)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => last = Some(format!("{addr} {error}")),
                Err(_) => last = Some(format!("{addr} did not answer")),
            }
        }
        let Some(last) = last else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "SIP ({}) not answering within {bound:?}: {last}",
                transport.name()
            ));
        }
        // Polling a port has no event to wait on; the interval is short and bounded.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn answers_stream_header(
    addr: SocketAddr,
    domain: &str,
    content_ns: &str,
) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::time::timeout(PROBE_BOUND, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("accepted no connection within {}s", PROBE_BOUND.as_secs()))?
        .map_err(|error| format!("refused a connection ({error})"))?;
    let mut header = imfed_xmpp::StreamHeader::new(content_ns);
    header.to = Some(domain.to_string());
    header.version = Some("1.0".into());
    header.dialback = content_ns == ns::SERVER;
    let mut out = Vec::new();
    header.write_to(&mut out);
    tcp.write_all(&out)
        .await
        .map_err(|error| format!("failed when written to ({error})"))?;
    let mut parser = imfed_xmpp::StreamParser::new(imfed_xmpp::Limits::default());
    let mut buf = vec![0; 4096];
    let answered = tokio::time::timeout(PROBE_BOUND, async {
        loop {
            match parser.next_event() {
                Ok(Some(imfed_xmpp::StreamEvent::Header(_))) => return Ok(()),
                Ok(Some(_)) => return Err("answered without a stream header".to_string()),
                Ok(None) => {}
                Err(error) => return Err(format!("answered with invalid XML ({error})")),
            }
            match tcp.read(&mut buf).await {
                Ok(0) => return Err("closed the connection without a stream header".into()),
                Ok(read) => parser.feed(&buf[..read]),
                Err(error) => return Err(format!("failed when read from ({error})")),
            }
        }
    })
    .await
    .map_err(|_| format!("sent no stream header within {}s", PROBE_BOUND.as_secs()))?;
    let _ = tcp
        .write_all(imfed_xmpp::stream::STREAM_CLOSE.as_bytes())
        .await;
    answered
}

/// Waits until every address accepts TCP connections, the process is gone, or `bound`.
async fn wait_ready(
    child: &mut Child,
    addrs: &[SocketAddr],
    bound: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the target exited during start-up ({status})"));
        }
        let mut ready = true;
        for addr in addrs {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                ready = false;
                break;
            }
        }
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("ports {addrs:?} not open within {bound:?}"));
        }
        // Polling a port has no event to wait on; the interval is short and bounded.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM by PID, then SIGKILL after the bound.
async fn stop_process(launched: &mut Launched) {
    if let Some(pid) = launched.child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(launched.stop_timeout, launched.child.wait())
            .await
            .is_ok()
        {
            return;
        }
        warn!(pid, "target did not stop after SIGTERM; killing it");
    }
    let _ = launched.child.kill().await;
}
