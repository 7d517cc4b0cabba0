//! The outbox as the sender sees it: the rows due now, and one write per outcome.
//! A row marked `sent` is never handed out again, so once the SMTP server accepted a
//! message and `notice_sent` returned, no restart sends it twice.

use chrono::Duration;

use crate::error::EngineError;
use crate::model::{Author, EntryBody, Event, OutboxRow, OutboxState, Visibility};
use crate::notify::backoff;
use crate::ops::stats::NoticeOutcome;
use crate::store::tables::{DueKey, RowId, OUTBOX, OUTBOX_DUE};
use crate::store::trees::trailing_u64;
use crate::store::Tree;
use crate::tx::Tx;
use crate::Engine;

/// How often and how patiently a temporary failure is retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (the first one included) before the row fails for good.
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

/// What became of a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// Tried again after this wait.
    RetryIn(Duration),
    /// Out of attempts: failed, with a history event.
    GaveUp,
}

impl Engine {
    /// Pending rows whose next attempt is due, oldest first, at most `limit`.
    /// The due index is in time order, so rows deferred for later (a long SMTP
    /// outage leaves many) are not read at all.
    pub fn due_notices(&self, limit: usize) -> Result<Vec<OutboxRow>, EngineError> {
        let now = self.clock().now();
        crate::ops::due_rows(self, OUTBOX_DUE, OUTBOX, limit, |row| {
            row.state == OutboxState::Pending && row.next_attempt_at <= now
        })
    }

    /// Outbox rows, newest first, optionally only those in `state`.
    pub fn list_outbox(
        &self,
        state: Option<OutboxState>,
        request: crate::ops::PageRequest,
    ) -> Result<crate::Page<OutboxRow>, EngineError> {
        crate::ops::rows_page(
            self,
            OUTBOX,
            |row| state.is_none_or(|wanted| row.state == wanted),
            request,
        )
    }

    /// One outbox row by id.
    pub fn outbox_row(&self, id: u64) -> Result<Option<OutboxRow>, EngineError> {
        OUTBOX.get(&mut self.reader(), &RowId(id))
    }

    /// The outbox's wake-up counter: it changes when a transaction queued a notice.
    pub fn outbox_signal(&self) -> u64 {
        self.outbox_signal.current()
    }

    /// The server accepted the message (or its file was written): never again.
    pub fn notice_sent(&self, id: u64) -> Result<(), EngineError> {
        self.write(|tx| finish(tx, id, OutboxState::Sent, None).map(|_| ()))?;
        self.counters().count_notice(NoticeOutcome::Sent);
        Ok(())
    }

    /// Many rows written at once (the file transport's group commit): one
    /// transaction and one flush for all of them.
    pub fn notices_sent(&self, ids: &[u64]) -> Result<(), EngineError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for id in ids {
                finish(tx, *id, OutboxState::Sent, None)?;
            }
            Ok(())
        })?;
        for _ in ids {
            self.counters().count_notice(NoticeOutcome::Sent);
        }
        Ok(())
    }

    /// Not sent because the address bounces.
    pub fn notice_suppressed(&self, id: u64, reason: &str) -> Result<(), EngineError> {
        self.write(|tx| finish(tx, id, OutboxState::Suppressed, Some(reason)).map(|_| ()))?;
        self.counters().count_notice(NoticeOutcome::Suppressed);
        Ok(())
    }

    /// A temporary failure (connection refused, 4xx): retried with exponential
    /// backoff until `policy.max_attempts`, then failed with a history event.
    pub fn notice_deferred(
        &self,
        id: u64,
        reason: &str,
        policy: RetryPolicy,
    ) -> Result<Deferred, EngineError> {
        self.write(|tx| {
            let Some(mut row) = OUTBOX.get(tx, &RowId(id))? else {
                return Ok(Deferred::GaveUp);
            };
            row.attempts += 1;
            if row.attempts >= policy.max_attempts {
                let reason = format!("gave up after {} attempts: {reason}", row.attempts);
                fail(tx, id, &reason, false)?;
                return Ok(Deferred::GaveUp);
            }
            let wait = backoff(row.attempts, policy.base, policy.max);
            OUTBOX_DUE.remove(tx, &DueKey::new(row.next_attempt_at, id))?;
            row.next_attempt_at = tx.now + wait;
            OUTBOX_DUE.insert(tx, &DueKey::new(row.next_attempt_at, id))?;
            row.last_error = Some(short(reason));
            OUTBOX.put(tx, &RowId(id), &row)?;
            Ok(Deferred::RetryIn(wait))
        })
        .inspect(|deferred| {
            self.counters().count_notice(match deferred {
                Deferred::RetryIn(_) => NoticeOutcome::Deferred,
                Deferred::GaveUp => NoticeOutcome::Failed,
            })
        })
    }

    /// A permanent refusal (5xx): failed, a history event on its record, and the
    /// address marked as bouncing so that nothing more is sent to it.
    pub fn notice_failed(&self, id: u64, reason: &str) -> Result<(), EngineError> {
        self.write(|tx| fail(tx, id, reason, true))?;
        self.counters().count_notice(NoticeOutcome::Failed);
        Ok(())
    }

    /// The message was refused for good for a reason that is not the address's (a
    /// policy or spam rejection, a message that cannot be built): the row fails and
    /// the record shows it, but the address stays usable.
    pub fn notice_refused(&self, id: u64, reason: &str) -> Result<(), EngineError> {
        self.write(|tx| fail(tx, id, reason, false))?;
        self.counters().count_notice(NoticeOutcome::Failed);
        Ok(())
    }
}

fn fail(tx: &mut Tx<'_>, id: u64, reason: &str, mark_address: bool) -> Result<(), EngineError> {
    let Some(row) = finish(tx, id, OutboxState::Failed, Some(reason))? else {
        return Ok(());
    };
    if let Some(record) = row.record {
        tx.append_history(
            record,
            Author::System,
            Visibility::Internal,
            EntryBody::Event(Event::NotificationFailed {
                address: row.to.clone(),
                reason: short(reason),
            }),
        )?;
    }
    if mark_address {
        super::bounces::mark_bouncing(tx, &row.to, reason)?;
    }
    Ok(())
}

/// Moves a pending row to a final state; `None` when it is gone or already final.
fn finish(
    tx: &mut Tx<'_>,
    id: u64,
    state: OutboxState,
    reason: Option<&str>,
) -> Result<Option<OutboxRow>, EngineError> {
    let Some(mut row) = OUTBOX.get(tx, &RowId(id))? else {
        return Ok(None);
    };
    if row.state != OutboxState::Pending {
        return Ok(None);
    }
    row.state = state;
    row.finished_at = Some(tx.now);
    if state == OutboxState::Sent {
        // The recipient has the message and the record's history what it said; the
        // bodies were a quarter of the store on real mail, and sled keeps rewritten
        // values several times over until it reclaims them.
        row.text = String::new();
        row.html = String::new();
    }
    if let Some(reason) = reason {
        row.last_error = Some(short(reason));
    }
    OUTBOX.put(tx, &RowId(id), &row)?;
    OUTBOX_DUE.remove(tx, &DueKey::new(row.next_attempt_at, id))?;
    Ok(Some(row))
}

impl Engine {
    /// Schema 1 keyed the due index by id alone; re-keys it by due time. Runs at
    /// open, in chunks of 1,000 rows a transaction, and is a no-op once done.
    pub(crate) fn migrate_outbox_due_from_schema_1(&self) -> Result<u64, EngineError> {
        let old_keys: Vec<Vec<u8>> = self
            .store
            .scan_prefix(Tree::OutboxDue, &[], false)
            .map(|item| item.map(|(key, _)| key))
            .filter(|item| item.as_ref().map_or(true, |key| key.len() == 8))
            .collect::<Result<_, _>>()?;
        for chunk in old_keys.chunks(1_000) {
            self.write(|tx| {
                for key in chunk {
                    tx.remove(Tree::OutboxDue, key)?;
                    let Some(id) = trailing_u64(key) else {
                        continue;
                    };
                    if let Some(row) = tx.get::<OutboxRow>(Tree::Outbox, key)? {
                        if row.state == OutboxState::Pending {
                            OUTBOX_DUE.insert(tx, &DueKey::new(row.next_attempt_at, id))?;
                        }
                    }
                }
                Ok(())
            })?;
        }
        Ok(old_keys.len() as u64)
    }
}

fn short(reason: &str) -> String {
    reason.chars().take(500).collect()
}
