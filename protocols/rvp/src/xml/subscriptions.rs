//! RVP §5.3: the `subscriptions` body answering SUBSCRIPTIONS: the active subscriptions
//! on a node, each with its id, subscriber and remaining time.

use super::{Element, XmlError, empty, expect, number, required, text_element, trimmed, url_text};
use crate::headers::SubscriptionId;
use crate::ns::Ns;

/// Where §5.3 and §9 disagree, both namespaces are read; the first is written.
const SUBSCRIPTION_NS: &[Ns] = &[Ns::Rvp, Ns::Dav];
const PRINCIPAL_NS: &[Ns] = &[Ns::Acl, Ns::Rvp];
const TIMEOUT_NS: &[Ns] = &[Ns::Dav, Ns::Rvp];

/// One `subscription`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// `subscription-id` (trimmed).
    pub id: SubscriptionId,
    /// `d:href`: the subscriber's URL "if available" (whitespace removed).
    pub href: Option<String>,
    /// `principal/rvp-principal`: the subscribing principal (whitespace removed).
    pub principal: Option<String>,
    /// `timeout`: the seconds the subscription has left.
    pub timeout: Option<u64>,
}

/// `r:subscriptions` (§5.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions {
    /// The subscriptions, in document order.
    pub subscriptions: Vec<Subscription>,
}

impl Subscriptions {
    /// Parses a body whose root is `subscriptions`.
    ///
    /// # Errors
    /// Any [`XmlError`]; [`XmlError::UnexpectedRoot`] for another root.
    pub fn parse(bytes: &[u8]) -> Result<Subscriptions, XmlError> {
        Subscriptions::from_element(&Element::parse(bytes)?)
    }

    /// Reads a `subscriptions` element (RVP or DAV namespace).
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for another element, [`XmlError::Missing`] for a
    /// subscription without id, [`XmlError::InvalidValue`] for a bad id, URL or timeout.
    pub fn from_element(element: &Element) -> Result<Subscriptions, XmlError> {
        expect(
            element,
            SUBSCRIPTION_NS,
            "subscriptions",
            "RVP subscriptions",
        )?;
        let mut subscriptions = Vec::new();
        for entry in element
            .elements()
            .filter(|el| el.is_any(SUBSCRIPTION_NS, "subscription"))
        {
            let id_text = trimmed(required(
                entry,
                SUBSCRIPTION_NS,
                "subscription-id",
                "subscription",
            )?);
            let id = SubscriptionId::new(id_text.clone()).map_err(|_| XmlError::InvalidValue {
                element: "subscription-id",
                text: id_text,
            })?;
            let href = entry
                .child(&[Ns::Dav], "href")
                .map(|href| url_text(href, "href"))
                .transpose()?;
            let principal = entry
                .child(PRINCIPAL_NS, "principal")
                .map(|principal| {
                    url_text(
                        required(principal, PRINCIPAL_NS, "rvp-principal", "principal")?,
                        "rvp-principal",
                    )
                })
                .transpose()?;
            let timeout = entry
                .child(TIMEOUT_NS, "timeout")
                .map(|timeout| number(timeout, "timeout"))
                .transpose()?;
            subscriptions.push(Subscription {
                id,
                href,
                principal,
                timeout,
            });
        }
        Ok(Subscriptions { subscriptions })
    }

    /// The `r:subscriptions` element (principals in the ACL namespace, as §5.3.1 writes
    /// them).
    pub fn to_element(&self) -> Element {
        let mut root = empty(Ns::Rvp, "subscriptions");
        for subscription in &self.subscriptions {
            let mut entry = empty(Ns::Rvp, "subscription").with_child(text_element(
                Ns::Rvp,
                "subscription-id",
                subscription.id.as_str(),
            ));
            if let Some(href) = &subscription.href {
                entry = entry.with_child(text_element(Ns::Dav, "href", href));
            }
            if let Some(principal) = &subscription.principal {
                entry = entry.with_child(empty(Ns::Acl, "principal").with_child(text_element(
                    Ns::Acl,
                    "rvp-principal",
                    principal,
                )));
            }
            if let Some(timeout) = subscription.timeout {
                entry = entry.with_child(text_element(Ns::Dav, "timeout", &timeout.to_string()));
            }
            root = root.with_child(entry);
        }
        root
    }

    /// The document as bytes.
    pub fn to_xml(&self) -> Vec<u8> {
        self.to_element().to_document()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let subscriptions = Subscriptions {
            subscriptions: vec![
                Subscription {
                    id: SubscriptionId::new("456").unwrap(),
                    href: Some("http://im.example.com/instmsg/aliases/bruceb".into()),
                    principal: Some("http://im.example.com/instmsg/aliases/bruceb".into()),
                    timeout: Some(4789),
                },
                Subscription {
                    id: SubscriptionId::new("9A504").unwrap(),
                    href: None,
                    principal: None,
                    timeout: None,
                },
            ],
        };
        assert_eq!(
            Subscriptions::parse(&subscriptions.to_xml()).unwrap(),
            subscriptions
        );
        assert_eq!(
            Subscriptions::parse(&Subscriptions::default().to_xml()).unwrap(),
            Subscriptions::default()
        );
    }

    #[test]
    fn dav_namespace_variant() {
        let body = b"<D:subscriptions xmlns:D='DAV:'><D:subscription>\
            <D:subscription-id>7</D:subscription-id><D:timeout>10</D:timeout>\
            </D:subscription></D:subscriptions>";
        let parsed = Subscriptions::parse(body).unwrap();
        assert_eq!(parsed.subscriptions[0].id.as_str(), "7");
        assert_eq!(parsed.subscriptions[0].timeout, Some(10));
    }

    #[test]
    fn errors() {
        let missing = b"<r:subscriptions xmlns:r='http://schemas.microsoft.com/rvp/'>\
            <r:subscription/></r:subscriptions>";
        assert_eq!(
            Subscriptions::parse(missing),
            Err(XmlError::Missing {
                parent: "subscription",
                child: "subscription-id"
            })
        );
        let bad_id = b"<r:subscriptions xmlns:r='http://schemas.microsoft.com/rvp/'>\
            <r:subscription><r:subscription-id>4 5</r:subscription-id></r:subscription></r:subscriptions>";
        assert_eq!(
            Subscriptions::parse(bad_id),
            Err(XmlError::InvalidValue {
                element: "subscription-id",
                text: "4 5".into()
            })
        );
        let no_principal = b"<r:subscriptions xmlns:r='http://schemas.microsoft.com/rvp/'>\
            <r:subscription><r:subscription-id>4</r:subscription-id><r:principal/></r:subscription></r:subscriptions>";
        assert_eq!(
            Subscriptions::parse(no_principal),
            Err(XmlError::Missing {
                parent: "principal",
                child: "rvp-principal"
            })
        );
    }
}
