//! The `kontor` binary's parts: every edge between the engine and the outside world.
//!
//! - [`admin`]: `export`, `keys` and `reindex` through a running server.
//! - [`dkim`]: DKIM keys (`kontor dkim generate`) and signing of outbound mail.
//! - [`config`]: the TOML file and its `KONTOR_…` environment overrides.
//! - [`http`]: axum: the staff API, `/healthz`, the OpenAPI document, magic links and
//!   the customer pages.
//! - [`outbound`]: the outbox sender, the only place that talks SMTP out, and the
//!   webhook sender (`outbound::webhooks`), the only place that posts to the back office.
//! - [`http`]: axum: the staff API, `/healthz`, the OpenAPI document.
//! - [`smtp`]: the inbound SMTP listener, split by verb; it knows nothing of the engine.
//! - [`inbound`]: the listener wired to `Engine::ingest`, as SMTP and as LMTP.
//! - [`imap`]: the IMAP door: fetches a mailbox into `Engine::ingest`.
//! - [`mailgate`]: `kontor mailgate`, an MTA pipe into `POST /api/v1/inbound/email`.
//! - [`tls`]: the rustls (ring) client config of the mailgate and the webhook sender.
//! - [`serve`]: `kontor serve`: opens the engine, binds the listeners, shuts down cleanly.
//! - [`indexer`]: times the search indexer (the indexing is the engine's).
//! - [`memory`]: jemalloc's counters of the process's memory, for `/metrics`.
//! - [`demo`]: the records `serve --demo` seeds into an empty data dir.
//! - [`scheduler`]: runs the jobs of `[schedule]` at their cron times.
//! - [`pdf`]: the PDFs of the portal (signed copy, certificate, invoice, quote, order).
//!
//! Adapters never open sled or tantivy themselves: they call engine operations.

pub mod admin;
pub mod config;
pub mod demo;
pub mod dkim;
pub mod http;
pub mod imap;
pub mod inbound;
pub mod indexer;
pub mod mailgate;
pub mod memory;
pub mod outbound;
pub mod pdf;
pub mod scheduler;
pub mod serve;
pub mod smtp;
pub mod tls;
