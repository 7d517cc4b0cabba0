//! The `kontor` binary's parts: every edge between the engine and the outside world.
//!
//! - [`config`]: the TOML file and its `KONTOR_…` environment overrides.
//! - [`http`]: axum: the staff API, `/healthz`, the OpenAPI document, magic links and
//!   the customer pages.
//! - [`outbound`]: the outbox sender, the only place that talks SMTP out.
//! - [`serve`]: `kontor serve`: opens the engine, binds the listeners, shuts down cleanly.
//! - [`indexer`]: times the search indexer (the indexing is the engine's).
//! - [`demo`]: the records `serve --demo` seeds into an empty data dir.
//!
//! Adapters never open sled or tantivy themselves: they call engine operations.

pub mod config;
pub mod demo;
pub mod http;
pub mod indexer;
pub mod outbound;
pub mod serve;
