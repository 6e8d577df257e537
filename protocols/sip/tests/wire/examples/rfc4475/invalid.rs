//! RFC 4475 §3.1.2: invalid messages, and what they are answered.

use imfed_sip::{Limits, ParseError, parse_datagram};

use super::{SDP, verdict};
use crate::examples::{request, wire};

/// §3.1.2: invalid messages, and the answer each gets (or, for a response, that it is
/// discarded). §3.1.2.9 and §3.1.2.10 may be accepted "by an element that is liberal":
/// this one is.
#[test]
fn section_3_1_2_invalid_messages() {
    let common = "To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: invalid.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw";
    let invite = |start: &str, extra: &str, length: &str| {
        let mut head = format!("{start}\n{common}\n");
        head.push_str(extra);
        head.push_str(&format!(
            "Content-Type: application/sdp\nContent-Length: {length}"
        ));
        wire(&head, SDP)
    };
    let cases: Vec<(&str, Vec<u8>, (u16, &str))> = vec![
        (
            "3.1.2.1 badinv01",
            invite(
                "INVITE sip:user@example.com SIP/2.0",
                "Via: SIP/2.0/UDP 192.0.2.15;;,;,,\nContact: \"Joe\" <sip:joe@example.org>;;;;\n",
                "XXXX",
            ),
            (400, "Bad Via"),
        ),
        (
            "3.1.2.2 clerr",
            invite("INVITE sip:user@example.com SIP/2.0", "", "9999"),
            (400, "Content-Length Exceeds Datagram"),
        ),
        (
            "3.1.2.3 ncl",
            invite("INVITE sip:user@example.com SIP/2.0", "", "-999"),
            (400, "Bad Content-Length"),
        ),
        (
            "3.1.2.4 scalar02",
            wire(
                "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1000000000000000000000000000000000000000000
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0",
                "",
            ),
            (400, "Bad CSeq"),
        ),
        (
            "3.1.2.7 ltgtruri",
            invite("INVITE <sip:user@example.com> SIP/2.0", "", "XXXX"),
            (400, "Bad Request-URI"),
        ),
        (
            "3.1.2.8 lwsruri",
            invite("INVITE sip:user@example.com; lr SIP/2.0", "", "XXXX"),
            (400, "Bad Request-Line"),
        ),
        (
            "3.1.2.11 escruri",
            invite(
                "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0",
                "",
                "XXXX",
            ),
            (400, "Headers in Request-URI"),
        ),
        (
            "3.1.2.14 badaspec",
            wire(
                "OPTIONS sip:user@example.org SIP/2.0
Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234
Max-Forwards: 70
From: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423
To: \"Watson, Thomas\" < sip:t.watson@example.org >
Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3
Accept: application/sdp
CSeq: 3923239 OPTIONS
l: 0",
                "",
            ),
            (400, "Bad To"),
        ),
        (
            "3.1.2.15 baddn",
            wire(
                "OPTIONS sip:t.watson@example.org SIP/2.0
Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards:      70
From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43
To:      Watson, Thomas <sip:t.watson@example.org>
Call-ID: baddn.31415@c.example.com
Accept: application/sdp
CSeq:    3923239 OPTIONS
l: 0",
                "",
            ),
            (400, "Bad To"),
        ),
        (
            "3.1.2.16 badvers",
            wire(
                "OPTIONS sip:t.watson@example.org SIP/7.0
Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw
Max-Forwards:     70
From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe
To:      T. Watson <sip:t.watson@example.org>
Call-ID: badvers.31417@c.example.com
CSeq:    1 OPTIONS
l: 0",
                "",
            ),
            (505, "Version Not Supported"),
        ),
        (
            "3.1.2.17 mismatch01",
            wire(
                "OPTIONS sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch01.dj0234sxdfl3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw
l: 0",
                "",
            ),
            (400, "CSeq Method Mismatch"),
        ),
        (
            "3.1.2.18 mismatch02",
            wire(
                "NEWMETHOD sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=34525
Max-Forwards: 6
Call-ID: mismatch02.dj0234sxdfl3
CSeq: 8 INVITE
Contact: <sip:caller@host.example.net>
Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw
Content-Type: application/sdp
l: XXXX",
                SDP,
            ),
            (400, "CSeq Method Mismatch"),
        ),
    ];
    for (name, bytes, (status, reason)) in cases {
        assert_eq!(
            verdict(&bytes).map(|_| ()),
            Err((status, reason.to_string())),
            "{name}"
        );
    }
    // §3.1.2.6 quotbal: an unterminated quoted display name.
    let quotbal = wire(
        "INVITE sip:user@example.com SIP/2.0
To: \"Mr. J. User <sip:j.user@example.com>
From: sip:caller@example.net;tag=93334
Max-Forwards: 10
Call-ID: quotbal.aksdj
Contact: <sip:caller@host59.example.net>
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234
Content-Type: application/sdp
Content-Length: XXXX",
        SDP,
    );
    assert_eq!(
        verdict(&quotbal).map(|_| ()),
        Err((400, "Bad To".to_string()))
    );

    // §3.1.2.9 lwsstart and §3.1.2.10 trws: accepted.
    for start in [
        "INVITE  sip:user@example.com  SIP/2.0",
        "INVITE sip:user@example.com SIP/2.0  ",
    ] {
        assert!(verdict(&invite(start, "", "XXXX")).is_ok(), "{start:?}");
    }
    // §3.1.2.12 baddate: Date is not read.
    assert!(
        verdict(&invite(
            "INVITE sip:user@example.com SIP/2.0",
            "Date: Fri, 01 Jan 2010 16:00:00 EST\n",
            "XXXX"
        ))
        .is_ok()
    );
    // §3.1.2.13 regbadct: the request frames, its Contact does not parse (a registrar
    // answers 400 from `contacts()`).
    let regbadct = request(&wire(
        "REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=998332
Max-Forwards: 70
Call-ID: regbadct.k345asrl3fdbv@10.0.0.1
CSeq: 1 REGISTER
Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw
Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E
l: 0",
        "",
    ));
    assert!(regbadct.contacts().is_err());

    // §3.1.2.5 scalarlg and §3.1.2.19 bigcode: responses a client discards.
    let scalarlg = wire(
        "SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129
To: <sip:user@example.com>
From: <sip:other@example.net>;tag=2easdjfejw
CSeq: 9292394834772304023312 OPTIONS
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
Retry-After: 949302838503028349304023988
Warning: 1812 overture \"In Progress\"
Content-Length: 0",
        "",
    );
    assert!(verdict(&scalarlg).is_err());
    let bigcode = wire(
        "SIP/2.0 4294967301 better not break the receiver
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i
CSeq: 353494 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>",
        "",
    );
    assert!(matches!(
        parse_datagram(&bigcode, &Limits::default()),
        Err(ParseError::BadStartLine { .. })
    ));
}
