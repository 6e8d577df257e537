//! The RVP client transport (RVP §3, PROFILE.md §2): HTTP/1.1 with keep-alive to the home
//! server's `rvp_listen`, through hyper's connection-level client, with Digest
//! authentication (RFC 2617) answered on `401` and reused afterwards. A connection the
//! server closed is replaced on the next request; every request is bounded in time.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use imfed_rvp::digest::{Challenge, DigestClient};
use imfed_rvp::{Limits, Request, Response, ResponseDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::driver::random_token;

/// The largest response body read.
const MAX_BODY: usize = 1 << 20;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The home server refused or dropped the TCP connection.
    #[error("cannot connect to the home server at {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The connection failed during the exchange (reset, closed before the answer).
    #[error("HTTP exchange with the home server failed: {0}")]
    Exchange(String),
    /// The answer is not a valid HTTP response.
    #[error("invalid answer from the home server: {0}")]
    Invalid(String),
    /// The bound elapsed.
    #[error("no answer from the home server within {0:?}")]
    Timeout(Duration),
}

impl TransportError {
    /// Whether the error says the home server is gone (as opposed to slow or confused).
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            TransportError::Connect { .. } | TransportError::Exchange(_)
        )
    }
}

/// An HTTP client of the home server. Clones made with [`HttpClient::fork`] share the
/// Digest state (one nonce, one `nc` sequence) and open their own connection.
#[derive(Debug)]
pub struct HttpClient {
    home: SocketAddr,
    digest: Arc<Mutex<DigestClient>>,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    /// A client of `home` authenticating as `user`.
    pub fn new(home: SocketAddr, user: &str, password: &str) -> HttpClient {
        HttpClient {
            home,
            digest: Arc::new(Mutex::new(DigestClient::new(user, password))),
            conn: None,
        }
    }

    /// Another client sharing the credentials and nonce, with its own connection.
    pub fn fork(&self) -> HttpClient {
        HttpClient {
            home: self.home,
            digest: self.digest.clone(),
            conn: None,
        }
    }

    /// Drops the connection.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// The `Authorization` value for a request, if a challenge is held.
    pub fn authorization(&self, method: &str, uri: &str) -> Option<String> {
        let cnonce = random_token(16);
        self.digest
            .lock()
            .expect("digest lock")
            .authorization(method, uri, &cnonce)
    }

    /// Takes the Digest challenge of a `401`; whether there is one to answer.
    fn challenged(&self, response: &Response) -> bool {
        let challenge = response
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| Challenge::parse(value).ok());
        match challenge {
            Some(challenge) => self
                .digest
                .lock()
                .expect("digest lock")
                .challenged(challenge),
            None => false,
        }
    }

    /// Sends `request` and returns the answer, within `bound`. A `401` with a Digest
    /// challenge is answered once (the request is sent again with credentials).
    ///
    /// # Errors
    /// [`TransportError`] when no answer came.
    pub async fn send(
        &mut self,
        request: &Request,
        bound: Duration,
    ) -> Result<Response, TransportError> {
        tokio::time::timeout(bound, async {
            let response = self.exchange(request).await?;
            if response.status == StatusCode::UNAUTHORIZED && self.challenged(&response) {
                debug!("answering the Digest challenge");
                return self.exchange(request).await;
            }
            Ok(response)
        })
        .await
        .map_err(|_| TransportError::Timeout(bound))?
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let addr = self.home;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| TransportError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(|error| TransportError::Exchange(error.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                debug!(%error, "RVP client connection ended");
            }
        });
        Ok(sender)
    }

    /// One exchange on the kept connection, or on a new one when the server has closed it.
    async fn exchange(&mut self, request: &Request) -> Result<Response, TransportError> {
        let mut reused = false;
        if let Some(mut sender) = self.conn.take()
            && !sender.is_closed()
            && sender.ready().await.is_ok()
        {
            reused = true;
            self.conn = Some(sender);
        }
        loop {
            let mut sender = match self.conn.take() {
                Some(sender) => sender,
                None => self.connect().await?,
            };
            match sender.send_request(self.http_request(request)?).await {
                Ok(response) => {
                    let response = read_response(response).await?;
                    self.conn = Some(sender);
                    return Ok(response);
                }
                // The server closed a kept connection as the request went out: try once
                // on a new one (the request was not processed).
                Err(error) if reused && (error.is_canceled() || error.is_incomplete_message()) => {
                    debug!(%error, "kept connection closed, reconnecting");
                    reused = false;
                }
                Err(error) => return Err(TransportError::Exchange(error.to_string())),
            }
        }
    }

    fn http_request(
        &self,
        request: &Request,
    ) -> Result<http::Request<Full<Bytes>>, TransportError> {
        let method = http::Method::from_bytes(request.method.as_str().as_bytes())
            .map_err(|error| TransportError::Invalid(error.to_string()))?;
        let mut builder = http::Request::builder()
            .method(method)
            .uri(request.target.clone());
        let headers = builder.headers_mut().expect("a fresh builder");
        headers.extend(request.headers.clone());
        headers.insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
        if !headers.contains_key(AUTHORIZATION)
            && let Some(value) =
                self.authorization(request.method.as_str(), &request.target.to_string())
            && let Ok(value) = HeaderValue::try_from(value)
        {
            headers.insert(AUTHORIZATION, value);
        }
        builder
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|error| TransportError::Invalid(error.to_string()))
    }

    /// Sends `bytes` as they are on a new connection and reads one response (the
    /// `send_raw` escape hatch), within `bound`.
    ///
    /// # Errors
    /// [`TransportError`] when no valid answer came.
    pub async fn send_raw(
        &self,
        bytes: &[u8],
        bound: Duration,
    ) -> Result<Response, TransportError> {
        let addr = self.home;
        tokio::time::timeout(bound, async move {
            let mut tcp = TcpStream::connect(addr)
                .await
                .map_err(|source| TransportError::Connect { addr, source })?;
            let exchange = |error: std::io::Error| TransportError::Exchange(error.to_string());
            tcp.write_all(bytes).await.map_err(exchange)?;
            let mut decoder = ResponseDecoder::reading_until_close(Limits::default());
            let mut buf = vec![0; 16 * 1024];
            loop {
                if let Some(response) = decoder
                    .next_response()
                    .map_err(|error| TransportError::Invalid(error.to_string()))?
                {
                    return Ok(response);
                }
                let read = tcp.read(&mut buf).await.map_err(exchange)?;
                if read == 0 {
                    decoder.finish();
                    if let Some(response) = decoder
                        .next_response()
                        .map_err(|error| TransportError::Invalid(error.to_string()))?
                    {
                        return Ok(response);
                    }
                    return Err(TransportError::Exchange(
                        "connection closed before an answer".into(),
                    ));
                }
                decoder.feed(&buf[..read]);
            }
        })
        .await
        .map_err(|_| TransportError::Timeout(bound))?
    }
}

/// Reads a whole hyper response into an [`imfed_rvp::Response`].
async fn read_response(
    response: http::Response<hyper::body::Incoming>,
) -> Result<Response, TransportError> {
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|error| TransportError::Exchange(format!("reading the body: {error}")))?
        .to_bytes();
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|reason| String::from_utf8_lossy(reason.as_bytes()).into_owned())
        .unwrap_or_else(|| {
            parts
                .status
                .canonical_reason()
                .unwrap_or_default()
                .to_string()
        });
    Ok(Response {
        version: parts.version,
        status: parts.status,
        reason,
        headers: parts.headers,
        body: body.to_vec(),
    })
}
