//! The write-ahead log: what makes a batch durable, so that sled need not be.
//!
//! A batch is durable once its record is in the log and the log is synced: one
//! `fdatasync` of one file, with the bytes of the blobs it names inside the record.
//! sled is then written without its transaction and without its flush, and is
//! flushed only at a checkpoint, after which the log segments it covers are deleted.
//! At open, every record still in the log is applied again, in order: a record
//! holds the final value of each key it writes, so applying one twice is harmless,
//! and applying all in order ends where the last acknowledged batch left the store.
//!
//! Why: sled's flush per batch cost more than its apply (it wakes sled's IO
//! threads and waits for a range write-back), the blob files needed a second
//! device flush per batch (`syncfs`), and sled's transaction over several trees
//! added its own cost on top of its per-key one. A log of our own that only
//! appends costs one sync a batch and lets the next batch be synced while this one
//! is applied.
//!
//! Layout: `<data_dir>/wal/<segment number, 16 hex digits>.log`, each a sequence of
//! records `[payload length u32 LE][crc32 of payload u32 LE][payload]`, followed by
//! zeroes up to the space allocated so far (a length of 0 ends the records). Payload:
//! `[position u64 LE][blob count u32]{[id 32][length u32][bytes]}[write count u32]
//! {[tree name length u8][tree name][key length u32][key][0 remove | 1 put]
//! [value length u32][value]}`. Trees are named, not numbered, so a build that
//! adds a tree still reads an older log.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::batch::WriteSet;
use super::{BlobId, StoreError, Tree};

/// A segment is closed, and a new one begun, past this size or age; a closed
/// segment is deleted at the checkpoint after its last batch is applied. The size
/// bounds what a restart replays; the age lets a server that writes little drop
/// its log too (at its first write after that age: an idle server keeps its last
/// segment, which a restart replays harmlessly).
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const SEGMENT_AGE: Duration = Duration::from_secs(30);
/// A segment grows by this much zeroed space at a time, synced with its new size,
/// so that the sync of each record is of data alone: appending past the end made
/// every `fdatasync` write the inode's size too, which cost about twice as much.
const PREALLOCATE_BYTES: u64 = 1024 * 1024;

/// Where a record sits in the order of the log: one more for each record.
pub type Position = u64;

/// One batch as the log holds it.
#[derive(Debug, Default, PartialEq)]
pub struct Record {
    pub position: Position,
    pub blobs: Vec<(BlobId, Vec<u8>)>,
    /// (tree, key, new value or `None` for a removal)
    pub writes: Vec<(Tree, Vec<u8>, Option<Vec<u8>>)>,
}

/// The open log: the segment being appended to, and the closed ones not yet
/// covered by a checkpoint.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    state: Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    current: Segment,
    /// Closed segments, oldest first, with the last position each holds.
    closed: Vec<(PathBuf, Position)>,
    next_position: Position,
}

#[derive(Debug)]
struct Segment {
    file: File,
    path: PathBuf,
    number: u64,
    /// Where the next record goes.
    bytes: u64,
    /// The file's length: zeroes past `bytes`.
    allocated: u64,
    last_position: Option<Position>,
    opened_at: Instant,
}

impl Wal {
    /// Reads every record left in `dir` (oldest first) and hands each to `apply`,
    /// then returns the log ready for appending, with those segments still on disk:
    /// the caller makes what it applied durable and then calls [`Wal::clear`]. A
    /// record cut off at the end of the last segment is what a crash during its
    /// write left; it was never acknowledged and is dropped. A damaged record
    /// anywhere else is an error: acknowledged writes would be lost.
    pub fn open(
        dir: &Path,
        mut apply: impl FnMut(Record) -> Result<(), StoreError>,
    ) -> Result<Wal, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| io_error("create", dir, &error))?;
        let segments = segment_files(dir)?;
        let mut next_position = 0;
        let mut closed = Vec::new();
        let last = segments.len().saturating_sub(1);
        for (index, (_, path)) in segments.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|error| io_error("read", path, &error))?;
            let mut offset = 0;
            while offset < bytes.len() {
                if bytes[offset..].iter().take(4).all(|byte| *byte == 0) {
                    // The zeroed space allocated ahead of the records.
                    break;
                }
                match decode(&bytes[offset..]) {
                    Some((record, used)) => {
                        next_position = next_position.max(record.position + 1);
                        offset += used;
                        apply(record)?;
                    }
                    None if index == last => {
                        tracing::warn!(
                            path = %path.display(),
                            offset,
                            "dropping a log record cut off by a crash (it was never acknowledged)"
                        );
                        truncate(path, offset as u64)?;
                        break;
                    }
                    None => {
                        return Err(StoreError::Corrupt {
                            tree: "wal",
                            reason: format!(
                                "record at byte {offset} of {} is damaged",
                                path.display()
                            ),
                        })
                    }
                }
            }
            closed.push((path.clone(), next_position.saturating_sub(1)));
        }
        let number = segments.last().map_or(0, |(number, _)| number + 1);
        let current = Segment::create(dir, number)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            state: Mutex::new(LogState {
                current,
                closed,
                next_position,
            }),
        })
    }

    /// Appends `batch` with the bytes of the blobs it names and syncs: once this
    /// returns, the batch survives a crash whole. On an error nothing of it counts:
    /// a partly written record is cut off again (or, if even that fails, left for
    /// the next open to drop as a torn tail, as nothing follows it).
    pub fn append(
        &self,
        batch: &WriteSet,
        blob_bytes: &[(BlobId, Vec<u8>)],
    ) -> Result<Position, StoreError> {
        let mut state = self.lock();
        if state.current.bytes >= SEGMENT_BYTES
            || (state.current.last_position.is_some()
                && state.current.opened_at.elapsed() >= SEGMENT_AGE)
        {
            self.rotate(&mut state)?;
        }
        let position = state.next_position;
        let record = encode(position, batch, blob_bytes);
        let segment = &mut state.current;
        let end = segment.bytes + record.len() as u64;
        if end > segment.allocated {
            segment.allocate(end.max(segment.allocated + PREALLOCATE_BYTES))?;
        }
        let written = segment
            .file
            .write_all_at(&record, segment.bytes)
            .and_then(|()| segment.file.sync_data());
        if let Err(error) = written {
            // Zero the partial record, so that nothing can follow it but zeroes.
            let zeroes = vec![0; record.len()];
            let _ = segment.file.write_all_at(&zeroes, segment.bytes);
            return Err(io_error("write", &segment.path, &error));
        }
        segment.bytes += record.len() as u64;
        segment.last_position = Some(position);
        state.next_position += 1;
        Ok(position)
    }

    /// True when the oldest closed segment holds only records at or before
    /// `applied`: a checkpoint would delete it.
    pub fn covered_by(&self, applied: Position) -> bool {
        self.lock()
            .closed
            .first()
            .is_some_and(|(_, last)| *last <= applied)
    }

    /// Deletes the closed segments whose records are all at or before `durable`,
    /// which the caller has made durable in the store itself.
    pub fn checkpoint(&self, durable: Position) -> Result<(), StoreError> {
        let mut state = self.lock();
        self.remove_closed(&mut state, Some(durable))
    }

    /// Empties the log, for when the store itself holds everything it holds and
    /// nothing is in flight (after the replay at open, at a flush, at close).
    pub fn clear(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.current.last_position.is_some() {
            self.rotate(&mut state)?;
        }
        self.remove_closed(&mut state, None)
    }

    fn remove_closed(
        &self,
        state: &mut LogState,
        durable: Option<Position>,
    ) -> Result<(), StoreError> {
        let mut removed = false;
        while let Some((path, last)) = state.closed.first().cloned() {
            if durable.is_some_and(|durable| last > durable) {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("remove", &path, &error)),
            }
            state.closed.remove(0);
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Closes the current segment and begins the next; the new file's name is made
    /// durable before any record in it is acknowledged. The closed segment is cut
    /// to its records, so that nothing but records can follow them: a write that
    /// failed and could not be zeroed again would otherwise read as damage once
    /// the segment is no longer the last.
    fn rotate(&self, state: &mut LogState) -> Result<(), StoreError> {
        if state.current.allocated > state.current.bytes {
            truncate(&state.current.path, state.current.bytes)?;
        }
        let next = Segment::create(&self.dir, state.current.number + 1)?;
        let old = std::mem::replace(&mut state.current, next);
        match old.last_position {
            Some(last) => state.closed.push((old.path, last)),
            None => {
                let _ = std::fs::remove_file(&old.path);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Segment {
    fn create(dir: &Path, number: u64) -> Result<Segment, StoreError> {
        let path = dir.join(format!("{number:016x}.log"));
        let file = File::options()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|error| io_error("create", &path, &error))?;
        sync_dir(dir)?;
        Ok(Segment {
            file,
            path,
            number,
            bytes: 0,
            allocated: 0,
            last_position: None,
            opened_at: Instant::now(),
        })
    }

    /// Grows the file with zeroes to `length` and makes the new length durable.
    fn allocate(&mut self, length: u64) -> Result<(), StoreError> {
        let zeroes = vec![0; (length - self.allocated) as usize];
        self.file
            .write_all_at(&zeroes, self.allocated)
            .and_then(|()| self.file.sync_all())
            .map_err(|error| {
                let _ = self.file.set_len(self.allocated);
                io_error("allocate", &self.path, &error)
            })?;
        self.allocated = length;
        Ok(())
    }
}

/// The segment files in `dir`, by number; other files are left alone.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|error| io_error("list", dir, &error))? {
        let entry = entry.map_err(|error| io_error("list", dir, &error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let number = name
            .strip_suffix(".log")
            .filter(|hex| hex.len() == 16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        if let Some(number) = number {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn truncate(path: &Path, length: u64) -> Result<(), StoreError> {
    File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(length).and_then(|()| file.sync_all()))
        .map_err(|error| io_error("truncate", path, &error))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|error| io_error("sync", dir, &error))
}

fn io_error(action: &str, path: &Path, error: &std::io::Error) -> StoreError {
    if error.kind() == std::io::ErrorKind::StorageFull {
        return StoreError::Full {
            detail: format!("cannot {action} {}: {error}", path.display()),
        };
    }
    StoreError::Backend(format!("cannot {action} {}: {error}", path.display()))
}

fn encode(position: Position, batch: &WriteSet, blobs: &[(BlobId, Vec<u8>)]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(batch.bytes() as usize + 64 * batch.len() + 64);
    payload.extend(position.to_le_bytes());
    payload.extend((blobs.len() as u32).to_le_bytes());
    for (id, bytes) in blobs {
        payload.extend(id);
        put_bytes(&mut payload, bytes);
    }
    payload.extend((batch.len() as u32).to_le_bytes());
    for tree in batch.trees() {
        let name = tree.name().as_bytes();
        for (key, value) in batch.writes_to(tree) {
            payload.push(name.len() as u8);
            payload.extend(name);
            put_bytes(&mut payload, key);
            match value {
                Some(value) => {
                    payload.push(1);
                    put_bytes(&mut payload, value);
                }
                None => payload.push(0),
            }
        }
    }
    let mut record = Vec::with_capacity(payload.len() + 8);
    record.extend((payload.len() as u32).to_le_bytes());
    record.extend(crc32fast::hash(&payload).to_le_bytes());
    record.extend(payload);
    record
}

fn put_bytes(into: &mut Vec<u8>, bytes: &[u8]) {
    into.extend((bytes.len() as u32).to_le_bytes());
    into.extend(bytes);
}

/// The record at the start of `bytes` and the bytes it takes, or `None` when it is
/// cut off or damaged (its checksum or its layout is wrong).
fn decode(bytes: &[u8]) -> Option<(Record, usize)> {
    let mut head = Reader { bytes, at: 0 };
    let length = head.u32()? as usize;
    let checksum = head.u32()?;
    let payload = head.take(length)?;
    if crc32fast::hash(payload) != checksum {
        return None;
    }
    let mut reader = Reader {
        bytes: payload,
        at: 0,
    };
    let mut record = Record {
        position: u64::from_le_bytes(reader.take(8)?.try_into().ok()?),
        ..Record::default()
    };
    for _ in 0..reader.u32()? {
        let id: BlobId = reader.take(32)?.try_into().ok()?;
        let blob = reader.sized()?.to_vec();
        record.blobs.push((id, blob));
    }
    for _ in 0..reader.u32()? {
        let name_length = usize::from(*reader.take(1)?.first()?);
        let name = std::str::from_utf8(reader.take(name_length)?).ok()?;
        let tree = Tree::from_name(name)?;
        let key = reader.sized()?.to_vec();
        let value = match reader.take(1)?.first()? {
            0 => None,
            1 => Some(reader.sized()?.to_vec()),
            _ => return None,
        };
        record.writes.push((tree, key, value));
    }
    (reader.at == payload.len()).then_some((record, head.at))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(count)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn sized(&mut self) -> Option<&'a [u8]> {
        let length = self.u32()? as usize;
        self.take(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Write<'a> = (Tree, &'a [u8], Option<&'a [u8]>);

    fn batch(pairs: &[Write<'_>]) -> WriteSet {
        let mut set = WriteSet::default();
        for (tree, key, value) in pairs {
            set.write(*tree, key, *value);
        }
        set
    }

    fn replay(dir: &Path) -> Result<(Wal, Vec<Record>), StoreError> {
        let mut records = Vec::new();
        let wal = Wal::open(dir, |record| {
            records.push(record);
            Ok(())
        })?;
        Ok((wal, records))
    }

    #[test]
    fn records_come_back_in_order_with_their_blobs_and_removals() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, records) = replay(dir.path()).unwrap();
            assert!(records.is_empty());
            let first = batch(&[(Tree::Tickets, b"t1", Some(b"ticket"))]);
            let blob = ([7; 32], b"raw mail".to_vec());
            assert_eq!(wal.append(&first, std::slice::from_ref(&blob)).unwrap(), 0);
            let second = batch(&[(Tree::Tickets, b"t1", None), (Tree::Meta, b"n", Some(b"2"))]);
            assert_eq!(wal.append(&second, &[]).unwrap(), 1);
        }
        let (wal, records) = replay(dir.path()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].position, 0);
        assert_eq!(records[0].blobs, vec![([7; 32], b"raw mail".to_vec())]);
        assert_eq!(
            records[0].writes,
            vec![(Tree::Tickets, b"t1".to_vec(), Some(b"ticket".to_vec()))]
        );
        let mut second = records[1].writes.clone();
        second.sort_by_key(|(tree, _, _)| tree.index());
        assert_eq!(
            second,
            vec![
                (Tree::Meta, b"n".to_vec(), Some(b"2".to_vec())),
                (Tree::Tickets, b"t1".to_vec(), None)
            ]
        );
        // Positions go on after the replayed ones.
        assert_eq!(wal.append(&batch(&[]), &[]).unwrap(), 2);
    }

    #[test]
    fn a_record_cut_off_at_the_end_is_dropped_and_the_log_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let (segment, end) = {
            let (wal, _) = replay(dir.path()).unwrap();
            wal.append(&batch(&[(Tree::Meta, b"a", Some(b"1"))]), &[])
                .unwrap();
            wal.append(&batch(&[(Tree::Meta, b"b", Some(b"2"))]), &[])
                .unwrap();
            let current = &wal.lock().current;
            (current.path.clone(), current.bytes as usize)
        };
        // A crash in the middle of the second record's write: its end never made
        // it over the zeroes allocated ahead.
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[end - 5..end].fill(0);
        std::fs::write(&segment, &bytes).unwrap();
        let (wal, records) = replay(dir.path()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].writes[0].1, b"a".to_vec());
        drop(wal);
        // The torn tail is cut off, so the next open reads the same and no more.
        let (_, again) = replay(dir.path()).unwrap();
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn a_damaged_record_before_the_last_segment_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let first = {
            let (wal, _) = replay(dir.path()).unwrap();
            wal.append(&batch(&[(Tree::Meta, b"a", Some(b"1"))]), &[])
                .unwrap();
            let path = wal.lock().current.path.clone();
            path
        };
        {
            // The second open starts a new segment, so the first is no longer last.
            let (wal, _) = replay(dir.path()).unwrap();
            wal.append(&batch(&[(Tree::Meta, b"b", Some(b"2"))]), &[])
                .unwrap();
        }
        let mut bytes = std::fs::read(&first).unwrap();
        // A byte inside the first record's payload.
        bytes[12] ^= 0xff;
        std::fs::write(&first, bytes).unwrap();
        let error = replay(dir.path()).unwrap_err();
        assert!(error.to_string().contains("damaged"), "{error}");
    }

    #[test]
    fn a_checkpoint_deletes_only_the_segments_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = replay(dir.path()).unwrap();
        let write = batch(&[(Tree::Meta, b"a", Some(b"1"))]);
        wal.append(&write, &[]).unwrap();
        wal.clear().unwrap();
        assert_eq!(
            segment_files(dir.path()).unwrap().len(),
            1,
            "the new current segment"
        );
        let later = wal.append(&write, &[]).unwrap();
        wal.lock().current.opened_at -= SEGMENT_AGE;
        // The next append closes the aged segment, cut to its one record.
        let latest = wal.append(&write, &[]).unwrap();
        let closed = wal.lock().closed[0].0.clone();
        let record_bytes = encode(later, &write, &[]).len() as u64;
        assert_eq!(std::fs::metadata(&closed).unwrap().len(), record_bytes);
        assert!(!wal.covered_by(later - 1));
        assert!(wal.covered_by(later));
        // A segment holding a batch that is not yet durable elsewhere stays.
        wal.checkpoint(later - 1).unwrap();
        assert_eq!(segment_files(dir.path()).unwrap().len(), 2);
        wal.checkpoint(later).unwrap();
        drop(wal);
        let (_, records) = replay(dir.path()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].position, latest);
    }
}
