//! Webhooks to the back office: a receiver of the test's own checks each post's
//! Standard Webhooks signature independently, and the delivery log and replay are
//! used as an operator would. The outbox guarantee: a receiver that is down, and a
//! server killed with events pending, still get every event, with the same id. The
//! record events of the portal (a document signed, quotes accepted and declined) and
//! of staff (an order cancelled, an invoice paid) reach a receiver over https,
//! trusted by the entry's `ca_file`, with no magic-link token in any payload.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as HttpStatus};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::portal::{cast, csrf_in, id, Visitor};
use crate::portal_signing::{content_hash_in, sent_document};
use crate::support::{expect, TestApp, TestConfig};
use crate::tls::{SelfSigned, TlsFront};

/// 32 bytes, base64: the secret both sides know.
const SECRET: &str = "whsec_c2VjcmV0LWtleS1vZi10aGUtYmFjay1vZmZpY2UtMDE=";

/// One post as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    webhook_id: String,
    body: Value,
    /// The signature checked here, with the secret, over id, timestamp and body.
    signature_valid: bool,
    /// The timestamp is within five minutes of the receiver's clock.
    timestamp_fresh: bool,
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    /// Answers this status instead of 200 while set.
    failing_with: Arc<Mutex<Option<u16>>>,
}

/// An HTTP receiver on 127.0.0.1, stopped when dropped.
struct Receiver {
    address: SocketAddr,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start_on(address: SocketAddr) -> Receiver {
        let state = ReceiverState::default();
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .expect("receiver binds");
        let address = listener.local_addr().expect("receiver address");
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            address,
            state,
            task,
        }
    }

    async fn start() -> Receiver {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    fn fail_with(&self, status: Option<u16>) {
        *self.state.failing_with.lock().expect("lock") = status;
    }

    /// Waits until a post of `event_type` arrived, and returns every post so far.
    async fn wait_for(&self, what: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(found) = self.received().into_iter().find(|post| what(post)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no such webhook arrived; got {:?}",
                self.received()
                    .iter()
                    .map(|post| post.body["type"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A port nothing listens on (yet): the receiver is "down".
fn unused_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let webhook_id = header("webhook-id");
    let timestamp = header("webhook-timestamp");
    let text = String::from_utf8_lossy(&body).to_string();
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("the test secret is base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{webhook_id}.{timestamp}.{text}").as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    // The header may carry several signatures, space-separated.
    let signature_valid = header("webhook-signature")
        .split(' ')
        .any(|signature| signature == expected);
    let timestamp_fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|at| (chrono::Utc::now().timestamp() - at).abs() < 300);
    let failing = *state.failing_with.lock().expect("lock");
    state.received.lock().expect("lock").push(Received {
        webhook_id,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        signature_valid,
        timestamp_fresh,
    });
    match failing {
        Some(status) => HttpStatus::from_u16(status).unwrap_or(HttpStatus::INTERNAL_SERVER_ERROR),
        None => HttpStatus::OK,
    }
}

fn webhook_config(receiver: SocketAddr, events: &str) -> TestConfig {
    TestConfig {
        extra_toml: format!(
            "[[webhooks]]\nurl = \"http://{receiver}/hooks\"\nsecret = \"{SECRET}\"\nevents = {events}\n"
        ),
        outbound_toml: "webhook_retry_base_ms = 200\nwebhook_retry_max_seconds = 1\n".into(),
        ..TestConfig::default()
    }
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/webhooks/deliveries?per_page=500{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// Waits until the delivery log shows one matching `what`.
async fn wait_for_delivery(app: &TestApp, what: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = deliveries(app, "").await.into_iter().find(|d| what(d)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no such delivery: {:?}",
            deliveries(app, "").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lets the contact see (and be sent) quotes, orders and invoices.
async fn grant_commercial(app: &TestApp, contact: &Value) {
    expect(
        StatusCode::OK,
        app.put(
            &format!(
                "/api/v1/contacts/{}/permissions",
                contact["id"].as_str().unwrap()
            ),
            &json!({"portal": false, "quotes": true, "orders": true, "invoices": true,
                    "subscriptions": false, "requested_by": contact["id"]}),
        )
        .await,
    );
}

/// An invoice issued to `contact` and marked paid by `staff`.
async fn paid_invoice(
    app: &TestApp,
    company: &Value,
    contact: &Value,
    staff: &Value,
    number: &str,
) -> Value {
    let invoice = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/invoices",
            &json!({"company_id": company["id"], "contact_id": contact["id"], "number": number,
                    "lines": [{"description": "Kassenterminal", "quantity": 1, "unit_price_cents": 129900}],
                    "currency": "EUR", "due_date": "2027-01-31"}),
        )
        .await,
    );
    expect(
        StatusCode::OK,
        app.post(
            &format!(
                "/api/v1/invoices/{}/status",
                invoice["id"].as_str().unwrap_or_default()
            ),
            &json!({"status": "paid", "staff_id": staff["id"]}),
        )
        .await,
    );
    invoice
}

async fn ticket_for(app: &TestApp, contact: &Value, subject: &str) -> Value {
    app.create_ticket(&json!({
        "subject": subject,
        "body": "Die Kasse startet nicht.",
        "contact_id": contact["id"],
    }))
    .await
}

#[tokio::test]
async fn every_event_reaches_the_back_office_signed_with_the_records_api_json() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(webhook_config(receiver.address, "[\"*\"]")).await;
    let (company, contact, staff) = app.cafe_with_manager_and_staff().await;
    grant_commercial(&app, &contact).await;

    let ticket = ticket_for(&app, &contact, "Kasse 2 startet nicht").await;
    let created = receiver
        .wait_for(|post| post.body["type"] == "ticket.created")
        .await;
    assert!(created.signature_valid, "the signature checks out");
    assert!(created.timestamp_fresh);
    assert!(created.webhook_id.starts_with("msg_"));
    // `data` is the ticket as the API shows it.
    let shown = expect(
        StatusCode::OK,
        app.get(&format!(
            "/api/v1/tickets/{}",
            ticket["id"].as_str().unwrap()
        ))
        .await,
    );
    assert_eq!(created.body["data"], shown);
    assert!(created.body["timestamp"].is_string());

    let path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    expect(
        StatusCode::OK,
        app.post(
            &format!("{path}/status"),
            &json!({"status": "in_progress", "staff_id": staff["id"]}),
        )
        .await,
    );
    let changed = receiver
        .wait_for(|post| post.body["type"] == "ticket.status_changed")
        .await;
    assert!(changed.signature_valid);
    assert_eq!(changed.body["data"]["status"], "in_progress");
    assert_eq!(changed.body["data"]["id"], ticket["id"]);

    expect(
        StatusCode::CREATED,
        app.post(
            &format!("{path}/messages"),
            &json!({"body": "Wir sehen uns das an.", "staff_id": staff["id"], "visibility": "public"}),
        )
        .await,
    );
    let message = receiver
        .wait_for(|post| {
            post.body["type"] == "message.created"
                && post.body["data"]["body_text"] == "Wir sehen uns das an."
        })
        .await;
    assert!(message.signature_valid);
    assert_eq!(message.body["data"]["author"]["kind"], "staff");
    assert_eq!(message.body["data"]["record"]["id"], ticket["id"]);
    assert_eq!(message.body["data"]["record"]["kind"], "ticket");

    let invoice = paid_invoice(&app, &company, &contact, &staff, "RE-2026-0042").await;
    let paid = receiver
        .wait_for(|post| post.body["type"] == "invoice.paid")
        .await;
    assert!(paid.signature_valid);
    assert_eq!(paid.body["data"]["number"], "RE-2026-0042");
    assert_eq!(paid.body["data"]["status"], "paid");

    // Every post is delivered, and the log says so, with the header's id.
    let log = wait_for_delivery(&app, |d| {
        d["type"] == "invoice.paid" && d["state"] == "delivered"
    })
    .await;
    assert_eq!(log["webhook_id"], paid.webhook_id);
    assert_eq!(log["attempt_log"][0]["status"], 200);
    assert_eq!(log["record"]["id"], invoice["id"]);
    // No magic link, nor its token, in any payload.
    for post in receiver.received() {
        let text = post.body.to_string();
        assert!(!text.contains("/l/"), "a link in {text}");
        assert!(post.signature_valid);
    }
}

#[tokio::test]
async fn only_subscribed_events_are_sent_and_quotes_report_acceptance_and_decline() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(webhook_config(
        receiver.address,
        "[\"quote.accepted\", \"quote.declined\", \"order.cancelled\"]",
    ))
    .await;
    let (company, contact, staff) = app.cafe_with_manager_and_staff().await;
    grant_commercial(&app, &contact).await;
    ticket_for(&app, &contact, "Nicht abonniert").await;
    let quote_of = |title: &str| {
        json!({"company_id": company["id"], "contact_id": contact["id"], "title": title,
               "lines": [{"description": "Waage", "quantity": 1, "unit_price_cents": 49900}],
               "currency": "EUR", "valid_until": "2099-12-31", "staff_id": staff["id"]})
    };
    let accepted = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &quote_of("Waage")).await,
    );
    let accepted_path = format!("/api/v1/quotes/{}", accepted["id"].as_str().unwrap());
    expect(
        StatusCode::OK,
        app.post_raw(&format!("{accepted_path}/send"), "").await,
    );
    let order = expect(
        StatusCode::CREATED,
        app.post(
            &format!("{accepted_path}/accept"),
            &json!({"contact_id": contact["id"], "signature": "Maria Müller"}),
        )
        .await,
    );
    let declined = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &quote_of("Zweite Waage")).await,
    );
    let declined_path = format!("/api/v1/quotes/{}", declined["id"].as_str().unwrap());
    expect(
        StatusCode::OK,
        app.post_raw(&format!("{declined_path}/send"), "").await,
    );
    expect(
        StatusCode::OK,
        app.post(
            &format!("{declined_path}/decline"),
            &json!({"contact_id": contact["id"], "reason": "Zu teuer"}),
        )
        .await,
    );
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap()),
            &json!({"reason": "Filiale zu", "agreed_by": contact["id"], "staff_id": staff["id"]}),
        )
        .await,
    );
    let accepted_post = receiver
        .wait_for(|post| post.body["type"] == "quote.accepted")
        .await;
    assert_eq!(accepted_post.body["data"]["id"], accepted["id"]);
    // The quote as the change left it: accepted, not the later cancellation.
    assert_eq!(accepted_post.body["data"]["status"], "accepted");
    let declined_post = receiver
        .wait_for(|post| post.body["type"] == "quote.declined")
        .await;
    assert_eq!(declined_post.body["data"]["decline_reason"], "Zu teuer");
    let cancelled_post = receiver
        .wait_for(|post| post.body["type"] == "order.cancelled")
        .await;
    assert_eq!(cancelled_post.body["data"]["id"], order["id"]);
    assert_eq!(cancelled_post.body["data"]["status"], "cancelled");
    let types: Vec<Value> = deliveries(&app, "")
        .await
        .iter()
        .map(|delivery| delivery["type"].clone())
        .collect();
    assert_eq!(types.len(), 3, "only the subscribed events: {types:?}");
    for post in receiver.received() {
        assert!(post.signature_valid);
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_event_later_with_the_same_id_and_replay_sends_it_again() {
    let address = unused_address();
    let app = TestApp::spawn_with(webhook_config(address, "[\"ticket.created\"]")).await;
    let (_, contact, _) = app.cafe_with_manager_and_staff().await;
    ticket_for(&app, &contact, "Während der Wartung").await;
    // Refused at least twice, and still pending.
    let pending = wait_for_delivery(&app, |d| {
        d["state"] == "pending" && d["attempts"].as_u64() >= Some(2)
    })
    .await;
    assert!(pending["attempt_log"][0].get("status").is_none());
    assert!(pending["attempt_log"][0]["error"].is_string());

    // Up, but failing with 503: still retried.
    let receiver = Receiver::start_on(address).await;
    receiver.fail_with(Some(503));
    receiver.wait_for(|_| true).await;
    let failing = wait_for_delivery(&app, |d| {
        d["attempt_log"]
            .as_array()
            .is_some_and(|log| log.iter().any(|attempt| attempt["status"] == 503))
    })
    .await;
    assert_eq!(failing["state"], "pending");

    receiver.fail_with(None);
    let delivered = wait_for_delivery(&app, |d| d["state"] == "delivered").await;
    let posts = receiver.received();
    assert!(posts.len() >= 2, "retried: {posts:?}");
    assert!(
        posts
            .iter()
            .all(|post| post.webhook_id == pending["webhook_id"]),
        "the same webhook-id on every attempt"
    );
    assert!(posts.iter().all(|post| post.signature_valid));
    assert!(posts.windows(2).all(|pair| pair[0].body == pair[1].body));
    assert_eq!(delivered["webhook_id"], pending["webhook_id"]);
    assert_eq!(
        deliveries(&app, "&state=delivered").await.len(),
        1,
        "one delivery, however many attempts"
    );

    // Replay: sent once more, the same id and body.
    let before = receiver.received().len();
    let replayed = expect(
        StatusCode::ACCEPTED,
        app.post_raw(
            &format!(
                "/api/v1/webhooks/deliveries/{}/replay",
                delivered["id"].as_str().unwrap()
            ),
            "",
        )
        .await,
    );
    assert_eq!(replayed["webhook_id"], delivered["webhook_id"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() == before {
        assert!(Instant::now() < deadline, "the replay never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = receiver.received().last().cloned().expect("a post");
    assert_eq!(again.webhook_id, delivered["webhook_id"]);
    assert_eq!(again.body, posts[0].body);
    assert!(again.signature_valid);
    wait_for_delivery(&app, |d| {
        d["state"] == "delivered" && d["attempts"].as_u64() > delivered["attempts"].as_u64()
    })
    .await;

    let (status, body) = app
        .post_raw("/api/v1/webhooks/deliveries/whd_999999/replay", "{}")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["code"].is_string());
}

#[tokio::test]
async fn events_pending_when_the_server_is_killed_are_delivered_after_the_restart() {
    let address = unused_address();
    let mut app = TestApp::spawn_with(webhook_config(address, "[\"*\"]")).await;
    let (_, contact, _) = app.cafe_with_manager_and_staff().await;
    let ticket = ticket_for(&app, &contact, "Vor dem Absturz").await;
    let pending = wait_for_delivery(&app, |d| {
        d["type"] == "ticket.created" && d["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(pending["state"], "pending");

    app.kill();
    let receiver = Receiver::start_on(address).await;
    app.start(false).await.expect("the server starts again");
    let created = receiver
        .wait_for(|post| post.body["type"] == "ticket.created")
        .await;
    assert_eq!(created.webhook_id, pending["webhook_id"]);
    assert_eq!(created.body["data"]["id"], ticket["id"]);
    assert!(created.signature_valid);
    receiver
        .wait_for(|post| post.body["type"] == "message.created")
        .await;
    wait_for_delivery(&app, |d| {
        d["id"] == pending["id"] && d["state"] == "delivered"
    })
    .await;
}

#[tokio::test]
async fn a_webhook_that_cannot_work_stops_the_start_naming_it() {
    for (entry, named) in [
        (
            format!("url = \"ftp://erp.example\"\nsecret = \"{SECRET}\""),
            "webhooks[0].url",
        ),
        (
            "url = \"https://erp.example/hook\"\nsecret = \"plain-text\"".to_string(),
            "webhooks[0].secret",
        ),
        (
            format!("url = \"https://erp.example/hook\"\nsecret = \"{SECRET}\"\nevents = [\"ticket.deleted\"]"),
            "webhooks[0].events",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("kontor.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n[[webhooks]]\n{entry}\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .expect("config written");
        let output = std::process::Command::new(crate::support::kontor_binary())
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .env("KONTOR_LOG", "warn")
            .output()
            .expect("kontor runs");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{named} not named in {stderr}");
    }
}

/// Every magic-link token in the mail the server wrote (`.eml` files of the file
/// transport), so that payloads can be searched for them.
fn mailed_link_tokens(app: &TestApp) -> Vec<String> {
    let mut tokens = Vec::new();
    let entries = std::fs::read_dir(app._dir.path().join("outbox")).expect("the outbox dir");
    for entry in entries.map_while(Result::ok) {
        let raw = std::fs::read(entry.path()).unwrap_or_default();
        let text = crate::smtp_sink::Received { raw }.text();
        for (at, _) in text.match_indices("/l/") {
            let token: String = text[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            if token.len() > 10 {
                tokens.push(token);
            }
        }
    }
    tokens
}

#[tokio::test]
async fn records_changed_in_the_portal_reach_an_https_receiver_signed_and_without_link_tokens() {
    let receiver = Receiver::start().await;
    let certificate = SelfSigned::for_localhost();
    let front = TlsFront::start(&certificate, receiver.address).await;
    // The same receiver under a second name whose entry names no CA file: the
    // Mozilla roots alone do not trust a self-signed certificate.
    let untrusted_url = format!("https://localhost:{}/hooks", front.address.port());
    let app = TestApp::spawn_with(TestConfig {
        extra_toml: format!(
            "[[webhooks]]\nurl = \"{front}/hooks\"\nsecret = \"{SECRET}\"\nca_file = {ca:?}\nevents = [\"document.signed\", \"quote.accepted\", \"quote.declined\", \"order.cancelled\", \"invoice.paid\"]\n\
             [[webhooks]]\nurl = \"{untrusted_url}\"\nsecret = \"{SECRET}\"\nevents = [\"invoice.paid\"]\n",
            front = front.url(),
            ca = certificate.ca_file_text(),
        ),
        outbound_toml: "webhook_retry_base_ms = 200\nwebhook_retry_max_seconds = 1\n".into(),
        ..TestConfig::default()
    })
    .await;
    let cast = cast(&app).await;

    // A document signed through the portal's form, as portal_signing.rs does.
    let doc = sent_document(
        &app,
        &cast,
        "Wartungsvertrag",
        "<p>Wartung der Kassen.</p>",
        json!([{"name": "signature", "label": "Unterschrift", "type": "signature", "required": true}]),
    )
    .await;
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    let page_path = format!("/portal/documents/{doc}");
    let page = petra.get(&page_path).await;
    let content_hash = content_hash_in(&page.body).expect("the content hash");
    let token = csrf_in(&page.body).expect("token");
    let signed = petra
        .post_form(
            &format!("{page_path}/sign"),
            &[
                ("csrf", &token),
                ("content_sha256", &content_hash),
                ("signature_field", "signature"),
                ("signature_typed", "Petra Schmidt"),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);

    // Two quotes: one accepted and signed into an order, one declined, both in the portal.
    let quote_of = |title: &str| {
        json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "title": title,
               "lines": [{"description": "Kassenterminal T2", "quantity": 1, "unit_price_cents": 129900}],
               "currency": "EUR", "valid_until": "2099-12-31", "staff_id": id(&cast.staff)})
    };
    let mut quotes = Vec::new();
    for title in ["Zweite Kasse", "Dritte Kasse"] {
        let quote = expect(
            StatusCode::CREATED,
            app.post("/api/v1/quotes", &quote_of(title)).await,
        );
        expect(
            StatusCode::OK,
            app.post(&format!("/api/v1/quotes/{}/send", id(&quote)), &json!({}))
                .await,
        );
        quotes.push(quote);
    }
    let accepted_path = format!("/portal/quotes/{}", id(&quotes[0]));
    let dialog = petra.get(&format!("{accepted_path}?dialog=accept")).await;
    let token = csrf_in(&dialog.body).expect("token");
    let accepted = petra
        .post_form(
            &format!("{accepted_path}/accept"),
            &[("csrf", &token), ("signature_typed", "Petra Schmidt")],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let declined = petra
        .post_form(
            &format!("/portal/quotes/{}/decline", id(&quotes[1])),
            &[("csrf", &token), ("reason", "Zu teuer für uns")],
        )
        .await;
    assert_eq!(declined.status, StatusCode::SEE_OTHER, "{}", declined.body);
    let orders = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/orders?company_id={}", id(&cast.bakery)))
            .await,
    );
    let order = orders["items"][0].clone();
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/orders/{}/cancel", id(&order)),
            &json!({"reason": "Filiale schließt", "agreed_by": id(&cast.petra), "staff_id": id(&cast.staff)}),
        )
        .await,
    );
    paid_invoice(&app, &cast.bakery, &cast.petra, &cast.staff, "RE-2026-0100").await;

    // Each event arrived over TLS, signed, with the record as the change left it.
    let record = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}")).await,
    );
    let post_of = |event: &'static str| receiver.wait_for(move |post| post.body["type"] == event);
    let signed_post = post_of("document.signed").await;
    assert_eq!(signed_post.body["data"], record);
    assert_eq!(signed_post.body["data"]["status"], "signed");
    let accepted_post = post_of("quote.accepted").await;
    assert_eq!(accepted_post.body["data"]["id"], quotes[0]["id"]);
    assert_eq!(accepted_post.body["data"]["status"], "accepted");
    assert_eq!(accepted_post.body["data"]["signed_by"], "Petra Schmidt");
    let declined_post = post_of("quote.declined").await;
    assert_eq!(declined_post.body["data"]["id"], quotes[1]["id"]);
    assert_eq!(
        declined_post.body["data"]["decline_reason"],
        "Zu teuer für uns"
    );
    let cancelled_post = post_of("order.cancelled").await;
    assert_eq!(cancelled_post.body["data"]["id"], order["id"]);
    assert_eq!(cancelled_post.body["data"]["status"], "cancelled");
    let paid_post = post_of("invoice.paid").await;
    assert_eq!(paid_post.body["data"]["number"], "RE-2026-0100");
    assert_eq!(paid_post.body["data"]["status"], "paid");
    let delivered = wait_for_delivery(&app, |d| {
        d["type"] == "invoice.paid" && d["state"] == "delivered"
    })
    .await;
    assert_eq!(delivered["webhook_id"], paid_post.webhook_id);

    let tokens = mailed_link_tokens(&app);
    assert!(
        tokens.len() >= 3,
        "the login, sign and view links were mailed: {tokens:?}"
    );
    for post in receiver.received() {
        assert!(post.signature_valid, "{:?}", post.body["type"]);
        assert!(post.timestamp_fresh);
        let text = post.body.to_string();
        assert!(!text.contains("/l/"), "a link in {text}");
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "a link token in {text}");
        }
    }

    // The entry without a CA file never gets through; its log says why, and it waits.
    let refused = wait_for_delivery(&app, |d| {
        d["url"] == untrusted_url.as_str() && d["attempts"].as_u64() >= Some(2)
    })
    .await;
    assert_eq!(refused["state"], "pending");
    let error = refused["attempt_log"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("not trusted"), "{error}");
    assert_eq!(
        receiver.received().len(),
        5,
        "only the trusted entry's five events arrived"
    );
}
