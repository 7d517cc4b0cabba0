//! The record seam: every kind a customer acts on (tickets, documents, quotes,
//! orders, invoices, subscriptions) implements [`RecordType`] once, and registers in
//! [`spec`]. History, links, threading of replies, notices, search, access and the
//! changelog ask the kind's [`KindSpec`] and never test for a kind themselves.
//!
//! A new kind is: its model struct and operations in a file of this folder, its
//! `RecordType` implementation there, one arm in [`spec`], and its templates.

pub mod commercial;
pub mod document;
pub mod invoice;
pub mod order;
pub mod quote;
pub mod subscription;
#[cfg(test)]
mod tests;
mod ticket;
pub mod verbs;

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::EngineError;
use crate::ids::{CompanyId, ContactId, StaffId};
use crate::links::LinkScope;
use crate::model::{Locale, Permissions, RecordKind, RecordRef};
use crate::store::codec::{decode, encode};
use crate::store::tables::{Reader, Writer};
use crate::store::Tree;
use crate::validate::EmailAddress;

pub use document::Document;
pub use invoice::Invoice;
pub use order::Order;
pub use quote::Quote;
pub use subscription::Subscription;

/// Who among a company's contacts sees a record of a kind (besides staff).
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    /// Tickets: the requester; a manager with the portal, the company's; a reseller's
    /// manager, the reseller's customers'.
    Requester,
    /// Documents: the signer and the managers of the signer's company.
    SignerAndManagers,
    /// Quotes, orders, invoices, subscriptions: the company's contacts that hold the
    /// permission (never a reseller's contacts; a reseller's customer holds none).
    Permission(fn(&Permissions) -> bool),
}

/// What every record says about itself, whatever its kind: enough for access,
/// links, threading, notices and lists.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordHead {
    pub record: RecordRef,
    /// The human-facing number, where the kind has one (tickets).
    pub number: Option<u64>,
    /// What the customer reads as its name.
    pub title: String,
    /// The status in the API (`"sent"`).
    pub status: &'static str,
    pub company_id: Option<CompanyId>,
    /// The requester, the signer, or the contact the record is for.
    pub contact_id: Option<ContactId>,
    /// A requester without a contact (unknown sender, webhook reporter).
    pub email: Option<EmailAddress>,
    pub name: Option<String>,
    /// Other addresses whose mail threads in (CC'd on a ticket).
    pub participants: Vec<EmailAddress>,
    pub assignee_id: Option<StaffId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One secondary index entry of a record: a list it appears in, or a value that
/// must be unique within its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexEntry {
    Company(CompanyId),
    Contact(ContactId),
    Status(u8),
    /// A value no other record of the kind may hold (an invoice's number).
    Unique(String),
}

impl IndexEntry {
    const COMPANY: u8 = 1;
    const CONTACT: u8 = 2;
    const STATUS: u8 = 3;
    const UNIQUE: u8 = 4;

    /// `kind ++ index ++ value`: the prefix of the index's keys; the record id follows.
    fn prefix(&self, kind: RecordKind) -> Vec<u8> {
        let mut key = vec![kind.code()];
        match self {
            IndexEntry::Company(id) => {
                key.push(Self::COMPANY);
                key.extend_from_slice(&id.key());
            }
            IndexEntry::Contact(id) => {
                key.push(Self::CONTACT);
                key.extend_from_slice(&id.key());
            }
            IndexEntry::Status(code) => {
                key.push(Self::STATUS);
                key.push(*code);
            }
            IndexEntry::Unique(value) => {
                key.push(Self::UNIQUE);
                key.extend_from_slice(value.as_bytes());
                key.push(0);
            }
        }
        key
    }

    fn key(&self, record: RecordRef) -> Vec<u8> {
        let mut key = self.prefix(record.kind);
        key.extend_from_slice(&record.id.to_be_bytes());
        key
    }
}

/// A reply from a record's people (by mail, or in the portal) while it is taken
/// in, before it is appended to the history: what [`RecordType::take_reply`] sees.
pub struct TakingReply<'a, 'b> {
    pub(crate) tx: &'a mut crate::tx::Tx<'b>,
    pub(crate) author: crate::model::Author,
    /// Other addresses copied on the mail, ours left out.
    pub(crate) copied: Vec<EmailAddress>,
    /// How long after a record was closed a reply still reopens it; `None`: always
    /// (the portal, where the customer chose to write on the closed record).
    pub(crate) reopen_within: Option<chrono::Duration>,
}

impl TakingReply<'_, '_> {
    /// A member of staff answering from their mail client: no workflow moves.
    pub(crate) fn is_by_staff(&self) -> bool {
        matches!(self.author, crate::model::Author::Staff { .. })
    }
}

/// What taking a reply did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyEffect {
    /// Appended; the record's staff member hears of it.
    Appended,
    /// The record was closed and is open again: its person hears of that too.
    Reopened,
    /// Closed longer than `reopen_within`: the reply is not appended; it opens a
    /// new ticket, linked to the ticket named here.
    TooLate {
        continues: Option<crate::ids::TicketId>,
    },
}

/// A record kind. Implemented once per kind, next to its operations.
pub trait RecordType: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: RecordKind;
    /// The link scopes a magic link to this kind may carry.
    const LINK_SCOPES: &'static [LinkScope];
    /// Who sees it.
    const AUDIENCE: Audience;

    fn head(&self) -> RecordHead;

    /// The notice a public staff message on it sends its person.
    const MESSAGE_NOTICE: crate::model::NoticeKind = crate::model::NoticeKind::RecordMessage;

    /// The status's one-byte code for the status index; stable across releases.
    fn status_code(&self) -> u8;

    /// The code of a status named as the API names it; `None` for no such status.
    fn parse_status_code(status: &str) -> Option<u8>;

    /// Moves `updated_at` (every change) and, when given, the assignee.
    fn touch(&mut self, at: DateTime<Utc>, assignee: Option<StaffId>);

    /// What a reply from the record's people does to it before it is appended.
    /// Most kinds only move `updated_at`; a ticket's workflow moves (`ticket.rs`).
    fn take_reply(reply: &mut TakingReply<'_, '_>, id: u64) -> Result<ReplyEffect, EngineError> {
        touch_saved::<Self>(reply.tx, id, None)?;
        Ok(ReplyEffect::Appended)
    }

    /// The webhook event its creation announces, if any.
    const CREATED_WEBHOOK: Option<crate::webhooks::WebhookEvent> = None;

    /// The webhook event an event in its history announces, if any (a message
    /// announces `message.created` on every kind).
    fn webhook_event(event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent> {
        let _ = event;
        None
    }

    /// Its page in the portal: `/portal/<kind>s/<prefixed id>`.
    fn portal_path(id: u64) -> String {
        let record = RecordRef {
            kind: Self::KIND,
            id,
        };
        format!("/portal/{}s/{}", Self::KIND.as_str(), display_id(record))
    }

    /// Text beyond the title that search finds the record by (lines, modules, …).
    fn search_text(&self) -> Vec<String> {
        Vec::new()
    }

    /// What its notices and pages show of it, in `locale`.
    fn notice_data(&self, locale: Locale) -> Value;

    /// Where it is stored: the shared records tree, keyed by kind and id. A kind with
    /// a tree of its own (tickets, older than the seam) says so here.
    fn storage(id: u64) -> (Tree, Vec<u8>) {
        (
            Tree::Records,
            RecordRef {
                kind: Self::KIND,
                id,
            }
            .key_prefix()
            .to_vec(),
        )
    }

    /// The lists it appears in. Kinds with their own index trees override
    /// [`RecordType::write_indexes`] instead.
    fn index_entries(&self) -> Vec<IndexEntry> {
        let head = self.head();
        let mut entries = vec![IndexEntry::Status(self.status_code())];
        entries.extend(head.company_id.map(IndexEntry::Company));
        entries.extend(head.contact_id.map(IndexEntry::Contact));
        entries
    }

    /// Replaces the index entries of `old` by those of `self`.
    fn write_indexes(
        &self,
        old: Option<&Self>,
        writer: &mut dyn Writer,
    ) -> Result<(), EngineError> {
        let record = self.head().record;
        let new_entries = self.index_entries();
        if let Some(old) = old {
            for entry in old.index_entries() {
                if !new_entries.contains(&entry) {
                    writer.remove_raw(Tree::RecordIndex, &entry.key(record))?;
                }
            }
        }
        for entry in &new_entries {
            writer.write_raw(Tree::RecordIndex, &entry.key(record), &[])?;
        }
        Ok(())
    }
}

/// Loads a record of kind `R`.
pub fn load<R: RecordType>(reader: &mut dyn Reader, id: u64) -> Result<Option<R>, EngineError> {
    let (tree, key) = R::storage(id);
    match reader.read_raw(tree, &key)? {
        Some(bytes) => Ok(Some(decode(tree, &bytes)?)),
        None => Ok(None),
    }
}

/// Loads a record of kind `R` or answers 404.
pub fn require<R: RecordType>(reader: &mut dyn Reader, id: u64) -> Result<R, EngineError> {
    load(reader, id)?.ok_or_else(|| {
        EngineError::not_found(
            R::KIND.as_str(),
            display_id(RecordRef { kind: R::KIND, id }),
        )
    })
}

/// Writes `record` with its indexes; `old` is what was stored before (None: new).
pub fn save<R: RecordType>(
    writer: &mut dyn Writer,
    old: Option<&R>,
    record: &R,
) -> Result<(), EngineError> {
    let (tree, key) = R::storage(record.head().record.id);
    writer.write_raw(tree, &key, &encode(record))?;
    record.write_indexes(old, writer)
}

/// Moves a stored record's `updated_at` (and, when given, its assignee), and logs
/// the change.
pub(crate) fn touch_saved<R: RecordType>(
    tx: &mut crate::tx::Tx<'_>,
    id: u64,
    assignee: Option<StaffId>,
) -> Result<RecordHead, EngineError> {
    let old: R = require(tx, id)?;
    let mut record = old.clone();
    record.touch(tx.now, assignee);
    save(tx, Some(&old), &record)?;
    let head = record.head();
    tx.log(head.record, crate::model::ChangeOp::Updated)?;
    Ok(head)
}

/// The id of the record of `kind` holding unique `value`, if any.
pub fn find_unique(
    reader: &mut dyn Reader,
    kind: RecordKind,
    value: &str,
) -> Result<Option<u64>, EngineError> {
    let prefix = IndexEntry::Unique(value.to_string()).prefix(kind);
    Ok(reader
        .scan_raw(Tree::RecordIndex, &prefix)?
        .first()
        .and_then(|(key, _)| crate::store::trees::trailing_u64(key)))
}

/// Record ids of `kind` in one index list, newest first.
pub fn ids_in_index<'a>(
    store: &'a dyn crate::store::Store,
    kind: RecordKind,
    entry: Option<&IndexEntry>,
) -> Box<dyn Iterator<Item = Result<u64, EngineError>> + 'a> {
    let (tree, prefix) = match entry {
        Some(entry) => (Tree::RecordIndex, entry.prefix(kind)),
        None => (Tree::Records, vec![kind.code()]),
    };
    Box::new(store.scan_prefix(tree, &prefix, true).map(move |item| {
        let (key, _) = item?;
        crate::store::trees::trailing_u64(&key).ok_or_else(|| crate::store::tables::short_key(tree))
    }))
}

/// The page of a record in the portal (`/portal/tickets/42`, `/portal/quotes/qt_7`);
/// `None` for companies, which have none.
pub fn portal_path(record: RecordRef) -> Option<String> {
    spec(record.kind).map(|spec| spec.portal_path(record.id))
}

/// The prefixed id (`qt_12`) of a record, as the API shows it.
pub fn display_id(record: RecordRef) -> String {
    let prefix = match record.kind {
        RecordKind::Company => crate::ids::CompanyId::PREFIX,
        RecordKind::Ticket => crate::ids::TicketId::PREFIX,
        RecordKind::Document => crate::ids::DocumentId::PREFIX,
        RecordKind::Quote => crate::ids::QuoteId::PREFIX,
        RecordKind::Order => crate::ids::OrderId::PREFIX,
        RecordKind::Invoice => crate::ids::InvoiceId::PREFIX,
        RecordKind::Subscription => crate::ids::SubscriptionId::PREFIX,
    };
    format!("{prefix}{}", record.id)
}

/// A record named by its prefixed id, whatever its kind (`qt_12`).
pub fn parse_record_id(kind: RecordKind, text: &str) -> Option<RecordRef> {
    let prefix = display_id(RecordRef { kind, id: 0 });
    let digits = text.strip_prefix(prefix.trim_end_matches('0'))?;
    if digits.starts_with('+') {
        return None;
    }
    digits.parse().ok().map(|id| RecordRef { kind, id })
}

/// The `RecordType` methods every kind with a `status` enum, an `updated_at` and an
/// `assignee_id` writes the same way: status codes are the enum's position + 1.
macro_rules! status_and_touch {
    ($status:ty) => {
        fn status_code(&self) -> u8 {
            self.status as u8 + 1
        }

        fn parse_status_code(status: &str) -> Option<u8> {
            <$status>::parse(status).map(|status| status as u8 + 1)
        }

        fn touch(
            &mut self,
            at: chrono::DateTime<chrono::Utc>,
            assignee: Option<crate::ids::StaffId>,
        ) {
            self.updated_at = at;
            if assignee.is_some() {
                self.assignee_id = assignee;
            }
        }
    };
}
pub(crate) use status_and_touch;

/// A kind, as the generic parts of the engine see it.
pub(crate) trait KindSpec: Sync {
    fn link_scopes(&self) -> &'static [LinkScope];
    fn audience(&self) -> Audience;
    fn head(&self, reader: &mut dyn Reader, id: u64) -> Result<Option<RecordHead>, EngineError>;
    /// Where a record of the kind is stored ([`RecordType::storage`]).
    fn storage(&self, id: u64) -> (Tree, Vec<u8>);
    /// Moves `updated_at` and, when given, the assignee; logs the change.
    fn touch(
        &self,
        tx: &mut crate::tx::Tx<'_>,
        id: u64,
        assignee: Option<StaffId>,
    ) -> Result<RecordHead, EngineError>;
    /// [`RecordType::take_reply`].
    fn take_reply(
        &self,
        reply: &mut TakingReply<'_, '_>,
        id: u64,
    ) -> Result<ReplyEffect, EngineError>;
    /// Tells the record's staff member of a customer's reply `text` (and its person,
    /// when the reply reopened it).
    fn notify_reply(
        &self,
        engine: &crate::Engine,
        tx: &mut crate::tx::Tx<'_>,
        id: u64,
        effect: ReplyEffect,
        text: &str,
    ) -> Result<(), EngineError>;
    fn search_text(&self, reader: &mut dyn Reader, id: u64) -> Result<Vec<String>, EngineError>;
    fn created_webhook(&self) -> Option<crate::webhooks::WebhookEvent>;
    fn webhook_event(&self, event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent>;
    fn portal_path(&self, id: u64) -> String;
    fn notice_data(
        &self,
        reader: &mut dyn Reader,
        id: u64,
        locale: Locale,
    ) -> Result<Value, EngineError>;
    /// Mails the record's person a public staff message (in the message's
    /// transaction).
    fn notify_message(
        &self,
        engine: &crate::Engine,
        tx: &mut crate::tx::Tx<'_>,
        id: u64,
        history: &crate::notify::HistoryExcerpt,
        extra: Value,
    ) -> Result<(), EngineError>;
    /// Tells a staff member the record is theirs now.
    fn notify_assigned(
        &self,
        engine: &crate::Engine,
        tx: &mut crate::tx::Tx<'_>,
        staff_id: StaffId,
        id: u64,
        history: &crate::notify::HistoryExcerpt,
    ) -> Result<(), EngineError>;
    /// Every record of the kind, for `reindex` and `verify`.
    fn all_ids<'a>(
        &self,
        store: &'a dyn crate::store::Store,
    ) -> Box<dyn Iterator<Item = Result<u64, EngineError>> + 'a>;
}

struct Spec<R>(PhantomData<fn() -> R>);

impl<R: RecordType> KindSpec for Spec<R> {
    fn link_scopes(&self) -> &'static [LinkScope] {
        R::LINK_SCOPES
    }

    fn audience(&self) -> Audience {
        R::AUDIENCE
    }

    fn head(&self, reader: &mut dyn Reader, id: u64) -> Result<Option<RecordHead>, EngineError> {
        Ok(load::<R>(reader, id)?.map(|record| record.head()))
    }

    fn storage(&self, id: u64) -> (Tree, Vec<u8>) {
        R::storage(id)
    }

    fn touch(
        &self,
        tx: &mut crate::tx::Tx<'_>,
        id: u64,
        assignee: Option<StaffId>,
    ) -> Result<RecordHead, EngineError> {
        touch_saved::<R>(tx, id, assignee)
    }

    fn take_reply(
        &self,
        reply: &mut TakingReply<'_, '_>,
        id: u64,
    ) -> Result<ReplyEffect, EngineError> {
        R::take_reply(reply, id)
    }

    fn notify_reply(
        &self,
        engine: &crate::Engine,
        tx: &mut crate::tx::Tx<'_>,
        id: u64,
        effect: ReplyEffect,
        text: &str,
    ) -> Result<(), EngineError> {
        let record: R = require(tx, id)?;
        let history = crate::notify::HistoryExcerpt::default();
        if effect == ReplyEffect::Reopened {
            engine.notify_reopened(tx, &record, &history)?;
        }
        engine.notify_customer_replied(tx, &record, &history, text)?;
        Ok(())
    }

    fn created_webhook(&self) -> Option<crate::webhooks::WebhookEvent> {
        R::CREATED_WEBHOOK
    }

    fn webhook_event(&self, event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent> {
        R::webhook_event(event)
    }

    fn portal_path(&self, id: u64) -> String {
        R::portal_path(id)
    }

    fn search_text(&self, reader: &mut dyn Reader, id: u64) -> Result<Vec<String>, EngineError> {
        Ok(load::<R>(reader, id)?
            .map(|record| record.search_text())
            .unwrap_or_default())
    }

    fn notice_data(
        &self,
        reader: &mut dyn Reader,
        id: u64,
        locale: Locale,
    ) -> Result<Value, EngineError> {
        Ok(require::<R>(reader, id)?.notice_data(locale))
    }

    fn notify_message(
        &self,
        engine: &crate::Engine,
        tx: &mut crate::tx::Tx<'_>,
        id: u64,
        history: &crate::notify::HistoryExcerpt,
        extra: Value,
    ) -> Result<(), EngineError> {
        let record: R = require(tx, id)?;
        engine.notify_requester(tx, R::MESSAGE_NOTICE, &record, history, extra)?;
        Ok(())
    }

    fn notify_assigned(
        &self,
        engine: &crate::Engine,
        tx: &mut crate::tx::Tx<'_>,
        staff_id: StaffId,
        id: u64,
        history: &crate::notify::HistoryExcerpt,
    ) -> Result<(), EngineError> {
        let record: R = require(tx, id)?;
        engine.notify_assignee(tx, staff_id, &record, history, "")?;
        Ok(())
    }

    fn all_ids<'a>(
        &self,
        store: &'a dyn crate::store::Store,
    ) -> Box<dyn Iterator<Item = Result<u64, EngineError>> + 'a> {
        let (tree, key) = R::storage(0);
        // The key of id 0 without its id is the kind's prefix in its tree.
        let prefix = key[..key.len() - 8].to_vec();
        Box::new(store.scan_prefix(tree, &prefix, false).map(move |item| {
            let (key, _) = item?;
            crate::store::trees::trailing_u64(&key)
                .ok_or_else(|| crate::store::tables::short_key(tree))
        }))
    }
}

/// The registry: one line per kind. `None` for companies, which have a history but
/// are not records customers act on.
pub(crate) fn spec(kind: RecordKind) -> Option<&'static dyn KindSpec> {
    match kind {
        RecordKind::Company => None,
        RecordKind::Ticket => Some(&Spec::<crate::model::Ticket>(PhantomData)),
        RecordKind::Document => Some(&Spec::<Document>(PhantomData)),
        RecordKind::Quote => Some(&Spec::<Quote>(PhantomData)),
        RecordKind::Order => Some(&Spec::<Order>(PhantomData)),
        RecordKind::Invoice => Some(&Spec::<Invoice>(PhantomData)),
        RecordKind::Subscription => Some(&Spec::<Subscription>(PhantomData)),
    }
}

/// The spec of a kind customers act on, or 404 for a company.
pub(crate) fn spec_of(kind: RecordKind) -> Result<&'static dyn KindSpec, EngineError> {
    spec(kind).ok_or_else(|| EngineError::not_found("record kind", kind))
}

/// The head of any record, or 404.
pub fn head_of(reader: &mut dyn Reader, record: RecordRef) -> Result<RecordHead, EngineError> {
    spec_of(record.kind)?
        .head(reader, record.id)?
        .ok_or_else(|| EngineError::not_found(record.kind.as_str(), display_id(record)))
}
