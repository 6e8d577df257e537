//! Property tests of the RFC 3261 §7 / §18.3 codec: messages written by the crate decode
//! back to themselves from datagrams and from streams split anywhere; damaged streams
//! decode the same way however split; arbitrary bytes never panic.

use imfed_sip::headers::same_name;
use imfed_sip::uri::Scheme;
use imfed_sip::{
    Headers, Limits, Message, Method, NameAddr, ParseError, Request, Response, StreamDecoder, Uri,
    Via, parse_datagram, salvage,
};
use proptest::prelude::*;

use crate::{damage, edits};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(Method::KNOWN.to_vec()),
        "[A-Z][A-Za-z0-9.!%*_+`'~-]{0,10}".prop_map(|name| name.parse().unwrap()),
    ]
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        any::<bool>(),
        prop::option::of("[a-z0-9._+-]{1,8}"),
        prop_oneof![
            "[a-z]{1,8}(\\.[a-z]{1,5}){0,2}",
            Just("127.0.0.1".to_string()),
            Just("[::1]".to_string())
        ],
        prop::option::of(1u16..),
        prop::option::of(prop::sample::select(vec!["udp", "tcp"])),
        any::<bool>(),
    )
        .prop_map(|(sips, user, host, port, transport, lr)| {
            let mut uri = Uri::new(user.as_deref(), &host);
            if sips {
                uri.scheme = Scheme::Sips;
            }
            if let Some(port) = port {
                uri = uri.with_port(port);
            }
            if let Some(transport) = transport {
                uri = uri.with_param("transport", Some(transport));
            }
            if lr {
                uri = uri.with_param("lr", None);
            }
            uri
        })
}

/// A header value as a parse returns it: no CR or LF, no surrounding whitespace.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[!-~]([ -~]{0,20}[!-~])?",
        "[a-z]{1,5} \u{e9}\u{4e2d}[a-z]{0,3}",
    ]
}

/// Names as written: long, compact, odd case, extension.
fn name(canonical: &'static str, compact: Option<&'static str>) -> impl Strategy<Value = String> {
    let mut names = vec![
        canonical.to_string(),
        canonical.to_ascii_uppercase(),
        canonical.to_ascii_lowercase(),
    ];
    names.extend(compact.map(str::to_string));
    prop::sample::select(names)
}

fn headers(method: Method) -> impl Strategy<Value = Headers> {
    let vias = prop::collection::vec(
        (
            prop::sample::select(vec!["UDP", "TCP"]),
            "[a-z]{1,6}\\.test",
            prop::option::of(1u16..),
            "[a-zA-Z0-9]{1,10}",
        ),
        1..4,
    );
    let extra = prop::collection::vec(("X-[A-Za-z0-9-]{1,10}", value()), 0..4);
    (
        name("Via", Some("v")),
        vias,
        any::<bool>(),
        (
            name("To", Some("t")),
            uri(),
            prop::option::of("[a-z0-9]{1,6}"),
        ),
        (name("From", Some("f")), uri(), "[a-z0-9]{1,6}"),
        (name("Call-ID", Some("i")), "[a-zA-Z0-9.@-]{1,20}"),
        (name("CSeq", None), 0u32..=0x7fff_ffff),
        extra,
    )
        .prop_map(
            move |(via_name, vias, joined, to, from, call_id, cseq, extra)| {
                let mut headers = Headers::new();
                let vias: Vec<String> = vias
                    .into_iter()
                    .map(|(transport, host, port, branch)| {
                        let mut via = Via::new(
                            transport,
                            &host,
                            port.unwrap_or(5060),
                            &format!("z9hG4bK{branch}"),
                        );
                        via.port = port;
                        via.to_string()
                    })
                    .collect();
                if joined {
                    headers.push(&via_name, vias.join(", "));
                } else {
                    for via in vias {
                        headers.push(&via_name, via);
                    }
                }
                headers.push("Max-Forwards", "70");
                let mut to_value = NameAddr::new(to.1);
                if let Some(tag) = to.2 {
                    to_value = to_value.with_tag(&tag);
                }
                headers.push(&to.0, to_value.to_string());
                headers.push(
                    &from.0,
                    NameAddr::new(from.1)
                        .with_display("A \"B\"")
                        .with_tag(&from.2)
                        .to_string(),
                );
                headers.push(&call_id.0, call_id.1);
                headers.push(&cseq.0, format!("{} {method}", cseq.1));
                for (name, value) in extra {
                    headers.push(&name, value);
                }
                headers
            },
        )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..120),
        Just(b"\r\n\r\nINVITE sip:x SIP/2.0\r\nContent-Length: 5\r\n\r\n".to_vec()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (method(), uri())
        .prop_flat_map(|(method, uri)| (Just(method.clone()), Just(uri), headers(method), body()))
        .prop_map(|(method, uri, headers, body)| Request {
            method,
            uri,
            headers,
            body,
        })
}

fn response() -> impl Strategy<Value = Response> {
    (
        100u16..700,
        prop_oneof![
            Just(String::new()),
            "[A-Za-z][A-Za-z ]{0,15}",
            Just("Déjà vu".to_string())
        ],
        method(),
    )
        .prop_flat_map(|(status, reason, method)| {
            (Just(status), Just(reason), headers(method), body())
        })
        .prop_map(|(status, reason, headers, body)| Response {
            status,
            reason,
            headers,
            body,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        request().prop_map(Message::Request),
        response().prop_map(Message::Response)
    ]
}

/// `message` as it decodes after `to_bytes`: one Content-Length, the body's.
fn framed(message: &Message) -> Message {
    let mut expected = message.clone();
    let headers = expected.headers_mut();
    headers.retain(|name, _| !same_name(name, "Content-Length"));
    headers.push("Content-Length", message.body().len().to_string());
    expected
}

/// Everything a stream decoder gives for `chunks`, stopping at an error that loses the
/// framing.
fn decode(chunks: &[&[u8]]) -> Vec<Result<Message, ParseError>> {
    let mut decoder = StreamDecoder::default();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => out.push(Ok(message)),
                Ok(None) => break,
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
    out
}

/// `bytes` cut at the given points.
fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for point in points {
        pieces.push(&bytes[start..point]);
        start = point;
    }
    pieces.push(&bytes[start..]);
    pieces
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// A message written by the crate decodes to itself from a datagram.
    #[test]
    fn datagram_round_trip(message in message()) {
        let bytes = message.to_bytes();
        prop_assert_eq!(parse_datagram(&bytes, &Limits::default()), Ok(Some(framed(&message))));
        // The headers written verbatim with a correct Content-Length read the same too.
        let verbatim = match &framed(&message) {
            Message::Request(request) => request.to_bytes_verbatim(),
            Message::Response(response) => response.to_bytes_verbatim(),
        };
        prop_assert_eq!(verbatim, bytes);
    }

    /// Several messages back to back, with keep-alives between some, decode to the same
    /// messages however the stream is split.
    #[test]
    fn split_stream_gives_the_same_messages(
        messages in prop::collection::vec(message(), 1..4),
        keepalives in prop::collection::vec(any::<bool>(), 4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut bytes = Vec::new();
        for (message, keepalive) in messages.iter().zip(&keepalives) {
            if *keepalive {
                bytes.extend_from_slice(b"\r\n\r\n");
            }
            bytes.extend(message.to_bytes());
        }
        let expected: Vec<_> = messages.iter().map(|m| Ok(framed(m))).collect();
        prop_assert_eq!(decode(&[&bytes]), expected.clone());
        prop_assert_eq!(decode(&split(&bytes, &cuts)), expected);
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(decode(&one_by_one).len(), messages.len());
    }

    /// A damaged stream decodes to the same results (messages and errors) however split.
    #[test]
    fn damaged_streams_fail_the_same_way_however_split(
        messages in prop::collection::vec(message(), 1..3),
        edits in edits(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let bytes: Vec<u8> = messages.iter().flat_map(Message::to_bytes).collect();
        let bytes = damage(bytes, &edits);
        prop_assert_eq!(decode(&split(&bytes, &cuts)), decode(&[&bytes]));
        let _ = parse_datagram(&bytes, &Limits::default());
        let _ = salvage(&bytes);
    }

    /// Arbitrary bytes never panic, as a datagram or a stream.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let _ = parse_datagram(&bytes, &Limits::default());
        let _ = decode(&split(&bytes, &cuts));
        let _ = salvage(&bytes);
    }

    /// Text that looks like SIP, with damage: the parsers and every typed accessor on
    /// what parses never panic.
    #[test]
    fn sip_like_text_never_panics(message in message(), edits in edits()) {
        let bytes = damage(message.to_bytes(), &edits);
        if let Ok(Some(message)) = parse_datagram(&bytes, &Limits::default()) {
            let headers = message.headers();
            let _ = (headers.vias(), headers.to(), headers.from(), headers.cseq(), headers.contacts());
            let _ = (headers.routes(), headers.record_routes(), headers.event(), headers.subscription_state());
            if let Message::Request(request) = &message {
                let _ = imfed_sip::validate_request(request);
                let _ = imfed_sip::TransactionKey::of_request(request);
                let _ = imfed_sip::Dialog::uas(request, "t");
            }
        }
    }
}
