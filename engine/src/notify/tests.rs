//! The notify rules at the engine level: the row is written with its change, the
//! bouncing address and the loop guard, the outbox's outcomes, and every link check.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use crate::clock::FixedClock;
use crate::links::{KeyRing, LinkClaims, LinkScope};
use crate::model::*;
use crate::ops::links::LinkRefused;
use crate::ops::outbox::{Deferred, RetryPolicy};
use crate::ops::parties::NewStaff;
use crate::ops::tickets::{NewTicket, RequesterInput};
use crate::ops::PageRequest;
use crate::store::sled_store::SledStore;
use crate::validate::EmailAddress;
use crate::{Engine, EngineConfig};

use super::EmailTemplates;

struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<FixedClock>,
    engine: Engine,
}

fn fixture(max_auto: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap(),
    ));
    let mut config = EngineConfig::default();
    config.notify.max_auto_per_address_per_hour = max_auto;
    let store = SledStore::open(dir.path(), Default::default()).unwrap();
    let keys = KeyRing::load_or_create(dir.path()).unwrap();
    let mut engine = Engine::with_parts(Arc::new(store), clock.clone(), keys, config);
    engine.enable_notifications(EmailTemplates::shipped().unwrap());
    Fixture {
        _dir: dir,
        clock,
        engine,
    }
}

fn ticket_for(engine: &Engine, email: &str, notify: bool) -> Ticket {
    engine
        .create_ticket(NewTicket {
            subject: "Kasse".into(),
            body: "Geht nicht.".into(),
            requester: RequesterInput::Email {
                email: email.into(),
                name: None,
            },
            assignee_id: None,
            channel: Channel::Api,
            attachments: vec![],
            notify,
            company_id: None,
            origin: None,
        })
        .unwrap()
}

fn outbox(engine: &Engine) -> Vec<OutboxRow> {
    engine
        .list_outbox(None, PageRequest::first())
        .unwrap()
        .items
}

#[test]
fn a_new_ticket_queues_its_confirmation_with_a_kept_message_id() {
    let f = fixture(20);
    let ticket = ticket_for(&f.engine, "kunde@example.org", true);
    let rows = outbox(&f.engine);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.kind, NoticeKind::TicketCreated);
    assert_eq!(row.state, OutboxState::Pending);
    assert_eq!(
        row.reply_to.as_deref(),
        Some(f.engine.reply_address(&ticket).as_str())
    );
    assert!(row.subject.starts_with("[#1] "), "{}", row.subject);
    assert!(row.text.contains("/l/k1."), "{}", row.text);
    assert_eq!(
        f.engine.record_for_message_id(&row.message_id).unwrap(),
        Some(RecordRef::ticket(ticket.id))
    );
    assert_eq!(
        row.message_id,
        format!("<kontor.{}.1@support.example.com>", row.id)
    );
    // notify: false queues nothing; a refused ticket queues nothing either.
    ticket_for(&f.engine, "still@example.org", false);
    assert_eq!(outbox(&f.engine).len(), 1);
}

#[test]
fn bouncing_addresses_and_the_loop_guard_queue_nothing() {
    let f = fixture(2);
    let address = EmailAddress::parse("gone@example.org").unwrap();
    f.engine.mark_address_bouncing(&address, "550").unwrap();
    ticket_for(&f.engine, "gone@example.org", true);
    assert!(outbox(&f.engine).is_empty());
    for _ in 0..4 {
        ticket_for(&f.engine, "loop@example.org", true);
    }
    assert_eq!(outbox(&f.engine).len(), 2);
    // The next hour counts afresh.
    f.clock.set(f.clock_now() + Duration::hours(1));
    ticket_for(&f.engine, "loop@example.org", true);
    assert_eq!(outbox(&f.engine).len(), 3);
}

impl Fixture {
    fn clock_now(&self) -> chrono::DateTime<Utc> {
        crate::clock::Clock::now(self.clock.as_ref())
    }
}

#[test]
fn outcomes_are_final_and_failures_are_history() {
    let f = fixture(20);
    let ticket = ticket_for(&f.engine, "kunde@example.org", true);
    let row = outbox(&f.engine).remove(0);
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::seconds(30),
        max: Duration::seconds(3600),
    };
    assert_eq!(
        f.engine
            .notice_deferred(row.id, "421 busy", policy)
            .unwrap(),
        Deferred::RetryIn(Duration::seconds(30))
    );
    assert!(
        f.engine.due_notices(10).unwrap().is_empty(),
        "waits for its backoff"
    );
    f.clock.set(f.clock_now() + Duration::seconds(30));
    assert_eq!(f.engine.due_notices(10).unwrap().len(), 1);
    assert_eq!(
        f.engine
            .notice_deferred(row.id, "421 busy", policy)
            .unwrap(),
        Deferred::RetryIn(Duration::seconds(60))
    );
    assert_eq!(
        f.engine
            .notice_deferred(row.id, "421 busy", policy)
            .unwrap(),
        Deferred::GaveUp
    );
    let failed = f.engine.outbox_row(row.id).unwrap().unwrap();
    assert_eq!(failed.state, OutboxState::Failed);
    let history = f
        .engine
        .history(RecordRef::ticket(ticket.id), PageRequest::first())
        .unwrap();
    assert!(history.items.iter().any(|entry| matches!(
        entry.body,
        EntryBody::Event(Event::NotificationFailed { .. })
    )));
    // A sent row is never handed out again, whatever comes after.
    let second = ticket_for(&f.engine, "other@example.org", true);
    let row = outbox(&f.engine)
        .into_iter()
        .find(|row| row.ticket_number == Some(second.number))
        .unwrap();
    f.engine.notice_sent(row.id).unwrap();
    f.engine.notice_failed(row.id, "550 late").unwrap();
    assert_eq!(
        f.engine.outbox_row(row.id).unwrap().unwrap().state,
        OutboxState::Sent
    );
    assert!(f.engine.due_notices(10).unwrap().is_empty());
    // A permanent failure marks the address.
    let third = ticket_for(&f.engine, "unknown@example.org", true);
    let row = outbox(&f.engine)
        .into_iter()
        .find(|row| row.ticket_number == Some(third.number))
        .unwrap();
    f.engine
        .notice_failed(row.id, "550 5.1.1 user unknown")
        .unwrap();
    let address = EmailAddress::parse("unknown@example.org").unwrap();
    assert!(f.engine.bounce_of(&address).unwrap().is_some());
}

#[test]
fn staff_hear_of_assignments_and_customer_replies() {
    let f = fixture(20);
    let staff = f
        .engine
        .create_staff(NewStaff {
            name: "Sam".into(),
            email: "sam@vendor.example".into(),
        })
        .unwrap();
    let ticket = ticket_for(&f.engine, "kunde@example.org", false);
    f.engine.assign_ticket(ticket.id, staff.id).unwrap();
    let ticket = f.engine.ticket(ticket.id).unwrap();
    let history = f.engine.history_excerpt(ticket.id).unwrap();
    f.engine
        .write(|tx| {
            f.engine
                .notify_customer_replied(tx, &ticket, &history, "Danke, geht wieder.")
        })
        .unwrap();
    f.engine
        .write(|tx| f.engine.notify_reopened(tx, &ticket, &history))
        .unwrap();
    let kinds: Vec<NoticeKind> = outbox(&f.engine).iter().rev().map(|row| row.kind).collect();
    assert_eq!(
        kinds,
        vec![
            NoticeKind::StaffTicketAssigned,
            NoticeKind::StaffCustomerReplied,
            NoticeKind::TicketReopened
        ]
    );
}

#[test]
fn every_link_check() {
    let f = fixture(20);
    let ticket = ticket_for(&f.engine, "kunde@example.org", false);
    let record = RecordRef::ticket(ticket.id);
    let link = f.engine.create_link(record, None, LinkScope::View).unwrap();
    let token = link.url.rsplit("/l/").next().unwrap().to_string();
    assert!(token.len() < 50, "{token}");

    // Valid: a session for the ticket's page, and that page only.
    let opened = f.engine.open_portal_link(&token).unwrap();
    assert_eq!(opened.location, "/portal/tickets/1");
    let viewer = f.engine.portal_viewer(&opened.secret).unwrap().unwrap();
    assert!(!viewer.whole_portal());
    assert_eq!(f.engine.portal_ticket(&viewer, 1).unwrap().id, ticket.id);
    let other = ticket_for(&f.engine, "jemand@example.org", false);
    assert!(f.engine.portal_ticket(&viewer, other.number).is_err());
    // A session is no link, and a link is no session.
    assert_eq!(
        f.engine.open_portal_link(&opened.secret),
        Err(LinkRefused::Forged)
    );
    assert!(f.engine.portal_viewer(&token).unwrap().is_none());

    // Tampered: every single character changed is refused.
    for index in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        if tampered != token {
            assert!(
                matches!(
                    f.engine.open_portal_link(&tampered),
                    Err(LinkRefused::Forged)
                ),
                "{tampered}"
            );
        }
    }

    // Wrong scope.
    let sign = f.engine.keys().sign_claims(
        "link",
        &LinkClaims {
            record,
            contact_id: None,
            scope: LinkScope::Sign,
            expires_at: f.clock_now() + Duration::days(1),
            epoch: 0,
        },
    );
    assert_eq!(
        f.engine.open_portal_link(&sign),
        Err(LinkRefused::WrongScope)
    );
    assert!(f.engine.create_link(record, None, LinkScope::Sign).is_err());

    // Expired, by the injected clock.
    f.clock.set(link.expires_at + Duration::minutes(1));
    assert!(matches!(
        f.engine.open_portal_link(&token),
        Err(LinkRefused::Expired(_))
    ));
    assert!(f.engine.portal_viewer(&opened.secret).unwrap().is_none());
    f.clock.set(link.expires_at - Duration::days(1));

    // Revoked by the epoch.
    assert_eq!(f.engine.revoke_links(record).unwrap(), 1);
    assert_eq!(f.engine.open_portal_link(&token), Err(LinkRefused::Revoked));
    assert!(f.engine.portal_viewer(&opened.secret).unwrap().is_none());
    let current = f.engine.create_link(record, None, LinkScope::View).unwrap();
    let current = current.url.rsplit("/l/").next().unwrap().to_string();
    assert!(f.engine.open_portal_link(&current).is_ok());

    // Rotated: the old key still verifies, the new one signs; removed: it does not.
    let mut ring = f.engine.keys().clone();
    let new_key = ring.rotate();
    let now = f.clock_now();
    let old_claims = ring.verify_claims("link", &current, now).unwrap();
    let newer = ring.sign_claims("link", &old_claims);
    assert!(newer.starts_with(&format!("{new_key}.")));
    assert!(ring.verify_claims("link", &newer, now).is_ok());
    ring.remove("k1").unwrap();
    assert!(ring.verify_claims("link", &current, now).is_err());
    assert!(ring.remove(&new_key).is_err(), "the active key stays");
}

#[test]
fn backoff_doubles_up_to_its_max() {
    let base = Duration::seconds(30);
    let max = Duration::seconds(3600);
    let waits: Vec<i64> = (1..=9)
        .map(|attempt| super::backoff(attempt, base, max).num_seconds())
        .collect();
    assert_eq!(waits, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    assert_eq!(super::backoff(200, base, max), max);
}

#[test]
fn the_commercial_hooks_queue_a_notice_with_a_link_of_their_scope() {
    use crate::ops::parties::NewCompany;
    let f = fixture(20);
    let company = f
        .engine
        .create_company(NewCompany {
            name: "Café Müller".into(),
            kind: CompanyKind::Customer,
            reseller_id: None,
            onretail_instance_ids: vec![],
        })
        .unwrap();
    let contact = f
        .engine
        .create_contact(crate::ops::parties::NewContact {
            company_id: company.id,
            name: "Maria".into(),
            email: "maria@example.org".into(),
            role: ContactRole::Manager,
            locale: Some("en".into()),
        })
        .unwrap();
    let quote = f
        .engine
        .create_quote(crate::records::quote::NewQuote {
            company_id: company.id,
            contact_id: contact.id,
            title: "Angebot 2026-17".into(),
            lines: vec![crate::records::commercial::LineInput {
                description: "Kasse".into(),
                quantity: 1,
                unit_price_cents: 100,
            }],
            currency: "EUR".into(),
            valid_until: "2099-01-01".into(),
            staff_id: None,
        })
        .unwrap();
    for kind in [
        NoticeKind::SignRequest,
        NoticeKind::QuoteSent,
        NoticeKind::OrderConfirmed,
        NoticeKind::InvoiceIssued,
    ] {
        f.engine
            .write(|tx| {
                f.engine.notify_record_contact(
                    tx,
                    kind,
                    &quote,
                    LinkScope::Sign,
                    serde_json::json!({}),
                )
            })
            .unwrap();
    }
    let rows = outbox(&f.engine);
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(row.subject.contains("Angebot 2026-17"), "{}", row.subject);
        assert!(row.text.contains("/l/k1."), "{}", row.text);
        // A reply threads into the quote.
        assert!(
            row.reply_to
                .as_deref()
                .unwrap_or("")
                .starts_with("support+q"),
            "{:?}",
            row.reply_to
        );
    }
    f.engine.send_login_link("maria@example.org").unwrap();
    f.engine.send_login_link("nobody@example.org").unwrap();
    let login = outbox(&f.engine).remove(0);
    assert_eq!(login.kind, NoticeKind::LoginLink);
    let token = login
        .text
        .split("/l/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        f.engine.open_portal_link(&token).unwrap().location,
        "/portal"
    );
}

#[test]
fn only_due_rows_are_handed_out_and_a_deferred_row_comes_back_when_due() {
    let f = fixture(100);
    ticket_for(&f.engine, "erste@example.org", true);
    ticket_for(&f.engine, "zweite@example.org", true);
    let due = f.engine.due_notices(10).unwrap();
    assert_eq!(due.len(), 2);
    let policy = RetryPolicy {
        max_attempts: 5,
        base: Duration::minutes(10),
        max: Duration::hours(1),
    };
    f.engine
        .notice_deferred(due[0].id, "451 later", policy)
        .unwrap();
    let ids = |rows: Vec<OutboxRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    assert_eq!(ids(f.engine.due_notices(10).unwrap()), vec![due[1].id]);
    f.engine.notice_sent(due[1].id).unwrap();
    assert!(f.engine.due_notices(10).unwrap().is_empty());
    f.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 2, 10, 11, 0).unwrap());
    assert_eq!(ids(f.engine.due_notices(10).unwrap()), vec![due[0].id]);
}

use crate::test_support::reopen;

#[test]
fn a_schema_1_due_index_is_migrated_at_open() {
    use crate::store::Tree;
    let dir = tempfile::tempdir().unwrap();
    let row_id = {
        let mut engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
        engine.enable_notifications(EmailTemplates::shipped().unwrap());
        ticket_for(&engine, "alt@example.org", true);
        let row = engine.due_notices(10).unwrap().remove(0);
        // Rewrite the store as schema 1 left it: the due index keyed by id alone.
        engine
            .write(|tx| {
                tx.remove(
                    Tree::OutboxDue,
                    &crate::store::tables::TableKey::table_key(&crate::store::tables::DueKey {
                        at: row.next_attempt_at,
                        id: row.id,
                    }),
                )?;
                tx.put_raw(Tree::OutboxDue, &row.id.to_be_bytes(), &[])?;
                tx.put_raw(Tree::Meta, b"schema_version", &1u64.to_be_bytes())
            })
            .unwrap();
        row.id
    };
    let engine = reopen(dir.path());
    let due: Vec<u64> = engine
        .due_notices(10)
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(due, vec![row_id]);
    let keys: Vec<usize> = engine
        .store
        .scan_prefix(Tree::OutboxDue, &[], false)
        .map(|item| item.unwrap().0.len())
        .collect();
    assert_eq!(keys, vec![16]);
    let version = engine
        .store
        .get(Tree::Meta, b"schema_version")
        .unwrap()
        .unwrap();
    assert_eq!(version, crate::store::SCHEMA_VERSION.to_be_bytes().to_vec());
}
