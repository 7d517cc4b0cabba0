//! Notification throughput.
//!
//! `cargo bench -p kontor --bench notify` measures
//! 1. rendering alone: the handlebars text and HTML parts of a confirmation;
//! 2. render and queue through the engine: tickets created with their confirmation
//!    rendered and written to the outbox in the same durable transaction (8 threads),
//!    against the same creation without a notice;
//! 3. the sender draining the outbox (`adapters::outbound::run`, 4 and 16 in flight) into a
//!    local SMTP server: a minimal tokio sink in this bench (the sender's own ceiling),
//!    and aiosmtpd (`tests/support/smtp_sink.py`, a real server) when python3 has it.
//!
//! `KONTOR_BENCH_NOTICES` sets the count per run (default 5000).

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Instant;

use kontor::outbound::{SenderSettings, TransportSettings};
use kontor_engine::model::{Channel, Locale, NoticeKind};
use kontor_engine::notify::EmailTemplates;
use kontor_engine::ops::outbox::RetryPolicy;
use kontor_engine::ops::tickets::{NewTicket, RequesterInput};
use kontor_engine::{Engine, EngineConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

fn main() {
    let total: usize = std::env::var("KONTOR_BENCH_NOTICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    println!("notifications; {total} a run");
    println!(
        "render only        1 thread : {:>8.0} notices/s",
        render_run(total)
    );
    let without = queue_run(total, 8, false).0;
    println!("create, no notice  8 threads: {without:>8.0} tickets/s");
    let (with, _, _) = queue_run(total, 8, true);
    println!("create + render + queue   8 threads: {with:>8.0} tickets/s (each with its notice)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for concurrency in [4, 16] {
        let rate = runtime.block_on(send_run(total, Sink::Tokio, concurrency));
        println!("sender -> tokio sink, {concurrency:>2} in flight: {rate:>8.0} messages/s");
    }
    match runtime.block_on(send_run_aiosmtpd(total, 16)) {
        Some(rate) => println!("sender -> aiosmtpd,   16 in flight: {rate:>8.0} messages/s"),
        None => println!("sender -> aiosmtpd: skipped (python3 with aiosmtpd not found)"),
    }
}

fn render_run(total: usize) -> f64 {
    let templates = EmailTemplates::shipped().expect("templates");
    let context = serde_json::json!({
        "recipient_name": "Maria Müller", "locale": "de", "subject_tag": "[#42]",
        "ticket": {"number": 42, "subject": "Bondrucker druckt nicht", "status": "Neu"},
        "link": "http://127.0.0.1:8080/l/k1.AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRob",
        "reply_address": "support+42-0a1b2c3d4e@support.example.com",
        "message": {"author": "Maria Müller", "text": "Seit heute früh druckt der Bondrucker keine Belege mehr.\nNeustart hat nicht geholfen."},
        "history": [{"author": "Sam", "at": "2026-03-02 10:00 UTC", "text": "Bitte Papier prüfen."}],
        "reopen_days": 30, "marker": "[ref:42-0a1b2c3d4e]",
    });
    let started = Instant::now();
    for _ in 0..total {
        templates
            .render(NoticeKind::TicketCreated, Locale::De, &context)
            .expect("rendered");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn engine_with_templates(dir: &std::path::Path) -> Engine {
    let mut config = EngineConfig::default();
    config.notify.max_auto_per_address_per_hour = u32::MAX;
    let mut engine = Engine::open(dir, config).expect("engine");
    engine.enable_notifications(EmailTemplates::shipped().expect("templates"));
    engine
}

fn new_ticket(n: usize, notify: bool) -> NewTicket {
    NewTicket {
        subject: format!("Bondrucker an Kasse {n} druckt nicht"),
        body: "Seit heute früh druckt der Bondrucker keine Belege mehr. Neustart hat nicht geholfen.\n\nMaria Müller".into(),
        requester: RequesterInput::Email {
            email: format!("kunde{n}@example.org"),
            name: Some("Maria Müller".into()),
        },
        assignee_id: None,
        channel: Channel::Api,
        attachments: vec![],
        notify,
        company_id: None,
        origin: None,
    }
}

/// Creates `total` tickets from `threads` threads; returns tickets/s and the engine.
fn queue_run(total: usize, threads: usize, notify: bool) -> (f64, tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(engine_with_templates(dir.path()));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|worker| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for n in (worker..total).step_by(threads) {
                    engine
                        .create_ticket(new_ticket(n, notify))
                        .expect("created");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    (rate, dir, engine)
}

enum Sink {
    Tokio,
    Url(String),
}

async fn send_run(total: usize, sink: Sink, concurrency: usize) -> f64 {
    let url = match sink {
        Sink::Tokio => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let port = listener.local_addr().expect("address").port();
            tokio::spawn(tokio_sink(listener));
            format!("smtp://127.0.0.1:{port}")
        }
        Sink::Url(url) => url,
    };
    let (_, _dir, engine) = tokio::task::spawn_blocking(move || queue_run(total, 8, true))
        .await
        .expect("queued");
    let settings = SenderSettings {
        transport: TransportSettings::Smtp { url },
        from: "Support <support@support.example.com>"
            .parse()
            .expect("from"),
        retry: RetryPolicy {
            max_attempts: 3,
            base: chrono::Duration::seconds(1),
            max: chrono::Duration::seconds(1),
        },
        concurrency,
        dkim: None,
    };
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let sender = tokio::spawn(kontor::outbound::run(engine.clone(), settings, stop));
    loop {
        let engine = engine.clone();
        let pending = tokio::task::spawn_blocking(move || engine.due_notices(1))
            .await
            .expect("read")
            .expect("outbox");
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let _ = stop_sender.send(true);
    let _ = sender.await;
    rate
}

async fn send_run_aiosmtpd(total: usize, concurrency: usize) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/smtp_sink.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(dir.path())
        .arg("0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let port: u16 = line.trim().strip_prefix("listening on ")?.parse().ok()?;
    let rate = send_run(
        total,
        Sink::Url(format!("smtp://127.0.0.1:{port}")),
        concurrency,
    )
    .await;
    let _ = child.kill();
    let _ = child.wait();
    Some(rate)
}

/// Just enough SMTP to accept every message: the sender's own ceiling.
async fn tokio_sink(listener: tokio::net::TcpListener) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut lines = tokio::io::BufReader::new(read);
            if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                return;
            }
            let mut line = String::new();
            let mut in_data = false;
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let reply: &[u8] = if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        b"250 stored\r\n"
                    } else {
                        continue;
                    }
                } else {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 ok\r\n",
                    }
                };
                if write.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}
