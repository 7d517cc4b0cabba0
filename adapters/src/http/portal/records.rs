//! Documents, quotes, orders, invoices and subscriptions in the portal: the lists of
//! the menus "Signaturen", "Angebote", "Verkaufsaufträge", "Rechnungen",
//! "Abonnements", each record's page with its history and reply form, its
//! attachments, and the PDFs (an invoice; a signed document and its certificate).

use std::collections::BTreeMap;

use axum::extract::multipart::Multipart;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use kontor_engine::ids::{AttachmentId, StaffId};
use kontor_engine::model::{Locale, RecordKind, RecordRef};
use kontor_engine::ops::PageRequest;
use kontor_engine::portal::{PortalMessage, RecordPage, Viewer};
use kontor_engine::records::commercial::format_money;
use kontor_engine::records::document::DocumentStatus;
use kontor_engine::records::invoice::InvoiceStatus;
use kontor_engine::records::order::OrderStatus;
use kontor_engine::records::quote::QuoteStatus;
use kontor_engine::records::{Document, Invoice, Order, Quote, RecordType, Subscription};

use super::tickets::read_form;
use super::view::{self, HistoryContext};
use super::{check_post, download, render, see_other, PortalError, Session};
use crate::http::AppState;

/// The record kinds with portal pages beside tickets, as their addresses name them.
pub const KINDS: [&str; 5] = ["documents", "quotes", "orders", "invoices", "subscriptions"];

/// Records a list page shows at once.
const PER_PAGE: u32 = 25;

fn kind_of(kinds: &str) -> Option<RecordKind> {
    match kinds {
        "documents" => Some(RecordKind::Document),
        "quotes" => Some(RecordKind::Quote),
        "orders" => Some(RecordKind::Order),
        "invoices" => Some(RecordKind::Invoice),
        "subscriptions" => Some(RecordKind::Subscription),
        _ => None,
    }
}

/// The kind a request's path names: `/portal/<kinds>/…`.
fn kind_in(uri: &Uri) -> Option<RecordKind> {
    uri.path().split('/').nth(2).and_then(kind_of)
}

/// A list's query: `?page=&q=`.
#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    page: Option<String>,
    /// The subscriptions page's search field.
    #[serde(default)]
    q: Option<String>,
}

/// `GET /portal/{kinds}`.
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    uri: Uri,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let viewer = session.viewer;
    let Some(kind) = kind_in(&uri) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let search = query.q.unwrap_or_default().trim().to_string();
    let timezone = state.settings.portal.timezone;
    let locale = viewer.locale;
    let built = {
        let viewer = viewer.clone();
        let search = search.clone();
        state
            .run(move |engine| {
                let request = PageRequest::new(Some(page), Some(PER_PAGE))?;
                let all = PageRequest::new(Some(1), Some(kontor_engine::ops::MAX_PER_PAGE))?;
                Ok(match kind {
                    RecordKind::Document => {
                        let waiting = engine.portal_records::<Document>(
                            &viewer,
                            |d| d.status == DocumentStatus::Sent,
                            all,
                        )?;
                        let signed = engine.portal_records::<Document>(
                            &viewer,
                            |d| d.status == DocumentStatus::Signed,
                            all,
                        )?;
                        json!({
                            "waiting": waiting.items.iter().map(|d| document_item(d, locale, timezone)).collect::<Vec<_>>(),
                            "signed": signed.items.iter().map(|d| document_item(d, locale, timezone)).collect::<Vec<_>>(),
                        })
                    }
                    RecordKind::Quote => {
                        let quotes = engine.portal_records::<Quote>(
                            &viewer,
                            |q| {
                                matches!(
                                    q.status,
                                    QuoteStatus::Sent | QuoteStatus::Expired | QuoteStatus::Cancelled
                                )
                            },
                            request,
                        )?;
                        listed(&quotes, "/portal/quotes", |q| quote_item(q, locale))
                    }
                    RecordKind::Order => {
                        let orders = engine.portal_records::<Order>(
                            &viewer,
                            |o| o.status == OrderStatus::Confirmed,
                            request,
                        )?;
                        listed(&orders, "/portal/orders", |o| order_item(o, locale, timezone))
                    }
                    RecordKind::Invoice => {
                        let invoices = engine.portal_records::<Invoice>(&viewer, |_| true, request)?;
                        listed(&invoices, "/portal/invoices", |i| invoice_item(i, locale))
                    }
                    _ => {
                        let subscriptions =
                            engine.portal_records::<Subscription>(&viewer, |_| true, request)?;
                        let mut data = listed(&subscriptions, "/portal/subscriptions", |s| {
                            subscription_item(s, locale, &search)
                        });
                        data["q"] = json!(search);
                        data
                    }
                })
            })
            .await
    };
    let content = match built {
        Ok(content) => content,
        Err(error) => return PortalError::from(error).respond(&state, Some(&viewer)),
    };
    let page_name = uri
        .path()
        .split('/')
        .nth(2)
        .unwrap_or("documents")
        .to_string();
    let title = list_title(kind, locale);
    render(
        &state,
        &viewer,
        StatusCode::OK,
        &page_name,
        title,
        &page_name,
        content,
    )
}

fn list_title(kind: RecordKind, locale: Locale) -> &'static str {
    match (kind, locale) {
        (RecordKind::Document, Locale::De) => "Signaturen",
        (RecordKind::Document, Locale::En) => "Signatures",
        (RecordKind::Quote, Locale::De) => "Angebote",
        (RecordKind::Quote, Locale::En) => "Quotes",
        (RecordKind::Order, Locale::De) => "Verkaufsaufträge",
        (RecordKind::Order, Locale::En) => "Orders",
        (RecordKind::Invoice, Locale::De) => "Rechnungen",
        (RecordKind::Invoice, Locale::En) => "Invoices",
        (_, Locale::De) => "Abonnements",
        (_, Locale::En) => "Subscriptions",
    }
}

fn listed<R>(page: &kontor_engine::Page<R>, base: &str, item: impl Fn(&R) -> Value) -> Value {
    json!({
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
        "pager": view::pager(base, "", page.page, page.per_page, page.total),
    })
}

fn url_of<R: RecordType>(record: &R) -> String {
    view::record_url_of(record.head().record)
}

fn document_item(document: &Document, locale: Locale, timezone: chrono_tz::Tz) -> Value {
    json!({
        "url": url_of(document),
        "title": document.title,
        "status": document.status.display_name(locale),
        "valid_until": document.valid_until.map(|d| view::date(d, locale)),
        "sent": document.sent_at.map(|at| view::time(at, locale, timezone)),
        "signed_at": document.signed_at.map(|at| view::time(at, locale, timezone)),
    })
}

fn quote_item(quote: &Quote, locale: Locale) -> Value {
    json!({
        "url": url_of(quote),
        "title": quote.title,
        "status": quote.status.display_name(locale),
        "open": quote.status == QuoteStatus::Sent,
        "expired": quote.status == QuoteStatus::Expired,
        "cancelled": quote.status == QuoteStatus::Cancelled,
        "total": format_money(quote.total_cents, &quote.currency, locale),
        "valid_until": view::date(quote.valid_until, locale),
    })
}

fn order_item(order: &Order, locale: Locale, timezone: chrono_tz::Tz) -> Value {
    json!({
        "url": url_of(order),
        "title": order.title,
        "status": order.status.display_name(locale),
        "total": format_money(order.total_cents, &order.currency, locale),
        "signed_by": order.signed_by,
        "signed_at": view::time(order.signed_at, locale, timezone),
    })
}

fn invoice_item(invoice: &Invoice, locale: Locale) -> Value {
    let url = url_of(invoice);
    json!({
        "url": url,
        "pdf_url": format!("{url}/invoice.pdf"),
        "number": invoice.number,
        "issued_on": view::date(invoice.issued_on, locale),
        "due_date": view::date(invoice.due_date, locale),
        "total": format_money(invoice.total_cents, &invoice.currency, locale),
        "status": invoice.status.display_name(locale),
        "paid": invoice.status == InvoiceStatus::Paid,
    })
}

/// A subscription with its modules; with a search, only the modules whose code,
/// name or a component matches (case-insensitive), and the subscription only when
/// one does.
fn subscription_item(subscription: &Subscription, locale: Locale, search: &str) -> Value {
    let needle = search.to_lowercase();
    let matches = |text: &str| needle.is_empty() || text.to_lowercase().contains(&needle);
    let modules: Vec<Value> = subscription
        .modules
        .iter()
        .filter(|module| {
            matches(&module.code)
                || matches(&module.name)
                || module.components.iter().any(|c| matches(c))
        })
        .map(|module| {
            json!({
                "code": module.code,
                "name": module.name,
                "components": module.components,
            })
        })
        .collect();
    json!({
        "url": url_of(subscription),
        "plan": subscription.plan,
        "status": subscription.status.display_name(locale),
        "started_on": view::date(subscription.started_on, locale),
        "renews_on": view::date(subscription.renews_on, locale),
        "modules": modules,
        "no_match": modules.is_empty() && !needle.is_empty(),
        "module_count": subscription.modules.len(),
    })
}

/// A record's page data as the `record` template reads it: kind-specific parts plus
/// the shared head, assignee, history and reply form.
#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    /// Which dialog of a quote is open: `accept` or `decline`.
    #[serde(default)]
    pub dialog: Option<String>,
    /// A subscription page's module search.
    #[serde(default)]
    pub q: Option<String>,
}

/// `GET /portal/{kinds}/{id}`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    uri: Uri,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let viewer = session.viewer;
    let Some(record) =
        kind_in(&uri).and_then(|kind| kontor_engine::records::parse_record_id(kind, &id))
    else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let mut extra = match query.dialog.as_deref() {
        Some("accept") => json!({"dialog_accept": true}),
        Some("decline") => json!({"dialog_decline": true}),
        _ => json!({}),
    };
    if let Some(search) = query.q.filter(|q| !q.trim().is_empty()) {
        extra["q"] = json!(search.trim());
    }
    record_page(&state, &viewer, record, StatusCode::OK, extra).await
}

/// A record's page with `extra` merged in (a refused form's errors and values).
pub async fn record_page(
    state: &AppState,
    viewer: &Viewer,
    record: RecordRef,
    status: StatusCode,
    extra: Value,
) -> Response {
    let timezone = state.settings.portal.timezone;
    let locale = viewer.locale;
    let search = extra["q"].as_str().unwrap_or("").to_string();
    // A refused sign form shows the values as they were typed, not only the drafts.
    let submitted: Vec<(String, String)> = extra["submitted"]
        .as_object()
        .map(|values| {
            values
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let loaded = {
        let viewer = viewer.clone();
        state
            .run(move |engine| {
                let page = engine.portal_record_page(&viewer, record)?;
                let names = engine.portal_staff_names(&page.entries)?;
                let details = match record.kind {
                    RecordKind::Document => {
                        let mut document = engine.portal_record::<Document>(&viewer, record.id)?;
                        document.values.extend(submitted);
                        super::signing::document_data(&document, locale, timezone)
                    }
                    RecordKind::Quote => {
                        let quote = engine.portal_record::<Quote>(&viewer, record.id)?;
                        quote_data(&quote, locale, timezone)
                    }
                    RecordKind::Order => {
                        let order = engine.portal_record::<Order>(&viewer, record.id)?;
                        order_data(&order, locale, timezone)
                    }
                    RecordKind::Invoice => {
                        let invoice = engine.portal_record::<Invoice>(&viewer, record.id)?;
                        invoice_data(&invoice, locale)
                    }
                    _ => {
                        let subscription =
                            engine.portal_record::<Subscription>(&viewer, record.id)?;
                        json!({"subscription": subscription_item(&subscription, locale, &search)})
                    }
                };
                Ok((page, names, details))
            })
            .await
    };
    let (page, names, details) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return PortalError::from(error).respond(state, Some(viewer)),
    };
    let content = record_page_data(state, viewer, &page, &names, details, extra);
    let title = page.head.title.clone();
    let nav = format!("{}s", record.kind.as_str());
    render(state, viewer, status, "record", &title, &nav, content)
}

fn record_page_data(
    state: &AppState,
    viewer: &Viewer,
    page: &RecordPage,
    names: &BTreeMap<StaffId, String>,
    details: Value,
    extra: Value,
) -> Value {
    let locale = viewer.locale;
    let timezone = state.settings.portal.timezone;
    let url = view::record_url_of(page.head.record);
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
        "heading": page.head.title,
        "url": url,
        "csrf_action_base": url,
        "assignee": page.assignee,
        "created": view::time(page.head.created_at, locale, timezone),
        "updated": view::time(page.head.updated_at, locale, timezone),
        "entries": entries,
        "reply_action": format!("{url}/messages"),
        "back_url": format!("/portal/{}s", page.head.record.kind.as_str()),
    });
    if let Value::Object(content) = &mut content {
        if let Value::Object(details) = details {
            content.extend(details);
        }
        if let Value::Object(extra) = extra {
            content.extend(extra);
        }
    }
    content
}

fn lines_data(
    lines: &[kontor_engine::records::commercial::Line],
    currency: &str,
    locale: Locale,
) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            json!({
                "description": line.description,
                "quantity": line.quantity,
                "unit_price": format_money(line.unit_price_cents, currency, locale),
                "total": format_money(line.total_cents(), currency, locale),
            })
        })
        .collect()
}

fn quote_data(quote: &Quote, locale: Locale, timezone: chrono_tz::Tz) -> Value {
    json!({
        "quote": {
            "title": quote.title,
            "status": quote.status.display_name(locale),
            "open": quote.status == QuoteStatus::Sent,
            "expired": quote.status == QuoteStatus::Expired,
            "cancelled": quote.status == QuoteStatus::Cancelled,
            "accepted": quote.status == QuoteStatus::Accepted,
            "draft": quote.status == QuoteStatus::Draft,
            "decline_reason": quote.decline_reason,
            "cancel_reason": quote.cancel_reason,
            "valid_until": view::date(quote.valid_until, locale),
            "total": format_money(quote.total_cents, &quote.currency, locale),
            "lines": lines_data(&quote.lines, &quote.currency, locale),
            "signed_by": quote.signer.as_ref().map(|s| s.name.clone()),
            "signed_at": quote.signed_at.map(|at| view::time(at, locale, timezone)),
            "order_url": quote.order_id.map(|id| view::record_url_of(RecordRef { kind: RecordKind::Order, id: id.0 })),
            "accept_action": format!("{}/accept", url_of(quote)),
            "decline_action": format!("{}/decline", url_of(quote)),
        }
    })
}

fn order_data(order: &Order, locale: Locale, timezone: chrono_tz::Tz) -> Value {
    json!({
        "order": {
            "title": order.title,
            "status": order.status.display_name(locale),
            "confirmed": order.status == OrderStatus::Confirmed,
            "cancelled": order.status == OrderStatus::Cancelled,
            "signed_by": order.signed_by,
            "signed_at": view::time(order.signed_at, locale, timezone),
            "sha256": order.sha256,
            "total": format_money(order.total_cents, &order.currency, locale),
            "lines": lines_data(&order.lines, &order.currency, locale),
            "quote_url": view::record_url_of(RecordRef { kind: RecordKind::Quote, id: order.quote_id.0 }),
        }
    })
}

fn invoice_data(invoice: &Invoice, locale: Locale) -> Value {
    let mut item = invoice_item(invoice, locale);
    item["lines"] = json!(lines_data(&invoice.lines, &invoice.currency, locale));
    json!({"invoice": item})
}

/// `POST /portal/{kinds}/{id}/messages`: "Senden" on any record's page.
pub async fn reply(
    State(state): State<AppState>,
    session: Session,
    uri: Uri,
    Path(id): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let viewer = session.viewer;
    let Some(record) =
        kind_in(&uri).and_then(|kind| kontor_engine::records::parse_record_id(kind, &id))
    else {
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
            .run(move |engine| engine.portal_reply(&viewer, record, message))
            .await
    };
    match sent {
        Ok(_) => see_other(&format!("{}#reply", view::record_url_of(record))),
        Err(error) if error.status == StatusCode::BAD_REQUEST => {
            record_page(
                &state,
                &viewer,
                record,
                StatusCode::BAD_REQUEST,
                json!({"reply_error": true, "reply_text": body}),
            )
            .await
        }
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}

/// `GET /portal/{kinds}/{id}/attachments/{attachment}`.
pub async fn attachment(
    State(state): State<AppState>,
    session: Session,
    uri: Uri,
    Path((id, attachment)): Path<(String, String)>,
) -> Response {
    let viewer = session.viewer;
    let record = kind_in(&uri).and_then(|kind| kontor_engine::records::parse_record_id(kind, &id));
    let (Some(record), Ok(attachment)) = (record, attachment.parse::<AttachmentId>()) else {
        return PortalError::NotFound.respond(&state, Some(&viewer));
    };
    let found = {
        let viewer = viewer.clone();
        state
            .run(move |engine| engine.portal_attachment(&viewer, record, attachment))
            .await
    };
    match found {
        Ok((meta, bytes)) => download(&meta.filename, &meta.content_type, bytes, false),
        Err(error) => PortalError::from(error).respond(&state, Some(&viewer)),
    }
}
