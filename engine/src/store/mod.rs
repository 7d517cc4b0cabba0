//! The store: typed trees over an ordered key-value backend, one transaction per
//! change, and batched commit for durability.
//!
//! Engine operations talk to [`Store`] and [`Txn`] only; `sled_store` is the one
//! backend today, made durable by its write-ahead log (`wal`). A second backend
//! implements [`Store`], and can reuse [`batch::Batcher`] by implementing
//! [`batch::BatchBackend`]: read, log one batch durably, apply it, checkpoint.

pub mod batch;
pub mod blobs;
pub mod codec;
pub mod memory;
pub mod sled_store;
pub mod stats;
pub mod tables;
pub mod trees;
pub mod wal;

use crate::error::EngineError;
pub use blobs::{BlobId, BlobStore};
pub use trees::Tree;

/// Bumped when a stored layout changes incompatibly; checked at open. Schema 6 is
/// the write-ahead log (`wal`): the trees are as in 5, but a build before it would
/// ignore `<data_dir>/wal`, losing what a crash left there, and a later start
/// would then apply that log over what the older build wrote since. The version
/// makes such a build refuse the data dir instead.
pub const SCHEMA_VERSION: u64 = 6;

/// Why the backend failed. The message is for logs and for the one-line CLI error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the data dir {path} is in use by another process (is a kontor server running?)")]
    Locked { path: String },
    #[error("storage failed: {0}")]
    Backend(String),
    /// The disk of the data dir is (nearly) full; nothing of the write was stored.
    #[error("the disk of the data dir is full ({detail}); nothing was stored")]
    Full { detail: String },
    /// A commit has not finished in time (a hung disk, or sled after a failed
    /// write). The write may or may not be stored; restart the server.
    #[error("the store has not finished a commit in {seconds} s (disk hung or full?); this write may or may not be stored; restart kontor")]
    Stalled { seconds: u64 },
    #[error("stored value in {tree} is unreadable: {reason}")]
    Corrupt { tree: &'static str, reason: String },
    #[error("the data dir was written by schema version {found}, this build reads {expected}")]
    SchemaMismatch { found: u64, expected: u64 },
    /// A blob the store names is not there (its file was deleted or lost).
    #[error("the blob {sha256} named in {tree} is missing")]
    BlobMissing { tree: &'static str, sha256: String },
    /// A blob's bytes no longer hash to its name (the file was changed or damaged).
    #[error("the blob {sha256} named in {tree} is damaged: its bytes hash to {found}")]
    BlobDamaged {
        tree: &'static str,
        sha256: String,
        found: String,
    },
}

/// A key and value read from a tree.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Reads and writes inside one transaction. Everything written through one `Txn`
/// commits together or not at all.
pub trait Txn {
    fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    fn insert(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), EngineError>;
    fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), EngineError>;
    /// Pairs whose key starts with `prefix`, in key order, as this transaction sees
    /// them: its own writes over everything committed before it.
    fn scan_prefix(&mut self, tree: Tree, prefix: &[u8]) -> Result<Vec<Pair>, EngineError>;
    /// Says that this transaction names the blob `id` (written before it with
    /// [`Store::put_blob`]): the blob is made durable before the transaction is.
    fn note_blob(&mut self, id: &BlobId);
}

/// The work of one transaction. A backend may run it more than once (on a conflict),
/// so it must not have effects outside the `Txn`.
pub type TxnWork<'a> = dyn FnMut(&mut dyn Txn) -> Result<(), EngineError> + 'a;

/// An ordered key-value store of named trees.
pub trait Store: Send + Sync {
    /// Reads durable state. A transaction whose batch is not yet durable is not
    /// visible here; one that is becomes visible, whole, once its batch is logged,
    /// before its writer is answered (the batcher's unapplied batches lie over the
    /// backend until they are applied). Two reads may see two states: only a
    /// transaction, or `exclusive`, reads one.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Pairs whose key starts with `prefix`, in key order (or reversed).
    fn scan_prefix<'a>(
        &'a self,
        tree: Tree,
        prefix: &[u8],
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a>;

    /// Pairs with `key > after`, in key order: for following the changelog.
    fn scan_after<'a>(
        &'a self,
        tree: Tree,
        after: &[u8],
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a>;

    /// Runs `work` as one atomic transaction over all trees and returns once it is
    /// on disk. Concurrent callers share one flush (group commit).
    fn transact_durable(&self, work: &mut TxnWork<'_>) -> Result<(), EngineError>;

    /// Returns once everything committed before the call, including `insert_raw`,
    /// is on disk.
    fn durable(&self) -> Result<(), StoreError>;

    /// Where blob bytes live (raw mail, attachments): outside the trees, which
    /// keep only their hashes.
    fn blobs(&self) -> &dyn BlobStore;

    /// Writes `bytes` as the blob `id` (which is `blobs::blob_id(bytes)`: callers
    /// have hashed them already), not yet durable; a transaction that names it calls
    /// [`Txn::note_blob`]. Refused like a batch when the disk is full.
    fn put_blob(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.blobs().put(id, bytes)
    }

    /// Inserts without a transaction; only for `import` into an empty store.
    fn insert_raw(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// True when no tree holds anything.
    fn is_empty(&self) -> Result<bool, StoreError>;

    /// Runs `work` while no commit is pending or running and none can start, so that
    /// what it reads through this store is one consistent state. Writers wait.
    fn exclusive(&self, work: &mut dyn FnMut()) -> Result<(), StoreError> {
        work();
        Ok(())
    }

    /// The batched commit's measurements, when the backend batches.
    fn commit_stats(&self) -> Option<stats::CommitSnapshot> {
        None
    }

    /// The bytes the store takes on disk, when it lives on one.
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}
