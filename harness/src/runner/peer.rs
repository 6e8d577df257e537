//! A scenario's own peer connections (`peer_connect`, `peer_send`, `peer_expect`): the
//! harness plays a server that may lie to the implementation (RFC 6120 §4.9.3, §8.1.2.2,
//! §13; XEP-0220), and the reference server, authoritative for the domain it claims,
//! confirms or denies its dialback keys. The implementation's verdict is read on the peer
//! connection itself; what it delivers to its users is checked by the actors' own steps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use imfed_reports::Flow;
use imfed_xmpp::Element;
use imfed_xmpp::dialback::DialbackResult;

use super::env::Environment;
use crate::driver::lifecycle::Transcript;
use crate::driver::random_token;
use crate::driver::xmpp::pattern_matches;
use crate::driver::xmpp::peer::{Identity, PeerEvent, PeerLink, PeerOptions, SaslOutcome};
use crate::scenario::model::{
    PeerCertificate, PeerConnect, PeerKey, PeerSasl, PeerSaslVerdict, PeerVerdict,
};

/// Bound on opening a peer stream (each read of the negotiation).
const OPEN_BOUND: Duration = Duration::from_secs(10);
/// Slack added to a target's `s2s_auth_timeout` when waiting for it to close a connection.
pub const CLOSE_SLACK: Duration = Duration::from_secs(5);

/// A peer step that failed.
#[derive(Debug)]
pub struct PeerFailure {
    /// What went wrong.
    pub message: String,
    /// What the step waited for.
    pub awaited: Option<String>,
    /// What arrived meanwhile.
    pub arrived: Vec<String>,
}

impl PeerFailure {
    fn new(message: impl Into<String>) -> Self {
        PeerFailure {
            message: message.into(),
            awaited: None,
            arrived: Vec::new(),
        }
    }
}

/// What `peer_expect` waits for, its templates rendered.
#[derive(Debug)]
pub enum PeerWanted {
    /// The answer to the peer's `<db:result/>`.
    Dialback(PeerVerdict),
    /// How its SASL EXTERNAL went (settled when `peer_connect` returned).
    Sasl(PeerSaslVerdict),
    /// A stream error with one of these conditions.
    StreamError(Vec<String>),
    /// The end of the connection.
    Closed,
    /// A stanza matching the pattern.
    Stanza(Element),
}

impl PeerWanted {
    fn describe(&self) -> String {
        match self {
            PeerWanted::Dialback(PeerVerdict::Valid) => "<db:result type='valid'/>".into(),
            PeerWanted::Dialback(PeerVerdict::Refused) => {
                "a refused dialback (type 'invalid' or 'error', a stream error or the end of the connection)".into()
            }
            PeerWanted::Sasl(PeerSaslVerdict::Success) => "SASL EXTERNAL <success/>".into(),
            PeerWanted::Sasl(PeerSaslVerdict::Refused) => {
                "a refused SASL EXTERNAL (not offered, <failure/>, or the TLS session or stream refused)".into()
            }
            PeerWanted::StreamError(conditions) => format!(
                "stream error {}",
                conditions
                    .iter()
                    .map(|c| format!("<{c}/>"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            PeerWanted::Closed => "the end of the connection".into(),
            PeerWanted::Stanza(pattern) => {
                format!("a stanza matching {}", pattern.to_xml(imfed_xmpp::ns::SERVER))
            }
        }
    }

    /// Whether the SASL EXTERNAL `outcome` is what `verdict` wants.
    fn judge_sasl(verdict: PeerSaslVerdict, outcome: &SaslOutcome) -> Result<(), String> {
        match (verdict, outcome) {
            (PeerSaslVerdict::Success, SaslOutcome::Success)
            | (PeerSaslVerdict::Refused, SaslOutcome::NotOffered)
            | (PeerSaslVerdict::Refused, SaslOutcome::Failure(_))
            | (PeerSaslVerdict::Refused, SaslOutcome::Ended(_)) => Ok(()),
            (PeerSaslVerdict::Refused, SaslOutcome::Success) => Err(
                "the implementation authenticated the peer by a certificate it must refuse: <success/>"
                    .into(),
            ),
            (PeerSaslVerdict::Success, other) => Err(format!(
                "the implementation did not authenticate a valid certificate: {}",
                other.describe()
            )),
        }
    }

    /// Whether `event` settles the wait: `Some(Ok)` it is what was wanted, `Some(Err)` it
    /// rules it out, `None` wait on.
    fn judge(&self, from: &str, to: &str, event: &PeerEvent) -> Option<Result<(), String>> {
        let answer = event.dialback_answer(from, to);
        match (self, event) {
            (PeerWanted::Sasl(_), _) => Some(Err(
                "SASL EXTERNAL is judged when the connection opens, not on later events".into(),
            )),
            (PeerWanted::Dialback(PeerVerdict::Valid), _) => match answer {
                Some(DialbackResult::Valid) => Some(Ok(())),
                Some(other) => Some(Err(format!(
                    "the implementation refused the dialback key: type {other:?}"
                ))),
                None if matches!(event, PeerEvent::Element(_)) => None,
                None => Some(Err(format!(
                    "no dialback answer before: {}",
                    event.describe()
                ))),
            },
            (PeerWanted::Dialback(PeerVerdict::Refused), _) => match answer {
                Some(DialbackResult::Valid) => Some(Err(format!(
                    "the implementation accepted the peer as {from} for {to}: <db:result type='valid'/>"
                ))),
                Some(_) => Some(Ok(())),
                None if matches!(event, PeerEvent::Element(_)) => None,
                None => Some(Ok(())),
            },
            (PeerWanted::StreamError(conditions), PeerEvent::StreamError { condition, .. }) => {
                if conditions.contains(condition) {
                    Some(Ok(()))
                } else {
                    Some(Err(format!(
                        "the implementation sent stream error <{condition}/>, not {}",
                        self.describe().trim_start_matches("stream error ")
                    )))
                }
            }
            (PeerWanted::StreamError(_), PeerEvent::Ended(how)) => Some(Err(format!(
                "the connection ended without a stream error ({how})"
            ))),
            (PeerWanted::Closed, PeerEvent::StreamError { .. } | PeerEvent::Ended(_)) => {
                Some(Ok(()))
            }
            (PeerWanted::Stanza(pattern), PeerEvent::Element(element)) => {
                pattern_matches(pattern, element).then_some(Ok(()))
            }
            (PeerWanted::Stanza(_), _) => Some(Err(format!(
                "the connection ended first: {}",
                event.describe()
            ))),
            (PeerWanted::StreamError(_) | PeerWanted::Closed, PeerEvent::Element(_)) => None,
        }
    }
}

/// The certificate `kind` for a peer claiming `domain` (RFC 6120 §13.7.2): from the run's
/// CA or from none the implementation trusts.
fn identity(env: &Environment, kind: PeerCertificate, domain: &str) -> Result<Identity, String> {
    use imfed_server::tls::{Validity, untrusted_certificate};
    let names = vec![domain.to_string()];
    let pki = || {
        env.pki
            .as_ref()
            .ok_or_else(|| format!("the target {} trusts no CA of the run", env.target))
    };
    let (cert, key) = match kind {
        PeerCertificate::Valid => pki()?.issue(&names, Validity::Current),
        PeerCertificate::Expired => pki()?.issue(&names, Validity::Expired),
        PeerCertificate::WrongName => {
            pki()?.issue(&["wrong-name.invalid".to_string()], Validity::Current)
        }
        PeerCertificate::Untrusted => untrusted_certificate(&names, true),
        PeerCertificate::SelfSigned => untrusted_certificate(&names, false),
    }
    .map_err(|error| error.to_string())?;
    let (chain, key) = imfed_server::tls::identity_from_pem(&cert, &key, "the peer certificate")
        .map_err(|error| error.to_string())?;
    Ok(Identity { chain, key })
}

/// The peer connections of one scenario run, by name.
#[derive(Debug, Default)]
pub struct Peers {
    links: BTreeMap<String, PeerLink>,
}

impl Peers {
    fn label(name: &str) -> String {
        format!("peer {name}")
    }

    fn link(&mut self, name: &str) -> Result<&mut PeerLink, PeerFailure> {
        self.links
            .get_mut(name)
            .ok_or_else(|| PeerFailure::new(format!("peer {name} is not connected")))
    }

    /// Opens peer connection `step.peer` from `from` to the implementation's `to`.
    ///
    /// # Errors
    /// [`PeerFailure`]: it could not be opened, or no dialback key could be had.
    pub async fn connect(
        &mut self,
        env: &Environment,
        step: &PeerConnect,
        from: String,
        to: String,
        transcript: &Transcript,
    ) -> Result<(), PeerFailure> {
        let label = Self::label(&step.peer);
        let identity = match step.certificate {
            Some(kind) => Some(identity(env, kind, &from).map_err(|error| {
                PeerFailure::new(format!(
                    "peer {}: no {kind:?} certificate for {from}: {error}",
                    step.peer
                ))
            })?),
            None => None,
        };
        let options = PeerOptions {
            addr: env.sut.s2s,
            from: from.clone(),
            to: to.clone(),
            open: step.open,
            starttls: step.starttls,
            roots: env.sut.tls_roots.clone(),
            identity,
            sasl_external: step.sasl == Some(PeerSasl::External),
        };
        let mut link = PeerLink::connect(options, OPEN_BOUND)
            .await
            .map_err(|error| {
                PeerFailure::new(format!(
                    "peer {} could not open a stream to {} as {from}: {error}",
                    step.peer, env.sut.s2s
                ))
            })?;
        transcript.record(
            &label,
            Flow::Note,
            format!(
                "connected to {} as {from} → {to}{}{}",
                env.sut.s2s,
                if link.tls { ", TLS" } else { "" },
                link.stream_id
                    .as_ref()
                    .map(|id| format!(", stream id {id}"))
                    .unwrap_or_default()
            ),
        );
        if let Some(certificate) = step.certificate {
            transcript.record(
                &label,
                Flow::Note,
                format!("presented a {certificate:?} certificate for {from}"),
            );
        }
        if let Some(outcome) = &link.sasl {
            transcript.record(&label, Flow::Received, outcome.describe());
        }
        if let Some(ended) = &link.ended {
            transcript.record(&label, Flow::Received, format!("connection ended: {ended}"));
        }
        if let Some(key) = step.dialback.filter(|_| link.ended.is_none()) {
            let stream_id = link.stream_id.clone().ok_or_else(|| {
                PeerFailure::new(format!(
                    "peer {}: the implementation's stream header has no id to key dialback on",
                    step.peer
                ))
            })?;
            let key = match key {
                PeerKey::Reference => env
                    .reference_control
                    .dialback_key(&from, &to, &stream_id)
                    .await
                    .map_err(|error| {
                        PeerFailure::new(format!(
                            "peer {}: no dialback key for {from} from the reference server: {error}",
                            step.peer
                        ))
                    })?,
                PeerKey::Wrong => random_token(64),
            };
            link.send_dialback(&key).await.map_err(|error| {
                PeerFailure::new(format!("peer {} could not send: {error}", step.peer))
            })?;
            transcript.record(
                &label,
                Flow::Sent,
                format!("<db:result from='{from}' to='{to}'>{key}</db:result> ({key:?} key)"),
            );
        }
        if let Some(old) = self.links.insert(step.peer.clone(), link) {
            old.close().await;
        }
        Ok(())
    }

    /// Writes `bytes` on peer connection `name`.
    ///
    /// # Errors
    /// [`PeerFailure`]: no such connection, or it has ended.
    pub async fn send(
        &mut self,
        name: &str,
        bytes: &str,
        trickle: Option<(usize, Duration)>,
        transcript: &Transcript,
    ) -> Result<(), PeerFailure> {
        let link = self.link(name)?;
        let sent = match trickle {
            Some((piece, pause)) => link.send_trickled(bytes.as_bytes(), piece, pause).await,
            None => link.send(bytes.as_bytes()).await,
        }
        .map_err(|error| PeerFailure::new(format!("peer {name} could not send: {error}")))?;
        let mut shown = crate::driver::event::truncate(bytes, 400);
        if let Some((piece, pause)) = trickle {
            shown = format!("{shown} (in {piece}-byte pieces every {pause:?})");
        }
        if sent {
            transcript.record(&Self::label(name), Flow::Sent, shown);
        } else {
            transcript.record(
                &Self::label(name),
                Flow::Note,
                format!("not sent, the implementation has cut the connection: {shown}"),
            );
        }
        Ok(())
    }

    /// Cuts peer connection `name`: closed with no stream end.
    ///
    /// # Errors
    /// [`PeerFailure`]: no such connection.
    pub fn cut(&mut self, name: &str, transcript: &Transcript) -> Result<(), PeerFailure> {
        let link = self.link(name)?;
        link.cut();
        transcript.record(
            &Self::label(name),
            Flow::Note,
            "cut the connection (no stream end)".to_string(),
        );
        Ok(())
    }

    /// Waits up to `within` for what `wanted` names on peer connection `name`.
    ///
    /// # Errors
    /// [`PeerFailure`]: something that rules it out arrived, or nothing did in time.
    pub async fn expect(
        &mut self,
        name: &str,
        wanted: &PeerWanted,
        within: Duration,
        transcript: &Transcript,
    ) -> Result<(), PeerFailure> {
        let label = Self::label(name);
        let link = self.link(name)?;
        if let PeerWanted::Sasl(verdict) = wanted {
            let outcome = link.sasl.as_ref().ok_or_else(|| {
                PeerFailure::new(format!("peer {name} did not try SASL EXTERNAL"))
            })?;
            return PeerWanted::judge_sasl(*verdict, outcome).map_err(|message| PeerFailure {
                message,
                awaited: Some(format!("{} on peer {name}", wanted.describe())),
                arrived: vec![outcome.describe()],
            });
        }
        let deadline = Instant::now() + within;
        let mut arrived = Vec::new();
        let fail = |message: String, arrived: Vec<String>| PeerFailure {
            message,
            awaited: Some(format!("{} on peer {name}", wanted.describe())),
            arrived,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = link.next(left).await else {
                return Err(fail(
                    format!(
                        "nothing settled it on peer {name} within {within:?}: {}",
                        if arrived.is_empty() {
                            "the implementation said nothing"
                        } else {
                            "only what is listed arrived"
                        }
                    ),
                    arrived,
                ));
            };
            let line = event.describe();
            let fresh = !matches!(&event, PeerEvent::Ended(_)) || arrived.last() != Some(&line);
            if fresh {
                transcript.record(&label, Flow::Received, line.clone());
                arrived.push(line);
            }
            match wanted.judge(&link.from, &link.to, &event) {
                Some(Ok(())) => return Ok(()),
                Some(Err(message)) => return Err(fail(message, arrived)),
                None => {}
            }
        }
    }

    /// Closes every peer connection.
    pub async fn close_all(&mut self) {
        for (_, link) in std::mem::take(&mut self.links) {
            link.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(xml: &str) -> PeerEvent {
        let mut elements =
            crate::driver::xmpp::parse_fragment_in(xml, imfed_xmpp::ns::SERVER).unwrap();
        PeerEvent::Element(elements.remove(0))
    }

    fn answer(kind: &str) -> PeerEvent {
        element(&format!(
            "<db:result xmlns:db='jabber:server:dialback' from='sut.test' to='ref.test' type='{kind}'/>"
        ))
    }

    fn error(condition: &str) -> PeerEvent {
        PeerEvent::StreamError {
            condition: condition.into(),
            text: None,
        }
    }

    fn judge(wanted: &PeerWanted, event: &PeerEvent) -> Option<bool> {
        wanted
            .judge("ref.test", "sut.test", event)
            .map(|verdict| verdict.is_ok())
    }

    #[test]
    fn a_refused_dialback_is_anything_but_valid_and_silence_settles_nothing() {
        let refused = PeerWanted::Dialback(PeerVerdict::Refused);
        assert_eq!(judge(&refused, &answer("valid")), Some(false));
        assert_eq!(judge(&refused, &answer("invalid")), Some(true));
        assert_eq!(judge(&refused, &answer("error")), Some(true));
        assert_eq!(judge(&refused, &error("not-authorized")), Some(true));
        assert_eq!(
            judge(&refused, &PeerEvent::Ended("closed".into())),
            Some(true)
        );
        // Another stanza, or an answer for another domain pair, is passed over.
        assert_eq!(
            judge(&refused, &element("<message to='a@sut.test'/>")),
            None
        );
        let other_pair = element(
            "<db:result xmlns:db='jabber:server:dialback' from='sut.test' to='x.test' type='valid'/>",
        );
        assert_eq!(judge(&refused, &other_pair), None);
        let valid = PeerWanted::Dialback(PeerVerdict::Valid);
        assert_eq!(judge(&valid, &answer("valid")), Some(true));
        assert_eq!(judge(&valid, &answer("invalid")), Some(false));
        assert_eq!(
            judge(&valid, &PeerEvent::Ended("closed".into())),
            Some(false)
        );
    }

    #[test]
    fn sasl_success_is_only_success_and_refused_is_anything_else() {
        let outcomes = [
            SaslOutcome::Success,
            SaslOutcome::NotOffered,
            SaslOutcome::Failure("not-authorized".into()),
            SaslOutcome::Ended("TLS alert".into()),
        ];
        let verdicts: Vec<(bool, bool)> = outcomes
            .iter()
            .map(|outcome| {
                (
                    PeerWanted::judge_sasl(PeerSaslVerdict::Success, outcome).is_ok(),
                    PeerWanted::judge_sasl(PeerSaslVerdict::Refused, outcome).is_ok(),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [(true, false), (false, true), (false, true), (false, true)]
        );
        // A SASL verdict is never settled by a later event.
        let wanted = PeerWanted::Sasl(PeerSaslVerdict::Refused);
        assert_eq!(
            judge(&wanted, &PeerEvent::Ended("closed".into())),
            Some(false)
        );
    }

    #[test]
    fn a_stream_error_must_carry_a_listed_condition_and_an_end_without_one_fails() {
        let wanted = PeerWanted::StreamError(vec!["invalid-from".into()]);
        assert_eq!(judge(&wanted, &error("invalid-from")), Some(true));
        assert_eq!(judge(&wanted, &error("undefined-condition")), Some(false));
        assert_eq!(
            judge(&wanted, &PeerEvent::Ended("closed".into())),
            Some(false)
        );
        assert_eq!(judge(&wanted, &answer("invalid")), None);
        let closed = PeerWanted::Closed;
        assert_eq!(judge(&closed, &error("connection-timeout")), Some(true));
        assert_eq!(
            judge(&closed, &PeerEvent::Ended("closed".into())),
            Some(true)
        );
        assert_eq!(judge(&closed, &answer("valid")), None);
    }
}
