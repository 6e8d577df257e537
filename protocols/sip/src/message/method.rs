//! RFC 3261 §7.1 and §27.4: request methods, with those of the extensions this profile uses.

use std::fmt;
use std::str::FromStr;

use crate::syntax::is_token;

/// A request method (§7.1, §27.4). Method names are case-sensitive: `invite` is an
/// extension method, not INVITE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// REGISTER (§10).
    Register,
    /// INVITE (§13; not supported by this crate's transactions).
    Invite,
    /// ACK (§17.1.1.3).
    Ack,
    /// BYE (§15).
    Bye,
    /// CANCEL (§9).
    Cancel,
    /// OPTIONS (§11).
    Options,
    /// MESSAGE (RFC 3428).
    Message,
    /// SUBSCRIBE (RFC 6665 §4.1).
    Subscribe,
    /// NOTIFY (RFC 6665 §4.2).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// Any other token (`RE%47IST%45R` is one, RFC 4475 §3.1.1.5).
    Other(String),
}

/// A method name that is not a `token` (§25.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid method {method:?}")]
pub struct MethodError {
    /// The text given.
    pub method: String,
}

impl Method {
    /// Every method this crate names, in the order of the enum.
    pub const KNOWN: [Method; 14] = [
        Method::Register,
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Options,
        Method::Message,
        Method::Subscribe,
        Method::Notify,
        Method::Publish,
        Method::Info,
        Method::Refer,
        Method::Update,
        Method::Prack,
    ];

    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Message => "MESSAGE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Other(name) => name,
        }
    }
}

impl FromStr for Method {
    type Err = MethodError;

    /// # Errors
    /// [`MethodError`] unless `text` is a token.
    fn from_str(text: &str) -> Result<Method, MethodError> {
        if !is_token(text) {
            return Err(MethodError {
                method: text.to_string(),
            });
        }
        Ok(Method::KNOWN
            .into_iter()
            .find(|method| method.as_str() == text)
            .unwrap_or_else(|| Method::Other(text.to_string())))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
