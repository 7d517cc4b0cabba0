//! A small SMTP client over a raw socket, for tests that need the reply codes
//! (the SIGKILL burst, malformed input) or many connections at once. Tests that
//! only need "an ordinary client" use lettre or Python's smtplib.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Generous: a test fails instead of hanging when the server stops answering.
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

pub struct SmtpSession {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl SmtpSession {
    /// Connects and reads the greeting; `Err` when the server is gone.
    pub async fn connect(address: SocketAddr) -> std::io::Result<(SmtpSession, String)> {
        let stream = TcpStream::connect(address).await?;
        let (read, write) = stream.into_split();
        let mut session = SmtpSession {
            reader: BufReader::new(read),
            writer: write,
        };
        let greeting = session.reply().await?;
        Ok((session, greeting))
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.writer.write_all(bytes.as_ref()).await
    }

    /// One whole reply (continuation lines included); an error on EOF.
    pub async fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(REPLY_WAIT, self.reader.read_line(&mut line))
                .await
                .map_err(|_| std::io::Error::other("no reply in time"))??;
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("closed after {all:?}"),
                ));
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(all);
            }
        }
    }

    /// Sends a command and returns the reply.
    pub async fn command(&mut self, line: &str) -> std::io::Result<String> {
        self.send(format!("{line}\r\n")).await?;
        self.reply().await
    }

    /// One message transaction; returns the reply to the final dot (or the first
    /// refusal on the way).
    pub async fn deliver(&mut self, from: &str, to: &str, raw: &[u8]) -> std::io::Result<String> {
        let reply = self.command(&format!("MAIL FROM:<{from}>")).await?;
        if !reply.starts_with("250") {
            return Ok(reply);
        }
        let reply = self.command(&format!("RCPT TO:<{to}>")).await?;
        if !reply.starts_with("250") {
            self.command("RSET").await?;
            return Ok(reply);
        }
        let reply = self.command("DATA").await?;
        if !reply.starts_with("354") {
            return Ok(reply);
        }
        self.send(dot_stuff(raw)).await?;
        self.reply().await
    }
}

/// Sends one message in a session of its own; the reply to the final dot.
pub async fn send_one(
    address: SocketAddr,
    from: &str,
    to: &str,
    raw: &[u8],
) -> std::io::Result<String> {
    let (mut session, _) = SmtpSession::connect(address).await?;
    session.command("EHLO test.example").await?;
    let reply = session.deliver(from, to, raw).await?;
    let _ = session.command("QUIT").await;
    Ok(reply)
}

/// The DATA payload: CRLF lines, leading dots doubled, `.` line at the end.
pub fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut body = raw;
    while body.last() == Some(&b'\n') || body.last() == Some(&b'\r') {
        body = &body[..body.len() - 1];
    }
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}
