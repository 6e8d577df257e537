//! The actor's callback node (RVP §5.1.4, §5.6; PROFILE.md §2): an HTTP server on
//! `127.0.0.1:0` named in the login subscription's `Call-Back`, to which the home server
//! relays every NOTIFY for the principal: instant messages (`r:message`) and presence
//! changes (`r:propnotification`). Each is decoded and recorded when it arrives, then
//! answered `200 Successful`; a NOTIFY that cannot be read is recorded and answered `400`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use imfed_reports::Flow;
use imfed_rvp::headers::{NotificationsVersion, RvpHeaders};
use imfed_rvp::{Method, Request};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::mapping;
use crate::driver::event::{Received, Wire};
use crate::driver::lifecycle::Transcript;

/// The largest NOTIFY body accepted.
const MAX_BODY: usize = 1 << 20;
/// Bound on reading one request's body.
const BODY_BOUND: Duration = Duration::from_secs(10);

/// What each connection's handler needs.
#[derive(Debug)]
struct Sink {
    actor: String,
    transcript: Transcript,
    arrivals: mpsc::UnboundedSender<Received>,
}

/// A running callback listener.
#[derive(Debug)]
pub struct Callback {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Callback {
    /// Listens on `127.0.0.1:0`; what arrives goes to `arrivals`.
    ///
    /// # Errors
    /// When the listener cannot be bound.
    pub async fn start(
        actor: &str,
        transcript: Transcript,
        arrivals: mpsc::UnboundedSender<Received>,
    ) -> std::io::Result<Callback> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let sink = Arc::new(Sink {
            actor: actor.to_string(),
            transcript,
            arrivals,
        });
        let task = tokio::spawn(run(listener, shutdown.clone(), sink));
        Ok(Callback {
            addr,
            shutdown,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and lets open exchanges finish (bounded).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// Accepts connections until `shutdown`; dropping the task drops every connection.
async fn run(listener: TcpListener, shutdown: CancellationToken, sink: Arc<Sink>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    warn!(%error, "callback accept failed");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let sink = sink.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(request, sink.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        debug!(%error, "callback connection ended");
                    }
                }
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

fn answer(status: StatusCode) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .set_typed(&NotificationsVersion::SEND);
    if status == StatusCode::OK {
        response
            .extensions_mut()
            .insert(ReasonPhrase::from_static(b"Successful"));
    }
    response
}

/// Records and answers one request from the home server.
async fn handle(
    request: http::Request<Incoming>,
    sink: Arc<Sink>,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = request.into_parts();
    let body = match tokio::time::timeout(BODY_BOUND, Limited::new(body, MAX_BODY).collect()).await
    {
        Ok(Ok(body)) => body.to_bytes().to_vec(),
        Ok(Err(error)) => {
            sink.transcript.record(
                &sink.actor,
                Flow::Note,
                format!("callback: unreadable request body: {error}"),
            );
            return Ok(answer(StatusCode::BAD_REQUEST));
        }
        Err(_) => {
            sink.transcript.record(
                &sink.actor,
                Flow::Note,
                "callback: request body not received in time".into(),
            );
            return Ok(answer(StatusCode::REQUEST_TIMEOUT));
        }
    };
    let method = parts
        .method
        .as_str()
        .parse::<Method>()
        .unwrap_or_else(|_| Method::Extension(parts.method.as_str().to_string()));
    let request = Request {
        method: method.clone(),
        target: parts.uri,
        version: parts.version,
        headers: parts.headers,
        body,
    };
    let text = mapping::request_text(&request);
    if method != Method::Notify {
        sink.transcript.record(&sink.actor, Flow::Received, text);
        sink.transcript.record(
            &sink.actor,
            Flow::Note,
            format!(
                "callback: {} is not a NOTIFY, answered 405",
                method.as_str()
            ),
        );
        return Ok(answer(StatusCode::METHOD_NOT_ALLOWED));
    }
    match mapping::decode_notification(&request.body) {
        Ok(event) => {
            sink.transcript
                .record(&sink.actor, Flow::Received, text.clone());
            // The session may be gone while the listener stops.
            let _ = sink.arrivals.send(Received {
                event,
                wire: Wire::Rvp(mapping::request_form(&request)),
                text,
            });
            Ok(answer(StatusCode::OK))
        }
        Err(error) => {
            sink.transcript.record(&sink.actor, Flow::Received, text);
            sink.transcript.record(
                &sink.actor,
                Flow::Note,
                format!("callback: unreadable NOTIFY, answered 400: {error}"),
            );
            Ok(answer(StatusCode::BAD_REQUEST))
        }
    }
}
