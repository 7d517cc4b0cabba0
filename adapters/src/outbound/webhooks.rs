//! The webhook sender: drains the deliveries the engine queued, posting each to its
//! endpoint signed the Standard Webhooks way, until the receiver answers 2xx.
//!
//! Delivery is at least once: an attempt is recorded (durably) after the answer, so
//! a crash between the receiver's 2xx and that write sends the same delivery again,
//! with the same `webhook-id`, which is what receivers de-duplicate by. Anything but
//! a 2xx (refused, timeout, 4xx, 5xx) is retried with exponential backoff.
//!
//! https:// receivers are reached over rustls (`crate::tls`): the Mozilla roots, and
//! an entry's `ca_file` for a receiver with a certificate of its own. An untrusted
//! certificate is a failed attempt like any other, logged with the reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{watch, Semaphore};

use kontor_engine::ops::outbox::RetryPolicy;
use kontor_engine::webhooks::{AttemptOutcome, WebhookDelivery, WebhookEvent, WebhookSubscription};
use kontor_engine::Engine;

use crate::config::Config;
use crate::tls::{self, ClientSettings};

/// How long the sender sleeps when nothing is due and nothing new was queued.
const IDLE_POLL: Duration = Duration::from_millis(250);
const SIGNAL_POLL: Duration = Duration::from_millis(10);
const BATCH: usize = 64;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 8;
/// A receiver that has not answered in this long counts as a failed attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The pause after the store refused a read.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

/// The sender's part of the config file.
#[derive(Debug, Clone)]
pub struct WebhookSenderSettings {
    /// Each endpoint by URL: its signing key and the client that trusts its roots.
    pub endpoints: HashMap<String, Endpoint>,
    pub retry: RetryPolicy,
}

/// One `[[webhooks]]` entry, ready to post to.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The secret's base64 part, decoded.
    pub key: Vec<u8>,
    /// rustls with the Mozilla roots and the entry's `ca_file`; pooled per endpoint.
    pub client: reqwest::Client,
}

impl WebhookSenderSettings {
    /// Reads each entry's CA file now, so that a wrong one stops the start naming it.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut endpoints = HashMap::new();
        for (index, endpoint) in config.webhooks.iter().enumerate() {
            let settings = ClientSettings {
                ca_file: (!endpoint.ca_file.as_os_str().is_empty())
                    .then(|| endpoint.ca_file.clone()),
                timeout: Some(REQUEST_TIMEOUT),
                user_agent: Some(concat!("kontor-webhooks/", env!("CARGO_PKG_VERSION")).into()),
                no_redirects: true,
            };
            let client = tls::http_client(&settings)
                .map_err(|error| anyhow::anyhow!("webhooks[{index}].ca_file: {error}"))?;
            let key = signing_key(&endpoint.secret)?;
            endpoints.insert(endpoint.url.clone(), Endpoint { key, client });
        }
        let outbound = &config.outbound;
        Ok(WebhookSenderSettings {
            endpoints,
            retry: RetryPolicy {
                max_attempts: outbound.webhook_max_attempts,
                base: chrono::Duration::milliseconds(i64::from(outbound.webhook_retry_base_ms)),
                max: chrono::Duration::seconds(i64::from(outbound.webhook_retry_max_seconds)),
            },
        })
    }
}

/// Checks every `[[webhooks]]` entry: an http(s) URL, a `whsec_` secret, a CA file
/// with certificates when one is named, known events.
pub fn check_config(config: &Config) -> Result<(), String> {
    for (index, endpoint) in config.webhooks.iter().enumerate() {
        let name = format!("webhooks[{index}]");
        match reqwest::Url::parse(&endpoint.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => {
                return Err(format!(
                    "{name}.url must be an http or https URL, not {:?}",
                    endpoint.url
                ))
            }
        }
        signing_key(&endpoint.secret).map_err(|error| format!("{name}.secret: {error}"))?;
        if !endpoint.ca_file.as_os_str().is_empty() {
            tls::client_config(Some(&endpoint.ca_file))
                .map_err(|error| format!("{name}.ca_file: {error}"))?;
        }
        subscribed_events(&endpoint.events).map_err(|error| format!("{name}.events: {error}"))?;
    }
    Ok(())
}

/// The engine's view of `[[webhooks]]`: where each event goes.
pub fn subscriptions(config: &Config) -> Vec<WebhookSubscription> {
    config
        .webhooks
        .iter()
        .map(|endpoint| WebhookSubscription {
            url: endpoint.url.clone(),
            // Checked at load; an entry that slipped through gets every event.
            events: subscribed_events(&endpoint.events).unwrap_or_default(),
        })
        .collect()
}

/// `["*"]` is every event (the engine's empty list); otherwise each name must be known.
fn subscribed_events(names: &[String]) -> Result<Vec<WebhookEvent>, String> {
    if names.is_empty() {
        return Err("name at least one event, or \"*\"".into());
    }
    if names.iter().any(|name| name == "*") {
        return Ok(Vec::new());
    }
    names
        .iter()
        .map(|name| {
            WebhookEvent::parse(name).ok_or_else(|| {
                let known: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
                format!("{name:?} is not one of {}", known.join(", "))
            })
        })
        .collect()
}

/// The key of a `whsec_<base64>` secret; anything else is an error naming the rule.
pub fn signing_key(secret: &str) -> anyhow::Result<Vec<u8>> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| anyhow::anyhow!("a webhook secret starts with whsec_"))?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|error| anyhow::anyhow!("a webhook secret is whsec_ and base64: {error}"))?;
    if key.len() < 16 {
        anyhow::bail!("a webhook secret's key must have at least 16 bytes");
    }
    Ok(key)
}

/// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
pub fn signature(key: &[u8], webhook_id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length, so this never returns early.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(format!("{webhook_id}.{timestamp}.{body}").as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Drains the webhook deliveries until `stop` turns true.
pub async fn run(
    engine: Arc<Engine>,
    settings: WebhookSenderSettings,
    mut stop: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        if *stop.borrow() {
            return;
        }
        let signal_before = engine.webhook_signal();
        let due = {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.due_webhooks(BATCH)).await
        };
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(error)) => {
                tracing::error!(%error, "reading the webhook deliveries failed");
                pause(STORE_BACKOFF, &mut stop).await;
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "reading the webhook deliveries failed");
                pause(STORE_BACKOFF, &mut stop).await;
                continue;
            }
        };
        if due.is_empty() {
            wait_for_work(&engine, signal_before, &mut stop).await;
            continue;
        }
        let mut in_flight = tokio::task::JoinSet::new();
        for delivery in due {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            let engine = engine.clone();
            let settings = settings.clone();
            in_flight.spawn(async move {
                deliver(&engine, &settings, delivery).await;
                drop(permit);
            });
        }
        while in_flight.join_next().await.is_some() {}
    }
}

async fn pause(wait: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}

/// Sleeps until a delivery is queued, the idle poll passes (retries come due), or stop.
async fn wait_for_work(engine: &Engine, signal_before: u64, stop: &mut watch::Receiver<bool>) {
    let deadline = tokio::time::Instant::now() + IDLE_POLL;
    while tokio::time::Instant::now() < deadline && engine.webhook_signal() == signal_before {
        tokio::select! {
            _ = tokio::time::sleep(SIGNAL_POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One attempt at one delivery, and its outcome written to the store.
async fn deliver(
    engine: &Arc<Engine>,
    settings: &WebhookSenderSettings,
    delivery: WebhookDelivery,
) {
    let id = delivery.id;
    let Some(Endpoint { key, client }) = settings.endpoints.get(&delivery.url) else {
        let engine = engine.clone();
        let reason = format!("{} is no longer a configured webhook", delivery.url);
        tracing::warn!(id, url = %delivery.url, "webhook endpoint gone; delivery failed");
        let _ = tokio::task::spawn_blocking(move || engine.webhook_abandoned(id, &reason)).await;
        return;
    };
    let body = {
        let engine = engine.clone();
        let delivery = delivery.clone();
        tokio::task::spawn_blocking(move || crate::http::deliveries::payload(&engine, &delivery))
            .await
    };
    let body = match body {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            tracing::error!(id, %error, "a webhook payload could not be built");
            return;
        }
        Err(error) => {
            tracing::error!(id, %error, "a webhook payload could not be built");
            return;
        }
    };
    let timestamp = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let answer = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature(key, &delivery.webhook_id, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    let duration_ms = started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
    let outcome = match answer {
        Ok(response) => {
            let status = response.status();
            AttemptOutcome {
                status: Some(status.as_u16()),
                error: (!status.is_success()).then(|| format!("answered {status}")),
                duration_ms,
            }
        }
        Err(error) => AttemptOutcome {
            status: None,
            error: Some(tls::describe(&error)),
            duration_ms,
        },
    };
    let retry = settings.retry;
    let recorded = {
        let engine = engine.clone();
        let outcome = outcome.clone();
        tokio::task::spawn_blocking(move || engine.webhook_attempted(id, &outcome, retry)).await
    };
    match recorded {
        Ok(Ok(state)) => {
            tracing::info!(id, url = %delivery.url, status = ?outcome.status, state = state.as_str(), "webhook attempt");
        }
        // Still pending in the store: it is sent again, with the same id.
        Ok(Err(error)) => tracing::error!(id, %error, "recording a webhook attempt failed"),
        Err(error) => tracing::error!(id, %error, "recording a webhook attempt failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_that_are_not_whsec_base64_are_refused() {
        assert!(signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(signing_key("whsec_not base64!").is_err());
        assert!(signing_key("whsec_c2hvcnQ=").is_err());
    }
}
