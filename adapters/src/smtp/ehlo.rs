//! EHLO and HELO.

use super::session::{Next, Session};

impl Session {
    pub(super) fn ehlo(&mut self, args: &str) -> Next {
        if args.trim().is_empty() {
            self.error(501, "5.5.4", "EHLO requires a domain or address literal");
            return Next::Continue;
        }
        // RFC 5321 4.1.4: EHLO resets any transaction in progress.
        self.tx = None;
        self.greeted = true;
        let reply = format!(
            "250-{}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE {}\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n",
            self.cfg.hostname, self.cfg.max_message_bytes
        );
        self.conn.queue(reply.as_bytes());
        Next::Continue
    }

    pub(super) fn helo(&mut self, args: &str) -> Next {
        if args.trim().is_empty() {
            self.error(501, "5.5.4", "HELO requires a domain");
            return Next::Continue;
        }
        self.tx = None;
        self.greeted = true;
        let reply = format!("250 {}\r\n", self.cfg.hostname);
        self.conn.queue(reply.as_bytes());
        Next::Continue
    }
}
