//! Webhooks to the back office: the events a change causes, queued as delivery rows in
//! the change's own transaction (the outbox of another channel), and the sender's
//! side of that queue (`due_webhooks`, one durable write per attempt).
//!
//! Events are derived from what every change already writes, not called from each
//! operation: a history entry (a message, a status change, a signature, an
//! acceptance, a decline, a cancellation, a payment) and a ticket's creation are
//! noted by `Tx` as they happen (`note_entry`, `note_created`); at the end of the
//! transaction `queue_noted` writes one row per event and matching subscription. So
//! no door (API, mail, portal, scheduler) can change a record without its event, and
//! the operations carry no webhook code.
//!
//! A row holds the record's stored JSON as the transaction left it (the snapshot;
//! for `message.created` the history entry), never rendered wire JSON: the engine
//! knows no wire types. The sender (`adapters::webhooks`) turns the snapshot into the
//! API's JSON at send time through the same conversion the API uses, so the body is
//! the same on every attempt and the payload shows the record as of the event.
//! Snapshots are engine records, and no record stores a magic link's token.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EngineError;
use crate::model::{EntryBody, HistoryEntry, RecordKind, RecordRef, Ticket};
use crate::notify::backoff;
use crate::ops::outbox::RetryPolicy;
use crate::ops::PageRequest;
use crate::records::document::Document;
use crate::records::invoice::Invoice;
use crate::records::order::Order;
use crate::records::quote::Quote;
use crate::records::subscription::Subscription;
use crate::store::tables::{DueKey, RowId, WEBHOOKS, WEBHOOKS_DUE};
use crate::store::Tree;
use crate::tx::Tx;
use crate::{Engine, Page};

/// The events a back office can subscribe to (CONTRACT.md section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    #[serde(rename = "ticket.created")]
    TicketCreated,
    #[serde(rename = "ticket.status_changed")]
    TicketStatusChanged,
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "document.signed")]
    DocumentSigned,
    #[serde(rename = "quote.accepted")]
    QuoteAccepted,
    #[serde(rename = "quote.declined")]
    QuoteDeclined,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "invoice.paid")]
    InvoicePaid,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 8] = [
        WebhookEvent::TicketCreated,
        WebhookEvent::TicketStatusChanged,
        WebhookEvent::MessageCreated,
        WebhookEvent::DocumentSigned,
        WebhookEvent::QuoteAccepted,
        WebhookEvent::QuoteDeclined,
        WebhookEvent::OrderCancelled,
        WebhookEvent::InvoicePaid,
    ];

    /// The event's `type`, as the payload and the config name it.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::TicketCreated => "ticket.created",
            WebhookEvent::TicketStatusChanged => "ticket.status_changed",
            WebhookEvent::MessageCreated => "message.created",
            WebhookEvent::DocumentSigned => "document.signed",
            WebhookEvent::QuoteAccepted => "quote.accepted",
            WebhookEvent::QuoteDeclined => "quote.declined",
            WebhookEvent::OrderCancelled => "order.cancelled",
            WebhookEvent::InvoicePaid => "invoice.paid",
        }
    }

    pub fn parse(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == name)
    }

    /// The event a history entry on `record` announces, if any: a message on
    /// every kind, other events as the record's kind says.
    fn of_entry(record: RecordRef, body: &EntryBody) -> Option<WebhookEvent> {
        match body {
            EntryBody::Message { .. } => Some(WebhookEvent::MessageCreated),
            EntryBody::Event(event) => {
                crate::records::spec(record.kind).and_then(|spec| spec.webhook_event(event))
            }
            _ => None,
        }
    }
}

/// One `[[webhooks]]` entry as the engine needs it: where, and which events. The
/// secret stays with the sender, which signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    pub url: String,
    /// The events sent there; empty means every event (`["*"]` in the config).
    pub events: Vec<WebhookEvent>,
}

impl WebhookSubscription {
    fn wants(&self, event: WebhookEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Out of attempts, or its endpoint is no longer configured; a replay sends it again.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

/// One attempt at a delivery, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; `None` when no answer came (refused, timeout).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// How many attempts a delivery keeps in its log (the count goes on).
pub const ATTEMPT_LOG_LEN: usize = 20;

/// One event for one endpoint: the stored row of `Tree::Webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: u64,
    /// The `webhook-id` header: the same on every attempt and replay, and unique
    /// beyond this data dir (a random part), so receivers can de-duplicate by it.
    pub webhook_id: String,
    pub event: WebhookEvent,
    pub url: String,
    pub record: RecordRef,
    /// The record as stored at the end of the change (for `message.created`, the
    /// history entry); see [`WebhookDelivery::subject`].
    pub snapshot: Value,
    /// When the change happened: the payload's `timestamp`.
    pub created_at: DateTime<Utc>,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(default)]
    pub log: Vec<DeliveryAttempt>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// What a delivery is about, typed, for the sender to render as the API does.
#[derive(Debug, Clone)]
pub enum WebhookSubject {
    Ticket(Box<Ticket>),
    Document(Box<Document>),
    Quote(Box<Quote>),
    Order(Box<Order>),
    Invoice(Box<Invoice>),
    Subscription(Box<Subscription>),
    Message(Box<HistoryEntry>),
}

impl WebhookDelivery {
    /// The snapshot as the engine type it was stored from.
    pub fn subject(&self) -> Result<WebhookSubject, EngineError> {
        let snapshot = self.snapshot.clone();
        let corrupt = |error: serde_json::Error| {
            EngineError::Store(crate::store::StoreError::Corrupt {
                tree: Tree::Webhooks.name(),
                reason: format!("delivery {}: {error}", self.id),
            })
        };
        if self.event == WebhookEvent::MessageCreated {
            return serde_json::from_value(snapshot)
                .map(|entry| WebhookSubject::Message(Box::new(entry)))
                .map_err(corrupt);
        }
        let subject = match self.record.kind {
            RecordKind::Ticket => serde_json::from_value(snapshot)
                .map(|record| WebhookSubject::Ticket(Box::new(record))),
            RecordKind::Document => serde_json::from_value(snapshot)
                .map(|record| WebhookSubject::Document(Box::new(record))),
            RecordKind::Quote => serde_json::from_value(snapshot)
                .map(|record| WebhookSubject::Quote(Box::new(record))),
            RecordKind::Order => serde_json::from_value(snapshot)
                .map(|record| WebhookSubject::Order(Box::new(record))),
            RecordKind::Invoice => serde_json::from_value(snapshot)
                .map(|record| WebhookSubject::Invoice(Box::new(record))),
            RecordKind::Subscription => serde_json::from_value(snapshot)
                .map(|record| WebhookSubject::Subscription(Box::new(record))),
            RecordKind::Company => {
                return Err(EngineError::not_found("webhook subject", "company"))
            }
        };
        subject.map_err(corrupt)
    }
}

/// An event noted during a transaction, written by [`queue_noted`] at its end.
#[derive(Debug, Clone)]
pub(crate) struct NotedEvent {
    event: WebhookEvent,
    record: RecordRef,
    entry: Option<HistoryEntry>,
}

/// What one attempt came to, as the sender saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl AttemptOutcome {
    /// Delivered: the receiver answered 2xx.
    pub fn delivered(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// Notes the event a history entry announces (called by `Tx::append_history`).
pub(crate) fn note_entry(noted: &mut Vec<NotedEvent>, entry: &HistoryEntry) {
    if entry.record.kind == RecordKind::Company {
        return;
    }
    if let Some(event) = WebhookEvent::of_entry(entry.record, &entry.body) {
        noted.push(NotedEvent {
            event,
            record: entry.record,
            entry: (event == WebhookEvent::MessageCreated).then(|| entry.clone()),
        });
    }
}

/// Notes that a record was created (called by `Tx::log`), where its kind
/// announces that.
pub(crate) fn note_created(noted: &mut Vec<NotedEvent>, record: RecordRef) {
    if let Some(event) = crate::records::spec(record.kind).and_then(|spec| spec.created_webhook()) {
        noted.push(NotedEvent {
            event,
            record,
            entry: None,
        });
    }
}

/// Writes one delivery row per noted event and subscription that wants it, each
/// with the record as this transaction leaves it. Returns whether any was queued.
pub(crate) fn queue_noted(
    tx: &mut Tx<'_>,
    subscriptions: &[WebhookSubscription],
    noted: Vec<NotedEvent>,
) -> Result<bool, EngineError> {
    let mut queued = false;
    for noted in noted {
        let wanted: Vec<&WebhookSubscription> = subscriptions
            .iter()
            .filter(|subscription| subscription.wants(noted.event))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let snapshot = match &noted.entry {
            Some(entry) => serde_json::to_value(entry).map_err(|error| {
                EngineError::Store(crate::store::StoreError::Backend(error.to_string()))
            })?,
            None => match stored_record(tx, noted.record)? {
                Some(snapshot) => snapshot,
                None => continue,
            },
        };
        for subscription in wanted {
            let id = tx.next_id()?;
            let delivery = WebhookDelivery {
                id,
                webhook_id: format!("msg_{id}_{:016x}", rand::random::<u64>()),
                event: noted.event,
                url: subscription.url.clone(),
                record: noted.record,
                snapshot: snapshot.clone(),
                created_at: tx.now,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: tx.now,
                log: Vec::new(),
                delivered_at: None,
            };
            WEBHOOKS.put(tx, &RowId(id), &delivery)?;
            let due = DueKey::new(tx.now, id);
            WEBHOOKS_DUE.insert(tx, &due)?;
            queued = true;
        }
    }
    Ok(queued)
}

/// The record's stored JSON inside the transaction; `None` for a kind without one.
fn stored_record(tx: &mut Tx<'_>, record: RecordRef) -> Result<Option<Value>, EngineError> {
    let Some(spec) = crate::records::spec(record.kind) else {
        return Ok(None);
    };
    let (tree, key) = spec.storage(record.id);
    let Some(bytes) = tx.get_raw(tree, &key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|error| {
        EngineError::Store(crate::store::StoreError::Corrupt {
            tree: tree.name(),
            reason: error.to_string(),
        })
    })
}

impl Engine {
    /// Pending deliveries whose next attempt is due, oldest first, at most `limit`.
    pub fn due_webhooks(&self, limit: usize) -> Result<Vec<WebhookDelivery>, EngineError> {
        let now = self.clock().now();
        crate::ops::due_rows(self, WEBHOOKS_DUE, WEBHOOKS, limit, |delivery| {
            delivery.state == DeliveryState::Pending && delivery.next_attempt_at <= now
        })
    }

    /// One delivery by id.
    pub fn webhook_delivery(&self, id: u64) -> Result<Option<WebhookDelivery>, EngineError> {
        WEBHOOKS.get(&mut self.reader(), &RowId(id))
    }

    /// Deliveries, newest first, optionally only those in `state`.
    pub fn list_webhook_deliveries(
        &self,
        state: Option<DeliveryState>,
        request: PageRequest,
    ) -> Result<Page<WebhookDelivery>, EngineError> {
        crate::ops::rows_page(
            self,
            WEBHOOKS,
            |row| state.is_none_or(|wanted| row.state == wanted),
            request,
        )
    }

    /// The webhook sender's wake-up counter: it changes when a change queued a delivery.
    pub fn webhook_signal(&self) -> u64 {
        self.webhook_signal.current()
    }

    /// Records one attempt: delivered on a 2xx, else retried with backoff (for ever
    /// when `policy.max_attempts` is 0, else failed after that many attempts).
    pub fn webhook_attempted(
        &self,
        id: u64,
        outcome: &AttemptOutcome,
        policy: RetryPolicy,
    ) -> Result<DeliveryState, EngineError> {
        self.write(|tx| {
            let Some(mut delivery) = WEBHOOKS.get(tx, &RowId(id))? else {
                return Err(EngineError::not_found("webhook delivery", id));
            };
            if delivery.state != DeliveryState::Pending {
                return Ok(delivery.state);
            }
            WEBHOOKS_DUE.remove(tx, &DueKey::new(delivery.next_attempt_at, id))?;
            delivery.attempts += 1;
            delivery.log.push(DeliveryAttempt {
                at: tx.now,
                status: outcome.status,
                error: outcome
                    .error
                    .as_ref()
                    .map(|e| e.chars().take(500).collect()),
                duration_ms: outcome.duration_ms,
            });
            let overflow = delivery.log.len().saturating_sub(ATTEMPT_LOG_LEN);
            delivery.log.drain(..overflow);
            if outcome.delivered() {
                delivery.state = DeliveryState::Delivered;
                delivery.delivered_at = Some(tx.now);
            } else if policy.max_attempts != 0 && delivery.attempts >= policy.max_attempts {
                delivery.state = DeliveryState::Failed;
            } else {
                let wait: Duration = backoff(delivery.attempts, policy.base, policy.max);
                delivery.next_attempt_at = tx.now + wait;
                WEBHOOKS_DUE.insert(tx, &DueKey::new(delivery.next_attempt_at, id))?;
            }
            WEBHOOKS.put(tx, &RowId(id), &delivery)?;
            Ok(delivery.state)
        })
    }

    /// Fails a delivery whose endpoint is no longer configured (a replay can revive it
    /// once the endpoint is back in the config).
    pub fn webhook_abandoned(&self, id: u64, reason: &str) -> Result<(), EngineError> {
        self.write(|tx| {
            let Some(mut delivery) = WEBHOOKS.get(tx, &RowId(id))? else {
                return Ok(());
            };
            if delivery.state != DeliveryState::Pending {
                return Ok(());
            }
            WEBHOOKS_DUE.remove(tx, &DueKey::new(delivery.next_attempt_at, id))?;
            delivery.state = DeliveryState::Failed;
            delivery.log.push(DeliveryAttempt {
                at: tx.now,
                status: None,
                error: Some(reason.to_string()),
                duration_ms: 0,
            });
            WEBHOOKS.put(tx, &RowId(id), &delivery)
        })
    }

    /// Sends a delivery again, whatever its state: pending and due now, with the same
    /// `webhook-id` and payload.
    pub fn replay_webhook_delivery(&self, id: u64) -> Result<WebhookDelivery, EngineError> {
        let delivery = self.write(|tx| {
            let Some(mut delivery) = WEBHOOKS.get(tx, &RowId(id))? else {
                return Err(EngineError::not_found(
                    "webhook delivery",
                    format!("whd_{id}"),
                ));
            };
            if delivery.state == DeliveryState::Pending {
                WEBHOOKS_DUE.remove(tx, &DueKey::new(delivery.next_attempt_at, id))?;
            }
            delivery.state = DeliveryState::Pending;
            delivery.next_attempt_at = tx.now;
            let due = DueKey::new(tx.now, id);
            WEBHOOKS_DUE.insert(tx, &due)?;
            WEBHOOKS.put(tx, &RowId(id), &delivery)?;
            Ok(delivery)
        })?;
        self.webhook_signal.bump();
        Ok(delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, TicketStatus};
    use crate::ops::parties::NewStaff;
    use crate::ops::tickets::{NewTicket, RequesterInput};
    use crate::EngineConfig;

    fn engine_with(events: Vec<WebhookEvent>) -> Engine {
        Engine::in_memory(EngineConfig {
            webhooks: vec![WebhookSubscription {
                url: "http://erp.example/hook".into(),
                events,
            }],
            ..EngineConfig::default()
        })
    }

    fn ticket(engine: &Engine) -> Ticket {
        engine
            .create_ticket(NewTicket {
                subject: "Kasse startet nicht".into(),
                body: "Bitte helfen.".into(),
                requester: RequesterInput::Email {
                    email: "kim@cafe.example".into(),
                    name: None,
                },
                assignee_id: None,
                channel: Channel::Api,
                attachments: vec![],
                company_id: None,
                origin: None,
                notify: false,
            })
            .unwrap()
    }

    fn types(engine: &Engine) -> Vec<&'static str> {
        let page = engine
            .list_webhook_deliveries(None, PageRequest::first())
            .unwrap();
        let mut types: Vec<&str> = page.items.iter().map(|d| d.event.as_str()).collect();
        types.reverse();
        types
    }

    #[test]
    fn a_change_queues_its_events_in_its_transaction_with_the_record_as_it_left_it() {
        let engine = engine_with(vec![]);
        let created = ticket(&engine);
        assert_eq!(types(&engine), ["ticket.created", "message.created"]);
        let staff = engine
            .create_staff(NewStaff {
                name: "Sam".into(),
                email: "sam@vendor.example".into(),
            })
            .unwrap();
        engine
            .set_ticket_status(created.id, TicketStatus::InProgress, staff.id)
            .unwrap();
        engine
            .set_ticket_status(created.id, TicketStatus::Done, staff.id)
            .unwrap();
        assert_eq!(
            types(&engine),
            [
                "ticket.created",
                "message.created",
                "ticket.status_changed",
                "ticket.status_changed"
            ]
        );
        let page = engine
            .list_webhook_deliveries(None, PageRequest::first())
            .unwrap();
        // Newest first: the second change shows done, the first in progress.
        let statuses: Vec<TicketStatus> = page.items[..2]
            .iter()
            .map(|delivery| match delivery.subject().unwrap() {
                WebhookSubject::Ticket(ticket) => ticket.status,
                other => panic!("not a ticket: {other:?}"),
            })
            .collect();
        assert_eq!(statuses, [TicketStatus::Done, TicketStatus::InProgress]);
        assert!(matches!(
            page.items[2].subject().unwrap(),
            WebhookSubject::Message(_)
        ));
        assert!(matches!(
            page.items[3].subject().unwrap(),
            WebhookSubject::Ticket(_)
        ));
        assert_eq!(engine.due_webhooks(100).unwrap().len(), 4);
    }

    #[test]
    fn attempts_retry_with_backoff_until_a_2xx_and_a_replay_sends_again() {
        let engine = engine_with(vec![WebhookEvent::TicketCreated]);
        ticket(&engine);
        let due = engine.due_webhooks(10).unwrap();
        assert_eq!(due.len(), 1, "only the subscribed event");
        let id = due[0].id;
        let policy = RetryPolicy {
            max_attempts: 0,
            base: Duration::hours(1),
            max: Duration::hours(2),
        };
        let refused = AttemptOutcome {
            status: None,
            error: Some("connection refused".into()),
            duration_ms: 1,
        };
        for _ in 0..3 {
            assert_eq!(
                engine.webhook_attempted(id, &refused, policy).unwrap(),
                DeliveryState::Pending
            );
        }
        assert!(
            engine.due_webhooks(10).unwrap().is_empty(),
            "waits its backoff"
        );
        let delivery = engine.webhook_delivery(id).unwrap().unwrap();
        assert_eq!(delivery.attempts, 3);
        assert_eq!(delivery.log.len(), 3);
        let webhook_id = delivery.webhook_id.clone();

        engine.replay_webhook_delivery(id).unwrap();
        let ok = AttemptOutcome {
            status: Some(204),
            error: None,
            duration_ms: 1,
        };
        assert_eq!(engine.due_webhooks(10).unwrap()[0].webhook_id, webhook_id);
        assert_eq!(
            engine.webhook_attempted(id, &ok, policy).unwrap(),
            DeliveryState::Delivered
        );
        assert!(engine.due_webhooks(10).unwrap().is_empty());
        engine.replay_webhook_delivery(id).unwrap();
        let again = engine.due_webhooks(10).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].webhook_id, webhook_id, "a replay keeps the id");

        let capped = RetryPolicy {
            max_attempts: 5,
            ..policy
        };
        assert_eq!(
            engine.webhook_attempted(id, &refused, capped).unwrap(),
            DeliveryState::Failed
        );
    }

    #[test]
    fn event_names_round_trip_through_parse_and_serde() {
        for event in WebhookEvent::ALL {
            assert_eq!(WebhookEvent::parse(event.as_str()), Some(event));
            let json = serde_json::to_value(event).unwrap();
            assert_eq!(json, Value::String(event.as_str().into()));
        }
        assert_eq!(WebhookEvent::parse("ticket.deleted"), None);
    }

    #[test]
    fn a_subscription_without_events_wants_every_event() {
        let all = WebhookSubscription {
            url: "http://erp.example/hook".into(),
            events: vec![],
        };
        let some = WebhookSubscription {
            url: "http://erp.example/hook".into(),
            events: vec![WebhookEvent::InvoicePaid],
        };
        assert!(WebhookEvent::ALL.iter().all(|event| all.wants(*event)));
        assert!(some.wants(WebhookEvent::InvoicePaid));
        assert!(!some.wants(WebhookEvent::TicketCreated));
    }
}
