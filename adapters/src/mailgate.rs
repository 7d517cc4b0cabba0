//! `kontor mailgate --url URL --key-file PATH [--ca-file PEM]`: one message from
//! stdin to `POST /api/v1/inbound/email`, for MTA pipes (Postfix `pipe`, procmail,
//! fetchmail). The exit code tells the MTA what to do with the message:
//! 0 delivered, 65 (EX_DATAERR) refused for good so bounce it, 75 (EX_TEMPFAIL)
//! keep it queued and try later.
//!
//! `https://` URLs go over rustls (`crate::tls`): the Mozilla roots, and the CA file's
//! certificates for a server with a certificate of its own. A certificate that is not
//! trusted is a 75, like every failure of ours: the mail waits in the MTA's queue
//! until the setting is fixed, and is not bounced to its sender.

use std::path::PathBuf;
use std::time::Duration;

use crate::tls::{self, ClientSettings};

/// Delivered: the server stored the message (whatever its outcome).
pub const EX_OK: u8 = 0;
/// The server refused the message for good (too large, not a message).
pub const EX_DATAERR: u8 = 65;
/// Try later: the server is down, overloaded, failing, or we are misconfigured.
pub const EX_TEMPFAIL: u8 = 75;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored; the server's JSON answer.
    Delivered(String),
    /// Refused for good, with the reason.
    Rejected(String),
    /// Not stored now; the MTA should retry.
    TryLater(String),
}

impl Delivery {
    /// The sysexits code for the MTA.
    pub fn exit_code(&self) -> u8 {
        match self {
            Delivery::Delivered(_) => EX_OK,
            Delivery::Rejected(_) => EX_DATAERR,
            Delivery::TryLater(_) => EX_TEMPFAIL,
        }
    }
}

/// The intake URL: `--url` may be the server's base URL or the full route.
pub fn intake_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.ends_with("/api/v1/inbound/email") {
        url.to_string()
    } else {
        format!("{url}/api/v1/inbound/email")
    }
}

/// Where and how the mailgate delivers. No `Debug`: it holds the key.
#[derive(Clone)]
pub struct Gate {
    /// The server's base URL or the intake route, http:// or https://.
    pub url: String,
    /// A staff API key.
    pub key: String,
    /// PEM certificates trusted besides the Mozilla roots.
    pub ca_file: Option<PathBuf>,
}

/// A large message over a slow link still fits; a server that hangs does not hold
/// the MTA's pipe for ever.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Posts `raw` to the gate's intake.
pub async fn deliver(gate: &Gate, raw: Vec<u8>) -> Delivery {
    let url = gate.url.as_str();
    let settings = ClientSettings {
        ca_file: gate.ca_file.clone(),
        timeout: Some(TIMEOUT),
        user_agent: Some(concat!("kontor-mailgate/", env!("CARGO_PKG_VERSION")).into()),
        no_redirects: true,
    };
    let client = match tls::http_client(&settings) {
        Ok(client) => client,
        Err(error) => return Delivery::TryLater(error.to_string()),
    };
    let response = client
        .post(intake_url(url))
        .bearer_auth(&gate.key)
        .header("content-type", "message/rfc822")
        .body(raw)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            return Delivery::TryLater(format!("cannot reach {url}: {}", tls::describe(&error)))
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body_line: String = body.replace(['\r', '\n'], " ").chars().take(300).collect();
    if status.is_success() {
        Delivery::Delivered(body_line)
    } else if matches!(status.as_u16(), 400 | 413 | 415 | 422) {
        Delivery::Rejected(format!(
            "the server refused the message ({status}): {body_line}"
        ))
    } else {
        // 401/403 and 404 are our configuration, 5xx and 429 the server's state:
        // either way the message must stay queued, not bounce.
        Delivery::TryLater(format!("the server answered {status}: {body_line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_may_be_the_base_or_the_route() {
        assert_eq!(
            intake_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080/api/v1/inbound/email"
        );
        assert_eq!(
            intake_url("http://h/api/v1/inbound/email"),
            "http://h/api/v1/inbound/email"
        );
    }
}
