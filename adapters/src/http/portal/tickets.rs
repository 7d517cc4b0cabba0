//! The ticket pages: the list (own, the company's for managers, the customers' for a
//! reseller), a new ticket ("Ticket einreichen"), a ticket's page with its history
//! and reply form, "Wieder öffnen" on a done ticket, and its attachments.

use axum::extract::multipart::Multipart;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use kontor_engine::ids::AttachmentId;
use kontor_engine::model::{Locale, RecordRef, Ticket, TicketStatus};
use kontor_engine::ops::PageRequest;
use kontor_engine::portal::{PortalMessage, Viewer};

use super::view::{self, HistoryContext};
use super::{check_post, download, render, see_other, PortalError, PostedForm, Session};
use crate::http::error::ApiError;
use crate::http::AppState;

/// Tickets a page lists at once.
pub const PER_PAGE: u32 = 25;

/// The list's query: `?status=&page=`.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

/// `GET /portal/tickets`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let viewer = session.viewer;
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(TicketStatus::parse);
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let listed = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let request = PageRequest::new(Some(page), Some(PER_PAGE))?;
                engine.portal_tickets(&viewer, status, request)
            })
            .await
    };
    let tickets = match listed {
        Ok(tickets) => tickets,
        Err(error) => return PortalError::from(error).respond(&state, Some(&viewer)),
    };
    let content = ticket_list_data(&state, &viewer, &tickets, status);
    let title = match viewer.locale {
        Locale::De => "Tickets",
        Locale::En => "Tickets",
    };
    render(
        &state,
        &viewer,
        StatusCode::OK,
        "tickets",
        title,
        "tickets",
        content,
    )
}

/// The list page's data; public for the render benchmark.
pub fn ticket_list_data(
    state: &AppState,
    viewer: &Viewer,
    tickets: &kontor_engine::Page<Ticket>,
    status: Option<TicketStatus>,
) -> Value {
    let locale = viewer.locale;
    let timezone = state.settings.portal.timezone;
    let items: Vec<Value> = tickets
        .items
        .iter()
        .map(|ticket| {
            json!({
                "number": ticket.number,
                "url": format!("/portal/tickets/{}", ticket.number),
                "subject": ticket.subject,
                "status": ticket.status.display_name(locale),
                "status_code": ticket.status.as_str(),
                "updated": view::time(ticket.updated_at, locale, timezone),
                "updated_iso": view::iso(ticket.updated_at),
            })
        })
        .collect();
    let statuses: Vec<Value> = TicketStatus::ALL
        .iter()
        .map(|s| {
            json!({
                "value": s.as_str(),
                "name": s.display_name(locale),
                "selected": Some(*s) == status,
            })
        })
        .collect();
    let query = status
        .map(|s| format!("status={}", s.as_str()))
        .unwrap_or_default();
    json!({
        "items": items,
        "statuses": statuses,
        "filtered": status.is_some(),
        "pager": view::pager("/portal/tickets", &query, tickets.page, tickets.per_page, tickets.total),
        "can_create": viewer.whole_portal(),
    })
}

/// `GET /portal/tickets/new`.
pub async fn new_form(State(state): State<AppState>, session: Session) -> Response {
    new_form_page(&state, &session.viewer, StatusCode::OK, json!({}))
}

fn new_form_page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    content: Value,
) -> Response {
    if !viewer.whole_portal() {
        return PortalError::NoSession.respond(state, Some(viewer));
    }
    let title = match viewer.locale {
        Locale::De => "Neues Ticket",
        Locale::En => "New ticket",
    };
    render(
        state,
        viewer,
        status,
        "ticket_new",
        title,
        "tickets",
        content,
    )
}

/// `POST /portal/tickets`: "Ticket einreichen".
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let viewer = session.viewer;
    let form = match read_form(multipart).await {
        Ok(form) => form,
        Err(error) => return error.respond(&state, Some(&viewer)),
    };
    if let Err(error) = check_post(&state, &headers, &viewer, form.field("csrf")) {
        return error.respond(&state, Some(&viewer));
    }
    let subject = form.field("subject").unwrap_or("").to_string();
    let description = form.field("description").unwrap_or("").to_string();
    let created = {
        let viewer = viewer.clone();
        let subject = subject.clone();
        let message = PortalMessage {
            body: description.clone(),
            attachments: form.files,
        };
        state
            .run(move |engine| engine.portal_create_ticket(&viewer, &subject, message))
            .await
    };
    match created {
        Ok(ticket) => see_other(&format!("/portal/tickets/{}", ticket.number)),
        Err(error) if error.status == StatusCode::BAD_REQUEST => new_form_page(
            &state,
            &viewer,
            StatusCode::BAD_REQUEST,
            json!({
                "errors": form_errors(&error, &[("subject", "subject"), ("body", "description")]),
                "subject_error": error.fields.contains_key("subject"),
                "description_error": error.fields.contains_key("body"),
                "subject": subject,
                "description": description,
            }),
        ),
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

/// The fields a refused form names, as the error summary lists them: which input
/// (by id) and the engine's reason.
pub fn form_errors(error: &ApiError, inputs: &[(&str, &str)]) -> Vec<Value> {
    error
        .fields
        .iter()
        .map(|(field, why)| {
            let input = inputs
                .iter()
                .find(|(engine_field, _)| engine_field == field)
                .map(|(_, input)| *input)
                .unwrap_or(field.as_str());
            json!({"field": input, "code": why})
        })
        .collect()
}

pub async fn read_form(
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<PostedForm, PortalError> {
    match multipart {
        Ok(multipart) => PostedForm::read(multipart).await,
        Err(rejection) => Err(PortalError::Refused(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_form",
            rejection.body_text(),
        ))),
    }
}

/// `GET /portal/tickets/{number}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Path(number): Path<String>,
) -> Response {
    let Ok(number) = number.parse::<u64>() else {
        return PortalError::NotFound.respond(&state, Some(&session.viewer));
    };
    ticket_page(&state, &session.viewer, number, StatusCode::OK, json!({})).await
}

/// A ticket's page, with `extra` (a refused reply's errors and text).
pub async fn ticket_page(
    state: &AppState,
    viewer: &Viewer,
    number: u64,
    status: StatusCode,
    extra: Value,
) -> Response {
    let loaded = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let ticket = engine.portal_ticket(&viewer, number)?;
                let page = engine.portal_record_page(&viewer, RecordRef::ticket(ticket.id))?;
                let names = engine.portal_staff_names(&page.entries)?;
                Ok((ticket, page, names))
            })
            .await
    };
    let (ticket, page, names) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return PortalError::from(error).respond(state, Some(viewer)),
    };
    let content = ticket_page_data(state, viewer, &ticket, &page, &names, extra);
    let title = format!(
        "{} {}",
        number_label(viewer.locale, ticket.number),
        ticket.subject
    );
    render(state, viewer, status, "record", &title, "tickets", content)
}

fn number_label(locale: Locale, number: u64) -> String {
    match locale {
        Locale::De => format!("Ticket {number}:"),
        Locale::En => format!("Ticket {number}:"),
    }
}

/// A ticket page's data; public for the render benchmark.
pub fn ticket_page_data(
    state: &AppState,
    viewer: &Viewer,
    ticket: &Ticket,
    page: &kontor_engine::portal::RecordPage,
    names: &std::collections::BTreeMap<kontor_engine::ids::StaffId, String>,
    extra: Value,
) -> Value {
    let locale = viewer.locale;
    let timezone = state.settings.portal.timezone;
    let url = format!("/portal/tickets/{}", ticket.number);
    let entries = view::history(
        &page.entries,
        &HistoryContext {
            staff_names: names,
            attachments: &page.attachments,
            record_url: &url,
            locale,
            timezone,
        },
    );
    let mut content = json!({
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject,
            "status": ticket.status.display_name(locale),
            "status_code": ticket.status.as_str(),
            "created": view::time(ticket.created_at, locale, timezone),
            "updated": view::time(ticket.updated_at, locale, timezone),
        },
        "heading": ticket.subject,
        "updated": view::time(ticket.updated_at, locale, timezone),
        "assignee": page.assignee,
        "entries": entries,
        "reply_action": format!("{url}/messages"),
        "reopen_action": (ticket.status == TicketStatus::Done).then(|| format!("{url}/reopen")),
        "back_url": "/portal/tickets",
    });
    if let (Value::Object(content), Value::Object(extra)) = (&mut content, extra) {
        content.extend(extra);
    }
    content
}

/// `POST /portal/tickets/{number}/messages`: "Senden".
pub async fn reply(
    State(state): State<AppState>,
    session: Session,
    Path(number): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let viewer = session.viewer;
    let Ok(number) = number.parse::<u64>() else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let form = match read_form(multipart).await {
        Ok(form) => form,
        Err(error) => return error.respond(&state, Some(&viewer)),
    };
    if let Err(error) = check_post(&state, &headers, &viewer, form.field("csrf")) {
        return error.respond(&state, Some(&viewer));
    }
    let body = form.field("message").unwrap_or("").to_string();
    let sent = {
        let viewer = viewer.clone();
        let message = PortalMessage {
            body: body.clone(),
            attachments: form.files,
        };
        state
            .run(move |engine| {
                let ticket = engine.portal_ticket(&viewer, number)?;
                engine.portal_reply(&viewer, RecordRef::ticket(ticket.id), message)
            })
            .await
    };
    match sent {
        Ok(_) => see_other(&format!("/portal/tickets/{number}#reply")),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            ticket_page(
                &state,
                &viewer,
                number,
                StatusCode::BAD_REQUEST,
                json!({"reply_error": true, "reply_text": body}),
            )
            .await
        }
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

/// A form that carries only the session's token.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /portal/tickets/{number}/reopen`: "Wieder öffnen".
pub async fn reopen(
    State(state): State<AppState>,
    session: Session,
    Path(number): Path<String>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let viewer = session.viewer;
    let token = form.ok().map(|Form(form)| form.csrf);
    if let Err(error) = check_post(&state, &headers, &viewer, token.as_deref()) {
        return error.respond(&state, Some(&viewer));
    }
    let Ok(number) = number.parse::<u64>() else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let reopened = {
        let viewer = viewer.clone();
        state
            .run(move |engine| engine.portal_reopen(&viewer, number))
            .await
    };
    match reopened {
        Ok(ticket) => see_other(&format!("/portal/tickets/{}", ticket.number)),
        // Reopened already (a second click): the page shows how it is now.
        Err(error) if error.status == StatusCode::CONFLICT => {
            see_other(&format!("/portal/tickets/{number}"))
        }
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

/// `GET /portal/tickets/{number}/attachments/{id}`.
pub async fn attachment(
    State(state): State<AppState>,
    session: Session,
    Path((number, attachment)): Path<(String, String)>,
) -> Response {
    let viewer = session.viewer;
    let (Ok(number), Ok(attachment)) = (number.parse::<u64>(), attachment.parse::<AttachmentId>())
    else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let found = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let ticket = engine.portal_ticket(&viewer, number)?;
                engine.portal_attachment(&viewer, RecordRef::ticket(ticket.id), attachment)
            })
            .await
    };
    match found {
        Ok((meta, bytes)) => download(&meta.filename, &meta.content_type, bytes, false),
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}
