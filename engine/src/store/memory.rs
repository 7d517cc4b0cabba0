//! A second backend of [`Store`], in memory: the engine's unit tests run on it, which
//! shows that operations depend on the store's traits and not on sled. It shares the
//! batcher with sled, so transactions see the same overlay rules.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::batch::{BatchBackend, Batcher, Logged, WriteSet};
use super::blobs::MemoryBlobs;
use super::{BlobStore, Pair, Store, StoreError, Tree, TxnWork};
use crate::error::EngineError;

/// Every pair of every tree, keyed by (tree index, key) so a tree is one range.
type Pairs = BTreeMap<(usize, Vec<u8>), Vec<u8>>;

/// Every tree as one ordered map keyed by (tree, key). Nothing survives the process.
#[derive(Default)]
pub struct MemoryStore {
    data: RwLock<Pairs>,
    blobs: MemoryBlobs,
    batcher: Batcher,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn applied(&self, tree: Tree, key: &[u8]) -> Option<Vec<u8>> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        data.get(&(tree.index(), key.to_vec())).cloned()
    }

    fn pairs(&self, tree: Tree, prefix: &[u8]) -> Vec<Pair> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        data.range((tree.index(), prefix.to_vec())..)
            .take_while(|((t, key), _)| *t == tree.index() && key.starts_with(prefix))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect()
    }
}

impl BatchBackend for MemoryStore {
    fn read(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.applied(tree, key))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        Ok(self.pairs(tree, prefix))
    }

    /// Nothing here survives the process, so the log only makes the blobs as
    /// durable as they get in memory.
    fn log(&self, batch: &WriteSet) -> Result<Logged, StoreError> {
        self.blobs.sync(&batch.blobs())?;
        Ok(0)
    }

    fn apply(&self, batch: &WriteSet, _logged: Logged) -> Result<(), StoreError> {
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        for tree in batch.trees() {
            for (key, value) in batch.writes_to(tree) {
                match value {
                    Some(value) => data.insert((tree.index(), key.to_vec()), value.to_vec()),
                    None => data.remove(&(tree.index(), key.to_vec())),
                };
            }
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.batcher.read(self, tree, key)
    }

    fn scan_prefix<'a>(
        &'a self,
        tree: Tree,
        prefix: &[u8],
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a> {
        let mut pairs = self.pairs(tree, prefix);
        if reverse {
            pairs.reverse();
        }
        let prefix = prefix.to_vec();
        self.batcher.merge_unapplied(
            tree,
            Box::new(pairs.into_iter().map(Ok)),
            |key| key.starts_with(&prefix),
            reverse,
        )
    }

    fn scan_after<'a>(
        &'a self,
        tree: Tree,
        after: &[u8],
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a> {
        use std::ops::Bound;
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        let start = Bound::Excluded((tree.index(), after.to_vec()));
        let end = Bound::Excluded((tree.index() + 1, Vec::new()));
        let pairs: Vec<Pair> = data
            .range((start, end))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect();
        drop(data);
        self.batcher.merge_unapplied(
            tree,
            Box::new(pairs.into_iter().map(Ok)),
            |key| key > after,
            false,
        )
    }

    fn transact_durable(&self, work: &mut TxnWork<'_>) -> Result<(), EngineError> {
        self.batcher.transact_durable(self, work)
    }

    fn durable(&self) -> Result<(), StoreError> {
        self.batcher.flush(self)
    }

    fn exclusive(&self, work: &mut dyn FnMut()) -> Result<(), StoreError> {
        self.batcher.exclusive(self, work)
    }

    fn commit_stats(&self) -> Option<super::stats::CommitSnapshot> {
        Some(self.batcher.stats().snapshot())
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    fn insert_raw(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        data.insert((tree.index(), key.to_vec()), value.to_vec());
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        Ok(data
            .keys()
            .all(|(tree, key)| *tree == Tree::Meta.index() && key == b"schema_version"))
    }
}
