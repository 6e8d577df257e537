//! RVP §5.4 and §5.5: PROPFIND and PROPPATCH.

use http::StatusCode;
use imfed_rvp::headers::Depth;
use imfed_rvp::xml::{
    MultiStatus, Presence, PropFind, PropName, PropStat, Property, PropertyUpdate, State,
    StatusLine,
};
use imfed_rvp::{Method, XmlError};

use super::{STEVEM, assert_version, principal, request, response, wire};

#[test]
fn section_5_4_1_propfind() {
    let request = request(&wire(
        "\
PROPFIND /instmsg/aliases/stevem  HTTP/1.1
Host: im.example.com
RVP-Notifications-Version: 1.0
RVP-From-Principal: http://im.example.com/instmsg/aliases/stevem
Depth: 0
Content-type: text/xml
Content-Length: XXXX",
        r#"<?xml version="1.0" ?>
<D:propfind xmlns:D="DAV:"
xmlns:Z="http://schemas.microsoft.com/rvp/">
     <D:prop>
             <D:displayname/>
     </D:prop>
</D:propfind>"#,
    ));
    assert_eq!(request.method, Method::Propfind);
    assert_eq!(request.target, "/instmsg/aliases/stevem");
    assert_eq!(request.header(), Ok(Some(Depth::Zero)));
    assert_eq!(request.header(), Ok(principal(STEVEM)));
    assert_version(&request.headers);
    assert_eq!(
        PropFind::parse(&request.body).unwrap(),
        PropFind::Prop(vec![PropName::DisplayName])
    );

    let response = response(&wire(
        "\
HTTP/1.1 207 Multi-Status
Content-Type: text/xml
Content-Length: XXXX
RVP-Notifications-Version: 1.0",
        r#"<?xml version="1.0" ?>
<D:multistatus xmlns:D="DAV:"
xmlns:Z="http://schemas.microsoft.com/rvp/">
     <D:response>
             <D:href>
                     http://im.example.com/instmsg/aliases/stevem
             </D:href>
             <D:propstat>
                     <D:prop>
                             <D:displayname>
                                     Steve Morgan
                             </D:displayname>
                     </D:prop>
                     <D:status>HTTP/1.1 200 OK</D:status>
             </D:propstat>
     </D:response>
</D:multistatus>"#,
    ));
    assert_eq!(response.status, StatusCode::MULTI_STATUS);
    let multistatus = MultiStatus::parse(&response.body).unwrap();
    assert_eq!(multistatus.responses.len(), 1);
    assert_eq!(multistatus.responses[0].href, STEVEM);
    assert_eq!(
        multistatus.responses[0].propstats,
        vec![PropStat {
            props: vec![Property::DisplayName("Steve Morgan".into())],
            status: StatusLine {
                code: StatusCode::OK,
                reason: "OK".into()
            },
        }]
    );
}

/// As printed: opens `D:propupdate`, closes `D:propertyupdate`; `Z:timeout`.
const PROPPATCH_BODY: &str = r#"<?xml version="1.0"?>
<D:propupdate xmlns:D="DAV:"
xmlns:Z="http://schemas.microsoft.com/rvp/">
     <D:set>
             <D:prop>
                     <Z:state>
                             <Z:leased-value>
                                     <Z:value>
                                             <Z:online/>
                                     </Z:value>
                                     <Z:default-value>
                                             <Z:offline/>
                                     </Z:default-value>
                                     <Z:timeout>3600</Z:timeout>
                             </Z:leased-value>
                     </Z:state>
             </D:prop>
     </D:set>
</D:propertyupdate>"#;

#[test]
fn section_5_5_1_proppatch() {
    let head = "\
PROPPATCH /instmsg/aliases/stevem HTTP/1.1
Host: im.example.com
RVP-Notifications-Version: 1.0
RVP-From-Principal: http://im.example.com/instmsg/aliases/stevem
Content-Type: text/xml
Content-Length: XXXX";
    let printed = request(&wire(head, PROPPATCH_BODY));
    assert!(matches!(
        PropertyUpdate::parse(&printed.body),
        Err(XmlError::MismatchedEndTag { ref expected, ref found, .. })
            if expected == "D:propupdate" && found == "D:propertyupdate"
    ));
    // The fix the notes give (and Miranda sends): propertyupdate at both ends.
    let fixed = PROPPATCH_BODY.replace("<D:propupdate", "<D:propertyupdate");
    let request = request(&wire(head, &fixed));
    assert_eq!(request.method, Method::Proppatch);
    assert_eq!(request.header(), Ok(principal(STEVEM)));
    assert_version(&request.headers);
    assert_eq!(
        PropertyUpdate::parse(&request.body).unwrap(),
        PropertyUpdate::set(vec![Property::State(State::leased(
            Presence::Online,
            Presence::Offline,
            3600
        ))])
    );

    let response = response(&wire(
        "\
HTTP/1.1 207 Multi-Status
RVP-Notifications-Version: 1.0
Content-Type: text/xml
Content-Length: XXXX",
        r#"<?xml version="1.0"?>
<D:multistatus xmlns:D="DAV:"
xmlns:Z="http://schemas.microsoft.com/rvp/">
     <D:response>
             <D:href>
                     http://im.example.com/instmsg/aliases/stevem
             </D:href>
             <D:propstat>
                     <D:prop>
                             <Z:state>
                                     <Z:leased-value>
                                             <Z:value>
                                                     <Z:online/>
                                             </Z:value>
                                             <Z:default-value>
                                                     <Z:offline/>
                                             </Z:default-value>
                                             <D:timeout>
                                                     3600
                                             </D:timeout>
                                     </Z:leased-value>
                                     <Z:view-id>3577</Z:view-id>
                             </Z:state>
                     </D:prop>
                     <D:status>HTTP/1.1 200 OK</D:status>
             </D:propstat>
     </D:response>
</D:multistatus>"#,
    ));
    let multistatus = MultiStatus::parse(&response.body).unwrap();
    let mut state = State::leased(Presence::Online, Presence::Offline, 3600);
    state.view_id = Some("3577".into());
    assert_eq!(
        multistatus.responses[0].propstats[0].props,
        vec![Property::State(state)]
    );
    assert_eq!(
        multistatus.responses[0].propstats[0].status.code,
        StatusCode::OK
    );
}
