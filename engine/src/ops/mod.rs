//! Engine operations: what adapters call. Each change is one transaction
//! (`crate::tx`), answered once durable; reads go straight to the store.

pub mod attachments;
pub mod bounces;
pub mod jobs;
pub mod keys;
pub mod links;
pub mod outbox;
pub mod parties;
pub mod stats;
pub mod tickets;
pub mod transfer;
pub mod verify;

use crate::error::EngineError;
use crate::store::tables::{DueKey, IndexTable, RowId, Table};
use crate::Engine;

/// The largest page a list answers.
pub const MAX_PER_PAGE: u32 = 500;
pub const DEFAULT_PER_PAGE: u32 = 50;

/// Which page of a list to answer; `page` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

impl PageRequest {
    pub fn new(page: Option<u32>, per_page: Option<u32>) -> Result<Self, EngineError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 {
            return Err(EngineError::invalid_field(
                "page",
                "invalid",
                "counts from 1",
            ));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(EngineError::invalid_field(
                "per_page",
                "invalid",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        Ok(PageRequest { page, per_page })
    }

    pub fn first() -> Self {
        PageRequest {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }

    pub fn page(&self) -> u32 {
        self.page
    }

    pub fn per_page(&self) -> u32 {
        self.per_page
    }

    fn skip(&self) -> usize {
        (self.page as usize - 1) * self.per_page as usize
    }
}

/// One page of a list, with the total across all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

/// The rows a due index names as due at `now`, oldest first, at most `limit`:
/// the index is in time order, so rows deferred for later are not read at all.
/// `still_due` checks the row itself (its state and next attempt).
pub(crate) fn due_rows<V: serde::Serialize + serde::de::DeserializeOwned>(
    engine: &Engine,
    due: IndexTable<DueKey>,
    rows: Table<RowId, V>,
    limit: usize,
    still_due: impl Fn(&V) -> bool,
) -> Result<Vec<V>, EngineError> {
    let now = DueKey::millis(engine.clock().now());
    let mut found = Vec::new();
    for key in due.keys(engine.store.as_ref()) {
        let Some((at, id)) = DueKey::split(&key?) else {
            continue;
        };
        if at > now {
            break;
        }
        if let Some(row) = rows.get(&mut engine.reader(), &RowId(id))? {
            if still_due(&row) {
                found.push(row);
                if found.len() == limit {
                    break;
                }
            }
        }
    }
    Ok(found)
}

/// A page of a sequence-keyed tree's rows, newest first, those `keep` keeps.
pub(crate) fn rows_page<V: serde::Serialize + serde::de::DeserializeOwned>(
    engine: &Engine,
    rows: Table<RowId, V>,
    keep: impl Fn(&V) -> bool,
    request: PageRequest,
) -> Result<Page<V>, EngineError> {
    let kept = rows
        .values(engine.store.as_ref(), true)
        .filter(|row| row.as_ref().map_or(true, &keep));
    paginate(kept, request, |row| Ok(Some(row)))
}

/// Pages through an iterator of ids, counting all of them for `total` and loading
/// only those on the requested page.
pub(crate) fn paginate<I, T>(
    ids: impl Iterator<Item = Result<I, EngineError>>,
    request: PageRequest,
    mut load: impl FnMut(I) -> Result<Option<T>, EngineError>,
) -> Result<Page<T>, EngineError> {
    let mut total = 0u64;
    let mut items = Vec::new();
    let skip = request.skip();
    for id in ids {
        let id = id?;
        let index = total as usize;
        total += 1;
        if index >= skip && items.len() < request.per_page as usize {
            if let Some(item) = load(id)? {
                items.push(item);
            }
        }
    }
    Ok(Page {
        items,
        total,
        page: request.page,
        per_page: request.per_page,
    })
}
