//! Tickets: creation, the status workflow, assignment, messages, time entries.

use chrono::NaiveDate;

use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, StaffId, TicketId};
use crate::model::*;
use crate::notify::HistoryExcerpt;
use crate::store::tables::{relist_ticket, TicketList, IDEMPOTENCY, TICKETS};
use crate::store::Tree;
use crate::tx::{counter, Tx};
use crate::validate::{self, EmailAddress, TextError};
use crate::{Engine, Page};

use super::attachments::NewAttachment;
use super::{paginate, PageRequest};

/// Who a new ticket is for.
#[derive(Debug, Clone)]
pub enum RequesterInput {
    /// A known contact.
    Contact(ContactId),
    /// An address, matched to a contact if one has it; otherwise kept as given.
    Email { email: String, name: Option<String> },
}

/// A ticket to open, with its first message.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub subject: String,
    pub body: String,
    pub requester: RequesterInput,
    pub assignee_id: Option<StaffId>,
    pub channel: Channel,
    pub attachments: Vec<NewAttachment>,
    /// The company the ticket belongs to when the door knows it (a webhook's
    /// instance); a requester address then matches only that company's contacts.
    pub company_id: Option<CompanyId>,
    /// Where a ticket from a machine came from (the onRetail instance and form).
    pub origin: Option<TicketOrigin>,
    /// Send the requester the confirmation (the API's `notify`, default true).
    pub notify: bool,
}

/// Filters of the ticket list; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub company_id: Option<CompanyId>,
    pub contact_id: Option<ContactId>,
}

/// The longest note a time entry may carry.
pub const MAX_NOTE_CHARS: usize = 10_000;
/// The most minutes one time entry may book: a whole day.
pub const MAX_MINUTES: u32 = 24 * 60;

impl Engine {
    pub fn create_ticket(&self, new: NewTicket) -> Result<Ticket, EngineError> {
        self.create_ticket_once(new, None).map(|(ticket, _)| ticket)
    }

    /// Creates the ticket unless `idempotency_key` was seen before, in which case it
    /// returns the ticket the key made and `true`. The key is stored in the same
    /// transaction as the ticket, so a crash can never leave one without the other.
    pub fn create_ticket_once(
        &self,
        new: NewTicket,
        idempotency_key: Option<&str>,
    ) -> Result<(Ticket, bool), EngineError> {
        let mut errors = FieldErrors::new();
        let subject = errors.check("subject", validate::line(&new.subject));
        let body = self.check_body(&mut errors, "body", &new.body)?;
        let requester_email = match &new.requester {
            RequesterInput::Email { email, .. } => {
                errors.check("requester_email", EmailAddress::parse(email))
            }
            RequesterInput::Contact(_) => None,
        };
        let requester_name = match &new.requester {
            RequesterInput::Email {
                name: Some(name), ..
            } => errors.check("requester_name", validate::line(name)),
            _ => None,
        };
        errors.finish()?;
        let subject = subject.unwrap_or_default();
        let body = body.unwrap_or_default();

        let contact = match &new.requester {
            RequesterInput::Contact(id) => Some(
                self.contact(*id)
                    .map_err(|_| EngineError::not_found_in_field("contact", id, "contact_id"))?,
            ),
            RequesterInput::Email { .. } => match &requester_email {
                Some(email) => self.contact_by_email(email)?.filter(|contact| {
                    new.company_id
                        .is_none_or(|company| contact.company_id == company)
                }),
                None => None,
            },
        };
        if let Some(company) = new.company_id {
            self.company(company)
                .map_err(|_| EngineError::not_found_in_field("company", company, "company_id"))?;
        }
        if let Some(assignee) = new.assignee_id {
            self.staff(assignee)
                .map_err(|_| EngineError::not_found_in_field("staff", assignee, "assignee_id"))?;
        }
        let requester = requester_of(contact.as_ref(), requester_name, requester_email);
        let author = requester_author(&requester);
        let company_id = new.company_id.or(contact.as_ref().map(|c| c.company_id));
        let notify = new.notify;
        let draft = TicketDraft {
            subject,
            body,
            channel: new.channel,
            company_id,
            requester,
            assignee_id: new.assignee_id,
            author,
            attachments: new.attachments,
            participants: vec![],
            linked_ticket_id: None,
            origin: new.origin,
        };
        self.stage_attachments(&draft.attachments)?;
        self.write(|tx| {
            if let Some(key) = &idempotency_key {
                if let Some(seen) = IDEMPOTENCY.get(tx, key)? {
                    return Ok((load_ticket(tx, seen.ticket_id)?, true));
                }
            }
            let (ticket, _) = self.insert_ticket(tx, &draft, notify)?;
            if let Some(key) = &idempotency_key {
                let record = IdempotencyRecord {
                    ticket_id: ticket.id,
                    at: tx.now,
                };
                IDEMPOTENCY.put(tx, key, &record)?;
            }
            Ok((ticket, false))
        })
    }

    pub fn ticket(&self, id: TicketId) -> Result<Ticket, EngineError> {
        TICKETS
            .get(&mut self.reader(), &id)?
            .ok_or_else(|| EngineError::not_found("ticket", id))
    }

    /// The ticket with this human-facing number (ticket ids are their numbers).
    pub fn ticket_by_number(&self, number: u64) -> Result<Ticket, EngineError> {
        self.ticket(TicketId(number))
    }

    /// Tickets matching `filter`, newest first.
    pub fn list_tickets(
        &self,
        filter: &TicketFilter,
        request: PageRequest,
    ) -> Result<Page<Ticket>, EngineError> {
        // Walk the most selective list; check the other filters on the record.
        let list = if let Some(contact) = filter.contact_id {
            Some(TicketList::Contact(contact))
        } else if let Some(company) = filter.company_id {
            Some(TicketList::Company(company))
        } else {
            filter.status.map(TicketList::Status)
        };
        let candidates: Box<dyn Iterator<Item = Result<TicketId, EngineError>>> = match list {
            Some(list) => Box::new(list.ids(self.store.as_ref(), true)),
            None => Box::new(TICKETS.keys(self.store.as_ref(), true).map(|key| {
                key.and_then(|key| {
                    TicketId::from_key(&key)
                        .ok_or_else(|| crate::store::tables::short_key(Tree::Tickets))
                })
            })),
        };
        let needs_check = [
            filter.contact_id.is_some(),
            filter.company_id.is_some(),
            filter.status.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count()
            > 1;
        let mut reader = self.reader();
        if !needs_check {
            // Counted by id; only the page's tickets are read.
            return paginate(candidates, request, |id| TICKETS.get(&mut reader, &id));
        }
        let matching = candidates.filter_map(|id| match id {
            Ok(id) => match TICKETS.get(&mut reader, &id) {
                Ok(Some(ticket)) if matches(filter, &ticket) => Some(Ok(ticket)),
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            },
            Err(error) => Some(Err(error)),
        });
        paginate(matching, request, |ticket| Ok(Some(ticket)))
    }

    /// A staff member writes on a ticket; a public message is for the customer.
    pub fn post_staff_message(
        &self,
        ticket_id: TicketId,
        staff_id: StaffId,
        body: &str,
        visibility: Visibility,
    ) -> Result<HistoryEntry, EngineError> {
        self.post_record_message(RecordRef::ticket(ticket_id), staff_id, body, visibility)
    }

    /// Staff set a status. Any status but `new`, which only a fresh ticket has.
    pub fn set_ticket_status(
        &self,
        ticket_id: TicketId,
        to: TicketStatus,
        staff_id: StaffId,
    ) -> Result<Ticket, EngineError> {
        let staff = self.staff_in_field(staff_id)?;
        self.ticket(ticket_id)?;
        if to == TicketStatus::New {
            return Err(EngineError::Conflict {
                code: "illegal_transition",
                message: "a ticket cannot be set back to new".into(),
            });
        }
        let history = self.history_excerpt(ticket_id)?;
        self.write(|tx| {
            let from = load_ticket(tx, ticket_id)?.status;
            let ticket = change_status(tx, ticket_id, to, staff_author(&staff))?;
            if from != to {
                match to {
                    TicketStatus::WaitingOnCustomer => {
                        self.notify_requester(
                            tx,
                            NoticeKind::WaitingOnCustomer,
                            &ticket,
                            &history,
                            serde_json::json!({}),
                        )?;
                    }
                    TicketStatus::Done => {
                        self.notify_requester(
                            tx,
                            NoticeKind::TicketDone,
                            &ticket,
                            &history,
                            serde_json::json!({}),
                        )?;
                    }
                    _ if from == TicketStatus::Done => {
                        self.notify_reopened(tx, &ticket, &history)?;
                    }
                    _ => {}
                }
            }
            Ok(ticket)
        })
    }

    pub fn assign_ticket(
        &self,
        ticket_id: TicketId,
        staff_id: StaffId,
    ) -> Result<Ticket, EngineError> {
        self.assign_record(RecordRef::ticket(ticket_id), staff_id)?;
        self.ticket(ticket_id)
    }

    /// Books staff time on a ticket; time entries are internal.
    pub fn add_time_entry(
        &self,
        ticket_id: TicketId,
        staff_id: StaffId,
        minutes: i64,
        note: &str,
        date: Option<NaiveDate>,
    ) -> Result<HistoryEntry, EngineError> {
        self.add_record_time_entry(RecordRef::ticket(ticket_id), staff_id, minutes, note, date)
    }

    /// Checks a message body: empty is 400, over the size limit is 413.
    pub(crate) fn check_body(
        &self,
        errors: &mut FieldErrors,
        field: &str,
        body: &str,
    ) -> Result<Option<String>, EngineError> {
        match validate::body(body, self.config().max_body_bytes) {
            Ok(body) => Ok(Some(body)),
            Err(TextError::TooLong { max }) => Err(EngineError::TooLarge {
                field: field.to_string(),
                message: format!("{field} is larger than {max} bytes"),
            }),
            Err(other) => {
                errors.check::<String, _>(field, Err(other));
                Ok(None)
            }
        }
    }
}

/// The requester of a new ticket: the contact with the address if there is one,
/// else the name and address as given.
pub(crate) fn requester_of(
    contact: Option<&Contact>,
    name: Option<String>,
    email: Option<EmailAddress>,
) -> Requester {
    match contact {
        Some(contact) => Requester {
            contact_id: Some(contact.id),
            name: Some(contact.name.clone()),
            email: Some(contact.email.clone()),
        },
        None => Requester {
            contact_id: None,
            name,
            email,
        },
    }
}

/// The history author of a requester's own messages.
pub(crate) fn requester_author(requester: &Requester) -> Author {
    Author::Contact {
        id: requester.contact_id,
        name: requester
            .name
            .clone()
            .or_else(|| requester.email.as_ref().map(|e| e.to_string()))
            .unwrap_or_default(),
        email: requester.email.clone(),
    }
}

/// Everything a new ticket is made of, checked already; written by [`insert_ticket`].
#[derive(Debug, Clone)]
pub(crate) struct TicketDraft {
    pub subject: String,
    pub body: String,
    pub channel: Channel,
    pub company_id: Option<CompanyId>,
    pub requester: Requester,
    pub assignee_id: Option<StaffId>,
    pub author: Author,
    pub attachments: Vec<NewAttachment>,
    pub participants: Vec<EmailAddress>,
    pub linked_ticket_id: Option<TicketId>,
    pub origin: Option<TicketOrigin>,
}

impl Engine {
    /// Writes a new ticket, its indexes and its first message inside a running
    /// transaction, with the assignee's notice and, when `notify_requester`, the
    /// requester's confirmation: shared by the API, the webhook and the mail intake.
    pub(crate) fn insert_ticket(
        &self,
        tx: &mut Tx<'_>,
        draft: &TicketDraft,
        notify_requester: bool,
    ) -> Result<(Ticket, HistoryEntry), EngineError> {
        // The id is the number: one sequence, one index fewer to write.
        let number = tx.next(counter::TICKET_NUMBER)?;
        let id = TicketId(number);
        let ticket = Ticket {
            id,
            number,
            subject: draft.subject.clone(),
            status: TicketStatus::New,
            channel: draft.channel,
            company_id: draft.company_id,
            requester: draft.requester.clone(),
            assignee_id: draft.assignee_id,
            created_at: tx.now,
            updated_at: tx.now,
            done_at: None,
            participants: draft.participants.clone(),
            linked_ticket_id: draft.linked_ticket_id,
            origin: draft.origin.clone(),
            waiting_since: None,
            reminded_at: None,
        };
        TICKETS.put(tx, &id, &ticket)?;
        relist_ticket(tx, None, &ticket)?;
        tx.log(RecordRef::ticket(id), ChangeOp::Created)?;
        let attachments = super::attachments::store_all(tx, &draft.attachments)?;
        let entry = tx.append_history(
            RecordRef::ticket(id),
            draft.author.clone(),
            Visibility::Public,
            EntryBody::Message {
                text: draft.body.clone(),
                attachments,
                threaded_by: None,
            },
        )?;
        if let Some(assignee) = draft.assignee_id {
            tx.append_history(
                RecordRef::ticket(id),
                Author::System,
                Visibility::Public,
                EntryBody::Event(Event::Assigned {
                    from: None,
                    to: assignee,
                }),
            )?;
            self.notify_assignee(
                tx,
                assignee,
                &ticket,
                &HistoryExcerpt::default(),
                &draft.body,
            )?;
        }
        if notify_requester {
            self.notify_requester(
                tx,
                NoticeKind::TicketCreated,
                &ticket,
                &HistoryExcerpt::default(),
                serde_json::json!({"message": {"author": author_name_of(&draft.author), "text": draft.body}}),
            )?;
        }
        Ok((ticket, entry))
    }
}

pub use crate::threads::normalize_message_id;

impl Engine {
    /// The record whose thread holds `message_id`, if any.
    pub fn record_for_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<RecordRef>, EngineError> {
        let key = normalize_message_id(message_id);
        crate::threads::record_of_message_id(&mut self.reader(), &key)
    }
}

fn matches(filter: &TicketFilter, ticket: &Ticket) -> bool {
    filter.status.is_none_or(|s| ticket.status == s)
        && filter
            .company_id
            .is_none_or(|c| ticket.company_id == Some(c))
        && filter
            .contact_id
            .is_none_or(|c| ticket.requester.contact_id == Some(c))
}

pub(crate) use crate::records::verbs::staff_author;

pub(crate) fn load_ticket(tx: &mut Tx<'_>, id: TicketId) -> Result<Ticket, EngineError> {
    TICKETS
        .get(tx, &id)?
        .ok_or_else(|| EngineError::not_found("ticket", id))
}

/// Writes a changed ticket and logs the change. The status index is kept by
/// [`change_status`], the only place a status changes.
pub(crate) fn save_ticket(tx: &mut Tx<'_>, ticket: &Ticket) -> Result<(), EngineError> {
    TICKETS.put(tx, &ticket.id, ticket)?;
    tx.log(RecordRef::ticket(ticket.id), ChangeOp::Updated)
}

fn author_name_of(author: &Author) -> String {
    match author {
        Author::Contact { name, .. } | Author::Staff { name, .. } => name.clone(),
        Author::System => String::new(),
    }
}

/// Moves a ticket to `to` with its history event; a no-op when it is there already.
pub(crate) fn change_status(
    tx: &mut Tx<'_>,
    id: TicketId,
    to: TicketStatus,
    author: Author,
) -> Result<Ticket, EngineError> {
    let mut ticket = load_ticket(tx, id)?;
    let from = ticket.status;
    if from == to {
        return Ok(ticket);
    }
    TicketList::Status(from).remove(tx, id)?;
    TicketList::Status(to).insert(tx, id)?;
    ticket.status = to;
    ticket.updated_at = tx.now;
    if to == TicketStatus::Done {
        ticket.done_at = Some(tx.now);
    }
    if to == TicketStatus::WaitingOnCustomer {
        ticket.waiting_since = Some(tx.now);
    }
    save_ticket(tx, &ticket)?;
    tx.append_history(
        RecordRef::ticket(id),
        author,
        Visibility::Public,
        EntryBody::Event(Event::StatusChanged { from, to }),
    )?;
    Ok(ticket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::parties::{NewCompany, NewContact, NewStaff};
    use std::sync::Arc;

    fn engine() -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), crate::EngineConfig::default()).unwrap();
        (dir, Arc::new(engine))
    }

    fn new_ticket(subject: &str) -> NewTicket {
        NewTicket {
            subject: subject.into(),
            body: "Die Kasse startet nicht.".into(),
            requester: RequesterInput::Email {
                email: "kunde@example.org".into(),
                name: None,
            },
            assignee_id: None,
            channel: Channel::Api,
            attachments: vec![],
            company_id: None,
            origin: None,
            notify: true,
        }
    }

    #[test]
    fn a_ticket_is_in_exactly_the_lists_of_its_status_after_moves_and_assignments() {
        let (_dir, engine) = engine();
        let staff = engine
            .create_staff(NewStaff {
                name: "Sam Support".into(),
                email: "sam@vendor.example".into(),
            })
            .unwrap();
        let ticket = engine.create_ticket(new_ticket("Drucker")).unwrap();
        let other = engine.create_ticket(new_ticket("Waage")).unwrap();
        let listed = |status: TicketStatus| -> Vec<u64> {
            let filter = TicketFilter {
                status: Some(status),
                company_id: None,
                contact_id: None,
            };
            let page = engine
                .list_tickets(&filter, PageRequest::new(None, None).unwrap())
                .unwrap();
            page.items.iter().map(|ticket| ticket.number).collect()
        };
        assert_eq!(listed(TicketStatus::New), vec![other.number, ticket.number]);
        engine
            .set_ticket_status(ticket.id, TicketStatus::InProgress, staff.id)
            .unwrap();
        // The shared verb saves the ticket through its kind's indexes: the move stays.
        engine.assign_ticket(ticket.id, staff.id).unwrap();
        engine
            .set_ticket_status(ticket.id, TicketStatus::Done, staff.id)
            .unwrap();
        assert_eq!(listed(TicketStatus::New), vec![other.number]);
        assert_eq!(listed(TicketStatus::InProgress), Vec::<u64>::new());
        assert_eq!(listed(TicketStatus::Done), vec![ticket.number]);
    }

    #[test]
    fn concurrent_creation_numbers_tickets_without_gaps_or_repeats() {
        let (_dir, engine) = engine();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let engine = engine.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| engine.create_ticket(new_ticket("Drucker")).unwrap().number)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut numbers: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=200).collect::<Vec<_>>());
    }

    #[test]
    fn a_refused_ticket_takes_no_number() {
        let (_dir, engine) = engine();
        assert!(engine.create_ticket(new_ticket("")).is_err());
        assert_eq!(engine.create_ticket(new_ticket("Kasse")).unwrap().number, 1);
    }

    #[test]
    fn status_changes_keep_the_index_and_history_in_step() {
        let (_dir, engine) = engine();
        let staff = engine
            .create_staff(NewStaff {
                name: "Sam".into(),
                email: "sam@vendor.example".into(),
            })
            .unwrap();
        let ticket = engine.create_ticket(new_ticket("Kasse")).unwrap();
        engine
            .set_ticket_status(ticket.id, TicketStatus::InProgress, staff.id)
            .unwrap();
        let in_progress = TicketFilter {
            status: Some(TicketStatus::InProgress),
            ..Default::default()
        };
        let new = TicketFilter {
            status: Some(TicketStatus::New),
            ..Default::default()
        };
        assert_eq!(
            engine
                .list_tickets(&in_progress, PageRequest::first())
                .unwrap()
                .total,
            1
        );
        assert_eq!(
            engine
                .list_tickets(&new, PageRequest::first())
                .unwrap()
                .total,
            0
        );
        let refused = engine.set_ticket_status(ticket.id, TicketStatus::New, staff.id);
        assert!(matches!(
            refused,
            Err(EngineError::Conflict {
                code: "illegal_transition",
                ..
            })
        ));
        let history = engine
            .history(RecordRef::ticket(ticket.id), PageRequest::first())
            .unwrap();
        assert_eq!(history.total, 2);
    }

    #[test]
    fn a_known_address_makes_the_ticket_the_contacts() {
        let (_dir, engine) = engine();
        let company = engine
            .create_company(NewCompany {
                name: "Café Müller".into(),
                kind: CompanyKind::Customer,
                reseller_id: None,
                onretail_instance_ids: vec![],
            })
            .unwrap();
        let contact = engine
            .create_contact(NewContact {
                company_id: company.id,
                name: "Maria Müller".into(),
                email: "Maria@Example.org".into(),
                role: ContactRole::Manager,
                locale: None,
            })
            .unwrap();
        let mut new = new_ticket("Bon-Drucker");
        new.requester = RequesterInput::Email {
            email: "MARIA@example.org".into(),
            name: None,
        };
        let ticket = engine.create_ticket(new).unwrap();
        assert_eq!(ticket.requester.contact_id, Some(contact.id));
        assert_eq!(ticket.company_id, Some(company.id));
    }
}
