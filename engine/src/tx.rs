//! The write path: one engine change is one store transaction that writes the record,
//! its history entry and its changelog entry together (DESIGN.md invariant 2), and the
//! caller is answered only once a batched commit has made it durable
//! (`store::batch`).

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::EngineError;
use crate::ids::HistoryId;
use crate::model::{
    Author, Change, ChangeOp, EntryBody, HistoryEntry, HistoryHead, RecordRef, Visibility,
};
use crate::store::codec::{decode, encode};
use crate::store::tables::{HistoryKey, Reader, StoreReader, Writer, HISTORY, HISTORY_HEADS};
use crate::store::{Pair, Tree, Txn};
use crate::Engine;

/// Names of the sequences kept in the meta tree.
pub(crate) mod counter {
    /// One id sequence for every record, so keys sort in creation order.
    pub const RECORD_ID: &[u8] = b"seq.record_id";
    pub const TICKET_NUMBER: &[u8] = b"seq.ticket_number";
    pub const CHANGELOG: &[u8] = b"seq.changelog";
}

/// A transaction in progress, with the helpers every operation needs.
pub(crate) struct Tx<'a> {
    txn: &'a mut dyn Txn,
    pub now: DateTime<Utc>,
    /// Records changed so far; one changelog entry lists them at the end.
    touched: Vec<RecordRef>,
    /// Set when the transaction queued a notice, to wake the sender once it commits.
    pub queued_notices: bool,
    /// The webhook events this transaction caused so far, queued at its end.
    noted_webhooks: Vec<crate::webhooks::NotedEvent>,
}

impl Tx<'_> {
    pub fn get<T: DeserializeOwned>(
        &mut self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, EngineError> {
        match self.txn.get(tree, key)? {
            Some(bytes) => Ok(Some(decode(tree, &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn get_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.txn.get(tree, key)
    }

    pub fn put<T: Serialize>(
        &mut self,
        tree: Tree,
        key: &[u8],
        value: &T,
    ) -> Result<(), EngineError> {
        self.txn.insert(tree, key, &encode(value))
    }

    /// Names the blob `id` of `bytes` length in `tree` (`raw_mail`, `blobs`) unless
    /// it is named there already. The blob was written before the transaction
    /// (`Store::put_blob`); a new name makes the batch sync it before it commits.
    pub fn put_blob_reference(
        &mut self,
        tree: Tree,
        id: &crate::store::BlobId,
        bytes: u64,
    ) -> Result<(), EngineError> {
        if self.txn.get(tree, id)?.is_some() {
            return Ok(());
        }
        self.txn.note_blob(id);
        self.txn
            .insert(tree, id, &crate::store::blobs::reference_value(bytes))
    }

    pub fn put_raw(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
        self.txn.insert(tree, key, value)
    }

    pub fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), EngineError> {
        self.txn.remove(tree, key)
    }

    /// The next value of a sequence; the first is 1. Gap-free because a transaction
    /// that aborts takes its increment with it.
    pub fn next(&mut self, name: &[u8]) -> Result<u64, EngineError> {
        let current = self
            .txn
            .get(Tree::Meta, name)?
            .and_then(|bytes| crate::store::trees::trailing_u64(&bytes))
            .unwrap_or(0);
        let next = current + 1;
        self.txn.insert(Tree::Meta, name, &next.to_be_bytes())?;
        Ok(next)
    }

    pub fn next_id(&mut self) -> Result<u64, EngineError> {
        self.next(counter::RECORD_ID)
    }

    /// Notes that `record` changed; the transaction's one changelog entry names it.
    pub fn log(&mut self, record: RecordRef, op: ChangeOp) -> Result<(), EngineError> {
        if op == ChangeOp::Created {
            crate::webhooks::note_created(&mut self.noted_webhooks, record);
        }
        if !self.touched.contains(&record) {
            self.touched.push(record);
        }
        Ok(())
    }

    /// Writes the changelog entry of this transaction, if it changed any record. One
    /// entry a transaction, not one a record: every store write costs, and followers
    /// re-read the records anyway.
    fn write_changelog(&mut self) -> Result<(), EngineError> {
        if self.touched.is_empty() {
            return Ok(());
        }
        let seq = self.next(counter::CHANGELOG)?;
        let change = Change {
            seq,
            at: self.now,
            records: std::mem::take(&mut self.touched),
        };
        self.put(Tree::Changelog, &seq.to_be_bytes(), &change)
    }

    /// Appends a history entry to `record` (and the changelog entry that announces it).
    pub fn append_history(
        &mut self,
        record: RecordRef,
        author: Author,
        visibility: Visibility,
        body: EntryBody,
    ) -> Result<HistoryEntry, EngineError> {
        let id = HistoryId(self.next_id()?);
        let mut entry = HistoryEntry {
            id,
            record,
            at: self.now,
            author,
            visibility,
            body,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let head = HISTORY_HEADS.get(self, &record)?;
        let prev_hash = head
            .as_ref()
            .map_or(crate::chain::GENESIS, |head| head.hash.as_str());
        crate::chain::seal(prev_hash, &mut entry);
        let head = HistoryHead {
            hash: entry.hash.clone(),
            entries: head.map_or(0, |head| head.entries) + 1,
        };
        HISTORY.put(self, &HistoryKey { record, entry: id }, &entry)?;
        HISTORY_HEADS.put(self, &record, &head)?;
        self.log(record, ChangeOp::HistoryAppended)?;
        crate::webhooks::note_entry(&mut self.noted_webhooks, &entry);
        Ok(entry)
    }
}

impl Reader for Tx<'_> {
    fn read_raw(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.txn.get(tree, key)
    }

    fn scan_raw(&mut self, tree: Tree, prefix: &[u8]) -> Result<Vec<Pair>, EngineError> {
        self.txn.scan_prefix(tree, prefix)
    }
}

impl Writer for Tx<'_> {
    fn write_raw(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
        self.txn.insert(tree, key, value)
    }

    fn remove_raw(&mut self, tree: Tree, key: &[u8]) -> Result<(), EngineError> {
        self.txn.remove(tree, key)
    }
}

impl Engine {
    /// Runs `work` as one transaction and returns its result once it is durable.
    /// `work` may run more than once (on a conflict), so it must only touch the `Tx`,
    /// and it runs while other writers wait, so it must not block on anything else.
    pub(crate) fn write<R>(
        &self,
        mut work: impl FnMut(&mut Tx<'_>) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        let now = self.clock.now();
        let mut output = None;
        let mut queued_notices = false;
        let mut queued_webhooks = false;
        self.store.transact_durable(&mut |txn: &mut dyn Txn| {
            let mut tx = Tx {
                txn,
                now,
                touched: Vec::new(),
                queued_notices: false,
                noted_webhooks: Vec::new(),
            };
            output = Some(work(&mut tx)?);
            queued_notices = tx.queued_notices;
            let noted = std::mem::take(&mut tx.noted_webhooks);
            queued_webhooks = crate::webhooks::queue_noted(&mut tx, &self.config.webhooks, noted)?;
            tx.write_changelog()
        })?;
        if queued_notices {
            self.outbox_signal.bump();
        }
        if queued_webhooks {
            self.webhook_signal.bump();
        }
        output.ok_or_else(|| {
            EngineError::Store(crate::store::StoreError::Backend(
                "transaction finished without a result".into(),
            ))
        })
    }

    /// The committed state, for typed tables outside a transaction.
    pub(crate) fn reader(&self) -> StoreReader<'_> {
        StoreReader(self.store.as_ref())
    }

    /// Reads one record outside a transaction.
    pub(crate) fn read<T: DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, EngineError> {
        match self.store.get(tree, key)? {
            Some(bytes) => Ok(Some(decode(tree, &bytes)?)),
            None => Ok(None),
        }
    }
}
