//! `GET /api/v1/search`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use kontor_engine::ids::ContactId;
use kontor_engine::search::feed::Searcher;
use kontor_engine::search::{RecordKind, SearchQuery};

use super::error::ApiError;
use super::extract::ApiQuery;
use super::{parse_id, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search))
}

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Words, `"phrases"`, and `field:value` for `status`, `company`, `kind`.
    pub q: Option<String>,
    /// `ticket` (later also document, quote, order, invoice, subscription).
    pub kind: Option<String>,
    /// Hits a page, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// Page of hits, from 1.
    pub page: Option<u32>,
    /// Search as this contact sees: only records it may see, no internal notes.
    pub as_contact: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitJson {
    pub kind: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    pub title: String,
    /// HTML-escaped text with `<b>…</b>` around the matched words.
    pub snippet: String,
    pub score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchJson {
    pub total: u64,
    pub hits: Vec<SearchHitJson>,
}

/// Full-text search over tickets and their history; subject hits rank first.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses((status = 200, body = SearchJson), (status = 400, body = super::wire::ErrorJson), (status = 404, body = super::wire::ErrorJson)))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchJson>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid",
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let page = params.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::bad_request("invalid", "page", "counts from 1"));
    }
    let kind = match params.kind.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<RecordKind>()
                .map_err(|error| ApiError::bad_request("invalid", "kind", error.to_string()))?,
        ),
    };
    let searcher = match params.as_contact.as_deref() {
        None => Searcher::Staff,
        Some(id) => Searcher::Contact(parse_id::<ContactId>(id, "contact", Some("as_contact"))?),
    };
    let query = SearchQuery {
        q: params.q.unwrap_or_default(),
        kind,
        limit: limit as usize,
        offset: (page as usize - 1) * limit as usize,
    };
    let results = state
        .run(move |engine| engine.search(searcher, &query))
        .await?;
    Ok(Json(SearchJson {
        total: results.total as u64,
        hits: results
            .hits
            .into_iter()
            .map(|hit| SearchHitJson {
                kind: hit.kind.as_str().to_string(),
                id: hit.id,
                number: hit.number,
                title: hit.title,
                snippet: hit.snippet,
                score: hit.score,
            })
            .collect(),
    }))
}
