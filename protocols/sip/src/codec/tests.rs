//! Unit tests of the framing codec: datagrams, streams, validation, answers.

use super::*;
use crate::headers::HeaderError;
use crate::message::{Method, Request};

const OPTIONS: &str = "OPTIONS sip:ref.test SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\n\
To: <sip:ref.test>\r\n\
From: <sip:alice@ref.test>;tag=1\r\n\
Call-ID: o1@127.0.0.1\r\n\
CSeq: 1 OPTIONS\r\n";

fn with_body(head: &str, length: Option<&str>, body: &str) -> Vec<u8> {
    let mut out = head.to_string();
    if let Some(length) = length {
        out.push_str(&format!("Content-Length: {length}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

fn request(bytes: &[u8]) -> Request {
    match parse_datagram(bytes, &Limits::default()) {
        Ok(Some(Message::Request(request))) => request,
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn datagram_content_length_rules() {
    let limits = Limits::default();
    let exact = request(&with_body(OPTIONS, Some("5"), "hello"));
    assert_eq!(exact.method, Method::Options);
    assert_eq!(exact.body, b"hello");
    assert_eq!(request(&with_body(OPTIONS, Some("2"), "hello")).body, b"he");
    assert_eq!(request(&with_body(OPTIONS, None, "hello")).body, b"hello");
    assert_eq!(
        parse_datagram(&with_body(OPTIONS, Some("9999"), "hello"), &limits),
        Err(ParseError::ContentLengthExceedsDatagram {
            declared: 9999,
            actual: 5
        })
    );
    for bad in ["-999", "abc", "18446744073709551616", "", "5, 5"] {
        assert!(
            matches!(
                parse_datagram(&with_body(OPTIONS, Some(bad), "hello"), &limits),
                Err(ParseError::BadContentLength { .. })
            ),
            "{bad:?}"
        );
    }
    let twice = with_body(&format!("{OPTIONS}l: 5\r\n"), Some("5"), "hello");
    assert_eq!(
        parse_datagram(&twice, &limits),
        Err(ParseError::BadContentLength {
            value: "5, 5".into()
        })
    );
}

#[test]
fn datagram_keepalives_and_lenient_ends() {
    let limits = Limits::default();
    assert_eq!(parse_datagram(b"\r\n\r\n", &limits), Ok(None));
    assert_eq!(parse_datagram(b" \t\r\n", &limits), Ok(None));
    assert_eq!(parse_datagram(b"", &limits), Ok(None));
    let mut keepalive_first = b"\r\n\r\n".to_vec();
    keepalive_first.extend(with_body(OPTIONS, Some("0"), ""));
    assert_eq!(request(&keepalive_first).call_id(), Some("o1@127.0.0.1"));
    // No empty line at all: the head runs to the end of the datagram.
    assert_eq!(request(OPTIONS.as_bytes()).headers.len(), 6);
    // Bare LF line ends.
    let lf = with_body(OPTIONS, Some("2"), "hi")
        .iter()
        .copied()
        .filter(|b| *b != b'\r')
        .collect::<Vec<_>>();
    assert_eq!(request(&lf).body, b"hi");
    // Folding.
    let folded = OPTIONS
        .replace("Max-Forwards: 70", "Max-Forwards:\r\n  70")
        .replace("CSeq: 1", "CSeq: 1\r\n\t");
    let folded = request(&with_body(&folded, None, ""));
    assert_eq!(folded.max_forwards(), Some(70));
    assert_eq!(folded.headers.get("CSeq"), Some("1 OPTIONS"));
}

#[test]
fn datagram_limits() {
    let small = Limits {
        max_message: 400,
        max_headers: 6,
        max_line: 60,
    };
    assert!(parse_datagram(&with_body(OPTIONS, None, ""), &small).is_ok());
    assert_eq!(
        parse_datagram(&with_body(OPTIONS, None, &"x".repeat(400)), &small),
        Err(ParseError::TooLarge { max: 400 })
    );
    assert_eq!(
        parse_datagram(&with_body(&format!("{OPTIONS}X: y\r\n"), None, ""), &small),
        Err(ParseError::TooManyHeaders { max: 6 })
    );
    let long = OPTIONS.replace("o1@127.0.0.1", &"c".repeat(60));
    assert_eq!(
        parse_datagram(&with_body(&long, None, ""), &small),
        Err(ParseError::LineTooLong { max: 60 })
    );
}

#[test]
fn header_line_errors_name_the_line() {
    let limits = Limits::default();
    let cases = [
        (OPTIONS.replace("Max-Forwards: 70", "Max-Forwards 70"), 3),
        (OPTIONS.replace("Max-Forwards: 70", "Max Forwards: 70"), 3),
        (OPTIONS.replace("Via:", " Via:"), 2),
        (OPTIONS.replace("Call-ID: o1", "Call-ID: o\r1"), 6),
        (OPTIONS.replace("To:", ": x\r\nTo:"), 4),
    ];
    for (head, line) in cases {
        assert_eq!(
            parse_datagram(&with_body(&head, None, ""), &limits),
            Err(ParseError::BadHeaderLine { line }),
            "{head:?}"
        );
    }
    let mut latin1 = with_body(OPTIONS, None, "");
    let at = latin1.windows(4).position(|w| w == b"o1@1").unwrap();
    latin1[at] = 0xE9;
    assert_eq!(
        parse_datagram(&latin1, &limits),
        Err(ParseError::BadHeaderLine { line: 6 })
    );
}

#[test]
fn validation_and_answers() {
    let good = request(&with_body(OPTIONS, Some("0"), ""));
    assert_eq!(validate_request(&good), Ok(()));
    let cases: Vec<(Request, ParseError, (u16, &str))> = vec![
        {
            let mut r = good.clone();
            r.headers.remove("Call-ID");
            (
                r,
                ParseError::MissingHeader { name: "Call-ID" },
                (400, "Missing Call-ID"),
            )
        },
        {
            let mut r = good.clone();
            r.headers.remove("Via");
            (
                r,
                ParseError::MissingHeader { name: "Via" },
                (400, "Missing Via"),
            )
        },
        {
            let mut r = good.clone();
            r.headers.push("t", "<sip:other@ref.test>");
            (
                r,
                HeaderError::Repeated {
                    name: "To",
                    count: 2,
                }
                .into(),
                (400, "Repeated To"),
            )
        },
        {
            let mut r = good.clone();
            r.headers.set("CSeq", "1 INVITE");
            (
                r,
                ParseError::CSeqMethodMismatch {
                    cseq: "INVITE".into(),
                    method: "OPTIONS".into(),
                },
                (400, "CSeq Method Mismatch"),
            )
        },
    ];
    for (request, error, (status, reason)) in cases {
        assert_eq!(validate_request(&request), Err(error.clone()));
        assert_eq!(error.status(), (status, reason.to_string()));
        assert!(!error.framing_lost());
    }
    for (name, value) in [
        ("CSeq", "x OPTIONS"),
        ("Via", "SIP/2.0/UDP"),
        ("From", "\"open <sip:a@b>"),
        ("Call-ID", "a b"),
        ("Max-Forwards", "300"),
        ("Max-Forwards", "-1"),
    ] {
        let mut r = good.clone();
        r.headers.set(name, value);
        let error = validate_request(&r).unwrap_err();
        assert_eq!(
            error.status(),
            (400, format!("Bad {name}")),
            "{name}: {value}"
        );
    }
    let mut response = crate::message::Response::to(&good, 200, None, Some("x"));
    assert_eq!(validate_response(&response), Ok(()));
    response
        .headers
        .set("CSeq", "9292394834772304023312 OPTIONS");
    assert!(validate_response(&response).is_err());
}

#[test]
fn statuses() {
    assert_eq!(
        ParseError::BadVersion {
            version: "SIP/7.0".into()
        }
        .status()
        .0,
        505
    );
    assert_eq!(
        ParseError::UnsupportedScheme {
            scheme: "tel".into()
        }
        .status()
        .0,
        416
    );
    assert_eq!(
        ParseError::TooLarge { max: 1 }.status(),
        (513, "Message Too Large".into())
    );
    assert_eq!(
        ParseError::MissingContentLength.status(),
        (400, "Missing Content-Length".into())
    );
    assert_eq!(
        ParseError::BadContentLength { value: "x".into() }.status(),
        (400, "Bad Content-Length".into())
    );
    assert_eq!(
        ParseError::BadHeaderLine { line: 4 }.status(),
        (400, "Bad Header Line 4".into())
    );
    assert!(ParseError::MissingContentLength.framing_lost());
    assert!(ParseError::LineTooLong { max: 1 }.framing_lost());
    assert!(
        !ParseError::ContentLengthExceedsDatagram {
            declared: 2,
            actual: 1
        }
        .framing_lost()
    );
}

fn drain(decoder: &mut StreamDecoder) -> Vec<Result<Message, ParseError>> {
    let mut out = Vec::new();
    loop {
        match decoder.next_message() {
            Ok(Some(message)) => out.push(Ok(message)),
            Ok(None) => return out,
            Err(error) => {
                let lost = error.framing_lost();
                out.push(Err(error));
                if lost {
                    return out;
                }
            }
        }
    }
}

#[test]
fn stream_frames_by_content_length_and_skips_keepalives() {
    let mut decoder = StreamDecoder::default();
    let one = with_body(OPTIONS, Some("5"), "hello");
    let mut bytes = b"\r\n\r\n".to_vec();
    bytes.extend(&one);
    bytes.extend(b"\r\n");
    bytes.extend(&one);
    for chunk in bytes.chunks(7) {
        decoder.feed(chunk);
    }
    let messages = drain(&mut decoder);
    assert_eq!(messages.len(), 2);
    assert!(
        messages
            .iter()
            .all(|m| m.as_ref().is_ok_and(|m| m.body() == b"hello"))
    );
    assert!(decoder.take_keepalive());
    assert!(!decoder.take_keepalive());
    assert_eq!(decoder.buffered(), 0);
    decoder.feed(b"\r\n\r\n");
    assert_eq!(decoder.next_message(), Ok(None));
    assert!(decoder.take_keepalive());
}

#[test]
fn stream_skips_a_bad_message_and_goes_on() {
    let mut decoder = StreamDecoder::new(Limits::default());
    let bad = with_body(
        &OPTIONS.replace(
            "OPTIONS sip:ref.test SIP/2.0",
            "OPTIONS <sip:ref.test> SIP/2.0",
        ),
        Some("3"),
        "abc",
    );
    decoder.feed(&bad);
    decoder.feed(&with_body(OPTIONS, Some("0"), ""));
    let results = drain(&mut decoder);
    assert!(matches!(results[0], Err(ParseError::Uri(_))));
    assert_eq!(decoder.rejected(), Some(bad.as_slice()));
    let salvaged = salvage(decoder.rejected().unwrap()).unwrap();
    assert_eq!(salvaged.call_id(), Some("o1@127.0.0.1"));
    assert!(results[1].is_ok());
    assert_eq!(results.len(), 2);
}

#[test]
fn stream_framing_errors_stick() {
    let mut decoder = StreamDecoder::default();
    decoder.feed(&with_body(OPTIONS, None, ""));
    assert_eq!(
        decoder.next_message(),
        Err(ParseError::MissingContentLength)
    );
    assert_eq!(
        decoder.next_message(),
        Err(ParseError::MissingContentLength)
    );
    assert!(salvage(decoder.rejected().unwrap()).unwrap().cseq().is_ok());
    decoder.feed(&with_body(OPTIONS, Some("0"), ""));
    assert_eq!(
        decoder.next_message(),
        Err(ParseError::MissingContentLength)
    );
    assert_eq!(decoder.buffered(), 0);

    let mut decoder = StreamDecoder::default();
    decoder.feed(&with_body(OPTIONS, Some("-1"), ""));
    assert!(matches!(
        decoder.next_message(),
        Err(ParseError::BadContentLength { .. })
    ));

    let small = Limits {
        max_message: 300,
        max_headers: 100,
        max_line: 100,
    };
    let mut decoder = StreamDecoder::new(small);
    decoder.feed(&with_body(OPTIONS, Some("1000"), ""));
    assert_eq!(
        decoder.next_message(),
        Err(ParseError::TooLarge { max: 300 })
    );
    let mut decoder = StreamDecoder::new(small);
    decoder.feed(&[b'x'; 102]);
    assert_eq!(
        decoder.next_message(),
        Err(ParseError::LineTooLong { max: 100 })
    );
    let mut decoder = StreamDecoder::new(small);
    decoder.feed("OPTIONS sip:a SIP/2.0\r\nX: y\r\n".repeat(20).as_bytes());
    assert_eq!(
        decoder.next_message(),
        Err(ParseError::TooLarge { max: 300 })
    );
    assert_eq!(decoder.limits(), small);
}
