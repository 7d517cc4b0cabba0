//! The outbox sender: the only place that talks SMTP out. It drains the outbox rows the
//! engine queued, one recipient per message, over lettre's SMTP transport or into
//! `.eml` files (`outbound.transport = "file"`).
//!
//! Delivery is at least once, and never twice after the server accepted a message:
//! a row is marked `sent` in a durable write right after the server's `250`. If the
//! store refuses that write (a full disk), the outcome is kept in memory and recorded
//! before anything else is sent. The window left is a restart (or crash) before the
//! outcome is recorded: the row is still pending afterwards and is sent again.
//! Temporary failures (connection refused, timeouts, `4xx`) are retried with
//! exponential backoff; a permanent one (`5xx`) fails the row and records a
//! `notification_failed` event on its record; when it blames the address (see
//! [`blames_the_address`]) the address is marked as bouncing.

mod message;
pub mod webhooks;

pub use message::build as build_message;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};
use tokio::sync::{watch, Semaphore};

use kontor_engine::model::OutboxRow;
use kontor_engine::ops::outbox::{Deferred, RetryPolicy};
use kontor_engine::Engine;

use crate::config::Config;

/// How long the sender sleeps when nothing is due and nothing new was queued.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How often an idle sender looks at the engine's wake-up counter.
const SIGNAL_POLL: Duration = Duration::from_millis(10);
/// Rows taken from the outbox per round.
const BATCH: usize = 256;
/// The first and the longest pause after the store refused a read or a write.
const STORE_BACKOFF_FIRST: Duration = Duration::from_millis(500);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where messages go.
#[derive(Debug, Clone)]
pub enum TransportSettings {
    Smtp { url: String },
    File { dir: PathBuf },
}

/// The sender's part of the config file.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub transport: TransportSettings,
    pub from: Mailbox,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    /// Signs every message when `[outbound] dkim_selector` and the key file are set.
    pub dkim: Option<Arc<crate::dkim::DkimSigner>>,
}

impl SenderSettings {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let outbound = &config.outbound;
        let from: Mailbox = outbound
            .from
            .parse()
            .map_err(|error| anyhow::anyhow!("outbound.from {:?}: {error}", outbound.from))?;
        let transport = match outbound.transport.as_str() {
            "smtp" => {
                // Checked now, so a bad URL stops the start instead of every send.
                AsyncSmtpTransport::<Tokio1Executor>::from_url(&outbound.smtp_url).map_err(
                    |error| anyhow::anyhow!("outbound.smtp_url {:?}: {error}", outbound.smtp_url),
                )?;
                TransportSettings::Smtp {
                    url: outbound.smtp_url.clone(),
                }
            }
            _ => TransportSettings::File {
                dir: outbound.file_dir.clone(),
            },
        };
        let dkim = if outbound.dkim_selector.trim().is_empty() {
            None
        } else {
            // d= is the domain of our From, the one receivers align DMARC on.
            let domain = from.email.domain().to_string();
            Some(Arc::new(crate::dkim::DkimSigner::load(
                outbound.dkim_selector.trim(),
                &outbound.dkim_private_key_file,
                &domain,
            )?))
        };
        Ok(SenderSettings {
            dkim,
            transport,
            from,
            retry: RetryPolicy {
                max_attempts: outbound.max_attempts,
                base: chrono::Duration::seconds(i64::from(outbound.retry_base_seconds)),
                max: chrono::Duration::seconds(i64::from(outbound.retry_max_seconds)),
            },
            concurrency: outbound.concurrency.max(1) as usize,
        })
    }
}

/// The transport, built once: the SMTP one keeps a connection pool.
#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(PathBuf),
}

impl Transport {
    /// Builds the transport; the SMTP pool holds one connection per message in flight.
    pub fn new(settings: &TransportSettings, concurrency: usize) -> anyhow::Result<Self> {
        Ok(match settings {
            TransportSettings::Smtp { url } => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .pool_config(PoolConfig::new().max_size(concurrency.max(1) as u32))
                    .build(),
            ),
            TransportSettings::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|error| {
                    anyhow::anyhow!("outbound.file_dir {}: {error}", dir.display())
                })?;
                Transport::File(dir.clone())
            }
        })
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Accepted,
    Temporary(String),
    /// Refused for good because of the address: it is marked bouncing.
    Permanent(String),
    /// Refused for good for another reason (policy, spam, the message itself): the
    /// row fails, the address stays usable.
    Refused(String),
}

/// Whether a permanent SMTP refusal blames the recipient's address. The enhanced
/// status code decides when there is one (RFC 3463: 5.1.x addressing, 5.2.1 mailbox
/// disabled); otherwise the basic code (550, 551, 553 name the mailbox). A 5.7.x
/// spam or policy rejection does not make an address bounce.
pub fn blames_the_address(reply: &str) -> bool {
    // lettre writes "permanent error (550): 5.1.1 <a@b>: user unknown".
    let words: Vec<&str> = reply
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter(|word| !word.is_empty())
        .collect();
    let is_enhanced = |word: &&str| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && parts[0] == "5"
            && parts[1..].iter().all(|part| {
                !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
            })
    };
    match words.iter().find(|word| is_enhanced(word)) {
        Some(code) => code.starts_with("5.1.") || *code == "5.2.1",
        None => words
            .iter()
            .any(|word| matches!(*word, "550" | "551" | "553")),
    }
}

/// Drains the outbox until `stop` turns true.
pub async fn run(engine: Arc<Engine>, settings: SenderSettings, mut stop: watch::Receiver<bool>) {
    let transport = match Transport::new(&settings.transport, settings.concurrency) {
        Ok(transport) => transport,
        Err(error) => {
            tracing::error!(%error, "the outbox sender cannot start");
            return;
        }
    };
    let limit = Arc::new(Semaphore::new(settings.concurrency));
    // Attempts made whose outcome the store refused to record (a full disk). They
    // are recorded before anything else is sent, and their rows are not sent again
    // meanwhile: the row still looks due, but the message went out.
    let mut unrecorded: Vec<Unrecorded> = Vec::new();
    let mut backoff = STORE_BACKOFF_FIRST;
    loop {
        if *stop.borrow() {
            return;
        }
        if !unrecorded.is_empty() {
            let mut still = Vec::new();
            for attempt in unrecorded.drain(..) {
                if let Err(attempt) = record(&engine, attempt, settings.retry).await {
                    still.push(attempt);
                }
            }
            unrecorded = still;
            if !unrecorded.is_empty() {
                pause(&mut backoff, &mut stop).await;
                continue;
            }
        }
        let signal_before = engine.outbox_signal();
        let due = {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.due_notices(BATCH)).await
        };
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(error)) => {
                tracing::error!(%error, "reading the outbox failed");
                pause(&mut backoff, &mut stop).await;
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "reading the outbox failed");
                pause(&mut backoff, &mut stop).await;
                continue;
            }
        };
        if due.is_empty() {
            backoff = STORE_BACKOFF_FIRST;
            wait_for_work(&engine, signal_before, &mut stop).await;
            continue;
        }
        if let Transport::File(dir) = &transport {
            let engine = engine.clone();
            let dir = dir.clone();
            let from = settings.from.clone();
            let dkim = settings.dkim.clone();
            let retry = settings.retry;
            let written = tokio::task::spawn_blocking(move || {
                deliver_files(&engine, &dir, &from, dkim.as_deref(), retry, due)
            })
            .await;
            match written {
                Ok(left) => unrecorded.extend(left),
                Err(error) => tracing::error!(%error, "writing notices to files failed"),
            }
            if unrecorded.is_empty() {
                backoff = STORE_BACKOFF_FIRST;
            } else {
                pause(&mut backoff, &mut stop).await;
            }
            continue;
        }
        let mut in_flight = tokio::task::JoinSet::new();
        for row in due {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let engine = engine.clone();
            let transport = transport.clone();
            let from = settings.from.clone();
            let dkim = settings.dkim.clone();
            let retry = settings.retry;
            in_flight.spawn(async move {
                let outcome =
                    deliver(&engine, &transport, &from, dkim.as_deref(), retry, row).await;
                drop(permit);
                outcome
            });
        }
        while let Some(outcome) = in_flight.join_next().await {
            if let Ok(Err(attempt)) = outcome {
                unrecorded.push(attempt);
            }
        }
        if unrecorded.is_empty() {
            backoff = STORE_BACKOFF_FIRST;
        } else {
            pause(&mut backoff, &mut stop).await;
        }
    }
}

/// Waits out a store refusal, longer each time in a row, or until stop.
async fn pause(backoff: &mut Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.changed() => {}
    }
    *backoff = (*backoff * 2).min(STORE_BACKOFF_MAX);
}

/// An attempt whose outcome is not in the store yet.
#[derive(Debug, Clone)]
pub struct Unrecorded {
    id: u64,
    to: String,
    attempt: Attempt,
}

/// Sleeps until a notice is queued, the idle poll passes (retries come due), or stop.
async fn wait_for_work(engine: &Engine, signal_before: u64, stop: &mut watch::Receiver<bool>) {
    let deadline = tokio::time::Instant::now() + IDLE_POLL;
    while tokio::time::Instant::now() < deadline && engine.outbox_signal() == signal_before {
        tokio::select! {
            _ = tokio::time::sleep(SIGNAL_POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One attempt at one row, and its outcome written to the outbox; the attempt back
/// when the store would not take its outcome.
pub async fn deliver(
    engine: &Arc<Engine>,
    transport: &Transport,
    from: &Mailbox,
    dkim: Option<&crate::dkim::DkimSigner>,
    retry: RetryPolicy,
    row: OutboxRow,
) -> Result<(), Unrecorded> {
    let id = row.id;
    let bounce = {
        let engine = engine.clone();
        let to = row.to.clone();
        tokio::task::spawn_blocking(move || engine.bounce_of(&to)).await
    };
    if let Ok(Ok(Some(bounce))) = bounce {
        let engine = engine.clone();
        let reason = format!("not sent: {} bounces ({})", row.to, bounce.reason);
        let _ = tokio::task::spawn_blocking(move || engine.notice_suppressed(id, &reason)).await;
        return Ok(());
    }
    let attempt = send(transport, from, dkim, &row).await;
    record(
        engine,
        Unrecorded {
            id,
            to: row.to.to_string(),
            attempt,
        },
        retry,
    )
    .await
}

/// Writes an attempt's outcome to the outbox.
async fn record(
    engine: &Arc<Engine>,
    unrecorded: Unrecorded,
    retry: RetryPolicy,
) -> Result<(), Unrecorded> {
    let engine = engine.clone();
    let (id, attempt) = (unrecorded.id, unrecorded.attempt.clone());
    let outcome = tokio::task::spawn_blocking(move || match &attempt {
        Attempt::Accepted => engine.notice_sent(id).map(|_| None),
        Attempt::Temporary(reason) => engine.notice_deferred(id, reason, retry).map(Some),
        Attempt::Permanent(reason) => engine.notice_failed(id, reason).map(|_| None),
        Attempt::Refused(reason) => engine.notice_refused(id, reason).map(|_| None),
    })
    .await;
    let to = &unrecorded.to;
    match outcome {
        Ok(Ok(Some(Deferred::RetryIn(wait)))) => {
            tracing::info!(id, %to, retry_in_ms = wait.num_milliseconds(), "delivery deferred");
            Ok(())
        }
        Ok(Ok(Some(Deferred::GaveUp))) => {
            tracing::warn!(id, %to, "delivery given up");
            Ok(())
        }
        Ok(Ok(None)) => Ok(()),
        Ok(Err(error)) => {
            tracing::error!(id, %error, "recording a delivery outcome failed; kept to record later");
            Err(unrecorded)
        }
        Err(error) => {
            tracing::error!(id, %error, "recording a delivery outcome failed; kept to record later");
            Err(unrecorded)
        }
    }
}

/// Hands one message to the transport.
pub async fn send(
    transport: &Transport,
    from: &Mailbox,
    dkim: Option<&crate::dkim::DkimSigner>,
    row: &OutboxRow,
) -> Attempt {
    let mut message = match message::build(row, from) {
        Ok(message) => message,
        Err(reason) => return Attempt::Refused(reason),
    };
    if let Some(signer) = dkim {
        signer.sign(&mut message);
    }
    match transport {
        Transport::Smtp(smtp) => match smtp.send(message).await {
            Ok(_) => Attempt::Accepted,
            Err(error) if error.is_permanent() => {
                let reply = error.to_string();
                if blames_the_address(&reply) {
                    Attempt::Permanent(reply)
                } else {
                    Attempt::Refused(reply)
                }
            }
            Err(error) => Attempt::Temporary(error.to_string()),
        },
        Transport::File(dir) => {
            let bytes = message.formatted();
            let path = dir.join(format!("{}.eml", row.id));
            match tokio::task::spawn_blocking(move || write_durably(&path, &bytes)).await {
                Ok(Ok(())) => Attempt::Accepted,
                Ok(Err(error)) => Attempt::Temporary(error.to_string()),
                Err(error) => Attempt::Temporary(error.to_string()),
            }
        }
    }
}

/// The file transport's group commit, like the store's: every due row's message is
/// written under a temporary name, then one sync makes all of them durable, then
/// they are renamed (so a reader of the directory never sees half a message) and the
/// directory synced once, and only then are all rows marked sent, in one write. A
/// notice is never recorded as sent before its file is on disk; a crash in between
/// leaves its row pending, and it is written again. Returns the outcomes the store
/// would not take.
fn deliver_files(
    engine: &Engine,
    dir: &std::path::Path,
    from: &Mailbox,
    dkim: Option<&crate::dkim::DkimSigner>,
    retry: RetryPolicy,
    rows: Vec<OutboxRow>,
) -> Vec<Unrecorded> {
    let mut outcomes: Vec<Unrecorded> = Vec::new();
    let mut written: Vec<WrittenNotice> = Vec::new();
    for row in rows {
        if let Ok(Some(bounce)) = engine.bounce_of(&row.to) {
            let reason = format!("not sent: {} bounces ({})", row.to, bounce.reason);
            if let Err(error) = engine.notice_suppressed(row.id, &reason) {
                tracing::error!(id = row.id, %error, "recording a suppressed notice failed");
            }
            continue;
        }
        let mut message = match message::build(&row, from) {
            Ok(message) => message,
            Err(reason) => {
                outcomes.push(Unrecorded {
                    id: row.id,
                    to: row.to.to_string(),
                    attempt: Attempt::Refused(reason),
                });
                continue;
            }
        };
        if let Some(signer) = dkim {
            signer.sign(&mut message);
        }
        let path = dir.join(format!("{}.eml", row.id));
        let temporary = path.with_extension("eml.tmp");
        match std::fs::write(&temporary, message.formatted()) {
            Ok(()) => written.push(WrittenNotice {
                id: row.id,
                to: row.to.to_string(),
                temporary,
                path,
            }),
            Err(error) => outcomes.push(Unrecorded {
                id: row.id,
                to: row.to.to_string(),
                attempt: Attempt::Temporary(error.to_string()),
            }),
        }
    }
    match publish_durably(dir, &written) {
        Ok(()) => {
            let ids: Vec<u64> = written.iter().map(|notice| notice.id).collect();
            if let Err(error) = engine.notices_sent(&ids) {
                tracing::error!(%error, notices = ids.len(), "recording written notices failed; kept to record later");
                return written
                    .into_iter()
                    .map(|notice| Unrecorded {
                        id: notice.id,
                        to: notice.to,
                        attempt: Attempt::Accepted,
                    })
                    .chain(record_each(engine, outcomes, retry))
                    .collect();
            }
        }
        Err(error) => {
            let reason = format!("writing to {}: {error}", dir.display());
            outcomes.extend(written.into_iter().map(|notice| {
                let _ = std::fs::remove_file(&notice.temporary);
                Unrecorded {
                    id: notice.id,
                    to: notice.to,
                    attempt: Attempt::Temporary(reason.clone()),
                }
            }));
        }
    }
    record_each(engine, outcomes, retry).collect()
}

/// Writes a whole file under a temporary name and renames it, so a reader of the
/// directory never sees half a message.
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("eml.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// A notice's file, written but not yet synced or renamed.
struct WrittenNotice {
    id: u64,
    to: String,
    temporary: std::path::PathBuf,
    path: std::path::PathBuf,
}

/// Syncs the written files' data, renames them into place and syncs the directory.
fn publish_durably(dir: &std::path::Path, written: &[WrittenNotice]) -> std::io::Result<()> {
    if written.is_empty() {
        return Ok(());
    }
    let directory = std::fs::File::open(dir)?;
    sync_files(&directory, written)?;
    for notice in written {
        std::fs::rename(&notice.temporary, &notice.path)?;
    }
    directory.sync_all()
}

/// One `syncfs` for the lot: per-file fsyncs cost a journal commit each.
#[cfg(target_os = "linux")]
fn sync_files(directory: &std::fs::File, _written: &[WrittenNotice]) -> std::io::Result<()> {
    rustix::fs::syncfs(directory).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_files(_directory: &std::fs::File, written: &[WrittenNotice]) -> std::io::Result<()> {
    for notice in written {
        std::fs::File::open(&notice.temporary)?.sync_all()?;
    }
    Ok(())
}

/// Records outcomes one at a time (the rare ones: refusals, temporary failures);
/// yields those the store would not take.
fn record_each<'a>(
    engine: &'a Engine,
    outcomes: Vec<Unrecorded>,
    retry: RetryPolicy,
) -> impl Iterator<Item = Unrecorded> + 'a {
    outcomes.into_iter().filter_map(move |unrecorded| {
        let outcome = match &unrecorded.attempt {
            Attempt::Accepted => engine.notice_sent(unrecorded.id),
            Attempt::Temporary(reason) => engine
                .notice_deferred(unrecorded.id, reason, retry)
                .map(|_| ()),
            Attempt::Permanent(reason) => engine.notice_failed(unrecorded.id, reason),
            Attempt::Refused(reason) => engine.notice_refused(unrecorded.id, reason),
        };
        match outcome {
            Ok(()) => None,
            Err(error) => {
                tracing::error!(id = unrecorded.id, %error, "recording a delivery outcome failed; kept to record later");
                Some(unrecorded)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::blames_the_address;

    #[test]
    fn only_refusals_of_the_address_make_it_bounce() {
        for reply in [
            "permanent error (550): 5.1.1 <kim@cafe.example>: user unknown",
            "permanent error (550): 5.2.1 mailbox disabled",
            "permanent error (553): mailbox name not allowed",
            "permanent error (550): no such user here",
        ] {
            assert!(blames_the_address(reply), "{reply}");
        }
        for reply in [
            "permanent error (554): 5.7.1 message rejected as spam",
            "permanent error (550): 5.7.1 relaying denied",
            "permanent error (552): 5.3.4 message too big",
            "permanent error (554): transaction failed",
            "the message has no valid From",
        ] {
            assert!(!blames_the_address(reply), "{reply}");
        }
    }
}
