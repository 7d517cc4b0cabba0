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
use crate::store::trees::key_of;
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
    pub ticket: Option<&'a Ticket>,
    pub record: Option<RecordRef>,
    /// A magic link to put in the notice, with this scope and lifetime.
    pub link: Option<(LinkScope, Duration)>,
    /// The last public messages of its ticket, read before the transaction.
    pub history: &'a HistoryExcerpt,
    /// Template data beyond what every notice has.
    pub extra: Value,
}

/// The last public messages of a ticket, oldest first, for the excerpt partial. Read
/// with [`Engine::history_excerpt`] *before* `Engine::write`: the store cannot be
/// scanned inside a transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryExcerpt(Vec<Value>);

/// A commercial record's notice (the hooks of the issues to come).
#[derive(Debug, Clone)]
pub struct RecordNotice {
    pub kind: NoticeKind,
    pub record: RecordRef,
    /// What the customer reads as the record's name (`Angebot 2026-17`).
    pub title: String,
    pub contact: Contact,
    pub scope: LinkScope,
}

/// The thread every notice of a ticket belongs to: a stable root id we keep, so
/// clients thread the notices of a ticket together and replies naming it thread in.
pub fn thread_root(ticket_id: TicketId, domain: &str) -> String {
    format!("<kontor.ticket.{}@{domain}>", ticket_id.0)
}

impl Engine {
    /// Turns notifications on: without templates, operations queue nothing (the
    /// `kontor` commands other than `serve` never notify).
    pub fn enable_notifications(&mut self, templates: EmailTemplates) {
        self.templates = Some(std::sync::Arc::new(templates));
    }

    /// A ticket notice to the requester, in the requester's locale, with a view link.
    pub(crate) fn notify_requester(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        ticket: &Ticket,
        history: &HistoryExcerpt,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        let Some(to) = self.requester_recipient(tx, ticket)? else {
            return Ok(None);
        };
        let days = i64::from(self.config.notify.view_link_days);
        self.enqueue_notice(
            tx,
            Notice {
                kind,
                to,
                ticket: Some(ticket),
                record: Some(RecordRef::ticket(ticket.id)),
                link: Some((LinkScope::View, Duration::days(days))),
                history,
                extra,
            },
        )
    }

    /// The customer replied on `ticket` (called by the intake in the reply's
    /// transaction): the assignee, if any, gets a notice with the reply.
    // Called by the inbound intake (issue 3), which lands after this one.
    #[allow(dead_code)]
    pub(crate) fn notify_customer_replied(
        &self,
        tx: &mut Tx<'_>,
        ticket: &Ticket,
        history: &HistoryExcerpt,
        reply_text: &str,
    ) -> Result<Option<u64>, EngineError> {
        let Some(assignee) = ticket.assignee_id else {
            return Ok(None);
        };
        self.notify_staff(
            tx,
            NoticeKind::StaffCustomerReplied,
            assignee,
            ticket,
            history,
            json!({"message": {"author": requester_name(ticket), "text": reply_text}}),
        )
    }

    /// `ticket` was reopened (by a customer's reply, or by staff): the requester hears
    /// that it is open again.
    pub(crate) fn notify_reopened(
        &self,
        tx: &mut Tx<'_>,
        ticket: &Ticket,
        history: &HistoryExcerpt,
    ) -> Result<Option<u64>, EngineError> {
        self.notify_requester(tx, NoticeKind::TicketReopened, ticket, history, json!({}))
    }

    /// `ticket` was assigned to `staff_id` (who did not assign it to themselves).
    pub(crate) fn notify_assignee(
        &self,
        tx: &mut Tx<'_>,
        staff_id: StaffId,
        ticket: &Ticket,
        history: &HistoryExcerpt,
        first_message: &str,
    ) -> Result<Option<u64>, EngineError> {
        self.notify_staff(
            tx,
            NoticeKind::StaffTicketAssigned,
            staff_id,
            ticket,
            history,
            json!({"message": {"author": requester_name(ticket), "text": first_message}}),
        )
    }

    /// The hook of documents, quotes, orders and invoices: a notice to a contact with a
    /// link of `scope` to the record.
    // Called by the documents, quotes and invoices issues, which land later.
    #[allow(dead_code)]
    pub(crate) fn notify_record(
        &self,
        tx: &mut Tx<'_>,
        notice: &RecordNotice,
    ) -> Result<Option<u64>, EngineError> {
        let lifetime = match notice.scope {
            LinkScope::Sign => Duration::days(i64::from(self.config.notify.sign_link_days)),
            LinkScope::Login => Duration::minutes(i64::from(self.config.notify.login_link_minutes)),
            LinkScope::View => Duration::days(i64::from(self.config.notify.view_link_days)),
        };
        self.enqueue_notice(
            tx,
            Notice {
                kind: notice.kind,
                to: contact_recipient(&notice.contact),
                ticket: None,
                record: Some(notice.record),
                link: Some((notice.scope, lifetime)),
                history: &HistoryExcerpt::default(),
                extra: json!({"record": {"kind": notice.record.kind.as_str(), "title": notice.title}}),
            },
        )
    }

    fn notify_staff(
        &self,
        tx: &mut Tx<'_>,
        kind: NoticeKind,
        staff_id: StaffId,
        ticket: &Ticket,
        history: &HistoryExcerpt,
        extra: Value,
    ) -> Result<Option<u64>, EngineError> {
        let Some(staff) = tx.get::<Staff>(Tree::Staff, &staff_id.key())? else {
            return Ok(None);
        };
        self.enqueue_notice(
            tx,
            Notice {
                kind,
                to: Recipient {
                    address: staff.email.clone(),
                    name: Some(staff.name.clone()),
                    locale: self.config.default_locale,
                    contact_id: None,
                },
                ticket: Some(ticket),
                record: Some(RecordRef::ticket(ticket.id)),
                link: None,
                history,
                extra,
            },
        )
    }

    /// The requester as a recipient: the contact's address and locale, else the
    /// address given and the default locale; `None` without an address.
    fn requester_recipient(
        &self,
        tx: &mut Tx<'_>,
        ticket: &Ticket,
    ) -> Result<Option<Recipient>, EngineError> {
        if let Some(contact_id) = ticket.requester.contact_id {
            if let Some(contact) = tx.get::<Contact>(Tree::Contacts, &contact_id.key())? {
                return Ok(Some(contact_recipient(&contact)));
            }
        }
        Ok(ticket.requester.email.clone().map(|address| Recipient {
            address,
            name: ticket.requester.name.clone(),
            locale: self.config.default_locale,
            contact_id: None,
        }))
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
        if tx
            .get_raw(Tree::Bounces, address.as_str().as_bytes())?
            .is_some()
        {
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
        let message_id = match notice.ticket {
            Some(ticket) => format!("<kontor.{id}.{}@{domain}>", ticket.number),
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
        if let Some(ticket) = notice.ticket {
            let reply_address = self.reply_address(ticket);
            let reply_token = self.keys.reply_token(ticket.id, ticket.number);
            object.insert("subject_tag".into(), json!(ticket.subject_tag()));
            object.insert(
                "ticket".into(),
                json!({
                    "number": ticket.number,
                    "subject": ticket.subject,
                    "status": ticket.status.display_name(notice.to.locale),
                }),
            );
            object.insert("reply_address".into(), json!(reply_address));
            object.insert("marker".into(), json!(marker(&reply_token)));
            object.insert("history".into(), Value::Array(notice.history.0.clone()));
            reply_to = Some(reply_address);
            thread = Some(thread_root(ticket.id, domain));
        }
        if let (Some((scope, lifetime)), Some(record)) = (notice.link, notice.record) {
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
        let context = Value::Object(object);
        let rendered = templates
            .render(notice.kind, notice.to.locale, &context)
            .map_err(|(part, reason)| {
                EngineError::Store(crate::store::StoreError::Backend(format!(
                    "rendering {}.{}.{part} failed: {reason}",
                    notice.kind.as_str(),
                    notice.to.locale.as_str()
                )))
            })?;
        let row = OutboxRow {
            id,
            kind: notice.kind,
            record: notice.record,
            ticket_number: notice.ticket.map(|ticket| ticket.number),
            to: notice.to.address.clone(),
            to_name: notice.to.name.clone(),
            message_id: message_id.clone(),
            in_reply_to: thread.clone(),
            references: thread.into_iter().collect(),
            reply_to,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            automatic,
            created_at: tx.now,
            state: OutboxState::Pending,
            attempts: 0,
            next_attempt_at: tx.now,
            last_error: None,
            finished_at: None,
        };
        tx.put(Tree::Outbox, &id.to_be_bytes(), &row)?;
        tx.put_raw(
            Tree::OutboxDue,
            &crate::ops::outbox::due_key(row.next_attempt_at, id),
            &[],
        )?;
        if let Some(ticket) = notice.ticket {
            crate::ops::tickets::remember_message_id(tx, &message_id, ticket.id)?;
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
        let hour = (tx.now.timestamp().max(0) as u64) / 3600;
        let key = key_of(&[address.as_str().as_bytes(), &[0], &hour.to_be_bytes()]);
        let count = tx
            .get_raw(Tree::NoticesPerHour, &key)?
            .and_then(|bytes| crate::store::trees::trailing_u64(&bytes))
            .unwrap_or(0);
        if count >= u64::from(self.config.notify.max_auto_per_address_per_hour) {
            return Ok(false);
        }
        tx.put_raw(Tree::NoticesPerHour, &key, &(count + 1).to_be_bytes())?;
        Ok(true)
    }

    /// The last public messages of a ticket, oldest first, for the excerpt partial.
    /// Call it before `Engine::write`, never inside (the store cannot be scanned there).
    pub(crate) fn history_excerpt(
        &self,
        ticket_id: TicketId,
    ) -> Result<HistoryExcerpt, EngineError> {
        const EXCERPT_MESSAGES: usize = 3;
        const EXCERPT_CHARS: usize = 600;
        let prefix = RecordRef::ticket(ticket_id).key_prefix();
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
            self.keys
                .sign_claims(crate::ops::links::LINK_PURPOSE, claims)
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

fn requester_name(ticket: &Ticket) -> String {
    ticket
        .requester
        .name
        .clone()
        .or_else(|| ticket.requester.email.as_ref().map(|e| e.to_string()))
        .unwrap_or_default()
}

fn author_name(author: &Author) -> String {
    match author {
        Author::Contact { name, .. } | Author::Staff { name, .. } => name.clone(),
        Author::System => "System".into(),
    }
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
