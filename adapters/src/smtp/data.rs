//! DATA: receives the message and hands it to the sink.

use super::io::Line;
use super::limits::{MAX_PREALLOC, ONE_STEP_ABOVE};
use super::session::{sanitize, Next, Session};
use super::{DeliveryVerdict, Envelope};

/// How the DATA phase ended on the wire.
enum Body {
    Complete(Vec<u8>),
    /// Read to the end but discarded for exceeding `max_message_bytes`.
    TooBig,
    LineTooLong,
    Closed,
}

impl Session {
    pub(super) async fn data(&mut self, args: &str) -> Next {
        if !args.trim().is_empty() {
            self.error(501, "5.5.4", "DATA takes no parameters");
            return Next::Continue;
        }
        let Some(tx) = self.tx.as_ref() else {
            self.error(503, "5.5.1", "need MAIL and RCPT before DATA");
            return Next::Continue;
        };
        if tx.rcpt_to.is_empty() {
            // With PIPELINING all RCPTs may have failed; this stops the client
            // from sending the body (RFC 2920 3.1). LMTP says 503 (RFC 2033 4.2).
            let code = if self.cfg.lmtp { 503 } else { 554 };
            self.error(code, "5.5.1", "no valid recipients");
            return Next::Continue;
        }
        let recipients = tx.rcpt_to.len();
        let hint = tx.declared_size.unwrap_or(0);
        self.conn.queue(b"354 End data with <CR><LF>.<CR><LF>\r\n");

        let body = tokio::time::timeout(self.cfg.data_timeout, self.receive(hint)).await;
        let Some(tx) = self.tx.take() else {
            return Next::Close;
        };
        let data = match body {
            Err(_) => {
                self.reply(
                    421,
                    "4.4.2",
                    "timeout waiting for message data, closing connection",
                );
                return Next::Close;
            }
            Ok(Err(err)) => {
                tracing::debug!(peer = %self.peer, %err, "smtp read failed in DATA");
                return Next::Close;
            }
            Ok(Ok(Body::Closed)) => return Next::Close,
            Ok(Ok(Body::LineTooLong)) => {
                self.reply(500, "5.5.2", "line too long");
                return Next::Close;
            }
            Ok(Ok(Body::TooBig)) => {
                for _ in 0..self.replies_after_data(recipients) {
                    self.reply(
                        552,
                        "5.3.4",
                        "message size exceeds fixed maximum message size",
                    );
                }
                return Next::Continue;
            }
            Ok(Ok(Body::Complete(data))) => data,
        };

        let envelope = Envelope {
            mail_from: tx.mail_from,
            rcpt_to: tx.rcpt_to,
            data,
            peer: self.peer,
        };
        let rcpt_to = envelope.rcpt_to.clone();
        let verdict = self.sink.deliver(envelope).await;
        // One message, stored once for all its recipients: in LMTP every recipient
        // gets the one outcome, each line naming its address (RFC 2033 4.2).
        for index in 0..self.replies_after_data(recipients) {
            let about = match rcpt_to.get(index) {
                Some(address) if self.cfg.lmtp => format!("<{}> ", sanitize(address)),
                _ => String::new(),
            };
            match &verdict {
                DeliveryVerdict::Stored => self.reply(
                    250,
                    "2.0.0",
                    &format!("{about}message accepted for delivery"),
                ),
                DeliveryVerdict::TempFail(reason) => {
                    self.reply(451, "4.3.0", &format!("{about}{}", sanitize(reason)))
                }
                DeliveryVerdict::InsufficientStorage => self.reply(
                    452,
                    "4.3.1",
                    &format!("{about}insufficient system storage, try again later"),
                ),
                DeliveryVerdict::Rejected(reason) => {
                    self.reply(554, "5.6.0", &format!("{about}{}", sanitize(reason)))
                }
            }
        }
        Next::Continue
    }

    /// How many replies end the DATA phase: one in SMTP, one per accepted
    /// recipient in LMTP.
    fn replies_after_data(&self, recipients: usize) -> usize {
        if self.cfg.lmtp {
            recipients
        } else {
            1
        }
    }

    /// Reads up to `<CRLF>.<CRLF>`, unstuffing dots. Only a bare `.` line
    /// after a CRLF-terminated line ends the message: treating `\n.\n` or
    /// `\n.\r\n` as the end would enable SMTP smuggling. Oversized messages
    /// are read to the end but not kept, so the peer gets a clean 552.
    async fn receive(&mut self, size_hint: usize) -> std::io::Result<Body> {
        let max_message = self.cfg.max_message_bytes;
        let max_line = self.cfg.max_line_bytes;
        let mut data = Vec::with_capacity(size_hint.min(max_message).min(MAX_PREALLOC));
        let mut discard = Vec::new();
        let mut too_big = false;
        // The CRLF ending the DATA command counts as the one before the dot.
        let mut after_crlf = true;
        loop {
            let buf = if too_big {
                discard.clear();
                &mut discard
            } else {
                // Past 1 MiB the rest of the allowance is taken in one step:
                // doubling copies a buffer of up to half the limit at each step,
                // and jemalloc, which copies large reallocations, then holds both
                // (a 25 MiB message peaked at 42 MiB). Pages not written to stay
                // virtual, so the step costs only what the message fills.
                let allowance = max_message + max_line;
                if data.len() >= ONE_STEP_ABOVE && data.capacity() < allowance {
                    data.reserve_exact(allowance - data.len());
                }
                &mut data
            };
            let start = buf.len();
            match self.conn.read_line(buf, max_line).await? {
                Line::Complete => {}
                Line::Eof => return Ok(Body::Closed),
                Line::TooLong => return Ok(Body::LineTooLong),
            }
            let line = &buf[start..];
            if after_crlf && line == b".\r\n" {
                buf.truncate(start);
                break;
            }
            after_crlf = line.ends_with(b"\r\n");
            if line.first() == Some(&b'.') {
                buf.remove(start);
            }
            if !too_big && data.len() > max_message {
                too_big = true;
                data = Vec::new();
            }
        }
        Ok(if too_big {
            Body::TooBig
        } else {
            Body::Complete(data)
        })
    }
}
