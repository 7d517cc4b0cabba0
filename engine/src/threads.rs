//! The Message-ID index: every message of a record's thread, received or sent, so
//! that a reply naming one in `In-Reply-To` or `References` threads into the record.
//! Shared by the notices (which remember what they send) and the intake (which
//! remembers what it receives and looks replies up).

use crate::error::EngineError;
use crate::model::{RecordKind, RecordRef};
use crate::store::tables::{Reader, Writer};
use crate::store::Tree;

/// Records that `message_id` belongs to `record`'s thread.
pub(crate) fn remember_message_id(
    writer: &mut dyn Writer,
    message_id: &str,
    record: RecordRef,
) -> Result<(), EngineError> {
    let key = normalize_message_id(message_id);
    if key.is_empty() {
        return Ok(());
    }
    writer.write_raw(Tree::MessageIds, key.as_bytes(), &record.key_prefix())
}

/// The record whose thread holds `message_id` (normalised), if any.
pub(crate) fn record_of_message_id(
    reader: &mut dyn Reader,
    message_id: &str,
) -> Result<Option<RecordRef>, EngineError> {
    Ok(reader
        .read_raw(Tree::MessageIds, message_id.as_bytes())?
        .and_then(|bytes| record_of_value(&bytes)))
}

/// Values are `kind (u8) ++ id (u64 BE)`; stores of schema 2 hold a ticket id alone.
fn record_of_value(bytes: &[u8]) -> Option<RecordRef> {
    match bytes.len() {
        8 => Some(RecordRef {
            kind: RecordKind::Ticket,
            id: u64::from_be_bytes(bytes.try_into().ok()?),
        }),
        9 => Some(RecordRef {
            kind: RecordKind::from_code(bytes[0])?,
            id: u64::from_be_bytes(bytes[1..].try_into().ok()?),
        }),
        _ => None,
    }
}

/// `<ABC@Host>` and `abc@host` are the same Message-ID.
pub fn normalize_message_id(message_id: &str) -> String {
    message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}
