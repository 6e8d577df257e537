//! RFC 3903 §10: publishing presence, refreshing, modifying and removing the publication
//! (the entity-tags `dx200xyz`, `kwj449x`, `qwi982ks` as in the example), with RFC 3863
//! bodies.

use std::time::Instant;

use imfed_sip::pidf::{self, Basic, Presence};
use imfed_sip::{Method, ServerTransaction, Timers};

use super::{request, response, wire};

const OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    entity="pres:presentity@example.com">
  <tuple id="mobile-im">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="0.8">tel:+1234567890</contact>
  </tuple>
</presence>"#;

const INITIAL: &str = "PUBLISH sip:presentity@example.com SIP/2.0
Via: SIP/2.0/UDP pua.example.com;branch=z9hG4bK652hsge
To: <sip:presentity@example.com>
From: <sip:presentity@example.com>;tag=1234wxyz
Call-ID: 81818181@pua.example.com
CSeq: 1 PUBLISH
Max-Forwards: 70
Expires: 3600
Event: presence
Content-Type: application/pidf+xml
Content-Length: XXXX";

const INITIAL_OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP pua.example.com;branch=z9hG4bK652hsge
To: <sip:presentity@example.com>;tag=1a2b3c4d
From: <sip:presentity@example.com>;tag=1234wxyz
Call-ID: 81818181@pua.example.com
CSeq: 1 PUBLISH
SIP-ETag: dx200xyz
Expires: 1800
Content-Length: 0";

const REFRESH: &str = "PUBLISH sip:presentity@example.com SIP/2.0
Via: SIP/2.0/UDP pua.example.com;branch=z9hG4bK771ash02
To: <sip:presentity@example.com>
From: <sip:presentity@example.com>;tag=1234kljk
Call-ID: 98798798@pua.example.com
CSeq: 1 PUBLISH
Max-Forwards: 70
SIP-If-Match: dx200xyz
Expires: 60
Event: presence
Content-Length: 0";

const MODIFY: &str = "PUBLISH sip:presentity@example.com SIP/2.0
Via: SIP/2.0/UDP pua.example.com;branch=z9hG4bKcdad2
To: <sip:presentity@example.com>
From: <sip:presentity@example.com>;tag=54321mm
Call-ID: 5566778@pua.example.com
CSeq: 1 PUBLISH
Max-Forwards: 70
SIP-If-Match: kwj449x
Expires: 60
Event: presence
Content-Type: application/pidf+xml
Content-Length: XXXX";

const REMOVE: &str = "PUBLISH sip:presentity@example.com SIP/2.0
Via: SIP/2.0/UDP pua.example.com;branch=z9hG4bKea1dof
To: <sip:presentity@example.com>
From: <sip:presentity@example.com>;tag=9876qwer
Call-ID: 77775555@pua.example.com
CSeq: 1 PUBLISH
Max-Forwards: 70
SIP-If-Match: qwi982ks
Expires: 0
Event: presence
Content-Length: 0";

#[test]
fn section_10_publication_lifecycle() {
    let initial = request(&wire(INITIAL, OPEN));
    assert_eq!(initial.method, Method::Publish);
    assert!(initial.event().unwrap().unwrap().is("presence"));
    assert_eq!(initial.expires(), Some(3600));
    assert_eq!(
        initial.headers.media_type().as_deref(),
        Some(pidf::CONTENT_TYPE)
    );
    let document = Presence::parse(&initial.body).unwrap();
    assert_eq!(document.entity, "pres:presentity@example.com");
    assert_eq!(document.tuples[0].id, "mobile-im");
    assert!(document.is_open());

    let ok = response(&wire(INITIAL_OK, ""));
    assert_eq!(ok.headers.get("SIP-ETag"), Some("dx200xyz"));
    assert_eq!(ok.expires(), Some(1800));

    // A refresh carries the entity-tag and no body (§4.3).
    let refresh = request(&wire(REFRESH, ""));
    assert_eq!(refresh.headers.get("sip-if-match"), Some("dx200xyz"));
    assert!(refresh.body.is_empty() && refresh.content_type().is_none());

    // A modification carries the tag of the refresh's answer and a new body (§4.4).
    let closed = OPEN.replace("<basic>open</basic>", "<basic>closed</basic>");
    let modify = request(&wire(MODIFY, &closed));
    assert_eq!(modify.headers.get("SIP-If-Match"), Some("kwj449x"));
    let document = Presence::parse(&modify.body).unwrap();
    assert_eq!(document.tuples[0].basic, Some(Basic::Closed));
    assert!(!document.is_open());

    // A removal is Expires: 0 with the last tag (§4.5).
    let remove = request(&wire(REMOVE, ""));
    assert_eq!(remove.expires(), Some(0));
    assert_eq!(remove.headers.get("SIP-If-Match"), Some("qwi982ks"));

    // The compositor's answers, as a server transaction sends them over UDP, and a
    // retransmitted PUBLISH answered with the same bytes.
    let start = Instant::now();
    let mut transaction = ServerTransaction::new(&remove, false, Timers::default(), start).unwrap();
    let mut answer = imfed_sip::Response::to(&remove, 200, None, Some("x"));
    answer.headers.push("SIP-ETag", "qwi982ks");
    answer.headers.push("Expires", "0");
    let sent = transaction.respond(&answer, start);
    assert_eq!(transaction.handle_retransmission(start), Some(sent.clone()));
    assert_eq!(response(&sent).headers.get("SIP-ETag"), Some("qwi982ks"));

    // An unknown entity-tag is 412 (§6 step 3).
    let failed = imfed_sip::Response::to(&refresh, 412, None, Some("y"));
    assert_eq!(failed.reason, "Conditional Request Failed");
}

/// PROFILE.md §3: what this suite's PUBLISH carries, written by the crate and read back.
#[test]
fn profile_publish_body() {
    let mut document = Presence::new("sip:alice@a.test");
    document.tuples.push(pidf::Tuple {
        id: "t1".into(),
        basic: Some(Basic::Open),
        note: Some("In the lab".into()),
        ..Default::default()
    });
    document.persons.push(pidf::Person {
        id: "p1".into(),
        activities: vec![pidf::Activity::Away],
        note: None,
    });
    let mut publish = imfed_sip::Request::new(Method::Publish, "sip:alice@a.test".parse().unwrap())
        .with_header("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKp1")
        .with_header("Max-Forwards", "70")
        .with_header("To", "<sip:alice@a.test>")
        .with_header("From", "<sip:alice@a.test>;tag=p")
        .with_header("Call-ID", "pub1@127.0.0.1")
        .with_header("CSeq", "1 PUBLISH")
        .with_header("Event", "presence")
        .with_header("Expires", "3600");
    publish.set_body(pidf::CONTENT_TYPE, document.to_xml());
    let publish = request(&publish.to_bytes());
    assert_eq!(Presence::parse(&publish.body), Ok(document));
}
