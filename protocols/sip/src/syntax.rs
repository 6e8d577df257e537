//! RFC 3261 §25.1: the lexical rules the header parsers share (token, quoted-string, LWS,
//! generic-param, comma-separated lists).
//!
//! Values reach these functions unfolded (the codec replaces every CRLF + whitespace
//! continuation with one space, §7.3.1), so linear whitespace is only SP and HTAB here.

use std::borrow::Cow;

/// `token` characters (§25.1): alphanumerics and `-.!%*_+`'~`.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `text` is a non-empty `token`.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_token_char)
}

/// SP or HTAB (what linear whitespace is once a value is unfolded).
pub(crate) fn is_wsp(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `text` with leading and trailing SP/HTAB removed.
pub(crate) fn trim_wsp(text: &str) -> &str {
    text.trim_matches(is_wsp)
}

/// The byte length of the quoted-string at the start of `text` (which starts with `"`),
/// closing quote included, or `None` if it is not terminated.
pub(crate) fn quoted_len(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(at + 1),
            _ => {}
        }
    }
    None
}

/// The content of a quoted-string (`"a\"b"` → `a"b`), quoted-pairs resolved; text that
/// is not a complete quoted-string is returned as it is.
pub fn unquote(text: &str) -> Cow<'_, str> {
    if !text.starts_with('"') || quoted_len(text) != Some(text.len()) {
        return Cow::Borrowed(text);
    }
    let inner = &text[1..text.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` as a quoted-string, `"` and `\` escaped (§25.1 quoted-pair).
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits a list header's value at the commas that separate its elements (§7.3.1): not
/// those inside a quoted-string or `<...>`. Elements are trimmed; empty ones are kept (a
/// value like `a, , b` is malformed and its element parser says so), but an empty or
/// all-blank value has no elements. An unterminated quote or `<` runs to the end.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    if trim_wsp(value).is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    let mut in_angle = false;
    for (at, c) in value.char_indices() {
        if in_quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            ',' if !in_angle => {
                out.push(trim_wsp(&value[start..at]));
                start = at + 1;
            }
            _ => {}
        }
    }
    out.push(trim_wsp(&value[start..]));
    out
}

/// Whether a generic-param value is acceptable unquoted: `token`, a host (with `:` and
/// brackets, for `received=2001:db8::1` and `maddr=[::1]`).
fn is_param_value(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| is_token_char(c) || ":[]".contains(c))
}

/// Parses `*( SEMI generic-param )` (§25.1), LWS allowed around `;` and `=`: names must be
/// tokens; values are tokens, hosts or quoted-strings, kept as written (quotes included).
/// `text` is empty or starts with `;`.
pub(crate) fn parse_params(text: &str) -> Result<Vec<(String, Option<String>)>, &'static str> {
    let mut params = Vec::new();
    let mut rest = trim_wsp(text);
    while !rest.is_empty() {
        rest = trim_wsp(
            rest.strip_prefix(';')
                .ok_or("expected ';' before a parameter")?,
        );
        let name_len = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() {
            return Err("empty parameter name");
        }
        rest = trim_wsp(&rest[name_len..]);
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = trim_wsp(after);
            let value_len = if after.starts_with('"') {
                quoted_len(after).ok_or("unterminated quoted parameter value")?
            } else {
                after.find([';', ' ', '\t']).unwrap_or(after.len())
            };
            let value = &after[..value_len];
            if !value.starts_with('"') && !is_param_value(value) {
                return Err("malformed parameter value");
            }
            rest = trim_wsp(&after[value_len..]);
            Some(value.to_string())
        } else {
            None
        };
        params.push((name.to_string(), value));
    }
    Ok(params)
}

/// The first parameter named `name` (case-insensitive, §7.3.1).
pub(crate) fn find_param<'a>(
    params: &'a [(String, Option<String>)],
    name: &str,
) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_deref())
}

/// Replaces the first parameter named `name` (case-insensitive) or appends it.
pub(crate) fn set_param(
    params: &mut Vec<(String, Option<String>)>,
    name: &str,
    value: Option<&str>,
) {
    let value = value.map(str::to_string);
    match params
        .iter_mut()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
    {
        Some(param) => param.1 = value,
        None => params.push((name.to_string(), value)),
    }
}

/// Writes `;name[=value]` for each parameter.
pub(crate) fn write_params(
    f: &mut std::fmt::Formatter<'_>,
    params: &[(String, Option<String>)],
) -> std::fmt::Result {
    for (name, value) in params {
        match value {
            Some(value) => write!(f, ";{name}={value}")?,
            None => write!(f, ";{name}")?,
        }
    }
    Ok(())
}

/// `delta-seconds` (§25.1: `1*DIGIT`); a value past 2^32-1 saturates (RFC 3261 §20.19
/// bounds Expires at that, and a receiver clamps it anyway).
pub(crate) fn parse_delta(text: &str) -> Option<u32> {
    let text = trim_wsp(text);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u32>().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_outside_quotes_and_angles() {
        assert_eq!(
            split_list(r#""a, \"b" <sip:x;y=1,2>;q=1 , <sip:z>"#),
            vec![r#""a, \"b" <sip:x;y=1,2>;q=1"#, "<sip:z>"]
        );
        assert_eq!(split_list("a,,b"), vec!["a", "", "b"]);
        assert!(split_list("  ").is_empty());
        assert_eq!(split_list("\"open, ended"), vec!["\"open, ended"]);
    }

    #[test]
    fn params_allow_lws_and_keep_quotes() {
        assert_eq!(
            parse_params(" ;   tag    = 1918181833n ; lr;x=\"a;b\";received=2001:db8::1"),
            Ok(vec![
                ("tag".into(), Some("1918181833n".into())),
                ("lr".into(), None),
                ("x".into(), Some("\"a;b\"".into())),
                ("received".into(), Some("2001:db8::1".into())),
            ])
        );
        assert!(parse_params(";").is_err());
        assert!(parse_params(";a=").is_err());
        assert!(parse_params(";a=\"x").is_err());
        assert!(parse_params("x").is_err());
        assert!(parse_params(";a=b c").is_err());
    }

    #[test]
    fn quoting_round_trips() {
        assert_eq!(unquote(&quote("a\"b\\c")), "a\"b\\c");
        assert_eq!(unquote("plain"), "plain");
        assert_eq!(unquote("\"open"), "\"open");
        assert_eq!(parse_delta("0099"), Some(99));
        assert_eq!(parse_delta("99999999999999999999"), Some(u32::MAX));
        assert_eq!(parse_delta("-1"), None);
        assert_eq!(parse_delta(""), None);
    }
}
