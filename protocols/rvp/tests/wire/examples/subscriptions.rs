//! RVP §5.1 to §5.3: SUBSCRIBE (login and property subscriptions), UNSUBSCRIBE,
//! SUBSCRIPTIONS.

use http::StatusCode;
use http::header::{CONTENT_TYPE, HOST};
use imfed_rvp::headers::{CallBack, NotificationType, SubscriptionId, SubscriptionLifetime};
use imfed_rvp::xml::{
    MultiStatus, Presence, PropStat, Property, State, StatusLine, StatusResponse, Subscription,
    Subscriptions,
};
use imfed_rvp::{Method, XmlError};

use super::{
    BRUCEB_ACME, LOGIN_SUBSCRIBE, LOGIN_SUBSCRIBE_OK, STEVEM, assert_version,
    check_login_subscribe, check_login_subscribe_ok, id, principal, request, response, url, wire,
};

#[test]
fn section_5_1_7_1_login_subscription() {
    check_login_subscribe(&request(&wire(LOGIN_SUBSCRIBE, "")));
    check_login_subscribe_ok(&response(&wire(LOGIN_SUBSCRIBE_OK, "")));
}

const PROPERTY_SUBSCRIBE: &str = "\
SUBSCRIBE http://im.example.com/instmsg/aliases/stevem HTTP/1.1
Subscription-Lifetime: 14400
Notification-Type: update/propchange
Call-Back: http://im.acme.com/instmsg/aliases/bruceb
RVP-Notifications-Version: 1.0
Host: im.example.com
Content-Length: 0
RVP-From-Principal: http://im.acme.com/instmsg/aliases/bruceb";

const PROPERTY_SUBSCRIBE_207: &str = "\
HTTP/1.1 207 Multi-Status
Subscription-Id: 79
Subscription-Lifetime: 14400
Content-Type: text/xml
Content-Length: XXXX
RVP-Notifications-Version: 1.0";

/// As printed, including `<?xml.version="1.0"?>` and `HTTP/1.1.200.Successful`, which
/// are read leniently.
const PROPERTY_SUBSCRIBE_207_BODY: &str = r#"<?xml.version="1.0"?>
<d:multistatus xmlns:d="DAV:"
xmlns:r="http://schemas.microsoft.com/rvp/">
     <d:response>
          <d:href>
                  http://im.example.com/instmsg/aliases/stevem
          </d:href>
          <d:propstat>
                  <d:prop>
                          <r:state><r:offline/></r:state>
                          <d:displayname>Steve</d:displayname>
                          <r:email>stevem@example.com</r:email>
                          <r:mobile-state>0</r:mobile-state>
                          <r:mobile-description>
                          </r:mobile-description>
                  </d:prop>
                  <d:status>HTTP/1.1.200.Successful</d:status>
          </d:propstat>
     </d:response>
</d:multistatus>"#;

#[test]
fn section_5_1_7_2_property_subscription() {
    let request = request(&wire(PROPERTY_SUBSCRIBE, ""));
    assert_eq!(request.method, Method::Subscribe);
    assert_eq!(request.target.to_string(), STEVEM);
    assert_eq!(request.header(), Ok(Some(NotificationType::PropChange)));
    assert_eq!(request.header(), Ok(Some(CallBack(url(BRUCEB_ACME)))));
    assert_eq!(request.header(), Ok(principal(BRUCEB_ACME)));
    assert_version(&request.headers);

    let response = response(&wire(PROPERTY_SUBSCRIBE_207, PROPERTY_SUBSCRIBE_207_BODY));
    assert_eq!(response.status, StatusCode::MULTI_STATUS);
    assert_eq!(response.reason, "Multi-Status");
    assert_eq!(response.header(), Ok(id("79")));
    assert_eq!(response.header(), Ok(Some(SubscriptionLifetime(14400))));
    assert_eq!(response.headers[CONTENT_TYPE], "text/xml");
    assert_version(&response.headers);
    assert_eq!(
        MultiStatus::parse(&response.body).unwrap(),
        MultiStatus {
            responses: vec![StatusResponse {
                href: STEVEM.into(),
                propstats: vec![PropStat {
                    props: vec![
                        Property::State(State::plain(Presence::Offline)),
                        Property::DisplayName("Steve".into()),
                        Property::Email("stevem@example.com".into()),
                        Property::MobileState(false),
                        Property::MobileDescription(String::new()),
                    ],
                    status: StatusLine {
                        code: StatusCode::OK,
                        reason: "Successful".into()
                    },
                }],
                status: None,
            }],
        }
    );
}

#[test]
fn section_5_2_1_unsubscribe() {
    let request = request(&wire(
        "\
UNSUBSCRIBE /stock/companyA HTTP/1.1
Host: im.stockquotes.com
RVP-Notifications-Version: 1.0
RVP-From-Principal: http://im.acme.com/instmsg/aliases/bruceb
Subscription-Id: 1234
Content-Length: 0",
        "",
    ));
    assert_eq!(request.method, Method::Unsubscribe);
    assert_eq!(request.target, "/stock/companyA");
    assert_eq!(request.headers[HOST], "im.stockquotes.com");
    assert_eq!(request.header(), Ok(id("1234")));
    assert_eq!(request.header(), Ok(principal(BRUCEB_ACME)));
    assert_version(&request.headers);

    let response = response(&wire(
        "HTTP/1.1 200 Successful\nRVP-Notifications-Version: 1.0",
        "",
    ));
    assert_eq!(response.status, StatusCode::OK);
    assert_version(&response.headers);
}

/// As printed: unquoted `xmlns` values, the ACL namespace as
/// `http://schemas.Microsoft.com/rvp/acl`, URLs wrapped inside `rvp-principal`, and the
/// second `rvp-principal` "closed" by another start tag.
const SUBSCRIPTIONS_BODY: &str = r#"<?xml version="1.0"?>
<Z:subscriptions xmlns:D="DAV:"
xmlns:Z=http://schemas.microsoft.com/rvp/
xmlns:A=http://schemas.Microsoft.com/rvp/acl>
     <Z:subscription>
             <Z:subscription-id> 456 </Z:subscription-id>
             <D:href>
                     http://im.example.com/instmsg/aliases/bruceb
             </D:href>
             <A:principal>
                     <A:rvp-principal>
                             http://im.example.com/instmsg/aliase
                     s/bruceb
                     </A:rvp-principal>
             </A:principal>
             <D:timeout> 4789 </D:timeout>
     </Z:subscription>
     <Z:subscription>
             <D:href>
                  http://im.example.com/instmsg/aliases/stevem
             </D:href>
             <Z:subscription-id> 6656 </Z:subscription-id>
             <A:principal>
                     <A:rvp-principal>
                             http://im.example.com/instmsg/aliase
                     s/stevem
                     <A:rvp-principal>
             </A:principal>
             <D:timeout> 8752 </D:timeout>
     </Z:subscription>
</Z:subscriptions>"#;

#[test]
fn section_5_3_1_subscriptions() {
    let request = request(&wire(
        "\
SUBSCRIPTIONS /lists/sales-event HTTP/1.1
Host: im.example.com
RVP-Notifications-Version: 1.0
Notification-Type: update/propchange
RVP-From-Principal: http://im.acme.com/instmsg/aliases/bruceb",
        "",
    ));
    assert_eq!(request.method, Method::Subscriptions);
    assert_eq!(request.target, "/lists/sales-event");
    assert_eq!(request.header(), Ok(Some(NotificationType::PropChange)));
    assert_eq!(request.header(), Ok(principal(BRUCEB_ACME)));
    // No Content-Length: a request without framing has no body.
    assert!(request.body.is_empty());

    let head = "\
HTTP/1.1 200 Successful
RVP-Notifications-Version: 1.0
Content-Type: text/xml
Content-Length: XXXX";
    let printed = response(&wire(head, SUBSCRIPTIONS_BODY));
    // quick-xml drops the unquoted declaration, so the first use of `Z:` is unbound.
    assert!(matches!(
        Subscriptions::parse(&printed.body),
        Err(XmlError::UnboundPrefix { ref prefix, .. }) if prefix == "Z"
    ));
    // Erratum 1: quote the namespace declarations.
    let quoted = SUBSCRIPTIONS_BODY
        .replace(
            "xmlns:Z=http://schemas.microsoft.com/rvp/",
            "xmlns:Z=\"http://schemas.microsoft.com/rvp/\"",
        )
        .replace(
            "xmlns:A=http://schemas.Microsoft.com/rvp/acl>",
            "xmlns:A=\"http://schemas.Microsoft.com/rvp/acl\">",
        );
    assert!(matches!(
        Subscriptions::parse(quoted.as_bytes()),
        Err(XmlError::MismatchedEndTag { ref expected, ref found, .. })
            if expected == "A:rvp-principal" && found == "A:principal"
    ));
    // Erratum 2: close the second rvp-principal.
    let fixed = quoted.replace(
        "s/stevem\n                     <A:rvp-principal>",
        "s/stevem\n                     </A:rvp-principal>",
    );
    let response = response(&wire(head, &fixed));
    assert_version(&response.headers);
    let entry = |number: &str, user: &str, timeout| Subscription {
        id: SubscriptionId::new(number).unwrap(),
        href: Some(format!("http://im.example.com/instmsg/aliases/{user}")),
        principal: Some(format!("http://im.example.com/instmsg/aliases/{user}")),
        timeout: Some(timeout),
    };
    assert_eq!(
        Subscriptions::parse(&response.body).unwrap(),
        Subscriptions {
            subscriptions: vec![entry("456", "bruceb", 4789), entry("6656", "stevem", 8752)]
        }
    );
}
