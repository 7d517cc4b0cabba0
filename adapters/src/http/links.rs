//! Magic links in the staff API: `POST /api/v1/links`, `POST /api/v1/links/revoke`,
//! and `GET /api/v1/outbox`. Opening a link is the portal's (`portal/login.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use kontor_engine::ids::ContactId;
use kontor_engine::links::LinkScope;
use kontor_engine::model::{OutboxState, RecordKind, RecordRef};
use kontor_engine::ops::PageRequest;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::wire::{
    outbox_state_name, ErrorJson, LinkJson, ListJson, NewLinkJson, OutboxItemJson, OutboxQuery,
    RevokeLinksJson, RevokedLinksJson,
};
use super::{parse_id, AppState};

/// The staff routes, under `/api/v1`.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/links", post(create_link))
        .route("/links/revoke", post(revoke_links))
        .route("/outbox", axum::routing::get(list_outbox))
}

/// The notifications, newest first: what was sent, what waits, what failed and why.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "links", params(OutboxQuery),
    responses((status = 200, body = ListJson<OutboxItemJson>), (status = 400, body = ErrorJson)))]
pub async fn list_outbox(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<OutboxQuery>,
) -> Result<Json<ListJson<OutboxItemJson>>, ApiError> {
    let wanted = match query.state.as_deref() {
        None => None,
        Some(text) => Some(
            [
                OutboxState::Pending,
                OutboxState::Sent,
                OutboxState::Failed,
                OutboxState::Suppressed,
            ]
            .into_iter()
            .find(|state| outbox_state_name(*state) == text)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid",
                    "state",
                    "must be pending, sent, failed or suppressed",
                )
            })?,
        ),
    };
    let list = state
        .run(move |engine| {
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.list_outbox(wanted, request)?;
            ListJson::from_page(page, |row| Ok(OutboxItemJson::from(row)))
        })
        .await?;
    Ok(Json(list))
}

/// A magic link for a customer to any record's page; `sign` only for documents and
/// quotes (others: 422 `scope_not_allowed`).
#[utoipa::path(post, path = "/api/v1/links", tag = "links", request_body = NewLinkJson,
    responses((status = 201, body = LinkJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn create_link(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewLinkJson>,
) -> Result<(StatusCode, Json<LinkJson>), ApiError> {
    let record = record_of(&body.record, &body.id)?;
    let scope = LinkScope::parse(&body.scope)
        .filter(|scope| *scope != LinkScope::Login)
        .ok_or_else(|| ApiError::bad_request("invalid", "scope", "must be view or sign"))?;
    let contact_id = body
        .contact_id
        .as_deref()
        .map(|id| parse_id::<ContactId>(id, "contact", Some("contact_id")))
        .transpose()?;
    let link = state
        .run(move |engine| engine.create_link(record, contact_id, scope))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(LinkJson {
            url: link.url,
            expires_at: link.expires_at,
        }),
    ))
}

/// Revokes every link made so far to a record, by bumping its link epoch: they answer
/// 403 from now on. New links work.
#[utoipa::path(post, path = "/api/v1/links/revoke", tag = "links", request_body = RevokeLinksJson,
    responses((status = 200, body = RevokedLinksJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn revoke_links(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RevokeLinksJson>,
) -> Result<Json<RevokedLinksJson>, ApiError> {
    let record = record_of(&body.record, &body.id)?;
    let epoch = state.run(move |engine| engine.revoke_links(record)).await?;
    Ok(Json(RevokedLinksJson {
        record: body.record,
        id: body.id,
        link_epoch: epoch,
    }))
}

fn record_of(kind: &str, id: &str) -> Result<RecordRef, ApiError> {
    let kind = RecordKind::parse(kind)
        .filter(|kind| *kind != RecordKind::Company)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid",
                "record",
                "must be ticket, document, quote, order, invoice or subscription",
            )
        })?;
    kontor_engine::records::parse_record_id(kind, id).ok_or_else(|| {
        ApiError::not_found(kind.as_str(), id)
            .with_field("id", format!("no {} {id}", kind.as_str()))
    })
}
