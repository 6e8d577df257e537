//! Property tests of the RVP §3 framing codec: several messages encoded back to back
//! decode to the same messages however the stream is split, damaged streams fail the same
//! way however split, and arbitrary bytes never panic.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version};
use imfed_rvp::headers::{
    AckType, HopCount, NotificationsVersion, SubscriptionId, SubscriptionLifetime,
};
use imfed_rvp::{
    Limits, Method, ParseError, Request, RequestDecoder, Response, ResponseDecoder, RvpHeaders,
};
use proptest::prelude::*;

use crate::{damage, edits};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(Method::RVP.to_vec()),
        Just(Method::Get),
        Just(Method::Copy),
        Just(Method::Extension("X-BREW".into())),
    ]
}

fn target() -> impl Strategy<Value = Uri> {
    prop::sample::select(vec![
        "/",
        "/instmsg/aliases/bruceb",
        "/lists/sales-event",
        "http://im.example.com/instmsg/aliases/stevem",
        "/a?b=c",
        "*",
    ])
    .prop_map(Uri::from_static)
}

/// A field value as httparse returns it: visible ASCII, inner spaces, no outer ones.
fn field_value() -> impl Strategy<Value = HeaderValue> {
    "[!-~]([ -~]{0,20}[!-~])?".prop_map(|text| HeaderValue::from_str(&text).unwrap())
}

/// Header fields: typed RVP headers and arbitrary extension fields (never the framing
/// ones, which the encoder writes itself).
fn headers() -> impl Strategy<Value = HeaderMap> {
    let typed = (
        any::<bool>(),
        prop::option::of(1u32..5),
        prop::option::of(0u64..100_000),
        prop::option::of("[0-9A-Z]{1,8}"),
        prop::option::of(prop::sample::select(vec![
            AckType::SingleHop,
            AckType::DeepOr,
            AckType::DeepAnd,
        ])),
        any::<bool>(),
    );
    let extra = prop::collection::vec(("x-[a-z0-9-]{1,10}", field_value()), 0..4);
    (typed, extra).prop_map(|((v1, hops, lifetime, id, ack, host), extra)| {
        let mut headers = HeaderMap::new();
        headers.set_typed(&if v1 {
            NotificationsVersion::V1_0
        } else {
            NotificationsVersion::V0_2
        });
        if let Some(hops) = hops.and_then(HopCount::new) {
            headers.set_typed(&hops);
        }
        if let Some(lifetime) = lifetime {
            headers.set_typed(&SubscriptionLifetime(lifetime));
        }
        if let Some(id) = id {
            headers.set_typed(&SubscriptionId::new(id).unwrap());
        }
        if let Some(ack) = ack {
            headers.set_typed(&ack);
        }
        if host {
            headers.insert(HOST, HeaderValue::from_static("im.example.com"));
        }
        for (name, value) in extra {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
        headers
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..96),
        Just(b"<r:notification/>\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec()),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (method(), target(), any::<bool>(), headers(), body()).prop_map(
        |(method, target, old, headers, body)| Request {
            method,
            target,
            version: if old {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            },
            headers,
            body,
        },
    )
}

fn response() -> impl Strategy<Value = Response> {
    let status = prop::sample::select(vec![200u16, 207, 302, 401, 405, 412, 500, 501, 599]);
    let reason = prop_oneof![Just(String::new()), "[A-Za-z][A-Za-z -]{0,15}[A-Za-z]"];
    (status, reason, headers(), body()).prop_map(|(status, reason, headers, body)| Response {
        version: Version::HTTP_11,
        status: StatusCode::from_u16(status).unwrap(),
        reason,
        headers,
        body,
    })
}

/// How a message is framed on the wire: `Content-Length` (the encoder), or chunked with
/// the body cut at the given points (written by hand: the encoder never emits chunked).
#[derive(Clone, Debug)]
enum Framing {
    Length,
    Chunked(Vec<prop::sample::Index>, bool),
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        2 => Just(Framing::Length),
        1 => (prop::collection::vec(any::<prop::sample::Index>(), 0..4), any::<bool>())
            .prop_map(|(cuts, trailer)| Framing::Chunked(cuts, trailer)),
    ]
}

/// Writes a head with the map's fields as they are, then a chunked body.
fn write_chunked(
    start_line: &str,
    headers: &HeaderMap,
    body: &[u8],
    cuts: &[prop::sample::Index],
    trailer: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    for (index, pair) in points.windows(2).enumerate() {
        let chunk = &body[pair[0]..pair[1]];
        if index % 2 == 0 {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        } else {
            out.extend_from_slice(format!("{:X};ext=1\r\n", chunk.len()).as_bytes());
        }
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"x-trailer: 1\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The bytes of `requests` and what decoding them must give.
fn request_stream(requests: &[(Request, Framing)]) -> (Vec<u8>, Vec<Request>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (request, framing) in requests {
        let mut decoded = request.clone();
        match framing {
            Framing::Length => {
                request.write_to(&mut bytes);
                decoded
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(request.body.len()));
            }
            Framing::Chunked(cuts, trailer) => {
                let version = if request.version == Version::HTTP_10 {
                    "HTTP/1.0"
                } else {
                    "HTTP/1.1"
                };
                let start = format!("{} {} {version}", request.method, request.target);
                write_chunked(
                    &start,
                    &request.headers,
                    &request.body,
                    cuts,
                    *trailer,
                    &mut bytes,
                );
                decoded
                    .headers
                    .append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
        }
        expected.push(decoded);
    }
    (bytes, expected)
}

fn response_stream(responses: &[(Response, Framing)]) -> (Vec<u8>, Vec<Response>) {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (response, framing) in responses {
        let mut decoded = response.clone();
        match framing {
            Framing::Length => {
                response.write_to(&mut bytes);
                decoded
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(response.body.len()));
            }
            Framing::Chunked(cuts, trailer) => {
                let mut start = format!("HTTP/1.1 {}", response.status.as_str());
                if !response.reason.is_empty() {
                    start.push(' ');
                    start.push_str(&response.reason);
                } else {
                    start.push(' ');
                }
                write_chunked(
                    &start,
                    &response.headers,
                    &response.body,
                    cuts,
                    *trailer,
                    &mut bytes,
                );
                decoded
                    .headers
                    .append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
            }
        }
        expected.push(decoded);
    }
    (bytes, expected)
}

type Outcome<M> = Vec<Result<M, ParseError>>;

/// Feeds `bytes` in pieces of the given sizes (all at once for none), draining after
/// each; then ends the input and drains once more.
fn run<M>(
    bytes: &[u8],
    sizes: &[usize],
    mut feed: impl FnMut(&[u8]),
    mut finish: impl FnMut(),
    mut next: impl FnMut() -> Result<Option<M>, ParseError>,
) -> Outcome<M> {
    let mut out = Vec::new();
    let mut drain = |out: &mut Outcome<M>| {
        loop {
            match next() {
                Ok(Some(message)) => out.push(Ok(message)),
                Ok(None) => return false,
                Err(error) => {
                    out.push(Err(error));
                    return true;
                }
            }
        }
    };
    let mut rest = bytes;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes
            .next()
            .map_or(rest.len(), |size| (*size).clamp(1, rest.len()));
        let (chunk, tail) = rest.split_at(size);
        feed(chunk);
        rest = tail;
        if drain(&mut out) {
            return out;
        }
    }
    finish();
    drain(&mut out);
    out
}

fn requests_of(bytes: &[u8], sizes: &[usize], limits: Limits) -> Outcome<Request> {
    let decoder = std::cell::RefCell::new(RequestDecoder::new(limits));
    run(
        bytes,
        sizes,
        |chunk| decoder.borrow_mut().feed(chunk),
        || decoder.borrow_mut().finish(),
        || decoder.borrow_mut().next_request(),
    )
}

fn responses_of(bytes: &[u8], sizes: &[usize], limits: Limits) -> Outcome<Response> {
    let decoder = std::cell::RefCell::new(ResponseDecoder::new(limits));
    run(
        bytes,
        sizes,
        |chunk| decoder.borrow_mut().feed(chunk),
        || decoder.borrow_mut().finish(),
        || decoder.borrow_mut().next_response(),
    )
}

fn small_limits() -> Limits {
    Limits {
        max_head_bytes: 120,
        max_headers: 4,
        max_body_bytes: 40,
    }
}

proptest! {
    /// Several requests encoded back to back decode to the same requests, however the
    /// stream is split: at once, at arbitrary sizes, a byte at a time.
    #[test]
    fn split_request_stream_gives_the_same_requests(
        requests in prop::collection::vec((request(), framing()), 1..5),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let (bytes, expected) = request_stream(&requests);
        let expected: Outcome<Request> = expected.into_iter().map(Ok).collect();
        prop_assert_eq!(&requests_of(&bytes, &[], Limits::default()), &expected);
        prop_assert_eq!(&requests_of(&bytes, &sizes, Limits::default()), &expected);
        prop_assert_eq!(&requests_of(&bytes, &[1], Limits::default()), &expected);
    }

    /// The same for responses.
    #[test]
    fn split_response_stream_gives_the_same_responses(
        responses in prop::collection::vec((response(), framing()), 1..5),
        sizes in prop::collection::vec(1usize..64, 1..8),
    ) {
        let (bytes, expected) = response_stream(&responses);
        let expected: Outcome<Response> = expected.into_iter().map(Ok).collect();
        prop_assert_eq!(&responses_of(&bytes, &[], Limits::default()), &expected);
        prop_assert_eq!(&responses_of(&bytes, &sizes, Limits::default()), &expected);
        prop_assert_eq!(&responses_of(&bytes, &[1], Limits::default()), &expected);
    }

    /// Damaged streams give the same messages and the same error however they are split,
    /// with default and with small limits.
    #[test]
    fn damaged_streams_decode_the_same_however_split(
        requests in prop::collection::vec((request(), framing()), 1..4),
        responses in prop::collection::vec((response(), framing()), 1..4),
        edits in edits(),
        sizes in prop::collection::vec(1usize..32, 1..8),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { Limits::default() };
        let bytes = damage(request_stream(&requests).0, &edits);
        let whole = requests_of(&bytes, &[], limits);
        prop_assert_eq!(&requests_of(&bytes, &sizes, limits), &whole);
        prop_assert_eq!(&requests_of(&bytes, &[1], limits), &whole);
        let bytes = damage(response_stream(&responses).0, &edits);
        let whole = responses_of(&bytes, &[], limits);
        prop_assert_eq!(&responses_of(&bytes, &sizes, limits), &whole);
        prop_assert_eq!(&responses_of(&bytes, &[1], limits), &whole);
    }

    /// Arbitrary bytes never panic a decoder, and give the same result however split.
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        prefix in prop::sample::select(vec!["", "NOTIFY / HTTP/1.1\r\n", "HTTP/1.1 200 Successful\r\n",
            "NOTIFY / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"]),
        sizes in prop::collection::vec(1usize..16, 1..8),
        small in any::<bool>(),
    ) {
        let limits = if small { small_limits() } else { Limits::default() };
        let mut input = prefix.as_bytes().to_vec();
        input.extend_from_slice(&bytes);
        let whole = requests_of(&input, &[], limits);
        prop_assert_eq!(&requests_of(&input, &sizes, limits), &whole);
        let whole = responses_of(&input, &[], limits);
        prop_assert_eq!(&responses_of(&input, &sizes, limits), &whole);
        let mut until_close = ResponseDecoder::reading_until_close(limits);
        until_close.feed(&input);
        until_close.finish();
        while let Ok(Some(_)) = until_close.next_response() {}
    }
}
