//! Property tests for the RFC 6120 §4 stream parser: round trip through the serializer,
//! independence from how the bytes are chunked, and no panics on arbitrary input; and, as
//! the cargo-fuzz targets of `protocols/xmpp/fuzz` check them at length, bounded in CI:
//! a prepared JID reads back as itself (RFC 7622), and the SCRAM server never accepts a
//! client proof made up without the password (RFC 5802).

use imfed_xmpp::stream::{Limits, STREAM_CLOSE, StreamEvent, StreamHeader, StreamParser};
use imfed_xmpp::{Element, Node, ParseError, ns};
use proptest::prelude::*;

/// Characters XML 1.0 allows, biased towards the ones that need escaping or
/// normalization.
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '<', '>', '&', '\'', '"', '\r', '\n', '\t', ' ', ']', ';', '#', 'a', 'é', '\u{263A}',
            '\u{10348}', '\u{FFFD}', '\u{85}', '\u{2028}',
        ]),
        2 => any::<char>().prop_filter("valid XML character", |c| {
            matches!(*c,
                '\t' | '\n' | '\r'
                | '\u{20}'..='\u{D7FF}'
                | '\u{E000}'..='\u{FFFD}'
                | '\u{10000}'..='\u{10FFFF}')
        }),
    ]
}

fn xml_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(xml_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

fn element_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "message",
        "presence",
        "iq",
        "body",
        "x",
        "item",
        "query",
        "error",
        "a-b",
        "d.e_f",
        "\u{fc}ber",
    ])
    .prop_map(str::to_string)
}

fn namespace() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        ns::CLIENT,
        ns::CLIENT,
        ns::SERVER,
        ns::STREAM,
        "urn:a",
        "urn:b:c",
        "http://example.com/ns?x=1&y='2'",
        "",
    ])
    .prop_map(str::to_string)
}

fn attributes() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop::sample::select(vec![
        "a", "b", "id", "to", "from", "type", "xml:lang", "x-y", "\u{e9}",
    ]);
    prop::collection::vec((name, xml_string(12)), 0..4).prop_map(|pairs| {
        let mut attrs: Vec<(String, String)> = Vec::new();
        for (name, value) in pairs {
            if !attrs.iter().any(|(existing, _)| existing == name) {
                attrs.push((name.to_string(), value));
            }
        }
        attrs
    })
}

/// Elements nested up to four levels deep, with mixed content.
fn element() -> impl Strategy<Value = Element> {
    let leaf = (
        element_name(),
        namespace(),
        attributes(),
        prop::option::of(xml_string(16)),
    )
        .prop_map(|(name, ns, attrs, text)| {
            let mut element = Element::new(name, ns);
            element.attrs = attrs;
            if let Some(text) = text {
                element.children.push(Node::Text(text));
            }
            element
        });
    leaf.prop_recursive(3, 24, 4, |inner| {
        (
            element_name(),
            namespace(),
            attributes(),
            prop::collection::vec(
                prop_oneof![
                    inner.prop_map(Node::Element),
                    xml_string(8).prop_map(Node::Text),
                ],
                0..4,
            ),
        )
            .prop_map(|(name, ns, attrs, children)| {
                let mut element = Element::new(name, ns);
                element.attrs = attrs;
                element.children = children;
                element
            })
    })
}

fn header() -> impl Strategy<Value = StreamHeader> {
    (
        prop::option::of(xml_string(10)),
        prop::option::of(xml_string(10)),
        prop::option::of(xml_string(10)),
        prop::option::of(Just("1.0".to_string())),
        prop::option::of(xml_string(4)),
        prop::sample::select(vec![ns::CLIENT, ns::SERVER]),
        any::<bool>(),
    )
        .prop_map(
            |(from, to, id, version, lang, content_ns, dialback)| StreamHeader {
                from,
                to,
                id,
                version,
                lang,
                content_ns: content_ns.to_string(),
                dialback,
            },
        )
}

/// What parsing gives for `element`: adjacent text merged, empty text dropped, and
/// `jabber:server` read as `jabber:client`.
fn normalize(element: &Element) -> Element {
    let mut out = Element::new(
        element.name.clone(),
        if element.ns == ns::SERVER {
            ns::CLIENT.to_string()
        } else {
            element.ns.clone()
        },
    );
    out.attrs = element.attrs.clone();
    for child in &element.children {
        match child {
            Node::Element(child) => out.children.push(Node::Element(normalize(child))),
            Node::Text(text) if text.is_empty() => {}
            Node::Text(text) => match out.children.last_mut() {
                Some(Node::Text(previous)) => previous.push_str(text),
                _ => out.children.push(Node::Text(text.clone())),
            },
        }
    }
    out
}

fn serialize(header: &StreamHeader, elements: &[Element], close: bool) -> Vec<u8> {
    let mut out = Vec::new();
    header.write_to(&mut out);
    for element in elements {
        element.write_to(&mut out, &header.content_ns);
        out.extend_from_slice(b"\n ");
    }
    if close {
        out.extend_from_slice(STREAM_CLOSE.as_bytes());
    }
    out
}

/// Everything the parser yields, up to and including the first error.
fn drain(parser: &mut StreamParser, results: &mut Vec<Result<StreamEvent, ParseError>>) {
    loop {
        match parser.next_event() {
            Ok(Some(event)) => results.push(Ok(event)),
            Ok(None) => return,
            Err(error) => {
                results.push(Err(error));
                return;
            }
        }
    }
}

fn parse_whole(bytes: &[u8], limits: Limits) -> Vec<Result<StreamEvent, ParseError>> {
    let mut parser = StreamParser::new(limits);
    parser.feed(bytes);
    let mut results = Vec::new();
    drain(&mut parser, &mut results);
    results
}

fn parse_chunked(
    bytes: &[u8],
    sizes: &[usize],
    limits: Limits,
) -> Vec<Result<StreamEvent, ParseError>> {
    let mut parser = StreamParser::new(limits);
    let mut results = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        parser.feed(chunk);
        rest = tail;
        drain(&mut parser, &mut results);
        if matches!(results.last(), Some(Err(_))) {
            break;
        }
    }
    results
}

/// A valid stream, or one with a few bytes changed, inserted or cut.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    let valid = (
        header(),
        prop::collection::vec(element(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(header, elements, close)| serialize(&header, &elements, close));
    (
        valid,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..3),
    )
        .prop_map(|(mut bytes, edits)| {
            for (index, byte, kind) in edits {
                if bytes.is_empty() {
                    break;
                }
                let at = index.index(bytes.len());
                match kind {
                    0 => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

proptest! {
    /// Encode then decode: the parser gives back the header and the (normalized) elements.
    #[test]
    fn round_trip(
        header in header(),
        elements in prop::collection::vec(element(), 0..5),
    ) {
        let bytes = serialize(&header, &elements, true);
        let mut expected: Vec<Result<StreamEvent, ParseError>> =
            vec![Ok(StreamEvent::Header(header.clone()))];
        expected.extend(elements.iter().map(|e| Ok(StreamEvent::Element(normalize(e)))));
        expected.push(Ok(StreamEvent::End));
        prop_assert_eq!(parse_whole(&bytes, Limits::default()), expected);
    }

    /// Splitting the bytes anywhere gives the same events, and the same error, as feeding
    /// them at once; for valid streams and for damaged ones.
    #[test]
    fn chunking_does_not_matter(
        bytes in stream_bytes(),
        sizes in prop::collection::vec(1usize..24, 1..16),
        small_limits in any::<bool>(),
    ) {
        let limits = if small_limits {
            Limits { max_stanza_bytes: 300, max_depth: 3, max_attributes: 8 }
        } else {
            Limits::default()
        };
        let whole = parse_whole(&bytes, limits);
        prop_assert_eq!(&parse_chunked(&bytes, &sizes, limits), &whole);
        prop_assert_eq!(&parse_chunked(&bytes, &[1], limits), &whole);
    }

    /// Arbitrary bytes never panic: the parser yields events, asks for more, or fails, and
    /// keeps failing with the same error.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        after_header in any::<bool>(),
        sizes in prop::collection::vec(1usize..16, 1..8),
    ) {
        let mut input = Vec::new();
        if after_header {
            StreamHeader::new(ns::CLIENT).write_to(&mut input);
        }
        input.extend_from_slice(&bytes);
        let whole = parse_whole(&input, Limits::default());
        prop_assert_eq!(&parse_chunked(&input, &sizes, Limits::default()), &whole);
        if let Some(Err(error)) = whole.last() {
            let mut parser = StreamParser::new(Limits::default());
            parser.feed(&input);
            let mut results = Vec::new();
            drain(&mut parser, &mut results);
            parser.feed(b"<more/>");
            prop_assert_eq!(parser.next_event(), Err(error.clone()));
        }
    }

    /// Markup-heavy garbage after a valid header never panics either.
    #[test]
    fn markup_soup_never_panics(
        pieces in prop::collection::vec(
            prop::sample::select(vec![
                "<", ">", "/", "'", "\"", "=", "&", ";", "#x", "amp", "a", "b:c", "xmlns",
                "xmlns:b", " ", "<!--", "-->", "<![CDATA[", "]]>", "<?", "?>", "</", "/>",
                "</stream:stream>", "&#0;", "&lt;", "\u{e9}", "\r\n", "urn:x",
            ]),
            0..64,
        ),
    ) {
        let mut input = Vec::new();
        StreamHeader::new(ns::SERVER).write_to(&mut input);
        for piece in pieces {
            input.extend_from_slice(piece.as_bytes());
        }
        let whole = parse_whole(&input, Limits::default());
        prop_assert_eq!(&parse_chunked(&input, &[1], Limits::default()), &whole);
    }
}

/// Text biased towards what JID preparation maps, folds or refuses.
fn jid_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a",
            "Z",
            "réunion",
            "ß",
            "\u{FE00}",
            "\u{200B}",
            ".",
            "．",
            "。",
            "@",
            "/",
            "[",
            "]",
            "::1",
            "127.0.0.1",
            "xn--",
            "-",
            " ",
            "\u{1F600}",
            "Ⅻ",
            "ﬀ",
            "\u{0301}",
            "=\u{0338}",
        ]),
        0..12,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    /// A JID that parses is a fixed point: its string form and its bare form parse back to
    /// themselves (the property the fuzzer broke with "a.\u{FE00}").
    #[test]
    fn a_prepared_jid_reads_back_as_itself(text in jid_text()) {
        if let Ok(jid) = imfed_xmpp::Jid::parse(&text) {
            let again = imfed_xmpp::Jid::parse(&jid.to_string());
            prop_assert_eq!(again.as_ref(), Ok(&jid), "{:?} -> {}", text, jid);
            let bare = jid.bare();
            prop_assert_eq!(imfed_xmpp::Jid::parse(&bare.to_string()), Ok(bare));
        }
    }

    /// Whatever a client sends, the SCRAM-SHA-1 server refuses a final message it could
    /// not have verified: no proof made up without the password passes.
    #[test]
    fn scram_never_accepts_a_made_up_proof(
        user in "[a-z]{1,8}",
        nonce in "[A-Za-z0-9]{1,24}",
        proof in prop::collection::vec(any::<u8>(), 20),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        use imfed_xmpp::sasl::{ScramCredentials, ScramServer, encode_payload};
        let mut server = ScramServer::new("servernonce");
        let first = format!("n,,n={user},r={nonce}");
        prop_assert!(server.client_first(first.as_bytes()).is_ok());
        let creds = ScramCredentials::derive("pencil", b"salt", 1).unwrap();
        prop_assert!(server.server_first(&creds).is_ok());
        let mut last = format!("c=biws,r={nonce}servernonce,p={}", encode_payload(&proof)).into_bytes();
        last.extend_from_slice(&tail);
        prop_assert!(server.client_final(&last).is_err());
    }
}
