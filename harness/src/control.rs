//! The control API of an imfed-server (`reference-server/src/control.rs`) as the harness uses
//! it: accounts, routes, scoped faults and the wire tap. Every call is bounded, and an
//! unreachable, slow or malformed answer is an error naming the call, never an empty result:
//! an observer that cannot see must not report that nothing happened.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Bound on one control API call (a long poll adds its wait to it).
pub const CONTROL_BOUND: Duration = Duration::from_secs(5);

/// Why a control API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No answer within the bound.
    #[error("control API {call}: no answer within {}ms", bound.as_millis())]
    Timeout {
        /// The call, e.g. `GET /tap`.
        call: String,
        /// The bound.
        bound: Duration,
    },
    /// The API could not be reached or the connection failed.
    #[error("control API {call}: {source}")]
    Unreachable {
        /// The call.
        call: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The API refused the call.
    #[error("control API {call}: HTTP {status}: {body}")]
    Status {
        /// The call.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body.
        body: String,
    },
    /// The answer is not what the API documents.
    #[error("control API {call}: malformed answer: {detail}")]
    Malformed {
        /// The call.
        call: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// A client of one server's control API.
#[derive(Clone, Debug)]
pub struct Control {
    base: String,
    client: reqwest::Client,
}

/// One page of the wire tap (`GET /tap`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapPage {
    /// The oldest chunk the server still keeps.
    pub first: u64,
    /// The newest chunk recorded.
    pub latest: u64,
    /// The connections of the chunks.
    pub connections: Vec<TapConn>,
    /// The chunks, in order.
    pub chunks: Vec<TapChunk>,
}

/// A tapped connection.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapConn {
    /// Its id.
    pub id: u64,
    /// `out`: the reference server opened it; `in`: the peer did.
    pub opened_by: String,
    /// The peer's socket address.
    pub peer: Option<String>,
    /// When it opened.
    pub opened_ms: u64,
    /// Its protocol when it is not XMPP (`rvp`, `sip`).
    #[serde(default)]
    pub protocol: Option<String>,
}

/// One chunk of the wire tap.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapChunk {
    /// Its position.
    pub seq: u64,
    /// Its connection.
    pub conn: u64,
    /// `in` (read by the reference server) or `out` (written by it).
    pub dir: String,
    /// `data`, `tls` or `closed`.
    pub kind: String,
    /// When, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// The bytes, base64.
    pub data: String,
    /// Its connection's protocol when it is not XMPP (`rvp`, `sip`).
    #[serde(default)]
    pub protocol: Option<String>,
}

impl Control {
    /// A client of the API at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: String) -> Control {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .expect("HTTP client");
        Control { base, client }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        bound: Duration,
    ) -> Result<T, ControlError> {
        let call = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = async {
            let response = request
                .send()
                .await
                .map_err(|source| ControlError::Unreachable {
                    call: call.clone(),
                    source,
                })?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|source| ControlError::Unreachable {
                    call: call.clone(),
                    source,
                })?;
            if !status.is_success() {
                return Err(ControlError::Status {
                    call: call.clone(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                });
            }
            // A 204 carries no body: it reads as JSON null.
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            serde_json::from_slice(bytes).map_err(|error| ControlError::Malformed {
                call: call.clone(),
                detail: error.to_string(),
            })
        };
        tokio::time::timeout(bound, answer)
            .await
            .map_err(|_| ControlError::Timeout {
                call: call.clone(),
                bound,
            })?
    }

    /// Creates an account.
    ///
    /// # Errors
    /// [`ControlError`]; a refusal (the account exists, the name is invalid) is `Status`.
    pub async fn create_account(
        &self,
        user: &str,
        domain: &str,
        password: &str,
    ) -> Result<(), ControlError> {
        let body = json!({"user": user, "domain": domain, "password": password});
        self.call::<serde_json::Value>(
            reqwest::Method::POST,
            "/accounts",
            Some(body),
            CONTROL_BOUND,
        )
        .await
        .map(|_| ())
    }

    /// Deletes an account (closing its sessions).
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn delete_account(&self, domain: &str, user: &str) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(
            reqwest::Method::DELETE,
            &format!("/accounts/{domain}/{user}"),
            None,
            CONTROL_BOUND,
        )
        .await
        .map(|_| ())
    }

    /// The dialback key (XEP-0185) the server, authoritative for `originating`, would send
    /// to `receiving` on the stream `stream_id`: what it confirms when `receiving` asks.
    ///
    /// # Errors
    /// [`ControlError`]; a server that does not host `originating` is `Status` 404.
    pub async fn dialback_key(
        &self,
        originating: &str,
        receiving: &str,
        stream_id: &str,
    ) -> Result<String, ControlError> {
        #[derive(Deserialize)]
        struct Key {
            key: String,
        }
        let body = json!({
            "originating": originating,
            "receiving": receiving,
            "stream_id": stream_id,
        });
        self.call::<Key>(
            reqwest::Method::POST,
            "/dialback/key",
            Some(body),
            CONTROL_BOUND,
        )
        .await
        .map(|answer| answer.key)
    }

    /// Routes `domain` to the s2s listener at `addr`.
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn put_route(&self, domain: &str, addr: &str) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(
            reqwest::Method::PUT,
            &format!("/routes/{domain}"),
            Some(json!({ "addr": addr })),
            CONTROL_BOUND,
        )
        .await
        .map(|_| ())
    }

    /// Sets the static route of `domain`'s RVP server-to-server listener.
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn put_rvp_route(&self, domain: &str, addr: &str) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(
            reqwest::Method::PUT,
            &format!("/rvp/routes/{domain}"),
            Some(json!({ "addr": addr })),
            CONTROL_BOUND,
        )
        .await
        .map(|_| ())
    }

    /// Sets the static route of `domain`'s SIP server: `route` is
    /// `host:port;transport=udp|tcp` (PROFILE.md §5).
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn put_sip_route(&self, domain: &str, route: &str) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(
            reqwest::Method::PUT,
            &format!("/sip/routes/{domain}"),
            Some(json!({ "addr": route })),
            CONTROL_BOUND,
        )
        .await
        .map(|_| ())
    }

    /// Turns on fault `switch` for what involves `accounts` (bare addresses); returns its id.
    ///
    /// # Errors
    /// [`ControlError`]; an unknown switch is `Status`.
    pub async fn add_fault(&self, switch: &str, accounts: &[String]) -> Result<u64, ControlError> {
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        let created: Created = self
            .call(
                reqwest::Method::POST,
                "/faults",
                Some(json!({ "switch": switch, "accounts": accounts })),
                CONTROL_BOUND,
            )
            .await?;
        Ok(created.id)
    }

    /// Makes the reference server play a dead host on federation (`silent`: its links cut,
    /// new connections held without a word) or stop.
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn set_s2s_silence(&self, silent: bool) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(
            reqwest::Method::PUT,
            "/s2s/silence",
            Some(json!({ "silent": silent })),
            // The server waits up to 5 s for the peers of the links it cuts to hang up.
            CONTROL_BOUND * 2,
        )
        .await
        .map(|_| ())
    }

    /// Turns the fault `id` off.
    ///
    /// # Errors
    /// [`ControlError`].
    pub async fn remove_fault(&self, id: u64) -> Result<(), ControlError> {
        self.call::<serde_json::Value>(
            reqwest::Method::DELETE,
            &format!("/faults/{id}"),
            None,
            CONTROL_BOUND,
        )
        .await
        .map(|_| ())
    }

    /// The wire tap after chunk `since`, waiting up to `wait` for the first.
    ///
    /// # Errors
    /// [`ControlError`], bounded by `wait` plus [`CONTROL_BOUND`].
    pub async fn tap(
        &self,
        protocol: &str,
        since: u64,
        wait: Duration,
    ) -> Result<TapPage, ControlError> {
        self.call(
            reqwest::Method::GET,
            &format!(
                "/tap?since={since}&wait_ms={}&protocol={protocol}",
                wait.as_millis()
            ),
            None,
            wait + CONTROL_BOUND,
        )
        .await
    }
}
