//! `GET /metrics`: Prometheus' text format (version 0.0.4), every name prefixed
//! `kontor_`. A registry of our own rather than a crate: the engine already keeps
//! its counters in atomics and reads its gauges from the store when asked, so all
//! that is left here is counting requests and writing text, which a crate's
//! registry, macros and global state would not make shorter.
//!
//! Requests are counted by route template (`/api/v1/tickets/{id}`), never by raw
//! path, so that ids do not make a new series each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use kontor_engine::ops::stats::OperationalStats;
use kontor_engine::store::stats::HistogramSnapshot;

use super::AppState;
use crate::memory::AllocatorBytes;

/// The route label of requests that matched no route (the 404 fallback).
const UNMATCHED_ROUTE: &str = "unmatched";

/// Request counts by (method, route template, status), since the start.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    started: Option<Instant>,
}

impl HttpMetrics {
    pub fn new() -> Self {
        HttpMetrics {
            requests: Mutex::default(),
            started: Some(Instant::now()),
        }
    }

    fn count(&self, method: &Method, route: &str, status: StatusCode) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *requests
            .entry((
                method.as_str().to_string(),
                route.to_string(),
                status.as_u16(),
            ))
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<(String, String, u16), u64> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The matched route, carried from the inner layer (which sees it) to the outer
/// one (which sees every response, the fallback's too).
#[derive(Debug, Clone)]
struct RouteTemplate(String);

/// Inner layer (`route_layer`): tags the response with the matched route template.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Outer layer: counts every request by method, route template and status.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map(|route| route.0.as_str())
        .unwrap_or(UNMATCHED_ROUTE);
    state.metrics.count(&method, route, response.status());
    response
}

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Response {
    let stats = match state.run(|engine| engine.operational_stats()).await {
        Ok(stats) => stats,
        Err(error) => return error.into_response(),
    };
    let text = render(&state.metrics, &stats, crate::memory::allocator_bytes());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The whole exposition.
fn render(
    http: &HttpMetrics,
    stats: &OperationalStats,
    allocator: Option<AllocatorBytes>,
) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "kontor_http_requests_total",
        "counter",
        "HTTP requests by method, route template and status",
    );
    for ((method, route, status), count) in http.snapshot() {
        let _ = writeln!(
            out,
            "kontor_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
            escape(&method),
            escape(&route)
        );
    }
    family(
        &mut out,
        "kontor_mail_in_total",
        "counter",
        "Inbound messages by outcome, every door together",
    );
    for (outcome, count) in &stats.mail_in {
        let _ = writeln!(out, "kontor_mail_in_total{{outcome=\"{outcome}\"}} {count}");
    }
    family(
        &mut out,
        "kontor_mail_in_failed_total",
        "counter",
        "Inbound messages the store could not take (the door answered try-later), every door together",
    );
    let _ = writeln!(out, "kontor_mail_in_failed_total {}", stats.mail_in_failed);
    family(
        &mut out,
        "kontor_notices",
        "gauge",
        "Notices in the outbox by state (pending: waiting for a first or next attempt)",
    );
    let _ = writeln!(
        out,
        "kontor_notices{{state=\"pending\"}} {}",
        stats.outbox_pending
    );
    family(
        &mut out,
        "kontor_notice_attempts_total",
        "counter",
        "Delivery attempts of notices by outcome",
    );
    for (outcome, count) in &stats.notice_outcomes {
        let _ = writeln!(
            out,
            "kontor_notice_attempts_total{{outcome=\"{outcome}\"}} {count}"
        );
    }
    gauge(
        &mut out,
        "kontor_outbox_queue_depth",
        "Notices waiting to be sent",
        stats.outbox_pending as f64,
    );
    gauge(
        &mut out,
        "kontor_outbox_oldest_age_seconds",
        "Age of the oldest notice waiting to be sent (0 when none waits)",
        stats.outbox_oldest_pending_seconds,
    );
    gauge(
        &mut out,
        "kontor_search_index_lag",
        "Changelog entries the search index has not applied yet",
        stats.index_lag as f64,
    );
    if let Some(bytes) = stats.store_bytes {
        gauge(
            &mut out,
            "kontor_store_size_bytes",
            "Bytes the store takes on disk",
            bytes as f64,
        );
    }
    if let Some(commit) = &stats.commit {
        histogram(
            &mut out,
            "kontor_store_batch_transactions",
            "Transactions per committed batch (one backend transaction and one flush)",
            &commit.batch_transactions,
        );
        histogram(
            &mut out,
            "kontor_store_commit_seconds",
            "Time to apply and flush one batch",
            &commit.commit_seconds,
        );
    }
    if let Some(bytes) = allocator {
        family(
            &mut out,
            "kontor_allocator_bytes",
            "gauge",
            "Memory as the allocator (jemalloc) counts it: allocated (live), active (pages holding live data), resident (what it has in RAM, freed pages not yet returned too), metadata, retained (returned to the kernel, still mapped)",
        );
        for (kind, value) in [
            ("allocated", bytes.allocated),
            ("active", bytes.active),
            ("resident", bytes.resident),
            ("metadata", bytes.metadata),
            ("retained", bytes.retained),
        ] {
            let _ = writeln!(out, "kontor_allocator_bytes{{kind=\"{kind}\"}} {value}");
        }
    }
    if let Some(started) = http.started {
        gauge(
            &mut out,
            "kontor_uptime_seconds",
            "Seconds since the server started",
            started.elapsed().as_secs_f64(),
        );
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn histogram(out: &mut String, name: &str, help: &str, snapshot: &HistogramSnapshot) {
    family(out, name, "histogram", help);
    for (bound, count) in snapshot.bounds.iter().zip(&snapshot.cumulative) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", snapshot.count);
    let _ = writeln!(out, "{name}_sum {}", snapshot.sum);
    let _ = writeln!(out, "{name}_count {}", snapshot.count);
}

/// Label values escape backslash, quote and newline (the text format's rule).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_by_route_template_with_escaped_labels() {
        let http = HttpMetrics::new();
        http.count(&Method::GET, "/api/v1/tickets/{id}", StatusCode::OK);
        http.count(&Method::GET, "/api/v1/tickets/{id}", StatusCode::OK);
        http.count(&Method::POST, "/a\"b", StatusCode::NOT_FOUND);
        let stats = OperationalStats {
            mail_in: vec![("created", 3)],
            mail_in_failed: 1,
            notice_outcomes: vec![("sent", 1)],
            outbox_pending: 2,
            outbox_oldest_pending_seconds: 1.5,
            index_lag: 0,
            store_bytes: Some(10),
            commit: None,
        };
        let allocator = AllocatorBytes {
            allocated: 1,
            active: 2,
            resident: 3,
            metadata: 4,
            retained: 5,
        };
        let text = render(&http, &stats, Some(allocator));
        assert!(text.contains(
            "kontor_http_requests_total{method=\"GET\",route=\"/api/v1/tickets/{id}\",status=\"200\"} 2"
        ));
        assert!(text.contains("route=\"/a\\\"b\""), "{text}");
        assert!(text.contains("kontor_mail_in_total{outcome=\"created\"} 3"));
        assert!(text.contains("kontor_mail_in_failed_total 1"));
        assert!(text.contains("kontor_outbox_oldest_age_seconds 1.5"));
        assert!(text.contains("kontor_allocator_bytes{kind=\"resident\"} 3"));
    }
}
