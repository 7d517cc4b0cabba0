//! The customer pages' templates (`templates/pages/`), compiled and test-rendered at
//! start, and the headers every page carries. Words live in the templates, one file
//! per page and locale (`<page>.<locale>.hbs`), around per-locale partials
//! (`partials/<name>_<locale>.hbs`); Rust hands them data only.

use std::path::{Path, PathBuf};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{json, Value};

use kontor_engine::model::Locale;
use kontor_engine::notify::templates::{broken, read};
use kontor_engine::notify::TemplateError;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "kontor_session";

/// Every page, in both locales.
const PAGES: [&str; 14] = [
    "login",
    "overview",
    "tickets",
    "ticket_new",
    "record",
    "documents",
    "quotes",
    "orders",
    "invoices",
    "subscriptions",
    "error",
    "expired",
    "message",
    "login_sent",
];

/// The partials, in both locales.
const PARTIALS: [&str; 4] = ["layout", "history", "reply", "pager"];

/// Files served under `/portal/assets/`: the stylesheet, the signature pad, and
/// whatever an operator adds (a logo).
const ASSET_TYPES: [(&str, &str); 6] = [
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("jpg", "image/jpeg"),
    ("ico", "image/x-icon"),
];

/// The page templates and assets, compiled and checked at start-up.
pub struct Pages {
    registry: Handlebars<'static>,
    assets_dir: PathBuf,
}

impl Pages {
    /// Loads `<templates_dir>/pages/<page>.<locale>.hbs` and the partials; a file
    /// that is missing or does not render stops the start with its name.
    pub fn load(templates_dir: &Path) -> Result<Self, TemplateError> {
        let dir = templates_dir.join("pages");
        let mut registry = Handlebars::new();
        for partial in PARTIALS {
            for locale in [Locale::De, Locale::En] {
                let path = dir
                    .join("partials")
                    .join(format!("{partial}_{}.hbs", locale.as_str()));
                registry
                    .register_partial(&format!("{partial}_{}", locale.as_str()), read(&path)?)
                    .map_err(|error| broken(&path, error))?;
            }
        }
        for page in PAGES {
            for locale in [Locale::De, Locale::En] {
                let path = dir.join(format!("{page}.{}.hbs", locale.as_str()));
                registry
                    .register_template_string(&name(page, locale), read(&path)?)
                    .map_err(|error| broken(&path, error))?;
                registry
                    .render(&name(page, locale), &json!({"entries": []}))
                    .map_err(|error| broken(&path, error))?;
            }
        }
        let assets_dir = dir.join("assets");
        for required in ["portal.css", "sign.js"] {
            read(&assets_dir.join(required))?;
        }
        Ok(Pages {
            registry,
            assets_dir,
        })
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
                let mut response = (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>",
                )
                    .into_response();
                page_headers(response.headers_mut());
                response
            }
        }
    }

    /// A file of `pages/assets/`; `None` for anything else (no path may leave it).
    pub fn asset(&self, file: &str) -> Option<(&'static str, Vec<u8>)> {
        let (stem, extension) = file.rsplit_once('.')?;
        let valid = !stem.is_empty()
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return None;
        }
        let content_type = ASSET_TYPES
            .iter()
            .find(|(ext, _)| *ext == extension)
            .map(|(_, content_type)| *content_type)?;
        let bytes = std::fs::read(self.assets_dir.join(file)).ok()?;
        Some((content_type, bytes))
    }
}

/// The headers every customer page and link answer carries: no referrer (the address
/// may have held a token), no caching, and a CSP that allows nothing from another
/// host, no inline script and no framing.
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
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
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

fn name(page: &str, locale: Locale) -> String {
    format!("{page}.{}", locale.as_str())
}
