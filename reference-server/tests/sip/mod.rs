//! SIP front-end tests over the wire: raw SIP text written from the RFCs' examples (RFC 3261
//! §24, RFC 3428 §4, RFC 3903 §10, RFC 3856 §10), Digest worked out here by hand, and two
//! servers federating over UDP and TCP. Nothing here uses `imfed-sip`: what the server sends
//! is read by this file's own small parser.

mod federation;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use imfed_server::config::AccountSpec;
use imfed_server::{Config, Running, Server};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Bound on every wait in these tests.
pub const BOUND: Duration = Duration::from_secs(10);

/// A SIP message as this file reads it.
#[derive(Debug, Clone)]
pub struct Sip {
    /// The start line.
    pub start: String,
    /// Headers in order, names lower-cased with compact forms expanded.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Sip {
    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The status of a response (0 for a request).
    pub fn status(&self) -> u16 {
        if !self.start.starts_with("SIP/2.0 ") {
            return 0;
        }
        self.start
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    /// The method of a request.
    pub fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or_default()
    }

    /// A `name="value"` or `name=value` parameter out of a header value.
    pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
        value.split([';', ',']).find_map(|part| {
            let (n, v) = part.trim().split_once('=')?;
            // The first directive of a challenge follows its scheme (`Digest realm=…`).
            let n = n.split_whitespace().last().unwrap_or_default();
            n.eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"'))
        })
    }

    /// The response to this request with `status`, copying what RFC 3261 §8.2.6.2 says.
    pub fn answer(&self, status: u16, reason: &str) -> String {
        let mut out = format!("SIP/2.0 {status} {reason}\r\n");
        for name in ["via", "from", "to", "call-id", "cseq"] {
            for value in self.all(name) {
                let value = if name == "to" && !value.contains("tag=") {
                    format!("{value};tag=ua{status}")
                } else {
                    value.to_string()
                };
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str("Content-Length: 0\r\n\r\n");
        out
    }
}

fn expand(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "o" => "event",
        "s" => "subject",
        other => return other.to_string(),
    }
    .to_string()
}

/// Parses one message from the front of `bytes`; returns it and how many bytes it took.
pub fn parse(bytes: &[u8]) -> Option<(Sip, usize)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let start = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (expand(n), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if bytes.len() < end + 4 + length {
        return None;
    }
    let body = String::from_utf8_lossy(&bytes[end + 4..end + 4 + length]).into_owned();
    Some((
        Sip {
            start,
            headers,
            body,
        },
        end + 4 + length,
    ))
}

fn hex_md5(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a [`Ua`] reaches its server.
#[derive(Debug)]
enum Link {
    Udp(UdpSocket),
    Tcp {
        stream: TcpStream,
        buf: Vec<u8>,
        incoming: mpsc::Receiver<(Sip, mpsc::Sender<String>)>,
    },
}

/// A user agent speaking raw SIP to its home server, with Digest by hand (RFC 2617 §3.2.2,
/// RFC 3261 §22). Everything it receives that is not awaited is kept in `inbox`.
#[derive(Debug)]
pub struct Ua {
    link: Link,
    /// The server.
    pub server: SocketAddr,
    /// The Contact address.
    pub contact: SocketAddr,
    /// `user`, `domain`, `password`.
    pub user: (String, String, String),
    /// Requests received (answered 200 unless `answer_with` says otherwise).
    pub inbox: Vec<Sip>,
    /// Status to answer incoming requests with.
    pub answer_with: u16,
    nonce: Option<String>,
    nc: u32,
    seq: u32,
    call_id: String,
    transport: &'static str,
}

impl Ua {
    /// A UDP user agent of `user@domain` using `server`.
    pub async fn udp(server: SocketAddr, user: &str, domain: &str, password: &str) -> Ua {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let contact = socket.local_addr().expect("addr");
        Ua::new(
            Link::Udp(socket),
            server,
            contact,
            (user, domain, password),
            "udp",
        )
    }

    /// A TCP user agent: one connection for its requests, a listener for requests to it.
    pub async fn tcp(server: SocketAddr, user: &str, domain: &str, password: &str) -> Ua {
        let stream = TcpStream::connect(server).await.expect("connect");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let contact = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let (answers, mut answers_rx) = mpsc::channel::<String>(8);
                    loop {
                        while let Some((message, used)) = parse(&buf) {
                            buf.drain(..used);
                            let _ = tx.send((message, answers.clone())).await;
                        }
                        let mut chunk = [0u8; 8192];
                        tokio::select! {
                            read = conn.read(&mut chunk) => match read {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            },
                            Some(answer) = answers_rx.recv() => {
                                if conn.write_all(answer.as_bytes()).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        let link = Link::Tcp {
            stream,
            buf: Vec::new(),
            incoming: rx,
        };
        Ua::new(link, server, contact, (user, domain, password), "tcp")
    }

    fn new(
        link: Link,
        server: SocketAddr,
        contact: SocketAddr,
        (user, domain, password): (&str, &str, &str),
        transport: &'static str,
    ) -> Ua {
        Ua {
            link,
            server,
            contact,
            user: (user.into(), domain.into(), password.into()),
            inbox: Vec::new(),
            answer_with: 200,
            nonce: None,
            nc: 0,
            seq: 0,
            call_id: format!("{user}-{}@test", contact.port()),
            transport,
        }
    }

    /// This user's AOR.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user.0, self.user.1)
    }

    /// The Contact header value.
    pub fn contact_header(&self) -> String {
        format!(
            "<sip:{}@{};transport={}>",
            self.user.0, self.contact, self.transport
        )
    }

    /// Writes raw text to the server.
    pub async fn send_text(&mut self, text: &str) {
        match &mut self.link {
            Link::Udp(socket) => {
                socket
                    .send_to(text.as_bytes(), self.server)
                    .await
                    .expect("send");
            }
            Link::Tcp { stream, .. } => stream.write_all(text.as_bytes()).await.expect("write"),
        }
    }

    /// The next message from the server, answering requests as it goes; `None` after the
    /// bound.
    pub async fn next(&mut self, bound: Duration) -> Option<Sip> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (message, answer_to) = match &mut self.link {
                Link::Udp(socket) => {
                    let mut buf = vec![0u8; 65_535];
                    let (n, from) = tokio::time::timeout(left, socket.recv_from(&mut buf))
                        .await
                        .ok()?
                        .ok()?;
                    let (message, _) = parse(&buf[..n])?;
                    (message, Some(Answer::Udp(from)))
                }
                Link::Tcp {
                    stream,
                    buf,
                    incoming,
                } => {
                    if let Some((message, used)) = parse(buf) {
                        buf.drain(..used);
                        (message, None)
                    } else {
                        let mut chunk = [0u8; 8192];
                        tokio::select! {
                            read = stream.read(&mut chunk) => match read {
                                Ok(0) | Err(_) => return None,
                                Ok(n) => { buf.extend_from_slice(&chunk[..n]); continue; }
                            },
                            Some((message, answers)) = incoming.recv() => (message, Some(Answer::Tcp(answers))),
                            () = tokio::time::sleep(left) => return None,
                        }
                    }
                }
            };
            if message.status() == 0 {
                let answer = message.answer(self.answer_with, "Answer");
                match answer_to {
                    Some(Answer::Udp(from)) => {
                        if let Link::Udp(socket) = &self.link {
                            socket.send_to(answer.as_bytes(), from).await.expect("send");
                        }
                    }
                    Some(Answer::Tcp(answers)) => {
                        let _ = answers.send(answer).await;
                    }
                    None => self.send_text(&answer).await,
                }
            }
            return Some(message);
        }
    }

    /// The next request of `method` (earlier other requests go to the inbox).
    pub async fn request(&mut self, method: &str) -> Sip {
        if let Some(index) = self.inbox.iter().position(|m| m.method() == method) {
            return self.inbox.remove(index);
        }
        loop {
            let message = self
                .next(BOUND)
                .await
                .unwrap_or_else(|| panic!("no {method} within {BOUND:?}"));
            if message.status() == 0 && message.method() == method {
                return message;
            }
            if message.status() == 0 {
                self.inbox.push(message);
            }
        }
    }

    /// Sends a request (`head`: start line and headers other than Via, Call-ID, CSeq,
    /// Max-Forwards, From, To and Content-Length unless `head` gives them) and returns its
    /// final response, answering a 401 or 407 challenge once.
    pub async fn send(&mut self, head: &str, body: &str) -> Sip {
        self.seq += 1;
        let response = self.send_once(head, body, None).await;
        if response.status() != 401 && response.status() != 407 {
            return response;
        }
        let (challenge, credentials) = if response.status() == 401 {
            ("www-authenticate", "Authorization")
        } else {
            ("proxy-authenticate", "Proxy-Authorization")
        };
        let header = response.header(challenge).expect("a challenge");
        self.nonce = Sip::param(header, "nonce").map(str::to_string);
        self.seq += 1;
        let authorization = self.authorization(head, credentials);
        self.send_once(head, body, Some(&authorization)).await
    }

    fn authorization(&mut self, head: &str, header: &str) -> String {
        let request_line = head.trim_start().lines().next().expect("request line");
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default();
        let uri = parts.next().unwrap_or_default();
        self.nc += 1;
        let nc = format!("{:08x}", self.nc);
        let cnonce = "0a4f113b";
        let (user, realm, password) = &self.user;
        let nonce = self.nonce.clone().unwrap_or_default();
        let ha1 = hex_md5(&format!("{user}:{realm}:{password}"));
        let ha2 = hex_md5(&format!("{method}:{uri}"));
        let response = hex_md5(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        format!(
            "{header}: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", algorithm=MD5"
        )
    }

    async fn send_once(&mut self, head: &str, body: &str, authorization: Option<&str>) -> Sip {
        let head = head.trim().replace("\r\n", "\n");
        let method = head.split(' ').next().unwrap_or_default().to_string();
        let has = |name: &str| {
            head.lines()
                .any(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
        };
        let branch = format!("z9hG4bK{}x{}", self.seq, self.contact.port());
        let mut text = head.replace('\n', "\r\n");
        text.push_str("\r\n");
        text.push_str(&format!(
            "Via: SIP/2.0/{} {};branch={branch};rport\r\n",
            self.transport.to_ascii_uppercase(),
            self.contact
        ));
        if !has("from") {
            text.push_str(&format!("From: <{}>;tag={}f\r\n", self.aor(), self.user.0));
        }
        if !has("to") {
            text.push_str(&format!("To: <{}>\r\n", self.aor()));
        }
        if !has("call-id") {
            text.push_str(&format!("Call-ID: {}-{}\r\n", self.call_id, self.seq));
        }
        if !has("cseq") {
            text.push_str(&format!("CSeq: {} {method}\r\n", self.seq));
        }
        if !has("max-forwards") {
            text.push_str("Max-Forwards: 70\r\n");
        }
        if let Some(authorization) = authorization {
            text.push_str(authorization);
            text.push_str("\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.send_text(&text).await;
        self.response_to(&branch).await
    }

    /// The final response whose top Via carries `branch`.
    async fn response_to(&mut self, branch: &str) -> Sip {
        loop {
            let message = self
                .next(BOUND)
                .await
                .unwrap_or_else(|| panic!("no response within {BOUND:?}"));
            if message.status() == 0 {
                self.inbox.push(message);
                continue;
            }
            let ours = message
                .header("via")
                .is_some_and(|via| via.contains(branch));
            if ours && message.status() >= 200 {
                return message;
            }
        }
    }

    /// REGISTERs this UA's contact for `expires` seconds; returns the final response.
    pub async fn register(&mut self, expires: u32) -> Sip {
        let head = format!(
            "REGISTER sip:{} SIP/2.0\nContact: {}\nExpires: {expires}",
            self.user.1,
            self.contact_header()
        );
        self.send(&head, "").await
    }
}

enum Answer {
    Udp(SocketAddr),
    Tcp(mpsc::Sender<String>),
}

/// A PIDF document (RFC 3863 §3.4's shape) with one tuple.
pub fn pidf(entity: &str, basic: &str, note: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"{entity}\">\r\n<tuple id=\"t1\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\r\n</presence>"
    )
}

/// A server for `domain` with `users` (user, password).
pub fn config(domain: &str, users: &[(&str, &str)]) -> Config {
    Config {
        domains: vec![domain.to_string()],
        accounts: users
            .iter()
            .map(|(user, password)| AccountSpec {
                user: (*user).to_string(),
                domain: domain.to_string(),
                password: (*password).to_string(),
            })
            .collect(),
        ..Config::default()
    }
}

/// Starts a server.
pub async fn start(config: Config) -> Running {
    Server::new(config).start().await.expect("server starts")
}
