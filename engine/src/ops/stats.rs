//! What the engine tells operators about itself (`GET /metrics` renders it):
//! counters kept since the process started, and gauges read from the store when
//! asked. The engine only counts and reads; the text format is the adapter's.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;

use crate::error::EngineError;
use crate::intake::IntakeOutcome;
use crate::model::{OutboxRow, OutboxState};
use crate::store::stats::CommitSnapshot;
use crate::store::trees::trailing_u64;
use crate::store::Tree;
use crate::Engine;

/// Every intake outcome, in the order the counters keep them.
pub const INTAKE_OUTCOMES: [IntakeOutcome; 9] = [
    IntakeOutcome::Created,
    IntakeOutcome::Appended,
    IntakeOutcome::Reopened,
    IntakeOutcome::Duplicate,
    IntakeOutcome::AutoReply,
    IntakeOutcome::Bounce,
    IntakeOutcome::List,
    IntakeOutcome::Loop,
    IntakeOutcome::Rejected,
];

/// What became of a delivery attempt, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeOutcome {
    Sent,
    Deferred,
    Failed,
    Suppressed,
}

impl NoticeOutcome {
    pub const ALL: [NoticeOutcome; 4] = [
        NoticeOutcome::Sent,
        NoticeOutcome::Deferred,
        NoticeOutcome::Failed,
        NoticeOutcome::Suppressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeOutcome::Sent => "sent",
            NoticeOutcome::Deferred => "deferred",
            NoticeOutcome::Failed => "failed",
            NoticeOutcome::Suppressed => "suppressed",
        }
    }
}

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct EngineCounters {
    mail_in: [AtomicU64; INTAKE_OUTCOMES.len()],
    /// Intakes that stored nothing (the store refused: a full disk, a failing
    /// flush); the door said "try later", so the message is still the sender's.
    mail_in_failed: AtomicU64,
    notices: [AtomicU64; NoticeOutcome::ALL.len()],
}

impl EngineCounters {
    pub fn count_mail_in(&self, outcome: IntakeOutcome) {
        if let Some(slot) = INTAKE_OUTCOMES.iter().position(|known| *known == outcome) {
            self.mail_in[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_mail_in_failed(&self) {
        self.mail_in_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_notice(&self, outcome: NoticeOutcome) {
        if let Some(slot) = NoticeOutcome::ALL
            .iter()
            .position(|known| *known == outcome)
        {
            self.notices[slot].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The engine's state for operators, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationalStats {
    /// Messages taken in by outcome, every door together, since the start.
    pub mail_in: Vec<(&'static str, u64)>,
    /// Intakes the store could not take since the start (every door together).
    pub mail_in_failed: u64,
    /// Delivery attempts by outcome since the start.
    pub notice_outcomes: Vec<(&'static str, u64)>,
    /// Notices waiting for their first or next attempt.
    pub outbox_pending: u64,
    /// How long the oldest waiting notice has waited since it was queued.
    pub outbox_oldest_pending_seconds: f64,
    /// Changelog entries the search index has not applied yet.
    pub index_lag: u64,
    pub store_bytes: Option<u64>,
    pub commit: Option<CommitSnapshot>,
}

impl Engine {
    /// The process-lifetime counters the operations bump.
    pub fn counters(&self) -> &EngineCounters {
        &self.counters
    }

    /// Reads the counters and the store's gauges. The pending notices are read
    /// through the due index, which holds only the pending ones, so the cost
    /// follows the queue, not the store.
    pub fn operational_stats(&self) -> Result<OperationalStats, EngineError> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mail_in = INTAKE_OUTCOMES
            .iter()
            .zip(&self.counters.mail_in)
            .map(|(outcome, count)| (outcome.as_str(), load(count)))
            .collect();
        let notice_outcomes = NoticeOutcome::ALL
            .iter()
            .zip(&self.counters.notices)
            .map(|(outcome, count)| (outcome.as_str(), load(count)))
            .collect();
        let now = self.clock().now();
        let mut outbox_pending = 0;
        let mut oldest = None;
        for item in self.store.scan_prefix(Tree::OutboxDue, &[], false) {
            let (key, _) = item?;
            let Some(id) = trailing_u64(&key) else {
                continue;
            };
            if let Some(row) = self.read::<OutboxRow>(Tree::Outbox, &id.to_be_bytes())? {
                if row.state == OutboxState::Pending {
                    outbox_pending += 1;
                    oldest = Some(oldest.map_or(row.created_at, |at: chrono::DateTime<Utc>| {
                        at.min(row.created_at)
                    }));
                }
            }
        }
        let outbox_oldest_pending_seconds = oldest
            .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        let index_lag = match self.search_index() {
            Ok(index) => self.changelog_head()?.saturating_sub(index.applied_seq()),
            // No data dir (an in-memory engine): no index, nothing to lag.
            Err(_) => 0,
        };
        Ok(OperationalStats {
            mail_in,
            mail_in_failed: load(&self.counters.mail_in_failed),
            notice_outcomes,
            outbox_pending,
            outbox_oldest_pending_seconds,
            index_lag,
            store_bytes: self.store.size_on_disk(),
            commit: self.store.commit_stats(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_per_outcome() {
        let engine = Engine::in_memory(crate::EngineConfig::default());
        engine.counters().count_mail_in(IntakeOutcome::Created);
        engine.counters().count_mail_in(IntakeOutcome::Created);
        engine.counters().count_notice(NoticeOutcome::Sent);
        let stats = engine.operational_stats().unwrap();
        assert!(stats.mail_in.contains(&("created", 2)));
        assert!(stats.mail_in.contains(&("rejected", 0)));
        assert!(stats.notice_outcomes.contains(&("sent", 1)));
        assert_eq!(stats.outbox_pending, 0);
    }
}
