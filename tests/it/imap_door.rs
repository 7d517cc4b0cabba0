//! The IMAP door against a real Dovecot: mail waiting in the folder becomes tickets
//! and moves to the done folder; new mail arrives through IDLE (the poll interval is
//! set far beyond the test's deadline); a message seen twice (a crash between the
//! intake and the move, or a copy) is one ticket; a restart fetches what came while
//! the server was down; a message the store cannot take (its disk "full": a reserve
//! no disk has) stays in the folder unflagged, round after round, and is ticketed
//! once when the store takes writes again.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dovecot::{Dovecot, PASSWORD, USER};
use crate::inbound::tickets;
use crate::ops::{metrics, sample};
use crate::support::{TestApp, TestConfig};

fn imap_config(dovecot: &Dovecot) -> TestConfig {
    let password_file = dovecot.dir.path().join("kontor-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("password file");
    TestConfig {
        inbound_toml: format!(
            "[inbound.imap]\nhost = \"127.0.0.1\"\nport = {port}\ntls = false\nuser = \"{USER}\"\npassword_file = {file:?}\nfolder = \"INBOX\"\ndone_folder = \"Kontor-Done\"\npoll_seconds = 3600\n",
            port = dovecot.port,
            file = password_file.display().to_string(),
        ),
        ..TestConfig::default()
    }
}

fn mail(subject: &str, message_id: &str) -> String {
    format!(
        "From: Maria Müller <maria@cafe.example>\r\nTo: support@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBitte um Rückruf.\r\n"
    )
}

/// Waits until the API lists `count` tickets, and returns them.
async fn wait_for_tickets(app: &TestApp, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = tickets(app).await;
        if list.len() >= count {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{} tickets after 30 s, wanted {count}",
            list.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `folder` holds `count` messages.
fn wait_for_count(dovecot: &Dovecot, folder: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while dovecot.count(folder) != count {
        assert!(
            Instant::now() < deadline,
            "{folder} holds {} messages, wanted {count}",
            dovecot.count(folder)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn mail_in_the_mailbox_becomes_tickets_and_moves_to_the_done_folder_after_the_store() {
    let dovecot = Dovecot::start().await;
    dovecot.append(
        "INBOX",
        &mail("Kasse 1 startet nicht", "imap-1@cafe.example"),
    );
    dovecot.append("INBOX", &mail("Drucker offline", "imap-2@cafe.example"));
    // The same message twice: what a crash between the intake and the move leaves.
    dovecot.append("INBOX", &mail("Drucker offline", "imap-2@cafe.example"));

    let mut app = TestApp::spawn_with(imap_config(&dovecot)).await;
    let list = wait_for_tickets(&app, 2).await;
    wait_for_count(&dovecot, "INBOX", 0);
    wait_for_count(&dovecot, "Kontor-Done", 3);
    let mut subjects: Vec<&str> = list
        .iter()
        .map(|ticket| ticket["subject"].as_str().unwrap_or_default())
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["Drucker offline", "Kasse 1 startet nicht"]);
    assert!(list.iter().all(|ticket| ticket["channel"] == "email"));

    // New mail while connected: IDLE wakes the door (polling is an hour away).
    dovecot.append("INBOX", &mail("Waage zeigt falsch", "imap-3@cafe.example"));
    let list = wait_for_tickets(&app, 3).await;
    assert_eq!(list[0]["subject"], "Waage zeigt falsch");
    wait_for_count(&dovecot, "Kontor-Done", 4);

    // Mail that came while the server was down is fetched at the start; what was
    // fetched before is not ticketed again.
    app.terminate();
    dovecot.append(
        "INBOX",
        &mail("Während des Neustarts", "imap-4@cafe.example"),
    );
    dovecot.append(
        "INBOX",
        &mail("Kasse 1 startet nicht", "imap-1@cafe.example"),
    );
    app.start(false).await.expect("the server starts again");
    let list = wait_for_tickets(&app, 4).await;
    wait_for_count(&dovecot, "INBOX", 0);
    assert_eq!(list.len(), 4, "no message twice");
    assert_eq!(list[0]["subject"], "Während des Neustarts");
    assert_eq!(dovecot.count("Kontor-Done"), 6);
}

/// The IMAP flags of every message in `folder`, one string per message.
fn flags(dovecot: &Dovecot, folder: &str) -> Vec<String> {
    let printed = dovecot.imaplib(&format!(
        "m.select('{folder}', readonly=True)\ntyp, data = m.fetch('1:*', '(FLAGS)')\nprint(json.dumps([d.decode() for d in data if d]))"
    ));
    serde_json::from_str(&printed).unwrap_or_default()
}

/// `kontor_mail_in_failed_total` from `/metrics`.
async fn intake_failures(app: &TestApp) -> f64 {
    sample(&metrics(app).await, "kontor_mail_in_failed_total").unwrap_or(0.0)
}

/// Sets `[store] min_free_mb` in the app's config for its next start.
fn set_reserve_mb(app: &TestApp, reserve: u64) {
    let text = std::fs::read_to_string(&app.config_path).expect("config");
    let start = text.find("min_free_mb = ").expect("the key") + "min_free_mb = ".len();
    let end = start + text[start..].find('\n').unwrap_or(text.len() - start);
    let changed = format!("{}{reserve}{}", &text[..start], &text[end..]);
    std::fs::write(&app.config_path, changed).expect("config written");
}

#[tokio::test]
async fn a_message_the_store_cannot_take_stays_in_the_folder_unflagged_and_is_ticketed_once_later()
{
    let dovecot = Dovecot::start().await;
    let mut config = imap_config(&dovecot);
    // A round a second, so that the refused message is tried again and again.
    config.inbound_toml = config
        .inbound_toml
        .replace("poll_seconds = 3600", "poll_seconds = 1");
    config.extra_toml = "[store]\nmin_free_mb = 0\n".into();
    let mut app = TestApp::spawn_with(config).await;
    app.terminate();

    // More reserve than any disk has: every write is refused, as on a full disk.
    set_reserve_mb(&app, 1_000_000_000);
    dovecot.append(
        "INBOX",
        &mail("Kasse 4 friert ein", "imap-full-1@cafe.example"),
    );
    app.start(false)
        .await
        .expect("the server starts on a full disk");
    let deadline = Instant::now() + Duration::from_secs(30);
    while intake_failures(&app).await < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the door never tried the message twice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dovecot.count("INBOX"), 1, "the message stays in the folder");
    assert_eq!(dovecot.count("Kontor-Done"), 0);
    let inbox_flags = flags(&dovecot, "INBOX");
    assert_eq!(inbox_flags.len(), 1, "{inbox_flags:?}");
    assert!(
        !inbox_flags[0].contains("\\Seen") && !inbox_flags[0].contains("\\Deleted"),
        "unflagged: {inbox_flags:?}"
    );
    assert!(tickets(&app).await.is_empty());

    // The disk has room again: the next round takes it, once.
    app.terminate();
    set_reserve_mb(&app, 0);
    app.start(false).await.expect("the server starts again");
    let list = wait_for_tickets(&app, 1).await;
    assert_eq!(list[0]["subject"], "Kasse 4 friert ein");
    wait_for_count(&dovecot, "INBOX", 0);
    wait_for_count(&dovecot, "Kontor-Done", 1);
    // Later rounds find nothing more of it: a second message is the only new ticket.
    dovecot.append("INBOX", &mail("Danach", "imap-full-2@cafe.example"));
    let list = wait_for_tickets(&app, 2).await;
    wait_for_count(&dovecot, "Kontor-Done", 2);
    assert_eq!(list.len(), 2, "never twice: {list:?}");
    let history = app.history(list[1]["id"].as_str().unwrap()).await;
    assert_eq!(
        history.len(),
        1,
        "one message on the first ticket: {history:?}"
    );
    assert_eq!(
        intake_failures(&app).await,
        0.0,
        "no refusal once there is room"
    );
}

#[tokio::test]
async fn a_password_file_that_cannot_be_read_stops_the_start_naming_the_key() {
    let dovecot = Dovecot::start().await;
    let mut config = imap_config(&dovecot);
    config.inbound_toml = config
        .inbound_toml
        .replace("kontor-password", "no-such-file");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kontor.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[inbound]\nsmtp_listen = \"\"\n{}",
            dir.path().join("data").display().to_string(),
            config.inbound_toml
        ),
    )
    .expect("config written");
    let output = std::process::Command::new(crate::support::kontor_binary())
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("KONTOR_LOG", "warn")
        .output()
        .expect("kontor runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("inbound.imap.password_file"), "{stderr}");
}
