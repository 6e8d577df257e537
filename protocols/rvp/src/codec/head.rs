//! RFC 9112 §2–§5 (message format, request and status lines, header fields): the head
//! of a message, parsed by httparse into a [`Request`] or [`Response`] without body.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version};

use super::ParseError;
use crate::message::{Request, Response};
use crate::method::Method;

/// A message type the framer can produce.
pub(super) trait Framed: Sized {
    /// Parses a head out of `window`; returns the message (empty body) and head length.
    fn parse_head(
        window: &[u8],
        max_headers: usize,
    ) -> Result<httparse::Status<(Self, usize)>, ParseError>;
    fn headers(&self) -> &HeaderMap;
    /// Whether the message cannot have a body whatever its headers say.
    fn bodiless(&self) -> bool;
    fn set_body(&mut self, body: Vec<u8>);
}

/// Finds a blank line (`\n\n` or `\n\r\n`) at or after `from`: its start and end.
pub(super) fn find_blank_line(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while at < bytes.len() {
        let offset = bytes[at..].iter().position(|b| *b == b'\n')?;
        let start = at + offset;
        match bytes.get(start + 1..) {
            Some([b'\n', ..]) => return Some((start, start + 2)),
            Some([b'\r', b'\n', ..]) => return Some((start, start + 3)),
            _ => at = start + 1,
        }
    }
    None
}

fn header_map(fields: &[httparse::Header<'_>]) -> Result<HeaderMap, ParseError> {
    let mut headers = HeaderMap::with_capacity(fields.len());
    for field in fields {
        let invalid = || ParseError::InvalidHeader {
            name: field.name.to_string(),
        };
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| invalid())?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn version(minor: Option<u8>) -> Version {
    if minor == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    }
}

fn syntax(source: httparse::Error, max_headers: usize) -> ParseError {
    match source {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders { max: max_headers },
        source => ParseError::Syntax { source },
    }
}

impl Framed for Request {
    fn parse_head(
        window: &[u8],
        max_headers: usize,
    ) -> Result<httparse::Status<(Self, usize)>, ParseError> {
        let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
        let mut parsed = httparse::Request::new(&mut fields);
        let mut config = httparse::ParserConfig::default();
        // §5.4.1 writes `PROPFIND /instmsg/aliases/stevem  HTTP/1.1`.
        config.allow_multiple_spaces_in_request_line_delimiters(true);
        let head_len = match config.parse_request(&mut parsed, window) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(httparse::Status::Partial),
            Err(source) => return Err(syntax(source, max_headers)),
        };
        let method = parsed
            .method
            .unwrap_or_default()
            .parse::<Method>()
            .map_err(|_| ParseError::Syntax {
                source: httparse::Error::Token,
            })?;
        let raw_target = parsed.path.unwrap_or_default();
        let target = Uri::try_from(raw_target).map_err(|_| ParseError::InvalidTarget {
            target: raw_target.to_string(),
        })?;
        let request = Request {
            method,
            target,
            version: version(parsed.version),
            headers: header_map(parsed.headers)?,
            body: Vec::new(),
        };
        Ok(httparse::Status::Complete((request, head_len)))
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn bodiless(&self) -> bool {
        false
    }

    fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }
}

impl Framed for Response {
    fn parse_head(
        window: &[u8],
        max_headers: usize,
    ) -> Result<httparse::Status<(Self, usize)>, ParseError> {
        let mut fields = vec![httparse::EMPTY_HEADER; max_headers];
        let mut parsed = httparse::Response::new(&mut fields);
        let head_len = match httparse::ParserConfig::default().parse_response(&mut parsed, window) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(httparse::Status::Partial),
            Err(source) => return Err(syntax(source, max_headers)),
        };
        let code = parsed.code.unwrap_or_default();
        let status = StatusCode::from_u16(code).map_err(|_| ParseError::InvalidStatus { code })?;
        let response = Response {
            version: version(parsed.version),
            status,
            reason: parsed.reason.unwrap_or_default().to_string(),
            headers: header_map(parsed.headers)?,
            body: Vec::new(),
        };
        Ok(httparse::Status::Complete((response, head_len)))
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn bodiless(&self) -> bool {
        self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED
    }

    fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }
}
