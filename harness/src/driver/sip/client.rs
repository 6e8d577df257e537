//! The user agent's requests (RFC 3261 §8.1, §22): out-of-dialog requests built again for
//! each attempt, and Digest answered on `401` and `407` once per request and reused with a
//! counting `nc` (RFC 2617 §3.2.2), each exchange recorded in the transcript.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imfed_reports::Flow;
use imfed_sip::digest::{Challenge, DigestClient};
use imfed_sip::transaction::new_branch;
use imfed_sip::{Method, NameAddr, Request, Response, Uri};

use super::transport::{Agent, Transport, TransportError};
use super::{Identity, mapping};
use crate::driver::lifecycle::EndCause;
use crate::driver::random_token;

/// The Digest state of a user agent: one client per challenge header (RFC 3261 §22.3).
#[derive(Debug)]
pub(super) struct Auth {
    /// Answers `WWW-Authenticate` (the registrar, or a UAS).
    pub(super) www: DigestClient,
    /// Answers `Proxy-Authenticate` (the home server as proxy).
    pub(super) proxy: DigestClient,
    /// Whether a request other than REGISTER was challenged with 401: the server then
    /// wants `Authorization` on those too.
    pub(super) www_everywhere: bool,
}

/// Sends requests with Digest, recording both ways; shared by the session and its ping
/// tasks.
#[derive(Clone, Debug)]
pub(super) struct Client {
    pub(super) id: Identity,
    pub(super) agent: Agent,
    pub(super) auth: Arc<Mutex<Auth>>,
    pub(super) bound: Duration,
}

/// The challenge a response carries in `header`, if one can be read.
fn challenge_in(response: &Response, header: &str) -> Option<Challenge> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(header))
        .find_map(|(_, value)| Challenge::parse(value).ok())
}

impl Client {
    /// Adds the credentials of the challenges held (a fresh `cnonce`, the next `nc`).
    fn authorize(&self, request: &mut Request) {
        let method = request.method.to_string();
        let uri = request.uri.to_string();
        let mut auth = self.auth.lock().expect("auth lock");
        if (request.method == Method::Register || auth.www_everywhere)
            && let Some(value) = auth.www.authorization(&method, &uri, &random_token(16))
        {
            request.headers.set("Authorization", &value);
        }
        if let Some(value) = auth.proxy.authorization(&method, &uri, &random_token(16)) {
            request.headers.set("Proxy-Authorization", &value);
        }
    }

    /// Takes the challenge of a 401 or 407; whether there is one to answer.
    fn challenged(&self, request: &Method, response: &Response) -> bool {
        let mut auth = self.auth.lock().expect("auth lock");
        match response.status {
            401 => {
                let answerable = challenge_in(response, "WWW-Authenticate")
                    .is_some_and(|challenge| auth.www.challenged(challenge));
                if answerable && *request != Method::Register {
                    auth.www_everywhere = true;
                }
                answerable
            }
            407 => challenge_in(response, "Proxy-Authenticate")
                .is_some_and(|challenge| auth.proxy.challenged(challenge)),
            _ => false,
        }
    }

    /// [`Client::exchange_within`] the bound of a request the home server answers itself.
    pub(super) async fn exchange(
        &self,
        make: impl FnMut() -> Request,
    ) -> Result<Response, TransportError> {
        self.exchange_within(make, self.bound).await
    }

    /// Sends the request `make` builds and returns its final response within `bound` per
    /// attempt. A 401 or 407 with a challenge is answered once each: `make` builds the
    /// request again (same Call-ID and tags, the next CSeq, RFC 3261 §22.2) and it goes out
    /// with credentials. A transaction that times out means the server stopped answering,
    /// which ends the session.
    pub(super) async fn exchange_within(
        &self,
        mut make: impl FnMut() -> Request,
        bound: Duration,
    ) -> Result<Response, TransportError> {
        let (mut www, mut proxy) = (false, false);
        loop {
            let mut request = make();
            let method = request.method.clone();
            self.authorize(&mut request);
            self.agent.stamp(&mut request);
            self.id.record(Flow::Sent, mapping::request_text(&request));
            let response = match self.agent.send(request, bound).await {
                Ok(response) => response,
                Err(error) => {
                    self.failed(&method, &error);
                    return Err(error);
                }
            };
            self.id
                .record(Flow::Received, mapping::response_text(&response));
            let retry = match response.status {
                401 if !www => {
                    www = true;
                    self.challenged(&method, &response)
                }
                407 if !proxy => {
                    proxy = true;
                    self.challenged(&method, &response)
                }
                _ => false,
            };
            if !retry {
                return Ok(response);
            }
        }
    }

    /// Sends a request as it was written (its own top `Via` names the transaction: nothing
    /// is stamped) and returns its final response within `bound` per attempt. One 401 or
    /// 407 with a challenge is answered (RFC 3261 §22.2, §22.3): the request goes again with
    /// `Authorization` or `Proxy-Authorization` for that challenge added, a new branch in its
    /// top `Via` (a new transaction, §8.1.1.7) and the next CSeq (§8.1.3.5). The session's
    /// own Digest state is left as it was: the credentials come from a copy of it.
    pub(super) async fn exchange_raw(
        &self,
        mut request: Request,
        bound: Duration,
    ) -> Result<Response, TransportError> {
        let mut answered = false;
        loop {
            self.id.record(Flow::Sent, mapping::request_text(&request));
            let response = match self.agent.send(request.clone(), bound).await {
                Ok(response) => response,
                Err(error) => {
                    self.failed(&request.method, &error);
                    return Err(error);
                }
            };
            self.id
                .record(Flow::Received, mapping::response_text(&response));
            if answered {
                return Ok(response);
            }
            let Some((header, value)) = self.answer_challenge(&request, &response) else {
                return Ok(response);
            };
            answered = true;
            request.headers.set(header, value);
            if let Ok(cseq) = request.cseq() {
                request
                    .headers
                    .set("CSeq", format!("{} {}", cseq.seq + 1, cseq.method));
            }
            if let Ok(mut via) = request.top_via() {
                via.set_param("branch", Some(&new_branch(&random_token(16))));
                request.headers.remove_first("Via");
                request.headers.prepend("Via", via.to_string());
            }
        }
    }

    /// The credentials header answering a 401's or 407's challenge to `request`, from a copy
    /// of the session's Digest state.
    fn answer_challenge(
        &self,
        request: &Request,
        response: &Response,
    ) -> Option<(&'static str, String)> {
        let (challenge_header, header) = match response.status {
            401 => ("WWW-Authenticate", "Authorization"),
            407 => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => return None,
        };
        let challenge = challenge_in(response, challenge_header)?;
        let mut digest = {
            let auth = self.auth.lock().expect("auth lock");
            if response.status == 401 {
                auth.www.clone()
            } else {
                auth.proxy.clone()
            }
        };
        if !digest.challenged(challenge) {
            return None;
        }
        let value = digest.authorization(
            request.method.as_str(),
            &request.uri.to_string(),
            &random_token(16),
        )?;
        Some((header, value))
    }

    /// Records why a request got no final response. A transaction that timed out is no end
    /// of the session by itself: the server answered none, which the scenario's checks (and
    /// the liveness round trip, PROFILE.md §8) judge; a response that comes later is still
    /// received. A TCP connection that failed is the end.
    fn failed(&self, method: &Method, error: &TransportError) {
        match error {
            TransportError::TransactionTimeout | TransportError::Timeout(_) => {
                self.id.note(format!("{method}: {error}"));
            }
            _ if self.agent.transport() == Transport::Tcp => self
                .id
                .lose(EndCause::Sip(format!("home server unreachable: {error}"))),
            _ => self.id.note(error.to_string()),
        }
    }
}

/// An out-of-dialog request, built again for each attempt with the next CSeq.
#[derive(Clone, Debug)]
pub(super) struct Outgoing {
    method: Method,
    uri: Uri,
    from: NameAddr,
    to: NameAddr,
    call_id: String,
    pub(super) cseq: u32,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

impl Outgoing {
    pub(super) fn new(method: Method, uri: Uri, from: &Uri, to: Uri) -> Outgoing {
        Outgoing {
            method,
            uri,
            from: NameAddr::new(from.clone()).with_tag(&random_token(10)),
            to: NameAddr::new(to),
            call_id: format!("{}@127.0.0.1", random_token(20)),
            cseq: 0,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(super) fn with(mut self, name: &'static str, value: impl Into<String>) -> Outgoing {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn with_body(mut self, content_type: &'static str, body: Vec<u8>) -> Outgoing {
        self.body = Some((content_type, body));
        self
    }

    pub(super) fn next(&mut self) -> Request {
        self.cseq += 1;
        let mut request = Request::new(self.method.clone(), self.uri.clone());
        let headers = &mut request.headers;
        headers.push("Max-Forwards", "70");
        headers.push("From", self.from.to_string());
        headers.push("To", self.to.to_string());
        headers.push("Call-ID", &self.call_id);
        headers.push("CSeq", format!("{} {}", self.cseq, self.method));
        for (name, value) in &self.headers {
            headers.push(name, value);
        }
        headers.push("User-Agent", "imfed");
        if let Some((content_type, body)) = &self.body {
            request.headers.push("Content-Type", *content_type);
            request.body = body.clone();
        }
        request
    }
}
