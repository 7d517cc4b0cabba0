//! Ticket numbers under concurrency, and durability against SIGKILL.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn two_hundred_tickets_from_eight_clients_survive_a_sigkill_with_numbers_1_to_200() {
    let mut app = TestApp::spawn().await;
    let mut clients = Vec::new();
    for client in 0..8 {
        let url = app.url("/api/v1/tickets");
        let key = app.key.clone();
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answered = Vec::new();
            for n in 0..25 {
                let response = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"subject": format!("Client {client} ticket {n}"), "body": "Kasse defekt", "requester_email": format!("c{client}@example.org")}))
                    .send()
                    .await
                    .expect("request sent");
                assert_eq!(response.status(), StatusCode::CREATED);
                let ticket: serde_json::Value = response.json().await.unwrap();
                answered.push((ticket["id"].as_str().unwrap().to_string(), ticket["number"].as_u64().unwrap()));
            }
            answered
        }));
    }
    let mut answered = Vec::new();
    for client in clients {
        answered.extend(client.await.unwrap());
    }
    // Killed right after the last answer: no shutdown, no checkpoint.
    app.kill();
    // What the restart has to go by is the write-ahead log: sled was never flushed
    // for these writes (its first checkpoint comes after 8 MiB of log).
    assert!(
        log_segments_with_records(&app) > 0,
        "no log segment holds a record after the kill"
    );

    let mut numbers: Vec<u64> = answered.iter().map(|(_, number)| *number).collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (1..=200).collect::<Vec<_>>(),
        "numbers have gaps or repeats"
    );

    app.start(false).await.unwrap();
    let (status, list) = app.get("/api/v1/tickets?per_page=500").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 200, "tickets were lost to SIGKILL");
    for (id, number) in &answered {
        let (status, ticket) = app.get(&format!("/api/v1/tickets/{id}")).await;
        assert_eq!(status, StatusCode::OK, "ticket {id} lost");
        assert_eq!(ticket["number"].as_u64(), Some(*number));
        let history = app.history(id).await;
        assert_eq!(history.len(), 1, "the first message of {id} was lost");
    }
    // The sequence goes on after the restart, with no reuse.
    let next = app
        .create_ticket(
            &json!({"subject": "after", "body": "x", "requester_email": "a@example.org"}),
        )
        .await;
    assert_eq!(next["number"], 201);
    // A clean shutdown checkpoints: the log is empty, and the replayed store is one
    // `verify` accepts (chains whole, nothing dangling).
    app.terminate();
    assert_eq!(log_segments_with_records(&app), 0);
    let verified = app.command(&["verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// Segments of the store's write-ahead log that hold at least one record (a
/// segment's unused space is zeroes).
fn log_segments_with_records(app: &TestApp) -> usize {
    std::fs::read_dir(app.data_dir().join("wal"))
        .expect("the store's log is in the data dir")
        .filter(|entry| {
            let bytes = std::fs::read(entry.as_ref().unwrap().path()).unwrap();
            bytes.iter().take(4).any(|byte| *byte != 0)
        })
        .count()
}
