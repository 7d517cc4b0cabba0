//! `/inbound`: raw mail over HTTP (the door `kontor mailgate` uses) and the
//! quarantine of mail that could not be interpreted.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use kontor_engine::ids::QuarantineId;
use kontor_engine::intake::InboundMail;
use kontor_engine::ops::PageRequest;

use super::error::ApiError;
use super::extract::{read_body, ApiQuery};
use super::wire::*;
use super::{parse_id, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/inbound/email", post(receive_email))
        .route("/inbound/quarantine", get(list_quarantine))
        .route("/inbound/quarantine/{id}/reprocess", post(reprocess))
}

/// One raw RFC 5322 message (`Content-Type: message/rfc822`), handled exactly as
/// the SMTP listener handles it. 200 for every message stored, whatever the
/// outcome (a `rejected` one waits in quarantine); 4xx only when nothing was stored.
#[utoipa::path(post, path = "/api/v1/inbound/email", tag = "inbound",
    request_body(content = String, content_type = "message/rfc822", description = "the raw message"),
    responses((status = 200, body = IntakeResultJson), (status = 400, body = ErrorJson), (status = 413, body = ErrorJson)))]
pub async fn receive_email(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<IntakeResultJson>, ApiError> {
    let raw = read_body(request, &state).await?;
    let limit = state.engine.config().max_body_bytes;
    if raw.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the message is larger than {limit} bytes"),
        ));
    }
    if !looks_like_a_message(&raw) {
        return Err(ApiError::bad_request(
            "not_a_message",
            "body",
            "is not an RFC 5322 message (it must start with a header line)",
        ));
    }
    let mail = InboundMail {
        raw: raw.to_vec(),
        envelope_from: None,
        envelope_to: vec![],
    };
    let result = state.run(move |engine| engine.ingest(mail)).await?;
    Ok(Json(result.into()))
}

/// Mail that could not be interpreted, newest first; kept raw, never dropped.
#[utoipa::path(get, path = "/api/v1/inbound/quarantine", tag = "inbound", params(PageQuery),
    responses((status = 200, body = ListJson<QuarantinedMailJson>), (status = 400, body = ErrorJson)))]
pub async fn list_quarantine(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListJson<QuarantinedMailJson>>, ApiError> {
    let list = state
        .run(move |engine| {
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.quarantine(request)?;
            ListJson::from_page(page, |mail| Ok(mail.into()))
        })
        .await?;
    Ok(Json(list))
}

/// Interprets a quarantined message again; it leaves the quarantine unless it
/// is rejected once more.
#[utoipa::path(post, path = "/api/v1/inbound/quarantine/{id}/reprocess", tag = "inbound",
    responses((status = 200, body = IntakeResultJson), (status = 404, body = ErrorJson)))]
pub async fn reprocess(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IntakeResultJson>, ApiError> {
    let id: QuarantineId = parse_id(&id, "quarantined mail", None)?;
    let result = state
        .run(move |engine| engine.reprocess_quarantined(id))
        .await?;
    Ok(Json(result.into()))
}

/// A message starts with a header field (`Name: value`, RFC 5322 2.2). Anything
/// else is not mail at all and is refused before it is stored; broken mail that
/// does start like one is stored and, if need be, quarantined.
fn looks_like_a_message(raw: &[u8]) -> bool {
    let first_line = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    match first_line.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => first_line[..colon]
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b':'),
        _ => false,
    }
}
