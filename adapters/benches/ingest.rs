//! Inbound mail throughput, durable before acknowledged:
//!
//! - end to end: 8 SMTP connections into the real listener and engine on a temp
//!   data dir (SMTP → parsed → stored raw → threaded → flushed → 250);
//! - the engine alone: `Engine::ingest` from 8 threads.
//!
//! Realistic 4-8 KB multipart/alternative mail (text and HTML), half of it new
//! tickets and half replies threading by In-Reply-To. Run with
//! `cargo bench -p kontor --bench ingest`; `KONTOR_BENCH_MESSAGES` sets the count
//! per connection (default 500).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kontor::inbound::EngineSink;
use kontor::smtp::{serve, SmtpConfig};
use kontor_engine::intake::InboundMail;
use kontor_engine::{Engine, EngineConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The allocator the `kontor` binary runs with, so the figures are of it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The black-box suite's SMTP client, for its dot-stuffing: one copy of the rule.
#[path = "../../tests/it/smtp_client.rs"]
#[allow(dead_code)]
mod smtp_client;

const CONNECTIONS: usize = 8;
const SUPPORT: &str = "support@support.example.com";

fn per_connection() -> usize {
    std::env::var("KONTOR_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        max_per_sender_per_hour: u32::MAX,
        ..EngineConfig::default()
    }
}

/// Message `i` of a stream: even ones open a ticket, odd ones reply to the one
/// before, from the same sender. Bodies are 4-8 KB of text and its HTML.
fn message(run: &str, stream: usize, i: usize) -> Vec<u8> {
    let pair = i / 2;
    let sender = format!("kunde-{run}-{stream}-{pair}@bench.example");
    let paragraph = "Der Bondrucker an Kasse 2 druckt seit dem Update keine Belege mehr. Ein Neustart hat nicht geholfen, die Fehlermeldung lautet E-47.\r\n";
    let target = 2000 + (stream * 7919 + i * 104_729) % 2000;
    let mut text = String::new();
    while text.len() < target {
        text.push_str(paragraph);
    }
    let html = format!(
        "<html><body><p>{}</p></body></html>",
        text.replace("\r\n", "<br>\r\n")
    );
    let threading = if i % 2 == 1 {
        format!("In-Reply-To: <m-{run}-{stream}-{}@bench.example>\r\nReferences: <m-{run}-{stream}-{}@bench.example>\r\n", i - 1, i - 1)
    } else {
        String::new()
    };
    format!(
        "From: Kunde {pair} <{sender}>\r\nTo: {SUPPORT}\r\nSubject: Bondrucker {stream}-{pair}\r\nMessage-ID: <m-{run}-{stream}-{i}@bench.example>\r\n{threading}MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n"
    )
    .into_bytes()
}

async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await.expect("read reply");
        assert!(n > 0, "server closed");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    }
}

async fn smtp_client(address: std::net::SocketAddr, run: String, stream: usize, count: usize) {
    let socket = TcpStream::connect(address).await.expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    expect(&mut reader, "220").await;
    write
        .write_all(b"EHLO bench.example\r\n")
        .await
        .expect("write");
    expect(&mut reader, "250").await;
    for i in 0..count {
        let body = smtp_client::dot_stuff(&message(&run, stream, i));
        // PIPELINING: envelope and DATA in one write.
        write
            .write_all(format!("MAIL FROM:<bench@bench.example> BODY=8BITMIME\r\nRCPT TO:<{SUPPORT}>\r\nDATA\r\n").as_bytes())
            .await
            .expect("write");
        expect(&mut reader, "250").await;
        expect(&mut reader, "250").await;
        expect(&mut reader, "354").await;
        write.write_all(&body).await.expect("write");
        expect(&mut reader, "250").await;
    }
    write.write_all(b"QUIT\r\n").await.expect("write");
    expect(&mut reader, "221").await;
}

fn end_to_end(count: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(dir.path(), engine_config()).expect("engine"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let config = SmtpConfig {
            hostname: "bench.example".into(),
            idle_timeout: Duration::from_secs(60),
            ..SmtpConfig::default()
        };
        let sink = Arc::new(EngineSink {
            engine: engine.clone(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, config, sink, async {
            let _ = stopped.await;
        }));
        // Warm-up, then the measured round.
        let round = |run: &'static str, count: usize| async move {
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|stream| tokio::spawn(smtp_client(address, run.to_string(), stream, count)))
                .collect();
            for client in clients {
                client.await.expect("client");
            }
        };
        round("warm", 20).await;
        let started = Instant::now();
        round("e2e", count).await;
        let elapsed = started.elapsed().as_secs_f64();
        let _ = stop.send(());
        server.await.expect("server").expect("serve");
        (CONNECTIONS * count) as f64 / elapsed
    })
}

fn engine_only(count: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(dir.path(), engine_config()).expect("engine"));
    let messages: Vec<Vec<Vec<u8>>> = (0..CONNECTIONS)
        .map(|stream| (0..count).map(|i| message("engine", stream, i)).collect())
        .collect();
    let started = Instant::now();
    let threads: Vec<_> = messages
        .into_iter()
        .map(|stream| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for raw in stream {
                    engine
                        .ingest(InboundMail {
                            raw,
                            envelope_from: Some("bench@bench.example".into()),
                            envelope_to: vec![SUPPORT.into()],
                        })
                        .expect("ingest");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    (CONNECTIONS * count) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let count = per_connection();
    let size: usize = (0..16).map(|i| message("size", 0, i).len()).sum::<usize>() / 16;
    println!("ingest: {CONNECTIONS} streams x {count} messages, avg {size} bytes, 50% new tickets / 50% replies");
    let rate = engine_only(count);
    println!("ingest, engine alone (8 threads, durable): {rate:.0} messages/s");
    let rate = end_to_end(count);
    println!("ingest, end to end (SMTP, 8 connections, stored + threaded + flushed before 250): {rate:.0} messages/s");
}
