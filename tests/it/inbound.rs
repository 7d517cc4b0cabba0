//! Inbound mail end to end: the real SMTP listener with real clients (lettre,
//! Python's smtplib, a raw socket), `POST /api/v1/inbound/email`, `kontor mailgate`,
//! threading, reopening, duplicates, robots, bounces, quarantine, attachments.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::smtp_client::send_one;
use crate::support::*;

pub const SUPPORT: &str = "support@support.example.com";

/// A plain text message.
pub fn mail(from: &str, to: &str, subject: &str, headers: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 3 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{headers}\r\n{body}\r\n"
    )
}

pub async fn smtp_app(inbound_toml: &str) -> TestApp {
    TestApp::spawn_with(TestConfig {
        smtp: true,
        inbound_toml: inbound_toml.to_string(),
        ..TestConfig::default()
    })
    .await
}

/// Sends through the listener with a raw-socket client; asserts the 250.
pub async fn smtp(app: &TestApp, from: &str, to: &str, raw: &str) {
    let address = app.smtp_address.expect("the smtp listener runs");
    let reply = send_one(address, from, to, raw.as_bytes())
        .await
        .expect("smtp session");
    assert!(reply.starts_with("250"), "DATA answered {reply:?}");
}

/// Sends through the listener with lettre, a real SMTP client library.
pub async fn lettre_send(app: &TestApp, from: &str, to: &str, raw: &str) {
    use lettre::address::Envelope;
    use lettre::{SmtpTransport, Transport};
    let address = app.smtp_address.expect("the smtp listener runs");
    let envelope = Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    let raw = raw.to_string();
    tokio::task::spawn_blocking(move || {
        SmtpTransport::builder_dangerous(address.ip().to_string())
            .port(address.port())
            .build()
            .send_raw(&envelope, raw.as_bytes())
    })
    .await
    .expect("join")
    .expect("lettre delivered");
}

/// `POST /api/v1/inbound/email` with the raw message.
pub async fn post_mail(app: &TestApp, raw: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/inbound/email"))
        .bearer_auth(&app.key)
        .header("content-type", "message/rfc822")
        .body(raw.to_string())
        .send()
        .await
        .expect("request sent");
    read(response).await
}

/// Every ticket, newest first.
pub async fn tickets(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let (status, list) = app
            .get(&format!("/api/v1/tickets?per_page=500&page={page}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let done = items.len() < 500;
        all.extend(items);
        if done {
            break;
        }
    }
    all
}

fn messages(history: &[Value]) -> Vec<&Value> {
    history.iter().filter(|i| i["kind"] == "message").collect()
}

fn events<'a>(history: &'a [Value], kind: &str) -> Vec<&'a Value> {
    history
        .iter()
        .filter(|i| i["kind"] == "event" && i["event"]["type"] == kind)
        .collect()
}

#[tokio::test]
async fn a_mail_by_smtp_opens_a_ticket_and_replies_thread_by_every_route() {
    let app = smtp_app("").await;
    let first = mail(
        "Maria Müller <maria@kunde.example>",
        SUPPORT,
        "Bondrucker druckt nicht",
        "Message-ID: <first-1@kunde.example>\r\nCc: Chef <chef@kunde.example>\r\n",
        "Seit heute kommen keine Belege.\r\n\r\nViele Grüße\r\nMaria",
    );
    lettre_send(&app, "maria@kunde.example", SUPPORT, &first).await;
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    let ticket = &list[0];
    assert_eq!(ticket["subject"], "Bondrucker druckt nicht");
    assert_eq!(ticket["channel"], "email");
    assert_eq!(ticket["requester"]["email"], "maria@kunde.example");
    assert_eq!(ticket["requester"]["name"], "Maria Müller");
    assert!(
        ticket.get("company_id").is_none(),
        "unknown senders have no company"
    );
    let id = ticket["id"].as_str().unwrap().to_string();
    let reply_to = ticket["reply_to"].as_str().unwrap().to_string();
    let tag = ticket["subject_tag"].as_str().unwrap().to_string();
    let token = reply_to
        .split_once('+')
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(token, _)| token.to_string())
        .unwrap();

    // 1. The plus-token address, from Gmail: only the new text.
    let by_token = mail(
        "maria@kunde.example",
        &reply_to,
        "Re: Bondrucker druckt nicht",
        "Message-ID: <r1@kunde.example>\r\n",
        "Neustart hat nichts gebracht.\r\n\r\nAm Mo., 3. Nov. 2026 um 10:12 Uhr schrieb Support <support@support.example.com>:\r\n> Bitte starten Sie den Drucker neu.\r\n",
    );
    smtp(&app, "maria@kunde.example", &reply_to, &by_token).await;
    // 2. References naming the first (received) message, from Outlook.
    let by_references = mail(
        "maria@kunde.example",
        SUPPORT,
        "AW: Bondrucker druckt nicht",
        "Message-ID: <r2@kunde.example>\r\nIn-Reply-To: <first-1@kunde.example>\r\nReferences: <first-1@kunde.example>\r\n",
        "Jetzt geht es wieder.\r\n\r\n-----Ursprüngliche Nachricht-----\r\nVon: Support <support@support.example.com>\r\nGesendet: Montag, 3. November 2026 10:12\r\nAn: Maria\r\nBetreff: Bondrucker\r\n\r\nBitte neu starten.\r\n",
    );
    smtp(&app, "maria@kunde.example", SUPPORT, &by_references).await;
    // 3. The hidden marker of our notice, kept in the quoted text.
    let by_marker = mail(
        "maria@kunde.example",
        SUPPORT,
        "Re: Ihre Anfrage",
        "Message-ID: <r3@kunde.example>\r\n",
        &format!("Danke!\r\n\r\nOn Mon, 3 Nov 2026 at 10:12, Support <support@support.example.com> wrote:\r\n> Ihr Ticket ist erledigt. [ref:{token}]\r\n"),
    );
    smtp(&app, "maria@kunde.example", SUPPORT, &by_marker).await;
    // 4. The subject tag, from a CC'd participant.
    let by_tag = mail(
        "Chef <chef@kunde.example>",
        SUPPORT,
        &format!("Re: {tag} Bondrucker"),
        "Message-ID: <r4@kunde.example>\r\n",
        "Bitte auch den zweiten Drucker prüfen.\r\n\r\n-- \r\nChef\r\nKunde GmbH",
    );
    smtp(&app, "chef@kunde.example", SUPPORT, &by_tag).await;

    assert_eq!(tickets(&app).await.len(), 1, "every reply threaded");
    let history = app.history(&id).await;
    let texts: Vec<(&str, Option<&str>)> = messages(&history)
        .iter()
        .map(|m| (m["body_text"].as_str().unwrap(), m["threaded_by"].as_str()))
        .collect();
    assert_eq!(
        texts,
        vec![
            (
                "Seit heute kommen keine Belege.\n\nViele Grüße\nMaria",
                None
            ),
            ("Neustart hat nichts gebracht.", Some("token")),
            ("Jetzt geht es wieder.", Some("references")),
            ("Danke!", Some("marker")),
            (
                "Bitte auch den zweiten Drucker prüfen.",
                Some("subject_tag")
            ),
        ]
    );

    // A subject tag from someone who is not a participant opens a new ticket.
    let stranger = mail(
        "stranger@elsewhere.example",
        SUPPORT,
        &format!("Re: {tag} Bondrucker"),
        "Message-ID: <s1@elsewhere.example>\r\n",
        "Ich habe das gleiche Problem.",
    );
    smtp(&app, "stranger@elsewhere.example", SUPPORT, &stranger).await;
    assert_eq!(tickets(&app).await.len(), 2);
}

#[tokio::test]
async fn python_smtplib_opens_a_ticket_for_a_known_contact() {
    let app = smtp_app("").await;
    let company = app.create_company("Café Müller", "customer", None).await;
    let contact = app
        .create_contact(
            company["id"].as_str().unwrap(),
            "Maria Müller",
            "Maria@Cafe.example",
            "manager",
        )
        .await;
    let address = app.smtp_address.unwrap();
    let script = format!(
        "import smtplib\nfrom email.message import EmailMessage\nm = EmailMessage()\nm['From'] = 'MARIA@cafe.example'\nm['To'] = '{SUPPORT}'\nm['Subject'] = 'Kasse startet nicht'\nm.set_content('Die Kasse bleibt beim Logo stehen.')\nwith smtplib.SMTP('{}', {}) as s:\n    s.send_message(m)\n",
        address.ip(),
        address.port()
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["requester"]["contact_id"], contact["id"]);
    assert_eq!(list[0]["company_id"], company["id"]);
    let history = app.history(list[0]["id"].as_str().unwrap()).await;
    assert_eq!(
        history[0]["body_text"],
        "Die Kasse bleibt beim Logo stehen."
    );
}

async fn done(app: &TestApp, ticket_id: &str) {
    let staff = app
        .create_staff("Sam", &format!("sam-{ticket_id}@vendor.example"))
        .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/tickets/{ticket_id}/status"),
            &json!({"status": "done", "staff_id": staff["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_reply_to_a_done_ticket_reopens_it_within_reopen_days() {
    let app = smtp_app("reopen_days = 30").await;
    let first = mail(
        "kim@kunde.example",
        SUPPORT,
        "VPN",
        "Message-ID: <v1@kunde.example>\r\n",
        "VPN geht nicht.",
    );
    let (_, created) = post_mail(&app, &first).await;
    assert_eq!(created["outcome"], "created");
    let id = created["ticket_id"].as_str().unwrap().to_string();
    done(&app, &id).await;
    let reply = mail(
        "kim@kunde.example",
        SUPPORT,
        "Re: VPN",
        "Message-ID: <v2@kunde.example>\r\nIn-Reply-To: <v1@kunde.example>\r\n",
        "Geht schon wieder nicht.\r\n\r\n> VPN geht nicht.",
    );
    let (status, answer) = post_mail(&app, &reply).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["outcome"], "reopened");
    assert_eq!(answer["ticket_id"].as_str(), Some(id.as_str()));
    let (_, ticket) = app.get(&format!("/api/v1/tickets/{id}")).await;
    assert_eq!(ticket["status"], "backlog");
    let history = app.history(&id).await;
    assert_eq!(events(&history, "reopened").len(), 1);
    assert_eq!(
        messages(&history).last().unwrap()["body_text"],
        "Geht schon wieder nicht."
    );
}

#[tokio::test]
async fn a_reply_after_reopen_days_opens_a_linked_new_ticket() {
    let app = smtp_app("reopen_days = 0").await;
    let first = mail(
        "kim@kunde.example",
        SUPPORT,
        "VPN",
        "Message-ID: <w1@kunde.example>\r\n",
        "VPN geht nicht.",
    );
    let (_, created) = post_mail(&app, &first).await;
    let old_id = created["ticket_id"].as_str().unwrap().to_string();
    done(&app, &old_id).await;
    let reply = mail(
        "kim@kunde.example",
        SUPPORT,
        "Re: VPN",
        "Message-ID: <w2@kunde.example>\r\nReferences: <w1@kunde.example>\r\n",
        "Wieder kaputt.",
    );
    let (_, answer) = post_mail(&app, &reply).await;
    assert_eq!(answer["outcome"], "created");
    let new_id = answer["ticket_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);
    let (_, old) = app.get(&format!("/api/v1/tickets/{old_id}")).await;
    assert_eq!(old["status"], "done", "the old ticket stays done");
    let old_links = events(&app.history(&old_id).await, "linked")
        .iter()
        .map(|e| e["event"]["ticket_id"].clone())
        .collect::<Vec<_>>();
    assert_eq!(old_links, vec![json!(new_id)]);
    let new_history = app.history(&new_id).await;
    assert_eq!(
        events(&new_history, "linked")[0]["event"]["ticket_id"],
        json!(old_id)
    );
    assert_eq!(messages(&new_history)[0]["body_text"], "Wieder kaputt.");
}

#[tokio::test]
async fn the_same_message_by_smtp_and_by_mailgate_is_stored_once() {
    let app = smtp_app("").await;
    let raw = mail(
        "ola@kunde.example",
        SUPPORT,
        "Scanner",
        "Message-ID: <dup-1@kunde.example>\r\n",
        "Scanner speichert nicht.",
    );
    smtp(&app, "ola@kunde.example", SUPPORT, &raw).await;
    let (code, stdout, _) = mailgate(&app, &app.address, raw.as_bytes());
    assert_eq!(code, 0);
    let answer: Value = serde_json::from_str(stdout.trim()).expect("mailgate prints the answer");
    assert_eq!(answer["outcome"], "duplicate");
    assert_eq!(answer["number"], 1);
    // And SMTP again, after mailgate: still one ticket with one message.
    smtp(&app, "ola@kunde.example", SUPPORT, &raw).await;
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(app.history(list[0]["id"].as_str().unwrap()).await.len(), 1);
}

/// Runs `kontor mailgate` with `stdin`; (exit code, stdout, stderr).
fn mailgate(app: &TestApp, url: &str, stdin: &[u8]) -> (i32, String, String) {
    mailgate_with(app, url, &[], stdin)
}

/// `kontor mailgate` with more arguments (`--ca-file`), as an MTA's pipe runs it.
pub fn mailgate_with(
    app: &TestApp,
    url: &str,
    args: &[&str],
    stdin: &[u8],
) -> (i32, String, String) {
    let key_file = app.config_path.with_file_name("mailgate.key");
    std::fs::write(&key_file, format!("{}\n", app.key)).expect("key file");
    let mut child = Command::new(kontor_binary())
        .args(["mailgate", "--url", url, "--key-file"])
        .arg(&key_file)
        .args(args)
        .env("KONTOR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailgate runs");
    child.stdin.take().unwrap().write_all(stdin).expect("stdin");
    let output = child.wait_with_output().expect("mailgate ends");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn mailgate_exits_0_delivered_65_refused_75_server_down() {
    let mut app = TestApp::spawn().await;
    let raw = mail(
        "gate@kunde.example",
        SUPPORT,
        "Per Pipe",
        "Message-ID: <gate-1@kunde.example>\r\n",
        "Über Postfix pipe.",
    );
    let (code, stdout, stderr) = mailgate(&app, &app.address, raw.as_bytes());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"created\""), "{stdout}");
    let (code, _, stderr) = mailgate(&app, &app.address, b"this is not mail at all\n");
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.starts_with("kontor: mailgate:"), "{stderr}");
    let address = app.address.clone();
    app.kill();
    let (code, _, stderr) = mailgate(&app, &address, raw.as_bytes());
    assert_eq!(code, 75, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
}

#[tokio::test]
async fn http_intake_refuses_only_what_it_does_not_store() {
    let app = TestApp::spawn().await;
    let raw = mail("x@kunde.example", SUPPORT, "Hi", "", "Hallo");
    let response = app
        .client
        .post(app.url("/api/v1/inbound/email"))
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (code, _) = error_of(StatusCode::BAD_REQUEST, post_mail(&app, "").await);
    assert_eq!(code, "not_a_message");
    assert!(tickets(&app).await.is_empty());
    // Without a Message-ID the content hash makes it idempotent.
    assert_eq!(post_mail(&app, &raw).await.1["outcome"], "created");
    assert_eq!(post_mail(&app, &raw).await.1["outcome"], "duplicate");
}

#[tokio::test]
async fn robots_never_open_tickets() {
    let app = smtp_app("max_per_sender_per_hour = 3").await;
    let cases = [
        (
            "Auto-Submitted: auto-replied\r\n",
            "Automatische Antwort: Urlaub",
            "auto_reply",
        ),
        ("X-Autoreply: yes\r\n", "Abwesend", "auto_reply"),
        ("Precedence: bulk\r\n", "Newsletter", "auto_reply"),
        (
            "List-Id: <kunden.lists.example>\r\n",
            "[kunden] Treffen",
            "list",
        ),
    ];
    for (n, (headers, subject, outcome)) in cases.iter().enumerate() {
        let raw = mail(
            "robot@kunde.example",
            SUPPORT,
            subject,
            &format!("{headers}Message-ID: <robot-{n}@kunde.example>\r\n"),
            "Ich bin nicht im Büro.",
        );
        let (_, answer) = post_mail(&app, &raw).await;
        assert_eq!(answer["outcome"], *outcome, "{subject}");
    }
    // An empty return path (MAIL FROM:<>) over SMTP is an auto-reply too.
    let raw = mail(
        "daemon@kunde.example",
        SUPPORT,
        "Notice",
        "Message-ID: <robot-9@kunde.example>\r\n",
        "x",
    );
    let address = app.smtp_address.unwrap();
    let reply = send_one(address, "", SUPPORT, raw.as_bytes())
        .await
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    assert!(tickets(&app).await.is_empty());

    // A loop: more than 3 ordinary mails from one sender in an hour.
    let mut outcomes = Vec::new();
    for n in 0..5 {
        let raw = mail(
            "loop@kunde.example",
            SUPPORT,
            &format!("Ticket {n}"),
            &format!("Message-ID: <loop-{n}@kunde.example>\r\n"),
            "x",
        );
        outcomes.push(
            post_mail(&app, &raw).await.1["outcome"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(outcomes, ["created", "created", "created", "loop", "loop"]);
    assert_eq!(tickets(&app).await.len(), 3);
}

#[tokio::test]
async fn a_bounce_marks_the_address_and_notes_it_on_the_ticket() {
    let mut app = smtp_app("").await;
    let first = mail(
        "gone@kunde.example",
        SUPPORT,
        "Drucker",
        "Message-ID: <orig-7@kunde.example>\r\n",
        "Drucker kaputt.",
    );
    let (_, created) = post_mail(&app, &first).await;
    let id = created["ticket_id"].as_str().unwrap().to_string();
    let dsn = "From: MAILER-DAEMON@mx.kunde.example\r\nTo: support@support.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.kunde.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.kunde.example\r\n\r\nFinal-Recipient: rfc822; gone@kunde.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@support.example.com\r\nMessage-ID: <orig-7@kunde.example>\r\nSubject: Re: Drucker\r\n--b--\r\n";
    let address = app.smtp_address.unwrap();
    let reply = send_one(address, "", SUPPORT, dsn.as_bytes())
        .await
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(tickets(&app).await.len(), 1, "a bounce opens no ticket");
    let history = app.history(&id).await;
    let bounced = events(&history, "bounced");
    assert_eq!(bounced.len(), 1, "{history:?}");
    assert_eq!(bounced[0]["event"]["address"], "gone@kunde.example");
    // The address is marked: the store holds it in the bounces tree.
    app.terminate();
    let export = app.command(&["export"]);
    let export = String::from_utf8_lossy(&export.stdout);
    assert!(
        export
            .lines()
            .any(|line| line.contains("\"bounces\"") && line.contains("gone@kunde.example")),
        "no bounce in the export"
    );
}

#[tokio::test]
async fn uninterpretable_mail_waits_in_quarantine_and_can_be_reprocessed() {
    let app = smtp_app("").await;
    let broken = b"Subject: no sender at all\r\nX-Junk: \xff\r\n\r\nWho sent this?\r\n";
    let address = app.smtp_address.unwrap();
    let reply = send_one(address, "", SUPPORT, broken).await.unwrap();
    assert!(
        reply.starts_with("250"),
        "accepted mail is kept, not refused: {reply}"
    );
    let (status, list) = app.get("/api/v1/inbound/quarantine").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 1, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["subject"], "no sender at all");
    assert!(
        item["reason"].as_str().unwrap().contains("sender"),
        "{item}"
    );
    let id = item["id"].as_str().unwrap();
    let (status, again) = app
        .post(
            &format!("/api/v1/inbound/quarantine/{id}/reprocess"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["outcome"], "rejected");
    assert_eq!(again["quarantine_id"], item["id"]);
    assert_eq!(app.get("/api/v1/inbound/quarantine").await.1["total"], 1);
    let (code, _) = error_of(
        StatusCode::NOT_FOUND,
        app.post("/api/v1/inbound/quarantine/qm_999999/reprocess", &json!({}))
            .await,
    );
    assert_eq!(code, "not_found");
    assert!(tickets(&app).await.is_empty());
}

#[tokio::test]
async fn attachments_inline_images_and_forwarded_mail_are_listed_and_downloadable() {
    let app = smtp_app("").await;
    let raw = "From: Ana <ana@kunde.example>\r\nTo: support@support.example.com\r\nCc: it@kunde.example, support@support.example.com\r\nSubject: Fehlerbild\r\nMessage-ID: <att-1@kunde.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Siehe Bild <img src=\"cid:img1\"><script>alert(1)</script></p>\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\nContent-Disposition: inline; filename=\"screen.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n--m\r\nContent-Type: application/pdf; name=\"rechnung.pdf\"\r\nContent-Disposition: attachment; filename=\"rechnung.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nFrom: lieferant@else.example\r\nSubject: Alte Rechnung\r\n\r\nBitte zahlen.\r\n--m--\r\n";
    smtp(&app, "ana@kunde.example", SUPPORT, raw).await;
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().unwrap();
    let history = app.history(id).await;
    let first = &history[0];
    assert_eq!(first["body_text"], "Siehe Bild");
    let attachments = first["attachments"].as_array().unwrap();
    let names: Vec<&str> = attachments
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"screen.png"), "{names:?}");
    assert!(names.contains(&"rechnung.pdf"), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".eml")), "{names:?}");
    let pdf = attachments
        .iter()
        .find(|a| a["filename"] == "rechnung.pdf")
        .unwrap();
    let response = app
        .client
        .get(app.url(&format!(
            "/api/v1/attachments/{}",
            pdf["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"%PDF-1.4\n");
    // The HTML kept for the record is sanitised.
    let html = attachments
        .iter()
        .find(|a| a["filename"] == "message.html")
        .unwrap();
    let html = app
        .client
        .get(app.url(&format!(
            "/api/v1/attachments/{}",
            html["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("script") && html.contains("cid:img1"),
        "{html}"
    );

    // The CC'd colleague is a participant: their reply by subject tag threads in.
    let tag = list[0]["subject_tag"].as_str().unwrap();
    let reply = mail(
        "it@kunde.example",
        SUPPORT,
        &format!("Re: {tag} Fehlerbild"),
        "Message-ID: <att-2@kunde.example>\r\n",
        "Ist bei uns auch so.",
    );
    smtp(&app, "it@kunde.example", SUPPORT, &reply).await;
    assert_eq!(tickets(&app).await.len(), 1);
    let history = app.history(id).await;
    assert_eq!(
        messages(&history).last().unwrap()["threaded_by"],
        "subject_tag"
    );
}
