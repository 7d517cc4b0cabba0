//! Forwarded mail: the forwarder's own note is the history entry (see
//! [`super::extract_reply`]); the forwarded message itself is kept beside it
//! as a readable attachment, so staff can open what was forwarded.

use super::markers::{header_block_span, is_forward_marker, is_separator_marker, quote_header};

/// The forwarded message inside a forward's text: from the forward marker
/// ("---------- Forwarded message ---------", "Begin forwarded message:",
/// "-------- Weitergeleitete Nachricht --------"), or, when the subject says
/// the mail is forwarded ("Fwd:", "WG:", "TR:", "RV:", "Doorst:", …), from the
/// first header block or "-----Original Message-----" (Outlook forwards
/// without a marker), to the end. The quote level an HTML conversion added is
/// taken off. `None` for replies and plain messages, and for a forward quoted
/// inside a reply, which is history, not something forwarded now.
pub fn forwarded_part(full_text: &str, subject: &str) -> Option<String> {
    let normalized = full_text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    let unquoted: Vec<&str> = lines.iter().map(|l| strip_quote(l, usize::MAX)).collect();
    let forwarded_subject = subject_says_forwarded(subject);
    let mut start = None;
    for (i, line) in unquoted.iter().copied().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if is_forward_marker(line) {
            start = Some(i);
            break;
        }
        if forwarded_subject
            && (header_block_span(&unquoted, i).is_some() || is_separator_marker(line))
        {
            start = Some(i);
            break;
        }
        if depth(lines[i]) == 0 && quote_header(line).is_some() {
            return None;
        }
    }
    let start = start?;
    let part = &lines[start..];
    let common = part
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| depth(l))
        .min()
        .unwrap_or(0);
    let text: Vec<&str> = part.iter().map(|l| strip_quote(l, common)).collect();
    let text = text.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// How many `>` levels a line is quoted.
fn depth(line: &str) -> usize {
    let mut rest = line.trim_start();
    let mut levels = 0;
    while let Some(after) = rest.strip_prefix('>') {
        levels += 1;
        rest = after.strip_prefix(' ').unwrap_or(after);
    }
    levels
}

/// The line with up to `levels` `>` levels taken off.
fn strip_quote(line: &str, levels: usize) -> &str {
    let mut rest = line;
    for _ in 0..levels {
        let trimmed = rest.trim_start();
        match trimmed.strip_prefix('>') {
            Some(after) => rest = after.strip_prefix(' ').unwrap_or(after),
            None => break,
        }
    }
    rest
}

/// The forward prefixes of mail clients in the languages we see, lower case.
pub(super) const FORWARD_PREFIXES: &[&str] = &[
    "fwd",
    "fw",
    "wg",
    "tr",
    "rv",
    "enc",
    "doorst",
    "vs",
    "vb",
    "vl",
    "pd",
    "pf",
    "ilt",
    "İlt",
    "perese",
    "пересл",
    "转发",
    "轉寄",
    "転送",
    "fwd[",
    "fw[",
];

/// Whether a subject starts with a forward prefix ("Fwd:", "WG:", "TR :").
pub fn subject_says_forwarded(subject: &str) -> bool {
    let lower = subject.trim().to_lowercase();
    let Some((prefix, _)) = lower.split_once([':', '：']) else {
        return false;
    };
    FORWARD_PREFIXES.contains(&prefix.trim().trim_start_matches('[').trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gmail_forward_yields_the_forwarded_message() {
        let text = "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.net>\nDate: Mon, 3 Nov 2026\nSubject: Invoice\nTo: <erika@example.org>\n\nInvoice is wrong.";
        let part = forwarded_part(text, "Fwd: Invoice").expect("forwarded");
        assert!(part.starts_with("---------- Forwarded message"), "{part}");
        assert!(part.ends_with("Invoice is wrong."), "{part}");
    }

    #[test]
    fn an_outlook_forward_is_found_by_its_subject() {
        let text = "Bitte prüfen.\n\n> Von: Bob <bob@example.net>\n> Gesendet: Montag, 3. November 2026 10:12\n> An: Erika\n> Betreff: Rechnung\n>\n> Die Rechnung ist falsch.";
        assert_eq!(forwarded_part(text, "AW: Rechnung"), None);
        let part = forwarded_part(text, "WG: Rechnung").expect("forwarded");
        assert!(part.starts_with("Von: Bob"), "{part}");
        assert!(part.ends_with("Die Rechnung ist falsch."), "{part}");
    }

    #[test]
    fn a_reply_quoting_a_forward_is_no_forward() {
        let text = "Thanks.\n\nOn Tue, 3 Nov 2026 at 10:12, Support <s@example.com> wrote:\n> ---------- Forwarded message ---------\n> From: Bob <bob@example.net>\n> Subject: x\n> Date: Mon, 3 Nov 2026 10:00\n";
        assert_eq!(forwarded_part(text, "Re: x"), None);
    }

    #[test]
    fn forward_prefixes() {
        for subject in [
            "Fwd: x",
            "FW: x",
            "WG: x",
            "TR : x",
            "RV: x",
            "Doorst: x",
            "VS: x",
            "ENC: x",
        ] {
            assert!(subject_says_forwarded(subject), "{subject}");
        }
        for subject in ["Re: x", "AW: x", "Invoice: March", "x"] {
            assert!(!subject_says_forwarded(subject), "{subject}");
        }
    }
}
