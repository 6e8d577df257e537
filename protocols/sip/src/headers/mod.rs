//! RFC 3261 §7.3 and §20: header fields, as an ordered list, and the typed values this
//! profile reads ([`Via`], [`NameAddr`], [`CSeq`], [`EventHeader`], [`SubscriptionState`]).
//!
//! [`Headers`] keeps every field line in order with its name as written (`v`, `VIA`,
//! `C%6Fntact`), so that a message is written back the way it came and a scenario can craft
//! unusual forms. Lookups are case-insensitive and treat a compact form as its long form
//! (§7.3.3, [`canonical_name`]). A list header (§7.3.1: `Via`, `Route`, `Contact`...) means
//! the same written as several lines or as one line with commas; [`Headers::get_all`]
//! gives its elements either way.
//!
//! The typed accessors ([`Headers::cseq`], [`Headers::vias`]...) are shared by
//! [`Request`](crate::Request) and [`Response`](crate::Response), which forward to them.
//! Each typed value's `Display` is its canonical wire form.

mod name_addr;
mod names;
mod values;
mod via;

use std::fmt;

pub use crate::syntax::unquote;
pub use name_addr::NameAddr;
pub use names::{canonical_name, compact_name, is_list, same_name};
pub use values::{CSeq, EventHeader, SubscriptionState};
pub use via::Via;

use crate::syntax::{parse_delta, split_list, trim_wsp};
use crate::uri::UriError;

/// A header that is missing, repeated or unreadable. `name` is the header's canonical
/// name (`name-addr` when [`NameAddr::parse`] is called on its own).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A header the message needs is absent.
    #[error("missing {name} header")]
    Missing {
        /// The header's canonical name.
        name: &'static str,
    },
    /// A header that may appear once appears several times (RFC 4475 §3.3.8).
    #[error("{name} header appears {count} times")]
    Repeated {
        /// The header's canonical name.
        name: &'static str,
        /// How many lines carry it.
        count: usize,
    },
    /// The value does not follow the header's grammar.
    #[error("invalid {name} header {value:?}: {reason}")]
    Invalid {
        /// The header's canonical name.
        name: &'static str,
        /// The value as received.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URI in the value does not parse.
    #[error("invalid URI in {name} header {value:?}")]
    Uri {
        /// The header's canonical name.
        name: &'static str,
        /// The value as received.
        value: String,
        /// Why the URI does not parse.
        source: UriError,
    },
}

impl HeaderError {
    /// The header the error is about.
    pub fn name(&self) -> &'static str {
        match self {
            HeaderError::Missing { name }
            | HeaderError::Repeated { name, .. }
            | HeaderError::Invalid { name, .. }
            | HeaderError::Uri { name, .. } => name,
        }
    }

    /// The same error about header `name` (a [`NameAddr`] read as From, To, Contact...).
    pub(crate) fn named(mut self, header: &'static str) -> HeaderError {
        match &mut self {
            HeaderError::Missing { name }
            | HeaderError::Repeated { name, .. }
            | HeaderError::Invalid { name, .. }
            | HeaderError::Uri { name, .. } => *name = header,
        }
        self
    }

    pub(crate) fn invalid(name: &'static str, value: &str, reason: &'static str) -> HeaderError {
        HeaderError::Invalid {
            name,
            value: value.to_string(),
            reason,
        }
    }
}

/// The header fields of a message, in order, names as written and values with the
/// surrounding whitespace removed (and folded lines unfolded, when parsed).
///
/// Nothing here checks what is stored: a value with a CR or LF, or a name that is not a
/// token, is written out as it is (how a scenario crafts a faulty message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// The value of the first line of header `name` (case-insensitive, compact forms
    /// included), as it is: for a list header written with commas, the whole line (use
    /// [`get_all`](Self::get_all) or a typed accessor for its first element).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.lines(name).next()
    }

    /// Every value of header `name`: the elements of every line for a list header
    /// ([`is_list`]: split at commas outside quotes and `<...>`), else each line's value.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        if is_list(name) {
            self.lines(name).flat_map(split_list).collect()
        } else {
            self.lines(name).collect()
        }
    }

    /// The values of the lines of header `name`, unsplit.
    pub fn lines<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.fields
            .iter()
            .filter(move |(key, _)| same_name(key, name))
            .map(|(_, value)| value.as_str())
    }

    /// How many lines carry header `name`.
    pub fn count(&self, name: &str) -> usize {
        self.lines(name).count()
    }

    /// Whether header `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a line.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.fields.push((name.to_string(), value.into()));
    }

    /// Inserts a line before the first line of header `name`, or at the top if there is
    /// none (a proxy's `Via` and `Record-Route`, §16.6 steps 4 and 8).
    pub fn prepend(&mut self, name: &str, value: impl Into<String>) {
        let at = self
            .fields
            .iter()
            .position(|(key, _)| same_name(key, name))
            .unwrap_or(0);
        self.fields.insert(at, (name.to_string(), value.into()));
    }

    /// Replaces every line of header `name` with one, where the first was (or at the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter().position(|(key, _)| same_name(key, name)) {
            Some(at) => {
                self.fields[at] = (name.to_string(), value);
                let mut index = 0;
                self.fields.retain(|(key, _)| {
                    index += 1;
                    index - 1 == at || !same_name(key, name)
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line of header `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|(key, _)| !same_name(key, name));
        before - self.fields.len()
    }

    /// Removes and returns the first value of header `name`: for a list header the first
    /// element of its first line (the rest of that line stays), else the first line (a
    /// proxy popping the top `Via` of a response, §16.7 step 3, or a `Route`, §16.4).
    pub fn remove_first(&mut self, name: &str) -> Option<String> {
        let at = self
            .fields
            .iter()
            .position(|(key, _)| same_name(key, name))?;
        if is_list(name) {
            let elements = split_list(&self.fields[at].1);
            if elements.len() > 1 {
                let first = elements[0].to_string();
                let rest = elements[1..].join(", ");
                self.fields[at].1 = rest;
                return Some(first);
            }
        }
        Some(self.fields.remove(at).1)
    }

    /// Every line as `(name as written, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Keeps only the lines for which `keep(name, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.fields.retain(|(name, value)| keep(name, value));
    }

    // -----------------------------------------------------------------------------------
    // Typed accessors (shared by Request and Response)

    /// The one line of header `name`: [`HeaderError::Missing`] if absent,
    /// [`HeaderError::Repeated`] if there are several.
    fn single(&self, name: &'static str) -> Result<&str, HeaderError> {
        let mut lines = self.lines(name);
        let first = lines.next().ok_or(HeaderError::Missing { name })?;
        let more = lines.count();
        if more > 0 {
            return Err(HeaderError::Repeated {
                name,
                count: more + 1,
            });
        }
        Ok(first)
    }

    /// `Call-ID` (§20.8), the first line's value.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID")
    }

    /// `CSeq` (§20.16).
    ///
    /// # Errors
    /// [`HeaderError`] if it is missing, repeated or malformed.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.single("CSeq")?)
    }

    /// `From` (§20.20).
    ///
    /// # Errors
    /// [`HeaderError`] if it is missing, repeated or malformed.
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(self.single("From")?).map_err(|e| e.named("From"))
    }

    /// `To` (§20.39).
    ///
    /// # Errors
    /// [`HeaderError`] if it is missing, repeated or malformed.
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(self.single("To")?).map_err(|e| e.named("To"))
    }

    /// Every `Via` (§20.42), top first.
    ///
    /// # Errors
    /// [`HeaderError::Missing`] if there is none, [`HeaderError::Invalid`] if one is
    /// malformed.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let values = self.get_all("Via");
        if values.is_empty() {
            return Err(HeaderError::Missing { name: "Via" });
        }
        values.into_iter().map(Via::parse).collect()
    }

    /// The top `Via`.
    ///
    /// # Errors
    /// As [`vias`](Self::vias), for the top one only.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let values = self.get_all("Via");
        Via::parse(values.first().ok_or(HeaderError::Missing { name: "Via" })?)
    }

    /// Every `Contact` (§20.10), in order; none when absent. `Contact: *` (a REGISTER
    /// removing every binding, §10.2.2) is not a [`NameAddr`]: it gives an empty list here
    /// and [`contact_star`](Self::contact_star) is true.
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] if one is malformed, or `*` appears with other contacts
    /// (§10.3 step 6).
    pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
        let values = self.get_all("Contact");
        if values.contains(&"*") {
            if values.len() > 1 {
                return Err(HeaderError::invalid(
                    "Contact",
                    &values.join(", "),
                    "'*' together with other contacts",
                ));
            }
            return Ok(Vec::new());
        }
        values
            .into_iter()
            .map(|value| NameAddr::parse(value).map_err(|e| e.named("Contact")))
            .collect()
    }

    /// Whether the only `Contact` is `*` (§10.2.2).
    pub fn contact_star(&self) -> bool {
        self.get_all("Contact") == ["*"]
    }

    /// `Route` (§20.34), in order; none when absent.
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] if one is malformed.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("Route")
    }

    /// `Record-Route` (§20.30), in order; none when absent.
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] if one is malformed.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("Record-Route")
    }

    fn name_addrs(&self, name: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
        self.get_all(name)
            .into_iter()
            .map(|value| NameAddr::parse(value).map_err(|e| e.named(name)))
            .collect()
    }

    /// `Expires` (§20.19) in seconds; `None` when absent or malformed (see
    /// [`try_expires`](Self::try_expires)). Values past 2^32-1 saturate.
    pub fn expires(&self) -> Option<u32> {
        self.try_expires().and_then(Result::ok)
    }

    /// `Expires`, with a malformed value as an error.
    pub fn try_expires(&self) -> Option<Result<u32, HeaderError>> {
        self.delta("Expires")
    }

    /// `Min-Expires` (§20.23) in seconds.
    pub fn min_expires(&self) -> Option<u32> {
        self.delta("Min-Expires").and_then(Result::ok)
    }

    /// `Max-Forwards` (§20.22); `None` when absent or malformed.
    pub fn max_forwards(&self) -> Option<u32> {
        self.delta("Max-Forwards").and_then(Result::ok)
    }

    fn delta(&self, name: &'static str) -> Option<Result<u32, HeaderError>> {
        let value = self.get(name)?;
        Some(
            parse_delta(value)
                .ok_or_else(|| HeaderError::invalid(name, value, "not a decimal number")),
        )
    }

    /// `Event` (RFC 6665 §8.2.1).
    pub fn event(&self) -> Option<Result<EventHeader, HeaderError>> {
        self.get("Event").map(EventHeader::parse)
    }

    /// `Subscription-State` (RFC 6665 §8.2.3).
    pub fn subscription_state(&self) -> Option<Result<SubscriptionState, HeaderError>> {
        self.get("Subscription-State").map(SubscriptionState::parse)
    }

    /// `Content-Type` (§20.15), as written (`text/plain;charset=UTF-8`).
    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }

    /// The media type of `Content-Type` without parameters, lower-cased
    /// (`application/pidf+xml`).
    pub fn media_type(&self) -> Option<String> {
        self.content_type().map(|value| {
            trim_wsp(value.split(';').next().unwrap_or(""))
                .to_ascii_lowercase()
                .replace([' ', '\t'], "")
        })
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Headers {
        Headers {
            fields: iter
                .into_iter()
                .map(|(name, value)| (name.as_ref().to_string(), value.into()))
                .collect(),
        }
    }
}

/// The lines as `Name: value\r\n`.
impl fmt::Display for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.fields {
            write!(f, "{name}: {value}\r\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Method;

    fn sample() -> Headers {
        [
            ("v", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com;branch=z9hG4bK2"),
            ("Via", "SIP/2.0/UDP c.example.com;branch=z9hG4bK3"),
            ("To", "<sip:bob@example.com>"),
            ("f", "\"A, B\" <sip:alice@example.com>;tag=1"),
            ("i", "abc@host"),
            ("CSeq", "7 SUBSCRIBE"),
            ("m", "<sip:alice@192.0.2.1:5070;transport=tcp>;expires=60, sip:alice@h2"),
            ("o", "presence;id=x"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn lookups_are_compact_aware_and_lists_split() {
        let headers = sample();
        assert_eq!(
            headers.get("VIA"),
            Some(
                "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com;branch=z9hG4bK2"
            )
        );
        assert_eq!(headers.get_all("via").len(), 3);
        assert_eq!(headers.count("Via"), 2);
        assert_eq!(headers.call_id(), Some("abc@host"));
        assert_eq!(
            headers.get_all("From"),
            vec!["\"A, B\" <sip:alice@example.com>;tag=1"]
        );
        let vias = headers.vias().unwrap();
        assert_eq!(vias[2].host, "c.example.com");
        assert_eq!(headers.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(
            headers.cseq().unwrap(),
            CSeq {
                seq: 7,
                method: Method::Subscribe
            }
        );
        assert_eq!(headers.from().unwrap().display.as_deref(), Some("A, B"));
        let contacts = headers.contacts().unwrap();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].expires(), Some(60));
        assert_eq!(contacts[1].uri.host, "h2");
        assert_eq!(headers.event().unwrap().unwrap().id.as_deref(), Some("x"));
        assert!(headers.routes().unwrap().is_empty());
        assert_eq!(headers.expires(), None);
    }

    #[test]
    fn editing_keeps_order() {
        let mut headers = sample();
        headers.prepend("Via", "SIP/2.0/UDP proxy;branch=z9hG4bKp");
        assert_eq!(
            headers.iter().next(),
            Some(("Via", "SIP/2.0/UDP proxy;branch=z9hG4bKp"))
        );
        assert_eq!(
            headers.remove_first("Via").as_deref(),
            Some("SIP/2.0/UDP proxy;branch=z9hG4bKp")
        );
        assert_eq!(
            headers.remove_first("Via").as_deref(),
            Some("SIP/2.0/UDP a.example.com;branch=z9hG4bK1")
        );
        assert_eq!(
            headers.get("v"),
            Some("SIP/2.0/TCP b.example.com;branch=z9hG4bK2")
        );
        assert_eq!(headers.get_all("Via").len(), 2);
        headers.prepend("Record-Route", "<sip:p1;lr>");
        assert_eq!(headers.iter().next().map(|(n, _)| n), Some("Record-Route"));
        headers.set("Call-ID", "new");
        headers.push("i", "again");
        headers.set("call-id", "one");
        assert_eq!(headers.get_all("Call-ID"), vec!["one"]);
        assert_eq!(headers.remove("m"), 1);
        assert_eq!(headers.contacts(), Ok(Vec::new()));
        assert_eq!(headers.remove_first("Nothing"), None);
        let len = headers.len();
        headers.set("Expires", "3600");
        assert_eq!((headers.len(), headers.expires()), (len + 1, Some(3600)));
        assert!(!headers.is_empty());
    }

    #[test]
    fn errors_name_the_header() {
        let mut headers = Headers::new();
        assert_eq!(headers.cseq(), Err(HeaderError::Missing { name: "CSeq" }));
        assert_eq!(headers.vias(), Err(HeaderError::Missing { name: "Via" }));
        headers.push("To", "<sip:a@b>");
        headers.push("t", "<sip:c@d>");
        assert_eq!(
            headers.to(),
            Err(HeaderError::Repeated {
                name: "To",
                count: 2
            })
        );
        headers.push("From", "sip:a@b?x=y");
        assert_eq!(headers.from().unwrap_err().name(), "From");
        headers.push("Expires", "soon");
        assert!(matches!(
            headers.try_expires(),
            Some(Err(HeaderError::Invalid {
                name: "Expires",
                ..
            }))
        ));
        headers.push("Contact", "*");
        assert!(headers.contact_star());
        assert_eq!(headers.contacts(), Ok(Vec::new()));
        headers.push("Contact", "<sip:a@b>");
        assert!(headers.contacts().is_err());
        headers.push("Content-Type", "Application/PIDF+XML ; charset=utf-8");
        assert_eq!(
            headers.media_type().as_deref(),
            Some("application/pidf+xml")
        );
    }
}
