//! The JSON shapes of documents, quotes, orders, invoices and subscriptions
//! (CONTRACT.md section 3), converted by hand from the engine's records.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use kontor_engine::model::RecordRef;
use kontor_engine::records::commercial::{Line, LineInput};
use kontor_engine::records::document::{Document, FieldInput, Signer};
use kontor_engine::records::invoice::Invoice;
use kontor_engine::records::order::Order;
use kontor_engine::records::quote::Quote;
use kontor_engine::records::subscription::{Module, Subscription};
use kontor_engine::records::RecordType;
use kontor_engine::Engine;

/// What every record carries, flattened into each kind's JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommonJson {
    pub id: String,
    pub company_id: String,
    pub contact_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The address whose mail threads into this record.
    pub reply_to: String,
}

fn common<R: RecordType>(engine: &Engine, record: &R) -> CommonJson {
    let head = record.head();
    CommonJson {
        id: kontor_engine::records::display_id(head.record),
        company_id: head.company_id.map(|id| id.to_string()).unwrap_or_default(),
        contact_id: head.contact_id.map(|id| id.to_string()).unwrap_or_default(),
        assignee_id: head.assignee_id.map(|id| id.to_string()),
        status: head.status,
        created_at: head.created_at,
        updated_at: head.updated_at,
        reply_to: engine.reply_address_of(head.record),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineJson {
    pub description: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

impl From<&Line> for LineJson {
    fn from(line: &Line) -> Self {
        LineJson {
            description: line.description.clone(),
            quantity: i64::from(line.quantity),
            unit_price_cents: line.unit_price_cents,
        }
    }
}

impl From<LineJson> for LineInput {
    fn from(line: LineJson) -> Self {
        LineInput {
            description: line.description,
            quantity: line.quantity,
            unit_price_cents: line.unit_price_cents,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldJson {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
}

impl From<FieldJson> for FieldInput {
    fn from(field: FieldJson) -> Self {
        FieldInput {
            name: field.name,
            label: field.label,
            field_type: field.field_type,
            required: field.required,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignerJson {
    pub name: String,
    pub email: String,
    pub ip: String,
    pub user_agent: String,
}

impl From<&Signer> for SignerJson {
    fn from(signer: &Signer) -> Self {
        SignerJson {
            name: signer.name.clone(),
            email: signer.email.clone(),
            ip: signer.ip.clone(),
            user_agent: signer.user_agent.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDocumentJson {
    pub title: String,
    pub company_id: String,
    pub signer_contact_id: String,
    pub body_html: String,
    pub fields: Vec<FieldJson>,
    pub valid_until: Option<String>,
    pub staff_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentJson {
    #[serde(flatten)]
    pub common: CommonJson,
    pub title: String,
    pub body_html: String,
    pub fields: Vec<FieldJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl DocumentJson {
    pub fn new(engine: &Engine, document: &Document) -> Self {
        let signed = document.signed_at.is_some();
        DocumentJson {
            common: common(engine, document),
            title: document.title.clone(),
            body_html: document.body_html.clone(),
            fields: document
                .fields
                .iter()
                .map(|field| FieldJson {
                    name: field.name.clone(),
                    label: field.label.clone(),
                    field_type: field.field_type.as_str().to_string(),
                    required: field.required,
                })
                .collect(),
            valid_until: document.valid_until,
            sent_at: document.sent_at,
            // Draft values are the signer's own until they sign.
            values: signed.then(|| document.values.clone()),
            signed_at: document.signed_at,
            signer: document.signer.as_ref().map(SignerJson::from),
            sha256: document.sha256.clone(),
            cancel_reason: document.cancel_reason.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuoteJson {
    pub company_id: String,
    pub contact_id: String,
    pub title: String,
    pub lines: Vec<LineJson>,
    pub currency: String,
    pub valid_until: String,
    pub staff_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteJson {
    #[serde(flatten)]
    pub common: CommonJson,
    pub title: String,
    pub lines: Vec<LineJson>,
    pub currency: String,
    pub total_cents: i64,
    pub valid_until: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl QuoteJson {
    pub fn new(engine: &Engine, quote: &Quote) -> Self {
        QuoteJson {
            common: common(engine, quote),
            title: quote.title.clone(),
            lines: quote.lines.iter().map(LineJson::from).collect(),
            currency: quote.currency.clone(),
            total_cents: quote.total_cents,
            valid_until: quote.valid_until,
            staff_id: quote.assignee_id.map(|id| id.to_string()),
            sent_at: quote.sent_at,
            signed_by: quote.signed_by.clone(),
            signed_at: quote.signed_at,
            sha256: quote.sha256.clone(),
            order_id: quote.order_id.map(|id| id.to_string()),
            decline_reason: quote.decline_reason.clone(),
            cancel_reason: quote.cancel_reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderJson {
    #[serde(flatten)]
    pub common: CommonJson,
    pub quote_id: String,
    pub title: String,
    pub lines: Vec<LineJson>,
    pub currency: String,
    pub total_cents: i64,
    pub signed_by: String,
    pub signed_at: DateTime<Utc>,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreed_by: Option<String>,
}

impl OrderJson {
    pub fn new(engine: &Engine, order: &Order) -> Self {
        OrderJson {
            common: common(engine, order),
            quote_id: order.quote_id.to_string(),
            title: order.title.clone(),
            lines: order.lines.iter().map(LineJson::from).collect(),
            currency: order.currency.clone(),
            total_cents: order.total_cents,
            signed_by: order.signed_by.clone(),
            signed_at: order.signed_at,
            sha256: order.sha256.clone(),
            cancel_reason: order.cancel_reason.clone(),
            agreed_by: order.agreed_by.map(|id| id.to_string()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrderJson {
    pub reason: String,
    pub agreed_by: String,
    pub staff_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvoiceJson {
    pub company_id: String,
    pub contact_id: String,
    pub number: String,
    pub order_id: Option<String>,
    pub lines: Vec<LineJson>,
    pub currency: String,
    pub due_date: String,
    pub staff_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceJson {
    #[serde(flatten)]
    pub common: CommonJson,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub lines: Vec<LineJson>,
    pub currency: String,
    pub total_cents: i64,
    pub issued_on: NaiveDate,
    pub due_date: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
}

impl InvoiceJson {
    pub fn new(engine: &Engine, invoice: &Invoice) -> Self {
        InvoiceJson {
            common: common(engine, invoice),
            number: invoice.number.clone(),
            order_id: invoice.order_id.map(|id| id.to_string()),
            lines: invoice.lines.iter().map(LineJson::from).collect(),
            currency: invoice.currency.clone(),
            total_cents: invoice.total_cents,
            issued_on: invoice.issued_on,
            due_date: invoice.due_date,
            paid_at: invoice.paid_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceStatusJson {
    pub status: String,
    pub staff_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleJson {
    pub code: String,
    pub name: String,
    pub components: Vec<String>,
}

impl From<ModuleJson> for Module {
    fn from(module: ModuleJson) -> Self {
        Module {
            code: module.code,
            name: module.name,
            components: module.components,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscriptionJson {
    pub company_id: String,
    pub contact_id: String,
    pub plan: String,
    pub modules: Vec<ModuleJson>,
    pub started_on: String,
    pub renews_on: String,
    pub staff_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceModulesJson {
    pub modules: Vec<ModuleJson>,
    pub staff_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionStatusJson {
    pub status: String,
    pub staff_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionJson {
    #[serde(flatten)]
    pub common: CommonJson,
    pub plan: String,
    pub modules: Vec<ModuleJson>,
    pub started_on: NaiveDate,
    pub renews_on: NaiveDate,
}

impl SubscriptionJson {
    pub fn new(engine: &Engine, subscription: &Subscription) -> Self {
        SubscriptionJson {
            common: common(engine, subscription),
            plan: subscription.plan.clone(),
            modules: subscription
                .modules
                .iter()
                .map(|module| ModuleJson {
                    code: module.code.clone(),
                    name: module.name.clone(),
                    components: module.components.clone(),
                })
                .collect(),
            started_on: subscription.started_on,
            renews_on: subscription.renews_on,
        }
    }
}

/// `{reason, staff_id}` of a document's cancel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelJson {
    pub reason: String,
    pub staff_id: String,
}

/// The optional body of an action that takes no fields (`…/send`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendJson {
    pub staff_id: Option<String>,
}

/// The list filters every record kind shares.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecordListQuery {
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub status: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// The evidence of a signed document: what its `sha256` is computed from, and the
/// record's history chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceJson {
    pub record: String,
    pub sha256: String,
    /// The canonical form: `sha256(canonical_json(inputs))`, with keys sorted and no
    /// whitespace (README: "Checking a signature").
    pub canonical_form: &'static str,
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<serde_json::Value>,
}

impl EvidenceJson {
    /// The one shape of the evidence: the API answers it and the certificate PDF
    /// embeds it.
    pub fn new(
        id: kontor_engine::ids::DocumentId,
        evidence: kontor_engine::records::document::Evidence,
    ) -> Self {
        Self {
            record: id.to_string(),
            sha256: evidence.sha256,
            canonical_form: "sha256 over the inputs as JSON with object keys sorted and no whitespace; each history entry's hash is sha256(prev_hash + that entry without hash and prev_hash in the same form)",
            inputs: evidence.inputs,
            history: evidence.history,
        }
    }
}

/// The record a path names, for errors.
pub fn record_name(record: RecordRef) -> String {
    kontor_engine::records::display_id(record)
}
