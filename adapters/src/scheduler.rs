//! The scheduler of `kontor serve`: runs each job of `[schedule]` at its cron times
//! (6 fields, seconds first, in UTC), and once at start when one of its times passed
//! while the server was down. The jobs themselves are the engine's (`ops::jobs`);
//! `kontor jobs run` calls the same code.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use kontor_engine::ops::jobs::{AutoClose, Job, JobSettings, RemindSignatures};
use kontor_engine::Engine;

use crate::config::Config;

/// One job and when it runs.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub job: Job,
    pub schedule: cron::Schedule,
}

/// The cron expression of `job` in the config.
pub fn cron_of(config: &Config, job: Job) -> &str {
    match job {
        Job::AutoClose => &config.schedule.auto_close.cron,
        Job::ExpireQuotes => &config.schedule.expire_quotes.cron,
        Job::RemindSignatures => &config.schedule.remind_signatures.cron,
        Job::Housekeeping => &config.schedule.housekeeping.cron,
    }
}

/// Every job with its parsed schedule; a bad expression names its key.
pub fn schedule(config: &Config) -> Result<Vec<ScheduledJob>, String> {
    Job::ALL
        .into_iter()
        .map(|job| {
            let expression = cron_of(config, job);
            cron::Schedule::from_str(expression)
                .map(|schedule| ScheduledJob { job, schedule })
                .map_err(|error| {
                    format!(
                        "schedule.{}.cron {expression:?} is not a cron expression of 6 fields, seconds first: {error}",
                        job.name()
                    )
                })
        })
        .collect()
}

pub fn job_settings(config: &Config) -> JobSettings {
    JobSettings {
        auto_close: AutoClose {
            remind_days: config.schedule.auto_close.remind_days,
            close_days: config.schedule.auto_close.close_days,
        },
        remind_signatures: RemindSignatures {
            after_days: config.schedule.remind_signatures.after_days,
            ..RemindSignatures::default()
        },
    }
}

/// True when a time of `schedule` fell after the job's last run and is already past.
pub fn missed(schedule: &cron::Schedule, last_run: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    schedule
        .after(&last_run)
        .next()
        .is_some_and(|due| due <= now)
}

/// Runs the jobs until `stop` turns true.
pub async fn run(
    engine: Arc<Engine>,
    jobs: Vec<ScheduledJob>,
    auto_close: JobSettings,
    mut stop: watch::Receiver<bool>,
) {
    let now = engine.clock().now();
    for scheduled in &jobs {
        let last_run = {
            let engine = engine.clone();
            let job = scheduled.job;
            tokio::task::spawn_blocking(move || engine.job_last_run(job)).await
        };
        match last_run {
            Ok(Ok(Some(last_run))) if missed(&scheduled.schedule, last_run, now) => {
                tracing::info!(job = scheduled.job.name(), %last_run, "missed while down; running once now");
                run_one(&engine, scheduled.job, auto_close, now).await;
            }
            Ok(Ok(Some(_))) => {}
            // A fresh data dir has missed nothing: its jobs count from now.
            Ok(Ok(None)) => record(&engine, scheduled.job, now).await,
            Ok(Err(error)) => {
                tracing::error!(job = scheduled.job.name(), %error, "reading the last run failed")
            }
            Err(error) => {
                tracing::error!(job = scheduled.job.name(), %error, "reading the last run failed")
            }
        }
    }
    loop {
        let now = engine.clock().now();
        let Some((due_at, job)) = jobs
            .iter()
            .filter_map(|scheduled| {
                scheduled
                    .schedule
                    .after(&now)
                    .next()
                    .map(|due| (due, scheduled.job))
            })
            .min_by_key(|(due, _)| *due)
        else {
            // No expression has a future time: nothing to schedule.
            let _ = stop.changed().await;
            return;
        };
        let wait = (due_at - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        run_one(&engine, job, auto_close, due_at).await;
    }
}

/// Runs `job` off the async workers and records the run for `due_at`.
async fn run_one(engine: &Arc<Engine>, job: Job, auto_close: JobSettings, due_at: DateTime<Utc>) {
    let outcome = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.run_job(job, auto_close)).await
    };
    match outcome {
        Ok(Ok(report)) => tracing::info!(job = job.name(), %report, "job ran"),
        Ok(Err(error)) => tracing::error!(job = job.name(), %error, "job failed"),
        Err(error) => tracing::error!(job = job.name(), %error, "job task failed"),
    }
    record(engine, job, due_at).await;
}

async fn record(engine: &Arc<Engine>, job: Job, due_at: DateTime<Utc>) {
    let engine = engine.clone();
    let recorded = tokio::task::spawn_blocking(move || engine.record_job_run(job, due_at)).await;
    if !matches!(recorded, Ok(Ok(()))) {
        tracing::error!(
            job = job.name(),
            "recording the job's run failed; it may run again at start"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_time_that_passed_since_the_last_run_is_missed() {
        let nightly = cron::Schedule::from_str("0 0 3 * * *").unwrap();
        let last = at("2026-03-01T03:00:00Z");
        assert!(!missed(&nightly, last, at("2026-03-02T02:59:59Z")));
        assert!(missed(&nightly, last, at("2026-03-02T03:00:00Z")));
        assert!(missed(&nightly, last, at("2026-03-09T12:00:00Z")));
    }

    #[test]
    fn the_shipped_schedule_parses_and_a_bad_one_names_its_key() {
        assert_eq!(schedule(&Config::default()).unwrap().len(), 4);
        let mut config = Config::default();
        config.schedule.expire_quotes.cron = "every quarter hour".into();
        let error = schedule(&config).unwrap_err();
        assert!(error.contains("schedule.expire_quotes.cron"), "{error}");
    }
}
