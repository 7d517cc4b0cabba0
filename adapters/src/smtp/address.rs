//! Reverse- and forward-path parsing (RFC 5321 4.1.2), deliberately lenient
//! where real MTAs are sloppy (spaces, missing brackets, source routes).

use super::limits::MAX_PATH_BYTES;

/// Splits a path off the front of `s`, returning the mailbox (empty for the
/// null path `<>`) and the remainder holding ESMTP parameters.
/// `postmaster` without a domain passes only when `allow_postmaster` is set,
/// since RFC 5321 4.5.1 requires accepting it as a recipient.
pub(super) fn parse_path(s: &str, allow_postmaster: bool) -> Option<(String, &str)> {
    let s = s.trim_start_matches(' ');
    let (inner, rest) = match s.strip_prefix('<') {
        Some(after) => {
            let end = closing_bracket(after)?;
            (&after[..end], &after[end + 1..])
        }
        None => {
            let end = s.find(' ').unwrap_or(s.len());
            (&s[..end], &s[end..])
        }
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let inner = inner.trim_matches(' ');
    if inner.len() + 2 > MAX_PATH_BYTES {
        return None;
    }
    let mailbox = strip_source_route(inner)?;
    if mailbox.is_empty()
        || (allow_postmaster && mailbox.eq_ignore_ascii_case("postmaster"))
        || valid_mailbox(mailbox)
    {
        Some((mailbox.to_owned(), rest))
    } else {
        None
    }
}

/// Byte index of the `>` closing the path, skipping quoted local parts
/// because `"a>b"@x` is a legal address.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// RFC 5321 says source routes (`@a,@b:user@c`) must be accepted and ignored.
fn strip_source_route(path: &str) -> Option<&str> {
    if !path.starts_with('@') {
        return Some(path);
    }
    let mut depth = 0u32;
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => return Some(&path[i + 1..]),
            _ => {}
        }
    }
    None
}

fn valid_mailbox(mailbox: &str) -> bool {
    if mailbox.chars().any(|c| c.is_control()) {
        return false;
    }
    let (local, domain) = if mailbox.starts_with('"') {
        let Some(end) = closing_quote(mailbox) else {
            return false;
        };
        match mailbox[end + 1..].strip_prefix('@') {
            Some(domain) => (&mailbox[..=end], domain),
            None => return false,
        }
    } else {
        match mailbox.split_once('@') {
            Some((local, domain)) if valid_dot_atom(local) => (local, domain),
            _ => return false,
        }
    };
    !local.is_empty() && valid_domain(domain)
}

/// Byte index of the quote closing the quoted string that opens `s`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Consecutive or edge dots are tolerated: some carriers hand out such
/// addresses and rejecting them bounces legitimate mail.
fn valid_dot_atom(local: &str) -> bool {
    !local.is_empty()
        && local.chars().all(|c| {
            c.is_ascii_alphanumeric() || !c.is_ascii() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
        })
}

fn valid_domain(domain: &str) -> bool {
    if let Some(literal) = domain.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(inner) => {
                !inner.is_empty()
                    && inner
                        .chars()
                        .all(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | '\\'))
            }
            None => false,
        };
    }
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
        })
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    fn ok(s: &str) -> Option<String> {
        parse_path(s, true).map(|(m, _)| m)
    }

    #[test]
    fn accepts_common_forms() {
        assert_eq!(ok("<a@b.example>").as_deref(), Some("a@b.example"));
        assert_eq!(ok("  < a@b.example > ").as_deref(), Some("a@b.example"));
        assert_eq!(ok("a@b.example").as_deref(), Some("a@b.example"));
        assert_eq!(ok("<>").as_deref(), Some(""));
        assert_eq!(ok("<@r1,@r2:a@b.example>").as_deref(), Some("a@b.example"));
        assert_eq!(
            ok("<\"x >y\"@b.example>").as_deref(),
            Some("\"x >y\"@b.example")
        );
        assert_eq!(ok("<Postmaster>").as_deref(), Some("Postmaster"));
        assert_eq!(
            ok("<ü@bücher.example>").as_deref(),
            Some("ü@bücher.example")
        );
        assert_eq!(ok("<a@[192.0.2.1]>").as_deref(), Some("a@[192.0.2.1]"));
    }

    #[test]
    fn keeps_parameters() {
        let (m, rest) = parse_path("<a@b.example> SIZE=10 BODY=8BITMIME", false).unwrap();
        assert_eq!(m, "a@b.example");
        assert_eq!(rest.trim(), "SIZE=10 BODY=8BITMIME");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "<a@b",
            "<a>",
            "<@b>",
            "<a@>",
            "<a@b..c>",
            "<a b@c>",
            "<a@b>x",
            "<a\u{1}@b>",
            "<@route>",
            "<\"unterminated@b>",
        ] {
            assert_eq!(parse_path(bad, false), None, "{bad}");
        }
        assert_eq!(parse_path("<postmaster>", false), None);
        let long = format!("<{}@b.example>", "a".repeat(300));
        assert_eq!(parse_path(&long, false), None);
    }
}
