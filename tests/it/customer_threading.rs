//! Threading as the customer's mail client sees it (issue 13): the confirmation of a
//! mail ticket is a reply to the customer's own mail, the ticket's subject is what the
//! mail is about (no "AW:", "Fwd:" or old tags), and a forward keeps the forwarder's
//! note as the entry with the forwarded message attached.

use reqwest::StatusCode;

use crate::inbound::{lettre_send, mail, tickets, SUPPORT};
use crate::smtp_sink::SmtpSink;
use crate::support::*;

#[tokio::test]
async fn the_confirmation_answers_the_customers_mail_under_a_clean_subject() {
    let sink = SmtpSink::start();
    let app = TestApp::spawn_with(TestConfig {
        smtp: true,
        outbound_toml: sink.outbound_toml(),
        ..TestConfig::default()
    })
    .await;
    // The customer's client keeps the Message-ID's case; ours must repeat it exactly.
    let first = mail(
        "Eva Berg <eva@kunde.example>",
        SUPPORT,
        "AW: WG: [#77] Drucker druckt leere Seiten",
        "Message-ID: <CAF.Xy-42@Kunde.Example>\r\n",
        "Seit heute kommen nur leere Seiten.",
    );
    lettre_send(&app, "eva@kunde.example", SUPPORT, &first).await;
    let ticket = tickets(&app).await.remove(0);
    assert_eq!(ticket["subject"], "Drucker druckt leere Seiten");

    let confirmation = sink.wait_for_mail_to("eva@kunde.example", 1).await;
    assert_eq!(
        confirmation.header("In-Reply-To").as_deref(),
        Some("<CAF.Xy-42@Kunde.Example>")
    );
    let references = confirmation.header("References").unwrap_or_default();
    assert!(
        references.trim_end().ends_with("<CAF.Xy-42@Kunde.Example>"),
        "References end with the customer's mail: {references}"
    );
    assert!(
        !confirmation.subject().contains("[#77]") && !confirmation.subject().contains("AW:"),
        "{}",
        confirmation.subject()
    );
}

#[tokio::test]
async fn a_forward_keeps_the_note_and_attaches_what_was_forwarded() {
    let app = crate::inbound::smtp_app("").await;
    let raw = mail(
        "Tom <tom@kunde.example>",
        SUPPORT,
        "Fwd: Neuer API-Schluessel",
        "Message-ID: <fwd-1@kunde.example>\r\n",
        "Bitte pruefen, ob der neue Schluessel bei Ihnen funktioniert.\r\n\r\nTom\r\n\r\n---------- Forwarded message ---------\r\nFrom: Lieferant <api@lieferant.example>\r\nDate: Mon, 2 Nov 2026 at 16:40\r\nSubject: Neuer API-Schluessel\r\nTo: <tom@kunde.example>\r\n\r\nIhr neuer Schluessel gilt ab heute.\r\n",
    );
    lettre_send(&app, "tom@kunde.example", SUPPORT, &raw).await;
    let ticket = tickets(&app).await.remove(0);
    assert_eq!(ticket["subject"], "Neuer API-Schluessel");
    let history = app.history(ticket["id"].as_str().unwrap()).await;
    assert_eq!(
        history[0]["body_text"],
        "Bitte pruefen, ob der neue Schluessel bei Ihnen funktioniert.\n\nTom"
    );
    let forwarded = history[0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"] == "forwarded.txt")
        .cloned()
        .expect("the forwarded message is attached");
    let response = app
        .client
        .get(app.url(&format!(
            "/api/v1/attachments/{}",
            forwarded["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("From: Lieferant <api@lieferant.example>"),
        "{text}"
    );
    assert!(
        text.ends_with("Ihr neuer Schluessel gilt ab heute."),
        "{text}"
    );
}
