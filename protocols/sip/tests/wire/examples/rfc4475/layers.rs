//! RFC 4475 §3.2–§3.4: transaction-layer, application-layer and backward-compatibility cases.

use imfed_sip::transaction::TransactionKey;
use imfed_sip::{Message, validate_request};

use super::{SDP, verdict};
use crate::examples::{message, request, wire};

/// §3.2 and §3.3: transaction- and application-layer cases.
#[test]
fn sections_3_2_and_3_3() {
    // §3.2.1 badbranch: a branch that is only the magic cookie is still a cookie branch.
    let badbranch = request(&wire(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK
Accept: application/sdp
Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n
CSeq: 8 OPTIONS
l: 0",
        "",
    ));
    assert_eq!(
        TransactionKey::of_request(&badbranch).unwrap().branch,
        "z9hG4bK"
    );

    let cases: Vec<(&str, Vec<u8>, (u16, &str))> = vec![
        (
            "3.3.1 insuf",
            wire(
                "INVITE sip:user@example.com SIP/2.0
CSeq: 193942 INVITE
Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf
Content-Type: application/sdp
l: XXXX",
                SDP,
            ),
            (400, "Missing To"),
        ),
        (
            "3.3.2 unkscm",
            wire(
                "OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0",
                "",
            ),
            (416, "Unsupported URI Scheme"),
        ),
        (
            "3.3.3 novelsc",
            wire(
                "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
To: sip:user@example.com
From: sip:caller@example.net;tag=384
Max-Forwards: 3
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234
Content-Length: 0",
                "",
            ),
            (416, "Unsupported URI Scheme"),
        ),
        // RFC 4475 §3.3.4 asks that unknown schemes in To, From and Contact be accepted;
        // this crate represents SIP and SIPS URIs only, so such a request is refused.
        (
            "3.3.4 unksm2 (refused: see above)",
            wire(
                "REGISTER sip:example.com SIP/2.0
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Call-ID: unksm2.daksdj@hyphenated-host.example.com
CSeq: 234902 REGISTER
Max-Forwards: 70
Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw
Contact: <name:John_Smith>
l: 0",
                "",
            ),
            (400, "Bad To"),
        ),
        (
            "3.3.8 multi01",
            wire(
                "INVITE sip:user@company.com SIP/2.0
Contact: <sip:caller@host25.example.net>
Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw
Max-Forwards: 70
CSeq: 5 INVITE
Call-ID: multi01.98asdh@192.0.2.1
CSeq: 59 INVITE
Call-ID: multi01.98asdh@192.0.2.2
From: sip:caller@example.com;tag=3413415
To: sip:user@example.com
To: sip:other@example.net
From: sip:caller@example.net;tag=2923420123
Content-Type: application/sdp
l: XXXX
Call-ID: multi01.98asdh@192.0.2.3
Max-Forwards: 5",
                SDP,
            ),
            (400, "Repeated To"),
        ),
        (
            "3.3.9 mcl01",
            wire(
                "OPTIONS sip:user@example.com SIP/2.0
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423
To: sip:user@example.com
From: sip:other@example.net;tag=3923942
Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf
CSeq: 15932 OPTIONS
Content-Length: 13
Max-Forwards: 60
Content-Length: 5
Content-Type: text/plain",
                "There's no way to know how many octets are supposed to be here.",
            ),
            (400, "Bad Content-Length"),
        ),
    ];
    for (name, bytes, (status, reason)) in cases {
        assert_eq!(
            verdict(&bytes).map(|_| ()),
            Err((status, reason.to_string())),
            "{name}"
        );
    }

    // §3.3.11 zeromf: Max-Forwards 0 is valid; a proxy answers 483 (PROFILE.md §9).
    let zeromf = request(&wire(
        "OPTIONS sip:user@example.com SIP/2.0
Call-ID: zeromf.3459845njdfsa9s0df93@192.0.2.3
CSeq: 39234321 OPTIONS
Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i
Max-Forwards: 0
To: <sip:user@example.com>
From: <sip:caller@example.net>;tag=3ghsd41
l: 0",
        "",
    ));
    assert_eq!(zeromf.max_forwards(), Some(0));

    // §3.4.1 inv2543: RFC 2543 syntax (no branch, no From tag, no Max-Forwards, no
    // Content-Length in a datagram) is accepted; its transaction key comes from the rest.
    let inv2543 = message(&wire(
        "INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Content-Type: application/sdp",
        SDP,
    ));
    let Message::Request(inv2543) = inv2543 else {
        panic!("a request");
    };
    assert_eq!(validate_request(&inv2543), Ok(()));
    assert!(
        TransactionKey::of_request(&inv2543)
            .unwrap()
            .branch
            .starts_with("rfc2543;")
    );
    assert_eq!(inv2543.from().unwrap().tag(), None);
    assert_eq!(inv2543.to().unwrap().param("user"), Some(Some("phone")));
}
