//! Webhooks to the back office, at the HTTP edge: the delivery log
//! (`GET /api/v1/webhooks/deliveries`), the replay call, and [`payload`], the one
//! place a delivery becomes the JSON body `{type, timestamp, data}` that the sender
//! signs. `data` is built by the same conversions the API answers with, from the
//! record as the change left it (the engine's snapshot), so a webhook's `data` and a
//! `GET` of the record have one shape.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use kontor_engine::ops::PageRequest;
use kontor_engine::webhooks::{DeliveryState, WebhookDelivery, WebhookSubject};
use kontor_engine::{Engine, EngineError};

use super::error::ApiError;
use super::extract::{ApiQuery, RawBody};
use super::record_wire::{DocumentJson, InvoiceJson, OrderJson, QuoteJson, SubscriptionJson};
use super::wire::{ErrorJson, HistoryItemJson, ListJson, TicketJson};
use super::{parse_id, AppState};

/// The staff routes, under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/deliveries", get(list_deliveries))
        .route("/webhooks/deliveries/{id}/replay", post(replay))
}

/// The body every attempt of `delivery` sends: the same bytes each time.
pub fn payload(engine: &Engine, delivery: &WebhookDelivery) -> Result<String, EngineError> {
    let data = match delivery.subject()? {
        WebhookSubject::Ticket(ticket) => to_value(TicketJson::new(engine, *ticket)),
        WebhookSubject::Document(document) => to_value(DocumentJson::new(engine, &document)),
        WebhookSubject::Quote(quote) => to_value(QuoteJson::new(engine, &quote)),
        WebhookSubject::Order(order) => to_value(OrderJson::new(engine, &order)),
        WebhookSubject::Invoice(invoice) => to_value(InvoiceJson::new(engine, &invoice)),
        WebhookSubject::Subscription(subscription) => {
            to_value(SubscriptionJson::new(engine, &subscription))
        }
        WebhookSubject::Message(entry) => {
            let record = entry.record;
            let mut item = to_value(HistoryItemJson::new(engine, *entry)?);
            // A history item does not say whose history it is in; a back office
            // receiving it alone needs to know.
            if let serde_json::Value::Object(map) = &mut item {
                map.insert(
                    "record".into(),
                    serde_json::json!({
                        "kind": record.kind.as_str(),
                        "id": kontor_engine::records::display_id(record),
                    }),
                );
            }
            item
        }
    };
    let body = serde_json::json!({
        "type": delivery.event.as_str(),
        "timestamp": delivery.created_at,
        "data": data,
    });
    Ok(body.to_string())
}

fn to_value(value: impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The filters of the delivery log.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`.
    pub state: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// One event for one endpoint, with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryJson {
    pub id: String,
    /// The `webhook-id` header, the same on every attempt and replay.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub url: String,
    pub record: DeliveryRecordJson,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last attempts, oldest first (at most 20).
    pub attempt_log: Vec<AttemptJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryRecordJson {
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptJson {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl From<WebhookDelivery> for DeliveryJson {
    fn from(delivery: WebhookDelivery) -> Self {
        DeliveryJson {
            id: format!("whd_{}", delivery.id),
            webhook_id: delivery.webhook_id,
            event_type: delivery.event.as_str().to_string(),
            url: delivery.url,
            record: DeliveryRecordJson {
                kind: delivery.record.kind.as_str().to_string(),
                id: kontor_engine::records::display_id(delivery.record),
            },
            state: delivery.state.as_str().to_string(),
            attempts: delivery.attempts,
            created_at: delivery.created_at,
            next_attempt_at: (delivery.state == DeliveryState::Pending)
                .then_some(delivery.next_attempt_at),
            delivered_at: delivery.delivered_at,
            attempt_log: delivery
                .log
                .into_iter()
                .map(|attempt| AttemptJson {
                    at: attempt.at,
                    status: attempt.status,
                    error: attempt.error,
                    duration_ms: attempt.duration_ms,
                })
                .collect(),
        }
    }
}

/// The webhook deliveries, newest first: what was delivered, what waits and why.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "webhooks", params(DeliveryQuery),
    responses((status = 200, body = ListJson<DeliveryJson>), (status = 400, body = ErrorJson)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<ListJson<DeliveryJson>>, ApiError> {
    let wanted = match query.state.as_deref() {
        None => None,
        Some(text) => Some(DeliveryState::parse(text).ok_or_else(|| {
            ApiError::bad_request("invalid", "state", "must be pending, delivered or failed")
        })?),
    };
    let list = state
        .run(move |engine| {
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.list_webhook_deliveries(wanted, request)?;
            ListJson::from_page(page, |delivery| Ok(DeliveryJson::from(delivery)))
        })
        .await?;
    Ok(Json(list))
}

/// Sends a delivery again (same `webhook-id`, same body), whatever its state.
#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/replay", tag = "webhooks",
    params(("id" = String, Path, description = "a delivery id, e.g. whd_12")),
    responses((status = 202, body = DeliveryJson), (status = 404, body = ErrorJson)))]
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<(axum::http::StatusCode, Json<DeliveryJson>), ApiError> {
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let _: NoFields = super::extract::parse_json(&bytes)?;
    }
    let number: u64 = parse_id(
        id.strip_prefix("whd_").unwrap_or("not a delivery id"),
        "webhook delivery",
        None,
    )
    .map_err(|_| ApiError::not_found("webhook delivery", &id))?;
    let delivery = state
        .run(move |engine| engine.replay_webhook_delivery(number))
        .await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(delivery.into())))
}

/// The body of an action that takes no fields: empty, or `{}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}
