//! `--filter` expressions: `id:GLOB` (or a bare GLOB), `tag:NAME`, `spec:DOC[ §SECTION]`
//! (e.g. `spec:RFC 6121` or `spec:RFC 6121 §3.1`, a section matches its subsections) and
//! `level:MUST|SHOULD|MAY`. `|` separates alternatives inside one filter; several filters
//! must all match. Globs know `*` only.

use crate::scenario::model::{Level, Scenario};

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    alternatives: Vec<Term>,
    /// As written, for messages.
    text: String,
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    Id(String),
    Tag(String),
    Spec {
        doc: String,
        section: Option<String>,
    },
    Level(String),
}

impl std::str::FromStr for Filter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut alternatives = Vec::new();
        for part in text.split('|').map(str::trim) {
            let term = match part.split_once(':') {
                Some(("id", glob)) => Term::Id(glob.to_string()),
                Some(("tag", tag)) => Term::Tag(tag.to_string()),
                Some(("level", level)) => match level.to_ascii_uppercase().as_str() {
                    level @ ("MUST" | "SHOULD" | "MAY") => Term::Level(level.to_string()),
                    _ => return Err(format!("level {level:?}: use MUST, SHOULD or MAY")),
                },
                Some(("spec", spec)) => match spec.split_once('§') {
                    Some((doc, section)) => Term::Spec {
                        doc: doc.trim().to_string(),
                        section: Some(section.trim().to_string()),
                    },
                    None => Term::Spec {
                        doc: spec.trim().to_string(),
                        section: None,
                    },
                },
                Some((kind, _)) => {
                    return Err(format!(
                        "unknown filter {kind:?}: use id:, tag:, spec: or level:"
                    ));
                }
                None if !part.is_empty() => Term::Id(part.to_string()),
                None => return Err("empty filter".into()),
            };
            alternatives.push(term);
        }
        Ok(Filter {
            alternatives,
            text: text.to_string(),
        })
    }
}

/// Whether `text` matches `glob` (`*` is any run of characters).
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::May => "MAY",
    }
}

impl Filter {
    /// Whether the scenario is selected.
    pub fn matches(&self, scenario: &Scenario) -> bool {
        self.alternatives.iter().any(|term| match term {
            Term::Id(glob) => glob_matches(glob, &scenario.id),
            Term::Tag(tag) => scenario.tags.iter().any(|t| t == tag),
            Term::Level(level) => scenario.spec.iter().any(|s| level_name(s.level) == level),
            Term::Spec { doc, section } => scenario.spec.iter().any(|s| {
                s.doc.eq_ignore_ascii_case(doc)
                    && section.as_ref().is_none_or(|section| {
                        s.section == *section || s.section.starts_with(&format!("{section}."))
                    })
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("rfc6121-*", "rfc6121-sub"));
        assert!(glob_matches("*sub*", "rfc6121-sub-approve"));
        assert!(glob_matches("a*c", "abc"));
        assert!(!glob_matches("a*c", "abd"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }

    #[test]
    fn parses() {
        assert!("tag:presence|level:MUST".parse::<Filter>().is_ok());
        assert!("spec:RFC 6121 §3.1".parse::<Filter>().is_ok());
        assert!("level:SOMETIMES".parse::<Filter>().is_err());
        assert!("color:red".parse::<Filter>().is_err());
    }
}
