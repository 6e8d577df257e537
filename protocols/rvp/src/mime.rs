//! RVP §10: the MIME payloads carried in `mime-data`: a header block, a blank line and a
//! body (instant messages, typing notices, and anything else kept as headers + body).
//!
//! Parsing accepts CRLF or LF line ends (an XML parser hands CDATA over with LF, XML 1.0
//! §2.11), unfolds continuation lines (RFC 5322 §2.2.3), skips whitespace before the first
//! header (the text inside an indented `mime-data` element), and takes a header block with
//! no blank line after it as having an empty body. Writing uses CRLF.

use std::fmt;

/// A payload that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    /// The payload is empty or only whitespace.
    #[error("empty MIME payload")]
    Empty,
    /// A header line without a colon or with an invalid name (the typing example of §10.2
    /// writes `MIME-Version 1.0`).
    #[error("malformed MIME header line {line:?}")]
    MalformedHeader {
        /// The line as found.
        line: String,
    },
    /// A `Content-Type` that is not `type/subtype` with parameters.
    #[error("invalid Content-Type {value:?}")]
    InvalidContentType {
        /// The value as found.
        value: String,
    },
}

/// `text/plain`: an instant message (§10.1).
pub const TEXT_PLAIN: &str = "text/plain";
/// `text/x-msmsgscontrol`: a typing notice (§10.2), or without `TypingUser` a
/// conversation join (Net::RVP).
pub const CONTROL: &str = "text/x-msmsgscontrol";
/// The spelling §10.2 prints (an erratum); read as [`CONTROL`], never written.
pub const CONTROL_MISSPELLED: &str = "text/x-msmsscontrol";
/// `text/x-msmsgsinvite`: an application invitation (§10.3).
pub const INVITE: &str = "text/x-msmsgsinvite";
/// `text/x-imleave`: a participant leaves a conversation (Net::RVP; not in the text).
pub const LEAVE: &str = "text/x-imleave";

/// A MIME entity as RVP carries it: header fields in order, then the body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MimePayload {
    /// The header fields, names as written, values unfolded and trimmed.
    pub headers: Vec<(String, String)>,
    /// Everything after the blank line, as is.
    pub body: String,
}

impl MimePayload {
    /// Parses a payload.
    ///
    /// # Errors
    /// [`MimeError::Empty`] for an empty payload, [`MimeError::MalformedHeader`] for a
    /// header line that is not `name: value`.
    pub fn parse(text: &str) -> Result<MimePayload, MimeError> {
        let text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        if text.is_empty() {
            return Err(MimeError::Empty);
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut rest = text;
        loop {
            let (line, after, ended) = match rest.find('\n') {
                Some(at) => (&rest[..at], &rest[at + 1..], false),
                None => (rest, "", true),
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            rest = after;
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                // A continuation line: the first line cannot be one (leading whitespace
                // was skipped), so there is always a field to extend.
                if let Some((_, value)) = headers.last_mut() {
                    value.push_str(line);
                }
            } else {
                let (name, value) = line.split_once(':').ok_or_else(|| malformed(line))?;
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(malformed(line));
                }
                headers.push((name.to_string(), value.to_string()));
            }
            if ended {
                break;
            }
        }
        for (_, value) in &mut headers {
            *value = value.trim_matches([' ', '\t']).to_string();
        }
        Ok(MimePayload {
            headers,
            body: rest.to_string(),
        })
    }

    /// The first value of the header `name` (matched without regard to case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The parsed `Content-Type`, if there is one.
    ///
    /// # Errors
    /// [`MimeError::InvalidContentType`] if it does not parse.
    pub fn content_type(&self) -> Result<Option<ContentType>, MimeError> {
        self.header("Content-Type")
            .map(ContentType::parse)
            .transpose()
    }

    /// The payload as text: `name: value` lines, a blank line and the body, with CRLF.
    /// Line breaks inside header values are written as spaces.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.extend(
                value
                    .chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
            );
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out
    }
}

impl fmt::Display for MimePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn malformed(line: &str) -> MimeError {
    MimeError::MalformedHeader {
        line: line.to_string(),
    }
}

/// A `Content-Type` value: the media type (lower-case) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lower-case.
    pub media_type: String,
    /// Parameters in order: names lower-case, values unquoted.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    /// A media type without parameters.
    pub fn new(media_type: &str) -> ContentType {
        ContentType {
            media_type: media_type.to_ascii_lowercase(),
            params: Vec::new(),
        }
    }

    /// Parses `type/subtype *(; name=value)`; parameters without `=` are ignored.
    ///
    /// # Errors
    /// [`MimeError::InvalidContentType`] if the media type is not `type/subtype`.
    pub fn parse(value: &str) -> Result<ContentType, MimeError> {
        let mut parts = value.split(';');
        let media_type = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let valid = media_type.split_once('/').is_some_and(|(kind, subtype)| {
            [kind, subtype].iter().all(|part| {
                !part.is_empty() && part.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
            })
        });
        if !valid {
            return Err(MimeError::InvalidContentType {
                value: value.to_string(),
            });
        }
        let params = parts
            .filter_map(|param| {
                let (name, value) = param.split_once('=')?;
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                Some((name.trim().to_ascii_lowercase(), value.to_string()))
            })
            .collect();
        Ok(ContentType { media_type, params })
    }

    /// The value of parameter `name` (matched without regard to case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(param, _)| param.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.media_type)?;
        for (name, value) in &self.params {
            write!(f, "; {name}={value}")?;
        }
        Ok(())
    }
}

/// An instant message (§10.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstantMessage {
    /// The `charset` parameter of the Content-Type (`UTF-8`).
    pub charset: Option<String>,
    /// `Session-Id`: the conversation, a GUID chosen by the sender.
    pub session_id: Option<String>,
    /// `X-MMS-IM-Format`: font and colour (`FN=Microsoft%20Sans%20Serif; EF=; CO=0; CS=0; PF=22`).
    pub format: Option<String>,
    /// The text.
    pub text: String,
}

/// A `text/x-msmsgscontrol` payload (§10.2): a typing notice when it names a
/// `TypingUser`, else a conversation join.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// `TypingUser`: who is typing (`bruceb@example.com`).
    pub typing_user: Option<String>,
    /// `Session-Id`: the conversation.
    pub session_id: Option<String>,
}

/// A payload by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `text/plain` (also a payload without Content-Type, RFC 2045 §5.2).
    Text(InstantMessage),
    /// `text/x-msmsgscontrol` (or the spelling §10.2 prints).
    Control(Control),
    /// Any other content type (invitations, leave notices, ...), as headers and body.
    Other(MimePayload),
}

impl Payload {
    /// Parses a payload and classifies it by content type.
    ///
    /// # Errors
    /// As [`MimePayload::parse`], and [`MimeError::InvalidContentType`].
    pub fn parse(text: &str) -> Result<Payload, MimeError> {
        Payload::from_mime(MimePayload::parse(text)?)
    }

    /// Classifies a parsed payload by content type.
    ///
    /// # Errors
    /// [`MimeError::InvalidContentType`] if its Content-Type does not parse.
    pub fn from_mime(mime: MimePayload) -> Result<Payload, MimeError> {
        let content_type = mime
            .content_type()?
            .unwrap_or_else(|| ContentType::new(TEXT_PLAIN));
        let session_id = mime.header("Session-Id").map(str::to_string);
        Ok(match content_type.media_type.as_str() {
            TEXT_PLAIN => Payload::Text(InstantMessage {
                charset: content_type.param("charset").map(str::to_string),
                session_id,
                format: mime.header("X-MMS-IM-Format").map(str::to_string),
                text: mime.body,
            }),
            CONTROL | CONTROL_MISSPELLED => Payload::Control(Control {
                typing_user: mime.header("TypingUser").map(str::to_string),
                session_id,
            }),
            _ => Payload::Other(mime),
        })
    }

    /// The payload as a MIME entity, headers in the order of §10.
    pub fn to_mime(&self) -> MimePayload {
        let mut headers = vec![("MIME-Version".to_string(), "1.0".to_string())];
        let mut push = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                headers.push((name.to_string(), value.clone()));
            }
        };
        match self {
            Payload::Text(message) => {
                let mut content_type = ContentType::new(TEXT_PLAIN);
                if let Some(charset) = &message.charset {
                    content_type
                        .params
                        .push(("charset".into(), charset.clone()));
                }
                push("Content-Type", &Some(content_type.to_string()));
                push("X-MMS-IM-Format", &message.format);
                push("Session-Id", &message.session_id);
                MimePayload {
                    headers,
                    body: message.text.clone(),
                }
            }
            Payload::Control(control) => {
                push("Content-Type", &Some(CONTROL.to_string()));
                push("TypingUser", &control.typing_user);
                push("Session-Id", &control.session_id);
                MimePayload {
                    headers,
                    body: String::new(),
                }
            }
            Payload::Other(mime) => mime.clone(),
        }
    }

    /// The payload as text; see [`MimePayload::to_text`].
    pub fn to_text(&self) -> String {
        self.to_mime().to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §10.1, with the printed line wrap inside X-MMS-IM-Format joined.
    const IM: &str = "MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=UTF-8\r\n\
        X-MMS-IM-Format: FN=Microsoft%20Sans%20Serif; EF=; CO=0; CS=0; PF=22\r\n\
        Session-Id: {79FC61B5-1234-1234-8A10-941F33CA4C90}\r\n\
        \r\n\
        Lets have lunch";

    #[test]
    fn section_10_1_instant_message() {
        let payload = Payload::parse(IM).unwrap();
        let expected = InstantMessage {
            charset: Some("UTF-8".into()),
            session_id: Some("{79FC61B5-1234-1234-8A10-941F33CA4C90}".into()),
            format: Some("FN=Microsoft%20Sans%20Serif; EF=; CO=0; CS=0; PF=22".into()),
            text: "Lets have lunch".into(),
        };
        assert_eq!(payload, Payload::Text(expected));
        assert_eq!(payload.to_text(), IM);
    }

    #[test]
    fn section_10_2_typing_as_printed_and_fixed() {
        let printed = "MIME-Version 1.0\nContent-Type: text/x-msmsscontrol\n\
            TypingUser: bruceb@example.com\nSession-Id: {79FC6B5-1234-1234-8A0-941F33CA4C90}\n\n";
        assert_eq!(
            Payload::parse(printed),
            Err(MimeError::MalformedHeader {
                line: "MIME-Version 1.0".into()
            })
        );
        let fixed = printed.replacen("MIME-Version 1.0", "MIME-Version: 1.0", 1);
        let payload = Payload::parse(&fixed).unwrap();
        let control = Control {
            typing_user: Some("bruceb@example.com".into()),
            session_id: Some("{79FC6B5-1234-1234-8A0-941F33CA4C90}".into()),
        };
        assert_eq!(payload, Payload::Control(control.clone()));
        // Written with the spelling real clients use.
        assert!(
            payload
                .to_text()
                .contains("Content-Type: text/x-msmsgscontrol\r\n")
        );
        assert_eq!(Payload::parse(&payload.to_text()).unwrap(), payload);
    }

    #[test]
    fn section_10_3_invitations_are_kept_as_headers_and_body() {
        let text = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\
            Session-Id: {79FC61B5-1234-1234-8A10-941F33CA4C90}\r\n\r\n\
            Application-Name: NetMeeting.3.01\r\n\
            Application-GUID: {44BBA842-CC51-11CF-AAFA-00AA00B6015C}\r\n\
            Invitation-Command: INVITE\r\nInvitation-Cookie: 3\r\n\r\n\r\n";
        let Payload::Other(mime) = Payload::parse(text).unwrap() else {
            panic!("not kept as other");
        };
        let content_type = mime.content_type().unwrap().unwrap();
        assert_eq!(content_type.media_type, INVITE);
        assert_eq!(content_type.param("CHARSET"), Some("UTF-8"));
        let inner = MimePayload::parse(&mime.body).unwrap();
        assert_eq!(inner.header("invitation-command"), Some("INVITE"));
        assert_eq!(mime.to_text(), text);
    }

    #[test]
    fn folded_headers_and_indentation() {
        let text = "\n   MIME-Version: 1.0\nContent-Type: text/plain;\n charset=UTF-8\n\nhi\n";
        let Payload::Text(message) = Payload::parse(text).unwrap() else {
            panic!("not text");
        };
        assert_eq!(message.charset.as_deref(), Some("UTF-8"));
        assert_eq!(message.text, "hi\n");
    }

    #[test]
    fn headers_without_blank_line_and_defaults() {
        let mime = MimePayload::parse("Session-Id: x").unwrap();
        assert_eq!(mime.headers, vec![("Session-Id".into(), "x".into())]);
        assert_eq!(mime.body, "");
        let Payload::Text(message) = Payload::from_mime(mime).unwrap() else {
            panic!("a payload without Content-Type is text/plain");
        };
        assert_eq!(message.session_id.as_deref(), Some("x"));
        let Payload::Control(join) =
            Payload::parse("Content-Type: text/x-msmsgscontrol\n\n").unwrap()
        else {
            panic!("not control");
        };
        assert_eq!(join.typing_user, None);
    }

    #[test]
    fn errors() {
        assert_eq!(MimePayload::parse(" \r\n "), Err(MimeError::Empty));
        assert_eq!(
            MimePayload::parse(": x\n\n"),
            Err(MimeError::MalformedHeader { line: ": x".into() })
        );
        assert_eq!(
            MimePayload::parse("A B: x\n\n"),
            Err(MimeError::MalformedHeader {
                line: "A B: x".into()
            })
        );
        assert_eq!(
            Payload::parse("Content-Type: plain\n\n"),
            Err(MimeError::InvalidContentType {
                value: "plain".into()
            })
        );
    }

    #[test]
    fn content_type_parameters() {
        let content_type = ContentType::parse("Text/Plain; Charset=\"utf-8\"; flag").unwrap();
        assert_eq!(content_type.media_type, "text/plain");
        assert_eq!(
            content_type.params,
            vec![("charset".into(), "utf-8".into())]
        );
        assert_eq!(content_type.to_string(), "text/plain; charset=utf-8");
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let mime = MimePayload {
            headers: vec![("Session-Id".into(), "a\r\nX: y".into())],
            body: String::new(),
        };
        assert_eq!(mime.to_text(), "Session-Id: a  X: y\r\n\r\n");
    }
}
