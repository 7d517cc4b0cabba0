//! The one error type at the HTTP edge: every failure becomes the contract's error
//! JSON. 5xx bodies stay opaque; their cause is logged here, once.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use kontor_engine::error::Unavailable;
use kontor_engine::EngineError;

use super::wire::{ErrorDetailJson, ErrorJson};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    /// Extra headers, e.g. `Retry-After` or `WWW-Authenticate`.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: BTreeMap::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>, why: impl Into<String>) -> Self {
        self.fields.insert(field.into(), why.into());
        self
    }

    pub fn bad_request(code: &str, field: &str, why: impl Into<String>) -> Self {
        let why = why.into();
        ApiError::new(StatusCode::BAD_REQUEST, code, format!("{field}: {why}"))
            .with_field(field, why)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} {id} not found"),
        )
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Invalid {
                code,
                message,
                fields,
            } => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: code.to_string(),
                message,
                fields,
                headers: Vec::new(),
            },
            EngineError::NotFound { what, id, field } => {
                let error = ApiError::not_found(what, &id);
                match field {
                    Some(field) => error.with_field(field, format!("no {what} {id}")),
                    None => error,
                }
            }
            EngineError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            EngineError::Taken {
                code,
                field,
                message,
            } => ApiError::new(StatusCode::CONFLICT, code, message.clone())
                .with_field(field, message),
            EngineError::Rule { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            EngineError::TooLarge { field, message } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
                    .with_field(field, "too large")
            }
            failure => match failure.unavailable() {
                Some(Unavailable::DiskFull) => {
                    tracing::error!(error = %failure, "write refused: disk full; answered 507");
                    ApiError::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "storage_full",
                        "the server's disk is full; nothing was stored, try again later",
                    )
                }
                Some(Unavailable::Stalled) => {
                    tracing::error!(error = %failure, "store stalled; answered 503");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "storage_unavailable",
                        "the server's storage is not responding; the write may or may not be stored",
                    )
                }
                _ => {
                    tracing::error!(error = %failure, "engine failure answered 500");
                    ApiError::internal()
                }
            },
        }
    }
}

/// Answers that axum makes itself (405 for a known path with another method, its
/// extractors' plain-text rejections) get the contract's error JSON too. Pages'
/// HTML errors and our own JSON pass untouched.
pub async fn bare_errors_as_json(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let customer_page = {
        let path = request.uri().path();
        path.starts_with("/portal") || path.starts_with("/l/")
    };
    let response = next.run(request).await;
    let status = response.status();
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .is_ok_and(|value| value.starts_with("text/plain")),
    };
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    if customer_page {
        // Customers never see JSON: a bare refusal (a POST to a page, say) is a page
        // that offers the way back.
        let mut page = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html lang=\"de\"><meta charset=\"utf-8\"><title>Nicht möglich / Not possible</title><link rel=\"stylesheet\" href=\"/portal/assets/portal.css\"><main><h1>Das geht so nicht / This is not possible</h1><p><a href=\"/portal\">Zur Übersicht / Overview</a> · <a href=\"/portal/login\">Anmelden / Log in</a></p></main></html>",
        )
            .into_response();
        super::pages::page_headers(page.headers_mut());
        return page;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
                .to_string();
            (
                "method_not_allowed",
                format!("this route does not take {method}; it takes {allowed}"),
            )
        }
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is too large".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text.clone()),
        _ if status.is_server_error() => ("internal", "internal error".to_string()),
        _ => ("bad_request", text.clone()),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let mut error = ApiError::new(status, code, message);
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            error.headers.push((name, value.clone()));
        }
    }
    error.into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorJson {
            error: ErrorDetailJson {
                code: self.code,
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
