//! RFC 6120 §4–§7 from the client side: a sans-I/O login (stream, STARTTLS, SASL, binding).
//!
//! [`Login`] turns [`StreamEvent`]s from the caller's [`crate::StreamParser`] into
//! [`LoginAction`]s: bytes to write, a parser reset, a TLS upgrade, and finally the bound full
//! JID. The caller owns the socket, the TLS library and the parser:
//!
//! ```text
//! actions = login.start()
//! loop:
//!     for action in actions:
//!         Send(bytes)  -> write bytes
//!         ResetParser  -> parser.reset()   (a new stream follows: after <proceed/> and <success/>)
//!         StartTls     -> upgrade the transport (server name: login.domain()),
//!                         then actions = login.tls_established()
//!         Done(jid)    -> logged in; the stream is ready for stanzas
//!     actions = login.handle(parser.next_event()?)
//! ```

use std::fmt;

use crate::element::Element;
use crate::errors::StanzaError;
use crate::jid::{Jid, JidError};
use crate::ns;
use crate::sasl::{self, SaslError, ScramClient};
use crate::stanza::{self, IqType};
use crate::stream::{StreamEvent, StreamHeader};

/// The id of the resource binding request (deterministic, so tests can script the server).
pub const BIND_ID: &str = "bind1";
/// The id of the session establishment request.
pub const SESSION_ID: &str = "sess1";

/// Whether the client negotiates STARTTLS (RFC 6120 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// Never negotiate TLS; fail if the server requires it.
    Never,
    /// Negotiate TLS when the server offers it; go on in plaintext otherwise.
    IfOffered,
    /// Negotiate TLS; fail if the server does not offer it.
    Required,
}

/// A SASL mechanism the client can use (RFC 6120 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-1 (RFC 5802), without channel binding.
    ScramSha1,
    /// PLAIN (RFC 4616).
    Plain,
}

impl Mechanism {
    /// The default preference order: SCRAM-SHA-1, then PLAIN.
    pub const DEFAULT_PREFERENCE: [Mechanism; 2] = [Mechanism::ScramSha1, Mechanism::Plain];

    /// The IANA name, as in `<mechanism/>` and `<auth mechanism=.../>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => sasl::SCRAM_SHA_1,
            Mechanism::Plain => sasl::PLAIN,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a [`Login`] needs to know.
#[derive(Clone)]
pub struct LoginConfig {
    /// The account: the localpart authenticates, the domainpart is the stream's `to`. A
    /// resourcepart, if present, is requested at binding; otherwise the server picks one.
    pub jid: Jid,
    /// The password (prepared with PRECIS OpaqueString by SCRAM; sent as given by PLAIN).
    pub password: String,
    /// Whether to negotiate STARTTLS.
    pub tls: TlsPolicy,
    /// Mechanisms in order of preference; the first one the server offers is used.
    pub mechanisms: Vec<Mechanism>,
    /// The SCRAM client nonce: random printable ASCII from the caller (this crate has no
    /// randomness), at least 18 characters.
    pub client_nonce: String,
}

impl LoginConfig {
    /// A configuration with [`TlsPolicy::IfOffered`] and [`Mechanism::DEFAULT_PREFERENCE`].
    pub fn new(jid: Jid, password: impl Into<String>, client_nonce: impl Into<String>) -> Self {
        LoginConfig {
            jid,
            password: password.into(),
            tls: TlsPolicy::IfOffered,
            mechanisms: Mechanism::DEFAULT_PREFERENCE.to_vec(),
            client_nonce: client_nonce.into(),
        }
    }
}

impl fmt::Debug for LoginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginConfig")
            .field("jid", &self.jid)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}

/// What the caller of a [`Login`] must do next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginAction {
    /// Write these bytes to the transport.
    Send(Vec<u8>),
    /// Reset the stream parser: the server starts a new stream (RFC 6120 §5.4.3.3, §6.4.6).
    /// Always comes before the bytes of the new stream header.
    ResetParser,
    /// Upgrade the transport to TLS with [`Login::domain`] as the server name, then call
    /// [`Login::tls_established`].
    StartTls,
    /// Logged in: the stream is bound to this full JID and ready for stanzas.
    Done(Jid),
}

/// Why a login failed. After an error the [`Login`] is finished.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The policy is [`TlsPolicy::Required`] but the server does not offer STARTTLS.
    #[error("TLS required but the server does not offer STARTTLS")]
    TlsRequired,
    /// The server requires STARTTLS but the policy is [`TlsPolicy::Never`].
    #[error("the server requires STARTTLS but TLS is disabled")]
    TlsRequiredByServer,
    /// The server answered `<starttls/>` with `<failure/>` (RFC 6120 §5.4.2.2).
    #[error("the server refused STARTTLS")]
    TlsFailed,
    /// None of the configured mechanisms is offered.
    #[error("no acceptable SASL mechanism among {offered:?}")]
    NoMechanism {
        /// The mechanisms the server offered.
        offered: Vec<String>,
    },
    /// The JID has no localpart to authenticate with.
    #[error("the JID has no localpart to authenticate with")]
    NoLocalpart,
    /// The server answered with a SASL `<failure/>` (RFC 6120 §6.5).
    #[error("authentication failed: {condition}{}", fmt_text(text))]
    AuthFailed {
        /// The failure condition, e.g. `not-authorized` (empty if the server sent none).
        condition: String,
        /// The `<text/>`, if any.
        text: Option<String>,
    },
    /// The server's SASL data was wrong: bad SCRAM syntax, or a server signature that proves
    /// the server does not know the password.
    #[error("SASL exchange failed")]
    Sasl(#[from] SaslError),
    /// The server answered the binding request with an error (RFC 6120 §7.6.2).
    #[error("resource binding failed: {}", fmt_stanza_error(error))]
    BindFailed {
        /// The stanza error, if the server sent a well-formed one.
        error: Option<StanzaError>,
    },
    /// The server answered the session request with an error.
    #[error("session establishment failed: {}", fmt_stanza_error(error))]
    SessionFailed {
        /// The stanza error, if the server sent a well-formed one.
        error: Option<StanzaError>,
    },
    /// The server bound a JID that is not valid, or not a full JID.
    #[error("the server bound an invalid JID {jid:?}")]
    InvalidBoundJid {
        /// The text of `<jid/>`.
        jid: String,
        /// Why it is not valid, when it does not parse.
        #[source]
        source: Option<JidError>,
    },
    /// The server sent a stream error (RFC 6120 §4.9).
    #[error("stream error: {condition}{}", fmt_text(text))]
    StreamError {
        /// The condition, e.g. `host-unknown` (empty if the server sent none).
        condition: String,
        /// The `<text/>`, if any.
        text: Option<String>,
    },
    /// The server closed the stream before the login finished.
    #[error("the server closed the stream")]
    StreamClosed,
    /// The server sent something that does not fit the negotiation at this point, or the
    /// login was driven after it had finished.
    #[error("unexpected: {detail}")]
    Unexpected {
        /// What was received, and what was expected.
        detail: String,
    },
}

fn fmt_text(text: &Option<String>) -> String {
    text.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
}

fn fmt_stanza_error(error: &Option<StanzaError>) -> String {
    error
        .as_ref()
        .map_or_else(|| "no valid error element".to_string(), ToString::to_string)
}

fn unexpected(detail: impl Into<String>) -> LoginError {
    LoginError::Unexpected {
        detail: detail.into(),
    }
}

/// Where the login stands.
enum State {
    /// [`Login::start`] not called yet.
    Initial,
    /// Waiting for the server's stream header.
    AwaitHeader,
    /// Waiting for `<stream:features/>`.
    AwaitFeatures,
    /// Sent `<starttls/>`, waiting for `<proceed/>`.
    AwaitProceed,
    /// Told the caller to upgrade, waiting for [`Login::tls_established`].
    AwaitTls,
    /// In a SASL exchange.
    Sasl(SaslExchange),
    /// Sent the binding request.
    AwaitBind { session_required: bool },
    /// Sent the session request; `jid` is bound.
    AwaitSession { jid: Jid },
    /// Logged in.
    Done,
    /// Failed: see the error returned.
    Failed,
}

enum SaslExchange {
    Plain,
    Scram {
        client: Box<ScramClient>,
        /// Whether server-first has been answered.
        answered: bool,
        /// Whether server-final has been verified (sent as a challenge by some servers).
        verified: bool,
    },
}

/// A client login over one connection (RFC 6120 §4–§7): see the [module docs](self).
pub struct Login {
    config: LoginConfig,
    state: State,
    /// Whether the transport is TLS-protected.
    secure: bool,
    /// Whether SASL succeeded.
    authenticated: bool,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Initial => "initial",
            State::AwaitHeader => "await-header",
            State::AwaitFeatures => "await-features",
            State::AwaitProceed => "await-proceed",
            State::AwaitTls => "await-tls",
            State::Sasl(_) => "sasl",
            State::AwaitBind { .. } => "await-bind",
            State::AwaitSession { .. } => "await-session",
            State::Done => "done",
            State::Failed => "failed",
        };
        f.debug_struct("Login")
            .field("config", &self.config)
            .field("state", &state)
            .field("secure", &self.secure)
            .field("authenticated", &self.authenticated)
            .finish()
    }
}

impl Login {
    /// A login that has not started.
    pub fn new(config: LoginConfig) -> Self {
        Login {
            config,
            state: State::Initial,
            secure: false,
            authenticated: false,
        }
    }

    /// The domain the client connects to: the stream's `to`, and the TLS server name.
    pub fn domain(&self) -> &str {
        self.config.jid.domain()
    }

    /// Whether the login has finished with [`LoginAction::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether STARTTLS was negotiated.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Opens the stream: the initial stream header to the domain. Returns nothing if the
    /// login has already started.
    pub fn start(&mut self) -> Vec<LoginAction> {
        if !matches!(self.state, State::Initial) {
            return Vec::new();
        }
        self.state = State::AwaitHeader;
        vec![LoginAction::Send(self.header())]
    }

    /// The transport is now TLS: opens a new stream (RFC 6120 §5.4.3.3). The caller has reset
    /// its parser on [`LoginAction::ResetParser`]. Returns nothing unless the login was waiting
    /// for TLS.
    pub fn tls_established(&mut self) -> Vec<LoginAction> {
        if !matches!(self.state, State::AwaitTls) {
            return Vec::new();
        }
        self.secure = true;
        self.state = State::AwaitHeader;
        vec![LoginAction::Send(self.header())]
    }

    /// Handles one event from the caller's stream parser.
    ///
    /// # Errors
    /// A [`LoginError`] ends the login: the caller closes the stream. Events after the end
    /// (success or failure) give [`LoginError::Unexpected`].
    pub fn handle(&mut self, event: StreamEvent) -> Result<Vec<LoginAction>, LoginError> {
        let result = self.step(event);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self, event: StreamEvent) -> Result<Vec<LoginAction>, LoginError> {
        match self.state {
            State::Done | State::Failed => return Err(unexpected("event after the login ended")),
            State::Initial => return Err(unexpected("event before the login started")),
            State::AwaitTls => return Err(unexpected("event while waiting for TLS")),
            _ => {}
        }
        let element = match event {
            StreamEvent::End => return Err(LoginError::StreamClosed),
            StreamEvent::Header(header) => return self.on_header(&header),
            StreamEvent::Element(element) => element,
        };
        if element.is("error", ns::STREAM) {
            return Err(stream_error(&element));
        }
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitHeader => Err(unexpected(format!(
                "{} before the stream header",
                describe(&element)
            ))),
            State::AwaitFeatures => self.on_features(&element),
            State::AwaitProceed => self.on_starttls_answer(&element),
            State::Sasl(exchange) => self.on_sasl(exchange, &element),
            State::AwaitBind { session_required } => self.on_bind(session_required, &element),
            State::AwaitSession { jid } => self.on_session(jid, &element),
            // Ruled out above; kept as errors so that no event can panic.
            State::Initial | State::AwaitTls | State::Done | State::Failed => {
                Err(unexpected("event in a state that takes none"))
            }
        }
    }

    fn on_header(&mut self, header: &StreamHeader) -> Result<Vec<LoginAction>, LoginError> {
        if !matches!(self.state, State::AwaitHeader) {
            return Err(unexpected("a second stream header"));
        }
        if header.content_ns != ns::CLIENT {
            return Err(unexpected(format!(
                "stream content namespace {:?}, expected {:?}",
                header.content_ns,
                ns::CLIENT
            )));
        }
        // RFC 6120 §4.7.5: without version 1.0 there are no stream features to negotiate.
        let major = header
            .version
            .as_deref()
            .and_then(|version| version.split('.').next())
            .and_then(|major| major.trim().parse::<u32>().ok());
        if major.is_none_or(|major| major < 1) {
            return Err(unexpected(format!(
                "stream version {:?}, expected 1.0",
                header.version
            )));
        }
        self.state = State::AwaitFeatures;
        Ok(Vec::new())
    }

    fn on_features(&mut self, features: &Element) -> Result<Vec<LoginAction>, LoginError> {
        if !features.is("features", ns::STREAM) {
            return Err(unexpected(format!(
                "{} while waiting for stream features",
                describe(features)
            )));
        }
        if self.authenticated {
            return self.bind(features);
        }
        if !self.secure {
            match (features.child("starttls", ns::TLS), self.config.tls) {
                (Some(_), TlsPolicy::IfOffered | TlsPolicy::Required) => {
                    self.state = State::AwaitProceed;
                    return Ok(vec![send(&Element::new("starttls", ns::TLS))]);
                }
                (Some(starttls), TlsPolicy::Never) => {
                    if starttls.child("required", ns::TLS).is_some() {
                        return Err(LoginError::TlsRequiredByServer);
                    }
                }
                (None, TlsPolicy::Required) => return Err(LoginError::TlsRequired),
                (None, TlsPolicy::Never | TlsPolicy::IfOffered) => {}
            }
        }
        self.authenticate(features)
    }

    fn on_starttls_answer(&mut self, element: &Element) -> Result<Vec<LoginAction>, LoginError> {
        if element.is("proceed", ns::TLS) {
            self.state = State::AwaitTls;
            Ok(vec![LoginAction::ResetParser, LoginAction::StartTls])
        } else if element.is("failure", ns::TLS) {
            Err(LoginError::TlsFailed)
        } else {
            Err(unexpected(format!(
                "{} while waiting for <proceed/>",
                describe(element)
            )))
        }
    }

    /// Picks the first preferred mechanism the server offers and sends `<auth/>`.
    fn authenticate(&mut self, features: &Element) -> Result<Vec<LoginAction>, LoginError> {
        let offered: Vec<String> = features
            .child("mechanisms", ns::SASL)
            .map(|mechanisms| {
                mechanisms
                    .elements()
                    .filter(|child| child.is("mechanism", ns::SASL))
                    .map(|child| child.text().trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let Some(mechanism) = self
            .config
            .mechanisms
            .iter()
            .copied()
            .find(|mechanism| offered.iter().any(|name| name == mechanism.name()))
        else {
            return Err(LoginError::NoMechanism { offered });
        };
        let username = self.config.jid.local().ok_or(LoginError::NoLocalpart)?;
        let (exchange, initial) = match mechanism {
            Mechanism::Plain => (
                SaslExchange::Plain,
                sasl::plain_encode(None, username, &self.config.password),
            ),
            Mechanism::ScramSha1 => {
                let mut client =
                    ScramClient::new(username, &self.config.password, &self.config.client_nonce);
                let initial = client.client_first();
                (
                    SaslExchange::Scram {
                        client: Box::new(client),
                        answered: false,
                        verified: false,
                    },
                    initial,
                )
            }
        };
        self.state = State::Sasl(exchange);
        let auth = Element::new("auth", ns::SASL)
            .with_attr("mechanism", mechanism.name())
            .with_text(sasl::encode_payload(&initial));
        Ok(vec![send(&auth)])
    }

    fn on_sasl(
        &mut self,
        mut exchange: SaslExchange,
        element: &Element,
    ) -> Result<Vec<LoginAction>, LoginError> {
        if element.is("failure", ns::SASL) {
            return Err(LoginError::AuthFailed {
                condition: element
                    .elements()
                    .find(|child| child.ns == ns::SASL && child.name != "text")
                    .map(|child| child.name.clone())
                    .unwrap_or_default(),
                text: element.child_text("text", ns::SASL),
            });
        }
        if element.is("challenge", ns::SASL) {
            let data = sasl::decode_payload(&element.text())?;
            let SaslExchange::Scram {
                client,
                answered,
                verified,
            } = &mut exchange
            else {
                return Err(unexpected("a SASL challenge during PLAIN"));
            };
            let response = if !*answered {
                *answered = true;
                client.handle_server_first(&data)?
            } else if !*verified {
                // Some servers send server-final as a challenge and expect an empty response
                // before <success/> (RFC 6120 §6.4.6 allows both forms).
                client.verify_server_final(&data)?;
                *verified = true;
                Vec::new()
            } else {
                return Err(unexpected("a SASL challenge after server-final"));
            };
            self.state = State::Sasl(exchange);
            let response =
                Element::new("response", ns::SASL).with_text(sasl::encode_payload(&response));
            return Ok(vec![send(&response)]);
        }
        if element.is("success", ns::SASL) {
            if let SaslExchange::Scram {
                client,
                answered,
                verified,
            } = &exchange
            {
                let data = sasl::decode_payload(&element.text())?;
                if !answered {
                    return Err(unexpected("SASL success before the SCRAM exchange"));
                }
                if !data.is_empty() {
                    client.verify_server_final(&data)?;
                } else if !verified {
                    return Err(SaslError::MalformedRequest {
                        detail: "SCRAM success without server-final",
                    }
                    .into());
                }
            }
            self.authenticated = true;
            self.state = State::AwaitHeader;
            return Ok(vec![
                LoginAction::ResetParser,
                LoginAction::Send(self.header()),
            ]);
        }
        Err(unexpected(format!(
            "{} during SASL negotiation",
            describe(element)
        )))
    }

    /// Sends the binding request (RFC 6120 §7.6), noting whether a session is required.
    fn bind(&mut self, features: &Element) -> Result<Vec<LoginAction>, LoginError> {
        if features.child("bind", ns::BIND).is_none() {
            return Err(unexpected(
                "stream features after authentication do not offer resource binding",
            ));
        }
        // RFC 6121 Appendix E: a session is needed only if offered without <optional/>.
        let session_required = features
            .child("session", ns::SESSION)
            .is_some_and(|session| session.child("optional", ns::SESSION).is_none());
        let mut bind = Element::new("bind", ns::BIND);
        if let Some(resource) = self.config.jid.resource() {
            bind = bind.with_child(Element::new("resource", ns::BIND).with_text(resource));
        }
        self.state = State::AwaitBind { session_required };
        Ok(vec![send(&stanza::iq(
            None,
            None,
            IqType::Set,
            BIND_ID,
            Some(bind),
        ))])
    }

    fn on_bind(
        &mut self,
        session_required: bool,
        element: &Element,
    ) -> Result<Vec<LoginAction>, LoginError> {
        if !is_reply(element, BIND_ID) {
            return Err(unexpected(format!(
                "{} while waiting for the binding result",
                describe(element)
            )));
        }
        if element.attr("type") == Some("error") {
            return Err(LoginError::BindFailed {
                error: StanzaError::from_element(element),
            });
        }
        let text = element
            .child("bind", ns::BIND)
            .and_then(|bind| bind.child_text("jid", ns::BIND))
            .ok_or_else(|| unexpected("binding result without <jid/>"))?;
        let text = text.trim();
        let jid = Jid::parse(text).map_err(|source| LoginError::InvalidBoundJid {
            jid: text.to_string(),
            source: Some(source),
        })?;
        if jid.resource().is_none() {
            return Err(LoginError::InvalidBoundJid {
                jid: text.to_string(),
                source: None,
            });
        }
        if session_required {
            let session = stanza::iq(
                None,
                None,
                IqType::Set,
                SESSION_ID,
                Some(Element::new("session", ns::SESSION)),
            )
            .with_attr("to", self.domain());
            self.state = State::AwaitSession { jid };
            return Ok(vec![send(&session)]);
        }
        self.state = State::Done;
        Ok(vec![LoginAction::Done(jid)])
    }

    fn on_session(&mut self, jid: Jid, element: &Element) -> Result<Vec<LoginAction>, LoginError> {
        if !is_reply(element, SESSION_ID) {
            return Err(unexpected(format!(
                "{} while waiting for the session result",
                describe(element)
            )));
        }
        if element.attr("type") == Some("error") {
            return Err(LoginError::SessionFailed {
                error: StanzaError::from_element(element),
            });
        }
        self.state = State::Done;
        Ok(vec![LoginAction::Done(jid)])
    }

    /// The initial stream header (RFC 6120 §4.7). `from` (the bare JID) is sent only on a
    /// TLS-protected stream, as RFC 6120 §4.7.1 advises against revealing it in plaintext.
    fn header(&self) -> Vec<u8> {
        let header = StreamHeader {
            from: self.secure.then(|| self.config.jid.bare().to_string()),
            to: Some(self.domain().to_string()),
            id: None,
            version: Some("1.0".to_string()),
            lang: Some("en".to_string()),
            content_ns: ns::CLIENT.to_string(),
            dialback: false,
        };
        let mut out = Vec::new();
        header.write_to(&mut out);
        out
    }
}

fn send(element: &Element) -> LoginAction {
    let mut out = Vec::new();
    element.write_to(&mut out, ns::CLIENT);
    LoginAction::Send(out)
}

/// Whether `element` is the `result` or `error` answer to our IQ `id`.
fn is_reply(element: &Element, id: &str) -> bool {
    element.is("iq", ns::CLIENT)
        && element.attr("id") == Some(id)
        && matches!(element.attr("type"), Some("result" | "error"))
}

fn describe(element: &Element) -> String {
    format!("<{} xmlns='{}'>", element.name, element.ns)
}

fn stream_error(element: &Element) -> LoginError {
    LoginError::StreamError {
        condition: element
            .elements()
            .find(|child| child.ns == ns::STREAM_ERRORS && child.name != "text")
            .map(|child| child.name.clone())
            .unwrap_or_default(),
        text: element.child_text("text", ns::STREAM_ERRORS),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::sasl::{ScramCredentials, ScramServer};
    use crate::stream::{Limits, StreamParser};

    const DOMAIN: &str = "example.com";

    /// A login wired to a scripted server in memory: the test plays the server by reading
    /// what the client sent ([`Pair::element`], [`Pair::header`]) and sending XML back.
    struct Pair {
        login: Login,
        /// Parses what the server sends, as the client's parser.
        client_parser: StreamParser,
        /// Parses what the client sends, as the server's parser.
        server_parser: StreamParser,
        received: VecDeque<StreamEvent>,
        actions: Vec<LoginAction>,
        done: Option<Jid>,
    }

    impl Pair {
        fn new(config: LoginConfig) -> Self {
            let mut pair = Pair {
                login: Login::new(config),
                client_parser: StreamParser::new(Limits::default()),
                server_parser: StreamParser::new(Limits::default()),
                received: VecDeque::new(),
                actions: Vec::new(),
                done: None,
            };
            let actions = pair.login.start();
            pair.apply(actions);
            pair
        }

        fn apply(&mut self, actions: Vec<LoginAction>) {
            for action in actions {
                match &action {
                    LoginAction::Send(bytes) => {
                        self.server_parser.feed(bytes);
                        while let Some(event) = self.server_parser.next_event().unwrap() {
                            self.received.push_back(event);
                        }
                    }
                    LoginAction::ResetParser => self.client_parser.reset(),
                    LoginAction::StartTls => {}
                    LoginAction::Done(jid) => self.done = Some(jid.clone()),
                }
                self.actions.push(action);
            }
        }

        /// The server sends `xml`; the client handles every event in it.
        fn send(&mut self, xml: &str) -> Result<(), LoginError> {
            self.client_parser.feed(xml.as_bytes());
            while let Some(event) = self.client_parser.next_event().unwrap() {
                let actions = self.login.handle(event)?;
                self.apply(actions);
            }
            Ok(())
        }

        /// The server opens its stream and sends `features`.
        fn open(&mut self, features: &str) -> Result<(), LoginError> {
            let header = StreamHeader {
                from: Some(DOMAIN.to_string()),
                to: None,
                id: Some("s1".to_string()),
                version: Some("1.0".to_string()),
                lang: Some("en".to_string()),
                content_ns: ns::CLIENT.to_string(),
                dialback: false,
            };
            let mut out = Vec::new();
            header.write_to(&mut out);
            self.send(&String::from_utf8(out).unwrap())?;
            self.send(&format!("<stream:features>{features}</stream:features>"))
        }

        /// The server expects a new stream from the client (after <proceed/> or <success/>).
        fn restart_server_stream(&mut self) {
            self.server_parser.reset();
        }

        fn header(&mut self) -> StreamHeader {
            match self.received.pop_front() {
                Some(StreamEvent::Header(header)) => header,
                other => panic!("expected a stream header from the client, got {other:?}"),
            }
        }

        fn element(&mut self) -> Element {
            match self.received.pop_front() {
                Some(StreamEvent::Element(element)) => element,
                other => panic!("expected an element from the client, got {other:?}"),
            }
        }

        fn nothing_more(&self) {
            assert!(self.received.is_empty(), "{:?}", self.received);
        }

        fn take_actions(&mut self) -> Vec<LoginAction> {
            std::mem::take(&mut self.actions)
        }
    }

    fn config(jid: &str, tls: TlsPolicy) -> LoginConfig {
        let mut config =
            LoginConfig::new(Jid::parse(jid).unwrap(), "r0m30", "clientnonce0123456789");
        config.tls = tls;
        config
    }

    fn mechanisms(names: &[&str]) -> String {
        let mut out = format!("<mechanisms xmlns='{}'>", ns::SASL);
        for name in names {
            out.push_str(&format!("<mechanism>{name}</mechanism>"));
        }
        out.push_str("</mechanisms>");
        out
    }

    fn bind_features(session: &str) -> String {
        format!("<bind xmlns='{}'/>{session}", ns::BIND)
    }

    fn sasl_data(element: &Element) -> Vec<u8> {
        sasl::decode_payload(&element.text()).unwrap()
    }

    /// Plays PLAIN and binding after the features have offered PLAIN; returns the bind request.
    fn plain_success(pair: &mut Pair) -> Element {
        let auth = pair.element();
        assert!(auth.is("auth", ns::SASL));
        assert_eq!(auth.attr("mechanism"), Some("PLAIN"));
        assert_eq!(sasl_data(&auth), b"\0juliet\0r0m30");
        pair.take_actions();
        pair.restart_server_stream();
        pair.send(&format!("<success xmlns='{}'/>", ns::SASL))
            .unwrap();
        assert_eq!(
            pair.take_actions()[..1],
            [LoginAction::ResetParser],
            "the parser is reset before the new header"
        );
        let header = pair.header();
        assert_eq!(header.to.as_deref(), Some(DOMAIN));
        pair.open(&bind_features("")).unwrap();
        pair.element()
    }

    fn bind_result(jid: &str) -> String {
        format!(
            "<iq type='result' id='bind1'><bind xmlns='{}'><jid>{jid}</jid></bind></iq>",
            ns::BIND
        )
    }

    #[test]
    fn plaintext_plain_login() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        let header = pair.header();
        assert_eq!(header.to.as_deref(), Some(DOMAIN));
        assert_eq!(header.from, None, "no identity in plaintext");
        assert_eq!(header.version.as_deref(), Some("1.0"));
        assert_eq!(header.lang.as_deref(), Some("en"));
        assert_eq!(header.content_ns, ns::CLIENT);
        pair.open(&mechanisms(&["PLAIN"])).unwrap();

        let bind = plain_success(&mut pair);
        assert!(bind.is("iq", ns::CLIENT));
        assert_eq!(bind.attr("type"), Some("set"));
        assert_eq!(bind.attr("id"), Some("bind1"));
        let payload = bind.child("bind", ns::BIND).unwrap();
        assert!(payload.child("resource", ns::BIND).is_none());
        assert!(!pair.login.is_done());

        pair.send(&bind_result("juliet@example.com/4db06f06"))
            .unwrap();
        assert_eq!(
            pair.done,
            Some(Jid::parse("juliet@example.com/4db06f06").unwrap())
        );
        assert!(pair.login.is_done());
        assert!(!pair.login.is_secure());
        pair.nothing_more();
        // The login is over: more events are a caller error, not a panic.
        assert!(matches!(
            pair.send("<message/>"),
            Err(LoginError::Unexpected { .. })
        ));
    }

    fn scram_login(server_password: &str, jid: &str) -> (Pair, Result<(), LoginError>) {
        let mut pair = Pair::new(config(jid, TlsPolicy::IfOffered));
        pair.header();
        pair.open(&mechanisms(&["PLAIN", "SCRAM-SHA-1"])).unwrap();
        let auth = pair.element();
        assert_eq!(
            auth.attr("mechanism"),
            Some("SCRAM-SHA-1"),
            "SCRAM is preferred"
        );

        let credentials = ScramCredentials::derive(server_password, b"NaCl", 4096).unwrap();
        let mut server = ScramServer::new("servernonce987654321");
        assert_eq!(server.client_first(&sasl_data(&auth)).unwrap(), "juliet");
        let server_first = server.server_first(&credentials).unwrap();
        let challenge = format!(
            "<challenge xmlns='{}'>{}</challenge>",
            ns::SASL,
            STANDARD.encode(server_first)
        );
        pair.send(&challenge).unwrap();
        let response = pair.element();
        assert!(response.is("response", ns::SASL));
        let result = match server.client_final(&sasl_data(&response)) {
            Ok(server_final) => {
                pair.restart_server_stream();
                pair.send(&format!(
                    "<success xmlns='{}'>{}</success>",
                    ns::SASL,
                    STANDARD.encode(server_final)
                ))
            }
            Err(error) => pair.send(&format!(
                "<failure xmlns='{}'><{}/><text xml:lang='en'>bad proof</text></failure>",
                ns::SASL,
                error.condition()
            )),
        };
        (pair, result)
    }

    #[test]
    fn scram_login_with_requested_resource() {
        let (mut pair, result) = scram_login("r0m30", "juliet@example.com/balcony");
        result.unwrap();
        pair.header();
        pair.open(&bind_features("")).unwrap();
        let bind = pair.element();
        assert_eq!(
            bind.child("bind", ns::BIND)
                .and_then(|bind| bind.child_text("resource", ns::BIND))
                .as_deref(),
            Some("balcony")
        );
        pair.send(&bind_result("juliet@example.com/balcony"))
            .unwrap();
        assert_eq!(
            pair.done,
            Some(Jid::parse("juliet@example.com/balcony").unwrap())
        );
    }

    #[test]
    fn scram_with_wrong_password_fails_with_the_servers_condition() {
        let (_, result) = scram_login("another password", "juliet@example.com");
        assert_eq!(
            result,
            Err(LoginError::AuthFailed {
                condition: "not-authorized".into(),
                text: Some("bad proof".into()),
            })
        );
    }

    #[test]
    fn scram_detects_a_wrong_server_signature() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["SCRAM-SHA-1"])).unwrap();
        let auth = pair.element();
        let credentials = ScramCredentials::derive("r0m30", b"NaCl", 4096).unwrap();
        let mut server = ScramServer::new("servernonce987654321");
        server.client_first(&sasl_data(&auth)).unwrap();
        let server_first = server.server_first(&credentials).unwrap();
        pair.send(&format!(
            "<challenge xmlns='{}'>{}</challenge>",
            ns::SASL,
            STANDARD.encode(server_first)
        ))
        .unwrap();
        pair.element();
        let forged = STANDARD.encode("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(
            pair.send(&format!("<success xmlns='{}'>{forged}</success>", ns::SASL)),
            Err(LoginError::Sasl(SaslError::ServerSignatureMismatch))
        );
    }

    #[test]
    fn scram_server_final_may_come_as_a_challenge() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["SCRAM-SHA-1"])).unwrap();
        let auth = pair.element();
        let credentials = ScramCredentials::derive("r0m30", b"NaCl", 4096).unwrap();
        let mut server = ScramServer::new("servernonce987654321");
        server.client_first(&sasl_data(&auth)).unwrap();
        let server_first = server.server_first(&credentials).unwrap();
        pair.send(&format!(
            "<challenge xmlns='{}'>{}</challenge>",
            ns::SASL,
            STANDARD.encode(server_first)
        ))
        .unwrap();
        let server_final = server.client_final(&sasl_data(&pair.element())).unwrap();
        pair.send(&format!(
            "<challenge xmlns='{}'>{}</challenge>",
            ns::SASL,
            STANDARD.encode(server_final)
        ))
        .unwrap();
        let empty = pair.element();
        assert!(empty.is("response", ns::SASL));
        assert_eq!(empty.text(), "=");
        pair.restart_server_stream();
        pair.send(&format!("<success xmlns='{}'/>", ns::SASL))
            .unwrap();
        pair.header();
    }

    #[test]
    fn starttls_then_login() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::IfOffered));
        pair.header();
        pair.open(&format!(
            "<starttls xmlns='{}'><required/></starttls>{}",
            ns::TLS,
            mechanisms(&["PLAIN"])
        ))
        .unwrap();
        let starttls = pair.element();
        assert!(starttls.is("starttls", ns::TLS));
        pair.take_actions();
        pair.restart_server_stream();
        pair.send(&format!("<proceed xmlns='{}'/>", ns::TLS))
            .unwrap();
        assert_eq!(
            pair.take_actions(),
            [LoginAction::ResetParser, LoginAction::StartTls]
        );
        pair.nothing_more();
        assert_eq!(pair.login.domain(), DOMAIN);
        // Nothing may arrive while the caller upgrades.
        let actions = pair.login.tls_established();
        pair.apply(actions);
        assert!(pair.login.is_secure());
        let header = pair.header();
        assert_eq!(header.from.as_deref(), Some("juliet@example.com"));
        // After TLS the server no longer offers STARTTLS.
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        plain_success(&mut pair);
        pair.send(&bind_result("juliet@example.com/x")).unwrap();
        assert!(pair.done.is_some());
        // A second tls_established() is ignored.
        assert!(pair.login.tls_established().is_empty());
    }

    #[test]
    fn tls_required_but_not_offered() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Required));
        pair.header();
        assert_eq!(
            pair.open(&mechanisms(&["PLAIN"])),
            Err(LoginError::TlsRequired)
        );
        pair.nothing_more();
    }

    #[test]
    fn tls_required_by_server_but_disabled() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        assert_eq!(
            pair.open(&format!(
                "<starttls xmlns='{}'><required/></starttls>{}",
                ns::TLS,
                mechanisms(&["PLAIN"])
            )),
            Err(LoginError::TlsRequiredByServer)
        );
        // Offered but optional: the login goes on in plaintext.
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&format!(
            "<starttls xmlns='{}'/>{}",
            ns::TLS,
            mechanisms(&["PLAIN"])
        ))
        .unwrap();
        assert!(pair.element().is("auth", ns::SASL));
    }

    #[test]
    fn tls_refused_by_server() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Required));
        pair.header();
        pair.open(&format!("<starttls xmlns='{}'/>", ns::TLS))
            .unwrap();
        assert_eq!(
            pair.send(&format!("<failure xmlns='{}'/>", ns::TLS)),
            Err(LoginError::TlsFailed)
        );
    }

    #[test]
    fn plain_auth_failure() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        pair.element();
        assert_eq!(
            pair.send(&format!(
                "<failure xmlns='{}'><not-authorized/></failure>",
                ns::SASL
            )),
            Err(LoginError::AuthFailed {
                condition: "not-authorized".into(),
                text: None,
            })
        );
    }

    #[test]
    fn no_acceptable_mechanism() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        assert_eq!(
            pair.open(&mechanisms(&["EXTERNAL", "SCRAM-SHA-1-PLUS"])),
            Err(LoginError::NoMechanism {
                offered: vec!["EXTERNAL".into(), "SCRAM-SHA-1-PLUS".into()],
            })
        );
        let mut only_plain = config("juliet@example.com", TlsPolicy::Never);
        only_plain.mechanisms = vec![Mechanism::Plain];
        let mut pair = Pair::new(only_plain);
        pair.header();
        assert!(matches!(
            pair.open(&mechanisms(&["SCRAM-SHA-1"])),
            Err(LoginError::NoMechanism { .. })
        ));
    }

    fn login_until_bind(session: &str) -> Pair {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        pair.element();
        pair.restart_server_stream();
        pair.send(&format!("<success xmlns='{}'/>", ns::SASL))
            .unwrap();
        pair.header();
        pair.open(&bind_features(session)).unwrap();
        pair.element();
        pair
    }

    #[test]
    fn required_session_is_established() {
        let mut pair = login_until_bind(&format!("<session xmlns='{}'/>", ns::SESSION));
        pair.send(&bind_result("juliet@example.com/r")).unwrap();
        assert_eq!(pair.done, None);
        let session = pair.element();
        assert!(session.is("iq", ns::CLIENT));
        assert_eq!(session.attr("id"), Some("sess1"));
        assert_eq!(session.attr("type"), Some("set"));
        assert_eq!(session.attr("to"), Some(DOMAIN));
        assert!(session.child("session", ns::SESSION).is_some());
        pair.send("<iq type='result' id='sess1'/>").unwrap();
        assert_eq!(pair.done, Some(Jid::parse("juliet@example.com/r").unwrap()));
    }

    #[test]
    fn optional_session_is_skipped() {
        let mut pair = login_until_bind(&format!(
            "<session xmlns='{}'><optional/></session>",
            ns::SESSION
        ));
        pair.send(&bind_result("juliet@example.com/r")).unwrap();
        assert_eq!(pair.done, Some(Jid::parse("juliet@example.com/r").unwrap()));
        pair.nothing_more();
    }

    #[test]
    fn session_error() {
        let mut pair = login_until_bind(&format!("<session xmlns='{}'/>", ns::SESSION));
        pair.send(&bind_result("juliet@example.com/r")).unwrap();
        pair.element();
        let result = pair.send(&format!(
            "<iq type='error' id='sess1'><error type='wait'><internal-server-error xmlns='{}'/></error></iq>",
            ns::STANZA_ERRORS
        ));
        let Err(LoginError::SessionFailed { error: Some(error) }) = result else {
            panic!("{result:?}");
        };
        assert_eq!(error.condition.as_str(), "internal-server-error");
    }

    #[test]
    fn bind_errors() {
        let mut pair = login_until_bind("");
        let result = pair.send(&format!(
            "<iq type='error' id='bind1'><error type='cancel'><conflict xmlns='{}'/></error></iq>",
            ns::STANZA_ERRORS
        ));
        let Err(LoginError::BindFailed { error: Some(error) }) = result else {
            panic!("{result:?}");
        };
        assert_eq!(error.condition.as_str(), "conflict");

        let mut pair = login_until_bind("");
        assert!(matches!(
            pair.send(&bind_result("juliet@example.com")),
            Err(LoginError::InvalidBoundJid { source: None, .. })
        ));
        let mut pair = login_until_bind("");
        assert!(matches!(
            pair.send(&bind_result("@@")),
            Err(LoginError::InvalidBoundJid {
                source: Some(_),
                ..
            })
        ));
        let mut pair = login_until_bind("");
        assert!(matches!(
            pair.send("<iq type='result' id='other'/>"),
            Err(LoginError::Unexpected { .. })
        ));
    }

    #[test]
    fn bind_feature_is_required_after_authentication() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        pair.element();
        pair.restart_server_stream();
        pair.send(&format!("<success xmlns='{}'/>", ns::SASL))
            .unwrap();
        pair.header();
        assert!(matches!(pair.open(""), Err(LoginError::Unexpected { .. })));
    }

    #[test]
    fn stream_errors_and_closes() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        let result = pair.send(&format!(
            "<stream:error><host-unknown xmlns='{0}'/><text xmlns='{0}'>who?</text></stream:error>",
            ns::STREAM_ERRORS
        ));
        assert_eq!(
            result,
            Err(LoginError::StreamError {
                condition: "host-unknown".into(),
                text: Some("who?".into()),
            })
        );

        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        assert_eq!(pair.send("</stream:stream>"), Err(LoginError::StreamClosed));
    }

    #[test]
    fn unexpected_elements_fail_the_login() {
        let mut pair = Pair::new(config("juliet@example.com", TlsPolicy::Never));
        pair.header();
        pair.open(&mechanisms(&["PLAIN"])).unwrap();
        pair.element();
        assert!(matches!(
            pair.send("<message><body>hi</body></message>"),
            Err(LoginError::Unexpected { .. })
        ));
        // And every event after that too.
        assert!(matches!(
            pair.login.handle(StreamEvent::End),
            Err(LoginError::Unexpected { .. })
        ));

        // Elements before the features.
        let mut login = Login::new(config("juliet@example.com", TlsPolicy::Never));
        assert!(matches!(
            login.handle(StreamEvent::End),
            Err(LoginError::Unexpected { .. })
        ));
        let mut login = Login::new(config("juliet@example.com", TlsPolicy::Never));
        login.start();
        assert!(matches!(
            login.handle(StreamEvent::Element(Element::new("features", ns::STREAM))),
            Err(LoginError::Unexpected { .. })
        ));
    }

    #[test]
    fn start_is_idempotent_and_secrets_stay_out_of_debug() {
        let mut login = Login::new(config("juliet@example.com", TlsPolicy::Never));
        assert_eq!(login.start().len(), 1);
        assert!(login.start().is_empty());
        assert!(!format!("{login:?}").contains("r0m30"));
    }

    #[test]
    fn a_jid_without_localpart_cannot_log_in() {
        let mut pair = Pair::new(config("example.com", TlsPolicy::Never));
        pair.header();
        assert_eq!(
            pair.open(&mechanisms(&["PLAIN"])),
            Err(LoginError::NoLocalpart)
        );
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::stream::{Limits, StreamParser};

    /// Pieces a hostile or confused server might send, in any order.
    fn piece() -> impl Strategy<Value = String> {
        let fixed = prop::sample::select(vec![
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='example.com' id='x'>".to_string(),
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>".to_string(),
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>".to_string(),
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>".to_string(),
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_string(),
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_string(),
            "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_string(),
            "<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>a@b/c</jid></bind></iq>".to_string(),
            "<iq type='result' id='sess1'/>".to_string(),
            "<iq type='error' id='bind1'/>".to_string(),
            "</stream:stream>".to_string(),
        ]);
        let challenge = "[A-Za-z0-9+/=]{0,40}".prop_map(|data| {
            format!("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{data}</challenge>")
        });
        let scram_like =
            "r=clientnonce[a-z]{0,5},s=[A-Za-z0-9+/]{0,8}=?=?,i=[0-9]{1,3}".prop_map(|data| {
                format!(
                    "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>",
                    sasl::encode_payload(data.as_bytes())
                )
            });
        prop_oneof![fixed, challenge, scram_like]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_server_script_never_panics(
            script in prop::collection::vec(piece(), 0..10),
            tls in prop::sample::select(vec![TlsPolicy::Never, TlsPolicy::IfOffered, TlsPolicy::Required]),
        ) {
            let mut config =
                LoginConfig::new(Jid::parse("juliet@example.com/r").unwrap(), "r0m30", "clientnonce");
            config.tls = tls;
            let mut login = Login::new(config);
            let mut parser = StreamParser::new(Limits::default());
            login.start();
            'script: for piece in script {
                parser.feed(piece.as_bytes());
                while let Ok(Some(event)) = parser.next_event() {
                    match login.handle(event) {
                        Ok(actions) => {
                            for action in actions {
                                match action {
                                    LoginAction::ResetParser => parser.reset(),
                                    LoginAction::StartTls => {
                                        login.tls_established();
                                    }
                                    LoginAction::Send(_) | LoginAction::Done(_) => {}
                                }
                            }
                        }
                        Err(_) => break 'script,
                    }
                }
            }
        }
    }
}
