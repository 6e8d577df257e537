//! RVP §3 and §8: requests and responses, HTTP/1.1 messages, and how they are written.
//!
//! RVP is "a strict extension of HTTP/1.1" (§3). A message here is the start line, an
//! [`http::HeaderMap`] and a whole body; the framing (Content-Length, chunked) is the
//! codec's business. Writing always frames the body with `Content-Length` and never with
//! `Transfer-Encoding`, whatever the header map holds.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version};

use crate::headers::{HeaderError, NotificationsVersion, RvpHeaders, TypedHeader};
use crate::method::Method;

/// The `Content-Type` RVP uses for XML bodies (§5.4.1 and every other example).
pub const TEXT_XML: &str = "text/xml";

/// A request: method, target, version, headers and a complete body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target: a path (`/instmsg/aliases/bruceb`) or an absolute URL (the
    /// property subscription of §5.1.7.2 sends `http://im.example.com/instmsg/aliases/stevem`).
    pub target: Uri,
    /// `HTTP/1.1`, or `HTTP/1.0` if a peer sent that.
    pub version: Version,
    /// The header fields as received, or as they will be written.
    pub headers: HeaderMap,
    /// The decoded body (empty when there is none).
    pub body: Vec<u8>,
}

/// A response: version, status, reason phrase, headers and a complete body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `HTTP/1.1`, or `HTTP/1.0` if a peer sent that.
    pub version: Version,
    /// The status code.
    pub status: StatusCode,
    /// The reason phrase as sent (RVP servers send `200 Successful`, §8).
    pub reason: String,
    /// The header fields as received, or as they will be written.
    pub headers: HeaderMap,
    /// The decoded body (empty when there is none).
    pub body: Vec<u8>,
}

/// The reason phrase RVP uses for `status` (§8: `200 Successful`, `302 Object moved`,
/// `401 Access denied`, ...), else the HTTP one, else the empty string.
pub fn rvp_reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "Successful",
        207 => "Multi-Status",
        302 => "Object moved",
        401 => "Access denied",
        412 => "Precondition Failed",
        500 => "Internal Server Error",
        _ => status.canonical_reason().unwrap_or(""),
    }
}

/// A header map holding only `RVP-Notifications-Version: 0.2`, which "every request and
/// response must include" (§7.2; 0.2 is what real peers send, see the notes).
fn rvp_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.set_typed(&NotificationsVersion::SEND);
    headers
}

impl Request {
    /// An HTTP/1.1 request with no body and only the `RVP-Notifications-Version: 0.2`
    /// header (§7.2). `Host` is the caller's to add.
    pub fn new(method: Method, target: Uri) -> Self {
        Request {
            method,
            target,
            version: Version::HTTP_11,
            headers: rvp_headers(),
            body: Vec::new(),
        }
    }

    /// Sets a typed header, replacing any value it had.
    pub fn with<H: TypedHeader>(mut self, value: H) -> Self {
        self.headers.set_typed(&value);
        self
    }

    /// Sets a header by name, replacing any value it had.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Sets an XML body and `Content-Type: text/xml`.
    pub fn with_xml(mut self, body: Vec<u8>) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_XML));
        self.body = body;
        self
    }

    /// Reads a typed header.
    ///
    /// # Errors
    /// [`HeaderError::Repeated`] if it appears more than once, [`HeaderError::Invalid`] if
    /// its value does not parse; absence is `Ok(None)`.
    pub fn header<H: TypedHeader>(&self) -> Result<Option<H>, HeaderError> {
        self.headers.typed()
    }

    /// Writes the request line, the headers and the body, framed with `Content-Length`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(version_str(self.version).as_bytes());
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }

    /// The request as bytes; see [`write_to`](Self::write_to).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

impl Response {
    /// An HTTP/1.1 response with RVP's reason phrase for `status` ([`rvp_reason`]), no body
    /// and only the `RVP-Notifications-Version: 0.2` header (§7.2).
    pub fn new(status: StatusCode) -> Self {
        Response {
            version: Version::HTTP_11,
            status,
            reason: rvp_reason(status).to_string(),
            headers: rvp_headers(),
            body: Vec::new(),
        }
    }

    /// Sets a typed header, replacing any value it had.
    pub fn with<H: TypedHeader>(mut self, value: H) -> Self {
        self.headers.set_typed(&value);
        self
    }

    /// Sets a header by name; with `append`, adds a value next to the existing ones (as
    /// several `WWW-Authenticate` challenges, §6.3).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue, append: bool) -> Self {
        if append {
            self.headers.append(name, value);
        } else {
            self.headers.insert(name, value);
        }
        self
    }

    /// Sets an XML body and `Content-Type: text/xml`.
    pub fn with_xml(mut self, body: Vec<u8>) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_XML));
        self.body = body;
        self
    }

    /// Reads a typed header.
    ///
    /// # Errors
    /// [`HeaderError::Repeated`] if it appears more than once, [`HeaderError::Invalid`] if
    /// its value does not parse; absence is `Ok(None)`.
    pub fn header<H: TypedHeader>(&self) -> Result<Option<H>, HeaderError> {
        self.headers.typed()
    }

    /// Writes the status line, the headers and the body, framed with `Content-Length`.
    /// Carriage returns and line feeds in the reason phrase are written as spaces.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(version_str(self.version).as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        for byte in self.reason.bytes() {
            out.push(if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            });
        }
        out.extend_from_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, out);
    }

    /// The response as bytes; see [`write_to`](Self::write_to).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

fn version_str(version: Version) -> &'static str {
    if version == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

/// Writes every header except the framing ones, then `Content-Length`, the blank line and
/// the body.
fn write_headers_and_body(headers: &HeaderMap, body: &[u8], out: &mut Vec<u8>) {
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        write_canonical_name(name.as_str(), out);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// Writes a (lower-case) header name the way the specification spells it: each
/// dash-separated word capitalized, with `RVP`, `WWW`, `DAV` and `MIME` in capitals
/// (`RVP-Notifications-Version`, `Subscription-Id`, `WWW-Authenticate`). Field names are
/// case-insensitive, but peers from 2000 are best met with the spelling they were tested
/// against.
pub fn write_canonical_name(name: &str, out: &mut Vec<u8>) {
    for (index, word) in name.split('-').enumerate() {
        if index > 0 {
            out.push(b'-');
        }
        if ["rvp", "www", "dav", "mime"]
            .iter()
            .any(|upper| word.eq_ignore_ascii_case(upper))
        {
            out.extend(word.bytes().map(|b| b.to_ascii_uppercase()));
            continue;
        }
        let mut bytes = word.bytes();
        if let Some(first) = bytes.next() {
            out.push(first.to_ascii_uppercase());
        }
        out.extend(bytes.map(|b| b.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::{AckType, HopCount, SubscriptionId};

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn request_is_written_with_content_length_and_rvp_spelling() {
        let request = Request::new(Method::Notify, Uri::from_static("/instmsg/aliases/bruceb"))
            .with_header(
                http::header::HOST,
                HeaderValue::from_static("im.acmewidgets.com"),
            )
            .with(AckType::DeepOr)
            .with(HopCount::new(1).unwrap())
            .with_xml(b"<x/>".to_vec());
        assert_eq!(
            text(&request.to_bytes()),
            "NOTIFY /instmsg/aliases/bruceb HTTP/1.1\r\n\
             RVP-Notifications-Version: 0.2\r\n\
             Host: im.acmewidgets.com\r\n\
             RVP-Ack-Type: DeepOr\r\n\
             RVP-Hop-Count: 1\r\n\
             Content-Type: text/xml\r\n\
             Content-Length: 4\r\n\r\n<x/>"
        );
    }

    #[test]
    fn framing_headers_in_the_map_are_not_written() {
        let mut request = Request::new(Method::Acl, Uri::from_static("/"));
        request
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
        request
            .headers
            .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let bytes = request.to_bytes();
        assert!(text(&bytes).ends_with("Content-Length: 0\r\n\r\n"));
        assert!(!text(&bytes).contains("99"));
        assert!(!text(&bytes).contains("chunked"));
    }

    #[test]
    fn response_keeps_rvp_reason_phrases() {
        let response = Response::new(StatusCode::OK).with(SubscriptionId::new("98210").unwrap());
        assert_eq!(
            text(&response.to_bytes()),
            "HTTP/1.1 200 Successful\r\n\
             RVP-Notifications-Version: 0.2\r\n\
             Subscription-Id: 98210\r\n\
             Content-Length: 0\r\n\r\n"
        );
        assert_eq!(rvp_reason(StatusCode::MULTI_STATUS), "Multi-Status");
        assert_eq!(rvp_reason(StatusCode::FOUND), "Object moved");
        assert_eq!(rvp_reason(StatusCode::UNAUTHORIZED), "Access denied");
        assert_eq!(rvp_reason(StatusCode::NOT_IMPLEMENTED), "Not Implemented");
        assert_eq!(rvp_reason(StatusCode::from_u16(599).unwrap()), "");
    }

    #[test]
    fn reason_line_breaks_are_neutralized() {
        let mut response = Response::new(StatusCode::OK);
        response.reason = "a\r\nX-Injected: 1".into();
        assert!(text(&response.to_bytes()).starts_with("HTTP/1.1 200 a  X-Injected: 1\r\n"));
    }

    #[test]
    fn repeated_headers_are_all_written() {
        let response = Response::new(StatusCode::UNAUTHORIZED)
            .with_header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("NTLM"),
                true,
            )
            .with_header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Digest realm=\"x\""),
                true,
            );
        let bytes = response.to_bytes();
        assert!(text(&bytes).contains("WWW-Authenticate: NTLM\r\nWWW-Authenticate: Digest"));
    }

    #[test]
    fn canonical_names() {
        for (name, expected) in [
            ("rvp-notifications-version", "RVP-Notifications-Version"),
            ("call-back", "Call-Back"),
            ("subscription-id", "Subscription-Id"),
            ("www-authenticate", "WWW-Authenticate"),
            ("x", "X"),
            ("a--b", "A--B"),
        ] {
            let mut out = Vec::new();
            write_canonical_name(name, &mut out);
            assert_eq!(text(&out), expected);
        }
    }

    #[test]
    fn http_1_0_is_written_as_such() {
        let mut response = Response::new(StatusCode::OK);
        response.version = Version::HTTP_10;
        assert!(text(&response.to_bytes()).starts_with("HTTP/1.0 200 Successful\r\n"));
    }
}
