//! PIDF: the RFC 3863 examples, RPID persons, refusals, and property tests.

use proptest::prelude::*;

use super::*;

/// After RFC 3863 §3.3 (a basic document with the default namespace).
const BASIC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="0.8">tel:+09012345678</contact>
  </tuple>
</presence>
"#;

/// After RFC 3863 §3.4: a prefixed PIDF namespace, extension elements in status and
/// tuple, notes in two languages, a timestamp.
const EXTENDED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
    xmlns:myex="http://id.example.com/presence/"
    entity="pres:someone@example.com">
  <impp:tuple id="ck38g9">
    <impp:status>
      <impp:basic>open</impp:basic>
      <myex:location>home</myex:location>
    </impp:status>
    <myex:complete>false</myex:complete>
    <impp:contact priority="0.65">tel:+09012345678</impp:contact>
  </impp:tuple>
  <impp:tuple id="md6tw3">
    <impp:status>
      <impp:basic>closed</impp:basic>
    </impp:status>
    <impp:contact priority="1.0">
       im:someone@mobilecarrier.net</impp:contact>
    <impp:note xml:lang="en">Don't Disturb Please!</impp:note>
    <impp:note xml:lang="fr">Ne derangez pas, s'il vous plait</impp:note>
    <impp:timestamp>2001-10-27T16:49:29Z</impp:timestamp>
  </impp:tuple>
  <impp:note xml:lang="en">I'll be in Tokyo next week</impp:note>
</impp:presence>
"#;

/// After RFC 4480 §4 and RFC 4479: a person with activities, other prefixes.
const RPID: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:r="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:p="urn:ietf:params:xml:ns:pidf:data-model"
    entity="pres:alice@example.com">
  <tuple id="t1"><status><basic>open</basic></status><note>In a meeting &amp; busy</note></tuple>
  <p:person id="p1">
    <r:activities><r:busy/><r:meeting/><r:other>lunch &lt;soon&gt;</r:other><r:note>ignored</r:note></r:activities>
    <p:note>Back at 2</p:note>
    <p:timestamp>2005-05-30T22:00:29Z</p:timestamp>
  </p:person>
  <p:device id="d1"><p:deviceID>urn:x</p:deviceID></p:device>
</presence>
"#;

#[test]
fn rfc3863_basic_document() {
    let presence = Presence::parse(BASIC.as_bytes()).unwrap();
    assert_eq!(presence.entity, "pres:someone@example.com");
    assert_eq!(
        presence.tuples,
        vec![Tuple {
            id: "sg89ae".into(),
            basic: Some(Basic::Open),
            contact: Some("tel:+09012345678".into()),
            note: None,
            timestamp: None,
        }]
    );
    assert!(presence.is_open());
}

#[test]
fn rfc3863_prefixed_document_with_extensions() {
    let presence = Presence::parse(EXTENDED.as_bytes()).unwrap();
    assert_eq!(presence.tuples.len(), 2);
    assert_eq!(presence.tuples[0].basic, Some(Basic::Open));
    let second = &presence.tuples[1];
    assert_eq!(second.basic, Some(Basic::Closed));
    assert_eq!(
        second.contact.as_deref(),
        Some("im:someone@mobilecarrier.net")
    );
    assert_eq!(second.note.as_deref(), Some("Don't Disturb Please!"));
    assert_eq!(second.timestamp.as_deref(), Some("2001-10-27T16:49:29Z"));
    assert_eq!(
        presence.notes,
        vec!["I'll be in Tokyo next week".to_string()]
    );
    assert!(presence.is_open());
}

#[test]
fn rpid_person_and_activities() {
    let presence = Presence::parse(RPID.as_bytes()).unwrap();
    assert_eq!(
        presence.tuples[0].note.as_deref(),
        Some("In a meeting & busy")
    );
    assert_eq!(
        presence.persons,
        vec![Person {
            id: "p1".into(),
            activities: vec![
                Activity::Busy,
                Activity::Other("meeting".into()),
                Activity::Other("lunch <soon>".into())
            ],
            note: Some("Back at 2".into()),
        }]
    );
    assert_eq!(presence.activities().count(), 3);
    let again = Presence::parse(presence.to_xml().as_bytes()).unwrap();
    assert_eq!(again, presence);
}

#[test]
fn written_documents() {
    let mut presence = Presence::new("sip:alice@a.test");
    assert_eq!(
        presence.to_xml(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@a.test\">\n</presence>\n"
    );
    assert!(
        !Presence::parse(presence.to_xml().as_bytes())
            .unwrap()
            .is_open()
    );
    presence.tuples.push(Tuple {
        id: "t\"1".into(),
        basic: Some(Basic::Closed),
        note: Some("a\u{1}b".into()),
        ..Tuple::default()
    });
    presence.persons.push(Person {
        id: "p".into(),
        activities: vec![Activity::Away],
        note: None,
    });
    let xml = presence.to_xml();
    assert!(xml.contains("xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\""));
    assert!(xml.contains("<tuple id=\"t&quot;1\"><status><basic>closed</basic></status><note>a\u{FFFD}b</note></tuple>"));
    assert!(xml.contains(
        "<dm:person id=\"p\"><rpid:activities><rpid:away/></rpid:activities></dm:person>"
    ));
    let parsed = Presence::parse(xml.as_bytes()).unwrap();
    assert_eq!(parsed.tuples[0].id, "t\"1");
    assert_eq!(parsed.persons[0].activities, vec![Activity::Away]);
}

#[test]
fn must_understand_refuses_only_unknown_flagged_elements() {
    let flagged = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:pidf="urn:ietf:params:xml:ns:pidf"
        xmlns:x="urn:example:x" entity="pres:a@b">
      <tuple id="t"><status><basic>open</basic><x:mood pidf:mustUnderstand="true">calm</x:mood></status></tuple>
    </presence>"#;
    assert_eq!(
        Presence::parse(flagged.as_bytes()),
        Err(PidfError::MustUnderstand {
            ns: "urn:example:x".into(),
            name: "mood".into()
        })
    );
    let unqualified = flagged.replace("pidf:mustUnderstand=\"true\"", "mustUnderstand=\"1\"");
    assert!(matches!(
        Presence::parse(unqualified.as_bytes()),
        Err(PidfError::MustUnderstand { .. })
    ));
    let optional = flagged.replace(
        "pidf:mustUnderstand=\"true\"",
        "pidf:mustUnderstand=\"false\"",
    );
    assert!(Presence::parse(optional.as_bytes()).unwrap().is_open());
}

#[test]
fn refusals() {
    let cases: [(&str, PidfError); 6] = [
        ("", PidfError::NoRoot),
        (
            "<presence entity='x'/>",
            PidfError::NotPresence {
                ns: "".into(),
                name: "presence".into(),
            },
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf'/>",
            PidfError::MissingAttribute {
                element: "presence",
                attribute: "entity",
            },
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple/></presence>",
            PidfError::MissingAttribute {
                element: "tuple",
                attribute: "id",
            },
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'><tuple id='t'><status><basic>ajar</basic></status></tuple></presence>",
            PidfError::BadBasic {
                value: "ajar".into(),
            },
        ),
        (
            "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model' entity='x'><dm:person/></presence>",
            PidfError::MissingAttribute {
                element: "person",
                attribute: "id",
            },
        ),
    ];
    for (text, error) in cases {
        assert_eq!(Presence::parse(text.as_bytes()), Err(error), "{text}");
    }
    for text in [
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'>",
        "<x:presence entity='x'/>",
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'></tuple>",
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'/><again/>",
    ] {
        assert!(
            matches!(Presence::parse(text.as_bytes()), Err(PidfError::Xml { .. })),
            "{text}"
        );
    }
    assert!(matches!(
        Presence::parse(b"<!DOCTYPE p [<!ENTITY e 'boom'>]><presence/>"),
        Err(PidfError::Restricted { .. })
    ));
    assert!(matches!(
        Presence::parse(b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='&e;'/>"),
        Err(PidfError::Xml { .. }) | Err(PidfError::Restricted { .. })
    ));
    assert_eq!(
        Presence::parse(b"<p>\xff</p>"),
        Err(PidfError::NotUtf8 { offset: 3 })
    );
    let deep = format!(
        "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'>{}",
        "<x>".repeat(MAX_DEPTH)
    );
    assert_eq!(
        Presence::parse(deep.as_bytes()),
        Err(PidfError::TooDeep { max: MAX_DEPTH })
    );
    let big = vec![b' '; MAX_BYTES + 1];
    assert_eq!(
        Presence::parse(&big),
        Err(PidfError::TooLarge { max: MAX_BYTES })
    );
}

/// Text as the parser gives it back: no surrounding whitespace, no CR.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9<>&\"' é-]{0,12}".prop_map(|text| text.trim().to_string())
}

fn presence() -> impl Strategy<Value = Presence> {
    let tuple = (
        "[a-z0-9]{1,6}",
        prop::option::of(prop_oneof![Just(Basic::Open), Just(Basic::Closed)]),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
    )
        .prop_map(|(id, basic, contact, note, timestamp)| Tuple {
            id,
            basic,
            contact,
            note,
            timestamp,
        });
    let activity = prop_oneof![
        Just(Activity::Away),
        Just(Activity::Busy),
        prop::sample::select(vec!["meeting", "on-the-phone", "vacation"])
            .prop_map(|name| Activity::Other(name.into())),
        "[a-z][a-z ]{0,7}x".prop_map(Activity::Other),
    ];
    let person = (
        "[a-z0-9]{1,6}",
        prop::collection::vec(activity, 0..3),
        prop::option::of(text()),
    )
        .prop_map(|(id, activities, note)| Person {
            id,
            activities,
            note,
        });
    (
        "(pres|sip):[a-z]{1,5}@[a-z]{1,5}\\.test",
        prop::collection::vec(tuple, 0..3),
        prop::collection::vec(person, 0..2),
        prop::collection::vec(text(), 0..2),
    )
        .prop_map(|(entity, tuples, persons, notes)| Presence {
            entity,
            tuples,
            persons,
            notes,
        })
}

proptest! {
    #[test]
    fn written_documents_parse_back(presence in presence()) {
        prop_assert_eq!(Presence::parse(presence.to_xml().as_bytes()), Ok(presence));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Presence::parse(&bytes);
    }

    #[test]
    fn damaged_documents_never_panic(cut in 0usize..400, byte in any::<u8>()) {
        let mut bytes = RPID.as_bytes().to_vec();
        let at = cut.min(bytes.len() - 1);
        bytes[at] = byte;
        let _ = Presence::parse(&bytes);
        let _ = Presence::parse(&bytes[..at]);
    }
}
