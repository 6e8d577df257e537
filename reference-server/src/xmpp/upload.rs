//! XEP-0363 HTTP File Upload: the server's own upload service, advertised on its domain.
//!
//! A client asks for a slot with `<request xmlns='urn:xmpp:http:upload:0' filename size
//! content-type/>`; the service answers with a PUT URL (and the `Authorization` header the
//! PUT must carry, which binds the slot to the requester) and a GET URL, or with
//! `not-acceptable` and `<file-too-large/>` naming the limit it announces in its
//! service discovery form (§3, §6). The HTTP side (on its own loopback listener) takes one
//! PUT per slot whose length and type are the ones requested, then serves the file to
//! anyone holding the GET URL (the recipient of an XEP-0066 link). The files are kept in
//! memory, bounded in count and in bytes: this is a reference for tests, not storage.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use imfed_xmpp::{Element, StanzaError, StanzaErrorCondition, StanzaErrorType};
use tokio::net::TcpListener;
use tracing::warn;

use super::{State, random_id};
use crate::faults::Switch;

/// The XEP-0363 namespace.
pub const NS: &str = "urn:xmpp:http:upload:0";
/// Slots kept at most; more requests get `resource-constraint`.
const MAX_SLOTS: usize = 1024;
/// Bytes kept at most, over all files.
const MAX_STORED: u64 = 256 * 1024 * 1024;

/// One slot: what was asked for, and the file once it is uploaded.
#[derive(Debug)]
struct Slot {
    filename: String,
    size: u64,
    content_type: Option<String>,
    /// The `Authorization` value the PUT must carry.
    token: String,
    data: Option<Bytes>,
}

/// A refused slot request: the stanza error, and the XEP-0363 condition that goes in it.
#[derive(Debug)]
pub struct Refusal {
    /// The stanza error.
    pub error: StanzaError,
    /// `<file-too-large/>` (§6), when that is why.
    pub extra: Option<Element>,
}

/// The upload service's state.
#[derive(Debug)]
pub struct Uploads {
    /// Where its HTTP listener is, `http://127.0.0.1:PORT`.
    base: Mutex<String>,
    /// The largest file it accepts (announced in disco#info).
    pub max_bytes: u64,
    slots: Mutex<HashMap<String, Slot>>,
}

impl Uploads {
    /// A service accepting files up to `max_bytes`; its URL is set once it listens.
    pub fn new(max_bytes: u64) -> Self {
        Uploads {
            base: Mutex::new(String::new()),
            max_bytes,
            slots: Mutex::default(),
        }
    }

    /// Sets the base URL of the HTTP listener.
    pub fn set_base(&self, base: String) {
        *self.base.lock().expect("upload lock") = base;
    }

    /// Forgets every slot and file.
    pub fn clear(&self) {
        self.slots.lock().expect("upload lock").clear();
    }

    /// The XEP-0128 form of the service's disco#info (§3): its namespace and limit.
    pub fn disco_form(&self) -> Element {
        let field = |var: &str, value: &str| {
            Element::new("field", "jabber:x:data")
                .with_attr("var", var)
                .with_child(Element::new("value", "jabber:x:data").with_text(value))
        };
        Element::new("x", "jabber:x:data")
            .with_attr("type", "result")
            .with_child(field("FORM_TYPE", NS).with_attr("type", "hidden"))
            .with_child(field("max-file-size", &self.max_bytes.to_string()))
    }

    /// The answer to a slot request `request` (the `<request/>` child of an iq set or get):
    /// the `<slot/>` element, or the error to return with the application-specific
    /// condition that goes in it.
    /// With `ignore_limit` (misbehaviour only), a slot over the limit is granted.
    pub fn request(&self, request: &Element, ignore_limit: bool) -> Result<Element, Box<Refusal>> {
        let bad = |text: &str| {
            let mut error = StanzaError::new(StanzaErrorCondition::BadRequest);
            error.text = Some(text.to_string());
            Box::new(Refusal { error, extra: None })
        };
        let filename = request
            .attr("filename")
            .filter(|name| !name.is_empty())
            .ok_or_else(|| bad("a slot request needs a filename"))?;
        if filename.contains(['/', '\\']) || filename == "." || filename == ".." {
            return Err(bad("the filename must not contain a path"));
        }
        let size: u64 = request
            .attr("size")
            .and_then(|size| size.parse().ok())
            .ok_or_else(|| bad("a slot request needs its size in bytes"))?;
        if size > self.max_bytes && !ignore_limit {
            let mut error = StanzaError::new(StanzaErrorCondition::NotAcceptable);
            error.error_type = StanzaErrorType::Modify;
            error.text = Some(format!(
                "File too large. The maximum file size is {} bytes",
                self.max_bytes
            ));
            let too_large = Element::new("file-too-large", NS).with_child(
                Element::new("max-file-size", NS).with_text(self.max_bytes.to_string()),
            );
            return Err(Box::new(Refusal {
                error,
                extra: Some(too_large),
            }));
        }
        let mut slots = self.slots.lock().expect("upload lock");
        let stored: u64 = slots.values().map(|slot| slot.size).sum();
        if slots.len() >= MAX_SLOTS || stored + size > MAX_STORED {
            return Err(Box::new(Refusal {
                error: StanzaError::new(StanzaErrorCondition::ResourceConstraint),
                extra: None,
            }));
        }
        let id = random_id(24);
        let token = format!("Bearer {}", random_id(32));
        slots.insert(
            id.clone(),
            Slot {
                filename: filename.to_string(),
                size,
                content_type: request.attr("content-type").map(str::to_string),
                token: token.clone(),
                data: None,
            },
        );
        let url = format!(
            "{}/upload/{id}/{}",
            self.base.lock().expect("upload lock"),
            percent_encode(filename)
        );
        Ok(Element::new("slot", NS)
            .with_child(
                Element::new("put", NS).with_attr("url", &url).with_child(
                    Element::new("header", NS)
                        .with_attr("name", "Authorization")
                        .with_text(token),
                ),
            )
            .with_child(Element::new("get", NS).with_attr("url", url)))
    }
}

/// Percent-encodes what a URL path segment cannot carry as it is (RFC 3986 §2.1).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Serves the HTTP side until the server shuts down.
pub async fn serve(state: State, listener: TcpListener) {
    let shutdown = state.shutdown.clone();
    // A body may be as large as the largest slot (axum's default limit is 2 MB).
    let limit = usize::try_from(state.xmpp.uploads.max_bytes).unwrap_or(usize::MAX);
    let app = Router::new()
        .route("/upload/{id}/{name}", put(put_file).get(get_file))
        .layer(DefaultBodyLimit::max(limit.saturating_add(1)))
        .with_state(state);
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        warn!(%error, "upload service stopped");
    }
}

/// PUT: the slot's one upload, with its token, its size and its type (XEP-0363 §7).
async fn put_file(
    AxumState(state): AxumState<State>,
    Path((id, _name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let uploads = &state.xmpp.uploads;
    let mut slots = uploads.slots.lock().expect("upload lock");
    let Some(slot) = slots.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, "no such slot").into_response();
    };
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(slot.token.as_str());
    let lenient = state
        .faults
        .on(Switch::UploadAcceptsAnyPut, Default::default());
    if !authorized && !lenient {
        return (
            StatusCode::FORBIDDEN,
            "this slot belongs to the user who requested it",
        )
            .into_response();
    }
    if slot.data.is_some() && !lenient {
        return (StatusCode::CONFLICT, "the file was already uploaded").into_response();
    }
    if body.len() as u64 != slot.size {
        return (
            StatusCode::BAD_REQUEST,
            format!("the slot is for {} bytes, not {}", slot.size, body.len()),
        )
            .into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    if let Some(wanted) = &slot.content_type
        && content_type != Some(wanted.as_str())
    {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the slot is for {wanted}"),
        )
            .into_response();
    }
    slot.data = Some(body);
    StatusCode::CREATED.into_response()
}

/// GET: the file, with its type, to anyone holding the URL; 404 for anything else.
async fn get_file(
    AxumState(state): AxumState<State>,
    Path((id, _name)): Path<(String, String)>,
) -> Response {
    let slots = state.xmpp.uploads.slots.lock().expect("upload lock");
    let fault = |switch: Switch| state.faults.on(switch, Default::default());
    match slots.get(&id) {
        Some(Slot {
            data: Some(data),
            content_type,
            filename,
            ..
        }) => {
            let content_type = content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into());
            (
                [
                    (header::CONTENT_TYPE, content_type),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}\"", filename.replace('"', "")),
                    ),
                ],
                if fault(Switch::UploadCorruptsFiles) {
                    let mut corrupt = data.to_vec();
                    if let Some(last) = corrupt.last_mut() {
                        *last ^= 0x01;
                    }
                    Bytes::from(corrupt)
                } else {
                    data.clone()
                },
            )
                .into_response()
        }
        _ if fault(Switch::UploadServesUnknownSlots) => StatusCode::OK.into_response(),
        _ => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// Whether `stanza` is a slot request (XEP-0363 §4).
pub fn is_request(stanza: &Element) -> Option<&Element> {
    stanza.child("request", NS).filter(|_| {
        stanza
            .attr("type")
            .is_some_and(|t| t == "get" || t == "set")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(size: u64) -> Element {
        Element::new("request", NS)
            .with_attr("filename", "a song.ogg")
            .with_attr("size", size.to_string())
            .with_attr("content-type", "audio/ogg")
    }

    #[test]
    fn slots_within_the_limit_and_file_too_large_beyond_it() {
        let uploads = Uploads::new(1000);
        uploads.set_base("http://127.0.0.1:1".into());
        let slot = uploads.request(&request(1000), false).expect("a slot");
        let put = slot.child("put", NS).expect("put");
        assert!(put.attr("url").unwrap().ends_with("/a%20song.ogg"));
        assert!(
            put.child("header", NS)
                .unwrap()
                .text()
                .starts_with("Bearer ")
        );
        let refusal = uploads.request(&request(1001), false).unwrap_err();
        assert!(
            uploads.request(&request(1001), true).is_ok(),
            "misbehaviour"
        );
        assert_eq!(refusal.error.condition, StanzaErrorCondition::NotAcceptable);
        let extra = refusal.extra.expect("file-too-large");
        assert_eq!(extra.child("max-file-size", NS).unwrap().text(), "1000");
        let mut no_name = request(1);
        no_name.remove_attr("filename");
        assert!(uploads.request(&no_name, false).is_err());
        let mut path = request(1);
        path.set_attr("filename", "../etc/passwd");
        assert!(uploads.request(&path, false).is_err());
    }
}
