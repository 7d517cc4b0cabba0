//! Raw mail and attachments as files under the data dir (`<data_dir>/blobs`):
//! downloaded byte for byte, kept out of the sled store, durable against SIGKILL,
//! carried by export and import, and checked by `kontor verify`.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::inbound::{smtp, smtp_app, tickets, SUPPORT};
use crate::support::*;

/// Bytes no other test writes, from a fixed seed: a plain xorshift, so a slice of
/// them found anywhere came from this attachment.
fn attachment_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A message with `bytes` as the attachment `messwerte.bin`.
fn mail_with_attachment(message_id: &str, bytes: &[u8]) -> String {
    let encoded = BASE64.encode(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "From: Ana <ana@kunde.example>\r\nTo: {SUPPORT}\r\nSubject: Messwerte der Waage\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei die Messwerte.\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"messwerte.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the blob of `bytes` lives.
fn blob_path(data_dir: &Path, bytes: &[u8]) -> PathBuf {
    let hex = sha256_hex(bytes);
    data_dir.join("blobs").join(&hex[..2]).join(hex)
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// True when some file under `dir` holds `needle`.
fn any_file_holds(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir).iter().any(|path| {
        std::fs::read(path)
            .map(|bytes| bytes.windows(needle.len()).any(|window| window == needle))
            .unwrap_or(false)
    })
}

/// The one ticket's first message's attachment named `messwerte.bin`, downloaded.
async fn download_attachment(app: &TestApp) -> (StatusCode, Vec<u8>) {
    let list = tickets(app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let history = app.history(list[0]["id"].as_str().unwrap()).await;
    let attachment = history[0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"] == "messwerte.bin")
        .cloned()
        .expect("the attachment is listed");
    let id = attachment["id"].as_str().unwrap();
    app.get_bytes(&format!("/api/v1/attachments/{id}")).await
}

/// The `raw_mail` pairs of an export: (key, bytes).
fn raw_mail_of(dump: &[u8]) -> Vec<(String, Vec<u8>)> {
    String::from_utf8_lossy(dump)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["tree"] == "raw_mail")
        .map(|line| {
            (
                line["key"].as_str().unwrap().to_string(),
                BASE64.decode(line["bytes"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_mailed_attachment_is_a_file_in_the_data_dir_not_in_the_store_and_survives_a_sigkill() {
    let mut app = smtp_app("").await;
    let bytes = attachment_bytes(0x5eed_0001, 48 * 1024);
    let raw = mail_with_attachment("blob-1@kunde.example", &bytes);
    smtp(&app, "ana@kunde.example", SUPPORT, &raw).await;
    // Killed right after the 250: no shutdown, no flush.
    app.kill();

    let data_dir = app.data_dir();
    assert_eq!(std::fs::read(blob_path(&data_dir, &bytes)).unwrap(), bytes);
    assert_eq!(
        std::fs::read(blob_path(&data_dir, raw.as_bytes())).unwrap(),
        raw.as_bytes()
    );
    // Neither the attachment nor the raw message (its base64 lines) is in sled.
    assert!(!any_file_holds(&data_dir.join("store"), &bytes[1000..1064]));
    let base64_line = raw.lines().find(|line| line.len() == 76).unwrap();
    assert!(!any_file_holds(
        &data_dir.join("store"),
        base64_line.as_bytes()
    ));

    app.start(false).await.unwrap();
    let (status, downloaded) = download_attachment(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert!(downloaded == bytes, "the attachment changed on its way");
    // The raw message is kept as received: the export carries it.
    let export = app.command(&["export"]);
    assert!(export.status.success());
    let raw_mail = raw_mail_of(&export.stdout);
    assert_eq!(
        raw_mail,
        vec![(sha256_hex(raw.as_bytes()), raw.as_bytes().to_vec())]
    );
}

#[tokio::test]
async fn export_then_import_carries_the_blobs_and_exports_identically() {
    let mut app = smtp_app("").await;
    let bytes = attachment_bytes(0x5eed_0002, 20 * 1024);
    let raw = mail_with_attachment("blob-2@kunde.example", &bytes);
    smtp(&app, "ana@kunde.example", SUPPORT, &raw).await;
    app.terminate();
    let first = app.command(&["export"]);
    assert!(first.status.success());

    let other = tempfile::tempdir().unwrap();
    let other_data = other.path().join("data");
    let other_config = other.path().join("kontor.toml");
    std::fs::write(
        &other_config,
        format!("data_dir = {:?}\n", other_data.display().to_string()),
    )
    .unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut child = std::process::Command::new(kontor_binary())
            .args(args)
            .arg("--config")
            .arg(&other_config)
            .env("KONTOR_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let imported = run(&["import"], &first.stdout);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert_eq!(
        std::fs::read(blob_path(&other_data, &bytes)).unwrap(),
        bytes
    );
    assert_eq!(
        std::fs::read(blob_path(&other_data, raw.as_bytes())).unwrap(),
        raw.as_bytes()
    );
    let second = run(&["export"], b"");
    assert!(second.status.success());
    assert!(
        first.stdout == second.stdout,
        "the second export differs from the first"
    );
    let verified = run(&["verify"], b"");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // A server on the imported data dir serves the attachment.
    let original = std::fs::read_to_string(&app.config_path).unwrap();
    let rewritten: Vec<String> = original
        .lines()
        .map(|line| {
            if line.starts_with("data_dir") {
                format!("data_dir = {:?}", other_data.display().to_string())
            } else {
                line.to_string()
            }
        })
        .collect();
    std::fs::write(&app.config_path, rewritten.join("\n")).unwrap();
    app.start(false).await.unwrap();
    let (status, downloaded) = download_attachment(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert!(downloaded == bytes);
}

#[tokio::test]
async fn verify_names_a_changed_or_missing_blob_and_lists_and_removes_orphans() {
    let mut app = smtp_app("").await;
    let bytes = attachment_bytes(0x5eed_0003, 4 * 1024);
    let raw = mail_with_attachment("blob-3@kunde.example", &bytes);
    smtp(&app, "ana@kunde.example", SUPPORT, &raw).await;
    app.terminate();
    let data_dir = app.data_dir();

    let clean = app.command(&["verify"]);
    let out = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert!(clean.status.success(), "{out}");
    assert!(out.contains("stored blobs"), "{out}");
    assert!(!out.contains("orphan"), "{out}");

    // A file nothing names: what a write interrupted before its commit leaves.
    let orphan = b"an attachment whose transaction failed".to_vec();
    let orphan_path = blob_path(&data_dir, &orphan);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, &orphan).unwrap();
    let listed = app.command(&["verify"]);
    let out = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.status.success(), "{out}");
    assert!(out.contains(&sha256_hex(&orphan)), "{out}");
    let removed = app.command(&["verify", "--remove-orphans"]);
    assert!(removed.status.success());
    assert!(!orphan_path.exists());

    // A changed attachment file: verify fails naming it; the API answers 500.
    let attachment_path = blob_path(&data_dir, &bytes);
    let mut changed = bytes.clone();
    changed[100] ^= 0xff;
    std::fs::write(&attachment_path, &changed).unwrap();
    let damaged = app.command(&["verify"]);
    let err = String::from_utf8_lossy(&damaged.stderr).into_owned();
    assert!(!damaged.status.success());
    assert!(
        err.contains(&sha256_hex(&bytes)) && err.contains("damaged"),
        "{err}"
    );

    app.start(false).await.unwrap();
    let (status, _) = download_attachment(&app).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    app.terminate();

    // A missing raw message.
    std::fs::write(&attachment_path, &bytes).unwrap();
    std::fs::remove_file(blob_path(&data_dir, raw.as_bytes())).unwrap();
    let missing = app.command(&["verify"]);
    let err = String::from_utf8_lossy(&missing.stderr).into_owned();
    assert!(!missing.status.success());
    assert!(
        err.contains(&sha256_hex(raw.as_bytes())) && err.contains("missing"),
        "{err}"
    );
}
