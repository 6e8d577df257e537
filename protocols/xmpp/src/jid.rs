//! RFC 7622: XMPP addresses (JIDs), `[localpart@]domainpart[/resourcepart]`, prepared
//! and enforced so that equal addresses compare equal as strings.
//!
//! - localpart: PRECIS `UsernameCaseMapped` (RFC 8265 §3.3), then the eight characters
//!   RFC 7622 §3.3.1 forbids are rejected;
//! - domainpart: one trailing dot stripped; IP literals (`[IPv6]`, dotted IPv4) kept; other
//!   names validated with UTS-46 ToASCII (with the URL forbidden-code-point list, so `_`
//!   is accepted as in many deployments, but spaces, `%`, `:` and the like are not; no
//!   DNS length check, the 1023-octet limit applies instead) and stored in their
//!   lowercase Unicode form (ToUnicode of the validated ASCII);
//! - resourcepart: PRECIS `OpaqueString` (RFC 8265 §4.2), case preserved.
//!
//! Each part must be 1 to 1023 octets after preparation (RFC 7622 §3.2, §3.3, §3.4).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::AsciiDenyList;
use idna::uts46::{DnsLength, Hyphens, Uts46};
use precis_core::profile::PrecisFastInvocation;
use precis_profiles::{OpaqueString, UsernameCaseMapped};

/// The longest a prepared part may be, in octets (RFC 7622 §3.2, §3.3, §3.4).
pub const MAX_PART_BYTES: usize = 1023;

/// Characters RFC 7622 §3.3.1 forbids in a localpart even though PRECIS allows them.
const LOCALPART_FORBIDDEN: [char; 8] = ['"', '&', '\'', '/', ':', '<', '>', '@'];

/// Which part of a JID an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JidPart {
    /// The part before `@`.
    Local,
    /// The part between `@` and `/`.
    Domain,
    /// The part after `/`.
    Resource,
}

impl fmt::Display for JidPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JidPart::Local => "localpart",
            JidPart::Domain => "domainpart",
            JidPart::Resource => "resourcepart",
        })
    }
}

/// Why a string is not a valid JID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    /// The part is empty (for local and resource parts: the separator is present but
    /// nothing follows or precedes it).
    #[error("empty {part}")]
    Empty {
        /// The part that is empty.
        part: JidPart,
    },
    /// The part is longer than [`MAX_PART_BYTES`] after preparation.
    #[error("{part} is {len} octets, more than {max}")]
    TooLong {
        /// The part that is too long.
        part: JidPart,
        /// Its length after preparation.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The localpart contains one of the characters RFC 7622 §3.3.1 forbids.
    #[error("localpart contains forbidden character {character:?}")]
    ForbiddenCharacter {
        /// The offending character (after preparation).
        character: char,
    },
    /// The PRECIS profile rejected the part (disallowed code point, bidi rule, ...).
    #[error("{part} rejected by PRECIS: {reason}")]
    Precis {
        /// The local or resource part.
        part: JidPart,
        /// The PRECIS error, as text.
        reason: String,
    },
    /// The domainpart is not a valid internationalized domain name or IP literal.
    #[error("invalid domainpart {domain:?}: {reason}")]
    InvalidDomain {
        /// The domainpart as given.
        domain: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// An XMPP address (RFC 7622), stored in prepared form: two JIDs are equal exactly when
/// their parts are equal after preparation.
///
/// Ordering is by localpart, then domainpart, then resourcepart (field order), which
/// groups a user's full JIDs together; it is not the order of the [`Display`] strings.
///
/// [`Display`]: fmt::Display
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Jid {
    local: Option<String>,
    domain: String,
    resource: Option<String>,
}

impl Jid {
    /// Parses and prepares `s` (RFC 7622 §3.1: the resourcepart is everything after the
    /// first `/`, the localpart everything before the first `@` preceding it).
    ///
    /// # Errors
    ///
    /// [`JidError`] naming the part that is empty, too long or invalid.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let (rest, resource) = match s.split_once('/') {
            Some((rest, resource)) => (rest, Some(resource)),
            None => (s, None),
        };
        let (local, domain) = match rest.split_once('@') {
            Some((local, domain)) => (Some(local), domain),
            None => (None, rest),
        };
        Jid::new(local, domain, resource)
    }

    /// Builds a JID from its parts, preparing each one. `Some("")` for the local or
    /// resource part is an error, as for `@example.com` or `example.com/`.
    ///
    /// # Errors
    ///
    /// [`JidError`] naming the part that is empty, too long or invalid.
    pub fn new(local: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Jid, JidError> {
        Ok(Jid {
            local: local.map(prepare_local).transpose()?,
            domain: prepare_domain(domain)?,
            resource: resource.map(prepare_resource).transpose()?,
        })
    }

    /// A JID for a bare domain (a server or service).
    ///
    /// # Errors
    ///
    /// [`JidError`] if `domain` is not a valid domainpart.
    pub fn domain_jid(domain: &str) -> Result<Jid, JidError> {
        Jid::new(None, domain, None)
    }

    /// The prepared localpart.
    pub fn local(&self) -> Option<&str> {
        self.local.as_deref()
    }

    /// The prepared domainpart.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The prepared resourcepart.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// This JID without its resourcepart.
    pub fn bare(&self) -> Jid {
        Jid {
            local: self.local.clone(),
            domain: self.domain.clone(),
            resource: None,
        }
    }

    /// The bare form of this JID with `resource` as resourcepart.
    ///
    /// # Errors
    ///
    /// [`JidError`] if `resource` is empty, too long or rejected by `OpaqueString`.
    pub fn with_resource(&self, resource: &str) -> Result<Jid, JidError> {
        Ok(Jid {
            local: self.local.clone(),
            domain: self.domain.clone(),
            resource: Some(prepare_resource(resource)?),
        })
    }

    /// Whether this JID has no resourcepart.
    pub fn is_bare(&self) -> bool {
        self.resource.is_none()
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(local) = &self.local {
            write!(f, "{local}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(resource) = &self.resource {
            write!(f, "/{resource}")?;
        }
        Ok(())
    }
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jid::parse(s)
    }
}

fn check_len(part: JidPart, prepared: &str) -> Result<(), JidError> {
    match prepared.len() {
        0 => Err(JidError::Empty { part }),
        len if len > MAX_PART_BYTES => Err(JidError::TooLong {
            part,
            len,
            max: MAX_PART_BYTES,
        }),
        _ => Ok(()),
    }
}

fn precis_error(part: JidPart, input: &str, error: &precis_core::Error) -> JidError {
    if input.is_empty() {
        JidError::Empty { part }
    } else {
        JidError::Precis {
            part,
            reason: error.to_string(),
        }
    }
}

fn prepare_local(local: &str) -> Result<String, JidError> {
    // Bound the work PRECIS does on hostile input: width mapping and NFC shrink text by
    // at most a factor of three, so input over four times the limit can never fit.
    guard_input(JidPart::Local, local)?;
    let prepared = UsernameCaseMapped::enforce(local)
        .map_err(|error| precis_error(JidPart::Local, local, &error))?;
    // RFC 8264 §7: what enforcement outputs must itself conform to the profile. NFC can
    // compose allowed code points into one it disallows ('=' and U+0338 make U+2260 '≠'),
    // and such a JID would not parse again.
    UsernameCaseMapped::enforce(prepared.as_ref())
        .map_err(|error| precis_error(JidPart::Local, local, &error))?;
    if let Some(character) = prepared.chars().find(|c| LOCALPART_FORBIDDEN.contains(c)) {
        return Err(JidError::ForbiddenCharacter { character });
    }
    check_len(JidPart::Local, &prepared)?;
    Ok(prepared.into_owned())
}

fn prepare_resource(resource: &str) -> Result<String, JidError> {
    guard_input(JidPart::Resource, resource)?;
    let prepared = OpaqueString::enforce(resource)
        .map_err(|error| precis_error(JidPart::Resource, resource, &error))?;
    // RFC 8264 §7, as for the localpart.
    OpaqueString::enforce(prepared.as_ref())
        .map_err(|error| precis_error(JidPart::Resource, resource, &error))?;
    check_len(JidPart::Resource, &prepared)?;
    Ok(prepared.into_owned())
}

/// Rejects input so long that no preparation could bring it within the limit.
fn guard_input(part: JidPart, input: &str) -> Result<(), JidError> {
    let len = input.len();
    if len > 4 * MAX_PART_BYTES {
        return Err(JidError::TooLong {
            part,
            len,
            max: MAX_PART_BYTES,
        });
    }
    Ok(())
}

fn prepare_domain(domain: &str) -> Result<String, JidError> {
    guard_input(JidPart::Domain, domain)?;
    // RFC 7622 §3.2: a single trailing dot is removed before any other processing.
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() {
        return Err(JidError::Empty {
            part: JidPart::Domain,
        });
    }
    let invalid = |reason: &str| JidError::InvalidDomain {
        domain: domain.to_string(),
        reason: reason.to_string(),
    };
    if let Some(inner) = name.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| invalid("unterminated IPv6 literal"))?;
        let address: Ipv6Addr = inner.parse().map_err(|_| invalid("invalid IPv6 literal"))?;
        return Ok(format!("[{address}]"));
    }
    if name.parse::<Ipv4Addr>().is_ok() {
        return Ok(name.to_string());
    }
    if name.split('.').any(str::is_empty) {
        return Err(invalid("empty label"));
    }
    let uts46 = Uts46::new();
    let ascii = uts46
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::URL,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map_err(|_| invalid("not a valid internationalized domain name"))?;
    let (unicode, result) = uts46.to_unicode(ascii.as_bytes(), AsciiDenyList::URL, Hyphens::Allow);
    result.map_err(|_| invalid("not a valid internationalized domain name"))?;
    let unicode = unicode.into_owned();
    // Mapping may leave an empty label the raw text did not show ("a.\u{FE00}": the
    // variation selector is removed, the dot stays). Such a domain would read back as
    // another one (its trailing dot stripped): refuse it. Found by fuzzing (fuzz/jid).
    if unicode.split('.').any(str::is_empty) {
        return Err(invalid("empty label after mapping"));
    }
    // The prepared form must prepare to itself: an A-label is valid only if the U-label it
    // decodes to is (RFC 5891 §5.4). "xn--xn---pII-pII" decodes to a label that itself
    // starts with "xn--", which no longer converts. Found by fuzzing (fuzz/jid).
    let again = uts46.to_ascii(
        unicode.as_bytes(),
        AsciiDenyList::URL,
        Hyphens::Allow,
        DnsLength::Ignore,
    );
    if again.ok().as_deref() != Some(ascii.as_ref()) {
        return Err(invalid("it decodes to a name that is not valid itself"));
    }
    check_len(JidPart::Domain, &unicode)?;
    Ok(unicode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).unwrap_or_else(|error| panic!("{s}: {error}"))
    }

    /// A regression from fuzzing (protocols/xmpp/fuzz, target jid): a dot followed by a
    /// character that mapping removes left a trailing dot, so the JID did not read back as
    /// itself.
    #[test]
    fn a_label_emptied_by_mapping_is_refused() {
        for text in ["réunion.\u{FE00}", "a.\u{FE00}.b", "x.\u{FE00}.\u{FE00}"] {
            assert!(
                matches!(Jid::parse(text), Err(JidError::InvalidDomain { .. })),
                "{text:?}: {:?}",
                Jid::parse(text)
            );
        }
        assert_eq!(jid("réunion.").domain(), "réunion");
    }

    /// A regression from fuzzing (target jid): an A-label whose U-label starts with "xn--"
    /// was taken, and its prepared form did not parse again.
    #[test]
    fn an_a_label_that_decodes_to_an_invalid_name_is_refused() {
        let text = "xn--xn---pII-pII";
        assert!(
            matches!(Jid::parse(text), Err(JidError::InvalidDomain { .. })),
            "{:?}",
            Jid::parse(text)
        );
        assert_eq!(jid("xn--rsum-bpad.example").domain(), "résumé.example");
    }

    /// A regression from fuzzing (protocols/xmpp/fuzz, target jid): NFC composed two
    /// allowed code points of a localpart ('=' and U+0338) into one UsernameCaseMapped
    /// disallows (U+2260 '≠'), so the prepared JID did not parse again. The same holds for
    /// a resource under OpaqueString, which allows '≠': there the JID must read back.
    #[test]
    fn a_part_that_normalization_makes_invalid_is_refused() {
        let composed = "a=\u{0338}b@example.com";
        assert!(
            matches!(Jid::parse(composed), Err(JidError::Precis { .. })),
            "{:?}",
            Jid::parse(composed)
        );
        let resource = jid("a@example.com/=\u{0338}");
        assert_eq!(resource.resource(), Some("≠"));
        assert_eq!(jid(&resource.to_string()), resource);
    }

    #[test]
    fn parts_and_display() {
        let full = jid("juliet@example.com/balcony");
        assert_eq!(full.local(), Some("juliet"));
        assert_eq!(full.domain(), "example.com");
        assert_eq!(full.resource(), Some("balcony"));
        assert!(!full.is_bare());
        assert_eq!(full.to_string(), "juliet@example.com/balcony");
        assert_eq!(full.bare().to_string(), "juliet@example.com");
        assert!(full.bare().is_bare());
        assert_eq!(
            full.bare().with_resource("chamber").map(|j| j.to_string()),
            Ok("juliet@example.com/chamber".to_string())
        );
        assert_eq!(jid("example.com").to_string(), "example.com");
        assert_eq!(jid("example.com/x").local(), None);
        assert_eq!("a@b.test".parse::<Jid>(), Ok(jid("a@b.test")));
    }

    #[test]
    fn localpart_and_domain_are_case_folded_resource_is_not() {
        assert_eq!(jid("Juliet@Example.COM").to_string(), "juliet@example.com");
        assert_eq!(
            jid("Juliet@Example.COM/Balcony").to_string(),
            "juliet@example.com/Balcony"
        );
        assert_eq!(jid("JULIET@example.com"), jid("juliet@example.com"));
        assert_ne!(jid("a@example.com/R"), jid("a@example.com/r"));
    }

    #[test]
    fn resource_is_everything_after_the_first_slash() {
        let j = jid("juliet@example.com/foo/bar@baz");
        assert_eq!(j.resource(), Some("foo/bar@baz"));
        assert_eq!(j.local(), Some("juliet"));
        let j = jid("example.com/a@b");
        assert_eq!(j.local(), None);
        assert_eq!(j.resource(), Some("a@b"));
    }

    #[test]
    fn unicode_parts() {
        let romeo = jid("ρομέο@example.net");
        assert_eq!(romeo.local(), Some("ρομέο"));
        assert_eq!(jid("ΡΟΜΈΟ@example.net"), romeo);
        assert_eq!(jid("juliet@example.com/♚").resource(), Some("♚"));
        assert_eq!(jid("x@Bücher.Example").domain(), "bücher.example");
        assert_eq!(jid("x@xn--bcher-kva.example").domain(), "bücher.example");
    }

    #[test]
    fn fullwidth_localpart_is_width_mapped() {
        // U+FF2A U+FF55 U+FF4C: fullwidth "Jul", mapped to "jul" by UsernameCaseMapped.
        assert_eq!(
            jid("\u{FF2A}\u{FF55}\u{FF4C}@example.com").local(),
            Some("jul")
        );
        // A fullwidth '@' is mapped to '@', which the localpart may not contain.
        assert_eq!(
            Jid::new(Some("a\u{FF20}b"), "example.com", None),
            Err(JidError::ForbiddenCharacter { character: '@' })
        );
    }

    #[test]
    fn forbidden_localpart_characters() {
        for c in LOCALPART_FORBIDDEN {
            let local = format!("a{c}b");
            assert_eq!(
                Jid::new(Some(&local), "example.com", None),
                Err(JidError::ForbiddenCharacter { character: c }),
                "{local}"
            );
        }
        assert!(matches!(
            Jid::parse("a b@example.com"),
            Err(JidError::Precis {
                part: JidPart::Local,
                ..
            })
        ));
        assert!(matches!(
            Jid::parse("a@example.com/\u{7}"),
            Err(JidError::Precis {
                part: JidPart::Resource,
                ..
            })
        ));
    }

    #[test]
    fn empty_parts() {
        for (input, part) in [
            ("", JidPart::Domain),
            ("@example.com", JidPart::Local),
            ("juliet@example.com/", JidPart::Resource),
            ("juliet@", JidPart::Domain),
            ("juliet@/r", JidPart::Domain),
            ("/r", JidPart::Domain),
            (".", JidPart::Domain),
        ] {
            assert_eq!(
                Jid::parse(input),
                Err(JidError::Empty { part }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn length_limits() {
        let max = "a".repeat(MAX_PART_BYTES);
        assert!(Jid::new(Some(&max), "example.com", Some(&max)).is_ok());
        let over = "a".repeat(MAX_PART_BYTES + 1);
        for (local, resource, part) in [
            (Some(over.as_str()), None, JidPart::Local),
            (None, Some(over.as_str()), JidPart::Resource),
        ] {
            assert_eq!(
                Jid::new(local, "example.com", resource),
                Err(JidError::TooLong {
                    part,
                    len: MAX_PART_BYTES + 1,
                    max: MAX_PART_BYTES
                })
            );
        }
        let labels = vec!["a".repeat(63); 16].join(".");
        assert_eq!(labels.len(), 1023);
        assert!(Jid::domain_jid(&labels).is_ok());
        let labels = format!("b{labels}");
        assert!(matches!(
            Jid::domain_jid(&labels),
            Err(JidError::TooLong {
                part: JidPart::Domain,
                ..
            })
        ));
        assert!(matches!(
            Jid::parse(&"x".repeat(100_000)),
            Err(JidError::TooLong { .. })
        ));
    }

    #[test]
    fn domain_forms() {
        assert_eq!(jid("example.com.").domain(), "example.com");
        assert_eq!(jid("a@192.0.2.1/r").domain(), "192.0.2.1");
        assert_eq!(jid("a@[2001:DB8::1]/r").domain(), "[2001:db8::1]");
        assert_eq!(jid("localhost").domain(), "localhost");
        assert_eq!(jid("a@My_Host.test").domain(), "my_host.test");
        for bad in [
            "example..com",
            "exa mple.com",
            "[::1",
            "[nope]",
            "example.com..",
            "a@b@c",
            "ex%ample.com",
        ] {
            assert!(
                matches!(Jid::parse(bad), Err(JidError::InvalidDomain { .. })),
                "{bad}: {:?}",
                Jid::parse(bad)
            );
        }
    }

    #[test]
    fn errors_display_the_part() {
        assert_eq!(
            Jid::parse("@x.test").unwrap_err().to_string(),
            "empty localpart"
        );
    }
}
