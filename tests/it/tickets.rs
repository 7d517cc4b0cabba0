//! A ticket's whole life through the API: open, assign, every status, messages, time,
//! and the history in order with every event.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn a_ticket_moves_through_every_status_and_its_history_shows_all_of_it() {
    let app = TestApp::spawn().await;
    let (company, contact, staff) = app.cafe_with_manager_and_staff().await;
    let staff_id = staff["id"].as_str().unwrap();

    let ticket = app
        .create_ticket(&json!({"subject": "Bondrucker druckt nicht", "body": "Seit heute keine Belege.", "contact_id": contact["id"]}))
        .await;
    assert_eq!(ticket["number"], 1);
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["channel"], "api");
    assert_eq!(ticket["company_id"], company["id"]);
    assert_eq!(ticket["requester"]["contact_id"], contact["id"]);
    assert_eq!(ticket["subject_tag"], "[#1]");
    let reply_to = ticket["reply_to"].as_str().unwrap();
    assert!(
        reply_to.starts_with("support+1-") && reply_to.ends_with("@support.example.com"),
        "{reply_to}"
    );
    let id = ticket["id"].as_str().unwrap();

    let assigned = expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/tickets/{id}/assign"),
            &json!({"staff_id": staff_id}),
        )
        .await,
    );
    assert_eq!(assigned["assignee_id"], staff["id"]);

    let path = format!("/api/v1/tickets/{id}/status");
    for status in [
        "backlog",
        "in_progress",
        "waiting_on_customer",
        "in_progress",
        "done",
        "backlog",
    ] {
        let changed = expect(
            StatusCode::OK,
            app.post(&path, &json!({"status": status, "staff_id": staff_id}))
                .await,
        );
        assert_eq!(changed["status"], status);
    }
    let (code, _) = error_of(
        StatusCode::CONFLICT,
        app.post(&path, &json!({"status": "new", "staff_id": staff_id}))
            .await,
    );
    assert_eq!(code, "illegal_transition");

    let messages = format!("/api/v1/tickets/{id}/messages");
    let public = expect(
        StatusCode::CREATED,
        app.post(&messages, &json!({"body": "Bitte Drucker neu starten.", "staff_id": staff_id, "visibility": "public"})).await,
    );
    assert_eq!(public["visibility"], "public");
    expect(
        StatusCode::CREATED,
        app.post(&messages, &json!({"body": "Treiberproblem bekannt.", "staff_id": staff_id, "visibility": "internal"})).await,
    );
    let time = expect(
        StatusCode::CREATED,
        app.post(
            &format!("/api/v1/tickets/{id}/time-entries"),
            &json!({"staff_id": staff_id, "minutes": 25, "note": "Fernwartung", "date": "2026-11-20"}),
        )
        .await,
    );
    assert_eq!(time["kind"], "time_entry");
    assert_eq!(time["minutes"], 25);

    let history = app.history(id).await;
    let summary: Vec<String> = history
        .iter()
        .map(|item| match item["kind"].as_str().unwrap() {
            "message" => format!(
                "message:{}:{}",
                item["visibility"].as_str().unwrap(),
                item["body_text"].as_str().unwrap()
            ),
            "event" => format!(
                "event:{}:{}",
                item["event"]["type"].as_str().unwrap(),
                item["event"]["to"].as_str().unwrap_or("")
            ),
            "time_entry" => format!(
                "time:{}:{}",
                item["minutes"],
                item["body_text"].as_str().unwrap()
            ),
            other => panic!("unknown kind {other}"),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "message:public:Seit heute keine Belege.".to_string(),
            format!("event:assigned:{staff_id}"),
            "event:status_changed:backlog".into(),
            "event:status_changed:in_progress".into(),
            "event:status_changed:waiting_on_customer".into(),
            "event:status_changed:in_progress".into(),
            "event:status_changed:done".into(),
            "event:status_changed:backlog".into(),
            "message:public:Bitte Drucker neu starten.".into(),
            "message:internal:Treiberproblem bekannt.".into(),
            "time:25:Fernwartung".into(),
        ]
    );
    assert_eq!(history[0]["author"]["kind"], "contact");
    assert_eq!(history[0]["author"]["id"], contact["id"]);
    assert_eq!(history[2]["author"]["kind"], "staff");
    assert_eq!(history[2]["event"]["from"], "new");
    assert_eq!(history[10]["visibility"], "internal");
    assert_eq!(history[10]["date"], "2026-11-20");
    let times: Vec<&str> = history
        .iter()
        .map(|item| item["at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "history is oldest first"
    );
}

#[tokio::test]
async fn ticket_lists_filter_page_and_put_the_newest_first() {
    let app = TestApp::spawn().await;
    let (company, contact, staff) = app.cafe_with_manager_and_staff().await;
    for n in 0..5 {
        app.create_ticket(
            &json!({"subject": format!("Kontakt {n}"), "body": "x", "contact_id": contact["id"]}),
        )
        .await;
    }
    let stranger = app
        .create_ticket(&json!({"subject": "Unbekannt", "body": "x", "requester_email": "Someone@Elsewhere.example", "requester_name": "Some One"}))
        .await;
    assert!(stranger.get("company_id").is_none());
    assert_eq!(stranger["requester"]["email"], "someone@elsewhere.example");
    assert_eq!(stranger["requester"]["name"], "Some One");
    expect(
        StatusCode::OK,
        app.post(
            &format!(
                "/api/v1/tickets/{}/status",
                stranger["id"].as_str().unwrap()
            ),
            &json!({"status": "done", "staff_id": staff["id"]}),
        )
        .await,
    );

    let (_, all) = app.get("/api/v1/tickets?per_page=2&page=1").await;
    assert_eq!(all["total"], 6);
    assert_eq!(all["page"], 1);
    assert_eq!(all["per_page"], 2);
    let numbers: Vec<u64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![6, 5]);
    let (_, last) = app.get("/api/v1/tickets?per_page=2&page=3").await;
    let numbers: Vec<u64> = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);

    let (_, by_company) = app
        .get(&format!(
            "/api/v1/tickets?company_id={}",
            company["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(by_company["total"], 5);
    let (_, by_contact) = app
        .get(&format!(
            "/api/v1/tickets?contact_id={}&status=new",
            contact["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(by_contact["total"], 5);
    let (_, done) = app.get("/api/v1/tickets?status=done").await;
    assert_eq!(done["total"], 1);
    assert_eq!(done["items"][0]["id"], stranger["id"]);
}
