//! Scheduled jobs: `kontor jobs run` at a set time, and the scheduler of `serve`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

async fn waiting_ticket(app: &TestApp, staff: &Value, email: &str) -> Value {
    let ticket = app
        .create_ticket(
            &json!({"subject": "Bondrucker", "body": "druckt nicht", "requester_email": email}),
        )
        .await;
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/tickets/{}/status", ticket["id"].as_str().unwrap()),
            &json!({"status": "waiting_on_customer", "staff_id": staff["id"]}),
        )
        .await,
    )
}

/// `kontor jobs run auto_close --now <days after start>`; its stdout line.
fn auto_close_at(app: &TestApp, start: DateTime<Utc>, days: i64) -> String {
    app.run_job("auto_close", start + chrono::Duration::days(days))
}

/// Polls the ticket until the scheduler has closed it, for at most 10 s.
async fn wait_until_done(app: &TestApp, ticket: &Value, failure: &str) {
    let path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, now) = app.get(&path).await;
        if now["status"] == "done" {
            return;
        }
        assert!(Instant::now() < deadline, "{failure}: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn events(history: &[Value], event_type: &str) -> usize {
    history
        .iter()
        .filter(|entry| entry["event"]["type"] == event_type)
        .count()
}

#[tokio::test]
async fn auto_close_reminds_once_closes_after_close_days_and_leaves_answered_tickets() {
    let mut app = TestApp::spawn().await;
    let staff = app
        .create_staff("Jana Support", "jana@vendor.example")
        .await;
    let start = Utc::now();
    let silent = waiting_ticket(&app, &staff, "still@example.org").await;
    let answered = waiting_ticket(&app, &staff, "answers@example.org").await;
    let silent_id = silent["id"].as_str().unwrap().to_string();
    let answered_id = answered["id"].as_str().unwrap().to_string();
    app.terminate();

    assert_eq!(
        auto_close_at(&app, start, 6),
        "auto_close: 2 examined, 0 reminded, 0 closed"
    );
    assert_eq!(
        auto_close_at(&app, start, 8),
        "auto_close: 2 examined, 2 reminded, 0 closed"
    );
    // Never the same reminder twice.
    assert_eq!(
        auto_close_at(&app, start, 9),
        "auto_close: 2 examined, 0 reminded, 0 closed"
    );

    app.start(false).await.unwrap();
    let history = app.history(&silent_id).await;
    assert_eq!(events(&history, "reminded"), 1);
    let reminders: Vec<Value> = app
        .outbox(None)
        .await
        .into_iter()
        .filter(|row| row["kind"] == "waiting_on_customer" && row["to"] == "still@example.org")
        .collect();
    assert_eq!(reminders.len(), 2, "the question and one reminder");
    assert!(
        reminders
            .iter()
            .any(|row| row["subject"].as_str().unwrap().contains("Erinnerung")),
        "{reminders:?}"
    );
    // The other customer answers; staff picks the ticket up.
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/tickets/{answered_id}/status"),
            &json!({"status": "in_progress", "staff_id": staff["id"]}),
        )
        .await,
    );
    app.terminate();

    assert_eq!(
        auto_close_at(&app, start, 15),
        "auto_close: 1 examined, 0 reminded, 1 closed"
    );
    app.start(false).await.unwrap();
    let (_, closed) = app.get(&format!("/api/v1/tickets/{silent_id}")).await;
    assert_eq!(closed["status"], "done");
    let history = app.history(&silent_id).await;
    let last = history.last().unwrap();
    assert_eq!(last["event"]["type"], "status_changed");
    assert_eq!(last["event"]["to"], "done");
    let (_, open) = app.get(&format!("/api/v1/tickets/{answered_id}")).await;
    assert_eq!(open["status"], "in_progress");
    assert!(app
        .outbox(None)
        .await
        .iter()
        .any(|row| row["kind"] == "ticket_done" && row["to"] == "still@example.org"));
}

#[tokio::test]
async fn jobs_run_refuses_unknown_jobs_and_bad_times_in_one_line() {
    let app = TestApp::spawn().await;
    let mut app = app;
    app.terminate();
    let output = app.command(&["jobs", "run", "close_everything"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("auto_close"), "{stderr}");
    let output = app.command(&["jobs", "run", "auto_close", "--now", "next tuesday"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("RFC 3339"));
    // The jobs whose records this version does not store yet run and say so.
    let output = app.command(&["jobs", "run", "expire_quotes"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("0 expired"));
}

#[tokio::test]
async fn the_server_runs_auto_close_on_its_cron() {
    let app = TestApp::spawn_with(TestConfig {
        extra_toml:
            "[schedule.auto_close]\ncron = \"* * * * * *\"\nremind_days = 0\nclose_days = 0".into(),
        ..TestConfig::default()
    })
    .await;
    let staff = app
        .create_staff("Jana Support", "jana@vendor.example")
        .await;
    let ticket = waiting_ticket(&app, &staff, "still@example.org").await;
    wait_until_done(&app, &ticket, "the scheduler never closed it").await;
}

#[tokio::test]
async fn a_job_time_that_passed_while_the_server_was_down_runs_once_at_start() {
    let mut app = TestApp::spawn().await;
    // The scheduler recorded its first start before the server answered.
    let first_start = Utc::now();
    let staff = app
        .create_staff("Jana Support", "jana@vendor.example")
        .await;
    let ticket = waiting_ticket(&app, &staff, "still@example.org").await;
    app.terminate();

    // One time only (cron's seventh field is the year), after the first start and
    // before the restart: the scheduler can only meet it as a missed time.
    let missed_at = first_start + chrono::Duration::seconds(3);
    let cron = missed_at.format("%S %M %H %d %m * %Y").to_string();
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        format!(
            "{config}\n[schedule.auto_close]\ncron = \"{cron}\"\nremind_days = 0\nclose_days = 0\n"
        ),
    )
    .unwrap();
    let wait = (missed_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    app.start(false).await.unwrap();

    wait_until_done(&app, &ticket, "the missed run never happened").await;
    // Once: after the run, the job's next time lies in the past, so nothing more.
    let history = app.history(ticket["id"].as_str().unwrap()).await;
    assert_eq!(events(&history, "status_changed"), 2, "{history:?}");
}
