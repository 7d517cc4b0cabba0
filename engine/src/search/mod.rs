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

use serde::{Deserialize, Serialize};

pub use index::{IndexWriting, SearchIndex};
pub use query::{parse_query, ParsedQuery};

/// The one record kind of the engine; the searchable ones are `RecordKind::RECORDS`.
pub use crate::model::RecordKind;

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
    /// Who may see the record: `access::audience_tokens`, matched against the
    /// viewer's `access::viewer_tokens`.
    pub audience: Vec<String>,
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
    /// A customer contact: sees only public text of records whose audience shares
    /// a token with its own (`access::viewer_tokens`).
    Contact { audience: Vec<String> },
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

impl From<crate::model::UnknownRecordKind> for SearchError {
    fn from(unknown: crate::model::UnknownRecordKind) -> Self {
        SearchError::InvalidQuery(unknown.to_string())
    }
}
