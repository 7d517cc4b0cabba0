//! Kontor's engine: the helpdesk itself, with no network I/O.
//!
//! - [`model`]: the records (companies, contacts, staff, tickets, history) and their states.
//! - [`store`]: typed trees over sled, one transaction per change, group commit.
//! - [`ops`]: the engine operations every adapter calls; each change is one
//!   transaction writing the record, its history entry and its changelog entry.
//! - [`notify`]: events become rendered messages and outbox rows, in the change's
//!   transaction; [`links`]: signed tokens (reply addresses, magic links, sessions).
//! - [`intake`]: inbound mail, whichever door it came by: stored raw, then
//!   interpreted (new ticket, reply, reopen, bounce, …) in one transaction.
//! - [`webhooks`]: the back office's events, queued in the change's transaction
//!   from the history entries it writes, and the webhook sender's side of that queue.
//! - [`access`]: the one place that decides who may do what.
//! - [`clock`]: the injected source of "now".
//! - [`validate`], [`ids`], [`error`]: values that are valid by construction, record ids,
//!   and the typed errors adapters turn into the contract's error JSON.
//!
//! Adapters (HTTP, SMTP, CLI) live in the `kontor` crate and never open the store
//! themselves: they build an [`Engine`] and call its operations.

pub mod access;
pub mod chain;
pub mod clock;
pub mod error;
pub mod ids;
pub mod intake;
pub mod links;
pub mod model;
pub mod notify;
pub mod ops;
pub mod portal;
pub mod records;
pub mod search;
pub mod signing;
pub mod store;
mod threads;
pub mod validate;
pub mod webhooks;

mod tx;

use std::path::Path;
use std::sync::Arc;

pub use error::EngineError;
pub use ops::Page;

use clock::{Clock, SystemClock};
use links::KeyRing;
use model::Locale;
use store::sled_store::SledStore;
use store::Store;

/// Settings the engine's rules need; the adapters map the config file onto it.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The largest body (message text, raw mail) accepted, in bytes.
    pub max_body_bytes: usize,
    /// The locale of contacts created without one.
    pub default_locale: Locale,
    /// Our address is `<mailbox>@<domain>`; replies go to `<mailbox>+<token>@<domain>`.
    pub mailbox: String,
    pub domain: String,
    /// Links, their lifetimes and the loop guard.
    pub notify: notify::NotifySettings,
    /// A reply to a done ticket reopens it within this many days; later it opens
    /// a new ticket linked to the old one.
    pub reopen_days: u32,
    /// Mail loop guard: more ordinary mail than this from one sender in an hour is
    /// kept but not ticketed.
    pub max_per_sender_per_hour: u32,
    /// Writes are refused (`StoreError::Full`) while the data dir's disk has less
    /// than this free; 0 turns the check off.
    pub min_free_bytes: u64,
    /// The most of the store sled keeps in memory (`[store] cache_capacity_mb`).
    pub cache_capacity_bytes: u64,
    /// Whether a store created now compresses its pages (`[store] compression`).
    pub compression: bool,
    /// The `[[webhooks]]` endpoints: each change queues a delivery for every one
    /// subscribed to its event, in the change's transaction.
    pub webhooks: Vec<webhooks::WebhookSubscription>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_body_bytes: 25 * 1024 * 1024,
            default_locale: Locale::De,
            mailbox: "support".into(),
            domain: "support.example.com".into(),
            notify: notify::NotifySettings::default(),
            reopen_days: 30,
            max_per_sender_per_hour: 40,
            min_free_bytes: 256 * 1024 * 1024,
            cache_capacity_bytes: store::sled_store::DEFAULT_CACHE_CAPACITY_MB * 1024 * 1024,
            compression: false,
            webhooks: Vec::new(),
        }
    }
}

/// The helpdesk: a store, a clock and the rules. Cheap to share behind an `Arc`;
/// every operation is a blocking call (adapters run them off the async runtime).
pub struct Engine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: KeyRing,
    /// Where the key ring lives; `None` for an engine on a store without a data dir.
    data_dir: Option<std::path::PathBuf>,
    /// The search index, opened on first use.
    search: std::sync::Mutex<Option<Arc<search::SearchIndex>>>,
    config: EngineConfig,
    /// The email templates; `None` until `enable_notifications` (then nothing queues).
    templates: Option<Arc<notify::EmailTemplates>>,
    outbox_signal: notify::OutboxSignal,
    /// Counters for operators (`/metrics`), since the process started.
    counters: ops::stats::EngineCounters,
    /// Bumped when a change queued a webhook delivery, to wake its sender.
    webhook_signal: notify::OutboxSignal,
}

impl Engine {
    /// Opens the sled store in `data_dir` with the wall clock.
    pub fn open(data_dir: &Path, config: EngineConfig) -> Result<Self, EngineError> {
        let store = SledStore::open(
            data_dir,
            store::sled_store::SledSettings {
                min_free_bytes: config.min_free_bytes,
                cache_capacity_bytes: config.cache_capacity_bytes,
                compression: config.compression,
            },
        )?;
        let keys = KeyRing::load_or_create(data_dir)?;
        let mut engine = Self::with_parts(Arc::new(store), Arc::new(SystemClock), keys, config);
        engine.data_dir = Some(data_dir.to_path_buf());
        engine.migrate()?;
        Ok(engine)
    }

    /// An engine on the in-memory store with a fresh key ring and the wall clock:
    /// nothing survives it. The engine's own tests run on it.
    pub fn in_memory(config: EngineConfig) -> Self {
        let store = store::memory::MemoryStore::new();
        let keys = KeyRing::generate("k1");
        Self::with_parts(Arc::new(store), Arc::new(SystemClock), keys, config)
    }

    /// Brings a store written by an older schema up to `SCHEMA_VERSION`.
    fn migrate(&self) -> Result<(), EngineError> {
        let found = self
            .store
            .get(store::Tree::Meta, b"schema_version")?
            .and_then(|bytes| store::trees::trailing_u64(&bytes))
            .unwrap_or(store::SCHEMA_VERSION);
        if found >= store::SCHEMA_VERSION {
            return Ok(());
        }
        if found < 2 {
            let moved = self.migrate_outbox_due_from_schema_1()?;
            tracing::info!(rows = moved, "migrated the outbox's due index to schema 2");
        }
        if found < 3 {
            let sealed = self.migrate_history_chains()?;
            tracing::info!(
                entries = sealed,
                "sealed every history into its chain (schema 3)"
            );
        }
        if found < 4 {
            let indexed = self.migrate_reseller_index()?;
            tracing::info!(
                companies = indexed,
                "indexed the customers of every reseller (schema 4)"
            );
        }
        if found < 5 {
            let moved = self.migrate_blobs_to_files()?;
            tracing::info!(
                blobs = moved,
                "moved raw mail and attachments out of the store into blob files (schema 5)"
            );
        }
        // Schema 6 (the store's write-ahead log) changes no tree: the version alone.
        self.write(|tx| {
            tx.put_raw(
                store::Tree::Meta,
                b"schema_version",
                &store::SCHEMA_VERSION.to_be_bytes(),
            )
        })
    }

    pub fn with_parts(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: KeyRing,
        config: EngineConfig,
    ) -> Self {
        Engine {
            store,
            clock,
            keys,
            data_dir: None,
            search: std::sync::Mutex::new(None),
            config,
            templates: None,
            outbox_signal: notify::OutboxSignal::default(),
            counters: ops::stats::EngineCounters::default(),
            webhook_signal: notify::OutboxSignal::default(),
        }
    }

    /// Replaces the clock; `kontor jobs run --now` runs a job at a set time.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The address whose mail threads into `ticket`.
    pub fn reply_address(&self, ticket: &model::Ticket) -> String {
        self.reply_address_of(model::RecordRef::ticket(ticket.id))
    }

    /// The data dir the store lives in; `None` for an engine without one.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// True when the store holds no records yet (a fresh data dir).
    pub fn is_empty(&self) -> Result<bool, EngineError> {
        self.store.is_empty().map_err(EngineError::from)
    }

    /// Makes everything committed so far durable; called at shutdown.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.store.durable().map_err(EngineError::from)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::{Engine, EngineConfig, EngineError};

    /// Opens a data dir the test just closed. sled's I/O threads may still hold its
    /// lock for a moment after the last handle is dropped (seen under load), which
    /// only a reopen within one process meets.
    pub fn reopen(dir: &std::path::Path) -> Engine {
        reopen_with(dir, EngineConfig::default())
    }

    /// [`reopen`] with a configuration of the test's.
    pub fn reopen_with(dir: &std::path::Path, config: EngineConfig) -> Engine {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Engine::open(dir, config.clone()) {
                Err(EngineError::Store(crate::store::StoreError::Locked { .. }))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                opened => return opened.unwrap(),
            }
        }
    }
}
