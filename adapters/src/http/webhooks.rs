//! `POST /webhooks/onretail`: tickets from the point of sale, with no login.
//!
//! Trust comes from the signature: `X-Onretail-Signature: t=<unix>,v1=<hex>` where v1 is
//! HMAC-SHA256(secret, "<t>." + raw body), compared in constant time, within 300 s of
//! now, under the current or the previous secret (rotation). Checks run cheapest and
//! most telling first: size, signature, JSON, fields, rate; nothing is stored until
//! all pass. `Idempotency-Key` makes a retry return the first answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

use kontor_engine::model::{Channel, TicketOrigin};
use kontor_engine::ops::attachments::NewAttachment;
use kontor_engine::ops::tickets::{NewTicket, RequesterInput};
use kontor_engine::validate::EmailAddress;

use super::error::ApiError;
use super::extract::{parse_json, RawBody};
use super::AppState;

/// How far the signed timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_SHORT_FIELD_CHARS: usize = 200;
pub const MAX_PHONE_CHARS: usize = 50;
pub const MAX_FILENAME_CHARS: usize = 255;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;

/// The webhook's settings, from `[security]`.
#[derive(Debug, Default)]
pub struct OnRetailSettings {
    /// Accepted secrets: the current one first, then the one being rotated out.
    pub secrets: Vec<Vec<u8>>,
    pub rate_per_minute: u32,
    pub limiter: RateLimiter,
}

impl OnRetailSettings {
    pub fn new(secret: &str, previous_secret: &str, rate_per_minute: u32) -> Self {
        OnRetailSettings {
            secrets: [secret, previous_secret]
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            rate_per_minute,
            limiter: RateLimiter::default(),
        }
    }
}

/// A fixed one-minute window per instance id.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// `Ok` when the post may proceed, else the seconds until the window reopens.
    pub fn check(&self, instance_id: &str, per_minute: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > 100_000 {
            // Bounded memory under a flood of made-up instance ids.
            windows.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let window = windows.entry(instance_id.to_string()).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(60) {
            *window = (now, 0);
        }
        if window.1 >= per_minute {
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(window.0));
            return Err(left.as_secs().max(1));
        }
        window.1 += 1;
        Ok(())
    }
}

pub fn routes() -> axum::Router<AppState> {
    Router::new().route("/webhooks/onretail", post(onretail))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OnRetailPost {
    pub instance_id: String,
    pub reporter: ReporterJson,
    pub subject: String,
    pub description: String,
    pub category: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentPost>,
    #[schema(value_type = Option<Object>)]
    pub context: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReporterJson {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AttachmentPost {
    pub filename: String,
    pub content_type: String,
    pub data_base64: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnRetailCreated {
    pub ticket_id: String,
    pub number: u64,
    pub view_url: String,
}

/// Files a ticket for someone at a point of sale. Signed, not logged in.
#[utoipa::path(post, path = "/webhooks/onretail", tag = "webhooks", request_body = OnRetailPost,
    params(("X-Onretail-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.\" + body)>"),
           ("Idempotency-Key" = Option<String>, Header, description = "the same key again returns the first answer")),
    responses((status = 201, body = OnRetailCreated), (status = 400, body = super::wire::ErrorJson), (status = 401, body = super::wire::ErrorJson),
              (status = 413, body = super::wire::ErrorJson), (status = 429, body = super::wire::ErrorJson)))]
pub async fn onretail(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let settings = &state.settings.onretail;
    if settings.secrets.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "webhook_off",
            "the onRetail webhook is off (security.onretail_secret is empty)",
        ));
    }
    let max_bytes = state.engine.config().max_body_bytes;
    if body.len() > max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {max_bytes} bytes"),
        ));
    }
    verify_signature(
        &headers,
        &body,
        &settings.secrets,
        state.engine.clock().now().timestamp(),
    )?;
    let post: OnRetailPost = parse_json(&body)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value.to_str().unwrap_or("").trim();
            if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
                return Err(ApiError::bad_request(
                    "invalid",
                    "Idempotency-Key",
                    format!("must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible characters"),
                ));
            }
            Some(format!("onretail:{}:{key}", post.instance_id))
        }
    };
    let new = validate(post, max_bytes)?;
    let instance_id = new
        .origin
        .as_ref()
        .map(|o| o.onretail_instance_id.clone())
        .unwrap_or_default();
    if let Err(retry_after) = settings
        .limiter
        .check(&instance_id, settings.rate_per_minute)
    {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} posts a minute from instance {instance_id}",
                settings.rate_per_minute
            ),
        );
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            error.headers.push((header::RETRY_AFTER, value));
        }
        return Err(error);
    }
    let created = state
        .run(move |engine| {
            let mut new = new;
            new.company_id = engine
                .company_by_instance(&instance_id)?
                .map(|company| company.id);
            let (ticket, _replayed) = engine.create_ticket_once(new, idempotency_key.as_deref())?;
            Ok(OnRetailCreated {
                ticket_id: ticket.id.to_string(),
                number: ticket.number,
                view_url: engine.ticket_view_url(&ticket)?,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Checks `X-Onretail-Signature` against every accepted secret, in constant time.
fn verify_signature(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Vec<u8>],
    now: i64,
) -> Result<(), ApiError> {
    let unauthorized =
        |code: &str, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, code, message);
    let header = headers
        .get("x-onretail-signature")
        .ok_or_else(|| {
            unauthorized(
                "signature_missing",
                "the X-Onretail-Signature header is missing",
            )
        })?
        .to_str()
        .map_err(|_| unauthorized("signature_invalid", "the signature header is not text"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.trim().parse::<i64>().ok(),
            Some(("v1", value)) => {
                if let Ok(bytes) = hex::decode(value.trim()) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| {
        unauthorized(
            "signature_invalid",
            "the signature header has no t=<unix seconds>",
        )
    })?;
    if signatures.is_empty() {
        return Err(unauthorized(
            "signature_invalid",
            "the signature header has no v1=<hex>",
        ));
    }
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(unauthorized(
            "signature_expired",
            "the signed timestamp is more than 300 s from now",
        ));
    }
    for secret in secrets {
        for signature in &signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
                continue;
            };
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(unauthorized(
        "signature_invalid",
        "the signature does not match the body",
    ))
}

/// Checks every field, naming each bad one, and decodes the attachments.
fn validate(post: OnRetailPost, max_bytes: usize) -> Result<NewTicket, ApiError> {
    let mut bad = ApiError::new(StatusCode::BAD_REQUEST, "invalid", "");
    let mut fail = |field: &str, why: String| {
        bad.fields.insert(field.to_string(), why);
    };
    let instance_id = post.instance_id.trim().to_string();
    if instance_id.is_empty() {
        fail("instance_id", "must not be empty".into());
    } else if instance_id.chars().count() > MAX_SHORT_FIELD_CHARS {
        fail(
            "instance_id",
            format!("is longer than {MAX_SHORT_FIELD_CHARS} characters"),
        );
    }
    if let Err(error) = kontor_engine::validate::line(&post.reporter.name) {
        fail("reporter.name", error.to_string());
    }
    if let Err(error) = EmailAddress::parse(&post.reporter.email) {
        fail("reporter.email", error.to_string());
    }
    let phone = post
        .reporter
        .phone
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    if phone
        .as_ref()
        .is_some_and(|p| p.chars().count() > MAX_PHONE_CHARS)
    {
        fail(
            "reporter.phone",
            format!("is longer than {MAX_PHONE_CHARS} characters"),
        );
    }
    if post
        .category
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_SHORT_FIELD_CHARS)
    {
        fail(
            "category",
            format!("is longer than {MAX_SHORT_FIELD_CHARS} characters"),
        );
    }
    if post
        .context
        .as_ref()
        .is_some_and(|c| c.to_string().len() > MAX_CONTEXT_BYTES)
    {
        fail(
            "context",
            format!("is larger than {MAX_CONTEXT_BYTES} bytes"),
        );
    }
    if post.attachments.len() > MAX_ATTACHMENTS {
        fail(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        );
    }
    let mut attachments = Vec::new();
    let mut total = 0usize;
    for (index, attachment) in post
        .attachments
        .into_iter()
        .enumerate()
        .take(MAX_ATTACHMENTS)
    {
        let field = |name: &str| format!("attachments[{index}].{name}");
        let filename = attachment.filename.trim().to_string();
        if filename.is_empty()
            || filename.chars().count() > MAX_FILENAME_CHARS
            || filename.contains(['/', '\\', '\0'])
        {
            fail(
                &field("filename"),
                format!("must be a file name of 1 to {MAX_FILENAME_CHARS} characters"),
            );
        }
        let content_type = attachment.content_type.trim().to_ascii_lowercase();
        let type_ok = content_type.len() <= MAX_SHORT_FIELD_CHARS
            && content_type
                .split_once('/')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && content_type
                .chars()
                .all(|c| c.is_ascii_graphic() || c == ' ');
        if !type_ok {
            fail(
                &field("content_type"),
                "must be a media type like image/png".into(),
            );
        }
        match base64::engine::general_purpose::STANDARD.decode(attachment.data_base64.trim()) {
            Ok(bytes) => {
                total += bytes.len();
                attachments.push(NewAttachment {
                    filename,
                    content_type,
                    bytes,
                });
            }
            Err(_) => fail(&field("data_base64"), "is not valid base64".into()),
        }
    }
    if !bad.fields.is_empty() {
        bad.message = bad
            .fields
            .iter()
            .map(|(field, why)| format!("{field}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(bad);
    }
    if total > max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the attachments are larger than {max_bytes} bytes together"),
        )
        .with_field("attachments", "too large"));
    }
    Ok(NewTicket {
        subject: post.subject,
        body: post.description,
        requester: RequesterInput::Email {
            email: post.reporter.email,
            name: Some(post.reporter.name),
        },
        assignee_id: None,
        channel: Channel::Webhook,
        attachments,
        company_id: None,
        notify: true,
        origin: Some(TicketOrigin {
            onretail_instance_id: instance_id,
            category: post.category,
            reporter_phone: phone,
            context: post.context,
        }),
    })
}
