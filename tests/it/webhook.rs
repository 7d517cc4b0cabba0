//! The onRetail webhook, signed by the test's own HMAC code (not the server's).

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

const SECRET: &str = "test-onretail-secret";
const OLD_SECRET: &str = "the-secret-being-rotated-out";

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn spawn(rate: u32) -> TestApp {
    spawn_sending_to(rate, None).await
}

async fn spawn_sending_to(rate: u32, sink: Option<&crate::smtp_sink::SmtpSink>) -> TestApp {
    TestApp::spawn_with(TestConfig {
        outbound_toml: sink.map(|sink| sink.outbound_toml()).unwrap_or_default(),
        security_toml: format!(
            "onretail_secret = \"{SECRET}\"\nonretail_previous_secret = \"{OLD_SECRET}\"\nonretail_rate_per_minute = {rate}\n"
        ),
        ..Default::default()
    })
    .await
}

/// Posts `body` as is, with an optional signature header and Idempotency-Key.
async fn post(
    app: &TestApp,
    body: &[u8],
    signature: Option<String>,
    key: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = app
        .client
        .post(app.url("/webhooks/onretail"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Onretail-Signature", signature);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, value) = read(response).await;
    (status, value, headers)
}

async fn post_signed(app: &TestApp, body: &Value, key: Option<&str>) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let (status, value, _) = post(app, &bytes, Some(sign(SECRET, now(), &bytes)), key).await;
    (status, value)
}

fn form(instance: &str, n: usize) -> Value {
    json!({
        "instance_id": instance,
        "reporter": {"name": "Kim Kasse", "email": format!("kim{n}@cafe.example"), "phone": "+49 30 123456"},
        "subject": format!("Bon {n} wird nicht gedruckt"),
        "description": "Beim Abschluss kommt kein Bon.",
        "category": "hardware",
        "attachments": [{"filename": "fehler.png", "content_type": "image/png", "data_base64": "iVBORw0KGgo="}],
        "context": {"register": 2, "version": "5.4.1"}
    })
}

async fn ticket_total(app: &TestApp) -> u64 {
    app.get("/api/v1/tickets?per_page=1").await.1["total"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_signed_post_files_a_ticket_for_the_instances_company_and_a_replay_returns_it() {
    let sink = crate::smtp_sink::SmtpSink::start();
    let app = spawn_sending_to(1000, Some(&sink)).await;
    let company = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/companies",
            &json!({"name": "Café Müller", "kind": "customer", "onretail_instance_ids": ["onr-1"]}),
        )
        .await,
    );
    let (status, created) = post_signed(&app, &form("onr-1", 1), Some("first-post")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["view_url"].as_str().unwrap().starts_with("http"));
    let (_, ticket) = app
        .get(&format!(
            "/api/v1/tickets/{}",
            created["ticket_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(ticket["number"], created["number"]);
    assert_eq!(ticket["channel"], "webhook");
    assert_eq!(ticket["company_id"], company["id"]);
    assert_eq!(ticket["requester"]["name"], "Kim Kasse");
    assert_eq!(ticket["requester"]["email"], "kim1@cafe.example");
    assert_eq!(ticket["origin"]["reporter_phone"], "+49 30 123456");
    assert_eq!(ticket["origin"]["context"]["register"], 2);
    let history = app.history(created["ticket_id"].as_str().unwrap()).await;
    assert_eq!(history[0]["body_text"], "Beim Abschluss kommt kein Bon.");
    let attachment = &history[0]["attachments"][0];
    assert_eq!(attachment["filename"], "fehler.png");
    let bytes = app
        .client
        .get(app.url(&format!(
            "/api/v1/attachments/{}",
            attachment["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        &bytes[..],
        &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
    );
    // The reporter gets the confirmation, whose link is the view_url answered.
    let confirmation = sink.wait_for_mail_to("kim1@cafe.example", 1).await;
    assert!(
        confirmation
            .subject()
            .contains(&format!("[#{}]", created["number"])),
        "{}",
        confirmation.subject()
    );
    assert_eq!(confirmation.link().as_deref(), created["view_url"].as_str());
    // public_url is not the test server's address: open the link's path there, and
    // follow its 303 by hand with the session cookie it sets.
    let view_url = created["view_url"].as_str().unwrap();
    let path = &view_url[view_url.find("/l/").unwrap()..];
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    let location = opened.headers()["location"].to_str().unwrap().to_string();
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_string();
    let page_path = &location[location.find("/portal/").unwrap()..];
    let page = browser
        .get(app.url(page_path))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the view link opens the ticket page"
    );
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Bon 1 wird nicht gedruckt"));

    // The company's list shows it.
    let (_, list) = app
        .get(&format!(
            "/api/v1/tickets?company_id={}",
            company["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(list["total"], 1);

    // The same key again: the first answer, nothing new.
    let (status, again) = post_signed(&app, &form("onr-1", 1), Some("first-post")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, created);
    assert_eq!(ticket_total(&app).await, 1);
    let (_, sent) = app.get("/api/v1/outbox?state=sent").await;
    let (_, pending) = app.get("/api/v1/outbox?state=pending").await;
    assert_eq!(
        sent["total"].as_u64().unwrap() + pending["total"].as_u64().unwrap(),
        1,
        "a replay sends no second confirmation"
    );

    // The secret being rotated out is still accepted; an unknown instance files a ticket without a company.
    let bytes = serde_json::to_vec(&form("onr-unknown", 2)).unwrap();
    let (status, other, _) = post(&app, &bytes, Some(sign(OLD_SECRET, now(), &bytes)), None).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let (_, ticket) = app
        .get(&format!(
            "/api/v1/tickets/{}",
            other["ticket_id"].as_str().unwrap()
        ))
        .await;
    assert!(ticket.get("company_id").is_none());
}

/// (name, body, signature header, status, error code, field the error names)
type Case = (
    &'static str,
    Vec<u8>,
    Option<String>,
    StatusCode,
    &'static str,
    Option<&'static str>,
);

#[tokio::test]
async fn every_bad_post_is_refused_with_a_clear_error_and_stores_nothing() {
    let app = spawn(1000).await;
    let good = serde_json::to_vec(&form("onr-1", 1)).unwrap();
    let mut cases: Vec<Case> = vec![
        (
            "missing header",
            good.clone(),
            None,
            StatusCode::UNAUTHORIZED,
            "signature_missing",
            None,
        ),
        (
            "wrong secret",
            good.clone(),
            Some(sign("not-the-secret", now(), &good)),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
            None,
        ),
        (
            "stale timestamp",
            good.clone(),
            Some(sign(SECRET, now() - 301, &good)),
            StatusCode::UNAUTHORIZED,
            "signature_expired",
            None,
        ),
        (
            "future timestamp",
            good.clone(),
            Some(sign(SECRET, now() + 400, &good)),
            StatusCode::UNAUTHORIZED,
            "signature_expired",
            None,
        ),
        (
            "garbage header",
            good.clone(),
            Some("v1=zz".into()),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
            None,
        ),
    ];
    // A body changed after signing.
    let mut tampered = good.clone();
    let signature = sign(SECRET, now(), &good);
    if let Some(byte) = tampered.iter_mut().find(|b| **b == b'B') {
        *byte = b'C';
    }
    cases.push((
        "tampered body",
        tampered,
        Some(signature),
        StatusCode::UNAUTHORIZED,
        "signature_invalid",
        None,
    ));
    let bad_json = b"{\"instance_id\": ".to_vec();
    cases.push((
        "bad json",
        bad_json.clone(),
        Some(sign(SECRET, now(), &bad_json)),
        StatusCode::BAD_REQUEST,
        "invalid_json",
        None,
    ));
    let mut missing = form("onr-1", 1);
    missing.as_object_mut().unwrap().remove("subject");
    let missing = serde_json::to_vec(&missing).unwrap();
    cases.push((
        "missing field",
        missing.clone(),
        Some(sign(SECRET, now(), &missing)),
        StatusCode::BAD_REQUEST,
        "missing",
        Some("subject"),
    ));
    let mut bad_email = form("onr-1", 1);
    bad_email["reporter"]["email"] = json!("kim at cafe");
    let bad_email = serde_json::to_vec(&bad_email).unwrap();
    cases.push((
        "bad email",
        bad_email.clone(),
        Some(sign(SECRET, now(), &bad_email)),
        StatusCode::BAD_REQUEST,
        "invalid",
        Some("reporter.email"),
    ));
    let mut bad_base64 = form("onr-1", 1);
    bad_base64["attachments"][0]["data_base64"] = json!("***");
    let bad_base64 = serde_json::to_vec(&bad_base64).unwrap();
    cases.push((
        "bad base64",
        bad_base64.clone(),
        Some(sign(SECRET, now(), &bad_base64)),
        StatusCode::BAD_REQUEST,
        "invalid",
        Some("attachments[0].data_base64"),
    ));
    let mut long_subject = form("onr-1", 1);
    long_subject["subject"] = json!("x".repeat(999));
    let long_subject = serde_json::to_vec(&long_subject).unwrap();
    cases.push((
        "long subject",
        long_subject.clone(),
        Some(sign(SECRET, now(), &long_subject)),
        StatusCode::BAD_REQUEST,
        "too_long",
        Some("subject"),
    ));
    let mut many = form("onr-1", 1);
    many["attachments"] = json!(vec![
        json!({"filename": "a.txt", "content_type": "text/plain", "data_base64": "YQ=="});
        11
    ]);
    let many = serde_json::to_vec(&many).unwrap();
    cases.push((
        "too many attachments",
        many.clone(),
        Some(sign(SECRET, now(), &many)),
        StatusCode::BAD_REQUEST,
        "invalid",
        Some("attachments"),
    ));
    let mut huge = form("onr-1", 1);
    huge["description"] = json!("x".repeat(26_214_400 + 10));
    let huge = serde_json::to_vec(&huge).unwrap();
    cases.push((
        "oversized body",
        huge.clone(),
        Some(sign(SECRET, now(), &huge)),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        None,
    ));

    for (name, body, signature, status, code, field) in cases {
        let (actual, answer, _) = post(&app, &body, signature, None).await;
        assert_eq!(actual, status, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        if let Some(field) = field {
            assert!(
                answer["error"]["fields"].get(field).is_some(),
                "{name}: {field} not named in {answer}"
            );
        }
    }
    assert_eq!(
        ticket_total(&app).await,
        0,
        "a refused post stored something"
    );
}

#[tokio::test]
async fn posts_over_the_rate_are_answered_429_with_retry_after() {
    let app = spawn(3).await;
    for n in 0..3 {
        let (status, _) = post_signed(&app, &form("onr-busy", n), None).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let bytes = serde_json::to_vec(&form("onr-busy", 9)).unwrap();
    let (status, answer, headers) =
        post(&app, &bytes, Some(sign(SECRET, now(), &bytes)), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert_eq!(answer["error"]["code"], "rate_limited");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    // Another instance is not slowed by this one.
    let (status, _) = post_signed(&app, &form("onr-quiet", 1), None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(ticket_total(&app).await, 4);
}

#[tokio::test]
async fn a_thousand_posts_from_sixteen_clients_make_a_thousand_tickets_and_replays_make_none() {
    let app = spawn(100_000).await;
    let url = app.url("/webhooks/onretail");
    let run = |replay: bool| {
        let url = url.clone();
        async move {
            let mut clients = Vec::new();
            for client in 0..16usize {
                let url = url.clone();
                clients.push(tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let mut numbers = Vec::new();
                    // The replay run repeats the even-numbered posts: 500 of them.
                    for n in (client..1000).step_by(16).filter(|n| !replay || n % 2 == 0) {
                        let body = serde_json::to_vec(&form(&format!("onr-{}", n % 7), n)).unwrap();
                        let response = http
                            .post(&url)
                            .header("X-Onretail-Signature", sign(SECRET, now(), &body))
                            .header("Idempotency-Key", format!("post-{n}"))
                            .body(body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), StatusCode::CREATED);
                        let created: Value = response.json().await.unwrap();
                        numbers.push((n, created["number"].as_u64().unwrap()));
                    }
                    numbers
                }));
            }
            let mut all = Vec::new();
            for client in clients {
                all.extend(client.await.unwrap());
            }
            all
        }
    };
    let first = run(false).await;
    assert_eq!(first.len(), 1000);
    assert_eq!(ticket_total(&app).await, 1000);
    let replays = run(true).await;
    assert_eq!(replays.len(), 500);
    assert_eq!(ticket_total(&app).await, 1000, "replays made tickets");
    let by_post: std::collections::HashMap<usize, u64> = first.into_iter().collect();
    for (n, number) in replays {
        assert_eq!(
            by_post[&n], number,
            "replay of post {n} answered another ticket"
        );
    }
}

/// The stored idempotency keys, as `kontor export` shows them.
fn idempotency_keys_stored(app: &TestApp) -> usize {
    let export = app.command(&["export"]);
    assert!(export.status.success());
    String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter(|line| line.contains("\"tree\":\"idempotency\""))
        .count()
}

fn housekeeping_in(app: &TestApp, days: i64) -> String {
    app.run_job(
        "housekeeping",
        chrono::Utc::now() + chrono::Duration::days(days),
    )
}

#[tokio::test]
async fn housekeeping_keeps_idempotency_keys_for_a_week_then_forgets_them() {
    let mut app = spawn(1000).await;
    app.post(
        "/api/v1/companies",
        &json!({"name": "Café Müller", "kind": "customer", "onretail_instance_ids": ["onr-9"]}),
    )
    .await;
    let (status, first) = post_signed(&app, &form("onr-9", 1), Some("sale-42")).await;
    assert_eq!(status, StatusCode::CREATED);
    app.terminate();
    assert_eq!(idempotency_keys_stored(&app), 1);

    // A day later the key still holds: a replay answers the same ticket.
    housekeeping_in(&app, 1);
    assert_eq!(idempotency_keys_stored(&app), 1);
    app.start(false).await.unwrap();
    let (_, again) = post_signed(&app, &form("onr-9", 1), Some("sale-42")).await;
    // The same ticket and link; the address is the restarted server's own
    // (public_url defaults to where the server listens).
    assert_eq!(
        again["ticket_id"], first["ticket_id"],
        "the replay was not recognised"
    );
    assert_eq!(again["number"], first["number"]);
    let token = |answer: &Value| {
        answer["view_url"]
            .as_str()
            .unwrap_or_default()
            .rsplit("/l/")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(token(&again), token(&first));
    assert_eq!(ticket_total(&app).await, 1);
    app.terminate();

    let report = housekeeping_in(&app, 8);
    assert!(report.starts_with("housekeeping:"), "{report}");
    assert_eq!(idempotency_keys_stored(&app), 0, "{report}");
}
