//! RFC 4475, the SIP torture test messages: the valid ones (§3.1.1) parse into what they
//! say, the invalid ones (§3.1.2, §3.3) get the answer PROFILE.md §9 gives them.
//!
//! The bodies are the RFC's SDP where it matters little; `XXXX` is their real length where
//! the message is meant to frame correctly.

use imfed_sip::{Limits, Message, parse_datagram, validate_request, validate_response};

mod invalid;
mod layers;
mod valid;

pub(crate) const SDP: &str = "v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

/// What a server does with a datagram: the message if it parses and validates, else the
/// status and reason it answers with.
pub(crate) fn verdict(bytes: &[u8]) -> Result<Message, (u16, String)> {
    let message = parse_datagram(bytes, &Limits::default())
        .map_err(|error| error.status())?
        .expect("a message");
    match &message {
        Message::Request(request) => validate_request(request).map_err(|error| error.status())?,
        Message::Response(response) => {
            validate_response(response).map_err(|error| error.status())?
        }
    }
    Ok(message)
}
