//! Feeding the index from the store, and searching it through the engine.
//!
//! The index is derived (DESIGN.md invariant 4): it records the last changelog
//! sequence it applied in its own commit, [`Engine::index_pending`] catches up from
//! there (after a crash too), and [`Engine::reindex`] rebuilds it from nothing into a
//! fresh directory that is then swapped in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::access;
use crate::error::EngineError;
use crate::ids::ContactId;
use crate::model::{Change, EntryBody, RecordKind, RecordRef, Visibility};
use crate::records::{display_id, RecordHead};
use crate::store::codec::decode;
use crate::store::{StoreError, Tree};
use crate::Engine;

use super::{EntryDoc, IndexDoc, SearchError, SearchIndex, SearchQuery, SearchResults, Viewer};

/// How many changelog entries one catch-up step applies before it commits.
pub const INDEX_BATCH: usize = 2_000;

impl From<SearchError> for EngineError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::InvalidQuery(message) => {
                EngineError::invalid_field("q", "invalid_query", message)
            }
            other => EngineError::Store(StoreError::Backend(format!("search index: {other}"))),
        }
    }
}

/// Who searches: staff see everything, a contact what `access` lets it see.
#[derive(Debug, Clone, Copy)]
pub enum Searcher {
    Staff,
    Contact(ContactId),
}

impl Engine {
    fn search_dir(&self) -> Result<PathBuf, EngineError> {
        self.data_dir
            .as_ref()
            .map(|dir| dir.join("search"))
            .ok_or_else(|| {
                EngineError::Store(StoreError::Backend(
                    "this engine has no data dir for a search index".into(),
                ))
            })
    }

    /// The index, opened on first use (commands like `keys create` never need it).
    pub fn search_index(&self) -> Result<Arc<SearchIndex>, EngineError> {
        let mut slot = self
            .search
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(index) = slot.as_ref() {
            return Ok(index.clone());
        }
        let dir = self.search_dir()?;
        let index = match SearchIndex::open(&dir) {
            Ok(index) => index,
            // A schema from another build: the index is derived, so rebuild it from
            // the changelog rather than refuse to start.
            Err(SearchError::IncompatibleSchema) => {
                tracing::warn!(dir = %dir.display(), "search index schema changed; rebuilding from the changelog");
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| EngineError::Store(StoreError::Backend(e.to_string())))?;
                SearchIndex::open(&dir)?
            }
            Err(other) => return Err(other.into()),
        };
        let index = Arc::new(index);
        *slot = Some(index.clone());
        Ok(index)
    }

    /// Searches as staff or as a contact; a contact's access rules apply inside the
    /// query, so totals and pages count only what it may see.
    pub fn search(
        &self,
        searcher: Searcher,
        query: &SearchQuery,
    ) -> Result<SearchResults, EngineError> {
        let viewer = match searcher {
            Searcher::Staff => Viewer::Staff,
            Searcher::Contact(contact_id) => {
                let contact = self.contact(contact_id)?;
                let company = self.company(contact.company_id)?;
                Viewer::Contact {
                    audience: access::viewer_tokens(&contact, &company),
                }
            }
        };
        Ok(self.search_index()?.search(&viewer, query)?)
    }

    /// The newest changelog sequence (0 for an empty store).
    pub fn changelog_head(&self) -> Result<u64, EngineError> {
        match self.store.scan_prefix(Tree::Changelog, &[], true).next() {
            Some(item) => {
                let (key, _) = item?;
                Ok(crate::store::trees::trailing_u64(&key).unwrap_or(0))
            }
            None => Ok(0),
        }
    }

    /// Applies up to [`INDEX_BATCH`] changelog entries the index has not seen, and
    /// commits them with the last sequence applied. Returns how many it applied.
    pub fn index_pending(&self) -> Result<usize, EngineError> {
        let index = self.search_index()?;
        let applied = index.applied_seq();
        let mut records = BTreeSet::new();
        let mut last = applied;
        let mut count = 0;
        for item in self
            .store
            .scan_after(Tree::Changelog, &applied.to_be_bytes())
        {
            let (_, value) = item?;
            let change: Change = decode(Tree::Changelog, &value)?;
            // The scan runs while batches are applied key by key, so it can pass
            // an entry that lands behind it; read what it skipped one by one.
            for skipped in (last + 1..change.seq).take(INDEX_BATCH) {
                if let Some(value) = self.store.get(Tree::Changelog, &skipped.to_be_bytes())? {
                    let skipped: Change = decode(Tree::Changelog, &value)?;
                    records.extend(skipped.records.iter().map(|r| (r.kind.code(), r.id)));
                    count += 1;
                }
            }
            records.extend(change.records.iter().map(|r| (r.kind.code(), r.id)));
            last = change.seq;
            count += 1;
            if count >= INDEX_BATCH {
                break;
            }
        }
        if count == 0 {
            return Ok(0);
        }
        for (kind_code, id) in records {
            if let Some(kind) = RecordKind::from_code(kind_code) {
                self.index_record(&index, RecordRef { kind, id })?;
            }
        }
        index.commit(last)?;
        Ok(count)
    }

    /// Brings one record's document up to date: written, or deleted when the record
    /// is gone. Companies have a history but no document.
    fn index_record(&self, index: &SearchIndex, record: RecordRef) -> Result<(), EngineError> {
        let Some(spec) = crate::records::spec(record.kind) else {
            return Ok(());
        };
        match spec.head(&mut self.reader(), record.id)? {
            Some(head) => index.upsert(&self.record_document(&head)?)?,
            None => index.delete(record.kind, &display_id(record))?,
        }
        Ok(())
    }

    /// Everything the index keeps of a record: its title, what its kind adds (lines,
    /// modules), every history entry with attachment names, its person, company,
    /// audience, status and dates.
    pub fn record_document(&self, head: &RecordHead) -> Result<IndexDoc, EngineError> {
        let mut entries = Vec::new();
        let spec = crate::records::spec_of(head.record.kind)?;
        let content = spec.search_text(&mut self.reader(), head.record.id)?;
        if !content.is_empty() {
            entries.push(EntryDoc {
                entry_id: format!("{}:content", display_id(head.record)),
                text: content.join("\n"),
                internal: false,
                attachment_names: vec![],
                at: head.created_at.timestamp(),
            });
        }
        for item in self
            .store
            .scan_prefix(Tree::History, &head.record.key_prefix(), false)
        {
            let (_, value) = item?;
            let entry: crate::model::HistoryEntry = decode(Tree::History, &value)?;
            let (text, attachment_ids) = match entry.body {
                EntryBody::Message {
                    text, attachments, ..
                } => (text, attachments),
                EntryBody::TimeEntry { note, .. } => (note, vec![]),
                EntryBody::Event(_) => continue,
            };
            let mut attachment_names = Vec::new();
            for attachment in attachment_ids {
                if let Ok(meta) = self.attachment(attachment) {
                    attachment_names.push(meta.filename);
                }
            }
            entries.push(EntryDoc {
                entry_id: entry.id.to_string(),
                text,
                internal: entry.visibility == Visibility::Internal,
                attachment_names,
                at: entry.at.timestamp(),
            });
        }
        let company = match head.company_id {
            Some(id) => self.read::<crate::model::Company>(Tree::Companies, &id.key())?,
            None => None,
        };
        let contact = match head.contact_id {
            Some(id) => self.read::<crate::model::Contact>(Tree::Contacts, &id.key())?,
            None => None,
        };
        let mut participants: Vec<ContactId> = Vec::new();
        for address in &head.participants {
            if let Some(participant) = self.contact_by_email(address)? {
                participants.push(participant.id);
            }
        }
        let person = [
            contact
                .as_ref()
                .map(|c| c.name.clone())
                .or(head.name.clone()),
            contact
                .as_ref()
                .map(|c| c.email.to_string())
                .or(head.email.as_ref().map(|e| e.to_string())),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        Ok(IndexDoc {
            kind: head.record.kind,
            record_id: display_id(head.record),
            number: head.number,
            title: head.title.clone(),
            entries,
            requester: person,
            company_id: head.company_id.map(|id| id.to_string()),
            company_name: company.as_ref().map(|c| c.name.clone()),
            reseller_id: company
                .as_ref()
                .and_then(|c| c.reseller_id)
                .map(|id| id.to_string()),
            audience: access::audience_tokens(head, company.as_ref(), &participants),
            status: head.status.to_string(),
            created_at: head.created_at.timestamp(),
            updated_at: head.updated_at.timestamp(),
            locale: contact
                .map(|c| c.locale)
                .unwrap_or(self.config().default_locale)
                .as_str()
                .to_string(),
        })
    }

    /// Rebuilds the index from the store into a fresh directory and swaps it in.
    /// `progress(done, total)` is called as records are indexed. Safe while the
    /// server runs (`kontor reindex` goes through it then): searches use the old
    /// index until the swap.
    pub fn reindex(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<u64, EngineError> {
        let live = self.search_dir()?;
        let fresh = live.with_file_name("search.new");
        let io =
            |e: std::io::Error| EngineError::Store(StoreError::Backend(format!("reindex: {e}")));
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io)?;
        }
        let head = self.changelog_head()?;
        let specs: Vec<_> = RecordKind::RECORDS
            .into_iter()
            .filter_map(crate::records::spec)
            .collect();
        let mut total = 0u64;
        for spec in &specs {
            total += spec.all_ids(self.store.as_ref()).count() as u64;
        }
        let index = SearchIndex::open_for(&fresh, super::IndexWriting::Bulk)?;
        let mut done = 0u64;
        progress(0, total);
        for spec in &specs {
            for id in spec.all_ids(self.store.as_ref()) {
                let id = id?;
                if let Some(record) = spec.head(&mut self.reader(), id)? {
                    index.upsert(&self.record_document(&record)?)?;
                }
                done += 1;
                if done.is_multiple_of(1000) || done == total {
                    progress(done, total);
                }
            }
        }
        index.commit(head)?;
        drop(index);
        // Swapped under the slot's lock: a concurrent `search_index()` (the server's
        // indexer, a search) waits and then opens the fresh index, never the one
        // being moved away. Changes after `head` reach it from the changelog.
        let mut slot = self
            .search
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        swap_dirs(&live, &fresh).map_err(io)?;
        *slot = None;
        Ok(done)
    }
}

/// Puts `fresh` where `live` was; the old index is removed only once the new one is
/// in place, so a crash leaves one of the two whole.
fn swap_dirs(live: &Path, fresh: &Path) -> std::io::Result<()> {
    let old = live.with_file_name("search.old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if live.exists() {
        std::fs::rename(live, &old)?;
    }
    std::fs::rename(fresh, live)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}
