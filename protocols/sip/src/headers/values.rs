//! RFC 3261 §20.16 `CSeq`; RFC 6665 §8.2.1 `Event` and §8.2.3 `Subscription-State`.

use std::fmt;

use super::HeaderError;
use crate::message::Method;
use crate::syntax::{find_param, is_token, parse_delta, parse_params, trim_wsp, write_params};

/// `CSeq: <seq> <method>` (§20.16).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CSeq {
    /// The sequence number, below 2^31 (§8.1.1.5).
    pub seq: u32,
    /// The method, which must be the request's (§8.1.1.5).
    pub method: Method,
}

impl CSeq {
    /// The largest sequence number a request may carry (§8.1.1.5: "less than 2**31").
    pub const MAX: u32 = (1 << 31) - 1;

    /// Parses a value: decimal digits (leading zeros allowed, RFC 4475 §3.1.1.1), LWS, a
    /// method token.
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] for anything else, and for a number of 2^31 or more (RFC
    /// 4475 §3.1.2.5 makes a receiver discard such a message).
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let invalid = |reason| HeaderError::invalid("CSeq", value, reason);
        let mut words = value.split([' ', '\t']).filter(|word| !word.is_empty());
        let (Some(seq), Some(method), None) = (words.next(), words.next(), words.next()) else {
            return Err(invalid("not '<number> <method>'"));
        };
        if !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("sequence number not decimal"));
        }
        let seq = seq
            .parse::<u64>()
            .ok()
            .and_then(|seq| u32::try_from(seq).ok())
            .filter(|seq| *seq <= CSeq::MAX)
            .ok_or_else(|| invalid("sequence number not below 2^31"))?;
        let method = method
            .parse::<Method>()
            .map_err(|_| invalid("method is not a token"))?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// `Event: <package>[;id=<id>][;params]` (RFC 6665 §8.2.1, §7.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventHeader {
    /// The event package (`presence`, RFC 3856 §6.1), with any template (`presence.winfo`),
    /// as written.
    pub package: String,
    /// The `id` parameter, which tells subscriptions of one dialog apart (RFC 6665 §4.1.2.1).
    pub id: Option<String>,
    /// The other parameters, as written.
    pub params: Vec<(String, Option<String>)>,
}

impl EventHeader {
    /// `Event: <package>` without parameters.
    pub fn new(package: &str) -> EventHeader {
        EventHeader {
            package: package.to_string(),
            id: None,
            params: Vec::new(),
        }
    }

    /// Parses a value.
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] if the package is not a token or a parameter is malformed.
    pub fn parse(value: &str) -> Result<EventHeader, HeaderError> {
        let invalid = |reason| HeaderError::invalid("Event", value, reason);
        let (package, params) = value.split_at(value.find(';').unwrap_or(value.len()));
        let package = trim_wsp(package);
        if !is_token(package) {
            return Err(invalid("event package is not a token"));
        }
        let mut params = parse_params(params).map_err(invalid)?;
        let id = match params
            .iter()
            .position(|(name, _)| name.eq_ignore_ascii_case("id"))
        {
            Some(at) => Some(
                params
                    .remove(at)
                    .1
                    .ok_or_else(|| invalid("id without a value"))?,
            ),
            None => None,
        };
        Ok(EventHeader {
            package: package.to_string(),
            id,
            params,
        })
    }

    /// Whether this is package `package` (RFC 6665 §8.2.1 compares event-types as tokens:
    /// case-insensitively).
    pub fn is(&self, package: &str) -> bool {
        self.package.eq_ignore_ascii_case(package)
    }
}

impl fmt::Display for EventHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.package)?;
        if let Some(id) = &self.id {
            write!(f, ";id={id}")?;
        }
        write_params(f, &self.params)
    }
}

/// `Subscription-State` (RFC 6665 §8.2.3, §4.1.3): the state a NOTIFY reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionState {
    /// `active;expires=N`: the subscription is accepted.
    Active {
        /// The remaining lifetime in seconds.
        expires: Option<u32>,
    },
    /// `pending;expires=N`: received, not yet authorized.
    Pending {
        /// The remaining lifetime in seconds.
        expires: Option<u32>,
    },
    /// `terminated;reason=R;retry-after=N`: the subscription is over (RFC 6665 §4.2.2
    /// lists the reasons: `deactivated`, `probation`, `rejected`, `timeout`, `giveup`,
    /// `noresource`, `invariant`).
    Terminated {
        /// The `reason` parameter, as written.
        reason: Option<String>,
        /// The `retry-after` parameter in seconds.
        retry_after: Option<u32>,
    },
}

impl SubscriptionState {
    /// Parses a value. Parameters other than `expires`, `reason` and `retry-after` are
    /// ignored (generic-params, RFC 6665 §8.4).
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] for a state other than `active`, `pending` and
    /// `terminated` (extension states are not used by this profile), a malformed parameter
    /// or a number that is not decimal.
    pub fn parse(value: &str) -> Result<SubscriptionState, HeaderError> {
        let invalid = |reason| HeaderError::invalid("Subscription-State", value, reason);
        let (state, params) = value.split_at(value.find(';').unwrap_or(value.len()));
        let params = parse_params(params).map_err(invalid)?;
        let number = |name: &str| match find_param(&params, name) {
            None => Ok(None),
            Some(value) => value
                .and_then(parse_delta)
                .map(Some)
                .ok_or_else(|| invalid("expires or retry-after not a decimal number")),
        };
        let state = trim_wsp(state);
        if state.eq_ignore_ascii_case("active") {
            Ok(SubscriptionState::Active {
                expires: number("expires")?,
            })
        } else if state.eq_ignore_ascii_case("pending") {
            Ok(SubscriptionState::Pending {
                expires: number("expires")?,
            })
        } else if state.eq_ignore_ascii_case("terminated") {
            Ok(SubscriptionState::Terminated {
                reason: find_param(&params, "reason").flatten().map(str::to_string),
                retry_after: number("retry-after")?,
            })
        } else {
            Err(invalid("state is not active, pending or terminated"))
        }
    }

    /// Whether the subscription is over.
    pub fn is_terminated(&self) -> bool {
        matches!(self, SubscriptionState::Terminated { .. })
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionState::Active { expires } | SubscriptionState::Pending { expires } => {
                f.write_str(if matches!(self, SubscriptionState::Active { .. }) {
                    "active"
                } else {
                    "pending"
                })?;
                if let Some(expires) = expires {
                    write!(f, ";expires={expires}")?;
                }
            }
            SubscriptionState::Terminated {
                reason,
                retry_after,
            } => {
                f.write_str("terminated")?;
                if let Some(reason) = reason {
                    write!(f, ";reason={reason}")?;
                }
                if let Some(retry_after) = retry_after {
                    write!(f, ";retry-after={retry_after}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        assert_eq!(
            CSeq::parse("0009 INVITE"),
            Ok(CSeq {
                seq: 9,
                method: Method::Invite
            })
        );
        assert_eq!(
            CSeq::parse(" 29344   RE%47IST%45R "),
            Ok(CSeq {
                seq: 29344,
                method: Method::Other("RE%47IST%45R".into())
            })
        );
        for value in [
            "",
            "1",
            "INVITE 1",
            "1 INVITE x",
            "-1 INVITE",
            "2147483648 INVITE",
            "9292394834772304023312 OPTIONS",
            "1 IN<VITE",
        ] {
            assert!(CSeq::parse(value).is_err(), "{value}");
        }
        assert!(CSeq::parse("2147483647 MESSAGE").is_ok());
        assert_eq!(
            CSeq {
                seq: 1,
                method: Method::Publish
            }
            .to_string(),
            "1 PUBLISH"
        );
    }

    #[test]
    fn event() {
        let event = EventHeader::parse("presence ; id = 7;foo").unwrap();
        assert_eq!(event.package, "presence");
        assert_eq!(event.id.as_deref(), Some("7"));
        assert_eq!(event.to_string(), "presence;id=7;foo");
        assert!(event.is("Presence"));
        assert_eq!(EventHeader::new("presence").to_string(), "presence");
        assert!(EventHeader::parse("").is_err());
        assert!(EventHeader::parse("pres ence").is_err());
        assert!(EventHeader::parse("presence;id").is_err());
    }

    #[test]
    fn subscription_state() {
        assert_eq!(
            SubscriptionState::parse("active;expires=3600"),
            Ok(SubscriptionState::Active {
                expires: Some(3600)
            })
        );
        assert_eq!(
            SubscriptionState::parse("Terminated ; reason=timeout;retry-after=5;x=y"),
            Ok(SubscriptionState::Terminated {
                reason: Some("timeout".into()),
                retry_after: Some(5)
            })
        );
        assert_eq!(
            SubscriptionState::parse("pending"),
            Ok(SubscriptionState::Pending { expires: None })
        );
        assert!(SubscriptionState::parse("waiting").is_err());
        assert!(SubscriptionState::parse("active;expires=soon").is_err());
        assert!(SubscriptionState::parse("active;expires").is_err());
        for state in [
            SubscriptionState::Active { expires: Some(1) },
            SubscriptionState::Pending { expires: None },
            SubscriptionState::Terminated {
                reason: Some("noresource".into()),
                retry_after: Some(30),
            },
            SubscriptionState::Terminated {
                reason: None,
                retry_after: None,
            },
        ] {
            assert_eq!(SubscriptionState::parse(&state.to_string()), Ok(state));
        }
    }
}
