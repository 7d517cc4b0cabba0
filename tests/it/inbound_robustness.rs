//! The listener against hostile and broken input, and against SIGKILL during a
//! burst: it never crashes or wedges, and it never loses a message it answered
//! 250 for.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::inbound::{mail, smtp, smtp_app, tickets, SUPPORT};
use crate::smtp_client::{send_one, SmtpSession};
use crate::support::*;

/// The listener still serves a whole transaction.
async fn still_serves(app: &TestApp, n: usize) {
    let raw = mail(
        "alive@kunde.example",
        SUPPORT,
        &format!("still alive {n}"),
        &format!("Message-ID: <alive-{n}@kunde.example>\r\n"),
        "ok",
    );
    smtp(app, "alive@kunde.example", SUPPORT, &raw).await;
}

/// A session that has just been told 354: the message may follow.
async fn open_data(address: std::net::SocketAddr, from: &str) -> SmtpSession {
    let (mut session, _) = SmtpSession::connect(address).await.unwrap();
    session.command("EHLO c.example").await.unwrap();
    session
        .command(&format!("MAIL FROM:<{from}>"))
        .await
        .unwrap();
    session
        .command(&format!("RCPT TO:<{SUPPORT}>"))
        .await
        .unwrap();
    assert!(session.command("DATA").await.unwrap().starts_with("354"));
    session
}

#[tokio::test]
async fn garbage_commands_get_errors_and_the_listener_goes_on() {
    let app = smtp_app("").await;
    let address = app.smtp_address.unwrap();
    let (mut session, greeting) = SmtpSession::connect(address).await.unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(session.command("FOO bar").await.unwrap().starts_with("500"));
    session.send(b"\0\xff\xfe\r\n").await.unwrap();
    assert!(session.reply().await.unwrap().starts_with("500"));
    assert!(session
        .command("MAIL FROM:<a@b.example>")
        .await
        .unwrap()
        .starts_with("503"));
    let ehlo = session.command("EHLO client.example").await.unwrap();
    for extension in ["PIPELINING", "8BITMIME", "SIZE 26214400"] {
        assert!(ehlo.contains(extension), "{extension} missing: {ehlo}");
    }
    assert!(session
        .command("MAIL FROM:<a@kunde.example>")
        .await
        .unwrap()
        .starts_with("250"));
    let foreign = session
        .command("RCPT TO:<someone@gmail.example>")
        .await
        .unwrap();
    assert!(foreign.starts_with("550"), "{foreign}");
    still_serves(&app, 1).await;
}

#[tokio::test]
async fn a_data_phase_that_never_ends_is_cut_by_the_configured_timeout() {
    let app = smtp_app("smtp_data_timeout_seconds = 1").await;
    let address = app.smtp_address.unwrap();
    let mut session = open_data(address, "slow@kunde.example").await;
    let started = Instant::now();
    session
        .send("Subject: endless\r\n\r\nand it goes on")
        .await
        .unwrap();
    let reply = session.reply().await.unwrap();
    assert!(reply.starts_with("421"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(tickets(&app).await.is_empty());
    still_serves(&app, 2).await;
}

/// Peak resident memory of the server so far (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_thirty_megabyte_message_gets_552_without_being_buffered() {
    let app = smtp_app("").await;
    let address = app.smtp_address.unwrap();
    let before = app.pid().and_then(peak_rss_kib);
    let mut session = open_data(address, "big@kunde.example").await;
    session.send("Subject: big\r\n\r\n").await.unwrap();
    let mut chunk = Vec::with_capacity(64_000);
    for _ in 0..64 {
        chunk.extend_from_slice(&[b'z'; 998]);
        chunk.extend_from_slice(b"\r\n");
    }
    let mut sent = 0;
    while sent < 30_000_000 {
        session.send(&chunk).await.unwrap();
        sent += chunk.len();
    }
    session.send(".\r\n").await.unwrap();
    let reply = session.reply().await.unwrap();
    assert!(reply.starts_with("552"), "{reply}");
    // The session survives, and the server never held the 30 MB.
    assert!(session.command("NOOP").await.unwrap().starts_with("250"));
    if let (Some(before), Some(after)) = (before, app.pid().and_then(peak_rss_kib)) {
        assert!(
            after.saturating_sub(before) < 40 * 1024,
            "peak RSS grew from {before} KiB to {after} KiB"
        );
    }
    assert!(tickets(&app).await.is_empty());
    still_serves(&app, 3).await;
}

#[tokio::test]
async fn broken_mime_and_unknown_charsets_are_stored_and_readable() {
    let app = smtp_app("").await;
    let broken_mime = "From: a@kunde.example\r\nTo: support@support.example.com\r\nSubject: Kaputt\r\nMessage-ID: <mime-1@kunde.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"never-used\"\r\n\r\n--wrong\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n";
    smtp(&app, "a@kunde.example", SUPPORT, broken_mime).await;
    let charset = b"From: b@kunde.example\r\nTo: support@support.example.com\r\nSubject: =?x-klingon?q?Qapla=21?= Zeichensatz\r\nMessage-ID: <cs-1@kunde.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDer Text ist lesbar \xe4\xf6\xfc.\r\n";
    let address = app.smtp_address.unwrap();
    let reply = send_one(address, "b@kunde.example", SUPPORT, charset)
        .await
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let list = tickets(&app).await;
    assert_eq!(list.len(), 2, "both opened tickets: {list:?}");
    let history = app.history(list[0]["id"].as_str().unwrap()).await;
    assert!(history[0]["body_text"]
        .as_str()
        .unwrap()
        .contains("Der Text ist lesbar"));
    still_serves(&app, 4).await;
}

#[tokio::test]
async fn five_hundred_open_connections_are_all_served() {
    let app = smtp_app("").await;
    let address = app.smtp_address.unwrap();
    let mut sessions = Vec::with_capacity(500);
    for _ in 0..500 {
        let (session, greeting) = SmtpSession::connect(address).await.expect("connect");
        assert!(greeting.starts_with("220"), "{greeting}");
        sessions.push(session);
    }
    // With all 500 open, mail still goes through, on one of them and a new one.
    let raw = mail(
        "many@kunde.example",
        SUPPORT,
        "Viele",
        "Message-ID: <many-1@kunde.example>\r\n",
        "x",
    );
    let last = sessions.last_mut().unwrap();
    last.command("EHLO c.example").await.unwrap();
    let reply = last
        .deliver("many@kunde.example", SUPPORT, raw.as_bytes())
        .await
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    still_serves(&app, 5).await;
    for session in &mut sessions {
        assert!(session.command("QUIT").await.unwrap().starts_with("221"));
    }
    assert_eq!(tickets(&app).await.len(), 2);
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_nothing_answered_250_and_redelivery_duplicates_nothing() {
    let mut app = smtp_app("max_per_sender_per_hour = 10000").await;
    let address = app.smtp_address.unwrap();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let enough = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for client in 0..8 {
        let acknowledged = acknowledged.clone();
        let enough = enough.clone();
        clients.push(tokio::spawn(async move {
            let Ok((mut session, _)) = SmtpSession::connect(address).await else {
                return;
            };
            if session.command("EHLO burst.example").await.is_err() {
                return;
            }
            for n in 0..100 {
                let subject = format!("burst {client}-{n}");
                let raw = mail(
                    &format!("c{client}@kunde.example"),
                    SUPPORT,
                    &subject,
                    &format!("Message-ID: <burst-{client}-{n}@kunde.example>\r\n"),
                    "Beleg fehlt.",
                );
                match session
                    .deliver(&format!("c{client}@kunde.example"), SUPPORT, raw.as_bytes())
                    .await
                {
                    Ok(reply) if reply.starts_with("250") => {
                        let mut acknowledged = acknowledged.lock().unwrap();
                        acknowledged.insert(subject);
                        if acknowledged.len() >= 150 {
                            enough.notify_one();
                        }
                    }
                    _ => return,
                }
            }
        }));
    }
    // Kill once some deliveries were answered, while the rest are in flight.
    tokio::time::timeout(Duration::from_secs(60), enough.notified())
        .await
        .expect("the burst got going");
    app.kill();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < 800,
        "the kill came too late to test anything"
    );

    app.start(false).await.unwrap();
    let address = app.smtp_address.unwrap();
    let stored: BTreeSet<String> = tickets(&app)
        .await
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "answered 250 but lost: {lost:?}");

    // The MTA redelivers everything: each message ends up in exactly one ticket.
    for client in 0..8 {
        let (mut session, _) = SmtpSession::connect(address).await.unwrap();
        session.command("EHLO burst.example").await.unwrap();
        for n in 0..100 {
            let raw = mail(
                &format!("c{client}@kunde.example"),
                SUPPORT,
                &format!("burst {client}-{n}"),
                &format!("Message-ID: <burst-{client}-{n}@kunde.example>\r\n"),
                "Beleg fehlt.",
            );
            let reply = session
                .deliver(&format!("c{client}@kunde.example"), SUPPORT, raw.as_bytes())
                .await
                .unwrap();
            assert!(reply.starts_with("250"), "{reply}");
        }
    }
    let all = tickets(&app).await;
    let subjects: BTreeSet<String> = all
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 800, "no ticket twice, none missing");
    assert_eq!(subjects.len(), 800);
}
