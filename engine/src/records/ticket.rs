//! Tickets as a record kind. Their operations live in `ops::tickets`, older than the
//! seam; their storage keeps its own trees (the id is the number).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Audience, RecordHead, RecordType, ReplyEffect, TakingReply};
use crate::error::EngineError;
use crate::ids::{StaffId, TicketId};
use crate::links::LinkScope;
use crate::model::{
    EntryBody, Event, Locale, RecordKind, RecordRef, Ticket, TicketStatus, Visibility,
};
use crate::ops::tickets::{change_status, load_ticket, save_ticket};
use crate::store::tables::Writer;
use crate::store::Tree;
use crate::webhooks::WebhookEvent;

impl RecordType for Ticket {
    const KIND: RecordKind = RecordKind::Ticket;
    const LINK_SCOPES: &'static [LinkScope] = &[LinkScope::View];
    const AUDIENCE: Audience = Audience::Requester;

    fn head(&self) -> RecordHead {
        RecordHead {
            record: RecordRef::ticket(self.id),
            number: Some(self.number),
            title: self.subject.clone(),
            status: self.status.as_str(),
            company_id: self.company_id,
            contact_id: self.requester.contact_id,
            email: self.requester.email.clone(),
            name: self.requester.name.clone(),
            participants: self.participants.clone(),
            assignee_id: self.assignee_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    const MESSAGE_NOTICE: crate::model::NoticeKind = crate::model::NoticeKind::StaffMessage;

    const CREATED_WEBHOOK: Option<WebhookEvent> = Some(WebhookEvent::TicketCreated);

    fn webhook_event(event: &Event) -> Option<WebhookEvent> {
        matches!(event, Event::StatusChanged { .. }).then_some(WebhookEvent::TicketStatusChanged)
    }

    /// A ticket's page is named by its number, which is its id.
    fn portal_path(id: u64) -> String {
        format!("/portal/tickets/{id}")
    }

    fn status_code(&self) -> u8 {
        self.status.code()
    }

    fn parse_status_code(status: &str) -> Option<u8> {
        crate::model::TicketStatus::parse(status).map(|status| status.code())
    }

    fn touch(&mut self, at: DateTime<Utc>, assignee: Option<StaffId>) {
        self.updated_at = at;
        if assignee.is_some() {
            self.assignee_id = assignee;
        }
    }

    /// A customer's reply moves the workflow: waiting → in progress; done → backlog
    /// with a `reopened` event, unless it was closed longer than the reopen window.
    /// Addresses copied on the mail become participants.
    fn take_reply(reply: &mut TakingReply<'_, '_>, id: u64) -> Result<ReplyEffect, EngineError> {
        let id = TicketId(id);
        let ticket = load_ticket(reply.tx, id)?;
        let mut effect = ReplyEffect::Appended;
        if !reply.is_by_staff() {
            match ticket.status {
                TicketStatus::Done => {
                    let done_at = ticket.done_at.unwrap_or(ticket.updated_at);
                    if reply
                        .reopen_within
                        .is_some_and(|window| reply.tx.now >= done_at + window)
                    {
                        return Ok(ReplyEffect::TooLate {
                            continues: Some(id),
                        });
                    }
                    change_status(reply.tx, id, TicketStatus::Backlog, reply.author.clone())?;
                    reply.tx.append_history(
                        RecordRef::ticket(id),
                        reply.author.clone(),
                        Visibility::Public,
                        EntryBody::Event(Event::Reopened),
                    )?;
                    effect = ReplyEffect::Reopened;
                }
                TicketStatus::WaitingOnCustomer => {
                    change_status(reply.tx, id, TicketStatus::InProgress, reply.author.clone())?;
                }
                _ => {}
            }
        }
        let mut current = load_ticket(reply.tx, id)?;
        for address in &reply.copied {
            if Some(address) != current.requester.email.as_ref()
                && !current.participants.contains(address)
            {
                current.participants.push(address.clone());
            }
        }
        current.updated_at = reply.tx.now;
        save_ticket(reply.tx, &current)?;
        Ok(effect)
    }

    fn notice_data(&self, locale: Locale) -> Value {
        json!({
            "number": self.number,
            "subject": self.subject,
            "title": self.subject,
            "status": self.status.display_name(locale),
        })
    }

    fn storage(id: u64) -> (Tree, Vec<u8>) {
        (Tree::Tickets, id.to_be_bytes().to_vec())
    }

    fn write_indexes(
        &self,
        old: Option<&Self>,
        writer: &mut dyn Writer,
    ) -> Result<(), EngineError> {
        crate::store::tables::relist_ticket(writer, old, self)
    }
}
