//! URIs: the RFC 3261 §19.1.3 examples, §19.1.4 comparisons, RFC 4475 oddities, errors,
//! and property tests.

use proptest::prelude::*;

use super::*;

#[test]
fn rfc3261_19_1_3_examples_parse_and_write_back() {
    for text in [
        "sip:alice@atlanta.com",
        "sip:alice:secretword@atlanta.com;transport=tcp",
        "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sips:1212@gateway.com",
        "sip:alice@192.0.2.4",
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip:alice;day=tuesday@atlanta.com",
        "sip:[2001:db8::10]:5070;lr",
    ] {
        let uri = Uri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(uri.to_string(), text);
    }
    let uri = Uri::parse("sip:alice:secretword@atlanta.com;transport=tcp").unwrap();
    assert_eq!(uri.user_part(), Some("alice"));
    assert_eq!(uri.password(), Some("secretword"));
    assert_eq!(uri.transport(), Some("tcp"));
    assert_eq!(uri.aor().to_string(), "sip:alice@atlanta.com");
    let uri = Uri::parse("sip:alice;day=tuesday@atlanta.com").unwrap();
    assert_eq!(uri.user.as_deref(), Some("alice;day=tuesday"));
    assert!(uri.params.is_empty());
    let uri = Uri::parse("SIP:Bob@Biloxi.COM:5062;Transport=UDP;lr").unwrap();
    assert_eq!(uri.scheme, Scheme::Sip);
    assert_eq!(uri.param("transport"), Some(Some("UDP")));
    assert!(uri.is_loose_router());
    assert_eq!(uri.host_port(), "Biloxi.COM:5062");
    assert_eq!(uri.aor().to_string(), "sip:Bob@biloxi.com");
}

/// RFC 4475 §3.1.1.2: unusual but legal characters in the user and password.
#[test]
fn rfc4475_unusual_user_and_password() {
    let text = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
    let uri = Uri::parse(text).unwrap();
    assert_eq!(
        uri.user_part(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(uri.host, "example.com");
    assert_eq!(uri.to_string(), text);
}

#[test]
fn errors_name_the_part() {
    let cases: [(&str, UriError); 12] = [
        ("alice@atlanta.com", UriError::MissingScheme),
        (
            "<sip:user@example.com>",
            UriError::BadScheme {
                scheme: "<sip".into(),
            },
        ),
        (
            "nobodyknowsthisscheme:totallyopaquecontent",
            UriError::UnsupportedScheme {
                scheme: "nobodyknowsthisscheme".into(),
            },
        ),
        (
            "soap.beep://192.0.2.103:3002",
            UriError::UnsupportedScheme {
                scheme: "soap.beep".into(),
            },
        ),
        ("sip:@host", UriError::EmptyUser),
        ("sip:", UriError::BadHost { host: "".into() }),
        ("sip:a@b c", UriError::BadHost { host: "b c".into() }),
        (
            "sip:host:99999",
            UriError::BadPort {
                port: "99999".into(),
            },
        ),
        (
            "sip:us er@host",
            UriError::BadCharacter {
                part: "user",
                character: ' ',
            },
        ),
        ("sip:a%4@host", UriError::BadEscape { part: "user" }),
        ("sip:host;", UriError::BadParameter { param: "".into() }),
        ("sip:host?x", UriError::BadHeader { header: "x".into() }),
    ];
    for (text, error) in cases {
        assert_eq!(Uri::parse(text), Err(error), "{text}");
    }
    assert!(Uri::parse("sip:[::1").is_err());
    assert!(Uri::parse("sip:[::1]x").is_err());
    assert!(Uri::parse("sip:host:").is_err());
}

/// RFC 3261 §19.1.4's equivalent and non-equivalent pairs.
#[test]
fn rfc3261_19_1_4_comparison() {
    let equivalent = [
        (
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp",
        ),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ];
    for (a, b) in equivalent {
        let (a, b) = (Uri::parse(a).unwrap(), Uri::parse(b).unwrap());
        assert!(a.equivalent(&b) && b.equivalent(&a), "{a} ~ {b}");
    }
    let different = [
        (
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP",
        ),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        (
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp",
        ),
        (
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting",
        ),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        (
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off",
        ),
    ];
    for (a, b) in different {
        let (a, b) = (Uri::parse(a).unwrap(), Uri::parse(b).unwrap());
        assert!(!a.equivalent(&b), "{a} !~ {b}");
    }
}

#[test]
fn builders() {
    let uri = Uri::new(Some("bob"), "127.0.0.1")
        .with_port(5070)
        .with_param("transport", Some("tcp"))
        .with_param("Transport", Some("udp"))
        .with_param("lr", None);
    assert_eq!(uri.to_string(), "sip:bob@127.0.0.1:5070;transport=udp;lr");
    assert_eq!("sip:bob@127.0.0.1:5070;transport=udp;lr".parse(), Ok(uri));
    assert_eq!(Uri::new(None, "ref.test").to_string(), "sip:ref.test");
}

fn escaped(extra: &'static str) -> impl Strategy<Value = String> {
    let plain = format!("[a-zA-Z0-9\\-_.!~*'(){}]", regex_escape(extra));
    prop::collection::vec(
        prop_oneof![4 => prop::string::string_regex(&plain).unwrap(), 1 => "%[0-9A-F]{2}"],
        1..6,
    )
    .prop_map(|parts| parts.concat())
}

fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| ['\\', c]).collect()
}

pub(crate) fn uri() -> impl Strategy<Value = Uri> {
    let host = prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9]{0,5}){0,2}",
        "(25[0-5]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|1[0-9]{2}|[1-9]?[0-9])){3}",
        Just("[2001:db8::1]".to_string()),
    ];
    (
        any::<bool>(),
        prop::option::of(escaped(USER_EXTRA)),
        host,
        prop::option::of(any::<u16>()),
        prop::collection::vec(
            (escaped(PARAM_EXTRA), prop::option::of(escaped(PARAM_EXTRA))),
            0..3,
        ),
        prop::collection::vec((escaped(HEADER_EXTRA), escaped(HEADER_EXTRA)), 0..2),
    )
        .prop_map(|(sips, user, host, port, params, headers)| Uri {
            scheme: if sips { Scheme::Sips } else { Scheme::Sip },
            user,
            host,
            port,
            params,
            headers,
        })
}

proptest! {
    #[test]
    fn written_uris_parse_back(uri in uri()) {
        prop_assert_eq!(Uri::parse(&uri.to_string()), Ok(uri.clone()));
        prop_assert!(uri.equivalent(&uri));
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,40}") {
        if let Ok(uri) = Uri::parse(&text) {
            prop_assert_eq!(Uri::parse(&uri.to_string()), Ok(uri));
        }
    }
}
