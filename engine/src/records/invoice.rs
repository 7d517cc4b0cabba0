//! Invoices from the back office: `open` → `paid` | `cancelled`. The number is the
//! back office's and unique in the store.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::commercial::{self, Line, LineInput};
use super::document::illegal;
use super::{Audience, IndexEntry, RecordHead, RecordType};
use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, InvoiceId, OrderId, StaffId};
use crate::links::LinkScope;
use crate::model::*;
use crate::validate;
use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Paid,
    Cancelled,
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 3] = [
        InvoiceStatus::Open,
        InvoiceStatus::Paid,
        InvoiceStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    pub fn display_name(self, locale: Locale) -> &'static str {
        match (locale, self) {
            (Locale::De, InvoiceStatus::Open) => "Offen",
            (Locale::De, InvoiceStatus::Paid) => "Bezahlt",
            (Locale::De, InvoiceStatus::Cancelled) => "Storniert",
            (Locale::En, InvoiceStatus::Open) => "Open",
            (Locale::En, InvoiceStatus::Paid) => "Paid",
            (Locale::En, InvoiceStatus::Cancelled) => "Cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: InvoiceId,
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub number: String,
    pub order_id: Option<OrderId>,
    pub lines: Vec<Line>,
    pub currency: String,
    pub total_cents: i64,
    pub issued_on: NaiveDate,
    pub due_date: NaiveDate,
    pub status: InvoiceStatus,
    pub assignee_id: Option<StaffId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub paid_at: Option<DateTime<Utc>>,
}

impl RecordType for Invoice {
    const KIND: RecordKind = RecordKind::Invoice;
    const LINK_SCOPES: &'static [LinkScope] = &[LinkScope::View];
    const AUDIENCE: Audience = Audience::Permission(|p| p.invoices);

    fn webhook_event(event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent> {
        matches!(event, crate::model::Event::Paid)
            .then_some(crate::webhooks::WebhookEvent::InvoicePaid)
    }

    fn head(&self) -> RecordHead {
        RecordHead {
            record: RecordRef {
                kind: RecordKind::Invoice,
                id: self.id.0,
            },
            number: None,
            title: self.number.clone(),
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

    super::status_and_touch!(InvoiceStatus);

    fn search_text(&self) -> Vec<String> {
        let mut text = vec![self.number.clone()];
        text.extend(self.lines.iter().map(|line| line.description.clone()));
        text
    }

    fn notice_data(&self, locale: Locale) -> Value {
        json!({
            "title": self.number,
            "number": self.number,
            "status": self.status.display_name(locale),
            "total": commercial::format_money(self.total_cents, &self.currency, locale),
            "issued_on": self.issued_on.to_string(),
            "due_date": self.due_date.to_string(),
            "lines": commercial::lines_data(&self.lines, &self.currency, locale),
        })
    }

    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::Status(self.status_code()),
            IndexEntry::Company(self.company_id),
            IndexEntry::Contact(self.contact_id),
            IndexEntry::Unique(self.number.clone()),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub number: String,
    pub order_id: Option<OrderId>,
    pub lines: Vec<LineInput>,
    pub currency: String,
    pub due_date: String,
    pub staff_id: Option<StaffId>,
}

impl Engine {
    /// Issues an invoice; the contact is mailed.
    pub fn create_invoice(&self, new: NewInvoice) -> Result<Invoice, EngineError> {
        let mut errors = FieldErrors::new();
        let number = errors.check("number", validate::line(&new.number));
        if new.number.chars().count() > 64 {
            errors.add("number", "too_long", "at most 64 characters");
        }
        let lines = commercial::check_lines(&mut errors, &new.lines);
        let total_cents = commercial::total_cents(&mut errors, &lines);
        let currency = commercial::check_currency(&mut errors, &new.currency);
        let due_date = commercial::check_date(&mut errors, "due_date", &new.due_date);
        errors.finish()?;
        let contact = self.party_in_company(new.company_id, new.contact_id, "contact_id")?;
        self.staff_exists(new.staff_id, "staff_id")?;
        if let Some(order_id) = new.order_id {
            self.order(order_id)
                .map_err(|_| EngineError::not_found_in_field("order", order_id, "order_id"))?;
        }
        let number = number.unwrap_or_default();
        let due_date = due_date.unwrap_or_default();
        self.write(|tx| {
            if super::find_unique(tx, RecordKind::Invoice, &number)?.is_some() {
                return Err(EngineError::Taken {
                    code: "number_taken",
                    field: "number",
                    message: format!("an invoice numbered {number} exists already"),
                });
            }
            let invoice = Invoice {
                id: InvoiceId(tx.next_id()?),
                company_id: new.company_id,
                contact_id: contact.id,
                number: number.clone(),
                order_id: new.order_id,
                lines: lines.clone(),
                currency: currency.clone(),
                total_cents,
                issued_on: tx.now.date_naive(),
                due_date,
                status: InvoiceStatus::Open,
                assignee_id: new.staff_id,
                created_at: tx.now,
                updated_at: tx.now,
                paid_at: None,
            };
            self.insert_record(tx, &invoice)?;
            self.notify_record_contact(
                tx,
                NoticeKind::InvoiceIssued,
                &invoice,
                LinkScope::View,
                json!({}),
            )?;
            Ok(invoice)
        })
    }

    pub fn invoice(&self, id: InvoiceId) -> Result<Invoice, EngineError> {
        super::require(&mut self.reader(), id.0)
    }

    /// `open` → `paid` | `cancelled`; nothing else.
    pub fn set_invoice_status(
        &self,
        id: InvoiceId,
        to: InvoiceStatus,
        staff_id: StaffId,
    ) -> Result<Invoice, EngineError> {
        let author = self.staff_author_of(Some(staff_id))?;
        self.write(|tx| {
            let old: Invoice = super::require(tx, id.0)?;
            if old.status != InvoiceStatus::Open || to == InvoiceStatus::Open {
                return Err(illegal(&format!(
                    "an invoice that is {} cannot become {}",
                    old.status.as_str(),
                    to.as_str()
                )));
            }
            let mut invoice = old.clone();
            invoice.status = to;
            invoice.updated_at = tx.now;
            if to == InvoiceStatus::Paid {
                invoice.paid_at = Some(tx.now);
            }
            self.update_record(tx, &old, &invoice)?;
            let event = match to {
                InvoiceStatus::Paid => Event::Paid,
                _ => Event::Cancelled { reason: None },
            };
            self.record_event(tx, &invoice, author.clone(), event)?;
            Ok(invoice)
        })
    }
}
