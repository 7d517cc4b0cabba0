//! The search indexer's timing: a thread that asks the engine to apply pending
//! changelog entries every `search.index_interval_ms`, and at once when a batch was
//! full. The indexing itself is `Engine::index_pending`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kontor_engine::Engine;

/// A running indexer; `stop` ends it after its current batch.
pub struct Indexer {
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    pub fn start(engine: Arc<Engine>, interval: Duration) -> Indexer {
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match engine.index_pending() {
                        Ok(applied) if applied >= kontor_engine::search::feed::INDEX_BATCH => {
                            continue
                        }
                        Ok(_) => {}
                        Err(error) => tracing::error!(%error, "search indexing failed; retrying"),
                    }
                    // `stop`'s unpark may have been taken inside the indexing
                    // (tantivy's channels park this thread too), so the flag is
                    // read again before parking; an unpark after it still wakes.
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::park_timeout(interval);
                }
            })
            .ok();
        Indexer { stopping, thread }
    }

    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
