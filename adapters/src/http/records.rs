//! `/documents`, `/quotes`, `/orders`, `/invoices`, `/subscriptions`, and the verbs
//! every record kind shares (`history`, `messages`, `assign`, `time-entries`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};

use kontor_engine::ids::*;
use kontor_engine::model::{RecordKind, RecordRef, Visibility};
use kontor_engine::ops::PageRequest;
use kontor_engine::records::document::NewDocument;
use kontor_engine::records::invoice::{InvoiceStatus, NewInvoice};
use kontor_engine::records::quote::{AcceptInput, NewQuote};
use kontor_engine::records::subscription::NewSubscription;
use kontor_engine::records::verbs::RecordFilter;
use kontor_engine::records::{self, Document, Invoice, Order, Quote, Subscription};

use super::error::ApiError;
use super::extract::{parse_json, ApiJson, ApiQuery, RawBody};
use super::record_wire::*;
use super::wire::{
    AssignJson, ErrorJson, HistoryItemJson, ListJson, NewMessageJson, NewTimeEntryJson, PageQuery,
    VisibilityJson,
};
use super::{parse_id, AppState};

pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/documents", post(create_document).get(list_documents))
        .route("/documents/{id}", get(get_document))
        .route("/documents/{id}/send", post(send_document))
        .route("/documents/{id}/cancel", post(cancel_document))
        .route("/documents/{id}/evidence", get(document_evidence))
        .route("/quotes", post(create_quote).get(list_quotes))
        .route("/quotes/{id}", get(get_quote))
        .route("/quotes/{id}/send", post(send_quote))
        .route("/quotes/{id}/accept", post(accept_quote))
        .route("/quotes/{id}/decline", post(decline_quote))
        .route("/orders", get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/invoices", post(create_invoice).get(list_invoices))
        .route("/invoices/{id}", get(get_invoice))
        .route("/invoices/{id}/status", post(set_invoice_status))
        .route(
            "/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route("/subscriptions/{id}", get(get_subscription))
        .route("/subscriptions/{id}/modules", put(replace_modules))
        .route("/subscriptions/{id}/status", post(set_subscription_status));
    // The shared verbs; tickets have their own handlers (`tickets.rs`).
    for kind in RecordKind::RECORDS
        .into_iter()
        .filter(|kind| *kind != RecordKind::Ticket)
    {
        let base = format!("/{}s/{{id}}", kind.as_str());
        router = router
            .route(
                &format!("{base}/history"),
                get(move |state, path, query| history(kind, state, path, query)),
            )
            .route(
                &format!("{base}/messages"),
                post(move |state, path, body| post_message(kind, state, path, body)),
            )
            .route(
                &format!("{base}/assign"),
                post(move |state, path, body| assign(kind, state, path, body)),
            )
            .route(
                &format!("{base}/time-entries"),
                post(move |state, path, body| add_time_entry(kind, state, path, body)),
            );
    }
    router
}

/// The record a path's id names; an id of another kind is a 404.
fn record_ref(kind: RecordKind, id: &str) -> Result<RecordRef, ApiError> {
    records::parse_record_id(kind, id).ok_or_else(|| ApiError::not_found(kind.as_str(), id))
}

fn opt_staff(id: Option<&str>) -> Result<Option<StaffId>, ApiError> {
    id.map(|id| parse_id::<StaffId>(id, "staff", Some("staff_id")))
        .transpose()
}

/// A body that may be empty or `{}` (actions without fields).
fn optional_body<T: serde::de::DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(bytes)
}

fn filter_of(query: &RecordListQuery) -> RecordFilter {
    // An id that cannot exist matches nothing: an empty list, as for an unknown id.
    RecordFilter {
        company_id: query
            .company_id
            .as_deref()
            .map(|id| id.parse().unwrap_or(CompanyId(0))),
        contact_id: query
            .contact_id
            .as_deref()
            .map(|id| id.parse().unwrap_or(ContactId(0))),
        status: query.status.clone(),
    }
}

async fn list<R: records::RecordType, J: serde::Serialize + utoipa::ToSchema + Send + 'static>(
    state: AppState,
    query: RecordListQuery,
    convert: fn(&kontor_engine::Engine, &R) -> J,
) -> Result<Json<ListJson<J>>, ApiError> {
    let filter = filter_of(&query);
    let list = state
        .run(move |engine| {
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.list_records::<R>(&filter, request)?;
            ListJson::from_page(page, |record| Ok(convert(engine, &record)))
        })
        .await?;
    Ok(Json(list))
}

// Documents.

#[utoipa::path(post, path = "/api/v1/documents", tag = "documents", request_body = NewDocumentJson,
    responses((status = 201, body = DocumentJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson)))]
pub async fn create_document(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewDocumentJson>,
) -> Result<(StatusCode, Json<DocumentJson>), ApiError> {
    let new = NewDocument {
        title: body.title,
        company_id: parse_id(&body.company_id, "company", Some("company_id"))?,
        signer_contact_id: parse_id(
            &body.signer_contact_id,
            "contact",
            Some("signer_contact_id"),
        )?,
        body_html: body.body_html,
        fields: body.fields.into_iter().map(Into::into).collect(),
        valid_until: body.valid_until,
        staff_id: opt_staff(body.staff_id.as_deref())?,
    };
    let document = state
        .run(move |engine| Ok(DocumentJson::new(engine, &engine.create_document(new)?)))
        .await?;
    Ok((StatusCode::CREATED, Json(document)))
}

#[utoipa::path(get, path = "/api/v1/documents", tag = "documents", params(RecordListQuery),
    responses((status = 200, body = ListJson<DocumentJson>), (status = 400, body = ErrorJson)))]
pub async fn list_documents(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordListQuery>,
) -> Result<Json<ListJson<DocumentJson>>, ApiError> {
    list::<Document, _>(state, query, DocumentJson::new).await
}

#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", params(("id" = String, Path)),
    responses((status = 200, body = DocumentJson), (status = 404, body = ErrorJson)))]
pub async fn get_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DocumentJson>, ApiError> {
    let id: DocumentId = parse_id(&id, "document", None)?;
    let document = state
        .run(move |engine| Ok(DocumentJson::new(engine, &engine.document(id)?)))
        .await?;
    Ok(Json(document))
}

#[utoipa::path(post, path = "/api/v1/documents/{id}/send", tag = "documents", params(("id" = String, Path)), request_body = SendJson,
    responses((status = 200, body = DocumentJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn send_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<Json<DocumentJson>, ApiError> {
    let id: DocumentId = parse_id(&id, "document", None)?;
    let body: SendJson = optional_body(&bytes)?;
    let staff_id = opt_staff(body.staff_id.as_deref())?;
    let document = state
        .run(move |engine| {
            Ok(DocumentJson::new(
                engine,
                &engine.send_document(id, staff_id)?,
            ))
        })
        .await?;
    Ok(Json(document))
}

#[utoipa::path(post, path = "/api/v1/documents/{id}/cancel", tag = "documents", params(("id" = String, Path)), request_body = CancelJson,
    responses((status = 200, body = DocumentJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn cancel_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CancelJson>,
) -> Result<Json<DocumentJson>, ApiError> {
    let id: DocumentId = parse_id(&id, "document", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let document = state
        .run(move |engine| {
            let document = engine.cancel_document(id, &body.reason, staff_id)?;
            Ok(DocumentJson::new(engine, &document))
        })
        .await?;
    Ok(Json(document))
}

#[utoipa::path(get, path = "/api/v1/documents/{id}/evidence", tag = "documents", params(("id" = String, Path)),
    responses((status = 200, body = EvidenceJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn document_evidence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EvidenceJson>, ApiError> {
    let id: DocumentId = parse_id(&id, "document", None)?;
    let evidence = state
        .run(move |engine| Ok(EvidenceJson::new(id, engine.document_evidence(id)?)))
        .await?;
    Ok(Json(evidence))
}

// Quotes.

#[utoipa::path(post, path = "/api/v1/quotes", tag = "quotes", request_body = NewQuoteJson,
    responses((status = 201, body = QuoteJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson)))]
pub async fn create_quote(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewQuoteJson>,
) -> Result<(StatusCode, Json<QuoteJson>), ApiError> {
    let new = NewQuote {
        company_id: parse_id(&body.company_id, "company", Some("company_id"))?,
        contact_id: parse_id(&body.contact_id, "contact", Some("contact_id"))?,
        title: body.title,
        lines: body.lines.into_iter().map(Into::into).collect(),
        currency: body.currency,
        valid_until: body.valid_until,
        staff_id: opt_staff(body.staff_id.as_deref())?,
    };
    let quote = state
        .run(move |engine| Ok(QuoteJson::new(engine, &engine.create_quote(new)?)))
        .await?;
    Ok((StatusCode::CREATED, Json(quote)))
}

#[utoipa::path(get, path = "/api/v1/quotes", tag = "quotes", params(RecordListQuery),
    responses((status = 200, body = ListJson<QuoteJson>), (status = 400, body = ErrorJson)))]
pub async fn list_quotes(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordListQuery>,
) -> Result<Json<ListJson<QuoteJson>>, ApiError> {
    list::<Quote, _>(state, query, QuoteJson::new).await
}

#[utoipa::path(get, path = "/api/v1/quotes/{id}", tag = "quotes", params(("id" = String, Path)),
    responses((status = 200, body = QuoteJson), (status = 404, body = ErrorJson)))]
pub async fn get_quote(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QuoteJson>, ApiError> {
    let id: QuoteId = parse_id(&id, "quote", None)?;
    let quote = state
        .run(move |engine| Ok(QuoteJson::new(engine, &engine.quote(id)?)))
        .await?;
    Ok(Json(quote))
}

#[utoipa::path(post, path = "/api/v1/quotes/{id}/send", tag = "quotes", params(("id" = String, Path)), request_body = SendJson,
    responses((status = 200, body = QuoteJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn send_quote(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<Json<QuoteJson>, ApiError> {
    let id: QuoteId = parse_id(&id, "quote", None)?;
    let body: SendJson = optional_body(&bytes)?;
    let staff_id = opt_staff(body.staff_id.as_deref())?;
    let quote = state
        .run(move |engine| Ok(QuoteJson::new(engine, &engine.send_quote(id, staff_id)?)))
        .await?;
    Ok(Json(quote))
}

/// Beyond the contract: staff record an acceptance the customer gave outside the
/// portal (on paper, by phone), with the signature as typed or scanned.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptJson {
    contact_id: String,
    signature: String,
}

#[utoipa::path(post, path = "/api/v1/quotes/{id}/accept", tag = "quotes", params(("id" = String, Path)), request_body = AcceptJson,
    responses((status = 201, body = OrderJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn accept_quote(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AcceptJson>,
) -> Result<(StatusCode, Json<OrderJson>), ApiError> {
    let id: QuoteId = parse_id(&id, "quote", None)?;
    let input = AcceptInput {
        contact_id: parse_id(&body.contact_id, "contact", Some("contact_id"))?,
        signature: body.signature,
        ip: String::new(),
        user_agent: "kontor staff API".into(),
    };
    let order = state
        .run(move |engine| {
            let (_, order) = engine.accept_quote(id, input)?;
            Ok(OrderJson::new(engine, &order))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(order)))
}

/// Beyond the contract: staff record a decline the customer gave outside the portal.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineJson {
    contact_id: String,
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/quotes/{id}/decline", tag = "quotes", params(("id" = String, Path)), request_body = DeclineJson,
    responses((status = 200, body = QuoteJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn decline_quote(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DeclineJson>,
) -> Result<Json<QuoteJson>, ApiError> {
    let id: QuoteId = parse_id(&id, "quote", None)?;
    let contact_id: ContactId = parse_id(&body.contact_id, "contact", Some("contact_id"))?;
    let quote = state
        .run(move |engine| {
            let quote = engine.decline_quote(id, contact_id, &body.reason)?;
            Ok(QuoteJson::new(engine, &quote))
        })
        .await?;
    Ok(Json(quote))
}

// Orders.

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(RecordListQuery),
    responses((status = 200, body = ListJson<OrderJson>), (status = 400, body = ErrorJson)))]
pub async fn list_orders(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordListQuery>,
) -> Result<Json<ListJson<OrderJson>>, ApiError> {
    list::<Order, _>(state, query, OrderJson::new).await
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = OrderJson), (status = 404, body = ErrorJson)))]
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OrderJson>, ApiError> {
    let id: OrderId = parse_id(&id, "order", None)?;
    let order = state
        .run(move |engine| Ok(OrderJson::new(engine, &engine.order(id)?)))
        .await?;
    Ok(Json(order))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", params(("id" = String, Path)), request_body = CancelOrderJson,
    responses((status = 200, body = OrderJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn cancel_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CancelOrderJson>,
) -> Result<Json<OrderJson>, ApiError> {
    let id: OrderId = parse_id(&id, "order", None)?;
    let agreed_by: ContactId = parse_id(&body.agreed_by, "contact", Some("agreed_by"))?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let order = state
        .run(move |engine| {
            let order = engine.cancel_order(id, &body.reason, agreed_by, staff_id)?;
            Ok(OrderJson::new(engine, &order))
        })
        .await?;
    Ok(Json(order))
}

// Invoices.

#[utoipa::path(post, path = "/api/v1/invoices", tag = "invoices", request_body = NewInvoiceJson,
    responses((status = 201, body = InvoiceJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn create_invoice(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewInvoiceJson>,
) -> Result<(StatusCode, Json<InvoiceJson>), ApiError> {
    let new = NewInvoice {
        company_id: parse_id(&body.company_id, "company", Some("company_id"))?,
        contact_id: parse_id(&body.contact_id, "contact", Some("contact_id"))?,
        number: body.number,
        order_id: body
            .order_id
            .as_deref()
            .map(|id| parse_id::<OrderId>(id, "order", Some("order_id")))
            .transpose()?,
        lines: body.lines.into_iter().map(Into::into).collect(),
        currency: body.currency,
        due_date: body.due_date,
        staff_id: opt_staff(body.staff_id.as_deref())?,
    };
    let invoice = state
        .run(move |engine| Ok(InvoiceJson::new(engine, &engine.create_invoice(new)?)))
        .await?;
    Ok((StatusCode::CREATED, Json(invoice)))
}

#[utoipa::path(get, path = "/api/v1/invoices", tag = "invoices", params(RecordListQuery),
    responses((status = 200, body = ListJson<InvoiceJson>), (status = 400, body = ErrorJson)))]
pub async fn list_invoices(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordListQuery>,
) -> Result<Json<ListJson<InvoiceJson>>, ApiError> {
    list::<Invoice, _>(state, query, InvoiceJson::new).await
}

#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "invoices", params(("id" = String, Path)),
    responses((status = 200, body = InvoiceJson), (status = 404, body = ErrorJson)))]
pub async fn get_invoice(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceJson>, ApiError> {
    let id: InvoiceId = parse_id(&id, "invoice", None)?;
    let invoice = state
        .run(move |engine| Ok(InvoiceJson::new(engine, &engine.invoice(id)?)))
        .await?;
    Ok(Json(invoice))
}

#[utoipa::path(post, path = "/api/v1/invoices/{id}/status", tag = "invoices", params(("id" = String, Path)), request_body = InvoiceStatusJson,
    responses((status = 200, body = InvoiceJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn set_invoice_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InvoiceStatusJson>,
) -> Result<Json<InvoiceJson>, ApiError> {
    let id: InvoiceId = parse_id(&id, "invoice", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let status = InvoiceStatus::parse(&body.status)
        .filter(|status| *status != InvoiceStatus::Open)
        .ok_or_else(|| ApiError::bad_request("invalid", "status", "must be paid or cancelled"))?;
    let invoice = state
        .run(move |engine| {
            let invoice = engine.set_invoice_status(id, status, staff_id)?;
            Ok(InvoiceJson::new(engine, &invoice))
        })
        .await?;
    Ok(Json(invoice))
}

// Subscriptions.

#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "subscriptions", request_body = NewSubscriptionJson,
    responses((status = 201, body = SubscriptionJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson)))]
pub async fn create_subscription(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewSubscriptionJson>,
) -> Result<(StatusCode, Json<SubscriptionJson>), ApiError> {
    let new = NewSubscription {
        company_id: parse_id(&body.company_id, "company", Some("company_id"))?,
        contact_id: parse_id(&body.contact_id, "contact", Some("contact_id"))?,
        plan: body.plan,
        modules: body.modules.into_iter().map(Into::into).collect(),
        started_on: body.started_on,
        renews_on: body.renews_on,
        staff_id: opt_staff(body.staff_id.as_deref())?,
    };
    let subscription = state
        .run(move |engine| {
            Ok(SubscriptionJson::new(
                engine,
                &engine.create_subscription(new)?,
            ))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(subscription)))
}

#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions", params(RecordListQuery),
    responses((status = 200, body = ListJson<SubscriptionJson>), (status = 400, body = ErrorJson)))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RecordListQuery>,
) -> Result<Json<ListJson<SubscriptionJson>>, ApiError> {
    list::<Subscription, _>(state, query, SubscriptionJson::new).await
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "subscriptions", params(("id" = String, Path)),
    responses((status = 200, body = SubscriptionJson), (status = 404, body = ErrorJson)))]
pub async fn get_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionJson>, ApiError> {
    let id: SubscriptionId = parse_id(&id, "subscription", None)?;
    let subscription = state
        .run(move |engine| Ok(SubscriptionJson::new(engine, &engine.subscription(id)?)))
        .await?;
    Ok(Json(subscription))
}

#[utoipa::path(put, path = "/api/v1/subscriptions/{id}/modules", tag = "subscriptions", params(("id" = String, Path)), request_body = ReplaceModulesJson,
    responses((status = 200, body = SubscriptionJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn replace_modules(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplaceModulesJson>,
) -> Result<Json<SubscriptionJson>, ApiError> {
    let id: SubscriptionId = parse_id(&id, "subscription", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let modules = body.modules.into_iter().map(Into::into).collect();
    let subscription = state
        .run(move |engine| {
            let subscription = engine.replace_subscription_modules(id, modules, staff_id)?;
            Ok(SubscriptionJson::new(engine, &subscription))
        })
        .await?;
    Ok(Json(subscription))
}

#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/status", tag = "subscriptions", params(("id" = String, Path)), request_body = SubscriptionStatusJson,
    responses((status = 200, body = SubscriptionJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn set_subscription_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SubscriptionStatusJson>,
) -> Result<Json<SubscriptionJson>, ApiError> {
    let id: SubscriptionId = parse_id(&id, "subscription", None)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    if body.status != "ended" {
        return Err(ApiError::bad_request("invalid", "status", "must be ended"));
    }
    let subscription = state
        .run(move |engine| {
            let subscription = engine.end_subscription(id, staff_id)?;
            Ok(SubscriptionJson::new(engine, &subscription))
        })
        .await?;
    Ok(Json(subscription))
}

// The shared verbs.

async fn history(
    kind: RecordKind,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListJson<HistoryItemJson>>, ApiError> {
    let record = record_ref(kind, &id)?;
    let list = state
        .run(move |engine| {
            engine.record_head(record)?;
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.history(record, request)?;
            ListJson::from_page(page, |entry| HistoryItemJson::new(engine, entry))
        })
        .await?;
    Ok(Json(list))
}

async fn post_message(
    kind: RecordKind,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewMessageJson>,
) -> Result<(StatusCode, Json<HistoryItemJson>), ApiError> {
    let record = record_ref(kind, &id)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let visibility = match body.visibility {
        VisibilityJson::Public => Visibility::Public,
        VisibilityJson::Internal => Visibility::Internal,
    };
    let item = state
        .run(move |engine| {
            let entry = engine.post_record_message(record, staff_id, &body.body, visibility)?;
            HistoryItemJson::new(engine, entry)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

async fn assign(
    kind: RecordKind,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AssignJson>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let record = record_ref(kind, &id)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let json = state
        .run(move |engine| {
            engine.assign_record(record, staff_id)?;
            record_json(engine, record)
        })
        .await?;
    Ok(Json(json))
}

async fn add_time_entry(
    kind: RecordKind,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewTimeEntryJson>,
) -> Result<(StatusCode, Json<HistoryItemJson>), ApiError> {
    let record = record_ref(kind, &id)?;
    let staff_id: StaffId = parse_id(&body.staff_id, "staff", Some("staff_id"))?;
    let item = state
        .run(move |engine| {
            let entry = engine.add_record_time_entry(
                record,
                staff_id,
                body.minutes,
                &body.note,
                body.date,
            )?;
            HistoryItemJson::new(engine, entry)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Any record's API JSON, by its kind.
pub fn record_json(
    engine: &kontor_engine::Engine,
    record: RecordRef,
) -> Result<serde_json::Value, kontor_engine::EngineError> {
    let json = match record.kind {
        RecordKind::Document => serde_json::to_value(DocumentJson::new(
            engine,
            &engine.document(DocumentId(record.id))?,
        )),
        RecordKind::Quote => {
            serde_json::to_value(QuoteJson::new(engine, &engine.quote(QuoteId(record.id))?))
        }
        RecordKind::Order => {
            serde_json::to_value(OrderJson::new(engine, &engine.order(OrderId(record.id))?))
        }
        RecordKind::Invoice => serde_json::to_value(InvoiceJson::new(
            engine,
            &engine.invoice(InvoiceId(record.id))?,
        )),
        RecordKind::Subscription => serde_json::to_value(SubscriptionJson::new(
            engine,
            &engine.subscription(SubscriptionId(record.id))?,
        )),
        RecordKind::Ticket => serde_json::to_value(super::wire::TicketJson::new(
            engine,
            engine.ticket(TicketId(record.id))?,
        )),
        RecordKind::Company => serde_json::to_value(super::wire::CompanyJson::from(
            engine.company(CompanyId(record.id))?,
        )),
    };
    Ok(json.unwrap_or(serde_json::Value::Null))
}
