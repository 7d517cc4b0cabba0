//! The records Kontor keeps and their states. These are the stored shapes too: the
//! codec (`store::codec`) is JSON, and every field added later carries
//! `#[serde(default)]`, so records written by an older build still read.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::*;
use crate::validate::EmailAddress;

/// A customer company, or a reseller that sells to customer companies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    pub kind: CompanyKind,
    /// Set on a customer that buys through a reseller.
    pub reseller_id: Option<CompanyId>,
    /// The onRetail point-of-sale instances this company owns.
    #[serde(default)]
    pub onretail_instance_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyKind {
    Customer,
    Reseller,
}

/// A person at a company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub company_id: CompanyId,
    pub name: String,
    pub email: EmailAddress,
    pub role: ContactRole,
    pub locale: Locale,
    pub permissions: Permissions,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    Manager,
    Member,
}

/// The languages Kontor writes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    De,
    En,
}

impl Locale {
    pub fn parse(input: &str) -> Option<Self> {
        match input.trim().to_ascii_lowercase().as_str() {
            "de" => Some(Locale::De),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::De => "de",
            Locale::En => "en",
        }
    }
}

/// What a contact may see in the portal beyond its own tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub portal: bool,
    pub quotes: bool,
    pub orders: bool,
    pub invoices: bool,
    pub subscriptions: bool,
}

impl Permissions {
    /// What a new contact starts with: the portal, nothing commercial.
    pub fn initial() -> Self {
        Permissions {
            portal: true,
            ..Permissions::default()
        }
    }

    /// True when any of the commercial areas is granted.
    pub fn any_commercial(&self) -> bool {
        self.quotes || self.orders || self.invoices || self.subscriptions
    }
}

/// A member of the vendor's support staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staff {
    pub id: StaffId,
    pub name: String,
    pub email: EmailAddress,
    pub created_at: DateTime<Utc>,
}

/// The five ticket states of CONTRACT.md section 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Backlog,
    WaitingOnCustomer,
    InProgress,
    Done,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        TicketStatus::New,
        TicketStatus::Backlog,
        TicketStatus::WaitingOnCustomer,
        TicketStatus::InProgress,
        TicketStatus::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Backlog => "backlog",
            TicketStatus::WaitingOnCustomer => "waiting_on_customer",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::Done => "done",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// The one-byte code used in index keys; stable across releases.
    pub fn code(self) -> u8 {
        match self {
            TicketStatus::New => 1,
            TicketStatus::Backlog => 2,
            TicketStatus::WaitingOnCustomer => 3,
            TicketStatus::InProgress => 4,
            TicketStatus::Done => 5,
        }
    }

    /// The name customers and staff read.
    pub fn display_name(self, locale: Locale) -> &'static str {
        match (locale, self) {
            (Locale::De, TicketStatus::New) => "Neu",
            (Locale::De, TicketStatus::Backlog) => "Zur Bearbeitung - Backlog",
            (Locale::De, TicketStatus::WaitingOnCustomer) => "Rückfrage an den Kunden",
            (Locale::De, TicketStatus::InProgress) => "Bearbeitung",
            (Locale::De, TicketStatus::Done) => "Erledigt",
            (Locale::En, TicketStatus::New) => "New",
            (Locale::En, TicketStatus::Backlog) => "Backlog",
            (Locale::En, TicketStatus::WaitingOnCustomer) => "Waiting on customer",
            (Locale::En, TicketStatus::InProgress) => "In progress",
            (Locale::En, TicketStatus::Done) => "Done",
        }
    }
}

/// The door a ticket came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Webhook,
    Portal,
    Api,
}

/// Who asked. A known contact, or just a name and address (unknown senders, webhook
/// reporters).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Requester {
    pub contact_id: Option<ContactId>,
    pub name: Option<String>,
    pub email: Option<EmailAddress>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub number: u64,
    pub subject: String,
    pub status: TicketStatus,
    pub channel: Channel,
    pub company_id: Option<CompanyId>,
    pub requester: Requester,
    pub assignee_id: Option<StaffId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set whenever the ticket becomes `done`; the reopen window counts from here.
    #[serde(default)]
    pub done_at: Option<DateTime<Utc>>,
    /// Other addresses in the conversation (CC'd by mail); their replies thread in.
    #[serde(default)]
    pub participants: Vec<EmailAddress>,
    /// A new ticket opened by a late reply to this one, or the one it continues.
    #[serde(default)]
    pub linked_ticket_id: Option<TicketId>,
    /// Where a ticket filed by a machine came from.
    #[serde(default)]
    pub origin: Option<TicketOrigin>,
    /// When the ticket last became `waiting_on_customer`: `auto_close` counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
    /// When `auto_close` last reminded the customer; one reminder per wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_at: Option<DateTime<Utc>>,
}

/// A ticket filed by the point of sale: the instance, the form's category, the
/// reporter's phone and whatever context the till sent along.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketOrigin {
    pub onretail_instance_id: String,
    pub category: Option<String>,
    pub reporter_phone: Option<String>,
    pub context: Option<serde_json::Value>,
}

/// An idempotency key already used, and the ticket it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub ticket_id: TicketId,
    pub at: DateTime<Utc>,
}

impl Ticket {
    /// The tag outbound mail carries in its subject, e.g. `[#42]`.
    pub fn subject_tag(&self) -> String {
        format!("[#{}]", self.number)
    }
}

/// The kinds of record that carry a history. The code is part of history keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Company,
    Ticket,
    Document,
    Quote,
    Order,
    Invoice,
    Subscription,
}

impl RecordKind {
    pub fn code(self) -> u8 {
        match self {
            RecordKind::Company => 1,
            RecordKind::Ticket => 2,
            RecordKind::Document => 3,
            RecordKind::Quote => 4,
            RecordKind::Order => 5,
            RecordKind::Invoice => 6,
            RecordKind::Subscription => 7,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.code() == code)
    }

    pub const ALL: [RecordKind; 7] = [
        RecordKind::Company,
        RecordKind::Ticket,
        RecordKind::Document,
        RecordKind::Quote,
        RecordKind::Order,
        RecordKind::Invoice,
        RecordKind::Subscription,
    ];

    /// The name in the API (`"ticket"`) and in page paths.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Company => "company",
            RecordKind::Ticket => "ticket",
            RecordKind::Document => "document",
            RecordKind::Quote => "quote",
            RecordKind::Order => "order",
            RecordKind::Invoice => "invoice",
            RecordKind::Subscription => "subscription",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == input)
    }

    /// The kinds a customer acts on (every kind but the company): the portal's
    /// menus, the API's `{kinds}`, search's `kind=`.
    pub const RECORDS: [RecordKind; 6] = [
        RecordKind::Ticket,
        RecordKind::Document,
        RecordKind::Quote,
        RecordKind::Order,
        RecordKind::Invoice,
        RecordKind::Subscription,
    ];
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that names no record kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown kind '{0}': expected one of ticket, document, quote, order, invoice, subscription"
)]
pub struct UnknownRecordKind(pub String);

impl std::str::FromStr for RecordKind {
    type Err = UnknownRecordKind;

    /// One of [`RecordKind::RECORDS`], case-insensitively (`kind:Ticket` works).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let lower = input.to_ascii_lowercase();
        RecordKind::RECORDS
            .into_iter()
            .find(|kind| kind.as_str() == lower)
            .ok_or_else(|| UnknownRecordKind(input.to_string()))
    }
}

/// A record that history entries belong to: the history is generic over records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordRef {
    pub kind: RecordKind,
    pub id: u64,
}

impl RecordRef {
    pub fn ticket(id: TicketId) -> Self {
        RecordRef {
            kind: RecordKind::Ticket,
            id: id.0,
        }
    }

    pub fn company(id: CompanyId) -> Self {
        RecordRef {
            kind: RecordKind::Company,
            id: id.0,
        }
    }

    /// `kind code (u8) ++ record id (u64 BE)`: the prefix of the record's history keys.
    pub fn key_prefix(self) -> [u8; 9] {
        let mut key = [0u8; 9];
        key[0] = self.kind.code();
        key[1..].copy_from_slice(&self.id.to_be_bytes());
        key
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Seen by the customer.
    Public,
    /// Staff only.
    Internal,
}

/// Who wrote or caused a history entry. Name and email are copied in, so the
/// history reads the same after a contact is renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Author {
    Contact {
        id: Option<ContactId>,
        name: String,
        email: Option<EmailAddress>,
    },
    Staff {
        id: StaffId,
        name: String,
        email: EmailAddress,
    },
    System,
}

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: HistoryId,
    pub record: RecordRef,
    pub at: DateTime<Utc>,
    pub author: Author,
    pub visibility: Visibility,
    pub body: EntryBody,
    /// The previous entry's `hash` (64 zeros for the first): the tamper-evident chain
    /// (`chain.rs`).
    #[serde(default)]
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this entry's canonical JSON without both hashes.
    #[serde(default)]
    pub hash: String,
}

/// The end of a record's history chain: what the next entry links to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryHead {
    pub hash: String,
    pub entries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryBody {
    Message {
        text: String,
        #[serde(default)]
        attachments: Vec<AttachmentId>,
        /// Which inbound rule threaded this mail into the record.
        #[serde(default)]
        threaded_by: Option<String>,
    },
    Event(Event),
    TimeEntry {
        minutes: u32,
        note: String,
        date: NaiveDate,
    },
}

/// Something that happened to a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    StatusChanged {
        from: TicketStatus,
        to: TicketStatus,
    },
    Assigned {
        from: Option<StaffId>,
        to: StaffId,
    },
    Reopened,
    PermissionsChanged {
        contact_id: ContactId,
        requested_by: ContactId,
        from: Permissions,
        to: Permissions,
    },
    Bounced {
        address: EmailAddress,
    },
    NotificationFailed {
        address: EmailAddress,
        reason: String,
    },
    Linked {
        ticket_id: TicketId,
        number: u64,
    },
    /// `auto_close` reminded the customer that the ticket waits on them, or
    /// `remind_signatures` the signer of a document.
    Reminded,
    /// A document or quote was mailed to its contact.
    Sent,
    /// A document was signed; `sha256` names what was signed.
    Signed {
        sha256: String,
    },
    /// A quote was accepted and signed; the order it made.
    Accepted {
        sha256: String,
        order_id: crate::ids::OrderId,
    },
    /// The customer declined a quote, and why.
    Declined {
        reason: String,
    },
    /// A quote passed its `valid_until` unanswered.
    Expired,
    /// A document, quote, order, invoice or subscription was cancelled or ended.
    Cancelled {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An invoice was paid.
    Paid,
    /// A subscription's modules were replaced: what came and what went
    /// (`CODE` for a module, `CODE/component` for a component).
    ModulesChanged {
        added: Vec<String>,
        removed: Vec<String>,
    },
}

/// An attachment's metadata; its bytes are stored once per content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the bytes, hex: the key of the blob.
    pub sha256: String,
}

/// An address that bounced: mail to it is not sent until an operator clears it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bounce {
    pub address: EmailAddress,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// A staff API key. Only the SHA-256 of the secret is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One entry of the changelog: the records one transaction changed, in commit order.
/// The search indexer and other derived views follow it and re-read those records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub records: Vec<RecordRef>,
}

/// What happened to a record; says why `Tx::log` is called (the changelog itself
/// keeps only which records changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Created,
    Updated,
    HistoryAppended,
}

/// What a notification announces; each kind has its templates
/// `templates/email/<kind>.<locale>.{txt,html}.hbs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// To the requester: we have your request, here is its link and how to reply.
    TicketCreated,
    /// To the requester: a public staff message.
    StaffMessage,
    /// To the requester: we need an answer from you.
    WaitingOnCustomer,
    /// To the requester: solved, and how to reopen.
    TicketDone,
    /// To the requester: the ticket is open again.
    TicketReopened,
    /// To a contact: a link that logs in to the portal (or a fresh link for an
    /// expired one).
    LoginLink,
    /// A fresh link to a record, asked for from an expired link's page.
    FreshLink,
    /// Hooks for the commercial records (issues to come).
    SignRequest,
    QuoteSent,
    OrderConfirmed,
    InvoiceIssued,
    /// To staff: the customer replied on a ticket.
    StaffCustomerReplied,
    /// To staff: a ticket was assigned to you (or created for you).
    StaffTicketAssigned,
    /// To a record's contact: a public staff message on a document, quote, order,
    /// invoice or subscription.
    RecordMessage,
    /// To the quote's staff member: the customer declined it, and why.
    QuoteDeclined,
    /// To a signer: the document still waits for a signature (a fresh sign link).
    SignReminder,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 16] = [
        NoticeKind::TicketCreated,
        NoticeKind::StaffMessage,
        NoticeKind::WaitingOnCustomer,
        NoticeKind::TicketDone,
        NoticeKind::TicketReopened,
        NoticeKind::LoginLink,
        NoticeKind::FreshLink,
        NoticeKind::SignRequest,
        NoticeKind::QuoteSent,
        NoticeKind::OrderConfirmed,
        NoticeKind::InvoiceIssued,
        NoticeKind::StaffCustomerReplied,
        NoticeKind::StaffTicketAssigned,
        NoticeKind::RecordMessage,
        NoticeKind::QuoteDeclined,
        NoticeKind::SignReminder,
    ];

    /// The template name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::TicketCreated => "ticket_created",
            NoticeKind::StaffMessage => "staff_message",
            NoticeKind::WaitingOnCustomer => "waiting_on_customer",
            NoticeKind::TicketDone => "ticket_done",
            NoticeKind::TicketReopened => "ticket_reopened",
            NoticeKind::LoginLink => "login_link",
            NoticeKind::FreshLink => "fresh_link",
            NoticeKind::SignRequest => "sign_request",
            NoticeKind::QuoteSent => "quote_sent",
            NoticeKind::OrderConfirmed => "order_confirmed",
            NoticeKind::InvoiceIssued => "invoice_issued",
            NoticeKind::StaffCustomerReplied => "staff_customer_replied",
            NoticeKind::StaffTicketAssigned => "staff_ticket_assigned",
            NoticeKind::RecordMessage => "record_message",
            NoticeKind::QuoteDeclined => "quote_declined",
            NoticeKind::SignReminder => "sign_reminder",
        }
    }

    /// Written by a machine, not a person: carries `Auto-Submitted: auto-generated`
    /// and counts against the loop guard. A staff member's message is a person's.
    pub fn is_automatic(self) -> bool {
        !matches!(self, NoticeKind::StaffMessage | NoticeKind::RecordMessage)
    }
}

/// Where a row of the outbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its first or next attempt.
    Pending,
    /// The SMTP server accepted it (or the file was written): never sent again.
    Sent,
    /// Given up: a permanent refusal or too many temporary ones.
    Failed,
    /// Not sent because the address bounces.
    Suppressed,
}

/// One message to one recipient, rendered when the change it announces was stored,
/// and written in the same transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: u64,
    pub kind: NoticeKind,
    /// The record it is about (its history gets a failure event).
    pub record: Option<RecordRef>,
    pub ticket_number: Option<u64>,
    pub to: EmailAddress,
    pub to_name: Option<String>,
    /// `<kontor.{id}.{number}@{domain}>`: kept in the Message-ID index, so a reply
    /// naming it threads back; the id part names this row, hence the recipient.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub automatic: bool,
    pub created_at: DateTime<Utc>,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}
