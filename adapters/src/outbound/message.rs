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
