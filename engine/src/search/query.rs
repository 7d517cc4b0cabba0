//! The user-facing query language.
//!
//! Deliberately small: bare words (all must match), `"quoted phrases"`, and
//! `field:value` / `field:"quoted value"` for `status`, `company` and `kind`.
//! Anything else that looks like a field is kept as words, because users
//! paste text like "Fehler: Drucker offline" and expect it to be searched.

use serde::{Deserialize, Serialize};

use super::{RecordKind, SearchError};

/// A parsed search box input. Every part is ANDed; repeated filters of the
/// same field (`status:open status:waiting`) are ORed among themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedQuery {
    /// Single words, analysed like the indexed text.
    pub words: Vec<String>,
    /// Quoted phrases; their words must be adjacent and in order.
    pub phrases: Vec<String>,
    /// `status:` values, lowercased.
    pub statuses: Vec<String>,
    /// `company:` values: a company id or (part of) a company name.
    pub companies: Vec<String>,
    /// `kind:` values.
    pub kinds: Vec<RecordKind>,
}

impl ParsedQuery {
    /// True if the query restricts by text (and so should be ranked by
    /// relevance rather than recency).
    pub fn has_text(&self) -> bool {
        !self.words.is_empty() || !self.phrases.is_empty()
    }
}

enum Field {
    Status,
    Company,
    Kind,
}

fn known_field(name: &str) -> Option<Field> {
    match name.to_ascii_lowercase().as_str() {
        "status" => Some(Field::Status),
        "company" | "firma" => Some(Field::Company),
        "kind" | "type" | "typ" => Some(Field::Kind),
        _ => None,
    }
}

/// Parses a search box input.
///
/// Fails only on an unbalanced quote or an unknown `kind:` value, so the UI
/// can tell the user what to fix instead of silently searching for
/// something else.
pub fn parse_query(q: &str) -> Result<ParsedQuery, SearchError> {
    let mut out = ParsedQuery::default();
    let mut rest = q;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            break;
        };
        if first == '"' {
            let (phrase, after) = quoted(rest, q)?;
            push_nonblank(&mut out.phrases, phrase);
            rest = after;
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(rest.len());
        let bare = &rest[..end];
        rest = &rest[end..];

        let field = bare
            .split_once(':')
            .and_then(|(name, value)| known_field(name).map(|f| (f, value)));
        match field {
            Some((field, value)) => {
                let value = if value.is_empty() && rest.starts_with('"') {
                    let (v, after) = quoted(rest, q)?;
                    rest = after;
                    v
                } else {
                    value
                };
                let value = value.trim();
                if value.is_empty() {
                    continue;
                }
                match field {
                    Field::Status => out.statuses.push(value.to_lowercase()),
                    Field::Company => out.companies.push(value.to_string()),
                    Field::Kind => out.kinds.push(value.parse()?),
                }
            }
            None => {
                // An unknown "field:value" is two words, not one glued token.
                for word in bare.split(':') {
                    push_nonblank(&mut out.words, word);
                }
            }
        }
    }
    Ok(out)
}

/// Reads a `"…"` at the start of `s`; returns the inside and the remainder.
fn quoted<'a>(s: &'a str, whole: &str) -> Result<(&'a str, &'a str), SearchError> {
    debug_assert!(s.starts_with('"'));
    let inner = &s[1..];
    match inner.find('"') {
        Some(close) => Ok((&inner[..close], &inner[close + 1..])),
        None => {
            let column = whole.len() - s.len();
            Err(SearchError::InvalidQuery(format!(
                "unbalanced quote: the phrase starting at character {} has no closing \"",
                whole[..column].chars().count() + 1
            )))
        }
    }
}

fn push_nonblank(v: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if !s.is_empty() {
        v.push(s.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_phrases_and_fields() {
        let p =
            parse_query(r#"Drucker "kein Papier" status:Open company:"Café Müller" kind:ticket"#)
                .unwrap();
        assert_eq!(p.words, vec!["Drucker"]);
        assert_eq!(p.phrases, vec!["kein Papier"]);
        assert_eq!(p.statuses, vec!["open"]);
        assert_eq!(p.companies, vec!["Café Müller"]);
        assert_eq!(p.kinds, vec![RecordKind::Ticket]);
    }

    #[test]
    fn unknown_field_is_words() {
        let p = parse_query("Fehler: Drucker foo:bar").unwrap();
        assert_eq!(p.words, vec!["Fehler", "Drucker", "foo", "bar"]);
        assert!(p.statuses.is_empty());
    }

    #[test]
    fn company_id_and_unquoted_values() {
        let p = parse_query("company:c-17 STATUS:done").unwrap();
        assert_eq!(p.companies, vec!["c-17"]);
        assert_eq!(p.statuses, vec!["done"]);
        assert!(!p.has_text());
    }

    #[test]
    fn unbalanced_quote_is_a_clear_error() {
        let err = parse_query(r#"Drucker "kein Papier"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unbalanced quote"), "{msg}");
        assert!(msg.contains("character 9"), "{msg}");
        assert!(parse_query(r#"company:"Café"#).is_err());
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let err = parse_query("kind:banana").unwrap_err();
        assert!(err.to_string().contains("banana"));
    }

    #[test]
    fn empty_input_and_empty_phrase() {
        assert_eq!(parse_query("  \"\" ").unwrap(), ParsedQuery::default());
    }
}
