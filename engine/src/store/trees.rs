//! Every tree, declared in one place, with its key layout.
//! All integers in keys are big-endian so that byte order is numeric order.

/// The named trees of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    /// counter name (utf-8) -> u64 BE. Sequences and the schema version.
    Meta,
    /// company_id (u64 BE) -> Company
    Companies,
    /// contact_id (u64 BE) -> Contact
    Contacts,
    /// lower-case email (utf-8) -> contact_id (u64 BE)
    ContactByEmail,
    /// company_id (u64 BE) ++ contact_id (u64 BE) -> ()
    ContactsByCompany,
    /// staff_id (u64 BE) -> Staff
    Staff,
    /// lower-case email (utf-8) -> staff_id (u64 BE)
    StaffByEmail,
    /// ticket_id = ticket number (u64 BE) -> Ticket
    Tickets,
    /// status code (u8) ++ ticket_id (u64 BE) -> ()
    TicketsByStatus,
    /// company_id (u64 BE) ++ ticket_id (u64 BE) -> ()
    TicketsByCompany,
    /// contact_id (u64 BE) ++ ticket_id (u64 BE) -> ()
    TicketsByContact,
    /// record kind (u8) ++ record id (u64 BE) ++ history_id (u64 BE) -> HistoryEntry
    History,
    /// attachment_id (u64 BE) -> Attachment
    Attachments,
    /// sha256 of an attachment's bytes (32 bytes) -> their length (u64 BE); the
    /// bytes are the file `<data_dir>/blobs/<2 hex>/<hex>` (`store::blobs`).
    Blobs,
    /// changelog seq (u64 BE) -> Change
    Changelog,
    /// sha256 of the secret (32 bytes) -> ApiKey
    ApiKeys,
    /// Message-ID, lower case, without angle brackets (utf-8) -> ticket_id (u64 BE).
    /// Every message of a ticket's thread, received or sent, so that In-Reply-To and
    /// References thread a reply.
    MessageIds,
    /// lower-case email (utf-8) -> Bounce. Addresses we must not mail any more.
    Bounces,
    /// onRetail instance id (utf-8) -> company_id (u64 BE)
    CompanyByInstance,
    /// idempotency key (utf-8, prefixed by its door, e.g. `onretail:`) -> IdempotencyRecord
    Idempotency,
    /// outbox id (u64 BE) -> OutboxRow. Every notification, sent or not.
    Outbox,
    /// next attempt (unix millis, u64 BE) ++ outbox id (u64 BE) -> (). The rows
    /// still pending, in the order they come due: the sender reads only the due ones.
    /// (Schema 1 keyed it by the id alone; `Engine::open` migrates.)
    OutboxDue,
    /// lower-case email (utf-8) ++ 0x00 ++ hour since the epoch (u64 BE) -> count
    /// (u64 BE). Automatic notices per address and hour, for the loop guard.
    NoticesPerHour,
    /// record kind (u8) ++ record id (u64 BE) -> epoch (u64 BE). Bumping it revokes
    /// every magic link made for the record before.
    LinkEpochs,
    /// sha256 of the raw message (32 bytes) -> its length (u64 BE); the message,
    /// as received, is the file `<data_dir>/blobs/<2 hex>/<hex>` (`store::blobs`).
    RawMail,
    /// intake key (utf-8: `mid:<normalised Message-ID>` or `sha:<hex sha256>`) ->
    /// IntakeRecord. What became of each received message; makes intake idempotent.
    MailIntake,
    /// quarantine_id (u64 BE) -> QuarantinedMail. Mail that could not be interpreted.
    Quarantine,
    /// lower-case sender email (utf-8) ++ 0x00 ++ unix hour (u64 BE) -> count (u64 BE).
    /// The mail loop guard's counters.
    SenderHourly,
    /// record kind (u8) ++ record id (u64 BE) -> the record (documents, quotes,
    /// orders, invoices, subscriptions: every kind without a tree of its own).
    Records,
    /// record kind (u8) ++ index (u8: 1 company, 2 contact, 3 status, 4 unique
    /// number) ++ value (u64 BE, status code u8, or utf-8 ++ 0x00) ++ record id
    /// (u64 BE) -> (). The lists and uniqueness rules of `records::RecordType`.
    RecordIndex,
    /// record kind (u8) ++ record id (u64 BE) -> HistoryHead: the hash of the
    /// record's last history entry, so an append reads one key.
    HistoryHeads,
    /// sha256 of the session secret (32 bytes) -> PortalSession. The portal's
    /// server-side sessions; never exported (a restore logs everyone out).
    PortalSessions,
    /// lower-case email (utf-8) ++ 0x00 ++ unix hour (u64 BE) -> count (u64 BE).
    /// Login links mailed per address and hour (at most 5).
    LoginLinksHourly,
    /// reseller company_id (u64 BE) ++ customer company_id (u64 BE) -> (). A
    /// reseller's customers, for its contacts' ticket list. (Schema 4; filled at
    /// open from the companies of older stores.)
    CompaniesByReseller,
    /// delivery id (u64 BE) -> WebhookDelivery. Every webhook event for every
    /// endpoint, delivered or not, with its attempt log.
    Webhooks,
    /// next attempt (unix millis, u64 BE) ++ delivery id (u64 BE) -> (). The
    /// deliveries still pending, in the order they come due.
    WebhooksDue,
}

impl Tree {
    /// Every tree, in the order `export` writes them.
    pub const ALL: [Tree; 36] = [
        Tree::Meta,
        Tree::Companies,
        Tree::Contacts,
        Tree::ContactByEmail,
        Tree::ContactsByCompany,
        Tree::Staff,
        Tree::StaffByEmail,
        Tree::Tickets,
        Tree::TicketsByStatus,
        Tree::TicketsByCompany,
        Tree::TicketsByContact,
        Tree::History,
        Tree::Attachments,
        Tree::Blobs,
        Tree::Changelog,
        Tree::ApiKeys,
        Tree::MessageIds,
        Tree::Bounces,
        Tree::CompanyByInstance,
        Tree::Idempotency,
        Tree::Outbox,
        Tree::OutboxDue,
        Tree::NoticesPerHour,
        Tree::LinkEpochs,
        Tree::RawMail,
        Tree::MailIntake,
        Tree::Quarantine,
        Tree::SenderHourly,
        Tree::Records,
        Tree::RecordIndex,
        Tree::HistoryHeads,
        Tree::PortalSessions,
        Tree::LoginLinksHourly,
        Tree::CompaniesByReseller,
        Tree::Webhooks,
        Tree::WebhooksDue,
    ];

    /// The tree's position in [`Tree::ALL`], for tables indexed by tree.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The on-disk name of the tree.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Companies => "companies",
            Tree::Contacts => "contacts",
            Tree::ContactByEmail => "contact_by_email",
            Tree::ContactsByCompany => "contacts_by_company",
            Tree::Staff => "staff",
            Tree::StaffByEmail => "staff_by_email",
            Tree::Tickets => "tickets",
            Tree::TicketsByStatus => "tickets_by_status",
            Tree::TicketsByCompany => "tickets_by_company",
            Tree::TicketsByContact => "tickets_by_contact",
            Tree::History => "history",
            Tree::Attachments => "attachments",
            Tree::Blobs => "blobs",
            Tree::Changelog => "changelog",
            Tree::ApiKeys => "api_keys",
            Tree::MessageIds => "message_ids",
            Tree::Bounces => "bounces",
            Tree::CompanyByInstance => "company_by_instance",
            Tree::Idempotency => "idempotency",
            Tree::Outbox => "outbox",
            Tree::OutboxDue => "outbox_due",
            Tree::NoticesPerHour => "notices_per_hour",
            Tree::LinkEpochs => "link_epochs",
            Tree::RawMail => "raw_mail",
            Tree::MailIntake => "mail_intake",
            Tree::Quarantine => "quarantine",
            Tree::SenderHourly => "sender_hourly",
            Tree::Records => "records",
            Tree::RecordIndex => "record_index",
            Tree::HistoryHeads => "history_heads",
            Tree::PortalSessions => "portal_sessions",
            Tree::LoginLinksHourly => "login_links_hourly",
            Tree::CompaniesByReseller => "companies_by_reseller",
            Tree::Webhooks => "webhooks",
            Tree::WebhooksDue => "webhooks_due",
        }
    }

    /// Whether `export` writes the tree: sessions are not data, and a restored
    /// session would outlive the logout that ended it.
    pub fn is_exported(self) -> bool {
        self != Tree::PortalSessions
    }

    /// Whether the tree names blobs (key: their SHA-256): an export writes the
    /// blob's bytes as the pair's value, as when the tree held them.
    pub fn names_blobs(self) -> bool {
        matches!(self, Tree::RawMail | Tree::Blobs)
    }

    pub fn from_name(name: &str) -> Option<Tree> {
        Tree::ALL.into_iter().find(|tree| tree.name() == name)
    }

    /// How values of this tree are written in an export line.
    pub fn value_encoding(self) -> ValueEncoding {
        match self {
            Tree::Companies
            | Tree::Contacts
            | Tree::Staff
            | Tree::Tickets
            | Tree::History
            | Tree::Attachments
            | Tree::Changelog
            | Tree::ApiKeys
            | Tree::Bounces
            | Tree::Idempotency
            | Tree::Outbox
            | Tree::MailIntake
            | Tree::Quarantine
            | Tree::Records
            | Tree::HistoryHeads
            | Tree::PortalSessions => ValueEncoding::Json,
            Tree::Webhooks => ValueEncoding::Json,
            Tree::Meta
            | Tree::ContactByEmail
            | Tree::ContactsByCompany
            | Tree::StaffByEmail
            | Tree::TicketsByStatus
            | Tree::TicketsByCompany
            | Tree::TicketsByContact
            | Tree::MessageIds
            | Tree::CompanyByInstance
            | Tree::OutboxDue
            | Tree::NoticesPerHour
            | Tree::LinkEpochs
            | Tree::Blobs
            | Tree::RawMail
            | Tree::SenderHourly
            | Tree::RecordIndex
            | Tree::LoginLinksHourly
            | Tree::CompaniesByReseller => ValueEncoding::Bytes,
            Tree::WebhooksDue => ValueEncoding::Bytes,
        }
    }
}

/// Whether a tree's values are JSON documents or opaque bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    Json,
    Bytes,
}

/// Builds a key from fixed-width parts.
pub fn key_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// The trailing u64 of a composite key, e.g. the ticket id of an index entry.
pub fn trailing_u64(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    let array: [u8; 8] = key.get(start..)?.try_into().ok()?;
    Some(u64::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tree_sits_at_its_index_in_all() {
        for (position, tree) in Tree::ALL.into_iter().enumerate() {
            assert_eq!(tree.index(), position, "{}", tree.name());
        }
    }
}
