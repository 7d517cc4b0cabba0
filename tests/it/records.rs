//! Documents, quotes, orders, invoices and subscriptions through the staff API
//! (CONTRACT.md section 3): each state change and each refusal, the shared verbs,
//! mail threading into a record, search across kinds, `expire_quotes`, and the
//! tamper-evident histories with `kontor verify`, export and import.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::inbound::post_mail;
use crate::support::*;

/// A company that buys directly, its manager with every permission, a member
/// without any, and a staff member.
struct Cast {
    company: Value,
    manager: Value,
    member: Value,
    staff: Value,
}

async fn cast(app: &TestApp) -> Cast {
    let company = app
        .create_company("Bäckerei Schmidt", "customer", None)
        .await;
    let company_id = company["id"].as_str().unwrap();
    let manager = app
        .create_contact(
            company_id,
            "Petra Schmidt",
            "petra@schmidt.example",
            "manager",
        )
        .await;
    let member = app
        .create_contact(company_id, "Lena Berg", "lena@schmidt.example", "member")
        .await;
    let staff = app.create_staff("Sam Support", "sam@vendor.example").await;
    expect(
        StatusCode::OK,
        app.put(
            &format!(
                "/api/v1/contacts/{}/permissions",
                manager["id"].as_str().unwrap()
            ),
            &json!({"portal": true, "quotes": true, "orders": true, "invoices": true,
                    "subscriptions": true, "requested_by": manager["id"]}),
        )
        .await,
    );
    Cast {
        company,
        manager,
        member,
        staff,
    }
}

fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap()
}

fn quote_body(cast: &Cast, title: &str, valid_until: &str) -> Value {
    json!({
        "company_id": cast.company["id"], "contact_id": cast.manager["id"], "title": title,
        "lines": [
            {"description": "Kassenterminal T2", "quantity": 2, "unit_price_cents": 129900},
            {"description": "Einrichtung", "quantity": 3, "unit_price_cents": 9500}
        ],
        "currency": "EUR", "valid_until": valid_until, "staff_id": cast.staff["id"]
    })
}

async fn history_of(app: &TestApp, path: &str) -> Vec<Value> {
    let body = expect(
        StatusCode::OK,
        app.get(&format!("{path}/history?per_page=500")).await,
    );
    body["items"].as_array().cloned().unwrap_or_default()
}

fn event_types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter_map(|entry| entry["event"]["type"].as_str().map(str::to_string))
        .collect()
}

/// The notices of `kind` to `to`, once sent, with the `text` and `reply_to` of the
/// message the file transport wrote (the API does not show bodies: they hold links).
async fn mails(app: &TestApp, kind: &str, to: &str) -> Vec<Value> {
    app.sent_mails(kind, to)
        .await
        .into_iter()
        .map(|(mut row, message)| {
            row["text"] = json!(message.text());
            row["reply_to"] = json!(message
                .header("Reply-To")
                .unwrap_or_default()
                .trim_matches(|c: char| c == '<' || c == '>' || c.is_whitespace()));
            row
        })
        .collect()
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

#[tokio::test]
async fn quotes_are_sent_accepted_into_orders_declined_and_cancelled_by_both_sides() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let quote = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/quotes",
            &quote_body(&cast, "Zweite Kasse", &in_days(21)),
        )
        .await,
    );
    assert_eq!(quote["status"], "draft");
    assert_eq!(quote["total_cents"], 2 * 129900 + 3 * 9500);
    assert_eq!(quote["contact_id"], cast.manager["id"]);
    assert!(quote["reply_to"].as_str().unwrap().starts_with("support+q"));
    let path = format!("/api/v1/quotes/{}", id(&quote));

    // Not sent yet: it cannot be accepted.
    let accept = json!({"contact_id": cast.manager["id"], "signature": "Petra Schmidt"});
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(&format!("{path}/accept"), &accept).await,
    );
    assert_eq!(code, "illegal_transition");

    // `send` takes an empty body or `{}`.
    let sent = expect(
        StatusCode::OK,
        app.post_raw(&format!("{path}/send"), "").await,
    );
    assert_eq!(sent["status"], "sent");
    let quote_mails = mails(&app, "quote_sent", "petra@schmidt.example").await;
    assert_eq!(quote_mails.len(), 1, "the contact is mailed the quote");
    assert!(quote_mails[0]["text"].as_str().unwrap().contains("/l/"));

    let order = expect(
        StatusCode::CREATED,
        app.post(&format!("{path}/accept"), &accept).await,
    );
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["quote_id"], quote["id"]);
    assert_eq!(order["signed_by"], "Petra Schmidt");
    assert!(order["signed_at"].is_string());
    assert_eq!(order["sha256"].as_str().unwrap().len(), 64);
    let accepted = expect(StatusCode::OK, app.get(&path).await);
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["order_id"], order["id"]);
    assert_eq!(accepted["sha256"], order["sha256"]);
    assert_eq!(
        mails(&app, "order_confirmed", "petra@schmidt.example")
            .await
            .len(),
        1
    );
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(&format!("{path}/accept"), &accept).await,
    );
    assert_eq!(code, "already_signed");
    assert_eq!(
        event_types(&history_of(&app, &path).await),
        ["sent", "accepted"]
    );

    // Declining needs a reason; the reason is kept and mailed to the staff member.
    let other = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &quote_body(&cast, "Waage", &in_days(10)))
            .await,
    );
    let other_path = format!("/api/v1/quotes/{}", id(&other));
    expect(
        StatusCode::OK,
        app.post(&format!("{other_path}/send"), &json!({})).await,
    );
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post(
            &format!("{other_path}/decline"),
            &json!({"contact_id": cast.manager["id"], "reason": " "}),
        )
        .await,
    );
    assert!(fields.get("reason").is_some(), "{fields}");
    let declined = expect(
        StatusCode::OK,
        app.post(
            &format!("{other_path}/decline"),
            &json!({"contact_id": cast.manager["id"], "reason": "Zu teuer für uns"}),
        )
        .await,
    );
    assert_eq!(declined["status"], "cancelled");
    assert_eq!(declined["decline_reason"], "Zu teuer für uns");
    let feedback = mails(&app, "quote_declined", "sam@vendor.example").await;
    assert_eq!(feedback.len(), 1);
    assert!(feedback[0]["text"]
        .as_str()
        .unwrap()
        .contains("Zu teuer für uns"));
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(&format!("{other_path}/accept"), &accept).await,
    );
    assert_eq!(code, "quote_closed");
    let declined_history = history_of(&app, &other_path).await;
    let declined_event = declined_history
        .iter()
        .find(|entry| entry["event"]["type"] == "declined")
        .unwrap();
    assert_eq!(declined_event["event"]["reason"], "Zu teuer für uns");

    // Mutual cancellation: the order is cancelled and its quote goes back to the
    // quotes as cancelled, with the reason.
    let order_path = format!("/api/v1/orders/{}", id(&order));
    let cancel = json!({"reason": "Filiale wird nicht eröffnet", "agreed_by": cast.manager["id"], "staff_id": cast.staff["id"]});
    let cancelled = expect(
        StatusCode::OK,
        app.post(&format!("{order_path}/cancel"), &cancel).await,
    );
    assert_eq!(cancelled["status"], "cancelled");
    let back = expect(StatusCode::OK, app.get(&path).await);
    assert_eq!(back["status"], "cancelled");
    assert_eq!(back["cancel_reason"], "Filiale wird nicht eröffnet");
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(&format!("{order_path}/cancel"), &cancel).await,
    );
    assert_eq!(code, "illegal_transition");

    // Lists filter by status and company.
    let company = cast.company["id"].as_str().unwrap();
    let cancelled_quotes = expect(
        StatusCode::OK,
        app.get(&format!(
            "/api/v1/quotes?status=cancelled&company_id={company}"
        ))
        .await,
    );
    assert_eq!(cancelled_quotes["total"], 2);
    assert_eq!(cancelled_quotes["page"], 1);
    assert_eq!(cancelled_quotes["per_page"], 50);
    let orders = expect(
        StatusCode::OK,
        app.get("/api/v1/orders?status=confirmed").await,
    );
    assert_eq!(orders["total"], 0);
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/quotes?status=signed").await,
    );
    assert!(fields.get("status").is_some());
}

#[tokio::test]
async fn every_bad_body_is_refused_naming_each_field_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let mut bad_quote = quote_body(&cast, "Kasse", "morgen");
    bad_quote["lines"] = json!([
        {"description": "Kasse", "quantity": 0, "unit_price_cents": -1},
        {"description": "Drucker", "quantity": -2, "unit_price_cents": 100}
    ]);
    bad_quote["currency"] = json!("eur");
    let (code, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post("/api/v1/quotes", &bad_quote).await,
    );
    assert_eq!(code, "invalid");
    for field in [
        "currency",
        "valid_until",
        "lines[0].quantity",
        "lines[0].unit_price_cents",
        "lines[1].quantity",
    ] {
        assert!(fields.get(field).is_some(), "{field} missing in {fields}");
    }
    let mut unknown = quote_body(&cast, "Kasse", &in_days(3));
    unknown["discount"] = json!(10);
    let (code, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post("/api/v1/quotes", &unknown).await,
    );
    assert_eq!(code, "unknown_field");
    assert!(fields.get("discount").is_some(), "{fields}");

    let document = |fields: Value| {
        json!({"title": "AVV", "company_id": cast.company["id"], "signer_contact_id": cast.manager["id"],
               "body_html": "<p>Vertrag</p>", "fields": fields})
    };
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post(
            "/api/v1/documents",
            &document(
                json!([{"name": "role", "label": "Funktion", "type": "text", "required": true}]),
            ),
        )
        .await,
    );
    assert!(
        fields.get("fields").is_some(),
        "no signature field: {fields}"
    );
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post(
            "/api/v1/documents",
            &document(json!([
                {"name": "role", "label": "Funktion", "type": "radio", "required": true},
                {"name": "sig", "label": "Unterschrift", "type": "signature", "required": true}
            ])),
        )
        .await,
    );
    assert!(fields.get("fields[0].type").is_some(), "{fields}");
    let mut bad_date = document(
        json!([{"name": "sig", "label": "Unterschrift", "type": "signature", "required": true}]),
    );
    bad_date["valid_until"] = json!("2026-13-01");
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post("/api/v1/documents", &bad_date).await,
    );
    assert!(fields.get("valid_until").is_some(), "{fields}");

    let invoice = json!({"company_id": cast.company["id"], "contact_id": cast.manager["id"], "number": "RE-1",
        "lines": [{"description": "Kasse", "quantity": 1, "unit_price_cents": 100}], "currency": "EURO", "due_date": "soon"});
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.post("/api/v1/invoices", &invoice).await,
    );
    assert!(
        fields.get("currency").is_some() && fields.get("due_date").is_some(),
        "{fields}"
    );

    for kind in ["quotes", "documents", "invoices", "subscriptions", "orders"] {
        let list = expect(StatusCode::OK, app.get(&format!("/api/v1/{kind}")).await);
        assert_eq!(list["total"], 0, "{kind} stored something: {list}");
    }
    // A contact of another company cannot be a record's contact.
    let other = app.create_company("Other", "customer", None).await;
    let stranger = app
        .create_contact(id(&other), "Stranger", "stranger@other.example", "manager")
        .await;
    let mut foreign = quote_body(&cast, "Kasse", &in_days(3));
    foreign["contact_id"] = stranger["id"].clone();
    let (code, _) = error_of(
        StatusCode::UNPROCESSABLE_ENTITY,
        app.post("/api/v1/quotes", &foreign).await,
    );
    assert_eq!(code, "not_of_company");
}

#[tokio::test]
async fn documents_invoices_and_subscriptions_follow_their_states_and_share_the_verbs() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let document = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/documents",
            &json!({"title": "Auftragsverarbeitung", "company_id": cast.company["id"],
                    "signer_contact_id": cast.manager["id"],
                    "body_html": "<p>Vertrag</p><script>alert(1)</script>",
                    "fields": [{"name": "sig", "label": "Unterschrift", "type": "signature", "required": true}],
                    "valid_until": in_days(30)}),
        )
        .await,
    );
    assert_eq!(document["status"], "draft");
    assert!(!document["body_html"].as_str().unwrap().contains("script"));
    let doc_path = format!("/api/v1/documents/{}", id(&document));
    let sent = expect(
        StatusCode::OK,
        app.post(&format!("{doc_path}/send"), &json!({})).await,
    );
    assert_eq!(sent["status"], "sent");
    let sign_requests = mails(&app, "sign_request", "petra@schmidt.example").await;
    assert_eq!(sign_requests.len(), 1);
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.get(&format!("{doc_path}/evidence")).await,
    );
    assert_eq!(code, "not_signed");
    let cancel = json!({"reason": "Neue Fassung folgt", "staff_id": cast.staff["id"]});
    let cancelled = expect(
        StatusCode::OK,
        app.post(&format!("{doc_path}/cancel"), &cancel).await,
    );
    assert_eq!(cancelled["status"], "cancelled");
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(&format!("{doc_path}/send"), &json!({})).await,
    );
    assert_eq!(code, "illegal_transition");

    let invoice_body = |number: &str| {
        json!({"company_id": cast.company["id"], "contact_id": cast.manager["id"], "number": number,
               "lines": [{"description": "Kasse", "quantity": 1, "unit_price_cents": 34900}],
               "currency": "EUR", "due_date": in_days(14)})
    };
    let invoice = expect(
        StatusCode::CREATED,
        app.post("/api/v1/invoices", &invoice_body("RE-2026-0001"))
            .await,
    );
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["total_cents"], 34900);
    assert_eq!(
        mails(&app, "invoice_issued", "petra@schmidt.example")
            .await
            .len(),
        1
    );
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post("/api/v1/invoices", &invoice_body("RE-2026-0001"))
            .await,
    );
    assert_eq!(code, "number_taken");
    let invoice_path = format!("/api/v1/invoices/{}", id(&invoice));
    let paid = expect(
        StatusCode::OK,
        app.post(
            &format!("{invoice_path}/status"),
            &json!({"status": "paid", "staff_id": cast.staff["id"]}),
        )
        .await,
    );
    assert_eq!(paid["status"], "paid");
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(
            &format!("{invoice_path}/status"),
            &json!({"status": "cancelled", "staff_id": cast.staff["id"]}),
        )
        .await,
    );
    assert_eq!(code, "illegal_transition");

    let subscription = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/subscriptions",
            &json!({"company_id": cast.company["id"], "contact_id": cast.manager["id"], "plan": "Business",
                    "modules": [{"code": "POS", "name": "Kasse", "components": ["TSE", "Bon"]},
                                {"code": "STOCK", "name": "Lager", "components": []}],
                    "started_on": "2026-01-01", "renews_on": "2027-01-01"}),
        )
        .await,
    );
    assert_eq!(subscription["status"], "active");
    let sub_path = format!("/api/v1/subscriptions/{}", id(&subscription));
    let replaced = expect(
        StatusCode::OK,
        app.put(
            &format!("{sub_path}/modules"),
            &json!({"staff_id": cast.staff["id"], "modules": [
                {"code": "POS", "name": "Kasse", "components": ["TSE", "Küche"]},
                {"code": "DATEV", "name": "DATEV-Export", "components": ["Buchungsstapel"]}]}),
        )
        .await,
    );
    assert_eq!(replaced["modules"].as_array().unwrap().len(), 2);
    let history = history_of(&app, &sub_path).await;
    let change = history
        .iter()
        .find(|entry| entry["event"]["type"] == "modules_changed")
        .unwrap();
    assert_eq!(
        change["event"]["added"],
        json!(["POS/Küche", "DATEV", "DATEV/Buchungsstapel"])
    );
    assert_eq!(change["event"]["removed"], json!(["POS/Bon", "STOCK"]));

    // The shared verbs on every kind: a public message is mailed to the record's
    // contact, an internal one is not; assign and time entries are history.
    for path in [&invoice_path, &sub_path, &doc_path] {
        let message = expect(
            StatusCode::CREATED,
            app.post(
                &format!("{path}/messages"),
                &json!({"body": "Gern helfen wir weiter.", "staff_id": cast.staff["id"], "visibility": "public"}),
            )
            .await,
        );
        assert_eq!(message["kind"], "message");
        expect(
            StatusCode::CREATED,
            app.post(
                &format!("{path}/messages"),
                &json!({"body": "Nur intern.", "staff_id": cast.staff["id"], "visibility": "internal"}),
            )
            .await,
        );
        let assigned = expect(
            StatusCode::OK,
            app.post(
                &format!("{path}/assign"),
                &json!({"staff_id": cast.staff["id"]}),
            )
            .await,
        );
        assert_eq!(assigned["assignee_id"], cast.staff["id"]);
        expect(
            StatusCode::CREATED,
            app.post(
                &format!("{path}/time-entries"),
                &json!({"staff_id": cast.staff["id"], "minutes": 20, "note": "Telefonat"}),
            )
            .await,
        );
        let history = history_of(&app, path).await;
        let kinds: Vec<&str> = history
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"time_entry") && kinds.contains(&"message"),
            "{kinds:?}"
        );
        assert!(event_types(&history).contains(&"assigned".to_string()));
        // The chain: each entry names the hash of the one before.
        assert_eq!(history[0]["prev_hash"], "0".repeat(64));
        for pair in history.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "{path}");
        }
    }
    let messages = mails(&app, "record_message", "petra@schmidt.example").await;
    assert_eq!(
        messages.len(),
        3,
        "one per public message, none for internal ones"
    );
    // Another kind's id in a path is a 404, as is an unknown one.
    error_of(
        StatusCode::NOT_FOUND,
        app.get(&format!("/api/v1/quotes/{}/history", id(&invoice)))
            .await,
    );
    error_of(
        StatusCode::NOT_FOUND,
        app.get("/api/v1/quotes/qt_999999").await,
    );
}

/// A reply to a notice about a quote threads into the quote, by its reply address,
/// by References and by the marker, from a participant only.
#[tokio::test]
async fn replies_by_mail_thread_into_the_record_they_answer() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let quote = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/quotes",
            &quote_body(&cast, "Zweite Kasse", &in_days(21)),
        )
        .await,
    );
    let path = format!("/api/v1/quotes/{}", id(&quote));
    expect(
        StatusCode::OK,
        app.post(&format!("{path}/send"), &json!({})).await,
    );
    let notice = mails(&app, "quote_sent", "petra@schmidt.example")
        .await
        .remove(0);
    let reply_to = quote["reply_to"].as_str().unwrap();
    assert_eq!(notice["reply_to"], reply_to);

    let by_token = format!(
        "From: Petra Schmidt <petra@schmidt.example>\r\nTo: {reply_to}\r\nSubject: Re: Ihr Angebot\r\nMessage-ID: <reply-1@schmidt.example>\r\n\r\nKönnen wir die Einrichtung auf zwei Stunden kürzen?\r\n"
    );
    let answer = expect(StatusCode::OK, post_mail(&app, &by_token).await);
    assert_eq!(answer["outcome"], "appended");
    let by_references = format!(
        "From: Lena Berg <lena@schmidt.example>\r\nTo: support@support.example.com\r\nSubject: Re: Angebot\r\nMessage-ID: <reply-2@schmidt.example>\r\nIn-Reply-To: {}\r\n\r\nIch schließe mich an.\r\n",
        notice["message_id"].as_str().unwrap()
    );
    assert_eq!(
        expect(StatusCode::OK, post_mail(&app, &by_references).await)["outcome"],
        "appended"
    );
    let text = notice["text"].as_str().unwrap();
    let marker_start = text.find("[ref:").expect("the notice carries a marker");
    let marker = &text[marker_start..marker_start + text[marker_start..].find(']').unwrap() + 1];
    let by_marker = format!(
        "From: petra@schmidt.example\r\nTo: support@support.example.com\r\nSubject: Angebot\r\nMessage-ID: <reply-3@schmidt.example>\r\n\r\nNoch eine Frage.\r\n\r\n> {marker}\r\n"
    );
    assert_eq!(
        expect(StatusCode::OK, post_mail(&app, &by_marker).await)["outcome"],
        "appended"
    );
    // A stranger writing to the quote's address opens a ticket instead.
    let stranger = format!(
        "From: someone@elsewhere.example\r\nTo: {reply_to}\r\nSubject: Hallo\r\nMessage-ID: <stranger@elsewhere.example>\r\n\r\nIch will auch ein Angebot.\r\n"
    );
    assert_eq!(
        expect(StatusCode::OK, post_mail(&app, &stranger).await)["outcome"],
        "created"
    );
    let history = history_of(&app, &path).await;
    let threaded: Vec<(&str, &str)> = history
        .iter()
        .filter(|entry| entry["kind"] == "message")
        .map(|entry| {
            (
                entry["threaded_by"].as_str().unwrap_or(""),
                entry["body_text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        threaded,
        [
            (
                "token",
                "Können wir die Einrichtung auf zwei Stunden kürzen?"
            ),
            ("references", "Ich schließe mich an."),
            ("marker", "Noch eine Frage.")
        ]
    );
    assert_eq!(
        history
            .iter()
            .filter(|e| e["author"]["kind"] == "contact")
            .count(),
        3
    );
    // The quote's staff member hears of each reply, as of a ticket's, with the
    // quote's reply address; the stranger's mail is no reply to the quote.
    let heard = mails(&app, "staff_customer_replied", "sam@vendor.example").await;
    let texts: Vec<&str> = heard
        .iter()
        .map(|mail| mail["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(heard.len(), 3, "{texts:?}");
    for written in [
        "Können wir die Einrichtung auf zwei Stunden kürzen?",
        "Ich schließe mich an.",
        "Noch eine Frage.",
    ] {
        assert!(
            texts.iter().any(|text| text.contains(written)),
            "{written} in {texts:?}"
        );
    }
    assert!(texts.iter().all(|text| !text.contains("Ich will auch")));
    assert!(heard.iter().all(|mail| mail["reply_to"] == reply_to));
}

async fn search_until(app: &TestApp, query: &str, expected: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = expect(
            StatusCode::OK,
            app.get(&format!("/api/v1/search?{query}")).await,
        );
        if body["total"] == expected || Instant::now() > deadline {
            assert_eq!(body["total"], expected, "search {query}: {body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn search_covers_every_kind_with_the_access_rules_of_the_api() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let reseller = app.create_company("Kassen Nord", "reseller", None).await;
    let reseller_manager = app
        .create_contact(id(&reseller), "Rolf Nord", "rolf@nord.example", "manager")
        .await;
    expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/quotes",
            &quote_body(&cast, "Kartenterminal Zebra", &in_days(21)),
        )
        .await,
    );
    expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/subscriptions",
            &json!({"company_id": cast.company["id"], "contact_id": cast.manager["id"], "plan": "Business",
                    "modules": [{"code": "FIBU9", "name": "Finanzbuchhaltung", "components": ["Mahnwesen"]}],
                    "started_on": "2026-01-01", "renews_on": "2027-01-01"}),
        )
        .await,
    );
    let document = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/documents",
            &json!({"title": "Zebra Rahmenvertrag", "company_id": cast.company["id"],
                    "signer_contact_id": cast.manager["id"], "body_html": "<p>Zebra</p>",
                    "fields": [{"name": "sig", "label": "Unterschrift", "type": "signature", "required": true}]}),
        )
        .await,
    );
    app.create_ticket(
        &json!({"subject": "Zebra drucker", "body": "geht nicht", "contact_id": cast.member["id"]}),
    )
    .await;

    let staff = search_until(&app, "q=Zebra", 3).await;
    let mut kinds: Vec<&str> = staff["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["document", "quote", "ticket"]);
    search_until(&app, "q=Zebra&kind=quote", 1).await;
    // A subscription is found by its modules' codes, names and components.
    for word in ["FIBU9", "Finanzbuchhaltung", "Mahnwesen"] {
        let found = search_until(&app, &format!("q={word}"), 1).await;
        assert_eq!(found["hits"][0]["kind"], "subscription", "{word}");
    }
    // The manager holds every permission and signs the document; the member holds
    // none and sees only its own ticket; the reseller sees nothing of this company.
    let manager = cast.manager["id"].as_str().unwrap();
    let member = cast.member["id"].as_str().unwrap();
    search_until(&app, &format!("q=Zebra&as_contact={manager}"), 3).await;
    let own = search_until(&app, &format!("q=Zebra&as_contact={member}"), 1).await;
    assert_eq!(own["hits"][0]["kind"], "ticket");
    search_until(&app, &format!("q=Mahnwesen&as_contact={member}"), 0).await;
    search_until(
        &app,
        &format!("q=Zebra&as_contact={}", id(&reseller_manager)),
        0,
    )
    .await;
    assert_eq!(document["status"], "draft");
}

#[tokio::test]
async fn expire_quotes_expires_once_and_verify_catches_a_tampered_export() {
    let mut app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let quote = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &quote_body(&cast, "Kasse", &in_days(1)))
            .await,
    );
    let path = format!("/api/v1/quotes/{}", id(&quote));
    expect(
        StatusCode::OK,
        app.post(&format!("{path}/send"), &json!({})).await,
    );
    expect(
        StatusCode::CREATED,
        app.post(
            &format!("{path}/messages"),
            &json!({"body": "Gilt nur bis morgen.", "staff_id": cast.staff["id"], "visibility": "public"}),
        )
        .await,
    );
    app.terminate();

    let run = |days: i64| {
        app.run_job(
            "expire_quotes",
            chrono::Utc::now() + chrono::Duration::days(days),
        )
    };
    assert_eq!(run(0), "expire_quotes: 1 examined, 0 expired");
    assert_eq!(run(3), "expire_quotes: 1 examined, 1 expired");
    assert_eq!(run(4), "expire_quotes: 0 examined, 0 expired");

    let verify = app.command(&["verify"]);
    assert!(
        verify.status.success(),
        "verify on a clean store: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let export = app.command(&["export"]);
    assert!(export.status.success());
    let dump = String::from_utf8(export.stdout).unwrap();
    assert!(dump.contains("Gilt nur bis morgen."));

    // The untouched dump imports and verifies.
    let restore = |dump: &str, dir: &std::path::Path| {
        let config = dir.join("kontor.toml");
        std::fs::write(
            &config,
            format!("data_dir = {:?}\n", dir.join("data").display().to_string()),
        )
        .unwrap();
        let mut child = std::process::Command::new(kontor_binary())
            .args(["import", "--config"])
            .arg(&config)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dump.as_bytes())
            .unwrap();
        (child.wait_with_output().unwrap(), config)
    };
    let clean = tempfile::tempdir().unwrap();
    let (output, config) = restore(&dump, clean.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verified = std::process::Command::new(kontor_binary())
        .args(["verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // One changed word in a history entry is caught, naming the entry.
    let tampered = dump.replace("Gilt nur bis morgen.", "Gilt noch ein Jahr.");
    let broken = tempfile::tempdir().unwrap();
    let (output, _) = restore(&tampered, broken.path());
    assert!(!output.status.success(), "a tampered export imported");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("quote {}", id(&quote))),
        "{stderr}"
    );
    assert!(stderr.contains("hash does not match"), "{stderr}");

    app.start(false).await.unwrap();
    let expired = expect(StatusCode::OK, app.get(&path).await);
    assert_eq!(expired["status"], "expired");
    assert_eq!(
        event_types(&history_of(&app, &path).await),
        ["sent", "expired"]
    );
}

#[tokio::test]
async fn contacts_get_their_login_link_when_granted_the_portal_and_on_request() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let manager = cast.manager["id"].as_str().unwrap();
    let member = cast.member["id"].as_str().unwrap();
    // The manager was granted the portal in `cast` (it already had it: nothing new);
    // take the member's away and grant it again: the grant mails the first link.
    let set = |portal: bool| {
        json!({"portal": portal, "quotes": false, "orders": false, "invoices": false,
               "subscriptions": false, "requested_by": manager})
    };
    expect(
        StatusCode::OK,
        app.put(
            &format!("/api/v1/contacts/{member}/permissions"),
            &set(false),
        )
        .await,
    );
    let (code, _) = error_of(
        StatusCode::UNPROCESSABLE_ENTITY,
        app.post_raw(&format!("/api/v1/contacts/{member}/login-link"), "")
            .await,
    );
    assert_eq!(code, "no_portal_access");
    assert!(mails(&app, "login_link", "lena@schmidt.example")
        .await
        .is_empty());
    expect(
        StatusCode::OK,
        app.put(
            &format!("/api/v1/contacts/{member}/permissions"),
            &set(true),
        )
        .await,
    );
    assert_eq!(
        mails(&app, "login_link", "lena@schmidt.example")
            .await
            .len(),
        1
    );
    let (status, _) = app
        .post(&format!("/api/v1/contacts/{member}/login-link"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let links = mails(&app, "login_link", "lena@schmidt.example").await;
    assert_eq!(links.len(), 2);
    assert!(links[1]["text"].as_str().unwrap().contains("/l/"));
    error_of(
        StatusCode::NOT_FOUND,
        app.post_raw("/api/v1/contacts/ct_999999/login-link", "")
            .await,
    );
}
