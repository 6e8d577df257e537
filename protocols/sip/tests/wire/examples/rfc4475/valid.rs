//! RFC 4475 §3.1.1: valid messages, parsed into what they say.

use imfed_sip::{Message, Method, StreamDecoder};

use super::SDP;
use crate::examples::{request, response, wire};

/// §3.1.1.1: line folding, escaped quotes, an empty Subject, LWS everywhere, list and
/// separate header values, short and long names mixed, unknown parameters and headers,
/// leading zeros.
#[test]
fn section_3_1_1_1_a_short_tortuous_invite() {
    let head = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : XXXX
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;rport;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33";
    let invite = request(&wire(head, SDP));
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(invite.uri.param("unknownparam"), Some(None));
    let to = invite.to().unwrap();
    assert_eq!(
        (to.display.as_deref(), to.tag()),
        (None, Some("1918181833n"))
    );
    let from = invite.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(invite.max_forwards(), Some(68));
    assert_eq!(invite.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(invite.cseq().unwrap().to_string(), "9 INVITE");
    let vias = invite.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport.as_str(), vias[0].host.as_str()),
        ("UDP", "192.0.2.2")
    );
    assert_eq!(vias[0].param("rport"), Some(None));
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(
        (vias[1].host.as_str(), vias[1].branch()),
        ("spindle.example.com", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(
        (vias[2].host.as_str(), vias[2].branch()),
        ("192.168.255.111", Some("z9hG4bK30239"))
    );
    assert_eq!(invite.headers.get("Subject"), Some(""));
    assert_eq!(
        invite.headers.get("newfangledheader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        invite.headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let routes = invite.routes().unwrap();
    assert!(routes[0].uri.is_loose_router());
    assert_eq!(routes[0].uri.param("unknown-no-value"), Some(None));
    let contact = &invite.contacts().unwrap()[0];
    assert_eq!(contact.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contact.param("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.param("secondparam"), Some(None));
    assert_eq!(contact.param("q"), Some(Some("0.33")));
    assert_eq!(invite.body, SDP.replace('\n', "\r\n").as_bytes());
}

/// §3.1.1.2: unusual but legal characters in the method, Request-URI, branch, quoted
/// string (quoted NUL), display-name tokens, parameters, Call-ID and an extension header.
#[test]
fn section_3_1_1_2_wide_range_of_valid_characters() {
    let head = "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~:\u{feff}大停電
Content-Length: 0";
    let request = request(&wire(head, ""));
    assert_eq!(
        request.method,
        Method::Other("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert_eq!(
        request.uri.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(
        request.top_via().unwrap().branch(),
        Some("z9hG4bK-.!%66*_+`'~")
    );
    assert_eq!(
        request.to().unwrap().display.as_deref(),
        Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}")
    );
    let from = request.from().unwrap();
    assert_eq!(
        from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(
        from.param("fromParam''~+*_!.-%"),
        Some(Some("\"работающий\""))
    );
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        request.call_id(),
        Some("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    );
    assert_eq!(
        request.headers.get("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
}

/// §3.1.1.3–§3.1.1.13: the other valid messages.
#[test]
fn section_3_1_1_other_valid_messages() {
    // §3.1.1.3 esc01: `%` escapes in users and Contact parameters, kept as written.
    let esc01 = request(&wire(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: XXXX",
        SDP,
    ));
    assert_eq!(esc01.uri.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(esc01.uri.host, "example.net");
    assert!(
        esc01
            .to()
            .unwrap()
            .uri
            .equivalent(&"sip:user@example.com".parse().unwrap())
    );
    assert_eq!(esc01.contacts().unwrap()[0].uri.param("%6C%72"), Some(None));
    assert_eq!(esc01.content_type(), Some("application/sdp"));

    // §3.1.1.4 escnull: escaped NULs in users.
    let escnull = request(&wire(
        "REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0",
        "",
    ));
    assert_eq!(escnull.contacts().unwrap().len(), 2);
    assert_eq!(
        escnull.to().unwrap().uri.user.as_deref(),
        Some("null-%00-null")
    );

    // §3.1.1.5 esc02: `%` is no escape in a method or header name.
    let esc02 = request(&wire(
        "RE%47IST%45R sip:registrar.example.com SIP/2.0
To: \"%Z%45\" <sip:resource@example.com>
From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0",
        "",
    ));
    assert_eq!(esc02.method, Method::Other("RE%47IST%45R".into()));
    assert_eq!(esc02.to().unwrap().display.as_deref(), Some("%Z%45"));
    assert_eq!(esc02.contacts().unwrap().len(), 2);
    assert_eq!(
        esc02.headers.get("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );

    // §3.1.1.6 lwsdisp: no LWS between the display name and `<`.
    let lwsdisp = request(&wire(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0",
        "",
    ));
    assert_eq!(lwsdisp.from().unwrap().display.as_deref(), Some("caller"));

    // §3.1.1.7 longreq (in spirit): long values everywhere.
    let long = "long".repeat(200);
    let vias: String = (0..30)
        .map(|n| format!("Via: SIP/2.0/TCP sip{n}.example.com;branch=z9hG4bK{long}{n}\n"))
        .collect();
    let longreq = request(&wire(
        &format!(
            "INVITE sip:user@example.com SIP/2.0
To: \"I have a user name of {long} proportion\"<sip:user@example.com:6000;unknownparam1={long}>
F: sip:{long}@example.net;tag={long};unknownheaderparamname={long}
Call-ID: longreq.{long}
CSeq: 3882340 INVITE
{vias}Max-Forwards: 70
Contact: <sip:{long}@host.example.net>
Content-Length: XXXX"
        ),
        SDP,
    ));
    assert_eq!(longreq.vias().unwrap().len(), 30);
    assert_eq!(longreq.from().unwrap().tag(), Some(long.as_str()));

    // §3.1.1.8 dblreq: a datagram holding a second message after Content-Length: ignored;
    // on a stream the second message is a message of its own.
    let second = wire(
        "INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: XXXX",
        SDP,
    );
    let mut dblreq = wire(
        "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0",
        "\n",
    );
    dblreq.extend(&second);
    let register = request(&dblreq);
    assert_eq!(register.method, Method::Register);
    assert!(register.body.is_empty());
    let mut stream = StreamDecoder::default();
    stream.feed(&dblreq);
    assert!(stream.next_message().unwrap().is_some());
    assert!(
        matches!(stream.next_message(), Ok(Some(Message::Request(r))) if r.method == Method::Invite)
    );

    // §3.1.1.9 semiuri: `;` inside the user part; a folded list header.
    let semiuri = request(&wire(
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0",
        "",
    ));
    assert_eq!(
        semiuri.uri.user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert!(semiuri.uri.params.is_empty());
    assert_eq!(semiuri.headers.get_all("Accept").len(), 6);

    // §3.1.1.10 transports: known and unknown transports.
    let transports = request(&wire(
        "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0",
        "",
    ));
    let names: Vec<String> = transports
        .vias()
        .unwrap()
        .into_iter()
        .map(|via| via.transport)
        .collect();
    assert_eq!(names, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    // §3.1.1.12 unreason: a UTF-8 reason phrase with odd characters.
    let unreason = response(&wire(
        "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: XXXX
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>",
        SDP,
    ));
    assert_eq!(
        unreason.reason,
        "= 2**3 * 5**2 но сто девяносто девять - простое"
    );

    // §3.1.1.13 noreason: an empty reason phrase.
    let noreason = response(&wire(
        "SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>",
        "",
    ));
    assert_eq!((noreason.status, noreason.reason.as_str()), (100, ""));
}
