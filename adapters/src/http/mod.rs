//! The HTTP edge (axum): the staff API under `/api/v1`, `/healthz`, magic links
//! (`/l/…`) and the customer pages (`/portal/…`), later the webhooks. Handlers convert wire types into engine commands,
//! run the engine operation off the async runtime, and convert the result back.

pub mod admin;
pub mod deliveries;
pub mod error;
pub mod extract;
mod inbound;
mod links;
pub mod metrics;
mod openapi;
pub mod pages;
mod parties;
pub mod portal;
pub mod record_wire;
pub mod records;
mod search;
mod tickets;
pub mod webhooks;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use kontor_engine::ops::keys::KeyRejected;
use kontor_engine::{Engine, EngineError};

use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub settings: Arc<HttpSettings>,
    /// The customer pages' templates.
    pub pages: Arc<pages::Pages>,
    /// Request counts for `/metrics`.
    pub metrics: Arc<metrics::HttpMetrics>,
}

/// What the HTTP edge needs from the configuration.
#[derive(Debug, Default)]
pub struct HttpSettings {
    /// The base of every link we hand out.
    pub public_url: String,
    pub onretail: webhooks::OnRetailSettings,
    pub portal: portal::PortalSettings,
    /// The bearer secret of `/admin/…` (written to `<data_dir>/admin.json` for the
    /// CLI); empty turns those routes off.
    pub admin_secret: String,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, settings: HttpSettings, pages: Arc<pages::Pages>) -> Self {
        AppState {
            engine,
            settings: Arc::new(settings),
            pages,
            metrics: Arc::new(metrics::HttpMetrics::new()),
        }
    }

    /// Runs a blocking engine operation on tokio's blocking pool: engine calls wait for
    /// the group-committed flush, which must not stall the async workers.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || work(&engine)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(error) => {
                tracing::error!(%error, "engine task failed");
                Err(ApiError::internal())
            }
        }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // Bodies carry messages of up to max_body_bytes; JSON escaping can add a little.
    let body_limit = state.engine.config().max_body_bytes + 64 * 1024;
    let api = Router::new()
        .merge(parties::routes())
        .merge(tickets::routes())
        .merge(records::routes())
        .merge(search::routes())
        .merge(links::api_routes())
        .merge(inbound::routes())
        .merge(deliveries::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .merge(portal::routes())
        .nest("/api/v1", api)
        .merge(webhooks::routes())
        .route("/metrics", get(metrics::serve))
        .merge(admin::routes(state.clone()))
        // Routes added after this line are counted as "unmatched" in /metrics.
        .route_layer(middleware::from_fn(metrics::tag_route))
        .fallback(not_found)
        .layer(middleware::from_fn(error::bare_errors_as_json))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer's address is evidence of a signature (the signer's IP).
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// `Authorization: Bearer <key>`: 401 without a known key, 403 with a revoked one.
async fn require_api_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    let Some(secret) = bearer else {
        return unauthorized("an API key is required: Authorization: Bearer <key>").into_response();
    };
    match state.run(move |engine| engine.authenticate(&secret)).await {
        Ok(Ok(_key)) => next.run(request).await,
        Ok(Err(KeyRejected::Revoked)) => ApiError::new(
            StatusCode::FORBIDDEN,
            "key_revoked",
            "the API key was revoked",
        )
        .into_response(),
        Ok(Err(KeyRejected::Unknown)) => unauthorized("unknown API key").into_response(),
        Err(error) => error.into_response(),
    }
}

fn unauthorized(message: &str) -> ApiError {
    let mut error = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    error
        .headers
        .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    error
}

/// Parses an id from a path or body; an id that cannot be ours is an unknown id (404).
pub(crate) fn parse_id<T: std::str::FromStr>(
    text: &str,
    what: &str,
    field: Option<&str>,
) -> Result<T, ApiError> {
    text.parse().map_err(|_| {
        let error = ApiError::not_found(what, text);
        match field {
            Some(field) => error.with_field(field, format!("no {what} {text}")),
            None => error,
        }
    })
}
