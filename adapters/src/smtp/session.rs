//! One SMTP connection: greeting, command loop, dispatch and replies.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::debug;

use super::io::{terminator_len, Conn, Line, Stream};
use super::limits::MAX_ERRORS;
use super::{MailSink, SmtpConfig};

/// Whether the command loop goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    Continue,
    Close,
}

/// State of an open mail transaction (after a successful MAIL FROM).
#[derive(Debug)]
pub(super) struct Transaction {
    pub(super) mail_from: String,
    pub(super) rcpt_to: Vec<String>,
    /// `SIZE=` from MAIL FROM, used only as an allocation hint.
    pub(super) declared_size: Option<usize>,
}

pub(super) struct Session {
    pub(super) cfg: Arc<SmtpConfig>,
    pub(super) sink: Arc<dyn MailSink>,
    pub(super) peer: SocketAddr,
    pub(super) conn: Conn,
    /// Set once the peer introduced itself; MAIL is refused before that.
    pub(super) greeted: bool,
    pub(super) tx: Option<Transaction>,
    errors: u32,
}

/// Runs one session to completion; never returns an error because there is
/// nobody to report it to beyond the log.
pub(super) async fn run(
    stream: impl Stream,
    peer: SocketAddr,
    cfg: Arc<SmtpConfig>,
    sink: Arc<dyn MailSink>,
    mut stop: watch::Receiver<bool>,
) {
    debug!(%peer, "smtp session start");
    let mut session = Session {
        conn: Conn::new(stream),
        cfg,
        sink,
        peer,
        greeted: false,
        tx: None,
        errors: 0,
    };
    let greeting = if session.cfg.lmtp {
        format!("220 {} LMTP ready\r\n", session.cfg.hostname)
    } else {
        format!("220 {} ESMTP ready\r\n", session.cfg.hostname)
    };
    session.conn.queue(greeting.as_bytes());

    let mut line = Vec::with_capacity(256);
    loop {
        if session.errors >= MAX_ERRORS {
            session.reply(421, "4.7.0", "too many errors, closing connection");
            break;
        }
        line.clear();
        let max_line = session.cfg.max_line_bytes;
        let idle = session.cfg.idle_timeout;
        let read = tokio::select! {
            biased;
            _ = stop.changed() => {
                session.reply(421, "4.3.2", "service shutting down");
                break;
            }
            read = tokio::time::timeout(idle, session.conn.read_line(&mut line, max_line)) => read,
        };
        match read {
            Err(_) => {
                session.reply(421, "4.4.2", "idle timeout, closing connection");
                break;
            }
            Ok(Err(err)) => {
                debug!(%peer, %err, "smtp read failed");
                break;
            }
            Ok(Ok(Line::Eof)) => break,
            Ok(Ok(Line::TooLong)) => {
                session.reply(500, "5.5.2", "line too long");
                break;
            }
            Ok(Ok(Line::Complete)) => {}
        }
        if session.dispatch(&line).await == Next::Close {
            break;
        }
    }
    debug!(%peer, "smtp session end");
    session.conn.close().await;
}

impl Session {
    async fn dispatch(&mut self, raw: &[u8]) -> Next {
        let raw = &raw[..raw.len() - terminator_len(raw)];
        // Control bytes (NUL, stray CR, ESC) never belong in a command and
        // must not leak into replies or addresses.
        let text = match std::str::from_utf8(raw) {
            Ok(text) if !text.chars().any(|c| c.is_control() && c != '\t') => text,
            _ => {
                self.error(500, "5.5.2", "syntax error, invalid characters in command");
                return Next::Continue;
            }
        };
        let (verb, args) = match text.find([' ', '\t']) {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        let verb = verb.to_ascii_uppercase();
        match verb.as_str() {
            // RFC 2033 4.1: LMTP greets with LHLO only, so that a client that
            // mistook the port for SMTP learns it at once.
            "LHLO" if self.cfg.lmtp => self.ehlo(args),
            "EHLO" | "HELO" if self.cfg.lmtp => {
                self.error(500, "5.5.1", "this is LMTP: use LHLO");
                Next::Continue
            }
            "EHLO" => self.ehlo(args),
            "HELO" => self.helo(args),
            "MAIL" => self.mail(args),
            "RCPT" => self.rcpt(args),
            "DATA" => self.data(args).await,
            "RSET" => self.rset(),
            "NOOP" => self.noop(),
            "QUIT" => self.quit(),
            "VRFY" => self.vrfy(args),
            "HELP" => self.help(),
            "EXPN" | "BDAT" | "STARTTLS" | "AUTH" | "ETRN" | "TURN" | "ATRN" => {
                self.error(502, "5.5.1", "command not implemented");
                Next::Continue
            }
            _ => {
                self.error(500, "5.5.1", "command unrecognized");
                Next::Continue
            }
        }
    }

    /// Queues a single-line reply; `status` is the RFC 3463 enhanced code.
    pub(super) fn reply(&mut self, code: u16, status: &str, text: &str) {
        let line = format!("{code} {status} {text}\r\n");
        self.conn.queue(line.as_bytes());
    }

    /// A reply that counts towards [`MAX_ERRORS`].
    pub(super) fn error(&mut self, code: u16, status: &str, text: &str) {
        self.errors += 1;
        self.reply(code, status, text);
    }
}

/// Makes text from outside (the sink) safe to put in a reply line: no CR/LF
/// that could forge extra replies, bounded length.
pub(super) fn sanitize(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    if clean.trim().is_empty() {
        "no reason given".to_owned()
    } else {
        clean
    }
}
