//! RVP §5.5 and §9.1.1–§9.1.17: property values: presence state (plain or leased, with
//! view identifiers), display name, e-mail and mobile state.

use std::fmt;

use super::{Element, XmlError, empty, number, required, text_element, trimmed};
use crate::ns::Ns;

/// A presence value (§9.1.5–§9.1.11): an empty element in the RVP namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// `online`.
    Online,
    /// `offline`.
    Offline,
    /// `away`.
    Away,
    /// `busy`.
    Busy,
    /// `back-soon`.
    BackSoon,
    /// `on-phone`.
    OnPhone,
    /// `at-lunch`.
    AtLunch,
    /// `idle`: not in the DTD, sent by real clients (Miranda).
    Idle,
    /// `invisible`: not in the DTD, sent by real clients (Miranda).
    Invisible,
    /// Any other element name in the RVP namespace (state values are extensible); to be
    /// written it must be an XML name.
    Other(String),
}

const PRESENCE_NAMES: &[(Presence, &str)] = &[
    (Presence::Online, "online"),
    (Presence::Offline, "offline"),
    (Presence::Away, "away"),
    (Presence::Busy, "busy"),
    (Presence::BackSoon, "back-soon"),
    (Presence::OnPhone, "on-phone"),
    (Presence::AtLunch, "at-lunch"),
    (Presence::Idle, "idle"),
    (Presence::Invisible, "invisible"),
];

impl Presence {
    /// The element's local name.
    pub fn as_str(&self) -> &str {
        match self {
            Presence::Other(name) => name,
            known => PRESENCE_NAMES
                .iter()
                .find(|(presence, _)| presence == known)
                .map_or("", |(_, name)| name),
        }
    }

    /// The presence a local name stands for.
    pub fn from_name(name: &str) -> Presence {
        PRESENCE_NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map_or_else(|| Presence::Other(name.to_string()), |(p, _)| p.clone())
    }

    /// The first RVP-namespace child of `parent` (other children are skipped).
    fn from_parent(parent: &Element, parent_name: &'static str) -> Result<Presence, XmlError> {
        parent
            .elements()
            .find(|el| el.space() == Ns::Rvp)
            .map(|el| Presence::from_name(&el.name))
            .ok_or(XmlError::Missing {
                parent: parent_name,
                child: "online, offline, away, ...",
            })
    }

    fn to_element(&self) -> Element {
        empty(Ns::Rvp, self.as_str())
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A leased value (§5.5, §9.1.2): `value` until `timeout` seconds have passed, then
/// `default-value`, unless refreshed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeasedValue {
    /// The value for the lease.
    pub value: Presence,
    /// The value after the lease.
    pub default_value: Presence,
    /// The lease in seconds (read from `r:timeout` or `d:timeout`, written as `d:timeout`).
    pub timeout: u64,
}

/// The content of a `state` element.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StateValue {
    /// A plain value (`<r:state><r:online/></r:state>`, as in the NOTIFY of §5.6.1).
    Plain(Presence),
    /// A leased value (§5.5.1).
    Leased(LeasedValue),
}

/// The `state` property (§9.1.1): a presence value, plain or leased, and the view
/// identifier of the endpoint that set it (§5.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The value.
    pub value: StateValue,
    /// `view-id` (trimmed), returned by the server when a PROPPATCH did not send one.
    pub view_id: Option<String>,
}

impl State {
    /// A plain state without a view identifier.
    pub fn plain(presence: Presence) -> State {
        State {
            value: StateValue::Plain(presence),
            view_id: None,
        }
    }

    /// A leased state without a view identifier.
    pub fn leased(value: Presence, default_value: Presence, timeout: u64) -> State {
        State {
            value: StateValue::Leased(LeasedValue {
                value,
                default_value,
                timeout,
            }),
            view_id: None,
        }
    }

    /// The current presence (the leased value, for a leased state).
    pub fn presence(&self) -> &Presence {
        match &self.value {
            StateValue::Plain(presence) => presence,
            StateValue::Leased(leased) => &leased.value,
        }
    }

    fn from_element(element: &Element) -> Result<State, XmlError> {
        let view_id = element.child(&[Ns::Rvp], "view-id").map(trimmed);
        let value = match element.child(&[Ns::Rvp], "leased-value") {
            Some(leased) => {
                let value = required(leased, &[Ns::Rvp], "value", "leased-value")?;
                let default = required(leased, &[Ns::Rvp], "default-value", "leased-value")?;
                let timeout = required(leased, &[Ns::Dav, Ns::Rvp], "timeout", "leased-value")?;
                StateValue::Leased(LeasedValue {
                    value: Presence::from_parent(value, "value")?,
                    default_value: Presence::from_parent(default, "default-value")?,
                    timeout: number(timeout, "timeout")?,
                })
            }
            None => {
                let presence = element
                    .elements()
                    .find(|el| el.space() == Ns::Rvp && el.name != "view-id")
                    .ok_or(XmlError::Missing {
                        parent: "state",
                        child: "leased-value or a presence value",
                    })?;
                StateValue::Plain(Presence::from_name(&presence.name))
            }
        };
        Ok(State { value, view_id })
    }

    fn to_element(&self) -> Element {
        let mut state = empty(Ns::Rvp, "state");
        state = match &self.value {
            StateValue::Plain(presence) => state.with_child(presence.to_element()),
            StateValue::Leased(leased) => state.with_child(
                empty(Ns::Rvp, "leased-value")
                    .with_child(empty(Ns::Rvp, "value").with_child(leased.value.to_element()))
                    .with_child(
                        empty(Ns::Rvp, "default-value")
                            .with_child(leased.default_value.to_element()),
                    )
                    .with_child(text_element(
                        Ns::Dav,
                        "timeout",
                        &leased.timeout.to_string(),
                    )),
            ),
        };
        if let Some(view_id) = &self.view_id {
            state = state.with_child(text_element(Ns::Rvp, "view-id", view_id));
        }
        state
    }
}

/// The name of a property (a child of `d:prop`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PropName {
    /// `r:state` (§9.1.1).
    State,
    /// `d:displayname`.
    DisplayName,
    /// `r:email` (§9.1.15).
    Email,
    /// `r:mobile-state` (§9.1.16).
    MobileState,
    /// `r:mobile-description` (§9.1.17).
    MobileDescription,
    /// Any other property.
    Other {
        /// Its namespace URI.
        ns: String,
        /// Its local name.
        name: String,
    },
}

impl PropName {
    pub(crate) fn of(element: &Element) -> PropName {
        match (element.space(), element.name.as_str()) {
            (Ns::Rvp, "state") => PropName::State,
            (Ns::Dav, "displayname") => PropName::DisplayName,
            (Ns::Rvp, "email") => PropName::Email,
            (Ns::Rvp, "mobile-state") => PropName::MobileState,
            (Ns::Rvp, "mobile-description") => PropName::MobileDescription,
            _ => PropName::Other {
                ns: element.ns.clone(),
                name: element.name.clone(),
            },
        }
    }

    pub(crate) fn to_element(&self) -> Element {
        match self {
            PropName::State => empty(Ns::Rvp, "state"),
            PropName::DisplayName => empty(Ns::Dav, "displayname"),
            PropName::Email => empty(Ns::Rvp, "email"),
            PropName::MobileState => empty(Ns::Rvp, "mobile-state"),
            PropName::MobileDescription => empty(Ns::Rvp, "mobile-description"),
            PropName::Other { ns, name } => Element::new(ns, name),
        }
    }
}

/// A property with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Property {
    /// `r:state`.
    State(State),
    /// `d:displayname` (trimmed).
    DisplayName(String),
    /// `r:email` (trimmed).
    Email(String),
    /// `r:mobile-state`: `1` when the principal's mobile is online.
    MobileState(bool),
    /// `r:mobile-description` (trimmed).
    MobileDescription(String),
    /// `r:state` or `r:mobile-state` without content, as in a propstat naming a property
    /// that has no value (a 404 inside a 207, §5.4).
    Empty(PropName),
    /// Any other property, kept whole.
    Other(Element),
}

impl Property {
    /// The property's name.
    pub fn name(&self) -> PropName {
        match self {
            Property::State(_) => PropName::State,
            Property::DisplayName(_) => PropName::DisplayName,
            Property::Email(_) => PropName::Email,
            Property::MobileState(_) => PropName::MobileState,
            Property::MobileDescription(_) => PropName::MobileDescription,
            Property::Empty(name) => name.clone(),
            Property::Other(element) => PropName::of(element),
        }
    }

    fn from_element(element: &Element) -> Result<Property, XmlError> {
        let blank = element.elements().next().is_none() && trimmed(element).is_empty();
        Ok(match PropName::of(element) {
            PropName::State if blank => Property::Empty(PropName::State),
            PropName::State => Property::State(State::from_element(element)?),
            PropName::DisplayName => Property::DisplayName(trimmed(element)),
            PropName::Email => Property::Email(trimmed(element)),
            PropName::MobileState if blank => Property::Empty(PropName::MobileState),
            PropName::MobileState => match trimmed(element).as_str() {
                "0" => Property::MobileState(false),
                "1" => Property::MobileState(true),
                text => {
                    return Err(XmlError::InvalidValue {
                        element: "mobile-state",
                        text: text.to_string(),
                    });
                }
            },
            PropName::MobileDescription => Property::MobileDescription(trimmed(element)),
            PropName::Other { .. } => Property::Other(element.clone()),
        })
    }

    fn to_element(&self) -> Element {
        match self {
            Property::State(state) => state.to_element(),
            Property::DisplayName(text) => text_element(Ns::Dav, "displayname", text),
            Property::Email(text) => text_element(Ns::Rvp, "email", text),
            Property::MobileState(on) => {
                text_element(Ns::Rvp, "mobile-state", if *on { "1" } else { "0" })
            }
            Property::MobileDescription(text) => text_element(Ns::Rvp, "mobile-description", text),
            Property::Empty(name) => name.to_element(),
            Property::Other(element) => element.clone(),
        }
    }
}

/// The properties inside a `d:prop`.
pub(crate) fn props_from(prop: &Element) -> Result<Vec<Property>, XmlError> {
    prop.elements().map(Property::from_element).collect()
}

/// A `d:prop` holding `props`.
pub(crate) fn prop_element(props: &[Property]) -> Element {
    props.iter().fold(empty(Ns::Dav, "prop"), |prop, p| {
        prop.with_child(p.to_element())
    })
}

#[cfg(test)]
mod tests;
