//! The example messages of the RFCs, decoded into typed values, one module per RFC.
//!
//! Each fixture is the text as the RFC prints it, with the page layout undone
//! (indentation removed, lines joined with CRLF) and `XXXX` standing for the body's real
//! length where the RFC leaves it out. Where an RFC has a known erratum, the test says so.

use imfed_sip::headers::same_name;
use imfed_sip::{
    Headers, Limits, Message, Request, Response, StreamDecoder, parse_datagram, validate_request,
    validate_response,
};

mod rfc3261;
mod rfc3428;
mod rfc3856;
mod rfc3903;
mod rfc4475;

/// A message as it travels: head lines joined with CRLF, `XXXX` replaced by the body's
/// length, the empty line, the body (its lines joined with CRLF too).
pub(crate) fn wire(head: &str, body: &str) -> Vec<u8> {
    let body = body.replace('\n', "\r\n");
    let head = head.trim_end().replace("XXXX", &body.len().to_string());
    let mut out = head.replace('\n', "\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// What `to_bytes` then a parse give for `headers` and a body of `len` bytes: one
/// Content-Length with that value, where the first was, else last.
fn framed(headers: &Headers, len: usize) -> Headers {
    let mut out = Headers::new();
    let mut wrote = false;
    for (name, value) in headers.iter() {
        if same_name(name, "Content-Length") {
            if !wrote {
                out.push(name, len.to_string());
                wrote = true;
            }
        } else {
            out.push(name, value);
        }
    }
    if !wrote {
        out.push("Content-Length", len.to_string());
    }
    out
}

/// Decodes one message from a datagram and, when it has a Content-Length, from a stream;
/// checks that both agree and that writing it and decoding again gives it back.
pub(crate) fn message(bytes: &[u8]) -> Message {
    let message = parse_datagram(bytes, &Limits::default())
        .unwrap_or_else(|error| panic!("{error}"))
        .expect("a message");
    if message.headers().contains("Content-Length") {
        let mut decoder = StreamDecoder::default();
        let (first, second) = bytes.split_at(bytes.len() / 2);
        decoder.feed(first);
        decoder.feed(second);
        assert_eq!(decoder.next_message(), Ok(Some(message.clone())));
    }
    let again = parse_datagram(&message.to_bytes(), &Limits::default())
        .unwrap()
        .unwrap();
    let mut expected = message.clone();
    *expected.headers_mut() = framed(message.headers(), message.body().len());
    assert_eq!(again, expected);
    message
}

/// As [`message`], for a request that passes [`validate_request`].
pub(crate) fn request(bytes: &[u8]) -> Request {
    match message(bytes) {
        Message::Request(request) => {
            validate_request(&request).unwrap_or_else(|error| panic!("{error}"));
            request
        }
        Message::Response(response) => panic!("a response: {}", response.start_line()),
    }
}

/// As [`message`], for a response that passes [`validate_response`].
pub(crate) fn response(bytes: &[u8]) -> Response {
    match message(bytes) {
        Message::Response(response) => {
            validate_response(&response).unwrap_or_else(|error| panic!("{error}"));
            response
        }
        Message::Request(request) => panic!("a request: {}", request.start_line()),
    }
}
