//! RFC 3261 §24.1 (a registration) with the Digest challenge of §22 (RFC 2617), and §20's
//! compact forms.

use imfed_sip::digest::{Challenge, Credentials, DigestClient};
use imfed_sip::{Method, Response};

use super::{request, response, wire};

const REGISTER: &str = "REGISTER sip:registrar.biloxi.com SIP/2.0
Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7
Max-Forwards: 70
To: Bob <sip:bob@biloxi.com>
From: Bob <sip:bob@biloxi.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>
Expires: 7200
Content-Length: 0";

const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7;received=192.0.2.4
To: Bob <sip:bob@biloxi.com>;tag=2493k59kd
From: Bob <sip:bob@biloxi.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:bob@192.0.2.4>
Expires: 7200
Content-Length: 0";

#[test]
fn section_24_1_registration() {
    let register = request(&wire(REGISTER, ""));
    assert_eq!(register.method, Method::Register);
    assert_eq!(register.expires(), Some(7200));
    assert_eq!(register.to().unwrap().display.as_deref(), Some("Bob"));
    assert_eq!(
        register.to().unwrap().uri.aor(),
        register.from().unwrap().uri.aor()
    );
    let contacts = register.contacts().unwrap();
    assert_eq!(contacts[0].uri.to_string(), "sip:bob@192.0.2.4");
    assert!(!register.headers.contact_star());

    let ok = response(&wire(OK, ""));
    // What a registrar builds: the request's Via (with `received`), From, To tagged,
    // Call-ID and CSeq, then its own Contact and Expires.
    let mut answered = register.clone();
    let mut via = answered.top_via().unwrap();
    via.set_param("received", Some("192.0.2.4"));
    answered.headers.set("Via", via.to_string());
    let mut built = Response::to(&answered, 200, None, Some("2493k59kd"));
    built.headers.push("Contact", "<sip:bob@192.0.2.4>");
    built.headers.push("Expires", "7200");
    built.headers.push("Content-Length", "0");
    assert_eq!(built, ok);
}

/// §22.2 and §22.4: a 401 with a Digest challenge, the retried REGISTER with
/// `Authorization` (digest-uri = the Request-URI), checked by the registrar; and §22.3's
/// proxy form, 407 / `Proxy-Authenticate` / `Proxy-Authorization`.
#[test]
fn section_22_digest() {
    let register = request(&wire(REGISTER, ""));
    let nonce = "ea9c8e88df84f1cec4341ae6cbe5a359";
    let mut challenge = Response::to(&register, 401, None, Some("1"));
    challenge.headers.push(
        "WWW-Authenticate",
        Challenge::new("biloxi.com", nonce).to_string(),
    );
    let challenge = response(&challenge.to_bytes());

    let mut client = DigestClient::new("bob", "zanzibar");
    let offered = Challenge::parse(challenge.headers.get("WWW-Authenticate").unwrap()).unwrap();
    assert!(client.challenged(offered));
    let mut retry = register.clone();
    retry.headers.set("CSeq", "1827 REGISTER");
    let authorization = client
        .authorization("REGISTER", &retry.uri.to_string(), "0a4f113b")
        .unwrap();
    retry.headers.push("Authorization", authorization);
    let retry = request(&retry.to_bytes());

    let credentials = Credentials::parse(retry.headers.get("authorization").unwrap()).unwrap();
    assert_eq!(credentials.username, "bob");
    assert_eq!(credentials.realm, "biloxi.com");
    assert_eq!(credentials.uri, "sip:registrar.biloxi.com");
    assert!(credentials.verify(retry.method.as_str(), "zanzibar", nonce));
    assert!(!credentials.verify("REGISTER", "wrong", nonce));

    let mut proxy = Response::to(&register, 407, None, Some("2"));
    proxy.headers.push(
        "Proxy-Authenticate",
        Challenge::new("biloxi.com", "n2").to_string(),
    );
    assert_eq!(proxy.reason, "Proxy Authentication Required");
    let offered = Challenge::parse(proxy.headers.get("proxy-authenticate").unwrap()).unwrap();
    assert!(client.challenged(offered));
    let value = client
        .authorization("MESSAGE", "sip:alice@atlanta.com", "c2")
        .unwrap();
    assert!(
        Credentials::parse(&value)
            .unwrap()
            .verify("MESSAGE", "zanzibar", "n2")
    );
}

/// §7.3.3: a message written in compact forms reads the same as in long forms.
#[test]
fn section_7_3_3_compact_forms() {
    let compact = request(&wire(
        "MESSAGE sip:bob@biloxi.com SIP/2.0
v: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK1
Max-Forwards: 70
t: <sip:bob@biloxi.com>
f: <sip:alice@atlanta.com>;tag=9
i: m1@atlanta.com
CSeq: 1 MESSAGE
c: text/plain
s: lunch?
k: path
l: XXXX",
        "hi",
    ));
    assert_eq!(compact.call_id(), Some("m1@atlanta.com"));
    assert_eq!(compact.content_type(), Some("text/plain"));
    assert_eq!(compact.headers.get("Subject"), Some("lunch?"));
    assert_eq!(compact.headers.get_all("Supported"), vec!["path"]);
    assert_eq!(compact.from().unwrap().tag(), Some("9"));
    assert_eq!(compact.body, b"hi");
}
