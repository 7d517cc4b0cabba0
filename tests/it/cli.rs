//! The command line: keys, export/import, a locked data dir, the demo.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn export_then_import_into_an_empty_dir_then_export_is_identical() {
    let mut app = TestApp::spawn().await;
    let (_company, contact, staff) = app.cafe_with_manager_and_staff().await;
    let ticket = app
        .create_ticket(&json!({"subject": "Kasse „Ü“ 🧾", "body": "Zeile 1\nZeile 2 — ß", "contact_id": contact["id"], "assignee_id": staff["id"]}))
        .await;
    app.post(
        &format!(
            "/api/v1/tickets/{}/time-entries",
            ticket["id"].as_str().unwrap()
        ),
        &json!({"staff_id": staff["id"], "minutes": 5, "note": "n"}),
    )
    .await;
    let ticket_path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    let history_path = format!("{ticket_path}/history");
    let (_, ticket) = app.get(&ticket_path).await;
    let (_, history) = app.get(&history_path).await;

    // A running server holds the data dir: the export goes through it (ops.rs).
    let live = app.command(&["export"]);
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );

    app.terminate();
    let first = app.command(&["export"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(first.stdout.len() > 1000);

    let other = tempfile::tempdir().unwrap();
    let other_config = other.path().join("kontor.toml");
    std::fs::write(
        &other_config,
        format!(
            "data_dir = {:?}\n",
            other.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        use std::io::Write;
        let mut child = std::process::Command::new(kontor_binary())
            .args(args)
            .arg("--config")
            .arg(&other_config)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };
    let imported = run(&["import"], Some(&first.stdout));
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let second = run(&["export"], None);
    assert!(second.status.success());
    assert!(
        first.stdout == second.stdout,
        "the second export differs from the first"
    );

    // Importing again into the now non-empty dir is refused and changes nothing.
    let again = run(&["import"], Some(&first.stdout));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    let third = run(&["export"], None);
    assert!(third.stdout == first.stdout);

    // A broken export imports nothing.
    let broken_dir = tempfile::tempdir().unwrap();
    let broken_config = broken_dir.path().join("kontor.toml");
    std::fs::write(
        &broken_config,
        format!(
            "data_dir = {:?}\n",
            broken_dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let mut broken = first.stdout.clone();
    broken.extend_from_slice(b"{\"tree\": \"nope\", \"key\": \"00\", \"value\": 1}\n");
    let output = {
        use std::io::Write;
        let mut child = std::process::Command::new(kontor_binary())
            .args(["import", "--config"])
            .arg(&broken_config)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&broken).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown tree"));

    // A server on the imported data dir serves the same records.
    let original = std::fs::read_to_string(&app.config_path).unwrap();
    let imported_data = other.path().join("data").display().to_string();
    let rewritten: String = original
        .lines()
        .map(|line| {
            if line.starts_with("data_dir") {
                format!("data_dir = {imported_data:?}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&app.config_path, rewritten).unwrap();
    app.start(false).await.unwrap();
    let (status, fetched) = app.get(&ticket_path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, ticket);
    assert_eq!(app.get(&history_path).await.1, history);
}

#[tokio::test]
async fn a_revoked_key_is_answered_403() {
    let app = TestApp::spawn().await;
    let (status, _) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    // Revoking needs the data dir, so it is done while the server is down.
    let mut app = app;
    app.terminate();
    let revoke = app.command(&["keys", "revoke", "--name", "test"]);
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    app.start(false).await.unwrap();
    let (code, _) = error_of(StatusCode::FORBIDDEN, app.get("/api/v1/tickets").await);
    assert_eq!(code, "key_revoked");
}

#[tokio::test]
async fn a_bad_config_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kontor.toml");
    std::fs::write(&config, "[http]\nlisten = 8080\n").unwrap();
    let output = std::process::Command::new(kontor_binary())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("kontor.toml") && stderr.contains("listen"),
        "{stderr}"
    );

    let missing = std::process::Command::new(kontor_binary())
        .args(["serve", "--config", "/nonexistent/kontor.toml"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/kontor.toml"));
}

#[tokio::test]
async fn the_demo_seeds_an_empty_data_dir_and_prints_how_to_reach_it() {
    let mut app = TestApp::spawn_with(TestConfig {
        demo: true,
        ..Default::default()
    })
    .await;
    let printed = app.stdout_lines.join("\n");
    let key = app
        .stdout_lines
        .iter()
        .find_map(|line| line.trim().strip_prefix("API key (staff):"))
        .map(|key| key.trim().to_string())
        .unwrap_or_else(|| panic!("no API key printed: {printed}"));
    app.key = key;
    let (status, tickets) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tickets["total"], 4);
    let statuses: std::collections::BTreeSet<String> = tickets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_string())
        .collect();
    assert!(statuses.len() >= 3, "{statuses:?}");
    assert!(printed.contains("Café Müller"), "{printed}");

    // A second start does not seed twice.
    app.terminate();
    app.start(true).await.unwrap();
    let (_, tickets) = app.get("/api/v1/tickets").await;
    assert_eq!(tickets["total"], 4);
}

#[tokio::test]
async fn serve_started_outside_the_source_tree_uses_the_templates_it_ships() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kontor.toml"),
        "[http]\nlisten = \"127.0.0.1:0\"\n[inbound]\nsmtp_listen = \"\"\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(kontor_binary())
        .args(["serve", "--config", "kontor.toml"])
        .current_dir(dir.path())
        .env("KONTOR_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .next();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        first
            .as_deref()
            .is_some_and(|line| line.starts_with("kontor: http listening on")),
        "the server did not start: {first:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir
        .path()
        .join("data/templates-shipped/email/ticket_created.de.txt.hbs")
        .exists());
}
