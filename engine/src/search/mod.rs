//! Full-text search over helpdesk records (tickets, documents, quotes,
//! orders, invoices, subscriptions), fed from the store's changelog.
//!
//! One tantivy document per record: the engine shows records, not messages,
//! so `total` and paging count records without collapsing hits, and an
//! upsert replaces exactly one document. Public and internal history text go
//! to separate fields so contact queries can leave internal text out of both
//! matching and snippets. See `index.rs` for the schema and its reasoning.

mod analysis;
pub mod feed;
mod index;
mod query;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use index::SearchIndex;
pub use query::{parse_query, ParsedQuery};

/// The kinds of record that are searchable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Ticket,
    Document,
    Quote,
    Order,
    Invoice,
    Subscription,
}

impl RecordKind {
    /// Every kind, in a stable order.
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Ticket,
        RecordKind::Document,
        RecordKind::Quote,
        RecordKind::Order,
        RecordKind::Invoice,
        RecordKind::Subscription,
    ];

    /// The lowercase name used in the index and in `kind:` queries.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Ticket => "ticket",
            RecordKind::Document => "document",
            RecordKind::Quote => "quote",
            RecordKind::Order => "order",
            RecordKind::Invoice => "invoice",
            RecordKind::Subscription => "subscription",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = SearchError;

    /// Accepts the English names case-insensitively, so `kind:Ticket` works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == lower)
            .ok_or_else(|| {
                SearchError::InvalidQuery(format!(
                    "unknown kind '{s}': expected one of ticket, document, quote, order, invoice, subscription"
                ))
            })
    }
}

/// Everything the index needs to know about one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDoc {
    pub kind: RecordKind,
    pub record_id: String,
    /// The human-facing number ("#1234"); searching for it finds the record.
    pub number: Option<u64>,
    /// Subject; ranked above history text.
    pub title: String,
    /// History entries in order; internal ones are staff-only.
    pub entries: Vec<EntryDoc>,
    /// Requester's name and email.
    pub requester: String,
    pub company_id: Option<String>,
    pub company_name: Option<String>,
    /// The reseller of the record's company, if any.
    pub reseller_id: Option<String>,
    /// The requester and participants: contacts who may see this record
    /// even without company-wide visibility.
    pub contact_ids: Vec<String>,
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; orders filter-only results (newest first).
    pub updated_at: i64,
    /// "de" or "en". Only a hint (snippet order): text is analysed in both
    /// languages regardless.
    pub locale: String,
}

/// One history entry of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryDoc {
    pub entry_id: String,
    pub text: String,
    /// Internal notes are searchable and shown to staff only.
    pub internal: bool,
    /// Searchable like the text, with the same visibility.
    pub attachment_names: Vec<String>,
    /// Unix seconds.
    pub at: i64,
}

/// Who is searching; decides which records and which text may match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Viewer {
    /// Sees every record, including internal notes.
    Staff,
    /// A customer contact: sees only public text of records it may access.
    Contact {
        contact_id: String,
        company_id: String,
        /// May see all of its company's records, not only its own.
        sees_company: bool,
        /// Its company is a reseller: with `sees_company`, also sees records
        /// whose `reseller_id` is this company.
        reseller_of: bool,
    },
}

/// A search request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Search box input, see [`parse_query`].
    pub q: String,
    /// Restricts to one kind (ANDed with any `kind:` in `q`).
    pub kind: Option<RecordKind>,
    /// Page size; 0 returns only the total. Capped at [`MAX_LIMIT`].
    pub limit: usize,
    pub offset: usize,
}

/// Largest page size honoured; deeper pages cost a full top-k heap each.
pub const MAX_LIMIT: usize = 1000;

/// One matching record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub kind: RecordKind,
    pub id: String,
    pub number: Option<u64>,
    pub title: String,
    /// HTML-escaped text with `<b>…</b>` around matched words; for a
    /// contact always from public text.
    pub snippet: String,
    /// Relevance; 0 for filter-only queries, which are ordered newest first.
    pub score: f32,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Number of records the viewer may see that match, over all pages.
    pub total: usize,
    pub hits: Vec<Hit>,
}

/// Errors of the search module.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query text cannot be understood; the message is meant for users.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The index on disk was built with a different schema. Delete the
    /// directory and rebuild from the changelog (applied_seq 0).
    #[error("search index has an incompatible schema; rebuild it")]
    IncompatibleSchema,
    /// The commit payload is not ours; the index directory is not trusted.
    #[error("search index commit payload is unreadable: {0:?}")]
    CorruptPayload(String),
    #[error("search index I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}
