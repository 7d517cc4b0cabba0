//! The customer pages (CONTRACT.md section 5), rendered from `templates/pages/` in the
//! contact's locale. Until the portal issue lands, the ticket page is a read-only view
//! of the ticket and its public history. Every page is HTML-escaped by handlebars and
//! sent with `Referrer-Policy: no-referrer` and a restrictive CSP.

use std::path::Path;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{json, Value};

use kontor_engine::model::{EntryBody, Event, Locale};
use kontor_engine::notify::templates::{broken, read};
use kontor_engine::notify::TemplateError;
use kontor_engine::ops::links::TicketView;

use super::AppState;

/// The name of the session cookie an opened link sets.
pub const SESSION_COOKIE: &str = "kontor_session";

const PAGES: [&str; 3] = ["ticket", "expired", "message"];

/// The page templates, compiled and checked at start-up.
pub struct Pages {
    registry: Handlebars<'static>,
}

impl Pages {
    /// Loads `<templates_dir>/pages/<page>.<locale>.hbs` and `pages/partials/page.hbs`.
    pub fn load(templates_dir: &Path) -> Result<Self, TemplateError> {
        let dir = templates_dir.join("pages");
        let mut registry = Handlebars::new();
        let partial = dir.join("partials").join("page.hbs");
        registry
            .register_partial("page", read(&partial)?)
            .map_err(|error| broken(&partial, error))?;
        for page in PAGES {
            for locale in [Locale::De, Locale::En] {
                let path = dir.join(format!("{page}.{}.hbs", locale.as_str()));
                registry
                    .register_template_string(&name(page, locale), read(&path)?)
                    .map_err(|error| broken(&path, error))?;
                registry
                    .render(&name(page, locale), &json!({"entries": [], "ticket": {}}))
                    .map_err(|error| broken(&path, error))?;
            }
        }
        Ok(Pages { registry })
    }

    /// Renders a page as a response with the customer pages' headers.
    pub fn respond(&self, status: StatusCode, page: &str, locale: Locale, data: Value) -> Response {
        let mut data = data;
        if let Some(object) = data.as_object_mut() {
            object.insert("locale".into(), json!(locale.as_str()));
        }
        match self.registry.render(&name(page, locale), &data) {
            Ok(html) => {
                let mut response = (status, html).into_response();
                page_headers(response.headers_mut());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                response
            }
            Err(error) => {
                tracing::error!(%error, page, "rendering a page failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }

    /// A page with a title and one paragraph.
    pub fn message(&self, status: StatusCode, locale: Locale, title: &str, text: &str) -> Response {
        self.respond(
            status,
            "message",
            locale,
            json!({"title": title, "text": text}),
        )
    }
}

/// The headers every customer page and link answer carries: no referrer (the address
/// may have held a token), no caching, nothing but inline styles.
pub fn page_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
}

/// `GET /portal/tickets/{number}`: the ticket a link's session opens, read-only.
pub async fn ticket_page(
    State(state): State<AppState>,
    UrlPath(number): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let default_locale = state.engine.config().default_locale;
    let Some(cookie) = session_cookie(&headers) else {
        return no_session(&state, default_locale);
    };
    let Ok(number) = number.parse::<u64>() else {
        return not_found(&state, default_locale);
    };
    let result = state
        .run(move |engine| {
            let Some(claims) = engine.check_session(&cookie) else {
                return Ok(None);
            };
            engine.ticket_view(&claims, number).map(Some)
        })
        .await;
    match result {
        Ok(Some(view)) => {
            let locale = view.locale;
            state
                .pages
                .respond(StatusCode::OK, "ticket", locale, ticket_data(&view))
        }
        Ok(None) => no_session(&state, default_locale),
        Err(error) if error.status == StatusCode::NOT_FOUND => not_found(&state, default_locale),
        Err(error) if error.status == StatusCode::UNPROCESSABLE_ENTITY => {
            no_session(&state, default_locale)
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn ticket_data(view: &TicketView) -> Value {
    let locale = view.locale;
    let entries: Vec<Value> = view
        .entries
        .iter()
        .filter_map(|entry| {
            let at = entry.at.format("%Y-%m-%d %H:%M UTC").to_string();
            match &entry.body {
                EntryBody::Message { text, .. } => Some(json!({
                    "message": true,
                    "author": author_name(&entry.author),
                    "at": at,
                    "text": text,
                })),
                EntryBody::Event(Event::StatusChanged { from, to }) => Some(json!({
                    "status_changed": true,
                    "at": at,
                    "from": from.display_name(locale),
                    "to": to.display_name(locale),
                })),
                EntryBody::Event(Event::Reopened) => Some(json!({"reopened": true, "at": at})),
                _ => None,
            }
        })
        .collect();
    json!({
        "title": format!("{} {}", view.ticket.subject_tag(), view.ticket.subject),
        "ticket": {
            "number": view.ticket.number,
            "subject": view.ticket.subject,
            "subject_tag": view.ticket.subject_tag(),
            "status": view.ticket.status.display_name(locale),
        },
        "entries": entries,
    })
}

fn author_name(author: &kontor_engine::model::Author) -> String {
    match author {
        kontor_engine::model::Author::Contact { name, .. }
        | kontor_engine::model::Author::Staff { name, .. } => name.clone(),
        kontor_engine::model::Author::System => "System".into(),
    }
}

/// The value of our session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn no_session(state: &AppState, locale: Locale) -> Response {
    let (title, text) = match locale {
        Locale::De => (
            "Kein Zugang",
            "Bitte öffnen Sie den Link aus unserer E-Mail erneut.",
        ),
        Locale::En => ("No access", "Please open the link from our email again."),
    };
    state
        .pages
        .message(StatusCode::FORBIDDEN, locale, title, text)
}

fn not_found(state: &AppState, locale: Locale) -> Response {
    let (title, text) = match locale {
        Locale::De => ("Nicht gefunden", "Diese Seite gibt es nicht."),
        Locale::En => ("Not found", "There is no such page."),
    };
    state
        .pages
        .message(StatusCode::NOT_FOUND, locale, title, text)
}

fn name(page: &str, locale: Locale) -> String {
    format!("{page}.{}", locale.as_str())
}
