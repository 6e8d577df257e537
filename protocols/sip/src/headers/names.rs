//! RFC 3261 §7.3.1, §7.3.3, §20: header field names, their compact forms, and which ones
//! are comma-separated lists.

use std::borrow::Cow;

/// Compact forms (RFC 3261 §7.3.3 and the extensions that define one: RFC 6665 §8.2.1
/// `o`/`u`, RFC 3515 `r`, RFC 3892 `b`, RFC 3841 `a`/`j`/`d`, RFC 4028 `x`, RFC 4474
/// `y`/`n`).
const COMPACT: [(char, &str); 20] = [
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', "Content-Type"),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', "From"),
    ('i', "Call-ID"),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', "Content-Length"),
    ('m', "Contact"),
    ('n', "Identity-Info"),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', "To"),
    ('u', "Allow-Events"),
    ('v', "Via"),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Canonical spellings of the header fields of RFC 3261 §20 and of the extensions this
/// profile meets (RFC 3903 SIP-ETag/SIP-If-Match, RFC 6665 Event/Subscription-State...).
const CANONICAL: [&str; 66] = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "Min-SE",
    "MIME-Version",
    "Organization",
    "P-Asserted-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "Accept-Resource-Priority",
];

/// Headers whose value is a comma-separated list (`#element` in §25.1), so that several
/// lines of the header and one line with commas mean the same (§7.3.1). The
/// authentication headers are not here: their commas separate directives, not values.
const LISTS: [&str; 22] = [
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Call-Info",
    "Contact",
    "Content-Encoding",
    "Content-Language",
    "Error-Info",
    "In-Reply-To",
    "Path",
    "Proxy-Require",
    "Record-Route",
    "Require",
    "Route",
    "Service-Route",
    "Supported",
    "Unsupported",
    "Via",
    "Warning",
];

/// The canonical name of a header: a compact form expanded (`v` → `Via`), a known name in
/// its usual spelling (`call-id` → `Call-ID`, `cseq` → `CSeq`); an unknown name as it is
/// given (names are case-insensitive, §7.3.1, so compare the result ignoring case).
pub fn canonical_name(name: &str) -> Cow<'_, str> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && let Some((_, full)) = COMPACT
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(&c))
    {
        return Cow::Borrowed(full);
    }
    match CANONICAL
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
    {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Borrowed(name),
    }
}

/// The compact form of a header, if it has one (`Via` → `v`).
pub fn compact_name(name: &str) -> Option<char> {
    let canonical = canonical_name(name);
    COMPACT
        .iter()
        .find(|(_, full)| full.eq_ignore_ascii_case(&canonical))
        .map(|(short, _)| *short)
}

/// Whether two header names mean the same header (case-insensitive, compact forms equal
/// to their long forms).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || canonical_name(a).eq_ignore_ascii_case(&canonical_name(b))
}

/// Whether `name` is a comma-separated list header (see [`Headers::get_all`](super::Headers::get_all)).
pub fn is_list(name: &str) -> bool {
    let canonical = canonical_name(name);
    LISTS
        .iter()
        .any(|list| list.eq_ignore_ascii_case(&canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_canonical_forms() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("call-id"), "Call-ID");
        assert_eq!(canonical_name("CSEQ"), "CSeq");
        assert_eq!(canonical_name("o"), "Event");
        assert_eq!(canonical_name("sip-etag"), "SIP-ETag");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
        assert_eq!(canonical_name("q"), "q");
        assert_eq!(compact_name("contact"), Some('m'));
        assert_eq!(compact_name("CSeq"), None);
        assert!(same_name("l", "content-length"));
        assert!(same_name("MaX-fOrWaRdS", "Max-Forwards"));
        assert!(!same_name("C%6Fntact", "Contact"));
        assert!(is_list("v") && is_list("record-route") && !is_list("To"));
        assert!(!is_list("WWW-Authenticate"));
        for name in CANONICAL {
            assert_eq!(canonical_name(&name.to_ascii_lowercase()), name);
        }
    }
}
