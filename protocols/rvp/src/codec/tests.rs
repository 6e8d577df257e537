//! Unit tests of the framing codec (RFC 9112 §2–§7 as RVP uses them).

use http::{StatusCode, Uri, Version};

use super::*;
use crate::headers::{RvpHeaders, SubscriptionId};
use crate::method::Method;

fn requests(bytes: &[u8], limits: Limits) -> Vec<Result<Request, ParseError>> {
    let mut decoder = RequestDecoder::new(limits);
    decoder.feed(bytes);
    let mut out = Vec::new();
    loop {
        match decoder.next_request() {
            Ok(Some(request)) => out.push(Ok(request)),
            Ok(None) => return out,
            Err(error) => {
                out.push(Err(error));
                return out;
            }
        }
    }
}

fn one_request(bytes: &[u8]) -> Result<Request, ParseError> {
    let mut all = requests(bytes, Limits::default());
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn one_response(bytes: &[u8]) -> Result<Response, ParseError> {
    let mut decoder = ResponseDecoder::default();
    decoder.feed(bytes);
    let first = decoder.next_response().transpose().expect("a response");
    assert_eq!(decoder.next_response().ok().flatten(), None);
    first
}

#[test]
fn request_with_content_length() {
    let request = one_request(
        b"NOTIFY /instmsg/aliases/bruceb HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    )
    .unwrap();
    assert_eq!(request.method, Method::Notify);
    assert_eq!(request.target, "/instmsg/aliases/bruceb");
    assert_eq!(request.version, Version::HTTP_11);
    assert_eq!(request.headers["host"], "x");
    assert_eq!(request.body, b"hello");
}

#[test]
fn request_without_framing_has_no_body() {
    let all = requests(
        b"SUBSCRIPTIONS /lists/sales-event HTTP/1.1\r\nHost: x\r\n\r\nACL / HTTP/1.1\r\n\r\n",
        Limits::default(),
    );
    assert_eq!(all.len(), 2);
    assert!(all[0].as_ref().unwrap().body.is_empty());
    assert_eq!(all[1].as_ref().unwrap().method, Method::Acl);
}

#[test]
fn pipelined_requests_and_leading_empty_lines() {
    let all = requests(
        b"\r\n\r\nACL /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\nACL /b HTTP/1.0\n\n",
        Limits::default(),
    );
    let all: Vec<Request> = all.into_iter().map(Result::unwrap).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].target, "/a");
    assert_eq!(all[0].body, b"x");
    assert_eq!(all[1].target, "/b");
    assert_eq!(all[1].version, Version::HTTP_10);
}

#[test]
fn absolute_targets_and_double_spaces() {
    let request =
        one_request(b"SUBSCRIBE http://im.example.com/instmsg/aliases/stevem HTTP/1.1\r\n\r\n")
            .unwrap();
    assert_eq!(request.target.host(), Some("im.example.com"));
    let request = one_request(b"PROPFIND /instmsg/aliases/stevem  HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(request.target, "/instmsg/aliases/stevem");
}

#[test]
fn extension_methods_are_kept() {
    let request = one_request(b"BREW /pot HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(request.method, Method::Extension("BREW".into()));
    assert_eq!(
        request.method.rejection(),
        Some(StatusCode::NOT_IMPLEMENTED)
    );
}

#[test]
fn chunked_bodies_are_decoded() {
    let request = one_request(
        b"NOTIFY / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(request.body, b"hello 0123456789");
    let request =
        one_request(b"NOTIFY / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\n\n").unwrap();
    assert!(request.body.is_empty());
}

#[test]
fn chunked_errors() {
    let head = b"NOTIFY / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for (body, reason) in [
        (&b"x\r\n"[..], "missing chunk size"),
        (b"5 x\r\n", "invalid chunk-size line"),
        (b"5\r\nhelloX", "chunk data not followed by CRLF"),
    ] {
        let mut bytes = head.clone();
        bytes.extend_from_slice(body);
        assert_eq!(
            one_request(&bytes),
            Err(ParseError::InvalidChunk { reason }),
            "{body:?}"
        );
    }
    let mut bytes = head.clone();
    bytes.extend_from_slice(&[b'1'; 1100]);
    assert_eq!(
        one_request(&bytes),
        Err(ParseError::InvalidChunk {
            reason: "chunk-size line too long"
        })
    );
    let mut bytes = head.clone();
    bytes.extend_from_slice(b"ffffffffffffffffffffff\r\n");
    assert_eq!(
        one_request(&bytes),
        Err(ParseError::BodyTooLarge { max: 1024 * 1024 })
    );
}

#[test]
fn chunked_body_limit_counts_all_chunks() {
    let limits = Limits {
        max_body_bytes: 6,
        ..Limits::default()
    };
    let all = requests(
        b"NOTIFY / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n",
        limits,
    );
    assert_eq!(all, vec![Err(ParseError::BodyTooLarge { max: 6 })]);
}

#[test]
fn trailer_section_is_bounded() {
    let limits = Limits {
        max_head_bytes: 80,
        ..Limits::default()
    };
    let mut bytes = b"NOTIFY / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    for _ in 0..10 {
        bytes.extend_from_slice(b"X-Trailer: 0123456789\r\n");
    }
    assert_eq!(
        requests(&bytes, limits),
        vec![Err(ParseError::HeadTooLarge { max: 80 })]
    );
}

#[test]
fn framing_conflicts() {
    assert_eq!(
        one_request(
            b"NOTIFY / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        Err(ParseError::ConflictingFraming)
    );
    assert_eq!(
        one_request(b"NOTIFY / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        Err(ParseError::UnsupportedTransferEncoding {
            value: "gzip, chunked".into()
        })
    );
    assert_eq!(
        one_request(b"NOTIFY / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        Err(ParseError::InvalidContentLength {
            value: "1,2".into()
        })
    );
    assert_eq!(
        one_request(b"NOTIFY / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
        Err(ParseError::InvalidContentLength { value: "-1".into() })
    );
    assert_eq!(
        one_request(b"NOTIFY / HTTP/1.1\r\nContent-Length: XXXX\r\n\r\n"),
        Err(ParseError::InvalidContentLength {
            value: "XXXX".into()
        })
    );
    let request =
        one_request(b"NOTIFY / HTTP/1.1\r\nContent-Length: 2, 02\r\nContent-Length: 2\r\n\r\nab")
            .unwrap();
    assert_eq!(request.body, b"ab");
    let request = one_request(b"NOTIFY / HTTP/1.1\r\nContent-Length: 000\r\n\r\n").unwrap();
    assert!(request.body.is_empty());
}

#[test]
fn head_limits() {
    let limits = Limits {
        max_head_bytes: 64,
        max_headers: 2,
        max_body_bytes: 4,
    };
    let mut long = b"ACL / HTTP/1.1\r\nX: ".to_vec();
    long.extend_from_slice(&[b'a'; 100]);
    assert_eq!(
        requests(&long, limits),
        vec![Err(ParseError::HeadTooLarge { max: 64 })]
    );
    assert_eq!(
        requests(b"ACL / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits),
        vec![Err(ParseError::TooManyHeaders { max: 2 })]
    );
    assert_eq!(
        requests(b"ACL / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", limits),
        vec![Err(ParseError::BodyTooLarge { max: 4 })]
    );
    assert_eq!(
        requests(
            b"ACL / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
            limits
        ),
        vec![Err(ParseError::BodyTooLarge { max: 4 })]
    );
    // Exactly at the limit is fine.
    let exact = b"ACL / HTTP/1.1\r\nX: 0123456789012345678901234567890123456789\r\n\r\n";
    let limits = Limits {
        max_head_bytes: exact.len(),
        ..limits
    };
    assert!(requests(exact, limits)[0].is_ok());
    let limits = Limits {
        max_head_bytes: exact.len() - 1,
        ..limits
    };
    assert_eq!(
        requests(exact, limits),
        vec![Err(ParseError::HeadTooLarge {
            max: exact.len() - 1
        })]
    );
}

#[test]
fn syntax_errors() {
    assert_eq!(
        one_request(b"ACL / HTTP/2.0\r\n\r\n"),
        Err(ParseError::Syntax {
            source: httparse::Error::Version
        })
    );
    assert_eq!(
        one_request(b"ACL / HTTP/1.1\r\nBad Name: x\r\n\r\n"),
        Err(ParseError::Syntax {
            source: httparse::Error::HeaderName
        })
    );
    assert!(matches!(
        one_request(b"ACL /a\x7fb HTTP/1.1\r\n\r\n"),
        Err(ParseError::Syntax { .. } | ParseError::InvalidTarget { .. })
    ));
    assert_eq!(
        one_response(b"HTTP/1.1 099 Odd\r\n\r\n"),
        Err(ParseError::InvalidStatus { code: 99 })
    );
}

#[test]
fn errors_are_sticky_and_later_bytes_dropped() {
    let mut decoder = RequestDecoder::default();
    decoder.feed(b"ACL / HTTP/9.9\r\n\r\n");
    let error = decoder.next_request().unwrap_err();
    decoder.feed(b"ACL / HTTP/1.1\r\n\r\n");
    assert_eq!(decoder.next_request(), Err(error));
}

#[test]
fn byte_at_a_time() {
    let bytes = b"NOTIFY / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcACL / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
    let mut decoder = RequestDecoder::default();
    let mut got = Vec::new();
    for byte in bytes {
        decoder.feed(&[*byte]);
        while let Some(request) = decoder.next_request().unwrap() {
            got.push(request);
        }
    }
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, b"abc");
    assert_eq!(got[1].body, b"xy");
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn end_of_input() {
    let mut decoder = RequestDecoder::default();
    decoder.feed(b"ACL / HTTP/1.1\r\n\r\n\r\n");
    decoder.finish();
    assert!(decoder.next_request().unwrap().is_some());
    assert_eq!(decoder.next_request(), Ok(None));

    let mut decoder = RequestDecoder::default();
    decoder.feed(b"ACL / HTTP/1.1\r\n");
    decoder.finish();
    assert_eq!(
        decoder.next_request(),
        Err(ParseError::UnexpectedEof {
            part: MessagePart::Head
        })
    );

    let mut decoder = RequestDecoder::default();
    decoder.feed(b"ACL / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab");
    assert_eq!(decoder.next_request(), Ok(None));
    decoder.finish();
    decoder.feed(b"c");
    assert_eq!(
        decoder.next_request(),
        Err(ParseError::UnexpectedEof {
            part: MessagePart::Body
        })
    );
}

#[test]
fn responses_keep_the_reason_phrase() {
    let response = one_response(
        b"HTTP/1.1 200 Successful\r\nSubscription-Id: 98210\r\nRVP-Notifications-Version: 1.0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.reason, "Successful");
    assert_eq!(
        response
            .headers
            .typed::<SubscriptionId>()
            .unwrap()
            .unwrap()
            .as_str(),
        "98210"
    );
    assert!(response.body.is_empty());
    let response =
        one_response(b"HTTP/1.1 401 Access Denied\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(response.reason, "Access Denied");
}

#[test]
fn bodiless_statuses_ignore_content_length() {
    let mut decoder = ResponseDecoder::default();
    decoder.feed(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(
        decoder.next_response().unwrap().unwrap().status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        decoder.next_response().unwrap().unwrap().status,
        StatusCode::OK
    );
}

#[test]
fn responses_until_close() {
    let mut decoder = ResponseDecoder::reading_until_close(Limits::default());
    decoder.feed(b"HTTP/1.1 200 OK\r\n\r\nNOTIFY on node succeeded");
    assert_eq!(decoder.next_response(), Ok(None));
    decoder.finish();
    let response = decoder.next_response().unwrap().unwrap();
    assert_eq!(response.body, b"NOTIFY on node succeeded");
    assert_eq!(decoder.next_response(), Ok(None));

    let mut decoder = ResponseDecoder::reading_until_close(Limits {
        max_body_bytes: 3,
        ..Limits::default()
    });
    decoder.feed(b"HTTP/1.1 200 OK\r\n\r\nabcd");
    assert_eq!(
        decoder.next_response(),
        Err(ParseError::BodyTooLarge { max: 3 })
    );
}

#[test]
fn encode_then_decode() {
    let request = Request::new(
        Method::Proppatch,
        Uri::from_static("/instmsg/aliases/stevem"),
    )
    .with_xml(b"<d:propertyupdate xmlns:d='DAV:'/>".to_vec());
    let decoded = one_request(&request.to_bytes()).unwrap();
    assert_eq!(decoded.body, request.body);
    assert_eq!(decoded.method, request.method);
    assert_eq!(decoded.headers["content-length"], "34");
    let response = Response::new(StatusCode::MULTI_STATUS).with_xml(b"<x/>".to_vec());
    let decoded = one_response(&response.to_bytes()).unwrap();
    assert_eq!(decoded.reason, "Multi-Status");
    assert_eq!(decoded.body, b"<x/>");
}
