//! RFC 3261 §7.1–§7.3: the start line and the header lines of a message head.

use super::{Limits, ParseError};
use crate::headers::{Headers, same_name};
use crate::message::{Message, Method, Request, Response};
use crate::syntax::is_token;
use crate::uri::{Uri, UriError};

/// A parsed start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StartLine {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
}

impl StartLine {
    pub(crate) fn into_message(self, headers: Headers, body: Vec<u8>) -> Message {
        match self {
            StartLine::Request { method, uri } => Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }),
            StartLine::Response { status, reason } => Message::Response(Response {
                status,
                reason,
                headers,
                body,
            }),
        }
    }
}

/// Where the head ends in `bytes` (which starts at the start line): the length of the
/// head with its last line end, and that plus the empty line. The search starts at
/// `from` (so that a stream can resume where it stopped).
pub(crate) fn find_head_end(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(offset) = bytes.get(at..)?.iter().position(|b| *b == b'\n') {
        let lf = at + offset;
        let after = &bytes[lf + 1..];
        if after.starts_with(b"\r\n") {
            return Some((lf + 1, lf + 3));
        }
        if after.starts_with(b"\n") {
            return Some((lf + 1, lf + 2));
        }
        at = lf + 1;
    }
    None
}

/// The lines of `head` without their line ends (LF, or CRLF). A last line end does not
/// start an empty line.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    head.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// Whether `version` is `SIP/` 1*DIGIT `.` 1*DIGIT (case-insensitive, §7.1).
fn is_sip_version(version: &str) -> bool {
    let Some(number) = version
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
        .map(|_| &version[4..])
    else {
        return false;
    };
    number.split_once('.').is_some_and(|(major, minor)| {
        [major, minor]
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn check_version(version: &str, line: &str) -> Result<(), ParseError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else if is_sip_version(version) {
        Err(ParseError::BadVersion {
            version: version.to_string(),
        })
    } else {
        Err(ParseError::BadStartLine {
            line: line.to_string(),
        })
    }
}

fn parse_start_line(raw: &[u8]) -> Result<StartLine, ParseError> {
    let bad = || ParseError::BadStartLine {
        line: String::from_utf8_lossy(raw).into_owned(),
    };
    let line = std::str::from_utf8(raw).map_err(|_| bad())?;
    if line.contains('\r') {
        return Err(bad());
    }
    if line
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = line.split_once(' ').ok_or_else(bad)?;
        check_version(version, line)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let status = code.parse::<u16>().map_err(|_| bad())?;
        if !(100..=699).contains(&status) {
            return Err(bad());
        }
        return Ok(StartLine::Response {
            status,
            reason: reason.to_string(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let mut words = line.split([' ', '\t']).filter(|word| !word.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    if !is_token(method) {
        return Err(bad());
    }
    check_version(version, line)?;
    let uri = Uri::parse(uri).map_err(|error| match error {
        UriError::UnsupportedScheme { scheme } => ParseError::UnsupportedScheme { scheme },
        error => ParseError::Uri(error),
    })?;
    if !uri.headers.is_empty() {
        return Err(ParseError::RequestUriHeaders);
    }
    let method = method.parse().map_err(|_| bad())?;
    Ok(StartLine::Request { method, uri })
}

/// A header line split into name and value, or `None` if it is not `token *WSP ":" value`.
fn split_header_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim_end_matches([' ', '\t']);
    is_token(name).then_some((name, value.trim_matches([' ', '\t'])))
}

/// Adds a continuation line to the last header's value (§7.3.1: the line break and the
/// leading whitespace become one SP).
fn unfold(value: &mut String, continuation: &str) {
    let continuation = continuation.trim_matches([' ', '\t']);
    if continuation.is_empty() {
        return;
    }
    if !value.is_empty() {
        value.push(' ');
    }
    value.push_str(continuation);
}

/// Parses a head (the start line and the header lines, without the empty line).
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<(StartLine, Headers), ParseError> {
    // The limits first: a message over them is answered 513 whatever else is wrong.
    let mut fields = 0;
    for (index, line) in lines(head).enumerate() {
        if line.len() > limits.max_line {
            return Err(ParseError::LineTooLong {
                max: limits.max_line,
            });
        }
        if index > 0 && !line.starts_with(b" ") && !line.starts_with(b"\t") {
            fields += 1;
        }
    }
    if fields > limits.max_headers {
        return Err(ParseError::TooManyHeaders {
            max: limits.max_headers,
        });
    }
    let mut lines = lines(head);
    let start = parse_start_line(lines.next().unwrap_or_default())?;
    let mut parsed: Vec<(String, String)> = Vec::new();
    for (index, raw) in lines.enumerate() {
        let number = index + 2;
        let bad = ParseError::BadHeaderLine { line: number };
        let line = std::str::from_utf8(raw).map_err(|_| bad.clone())?;
        if line.contains('\r') {
            return Err(bad);
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = parsed.last_mut().ok_or(bad)?;
            unfold(value, line);
            continue;
        }
        let (name, value) = split_header_line(line).ok_or(bad)?;
        parsed.push((name.to_string(), value.to_string()));
    }
    Ok((start, parsed.into_iter().collect()))
}

/// The header lines of a head that parse, the start line and bad lines skipped (and the
/// continuation lines of a skipped line with it).
fn lenient_headers(head: &[u8]) -> Headers {
    let mut parsed: Vec<(String, String)> = Vec::new();
    let mut last_kept = false;
    for raw in lines(head).skip(1) {
        let Ok(line) = std::str::from_utf8(raw) else {
            last_kept = false;
            continue;
        };
        if line.starts_with([' ', '\t']) {
            if let (true, Some((_, value))) = (last_kept, parsed.last_mut()) {
                unfold(value, line);
            }
            continue;
        }
        match split_header_line(line) {
            Some((name, value)) if !line.contains('\r') => {
                parsed.push((name.to_string(), value.to_string()));
                last_kept = true;
            }
            _ => last_kept = false,
        }
    }
    parsed.into_iter().collect()
}

/// The header lines of `bytes` that parse as `name: value` (folded lines unfolded), when
/// the message as a whole does not parse: what a server copies into its `400` (Via, From,
/// To, Call-ID, CSeq, §8.2.6.2) with [`Response::for_headers`]. Leading CRLFs and the
/// start line are skipped, bad lines dropped, the body ignored; `None` if no line parses.
pub fn salvage(bytes: &[u8]) -> Option<Headers> {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let head = match find_head_end(rest, 0) {
        Some((head_len, _)) => &rest[..head_len],
        None => rest,
    };
    let headers = lenient_headers(head);
    (!headers.is_empty()).then_some(headers)
}

/// The declared `Content-Length` (§20.14): `None` when absent.
pub(crate) fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| same_name(name, "Content-Length"))
        .map(|(_, value)| value)
        .collect();
    match values.as_slice() {
        [] => Ok(None),
        [value] if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => value
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ParseError::BadContentLength {
                value: value.to_string(),
            }),
        _ => Err(ParseError::BadContentLength {
            value: values.join(", "),
        }),
    }
}

/// The declared `Content-Length` of a head that may not parse as a whole (a stream still
/// needs it to skip the message).
pub(crate) fn lenient_content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    content_length(&lenient_headers(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_with_crlf_or_lf() {
        assert_eq!(find_head_end(b"A\r\nB: c\r\n\r\nbody", 0), Some((9, 11)));
        assert_eq!(find_head_end(b"A\nB: c\n\nbody", 0), Some((7, 8)));
        assert_eq!(find_head_end(b"A\r\nB: c\r\n", 0), None);
        assert_eq!(find_head_end(b"A\r\n\r\n", 0), Some((3, 5)));
        assert_eq!(find_head_end(b"", 5), None);
    }

    #[test]
    fn start_lines() {
        assert!(matches!(
            parse_start_line(b"SIP/2.0 100 "),
            Ok(StartLine::Response { status: 100, ref reason }) if reason.is_empty()
        ));
        assert!(matches!(
            parse_start_line(b"sip/2.0 200"),
            Ok(StartLine::Response { status: 200, .. })
        ));
        assert!(matches!(
            parse_start_line(b"SIP/2.0 4294967301 better not break the receiver"),
            Err(ParseError::BadStartLine { .. })
        ));
        assert!(matches!(
            parse_start_line(b"SIP/2.0 099 x"),
            Err(ParseError::BadStartLine { .. })
        ));
        assert_eq!(
            parse_start_line(b"INVITE sip:t.watson@example.org SIP/7.0"),
            Err(ParseError::BadVersion {
                version: "SIP/7.0".into()
            })
        );
        assert!(matches!(
            parse_start_line(b"INVITE sip:a@b HTTP/1.1"),
            Err(ParseError::BadStartLine { .. })
        ));
        assert!(matches!(
            parse_start_line(b"INVITE  sip:user@example.com  SIP/2.0  "),
            Ok(StartLine::Request {
                method: Method::Invite,
                ..
            })
        ));
        assert!(matches!(
            parse_start_line(b"INVITE sip:user@example.com; lr SIP/2.0"),
            Err(ParseError::BadStartLine { .. })
        ));
        assert!(matches!(
            parse_start_line(b"INVITE <sip:user@example.com> SIP/2.0"),
            Err(ParseError::Uri(UriError::BadScheme { .. }))
        ));
        assert_eq!(
            parse_start_line(b"OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0"),
            Err(ParseError::UnsupportedScheme {
                scheme: "nobodyknowsthisscheme".into()
            })
        );
        assert_eq!(
            parse_start_line(b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0"),
            Err(ParseError::RequestUriHeaders)
        );
        assert!(matches!(
            parse_start_line(b"\xff sip:a SIP/2.0"),
            Err(ParseError::BadStartLine { .. })
        ));
        assert!(matches!(
            parse_start_line(b""),
            Err(ParseError::BadStartLine { .. })
        ));
    }

    #[test]
    fn salvage_keeps_what_parses() {
        let headers = salvage(
            b"\r\nINVITE <bad> SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nnot a header\r\n continued\r\nCall-ID: x\r\n folded\r\n\r\nbody: no",
        )
        .unwrap();
        let lines: Vec<_> = headers.iter().collect();
        assert_eq!(
            lines,
            [
                ("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
                ("Call-ID", "x folded")
            ]
        );
        assert_eq!(salvage(b"garbage"), None);
        assert_eq!(salvage(b""), None);
    }
}
