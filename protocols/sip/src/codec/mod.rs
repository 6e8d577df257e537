//! RFC 3261 §7 and §18.3: message framing without I/O, over datagrams and streams, and the
//! checks a server makes before it answers (§8.2, §16.3; PROFILE.md §9).
//!
//! - [`parse_datagram`]: one UDP datagram is one message; `Content-Length` is optional.
//! - [`StreamDecoder`]: TCP bytes in chunks of any size in, whole messages out;
//!   `Content-Length` is mandatory, and `Ok(None)` means "need more bytes", never an error.
//! - [`validate_request`] / [`validate_response`]: the structural parse is lenient about
//!   which headers are *present*, so that a server can still answer a request that lacks
//!   one; these check the mandatory headers (§8.1.1) and that the CSeq method is the
//!   request's.
//! - [`salvage`]: the header lines of a message that does not parse, so that a `400` can
//!   copy its Via, From, To, Call-ID and CSeq (§8.2.6.2).
//!
//! Writing is [`Request::to_bytes`](crate::Request::to_bytes) and
//! [`Response::to_bytes`](crate::Response::to_bytes).
//!
//! # Strictness and leniency
//!
//! | input | result |
//! | --- | --- |
//! | folded header lines (§7.3.1: CRLF then SP or HTAB) | unfolded, the line break and the indentation replaced by one SP |
//! | header names in any case, compact forms (§7.3.3), spaces before the colon (RFC 4475 §3.1.1.1) | accepted, names kept as written |
//! | several SP between the parts of a Request-Line, SP after `SIP/2.0` (RFC 4475 §3.1.2.9, §3.1.2.10) | accepted |
//! | CRLFs before a message (§7.5; RFC 5626 §3.5.1 keep-alives on a stream) | skipped ([`StreamDecoder::take_keepalive`] reports a double-CRLF ping) |
//! | bare LF line ends | accepted |
//! | a datagram whose head is not ended by an empty line | the head runs to the end of the datagram, with no body |
//! | a datagram longer than its `Content-Length` (§18.3, RFC 4475 §3.1.1.8) | the extra bytes dropped |
//! | a datagram shorter than its `Content-Length` (RFC 4475 §3.1.2.2) | [`ParseError::ContentLengthExceedsDatagram`] |
//! | `Content-Length` missing on a stream, not a number, negative, overlarge or repeated (RFC 4475 §3.1.2.3, §3.3.9) | [`ParseError::MissingContentLength`], [`ParseError::BadContentLength`]; the stream's framing is lost |
//! | a message over [`Limits::max_message`], more header lines than [`Limits::max_headers`], a line over [`Limits::max_line`] | [`ParseError::TooLarge`], [`ParseError::TooManyHeaders`], [`ParseError::LineTooLong`] (513, framing lost) |
//! | a version other than `SIP/2.0` (RFC 4475 §3.1.2.16) | [`ParseError::BadVersion`] (505) |
//! | a Request-URI of another scheme (RFC 4475 §3.3.2, §3.3.3) | [`ParseError::UnsupportedScheme`] (416) |
//! | a Request-URI that is no URI (`<sip:...>`, embedded LWS: RFC 4475 §3.1.2.7, §3.1.2.8), or with headers (§3.1.2.11, §19.1.1's table) | [`ParseError::Uri`], [`ParseError::BadStartLine`], [`ParseError::RequestUriHeaders`] (400) |
//! | a status code outside 100–699 (RFC 4475 §3.1.2.19) | [`ParseError::BadStartLine`] |
//! | a header line without a colon, a name that is not a token, a bare CR, bytes that are not UTF-8 | [`ParseError::BadHeaderLine`] |
//!
//! A stream error whose [`framing_lost`](ParseError::framing_lost) is false concerns one
//! message only: the decoder has skipped that message and goes on with the next. One whose
//! framing is lost is returned again on every later call; the connection has to be closed
//! after answering.

mod head;
mod stream;
mod validate;

pub use head::salvage;
pub use stream::StreamDecoder;
pub use validate::{validate_request, validate_response};

use crate::headers::HeaderError;
use crate::message::Message;
use crate::uri::UriError;

/// Limits that protect a receiver from oversized input (PROFILE.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest message, head and body, in bytes.
    pub max_message: usize,
    /// The most header fields (logical lines, after unfolding) in one message.
    pub max_headers: usize,
    /// The longest physical line, in bytes, without its line end.
    pub max_line: usize,
}

impl Default for Limits {
    /// 65,535 bytes, 100 header lines, lines of 8 KiB.
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 100,
            max_line: 8192,
        }
    }
}

/// Why bytes are not a usable SIP message. [`status`](Self::status) is the answer a server
/// gives a request that fails this way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The first line is neither a Request-Line nor a Status-Line (§7.1, §7.2).
    #[error("malformed start line {line:?}")]
    BadStartLine {
        /// The line as received (invalid UTF-8 replaced).
        line: String,
    },
    /// A well-formed SIP version other than `SIP/2.0` (§7.1).
    #[error("unsupported SIP version {version:?}")]
    BadVersion {
        /// The version as received.
        version: String,
    },
    /// A header line that is not `name: value` (no colon, a name that is not a token), a
    /// continuation line with nothing to continue, a bare CR, or bytes that are not UTF-8.
    #[error("malformed header line {line}")]
    BadHeaderLine {
        /// Its 1-based line number, the start line being line 1.
        line: usize,
    },
    /// A header the message needs is malformed or repeated.
    #[error("bad header: {0}")]
    Header(#[from] HeaderError),
    /// A message on a stream without `Content-Length` (§18.3: mandatory there).
    #[error("no Content-Length on a stream")]
    MissingContentLength,
    /// `Content-Length` is not a decimal number, too large, or repeated.
    #[error("invalid Content-Length {value:?}")]
    BadContentLength {
        /// The values as received, joined with ", ".
        value: String,
    },
    /// A datagram declares more body than it carries (§18.3).
    #[error("Content-Length {declared} exceeds the {actual} bytes of body in the datagram")]
    ContentLengthExceedsDatagram {
        /// The declared length.
        declared: usize,
        /// The bytes after the head.
        actual: usize,
    },
    /// The message is longer than [`Limits::max_message`].
    #[error("message longer than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// More header lines than [`Limits::max_headers`].
    #[error("more than {max} header lines")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// A line longer than [`Limits::max_line`].
    #[error("a line longer than {max} bytes")]
    LineTooLong {
        /// The limit.
        max: usize,
    },
    /// A mandatory header (§8.1.1: Via, To, From, Call-ID, CSeq) is absent.
    #[error("missing {name} header")]
    MissingHeader {
        /// The header's canonical name.
        name: &'static str,
    },
    /// The CSeq method is not the request's method (§8.1.1.5, RFC 4475 §3.1.2.17).
    #[error("CSeq method {cseq:?} does not match request method {method:?}")]
    CSeqMethodMismatch {
        /// The CSeq method.
        cseq: String,
        /// The Request-Line method.
        method: String,
    },
    /// The Request-URI is not a SIP URI.
    #[error("invalid Request-URI")]
    Uri(#[source] UriError),
    /// The Request-URI is a well-formed URI of a scheme other than `sip`/`sips`
    /// (§8.2.2.1: answered 416).
    #[error("unsupported Request-URI scheme {scheme:?}")]
    UnsupportedScheme {
        /// The scheme as received.
        scheme: String,
    },
    /// The Request-URI has URI headers (`?name=value`), which §19.1.1's table does not
    /// allow there (RFC 4475 §3.1.2.11).
    #[error("headers in the Request-URI")]
    RequestUriHeaders,
}

impl ParseError {
    /// The status a server answers a request that fails this way with, and a reason
    /// phrase naming the problem (PROFILE.md §9): `400 Missing Call-ID`, `400 Bad
    /// Content-Length`, `505` for a version, `416` for a scheme, `513` for the size limits.
    pub fn status(&self) -> (u16, String) {
        match self {
            ParseError::BadStartLine { .. } => (400, "Bad Request-Line".into()),
            ParseError::BadVersion { .. } => (505, "Version Not Supported".into()),
            ParseError::BadHeaderLine { line } => (400, format!("Bad Header Line {line}")),
            ParseError::Header(error) => (
                400,
                match error {
                    HeaderError::Missing { name } => format!("Missing {name}"),
                    HeaderError::Repeated { name, .. } => format!("Repeated {name}"),
                    HeaderError::Invalid { name, .. } | HeaderError::Uri { name, .. } => {
                        format!("Bad {name}")
                    }
                },
            ),
            ParseError::MissingContentLength => (400, "Missing Content-Length".into()),
            ParseError::BadContentLength { .. } => (400, "Bad Content-Length".into()),
            ParseError::ContentLengthExceedsDatagram { .. } => {
                (400, "Content-Length Exceeds Datagram".into())
            }
            ParseError::TooLarge { .. }
            | ParseError::TooManyHeaders { .. }
            | ParseError::LineTooLong { .. } => (513, "Message Too Large".into()),
            ParseError::MissingHeader { name } => (400, format!("Missing {name}")),
            ParseError::CSeqMethodMismatch { .. } => (400, "CSeq Method Mismatch".into()),
            ParseError::Uri(_) => (400, "Bad Request-URI".into()),
            ParseError::UnsupportedScheme { .. } => (416, "Unsupported URI Scheme".into()),
            ParseError::RequestUriHeaders => (400, "Headers in Request-URI".into()),
        }
    }

    /// Whether a byte stream's framing is lost: the end of the message cannot be known
    /// (no or a bad `Content-Length`) or a limit was hit before it. A stream must then be
    /// closed after answering; the other errors concern one message, which the
    /// [`StreamDecoder`] has skipped.
    pub fn framing_lost(&self) -> bool {
        matches!(
            self,
            ParseError::MissingContentLength
                | ParseError::BadContentLength { .. }
                | ParseError::TooLarge { .. }
                | ParseError::TooManyHeaders { .. }
                | ParseError::LineTooLong { .. }
        )
    }
}

/// Parses one UDP datagram as one message (§18.3).
///
/// `Content-Length` is optional: without it the body is the rest of the datagram; a
/// shorter one truncates the body to it; a longer one is
/// [`ParseError::ContentLengthExceedsDatagram`]. CRLFs before the message (keep-alives)
/// are skipped, and a datagram of nothing but whitespace is `Ok(None)`.
///
/// # Errors
/// Any [`ParseError`] but [`ParseError::MissingContentLength`]; see the module's table.
pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Option<Message>, ParseError> {
    if bytes.len() > limits.max_message {
        return Err(ParseError::TooLarge {
            max: limits.max_message,
        });
    }
    if bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Ok(None);
    }
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let (head, body_start) = match head::find_head_end(rest, 0) {
        Some((head_len, total)) => (&rest[..head_len], total),
        None => (rest, rest.len()),
    };
    let (start_line, headers) = head::parse_head(head, limits)?;
    let available = &rest[body_start..];
    let body = match head::content_length(&headers)? {
        None => available,
        Some(declared) if declared > available.len() => {
            return Err(ParseError::ContentLengthExceedsDatagram {
                declared,
                actual: available.len(),
            });
        }
        Some(declared) => &available[..declared],
    };
    Ok(Some(start_line.into_message(headers, body.to_vec())))
}

#[cfg(test)]
mod tests;
