//! XEP-0220 and RFC 6120 §4.9, §8 on a server-to-server stream: the elements a peer server
//! sends (dialback requests and answers, stream errors, stanzas) read from arbitrary bytes
//! after a valid `jabber:server` header. Reading them never panics, and a dialback element
//! the receiving side accepts writes back to the same dialback element.
#![no_main]

use imfed_xmpp::dialback::Dialback;
use imfed_xmpp::stanza::{self, StanzaKind};
use imfed_xmpp::stream::parse_stream_error;
use imfed_xmpp::{Limits, StreamEvent, StreamParser};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    from='peer.test' to='sut.test' version='1.0'>";

fuzz_target!(|data: &[u8]| {
    let mut parser = StreamParser::new(Limits::default());
    parser.feed(HEADER);
    parser.feed(data);
    while let Ok(Some(event)) = parser.next_event() {
        let StreamEvent::Element(element) = event else {
            continue;
        };
        let _ = parse_stream_error(&element);
        if StanzaKind::of(&element).is_some() {
            let _ = stanza::from(&element);
            let _ = stanza::to(&element);
        }
        if let Some(dialback) = Dialback::parse(&element) {
            assert_eq!(Dialback::parse(&dialback.to_element()).as_ref(), Some(&dialback));
        }
    }
});
