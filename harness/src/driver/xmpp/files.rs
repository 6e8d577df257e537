//! XEP-0363 HTTP File Upload and XEP-0066 out-of-band links, the XMPP side of the files pack:
//! find the actor's upload service (XEP-0030: its own domain, then the domain's items), ask
//! for slots, and send and receive file links. The HTTP transfers themselves are the
//! runner's (`crate::runner::files`): they are not XMPP.

use std::time::Duration;

use imfed_model::Address;
use imfed_xmpp::{Element, ns};

use super::Session;
use crate::driver::DriverError;
use crate::driver::event::Wire as Form;

/// The XEP-0363 namespace.
pub const UPLOAD: &str = "urn:xmpp:http:upload:0";
/// Out-of-band data (XEP-0066), as a message extension.
pub const OOB: &str = "jabber:x:oob";
/// Items of the actor's domain looked at for an upload service, at most.
const MAX_ITEMS: usize = 16;

/// An upload service and the largest file it announces.
#[derive(Clone, Debug)]
pub struct UploadService {
    /// Its address.
    pub jid: String,
    /// `max-file-size` from its disco#info form (§3), if announced.
    pub max_bytes: Option<u64>,
}

/// A granted slot (§4).
#[derive(Clone, Debug)]
pub struct Slot {
    /// Where to PUT the file.
    pub put_url: String,
    /// Headers the PUT must carry (§9.2: only Authorization, Cookie, Expires are copied).
    pub put_headers: Vec<(String, String)>,
    /// Where the file will be.
    pub get_url: String,
}

/// How the service answered a slot request.
#[derive(Clone, Debug)]
pub enum SlotAnswer {
    /// A slot.
    Granted(Slot),
    /// An error: its condition, and the `max-file-size` of a `<file-too-large/>` in it.
    Refused {
        /// The stanza error condition.
        condition: String,
        /// The limit the error names (§6), if it names one.
        max_bytes: Option<u64>,
        /// The error stanza, for reports.
        text: String,
    },
}

impl Session {
    async fn disco_info(&mut self, jid: &str, bound: Duration) -> Result<Element, DriverError> {
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("to", jid)
            .with_child(Element::new("query", ns::DISCO_INFO));
        self.iq(iq, bound).await
    }

    /// Finds the actor's upload service: its own domain if that advertises XEP-0363, else
    /// the first of the domain's disco#items that does.
    ///
    /// # Errors
    /// [`DriverError::Unsupported`] when none does; the stream's end or a time-out.
    pub async fn upload_service(&mut self, bound: Duration) -> Result<UploadService, DriverError> {
        let domain = self.address().domain;
        let mut candidates = vec![domain.clone()];
        let items = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("to", domain.as_str())
            .with_child(Element::new("query", ns::DISCO_ITEMS));
        let items = self.iq(items, bound).await?;
        if let Some(query) = items.child("query", ns::DISCO_ITEMS) {
            candidates.extend(
                query
                    .elements()
                    .filter(|item| item.name == "item")
                    .filter_map(|item| item.attr("jid").map(str::to_string))
                    .take(MAX_ITEMS),
            );
        }
        for jid in candidates {
            let info = self.disco_info(&jid, bound).await?;
            let Some(query) = info.child("query", ns::DISCO_INFO) else {
                continue;
            };
            let offers = query
                .elements()
                .any(|feature| feature.name == "feature" && feature.attr("var") == Some(UPLOAD));
            if offers {
                return Ok(UploadService {
                    max_bytes: max_file_size(query),
                    jid,
                });
            }
        }
        Err(DriverError::Unsupported(format!(
            "no XEP-0363 upload service on {domain} or its disco#items"
        )))
    }

    /// Asks `service` for a slot (§4).
    ///
    /// # Errors
    /// An answer that is neither a slot nor an error, the stream's end, a time-out.
    pub async fn request_slot(
        &mut self,
        service: &UploadService,
        filename: &str,
        size: u64,
        content_type: &str,
        bound: Duration,
    ) -> Result<SlotAnswer, DriverError> {
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("to", service.jid.as_str())
            .with_child(
                Element::new("request", UPLOAD)
                    .with_attr("filename", filename)
                    .with_attr("size", size.to_string())
                    .with_attr("content-type", content_type),
            );
        let reply = self.iq(iq, bound).await?;
        let text = reply.to_xml(ns::CLIENT);
        if reply.attr("type") == Some("error") {
            let error = reply.child("error", ns::CLIENT);
            let condition = error
                .and_then(|error| error.elements().find(|c| c.ns == ns::STANZA_ERRORS))
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let max_bytes = error
                .and_then(|error| error.child("file-too-large", UPLOAD))
                .and_then(|too_large| too_large.child("max-file-size", UPLOAD))
                .and_then(|max| max.text().trim().parse().ok());
            return Ok(SlotAnswer::Refused {
                condition,
                max_bytes,
                text,
            });
        }
        let slot = reply.child("slot", UPLOAD).ok_or_else(|| {
            DriverError::Invalid(format!("a slot answer without <slot/>: {text}"))
        })?;
        let put = slot.child("put", UPLOAD);
        let url =
            |element: Option<&Element>| element.and_then(|e| e.attr("url")).map(str::to_string);
        let (Some(put_url), Some(get_url)) = (url(put), url(slot.child("get", UPLOAD))) else {
            return Err(DriverError::Invalid(format!(
                "a slot without put and get URLs: {text}"
            )));
        };
        let put_headers = put
            .map(|put| {
                put.elements()
                    .filter(|h| h.name == "header")
                    .filter_map(|h| Some((h.attr("name")?.to_string(), h.text())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(SlotAnswer::Granted(Slot {
            put_url,
            put_headers,
            get_url,
        }))
    }

    /// Sends `url` to `to` as a chat message whose body is the URL and which carries it as
    /// out-of-band data (XEP-0066 §3, as XEP-0363 §1 suggests).
    ///
    /// # Errors
    /// The stream's end.
    pub async fn send_file_link(&mut self, to: &Address, url: &str) -> Result<(), DriverError> {
        let id = self.next_id();
        let message = Element::new("message", ns::CLIENT)
            .with_attr("to", super::render(to))
            .with_attr("type", "chat")
            .with_attr("id", id)
            .with_child(Element::new("body", ns::CLIENT).with_text(url))
            .with_child(Element::new("x", OOB).with_child(Element::new("url", OOB).with_text(url)));
        self.send(&message).await
    }

    /// Waits for a message from `from` carrying an out-of-band URL; returns the URL.
    ///
    /// # Errors
    /// [`DriverError::Timeout`] or the stream's end.
    pub async fn wait_file_link(
        &mut self,
        from: &Address,
        bound: Duration,
    ) -> Result<String, DriverError> {
        let wanted = from.clone();
        let received = self
            .wait_where(bound, |received| match &received.wire {
                Form::Xmpp(stanza) => {
                    stanza.name == "message"
                        && oob_url(stanza).is_some()
                        && super::parse_address(stanza.attr("from").unwrap_or_default())
                            .is_ok_and(|sender| sender.bare() == wanted.bare() || sender == wanted)
                }
                _ => false,
            })
            .await
            .map_err(|error| match error.ended {
                Some(ended) => DriverError::Stream(self.describe_end(&ended)),
                None => {
                    DriverError::Timeout(bound, format!("a file link from {}", super::render(from)))
                }
            })?;
        match received.wire {
            Form::Xmpp(stanza) => Ok(oob_url(&stanza).unwrap_or_default()),
            _ => Err(DriverError::Invalid("not an XMPP stanza".into())),
        }
    }
}

/// The URL of a message's XEP-0066 `<x/>`, if it has one.
fn oob_url(stanza: &Element) -> Option<String> {
    stanza
        .child("x", OOB)
        .and_then(|x| x.child("url", OOB))
        .map(|url| url.text().trim().to_string())
        .filter(|url| !url.is_empty())
}

/// `max-file-size` from a disco#info query's XEP-0128 form for XEP-0363.
fn max_file_size(query: &Element) -> Option<u64> {
    query
        .elements()
        .filter(|x| x.is("x", "jabber:x:data"))
        .filter(|x| {
            x.elements().any(|field| {
                field.attr("var") == Some("FORM_TYPE")
                    && field
                        .child("value", "jabber:x:data")
                        .is_some_and(|v| v.text() == UPLOAD)
            })
        })
        .flat_map(|x| x.elements())
        .find(|field| field.attr("var") == Some("max-file-size"))
        .and_then(|field| field.child("value", "jabber:x:data"))
        .and_then(|value| value.text().trim().parse().ok())
}
