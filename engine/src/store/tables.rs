//! Typed tables: a tree with its key and value types, read the same way inside a
//! transaction (`Tx`) and outside it (`StoreReader`), with range reads in both.
//! The key layout of each tree is in `trees.rs`; what a key is made of is the
//! [`TableKey`] of its type, so no operation builds keys by hand.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, encode};
use super::{Pair, Store, Tree};
use crate::error::EngineError;
use crate::ids::*;
use crate::model::*;

/// The bytes a value is stored under.
pub trait TableKey {
    fn table_key(&self) -> Vec<u8>;
}

macro_rules! id_keys {
    ($($id:ty),*) => {$(
        impl TableKey for $id {
            fn table_key(&self) -> Vec<u8> {
                self.key().to_vec()
            }
        }
    )*};
}
/// An id stored as a lookup table's value (its 8-byte key).
pub trait StoredId: TableKey + Sized {
    fn from_stored(bytes: &[u8]) -> Option<Self>;
}

macro_rules! stored_ids {
    ($($id:ty),*) => {$(
        impl StoredId for $id {
            fn from_stored(bytes: &[u8]) -> Option<Self> {
                <$id>::from_key(bytes)
            }
        }
    )*};
}
stored_ids!(CompanyId, ContactId, StaffId);

/// An address as a key: lower case, as `EmailAddress` keeps it.
impl TableKey for crate::validate::EmailAddress {
    fn table_key(&self) -> Vec<u8> {
        self.as_str().as_bytes().to_vec()
    }
}

/// A text as a key (an onRetail instance id), as written.
impl TableKey for str {
    fn table_key(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

id_keys!(
    CompanyId,
    ContactId,
    StaffId,
    TicketId,
    AttachmentId,
    QuarantineId
);

/// `kind code (u8) ++ record id (u64 BE)`.
impl TableKey for RecordRef {
    fn table_key(&self) -> Vec<u8> {
        self.key_prefix().to_vec()
    }
}

/// A history entry: its record's prefix, then its own id, so a record's history
/// is one range in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryKey {
    pub record: RecordRef,
    pub entry: HistoryId,
}

impl TableKey for HistoryKey {
    fn table_key(&self) -> Vec<u8> {
        let mut key = self.record.key_prefix().to_vec();
        key.extend_from_slice(&self.entry.key());
        key
    }
}

/// The SHA-256 of a secret (an API key, a portal session): what is stored in its
/// place, so a copy of the store holds no usable secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        use sha2::Digest;
        SecretHash(sha2::Sha256::digest(secret.as_bytes()).into())
    }

    /// The hash a stored key holds; `None` for a key of another shape.
    pub fn from_stored(key: &[u8]) -> Option<Self> {
        key.try_into().ok().map(SecretHash)
    }
}

impl TableKey for SecretHash {
    fn table_key(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

/// A row of a sequence-keyed tree (a notice in the outbox, a webhook delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowId(pub u64);

impl TableKey for RowId {
    fn table_key(&self) -> Vec<u8> {
        self.0.to_be_bytes().to_vec()
    }
}

/// A pending row in a due index: when its next attempt is due (unix millis, u64
/// BE), then its id (u64 BE), so a sender reads only the rows that are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueKey {
    pub at: chrono::DateTime<chrono::Utc>,
    pub id: u64,
}

impl DueKey {
    pub fn new(at: chrono::DateTime<chrono::Utc>, id: u64) -> Self {
        DueKey { at, id }
    }

    /// The due time's part of a key: the keys at or before it are due.
    pub fn millis(at: chrono::DateTime<chrono::Utc>) -> [u8; 8] {
        (at.timestamp_millis().max(0) as u64).to_be_bytes()
    }

    /// The `(due millis, id)` a stored key holds; `None` for a key of another shape.
    pub fn split(key: &[u8]) -> Option<([u8; 8], u64)> {
        let at: [u8; 8] = key.get(..8)?.try_into().ok()?;
        let id: [u8; 8] = key.get(8..16)?.try_into().ok()?;
        (key.len() == 16).then_some((at, u64::from_be_bytes(id)))
    }
}

impl TableKey for DueKey {
    fn table_key(&self) -> Vec<u8> {
        let mut key = Self::millis(self.at).to_vec();
        key.extend_from_slice(&self.id.to_be_bytes());
        key
    }
}

/// A stored key too short for its tree's layout: the store is damaged.
pub(crate) fn short_key(tree: Tree) -> EngineError {
    EngineError::Store(super::StoreError::Corrupt {
        tree: tree.name(),
        reason: "short key".into(),
    })
}

/// Reads committed state (outside a transaction) or a transaction's view.
pub trait Reader {
    fn read_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Pairs whose key starts with `prefix`, in key order.
    fn scan_raw(&mut self, tree: Tree, prefix: &[u8]) -> Result<Vec<Pair>, EngineError>;
}

/// Where writes go: a running transaction.
pub trait Writer: Reader {
    fn write_raw(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), EngineError>;
    fn remove_raw(&mut self, tree: Tree, key: &[u8]) -> Result<(), EngineError>;
}

/// The committed state of a store, as a [`Reader`].
pub struct StoreReader<'a>(pub &'a dyn Store);

impl Reader for StoreReader<'_> {
    fn read_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.0.get(tree, key)?)
    }

    fn scan_raw(&mut self, tree: Tree, prefix: &[u8]) -> Result<Vec<Pair>, EngineError> {
        self.0
            .scan_prefix(tree, prefix, false)
            .map(|item| item.map_err(EngineError::from))
            .collect()
    }
}

/// A tree whose keys are `K` and whose values are `V` (JSON).
pub struct Table<K: ?Sized, V> {
    pub tree: Tree,
    _types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: ?Sized, V> Copy for Table<K, V> {}

impl<K: TableKey + ?Sized, V: Serialize + DeserializeOwned> Table<K, V> {
    pub const fn new(tree: Tree) -> Self {
        Table {
            tree,
            _types: PhantomData,
        }
    }

    pub fn get(&self, reader: &mut dyn Reader, key: &K) -> Result<Option<V>, EngineError> {
        match reader.read_raw(self.tree, &key.table_key())? {
            Some(bytes) => Ok(Some(decode(self.tree, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn put(&self, writer: &mut dyn Writer, key: &K, value: &V) -> Result<(), EngineError> {
        writer.write_raw(self.tree, &key.table_key(), &encode(value))
    }

    pub fn remove(&self, writer: &mut dyn Writer, key: &K) -> Result<(), EngineError> {
        writer.remove_raw(self.tree, &key.table_key())
    }

    /// Every key, streamed from the committed state, in order or reversed.
    pub fn keys<'a>(
        &self,
        store: &'a dyn Store,
        reverse: bool,
    ) -> impl Iterator<Item = Result<Vec<u8>, EngineError>> + 'a {
        store
            .scan_prefix(self.tree, &[], reverse)
            .map(|item| item.map(|(key, _)| key).map_err(EngineError::from))
    }

    /// Every value, streamed from the committed state, in key order or reversed.
    pub fn values<'a>(
        &self,
        store: &'a dyn Store,
        reverse: bool,
    ) -> impl Iterator<Item = Result<V, EngineError>> + 'a
    where
        V: 'a,
    {
        let tree = self.tree;
        store.scan_prefix(tree, &[], reverse).map(move |item| {
            let (_, bytes) = item?;
            Ok(decode(tree, &bytes)?)
        })
    }

    /// Every stored key with its value, in key order (a transaction's view too).
    pub fn entries(&self, reader: &mut dyn Reader) -> Result<Vec<(Vec<u8>, V)>, EngineError> {
        reader
            .scan_raw(self.tree, &[])?
            .into_iter()
            .map(|(key, bytes)| Ok((key, decode(self.tree, &bytes)?)))
            .collect()
    }

    /// The values whose keys start with `prefix`, in key order.
    pub fn scan(&self, reader: &mut dyn Reader, prefix: &[u8]) -> Result<Vec<V>, EngineError> {
        reader
            .scan_raw(self.tree, prefix)?
            .into_iter()
            .map(|(_, bytes)| decode(self.tree, &bytes).map_err(EngineError::from))
            .collect()
    }
}

/// A tree that finds an id by a value unique to it (an address, an onRetail
/// instance): key `K`, value the id's 8 bytes.
pub struct LookupTable<K: ?Sized, I> {
    pub tree: Tree,
    _types: PhantomData<fn(&K) -> I>,
}

impl<K: ?Sized, I> Clone for LookupTable<K, I> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: ?Sized, I> Copy for LookupTable<K, I> {}

impl<K: TableKey + ?Sized, I: StoredId> LookupTable<K, I> {
    pub const fn new(tree: Tree) -> Self {
        LookupTable {
            tree,
            _types: PhantomData,
        }
    }

    pub fn get(&self, reader: &mut dyn Reader, key: &K) -> Result<Option<I>, EngineError> {
        Ok(reader
            .read_raw(self.tree, &key.table_key())?
            .and_then(|bytes| I::from_stored(&bytes)))
    }

    pub fn put(&self, writer: &mut dyn Writer, key: &K, id: &I) -> Result<(), EngineError> {
        writer.write_raw(self.tree, &key.table_key(), &id.table_key())
    }
}

/// A tree listing children under a parent, in creation order: key `parent (u64
/// BE) ++ child (u64 BE)`, no value (a company's contacts, a reseller's customers).
pub struct ChildTable<P, C> {
    pub tree: Tree,
    _types: PhantomData<fn(&P) -> C>,
}

impl<P, C> Clone for ChildTable<P, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, C> Copy for ChildTable<P, C> {}

impl<P: TableKey, C: StoredId> ChildTable<P, C> {
    pub const fn new(tree: Tree) -> Self {
        ChildTable {
            tree,
            _types: PhantomData,
        }
    }

    pub fn insert(
        &self,
        writer: &mut dyn Writer,
        parent: &P,
        child: &C,
    ) -> Result<(), EngineError> {
        let mut key = parent.table_key();
        key.extend_from_slice(&child.table_key());
        writer.write_raw(self.tree, &key, &[])
    }

    /// The children of `parent`, streamed from the committed state.
    pub fn children<'a>(
        &self,
        store: &'a dyn Store,
        parent: &P,
        newest_first: bool,
    ) -> impl Iterator<Item = Result<C, EngineError>> + 'a {
        let tree = self.tree;
        let prefix = parent.table_key();
        let skip = prefix.len();
        store
            .scan_prefix(tree, &prefix, newest_first)
            .map(move |item| {
                let (key, _) = item?;
                key.get(skip..)
                    .and_then(C::from_stored)
                    .ok_or_else(|| crate::store::tables::short_key(tree))
            })
    }
}

/// A tree of keys without values: an index, or the rows still due.
pub struct IndexTable<K> {
    pub tree: Tree,
    _key: PhantomData<fn(&K)>,
}

impl<K> Clone for IndexTable<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for IndexTable<K> {}

impl<K: TableKey> IndexTable<K> {
    pub const fn new(tree: Tree) -> Self {
        IndexTable {
            tree,
            _key: PhantomData,
        }
    }

    pub fn contains(&self, reader: &mut dyn Reader, key: &K) -> Result<bool, EngineError> {
        Ok(reader.read_raw(self.tree, &key.table_key())?.is_some())
    }

    pub fn insert(&self, writer: &mut dyn Writer, key: &K) -> Result<(), EngineError> {
        writer.write_raw(self.tree, &key.table_key(), &[])
    }

    pub fn remove(&self, writer: &mut dyn Writer, key: &K) -> Result<(), EngineError> {
        writer.remove_raw(self.tree, &key.table_key())
    }

    /// Every key, in order, streamed from the committed state.
    pub fn keys<'a>(
        &self,
        store: &'a dyn Store,
    ) -> impl Iterator<Item = Result<Vec<u8>, EngineError>> + 'a {
        store
            .scan_prefix(self.tree, &[], false)
            .map(|item| item.map(|(key, _)| key).map_err(EngineError::from))
    }
}

/// A list a ticket is in: its own tree, whose keys are the list's value, then the
/// ticket's id (its number), so a list is one range, newest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketList {
    Status(TicketStatus),
    Company(CompanyId),
    Contact(ContactId),
}

impl TicketList {
    /// Every list `ticket` is in.
    pub fn of(ticket: &Ticket) -> Vec<TicketList> {
        let mut lists = vec![TicketList::Status(ticket.status)];
        lists.extend(ticket.company_id.map(TicketList::Company));
        lists.extend(ticket.requester.contact_id.map(TicketList::Contact));
        lists
    }

    fn tree(&self) -> Tree {
        match self {
            TicketList::Status(_) => Tree::TicketsByStatus,
            TicketList::Company(_) => Tree::TicketsByCompany,
            TicketList::Contact(_) => Tree::TicketsByContact,
        }
    }

    fn prefix(&self) -> Vec<u8> {
        match self {
            TicketList::Status(status) => vec![status.code()],
            TicketList::Company(company) => company.key().to_vec(),
            TicketList::Contact(contact) => contact.key().to_vec(),
        }
    }

    fn key(&self, ticket: TicketId) -> Vec<u8> {
        let mut key = self.prefix();
        key.extend_from_slice(&ticket.key());
        key
    }

    pub fn contains(&self, reader: &mut dyn Reader, ticket: TicketId) -> Result<bool, EngineError> {
        Ok(reader.read_raw(self.tree(), &self.key(ticket))?.is_some())
    }

    pub fn insert(&self, writer: &mut dyn Writer, ticket: TicketId) -> Result<(), EngineError> {
        writer.write_raw(self.tree(), &self.key(ticket), &[])
    }

    pub fn remove(&self, writer: &mut dyn Writer, ticket: TicketId) -> Result<(), EngineError> {
        writer.remove_raw(self.tree(), &self.key(ticket))
    }

    /// The list's tickets, newest first (or oldest first), streamed from the
    /// committed state.
    pub fn ids<'a>(
        &self,
        store: &'a dyn Store,
        newest_first: bool,
    ) -> impl Iterator<Item = Result<TicketId, EngineError>> + 'a {
        let tree = self.tree();
        store
            .scan_prefix(tree, &self.prefix(), newest_first)
            .map(move |item| {
                let (key, _) = item?;
                super::trees::trailing_u64(&key)
                    .map(TicketId)
                    .ok_or_else(|| crate::store::tables::short_key(tree))
            })
    }
}

/// Replaces the lists `old` was in by those `new` is in.
pub fn relist_ticket(
    writer: &mut dyn Writer,
    old: Option<&Ticket>,
    new: &Ticket,
) -> Result<(), EngineError> {
    let lists = TicketList::of(new);
    for list in old.map(TicketList::of).unwrap_or_default() {
        if !lists.contains(&list) {
            list.remove(writer, old.map_or(new.id, |old| old.id))?;
        }
    }
    for list in lists {
        list.insert(writer, new.id)?;
    }
    Ok(())
}

/// A count per address and hour (the mail loop guard, automatic notices, login
/// links): key `address ++ 0x00 ++ unix hour (u64 BE)`, value the count (u64 BE).
/// `kontor jobs` drops the hours gone by.
#[derive(Debug, Clone, Copy)]
pub struct HourlyCount(pub Tree);

impl HourlyCount {
    fn key(address: &crate::validate::EmailAddress, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
        let hour = (at.timestamp().max(0) as u64) / 3600;
        let mut key = address.as_str().as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&hour.to_be_bytes());
        key
    }

    /// The count of the hour `at` is in.
    pub fn get(
        &self,
        reader: &mut dyn Reader,
        address: &crate::validate::EmailAddress,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, EngineError> {
        Ok(reader
            .read_raw(self.0, &Self::key(address, at))?
            .and_then(|bytes| super::trees::trailing_u64(&bytes))
            .unwrap_or(0))
    }

    pub fn set(
        &self,
        writer: &mut dyn Writer,
        address: &crate::validate::EmailAddress,
        at: chrono::DateTime<chrono::Utc>,
        count: u64,
    ) -> Result<(), EngineError> {
        writer.write_raw(self.0, &Self::key(address, at), &count.to_be_bytes())
    }
}

pub const NOTICES_PER_HOUR: HourlyCount = HourlyCount(Tree::NoticesPerHour);
pub const SENDER_HOURLY: HourlyCount = HourlyCount(Tree::SenderHourly);
pub const LOGIN_LINKS_HOURLY: HourlyCount = HourlyCount(Tree::LoginLinksHourly);
pub const BOUNCES: Table<crate::validate::EmailAddress, Bounce> = Table::new(Tree::Bounces);

pub const COMPANIES: Table<CompanyId, Company> = Table::new(Tree::Companies);
pub const CONTACTS: Table<ContactId, Contact> = Table::new(Tree::Contacts);
pub const STAFF: Table<StaffId, Staff> = Table::new(Tree::Staff);
pub const TICKETS: Table<TicketId, Ticket> = Table::new(Tree::Tickets);
pub const HISTORY: Table<HistoryKey, HistoryEntry> = Table::new(Tree::History);
pub const HISTORY_HEADS: Table<RecordRef, HistoryHead> = Table::new(Tree::HistoryHeads);
pub const ATTACHMENTS: Table<AttachmentId, Attachment> = Table::new(Tree::Attachments);
/// Keyed by the intake key: `mid:<Message-ID>`, or `sha:<hex>` without one.
pub const MAIL_INTAKE: Table<str, crate::intake::IntakeRecord> = Table::new(Tree::MailIntake);
pub const QUARANTINE: Table<QuarantineId, crate::intake::QuarantinedMail> =
    Table::new(Tree::Quarantine);
/// Keyed by the idempotency key, prefixed by its door (`onretail:`).
pub const IDEMPOTENCY: Table<str, IdempotencyRecord> = Table::new(Tree::Idempotency);
pub const CONTACT_BY_EMAIL: LookupTable<crate::validate::EmailAddress, ContactId> =
    LookupTable::new(Tree::ContactByEmail);
pub const STAFF_BY_EMAIL: LookupTable<crate::validate::EmailAddress, StaffId> =
    LookupTable::new(Tree::StaffByEmail);
pub const COMPANY_BY_INSTANCE: LookupTable<str, CompanyId> =
    LookupTable::new(Tree::CompanyByInstance);
pub const API_KEYS: Table<SecretHash, ApiKey> = Table::new(Tree::ApiKeys);
pub const PORTAL_SESSIONS: Table<SecretHash, crate::portal::PortalSession> =
    Table::new(Tree::PortalSessions);
pub const CONTACTS_OF_COMPANY: ChildTable<CompanyId, ContactId> =
    ChildTable::new(Tree::ContactsByCompany);
pub const CUSTOMERS_OF_RESELLER: ChildTable<CompanyId, CompanyId> =
    ChildTable::new(Tree::CompaniesByReseller);
pub const OUTBOX: Table<RowId, OutboxRow> = Table::new(Tree::Outbox);
pub const OUTBOX_DUE: IndexTable<DueKey> = IndexTable::new(Tree::OutboxDue);
pub const WEBHOOKS: Table<RowId, crate::webhooks::WebhookDelivery> = Table::new(Tree::Webhooks);
pub const WEBHOOKS_DUE: IndexTable<DueKey> = IndexTable::new(Tree::WebhooksDue);
