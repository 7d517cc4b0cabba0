//! `kontor verify`: every history chain in the store, walked and recomputed; and the
//! migration that gives the histories of a schema 2 store their chains.

use crate::chain::{self, ChainBreak, ChainWalker};
use crate::error::EngineError;
use crate::model::{HistoryEntry, HistoryHead, RecordRef};
use crate::store::codec::decode;
use crate::store::tables::{HistoryKey, HISTORY, HISTORY_HEADS};
use crate::store::Tree;
use crate::Engine;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub entries: u64,
}

/// Why `verify` failed: a broken chain, or a store it could not read.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] ChainBreak),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Walks every record's history chain: each entry must link to the one before and
    /// hash to what it says, and the chain's stored head must name the last entry (so
    /// a removed last entry is caught too).
    pub fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let mut walker = ChainWalker::default();
        let mut report = VerifyReport {
            records: 0,
            entries: 0,
        };
        let mut current: Option<(RecordRef, String)> = None;
        for item in self.store.scan_prefix(Tree::History, &[], false) {
            let (_, value) = item.map_err(EngineError::from)?;
            let entry: HistoryEntry = decode(Tree::History, &value).map_err(EngineError::from)?;
            if current.as_ref().map(|(record, _)| *record) != Some(entry.record) {
                if let Some((record, last)) = current.take() {
                    self.check_head(record, &last)?;
                }
                report.records += 1;
            }
            walker.check(&entry)?;
            report.entries += 1;
            current = Some((entry.record, entry.hash.clone()));
        }
        if let Some((record, last)) = current {
            self.check_head(record, &last)?;
        }
        Ok(report)
    }

    fn check_head(&self, record: RecordRef, last_hash: &str) -> Result<(), VerifyError> {
        let head = HISTORY_HEADS.get(&mut self.reader(), &record)?;
        match head {
            Some(head) if head.hash == last_hash => Ok(()),
            other => Err(ChainBreak::Truncated {
                record: chain::record_name(record),
                expected: other
                    .map(|head| head.hash)
                    .unwrap_or_else(|| "nothing".into()),
                found: last_hash.to_string(),
            }
            .into()),
        }
    }

    /// Schema 2 → 3: seals every history entry into its record's chain and writes
    /// the chains' heads. Entries are rewritten in history order, a record at a time.
    pub(crate) fn migrate_history_chains(&self) -> Result<u64, EngineError> {
        let mut sealed = 0u64;
        let mut batch: Vec<HistoryEntry> = Vec::new();
        let mut previous: Option<(RecordRef, String)> = None;
        let entries: Vec<HistoryEntry> = self
            .store
            .scan_prefix(Tree::History, &[], false)
            .map(|item| {
                let (_, value) = item?;
                Ok(decode(Tree::History, &value)?)
            })
            .collect::<Result<_, EngineError>>()?;
        for mut entry in entries {
            let prev_hash = match &previous {
                Some((record, hash)) if *record == entry.record => hash.clone(),
                _ => chain::GENESIS.to_string(),
            };
            chain::seal(&prev_hash, &mut entry);
            previous = Some((entry.record, entry.hash.clone()));
            batch.push(entry);
            if batch.len() >= 1000 {
                sealed += self.write_sealed(&std::mem::take(&mut batch))?;
            }
        }
        sealed += self.write_sealed(&batch)?;
        Ok(sealed)
    }

    /// Writes sealed entries and moves their records' heads along.
    fn write_sealed(&self, entries: &[HistoryEntry]) -> Result<u64, EngineError> {
        if entries.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            for entry in entries {
                HISTORY.put(
                    tx,
                    &HistoryKey {
                        record: entry.record,
                        entry: entry.id,
                    },
                    entry,
                )?;
                let count = HISTORY_HEADS
                    .get(tx, &entry.record)?
                    .map_or(0, |head| head.entries);
                HISTORY_HEADS.put(
                    tx,
                    &entry.record,
                    &HistoryHead {
                        hash: entry.hash.clone(),
                        entries: count + 1,
                    },
                )?;
            }
            Ok(entries.len() as u64)
        })
    }
}
