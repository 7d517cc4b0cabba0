//! Values that validate on construction: a value that exists is valid.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ErrorCode;

/// RFC 5322 allows 998 octets a line; subjects and names are held to that.
pub const MAX_LINE_CHARS: usize = 998;

/// A syntactically valid email address, compared and indexed in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 254 characters")]
    TooLong,
    #[error("is not a valid email address")]
    Malformed,
}

impl ErrorCode for EmailError {
    fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "missing",
            EmailError::TooLong => "too_long",
            EmailError::Malformed => "invalid_email",
        }
    }
}

impl EmailAddress {
    /// Accepts `local@domain.tld` as mail systems deliver it: no spaces, no display
    /// name, a dotted domain of letters, digits and hyphens.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(EmailError::Empty);
        }
        if input.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = input.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return Err(EmailError::Malformed);
        }
        Ok(Self(input.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("must be a single line")]
    Multiline,
}

impl ErrorCode for TextError {
    fn code(&self) -> &'static str {
        match self {
            TextError::Empty => "missing",
            TextError::TooLong { .. } => "too_long",
            TextError::Multiline => "invalid",
        }
    }
}

/// A non-empty, single-line text of at most 998 characters: a subject or a name.
pub fn line(input: &str) -> Result<String, TextError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    if trimmed.chars().count() > MAX_LINE_CHARS {
        return Err(TextError::TooLong {
            max: MAX_LINE_CHARS,
        });
    }
    if trimmed.contains(['\r', '\n']) {
        return Err(TextError::Multiline);
    }
    Ok(trimmed.to_string())
}

/// A non-empty body of at most `max_bytes`.
pub fn body(input: &str, max_bytes: usize) -> Result<String, TextError> {
    if input.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if input.len() > max_bytes {
        return Err(TextError::TooLong { max: max_bytes });
    }
    Ok(input.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_lowercased_and_checked() {
        assert_eq!(
            EmailAddress::parse(" Maria.Mueller@Example.ORG ").map(|e| e.to_string()),
            Ok("maria.mueller@example.org".to_string())
        );
        for bad in [
            "",
            "maria",
            "maria@",
            "@example.org",
            "maria@example",
            "ma ria@example.org",
            "maria@exa_mple.org",
            "a..b@example.org",
            "Maria <maria@example.org>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn lines_refuse_empty_long_and_multiline_text() {
        assert_eq!(line("  Kasse defekt "), Ok("Kasse defekt".to_string()));
        assert_eq!(line("   "), Err(TextError::Empty));
        assert!(line(&"x".repeat(998)).is_ok());
        assert_eq!(line(&"x".repeat(999)), Err(TextError::TooLong { max: 998 }));
        assert_eq!(line("a\nb"), Err(TextError::Multiline));
    }
}
