//! Running it in production (CONTRACT.md section 8): `/metrics`, logs for shippers,
//! settings that cannot mislead, one error shape everywhere, administration while the
//! server runs, and DKIM-signed mail checked by an independent verifier (dkimpy).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::smtp_sink::SmtpSink;
use crate::support::*;

// ---------------------------------------------------------------------------
// Metrics

/// The value of the one sample `series` (name and labels exactly), if present.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

pub async fn metrics(app: &TestApp) -> String {
    // No key: Prometheus scrapes without one.
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics answered");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("metrics text")
}

const MAIL: &str = "From: Maria Müller <maria@mueller.example>\r\nTo: support@support.example.com\r\nSubject: Bondrucker druckt nicht\r\nMessage-ID: <metrics-1@mueller.example>\r\nDate: Mon, 30 Nov 2026 09:00:00 +0100\r\n\r\nDer Bondrucker an Kasse 2 druckt nicht mehr.\r\n";

#[tokio::test]
async fn metrics_are_present_and_move_after_requests() {
    let app = TestApp::spawn().await;
    let before = metrics(&app).await;
    for family in [
        "kontor_http_requests_total",
        "kontor_mail_in_total",
        "kontor_notices",
        "kontor_outbox_queue_depth",
        "kontor_outbox_oldest_age_seconds",
        "kontor_search_index_lag",
        "kontor_store_size_bytes",
        "kontor_store_batch_transactions",
        "kontor_store_commit_seconds",
        "kontor_allocator_bytes",
    ] {
        assert!(
            before.contains(&format!("# TYPE {family} ")),
            "{family} missing in\n{before}"
        );
    }
    for line in before.lines().filter(|line| !line.starts_with('#')) {
        assert!(line.starts_with("kontor_"), "unprefixed: {line}");
    }
    let commits_before =
        sample(&before, "kontor_store_commit_seconds_count").expect("commit count");
    // The binary's allocator is jemalloc, which counts what the server holds.
    let allocated = sample(&before, "kontor_allocator_bytes{kind=\"allocated\"}");
    let resident = sample(&before, "kontor_allocator_bytes{kind=\"resident\"}");
    assert!(
        matches!((allocated, resident), (Some(a), Some(r)) if a > 0.0 && r >= a),
        "allocated {allocated:?}, resident {resident:?}"
    );

    app.create_company("Café Müller", "customer", None).await;
    let (status, _) = app.get("/api/v1/tickets/tk_999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/tickets/tk_999998").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = app
        .client
        .post(app.url("/api/v1/inbound/email"))
        .bearer_auth(&app.key)
        .header("content-type", "message/rfc822")
        .body(MAIL)
        .send()
        .await
        .expect("mail posted");
    assert_eq!(response.status(), StatusCode::OK);

    let after = metrics(&app).await;
    assert_eq!(
        sample(
            &after,
            "kontor_http_requests_total{method=\"GET\",route=\"/api/v1/tickets/{id}\",status=\"404\"}"
        ),
        Some(2.0),
        "requests are counted by route template:\n{after}"
    );
    assert!(!after.contains("tk_999999"), "no raw paths as labels");
    assert_eq!(
        sample(
            &after,
            "kontor_http_requests_total{method=\"POST\",route=\"/api/v1/companies\",status=\"201\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, "kontor_mail_in_total{outcome=\"created\"}"),
        Some(1.0)
    );
    let commits_after = sample(&after, "kontor_store_commit_seconds_count").expect("commit count");
    assert!(
        commits_after >= commits_before + 2.0,
        "{commits_before} -> {commits_after}"
    );
    assert!(sample(&after, "kontor_store_size_bytes").is_some_and(|bytes| bytes > 0.0));
    // The ticket's confirmation waits in the outbox (file transport drains it).
    assert!(sample(&after, "kontor_outbox_queue_depth").is_some());
}

// ---------------------------------------------------------------------------
// Logs

/// A server started by hand, its stderr piped: what a log shipper or a file sees.
struct RawServer {
    child: Child,
    stderr: Receiver<String>,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn minimal_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("kontor.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {data:?}\ntemplates_dir = {templates:?}\n{extra}\n[http]\nlisten = \"127.0.0.1:0\"\n[inbound]\nsmtp_listen = \"\"\n[outbound]\nfile_dir = {outbox:?}\n",
            data = dir.join("data").display().to_string(),
            templates = shipped_templates().display().to_string(),
            outbox = dir.join("outbox").display().to_string(),
        ),
    )
    .expect("config written");
    path
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn start_raw(envs: &[(&str, &str)]) -> RawServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = minimal_config(dir.path(), "");
    let mut command = Command::new(kontor_binary());
    command
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("KONTOR_LOG", "info");
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("serve runs");
    let stdout = lines_of(child.stdout.take().expect("stdout"));
    let stderr = lines_of(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = stdout.recv_timeout(left).expect("a listening line");
        if let Some(address) = line.strip_prefix("kontor: http listening on ") {
            break format!("http://{}", address.trim());
        }
    };
    std::thread::spawn(move || while stdout.recv().is_ok() {});
    RawServer {
        child,
        stderr,
        address,
        _dir: dir,
    }
}

/// Stderr lines until one contains `marker`, or the deadline.
fn stderr_until(server: &RawServer, marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server
            .stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no stderr line with {marker:?}; got {lines:?}"));
        let done = line.contains(marker);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line() {
    let server = start_raw(&[("KONTOR_LOG_FORMAT", "json")]);
    let lines = stderr_until(&server, "kontor is up");
    for line in &lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not one JSON object ({error}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(value["level"].is_string(), "{line}");
        assert!(value["timestamp"].is_string(), "{line}");
    }
    let up: Value = serde_json::from_str(lines.last().expect("a line")).expect("json");
    assert_eq!(up["message"], "kontor is up");
    assert!(up["address"]
        .as_str()
        .is_some_and(|a| server.address.ends_with(a)));
}

#[tokio::test]
async fn text_logs_carry_no_colour_codes_into_a_pipe() {
    let server = start_raw(&[]);
    let lines = stderr_until(&server, "kontor is up");
    for line in &lines {
        assert!(
            !line.contains('\u{1b}'),
            "an escape code in a pipe: {line:?}"
        );
    }
    assert!(lines.iter().any(|line| line.contains("INFO")), "{lines:?}");
}

// ---------------------------------------------------------------------------
// Configuration that cannot mislead

#[tokio::test]
async fn links_point_at_the_port_the_server_really_got_when_public_url_is_unset() {
    // The suite listens on port 0 and sets no public_url.
    let app = TestApp::spawn().await;
    let (_company, contact, _staff) = app.cafe_with_manager_and_staff().await;
    let ticket = app
        .create_ticket(&json!({"subject": "Kasse", "body": "Kasse 2 startet nicht",
                                "contact_id": contact["id"], "notify": false}))
        .await;
    let link = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/links",
            &json!({"record": "ticket", "id": ticket["id"], "contact_id": contact["id"], "scope": "view"}),
        )
        .await,
    );
    let url = link["url"].as_str().expect("a url");
    assert!(
        url.starts_with(&format!("{}/l/", app.address)),
        "{url} does not start with {}",
        app.address
    );
    let opened = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(url)
        .send()
        .await
        .expect("the link opens");
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
}

#[test]
fn settings_that_cannot_work_stop_the_start_with_one_line_naming_the_key() {
    for (extra, key) in [
        ("public_url = \"ftp://help.example.com\"", "public_url"),
        ("public_url = \"help.example.com\"", "public_url"),
        ("[security]\nview_link_days = 0", "security.view_link_days"),
        ("[security]\nsign_link_days = 0", "security.sign_link_days"),
        (
            "[security]\nlogin_link_minutes = 0",
            "security.login_link_minutes",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        // The section goes last so that it does not swallow the suite's keys.
        let config = minimal_config(dir.path(), "");
        let mut text = std::fs::read_to_string(&config).expect("config");
        if extra.starts_with('[') {
            text.push_str(extra);
        } else {
            text = format!("{extra}\n{text}");
        }
        std::fs::write(&config, text).expect("config written");
        let output = Command::new(kontor_binary())
            .args(["serve", "--config"])
            .arg(&config)
            .env("KONTOR_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("serve runs");
        assert!(!output.status.success(), "{extra} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{extra}: {stderr}");
        assert!(stderr.contains(key), "{extra}: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// One error shape

#[tokio::test]
async fn every_error_has_the_error_json_and_names_the_real_field() {
    let app = TestApp::spawn().await;
    let delete = app
        .client
        .delete(app.url("/api/v1/tickets"))
        .bearer_auth(&app.key)
        .send()
        .await
        .expect("sent");
    let (code, _) = error_of(StatusCode::METHOD_NOT_ALLOWED, read(delete).await);
    assert_eq!(code, "method_not_allowed");
    let put_health = app
        .client
        .put(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    let (code, _) = error_of(StatusCode::METHOD_NOT_ALLOWED, read(put_health).await);
    assert_eq!(code, "method_not_allowed");
    let (code, _) = error_of(
        StatusCode::NOT_FOUND,
        app.get("/api/v1/no-such-thing").await,
    );
    assert_eq!(code, "not_found");
    let (code, _) = error_of(StatusCode::NOT_FOUND, app.get("/no-such-page").await);
    assert_eq!(code, "not_found");

    let (code, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/tickets?page=abc").await,
    );
    assert_eq!(code, "invalid");
    assert!(fields["page"].is_string(), "{fields}");
    let (_, fields) = error_of(
        StatusCode::BAD_REQUEST,
        app.get("/api/v1/tickets?per_page=many").await,
    );
    assert!(fields["per_page"].is_string(), "{fields}");

    // 409s name the field that is the cause.
    let (company, contact, _staff) = app.cafe_with_manager_and_staff().await;
    let (code, fields) = error_of(
        StatusCode::CONFLICT,
        app.post(
            "/api/v1/contacts",
            &json!({"company_id": company["id"], "name": "Maria Zwei",
                    "email": "maria@mueller.example", "role": "member"}),
        )
        .await,
    );
    assert_eq!(code, "email_taken");
    assert!(fields["email"].is_string(), "{fields}");
    expect(
        StatusCode::OK,
        app.put(
            &format!(
                "/api/v1/contacts/{}/permissions",
                contact["id"].as_str().unwrap()
            ),
            &json!({"portal": true, "quotes": true, "orders": true, "invoices": true,
                    "subscriptions": true, "requested_by": contact["id"]}),
        )
        .await,
    );
    let invoice = json!({"company_id": company["id"], "contact_id": contact["id"], "number": "RE-1",
        "lines": [{"description": "Kasse", "quantity": 1, "unit_price_cents": 34900}],
        "currency": "EUR", "due_date": "2030-01-31"});
    expect(
        StatusCode::CREATED,
        app.post("/api/v1/invoices", &invoice).await,
    );
    let (code, fields) = error_of(
        StatusCode::CONFLICT,
        app.post("/api/v1/invoices", &invoice).await,
    );
    assert_eq!(code, "number_taken");
    assert!(fields["number"].is_string(), "{fields}");
}

// ---------------------------------------------------------------------------
// Without downtime

fn run_ok(app: &TestApp, args: &[&str]) -> std::process::Output {
    let output = app.command(args);
    assert!(
        output.status.success(),
        "kontor {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The status of a ticket list asked for with `key`.
async fn tickets_status_with(app: &TestApp, key: &str) -> StatusCode {
    app.client
        .get(app.url("/api/v1/tickets"))
        .bearer_auth(key)
        .send()
        .await
        .expect("sent")
        .status()
}

#[tokio::test]
async fn export_and_keys_work_while_the_server_runs_and_a_new_key_works_at_once() {
    let app = TestApp::spawn().await;
    let (_company, contact, _staff) = app.cafe_with_manager_and_staff().await;
    app.create_ticket(&json!({"subject": "Kasse", "body": "Kasse 2 startet nicht",
                              "contact_id": contact["id"], "notify": false}))
        .await;

    let created = run_ok(&app, &["keys", "create", "--name", "backoffice"]);
    let secret = String::from_utf8(created.stdout).expect("utf-8");
    let secret = secret.trim();
    assert!(!secret.is_empty() && !secret.contains('\n'), "{secret:?}");
    assert_eq!(
        tickets_status_with(&app, secret).await,
        StatusCode::OK,
        "the new key works at once"
    );

    let again = app.command(&["keys", "create", "--name", "backoffice"]);
    assert!(!again.status.success(), "key names are unique");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("backoffice"), "{stderr}");

    let listed = run_ok(&app, &["keys", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed
            .lines()
            .any(|line| line.contains("\tbackoffice\t") && line.ends_with("active")),
        "{listed}"
    );
    assert!(!listed.contains(secret), "list never shows secrets");

    let export = run_ok(&app, &["export"]);
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(stderr.contains("signing keys"), "{stderr}");
    let dump = String::from_utf8(export.stdout).expect("utf-8");
    assert!(dump.starts_with("{\"signing_keys\""), "the keys come first");
    assert!(
        dump.contains("Kasse 2 startet nicht"),
        "the ticket is in the dump"
    );
    for line in dump.lines() {
        serde_json::from_str::<Value>(line).expect("every line is JSON");
    }
    let without = run_ok(&app, &["export", "--without-secrets"]);
    let lean = String::from_utf8(without.stdout).expect("utf-8");
    assert!(!lean.contains("signing_keys"));
    assert_eq!(lean.lines().count() + 1, dump.lines().count());

    // The dump restores into an empty data dir, chains checked.
    let other = tempfile::tempdir().expect("temp dir");
    let other_config = minimal_config(other.path(), "");
    let mut import = Command::new(kontor_binary())
        .args(["import", "--config"])
        .arg(&other_config)
        .env("KONTOR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import runs");
    {
        use std::io::Write;
        let mut input = import.stdin.take().expect("stdin");
        input.write_all(dump.as_bytes()).expect("dump written");
    }
    let imported = import.wait_with_output().expect("import ends");
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    // With --url too, and the search index rebuilt while serving.
    let url = app.address.clone();
    run_ok(&app, &["reindex", "--url", &url]);
    run_ok(
        &app,
        &["keys", "revoke", "--name", "backoffice", "--url", &url],
    );
    assert_eq!(
        tickets_status_with(&app, secret).await,
        StatusCode::FORBIDDEN,
        "revoked at once"
    );
    let (status, _) = app.get("/api/v1/tickets").await;
    assert_eq!(status, StatusCode::OK, "other keys stay valid");
}

#[tokio::test]
async fn the_admin_routes_refuse_anyone_without_the_servers_secret() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/admin/keys"))
        .bearer_auth(&app.key)
        .json(&json!({"name": "sneaky"}))
        .send()
        .await
        .expect("sent");
    let (code, _) = error_of(StatusCode::UNAUTHORIZED, read(response).await);
    assert_eq!(code, "unauthorized");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.data_dir().join("admin.json"))
            .expect("the server published its admin file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the server's user may read it");
    }
}

// ---------------------------------------------------------------------------
// DKIM

fn ensure_dkimpy() {
    // A failure shows up as dkimpy's own error when it runs.
    let _ = crate::tools::ensure(&crate::tools::DKIMPY);
}

/// Runs dkimpy on `message` with `record` as the only DNS answer.
fn dkimpy_verifies(message: &[u8], record: &str) -> (bool, String) {
    ensure_dkimpy();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message).expect("message written");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/dkim_verify.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&path)
        .arg(record)
        .output()
        .expect("python3 runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

async fn signed_confirmation_verifies(algorithm: &str) {
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = keys.path().join("s1.key");
    let generated = Command::new(kontor_binary())
        .args([
            "dkim",
            "generate",
            "--selector",
            "s1",
            "--algorithm",
            algorithm,
            "--out",
        ])
        .arg(&key_file)
        .env("KONTOR_LOG", "warn")
        .output()
        .expect("dkim generate runs");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let record = String::from_utf8(generated.stdout).expect("utf-8");
    let record = record.trim();
    assert!(
        record.starts_with(&format!("v=DKIM1; k={algorithm}; p=")),
        "{record}"
    );
    let sink = SmtpSink::start();
    let app = TestApp::spawn_with(TestConfig {
        outbound_toml: format!(
            "{}dkim_selector = \"s1\"\ndkim_private_key_file = {:?}\n",
            sink.outbound_toml(),
            key_file.display().to_string()
        ),
        ..TestConfig::default()
    })
    .await;
    app.create_ticket(&json!({"subject": "Kasse „2“ startet nicht — bitte prüfen",
                              "body": "Seit heute früh.\nGrüße", "requester_email": "maria@mueller.example"}))
        .await;
    let message = sink.wait_for_mail_to("maria@mueller.example", 1).await;
    let signature = message.header("DKIM-Signature").expect("a DKIM-Signature");
    assert!(signature.contains("d=support.example.com"), "{signature}");
    assert!(signature.contains("s=s1"), "{signature}");
    let (verified, report) = dkimpy_verifies(&message.raw, record);
    assert!(
        verified,
        "dkimpy did not verify the {algorithm} signature: {report}"
    );
    // And a changed message fails, so the verifier really checked.
    let mut tampered = message.raw.clone();
    tampered.extend_from_slice(b"Added on the way.\r\n");
    let (verified, _) = dkimpy_verifies(&tampered, record);
    assert!(!verified, "a changed body still verified");
}

#[tokio::test]
async fn outbound_mail_is_dkim_signed_with_ed25519_and_verifies_independently() {
    signed_confirmation_verifies("ed25519").await;
}

#[tokio::test]
async fn outbound_mail_is_dkim_signed_with_rsa_and_verifies_independently() {
    signed_confirmation_verifies("rsa").await;
}
