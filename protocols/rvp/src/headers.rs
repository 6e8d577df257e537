//! RVP §7: typed headers (RVP-Notifications-Version, RVP-From-Principal, Call-Back,
//! Subscription-Id, Subscription-Lifetime, Notification-Type, RVP-Ack-Type, RVP-Hop-Count)
//! and the DAV `Depth` header.
//!
//! Each header is a type implementing [`TypedHeader`]; [`RvpHeaders`] reads and writes
//! them on an [`http::HeaderMap`]. Values that cannot be written (a token with a space, a
//! hop count of 0) cannot be constructed, so setting a header never fails.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::url::{NodeUrl, ServerName};

/// A header that is missing, repeated or unreadable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A header the message needs is absent.
    #[error("missing {name} header")]
    Missing {
        /// The header's name.
        name: &'static str,
    },
    /// A header that may appear once appears several times.
    #[error("{name} header appears {count} times")]
    Repeated {
        /// The header's name.
        name: &'static str,
        /// How many times it appears.
        count: usize,
    },
    /// The value does not parse.
    #[error("invalid {name} header {value:?}: {reason}")]
    Invalid {
        /// The header's name.
        name: &'static str,
        /// The value as received (non-UTF-8 bytes replaced).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A header with a typed value.
pub trait TypedHeader: Sized {
    /// The header's name as the specification spells it.
    const NAME: &'static str;

    /// Parses a value (surrounding whitespace already removed).
    ///
    /// # Errors
    /// A short reason when the value is not valid for this header.
    fn decode(value: &str) -> Result<Self, &'static str>;

    /// The value as it is written.
    fn encode(&self) -> String;
}

/// Typed access to the headers of an [`http::HeaderMap`].
pub trait RvpHeaders {
    /// Reads `H`.
    ///
    /// # Errors
    /// [`HeaderError::Repeated`] if `H` appears more than once, [`HeaderError::Invalid`]
    /// if its value does not parse; absence is `Ok(None)`.
    fn typed<H: TypedHeader>(&self) -> Result<Option<H>, HeaderError>;

    /// Reads `H`, which must be present.
    ///
    /// # Errors
    /// [`HeaderError::Missing`] if `H` is absent, else as [`typed`](Self::typed).
    fn typed_required<H: TypedHeader>(&self) -> Result<H, HeaderError> {
        self.typed::<H>()?
            .ok_or(HeaderError::Missing { name: H::NAME })
    }

    /// Sets `H`, replacing every value it had.
    fn set_typed<H: TypedHeader>(&mut self, value: &H);
}

impl RvpHeaders for HeaderMap {
    fn typed<H: TypedHeader>(&self) -> Result<Option<H>, HeaderError> {
        let mut values = self.get_all(H::NAME).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        let count = 1 + values.count();
        if count > 1 {
            return Err(HeaderError::Repeated {
                name: H::NAME,
                count,
            });
        }
        let invalid = |reason| HeaderError::Invalid {
            name: H::NAME,
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            reason,
        };
        let text = value.to_str().map_err(|_| invalid("not ASCII"))?;
        H::decode(text.trim_matches([' ', '\t']))
            .map(Some)
            .map_err(invalid)
    }

    fn set_typed<H: TypedHeader>(&mut self, value: &H) {
        // Every `encode` produces visible ASCII and spaces only (each type's invariant),
        // which `HeaderValue` always accepts.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(H::NAME.as_bytes()),
            HeaderValue::try_from(value.encode()),
        ) {
            self.insert(name, value);
        }
    }
}

/// `RVP-Notifications-Version` (§7.2): "Every request and response must include this
/// header." The specification's copy says 1.0; Microsoft's MSDN text and all observed
/// Exchange traffic use 0.2. Both are accepted; [`SEND`](Self::SEND) is 0.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationsVersion {
    /// `0.2`, as deployed.
    V0_2,
    /// `1.0`, as in the specification's examples.
    V1_0,
}

impl NotificationsVersion {
    /// The version this crate sends.
    pub const SEND: NotificationsVersion = NotificationsVersion::V0_2;
}

impl TypedHeader for NotificationsVersion {
    const NAME: &'static str = "RVP-Notifications-Version";

    fn decode(value: &str) -> Result<Self, &'static str> {
        match value {
            "0.2" => Ok(NotificationsVersion::V0_2),
            "1.0" => Ok(NotificationsVersion::V1_0),
            _ => Err("only 0.2 and 1.0 are known"),
        }
    }

    fn encode(&self) -> String {
        match self {
            NotificationsVersion::V0_2 => "0.2",
            NotificationsVersion::V1_0 => "1.0",
        }
        .to_string()
    }
}

/// `RVP-From-Principal` (§7.2): "where the method originates ... typically the logical
/// URL of the sender"; a server sends its bare host name (§5.6.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FromPrincipal {
    /// A principal's (or other node's) URL.
    Node(NodeUrl),
    /// A presence service's host name.
    Server(ServerName),
}

impl TypedHeader for FromPrincipal {
    const NAME: &'static str = "RVP-From-Principal";

    fn decode(value: &str) -> Result<Self, &'static str> {
        if let Ok(url) = NodeUrl::parse(value) {
            return Ok(FromPrincipal::Node(url));
        }
        ServerName::new(value)
            .map(FromPrincipal::Server)
            .map_err(|_| "neither a node URL nor a host name")
    }

    fn encode(&self) -> String {
        match self {
            FromPrincipal::Node(url) => url.to_string(),
            FromPrincipal::Server(name) => name.to_string(),
        }
    }
}

/// `Call-Back` (§5.1.4, §7.2, from GENA): the node that receives the NOTIFYs of a
/// subscription: the watcher's own logical URL, or a local node such as
/// `http://198.176.154.132:1234`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallBack(pub NodeUrl);

impl TypedHeader for CallBack {
    const NAME: &'static str = "Call-Back";

    fn decode(value: &str) -> Result<Self, &'static str> {
        NodeUrl::parse(value)
            .map(CallBack)
            .map_err(|_| "not a node URL")
    }

    fn encode(&self) -> String {
        self.0.to_string()
    }
}

/// One or more visible ASCII characters (no spaces): the shape of opaque header tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Word(String);

impl Word {
    /// Checks that `text` is one or more visible ASCII characters.
    ///
    /// # Errors
    /// The rejected text, if it is empty or holds anything else.
    pub fn new(text: impl Into<String>) -> Result<Word, String> {
        let text = text.into();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Word(text))
        } else {
            Err(text)
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Subscription-Id` (§5.1.1, §7.2): "a number unique to that subscription", but the
/// package-tracking example of §5.6.1 uses `9A504`, so it is kept as an opaque token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(Word);

impl SubscriptionId {
    /// An identifier from its text.
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] if `id` is empty or holds whitespace, control or
    /// non-ASCII characters.
    pub fn new(id: impl Into<String>) -> Result<SubscriptionId, HeaderError> {
        Word::new(id)
            .map(SubscriptionId)
            .map_err(|value| HeaderError::Invalid {
                name: Self::NAME,
                value,
                reason: "not a token",
            })
    }

    /// The identifier's text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TypedHeader for SubscriptionId {
    const NAME: &'static str = "Subscription-Id";

    fn decode(value: &str) -> Result<Self, &'static str> {
        Word::new(value)
            .map(SubscriptionId)
            .map_err(|_| "not a token")
    }

    fn encode(&self) -> String {
        self.as_str().to_string()
    }
}

/// `Subscription-Lifetime` (§5.1.2, §7.2): the lease in seconds, requested and then
/// granted. A response without it means the subscription is permanent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionLifetime(pub u64);

impl TypedHeader for SubscriptionLifetime {
    const NAME: &'static str = "Subscription-Lifetime";

    fn decode(value: &str) -> Result<Self, &'static str> {
        parse_decimal(value).map(SubscriptionLifetime)
    }

    fn encode(&self) -> String {
        self.0.to_string()
    }
}

/// `Notification-Type` (§5.1.3, §7.2): what a SUBSCRIBE (or SUBSCRIPTIONS) is about.
/// "extensible to other values".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NotificationType {
    /// `update/propchange`: property changes of the node.
    PropChange,
    /// `pragma/notify`: general notifications sent to the node (the login subscription).
    PragmaNotify,
    /// Any other value.
    Other(Word),
}

impl TypedHeader for NotificationType {
    const NAME: &'static str = "Notification-Type";

    /// The two defined values are matched without regard to case.
    fn decode(value: &str) -> Result<Self, &'static str> {
        if value.eq_ignore_ascii_case("update/propchange") {
            Ok(NotificationType::PropChange)
        } else if value.eq_ignore_ascii_case("pragma/notify") {
            Ok(NotificationType::PragmaNotify)
        } else {
            Word::new(value)
                .map(NotificationType::Other)
                .map_err(|_| "not a token")
        }
    }

    fn encode(&self) -> String {
        match self {
            NotificationType::PropChange => "update/propchange".to_string(),
            NotificationType::PragmaNotify => "pragma/notify".to_string(),
            NotificationType::Other(word) => word.to_string(),
        }
    }
}

/// `RVP-Ack-Type` (§5.6, §7.2): when the 200 to a NOTIFY may be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AckType {
    /// When the first receiver (the home server) has the NOTIFY.
    SingleHop,
    /// When one of the final destinations has it (an instant message).
    DeepOr,
    /// When all final destinations have it (a group or list).
    DeepAnd,
}

impl TypedHeader for AckType {
    const NAME: &'static str = "RVP-Ack-Type";

    /// Matched without regard to case; written as the specification spells it.
    fn decode(value: &str) -> Result<Self, &'static str> {
        [AckType::SingleHop, AckType::DeepOr, AckType::DeepAnd]
            .into_iter()
            .find(|ack| ack.encode().eq_ignore_ascii_case(value))
            .ok_or("not SingleHop, DeepOr or DeepAnd")
    }

    fn encode(&self) -> String {
        match self {
            AckType::SingleHop => "SingleHop",
            AckType::DeepOr => "DeepOr",
            AckType::DeepAnd => "DeepAnd",
        }
        .to_string()
    }
}

/// `RVP-Hop-Count` (§5.6, §7.2): the 1-based number of hops so far (client→server 1,
/// server→server 2, server→client 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HopCount(u32);

impl HopCount {
    /// A hop count; `None` for 0, since counting starts at 1.
    pub fn new(count: u32) -> Option<HopCount> {
        (count > 0).then_some(HopCount(count))
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The count one hop further (saturating).
    pub fn next(self) -> HopCount {
        HopCount(self.0.saturating_add(1))
    }
}

impl TypedHeader for HopCount {
    const NAME: &'static str = "RVP-Hop-Count";

    fn decode(value: &str) -> Result<Self, &'static str> {
        let count = parse_decimal(value)?;
        let count = u32::try_from(count).map_err(|_| "too large")?;
        HopCount::new(count).ok_or("hop counts start at 1")
    }

    fn encode(&self) -> String {
        self.0.to_string()
    }
}

/// `Depth` (RFC 2518 §9.2; RVP §5.4 and §7.1): RVP supports only 0, on PROPFIND, where
/// it is required (else 412).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Depth {
    /// `0`: the node itself.
    Zero,
    /// `1`: the node and its members.
    One,
    /// `infinity`: the whole subtree.
    Infinity,
}

impl TypedHeader for Depth {
    const NAME: &'static str = "Depth";

    fn decode(value: &str) -> Result<Self, &'static str> {
        match value {
            "0" => Ok(Depth::Zero),
            "1" => Ok(Depth::One),
            v if v.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
            _ => Err("not 0, 1 or infinity"),
        }
    }

    fn encode(&self) -> String {
        match self {
            Depth::Zero => "0",
            Depth::One => "1",
            Depth::Infinity => "infinity",
        }
        .to_string()
    }
}

/// `1*DIGIT` as a `u64`.
fn parse_decimal(value: &str) -> Result<u64, &'static str> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a decimal number");
    }
    value.parse().map_err(|_| "too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn round_trip<H: TypedHeader + PartialEq + fmt::Debug>(value: H, text: &str) {
        let mut headers = HeaderMap::new();
        headers.set_typed(&value);
        assert_eq!(headers.get(H::NAME).unwrap(), text);
        assert_eq!(headers.typed::<H>().unwrap(), Some(value));
    }

    #[test]
    fn versions() {
        round_trip(NotificationsVersion::V0_2, "0.2");
        round_trip(NotificationsVersion::V1_0, "1.0");
        let headers = map(&[("rvp-notifications-version", "2.0")]);
        assert_eq!(
            headers.typed::<NotificationsVersion>(),
            Err(HeaderError::Invalid {
                name: "RVP-Notifications-Version",
                value: "2.0".into(),
                reason: "only 0.2 and 1.0 are known",
            })
        );
    }

    #[test]
    fn from_principal_is_a_url_or_a_server() {
        round_trip(
            FromPrincipal::Node(
                NodeUrl::parse("http://im.acme.com/instmsg/aliases/bruceb").unwrap(),
            ),
            "http://im.acme.com/instmsg/aliases/bruceb",
        );
        round_trip(
            FromPrincipal::Server(ServerName::new("im.example.com").unwrap()),
            "im.example.com",
        );
        let headers = map(&[("rvp-from-principal", "not a principal")]);
        assert!(matches!(
            headers.typed::<FromPrincipal>(),
            Err(HeaderError::Invalid {
                name: "RVP-From-Principal",
                ..
            })
        ));
    }

    #[test]
    fn call_back() {
        round_trip(
            CallBack(NodeUrl::parse("http://198.176.154.132:1234").unwrap()),
            "http://198.176.154.132:1234",
        );
    }

    #[test]
    fn subscription_ids_are_opaque() {
        round_trip(SubscriptionId::new("98210").unwrap(), "98210");
        round_trip(SubscriptionId::new("9A504").unwrap(), "9A504");
        assert!(SubscriptionId::new("").is_err());
        assert!(SubscriptionId::new("a b").is_err());
    }

    #[test]
    fn lifetimes_and_hop_counts() {
        round_trip(SubscriptionLifetime(14400), "14400");
        round_trip(HopCount::new(3).unwrap(), "3");
        assert_eq!(HopCount::new(0), None);
        assert_eq!(HopCount::new(1).unwrap().next().get(), 2);
        assert_eq!(HopCount::new(u32::MAX).unwrap().next().get(), u32::MAX);
        for bad in ["", "-1", "1.5", "0x10", "99999999999999999999999"] {
            assert!(SubscriptionLifetime::decode(bad).is_err(), "{bad:?}");
        }
        assert_eq!(HopCount::decode("0"), Err("hop counts start at 1"));
        assert_eq!(HopCount::decode("4294967296"), Err("too large"));
    }

    #[test]
    fn notification_types() {
        round_trip(NotificationType::PropChange, "update/propchange");
        round_trip(NotificationType::PragmaNotify, "pragma/notify");
        round_trip(
            NotificationType::Other(Word::new("x-custom/thing").unwrap()),
            "x-custom/thing",
        );
        assert_eq!(
            NotificationType::decode("Update/PropChange"),
            Ok(NotificationType::PropChange)
        );
    }

    #[test]
    fn ack_types_and_depth() {
        round_trip(AckType::SingleHop, "SingleHop");
        round_trip(AckType::DeepOr, "DeepOr");
        round_trip(AckType::DeepAnd, "DeepAnd");
        assert_eq!(AckType::decode("deepor"), Ok(AckType::DeepOr));
        assert!(AckType::decode("Deep").is_err());
        round_trip(Depth::Zero, "0");
        round_trip(Depth::One, "1");
        round_trip(Depth::Infinity, "infinity");
        assert!(Depth::decode("2").is_err());
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let headers = map(&[("subscription-lifetime", " 14400\t")]);
        assert_eq!(
            headers.typed::<SubscriptionLifetime>(),
            Ok(Some(SubscriptionLifetime(14400)))
        );
    }

    #[test]
    fn missing_repeated_and_non_ascii() {
        let headers = map(&[("subscription-id", "1"), ("subscription-id", "2")]);
        assert_eq!(
            headers.typed::<SubscriptionId>(),
            Err(HeaderError::Repeated {
                name: "Subscription-Id",
                count: 2
            })
        );
        assert_eq!(
            HeaderMap::new().typed_required::<Depth>(),
            Err(HeaderError::Missing { name: "Depth" })
        );
        assert_eq!(HeaderMap::new().typed::<Depth>(), Ok(None));
        let mut headers = HeaderMap::new();
        headers.insert("depth", HeaderValue::from_bytes(b"\xe9").unwrap());
        assert_eq!(
            headers.typed::<Depth>(),
            Err(HeaderError::Invalid {
                name: "Depth",
                value: "\u{fffd}".into(),
                reason: "not ASCII"
            })
        );
    }

    #[test]
    fn setting_replaces() {
        let mut headers = map(&[("rvp-hop-count", "1"), ("rvp-hop-count", "2")]);
        headers.set_typed(&HopCount::new(5).unwrap());
        assert_eq!(headers.get_all("rvp-hop-count").iter().count(), 1);
        assert_eq!(headers.typed::<HopCount>(), Ok(HopCount::new(5)));
    }
}
