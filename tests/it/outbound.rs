//! Outbound notifications and magic links against a real SMTP server (aiosmtpd, see
//! `smtp_sink.rs`): the confirmation, its headers and link, the outage that loses and
//! repeats nothing, every link check, bounces, the loop guard, and template errors.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use kontor_engine::links::{KeyRing, LinkClaims, LinkScope};
use kontor_engine::model::RecordRef;

use crate::smtp_sink::{Received, SmtpSink};
use crate::support::*;

async fn app_with_sink(sink: &SmtpSink, outbound_extra: &str) -> TestApp {
    TestApp::spawn_with(TestConfig {
        outbound_toml: format!("{}{outbound_extra}", sink.outbound_toml()),
        ..TestConfig::default()
    })
    .await
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn contact(app: &TestApp, email: &str, locale: &str) -> Value {
    let company = app.create_company("Café Müller", "customer", None).await;
    expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/contacts",
            &json!({"company_id": company["id"], "name": "Maria Müller", "email": email, "role": "manager", "locale": locale}),
        )
        .await,
    )
}

fn token_of(link: &str) -> String {
    link.rsplit("/l/").next().unwrap_or_default().to_string()
}

/// Opens a link: the 303, its cookie and headers.
async fn open(app: &TestApp, token: &str) -> reqwest::Response {
    browser()
        .get(app.url(&format!("/l/{token}")))
        .send()
        .await
        .expect("link opened")
}

fn assert_notice_headers(message: &Received, ticket: &Value) {
    let message_id = message.header("Message-ID").expect("Message-ID");
    let number = ticket["number"].as_u64().unwrap();
    assert!(
        message_id.starts_with("<kontor.")
            && message_id.ends_with(&format!(".{number}@support.example.com>")),
        "{message_id}"
    );
    assert_eq!(
        message.header("Reply-To").as_deref(),
        ticket["reply_to"].as_str(),
        "Reply-To is the ticket's reply address"
    );
    assert!(message
        .subject()
        .contains(ticket["subject_tag"].as_str().unwrap()));
    assert_eq!(
        message.header("X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert!(message.header("In-Reply-To").is_some());
    assert!(message.header("References").is_some());
    assert_eq!(message.content_type(), "multipart/alternative");
    let reply_token = ticket["reply_to"]
        .as_str()
        .unwrap()
        .trim_start_matches("support+")
        .trim_end_matches("@support.example.com")
        .to_string();
    let marker = format!("[ref:{reply_token}]");
    assert!(message.text().contains(&marker), "marker in the text part");
    assert!(message.html().contains(&marker), "marker in the HTML part");
    assert!(!message.html().contains("<script"), "no scripts");
    assert!(!message.html().contains("<img"), "no remote images");
}

#[tokio::test]
async fn the_confirmation_is_in_the_requesters_locale_threads_and_its_link_opens_the_ticket() {
    let sink = SmtpSink::start();
    let app = app_with_sink(&sink, "").await;
    let staff = app.create_staff("Sam Support", "sam@vendor.example").await;
    for (locale, email, words) in [
        (
            "de",
            "maria@mueller.example",
            "Ihre Anfrage ist eingegangen",
        ),
        ("en", "jonas@weber.example", "We received your request"),
    ] {
        let requester = contact(&app, email, locale).await;
        let ticket = app
            .create_ticket(&json!({"subject": "Bondrucker <druckt> nicht", "body": "Seit heute keine Belege.", "contact_id": requester["id"], "assignee_id": staff["id"]}))
            .await;
        let confirmation = sink.wait_for_mail_to(email, 1).await;
        assert!(
            confirmation.subject().contains(words),
            "{}",
            confirmation.subject()
        );
        assert_eq!(
            confirmation.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        assert_notice_headers(&confirmation, &ticket);
        assert!(confirmation
            .text()
            .contains(ticket["reply_to"].as_str().unwrap()));
        assert!(
            confirmation
                .html()
                .contains("Bondrucker &lt;druckt&gt; nicht"),
            "customer text is escaped in HTML"
        );
        // The assignee hears of the new ticket.
        let notice = sink
            .wait_for_mail_to("sam@vendor.example", 1 + (locale == "en") as usize)
            .await;
        assert!(notice
            .subject()
            .contains(ticket["subject_tag"].as_str().unwrap()));

        // Messages before the customer opens the link: one public, one internal.
        let id = ticket["id"].as_str().unwrap();
        for (body, visibility) in [
            ("Bitte Papier prüfen.", "public"),
            ("Treiber 4.2 ist kaputt (intern).", "internal"),
        ] {
            expect(
                StatusCode::CREATED,
                app.post(
                    &format!("/api/v1/tickets/{id}/messages"),
                    &json!({"body": body, "staff_id": staff["id"], "visibility": visibility}),
                )
                .await,
            );
        }
        let staff_message = sink.wait_for_mail_to(email, 2).await;
        assert!(staff_message.text().contains("Bitte Papier prüfen."));
        assert_eq!(
            staff_message.header("Auto-Submitted"),
            None,
            "a person wrote it"
        );
        assert!(!staff_message.text().contains("intern"));

        let link = confirmation.link().expect("a link in the confirmation");
        let response = open(&app, &token_of(&link)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()["location"],
            format!("/portal/tickets/{}", ticket["number"]).as_str()
        );
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let session = cookie.split(';').next().unwrap().to_string();
        let page = browser()
            .get(app.url(response.headers()["location"].to_str().unwrap()))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.unwrap();
        assert!(html.contains("Bondrucker &lt;druckt&gt; nicht"), "{html}");
        assert!(html.contains("Seit heute keine Belege."));
        assert!(html.contains("Bitte Papier prüfen."));
        assert!(
            !html.contains("Treiber 4.2"),
            "internal messages stay internal"
        );
        assert!(html.contains(&format!("lang=\"{locale}\"")));
        // Without the cookie, the page is closed.
        let closed = browser()
            .get(app.url(&format!("/portal/tickets/{}", ticket["number"])))
            .send()
            .await
            .unwrap();
        assert_eq!(
            closed.status(),
            StatusCode::SEE_OTHER,
            "a page needs a session: to the login"
        );
        assert_eq!(closed.headers()["location"], "/portal/login");
    }
    // Opening links changed nothing: the history has no new entries from it.
    let every_message_once = sink.messages();
    let mut ids: Vec<String> = every_message_once
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "every message has its own Message-ID");
    assert!(
        every_message_once
            .iter()
            .all(|m| !m.envelope_to().contains(',')),
        "one recipient a message"
    );
}

#[tokio::test]
async fn fifty_notices_survive_an_smtp_outage_and_a_restart_exactly_once() {
    let mut sink = SmtpSink::start();
    let mut app = app_with_sink(&sink, "max_auto_per_address_per_hour = 1000\n").await;
    sink.stop();
    let mut tickets = Vec::new();
    for n in 0..50 {
        tickets.push(
            app.create_ticket(&json!({"subject": format!("Kasse {n}"), "body": "Geht nicht.", "requester_email": format!("kunde{n}@example.org")}))
                .await,
        );
    }
    // The sender has tried and failed while the server was down.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = app.outbox(Some("pending")).await;
        if rows.len() == 50 && rows.iter().any(|row| row["attempts"].as_u64() > Some(0)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.kill();
    app.start(false).await.expect("restarts");
    sink.restart();
    let messages = sink
        .wait_for("50 confirmations", |messages| messages.len() >= 50)
        .await;
    app.wait_until_outbox_drained().await;
    // A second restart sends nothing again; one more ticket shows the sender works.
    app.terminate();
    app.start(false).await.expect("restarts again");
    app.create_ticket(
        &json!({"subject": "Danach", "body": "Noch eins.", "requester_email": "later@example.org"}),
    )
    .await;
    sink.wait_for_mail_to("later@example.org", 1).await;
    app.wait_until_outbox_drained().await;
    let messages_after = sink.messages();
    assert_eq!(
        messages_after.len(),
        51,
        "each of the 50 exactly once, then the new one"
    );
    for n in 0..50 {
        let to = format!("kunde{n}@example.org");
        assert_eq!(
            messages.iter().filter(|m| m.envelope_to() == to).count(),
            1,
            "{to} got exactly one confirmation"
        );
    }
    assert_eq!(app.outbox(Some("sent")).await.len(), 51);
}

fn sign(app: &TestApp, claims: &LinkClaims) -> String {
    let ring = KeyRing::load_or_create(&app.data_dir()).expect("the server's key ring");
    ring.sign_claims("link", claims)
}

#[tokio::test]
async fn every_link_check_valid_expired_tampered_wrong_scope_revoked_rotated() {
    let sink = SmtpSink::start();
    let mut app = app_with_sink(&sink, "").await;
    let requester = contact(&app, "maria@mueller.example", "en").await;
    let ticket = app
        .create_ticket(&json!({"subject": "Kartenterminal", "body": "Fehler 42.", "contact_id": requester["id"], "notify": false}))
        .await;
    let id = ticket["id"].as_str().unwrap();
    let made = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/links",
            &json!({"record": "ticket", "id": id, "contact_id": requester["id"], "scope": "view"}),
        )
        .await,
    );
    assert!(made["expires_at"].is_string());
    let url = made["url"].as_str().unwrap();
    let token = token_of(url);
    assert!(
        token.len() < 60,
        "short enough for wrapping clients: {token}"
    );
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "URL-safe: {token}"
    );

    // Valid.
    assert_eq!(open(&app, &token).await.status(), StatusCode::SEE_OTHER);

    // Tampered: one character changed.
    let mut tampered: Vec<char> = token.chars().collect();
    let middle = tampered.len() / 2 + 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_eq!(open(&app, &tampered).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(open(&app, "garbage").await.status(), StatusCode::FORBIDDEN);

    // Wrong scope: the API refuses a sign link to a ticket, and a forged-by-us one is 403.
    let (code, _) = error_of(
        StatusCode::UNPROCESSABLE_ENTITY,
        app.post(
            "/api/v1/links",
            &json!({"record": "ticket", "id": id, "scope": "sign"}),
        )
        .await,
    );
    assert_eq!(code, "scope_not_allowed");
    let ticket_number: u64 = id.trim_start_matches("tk_").parse().unwrap();
    let contact_id: u64 = requester["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("ct_")
        .parse()
        .unwrap();
    let claims = LinkClaims {
        record: RecordRef::ticket(kontor_engine::ids::TicketId(ticket_number)),
        contact_id: Some(kontor_engine::ids::ContactId(contact_id)),
        scope: LinkScope::Sign,
        expires_at: chrono::Utc::now() + chrono::Duration::days(1),
        epoch: 0,
    };
    assert_eq!(
        open(&app, &sign(&app, &claims)).await.status(),
        StatusCode::FORBIDDEN
    );

    // Expired: 410 with a form that mails a fresh link to the link's contact only.
    let expired = sign(
        &app,
        &LinkClaims {
            scope: LinkScope::View,
            expires_at: chrono::Utc::now() - chrono::Duration::minutes(5),
            ..claims.clone()
        },
    );
    let response = open(&app, &expired).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let page = response.text().await.unwrap();
    assert!(page.contains("action=\"/l/fresh\""), "{page}");
    assert!(
        page.contains("This link has expired"),
        "in the contact's locale: {page}"
    );
    let answer = browser()
        .post(app.url("/l/fresh"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let same_words = answer.text().await.unwrap();
    let fresh = sink.wait_for_mail_to("maria@mueller.example", 1).await;
    let fresh_token = token_of(&fresh.link().expect("a fresh link"));
    assert_eq!(
        open(&app, &fresh_token).await.status(),
        StatusCode::SEE_OTHER
    );
    let forged_answer = browser()
        .post(app.url("/l/fresh"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={tampered}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged_answer.text().await.unwrap(),
        same_words,
        "the same words either way"
    );

    // Revoked by bumping the ticket's link epoch: old links 403, new ones work.
    let revoked = expect(
        StatusCode::OK,
        app.post(
            "/api/v1/links/revoke",
            &json!({"record": "ticket", "id": id}),
        )
        .await,
    );
    assert_eq!(revoked["link_epoch"], 1);
    assert_eq!(open(&app, &token).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        open(&app, &fresh_token).await.status(),
        StatusCode::FORBIDDEN
    );
    let after_revoke = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/links",
            &json!({"record": "ticket", "id": id, "scope": "view"}),
        )
        .await,
    );
    let current = token_of(after_revoke["url"].as_str().unwrap());
    assert_eq!(open(&app, &current).await.status(), StatusCode::SEE_OTHER);

    // Rotated key: the old key's link still opens, new links use the new key.
    app.terminate();
    let rotated = app.command(&["keys", "rotate-signing"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let new_key = String::from_utf8(rotated.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(new_key, "k2");
    app.start(false).await.expect("restarts");
    assert!(current.starts_with("k1."));
    assert_eq!(open(&app, &current).await.status(), StatusCode::SEE_OTHER);
    let newer = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/links",
            &json!({"record": "ticket", "id": id, "scope": "view"}),
        )
        .await,
    );
    let newer = token_of(newer["url"].as_str().unwrap());
    assert!(newer.starts_with("k2."), "{newer}");
    assert_eq!(open(&app, &newer).await.status(), StatusCode::SEE_OTHER);
    // Removing the old key ends its links.
    app.terminate();
    let removed = app.command(&["keys", "remove-signing", "--id", "k1"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    app.start(false).await.expect("restarts");
    assert_eq!(open(&app, &current).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(open(&app, &newer).await.status(), StatusCode::SEE_OTHER);

    // Every kind has links now; one to a record that does not exist is a 404.
    let (code, _) = error_of(
        StatusCode::NOT_FOUND,
        app.post(
            "/api/v1/links",
            &json!({"record": "quote", "id": "qt_1", "scope": "view"}),
        )
        .await,
    );
    assert_eq!(code, "not_found");
}

/// A server sending to `sink`, a staff member, and a ticket from `email` whose
/// confirmation the sink refused for good: the row failed, the ticket shows it.
async fn a_ticket_whose_confirmation_is_refused(
    sink: &SmtpSink,
    email: &str,
) -> (TestApp, Value, String) {
    let app = app_with_sink(sink, "").await;
    let staff = app.create_staff("Sam Support", "sam@vendor.example").await;
    let ticket = app
        .create_ticket(
            &json!({"subject": "Kasse", "body": "Geht nicht.", "requester_email": email}),
        )
        .await;
    let id = ticket["id"].as_str().unwrap().to_string();
    app.wait_until_outbox_drained().await;
    let history = app.history(&id).await;
    let failed = history
        .iter()
        .find(|item| item["event"]["type"] == "notification_failed")
        .expect("a notification_failed event");
    assert_eq!(failed["kind"], "event");
    assert_eq!(app.outbox(Some("failed")).await.len(), 1);
    (app, staff, id)
}

async fn reply_publicly(app: &TestApp, id: &str, staff: &Value) {
    expect(
        StatusCode::CREATED,
        app.post(
            &format!("/api/v1/tickets/{id}/messages"),
            &json!({"body": "Können Sie uns anrufen?", "staff_id": staff["id"], "visibility": "public"}),
        )
        .await,
    );
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_and_the_bouncing_address_gets_nothing_more() {
    let sink = SmtpSink::start();
    let (app, staff, id) =
        a_ticket_whose_confirmation_is_refused(&sink, "bounce-me@example.org").await;
    assert_eq!(sink.refused(), vec!["bounce-me@example.org"]);

    // The next notice to that address is not sent: the sink never hears of it.
    reply_publicly(&app, &id, &staff).await;
    app.create_ticket(
        &json!({"subject": "Andere", "body": "x", "requester_email": "ok@example.org"}),
    )
    .await;
    sink.wait_for_mail_to("ok@example.org", 1).await;
    app.wait_until_outbox_drained().await;
    assert_eq!(
        sink.refused().len(),
        1,
        "no second attempt at a bouncing address"
    );
    assert!(sink
        .messages()
        .iter()
        .all(|m| m.envelope_to() != "bounce-me@example.org"));
}

#[tokio::test]
async fn a_spam_refusal_fails_the_notice_but_does_not_make_the_address_bounce() {
    let sink = SmtpSink::start();
    let (app, staff, id) =
        a_ticket_whose_confirmation_is_refused(&sink, "spam-filter@example.org").await;

    // A 5.7.1 says nothing about the mailbox: the next notice is tried again.
    reply_publicly(&app, &id, &staff).await;
    app.wait_until_outbox_drained().await;
    assert_eq!(
        sink.refused(),
        vec!["spam-filter@example.org", "spam-filter@example.org"]
    );
    assert_eq!(app.outbox(Some("failed")).await.len(), 2);
    assert_eq!(app.outbox(Some("suppressed")).await.len(), 0);
}

#[tokio::test]
async fn the_loop_guard_caps_automatic_notices_per_address_and_notify_false_sends_nothing() {
    let sink = SmtpSink::start();
    let app = app_with_sink(&sink, "max_auto_per_address_per_hour = 3\n").await;
    for n in 0..5 {
        app.create_ticket(&json!({"subject": format!("Schleife {n}"), "body": "Auto", "requester_email": "loop@example.org"}))
            .await;
    }
    app.create_ticket(&json!({"subject": "Still", "body": "x", "requester_email": "quiet@example.org", "notify": false}))
        .await;
    app.create_ticket(
        &json!({"subject": "Last", "body": "x", "requester_email": "last@example.org"}),
    )
    .await;
    sink.wait_for_mail_to("last@example.org", 1).await;
    app.wait_until_outbox_drained().await;
    let messages = sink.messages();
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.envelope_to() == "loop@example.org")
            .count(),
        3
    );
    assert!(messages
        .iter()
        .all(|m| m.envelope_to() != "quiet@example.org"));
    assert_eq!(
        app.outbox(None).await.len(),
        4,
        "only what is sent is queued"
    );
}

#[tokio::test]
async fn status_changes_notify_the_requester_with_how_to_reopen() {
    let sink = SmtpSink::start();
    let app = app_with_sink(&sink, "").await;
    let staff = app.create_staff("Sam Support", "sam@vendor.example").await;
    let ticket = app
        .create_ticket(&json!({"subject": "Export", "body": "Leer.", "requester_email": "kunde@example.org", "notify": false}))
        .await;
    let id = ticket["id"].as_str().unwrap();
    for status in ["waiting_on_customer", "done", "backlog"] {
        expect(
            StatusCode::OK,
            app.post(
                &format!("/api/v1/tickets/{id}/status"),
                &json!({"status": status, "staff_id": staff["id"]}),
            )
            .await,
        );
    }
    sink.wait_for_mail_to("kunde@example.org", 3).await;
    // Several messages are in flight at once, so they may arrive in any order.
    let messages: Vec<Received> = sink
        .messages()
        .into_iter()
        .filter(|m| m.envelope_to() == "kunde@example.org")
        .collect();
    let with_subject = |words: &str| {
        messages
            .iter()
            .find(|m| m.subject().contains(words))
            .unwrap_or_else(|| panic!("no notice with {words:?} in its subject"))
    };
    with_subject("Rückmeldung");
    let done = with_subject("erledigt");
    assert!(
        done.text().contains("30 Tagen"),
        "how to reopen: {}",
        done.text()
    );
    with_subject("wieder offen");
    for message in &messages {
        assert_notice_headers(message, &ticket);
    }
}

#[tokio::test]
async fn a_broken_template_stops_the_start_naming_the_file() {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&shipped_templates(), copy.path());
    std::fs::write(
        copy.path().join("email/ticket_done.de.html.hbs"),
        "{{#if ticket}} never closed",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kontor.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\ntemplates_dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().join("data").display().to_string(),
            copy.path().display().to_string()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(kontor_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .env("KONTOR_LOG", "error")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ticket_done.de.html.hbs"), "{stderr}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
