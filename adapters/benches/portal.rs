//! Portal page rendering: the ticket list of a reseller whose customers have 10,000
//! tickets, and a ticket page with 500 history entries, each fetched through the
//! real router on a loopback socket with a real session, as a browser would.
//!
//! `cargo bench -p kontor --bench portal` prints p50, p99 and max per page.
//! `KONTOR_BENCH_TICKETS` (default 10000) and `KONTOR_BENCH_REQUESTS` (default 300)
//! set the size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kontor::http::{self, webhooks::OnRetailSettings, AppState, HttpSettings};
use kontor_engine::ids::StaffId;
use kontor_engine::links::{LinkClaims, LinkScope, LINK_PURPOSE};
use kontor_engine::model::{Channel, CompanyKind, ContactRole, RecordRef, Visibility};
use kontor_engine::ops::parties::{NewCompany, NewContact, NewStaff};
use kontor_engine::ops::tickets::{NewTicket, RequesterInput};
use kontor_engine::{Engine, EngineConfig};

/// The allocator the `kontor` binary runs with, so the figures are of it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    // reqwest has no rustls provider of its own (adapters/src/tls.rs).
    kontor::tls::install_provider();
    let tickets: usize = env_or("KONTOR_BENCH_TICKETS", 10_000);
    let requests: usize = env_or("KONTOR_BENCH_REQUESTS", 300);
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(dir.path(), EngineConfig::default()).expect("engine"));
    let (cookie, big_ticket) = seed(&engine, tickets);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let settings = HttpSettings {
            public_url: base.clone(),
            onretail: OnRetailSettings::new("", "", 60),
            portal: Default::default(),
            admin_secret: String::new(),
        };
        let pages = Arc::new(
            kontor::http::pages::Pages::load(&kontor_engine::notify::templates::shipped_dir())
                .expect("page templates"),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(
            listener,
            AppState::new(engine.clone(), settings, pages),
            async {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::new();
        println!("portal pages, {requests} requests each, one client, through HTTP with a session");
        for (what, path) in [
            (
                format!(
                    "ticket list of a reseller, {tickets} customer tickets (page 1 of {})",
                    tickets.div_ceil(25)
                ),
                "/portal/tickets".to_string(),
            ),
            (
                "ticket list, filtered to one status, page 3".to_string(),
                "/portal/tickets?status=in_progress&page=3".to_string(),
            ),
            (
                "ticket page with 500 history entries".to_string(),
                format!("/portal/tickets/{big_ticket}"),
            ),
        ] {
            let mut latencies = Vec::with_capacity(requests);
            let mut bytes = 0;
            for _ in 0..requests {
                let started = Instant::now();
                let response = client
                    .get(format!("{base}{path}"))
                    .header("cookie", format!("kontor_session={cookie}"))
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(response.status(), 200, "{path}");
                bytes = response.bytes().await.expect("body").len();
                latencies.push(started.elapsed());
            }
            latencies.sort();
            let at = |q: f64| ms(latencies[((latencies.len() as f64 - 1.0) * q) as usize]);
            println!(
                "  {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} KB a page)",
                at(0.5),
                at(0.99),
                at(1.0),
                bytes / 1024
            );
        }
        let _ = stop.send(());
        let _ = server.await;
    });
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A reseller with 100 customers sharing `tickets` tickets, its contact's session,
/// and one ticket with 500 history entries.
fn seed(engine: &Engine, tickets: usize) -> (String, u64) {
    let reseller = engine
        .create_company(NewCompany {
            name: "Kassenprofi Nord".into(),
            kind: CompanyKind::Reseller,
            reseller_id: None,
            onretail_instance_ids: vec![],
        })
        .expect("reseller");
    let rita = engine
        .create_contact(NewContact {
            company_id: reseller.id,
            name: "Rita Reseller".into(),
            email: "rita@kassenprofi.example".into(),
            role: ContactRole::Member,
            locale: None,
        })
        .expect("contact");
    let staff = engine
        .create_staff(NewStaff {
            name: "Sam Support".into(),
            email: "sam@vendor.example".into(),
        })
        .expect("staff");
    let mut customers = Vec::new();
    for n in 0..100 {
        let company = engine
            .create_company(NewCompany {
                name: format!("Kunde {n}"),
                kind: CompanyKind::Customer,
                reseller_id: Some(reseller.id),
                onretail_instance_ids: vec![],
            })
            .expect("customer");
        let contact = engine
            .create_contact(NewContact {
                company_id: company.id,
                name: format!("Kunde {n}"),
                email: format!("kunde{n}@example.org"),
                role: ContactRole::Manager,
                locale: None,
            })
            .expect("contact");
        customers.push(contact.id);
    }
    let threads = 8;
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let customers = &customers;
            scope.spawn(move || {
                for n in (thread..tickets).step_by(threads) {
                    engine
                        .create_ticket(NewTicket {
                            subject: format!("Bondrucker {n} druckt nicht"),
                            body: "Beim Tagesabschluss kommt kein Bon.".into(),
                            requester: RequesterInput::Contact(customers[n % customers.len()]),
                            assignee_id: None,
                            channel: Channel::Email,
                            attachments: vec![],
                            company_id: None,
                            origin: None,
                            notify: false,
                        })
                        .expect("ticket");
                }
            });
        }
    });
    let big = engine
        .create_ticket(NewTicket {
            subject: "Kasse friert ein".into(),
            body: "Seit dem Update friert die Kasse ein.".into(),
            requester: RequesterInput::Contact(customers[0]),
            assignee_id: None,
            channel: Channel::Email,
            attachments: vec![],
            company_id: None,
            origin: None,
            notify: false,
        })
        .expect("ticket");
    for n in 0..499 {
        engine
            .post_staff_message(
                big.id,
                StaffId(staff.id.0),
                &format!("Schritt {n}: bitte Kasse neu starten und das Protokoll schicken. Danke!"),
                Visibility::Public,
            )
            .expect("message");
    }
    let claims = LinkClaims {
        record: RecordRef::company(reseller.id),
        contact_id: Some(rita.id),
        scope: LinkScope::Login,
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        epoch: 0,
    };
    let token = engine.keys().sign_claims(LINK_PURPOSE, &claims);
    let opened = engine.open_portal_link(&token).expect("a session");
    (opened.secret, big.number)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
