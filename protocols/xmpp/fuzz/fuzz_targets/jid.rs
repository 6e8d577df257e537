//! RFC 7622: JID parsing and preparation. Parsing never panics, and a parsed JID is a fixed
//! point: its string form parses back to it, as does its bare form.
#![no_main]

use imfed_xmpp::Jid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jid) = Jid::parse(text) else {
        return;
    };
    let again = Jid::parse(&jid.to_string()).expect("a prepared JID parses again");
    assert_eq!(again, jid);
    let bare = jid.bare();
    assert!(bare.is_bare());
    assert_eq!(Jid::parse(&bare.to_string()).expect("the bare JID parses"), bare);
    assert_eq!(bare.domain(), jid.domain());
});
