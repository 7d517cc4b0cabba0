//! MAIL FROM with the SIZE, BODY and SMTPUTF8 parameters.

use super::address::parse_path;
use super::session::{Next, Session, Transaction};

/// Strips a case-insensitive keyword such as `FROM:`, tolerating spaces
/// before the colon as many clients send them.
pub(super) fn strip_keyword<'a>(args: &'a str, keyword: &str) -> Option<&'a str> {
    let args = args.trim_start_matches(' ');
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    args[keyword.len()..]
        .trim_start_matches(' ')
        .strip_prefix(':')
}

impl Session {
    pub(super) fn mail(&mut self, args: &str) -> Next {
        if !self.greeted {
            self.error(503, "5.5.1", "send EHLO or HELO first");
            return Next::Continue;
        }
        if self.tx.is_some() {
            self.error(503, "5.5.1", "nested MAIL command");
            return Next::Continue;
        }
        let Some(path) = strip_keyword(args, "FROM") else {
            self.error(501, "5.5.4", "syntax: MAIL FROM:<address>");
            return Next::Continue;
        };
        let Some((mail_from, params)) = parse_path(path, false) else {
            self.error(501, "5.1.7", "bad sender address syntax");
            return Next::Continue;
        };

        let mut declared_size = None;
        for param in params.split_ascii_whitespace() {
            let (key, value) = match param.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (param, None),
            };
            match (key.to_ascii_uppercase().as_str(), value) {
                ("SIZE", Some(value))
                    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    // Digits too many for u64 are over any limit as well.
                    let size = value.parse::<u64>().unwrap_or(u64::MAX);
                    if size > self.cfg.max_message_bytes as u64 {
                        self.reply(
                            552,
                            "5.3.4",
                            "message size exceeds fixed maximum message size",
                        );
                        return Next::Continue;
                    }
                    declared_size = usize::try_from(size).ok();
                }
                ("BODY", Some(value))
                    if value.eq_ignore_ascii_case("7BIT")
                        || value.eq_ignore_ascii_case("8BITMIME") => {}
                ("SMTPUTF8", None) => {}
                ("SIZE" | "BODY" | "SMTPUTF8", _) => {
                    self.error(501, "5.5.4", "invalid parameter value");
                    return Next::Continue;
                }
                _ => {
                    self.error(555, "5.5.4", "unsupported parameter");
                    return Next::Continue;
                }
            }
        }

        self.tx = Some(Transaction {
            mail_from,
            rcpt_to: Vec::new(),
            declared_size,
        });
        self.reply(250, "2.1.0", "sender OK");
        Next::Continue
    }
}
