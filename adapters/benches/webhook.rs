//! onRetail webhook load: signed posts per second and latency percentiles.
//!
//! `cargo bench -p kontor --bench webhook` runs the real router on a loopback socket
//! and drives it with keep-alive clients that sign every post (HMAC-SHA256), like the
//! point of sale does. `KONTOR_BENCH_POSTS` (default 20000) and
//! `KONTOR_BENCH_CLIENTS` (default 16) set the load.

use std::sync::Arc;
use std::time::Instant;

use hmac::{Hmac, Mac};
use kontor::http::{self, webhooks::OnRetailSettings, AppState, HttpSettings};
use kontor_engine::{Engine, EngineConfig};
use sha2::Sha256;

/// The allocator the `kontor` binary runs with, so the figures are of it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SECRET: &str = "bench-secret";

fn main() {
    // reqwest has no rustls provider of its own (adapters/src/tls.rs).
    kontor::tls::install_provider();
    let posts: usize = env_or("KONTOR_BENCH_POSTS", 20_000);
    let clients: usize = env_or("KONTOR_BENCH_CLIENTS", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (rate, p50, p99, max) = runtime.block_on(run(posts, clients));
    println!("onRetail webhook, {posts} signed posts from {clients} clients (each creates a ticket, durable before answered)");
    println!("  {rate:.0} requests/s, latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(posts: usize, clients: usize) -> (f64, f64, f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = Arc::new(Engine::open(dir.path(), EngineConfig::default()).expect("engine"));
    let settings = HttpSettings {
        public_url: "http://127.0.0.1".into(),
        onretail: OnRetailSettings::new(SECRET, "", u32::MAX),
        portal: Default::default(),
        // No admin routes in the benchmark.
        admin_secret: String::new(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/webhooks/onretail",
        listener.local_addr().expect("address")
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(
        listener,
        AppState::new(
            engine,
            settings,
            Arc::new(
                kontor::http::pages::Pages::load(&kontor_engine::notify::templates::shipped_dir())
                    .expect("page templates"),
            ),
        ),
        async {
            let _ = stopped.await;
        },
    ));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let url = url.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut latencies = Vec::new();
                for n in (client..posts).step_by(clients) {
                    let body = serde_json::to_vec(&serde_json::json!({
                        "instance_id": format!("onr-{}", n % 50),
                        "reporter": {"name": "Kim Kasse", "email": format!("kim{}@cafe.example", n % 300)},
                        "subject": "Bondrucker druckt nicht",
                        "description": "Beim Tagesabschluss kommt kein Bon aus dem Drucker. Neustart hilft nicht.",
                        "category": "hardware",
                        "context": {"register": n % 4, "version": "5.4.1"}
                    }))
                    .expect("json");
                    let timestamp = chrono::Utc::now().timestamp();
                    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
                    mac.update(format!("{timestamp}.").as_bytes());
                    mac.update(&body);
                    let signature = format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()));
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .header("X-Onretail-Signature", signature)
                        .header("Idempotency-Key", format!("bench-{n}"))
                        .body(body)
                        .send()
                        .await
                        .expect("sent");
                    assert_eq!(response.status(), 201);
                    let _ = response.bytes().await;
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    let rate = posts as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = server.await;
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (rate, at(0.50), at(0.99), latencies[latencies.len() - 1])
}
