//! The IMAP door against a real Dovecot: mail waiting in the folder becomes tickets
//! and moves to the done folder; new mail arrives through IDLE (the poll interval is
//! set far beyond the test's deadline); a message seen twice (a crash between the
//! intake and the move, or a copy) is one ticket; a restart fetches what came while
//! the server was down.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dovecot::{Dovecot, PASSWORD, USER};
use crate::inbound::tickets;
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
