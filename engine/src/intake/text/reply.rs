//! Reply extraction: keep what the sender wrote in this message and drop the
//! quoted history, quote headers, `-- ` signatures and mobile footers.
//!
//! The approach is line based on purpose: mail clients disagree on almost
//! everything, but they all emit the quote marker lines on lines of their own,
//! so recognising those few shapes is far more robust than trying to diff the
//! reply against the previous message.

/// Returns only the new text of an email reply.
///
/// Strips `>`-quoted lines, the attribution line that introduces a quote
/// ("Am … schrieb …:", "On … wrote:", "Le … a écrit :", also when wrapped),
/// Outlook style header blocks (`Von:/Gesendet:/An:/Betreff:`,
/// `From:/Sent:/To:/Subject:`, also with `*bold*` markers), the
/// "-----Original Message-----" family, everything after a `-- ` signature
/// delimiter and mobile footers such as "Sent from my iPhone".
///
/// Closing formulas like "Mit freundlichen Grüßen" are the sender's own text
/// and are kept. Quoted blocks above or between new text (bottom posting,
/// interleaved answers) are removed while the new lines are kept.
///
/// If nothing would remain, the original text is returned trimmed, because
/// losing a customer's message is worse than showing some quoted history.
pub fn extract_reply(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());

    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_quoted(line) {
            i += 1;
            continue;
        }
        if is_signature_delimiter(line) || is_separator_line(line) && starts_header_block(&lines, i)
        {
            break;
        }
        if is_original_message_marker(line) || starts_header_block(&lines, i) {
            break;
        }
        if let Some(span) = attribution_span(&lines, i) {
            // An attribution followed by `>` lines introduces a quote that may
            // be followed by more new text (bottom posting, interleaving), so
            // only the attribution itself is dropped. Without `>` lines the
            // original follows unmarked and nothing after it is new.
            if next_content_is_quoted(&lines, i + span) {
                i += span;
                continue;
            }
            break;
        }
        if is_mobile_footer(line) {
            i += 1;
            continue;
        }
        kept.push(line);
        i += 1;
    }

    let result = tidy(&kept);
    if result.is_empty() {
        return normalized.trim().to_string();
    }
    result
}

/// Joins kept lines, dropping trailing whitespace, collapsing blank runs left
/// behind by removed quotes and trimming blank lines at both ends.
fn tidy(lines: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() && out.last().is_none_or(|l: &&str| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn is_signature_delimiter(line: &str) -> bool {
    // RFC 3676 says "-- " but many clients and copy/paste eat the space.
    line == "-- " || line == "--" || line == "-- \u{a0}" || line == "--\u{a0}"
}

/// Outlook puts a line of underscores above its header block.
fn is_separator_line(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 10 && t.chars().all(|c| c == '_')
}

fn is_original_message_marker(line: &str) -> bool {
    let t = line
        .trim()
        .trim_matches(|c: char| c == '-' || c == '_' || c == ' ' || c == '*');
    let lower = t.to_lowercase();
    if lower.is_empty() || !line.trim_start().starts_with("--") {
        return false;
    }
    [
        "ursprüngliche nachricht",
        "original message",
        "originalnachricht",
        "message d'origine",
        "mensaje original",
        "messaggio originale",
    ]
    .iter()
    .any(|m| lower == *m)
}

/// Strips `*bold*` markers and a few kinds of leading decoration left by
/// HTML-to-text converters, so `*From:* X` reads like `From: X`.
fn header_key(line: &str) -> Option<String> {
    let cleaned: String = line.trim().chars().filter(|c| *c != '*').collect();
    let colon = cleaned.find(':')?;
    let key = cleaned[..colon].trim().to_lowercase();
    if key.is_empty() || key.len() > 20 {
        return None;
    }
    Some(key)
}

const FROM_KEYS: &[&str] = &["from", "von", "de", "van", "da"];
const DATE_KEYS: &[&str] = &["sent", "date", "gesendet", "datum", "envoyé"];
const OTHER_KEYS: &[&str] = &[
    "sent",
    "date",
    "to",
    "subject",
    "cc",
    "gesendet",
    "datum",
    "an",
    "betreff",
    "envoyé",
    "à",
    "objet",
    "reply-to",
    "antwort an",
];

/// An Outlook style block: a `From:` line with at least two other header
/// lines right around it. Requiring the companions keeps a sentence like
/// "From: my point of view…" from cutting a message. GMX and WEB.DE put
/// `Gesendet:` first, so the block may start with a date key too.
fn starts_header_block(lines: &[&str], i: usize) -> bool {
    let start = if is_separator_line(lines[i]) {
        match (i + 1..lines.len()).find(|&j| !lines[j].trim().is_empty()) {
            Some(j) => j,
            None => return false,
        }
    } else {
        i
    };
    match header_key(lines[start]) {
        Some(k) if FROM_KEYS.contains(&k.as_str()) || DATE_KEYS.contains(&k.as_str()) => {}
        _ => return false,
    }
    if follows_forward_marker(lines, i) {
        return false;
    }
    let keys: Vec<String> = lines[start..]
        .iter()
        .take(7)
        .map_while(|l| header_key(l))
        .collect();
    let has_from = keys.iter().any(|k| FROM_KEYS.contains(&k.as_str()));
    let known = keys
        .iter()
        .filter(|k| FROM_KEYS.contains(&k.as_str()) || OTHER_KEYS.contains(&k.as_str()))
        .count();
    has_from && known >= 3
}

/// A forwarded message carries a header block too, but its content is what
/// the sender wants us to read, so it is never cut.
fn follows_forward_marker(lines: &[&str], i: usize) -> bool {
    lines[..i]
        .iter()
        .rev()
        .filter(|l| !l.trim().is_empty())
        .take(1)
        .any(|l| {
            let lower = l.to_lowercase();
            lower.contains("forwarded message")
                || lower.contains("weitergeleitete nachricht")
                || lower.contains("message transféré")
        })
}

const ATTRIBUTION_VERBS: &[&str] = &[
    "schrieb",
    "wrote",
    "a écrit",
    "escribió",
    "ha scritto",
    "schreef",
];

/// Returns how many lines an attribution ("On … wrote:") starting at `i`
/// spans. Gmail wraps long attributions, so up to three lines are joined.
fn attribution_span(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines[i].trim();
    if first.is_empty() {
        return None;
    }
    let mut joined = String::new();
    for span in 1..=3 {
        let idx = i + span - 1;
        let line = lines.get(idx)?.trim();
        if line.is_empty() || is_quoted(line) {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line);
        if joined.len() > 400 {
            return None;
        }
        if line.ends_with(':') {
            return is_attribution(&joined, lines, i + span).then_some(span);
        }
    }
    None
}

fn is_attribution(joined: &str, lines: &[&str], after: usize) -> bool {
    let lower = joined.to_lowercase();
    if !ATTRIBUTION_VERBS.iter().any(|v| contains_word(&lower, v)) {
        return false;
    }
    let leading = ["am ", "on ", "le ", "el ", "il ", "op "];
    let has_leading = leading.iter().any(|p| lower.starts_with(p));
    // Real attributions always carry a date or an address; a sentence such as
    // "On Monday my colleague wrote:" has neither.
    let has_marker = lower.chars().any(|c| c.is_ascii_digit()) || lower.contains('@');
    if has_leading && has_marker {
        return true;
    }
    // "Max <max@example.org> schrieb am 03.11.2026:" or plain "X wrote:" is
    // only trusted when a `>` quote actually follows.
    let verb_at_end = ATTRIBUTION_VERBS.iter().any(|v| {
        let without_colon = lower.trim_end_matches(':').trim_end();
        without_colon.ends_with(v) || lower.contains(&format!(" {v} am "))
    });
    verb_at_end && next_content_is_quoted(lines, after)
}

/// Whole-word search, so "geschrieben" does not count as "schrieb".
fn contains_word(haystack: &str, word: &str) -> bool {
    haystack.match_indices(word).any(|(pos, _)| {
        let before = haystack[..pos].chars().next_back();
        let after = haystack[pos + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn next_content_is_quoted(lines: &[&str], from: usize) -> bool {
    lines[from.min(lines.len())..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quoted(l))
}

/// Footers that phones and mail apps append on their own; the sender did not
/// write them, so they are noise in a ticket.
fn is_mobile_footer(line: &str) -> bool {
    let mut t = line.trim();
    // Outlook mobile appends the download link: "Get Outlook for iOS<https://aka.ms/…>".
    if let Some(pos) = t.find(['<', '[', '(']) {
        t = t[..pos].trim_end();
    }
    let lower = t.trim_end_matches(['.', '!']).to_lowercase();
    if lower.is_empty() || lower.len() > 70 {
        return false;
    }
    let exact = [
        "get outlook for ios",
        "get outlook for android",
        "outlook für ios beziehen",
        "outlook für android beziehen",
        "sent from mail for windows",
        "sent from mail for windows 10",
        "gesendet von mail für windows",
        "gesendet von mail für windows 10",
        "sent from yahoo mail",
        "sent from yahoo mail for iphone",
        "sent from yahoo mail on android",
    ];
    if exact.contains(&lower.as_str()) {
        return true;
    }
    (lower.starts_with("sent from my ") && lower.split_whitespace().count() <= 7)
        || (lower.starts_with("von meinem ") && lower.ends_with(" gesendet"))
        || lower.starts_with("gesendet von meinem ")
        || lower.starts_with("gesendet von outlook")
        || lower.starts_with("sent from outlook for ")
        || lower.starts_with("envoyé de mon ")
        || (lower.starts_with("gesendet mit der ") && lower.ends_with(" app"))
        || (lower.starts_with("gesendet von ") && lower.ends_with(" mail app"))
}

#[cfg(test)]
mod tests {
    use super::extract_reply;

    #[test]
    fn plain_text_without_quotes_is_unchanged() {
        assert_eq!(
            extract_reply("\n\nHallo,\n\nmein Drucker geht nicht.\n\n"),
            "Hallo,\n\nmein Drucker geht nicht."
        );
    }

    #[test]
    fn german_gmail_attribution() {
        let t = "Danke, klappt!\n\nAm Mo., 3. Nov. 2026 um 10:12 Uhr schrieb Support <support@support.example.com>:\n> Bitte neu starten.\n";
        assert_eq!(extract_reply(t), "Danke, klappt!");
    }

    #[test]
    fn wrapped_attribution_over_two_lines() {
        let t = "Thanks!\n\nOn Mon, Nov 3, 2026 at 10:12 AM Kontor Support <\nsupport@support.example.com> wrote:\n\n> Please restart.\n";
        assert_eq!(extract_reply(t), "Thanks!");
        let t = "Danke!\n\nAm Mo., 3. Nov. 2026 um 10:12 Uhr schrieb Kontor Support\n<support@support.example.com>:\n\n> Bitte neu starten.\n";
        assert_eq!(extract_reply(t), "Danke!");
    }

    #[test]
    fn english_attribution() {
        let t = "Works now.\r\n\r\nOn Tue, 3 Nov 2026 at 10:12, Support <support@support.example.com> wrote:\r\n> Try again.\r\n";
        assert_eq!(extract_reply(t), "Works now.");
    }

    #[test]
    fn apple_mail_attribution() {
        let t = "Geht wieder.\n\n> Am 03.11.2026 um 10:12 schrieb Support <support@support.example.com>:\n> \n> Bitte testen.\n";
        assert_eq!(extract_reply(t), "Geht wieder.");
        let t = "Geht wieder.\n\nAm 03.11.2026 um 10:12 schrieb Support <support@support.example.com>:\n\n> Bitte testen.\n";
        assert_eq!(extract_reply(t), "Geht wieder.");
    }

    #[test]
    fn thunderbird_attribution() {
        let t = "Fixed, thanks.\n\nOn 11/3/26 10:12 AM, Kontor Support wrote:\n> Please check.\n";
        assert_eq!(extract_reply(t), "Fixed, thanks.");
    }

    #[test]
    fn french_attribution_is_a_bonus() {
        let t = "Merci.\n\nLe lun. 3 nov. 2026 à 10:12, Support <support@support.example.com> a écrit :\n> Bonjour\n";
        assert_eq!(extract_reply(t), "Merci.");
    }

    #[test]
    fn original_message_markers() {
        let t = "Anbei die Datei.\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nGesendet: Montag\n\nText";
        assert_eq!(extract_reply(t), "Anbei die Datei.");
        let t = "See attached.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\n\nText";
        assert_eq!(extract_reply(t), "See attached.");
    }

    #[test]
    fn outlook_header_blocks() {
        let t = "Passt.\n\nMit freundlichen Grüßen\nErika\n\n________________________________\nVon: Kontor Support <support@support.example.com>\nGesendet: Montag, 3. November 2026 10:12\nAn: Erika <erika@example.org>\nBetreff: AW: Drucker\n\nHallo Erika";
        assert_eq!(extract_reply(t), "Passt.\n\nMit freundlichen Grüßen\nErika");
        let t = "Done.\n\n*From:* Kontor Support <support@support.example.com>\n*Sent:* Monday, November 3, 2026 10:12 AM\n*To:* John <john@example.net>\n*Subject:* RE: VPN\n\nHi John";
        assert_eq!(extract_reply(t), "Done.");
    }

    #[test]
    fn gmx_header_block_starts_with_date() {
        let t = "Ja, bitte.\n\nGesendet: Montag, 03. November 2026 um 10:12 Uhr\nVon: \"Kontor Support\" <support@support.example.com>\nAn: erika@example.net\nBetreff: Re: Rechnung\n\nHallo";
        assert_eq!(extract_reply(t), "Ja, bitte.");
    }

    #[test]
    fn lone_from_line_is_not_a_header_block() {
        let t = "From: my point of view this is broken.\nPlease fix.";
        assert_eq!(extract_reply(t), t);
    }

    #[test]
    fn forwarded_header_block_is_kept() {
        let t = "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.net>\nDate: Mon, 3 Nov 2026\nSubject: Invoice\nTo: <erika@example.org>\n\nInvoice is wrong.";
        assert_eq!(extract_reply(t), t);
    }

    #[test]
    fn bottom_posting_keeps_text_below_quote() {
        let t = "On Mon, Nov 3, 2026 at 10:12 AM Support <support@support.example.com> wrote:\n> Does it work now?\n\nYes, it works.\n";
        assert_eq!(extract_reply(t), "Yes, it works.");
    }

    #[test]
    fn interleaved_answers_keep_unquoted_lines() {
        let t = "Support wrote:\n> 1. Which version?\n\n4.2\n\n> 2. Which OS?\n\nWindows 11\n";
        assert_eq!(extract_reply(t), "4.2\n\nWindows 11");
    }

    #[test]
    fn signature_delimiter_cuts() {
        let t = "Hello\n\n-- \nJohn Doe\nACME Corp\n";
        assert_eq!(extract_reply(t), "Hello");
    }

    #[test]
    fn mobile_footers_are_removed() {
        for footer in [
            "Sent from my iPhone",
            "Von meinem iPhone gesendet",
            "Gesendet von Outlook für Android",
            "Get Outlook for iOS<https://aka.ms/o0ukef>",
            "Von meinem Samsung Galaxy Smartphone gesendet.",
        ] {
            let t = format!("Ok danke\n\n{footer}\n\n> quoted");
            assert_eq!(extract_reply(&t), "Ok danke", "{footer}");
        }
    }

    #[test]
    fn closing_formula_is_kept() {
        let t = "Bitte um Rückruf.\n\nMit freundlichen Grüßen\nMax Mustermann\n";
        assert_eq!(extract_reply(t), t.trim());
    }

    #[test]
    fn everything_quoted_returns_original() {
        let t = "\n> only a quote\n> nothing else\n";
        assert_eq!(extract_reply(t), "> only a quote\n> nothing else");
    }

    #[test]
    fn verb_inside_a_longer_word_is_not_an_attribution() {
        let t = "Am 3.11. um 10 Uhr habe ich Ihnen geschrieben:\nder Export ist leer.";
        assert_eq!(extract_reply(t), t);
    }

    #[test]
    fn sentence_with_on_and_wrote_is_not_cut() {
        let t = "On Monday my colleague wrote:\nthe export is empty.";
        assert_eq!(extract_reply(t), t);
    }
}
