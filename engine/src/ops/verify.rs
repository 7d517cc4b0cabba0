//! `kontor verify`: every history chain in the store, walked and recomputed, and
//! every blob the store names read and hashed; the migration that gives the
//! histories of a schema 2 store their chains, and the one that moves a schema 4
//! store's raw mail and attachment bytes out of the trees into blob files.

use std::collections::HashSet;

use crate::chain::{self, ChainBreak, ChainWalker};
use crate::error::EngineError;
use crate::model::{HistoryEntry, HistoryHead, RecordRef};
use crate::store::blobs::{holds_the_bytes, read_referenced, reference_value, StoredBlob};
use crate::store::codec::decode;
use crate::store::tables::{HistoryKey, HISTORY, HISTORY_HEADS};
use crate::store::{BlobId, StoreError, Tree};
use crate::Engine;

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub entries: u64,
    /// Blobs named by the store (raw mail, attachments) that were read and hashed.
    pub blobs: u64,
    /// Named blobs that are missing or whose bytes no longer hash to their name,
    /// each as one line: the store is damaged when this is not empty.
    pub damaged_blobs: Vec<String>,
    /// Files in the blob directory that nothing names: written for a transaction
    /// that failed, or by a process killed before its commit. Harmless;
    /// [`Engine::remove_orphan_blobs`] deletes them.
    pub orphan_blobs: Vec<StoredBlob>,
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
        let mut report = VerifyReport::default();
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
        self.verify_blobs(&mut report)?;
        Ok(report)
    }

    /// Reads and hashes every blob the store names, and lists the blob files that
    /// nothing names.
    fn verify_blobs(&self, report: &mut VerifyReport) -> Result<(), EngineError> {
        let mut named: HashSet<Vec<u8>> = HashSet::new();
        for tree in Tree::ALL.into_iter().filter(|tree| tree.names_blobs()) {
            for item in self.store.scan_prefix(tree, &[], false) {
                let (key, value) = item?;
                match read_referenced(self.store.as_ref(), tree, &key, &value) {
                    Ok(_) => report.blobs += 1,
                    Err(
                        error @ (StoreError::BlobMissing { .. } | StoreError::BlobDamaged { .. }),
                    ) => report.damaged_blobs.push(error.to_string()),
                    Err(error) => return Err(error.into()),
                }
                named.insert(key);
            }
        }
        report.orphan_blobs = self
            .store
            .blobs()
            .list()?
            .into_iter()
            .filter(|blob| match blob {
                StoredBlob::Blob { id, .. } => !named.contains(id.as_slice()),
                StoredBlob::Leftover { .. } => true,
            })
            .collect();
        Ok(())
    }

    /// Deletes the blob files nothing names (what `verify` lists as orphans) and
    /// returns them. Only while no other writer uses the store: a writer writes its
    /// blobs just before the transaction that names them, so a blob in flight
    /// looks like an orphan. `kontor verify --remove-orphans` opens the data dir
    /// itself, which a running server holds.
    pub fn remove_orphan_blobs(&self) -> Result<Vec<StoredBlob>, VerifyError> {
        let mut report = VerifyReport::default();
        self.verify_blobs(&mut report)?;
        for orphan in &report.orphan_blobs {
            self.store
                .blobs()
                .remove(orphan)
                .map_err(EngineError::from)?;
        }
        Ok(report.orphan_blobs)
    }

    /// Schema 4 → 5: the bytes of raw mail and attachments leave the trees for
    /// blob files, and the trees keep each blob's length under its hash. A chunk at
    /// a time: its files are written and synced, then its pairs rewritten in one
    /// transaction, so a migration killed midway leaves every pair either bytes or
    /// a reference to a durable file, and the next open carries on (a pair that
    /// still holds the bytes is the only kind moved).
    pub(crate) fn migrate_blobs_to_files(&self) -> Result<u64, EngineError> {
        let mut moved = 0u64;
        for tree in Tree::ALL.into_iter().filter(|tree| tree.names_blobs()) {
            let mut keys: Vec<BlobId> = Vec::new();
            for item in self.store.scan_prefix(tree, &[], false) {
                let (key, value) = item?;
                if holds_the_bytes(&key, &value) {
                    if let Ok(id) = BlobId::try_from(key.as_slice()) {
                        keys.push(id);
                    }
                }
            }
            for chunk in keys.chunks(256) {
                let mut lengths = Vec::with_capacity(chunk.len());
                for id in chunk {
                    let Some(bytes) = self.store.get(tree, id)? else {
                        continue;
                    };
                    self.store.put_blob(id, &bytes)?;
                    lengths.push((*id, bytes.len() as u64));
                }
                self.store.blobs().sync(chunk)?;
                self.write(|tx| {
                    for (id, length) in &lengths {
                        tx.put_raw(tree, id, &reference_value(*length))?;
                    }
                    Ok(())
                })?;
                moved += lengths.len() as u64;
            }
        }
        Ok(moved)
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

#[cfg(test)]
mod tests {
    use crate::intake::InboundMail;
    use crate::model::Attachment;
    use crate::store::blobs::{blob_id, reference_value};
    use crate::store::{StoreError, Tree};
    use crate::{Engine, EngineConfig};

    const ATTACHMENT: &[u8] = b"%PDF-1.4\nthe invoice the customer sent\n";

    fn mail() -> Vec<u8> {
        b"From: Ana <ana@kunde.example>\r\nTo: support@support.example.com\r\nSubject: Rechnung\r\nMessage-ID: <blob-unit@kunde.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei die Rechnung.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"rechnung.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKdGhlIGludm9pY2UgdGhlIGN1c3RvbWVyIHNlbnQK\r\n--b--\r\n".to_vec()
    }

    fn ingest(engine: &Engine) -> Result<crate::intake::IntakeResult, crate::error::EngineError> {
        engine.ingest(InboundMail {
            raw: mail(),
            envelope_from: Some("ana@kunde.example".into()),
            envelope_to: vec!["support@support.example.com".into()],
        })
    }

    /// The one attachment stored, with its bytes.
    fn the_attachment(engine: &Engine) -> Result<(Attachment, Vec<u8>), crate::error::EngineError> {
        let (_, value) = engine
            .store
            .scan_prefix(Tree::Attachments, &[], false)
            .next()
            .expect("an attachment is stored")?;
        let meta: Attachment = crate::store::codec::decode(Tree::Attachments, &value)?;
        engine.attachment_bytes(meta.id)
    }

    fn assert_the_trees_keep_only_lengths(engine: &Engine) {
        assert_eq!(
            engine.store.get(Tree::Blobs, &blob_id(ATTACHMENT)).unwrap(),
            Some(reference_value(ATTACHMENT.len() as u64).to_vec())
        );
        assert_eq!(
            engine.store.get(Tree::RawMail, &blob_id(&mail())).unwrap(),
            Some(reference_value(mail().len() as u64).to_vec())
        );
    }

    fn blob_file(dir: &std::path::Path, bytes: &[u8]) -> std::path::PathBuf {
        let hex = hex::encode(blob_id(bytes));
        dir.join("blobs").join(&hex[..2]).join(hex)
    }

    #[test]
    fn mail_and_attachments_are_blob_files_and_the_trees_keep_their_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
        ingest(&engine).unwrap();
        assert_eq!(the_attachment(&engine).unwrap().1, ATTACHMENT);
        assert_eq!(
            std::fs::read(blob_file(dir.path(), ATTACHMENT)).unwrap(),
            ATTACHMENT
        );
        assert_eq!(
            std::fs::read(blob_file(dir.path(), &mail())).unwrap(),
            mail()
        );
        assert_the_trees_keep_only_lengths(&engine);
        let sha = hex::encode(blob_id(&mail()));
        assert_eq!(engine.raw_mail(&sha).unwrap(), Some(mail()));
        let report = engine.verify().unwrap();
        assert_eq!(report.blobs, 2);
        assert!(report.damaged_blobs.is_empty() && report.orphan_blobs.is_empty());
        // A redelivery writes nothing new.
        ingest(&engine).unwrap();
        assert!(engine.verify().unwrap().orphan_blobs.is_empty());
    }

    #[test]
    fn the_in_memory_store_keeps_blobs_behind_the_same_seam() {
        let engine = Engine::in_memory(EngineConfig::default());
        ingest(&engine).unwrap();
        assert_eq!(the_attachment(&engine).unwrap().1, ATTACHMENT);
        assert_eq!(
            engine.store.get(Tree::Blobs, &blob_id(ATTACHMENT)).unwrap(),
            Some(reference_value(ATTACHMENT.len() as u64).to_vec())
        );
        assert_eq!(engine.verify().unwrap().blobs, 2);
    }

    #[test]
    fn a_changed_or_missing_blob_file_is_a_typed_error_and_verify_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
        ingest(&engine).unwrap();
        let path = blob_file(dir.path(), ATTACHMENT);
        std::fs::write(&path, b"%PDF-1.4\nsomething else entirely, same length\n").unwrap();
        assert!(matches!(
            the_attachment(&engine),
            Err(crate::error::EngineError::Store(
                StoreError::BlobDamaged { .. }
            ))
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            the_attachment(&engine),
            Err(crate::error::EngineError::Store(
                StoreError::BlobMissing { .. }
            ))
        ));
        let report = engine.verify().unwrap();
        assert_eq!(report.damaged_blobs.len(), 1);
        assert!(report.damaged_blobs[0].contains(&hex::encode(blob_id(ATTACHMENT))));
    }

    #[test]
    fn a_full_disk_refuses_the_mail_before_a_blob_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let config = EngineConfig {
            min_free_bytes: u64::MAX / 4,
            ..EngineConfig::default()
        };
        let engine = Engine::open(dir.path(), config).unwrap();
        let refused = ingest(&engine).unwrap_err();
        assert!(matches!(
            refused,
            crate::error::EngineError::Store(StoreError::Full { .. })
        ));
        assert!(!blob_file(dir.path(), &mail()).exists());
        assert!(engine.store.blobs().list().unwrap().is_empty());
        assert!(engine
            .store
            .get(Tree::RawMail, &blob_id(&mail()))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_schema_4_store_moves_its_bytes_to_files_once_even_after_a_kill_midway() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
            ingest(&engine).unwrap();
            // As schema 4 wrote it: the bytes in the trees, no files. The raw
            // mail's pair is as a migration killed after its first chunk left it
            // (bytes in the tree and a synced file); the attachment's was never
            // reached.
            engine
                .store
                .insert_raw(Tree::Blobs, &blob_id(ATTACHMENT), ATTACHMENT)
                .unwrap();
            std::fs::remove_file(blob_file(dir.path(), ATTACHMENT)).unwrap();
            engine
                .store
                .insert_raw(Tree::RawMail, &blob_id(&mail()), &mail())
                .unwrap();
            engine
                .store
                .insert_raw(Tree::Meta, b"schema_version", &4u64.to_be_bytes())
                .unwrap();
            engine.store.durable().unwrap();
        }
        for _ in 0..2 {
            let engine = crate::test_support::reopen(dir.path());
            assert_eq!(
                engine.store.get(Tree::Meta, b"schema_version").unwrap(),
                Some(crate::store::SCHEMA_VERSION.to_be_bytes().to_vec())
            );
            assert_the_trees_keep_only_lengths(&engine);
            assert_eq!(
                std::fs::read(blob_file(dir.path(), ATTACHMENT)).unwrap(),
                ATTACHMENT
            );
            assert_eq!(the_attachment(&engine).unwrap().1, ATTACHMENT);
            let report = engine.verify().unwrap();
            assert_eq!(report.blobs, 2);
            assert!(report.damaged_blobs.is_empty() && report.orphan_blobs.is_empty());
        }
    }
}
