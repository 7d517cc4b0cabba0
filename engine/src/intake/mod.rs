//! The one door for inbound mail: the SMTP listener, `kontor mailgate` and
//! `POST /api/v1/inbound/email` all call [`Engine::ingest`].
//!
//! A message is stored raw first (content-addressed in `RawMail`), then
//! interpreted, in **one transaction** answered only once durable: a new ticket, a
//! reply appended to a ticket, a reopen, a duplicate, an auto-reply, a bounce, list
//! mail, a loop, or a rejection into quarantine. The outcome is kept under the
//! message's Message-ID (or its content hash where it has none), so delivering the
//! same message again, by any door, changes nothing and answers `duplicate`.
//!
//! - [`parse`]: raw bytes to the facts decided on (pure, fuzzed).
//! - [`text`]: choosing the body, reply extraction, HTML, classification.
//! - [`hooks`]: where notifications attach.

pub mod hooks;
pub mod parse;
pub mod text;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::ids::{QuarantineId, TicketId};
use crate::model::{Author, Channel, Contact, EntryBody, Event, RecordRef, Ticket, Visibility};
use crate::ops::tickets::{load_ticket, requester_author, requester_of, save_ticket, TicketDraft};
use crate::ops::{paginate, Page, PageRequest};
use crate::records::ReplyEffect;
use crate::store::blobs::{blob_id, read_named};
use crate::store::tables::{
    COMPANIES, CONTACTS, CONTACT_BY_EMAIL, MAIL_INTAKE, QUARANTINE, SENDER_HOURLY, STAFF,
    STAFF_BY_EMAIL, TICKETS,
};
use crate::store::{BlobId, Tree};
use crate::threads::remember_message_id;
use crate::tx::Tx;
use crate::validate::EmailAddress;
use crate::Engine;

use parse::{parse_mail, ParsedMail, Unreadable};
use text::MailKind;

/// A message as one of the doors received it.
#[derive(Debug, Clone)]
pub struct InboundMail {
    pub raw: Vec<u8>,
    /// The SMTP reverse path (`Some("")` for `MAIL FROM:<>`); `None` over HTTP.
    pub envelope_from: Option<String>,
    /// The SMTP forward paths; empty over HTTP (the headers name the recipients).
    pub envelope_to: Vec<String>,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntakeOutcome {
    Created,
    Appended,
    Reopened,
    Duplicate,
    AutoReply,
    Bounce,
    /// Mailing-list or bulk mail: kept, never ticketed.
    List,
    Loop,
    Rejected,
}

impl IntakeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IntakeOutcome::Created => "created",
            IntakeOutcome::Appended => "appended",
            IntakeOutcome::Reopened => "reopened",
            IntakeOutcome::Duplicate => "duplicate",
            IntakeOutcome::AutoReply => "auto_reply",
            IntakeOutcome::Bounce => "bounce",
            IntakeOutcome::List => "list",
            IntakeOutcome::Loop => "loop",
            IntakeOutcome::Rejected => "rejected",
        }
    }
}

/// The answer of every door: the outcome and the ticket it concerns, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeResult {
    pub outcome: IntakeOutcome,
    pub ticket_id: Option<TicketId>,
    pub number: Option<u64>,
    /// Set when the message waits in quarantine.
    #[serde(default)]
    pub quarantine_id: Option<QuarantineId>,
}

/// Stored per intake key: the first answer, plus where the raw message is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntakeRecord {
    pub result: IntakeResult,
    pub sha256: String,
    pub at: DateTime<Utc>,
}

/// A message that could not be interpreted; its raw bytes stay in `RawMail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedMail {
    pub id: QuarantineId,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub sha256: String,
    pub size: u64,
    /// The sender and subject as far as they could be read, for the list.
    pub from: Option<String>,
    pub subject: Option<String>,
    pub envelope_from: Option<String>,
    pub envelope_to: Vec<String>,
    pub intake_key: String,
}

/// Which rule threaded a reply into a ticket (the history entry's `threaded_by`).
const BY_TOKEN: &str = "token";
const BY_REFERENCES: &str = "references";
const BY_MARKER: &str = "marker";
const BY_SUBJECT_TAG: &str = "subject_tag";

impl Engine {
    /// True when mail for `address` is ours: `<mailbox>@<domain>`,
    /// `<mailbox>+anything@<domain>` or postmaster. In memory only: the SMTP
    /// listener asks this on its session task for every RCPT.
    pub fn accepts_recipient(&self, address: &str) -> bool {
        let address = address.trim().trim_matches(['<', '>']);
        if address.eq_ignore_ascii_case("postmaster") {
            return true;
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return false;
        };
        if !domain.eq_ignore_ascii_case(&self.config().domain) {
            return false;
        }
        let mailbox = &self.config().mailbox;
        let base = local.split_once('+').map_or(local, |(base, _)| base);
        base.eq_ignore_ascii_case(mailbox) || local.eq_ignore_ascii_case("postmaster")
    }

    /// Stores `mail` raw and interprets it, in one transaction answered once it is
    /// durable. Every message that reaches here is kept: a store failure is the only
    /// error (and then nothing was stored).
    pub fn ingest(&self, mail: InboundMail) -> Result<IntakeResult, EngineError> {
        let sha = blob_id(&mail.raw);
        let sha_hex = hex::encode(sha);
        let parsed = if mail.raw.len() > self.config().max_body_bytes {
            Err(Unreadable::TooLarge)
        } else {
            parse_mail(&mail.raw, mail.envelope_from.as_deref())
        };
        let message_id = match &parsed {
            Ok(mail) => mail.message_id.clone(),
            Err(_) => lenient_message_id(&mail.raw),
        };
        let key = match message_id {
            Some(id) => format!("mid:{id}"),
            None => format!("sha:{sha_hex}"),
        };
        self.stage_raw_mail(&key, &sha, &mail.raw, &parsed)
            .and_then(|()| {
                self.write(|tx| {
                    if let Some(record) = MAIL_INTAKE.get(tx, &key)? {
                        return Ok(IntakeResult {
                            outcome: IntakeOutcome::Duplicate,
                            quarantine_id: None,
                            ..record.result
                        });
                    }
                    tx.put_blob_reference(Tree::RawMail, &sha, mail.raw.len() as u64)?;
                    let context = Received {
                        mail: &mail,
                        sha256: &sha_hex,
                        key: &key,
                        quarantine_id: None,
                    };
                    let result = self.interpret(tx, &parsed, &context)?;
                    let record = IntakeRecord {
                        result: result.clone(),
                        sha256: sha_hex.clone(),
                        at: tx.now,
                    };
                    MAIL_INTAKE.put(tx, &key, &record)?;
                    Ok(result)
                })
            })
            .inspect(|result| self.counters().count_mail_in(result.outcome))
            .inspect_err(|_| self.counters().count_mail_in_failed())
    }

    /// Writes the message and its attachments as blobs before the transaction that
    /// names them. A redelivery already stored writes nothing: its blobs would
    /// only be orphans.
    fn stage_raw_mail(
        &self,
        key: &str,
        sha: &BlobId,
        raw: &[u8],
        parsed: &Result<ParsedMail, Unreadable>,
    ) -> Result<(), EngineError> {
        if MAIL_INTAKE.get(&mut self.reader(), key)?.is_some() {
            return Ok(());
        }
        self.store.put_blob(sha, raw)?;
        if let Ok(mail) = parsed {
            self.stage_attachments(&mail.attachments)?;
        }
        Ok(())
    }

    /// The quarantine, newest first.
    pub fn quarantine(&self, request: PageRequest) -> Result<Page<QuarantinedMail>, EngineError> {
        paginate(
            QUARANTINE.values(self.store.as_ref(), true),
            request,
            |entry| Ok(Some(entry)),
        )
    }

    /// The raw bytes of a received message, by its SHA-256 (hex).
    pub fn raw_mail(&self, sha256: &str) -> Result<Option<Vec<u8>>, EngineError> {
        let Ok(key) = hex::decode(sha256) else {
            return Ok(None);
        };
        Ok(read_named(self.store.as_ref(), Tree::RawMail, &key)?)
    }

    /// Interprets a quarantined message again (after an upgrade or a config
    /// change). It leaves the quarantine unless it is rejected once more.
    pub fn reprocess_quarantined(&self, id: QuarantineId) -> Result<IntakeResult, EngineError> {
        let entry = QUARANTINE
            .get(&mut self.reader(), &id)?
            .ok_or_else(|| EngineError::not_found("quarantined mail", id))?;
        let raw = self
            .raw_mail(&entry.sha256)?
            .ok_or_else(|| EngineError::not_found("raw mail", &entry.sha256))?;
        let mail = InboundMail {
            raw,
            envelope_from: entry.envelope_from.clone(),
            envelope_to: entry.envelope_to.clone(),
        };
        let parsed = if mail.raw.len() > self.config().max_body_bytes {
            Err(Unreadable::TooLarge)
        } else {
            parse_mail(&mail.raw, mail.envelope_from.as_deref())
        };
        if let Ok(parsed) = &parsed {
            self.stage_attachments(&parsed.attachments)?;
        }
        self.write(|tx| {
            if QUARANTINE.get(tx, &id)?.is_none() {
                return Err(EngineError::not_found("quarantined mail", id));
            }
            QUARANTINE.remove(tx, &id)?;
            let context = Received {
                mail: &mail,
                sha256: &entry.sha256,
                key: &entry.intake_key,
                quarantine_id: Some(id),
            };
            let result = self.interpret(tx, &parsed, &context)?;
            let record = IntakeRecord {
                result: result.clone(),
                sha256: entry.sha256.clone(),
                at: tx.now,
            };
            MAIL_INTAKE.put(tx, &entry.intake_key, &record)?;
            Ok(result)
        })
    }

    /// Decides what a message is and applies it, inside the intake transaction.
    fn interpret(
        &self,
        tx: &mut Tx<'_>,
        parsed: &Result<ParsedMail, Unreadable>,
        received: &Received<'_>,
    ) -> Result<IntakeResult, EngineError> {
        let mail = match parsed {
            Ok(mail) => mail,
            Err(why) => return quarantine(tx, received, why.reason(), None),
        };
        match &mail.kind {
            MailKind::Bounce(info) => return self.record_bounce(tx, mail, info),
            MailKind::AutoReply => return Ok(no_ticket(IntakeOutcome::AutoReply)),
            MailKind::List => return Ok(no_ticket(IntakeOutcome::List)),
            MailKind::Normal => {}
        }
        if self.is_our_address(&mail.from) || self.over_sender_rate(tx, &mail.from)? {
            return Ok(no_ticket(IntakeOutcome::Loop));
        }
        if let Some((record, rule)) = self.find_thread(tx, mail, &received.mail.envelope_to)? {
            let head = crate::records::head_of(tx, record)?;
            if is_participant(tx, &head, &mail.from)? {
                return self.append_reply(tx, mail, &head, rule);
            }
        }
        let (ticket, _) = self.open_ticket(tx, mail, None)?;
        Ok(with_ticket(IntakeOutcome::Created, &ticket))
    }

    fn is_our_address(&self, address: &EmailAddress) -> bool {
        self.accepts_recipient(address.as_str())
            && !address.as_str().starts_with("postmaster@")
            && address.domain() == self.config().domain.to_ascii_lowercase()
    }

    /// Counts the sender's mail this hour; true once it exceeds the loop guard.
    fn over_sender_rate(&self, tx: &mut Tx<'_>, from: &EmailAddress) -> Result<bool, EngineError> {
        let now = tx.now;
        let count = SENDER_HOURLY.get(tx, from, now)? + 1;
        SENDER_HOURLY.set(tx, from, now, count)?;
        Ok(count > u64::from(self.config().max_per_sender_per_hour))
    }

    /// The record a message replies to and the rule that found it, trying the
    /// plus-token, then In-Reply-To/References, then the body marker, then the
    /// subject tag (tickets only).
    fn find_thread(
        &self,
        tx: &mut Tx<'_>,
        mail: &ParsedMail,
        envelope_to: &[String],
    ) -> Result<Option<(RecordRef, &'static str)>, EngineError> {
        let mut addresses: Vec<String> = envelope_to.iter().map(|a| a.to_lowercase()).collect();
        addresses.extend(mail.recipients.iter().map(|a| a.as_str().to_string()));
        let prefix = format!("{}+", self.config().mailbox.to_lowercase());
        for address in &addresses {
            let Some((local, domain)) = address.rsplit_once('@') else {
                continue;
            };
            if !domain.eq_ignore_ascii_case(&self.config().domain) {
                continue;
            }
            if let Some(token) = local.strip_prefix(&prefix) {
                if let Some(record) = self.record_of_token(tx, token)? {
                    return Ok(Some((record, BY_TOKEN)));
                }
            }
        }
        for id in &mail.thread_ids {
            if let Some(record) = crate::threads::record_of_message_id(tx, id)? {
                if crate::records::spec_of(record.kind)?
                    .head(tx, record.id)?
                    .is_some()
                {
                    return Ok(Some((record, BY_REFERENCES)));
                }
            }
        }
        for token in crate::links::find_markers(&mail.full_text) {
            if let Some(record) = self.record_of_token(tx, token)? {
                return Ok(Some((record, BY_MARKER)));
            }
        }
        if let Some(number) = subject_tag_number(&mail.subject) {
            if let Some(ticket) = ticket_by_number(tx, number)? {
                return Ok(Some((RecordRef::ticket(ticket.id), BY_SUBJECT_TAG)));
            }
        }
        Ok(None)
    }

    /// The record a reply token names, if one of our keys made the token and the
    /// record exists.
    fn record_of_token(
        &self,
        tx: &mut Tx<'_>,
        token: &str,
    ) -> Result<Option<RecordRef>, EngineError> {
        let Some(record) = self.keys().verify_reply_token(token) else {
            return Ok(None);
        };
        let exists = crate::records::spec(record.kind)
            .map(|spec| spec.head(tx, record.id))
            .transpose()?
            .flatten()
            .is_some();
        Ok(exists.then_some(record))
    }

    /// A participant's reply to a record other than a ticket: appended to its
    /// history, and its staff member told.
    /// A participant's reply, into whatever record it threads to: the kind's
    /// workflow moves (a ticket reopens within `reopen_days`, waiting → in
    /// progress); one closed for longer opens a new ticket that continues it.
    fn append_reply(
        &self,
        tx: &mut Tx<'_>,
        mail: &ParsedMail,
        head: &crate::records::RecordHead,
        rule: &'static str,
    ) -> Result<IntakeResult, EngineError> {
        let reply = crate::records::verbs::CustomerReply {
            author: author_of(tx, mail)?,
            text: &mail.new_text,
            attachments: &mail.attachments,
            threaded_by: Some(rule),
            copied: mail
                .copied
                .iter()
                .filter(|address| !self.is_our_address(address))
                .cloned()
                .collect(),
            reopen_within: Some(Duration::days(i64::from(self.config().reopen_days))),
        };
        let outcome = match self.take_customer_reply(tx, head.record, reply)?.0 {
            ReplyEffect::TooLate { continues } => {
                let (new_ticket, _) = self.open_ticket(tx, mail, continues)?;
                return Ok(with_ticket(IntakeOutcome::Created, &new_ticket));
            }
            ReplyEffect::Reopened => IntakeOutcome::Reopened,
            ReplyEffect::Appended => IntakeOutcome::Appended,
        };
        if let Some(id) = &mail.message_id {
            remember_message_id(tx, id, head.record)?;
        }
        Ok(in_record(outcome, head))
    }

    /// Opens a ticket for the sender; `continues` is a done ticket this one
    /// follows up (both get a `linked` event).
    fn open_ticket(
        &self,
        tx: &mut Tx<'_>,
        mail: &ParsedMail,
        continues: Option<TicketId>,
    ) -> Result<(Ticket, crate::model::HistoryEntry), EngineError> {
        let contact = contact_by_email(tx, &mail.from)?;
        let requester = requester_of(
            contact.as_ref(),
            mail.from_name.clone(),
            Some(mail.from.clone()),
        );
        let participants = mail
            .copied
            .iter()
            .filter(|a| !self.is_our_address(a) && **a != mail.from)
            .cloned()
            .collect();
        // The customer's client prefixed "Re:"/"AW:"/"Fwd:" and maybe an old tag;
        // the ticket is about what follows.
        let cleaned = text::ticket_subject(&mail.subject);
        let subject = if cleaned.is_empty() {
            match self.config().default_locale {
                crate::model::Locale::De => "(kein Betreff)".to_string(),
                crate::model::Locale::En => "(no subject)".to_string(),
            }
        } else {
            cleaned
        };
        let draft = TicketDraft {
            subject,
            body: mail.new_text.clone(),
            channel: Channel::Email,
            company_id: contact.as_ref().map(|c| c.company_id),
            author: requester_author(&requester),
            requester,
            assignee_id: None,
            attachments: mail.attachments.clone(),
            participants,
            linked_ticket_id: continues,
            origin: None,
        };
        // The confirmation is the ticket_opened hook's: one place says what mail sends.
        let (ticket, entry) = self.insert_ticket(tx, &draft, false)?;
        if let Some(old) = continues {
            let mut old = load_ticket(tx, old)?;
            old.linked_ticket_id = Some(ticket.id);
            save_ticket(tx, &old)?;
            for (on, other) in [(&ticket, &old), (&old, &ticket)] {
                tx.append_history(
                    RecordRef::ticket(on.id),
                    Author::System,
                    Visibility::Public,
                    EntryBody::Event(Event::Linked {
                        ticket_id: other.id,
                        number: other.number,
                    }),
                )?;
            }
        }
        if let Some(id) = &mail.message_id {
            remember_message_id(tx, id, RecordRef::ticket(ticket.id))?;
        }
        hooks::ticket_opened(
            self,
            tx,
            &ticket,
            &entry,
            mail.message_id_as_sent.as_deref(),
        )?;
        Ok((ticket, entry))
    }

    /// A delivery report: each failed recipient is marked bouncing and the ticket
    /// the returned message belonged to gets a `bounced` event.
    fn record_bounce(
        &self,
        tx: &mut Tx<'_>,
        mail: &ParsedMail,
        info: &text::BounceInfo,
    ) -> Result<IntakeResult, EngineError> {
        let returned = info
            .original_message_id
            .iter()
            .map(|id| crate::threads::normalize_message_id(id))
            .chain(mail.thread_ids.iter().cloned());
        let mut record = None;
        for id in returned {
            record = crate::threads::record_of_message_id(tx, &id)?;
            if record.is_some() {
                break;
            }
        }
        if record.is_none() {
            for token in crate::links::find_markers(&mail.full_text) {
                record = self.record_of_token(tx, token)?;
                if record.is_some() {
                    break;
                }
            }
        }
        let record = match record {
            Some(record) => crate::records::spec_of(record.kind)?.head(tx, record.id)?,
            None => None,
        };
        for failed in &info.failed_recipients {
            let Ok(address) = EmailAddress::parse(failed) else {
                continue;
            };
            crate::ops::bounces::mark_bouncing(tx, &address, "delivery failed (DSN)")?;
            if let Some(head) = &record {
                tx.append_history(
                    head.record,
                    Author::System,
                    Visibility::Internal,
                    EntryBody::Event(Event::Bounced { address }),
                )?;
            }
        }
        Ok(match &record {
            Some(head) => in_record(IntakeOutcome::Bounce, head),
            None => no_ticket(IntakeOutcome::Bounce),
        })
    }
}

/// What the transaction needs about the message beyond its parse.
struct Received<'a> {
    mail: &'a InboundMail,
    sha256: &'a str,
    key: &'a str,
    /// Set when reprocessing: a second rejection keeps the same entry.
    quarantine_id: Option<QuarantineId>,
}

fn quarantine(
    tx: &mut Tx<'_>,
    received: &Received<'_>,
    reason: &str,
    parsed: Option<&ParsedMail>,
) -> Result<IntakeResult, EngineError> {
    let id = match received.quarantine_id {
        Some(id) => id,
        None => QuarantineId(tx.next_id()?),
    };
    let (from, subject) = match parsed {
        Some(mail) => (Some(mail.from.to_string()), Some(mail.subject.clone())),
        None => headers_for_listing(&received.mail.raw),
    };
    let entry = QuarantinedMail {
        id,
        received_at: tx.now,
        reason: reason.to_string(),
        sha256: received.sha256.to_string(),
        size: received.mail.raw.len() as u64,
        from,
        subject,
        envelope_from: received.mail.envelope_from.clone(),
        envelope_to: received.mail.envelope_to.clone(),
        intake_key: received.key.to_string(),
    };
    QUARANTINE.put(tx, &id, &entry)?;
    Ok(IntakeResult {
        outcome: IntakeOutcome::Rejected,
        ticket_id: None,
        number: None,
        quarantine_id: Some(id),
    })
}

/// The Message-ID of a message mail-parser could not (or was not asked to) read,
/// so that its redelivery is still recognised.
fn lenient_message_id(raw: &[u8]) -> Option<String> {
    let head = &raw[..raw.len().min(64 * 1024)];
    String::from_utf8_lossy(head)
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("message-id"))
        .map(|(_, value)| crate::threads::normalize_message_id(value))
        .filter(|id| !id.is_empty())
}

/// From and Subject read leniently from an unparseable message, for the list.
fn headers_for_listing(raw: &[u8]) -> (Option<String>, Option<String>) {
    let head = &raw[..raw.len().min(16 * 1024)];
    let text = String::from_utf8_lossy(head);
    let mut from = None;
    let mut subject = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value: String = value.trim().chars().take(200).collect();
            if name.eq_ignore_ascii_case("from") {
                from = Some(value);
            } else if name.eq_ignore_ascii_case("subject") {
                subject = Some(value);
            }
        }
    }
    (from, subject)
}

fn no_ticket(outcome: IntakeOutcome) -> IntakeResult {
    IntakeResult {
        outcome,
        ticket_id: None,
        number: None,
        quarantine_id: None,
    }
}

/// The outcome of a mail that went into `head`'s record. Tickets are the kind with
/// a number; a mail into another kind is in no ticket.
fn in_record(outcome: IntakeOutcome, head: &crate::records::RecordHead) -> IntakeResult {
    IntakeResult {
        outcome,
        ticket_id: head.number.map(|_| TicketId(head.record.id)),
        number: head.number,
        quarantine_id: None,
    }
}

fn with_ticket(outcome: IntakeOutcome, ticket: &Ticket) -> IntakeResult {
    IntakeResult {
        outcome,
        ticket_id: Some(ticket.id),
        number: Some(ticket.number),
        quarantine_id: None,
    }
}

/// `[#42]` anywhere in a subject.
fn subject_tag_number(subject: &str) -> Option<u64> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find(']') {
            if let Ok(number) = after[..end].parse::<u64>() {
                return Some(number);
            }
        }
        rest = after;
    }
    None
}

/// Ticket ids are their numbers.
fn ticket_by_number(tx: &mut Tx<'_>, number: u64) -> Result<Option<Ticket>, EngineError> {
    TICKETS.get(tx, &TicketId(number))
}

fn contact_by_email(tx: &mut Tx<'_>, email: &EmailAddress) -> Result<Option<Contact>, EngineError> {
    let Some(id) = CONTACT_BY_EMAIL.get(tx, email)? else {
        return Ok(None);
    };
    CONTACTS.get(tx, &id)
}

/// The history author of a mail: the staff member or contact with that address,
/// else the name and address the mail gives.
fn author_of(tx: &mut Tx<'_>, mail: &ParsedMail) -> Result<Author, EngineError> {
    if let Some(staff_id) = STAFF_BY_EMAIL.get(tx, &mail.from)? {
        if let Some(staff) = STAFF.get(tx, &staff_id)? {
            return Ok(crate::records::verbs::staff_author(&staff));
        }
    }
    let contact = contact_by_email(tx, &mail.from)?;
    let requester = requester_of(
        contact.as_ref(),
        mail.from_name.clone(),
        Some(mail.from.clone()),
    );
    Ok(requester_author(&requester))
}

/// CONTRACT.md section 6: a reply is taken from the record's person, an address on
/// it (CC'd), a contact of its company or of its reseller, or staff.
fn is_participant(
    tx: &mut Tx<'_>,
    head: &crate::records::RecordHead,
    from: &EmailAddress,
) -> Result<bool, EngineError> {
    if head.email.as_ref() == Some(from) || head.participants.contains(from) {
        return Ok(true);
    }
    if STAFF_BY_EMAIL.get(tx, from)?.is_some() {
        return Ok(true);
    }
    let Some(contact) = contact_by_email(tx, from)? else {
        return Ok(false);
    };
    if head.contact_id == Some(contact.id) {
        return Ok(true);
    }
    let Some(company_id) = head.company_id else {
        return Ok(false);
    };
    if contact.company_id == company_id {
        return Ok(true);
    }
    let company = COMPANIES.get(tx, &company_id)?;
    Ok(company.and_then(|c| c.reseller_id) == Some(contact.company_id))
}

#[cfg(test)]
mod tests;
