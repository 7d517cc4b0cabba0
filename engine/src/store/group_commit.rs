//! Group commit: many writers share one flush.
//!
//! A writer that needs its committed transaction on disk calls [`GroupCommit::wait`].
//! It needs a flush that *starts* after its commit. If no flush is running, it leads
//! one; otherwise it waits for the running one to end and for the next, which some
//! waiter leads on behalf of everyone who arrived meanwhile. Under load, one flush
//! covers every writer that arrived during the previous one.

use std::sync::{Condvar, Mutex, MutexGuard};

use super::StoreError;

#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    flush_ended: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Flushes started so far; the running one, if any, is number `started`.
    started: u64,
    running: bool,
    /// The newest flush that ended well: everything committed before it began is durable.
    newest_ok: u64,
    /// The newest flush that ended, well or not.
    newest_ended: u64,
    newest_error: Option<String>,
}

impl GroupCommit {
    /// Returns once a flush that began after this call has succeeded, running `flush`
    /// itself when no other caller is.
    pub fn wait(&self, flush: impl Fn() -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut state = self.lock();
        let needed = state.started + 1;
        loop {
            if state.newest_ok >= needed {
                return Ok(());
            }
            if state.newest_ended >= needed {
                let reason = state
                    .newest_error
                    .clone()
                    .unwrap_or_else(|| "flush failed".to_string());
                return Err(StoreError::Backend(reason));
            }
            if state.running {
                state = self
                    .flush_ended
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            }
            state.running = true;
            state.started += 1;
            let this_flush = state.started;
            drop(state);
            let result = flush();
            state = self.lock();
            state.running = false;
            state.newest_ended = this_flush;
            match result {
                Ok(()) => state.newest_ok = this_flush,
                Err(error) => state.newest_error = Some(error.to_string()),
            }
            self.flush_ended.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_share_flushes_and_each_sees_a_later_one() {
        let group = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let writes = Arc::new(AtomicU64::new(0));
        let durable_writes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (group, flushes, writes, durable) = (
                    group.clone(),
                    flushes.clone(),
                    writes.clone(),
                    durable_writes.clone(),
                );
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let mine = writes.fetch_add(1, Ordering::SeqCst) + 1;
                        group
                            .wait(|| {
                                flushes.fetch_add(1, Ordering::SeqCst);
                                durable.store(writes.load(Ordering::SeqCst), Ordering::SeqCst);
                                std::thread::yield_now();
                                Ok(())
                            })
                            .unwrap();
                        // The flush that released us saw our write.
                        assert!(durable.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(flushes.load(Ordering::SeqCst) <= 1600);
    }

    #[test]
    fn a_failed_flush_is_reported_to_its_waiters() {
        let group = GroupCommit::default();
        let result = group.wait(|| Err(StoreError::Backend("disk full".into())));
        assert!(matches!(result, Err(StoreError::Backend(reason)) if reason.contains("disk full")));
        assert!(group.wait(|| Ok(())).is_ok());
    }
}
