//! RVP §5.7, §5.8 and §6.3: ACL, the methods RVP refuses, the 401 challenge; and the
//! examples built rather than parsed.

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use imfed_rvp::headers::{AckType, FromPrincipal, HopCount, NotificationsVersion};
use imfed_rvp::mime::{InstantMessage, Payload};
use imfed_rvp::xml::{
    Ace, AcePrincipal, Contact, Credentials, Message, Notification, Right, RvpAcl,
};
use imfed_rvp::{Method, NodeUrl, Request, RequestDecoder, Response, ResponseDecoder};

use super::{
    BRUCEB_ACME, LOGIN_SUBSCRIBE, LOGIN_SUBSCRIBE_OK, STEVEM, assert_version,
    check_login_subscribe, check_login_subscribe_ok, principal, request, response, url, wire,
};

#[test]
fn section_5_7_3_acl() {
    let request = request(&wire(
        "\
ACL /instmsg/aliases/bruceb HTTP/1.1
RVP-Notifications-Version: 1.0
Host: im.acme.com
Content-Length: 0
RVP-From-Principal: http://im.acme.com/instmsg/aliases/bruceb",
        "",
    ));
    assert_eq!(request.method, Method::Acl);
    assert_eq!(request.header(), Ok(principal(BRUCEB_ACME)));

    let response = response(&wire(
        "\
HTTP/1.1 200 Successful
Content-Type: text/xml
Content-Length: XXXX
RVP-Notifications-Version: 1.0",
        r#"<?xml version="1.0"?>
<a:rvpacl xmlns:a="http://schemas.microsoft.com/rvp/acl/">
     <a:acl>
             <a:inheritance>none</a:inheritance>
             <a:ace>
                     <a:principal>
                             <a:rvp-principal>
                                http://im.example.com/instmsg/ali
                        ases/steveb/
                             </a:rvp-principal>
                             <a:credentials>
                                     <a:assertion/>
                                     <a:digest/>
                                     <a:ntlm/>
                             </a:credentials>
                     </a:principal>
                     <a:grant/>
                     <a:deny>
                             <a:send-to/>
                             <a:presence/>
                     </a:deny>
             </a:ace>
             <a:ace>
                     <a:principal>
                             <a:allprincipals/>
                             <a:credentials>
                                     <a:assertion/>
                                     <a:digest/>
                                     <a:ntlm/>
                             </a:credentials>
                     </a:principal>
                     <a:grant>
                             <a:list/>
                             <a:read/>
                             <a:send-to/>
                             <a:presence/>
                     </a:grant>
                     <a:deny/>
             </a:ace>
             <a:ace>
                     <a:principal>
                             <a:rvp-principal>
                                     http://im.acme.com/instmsg/a
                             liases/bruceb
                             </a:rvp-principal>
                             <a:credentials>
                                     <a:assertion/>
                             </a:credentials>
                     </a:principal>
                     <a:grant>
                             <a:list/>
                             <a:read/>
                             <a:write/>
                             <a:send-to/>
                             <a:receive-from/>
                             <a:readacl/>
                             <a:writeacl/>
                             <a:presence/>
                             <a:subscriptions/>
                             <a:subscribe-others/>
                     </a:grant>
                     <a:deny/>
             </a:ace>
     </a:acl>
</a:rvpacl>"#,
    ));
    assert_version(&response.headers);
    let asserted = Credentials {
        assertion: true,
        digest: true,
        ntlm: true,
        ..Credentials::default()
    };
    let acl = RvpAcl::parse(&response.body).unwrap();
    assert_eq!(acl.acl.inheritance.as_deref(), Some("none"));
    assert_eq!(
        acl.acl.aces,
        vec![
            Ace {
                principal: AcePrincipal::Rvp(
                    "http://im.example.com/instmsg/aliases/steveb/".into()
                ),
                credentials: asserted,
                grant: vec![],
                deny: vec![Right::SendTo, Right::Presence],
            },
            Ace {
                principal: AcePrincipal::All,
                credentials: asserted,
                grant: vec![Right::List, Right::Read, Right::SendTo, Right::Presence],
                deny: vec![],
            },
            Ace {
                principal: AcePrincipal::Rvp(BRUCEB_ACME.into()),
                credentials: Credentials {
                    assertion: true,
                    ..Credentials::default()
                },
                grant: vec![
                    Right::List,
                    Right::Read,
                    Right::Write,
                    Right::SendTo,
                    Right::ReceiveFrom,
                    Right::ReadAcl,
                    Right::WriteAcl,
                    Right::Presence,
                    Right::Subscriptions,
                    Right::SubscribeOthers,
                ],
                deny: vec![],
            },
        ]
    );
    assert_eq!(RvpAcl::parse(&acl.to_xml()).unwrap(), acl);
}

/// §6.3 with the header values the page width wrapped joined again.
const CHALLENGE: &str = "\
HTTP/1.1 401 Access Denied
WWW-Authenticate: Negotiate
WWW-Authenticate: NTLM
WWW-Authenticate: Digest qop=\"auth\", realm=\"im.acme.com\", nonce=\"78a8ffeeb123458a400358100000b4d0ed33ae239123441b44896487feda\"
Content-Type: text/html
Content-Length: XXXX
RVP-Notifications-Version: 1.0";

const AUTHORIZED_SUBSCRIBE: &str = "\
SUBSCRIBE /instmsg/aliases/bruceb HTTP/1.1
Subscription-Lifetime: 14400
Notification-Type: pragma/notify
Call-Back: http://198.176.154.132:1234
RVP-Notifications-Version: 1.0
Host: imhome1.acme.com
Content-Length: 0
Authorization: NTLM TlRMTVNTUAADABCDGAAYAF4AAAAYABgAdgAAAAAAAABABCDDgAOAEAAAAAQABAATgAAAAAAAACOAAAABYKAgHIAbwBiAGUAcgB0AG8AUgBPAEIARQBS";

#[test]
fn section_6_3_authentication_challenge() {
    check_login_subscribe(&request(&wire(LOGIN_SUBSCRIBE, "")));
    let challenge = response(&wire(CHALLENGE, ""));
    assert_eq!(challenge.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.reason, "Access Denied");
    let schemes: Vec<&str> = challenge
        .headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(schemes.len(), 3);
    assert_eq!(schemes[..2], ["Negotiate", "NTLM"]);
    assert!(schemes[2].starts_with("Digest qop=\"auth\", realm=\"im.acme.com\", nonce="));
    assert_eq!(challenge.headers[CONTENT_TYPE], "text/html");
    assert!(challenge.body.is_empty());
    assert_version(&challenge.headers);

    let retry = request(&wire(AUTHORIZED_SUBSCRIBE, ""));
    assert_eq!(retry.method, Method::Subscribe);
    assert!(
        retry.headers[AUTHORIZATION]
            .to_str()
            .unwrap()
            .starts_with("NTLM TlRMTVNTUAAD")
    );
    assert_eq!(retry.header::<FromPrincipal>(), Ok(None));
    check_login_subscribe_ok(&response(&wire(LOGIN_SUBSCRIBE_OK, "")));
}

#[test]
fn section_6_3_on_one_connection() {
    // Both requests on one connection, and both responses on the other direction.
    let mut requests = RequestDecoder::default();
    requests.feed(&wire(LOGIN_SUBSCRIBE, ""));
    requests.feed(&wire(AUTHORIZED_SUBSCRIBE, ""));
    let first = requests.next_request().unwrap().unwrap();
    let second = requests.next_request().unwrap().unwrap();
    assert_eq!(requests.next_request(), Ok(None));
    assert!(first.headers.get(AUTHORIZATION).is_none());
    assert!(second.headers.get(AUTHORIZATION).is_some());

    let mut responses = ResponseDecoder::default();
    responses.feed(&wire(CHALLENGE, ""));
    responses.feed(&wire(LOGIN_SUBSCRIBE_OK, ""));
    assert_eq!(
        responses.next_response().unwrap().unwrap().status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        responses.next_response().unwrap().unwrap().status,
        StatusCode::OK
    );
    assert_eq!(responses.next_response(), Ok(None));
}

#[test]
fn section_5_8_other_methods() {
    for (method, status) in [
        ("GET", StatusCode::NOT_IMPLEMENTED),
        ("HEAD", StatusCode::NOT_IMPLEMENTED),
        ("POST", StatusCode::NOT_IMPLEMENTED),
        ("PUT", StatusCode::NOT_IMPLEMENTED),
        ("LOCK", StatusCode::NOT_IMPLEMENTED),
        ("UNLOCK", StatusCode::NOT_IMPLEMENTED),
        ("OPTIONS", StatusCode::NOT_IMPLEMENTED),
        ("COPY", StatusCode::METHOD_NOT_ALLOWED),
        ("MOVE", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let request = request(&wire(
            &format!("{method} /instmsg/aliases/bruceb HTTP/1.1"),
            "",
        ));
        assert_eq!(request.method.rejection(), Some(status), "{method}");
        let answer = Response::new(status);
        assert_eq!(
            answer.reason,
            status.canonical_reason().unwrap(),
            "{method}"
        );
    }
}

#[test]
fn building_the_examples_gives_what_they_show() {
    // A client driver builds §5.6.1's instant message; the server reads it back.
    let payload = Payload::Text(InstantMessage {
        charset: Some("UTF-8".into()),
        session_id: Some("{79FC61B5-1234-1234-8A10-941F33CA4C90}".into()),
        format: Some("FN=Microsoft%20Sans%20Serif; EF=; CO=0; CS=0; PF=22".into()),
        text: "Let’s have lunch".into(),
    });
    let from = Contact::new(&url(STEVEM), "Steve Morgan");
    let to = Contact::new(
        &NodeUrl::from_address("BruceB@acmewidgets.com", "im.acmewidgets.com", None).unwrap(),
        "bruce",
    );
    let notification = Notification::Message(Message::new(from, vec![to], &payload));
    let target = NodeUrl::principal("im.acmewidgets.com", None, "bruceb").unwrap();
    let built = Request::new(Method::Notify, target.target_uri().unwrap())
        .with_header(HOST, HeaderValue::from_str(&target.authority()).unwrap())
        .with(AckType::DeepOr)
        .with(HopCount::new(1).unwrap())
        .with(FromPrincipal::Node(url(STEVEM)))
        .with_xml(notification.to_xml());
    let decoded = request(&built.to_bytes());
    assert_eq!(
        decoded.header(),
        Ok(Some(NotificationsVersion::V0_2)),
        "0.2 is what this crate sends"
    );
    let Notification::Message(message) = Notification::parse(&decoded.body).unwrap() else {
        panic!("not a message");
    };
    // XML hands CDATA over with LF line ends; the payload reads the same.
    assert_eq!(message.payload().unwrap(), payload);
    assert_eq!(
        message.to[0].href,
        "http://im.acmewidgets.com/instmsg/aliases/bruceb"
    );
}
