//! Turning raw bytes into the facts the intake decides on. Pure: no store, no
//! clock, no panics on any input, so the fuzz target can call it directly.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use super::text::{self, MailKind};
use crate::ops::attachments::NewAttachment;
use crate::validate::{EmailAddress, MAX_LINE_CHARS};

/// What the intake needs to know about one message, read once before the
/// transaction (which may run more than once on a conflict).
#[derive(Debug, Clone)]
pub struct ParsedMail {
    /// Normalised Message-ID (lower case, no angle brackets), if the mail has one.
    pub message_id: Option<String>,
    /// The Message-ID exactly as sent, in angle brackets: what our answer's
    /// In-Reply-To must repeat for the customer's client to thread it.
    pub message_id_as_sent: Option<String>,
    pub from: EmailAddress,
    pub from_name: Option<String>,
    pub subject: String,
    /// The whole readable body (quotes included): markers are searched here.
    pub full_text: String,
    /// Only the new text: what goes into the history.
    pub new_text: String,
    /// Every address in To, Cc, Delivered-To and X-Original-To, lower case.
    pub recipients: Vec<EmailAddress>,
    /// Cc and To addresses that are not ours: participants of a ticket.
    pub copied: Vec<EmailAddress>,
    /// In-Reply-To first, then References newest first; normalised.
    pub thread_ids: Vec<String>,
    pub kind: MailKind,
    pub attachments: Vec<NewAttachment>,
}

/// Why a message cannot be interpreted; it waits in quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    NotAMessage,
    NoSender,
    /// Over `max_message_bytes` though a door accepted it.
    TooLarge,
}

impl Unreadable {
    pub fn reason(&self) -> &'static str {
        match self {
            Unreadable::NotAMessage => "not a parseable RFC 5322 message",
            Unreadable::NoSender => "no valid sender address in From",
            Unreadable::TooLarge => "larger than inbound.max_message_bytes",
        }
    }
}

/// Parses `raw`. `envelope_from` is the SMTP reverse path (`Some("")` for
/// `MAIL FROM:<>`): it marks a robot, and stands in for a From that cannot be read.
pub fn parse_mail(raw: &[u8], envelope_from: Option<&str>) -> Result<ParsedMail, Unreadable> {
    let return_path_empty = envelope_from == Some("");
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(Unreadable::NotAMessage)?;
    // mail-parser's header accessors index the root part; a message without one
    // would panic there.
    if message.parts.is_empty() || message.parts[0].headers.is_empty() {
        return Err(Unreadable::NotAMessage);
    }
    let kind = text::classify(&message, return_path_empty);
    let (from, from_name) = sender(&message)
        .or_else(|| {
            let address = EmailAddress::parse(envelope_from?).ok()?;
            Some((address, None))
        })
        .ok_or(Unreadable::NoSender)?;
    let full_text = text::best_text(&message);
    let new_text = text::extract_reply(&full_text);
    let subject = one_line(message.subject().unwrap_or(""));
    let mut attachments = attachments(&message);
    if let Some(forwarded) = text::forwarded_part(&full_text, &subject) {
        // The history entry is the forwarder's note; what they forwarded stays
        // readable beside it.
        attachments.push(NewAttachment {
            filename: "forwarded.txt".into(),
            content_type: "text/plain; charset=utf-8".into(),
            bytes: forwarded.into_bytes(),
        });
    }
    let mut recipients = Vec::new();
    let mut copied = Vec::new();
    for address in [message.to(), message.cc()].into_iter().flatten() {
        for email in addresses(address) {
            push_unique(&mut copied, email.clone());
            push_unique(&mut recipients, email);
        }
    }
    for name in ["Delivered-To", "X-Original-To", "Envelope-To"] {
        for value in header_texts(&message, name) {
            if let Ok(email) = EmailAddress::parse(value.trim().trim_matches(['<', '>'])) {
                push_unique(&mut recipients, email);
            }
        }
    }
    let mut thread_ids = Vec::new();
    for id in ids_of(message.in_reply_to()) {
        push_unique(&mut thread_ids, id);
    }
    for id in ids_of(message.references()).into_iter().rev() {
        push_unique(&mut thread_ids, id);
    }
    Ok(ParsedMail {
        message_id: message
            .message_id()
            .map(crate::ops::tickets::normalize_message_id)
            .filter(|id| !id.is_empty()),
        message_id_as_sent: message
            .message_id()
            .map(|id| id.trim().trim_matches(['<', '>']).trim())
            .filter(|id| !id.is_empty() && !id.contains(char::is_whitespace))
            .map(|id| format!("<{id}>")),
        from,
        from_name,
        subject,
        full_text,
        new_text,
        recipients,
        copied,
        thread_ids,
        kind,
        attachments,
    })
}

fn sender(message: &Message) -> Option<(EmailAddress, Option<String>)> {
    let address = message.from().or_else(|| message.sender())?;
    let first = address.first()?;
    let email = EmailAddress::parse(first.address()?).ok()?;
    let name = first
        .name()
        .map(one_line)
        .filter(|name| !name.is_empty() && !name.contains('@'));
    Some((email, name))
}

fn addresses(address: &Address) -> Vec<EmailAddress> {
    address
        .iter()
        .filter_map(|addr| addr.address())
        .filter_map(|text| EmailAddress::parse(text).ok())
        .collect()
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// The values of every header called `name`, as text.
fn header_texts<'a>(message: &'a Message, name: &str) -> Vec<&'a str> {
    let Some(root) = message.parts.first() else {
        return vec![];
    };
    root.headers
        .iter()
        .filter(|header| header.name.as_str().eq_ignore_ascii_case(name))
        .filter_map(|header| header.value.as_text())
        .collect()
}

fn ids_of(value: &HeaderValue) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(text) => vec![text.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.as_ref()).collect(),
        _ => vec![],
    };
    raw.into_iter()
        .map(crate::ops::tickets::normalize_message_id)
        .filter(|id| !id.is_empty())
        .collect()
}

/// A subject as one line of at most 998 characters.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined.chars().take(MAX_LINE_CHARS).collect()
}

/// Attachments, inline images and attached messages; plus the HTML body,
/// sanitised, so that what is kept for the record can never run script or
/// load anything remote when some page shows it.
fn attachments(message: &Message) -> Vec<NewAttachment> {
    let mut found = Vec::new();
    for (index, part) in message.attachments().enumerate() {
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        let filename = part
            .attachment_name()
            .map(one_line)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| match &part.body {
                PartType::Message(_) => format!("message-{}.eml", index + 1),
                _ => format!("attachment-{}", index + 1),
            });
        found.push(NewAttachment {
            filename,
            content_type,
            bytes: part.contents().to_vec(),
        });
    }
    let html: Vec<String> = message
        .html_bodies()
        .filter_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        })
        .collect();
    // A text-only message has its text part listed among the HTML bodies too.
    if !html.is_empty()
        && message
            .html_bodies()
            .any(|p| matches!(p.body, PartType::Html(_)))
    {
        let clean = text::sanitize_html(&html.join("\n"));
        if !clean.trim().is_empty() {
            found.push(NewAttachment {
                filename: "message.html".into(),
                content_type: "text/html".into(),
                bytes: clean.into_bytes(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_read_with_its_thread_and_copies() {
        let raw = b"From: =?utf-8?q?Maria_M=C3=BCller?= <Maria@Example.org>\r\nTo: support@support.example.com\r\nCc: Chef <chef@example.org>\r\nSubject: Re: [#4] Drucker\r\nMessage-ID: <ABC@example.org>\r\nIn-Reply-To: <k1@support.example.com>\r\nReferences: <k0@support.example.com> <k1@support.example.com>\r\n\r\nGeht wieder.\r\n\r\nAm 1. Nov. 2026 um 10:00 schrieb Support <support@support.example.com>:\r\n> Bitte neu starten [ref:4-0011223344]\r\n";
        let mail = parse_mail(raw, None).unwrap();
        assert_eq!(mail.from.as_str(), "maria@example.org");
        assert_eq!(mail.from_name.as_deref(), Some("Maria Müller"));
        assert_eq!(mail.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(
            mail.thread_ids,
            vec!["k1@support.example.com", "k0@support.example.com"]
        );
        assert_eq!(mail.new_text, "Geht wieder.");
        assert!(mail.full_text.contains("[ref:4-0011223344]"));
        assert_eq!(mail.copied.len(), 2);
        assert_eq!(mail.kind, MailKind::Normal);
    }

    #[test]
    fn html_is_kept_sanitised() {
        let raw = b"From: a@example.org\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Hallo<script>alert(1)</script><img src=\"https://evil.example/x.png\"></p>\r\n";
        let mail = parse_mail(raw, None).unwrap();
        assert_eq!(mail.new_text, "Hallo");
        let html = mail
            .attachments
            .iter()
            .find(|a| a.filename == "message.html")
            .unwrap();
        let html = String::from_utf8_lossy(&html.bytes);
        assert!(
            !html.contains("script") && !html.contains("evil.example"),
            "{html}"
        );
    }

    #[test]
    fn a_forward_keeps_the_note_and_attaches_the_forwarded_message() {
        let raw = "From: erika@example.org\r\nSubject: Fwd: Rechnung 2026-17\r\n\r\nBitte pruefen, die Summe stimmt nicht.\r\n\r\n---------- Forwarded message ---------\r\nFrom: Buchhaltung <rechnung@lieferant.example>\r\nDate: Mon, 3 Nov 2026 at 09:00\r\nSubject: Rechnung 2026-17\r\nTo: <erika@example.org>\r\n\r\nAnbei die Rechnung ueber 120 EUR.\r\n";
        let mail = parse_mail(raw.as_bytes(), None).unwrap();
        assert_eq!(mail.new_text, "Bitte pruefen, die Summe stimmt nicht.");
        let forwarded = mail
            .attachments
            .iter()
            .find(|a| a.filename == "forwarded.txt")
            .expect("forwarded part attached");
        let forwarded = String::from_utf8_lossy(&forwarded.bytes);
        assert!(forwarded.contains("From: Buchhaltung"), "{forwarded}");
        assert!(
            forwarded.ends_with("Anbei die Rechnung ueber 120 EUR."),
            "{forwarded}"
        );
    }

    #[test]
    fn garbage_is_unreadable_not_a_panic() {
        assert_eq!(parse_mail(b"", None).unwrap_err(), Unreadable::NotAMessage);
        assert!(parse_mail(b"Subject: no sender\r\n\r\nhi", Some("")).is_err());
    }
}
