//! RFC 3856 with RFC 6665: a presence subscription as PROFILE.md §4 runs it: SUBSCRIBE,
//! a 200 Record-Routed by both servers, the first NOTIFY, the in-dialog unsubscribe and
//! the final NOTIFY (`terminated;reason=timeout`), every message decoded from bytes and
//! the dialog kept on both sides.

use imfed_sip::pidf::Presence;
use imfed_sip::{Dialog, Method, SubscriptionState};

use super::{request, response, wire};

const SUBSCRIBE: &str = "SUBSCRIBE sip:bob@b.test SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKs1;rport
Max-Forwards: 70
To: <sip:bob@b.test>
From: <sip:alice@a.test>;tag=a-11
Call-ID: s1@127.0.0.1
CSeq: 1 SUBSCRIBE
Event: presence
Accept: application/pidf+xml
Contact: <sip:alice@127.0.0.1:5070;transport=tcp>
Expires: 3600
Content-Length: 0";

/// The notifier's view: what reached it through a.test's and b.test's proxies.
const SUBSCRIBE_AT_B: &str = "SUBSCRIBE sip:bob@b.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKb1
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKa1
Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKs1;rport=40001;received=127.0.0.1
Record-Route: <sip:127.0.0.1:5062;lr>
Record-Route: <sip:127.0.0.1:5061;lr>
Max-Forwards: 68
To: <sip:bob@b.test>
From: <sip:alice@a.test>;tag=a-11
Call-ID: s1@127.0.0.1
CSeq: 1 SUBSCRIBE
Event: presence
Accept: application/pidf+xml
Contact: <sip:alice@127.0.0.1:5070;transport=tcp>
Expires: 3600
Content-Length: 0";

#[test]
fn subscription_dialog_end_to_end() {
    let subscribe = request(&wire(SUBSCRIBE, ""));
    let at_b = request(&wire(SUBSCRIBE_AT_B, ""));
    assert_eq!(at_b.vias().unwrap().len(), 3);
    assert_eq!(at_b.record_routes().unwrap().len(), 2);

    // The notifier accepts and answers 200 with the Record-Route copied (§12.1.1).
    let mut notifier = Dialog::uas(&at_b, "b-22").unwrap();
    let mut ok = imfed_sip::Response::to(&at_b, 200, None, Some("b-22"));
    for route in at_b.headers.get_all("Record-Route") {
        ok.headers.push("Record-Route", route);
    }
    ok.headers.push("Contact", "<sip:bob@127.0.0.1:5080>");
    ok.headers.push("Expires", "3600");
    // The subscriber gets it with the proxies' Vias popped.
    let mut relayed = response(&ok.to_bytes());
    relayed.headers.remove_first("Via");
    relayed.headers.remove_first("Via");
    let mut subscriber = Dialog::uac_from_response(&subscribe, &relayed).unwrap();
    assert_eq!(subscriber.id.remote_tag, "b-22");

    // The first NOTIFY, through the route set (loose routing).
    let mut notify = notifier.request(Method::Notify);
    assert_eq!(
        notify.uri.to_string(),
        "sip:alice@127.0.0.1:5070;transport=tcp"
    );
    assert_eq!(
        notify.headers.get_all("Route"),
        vec!["<sip:127.0.0.1:5062;lr>", "<sip:127.0.0.1:5061;lr>"]
    );
    notify
        .headers
        .prepend("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKn1");
    notify.headers.push("Event", "presence");
    notify.headers.push(
        "Subscription-State",
        SubscriptionState::Active {
            expires: Some(3600),
        }
        .to_string(),
    );
    notify.headers.push("Contact", "<sip:bob@127.0.0.1:5080>");
    notify.set_body(
        imfed_sip::pidf::CONTENT_TYPE,
        Presence::new("sip:bob@b.test").to_xml(),
    );
    let notify = request(&notify.to_bytes());
    assert_eq!(Dialog::id_of_incoming(&notify), Some(subscriber.id.clone()));
    subscriber.receive(&notify).unwrap();
    assert!(!Presence::parse(&notify.body).unwrap().is_open());
    assert_eq!(
        notify.subscription_state().unwrap().unwrap(),
        SubscriptionState::Active {
            expires: Some(3600)
        }
    );

    // Unsubscribing: an in-dialog SUBSCRIBE with Expires: 0, through the reversed route.
    let mut unsubscribe = subscriber.request(Method::Subscribe);
    assert_eq!(unsubscribe.uri.to_string(), "sip:bob@127.0.0.1:5080");
    assert_eq!(
        unsubscribe.headers.get_all("Route"),
        vec!["<sip:127.0.0.1:5061;lr>", "<sip:127.0.0.1:5062;lr>"]
    );
    assert_eq!(unsubscribe.cseq().unwrap().seq, 2);
    unsubscribe
        .headers
        .prepend("Via", "SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKs2");
    unsubscribe.headers.push("Event", "presence");
    unsubscribe.headers.push("Expires", "0");
    let unsubscribe = request(&unsubscribe.to_bytes());
    assert_eq!(
        Dialog::id_of_incoming(&unsubscribe),
        Some(notifier.id.clone())
    );
    notifier.receive(&unsubscribe).unwrap();
    assert_eq!(notifier.remote_seq, Some(2));

    // The final NOTIFY.
    let mut last = notifier.request(Method::Notify);
    assert_eq!(last.cseq().unwrap().seq, 2);
    last.headers
        .prepend("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKn2");
    last.headers.push("Event", "presence");
    last.headers
        .push("Subscription-State", "terminated;reason=timeout");
    let last = request(&last.to_bytes());
    subscriber.receive(&last).unwrap();
    let state = last.subscription_state().unwrap().unwrap();
    assert!(state.is_terminated());
    assert_eq!(
        state,
        SubscriptionState::Terminated {
            reason: Some("timeout".into()),
            retry_after: None
        }
    );
}
