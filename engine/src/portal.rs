//! The customer portal's side of the engine: server-side sessions made from magic
//! links, the login form's rate limit, and the views the pages show, each already
//! filtered by the one access decision (`access::decide`), so the pages never decide.
//!
//! A session is a row keyed by the SHA-256 of a random secret that only the cookie
//! holds. A `login` link's session opens the contact's whole portal and dies when
//! the contact loses the portal permission; a `view` or `sign` link's session opens
//! only its record and dies when the record's links are revoked. Both die on logout
//! and at `security.session_hours`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::access::{decide, Action};
use crate::error::EngineError;
use crate::ids::{CompanyId, ContactId, StaffId, TicketId};
use crate::links::{LinkClaims, LinkRejected, LinkScope, LINK_PURPOSE};
use crate::model::*;
use crate::ops::attachments::NewAttachment;
use crate::ops::links::{scope_fits, LinkRefused};
use crate::ops::tickets::{change_status, load_ticket, save_ticket, NewTicket, RequesterInput};
use crate::ops::PageRequest;
use crate::records::{RecordHead, RecordType};
use crate::store::tables::{SecretHash, PORTAL_SESSIONS};
use crate::store::tables::{TicketList, LOGIN_LINKS_HOURLY, TICKETS};
use crate::store::tables::{COMPANIES, CONTACTS, STAFF};
use crate::store::Tree;
use crate::validate::EmailAddress;
use crate::{Engine, Page};

/// The most login links one address is mailed in an hour.
pub const LOGIN_LINKS_PER_HOUR: u64 = 5;

/// A portal session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalSession {
    pub contact_id: Option<ContactId>,
    /// `None`: the contact's whole portal (a login link). `Some`: only this record
    /// (a view or sign link).
    pub record: Option<RecordRef>,
    /// The scope of the link that made it.
    pub scope: String,
    /// The record's link epoch when the link was opened; a bump ends the session.
    pub link_epoch: u64,
    /// Every POST of the session carries this token.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who is looking, as every page needs it.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: PortalSession,
    pub contact: Option<Contact>,
    pub company: Option<Company>,
    /// The reseller of the viewer's company, when it buys through one.
    pub reseller: Option<Company>,
    pub locale: Locale,
}

impl Viewer {
    /// Whether the session opens the whole portal (a login), not one record.
    pub fn whole_portal(&self) -> bool {
        self.session.record.is_none()
    }

    /// The menus the overview and the navigation show.
    pub fn menus(&self) -> Menus {
        let permissions = self
            .contact
            .as_ref()
            .map(|contact| contact.permissions)
            .unwrap_or_else(Permissions::initial);
        let buys_from_reseller = self.reseller.is_some();
        let commercial = |granted: bool| granted && !buys_from_reseller && self.whole_portal();
        Menus {
            quotes: commercial(permissions.quotes),
            orders: commercial(permissions.orders),
            invoices: commercial(permissions.invoices),
            subscriptions: commercial(permissions.subscriptions),
            reseller_hint: buys_from_reseller,
        }
    }

    /// Whether this session may see `record` (whose company is `record_company`).
    fn sees(&self, record: &RecordHead, record_company: Option<&Company>) -> bool {
        if let Some(only) = self.session.record {
            let claims = LinkClaims {
                record: only,
                contact_id: self.session.contact_id,
                scope: LinkScope::parse(&self.session.scope).unwrap_or(LinkScope::View),
                expires_at: self.session.expires_at,
                epoch: self.session.link_epoch,
            };
            return decide(&Action::ViewByLink {
                claims: &claims,
                record: record.record,
            })
            .is_ok();
        }
        let (Some(contact), Some(company)) = (&self.contact, &self.company) else {
            return false;
        };
        decide(&Action::ViewRecord {
            viewer: contact,
            viewer_company: company,
            record,
            record_company,
        })
        .is_ok()
    }
}

/// The menus beyond "Tickets" and "Signatures", which everyone has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Menus {
    pub quotes: bool,
    pub orders: bool,
    pub invoices: bool,
    pub subscriptions: bool,
    /// The contact's company buys through a reseller: it is told to ask there.
    pub reseller_hint: bool,
}

/// A link opened into a session.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedSession {
    /// The cookie's value; only its SHA-256 is stored.
    pub secret: String,
    pub expires_at: DateTime<Utc>,
    /// The page the link leads to, e.g. `/portal/tickets/42`.
    pub location: String,
    pub contact_id: Option<ContactId>,
}

/// A record's page: what it is, who works on it, and its history as the customer
/// sees it (no internal messages, no delivery events).
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub head: RecordHead,
    pub assignee: Option<String>,
    pub entries: Vec<HistoryEntry>,
    /// The attachments of the shown entries.
    pub attachments: BTreeMap<crate::ids::AttachmentId, Attachment>,
}

/// What a customer sends from a record's page.
#[derive(Debug, Clone, Default)]
pub struct PortalMessage {
    pub body: String,
    pub attachments: Vec<NewAttachment>,
}

impl Engine {
    /// Opens a magic link into a server-side session. Writes the session row only:
    /// no token is used up and no record changes, so a mail scanner that opens the
    /// link does no harm.
    pub fn open_portal_link(&self, token: &str) -> Result<OpenedSession, LinkRefused> {
        let now = self.clock().now();
        let claims = self
            .keys
            .verify_claims(LINK_PURPOSE, token, now)
            .map_err(|rejected| match rejected {
                LinkRejected::Forged => LinkRefused::Forged,
                LinkRejected::Expired(claims) => LinkRefused::Expired(claims),
            })?;
        if !scope_fits(claims.record.kind, claims.scope) {
            return Err(LinkRefused::WrongScope);
        }
        let epoch = self
            .link_epoch(claims.record)
            .map_err(|_| LinkRefused::Forged)?;
        if epoch != claims.epoch {
            return Err(LinkRefused::Revoked);
        }
        let location = self.page_of_link(&claims).ok_or(LinkRefused::Forged)?;
        let whole = claims.scope == LinkScope::Login;
        if whole {
            let contact = claims
                .contact_id
                .and_then(|id| self.contact(id).ok())
                .ok_or(LinkRefused::Forged)?;
            if !contact.permissions.portal {
                return Err(LinkRefused::Revoked);
            }
        }
        let lifetime = Duration::hours(i64::from(self.config.notify.session_hours));
        let expires_at = if whole {
            now + lifetime
        } else {
            (now + lifetime).min(claims.expires_at.max(now + Duration::minutes(30)))
        };
        let session = PortalSession {
            contact_id: claims.contact_id,
            record: (!whole).then_some(claims.record),
            scope: claims.scope.as_str().to_string(),
            link_epoch: epoch,
            csrf: random_token(),
            created_at: now,
            expires_at,
        };
        let secret = random_token();
        let key = SecretHash::of(&secret);
        self.write(|tx| PORTAL_SESSIONS.put(tx, &key, &session))
            .map_err(|error| {
                tracing::warn!(%error, "storing a portal session failed");
                LinkRefused::Unavailable
            })?;
        Ok(OpenedSession {
            secret,
            expires_at,
            location,
            contact_id: claims.contact_id,
        })
    }

    /// The viewer of a session cookie, if the session is current.
    pub fn portal_viewer(&self, secret: &str) -> Result<Option<Viewer>, EngineError> {
        let key = SecretHash::of(secret);
        let Some(session) = PORTAL_SESSIONS.get(&mut self.reader(), &key)? else {
            return Ok(None);
        };
        if session.expires_at <= self.clock().now() {
            return Ok(None);
        }
        if let Some(record) = session.record {
            if self.link_epoch(record)? != session.link_epoch {
                return Ok(None);
            }
        }
        let contact = match session.contact_id {
            Some(id) => CONTACTS.get(&mut self.reader(), &id)?,
            None => None,
        };
        if session.record.is_none() && !contact.as_ref().is_some_and(|c| c.permissions.portal) {
            return Ok(None);
        }
        let company = match &contact {
            Some(contact) => COMPANIES.get(&mut self.reader(), &contact.company_id)?,
            None => None,
        };
        let reseller = match company.as_ref().and_then(|c| c.reseller_id) {
            Some(id) => COMPANIES.get(&mut self.reader(), &id)?,
            None => None,
        };
        let locale = contact
            .as_ref()
            .map(|c| c.locale)
            .unwrap_or(self.config.default_locale);
        Ok(Some(Viewer {
            session,
            contact,
            company,
            reseller,
            locale,
        }))
    }

    /// Ends a session (logout). Ending one that does not exist is no error.
    pub fn end_portal_session(&self, secret: &str) -> Result<(), EngineError> {
        let key = SecretHash::of(secret);
        self.write(|tx| PORTAL_SESSIONS.remove(tx, &key))
    }

    /// The login form: mails `email` a login link when it is a contact with portal
    /// access and fewer than [`LOGIN_LINKS_PER_HOUR`] went to it this hour. Answers
    /// the same either way, so the form tells nobody which addresses exist.
    pub fn request_login_link(&self, email: &str) -> Result<(), EngineError> {
        let Ok(address) = EmailAddress::parse(email.trim()) else {
            return Ok(());
        };
        let Some(contact) = self.contact_by_email(&address)? else {
            return Ok(());
        };
        if !contact.permissions.portal {
            return Ok(());
        }
        self.write(|tx| {
            let now = tx.now;
            let sent = LOGIN_LINKS_HOURLY.get(tx, &address, now)?;
            if sent >= LOGIN_LINKS_PER_HOUR {
                return Ok(());
            }
            LOGIN_LINKS_HOURLY.set(tx, &address, now, sent + 1)?;
            self.queue_login_link(tx, &contact)?;
            Ok(())
        })
    }

    /// The tickets a viewer sees, newest first: their own (and those staff opened for
    /// them), a manager's company's, a reseller's customers'. `status` filters.
    pub fn portal_tickets(
        &self,
        viewer: &Viewer,
        status: Option<TicketStatus>,
        request: PageRequest,
    ) -> Result<Page<Ticket>, EngineError> {
        type Ids<'a> = Box<dyn Iterator<Item = Result<TicketId, EngineError>> + 'a>;
        let mut sources: Vec<Ids<'_>> = Vec::new();
        let store = self.store.as_ref();
        if let Some(record) = viewer.session.record {
            // A link's session sees the one ticket it was made for, if any.
            if record.kind == RecordKind::Ticket {
                sources.push(Box::new(std::iter::once(Ok(TicketId(record.id)))));
            }
        } else if let (Some(contact), Some(company)) = (&viewer.contact, &viewer.company) {
            let scope = crate::access::contact_scope(contact, company);
            sources.push(Box::new(TicketList::Contact(contact.id).ids(store, true)));
            if scope.sees_company {
                sources.push(Box::new(TicketList::Company(company.id).ids(store, true)));
            }
            if scope.sees_reseller_customers {
                for customer in self.reseller_customers(company.id)? {
                    sources.push(Box::new(TicketList::Company(customer).ids(store, true)));
                }
            }
        }
        let mut streams: Vec<std::iter::Peekable<Ids<'_>>> =
            sources.into_iter().map(Iterator::peekable).collect();
        // A k-way merge of newest-first id streams, each id once.
        let mut ids = Vec::new();
        let mut last = None;
        loop {
            let mut best: Option<(usize, u64)> = None;
            for (index, stream) in streams.iter_mut().enumerate() {
                match stream.peek() {
                    Some(Ok(id)) if best.is_none_or(|(_, top)| id.0 > top) => {
                        best = Some((index, id.0));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) => {
                        if let Some(Err(error)) = stream.next() {
                            return Err(error);
                        }
                    }
                    None => {}
                }
            }
            let Some((index, id)) = best else { break };
            streams[index].next();
            if last != Some(id) {
                ids.push(TicketId(id));
                last = Some(id);
            }
        }
        if let Some(status) = status {
            let mut kept = Vec::with_capacity(ids.len());
            for id in ids {
                if TicketList::Status(status).contains(&mut self.reader(), id)? {
                    kept.push(id);
                }
            }
            ids = kept;
        }
        let total = ids.len() as u64;
        let skip = (request.page() as usize - 1) * request.per_page() as usize;
        let mut items = Vec::new();
        for id in ids.into_iter().skip(skip).take(request.per_page() as usize) {
            if let Some(ticket) = TICKETS.get(&mut self.reader(), &id)? {
                items.push(ticket);
            }
        }
        Ok(Page {
            items,
            total,
            page: request.page(),
            per_page: request.per_page(),
        })
    }

    /// The records of kind `R` a viewer sees, newest first, that `keep` keeps.
    pub fn portal_records<R: RecordType>(
        &self,
        viewer: &Viewer,
        keep: impl Fn(&R) -> bool,
        request: PageRequest,
    ) -> Result<Page<R>, EngineError> {
        let mut candidates: Vec<u64> = Vec::new();
        if let Some(record) = viewer.session.record {
            if record.kind == R::KIND {
                candidates.push(record.id);
            }
        } else if let Some(company) = &viewer.company {
            for id in crate::records::ids_in_index(
                self.store.as_ref(),
                R::KIND,
                Some(&crate::records::IndexEntry::Company(company.id)),
            ) {
                candidates.push(id?);
            }
        }
        let mut visible = Vec::new();
        // The candidates share the viewer's company: read it once, not per record.
        let mut company: Option<Company> = None;
        for id in candidates {
            let Some(record) = crate::records::load::<R>(&mut self.reader(), id)? else {
                continue;
            };
            let head = record.head();
            if company.as_ref().map(|c| Some(c.id)) != Some(head.company_id) {
                company = self.company_of(head.company_id)?;
            }
            if viewer.sees(&head, company.as_ref()) && keep(&record) {
                visible.push(record);
            }
        }
        let total = visible.len() as u64;
        let skip = (request.page() as usize - 1) * request.per_page() as usize;
        let items = visible
            .into_iter()
            .skip(skip)
            .take(request.per_page() as usize)
            .collect();
        Ok(Page {
            items,
            total,
            page: request.page(),
            per_page: request.per_page(),
        })
    }

    /// One record of kind `R` as the viewer may see it; 404 when it does not exist
    /// or the viewer may not see it (the same answer, so ids reveal nothing).
    pub fn portal_record<R: RecordType>(&self, viewer: &Viewer, id: u64) -> Result<R, EngineError> {
        let record = RecordRef { kind: R::KIND, id };
        let not_found =
            || EngineError::not_found(R::KIND.as_str(), crate::records::display_id(record));
        let found = crate::records::load::<R>(&mut self.reader(), id)?.ok_or_else(not_found)?;
        let head = found.head();
        let company = self.company_of(head.company_id)?;
        if viewer.sees(&head, company.as_ref()) {
            Ok(found)
        } else {
            Err(not_found())
        }
    }

    /// The ticket with `number`, as the viewer may see it (404 otherwise).
    pub fn portal_ticket(&self, viewer: &Viewer, number: u64) -> Result<Ticket, EngineError> {
        self.portal_record::<Ticket>(viewer, TicketId(number).0)
    }

    /// A record's page: its head, the assignee's name and the history a customer
    /// reads (messages public ones only; events but delivery problems; time entries).
    pub fn portal_record_page(
        &self,
        viewer: &Viewer,
        record: RecordRef,
    ) -> Result<RecordPage, EngineError> {
        let head = self.portal_head(viewer, record)?;
        let mut entries = Vec::new();
        for item in self
            .store
            .scan_prefix(Tree::History, &record.key_prefix(), false)
        {
            let (_, value) = item?;
            let entry: HistoryEntry = crate::store::codec::decode(Tree::History, &value)?;
            if shown_to_customers(&entry) {
                entries.push(entry);
            }
        }
        let mut attachments = BTreeMap::new();
        for entry in &entries {
            if let EntryBody::Message {
                attachments: ids, ..
            } = &entry.body
            {
                for id in ids {
                    if let Some(attachment) =
                        self.read::<Attachment>(Tree::Attachments, &id.key())?
                    {
                        attachments.insert(*id, attachment);
                    }
                }
            }
        }
        let assignee = match head.assignee_id {
            Some(id) => STAFF.get(&mut self.reader(), &id)?.map(|s| s.name),
            None => None,
        };
        Ok(RecordPage {
            head,
            assignee,
            entries,
            attachments,
        })
    }

    /// The head of a record the viewer may see, or 404.
    pub fn portal_head(
        &self,
        viewer: &Viewer,
        record: RecordRef,
    ) -> Result<RecordHead, EngineError> {
        let not_found =
            || EngineError::not_found(record.kind.as_str(), crate::records::display_id(record));
        let head = crate::records::spec(record.kind)
            .ok_or_else(not_found)?
            .head(&mut self.reader(), record.id)?
            .ok_or_else(not_found)?;
        let company = self.company_of(head.company_id)?;
        if viewer.sees(&head, company.as_ref()) {
            Ok(head)
        } else {
            Err(not_found())
        }
    }

    /// An attachment of a record the viewer may see, with its bytes; 404 unless it
    /// belongs to a message of that record the customer is shown.
    pub fn portal_attachment(
        &self,
        viewer: &Viewer,
        record: RecordRef,
        attachment: crate::ids::AttachmentId,
    ) -> Result<(Attachment, Vec<u8>), EngineError> {
        let page = self.portal_record_page(viewer, record)?;
        if !page.attachments.contains_key(&attachment) {
            return Err(EngineError::not_found("attachment", attachment));
        }
        self.attachment_bytes(attachment)
    }

    /// A customer writes on a record from its page. On a ticket the workflow moves as
    /// for a mailed reply: waiting on the customer becomes in progress, a done ticket
    /// is reopened; the assignee hears of it.
    pub fn portal_reply(
        &self,
        viewer: &Viewer,
        record: RecordRef,
        message: PortalMessage,
    ) -> Result<HistoryEntry, EngineError> {
        let mut errors = crate::error::FieldErrors::new();
        let body = self.check_body(&mut errors, "body", &message.body)?;
        if matches!(&body, Some(text) if text.trim().is_empty()) {
            errors.add("body", "missing", "write a message");
        }
        errors.finish()?;
        let body = body.unwrap_or_default();
        let head = self.portal_head(viewer, record)?;
        let author = self.portal_author(viewer, &head);
        self.stage_attachments(&message.attachments)?;
        self.write(|tx| {
            let reply = crate::records::verbs::CustomerReply {
                author: author.clone(),
                text: &body,
                attachments: &message.attachments,
                threaded_by: None,
                copied: Vec::new(),
                // Writing on a closed record in the portal is the customer's choice.
                reopen_within: None,
            };
            let (_, entry) = self.take_customer_reply(tx, record, reply)?;
            entry.ok_or_else(|| EngineError::Conflict {
                code: "illegal_transition",
                message: format!("{} takes no reply", crate::records::display_id(record)),
            })
        })
    }

    /// "Reopen" on a done ticket: `backlog`, an event `reopened`, the requester and
    /// the assignee are told. A ticket that is not done is 409 `illegal_transition`.
    pub fn portal_reopen(&self, viewer: &Viewer, number: u64) -> Result<Ticket, EngineError> {
        let ticket = self.portal_ticket(viewer, number)?;
        let head = ticket.head();
        let author = self.portal_author(viewer, &head);
        self.write(|tx| {
            let current = load_ticket(tx, ticket.id)?;
            if current.status != TicketStatus::Done {
                return Err(EngineError::Conflict {
                    code: "illegal_transition",
                    message: format!("ticket {} is not done", current.number),
                });
            }
            change_status(tx, current.id, TicketStatus::Backlog, author.clone())?;
            tx.append_history(
                head.record,
                author.clone(),
                Visibility::Public,
                EntryBody::Event(Event::Reopened),
            )?;
            let mut reopened = load_ticket(tx, current.id)?;
            reopened.updated_at = tx.now;
            save_ticket(tx, &reopened)?;
            self.notify_reopened(tx, &reopened, &crate::notify::HistoryExcerpt::default())?;
            Ok(reopened)
        })
    }

    /// "Submit ticket": a ticket of channel `portal` for the viewer, with its
    /// attachments, and the confirmation mail.
    pub fn portal_create_ticket(
        &self,
        viewer: &Viewer,
        subject: &str,
        message: PortalMessage,
    ) -> Result<Ticket, EngineError> {
        let contact = match (&viewer.contact, viewer.whole_portal()) {
            (Some(contact), true) => contact.clone(),
            _ => {
                return Err(EngineError::Rule {
                    code: "login_required",
                    message: "log in to open a ticket".into(),
                })
            }
        };
        let mut errors = crate::error::FieldErrors::new();
        if message.body.trim().is_empty() {
            errors.add("body", "missing", "describe the problem");
        }
        if subject.trim().is_empty() {
            errors.add("subject", "missing", "give the ticket a subject");
        }
        errors.finish()?;
        self.create_ticket(NewTicket {
            subject: subject.trim().to_string(),
            body: message.body,
            requester: RequesterInput::Contact(contact.id),
            assignee_id: None,
            channel: Channel::Portal,
            attachments: message.attachments,
            company_id: Some(contact.company_id),
            origin: None,
            notify: true,
        })
    }

    /// Names of staff members, for history entries that name one (assignments).
    pub fn portal_staff_names(
        &self,
        entries: &[HistoryEntry],
    ) -> Result<BTreeMap<StaffId, String>, EngineError> {
        let ids: Vec<StaffId> = entries
            .iter()
            .filter_map(|entry| match &entry.body {
                EntryBody::Event(Event::Assigned { to, .. }) => Some(*to),
                _ => None,
            })
            .collect();
        self.staff_names(&ids)
    }

    fn company_of(&self, id: Option<CompanyId>) -> Result<Option<Company>, EngineError> {
        match id {
            Some(id) => COMPANIES.get(&mut self.reader(), &id),
            None => Ok(None),
        }
    }

    /// The author a portal action is written as: the session's contact, or the
    /// record's own person for a link without a contact (a webhook reporter).
    fn portal_author(&self, viewer: &Viewer, head: &RecordHead) -> Author {
        match &viewer.contact {
            Some(contact) => Author::Contact {
                id: Some(contact.id),
                name: contact.name.clone(),
                email: Some(contact.email.clone()),
            },
            None => Author::Contact {
                id: None,
                name: head
                    .name
                    .clone()
                    .or_else(|| head.email.as_ref().map(|e| e.as_ref().to_string()))
                    .unwrap_or_default(),
                email: head.email.clone(),
            },
        }
    }

    /// The page a link leads to.
    fn page_of_link(&self, claims: &LinkClaims) -> Option<String> {
        match (claims.record.kind, claims.scope) {
            (_, LinkScope::Login) => Some("/portal".into()),
            _ => crate::records::portal_path(claims.record),
        }
    }
}

/// What of a history a customer reads: public messages, the record's events but
/// those about our mail delivery and their permissions, and time entries.
pub fn shown_to_customers(entry: &HistoryEntry) -> bool {
    match &entry.body {
        EntryBody::Message { .. } => entry.visibility == Visibility::Public,
        EntryBody::Event(event) => !matches!(
            event,
            Event::Bounced { .. }
                | Event::NotificationFailed { .. }
                | Event::PermissionsChanged { .. }
        ),
        EntryBody::TimeEntry { .. } => true,
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
