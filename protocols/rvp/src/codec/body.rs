//! RFC 9112 §6 and §7 (message body length, chunked transfer coding): framing the body
//! of a message by Content-Length, chunks, or the end of the connection.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName};

use super::{Limits, ParseError, Unframed};

/// The longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 1024;

/// Where the chunked decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChunkPhase {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data.
    Data { remaining: usize },
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailer { bytes: usize },
}

/// How the body of the message being read is framed, and how far it has got.
#[derive(Clone, Debug)]
pub(super) enum BodyState {
    /// `Content-Length` (or no body: 0).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked {
        /// Next byte to read, relative to the message start.
        cursor: usize,
        phase: ChunkPhase,
        /// The data of the chunks so far.
        body: Vec<u8>,
    },
    /// Until the end of the connection.
    UntilClose,
}

impl BodyState {
    /// How the body of a message with `headers` is framed (RFC 9112 §6.3).
    pub(super) fn new(
        headers: &HeaderMap,
        bodiless: bool,
        head_len: usize,
        limits: Limits,
        unframed: Unframed,
    ) -> Result<BodyState, ParseError> {
        if bodiless {
            return Ok(BodyState::Length(0));
        }
        let max = limits.max_body_bytes;
        let codings = joined(headers, &TRANSFER_ENCODING);
        let lengths = joined(headers, &CONTENT_LENGTH);
        if let Some(codings) = codings {
            if lengths.is_some() {
                return Err(ParseError::ConflictingFraming);
            }
            let items: Vec<&str> = codings
                .split(',')
                .map(|item| item.trim_matches([' ', '\t']))
                .filter(|item| !item.is_empty())
                .collect();
            if items.len() != 1 || !items[0].eq_ignore_ascii_case("chunked") {
                return Err(ParseError::UnsupportedTransferEncoding { value: codings });
            }
            return Ok(BodyState::Chunked {
                cursor: head_len,
                phase: ChunkPhase::Size,
                body: Vec::new(),
            });
        }
        if let Some(lengths) = lengths {
            let mut length: Option<&str> = None;
            for item in lengths
                .split(',')
                .map(|item| item.trim_matches([' ', '\t']))
            {
                let digits = item.trim_start_matches('0');
                let digits = if digits.is_empty() && !item.is_empty() {
                    "0"
                } else {
                    digits
                };
                if digits.is_empty()
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                    || length.is_some_and(|seen| seen != digits)
                {
                    return Err(ParseError::InvalidContentLength { value: lengths });
                }
                length = Some(digits);
            }
            return match length.and_then(|digits| digits.parse::<usize>().ok()) {
                Some(length) if length <= max => Ok(BodyState::Length(length)),
                _ => Err(ParseError::BodyTooLarge { max }),
            };
        }
        Ok(match unframed {
            Unframed::Empty => BodyState::Length(0),
            Unframed::UntilClose => BodyState::UntilClose,
        })
    }

    /// Moves the body forward over `avail` (the message from its first byte); returns
    /// the body and the message's total length once complete.
    pub(super) fn advance(
        &mut self,
        avail: &[u8],
        head_len: usize,
        limits: Limits,
        eof: bool,
    ) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
        match self {
            BodyState::Length(length) => {
                let end = head_len + *length;
                Ok((avail.len() >= end).then(|| (avail[head_len..end].to_vec(), end)))
            }
            BodyState::UntilClose => {
                if avail.len() - head_len > limits.max_body_bytes {
                    return Err(ParseError::BodyTooLarge {
                        max: limits.max_body_bytes,
                    });
                }
                Ok(eof.then(|| (avail[head_len..].to_vec(), avail.len())))
            }
            BodyState::Chunked {
                cursor,
                phase,
                body,
            } => {
                if advance_chunked(avail, cursor, phase, body, limits)? {
                    Ok(Some((std::mem::take(body), *cursor)))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// Runs the chunked-body state machine over `avail`; `true` once the body is complete.
fn advance_chunked(
    avail: &[u8],
    cursor: &mut usize,
    phase: &mut ChunkPhase,
    body: &mut Vec<u8>,
    limits: Limits,
) -> Result<bool, ParseError> {
    loop {
        let rest = &avail[*cursor..];
        match *phase {
            ChunkPhase::Size => {
                let newline = rest.iter().position(|b| *b == b'\n');
                let line_len = newline.unwrap_or(rest.len());
                if line_len > MAX_CHUNK_LINE {
                    return Err(ParseError::InvalidChunk {
                        reason: "chunk-size line too long",
                    });
                }
                let Some(newline) = newline else {
                    return Ok(false);
                };
                let line = rest[..newline]
                    .strip_suffix(b"\r")
                    .unwrap_or(&rest[..newline]);
                let size = chunk_size(line, limits.max_body_bytes)?;
                if body.len().saturating_add(size) > limits.max_body_bytes {
                    return Err(ParseError::BodyTooLarge {
                        max: limits.max_body_bytes,
                    });
                }
                *cursor += newline + 1;
                *phase = if size == 0 {
                    ChunkPhase::Trailer { bytes: 0 }
                } else {
                    ChunkPhase::Data { remaining: size }
                };
            }
            ChunkPhase::Data { remaining } => {
                let take = remaining.min(rest.len());
                body.extend_from_slice(&rest[..take]);
                *cursor += take;
                if take < remaining {
                    *phase = ChunkPhase::Data {
                        remaining: remaining - take,
                    };
                    return Ok(false);
                }
                *phase = ChunkPhase::DataEnd;
            }
            ChunkPhase::DataEnd => match rest {
                [] | [b'\r'] => return Ok(false),
                [b'\n', ..] => {
                    *cursor += 1;
                    *phase = ChunkPhase::Size;
                }
                [b'\r', b'\n', ..] => {
                    *cursor += 2;
                    *phase = ChunkPhase::Size;
                }
                _ => {
                    return Err(ParseError::InvalidChunk {
                        reason: "chunk data not followed by CRLF",
                    });
                }
            },
            ChunkPhase::Trailer { bytes } => {
                let newline = rest.iter().position(|b| *b == b'\n');
                let seen = bytes + newline.map_or(rest.len(), |n| n + 1);
                if seen > limits.max_head_bytes {
                    return Err(ParseError::HeadTooLarge {
                        max: limits.max_head_bytes,
                    });
                }
                let Some(newline) = newline else {
                    return Ok(false);
                };
                *cursor += newline + 1;
                if rest[..newline]
                    .strip_suffix(b"\r")
                    .unwrap_or(&rest[..newline])
                    .is_empty()
                {
                    return Ok(true);
                }
                *phase = ChunkPhase::Trailer { bytes: seen };
            }
        }
    }
}

/// Parses `chunk-size [ chunk-ext ]` (RFC 9112 §7.1.1); extensions are ignored.
fn chunk_size(line: &[u8], max: usize) -> Result<usize, ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ParseError::InvalidChunk {
            reason: "missing chunk size",
        });
    }
    let after = &line[digits..];
    let ext = after
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .map_or(&after[after.len()..], |at| &after[at..]);
    if !(ext.is_empty() || ext[0] == b';')
        || line.iter().any(|b| b.is_ascii_control() && *b != b'\t')
    {
        return Err(ParseError::InvalidChunk {
            reason: "invalid chunk-size line",
        });
    }
    let hex = &line[..digits];
    let significant = &hex[hex.iter().take_while(|b| **b == b'0').count()..];
    let mut size: usize = 0;
    for byte in significant {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => byte - b'A' + 10,
        };
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(usize::from(digit)))
            .filter(|s| *s <= max)
            .ok_or(ParseError::BodyTooLarge { max })?;
    }
    Ok(size)
}

/// All values of `name` joined by commas, or `None` if absent.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}
