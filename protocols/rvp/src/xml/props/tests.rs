//! Unit tests of property values and the DAV documents that carry them.

use http::StatusCode;

use super::*;
use crate::ns;
use crate::xml::{MultiStatus, PropFind, PropStat, PropertyUpdate, StatusLine, StatusResponse};

const NS: &str = "xmlns:d='DAV:' xmlns:r='http://schemas.microsoft.com/rvp/'";

fn update(inner: &str) -> Result<PropertyUpdate, XmlError> {
    PropertyUpdate::parse(
        format!(
            "<d:propertyupdate {NS}><d:set><d:prop>{inner}</d:prop></d:set></d:propertyupdate>"
        )
        .as_bytes(),
    )
}

#[test]
fn presence_names() {
    for (presence, name) in PRESENCE_NAMES {
        assert_eq!(presence.as_str(), *name);
        assert_eq!(Presence::from_name(name), *presence);
    }
    assert_eq!(
        Presence::from_name("gaming"),
        Presence::Other("gaming".into())
    );
    assert_eq!(Presence::Other("gaming".into()).to_string(), "gaming");
}

#[test]
fn leased_state_with_either_timeout_namespace() {
    for prefix in ["r", "d"] {
        let parsed = update(&format!(
            "<r:state><r:leased-value><r:value><r:online/></r:value>\
             <r:default-value><r:offline/></r:default-value>\
             <{prefix}:timeout> 1200 </{prefix}:timeout></r:leased-value></r:state>"
        ))
        .unwrap();
        assert_eq!(
            parsed.set,
            vec![Property::State(State::leased(
                Presence::Online,
                Presence::Offline,
                1200
            ))]
        );
    }
}

#[test]
fn plain_state_and_view_id() {
    let parsed = update("<r:state><r:view-id> 3577 </r:view-id><r:idle/></r:state>").unwrap();
    let Property::State(state) = &parsed.set[0] else {
        panic!("not a state");
    };
    assert_eq!(state.presence(), &Presence::Idle);
    assert_eq!(state.view_id.as_deref(), Some("3577"));
}

#[test]
fn other_properties() {
    let parsed = update(
        "<d:displayname> Steve </d:displayname><r:email>s@example.com</r:email>\
         <r:mobile-state>1</r:mobile-state><r:mobile-description>\n</r:mobile-description>\
         <x:custom xmlns:x='urn:x' a='1'>v</x:custom><r:mobile-state/><r:state/>",
    )
    .unwrap();
    assert_eq!(parsed.set[0], Property::DisplayName("Steve".into()));
    assert_eq!(parsed.set[1], Property::Email("s@example.com".into()));
    assert_eq!(parsed.set[2], Property::MobileState(true));
    assert_eq!(parsed.set[3], Property::MobileDescription(String::new()));
    let Property::Other(custom) = &parsed.set[4] else {
        panic!("not kept");
    };
    assert_eq!(custom.ns, "urn:x");
    assert_eq!(
        parsed.set[4].name(),
        PropName::Other {
            ns: "urn:x".into(),
            name: "custom".into()
        }
    );
    assert_eq!(parsed.set[5], Property::Empty(PropName::MobileState));
    assert_eq!(parsed.set[6], Property::Empty(PropName::State));
    assert_eq!(PropertyUpdate::parse(&parsed.to_xml()).unwrap(), parsed);
}

#[test]
fn invalid_values() {
    assert_eq!(
        update("<r:mobile-state>2</r:mobile-state>"),
        Err(XmlError::InvalidValue {
            element: "mobile-state",
            text: "2".into()
        })
    );
    assert_eq!(
        update(
            "<r:state><r:leased-value><r:value><r:online/></r:value></r:leased-value></r:state>"
        ),
        Err(XmlError::Missing {
            parent: "leased-value",
            child: "default-value"
        })
    );
    assert_eq!(
        update(
            "<r:state><r:leased-value><r:value/><r:default-value><r:offline/></r:default-value>\
             <d:timeout>1</d:timeout></r:leased-value></r:state>"
        ),
        Err(XmlError::Missing {
            parent: "value",
            child: "online, offline, away, ..."
        })
    );
    assert_eq!(
        update(
            "<r:state><r:leased-value><r:value><r:online/></r:value><r:default-value><r:offline/>\
             </r:default-value><d:timeout>soon</d:timeout></r:leased-value></r:state>"
        ),
        Err(XmlError::InvalidValue {
            element: "timeout",
            text: "soon".into()
        })
    );
    assert_eq!(
        update("<r:state><r:view-id>1</r:view-id></r:state>"),
        Err(XmlError::Missing {
            parent: "state",
            child: "leased-value or a presence value"
        })
    );
}

#[test]
fn propupdate_typo_is_not_a_propertyupdate() {
    // Well-formed but misnamed: not guessed at.
    let body = "<D:propupdate xmlns:D='DAV:'><D:set><D:prop/></D:set></D:propupdate>";
    assert_eq!(
        PropertyUpdate::parse(body.as_bytes()),
        Err(XmlError::UnexpectedRoot {
            expected: "DAV: propertyupdate",
            found: "{DAV:}propupdate".into()
        })
    );
    // As printed in §5.5.1: not well-formed.
    let body = "<D:propupdate xmlns:D='DAV:'><D:set><D:prop/></D:set></D:propertyupdate>";
    assert!(matches!(
        PropertyUpdate::parse(body.as_bytes()),
        Err(XmlError::MismatchedEndTag { .. })
    ));
}

#[test]
fn remove_instructions() {
    let body = format!(
        "<d:propertyupdate {NS}><d:remove><d:prop><r:email/></d:prop></d:remove>\
         <d:set><d:prop><d:displayname>x</d:displayname></d:prop></d:set></d:propertyupdate>"
    );
    let parsed = PropertyUpdate::parse(body.as_bytes()).unwrap();
    assert_eq!(parsed.remove, vec![PropName::Email]);
    assert_eq!(parsed.set, vec![Property::DisplayName("x".into())]);
    assert_eq!(PropertyUpdate::parse(&parsed.to_xml()).unwrap(), parsed);
    assert_eq!(
        PropertyUpdate::parse(
            format!("<d:propertyupdate {NS}><d:set/></d:propertyupdate>").as_bytes()
        ),
        Err(XmlError::Missing {
            parent: "set",
            child: "prop"
        })
    );
}

#[test]
fn propfind_forms() {
    for propfind in [
        PropFind::Prop(vec![
            PropName::DisplayName,
            PropName::State,
            PropName::Other {
                ns: "urn:x".into(),
                name: "y".into(),
            },
        ]),
        PropFind::Prop(vec![]),
        PropFind::AllProp,
        PropFind::PropName,
    ] {
        assert_eq!(PropFind::parse(&propfind.to_xml()).unwrap(), propfind);
    }
    assert_eq!(
        PropFind::parse(b"<d:propfind xmlns:d='DAV:'/>"),
        Err(XmlError::Missing {
            parent: "propfind",
            child: "prop"
        })
    );
}

#[test]
fn status_lines() {
    for (text, code, reason) in [
        ("HTTP/1.1 200 OK", 200, "OK"),
        (" HTTP/1.1 404 Not Found\n", 404, "Not Found"),
        ("HTTP/1.1.200.Successful", 200, "Successful"),
        ("http/1.0 207", 207, ""),
    ] {
        let line = StatusLine::parse(text).unwrap();
        assert_eq!(line.code.as_u16(), code, "{text:?}");
        assert_eq!(line.reason, reason, "{text:?}");
        assert_eq!(StatusLine::parse(&line.to_string()).unwrap(), line);
    }
    for bad in [
        "",
        "200 OK",
        "HTTP/1 200 OK",
        "HTTP/1.1 20 OK",
        "HTTP/1.1 2000",
        "HTTP/1.1200",
        "HTTP/1.1 099 x",
        "HTTP/1.1 200OK",
    ] {
        assert!(StatusLine::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        StatusLine::new(StatusCode::OK).to_string(),
        "HTTP/1.1 200 Successful"
    );
}

#[test]
fn multistatus_round_trip_and_errors() {
    let multistatus = MultiStatus {
        responses: vec![
            StatusResponse {
                href: "http://im.example.com/instmsg/aliases/stevem".into(),
                propstats: vec![
                    PropStat {
                        props: vec![Property::DisplayName("Steve".into())],
                        status: StatusLine::new(StatusCode::OK),
                    },
                    PropStat {
                        props: vec![Property::Empty(PropName::State)],
                        status: StatusLine::new(StatusCode::NOT_FOUND),
                    },
                ],
                status: None,
            },
            StatusResponse {
                href: "http://x/".into(),
                propstats: vec![],
                status: Some(StatusLine::new(StatusCode::FORBIDDEN)),
            },
        ],
    };
    assert_eq!(
        MultiStatus::parse(&multistatus.to_xml()).unwrap(),
        multistatus
    );
    let no_status = format!(
        "<d:multistatus {NS}><d:response><d:href>x</d:href><d:propstat><d:prop/></d:propstat>\
         </d:response></d:multistatus>"
    );
    assert_eq!(
        MultiStatus::parse(no_status.as_bytes()),
        Err(XmlError::Missing {
            parent: "propstat",
            child: "status"
        })
    );
    let no_href = format!("<d:multistatus {NS}><d:response/></d:multistatus>");
    assert_eq!(
        MultiStatus::parse(no_href.as_bytes()),
        Err(XmlError::Missing {
            parent: "response",
            child: "href"
        })
    );
}

#[test]
fn built_documents_use_the_canonical_prefixes() {
    let bytes = PropertyUpdate::set(vec![Property::State(State::leased(
        Presence::Online,
        Presence::Offline,
        1200,
    ))])
    .to_xml();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(
        text,
        format!(
            "<?xml version=\"1.0\"?><d:propertyupdate xmlns:d=\"{}\" xmlns:r=\"{}\"><d:set><d:prop>\
             <r:state><r:leased-value><r:value><r:online/></r:value><r:default-value><r:offline/>\
             </r:default-value><d:timeout>1200</d:timeout></r:leased-value></r:state></d:prop>\
             </d:set></d:propertyupdate>",
            ns::DAV,
            ns::RVP
        )
    );
}
