//! The JSON shapes of the staff API (CONTRACT.md section 3). Engine types are not
//! wire types: requests are converted by hand into engine commands, and records into
//! these responses, so that a change inside the engine never changes the contract.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use kontor_engine::model::{self, Author, EntryBody, Event, HistoryEntry};
use kontor_engine::{Engine, EngineError, Page};

/// Every list answers this shape; `page` counts from 1.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListJson<T: ToSchema> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

impl<T: ToSchema> ListJson<T> {
    pub fn from_page<U>(
        page: Page<U>,
        mut convert: impl FnMut(U) -> Result<T, EngineError>,
    ) -> Result<Self, EngineError> {
        Ok(ListJson {
            items: page
                .items
                .into_iter()
                .map(&mut convert)
                .collect::<Result<_, _>>()?,
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        })
    }
}

/// `page` and `per_page` of every list.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CompanyListQuery {
    pub kind: Option<String>,
    pub reseller_id: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContactListQuery {
    pub company_id: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompanyJson {
    pub name: String,
    pub kind: CompanyKindJson,
    pub reseller_id: Option<String>,
    #[serde(default)]
    pub onretail_instance_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompanyKindJson {
    Customer,
    Reseller,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyJson {
    pub id: String,
    pub name: String,
    pub kind: CompanyKindJson,
    pub reseller_id: Option<String>,
    pub onretail_instance_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<model::Company> for CompanyJson {
    fn from(company: model::Company) -> Self {
        CompanyJson {
            id: company.id.to_string(),
            name: company.name,
            kind: match company.kind {
                model::CompanyKind::Customer => CompanyKindJson::Customer,
                model::CompanyKind::Reseller => CompanyKindJson::Reseller,
            },
            reseller_id: company.reseller_id.map(|id| id.to_string()),
            onretail_instance_ids: company.onretail_instance_ids,
            created_at: company.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactJson {
    pub company_id: String,
    pub name: String,
    pub email: String,
    pub role: RoleJson,
    pub locale: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleJson {
    Manager,
    Member,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct PermissionsJson {
    pub portal: bool,
    pub quotes: bool,
    pub orders: bool,
    pub invoices: bool,
    pub subscriptions: bool,
}

impl From<model::Permissions> for PermissionsJson {
    fn from(p: model::Permissions) -> Self {
        PermissionsJson {
            portal: p.portal,
            quotes: p.quotes,
            orders: p.orders,
            invoices: p.invoices,
            subscriptions: p.subscriptions,
        }
    }
}

impl From<PermissionsJson> for model::Permissions {
    fn from(p: PermissionsJson) -> Self {
        model::Permissions {
            portal: p.portal,
            quotes: p.quotes,
            orders: p.orders,
            invoices: p.invoices,
            subscriptions: p.subscriptions,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPermissionsJson {
    pub portal: bool,
    pub quotes: bool,
    pub orders: bool,
    pub invoices: bool,
    pub subscriptions: bool,
    /// A manager contact of the same company.
    pub requested_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactJson {
    pub id: String,
    pub company_id: String,
    pub name: String,
    pub email: String,
    pub role: RoleJson,
    pub locale: String,
    pub permissions: PermissionsJson,
    pub created_at: DateTime<Utc>,
}

impl From<model::Contact> for ContactJson {
    fn from(contact: model::Contact) -> Self {
        ContactJson {
            id: contact.id.to_string(),
            company_id: contact.company_id.to_string(),
            name: contact.name,
            email: contact.email.to_string(),
            role: match contact.role {
                model::ContactRole::Manager => RoleJson::Manager,
                model::ContactRole::Member => RoleJson::Member,
            },
            locale: contact.locale.as_str().to_string(),
            permissions: contact.permissions.into(),
            created_at: contact.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaffJson {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffJson {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl From<model::Staff> for StaffJson {
    fn from(staff: model::Staff) -> Self {
        StaffJson {
            id: staff.id.to_string(),
            name: staff.name,
            email: staff.email.to_string(),
            created_at: staff.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicketJson {
    pub subject: String,
    pub body: String,
    /// The requester as a known contact; or give `requester_email`.
    pub contact_id: Option<String>,
    pub requester_email: Option<String>,
    pub requester_name: Option<String>,
    pub assignee_id: Option<String>,
    /// Send the requester the confirmation mail (default true).
    pub notify: Option<bool>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusJson {
    New,
    Backlog,
    WaitingOnCustomer,
    InProgress,
    Done,
}

impl From<model::TicketStatus> for StatusJson {
    fn from(status: model::TicketStatus) -> Self {
        match status {
            model::TicketStatus::New => StatusJson::New,
            model::TicketStatus::Backlog => StatusJson::Backlog,
            model::TicketStatus::WaitingOnCustomer => StatusJson::WaitingOnCustomer,
            model::TicketStatus::InProgress => StatusJson::InProgress,
            model::TicketStatus::Done => StatusJson::Done,
        }
    }
}

impl From<StatusJson> for model::TicketStatus {
    fn from(status: StatusJson) -> Self {
        match status {
            StatusJson::New => model::TicketStatus::New,
            StatusJson::Backlog => model::TicketStatus::Backlog,
            StatusJson::WaitingOnCustomer => model::TicketStatus::WaitingOnCustomer,
            StatusJson::InProgress => model::TicketStatus::InProgress,
            StatusJson::Done => model::TicketStatus::Done,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelJson {
    Email,
    Webhook,
    Portal,
    Api,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequesterJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketJson {
    pub id: String,
    pub number: u64,
    pub subject: String,
    pub status: StatusJson,
    pub channel: ChannelJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    pub requester: RequesterJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What outbound mail carries in its subject, e.g. `[#42]`.
    pub subject_tag: String,
    /// The address whose mail threads into this ticket.
    pub reply_to: String,
    /// For tickets filed by the point of sale: instance, category, phone, context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginJson>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OriginJson {
    pub onretail_instance_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporter_phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Value>,
}

impl TicketJson {
    pub fn new(engine: &Engine, ticket: model::Ticket) -> Self {
        TicketJson {
            subject_tag: ticket.subject_tag(),
            reply_to: engine.reply_address(&ticket),
            id: ticket.id.to_string(),
            number: ticket.number,
            subject: ticket.subject,
            status: ticket.status.into(),
            channel: match ticket.channel {
                model::Channel::Email => ChannelJson::Email,
                model::Channel::Webhook => ChannelJson::Webhook,
                model::Channel::Portal => ChannelJson::Portal,
                model::Channel::Api => ChannelJson::Api,
            },
            company_id: ticket.company_id.map(|id| id.to_string()),
            requester: RequesterJson {
                contact_id: ticket.requester.contact_id.map(|id| id.to_string()),
                name: ticket.requester.name,
                email: ticket.requester.email.map(|e| e.to_string()),
            },
            assignee_id: ticket.assignee_id.map(|id| id.to_string()),
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
            origin: ticket.origin.map(|origin| OriginJson {
                onretail_instance_id: origin.onretail_instance_id,
                category: origin.category,
                reporter_phone: origin.reporter_phone,
                context: origin.context,
            }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketListQuery {
    pub status: Option<String>,
    pub company_id: Option<String>,
    pub contact_id: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageJson {
    pub body: String,
    pub staff_id: String,
    pub visibility: VisibilityJson,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisibilityJson {
    Public,
    Internal,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStatusJson {
    pub status: StatusJson,
    pub staff_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignJson {
    pub staff_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTimeEntryJson {
    pub staff_id: String,
    pub minutes: i64,
    pub note: String,
    /// The day worked (YYYY-MM-DD); today when absent.
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorJson {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentJson {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// An event of a history; `from` and `to` are statuses, staff ids or permission
/// objects depending on `type`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventJson {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// What a `signed` or `accepted` event's signature binds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The order an `accepted` quote made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// What `modules_changed` added and removed (`CODE`, `CODE/component`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItemJson {
    pub id: String,
    pub at: DateTime<Utc>,
    /// `message`, `event` or `time_entry`.
    pub kind: &'static str,
    pub author: AuthorJson,
    pub visibility: VisibilityJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    pub attachments: Vec<AttachmentJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threaded_by: Option<String>,
    /// The tamper-evident chain: the previous entry's hash (64 zeros for the first)
    /// and this entry's.
    pub prev_hash: String,
    pub hash: String,
}

impl HistoryItemJson {
    pub fn new(engine: &Engine, entry: HistoryEntry) -> Result<Self, EngineError> {
        let author = match entry.author {
            Author::Contact { id, name, email } => AuthorJson {
                kind: "contact",
                id: id.map(|id| id.to_string()),
                name,
                email: email.map(|e| e.to_string()),
            },
            Author::Staff { id, name, email } => AuthorJson {
                kind: "staff",
                id: Some(id.to_string()),
                name,
                email: Some(email.to_string()),
            },
            Author::System => AuthorJson {
                kind: "system",
                id: None,
                name: "Kontor".into(),
                email: None,
            },
        };
        let mut item = HistoryItemJson {
            id: entry.id.to_string(),
            at: entry.at,
            kind: "message",
            author,
            visibility: match entry.visibility {
                model::Visibility::Public => VisibilityJson::Public,
                model::Visibility::Internal => VisibilityJson::Internal,
            },
            body_text: None,
            attachments: vec![],
            event: None,
            minutes: None,
            date: None,
            threaded_by: None,
            prev_hash: entry.prev_hash,
            hash: entry.hash,
        };
        match entry.body {
            EntryBody::Message {
                text,
                attachments,
                threaded_by,
            } => {
                item.body_text = Some(text);
                item.threaded_by = threaded_by;
                for id in attachments {
                    let meta = engine.attachment(id)?;
                    item.attachments.push(AttachmentJson {
                        id: meta.id.to_string(),
                        filename: meta.filename,
                        content_type: meta.content_type,
                        size: meta.size,
                    });
                }
            }
            EntryBody::TimeEntry {
                minutes,
                note,
                date,
            } => {
                item.kind = "time_entry";
                item.minutes = Some(minutes);
                item.body_text = Some(note);
                item.date = Some(date);
            }
            EntryBody::Event(event) => {
                item.kind = "event";
                item.event = Some(event_json(event));
            }
        }
        Ok(item)
    }
}

fn event_json(event: Event) -> EventJson {
    let mut json = EventJson {
        event_type: "",
        from: None,
        to: None,
        contact_id: None,
        requested_by: None,
        address: None,
        reason: None,
        ticket_id: None,
        number: None,
        sha256: None,
        order_id: None,
        added: None,
        removed: None,
    };
    let value = |v: String| Some(serde_json::Value::String(v));
    match event {
        Event::StatusChanged { from, to } => {
            json.event_type = "status_changed";
            json.from = value(from.as_str().into());
            json.to = value(to.as_str().into());
        }
        Event::Assigned { from, to } => {
            json.event_type = "assigned";
            json.from = from.and_then(|id| value(id.to_string()));
            json.to = value(to.to_string());
        }
        Event::Reopened => json.event_type = "reopened",
        Event::PermissionsChanged {
            contact_id,
            requested_by,
            from,
            to,
        } => {
            json.event_type = "permissions_changed";
            json.contact_id = Some(contact_id.to_string());
            json.requested_by = Some(requested_by.to_string());
            json.from = serde_json::to_value(PermissionsJson::from(from)).ok();
            json.to = serde_json::to_value(PermissionsJson::from(to)).ok();
        }
        Event::Bounced { address } => {
            json.event_type = "bounced";
            json.address = Some(address.to_string());
        }
        Event::NotificationFailed { address, reason } => {
            json.event_type = "notification_failed";
            json.address = Some(address.to_string());
            json.reason = Some(reason);
        }
        Event::Linked { ticket_id, number } => {
            json.event_type = "linked";
            json.ticket_id = Some(ticket_id.to_string());
            json.number = Some(number);
        }
        Event::Reminded => json.event_type = "reminded",
        Event::Sent => json.event_type = "sent",
        Event::Signed { sha256 } => {
            json.event_type = "signed";
            json.sha256 = Some(sha256);
        }
        Event::Accepted { sha256, order_id } => {
            json.event_type = "accepted";
            json.sha256 = Some(sha256);
            json.order_id = Some(order_id.to_string());
        }
        Event::Declined { reason } => {
            json.event_type = "declined";
            json.reason = Some(reason);
        }
        Event::Expired => json.event_type = "expired",
        Event::Cancelled { reason } => {
            json.event_type = "cancelled";
            json.reason = reason;
        }
        Event::Paid => json.event_type = "paid",
        Event::ModulesChanged { added, removed } => {
            json.event_type = "modules_changed";
            json.added = Some(added);
            json.removed = Some(removed);
        }
    }
    json
}

/// The contract's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorJson {
    pub error: ErrorDetailJson,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetailJson {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, String>,
}

/// `POST /api/v1/links`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLinkJson {
    /// `ticket`, `document`, `quote`, `order`, `invoice` or `subscription`.
    pub record: String,
    pub id: String,
    /// The contact the link is for; its locale picks the page language.
    pub contact_id: Option<String>,
    /// `view` or `sign`.
    pub scope: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkJson {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/links/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeLinksJson {
    pub record: String,
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedLinksJson {
    pub record: String,
    pub id: String,
    /// Links made under an older epoch answer 403.
    pub link_epoch: u64,
}

/// `GET /api/v1/outbox?state=`: `pending`, `sent`, `failed` or `suppressed`.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    pub state: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// One notification of the outbox (without its body).
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxItemJson {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_number: Option<u64>,
    pub state: String,
    pub attempts: u32,
    pub automatic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<model::OutboxRow> for OutboxItemJson {
    fn from(row: model::OutboxRow) -> Self {
        OutboxItemJson {
            id: format!("ob_{}", row.id),
            kind: row.kind.as_str().to_string(),
            to: row.to.to_string(),
            subject: row.subject,
            message_id: row.message_id,
            ticket_number: row.ticket_number,
            state: outbox_state_name(row.state).to_string(),
            attempts: row.attempts,
            automatic: row.automatic,
            last_error: row.last_error,
            created_at: row.created_at,
            next_attempt_at: row.next_attempt_at,
            finished_at: row.finished_at,
        }
    }
}

/// The wire name of an outbox state.
pub fn outbox_state_name(state: model::OutboxState) -> &'static str {
    match state {
        model::OutboxState::Pending => "pending",
        model::OutboxState::Sent => "sent",
        model::OutboxState::Failed => "failed",
        model::OutboxState::Suppressed => "suppressed",
    }
}

/// What became of an inbound message (every door answers this).
#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeResultJson {
    /// `created`, `appended`, `reopened`, `duplicate`, `auto_reply`, `bounce`,
    /// `list`, `loop` or `rejected`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// Set for `rejected`: the message's place in the quarantine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<String>,
}

impl From<kontor_engine::intake::IntakeResult> for IntakeResultJson {
    fn from(result: kontor_engine::intake::IntakeResult) -> Self {
        IntakeResultJson {
            outcome: result.outcome.as_str(),
            ticket_id: result.ticket_id.map(|id| id.to_string()),
            number: result.number,
            quarantine_id: result.quarantine_id.map(|id| id.to_string()),
        }
    }
}

/// A message waiting in quarantine.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinedMailJson {
    pub id: String,
    pub received_at: DateTime<Utc>,
    /// Why it could not be interpreted.
    pub reason: String,
    pub size: u64,
    /// SHA-256 of the raw message as received.
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl From<kontor_engine::intake::QuarantinedMail> for QuarantinedMailJson {
    fn from(mail: kontor_engine::intake::QuarantinedMail) -> Self {
        QuarantinedMailJson {
            id: mail.id.to_string(),
            received_at: mail.received_at,
            reason: mail.reason,
            size: mail.size,
            sha256: mail.sha256,
            from: mail.from,
            subject: mail.subject,
        }
    }
}
