//! The customer portal (CONTRACT.md section 5): server-rendered pages in the contact's
//! locale, a server-side session per opened link, and POSTs that each carry the
//! session's token and come from our own origin. Every record a page shows came
//! through the engine's portal views, which already applied `access::decide`; a
//! record the session may not see is the same 404 as one that does not exist.
//!
//! - `login.rs`: magic links (`/l/…`), the login form, logout.
//! - `tickets.rs`: the ticket list, a new ticket, a ticket's page, reply, reopen.
//! - `records.rs`: documents, quotes, orders, invoices, subscriptions: lists, pages,
//!   replies, attachments, PDFs.
//! - `signing.rs`: signing a document, accepting or declining a quote.
//! - `view.rs`: what pages show of engine values (times in the vendor's zone,
//!   history entries, money).

mod login;
mod pdfs;
mod records;
mod signing;
mod tickets;
pub mod view;

use std::collections::BTreeMap;

use axum::extract::multipart::Multipart;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use kontor_engine::model::Locale;
use kontor_engine::ops::attachments::NewAttachment;
use kontor_engine::portal::Viewer;

use super::error::ApiError;
use super::pages::{page_headers, session_cookie};
use super::AppState;

/// What the portal's pages need from the configuration.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    pub vendor_name: String,
    pub logo_url: String,
    pub imprint_url: String,
    pub privacy_url: String,
    pub timezone: chrono_tz::Tz,
    /// `scheme://host[:port]` of `public_url`: the origin our forms post from.
    pub public_origin: String,
    /// Cookies get `Secure` when the portal is served over https.
    pub secure_cookies: bool,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            vendor_name: "Support".into(),
            logo_url: String::new(),
            imprint_url: String::new(),
            privacy_url: String::new(),
            timezone: chrono_tz::Europe::Berlin,
            public_origin: String::new(),
            secure_cookies: false,
        }
    }
}

impl PortalSettings {
    /// From `[portal]` and `public_url`; a time zone that does not parse was refused
    /// when the config was loaded.
    pub fn new(
        vendor_name: &str,
        logo_url: &str,
        imprint_url: &str,
        privacy_url: &str,
        timezone: &str,
        public_url: &str,
    ) -> Self {
        PortalSettings {
            vendor_name: vendor_name.to_string(),
            logo_url: logo_url.to_string(),
            imprint_url: imprint_url.to_string(),
            privacy_url: privacy_url.to_string(),
            timezone: timezone.parse().unwrap_or(chrono_tz::Europe::Berlin),
            public_origin: origin_of(public_url),
            secure_cookies: public_url.starts_with("https://"),
        }
    }
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split('/').next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// The portal's routes (the customer's side of the HTTP edge).
pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/l/fresh", post_only(login::fresh_link))
        .route("/l/{token}", get(login::open_link))
        .route("/portal", get(overview))
        .route("/portal/", get(overview))
        .route(
            "/portal/login",
            get(login::login_page).post(login::request_link),
        )
        .route("/portal/logout", post_only(login::logout))
        .route("/portal/assets/{file}", get(asset))
        .route("/portal/tickets", get(tickets::list).post(tickets::create))
        .route("/portal/tickets/new", get(tickets::new_form))
        .route("/portal/tickets/{number}", get(tickets::page))
        .route(
            "/portal/tickets/{number}/messages",
            post_only(tickets::reply),
        )
        .route(
            "/portal/tickets/{number}/reopen",
            post_only(tickets::reopen),
        )
        .route(
            "/portal/tickets/{number}/attachments/{attachment}",
            get(tickets::attachment),
        )
        .route(
            "/portal/documents/{id}/draft",
            post_only(signing::save_draft),
        )
        .route("/portal/documents/{id}/sign", post_only(signing::sign))
        .route(
            "/portal/quotes/{id}/accept",
            post_only(signing::accept_quote),
        )
        .route(
            "/portal/quotes/{id}/decline",
            post_only(signing::decline_quote),
        )
        .route(
            "/portal/documents/{id}/signed.pdf",
            get(pdfs::signed_document_pdf),
        )
        .route(
            "/portal/documents/{id}/certificate.pdf",
            get(pdfs::certificate_pdf),
        )
        .route("/portal/invoices/{id}/invoice.pdf", get(pdfs::invoice_pdf));
    for kinds in records::KINDS {
        router = router
            .route(&format!("/portal/{kinds}"), get(records::list))
            .route(&format!("/portal/{kinds}/{{id}}"), get(records::page))
            .route(
                &format!("/portal/{kinds}/{{id}}/messages"),
                post_only(records::reply),
            )
            .route(
                &format!("/portal/{kinds}/{{id}}/attachments/{{attachment}}"),
                get(records::attachment),
            );
    }
    router.route("/portal/{*rest}", get(unknown_page).post(unknown_page))
}

/// A route for POSTs only; its GET (and HEAD) is the HTML 404 of any unknown page,
/// never the bare 405 a router gives.
fn post_only<H, T>(handler: H) -> axum::routing::MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    post(handler).get(unknown_page)
}

/// A page's failure, answered as an HTML page that offers the way back.
#[derive(Debug)]
pub enum PortalError {
    /// No session, or one that ended: to the login page.
    NoSession,
    /// Missing, or not the session's to see.
    NotFound,
    /// A POST without the session's token or from another origin.
    Forbidden,
    /// The engine refused; the page shows its message.
    Refused(ApiError),
}

impl From<ApiError> for PortalError {
    fn from(error: ApiError) -> Self {
        if error.status == StatusCode::NOT_FOUND {
            PortalError::NotFound
        } else {
            PortalError::Refused(error)
        }
    }
}

impl PortalError {
    pub fn respond(self, state: &AppState, viewer: Option<&Viewer>) -> Response {
        let locale = viewer
            .map(|viewer| viewer.locale)
            .unwrap_or(state.engine.config().default_locale);
        let (status, kind) = match &self {
            PortalError::NoSession => return Redirect::to("/portal/login").into_response(),
            PortalError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            PortalError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            PortalError::Refused(error) => (
                error.status,
                match error.status.as_u16() {
                    409 => "conflict",
                    413 => "too_large",
                    500..=599 => "unavailable",
                    _ => "refused",
                },
            ),
        };
        let mut data = layout(state, viewer, "");
        data.insert(kind.into(), json!(true));
        data.insert("status".into(), json!(status.as_u16()));
        if let PortalError::Refused(error) = &self {
            if !error.status.is_server_error() {
                data.insert("message".into(), json!(error.message));
            }
        }
        state
            .pages
            .respond(status, "error", locale, Value::Object(data))
    }
}

/// A session's viewer and the secret its cookie holds.
pub struct Session {
    pub viewer: Viewer,
    pub secret: String,
}

/// The session of a request, or `NoSession`.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, PortalError> {
    let Some(secret) = session_cookie(headers) else {
        return Err(PortalError::NoSession);
    };
    let lookup = secret.clone();
    match state
        .run(move |engine| engine.portal_viewer(&lookup))
        .await?
    {
        Some(viewer) => Ok(Session { viewer, secret }),
        None => Err(PortalError::NoSession),
    }
}

/// A page for a session: without one, the visitor is sent to log in.
impl axum::extract::FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        session(state, &parts.headers)
            .await
            .map_err(|error| error.respond(state, None))
    }
}

/// The session of a request, if it has one.
pub async fn optional_session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    session(state, headers).await.ok()
}

/// Refuses a POST from another origin: a browser names the page's origin in `Origin`
/// (and `Sec-Fetch-Site`); a request that names another was made by another site.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), PortalError> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let origin = origin.to_ascii_lowercase();
        // Our pages' `Referrer-Policy: no-referrer` makes browsers send `Origin: null`
        // on form posts; then the browser's own `Sec-Fetch-Site` tells where it came
        // from, and without one nothing does.
        if origin == "null" {
            return if fetch_site == "same-origin" {
                Ok(())
            } else {
                Err(PortalError::Forbidden)
            };
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|host| host.to_ascii_lowercase());
        let ours = origin == state.settings.portal.public_origin
            || host.is_some_and(|host| {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            });
        if !ours {
            return Err(PortalError::Forbidden);
        }
    }
    if fetch_site == "cross-site" || fetch_site == "same-site" {
        return Err(PortalError::Forbidden);
    }
    Ok(())
}

/// Checks a POST of a session: our origin, and the session's token.
pub fn check_post(
    state: &AppState,
    headers: &HeaderMap,
    viewer: &Viewer,
    token: Option<&str>,
) -> Result<(), PortalError> {
    check_origin(state, headers)?;
    let expected = viewer.session.csrf.as_bytes();
    let given = token.unwrap_or("").as_bytes();
    // Constant time: the token must not leak byte by byte.
    let same = expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(PortalError::Forbidden)
    }
}

/// A form posted as `multipart/form-data`: its text fields and its files.
#[derive(Debug, Default)]
pub struct PostedForm {
    pub fields: BTreeMap<String, String>,
    pub files: Vec<NewAttachment>,
}

impl PostedForm {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// Reads a multipart body; a broken one is a refused form (400), not a crash.
    pub async fn read(mut multipart: Multipart) -> Result<Self, PortalError> {
        let mut form = PostedForm::default();
        let broken = |error: axum::extract::multipart::MultipartError| {
            PortalError::Refused(ApiError::new(
                error.status(),
                "invalid_form",
                error.body_text(),
            ))
        };
        while let Some(field) = multipart.next_field().await.map_err(broken)? {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(str::to_string);
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = field.bytes().await.map_err(broken)?;
            match filename {
                Some(filename) if !filename.is_empty() => form.files.push(NewAttachment {
                    filename: clean_filename(&filename),
                    content_type,
                    bytes: bytes.to_vec(),
                }),
                // An empty file input still sends a part, without a name.
                Some(_) => {}
                None => {
                    form.fields
                        .insert(name, String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        Ok(form)
    }
}

/// The last path segment of an uploaded file's name, without control characters.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.trim().is_empty() {
        "attachment".into()
    } else {
        cleaned
    }
}

/// What the layout shows around every page: the vendor, the navigation by the
/// session's menus, the logout form with the session's token.
pub fn layout(state: &AppState, viewer: Option<&Viewer>, title: &str) -> Map<String, Value> {
    let portal = &state.settings.portal;
    let mut data = Map::new();
    data.insert("title".into(), json!(title));
    data.insert("vendor_name".into(), json!(portal.vendor_name));
    data.insert("logo_url".into(), json!(portal.logo_url));
    data.insert("imprint_url".into(), json!(portal.imprint_url));
    data.insert("privacy_url".into(), json!(portal.privacy_url));
    if let Some(viewer) = viewer {
        let menus = viewer.menus();
        data.insert(
            "viewer".into(),
            json!({
                "name": viewer.contact.as_ref().map(|c| c.name.clone()),
                "company": viewer.company.as_ref().map(|c| c.name.clone()),
            }),
        );
        data.insert("csrf".into(), json!(viewer.session.csrf));
        data.insert("whole_portal".into(), json!(viewer.whole_portal()));
        data.insert("record_only".into(), json!(!viewer.whole_portal()));
        data.insert(
            "menus".into(),
            json!({
                "quotes": menus.quotes,
                "orders": menus.orders,
                "invoices": menus.invoices,
                "subscriptions": menus.subscriptions,
            }),
        );
    }
    data
}

/// Renders `page` for a session.
pub fn render(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    page: &str,
    title: &str,
    nav: &str,
    content: Value,
) -> Response {
    let mut data = layout(state, Some(viewer), title);
    data.insert("nav".into(), json!(nav));
    if let Value::Object(content) = content {
        data.extend(content);
    }
    state
        .pages
        .respond(status, page, viewer.locale, Value::Object(data))
}

/// `303 See Other` to `location`, with the pages' headers.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    page_headers(response.headers_mut());
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `204 No Content` with the pages' headers (a draft saved by the page's script).
pub fn no_content() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    page_headers(response.headers_mut());
    response
}

/// The bytes of a file for download, never rendered inline: an attachment may be
/// HTML from anyone.
pub fn download(filename: &str, content_type: &str, bytes: Vec<u8>, inline: bool) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    page_headers(headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename=\"{safe}\"",
        if inline { "inline" } else { "attachment" }
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /portal`: the overview, with the menus the session's permissions give.
async fn overview(State(state): State<AppState>, session: Session) -> Response {
    let viewer = &session.viewer;
    let menus = viewer.menus();
    let content = json!({
        "reseller_hint": menus.reseller_hint,
        "reseller_name": viewer.reseller.as_ref().map(|c| c.name.clone()),
        "record_link": viewer.session.record.map(view::record_url_of),
    });
    let title = match viewer.locale {
        Locale::De => "Übersicht",
        Locale::En => "Overview",
    };
    render(
        &state,
        viewer,
        StatusCode::OK,
        "overview",
        title,
        "overview",
        content,
    )
}

/// `GET /portal/assets/{file}`.
async fn asset(State(state): State<AppState>, UrlPath(file): UrlPath<String>) -> Response {
    match state.pages.asset(&file) {
        Some((content_type, bytes)) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        None => PortalError::NotFound.respond(&state, None),
    }
}

/// Any other address under `/portal`: an HTML 404, never JSON.
async fn unknown_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = optional_session(&state, &headers).await;
    PortalError::NotFound.respond(&state, session.as_ref().map(|s| &s.viewer))
}
