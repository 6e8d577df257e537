//! RFC 3428 §4: a MESSAGE from user1 through a proxy to user2, and its 200.

use std::time::Instant;

use imfed_sip::transaction::ClientEvent;
use imfed_sip::{ClientTransaction, Method, Timers};

use super::{request, response, wire};

const BODY: &str = "Watson, come here.";

const F1: &str = "MESSAGE sip:user2@domain.com SIP/2.0
Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse
Max-Forwards: 70
From: sip:user1@domain.com;tag=49583
To: sip:user2@domain.com
Call-ID: asd88asd77a@1.2.3.4
CSeq: 1 MESSAGE
Content-Type: text/plain
Content-Length: 18";

/// As printed, the proxy's copy changes the From tag (49583 to 49394): a known slip of
/// the example (a proxy never touches From); the test builds F2 from F1 with the tag kept.
const F2: &str = "MESSAGE sip:user2@machine.domain.com SIP/2.0
Via: SIP/2.0/TCP proxy.domain.com;branch=z9hG4bK123dsghds
Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse;received=1.2.3.4
Max-Forwards: 69
From: sip:user1@domain.com;tag=49394
To: sip:user2@domain.com
Call-ID: asd88asd77a@1.2.3.4
CSeq: 1 MESSAGE
Content-Type: text/plain
Content-Length: 18";

const F3: &str = "SIP/2.0 200 OK
Via: SIP/2.0/TCP proxy.domain.com;branch=z9hG4bK123dsghds;received=192.0.2.1
Via: SIP/2.0/TCP user1pc.domain.com;branch=z9hG4bK776sgdkse;received=1.2.3.4
From: sip:user1@domain.com;tag=49394
To: sip:user2@domain.com;tag=ab8asdasd9
Call-ID: asd88asd77a@1.2.3.4
CSeq: 1 MESSAGE
Content-Length: 0";

#[test]
fn section_4_message_and_its_answer() {
    let f1 = request(&wire(F1, BODY));
    assert_eq!(f1.method, Method::Message);
    assert_eq!(f1.uri.to_string(), "sip:user2@domain.com");
    assert_eq!(f1.body, BODY.as_bytes());
    assert_eq!(f1.content_type(), Some("text/plain"));
    assert_eq!(f1.from().unwrap().tag(), Some("49583"));
    assert_eq!(f1.to().unwrap().tag(), None);
    assert_eq!(f1.top_via().unwrap().transport, "TCP");

    // The proxy's forwarding (RFC 3261 §16.6): new Request-URI, Max-Forwards decremented,
    // `received` on the sender's Via (§18.2.1), its own Via on top.
    let f2 = request(&wire(F2, BODY));
    let mut forwarded = f1.clone();
    forwarded.uri = "sip:user2@machine.domain.com".parse().unwrap();
    let hops = forwarded.max_forwards().unwrap() - 1;
    forwarded.headers.set("Max-Forwards", hops.to_string());
    let mut via = forwarded.top_via().unwrap();
    via.set_param("received", Some("1.2.3.4"));
    forwarded.headers.set("Via", via.to_string());
    forwarded.headers.prepend(
        "Via",
        "SIP/2.0/TCP proxy.domain.com;branch=z9hG4bK123dsghds",
    );
    let mut printed = f2.clone();
    printed.headers.set("From", f1.headers.get("From").unwrap());
    assert_eq!(forwarded, printed);

    // The proxy pops its own Via from the 200 before relaying it (§16.7 step 3).
    let mut f3 = response(&wire(F3, ""));
    assert!(f3.is_success());
    assert_eq!(f3.to_header().unwrap().tag(), Some("ab8asdasd9"));
    let popped = f3.headers.remove_first("Via").unwrap();
    assert!(popped.contains("proxy.domain.com"));
    assert_eq!(f3.vias().unwrap().len(), 1);

    // user1's client transaction over TCP takes the relayed 200 as its final response.
    let start = Instant::now();
    let mut transaction = ClientTransaction::new(f1.clone(), true, Timers::default(), start);
    assert_eq!(transaction.poll_transmit(start), Some(f1.to_bytes()));
    assert_eq!(
        transaction.handle_response(f3.clone(), start),
        Some(ClientEvent::Final(f3))
    );
    assert!(transaction.is_terminated());
}
