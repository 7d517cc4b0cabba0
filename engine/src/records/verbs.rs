//! The verbs every record kind shares (CONTRACT.md section 3): history, messages,
//! assign, time entries, lists; and the helpers the kinds' operations write with.

use chrono::NaiveDate;
use serde_json::json;

use super::{spec_of, IndexEntry, RecordHead, RecordType};
use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, StaffId};
use crate::model::*;
use crate::ops::{paginate, PageRequest};
use crate::store::tables::STAFF;
use crate::tx::Tx;
use crate::{Engine, Page};

/// Filters of a record list; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub company_id: Option<CompanyId>,
    pub contact_id: Option<ContactId>,
    /// The status as the API names it (`"sent"`).
    pub status: Option<String>,
}

impl Engine {
    /// The head of any record, or 404.
    pub fn record_head(&self, record: RecordRef) -> Result<RecordHead, EngineError> {
        super::head_of(&mut self.reader(), record)
    }

    /// A staff member writes on a record; a public message is mailed to the
    /// record's person with a view link and the reply address.
    pub fn post_record_message(
        &self,
        record: RecordRef,
        staff_id: StaffId,
        body: &str,
        visibility: Visibility,
    ) -> Result<HistoryEntry, EngineError> {
        let mut errors = FieldErrors::new();
        let body = self.check_body(&mut errors, "body", body)?;
        errors.finish()?;
        let body = body.unwrap_or_default();
        let staff = self.staff_in_field(staff_id)?;
        let spec = spec_of(record.kind)?;
        self.record_head(record)?;
        let history = self.history_excerpt_of(record)?;
        self.write(|tx| {
            spec.touch(tx, record.id, None)?;
            let entry = tx.append_history(
                record,
                staff_author(&staff),
                visibility,
                EntryBody::Message {
                    text: body.clone(),
                    attachments: vec![],
                    threaded_by: None,
                },
            )?;
            if visibility == Visibility::Public {
                spec.notify_message(
                    self,
                    tx,
                    record.id,
                    &history,
                    json!({"message": {"author": staff.name, "text": body}}),
                )?;
            }
            Ok(entry)
        })
    }

    /// Assigns a record to a staff member, who is told; the same staff member
    /// again changes nothing.
    pub fn assign_record(
        &self,
        record: RecordRef,
        staff_id: StaffId,
    ) -> Result<RecordHead, EngineError> {
        let staff = self.staff_in_field(staff_id)?;
        let spec = spec_of(record.kind)?;
        self.record_head(record)?;
        let history = self.history_excerpt_of(record)?;
        self.write(|tx| {
            let Some(before) = spec.head(tx, record.id)? else {
                return Err(EngineError::not_found(
                    record.kind.as_str(),
                    super::display_id(record),
                ));
            };
            if before.assignee_id == Some(staff_id) {
                return Ok(before);
            }
            let head = spec.touch(tx, record.id, Some(staff_id))?;
            tx.append_history(
                record,
                staff_author(&staff),
                Visibility::Public,
                EntryBody::Event(Event::Assigned {
                    from: before.assignee_id,
                    to: staff_id,
                }),
            )?;
            spec.notify_assigned(self, tx, staff_id, record.id, &history)?;
            Ok(head)
        })
    }

    /// Books staff time on a record; time entries are internal.
    pub fn add_record_time_entry(
        &self,
        record: RecordRef,
        staff_id: StaffId,
        minutes: i64,
        note: &str,
        date: Option<NaiveDate>,
    ) -> Result<HistoryEntry, EngineError> {
        let mut errors = FieldErrors::new();
        if minutes < 1 || minutes > crate::ops::tickets::MAX_MINUTES as i64 {
            errors.add(
                "minutes",
                "invalid",
                format!("must be between 1 and {}", crate::ops::tickets::MAX_MINUTES),
            );
        }
        if note.chars().count() > crate::ops::tickets::MAX_NOTE_CHARS {
            errors.add(
                "note",
                "too_long",
                format!(
                    "is longer than {} characters",
                    crate::ops::tickets::MAX_NOTE_CHARS
                ),
            );
        }
        errors.finish()?;
        let staff = self.staff_in_field(staff_id)?;
        let spec = spec_of(record.kind)?;
        self.record_head(record)?;
        let date = date.unwrap_or_else(|| self.clock().now().date_naive());
        self.write(|tx| {
            spec.touch(tx, record.id, None)?;
            tx.append_history(
                record,
                staff_author(&staff),
                Visibility::Internal,
                EntryBody::TimeEntry {
                    minutes: minutes as u32,
                    note: note.trim().to_string(),
                    date,
                },
            )
        })
    }

    /// Records of kind `R` matching `filter`, newest first.
    pub fn list_records<R: RecordType>(
        &self,
        filter: &RecordFilter,
        request: PageRequest,
    ) -> Result<Page<R>, EngineError> {
        let status = match &filter.status {
            Some(text) => Some(R::parse_status_code(text).ok_or_else(|| {
                EngineError::invalid_field("status", "invalid", format!("unknown status '{text}'"))
            })?),
            None => None,
        };
        let index = if let Some(contact) = filter.contact_id {
            Some(IndexEntry::Contact(contact))
        } else if let Some(company) = filter.company_id {
            Some(IndexEntry::Company(company))
        } else {
            status.map(IndexEntry::Status)
        };
        let ids = super::ids_in_index(self.store.as_ref(), R::KIND, index.as_ref());
        let matching = ids.filter_map(|id| {
            let record = id.and_then(|id| super::load::<R>(&mut self.reader(), id));
            match record {
                Ok(Some(record)) => {
                    let head = record.head();
                    let fits = filter.company_id.is_none_or(|c| head.company_id == Some(c))
                        && filter.contact_id.is_none_or(|c| head.contact_id == Some(c))
                        && status.is_none_or(|code| record.status_code() == code);
                    fits.then_some(Ok(record))
                }
                Ok(None) => None,
                Err(error) => Some(Err(error)),
            }
        });
        paginate(matching, request, |record| Ok(Some(record)))
    }

    // The helpers the kinds' operations write with.

    /// The contact `contact_id`, which must be a person at `company_id`.
    pub(crate) fn party_in_company(
        &self,
        company_id: CompanyId,
        contact_id: ContactId,
        field: &'static str,
    ) -> Result<Contact, EngineError> {
        self.company(company_id)
            .map_err(|_| EngineError::not_found_in_field("company", company_id, "company_id"))?;
        let contact = self
            .contact(contact_id)
            .map_err(|_| EngineError::not_found_in_field("contact", contact_id, field))?;
        if contact.company_id != company_id {
            return Err(EngineError::Rule {
                code: "not_of_company",
                message: format!("{field}: {contact_id} is not a contact of {company_id}"),
            });
        }
        Ok(contact)
    }

    pub(crate) fn staff_exists(
        &self,
        staff_id: Option<StaffId>,
        field: &'static str,
    ) -> Result<(), EngineError> {
        if let Some(id) = staff_id {
            self.staff(id)
                .map_err(|_| EngineError::not_found_in_field("staff", id, field))?;
        }
        Ok(())
    }

    pub(crate) fn staff_in_field(&self, staff_id: StaffId) -> Result<Staff, EngineError> {
        let mut reader = self.reader();
        STAFF
            .get(&mut reader, &staff_id)?
            .ok_or_else(|| EngineError::not_found_in_field("staff", staff_id, "staff_id"))
    }

    /// The author of a staff action; the system when no staff member is named.
    pub(crate) fn staff_author_of(&self, staff_id: Option<StaffId>) -> Result<Author, EngineError> {
        match staff_id {
            Some(id) => Ok(staff_author(&self.staff_in_field(id)?)),
            None => Ok(Author::System),
        }
    }

    /// Writes a new record with its indexes and announces it in the changelog.
    pub(crate) fn insert_record<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        record: &R,
    ) -> Result<(), EngineError> {
        super::save(tx, None, record)?;
        tx.log(record.head().record, ChangeOp::Created)
    }

    /// Writes a changed record; its indexes follow.
    pub(crate) fn update_record<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        old: &R,
        record: &R,
    ) -> Result<(), EngineError> {
        super::save(tx, Some(old), record)?;
        tx.log(record.head().record, ChangeOp::Updated)
    }

    /// Appends a public event to a record's history.
    pub(crate) fn record_event<R: RecordType>(
        &self,
        tx: &mut Tx<'_>,
        record: &R,
        author: Author,
        event: Event,
    ) -> Result<HistoryEntry, EngineError> {
        tx.append_history(
            record.head().record,
            author,
            Visibility::Public,
            EntryBody::Event(event),
        )
    }
}

pub(crate) fn staff_author(staff: &Staff) -> Author {
    Author::Staff {
        id: staff.id,
        name: staff.name.clone(),
        email: staff.email.clone(),
    }
}

/// A reply of a record's people to take in: what they wrote and how it came.
pub(crate) struct CustomerReply<'a> {
    pub author: Author,
    pub text: &'a str,
    pub attachments: &'a [crate::ops::attachments::NewAttachment],
    /// The mail rule that threaded it (`token`, `references`…); `None` in the portal.
    pub threaded_by: Option<&'static str>,
    /// Other addresses copied on the mail, ours left out.
    pub copied: Vec<crate::validate::EmailAddress>,
    /// [`super::TakingReply::reopen_within`].
    pub reopen_within: Option<chrono::Duration>,
}

impl Engine {
    /// Takes a reply into `record`, whatever its kind: the kind's workflow moves
    /// ([`RecordType::take_reply`]), the message is appended, and the record's staff
    /// member hears of it (its person too, when it reopened the record). Staff
    /// writing from their mail client move nothing and are not notified of
    /// themselves. A record closed too long ago to take it returns
    /// [`super::ReplyEffect::TooLate`] with no entry.
    pub(crate) fn take_customer_reply(
        &self,
        tx: &mut Tx<'_>,
        record: RecordRef,
        reply: CustomerReply<'_>,
    ) -> Result<(super::ReplyEffect, Option<HistoryEntry>), EngineError> {
        let spec = spec_of(record.kind)?;
        let mut taking = super::TakingReply {
            tx,
            author: reply.author,
            copied: reply.copied,
            reopen_within: reply.reopen_within,
        };
        let effect = spec.take_reply(&mut taking, record.id)?;
        if let super::ReplyEffect::TooLate { .. } = effect {
            return Ok((effect, None));
        }
        let from_staff = taking.is_by_staff();
        let author = taking.author;
        let attachments = crate::ops::attachments::store_all(tx, reply.attachments)?;
        let entry = tx.append_history(
            record,
            author,
            Visibility::Public,
            EntryBody::Message {
                text: reply.text.to_string(),
                attachments,
                threaded_by: reply.threaded_by.map(str::to_string),
            },
        )?;
        if !from_staff {
            spec.notify_reply(self, tx, record.id, effect, reply.text)?;
        }
        Ok((effect, Some(entry)))
    }
}
