//! Every fixture under `tests/fixtures/mail/<group>/NNN.eml` through the real SMTP
//! listener, checked against `NNN.json`: the outcome (a ticket created, a reply
//! appended by References, or no ticket for robots), and the extracted text,
//! measured: the test prints how many fixtures were extracted exactly.
//!
//! A reply fixture names `<kontor.N.M@support.example.com>` in In-Reply-To or
//! References; before it is sent, a first mail from the same sender with that
//! Message-ID opens the ticket it replies to. On a text mismatch the actual text
//! is written next to the fixture as `NNN.actual.txt`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::inbound::{smtp_app, tickets, SUPPORT};
use crate::smtp_client::send_one;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_root())
        .expect("fixtures exist")
        .flatten()
        .filter(|group| group.path().is_dir())
        .flat_map(|group| std::fs::read_dir(group.path()).expect("group").flatten())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// The header section, unfolded lines kept as they are.
fn header_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    text.split("\n\n").next().unwrap_or_default().to_string()
}

/// The From field, with its continuation lines, exactly as written.
fn from_field(headers: &str) -> Option<String> {
    let mut field: Option<String> = None;
    for line in headers.lines() {
        match &mut field {
            Some(value) if line.starts_with([' ', '\t']) => {
                value.push_str("\r\n");
                value.push_str(line);
            }
            Some(_) => break,
            None if line.to_ascii_lowercase().starts_with("from:") => {
                field = Some(line.to_string())
            }
            None => {}
        }
    }
    field
}

/// The address of the From field, as an MTA would take it for the envelope; an
/// MTA-made stand-in when the field holds none.
fn envelope_sender(from_field: &str) -> String {
    let inner = from_field
        .rsplit_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_string())
        .unwrap_or_else(|| from_field.trim_start_matches("From:").trim().to_string());
    if inner.contains('@') {
        inner
    } else {
        "bounce-handler@mta.example".to_string()
    }
}

fn replied_id(headers: &str) -> Option<String> {
    let start = headers.find("<kontor.")?;
    let end = headers[start..].find('>')?;
    Some(headers[start + 1..start + end].to_string())
}

#[tokio::test]
async fn every_fixture_through_the_real_listener() {
    let app = smtp_app("max_per_sender_per_hour = 1000").await;
    let address = app.smtp_address.expect("smtp listener");
    let (mut exact, mut total) = (0usize, 0usize);
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut wrong_outcomes = Vec::new();
    let mut mismatches = Vec::new();
    for path in fixtures() {
        let raw = std::fs::read(&path).expect("fixture");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(path.with_extension("json")).expect("json"),
        )
        .expect("fixture json");
        let outcome = expected["outcome"].as_str().unwrap_or_default().to_string();
        let headers = header_block(&raw);
        let from = from_field(&headers).unwrap_or_else(|| "From: nobody@example.org".into());
        let sender = if matches!(outcome.as_str(), "bounce" | "auto_reply") {
            String::new()
        } else {
            envelope_sender(&from)
        };
        let mut seeded_ticket = None;
        if outcome == "appended" {
            let id = replied_id(&headers).expect("a reply fixture names the message it replies to");
            let seed = format!(
                "{from}\r\nTo: {SUPPORT}\r\nSubject: Ticket for {name}\r\nMessage-ID: <{id}>\r\n\r\nThe first message.\r\n",
                name = path.display()
            );
            let reply = send_one(address, &envelope_sender(&from), SUPPORT, seed.as_bytes())
                .await
                .expect("seed sent");
            assert!(reply.starts_with("250"), "{reply}");
            seeded_ticket = tickets(&app).await.first().cloned();
        }
        let before = tickets(&app).await.len();
        let reply = send_one(address, &sender, SUPPORT, &raw)
            .await
            .expect("fixture sent");
        assert!(reply.starts_with("250"), "{}: {reply}", path.display());
        let after = tickets(&app).await;
        total += 1;

        let text = match outcome.as_str() {
            "created" => {
                if after.len() != before + 1 {
                    wrong_outcomes.push(format!("{}: no ticket created", path.display()));
                    continue;
                }
                let history = app.history(after[0]["id"].as_str().unwrap()).await;
                history[0]["body_text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
            "appended" => {
                let ticket = seeded_ticket.expect("seed ticket");
                if after.len() != before {
                    wrong_outcomes.push(format!(
                        "{}: opened a ticket instead of appending",
                        path.display()
                    ));
                    continue;
                }
                let history = app.history(ticket["id"].as_str().unwrap()).await;
                let last = history
                    .iter()
                    .rev()
                    .find(|i| i["kind"] == "message")
                    .cloned()
                    .unwrap_or_default();
                if last["threaded_by"] != "references" {
                    wrong_outcomes.push(format!(
                        "{}: not threaded by references: {last}",
                        path.display()
                    ));
                    continue;
                }
                last["body_text"].as_str().unwrap_or_default().to_string()
            }
            _ => {
                if after.len() != before {
                    wrong_outcomes.push(format!("{}: {outcome} opened a ticket", path.display()));
                }
                // Robots are not extracted into a history; their text is not measured.
                total -= 1;
                continue;
            }
        };
        let actual_path = path.with_extension("actual.txt");
        let group = path
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let counts = groups.entry(group).or_default();
        counts.1 += 1;
        if expected["expected_text"].as_str() == Some(text.as_str()) {
            exact += 1;
            counts.0 += 1;
            let _ = std::fs::remove_file(&actual_path);
        } else {
            let _ = std::fs::write(&actual_path, &text);
            mismatches.push(format!(
                "{}: text differs, actual in {}",
                path.display(),
                actual_path.display()
            ));
        }
    }
    let percent = exact * 100 / total.max(1);
    println!("reply extraction: {exact}/{total} fixtures exact ({percent}%)");
    println!("per group (exact/total):");
    for (group, (group_exact, group_total)) in &groups {
        println!("  {group:<18} {group_exact:>3}/{group_total:<3}");
    }
    for mismatch in &mismatches {
        println!("{mismatch}");
    }
    assert!(
        wrong_outcomes.is_empty(),
        "wrong outcomes:\n{}",
        wrong_outcomes.join("\n")
    );
    assert!(
        exact * 10 >= total * 9,
        "only {exact}/{total} exact:\n{}",
        mismatches.join("\n")
    );
}
