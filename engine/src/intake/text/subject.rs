//! The subject of a ticket opened by mail: what the customer's client put in
//! front of it ("Re:", "AW:", "Fwd:", "SV:", "RE :") and old ticket tags
//! (`[#N]`) are noise in a ticket list and in our notices' subjects, which add
//! their own tag.

/// Reply prefixes of mail clients, lower case, without the colon; forward
/// prefixes are [`FORWARD_PREFIXES`].
const REPLY_PREFIXES: &[&str] = &[
    "re",
    "aw",
    "sv",
    "antw",
    "antwort",
    "odp",
    "odg",
    "rif",
    "ris",
    "res",
    "ynt",
    "vá",
    "ath",
    "atb",
    "tl",
    "trả lời",
    "回复",
    "回覆",
    "答复",
    "返信",
    "отв",
    "ответ",
];

use super::forward::FORWARD_PREFIXES;

/// The subject with leading reply/forward prefixes (also "Re[2]:", "RE :",
/// "AW: WG: Re:") and every `[#N]` tag removed, whitespace collapsed.
pub fn ticket_subject(subject: &str) -> String {
    let mut rest = without_ticket_tags(subject);
    loop {
        let trimmed = rest.trim_start();
        let Some(colon) = trimmed.find([':', '：']) else {
            break;
        };
        let prefix = trimmed[..colon].trim().to_lowercase();
        let bare = prefix
            .trim_end_matches(|c: char| c.is_ascii_digit() || matches!(c, '[' | ']' | '(' | ')'))
            .trim();
        if !REPLY_PREFIXES.contains(&bare) && !FORWARD_PREFIXES.contains(&bare) {
            break;
        }
        let after = &trimmed[colon..];
        let width = after.chars().next().map_or(1, char::len_utf8);
        rest = after[width..].to_string();
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes every `[#<digits>]`.
fn without_ticket_tags(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        match after.find(']') {
            Some(end) if end > 0 && after[..end].chars().all(|c| c.is_ascii_digit()) => {
                out.push_str(&rest[..start]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::ticket_subject;

    #[test]
    fn prefixes_and_tags_are_dropped() {
        for (raw, want) in [
            ("Re: Drucker", "Drucker"),
            ("AW: WG: Re: Drucker", "Drucker"),
            ("RE : Imprimante", "Imprimante"),
            ("Fwd: [#12] Invoice", "Invoice"),
            ("SV: Printer [#4]", "Printer"),
            ("Antw: Odp: VS: Printer", "Printer"),
            ("Re[2]: x", "x"),
            ("回复：打印机", "打印机"),
            ("Invoice: March", "Invoice: March"),
            ("Re: ", ""),
            ("[#abc] keep", "[#abc] keep"),
        ] {
            assert_eq!(ticket_subject(raw), want, "{raw}");
        }
    }
}
