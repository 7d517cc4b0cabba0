//! Quotes: priced lines for a contact. `draft` → `sent` → `accepted` | `expired` |
//! `cancelled`. Accepting signs the quote and makes the order in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::commercial::{self, Line, LineInput};
use super::document::{already_signed, check_reason, illegal};
use super::order::{Order, OrderStatus};
use super::{Audience, RecordHead, RecordType};
use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, OrderId, QuoteId, StaffId};
use crate::links::LinkScope;
use crate::model::*;
use crate::validate;
use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteStatus {
    Draft,
    Sent,
    Accepted,
    Expired,
    Cancelled,
}

impl QuoteStatus {
    pub const ALL: [QuoteStatus; 5] = [
        QuoteStatus::Draft,
        QuoteStatus::Sent,
        QuoteStatus::Accepted,
        QuoteStatus::Expired,
        QuoteStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuoteStatus::Draft => "draft",
            QuoteStatus::Sent => "sent",
            QuoteStatus::Accepted => "accepted",
            QuoteStatus::Expired => "expired",
            QuoteStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    pub fn display_name(self, locale: Locale) -> &'static str {
        match (locale, self) {
            (Locale::De, QuoteStatus::Draft) => "Entwurf",
            (Locale::De, QuoteStatus::Sent) => "Offen",
            (Locale::De, QuoteStatus::Accepted) => "Angenommen",
            (Locale::De, QuoteStatus::Expired) => "Abgelaufen",
            (Locale::De, QuoteStatus::Cancelled) => "Abgebrochen",
            (Locale::En, QuoteStatus::Draft) => "Draft",
            (Locale::En, QuoteStatus::Sent) => "Open",
            (Locale::En, QuoteStatus::Accepted) => "Accepted",
            (Locale::En, QuoteStatus::Expired) => "Expired",
            (Locale::En, QuoteStatus::Cancelled) => "Cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub id: QuoteId,
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub title: String,
    pub lines: Vec<Line>,
    pub currency: String,
    pub total_cents: i64,
    pub valid_until: NaiveDate,
    pub status: QuoteStatus,
    /// The quote's staff member: declines are mailed to them.
    pub assignee_id: Option<StaffId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub signed_by: Option<String>,
    #[serde(default)]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// The signature as drawn (`data:image/png;base64,…`) or typed.
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub signer: Option<super::document::Signer>,
    #[serde(default)]
    pub order_id: Option<OrderId>,
    #[serde(default)]
    pub decline_reason: Option<String>,
    /// Why an accepted quote's order was cancelled by both sides.
    #[serde(default)]
    pub cancel_reason: Option<String>,
}

impl RecordType for Quote {
    const KIND: RecordKind = RecordKind::Quote;
    const LINK_SCOPES: &'static [LinkScope] = &[LinkScope::View, LinkScope::Sign];
    const AUDIENCE: Audience = Audience::Permission(|p| p.quotes);

    fn webhook_event(event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent> {
        match event {
            crate::model::Event::Accepted { .. } => {
                Some(crate::webhooks::WebhookEvent::QuoteAccepted)
            }
            crate::model::Event::Declined { .. } => {
                Some(crate::webhooks::WebhookEvent::QuoteDeclined)
            }
            _ => None,
        }
    }

    fn head(&self) -> RecordHead {
        RecordHead {
            record: RecordRef {
                kind: RecordKind::Quote,
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

    super::status_and_touch!(QuoteStatus);

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
            "valid_until": self.valid_until.to_string(),
            "lines": commercial::lines_data(&self.lines, &self.currency, locale),
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewQuote {
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub title: String,
    pub lines: Vec<LineInput>,
    pub currency: String,
    pub valid_until: String,
    pub staff_id: Option<StaffId>,
}

/// The contact's acceptance, from the quote page's signature dialog.
#[derive(Debug, Clone)]
pub struct AcceptInput {
    pub contact_id: ContactId,
    /// The drawn signature (`data:image/png;base64,…`) or the typed name.
    pub signature: String,
    pub ip: String,
    pub user_agent: String,
}

impl Engine {
    pub fn create_quote(&self, new: NewQuote) -> Result<Quote, EngineError> {
        let mut errors = FieldErrors::new();
        let title = errors.check("title", validate::line(&new.title));
        let lines = commercial::check_lines(&mut errors, &new.lines);
        let total_cents = commercial::total_cents(&mut errors, &lines);
        let currency = commercial::check_currency(&mut errors, &new.currency);
        let valid_until = commercial::check_date(&mut errors, "valid_until", &new.valid_until);
        errors.finish()?;
        let contact = self.party_in_company(new.company_id, new.contact_id, "contact_id")?;
        self.staff_exists(new.staff_id, "staff_id")?;
        let valid_until = valid_until.unwrap_or_default();
        self.write(|tx| {
            let quote = Quote {
                id: QuoteId(tx.next_id()?),
                company_id: new.company_id,
                contact_id: contact.id,
                title: title.clone().unwrap_or_default(),
                lines: lines.clone(),
                currency: currency.clone(),
                total_cents,
                valid_until,
                status: QuoteStatus::Draft,
                assignee_id: new.staff_id,
                created_at: tx.now,
                updated_at: tx.now,
                sent_at: None,
                signed_by: None,
                signed_at: None,
                sha256: None,
                signature: None,
                signer: None,
                order_id: None,
                decline_reason: None,
                cancel_reason: None,
            };
            self.insert_record(tx, &quote)?;
            Ok(quote)
        })
    }

    pub fn quote(&self, id: QuoteId) -> Result<Quote, EngineError> {
        super::require(&mut self.reader(), id.0)
    }

    /// Mails the contact a view link: `draft` → `sent` (a sent quote again).
    pub fn send_quote(&self, id: QuoteId, staff_id: Option<StaffId>) -> Result<Quote, EngineError> {
        let author = self.staff_author_of(staff_id)?;
        self.write(|tx| {
            let old: Quote = super::require(tx, id.0)?;
            match old.status {
                QuoteStatus::Draft | QuoteStatus::Sent => {}
                QuoteStatus::Accepted => return Err(already_signed()),
                QuoteStatus::Expired | QuoteStatus::Cancelled => return Err(closed()),
            }
            if old.valid_until < tx.now.date_naive() {
                return Err(closed());
            }
            let mut quote = old.clone();
            quote.status = QuoteStatus::Sent;
            quote.sent_at = Some(tx.now);
            quote.updated_at = tx.now;
            self.update_record(tx, &old, &quote)?;
            self.record_event(tx, &quote, author.clone(), Event::Sent)?;
            self.notify_record_contact(
                tx,
                NoticeKind::QuoteSent,
                &quote,
                LinkScope::View,
                json!({}),
            )?;
            Ok(quote)
        })
    }

    /// The contact accepts and signs: the quote is `accepted` with its hash, and an
    /// order `confirmed` is made and announced, in one transaction.
    pub fn accept_quote(
        &self,
        id: QuoteId,
        input: AcceptInput,
    ) -> Result<(Quote, Order), EngineError> {
        let signature = input.signature.trim().to_string();
        if signature.is_empty() {
            return Err(EngineError::invalid_field(
                "signature",
                "required",
                "draw your signature or type your name",
            ));
        }
        if signature.len() > 2 * 1024 * 1024 {
            return Err(EngineError::invalid_field(
                "signature",
                "too_long",
                "the signature image is too large",
            ));
        }
        let contact = self.contact(input.contact_id)?;
        self.write(|tx| {
            let old: Quote = super::require(tx, id.0)?;
            self.check_open(tx, &old)?;
            let mut quote = old.clone();
            quote.status = QuoteStatus::Accepted;
            quote.signed_by = Some(contact.name.clone());
            quote.signed_at = Some(tx.now);
            quote.signature = Some(signature.clone());
            quote.updated_at = tx.now;
            let order_id = OrderId(tx.next_id()?);
            quote.order_id = Some(order_id);
            quote.signer = Some(super::document::Signer {
                name: contact.name.clone(),
                email: contact.email.to_string(),
                ip: input.ip.clone(),
                user_agent: input.user_agent.clone(),
            });
            let sha256 = crate::signing::quote_sha256(&quote);
            quote.sha256 = Some(sha256.clone());
            self.update_record(tx, &old, &quote)?;
            let author = Author::Contact {
                id: Some(contact.id),
                name: contact.name.clone(),
                email: Some(contact.email.clone()),
            };
            self.record_event(
                tx,
                &quote,
                author.clone(),
                Event::Accepted {
                    sha256: sha256.clone(),
                    order_id,
                },
            )?;
            let order = Order {
                id: order_id,
                quote_id: quote.id,
                company_id: quote.company_id,
                contact_id: quote.contact_id,
                title: quote.title.clone(),
                lines: quote.lines.clone(),
                currency: quote.currency.clone(),
                total_cents: quote.total_cents,
                status: OrderStatus::Confirmed,
                assignee_id: quote.assignee_id,
                signed_by: contact.name.clone(),
                signed_at: tx.now,
                sha256: sha256.clone(),
                created_at: tx.now,
                updated_at: tx.now,
                cancel_reason: None,
                agreed_by: None,
            };
            self.insert_record(tx, &order)?;
            self.notify_record_contact(
                tx,
                NoticeKind::OrderConfirmed,
                &order,
                LinkScope::View,
                json!({}),
            )?;
            Ok((quote, order))
        })
    }

    /// The contact declines, with a reason: the quote is `cancelled`, the reason
    /// kept, and mailed to the quote's staff member as the customer's feedback.
    pub fn decline_quote(
        &self,
        id: QuoteId,
        contact_id: ContactId,
        reason: &str,
    ) -> Result<Quote, EngineError> {
        let reason = check_reason(reason)?;
        let contact = self.contact(contact_id)?;
        self.write(|tx| {
            let old: Quote = super::require(tx, id.0)?;
            self.check_open(tx, &old)?;
            let mut quote = old.clone();
            quote.status = QuoteStatus::Cancelled;
            quote.decline_reason = Some(reason.clone());
            quote.updated_at = tx.now;
            self.update_record(tx, &old, &quote)?;
            self.record_event(
                tx,
                &quote,
                Author::Contact {
                    id: Some(contact.id),
                    name: contact.name.clone(),
                    email: Some(contact.email.clone()),
                },
                Event::Declined {
                    reason: reason.clone(),
                },
            )?;
            if let Some(staff_id) = quote.assignee_id {
                self.notify_record_staff(
                    tx,
                    NoticeKind::QuoteDeclined,
                    staff_id,
                    &quote,
                    json!({"reason": reason, "contact_name": contact.name}),
                )?;
            }
            Ok(quote)
        })
    }

    /// A sent quote can be answered until its `valid_until` has passed.
    fn check_open(&self, tx: &mut crate::tx::Tx<'_>, quote: &Quote) -> Result<(), EngineError> {
        match quote.status {
            QuoteStatus::Sent if quote.valid_until >= tx.now.date_naive() => Ok(()),
            QuoteStatus::Sent | QuoteStatus::Expired | QuoteStatus::Cancelled => Err(closed()),
            QuoteStatus::Accepted => Err(already_signed()),
            QuoteStatus::Draft => Err(illegal("the quote has not been sent")),
        }
    }

    /// `expire_quotes`: every sent quote past its `valid_until` becomes `expired`,
    /// once (an expired quote is no longer `sent`). Returns how many sent quotes it
    /// looked at and how many expired.
    pub fn expire_quotes(&self) -> Result<(u64, u64), EngineError> {
        let today = self.clock().now().date_naive();
        let sent = super::IndexEntry::Status(QuoteStatus::Sent as u8 + 1);
        let sent_ids: Vec<u64> =
            super::ids_in_index(self.store.as_ref(), RecordKind::Quote, Some(&sent))
                .collect::<Result<_, _>>()?;
        let examined = sent_ids.len() as u64;
        let due: Vec<u64> = sent_ids
            .into_iter()
            .filter(|id| {
                self.quote(QuoteId(*id))
                    .is_ok_and(|quote| quote.valid_until < today)
            })
            .collect();
        let mut expired = 0;
        for id in due {
            let changed = self.write(|tx| {
                let old: Quote = super::require(tx, id)?;
                if old.status != QuoteStatus::Sent || old.valid_until >= tx.now.date_naive() {
                    return Ok(false);
                }
                let mut quote = old.clone();
                quote.status = QuoteStatus::Expired;
                quote.updated_at = tx.now;
                self.update_record(tx, &old, &quote)?;
                self.record_event(tx, &quote, Author::System, Event::Expired)?;
                Ok(true)
            })?;
            expired += u64::from(changed);
        }
        Ok((examined, expired))
    }
}

fn closed() -> EngineError {
    EngineError::Conflict {
        code: "quote_closed",
        message: "the quote is expired or cancelled and can no longer be answered".into(),
    }
}
