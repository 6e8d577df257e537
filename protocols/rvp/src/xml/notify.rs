//! RVP §5.6 and §9.1.18–§9.1.26: the `notification` body of NOTIFY: an instant message
//! (`message`) or a property change (`propnotification`).

use super::dav::{PropStat, PropertyUpdate, StatusLine};
use super::props::Property;
use super::{Element, Node, XmlError, empty, expect, required, text_element, trimmed, url_text};
use crate::mime::{MimeError, Payload};
use crate::ns::Ns;
use crate::url::{NodeUrl, UrlError};

/// A `contact` (§9.1.24): how to reach a principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// `d:href`: the principal's URL (whitespace removed).
    pub href: String,
    /// `r:description` (trimmed; empty when absent or empty, as in `<Z:description/>`).
    pub description: String,
}

impl Contact {
    /// A contact for `url` with a description.
    pub fn new(url: &NodeUrl, description: &str) -> Contact {
        Contact {
            href: url.to_string(),
            description: description.to_string(),
        }
    }

    /// The href as a node URL.
    ///
    /// # Errors
    /// [`UrlError`] if it is not one.
    pub fn url(&self) -> Result<NodeUrl, UrlError> {
        NodeUrl::parse(&self.href)
    }

    /// Reads the `contact` inside a `notification-from` or `notification-to`.
    fn from_holder(holder: &Element, holder_name: &'static str) -> Result<Contact, XmlError> {
        let contact = required(holder, &[Ns::Rvp], "contact", holder_name)?;
        let href = url_text(required(contact, &[Ns::Dav], "href", "contact")?, "href")?;
        let description = contact
            .child(&[Ns::Rvp], "description")
            .map(trimmed)
            .unwrap_or_default();
        Ok(Contact { href, description })
    }

    fn holder(&self, holder_name: &str) -> Element {
        empty(Ns::Rvp, holder_name).with_child(
            empty(Ns::Rvp, "contact")
                .with_child(text_element(Ns::Dav, "href", &self.href))
                .with_child(text_element(Ns::Rvp, "description", &self.description)),
        )
    }
}

/// A `message` (§9.1.20): an instant message from one principal to any number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `notification-from`.
    pub from: Contact,
    /// `notification-to*`.
    pub to: Vec<Contact>,
    /// The text of `msgbody/mime-data`: the MIME payload (§10). When the element holds
    /// CDATA, whitespace outside the CDATA sections is not part of it.
    pub mime_data: String,
}

impl Message {
    /// A message carrying `payload`.
    pub fn new(from: Contact, to: Vec<Contact>, payload: &Payload) -> Message {
        Message {
            from,
            to,
            mime_data: payload.to_text(),
        }
    }

    /// The MIME payload, classified.
    ///
    /// # Errors
    /// [`MimeError`] if `mime_data` is not a MIME payload.
    pub fn payload(&self) -> Result<Payload, MimeError> {
        Payload::parse(&self.mime_data)
    }

    fn from_element(element: &Element) -> Result<Message, XmlError> {
        let from = Contact::from_holder(
            required(element, &[Ns::Rvp], "notification-from", "message")?,
            "notification-from",
        )?;
        let to = element
            .elements()
            .filter(|el| el.is(Ns::Rvp, "notification-to"))
            .map(|holder| Contact::from_holder(holder, "notification-to"))
            .collect::<Result<_, _>>()?;
        let body = required(element, &[Ns::Rvp], "msgbody", "message")?;
        let mime = required(body, &[Ns::Rvp], "mime-data", "msgbody")?;
        Ok(Message {
            from,
            to,
            mime_data: mime_text(mime),
        })
    }

    fn to_element(&self) -> Element {
        let mut element =
            empty(Ns::Rvp, "message").with_child(self.from.holder("notification-from"));
        for to in &self.to {
            element = element.with_child(to.holder("notification-to"));
        }
        let mut mime = empty(Ns::Rvp, "mime-data");
        mime.children.push(Node::CData(self.mime_data.clone()));
        element.with_child(empty(Ns::Rvp, "msgbody").with_child(mime))
    }
}

/// The text of `mime-data`: from the first CDATA section to the last, or all the text if
/// there is none.
fn mime_text(element: &Element) -> String {
    let is_cdata = |node: &Node| matches!(node, Node::CData(_));
    let (Some(first), Some(last)) = (
        element.children.iter().position(is_cdata),
        element.children.iter().rposition(is_cdata),
    ) else {
        return element.text();
    };
    let mut out = String::new();
    for node in &element.children[first..=last] {
        if let Node::Text(text) | Node::CData(text) = node {
            out.push_str(text);
        }
    }
    out
}

/// What a property notification carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropChange {
    /// `d:propertyupdate`, as the DTD and §5.6.1 have it.
    Update(PropertyUpdate),
    /// `d:propstat` in its place (accepted by Miranda; written only if built so).
    PropStat {
        /// The properties.
        props: Vec<Property>,
        /// The status, if one was given.
        status: Option<StatusLine>,
    },
}

/// A `propnotification` (§9.1.19): a change of a principal's properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropNotification {
    /// `notification-from`: whose properties changed.
    pub from: Contact,
    /// `notification-to`: the watcher.
    pub to: Contact,
    /// The change.
    pub change: PropChange,
}

impl PropNotification {
    /// The changed properties, whichever form carried them.
    pub fn properties(&self) -> &[Property] {
        match &self.change {
            PropChange::Update(update) => &update.set,
            PropChange::PropStat { props, .. } => props,
        }
    }

    fn from_element(element: &Element) -> Result<PropNotification, XmlError> {
        let from = Contact::from_holder(
            required(element, &[Ns::Rvp], "notification-from", "propnotification")?,
            "notification-from",
        )?;
        let to = Contact::from_holder(
            required(element, &[Ns::Rvp], "notification-to", "propnotification")?,
            "notification-to",
        )?;
        let change = if let Some(update) = element.child(&[Ns::Dav], "propertyupdate") {
            PropChange::Update(PropertyUpdate::from_element(update)?)
        } else if let Some(propstat) = element.child(&[Ns::Dav], "propstat") {
            let (props, status) = PropStat::parts(propstat)?;
            PropChange::PropStat { props, status }
        } else {
            return Err(XmlError::Missing {
                parent: "propnotification",
                child: "propertyupdate",
            });
        };
        Ok(PropNotification { from, to, change })
    }

    fn to_element(&self) -> Element {
        let change = match &self.change {
            PropChange::Update(update) => update.to_element(),
            PropChange::PropStat { props, status } => PropStat::element(props, status.as_ref()),
        };
        empty(Ns::Rvp, "propnotification")
            .with_child(self.from.holder("notification-from"))
            .with_child(self.to.holder("notification-to"))
            .with_child(change)
    }
}

/// `r:notification` (§9.1.18), the body of NOTIFY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    /// An instant message.
    Message(Message),
    /// A property change.
    Property(PropNotification),
    /// Any other content (a notification sink accepts arbitrary notifications, like the
    /// package-tracking example of §5.6.1): the child elements, kept whole.
    Other(Vec<Element>),
}

impl Notification {
    /// Parses a body whose root is `r:notification`.
    ///
    /// # Errors
    /// Any [`XmlError`]; [`XmlError::UnexpectedRoot`] for another root (including
    /// `D:notification`, a typo of §5.6.1).
    pub fn parse(bytes: &[u8]) -> Result<Notification, XmlError> {
        Notification::from_element(&Element::parse(bytes)?)
    }

    /// Reads an `r:notification` element.
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for another element, [`XmlError::Missing`] for a
    /// message or propnotification without its required children.
    pub fn from_element(element: &Element) -> Result<Notification, XmlError> {
        expect(element, &[Ns::Rvp], "notification", "RVP notification")?;
        if let Some(message) = element.child(&[Ns::Rvp], "message") {
            return Message::from_element(message).map(Notification::Message);
        }
        if let Some(change) = element.child(&[Ns::Rvp], "propnotification") {
            return PropNotification::from_element(change).map(Notification::Property);
        }
        Ok(Notification::Other(element.elements().cloned().collect()))
    }

    /// The `r:notification` element.
    pub fn to_element(&self) -> Element {
        let root = empty(Ns::Rvp, "notification");
        match self {
            Notification::Message(message) => root.with_child(message.to_element()),
            Notification::Property(change) => root.with_child(change.to_element()),
            Notification::Other(children) => children
                .iter()
                .fold(root, |root, child| root.with_child(child.clone())),
        }
    }

    /// The document as bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        self.to_element().to_document()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Presence, State};

    fn contact(user: &str, description: &str) -> Contact {
        Contact {
            href: format!("http://im.example.com/instmsg/aliases/{user}"),
            description: description.into(),
        }
    }

    #[test]
    fn message_round_trip_with_awkward_mime_data() {
        let notification = Notification::Message(Message {
            from: contact("stevem", "Steve Morgan"),
            to: vec![contact("bruceb", "bruce"), contact("lisal", "")],
            mime_data: "MIME-Version: 1.0\r\n\r\na ]]> b & <c>\r\n".into(),
        });
        let bytes = notification.to_xml();
        assert_eq!(Notification::parse(&bytes).unwrap(), notification);
        for mime_data in ["\rabc\r", "", "\r", "]]>", "a]]"] {
            let notification = Notification::Message(Message {
                from: contact("stevem", ""),
                to: vec![],
                mime_data: mime_data.into(),
            });
            assert_eq!(
                Notification::parse(&notification.to_xml()).unwrap(),
                notification,
                "{mime_data:?}"
            );
        }
    }

    #[test]
    fn mime_data_without_cdata_is_its_text() {
        let body = br#"<r:notification xmlns:r="http://schemas.microsoft.com/rvp/" xmlns:d="DAV:"><r:message>
            <r:notification-from><r:contact><d:href>http://a/instmsg/aliases/x</d:href></r:contact></r:notification-from>
            <r:msgbody><r:mime-data>Content-Type: text/plain&#13;&#10;&#13;&#10;hi</r:mime-data></r:msgbody>
            </r:message></r:notification>"#;
        let Notification::Message(message) = Notification::parse(body).unwrap() else {
            panic!("not a message");
        };
        assert!(message.to.is_empty());
        assert_eq!(message.from.description, "");
        assert_eq!(message.mime_data, "Content-Type: text/plain\r\n\r\nhi");
        let Payload::Text(text) = message.payload().unwrap() else {
            panic!("not text");
        };
        assert_eq!(text.text, "hi");
    }

    #[test]
    fn propstat_in_place_of_propertyupdate() {
        let body = br#"<r:notification xmlns:r="http://schemas.microsoft.com/rvp/" xmlns:d="DAV:"><r:propnotification>
            <r:notification-from><r:contact><d:href>http://a/instmsg/aliases/x</d:href><r:description/></r:contact></r:notification-from>
            <r:notification-to><r:contact><d:href>http://b/instmsg/aliases/y</d:href><r:description/></r:contact></r:notification-to>
            <d:propstat><d:prop><r:state><r:busy/></r:state></d:prop></d:propstat>
            </r:propnotification></r:notification>"#;
        let Notification::Property(change) = Notification::parse(body).unwrap() else {
            panic!("not a property change");
        };
        assert_eq!(
            change.properties(),
            [Property::State(State::plain(Presence::Busy))]
        );
        assert!(matches!(
            change.change,
            PropChange::PropStat { status: None, .. }
        ));
        let again = Notification::parse(&Notification::Property(change.clone()).to_xml()).unwrap();
        assert_eq!(again, Notification::Property(change));
    }

    #[test]
    fn other_notifications_are_kept() {
        let body = b"<Z:notification xmlns:Z='http://schemas.microsoft.com/rvp/'>\
            <mEvent><eventType>DELIVER</eventType></mEvent></Z:notification>";
        let Notification::Other(children) = Notification::parse(body).unwrap() else {
            panic!("not other");
        };
        assert_eq!(children[0].name, "mEvent");
        let again = Notification::parse(&Notification::Other(children.clone()).to_xml()).unwrap();
        assert_eq!(again, Notification::Other(children));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Notification::parse(b"<D:notification xmlns:D='DAV:'/>"),
            Err(XmlError::UnexpectedRoot { .. })
        ));
        assert_eq!(
            Notification::parse(
                b"<r:notification xmlns:r='http://schemas.microsoft.com/rvp/'><r:message/></r:notification>"
            ),
            Err(XmlError::Missing {
                parent: "message",
                child: "notification-from"
            })
        );
        assert_eq!(
            Notification::parse(
                b"<r:notification xmlns:r='http://schemas.microsoft.com/rvp/' xmlns:d='DAV:'><r:message>\
                  <r:notification-from><r:contact><d:href> </d:href></r:contact></r:notification-from>\
                  </r:message></r:notification>"
            ),
            Err(XmlError::InvalidValue {
                element: "href",
                text: String::new()
            })
        );
        assert_eq!(
            Notification::parse(
                b"<r:notification xmlns:r='http://schemas.microsoft.com/rvp/' xmlns:d='DAV:'><r:propnotification>\
                  <r:notification-from><r:contact><d:href>x</d:href></r:contact></r:notification-from>\
                  <r:notification-to><r:contact><d:href>y</d:href></r:contact></r:notification-to>\
                  </r:propnotification></r:notification>"
            ),
            Err(XmlError::Missing {
                parent: "propnotification",
                child: "propertyupdate"
            })
        );
    }
}
