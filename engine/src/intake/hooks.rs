//! Where notifications attach to the mail intake that are the intake's own (a
//! reply's notices belong to its record's kind: `Engine::take_customer_reply`,
//! shared with the portal). Each hook runs inside the
//! intake's transaction, so a notice queued here commits with the change it
//! announces (DESIGN.md invariant 2). Auto-replies, bounces, list mail and loops
//! never reach a hook, so they never trigger mail.
//!
//! The history excerpt of these notices is empty: sled cannot be scanned inside a
//! transaction, and the notice carries the new message itself.

use crate::error::EngineError;
use crate::model::NoticeKind;
use crate::model::{EntryBody, HistoryEntry, Ticket};
use crate::notify::HistoryExcerpt;
use crate::store::tables::{RowId, OUTBOX};
use crate::tx::Tx;
use crate::Engine;

fn text_of(entry: &HistoryEntry) -> &str {
    match &entry.body {
        EntryBody::Message { text, .. } => text,
        _ => "",
    }
}

/// A mail opened `ticket` with its first message `entry`: the requester's
/// confirmation, with the view link and the reply address. It answers the
/// customer's mail (`customer_message_id`, as sent, in angle brackets), so
/// their client shows it under what they wrote.
pub(crate) fn ticket_opened(
    engine: &Engine,
    tx: &mut Tx<'_>,
    ticket: &Ticket,
    entry: &HistoryEntry,
    customer_message_id: Option<&str>,
) -> Result<(), EngineError> {
    let author = match &entry.author {
        crate::model::Author::Contact { name, .. } | crate::model::Author::Staff { name, .. } => {
            name.clone()
        }
        crate::model::Author::System => String::new(),
    };
    let queued = engine.notify_requester(
        tx,
        NoticeKind::TicketCreated,
        ticket,
        &HistoryExcerpt::default(),
        serde_json::json!({"message": {"author": author, "text": text_of(entry)}}),
    )?;
    if let (Some(id), Some(parent)) = (queued, customer_message_id) {
        answer_in_thread(tx, id, parent)?;
    }
    Ok(())
}

/// Makes the queued notice `id` a reply to `parent`: In-Reply-To names it and
/// References ends with it (after our ticket's thread root, which later notices
/// name), as RFC 5322 3.6.4 builds a reply's References.
fn answer_in_thread(tx: &mut Tx<'_>, id: u64, parent: &str) -> Result<(), EngineError> {
    let Some(mut row) = OUTBOX.get(tx, &RowId(id))? else {
        return Ok(());
    };
    row.in_reply_to = Some(parent.to_string());
    row.references.retain(|reference| reference != parent);
    row.references.push(parent.to_string());
    OUTBOX.put(tx, &RowId(id), &row)
}
