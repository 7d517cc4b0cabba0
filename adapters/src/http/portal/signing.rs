//! Signing in the portal: a document's sign page (its fields, the "Nächste" guide,
//! the signature pad or a typed name, drafts kept per field, "Signieren"), and a
//! quote's "Akzeptieren und signieren" and "Ablehnen" dialogs. The engine checks
//! every required field again and binds the signature to the content's SHA-256 the
//! page showed; a refusal stores nothing and the page names what is missing.

use std::collections::BTreeMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};

use kontor_engine::model::{Locale, RecordKind, RecordRef};
use kontor_engine::records::document::{DocumentStatus, FieldType, SignInput};
use kontor_engine::records::quote::AcceptInput;
use kontor_engine::records::{Document, Quote, RecordType};

use super::records::record_page;
use super::view;
use super::{check_post, no_content, see_other, PortalError, Session};
use crate::http::AppState;

/// The prefix of a field's input name in the sign form, so that a field named like
/// one of the form's own inputs (`csrf`) cannot clash with it.
const FIELD_PREFIX: &str = "field.";

/// The sign page's part of a document's page.
pub fn document_data(document: &Document, locale: Locale, timezone: chrono_tz::Tz) -> Value {
    let url = view::record_url_of(document.head().record);
    let fields: Vec<Value> = document
        .fields
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let value = document
                .values
                .get(&field.name)
                .cloned()
                .unwrap_or_default();
            let filled = match field.field_type {
                FieldType::Checkbox => matches!(value.as_str(), "true" | "on" | "yes" | "1"),
                _ => !value.trim().is_empty(),
            };
            let drawn = value.starts_with("data:image/png;base64,");
            // A date is kept as the input gives it (ISO); people read it in their
            // own form, as every other date of the portal.
            let shown = match field.field_type {
                FieldType::Date => chrono::NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
                    .map(|day| view::date(day, locale))
                    .unwrap_or_else(|_| value.clone()),
                _ => value.clone(),
            };
            json!({
                "id": format!("field-{index}"),
                "name": format!("{FIELD_PREFIX}{}", field.name),
                "field_name": field.name,
                "label": field.label,
                "required": field.required,
                "value": if drawn { String::new() } else { value.clone() },
                "drawn": if drawn { value.clone() } else { String::new() },
                "shown": if drawn { String::new() } else { shown },
                "filled": filled,
                "checked": field.field_type == FieldType::Checkbox && filled,
                "text": field.field_type == FieldType::Text,
                "date": field.field_type == FieldType::Date,
                "checkbox": field.field_type == FieldType::Checkbox,
                "signature": field.field_type == FieldType::Signature,
            })
        })
        .collect();
    let all_filled = fields.iter().all(|field| {
        !field["required"].as_bool().unwrap_or(false) || field["filled"].as_bool().unwrap_or(false)
    });
    let signer = document.signer.as_ref();
    json!({
        "document": {
            "title": document.title,
            "status": document.status.display_name(locale),
            "body_html": document.body_html,
            "fields": fields,
            "all_filled": all_filled,
            "signable": document.status == DocumentStatus::Sent,
            "signed": document.status == DocumentStatus::Signed,
            "cancelled": document.status == DocumentStatus::Cancelled,
            "draft": document.status == DocumentStatus::Draft,
            "content_sha256": kontor_engine::signing::document_content_sha256(document),
            "sha256": document.sha256,
            "signed_at": document.signed_at.map(|at| view::time(at, locale, timezone)),
            "signer_name": signer.map(|s| s.name.clone()),
            "signer_email": signer.map(|s| s.email.clone()),
            "signer_ip": signer.map(|s| s.ip.clone()),
            "signer_user_agent": signer.map(|s| s.user_agent.clone()),
            "valid_until": document.valid_until.map(|d| view::date(d, locale)),
            "cancel_reason": document.cancel_reason,
            "sign_action": format!("{url}/sign"),
            "draft_action": format!("{url}/draft"),
            "signed_pdf": format!("{url}/signed.pdf"),
            "certificate_pdf": format!("{url}/certificate.pdf"),
        }
    })
}

/// The field values a sign form posted, by field name.
fn posted_values(form: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    form.iter()
        .filter_map(|(name, value)| {
            name.strip_prefix(FIELD_PREFIX)
                .map(|field| (field.to_string(), value.clone()))
        })
        .collect()
}

/// The signature a form carries: the drawn image when there is one, else the name
/// typed instead.
fn signature_of(form: &BTreeMap<String, String>, drawn: &str, typed: &str) -> Option<String> {
    let drawn = form.get(drawn).map(|v| v.trim()).unwrap_or("");
    if drawn.starts_with("data:image/png;base64,") {
        return Some(drawn.to_string());
    }
    let typed = form.get(typed).map(|v| v.trim()).unwrap_or("");
    (!typed.is_empty()).then(|| typed.to_string())
}

fn document_ref(id: &str) -> Option<RecordRef> {
    kontor_engine::records::parse_record_id(RecordKind::Document, id)
}

fn client_of(headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> (String, String) {
    // Behind a proxy the peer is the proxy; the first X-Forwarded-For hop is the person.
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let ip = forwarded
        .or_else(|| peer.map(|peer| peer.ip().to_string()))
        .unwrap_or_default();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(500)
        .collect();
    (ip, user_agent)
}

/// `POST /portal/documents/{id}/draft`: keeps what the signer typed so far, per field
/// (the page's script posts each change; without a script, "Zwischenspeichern").
pub async fn save_draft(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let viewer = session.viewer;
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(error) = check_post(
        &state,
        &headers,
        &viewer,
        form.get("csrf").map(String::as_str),
    ) {
        return error.respond(&state, Some(&viewer));
    }
    let Some(record) = document_ref(&id) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let mut values = posted_values(&form);
    if let Some(signature) = signature_of(&form, "signature_drawn", "signature_typed") {
        if let Some(name) = form.get("signature_field") {
            values.insert(name.clone(), signature);
        }
    }
    let scripted = headers
        .get("x-kontor-draft")
        .is_some_and(|v| v.as_bytes() == b"1");
    let saved = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let document = engine.portal_record::<Document>(&viewer, record.id)?;
                engine.save_document_draft(document.id, values)
            })
            .await
    };
    match saved {
        Ok(_) if scripted => no_content(),
        Ok(_) => see_other(&format!("{}#sign", view::record_url_of(record))),
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

/// `POST /portal/documents/{id}/sign`: "Signieren".
pub async fn sign(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let viewer = session.viewer;
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(error) = check_post(
        &state,
        &headers,
        &viewer,
        form.get("csrf").map(String::as_str),
    ) {
        return error.respond(&state, Some(&viewer));
    }
    let Some(record) = document_ref(&id) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let mut values = posted_values(&form);
    if let Some(name) = form.get("signature_field") {
        match signature_of(&form, "signature_drawn", "signature_typed") {
            Some(signature) => {
                values.insert(name.clone(), signature);
            }
            None => {
                values.remove(name);
            }
        }
    }
    let (ip, user_agent) = client_of(&headers, peer.map(|p| p.0 .0));
    let content_sha256 = form.get("content_sha256").cloned();
    let submitted = values.clone();
    let signed = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let document = engine.portal_record::<Document>(&viewer, record.id)?;
                engine.sign_document(
                    document.id,
                    SignInput {
                        values,
                        content_sha256,
                        ip,
                        user_agent,
                    },
                )
            })
            .await
    };
    match signed {
        Ok(_) => see_other(&format!("{}#signed", view::record_url_of(record))),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            // Refused: nothing stored. The page shows the values as they were typed
            // and names every missing field.
            let missing: Vec<String> = error.fields.keys().cloned().collect();
            record_page(
                &state,
                &viewer,
                record,
                StatusCode::BAD_REQUEST,
                json!({"sign_refused": true, "missing": missing, "submitted": submitted}),
            )
            .await
        }
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

fn quote_ref(id: &str) -> Option<RecordRef> {
    kontor_engine::records::parse_record_id(RecordKind::Quote, id)
}

/// `POST /portal/quotes/{id}/accept`: "Signieren" in the accept dialog; the quote
/// becomes an order, and the order's page opens.
pub async fn accept_quote(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let viewer = session.viewer;
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(error) = check_post(
        &state,
        &headers,
        &viewer,
        form.get("csrf").map(String::as_str),
    ) {
        return error.respond(&state, Some(&viewer));
    }
    let Some(record) = quote_ref(&id) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let Some(contact) = viewer.contact.clone() else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let signature = signature_of(&form, "signature_drawn", "signature_typed").unwrap_or_default();
    let (ip, user_agent) = client_of(&headers, peer.map(|p| p.0 .0));
    let accepted = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let quote = engine.portal_record::<Quote>(&viewer, record.id)?;
                engine.accept_quote(
                    quote.id,
                    AcceptInput {
                        contact_id: contact.id,
                        signature,
                        ip,
                        user_agent,
                    },
                )
            })
            .await
    };
    match accepted {
        Ok((_, order)) => see_other(&view::record_url_of(RecordRef {
            kind: RecordKind::Order,
            id: order.id.0,
        })),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            record_page(
                &state,
                &viewer,
                record,
                StatusCode::BAD_REQUEST,
                json!({"dialog_accept": true, "accept_refused": true}),
            )
            .await
        }
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

/// `POST /portal/quotes/{id}/decline`: "Ablehnung bestätigen", with the reason.
pub async fn decline_quote(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let viewer = session.viewer;
    let form = form.map(|Form(form)| form).unwrap_or_default();
    if let Err(error) = check_post(
        &state,
        &headers,
        &viewer,
        form.get("csrf").map(String::as_str),
    ) {
        return error.respond(&state, Some(&viewer));
    }
    let Some(record) = quote_ref(&id) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let Some(contact) = viewer.contact.clone() else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let reason = form.get("reason").cloned().unwrap_or_default();
    if reason.trim().is_empty() {
        return record_page(
            &state,
            &viewer,
            record,
            StatusCode::BAD_REQUEST,
            json!({"dialog_decline": true, "reason_missing": true}),
        )
        .await;
    }
    let declined = {
        let viewer = viewer.clone();
        let reason = reason.clone();
        state
            .run(move |engine| {
                let quote = engine.portal_record::<Quote>(&viewer, record.id)?;
                engine.decline_quote(quote.id, contact.id, &reason)
            })
            .await
    };
    match declined {
        Ok(_) => see_other(&view::record_url_of(record)),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            record_page(
                &state,
                &viewer,
                record,
                StatusCode::BAD_REQUEST,
                json!({"dialog_decline": true, "reason_missing": true, "reason": reason}),
            )
            .await
        }
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}
