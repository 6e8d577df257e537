//! RVP §3 ("a strict extension of HTTP/1.1"): message framing without I/O.
//!
//! A [`RequestDecoder`] (server side) or [`ResponseDecoder`] (client side) takes bytes in
//! chunks of any size with `feed` and hands back whole messages; `Ok(None)` means "need
//! more bytes", never an error. The head is parsed by `httparse`; bodies are framed by
//! `Content-Length` or `Transfer-Encoding: chunked` (RFC 9112 §6, §7.1). Encoding is
//! [`Request::write_to`] and [`Response::write_to`], which never emit chunked framing.
//!
//! # Strictness and leniency
//!
//! | input | result |
//! | --- | --- |
//! | a head longer than [`Limits::max_head_bytes`], more than [`Limits::max_headers`] fields, a body longer than [`Limits::max_body_bytes`] | [`ParseError::HeadTooLarge`], [`ParseError::TooManyHeaders`], [`ParseError::BodyTooLarge`] |
//! | a malformed start line or field | [`ParseError::Syntax`] |
//! | several spaces between the parts of a request line (`PROPFIND /instmsg/aliases/stevem  HTTP/1.1`, §5.4.1) | accepted |
//! | empty lines before a message (RFC 9112 §2.2) | skipped |
//! | a `Transfer-Encoding` other than `chunked`, or together with `Content-Length` | [`ParseError::UnsupportedTransferEncoding`], [`ParseError::ConflictingFraming`] (RFC 9112 §6.1: a request smuggling risk) |
//! | `Content-Length` repeated with the same value (RFC 9112 §6.3) | accepted |
//! | a request without either framing header | an empty body (RFC 9112 §6.3) |
//! | a response without either: | an empty body by default, as in every RVP example (§5.1.7.1 and others send none and have no body); read to the end of the connection with [`ResponseDecoder::reading_until_close`] |
//! | a 1xx, 204 or 304 response | no body (RFC 9112 §6.3) |
//! | chunk extensions and trailer fields | ignored |
//!
//! After an error the decoder returns the same error on every call; bytes fed after an
//! error or after `finish` are dropped.

mod body;
mod head;

use crate::message::{Request, Response};
use body::BodyState;
use head::{Framed, find_blank_line};

/// Limits that protect a receiver from oversized input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest head (start line and fields, with the blank line), in bytes; also
    /// bounds the trailer section of a chunked body.
    pub max_head_bytes: usize,
    /// The most header fields in one head.
    pub max_headers: usize,
    /// The largest body after decoding, in bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// 16 KiB of head, 64 fields, 1 MiB of body.
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Where the input ended when it ended too early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessagePart {
    /// In the start line or the header fields.
    Head,
    /// In the body.
    Body,
}

/// A framing failure. The connection cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The head is not complete within [`Limits::max_head_bytes`] (or the trailer
    /// section of a chunked body is longer than that).
    #[error("message head longer than {max} bytes")]
    HeadTooLarge {
        /// The limit.
        max: usize,
    },
    /// The head has more than [`Limits::max_headers`] fields.
    #[error("more than {max} header fields")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// The body is longer than [`Limits::max_body_bytes`].
    #[error("body longer than {max} bytes")]
    BodyTooLarge {
        /// The limit.
        max: usize,
    },
    /// The start line or a header field is malformed.
    #[error("malformed message head")]
    Syntax {
        /// What httparse found.
        source: httparse::Error,
    },
    /// The request target is not a URI.
    #[error("invalid request target {target:?}")]
    InvalidTarget {
        /// The target as sent.
        target: String,
    },
    /// The status code is not from 100 to 999.
    #[error("invalid status code {code}")]
    InvalidStatus {
        /// The code as sent.
        code: u16,
    },
    /// A header field the `http` crate does not accept.
    #[error("invalid header field {name:?}")]
    InvalidHeader {
        /// The field name as sent.
        name: String,
    },
    /// `Content-Length` is not a decimal number, or appears with different values.
    #[error("invalid Content-Length {value:?}")]
    InvalidContentLength {
        /// The values as sent, joined by commas.
        value: String,
    },
    /// `Transfer-Encoding` names a coding other than `chunked`, or `chunked` twice.
    #[error("unsupported Transfer-Encoding {value:?}")]
    UnsupportedTransferEncoding {
        /// The values as sent, joined by commas.
        value: String,
    },
    /// Both `Content-Length` and `Transfer-Encoding` are present.
    #[error("both Content-Length and Transfer-Encoding")]
    ConflictingFraming,
    /// The chunked framing of the body is malformed.
    #[error("invalid chunked body: {reason}")]
    InvalidChunk {
        /// What is wrong.
        reason: &'static str,
    },
    /// The input ended (see `finish`) inside a message.
    #[error("input ended inside the message {part:?}")]
    UnexpectedEof {
        /// Where.
        part: MessagePart,
    },
}

/// How to read a response that has neither `Content-Length` nor `Transfer-Encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unframed {
    /// No body.
    Empty,
    /// The rest of the connection.
    UntilClose,
}

/// A message whose head has been read and whose body is arriving.
#[derive(Clone, Debug)]
struct Pending<M> {
    message: M,
    head_len: usize,
    body: BodyState,
}

/// The shared state machine of both decoders.
#[derive(Clone, Debug)]
struct Framer<M> {
    limits: Limits,
    unframed: Unframed,
    buf: Vec<u8>,
    /// Start of the current message in `buf`; bytes before it are consumed.
    pos: usize,
    /// Where to resume looking for the blank line ending the head, relative to `pos`.
    head_scan: usize,
    pending: Option<Pending<M>>,
    eof: bool,
    failed: Option<ParseError>,
}

impl<M: Framed> Framer<M> {
    fn new(limits: Limits, unframed: Unframed) -> Self {
        Framer {
            limits,
            unframed,
            buf: Vec::new(),
            pos: 0,
            head_scan: 0,
            pending: None,
            eof: false,
            failed: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() || self.eof {
            return;
        }
        // Drop consumed bytes once they are at least half the buffer, so copying is
        // amortized over the bytes consumed. Positions are relative to `pos`.
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn next(&mut self) -> Result<Option<M>, ParseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.step();
        if let Err(error) = &result {
            self.failed = Some(error.clone());
        }
        result
    }

    fn step(&mut self) -> Result<Option<M>, ParseError> {
        if self.pending.is_none() {
            match self.parse_head()? {
                Some(pending) => self.pending = Some(pending),
                None => {
                    let rest = &self.buf[self.pos..];
                    if self.eof && rest.iter().any(|b| *b != b'\r' && *b != b'\n') {
                        return Err(ParseError::UnexpectedEof {
                            part: MessagePart::Head,
                        });
                    }
                    return Ok(None);
                }
            }
        }
        let Some((body, consumed)) = self.advance_body()? else {
            if self.eof {
                return Err(ParseError::UnexpectedEof {
                    part: MessagePart::Body,
                });
            }
            return Ok(None);
        };
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let mut message = pending.message;
        message.set_body(body);
        self.pos += consumed;
        self.head_scan = 0;
        Ok(Some(message))
    }

    /// Parses the head once a blank line has arrived (or the limit is reached), and
    /// decides how the body is framed.
    fn parse_head(&mut self) -> Result<Option<Pending<M>>, ParseError> {
        let max = self.limits.max_head_bytes;
        loop {
            let avail = &self.buf[self.pos..];
            let candidate = find_blank_line(avail, self.head_scan);
            let over = avail.len() > max;
            if candidate.is_none() && !over {
                self.head_scan = avail.len().saturating_sub(2);
                return Ok(None);
            }
            let window = &avail[..avail.len().min(max)];
            match M::parse_head(window, self.limits.max_headers)? {
                httparse::Status::Complete((message, head_len)) => {
                    let body = BodyState::new(
                        message.headers(),
                        message.bodiless(),
                        head_len,
                        self.limits,
                        self.unframed,
                    )?;
                    return Ok(Some(Pending {
                        message,
                        head_len,
                        body,
                    }));
                }
                httparse::Status::Partial if over => {
                    return Err(ParseError::HeadTooLarge { max });
                }
                httparse::Status::Partial => match candidate {
                    // Only empty lines so far: look for the next blank line.
                    Some((start, _)) => self.head_scan = start + 1,
                    None => return Ok(None),
                },
            }
        }
    }

    /// Moves the body forward; returns it and the message's total length once complete.
    fn advance_body(&mut self) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
        let avail = &self.buf[self.pos..];
        let Some(pending) = self.pending.as_mut() else {
            return Ok(None);
        };
        pending
            .body
            .advance(avail, pending.head_len, self.limits, self.eof)
    }
}

/// Decodes the requests arriving on a connection (the server side).
#[derive(Clone, Debug)]
pub struct RequestDecoder {
    framer: Framer<Request>,
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            framer: Framer::new(limits, Unframed::Empty),
        }
    }

    /// Appends received bytes. Never fails; bytes after an error or after
    /// [`finish`](Self::finish) are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.framer.feed(bytes);
    }

    /// Marks the end of the input (the peer closed the connection).
    pub fn finish(&mut self) {
        self.framer.eof = true;
    }

    /// The next complete request; `Ok(None)` if more bytes are needed (or the input
    /// ended cleanly between messages).
    ///
    /// # Errors
    /// Any [`ParseError`]; the same error again on every later call.
    pub fn next_request(&mut self) -> Result<Option<Request>, ParseError> {
        self.framer.next()
    }

    /// Bytes received but not yet returned as part of a message.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.framer.limits
    }
}

impl Default for RequestDecoder {
    fn default() -> Self {
        RequestDecoder::new(Limits::default())
    }
}

/// Decodes the responses arriving on a connection (the client side).
#[derive(Clone, Debug)]
pub struct ResponseDecoder {
    framer: Framer<Response>,
}

impl ResponseDecoder {
    /// A decoder enforcing `limits` that reads a response without `Content-Length` or
    /// `Transfer-Encoding` as having no body, as RVP's examples do.
    pub fn new(limits: Limits) -> Self {
        ResponseDecoder {
            framer: Framer::new(limits, Unframed::Empty),
        }
    }

    /// A decoder that reads a response without `Content-Length` or `Transfer-Encoding`
    /// until the connection closes ([`finish`](Self::finish)), as plain HTTP/1.1 does
    /// (RFC 9112 §6.3).
    pub fn reading_until_close(limits: Limits) -> Self {
        ResponseDecoder {
            framer: Framer::new(limits, Unframed::UntilClose),
        }
    }

    /// Appends received bytes. Never fails; bytes after an error or after
    /// [`finish`](Self::finish) are dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.framer.feed(bytes);
    }

    /// Marks the end of the input (the peer closed the connection).
    pub fn finish(&mut self) {
        self.framer.eof = true;
    }

    /// The next complete response; `Ok(None)` if more bytes are needed (or the input
    /// ended cleanly between messages).
    ///
    /// # Errors
    /// Any [`ParseError`]; the same error again on every later call.
    pub fn next_response(&mut self) -> Result<Option<Response>, ParseError> {
        self.framer.next()
    }

    /// Bytes received but not yet returned as part of a message.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.framer.limits
    }
}

impl Default for ResponseDecoder {
    fn default() -> Self {
        ResponseDecoder::new(Limits::default())
    }
}

#[cfg(test)]
mod tests;
