//! Where notifications attach to the mail intake. Each hook runs inside the
//! intake's transaction, so a notice queued here commits with the change it
//! announces (DESIGN.md invariant 2). Auto-replies, bounces, list mail and loops
//! never reach a hook, so they never trigger mail.
//!
//! Issue 4 (outbound) wires these: `ticket_opened` to the confirmation that
//! `create_ticket` sends for API tickets, `customer_replied` to
//! `notify::customer_replied`, `reopened` to `notify::reopened`.

use crate::error::EngineError;
use crate::model::{HistoryEntry, Ticket};
use crate::tx::Tx;

/// A mail opened `ticket` with its first message `entry`.
pub(crate) fn ticket_opened(
    _tx: &mut Tx<'_>,
    _ticket: &Ticket,
    _entry: &HistoryEntry,
) -> Result<(), EngineError> {
    Ok(())
}

/// A participant's mail was appended to `ticket` as `entry`.
pub(crate) fn customer_replied(
    _tx: &mut Tx<'_>,
    _ticket: &Ticket,
    _entry: &HistoryEntry,
) -> Result<(), EngineError> {
    Ok(())
}

/// A mail reopened the done `ticket` (now `backlog`); `entry` is its message.
pub(crate) fn reopened(
    _tx: &mut Tx<'_>,
    _ticket: &Ticket,
    _entry: &HistoryEntry,
) -> Result<(), EngineError> {
    Ok(())
}
