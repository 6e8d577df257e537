//! The life of an actor's session, whatever the protocol: the scenario's transcript, how a
//! session ended (and whether a step asked for it), why a wait or a liveness round trip
//! failed. Silence means something only on a live session: an end is recorded when it
//! happens, and a lost session cuts short every wait of its scenario.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imfed_reports::{Flow, TranscriptLine};
use tokio::sync::watch;

/// The transcript shared by a scenario's actors.
#[derive(Clone, Debug)]
pub struct Transcript {
    started: Instant,
    lines: Arc<Mutex<Vec<TranscriptLine>>>,
    /// Counts the streams of the scenario that ended unasked, so that a wait on one actor
    /// ends as soon as another actor's stream is lost instead of running to its bound.
    lost: Arc<watch::Sender<u64>>,
}

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Self {
        Transcript {
            started: Instant::now(),
            lines: Arc::default(),
            lost: Arc::new(watch::channel(0).0),
        }
    }

    /// When the scenario started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records a line.
    pub fn record(&self, actor: &str, flow: Flow, text: String) {
        let t_ms = self.started.elapsed().as_millis() as u64;
        self.lines
            .lock()
            .expect("transcript lock")
            .push(TranscriptLine {
                t_ms,
                actor: actor.to_string(),
                flow,
                text,
            });
    }

    /// Everything recorded.
    pub fn lines(&self) -> Vec<TranscriptLine> {
        self.lines.lock().expect("transcript lock").clone()
    }
}

impl Default for Transcript {
    fn default() -> Self {
        Self::new()
    }
}

/// How an actor's stream ended, as its reader saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The server closed the stream (`</stream:stream>`).
    ClosedByServer,
    /// The server sent a stream error (RFC 6120 §4.9).
    StreamError {
        /// The defined condition, e.g. `invalid-from`.
        condition: String,
        /// The error's text, if any.
        text: Option<String>,
    },
    /// The TCP connection closed without the stream being closed.
    TcpClosed,
    /// Reading or writing failed (reset, broken pipe, TLS failure).
    Failed(String),
    /// The server sent bytes that are not a valid XMPP stream.
    Invalid(String),
    /// The harness closed or dropped it (a `logout` or `disconnect` step, or teardown).
    ByHarness,
    /// An HTTP session (RVP) ended: the home server became unreachable (`status: None`), or
    /// it answered the login renewal or a liveness request with a status saying the
    /// endpoint is gone (412, 404).
    Http {
        /// The status that ended it, if the server answered.
        status: Option<u16>,
        /// What happened, in words.
        reason: String,
    },
    /// A SIP session over TCP ended (PROFILE.md §8): the home server closed the connection
    /// or could not be reached; what happened, in words.
    Sip(String),
}

impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndCause::ClosedByServer => f.write_str("stream closed by the server"),
            EndCause::StreamError {
                condition,
                text: None,
            } => write!(f, "stream error <{condition}/> from the server"),
            EndCause::StreamError {
                condition,
                text: Some(text),
            } => write!(f, "stream error <{condition}/> from the server ({text})"),
            EndCause::TcpClosed => {
                f.write_str("TCP connection closed by the server without closing the stream")
            }
            EndCause::Failed(error) => write!(f, "connection failed: {error}"),
            EndCause::Invalid(error) => write!(f, "invalid XML from the server: {error}"),
            EndCause::ByHarness => f.write_str("closed by the harness"),
            EndCause::Http {
                status: None,
                reason,
            } => f.write_str(reason),
            EndCause::Http {
                status: Some(status),
                reason,
            } => write!(f, "{reason} (HTTP {status})"),
            EndCause::Sip(reason) => f.write_str(reason),
        }
    }
}

/// The end of an actor's stream: when and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Milliseconds since the scenario started.
    pub t_ms: u64,
    /// What happened.
    pub cause: EndCause,
    /// Whether a step asked for it (a logout, a disconnect, or a stream error a step
    /// allowed).
    pub expected: bool,
}

/// Why a wait on a session ended without what it waited for.
#[derive(Clone, Debug)]
pub struct WaitError {
    /// What arrived and was not matched, serialized, for the failure report.
    pub arrived: Vec<String>,
    /// Set when the stream ended (the wait stopped at once); `None` when the bound elapsed
    /// or the wait was cut short.
    pub ended: Option<Ended>,
    /// Another actor's stream of the scenario ended unasked, which ended this wait early
    /// (the run fails for that reason).
    pub cut_short: bool,
}

/// Why a liveness round trip failed.
#[derive(Clone, Debug)]
pub enum Liveness {
    /// The stream ended.
    Ended(Ended),
    /// The server did not answer within the bound: the session has stalled.
    NoAnswer(Duration),
    /// Another actor's stream was lost before the answer came (the run fails for that).
    CutShort,
}

/// What a session's reader and writer tasks share with it.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) ended: Mutex<Option<Ended>>,
    /// Stream error conditions a step allowed the server to close the stream with (for
    /// RVP: HTTP status codes, as text, that may end the endpoint).
    pub(crate) allowed: Mutex<Vec<String>>,
}

impl Status {
    /// Records the end unless one is recorded already; returns whether this call did.
    pub(crate) fn end(&self, transcript: &Transcript, cause: EndCause) -> bool {
        let mut ended = self.ended.lock().expect("status lock");
        if ended.is_some() {
            return false;
        }
        let expected = match &cause {
            EndCause::ByHarness => true,
            EndCause::StreamError { condition, .. } => self
                .allowed
                .lock()
                .expect("status lock")
                .contains(condition),
            EndCause::Http {
                status: Some(status),
                ..
            } => self
                .allowed
                .lock()
                .expect("status lock")
                .contains(&status.to_string()),
            _ => false,
        };
        *ended = Some(Ended {
            t_ms: transcript.started.elapsed().as_millis() as u64,
            cause,
            expected,
        });
        if !expected {
            transcript.lost.send_modify(|lost| *lost += 1);
        }
        true
    }

    pub(crate) fn ended(&self) -> Option<Ended> {
        self.ended.lock().expect("status lock").clone()
    }
}

impl Transcript {
    /// A receiver that changes whenever a stream of the scenario ends unasked.
    pub(crate) fn lost_streams(&self) -> watch::Receiver<u64> {
        self.lost.subscribe()
    }
}

/// What a session received, in order of arrival: its reader (XMPP) or callback listener
/// (RVP) sends into `arrivals` as things arrive; expectations search the inbox and take
/// what they match, so nothing that arrives early is lost and nothing is matched twice.
#[derive(Debug)]
pub(crate) struct Inbox {
    arrivals: tokio::sync::mpsc::UnboundedReceiver<super::event::Received>,
    kept: std::collections::VecDeque<super::event::Received>,
}

impl Inbox {
    /// An inbox fed by `arrivals`, holding `first` already.
    pub(crate) fn new(
        arrivals: tokio::sync::mpsc::UnboundedReceiver<super::event::Received>,
        first: impl IntoIterator<Item = super::event::Received>,
    ) -> Inbox {
        Inbox {
            arrivals,
            kept: first.into_iter().collect(),
        }
    }

    /// Moves what has arrived into the inbox without waiting.
    fn drain(&mut self) {
        while let Ok(received) = self.arrivals.try_recv() {
            self.kept.push_back(received);
        }
    }

    /// Puts `received` after everything that arrived before it.
    pub(crate) fn push(&mut self, received: super::event::Received) {
        self.drain();
        self.kept.push_back(received);
    }

    /// Takes the first thing received that `predicate` accepts, waiting up to `bound`.
    /// The wait ends at once when the session has ended (`status`) or when another
    /// session of the scenario is lost (`transcript`).
    ///
    /// # Errors
    /// [`WaitError`] with what arrived unmatched.
    pub(crate) async fn wait_where(
        &mut self,
        bound: Duration,
        status: &Status,
        transcript: &Transcript,
        predicate: impl Fn(&super::event::Received) -> bool,
    ) -> Result<super::event::Received, WaitError> {
        let deadline = tokio::time::Instant::now() + bound;
        // The session's own unasked end counts among the lost ones too.
        let mut lost = transcript.lost_streams();
        let mut checked = 0;
        loop {
            self.drain();
            if let Some(index) = self.kept.iter().skip(checked).position(&predicate) {
                return Ok(self.kept.remove(checked + index).expect("index in range"));
            }
            checked = self.kept.len();
            let failed = |inbox: &Inbox, ended: Option<Ended>, cut_short| WaitError {
                arrived: inbox.unmatched(),
                ended,
                cut_short,
            };
            if let Some(ended) = status.ended() {
                return Err(failed(self, Some(ended), false));
            }
            tokio::select! {
                arrival = tokio::time::timeout_at(deadline, self.arrivals.recv()) => match arrival {
                    Ok(Some(received)) => self.kept.push_back(received),
                    // The sender has stopped: everything it received is in the inbox, and
                    // it recorded why before stopping.
                    Ok(None) => {
                        self.drain();
                        if let Some(index) = self.kept.iter().position(&predicate) {
                            return Ok(self.kept.remove(index).expect("index in range"));
                        }
                        return Err(failed(self, status.ended(), false));
                    }
                    Err(_) => return Err(failed(self, None, false)),
                },
                // Another session of the scenario was lost: the run fails for that.
                Ok(()) = lost.changed() => {
                    self.drain();
                    if let Some(index) = self.kept.iter().position(&predicate) {
                        return Ok(self.kept.remove(index).expect("index in range"));
                    }
                    let ended = status.ended();
                    let cut_short = ended.is_none();
                    return Err(failed(self, ended, cut_short));
                }
            }
        }
    }

    /// Waits like [`Inbox::wait_where`] for `duration`: `Ok(Some(_))` for the first match
    /// (earlier arrivals count), `Ok(None)` when none came.
    ///
    /// # Errors
    /// The end of the session, if it ended during the window: silence on a dead session
    /// proves nothing.
    pub(crate) async fn watch(
        &mut self,
        matcher: &super::event::Matcher,
        duration: Duration,
        status: &Status,
        transcript: &Transcript,
    ) -> Result<Option<super::event::Received>, Ended> {
        match self
            .wait_where(duration, status, transcript, |r| matcher.matches(r))
            .await
        {
            Ok(received) => Ok(Some(received)),
            Err(WaitError {
                ended: Some(ended), ..
            }) => Err(ended),
            // The bound elapsed, or another session was lost (which fails the run).
            Err(WaitError { ended: None, .. }) => Ok(None),
        }
    }

    /// Takes the first thing already received that matches, without waiting.
    pub(crate) fn take_matching(
        &mut self,
        matcher: &super::event::Matcher,
    ) -> Option<super::event::Received> {
        self.drain();
        let index = self.kept.iter().position(|r| matcher.matches(r))?;
        self.kept.remove(index)
    }

    /// What was received and not consumed, as text; successful answers to the actor's own
    /// requests (RVP) are left out: they did not arrive by themselves.
    pub(crate) fn unmatched(&self) -> Vec<String> {
        self.kept
            .iter()
            .filter(|received| !received.wire.is_success_answer())
            .map(|received| received.text.clone())
            .collect()
    }
}
