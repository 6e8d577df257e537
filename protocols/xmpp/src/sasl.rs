//! RFC 6120 §6: SASL for XMPP, with the PLAIN (RFC 4616) and SCRAM-SHA-1 (RFC 5802) mechanisms.
//!
//! Both mechanisms are pure state machines over byte strings: the XMPP layer carries their
//! messages base64-encoded in `<auth/>`, `<challenge/>`, `<response/>` and `<success/>`
//! ([`encode_payload`], [`decode_payload`]) and maps a [`SaslError`] to the `<failure/>`
//! condition of RFC 6120 §6.5 with [`SaslError::condition`].
//!
//! Passwords are prepared with the PRECIS OpaqueString profile (RFC 8265 §4.2), which replaces
//! SASLprep (RFC 4013) as RFC 8265 §7.3 says: for ASCII passwords both give the same string, so
//! the RFC 5802 test vectors and existing SCRAM peers agree with this implementation. Usernames
//! are taken as given: in XMPP they are JID localparts, already normalized by [`crate::jid`].
//!
//! Nonces are supplied by the caller (this crate has no randomness); they should hold at least
//! 18 random printable characters, like the RFC 5802 example.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use precis_core::profile::PrecisFastInvocation;
use precis_profiles::OpaqueString;
use sha1::{Digest, Sha1};

/// The name of the SCRAM-SHA-1 mechanism (RFC 5802 §4).
pub const SCRAM_SHA_1: &str = "SCRAM-SHA-1";
/// The name of the PLAIN mechanism (RFC 4616).
pub const PLAIN: &str = "PLAIN";

/// The length of SHA-1 output, and so of every SCRAM-SHA-1 key, signature and proof.
const HASH_LEN: usize = 20;

/// Why a SASL exchange failed. Each variant names the RFC 6120 §6.5 failure condition that a
/// server reports for it, through [`SaslError::condition`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The credentials are wrong: the SCRAM ClientProof did not verify, or the password did not
    /// match (`not-authorized`).
    #[error("not authorized")]
    NotAuthorized,
    /// A mechanism message does not follow its grammar (`malformed-request`).
    #[error("malformed request: {detail}")]
    MalformedRequest {
        /// What was wrong with the message.
        detail: &'static str,
    },
    /// The base64 payload of an XMPP SASL element could not be decoded (`incorrect-encoding`).
    #[error("incorrect base64 encoding")]
    IncorrectEncoding,
    /// The mechanism asked for is not offered (`invalid-mechanism`).
    #[error("invalid mechanism")]
    InvalidMechanism,
    /// The mechanism may only be used on an encrypted stream (`encryption-required`).
    #[error("encryption required")]
    EncryptionRequired,
    /// The initiating entity aborted the exchange with `<abort/>` (`aborted`).
    #[error("aborted")]
    Aborted,
    /// The server could not authenticate for a reason of its own (`temporary-auth-failure`).
    #[error("temporary authentication failure")]
    TemporaryAuthFailure,
    /// The authorization identity names someone else than the authenticated user
    /// (`invalid-authzid`).
    #[error("invalid authorization identity")]
    InvalidAuthzid,
    /// The credentials have expired (`credentials-expired`).
    #[error("credentials expired")]
    CredentialsExpired,
    /// The account is disabled (`account-disabled`).
    #[error("account disabled")]
    AccountDisabled,
    /// The mechanism is weaker than server policy allows (`mechanism-too-weak`).
    #[error("mechanism too weak")]
    MechanismTooWeak,
    /// The client asked for channel binding (`p=`), which is only valid with the `-PLUS`
    /// mechanisms that this implementation does not offer (`malformed-request`).
    #[error("channel binding requested but not supported")]
    ChannelBindingNotSupported,
    /// The channel binding attribute `c=` of client-final does not repeat the GS2 header of
    /// client-first (`not-authorized`: the exchange may have been tampered with).
    #[error("channel binding data does not match the GS2 header")]
    ChannelBindingMismatch,
    /// The nonce does not continue the one of the previous message (`malformed-request`).
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The password is not a valid PRECIS OpaqueString (empty, or holding disallowed
    /// characters) (`not-authorized`: no stored password can equal it).
    #[error("password is not a valid OpaqueString")]
    InvalidPassword,
    /// The server ended the SCRAM exchange with `e=` (RFC 5802 §7) (`not-authorized`).
    #[error("server reported SCRAM error {value:?}")]
    ServerError {
        /// The server-error-value, e.g. `invalid-proof`.
        value: String,
    },
    /// The ServerSignature in server-final is wrong: the server does not know the password
    /// (`not-authorized`).
    #[error("server signature mismatch")]
    ServerSignatureMismatch,
    /// A step of the exchange was called out of order, or after the exchange ended
    /// (`malformed-request`).
    #[error("SASL step {step} called out of order")]
    OutOfOrder {
        /// The step that was called.
        step: &'static str,
    },
}

impl SaslError {
    /// The RFC 6120 §6.5 failure condition (the element name inside `<failure/>`).
    pub fn condition(&self) -> &'static str {
        match self {
            SaslError::NotAuthorized
            | SaslError::ChannelBindingMismatch
            | SaslError::InvalidPassword
            | SaslError::ServerError { .. }
            | SaslError::ServerSignatureMismatch => "not-authorized",
            SaslError::MalformedRequest { .. }
            | SaslError::ChannelBindingNotSupported
            | SaslError::NonceMismatch
            | SaslError::OutOfOrder { .. } => "malformed-request",
            SaslError::IncorrectEncoding => "incorrect-encoding",
            SaslError::InvalidMechanism => "invalid-mechanism",
            SaslError::EncryptionRequired => "encryption-required",
            SaslError::Aborted => "aborted",
            SaslError::TemporaryAuthFailure => "temporary-auth-failure",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::CredentialsExpired => "credentials-expired",
            SaslError::AccountDisabled => "account-disabled",
            SaslError::MechanismTooWeak => "mechanism-too-weak",
        }
    }
}

fn malformed(detail: &'static str) -> SaslError {
    SaslError::MalformedRequest { detail }
}

/// Encodes SASL data for the text of an XMPP SASL element (RFC 6120 §6.4.2): base64, with
/// empty data written as `=`.
pub fn encode_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_string()
    } else {
        STANDARD.encode(data)
    }
}

/// Decodes the text of an XMPP SASL element (RFC 6120 §6.4.2): `=` and an empty element are
/// empty data; whitespace is ignored.
///
/// # Errors
/// [`SaslError::IncorrectEncoding`] when the text is not canonical base64.
pub fn decode_payload(text: &str) -> Result<Vec<u8>, SaslError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() || compact == "=" {
        return Ok(Vec::new());
    }
    STANDARD
        .decode(compact)
        .map_err(|_| SaslError::IncorrectEncoding)
}

/// Prepares a password for hashing or comparison: PRECIS OpaqueString enforcement (RFC 8265
/// §4.2), the modern replacement of SASLprep.
///
/// # Errors
/// [`SaslError::InvalidPassword`] for an empty password or one with disallowed characters.
pub fn prepare_password(password: &str) -> Result<String, SaslError> {
    OpaqueString::enforce(password)
        .map(|prepared| prepared.into_owned())
        .map_err(|_| SaslError::InvalidPassword)
}

// ---------------------------------------------------------------------------------------------
// PLAIN (RFC 4616)

/// The three fields of a PLAIN message (RFC 4616 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The authorization identity, if the client sent one. In XMPP it is a bare JID (RFC 6120
    /// §6.3.8); the caller decides whether the authenticated user may act as it.
    pub authzid: Option<String>,
    /// The authentication identity: the account's username (JID localpart).
    pub authcid: String,
    /// The password, as sent (not yet prepared).
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a PLAIN message: `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
///
/// # Errors
/// [`SaslError::MalformedRequest`] when there are not exactly three fields, the message is not
/// UTF-8, or the authcid or password is empty.
pub fn plain_parse(message: &[u8]) -> Result<PlainCredentials, SaslError> {
    let text = std::str::from_utf8(message).map_err(|_| malformed("PLAIN message is not UTF-8"))?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed("PLAIN message must have exactly three fields"));
    };
    if authcid.is_empty() {
        return Err(malformed("PLAIN authcid is empty"));
    }
    if password.is_empty() {
        return Err(malformed("PLAIN password is empty"));
    }
    Ok(PlainCredentials {
        authzid: (!authzid.is_empty()).then(|| authzid.to_string()),
        authcid: authcid.to_string(),
        password: password.to_string(),
    })
}

/// Encodes a PLAIN message (RFC 4616 §2).
pub fn plain_encode(authzid: Option<&str>, authcid: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(authcid.len() + password.len() + 2);
    out.extend_from_slice(authzid.unwrap_or("").as_bytes());
    out.push(0);
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// SCRAM-SHA-1 primitives (RFC 5802 §3)

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; HASH_LEN] {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha1(data: &[u8]) -> [u8; HASH_LEN] {
    Sha1::digest(data).into()
}

fn xor(a: &[u8; HASH_LEN], b: &[u8; HASH_LEN]) -> [u8; HASH_LEN] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SaltedPassword := Hi(Normalize(password), salt, i).
fn salted_password(
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<[u8; HASH_LEN], SaslError> {
    if iterations == 0 {
        return Err(malformed("SCRAM iteration count must be at least 1"));
    }
    let prepared = prepare_password(password)?;
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha1>(prepared.as_bytes(), salt, iterations, &mut out);
    Ok(out)
}

/// What a server stores for a SCRAM-SHA-1 account (RFC 5802 §2.2, §3): enough to verify a
/// client without keeping the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// StoredKey := H(HMAC(SaltedPassword, "Client Key")).
    pub stored_key: [u8; HASH_LEN],
    /// ServerKey := HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; HASH_LEN],
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt", &STANDARD.encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives the stored credentials from a password: the password is prepared with PRECIS
    /// OpaqueString (RFC 8265, replacing SASLprep), then PBKDF2-HMAC-SHA1 gives SaltedPassword.
    ///
    /// # Errors
    /// [`SaslError::InvalidPassword`] when the password is not a valid OpaqueString;
    /// [`SaslError::MalformedRequest`] when `iterations` is 0.
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<Self, SaslError> {
        let salted = salted_password(password, salt, iterations)?;
        Ok(ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha1(&hmac_sha1(&salted, b"Client Key")),
            server_key: hmac_sha1(&salted, b"Server Key"),
        })
    }

    /// Whether `password` is the one these credentials were derived from: lets a server that
    /// stores only SCRAM credentials verify PLAIN. Costs one derivation.
    pub fn verify_password(&self, password: &str) -> bool {
        match ScramCredentials::derive(password, &self.salt, self.iterations) {
            Ok(derived) => constant_time_eq(&derived.stored_key, &self.stored_key),
            Err(_) => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SCRAM message syntax (RFC 5802 §7)

/// `printable = %x21-2B / %x2D-7E`: the characters allowed in a nonce.
fn is_nonce_char(c: char) -> bool {
    matches!(c, '\x21'..='\x2b' | '\x2d'..='\x7e')
}

/// Keeps only the characters a nonce may hold, so a caller's nonce can never break the syntax.
fn clean_nonce(nonce: &str) -> String {
    nonce.chars().filter(|&c| is_nonce_char(c)).collect()
}

fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty() && nonce.chars().all(is_nonce_char)
}

/// Escapes a username into a `saslname`: `,` as `=2C` and `=` as `=3D`.
fn encode_saslname(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            _ => out.push(c),
        }
    }
    out
}

/// Decodes a `saslname`: only `=2C` and `=3D` may follow `=`; NUL is not allowed.
fn decode_saslname(name: &str) -> Result<String, SaslError> {
    if name.is_empty() {
        return Err(malformed("empty SCRAM name"));
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(index) = rest.find(['=', '\0']) {
        out.push_str(&rest[..index]);
        let tail = &rest[index..];
        if tail.starts_with("=2C") {
            out.push(',');
        } else if tail.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(malformed("invalid escape in SCRAM name"));
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits `k=value` with `k` a single ASCII letter.
fn attribute(field: &str) -> Result<(u8, &str), SaslError> {
    let bytes = field.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'=' {
        Ok((bytes[0], &field[2..]))
    } else {
        Err(malformed("SCRAM attribute is not of the form k=value"))
    }
}

/// The value of attribute `key` in `field`.
fn expect_attribute<'a>(
    field: Option<&'a str>,
    key: u8,
    detail: &'static str,
) -> Result<&'a str, SaslError> {
    match field.map(attribute).transpose()? {
        Some((k, value)) if k == key => Ok(value),
        _ => Err(malformed(detail)),
    }
}

/// Checks that optional trailing extensions are well-formed attributes; their meaning is
/// ignored, as RFC 5802 §5.1 allows for extensions not marked mandatory.
fn check_extensions<'a>(fields: impl Iterator<Item = &'a str>) -> Result<(), SaslError> {
    for field in fields {
        attribute(field)?;
    }
    Ok(())
}

fn decode_base64(value: &str, detail: &'static str) -> Result<Vec<u8>, SaslError> {
    STANDARD.decode(value).map_err(|_| malformed(detail))
}

fn utf8(message: &[u8]) -> Result<&str, SaslError> {
    std::str::from_utf8(message).map_err(|_| malformed("SCRAM message is not UTF-8"))
}

// ---------------------------------------------------------------------------------------------
// SCRAM server

/// The server side of one SCRAM-SHA-1 exchange (RFC 5802 §5).
///
/// Steps: [`client_first`](Self::client_first) gives the username to look up;
/// [`server_first`](Self::server_first) takes that account's [`ScramCredentials`] (for an
/// unknown user, pass made-up credentials so that the failure comes only at the proof, as
/// RFC 5802 §9 suggests); [`client_final`](Self::client_final) verifies the proof and returns
/// server-final, to send as the additional data of `<success/>`. Any error ends the exchange,
/// and a step called out of order fails with [`SaslError::OutOfOrder`].
pub struct ScramServer {
    server_nonce: String,
    authzid: Option<String>,
    state: ServerState,
}

enum ServerState {
    AwaitClientFirst,
    AwaitServerFirst {
        gs2_header: String,
        client_first_bare: String,
        client_nonce: String,
    },
    AwaitClientFinal {
        gs2_header: String,
        nonce: String,
        auth_message_prefix: String,
        credentials: ScramCredentials,
    },
    Ended,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            ServerState::AwaitClientFirst => "await-client-first",
            ServerState::AwaitServerFirst { .. } => "await-server-first",
            ServerState::AwaitClientFinal { .. } => "await-client-final",
            ServerState::Ended => "ended",
        };
        f.debug_struct("ScramServer")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Starts an exchange with the server's part of the nonce. Characters that a SCRAM nonce
    /// cannot hold (outside printable ASCII, or `,`) are dropped.
    pub fn new(server_nonce: &str) -> Self {
        ScramServer {
            server_nonce: clean_nonce(server_nonce),
            authzid: None,
            state: ServerState::AwaitClientFirst,
        }
    }

    /// The authorization identity of client-first (decoded), once it was accepted.
    /// [`client_first`](Self::client_first) accepts only the username itself or a JID whose
    /// localpart is the username; the caller checks the domain of the latter.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// Parses client-first-message and returns the username, `=2C`/`=3D` decoded.
    ///
    /// Accepts the GS2 flags `n` and `y` (this server offers no channel binding), and an
    /// authzid that is absent, equal to the username, or a JID whose localpart is the username.
    ///
    /// # Errors
    /// [`SaslError::ChannelBindingNotSupported`] for the flag `p=`;
    /// [`SaslError::InvalidAuthzid`] for another user's authzid;
    /// [`SaslError::MalformedRequest`] for bad syntax or a mandatory extension (`m=`);
    /// [`SaslError::OutOfOrder`] when not the first step.
    pub fn client_first(&mut self, msg: &[u8]) -> Result<String, SaslError> {
        if !matches!(self.state, ServerState::AwaitClientFirst) {
            self.state = ServerState::Ended;
            return Err(SaslError::OutOfOrder {
                step: "client_first",
            });
        }
        self.state = ServerState::Ended;
        let text = utf8(msg)?;
        let (flag, rest) = text
            .split_once(',')
            .ok_or(malformed("client-first has no GS2 header"))?;
        match flag {
            "n" | "y" => {}
            _ if flag.starts_with("p=") => return Err(SaslError::ChannelBindingNotSupported),
            _ => return Err(malformed("invalid GS2 channel binding flag")),
        }
        let (authzid_field, bare) = rest
            .split_once(',')
            .ok_or(malformed("client-first GS2 header is not terminated"))?;
        let authzid = match authzid_field {
            "" => None,
            _ => Some(decode_saslname(
                authzid_field
                    .strip_prefix("a=")
                    .ok_or(malformed("invalid GS2 authzid"))?,
            )?),
        };
        let gs2_header = text[..flag.len() + authzid_field.len() + 2].to_string();

        let mut fields = bare.split(',');
        let first = fields.next();
        if first.is_some_and(|field| field.starts_with("m=")) {
            return Err(malformed("unsupported mandatory SCRAM extension"));
        }
        let username = decode_saslname(expect_attribute(
            first,
            b'n',
            "client-first has no username",
        )?)?;
        let client_nonce = expect_attribute(fields.next(), b'r', "client-first has no nonce")?;
        if !valid_nonce(client_nonce) {
            return Err(malformed("invalid client nonce"));
        }
        check_extensions(fields)?;

        if let Some(authzid) = &authzid {
            let localpart = authzid.split_once('@').map_or(authzid.as_str(), |(l, _)| l);
            if localpart != username || authzid.contains('/') {
                return Err(SaslError::InvalidAuthzid);
            }
        }
        self.authzid = authzid;
        self.state = ServerState::AwaitServerFirst {
            gs2_header,
            client_first_bare: bare.to_string(),
            client_nonce: client_nonce.to_string(),
        };
        Ok(username)
    }

    /// Builds server-first-message (`r=` client+server nonce, `s=` salt, `i=` iterations) from
    /// the account's credentials.
    ///
    /// # Errors
    /// [`SaslError::OutOfOrder`] unless [`client_first`](Self::client_first) succeeded just
    /// before.
    pub fn server_first(&mut self, creds: &ScramCredentials) -> Result<Vec<u8>, SaslError> {
        let ServerState::AwaitServerFirst {
            gs2_header,
            client_first_bare,
            client_nonce,
        } = std::mem::replace(&mut self.state, ServerState::Ended)
        else {
            return Err(SaslError::OutOfOrder {
                step: "server_first",
            });
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&creds.salt),
            creds.iterations
        );
        self.state = ServerState::AwaitClientFinal {
            gs2_header,
            nonce,
            auth_message_prefix: format!("{client_first_bare},{server_first}"),
            credentials: creds.clone(),
        };
        Ok(server_first.into_bytes())
    }

    /// Verifies client-final-message and returns server-final-message (`v=` ServerSignature).
    ///
    /// # Errors
    /// [`SaslError::NotAuthorized`] when the ClientProof is wrong;
    /// [`SaslError::ChannelBindingMismatch`] when `c=` does not repeat the GS2 header;
    /// [`SaslError::NonceMismatch`] when `r=` is not the combined nonce;
    /// [`SaslError::MalformedRequest`] for bad syntax;
    /// [`SaslError::OutOfOrder`] unless [`server_first`](Self::server_first) came just before.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ServerState::AwaitClientFinal {
            gs2_header,
            nonce,
            auth_message_prefix,
            credentials,
        } = std::mem::replace(&mut self.state, ServerState::Ended)
        else {
            return Err(SaslError::OutOfOrder {
                step: "client_final",
            });
        };
        let text = utf8(msg)?;
        let (without_proof, proof_field) = text
            .rsplit_once(',')
            .ok_or(malformed("client-final has no proof"))?;
        let proof = expect_attribute(Some(proof_field), b'p', "client-final does not end in p=")?;
        let mut fields = without_proof.split(',');
        let binding = expect_attribute(fields.next(), b'c', "client-final has no channel binding")?;
        let client_nonce = expect_attribute(fields.next(), b'r', "client-final has no nonce")?;
        check_extensions(fields)?;

        let binding = decode_base64(binding, "channel binding is not base64")?;
        let proof: [u8; HASH_LEN] = decode_base64(proof, "proof is not base64")?
            .try_into()
            .map_err(|_| malformed("proof has the wrong length"))?;
        if binding != gs2_header.as_bytes() {
            return Err(SaslError::ChannelBindingMismatch);
        }
        if client_nonce != nonce {
            return Err(SaslError::NonceMismatch);
        }

        let auth_message = format!("{auth_message_prefix},{without_proof}");
        let client_signature = hmac_sha1(&credentials.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        if !constant_time_eq(&sha1(&client_key), &credentials.stored_key) {
            return Err(SaslError::NotAuthorized);
        }
        let server_signature = hmac_sha1(&credentials.server_key, auth_message.as_bytes());
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// SCRAM client

/// The client side of one SCRAM-SHA-1 exchange (RFC 5802 §5), without channel binding
/// (GS2 header `n,,`).
///
/// Any iteration count from 1 up to [`ScramClient::MAX_ITERATIONS`] is accepted: RFC 5802 asks
/// for at least 4096, but whether a server's choice is good enough is a conformance question
/// for the caller ([`ScramClient::iterations`]), not a reason to fail a login. The upper bound
/// keeps a hostile server from stalling the caller's thread in PBKDF2.
pub struct ScramClient {
    username: String,
    password: String,
    client_nonce: String,
    state: ClientState,
}

enum ClientState {
    Initial,
    AwaitServerFirst {
        client_first_bare: String,
    },
    AwaitServerFinal {
        iterations: u32,
        server_signature: [u8; HASH_LEN],
    },
    Ended,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            ClientState::Initial => "initial",
            ClientState::AwaitServerFirst { .. } => "await-server-first",
            ClientState::AwaitServerFinal { .. } => "await-server-final",
            ClientState::Ended => "ended",
        };
        f.debug_struct("ScramClient")
            .field("username", &self.username)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// The largest iteration count the client computes (about a second of PBKDF2).
    pub const MAX_ITERATIONS: u32 = 1_000_000;

    /// Starts an exchange for `username` (sent escaped, not otherwise normalized) with the
    /// client's part of the nonce. Characters a SCRAM nonce cannot hold (outside printable
    /// ASCII, or `,`) are dropped from `client_nonce`. The password is prepared when the
    /// server's salt arrives.
    pub fn new(username: &str, password: &str, client_nonce: &str) -> Self {
        ScramClient {
            username: username.to_string(),
            password: password.to_string(),
            client_nonce: clean_nonce(client_nonce),
            state: ClientState::Initial,
        }
    }

    /// client-first-message: `n,,n=<username>,r=<client nonce>`. Calling it again restarts
    /// the exchange.
    pub fn client_first(&mut self) -> Vec<u8> {
        let client_first_bare = format!(
            "n={},r={}",
            encode_saslname(&self.username),
            self.client_nonce
        );
        let message = format!("n,,{client_first_bare}");
        self.state = ClientState::AwaitServerFirst { client_first_bare };
        message.into_bytes()
    }

    /// The iteration count of server-first, once it was handled.
    pub fn iterations(&self) -> Option<u32> {
        match self.state {
            ClientState::AwaitServerFinal { iterations, .. } => Some(iterations),
            _ => None,
        }
    }

    /// Handles server-first-message and returns client-final-message with the ClientProof.
    ///
    /// # Errors
    /// [`SaslError::NonceMismatch`] when the nonce does not start with the client's;
    /// [`SaslError::MalformedRequest`] for bad syntax, a mandatory extension, or an iteration
    /// count of 0 or above [`ScramClient::MAX_ITERATIONS`];
    /// [`SaslError::InvalidPassword`] when the password is not a valid OpaqueString;
    /// [`SaslError::OutOfOrder`] unless [`client_first`](Self::client_first) came just before.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let ClientState::AwaitServerFirst { client_first_bare } =
            std::mem::replace(&mut self.state, ClientState::Ended)
        else {
            return Err(SaslError::OutOfOrder {
                step: "handle_server_first",
            });
        };
        let text = utf8(msg)?;
        let mut fields = text.split(',');
        let first = fields.next();
        if first.is_some_and(|field| field.starts_with("m=")) {
            return Err(malformed("unsupported mandatory SCRAM extension"));
        }
        let nonce = expect_attribute(first, b'r', "server-first has no nonce")?;
        let salt = expect_attribute(fields.next(), b's', "server-first has no salt")?;
        let iterations =
            expect_attribute(fields.next(), b'i', "server-first has no iteration count")?;
        check_extensions(fields)?;

        if !valid_nonce(nonce) || !nonce.starts_with(&self.client_nonce) {
            return Err(SaslError::NonceMismatch);
        }
        let salt = decode_base64(salt, "salt is not base64")?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| malformed("iteration count is not a number"))?;
        if iterations > Self::MAX_ITERATIONS {
            return Err(malformed("iteration count is too large"));
        }
        let salted = salted_password(&self.password, &salt, iterations)?;

        let without_proof = format!("c={},r={nonce}", STANDARD.encode("n,,"));
        let auth_message = format!("{client_first_bare},{text},{without_proof}");
        let client_key = hmac_sha1(&salted, b"Client Key");
        let stored_key = sha1(&client_key);
        let client_signature = hmac_sha1(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_key = hmac_sha1(&salted, b"Server Key");
        self.state = ClientState::AwaitServerFinal {
            iterations,
            server_signature: hmac_sha1(&server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Verifies server-final-message: the server proves that it knows the password.
    ///
    /// # Errors
    /// [`SaslError::ServerError`] for `e=`; [`SaslError::ServerSignatureMismatch`] for a wrong
    /// `v=`; [`SaslError::MalformedRequest`] for bad syntax; [`SaslError::OutOfOrder`] unless
    /// [`handle_server_first`](Self::handle_server_first) succeeded.
    pub fn verify_server_final(&self, msg: &[u8]) -> Result<(), SaslError> {
        let ClientState::AwaitServerFinal {
            server_signature, ..
        } = &self.state
        else {
            return Err(SaslError::OutOfOrder {
                step: "verify_server_final",
            });
        };
        let text = utf8(msg)?;
        let mut fields = text.split(',');
        let (key, value) = attribute(fields.next().unwrap_or(""))?;
        check_extensions(fields)?;
        match key {
            b'e' => Err(SaslError::ServerError {
                value: value.to_string(),
            }),
            b'v' => {
                let signature = decode_base64(value, "server signature is not base64")?;
                if constant_time_eq(&signature, server_signature) {
                    Ok(())
                } else {
                    Err(SaslError::ServerSignatureMismatch)
                }
            }
            _ => Err(malformed("server-final is neither v= nor e=")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
    const SERVER_NONCE: &str = "3rfcNHYJY1ZVvWVs7j";
    const CLIENT_FIRST: &str = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    const SERVER_FIRST: &str =
        "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
    const CLIENT_FINAL: &str =
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
    const SERVER_FINAL: &str = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

    fn rfc_credentials() -> ScramCredentials {
        let salt = STANDARD.decode("QSXCR+Q6sek8bf92").unwrap();
        ScramCredentials::derive("pencil", &salt, 4096).unwrap()
    }

    #[test]
    fn rfc5802_example_as_client() {
        let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
        assert_eq!(client.client_first(), CLIENT_FIRST.as_bytes());
        let client_final = client.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(client_final).unwrap(), CLIENT_FINAL);
        assert_eq!(client.iterations(), Some(4096));
        client.verify_server_final(SERVER_FINAL.as_bytes()).unwrap();
    }

    #[test]
    fn rfc5802_example_as_server() {
        let mut server = ScramServer::new(SERVER_NONCE);
        assert_eq!(
            server.client_first(CLIENT_FIRST.as_bytes()).unwrap(),
            "user"
        );
        assert_eq!(server.authzid(), None);
        let server_first = server.server_first(&rfc_credentials()).unwrap();
        assert_eq!(String::from_utf8(server_first).unwrap(), SERVER_FIRST);
        let server_final = server.client_final(CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(server_final).unwrap(), SERVER_FINAL);
        // The exchange is over.
        assert_eq!(
            server.client_final(CLIENT_FINAL.as_bytes()),
            Err(SaslError::OutOfOrder {
                step: "client_final"
            })
        );
    }

    fn run_exchange(
        username: &str,
        client_password: &str,
        server_password: &str,
    ) -> Result<(), SaslError> {
        let credentials = ScramCredentials::derive(server_password, b"salt-of-the-earth", 4096)?;
        let mut client = ScramClient::new(username, client_password, "client-nonce-0123456789");
        let mut server = ScramServer::new("server-nonce-9876543210");
        let name = server.client_first(&client.client_first())?;
        assert_eq!(name, username);
        let server_first = server.server_first(&credentials)?;
        let client_final = client.handle_server_first(&server_first)?;
        let server_final = server.client_final(&client_final)?;
        client.verify_server_final(&server_final)
    }

    #[test]
    fn client_and_server_agree() {
        run_exchange("alice", "correct horse", "correct horse").unwrap();
        // Names with the characters saslname escapes, and a non-ASCII password.
        run_exchange("a,b=c", "pässwörd ☃", "pässwörd ☃").unwrap();
    }

    #[test]
    fn wrong_password_is_not_authorized() {
        let error = run_exchange("alice", "wrong", "correct horse").unwrap_err();
        assert_eq!(error, SaslError::NotAuthorized);
        assert_eq!(error.condition(), "not-authorized");
    }

    #[test]
    fn client_detects_a_server_without_the_password() {
        let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
        client.client_first();
        client.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            client.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(SaslError::ServerSignatureMismatch)
        );
        assert_eq!(
            client.verify_server_final(b"e=invalid-proof"),
            Err(SaslError::ServerError {
                value: "invalid-proof".into()
            })
        );
    }

    #[test]
    fn client_rejects_a_foreign_nonce_and_bad_iterations() {
        let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
        client.client_first();
        assert_eq!(
            client.handle_server_first(b"r=someone-else,s=QSXCR+Q6sek8bf92,i=4096"),
            Err(SaslError::NonceMismatch)
        );
        for iterations in ["0", "-1", "x", "4294967296", "1000001"] {
            let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
            client.client_first();
            let message = format!("r={CLIENT_NONCE}abc,s=QSXCR+Q6sek8bf92,i={iterations}");
            let error = client.handle_server_first(message.as_bytes()).unwrap_err();
            assert!(
                matches!(error, SaslError::MalformedRequest { .. }),
                "{iterations}: {error:?}"
            );
        }
        // A low but valid count is accepted (RFC 5802 asks for 4096; that is for callers to judge).
        let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
        client.client_first();
        let message = format!("r={CLIENT_NONCE}abc,s=QSXCR+Q6sek8bf92,i=1");
        client.handle_server_first(message.as_bytes()).unwrap();
        assert_eq!(client.iterations(), Some(1));
    }

    #[test]
    fn server_gs2_header_handling() {
        let mut server = ScramServer::new(SERVER_NONCE);
        assert_eq!(
            server.client_first(b"p=tls-unique,,n=user,r=abc"),
            Err(SaslError::ChannelBindingNotSupported)
        );
        let mut server = ScramServer::new(SERVER_NONCE);
        assert_eq!(server.client_first(b"y,,n=user,r=abc").unwrap(), "user");
        let mut server = ScramServer::new(SERVER_NONCE);
        assert_eq!(
            server
                .client_first(b"n,a=user@example.com,n=user,r=abc")
                .unwrap(),
            "user"
        );
        assert_eq!(server.authzid(), Some("user@example.com"));
        let mut server = ScramServer::new(SERVER_NONCE);
        assert_eq!(
            server.client_first(b"n,a=admin@example.com,n=user,r=abc"),
            Err(SaslError::InvalidAuthzid)
        );
        let mut server = ScramServer::new(SERVER_NONCE);
        assert!(matches!(
            server.client_first(b"n,,m=ext,n=user,r=abc"),
            Err(SaslError::MalformedRequest { .. })
        ));
        let mut server = ScramServer::new(SERVER_NONCE);
        assert!(matches!(
            server.client_first(b"n,,n=us=2Xer,r=abc"),
            Err(SaslError::MalformedRequest { .. })
        ));
    }

    #[test]
    fn server_checks_channel_binding_data_against_the_gs2_header() {
        // A client that said "y,," must repeat "y,," in c=, not "n,,".
        let mut server = ScramServer::new(SERVER_NONCE);
        server
            .client_first(b"y,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
            .unwrap();
        server.server_first(&rfc_credentials()).unwrap();
        assert_eq!(
            server.client_final(CLIENT_FINAL.as_bytes()),
            Err(SaslError::ChannelBindingMismatch)
        );
        assert_eq!(
            SaslError::ChannelBindingMismatch.condition(),
            "not-authorized"
        );
    }

    #[test]
    fn server_checks_the_nonce() {
        let mut server = ScramServer::new(SERVER_NONCE);
        server.client_first(CLIENT_FIRST.as_bytes()).unwrap();
        server.server_first(&rfc_credentials()).unwrap();
        assert_eq!(
            server
                .client_final(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="),
            Err(SaslError::NonceMismatch)
        );
    }

    #[test]
    fn steps_out_of_order_fail() {
        let mut server = ScramServer::new(SERVER_NONCE);
        assert!(matches!(
            server.server_first(&rfc_credentials()),
            Err(SaslError::OutOfOrder { .. })
        ));
        let mut server = ScramServer::new(SERVER_NONCE);
        assert!(matches!(
            server.client_final(CLIENT_FINAL.as_bytes()),
            Err(SaslError::OutOfOrder { .. })
        ));
        let mut server = ScramServer::new(SERVER_NONCE);
        server.client_first(CLIENT_FIRST.as_bytes()).unwrap();
        assert!(matches!(
            server.client_first(CLIENT_FIRST.as_bytes()),
            Err(SaslError::OutOfOrder { .. })
        ));
        let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
        assert!(matches!(
            client.handle_server_first(SERVER_FIRST.as_bytes()),
            Err(SaslError::OutOfOrder { .. })
        ));
        assert!(matches!(
            client.verify_server_final(SERVER_FINAL.as_bytes()),
            Err(SaslError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn nonces_are_cleaned() {
        let mut client = ScramClient::new("user", "pencil", "a,b c\u{e9}d");
        assert_eq!(client.client_first(), b"n,,n=user,r=abcd");
    }

    #[test]
    fn stored_credentials_verify_plain_passwords() {
        let credentials = rfc_credentials();
        assert!(credentials.verify_password("pencil"));
        assert!(!credentials.verify_password("pen"));
        assert!(!credentials.verify_password(""));
        assert_eq!(
            ScramCredentials::derive("", b"salt", 4096),
            Err(SaslError::InvalidPassword)
        );
        assert!(matches!(
            ScramCredentials::derive("pencil", b"salt", 0),
            Err(SaslError::MalformedRequest { .. })
        ));
        // Debug never shows keys.
        assert!(!format!("{credentials:?}").contains("stored_key"));
    }

    #[test]
    fn plain_round_trip_and_errors() {
        let message = plain_encode(Some("juliet@example.com"), "juliet", "r0m30");
        assert_eq!(message, b"juliet@example.com\0juliet\0r0m30");
        let credentials = plain_parse(&message).unwrap();
        assert_eq!(credentials.authzid.as_deref(), Some("juliet@example.com"));
        assert_eq!(credentials.authcid, "juliet");
        assert_eq!(credentials.password, "r0m30");
        assert!(!format!("{credentials:?}").contains("r0m30"));

        let credentials = plain_parse(&plain_encode(None, "juliet", "r0m30")).unwrap();
        assert_eq!(credentials.authzid, None);

        for bad in [
            &b"juliet\0r0m30"[..],
            b"\0juliet\0r0m30\0",
            b"\0\0r0m30",
            b"\0juliet\0",
            b"\0jul\xffiet\0r0m30",
            b"",
        ] {
            let error = plain_parse(bad).unwrap_err();
            assert_eq!(error.condition(), "malformed-request", "{bad:?}");
        }
    }

    #[test]
    fn payload_encoding() {
        assert_eq!(encode_payload(b""), "=");
        assert_eq!(encode_payload(b"n,,"), "biws");
        assert_eq!(decode_payload("=").unwrap(), b"");
        assert_eq!(decode_payload("").unwrap(), b"");
        assert_eq!(decode_payload(" bi\nws ").unwrap(), b"n,,");
        assert_eq!(decode_payload("b!ws"), Err(SaslError::IncorrectEncoding));
        assert_eq!(
            SaslError::IncorrectEncoding.condition(),
            "incorrect-encoding"
        );
    }

    #[test]
    fn every_error_has_an_rfc6120_condition() {
        let conditions = [
            "aborted",
            "account-disabled",
            "credentials-expired",
            "encryption-required",
            "incorrect-encoding",
            "invalid-authzid",
            "invalid-mechanism",
            "malformed-request",
            "mechanism-too-weak",
            "not-authorized",
            "temporary-auth-failure",
        ];
        for error in [
            SaslError::NotAuthorized,
            SaslError::MalformedRequest { detail: "x" },
            SaslError::IncorrectEncoding,
            SaslError::InvalidMechanism,
            SaslError::EncryptionRequired,
            SaslError::Aborted,
            SaslError::TemporaryAuthFailure,
            SaslError::InvalidAuthzid,
            SaslError::CredentialsExpired,
            SaslError::AccountDisabled,
            SaslError::MechanismTooWeak,
            SaslError::ChannelBindingNotSupported,
            SaslError::ChannelBindingMismatch,
            SaslError::NonceMismatch,
            SaslError::InvalidPassword,
            SaslError::ServerError { value: "x".into() },
            SaslError::ServerSignatureMismatch,
            SaslError::OutOfOrder { step: "x" },
        ] {
            assert!(conditions.contains(&error.condition()), "{error:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = plain_parse(&bytes);
            let _ = decode_payload(&String::from_utf8_lossy(&bytes));

            let mut server = ScramServer::new(SERVER_NONCE);
            let _ = server.client_first(&bytes);
            let _ = server.server_first(&rfc_credentials_cheap());
            let _ = server.client_final(&bytes);

            // A server that got a valid client-first, then arbitrary client-final.
            let mut server = ScramServer::new(SERVER_NONCE);
            server.client_first(CLIENT_FIRST.as_bytes()).unwrap();
            server.server_first(&rfc_credentials_cheap()).unwrap();
            prop_assert!(server.client_final(&bytes).is_err());

            let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
            client.client_first();
            let _ = client.handle_server_first(&bytes);
            let _ = client.verify_server_final(&bytes);
        }

        #[test]
        fn arbitrary_scram_shaped_messages_never_panic(
            fields in proptest::collection::vec("[a-z]=[ -~]{0,12}", 0..6),
            flag in "[nyp]|p=x|",
        ) {
            let joined = fields.join(",");
            let mut server = ScramServer::new(SERVER_NONCE);
            let _ = server.client_first(format!("{flag},,{joined}").as_bytes());
            let mut client = ScramClient::new("user", "pencil", CLIENT_NONCE);
            client.client_first();
            let _ = client.handle_server_first(format!("r={CLIENT_NONCE},{joined}").as_bytes());
            let _ = client.verify_server_final(joined.as_bytes());
        }

        #[test]
        fn plain_round_trips(
            authzid in proptest::option::of("[^\u{0}]{1,20}"),
            authcid in "[^\u{0}]{1,20}",
            password in "[^\u{0}]{1,20}",
        ) {
            let parsed = plain_parse(&plain_encode(authzid.as_deref(), &authcid, &password)).unwrap();
            prop_assert_eq!(parsed.authzid, authzid);
            prop_assert_eq!(parsed.authcid, authcid);
            prop_assert_eq!(parsed.password, password);
        }

        #[test]
        fn saslnames_round_trip(name in "[^\u{0}]{1,20}") {
            prop_assert_eq!(decode_saslname(&encode_saslname(&name)).unwrap(), name);
        }
    }

    /// Credentials with one iteration, so the property tests stay fast.
    fn rfc_credentials_cheap() -> ScramCredentials {
        ScramCredentials::derive("pencil", b"salt", 1).unwrap()
    }
}
