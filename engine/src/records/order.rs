//! Orders: made only by accepting a quote (`records::quote`). `confirmed` →
//! `cancelled` only by staff, after both sides agreed; the quote goes back to
//! `cancelled` with the reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::commercial::{self, Line};
use super::document::{check_reason, illegal};
use super::quote::{Quote, QuoteStatus};
use super::{Audience, RecordHead, RecordType};
use crate::error::EngineError;
use crate::ids::{CompanyId, ContactId, OrderId, QuoteId, StaffId};
use crate::links::LinkScope;
use crate::model::*;
use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 2] = [OrderStatus::Confirmed, OrderStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    pub fn display_name(self, locale: Locale) -> &'static str {
        match (locale, self) {
            (Locale::De, OrderStatus::Confirmed) => "Bestätigt",
            (Locale::De, OrderStatus::Cancelled) => "Abgebrochen",
            (Locale::En, OrderStatus::Confirmed) => "Confirmed",
            (Locale::En, OrderStatus::Cancelled) => "Cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub quote_id: QuoteId,
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub title: String,
    pub lines: Vec<Line>,
    pub currency: String,
    pub total_cents: i64,
    pub status: OrderStatus,
    pub assignee_id: Option<StaffId>,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    /// The hash of the signed quote.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// The contact who agreed to the cancellation.
    #[serde(default)]
    pub agreed_by: Option<ContactId>,
}

impl RecordType for Order {
    const KIND: RecordKind = RecordKind::Order;
    const LINK_SCOPES: &'static [LinkScope] = &[LinkScope::View];
    const AUDIENCE: Audience = Audience::Permission(|p| p.orders);

    fn webhook_event(event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent> {
        matches!(event, crate::model::Event::Cancelled { .. })
            .then_some(crate::webhooks::WebhookEvent::OrderCancelled)
    }

    fn head(&self) -> RecordHead {
        RecordHead {
            record: RecordRef {
                kind: RecordKind::Order,
                id: self.id.0,
            },
            number: None,
            title: self.title.clone(),
            status: self.status.as_str(),
            company_id: Some(self.company_id),
            contact_id: Some(self.contact_id),
            email: None,
            name: None,
            participants: vec![],
            assignee_id: self.assignee_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    super::status_and_touch!(OrderStatus);

    fn search_text(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|line| line.description.clone())
            .collect()
    }

    fn notice_data(&self, locale: Locale) -> Value {
        json!({
            "title": self.title,
            "status": self.status.display_name(locale),
            "total": commercial::format_money(self.total_cents, &self.currency, locale),
            "signed_by": self.signed_by,
            "lines": commercial::lines_data(&self.lines, &self.currency, locale),
        })
    }
}

impl Engine {
    pub fn order(&self, id: OrderId) -> Result<Order, EngineError> {
        super::require(&mut self.reader(), id.0)
    }

    /// Staff cancel an order both sides agreed to end: the order is `cancelled` and
    /// its quote goes back to the quotes as `cancelled`, both with the reason.
    pub fn cancel_order(
        &self,
        id: OrderId,
        reason: &str,
        agreed_by: ContactId,
        staff_id: StaffId,
    ) -> Result<Order, EngineError> {
        let reason = check_reason(reason)?;
        let author = self.staff_author_of(Some(staff_id))?;
        let agreeing = self
            .contact(agreed_by)
            .map_err(|_| EngineError::not_found_in_field("contact", agreed_by, "agreed_by"))?;
        self.write(|tx| {
            let old: Order = super::require(tx, id.0)?;
            if old.status == OrderStatus::Cancelled {
                return Err(illegal("the order is cancelled already"));
            }
            if agreeing.company_id != old.company_id {
                return Err(EngineError::Rule {
                    code: "not_of_company",
                    message: format!("{} is not a contact of the order's company", agreeing.id),
                });
            }
            let mut order = old.clone();
            order.status = OrderStatus::Cancelled;
            order.cancel_reason = Some(reason.clone());
            order.agreed_by = Some(agreed_by);
            order.updated_at = tx.now;
            self.update_record(tx, &old, &order)?;
            let event = Event::Cancelled {
                reason: Some(reason.clone()),
            };
            self.record_event(tx, &order, author.clone(), event.clone())?;
            let old_quote: Quote = super::require(tx, order.quote_id.0)?;
            let mut quote = old_quote.clone();
            quote.status = QuoteStatus::Cancelled;
            quote.cancel_reason = Some(reason.clone());
            quote.updated_at = tx.now;
            self.update_record(tx, &old_quote, &quote)?;
            self.record_event(tx, &quote, author.clone(), event)?;
            Ok(order)
        })
    }
}
