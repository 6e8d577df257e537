//! RVP §4, §5.7 and §9: the XML namespaces of RVP bodies, matched by URI, never by prefix.
//!
//! Real peers use the prefixes `d:`, `r:` and `a:`, the specification's examples `D:`,
//! `Z:` and `A:`; what counts is the URI. The examples also write the ACL namespace as
//! `http://schemas.Microsoft.com/rvp/acl` (other case, no trailing slash), so URIs are
//! compared without regard to ASCII case and to one trailing `/`.

/// The WebDAV namespace (RFC 2518 §23).
pub const DAV: &str = "DAV:";
/// The RVP namespace (§4).
pub const RVP: &str = "http://schemas.microsoft.com/rvp/";
/// The RVP ACL namespace (§5.7).
pub const ACL: &str = "http://schemas.microsoft.com/rvp/acl/";

/// A namespace, as far as RVP is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ns {
    /// `DAV:`.
    Dav,
    /// `http://schemas.microsoft.com/rvp/`.
    Rvp,
    /// `http://schemas.microsoft.com/rvp/acl/`.
    Acl,
    /// Any other namespace, or none.
    Other,
}

impl Ns {
    /// Classifies a namespace URI, ignoring ASCII case and one trailing `/`.
    pub fn of(uri: &str) -> Ns {
        let trimmed = |text: &str| text.strip_suffix('/').unwrap_or(text).to_string();
        let uri = trimmed(uri);
        [(DAV, Ns::Dav), (RVP, Ns::Rvp), (ACL, Ns::Acl)]
            .into_iter()
            .find(|(known, _)| trimmed(known).eq_ignore_ascii_case(&uri))
            .map_or(Ns::Other, |(_, ns)| ns)
    }

    /// The canonical URI, `None` for [`Ns::Other`].
    pub fn uri(self) -> Option<&'static str> {
        match self {
            Ns::Dav => Some(DAV),
            Ns::Rvp => Some(RVP),
            Ns::Acl => Some(ACL),
            Ns::Other => None,
        }
    }

    /// The prefix this crate writes for the namespace.
    pub(crate) fn prefix(self) -> Option<&'static str> {
        match self {
            Ns::Dav => Some("d"),
            Ns::Rvp => Some("r"),
            Ns::Acl => Some("a"),
            Ns::Other => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_recognized() {
        assert_eq!(Ns::of("DAV:"), Ns::Dav);
        assert_eq!(Ns::of("dav:"), Ns::Dav);
        assert_eq!(Ns::of("http://schemas.microsoft.com/rvp/"), Ns::Rvp);
        assert_eq!(Ns::of("http://schemas.microsoft.com/rvp"), Ns::Rvp);
        assert_eq!(Ns::of("http://schemas.Microsoft.com/rvp/acl"), Ns::Acl);
        assert_eq!(Ns::of("http://schemas.microsoft.com/rvp/acl/"), Ns::Acl);
        assert_eq!(Ns::of("http://schemas.microsoft.com/rvp//"), Ns::Other);
        assert_eq!(Ns::of("urn:x"), Ns::Other);
        assert_eq!(Ns::of(""), Ns::Other);
    }

    #[test]
    fn canonical_uris() {
        for ns in [Ns::Dav, Ns::Rvp, Ns::Acl] {
            assert_eq!(Ns::of(ns.uri().unwrap()), ns);
        }
        assert_eq!(Ns::Other.uri(), None);
    }
}
