//! Inbound SMTP listener (RFC 5321 subset) for mail handed over by an MTA.
//!
//! No TLS and no AUTH: this listener is meant to sit behind a relay the
//! operator controls. The server accepts a message, hands it to a
//! [`MailSink`], and only answers `250` to `DATA` once the sink reports the
//! message as stored, so a crash never loses mail the peer believes delivered.
//!
//! The same session speaks LMTP (RFC 2033) when [`SmtpConfig::lmtp`] is set, on a
//! TCP port or a unix socket ([`Listener`]): `LHLO`, and a reply per recipient
//! after DATA, each given only once the message is stored.
//!
//! Layout follows the verbs: `session` runs one connection, `ehlo`, `mail`,
//! `rcpt`, `data` and `basic` implement the commands, `address` parses
//! paths, `io` frames lines, `limits` holds fixed policy numbers and
//! `server` accepts connections.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

mod address;
mod basic;
mod data;
mod ehlo;
mod io;
mod limits;
mod mail;
mod rcpt;
mod server;
mod session;
#[cfg(test)]
mod tests;

pub use server::{serve, Listener};

/// Listener configuration.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Name announced in the greeting and the EHLO reply.
    pub hostname: String,
    /// Largest accepted message, counted after dot-unstuffing; advertised as `SIZE`.
    pub max_message_bytes: usize,
    /// Longest accepted line (command or message), line terminator excluded.
    /// Longer than RFC 5321's 998 on purpose, like Postfix, because real mail
    /// breaks that rule routinely.
    pub max_line_bytes: usize,
    /// Most `RCPT TO` accepted in one transaction; more get `452`.
    pub max_recipients: usize,
    /// How long the server waits for each command line.
    pub idle_timeout: Duration,
    /// How long the whole DATA phase (354 to the final dot) may take.
    pub data_timeout: Duration,
    /// Most sessions served at once; extra connections get `421` and are closed.
    pub max_connections: usize,
    /// Speak LMTP (RFC 2033) instead: `LHLO` instead of `EHLO`, and after DATA one
    /// reply per accepted recipient. Every other rule is the SMTP listener's.
    pub lmtp: bool,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_owned(),
            max_message_bytes: 25 * 1024 * 1024,
            max_line_bytes: 64 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            max_connections: 1000,
            lmtp: false,
        }
    }
}

/// One accepted message as received from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Reverse path without angle brackets; `""` for the null sender `<>`.
    pub mail_from: String,
    /// Forward paths the sink accepted, without angle brackets, as sent.
    pub rcpt_to: Vec<String>,
    /// Message content, dot-unstuffed, line endings exactly as received.
    pub data: Vec<u8>,
    /// Address of the connecting peer.
    pub peer: SocketAddr,
}

/// Answer of [`MailSink::check_recipient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    /// Mail for this address is welcome (`250`).
    Accept,
    /// Not a mailbox this system serves (`550 5.1.1`).
    RejectNotOurs,
}

/// Answer of [`MailSink::deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryVerdict {
    /// The message is durably stored (`250`).
    Stored,
    /// Could not store now, the peer should retry (`451 4.3.0`).
    TempFail(String),
    /// Out of disk space, the peer should retry later (`452 4.3.1`).
    InsufficientStorage,
    /// Refused for good (`554 5.6.0`).
    Rejected(String),
}

/// Where accepted mail goes.
pub trait MailSink: Send + Sync + 'static {
    /// Decides whether `address` (as sent, without brackets) is local.
    /// Called on the session task, so it must be quick and must not block.
    fn check_recipient(&self, address: &str) -> RcptVerdict;

    /// Stores a complete message. The peer gets `250` only after this
    /// returns [`DeliveryVerdict::Stored`]. The future can be dropped if the
    /// server shuts down and the grace period runs out.
    fn deliver(
        &self,
        envelope: Envelope,
    ) -> Pin<Box<dyn Future<Output = DeliveryVerdict> + Send + '_>>;
}
