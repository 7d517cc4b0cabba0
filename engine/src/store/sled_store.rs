//! The sled backend of [`Store`].

use std::fs::File;
use std::path::{Path, PathBuf};

use super::batch::{BatchBackend, Batcher, Logged, WriteSet};
use super::blobs::FileBlobs;
use super::wal::Wal;
use super::{BlobId, BlobStore, Pair, Store, StoreError, Tree, TxnWork, SCHEMA_VERSION};
use crate::error::EngineError;

/// How the sled store is opened.
#[derive(Debug, Clone, Copy)]
pub struct SledSettings {
    /// Writes are refused while the data dir's disk has less than this free (0: never).
    pub min_free_bytes: u64,
    /// The most sled keeps of the store in memory (its page cache). sled's own
    /// default is 1 GiB, which a process serving mail grows into: what misses the
    /// cache is read back from the OS's page cache, which the kernel can reclaim.
    pub cache_capacity_bytes: u64,
    /// Whether a store created now compresses its pages (`[store] compression`);
    /// a store that exists keeps what it was created with.
    pub compression: bool,
}

impl Default for SledSettings {
    fn default() -> Self {
        SledSettings {
            min_free_bytes: 0,
            cache_capacity_bytes: DEFAULT_CACHE_CAPACITY_MB * MB,
            compression: false,
        }
    }
}

/// `[store] cache_capacity_mb` unless set.
pub const DEFAULT_CACHE_CAPACITY_MB: u64 = 32;

/// zstd's level for sled's pages. sled rewrites whole nodes of small records
/// (history, tickets, the outbox), which left about five bytes on disk for each
/// byte stored; compressed at level 1 the store of the real-mail bench took 28
/// MiB instead of 101 for the same CPU per message, where level 3 cost a third
/// more CPU for 10% less. It is not the default because sled builds a zstd
/// context for every page it writes: ticket creation through the engine ran at
/// 3,700-4,400 tickets/s compressed against 10,600-12,200 without.
const COMPRESSION_LEVEL: i32 = 1;

/// Whether sled compresses the store in `store_dir`: a new one as `wanted`
/// says. sled fixes the choice when it creates a store and refuses to open it
/// with the other one, so a store that exists keeps what its `conf` file says.
fn compresses(store_dir: &Path, wanted: bool) -> bool {
    // The file is sled's `key: value` lines followed by a binary checksum.
    match std::fs::read(store_dir.join("conf")) {
        Ok(conf) => String::from_utf8_lossy(&conf)
            .lines()
            .find_map(|line| line.strip_prefix("use_compression:"))
            .is_some_and(|value| value.trim() == "true"),
        Err(_) => wanted,
    }
}

/// The store in `<data_dir>/store` with its blobs in `<data_dir>/blobs` and its
/// write-ahead log in `<data_dir>/wal`, locked against a second process by
/// `<data_dir>/kontor.lock` for as long as this value lives.
///
/// A batch is durable once it is in the log (`store::wal`); sled is written
/// without its transactions and flushed only at checkpoints, and the blob files
/// are synced there too, as the log holds their bytes until then.
pub struct SledStore {
    db: sled::Db,
    blobs: FileBlobs,
    wal: Wal,
    /// Blobs logged since the last checkpoint: synced by the next one.
    unsynced_blobs: std::sync::Mutex<Vec<BlobId>>,
    data_dir: PathBuf,
    /// Writes are refused while the data dir's disk has less than this free.
    min_free_bytes: u64,
    /// The last reading of the free space, spent down by each batch since.
    space: std::sync::Mutex<SpaceReading>,
    trees: Vec<sled::Tree>,
    batcher: Batcher,
    _lock: File,
}

impl SledStore {
    /// Opens (or creates) the store in `data_dir`.
    pub fn open(data_dir: &Path, settings: SledSettings) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::Backend(format!(
                "cannot create data dir {}: {error}",
                data_dir.display()
            ))
        })?;
        let lock = take_lock(data_dir)?;
        let db = sled::Config::new()
            .path(data_dir.join("store"))
            .cache_capacity(settings.cache_capacity_bytes)
            .use_compression(compresses(&data_dir.join("store"), settings.compression))
            .compression_factor(COMPRESSION_LEVEL)
            .open()
            .map_err(|error| backend_error(data_dir, error))?;
        let mut trees = Vec::with_capacity(Tree::ALL.len());
        for tree in Tree::ALL {
            trees.push(
                db.open_tree(tree.name())
                    .map_err(|error| backend_error(data_dir, error))?,
            );
        }
        let blobs = FileBlobs::open(&data_dir.join("blobs"))?;
        let wal = replay_log(data_dir, &db, &trees, &blobs)?;
        let store = SledStore {
            db,
            blobs,
            wal,
            unsynced_blobs: std::sync::Mutex::default(),
            data_dir: data_dir.to_path_buf(),
            min_free_bytes: settings.min_free_bytes,
            space: std::sync::Mutex::new(SpaceReading::default()),
            trees,
            batcher: Batcher::default(),
            _lock: lock,
        };
        store.check_schema()?;
        Ok(store)
    }

    fn tree(&self, tree: Tree) -> &sled::Tree {
        // `trees` was filled from `Tree::ALL` in order.
        &self.trees[tree.index()]
    }

    /// Writes a logged batch to sled key by key. Neither a sled transaction nor a
    /// sled batch is needed (each costs a manifest in sled's log and its global
    /// write lock): a crash in the middle leaves the batch in the log for the next
    /// open, and the batcher answers the batch's writers only after this.
    fn apply_batch(&self, batch: &WriteSet) -> Result<(), StoreError> {
        for tree in batch.trees() {
            write_to_sled(self.tree(tree), batch.writes_to(tree))?;
        }
        Ok(())
    }

    /// Makes sled and the blob files durable, then drops the log segments that
    /// only hold batches at or before `applied` (all of them with `None`, when
    /// nothing is in flight).
    fn checkpoint_through(&self, applied: Option<Logged>) -> Result<(), StoreError> {
        let blobs = std::mem::take(
            &mut *self
                .unsynced_blobs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let synced = self
            .db
            .flush()
            .map_err(sled_error)
            .and_then(|_| self.blobs.sync(&blobs));
        if let Err(error) = synced {
            // The log still holds what the sync was for; the next checkpoint
            // tries again with these blobs too.
            self.unsynced_blobs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .extend(blobs);
            return Err(error);
        }
        match applied {
            Some(applied) => self.wal.checkpoint(applied),
            None => self.wal.clear(),
        }
    }

    /// Refuses a batch that would leave less than the reserve free. sled cannot be
    /// trusted at the edge: after one write fails for want of space its flush
    /// hangs for good (sled 0.34), even once space is freed. Refusing in time
    /// keeps the store healthy, and writes resume by themselves once space is back.
    ///
    /// The disk is asked at most every `SPACE_READING_TTL`; in between, each write
    /// spends `amplification` times its `bytes` from the headroom of the last
    /// reading (a batch `SLED_AMPLIFICATION`, a blob file 1), and an exhausted
    /// headroom asks the disk again.
    fn check_free_space(&self, bytes: u64, amplification: u64) -> Result<(), StoreError> {
        if self.min_free_bytes == 0 {
            return Ok(());
        }
        let cost = bytes.saturating_mul(amplification);
        let mut space = self
            .space
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = space
            .read_at
            .is_some_and(|at| at.elapsed() < SPACE_READING_TTL);
        if fresh && cost <= space.headroom {
            space.headroom -= cost;
            return Ok(());
        }
        let free = fs4::available_space(&self.data_dir).map_err(|error| {
            StoreError::Backend(format!(
                "cannot read the free space of {}: {error}",
                self.data_dir.display()
            ))
        })?;
        let headroom = free.saturating_sub(self.min_free_bytes);
        if headroom < bytes {
            *space = SpaceReading::default();
            return Err(StoreError::Full {
                detail: format!(
                    "{} MB free, {} MB are kept in reserve by [store] min_free_mb",
                    free / MB,
                    self.min_free_bytes / MB
                ),
            });
        }
        *space = SpaceReading {
            read_at: Some(std::time::Instant::now()),
            headroom: headroom.saturating_sub(cost),
        };
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let meta = self.tree(Tree::Meta);
        match meta.get(b"schema_version").map_err(sled_error)? {
            Some(bytes) => {
                let found = super::trees::trailing_u64(&bytes).unwrap_or(0);
                // Older layouts are migrated by the engine (`Engine::open`).
                if found > SCHEMA_VERSION || found == 0 {
                    return Err(StoreError::SchemaMismatch {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                meta.insert(b"schema_version", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(sled_error)?;
            }
        }
        Ok(())
    }

    /// Flushes everything to disk and empties the log; used at shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.checkpoint_through(None)
    }
}

fn take_lock(data_dir: &Path) -> Result<File, StoreError> {
    let path: PathBuf = data_dir.join("kontor.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| StoreError::Backend(format!("cannot open {}: {error}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: data_dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Backend(format!(
            "cannot lock {}: {error}",
            path.display()
        ))),
    }
}

fn backend_error(data_dir: &Path, error: sled::Error) -> StoreError {
    let text = error.to_string();
    if text.contains("could not acquire lock") {
        StoreError::Locked {
            path: data_dir.display().to_string(),
        }
    } else {
        StoreError::Backend(text)
    }
}

const MB: u64 = 1024 * 1024;

/// How long a reading of the free space is trusted.
const SPACE_READING_TTL: std::time::Duration = std::time::Duration::from_millis(100);
/// What a byte written costs on disk until sled reclaims old versions: its log entry
/// plus rewritten nodes (measured 2-9x on a tmpfs; the reserve covers the rest).
const SLED_AMPLIFICATION: u64 = 4;

/// Free space above the reserve, as last read from the disk.
#[derive(Debug, Default)]
struct SpaceReading {
    read_at: Option<std::time::Instant>,
    headroom: u64,
}

fn sled_error(error: sled::Error) -> StoreError {
    match &error {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => StoreError::Full {
            detail: io.to_string(),
        },
        _ => StoreError::Backend(error.to_string()),
    }
}

impl BatchBackend for SledStore {
    fn read(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree(tree)
            .get(key)
            .map(|value| value.map(|v| v.to_vec()))
            .map_err(sled_error)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Pair>, StoreError> {
        self.tree(tree)
            .scan_prefix(prefix)
            .map(|item| {
                item.map(|(key, value)| (key.to_vec(), value.to_vec()))
                    .map_err(sled_error)
            })
            .collect()
    }

    fn log(&self, batch: &WriteSet) -> Result<Logged, StoreError> {
        let ids = batch.blobs();
        let mut blobs = Vec::with_capacity(ids.len());
        for id in &ids {
            let bytes = self.blobs.get(id)?.ok_or_else(|| {
                StoreError::Backend(format!(
                    "the blob {} a transaction names was not written before it",
                    hex::encode(id)
                ))
            })?;
            blobs.push((*id, bytes));
        }
        let blob_bytes: usize = blobs.iter().map(|(_, bytes)| bytes.len()).sum();
        // The log takes the bytes once, sled several times until it reclaims.
        self.check_free_space(batch.bytes() + blob_bytes as u64, SLED_AMPLIFICATION + 1)?;
        let logged = self.wal.append(batch, &blobs)?;
        self.unsynced_blobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(ids);
        Ok(logged)
    }

    fn apply(&self, batch: &WriteSet, logged: Logged) -> Result<(), StoreError> {
        self.apply_batch(batch)?;
        if self.wal.covered_by(logged) {
            if let Err(error) = self.checkpoint_through(Some(logged)) {
                // Nothing is lost: the log keeps what the checkpoint would drop.
                tracing::warn!(%error, "a checkpoint of the store failed; the log is kept");
            }
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        self.checkpoint_through(None)
    }
}

fn write_to_sled<'a>(
    tree: &sled::Tree,
    writes: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Result<(), StoreError> {
    for (key, value) in writes {
        match value {
            Some(value) => tree.insert(key, value),
            None => tree.remove(key),
        }
        .map_err(sled_error)?;
    }
    Ok(())
}

/// Applies what the log holds to sled and the blob files (the batches of a run
/// that ended without its last checkpoint), makes it durable, and empties the log.
fn replay_log(
    data_dir: &Path,
    db: &sled::Db,
    trees: &[sled::Tree],
    blobs: &FileBlobs,
) -> Result<Wal, StoreError> {
    let mut replayed = 0u64;
    let mut blob_ids = Vec::new();
    let wal = Wal::open(&data_dir.join("wal"), |record| {
        for (id, bytes) in &record.blobs {
            blobs.put(id, bytes)?;
            blob_ids.push(*id);
        }
        for (tree, key, value) in &record.writes {
            write_to_sled(
                &trees[tree.index()],
                std::iter::once((key.as_slice(), value.as_deref())),
            )?;
        }
        replayed += 1;
        Ok(())
    })?;
    if replayed > 0 {
        tracing::info!(
            batches = replayed,
            "applied the store's log left by the last run"
        );
        db.flush().map_err(sled_error)?;
        blobs.sync(&blob_ids)?;
    }
    wal.clear()?;
    Ok(wal)
}

impl Store for SledStore {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.batcher.read(self, tree, key)
    }

    fn scan_prefix<'a>(
        &'a self,
        tree: Tree,
        prefix: &[u8],
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a> {
        let iter = self.tree(tree).scan_prefix(prefix);
        let map = |item: sled::Result<(sled::IVec, sled::IVec)>| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(sled_error)
        };
        let applied: Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a> = if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        };
        let prefix = prefix.to_vec();
        self.batcher
            .merge_unapplied(tree, applied, |key| key.starts_with(&prefix), reverse)
    }

    fn scan_after<'a>(
        &'a self,
        tree: Tree,
        after: &[u8],
    ) -> Box<dyn Iterator<Item = Result<Pair, StoreError>> + 'a> {
        use std::ops::Bound;
        let range = (Bound::Excluded(after.to_vec()), Bound::Unbounded);
        let applied = Box::new(self.tree(tree).range::<Vec<u8>, _>(range).map(|item| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(sled_error)
        }));
        self.batcher
            .merge_unapplied(tree, applied, |key| key > after, false)
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

    /// sled's files and the log's segments (the blob files are not walked).
    fn size_on_disk(&self) -> Option<u64> {
        let log: u64 = std::fs::read_dir(self.data_dir.join("wal"))
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.metadata().ok())
                    .map(|meta| meta.len())
                    .sum()
            })
            .unwrap_or(0);
        Some(self.db.size_on_disk().ok()? + log)
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    /// Refused before the file is written while the disk is at its reserve, as a
    /// batch would be: the intake then fails with nothing stored.
    fn put_blob(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        self.check_free_space(bytes.len() as u64, 1)?;
        self.blobs.put(id, bytes)
    }

    fn insert_raw(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree(tree)
            .insert(key, value)
            .map(|_| ())
            .map_err(sled_error)
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        for tree in Tree::ALL {
            let mut iter = self.tree(tree).iter();
            if tree == Tree::Meta {
                // The schema version alone does not make a store non-empty.
                let other = iter.any(|item| {
                    item.map(|(key, _)| key.as_ref() != b"schema_version")
                        .unwrap_or(true)
                });
                if other {
                    return Ok(false);
                }
            } else if iter.next().is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::error!(%error, "flushing the store on close failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the store, waiting out sled's lock held by I/O threads of a copy
    /// just dropped.
    fn open_when_free(dir: &Path, settings: SledSettings) -> SledStore {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match SledStore::open(dir, settings) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                opened => return opened.unwrap(),
            }
        }
    }

    fn write_ticket(store: &SledStore, key: &[u8]) {
        store
            .transact_durable(&mut |txn| txn.insert(Tree::Tickets, key, b"Kasse 3 startet nicht"))
            .unwrap();
    }

    fn sled_conf(dir: &Path) -> String {
        String::from_utf8_lossy(&std::fs::read(dir.join("store").join("conf")).unwrap())
            .into_owned()
    }

    #[test]
    fn compression_is_chosen_when_a_store_is_created_and_kept_by_the_store() {
        let compressing = SledSettings {
            compression: true,
            ..SledSettings::default()
        };
        let new = tempfile::tempdir().unwrap();
        write_ticket(&SledStore::open(new.path(), compressing).unwrap(), b"t1");
        assert!(sled_conf(new.path()).contains("use_compression: true"));
        // Opened again without the setting, it stays compressed and readable.
        let reopened = open_when_free(new.path(), SledSettings::default());
        assert!(reopened.get(Tree::Tickets, b"t1").unwrap().is_some());
        drop(reopened);

        // A store made without compression (the default, and every build before
        // the setting): sled refuses to open it compressed, so it keeps its own.
        let plain = tempfile::tempdir().unwrap();
        write_ticket(
            &open_when_free(plain.path(), SledSettings::default()),
            b"t1",
        );
        assert!(sled_conf(plain.path()).contains("use_compression: false"));
        let reopened = open_when_free(plain.path(), compressing);
        assert!(reopened.get(Tree::Tickets, b"t1").unwrap().is_some());
        assert!(sled_conf(plain.path()).contains("use_compression: false"));
    }

    #[test]
    fn batches_left_in_the_log_by_a_crash_are_applied_at_open_with_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let mail = b"From: kunde@example.org\r\n\r\nDer Drucker druckt nicht.".to_vec();
        let id = super::super::blobs::blob_id(&mail);
        {
            // What a run killed after logging and before any checkpoint leaves:
            // the log, and neither sled's copy nor a synced blob file.
            let wal = Wal::open(&dir.path().join("wal"), |_| Ok(())).unwrap();
            let mut first = WriteSet::default();
            first.write(Tree::Tickets, b"t1", Some(b"ticket one"));
            first.write(Tree::RawMail, &id, Some(b"len"));
            wal.append(&first, &[(id, mail.clone())]).unwrap();
            let mut second = WriteSet::default();
            second.write(Tree::Tickets, b"t1", None);
            second.write(Tree::Tickets, b"t2", Some(b"ticket two"));
            wal.append(&second, &[]).unwrap();
        }
        let store = SledStore::open(dir.path(), SledSettings::default()).unwrap();
        assert_eq!(store.get(Tree::Tickets, b"t1").unwrap(), None);
        assert_eq!(
            store.get(Tree::Tickets, b"t2").unwrap().as_deref(),
            Some(&b"ticket two"[..])
        );
        assert_eq!(store.blobs().get(&id).unwrap(), Some(mail));
        // Applied and made durable, the log is emptied.
        let logs: Vec<_> = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| std::fs::metadata(path).unwrap().len() > 0)
            .collect();
        assert!(logs.is_empty(), "{logs:?}");
    }

    #[test]
    fn a_data_dir_written_by_a_newer_schema_is_refused_not_opened() {
        // What an older build meets after a newer one wrote the data dir: it would
        // ignore what it does not know (the log, since schema 6).
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path(), SledSettings::default()).unwrap();
            let newer = SCHEMA_VERSION + 1;
            store
                .insert_raw(Tree::Meta, b"schema_version", &newer.to_be_bytes())
                .unwrap();
        }
        // sled's threads may hold its lock a moment after the drop.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let error = loop {
            match SledStore::open(dir.path(), SledSettings::default()) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => break opened.err().expect("a newer schema is refused"),
            }
        };
        assert_eq!(
            error.to_string(),
            format!(
                "the data dir was written by schema version {}, this build reads {SCHEMA_VERSION}",
                SCHEMA_VERSION + 1
            )
        );
    }

    #[test]
    fn a_write_is_in_the_log_until_a_checkpoint_and_the_log_is_empty_after_close() {
        let dir = tempfile::tempdir().unwrap();
        let log_bytes = |dir: &Path| -> u64 {
            std::fs::read_dir(dir.join("wal"))
                .unwrap()
                .map(|entry| entry.unwrap().metadata().unwrap().len())
                .sum()
        };
        {
            let store = SledStore::open(dir.path(), SledSettings::default()).unwrap();
            store
                .transact_durable(&mut |txn| txn.insert(Tree::Tickets, b"t1", b"ticket"))
                .unwrap();
            assert!(log_bytes(dir.path()) > 0);
            assert_eq!(
                store.get(Tree::Tickets, b"t1").unwrap().as_deref(),
                Some(&b"ticket"[..])
            );
        }
        assert_eq!(log_bytes(dir.path()), 0);
        let store = SledStore::open(dir.path(), SledSettings::default()).unwrap();
        assert_eq!(
            store.get(Tree::Tickets, b"t1").unwrap().as_deref(),
            Some(&b"ticket"[..])
        );
    }
}
