//! RVP §5.6: NOTIFY: an instant message, and a presence change sent by a server.

use http::StatusCode;
use http::header::HOST;
use imfed_rvp::headers::{AckType, FromPrincipal, HopCount};
use imfed_rvp::mime::{InstantMessage, Payload};
use imfed_rvp::xml::{
    Contact, Notification, Presence, PropChange, PropNotification, Property, PropertyUpdate, State,
};
use imfed_rvp::{Method, ServerName, XmlError};

use super::{STEVEM, assert_version, principal, request, response, wire};

/// As printed: root opened as `D:notification`, closed as `Z:notification`; the first
/// href opened as `D:href`, closed as `Z:href`; the MIME payload indented and wrapped.
const IM_BODY: &str = r#"<?xml version="1.0"?>
<D:notification xmlns:D="DAV:"
xmlns:Z="http://schemas.microsoft.com/rvp/">
     <Z:message>
             <Z:notification-from>
                     <Z:contact>
                             <D:href>
                             http://im.example.com/instms
g/aliases/stevem
                             </Z:href>
                             <Z:description>
                                     Steve Morgan
                             </Z:description>
                     </Z:contact>
             </Z:notification-from>
             <Z:notification-to>
                     <Z:contact>
                             <D:href>
                                     http://im.acmewidgets.com/in
stmsg/aliases/bruceb</D:href>
                             <Z:description>
                                     bruce
                             </Z:description>
                     </Z:contact>
             </Z:notification-to>
             <Z:msgbody>
                     <Z:mime-data>
                             <![CDATA[MIME-Version: 1.0
                             Content-Type: text/plain;
                             charset=UTF-8
                             X-MMS-IM-Format:
                             FN=Microsoft%20Sans%20Serif; EF=;
                             CO=0; CS=0; PF=22
                             Session-Id: {79FC61B5-1234-1234-
                             8A10-941F33CA4C90}

                             Let’s have lunch
                             ]]>
                     </Z:mime-data>
             </Z:msgbody>
     </Z:message>
</Z:notification>"#;

/// The MIME payload of §5.6.1 with the page layout undone: unindented, and the wrapped
/// header values joined (Content-Type and X-MMS-IM-Format as folded continuation lines,
/// which MIME allows; the Session-Id GUID, which cannot be folded, on one line).
const IM_MIME: &str = "MIME-Version: 1.0
Content-Type: text/plain;
 charset=UTF-8
X-MMS-IM-Format:
 FN=Microsoft%20Sans%20Serif; EF=;
 CO=0; CS=0; PF=22
Session-Id: {79FC61B5-1234-1234-8A10-941F33CA4C90}

Let’s have lunch
";

#[test]
fn section_5_6_1_instant_message() {
    let head = "\
NOTIFY /instmsg/aliases/bruceb HTTP/1.1
Host: im.acmewidgets.com
RVP-Notifications-Version: 1.0
RVP-Ack-Type: DeepOr
RVP-Hop-Count: 1
RVP-From-Principal: http://im.example.com/instmsg/aliases/stevem
Content-Type: text/xml
Content-length: XXXX";
    let printed = request(&wire(head, IM_BODY));
    assert!(matches!(
        Notification::parse(&printed.body),
        Err(XmlError::MismatchedEndTag { ref expected, ref found, .. })
            if expected == "D:href" && found == "Z:href"
    ));
    let href_fixed = IM_BODY.replace("</Z:href>", "</D:href>");
    assert!(matches!(
        Notification::parse(href_fixed.as_bytes()),
        Err(XmlError::MismatchedEndTag { ref expected, ref found, .. })
            if expected == "D:notification" && found == "Z:notification"
    ));
    // `notification` is an RVP element (§9.1.18): a DAV root is not guessed at.
    let dav_root = href_fixed.replace("</Z:notification>", "</D:notification>");
    assert!(matches!(
        Notification::parse(dav_root.as_bytes()),
        Err(XmlError::UnexpectedRoot { .. })
    ));
    // The fixes of the notes: `Z:notification` and `D:href` at both ends, and the
    // payload's page layout undone.
    let start = href_fixed.find("<![CDATA[").unwrap() + "<![CDATA[".len();
    let end = href_fixed.find("]]>").unwrap();
    let fixed = format!("{}{IM_MIME}{}", &href_fixed[..start], &href_fixed[end..])
        .replace("<D:notification", "<Z:notification");

    let request = request(&wire(head, &fixed));
    assert_eq!(request.method, Method::Notify);
    assert_eq!(request.target, "/instmsg/aliases/bruceb");
    assert_eq!(request.headers[HOST], "im.acmewidgets.com");
    assert_eq!(request.header(), Ok(Some(AckType::DeepOr)));
    assert_eq!(request.header(), Ok(HopCount::new(1)));
    assert_eq!(request.header(), Ok(principal(STEVEM)));
    assert_version(&request.headers);
    let Notification::Message(message) = Notification::parse(&request.body).unwrap() else {
        panic!("not a message");
    };
    assert_eq!(
        message.from,
        Contact {
            href: STEVEM.into(),
            description: "Steve Morgan".into()
        }
    );
    assert_eq!(
        message.to,
        vec![Contact {
            href: "http://im.acmewidgets.com/instmsg/aliases/bruceb".into(),
            description: "bruce".into()
        }]
    );
    assert_eq!(
        message.payload().unwrap(),
        Payload::Text(InstantMessage {
            charset: Some("UTF-8".into()),
            session_id: Some("{79FC61B5-1234-1234-8A10-941F33CA4C90}".into()),
            format: Some("FN=Microsoft%20Sans%20Serif; EF=; CO=0; CS=0; PF=22".into()),
            text: "Let’s have lunch\n".into(),
        })
    );
    assert_eq!(message.from.url().unwrap().alias(), Some("stevem"));

    let response = response(&wire(
        "HTTP/1.1 200 Successful\nRVP-Notifications-Version: 1.0",
        "",
    ));
    assert_eq!(response.status, StatusCode::OK);
}

#[test]
fn section_5_6_1_printed_payload_indentation_folds_into_one_header() {
    // Read as printed (after the XML fixes), every indented line continues MIME-Version:
    // the payload "parses" but carries none of its headers. A sender must not indent.
    let start = IM_BODY.find("<![CDATA[").unwrap() + "<![CDATA[".len();
    let end = IM_BODY.find("]]>").unwrap();
    let mime = imfed_rvp::MimePayload::parse(&IM_BODY[start..end]).unwrap();
    assert_eq!(mime.headers.len(), 1);
    assert_eq!(mime.headers[0].0, "MIME-Version");
    assert_eq!(mime.header("Content-Type"), None);
}

#[test]
fn section_5_6_1_presence_notify_from_a_server() {
    let request = request(&wire(
        "\
NOTIFY / HTTP/1.1
RVP-Hop-Count: 2
RVP-Notifications-Version: 1.0
Host: 128.1.1.11
Content-Length: XXXX
Content-Type: text/xml
RVP-From-Principal: im.example.com",
        r#"<?xml version="1.0"?>
<Z:notification xmlns:D="DAV:"
xmlns:Z="http://schemas.microsoft.com/rvp/">
     <Z:propnotification>
             <Z:notification-from>
                     <Z:contact>
                             <D:href>
                                  http://im.example.com/instmsg/a
liases/stevem
                             </D:href>
                             <Z:description/>
                     </Z:contact>
             </Z:notification-from>
             <Z:notification-to>
                     <Z:contact>
                             <D:href>
                                  http://im.acmewidgets.com/instm
sg/aliases/bruceb
                             </D:href>
                             <Z:description/>
                     </Z:contact>
             </Z:notification-to>
             <D:propertyupdate>
                     <D:set>
                             <D:prop>
                                     <Z:state>
                                             <Z:online/>
                                     </Z:state>
                             </D:prop>
                     </D:set>
             </D:propertyupdate>
     </Z:propnotification>
</Z:notification>"#,
    ));
    assert_eq!(request.method, Method::Notify);
    assert_eq!(request.target, "/");
    assert_eq!(request.headers[HOST], "128.1.1.11");
    assert_eq!(request.header(), Ok(HopCount::new(2)));
    assert_eq!(
        request.header(),
        Ok(Some(FromPrincipal::Server(
            ServerName::new("im.example.com").unwrap()
        )))
    );
    assert_version(&request.headers);
    assert_eq!(
        Notification::parse(&request.body).unwrap(),
        Notification::Property(PropNotification {
            from: Contact {
                href: STEVEM.into(),
                description: String::new()
            },
            to: Contact {
                href: "http://im.acmewidgets.com/instmsg/aliases/bruceb".into(),
                description: String::new()
            },
            change: PropChange::Update(PropertyUpdate::set(vec![Property::State(State::plain(
                Presence::Online
            ))])),
        })
    );

    let response = response(&wire(
        "HTTP/1.1 200 Successful\nRVP-Notifications-Version: 1.0",
        "",
    ));
    assert_eq!(response.reason, "Successful");
}
