//! RFC 3261 §20.10, §20.20, §20.39, §20.30, §20.34: `name-addr` / `addr-spec` values
//! (From, To, Contact, Route, Record-Route) with their header parameters.

use std::fmt;

use super::HeaderError;
use crate::syntax::{
    find_param, is_token_char, is_wsp, parse_delta, parse_params, quote, quoted_len, set_param,
    trim_wsp, write_params,
};
use crate::uri::Uri;

/// The name used in errors until an accessor renames them for the header read.
const NAME: &str = "name-addr";

/// `[display-name] <URI> *(;param)` or `URI *(;param)` (§25.1).
///
/// In the `addr-spec` form, without `<>`, everything after the first `;` belongs to the
/// header, not to the URI (§20.10), and the URI may not hold `,`, `;` or `?`; a URI with
/// headers or parameters therefore needs `<>` (RFC 4475 §3.1.2.13). Writing always uses
/// the `<>` form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NameAddr {
    /// The display name, unquoted (quoted-pairs resolved) or the tokens as written.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`, `lr` on Route is a *URI* parameter),
    /// as written.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// Parses a value.
    ///
    /// Lenient where RFC 4475 asks it (§3.1.1.6: no space before `<`) and strict where it
    /// asks that (§3.1.2.6 an unterminated quote, §3.1.2.14 spaces inside `<>`, §3.1.2.15
    /// a display name that is neither tokens nor a quoted string).
    ///
    /// # Errors
    /// [`HeaderError::Invalid`] or [`HeaderError::Uri`] (named `name-addr`; the message
    /// accessors name the header).
    pub fn parse(value: &str) -> Result<NameAddr, HeaderError> {
        let text = trim_wsp(value);
        let invalid = |reason| HeaderError::invalid(NAME, value, reason);
        let uri_error = |source| HeaderError::Uri {
            name: NAME,
            value: value.to_string(),
            source,
        };
        let (display, rest) = if text.starts_with('"') {
            let end =
                quoted_len(text).ok_or_else(|| invalid("unterminated quoted display name"))?;
            let display = crate::syntax::unquote(&text[..end]).into_owned();
            let rest = trim_wsp(&text[end..]);
            if !rest.starts_with('<') {
                return Err(invalid("display name without <URI>"));
            }
            (Some(display), rest)
        } else if let Some(at) = text.find('<') {
            let words = trim_wsp(&text[..at]);
            if !words.chars().all(|c| is_token_char(c) || is_wsp(c)) {
                return Err(invalid("display name neither tokens nor a quoted string"));
            }
            ((!words.is_empty()).then(|| words.to_string()), &text[at..])
        } else {
            // addr-spec: the header's parameters start at the first `;`.
            let (uri_text, params) = text.split_at(text.find(';').unwrap_or(text.len()));
            let uri_text = trim_wsp(uri_text);
            if uri_text.contains([',', '?', ' ', '\t']) {
                return Err(invalid("a URI with ',', '?' or spaces needs <>"));
            }
            let uri = Uri::parse(uri_text).map_err(uri_error)?;
            let params = parse_params(params).map_err(invalid)?;
            return Ok(NameAddr {
                display: None,
                uri,
                params,
            });
        };
        let inner_end = rest.find('>').ok_or_else(|| invalid("'<' without '>'"))?;
        let uri_text = &rest[1..inner_end];
        if uri_text.starts_with(is_wsp) || uri_text.ends_with(is_wsp) {
            return Err(invalid("whitespace inside <>"));
        }
        let uri = Uri::parse(uri_text).map_err(uri_error)?;
        let params = parse_params(&rest[inner_end + 1..]).map_err(invalid)?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    /// `<uri>` with no display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    /// This value with a display name.
    pub fn with_display(mut self, display: &str) -> NameAddr {
        self.display = Some(display.to_string());
        self
    }

    /// The `tag` parameter (§19.3).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// This value with `tag` set (replacing any).
    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        set_param(&mut self.params, "tag", Some(tag));
        self
    }

    /// This value with header parameter `name` set (replacing one of that name).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> NameAddr {
        set_param(&mut self.params, name, value);
        self
    }

    /// Header parameter `name` (case-insensitive): `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    /// The `expires` parameter of a Contact (§20.10) in seconds; `None` when absent or not
    /// a number.
    pub fn expires(&self) -> Option<u32> {
        self.param("expires").flatten().and_then(parse_delta)
    }
}

/// `"display" <uri>;params` (the display name always quoted), or `<uri>;params`.
impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write!(f, "{} ", quote(display))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let value = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>  ;  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(value.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(value.uri.to_string(), "sip:jdrosen@example.com");
        assert_eq!(value.tag(), Some("98asjd8"));

        let value =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(
            (value.display.as_deref(), value.tag()),
            (None, Some("1918181833n"))
        );

        let value = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(value.display.as_deref(), Some("caller"));

        let value = NameAddr::parse(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.",
        )
        .unwrap();
        assert_eq!(
            value.display.as_deref(),
            Some("token1~` token2'+_ token3*%!.-")
        );
        assert_eq!(value.tag(), Some("_token~1'+`*%!-."));

        let value =
            NameAddr::parse("<sip:services.example.com;lr;unknownwith=value;unknown-no-value>")
                .unwrap();
        assert!(value.uri.is_loose_router());
        assert!(value.params.is_empty());

        let value = NameAddr::parse("sip:alice@atlanta.com;expires=3600;q=0.7").unwrap();
        assert!(value.uri.params.is_empty());
        assert_eq!(value.expires(), Some(3600));
        assert_eq!(
            value.to_string(),
            "<sip:alice@atlanta.com>;expires=3600;q=0.7"
        );
    }

    #[test]
    fn rfc4475_invalid_forms() {
        for value in [
            "\"Mr. J. User <sip:j.user@example.com>",
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b",
            "\"x\" sip:a@b",
            "<sip:a@b>;tag=1;",
            "<sip:a@b> junk",
            "<http://example.com>",
        ] {
            assert!(NameAddr::parse(value).is_err(), "{value}");
        }
        assert!(matches!(
            NameAddr::parse("<tel:+1234>"),
            Err(HeaderError::Uri { .. })
        ));
    }

    #[test]
    fn builders_and_display() {
        let value = NameAddr::new(Uri::new(Some("bob"), "biloxi.com"))
            .with_display("Bob \"B\"")
            .with_tag("a6c85cf")
            .with_param("expires", Some("10"));
        let text = value.to_string();
        assert_eq!(
            text,
            "\"Bob \\\"B\\\"\" <sip:bob@biloxi.com>;tag=a6c85cf;expires=10"
        );
        assert_eq!(NameAddr::parse(&text), Ok(value.clone()));
        assert_eq!(value.with_tag("x").tag(), Some("x"));
    }
}
