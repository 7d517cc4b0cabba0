//! Batched commit: many transactions share one log write and one sync.
//!
//! Engine transactions run one at a time under the batcher's lock, each against an
//! overlay: its own writes, then the writes of the batch still pending, then those
//! of the batch being logged, then those of the batch being applied, then the
//! backend. A transaction that succeeds merges its writes into the pending batch;
//! one that fails leaves no trace. A writer then waits for its batch: if no batch
//! is being logged it leads one, taking everything pending, on behalf of every
//! writer that arrived meanwhile.
//!
//! A batch passes two stages, each held by one batch at a time: the log (the
//! backend makes it durable, whole: `BatchBackend::log`) and the apply (the backend
//! makes it readable: `BatchBackend::apply`). While one batch is applied the next
//! is logged, so the sync of the one overlaps the CPU of the other. Writers are
//! answered once their batch is logged: it is durable then, and until it is
//! applied, reads outside a transaction find it in the batcher's unapplied
//! batches (`Batcher::read`, `Batcher::merge_unapplied`) before the backend, so
//! what a writer was told is stored reads back at once. Only the leader, which
//! applies the batch, waits for the apply.
//!
//! Why not the backend's own transactions: sled serialises every transaction under
//! a global lock and costs several microseconds for each key it writes, and its
//! flush costs more than a sync of an append-only file. Here the writers still run
//! one at a time, but only against memory; the backend sees one batch at a time,
//! in which keys written by many engine transactions (the sequence counters) are
//! written once.
//!
//! Failure: if logging a batch fails, nothing of it is stored, so the pending
//! batch, whose transactions may have read its values, fails with it, and the next
//! write starts from what is stored. If applying a logged batch fails, the backend
//! no longer holds what its log says: the batch stays readable among the unapplied
//! ones (its writers were told it is stored, and it is, in the log), and every
//! later write fails, saying so, until a restart applies the log again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use super::{BlobId, StoreError, Tree, Txn, TxnWork};
use crate::error::EngineError;

/// The writes of one or more transactions: for each tree, key -> new value, or
/// `None` for a removal. A later write of a key replaces an earlier one.
#[derive(Debug)]
pub struct WriteSet {
    trees: Vec<HashMap<Vec<u8>, Option<Vec<u8>>>>,
    /// The blobs these transactions name: durable before the writes are applied.
    blobs: BTreeSet<BlobId>,
}

impl Default for WriteSet {
    fn default() -> Self {
        WriteSet {
            trees: (0..Tree::ALL.len()).map(|_| HashMap::new()).collect(),
            blobs: BTreeSet::new(),
        }
    }
}

impl WriteSet {
    /// `Some(Some(value))` when written, `Some(None)` when removed, `None` when the
    /// set does not touch the key.
    fn lookup(&self, tree: Tree, key: &[u8]) -> Option<Option<&[u8]>> {
        self.trees[tree.index()]
            .get(key)
            .map(|value| value.as_deref())
    }

    pub(super) fn write(&mut self, tree: Tree, key: &[u8], value: Option<&[u8]>) {
        self.trees[tree.index()].insert(key.to_vec(), value.map(<[u8]>::to_vec));
    }

    fn merge(&mut self, other: WriteSet) {
        for (into, map) in self.trees.iter_mut().zip(other.trees) {
            into.extend(map);
        }
        self.blobs.extend(other.blobs);
    }

    pub fn is_empty(&self) -> bool {
        self.trees.iter().all(HashMap::is_empty) && self.blobs.is_empty()
    }

    /// The blobs the set's transactions name.
    pub fn blobs(&self) -> Vec<BlobId> {
        self.blobs.iter().copied().collect()
    }

    /// Distinct keys written or removed.
    pub fn len(&self) -> usize {
        self.trees.iter().map(HashMap::len).sum()
    }

    /// The bytes of every key and value written: what applying the set adds, at most.
    pub fn bytes(&self) -> u64 {
        self.trees
            .iter()
            .flat_map(|map| map.iter())
            .map(|(key, value)| (key.len() + value.as_ref().map_or(0, Vec::len)) as u64)
            .sum()
    }

    /// The trees this set writes to.
    pub fn trees(&self) -> impl Iterator<Item = Tree> + '_ {
        Tree::ALL
            .into_iter()
            .filter(|tree| !self.trees[tree.index()].is_empty())
    }

    /// The writes to one tree, in no particular order.
    pub fn writes_to(&self, tree: Tree) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.trees[tree.index()]
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_deref()))
    }
}

/// What the batcher needs of a backend.
pub trait BatchBackend {
    /// Reads what is applied.
    fn read(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applied pairs whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<super::Pair>, StoreError>;
    /// Makes one batch durable, whole, with the blobs it names: once this returns
    /// the batch survives a crash; on an error nothing of it is stored. It need not
    /// be readable yet.
    fn log(&self, batch: &WriteSet) -> Result<Logged, StoreError>;
    /// Makes a logged batch readable. Batches are applied one at a time, in the
    /// order they were logged, while the next one may be logging.
    fn apply(&self, batch: &WriteSet, logged: Logged) -> Result<(), StoreError>;
    /// Makes everything applied durable without the log; called with nothing
    /// pending, logging or applying.
    fn checkpoint(&self) -> Result<(), StoreError>;
}

/// Where the backend's log put a batch, for its apply.
pub type Logged = u64;

/// Where a batch's outcome is published to the writers waiting on it, with the
/// condition they wait on: each batch has its own, so that a batch moving on wakes
/// only the writers it concerns (with one for all, every stage of every batch woke
/// every waiting writer, most of them only to sleep again).
#[derive(Debug, Default)]
struct Slot {
    result: OnceLock<Result<(), StoreError>>,
    wake: Condvar,
}

type Outcome = Arc<Slot>;

impl Slot {
    fn publish(&self, result: Result<(), StoreError>) {
        let _ = self.result.set(result);
        self.wake.notify_all();
    }
}

#[derive(Debug)]
pub struct Batcher {
    state: Mutex<State>,
    /// How long a writer waits for a running commit before it gives up with an
    /// error. A backend can hang for good: sled's flush never returns after one
    /// write failed for want of space. Without a limit every request would hang
    /// with it; with one, each gets an answer and the log says why.
    stall_timeout: Duration,
    /// Batch sizes and commit latencies, for `/metrics`.
    stats: super::stats::CommitStats,
    /// Batches logged but not yet applied, oldest first: their writers have been
    /// answered, so reads outside a transaction look here before the backend. Its
    /// own lock, not `state`'s, which every transaction holds while it runs.
    unapplied: RwLock<Vec<Arc<WriteSet>>>,
}

impl Default for Batcher {
    fn default() -> Self {
        Batcher::new(Duration::from_secs(60))
    }
}

#[derive(Debug, Default)]
struct State {
    /// Writes of committed transactions not yet handed to the backend.
    pending: WriteSet,
    pending_outcome: Outcome,
    /// How many transactions the pending batch holds.
    pending_transactions: u64,
    /// The batch a leader is logging; readable until it is applied.
    logging: Option<Arc<WriteSet>>,
    /// Its outcome, where its leader waits for the batch before it to be applied.
    logging_outcome: Option<Outcome>,
    /// The batch a leader is applying, durable already; readable until applied.
    applying: Option<Arc<WriteSet>>,
    /// Why a logged batch could not be applied: the backend then lacks what its
    /// log holds, so every later write fails with this until a restart.
    broken: Option<StoreError>,
}

impl Batcher {
    pub fn new(stall_timeout: Duration) -> Self {
        Batcher {
            state: Mutex::default(),
            stall_timeout,
            stats: super::stats::CommitStats::default(),
            unapplied: RwLock::default(),
        }
    }

    /// Reads `key` as a writer that has been answered expects: from the batches
    /// logged but not yet applied, newest first, then from the backend.
    pub fn read(
        &self,
        backend: &dyn BatchBackend,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        {
            let unapplied = self.unapplied_batches();
            for batch in unapplied.iter().rev() {
                if let Some(value) = batch.lookup(tree, key) {
                    return Ok(value.map(<[u8]>::to_vec));
                }
            }
        }
        backend.read(tree, key)
    }

    /// Lays the writes of the batches not yet applied over `applied`, a scan of the
    /// backend's `tree` in key order (descending when `reverse`), keeping to the
    /// keys `wanted` says the scan covers.
    pub fn merge_unapplied<'a>(
        &self,
        tree: Tree,
        applied: PairIter<'a>,
        wanted: impl Fn(&[u8]) -> bool,
        reverse: bool,
    ) -> PairIter<'a> {
        let mut newer: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        // Oldest first, so a newer write of a key replaces an older one.
        for batch in self.unapplied_batches().iter() {
            for (key, value) in batch.writes_to(tree) {
                if wanted(key) {
                    newer.insert(key.to_vec(), value.map(<[u8]>::to_vec));
                }
            }
        }
        if newer.is_empty() {
            return applied;
        }
        let newer: Vec<Written> = if reverse {
            newer.into_iter().rev().collect()
        } else {
            newer.into_iter().collect()
        };
        Box::new(MergeUnapplied {
            applied: applied.peekable(),
            newer: newer.into_iter().peekable(),
            reverse,
        })
    }

    fn unapplied_batches(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<WriteSet>>> {
        self.unapplied
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn unapplied_mut(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<WriteSet>>> {
        self.unapplied
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the batcher measured so far.
    pub fn stats(&self) -> &super::stats::CommitStats {
        &self.stats
    }

    /// Runs `work` once nothing is pending or being committed, holding the lock so
    /// that nothing can be: the backend then holds exactly what was committed, and
    /// stays so until `work` returns. For a consistent read of the whole store (a
    /// backup while the server runs); writers wait meanwhile.
    pub fn exclusive<T>(
        &self,
        backend: &dyn BatchBackend,
        work: impl FnOnce() -> T,
    ) -> Result<T, StoreError> {
        loop {
            let state = self.lock();
            if state.logging.is_none() && state.applying.is_none() && state.pending.is_empty() {
                let result = work();
                drop(state);
                return Ok(result);
            }
            let outcome = state.pending_outcome.clone();
            self.wait(state, &outcome, backend)?;
        }
    }

    /// Runs `work` against the overlay and returns once its writes are durable.
    pub fn transact_durable(
        &self,
        backend: &dyn BatchBackend,
        work: &mut TxnWork<'_>,
    ) -> Result<(), EngineError> {
        let mut state = self.lock();
        let own = {
            if let Some(error) = &state.broken {
                return Err(EngineError::from(error.clone()));
            }
            let mut txn = OverlayTxn {
                own: WriteSet::default(),
                pending: &state.pending,
                logging: state.logging.as_deref(),
                applying: state.applying.as_deref(),
                backend,
            };
            work(&mut txn)?;
            txn.own
        };
        state.pending.merge(own);
        state.pending_transactions += 1;
        let outcome = state.pending_outcome.clone();
        self.wait(state, &outcome, backend)
            .map_err(EngineError::from)
    }

    /// Returns once everything committed before the call, and anything the backend
    /// was given directly, is durable in the backend itself (a checkpoint).
    pub fn flush(&self, backend: &dyn BatchBackend) -> Result<(), StoreError> {
        let state = self.lock();
        let outcome = state.pending_outcome.clone();
        self.wait(state, &outcome, backend)?;
        self.exclusive(backend, || backend.checkpoint())?
    }

    /// Waits for `outcome`, leading the log and apply of the pending batch
    /// whenever no other writer is logging one.
    fn wait<'s>(
        &'s self,
        mut state: MutexGuard<'s, State>,
        outcome: &Outcome,
        backend: &dyn BatchBackend,
    ) -> Result<(), StoreError> {
        let deadline = Instant::now() + self.stall_timeout;
        loop {
            if let Some(result) = outcome.result.get() {
                return result.clone();
            }
            let mine_is_pending = Arc::ptr_eq(outcome, &state.pending_outcome);
            if mine_is_pending && state.logging.is_none() {
                state = self.lead(state, backend);
                continue;
            }
            state = self.wait_for_a_stage(state, outcome, deadline)?;
        }
    }

    /// Waits until `slot`'s batch moves on: its outcome is published, the log
    /// stage frees up while it is pending, or the batch before it is applied while
    /// it waits to be (or the stall timeout passes).
    fn wait_for_a_stage<'s>(
        &'s self,
        state: MutexGuard<'s, State>,
        slot: &Slot,
        deadline: Instant,
    ) -> Result<MutexGuard<'s, State>, StoreError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::error!(
                seconds = self.stall_timeout.as_secs(),
                "the store has not finished a commit in time; writes are failing"
            );
            return Err(StoreError::Stalled {
                seconds: self.stall_timeout.as_secs(),
            });
        }
        Ok(slot
            .wake
            .wait_timeout(state, left)
            .map(|(state, _)| state)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0))
    }

    /// Logs the pending batch, then, once the batch before it is applied, applies
    /// it, and publishes its outcome. The log stage is free again as soon as this
    /// batch moves on to its apply, so the next leader logs meanwhile.
    fn lead<'s>(
        &'s self,
        mut state: MutexGuard<'s, State>,
        backend: &dyn BatchBackend,
    ) -> MutexGuard<'s, State> {
        let batch = Arc::new(std::mem::take(&mut state.pending));
        let outcome = std::mem::take(&mut state.pending_outcome);
        let transactions = std::mem::take(&mut state.pending_transactions);
        if let Some(error) = state.broken.clone() {
            outcome.publish(Err(error));
            return state;
        }
        state.logging = Some(batch.clone());
        state.logging_outcome = Some(outcome.clone());
        drop(state);
        let started = Instant::now();
        let logged = if batch.is_empty() {
            Ok(None)
        } else {
            contain_panic(|| backend.log(&batch)).map(Some)
        };

        let mut state = self.lock();
        let logged = match logged {
            Ok(logged) => logged,
            Err(error) => {
                // The pending transactions may have read this batch's writes, so
                // they fail with it, for the same reason.
                state.logging = None;
                state.logging_outcome = None;
                outcome.publish(Err(error.clone()));
                state.pending = WriteSet::default();
                state.pending_transactions = 0;
                let orphaned = std::mem::take(&mut state.pending_outcome);
                orphaned.publish(Err(error));
                return state;
            }
        };
        if logged.is_some() {
            self.unapplied_mut().push(batch.clone());
        }
        // Durable: its writers may go on, and read it back, while it is applied.
        outcome.publish(Ok(()));
        // Batches are applied in the order they were logged.
        let deadline = Instant::now() + self.stall_timeout;
        while state.applying.is_some() {
            state = match self.wait_for_a_stage(state, &outcome, deadline) {
                Ok(state) => state,
                Err(error) => {
                    let mut state = self.lock();
                    self.break_store(&mut state, error, &outcome);
                    return state;
                }
            };
        }
        state.logging = None;
        state.logging_outcome = None;
        // The log stage is free: the pending batch's writers may lead it.
        state.pending_outcome.wake.notify_all();
        if let Some(error) = state.broken.clone() {
            outcome.publish(Err(error));
            return state;
        }
        state.applying = Some(batch.clone());
        drop(state);

        let applied = match logged {
            Some(logged) => contain_panic(|| backend.apply(&batch, logged)),
            None => Ok(()),
        };
        if transactions > 0 {
            self.stats.record_batch(transactions, started.elapsed());
        }
        let mut state = self.lock();
        state.applying = None;
        // The batch logged after this one may be applied now.
        if let Some(next) = &state.logging_outcome {
            next.wake.notify_all();
        }
        match applied {
            Ok(()) => self
                .unapplied_mut()
                .retain(|unapplied| !Arc::ptr_eq(unapplied, &batch)),
            // The batch stays among the unapplied: the log holds it, its writers
            // were answered, and reads must go on finding it until a restart.
            Err(error) => self.break_store(&mut state, error, &outcome),
        }
        state
    }

    /// Marks the store broken after a logged batch could not be applied: what the
    /// log holds is durable, and the next open applies it, but until then the
    /// backend lacks it, so no later write may read from the backend.
    fn break_store(&self, state: &mut State, error: StoreError, outcome: &Outcome) {
        tracing::error!(%error, "a logged batch could not be applied; writes fail until kontor is restarted");
        let broken = match error {
            StoreError::Stalled { .. } => error,
            other => StoreError::Backend(format!(
                "{other}; the write is in the store's log and is applied when kontor is restarted"
            )),
        };
        if state
            .logging_outcome
            .as_ref()
            .is_some_and(|logging| Arc::ptr_eq(logging, outcome))
        {
            state.logging = None;
            state.logging_outcome = None;
        }
        state.broken = Some(broken.clone());
        outcome.publish(Err(broken));
        // Whoever waits next sees the store broken.
        state.pending_outcome.wake.notify_all();
        if let Some(logging) = &state.logging_outcome {
            logging.wake.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Turns a panic in the backend into an error: the leader must always publish its
/// batch's outcome, or every writer waits for ever.
fn contain_panic<T>(backend_call: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(backend_call)).unwrap_or_else(|_| {
        Err(StoreError::Backend(
            "the storage backend panicked while committing".into(),
        ))
    })
}

/// A scan's pairs as a backend yields them.
pub type PairIter<'a> = Box<dyn Iterator<Item = Result<super::Pair, StoreError>> + 'a>;

/// A key and what a batch wrote under it (`None`: removed).
type Written = (Vec<u8>, Option<Vec<u8>>);

/// A backend's scan with the batches not yet applied laid over it: both sides are
/// in the same key order, and where both have a key the batches' write wins (a
/// removal hides the key).
struct MergeUnapplied<'a> {
    applied: std::iter::Peekable<PairIter<'a>>,
    newer: std::iter::Peekable<std::vec::IntoIter<Written>>,
    reverse: bool,
}

impl Iterator for MergeUnapplied<'_> {
    type Item = Result<super::Pair, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.applied.peek(), self.newer.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(Ok((applied, _))), Some((newer, _))) => {
                    let order = applied.cmp(newer);
                    if self.reverse {
                        order.reverse()
                    } else {
                        order
                    }
                }
            };
            match order {
                std::cmp::Ordering::Less => return self.applied.next(),
                std::cmp::Ordering::Equal => {
                    self.applied.next();
                }
                std::cmp::Ordering::Greater => {}
            }
            if let Some((key, Some(value))) = self.newer.next() {
                return Some(Ok((key, value)));
            }
        }
    }
}

/// One transaction's view: its own writes over the pending, logging and applying
/// batches over the backend, newest first.
struct OverlayTxn<'a> {
    own: WriteSet,
    pending: &'a WriteSet,
    logging: Option<&'a WriteSet>,
    applying: Option<&'a WriteSet>,
    backend: &'a dyn BatchBackend,
}

impl Txn for OverlayTxn<'_> {
    fn get(&mut self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let layers = [
            Some(&self.own),
            Some(self.pending),
            self.logging,
            self.applying,
        ];
        for layer in layers.into_iter().flatten() {
            if let Some(value) = layer.lookup(tree, key) {
                return Ok(value.map(<[u8]>::to_vec));
            }
        }
        self.backend.read(tree, key).map_err(EngineError::from)
    }

    fn insert(&mut self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), EngineError> {
        self.own.write(tree, key, Some(value));
        Ok(())
    }

    fn remove(&mut self, tree: Tree, key: &[u8]) -> Result<(), EngineError> {
        self.own.write(tree, key, None);
        Ok(())
    }

    fn note_blob(&mut self, id: &BlobId) {
        self.own.blobs.insert(*id);
    }

    fn scan_prefix(&mut self, tree: Tree, prefix: &[u8]) -> Result<Vec<super::Pair>, EngineError> {
        let mut merged: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .backend
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(|(key, value)| (key, Some(value)))
            .collect();
        // Oldest layer first, so a newer write of a key replaces an older one.
        let layers = [
            self.applying,
            self.logging,
            Some(self.pending),
            Some(&self.own),
        ];
        for layer in layers.into_iter().flatten() {
            for (key, value) in layer.writes_to(tree) {
                if key.starts_with(prefix) {
                    merged.insert(key.to_vec(), value.map(<[u8]>::to_vec));
                }
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    type Records = BTreeMap<(usize, Vec<u8>), Vec<u8>>;

    /// Lets a test hold the backend's log until it says so.
    type Gate = Arc<(Mutex<bool>, Condvar)>;

    /// A backend in memory that counts its logs and applies, and fails, panics or
    /// hangs on request.
    #[derive(Default)]
    struct MemoryBackend {
        data: Mutex<Records>,
        applies: AtomicU64,
        logs: AtomicU64,
        fail_applies: AtomicBool,
        panic_in_apply: AtomicBool,
        panic_in_log: AtomicBool,
        hold_log: Option<Gate>,
        hold_apply: Option<Gate>,
        fail_logs: AtomicBool,
        /// What the batcher asked of the backend, in order.
        events: Mutex<Vec<String>>,
    }

    impl BatchBackend for MemoryBackend {
        fn read(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self
                .data
                .lock()
                .unwrap()
                .get(&(tree.index(), key.to_vec()))
                .cloned())
        }

        fn scan_prefix(
            &self,
            tree: Tree,
            prefix: &[u8],
        ) -> Result<Vec<crate::store::Pair>, StoreError> {
            Ok(self
                .data
                .lock()
                .unwrap()
                .range((tree.index(), prefix.to_vec())..)
                .take_while(|((t, key), _)| *t == tree.index() && key.starts_with(prefix))
                .map(|((_, key), value)| (key.clone(), value.clone()))
                .collect())
        }

        fn log(&self, batch: &WriteSet) -> Result<Logged, StoreError> {
            let logged = self.logs.fetch_add(1, Ordering::SeqCst);
            if self.panic_in_log.load(Ordering::SeqCst) {
                panic!("a bug in the backend");
            }
            pass(&self.hold_log);
            if self.fail_logs.load(Ordering::SeqCst) {
                return Err(StoreError::Full {
                    detail: "no space for the log".into(),
                });
            }
            self.events.lock().unwrap().push(format!(
                "log {} with {} blobs",
                logged,
                batch.blobs().len()
            ));
            std::thread::sleep(std::time::Duration::from_millis(1));
            Ok(logged)
        }

        fn apply(&self, batch: &WriteSet, logged: Logged) -> Result<(), StoreError> {
            if self.panic_in_apply.load(Ordering::SeqCst) {
                panic!("a bug in the backend");
            }
            pass(&self.hold_apply);
            if self.fail_applies.load(Ordering::SeqCst) {
                return Err(StoreError::Backend("disk failed".into()));
            }
            self.applies.fetch_add(1, Ordering::SeqCst);
            self.events.lock().unwrap().push(format!("apply {logged}"));
            let mut data = self.data.lock().unwrap();
            for (tree, key, value) in batch
                .trees()
                .flat_map(|tree| batch.writes_to(tree).map(move |(k, v)| (tree, k, v)))
            {
                match value {
                    Some(value) => data.insert((tree.index(), key.to_vec()), value.to_vec()),
                    None => data.remove(&(tree.index(), key.to_vec())),
                };
            }
            Ok(())
        }

        fn checkpoint(&self) -> Result<(), StoreError> {
            self.events.lock().unwrap().push("checkpoint".into());
            Ok(())
        }
    }

    /// Returns once the gate, if any, is open.
    fn pass(gate: &Option<Gate>) {
        if let Some(gate) = gate {
            let (released, wake) = &**gate;
            let mut released = released.lock().unwrap();
            while !*released {
                released = wake.wait(released).unwrap();
            }
        }
    }

    fn open(gate: &Gate) {
        let (released, wake) = &**gate;
        *released.lock().unwrap() = true;
        wake.notify_all();
    }

    /// A backend whose applies wait at a gate, with a batcher before it.
    struct HeldApply {
        release: Gate,
        backend: Arc<MemoryBackend>,
        batcher: Arc<Batcher>,
    }

    type Increment = std::thread::JoinHandle<Result<u64, EngineError>>;

    impl HeldApply {
        fn new() -> Self {
            let release: Gate = Arc::new((Mutex::new(false), Condvar::new()));
            let backend = Arc::new(MemoryBackend {
                hold_apply: Some(release.clone()),
                ..MemoryBackend::default()
            });
            let batcher = Arc::new(Batcher::new(Duration::from_secs(30)));
            HeldApply {
                release,
                backend,
                batcher,
            }
        }

        fn increment(&self) -> Increment {
            let (backend, batcher) = (self.backend.clone(), self.batcher.clone());
            std::thread::spawn(move || backend.increment(&batcher))
        }

        /// One batch at the apply's gate and the next one logged behind it.
        fn two_batches_in_flight(&self) -> [Increment; 2] {
            let first = self.increment();
            self.wait_for_logs(1);
            let second = self.increment();
            self.wait_for_logs(2);
            [first, second]
        }

        fn wait_for_logs(&self, count: u64) {
            while self.backend.logs.load(Ordering::SeqCst) < count {
                std::thread::yield_now();
            }
        }
    }

    impl MemoryBackend {
        fn increment(&self, batcher: &Batcher) -> Result<u64, EngineError> {
            let mut taken = 0;
            batcher.transact_durable(self, &mut |txn| {
                let current = txn
                    .get(Tree::Meta, b"n")?
                    .map(|bytes| u64::from_be_bytes(bytes.try_into().unwrap()))
                    .unwrap_or(0);
                taken = current + 1;
                txn.insert(Tree::Meta, b"n", &taken.to_be_bytes())?;
                txn.insert(Tree::Tickets, &taken.to_be_bytes(), b"ticket")
            })?;
            Ok(taken)
        }
    }

    #[test]
    fn concurrent_writers_get_every_number_once_and_share_flushes() {
        let backend = Arc::new(MemoryBackend::default());
        let batcher = Arc::new(Batcher::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (backend, batcher) = (backend.clone(), batcher.clone());
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| {
                            let number = backend.increment(&batcher).unwrap();
                            // Acknowledged means durable, and readable at once.
                            assert!(batcher
                                .read(backend.as_ref(), Tree::Tickets, &number.to_be_bytes())
                                .unwrap()
                                .is_some());
                            number
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut numbers: Vec<u64> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=1600).collect::<Vec<_>>());
        let logs = backend.logs.load(Ordering::SeqCst);
        assert!(logs < 1600, "{logs} log writes for 1600 transactions");
    }

    #[test]
    fn a_failed_transaction_leaves_nothing_behind() {
        let backend = MemoryBackend::default();
        let batcher = Batcher::default();
        let failed = batcher.transact_durable(&backend, &mut |txn| {
            txn.insert(Tree::Meta, b"n", &7u64.to_be_bytes())?;
            Err(EngineError::Store(StoreError::Backend("refused".into())))
        });
        assert!(failed.is_err());
        assert_eq!(backend.increment(&batcher).unwrap(), 1);
    }

    #[test]
    fn a_failed_log_fails_its_writers_and_the_next_write_starts_from_what_is_stored() {
        let backend = MemoryBackend::default();
        let batcher = Batcher::default();
        assert_eq!(backend.increment(&batcher).unwrap(), 1);
        backend.fail_logs.store(true, Ordering::SeqCst);
        let error = backend.increment(&batcher).unwrap_err();
        assert!(error.to_string().contains("no space"), "{error}");
        backend.fail_logs.store(false, Ordering::SeqCst);
        // The failed batch's number was never stored, so it is handed out again.
        assert_eq!(backend.increment(&batcher).unwrap(), 2);
    }

    #[test]
    fn a_logged_batch_that_cannot_be_applied_stays_readable_and_fails_every_later_write() {
        let backend = MemoryBackend::default();
        let batcher = Batcher::default();
        assert_eq!(backend.increment(&batcher).unwrap(), 1);
        backend.fail_applies.store(true, Ordering::SeqCst);
        // Number 2 is in the log, so its writer is told it is stored, and it reads
        // back, although the backend does not hold it.
        assert_eq!(backend.increment(&batcher).unwrap(), 2);
        assert_eq!(
            backend.read(Tree::Tickets, &2u64.to_be_bytes()).unwrap(),
            None
        );
        assert!(batcher
            .read(&backend, Tree::Tickets, &2u64.to_be_bytes())
            .unwrap()
            .is_some());
        // Handing out 3 on top of a backend without 2 would build on what the
        // backend lacks: every later write fails until a restart applies the log.
        backend.fail_applies.store(false, Ordering::SeqCst);
        let later = backend.increment(&batcher).unwrap_err();
        assert!(later.to_string().contains("disk failed"), "{later}");
        assert!(later.to_string().contains("restarted"), "{later}");
    }

    #[test]
    fn a_failed_apply_refuses_the_writes_behind_it_at_once() {
        let held = HeldApply::new();
        let [first, second] = held.two_batches_in_flight();
        let third = held.increment();
        std::thread::sleep(Duration::from_millis(20));
        held.backend.fail_applies.store(true, Ordering::SeqCst);
        let started = Instant::now();
        open(&held.release);
        // Both logged batches were answered: they are durable in the log.
        assert_eq!(first.join().unwrap().unwrap(), 1);
        assert_eq!(second.join().unwrap().unwrap(), 2);
        // The third was pending behind them: it is refused, not left waiting.
        let error = third.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("restarted"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_writer_is_answered_once_logged_and_reads_find_its_batch_before_it_is_applied() {
        let (log_gate, apply_gate): (Gate, Gate) = Default::default();
        let backend = Arc::new(MemoryBackend {
            hold_log: Some(log_gate.clone()),
            hold_apply: Some(apply_gate.clone()),
            ..MemoryBackend::default()
        });
        let batcher = Arc::new(Batcher::new(Duration::from_secs(30)));
        // Applied underneath: a key the batch then removes.
        backend
            .data
            .lock()
            .unwrap()
            .insert((Tree::History.index(), b"a0".to_vec()), b"old".to_vec());
        let spawn = |work: fn(&MemoryBackend, &Batcher) -> Result<(), EngineError>,
                     answered: std::sync::mpsc::Sender<()>| {
            let (backend, batcher) = (backend.clone(), batcher.clone());
            std::thread::spawn(move || {
                let result = work(&backend, &batcher);
                let _ = answered.send(());
                result
            })
        };
        let (answered, answers) = std::sync::mpsc::channel();
        // The first batch's leader is held in its log, so the next two writers
        // share the batch behind it: one leads it, the other only waits for it.
        let first = spawn(
            |b, batcher| b.increment(batcher).map(|_| ()),
            answered.clone(),
        );
        while backend.logs.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let writes = spawn(
            |b, batcher| {
                batcher.transact_durable(b, &mut |txn| {
                    txn.remove(Tree::History, b"a0")?;
                    txn.insert(Tree::History, b"a1", b"one")?;
                    txn.insert(Tree::History, b"b1", b"other")
                })
            },
            answered.clone(),
        );
        let second = spawn(|b, batcher| b.increment(batcher).map(|_| ()), answered);
        while batcher.lock().pending_transactions < 2 {
            std::thread::yield_now();
        }
        open(&log_gate);
        // The first batch's leader is at the apply's gate and the second's waits
        // for it; the other writer of the second batch is answered meanwhile.
        answers
            .recv_timeout(Duration::from_secs(10))
            .expect("a writer answered before any apply");
        assert_eq!(backend.applies.load(Ordering::SeqCst), 0);
        let read = |tree, key: &[u8]| batcher.read(backend.as_ref(), tree, key).unwrap();
        assert_eq!(read(Tree::History, b"a1"), Some(b"one".to_vec()));
        assert_eq!(read(Tree::History, b"a0"), None);
        assert!(read(Tree::Tickets, &1u64.to_be_bytes()).is_some());
        assert!(read(Tree::Tickets, &2u64.to_be_bytes()).is_some());
        let scan = |reverse| {
            let mut applied = backend.scan_prefix(Tree::History, b"a").unwrap();
            if reverse {
                applied.reverse();
            }
            batcher
                .merge_unapplied(
                    Tree::History,
                    Box::new(applied.into_iter().map(Ok)),
                    |key| key.starts_with(b"a"),
                    reverse,
                )
                .map(|pair| String::from_utf8(pair.unwrap().0).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(scan(false), ["a1"]);
        assert_eq!(scan(true), ["a1"]);
        open(&apply_gate);
        for thread in [first, writes, second] {
            thread.join().unwrap().unwrap();
        }
        // Applied now: the backend alone says the same, and nothing lies over it.
        assert!(batcher.unapplied_batches().is_empty());
        assert_eq!(backend.read(Tree::History, b"a0").unwrap(), None);
        assert_eq!(scan(false), ["a1"]);
    }

    #[test]
    fn a_panic_in_a_transaction_or_in_the_log_leaves_the_batcher_usable() {
        let backend = MemoryBackend::default();
        let batcher = Batcher::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = batcher.transact_durable(&backend, &mut |txn| {
                txn.insert(Tree::Meta, b"n", &7u64.to_be_bytes())?;
                panic!("a bug in an operation");
            });
        }));
        assert!(panicked.is_err());
        assert_eq!(backend.increment(&batcher).unwrap(), 1);

        backend.panic_in_log.store(true, Ordering::SeqCst);
        let failed =
            batcher.transact_durable(&backend, &mut |txn| txn.insert(Tree::Meta, b"other", b"x"));
        assert!(failed.unwrap_err().to_string().contains("panicked"));
        backend.panic_in_log.store(false, Ordering::SeqCst);
        assert_eq!(backend.increment(&batcher).unwrap(), 2);
    }

    #[test]
    fn writers_behind_a_commit_that_hangs_get_an_error_in_time() {
        let release: Gate = Arc::new((Mutex::new(false), Condvar::new()));
        let backend = Arc::new(MemoryBackend {
            hold_log: Some(release.clone()),
            ..MemoryBackend::default()
        });
        let batcher = Arc::new(Batcher::new(Duration::from_millis(200)));
        let hung_leader = {
            let (backend, batcher) = (backend.clone(), batcher.clone());
            std::thread::spawn(move || {
                batcher.transact_durable(backend.as_ref(), &mut |txn| {
                    txn.insert(Tree::Meta, b"first", b"1")
                })
            })
        };
        while backend.logs.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        let started = Instant::now();
        let error = backend.increment(&batcher).unwrap_err();
        assert!(error.to_string().contains("not finished"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));

        open(&release);
        assert!(hung_leader.join().unwrap().is_ok());
    }

    #[test]
    fn the_next_batch_is_logged_while_one_is_applied_and_reads_see_both() {
        let held = HeldApply::new();
        let [first, second] = held.two_batches_in_flight();
        let (backend, release) = (&held.backend, &held.release);
        // A third transaction reads both from the overlay: neither is applied.
        let third = held.increment();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(backend.applies.load(Ordering::SeqCst), 0);
        open(release);
        let mut numbers = [first, second, third].map(|thread| thread.join().unwrap().unwrap());
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2, 3]);
        let events = backend.events.lock().unwrap().clone();
        let applies: Vec<&String> = events.iter().filter(|e| e.starts_with("apply")).collect();
        assert_eq!(applies, ["apply 0", "apply 1", "apply 2"], "{events:?}");
    }

    #[test]
    fn a_range_read_in_a_transaction_sees_its_own_writes_and_removals() {
        let backend = MemoryBackend::default();
        let batcher = Batcher::default();
        batcher
            .transact_durable(&backend, &mut |txn| {
                txn.insert(Tree::History, b"a1", b"one")?;
                txn.insert(Tree::History, b"a2", b"two")?;
                txn.insert(Tree::History, b"b1", b"other")
            })
            .unwrap();
        let mut seen = Vec::new();
        batcher
            .transact_durable(&backend, &mut |txn| {
                txn.remove(Tree::History, b"a1")?;
                txn.insert(Tree::History, b"a3", b"three")?;
                seen = txn.scan_prefix(Tree::History, b"a")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (b"a2".to_vec(), b"two".to_vec()),
                (b"a3".to_vec(), b"three".to_vec())
            ]
        );
    }

    #[test]
    fn the_blobs_a_batch_names_are_logged_with_it_before_it_is_applied() {
        let backend = MemoryBackend::default();
        let batcher = Batcher::default();
        batcher
            .transact_durable(&backend, &mut |txn| {
                txn.note_blob(&[1; 32]);
                txn.note_blob(&[2; 32]);
                txn.insert(Tree::RawMail, &[1; 32], &3u64.to_be_bytes())
            })
            .unwrap();
        assert_eq!(
            *backend.events.lock().unwrap(),
            ["log 0 with 2 blobs", "apply 0"]
        );

        backend.fail_logs.store(true, Ordering::SeqCst);
        let refused = batcher.transact_durable(&backend, &mut |txn| {
            txn.note_blob(&[3; 32]);
            txn.insert(Tree::RawMail, &[3; 32], &3u64.to_be_bytes())
        });
        assert!(refused.unwrap_err().to_string().contains("full"));
        assert_eq!(backend.read(Tree::RawMail, &[3; 32]).unwrap(), None);
    }

    #[test]
    fn a_later_write_of_a_key_replaces_the_earlier_one() {
        let mut set = WriteSet::default();
        set.write(Tree::Meta, b"k", Some(b"1"));
        let mut later = WriteSet::default();
        later.write(Tree::Meta, b"k", None);
        later.write(Tree::Tickets, b"k", Some(b"2"));
        set.merge(later);
        assert_eq!(set.len(), 2);
        assert_eq!(set.lookup(Tree::Meta, b"k"), Some(None));
        assert_eq!(set.lookup(Tree::Tickets, b"k"), Some(Some(&b"2"[..])));
        assert_eq!(set.lookup(Tree::Blobs, b"k"), None);
    }
}
