//! Starting and stopping the server: listeners, shared state, graceful shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use crate::config::{Config, ConfigError};
use crate::core::{Address, Core};
use crate::faults::Switch;
use crate::fedlog::FedLog;
use crate::state::{Shared, State};
use crate::tls::{TlsContext, TlsError};
use crate::xmpp::{c2s, s2s};

/// How many federation log entries are kept.
const FEDLOG_CAPACITY: usize = 100_000;
/// About how many bytes of server-to-server traffic the wire tap keeps.
const TAP_BUDGET: usize = 64 * 1024 * 1024;
/// Bound on waiting for connection tasks at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// TLS material could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The server's bound addresses, as printed on stdout when ready.
#[derive(Clone, Debug, Serialize)]
pub struct Addresses {
    /// Hosted domains.
    pub domains: Vec<String>,
    /// Client-to-server listener.
    pub c2s: SocketAddr,
    /// Server-to-server listener.
    pub s2s: SocketAddr,
    /// Control API.
    pub control: SocketAddr,
    /// RVP client listener (plain HTTP).
    pub rvp: SocketAddr,
    /// RVP server-to-server listener (mutual TLS).
    pub rvp_s2s: SocketAddr,
    /// SIP listener: UDP and TCP on this one address, for user agents and other servers.
    pub sip: SocketAddr,
    /// XEP-0363 upload service (plain HTTP).
    pub upload: SocketAddr,
}

/// The server, configured but not yet listening.
#[derive(Debug)]
pub struct Server {
    config: Config,
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addresses: Addresses,
    /// The shared state (for in-process tests and the built-in reference target).
    pub state: State,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Server {
    /// A server for `config`.
    pub fn new(config: Config) -> Self {
        Server { config }
    }

    /// Binds the listeners and starts serving.
    ///
    /// # Errors
    /// [`StartError`] when the configuration, the TLS material or a listener fails.
    pub async fn start(self) -> Result<Running, StartError> {
        let config = self.config;
        config.validate()?;
        let tls = TlsContext::from_config(&config)?;
        let switches = config
            .misbehave
            .iter()
            .map(|name| name.parse::<Switch>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| StartError::Config(ConfigError::Invalid(error)))?;
        let bind = |what: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let c2s_listener = bind("c2s", config.c2s_listen).await?;
        let s2s_listener = bind("s2s", config.s2s_listen).await?;
        let control_listener = bind("control", config.control_listen).await?;
        let rvp_listener = bind("rvp", config.rvp_listen).await?;
        let rvp_s2s_listener = bind("rvp_s2s", config.rvp_s2s_listen).await?;
        let upload_listener = bind("upload", config.upload_listen).await?;
        let sip_sockets = crate::sip::transport::bind(config.sip_listen)
            .await
            .map_err(|source| StartError::Bind {
                what: "sip",
                addr: config.sip_listen,
                source,
            })?;
        let local = |listener: &TcpListener| listener.local_addr().expect("bound listener");
        let addresses = Addresses {
            domains: config.domains.clone(),
            c2s: local(&c2s_listener),
            s2s: local(&s2s_listener),
            control: local(&control_listener),
            rvp: local(&rvp_listener),
            rvp_s2s: local(&rvp_s2s_listener),
            sip: sip_sockets.local_addr(),
            upload: local(&upload_listener),
        };
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut core = Core::new(config.domains.iter().cloned());
        for account in &config.accounts {
            core.create_account(
                Address::new(&account.user, &account.domain),
                &account.password,
                rand::random(),
            )
            .map_err(|error| StartError::Config(ConfigError::Invalid(error.to_string())))?;
        }
        let routes = std::sync::RwLock::new(config.remotes.clone());
        let xmpp = crate::xmpp::XmppState::new(&config);
        let rvp = crate::rvp::RvpState::new(&config);
        let sip = crate::sip::SipState::new(&config, addresses.sip);
        let state: State = Arc::new_cyclic(|me| Shared {
            config,
            routes,
            core: Mutex::new(core),
            fedlog: FedLog::new(FEDLOG_CAPACITY),
            tap: Arc::new(crate::tap::Tap::new(TAP_BUDGET)),
            tls,
            faults: Default::default(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            me: me.clone(),
            xmpp,
            rvp,
            sip,
        });
        state.faults.set_global(switches);
        tasks.spawn(accept_loop(state.clone(), c2s_listener, "c2s"));
        tasks.spawn(accept_loop(state.clone(), s2s_listener, "s2s"));
        tasks.spawn(crate::control::serve(state.clone(), control_listener));
        state
            .xmpp
            .uploads
            .set_base(format!("http://{}", addresses.upload));
        tasks.spawn(crate::xmpp::upload::serve(state.clone(), upload_listener));
        tasks.spawn(crate::rvp::http::serve_clients(state.clone(), rvp_listener));
        tasks.spawn(crate::rvp::http::serve_peers(
            state.clone(),
            rvp_s2s_listener,
        ));
        tasks.spawn(crate::rvp::run(state.clone()));
        crate::sip::start(&state, sip_sockets);
        info!(?addresses, "imfed-server ready");
        Ok(Running {
            addresses,
            state,
            shutdown,
            tasks,
        })
    }
}

async fn accept_loop(state: State, listener: TcpListener, what: &'static str) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    warn!(%error, what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = state.shutdown.cancelled() => break,
        };
        let task_state = state.clone();
        match what {
            "c2s" => state
                .tasks
                .spawn(c2s::serve(task_state, stream).instrument(info_span!("c2s", %peer))),
            _ => state.tasks.spawn(
                s2s::serve_inbound(task_state, stream).instrument(info_span!("s2s-in", %peer)),
            ),
        };
    }
}

impl Running {
    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, closes every stream (with `system-shutdown` for clients), and waits
    /// for the connection tasks, bounded.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the shutdown token is cancelled and the tasks have drained (bounded).
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.tasks.close();
        if tokio::time::timeout(DRAIN, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("connection tasks did not finish within the drain bound");
        }
    }
}
