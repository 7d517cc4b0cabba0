//! RCPT TO.

use super::address::parse_path;
use super::mail::strip_keyword;
use super::session::{Next, Session};
use super::RcptVerdict;

impl Session {
    pub(super) fn rcpt(&mut self, args: &str) -> Next {
        let Some(count) = self.tx.as_ref().map(|tx| tx.rcpt_to.len()) else {
            self.error(503, "5.5.1", "need MAIL before RCPT");
            return Next::Continue;
        };
        let Some(path) = strip_keyword(args, "TO") else {
            self.error(501, "5.5.4", "syntax: RCPT TO:<address>");
            return Next::Continue;
        };
        let address = match parse_path(path, true) {
            Some((address, params)) if !address.is_empty() => {
                if !params.trim().is_empty() {
                    // No DSN or other RCPT extension is advertised.
                    self.error(555, "5.5.4", "unsupported parameter");
                    return Next::Continue;
                }
                address
            }
            _ => {
                self.error(501, "5.1.3", "bad recipient address syntax");
                return Next::Continue;
            }
        };
        if count >= self.cfg.max_recipients {
            // Not an error: the client is expected to send the rest later.
            self.reply(452, "4.5.3", "too many recipients");
            return Next::Continue;
        }
        match self.sink.check_recipient(&address) {
            RcptVerdict::Accept => {
                if let Some(tx) = self.tx.as_mut() {
                    // A duplicate would make the sink store the message twice.
                    if !tx.rcpt_to.contains(&address) {
                        tx.rcpt_to.push(address);
                    }
                }
                self.reply(250, "2.1.5", "recipient OK");
            }
            // Counted as an error so address harvesting runs into MAX_ERRORS.
            RcptVerdict::RejectNotOurs => self.error(550, "5.1.1", "mailbox unavailable"),
        }
        Next::Continue
    }
}
