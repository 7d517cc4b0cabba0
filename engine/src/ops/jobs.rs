//! Scheduled jobs (CONTRACT.md section 7): what each job does, at the engine's "now".
//! When they run is the adapters' business: the scheduler in `kontor serve` and
//! `kontor jobs run NAME [--now]` call the same functions.

use chrono::{DateTime, Duration, Utc};

use crate::error::EngineError;
use crate::ids::TicketId;
use crate::model::{
    Author, EntryBody, Event, NoticeKind, RecordRef, Ticket, TicketStatus, Visibility,
};
use crate::ops::tickets::{change_status, load_ticket, save_ticket};
use crate::store::tables::{TicketList, IDEMPOTENCY, TICKETS};
use crate::store::trees::{key_of, trailing_u64};
use crate::store::Tree;
use crate::Engine;

/// The jobs of the contract, and `housekeeping`, which prunes what only matters for
/// a while (idempotency keys, the loop guards' hourly counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    AutoClose,
    ExpireQuotes,
    RemindSignatures,
    Housekeeping,
}

/// How long an idempotency key is kept: the contract asks for 24 hours at least; a
/// week also covers a point of sale that retries after a weekend offline.
pub const IDEMPOTENCY_KEEP_DAYS: i64 = 7;

/// Keys removed per transaction while pruning, so no batch grows without bound.
const PRUNE_CHUNK: usize = 1_000;

impl Job {
    pub const ALL: [Job; 4] = [
        Job::AutoClose,
        Job::ExpireQuotes,
        Job::RemindSignatures,
        Job::Housekeeping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::AutoClose => "auto_close",
            Job::ExpireQuotes => "expire_quotes",
            Job::RemindSignatures => "remind_signatures",
            Job::Housekeeping => "housekeeping",
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|job| job.name() == name)
    }
}

/// The settings of `auto_close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoClose {
    /// Remind the customer once the ticket has waited on them this many days...
    pub remind_days: u32,
    /// ...and set it `done` after this many.
    pub close_days: u32,
}

/// The settings of `remind_signatures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemindSignatures {
    /// Remind a signer this many days after the document was sent, and again every
    /// this many days...
    pub after_days: u32,
    /// ...at most this many times.
    pub max_reminders: u32,
}

impl Default for RemindSignatures {
    fn default() -> Self {
        RemindSignatures {
            after_days: 3,
            max_reminders: 3,
        }
    }
}

/// The settings of every job, from `[schedule]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSettings {
    pub auto_close: AutoClose,
    pub remind_signatures: RemindSignatures,
}

/// What one run of a job did, for its log line and for `kontor jobs run`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub job: &'static str,
    /// Records looked at.
    pub examined: u64,
    pub reminded: u64,
    pub closed: u64,
    pub expired: u64,
    /// Keys and counters removed by `housekeeping`.
    pub pruned: u64,
    /// Said when the job's records do not exist in this version.
    pub note: Option<&'static str>,
}

impl std::fmt::Display for JobReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} examined", self.job, self.examined)?;
        match self.job {
            "auto_close" => write!(f, ", {} reminded, {} closed", self.reminded, self.closed)?,
            "expire_quotes" => write!(f, ", {} expired", self.expired)?,
            "housekeeping" => write!(f, ", {} pruned", self.pruned)?,
            _ => write!(f, ", {} reminded", self.reminded)?,
        }
        if let Some(note) = self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// What `auto_close` does with one waiting ticket at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Nothing,
    Remind,
    Close,
}

/// When the ticket started waiting on the customer. Tickets from before
/// `waiting_since` existed count from their last change.
fn waiting_since(ticket: &Ticket) -> DateTime<Utc> {
    ticket.waiting_since.unwrap_or(ticket.updated_at)
}

fn due(ticket: &Ticket, settings: AutoClose, now: DateTime<Utc>) -> Due {
    let since = waiting_since(ticket);
    let waited = now - since;
    if waited >= Duration::days(i64::from(settings.close_days)) {
        Due::Close
    } else if waited >= Duration::days(i64::from(settings.remind_days))
        && ticket.reminded_at.is_none_or(|at| at < since)
    {
        Due::Remind
    } else {
        Due::Nothing
    }
}

impl Engine {
    /// Runs `job` once at the engine's clock.
    pub fn run_job(&self, job: Job, settings: JobSettings) -> Result<JobReport, EngineError> {
        match job {
            Job::AutoClose => self.auto_close(settings.auto_close),
            Job::ExpireQuotes => {
                let (examined, expired) = self.expire_quotes()?;
                Ok(JobReport {
                    job: job.name(),
                    examined,
                    expired,
                    ..JobReport::default()
                })
            }
            Job::RemindSignatures => {
                let (examined, reminded) = self.remind_signatures(settings.remind_signatures)?;
                Ok(JobReport {
                    job: job.name(),
                    examined,
                    reminded,
                    ..JobReport::default()
                })
            }
            Job::Housekeeping => self.housekeeping(),
        }
    }

    /// Removes idempotency keys older than `IDEMPOTENCY_KEEP_DAYS` and the loop
    /// guards' counters of hours before the last one: both only matter for a while,
    /// and both would otherwise grow for ever.
    pub fn housekeeping(&self) -> Result<JobReport, EngineError> {
        let now = self.clock().now();
        let mut report = JobReport {
            job: Job::Housekeeping.name(),
            ..JobReport::default()
        };
        let oldest_key = now - Duration::days(IDEMPOTENCY_KEEP_DAYS);
        let mut stale = Vec::new();
        for (key, record) in IDEMPOTENCY.entries(&mut self.reader())? {
            report.examined += 1;
            if record.at < oldest_key {
                stale.push((IDEMPOTENCY.tree, key));
            }
        }
        // The guards read the counter of the current hour only.
        let current_hour = (now.timestamp().max(0) as u64) / 3600;
        for tree in [Tree::NoticesPerHour, Tree::SenderHourly] {
            for item in self.store.scan_prefix(tree, &[], false) {
                let (key, _) = item?;
                report.examined += 1;
                if trailing_u64(&key).is_some_and(|hour| hour + 1 < current_hour) {
                    stale.push((tree, key));
                }
            }
        }
        for chunk in stale.chunks(PRUNE_CHUNK) {
            self.write(|tx| {
                for (tree, key) in chunk {
                    tx.remove(*tree, key)?;
                }
                Ok(())
            })?;
            report.pruned += chunk.len() as u64;
        }
        Ok(report)
    }

    /// Reminds the customer on tickets waiting on them for `remind_days`, once per
    /// wait, and sets `done` those waiting for `close_days`. Each ticket is its own
    /// transaction, which checks the ticket again, so a reply that arrives while the
    /// job runs wins, and a reminder is never sent twice.
    pub fn auto_close(&self, settings: AutoClose) -> Result<JobReport, EngineError> {
        let now = self.clock().now();
        let mut report = JobReport {
            job: Job::AutoClose.name(),
            ..JobReport::default()
        };
        let waiting: Vec<TicketId> = TicketList::Status(TicketStatus::WaitingOnCustomer)
            .ids(self.store.as_ref(), false)
            .collect::<Result<_, _>>()?;
        for id in waiting {
            report.examined += 1;
            let Some(ticket) = TICKETS.get(&mut self.reader(), &id)? else {
                continue;
            };
            let action = due(&ticket, settings, now);
            if action == Due::Nothing {
                continue;
            }
            let history = self.history_excerpt(id)?;
            let done = self.write(|tx| {
                let mut ticket = load_ticket(tx, id)?;
                if ticket.status != TicketStatus::WaitingOnCustomer
                    || due(&ticket, settings, tx.now) != action
                {
                    return Ok(false);
                }
                match action {
                    Due::Close => {
                        let ticket = change_status(tx, id, TicketStatus::Done, Author::System)?;
                        self.notify_requester(
                            tx,
                            NoticeKind::TicketDone,
                            &ticket,
                            &history,
                            serde_json::json!({"auto_closed": true}),
                        )?;
                    }
                    Due::Remind => {
                        ticket.reminded_at = Some(tx.now);
                        save_ticket(tx, &ticket)?;
                        tx.append_history(
                            RecordRef::ticket(id),
                            Author::System,
                            Visibility::Public,
                            EntryBody::Event(Event::Reminded),
                        )?;
                        let close_in = i64::from(settings.close_days)
                            - (tx.now - waiting_since(&ticket)).num_days();
                        self.notify_requester(
                            tx,
                            NoticeKind::WaitingOnCustomer,
                            &ticket,
                            &history,
                            serde_json::json!({"reminder": true, "close_in_days": close_in.max(1)}),
                        )?;
                    }
                    Due::Nothing => {}
                }
                Ok(true)
            })?;
            if done {
                match action {
                    Due::Close => report.closed += 1,
                    Due::Remind => report.reminded += 1,
                    Due::Nothing => {}
                }
            }
        }
        Ok(report)
    }

    /// When `job` last ran (the time it was due), as the scheduler recorded it.
    pub fn job_last_run(&self, job: Job) -> Result<Option<DateTime<Utc>>, EngineError> {
        let key = job_key(job);
        Ok(self
            .store
            .get(Tree::Meta, &key)?
            .and_then(|bytes| trailing_u64(&bytes))
            .and_then(|millis| DateTime::from_timestamp_millis(millis as i64)))
    }

    /// Records that `job` ran for its time `due_at`.
    pub fn record_job_run(&self, job: Job, due_at: DateTime<Utc>) -> Result<(), EngineError> {
        let millis = due_at.timestamp_millis().max(0) as u64;
        self.write(|tx| tx.put_raw(Tree::Meta, &job_key(job), &millis.to_be_bytes()))
    }
}

fn job_key(job: Job) -> Vec<u8> {
    key_of(&[b"job.last_run.", job.name().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting_ticket(since: DateTime<Utc>, reminded_at: Option<DateTime<Utc>>) -> Ticket {
        Ticket {
            id: TicketId(1),
            number: 1,
            subject: "Drucker".into(),
            status: TicketStatus::WaitingOnCustomer,
            channel: crate::model::Channel::Api,
            company_id: None,
            requester: crate::model::Requester {
                contact_id: None,
                name: None,
                email: crate::validate::EmailAddress::parse("a@example.org").ok(),
            },
            assignee_id: None,
            created_at: since,
            updated_at: since,
            done_at: None,
            participants: vec![],
            linked_ticket_id: None,
            origin: None,
            waiting_since: Some(since),
            reminded_at,
        }
    }

    #[test]
    fn a_waiting_ticket_is_reminded_once_per_wait_then_closed() {
        let settings = AutoClose {
            remind_days: 7,
            close_days: 14,
        };
        let since = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Duration::days(1);
        let fresh = waiting_ticket(since, None);
        assert_eq!(due(&fresh, settings, since + day * 6), Due::Nothing);
        assert_eq!(due(&fresh, settings, since + day * 7), Due::Remind);
        let reminded = waiting_ticket(since, Some(since + day * 7));
        assert_eq!(due(&reminded, settings, since + day * 8), Due::Nothing);
        assert_eq!(due(&reminded, settings, since + day * 14), Due::Close);
        // A reminder of an earlier wait does not count for this one.
        let earlier = waiting_ticket(since, Some(since - day));
        assert_eq!(due(&earlier, settings, since + day * 7), Due::Remind);
    }

    #[test]
    fn housekeeping_prunes_counters_of_past_hours_and_keeps_the_current_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(dir.path(), crate::EngineConfig::default()).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        engine.set_clock(std::sync::Arc::new(crate::clock::FixedClock::new(now)));
        let hour = now.timestamp() as u64 / 3600;
        let counter = |hour: u64| key_of(&[b"kasse@example.org", &[0], &hour.to_be_bytes()]);
        engine
            .write(|tx| {
                for tree in [Tree::NoticesPerHour, Tree::SenderHourly] {
                    for at in [hour - 5, hour - 2, hour - 1, hour] {
                        tx.put_raw(tree, &counter(at), &1u64.to_be_bytes())?;
                    }
                }
                Ok(())
            })
            .unwrap();
        let report = engine.housekeeping().unwrap();
        assert_eq!(report.pruned, 4, "{report}");
        for tree in [Tree::NoticesPerHour, Tree::SenderHourly] {
            let kept: Vec<u64> = engine
                .store
                .scan_prefix(tree, &[], false)
                .map(|item| trailing_u64(&item.unwrap().0).unwrap())
                .collect();
            assert_eq!(kept, vec![hour - 1, hour]);
        }
    }

    #[test]
    fn job_names_round_trip() {
        for job in Job::ALL {
            assert_eq!(Job::parse(job.name()), Some(job));
        }
        assert_eq!(Job::parse("close_everything"), None);
    }
}
