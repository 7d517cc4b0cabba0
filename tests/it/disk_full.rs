//! A full disk: writes are refused with a clear answer, nothing answered is lost, and
//! writes resume once space is back.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::smtp_client::send_one;
use crate::smtp_sink::SmtpSink;
use crate::support::*;

fn ticket_body(n: usize, text: &str) -> serde_json::Value {
    json!({"subject": format!("Kasse {n} defekt"), "body": text, "requester_email": "kasse@example.org"})
}

/// `length` letters, digits and spaces from a fixed seed (xorshift): text that
/// compresses little, so the bytes stored stay near the bytes written.
fn incompressible_text(seed: u64, length: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// Appends a `[store]` reserve to the config; `kontor.toml` has no `[store]` table yet.
fn set_reserve(app: &TestApp, min_free_mb: u64) {
    let config = std::fs::read_to_string(&app.config_path).unwrap();
    let without = config
        .split("\n[store]\n")
        .next()
        .unwrap_or_default()
        .to_string();
    std::fs::write(
        &app.config_path,
        format!("{without}\n[store]\nmin_free_mb = {min_free_mb}\n"),
    )
    .unwrap();
}

/// The same mail each time (one Message-ID), as an MTA redelivers it; the SMTP reply.
async fn mail_from_the_till(app: &TestApp) -> String {
    let mail = "From: kasse@example.org\r\nTo: support@support.example.com\r\nSubject: Waage\r\nMessage-ID: <waage-1@example.org>\r\n\r\nDie Waage zeigt nichts an.\r\n";
    send_one(
        app.smtp_address.expect("smtp listening"),
        "kasse@example.org",
        "support@support.example.com",
        mail.as_bytes(),
    )
    .await
    .expect("smtp session")
}

#[tokio::test]
async fn below_the_reserve_every_door_refuses_to_write_and_nothing_is_half_written() {
    let mut app = TestApp::spawn_with(TestConfig {
        smtp: true,
        ..TestConfig::default()
    })
    .await;
    let first = app.create_ticket(&ticket_body(1, "Drucker")).await;
    let staff = app
        .create_staff("Jana Support", "jana@vendor.example")
        .await;
    app.terminate();

    // More reserve than any disk has: the disk counts as full.
    set_reserve(&app, 1 << 40);
    app.start(false).await.unwrap();

    let (code, _) = error_of(
        StatusCode::INSUFFICIENT_STORAGE,
        app.post("/api/v1/tickets", &ticket_body(2, "Scanner"))
            .await,
    );
    assert_eq!(code, "storage_full");
    let (code, _) = error_of(
        StatusCode::INSUFFICIENT_STORAGE,
        app.post(
            &format!("/api/v1/tickets/{}/messages", first["id"].as_str().unwrap()),
            &json!({"body": "Wir schauen es uns an", "staff_id": staff["id"], "visibility": "internal"}),
        )
        .await,
    );
    assert_eq!(code, "storage_full");
    let reply = mail_from_the_till(&app).await;
    assert!(reply.starts_with("452 4.3.1"), "SMTP answered {reply}");

    // Reads still work, and nothing of the refused writes shows.
    let (status, list) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(app.history(first["id"].as_str().unwrap()).await.len(), 1);
    app.terminate();

    // With space back, the refused mail is taken on redelivery and numbers go on
    // without a gap: no refused write took one.
    set_reserve(&app, 0);
    app.start(false).await.unwrap();
    let reply = mail_from_the_till(&app).await;
    assert!(reply.starts_with("250"), "SMTP answered {reply}");
    let next = app.create_ticket(&ticket_body(3, "Scanner")).await;
    assert_eq!(next["number"], 3);
    let (_, list) = app.get("/api/v1/tickets").await;
    assert_eq!(list["total"], 3);
}

/// A tmpfs of its own, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// `None` when this machine does not let the tests mount (not root, or no
    /// CAP_SYS_ADMIN in a container); the reserve test above still runs there.
    fn mount(parent: &Path, megabytes: u64) -> Option<SmallDisk> {
        let path = parent.join("disk");
        std::fs::create_dir_all(&path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}M"), "tmpfs"])
            .arg(&path)
            .output()
            .ok()?;
        if !mounted.status.success() {
            eprintln!(
                "disk_full: cannot mount a tmpfs here ({}); the real full-disk test did not run",
                String::from_utf8_lossy(&mounted.stderr).trim()
            );
            return None;
        }
        Some(SmallDisk { path })
    }

    fn grow(&self, megabytes: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}M")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test]
async fn a_disk_that_fills_up_refuses_writes_keeps_every_answered_ticket_and_recovers() {
    let parent = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(parent.path(), 32) else {
        return;
    };
    let mut app = TestApp::spawn_with(TestConfig {
        data_dir: Some(disk.path.join("data")),
        extra_toml: "[store]\nmin_free_mb = 8".into(),
        ..TestConfig::default()
    })
    .await;

    // 16 KB a ticket: the disk fills within about a thousand. (Much larger values
    // make sled rewrite whole nodes of them, which outgrows a reserve this small;
    // see the README on `min_free_mb`.) The text differs in every ticket and is
    // near random, as sled compresses its pages: a repeated sentence would take
    // almost no room.
    let mut answered = Vec::new();
    let mut refusal = None;
    for n in 0..5_000 {
        let text = incompressible_text(n as u64, 16_000);
        let (status, body) = app.post("/api/v1/tickets", &ticket_body(n, &text)).await;
        if status == StatusCode::CREATED {
            answered.push(body["id"].as_str().unwrap().to_string());
        } else {
            refusal = Some((status, body));
            break;
        }
    }
    let (status, body) = refusal.expect("a 32 MB disk never filled");
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"]["code"], "storage_full");
    assert!(answered.len() > 10, "refused too early: {}", answered.len());
    // Reads go on, and show exactly what was answered. (No second write here: sled
    // reclaims space in the background, so a small one may already fit again.)
    let (status, list) = app.get("/api/v1/tickets?per_page=500").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], answered.len());

    // Space comes back: writes resume without a restart, and the next number
    // follows the last answered one.
    disk.grow(512);
    let next = app.create_ticket(&ticket_body(1000, "wieder da")).await;
    assert_eq!(next["number"], answered.len() + 1);
    answered.push(next["id"].as_str().unwrap().to_string());

    // Nothing answered is lost across a SIGKILL.
    app.kill();
    app.start(false).await.unwrap();
    let (_, list) = app.get("/api/v1/tickets?per_page=500").await;
    assert_eq!(list["total"], answered.len());
    for id in &answered {
        assert_eq!(
            app.history(id).await.len(),
            1,
            "ticket {id} lost its message"
        );
    }
    app.kill();
}

#[tokio::test]
async fn a_notice_sent_while_the_disk_is_full_goes_out_once_until_it_can_be_recorded() {
    let mut sink = SmtpSink::start();
    sink.stop();
    let mut app = TestApp::spawn_with(TestConfig {
        outbound_toml: sink.outbound_toml(),
        ..TestConfig::default()
    })
    .await;
    // The confirmation is queued; the SMTP server is down, so it stays pending.
    app.create_ticket(&ticket_body(1, "Drucker")).await;
    app.terminate();

    set_reserve(&app, 1 << 40);
    sink.restart();
    app.start(false).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sink.messages().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the notice never went out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The sender could not record the delivery. The row still looks due, yet it must
    // not be sent again while the outcome waits to be recorded.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "sent again while the disk was full"
    );
    app.terminate();

    set_reserve(&app, 0);
    app.start(false).await.unwrap();
    app.wait_until_outbox_drained().await;
    assert_eq!(app.outbox(Some("sent")).await.len(), 1);
    // At least once: the restart came before the outcome was recorded, so the
    // message went out once more, and no more than that.
    assert_eq!(sink.messages().len(), 2);
}
