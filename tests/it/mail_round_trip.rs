//! The whole conversation by mail, across the doors: a mail (or a webhook post) opens a
//! ticket, the confirmation reaches a real SMTP server, and the customer's reply to that
//! confirmation threads back into the ticket.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::inbound::{lettre_send, mail, tickets, SUPPORT};
use crate::smtp_sink::{Received, SmtpSink};
use crate::support::*;

async fn app_with_sink(sink: &SmtpSink, security_toml: &str) -> TestApp {
    TestApp::spawn_with(TestConfig {
        smtp: true,
        outbound_toml: sink.outbound_toml(),
        security_toml: security_toml.to_string(),
        ..TestConfig::default()
    })
    .await
}

/// Replies to `confirmation` as a mail client does: to its Reply-To, naming its
/// Message-ID, quoting it under an "On … wrote:" line.
async fn reply_to(app: &TestApp, confirmation: &Received, from: &str, new_text: &str) {
    let reply_address = confirmation.header("Reply-To").expect("Reply-To");
    let message_id = confirmation.header("Message-ID").expect("Message-ID");
    let quoted: String = confirmation
        .text()
        .lines()
        .map(|line| format!("> {line}\r\n"))
        .collect();
    let raw = mail(
        from,
        &reply_address,
        &format!("Re: {}", confirmation.subject()),
        &format!("Message-ID: <reply-{}@kunde.example>\r\nIn-Reply-To: {message_id}\r\nReferences: {message_id}\r\n", message_id.len()),
        &format!("{new_text}\r\n\r\nOn Mon, 3 Nov 2026 at 10:01, Support wrote:\r\n{quoted}"),
    );
    lettre_send(app, from, &reply_address, &raw).await;
}

/// Opens the link of a notice on the test server and returns the page's HTML.
async fn open_page(app: &TestApp, link: &str) -> String {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = browser
        .get(app.url(&link[link.find("/l/").unwrap()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    let location = opened.headers()["location"].to_str().unwrap().to_string();
    let session = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = browser
        .get(app.url(&location[location.find("/portal/").unwrap()..]))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

fn customer_messages(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter(|item| item["kind"] == "message")
        .map(|item| item["body_text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_mail_ticket_is_confirmed_in_the_senders_locale_and_the_reply_threads_back() {
    let sink = SmtpSink::start();
    let app = app_with_sink(&sink, "").await;
    let company = app.create_company("Corner Café", "customer", None).await;
    expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/contacts",
            &json!({"company_id": company["id"], "name": "Jo Baker", "email": "jo@corner.example", "role": "manager", "locale": "en"}),
        )
        .await,
    );
    let first = mail(
        "Jo Baker <jo@corner.example>",
        SUPPORT,
        "Card terminal offline",
        "Message-ID: <first@corner.example>\r\n",
        "The card terminal says offline since this morning.",
    );
    lettre_send(&app, "jo@corner.example", SUPPORT, &first).await;
    let ticket = tickets(&app).await.remove(0);
    assert_eq!(ticket["channel"], "email");

    let confirmation = sink.wait_for_mail_to("jo@corner.example", 1).await;
    assert!(
        confirmation.subject().contains("We received your request"),
        "in English: {}",
        confirmation.subject()
    );
    assert!(confirmation.subject().contains("[#1]"));
    assert_eq!(
        confirmation.header("Reply-To").as_deref(),
        ticket["reply_to"].as_str()
    );
    assert!(open_page(&app, &confirmation.link().expect("a view link"))
        .await
        .contains("Card terminal offline"));

    reply_to(
        &app,
        &confirmation,
        "jo@corner.example",
        "Restarting the router fixed it, thanks!",
    )
    .await;
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1, "the reply opened a new ticket");
    let history = app.history(ticket["id"].as_str().unwrap()).await;
    assert_eq!(
        customer_messages(&history),
        vec![
            "The card terminal says offline since this morning.",
            "Restarting the router fixed it, thanks!"
        ]
    );
    let reply = history
        .iter()
        .rev()
        .find(|item| item["kind"] == "message")
        .unwrap();
    assert_eq!(reply["threaded_by"], "token", "{reply}");
    assert_eq!(
        sink.messages()
            .iter()
            .filter(|m| m.envelope_to() == "jo@corner.example")
            .count(),
        1,
        "a customer's reply sends the customer nothing"
    );
}

#[tokio::test]
async fn the_webhook_reporter_is_confirmed_and_a_reply_by_mail_threads_into_the_ticket() {
    use hmac::{Hmac, Mac};
    let sink = SmtpSink::start();
    let app = app_with_sink(&sink, "onretail_secret = \"pos-secret\"\n").await;
    let body = serde_json::to_vec(&json!({
        "instance_id": "onr-7",
        "reporter": {"name": "Kim Kasse", "email": "kim@laden.example"},
        "subject": "Waage zeigt falsches Gewicht",
        "description": "Die Waage an Kasse 1 zeigt 20 g zu viel."
    }))
    .unwrap();
    let timestamp = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"pos-secret").unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(&body);
    let response = app
        .client
        .post(app.url("/webhooks/onretail"))
        .header(
            "X-Onretail-Signature",
            format!(
                "t={timestamp},v1={}",
                hex::encode(mac.finalize().into_bytes())
            ),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, created) = read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let confirmation = sink.wait_for_mail_to("kim@laden.example", 1).await;
    assert_eq!(confirmation.link().as_deref(), created["view_url"].as_str());
    reply_to(
        &app,
        &confirmation,
        "kim@laden.example",
        "Nach dem Tarieren stimmt es wieder.",
    )
    .await;
    let history = app.history(created["ticket_id"].as_str().unwrap()).await;
    assert_eq!(
        customer_messages(&history),
        vec![
            "Die Waage an Kasse 1 zeigt 20 g zu viel.",
            "Nach dem Tarieren stimmt es wieder."
        ]
    );
    assert_eq!(tickets(&app).await.len(), 1);
}
