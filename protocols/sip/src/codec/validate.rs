//! RFC 3261 §8.1.1, §8.2 and §16.3 step 1: the checks a server makes on a request that
//! frames correctly before it processes it, and a client on a response.

use super::ParseError;
use crate::headers::{HeaderError, Headers};
use crate::message::{Request, Response};

/// The headers every request and response carries (§8.1.1, §20: "mandatory" in both).
const MANDATORY: [&str; 5] = ["Via", "To", "From", "Call-ID", "CSeq"];

/// Headers that appear at most once (RFC 4475 §3.3.8 repeats each of them).
const SINGLE: [&str; 5] = ["To", "From", "Call-ID", "CSeq", "Max-Forwards"];

fn check_common(headers: &Headers) -> Result<(), ParseError> {
    for name in MANDATORY {
        if !headers.contains(name) {
            return Err(ParseError::MissingHeader { name });
        }
    }
    for name in SINGLE {
        let count = headers.count(name);
        if count > 1 {
            return Err(HeaderError::Repeated { name, count }.into());
        }
    }
    headers.vias()?;
    headers.to()?;
    headers.from()?;
    let call_id = headers.call_id().unwrap_or_default();
    if call_id.is_empty() || call_id.contains([' ', '\t']) {
        return Err(HeaderError::invalid("Call-ID", call_id, "empty or with whitespace").into());
    }
    headers.cseq()?;
    Ok(())
}

/// Checks a request's mandatory headers (§8.1.1: Via, To, From, Call-ID, CSeq): present,
/// not repeated where they may appear once, parseable; that the CSeq method is the
/// request's (§8.1.1.5, §16.3 step 1); and that `Max-Forwards`, when present, is a number
/// from 0 to 255 (§20.22). A missing `Max-Forwards` is allowed: a proxy adds one (§16.6
/// step 3).
///
/// # Errors
/// [`ParseError::MissingHeader`], [`ParseError::Header`] or
/// [`ParseError::CSeqMethodMismatch`]; [`ParseError::status`] gives the `400` to answer.
pub fn validate_request(request: &Request) -> Result<(), ParseError> {
    check_common(&request.headers)?;
    let cseq = request.headers.cseq()?;
    if cseq.method != request.method {
        return Err(ParseError::CSeqMethodMismatch {
            cseq: cseq.method.to_string(),
            method: request.method.to_string(),
        });
    }
    if let Some(value) = request.headers.get("Max-Forwards") {
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        if !digits || !value.parse::<u16>().is_ok_and(|hops| hops <= 255) {
            return Err(
                HeaderError::invalid("Max-Forwards", value, "not a number from 0 to 255").into(),
            );
        }
    }
    Ok(())
}

/// Checks a response's mandatory headers (Via, To, From, Call-ID, CSeq): present, not
/// repeated where they may appear once, parseable. A client discards a response that
/// fails (RFC 4475 §3.1.2.5).
///
/// # Errors
/// [`ParseError::MissingHeader`] or [`ParseError::Header`].
pub fn validate_response(response: &Response) -> Result<(), ParseError> {
    check_common(&response.headers)
}
