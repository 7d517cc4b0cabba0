//! Getting in and out: `GET /l/{token}` opens a magic link into a session (303 to its
//! page, so the token leaves the address bar; 410 with a form for a fresh link when
//! expired; 403 when forged or revoked), the login form, and logout.
//!
//! Opening a link stores a session and nothing else: no token is used up, no record
//! changes, nothing is sent, so the mail scanners that open links do no harm.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use kontor_engine::model::Locale;
use kontor_engine::ops::links::LinkRefused;

use super::{check_origin, check_post, layout, optional_session, see_other, session, PortalError};
use crate::http::error::ApiError;
use crate::http::pages::SESSION_COOKIE;
use crate::http::AppState;

/// `GET /l/{token}`.
pub async fn open_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let default_locale = state.engine.config().default_locale;
    // Someone already logged in who opens a link from a mail keeps the whole portal.
    let current = optional_session(&state, &headers).await;
    let opened = {
        let token = token.clone();
        state
            .run(move |engine| {
                let outcome = engine.open_portal_link(&token);
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
    let (outcome, locale) = match opened {
        Ok(opened) => opened,
        Err(error) => return PortalError::from(error).respond(&state, None),
    };
    let locale = locale.unwrap_or(default_locale);
    match outcome {
        Ok(opened) => {
            let same_person = current.is_some_and(|current| {
                current.viewer.whole_portal()
                    && current.viewer.session.contact_id == opened.contact_id
            });
            if same_person {
                return see_other(&opened.location);
            }
            let max_age = (opened.expires_at - state.engine.clock().now())
                .num_seconds()
                .max(0);
            let mut response = see_other(&opened.location);
            set_cookie(&state, &mut response, &opened.secret, max_age);
            response
        }
        Err(LinkRefused::Expired(_)) => {
            let mut data = layout(&state, None, expired_title(locale));
            data.insert("token".into(), json!(token));
            state
                .pages
                .respond(StatusCode::GONE, "expired", locale, Value::Object(data))
        }
        Err(LinkRefused::Unavailable) => PortalError::Refused(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "try again in a moment",
        ))
        .respond(&state, None),
        Err(LinkRefused::Forged | LinkRefused::Revoked | LinkRefused::WrongScope) => {
            let mut data = layout(&state, None, "");
            data.insert("invalid_link".into(), json!(true));
            data.insert("status".into(), json!(403));
            state
                .pages
                .respond(StatusCode::FORBIDDEN, "error", locale, Value::Object(data))
        }
    }
}

fn set_cookie(state: &AppState, response: &mut Response, value: &str, max_age: i64) {
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if state.settings.portal.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
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
    headers: HeaderMap,
    form: Result<Form<FreshLinkForm>, FormRejection>,
) -> Response {
    if let Err(error) = check_origin(&state, &headers) {
        return error.respond(&state, None);
    }
    let locale = state.engine.config().default_locale;
    if let Ok(Form(form)) = form {
        let token = form.token;
        if let Err(error) = state
            .run(move |engine| engine.send_fresh_link(&token))
            .await
        {
            tracing::warn!(code = %error.code, "sending a fresh link failed");
        }
    }
    let mut data = layout(&state, None, "");
    data.insert("fresh_link".into(), json!(true));
    state
        .pages
        .respond(StatusCode::OK, "login_sent", locale, Value::Object(data))
}

/// `GET /portal/login`.
pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = optional_session(&state, &headers).await;
    if session.as_ref().is_some_and(|s| s.viewer.whole_portal()) {
        return see_other("/portal");
    }
    let locale = state.engine.config().default_locale;
    let locale = preferred_locale(&headers).unwrap_or(locale);
    let data = layout(&state, None, login_title(locale));
    state
        .pages
        .respond(StatusCode::OK, "login", locale, Value::Object(data))
}

fn login_title(locale: Locale) -> &'static str {
    match locale {
        Locale::De => "Anmelden",
        Locale::En => "Log in",
    }
}

/// The language the browser asks for first, if it is one of ours.
fn preferred_locale(headers: &HeaderMap) -> Option<Locale> {
    let accept = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    accept
        .split(',')
        .filter_map(|part| part.split(';').next())
        .map(|tag| tag.trim().to_ascii_lowercase())
        .find_map(|tag| Locale::parse(tag.split('-').next().unwrap_or("")))
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
}

/// `POST /portal/login`: a login link when the address has portal access (at most 5
/// an hour); the same answer either way.
pub async fn request_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if let Err(error) = check_origin(&state, &headers) {
        return error.respond(&state, None);
    }
    let locale = preferred_locale(&headers).unwrap_or(state.engine.config().default_locale);
    let email = form.map(|Form(form)| form.email).unwrap_or_default();
    let address = email.trim().to_string();
    if address.is_empty() {
        let mut data = layout(&state, None, login_title(locale));
        data.insert("missing_email".into(), json!(true));
        return state.pages.respond(
            StatusCode::BAD_REQUEST,
            "login",
            locale,
            Value::Object(data),
        );
    }
    {
        let address = address.clone();
        if let Err(error) = state
            .run(move |engine| engine.request_login_link(&address))
            .await
        {
            if error.status.is_server_error() {
                return PortalError::Refused(error).respond(&state, None);
            }
        }
    }
    let mut data = layout(&state, None, login_title(locale));
    data.insert("email".into(), json!(address));
    state
        .pages
        .respond(StatusCode::OK, "login_sent", locale, Value::Object(data))
}

/// The logout form.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /portal/logout`: ends the session and forgets the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let session = match session(&state, &headers).await {
        Ok(session) => session,
        Err(_) => return see_other("/portal/login"),
    };
    let token = form.ok().map(|Form(form)| form.csrf);
    if let Err(error) = check_post(&state, &headers, &session.viewer, token.as_deref()) {
        return error.respond(&state, Some(&session.viewer));
    }
    let secret = session.secret.clone();
    if let Err(error) = state
        .run(move |engine| engine.end_portal_session(&secret))
        .await
    {
        return PortalError::from(error).respond(&state, Some(&session.viewer));
    }
    let mut response = see_other("/portal/login");
    set_cookie(&state, &mut response, "", 0);
    response
}
