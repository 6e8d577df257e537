//! RVP §5: the request methods, and what §5.8 says to answer for the ones RVP rejects.

use std::fmt;
use std::str::FromStr;

use http::StatusCode;

/// A request method. RVP defines or adopts seven (§5.1 to §5.7); §5.8 names the HTTP and
/// DAV methods a server must refuse. Anything else is kept as [`Method::Extension`].
///
/// Methods are case-sensitive (RFC 9110 §9.1): `subscribe` is an extension method, not
/// SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// §5.1 (from GENA): create or renew a subscription.
    Subscribe,
    /// §5.2 (from GENA): remove a subscription by its Subscription-Id.
    Unsubscribe,
    /// §5.3 (new in RVP): list the subscriptions on a node.
    Subscriptions,
    /// §5.4 (from DAV): read a node's properties.
    Propfind,
    /// §5.5 (from DAV): set a node's properties.
    Proppatch,
    /// §5.6 (from GENA): deliver a notification or an instant message.
    Notify,
    /// §5.7 (from the WebDAV ACL draft): read a node's access control list.
    Acl,
    /// HTTP GET, refused with 501 (§5.8).
    Get,
    /// HTTP HEAD, refused with 501 (§5.8).
    Head,
    /// HTTP POST, refused with 501 (§5.8).
    Post,
    /// HTTP PUT, refused with 501 (§5.8).
    Put,
    /// DAV COPY, refused with 405 (§5.8).
    Copy,
    /// DAV MOVE, refused with 405 (§5.8).
    Move,
    /// DAV LOCK, refused with 501 (§5.8).
    Lock,
    /// DAV UNLOCK, refused with 501 (§5.8).
    Unlock,
    /// HTTP OPTIONS, refused with 501 (§5.8).
    Options,
    /// Any other method token, as sent.
    Extension(String),
}

/// Every named method with its wire spelling, RVP's own first.
const NAMED: &[(Method, &str)] = &[
    (Method::Subscribe, "SUBSCRIBE"),
    (Method::Unsubscribe, "UNSUBSCRIBE"),
    (Method::Subscriptions, "SUBSCRIPTIONS"),
    (Method::Propfind, "PROPFIND"),
    (Method::Proppatch, "PROPPATCH"),
    (Method::Notify, "NOTIFY"),
    (Method::Acl, "ACL"),
    (Method::Get, "GET"),
    (Method::Head, "HEAD"),
    (Method::Post, "POST"),
    (Method::Put, "PUT"),
    (Method::Copy, "COPY"),
    (Method::Move, "MOVE"),
    (Method::Lock, "LOCK"),
    (Method::Unlock, "UNLOCK"),
    (Method::Options, "OPTIONS"),
];

/// A method token that is empty or holds a character RFC 9110 §5.6.2 does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid method token {token:?}")]
pub struct InvalidMethod {
    /// The rejected text.
    pub token: String,
}

impl Method {
    /// The seven methods RVP serves (§5.1 to §5.7).
    pub const RVP: [Method; 7] = [
        Method::Subscribe,
        Method::Unsubscribe,
        Method::Subscriptions,
        Method::Propfind,
        Method::Proppatch,
        Method::Notify,
        Method::Acl,
    ];

    /// The method token as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Extension(token) => token,
            named => NAMED
                .iter()
                .find(|(method, _)| method == named)
                .map_or("", |(_, text)| text),
        }
    }

    /// Whether this is one of the seven methods of §5.1 to §5.7.
    pub fn is_rvp(&self) -> bool {
        Method::RVP.contains(self)
    }

    /// The status a server answers this method with when it refuses it, or `None` for
    /// an RVP method.
    ///
    /// §5.8: GET, HEAD, POST, PUT, LOCK, UNLOCK and OPTIONS get 501 (Not Implemented), COPY
    /// and MOVE get 405 (Method Not Allowed). §5.8 says nothing of other methods; RFC 9110
    /// §15.6.2 makes 501 the answer to a method the server does not recognize, so
    /// extension methods get 501 too.
    pub fn rejection(&self) -> Option<StatusCode> {
        match self {
            m if m.is_rvp() => None,
            Method::Copy | Method::Move => Some(StatusCode::METHOD_NOT_ALLOWED),
            _ => Some(StatusCode::NOT_IMPLEMENTED),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = InvalidMethod;

    /// Parses a method token (case-sensitive); fails with [`InvalidMethod`] if `token` is
    /// not an RFC 9110 token.
    fn from_str(token: &str) -> Result<Self, Self::Err> {
        if let Some((method, _)) = NAMED.iter().find(|(_, text)| *text == token) {
            return Ok(method.clone());
        }
        if token.is_empty() || !token.bytes().all(is_tchar) {
            return Err(InvalidMethod {
                token: token.to_string(),
            });
        }
        Ok(Method::Extension(token.to_string()))
    }
}

/// RFC 9110 §5.6.2 `tchar`.
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_methods_round_trip() {
        for (method, text) in NAMED {
            assert_eq!(method.as_str(), *text);
            assert_eq!(text.parse::<Method>().unwrap(), *method);
            assert_eq!(method.to_string(), *text);
        }
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(
            "subscribe".parse::<Method>().unwrap(),
            Method::Extension("subscribe".into())
        );
        assert_eq!(
            "BREW".parse::<Method>().unwrap(),
            Method::Extension("BREW".into())
        );
    }

    #[test]
    fn invalid_tokens_are_rejected() {
        for token in ["", "SUB SCRIBE", "N\u{e9}", "A(B"] {
            assert_eq!(
                token.parse::<Method>(),
                Err(InvalidMethod {
                    token: token.into()
                })
            );
        }
    }

    #[test]
    fn section_5_8_rejections() {
        for method in Method::RVP {
            assert!(method.is_rvp());
            assert_eq!(method.rejection(), None, "{method}");
        }
        for method in [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Lock,
            Method::Unlock,
            Method::Options,
        ] {
            assert_eq!(
                method.rejection(),
                Some(StatusCode::NOT_IMPLEMENTED),
                "{method}"
            );
        }
        for method in [Method::Copy, Method::Move] {
            assert_eq!(
                method.rejection(),
                Some(StatusCode::METHOD_NOT_ALLOWED),
                "{method}"
            );
        }
        assert_eq!(
            Method::Extension("BREW".into()).rejection(),
            Some(StatusCode::NOT_IMPLEMENTED)
        );
    }
}
