//! Search through the API: analysis in both languages, query syntax, access rules
//! inside the search, and an index that catches up after a crash.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

/// Searches until `q` finds `expected` records, or fails after a deadline: the index
/// lags writes by design.
async fn search_until(app: &TestApp, query: &str, expected: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["total"] == expected || Instant::now() > deadline {
            assert_eq!(body["total"], expected, "search {query}: {body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn search(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get(&format!("/api/v1/search?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn numbers(body: &Value) -> Vec<u64> {
    let mut numbers: Vec<u64> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["number"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn german_and_english_are_stemmed_and_folded_and_the_syntax_works() {
    let app = TestApp::spawn().await;
    let (_company, contact, staff) = app.cafe_with_manager_and_staff().await;
    let kasse = app
        .create_ticket(&json!({"subject": "Kasse startet nicht", "body": "Viele Grüße aus der Hauptstraße", "contact_id": contact["id"]}))
        .await;
    let printer = app
        .create_ticket(&json!({"subject": "Receipt printer", "body": "The printer jams on every second receipt.", "requester_email": "bob@elsewhere.example"}))
        .await;
    let other = app
        .create_ticket(&json!({"subject": "Lizenzfrage", "body": "Wir brauchen eine weitere Lizenz für den Drucker im Lager.", "requester_email": "carl@elsewhere.example"}))
        .await;
    app.post(
        &format!("/api/v1/tickets/{}/status", printer["id"].as_str().unwrap()),
        &json!({"status": "done", "staff_id": staff["id"]}),
    )
    .await;
    search_until(&app, "q=Lizenz", 1).await;

    assert_eq!(
        numbers(&search_until(&app, "q=Kassen", 1).await),
        vec![kasse["number"].as_u64().unwrap()]
    );
    assert_eq!(
        numbers(&search_until(&app, "q=printers", 1).await),
        vec![printer["number"].as_u64().unwrap()]
    );
    for folded in ["Gruesse", "grusse", "GRÜSSE", "Hauptstrasse"] {
        assert_eq!(
            search_until(&app, &format!("q={folded}"), 1).await["hits"][0]["id"],
            kasse["id"],
            "{folded}"
        );
    }
    // Phrases keep word order.
    search_until(&app, "q=%22printer+jams%22", 1).await;
    search_until(&app, "q=%22jams+printer%22", 0).await;
    // Field filters.
    let done = search_until(&app, "q=status:done", 1).await;
    assert_eq!(done["hits"][0]["id"], printer["id"]);
    let by_company = search_until(&app, "q=company:%22Caf%C3%A9+M%C3%BCller%22", 1).await;
    assert_eq!(by_company["hits"][0]["id"], kasse["id"]);
    search_until(&app, "q=kind:ticket+Lizenz", 1).await;
    search_until(&app, "q=printer&kind=ticket", 1).await;
    // The hit is highlighted in the snippet.
    let hit = &search_until(&app, "q=Lizenz", 1).await["hits"][0];
    assert_eq!(hit["id"], other["id"]);
    assert!(hit["snippet"].as_str().unwrap().contains("<b>"), "{hit}");
    // Bad syntax is a 400 naming the query.
    let (code, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/search?q=%22unclosed").await,
    );
    assert_eq!(code, "invalid_query");
    assert!(fields.get("q").is_some());
    error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/search?q=x&limit=1000").await,
    );
}

#[tokio::test]
async fn subject_hits_rank_first_and_pages_count_right() {
    let app = TestApp::spawn().await;
    for n in 0..7 {
        app.create_ticket(&json!({"subject": format!("Frage {n}"), "body": "Das Kartenterminal piept. Kartenterminal! Kartenterminal?", "requester_email": "a@example.org"}))
            .await;
    }
    let subject = app
        .create_ticket(&json!({"subject": "Kartenterminal defekt", "body": "siehe Betreff", "requester_email": "b@example.org"}))
        .await;
    let first = search_until(&app, "q=Kartenterminal&limit=3", 8).await;
    assert_eq!(
        first["hits"][0]["id"], subject["id"],
        "the subject hit ranks first: {first}"
    );
    assert_eq!(first["hits"].as_array().unwrap().len(), 3);
    let last = search(&app, "q=Kartenterminal&limit=3&page=3").await;
    assert_eq!(last["total"], 8);
    assert_eq!(last["hits"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn no_contact_ever_finds_another_companys_record_nor_internal_notes() {
    let app = TestApp::spawn().await;
    let staff = app.create_staff("Sam", "sam@vendor.example").await;
    let reseller = app.create_company("Kassenprofi", "reseller", None).await;
    let reseller_manager = app
        .create_contact(
            reseller["id"].as_str().unwrap(),
            "Rita Reseller",
            "rita@kassenprofi.example",
            "manager",
        )
        .await;
    let mut people = Vec::new();
    for (name, via_reseller) in [("Alpha", true), ("Beta", true), ("Gamma", false)] {
        let company = app
            .create_company(
                name,
                "customer",
                via_reseller.then(|| reseller["id"].as_str().unwrap()),
            )
            .await;
        let id = company["id"].as_str().unwrap();
        let manager = app
            .create_contact(
                id,
                &format!("{name} Manager"),
                &format!("manager@{}.example", name.to_lowercase()),
                "manager",
            )
            .await;
        let member = app
            .create_contact(
                id,
                &format!("{name} Member"),
                &format!("member@{}.example", name.to_lowercase()),
                "member",
            )
            .await;
        let mut tickets = Vec::new();
        for who in [&manager, &member] {
            let ticket = app
                .create_ticket(&json!({"subject": format!("Drucker bei {name}"), "body": "Der Drucker druckt nicht.", "contact_id": who["id"]}))
                .await;
            app.post(
                &format!("/api/v1/tickets/{}/messages", ticket["id"].as_str().unwrap()),
                &json!({"body": "Geheimnotiz Seriennummer", "staff_id": staff["id"], "visibility": "internal"}),
            )
            .await;
            tickets.push(ticket["id"].as_str().unwrap().to_string());
        }
        people.push((via_reseller, manager, member, tickets));
    }
    search_until(&app, "q=Drucker", 6).await;
    search_until(&app, "q=Geheimnotiz", 6).await;

    let ids = |body: &Value| -> Vec<String> {
        let mut ids: Vec<String> = body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    for (_, manager, member, tickets) in &people {
        let mut all = tickets.clone();
        all.sort();
        // A manager sees the company's tickets, a member only its own.
        for (who, expected) in [(manager, all.clone()), (member, vec![tickets[1].clone()])] {
            for q in ["Drucker", "status:new", "kind:ticket", "druckt"] {
                let found = search(
                    &app,
                    &format!("q={q}&as_contact={}", who["id"].as_str().unwrap()),
                )
                .await;
                assert_eq!(ids(&found), expected, "{q} as {}", who["name"]);
                assert_eq!(found["total"], expected.len());
            }
            let internal = search(
                &app,
                &format!("q=Geheimnotiz&as_contact={}", who["id"].as_str().unwrap()),
            )
            .await;
            assert_eq!(internal["total"], 0, "internal notes are for staff only");
        }
    }
    // The reseller's manager sees its customers' tickets, not the direct customer's.
    let found = search(
        &app,
        &format!(
            "q=Drucker&as_contact={}&limit=100",
            reseller_manager["id"].as_str().unwrap()
        ),
    )
    .await;
    let mut expected: Vec<String> = people
        .iter()
        .filter(|p| p.0)
        .flat_map(|p| p.3.clone())
        .collect();
    expected.sort();
    assert_eq!(ids(&found), expected);
    let (code, _) = error_of(
        StatusCode::NOT_FOUND,
        app.get("/api/v1/search?q=x&as_contact=ct_99999").await,
    );
    assert_eq!(code, "not_found");
}

#[tokio::test]
async fn writes_killed_before_the_index_commit_are_findable_after_a_restart() {
    let mut app = TestApp::spawn_with(TestConfig {
        // The indexer applies changes once at start and then waits an hour.
        extra_toml: "[search]\nindex_interval_ms = 3600000\n".into(),
        ..Default::default()
    })
    .await;
    // The indexer's one pass at start races the first writes, so it is given a
    // ticket to find, and the test waits until it has: nothing after it is
    // indexed until the restart.
    app.create_ticket(&json!({"subject": "Kassenlade klemmt", "body": "Lade geht nicht auf", "requester_email": "w@example.org"}))
        .await;
    app.terminate();
    app.start(false).await.unwrap();
    search_until(&app, "q=Kassenlade", 1).await;
    for n in 0..5 {
        app.create_ticket(&json!({"subject": format!("Waage {n} zeigt falsch"), "body": "Tara stimmt nicht", "requester_email": "w@example.org"}))
            .await;
    }
    assert_eq!(
        search(&app, "q=Waage").await["total"],
        0,
        "nothing is indexed before the kill"
    );
    app.kill();
    app.start(false).await.unwrap();
    search_until(&app, "q=Waage", 5).await;
    search_until(&app, "q=Tara", 5).await;

    // `kontor reindex` rebuilds the same from nothing, with a progress report.
    app.terminate();
    let output = app.command(&["reindex"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("reindexed 6 records"));
    app.start(false).await.unwrap();
    search_until(&app, "q=Waage", 5).await;
}
