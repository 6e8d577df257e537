//! RFC 3261 §12: dialogs, as RFC 6665 creates them for subscriptions (§4.1.2.4 on the
//! subscriber's side, §4.2.1 on the notifier's): their identity, their state (route set,
//! remote target, sequence numbers) and the requests sent inside them.
//!
//! Only what a SUBSCRIBE dialog needs is here: building an in-dialog request (§12.2.1.1)
//! and checking and recording an incoming one (§12.2.2). ACK and CANCEL, which reuse a
//! CSeq number, are not built by [`Dialog::request`].

use crate::headers::{CSeq, HeaderError, NameAddr};
use crate::message::{Method, Request, Response};
use crate::uri::{Scheme, Uri};

/// What identifies a dialog (§12): the Call-ID and both tags, from one side's view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// This side's tag (the From tag of a UAC's requests, the To tag a UAS chose).
    pub local_tag: String,
    /// The other side's tag.
    pub remote_tag: String,
}

/// Why a dialog cannot be made, or a request does not fit it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs (Call-ID, From, To, CSeq, Contact, Record-Route) is
    /// missing or malformed.
    #[error("dialog header: {0}")]
    Header(#[from] HeaderError),
    /// A From or To without the tag that identifies the dialog (§12.1.1, §12.1.2).
    #[error("no tag in {header}")]
    MissingTag {
        /// `From` or `To`.
        header: &'static str,
    },
    /// No Contact to make the remote target (§12.1.1, §12.1.2; RFC 6665 §4.1.2, §4.2.1
    /// require one).
    #[error("no Contact for the remote target")]
    MissingContact,
    /// A response that does not create a dialog (only 2xx does, §12.1.2).
    #[error("status {status} does not create a dialog")]
    NotSuccess {
        /// The status.
        status: u16,
    },
    /// A message that does not belong here: another Call-ID, tag or event.
    #[error("{what} does not match the dialog")]
    Mismatch {
        /// `Call-ID`, `From tag`, `To tag` or `Event`.
        what: &'static str,
    },
    /// A request whose CSeq is not higher than the last one received (§12.2.2: answered
    /// `500 Server Internal Error`).
    #[error("CSeq {cseq} is not above the last one, {last}")]
    OutOfOrder {
        /// The request's CSeq number.
        cseq: u32,
        /// The highest received before.
        last: u32,
    },
}

/// A dialog's state (§12.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// This side's URI with its tag: the From of its requests.
    pub local_uri: NameAddr,
    /// The other side's URI with its tag: the To of this side's requests.
    pub remote_uri: NameAddr,
    /// Where requests go: the other side's Contact (refreshed by target-refresh requests).
    pub remote_target: Uri,
    /// The Route headers of this side's requests, in the order they are written.
    pub route_set: Vec<NameAddr>,
    /// The CSeq number of this side's last request (0 when it has sent none).
    pub local_seq: u32,
    /// The CSeq number of the other side's last request, if any.
    pub remote_seq: Option<u32>,
    /// Whether the dialog was created with a SIPS Request-URI (§12.1.1, §12.1.2).
    pub secure: bool,
}

/// The tag of a From or To, required.
fn tag(value: &NameAddr, header: &'static str) -> Result<String, DialogError> {
    value
        .tag()
        .map(str::to_string)
        .ok_or(DialogError::MissingTag { header })
}

/// The first Contact's URI, required.
fn contact(contacts: Vec<NameAddr>) -> Result<Uri, DialogError> {
    contacts
        .into_iter()
        .next()
        .map(|contact| contact.uri)
        .ok_or(DialogError::MissingContact)
}

fn call_id(call_id: Option<&str>) -> Result<String, DialogError> {
    call_id
        .map(str::to_string)
        .ok_or(DialogError::Header(HeaderError::Missing {
            name: "Call-ID",
        }))
}

impl Dialog {
    /// The subscriber's (UAC's) dialog from its SUBSCRIBE and the 2xx answering it
    /// (§12.1.2): remote tag = the response's To tag, route set = its Record-Route
    /// reversed, remote target = its Contact.
    ///
    /// # Errors
    /// [`DialogError`] for a non-2xx response, a missing tag or Contact, another Call-ID.
    pub fn uac_from_response(
        request: &Request,
        response: &Response,
    ) -> Result<Dialog, DialogError> {
        if !response.is_success() {
            return Err(DialogError::NotSuccess {
                status: response.status,
            });
        }
        let call_id = call_id(request.call_id())?;
        if response.call_id() != Some(call_id.as_str()) {
            return Err(DialogError::Mismatch { what: "Call-ID" });
        }
        let local_uri = request.from()?;
        let remote_uri = response.to_header()?;
        let mut route_set = response.record_routes()?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: tag(&local_uri, "From")?,
                remote_tag: tag(&remote_uri, "To")?,
            },
            remote_target: contact(response.contacts()?)?,
            local_uri,
            remote_uri,
            route_set,
            local_seq: request.cseq()?.seq,
            remote_seq: None,
            secure: request.uri.scheme == Scheme::Sips,
        })
    }

    /// The subscriber's dialog from its SUBSCRIBE and a NOTIFY that arrived before the
    /// 2xx (RFC 6665 §4.1.2.4): matched by Call-ID, the NOTIFY's To tag (= the SUBSCRIBE's
    /// From tag) and Event; remote tag = the NOTIFY's From tag, route set = its
    /// Record-Route in order (it is a request received, §12.1.1), remote target = its
    /// Contact, remote sequence number = its CSeq.
    ///
    /// # Errors
    /// [`DialogError`] for a missing tag or Contact, or a NOTIFY for another subscription.
    pub fn uac_from_notify(subscribe: &Request, notify: &Request) -> Result<Dialog, DialogError> {
        let call_id = call_id(subscribe.call_id())?;
        if notify.call_id() != Some(call_id.as_str()) {
            return Err(DialogError::Mismatch { what: "Call-ID" });
        }
        let local_uri = subscribe.from()?;
        let local_tag = tag(&local_uri, "From")?;
        if notify.to()?.tag() != Some(local_tag.as_str()) {
            return Err(DialogError::Mismatch { what: "To tag" });
        }
        if let (Some(ours), Some(theirs)) = (subscribe.event(), notify.event()) {
            let (ours, theirs) = (ours?, theirs?);
            if !ours.is(&theirs.package) || ours.id != theirs.id {
                return Err(DialogError::Mismatch { what: "Event" });
            }
        }
        let remote_uri = notify.from()?;
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag,
                remote_tag: tag(&remote_uri, "From")?,
            },
            remote_target: contact(notify.contacts()?)?,
            local_uri,
            remote_uri,
            route_set: notify.record_routes()?,
            local_seq: subscribe.cseq()?.seq,
            remote_seq: Some(notify.cseq()?.seq),
            secure: subscribe.uri.scheme == Scheme::Sips,
        })
    }

    /// The notifier's (UAS's) dialog from the SUBSCRIBE it accepts (§12.1.1): route set =
    /// Record-Route in order, remote target = Contact, remote tag = the From tag, local
    /// tag = `local_tag` (the one the caller puts in the 2xx's To).
    ///
    /// # Errors
    /// [`DialogError`] for a missing From tag or Contact.
    pub fn uas(request: &Request, local_tag: &str) -> Result<Dialog, DialogError> {
        let remote_uri = request.from()?;
        let local_uri = request.to()?.with_tag(local_tag);
        Ok(Dialog {
            id: DialogId {
                call_id: call_id(request.call_id())?,
                local_tag: local_tag.to_string(),
                remote_tag: tag(&remote_uri, "From")?,
            },
            remote_target: contact(request.contacts()?)?,
            local_uri,
            remote_uri,
            route_set: request.record_routes()?,
            local_seq: 0,
            remote_seq: Some(request.cseq()?.seq),
            secure: request.uri.scheme == Scheme::Sips,
        })
    }

    /// A new request inside the dialog (§12.2.1.1), with `Max-Forwards: 70`, `Route`s,
    /// `To`, `From`, `Call-ID` and `CSeq` (the local sequence number, incremented first):
    ///
    /// - no route set: the Request-URI is the remote target;
    /// - the first route has `lr` (loose routing, §16.12): the Request-URI is the remote
    ///   target and the Routes are the route set;
    /// - otherwise (strict routing): the Request-URI is the first route's URI (without
    ///   URI headers or a `method` parameter, which a Request-URI may not carry) and the
    ///   Routes are the rest of the route set, then the remote target.
    ///
    /// The caller adds Via, Contact, Event, Expires and the body.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq = (self.local_seq + 1).min(CSeq::MAX);
        let (uri, routes) = match self.route_set.first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some(first) if first.uri.is_loose_router() => {
                (self.remote_target.clone(), self.route_set.clone())
            }
            Some(first) => {
                let mut uri = first.uri.clone();
                uri.headers.clear();
                uri.params
                    .retain(|(name, _)| !name.eq_ignore_ascii_case("method"));
                let mut routes = self.route_set[1..].to_vec();
                routes.push(NameAddr::new(self.remote_target.clone()));
                (uri, routes)
            }
        };
        let mut request = Request::new(method.clone(), uri);
        request.headers.push("Max-Forwards", "70");
        for route in routes {
            request.headers.push("Route", route.to_string());
        }
        request.headers.push("To", self.remote_uri.to_string());
        request.headers.push("From", self.local_uri.to_string());
        request.headers.push("Call-ID", self.id.call_id.clone());
        request.headers.push(
            "CSeq",
            CSeq {
                seq: self.local_seq,
                method,
            }
            .to_string(),
        );
        request
    }

    /// Takes an incoming request of this dialog (§12.2.2): checks its Call-ID and tags,
    /// checks that its CSeq is above the last one received and records it, and refreshes
    /// the remote target from its Contact when it is a target-refresh request (SUBSCRIBE
    /// and NOTIFY, RFC 6665 §4.1.2.1 and §4.2.1; INVITE, UPDATE, REFER).
    ///
    /// A CSeq equal to the last one is refused as well as a lower one: retransmissions
    /// never reach the dialog (the transaction layer absorbs them), and a new request with
    /// the same number breaks §12.2.1.1's increment by one.
    ///
    /// # Errors
    /// [`DialogError::OutOfOrder`] (answer `500`), [`DialogError::Mismatch`] for a request
    /// of another dialog, [`DialogError::Header`] for a malformed header. The dialog is
    /// unchanged on error.
    pub fn receive(&mut self, request: &Request) -> Result<(), DialogError> {
        if request.call_id() != Some(self.id.call_id.as_str()) {
            return Err(DialogError::Mismatch { what: "Call-ID" });
        }
        if request.from()?.tag() != Some(self.id.remote_tag.as_str()) {
            return Err(DialogError::Mismatch { what: "From tag" });
        }
        if request.to()?.tag() != Some(self.id.local_tag.as_str()) {
            return Err(DialogError::Mismatch { what: "To tag" });
        }
        let cseq = request.cseq()?.seq;
        if let Some(last) = self.remote_seq
            && cseq <= last
        {
            return Err(DialogError::OutOfOrder { cseq, last });
        }
        let refresh = matches!(
            request.method,
            Method::Subscribe | Method::Notify | Method::Invite | Method::Update | Method::Refer
        );
        let target = if refresh {
            request
                .contacts()?
                .into_iter()
                .next()
                .map(|contact| contact.uri)
        } else {
            None
        };
        self.remote_seq = Some(cseq);
        if let Some(target) = target {
            self.remote_target = target;
        }
        Ok(())
    }

    /// Refreshes the remote target from the Contact of a 2xx answering this side's
    /// in-dialog SUBSCRIBE (a target refresh, RFC 6665 §4.1.2.1, §12.2.1.2); other
    /// responses change nothing.
    ///
    /// # Errors
    /// [`DialogError::Header`] if the Contact is malformed.
    pub fn refresh_target(&mut self, response: &Response) -> Result<(), DialogError> {
        if response.is_success()
            && let Some(contact) = response.contacts()?.into_iter().next()
        {
            self.remote_target = contact.uri;
        }
        Ok(())
    }

    /// The dialog an incoming request belongs to, from the receiver's view: local tag =
    /// its To tag, remote tag = its From tag; `None` without both tags (an out-of-dialog
    /// request) or a Call-ID.
    pub fn id_of_incoming(request: &Request) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.call_id()?.to_string(),
            local_tag: request.to().ok()?.tag()?.to_string(),
            remote_tag: request.from().ok()?.tag()?.to_string(),
        })
    }

    /// The dialog a response to this side's request belongs to: local tag = its From tag,
    /// remote tag = its To tag.
    pub fn id_of_response(response: &Response) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.call_id()?.to_string(),
            local_tag: response.from().ok()?.tag()?.to_string(),
            remote_tag: response.to_header().ok()?.tag()?.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::Headers;

    fn subscribe() -> Request {
        let mut request = Request::new(Method::Subscribe, Uri::parse("sip:bob@b.test").unwrap());
        request.headers = [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@a.test>;tag=a1"),
            ("To", "<sip:bob@b.test>"),
            ("Call-ID", "sub1@127.0.0.1"),
            ("CSeq", "7 SUBSCRIBE"),
            ("Event", "presence"),
            ("Contact", "<sip:alice@127.0.0.1:5070;transport=udp>"),
            ("Expires", "3600"),
        ]
        .into_iter()
        .collect::<Headers>();
        request
    }

    /// SUBSCRIBE → 200 with Record-Route through both servers → the in-dialog refresh goes
    /// to the Contact through the route set reversed, with the next CSeq.
    #[test]
    fn subscriber_dialog_from_a_200_with_record_route() {
        let request = subscribe();
        let mut ok = Response::to(&request, 200, None, Some("b9"));
        ok.headers.push(
            "Record-Route",
            "<sip:b-proxy.test;lr>, <sip:127.0.0.1:5060;lr>",
        );
        ok.headers.push("Contact", "<sip:bob@192.0.2.9:5080>");
        ok.headers.push("Expires", "3600");
        let mut dialog = Dialog::uac_from_response(&request, &ok).unwrap();
        assert_eq!(
            dialog.id,
            DialogId {
                call_id: "sub1@127.0.0.1".into(),
                local_tag: "a1".into(),
                remote_tag: "b9".into()
            }
        );
        assert_eq!(Dialog::id_of_response(&ok), Some(dialog.id.clone()));
        assert!(!dialog.secure);

        let refresh = dialog.request(Method::Subscribe);
        assert_eq!(refresh.uri.to_string(), "sip:bob@192.0.2.9:5080");
        assert_eq!(
            refresh.headers.get_all("Route"),
            vec!["<sip:127.0.0.1:5060;lr>", "<sip:b-proxy.test;lr>"]
        );
        assert_eq!(refresh.cseq().unwrap().to_string(), "8 SUBSCRIBE");
        assert_eq!(refresh.to().unwrap().tag(), Some("b9"));
        assert_eq!(refresh.from().unwrap().tag(), Some("a1"));
        assert_eq!(refresh.call_id(), Some("sub1@127.0.0.1"));
        assert_eq!(refresh.max_forwards(), Some(70));
        assert_eq!(dialog.request(Method::Subscribe).cseq().unwrap().seq, 9);

        // The notifier's NOTIFYs: in order, a lower CSeq refused, the target refreshed.
        let mut notify = Request::new(
            Method::Notify,
            Uri::parse("sip:alice@127.0.0.1:5070").unwrap(),
        );
        notify.headers = [
            ("From", "<sip:bob@b.test>;tag=b9"),
            ("To", "<sip:alice@a.test>;tag=a1"),
            ("Call-ID", "sub1@127.0.0.1"),
            ("CSeq", "1 NOTIFY"),
            ("Contact", "<sip:bob@192.0.2.10:5080>"),
        ]
        .into_iter()
        .collect::<Headers>();
        dialog.receive(&notify).unwrap();
        assert_eq!(dialog.remote_seq, Some(1));
        assert_eq!(dialog.remote_target.host, "192.0.2.10");
        assert_eq!(
            dialog.receive(&notify),
            Err(DialogError::OutOfOrder { cseq: 1, last: 1 })
        );
        let mut stranger = notify.clone();
        stranger.headers.set("From", "<sip:bob@b.test>;tag=other");
        stranger.headers.set("CSeq", "2 NOTIFY");
        assert_eq!(
            dialog.receive(&stranger),
            Err(DialogError::Mismatch { what: "From tag" })
        );
        assert_eq!(dialog.remote_seq, Some(1));
        assert_eq!(Dialog::id_of_incoming(&notify), Some(dialog.id.clone()));
    }

    #[test]
    fn strict_routing_and_no_route_set() {
        let request = subscribe();
        let mut ok = Response::to(&request, 202, None, Some("b9"));
        ok.headers.push("Record-Route", "<sip:p2.test;lr>");
        ok.headers
            .push("Record-Route", "<sip:p1.test;method=SUBSCRIBE?x=y>");
        ok.headers.push("Contact", "<sip:bob@192.0.2.9>");
        let mut dialog = Dialog::uac_from_response(&request, &ok).unwrap();
        let strict = dialog.request(Method::Subscribe);
        assert_eq!(strict.uri.to_string(), "sip:p1.test");
        assert_eq!(
            strict.headers.get_all("Route"),
            vec!["<sip:p2.test;lr>", "<sip:bob@192.0.2.9>"]
        );

        ok.headers.remove("Record-Route");
        let mut direct = Dialog::uac_from_response(&request, &ok).unwrap();
        let refresh = direct.request(Method::Subscribe);
        assert_eq!(refresh.uri.to_string(), "sip:bob@192.0.2.9");
        assert!(!refresh.headers.contains("Route"));
        let mut newer = ok.clone();
        newer.headers.set("Contact", "<sip:bob@192.0.2.77>");
        direct.refresh_target(&newer).unwrap();
        assert_eq!(direct.remote_target.host, "192.0.2.77");
    }

    #[test]
    fn subscriber_dialog_from_an_early_notify() {
        let request = subscribe();
        let mut notify = Request::new(
            Method::Notify,
            Uri::parse("sip:alice@127.0.0.1:5070").unwrap(),
        );
        notify.headers = [
            ("Record-Route", "<sip:b-proxy.test;lr>"),
            ("Record-Route", "<sip:127.0.0.1:5060;lr>"),
            ("From", "<sip:bob@b.test>;tag=b9"),
            ("To", "<sip:alice@a.test>;tag=a1"),
            ("Call-ID", "sub1@127.0.0.1"),
            ("CSeq", "1 NOTIFY"),
            ("Event", "presence"),
            ("Subscription-State", "active;expires=3600"),
            ("Contact", "<sip:bob@192.0.2.9:5080>"),
        ]
        .into_iter()
        .collect::<Headers>();
        let mut dialog = Dialog::uac_from_notify(&request, &notify).unwrap();
        assert_eq!(dialog.remote_seq, Some(1));
        let refresh = dialog.request(Method::Subscribe);
        assert_eq!(
            refresh.headers.get_all("Route"),
            vec!["<sip:b-proxy.test;lr>", "<sip:127.0.0.1:5060;lr>"]
        );
        let mut other = notify.clone();
        other.headers.set("Event", "presence;id=2");
        assert_eq!(
            Dialog::uac_from_notify(&request, &other),
            Err(DialogError::Mismatch { what: "Event" })
        );
        other.headers.set("To", "<sip:alice@a.test>;tag=zz");
        assert_eq!(
            Dialog::uac_from_notify(&request, &other),
            Err(DialogError::Mismatch { what: "To tag" })
        );
    }

    #[test]
    fn notifier_dialog() {
        let mut request = subscribe();
        request.headers.push(
            "Record-Route",
            "<sip:a-proxy.test;lr>, <sip:b-proxy.test;lr>",
        );
        let mut dialog = Dialog::uas(&request, "b9").unwrap();
        assert_eq!(dialog.local_uri.tag(), Some("b9"));
        assert_eq!(dialog.remote_seq, Some(7));
        let notify = dialog.request(Method::Notify);
        assert_eq!(
            notify.uri.to_string(),
            "sip:alice@127.0.0.1:5070;transport=udp"
        );
        assert_eq!(
            notify.headers.get_all("Route"),
            vec!["<sip:a-proxy.test;lr>", "<sip:b-proxy.test;lr>"]
        );
        assert_eq!(notify.cseq().unwrap().seq, 1);
        assert_eq!(notify.from().unwrap().tag(), Some("b9"));
        assert_eq!(notify.to().unwrap().tag(), Some("a1"));

        let mut unsubscribe = request.clone();
        unsubscribe.headers.set("To", "<sip:bob@b.test>;tag=b9");
        unsubscribe.headers.set("CSeq", "8 SUBSCRIBE");
        unsubscribe.headers.set("Expires", "0");
        assert_eq!(
            Dialog::id_of_incoming(&unsubscribe),
            Some(dialog.id.clone())
        );
        dialog.receive(&unsubscribe).unwrap();
        unsubscribe.headers.set("CSeq", "3 SUBSCRIBE");
        assert_eq!(
            dialog.receive(&unsubscribe),
            Err(DialogError::OutOfOrder { cseq: 3, last: 8 })
        );
        assert_eq!(Dialog::id_of_incoming(&subscribe()), None);

        let mut no_contact = subscribe();
        no_contact.headers.remove("Contact");
        assert_eq!(
            Dialog::uas(&no_contact, "x"),
            Err(DialogError::MissingContact)
        );
        let mut no_tag = subscribe();
        no_tag.headers.set("From", "<sip:alice@a.test>");
        assert_eq!(
            Dialog::uas(&no_tag, "x"),
            Err(DialogError::MissingTag { header: "From" })
        );
        assert_eq!(
            Dialog::uac_from_response(&request, &Response::to(&request, 489, None, Some("t"))),
            Err(DialogError::NotSuccess { status: 489 })
        );
    }
}
