//! The scenario language: what a YAML scenario file may say (documented in
//! `scenarios/README.md`; the JSON Schema in `scenarios/schema.json` is generated from these
//! types).
//!
//! Steps are protocol-neutral (log in, send a message, subscribe, expect presence) except
//! `raw` and `expect_xml`, the XMPP escape hatch.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

pub use imfed_model::{Availability, ErrorClass, MessageKind, Show, StanzaKind, SubscriptionState};

/// A value with the place in the file it came from.
#[derive(Debug, Clone)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(At {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            value: spanned.value,
        })
    }
}

impl<T: JsonSchema> JsonSchema for At<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// A duration written as `500ms`, `5s` or `2m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `500ms`, `5s`, `1.5s`, `2m`.
    ///
    /// # Errors
    /// A message saying what is expected.
    pub fn parse(text: &str) -> Result<Dur, String> {
        let text = text.trim();
        let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
            Some(index) => text.split_at(index),
            None => return Err(format!("{text:?} has no unit: write e.g. 500ms, 5s or 2m")),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration: write e.g. 500ms, 5s or 2m"))?;
        let millis = match unit {
            "ms" => value,
            "s" => value * 1000.0,
            "m" => value * 60_000.0,
            _ => {
                return Err(format!(
                    "{text:?} has unknown unit {unit:?}: use ms, s or m"
                ));
            }
        };
        if !(1.0..=600_000.0).contains(&millis) {
            return Err(format!("{text:?} is out of range (1ms to 10m)"));
        }
        Ok(Dur(Duration::from_millis(millis as u64)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Dur::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m)$",
            "description": "A duration: 500ms, 5s, 1.5s or 2m (1ms to 10m)."
        })
    }
}

/// Requirement level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Level {
    /// RFC 2119 MUST (or MUST NOT, REQUIRED, SHALL).
    #[serde(rename = "MUST")]
    Must,
    /// RFC 2119 SHOULD (or SHOULD NOT, RECOMMENDED).
    #[serde(rename = "SHOULD")]
    Should,
    /// RFC 2119 MAY (OPTIONAL).
    #[serde(rename = "MAY")]
    May,
}

/// A requirement the scenario checks.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecRef {
    /// The document: "RFC 6121", "RFC 6120", "XEP-0220", "RFC 2779".
    pub doc: String,
    /// The section: "3.1.3".
    pub section: String,
    /// The requirement level.
    pub level: Level,
    /// The requirement, quoted from the document.
    #[serde(default)]
    pub text: Option<String>,
}

/// Which server an actor's account lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The reference server's domain.
    Ref,
    /// The implementation under test.
    Sut,
}

impl Role {
    /// The other role.
    pub fn other(self) -> Role {
        match self {
            Role::Ref => Role::Sut,
            Role::Sut => Role::Ref,
        }
    }

    /// "ref" or "sut".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ref => "ref",
            Role::Sut => "sut",
        }
    }
}

/// An actor: a user (and one connected client of it) on a domain role.
///
/// Written `alice: ref`, or `alice_phone: {on: ref, account: alice, resource: phone}` for a
/// second client of the same account.
#[derive(Clone, Debug, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum ActorDef {
    /// Just the role; the account is the actor's own, the resource `imfed`.
    Role(Role),
    /// The role with an explicit account and resource.
    Full(ActorFull),
}

/// The long form of an actor.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorFull {
    /// Which server.
    pub on: Role,
    /// Share the account of this other actor name (default: the actor's own account).
    #[serde(default)]
    pub account: Option<String>,
    /// The resource to bind (default `imfed`).
    #[serde(default)]
    pub resource: Option<String>,
}

impl ActorDef {
    /// The role.
    pub fn role(&self) -> Role {
        match self {
            ActorDef::Role(role) => *role,
            ActorDef::Full(full) => full.on,
        }
    }
}

impl<'de> Deserialize<'de> for ActorDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ActorDef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`ref`, `sut`, or a map {on, account, resource}")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<ActorDef, E> {
                match value {
                    "ref" => Ok(ActorDef::Role(Role::Ref)),
                    "sut" => Ok(ActorDef::Role(Role::Sut)),
                    other => Err(E::custom(format!(
                        "unknown role {other:?}: expected `ref` or `sut`"
                    ))),
                }
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ActorDef, A::Error> {
                ActorFull::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ActorDef::Full)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique id across all packs (lowercase, digits, `-` and `.`).
    pub id: String,
    /// One line saying what is checked.
    pub title: String,
    /// Longer explanation.
    #[serde(default)]
    pub description: Option<String>,
    /// The requirements checked (at least one).
    pub spec: Vec<SpecRef>,
    /// Free tags for `--filter tag:...`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Capabilities the server hosting the `sut` actors must have; a target declaring one
    /// unsupported skips the scenario as written (its swapped run, where the reference server
    /// hosts those actors, still runs).
    #[serde(default)]
    pub requires: Vec<String>,
    /// The protocol profiles the scenario is written for (`xmpp`, `rvp`); empty: it is
    /// protocol-neutral and runs over every profile, each declaring what it cannot express.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Also run with the `ref` and `sut` roles swapped (federation has two links).
    #[serde(default)]
    pub both_directions: bool,
    /// Run alone: the scenario changes what every run shares (the federation link itself,
    /// with `reference_link`), so no other run of the target is in flight meanwhile.
    #[serde(default)]
    pub exclusive: bool,
    /// Bound on the whole scenario (default 60s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// The actors, by name.
    pub actors: BTreeMap<String, ActorDef>,
    /// What happens, in order.
    pub steps: Vec<At<Step>>,
}

/// One string or several (any of them matches).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Any of these.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    pub fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(one) => vec![one.as_str()],
            OneOrMany::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

/// A step (externally tagged: `- login: alice`, `- send: {...}`).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Connect, authenticate, bind and fetch the roster (without sending presence).
    Login(String),
    /// Send unavailable presence and close the stream.
    Logout(String),
    /// Drop the connection without closing the stream (abrupt disconnect).
    Disconnect(String),
    /// Send a message.
    Send(SendStep),
    /// Request a subscription to `to`'s presence (RFC 2779 §5.1; RFC 6121 §3.1; RVP §5.1).
    Subscribe(SubscribeStep),
    /// Renew a leased subscription before it runs out (RVP §5.1.2; SIP's re-SUBSCRIBE).
    Renew(SubscribeStep),
    /// Approve `to`'s subscription request (RFC 6121 §3.1.4).
    Approve(Pair),
    /// Deny `to`'s subscription request (RFC 6121 §3.2).
    Deny(Pair),
    /// Cancel `to`'s subscription to `from`'s presence (RFC 6121 §3.2).
    Cancel(Pair),
    /// Unsubscribe from `to`'s presence (RFC 6121 §3.3).
    Unsubscribe(Pair),
    /// Add or update a roster item (RFC 6121 §2.3).
    RosterAdd(RosterAdd),
    /// Remove a roster item (RFC 6121 §2.5).
    RosterRemove(RosterRemove),
    /// Send presence: broadcast, or directed with `to` (RFC 6121 §4). A broadcast is
    /// followed by a ping round trip to the actor's server, so the server has processed it
    /// before the next step (RFC 6120 §10.1: stanzas on a stream are handled in order).
    Presence(PresenceStep),
    /// Wait, within a bound, for something to arrive.
    Expect(Expect),
    /// Check that nothing of a kind arrives for a while.
    ExpectNone(ExpectNone),
    /// Check that the reference server sent or received a stanza over the federation link.
    Federation(FederationExpect),
    /// Send raw XML as an actor (XMPP escape hatch).
    Raw(RawStep),
    /// Send an HTTP request as written to the actor's home server (RVP escape hatch); the
    /// answer is received like anything else (an error status is an error report).
    RawHttp(RawHttpStep),
    /// Wait for a stanza matching an XML pattern (XMPP escape hatch).
    ExpectXml(ExpectXml),
    /// Wait for an HTTP answer of a given shape (RVP escape hatch).
    ExpectHttp(ExpectHttp),
    /// Send a SIP request as written to the actor's home server (SIP escape hatch); the
    /// response is received like anything else (a final status other than 2xx is an error
    /// report).
    RawSip(RawSipStep),
    /// Wait for a SIP response, or a request the home server sent, of a given shape (SIP
    /// escape hatch).
    ExpectSip(ExpectSip),
    /// Open a server-to-server connection of the scenario's own to the implementation, as a
    /// peer server that may lie: claim any domain, authenticate or not (XMPP; the hostile
    /// peer of `scenarios/xmpp/s2s-security`).
    PeerConnect(PeerConnect),
    /// Write bytes on a peer connection as they are (XMPP).
    PeerSend(PeerSend),
    /// Cut a peer connection: the TCP connection is closed with no stream end, as a link
    /// that dies does (XMPP).
    PeerCut(PeerCut),
    /// Wait for the implementation's verdict on a peer connection: a dialback answer, a
    /// stream error, the end of the connection, or a stanza (XMPP).
    PeerExpect(PeerExpect),
    /// Upload a file to the sender's upload service and send its link (XEP-0363 HTTP File
    /// Upload, XEP-0066 out-of-band data; XMPP).
    SendFile(SendFile),
    /// Wait for a file link and download it: the bytes and media type must be the ones
    /// `send_file` uploaded (XMPP).
    ExpectFile(ExpectFile),
    /// Check one rule of the actor's upload service (XMPP).
    UploadProbe(UploadProbe),
    /// Make the reference server a dead host on federation, or bring it back (XMPP; the
    /// scenario must be `exclusive`).
    ReferenceLink(LinkAction),
}

/// What `reference_link` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// The reference server cuts its server-to-server connections (no stream end) and holds
    /// new ones open without a word: a host gone behind a live address.
    Down,
    /// It answers again; then the step waits the target's `s2s_retry_delay`, the time it
    /// may take before trying a failed domain again.
    Up,
}

/// A file to upload and send.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendFile {
    /// The sending actor (its own server's upload service is used).
    pub from: String,
    /// The recipient: an actor or an address.
    pub to: String,
    /// The file name (templated), unique in the scenario: `expect_file` and
    /// `upload_probe` refer to it.
    pub name: String,
    /// Its media type (`text/plain`, `audio/ogg`, `video/webm`, ...).
    #[serde(rename = "type")]
    pub media_type: String,
    /// Its size in bytes (the content is pseudo-random, fixed by name and size).
    pub size: u32,
}

/// A file link the actor must receive, and the file behind it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectFile {
    /// Who receives it.
    pub actor: String,
    /// Who sent it.
    pub from: String,
    /// The name `send_file` gave it (templated).
    pub name: String,
    /// Bound on the link arriving (default 10s); the download has its own 30 s.
    #[serde(default)]
    pub within: Option<Dur>,
}

/// A rule of XEP-0363 checked against the actor's upload service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadRule {
    /// A slot one byte larger than the `max-file-size` the service announces is refused
    /// with `not-acceptable` and a `<file-too-large/>` naming that limit (§6).
    OverLimit,
    /// A download from the service with a slot that was never issued is a 404.
    UnknownDownload,
    /// The recipient of a link cannot upload to it: a PUT of other bytes to the GET URL,
    /// without the uploader's headers, is refused (4xx) and the file is unchanged (§7, §9.1).
    RecipientPut,
}

impl UploadRule {
    /// The rule as scenarios write it.
    pub fn name(self) -> &'static str {
        match self {
            UploadRule::OverLimit => "over_limit",
            UploadRule::UnknownDownload => "unknown_download",
            UploadRule::RecipientPut => "recipient_put",
        }
    }
}

/// One upload-service rule to check.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadProbe {
    /// Whose server's upload service is checked (for `unknown_download` and
    /// `recipient_put`: the uploader of `name`).
    pub actor: String,
    /// The rule.
    pub rule: UploadRule,
    /// The file whose URL `unknown_download` and `recipient_put` start from.
    #[serde(default)]
    pub name: Option<String>,
}

/// Which dialback key a peer connection presents (XEP-0220 §2.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerKey {
    /// The key the reference server, authoritative for the claimed domain, confirms when
    /// the implementation asks it (XEP-0185): a peer that dialback must accept.
    Reference,
    /// A key nobody issued: the reference server denies it.
    Wrong,
}

/// A server-to-server connection the scenario opens to the implementation's s2s listener.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerConnect {
    /// The connection's name in later `peer_send` and `peer_expect` steps.
    pub peer: String,
    /// The domain its stream claims to be from (templated; default `{ref.domain}`, whose
    /// authoritative server is the reference server).
    #[serde(default)]
    pub from: Option<String>,
    /// The domain its stream is for (templated; default `{sut.domain}`).
    #[serde(default)]
    pub to: Option<String>,
    /// Open the stream (header, features, STARTTLS when offered) before the next step.
    /// Default true; false leaves a bare TCP connection for `peer_send` to write a stream
    /// header of its own.
    #[serde(default = "yes")]
    pub open: bool,
    /// Take STARTTLS when the implementation offers it (default true).
    #[serde(default = "yes")]
    pub starttls: bool,
    /// Present this certificate in the TLS handshake (needs `starttls`; absent: none).
    #[serde(default)]
    pub certificate: Option<PeerCertificate>,
    /// Authenticate with SASL EXTERNAL after TLS when it is offered (XEP-0178 §3; needs a
    /// `certificate`), and restart the stream on success. Whether it worked is awaited with
    /// `peer_expect: {sasl: ...}`; a refusal is no error of this step.
    #[serde(default)]
    pub sasl: Option<PeerSasl>,
    /// Send `<db:result/>` for `from` with this key once the stream is open (absent: do
    /// not authenticate). The answer is awaited with `peer_expect`.
    #[serde(default)]
    pub dialback: Option<PeerKey>,
}

/// A certificate a peer connection presents (RFC 6120 §13.7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerCertificate {
    /// Issued by the run's CA for the domain the stream claims, valid now (the scenario
    /// needs the `s2s-certificates` capability).
    Valid,
    /// Issued by the run's CA for that domain, expired a year ago.
    Expired,
    /// Issued by the run's CA, valid now, for another domain (`wrong-name.invalid`).
    WrongName,
    /// For that domain, valid now, issued by a CA nobody trusts.
    Untrusted,
    /// For that domain, valid now, signed by its own key.
    SelfSigned,
}

impl PeerCertificate {
    /// Whether the run's CA issues it.
    pub fn from_run_ca(self) -> bool {
        matches!(
            self,
            PeerCertificate::Valid | PeerCertificate::Expired | PeerCertificate::WrongName
        )
    }
}

/// A SASL mechanism a peer connection authenticates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerSasl {
    /// EXTERNAL: the TLS certificate authenticates the claimed domain.
    External,
}

/// How a peer's SASL EXTERNAL went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerSaslVerdict {
    /// `<success/>`: the claimed domain is authenticated on the stream.
    Success,
    /// Anything else: EXTERNAL not offered, `<failure/>`, the TLS session or the stream
    /// refused.
    Refused,
}

fn yes() -> bool {
    true
}

/// Bytes to write on a peer connection.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerSend {
    /// The peer connection.
    pub peer: String,
    /// What to write (templated), as it is: well-formed or not.
    pub xml: String,
    /// Make the written text exactly this many bytes (1 to 16 MiB) by replacing the one
    /// `{pad}` in it with `.` filler (an oversized stanza).
    #[serde(default)]
    pub pad_to: Option<u32>,
    /// Write it in pieces with pauses between them, as a slow or congested link delivers
    /// bytes (absent: at once).
    #[serde(default)]
    pub trickle: Option<Trickle>,
}

/// Bytes written in pieces.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trickle {
    /// Bytes per piece (at least 1); a piece may end inside a UTF-8 character.
    pub bytes: u32,
    /// The pause after each piece but the last (at most 1s; the whole write at most 20s).
    pub every: Dur,
}

/// A peer connection to cut.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerCut {
    /// The peer connection.
    pub peer: String,
}

/// What the implementation answers on a peer connection: exactly one of `dialback`,
/// `sasl`, `stream_error`, `closed` and `match`. What else arrives meanwhile is passed over (and
/// shown if the step fails).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerExpect {
    /// The peer connection.
    pub peer: String,
    /// The answer to the connection's `<db:result/>`: `valid`, or `refused` (`type`
    /// `invalid` or `error`, a stream error or the connection's end: no authentication;
    /// default bound as for `closed`).
    #[serde(default)]
    pub dialback: Option<PeerVerdict>,
    /// How the connection's SASL EXTERNAL (`peer_connect` with `sasl`) went.
    #[serde(default)]
    pub sasl: Option<PeerSaslVerdict>,
    /// A stream error with one of these conditions (RFC 6120 §4.9.3), then the end of the
    /// stream.
    #[serde(default)]
    pub stream_error: Option<OneOrMany>,
    /// The implementation ends the connection (with a stream error or without). Default
    /// bound: the target's `s2s_auth_timeout` and 5 s more.
    #[serde(default)]
    pub closed: bool,
    /// A stanza matching this pattern (as `expect_xml`, in the `jabber:server` namespace).
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
    /// Bound (default 10s).
    #[serde(default)]
    pub within: Option<Dur>,
}

/// How a peer's dialback was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerVerdict {
    /// `<db:result type='valid'/>`: the domain is authenticated on the stream.
    Valid,
    /// Anything that does not authenticate it.
    Refused,
}

/// A message to send.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendStep {
    /// The sending actor.
    pub from: String,
    /// An actor name (its bare JID) or any templated address, e.g. `{bob.full_jid}`.
    pub to: String,
    /// The message type (default chat).
    #[serde(default, rename = "type")]
    pub message_type: Option<MessageKind>,
    /// The body (templated; `{i}` is the repetition index).
    #[serde(default)]
    pub body: Option<String>,
    /// The thread id.
    #[serde(default)]
    pub thread: Option<String>,
    /// The subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Send this many messages, `{i}` counting from 0.
    #[serde(default)]
    pub repeat: Option<u32>,
    /// The stanza id (templated; default: a fresh one per message).
    #[serde(default)]
    pub id: Option<String>,
    /// Pad the body (after templates) with `.` to this many bytes of UTF-8, for size
    /// limits (a 32769-byte body needs no 32 KB literal in the file); a body already longer
    /// fails the step.
    #[serde(default)]
    pub pad_to: Option<u32>,
}

/// A subscription request, optionally leased.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeStep {
    /// The watcher.
    pub from: String,
    /// The presentity: an actor name or a templated address.
    pub to: String,
    /// The lifetime to ask for (leased subscriptions: RVP `Subscription-Lifetime`, §5.1.2);
    /// absent: the profile's usual one.
    #[serde(default)]
    pub lifetime: Option<Dur>,
}

/// Two actors: `from` acts towards `to`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    /// The acting actor.
    pub from: String,
    /// The other party: an actor name or a templated address.
    pub to: String,
}

/// A roster item to add or update.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterAdd {
    /// Whose roster.
    pub actor: String,
    /// The contact: an actor name or an address.
    pub contact: String,
    /// The item's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The item's groups.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A roster item to remove.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterRemove {
    /// Whose roster.
    pub actor: String,
    /// The contact: an actor name or an address.
    pub contact: String,
}

/// Presence to send.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceStep {
    /// Who sends it.
    pub actor: String,
    /// Available (default) or unavailable.
    #[serde(default, rename = "type")]
    pub availability: Option<Availability>,
    /// The show value.
    #[serde(default)]
    pub show: Option<Show>,
    /// The status text.
    #[serde(default)]
    pub status: Option<String>,
    /// The priority (-128..127).
    #[serde(default)]
    pub priority: Option<i8>,
    /// Directed presence: an actor name or an address.
    #[serde(default)]
    pub to: Option<String>,
    /// How long the server keeps it unless it is published again (leased presence: RVP
    /// §5.5's leased value); absent: the profile's usual one.
    #[serde(default)]
    pub lease: Option<Dur>,
}

/// Matches a message.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageMatch {
    /// The sender: an actor name (bare or full JID matches) or an address.
    #[serde(default)]
    pub from: Option<String>,
    /// The type (a missing type attribute counts as normal).
    #[serde(default, rename = "type")]
    pub message_type: Option<MessageKind>,
    /// The exact body.
    #[serde(default)]
    pub body: Option<String>,
    /// The thread id.
    #[serde(default)]
    pub thread: Option<String>,
    /// The subject.
    #[serde(default)]
    pub subject: Option<String>,
}

/// Matches presence.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceMatch {
    /// The sender.
    #[serde(default)]
    pub from: Option<String>,
    /// Available or unavailable.
    #[serde(default, rename = "type")]
    pub availability: Option<Availability>,
    /// The show value.
    #[serde(default)]
    pub show: Option<Show>,
    /// The status text.
    #[serde(default)]
    pub status: Option<String>,
    /// The priority.
    #[serde(default)]
    pub priority: Option<i8>,
}

/// Matches a subscription signal from someone.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromMatch {
    /// The sender (bare JID compared).
    #[serde(default)]
    pub from: Option<String>,
}

/// Matches an error reply.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorMatch {
    /// Where the error comes from (the address the failed stanza was sent to).
    #[serde(default)]
    pub from: Option<String>,
    /// Which kind of stanza bounced.
    #[serde(default)]
    pub stanza: Option<StanzaKind>,
    /// The class of error (protocol-neutral), or a list of acceptable ones.
    #[serde(default)]
    pub class: Option<ClassChoice>,
    /// XMPP only: the defined condition (RFC 6120 §8.3.3), or a list of acceptable ones. A
    /// refinement of `class` for the XMPP profile; other profiles check `class`.
    #[serde(default)]
    pub condition: Option<OneOrMany>,
}

/// One error class, or a list of acceptable ones.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ClassChoice {
    /// This class.
    One(ErrorClass),
    /// Any of these.
    Any(Vec<ErrorClass>),
}

impl ClassChoice {
    /// The acceptable classes.
    pub fn classes(&self) -> Vec<ErrorClass> {
        match self {
            ClassChoice::One(class) => vec![*class],
            ClassChoice::Any(classes) => classes.clone(),
        }
    }
}

/// One roster state, or a list of acceptable ones.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum StateChoice {
    /// This state.
    One(SubscriptionState),
    /// Any of these states.
    Any(Vec<SubscriptionState>),
}

impl StateChoice {
    /// The acceptable states.
    pub fn states(&self) -> Vec<SubscriptionState> {
        match self {
            StateChoice::One(state) => vec![*state],
            StateChoice::Any(states) => states.clone(),
        }
    }
}

/// Matches the state of a roster item.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateMatch {
    /// The contact: an actor name or an address.
    pub contact: String,
    /// The expected subscription, or a list of acceptable ones (`[absent, none]`: no
    /// subscription either way, whether or not the server keeps an item).
    pub state: StateChoice,
    /// Whether `ask='subscribe'` (a pending outbound request) must be shown.
    #[serde(default)]
    pub pending_out: Option<bool>,
}

macro_rules! expectation_kinds {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The actor that receives.
            pub actor: String,
            $($extra)*
            /// A message.
            #[serde(default)]
            pub message: Option<MessageMatch>,
            /// Available or unavailable presence.
            #[serde(default)]
            pub presence: Option<PresenceMatch>,
            /// A subscription request (presence type subscribe).
            #[serde(default)]
            pub subscription_request: Option<FromMatch>,
            /// An approval (presence type subscribed).
            #[serde(default)]
            pub subscribed: Option<FromMatch>,
            /// A denial or cancellation (presence type unsubscribed).
            #[serde(default)]
            pub unsubscribed: Option<FromMatch>,
            /// An unsubscription (presence type unsubscribe).
            #[serde(default)]
            pub unsubscribe: Option<FromMatch>,
            /// An error reply.
            #[serde(default)]
            pub error: Option<ErrorMatch>,
        }

        impl $name {
            /// The `from` of whichever kind is given, if it names one.
            pub fn named_sender(&self) -> Option<&str> {
                self.message
                    .as_ref()
                    .and_then(|m| m.from.as_deref())
                    .or(self.presence.as_ref().and_then(|p| p.from.as_deref()))
                    .or([
                        &self.subscription_request,
                        &self.subscribed,
                        &self.unsubscribed,
                        &self.unsubscribe,
                    ]
                    .into_iter()
                    .find_map(|signal| signal.as_ref().and_then(|s| s.from.as_deref())))
                    .or(self.error.as_ref().and_then(|e| e.from.as_deref()))
            }
        }
    };
}

expectation_kinds! {
    /// Something the actor must receive within the bound. Exactly one kind is given.
    Expect {
        /// Bound (default 10s).
        #[serde(default)]
        pub within: Option<Dur>,
        /// Expect this many matching stanzas, in order; `{i}` in the match counts from 0.
        #[serde(default)]
        pub repeat: Option<u32>,
        /// The actor's roster must show this subscription state (checked with a roster
        /// query, then roster pushes until the bound).
        #[serde(default)]
        pub subscription_state: Option<StateMatch>,
    }
}

expectation_kinds! {
    /// Nothing of the given kind may arrive for the duration (`any: true` for anything).
    ExpectNone {
        /// How long to watch.
        #[serde(rename = "for")]
        pub duration: Dur,
        /// Any stanza at all.
        #[serde(default)]
        pub any: bool,
    }
}

/// A stanza the reference server must have sent (`from` is on the reference side) or
/// received (`from` is on the implementation's side) over the federation link.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FederationExpect {
    /// The sending actor.
    pub from: String,
    /// The receiving actor or address.
    pub to: String,
    /// The stanza kind.
    pub stanza: StanzaKind,
    /// The `type` attribute ("available" matches no type attribute).
    #[serde(default, rename = "type")]
    pub stanza_type: Option<String>,
    /// The message body.
    #[serde(default)]
    pub body: Option<String>,
    /// Bound (default 10s).
    #[serde(default)]
    pub within: Option<Dur>,
    /// How many such stanzas must have crossed (default: at least one); with `exactly`,
    /// no more than this either.
    #[serde(default)]
    pub count: Option<u32>,
    /// Whether `count` is exact.
    #[serde(default)]
    pub exactly: bool,
}

/// Raw XML to send.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Who sends it.
    pub actor: String,
    /// The XML (templated), one or more stanzas in the client namespace.
    pub xml: String,
    /// Stream error conditions (RFC 6120 §4.9.3) the server may answer this with by closing
    /// the actor's stream, e.g. `invalid-from`: such an end is not a failure, and later
    /// steps of the actor fail as not logged in. Any other end of the stream fails the run.
    #[serde(default)]
    pub allow_stream_error: Option<OneOrMany>,
}

/// An HTTP request to send as it is written (the RVP profile's escape hatch).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttpStep {
    /// Who sends it (over its session with its home server).
    pub actor: String,
    /// The request (templated): request line, headers, an empty line, the body. Line ends
    /// of the head may be written as LF; they are sent as CRLF. `Authorization` and
    /// `Content-Length` are added when the request has none.
    pub request: String,
}

/// An HTTP answer the actor must receive: to a `raw_http` request or to anything its
/// session sent (the RVP profile's escape hatch).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectHttp {
    /// Who receives it.
    pub actor: String,
    /// The status code.
    pub status: u16,
    /// Headers it must have, each with a text its value must contain (templated; names are
    /// compared without case, `""` only asks for the header).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Texts its body must contain (templated).
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// Bound (default 10s).
    #[serde(default)]
    pub within: Option<Dur>,
}

/// A SIP request to send as it is written (the SIP profile's escape hatch).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSipStep {
    /// Who sends it: from its user agent's UDP socket, or over a TCP connection of its own.
    pub actor: String,
    /// The request (templated): request line, headers, an empty line, the body. Line ends
    /// of the head may be written as LF; they are sent as CRLF. Nothing is added: a `Via`
    /// with `rport` (RFC 3581) brings a UDP answer back to the actor.
    pub request: String,
    /// Answer one Digest challenge (401 or 407, RFC 3261 §22.2, §22.3) with the actor's
    /// credentials: the request is sent again with `Authorization` or
    /// `Proxy-Authorization` added, a new branch in its top `Via` and the next CSeq. The
    /// request must then parse, with a `z9hG4bK` branch. Default false: nothing is added.
    #[serde(default)]
    pub authenticate: bool,
}

/// A SIP message the actor must receive (the SIP profile's escape hatch): a response (give
/// `status`) to a `raw_sip` request or to anything its user agent sent, or a request (give
/// `method`) its home server sent the user agent, such as a NOTIFY. Exactly one of the two.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSip {
    /// Who receives it.
    pub actor: String,
    /// A response: its status code.
    #[serde(default)]
    pub status: Option<u16>,
    /// A request: its method (`NOTIFY`, `MESSAGE`; compared without case).
    #[serde(default)]
    pub method: Option<String>,
    /// A text the response's reason phrase must contain (templated; with `status` only).
    #[serde(default)]
    pub reason: Option<String>,
    /// Headers it must have, each with a text its value must contain (templated; names are
    /// compared without case, compact forms as their full names, `""` only asks for the
    /// header).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Bound (default 10s).
    #[serde(default)]
    pub within: Option<Dur>,
}

/// A stanza matching an XML pattern: same name and namespace, at least the pattern's
/// attributes (`*` matches any value), each pattern child matched by a distinct child, and
/// the same text where the pattern has text.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectXml {
    /// Who receives it.
    pub actor: String,
    /// The pattern (templated).
    #[serde(rename = "match")]
    pub pattern: String,
    /// Bound (default 10s).
    #[serde(default)]
    pub within: Option<Dur>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("2m").unwrap().0, Duration::from_secs(120));
        for bad in ["5", "5h", "s", "-1s", "0ms", "11m", "five seconds"] {
            assert!(Dur::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Dur::parse("5s").unwrap().to_string(), "5s");
        assert_eq!(Dur::parse("250ms").unwrap().to_string(), "250ms");
    }
}
