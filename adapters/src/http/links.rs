//! Magic links at the edge: `GET /l/{token}` (open a link: session cookie, 303 to
//! its page, no token left in the address), `POST /l/fresh` (the expired page's form),
//! and the staff API's `POST /api/v1/links`, `POST /api/v1/links/revoke` and
//! `GET /api/v1/outbox`.
//!
//! Answers: valid 303; expired 410 with the fresh-link form; tampered, revoked or
//! wrong scope 403. `GET` only reads: mail scanners and previewers open links too.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use kontor_engine::ids::{ContactId, TicketId};
use kontor_engine::links::LinkScope;
use kontor_engine::model::{Locale, OutboxState, RecordKind, RecordRef};
use kontor_engine::ops::links::LinkRefused;
use kontor_engine::ops::PageRequest;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::pages::{page_headers, SESSION_COOKIE};
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

/// `GET /l/{token}`.
pub async fn open_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let default_locale = state.engine.config().default_locale;
    let secure = state
        .engine
        .config()
        .notify
        .public_url
        .starts_with("https://");
    let checked = {
        let token = token.clone();
        state
            .run(move |engine| {
                let outcome = engine.open_link(&token);
                // The expired page speaks the language of the link's contact.
                let locale = match &outcome {
                    Err(LinkRefused::Expired(claims)) => claims
                        .contact_id
                        .and_then(|id| engine.contact(id).ok())
                        .map(|contact| contact.locale),
                    _ => None,
                };
                Ok((outcome, locale))
            })
            .await
    };
    let (outcome, locale) = match checked {
        Ok(checked) => checked,
        Err(error) => return error.into_response(),
    };
    let locale = locale.unwrap_or(default_locale);
    match outcome {
        Ok(opened) => {
            let max_age = (opened.session_expires_at - state.engine.clock().now())
                .num_seconds()
                .max(0);
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
                opened.session,
                if secure { "; Secure" } else { "" }
            );
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            page_headers(headers);
            if let Ok(location) = HeaderValue::from_str(&opened.location) {
                headers.insert(header::LOCATION, location);
            }
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                headers.insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(LinkRefused::Expired(_)) => state.pages.respond(
            StatusCode::GONE,
            "expired",
            locale,
            json!({"title": expired_title(locale), "token": token}),
        ),
        Err(LinkRefused::Forged | LinkRefused::Revoked | LinkRefused::WrongScope) => {
            let (title, text) = match locale {
                Locale::De => (
                    "Ungültiger Link",
                    "Dieser Link ist nicht gültig. Bitte nutzen Sie den Link aus unserer neuesten E-Mail.",
                ),
                Locale::En => (
                    "Invalid link",
                    "This link is not valid. Please use the link in our latest email.",
                ),
            };
            state
                .pages
                .message(StatusCode::FORBIDDEN, locale, title, text)
        }
    }
}

fn expired_title(locale: Locale) -> &'static str {
    match locale {
        Locale::De => "Link abgelaufen",
        Locale::En => "Link expired",
    }
}

/// The expired page's form.
#[derive(Debug, Deserialize)]
pub struct FreshLinkForm {
    token: String,
}

/// `POST /l/fresh`: mails a fresh link to the expired link's contact. The answer is the
/// same whether or not anything was sent.
pub async fn fresh_link(
    State(state): State<AppState>,
    Form(form): Form<FreshLinkForm>,
) -> Response {
    let locale = state.engine.config().default_locale;
    let token = form.token;
    if let Err(error) = state
        .run(move |engine| engine.send_fresh_link(&token))
        .await
    {
        tracing::warn!(code = %error.code, "sending a fresh link failed");
    }
    let (title, text) = match locale {
        Locale::De => (
            "Anfrage erhalten",
            "Wenn der Link von uns stammt, haben wir einen neuen an die Adresse geschickt, an die der alte ging.",
        ),
        Locale::En => (
            "Request received",
            "If the link was ours, we have mailed a fresh one to the address the old one went to.",
        ),
    };
    state.pages.message(StatusCode::OK, locale, title, text)
}

/// A magic link for a customer. Only `ticket` records have pages yet (others: 422
/// `record_not_supported`); a ticket has `view` links only (`sign`: 422
/// `scope_not_allowed`).
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
    if kind != RecordKind::Ticket {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "record_not_supported",
            format!("links to a {} are not available yet", kind.as_str()),
        ));
    }
    let ticket: TicketId = parse_id(id, "ticket", Some("id"))?;
    Ok(RecordRef::ticket(ticket))
}
