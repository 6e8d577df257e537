//! RFC 3261 §7: requests and responses (start line, header fields, body), methods (§7.1,
//! plus RFC 3428 MESSAGE, RFC 6665 SUBSCRIBE/NOTIFY, RFC 3903 PUBLISH...), the reason
//! phrases of §21, and how a message is written.
//!
//! A message is its start line, its [`Headers`] in order and its body as bytes; framing
//! (Content-Length, datagrams, streams) is the [`codec`](crate::codec)'s business.
//! [`Request::to_bytes`] and [`Response::to_bytes`] always frame the body with a correct
//! `Content-Length`; [`Request::to_bytes_verbatim`] writes the headers exactly as held, for
//! a scenario that wants a wrong one.

mod method;
mod status;

pub use method::{Method, MethodError};
pub use status::reason_phrase;

use crate::headers::{
    CSeq, EventHeader, HeaderError, Headers, NameAddr, SubscriptionState, Via, same_name,
};
use crate::uri::Uri;

/// A request: method, Request-URI, headers and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI (§8.1.1.1).
    pub uri: Uri,
    /// The header fields, in order.
    pub headers: Headers,
    /// The body (empty when there is none).
    pub body: Vec<u8>,
}

/// A response: status code, reason phrase, headers and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, 100 to 699.
    pub status: u16,
    /// The reason phrase as sent (may be empty, RFC 4475 §3.1.1.13).
    pub reason: String,
    /// The header fields, in order.
    pub headers: Headers,
    /// The body (empty when there is none).
    pub body: Vec<u8>,
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// Writes the headers and the body: with `fix_length`, every Content-Length line is left
/// out and one with the body's length is written where the first was (or last).
fn write_rest(headers: &Headers, body: &[u8], fix_length: bool, out: &mut Vec<u8>) {
    let mut wrote_length = false;
    for (name, value) in headers.iter() {
        if fix_length && same_name(name, "Content-Length") {
            if !wrote_length {
                out.extend_from_slice(format!("{name}: {}\r\n", body.len()).as_bytes());
                wrote_length = true;
            }
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if fix_length && !wrote_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The typed accessors of [`Headers`], forwarded.
macro_rules! header_accessors {
    () => {
        /// `Call-ID` ([`Headers::call_id`]).
        pub fn call_id(&self) -> Option<&str> {
            self.headers.call_id()
        }

        /// `CSeq` ([`Headers::cseq`]).
        ///
        /// # Errors
        /// [`HeaderError`] if it is missing, repeated or malformed.
        pub fn cseq(&self) -> Result<CSeq, HeaderError> {
            self.headers.cseq()
        }

        /// `From` ([`Headers::from`]).
        ///
        /// # Errors
        /// [`HeaderError`] if it is missing, repeated or malformed.
        pub fn from(&self) -> Result<NameAddr, HeaderError> {
            self.headers.from()
        }

        /// Every `Via`, top first ([`Headers::vias`]).
        ///
        /// # Errors
        /// [`HeaderError`] if there is none or one is malformed.
        pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
            self.headers.vias()
        }

        /// The top `Via` ([`Headers::top_via`]).
        ///
        /// # Errors
        /// [`HeaderError`] if there is none or it is malformed.
        pub fn top_via(&self) -> Result<Via, HeaderError> {
            self.headers.top_via()
        }

        /// Every `Contact`; `*` gives none ([`Headers::contacts`], [`Headers::contact_star`]).
        ///
        /// # Errors
        /// [`HeaderError`] if one is malformed.
        pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
            self.headers.contacts()
        }

        /// `Expires` in seconds ([`Headers::expires`]).
        pub fn expires(&self) -> Option<u32> {
            self.headers.expires()
        }

        /// `Record-Route`, in order ([`Headers::record_routes`]).
        ///
        /// # Errors
        /// [`HeaderError`] if one is malformed.
        pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
            self.headers.record_routes()
        }

        /// `Content-Type` as written ([`Headers::content_type`]).
        pub fn content_type(&self) -> Option<&str> {
            self.headers.content_type()
        }

        /// Adds a header line (builder style).
        pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
            self.headers.push(name, value);
            self
        }

        /// Sets the body and its `Content-Type` (replacing any).
        pub fn set_body(&mut self, content_type: &str, body: impl Into<Vec<u8>>) {
            self.headers.set("Content-Type", content_type);
            self.body = body.into();
        }
    };
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The Request-Line, `METHOD uri SIP/2.0`, without CRLF.
    pub fn start_line(&self) -> String {
        format!("{} {} SIP/2.0", self.method, self.uri)
    }

    /// The request as it travels: the Request-Line, the headers in order with one
    /// `Content-Length` giving the body's length (replacing any, where the first was, else
    /// last), CRLF, the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.start_line().into_bytes();
        out.extend_from_slice(b"\r\n");
        write_rest(&self.headers, &self.body, true, &mut out);
        out
    }

    /// As [`to_bytes`](Self::to_bytes) with the headers exactly as held: no
    /// `Content-Length` is added or corrected.
    pub fn to_bytes_verbatim(&self) -> Vec<u8> {
        let mut out = self.start_line().into_bytes();
        out.extend_from_slice(b"\r\n");
        write_rest(&self.headers, &self.body, false, &mut out);
        out
    }

    header_accessors!();

    /// `To` ([`Headers::to`]).
    ///
    /// # Errors
    /// [`HeaderError`] if it is missing, repeated or malformed.
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        self.headers.to()
    }

    /// `Max-Forwards` ([`Headers::max_forwards`]).
    pub fn max_forwards(&self) -> Option<u32> {
        self.headers.max_forwards()
    }

    /// `Event` ([`Headers::event`]).
    pub fn event(&self) -> Option<Result<EventHeader, HeaderError>> {
        self.headers.event()
    }

    /// `Subscription-State` ([`Headers::subscription_state`]).
    pub fn subscription_state(&self) -> Option<Result<SubscriptionState, HeaderError>> {
        self.headers.subscription_state()
    }

    /// `Route`, in order ([`Headers::routes`]).
    ///
    /// # Errors
    /// [`HeaderError`] if one is malformed.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.headers.routes()
    }
}

impl Response {
    /// A response with no headers and no body; `reason` as given.
    pub fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: reason.to_string(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The response a UAS or proxy builds for `request` (§8.2.6.2): every `Via`, `From`,
    /// `To`, `Call-ID` and `CSeq` copied as written, in the request's order, `;tag=to_tag` added to `To`
    /// when given and `To` has no tag, the reason phrase of [`reason_phrase`] when `reason`
    /// is `None`. Record-Route for a 2xx to a dialog-creating request (§12.1.1), Contact and
    /// the rest are the caller's to add.
    pub fn to(
        request: &Request,
        status: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Response {
        Response::for_headers(&request.headers, status, reason, to_tag)
    }

    /// As [`to`](Self::to) from the headers of a request that did not parse as a whole
    /// (what [`salvage`](crate::codec::salvage) recovered), so that a `400` can still reach
    /// the sender (PROFILE.md §9).
    pub fn for_headers(
        headers: &Headers,
        status: u16,
        reason: Option<&str>,
        to_tag: Option<&str>,
    ) -> Response {
        const COPIED: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];
        let mut response = Response::new(status, reason.unwrap_or_else(|| reason_phrase(status)));
        for (name, value) in headers.iter() {
            if !COPIED.iter().any(|copied| same_name(name, copied)) {
                continue;
            }
            let value = match to_tag {
                Some(tag)
                    if same_name(name, "To")
                        && NameAddr::parse(value).is_ok_and(|to| to.tag().is_none()) =>
                {
                    format!("{value};tag={tag}")
                }
                _ => value.to_string(),
            };
            response.headers.push(name, value);
        }
        response
    }

    /// The Status-Line, `SIP/2.0 code reason`, without CRLF.
    pub fn start_line(&self) -> String {
        format!("SIP/2.0 {} {}", self.status, self.reason)
    }

    /// The response as it travels (see [`Request::to_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.start_line().into_bytes();
        out.extend_from_slice(b"\r\n");
        write_rest(&self.headers, &self.body, true, &mut out);
        out
    }

    /// As [`to_bytes`](Self::to_bytes) with the headers exactly as held.
    pub fn to_bytes_verbatim(&self) -> Vec<u8> {
        let mut out = self.start_line().into_bytes();
        out.extend_from_slice(b"\r\n");
        write_rest(&self.headers, &self.body, false, &mut out);
        out
    }

    header_accessors!();

    /// `To` ([`Headers::to`]). A response has no `to(&self)` like [`Request::to`]: that
    /// name is the constructor [`Response::to`] (§8.2.6.2), so this accessor is named for
    /// the header instead.
    ///
    /// # Errors
    /// [`HeaderError`] if it is missing, repeated or malformed.
    pub fn to_header(&self) -> Result<NameAddr, HeaderError> {
        self.headers.to()
    }

    /// Whether the status is 200 or more (§7.2).
    pub fn is_final(&self) -> bool {
        self.status >= 200
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the status is 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

impl Message {
    /// The header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(request) => &request.headers,
            Message::Response(response) => &response.headers,
        }
    }

    /// The header fields, to change.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(request) => &mut request.headers,
            Message::Response(response) => &mut response.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(request) => &request.body,
            Message::Response(response) => &response.body,
        }
    }

    /// The message as it travels.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(request) => request.to_bytes(),
            Message::Response(response) => response.to_bytes(),
        }
    }

    /// `Call-ID`.
    pub fn call_id(&self) -> Option<&str> {
        self.headers().call_id()
    }

    /// `CSeq`.
    ///
    /// # Errors
    /// [`HeaderError`] if it is missing, repeated or malformed.
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        self.headers().cseq()
    }

    /// The request, if this is one.
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(request) => Some(request),
            Message::Response(_) => None,
        }
    }

    /// The response, if this is one.
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(response) => Some(response),
            Message::Request(_) => None,
        }
    }
}

impl From<Request> for Message {
    fn from(request: Request) -> Message {
        Message::Request(request)
    }
}

impl From<Response> for Message {
    fn from(response: Response) -> Message {
        Message::Response(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request::new(Method::Message, Uri::new(Some("bob"), "biloxi.example.com"))
            .with_header(
                "Via",
                "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
            )
            .with_header("v", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK1")
            .with_header("Max-Forwards", "70")
            .with_header("To", "Bob <sip:bob@biloxi.example.com>")
            .with_header(
                "From",
                "Alice <sip:alice@atlanta.example.com>;tag=1928301774",
            )
            .with_header("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com")
            .with_header("CSeq", "314159 MESSAGE")
            .with_header("l", "999")
    }

    #[test]
    fn methods_are_case_sensitive_tokens() {
        assert_eq!("SUBSCRIBE".parse(), Ok(Method::Subscribe));
        assert_eq!("subscribe".parse(), Ok(Method::Other("subscribe".into())));
        assert_eq!(
            "!interesting-Method0123456789_*+`.%indeed'~"
                .parse::<Method>()
                .map(|m| m.to_string()),
            Ok("!interesting-Method0123456789_*+`.%indeed'~".to_string())
        );
        assert!("IN VITE".parse::<Method>().is_err());
        assert!("".parse::<Method>().is_err());
        for method in Method::KNOWN {
            assert_eq!(method.as_str().parse(), Ok(method));
        }
    }

    #[test]
    fn to_bytes_fixes_content_length_in_place() {
        let mut request = request();
        request.set_body("text/plain", "Watson, come here.");
        let text = String::from_utf8(request.to_bytes()).unwrap();
        assert!(text.starts_with("MESSAGE sip:bob@biloxi.example.com SIP/2.0\r\nVia: "));
        assert!(text.contains("\r\nl: 18\r\nContent-Type: text/plain\r\n\r\nWatson, come here."));
        let verbatim = String::from_utf8(request.to_bytes_verbatim()).unwrap();
        assert!(verbatim.contains("\r\nl: 999\r\n"));
        request.headers.remove("Content-Length");
        let text = String::from_utf8(request.to_bytes()).unwrap();
        assert!(
            text.ends_with(
                "Content-Type: text/plain\r\nContent-Length: 18\r\n\r\nWatson, come here."
            )
        );
    }

    #[test]
    fn response_to_copies_and_tags() {
        let request = request();
        let response = Response::to(&request, 200, None, Some("a6c85cf"));
        assert_eq!(response.reason, "OK");
        assert!(response.is_final() && response.is_success() && !response.is_provisional());
        let names: Vec<_> = response.headers.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["Via", "v", "To", "From", "Call-ID", "CSeq"]);
        assert_eq!(response.to_header().unwrap().tag(), Some("a6c85cf"));
        assert_eq!(
            response.headers.get("To"),
            Some("Bob <sip:bob@biloxi.example.com>;tag=a6c85cf")
        );
        assert_eq!(response.vias().unwrap().len(), 2);
        assert_eq!(response.cseq().unwrap().method, Method::Message);

        let mut tagged = request.clone();
        tagged
            .headers
            .set("To", "<sip:bob@biloxi.example.com>;tag=old");
        let response = Response::to(
            &tagged,
            481,
            Some("Subscription Does Not Exist"),
            Some("new"),
        );
        assert_eq!(response.to_header().unwrap().tag(), Some("old"));
        assert_eq!(
            response.start_line(),
            "SIP/2.0 481 Subscription Does Not Exist"
        );
        let trying = Response::to(&request, 100, None, Some("x"));
        assert_eq!(trying.reason, "Trying");
        assert!(trying.is_provisional());
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(412), "Conditional Request Failed");
        assert_eq!(reason_phrase(489), "Bad Event");
        assert_eq!(reason_phrase(423), "Interval Too Brief");
        assert_eq!(reason_phrase(299), "Unknown");
    }

    #[test]
    fn message_wraps_either() {
        let message = Message::from(request());
        assert_eq!(
            message.call_id(),
            Some("a84b4c76e66710@pc33.atlanta.example.com")
        );
        assert!(message.as_request().is_some() && message.as_response().is_none());
        assert_eq!(message.body(), b"");
        let mut response = Message::from(Response::new(200, "OK"));
        response.headers_mut().push("CSeq", "1 OPTIONS");
        assert_eq!(response.cseq().unwrap().seq, 1);
        assert!(
            response
                .to_bytes()
                .starts_with(b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        );
    }
}
