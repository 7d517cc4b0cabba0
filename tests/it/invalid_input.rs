//! Every kind of invalid input gets the contract's error JSON and changes nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

/// Everything the API can list, to show a refused request changed nothing.
async fn snapshot(app: &TestApp, ticket_id: &str) -> (Value, Value, Value) {
    let (_, tickets) = app.get("/api/v1/tickets?per_page=500").await;
    let history = app.history(ticket_id).await;
    let (_, ticket) = app.get(&format!("/api/v1/tickets/{ticket_id}")).await;
    (tickets, Value::Array(history), ticket)
}

#[tokio::test]
async fn invalid_requests_are_refused_with_the_error_json_and_change_nothing() {
    let app = TestApp::spawn().await;
    let company = app.create_company("Café Müller", "customer", None).await;
    let company_id = company["id"].as_str().unwrap().to_string();
    let staff = app.create_staff("Sam", "sam@vendor.example").await;
    let staff_id = staff["id"].as_str().unwrap().to_string();
    let ticket = app
        .create_ticket(
            &json!({"subject": "Kasse", "body": "defekt", "requester_email": "kunde@example.org"}),
        )
        .await;
    let ticket_id = ticket["id"].as_str().unwrap().to_string();
    let before = snapshot(&app, &ticket_id).await;
    let long = "x".repeat(999);

    // (path, body, status, code, field)
    let cases: Vec<(String, Value, StatusCode, &str, Option<&str>)> = vec![
        (
            "/api/v1/tickets".into(),
            json!({"subject": 5, "body": "x", "requester_email": "a@b.example"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("subject"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"body": "x", "requester_email": "a@b.example"}),
            StatusCode::BAD_REQUEST,
            "missing",
            Some("subject"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": "s", "body": "x", "requester_email": "a@b.example", "priority": 1}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
            Some("priority"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": long, "body": "x", "requester_email": "a@b.example"}),
            StatusCode::BAD_REQUEST,
            "too_long",
            Some("subject"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": "s", "body": "x", "requester_email": "not-an-address"}),
            StatusCode::BAD_REQUEST,
            "invalid_email",
            Some("requester_email"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": "s", "body": "x"}),
            StatusCode::BAD_REQUEST,
            "missing",
            Some("contact_id"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": "s", "body": "   ", "requester_email": "a@b.example"}),
            StatusCode::BAD_REQUEST,
            "missing",
            Some("body"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": "s", "body": "x", "contact_id": "ct_999999"}),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("contact_id"),
        ),
        (
            "/api/v1/tickets".into(),
            json!({"subject": "s", "body": "x", "requester_email": "a@b.example", "assignee_id": "st_999999"}),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("assignee_id"),
        ),
        (
            "/api/v1/companies".into(),
            json!({"name": "X", "kind": "partner"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("kind"),
        ),
        (
            "/api/v1/companies".into(),
            json!({"name": "X", "kind": "customer", "reseller_id": "co_424242"}),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("reseller_id"),
        ),
        (
            "/api/v1/companies".into(),
            json!({"name": "X", "kind": "customer", "reseller_id": company_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_reseller",
            None,
        ),
        (
            "/api/v1/contacts".into(),
            json!({"company_id": company_id, "name": "A", "email": "a@@b", "role": "manager"}),
            StatusCode::BAD_REQUEST,
            "invalid_email",
            Some("email"),
        ),
        (
            "/api/v1/contacts".into(),
            json!({"company_id": company_id, "name": "A", "email": "a@b.example", "role": "boss"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("role"),
        ),
        (
            "/api/v1/contacts".into(),
            json!({"company_id": company_id, "name": "A", "email": "a@b.example", "role": "member", "locale": "fr"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("locale"),
        ),
        (
            "/api/v1/contacts".into(),
            json!({"company_id": "co_999999", "name": "A", "email": "a@b.example", "role": "member"}),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("company_id"),
        ),
        (
            "/api/v1/staff".into(),
            json!({"name": "", "email": "x@vendor.example"}),
            StatusCode::BAD_REQUEST,
            "missing",
            Some("name"),
        ),
        (
            "/api/v1/staff".into(),
            json!({"name": "Sam Again", "email": "SAM@vendor.example"}),
            StatusCode::CONFLICT,
            "email_taken",
            None,
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/status"),
            json!({"status": "new", "staff_id": staff_id}),
            StatusCode::CONFLICT,
            "illegal_transition",
            None,
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/status"),
            json!({"status": "closed", "staff_id": staff_id}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("status"),
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/status"),
            json!({"status": "done", "staff_id": "st_999999"}),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("staff_id"),
        ),
        (
            "/api/v1/tickets/tk_999999/status".into(),
            json!({"status": "done", "staff_id": staff_id}),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            "/api/v1/tickets/garbage/assign".into(),
            json!({"staff_id": staff_id}),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/assign"),
            json!({"staff_id": "nobody"}),
            StatusCode::NOT_FOUND,
            "not_found",
            Some("staff_id"),
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/messages"),
            json!({"body": "x", "staff_id": staff_id, "visibility": "secret"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("visibility"),
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/messages"),
            json!({"body": "x", "staff_id": staff_id}),
            StatusCode::BAD_REQUEST,
            "missing",
            Some("visibility"),
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/time-entries"),
            json!({"staff_id": staff_id, "minutes": 0, "note": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("minutes"),
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/time-entries"),
            json!({"staff_id": staff_id, "minutes": 30.5, "note": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("minutes"),
        ),
        (
            format!("/api/v1/tickets/{ticket_id}/time-entries"),
            json!({"staff_id": staff_id, "minutes": 30, "note": "x", "date": "yesterday"}),
            StatusCode::BAD_REQUEST,
            "invalid",
            Some("date"),
        ),
    ];
    for (path, body, status, code, field) in cases {
        let answer = app.post(&path, &body).await;
        let context = format!("POST {path} {body}: {}", answer.1);
        let (actual_code, fields) = error_of(status, answer);
        assert_eq!(actual_code, code, "{context}");
        if let Some(field) = field {
            assert!(fields.get(field).is_some(), "{field} not named: {context}");
        }
    }

    // Not JSON at all, and a truncated document.
    for raw in ["{\"subject\": ", "subject=Kasse", ""] {
        let (code, _) = error_of(
            StatusCode::BAD_REQUEST,
            app.post_raw("/api/v1/tickets", raw).await,
        );
        assert!(
            code == "invalid_json" || code == "invalid",
            "{raw:?} gave {code}"
        );
    }
    // A body over inbound.max_message_bytes is 413.
    let huge = "x".repeat(26_214_400 + 1);
    let answer = app
        .post(
            &format!("/api/v1/tickets/{ticket_id}/messages"),
            &json!({"body": huge, "staff_id": staff_id, "visibility": "public"}),
        )
        .await;
    let (code, _) = error_of(StatusCode::PAYLOAD_TOO_LARGE, answer);
    assert_eq!(code, "too_large");
    // Bad paging.
    let (code, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/tickets?per_page=501").await,
    );
    assert_eq!(code, "invalid");
    assert!(fields.get("per_page").is_some());
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/tickets?page=zero").await,
    );
    assert!(fields.is_object(), "{fields}");
    // Unknown records.
    for path in [
        "/api/v1/tickets/tk_999999",
        "/api/v1/companies/co_1x",
        "/api/v1/contacts/ct_999",
        "/api/v1/staff/xyz",
        "/api/v1/tickets/tk_999999/history",
        "/api/v1/attachments/at_5",
    ] {
        let (code, _) = error_of(StatusCode::NOT_FOUND, app.get(path).await);
        assert_eq!(code, "not_found", "{path}");
    }

    assert_eq!(
        snapshot(&app, &ticket_id).await,
        before,
        "a refused request changed something"
    );
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused() {
    let app = TestApp::spawn().await;
    let no_key = app
        .client
        .get(app.url("/api/v1/tickets"))
        .send()
        .await
        .unwrap();
    let (code, _) = error_of(StatusCode::UNAUTHORIZED, read(no_key).await);
    assert_eq!(code, "unauthorized");
    let wrong = app
        .client
        .get(app.url("/api/v1/tickets"))
        .bearer_auth("kontor_not_a_key")
        .send()
        .await
        .unwrap();
    error_of(StatusCode::UNAUTHORIZED, read(wrong).await);

    // healthz and the API description need no key.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let openapi = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(openapi.status(), StatusCode::OK);
    let document: Value = openapi.json().await.unwrap();
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/{id}/history",
        "/api/v1/contacts/{id}/permissions",
        "/api/v1/companies",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} missing from openapi.json"
        );
    }
    assert!(document["components"]["schemas"]
        .get("TicketJson")
        .is_some());
}
