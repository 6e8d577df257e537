//! RFC 3261 §18.3 and §7.5: framing messages on a byte stream (TCP), where
//! `Content-Length` is mandatory and CRLFs between messages are keep-alives (RFC 5626
//! §3.5.1).

use super::head::{self, StartLine};
use super::{Limits, ParseError};
use crate::headers::Headers;
use crate::message::Message;

/// A message whose head is complete and whose body is arriving.
#[derive(Clone, Debug)]
struct Pending {
    /// The head with its empty line, in bytes.
    head_len: usize,
    /// The declared body length.
    body_len: usize,
    /// The head, parsed, or why it does not parse (reported once the body is skipped).
    parsed: Result<(StartLine, Headers), ParseError>,
}

/// Decodes the messages arriving on a stream: feed bytes in chunks of any size, take whole
/// messages out. Never blocks, never reads a socket.
///
/// After an error whose [`framing_lost`](ParseError::framing_lost) is true the decoder
/// returns it on every later call and drops what is fed; after another error it has
/// skipped the bad message and goes on. [`rejected`](Self::rejected) holds the bytes the
/// last error was about, for [`salvage`](super::salvage).
#[derive(Clone, Debug)]
pub struct StreamDecoder {
    limits: Limits,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    /// Where to resume looking for the end of the head, relative to `pos`.
    scan: usize,
    pending: Option<Pending>,
    failed: Option<ParseError>,
    rejected: Option<Vec<u8>>,
    /// Line ends skipped since the last message; two make a keep-alive ping.
    blank_lines: usize,
    keepalive: bool,
}

impl StreamDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> StreamDecoder {
        StreamDecoder {
            limits,
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            pending: None,
            failed: None,
            rejected: None,
            blank_lines: 0,
            keepalive: false,
        }
    }

    /// Appends received bytes (dropped after an error that lost the framing).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Drop consumed bytes once they are at least half the buffer, so copying is
        // amortized over the bytes consumed; every position is relative to `pos`.
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as part of a message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether a double-CRLF keep-alive ping (RFC 5626 §3.5.1) arrived since the last
    /// call; the answer to one is a single CRLF.
    pub fn take_keepalive(&mut self) -> bool {
        std::mem::take(&mut self.keepalive)
    }

    /// The bytes of the message (or, when the framing is lost, of the unread input, up to
    /// [`Limits::max_message`]) that the last error was about.
    pub fn rejected(&self) -> Option<&[u8]> {
        self.rejected.as_deref()
    }

    /// The next whole message; `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// A [`ParseError`] for a message that does not parse (the decoder goes on with the
    /// next one) or for a stream whose framing is lost (returned again on every call).
    pub fn next_message(&mut self) -> Result<Option<Message>, ParseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.pending.is_none() {
            match self.read_head() {
                Ok(Some(pending)) => self.pending = Some(pending),
                Ok(None) => return Ok(None),
                Err(error) => return Err(self.fail(error)),
            }
        }
        let Some(pending) = &self.pending else {
            return Ok(None);
        };
        let total = pending.head_len + pending.body_len;
        if self.buffered() < total {
            return Ok(None);
        }
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let start = self.pos;
        self.pos += total;
        self.scan = 0;
        self.blank_lines = 0;
        match pending.parsed {
            Ok((start_line, headers)) => {
                let body = self.buf[start + pending.head_len..start + total].to_vec();
                Ok(Some(start_line.into_message(headers, body)))
            }
            Err(error) => {
                self.rejected = Some(self.buf[start..start + total].to_vec());
                Err(error)
            }
        }
    }

    /// Skips keep-alives and reads the next head once it is complete.
    fn read_head(&mut self) -> Result<Option<Pending>, ParseError> {
        while let Some(&byte) = self.buf.get(self.pos) {
            match byte {
                b'\n' => {
                    self.blank_lines += 1;
                    if self.blank_lines >= 2 {
                        self.keepalive = true;
                        self.blank_lines = 0;
                    }
                }
                b'\r' => {}
                _ => break,
            }
            self.pos += 1;
            self.scan = 0;
        }
        let max = self.limits.max_message;
        let available = &self.buf[self.pos..];
        if available.is_empty() {
            return Ok(None);
        }
        let Some((head_len, with_blank)) = head::find_head_end(available, self.scan) else {
            if available.len() > max {
                return Err(ParseError::TooLarge { max });
            }
            let line_start = available
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |lf| lf + 1);
            if available.len() - line_start > self.limits.max_line + 1 {
                return Err(ParseError::LineTooLong {
                    max: self.limits.max_line,
                });
            }
            self.scan = available.len().saturating_sub(2);
            return Ok(None);
        };
        if with_blank > max {
            return Err(ParseError::TooLarge { max });
        }
        let head = &available[..head_len];
        let parsed = head::parse_head(head, &self.limits);
        let body_len = match &parsed {
            Err(error) if error.framing_lost() => return Err(error.clone()),
            Ok((_, headers)) => head::content_length(headers)?,
            Err(_) => head::lenient_content_length(head)?,
        }
        .ok_or(ParseError::MissingContentLength)?;
        if body_len > max - with_blank {
            return Err(ParseError::TooLarge { max });
        }
        Ok(Some(Pending {
            head_len: with_blank,
            body_len,
            parsed,
        }))
    }

    /// Records an error that loses the framing.
    fn fail(&mut self, error: ParseError) -> ParseError {
        let end = self.buf.len().min(self.pos + self.limits.max_message);
        self.rejected = Some(self.buf[self.pos..end].to_vec());
        self.failed = Some(error.clone());
        self.buf.clear();
        self.pos = 0;
        error
    }
}

impl Default for StreamDecoder {
    fn default() -> StreamDecoder {
        StreamDecoder::new(Limits::default())
    }
}
