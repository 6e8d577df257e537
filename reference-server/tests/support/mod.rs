//! Test support: imfed-server processes on loopback and a small XMPP client driving the
//! sans-I/O login of imfed-xmpp over tokio.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use imfed_server::xmpp::conn::Conn;
use imfed_xmpp::client::{Login, LoginAction, LoginConfig, Mechanism, TlsPolicy};
use imfed_xmpp::{Element, Jid, Limits, StreamEvent, ns};
use serde_json::Value;
use tokio::net::TcpStream;

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// An imfed-server child process, stopped with SIGTERM (then SIGKILL) when dropped.
pub struct ServerProc {
    child: Child,
    pub domain: String,
    pub c2s: SocketAddr,
    pub s2s: SocketAddr,
    pub control: String,
    /// RVP client listener (plain HTTP).
    pub rvp: SocketAddr,
    /// RVP server-to-server listener (mutual TLS).
    pub rvp_s2s: SocketAddr,
}

impl ServerProc {
    /// Starts `imfed-server --domain DOMAIN` on loopback port 0 with extra `args`, and waits
    /// for its ready line.
    pub fn start(domain: &str, args: &[&str]) -> ServerProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imfed-server"))
            .args(["--domain", domain, "--allow-plain"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn imfed-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("imfed-server did not print its ready line in time");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line {line:?} is not JSON: {e}"));
        let addr = |key: &str| -> SocketAddr {
            ready[key]
                .as_str()
                .expect("address")
                .parse()
                .expect("socket address")
        };
        ServerProc {
            domain: domain.to_string(),
            c2s: addr("c2s"),
            s2s: addr("s2s"),
            control: format!("http://{}", addr("control")),
            rvp: addr("rvp"),
            rvp_s2s: addr("rvp_s2s"),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Control API: create an account.
    pub async fn create_account(&self, user: &str, password: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/accounts", self.control))
            .json(&serde_json::json!({"user": user, "domain": self.domain, "password": password}))
            .send()
            .await
            .expect("control API");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Control API: route a remote domain to an s2s address.
    pub async fn route(&self, domain: &str, addr: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/routes/{domain}", self.control))
            .json(&serde_json::json!({ "addr": addr }))
            .send()
            .await
            .expect("control API");
        assert_eq!(response.status(), 204);
    }

    /// Control API: GET a path as JSON.
    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.control))
            .await
            .expect("control API")
            .json()
            .await
            .expect("JSON")
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns whether it exited
    /// on its own.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// Two servers that route to each other.
pub async fn federated_pair(args: &[&str]) -> (ServerProc, ServerProc) {
    let a = ServerProc::start("a.test", args);
    let b = ServerProc::start("b.test", args);
    a.route("b.test", &b.s2s.to_string()).await;
    b.route("a.test", &a.s2s.to_string()).await;
    (a, b)
}

/// A logged-in client with a buffer of received stanzas.
pub struct Client {
    conn: Conn,
    pub jid: Jid,
    inbox: VecDeque<Element>,
}

impl Client {
    /// Logs in with SCRAM-SHA-1 (PLAIN as fallback), TLS if offered.
    pub async fn login(addr: SocketAddr, jid: &str, password: &str) -> Client {
        Self::login_with(addr, jid, password, TlsPolicy::IfOffered, None)
            .await
            .expect("login")
    }

    /// Logs in with the given TLS policy and, if given, only one mechanism.
    pub async fn login_with(
        addr: SocketAddr,
        jid: &str,
        password: &str,
        tls: TlsPolicy,
        mechanism: Option<Mechanism>,
    ) -> Result<Client, String> {
        let jid: Jid = jid.parse().map_err(|e| format!("{e}"))?;
        let mut config = LoginConfig::new(jid, password, imfed_server::xmpp::random_id(24));
        config.tls = tls;
        if let Some(mechanism) = mechanism {
            config.mechanisms = vec![mechanism];
        }
        let mut login = Login::new(config);
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut conn = Conn::new(tcp, ns::CLIENT, Limits::default());
        let mut actions: VecDeque<LoginAction> = login.start().into();
        loop {
            while let Some(action) = actions.pop_front() {
                match action {
                    LoginAction::Send(bytes) => {
                        conn.send_bytes(&bytes).await.map_err(|e| e.to_string())?
                    }
                    LoginAction::ResetParser => conn.restart(),
                    LoginAction::StartTls => {
                        conn.connect_tls(
                            &imfed_server::tls::insecure_connector(),
                            login.domain(),
                            WAIT,
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                        actions.extend(login.tls_established());
                    }
                    LoginAction::Done(jid) => {
                        return Ok(Client {
                            conn,
                            jid,
                            inbox: VecDeque::new(),
                        });
                    }
                }
            }
            let event = conn
                .next_event_within(WAIT, "login")
                .await
                .map_err(|e| e.to_string())?;
            actions.extend(login.handle(event).map_err(|e| e.to_string())?);
        }
    }

    /// Whether TLS is in use.
    pub fn secure(&self) -> bool {
        self.conn.secure
    }

    pub async fn send(&mut self, stanza: Element) {
        self.conn.send(&stanza).await.expect("send");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.send_bytes(bytes).await.expect("send");
    }

    /// The next stream event, bypassing the inbox (for stream-error tests).
    pub async fn next_event(&mut self) -> Result<StreamEvent, String> {
        self.conn
            .next_event_within(WAIT, "event")
            .await
            .map_err(|e| e.to_string())
    }

    /// Waits for the first stanza matching `pred`; others stay in the inbox.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
        match self.wait_for(WAIT, &pred).await {
            Some(stanza) => stanza,
            None => panic!(
                "{}: no {what} within {WAIT:?}; received instead: {:?}",
                self.jid,
                self.inbox
                    .iter()
                    .map(|e| e.to_xml(ns::CLIENT))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// Asserts that nothing matching `pred` arrives within `quiet`.
    pub async fn expect_none(
        &mut self,
        what: &str,
        quiet: Duration,
        pred: impl Fn(&Element) -> bool,
    ) {
        if let Some(stanza) = self.wait_for(quiet, &pred).await {
            panic!(
                "{}: unexpected {what}: {}",
                self.jid,
                stanza.to_xml(ns::CLIENT)
            );
        }
    }

    async fn wait_for(
        &mut self,
        bound: Duration,
        pred: &impl Fn(&Element) -> bool,
    ) -> Option<Element> {
        if let Some(index) = self.inbox.iter().position(pred) {
            return self.inbox.remove(index);
        }
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let event = tokio::time::timeout_at(deadline, self.conn.next_event()).await;
            match event {
                Ok(Ok(StreamEvent::Element(stanza))) => {
                    // Answer roster pushes as RFC 6121 §2.1.6 asks.
                    if stanza.name == "iq"
                        && stanza.attr("type") == Some("set")
                        && stanza.child("query", ns::ROSTER).is_some()
                    {
                        let reply = Element::new("iq", ns::CLIENT)
                            .with_attr("type", "result")
                            .with_opt_attr("id", stanza.attr("id"));
                        let _ = self.conn.send(&reply).await;
                    }
                    if pred(&stanza) {
                        return Some(stanza);
                    }
                    self.inbox.push_back(stanza);
                }
                Ok(Ok(other)) => panic!("{}: stream event {other:?}", self.jid),
                Ok(Err(error)) => panic!("{}: connection failed: {error}", self.jid),
                Err(_) => return None,
            }
        }
    }

    /// Sends an iq and waits for its result or error.
    pub async fn iq(&mut self, itype: &str, to: Option<&str>, payload: Element) -> Element {
        let id = imfed_server::xmpp::random_id(8);
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", itype)
            .with_attr("id", id.clone())
            .with_opt_attr("to", to)
            .with_child(payload);
        self.send(iq).await;
        self.expect("iq reply", |e| {
            e.name == "iq" && e.attr("id") == Some(id.as_str())
        })
        .await
    }

    pub async fn roster(&mut self) -> Vec<Element> {
        let reply = self
            .iq("get", None, Element::new("query", ns::ROSTER))
            .await;
        assert_eq!(
            reply.attr("type"),
            Some("result"),
            "{}",
            reply.to_xml(ns::CLIENT)
        );
        reply
            .child("query", ns::ROSTER)
            .map(|q| q.elements().cloned().collect())
            .unwrap_or_default()
    }

    pub async fn presence(&mut self, ptype: Option<&str>, to: Option<&str>) {
        let stanza = Element::new("presence", ns::CLIENT)
            .with_opt_attr("type", ptype)
            .with_opt_attr("to", to);
        self.send(stanza).await;
    }

    pub async fn chat(&mut self, to: &str, body: &str) {
        self.send(
            Element::new("message", ns::CLIENT)
                .with_attr("to", to)
                .with_attr("type", "chat")
                .with_child(Element::new("body", ns::CLIENT).with_text(body)),
        )
        .await;
    }

    /// Closes the stream cleanly.
    pub async fn logout(mut self) {
        self.conn.close().await;
    }

    /// Drops the TCP connection without closing the stream.
    pub fn abort(self) {
        drop(self);
    }
}

/// Predicate: a stanza named `name` from a JID whose bare form is `from`, with `type`.
pub fn stanza_from<'a>(
    name: &'a str,
    from: &'a str,
    ptype: Option<&'a str>,
) -> impl Fn(&Element) -> bool + 'a {
    move |e: &Element| {
        e.name == name
            && e.attr("type") == ptype
            && e.attr("from")
                .is_some_and(|f| f == from || f.split('/').next() == Some(from))
    }
}

/// Whether Prosody is installed; if not, installs it with the vendor script (idempotent,
/// needs root and Debian's package archive).
pub fn ensure_prosody() {
    if prosody_installed() {
        return;
    }
    let status = Command::new(vendor("install.sh"))
        .status()
        .expect("run vendors/prosody/install.sh");
    assert!(status.success(), "vendors/prosody/install.sh failed");
    assert!(
        prosody_installed(),
        "prosody is still missing after install.sh"
    );
}

/// Whether the `prosody` binary is on the PATH.
pub fn prosody_installed() -> bool {
    Command::new("sh")
        .args(["-c", "command -v prosody"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Registers an account on a Prosody started by [`start_prosody`].
pub fn prosody_register(prosody: &Prosody, user: &str, domain: &str, password: &str) {
    let status = Command::new(vendor("register.sh"))
        .args([prosody.dir.to_str().unwrap(), user, domain, password])
        .status()
        .expect("register.sh");
    assert!(status.success(), "register.sh {user}@{domain} failed");
}

/// A Prosody instance started by the vendor scripts, stopped by PID on drop.
pub struct Prosody {
    pub dir: PathBuf,
    pub c2s: std::net::SocketAddr,
    pub pid: u32,
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = Command::new(vendor("stop.sh")).arg(&self.dir).status();
    }
}

pub fn vendor(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vendors/prosody")
        .join(script)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_prosody(domain: &str, c2s: u16, s2s: u16, route: (&str, u16)) -> Prosody {
    let dir = std::env::temp_dir().join(format!("imfed-bench-{domain}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(vendor("start.sh"))
        .env("PROSODY_DOMAIN", domain)
        .env("PROSODY_RUN_DIR", &dir)
        .env("PROSODY_C2S_PORT", c2s.to_string())
        .env("PROSODY_S2S_PORT", s2s.to_string())
        .env(
            "PROSODY_ROUTES",
            format!("{}=127.0.0.1:{}", route.0, route.1),
        )
        .output()
        .expect("run vendors/prosody/start.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "prosody start failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pid = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .expect("READY line with pid");
    Prosody {
        dir,
        c2s: ([127, 0, 0, 1], c2s).into(),
        pid,
    }
}

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}
