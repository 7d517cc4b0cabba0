//! Content-addressed blobs outside the key-value store: raw mail and attachment
//! bytes, one file per SHA-256 under `<data_dir>/blobs/<first two hex>/<hex>`.
//!
//! Why not in sled: sled rewrites whole tree nodes, so a large value cost three to
//! four times its size on disk. Here the bytes are written once; the trees that name
//! them (`raw_mail`, `blobs`) keep only the hash and the length.
//!
//! Durability follows the batched commit: a blob is written (temporary name, then
//! renamed, so no reader sees half a file) before the transaction that names it,
//! unsynced; the transaction notes it (`Txn::note_blob`), and the batcher's leader
//! makes every noted blob of its batch durable before it hands the batch to the
//! backend. So a transaction is never durable before its blobs, and one sync serves
//! every blob of a batch. A blob written for a transaction that then failed, or by a
//! process killed before its commit, is an orphan: `kontor verify` lists it and
//! `kontor verify --remove-orphans` deletes it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use super::StoreError;

/// A blob's name: the SHA-256 of its bytes.
pub type BlobId = [u8; 32];

/// The SHA-256 of `bytes`, as a blob's name.
pub fn blob_id(bytes: &[u8]) -> BlobId {
    Sha256::digest(bytes).into()
}

/// Where blob bytes live. Writes are idempotent (the name is the content) and not
/// durable until `sync` names them.
pub trait BlobStore: Send + Sync {
    /// Writes `bytes` under `id` unless a complete copy is there already.
    fn put(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError>;
    /// The bytes stored under `id`, unchecked: `None` when there is no such blob.
    fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError>;
    /// Makes the named blobs (and their directory entries) durable.
    fn sync(&self, ids: &[BlobId]) -> Result<(), StoreError>;
    /// Every blob stored, and any leftover of a write that never finished (a
    /// temporary file of a killed process), for `verify`.
    fn list(&self) -> Result<Vec<StoredBlob>, StoreError>;
    /// Deletes what `list` named.
    fn remove(&self, blob: &StoredBlob) -> Result<(), StoreError>;
}

/// One entry of [`BlobStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredBlob {
    /// A blob under its name.
    Blob { id: BlobId, bytes: u64 },
    /// Something in the blob directory that is no blob (a temporary file).
    Leftover { name: String, bytes: u64 },
}

impl StoredBlob {
    /// The hex name, or the leftover's file name.
    pub fn name(&self) -> String {
        match self {
            StoredBlob::Blob { id, .. } => hex::encode(id),
            StoredBlob::Leftover { name, .. } => name.clone(),
        }
    }

    pub fn bytes(&self) -> u64 {
        match self {
            StoredBlob::Blob { bytes, .. } | StoredBlob::Leftover { bytes, .. } => *bytes,
        }
    }
}

/// The value a blob-naming tree keeps under the blob's hash: its length (u64 BE).
pub fn reference_value(bytes: u64) -> [u8; 8] {
    bytes.to_be_bytes()
}

/// Whether a value under `key` in a blob-naming tree is the blob's bytes themselves
/// (a store from before schema 5, or halfway through that migration) rather than a
/// reference: only the bytes hash to their key.
pub fn holds_the_bytes(key: &[u8], value: &[u8]) -> bool {
    blob_id(value).as_slice() == key
}

/// The bytes of the blob `key` names in `tree`, checked against their name; `None`
/// when `tree` names no such blob. A named blob that is gone or changed is an error.
pub fn read_named(
    store: &dyn super::Store,
    tree: super::Tree,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(value) = store.get(tree, key)? else {
        return Ok(None);
    };
    read_referenced(store, tree, key, &value).map(Some)
}

/// The bytes of the blob named by the pair (`key`, `value`) of `tree`, checked.
pub fn read_referenced(
    store: &dyn super::Store,
    tree: super::Tree,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    if holds_the_bytes(key, value) {
        return Ok(value.to_vec());
    }
    let id = BlobId::try_from(key).map_err(|_| StoreError::Corrupt {
        tree: tree.name(),
        reason: format!("the key {} is no SHA-256", hex::encode(key)),
    })?;
    let bytes = store
        .blobs()
        .get(&id)?
        .ok_or_else(|| StoreError::BlobMissing {
            tree: tree.name(),
            sha256: hex::encode(id),
        })?;
    let found = blob_id(&bytes);
    if found != id {
        return Err(StoreError::BlobDamaged {
            tree: tree.name(),
            sha256: hex::encode(id),
            found: hex::encode(found),
        });
    }
    Ok(bytes)
}

/// Blobs as files under one directory.
#[derive(Debug)]
pub struct FileBlobs {
    root: PathBuf,
    /// Makes temporary names unique among this process's writers.
    next_temporary: AtomicU64,
}

impl FileBlobs {
    /// Opens (or creates) the blob directory `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|error| io_error("create", root, &error))?;
        Ok(FileBlobs {
            root: root.to_path_buf(),
            next_temporary: AtomicU64::new(0),
        })
    }

    /// `<root>/<first two hex>/<hex>`: 256 directories keep each one small.
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        let name = hex::encode(id);
        self.root.join(&name[..2]).join(name)
    }

    fn write_new(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let shard = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(shard).map_err(|error| io_error("create", shard, &error))?;
        let temporary = shard.join(format!(
            "{TEMPORARY_PREFIX}{}-{}",
            std::process::id(),
            self.next_temporary.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::File::create(&temporary)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| std::fs::rename(&temporary, path));
        written.map_err(|error| {
            let _ = std::fs::remove_file(&temporary);
            io_error("write", path, &error)
        })
    }
}

/// Temporary files start with this; a blob's name never does.
const TEMPORARY_PREFIX: &str = ".tmp-";

impl BlobStore for FileBlobs {
    fn put(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(id);
        // A file appears under its name only whole (renamed into place), so one
        // that is there is kept when it holds these bytes: replacing it could
        // swap a synced file for an unsynced one under a batch that counts on it.
        // One that differs is what a crash before its sync left (nothing durable
        // names it) and is written again. Comparing is cheap next to writing: a
        // repeated attachment (a logo in every signature) is read from the cache.
        let same = std::fs::metadata(&path).is_ok_and(|meta| meta.len() == bytes.len() as u64)
            && std::fs::read(&path).is_ok_and(|stored| stored == bytes);
        if same {
            return Ok(());
        }
        self.write_new(&path, bytes)
    }

    fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(id);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", &path, &error)),
        }
    }

    fn sync(&self, ids: &[BlobId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sync_blob_files(self, ids)
    }

    fn list(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let mut found = Vec::new();
        for shard in read_dir(&self.root)? {
            let shard = shard.map_err(|error| io_error("list", &self.root, &error))?;
            if !shard.path().is_dir() {
                found.push(leftover(&self.root, &shard));
                continue;
            }
            for entry in read_dir(&shard.path())? {
                let entry = entry.map_err(|error| io_error("list", &shard.path(), &error))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let id = hex::decode(&name)
                    .ok()
                    .and_then(|bytes| BlobId::try_from(bytes).ok())
                    .filter(|id| self.path_of(id) == entry.path());
                match id {
                    Some(id) => found.push(StoredBlob::Blob {
                        id,
                        bytes: entry.metadata().map_or(0, |meta| meta.len()),
                    }),
                    None => found.push(leftover(&self.root, &entry)),
                }
            }
        }
        found.sort_by_key(StoredBlob::name);
        Ok(found)
    }

    fn remove(&self, blob: &StoredBlob) -> Result<(), StoreError> {
        let path = match blob {
            StoredBlob::Blob { id, .. } => self.path_of(id),
            StoredBlob::Leftover { name, .. } => self.root.join(name),
        };
        std::fs::remove_file(&path).map_err(|error| io_error("remove", &path, &error))
    }
}

/// One `syncfs` for the lot, as the outbound file transport does: a per-file
/// fsync costs a journal commit each, and a batch holds several blobs.
#[cfg(target_os = "linux")]
fn sync_blob_files(blobs: &FileBlobs, _ids: &[BlobId]) -> Result<(), StoreError> {
    let root =
        std::fs::File::open(&blobs.root).map_err(|error| io_error("open", &blobs.root, &error))?;
    rustix::fs::syncfs(&root)
        .map_err(|error| io_error("sync", &blobs.root, &std::io::Error::from(error)))
}

#[cfg(not(target_os = "linux"))]
fn sync_blob_files(blobs: &FileBlobs, ids: &[BlobId]) -> Result<(), StoreError> {
    let mut directories = std::collections::BTreeSet::new();
    for id in ids {
        let path = blobs.path_of(id);
        std::fs::File::open(&path)
            .and_then(|file| file.sync_all())
            .map_err(|error| io_error("sync", &path, &error))?;
        if let Some(shard) = path.parent() {
            directories.insert(shard.to_path_buf());
        }
    }
    directories.insert(blobs.root.clone());
    for directory in directories {
        std::fs::File::open(&directory)
            .and_then(|file| file.sync_all())
            .map_err(|error| io_error("sync", &directory, &error))?;
    }
    Ok(())
}

fn read_dir(path: &Path) -> Result<std::fs::ReadDir, StoreError> {
    std::fs::read_dir(path).map_err(|error| io_error("list", path, &error))
}

/// A file in the blob directory that is no blob, named relative to it.
fn leftover(root: &Path, entry: &std::fs::DirEntry) -> StoredBlob {
    let path = entry.path();
    let relative = path.strip_prefix(root).unwrap_or(&path);
    StoredBlob::Leftover {
        name: relative.to_string_lossy().into_owned(),
        bytes: entry.metadata().map_or(0, |meta| meta.len()),
    }
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> StoreError {
    if error.kind() == std::io::ErrorKind::StorageFull {
        return StoreError::Full {
            detail: format!("cannot {action} {}: {error}", path.display()),
        };
    }
    StoreError::Backend(format!("cannot {action} {}: {error}", path.display()))
}

/// Blobs in memory, for the in-memory store. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryBlobs {
    blobs: RwLock<HashMap<BlobId, Vec<u8>>>,
}

impl BlobStore for MemoryBlobs {
    fn put(&self, id: &BlobId, bytes: &[u8]) -> Result<(), StoreError> {
        let mut blobs = self.blobs.write().unwrap_or_else(|p| p.into_inner());
        blobs.entry(*id).or_insert_with(|| bytes.to_vec());
        Ok(())
    }

    fn get(&self, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let blobs = self.blobs.read().unwrap_or_else(|p| p.into_inner());
        Ok(blobs.get(id).cloned())
    }

    fn sync(&self, _ids: &[BlobId]) -> Result<(), StoreError> {
        Ok(())
    }

    fn list(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let blobs = self.blobs.read().unwrap_or_else(|p| p.into_inner());
        let mut found: Vec<StoredBlob> = blobs
            .iter()
            .map(|(id, bytes)| StoredBlob::Blob {
                id: *id,
                bytes: bytes.len() as u64,
            })
            .collect();
        found.sort_by_key(StoredBlob::name);
        Ok(found)
    }

    fn remove(&self, blob: &StoredBlob) -> Result<(), StoreError> {
        if let StoredBlob::Blob { id, .. } = blob {
            let mut blobs = self.blobs.write().unwrap_or_else(|p| p.into_inner());
            blobs.remove(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_a_file_named_by_its_hash_and_a_rewrite_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::open(&dir.path().join("blobs")).unwrap();
        let bytes = b"Subject: hello\r\n\r\nbody\r\n";
        let id = blob_id(bytes);
        blobs.put(&id, bytes).unwrap();
        blobs.put(&id, bytes).unwrap();
        blobs.sync(&[id]).unwrap();
        let hex = hex::encode(id);
        let path = dir.path().join("blobs").join(&hex[..2]).join(&hex);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(blobs.get(&id).unwrap().unwrap(), bytes);
        assert_eq!(
            blobs.list().unwrap(),
            vec![StoredBlob::Blob {
                id,
                bytes: bytes.len() as u64
            }]
        );
    }

    #[test]
    fn a_truncated_file_left_by_a_crash_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::open(dir.path()).unwrap();
        let bytes = b"the whole attachment";
        let id = blob_id(bytes);
        let path = blobs.path_of(&id);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        blobs.put(&id, bytes).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_temporary_file_of_a_killed_writer_is_listed_as_a_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("ab")).unwrap();
        std::fs::write(dir.path().join("ab").join(".tmp-1-0"), b"half").unwrap();
        let listed = blobs.list().unwrap();
        assert_eq!(
            listed,
            vec![StoredBlob::Leftover {
                name: "ab/.tmp-1-0".into(),
                bytes: 4
            }]
        );
        blobs.remove(&listed[0]).unwrap();
        assert!(blobs.list().unwrap().is_empty());
    }
}
