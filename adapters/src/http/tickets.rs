//! `/tickets`, their history, and `/attachments`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};

use kontor_engine::ids::{AttachmentId, CompanyId, ContactId, StaffId, TicketId};
use kontor_engine::model::{Channel, RecordRef, TicketStatus, Visibility};
use kontor_engine::ops::tickets::{NewTicket, RequesterInput, TicketFilter};
use kontor_engine::ops::PageRequest;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::wire::*;
use super::{parse_id, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tickets", post(create_ticket).get(list_tickets))
        .route("/tickets/{id}", get(get_ticket))
        .route("/tickets/{id}/messages", post(post_message))
        .route("/tickets/{id}/status", post(set_status))
        .route("/tickets/{id}/assign", post(assign))
        .route("/tickets/{id}/time-entries", post(add_time_entry))
        .route("/tickets/{id}/history", get(history))
        .route("/attachments/{id}", get(attachment))
}

/// Opens a ticket for a contact (`contact_id`) or an address (`requester_email`).
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", request_body = NewTicketJson,
    responses((status = 201, body = TicketJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 413, body = ErrorJson)))]
pub async fn create_ticket(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewTicketJson>,
) -> Result<(StatusCode, Json<TicketJson>), ApiError> {
    let requester = match (&body.contact_id, &body.requester_email) {
        (Some(contact), None) => {
            RequesterInput::Contact(parse_id(contact, "contact", Some("contact_id"))?)
        }
        (None, Some(email)) => RequesterInput::Email {
            email: email.clone(),
            name: body.requester_name.clone(),
        },
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid",
                "requester_email",
                "give either contact_id or requester_email, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing",
                "contact_id",
                "contact_id or requester_email is required",
            )
            .with_field(
                "requester_email",
                "contact_id or requester_email is required",
            ))
        }
    };
    let assignee_id = body
        .assignee_id
        .as_deref()
        .map(|id| parse_id::<StaffId>(id, "staff", Some("assignee_id")))
        .transpose()?;
    let new = NewTicket {
        subject: body.subject,
        body: body.body,
        requester,
        assignee_id,
        channel: Channel::Api,
        attachments: vec![],
        company_id: None,
        origin: None,
        notify: body.notify.unwrap_or(true),
    };
    let ticket = state
        .run(move |engine| {
            let ticket = engine.create_ticket(new)?;
            Ok(TicketJson::new(engine, ticket))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Tickets, newest first, filtered by status, company and requester contact.
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(TicketListQuery),
    responses((status = 200, body = ListJson<TicketJson>), (status = 400, body = ErrorJson)))]
pub async fn list_tickets(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TicketListQuery>,
) -> Result<Json<ListJson<TicketJson>>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(TicketStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid",
                "status",
                "must be one of new, backlog, waiting_on_customer, in_progress, done",
            )
        })?),
    };
    // An id that cannot exist matches nothing: an empty list, as for an unknown id.
    let company_id = query
        .company_id
        .as_deref()
        .map(|id| id.parse::<CompanyId>().unwrap_or(CompanyId(0)));
    let contact_id = query
        .contact_id
        .as_deref()
        .map(|id| id.parse::<ContactId>().unwrap_or(ContactId(0)));
    let filter = TicketFilter {
        status,
        company_id,
        contact_id,
    };
    let list = state
        .run(move |engine| {
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.list_tickets(&filter, request)?;
            ListJson::from_page(page, |ticket| Ok(TicketJson::new(engine, ticket)))
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets",
    responses((status = 200, body = TicketJson), (status = 404, body = ErrorJson)))]
pub async fn get_ticket(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TicketJson>, ApiError> {
    let id: TicketId = parse_id(&id, "ticket", None)?;
    let ticket = state
        .run(move |engine| {
            engine
                .ticket(id)
                .map(|ticket| TicketJson::new(engine, ticket))
        })
        .await?;
    Ok(Json(ticket))
}

/// A staff message; `public` ones are for the customer, `internal` ones for staff.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "tickets", request_body = NewMessageJson,
    responses((status = 201, body = HistoryItemJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 413, body = ErrorJson)))]
pub async fn post_message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewMessageJson>,
) -> Result<(StatusCode, Json<HistoryItemJson>), ApiError> {
    let id: TicketId = parse_id(&id, "ticket", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let visibility = match body.visibility {
        VisibilityJson::Public => Visibility::Public,
        VisibilityJson::Internal => Visibility::Internal,
    };
    let item = state
        .run(move |engine| {
            let entry = engine.post_staff_message(id, staff_id, &body.body, visibility)?;
            HistoryItemJson::new(engine, entry)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Any status but `new` (409 `illegal_transition`).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/status", tag = "tickets", request_body = SetStatusJson,
    responses((status = 200, body = TicketJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn set_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetStatusJson>,
) -> Result<Json<TicketJson>, ApiError> {
    let id: TicketId = parse_id(&id, "ticket", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let status: TicketStatus = body.status.into();
    let ticket = state
        .run(move |engine| {
            engine
                .set_ticket_status(id, status, staff_id)
                .map(|ticket| TicketJson::new(engine, ticket))
        })
        .await?;
    Ok(Json(ticket))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/assign", tag = "tickets", request_body = AssignJson,
    responses((status = 200, body = TicketJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson)))]
pub async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignJson>,
) -> Result<Json<TicketJson>, ApiError> {
    let id: TicketId = parse_id(&id, "ticket", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let ticket = state
        .run(move |engine| {
            engine
                .assign_ticket(id, staff_id)
                .map(|ticket| TicketJson::new(engine, ticket))
        })
        .await?;
    Ok(Json(ticket))
}

/// Books staff time (1 to 1440 minutes) on a ticket; time entries are internal.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/time-entries", tag = "tickets", request_body = NewTimeEntryJson,
    responses((status = 201, body = HistoryItemJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson)))]
pub async fn add_time_entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTimeEntryJson>,
) -> Result<(StatusCode, Json<HistoryItemJson>), ApiError> {
    let id: TicketId = parse_id(&id, "ticket", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let item = state
        .run(move |engine| {
            let entry = engine.add_time_entry(id, staff_id, body.minutes, &body.note, body.date)?;
            HistoryItemJson::new(engine, entry)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// The whole history, oldest first: messages, events and time entries.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/history", tag = "tickets", params(PageQuery),
    responses((status = 200, body = ListJson<HistoryItemJson>), (status = 404, body = ErrorJson)))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListJson<HistoryItemJson>>, ApiError> {
    let id: TicketId = parse_id(&id, "ticket", None)?;
    let list = state
        .run(move |engine| {
            engine.ticket(id)?;
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.history(RecordRef::ticket(id), request)?;
            ListJson::from_page(page, |entry| HistoryItemJson::new(engine, entry))
        })
        .await?;
    Ok(Json(list))
}

/// The bytes of an attachment, with its type and file name.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "tickets",
    responses((status = 200, description = "the attachment's bytes"), (status = 404, body = ErrorJson)))]
pub async fn attachment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: AttachmentId = parse_id(&id, "attachment", None)?;
    let (meta, bytes) = state.run(move |engine| engine.attachment_bytes(id)).await?;
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Served as a download, never rendered, so stored HTML cannot run in our origin.
    let safe_name: String = meta
        .filename
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\' || *c == ' ')
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
