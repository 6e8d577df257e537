//! Templates in scenario strings: `{bob.jid}`, `{bob.full_jid}`, `{bob.domain}`,
//! `{bob.user}`, `{bob.resource}`, `{ref.domain}`, `{sut.domain}`, `{sut.secure_domain}` (a
//! domain the implementation hosts that authenticates servers by certificate only, on targets
//! with the `s2s-secure-auth` capability), `{unknown.domain}` (a
//! domain no server hosts or routes), `{blackhole.domain}` (a domain whose server accepts
//! connections and never answers), `{run.id}`, `{sip.transport}` (`UDP` or `TCP`: how the
//! run's SIP user agents reach their servers, for the `Via` of a `raw_sip` request), and `{i}`
//! (the index inside a `repeat`).
//! `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;

/// The fields an actor template may name.
pub const ACTOR_FIELDS: [&str; 5] = ["jid", "full_jid", "domain", "user", "resource"];

/// Values for rendering.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// `name.field` and the other dotted keys, to their values.
    pub values: BTreeMap<String, String>,
}

enum Piece<'a> {
    Text(&'a str),
    Token(&'a str),
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {text:?} (write {{{{ for a brace)"))?;
            out.push(Piece::Token(&after[..end]));
            rest = &after[end + 1..];
        } else if rest.starts_with('}') {
            return Err(format!("stray '}}' in {text:?} (write }}}} for a brace)"));
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            out.push(Piece::Text(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// Checks that every template names something that will exist.
///
/// # Errors
/// What is wrong, naming the template.
pub fn check(text: &str, actors: &[&str], repeat: bool) -> Result<(), String> {
    for piece in pieces(text)? {
        let Piece::Token(token) = piece else { continue };
        match token.split_once('.') {
            None if token == "i" => {
                if !repeat {
                    return Err("{i} is only defined inside a step with repeat".into());
                }
            }
            Some(("run", "id")) => {}
            Some(("ref" | "sut" | "unknown" | "blackhole", "domain")) => {}
            Some(("sut", "secure_domain")) => {}
            Some(("sip", "transport")) => {}
            Some((name, field)) if actors.contains(&name) => {
                if !ACTOR_FIELDS.contains(&field) {
                    return Err(format!(
                        "{{{token}}}: actors have {}",
                        ACTOR_FIELDS.join(", ")
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "unknown template {{{token}}} (actors: {}; also ref.domain, sut.domain, \
                     sut.secure_domain, unknown.domain, blackhole.domain, run.id, i)",
                    actors.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// The names inside the templates of `text` (`bob.jid`, `run.id`), in order; none when the
/// text does not parse.
pub fn tokens(text: &str) -> Vec<&str> {
    pieces(text)
        .map(|pieces| {
            pieces
                .into_iter()
                .filter_map(|piece| match piece {
                    Piece::Token(token) => Some(token),
                    Piece::Text(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces every template with a value of the right shape, for syntax checks.
pub fn placeholder(text: &str) -> String {
    match pieces(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.to_string(),
                Piece::Token(_) => "placeholder@placeholder.test/r".to_string(),
            })
            .collect(),
        Err(_) => text.to_string(),
    }
}

impl Context {
    /// Renders `text`; `index` fills `{i}`.
    ///
    /// # Errors
    /// A template with no value (validation normally prevents it).
    pub fn render(&self, text: &str, index: Option<u32>) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        for piece in pieces(text)? {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Token("i") => match index {
                    Some(i) => out.push_str(&i.to_string()),
                    None => return Err("{i} outside a repeat".into()),
                },
                Piece::Token(token) => match self.values.get(token) {
                    Some(value) => out.push_str(value),
                    None => return Err(format!("no value for {{{token}}}")),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_renders() {
        let actors = ["alice", "bob"];
        assert!(check("hi {bob.full_jid} {{x}}", &actors, false).is_ok());
        assert!(check("Via: SIP/2.0/{sip.transport} x", &actors, false).is_ok());
        assert!(check("{sip.port}", &actors, false).is_err());
        assert!(check("{carol.jid}", &actors, false).is_err());
        assert!(check("{bob.password}", &actors, false).is_err());
        assert!(check("m{i}", &actors, false).is_err());
        assert!(check("m{i}", &actors, true).is_ok());
        assert!(check("{bob.jid", &actors, false).is_err());
        let mut context = Context::default();
        context.values.insert("bob.jid".into(), "bob@b.test".into());
        assert_eq!(
            context.render("to {bob.jid} #{i} {{ok}}", Some(3)).unwrap(),
            "to bob@b.test #3 {ok}"
        );
    }
}
