//! An outbox row as an RFC 5322 message: one recipient, the headers of CONTRACT.md
//! section 6, a text and an HTML part.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use kontor_engine::model::OutboxRow;

/// Builds the message of `row` from `from`. Fails only on an address lettre refuses.
pub fn build(row: &OutboxRow, from: &Mailbox) -> Result<Message, String> {
    let to_address: lettre::Address = row
        .to
        .as_str()
        .parse()
        .map_err(|error| format!("recipient {}: {error}", row.to))?;
    let to = Mailbox::new(row.to_name.clone().filter(|n| !n.is_empty()), to_address);
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(row.subject.clone())
        .message_id(Some(row.message_id.clone()))
        .date(row.created_at.into());
    if let Some(reply_to) = &row.reply_to {
        let address: lettre::Address = reply_to
            .parse()
            .map_err(|error| format!("reply-to {reply_to}: {error}"))?;
        builder = builder.reply_to(Mailbox::new(None, address));
    }
    if let Some(in_reply_to) = &row.in_reply_to {
        builder = builder.in_reply_to(in_reply_to.clone());
    }
    if !row.references.is_empty() {
        builder = builder.references(row.references.join(" "));
    }
    if row.automatic {
        builder = builder.raw_header(raw("Auto-Submitted", "auto-generated"));
    }
    // Outlook and Exchange: no out-of-office or read receipts back to a notice.
    builder = builder.raw_header(raw("X-Auto-Response-Suppress", "All"));
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(row.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(row.html.clone()),
                ),
        )
        .map_err(|error| error.to_string())
}

fn raw(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_engine::model::{NoticeKind, OutboxState};
    use kontor_engine::validate::EmailAddress;

    fn row(automatic: bool) -> OutboxRow {
        let now = chrono::Utc::now();
        OutboxRow {
            id: 7,
            kind: NoticeKind::TicketCreated,
            record: None,
            ticket_number: Some(42),
            to: EmailAddress::parse("maria@example.org").unwrap(),
            to_name: Some("Maria Müller".into()),
            message_id: "<kontor.7.42@support.example.com>".into(),
            in_reply_to: Some("<kontor.ticket.3@support.example.com>".into()),
            references: vec!["<kontor.ticket.3@support.example.com>".into()],
            reply_to: Some("support+42-0a1b2c3d4e@support.example.com".into()),
            subject: "[#42] Ihre Anfrage ist eingegangen: Bondrucker".into(),
            text: "Hallo\n\n[ref:42-0a1b2c3d4e]".into(),
            html: "<p>Hallo</p><span style=\"display:none\">[ref:42-0a1b2c3d4e]</span>".into(),
            automatic,
            created_at: now,
            state: OutboxState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            finished_at: None,
        }
    }

    #[test]
    fn a_notice_carries_every_header_of_the_contract() {
        let from: Mailbox = "Support <support@support.example.com>".parse().unwrap();
        let bytes = build(&row(true), &from).unwrap().formatted();
        let text = String::from_utf8_lossy(&bytes);
        for header in [
            "Message-ID: <kontor.7.42@support.example.com>",
            "In-Reply-To: <kontor.ticket.3@support.example.com>",
            "References: <kontor.ticket.3@support.example.com>",
            "Reply-To: support+42-0a1b2c3d4e@support.example.com",
            "Auto-Submitted: auto-generated",
            "X-Auto-Response-Suppress: All",
            "multipart/alternative",
        ] {
            assert!(text.contains(header), "{header} missing in {text}");
        }
        let personal = build(&row(false), &from).unwrap().formatted();
        assert!(!String::from_utf8_lossy(&personal).contains("Auto-Submitted"));
    }
}
