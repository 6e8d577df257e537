//! RVP front-end tests over the wire: raw HTTP text written from the spec's example
//! exchanges (§5.1.7 to §5.8), Digest computed here by hand, and two servers federating over
//! mutual TLS with a per-run CA.

mod federation;
mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use imfed_server::config::AccountSpec;
use imfed_server::{Config, Running, Server};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bound on every wait in these tests.
pub const BOUND: Duration = Duration::from_secs(10);

/// A parsed HTTP response or request.
#[derive(Debug, Clone)]
pub struct Http {
    /// The start line.
    pub start: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Http {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> u16 {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }
}

/// Reads one HTTP message (Content-Length framed) from `stream`.
pub async fn read_message(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Http> {
    let work = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let start = lines.next()?.to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + 4 + length {
                    let mut chunk = [0u8; 4096];
                    let read = stream.read(&mut chunk).await.ok()?;
                    if read == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                }
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned();
                buf.drain(..end + 4 + length);
                return Some(Http {
                    start,
                    headers,
                    body,
                });
            }
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(BOUND, work).await.ok().flatten()
}

fn hex_md5(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A client connection speaking raw HTTP, with Digest worked out by hand (RFC 2617 §3.2.2).
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    /// `user`, `realm`, `password`.
    pub user: (String, String, String),
    nonce: Option<String>,
    nc: u32,
}

impl Raw {
    pub async fn connect(addr: SocketAddr, user: &str, realm: &str, password: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
            user: (user.into(), realm.into(), password.into()),
            nonce: None,
            nc: 0,
        }
    }

    /// The principal URL of this client's user.
    pub fn url(&self) -> String {
        format!("http://{}/instmsg/aliases/{}", self.user.1, self.user.0)
    }

    /// Sends `head` (request line and headers, no blank line) with `body`, unauthenticated.
    pub async fn send_plain(&mut self, head: &str, body: &str) -> Http {
        let text = format!(
            "{}\r\nContent-Length: {}\r\n\r\n{body}",
            head.trim_end().replace('\n', "\r\n"),
            body.len()
        );
        self.stream.write_all(text.as_bytes()).await.expect("write");
        read_message(&mut self.stream, &mut self.buf)
            .await
            .expect("an answer")
    }

    /// Sends with Digest credentials, fetching the nonce from a 401 first when needed.
    pub async fn send(&mut self, head: &str, body: &str) -> Http {
        if self.nonce.is_none() {
            let challenge = self.send_plain(head, body).await;
            if challenge.status() != 401 {
                return challenge;
            }
            let header = challenge.header("www-authenticate").expect("challenge");
            let nonce = header
                .split("nonce=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("nonce");
            self.nonce = Some(nonce.to_string());
        }
        let mut lines = head.trim_end().lines();
        let request_line = lines.next().expect("request line");
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
        let authorization = format!(
            "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
        );
        let head = format!("{}\n{authorization}", head.trim_end());
        self.send_plain(&head, body).await
    }
}

/// A client's callback node: answers every request 200 and hands it to the test.
pub struct Callback {
    pub addr: SocketAddr,
    pub rx: mpsc::Receiver<Http>,
}

impl Callback {
    pub async fn start() -> Callback {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Some(request) = read_message(&mut stream, &mut buf).await {
                        let _ = tx.send(request).await;
                        let answer = "HTTP/1.1 200 Successful\r\nRVP-Notifications-Version: 0.2\r\nContent-Length: 0\r\n\r\n";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Callback { addr, rx }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next request that satisfies `pred`, within the bound.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Http) -> bool) -> Http {
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(request)) if pred(&request) => return request,
                Ok(Some(_)) => continue,
                _ => panic!("no {what} at the callback within {BOUND:?}"),
            }
        }
    }
}

/// A config for `domain` with the given accounts (user, password).
pub fn config(domain: &str, accounts: &[(&str, &str)]) -> Config {
    Config {
        domains: vec![domain.to_string()],
        accounts: accounts
            .iter()
            .map(|(user, password)| AccountSpec {
                user: user.to_string(),
                domain: domain.to_string(),
                password: password.to_string(),
            })
            .collect(),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Running {
    Server::new(config).start().await.expect("server starts")
}

/// The login subscription of §5.1.7.1; returns the Subscription-Id.
pub async fn login(raw: &mut Raw, callback: &Callback) -> String {
    let url = raw.url();
    let realm = raw.user.1.clone();
    let user = raw.user.0.clone();
    let answer = raw
        .send(
            &format!(
                "SUBSCRIBE /instmsg/aliases/{user} HTTP/1.1
Subscription-Lifetime: 14400
Notification-Type: pragma/notify
Call-Back: {}
RVP-Notifications-Version: 0.2
Host: {realm}
RVP-From-Principal: {url}",
                callback.url()
            ),
            "",
        )
        .await;
    assert_eq!(answer.start, "HTTP/1.1 200 Successful", "{answer:?}");
    answer
        .header("subscription-id")
        .expect("Subscription-Id")
        .to_string()
}

/// A PROPPATCH of `r:state` as a leased value (§5.5.1), for `view`.
pub fn proppatch(raw: &Raw, state: &str, timeout: u64, view: Option<&str>) -> (String, String) {
    let user = &raw.user.0;
    let realm = &raw.user.1;
    let view = view.map_or(String::new(), |v| format!("<r:view-id>{v}</r:view-id>"));
    (
        format!(
            "PROPPATCH /instmsg/aliases/{user} HTTP/1.1
Host: {realm}
RVP-Notifications-Version: 0.2
RVP-From-Principal: {}
Content-Type: text/xml",
            raw.url()
        ),
        format!(
            "<?xml version=\"1.0\"?><d:propertyupdate xmlns:d='DAV:' xmlns:r='http://schemas.microsoft.com/rvp/'><d:set><d:prop><r:state><r:leased-value><r:value><r:{state}/></r:value><r:default-value><r:offline/></r:default-value><d:timeout>{timeout}</d:timeout></r:leased-value>{view}</r:state></d:prop></d:set></d:propertyupdate>"
        ),
    )
}

/// A NOTIFY message (§5.6.1) from `raw`'s user to `to`.
pub fn message(raw: &Raw, to: &str, text: &str, hop: u32) -> (String, String) {
    let to_host = to
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    (
        format!(
            "NOTIFY {to} HTTP/1.1
Host: {to_host}
RVP-Notifications-Version: 0.2
RVP-Ack-Type: DeepOr
RVP-Hop-Count: {hop}
RVP-From-Principal: {}
Content-Type: text/xml",
            raw.url()
        ),
        format!(
            "<r:notification xmlns:d=\"DAV:\" xmlns:r=\"http://schemas.microsoft.com/rvp/\"><r:message><r:notification-from><r:contact><d:href>{}</d:href><r:description>me</r:description></r:contact></r:notification-from><r:notification-to><r:contact><d:href>{to}</d:href><r:description>you</r:description></r:contact></r:notification-to><r:msgbody><r:mime-data><![CDATA[MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nSession-Id: {{79FC61B5-1234-1234-8A10-941F33CA4C90}}\r\n\r\n{text}]]></r:mime-data></r:msgbody></r:message></r:notification>",
            raw.url()
        ),
    )
}
