//! The record kinds' rules, on the in-memory store: state changes and refusals,
//! uniqueness, module changes, the chains.

use std::collections::BTreeMap;

use super::commercial::LineInput;
use super::document::{FieldInput, NewDocument, SignInput};
use super::invoice::{InvoiceStatus, NewInvoice};
use super::quote::{AcceptInput, NewQuote, QuoteStatus};
use super::subscription::{Module, NewSubscription};
use super::verbs::RecordFilter;
use super::*;
use crate::clock::FixedClock;
use crate::model::{CompanyKind, ContactRole, EntryBody, Event};
use crate::ops::parties::{NewCompany, NewContact, NewStaff};
use crate::ops::PageRequest;
use crate::{Engine, EngineConfig, EngineError};
use std::sync::Arc;

struct Fixture {
    engine: Engine,
    company: CompanyId,
    contact: ContactId,
    staff: StaffId,
}

fn fixture() -> Fixture {
    let mut engine = Engine::in_memory(EngineConfig::default());
    engine.set_clock(Arc::new(FixedClock::new(
        "2026-11-30T10:00:00Z".parse().unwrap(),
    )));
    let company = engine
        .create_company(NewCompany {
            name: "Bäckerei Schmidt".into(),
            kind: CompanyKind::Customer,
            reseller_id: None,
            onretail_instance_ids: vec![],
        })
        .unwrap();
    let contact = engine
        .create_contact(NewContact {
            company_id: company.id,
            name: "Petra Schmidt".into(),
            email: "petra@example.org".into(),
            role: ContactRole::Manager,
            locale: None,
        })
        .unwrap();
    let staff = engine
        .create_staff(NewStaff {
            name: "Sam".into(),
            email: "sam@vendor.example".into(),
        })
        .unwrap();
    Fixture {
        engine,
        company: company.id,
        contact: contact.id,
        staff: staff.id,
    }
}

fn line(quantity: i64, cents: i64) -> LineInput {
    LineInput {
        description: "Kasse".into(),
        quantity,
        unit_price_cents: cents,
    }
}

fn new_quote(f: &Fixture, valid_until: &str) -> NewQuote {
    NewQuote {
        company_id: f.company,
        contact_id: f.contact,
        title: "Zweite Kasse".into(),
        lines: vec![line(2, 1000), line(1, 250)],
        currency: "EUR".into(),
        valid_until: valid_until.into(),
        staff_id: Some(f.staff),
    }
}

fn conflict_code(result: Result<impl std::fmt::Debug, EngineError>) -> &'static str {
    match result {
        Err(EngineError::Conflict { code, .. } | EngineError::Taken { code, .. }) => code,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn accept(f: &Fixture) -> AcceptInput {
    AcceptInput {
        contact_id: f.contact,
        signature: "Petra Schmidt".into(),
        ip: "192.0.2.1".into(),
        user_agent: "test".into(),
    }
}

#[test]
fn a_quote_totals_its_lines_and_accepting_it_makes_a_confirmed_order() {
    let f = fixture();
    let quote = f.engine.create_quote(new_quote(&f, "2026-12-31")).unwrap();
    assert_eq!(quote.total_cents, 2250);
    assert_eq!(
        conflict_code(f.engine.accept_quote(quote.id, accept(&f))),
        "illegal_transition"
    );
    f.engine.send_quote(quote.id, None).unwrap();
    let (quote, order) = f.engine.accept_quote(quote.id, accept(&f)).unwrap();
    assert_eq!(quote.status, QuoteStatus::Accepted);
    assert_eq!(quote.order_id, Some(order.id));
    assert_eq!(order.signed_by, "Petra Schmidt");
    assert_eq!(Some(order.sha256.clone()), quote.sha256);
    assert_eq!(
        order.sha256,
        crate::signing::quote_sha256(&quote),
        "the hash is recomputable from the stored quote"
    );
    assert_eq!(
        conflict_code(f.engine.accept_quote(quote.id, accept(&f))),
        "already_signed"
    );
    let cancelled = f
        .engine
        .cancel_order(order.id, "both agreed", f.contact, f.staff)
        .unwrap();
    assert_eq!(cancelled.status, super::order::OrderStatus::Cancelled);
    let quote = f.engine.quote(quote.id).unwrap();
    assert_eq!(quote.status, QuoteStatus::Cancelled);
    assert_eq!(quote.cancel_reason.as_deref(), Some("both agreed"));
}

#[test]
fn an_expired_or_declined_quote_is_closed() {
    let f = fixture();
    let late = f.engine.create_quote(new_quote(&f, "2026-12-01")).unwrap();
    f.engine.send_quote(late.id, None).unwrap();
    let declined = f.engine.create_quote(new_quote(&f, "2026-12-31")).unwrap();
    f.engine.send_quote(declined.id, None).unwrap();
    assert!(matches!(
        f.engine.decline_quote(declined.id, f.contact, "  "),
        Err(EngineError::Invalid { .. })
    ));
    let quote = f
        .engine
        .decline_quote(declined.id, f.contact, "zu teuer")
        .unwrap();
    assert_eq!(quote.decline_reason.as_deref(), Some("zu teuer"));
    assert_eq!(
        conflict_code(f.engine.accept_quote(declined.id, accept(&f))),
        "quote_closed"
    );

    let mut engine = f.engine;
    engine.set_clock(Arc::new(FixedClock::new(
        "2026-12-02T08:00:00Z".parse().unwrap(),
    )));
    assert_eq!(engine.expire_quotes().unwrap(), (1, 1));
    assert_eq!(engine.expire_quotes().unwrap(), (0, 0), "once per quote");
    assert_eq!(engine.quote(late.id).unwrap().status, QuoteStatus::Expired);
    let f = Fixture { engine, ..f };
    assert_eq!(
        conflict_code(f.engine.accept_quote(late.id, accept(&f))),
        "quote_closed"
    );
}

#[test]
fn bad_lines_name_every_field_and_store_nothing() {
    let f = fixture();
    let mut bad = new_quote(&f, "31.12.2026");
    bad.lines = vec![line(0, -5)];
    bad.currency = "euro".into();
    let Err(EngineError::Invalid { fields, .. }) = f.engine.create_quote(bad) else {
        panic!("expected invalid");
    };
    for field in [
        "currency",
        "valid_until",
        "lines[0].quantity",
        "lines[0].unit_price_cents",
    ] {
        assert!(fields.contains_key(field), "{field} in {fields:?}");
    }
    let page = f
        .engine
        .list_records::<Quote>(&RecordFilter::default(), PageRequest::first())
        .unwrap();
    assert_eq!(page.total, 0);
}

#[test]
fn invoice_numbers_are_unique_and_only_open_invoices_change() {
    let f = fixture();
    let invoice = |number: &str| NewInvoice {
        company_id: f.company,
        contact_id: f.contact,
        number: number.into(),
        order_id: None,
        lines: vec![line(1, 9900)],
        currency: "EUR".into(),
        due_date: "2026-12-14".into(),
        staff_id: None,
    };
    let first = f.engine.create_invoice(invoice("RE-1")).unwrap();
    assert_eq!(
        conflict_code(f.engine.create_invoice(invoice("RE-1"))),
        "number_taken"
    );
    f.engine.create_invoice(invoice("RE-2")).unwrap();
    let paid = f
        .engine
        .set_invoice_status(first.id, InvoiceStatus::Paid, f.staff)
        .unwrap();
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(
        conflict_code(
            f.engine
                .set_invoice_status(first.id, InvoiceStatus::Cancelled, f.staff)
        ),
        "illegal_transition"
    );
    let open = RecordFilter {
        status: Some("open".into()),
        ..RecordFilter::default()
    };
    let page = f
        .engine
        .list_records::<Invoice>(&open, PageRequest::first())
        .unwrap();
    assert_eq!(page.total, 1);
}

#[test]
fn replacing_modules_records_what_came_and_went() {
    let f = fixture();
    let module = |code: &str, components: &[&str]| Module {
        code: code.into(),
        name: code.into(),
        components: components.iter().map(|c| c.to_string()).collect(),
    };
    let subscription = f
        .engine
        .create_subscription(NewSubscription {
            company_id: f.company,
            contact_id: f.contact,
            plan: "Business".into(),
            modules: vec![module("POS", &["TSE", "Bon"]), module("STOCK", &[])],
            started_on: "2026-01-01".into(),
            renews_on: "2027-01-01".into(),
            staff_id: None,
        })
        .unwrap();
    f.engine
        .replace_subscription_modules(
            subscription.id,
            vec![module("POS", &["TSE", "Küche"]), module("DATEV", &[])],
            f.staff,
        )
        .unwrap();
    let history = f
        .engine
        .history(subscription.head().record, PageRequest::first())
        .unwrap();
    let changed = history
        .items
        .iter()
        .find_map(|entry| match &entry.body {
            EntryBody::Event(Event::ModulesChanged { added, removed }) => {
                Some((added.clone(), removed.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(changed.0, vec!["POS/Küche", "DATEV"]);
    assert_eq!(changed.1, vec!["POS/Bon", "STOCK"]);
}

#[test]
fn a_document_is_signed_once_with_every_required_field() {
    let f = fixture();
    let field = |name: &str, field_type: &str, required: bool| FieldInput {
        name: name.into(),
        label: name.into(),
        field_type: field_type.into(),
        required,
    };
    let no_signature = f.engine.create_document(NewDocument {
        title: "AVV".into(),
        company_id: f.company,
        signer_contact_id: f.contact,
        body_html: "<p>Text</p><script>alert(1)</script>".into(),
        fields: vec![field("role", "text", true), field("x", "radio", false)],
        valid_until: None,
        staff_id: None,
    });
    let Err(EngineError::Invalid { fields, .. }) = no_signature else {
        panic!("expected invalid");
    };
    assert!(fields.contains_key("fields"));
    assert!(fields.contains_key("fields[1].type"));
    let document = f
        .engine
        .create_document(NewDocument {
            title: "AVV".into(),
            company_id: f.company,
            signer_contact_id: f.contact,
            body_html: "<p>Text</p><script>alert(1)</script>".into(),
            fields: vec![field("role", "text", true), field("sig", "signature", true)],
            valid_until: None,
            staff_id: None,
        })
        .unwrap();
    assert!(!document.body_html.contains("script"));
    f.engine.send_document(document.id, None).unwrap();
    let mut values = BTreeMap::new();
    values.insert("sig".to_string(), "Petra Schmidt".to_string());
    let sign = |values: &BTreeMap<String, String>| {
        f.engine.sign_document(
            document.id,
            SignInput {
                content_sha256: None,
                values: values.clone(),
                ip: "192.0.2.1".into(),
                user_agent: "test".into(),
            },
        )
    };
    let Err(EngineError::Invalid { fields, .. }) = sign(&values) else {
        panic!("expected the missing field to be named");
    };
    assert!(fields.contains_key("role"));
    assert_eq!(
        f.engine.document(document.id).unwrap().status,
        super::document::DocumentStatus::Sent
    );
    values.insert("role".to_string(), "Inhaberin".to_string());
    let signed = sign(&values).unwrap();
    assert_eq!(
        signed.sha256.as_deref(),
        Some(crate::signing::document_sha256(&signed).as_str())
    );
    assert_eq!(conflict_code(sign(&values)), "already_signed");
    assert_eq!(
        conflict_code(f.engine.cancel_document(document.id, "zu spät", f.staff)),
        "already_signed"
    );
    let report = f.engine.verify().unwrap();
    assert!(report.entries >= 2);
}

#[test]
fn a_changed_history_entry_breaks_its_chain() {
    let f = fixture();
    let quote = f.engine.create_quote(new_quote(&f, "2026-12-31")).unwrap();
    f.engine.send_quote(quote.id, None).unwrap();
    f.engine
        .post_record_message(
            quote.head().record,
            f.staff,
            "Gern erklären wir das Angebot.",
            crate::model::Visibility::Public,
        )
        .unwrap();
    assert!(f.engine.verify().is_ok());
    let prefix = quote.head().record.key_prefix();
    let (key, value) = f
        .engine
        .store
        .scan_prefix(crate::store::Tree::History, &prefix, false)
        .last()
        .unwrap()
        .unwrap();
    let tampered = String::from_utf8(value).unwrap().replace("Gern", "Ungern");
    f.engine
        .store
        .insert_raw(crate::store::Tree::History, &key, tampered.as_bytes())
        .unwrap();
    let broken = f.engine.verify().unwrap_err().to_string();
    assert!(broken.contains("hash does not match"), "{broken}");
    assert!(
        broken.contains(&display_id(quote.head().record)),
        "{broken}"
    );
}

#[test]
fn links_are_revoked_for_records_of_every_kind_and_a_missing_one_is_not_found() {
    let f = fixture();
    let quote = f.engine.create_quote(new_quote(&f, "2026-12-31")).unwrap();
    let record = quote.head().record;
    assert_eq!(f.engine.revoke_links(record).unwrap(), 1);
    assert_eq!(f.engine.revoke_links(record).unwrap(), 2);
    let missing = crate::model::RecordRef {
        kind: crate::model::RecordKind::Invoice,
        id: 4711,
    };
    assert!(matches!(
        f.engine.revoke_links(missing),
        Err(EngineError::NotFound { .. })
    ));
}
