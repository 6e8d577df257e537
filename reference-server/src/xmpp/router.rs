//! Stanza routing and local delivery (RFC 6120 §8, §10; RFC 6121 §3, §4, §8.5).
//!
//! Stanzas from local clients and from federation meet here. A stanza for a hosted domain is
//! processed as inbound (subscriptions, probes, presence and messages through the core);
//! any other goes to the outbound link of its domain. The core's effects come back as
//! stanzas and go through the same routing.

use imfed_xmpp::errors::error_reply;
use imfed_xmpp::stanza::{IqType, MessageType, PresenceType, StanzaKind};
use imfed_xmpp::{Element, Jid, StanzaError, StanzaErrorCondition, ns};
use tracing::{debug, warn};

use super::outbox::Pending;
use super::{Shared, address_of, jid_of};
use crate::core::{Effect, MessageDisposition, MessageKind, Signal, SubscriptionAction, Target};
use crate::faults::Switch;

/// The subscription action of a presence type, if it is one.
pub fn subscription_action(ptype: PresenceType) -> Option<SubscriptionAction> {
    match ptype {
        PresenceType::Subscribe => Some(SubscriptionAction::Subscribe),
        PresenceType::Subscribed => Some(SubscriptionAction::Subscribed),
        PresenceType::Unsubscribe => Some(SubscriptionAction::Unsubscribe),
        PresenceType::Unsubscribed => Some(SubscriptionAction::Unsubscribed),
        _ => None,
    }
}

fn presence_type_of(action: SubscriptionAction) -> PresenceType {
    match action {
        SubscriptionAction::Subscribe => PresenceType::Subscribe,
        SubscriptionAction::Subscribed => PresenceType::Subscribed,
        SubscriptionAction::Unsubscribe => PresenceType::Unsubscribe,
        SubscriptionAction::Unsubscribed => PresenceType::Unsubscribed,
    }
}

fn message_kind(mtype: MessageType) -> MessageKind {
    match mtype {
        MessageType::Normal => MessageKind::Normal,
        MessageType::Chat => MessageKind::Chat,
        MessageType::Groupchat => MessageKind::Groupchat,
        MessageType::Headline => MessageKind::Headline,
        MessageType::Error => MessageKind::Error,
    }
}

/// The target of a JID (`None` for a domain-only JID).
pub fn target_of(jid: &Jid) -> Option<Target> {
    address_of(jid).map(|addr| Target {
        addr,
        endpoint: jid.resource().map(str::to_string),
    })
}

/// The JID of a target.
pub fn jid_of_target(target: &Target) -> Jid {
    jid_of(&target.addr, target.endpoint.as_deref())
}

/// Builds the presence stanza for a core signal.
pub fn presence_stanza(from: &Target, to: &Target, signal: &Signal<Element>) -> Element {
    let from = jid_of_target(from).to_string();
    let to = jid_of_target(to).to_string();
    let mut stanza = match signal {
        Signal::Available(stored) => stored.clone(),
        Signal::Unavailable(Some(stored)) => stored.clone(),
        Signal::Unavailable(None) => Element::new("presence", ns::CLIENT),
        Signal::Probe => Element::new("presence", ns::CLIENT).with_attr("type", "probe"),
        Signal::Subscription(action) => Element::new("presence", ns::CLIENT).with_attr(
            "type",
            presence_type_of(*action).as_str().unwrap_or_default(),
        ),
    };
    if matches!(signal, Signal::Unavailable(_)) {
        stanza.set_attr("type", "unavailable");
    }
    stanza.set_attr("from", from);
    stanza.set_attr("to", to);
    stanza
}

impl Shared {
    /// Routes a stanza whose `from` is set: to a hosted domain it is delivered locally,
    /// otherwise it goes over federation.
    pub fn route(&self, stanza: Element) {
        let to = match imfed_xmpp::stanza::to(&stanza) {
            Ok(Some(to)) => to,
            Ok(None) => {
                warn!(xml = %stanza.to_xml(ns::CLIENT), "routing a stanza without 'to'");
                return;
            }
            Err(_) => {
                self.bounce(&stanza, StanzaErrorCondition::JidMalformed);
                return;
            }
        };
        if self.hosts(to.domain()) {
            self.deliver_inbound(stanza, &to);
            return;
        }
        let Some(local) = imfed_xmpp::stanza::from(&stanza)
            .ok()
            .flatten()
            .map(|from| from.domain().to_string())
            .filter(|domain| self.hosts(domain))
        else {
            warn!(xml = %stanza.to_xml(ns::CLIENT), "not routing a stanza from a domain we do not host");
            return;
        };
        self.xmpp.links.send(self, &local, to.domain(), stanza);
    }

    /// Processes a stanza addressed to a hosted domain, from a local client or from
    /// federation (RFC 6121 §8.5).
    pub fn deliver_inbound(&self, mut stanza: Element, to: &Jid) {
        let from = match imfed_xmpp::stanza::from(&stanza) {
            Ok(Some(from)) => from,
            _ => {
                debug!("dropping an inbound stanza without a valid 'from'");
                return;
            }
        };
        let Some(kind) = StanzaKind::of(&stanza) else {
            return;
        };
        let Some(target) = target_of(to) else {
            self.handle_server_addressed(&stanza, kind);
            return;
        };
        match kind {
            StanzaKind::Presence => self.inbound_presence(stanza, &from, &target),
            StanzaKind::Message => {
                if !self.hosts(from.domain()) && self.fault_for(Switch::MangleUnicodeIn, &stanza) {
                    mangle_body(&mut stanza);
                }
                let mut mtype = MessageType::of(&stanza);
                let mut target = target;
                if target.endpoint.is_some() && self.fault_for(Switch::FullJidAsBare, &stanza) {
                    target.endpoint = None;
                }
                if let Some(endpoint) = &target.endpoint
                    && !self.core().is_connected(&target.addr, endpoint)
                    && self.fault_for(Switch::BounceAbsentResource, &stanza)
                {
                    self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable);
                    return;
                }
                if mtype == MessageType::Groupchat
                    && target.endpoint.is_none()
                    && self.fault_for(Switch::DeliverGroupchatToBare, &stanza)
                {
                    mtype = MessageType::Chat;
                }
                let disposition = self
                    .core()
                    .message_disposition(&target, message_kind(mtype));
                match disposition {
                    MessageDisposition::Deliver(mut endpoints) => {
                        if self.fault_for(Switch::OneResourceOnly, &stanza) {
                            endpoints.truncate(1);
                        }
                        let rewrite = target.endpoint.is_none()
                            && self.fault_for(Switch::RewriteBareTo, &stanza);
                        for endpoint in endpoints {
                            let mut copy = stanza.clone();
                            if rewrite {
                                copy.set_attr(
                                    "to",
                                    jid_of(&target.addr, Some(&endpoint)).to_string(),
                                );
                            }
                            self.deliver_to(&target.addr, &endpoint, copy);
                        }
                    }
                    // §8.5.1 and §8.5.2.2.1: the reference server always answers, so that
                    // senders learn of non-delivery (RFC 2779 §5.4.1).
                    MessageDisposition::Refuse(_) => {
                        self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable);
                    }
                    MessageDisposition::Drop => {}
                }
            }
            StanzaKind::Iq => {
                let Ok(itype) = IqType::of(&stanza) else {
                    self.bounce(&stanza, StanzaErrorCondition::BadRequest);
                    return;
                };
                let connected = target
                    .endpoint
                    .as_deref()
                    .is_some_and(|endpoint| self.core().is_connected(&target.addr, endpoint));
                match (&target.endpoint, connected) {
                    (Some(endpoint), true) => self.deliver_to(&target.addr, endpoint, stanza),
                    // §8.5.2.1.3, §8.5.3.2.3: to an absent resource or to the bare JID of
                    // another user: the server answers, and supports no such queries.
                    _ if matches!(itype, IqType::Get | IqType::Set) => {
                        self.bounce(&stanza, StanzaErrorCondition::ServiceUnavailable);
                    }
                    _ => {}
                }
            }
        }
    }

    fn inbound_presence(&self, stanza: Element, from: &Jid, target: &Target) {
        let ptype = match PresenceType::of(&stanza) {
            Ok(ptype) => ptype,
            Err(_) => return,
        };
        let Some(sender) = super::router::target_of(from) else {
            return;
        };
        if let Some(action) = subscription_action(ptype) {
            if action == SubscriptionAction::Subscribed
                && self.fault_for(Switch::IgnoreSubscribedIn, &stanza)
            {
                return;
            }
            if action == SubscriptionAction::Subscribe
                && !self.core().exists(&target.addr)
                && self.fault_for(Switch::ApproveUnknownContacts, &stanza)
            {
                self.route(presence_stanza(
                    &Target::bare(&target.addr),
                    &Target::bare(&sender.addr),
                    &Signal::Subscription(SubscriptionAction::Subscribed),
                ));
                return;
            }
            let effects = self
                .core()
                .inbound_subscription(&target.addr, &sender.addr, action);
            self.apply(effects, Some(&stanza));
            return;
        }
        match ptype {
            PresenceType::Probe => {
                let effects = self.core().probe(&target.addr, &Target::bare(&sender.addr));
                self.apply(effects, None);
            }
            PresenceType::Available | PresenceType::Unavailable | PresenceType::Error => {
                let endpoints = self.core().presence_targets(target);
                for endpoint in endpoints {
                    self.deliver_to(&target.addr, &endpoint, stanza.clone());
                }
            }
            _ => {}
        }
    }

    /// Stanzas to a hosted domain itself (RFC 6120 §10.3): pings and service discovery are
    /// answered, other requests get `service-unavailable`, the rest is dropped.
    pub fn handle_server_addressed(&self, stanza: &Element, kind: StanzaKind) {
        if kind != StanzaKind::Iq {
            return;
        }
        match IqType::of(stanza) {
            Ok(IqType::Get) | Ok(IqType::Set) => {}
            _ => return,
        }
        if let Some(reply) = self.server_iq_answer(stanza) {
            self.route(reply);
        } else {
            self.bounce(stanza, StanzaErrorCondition::ServiceUnavailable);
        }
    }

    /// The answer to an iq get/set addressed to the server: a slot of the upload service
    /// (XEP-0363) or its error, ping, service discovery; `None` when it is none of these.
    pub fn server_iq_answer(&self, stanza: &Element) -> Option<Element> {
        let Some(request) = super::upload::is_request(stanza) else {
            return server_iq_reply(stanza, &self.xmpp.uploads);
        };
        let ignore_limit = self
            .faults
            .on(Switch::UploadIgnoresLimit, Default::default());
        Some(match self.xmpp.uploads.request(request, ignore_limit) {
            Ok(slot) => iq_answer(stanza, Some(slot)),
            Err(refusal) => {
                let mut reply = error_reply(stanza, &refusal.error);
                if let (Some(extra), Some(error)) =
                    (refusal.extra, reply.child_mut("error", ns::CLIENT))
                {
                    error.children.push(imfed_xmpp::Node::Element(extra));
                }
                reply
            }
        })
    }

    /// Returns an error for `stanza` to its sender, unless it is an error itself
    /// (RFC 6120 §8.3.1: errors are never answered with errors).
    pub fn bounce(&self, stanza: &Element, condition: StanzaErrorCondition) {
        if stanza.attr("type") == Some("error") || stanza.attr("from").is_none() {
            return;
        }
        let condition = if self.fault_for(Switch::WrongErrorCondition, stanza) {
            StanzaErrorCondition::UndefinedCondition
        } else {
            condition
        };
        let mut reply = error_reply(stanza, &StanzaError::new(condition));
        if self.fault_for(Switch::ErrorsWithoutId, stanza) {
            reply.remove_attr("id");
        }
        self.route(reply);
    }

    /// Hands a stanza to one session of a local user (delivered when the current dispatch
    /// flushes, see [`super::outbox`]).
    pub fn deliver_to(&self, addr: &crate::core::Address, endpoint: &str, stanza: Element) {
        self.enqueue(Pending::Session {
            addr: addr.clone(),
            endpoint: endpoint.to_string(),
            stanza,
        });
    }

    /// Carries out the core's effects. `original` is the inbound stanza being processed, for
    /// effects that deliver it unchanged.
    pub fn apply(&self, effects: Vec<Effect<Element>>, original: Option<&Element>) {
        for effect in effects {
            match effect {
                Effect::Send { from, to, signal } => {
                    self.route(presence_stanza(&from, &to, &signal));
                }
                Effect::Deliver {
                    from,
                    to,
                    endpoints,
                    signal,
                } => {
                    for endpoint in endpoints {
                        let recipient = Target::endpoint(&to, &endpoint);
                        let stanza = match (&signal, original) {
                            (Some(signal), _) => presence_stanza(&from, &recipient, signal),
                            (None, Some(original)) => original.clone(),
                            (None, None) => continue,
                        };
                        self.deliver_to(&to, &endpoint, stanza);
                    }
                }
                Effect::RosterPush {
                    user,
                    endpoints,
                    item,
                    removed,
                } => {
                    for endpoint in endpoints {
                        let push = Element::new("iq", ns::CLIENT)
                            .with_attr("type", "set")
                            .with_attr("id", format!("push-{}", super::random_id(10)))
                            .with_attr("to", jid_of(&user, Some(&endpoint)).to_string())
                            .with_child(
                                Element::new("query", ns::ROSTER)
                                    .with_child(roster_item_element(&item, removed)),
                            );
                        self.deliver_to(&user, &endpoint, push);
                    }
                }
            }
        }
    }
}

/// The `<item/>` of a roster result or push (RFC 6121 §2.1.2).
pub fn roster_item_element(item: &crate::core::RosterItem, removed: bool) -> Element {
    let mut element = Element::new("item", ns::ROSTER)
        .with_attr("jid", jid_of(&item.contact, None).to_string())
        .with_attr(
            "subscription",
            if removed {
                "remove"
            } else {
                item.state.subscription_attr()
            },
        )
        .with_opt_attr("name", item.name.clone());
    if !removed && item.state.pending_out() {
        element.set_attr("ask", "subscribe");
    }
    for group in &item.groups {
        element = element.with_child(Element::new("group", ns::ROSTER).with_text(group.clone()));
    }
    element
}

/// The answer to an iq get/set the server handles for any requester: ping (XEP-0199) and
/// service discovery (XEP-0030). `None` when the query is not supported.
pub fn server_iq_reply(stanza: &Element, uploads: &super::upload::Uploads) -> Option<Element> {
    let payload = stanza.elements().next()?;
    let result = |child: Option<Element>| iq_answer(stanza, child);
    match (
        stanza.attr("type"),
        payload.name.as_str(),
        payload.ns.as_str(),
    ) {
        (Some("get"), "ping", ns::PING) => Some(result(None)),
        (Some("get"), "query", ns::DISCO_INFO) if payload.attr("node").is_none() => {
            let mut query = Element::new("query", ns::DISCO_INFO).with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "server")
                    .with_attr("type", "im")
                    .with_attr("name", "imfed-server"),
            );
            for feature in [ns::DISCO_INFO, ns::PING, ns::ROSTER, super::upload::NS] {
                query = query
                    .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", feature));
            }
            // XEP-0363 §3: the upload service is the server itself, its limit in a form.
            Some(result(Some(query.with_child(uploads.disco_form()))))
        }
        (Some("get"), "query", ns::DISCO_ITEMS) if payload.attr("node").is_none() => {
            Some(result(Some(Element::new("query", ns::DISCO_ITEMS))))
        }
        _ => None,
    }
}

/// The result answering iq `stanza`, with `child` as its payload.
fn iq_answer(stanza: &Element, child: Option<Element>) -> Element {
    let mut reply = Element::new("iq", ns::CLIENT)
        .with_attr("type", "result")
        .with_opt_attr("id", stanza.attr("id"))
        .with_opt_attr("to", stanza.attr("from"))
        .with_opt_attr("from", stanza.attr("to"));
    if let Some(child) = child {
        reply = reply.with_child(child);
    }
    reply
}

/// Re-encodes message bodies as if UTF-8 had been read as Latin-1 (misbehaviour only).
fn mangle_body(stanza: &mut Element) {
    if let Some(body) = stanza.child_mut("body", ns::CLIENT) {
        let text = body.text();
        let mangled: String = text.bytes().map(char::from).collect();
        body.children = vec![imfed_xmpp::Node::Text(mangled)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Address, RosterItem, SubscriptionState};

    #[test]
    fn roster_items_carry_ask_only_when_pending_out() {
        let mut item = RosterItem {
            contact: Address::new("bob", "b.test"),
            name: Some("Bob".into()),
            groups: vec!["Friends".into()],
            state: SubscriptionState::FromPendingOut,
            visible: true,
        };
        assert_eq!(
            roster_item_element(&item, false).to_xml(ns::CLIENT),
            "<item xmlns='jabber:iq:roster' jid='bob@b.test' subscription='from' name='Bob' \
             ask='subscribe'><group>Friends</group></item>"
        );
        item.state = SubscriptionState::Both;
        assert_eq!(roster_item_element(&item, false).attr("ask"), None);
        assert_eq!(
            roster_item_element(&item, true).attr("subscription"),
            Some("remove")
        );
    }

    #[test]
    fn ping_and_disco_are_answered() {
        let ping = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", "p1")
            .with_attr("from", "a@b.test/r")
            .with_attr("to", "b.test")
            .with_child(Element::new("ping", ns::PING));
        let uploads = crate::xmpp::upload::Uploads::new(1);
        let reply = server_iq_reply(&ping, &uploads).unwrap();
        assert_eq!(reply.attr("type"), Some("result"));
        assert_eq!(reply.attr("to"), Some("a@b.test/r"));
        let vcard = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_child(Element::new("vCard", "vcard-temp"));
        assert!(server_iq_reply(&vcard, &uploads).is_none());
    }
}
