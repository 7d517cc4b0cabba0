//! Reply extraction: keep what the sender wrote in this message and drop the
//! quoted history, quote headers, `-- ` signatures and app footers.
//!
//! The approach is line based on purpose: mail clients disagree on almost
//! everything, but they all introduce the history with a few recognisable
//! shapes (see [`super::markers`]), so recognising those shapes generalises
//! across clients and languages far better than diffing the reply against the
//! previous message.

use super::markers::{
    has_date, header_block_span, is_app_footer, is_forward_marker, is_rule_line,
    is_separator_marker, looks_like_address, plain, quote_header, QuoteHeader,
};

/// Returns only the new text of an email reply.
///
/// Strips `>`-quoted lines (and the pieces of them a client wrapped without a
/// `>`: long links, the tail of a long nested line), the quote header that
/// introduces a quote in any language ("Am … schrieb …:", "On … wrote:",
/// "Op … schreef …:", "вт, 3 нояб. 2026 г. в 10:12, X <x@y>:", also wrapped over
/// up to three lines or sharing its line with the reply), everything from a
/// header block (`Von:/Gesendet:/An:/Betreff:`, `Van:/Verzonden:/Aan:`, …), an
/// "-----Original Message-----" style separator or a forward marker on,
/// everything after a `-- ` signature delimiter, and app footers such as "Sent
/// from my iPhone" in many languages.
///
/// Closing formulas like "Mit freundlichen Grüßen" and the name under them are
/// the sender's own text and are kept. Quoted blocks above or between new text
/// (bottom posting, interleaved answers) are removed while the new lines are
/// kept. A forwarded message is history too: the forwarder's note is the reply
/// (the intake keeps the forwarded part as an attachment).
///
/// If nothing would remain, the original text is returned trimmed, because
/// losing a customer's message is worse than showing some quoted history.
pub fn extract_reply(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalized.split('\n').collect();
    let quoted = quoted_lines(&lines);
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());

    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if quoted[i] {
            i += 1;
            continue;
        }
        if is_signature_delimiter(line) || starts_history(&lines, i) {
            break;
        }
        if let Some(found) = find_quote_header(&lines, &quoted, i) {
            let own = line[..found.offset].trim_end();
            if !own.is_empty() {
                kept.push(own);
            }
            // A quote header followed by `>` lines introduces a quote that may
            // be followed by more new text (bottom posting, interleaving), so
            // only the header itself is dropped. Without `>` lines the history
            // follows unmarked and nothing after it is new.
            if found.quote_follows {
                i += found.span;
                continue;
            }
            break;
        }
        if is_app_footer(line) {
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

/// Which lines belong to a `>` quote. Besides the marked lines, a client that
/// wraps a quoted line too long for its width leaves the rest without a `>`:
/// a run of up to three unmarked lines directly between two quoted lines is
/// part of the quote when it is a piece of a link, or the lower-case tail of a
/// long line. A short answer between questions ("> Which version?" / "4.2" /
/// "> Which OS?") is neither and stays.
fn quoted_lines(lines: &[&str]) -> Vec<bool> {
    let mut quoted: Vec<bool> = lines.iter().map(|l| is_quoted(l)).collect();
    let mut i = 1;
    while i < lines.len() {
        if quoted[i] || !quoted[i - 1] || lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let run_end = (i..lines.len().min(i + 4))
            .find(|&j| quoted[j] || lines[j].trim().is_empty())
            .unwrap_or(lines.len().min(i + 4));
        let closed_by_quote = run_end < lines.len() && quoted[run_end];
        let previous_long = plain(lines[i - 1]).chars().count() >= 60;
        let wrapped = (i..run_end).all(|j| {
            is_link_piece(lines[j])
                || previous_long && lines[j].trim_start().starts_with(char::is_lowercase)
        });
        if closed_by_quote && wrapped {
            for flag in &mut quoted[i..run_end] {
                *flag = true;
            }
        }
        i = run_end.max(i + 1);
    }
    quoted
}

/// One token that reads as (part of) a URL: a scheme, `www.`, or the path,
/// query and escape characters of one. A short answer such as "4.2.1" has none.
fn is_link_piece(line: &str) -> bool {
    let text = line.trim();
    !text.is_empty()
        && !text.contains(char::is_whitespace)
        && (text.contains("://")
            || text.starts_with("www.")
            || text.ends_with('>')
            || text.contains(['/', '?', '=', '&', '%']))
}

fn is_signature_delimiter(line: &str) -> bool {
    // RFC 3676 says "-- " but many clients and copy/paste eat the space.
    let text = plain(line);
    text == "--" && line.trim_start().starts_with("--")
}

/// Whether the history starts at line `i` with a header block, a separator
/// such as "-----Original Message-----" or a forward marker. Outlook's rule of
/// underscores counts only above a header block, since people draw lines too.
fn starts_history(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    if line.trim().is_empty() {
        return false;
    }
    if is_separator_marker(line) || is_forward_marker(line) {
        return true;
    }
    if is_rule_line(line) {
        return (i + 1..lines.len())
            .find(|&j| !lines[j].trim().is_empty())
            .is_some_and(|j| {
                header_block_span(lines, j).is_some() || is_separator_marker(lines[j])
            });
    }
    header_block_span(lines, i).is_some()
}

/// A quote header found at line `i`: it starts `offset` bytes into the line
/// (text before it is the sender's, "Thanks! On … wrote:") and spans `span`
/// lines.
struct FoundHeader {
    offset: usize,
    span: usize,
    quote_follows: bool,
}

/// Looks for a quote header starting on line `i`, wrapped over up to three
/// lines (Gmail wraps long ones) and possibly sharing the line with the reply.
fn find_quote_header(lines: &[&str], quoted: &[bool], i: usize) -> Option<FoundHeader> {
    let first = lines[i];
    if first.trim().is_empty() {
        return None;
    }
    let mut joined = String::new();
    for span in 1..=3 {
        let index = i + span - 1;
        let line = lines.get(index)?;
        if line.trim().is_empty() || quoted[index] {
            return None;
        }
        // A wrapped header starts with its date or address, never with a line
        // of the reply ("Merci" / "Le mar. 3 nov. …" / "a écrit :").
        if span > 1 && (ends_a_sentence(lines[index - 1]) || !opens_a_header(first)) {
            return None;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line.trim());
        if joined.len() > 600 {
            return None;
        }
        if !plain(line).ends_with(':') {
            continue;
        }
        let quote_follows = next_content_is_quoted(quoted, lines, i + span);
        let offset_in_joined = first.len() - first.trim_start().len();
        for start in split_points(first.trim()) {
            let Some(kind) = quote_header(&joined[start..]) else {
                continue;
            };
            if kind == QuoteHeader::IfQuoteFollows && !quote_follows {
                continue;
            }
            return Some(FoundHeader {
                offset: offset_in_joined + start,
                span,
                quote_follows,
            });
        }
        return None;
    }
    None
}

/// The words quote headers open with, when they open with a word: "On …",
/// "Am …", "Le …", "El …", "Il giorno …", "Op …", "Em …", "Den …", "W dniu …",
/// "Dne …", "Vào …".
const HEADER_OPENERS: &[&str] = &[
    "On ", "Am ", "Le ", "El ", "Il ", "Op ", "Em ", "Den ", "W dniu ", "Dne ", "Vào ", "Pe ",
];

/// Where in a line a quote header may start: after the end of a sentence
/// ("Thanks! On …", "Danke.Am …") or where an opener word follows the reply's
/// last word ("Tom On Tue, …", "GrußAm 03.11.…"), earliest first, and at the
/// start of the line last. A short word before a full stop is an abbreviation
/// in a date ("Nov.", "tir.", "нояб."), not the end of a sentence.
fn split_points(line: &str) -> Vec<usize> {
    let mut points = Vec::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    for (n, (pos, c)) in chars.iter().enumerate() {
        let after_word = n > 0 && {
            let before = chars[n - 1].1;
            before.is_whitespace() || before.is_lowercase() || before == ','
        };
        if after_word
            && HEADER_OPENERS
                .iter()
                .any(|opener| line[*pos..].starts_with(opener))
        {
            points.push(*pos);
            continue;
        }
        if !matches!(c, '.' | '!' | '?' | '。' | '！' | '？') {
            continue;
        }
        let after = pos + c.len_utf8();
        let rest = &line[after..];
        let start = after + (rest.len() - rest.trim_start().len());
        let Some(next) = line[start..].chars().next() else {
            continue;
        };
        let word: String = chars[..n]
            .iter()
            .rev()
            .map(|(_, ch)| *ch)
            .take_while(|ch| ch.is_alphabetic())
            .collect();
        let sentence_end = *c != '.' || word.chars().count() >= 5;
        let opens = next.is_uppercase() || next.is_ascii_digit() && sentence_end;
        if (sentence_end || next.is_uppercase() && word.chars().count() >= 4)
            && opens
            && start < line.len()
        {
            points.push(start);
        }
    }
    points.push(0);
    points
}

fn opens_a_header(line: &str) -> bool {
    let text = plain(line);
    has_date(&text) || looks_like_address(&text) || text.contains('<')
}

/// A line that ends a sentence cannot be the first half of a wrapped header.
fn ends_a_sentence(line: &str) -> bool {
    let text = plain(line);
    if text.ends_with(['!', '?', '。', '！', '？']) {
        return true;
    }
    let Some(before) = text.strip_suffix('.') else {
        return false;
    };
    before
        .chars()
        .rev()
        .take_while(|c| c.is_alphabetic())
        .count()
        >= 5
}

fn next_content_is_quoted(quoted: &[bool], lines: &[&str], from: usize) -> bool {
    (from.min(lines.len())..lines.len())
        .find(|&j| !lines[j].trim().is_empty())
        .is_some_and(|j| quoted[j])
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
    fn a_forward_keeps_the_note_and_a_bare_forward_everything() {
        // The forwarded part becomes an attachment (see forward.rs).
        let forwarded = "---------- Forwarded message ---------\nFrom: Bob <bob@example.net>\nDate: Mon, 3 Nov 2026\nSubject: Invoice\nTo: <erika@example.org>\n\nInvoice is wrong.";
        assert_eq!(extract_reply(&format!("FYI\n\n{forwarded}")), "FYI");
        assert_eq!(extract_reply(forwarded), forwarded);
    }

    #[test]
    fn quote_headers_in_other_languages_and_on_the_reply_line() {
        for (text, want) in [
            ("Bedankt!\n\nOp di 3 nov. 2026 om 10:12 schreef Support <s@example.com>:\n> Hallo", "Bedankt!"),
            ("Tak.\n\nDen tir. 3. nov. 2026 kl. 10.12 skrev Support <s@example.com>:\n> Hej", "Tak."),
            ("Dzięki\n\nwt., 3 lis 2026 o 10:12 Support <s@example.com> napisał(a):\n> Witam", "Dzięki"),
            ("Спасибо\n\nвт, 3 нояб. 2026 г. в 10:12, Support <s@example.com>:\n> Привет", "Спасибо"),
            ("Cảm ơn\n\nVào Th 3, 3 thg 11, 2026 vào lúc 10:12 Support <s@example.com> đã viết:\n> Chào", "Cảm ơn"),
            ("Thanks, works. On Tue, 3 Nov 2026 at 10:12, Support <s@example.com> wrote:\n> Try it", "Thanks, works."),
            ("Danke\nMaxAm 03.11.2026 um 10:12 schrieb Support <s@example.com>:\n> Hallo", "Danke\nMax"),
            ("好的，谢谢！Support <s@example.com> 于2026年11月3日周二 10:12写道：\n> 你好", "好的，谢谢！"),
        ] {
            assert_eq!(extract_reply(text), want, "{text}");
        }
    }

    #[test]
    fn a_reply_line_before_a_wrapped_header_stays() {
        let t = "Merci\nLe mar. 3 nov. 2026 à 10:12, Support\n<s@example.com> a écrit :\n> Bonjour";
        assert_eq!(extract_reply(t), "Merci");
    }

    #[test]
    fn links_and_tails_a_client_wrapped_out_of_the_quote_are_quoted() {
        let t = "Done.\n\nOn Tue, 3 Nov 2026 at 10:12, S <s@example.com> wrote:\n> Open\nhttps://example.com/a/very/long/link?with=query\n> and log in.\n";
        assert_eq!(extract_reply(t), "Done.");
        let t = "Ok.\n\nOn Tue, 3 Nov 2026 at 10:12, S <s@example.com> wrote:\n> > A long line of the older message that the client had to wrap somewhere\naround here.\n> > More.\n";
        assert_eq!(extract_reply(t), "Ok.");
    }

    #[test]
    fn header_blocks_in_other_languages() {
        let t = "Klopt.\n\nVan: Support <s@example.com>\nVerzonden: dinsdag 3 november 2026 10:12\nAan: Jan\nOnderwerp: Printer\n\nOud";
        assert_eq!(extract_reply(t), "Klopt.");
        let t = "Ок.\n\n-----Исходное сообщение-----\nОт: Support\nОтправлено: 3 ноября 2026 г. 10:12\n\nСтарое";
        assert_eq!(extract_reply(t), "Ок.");
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
