//! RFC 6120 §4, §11: the stream parser on arbitrary bytes, fed in arbitrary chunks. It must
//! never panic, must give the same events however the bytes are split, and every element it
//! returns must serialize to XML that parses back to the same element.
#![no_main]

use imfed_xmpp::{Element, Limits, StreamEvent, StreamHeader, StreamParser, ns};
use libfuzzer_sys::fuzz_target;

/// Small limits, so that the limit paths are reached with short inputs.
const LIMITS: Limits = Limits {
    max_stanza_bytes: 4096,
    max_depth: 8,
    max_attributes: 16,
};

fn events(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Option<String>) {
    let mut parser = StreamParser::new(LIMITS);
    let mut events = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(error) => return (events, Some(error.condition.to_string())),
            }
        }
    }
    (events, None)
}

fn reparsed(element: &Element, content_ns: &str) -> Element {
    let mut bytes = Vec::new();
    let mut header = StreamHeader::new(content_ns);
    header.dialback = true;
    header.write_to(&mut bytes);
    element.write_to(&mut bytes, content_ns);
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(&bytes);
    loop {
        match parser.next_event() {
            Ok(Some(StreamEvent::Element(again))) => return again,
            Ok(Some(_)) => {}
            other => panic!("{element:?} serialized as {:?}: {other:?}", String::from_utf8_lossy(&bytes)),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where the rest is split.
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let whole = events(&[data]);
    let at = if data.is_empty() { 0 } else { split as usize % data.len() };
    let (head, tail) = data.split_at(at);
    let bytewise: Vec<&[u8]> = data.chunks(1 + split as usize % 7).collect();
    assert_eq!(whole, events(&[head, tail]), "split at {at}");
    assert_eq!(whole, events(&bytewise), "chunks of {}", 1 + split as usize % 7);
    let content_ns = whole
        .0
        .iter()
        .find_map(|event| match event {
            StreamEvent::Header(header) => Some(header.content_ns.clone()),
            _ => None,
        })
        .unwrap_or_else(|| ns::SERVER.to_string());
    for event in &whole.0 {
        if let StreamEvent::Element(element) = event {
            assert_eq!(&reparsed(element, &content_ns), element);
        }
    }
});
