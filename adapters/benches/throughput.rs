//! Ticket creation throughput, durable before acknowledged (group commit).
//!
//! `cargo bench -p kontor --bench throughput` creates tickets, each with its first
//! history message, through the engine alone (8 and 32 threads) and through HTTP
//! (8 concurrent keep-alive clients against the real router on a loopback socket),
//! and quotes with three priced lines through HTTP beside them.
//! Set `KONTOR_BENCH_TICKETS` to change the count per run (default 20000), and
//! `KONTOR_BENCH_ONLY=engine` or `=http` to run one half (to alternate builds
//! quickly on a noisy machine).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kontor::http::{self, AppState};
use kontor_engine::model::Channel;
use kontor_engine::ops::tickets::{NewTicket, RequesterInput};
use kontor_engine::{Engine, EngineConfig};

/// The allocator the `kontor` binary runs with, so the figures are of it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    // reqwest has no rustls provider of its own (adapters/src/tls.rs).
    kontor::tls::install_provider();
    let total: usize = std::env::var("KONTOR_BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let only = std::env::var("KONTOR_BENCH_ONLY").unwrap_or_default();
    println!("ticket creation with a history message, durable before acknowledged; {total} tickets a run");
    if only != "http" {
        for threads in [8, 32] {
            let rate = engine_run(total, threads);
            println!("engine  {threads:>2} threads: {rate:>8.0} tickets/s");
        }
    }
    if only == "engine" {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for clients in [8, 32] {
        let rate = runtime.block_on(http_run(total, clients, Created::Tickets));
        println!("http    {clients:>2} clients: {rate:>8.0} tickets/s");
    }
    for clients in [8, 32] {
        let rate = runtime.block_on(http_run(total, clients, Created::Quotes));
        println!("http    {clients:>2} clients: {rate:>8.0} quotes/s (three lines each)");
    }
}

/// What the HTTP run creates.
#[derive(Debug, Clone, Copy)]
enum Created {
    Tickets,
    Quotes,
}

fn new_ticket(n: usize) -> NewTicket {
    NewTicket {
        subject: format!("Bondrucker an Kasse {n} druckt nicht"),
        body: "Seit heute früh druckt der Bondrucker keine Belege mehr. Neustart hat nicht geholfen.\n\nMaria Müller".into(),
        requester: RequesterInput::Email {
            email: format!("kunde{}@example.org", n % 97),
            name: None,
        },
        assignee_id: None,
        channel: Channel::Api,
        attachments: vec![],
        company_id: None,
        origin: None,
        notify: false,
    }
}

fn engine_run(total: usize, threads: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(dir.path(), EngineConfig::default()).expect("engine"));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for n in (worker..total).step_by(threads) {
                    engine.create_ticket(new_ticket(n)).expect("created");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    print_batches(&engine);
    rate
}

/// How the batched commit grouped the run: the throughput is about transactions
/// per batch over the time of one batch, so these say why a figure moved.
fn print_batches(engine: &Engine) {
    let Some(commit) = engine
        .operational_stats()
        .ok()
        .and_then(|stats| stats.commit)
    else {
        return;
    };
    let batches = commit.batch_transactions.count.max(1) as f64;
    eprintln!(
        "  {:.0} batches, {:.1} transactions each, {:.0} µs log + apply each",
        batches,
        commit.batch_transactions.sum / batches,
        commit.commit_seconds.sum / batches * 1e6
    );
}

async fn http_run(total: usize, clients: usize, created: Created) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(dir.path(), EngineConfig::default()).expect("engine"));
    let (_, key) = engine.create_api_key("bench").expect("key");
    let company = engine
        .create_company(kontor_engine::ops::parties::NewCompany {
            name: "Bäckerei Schmidt".into(),
            kind: kontor_engine::model::CompanyKind::Customer,
            reseller_id: None,
            onretail_instance_ids: vec![],
        })
        .expect("company");
    let contact = engine
        .create_contact(kontor_engine::ops::parties::NewContact {
            company_id: company.id,
            name: "Petra Schmidt".into(),
            email: "petra@example.org".into(),
            role: kontor_engine::model::ContactRole::Manager,
            locale: None,
        })
        .expect("contact");
    let (company_id, contact_id) = (company.id.to_string(), contact.id.to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        listener,
        AppState::new(
            engine,
            http::HttpSettings::default(),
            std::sync::Arc::new(
                kontor::http::pages::Pages::load(&kontor_engine::notify::templates::shipped_dir())
                    .expect("page templates"),
            ),
        ),
        async {
            let _ = stopped.await;
        },
    ));
    let path = match created {
        Created::Tickets => "tickets",
        Created::Quotes => "quotes",
    };
    let url = format!("http://{address}/api/v1/{path}");
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let url = url.clone();
            let key = key.clone();
            let (company_id, contact_id) = (company_id.clone(), contact_id.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                for n in (client..total).step_by(clients) {
                    let body = match created {
                        Created::Tickets => {
                            let ticket = new_ticket(n);
                            serde_json::json!({
                                "subject": ticket.subject,
                                "body": ticket.body,
                                "requester_email": format!("kunde{}@example.org", n % 97),
                            })
                        }
                        Created::Quotes => serde_json::json!({
                            "company_id": company_id, "contact_id": contact_id,
                            "title": format!("Zweite Kasse {n}"),
                            "lines": [
                                {"description": "Kassenterminal T2", "quantity": 1, "unit_price_cents": 129900},
                                {"description": "Bondrucker", "quantity": 1, "unit_price_cents": 24900},
                                {"description": "Einrichtung (Stunden)", "quantity": 3, "unit_price_cents": 9500}
                            ],
                            "currency": "EUR", "valid_until": "2099-12-31",
                        }),
                    };
                    let response = http
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(response.status(), 201);
                    let _ = response.bytes().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    rate
}
