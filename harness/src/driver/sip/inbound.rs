//! What the home server sends the user agent (RFC 3428 §7, RFC 6665 §4.1.3, PROFILE.md
//! §4, §6): NOTIFYs of the watcher's subscriptions, matched to their dialogs and made
//! presence events (and, when terminated, the end of the subscription), MESSAGEs made
//! message events, each answered; and answers that match no transaction of the agent.

use std::sync::{Arc, Mutex};

use imfed_model::{Address, StanzaKind, SubscriptionSignal};
use imfed_reports::Flow;
use imfed_sip::dialog::Dialog;
use imfed_sip::{Method, Request, Response, pidf};
use tokio::sync::mpsc;

use super::transport::Handler;
use super::{Identity, address_of, mapping};
use crate::driver::event::{Event, Received, Wire};
use crate::driver::lifecycle::EndCause;

/// A presence subscription of the watcher: its SUBSCRIBE and, once accepted, its dialog.
#[derive(Debug)]
pub(super) struct Subscription {
    pub(super) contact: Address,
    /// The initial SUBSCRIBE as last sent (a dialog is made from it and the 2xx or the
    /// first NOTIFY, RFC 6665 §4.1.2.4).
    pub(super) subscribe: Request,
    pub(super) dialog: Option<Dialog>,
}

impl Subscription {
    fn local_tag(&self) -> Option<String> {
        self.subscribe
            .from()
            .ok()
            .and_then(|from| from.tag().map(str::to_string))
    }
}

pub(super) type Subscriptions = Arc<Mutex<Vec<Subscription>>>;

/// Answers what the home server sends the user agent (its [`Handler`]).
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) id: Identity,
    pub(super) subscriptions: Subscriptions,
    pub(super) arrivals: mpsc::UnboundedSender<Received>,
    /// The To tag of answers to out-of-dialog requests.
    pub(super) tag: String,
}

/// A response as a received thing.
pub(super) fn answer_received(response: &Response, event: Event) -> Received {
    Received {
        event,
        wire: Wire::Sip(mapping::response_form(response)),
        text: mapping::response_text(response),
    }
}

/// The event of an answer to a raw request (or to one whose transaction has timed out: a
/// late answer is still the server's): other than 2xx, an error from the `To` AOR about
/// what its CSeq method names.
pub(super) fn raw_answer_event(response: &Response) -> Event {
    if !mapping::is_error(response.status) {
        return Event::Other;
    }
    let from = response.to_header().ok().map(|to| address_of(&to.uri));
    let about = match response.cseq().map(|cseq| cseq.method) {
        Ok(Method::Message) => Some(StanzaKind::Message),
        Ok(Method::Subscribe | Method::Publish) => Some(StanzaKind::Presence),
        _ => None,
    };
    mapping::error_event(from, about, response.status)
}

impl Inbound {
    fn deliver(&self, request: &Request, event: Event) {
        // The session may be gone while the agent stops.
        let _ = self.arrivals.send(Received {
            event,
            wire: Wire::Sip(mapping::request_form(request)),
            text: mapping::request_text(request),
        });
    }

    fn answer(&self, request: &Request, status: u16, why: Option<&str>) -> Response {
        let reason = imfed_sip::reason_phrase(status);
        let to_tag = request
            .to()
            .ok()
            .is_some_and(|to| to.tag().is_none())
            .then_some(self.tag.as_str());
        if let Some(why) = why {
            self.id.note(format!(
                "{} answered {status} {reason}: {why}",
                request.method
            ));
        }
        Response::to(request, status, Some(reason), to_tag)
    }

    /// A NOTIFY of a presence subscription (RFC 6665 §4.1.3, PROFILE.md §4).
    fn notify(&self, request: &Request) -> Response {
        let call_id = request.call_id().map(str::to_string);
        let local_tag = request
            .to()
            .ok()
            .and_then(|to| to.tag().map(str::to_string));
        let mut subscriptions = self.subscriptions.lock().expect("subscriptions lock");
        let Some(index) = subscriptions.iter().position(|sub| {
            call_id.is_some()
                && sub.subscribe.call_id().map(str::to_string) == call_id
                && local_tag.is_some()
                && sub.local_tag() == local_tag
        }) else {
            return self.answer(request, 481, Some("no subscription has this dialog"));
        };
        if request
            .event()
            .and_then(Result::ok)
            .is_none_or(|event| !event.package.eq_ignore_ascii_case("presence"))
        {
            return self.answer(request, 489, Some("not the presence event package"));
        }
        let sub = &mut subscriptions[index];
        match &mut sub.dialog {
            // The NOTIFY came before the 2xx (RFC 6665 §4.1.2.4).
            None => match Dialog::uac_from_notify(&sub.subscribe, request) {
                Ok(dialog) => sub.dialog = Some(dialog),
                Err(error) => return self.answer(request, 400, Some(&error.to_string())),
            },
            Some(dialog) => {
                if let Err(error) = dialog.receive(request) {
                    return self.answer(request, 500, Some(&error.to_string()));
                }
            }
        }
        let presence = if request.body.is_empty() {
            None
        } else {
            match pidf::Presence::parse(&request.body) {
                Ok(presence) => Some(presence),
                Err(error) => return self.answer(request, 400, Some(&error.to_string())),
            }
        };
        let from = request
            .from()
            .ok()
            .map(|from| address_of(&from.uri))
            .unwrap_or_else(|| sub.contact.clone());
        let terminated = matches!(
            request.subscription_state().and_then(Result::ok),
            Some(imfed_sip::SubscriptionState::Terminated { .. })
        );
        if terminated {
            subscriptions.remove(index);
        }
        drop(subscriptions);
        self.deliver(
            request,
            mapping::presence_event(Some(from.clone()), presence.as_ref()),
        );
        if terminated {
            self.deliver(
                request,
                Event::Signal {
                    from: Some(from),
                    signal: SubscriptionSignal::Refused,
                },
            );
        }
        self.answer(request, 200, None)
    }

    /// A MESSAGE (RFC 3428 §7).
    fn message(&self, request: &Request) -> Response {
        match mapping::message_event(request) {
            Ok(event) => {
                self.deliver(request, event);
                self.answer(request, 200, None)
            }
            Err((status, why)) => {
                self.deliver(request, Event::Other);
                self.answer(request, status, Some(&why))
            }
        }
    }
}

const ALLOW: &str = "MESSAGE, NOTIFY, OPTIONS";

impl Handler for Inbound {
    fn request(&self, request: &Request) -> Response {
        self.id
            .record(Flow::Received, mapping::request_text(request));
        match request.method {
            Method::Notify => self.notify(request),
            Method::Message => self.message(request),
            Method::Options => {
                let mut response = self.answer(request, 200, None);
                response.headers.push("Allow", ALLOW);
                response
            }
            _ => {
                self.deliver(request, Event::Other);
                let mut response =
                    self.answer(request, 405, Some("the user agent takes no such request"));
                response.headers.push("Allow", ALLOW);
                response
            }
        }
    }

    fn stray(&self, response: Response) {
        self.id
            .record(Flow::Received, mapping::response_text(&response));
        let _ = self
            .arrivals
            .send(answer_received(&response, raw_answer_event(&response)));
    }

    fn lost(&self, reason: String) {
        self.id.lose(EndCause::Sip(reason));
    }

    fn note(&self, text: String) {
        self.id.note(text);
    }
}
