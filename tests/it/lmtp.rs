//! The LMTP listener with a real LMTP client (Python's `smtplib.LMTP`), over TCP and
//! over a unix socket: LHLO, one reply per recipient after DATA (RFC 2033), and the
//! ticket visible through the API once the replies came.

use std::process::Command;

use serde_json::Value;

use crate::inbound::tickets;
use crate::support::{TestApp, TestConfig};

const SUPPORT: &str = "support@support.example.com";

/// Runs an LMTP session from Python; `target` is `host', port` or `'/path'`. Prints
/// the replies as JSON: LHLO, each RCPT, and every reply after DATA.
fn lmtp_session(target: &str, recipients: &[&str], message: &str) -> Value {
    let script = format!(
        r#"
import json, smtplib
s = smtplib.LMTP({target})
out = {{}}
out["lhlo"] = s.ehlo()[0]
s.mail("maria@cafe.example")
out["rcpt"] = [s.rcpt(r)[0] for r in {recipients:?}]
accepted = sum(1 for code in out["rcpt"] if code == 250)
data = [s.data({message:?}.encode())]
# LMTP: one reply per accepted recipient; smtplib reads the first one only.
for _ in range(accepted - 1):
    data.append(s.getreply())
out["data"] = [[code, text.decode()] for code, text in data]
s.quit()
print(json.dumps(out))
"#
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

fn message(subject: &str, message_id: &str) -> String {
    format!(
        "From: Maria Müller <maria@cafe.example>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDie Kasse bleibt beim Logo stehen.\r\n"
    )
}

#[tokio::test]
async fn postfix_style_lmtp_over_tcp_answers_each_recipient_after_the_message_is_stored() {
    let app = TestApp::spawn_with(TestConfig {
        inbound_toml: "lmtp_listen = \"127.0.0.1:0\"".into(),
        ..TestConfig::default()
    })
    .await;
    let address: std::net::SocketAddr = app
        .lmtp_address
        .as_deref()
        .expect("the server printed its lmtp line")
        .parse()
        .expect("an address");
    let replies = lmtp_session(
        &format!("'{}', {}", address.ip(), address.port()),
        &[
            SUPPORT,
            "someone@elsewhere.example",
            "Support@Support.Example.com",
        ],
        &message("Kasse startet nicht", "lmtp-1@cafe.example"),
    );
    assert_eq!(replies["lhlo"], 250, "{replies}");
    assert_eq!(replies["rcpt"], serde_json::json!([250, 550, 250]));
    let data = replies["data"].as_array().expect("data replies");
    assert_eq!(data.len(), 2, "one reply per accepted recipient: {replies}");
    assert!(data.iter().all(|reply| reply[0] == 250), "{replies}");
    assert!(data[0][1].as_str().unwrap().contains(SUPPORT), "{replies}");

    // Answered only once stored: the ticket is there now, once.
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["subject"], "Kasse startet nicht");
    assert_eq!(list[0]["channel"], "email");

    // The same message again is a duplicate, still answered 250 for each recipient.
    let again = lmtp_session(
        &format!("'{}', {}", address.ip(), address.port()),
        &[SUPPORT],
        &message("Kasse startet nicht", "lmtp-1@cafe.example"),
    );
    assert_eq!(again["data"][0][0], 250);
    assert_eq!(tickets(&app).await.len(), 1);
}

#[tokio::test]
async fn lmtp_listens_on_a_unix_socket_for_a_local_mta() {
    let sockets = tempfile::tempdir().expect("temp dir");
    let path = sockets.path().join("lmtp.sock");
    let app = TestApp::spawn_with(TestConfig {
        inbound_toml: format!("lmtp_listen = {:?}", path.display().to_string()),
        ..TestConfig::default()
    })
    .await;
    assert_eq!(
        app.lmtp_address.as_deref(),
        Some(path.display().to_string().as_str())
    );
    let replies = lmtp_session(
        &format!("{:?}", path.display().to_string()),
        &[SUPPORT],
        &message("Über den Socket", "lmtp-socket@cafe.example"),
    );
    assert_eq!(replies["data"][0][0], 250, "{replies}");
    let list = tickets(&app).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["subject"], "Über den Socket");
}
