//! RVP §5.7: access control lists (`a:rvpacl`) in the namespace
//! `http://schemas.microsoft.com/rvp/acl/`: entries granting and denying rights to
//! principals presenting given credentials.

use std::fmt;

use super::{Element, XmlError, empty, expect, required, text_element, trimmed, url_text};
use crate::ns::Ns;

const ACL: &[Ns] = &[Ns::Acl];

/// An access right (§5.7.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Right {
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `readacl`.
    ReadAcl,
    /// `writeacl`.
    WriteAcl,
    /// `all`.
    All,
    /// `send-to`: may send NOTIFY to the node.
    SendTo,
    /// `presence`: may see presence information.
    Presence,
    /// `list`: may list properties.
    List,
    /// `receive-from`: may receive notifications and subscription notifications.
    ReceiveFrom,
    /// `subscriptions`: may read the list of subscriptions.
    Subscriptions,
    /// `subscribe-others`: may subscribe with an unrecognized callback.
    SubscribeOthers,
    /// Any other right, including the WebDAV ones RVP does not support (`writeowner`,
    /// `delete`, `createchild`, `deletechild`); to be written it must be an XML name.
    Other(String),
}

const RIGHT_NAMES: &[(Right, &str)] = &[
    (Right::Read, "read"),
    (Right::Write, "write"),
    (Right::ReadAcl, "readacl"),
    (Right::WriteAcl, "writeacl"),
    (Right::All, "all"),
    (Right::SendTo, "send-to"),
    (Right::Presence, "presence"),
    (Right::List, "list"),
    (Right::ReceiveFrom, "receive-from"),
    (Right::Subscriptions, "subscriptions"),
    (Right::SubscribeOthers, "subscribe-others"),
];

impl Right {
    /// The element's local name.
    pub fn as_str(&self) -> &str {
        match self {
            Right::Other(name) => name,
            known => RIGHT_NAMES
                .iter()
                .find(|(right, _)| right == known)
                .map_or("", |(_, name)| name),
        }
    }

    /// The right a local name stands for.
    pub fn from_name(name: &str) -> Right {
        RIGHT_NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map_or_else(
                || Right::Other(name.to_string()),
                |(right, _)| right.clone(),
            )
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credentials a principal must present (§5.7.2.1):
/// `(any | (ntlm?, digest?, assertion?, internal?))`, read in any order.
///
/// None at all (no `credentials` element, or an empty one) is kept: §5.7.2 has the server
/// reject such an ACL with "400 credentials not specified".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// `any`: any valid credentials.
    pub any: bool,
    /// `ntlm`: an NTLM challenge must be satisfied.
    pub ntlm: bool,
    /// `digest`: a Digest challenge must be satisfied.
    pub digest: bool,
    /// `assertion`: no proof; the asserted identity is trusted.
    pub assertion: bool,
    /// `internal`: an out-of-band mechanism of the presence service.
    pub internal: bool,
}

impl Credentials {
    /// Whether no credentials are named.
    pub fn is_empty(&self) -> bool {
        *self == Credentials::default()
    }

    fn flags(&self) -> [(bool, &'static str); 5] {
        [
            (self.any, "any"),
            (self.ntlm, "ntlm"),
            (self.digest, "digest"),
            (self.assertion, "assertion"),
            (self.internal, "internal"),
        ]
    }

    fn from_element(element: &Element) -> Credentials {
        let mut credentials = Credentials::default();
        for child in element.elements().filter(|el| el.space() == Ns::Acl) {
            match child.name.as_str() {
                "any" => credentials.any = true,
                "ntlm" => credentials.ntlm = true,
                "digest" => credentials.digest = true,
                "assertion" => credentials.assertion = true,
                "internal" => credentials.internal = true,
                _ => {}
            }
        }
        credentials
    }

    fn to_element(self) -> Element {
        self.flags()
            .into_iter()
            .filter(|(set, _)| *set)
            .fold(empty(Ns::Acl, "credentials"), |element, (_, name)| {
                element.with_child(empty(Ns::Acl, name))
            })
    }
}

/// Whom an entry applies to (§5.7.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AcePrincipal {
    /// `rvp-principal`: a principal URL or a server identifier (whitespace removed).
    Rvp(String),
    /// `allprincipals`: everyone.
    All,
}

/// An access control entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ace {
    /// Whom it applies to.
    pub principal: AcePrincipal,
    /// The credentials that principal must present.
    pub credentials: Credentials,
    /// Rights granted.
    pub grant: Vec<Right>,
    /// Rights denied.
    pub deny: Vec<Right>,
}

impl Ace {
    fn from_element(element: &Element) -> Result<Ace, XmlError> {
        let principal = required(element, ACL, "principal", "ace")?;
        let who = if let Some(url) = principal.child(ACL, "rvp-principal") {
            AcePrincipal::Rvp(url_text(url, "rvp-principal")?)
        } else if principal.child(ACL, "allprincipals").is_some() {
            AcePrincipal::All
        } else {
            return Err(XmlError::Missing {
                parent: "principal",
                child: "rvp-principal",
            });
        };
        let credentials = principal
            .child(ACL, "credentials")
            .map(Credentials::from_element)
            .unwrap_or_default();
        let rights = |name| {
            element
                .child(ACL, name)
                .map(|list| {
                    list.elements()
                        .filter(|el| el.space() == Ns::Acl)
                        .map(|el| Right::from_name(&el.name))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Ace {
            principal: who,
            credentials,
            grant: rights("grant"),
            deny: rights("deny"),
        })
    }

    fn to_element(&self) -> Element {
        let who = match &self.principal {
            AcePrincipal::Rvp(url) => text_element(Ns::Acl, "rvp-principal", url),
            AcePrincipal::All => empty(Ns::Acl, "allprincipals"),
        };
        let rights = |name, list: &[Right]| {
            list.iter().fold(empty(Ns::Acl, name), |element, right| {
                element.with_child(empty(Ns::Acl, right.as_str()))
            })
        };
        empty(Ns::Acl, "ace")
            .with_child(
                empty(Ns::Acl, "principal")
                    .with_child(who)
                    .with_child(self.credentials.to_element()),
            )
            .with_child(rights("grant", &self.grant))
            .with_child(rights("deny", &self.deny))
    }
}

/// An `acl`: inheritance and entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    /// `inheritance` (trimmed; `none` in §5.7.3).
    pub inheritance: Option<String>,
    /// The entries, in order.
    pub aces: Vec<Ace>,
}

/// `a:rvpacl` (§5.7.3): the body answering ACL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RvpAcl {
    /// The list.
    pub acl: Acl,
}

impl RvpAcl {
    /// Parses a body whose root is `a:rvpacl`.
    ///
    /// # Errors
    /// Any [`XmlError`]; [`XmlError::UnexpectedRoot`] for another root.
    pub fn parse(bytes: &[u8]) -> Result<RvpAcl, XmlError> {
        RvpAcl::from_element(&Element::parse(bytes)?)
    }

    /// Reads an `a:rvpacl` element.
    ///
    /// # Errors
    /// [`XmlError::UnexpectedRoot`] for another element, [`XmlError::Missing`] for a
    /// missing `acl`, `principal` or principal identity, [`XmlError::InvalidValue`] for
    /// an empty `rvp-principal` ("Null values are not permitted", §5.7.2).
    pub fn from_element(element: &Element) -> Result<RvpAcl, XmlError> {
        expect(element, ACL, "rvpacl", "RVP rvpacl")?;
        let acl = required(element, ACL, "acl", "rvpacl")?;
        Ok(RvpAcl {
            acl: Acl {
                inheritance: acl.child(ACL, "inheritance").map(trimmed),
                aces: acl
                    .elements()
                    .filter(|el| el.is(Ns::Acl, "ace"))
                    .map(Ace::from_element)
                    .collect::<Result<_, _>>()?,
            },
        })
    }

    /// The `a:rvpacl` element.
    pub fn to_element(&self) -> Element {
        let mut acl = empty(Ns::Acl, "acl");
        if let Some(inheritance) = &self.acl.inheritance {
            acl = acl.with_child(text_element(Ns::Acl, "inheritance", inheritance));
        }
        for ace in &self.acl.aces {
            acl = acl.with_child(ace.to_element());
        }
        empty(Ns::Acl, "rvpacl").with_child(acl)
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
    fn rights_by_name() {
        for (right, name) in RIGHT_NAMES {
            assert_eq!(right.as_str(), *name);
            assert_eq!(Right::from_name(name), *right);
        }
        assert_eq!(
            Right::from_name("writeowner"),
            Right::Other("writeowner".into())
        );
    }

    #[test]
    fn round_trip() {
        let acl = RvpAcl {
            acl: Acl {
                inheritance: Some("none".into()),
                aces: vec![
                    Ace {
                        principal: AcePrincipal::All,
                        credentials: Credentials {
                            any: true,
                            ..Credentials::default()
                        },
                        grant: vec![Right::Presence, Right::Other("x-right".into())],
                        deny: vec![],
                    },
                    Ace {
                        principal: AcePrincipal::Rvp("im.acme.com".into()),
                        credentials: Credentials::default(),
                        grant: vec![],
                        deny: vec![Right::SendTo],
                    },
                ],
            },
        };
        assert_eq!(RvpAcl::parse(&acl.to_xml()).unwrap(), acl);
        assert!(acl.acl.aces[1].credentials.is_empty());
    }

    #[test]
    fn errors() {
        let ns = "xmlns:a='http://schemas.microsoft.com/rvp/acl/'";
        let parse = |body: String| RvpAcl::parse(body.as_bytes());
        assert_eq!(
            parse(format!("<a:rvpacl {ns}/>")),
            Err(XmlError::Missing {
                parent: "rvpacl",
                child: "acl"
            })
        );
        assert_eq!(
            parse(format!("<a:rvpacl {ns}><a:acl><a:ace/></a:acl></a:rvpacl>")),
            Err(XmlError::Missing {
                parent: "ace",
                child: "principal"
            })
        );
        assert_eq!(
            parse(format!(
                "<a:rvpacl {ns}><a:acl><a:ace><a:principal/></a:ace></a:acl></a:rvpacl>"
            )),
            Err(XmlError::Missing {
                parent: "principal",
                child: "rvp-principal"
            })
        );
        assert_eq!(
            parse(format!(
                "<a:rvpacl {ns}><a:acl><a:ace><a:principal><a:rvp-principal> </a:rvp-principal>\
                 </a:principal></a:ace></a:acl></a:rvpacl>"
            )),
            Err(XmlError::InvalidValue {
                element: "rvp-principal",
                text: String::new()
            })
        );
    }
}
