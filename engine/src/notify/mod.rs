//! Notifications: an event becomes a rendered message and an outbox row, written in the
//! same transaction as the change it announces (DESIGN.md invariant 2), so a notice is
//! queued exactly when its change is stored. The sender (`adapters::outbound`) drains
//! the outbox; this module never sends anything.
//!
//! Entry points for other operations, each called inside their `Engine::write`:
//! - [`Engine::notify_requester`]: a ticket notice to its requester (created, staff
//!   message, waiting on customer, done, reopened).
//! - [`Engine::notify_customer_replied`]: the intake calls it after appending a
//!   customer's reply: the assignee gets a notice.
//! - [`Engine::notify_reopened`]: the intake calls it after a reply reopened a ticket.
//! - [`Engine::notify_assignee`]: a ticket was assigned to a staff member.
//! - [`Engine::notify_record`]: the hooks of documents, quotes, orders and invoices
//!   (sign request, quote sent, order confirmed, invoice issued).
//!
//! Ticket notices carry a [`HistoryExcerpt`]; read it with `Engine::history_excerpt`
//! before `Engine::write`: sled cannot be scanned inside a transaction.
//!
//! A notice is dropped, not queued, when notifications are off (`kontor` commands other
//! than `serve`), when the address bounces, or when the loop guard says the address had
//! `max_auto_per_address_per_hour` automatic notices this hour already.

pub mod templates;

use chrono::Duration;
use serde_json::{json, Value};

use crate::error::EngineError;
use crate::ids::{ContactId, StaffId, TicketId};
use crate::links::{marker, LinkClaims, LinkScope};
use crate::model::*;
use crate::records::{RecordHead, RecordType};
use crate::store::tables::{DueKey, RowId, OUTBOX, OUTBOX_DUE};
use crate::store::tables::{BOUNCES, NOTICES_PER_HOUR};
use crate::store::tables::{CONTACTS, STAFF};
use crate::store::Tree;
use crate::tx::Tx;
use crate::validate::EmailAddress;
use crate::Engine;

pub use templates::{EmailTemplates, Rendered, TemplateError};

/// The settings notices need; the adapters map the config file onto it.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The base of every link (`public_url`), without a trailing slash.
    pub public_url: String,
    pub view_link_days: u32,
    pub sign_link_days: u32,
    pub login_link_minutes: u32,
    /// How long a link's session cookie lasts at most.
    pub session_hours: u32,
    /// The loop guard: automatic notices to one address per clock hour.
    pub max_auto_per_address_per_hour: u32,
    /// Told to customers in the done notice.
    pub reopen_days: u32,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            public_url: "http://127.0.0.1:8080".into(),
            view_link_days: 30,
            sign_link_days: 14,
            login_link_minutes: 15,
            session_hours: 12,
            max_auto_per_address_per_hour: 20,
            reopen_days: 30,
        }
    }
}

/// Who a notice goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: EmailAddress,
    pub name: Option<String>,
    pub locale: Locale,
    /// The contact, when the recipient is one: links are made out to it.
    pub contact_id: Option<ContactId>,
}

/// One notice to queue.
#[derive(Debug, Clone)]
pub(crate) struct Notice<'a> {
    pub kind: NoticeKind,
    pub to: Recipient,
    /// The record it is about, and what its templates show of it (in the
    /// recipient's locale).
    pub about: Option<(RecordHead, Value)>,
    /// A magic link to put in the notice, with this scope and lifetime.
    pub link: Option<(LinkScope, Duration)>,
    /// What the link opens when the notice is about no record (a login link names
    /// the contact's company); otherwise the record it is about.
    pub link_record: Option<RecordRef>,
    /// The last public messages of its record, read before the transaction.
    pub history: &'a HistoryExcerpt,
    /// Template data beyond what every notice has.
    pub extra: Value,
}

/// The last public messages of a record, oldest first, for the excerpt partial.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryExcerpt(Vec<Value>);

/// The thread every notice of a record belongs to: a stable root id we keep, so
/// clients thread the notices of a record together and replies naming it thread in.
pub fn thread_root(record: RecordRef, domain: &str) -> String {
    format!("<kontor.{}.{}@{domain}>", record.kind.as_str(), record.id)
}

impl Engine {
    /// Turns notifications on: without templates, operations queue nothing (the
    /// `kontor` commands other than `serve` never notify).
    pub fn enable_notifications(&mut self, templates: EmailTemplates) {
        self.templates = Some(std::sync::Arc::new(templates));
    }

    /// A notice to a record's person (a ticket's requester, a document's signer, a
    /// quote's contact), in their locale, with a view link.
    pub(crate) fn notify_requester<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        record: &R,
        history: &HistoryExcerpt,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        self.notify_party(tx, kind, record, LinkScope::View, history, extra)
    }

    /// A notice about a record to its contact with a link of `scope` (a sign
    /// request carries a sign link).
    pub(crate) fn notify_record_contact<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        record: &R,
        scope: LinkScope,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        self.notify_party(tx, kind, record, scope, &HistoryExcerpt::default(), extra)
    }

    fn notify_party<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        record: &R,
        scope: LinkScope,
        history: &HistoryExcerpt,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        let head = record.head();
        let Some(to) = self.party_recipient(tx, &head)? else {
            return Ok(None);
        };
        let lifetime = match scope {
            LinkScope::Sign => Duration::days(i64::from(self.config.notify.sign_link_days)),
            LinkScope::Login => Duration::minutes(i64::from(self.config.notify.login_link_minutes)),
            LinkScope::View => Duration::days(i64::from(self.config.notify.view_link_days)),
        };
        let data = record.notice_data(to.locale);
        self.enqueue_notice(
            tx,
            Notice {
                kind,
                to,
                about: Some((head, data)),
                link: Some((scope, lifetime)),
                link_record: None,
                history,
                extra,
            },
        )
    }

    /// The customer replied on a record (called by the intake in the reply's
    /// transaction): the assignee, if any, gets a notice with the reply.
    pub(crate) fn notify_customer_replied<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        record: &R,
        history: &HistoryExcerpt,
        reply_text: &str,
    ) -> Result<Option<u64>, EngineError> {
        let head = record.head();
        let Some(assignee) = head.assignee_id else {
            return Ok(None);
        };
        let author = self.party_name(tx, &head)?;
        self.notify_staff(
            tx,
            NoticeKind::StaffCustomerReplied,
            assignee,
            record,
            history,
            json!({"message": {"author": author, "text": reply_text}}),
        )
    }

    /// A ticket was reopened (by a customer's reply, or by staff): the requester
    /// hears that it is open again.
    pub(crate) fn notify_reopened<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        record: &R,
        history: &HistoryExcerpt,
    ) -> Result<Option<u64>, EngineError> {
        self.notify_requester(tx, NoticeKind::TicketReopened, record, history, json!({}))
    }

    /// A record was assigned to `staff_id`.
    pub(crate) fn notify_assignee<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        staff_id: StaffId,
        record: &R,
        history: &HistoryExcerpt,
        first_message: &str,
    ) -> Result<Option<u64>, EngineError> {
        let head = record.head();
        let author = self.party_name(tx, &head)?;
        self.notify_staff(
            tx,
            NoticeKind::StaffTicketAssigned,
            staff_id,
            record,
            history,
            json!({"message": {"author": author, "text": first_message}}),
        )
    }

    /// A notice about a record to a staff member (a declined quote's feedback).
    pub(crate) fn notify_record_staff<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        staff_id: StaffId,
        record: &R,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        self.notify_staff(
            tx,
            kind,
            staff_id,
            record,
            &HistoryExcerpt::default(),
            extra,
        )
    }

    fn notify_staff<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        staff_id: StaffId,
        record: &R,
        history: &HistoryExcerpt,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        let Some(staff) = STAFF.get(tx, &staff_id)? else {
            return Ok(None);
        };
        let locale = self.config.default_locale;
        self.enqueue_notice(
            tx,
            Notice {
                kind,
                to: Recipient {
                    address: staff.email.clone(),
                    name: Some(staff.name.clone()),
                    locale,
                    contact_id: None,
                },
                about: Some((record.head(), record.notice_data(locale))),
                link: None,
                link_record: None,
                history,
                extra,
            },
        )
    }

    /// A record's person as a recipient: the contact's address and locale, else the
    /// address given and the default locale; `None` without an address.
    fn party_recipient(
        &self,
        tx: &mut Tx<'_>,
        head: &RecordHead,
    ) -> Result<Option<Recipient>, EngineError> {
        if let Some(contact_id) = head.contact_id {
            if let Some(contact) = CONTACTS.get(tx, &contact_id)? {
                return Ok(Some(contact_recipient(&contact)));
            }
        }
        Ok(head.email.clone().map(|address| Recipient {
            address,
            name: head.name.clone(),
            locale: self.config.default_locale,
            contact_id: None,
        }))
    }

    /// The name staff read for a record's person.
    fn party_name(&self, tx: &mut Tx<'_>, head: &RecordHead) -> Result<String, EngineError> {
        Ok(self
            .party_recipient(tx, head)?
            .map(|to| to.name.unwrap_or_else(|| to.address.to_string()))
            .unwrap_or_default())
    }

    /// The address whose mail threads into `record`.
    pub fn reply_address_of(&self, record: RecordRef) -> String {
        format!(
            "{}+{}@{}",
            self.config.mailbox,
            self.keys.reply_token(record),
            self.config.domain
        )
    }

    /// Renders `notice` and writes its outbox row; `None` when it is not to be sent
    /// (notifications off, bouncing address, loop guard).
    pub(crate) fn enqueue_notice(
        &self,
        tx: &mut Tx<'_>,
        notice: Notice<'_>,
    ) -> Result<Option<u64>, EngineError> {
        let Some(templates) = self.templates.clone() else {
            return Ok(None);
        };
        let address = &notice.to.address;
        if BOUNCES.get(tx, address)?.is_some() {
            tracing::info!(%address, kind = notice.kind.as_str(), "not queued: the address bounces");
            return Ok(None);
        }
        let automatic = notice.kind.is_automatic();
        if automatic && !self.count_automatic_notice(tx, address)? {
            tracing::warn!(%address, kind = notice.kind.as_str(), "not queued: loop guard");
            return Ok(None);
        }
        let id = tx.next_id()?;
        let domain = &self.config.domain;
        let number = notice.about.as_ref().and_then(|(head, _)| head.number);
        let message_id = match number {
            Some(number) => format!("<kontor.{id}.{number}@{domain}>"),
            None => format!("<kontor.{id}@{domain}>"),
        };
        let mut object = match notice.extra.clone() {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        object.insert(
            "recipient_name".into(),
            json!(notice.to.name.clone().unwrap_or_default()),
        );
        object.insert("reopen_days".into(), json!(self.config.notify.reopen_days));
        object.insert("locale".into(), json!(notice.to.locale.as_str()));
        let mut reply_to = None;
        let mut thread = None;
        if let Some((head, data)) = &notice.about {
            let reply_address = self.reply_address_of(head.record);
            let reply_token = self.keys.reply_token(head.record);
            if let Some(number) = head.number {
                object.insert("subject_tag".into(), json!(format!("[#{number}]")));
            }
            let mut data = data.clone();
            if let Value::Object(map) = &mut data {
                map.insert("kind".into(), json!(head.record.kind.as_str()));
            }
            // Ticket templates say `ticket`, the others `record`: the same data.
            object.insert("ticket".into(), data.clone());
            object.insert("record".into(), data);
            object.insert("reply_address".into(), json!(reply_address));
            object.insert("marker".into(), json!(marker(&reply_token)));
            object.insert("history".into(), Value::Array(notice.history.0.clone()));
            reply_to = Some(reply_address);
            thread = Some(thread_root(head.record, domain));
        }
        let record = notice
            .about
            .as_ref()
            .map(|(head, _)| head.record)
            .or(notice.link_record);
        if let (Some((scope, lifetime)), Some(record)) = (notice.link, record) {
            let claims = LinkClaims {
                record,
                contact_id: notice.to.contact_id,
                scope,
                expires_at: tx.now + lifetime,
                epoch: link_epoch_in(tx, record)?,
            };
            object.insert("link".into(), json!(self.link_url(&claims)));
            object.insert(
                "link_expires_at".into(),
                json!(claims.expires_at.format("%Y-%m-%d %H:%M UTC").to_string()),
            );
        }
        self.queue_rendered(
            tx,
            &templates,
            QueuedNotice {
                id,
                kind: notice.kind,
                to: &notice.to,
                context: Value::Object(object),
                record,
                number,
                message_id,
                thread,
                reply_to,
                automatic,
            },
        )
    }

    /// Renders a notice's templates and writes its outbox row and due entry.
    fn queue_rendered(
        &self,
        tx: &mut Tx<'_>,
        templates: &EmailTemplates,
        queued: QueuedNotice<'_>,
    ) -> Result<Option<u64>, EngineError> {
        let rendered = templates
            .render(queued.kind, queued.to.locale, &queued.context)
            .map_err(|(part, reason)| {
                EngineError::Store(crate::store::StoreError::Backend(format!(
                    "rendering {}.{}.{part} failed: {reason}",
                    queued.kind.as_str(),
                    queued.to.locale.as_str()
                )))
            })?;
        let id = queued.id;
        let row = OutboxRow {
            id,
            kind: queued.kind,
            record: queued.record,
            ticket_number: queued.number,
            to: queued.to.address.clone(),
            to_name: queued.to.name.clone(),
            message_id: queued.message_id.clone(),
            in_reply_to: queued.thread.clone(),
            references: queued.thread.into_iter().collect(),
            reply_to: queued.reply_to,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            automatic: queued.automatic,
            created_at: tx.now,
            state: OutboxState::Pending,
            attempts: 0,
            // Due at once: a job run with `--now` ahead of the wall clock (catching
            // up, or an operator's rehearsal) must not hold its mail back until then.
            next_attempt_at: tx.now.min(chrono::Utc::now()),
            last_error: None,
            finished_at: None,
        };
        OUTBOX.put(tx, &RowId(id), &row)?;
        OUTBOX_DUE.insert(tx, &DueKey::new(row.next_attempt_at, id))?;
        if let Some(record) = queued.record {
            crate::threads::remember_message_id(tx, &queued.message_id, record)?;
        }
        tx.queued_notices = true;
        Ok(Some(id))
    }

    /// Counts one automatic notice to `address` in this clock hour; false when the
    /// loop guard's limit is reached (the notice is then dropped, not counted).
    fn count_automatic_notice(
        &self,
        tx: &mut Tx<'_>,
        address: &EmailAddress,
    ) -> Result<bool, EngineError> {
        let now = tx.now;
        let count = NOTICES_PER_HOUR.get(tx, address, now)?;
        if count >= u64::from(self.config.notify.max_auto_per_address_per_hour) {
            return Ok(false);
        }
        NOTICES_PER_HOUR.set(tx, address, now, count + 1)?;
        Ok(true)
    }

    /// The last public messages of a ticket, oldest first, for the excerpt partial.
    /// Call it before `Engine::write`, never inside (the store cannot be scanned there).
    pub(crate) fn history_excerpt(
        &self,
        ticket_id: TicketId,
    ) -> Result<HistoryExcerpt, EngineError> {
        self.history_excerpt_of(RecordRef::ticket(ticket_id))
    }

    /// The last public messages of any record, oldest first.
    pub(crate) fn history_excerpt_of(
        &self,
        record: RecordRef,
    ) -> Result<HistoryExcerpt, EngineError> {
        const EXCERPT_MESSAGES: usize = 3;
        const EXCERPT_CHARS: usize = 600;
        let prefix = record.key_prefix();
        let mut excerpt = Vec::new();
        for item in self.store.scan_prefix(Tree::History, &prefix, true) {
            let (_, bytes) = item?;
            let entry: HistoryEntry = crate::store::codec::decode(Tree::History, &bytes)?;
            if entry.visibility != Visibility::Public {
                continue;
            }
            if let EntryBody::Message { text, .. } = &entry.body {
                let mut shown: String = text.chars().take(EXCERPT_CHARS).collect();
                if shown.len() < text.len() {
                    shown.push('…');
                }
                excerpt.push(json!({
                    "author": author_name(&entry.author),
                    "at": entry.at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    "text": shown,
                }));
                if excerpt.len() == EXCERPT_MESSAGES {
                    break;
                }
            }
        }
        excerpt.reverse();
        Ok(HistoryExcerpt(excerpt))
    }

    /// `<public_url>/l/<token>`.
    pub(crate) fn link_url(&self, claims: &LinkClaims) -> String {
        format!(
            "{}/l/{}",
            self.config.notify.public_url.trim_end_matches('/'),
            self.keys.sign_claims(crate::links::LINK_PURPOSE, claims)
        )
    }
}

/// The current link epoch of `record` inside a transaction.
pub(crate) fn link_epoch_in(tx: &mut Tx<'_>, record: RecordRef) -> Result<u64, EngineError> {
    Ok(tx
        .get_raw(Tree::LinkEpochs, &record.key_prefix())?
        .and_then(|bytes| crate::store::trees::trailing_u64(&bytes))
        .unwrap_or(0))
}

fn contact_recipient(contact: &Contact) -> Recipient {
    Recipient {
        address: contact.email.clone(),
        name: Some(contact.name.clone()),
        locale: contact.locale,
        contact_id: Some(contact.id),
    }
}

fn author_name(author: &Author) -> String {
    match author {
        Author::Contact { name, .. } | Author::Staff { name, .. } => name.clone(),
        Author::System => "System".into(),
    }
}

/// What `queue_rendered` writes: a notice whose template data is complete.
struct QueuedNotice<'a> {
    id: u64,
    kind: NoticeKind,
    to: &'a Recipient,
    context: Value,
    record: Option<RecordRef>,
    number: Option<u64>,
    message_id: String,
    thread: Option<String>,
    reply_to: Option<String>,
    automatic: bool,
}

/// A wake-up counter the sender polls cheaply: bumped whenever a row is queued, so the
/// sender starts at once instead of at its next poll. Bumped inside the transaction
/// closure, so a retried transaction may bump twice: harmless, it only wakes early.
#[derive(Debug, Default)]
pub struct OutboxSignal(std::sync::atomic::AtomicU64);

impl OutboxSignal {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current count; a change since the last look means new rows.
    pub fn current(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// When a row failed temporarily for the `attempts`-th time, the next attempt waits
/// `base * 2^(attempts-1)`, at most `max`.
pub fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2i32.saturating_pow(attempts.saturating_sub(1).min(30)) as i64;
    let wait = base.num_milliseconds().saturating_mul(factor);
    Duration::milliseconds(wait.min(max.num_milliseconds()))
}

#[cfg(test)]
mod tests;
