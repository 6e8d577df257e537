//! Property tests of the bodies: RVP §9 XML documents and §10 MIME payloads survive
//! build-then-parse, no input makes a body parser panic, and §4.1.2 URLs and §7 headers
//! round-trip.

use http::{HeaderMap, StatusCode};
use imfed_rvp::headers::{
    CallBack, Depth, FromPrincipal, HopCount, NotificationType, SubscriptionId,
    SubscriptionLifetime,
};
use imfed_rvp::mime::{Control, InstantMessage, MimePayload, Payload};
use imfed_rvp::ns;
use imfed_rvp::xml::{
    Ace, AcePrincipal, Acl, Contact, Credentials, Element, Message, MultiStatus, Node,
    Notification, Presence, PropChange, PropFind, PropName, PropNotification, PropStat, Property,
    PropertyUpdate, Right, RvpAcl, State, StatusLine, StatusResponse, Subscription, Subscriptions,
};
use imfed_rvp::{Document, NodeUrl, RvpHeaders, ServerName};
use proptest::prelude::*;

use crate::{damage, edits};

/// Characters XML 1.0 allows, biased towards the awkward ones.
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '<', '>', '&', '\'', '"', '\r', '\n', '\t', ' ', ']', ';', 'a', 'Z', '0', '\u{e9}',
            '\u{2019}', '\u{263A}', '\u{10348}', '\u{85}', '\u{a0}', '\u{2028}',
        ]),
        2 => any::<char>().prop_filter("valid XML character", |c| {
            matches!(*c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        }),
    ]
}

fn xml_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(xml_char(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

/// Text as a typed value holds it: surrounding whitespace trimmed.
fn trimmed(max: usize) -> impl Strategy<Value = String> {
    xml_string(max).prop_map(|text| text.trim().to_string())
}

/// A URL-like value: no whitespace (the parser removes it).
fn href() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[a-z]{1,8}", "[a-z0-9.]{1,8}")
            .prop_map(|(host, user)| format!("http://im.{host}.com/instmsg/aliases/{user}")),
        "[!-~\u{e9}]{1,24}",
    ]
}

fn presence() -> impl Strategy<Value = Presence> {
    prop::sample::select(vec![
        Presence::Online,
        Presence::Offline,
        Presence::Away,
        Presence::Busy,
        Presence::BackSoon,
        Presence::OnPhone,
        Presence::AtLunch,
        Presence::Idle,
        Presence::Invisible,
        Presence::Other("gaming".into()),
        Presence::Other("x-custom".into()),
    ])
}

fn state() -> impl Strategy<Value = State> {
    (
        presence(),
        prop::option::of((presence(), any::<u64>())),
        prop::option::of(trimmed(8)),
    )
        .prop_map(|(value, lease, view_id)| {
            let mut state = match lease {
                Some((default_value, timeout)) => State::leased(value, default_value, timeout),
                None => State::plain(value),
            };
            state.view_id = view_id;
            state
        })
}

fn other_element() -> impl Strategy<Value = Element> {
    (
        prop::sample::select(vec!["urn:x", "urn:y:z", ""]),
        prop::sample::select(vec!["custom", "state", "a-b", "\u{fc}ber"]),
        prop::option::of(("[a-z]{1,4}", xml_string(8))),
        prop::option::of(xml_string(12).prop_filter("non-empty", |t| !t.is_empty())),
    )
        .prop_map(|(ns, name, attr, text)| {
            let mut element = Element::new(ns, name);
            element.attrs.extend(attr);
            if let Some(text) = text {
                element.children.push(Node::Text(text));
            }
            element
        })
}

fn prop_name() -> impl Strategy<Value = PropName> {
    prop_oneof![
        Just(PropName::State),
        Just(PropName::DisplayName),
        Just(PropName::Email),
        Just(PropName::MobileState),
        Just(PropName::MobileDescription),
        ("[a-z]{1,8}").prop_map(|name| PropName::Other {
            ns: "urn:x".into(),
            name
        }),
    ]
}

fn property() -> impl Strategy<Value = Property> {
    prop_oneof![
        state().prop_map(Property::State),
        trimmed(16).prop_map(Property::DisplayName),
        trimmed(16).prop_map(Property::Email),
        any::<bool>().prop_map(Property::MobileState),
        trimmed(16).prop_map(Property::MobileDescription),
        prop::sample::select(vec![PropName::State, PropName::MobileState])
            .prop_map(Property::Empty),
        other_element().prop_map(Property::Other),
    ]
}

fn props() -> impl Strategy<Value = Vec<Property>> {
    prop::collection::vec(property(), 0..4)
}

fn update() -> impl Strategy<Value = PropertyUpdate> {
    (props(), prop::collection::vec(prop_name(), 0..3))
        .prop_map(|(set, remove)| PropertyUpdate { set, remove })
}

fn status_line() -> impl Strategy<Value = StatusLine> {
    (
        prop::sample::select(vec![200u16, 207, 403, 404, 412, 500]),
        prop_oneof![Just(String::new()), "[A-Za-z][A-Za-z -]{0,15}[A-Za-z]"],
    )
        .prop_map(|(code, reason)| StatusLine {
            code: StatusCode::from_u16(code).unwrap(),
            reason,
        })
}

fn multistatus() -> impl Strategy<Value = MultiStatus> {
    let propstat = (props(), status_line()).prop_map(|(props, status)| PropStat { props, status });
    let response = (
        href(),
        prop::collection::vec(propstat, 0..3),
        prop::option::of(status_line()),
    )
        .prop_map(|(href, propstats, status)| StatusResponse {
            href,
            propstats,
            status,
        });
    prop::collection::vec(response, 0..3).prop_map(|responses| MultiStatus { responses })
}

fn contact() -> impl Strategy<Value = Contact> {
    (href(), trimmed(12)).prop_map(|(href, description)| Contact { href, description })
}

fn notification() -> impl Strategy<Value = Notification> {
    let message = (
        contact(),
        prop::collection::vec(contact(), 0..3),
        xml_string(48),
    )
        .prop_map(|(from, to, mime_data)| {
            Notification::Message(Message {
                from,
                to,
                mime_data,
            })
        });
    let change = prop_oneof![
        update().prop_map(PropChange::Update),
        (props(), prop::option::of(status_line()))
            .prop_map(|(props, status)| PropChange::PropStat { props, status }),
    ];
    let property = (contact(), contact(), change).prop_map(|(from, to, change)| {
        Notification::Property(PropNotification { from, to, change })
    });
    let other = prop::collection::vec(other_element(), 0..3).prop_map(Notification::Other);
    prop_oneof![message, property, other]
}

fn subscriptions() -> impl Strategy<Value = Subscriptions> {
    let entry = (
        "[!-~]{1,10}",
        prop::option::of(href()),
        prop::option::of(href()),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(id, href, principal, timeout)| Subscription {
            id: SubscriptionId::new(id).unwrap(),
            href,
            principal,
            timeout,
        });
    prop::collection::vec(entry, 0..4).prop_map(|subscriptions| Subscriptions { subscriptions })
}

fn right() -> impl Strategy<Value = Right> {
    prop::sample::select(vec![
        Right::Read,
        Right::Write,
        Right::ReadAcl,
        Right::WriteAcl,
        Right::All,
        Right::SendTo,
        Right::Presence,
        Right::List,
        Right::ReceiveFrom,
        Right::Subscriptions,
        Right::SubscribeOthers,
        Right::Other("writeowner".into()),
    ])
}

fn acl() -> impl Strategy<Value = RvpAcl> {
    let ace = (
        prop_oneof![href().prop_map(AcePrincipal::Rvp), Just(AcePrincipal::All)],
        any::<[bool; 5]>(),
        prop::collection::vec(right(), 0..4),
        prop::collection::vec(right(), 0..4),
    )
        .prop_map(
            |(principal, [any, ntlm, digest, assertion, internal], grant, deny)| Ace {
                principal,
                credentials: Credentials {
                    any,
                    ntlm,
                    digest,
                    assertion,
                    internal,
                },
                grant,
                deny,
            },
        );
    (
        prop::option::of(trimmed(8)),
        prop::collection::vec(ace, 0..4),
    )
        .prop_map(|(inheritance, aces)| RvpAcl {
            acl: Acl { inheritance, aces },
        })
}

fn propfind() -> impl Strategy<Value = PropFind> {
    prop_oneof![
        prop::collection::vec(prop_name(), 0..4).prop_map(PropFind::Prop),
        Just(PropFind::AllProp),
        Just(PropFind::PropName),
    ]
}

/// Every RVP document.
fn document() -> impl Strategy<Value = Document> {
    prop_oneof![
        notification().prop_map(Document::Notification),
        update().prop_map(Document::PropertyUpdate),
        propfind().prop_map(Document::PropFind),
        multistatus().prop_map(Document::MultiStatus),
        subscriptions().prop_map(Document::Subscriptions),
        acl().prop_map(Document::Acl),
    ]
}

/// Runs every body parser on `bytes`; none may panic.
fn parse_with_everything(bytes: &[u8]) {
    let _ = Element::parse(bytes);
    let _ = Document::parse(bytes);
    let _ = Notification::parse(bytes);
    let _ = PropertyUpdate::parse(bytes);
    let _ = PropFind::parse(bytes);
    let _ = MultiStatus::parse(bytes);
    let _ = Subscriptions::parse(bytes);
    let _ = RvpAcl::parse(bytes);
    if let Ok(Notification::Message(message)) = Notification::parse(bytes) {
        let _ = message.payload();
    }
}

/// Random trees of RVP element names: structurally plausible documents that get past
/// the XML layer and into the typed readers.
fn rvp_tree() -> impl Strategy<Value = Element> {
    let names = prop::sample::select(vec![
        (ns::RVP, "notification"),
        (ns::RVP, "message"),
        (ns::RVP, "propnotification"),
        (ns::RVP, "notification-from"),
        (ns::RVP, "notification-to"),
        (ns::RVP, "contact"),
        (ns::DAV, "href"),
        (ns::RVP, "description"),
        (ns::RVP, "msgbody"),
        (ns::RVP, "mime-data"),
        (ns::RVP, "state"),
        (ns::RVP, "leased-value"),
        (ns::RVP, "value"),
        (ns::RVP, "default-value"),
        (ns::DAV, "timeout"),
        (ns::RVP, "timeout"),
        (ns::RVP, "view-id"),
        (ns::RVP, "online"),
        (ns::DAV, "propertyupdate"),
        (ns::DAV, "set"),
        (ns::DAV, "remove"),
        (ns::DAV, "prop"),
        (ns::DAV, "multistatus"),
        (ns::DAV, "response"),
        (ns::DAV, "propstat"),
        (ns::DAV, "status"),
        (ns::DAV, "propfind"),
        (ns::DAV, "displayname"),
        (ns::RVP, "mobile-state"),
        (ns::RVP, "subscriptions"),
        (ns::RVP, "subscription"),
        (ns::RVP, "subscription-id"),
        (ns::ACL, "principal"),
        (ns::ACL, "rvp-principal"),
        (ns::ACL, "rvpacl"),
        (ns::ACL, "acl"),
        (ns::ACL, "ace"),
        (ns::ACL, "grant"),
        (ns::ACL, "deny"),
        (ns::ACL, "credentials"),
        (ns::ACL, "allprincipals"),
        (ns::ACL, "inheritance"),
        ("urn:x", "other"),
    ]);
    let text = prop::sample::select(vec![
        "",
        " 12 ",
        "0",
        "1",
        "x",
        "HTTP/1.1 200 OK",
        "HTTP/1.1.404.Not Found",
        "http://h/instmsg/aliases/u",
        "MIME-Version: 1.0\nContent-Type: text/plain\n\nhi",
        "Content-Type: bogus\n\n",
        "a b",
        "-1",
        "99999999999999999999999",
    ]);
    let leaf = (names.clone(), text.clone()).prop_map(|((ns, name), text)| {
        let element = Element::new(ns, name);
        if text.is_empty() {
            element
        } else {
            element.with_text(text)
        }
    });
    leaf.prop_recursive(6, 48, 5, move |inner| {
        (
            names.clone(),
            prop::collection::vec(inner, 0..5),
            text.clone(),
        )
            .prop_map(|((ns, name), children, text)| {
                let mut element = Element::new(ns, name);
                if !text.is_empty() {
                    element.children.push(Node::Text(text.to_string()));
                }
                element
                    .children
                    .extend(children.into_iter().map(Node::Element));
                element
            })
    })
}

proptest! {
    /// Build then parse: every typed document reads back as itself, through the generic
    /// dispatcher too.
    #[test]
    fn documents_round_trip(document in document()) {
        let bytes = document.to_xml();
        prop_assert_eq!(Document::parse(&bytes), Ok(document));
    }

    /// A payload built into an instant message reads back unchanged after XML and MIME.
    #[test]
    fn payloads_round_trip_through_messages(payload in payload(), from in contact()) {
        prop_assert_eq!(Payload::parse(&payload.to_text()), Ok(payload.clone()));
        let notification = Notification::Message(Message::new(from, vec![], &payload));
        let Ok(Notification::Message(message)) = Notification::parse(&notification.to_xml()) else {
            return Err(TestCaseError::fail("not a message"));
        };
        prop_assert_eq!(message.payload(), Ok(payload));
    }

    /// Arbitrary bytes never panic any body parser.
    #[test]
    fn arbitrary_bytes_never_panic_the_xml_parsers(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        prefix in prop::sample::select(vec![
            "",
            "<?xml version=\"1.0\"?>",
            "<r:notification xmlns:r='http://schemas.microsoft.com/rvp/' xmlns:d='DAV:'>",
            "<d:multistatus xmlns:d='DAV:'><d:response>",
        ]),
    ) {
        let mut input = prefix.as_bytes().to_vec();
        input.extend_from_slice(&bytes);
        parse_with_everything(&input);
    }

    /// Plausible trees of RVP elements, whole or damaged, never panic any reader.
    #[test]
    fn rvp_shaped_documents_never_panic(tree in rvp_tree(), edits in edits()) {
        let bytes = tree.to_document();
        parse_with_everything(&bytes);
        parse_with_everything(&damage(bytes, &edits));
    }

    /// Valid documents, damaged, never panic either.
    #[test]
    fn damaged_documents_never_panic(document in document(), edits in edits()) {
        parse_with_everything(&damage(document.to_xml(), &edits));
    }

    /// Markup soup never panics the parsers.
    #[test]
    fn markup_soup_never_panics(
        pieces in prop::collection::vec(
            prop::sample::select(vec![
                "<", ">", "/", "'", "\"", "=", "&", ";", "#x", "amp", "d:", "r:", "a:", "xmlns",
                "xmlns:d='DAV:'", "xmlns:r='http://schemas.microsoft.com/rvp/'", " ", "<!--",
                "-->", "<![CDATA[", "]]>", "<?", "?>", "</", "/>", "notification", "message",
                "state", "href", "prop", "&#0;", "&lt;", "\u{e9}", "\r\n", "<!DOCTYPE x>",
            ]),
            0..64,
        ),
    ) {
        let input: String = pieces.concat();
        parse_with_everything(input.as_bytes());
    }
}

fn line_value() -> impl Strategy<Value = String> {
    "[!-~\u{e9}]([ -~\u{e9}]{0,20}[!-~\u{e9}])?"
}

fn payload() -> impl Strategy<Value = Payload> {
    let text = (
        prop::option::of("[A-Za-z0-9-]{1,10}"),
        prop::option::of(line_value()),
        prop::option::of(line_value()),
        xml_string(40),
    )
        .prop_map(|(charset, session_id, format, text)| {
            Payload::Text(InstantMessage {
                charset,
                session_id,
                format,
                text,
            })
        });
    let control = (
        prop::option::of(line_value()),
        prop::option::of(line_value()),
    )
        .prop_map(|(typing_user, session_id)| {
            Payload::Control(Control {
                typing_user,
                session_id,
            })
        });
    let other = (
        prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,12}", line_value()), 0..4),
        xml_string(40),
    )
        .prop_map(|(extra, body)| {
            let mut headers = vec![(
                "Content-Type".to_string(),
                "text/x-msmsgsinvite; charset=UTF-8".to_string(),
            )];
            headers.extend(extra);
            Payload::Other(MimePayload { headers, body })
        });
    prop_oneof![text, control, other]
}

// ---------------------------------------------------------------------------------------
// Headers and URLs
// ---------------------------------------------------------------------------------------

proptest! {
    /// Node URLs format and parse back; principals keep a lower-cased alias.
    #[test]
    fn node_urls_round_trip(
        host in "[a-zA-Z0-9][a-zA-Z0-9.-]{0,12}",
        port in prop::option::of(any::<u16>()),
        user in "[A-Za-z0-9._~-]{1,12}",
        path in "(/[!-~&&[^#?/]]{0,8}){0,3}",
    ) {
        let principal = NodeUrl::principal(&host, port, &user).unwrap();
        let lower = user.to_ascii_lowercase();
        prop_assert_eq!(principal.alias(), Some(lower.as_str()));
        prop_assert_eq!(NodeUrl::parse(&principal.to_string()), Ok(principal.clone()));
        let node = NodeUrl::node(&host, port, &path).unwrap();
        prop_assert_eq!(NodeUrl::parse(&node.to_string()), Ok(node));
    }

    /// Typed headers written into a map read back as written.
    #[test]
    fn typed_headers_round_trip(
        lifetime in any::<u64>(),
        hops in 1u32..,
        id in "[!-~]{1,16}",
        user in "[a-z]{1,8}",
        other in "[!-~]{1,16}",
    ) {
        let mut headers = HeaderMap::new();
        let id = SubscriptionId::new(id).unwrap();
        let callback = CallBack(NodeUrl::principal("im.example.com", None, &user).unwrap());
        let server = FromPrincipal::Server(ServerName::new("im.example.com").unwrap());
        let kind = match imfed_rvp::headers::Word::new(other.clone()) {
            Ok(word) if !other.eq_ignore_ascii_case("update/propchange")
                && !other.eq_ignore_ascii_case("pragma/notify") => NotificationType::Other(word),
            _ => NotificationType::PragmaNotify,
        };
        headers.set_typed(&SubscriptionLifetime(lifetime));
        headers.set_typed(&HopCount::new(hops).unwrap());
        headers.set_typed(&id);
        headers.set_typed(&callback);
        headers.set_typed(&server);
        headers.set_typed(&kind);
        headers.set_typed(&Depth::Zero);
        prop_assert_eq!(headers.typed(), Ok(Some(SubscriptionLifetime(lifetime))));
        prop_assert_eq!(headers.typed(), Ok(HopCount::new(hops)));
        prop_assert_eq!(headers.typed(), Ok(Some(id)));
        prop_assert_eq!(headers.typed(), Ok(Some(callback)));
        prop_assert_eq!(headers.typed(), Ok(Some(server)));
        prop_assert_eq!(headers.typed(), Ok(Some(kind)));
        prop_assert_eq!(headers.typed(), Ok(Some(Depth::Zero)));
    }
}
