//! Plain-text pieces shared by the renderers: transcript and link lines, failure headlines,
//! durations, and the escaping that keeps peer-supplied text from breaking a terminal or XML.
//!
//! Stanzas in a transcript come from the implementation under test, so they may hold anything.
//! Display text escapes control characters (`\u{1}`), the bidi overrides that can make a line read
//! differently than it is (CVE-2021-42574), and the noncharacters U+FFFE/U+FFFF that XML 1.0
//! forbids. The escaping is for people, not a lossless encoding: the JSON report keeps the exact
//! text.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::{Failure, Flow, LinkLine, TranscriptLine};

/// How many characters of an arrived element a one-line failure message quotes.
const HEADLINE_QUOTE_CHARS: usize = 200;

/// Whether `c` is shown as an escape rather than as itself.
fn needs_escape(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' => !keep_newlines,
        // A tab is harmless on a terminal and allowed in XML.
        '\t' => false,
        // XML 1.0 forbids these two, and they are never meant as text.
        '\u{FFFE}' | '\u{FFFF}' => true,
        // Bidi embeddings, overrides and isolates, and the marks: they reorder what a reader sees.
        '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        // C0 (XML 1.0 forbids all but tab, LF and CR; CR would be normalized away), DEL and C1
        // (a terminal takes U+009B as CSI).
        c => c.is_control(),
    }
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c, keep_newlines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c, keep_newlines) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// `text` on one line, safe to print: newlines and control characters escaped.
pub(crate) fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// `text` safe to print, keeping its line breaks.
pub(crate) fn multi_line(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// At most `max` characters of `text`, with "…" when cut.
pub(crate) fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
    }
}

/// "+123ms alice ⇒ <message/>" (sent), "⇐" (received), "·" (a harness note).
pub(crate) fn transcript_line(line: &TranscriptLine) -> String {
    let arrow = match line.flow {
        Flow::Sent => '⇒',
        Flow::Received => '⇐',
        Flow::Note => '·',
    };
    format!(
        "+{}ms {} {arrow} {}",
        line.t_ms,
        one_line(&line.actor),
        one_line(&line.text)
    )
}

/// "+45ms ref.test → sut.test <message/>" (sent by the reference server), "←" (received by it).
pub(crate) fn link_line(line: &LinkLine) -> String {
    let arrow: Cow<'_, str> = match line.direction.as_str() {
        "out" => "→".into(),
        "in" => "←".into(),
        // Not produced today; shown rather than guessed.
        other => format!("[{}]", one_line(other)).into(),
    };
    format!(
        "+{}ms {} {arrow} {} {}",
        line.t_ms,
        one_line(&line.local),
        one_line(&line.remote),
        one_line(&line.xml)
    )
}

/// "step 5 (expect bob message from alice)", or `None` for a failure not tied to a step.
fn step_name(failure: &Failure) -> Option<String> {
    (failure.step > 0).then(|| {
        if failure.step_label.is_empty() {
            format!("step {}", failure.step)
        } else {
            format!("step {} ({})", failure.step, one_line(&failure.step_label))
        }
    })
}

/// One line naming the step, what went wrong and what arrived instead:
/// "step 5 (expect bob message from alice): no message from alice within 5s; arrived instead:
/// <presence/>".
///
/// `awaited` is added only when the message does not already say it (the harness's timeout
/// messages do: "no presence from bob@sut.test within 5s").
pub(crate) fn failure_headline(failure: &Failure) -> String {
    let mut line = step_name(failure)
        .map(|step| format!("{step}: "))
        .unwrap_or_default();
    line.push_str(&one_line(&failure.message));
    if let Some(awaited) = &failure.awaited
        && !failure.message.contains(awaited.as_str())
    {
        let _ = write!(line, "; awaited: {}", one_line(awaited));
    }
    if let Some((first, rest)) = failure.arrived.split_first() {
        let _ = write!(
            line,
            "; arrived instead: {}",
            truncate(&one_line(first), HEADLINE_QUOTE_CHARS)
        );
        if !rest.is_empty() {
            let _ = write!(line, " (+{} more)", rest.len());
        }
    }
    line
}

/// Whose behaviour a failed check verifies, in words.
pub(crate) fn judges_phrase(judges: crate::model::Judges) -> &'static str {
    match judges {
        crate::model::Judges::Sut => "the implementation under test",
        crate::model::Judges::Ref => "the reference server only",
        crate::model::Judges::Both => "both servers (the exchange crosses the link)",
    }
}

/// Every field of a failure, one per line, for a JUnit failure body.
pub(crate) fn failure_detail(failure: &Failure) -> String {
    let mut text = String::new();
    if let Some(step) = step_name(failure) {
        let _ = writeln!(text, "{step}");
    }
    let _ = writeln!(text, "error: {}", multi_line(&failure.message));
    if let Some(judges) = failure.judges {
        let _ = writeln!(text, "check judges: {}", judges_phrase(judges));
    }
    if let Some(awaited) = &failure.awaited {
        let _ = writeln!(text, "awaited: {}", multi_line(awaited));
    }
    if failure.arrived.is_empty() {
        if failure.awaited.is_some() {
            text.push_str("arrived instead: nothing\n");
        }
    } else {
        text.push_str("arrived instead:\n");
        for arrived in &failure.arrived {
            let _ = writeln!(text, "  {}", one_line(arrived));
        }
    }
    text
}

/// "12ms", "1.5s", "2m05s".
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{}s", ms / 1_000, ms % 1_000 / 100),
        _ => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Failure {
        Failure {
            judges: None,
            step: 5,
            step_label: "expect bob message from alice".into(),
            message: "no message from alice within 5s".into(),
            awaited: Some("message from alice".into()),
            arrived: vec!["<presence from='alice@sut.test'/>".into()],
        }
    }

    #[test]
    fn escapes_controls_bidi_and_xml_noncharacters() {
        assert_eq!(one_line("a\u{1}b\nc\rd\te"), "a\\u{1}b\\nc\\rd\te");
        assert_eq!(multi_line("a\u{1}b\nc"), "a\\u{1}b\nc");
        assert_eq!(
            one_line("x\u{202E}y\u{FFFF}\u{9B}"),
            "x\\u{202e}y\\u{ffff}\\u{9b}"
        );
        assert!(matches!(one_line("plain <é> ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("héllo", 5), "héllo");
    }

    #[test]
    fn headline_names_step_and_arrival() {
        assert_eq!(
            failure_headline(&failure()),
            "step 5 (expect bob message from alice): no message from alice within 5s; \
             arrived instead: <presence from='alice@sut.test'/>"
        );
    }

    #[test]
    fn headline_adds_awaited_when_message_lacks_it() {
        let failure = Failure {
            step: 0,
            message: "connection closed".into(),
            awaited: Some("<iq type='result'/>".into()),
            arrived: vec!["a".into(), "b".into(), "c".into()],
            ..failure()
        };
        assert_eq!(
            failure_headline(&failure),
            "connection closed; awaited: <iq type='result'/>; arrived instead: a (+2 more)"
        );
    }

    #[test]
    fn detail_says_when_nothing_arrived() {
        let failure = Failure {
            arrived: vec![],
            ..failure()
        };
        assert_eq!(
            failure_detail(&failure),
            "step 5 (expect bob message from alice)\nerror: no message from alice within 5s\n\
             awaited: message from alice\narrived instead: nothing\n"
        );
    }

    #[test]
    fn lines_use_the_arrows() {
        let line = TranscriptLine {
            t_ms: 7,
            actor: "alice".into(),
            flow: Flow::Received,
            text: "<message>\n</message>".into(),
        };
        assert_eq!(
            transcript_line(&line),
            "+7ms alice ⇐ <message>\\n</message>"
        );
        let link = LinkLine {
            t_ms: 45,
            direction: "in".into(),
            local: "ref.test".into(),
            remote: "sut.test".into(),
            xml: "<db:result/>".into(),
        };
        assert_eq!(link_line(&link), "+45ms ref.test ← sut.test <db:result/>");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1_540), "1.5s");
        assert_eq!(duration(125_000), "2m05s");
    }
}
