//! Text handling for incoming mail: choosing the readable body, stripping
//! quoted history from replies, making HTML safe to display and telling
//! people from robots.
//!
//! Dependencies and why:
//! - `mail-parser` 0.11.9 (pinned: 1.x needs a newer Rust) parses MIME and
//!   decodes charsets and transfer encodings.
//! - `ammonia` sanitises HTML with a whitelist; writing a sanitiser by hand is
//!   how XSS holes are made.
//! - `html5ever` is the tokenizer ammonia already builds on (same version, so
//!   no extra compile time); `html_to_text` uses it so entities, comments and
//!   raw-text elements follow the HTML spec instead of a hand-rolled scanner.
//!
//! Everything here is pure: no I/O, no global state, and no panics on input.

mod body;
mod classify;
mod forward;
mod html;
mod markers;
mod reply;
mod subject;

pub use body::best_text;
pub use classify::{classify, BounceInfo, MailKind};
pub use forward::{forwarded_part, subject_says_forwarded};
pub use html::{html_to_text, sanitize_html};
pub use reply::extract_reply;
pub use subject::ticket_subject;

#[cfg(test)]
pub(crate) mod fixture_tests;
