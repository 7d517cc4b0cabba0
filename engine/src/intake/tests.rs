use std::sync::Arc;

use super::text::fixture_tests::XorShift;
use super::*;
use crate::model::TicketStatus;
use crate::EngineConfig;

fn engine_with(dir: &std::path::Path, config: EngineConfig) -> Engine {
    crate::test_support::reopen_with(dir, config)
}

fn inbound(raw: &[u8]) -> InboundMail {
    InboundMail {
        raw: raw.to_vec(),
        envelope_from: Some("sender@example.org".into()),
        envelope_to: vec!["support@support.example.com".into()],
    }
}

#[test]
fn our_recipients_are_the_mailbox_its_plus_addresses_and_postmaster() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), EngineConfig::default());
    for ours in [
        "support@support.example.com",
        "Support@SUPPORT.example.com",
        "support+4-0a1b2c3d4e@support.example.com",
        "postmaster",
        "postmaster@support.example.com",
    ] {
        assert!(engine.accepts_recipient(ours), "{ours}");
    }
    for theirs in [
        "support@example.com",
        "sales@support.example.com",
        "supportx@support.example.com",
        "nobody",
    ] {
        assert!(!engine.accepts_recipient(theirs), "{theirs}");
    }
}

#[test]
fn mail_without_a_message_id_is_idempotent_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), EngineConfig::default());
    let raw = b"From: a@example.org\r\nSubject: Hallo\r\n\r\nText\r\n";
    let first = engine.ingest(inbound(raw)).unwrap();
    assert_eq!(first.outcome, IntakeOutcome::Created);
    let again = engine.ingest(inbound(raw)).unwrap();
    assert_eq!(again.outcome, IntakeOutcome::Duplicate);
    assert_eq!(again.ticket_id, first.ticket_id);
}

#[test]
fn a_quarantined_message_is_reprocessed_after_the_limit_is_raised() {
    let dir = tempfile::tempdir().unwrap();
    let raw = format!(
        "From: a@example.org\r\nSubject: Logfile\r\nMessage-ID: <big@example.org>\r\n\r\n{}\r\n",
        "log line\r\n".repeat(200)
    );
    let small = EngineConfig {
        max_body_bytes: 1000,
        ..EngineConfig::default()
    };
    let quarantined = {
        let engine = engine_with(dir.path(), small);
        let result = engine.ingest(inbound(raw.as_bytes())).unwrap();
        assert_eq!(result.outcome, IntakeOutcome::Rejected);
        let list = engine.quarantine(PageRequest::first()).unwrap();
        assert_eq!(list.total, 1);
        assert_eq!(list.items[0].subject.as_deref(), Some("Logfile"));
        result.quarantine_id.unwrap()
    };
    let engine = engine_with(dir.path(), EngineConfig::default());
    let result = engine.reprocess_quarantined(quarantined).unwrap();
    assert_eq!(result.outcome, IntakeOutcome::Created);
    assert_eq!(engine.quarantine(PageRequest::first()).unwrap().total, 0);
    // The intake record now says created: a redelivery is a duplicate of the ticket.
    let again = engine.ingest(inbound(raw.as_bytes())).unwrap();
    assert_eq!(again.outcome, IntakeOutcome::Duplicate);
    assert_eq!(again.ticket_id, result.ticket_id);
}

const TOKENS: &[&[u8]] = &[
    b"From: a@example.org\r\n",
    b"From: =?utf-8?B?w6TDtsO8?= <b@example.org>\r\n",
    b"To: support+1-0011223344@support.example.com\r\n",
    b"Subject: [#1] Re: x\r\n",
    b"In-Reply-To: <m1@example.org>\r\n",
    b"References: <m1@example.org> <",
    b"Message-ID: <m1@example.org>\r\n",
    b"Auto-Submitted: auto-replied\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
    b"Content-Type: multipart/mixed; boundary=\"b\"\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/html; charset=x-unknown\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Action: failed\r\nFinal-Recipient: rfc822; gone@example.org\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"\r\n",
    b"[ref:1-0011223344]",
    b"> quoted\r\n",
    b"<script>x</script>",
    b"\xff\xfe\x00\xc3",
];

/// The in-suite stand-in for `engine/fuzz` (cargo-fuzz needs nightly): 10,000
/// deterministic pseudo-random messages through the whole intake, from 8
/// threads. Nothing may panic, and every message must get an answer.
#[test]
fn ten_thousand_random_messages_through_the_intake() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(engine_with(
        dir.path(),
        EngineConfig {
            max_per_sender_per_hour: 1_000_000,
            ..EngineConfig::default()
        },
    ));
    let threads: Vec<_> = (0..8u64)
        .map(|thread| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (thread + 1));
                for _ in 0..1250 {
                    let mut input = Vec::new();
                    for _ in 0..rng.below(30) {
                        if rng.below(4) == 0 {
                            input.extend((0..rng.below(40)).map(|_| rng.next() as u8));
                        } else {
                            input.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
                        }
                    }
                    let envelope_from = if rng.below(5) == 0 {
                        ""
                    } else {
                        "s@example.org"
                    };
                    let mail = InboundMail {
                        raw: input,
                        envelope_from: Some(envelope_from.into()),
                        envelope_to: vec!["support@support.example.com".into()],
                    };
                    engine.ingest(mail).expect("every message gets an answer");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("no panic in the intake");
    }
}

#[test]
fn staff_answering_by_mail_are_staff_and_move_no_status() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), EngineConfig::default());
    let staff = engine
        .create_staff(crate::ops::parties::NewStaff {
            name: "Sam".into(),
            email: "sam@vendor.example".into(),
        })
        .unwrap();
    let first = b"From: a@example.org\r\nSubject: Kasse\r\nMessage-ID: <k1@example.org>\r\n\r\nKasse defekt\r\n";
    let created = engine.ingest(inbound(first)).unwrap();
    let ticket_id = created.ticket_id.unwrap();
    engine
        .set_ticket_status(ticket_id, TicketStatus::WaitingOnCustomer, staff.id)
        .unwrap();
    let answer = b"From: Sam <sam@vendor.example>\r\nSubject: Re: Kasse\r\nMessage-ID: <k2@vendor.example>\r\nIn-Reply-To: <k1@example.org>\r\n\r\nBitte neu starten.\r\n";
    let appended = engine.ingest(inbound(answer)).unwrap();
    assert_eq!(appended.outcome, IntakeOutcome::Appended);
    assert_eq!(
        engine.ticket(ticket_id).unwrap().status,
        TicketStatus::WaitingOnCustomer
    );
    let history = engine
        .history(RecordRef::ticket(ticket_id), PageRequest::first())
        .unwrap();
    let last = history.items.last().unwrap();
    assert!(matches!(last.author, Author::Staff { id, .. } if id == staff.id));
}
