//! RVP §5.1.7–§6.3: the example exchanges of the text, decoded into typed values, one
//! module per section of the text.
//!
//! Each fixture is the text as printed, with the page layout undone (indentation and
//! trailing blanks removed, lines joined with CRLF, lines broken by the page width joined
//! again where they sit in an HTTP head or a MIME header) and `XXXX` replaced by the real
//! Content-Length. Where the notes (§1.12, §1.13) list an erratum, the printed form is
//! tested to fail the way it should, and the fix is applied with a visible `replace`.

use http::HeaderValue;
use http::StatusCode;
use http::header::HOST;
use imfed_rvp::headers::{
    CallBack, FromPrincipal, NotificationType, NotificationsVersion, SubscriptionId,
    SubscriptionLifetime,
};
use imfed_rvp::{Method, NodeUrl, Request, RequestDecoder, Response, ResponseDecoder, RvpHeaders};

mod access;
mod notify;
mod properties;
mod subscriptions;

/// A message as it would travel: head and body with CRLF line ends, `XXXX` replaced by
/// the body's length in bytes.
pub(crate) fn wire(head: &str, body: &str) -> Vec<u8> {
    let body = body.replace('\n', "\r\n");
    let head = head.trim_end().replace("XXXX", &body.len().to_string());
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// Decodes exactly one request from `bytes`, checks that encoding it again and decoding
/// gives it back, and returns it.
pub(crate) fn request(bytes: &[u8]) -> Request {
    let mut decoder = RequestDecoder::default();
    decoder.feed(bytes);
    let request = decoder.next_request().unwrap().expect("a whole request");
    assert_eq!(decoder.buffered(), 0, "bytes left after the request");
    let mut again = RequestDecoder::default();
    again.feed(&request.to_bytes());
    let mut expected = request.clone();
    expected.headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(request.body.len()),
    );
    assert_eq!(again.next_request().unwrap(), Some(expected));
    request
}

/// As [`request`], for a response.
pub(crate) fn response(bytes: &[u8]) -> Response {
    let mut decoder = ResponseDecoder::default();
    decoder.feed(bytes);
    let response = decoder.next_response().unwrap().expect("a whole response");
    assert_eq!(decoder.buffered(), 0, "bytes left after the response");
    let mut again = ResponseDecoder::default();
    again.feed(&response.to_bytes());
    let mut expected = response.clone();
    expected.headers.insert(
        http::header::CONTENT_LENGTH,
        HeaderValue::from(response.body.len()),
    );
    assert_eq!(again.next_response().unwrap(), Some(expected));
    response
}

pub(crate) fn url(text: &str) -> NodeUrl {
    NodeUrl::parse(text).unwrap()
}

pub(crate) fn principal(text: &str) -> Option<FromPrincipal> {
    Some(FromPrincipal::Node(url(text)))
}

pub(crate) fn id(text: &str) -> Option<SubscriptionId> {
    Some(SubscriptionId::new(text).unwrap())
}

/// "Every request and response must include this header" (§7.2); the text's 1.0.
pub(crate) fn assert_version(headers: &http::HeaderMap) {
    assert_eq!(
        headers.typed::<NotificationsVersion>(),
        Ok(Some(NotificationsVersion::V1_0))
    );
}

pub(crate) const BRUCEB_ACME: &str = "http://im.acme.com/instmsg/aliases/bruceb";
pub(crate) const STEVEM: &str = "http://im.example.com/instmsg/aliases/stevem";

// §5.1.7.1 and §6.3.
pub(crate) const LOGIN_SUBSCRIBE: &str = "\
SUBSCRIBE /instmsg/aliases/bruceb HTTP/1.1
Subscription-Lifetime: 14400
Notification-Type: pragma/notify
Call-Back: http://198.176.154.132:1234
RVP-Notifications-Version: 1.0
Host: imhome1.acme.com
Content-Length: 0
RVP-From-Principal: http://im.acme.com/instmsg/aliases/bruceb";

pub(crate) const LOGIN_SUBSCRIBE_OK: &str = "\
HTTP/1.1 200 Successful
Subscription-Id: 98210
Subscription-Lifetime: 14400
RVP-Notifications-Version: 1.0";

pub(crate) fn check_login_subscribe(request: &Request) {
    assert_eq!(request.method, Method::Subscribe);
    assert_eq!(request.target, "/instmsg/aliases/bruceb");
    assert_eq!(request.headers[HOST], "imhome1.acme.com");
    assert_eq!(request.header(), Ok(Some(SubscriptionLifetime(14400))));
    assert_eq!(request.header(), Ok(Some(NotificationType::PragmaNotify)));
    assert_eq!(
        request.header(),
        Ok(Some(CallBack(url("http://198.176.154.132:1234"))))
    );
    assert_eq!(request.header(), Ok(principal(BRUCEB_ACME)));
    assert_version(&request.headers);
    assert!(request.body.is_empty());
}

pub(crate) fn check_login_subscribe_ok(response: &Response) {
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.reason, "Successful");
    assert_eq!(response.header(), Ok(id("98210")));
    assert_eq!(response.header(), Ok(Some(SubscriptionLifetime(14400))));
    assert_version(&response.headers);
    // No Content-Length and no body: read as empty, as every RVP example intends.
    assert!(response.body.is_empty());
}
