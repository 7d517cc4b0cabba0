//! The portal's PDFs: an invoice, a signed document and its certificate (with the
//! evidence embedded as `evidence.json`), made by `crate::pdf` from records the
//! session may see.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use kontor_engine::model::{RecordKind, RecordRef};
use kontor_engine::records::{Document, Invoice};

use super::{download, PortalError, Session};
use crate::http::error::ApiError;
use crate::http::AppState;

/// A record id from the path of a PDF route.
fn record_in(kind: RecordKind, id: &str) -> Option<RecordRef> {
    kontor_engine::records::parse_record_id(kind, id)
}

/// `GET /portal/invoices/{id}/invoice.pdf`.
pub async fn invoice_pdf(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let viewer = session.viewer;
    let Some(record) = record_in(RecordKind::Invoice, &id) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let timezone = state.settings.portal.timezone;
    let vendor = state.settings.portal.vendor_name.clone();
    let settings = crate::pdf::PdfSettings {
        locale: viewer.locale,
        timezone,
        vendor_name: vendor,
    };
    let loaded = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let invoice = engine.portal_record::<Invoice>(&viewer, record.id)?;
                let company = engine.company(invoice.company_id)?;
                Ok((invoice, company.name))
            })
            .await
    };
    let (invoice, company) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return PortalError::from(error).respond(&state, Some(&viewer)),
    };
    match crate::pdf::invoice_pdf(&invoice, &company, &settings) {
        Ok(pdf) => download(
            &format!("{}.pdf", invoice.number),
            "application/pdf",
            pdf,
            true,
        ),
        Err(error) => pdf_failed(&state, &viewer, error),
    }
}

/// `GET /portal/documents/{id}/signed.pdf`: the signed copy.
pub async fn signed_document_pdf(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    document_pdf(state, session, id, false).await
}

/// `GET /portal/documents/{id}/certificate.pdf`: the signature certificate, with the
/// evidence embedded as `evidence.json`.
pub async fn certificate_pdf(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    document_pdf(state, session, id, true).await
}

async fn document_pdf(
    state: AppState,
    session: Session,
    id: String,
    certificate: bool,
) -> Response {
    let viewer = session.viewer;
    let Some(record) = record_in(RecordKind::Document, &id) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let settings = crate::pdf::PdfSettings {
        locale: viewer.locale,
        timezone: state.settings.portal.timezone,
        vendor_name: state.settings.portal.vendor_name.clone(),
    };
    let loaded = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let document = engine.portal_record::<Document>(&viewer, record.id)?;
                let evidence = engine.document_evidence(document.id)?;
                Ok((document, evidence))
            })
            .await
    };
    let (document, evidence) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return PortalError::from(error).respond(&state, Some(&viewer)),
    };
    let made = if certificate {
        crate::pdf::certificate_pdf(&document, &evidence, &settings)
    } else {
        crate::pdf::signed_document_pdf(&document, &settings)
    };
    let name = if certificate { "certificate" } else { "signed" };
    match made {
        Ok(pdf) => download(&format!("{id}-{name}.pdf"), "application/pdf", pdf, true),
        Err(error) => pdf_failed(&state, &viewer, error),
    }
}

/// A PDF that could not be made: 409 for a document not signed yet, else a 500 page
/// (the cause is logged; the page says only that it failed).
fn pdf_failed(
    state: &AppState,
    viewer: &kontor_engine::portal::Viewer,
    error: crate::pdf::PdfError,
) -> Response {
    let status = match error {
        crate::pdf::PdfError::NotSigned { .. } => StatusCode::CONFLICT,
        _ => {
            tracing::error!(%error, "making a PDF failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    PortalError::Refused(ApiError::new(status, "pdf_failed", error.to_string()))
        .respond(state, Some(viewer))
}
