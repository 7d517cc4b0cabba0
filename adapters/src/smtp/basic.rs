//! The housekeeping verbs: RSET, NOOP, QUIT, VRFY, HELP.

use super::session::{Next, Session};

impl Session {
    pub(super) fn rset(&mut self) -> Next {
        self.tx = None;
        self.reply(250, "2.0.0", "OK");
        Next::Continue
    }

    pub(super) fn noop(&mut self) -> Next {
        self.reply(250, "2.0.0", "OK");
        Next::Continue
    }

    pub(super) fn quit(&mut self) -> Next {
        let text = format!("{} closing connection", self.cfg.hostname);
        self.reply(221, "2.0.0", &text);
        Next::Close
    }

    /// Never confirms mailboxes (RFC 5321 3.5.3 allows 252), so VRFY cannot
    /// be used to harvest addresses.
    pub(super) fn vrfy(&mut self, args: &str) -> Next {
        if args.trim().is_empty() {
            self.error(501, "5.5.4", "VRFY requires an argument");
        } else {
            self.reply(
                252,
                "2.5.0",
                "cannot VRFY user, but will accept message and attempt delivery",
            );
        }
        Next::Continue
    }

    pub(super) fn help(&mut self) -> Next {
        self.reply(
            214,
            "2.0.0",
            "commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
        );
        Next::Continue
    }
}
